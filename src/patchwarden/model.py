"""Plain domain data shared by the pipeline stages.

Stages talk to each other only through these frozen dataclasses: ``inventory`` produces
:class:`Inventory`, ``intel`` produces :class:`Advisory`, :class:`KevEntry` and
:class:`EpssScore`, ``match`` turns both into :class:`Match` values, and ``store`` persists
them as :class:`Finding` rows. New values are made with :func:`dataclasses.replace`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import compress
from operator import ne
from pathlib import Path
from typing import Any, NewType, cast, overload

AssetId = NewType("AssetId", str)
"""Stable name of an asset (``web-01``, ``image:registry/app@sha256:..``)."""
VulnId = NewType("VulnId", str)
"""A vulnerability or advisory identifier (``CVE-2023-0286``, ``PYSEC-2021-1``, ``DSA-5343-1``)."""


class AssetKind(StrEnum):
    """What an asset is."""

    HOST = "host"
    IMAGE = "image"
    ENVIRONMENT = "environment"
    SBOM = "sbom"


class Environment(StrEnum):
    """Deployment environment of an asset."""

    PROD = "prod"
    STAGING = "staging"
    DEV = "dev"


class RangeType(StrEnum):
    """OSV ``affected[].ranges[].type`` (OSV schema 1.6, section "ranges")."""

    ECOSYSTEM = "ECOSYSTEM"
    SEMVER = "SEMVER"
    GIT = "GIT"


class EventKind(StrEnum):
    """OSV range event kinds (OSV schema 1.6, "ranges[].events")."""

    INTRODUCED = "introduced"
    FIXED = "fixed"
    LAST_AFFECTED = "last_affected"
    LIMIT = "limit"


class FixState(StrEnum):
    """What the source says about fixing one package for one vulnerability.

    Kept as the source states it (a Debian ``<no-dsa>`` is not the same as "no fix yet").
    """

    FIXED = "fixed"
    """A fixed version exists (the finding carries it)."""
    NO_FIX = "no_fix"
    """Affected, and no fixed version is published yet."""
    WILL_NOT_FIX = "will_not_fix"
    """The vendor decided not to fix (Debian ``<no-dsa>``/``<ignored>``, "won't fix")."""
    UNDER_INVESTIGATION = "under_investigation"
    """The vendor has not decided whether the package is affected."""
    NOT_AFFECTED = "not_affected"
    """The vendor states that the package is not affected (never becomes a finding)."""


class Severity(StrEnum):
    """Qualitative severity (CVSS v3/v4 rating scale; ``unknown`` when no score is known)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    NONE = "none"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        """Higher is more severe; ``unknown`` ranks just above ``none``.

        >>> Severity.CRITICAL.rank > Severity.HIGH.rank > Severity.UNKNOWN.rank
        True
        """
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.NONE: 0,
    Severity.UNKNOWN: 1,
    Severity.LOW: 2,
    Severity.MEDIUM: 3,
    Severity.HIGH: 4,
    Severity.CRITICAL: 5,
}


# --------------------------------------------------------------------------- inventory


@dataclass(frozen=True, slots=True, kw_only=True)
class InstalledPackage:
    """One package installed on an asset."""

    ecosystem: str
    """OSV ecosystem, with the distro release where it has one: ``Debian:12``, ``Alpine:v3.19``,
    ``PyPI``, ``npm``."""
    name: str
    """The installed (binary) package name, as the package manager spells it."""
    version: str
    """The installed version, raw (``1:2.36-9+deb12u4``, ``2.31.0``)."""
    source_name: str | None = None
    """Source package name (dpkg ``Source:``, apk origin, rpm source rpm) when it differs or is
    known; distro advisories are keyed by it."""
    source_version: str | None = None
    """Source package version when the package manager records one that differs."""
    purl: str | None = None
    """Package URL, when known."""
    location: str | None = None
    """Where it was found (site-packages path, lockfile path, SBOM component ref)."""


InventoryRow = tuple[str, str | None, str | None]
"""One distinct installed package as a scan stores it: ``(line, location, purl)``.

The *line* is ``ecosystem\\tname\\tversion\\tsource_name\\tsource_version`` (the columns of
the store's ``packages`` unique key): lines are cheap to hash, to pickle between processes
and to map to package ids, and identical packages on 10,000 hosts share one id."""


