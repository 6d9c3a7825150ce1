"""Persistence: SQLite by default, PostgreSQL for teams, one code path for both.

:class:`Store` owns the engine and migrates the schema to the newest Alembic revision when
opened. Every write method takes a :class:`~sqlalchemy.engine.Connection` inside a
transaction that the caller opened with :meth:`Store.transaction`, so a use case (importing
one feed file, scanning one fleet) commits as a whole or not at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql as _pg
from sqlalchemy.dialects import sqlite as _sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from patchwarden.ecosystems import Ecosystem, normalize_name
from patchwarden.errors import NotFound, StoreError, UnknownEcosystem
from patchwarden.match import Skip
from patchwarden.model import (
    Advisory,
    Asset,
    AssetId,
    AssetKind,
    Environment,
    EpssScore,
    Finding,
    FixState,
    Inventory,
    KevEntry,
    Match,
    PackageKey,
    Severity,
    SeverityScore,
    VulnId,
)
from patchwarden.severity import best
from patchwarden.store import schema as t
from patchwarden.store.bulk import (
    InventoryColumns,
    InventoryRow,
    db_time,
    expand_runs,
    gc_paused,
    insert_ignore,
    inventory_digest,
    inventory_rows,
    pack_ids,
    unpack_ids,
    update_many,
)
from patchwarden.store.bulk import insert_many as _insert_many
from patchwarden.store.codec import (
    decode_advisory,
    decode_match_result,
    encode_advisory,
    encode_match_result,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_CHUNK = 500
_FINDING_COLUMNS = (
    "asset_id",
    "ecosystem",
    "package",
    "installed_version",
    "binaries",
    "vulnerability",
    "advisories",
    "fix_state",
    "fixed_version",
    "first_seen",
    "last_seen",
    "risk",
    "ssvc",
)


def default_url() -> str:
    """``$PATCHWARDEN_DB``, else a SQLite file in the user's data directory."""
    env = os.environ.get("PATCHWARDEN_DB")
    if env:
        return env
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite:///{base / 'patchwarden' / 'patchwarden.db'}"


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and a bare SQLite file path.

    >>> normalize_url("postgresql://127.0.0.1/test")
    'postgresql+psycopg://127.0.0.1/test'
    >>> normalize_url("/tmp/x.db")
    'sqlite:////tmp/x.db'
    """
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True, slots=True, kw_only=True)
class AdvisoryCounts:
    """What an advisory upsert did."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryWrite:
    """One asset's inventory as a scan writes it (:meth:`Store.write_inventories`)."""

    asset: Asset
    """The asset and its context (the asset row is always upserted)."""
    distro: str | None
    """The distro release (``Debian:11``)."""
    source: str
    """Where the inventory came from."""
    digest: str
    """:func:`patchwarden.store.bulk.inventory_digest` of ``rows``."""
    rows: InventoryColumns | None
    """The distinct packages; None only when ``digest`` is the stored one."""
    stored: tuple[str | None, str | None] | None
    """What :meth:`Store.stored_digests` returned for the asset (None: a new asset)."""
    signature: str | None = None
    """The signature of the files the inventory was collected from (None: unknown)."""
    unsupported: int | None = None
    """How many of its packages have no version ordering (None: not counted)."""
    same_row: bool = False
    """True when the stored asset row already holds this asset, distro, source, signature
    and unsupported count (a rescan of an unchanged asset: only its scan time and advisory
    digest are written, for a whole batch in one statement)."""


_FLEET_FILES_KEPT = 4
"""Fleet files kept in ``fleet_cache`` (a few fleets, or one fleet file as it changes)."""


class StoredAsset(NamedTuple):
    """A stored asset as a scan compares it (:meth:`Store.stored_assets`)."""

    asset: Asset
    """Its context."""
    digests: tuple[str | None, str | None]
    """(inventory digest, advisory digest) of its latest scan."""


class Collected(NamedTuple):
    """What the store remembers of an asset's latest collection (:meth:`Store.collected`)."""

    signature: str
    """The signature of the files the inventory was collected from."""
    digest: str
    """The inventory's digest."""
    packages: int
    """Its distinct packages."""
    unsupported: int
    """Of them, those without a version ordering."""
    distro: str | None
    """The distro it was collected with."""
    source: str
    """The sources it was collected from, as the scan named them."""


class RiskOf(Protocol):
    """What :meth:`Store.sync_findings_many` asks for the risk of the findings it writes
    (:class:`patchwarden.prioritize.Scorer` is one)."""

    def load(self, conn: Connection, vulnerability_ids: Iterable[str]) -> None:
        """Read what scoring those (canonical) vulnerability ids needs, before the calls."""

    def __call__(self, asset_id: str, vulnerability: str) -> tuple[float, int]:
        """(risk score, SSVC decision rank) of ``vulnerability`` on ``asset_id``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingDraft:
    """A finding as one scan computes it, before the store merges it with history."""

    ecosystem: str
    package: str
    installed_version: str
    binaries: tuple[str, ...]
    vulnerability: VulnId
    advisories: tuple[str, ...]
    fix_state: FixState
    fixed_version: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncCounts:
    """What merging one asset's scan into the findings table did."""

    new: int = 0
    still_open: int = 0
    reopened: int = 0
    resolved: int = 0


