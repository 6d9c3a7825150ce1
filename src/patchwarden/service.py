"""Use cases that tie the pipeline stages to the store: import feeds, scan assets.

The stages stay pure (``intel`` readers yield records, ``inventory`` collectors return
packages, ``match`` evaluates keys); this module moves their plain data in and out of the
store, one transaction per unit of work (one feed file, one asset), and reports progress
through an injected :class:`Observer` so that it never imports a UI library.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import Connection

from patchwarden.ecosystems import Ecosystem, normalize_name
from patchwarden.errors import InvalidVersion, PatchwardenError, Problem, UnknownEcosystem
from patchwarden.intel import READERS, detect
from patchwarden.intel.interface import FeedInfo, FeedReader
from patchwarden.match import AdvisoryIndex, Skip, match
from patchwarden.model import (
    Advisory,
    EpssScore,
    FixState,
    InstalledPackage,
    Inventory,
    KevEntry,
    Match,
    PackageKey,
    VulnId,
)
from patchwarden.store import AdvisoryCounts, FindingDraft, Store, SyncCounts
from patchwarden.versions import scheme_for

_BATCH = 2_000


class Observer(Protocol):
    """Receives progress from long-running use cases (the CLI draws it with rich)."""

    def stage(self, name: str, total: int | None = None) -> None:
        """A new stage starts; ``total`` units of work when known."""

    def advance(self, units: int = 1) -> None:
        """``units`` more units of the current stage are done."""

    def note(self, message: str) -> None:
        """Something the user should read (a skipped record, a partial result)."""


class NullObserver:
    """An observer that ignores everything."""

    def stage(self, name: str, total: int | None = None) -> None:
        """Ignore."""

    def advance(self, units: int = 1) -> None:
        """Ignore."""

    def note(self, message: str) -> None:
        """Ignore."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


# --------------------------------------------------------------------------- feeds


@dataclass(slots=True, kw_only=True)
class FileImport:
    """What importing one path did."""

    path: str
    """The file or directory."""
    reader: str | None = None
    """The reader used (``osv``, ``kev``, ...), None when the format was not recognised."""
    advisories: AdvisoryCounts = field(default_factory=AdvisoryCounts)
    """Advisory inserts/updates/unchanged."""
    kev: int = 0
    """KEV entries that changed."""
    epss: int = 0
    """EPSS scores loaded."""
    problems: list[Problem] = field(default_factory=list)
    """Records skipped as malformed (the rest was imported)."""
    error: str | None = None
    """Why nothing of this path was imported (unreadable file); None when it was."""
    notes: list[str] = field(default_factory=list)
    """Informational remarks (an older EPSS file kept out, ...)."""


@dataclass(slots=True, kw_only=True)
class ImportReport:
    """What ``feeds import`` did."""

    files: list[FileImport] = field(default_factory=list)
    """One entry per path."""
    vulnerabilities: int = 0
    """Vulnerabilities (alias groups) known after the import."""

    @property
    def failed(self) -> bool:
        """True when some path could not be imported at all."""
        return any(f.error for f in self.files)

    @property
    def partial(self) -> bool:
        """True when some records were skipped or some path failed."""
        return self.failed or any(f.problems for f in self.files)


def import_feeds(
    store: Store,
    paths: Sequence[Path],
    *,
    fmt: str | None = None,
    observer: Observer | None = None,
    now: dt.datetime | None = None,
) -> ImportReport:
    """Import every path; each path commits as a whole or not at all."""
    obs = observer or NullObserver()
    now = now or _now()
    report = ImportReport()
    changed = False
    for path in paths:
        item = FileImport(path=str(path))
        report.files.append(item)
        try:
            reader: FeedReader = READERS[fmt]() if fmt else detect(path)
            item.reader = reader.name
            obs.stage(f"importing {path} ({reader.name})")
            with store.transaction() as conn:
                changed |= _import_one(store, conn, reader, path, item, obs, now)
        except PatchwardenError as exc:
            item.error = str(exc)
            item.advisories, item.kev, item.epss = AdvisoryCounts(), 0, 0
    if changed:
        obs.stage("grouping aliases into vulnerabilities")
        with store.transaction() as conn:
            report.vulnerabilities = store.rebuild_vulnerabilities(conn)
    else:
        report.vulnerabilities = store.counts()["vulnerabilities"]
    return report