def inventory_rows(packages: Iterable[InstalledPackage]) -> list[InventoryRow]:
    """The distinct packages as sorted rows; of duplicates the last one's location/purl wins.

    >>> pkg = InstalledPackage(ecosystem="PyPI", name="jinja2", version="2.10", location="/a")
    >>> inventory_rows([pkg, pkg])
    [('PyPI\\tjinja2\\t2.10\\t\\t', '/a', None)]
    """
    by_key: dict[tuple[str, str, str, str, str], InstalledPackage] = {}
    for p in packages:
        by_key[(p.ecosystem, p.name, p.version, p.source_name or "", p.source_version or "")] = p
    return [("\t".join(key), p.location, p.purl) for key, p in sorted(by_key.items())]


Runs = tuple[tuple[str | None, int], ...]
"""Run-length form ``((value, count), ...)`` of a sequence: an inventory's row locations (a
dpkg status file's 1,500 rows have one location)."""


def runs(values: Iterable[str | None]) -> Runs:
    """The run-length form (:data:`Runs`) of a sequence.

    >>> runs(["/s", "/s", "/s", None, "/b#1"])
    (('/s', 3), (None, 1), ('/b#1', 1))
    >>> expand_runs(runs(["/s", "/s", None]))
    ['/s', '/s', None]
    """
    seq = values if isinstance(values, list) else list(values)
    if not seq:
        return ()
    if seq.count(seq[0]) == len(seq):  # one file: a C-level count, mostly identity checks
        return ((seq[0], len(seq)),)
    # where a run starts, found by C-level comparisons (a fleet scan encodes 15 M locations)
    starts = [0, *compress(range(1, len(seq)), map(ne, seq[1:], seq))]
    ends = [*starts[1:], len(seq)]
    return tuple((seq[a], b - a) for a, b in zip(starts, ends, strict=True))


def expand_runs(encoded: Iterable[Sequence[Any]]) -> list[str | None]:
    """The sequence :func:`runs` encoded."""
    out: list[str | None] = []
    for value, count in encoded:
        out.extend([value] * int(count))
    return out


