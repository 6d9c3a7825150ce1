"""A finding fixed on disk but still running old code stays listed as "pending restart"."""

from __future__ import annotations

import datetime as dt

from tests.pw_testkit import add_pending_restart

from patchwarden.execute.restart import RestartReport, StaleProcess
from patchwarden.execute.rollout import clear_pending_restarts
from patchwarden.store import FindingFilter, Store

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
T2 = dt.datetime(2026, 1, 3, tzinfo=dt.UTC)


def test_pending_restart_keeps_the_finding_open_until_a_clean_check(store: Store) -> None:
    add_pending_restart(store, "web-01", T0, T1)
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
