"""Store round trips on SQLite and PostgreSQL: idempotent imports, alias groups, findings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from patchwarden.model import (
    Advisory,
    Affected,
    AffectedRange,
    Asset,
    AssetId,
    EpssScore,
    EventKind,
    FixState,
    InstalledPackage,
    Inventory,
    KevEntry,
    RangeEvent,
    RangeType,
    SeverityScore,
    VulnId,
)
from patchwarden.store import FindingDraft, FindingFilter, Store
from patchwarden.store import schema as t
from patchwarden.store.codec import decode_advisory, encode_advisory

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)


def _adv(modified: dt.datetime = T0, fixed: str = "2.0", **kw: object) -> Advisory:
    base: dict[str, object] = {
        "id": VulnId("PYSEC-2099-1"),
        "source": "osv",
        "modified": modified,
        "aliases": ("CVE-2099-0001", "GHSA-xxxx-yyyy-zzzz"),
        "summary": "test",
        "severity": (
            SeverityScore(type="CVSS_V3", score="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
        ),
        "affected": (
            Affected(
                ecosystem="PyPI",
                name="Demo_Pkg",
                ranges=(
                    AffectedRange(
                        type=RangeType.ECOSYSTEM,
                        events=(
                            RangeEvent(kind=EventKind.INTRODUCED, version="0"),
                            RangeEvent(kind=EventKind.FIXED, version=fixed),
                        ),
                    ),
                ),
                versions=("1.0",),
            ),
        ),
    }
    base.update(kw)
    return Advisory(**base)  # type: ignore[arg-type]


def test_codec_round_trip() -> None:
    adv = _adv(withdrawn=T1, upstream=("CVE-1",), database_specific={"x": [1]})
    assert decode_advisory(encode_advisory(adv)) == adv


def test_advisory_import_is_idempotent_and_newer_wins(store: Store) -> None:
    with store.transaction() as conn:
        first = store.upsert_advisories(conn, [_adv()], T0)
    with store.transaction() as conn:
        again = store.upsert_advisories(conn, [_adv()], T1)
    with store.transaction() as conn:
        older = store.upsert_advisories(conn, [_adv(modified=T0 - dt.timedelta(days=1))], T1)
    with store.transaction() as conn:
        newer = store.upsert_advisories(conn, [_adv(modified=T1, fixed="3.0")], T1)
    assert (first.inserted, again.unchanged, older.unchanged, newer.updated) == (1, 1, 1, 1)
    stored = store.get_advisory("PYSEC-2099-1")
    assert stored is not None
    assert stored.affected[0].ranges[0].events[1].version == "3.0"
    with store.engine.connect() as conn:
        names = conn.execute(sa.select(t.affected_names)).all()
    assert [(r.ecosystem_base, r.name) for r in names] == [("PyPI", "demo-pkg")]


def test_alias_group_has_canonical_cve_and_severity(store: Store) -> None:
    dsa = Advisory(
        id=VulnId("DSA-9999-1"),
        source="debian",
        modified=T0,
        upstream=("CVE-2099-0001", "CVE-2099-0002"),
    )
    with store.transaction() as conn:
        store.upsert_advisories(conn, [_adv(), dsa], T0)
        store.rebuild_vulnerabilities(conn)
        canon = store.canonical_ids(conn, ["PYSEC-2099-1", "GHSA-xxxx-yyyy-zzzz", "CVE-2099-0002"])
    assert canon == {
        "PYSEC-2099-1": "CVE-2099-0001",
        "GHSA-xxxx-yyyy-zzzz": "CVE-2099-0001",
        "CVE-2099-0002": "CVE-2099-0002",
    }
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(t.vulnerabilities).where(t.vulnerabilities.c.id == "CVE-2099-0001")
        ).one()
        dsa_vuln = conn.execute(
            sa.select(t.vulnerabilities).where(t.vulnerabilities.c.id == "DSA-9999-1")
        ).first()
    assert row.severity == "critical"
    assert row.aliases == ["GHSA-xxxx-yyyy-zzzz", "PYSEC-2099-1"]
    assert dsa_vuln is None


def _inventory(version: str) -> Inventory:
    return Inventory(
        asset=Asset(id=AssetId("web-01"), criticality=5, tags=("waf",)),
        packages=(InstalledPackage(ecosystem="PyPI", name="demo-pkg", version=version),),
        source="test",
    )


def _draft(vuln: str, version: str = "1.0") -> FindingDraft:
    return FindingDraft(
        ecosystem="PyPI",
        package="demo-pkg",
        installed_version=version,
        binaries=("demo-pkg",),
        vulnerability=VulnId(vuln),
        advisories=("PYSEC-2099-1",),
        fix_state=FixState.FIXED,
        fixed_version="2.0",
    )


def test_findings_lifecycle(store: Store) -> None:
    with store.transaction() as conn:
        store.upsert_advisories(conn, [_adv()], T0)
        store.rebuild_vulnerabilities(conn)
        store.upsert_kev(
            conn,
            [
                KevEntry(
                    cve_id="CVE-2099-0001",
                    date_added=dt.date(2026, 1, 2),
                    due_date=None,
                    known_ransomware=True,
                )
            ],
        )
        store.replace_epss(conn, [EpssScore(cve_id="CVE-2099-0001", epss=0.9, percentile=0.99)])
        assert store.save_inventory(conn, _inventory("1.0"), T0)
        first = store.sync_findings(conn, "web-01", [_draft("CVE-2099-0001")], T0)
    with store.transaction() as conn:
        assert not store.save_inventory(conn, _inventory("1.0"), T1)  # unchanged inventory
        second = store.sync_findings(conn, "web-01", [_draft("CVE-2099-0001")], T1)
    (finding,) = store.findings()
    assert (first.new, second.still_open) == (1, 1)
    assert finding.first_seen == T0
    assert finding.last_seen == T1
    assert finding.kev
    assert finding.epss == 0.9
    assert finding.severity == "critical"
    assert finding.aliases == ("GHSA-xxxx-yyyy-zzzz", "PYSEC-2099-1")
    with store.transaction() as conn:
        assert store.save_inventory(conn, _inventory("2.0"), T1)
        gone = store.sync_findings(conn, "web-01", [], T1)
    assert gone.resolved == 1
    assert store.findings() == []
    (resolved,) = store.findings(FindingFilter(include_resolved=True))
    assert resolved.resolved_at == T1
    with store.transaction() as conn:
        back = store.sync_findings(conn, "web-01", [_draft("PYSEC-2099-1")], T1)
    assert back.reopened == 1  # re-keyed by canonical id: the same finding comes back


def test_store_migrates_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Store.open(url).close()
    st = Store.open(url)  # second open: already at head
    assert st.counts()["advisories"] == 0
    st.close()


def test_migrations_match_schema(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
    assert diff == []


def test_newer_date_same_content_is_unchanged(store: Store) -> None:
    """Feeds without dates (Alpine secdb) stamp the file time: same content is no update."""
    with store.transaction() as conn:
        store.upsert_advisories(conn, [_adv()], T0)
    with store.transaction() as conn:
        counts = store.upsert_advisories(conn, [_adv(modified=T1)], T1)
    assert (counts.updated, counts.unchanged) == (0, 1)