class RankedFinding(NamedTuple):
    """An open finding as :meth:`Store.ranked_findings` gives it: what ranking and planning
    read. A named tuple, not a dataclass: a fleet has hundreds of thousands of them."""

    id: int
    """Store id."""
    asset: str
    ecosystem: str
    package: str
    vulnerability: str
    """Canonical vulnerability id."""
    fixed_version: str | None
    kev: bool
    severity: Severity
    cvss_score: float | None
    epss: float | None
    risk: float | None
    """The stored risk score (None: not scored yet, see :func:`patchwarden.prioritize.rank`)."""
    ssvc: int | None
    """The stored SSVC decision's rank (:attr:`patchwarden.risk.Decision.rank`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingFilter:
    """Which findings to list."""

    assets: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    min_severity: Severity | None = None
    kev_only: bool = False
    fix_states: tuple[FixState, ...] = ()
    include_resolved: bool = False
    vulnerability: str | None = None


class Store:
    """The database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True) -> Store:
        """Connect to ``url`` (default :func:`default_url`) and migrate it to the newest schema."""
        url = normalize_url(url or default_url())
        try:
            if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, future=True)
        except (SQLAlchemyError, OSError, ValueError) as exc:
            raise StoreError(f"cannot open database {_redact(url)}: {exc}") from exc
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        if migrate:
            store.migrate()
        return store

    def migrate(self) -> None:
        """Upgrade the schema to the newest Alembic revision (no-op when current)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
                head = ScriptDirectory.from_config(config).get_current_head()
                if current == head:
                    return
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot migrate database {_redact(str(self.engine.url))}: {exc}"
            ) from exc

    def analyze(self) -> None:
        """Refresh the query planner's statistics (``ANALYZE``) after a bulk load.

        PostgreSQL only: its planner needs row counts and distributions to choose index
        scans; SQLite's planner chooses its indexes without statistics.
        """
        if self.engine.dialect.name != "postgresql":
            return
        with self.transaction() as conn:
            for table in ("findings", "assets", "asset_inventories", "packages", "match_cache"):
                conn.exec_driver_sql(f"ANALYZE {table}")

    def close(self) -> None:
        """Release every connection."""
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection in a transaction: committed on success, rolled back on any error."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {exc}") from exc

    # ------------------------------------------------------------------ intel

    def upsert_advisories(
        self, conn: Connection, batch: Sequence[Advisory], now: dt.datetime
    ) -> AdvisoryCounts:
        """Insert new advisories; replace stored ones only when ``modified`` is newer.

        Importing the same records twice changes nothing (idempotent).
        """
        latest: dict[str, Advisory] = {}
        for adv in batch:  # within one batch the newest record of an id wins
            old = latest.get(adv.id)
            if old is None or adv.modified > old.modified:
                latest[adv.id] = adv
        stored: dict[str, dt.datetime] = {}
        ids = list(latest)
        for chunk in _chunks(ids):
            rows = conn.execute(
                sa.select(t.advisories.c.id, t.advisories.c.modified).where(
                    t.advisories.c.id.in_(chunk)
                )
            )
            stored.update({r.id: r.modified for r in rows})
        fresh = [a for a in latest.values() if a.id not in stored]
        newer = [a for a in latest.values() if a.id in stored and a.modified > stored[a.id]]
        if newer:  # a newer date on the same content (a feed without dates) is no change
            newer = self._content_changed(conn, newer)
        unchanged = len(batch) - len(fresh) - len(newer)
        if newer or fresh:
            self._clear_advisory_digest(conn)
        if newer:
            newer_ids = [a.id for a in newer]
            for chunk in _chunks(newer_ids):
                for table in (t.advisory_ids, t.affected_names):
                    conn.execute(table.delete().where(table.c.advisory_id.in_(chunk)))
                conn.execute(t.advisories.delete().where(t.advisories.c.id.in_(chunk)))
        todo = fresh + newer
        if todo:
            conn.execute(
                t.advisories.insert(),
                [
                    {
                        "id": a.id,
                        "source": a.source,
                        "modified": a.modified,
                        "published": a.published,
                        "withdrawn": a.withdrawn,
                        "summary": a.summary[:2000],
                        "record": encode_advisory(a),
                        "imported_at": now,
                    }
                    for a in todo
                ],
            )
            id_rows = {
                (a.id, other, relation)
                for a in todo
                for relation, others in (
                    ("alias", a.aliases),
                    ("upstream", a.upstream),
                    ("related", a.related),
                )
                for other in others
                if other != a.id
            }
            if id_rows:
                conn.execute(
                    t.advisory_ids.insert(),
                    [{"advisory_id": a, "other_id": o, "relation": r} for a, o, r in id_rows],
                )
            name_rows = set()
            for a in todo:
                for aff in a.affected:
                    try:
                        eco = Ecosystem.parse(aff.ecosystem)
                    except UnknownEcosystem:
                        continue
                    name_rows.add((a.id, eco.base.value, normalize_name(eco, aff.name)))
            if name_rows:
                conn.execute(
                    t.affected_names.insert(),
                    [{"advisory_id": a, "ecosystem_base": b, "name": n} for a, b, n in name_rows],
                )
        return AdvisoryCounts(inserted=len(fresh), updated=len(newer), unchanged=unchanged)

    def _content_changed(self, conn: Connection, candidates: list[Advisory]) -> list[Advisory]:
        """The candidates whose record differs from the stored one in more than ``modified``."""
        encoded = {a.id: encode_advisory(a) for a in candidates}
        changed: list[Advisory] = []
        by_id = {a.id: a for a in candidates}
        for chunk in _chunks(sorted(by_id)):
            for row in conn.execute(
                sa.select(t.advisories.c.id, t.advisories.c.record).where(
                    t.advisories.c.id.in_(chunk)
                )
            ):
                new = dict(encoded[row.id], modified=None)
                if new != dict(row.record, modified=None):
                    changed.append(by_id[row.id])
        return changed

    def upsert_kev(self, conn: Connection, entries: Sequence[KevEntry]) -> int:
        """Insert or replace KEV entries; returns how many rows changed."""
        changed = 0
        by_id = {e.cve_id: e for e in entries}
        existing: dict[str, tuple[Any, ...]] = {}
        for chunk in _chunks(list(by_id)):
            for stored in conn.execute(sa.select(t.kev).where(t.kev.c.cve_id.in_(chunk))):
                existing[stored.cve_id] = tuple(stored)
        rows: list[dict[str, Any]] = []
        for entry in by_id.values():
            row: dict[str, Any] = {
                "cve_id": entry.cve_id,
                "date_added": entry.date_added,
                "due_date": entry.due_date,
                "known_ransomware": entry.known_ransomware,
                "vendor": entry.vendor,
                "product": entry.product,
                "name": entry.name,
            }
            if existing.get(entry.cve_id) != tuple(row.values()):
                rows.append(row)
        for chunk in _chunks([r["cve_id"] for r in rows]):
            conn.execute(t.kev.delete().where(t.kev.c.cve_id.in_(chunk)))
        if rows:
            conn.execute(t.kev.insert(), rows)
            changed = len(rows)
        return changed

    def replace_epss(self, conn: Connection, scores: Sequence[EpssScore]) -> int:
        """Replace the EPSS table with a whole day's scores; returns the row count."""
        conn.execute(t.epss.delete())
        for chunk in _chunks(scores, 20_000):
            conn.execute(
                t.epss.insert(),
                [{"cve_id": s.cve_id, "epss": s.epss, "percentile": s.percentile} for s in chunk],
            )
        return len(scores)

    def feed_info(self, conn: Connection, feed: str) -> sa.Row[Any] | None:
        """The stored metadata row of ``feed`` (kev, epss, osv, ...)."""
        return conn.execute(sa.select(t.feeds).where(t.feeds.c.feed == feed)).first()

    def set_feed_info(
        self,
        conn: Connection,
        *,
        feed: str,
        version: str | None,
        date: dt.datetime | None,
        path: str,
        records: int,
        now: dt.datetime,
    ) -> None:
        """Record what was last imported for ``feed``."""
        conn.execute(t.feeds.delete().where(t.feeds.c.feed == feed))
        conn.execute(
            t.feeds.insert().values(
                feed=feed, version=version, date=date, path=path, imported_at=now, records=records
            )
        )

    def feeds(self) -> list[dict[str, Any]]:
        """Every feed's last import, plus table counts."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(t.feeds))]

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables."""
        tables = {
            "advisories": t.advisories,
            "vulnerabilities": t.vulnerabilities,
            "kev": t.kev,
            "epss": t.epss,
            "assets": t.assets,
            "packages": t.packages,
        }
        packed = t.asset_inventories.c.package_ids
        with self.engine.connect() as conn:
            out = {
                name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
                for name, table in tables.items()
            }
            # installed rows: 8 bytes per package id in the assets' packed inventories
            out["installed"] = (
                int(
                    conn.execute(
                        sa.select(sa.func.coalesce(sa.func.sum(sa.func.length(packed)), 0))
                    ).scalar_one()
                )
                // 8
            )
            out["open_findings"] = int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(t.findings)
                    .where(t.findings.c.resolved_at.is_(None))
                ).scalar_one()
            )
        return out

    def rebuild_vulnerabilities(self, conn: Connection) -> int:
        """Recompute alias groups, canonical ids and severities from all advisories.

        One vulnerability known under several ids (CVE, GHSA, PYSEC, ...) is one group; the
        canonical id is its CVE (the smallest when a group has several), else the smallest
        GHSA, else the smallest id. ``upstream`` ids become vulnerabilities of their own.
        """
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            root = x
            while parent.setdefault(root, root) != root:
                root = parent[root]
            while parent[x] != root:
                parent[x], x = root, parent[x]
            return root

        def union(a: str, b: str) -> None:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)

        has_upstream: set[str] = set()
        for row in conn.execute(sa.select(t.advisory_ids)):
            if row.relation == "alias":
                union(row.advisory_id, row.other_id)
            elif row.relation == "upstream":
                has_upstream.add(row.advisory_id)
                find(row.other_id)
        severities: dict[str, list[SeverityScore]] = defaultdict(list)
        summaries: dict[str, str] = {}
        for row in conn.execute(sa.select(t.advisories.c.id, t.advisories.c.record)):
            if row.id in has_upstream and row.id not in parent:
                continue  # a DSA-like record: its upstream ids are the vulnerabilities
            find(row.id)
            record = row.record
            severities[row.id].extend(
                SeverityScore(type=s["type"], score=s["score"]) for s in record.get("severity", ())
            )
            if record.get("summary") or record.get("details"):
                summaries.setdefault(row.id, record.get("summary") or record["details"][:200])
        groups: dict[str, list[str]] = defaultdict(list)
        for node in list(parent):
            groups[find(node)].append(node)
        vuln_rows: list[dict[str, Any]] = []
        id_rows: list[dict[str, str]] = []
        for members in groups.values():
            canonical = canonical_id(members)
            rated = best(s for m in members for s in severities.get(m, ()))
            summary = next((summaries[m] for m in sorted(members) if m in summaries), "")
            source = next(
                (
                    m
                    for m in sorted(members)
                    if any(s.score == rated.vector for s in severities.get(m, ()))
                ),
                None,
            )
            vuln_rows.append(
                {
                    "id": canonical,
                    "aliases": sorted(m for m in members if m != canonical),
                    "summary": summary,
                    "severity": rated.severity.value,
                    "cvss_score": rated.score,
                    "cvss_vector": rated.vector,
                    "cvss_source": source,
                }
            )
            id_rows.extend({"id": m, "vulnerability": canonical} for m in members)
        self._clear_advisory_digest(conn)
        conn.execute(t.vulnerability_ids.delete())
        conn.execute(t.vulnerabilities.delete())
        for chunk in _chunks(vuln_rows, 10_000):
            conn.execute(t.vulnerabilities.insert(), list(chunk))
        for chunk in _chunks(id_rows, 10_000):
            conn.execute(t.vulnerability_ids.insert(), list(chunk))
        return len(vuln_rows)

    def canonical_ids(self, conn: Connection, ids: Iterable[str]) -> dict[str, VulnId]:
        """Map each id to its canonical vulnerability id (itself when unknown)."""
        wanted = sorted(set(ids))
        out: dict[str, VulnId] = {i: VulnId(i) for i in wanted}
        for chunk in _chunks(wanted):
            for row in conn.execute(
                sa.select(t.vulnerability_ids).where(t.vulnerability_ids.c.id.in_(chunk))
            ).all():
                out[row.id] = VulnId(row.vulnerability)
        return out

    def advisories_for(self, conn: Connection, names: Iterable[tuple[str, str]]) -> list[Advisory]:
        """Every advisory that affects one of ``names`` ((base ecosystem, normalised name))."""
        ids = self.advisory_ids_for(conn, names)
        out = []
        for chunk in _chunks(sorted(ids)):
            for row in conn.execute(
                sa.select(t.advisories.c.record).where(t.advisories.c.id.in_(chunk))
            ):
                out.append(decode_advisory(row.record))
        return out

    def advisory_ids_for(self, conn: Connection, names: Iterable[tuple[str, str]]) -> set[str]:
        """The ids of the advisories that affect one of ``names`` (no record is read)."""
        by_base: dict[str, list[str]] = defaultdict(list)
        for base, name in set(names):
            by_base[base].append(name)
        ids: set[str] = set()
        for base, base_names in by_base.items():
            for chunk in _chunks(sorted(base_names)):
                ids.update(
                    conn.execute(
                        sa.select(t.affected_names.c.advisory_id).where(
                            t.affected_names.c.ecosystem_base == base,
                            t.affected_names.c.name.in_(chunk),
                        )
                    )
                    .scalars()
                    .all()  # fetchall: iterating fetches row by row
                )
        return ids

    def advisory_digest(self, conn: Connection) -> str:
        """A digest of the stored advisory set (ids and ``modified``) and its alias groups.

        An asset matched against the same digest and with the same inventory has the same
        findings, so an incremental scan skips it. Computing it reads every advisory and
        alias row, so it is kept (``advisory_state``): imports clear it, and it is used only
        while the tables' fingerprint (row counts, latest import) is the one it was made from.
        """
        st = t.advisory_state
        fingerprint = self._advisory_fingerprint(conn)
        kept = conn.execute(sa.select(st.c.digest, st.c.fingerprint).where(st.c.id == 1)).first()
        if kept is not None and kept.digest is not None and kept.fingerprint == fingerprint:
            return str(kept.digest)
        digest = self._compute_advisory_digest(conn)
        _upsert(conn, st, {"id": 1}, {"digest": digest, "fingerprint": fingerprint})
        return digest

    def _advisory_fingerprint(self, conn: Connection) -> str:
        a = t.advisories.c
        count, latest = conn.execute(sa.select(sa.func.count(), sa.func.max(a.imported_at))).one()
        aliases = conn.execute(
            sa.select(sa.func.count()).select_from(t.vulnerability_ids)
        ).scalar_one()
        stamp = None if latest is None else _utc(latest).isoformat()
        return f"{count}:{aliases}:{stamp}"

    def _clear_advisory_digest(self, conn: Connection) -> None:
        conn.execute(t.advisory_state.update().values(digest=None))

    def _compute_advisory_digest(self, conn: Connection) -> str:
        h = hashlib.sha256()
        a, v = t.advisories.c, t.vulnerability_ids.c
        for advisory_id, modified in _raw_rows(
            conn, sa.select(a.id, a.modified).order_by(a.id)
        ):  # driver rows: SQLite gives the stored text, parsed once per distinct value
            h.update(f"{advisory_id}\t{_utc(modified).isoformat()}\n".encode())
        for vid, canonical in _raw_rows(conn, sa.select(v.id, v.vulnerability).order_by(v.id)):
            h.update(f"{vid}\t{canonical}\n".encode())
        return h.hexdigest()

    def cached_matches(
        self, conn: Connection, digest: str, keys: Iterable[PackageKey]
    ) -> dict[PackageKey, tuple[tuple[Match, ...], tuple[Skip, ...]]]:
        """The stored match results (matches, skips) of those ``keys`` matched under ``digest``."""
        by_text = {_key_text(k): k for k in keys}
        c = t.match_cache.c
        out: dict[PackageKey, tuple[tuple[Match, ...], tuple[Skip, ...]]] = {}
        for chunk in _chunks(sorted(by_text)):
            for text, result in conn.execute(
                sa.select(c.key, c.result).where(c.digest == digest, c.key.in_(chunk))
            ).all():
                key = by_text[text]
                out[key] = decode_match_result(result, key)
        return out

    def cache_matches(
        self,
        conn: Connection,
        digest: str,
        results: Mapping[PackageKey, tuple[tuple[Match, ...], tuple[Skip, ...]]],
    ) -> None:
        """Keep what matching each key found under ``digest`` (a key already kept stays)."""
        rows = sorted(
            (digest, _key_text(key), json.dumps(encode_match_result(*found)))
            for key, found in results.items()
        )
        insert_ignore(conn, "match_cache", ("digest", "key", "result"), rows)

    def prune_match_cache(self, conn: Connection, digest: str) -> int:
        """Delete the match results kept under any other digest; returns how many."""
        c = t.match_cache.c
        return int(conn.execute(t.match_cache.delete().where(c.digest != digest)).rowcount)

    def get_advisory(self, advisory_id: str) -> Advisory | None:
        """One stored advisory by id."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.advisories.c.record).where(t.advisories.c.id == advisory_id)
            ).first()
        return None if row is None else decode_advisory(row.record)

    # ------------------------------------------------------------------ assets

    def save_inventory(self, conn: Connection, inventory: Inventory, now: dt.datetime) -> bool:
        """Store an asset and its packages; False when nothing changed since the last scan."""
        rows = InventoryColumns.of(inventory_rows(inventory.packages))
        stored = self.stored_digests(conn, [inventory.asset.id]).get(inventory.asset.id)
        return self.write_inventory(
            conn,
            asset=inventory.asset,
            distro=inventory.distro,
            source=inventory.source,
            digest=inventory_digest(rows.lines, inventory.distro),
            rows=rows,
            stored=stored,
            ids={},
            advisory_digest=None,
            now=now,
        )

    def stored_digests(
        self, conn: Connection, asset_ids: Sequence[str]
    ) -> dict[str, tuple[str | None, str | None]]:
        """(inventory digest, advisory digest) of the stored assets among ``asset_ids``."""
        return {k: v.digests for k, v in self.stored_assets(conn, asset_ids).items()}

    def stored_assets(self, conn: Connection, asset_ids: Sequence[str]) -> dict[str, StoredAsset]:
        """The stored assets among ``asset_ids``: their context and digests, in one read (a
        scan compares both for every asset of every batch)."""
        a = t.assets.c
        columns = (*_ASSET_COLUMNS, a.inventory_digest, a.advisory_digest)
        out: dict[str, StoredAsset] = {}
        for chunk in _chunks(list(asset_ids)):
            for row in conn.execute(sa.select(*columns).where(a.id.in_(chunk))).all():
                out[row.id] = StoredAsset(
                    asset=_asset_of(row), digests=(row.inventory_digest, row.advisory_digest)
                )
        return out

    def fleet_data(self, digest: str) -> str | None:
        """A fleet file's data kept under ``digest`` (the store is a
        :class:`~patchwarden.inventory.fleet.FleetCache`)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(t.fleet_cache.c.data).where(t.fleet_cache.c.digest == digest)
            ).scalar()
        return None if found is None else str(found)

    def save_fleet_data(self, digest: str, text: str) -> None:
        """Keep a fleet file's data under ``digest``; of the others, the latest few are kept."""
        fc = t.fleet_cache
        now = dt.datetime.now(dt.UTC)
        with self.transaction() as conn:
            _upsert(conn, fc, {"digest": digest}, {"data": text, "saved_at": now})
            keep = sa.select(fc.c.digest).order_by(fc.c.saved_at.desc()).limit(_FLEET_FILES_KEPT)
            conn.execute(fc.delete().where(fc.c.digest.not_in(keep)))

    def collected(self, conn: Connection | None = None) -> dict[str, Collected]:
        """What the store remembers of each asset's latest collection from plain files (assets
        without a source signature are left out): a fleet scan skips reading files whose
        signature is the same (see :mod:`patchwarden.collect`)."""
        if conn is None:
            with self.engine.connect() as own:
                return self.collected(own)
        a = t.assets.c
        query = sa.select(
            a.id,
            a.source_signature,
            a.inventory_digest,
            a.package_count,
            a.unsupported_count,
            a.distro,
            a.inventory_source,
        ).where(
            a.source_signature.is_not(None),
            a.inventory_digest.is_not(None),
            a.unsupported_count.is_not(None),
        )
        return {
            r[0]: Collected(
                signature=r[1],
                digest=r[2],
                packages=r[3],
                unsupported=r[4],
                distro=r[5],
                source=r[6],
            )
            for r in conn.execute(query).all()
        }

    def stored_rows(self, conn: Connection, asset_id: str) -> InventoryColumns:
        """The stored packages of one asset as :func:`inventory_rows` gives them."""
        return self.stored_rows_many(conn, [asset_id]).get(asset_id) or InventoryColumns.of([])

    def stored_rows_many(
        self,
        conn: Connection,
        asset_ids: Sequence[str],
        lines: dict[int, tuple[str, str | None]] | None = None,
    ) -> dict[str, InventoryColumns]:
        """:meth:`stored_rows` of several assets (those without a stored inventory are left out).

        ``lines`` caches package id -> (line, purl) across calls (a scan re-reading many
        assets reads each distinct package once).
        """
        inv = t.asset_inventories.c
        packed: dict[str, tuple[list[int], list[str | None]]] = {}
        for chunk in _chunks(list(asset_ids)):
            for row in conn.execute(
                sa.select(inv.asset_id, inv.package_ids, inv.locations).where(
                    inv.asset_id.in_(chunk)
                )
            ).all():
                ids, locations = unpack_ids(bytes(row.package_ids)), expand_runs(row.locations)
                if len(ids) != len(locations):
                    raise StoreError(
                        f"asset {row.asset_id!r}: stored inventory has {len(ids)} package ids "
                        f"but {len(locations)} locations"
                    )
                packed[row.asset_id] = (ids, locations)
        cache = {} if lines is None else lines
        wanted = sorted({i for ids, _ in packed.values() for i in ids} - cache.keys())
        p = t.packages.c
        for chunk in _chunks(wanted):
            for r in conn.execute(
                sa.select(
                    p.id, p.ecosystem, p.name, p.version, p.source_name, p.source_version, p.purl
                ).where(p.id.in_(chunk))
            ).all():
                cache[r.id] = ("\t".join((r[1], r[2], r[3], r[4], r[5])), r.purl)
        out: dict[str, InventoryColumns] = {}
        for asset_id, (ids, locations) in packed.items():
            try:
                out[asset_id] = InventoryColumns.of(
                    sorted(
                        (cache[i][0], loc, cache[i][1])
                        for i, loc in zip(ids, locations, strict=True)
                    )
                )
            except KeyError as exc:
                raise StoreError(
                    f"asset {asset_id!r}: stored inventory names package id {exc.args[0]}, "
                    "which is not in the packages table"
                ) from exc
        return out

    def write_inventory(
        self,
        conn: Connection,
        *,
        asset: Asset,
        distro: str | None,
        source: str,
        digest: str,
        rows: InventoryColumns | None,
        stored: tuple[str | None, str | None] | None,
        ids: dict[str, int],
        advisory_digest: str | None,
        now: dt.datetime,
    ) -> bool:
        """:meth:`write_inventories` for one asset; True when its inventory changed."""
        item = InventoryWrite(
            asset=asset, distro=distro, source=source, digest=digest, rows=rows, stored=stored
        )
        (changed,) = self.write_inventories(
            conn, [item], ids=ids, advisory_digest=advisory_digest, now=now
        )
        return changed

    def write_inventories(
        self,
        conn: Connection,
        items: Sequence[InventoryWrite],
        *,
        ids: dict[str, int],
        advisory_digest: str | None,
        now: dt.datetime,
    ) -> list[bool]:
        """Upsert the asset rows and replace the inventory row of each asset whose digest changed.

        Each asset's inventory is one ``asset_inventories`` row (its package ids packed into
        a blob), written only when the digest differs from the stored one. ``ids`` caches
        package ids by line across calls. Returns, per item, True when its inventory changed.
        The statements are batched (one per kind of write), so a scan pays per batch of
        assets, not per asset or per installed package.
        """
        changed: list[bool] = []
        for item in items:
            same = item.stored is not None and item.stored[0] == item.digest
            if not same and item.rows is None:
                raise StoreError(
                    f"asset {item.asset.id!r}: inventory digest {item.digest} is not the stored "
                    "one; the full inventory is needed"
                )
            changed.append(not same)
        todo = [item for item, c in zip(items, changed, strict=True) if c]
        # one C-level look-up pass per inventory; misses (new packages) are few after the
        # first batches of a scan
        no_rows = InventoryColumns.of([])
        id_lists: list[list[Any]] = [
            list(map(ids.get, (item.rows or no_rows).lines)) for item in todo
        ]
        missing: dict[str, str | None] = {}
        for item, got in zip(todo, id_lists, strict=True):
            if None in got:
                rows = item.rows or no_rows
                for line, purl, pid in zip(rows.lines, rows.purls, got, strict=True):
                    if pid is None and line not in missing:  # a package's first purl is kept
                        missing[line] = purl
        if missing:
            self._add_packages(conn, missing, ids)
            id_lists = [
                got if None not in got else list(map(ids.__getitem__, (item.rows or no_rows).lines))
                for item, got in zip(todo, id_lists, strict=True)
            ]
        fresh: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        touched: list[dict[str, Any]] = []
        seen: list[str] = []
        for item, c in zip(items, changed, strict=True):
            asset = item.asset
            if item.same_row and not c:
                seen.append(asset.id)
                continue
            values: dict[str, Any] = {
                "kind": asset.kind.value,
                "environment": asset.environment.value,
                "criticality": asset.criticality,
                "internet_exposed": asset.internet_exposed,
                "data_sensitivity": asset.data_sensitivity,
                "service": asset.service,
                "owner": asset.owner,
                "tags": list(asset.tags),
                "maintenance_window": asset.maintenance_window,
                "distro": item.distro,
                "inventory_source": item.source,
                "inventory_digest": item.digest,
                "last_scanned": now,
                "advisory_digest": advisory_digest,
                "source_signature": item.signature,
                "unsupported_count": item.unsupported,
            }
            if item.stored is None:
                fresh.append({"id": asset.id, "package_count": len(item.rows or ()), **values})
            elif c:
                updated.append({"asset": asset.id, "package_count": len(item.rows or ()), **values})
            else:
                touched.append({"asset": asset.id, **values})
        # through the driver: a scan writes every asset's row (10,000 per fleet scan)
        stamp = db_time(conn, now)
        for group in (fresh, updated, touched):
            for values in group:
                values["tags"] = json.dumps(values["tags"])
                values["last_scanned"] = stamp
        if fresh:
            _insert_many(conn, "assets", list(fresh[0]), [tuple(v.values()) for v in fresh])
        for group in (updated, touched):
            if group:
                columns = [k for k in group[0] if k != "asset"]
                update_many(
                    conn,
                    "assets",
                    "id",
                    columns,
                    [(*(v[c] for c in columns), v["asset"]) for v in group],
                )
        a = t.assets.c
        for chunk in _chunks(seen):  # only the scan's time and advisory set are new
            conn.execute(
                t.assets.update()
                .where(a.id.in_(chunk))
                .values(last_scanned=now, advisory_digest=advisory_digest)
            )
        replaced = [item.asset.id for item in todo if item.stored is not None]
        inv = t.asset_inventories
        for chunk in _chunks(replaced):
            conn.execute(inv.delete().where(inv.c.asset_id.in_(chunk)))
        if todo:
            conn.execute(
                inv.insert(),
                [
                    {
                        "asset_id": item.asset.id,
                        "package_ids": pack_ids(got),
                        "locations": (item.rows or no_rows).locations,
                    }
                    for item, got in zip(todo, id_lists, strict=True)
                ],
            )
        return changed

    def package_ids(
        self, conn: Connection, rows: Iterable[InventoryRow], cache: dict[str, int]
    ) -> list[int]:
        """Ids of the packages of ``rows`` (in order), inserting the ones not stored yet.

        New packages are inserted in sorted order with ``ON CONFLICT DO NOTHING`` and read
        back, so that several workers scanning disjoint assets into one PostgreSQL database
        may meet the same new package at once (the later insert waits for the earlier one and
        then does nothing; the sorted order keeps two workers from deadlocking).
        """
        rows = list(rows)
        missing = {row[0]: row[2] for row in rows if row[0] not in cache}
        if missing:
            self._add_packages(conn, missing, cache)
        return [cache[row[0]] for row in rows]

    def _add_packages(
        self, conn: Connection, missing: Mapping[str, str | None], cache: dict[str, int]
    ) -> None:
        """Put the ids of the ``missing`` lines (line -> purl) into ``cache``, inserting the
        packages that are not stored yet (see :meth:`package_ids`)."""
        if missing:
            cache.update(self._select_package_ids(conn, {k.split("\t")[1] for k in missing}))
            new = sorted((line, purl) for line, purl in missing.items() if line not in cache)
            if new:
                dialect = conn.dialect.name
                insert: Any = (
                    _pg.insert(t.packages)
                    if dialect == "postgresql"
                    else _sqlite.insert(t.packages)
                )
                conn.execute(
                    insert.on_conflict_do_nothing(),
                    [
                        dict(
                            zip(
                                ("ecosystem", "name", "version", "source_name", "source_version"),
                                line.split("\t"),
                                strict=True,
                            ),
                            purl=purl,
                        )
                        for line, purl in new
                    ],
                )
                cache.update(self._select_package_ids(conn, {k.split("\t")[1] for k, _ in new}))

    def _select_package_ids(self, conn: Connection, names: set[str]) -> dict[str, int]:
        """Stored package ids by their :func:`inventory_rows` line, for packages named ``names``."""
        cols = t.packages.c
        ids: dict[str, int] = {}
        for chunk in _chunks(sorted(names)):
            for row in conn.execute(
                sa.select(
                    cols.id,
                    cols.ecosystem,
                    cols.name,
                    cols.version,
                    cols.source_name,
                    cols.source_version,
                ).where(cols.name.in_(chunk))
            ):
                line = "\t".join(
                    (row.ecosystem, row.name, row.version, row.source_name, row.source_version)
                )
                ids[line] = row.id
        return ids

    def assets(self) -> list[dict[str, Any]]:
        """Every asset with its context and open finding counts."""
        open_counts = (
            sa.select(t.findings.c.asset_id, sa.func.count().label("open_findings"))
            .where(t.findings.c.resolved_at.is_(None))
            .group_by(t.findings.c.asset_id)
            .subquery()
        )
        query = (
            sa.select(t.assets, sa.func.coalesce(open_counts.c.open_findings, 0).label("open"))
            .outerjoin(open_counts, open_counts.c.asset_id == t.assets.c.id)
            .order_by(t.assets.c.id)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def get_asset(self, asset_id: str) -> Asset | None:
        """One asset's context."""
        return self.assets_by_id([asset_id]).get(asset_id)

    def update_asset(self, asset: Asset, *, conn: Connection | None = None) -> None:
        """Replace an existing asset's context (environment, criticality, exposure, ...).

        With ``conn`` it runs in the caller's transaction (so an audit entry can commit with
        it); without, in a transaction of its own.
        """
        if conn is None:
            with self.transaction() as own:
                self.update_asset(asset, conn=own)
            return
        done = conn.execute(
            t.assets.update()
            .where(t.assets.c.id == asset.id)
            .values(
                kind=asset.kind.value,
                environment=asset.environment.value,
                criticality=asset.criticality,
                internet_exposed=asset.internet_exposed,
                data_sensitivity=asset.data_sensitivity,
                service=asset.service,
                owner=asset.owner,
                tags=list(asset.tags),
                maintenance_window=asset.maintenance_window,
            )
        )
        if done.rowcount != 1:
            raise NotFound(f"no asset {asset.id!r}")
        self.clear_risk(conn, [asset.id])  # scored again with the new context

    # ------------------------------------------------------------------ findings

    def sync_findings(
        self,
        conn: Connection,
        asset_id: str,
        drafts: Sequence[FindingDraft],
        now: dt.datetime,
        *,
        canonical: dict[str, VulnId] | None = None,
    ) -> SyncCounts:
        """Merge one full scan of ``asset_id`` into its findings.

        Findings seen again keep their ``first_seen`` and get ``last_seen = now``; new ones
        start at ``now``; a resolved one seen again is re-opened; open ones not seen any more
        are resolved at ``now``. Stored findings are re-keyed by their current canonical id, so
        a vulnerability that gained a CVE alias since the last scan stays the same finding.
        ``canonical`` is a known part of the id -> canonical id mapping (a scan's cache); the
        rest is looked up.
        """
        return self.sync_findings_many(conn, {asset_id: drafts}, now, canonical=canonical)[asset_id]

    def sync_findings_many(
        self,
        conn: Connection,
        drafts_by_asset: Mapping[str, Sequence[FindingDraft]],
        now: dt.datetime,
        *,
        canonical: dict[str, VulnId] | None = None,
        risk: RiskOf | None = None,
    ) -> dict[str, SyncCounts]:
        """:meth:`sync_findings` for several assets with one read, one insert, one update.

        New findings go in through the driver (``executemany`` on SQLite, ``COPY`` on
        PostgreSQL): a first scan of 10,000 hosts inserts more than half a million. Every
        finding written (new, seen again or re-opened) gets its risk from ``risk``; without
        it, its stored risk is cleared (NULL: to be scored by
        :func:`patchwarden.prioritize.rank`).
        """
        f = t.findings.c
        stored_by: dict[str, list[Any]] = {a: [] for a in drafts_by_asset}
        for chunk in _chunks(list(drafts_by_asset)):
            for row in conn.execute(
                sa.select(
                    f.id, f.asset_id, f.ecosystem, f.package, f.vulnerability, f.resolved_at
                ).where(f.asset_id.in_(chunk))
            ).all():
                stored_by[row.asset_id].append(row)
        known = canonical or {}
        wanted = {r.vulnerability for rows in stored_by.values() for r in rows}
        wanted.update(d.vulnerability for ds in drafts_by_asset.values() for d in ds)
        canon = {i: known[i] for i in wanted if i in known}
        missing = [i for i in wanted if i not in known]
        if missing:
            canon.update(self.canonical_ids(conn, missing))
        if risk is not None:
            risk.load(conn, set(canon.values()))
        no_risk: tuple[float | None, int | None] = (None, None)
        stamp = db_time(conn, now)
        inserts: list[tuple[Any, ...]] = []
        updates: list[dict[str, Any]] = []
        gone: list[int] = []
        out: dict[str, SyncCounts] = {}
        json_of: dict[tuple[str, ...], str] = {}

        def as_json(values: tuple[str, ...]) -> str:
            text = json_of.get(values)
            if text is None:
                text = json_of[values] = json.dumps(list(values))
            return text

        # a scan hands in the same draft objects for every asset with the same package at
        # the same version, so each draft's part of the insert row is built once (by id:
        # every draft stays alive in ``drafts_by_asset`` for this call)
        head_of: dict[int, tuple[Any, ...]] = {}
        times = (stamp, stamp)
        for asset_id, drafts in drafts_by_asset.items():
            stored = stored_by[asset_id]
            by_key = {(r.ecosystem, r.package, canon[r.vulnerability]): r for r in stored}
            seen: set[int] = set()
            new = still = reopened = 0
            asset = (asset_id,)
            for d in drafts:
                head = head_of.get(id(d))
                if head is None:
                    head = head_of[id(d)] = (
                        d.ecosystem,
                        d.package,
                        d.installed_version,
                        as_json(d.binaries),
                        canon[d.vulnerability],
                        as_json(d.advisories),
                        d.fix_state.value,
                        d.fixed_version,
                    )
                vulnerability = head[4]
                scored = no_risk if risk is None else risk(asset_id, vulnerability)
                hit = by_key.get((d.ecosystem, d.package, vulnerability)) if by_key else None
                if hit is None:
                    inserts.append(asset + head + times + scored)
                    new += 1
                    continue
                seen.add(hit.id)
                if hit.resolved_at is None:
                    still += 1
                else:
                    reopened += 1
                updates.append(
                    {
                        "row_id": hit.id,
                        "installed_version": d.installed_version,
                        "binaries": list(d.binaries),
                        "vulnerability": vulnerability,
                        "advisories": list(d.advisories),
                        "fix_state": d.fix_state.value,
                        "fixed_version": d.fixed_version,
                        "last_seen": now,
                        "resolved_at": None,
                        "risk": scored[0],
                        "ssvc": scored[1],
                    }
                )
            resolved = [r.id for r in stored if r.resolved_at is None and r.id not in seen]
            gone.extend(resolved)
            out[asset_id] = SyncCounts(
                new=new, still_open=still, reopened=reopened, resolved=len(resolved)
            )
        if updates:  # one executemany instead of one statement per finding
            conn.execute(
                t.findings.update()
                .where(f.id == sa.bindparam("row_id"))
                .values({k: sa.bindparam(k) for k in updates[0] if k != "row_id"}),
                updates,
            )
        _insert_many(conn, "findings", _FINDING_COLUMNS, inserts)
        for chunk in _chunks(gone):
            conn.execute(t.findings.update().where(f.id.in_(chunk)).values(resolved_at=now))
        return out

    def touch_unchanged(self, conn: Connection, asset_ids: Sequence[str]) -> dict[str, int]:
        """The open finding count per asset skipped by an incremental scan (what
        :meth:`sync_findings` would have reported as ``still_open``).

        No finding row is written: an open finding was seen by its asset's latest scan, so
        :meth:`findings` reports ``last_seen`` as the later of the stored value and the
        asset's ``last_scanned`` (which every scan of the asset sets). A rescan of 10,000
        hosts of which 1% changed thus writes the changed hosts' findings only, not the
        600,000 of the others.
        """
        f = t.findings.c
        counts: dict[str, int] = {}
        for chunk in _chunks(list(asset_ids)):
            for row in conn.execute(
                sa.select(f.asset_id, sa.func.count())
                .where(f.asset_id.in_(chunk), f.resolved_at.is_(None))
                .group_by(f.asset_id)
            ).all():
                counts[row[0]] = int(row[1])
        return counts

    def findings(self, flt: FindingFilter | None = None) -> list[Finding]:
        """Findings with their vulnerability, KEV and EPSS data, most severe first.

        A fleet has hundreds of thousands of findings, so the rows are read as plain tuples:
        JSON lists and timestamps are decoded once per distinct stored value (findings share
        their binaries, advisories, alias lists and scan times), and vulnerability, KEV and
        EPSS data once per vulnerability, not once per row.
        """
        flt = flt or FindingFilter()
        f = t.findings.c
        text, raw = sa.Text, sa.String
        query = sa.select(
            f.id,
            f.asset_id,
            f.ecosystem,
            f.package,
            f.installed_version,
            sa.cast(f.binaries, text),
            f.vulnerability,
            sa.cast(f.advisories, text),
            f.fix_state,
            f.fixed_version,
            sa.type_coerce(f.first_seen, raw),
            sa.type_coerce(f.last_seen, raw),
            sa.type_coerce(f.resolved_at, raw),
        )
        if not flt.include_resolved:
            query = query.where(_open_or_restarting())
        if flt.assets:
            query = query.where(f.asset_id.in_(flt.assets))
        if flt.packages:
            query = query.where(f.package.in_(flt.packages))
        if flt.fix_states:
            query = query.where(f.fix_state.in_([s.value for s in flt.fix_states]))
        if flt.vulnerability:
            query = query.where(f.vulnerability == flt.vulnerability)
        lists = _Decoded(_json_tuple)
        with self.engine.connect() as conn, gc_paused():
            rows = conn.execute(query).all()
            restarting = set(
                conn.execute(
                    sa.select(t.pending_restarts.c.finding_id).where(
                        t.pending_restarts.c.cleared_at.is_(None)
                    )
                ).scalars()
            )
            context = _vulnerability_context(conn, {r[6] for r in rows}, lists)
            scanned: dict[str, Any] = {}
            a = t.assets.c
            for chunk in _chunks(sorted({r[1] for r in rows if r[12] is None})):
                scanned.update(
                    conn.execute(
                        sa.select(a.id, sa.type_coerce(a.last_scanned, raw)).where(a.id.in_(chunk))
                    ).all()
                )
        min_rank = flt.min_severity.rank if flt.min_severity is not None else None
        with gc_paused():
            return self._findings_of(rows, context, scanned, restarting, flt, min_rank)

    def _findings_of(
        self,
        rows: Sequence[Any],
        context: dict[str, _VulnContext],
        scanned: dict[str, Any],
        restarting: set[int],
        flt: FindingFilter,
        min_rank: int | None,
    ) -> list[Finding]:
        lists = _Decoded(_json_tuple)
        when = _Decoded(_utc)
        fix_states = {s.value: s for s in FixState}
        out = []
        for r in rows:
            ids, severity, score, kev, top = context[r[6]]
            if flt.kev_only and not kev:
                continue
            if min_rank is not None and severity.rank < min_rank:
                continue
            pending_restart = r[0] in restarting
            out.append(
                Finding(
                    id=r[0],
                    asset=AssetId(r[1]),
                    ecosystem=r[2],
                    package=r[3],
                    installed_version=r[4],
                    binaries=lists(r[5]),
                    vulnerability=VulnId(r[6]),
                    aliases=ids[1:],
                    advisories=lists(r[7]),
                    fix_state=fix_states[r[8]],
                    fixed_version=r[9],
                    severity=severity,
                    cvss_score=score,
                    kev=kev,
                    epss=None if top is None else top[0],
                    epss_percentile=None if top is None else top[1],
                    first_seen=when(r[10]),
                    last_seen=_later(when(r[11]), scanned.get(r[1]), when)
                    if r[12] is None
                    else when(r[11]),
                    resolved_at=None if pending_restart or r[12] is None else when(r[12]),
                    pending_restart=pending_restart,
                )
            )
        out.sort(
            key=lambda x: (
                -int(x.kev),
                -x.severity.rank,
                -(x.cvss_score or 0.0),
                -(x.epss or 0.0),
                x.asset,
                x.package,
                x.vulnerability,
            )
        )
        return out

    def ranked_findings(self, limit: int | None = None) -> list[RankedFinding]:
        """The open findings :meth:`findings` lists, ranked by their stored risk, with only what
        ranking and planning read (the lean read path for a whole fleet).

        The order is :func:`patchwarden.prioritize.sort_key`'s: highest risk first, then the
        more urgent SSVC decision, then asset, package, vulnerability and id; findings not
        scored yet come last (:func:`patchwarden.prioritize.rank` scores them). The database
        sorts; the vulnerability data is read once per vulnerability. ``limit``: the top only.
        """
        f = t.findings.c
        query = (
            sa.select(
                f.id,
                f.asset_id,
                f.ecosystem,
                f.package,
                f.vulnerability,
                f.fixed_version,
                f.risk,
                f.ssvc,
            )
            .where(_open_or_restarting())
            .order_by(
                f.risk.is_(None),
                f.risk.desc(),
                f.ssvc.desc(),
                *map(self._bytewise, (f.asset_id, f.package, f.vulnerability)),
                f.id,
            )
        )
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn, gc_paused():
            rows = _raw_rows(conn, query)
            context = _vulnerability_context(conn, {r[4] for r in rows}, _Decoded(_json_tuple))
            lean = {
                vid: (c.kev, c.severity, c.cvss_score, c.epss and c.epss[0])
                for vid, c in context.items()
            }
            make = RankedFinding._make
            return [
                make((finding_id, asset, ecosystem, package, vid, fixed, *lean[vid], risk, ssvc))
                for finding_id, asset, ecosystem, package, vid, fixed, risk, ssvc in rows
            ]

    def _bytewise(self, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
        """``column`` compared as Python compares str (PostgreSQL's default collation is the
        locale's, which orders ``web-01`` and ``web_01`` differently)."""
        return column.collate("C") if self.engine.dialect.name == "postgresql" else column

    # ------------------------------------------------------------------ stored risk

    def risk_state(self, conn: Connection) -> tuple[str, dict[str, Any]] | None:
        """(basis, weights) the stored risk scores were computed with (None: never set)."""
        row = conn.execute(
            sa.select(t.risk_state.c.basis, t.risk_state.c.weights).where(t.risk_state.c.id == 1)
        ).first()
        return None if row is None else (row.basis, dict(row.weights))

    def reset_risk(self, conn: Connection, basis: str, weights: dict[str, Any]) -> None:
        """Clear every stored risk score and record the basis and weights to score under."""
        conn.execute(t.findings.update().where(t.findings.c.risk.is_not(None)).values(risk=None))
        # an upsert: workers scanning into one PostgreSQL database may both set it
        _upsert(conn, t.risk_state, {"id": 1}, {"basis": basis, "weights": weights})

    def clear_risk(self, conn: Connection, asset_ids: Sequence[str]) -> None:
        """Clear the stored risk of those assets' findings (their context changed)."""
        f = t.findings.c
        for chunk in _chunks(list(asset_ids)):
            conn.execute(t.findings.update().where(f.asset_id.in_(chunk)).values(risk=None))

    def unscored_findings(self, conn: Connection) -> list[tuple[int, str, str]]:
        """(id, asset, vulnerability) of the open findings without a stored risk."""
        f = t.findings.c
        query = sa.select(f.id, f.asset_id, f.vulnerability).where(
            _open_or_restarting(), f.risk.is_(None)
        )
        return [(r[0], r[1], r[2]) for r in _raw_rows(conn, query)]

    def set_risk(self, conn: Connection, scores: Sequence[tuple[float, int, int]]) -> None:
        """Store (risk, SSVC rank, finding id) triples."""
        update_many(conn, "findings", "id", ("risk", "ssvc"), scores)

    def vulnerability_context(
        self, conn: Connection, vulnerability_ids: Iterable[str]
    ) -> dict[str, tuple[tuple[str, ...], Severity, tuple[float, float] | None]]:
        """(ids: the canonical one then its aliases, severity, top (EPSS, percentile)) of each
        canonical vulnerability id, exactly as :meth:`findings` gives them to its findings."""
        context = _vulnerability_context(conn, vulnerability_ids, _Decoded(_json_tuple))
        return {vid: (c.ids, c.severity, c.epss) for vid, c in context.items()}

    # ------------------------------------------------------------------ risk context

    @contextmanager
    def _reading(self, conn: Connection | None) -> Iterator[Connection]:
        """``conn``, or a connection of its own for the duration."""
        if conn is not None:
            yield conn
            return
        with self.engine.connect() as own:
            yield own

    def kev_entries(
        self, ids: Iterable[str], *, conn: Connection | None = None
    ) -> dict[str, KevEntry]:
        """KEV entries of those ids that are listed."""
        out: dict[str, KevEntry] = {}
        with self._reading(conn) as db:
            for chunk in _chunks(sorted(set(ids))):
                for r in db.execute(sa.select(t.kev).where(t.kev.c.cve_id.in_(chunk))).all():
                    out[r.cve_id] = KevEntry(
                        cve_id=r.cve_id,
                        date_added=r.date_added,
                        due_date=r.due_date,
                        known_ransomware=r.known_ransomware,
                        vendor=r.vendor,
                        product=r.product,
                        name=r.name,
                    )
        return out

    def vulnerability_rows(
        self, ids: Iterable[str], *, conn: Connection | None = None
    ) -> dict[str, dict[str, Any]]:
        """Stored vulnerability rows (aliases, summary, severity, CVSS) by canonical id."""
        out: dict[str, dict[str, Any]] = {}
        with self._reading(conn) as db:
            for chunk in _chunks(sorted(set(ids))):
                for r in db.execute(
                    sa.select(t.vulnerabilities).where(t.vulnerabilities.c.id.in_(chunk))
                ).all():
                    out[r.id] = dict(r._mapping)
        return out

    def assets_by_id(
        self, ids: Iterable[str], *, conn: Connection | None = None
    ) -> dict[str, Asset]:
        """Asset context by id (only those that exist); in ``conn``'s transaction if given."""
        out: dict[str, Asset] = {}
        with self._reading(conn) as db:
            for chunk in _chunks(sorted(set(ids))):
                query = sa.select(*_ASSET_COLUMNS).where(t.assets.c.id.in_(chunk))
                for row in db.execute(query).all():
                    out[row.id] = _asset_of(row)
        return out

    # ------------------------------------------------------------------ vex (issue 9)

    def replace_vex_document(
        self, conn: Connection, document: str, rows: Sequence[dict[str, Any]], now: dt.datetime
    ) -> tuple[int, int]:
        """Store a VEX document's statements, replacing what it said before.

        ``rows`` carry ``key``, ``source``, ``vulnerability``, ``status`` and ``record``.
        Returns (statements stored, earlier statements of the document no longer in it).
        """
        v = t.vex_statements
        old = set(conn.execute(sa.select(v.c.key).where(v.c.document == document)).scalars())
        conn.execute(v.delete().where(v.c.document == document))
        if rows:
            conn.execute(
                v.insert(), [{**r, "document": document, "imported_at": now} for r in rows]
            )
        return len(rows), len(old - {r["key"] for r in rows})

    def withdraw_vex(self, conn: Connection, target: str) -> list[dict[str, Any]]:
        """Delete a VEX document (by id) or one statement (by key); return the deleted rows."""
        v = t.vex_statements
        cond = sa.or_(v.c.document == target, v.c.key == target)
        rows = [dict(r._mapping) for r in conn.execute(sa.select(v).where(cond))]
        conn.execute(v.delete().where(cond))
        return rows

    def vex_statements(self, conn: Connection | None = None) -> list[dict[str, Any]]:
        """Every stored VEX statement row, ordered by key."""
        query = sa.select(t.vex_statements).order_by(t.vex_statements.c.key)
        if conn is not None:
            return [dict(r._mapping) for r in conn.execute(query)]
        with self.engine.connect() as own:
            return [dict(r._mapping) for r in own.execute(query)]


def canonical_id(members: Iterable[str]) -> str:
    """The id a group of aliases is shown under: CVE, else GHSA, else the smallest.

    >>> canonical_id(["PYSEC-2021-1", "GHSA-aaaa-bbbb-cccc", "CVE-2021-1234"])
    'CVE-2021-1234'
    >>> canonical_id(["PYSEC-2021-1", "GHSA-aaaa-bbbb-cccc"])
    'GHSA-aaaa-bbbb-cccc'
    """
    ordered = sorted(set(members))
    for prefix in ("CVE-", "GHSA-"):
        hits = [m for m in ordered if m.startswith(prefix)]
        if hits:
            return hits[0]
    return ordered[0]


class _VulnContext(NamedTuple):
    """What findings take from their vulnerability (one per vulnerability, not per row)."""

    ids: tuple[str, ...]
    """The canonical id, then its aliases."""
    severity: Severity
    cvss_score: float | None
    kev: bool
    epss: tuple[float, float] | None
    """The highest (EPSS, percentile) of any id."""


def _open_or_restarting() -> sa.ColumnElement[bool]:
    """Open findings, and those fixed on disk while the old code still runs (not resolved yet)."""
    f = t.findings.c
    pending = (
        sa.select(t.pending_restarts.c.finding_id)
        .where(t.pending_restarts.c.cleared_at.is_(None))
        .scalar_subquery()
    )
    return sa.or_(f.resolved_at.is_(None), f.id.in_(pending))


_ASSET_COLUMNS = tuple(
    t.assets.c[name]
    for name in (
        "id",
        "kind",
        "environment",
        "criticality",
        "internet_exposed",
        "data_sensitivity",
        "service",
        "owner",
        "tags",
        "maintenance_window",
    )
)
"""The columns :func:`_asset_of` reads."""


def _upsert(conn: Connection, table: sa.Table, key: dict[str, Any], values: dict[str, Any]) -> None:
    """Insert the row ``key`` + ``values``, or set ``values`` on the row with that key."""
    dialect: Any = _pg if conn.dialect.name == "postgresql" else _sqlite
    insert = dialect.insert(table).values(**key, **values)
    conn.execute(insert.on_conflict_do_update(index_elements=list(key), set_=values))


def _asset_of(row: Any) -> Asset:
    """The :class:`Asset` of an ``assets`` row."""
    return Asset(
        id=AssetId(row.id),
        kind=AssetKind(row.kind),
        environment=Environment(row.environment),
        criticality=row.criticality,
        internet_exposed=row.internet_exposed,
        data_sensitivity=row.data_sensitivity,
        service=row.service,
        owner=row.owner,
        tags=tuple(row.tags),
        maintenance_window=row.maintenance_window,
    )


def _raw_rows(conn: Connection, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """The rows of a query as the driver's plain tuples (no Row per row): for reads of
    hundreds of thousands of rows of plain columns. Its parameters (a LIMIT) are inlined."""
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _vulnerability_context(
    conn: Connection, vulnerability_ids: Iterable[str], lists: _Decoded
) -> dict[str, _VulnContext]:
    """Aliases, severity, CVSS, KEV and top EPSS of each canonical vulnerability id (an id
    without a vulnerabilities row is itself only, severity unknown)."""
    v = t.vulnerabilities.c
    vulns: dict[str, tuple[tuple[str, ...], str | None, float | None]] = {
        vid: ((vid,), None, None) for vid in vulnerability_ids
    }
    for chunk in _chunks(sorted(vulns)):
        for vid, aliases, severity, score in conn.execute(
            sa.select(v.id, sa.cast(v.aliases, sa.Text), v.severity, v.cvss_score).where(
                v.id.in_(chunk)
            )
        ).all():
            vulns[vid] = ((vid, *lists(aliases)), severity, score)
    cves = {i for ids, _, _ in vulns.values() for i in ids if i.startswith("CVE-")}
    kev_ids: set[str] = set()
    epss: dict[str, tuple[float, float]] = {}
    for chunk in _chunks(sorted(cves)):
        kev_ids.update(
            conn.execute(sa.select(t.kev.c.cve_id).where(t.kev.c.cve_id.in_(chunk))).scalars()
        )
        for cve, score, percentile in conn.execute(
            sa.select(t.epss.c.cve_id, t.epss.c.epss, t.epss.c.percentile).where(
                t.epss.c.cve_id.in_(chunk)
            )
        ).all():
            epss[cve] = (score, percentile)
    severities = {s.value: s for s in Severity}
    out = {}
    for vid, (ids, severity, score) in vulns.items():
        scores = [epss[i] for i in ids if i in epss]
        out[vid] = _VulnContext(
            ids=ids,
            severity=severities[severity or Severity.UNKNOWN],
            cvss_score=score,
            kev=any(i in kev_ids for i in ids),
            epss=max(scores) if scores else None,
        )
    return out


class _Decoded:
    """Decode stored values once per distinct value (``cache(raw)`` -> decoded)."""

    __slots__ = ("decode", "seen")

    def __init__(self, decode: Any) -> None:
        self.decode = decode
        self.seen: dict[Any, Any] = {}

    def __call__(self, raw: Any) -> Any:
        try:
            return self.seen[raw]
        except KeyError:
            value = self.seen[raw] = self.decode(raw)
            return value


def _later(seen: dt.datetime, scanned: Any, when: _Decoded) -> dt.datetime:
    """An open finding's last_seen: the stored one, or its asset's later scan."""
    if scanned is None:
        return seen
    at: dt.datetime = when(scanned)
    return at if at > seen else seen


def _json_tuple(text: str) -> tuple[str, ...]:
    """A stored JSON list as a tuple.

    >>> _json_tuple('["a", "b"]')
    ('a', 'b')
    """
    return tuple(json.loads(text))


def _utc(value: Any) -> dt.datetime:
    """A stored timestamp as an aware UTC datetime (SQLite gives naive UTC text).

    >>> _utc("2026-02-01 00:00:00.000000")
    datetime.datetime(2026, 2, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _key_text(key: PackageKey) -> str:
    return f"{key.ecosystem}\t{key.name}\t{key.version}"


def _redact(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True) if "://" in url else url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    # 64 MiB of page cache (default 2 MiB): the findings indexes of a 10,000-host scan stay
    # in memory while 600,000 findings are inserted
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()
