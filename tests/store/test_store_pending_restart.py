"""A finding fixed on disk but still running old code stays listed as "pending restart"."""

from __future__ import annotations

import datetime as dt

from patchwarden.execute.restart import RestartReport, StaleProcess
from patchwarden.execute.rollout import clear_pending_restarts
from patchwarden.model import Asset, AssetId, FixState, InstalledPackage, Inventory, VulnId
from patchwarden.store import FindingDraft, FindingFilter, Store
from patchwarden.store import schema as t

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
T2 = dt.datetime(2026, 1, 3, tzinfo=dt.UTC)


def test_pending_restart_keeps_the_finding_open_until_a_clean_check(store: Store) -> None:
    inv = Inventory(
        asset=Asset(id=AssetId("web-01")),
        packages=(InstalledPackage(ecosystem="PyPI", name="demo", version="1.0"),),
    )
    draft = FindingDraft(
        ecosystem="PyPI",
        package="demo",
        installed_version="1.0",
        binaries=("demo",),
        vulnerability=VulnId("CVE-2099-1"),
        advisories=("PYSEC-2099-1",),
        fix_state=FixState.FIXED,
        fixed_version="2.0",
    )
    with store.transaction() as conn:
        store.save_inventory(conn, inv, T0)
        store.sync_findings(conn, "web-01", [draft], T0)
        store.sync_findings(conn, "web-01", [], T1)  # the upgrade is installed
        (finding_id,) = conn.execute(t.findings.select().with_only_columns(t.findings.c.id))
        conn.execute(
            t.pending_restarts.insert().values(
                finding_id=finding_id[0],
                asset_id="web-01",
                units=["demo.service"],
                reboot=False,
                since=T1,
            )
        )
    (pending,) = store.findings()
    assert pending.pending_restart
    assert pending.resolved_at is None
    assert [r.id for r in store.ranked_findings()] == [pending.id]  # listed there too
    stale = RestartReport(
        processes=(
            StaleProcess(pid=1, command="demo", unit="demo.service", files=("/usr/lib/x.so",)),
        )
    )
    assert clear_pending_restarts(store, "web-01", stale, actor="test", now=T2) == 0
    assert store.findings()[0].pending_restart
    assert clear_pending_restarts(store, "web-01", RestartReport(), actor="test", now=T2) == 1
    assert store.findings() == []
    assert store.ranked_findings() == []
    (done,) = store.findings(FindingFilter(include_resolved=True))
    assert done.resolved_at == T2  # resolved when the fixed code runs, not when installed
    assert not done.pending_restart
