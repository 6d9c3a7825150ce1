"""Build real image archives for the image tests: layer tars, docker-save tarballs, OCI layouts.

Nothing here talks to a registry or a docker daemon: the archives are written with
``tarfile`` and ``hashlib`` exactly as ``docker save`` (classic ``manifest.json`` format) and
the OCI image-spec v1.1 image layout describe them, with correct sha256 digests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data"
DEBIAN_ROOT = DATA / "inventory" / "debian12-root"
SITE = DATA / "images" / "site-packages"
NPM = DATA / "inventory" / "npm"
PY_SITE = "usr/local/lib/python3.11/site-packages"


@dataclass
class Member:
    """One tar member to write into a layer."""

    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    size: int | None = None
    """Declared size when it must differ from ``len(data)`` (hostile archives)."""
    devmajor: int = 0


def file(name: str, data: bytes | str) -> Member:
    """A regular file member."""
    return Member(name, data.encode() if isinstance(data, str) else data)


def folder(name: str) -> Member:
    """A directory member."""
    return Member(name, type=tarfile.DIRTYPE)


def symlink(name: str, target: str) -> Member:
    """A symlink member."""
    return Member(name, type=tarfile.SYMTYPE, linkname=target)


def hardlink(name: str, target: str) -> Member:
    """A hardlink member."""
    return Member(name, type=tarfile.LNKTYPE, linkname=target)


def layer_tar(members: list[Member]) -> bytes:
    """An uncompressed layer tar of ``members`` (PAX format, as BuildKit writes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type = m.type
            info.linkname = m.linkname
            info.mode = 0o755 if m.type == tarfile.DIRTYPE else 0o644
            info.mtime = 1_700_000_000
            info.devmajor = m.devmajor
            if m.type == tarfile.REGTYPE:
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def declared_size_layer(name: str, declared: int) -> bytes:
    """A layer whose one member's header claims ``declared`` bytes (the body is truncated)."""
    info = tarfile.TarInfo(name)
    info.size = declared
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    return header + b"\0" * 1024


def sha(data: bytes) -> str:
    """The ``sha256:<hex>`` digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Image:
    """An image to write: layers (uncompressed tars) and config facts."""

    layers: list[bytes]
    labels: dict[str, str] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    user: str = ""
    tag: str = "registry.example/app:1.0"

    def config(self, diff_ids: list[str] | None = None) -> bytes:
        """The image config JSON."""
        doc: dict[str, Any] = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": self.labels, "User": self.user, "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids or [sha(x) for x in self.layers]},
            "history": [{"created_by": h} for h in self.history],
        }
        return json.dumps(doc, sort_keys=True).encode()


def write_docker_archive(
    image: Image, path: Path, *, manifest: Any = None, config: bytes | None = None
) -> Path:
    """A classic ``docker save`` tarball (``<id>/layer.tar``, ``<config>.json``)."""
    cfg = config if config is not None else image.config()
    layer_names = [f"{sha(x)[7:]}/layer.tar" for x in image.layers]
    doc = (
        manifest
        if manifest is not None
        else [{"Config": f"{sha(cfg)[7:]}.json", "RepoTags": [image.tag], "Layers": layer_names}]
    )
    with tarfile.open(path, "w") as tar:
        _add(tar, f"{sha(cfg)[7:]}.json", cfg)
        for name, data in zip(layer_names, image.layers, strict=True):
            _add(tar, name, data)
        _add(tar, "manifest.json", json.dumps(doc).encode())
    return path


def write_oci_layout(image: Image, path: Path, *, compress: bool = True) -> tuple[Path, str]:
    """An OCI image layout directory; gzip layers when ``compress``. Returns (dir, manifest)."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = sha(data)
        (blobs / digest[7:]).write_bytes(data)
        return digest

    cfg = image.config()
    layer_descs = []
    for layer in image.layers:
        blob = gzip.compress(layer, mtime=0) if compress else layer
        layer_descs.append(
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar"
                + ("+gzip" if compress else ""),
                "digest": put(blob),
                "size": len(blob),
            }
        )
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": put(cfg),
            "size": len(cfg),
        },
        "layers": layer_descs,
    }
    raw = json.dumps(manifest).encode()
    digest = put(raw)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": len(raw),
                "annotations": {"org.opencontainers.image.ref.name": image.tag},
            }
        ],
    }
    (path / "index.json").write_text(json.dumps(index))
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return path, digest


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _status_without(*packages: str) -> str:
    """The real dpkg status subset with the stanzas of ``packages`` left out."""
    text = (DEBIAN_ROOT / "var" / "lib" / "dpkg" / "status").read_text()
    stanzas = [s for s in text.strip().split("\n\n") if s]
    keep = [s for s in stanzas if s.splitlines()[0].split(": ", 1)[1] not in packages]
    return "\n\n".join(keep) + "\n"


