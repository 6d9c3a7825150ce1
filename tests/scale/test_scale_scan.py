"""Streaming, batched and incremental scanning (issue 8) on the bundled real demo data.

The demo snapshot (a verbatim subset of ``shared/data``, see ``src/patchwarden/demo/data``)
and its sample fleet have a fixed, independently derived finding set
(``tests/demo/expected_demo_findings.json``, 116 findings); every way of feeding the scan
must give exactly that set.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.pw_testkit import DEMO_FEEDS

from patchwarden.errors import StoreError
from patchwarden.inventory import collect_fleet_asset
from patchwarden.inventory.fleet import load_fleet
from patchwarden.model import Environment, Finding, Inventory, inventory_rows
from patchwarden.prioritize import rank, ranking_weights, score_findings
from patchwarden.risk import RiskWeights
from patchwarden.service import (
    PreparedInventory,
    import_feeds,
    prepare_inventory,
    prepare_rows,
    scan,
)
from patchwarden.store import FindingFilter, Store
from patchwarden.store import schema as t

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "src" / "patchwarden" / "demo"
DATA = DEMO / "data"
EXPECTED = REPO / "tests" / "demo" / "expected_demo_findings.json"
SNAPSHOT = DEMO_FEEDS
T0 = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
KEYS: tuple[str, ...] = (
    "asset",
    "ecosystem",
    "package",
    "installed_version",
    "vulnerability",
    "advisories",
)
KEYS += ("fixed_version", "kev", "epss")


@pytest.fixture(scope="module")
def inventories() -> list[Inventory]:
    return [collect_fleet_asset(fa) for fa in load_fleet(DEMO / "fleet.yaml").assets]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scale") / "template.db"
    store = Store.open(f"sqlite:///{path}")
    report = import_feeds(store, list(SNAPSHOT), now=T0)
    assert not report.failed
    store.close()
    return path


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Iterator[Store]:
    db = tmp_path / "scan.db"
    db.write_bytes(template.read_bytes())
    s = Store.open(f"sqlite:///{db}")
    yield s
    s.close()


def _rows(findings: list[Finding]) -> list[tuple[str, ...]]:
    out = []
    for f in findings:
        row: dict[str, Any] = {
            "asset": f.asset,
            "ecosystem": f.ecosystem,
            "package": f.package,
            "installed_version": f.installed_version,
            "vulnerability": f.vulnerability,
            "advisories": list(f.advisories),
            "fixed_version": f.fixed_version,
            "kev": f.kev,
            "epss": f.epss,
        }
        out.append(tuple(json.dumps(row[k]) for k in KEYS))
    return sorted(out)


def _expected() -> list[tuple[str, ...]]:
    rows = json.loads(EXPECTED.read_text(encoding="utf-8"))
    assert len(rows) == 116
    return sorted(tuple(json.dumps(r[k]) for k in KEYS) for r in rows)


@pytest.mark.parametrize("batch_size", [1, 2, 500])
def test_streamed_scan_gives_exactly_the_expected_findings(
    store: Store, inventories: list[Inventory], batch_size: int
) -> None:
    """A generator of inventories, in batches of any size, gives the fixed 116 findings."""
    report = scan(store, (inv for inv in inventories), now=T0, batch_size=batch_size)
    assert [a.asset for a in report.assets] == [inv.asset.id for inv in inventories]
    assert all(a.matched and a.changed for a in report.assets)
    assert sum(a.findings.new for a in report.assets) == 116
    assert _rows(store.findings()) == _expected()


def test_prepared_inventories_give_the_same_findings(
    store: Store, inventories: list[Inventory]
) -> None:
    """Inventories prepared elsewhere (worker processes) are scanned like plain ones."""
    scan(store, [prepare_inventory(inv) for inv in inventories], now=T0, batch_size=3)
    assert _rows(store.findings()) == _expected()


def test_collector_rows_give_the_same_inventories_and_findings(
    store: Store, inventories: list[Inventory]
) -> None:
    """prepare_rows (what a collector's row path feeds) equals prepare_inventory, findings too."""
    by_rows = []
    for inv in inventories:
        half = len(inv.packages) // 2  # two collectors' row lists, merged
        parts = [inventory_rows(inv.packages[:half]), inventory_rows(inv.packages[half:])]
        prepared = prepare_rows(
            inv.asset, [r for part in parts for r in part], distro=inv.distro, source=inv.source
        )
        expected = prepare_inventory(inv)
        assert (prepared.rows, prepared.digest, prepared.unsupported) == (
            expected.rows,
            expected.digest,
            expected.unsupported,
        )
        by_rows.append(prepared)
    scan(store, by_rows, now=T0)
    assert _rows(store.findings()) == _expected()


def _stored_ranking(store: Store) -> list[tuple[int, float | None, int | None]]:
    return [(r.id, r.risk, r.ssvc) for r in store.ranked_findings()]


def _scored_ranking(
    store: Store, weights: RiskWeights | None = None
) -> list[tuple[int, float | None, int | None]]:
    """The ranking computed afresh from the findings (what `findings --sort risk` shows)."""
    scored = score_findings(store, store.findings(), weights)
    return [(s.finding.id, s.risk.score, s.risk.ssvc.rank) for s in scored]


def test_ranked_findings_are_the_scored_findings_in_risk_order(
    store: Store, inventories: list[Inventory]
) -> None:
    """The scan stores each finding's risk as it writes it: the stored ranking is exactly
    score_findings' (same scores, same order), and the lean rows carry the findings' data."""
    report = scan(store, inventories, now=T0)
    assert report.scored == 116
    findings = {f.id: f for f in store.findings()}
    ranked = store.ranked_findings()
    assert len(ranked) == 116
    assert len({r.risk for r in ranked}) > 20  # a real ordering
    assert _stored_ranking(store) == _scored_ranking(store)
    for r in ranked:
        f = findings[r.id]
        assert (r.asset, r.ecosystem, r.package, r.vulnerability, r.fixed_version) == (
            f.asset,
            f.ecosystem,
            f.package,
            f.vulnerability,
            f.fixed_version,
        )
        assert (r.kev, r.severity, r.cvss_score, r.epss) == (
            f.kev,
            f.severity,
            f.cvss_score,
            f.epss,
        )
    assert store.ranked_findings(limit=5) == ranked[:5]
    assert rank(store) == 0  # nothing left to score


def _asset_scores(store: Store, asset: str) -> list[float | None]:
    return [r.risk for r in store.ranked_findings() if r.asset == asset]


def test_stored_risk_follows_asset_context_weights_and_intel(
    store: Store, inventories: list[Inventory]
) -> None:
    """Whatever changes what a score depends on, the stored ranking ends up equal to a
    fresh one, and only what changed is scored again."""
    scan(store, inventories, now=T0)
    app = next(inv for inv in inventories if inv.asset.id == "app-01")
    before = _asset_scores(store, "app-01")
    assert before
    assert None not in before

    # the asset's context changes by hand: its findings only are scored again
    store.update_asset(dataclasses.replace(app.asset, criticality=1, internet_exposed=False))
    assert set(_asset_scores(store, "app-01")) == {None}
    assert rank(store) == len(before)
    assert _stored_ranking(store) == _scored_ranking(store)
    assert _asset_scores(store, "app-01") != before

    # ... or in the fleet file, for an asset whose inventory did not change (not matched)
    exposed = dataclasses.replace(app.asset, criticality=5, internet_exposed=True)
    changed = [dataclasses.replace(i, asset=exposed) if i is app else i for i in inventories]
    report = scan(store, changed, now=T0 + dt.timedelta(days=1))
    assert not any(a.matched for a in report.assets)
    assert report.scored == len(before)
    assert _stored_ranking(store) == _scored_ranking(store)

    # other weights: everything is scored again
    weights = RiskWeights(internet_exposed_factor=3.0, kev_floor=0.5)
    assert rank(store, weights) == 116
    assert _stored_ranking(store) == _scored_ranking(store, weights)
    assert _stored_ranking(store) != _scored_ranking(store)
    assert rank(store, weights) == 0
    # a scan or ranking given no weights keeps the stored ranking's (a rollout's re-scan)
    assert ranking_weights(store) == weights
    assert scan(store, changed, now=T0 + dt.timedelta(days=1)).scored == 0
    assert rank(store) == 0
    assert rank(store, RiskWeights()) == 116

    # a new EPSS import: the scan scores every open finding again, with the new data
    t2 = T0 + dt.timedelta(days=2)
    assert not import_feeds(store, [SNAPSHOT[-1]], now=t2).failed
    report = scan(store, changed, now=t2)
    assert not any(a.matched for a in report.assets)
    assert report.scored == 116
    assert _stored_ranking(store) == _scored_ranking(store)


def test_an_incremental_rescan_scores_only_the_changed_assets_findings(
    store: Store, inventories: list[Inventory]
) -> None:
    scan(store, inventories, now=T0)
    app = next(i for i, inv in enumerate(inventories) if inv.asset.id == "app-01")
    patched = list(inventories)
    patched[app] = _with_version(inventories[app], "certifi", "2099.1.1")
    report = scan(store, patched, now=T0 + dt.timedelta(days=1))
    app_open = sum(1 for f in store.findings() if f.asset == "app-01")
    assert 0 < report.scored == app_open < 116
    assert _stored_ranking(store) == _scored_ranking(store)


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_stored_ranking_on_postgresql(db_url: str, inventories: list[Inventory]) -> None:
    """The same ranking on PostgreSQL (float8 scores, ties ordered as Python orders str)."""
    store = Store.open(db_url)
    assert not import_feeds(store, list(SNAPSHOT), now=T0).failed
    scan(store, inventories, now=T0)
    assert _stored_ranking(store) == _scored_ranking(store)
    store.update_asset(dataclasses.replace(inventories[0].asset, environment=Environment.DEV))
    assert rank(store) > 0
    assert _stored_ranking(store) == _scored_ranking(store)
    store.close()


def _with_version(inv: Inventory, package: str, version: str) -> Inventory:
    packages = tuple(
        dataclasses.replace(p, version=version) if p.name == package else p for p in inv.packages
    )
    assert packages != inv.packages
    return dataclasses.replace(inv, packages=packages)


def test_rescan_skips_unchanged_assets_and_resolves_and_reopens_changed_ones(
    store: Store, inventories: list[Inventory]
) -> None:
    scan(store, inventories, now=T0)
    open_before = _open_counts(store)
    t1 = T0 + dt.timedelta(days=1)
    again = scan(store, inventories, now=t1)
    assert not any(a.matched or a.changed for a in again.assets)  # nothing matched again
    assert {a.asset: a.findings.still_open for a in again.assets} == {
        inv.asset.id: open_before.get(inv.asset.id, 0) for inv in inventories
    }
    assert {f.last_seen for f in store.findings()} == {t1}
    assert _rows(store.findings()) == _expected()

    # one asset upgraded certifi past every fix: its certifi findings resolve, others skipped
    app = next(i for i, inv in enumerate(inventories) if inv.asset.id == "app-01")
    patched = list(inventories)
    patched[app] = _with_version(inventories[app], "certifi", "2099.1.1")
    t2 = t1 + dt.timedelta(days=1)
    report = scan(store, patched, now=t2)
    by_asset = {a.asset: a for a in report.assets}
    assert [a.asset for a in report.assets if a.matched] == ["app-01"]
    certifi = [
        f
        for f in store.findings(FindingFilter(include_resolved=True))
        if f.package == "certifi" and f.asset == "app-01"
    ]
    assert certifi
    assert all(f.resolved_at == t2 for f in certifi)
    assert by_asset["app-01"].findings.resolved == len(certifi)
    assert by_asset["app-01"].changed

    # rolled back: the same findings re-open (same ids, first_seen kept)
    t3 = t2 + dt.timedelta(days=1)
    report = scan(store, inventories, now=t3)
    assert [a.asset for a in report.assets if a.matched] == ["app-01"]
    assert {a.asset: a for a in report.assets}["app-01"].findings.reopened == len(certifi)
    back = [f for f in store.findings() if f.package == "certifi" and f.asset == "app-01"]
    assert sorted(f.id for f in back) == sorted(f.id for f in certifi)
    assert {f.first_seen for f in back} == {T0}
    assert _rows(store.findings()) == _expected()


def test_match_results_are_reused_only_for_the_same_advisories(
    store: Store, inventories: list[Inventory], template: Path, tmp_path: Path
) -> None:
    """A rescan matches only keys no earlier scan of the same advisory set matched, and gets
    exactly what matching everything afresh gets; changed advisories drop the kept results."""
    first = scan(store, inventories, now=T0)
    assert (first.reused_keys, first.distinct_keys) == (0, _kept(store))
    app = next(i for i, inv in enumerate(inventories) if inv.asset.id == "app-01")
    patched = list(inventories)
    patched[app] = _with_version(inventories[app], "certifi", "2099.1.1")
    again = scan(store, patched, now=T0 + dt.timedelta(days=1))
    assert [a.asset for a in again.assets if a.matched] == ["app-01"]
    assert again.distinct_keys == again.reused_keys + 1  # only the new certifi key matched
    assert again.advisories_considered > 0
    assert _kept(store) == first.distinct_keys + 1

    fresh_path = tmp_path / "fresh.db"  # no kept results: everything matched afresh
    fresh_path.write_bytes(template.read_bytes())
    fresh = Store.open(f"sqlite:///{fresh_path}")
    scan(fresh, patched, now=T0 + dt.timedelta(days=1))
    assert _rows(store.findings()) == _rows(fresh.findings())
    fresh.close()

    adv = store.get_advisory("PYSEC-2022-42986")
    assert adv is not None
    with store.transaction() as conn:
        changed = dataclasses.replace(adv, modified=adv.modified + dt.timedelta(days=1))
        store.upsert_advisories(conn, [dataclasses.replace(changed, summary="x")], T0)
        store.rebuild_vulnerabilities(conn)
    third = scan(store, inventories, now=T0 + dt.timedelta(days=2))
    assert third.reused_keys == 0  # another advisory set: nothing reused, old rows deleted
    assert _kept(store) == third.distinct_keys
    assert _rows(store.findings()) == _expected()


def _kept(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.match_cache)).scalar_one())


