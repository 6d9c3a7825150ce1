"""Container images: inventory of a ``docker save`` / ``podman save`` tarball or an OCI layout.

Three inputs are accepted, told apart by what they hold:

* **a docker archive** (``docker save``, ``podman save --format docker-archive``): a tar with a
  top-level ``manifest.json`` (``[{"Config": ..., "RepoTags": [...], "Layers": [...]}]``);
  Docker 25+ writes the same file next to an OCI layout inside the tar;
* **an OCI archive** (``podman save --format oci-archive``): a tar of an OCI image layout;
* **an OCI image layout directory** (``oci-layout``, ``index.json``, ``blobs/sha256/...``;
  OCI image-spec v1.1 "image-layout.md").

The image is never extracted. Each layer tar is read once, as a stream, in the order of the
manifest; its members are checked and recorded in an in-memory index of the merged
filesystem, applying the OCI whiteouts (image-spec "layer.md", section "Whiteouts"):
``.wh.<name>`` deletes ``<name>`` from the lower layers and ``.wh..wh..opq`` hides every
lower-layer entry of its directory. Only the package databases (dpkg ``status`` and
``status.d``, apk ``installed``, the rpm database folder, ``*.dist-info/METADATA`` and
``site-packages`` egg-info, ``package-lock.json`` and npm's hidden
``node_modules/.package-lock.json``, ``os-release``) are copied out, under names this
module makes, into a private temporary directory (``tempfile.mkdtemp``, removed at the end);
the existing collectors then read that directory.

Every blob is checked against its sha256 digest (manifest, config, layer blob, and the
uncompressed layer against the config's ``rootfs.diff_ids``). An archive is refused with an
:class:`~patchwarden.errors.InventoryFormatError` naming the archive and the member when a
member name is absolute or has a ``..`` part, a relative symlink or a hardlink points outside
the image root, a member is a device or FIFO, sizes exceed :class:`Limits`, or a manifest,
config or digest is wrong. An *absolute* symlink inside a layer (``/etc/localtime ->
/usr/share/zoneinfo/UTC``) is ordinary in real images and means a path inside the image; it
is resolved inside the image root, never on the scanning host.

Layer attribution: a dpkg/apk/rpm package is attributed to the layer from which its exact
record (name, version, architecture) has been present without a break up to the top layer
(the database is re-read after every layer that changes it); a Python distribution or npm
lockfile to the layer that holds its metadata file in the merged view. The attribution is
both in :attr:`ImageInventory.packages` (:class:`LayeredPackage`) and in each package's
``location``, spelled ``<layer diff_id>:<path in the image>`` (see :func:`layer_location`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

from patchwarden.errors import InventoryError, InventoryFormatError
from patchwarden.inventory.apk import ApkCollector
from patchwarden.inventory.dpkg import DpkgCollector
from patchwarden.inventory.npm import NpmCollector
from patchwarden.inventory.osrelease import read_os_release
from patchwarden.inventory.python import read_site_packages
from patchwarden.inventory.rpm import DB_DIRS, RpmCollector
from patchwarden.model import Asset, AssetId, AssetKind, InstalledPackage, Inventory

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_CHUNK = 1 << 20
_MAX_SYMLINK_HOPS = 40

MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
BASE_NAME_LABEL = "org.opencontainers.image.base.name"
"""OCI annotation/label naming the base image (image-spec "annotations.md")."""
BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"
"""OCI annotation/label giving the base image's manifest digest."""


