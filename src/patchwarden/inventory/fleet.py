"""The fleet file: which assets exist, what they matter, and where their packages come from.

A YAML file (one mapping with ``defaults`` and ``assets``)::

    defaults:                    # optional; every asset field except name and inventory
      environment: prod          # values here apply to every asset that does not set them
      owner: team-ops            # (lists such as tags are replaced, not merged)
    assets:
      - name: web-01             # required, unique across the file
        kind: host               # host | image | environment | sbom        (default host)
        environment: prod        # prod | staging | dev                     (default prod)
        criticality: 4           # integer 1..5                             (default 3)
        internet_exposed: true   # true | false                             (default false)
        data_sensitivity: 3      # integer 1..5                             (default 3)
        service: web             # replicas of one service share this name  (optional)
        owner: team-web          # (optional)
        tags: [waf]              # free tags, e.g. compensating controls    (optional)
        maintenance_window: sun-night   # a window named in the policy file (optional)
        inventory:               # required: at least one source below
          root: roots/web-01     # a mounted filesystem root: os-release + dpkg/rpm/apk + python
          dpkg_status: path      # a dpkg status file or saved dpkg-query listing
          rpm_list: path         # a saved 'rpm -qa --queryformat ...' listing, or an rpm db dir
          apk_installed: path    # an Alpine lib/apk/db/installed file
          python: path           # a site-packages folder or a python interpreter
          npm_lock: path         # a package-lock.json
          sbom: path             # a CycloneDX or SPDX JSON SBOM
          image: path            # a docker/podman save tarball or an OCI layout folder
          distro: "Debian:12"    # the OS ecosystem when there is no os-release to read
        connection:              # optional: how `patchwarden rollout` reaches the asset
          backend: ssh           # ssh | local | simulate | ansible          (default ssh)
          host: 10.0.0.5         # address (default: the asset name)
          port: 22               # (default 22)
          user: deploy           # login user; sudo -n when not root        (default root)
          identity_file: ~/.ssh/id_ed25519   # private key (default: agent and ~/.ssh/id_*)
          known_hosts: ~/.ssh/known_hosts    # host keys are always checked against it
          become: auto           # auto | always | never                    (default auto)
                                 # auto: sudo -n for root's commands unless user is root;
                                 # always: pip installs too (an environment owned by root)
          python: /opt/app/venv/bin/python  # whose pip manages PyPI packages (default python3)
          health:                # checks that must pass after a change
            - command: [systemctl, is-active, nginx]   # or {http: URL, status: 200},
            - tcp: "127.0.0.1:443"                     # {tcp: "HOST:PORT"}, {systemd: UNIT};
              timeout: 30                              # each may retry for `timeout` s

Paths are relative to the fleet file's folder (absolute paths are kept). Every problem in the
file is reported at once (:class:`~patchwarden.errors.FleetFileError`), each with the file,
line, asset and field: YAML syntax errors, duplicate keys, unknown fields, wrong types,
values out of range, duplicate asset names, missing inventory files, unknown distros.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from patchwarden.ecosystems import Ecosystem
from patchwarden.errors import FleetFileError, Problem, UnknownEcosystem
from patchwarden.inventory.oci import is_image_archive
from patchwarden.model import Asset, AssetId, AssetKind, Environment, source_digest
from patchwarden.yamlfile import duplicate_keys, load_yaml, node_at, node_line, reason

_Score = Annotated[StrictInt, Field(ge=1, le=5)]
_Text = Annotated[StrictStr, Field(min_length=1)]

SOURCE_FIELDS = (
    "root",
    "dpkg_status",
    "rpm_list",
    "apk_installed",
    "python",
    "npm_lock",
    "sbom",
    "image",
)
"""The inventory source fields, in the order they are collected."""


class _InventorySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    root: _Text | None = None
    dpkg_status: _Text | None = None
    rpm_list: _Text | None = None
    apk_installed: _Text | None = None
    python: _Text | None = None
    npm_lock: _Text | None = None
    sbom: _Text | None = None
    image: _Text | None = None
    distro: _Text | None = None


class _HealthSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: list[_Text] | _Text | None = None
    become: StrictBool = False
    http: _Text | None = None
    status: Annotated[StrictInt, Field(ge=100, le=599)] = 200
    tcp: Annotated[StrictStr, Field(pattern=r"^[^\s:]+:\d{1,5}$")] | None = None
    systemd: _Text | None = None
    timeout: Annotated[float, Field(ge=0, le=3600)] = 0.0

    @model_validator(mode="after")
    def _one_kind(self) -> _HealthSpec:
        kinds = [k for k in ("command", "http", "tcp", "systemd") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a health check needs exactly one of command, http, tcp, systemd"
                + (f" (got {', '.join(kinds)})" if kinds else "")
            )
        return self


class _ConnectionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backend: Literal["ssh", "local", "simulate", "ansible"] = "ssh"
    host: _Text | None = None
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = 22
    user: _Text = "root"
    identity_file: _Text | None = None
    known_hosts: _Text | None = None
    become: Literal["auto", "always", "never"] = "auto"
    python: _Text = "python3"
    health: list[_HealthSpec] = []


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """How ``patchwarden rollout`` reaches one asset (the fleet file's ``connection:``)."""

    backend: str = "ssh"
    """Executor backend: ``ssh``, ``local``, ``simulate`` or ``ansible``."""
    host: str | None = None
    """Address (None: the asset name)."""
    port: int = 22
    """SSH port."""
    user: str = "root"
    """Login user."""
    identity_file: str | None = None
    """Private key file (absolute, ``~`` expanded)."""
    known_hosts: str | None = None
    """known_hosts file host keys are checked against (absolute; None: ``~/.ssh/known_hosts``)."""
    become: str = "auto"
    """``auto`` (sudo when not root), ``always`` or ``never``."""
    python: str = "python3"
    """The interpreter whose pip manages the asset's PyPI packages."""
    health: tuple[dict[str, Any], ...] = ()
    """Health checks, each one mapping with exactly one of ``command``, ``http``, ``tcp``,
    ``systemd`` (and ``become``, ``status``, ``timeout``)."""


def absolute(base_dir: Path | str, value: Path | str) -> Path:
    """``value`` made absolute against ``base_dir`` and normalised, symlinks kept.

    Not :meth:`Path.resolve`: a running container's filesystem is read through the magic link
    ``/proc/PID/root``, which names ``/`` in the reader's own namespace, so resolving
    ``/proc/1234/root`` would silently read the scanning machine's root instead.

    >>> absolute(Path("/fleet"), Path("/proc/1234/root/../root"))
    PosixPath('/proc/1234/root')
    >>> absolute(Path("/fleet"), Path("roots/web-01"))
    PosixPath('/fleet/roots/web-01')
    """
    return Path(os.path.normpath(os.path.join(base_dir, value)))


def _connection(spec: _ConnectionSpec | None, base_dir: Path) -> Connection | None:
    if spec is None:
        return None

    def path(value: str | None) -> str | None:
        if value is None:
            return None
        return str(absolute(base_dir, Path(value).expanduser()))

    return Connection(
        backend=spec.backend,
        host=spec.host,
        port=spec.port,
        user=spec.user,
        identity_file=path(spec.identity_file),
        known_hosts=path(spec.known_hosts),
        become=spec.become,
        python=spec.python,
        health=tuple(h.model_dump(exclude_defaults=True) for h in spec.health),
    )


class _DefaultsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: AssetKind | None = None
    environment: Environment | None = None
    criticality: _Score | None = None
    internet_exposed: StrictBool | None = None
    data_sensitivity: _Score | None = None
    service: _Text | None = None
    owner: _Text | None = None
    tags: list[_Text] | None = None
    maintenance_window: _Text | None = None


class _AssetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: _Text
    kind: AssetKind = AssetKind.HOST
    environment: Environment = Environment.PROD
    criticality: _Score = 3
    internet_exposed: StrictBool = False
    data_sensitivity: _Score = 3
    service: _Text | None = None
    owner: _Text | None = None
    tags: list[_Text] = []
    maintenance_window: _Text | None = None
    inventory: _InventorySpec
    connection: _ConnectionSpec | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InventorySources:
    """Where one asset's packages come from (absolute paths; None when not given)."""

    root: Path | None = None
    """A mounted filesystem root, scanned with every collector that finds its database."""
    dpkg_status: Path | None = None
    """A dpkg status file or a saved dpkg-query listing."""
    rpm_list: Path | None = None
    """A saved rpm query listing, or an rpm database directory."""
    apk_installed: Path | None = None
    """An Alpine ``lib/apk/db/installed`` file."""
    python: Path | None = None
    """A site-packages folder or a python interpreter."""
    npm_lock: Path | None = None
    """A ``package-lock.json``."""
    sbom: Path | None = None
    """A CycloneDX or SPDX JSON SBOM."""
    image: Path | None = None
    """A ``docker save`` / ``podman save`` tarball or an OCI image layout folder."""
    distro: str | None = None
    """The OS ecosystem (``Debian:12``) when no os-release can be read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetAsset:
    """One asset of the fleet file with its inventory sources."""

    asset: Asset
    """The asset and its risk attributes."""
    sources: InventorySources
    """Where its packages come from."""
    line: int | None = None
    """The line of the fleet file where the asset starts."""
    connection: Connection | None = None
    """How a rollout reaches it (None: no ``connection:`` block)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fleet:
    """A loaded, valid fleet file."""

    path: Path
    """The fleet file."""
    assets: tuple[FleetAsset, ...]
    """Its assets, in file order."""


# --------------------------------------------------------------------------- loading


class FleetCache(Protocol):
    """Where :func:`load_fleet` keeps fleet files it parsed, by digest (the store is one)."""

    def fleet_data(self, digest: str) -> str | None:
        """The text :meth:`save_fleet_data` kept under ``digest`` (None: none)."""

    def save_fleet_data(self, digest: str, text: str) -> None:
        """Keep ``text`` under ``digest``."""


def load_fleet(path: Path, *, cache: FleetCache | None = None) -> Fleet:
    """Load and validate the fleet file at ``path``.

    Raises :class:`~patchwarden.errors.FleetFileError` listing every problem found.

    With a ``cache``, a file loaded before (the same bytes, by SHA-256) is not parsed again:
    its data and asset lines are kept as JSON after a load without problems, and a later load
    validates them again (fields, and every inventory path on disk) without the YAML parse,
    the most of loading a 10,000-asset fleet (2.5 s -> 0.6 s). Should that validation find a
    problem, the file is parsed again so that every problem is reported with its line.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FleetFileError([Problem(source=str(path), reason=f"cannot read: {exc}")]) from exc
    digest = hashlib.sha256(_cache_salt().encode() + raw).hexdigest()
    if cache is not None:
        text = cache.fleet_data(digest)
        if text is not None:
            fleet = _from_cache(path, text)
            if fleet is not None:
                return fleet
    fleet, data = _parse(path)
    if cache is not None:
        lines = [fa.line for fa in fleet.assets]
        # data that is not plain JSON (a YAML date in a free-form field) is not kept
        with contextlib.suppress(TypeError, ValueError):
            cache.save_fleet_data(digest, json.dumps({"data": data, "lines": lines}))
    return fleet


@functools.cache
def _cache_salt() -> str:
    """What a cached fleet file depends on beside its bytes: this validation code."""
    import patchwarden.yamlfile

    return source_digest((Path(__file__), Path(patchwarden.yamlfile.__file__ or "")))


def _from_cache(path: Path, text: str) -> Fleet | None:
    """The fleet of cached data, validated again; None when anything is wrong."""
    try:
        cached = json.loads(text)
        data, lines = cached["data"], cached["lines"]
    except (ValueError, KeyError, TypeError):
        return None
    found: list[bool] = []

    def report(loc: tuple[int | str, ...], reason: str, record: str | None = None) -> None:
        found.append(True)

    def line(loc: tuple[int | str, ...]) -> int | None:
        index = loc[1]
        return lines[index] if isinstance(index, int) and index < len(lines) else None

    assets = _build(data, path.resolve().parent, report, line)
    if found or len(assets) != len(lines):
        return None
    return Fleet(path=path, assets=tuple(assets))


def _parse(path: Path) -> tuple[Fleet, Any]:
    """Parse and validate the fleet file; (fleet, its data)."""
    doc = load_yaml(path, error=FleetFileError)
    source, root_node, data = doc.source, doc.root, doc.data
    if root_node is None or not isinstance(data, dict):
        raise FleetFileError(
            [doc.problem((), "the fleet file must be a mapping with an 'assets' list")]
        )
    problems: list[Problem] = duplicate_keys(root_node, source)

    def report(loc: tuple[int | str, ...], reason: str, record: str | None = None) -> None:
        problems.append(doc.problem(loc, reason, record))

    def line(loc: tuple[int | str, ...]) -> int | None:
        return node_line(node_at(root_node, loc))

    fleet_assets = _build(data, path.resolve().parent, report, line)
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.field or ""))
        raise FleetFileError(problems)
    return Fleet(path=path, assets=tuple(fleet_assets)), data


_Report = Callable[[tuple[int | str, ...], str, str | None], None]


def _build(
    data: Any,
    base_dir: Path,
    report: _Report,
    line: Callable[[tuple[int | str, ...]], int | None],
) -> list[FleetAsset]:
    """The assets of fleet-file ``data``; every problem goes to ``report``."""
    if not isinstance(data, dict):
        report((), "the fleet file must be a mapping with an 'assets' list", None)
        return []
    for key in data:
        if key not in {"defaults", "assets"}:
            report((str(key),), "unknown field (expected 'defaults' and 'assets')", None)

    defaults: dict[str, Any] = {}
    raw_defaults = data.get("defaults")
    if raw_defaults is not None:
        if not isinstance(raw_defaults, dict):
            report(("defaults",), "must be a mapping of asset fields", None)
        else:
            try:
                _DefaultsSpec.model_validate(raw_defaults)
                defaults = raw_defaults
            except ValidationError as exc:
                for err in exc.errors():
                    report(("defaults", *err["loc"]), reason(err), None)

    raw_assets = data.get("assets")
    if not isinstance(raw_assets, list):
        report(
            ("assets",),
            "required field is missing" if raw_assets is None else "must be a list of assets",
            None,
        )
        raw_assets = []

    names: dict[str, int | None] = {}
    fleet_assets: list[FleetAsset] = []
    for i, raw in enumerate(raw_assets):
        loc: tuple[int | str, ...] = ("assets", i)
        asset_line = line(loc)
        if not isinstance(raw, dict):
            report(loc, "each asset must be a mapping with at least 'name' and 'inventory'", None)
            continue
        record = raw.get("name") if isinstance(raw.get("name"), str) else None
        if record is not None:
            if record in names:
                report(
                    (*loc, "name"),
                    f"duplicate asset name {record!r} (first at line {names[record]})",
                    record,
                )
            else:
                names[record] = asset_line
        try:
            spec = _AssetSpec.model_validate({**defaults, **raw})
        except ValidationError as exc:
            for err in exc.errors():
                report((*loc, *err["loc"]), reason(err), record)
            # Still check the inventory paths when that part is well-formed on its own.
            try:
                inventory = _InventorySpec.model_validate(raw.get("inventory"))
            except ValidationError:
                continue
            _sources(inventory, base_dir, (*loc, "inventory"), record, report)
            continue
        sources = _sources(spec.inventory, base_dir, (*loc, "inventory"), record, report)
        if sources is not None:
            fleet_assets.append(
                FleetAsset(
                    asset=Asset(
                        id=AssetId(spec.name),
                        kind=spec.kind,
                        environment=spec.environment,
                        criticality=spec.criticality,
                        internet_exposed=spec.internet_exposed,
                        data_sensitivity=spec.data_sensitivity,
                        service=spec.service,
                        owner=spec.owner,
                        tags=tuple(spec.tags),
                        maintenance_window=spec.maintenance_window,
                    ),
                    sources=sources,
                    line=asset_line,
                    connection=_connection(spec.connection, base_dir),
                )
            )
    return fleet_assets


def _sources(
    spec: _InventorySpec,
    base_dir: Path,
    loc: tuple[int | str, ...],
    record: str | None,
    report: Callable[[tuple[int | str, ...], str, str | None], None],
) -> InventorySources | None:
    ok = True
    resolved: dict[str, Path | None] = {}
    for name in SOURCE_FIELDS:
        value: str | None = getattr(spec, name)
        if value is None:
            resolved[name] = None
            continue
        target = absolute(base_dir, value)
        resolved[name] = target
        try:
            mode = os.stat(target).st_mode  # one stat per source (a fleet has 10,000s)
        except (FileNotFoundError, NotADirectoryError):
            mode = None
        except OSError as exc:
            report((*loc, name), f"cannot read {str(target)!r}: {exc.strerror}", record)
            ok = False
            continue
        if mode is None:
            report((*loc, name), f"no such file or folder: {str(target)!r}", record)
            ok = False
        elif name == "root" and not stat.S_ISDIR(mode):
            report((*loc, name), f"a filesystem root must be a folder: {str(target)!r}", record)
            ok = False
        elif name == "image" and not is_image_archive(target):
            report(
                (*loc, name),
                "not an image: a tar archive (docker/podman save) or a folder with index.json"
                f" or manifest.json is expected: {str(target)!r}",
                record,
            )
            ok = False
        elif name not in {"root", "python", "rpm_list", "image"} and not stat.S_ISREG(mode):
            report((*loc, name), f"must be a file, not a folder: {str(target)!r}", record)
            ok = False
    if all(v is None for v in resolved.values()):
        report(loc, f"needs at least one source ({', '.join(SOURCE_FIELDS)})", record)
        ok = False
    if spec.distro is not None:
        try:
            ecosystem = Ecosystem.parse(spec.distro)
        except UnknownEcosystem:
            report((*loc, "distro"), f"unknown distro ecosystem {spec.distro!r}", record)
            ok = False
        else:
            if not ecosystem.is_distro:
                report(
                    (*loc, "distro"),
                    f"{spec.distro!r} is not an OS ecosystem (e.g. 'Debian:12')",
                    record,
                )
                ok = False
    if not ok:
        return None
    return InventorySources(distro=spec.distro, **resolved)