def _import_one(
    store: Store,
    conn: Connection,
    reader: FeedReader,
    path: Path,
    item: FileImport,
    obs: Observer,
    now: dt.datetime,
) -> bool:
    batch: list[Advisory] = []
    kev: list[KevEntry] = []
    epss: list[EpssScore] = []
    infos: list[FeedInfo] = []
    totals = AdvisoryCounts()

    def flush() -> None:
        nonlocal totals
        if batch:
            c = store.upsert_advisories(conn, batch, now)
            totals = AdvisoryCounts(
                inserted=totals.inserted + c.inserted,
                updated=totals.updated + c.updated,
                unchanged=totals.unchanged + c.unchanged,
            )
            obs.advance(len(batch))
            batch.clear()

    for record in reader.read(path):
        match record:
            case Advisory():
                batch.append(record)
                if len(batch) >= _BATCH:
                    flush()
            case KevEntry():
                kev.append(record)
            case EpssScore():
                epss.append(record)
            case FeedInfo():
                infos.append(record)
            case Problem():
                item.problems.append(record)
    flush()
    item.advisories = totals
    if kev:
        item.kev = store.upsert_kev(conn, kev)
    info_by_feed = {i.feed: i for i in infos}
    if epss:
        info = info_by_feed.get("epss")
        stored = store.feed_info(conn, "epss")
        if info and stored is not None and stored.date and info.date and info.date < stored.date:
            item.notes.append(
                f"kept the stored EPSS scores of {stored.date:%Y-%m-%d}: "
                f"this file's scores ({info.date:%Y-%m-%d}) are older"
            )
            info_by_feed.pop("epss")
        elif (
            info
            and stored is not None
            and stored.date == info.date
            and stored.version == info.version
            and stored.records == len(epss)
        ):
            item.notes.append("EPSS scores of this date are already imported")
        else:
            item.epss = store.replace_epss(conn, epss)
    for info in info_by_feed.values():
        count = {"kev": len(kev), "epss": len(epss)}.get(info.feed, 0)
        store.set_feed_info(
            conn,
            feed=info.feed,
            version=info.version,
            date=info.date,
            path=str(path),
            records=count,
            now=now,
        )
    if batch or totals.inserted or totals.updated or totals.unchanged:
        store.set_feed_info(
            conn,
            feed=reader.name,
            version=None,
            date=now,
            path=str(path),
            records=totals.inserted + totals.updated + totals.unchanged,
            now=now,
        )
    return bool(totals.inserted or totals.updated)


# --------------------------------------------------------------------------- scanning


def package_key(pkg: InstalledPackage) -> PackageKey | None:
    """The key advisories are matched on; None for ecosystems patchwarden cannot order.

    Debian/Ubuntu and Alpine advisories name the *source* package and its version, so
    those are used when the collector recorded them (a Debian binNMU ``+b1`` binary version
    differs from its source version).

    >>> package_key(InstalledPackage(ecosystem="Debian:12", name="libssl3",
    ...     version="3.0.17-1~deb12u2", source_name="openssl"))
    PackageKey(ecosystem='Debian:12', name='openssl', version='3.0.17-1~deb12u2')
    >>> package_key(InstalledPackage(ecosystem="PyPI", name="Jinja2", version="2.10"))
    PackageKey(ecosystem='PyPI', name='jinja2', version='2.10')
    """
    try:
        eco = Ecosystem.parse(pkg.ecosystem)
    except UnknownEcosystem:
        return None
    name, version = pkg.name, pkg.version
    if eco.scheme in {"dpkg", "apk"} and pkg.source_name:
        name = pkg.source_name
        version = pkg.source_version or pkg.version
    return PackageKey(ecosystem=pkg.ecosystem, name=normalize_name(eco, name), version=version)


@dataclass(slots=True, kw_only=True)
class AssetScan:
    """What scanning one asset did."""

    asset: str
    packages: int = 0
    changed: bool = True
    findings: SyncCounts = field(default_factory=SyncCounts)
    unsupported: int = 0
    """Packages of ecosystems patchwarden has no version ordering for (not matched)."""