class ImageFormat(StrEnum):
    """How the image was handed over."""

    DOCKER_ARCHIVE = "docker-archive"
    OCI_ARCHIVE = "oci-archive"
    OCI_LAYOUT = "oci-layout"


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Caps that turn a hostile or absurd archive into a clear error instead of a full disk."""

    max_layers: int = 256
    """Layers per image."""
    max_members: int = 1_000_000
    """Tar members per layer."""
    max_layer_bytes: int = 32 << 30
    """Uncompressed bytes per layer (a gzip bomb stops here)."""
    max_file_bytes: int = 512 << 20
    """Size of one member whose content is read (package databases, metadata, lockfiles)."""
    max_json_bytes: int = 16 << 20
    """Size of a manifest, index or config blob."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Layer:
    """One layer of an image, bottom first."""

    index: int
    """0 for the bottom layer."""
    digest: str
    """The blob digest as the manifest names it (compressed for gzip layers)."""
    diff_id: str
    """sha256 of the uncompressed layer tar (config ``rootfs.diff_ids``)."""
    media_type: str
    """The layer media type (``...tar`` or ``...tar+gzip``)."""
    created_by: str | None = None
    """The Dockerfile instruction that made it, from the config history, when recorded."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageInfo:
    """What an image is, read from its manifest and config."""

    source: Path
    """The tarball or layout directory."""
    format: ImageFormat
    """How it was handed over."""
    config_digest: str
    """sha256 of the config blob (the image id docker shows)."""
    manifest_digest: str | None
    """sha256 of the manifest (what ``image@sha256:...`` references); None for a classic
    docker archive, which carries no manifest blob."""
    repo_tags: tuple[str, ...]
    """Tags from the archive (``RepoTags`` or the ``org.opencontainers.image.ref.name``
    annotation)."""
    layers: tuple[Layer, ...]
    """Bottom first."""
    labels: dict[str, str] = field(default_factory=dict)
    """Config labels merged with manifest annotations (annotations win)."""
    os: str | None = None
    """Config ``os``."""
    architecture: str | None = None
    """Config ``architecture``."""
    user: str | None = None
    """Config ``config.User`` (who ``RUN`` executes as on top of this image)."""

    @property
    def base_name(self) -> str | None:
        """The base image reference from ``org.opencontainers.image.base.name``."""
        return self.labels.get(BASE_NAME_LABEL)

    @property
    def base_digest(self) -> str | None:
        """The base image digest from ``org.opencontainers.image.base.digest``."""
        return self.labels.get(BASE_DIGEST_LABEL)


@dataclass(frozen=True, slots=True, kw_only=True)
class LayeredPackage:
    """A package of an image with the layer that brought it."""

    package: InstalledPackage
    """The package (its ``location`` is :func:`layer_location` of layer and path)."""
    layer: int
    """Index of the layer into :attr:`ImageInfo.layers`."""
    path: str
    """The database or metadata file inside the image (``/var/lib/dpkg/status``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageInventory:
    """The inventory of an image and how it maps onto the image's layers."""

    image: ImageInfo
    """Manifest and config facts."""
    inventory: Inventory
    """The packages, as every other stage takes them."""
    packages: tuple[LayeredPackage, ...]
    """The same packages with their layer, in inventory order."""
    existing_paths: frozenset[str] = frozenset()
    """Interpreter paths that exist in the merged view (``/opt/venv/bin/python``); used to
    suggest how to upgrade a package in place."""


def layer_location(diff_id: str, path: str) -> str:
    """The ``location`` of an image package: ``<diff_id>:<path in the image>``.

    >>> layer_location("sha256:" + "a" * 64, "/var/lib/dpkg/status")[-28:]
    'aaaaaaa:/var/lib/dpkg/status'
    """
    return f"{diff_id}:{path}"


def split_layer_location(location: str | None) -> tuple[str, str] | None:
    """``(diff_id, path)`` of a :func:`layer_location`, or None for another location.

    >>> split_layer_location("sha256:" + "b" * 64 + ":/app/package-lock.json#node_modules/x")[1]
    '/app/package-lock.json#node_modules/x'
    >>> split_layer_location("/var/lib/dpkg/status") is None
    True
    """
    if location is None or not _DIGEST_RE.match(location[:71]) or location[71:72] != ":":
        return None
    return location[:71], location[72:]


def is_image_archive(path: Path) -> bool:
    """Whether ``path`` looks like an image this module reads (cheap test, no validation)."""
    if path.is_dir():
        return (path / "index.json").is_file() or (path / "manifest.json").is_file()
    return path.is_file() and tarfile.is_tarfile(path)


# --------------------------------------------------------------------------- safety helpers


def _member_path(name: str, *, where: str) -> str:
    """A tar member name as a clean relative POSIX path, or an error for a hostile one.

    >>> _member_path("./usr/bin/../lib", where="x") # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    InventoryFormatError: x: member './usr/bin/../lib': path has a '..' part
    >>> _member_path("./var/lib/dpkg/status", where="x")
    'var/lib/dpkg/status'
    """
    if "\x00" in name:
        raise InventoryFormatError(f"{where}: member {name!r}: path has a NUL byte")
    if name.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", name):
        raise InventoryFormatError(f"{where}: member {name!r}: absolute path")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InventoryFormatError(f"{where}: member {name!r}: path has a '..' part")
    return "/".join(parts)


def _lexical_join(base: str, target: str) -> str | None:
    """Resolve ``target`` relative to the folder ``base`` lexically; None when it escapes.

    >>> _lexical_join("etc", "../usr/lib/os-release")
    'usr/lib/os-release'
    >>> _lexical_join("etc", "../../../etc/passwd") is None
    True
    """
    parts = [p for p in base.split("/") if p]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _HashingReader(io.RawIOBase):
    """Reads a stream through, hashing and counting; stops at ``cap`` bytes."""

    def __init__(self, raw: _Readable, *, cap: int, what: str) -> None:
        self._raw = raw
        self._cap = cap
        self._what = what
        self.sha = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        data = self._raw.read(len(view))
        n = len(data)
        self.count += n
        if self.count > self._cap:
            raise InventoryFormatError(f"{self._what}: larger than the limit of {self._cap} bytes")
        self.sha.update(data)
        view[:n] = data
        return n

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        return f"sha256:{self.sha.hexdigest()}"


# --------------------------------------------------------------------------- blob sources


class _Source(ABC):
    """Named files of an image archive or layout directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether the archive has a file ``name``."""

    @abstractmethod
    def open(self, name: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        """The content of file ``name``."""

    @abstractmethod
    def size(self, name: str) -> int:
        """The size of file ``name``."""

    def close(self) -> None:  # noqa: B027 - only archives hold something to release
        """Release the archive."""


class _TarSource(_Source):
    def __init__(self, path: Path, limits: Limits) -> None:
        super().__init__(path)
        try:
            self._tar = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed by close()
            members = self._tar.getmembers()
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise InventoryFormatError(f"{path}: not a readable tar archive: {exc}") from exc
        self._members: dict[str, tarfile.TarInfo] = {}
        try:
            self._check(members)
        except InventoryFormatError:
            self._tar.close()
            raise
        self.limits = limits

    def _check(self, members: list[tarfile.TarInfo]) -> None:
        path = self.path
        for m in members:
            name = _member_path(m.name, where=str(path))
            if m.ischr() or m.isblk() or m.isfifo():
                raise InventoryFormatError(
                    f"{path}: member {m.name!r}: device or FIFO files are not allowed"
                )
            if m.issym() or m.islnk():
                base = str(PurePosixPath(name).parent) if m.issym() else ""
                if m.linkname.startswith("/") or _lexical_join(base, m.linkname) is None:
                    raise InventoryFormatError(
                        f"{path}: member {m.name!r}: link target {m.linkname!r} points "
                        "outside the archive"
                    )
            self._members[name] = m

    def _resolve(self, name: str) -> tarfile.TarInfo:
        clean = _member_path(name, where=str(self.path))
        for _ in range(_MAX_SYMLINK_HOPS):
            m = self._members.get(clean)
            if m is None:
                raise InventoryFormatError(f"{self.path}: member {name!r} is missing")
            if m.issym():
                joined = _lexical_join(str(PurePosixPath(clean).parent), m.linkname)
            elif m.islnk():
                joined = _lexical_join("", m.linkname)
            else:
                if not m.isfile():
                    raise InventoryFormatError(f"{self.path}: member {name!r} is not a file")
                return m
            assert joined is not None  # checked when the archive was opened
            clean = joined
        raise InventoryFormatError(f"{self.path}: member {name!r}: too many levels of links")

    def exists(self, name: str) -> bool:
        try:
            return _member_path(name, where=str(self.path)) in self._members
        except InventoryFormatError:
            return False

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        f = self._tar.extractfile(self._resolve(name))
        if f is None:  # pragma: no cover - _resolve returns regular files only
            raise InventoryFormatError(f"{self.path}: member {name!r} cannot be read")
        with f:
            yield f

    def size(self, name: str) -> int:
        return self._resolve(name).size

    def close(self) -> None:
        self._tar.close()


class _DirSource(_Source):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._root = path.resolve()

    def _file(self, name: str) -> Path:
        clean = _member_path(name, where=str(self.path))
        target = (self._root / clean).resolve()
        if not target.is_relative_to(self._root):
            raise InventoryFormatError(
                f"{self.path}: {name!r} resolves outside the layout directory"
            )
        if not target.is_file():
            raise InventoryFormatError(f"{self.path}: {name!r} is missing or not a file")
        return target

    def exists(self, name: str) -> bool:
        try:
            self._file(name)
        except InventoryFormatError:
            return False
        return True

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        target = self._file(name)
        try:
            f = target.open("rb")
        except OSError as exc:
            raise InventoryFormatError(f"{self.path}: cannot read {name!r}: {exc}") from exc
        with f:
            yield f

    def size(self, name: str) -> int:
        return self._file(name).stat().st_size


def _blob_name(digest: object, *, where: str) -> str:
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise InventoryFormatError(f"{where}: digest {digest!r} is not 'sha256:<64 hex>'")
    return f"blobs/sha256/{digest.removeprefix('sha256:')}"


def _read_json(source: _Source, name: str, limits: Limits, digest: str | None = None) -> Any:
    where = f"{source.path}: {name}"
    if source.size(name) > limits.max_json_bytes:
        raise InventoryFormatError(f"{where}: larger than {limits.max_json_bytes} bytes")
    with source.open(name) as f:
        data = f.read(limits.max_json_bytes + 1)
    if digest is not None:
        actual = f"sha256:{hashlib.sha256(data).hexdigest()}"
        if actual != digest:
            raise InventoryFormatError(f"{where}: content has digest {actual}, expected {digest}")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InventoryFormatError(f"{where}: not valid JSON: {exc}") from exc


def _field(doc: Any, key: str, kind: type, *, where: str) -> Any:
    if not isinstance(doc, dict):
        raise InventoryFormatError(f"{where}: expected a JSON object")
    value = doc.get(key)
    if not isinstance(value, kind):
        raise InventoryFormatError(
            f"{where}: field {key!r} is missing or not a {kind.__name__}: {value!r}"
        )
    return value


# --------------------------------------------------------------------------- manifest reading


@dataclass(frozen=True, slots=True, kw_only=True)
class _Plan:
    info: ImageInfo
    blobs: tuple[str, ...]
    """Archive-relative name of each layer blob, bottom first."""


def _history(config: dict[str, Any]) -> list[str | None]:
    history = config.get("history")
    if not isinstance(history, list):
        return []
    out: list[str | None] = []
    for h in history:
        if isinstance(h, dict) and not h.get("empty_layer"):
            created = h.get("created_by")
            out.append(created if isinstance(created, str) else None)
    return out


def _config_facts(
    config: Any, where: str, limits: Limits
) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    rootfs = _field(config, "rootfs", dict, where=where)
    diff_ids = _field(rootfs, "diff_ids", list, where=f"{where}: rootfs")
    for d in diff_ids:
        _blob_name(d, where=f"{where}: rootfs.diff_ids")
    if len(diff_ids) > limits.max_layers:
        raise InventoryFormatError(f"{where}: {len(diff_ids)} layers exceed {limits.max_layers}")
    inner = config.get("config") or {}
    labels_raw = inner.get("Labels") if isinstance(inner, dict) else None
    labels = {str(k): str(v) for k, v in labels_raw.items()} if isinstance(labels_raw, dict) else {}
    return diff_ids, labels, inner if isinstance(inner, dict) else {}


def _docker_plan(source: _Source, limits: Limits) -> _Plan:
    manifest = _read_json(source, "manifest.json", limits)
    where = f"{source.path}: manifest.json"
    if not isinstance(manifest, list) or not manifest:
        raise InventoryFormatError(f"{where}: expected a non-empty list of images")
    if len(manifest) > 1:
        raise InventoryFormatError(
            f"{where}: holds {len(manifest)} images; save one image per archive"
        )
    entry = manifest[0]
    config_name = _member_path(_field(entry, "Config", str, where=where), where=where)
    layer_names = _field(entry, "Layers", list, where=where)
    blobs = tuple(
        _member_path(n if isinstance(n, str) else "", where=f"{where}: Layers") for n in layer_names
    )
    if not all(blobs):
        raise InventoryFormatError(f"{where}: field 'Layers' has an empty or non-string entry")
    tags = tuple(t for t in entry.get("RepoTags") or [] if isinstance(t, str))
    raw = b""
    with source.open(config_name) as f:
        raw = f.read(limits.max_json_bytes + 1)
    if len(raw) > limits.max_json_bytes:
        raise InventoryFormatError(f"{source.path}: {config_name}: config too large")
    config_digest = f"sha256:{hashlib.sha256(raw).hexdigest()}"
    stem = PurePosixPath(config_name).name.removesuffix(".json")
    if re.fullmatch(r"[0-9a-f]{64}", stem) and f"sha256:{stem}" != config_digest:
        raise InventoryFormatError(
            f"{source.path}: {config_name}: content has digest {config_digest}, "
            f"the name says sha256:{stem}"
        )
    try:
        config = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InventoryFormatError(f"{source.path}: {config_name}: not valid JSON: {exc}") from exc
    cwhere = f"{source.path}: {config_name}"
    diff_ids, labels, inner = _config_facts(config, cwhere, limits)
    if len(diff_ids) != len(blobs):
        raise InventoryFormatError(
            f"{where}: {len(blobs)} layers, but the config lists {len(diff_ids)} diff_ids"
        )
    manifest_digest: str | None = None
    if source.exists("index.json"):
        # Docker 25+ writes an OCI layout next to manifest.json: take its manifest digest.
        with contextlib.suppress(InventoryFormatError):
            index = _read_json(source, "index.json", limits)
            manifests = index.get("manifests") if isinstance(index, dict) else None
            if isinstance(manifests, list) and len(manifests) == 1:
                d = manifests[0].get("digest") if isinstance(manifests[0], dict) else None
                manifest_digest = d if isinstance(d, str) and _DIGEST_RE.match(d) else None
    history = _history(config)
    layers = tuple(
        Layer(
            index=i,
            digest=diff_ids[i],
            diff_id=diff_ids[i],
            media_type="application/vnd.docker.image.rootfs.diff.tar",
            created_by=history[i] if len(history) == len(blobs) else None,
        )
        for i in range(len(blobs))
    )
    info = ImageInfo(
        source=source.path,
        format=ImageFormat.DOCKER_ARCHIVE,
        config_digest=config_digest,
        manifest_digest=manifest_digest,
        repo_tags=tags,
        layers=layers,
        labels=labels,
        os=config.get("os") if isinstance(config.get("os"), str) else None,
        architecture=config.get("architecture")
        if isinstance(config.get("architecture"), str)
        else None,
        user=inner.get("User") or None,
    )
    return _Plan(info=info, blobs=blobs)


def _oci_plan(source: _Source, fmt: ImageFormat, limits: Limits, platform: str | None) -> _Plan:
    if source.exists("oci-layout"):
        layout = _read_json(source, "oci-layout", limits)
        version = layout.get("imageLayoutVersion") if isinstance(layout, dict) else None
        if version != "1.0.0":
            raise InventoryFormatError(
                f"{source.path}: oci-layout: field 'imageLayoutVersion' is {version!r}, "
                "expected '1.0.0'"
            )
    index = _read_json(source, "index.json", limits)
    where = f"{source.path}: index.json"
    tags: list[str] = []
    for _ in range(4):  # an index may point at a nested index (multi-platform images)
        manifests = _field(index, "manifests", list, where=where)
        candidates = [m for m in manifests if isinstance(m, dict)]
        if platform is not None:
            candidates = [m for m in candidates if _platform(m) in (platform, None)]
        if len(candidates) != 1:
            names = sorted({_platform(m) or "?" for m in candidates})
            raise InventoryFormatError(
                f"{where}: lists {len(candidates)} manifests ({', '.join(names) or 'none'}); "
                "choose one platform"
            )
        desc = candidates[0]
        ann = desc.get("annotations") if isinstance(desc.get("annotations"), dict) else {}
        ref = ann.get("org.opencontainers.image.ref.name") if ann else None
        if isinstance(ref, str):
            tags.append(ref)
        digest = _field(desc, "digest", str, where=where)
        doc = _read_json(source, _blob_name(digest, where=where), limits, digest)
        media = desc.get("mediaType") or (doc.get("mediaType") if isinstance(doc, dict) else None)
        if media in (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST):
            index, where = doc, f"{source.path}: blob {digest}"
            continue
        break
    else:
        raise InventoryFormatError(f"{where}: nested image indexes are too deep")
    mwhere = f"{source.path}: manifest {digest}"
    config_desc = _field(doc, "config", dict, where=mwhere)
    config_digest = _field(config_desc, "digest", str, where=f"{mwhere}: config")
    config = _read_json(source, _blob_name(config_digest, where=mwhere), limits, config_digest)
    diff_ids, labels, inner = _config_facts(
        config, f"{source.path}: config {config_digest}", limits
    )
    layer_descs = _field(doc, "layers", list, where=mwhere)
    if len(layer_descs) != len(diff_ids):
        raise InventoryFormatError(
            f"{mwhere}: {len(layer_descs)} layers, but the config lists {len(diff_ids)} diff_ids"
        )
    history = _history(config)
    layers: list[Layer] = []
    blobs: list[str] = []
    for i, ld in enumerate(layer_descs):
        lwhere = f"{mwhere}: layers[{i}]"
        ldigest = _field(ld, "digest", str, where=lwhere)
        blobs.append(_blob_name(ldigest, where=lwhere))
        layers.append(
            Layer(
                index=i,
                digest=ldigest,
                diff_id=diff_ids[i],
                media_type=_field(ld, "mediaType", str, where=lwhere),
                created_by=history[i] if len(history) == len(layer_descs) else None,
            )
        )
    annotations = doc.get("annotations") if isinstance(doc.get("annotations"), dict) else {}
    merged = {**labels, **{str(k): str(v) for k, v in (annotations or {}).items()}}
    info = ImageInfo(
        source=source.path,
        format=fmt,
        config_digest=config_digest,
        manifest_digest=digest,
        repo_tags=tuple(tags),
        layers=tuple(layers),
        labels=merged,
        os=config.get("os") if isinstance(config.get("os"), str) else None,
        architecture=config.get("architecture")
        if isinstance(config.get("architecture"), str)
        else None,
        user=inner.get("User") or None,
    )
    return _Plan(info=info, blobs=tuple(blobs))


def _platform(desc: dict[str, Any]) -> str | None:
    p = desc.get("platform")
    if not isinstance(p, dict):
        return None
    return f"{p.get('os')}/{p.get('architecture')}"


# --------------------------------------------------------------------------- the merged view


class _Kind(StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"


@dataclass(frozen=True, slots=True)
class _Entry:
    layer: int
    kind: _Kind
    target: str = ""
    """Symlink target as written in the layer."""
    blob: Path | None = None
    """Our copy of the content, for the files the collectors read."""


_DB_PATTERNS = (
    re.compile(r"^var/lib/dpkg/status$"),
    re.compile(r"^var/lib/dpkg/status\.d/[^/]+$"),
    re.compile(r"^lib/apk/db/installed$"),
    re.compile(r"^(?:" + "|".join(re.escape(d) for d in DB_DIRS) + r")/[^/]+$"),
)
_META_PATTERNS = (
    re.compile(r"^(?:etc|usr/lib)/os-release$"),
    re.compile(r"^(?:.+/)?[^/]+\.dist-info/METADATA$"),
    re.compile(r"^.+/(?:site|dist)-packages/[^/]+\.egg-info(?:/PKG-INFO)?$"),
    re.compile(r"^(?:.+/)?package-lock\.json$"),
    re.compile(r"^(?:.+/)?node_modules/\.package-lock\.json$"),
)
_PYTHON_BIN = re.compile(r"^(?:.+/)?bin/python3?$")


def _wanted(path: str) -> bool:
    return any(p.match(path) for p in _DB_PATTERNS) or any(p.match(path) for p in _META_PATTERNS)


def _is_db(path: str) -> bool:
    return any(p.match(path) for p in _DB_PATTERNS)


class _View:
    """The merged filesystem: path -> entry, with whiteouts applied layer by layer."""

    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}

    def _remove_tree(self, path: str, *, below_layer: int, keep_self: bool = False) -> bool:
        prefix = path + "/" if path else ""
        doomed = [
            p
            for p, e in self.entries.items()
            if e.layer < below_layer
            and ((p == path and not keep_self) or (prefix and p.startswith(prefix)) or not path)
        ]
        for p in doomed:
            del self.entries[p]
        return bool(doomed)

    def apply(
        self, index: int, whiteouts: list[str], opaque: list[str], adds: list[tuple[str, _Entry]]
    ) -> set[str]:
        """Apply one layer; return the paths it touched (added or removed)."""
        touched: set[str] = set()
        before = set(self.entries)
        for d in opaque:
            self._remove_tree(d, below_layer=index, keep_self=True)
        for w in whiteouts:
            self._remove_tree(w, below_layer=index)
        for path, entry in adds:
            old = self.entries.get(path)
            if old is not None and old.kind is _Kind.DIR and entry.kind is not _Kind.DIR:
                self._remove_tree(path, below_layer=index + 1, keep_self=True)
            self.entries[path] = entry
            touched.add(path)
        touched |= before - set(self.entries)
        return touched

    def resolve(self, path: str) -> tuple[str, _Entry] | None:
        """Follow symlinks inside the image root (absolute targets mean the image root)."""
        parts = path.split("/")
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            current = "/".join([*done, part])
            entry = self.entries.get(current)
            if entry is None:
                if not parts:
                    return None
                done.append(part)  # a folder the layer tars never listed: implicit
                continue
            if entry.kind is _Kind.SYMLINK:
                hops += 1
                if hops > _MAX_SYMLINK_HOPS:
                    return None
                base = "" if entry.target.startswith("/") else "/".join(done)
                joined = _lexical_join(base, entry.target)
                if joined is None:
                    return None
                parts = [p for p in joined.split("/") if p] + parts
                done = []
                continue
            done.append(part)
        final = "/".join(done)
        entry = self.entries.get(final)
        return (final, entry) if entry is not None else None


# --------------------------------------------------------------------------- layer reading


def _open_layer(
    raw: IO[bytes], layer: Layer, where: str, limits: Limits
) -> tuple[_HashingReader, _HashingReader, tarfile.TarFile]:
    outer = _HashingReader(raw, cap=limits.max_layer_bytes * 4, what=where)
    buffered = io.BufferedReader(outer, _CHUNK)
    magic = buffered.peek(4)[:4]
    if magic[:2] == b"\x1f\x8b":
        stream: _Readable = gzip.GzipFile(fileobj=buffered, mode="rb")
    elif magic == b"\x28\xb5\x2f\xfd":
        raise InventoryFormatError(
            f"{where}: zstd-compressed layers ({layer.media_type}) are not supported; "
            "save the image uncompressed or with gzip"
        )
    else:
        stream = buffered
    inner = _HashingReader(stream, cap=limits.max_layer_bytes, what=f"{where} (uncompressed)")
    try:
        tar = tarfile.open(fileobj=io.BufferedReader(inner, _CHUNK), mode="r|")  # noqa: SIM115
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InventoryFormatError(f"{where}: not a tar layer: {exc}") from exc
    return outer, inner, tar


def _read_layer(
    source: _Source,
    blob: str,
    layer: Layer,
    limits: Limits,
    scratch: Path,
) -> tuple[list[str], list[str], list[tuple[str, _Entry]]]:
    where = f"{source.path}: layer {layer.index} ({blob})"
    whiteouts: list[str] = []
    opaque: list[str] = []
    adds: dict[str, _Entry] = {}
    seen: set[str] = set()
    with source.open(blob) as raw:
        outer, inner, tar = _open_layer(raw, layer, where, limits)
        try:
            count = 0
            for m in tar:
                count += 1
                if count > limits.max_members:
                    raise InventoryFormatError(f"{where}: more than {limits.max_members} members")
                path = _member_path(m.name, where=where)
                mwhere = f"{where}: member {m.name!r}"
                if not path:
                    continue  # the "./" root entry
                parent, _, name = path.rpartition("/")
                if m.ischr() or m.isblk() or m.isfifo():
                    raise InventoryFormatError(f"{mwhere}: device or FIFO files are not allowed")
                if name == _OPAQUE:
                    opaque.append(parent)
                    continue
                if name.startswith(_WHITEOUT):
                    target = name[len(_WHITEOUT) :]
                    if not target or target in (".", ".."):
                        raise InventoryFormatError(f"{mwhere}: malformed whiteout")
                    whiteouts.append(f"{parent}/{target}" if parent else target)
                    continue
                if m.size > limits.max_layer_bytes:
                    raise InventoryFormatError(
                        f"{mwhere}: declares {m.size} bytes, over the limit of "
                        f"{limits.max_layer_bytes}"
                    )
                if m.issym():
                    if not m.linkname.startswith("/") and _lexical_join(parent, m.linkname) is None:
                        raise InventoryFormatError(
                            f"{mwhere}: symlink target {m.linkname!r} escapes the image root"
                        )
                    adds[path] = _Entry(layer.index, _Kind.SYMLINK, target=m.linkname)
                elif m.islnk():
                    target_path = _member_path(m.linkname, where=f"{mwhere} (hardlink target)")
                    if target_path not in seen:
                        raise InventoryFormatError(
                            f"{mwhere}: hardlink target {m.linkname!r} is not an earlier "
                            "member of this layer"
                        )
                    linked = adds.get(target_path)
                    if linked is None or linked.kind is not _Kind.FILE:
                        raise InventoryFormatError(
                            f"{mwhere}: hardlink target {m.linkname!r} is not a regular file"
                        )
                    if _wanted(path) and linked.blob is None:
                        raise InventoryFormatError(
                            f"{mwhere}: package database is a hardlink to {m.linkname!r}, "
                            "whose content was not kept"
                        )
                    adds[path] = _Entry(layer.index, _Kind.FILE, blob=linked.blob)
                elif m.isdir():
                    adds[path] = _Entry(layer.index, _Kind.DIR)
                elif m.isfile():
                    blob_path: Path | None = None
                    if _wanted(path):
                        if m.size > limits.max_file_bytes:
                            raise InventoryFormatError(
                                f"{mwhere}: {m.size} bytes, over the limit of "
                                f"{limits.max_file_bytes} for a package database"
                            )
                        blob_path = scratch / f"l{layer.index}-{count}"
                        _copy_member(tar, m, blob_path, limits.max_file_bytes, mwhere)
                    adds[path] = _Entry(layer.index, _Kind.FILE, blob=blob_path)
                else:
                    raise InventoryFormatError(f"{mwhere}: unsupported member type {m.type!r}")
                seen.add(path)
            inner.drain()
            outer.drain()
        except (tarfile.TarError, EOFError, OSError, zlib_error()) as exc:
            raise InventoryFormatError(f"{where}: corrupt layer: {exc}") from exc
        finally:
            tar.close()
    if inner.digest != layer.diff_id:
        raise InventoryFormatError(
            f"{where}: uncompressed content has digest {inner.digest}, "
            f"the config's diff_id is {layer.diff_id}"
        )
    if layer.digest not in (layer.diff_id, outer.digest):
        raise InventoryFormatError(
            f"{where}: blob has digest {outer.digest}, the manifest says {layer.digest}"
        )
    return whiteouts, opaque, list(adds.items())


def zlib_error() -> type[Exception]:
    """The exception zlib raises on corrupt gzip data (kept in one place)."""
    import zlib

    return zlib.error


def _copy_member(
    tar: tarfile.TarFile, m: tarfile.TarInfo, dest: Path, cap: int, where: str
) -> None:
    src = tar.extractfile(m)
    if src is None:  # pragma: no cover - regular files always have content
        raise InventoryFormatError(f"{where}: cannot read member")
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    written = 0
    with src, os.fdopen(fd, "wb") as out:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > cap:
                raise InventoryFormatError(f"{where}: content over the limit of {cap} bytes")
            out.write(chunk)


def _materialize(view: _View, dest: Path, keep: Callable[[str], bool]) -> None:
    """Write the kept files of the view under ``dest`` (regular files only, our names)."""
    dest_root = dest.resolve()
    for path in sorted(view.entries):
        if not keep(path):
            continue
        found = view.resolve(path)
        if found is None or found[1].kind is not _Kind.FILE or found[1].blob is None:
            continue
        target = dest_root.joinpath(*path.split("/"))
        # Paths come from _member_path (no '..', not absolute) and every folder below dest
        # is made here, so this holds; checked anyway because it is the security boundary.
        if not target.resolve().is_relative_to(dest_root):
            raise InventoryError(f"internal error: {path!r} would leave the scratch directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.parent.is_symlink() or target.exists():
            continue
        shutil.copyfile(found[1].blob, target, follow_symlinks=False)


# --------------------------------------------------------------------------- collecting


def _pkg_identity(pkg: InstalledPackage) -> InstalledPackage:
    return replace(pkg, location=None)


def _collect_dbs(root: Path, distro: str | None) -> list[tuple[InstalledPackage, str]]:
    """OS packages under a materialized root, with the database path inside the image."""
    out: list[tuple[InstalledPackage, str]] = []
    dpkg, apk, rpm = DpkgCollector(), ApkCollector(), RpmCollector()
    for collector in (dpkg, apk, rpm):
        for found in collector.locate(root):
            for pkg in collector.collect(found, distro=distro):
                out.append((pkg, "/" + found.relative_to(root).as_posix()))
    status_d = root / "var" / "lib" / "dpkg" / "status.d"
    if status_d.is_dir():  # distroless: one status stanza file per package
        for f in sorted(status_d.iterdir()):
            if f.is_file() and not f.name.endswith(".md5sums"):
                for pkg in dpkg.collect(f, distro=distro):
                    out.append((pkg, "/" + f.relative_to(root).as_posix()))
    return out


def _rehome(pkg: InstalledPackage, root: Path, diff_id: str, path: str) -> InstalledPackage:
    loc = pkg.location or ""
    prefix = str(root)
    inner = loc[len(prefix) :] if loc.startswith(prefix) else path
    return replace(pkg, location=layer_location(diff_id, inner or path))


def scan_image(
    path: Path,
    *,
    name: str | None = None,
    asset: Asset | None = None,
    platform: str | None = None,
    limits: Limits | None = None,
) -> ImageInventory:
    """Inventory of the image archive or OCI layout at ``path`` (see the module doc).

    ``asset`` is used as given; otherwise an image asset is named ``name``, else the first
    repository tag, else the file name. ``platform`` (``linux/amd64``) picks one manifest of a
    multi-platform index.
    """
    limits = limits or Limits()
    source = _open_source(path, limits)
    try:
        if source.exists("manifest.json"):
            plan = _docker_plan(source, limits)
        elif source.exists("index.json"):
            fmt = ImageFormat.OCI_LAYOUT if path.is_dir() else ImageFormat.OCI_ARCHIVE
            plan = _oci_plan(source, fmt, limits, platform)
        else:
            raise InventoryFormatError(
                f"{path}: neither manifest.json (docker save) nor index.json (OCI layout) found"
            )
        with tempfile.TemporaryDirectory(prefix="patchwarden-image-") as tmp:
            return _scan_layers(source, plan, Path(tmp), limits, name=name, asset=asset)
    finally:
        source.close()


def _open_source(path: Path, limits: Limits) -> _Source:
    if path.is_dir():
        return _DirSource(path)
    if not path.is_file():
        raise InventoryFormatError(f"{path}: no such image archive or layout directory")
    return _TarSource(path, limits)


def _scan_layers(
    source: _Source,
    plan: _Plan,
    tmp: Path,
    limits: Limits,
    *,
    name: str | None,
    asset: Asset | None,
) -> ImageInventory:
    info = plan.info
    scratch = tmp / "blobs"
    scratch.mkdir()
    view = _View()
    os_first_layer: dict[InstalledPackage, int] = {}
    db_states: list[tuple[int, Path]] = []
    for layer, blob in zip(info.layers, plan.blobs, strict=True):
        whiteouts, opaque, adds = _read_layer(source, blob, layer, limits, scratch)
        touched = view.apply(layer.index, whiteouts, opaque, adds)
        if any(_is_db(p) for p in touched):
            state = tmp / f"state-{layer.index}"
            _materialize(view, state, _is_db)
            db_states.append((layer.index, state))
    root = tmp / "root"
    root.mkdir()
    _materialize(view, root, _wanted)
    # os-release may be a symlink (Debian: etc/os-release -> ../usr/lib/os-release).
    for rel in ("etc/os-release", "usr/lib/os-release"):
        found = view.resolve(rel)
        target = root / rel
        if found is not None and found[1].blob is not None and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(found[1].blob, target)
    distro = read_os_release(root)

    # OS packages: the layer from which the exact record is present without a break.
    for index, state in db_states:
        present = {_pkg_identity(p) for p, _ in _collect_dbs(state, distro)}
        os_first_layer = {p: os_first_layer.get(p, index) for p in present}
    layered: list[LayeredPackage] = []
    sources: list[str] = []
    for pkg, where in _collect_dbs(root, distro):
        idx = os_first_layer.get(_pkg_identity(pkg), info.layers[-1].index if info.layers else 0)
        diff_id = info.layers[idx].diff_id
        layered.append(
            LayeredPackage(package=_rehome(pkg, root, diff_id, where), layer=idx, path=where)
        )
        sources.append(where)

    # Python distributions: the layer of their metadata file.
    folders = sorted(
        {
            "/".join(p.split("/")[:-2])
            for p in view.entries
            if p.endswith((".dist-info/METADATA", ".egg-info/PKG-INFO"))
        }
        | {
            p.rpartition("/")[0]
            for p, e in view.entries.items()
            if p.endswith(".egg-info") and e.kind is _Kind.FILE
        }
    )
    for folder in folders:
        local = root.joinpath(*folder.split("/")) if folder else root
        if not local.is_dir():
            continue
        for pkg in read_site_packages(local):
            meta_dir = (pkg.location or "")[len(str(root)) :].lstrip("/")
            entry = (
                view.entries.get(f"{meta_dir}/METADATA")
                or view.entries.get(f"{meta_dir}/PKG-INFO")
                or view.entries.get(meta_dir)
            )
            idx = entry.layer if entry is not None else info.layers[-1].index
            diff_id = info.layers[idx].diff_id
            where = "/" + meta_dir
            layered.append(
                LayeredPackage(package=_rehome(pkg, root, diff_id, where), layer=idx, path=where)
            )
        sources.append("/" + folder)

    # npm lockfiles: the hidden lockfile (what is installed) wins over the project lockfile.
    locks = sorted(
        p for p in view.entries if p.endswith("package-lock.json") and (root / p).is_file()
    )
    hidden = {
        p.removesuffix("node_modules/.package-lock.json")
        for p in locks
        if p.endswith(".package-lock.json")
    }
    npm = NpmCollector()
    for lock in locks:
        if not lock.endswith(".package-lock.json"):
            project = lock.removesuffix("package-lock.json")
            if project in hidden or "/node_modules/" in f"/{project}":
                continue
        entry = view.entries[lock]
        diff_id = info.layers[entry.layer].diff_id
        for pkg in npm.collect(root / lock):
            layered.append(
                LayeredPackage(
                    package=_rehome(pkg, root, diff_id, "/" + lock),
                    layer=entry.layer,
                    path="/" + lock,
                )
            )
        sources.append("/" + lock)

    unique: dict[InstalledPackage, LayeredPackage] = {}
    for lp in layered:
        unique.setdefault(lp.package, lp)
    tag = info.repo_tags[0] if info.repo_tags else None
    the_asset = asset or Asset(id=AssetId(name or tag or source.path.name), kind=AssetKind.IMAGE)
    inventory = Inventory(
        asset=the_asset,
        packages=tuple(unique),
        distro=distro,
        source=f"image:{source.path}@{info.manifest_digest or info.config_digest}",
        collected_at=dt.datetime.now(dt.UTC),
    )
    pythons = frozenset(
        "/" + p
        for p, e in view.entries.items()
        if _PYTHON_BIN.match(p) and e.kind in (_Kind.FILE, _Kind.SYMLINK)
    )
    del sources
    return ImageInventory(
        image=info, inventory=inventory, packages=tuple(unique.values()), existing_paths=pythons
    )
