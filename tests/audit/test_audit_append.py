"""Appending: transactional with the change it records, serialised between writers, exported."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
import time

import pytest

from patchwarden import audit
from patchwarden.audit import Action, AuditEvent
from patchwarden.errors import StoreError
from patchwarden.store import Store


def _append_then_fail(store: Store) -> None:
    with store.transaction() as conn:
        audit.append(conn, actor="a", action=Action.SCAN, subject="h2", inputs={"x": 2})
        conn.exec_driver_sql("SELECT * FROM no_such_table")  # the state change fails


def test_rollback_leaves_no_entry_and_no_gap(store: Store) -> None:
    with store.transaction() as conn:
        audit.append(conn, actor="a", action=Action.SCAN, subject="h1", inputs={"x": 1})
    with pytest.raises(StoreError):
        _append_then_fail(store)
    with store.transaction() as conn:
        third = audit.append(conn, actor="a", action=Action.SCAN, subject="h3", inputs={})
    assert third.seq == 2
    assert [e.subject for e in audit.entries(store)] == ["h1", "h3"]
    assert audit.verify(store).ok


def test_concurrent_writers_never_fork_the_chain(store: Store) -> None:
    """Two writers that hold their transaction open while the other tries to append."""
    per_writer = 15
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                with store.transaction() as conn:
                    audit.append(
                        conn, actor=name, action=Action.SCAN, subject=f"{name}-{i}", inputs=i
                    )
                    time.sleep(0.005)  # widen the window between head update and commit
        except BaseException as exc:  # reported below, a thread cannot raise into the test
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("alice", "bob")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    stored = list(audit.entries(store))
    assert [e.seq for e in stored] == list(range(1, 2 * per_writer + 1))
    assert {e.actor for e in stored} == {"alice", "bob"}
    result = audit.verify(store)
    assert result.ok, result.message
    assert result.checked == 2 * per_writer


def test_append_many_is_one_chain(store: Store) -> None:
    at = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    with store.transaction() as conn:
        got = audit.append_many(
            conn,
            [
                AuditEvent(actor="a", action=Action.SCAN, subject=f"h{i}", inputs={"i": i})
                for i in range(5)
            ],
            at=at,
        )
        assert audit.append_many(conn, []) == []
    assert [e.seq for e in got] == [1, 2, 3, 4, 5]
    assert {e.at for e in got} == {at}
    assert audit.verify(store).ok


def test_unserialisable_details_fail_before_writing(store: Store) -> None:
    with pytest.raises(TypeError, match="cannot record a object"), store.transaction() as conn:
        audit.append(
            conn, actor="a", action=Action.SCAN, subject="h", inputs={}, details={"x": object()}
        )
    with pytest.raises(ValueError, match="Out of range float"), store.transaction() as conn:
        audit.append(conn, actor="a", action=Action.SCAN, subject="h", inputs=float("nan"))
    assert list(audit.entries(store)) == []


def test_export_writes_json_lines_ending_at_the_head(store: Store) -> None:
    t0 = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
    for i in range(4):
        with store.transaction() as conn:
            audit.append(
                conn,
                actor="ann",
                action=Action.ASSET_UPDATE,
                subject=f"web-{i}",
                inputs={"i": i},
                details={"old": {"criticality": 3}, "new": {"criticality": 5}},
                at=t0 + dt.timedelta(days=i),
            )
    buf = io.StringIO()
    assert audit.export(store, buf) == 4
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [x["seq"] for x in lines] == [1, 2, 3, 4]
    assert lines[0]["details"] == {"new": {"criticality": 5}, "old": {"criticality": 3}}
    assert lines[0]["at"] == "2026-03-01T08:00:00.000000Z"
    head = f"{lines[-1]['seq']}:{lines[-1]['hash']}"
    assert audit.verify(store, expect_head=head).ok
    buf = io.StringIO()
    assert audit.export(store, buf, since=t0 + dt.timedelta(days=2)) == 2
    buf = io.StringIO()
    assert audit.export(store, buf, after_seq=3) == 1
    assert [e.seq for e in audit.recent(store, 2)] == [4, 3]


def test_default_actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHWARDEN_ACTOR", "ci-bot")
    assert audit.default_actor() == "ci-bot"
    monkeypatch.delenv("PATCHWARDEN_ACTOR")
    assert audit.default_actor()  # the OS user