@dataclass(slots=True, kw_only=True)
class ScanReport:
    """What ``scan`` did."""

    assets: list[AssetScan] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Assets whose inventory could not be collected (the others were scanned)."""
    skipped: list[Skip] = field(default_factory=list)
    """Versions that could not be compared (recorded, never silently dropped)."""
    distinct_keys: int = 0
    """Distinct (ecosystem, name, version) triples matched (each once for the whole fleet)."""
    advisories_considered: int = 0


def scan(
    store: Store,
    inventories: Iterable[Inventory],
    *,
    observer: Observer | None = None,
    now: dt.datetime | None = None,
) -> ScanReport:
    """Match every inventory against the stored advisories and update findings.

    Identical (ecosystem, package, version) keys across assets are matched once.
    """
    obs = observer or NullObserver()
    now = now or _now()
    report = ScanReport()
    invs = list(inventories)
    keyed: list[tuple[Inventory, dict[PackageKey, list[InstalledPackage]], int]] = []
    for inv in invs:
        by_key: dict[PackageKey, list[InstalledPackage]] = defaultdict(list)
        unsupported = 0
        for pkg in inv.packages:
            key = package_key(pkg)
            if key is None:
                unsupported += 1
            else:
                by_key[key].append(pkg)
        keyed.append((inv, by_key, unsupported))
    keys = {k for _, by_key, _ in keyed for k in by_key}
    report.distinct_keys = len(keys)
    names = {(Ecosystem.parse(k.ecosystem).base.value, k.name) for k in keys}
    obs.stage("loading advisories")
    with store.transaction() as conn:
        advisories = store.advisories_for(conn, names)
    report.advisories_considered = len(advisories)
    obs.stage("matching", total=len(keys))
    index = AdvisoryIndex.build(advisories)
    result = match(sorted(keys, key=lambda k: (k.ecosystem, k.name, k.version)), index)
    obs.advance(len(keys))
    report.skipped = list(result.skipped)
    with store.transaction() as conn:
        canon = store.canonical_ids(
            conn, (v for ms in result.matches.values() for m in ms for v in m.vulnerability_ids)
        )
    obs.stage("recording findings", total=len(keyed))
    for inv, by_key, unsupported in keyed:
        drafts = _drafts(by_key, result.matches, canon)
        with store.transaction() as conn:
            changed = store.save_inventory(conn, inv, now)
            counts = store.sync_findings(conn, inv.asset.id, drafts, now)
        report.assets.append(
            AssetScan(
                asset=inv.asset.id,
                packages=len(inv.packages),
                changed=changed,
                findings=counts,
                unsupported=unsupported,
            )
        )
        obs.advance()
    return report


_STATE_PRIORITY = (FixState.NO_FIX, FixState.UNDER_INVESTIGATION, FixState.WILL_NOT_FIX)


def _drafts(
    by_key: dict[PackageKey, list[InstalledPackage]],
    matches: dict[PackageKey, tuple[Match, ...]],
    canon: dict[str, VulnId],
) -> list[FindingDraft]:
    """One draft per (package, vulnerability) of one asset.

    Several advisories for one vulnerability (a PYSEC and a GHSA record) are merged: the
    finding counts as fixed only when every one of them names a fixed version, and its fixed
    version is the highest of those (the version that satisfies every source). When one asset
    has the same package at several versions (two Python environments), the lowest installed
    version is reported.
    """
    grouped: dict[tuple[str, str, VulnId], list[tuple[PackageKey, Match]]] = defaultdict(list)
    for key in by_key:
        for m in matches.get(key, ()):
            for vid in m.vulnerability_ids:
                grouped[(key.ecosystem, key.name, canon.get(vid, vid))].append((key, m))
    drafts = []
    for (ecosystem, package, vuln), items in sorted(grouped.items()):
        scheme = scheme_for(ecosystem)
        keys = {k for k, _ in items}
        try:
            installed = min(keys, key=lambda k: scheme.parse(k.version)).version
        except InvalidVersion:
            installed = min(k.version for k in keys)
        ms = [m for _, m in items]
        states = {m.fix_state for m in ms}
        fixed_versions = [m.fixed_version for m in ms if m.fixed_version]
        if all(m.fix_state is FixState.FIXED and m.fixed_version for m in ms):
            state = FixState.FIXED
            try:
                fixed: str | None = max(fixed_versions, key=scheme.parse)
            except InvalidVersion:
                fixed = max(fixed_versions)
        else:
            state = next((s for s in _STATE_PRIORITY if s in states), FixState.NO_FIX)
            fixed = None
        binaries = sorted({p.name for k in keys for p in by_key[k]})
        drafts.append(
            FindingDraft(
                ecosystem=ecosystem,
                package=package,
                installed_version=installed,
                binaries=tuple(binaries),
                vulnerability=vuln,
                advisories=tuple(sorted({str(m.advisory_id) for m in ms})),
                fix_state=state,
                fixed_version=fixed,
            )
        )
    return drafts
