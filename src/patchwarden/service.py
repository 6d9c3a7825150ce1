"""Use cases that tie the pipeline stages to the store: import feeds, scan assets.

The stages stay pure (``intel`` readers yield records, ``inventory`` collectors return
packages, ``match`` evaluates keys); this module moves their plain data in and out of the
store, one transaction per unit of work (one feed file, one asset), and reports progress
through an injected :class:`Observer` so that it never imports a UI library.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import functools
import hashlib
import operator
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import filterfalse
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from patchwarden import audit
from patchwarden.ecosystems import Ecosystem, normalize_name
from patchwarden.errors import (
    FeedFormatError,
    InvalidVersion,
    PatchwardenError,
    Problem,
    StoreError,
    UnknownEcosystem,
)
from patchwarden.intel import READERS, detect
from patchwarden.intel.interface import FeedInfo, FeedReader
from patchwarden.match import AdvisoryIndex, Skip, match
from patchwarden.model import (
    Advisory,
    Asset,
    EpssScore,
    FixState,
    InstalledPackage,
    Inventory,
    KevEntry,
    Match,
    PackageKey,
    VulnId,
    source_digest,
)
from patchwarden.prioritize import Scorer, prepare_ranking, profile, rank, ranking_weights
from patchwarden.risk import RiskWeights
from patchwarden.store import AdvisoryCounts, FindingDraft, InventoryWrite, Store, SyncCounts
from patchwarden.store.bulk import (
    InventoryColumns,
    InventoryRow,
    gc_paused,
    inventory_digest,
    inventory_rows,
)
from patchwarden.versions import scheme_for

_BATCH = 2_000
_LINE = operator.itemgetter(0)
_SCAN_BATCH = 500
_UNREAD_WEIGHT = 8
"""An asset sent without rows (its collector saw its files unchanged) weighs this much less
in a batch: a rescan's batches hold up to 4,000 of them, so that the few changed assets share
a few batches' queries instead of twenty."""
_ANALYZE_AFTER = 50_000
"""Findings written by one scan after which the planner statistics are refreshed: a first
scan of a big fleet turns an empty findings table into 600,000 rows, and PostgreSQL would plan
the next scan's look-ups for an empty table (sequential scans) until autovacuum got to it."""


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
    actor: str | None = None,
    reader: FeedReader | None = None,
) -> ImportReport:
    """Import every path; each path commits as a whole or not at all.

    ``reader`` (a configured instance, e.g. ``DebianChangelogReader(release="12")``) reads
    every path, else the ``fmt`` reader, else the detected one. Each imported path appends a
    ``feed.import`` audit entry (``actor`` defaults to :func:`patchwarden.audit.default_actor`)
    in the same transaction.
    """
    obs = observer or NullObserver()
    now = now or _now()
    report = ImportReport()
    changed = False
    for path in paths:
        item = FileImport(path=str(path))
        report.files.append(item)
        try:
            used = reader if reader is not None else (READERS[fmt]() if fmt else detect(path))
            item.reader = used.name
            obs.stage(f"importing {path} ({used.name})")
            with store.transaction() as conn:
                changed |= _import_one(store, conn, used, path, item, obs, now)
                _audit_import(conn, actor or audit.default_actor(), path, item)
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


def _audit_import(conn: Connection, actor: str, path: Path, item: FileImport) -> None:
    try:
        sha256 = audit.file_digest(path)
    except OSError as exc:
        raise FeedFormatError(f"{path}: cannot read it again to digest it: {exc}") from exc
    audit.append(
        conn,
        actor=actor,
        action=audit.Action.FEED_IMPORT,
        subject=str(path),
        inputs={"path": str(path), "reader": item.reader, "sha256": sha256},
        details={
            "reader": item.reader,
            "sha256": sha256,
            "advisories": item.advisories,
            "kev": item.kev,
            "epss": item.epss,
            "problems": len(item.problems),
        },
    )


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
    matched: bool = True
    """False when an incremental scan skipped the asset: same inventory digest and same
    advisory set as when it was last matched, so its findings cannot have changed."""


