"""Hostile and malformed image archives are refused, naming archive and member; nothing is
written outside the scanner's private temporary directory (checked on a canary tree)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path

import pytest
from tests.images import imagekit
from tests.images.imagekit import Image, Member, file, hardlink, layer_tar, symlink

from patchwarden.errors import InventoryFormatError
from patchwarden.inventory.oci import Limits, scan_image


def _tree(root: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = p.read_bytes()
        else:
            out[rel] = "dir"
    return out


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path with a canary file, and the scanner's temp dir pointed at tmp_path/scratch."""
    (tmp_path / "canary").write_text("untouched\n")
    (tmp_path / "scratch").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    return tmp_path


def _refused(sandbox: Path, archive: Path, match: str, limits: Limits | None = None) -> None:
    before = _tree(sandbox)
    with pytest.raises(InventoryFormatError, match=match) as info:
        scan_image(archive, limits=limits)
    assert str(archive) in str(info.value)
    assert _tree(sandbox) == before  # canary untouched, no new file anywhere
    assert list((sandbox / "scratch").iterdir()) == []  # the private temp dir is gone


def _one_layer(sandbox: Path, members: list[Member]) -> Path:
    return imagekit.write_docker_archive(
        Image(layers=[layer_tar(members)]), sandbox / "work" / "evil.tar"
    )


@pytest.mark.parametrize(
    ("member", "match"),
    [
        (file("../../canary", "pwned"), r"member '\.\./\.\./canary': path has a '\.\.' part"),
        (file("etc/../../canary", "x"), r"member 'etc/\.\./\.\./canary': path has a '\.\.' part"),
        (file("/tmp/canary", "pwned"), r"member '/tmp/canary': absolute path"),
        (
            symlink("etc/evil", "../../../canary"),
            r"member 'etc/evil': symlink target '\.\./\.\./\.\./canary' escapes the image root",
        ),
        (
            hardlink("etc/evil", "../canary"),
            r"member 'etc/evil \(hardlink target\)'|path has a '\.\.' part",
        ),
        (
            hardlink("var/lib/dpkg/status", "etc/passwd"),
            r"member 'var/lib/dpkg/status': hardlink target 'etc/passwd' is not an earlier member",
        ),
        (
            Member("dev/sda", type=tarfile.BLKTYPE, devmajor=8),
            r"member 'dev/sda': device or FIFO files are not allowed",
        ),
        (
            Member("dev/null", type=tarfile.CHRTYPE, devmajor=1),
            r"member 'dev/null': device or FIFO files are not allowed",
        ),
        (Member("run/fifo", type=tarfile.FIFOTYPE), r"member 'run/fifo': device or FIFO"),
    ],
)
def test_hostile_layer_members(sandbox: Path, member: Member, match: str) -> None:
    _refused(sandbox, _one_layer(sandbox, [file("etc/hostname", "x"), member]), match)


def test_symlink_then_write_through_it_never_touches_the_host(sandbox: Path) -> None:
    """An absolute symlink is a path inside the image; a file 'through' it is only indexed."""
    target = str(sandbox / "canary")
    archive = _one_layer(
        sandbox,
        [
            symlink("var/lib/dpkg", str(sandbox)),
            symlink("etc/os-release", target),
            file("var/lib/dpkg/status", "Package: x\nStatus: install ok installed\nVersion: 1\n"),
        ],
    )
    before = _tree(sandbox)
    inv = scan_image(archive)
    assert _tree(sandbox) == before
    assert inv.inventory.distro is None  # the host's file was never read as os-release
    # Docker would write through the symlink inside the image root; the scanner only indexes
    # the member, and the database is not readable at its real path: nothing is found.
    assert inv.inventory.packages == ()


def test_huge_declared_member(sandbox: Path) -> None:
    layer = imagekit.declared_size_layer("var/lib/dpkg/status", 1 << 40)
    archive = imagekit.write_docker_archive(Image(layers=[layer]), sandbox / "work" / "a.tar")
    _refused(sandbox, archive, r"member 'var/lib/dpkg/status': declares 1099511627776 bytes")


def test_oversized_package_database(sandbox: Path) -> None:
    archive = _one_layer(sandbox, [file("var/lib/dpkg/status", b"P" * 5000)])
    _refused(
        sandbox,
        archive,
        r"member 'var/lib/dpkg/status': 5000 bytes, over the limit of 4096",
        Limits(max_file_bytes=4096),
    )


def test_gzip_bomb_stops_at_the_layer_limit(sandbox: Path) -> None:
    big = layer_tar([file(f"opt/zeros{i}", b"\0" * (512 << 10)) for i in range(8)])
    image = Image(layers=[big])
    layout, _ = imagekit.write_oci_layout(image, sandbox / "work" / "oci")
    blobs = list((layout / "blobs" / "sha256").iterdir())
    assert min(b.stat().st_size for b in blobs) < 20_000  # it really is a small blob
    _refused(
        sandbox, layout, r"larger than the limit of 1048576 bytes", Limits(max_layer_bytes=1 << 20)
    )


def test_too_many_members(sandbox: Path) -> None:
    archive = _one_layer(sandbox, [file(f"f{i}", "x") for i in range(20)])
    _refused(sandbox, archive, r"more than 10 members", Limits(max_members=10))