def _open_counts(store: Store) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in store.findings():
        counts[f.asset] = counts.get(f.asset, 0) + 1
    return counts


def test_changed_advisories_rematch_every_asset(store: Store, inventories: list[Inventory]) -> None:
    """An advisory update invalidates the skip: all assets are matched again, from the store."""
    scan(store, inventories, now=T0)
    adv = store.get_advisory("PYSEC-2022-42986")
    assert adv is not None
    with store.transaction() as conn:
        changed = dataclasses.replace(
            adv, modified=adv.modified + dt.timedelta(days=1), summary=adv.summary + " (updated)"
        )
        assert store.upsert_advisories(conn, [changed], T0).updated == 1
        store.rebuild_vulnerabilities(conn)
    digest_only = [dataclasses.replace(prepare_inventory(inv), rows=None) for inv in inventories]
    report = scan(store, digest_only, now=T0 + dt.timedelta(days=1))
    assert all(a.matched and not a.changed for a in report.assets)
    assert _rows(store.findings()) == _expected()
    again = scan(store, digest_only, now=T0 + dt.timedelta(days=2))
    assert not any(a.matched for a in again.assets)


def test_digest_only_inventory_must_be_the_stored_one(
    store: Store, inventories: list[Inventory]
) -> None:
    unknown: PreparedInventory = dataclasses.replace(
        prepare_inventory(inventories[0]), rows=None, digest="0" * 64
    )
    with pytest.raises(StoreError, match="the full inventory is needed"):
        scan(store, [unknown], now=T0)
    assert store.counts()["assets"] == 0  # the failed batch left nothing behind


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_parallel_workers_scan_a_new_fleet_into_one_postgresql_database(
    db_url: str, inventories: list[Inventory]
) -> None:
    """Four workers scan disjoint assets of a new fleet at once: they meet the same new
    packages and match results (ON CONFLICT DO NOTHING, sorted inserts), none fails, and the
    findings are exactly the fixed set."""
    store = Store.open(db_url)
    assert not import_feeds(store, list(SNAPSHOT), now=T0).failed
    shares = [inventories[i::4] for i in range(4)]
    start = threading.Barrier(len(shares))
    errors: list[BaseException] = []

    def worker(share: list[Inventory]) -> None:
        try:
            start.wait()
            for inv in share:  # one transaction per asset: many chances to collide
                scan(store, [inv], now=T0, batch_size=1)
        except BaseException as exc:  # reported below with the others
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _rows(store.findings()) == _expected()
    with store.engine.connect() as conn:
        packages = conn.execute(sa.text("SELECT count(*) FROM packages")).scalar_one()
    distinct = {r[0] for inv in inventories for r in inventory_rows(inv.packages)}
    assert packages == len(distinct)  # each shared package stored once
    store.close()