@dataclass(slots=True, kw_only=True)
class ScanReport:
    """What ``scan`` did."""

    assets: list[AssetScan] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Assets whose inventory could not be collected (the others were scanned)."""
    skipped: list[Skip] = field(default_factory=list)
    """Versions that could not be compared (recorded, never silently dropped)."""
    distinct_keys: int = 0
    """Distinct (ecosystem, name, version) triples matched (each once for the whole fleet;
    keys only found on assets an incremental scan skipped are not counted)."""
    advisories_considered: int = 0
    """Advisories that affect an installed name (loaded, or behind a reused result)."""
    reused_keys: int = 0
    """Distinct keys whose match results an earlier scan of the same advisory set (and the
    same matching code) had kept: not matched again (see ``match_cache`` in the store)."""
    scored: int = 0
    """Findings whose stored risk the scan computed (written ones, and those of assets whose
    context changed; all open ones when the weights or intel changed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedInventory:
    """An inventory reduced to what a scan stores and matches (see :func:`prepare_inventory`).

    It is small and picklable, so a collector can prepare inventories in worker processes
    and stream them to :func:`scan`.
    """

    asset: Asset
    """The asset and its context."""
    distro: str | None
    """The distro release (``Debian:11``), as in :class:`Inventory`."""
    source: str
    """Where the inventory came from."""
    digest: str
    """:func:`patchwarden.store.bulk.inventory_digest` of the rows and distro."""
    rows: InventoryColumns | None
    """Distinct packages (:func:`patchwarden.store.bulk.inventory_rows`, as columns); None when the
    collector knows that the inventory is the one already stored under :attr:`digest` (it
    saw the same input again), which spares re-reading it."""
    packages: int
    """Installed packages before deduplication."""
    unsupported: int
    """Packages of ecosystems without a version ordering."""
    signature: str | None = None
    """The signature of the files the rows were collected from
    (:func:`patchwarden.collect.source_signature`; None: not from plain files). Stored with the
    asset, so that the next fleet scan can skip reading files with the same signature."""


@functools.lru_cache(maxsize=1024)
def _ecosystem(text: str) -> Ecosystem | None:
    try:
        return Ecosystem.parse(text)
    except UnknownEcosystem:
        return None


def prepare_inventory(inventory: Inventory) -> PreparedInventory:
    """Reduce an inventory to its sorted distinct rows and digest.

    >>> from patchwarden.model import Asset, AssetId
    >>> inv = Inventory(asset=Asset(id=AssetId("h")), packages=(
    ...     InstalledPackage(ecosystem="PyPI", name="jinja2", version="2.10"),
    ...     InstalledPackage(ecosystem="Nowhere", name="x", version="1")))
    >>> p = prepare_inventory(inv)
    >>> (p.packages, p.unsupported, p.rows[1][0])
    (2, 1, 'PyPI\\tjinja2\\t2.10\\t\\t')
    """
    rows = InventoryColumns.of(inventory_rows(inventory.packages))
    return PreparedInventory(
        asset=inventory.asset,
        distro=inventory.distro,
        source=inventory.source,
        digest=inventory_digest(rows.lines, inventory.distro),
        rows=rows,
        packages=len(inventory.packages),
        unsupported=sum(1 for p in inventory.packages if _ecosystem(p.ecosystem) is None),
    )


def prepare_rows(
    asset: Asset,
    rows: Iterable[InventoryRow],
    *,
    distro: str | None,
    source: str,
) -> PreparedInventory:
    """:func:`prepare_inventory` for rows a collector already reduced
    (:meth:`~patchwarden.inventory.interface.Collector.collect_rows`), several lists merged.

    Of rows with the same line the last one's location and purl win, as in
    :func:`~patchwarden.model.inventory_rows`; ``packages`` counts the distinct rows.

    >>> from patchwarden.model import Asset, AssetId
    >>> p = prepare_rows(Asset(id=AssetId("h")), [("PyPI\\tjinja2\\t2.10\\t\\t", "/a", None),
    ...     ("Nowhere\\tx\\t1\\t\\t", None, None)], distro=None, source="t")
    >>> (p.packages, p.unsupported, p.rows[1][0])
    (2, 1, 'PyPI\\tjinja2\\t2.10\\t\\t')
    """
    given = list(rows)
    # of rows with the same line, the last one wins
    by_line = dict(zip(map(_LINE, given), given, strict=True))
    if len(by_line) == len(given):  # the usual case: sorting on the unique lines suffices
        given.sort(key=_LINE)
        merged = given
    else:
        merged = [by_line[line] for line in sorted(by_line)]
    columns = InventoryColumns.of(merged)
    return PreparedInventory(
        asset=asset,
        distro=distro,
        source=source,
        digest=inventory_digest(columns.lines, distro),
        rows=columns,
        packages=len(columns),
        unsupported=_unsupported(columns.lines),
    )


def _unsupported(lines: Sequence[str]) -> int:
    """How many sorted lines have an ecosystem without a version ordering.

    A line starts with its ecosystem and a tab, so each ecosystem's lines are one run of the
    sorted lines: found by bisection, one ecosystem look-up per run, not per line.
    """
    count = start = 0
    while start < len(lines):
        ecosystem = _line_ecosystem(lines[start])
        end = bisect.bisect_right(lines, ecosystem, lo=start, key=_line_ecosystem)
        if _ecosystem(ecosystem) is None:
            count += end - start
        start = end
    return count


def _line_ecosystem(line: str) -> str:
    return line.partition("\t")[0]


def _line_key(line: str) -> PackageKey | None:
    ecosystem, name, version, source_name, source_version = line.split("\t")
    return package_key(
        InstalledPackage(
            ecosystem=ecosystem,
            name=name,
            version=version,
            source_name=source_name or None,
            source_version=source_version or None,
        )
    )


@dataclass(slots=True)
class _ScanState:
    """What one scan learns once and reuses for every batch of assets."""

    advisory_digest: str
    match_digest: str
    """Under which digest match results are kept and reused (:func:`_match_digest`)."""
    scorer: Scorer
    """Scores the findings the scan writes (their stored risk)."""
    reused: int = 0
    """Keys whose match results came from the store's match cache."""
    line_keys: dict[str, PackageKey | None] = field(default_factory=dict)
    matches: dict[PackageKey, tuple[Match, ...]] = field(default_factory=dict)
    hits: dict[str, tuple[PackageKey, str]] = field(default_factory=dict)
    """Lines whose key has matches -> (key, binary package name)."""
    index_of: dict[tuple[str, str], AdvisoryIndex] = field(default_factory=dict)
    advisory_ids: set[str] = field(default_factory=set)
    canon: dict[str, VulnId] = field(default_factory=dict)
    package_ids: dict[str, int] = field(default_factory=dict)
    lines_by_id: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    """Package id -> (line, purl) of stored inventories re-read by this scan."""
    skips: set[Skip] = field(default_factory=set)
    drafts: dict[Any, list[FindingDraft]] = field(default_factory=dict)
    binary_keys: dict[PackageKey, set[PackageKey]] = field(default_factory=dict)
    """Ubuntu source keys -> the binary keys whose matches were merged into them."""
    actor: str = ""
    """Who the ``scan`` audit entries name."""


def scan(
    store: Store,
    inventories: Iterable[Inventory | PreparedInventory],
    *,
    observer: Observer | None = None,
    now: dt.datetime | None = None,
    batch_size: int = _SCAN_BATCH,
    actor: str | None = None,
    weights: RiskWeights | None = None,
    total: int | None = None,
) -> ScanReport:
    """Match every inventory against the stored advisories and update findings.

    Inventories are streamed: ``batch_size`` assets at a time are stored, matched and
    synced in one transaction (a failure leaves no half-written asset); assets sent without
    rows (unchanged files) count an eighth. Identical (ecosystem, package, version) keys
    across assets are matched once per scan. An asset whose inventory digest and advisory
    set are both unchanged since it was last matched is not matched again (incremental
    scan): its open findings are marked seen. Each asset appends a ``scan`` audit entry in
    its batch's transaction (``actor`` defaults to :func:`patchwarden.audit.default_actor`).

    The findings are ranked as they are written: each gets its risk score under ``weights``
    (the policy's; None: those of the stored ranking), and the stored ranking is brought up
    to date at the end (:func:`patchwarden.prioritize.rank`), so an incremental scan
    re-ranks only what changed. ``total`` (how many inventories will come, when known) sizes
    the observer's progress.
    """
    obs = observer or NullObserver()
    now = now or _now()
    report = ScanReport()
    scorer = Scorer(store, weights if weights is not None else ranking_weights(store))
    with store.transaction() as conn:
        advisory_digest = store.advisory_digest(conn)
        state = _ScanState(
            advisory_digest=advisory_digest,
            match_digest=_match_digest(advisory_digest),
            actor=actor or audit.default_actor(),
            scorer=scorer,
        )
        store.prune_match_cache(conn, state.match_digest)
        prepare_ranking(store, conn, scorer.weights, advisory_digest)
    obs.stage("scanning", total)
    batch: list[PreparedInventory] = []
    ids: set[str] = set()
    weight = 0
    for inv in inventories:
        prepared = inv if isinstance(inv, PreparedInventory) else prepare_inventory(inv)
        if prepared.asset.id in ids or weight >= batch_size * _UNREAD_WEIGHT:
            with gc_paused():
                _scan_batch(store, batch, state, report, now)
            obs.advance(len(batch))
            batch, ids, weight = [], set(), 0
        batch.append(prepared)
        ids.add(prepared.asset.id)
        weight += 1 if prepared.rows is None else _UNREAD_WEIGHT
    if batch:
        with gc_paused():
            _scan_batch(store, batch, state, report, now)
        obs.advance(len(batch))
    report.distinct_keys = len(state.matches)
    report.advisories_considered = len(state.advisory_ids)
    report.reused_keys = state.reused
    written = sum(a.findings.new + a.findings.resolved + a.findings.reopened for a in report.assets)
    with gc_paused():
        report.scored += rank(store, advisory_digest=advisory_digest, scorer=scorer)
    if written >= _ANALYZE_AFTER:
        store.analyze()
    report.skipped = sorted(state.skips, key=Skip.sort_key)
    return report


def _scan_batch(
    store: Store,
    batch: Sequence[PreparedInventory],
    state: _ScanState,
    report: ScanReport,
    now: dt.datetime,
) -> None:
    with store.transaction() as conn:
        stored_assets = store.stored_assets(conn, [p.asset.id for p in batch])
        stored = {asset_id: s.digests for asset_id, s in stored_assets.items()}
        rows_of: dict[str, InventoryColumns] = {}
        from_store: list[str] = []
        for p in batch:
            old = stored.get(p.asset.id)
            if old == (p.digest, state.advisory_digest):
                continue
            if p.rows is not None:
                rows_of[p.asset.id] = p.rows
            elif old is not None and old[0] == p.digest:
                from_store.append(p.asset.id)
            else:
                raise StoreError(
                    f"asset {p.asset.id!r}: inventory digest {p.digest} is not the stored "
                    "one; the full inventory is needed"
                )
        if from_store:
            rows_of.update(store.stored_rows_many(conn, from_store, state.lines_by_id))
        _match_new_keys(store, conn, rows_of.values(), state)
        # the findings of an asset whose context changed are scored again
        moved = [
            p.asset.id
            for p in batch
            if p.asset.id in stored_assets
            and profile(stored_assets[p.asset.id].asset) != profile(p.asset)
        ]
        store.clear_risk(conn, moved)
        state.scorer.add_assets(p.asset for p in batch)
        written = store.write_inventories(
            conn,
            [
                InventoryWrite(
                    asset=p.asset,
                    distro=p.distro,
                    source=p.source,
                    digest=p.digest,
                    rows=rows_of.get(p.asset.id, p.rows),
                    stored=stored.get(p.asset.id),
                    signature=p.signature,
                    unsupported=p.unsupported,
                    # collected unread: distro, source, signature and counts are the stored
                    same_row=p.rows is None
                    and p.signature is not None
                    and p.asset.id in stored_assets
                    and stored_assets[p.asset.id].asset == p.asset,
                )
                for p in batch
            ],
            ids=state.package_ids,
            advisory_digest=state.advisory_digest,
            now=now,
        )
        results: dict[str, AssetScan] = {}
        unchanged: list[str] = []
        drafts_by_asset: dict[str, list[FindingDraft]] = {}
        hits = state.hits
        for p, changed in zip(batch, written, strict=True):
            rows = rows_of.get(p.asset.id)
            results[p.asset.id] = AssetScan(
                asset=p.asset.id,
                packages=p.packages,
                changed=changed,
                unsupported=p.unsupported,
                matched=rows is not None,
            )
            if rows is None:
                unchanged.append(p.asset.id)
                continue
            by_key: dict[PackageKey, list[str]] = defaultdict(list)
            # C-level look-ups over the ~1,500 rows; only the few lines with matches loop here
            for key, binary in filter(None, map(hits.get, rows.lines)):
                by_key[key].append(binary)
            drafts_by_asset[p.asset.id] = _drafts(by_key, state.matches, state.canon, state.drafts)
        synced = store.sync_findings_many(
            conn, drafts_by_asset, now, canonical=state.canon, risk=state.scorer
        )
        report.scored += sum(len(d) for d in drafts_by_asset.values())
        for asset_id, counts in synced.items():
            results[asset_id].findings = counts
        if unchanged:
            open_counts = store.touch_unchanged(conn, unchanged)
            for asset_id in unchanged:
                results[asset_id].findings = SyncCounts(still_open=open_counts.get(asset_id, 0))
        audit.append_many(conn, [_scan_event(p, results[p.asset.id], state) for p in batch])
    report.assets.extend(results[p.asset.id] for p in batch)


def _scan_event(p: PreparedInventory, scanned: AssetScan, state: _ScanState) -> audit.AuditEvent:
    return audit.AuditEvent(
        actor=state.actor,
        action=audit.Action.SCAN,
        subject=p.asset.id,
        inputs={
            "inventory_digest": p.digest,
            "advisory_digest": state.advisory_digest,
            "source": p.source,
        },
        details={
            "packages": scanned.packages,
            "matched": scanned.matched,
            "inventory_changed": scanned.changed,
            "findings": scanned.findings,
        },
    )


def _match_new_keys(
    store: Store,
    conn: Connection,
    row_sets: Iterable[InventoryColumns],
    state: _ScanState,
) -> None:
    """Match the keys not seen earlier in this scan; load advisories for new names only."""
    new_keys: set[PackageKey] = set()
    line_keys = state.line_keys
    new_binaries: dict[PackageKey, set[PackageKey]] = defaultdict(set)
    for rows in row_sets:
        # only lines not seen earlier in this scan reach the loop body (C-level filter)
        for line in filterfalse(line_keys.__contains__, rows.lines):
            if line not in line_keys:  # a line twice in one inventory is handled once
                key = line_keys[line] = _line_key(line)
                if key is not None and key not in state.matches:
                    new_keys.add(key)
                by_binary = _binary_key(line, key)
                if (
                    key is not None
                    and by_binary is not None
                    and by_binary not in state.binary_keys.get(key, ())
                ):
                    new_binaries[key].add(by_binary)
                    if by_binary not in state.matches:
                        new_keys.add(by_binary)
    if not new_keys and not new_binaries:
        return
    # keys an earlier scan matched against the same advisories with the same code: reused
    cached = store.cached_matches(conn, state.match_digest, new_keys) if new_keys else {}
    for key, (found, skipped) in cached.items():
        state.matches[key] = found
        state.skips.update(skipped)
    state.reused += len(cached)
    reused_names = {_base_name(key) for key in cached} - state.index_of.keys()
    if reused_names:
        state.advisory_ids.update(store.advisory_ids_for(conn, reused_names))
    names: dict[PackageKey, tuple[str, str]] = {}
    for key in new_keys - cached.keys():
        names[key] = _base_name(key)
    fresh = set(names.values()) - state.index_of.keys()
    if fresh:
        advisories = store.advisories_for(conn, fresh)
        state.advisory_ids.update(a.id for a in advisories)
        index = AdvisoryIndex.build(advisories)
        for name in fresh:
            state.index_of[name] = index
    groups: dict[int, tuple[AdvisoryIndex, list[PackageKey]]] = {}
    for key in names:
        index = state.index_of[names[key]]
        groups.setdefault(id(index), (index, []))[1].append(key)
    results: dict[PackageKey, tuple[tuple[Match, ...], tuple[Skip, ...]]] = {}
    for index, keys in groups.values():
        for key in sorted(keys, key=lambda k: (k.ecosystem, k.name, k.version)):
            result = match([key], index)  # key by key: each key's skips are kept with it
            state.skips.update(result.skipped)
            found = state.matches[key] = result.matches.get(key, ())
            results[key] = (found, result.skipped)
    store.cache_matches(conn, state.match_digest, results)
    for key, binary_keys in new_binaries.items():
        _merge_binary_matches(state, key, binary_keys)
    vids = {
        v
        for key in new_keys | new_binaries.keys()
        for m in state.matches[key]
        for v in m.vulnerability_ids
    } - state.canon.keys()
    if vids:
        state.canon.update(store.canonical_ids(conn, vids))
        for canonical in set(state.canon.values()):  # a canonical id is its own canonical id
            state.canon.setdefault(canonical, canonical)
    changed = new_keys | new_binaries.keys()
    for line, key in line_keys.items():
        if key in changed and state.matches[key] and line not in state.hits:
            state.hits[line] = (key, line.split("\t", 2)[1])


def _base_name(key: PackageKey) -> tuple[str, str]:
    """(base ecosystem, name): what advisories are looked up by."""
    eco = _ecosystem(key.ecosystem)
    assert eco is not None  # package_key returns None for unknown ecosystems
    return (eco.base.value, key.name)


def _match_digest(advisory_digest: str) -> str:
    """The digest match results are kept under: the advisory set's and the matching code's.

    A result computed by other code (a changed rule, a version scheme fix) must never be
    reused, so the code part is a digest of the source of the modules that decide a match.
    """
    return hashlib.sha256(f"{advisory_digest}\n{_code_digest()}".encode()).hexdigest()


@functools.cache
def _code_digest() -> str:
    """A digest of the matcher's source: match, version schemes, ecosystems, model, codec."""
    import patchwarden.match
    import patchwarden.model
    import patchwarden.store.codec
    import patchwarden.versions

    modules = (patchwarden.match, patchwarden.model, patchwarden.store.codec)
    files = [Path(m.__file__ or "") for m in (*modules, sys.modules[Ecosystem.__module__])]
    files += sorted(Path(patchwarden.versions.__file__ or "").parent.glob("*.py"))
    return source_digest(tuple(files))


def _binary_key(line: str, key: PackageKey | None) -> PackageKey | None:
    """The binary package's own key for an Ubuntu package whose source has another name.

    Ubuntu's USN OVAL names the *binary* packages it tests (``libtiff6``) and often no source
    name, while findings are keyed by source package (``tiff``). Matching the binary name too
    keeps such advisories from being missed (a false negative is a breach); the matches are
    merged into the source package's finding, so nothing is reported twice.
    """
    if key is None or not key.ecosystem.lower().startswith("ubuntu"):
        return None
    ecosystem, name, version, _, _ = line.split("\t")
    eco = _ecosystem(ecosystem)
    if eco is None:
        return None
    binary = normalize_name(eco, name)
    if binary == key.name:
        return None
    return PackageKey(ecosystem=ecosystem, name=binary, version=version)


def _merge_binary_matches(
    state: _ScanState, key: PackageKey, binary_keys: Iterable[PackageKey]
) -> None:
    """Add to ``key`` (a source package) the matches of its binaries' keys it lacks."""
    known = state.binary_keys.setdefault(key, set())
    merged = list(state.matches.get(key, ()))
    seen = {m.advisory_id for m in merged}
    for binary_key in sorted(binary_keys, key=lambda k: (k.name, k.version)):
        known.add(binary_key)
        for m in state.matches.get(binary_key, ()):
            if m.advisory_id not in seen:
                seen.add(m.advisory_id)
                merged.append(dataclasses.replace(m, key=key))
    if len(merged) != len(state.matches.get(key, ())):
        state.matches[key] = tuple(sorted(merged, key=lambda m: m.advisory_id))
        # drafts cached for this package were made from the shorter match list
        package = (key.ecosystem, key.name)
        for memo in [m for m in state.drafts if m[1] == package]:
            del state.drafts[memo]


_STATE_PRIORITY = (FixState.NO_FIX, FixState.UNDER_INVESTIGATION, FixState.WILL_NOT_FIX)


def _drafts(
    by_key: dict[PackageKey, list[str]],
    matches: dict[PackageKey, tuple[Match, ...]],
    canon: dict[str, VulnId],
    cache: dict[Any, list[FindingDraft]] | None = None,
) -> list[FindingDraft]:
    """One draft per (package, vulnerability) of one asset, sorted.

    ``cache`` (valid for one ``matches``/``canon``) reuses the drafts of a package that
    another asset has at the same versions with the same binaries.

    ``by_key`` maps each key of the asset to the names of the binary packages that have it.
    Several advisories for one vulnerability (a PYSEC and a GHSA record) are merged: the
    finding counts as fixed only when every one of them names a fixed version, and its fixed
    version is the highest of those (the version that satisfies every source). When one asset
    has the same package at several versions (two Python environments), the lowest installed
    version is reported.
    """
    per_package: dict[tuple[str, str], dict[PackageKey, list[str]]] = defaultdict(dict)
    for key, names in by_key.items():
        per_package[(key.ecosystem, key.name)][key] = names
    drafts: list[FindingDraft] = []
    for package in sorted(per_package):
        subset = per_package[package]
        memo = (
            tuple(sorted((k.version, tuple(sorted(set(n)))) for k, n in subset.items())),
            package,
        )
        found = cache.get(memo) if cache is not None else None
        if found is None:
            found = _package_drafts(subset, matches, canon)
            if cache is not None:
                cache[memo] = found
        drafts.extend(found)
    return drafts


def _package_drafts(
    by_key: dict[PackageKey, list[str]],
    matches: dict[PackageKey, tuple[Match, ...]],
    canon: dict[str, VulnId],
) -> list[FindingDraft]:
    """:func:`_drafts` for the keys of one (ecosystem, package) of one asset."""
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
        binaries = sorted({name for k in keys for name in by_key[k]})
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
