"""scan_image on real image archives built here: docker-save tarball and OCI layouts."""

from __future__ import annotations

import gzip
import json
import tarfile
from pathlib import Path

import pytest
from tests.images import imagekit
from tests.images.imagekit import sha

from patchwarden.inventory.oci import (
    ImageFormat,
    ImageInventory,
    scan_image,
    split_layer_location,
)


def _by_name(inv: ImageInventory) -> dict[tuple[str, str], int]:
    return {(lp.package.ecosystem, lp.package.name): lp.layer for lp in inv.packages}


def _check_app_image(inv: ImageInventory, image: imagekit.Image) -> None:
    diff_ids = [sha(x) for x in image.layers]
    assert [layer.diff_id for layer in inv.image.layers] == diff_ids
    assert inv.image.config_digest == sha(image.config())
    assert inv.image.base_name == "docker.io/library/debian:12"
    assert inv.image.base_digest == sha(b"debian:12 manifest")
    assert inv.image.layers[1].created_by is not None
    assert "apt-get install -y curl" in inv.image.layers[1].created_by
    assert inv.inventory.distro == "Debian:12"  # through the etc/os-release symlink
    layers = _by_name(inv)
    # Base packages stay attributed to layer 0 although layer 1 and 2 rewrote the status file.
    assert layers[("Debian:12", "libssl3")] == 0
    assert layers[("Debian:12", "bash")] == 0
    # curl and libcurl4 appeared with layer 1 (apt-get install curl).
    assert layers[("Debian:12", "curl")] == 1
    assert layers[("Debian:12", "libcurl4")] == 1
    # python3-yaml was removed in layer 2, requests' dist-info whited out in layer 2.
    assert ("Debian:12", "python3-yaml") not in layers
    assert ("PyPI", "requests") not in layers
    assert layers[("PyPI", "jinja2")] == 1
    debs = [p for p in inv.inventory.packages if p.ecosystem == "Debian:12"]
    assert len(debs) == 13  # 14 real stanzas minus python3-yaml
    # npm: the app lockfile (real v3 lock) is there; the legacy one is hidden by opaque srv/.
    npm = {(p.name, p.version) for p in inv.inventory.packages if p.ecosystem == "npm"}
    assert npm == {
        ("debug", "2.6.8"),
        ("ms", "2.0.0"),
        ("ms", "2.1.3"),
        ("lodash", "4.17.20"),
        ("@types/node", "18.0.0"),
    }
    assert all("/srv/legacy" not in (p.location or "") for p in inv.inventory.packages)
    jinja = next(lp for lp in inv.packages if lp.package.name == "jinja2")
    assert jinja.path == f"/{imagekit.PY_SITE}/Jinja2-2.10.dist-info"
    assert split_layer_location(jinja.package.location) == (diff_ids[1], jinja.path)
    libssl = next(lp for lp in inv.packages if lp.package.name == "libssl3")
    assert split_layer_location(libssl.package.location) == (diff_ids[0], "/var/lib/dpkg/status")
    lodash = next(lp for lp in inv.packages if lp.package.name == "lodash")
    assert lodash.package.location == f"{diff_ids[1]}:/app/package-lock.json#node_modules/lodash"
    assert "/usr/local/bin/python3" in inv.existing_paths


def test_docker_archive(tmp_path: Path) -> None:
    image = imagekit.app_image()
    path = imagekit.write_docker_archive(image, tmp_path / "app.tar")
    inv = scan_image(path)
    assert inv.image.format is ImageFormat.DOCKER_ARCHIVE
    assert inv.image.manifest_digest is None
    assert inv.image.repo_tags == ("registry.example/app:1.0",)
    assert inv.inventory.asset.id == "registry.example/app:1.0"
    assert inv.inventory.asset.kind == "image"
    _check_app_image(inv, image)


@pytest.mark.parametrize("compress", [True, False])
def test_oci_layout(tmp_path: Path, compress: bool) -> None:
    image = imagekit.app_image()
    layout, manifest_digest = imagekit.write_oci_layout(image, tmp_path / "oci", compress=compress)
    inv = scan_image(layout, name="app")
    assert inv.image.format is ImageFormat.OCI_LAYOUT
    assert inv.image.manifest_digest == manifest_digest
    assert inv.inventory.asset.id == "app"
    assert inv.inventory.source == f"image:{layout}@{manifest_digest}"
    if compress:
        assert all(layer.media_type.endswith("+gzip") for layer in inv.image.layers)
        assert all(layer.digest != layer.diff_id for layer in inv.image.layers)
    _check_app_image(inv, image)


def test_oci_archive(tmp_path: Path) -> None:
    """``podman save --format oci-archive``: the same layout, packed in a tar."""
    image = imagekit.app_image()
    layout, _ = imagekit.write_oci_layout(image, tmp_path / "oci")
    archive = tmp_path / "app.oci.tar"
    with tarfile.open(archive, "w") as tar:
        for f in sorted(layout.rglob("*")):
            tar.add(f, arcname=f.relative_to(layout).as_posix(), recursive=False)
    inv = scan_image(archive)
    assert inv.image.format is ImageFormat.OCI_ARCHIVE
    _check_app_image(inv, image)