class InventoryColumns(Sequence[InventoryRow]):
    """An inventory's sorted distinct rows (:data:`InventoryRow`), kept column by column.

    A fleet scan maps every one of 15 million lines to a package id and to its matches. As
    columns, those look-ups map over one list of lines, the locations are runs (one per file
    read), and the purls -- needed only for packages the store has not seen yet -- are made
    on first use (split out of one string, or looked up by line: :meth:`with_purls`).
    Pickled, the lines and the purls are one newline-joined string each, four times faster
    to unpickle than 1,500 row tuples; text that holds a newline (or an empty purl) is
    pickled as it is. (A fleet collection's workers send less still: line numbers, see
    :mod:`patchwarden.collect`.)

    It is a sequence of the rows it holds, equal to any sequence of the same rows:

    >>> cols = InventoryColumns.of([("PyPI\tjinja2\t2.10\t\t", "/a", None),
    ...                             ("PyPI\turllib3\t1.26\t\t", "/a", "pkg:pypi/urllib3@1.26")])
    >>> cols.lines[1], cols.locations, cols[1][2]
    ('PyPI\turllib3\t1.26\t\t', (('/a', 2),), 'pkg:pypi/urllib3@1.26')
    >>> import pickle; pickle.loads(pickle.dumps(cols)) == list(cols)
    True
    """

    __slots__ = ("_purls", "lines", "locations")

    lines: tuple[str, ...]
    """Each row's line (``ecosystem\tname\tversion\tsource_name\tsource_version``)."""
    locations: Runs
    """Each row's location, as runs."""
    _purls: tuple[str | None, ...] | str | Mapping[str, str | None]

    def __init__(
        self, lines: Sequence[str], locations: Runs, purls: Sequence[str | None] | str
    ) -> None:
        self.lines = tuple(lines)
        self.locations = locations
        self._purls = purls if isinstance(purls, str) else tuple(purls)
        if sum(count for _, count in locations) != len(self.lines):
            raise ValueError(
                f"inventory columns: {len(self.lines)} lines but "
                f"{sum(count for _, count in locations)} locations"
            )

    @classmethod
    def of(cls, rows: Iterable[InventoryRow]) -> InventoryColumns:
        """Columns of ``rows`` (sorted and distinct, as :func:`inventory_rows` gives them)."""
        if isinstance(rows, InventoryColumns):
            return rows
        given = rows if isinstance(rows, list | tuple) else list(rows)
        if not given:
            return cls((), (), ())
        lines, locations, purls = zip(*given, strict=True)
        return cls(lines, runs(list(locations)), purls)

    @property
    def purls(self) -> tuple[str | None, ...]:
        """Each row's purl (None when unknown)."""
        if isinstance(self._purls, str):
            split = self._purls.split("\n") if self.lines else []
            self._purls = tuple(p or None for p in split)
        elif not isinstance(self._purls, tuple):
            self._purls = tuple(map(self._purls.get, self.lines))
        return self._purls

    def with_purls(self, purls: Mapping[str, str | None]) -> InventoryColumns:
        """The same rows with each purl looked up by line in ``purls`` on first use (a fleet
        collection sends each line's purl once; see :mod:`patchwarden.collect`)."""
        out = InventoryColumns.__new__(InventoryColumns)
        out.lines, out.locations, out._purls = self.lines, self.locations, purls
        return out

    def __len__(self) -> int:
        return len(self.lines)

    @overload
    def __getitem__(self, index: int) -> InventoryRow: ...

    @overload
    def __getitem__(self, index: slice) -> list[InventoryRow]: ...

    def __getitem__(self, index: int | slice) -> InventoryRow | list[InventoryRow]:
        rows = list(self)
        return rows[index]

    def __iter__(self) -> Iterator[InventoryRow]:
        return zip(self.lines, expand_runs(self.locations), self.purls, strict=True)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, InventoryColumns):
            return (self.lines, self.locations, self.purls) == (
                other.lines,
                other.locations,
                other.purls,
            )
        if isinstance(other, list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"InventoryColumns({list(self)!r})"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        lines: tuple[str, ...] | str = self.lines
        purls: tuple[str | None, ...] | str | dict[str, str | None]
        if isinstance(self._purls, Mapping):  # the look-up's entries for these lines
            table = self._purls
            purls = {line: table[line] for line in self.lines if line in table} if table else {}
        else:
            purls = self._purls
        if self.lines:
            joined = "\n".join(self.lines)
            if joined.count("\n") == len(self.lines) - 1:
                lines = joined
            if isinstance(purls, tuple) and "" not in purls:
                given = cast(tuple[str, ...], purls) if None not in purls else None
                text = "\n".join(given if given is not None else [p or "" for p in purls])
                if text.count("\n") == len(purls) - 1:
                    purls = text
        return (_columns, (lines, self.locations, purls))


def _columns(
    lines: tuple[str, ...] | str,
    locations: Runs,
    purls: tuple[str | None, ...] | str | dict[str, str | None],
) -> InventoryColumns:
    """Unpickle :class:`InventoryColumns` (see its ``__reduce__``)."""
    cols = InventoryColumns(
        lines.split("\n") if isinstance(lines, str) else lines,
        locations,
        () if isinstance(purls, dict) else purls,
    )
    return cols.with_purls(purls) if isinstance(purls, dict) else cols


@functools.cache
def source_digest(files: tuple[Path, ...]) -> str:
    """A digest of those source files (once per process), for results kept in the store that
    other code must not reuse (match results, risk scores). Without readable source, a
    random digest: nothing is reused across processes."""
    h = hashlib.sha256()
    try:
        for path in files:
            h.update(f"{path.name}\n".encode() + path.read_bytes())
    except OSError:
        return uuid.uuid4().hex
    return h.hexdigest()


def inventory_digest(lines: Sequence[str], distro: str | None) -> str:
    """The digest stored per asset: equal digests mean an unchanged inventory.

    >>> inventory_digest([], None)[:12]
    'a59779fbfbb3'
    """
    return hashlib.sha256("\n".join(lines).encode() + f"\n{distro}".encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset:
    """Something that has packages installed: a host, an image, an environment, an SBOM subject."""

    id: AssetId
    """Unique, stable name."""
    kind: AssetKind = AssetKind.HOST
    """What the asset is."""
    environment: Environment = Environment.PROD
    """Deployment environment."""
    criticality: int = 3
    """Business criticality, 1 (low) to 5 (crown jewels)."""
    internet_exposed: bool = False
    """Reachable from the internet."""
    data_sensitivity: int = 3
    """Sensitivity of the data on the asset, 1 (public) to 5 (regulated/secret)."""
    service: str | None = None
    """The service this asset is a replica of (for max_unavailable)."""
    owner: str | None = None
    """Team or person responsible."""
    tags: tuple[str, ...] = ()
    """Free tags, including compensating controls such as ``waf`` or ``isolated``."""
    maintenance_window: str | None = None
    """Name of the maintenance window (defined in the policy file)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Inventory:
    """What one collector found on one asset at one time."""

    asset: Asset
    """The asset the packages belong to."""
    packages: tuple[InstalledPackage, ...]
    """Everything found, OS and language packages together."""
    distro: str | None = None
    """The OS ecosystem from ``/etc/os-release`` (``Debian:12``), when the asset has one."""
    source: str = ""
    """Where the inventory came from (``dpkg:/var/lib/dpkg/status``, ``cyclonedx:bom.json``)."""
    collected_at: dt.datetime | None = None
    """When it was collected (UTC)."""


# --------------------------------------------------------------------------- intel


@dataclass(frozen=True, slots=True, kw_only=True)
class RangeEvent:
    """One event of an OSV range."""

    kind: EventKind
    """introduced / fixed / last_affected / limit."""
    version: str
    """The version (``0`` for "since the beginning" on ``introduced``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AffectedRange:
    """One OSV ``affected[].ranges[]`` entry."""

    type: RangeType
    """ECOSYSTEM, SEMVER or GIT (GIT ranges are stored but never matched)."""
    events: tuple[RangeEvent, ...]
    """Events in the order the source gives them."""
    repo: str | None = None
    """Repository URL for GIT ranges."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Affected:
    """One affected package of an advisory (OSV ``affected[]``)."""

    ecosystem: str
    """OSV ecosystem with optional release suffix (``PyPI``, ``Debian:11``, ``Alpine:v3.19``)."""
    name: str
    """Package name as the source spells it (Debian/Alpine: the source package)."""
    purl: str | None = None
    """Package URL when the source gives one."""
    ranges: tuple[AffectedRange, ...] = ()
    """Affected version ranges."""
    versions: tuple[str, ...] = ()
    """Explicitly enumerated affected versions."""
    state: FixState | None = None
    """A source statement that overrides range matching: ``not_affected``, ``will_not_fix``,
    ``under_investigation`` or ``no_fix`` (e.g. Debian ``<unfixed>``). ``None`` means the
    ranges/versions decide."""
    ecosystem_specific: Mapping[str, Any] = field(default_factory=dict)
    """OSV ``ecosystem_specific``, kept as given."""
    database_specific: Mapping[str, Any] = field(default_factory=dict)
    """OSV ``database_specific``, kept as given (e.g. Debian urgency)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SeverityScore:
    """One OSV ``severity[]`` entry."""

    type: str
    """``CVSS_V2``, ``CVSS_V3``, ``CVSS_V4``, ``Ubuntu``, ..."""
    score: str
    """The vector string (or the source's rating)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Advisory:
    """One source's record about one vulnerability (OSV model; distro lists map onto it)."""

    id: VulnId
    """The record id in its source (``PYSEC-2021-1``, ``DSA-5343-1``, ``ALPINE-CVE-...``)."""
    source: str
    """Which feed it came from: ``osv``, ``debian``, ``alpine``."""
    modified: dt.datetime
    """Last modification time (UTC); a newer record replaces an older one."""
    published: dt.datetime | None = None
    """Publication time (UTC) when known."""
    withdrawn: dt.datetime | None = None
    """Set when the source withdrew the record; withdrawn records never match."""
    aliases: tuple[str, ...] = ()
    """Other ids of the same vulnerability (OSV ``aliases``)."""
    related: tuple[str, ...] = ()
    """Ids of related but different vulnerabilities (OSV ``related``)."""
    upstream: tuple[str, ...] = ()
    """Upstream vulnerabilities this record is about (OSV 1.6 ``upstream``; a DSA lists its
    CVEs here). When set, each upstream id is a vulnerability of its own."""
    summary: str = ""
    """One-line summary."""
    details: str = ""
    """Longer description."""
    severity: tuple[SeverityScore, ...] = ()
    """Severity vectors given by the source."""
    affected: tuple[Affected, ...] = ()
    """Affected packages."""
    references: tuple[str, ...] = ()
    """Reference URLs."""
    database_specific: Mapping[str, Any] = field(default_factory=dict)
    """OSV ``database_specific`` at record level, kept as given."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KevEntry:
    """One CISA Known Exploited Vulnerabilities catalog entry."""

    cve_id: str
    """The CVE id."""
    date_added: dt.date
    """When CISA added it to the catalog."""
    due_date: dt.date | None
    """Remediation due date for US federal agencies."""
    known_ransomware: bool
    """``knownRansomwareCampaignUse == "Known"``."""
    vendor: str = ""
    """``vendorProject``."""
    product: str = ""
    """``product``."""
    name: str = ""
    """``vulnerabilityName``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EpssScore:
    """One FIRST EPSS score."""

    cve_id: str
    """The CVE id."""
    epss: float
    """Probability of exploitation activity in the next 30 days, 0..1."""
    percentile: float
    """Percentile of this score among all scored CVEs, 0..1."""


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageKey:
    """What matching looks at: identical keys across assets are matched once."""

    ecosystem: str
    """OSV ecosystem with release (``Debian:12``)."""
    name: str
    """The name advisories use (Debian source package, normalised PyPI name, ...)."""
    version: str
    """The version advisories compare against (Debian source version, ...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """One advisory that affects one package key."""

    key: PackageKey
    """The matched package."""
    advisory_id: VulnId
    """The advisory that matched."""
    vulnerability_ids: tuple[VulnId, ...]
    """The vulnerabilities this match stands for: the advisory itself, or its ``upstream`` ids."""
    fix_state: FixState
    """Fix state for this package."""
    fixed_version: str | None
    """The smallest fixed version above the installed one, when there is one."""


# --------------------------------------------------------------------------- findings


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """A vulnerability on one asset's package, as the store keeps it between scans."""

    id: int
    """Store id (stable across rescans)."""
    asset: AssetId
    """The asset."""
    ecosystem: str
    """Ecosystem with release (``Debian:12``)."""
    package: str
    """The name the advisory uses (Debian: the source package)."""
    installed_version: str
    """The installed version advisories compare against."""
    binaries: tuple[str, ...]
    """Installed package names behind ``package`` (Debian binaries of the source package)."""
    vulnerability: VulnId
    """Canonical vulnerability id (a CVE when the alias group has one)."""
    aliases: tuple[str, ...]
    """Every other id of the vulnerability."""
    advisories: tuple[str, ...]
    """The advisory records that matched (``PYSEC-..``, ``DSA-..``)."""
    fix_state: FixState
    """Whether and how it can be fixed."""
    fixed_version: str | None
    """Smallest version that fixes it (for every matching advisory), or None."""
    severity: Severity
    """Qualitative severity from the best CVSS vector known, ``unknown`` without one."""
    cvss_score: float | None
    """That CVSS base score."""
    kev: bool
    """Listed in CISA KEV (under any alias)."""
    epss: float | None
    """FIRST EPSS probability (under any alias), None when not scored."""
    epss_percentile: float | None
    """FIRST EPSS percentile."""
    first_seen: dt.datetime
    """First scan that saw it."""
    last_seen: dt.datetime
    """Latest scan that saw it."""
    resolved_at: dt.datetime | None
    """When a scan first no longer saw it; None while open."""
    pending_restart: bool = False
    """The fixed version is installed but old code still runs (a service restart or a reboot
    is pending): listed with the open findings until a clean restart check clears it."""