def app_image() -> Image:
    """The three-layer test image.

    Layer 0 (base): real Debian 12 os-release (``etc/os-release`` a relative symlink to
    ``usr/lib/os-release``, as on Debian), the real dpkg status subset without curl and
    libcurl4, an absolute symlink ``etc/localtime``. Layer 1 (app): the status with curl and
    libcurl4 added (``apt-get install curl``), two real dist-info folders (Jinja2 2.10,
    requests 2.19.1), a real npm lockfile under ``app/`` and another under ``srv/legacy``.
    Layer 2 (cleanup): the status without python3-yaml (``apt-get remove``), a whiteout of
    requests' dist-info, and an opaque ``srv/`` that hides the legacy lockfile.
    """
    os_release = (DEBIAN_ROOT / "etc" / "os-release").read_bytes()
    base = layer_tar(
        [
            folder("etc"),
            symlink("etc/os-release", "../usr/lib/os-release"),
            symlink("etc/localtime", "/usr/share/zoneinfo/Etc/UTC"),
            folder("usr"),
            folder("usr/lib"),
            file("usr/lib/os-release", os_release),
            folder("var/lib/dpkg"),
            file("var/lib/dpkg/status", _status_without("curl", "libcurl4")),
        ]
    )
    site = [folder(PY_SITE)]
    for dist in sorted(SITE.iterdir()):
        site.append(folder(f"{PY_SITE}/{dist.name}"))
        for f in sorted(dist.iterdir()):
            site.append(file(f"{PY_SITE}/{dist.name}/{f.name}", f.read_bytes()))
    app = layer_tar(
        [
            file("var/lib/dpkg/status", _status_without()),
            *site,
            file("usr/local/bin/python3.11", b"\x7fELF"),
            symlink("usr/local/bin/python3", "python3.11"),
            folder("app"),
            file("app/package-lock.json", (NPM / "package-lock-v3.json").read_bytes()),
            folder("srv/legacy"),
            file("srv/legacy/package-lock.json", (NPM / "package-lock-v2.json").read_bytes()),
        ]
    )
    cleanup = layer_tar(
        [
            file("var/lib/dpkg/status", _status_without("python3-yaml")),
            file(f"{PY_SITE}/.wh.requests-2.19.1.dist-info", b""),
            folder("srv"),
            file("srv/.wh..wh..opq", b""),
            file("srv/README", "legacy removed\n"),
        ]
    )
    return Image(
        layers=[base, app, cleanup],
        labels={
            "org.opencontainers.image.base.name": "docker.io/library/debian:12",
            "org.opencontainers.image.base.digest": sha(b"debian:12 manifest"),
        },
        history=[
            "ADD rootfs.tar.xz / # debian:12",
            "RUN apt-get install -y curl && pip install jinja2==2.10 requests==2.19.1",
            "RUN apt-get remove -y python3-yaml && pip uninstall -y requests",
        ],
    )