def test_same_scan_from_every_format(tmp_path: Path) -> None:
    image = imagekit.app_image()
    a = scan_image(imagekit.write_docker_archive(image, tmp_path / "a.tar"))
    b = scan_image(imagekit.write_oci_layout(image, tmp_path / "b")[0])
    assert a.inventory.packages == b.inventory.packages


def test_alpine_image(tmp_path: Path) -> None:
    root = imagekit.DATA / "inventory" / "alpine319-root"
    layer = imagekit.layer_tar(
        [
            imagekit.file("etc/os-release", (root / "etc/os-release").read_bytes()),
            imagekit.file("lib/apk/db/installed", (root / "lib/apk/db/installed").read_bytes()),
        ]
    )
    inv = scan_image(
        imagekit.write_docker_archive(imagekit.Image(layers=[layer]), tmp_path / "a.tar")
    )
    assert inv.inventory.distro == "Alpine:v3.19"
    assert len(inv.packages) == 11
    assert {lp.layer for lp in inv.packages} == {0}
    assert all(lp.path == "/lib/apk/db/installed" for lp in inv.packages)


def test_whiteout_then_readd_in_a_later_layer(tmp_path: Path) -> None:
    """A deleted file added again by a later layer is back, attributed to that layer."""
    meta = (imagekit.SITE / "Jinja2-2.10.dist-info" / "METADATA").read_bytes()
    site = imagekit.PY_SITE
    layers = [
        imagekit.layer_tar([imagekit.file(f"{site}/Jinja2-2.10.dist-info/METADATA", meta)]),
        imagekit.layer_tar([imagekit.file(f"{site}/.wh.Jinja2-2.10.dist-info", b"")]),
        imagekit.layer_tar([imagekit.file(f"{site}/Jinja2-2.10.dist-info/METADATA", meta)]),
    ]
    inv = scan_image(
        imagekit.write_docker_archive(imagekit.Image(layers=layers), tmp_path / "a.tar")
    )
    assert [(lp.package.name, lp.layer) for lp in inv.packages] == [("jinja2", 2)]
    assert inv.inventory.distro is None


def test_opaque_dir_keeps_same_layer_entries(tmp_path: Path) -> None:
    """``.wh..wh..opq`` hides lower layers only, whatever its order inside its own layer."""
    meta = (imagekit.SITE / "Jinja2-2.10.dist-info" / "METADATA").read_bytes()
    req = (imagekit.SITE / "requests-2.19.1.dist-info" / "METADATA").read_bytes()
    site = imagekit.PY_SITE
    layers = [
        imagekit.layer_tar([imagekit.file(f"{site}/requests-2.19.1.dist-info/METADATA", req)]),
        imagekit.layer_tar(
            [
                imagekit.file(f"{site}/Jinja2-2.10.dist-info/METADATA", meta),
                imagekit.file(f"{site}/.wh..wh..opq", b""),
            ]
        ),
    ]
    inv = scan_image(
        imagekit.write_docker_archive(imagekit.Image(layers=layers), tmp_path / "a.tar")
    )
    assert [p.name for p in inv.inventory.packages] == ["jinja2"]


def test_multi_platform_index_needs_a_platform(tmp_path: Path) -> None:
    image = imagekit.app_image()
    layout, digest = imagekit.write_oci_layout(image, tmp_path / "oci")
    index = json.loads((layout / "index.json").read_text())
    entry = index["manifests"][0]
    index["manifests"] = [
        {**entry, "platform": {"os": "linux", "architecture": "amd64"}},
        {**entry, "platform": {"os": "linux", "architecture": "arm64"}},
    ]
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(Exception, match=r"lists 2 manifests \(linux/amd64, linux/arm64\)"):
        scan_image(layout)
    inv = scan_image(layout, platform="linux/arm64")
    assert inv.image.manifest_digest == digest


def test_gzip_layer_in_docker_archive(tmp_path: Path) -> None:
    """Some tools save compressed layers in a docker archive; the diff_id still verifies."""
    image = imagekit.app_image()
    path = tmp_path / "a.tar"
    layer = gzip.compress(image.layers[0], mtime=0)
    one = imagekit.Image(layers=[image.layers[0]])
    cfg = one.config()
    manifest = [{"Config": f"{sha(cfg)[7:]}.json", "Layers": ["l0.tar.gz"]}]
    with tarfile.open(path, "w") as tar:
        imagekit._add(tar, f"{sha(cfg)[7:]}.json", cfg)
        imagekit._add(tar, "l0.tar.gz", layer)
        imagekit._add(tar, "manifest.json", json.dumps(manifest).encode())
    inv = scan_image(path, name="x")
    assert len([p for p in inv.inventory.packages if p.ecosystem == "Debian:12"]) == 12