def test_tampered_layer_digest(sandbox: Path) -> None:
    image = imagekit.app_image()
    good = image.config()
    tampered = Image(layers=[layer_tar([file("etc/x", "tampered")])])
    archive = imagekit.write_docker_archive(
        tampered,
        sandbox / "work" / "t.tar",
        config=good,
    )
    _refused(sandbox, archive, r"manifest\.json: 1 layers, but the config lists 3 diff_ids")
    cfg = Image(layers=[image.layers[0]]).config()
    archive = sandbox / "work" / "t2.tar"
    imagekit.write_docker_archive(tampered, archive, config=cfg)
    _refused(sandbox, archive, r"uncompressed content has digest sha256:[0-9a-f]+, the config's")


def test_tampered_oci_blob(sandbox: Path) -> None:
    layout, _ = imagekit.write_oci_layout(imagekit.app_image(), sandbox / "work" / "oci")
    index = json.loads((layout / "index.json").read_text())
    manifest_blob = layout / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]
    manifest = json.loads(manifest_blob.read_bytes())
    layer_blob = layout / "blobs" / "sha256" / manifest["layers"][2]["digest"][7:]
    raw = gzip.decompress(layer_blob.read_bytes())
    layer_blob.write_bytes(gzip.compress(raw, mtime=1))  # same content, other blob bytes
    _refused(sandbox, layout, r"layer 2 .*: blob has digest sha256:[0-9a-f]+, the manifest says")


def test_manifest_digest_mismatch(sandbox: Path) -> None:
    layout, digest = imagekit.write_oci_layout(imagekit.app_image(), sandbox / "work" / "oci")
    blob = layout / "blobs" / "sha256" / digest[7:]
    blob.write_bytes(blob.read_bytes() + b" ")
    _refused(sandbox, layout, rf"blobs/sha256/{digest[7:]}: content has digest")


@pytest.mark.parametrize(
    ("manifest", "match"),
    [
        ({"not": "a list"}, r"manifest\.json: expected a non-empty list of images"),
        ([{"Config": "../../canary", "Layers": []}], r"member '\.\./\.\./canary': path has a"),
        ([{"Config": "/etc/passwd", "Layers": []}], r"member '/etc/passwd': absolute path"),
        ([{"Config": "c.json"}], r"field 'Layers' is missing or not a list"),
        ([{"Layers": []}], r"field 'Config' is missing or not a str"),
    ],
)
def test_bad_docker_manifest(sandbox: Path, manifest: object, match: str) -> None:
    archive = imagekit.write_docker_archive(
        Image(layers=[layer_tar([file("etc/x", "1")])]),
        sandbox / "work" / "m.tar",
        manifest=manifest,
    )
    _refused(sandbox, archive, match)


def test_bad_oci_digest_cannot_traverse(sandbox: Path) -> None:
    layout, _ = imagekit.write_oci_layout(imagekit.app_image(), sandbox / "work" / "oci")
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["digest"] = "sha256:../../../../canary"
    (layout / "index.json").write_text(json.dumps(index))
    _refused(
        sandbox, layout, r"digest 'sha256:\.\./\.\./\.\./\.\./canary' is not 'sha256:<64 hex>'"
    )


def test_oci_blob_symlinked_outside_the_layout(sandbox: Path) -> None:
    layout, digest = imagekit.write_oci_layout(imagekit.app_image(), sandbox / "work" / "oci")
    blob = layout / "blobs" / "sha256" / digest[7:]
    outside = sandbox / "work" / "manifest-outside.json"
    outside.write_bytes(blob.read_bytes())
    blob.unlink()
    blob.symlink_to(outside)
    _refused(sandbox, layout, r"resolves outside the layout directory")


def test_outer_archive_traversal(sandbox: Path) -> None:
    archive = sandbox / "work" / "outer.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../canary")
        data = b"pwned"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    _refused(sandbox, archive, r"member '\.\./canary': path has a '\.\.' part")


def test_outer_archive_symlink_escape(sandbox: Path) -> None:
    archive = sandbox / "work" / "outer.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.type = tarfile.SYMTYPE
        info.linkname = "../../canary"
        tar.addfile(info)
    _refused(sandbox, archive, r"member 'manifest\.json': link target '\.\./\.\./canary' points")


def test_not_an_archive(sandbox: Path) -> None:
    bad = sandbox / "work" / "junk.tar"
    bad.write_bytes(hashlib.sha256(b"x").digest() * 100)
    _refused(sandbox, bad, r"not a readable tar archive")


def test_corrupt_gzip_layer(sandbox: Path) -> None:
    image = imagekit.app_image()
    layout, _ = imagekit.write_oci_layout(image, sandbox / "work" / "oci")
    index = json.loads((layout / "index.json").read_text())
    manifest_blob = layout / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]
    manifest = json.loads(manifest_blob.read_bytes())
    layer_blob = layout / "blobs" / "sha256" / manifest["layers"][0]["digest"][7:]
    data = bytearray(layer_blob.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64
    layer_blob.write_bytes(bytes(data))
    _refused(sandbox, layout, r"layer 0 .*: (not a tar layer|corrupt layer): ")
