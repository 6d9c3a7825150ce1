"""The chain detects every kind of tampering done directly in the database.

Each test writes a real chain through :func:`patchwarden.audit.append`, changes the stored rows
with plain SQL (as someone with database access would) and expects :func:`verify` to name the
first bad seq and the kind of tampering.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from patchwarden import audit
from patchwarden.audit import Action, Tamper
from patchwarden.errors import StoreError
from patchwarden.store import Store
from patchwarden.store import schema as t

T0 = dt.datetime(2026, 1, 5, 9, 30, 0, 123456, tzinfo=dt.UTC)
N = 6


def _chain(store: Store, n: int = N) -> list[audit.AuditEntry]:
    out = []
    for i in range(1, n + 1):
        with store.transaction() as conn:
            out.append(
                audit.append(
                    conn,
                    actor=f"user{i % 2}",
                    action=Action.SCAN if i % 2 else Action.ASSET_UPDATE,
                    subject=f"web-{i:02d}",
                    inputs={"inventory": f"sha-{i}", "n": i},
                    details={"new": i, "old": None, "tags": ["waf", "é"], "ratio": i / 3},
                    at=T0 + dt.timedelta(minutes=i),
                )
            )
    return out


def _sql(store: Store, statement: str, **params: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def _expect(store: Store, seq: int | None, reason: Tamper, **kw: Any) -> audit.VerifyResult:
    result = audit.verify(store, **kw)
    assert not result.ok, result
    assert (result.first_bad, result.reason) == (seq, reason), result.message
    assert result.message
    return result


def test_untouched_chain_verifies(store: Store) -> None:
    written = _chain(store)
    assert [e.seq for e in written] == list(range(1, N + 1))
    assert written[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(written))
    result = audit.verify(store)
    assert result.ok
    assert result.checked == N
    assert result.first_bad is None
    assert (result.head_seq, result.head_hash) == (N, written[-1].hash)
    stored = list(audit.entries(store))
    assert stored == written  # the round trip through the database changes no byte


def test_empty_log_verifies(store: Store) -> None:
    result = audit.verify(store)
    assert result.ok
    assert (result.checked, result.head_seq, result.head_hash) == (
        0,
        0,
        audit.GENESIS,
    )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("details", '{"new":99,"old":null,"ratio":1.0,"tags":["waf","é"]}'),
        ("actor", "mallory"),
        ("action", "rollback"),
        ("subject", "db-01"),
        ("inputs_digest", hashlib.sha256(b"other").hexdigest()),
    ],
)
def test_edited_field_is_named(store: Store, column: str, value: str) -> None:
    _chain(store)
    _sql(store, f"UPDATE audit_log SET {column} = :v WHERE seq = 3", v=value)
    _expect(store, 3, Tamper.EDITED)


def test_edited_time_is_named(store: Store) -> None:
    _chain(store)
    with store.engine.begin() as conn:  # through the column type: both backends store UTC
        conn.execute(
            t.audit_log.update().where(t.audit_log.c.seq == 4).values(at=T0 - dt.timedelta(days=1))
        )
    _expect(store, 4, Tamper.EDITED)


def test_edited_time_by_one_microsecond_is_named(store: Store) -> None:
    _chain(store)
    with store.engine.begin() as conn:
        conn.execute(
            t.audit_log.update()
            .where(t.audit_log.c.seq == 2)
            .values(at=T0 + dt.timedelta(minutes=2, microseconds=1))
        )
    _expect(store, 2, Tamper.EDITED)


def test_edited_last_entry_is_named(store: Store) -> None:
    _chain(store)
    _sql(store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = :s", s=N)
    _expect(store, N, Tamper.EDITED)


def test_edit_with_recomputed_hash_breaks_the_next_link(store: Store) -> None:
    """Without a key the forger can rehash the edited entry; the next entry still names it."""
    written = _chain(store)
    e = written[2]
    forged = audit.entry_hash(
        audit.entry_bytes(
            seq=e.seq,
            at=e.at,
            actor="mallory",
            action=e.action,
            subject=e.subject,
            inputs_digest=e.inputs_digest,
            details=e.details,
            key_id=None,
            prev_hash=e.prev_hash,
        ),
        None,
    )
    _sql(store, "UPDATE audit_log SET actor = 'mallory', hash = :h WHERE seq = 3", h=forged)
    _expect(store, 3, Tamper.EDITED)


def test_deleted_middle_entry_is_named(store: Store) -> None:
    _chain(store)
    _sql(store, "DELETE FROM audit_log WHERE seq = 3")
    _expect(store, 3, Tamper.DELETED)


def test_deleted_first_entry_is_named(store: Store) -> None:
    _chain(store)
    _sql(store, "DELETE FROM audit_log WHERE seq = 1")
    _expect(store, 1, Tamper.DELETED)


def test_deleted_and_renumbered_is_named(store: Store) -> None:
    _chain(store)
    _sql(store, "DELETE FROM audit_log WHERE seq = 3")
    _sql(store, "UPDATE audit_log SET seq = seq + 1000 WHERE seq > 3")
    _sql(store, "UPDATE audit_log SET seq = seq - 1001 WHERE seq > 1000")
    _sql(store, "UPDATE audit_head SET seq = seq - 1")
    _expect(store, 3, Tamper.DELETED)


def _forge(store: Store, seq: int, prev_hash: str, hash_: str) -> None:
    _sql(
        store,
        "INSERT INTO audit_log (seq, at, actor, action, subject, inputs_digest, details, "
        "key_id, prev_hash, hash) VALUES (:seq, :at, 'mallory', 'approval.approve', 'plan-9', "
        ":d, '{}', NULL, :p, :h)",
        seq=seq,
        at=(T0 + dt.timedelta(minutes=2, seconds=30)).replace(tzinfo=None),
        d="0" * 64,
        p=prev_hash,
        h=hash_,
    )


def test_inserted_forged_entry_is_named(store: Store) -> None:
    written = _chain(store)
    _sql(store, "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3")
    _sql(store, "UPDATE audit_log SET seq = seq - 999 WHERE seq > 1000")
    _sql(store, "UPDATE audit_head SET seq = seq + 1")
    _forge(store, 3, written[1].hash, "f" * 64)
    _expect(store, 3, Tamper.INSERTED)


def test_inserted_entry_with_valid_hash_is_named(store: Store) -> None:
    """A keyless forger computes a correct hash and link; the entry after it gives it away."""
    written = _chain(store)
    _sql(store, "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3")
    _sql(store, "UPDATE audit_log SET seq = seq - 999 WHERE seq > 1000")
    _sql(store, "UPDATE audit_head SET seq = seq + 1")
    forged_at = T0 + dt.timedelta(minutes=2, seconds=30)
    h = audit.entry_hash(
        audit.entry_bytes(
            seq=3,
            at=forged_at,
            actor="mallory",
            action="approval.approve",
            subject="plan-9",
            inputs_digest="0" * 64,
            details="{}",
            key_id=None,
            prev_hash=written[1].hash,
        ),
        None,
    )
    with store.engine.begin() as conn:
        conn.execute(
            t.audit_log.insert().values(
                seq=3,
                at=forged_at,
                actor="mallory",
                action="approval.approve",
                subject="plan-9",
                inputs_digest="0" * 64,
                details="{}",
                key_id=None,
                prev_hash=written[1].hash,
                hash=h,
            )
        )
    _expect(store, 3, Tamper.INSERTED)


def test_entry_appended_past_the_head_is_named(store: Store) -> None:
    written = _chain(store)
    _forge(store, N + 1, written[-1].hash, "f" * 64)
    _expect(store, N + 1, Tamper.INSERTED)


def test_swapped_entries_are_named(store: Store) -> None:
    _chain(store)
    _sql(store, "UPDATE audit_log SET seq = -3 WHERE seq = 3")
    _sql(store, "UPDATE audit_log SET seq = 3 WHERE seq = 4")
    _sql(store, "UPDATE audit_log SET seq = 4 WHERE seq = -3")
    _expect(store, 3, Tamper.REORDERED)


def test_truncated_tail_is_caught_by_the_head_row(store: Store) -> None:
    _chain(store)
    _sql(store, "DELETE FROM audit_log WHERE seq > 4")
    _expect(store, 5, Tamper.TRUNCATED)


def test_truncated_tail_with_head_rewritten_needs_an_anchor(store: Store) -> None:
    written = _chain(store)
    anchor = f"{N}:{written[-1].hash}"
    assert audit.verify(store, expect_head=anchor).ok
    _sql(store, "DELETE FROM audit_log WHERE seq > 4")
    _sql(store, "UPDATE audit_head SET seq = 4, hash = :h", h=written[3].hash)
    assert audit.verify(store).ok  # documented limit: consistent, just shorter
    _expect(store, 5, Tamper.TRUNCATED, expect_head=anchor)
    _expect(store, 5, Tamper.TRUNCATED, expect_head=written[-1].hash)  # hash alone
    assert audit.verify(store, expect_head=f"3:{written[2].hash}").ok  # an older anchor holds


def test_rewritten_last_entry_is_caught_by_the_head_row(store: Store) -> None:
    written = _chain(store)
    e = written[-1]
    forged = audit.entry_hash(
        audit.entry_bytes(
            seq=e.seq,
            at=e.at,
            actor="mallory",
            action=e.action,
            subject=e.subject,
            inputs_digest=e.inputs_digest,
            details=e.details,
            key_id=None,
            prev_hash=e.prev_hash,
        ),
        None,
    )
    _sql(store, "UPDATE audit_log SET actor = 'mallory', hash = :h WHERE seq = :s", h=forged, s=N)
    _expect(store, N, Tamper.EDITED)


def test_missing_head_row_is_reported(store: Store) -> None:
    _chain(store, 2)
    _sql(store, "DELETE FROM audit_head")
    _expect(store, None, Tamper.MALFORMED)
    with pytest.raises(StoreError, match="audit_head"), store.transaction() as conn:
        audit.append(conn, actor="a", action=Action.SCAN, subject="x", inputs={})


def test_unreadable_time_is_malformed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite stores time as text, so a forger can write garbage (PostgreSQL refuses it)."""
    monkeypatch.delenv("PATCHWARDEN_AUDIT_KEY", raising=False)
    store = Store.open(f"sqlite:///{tmp_path / 'pw.db'}")
    try:
        _chain(store, 3)
        _sql(store, "UPDATE audit_log SET at = 'yesterday' WHERE seq = 2")
        _expect(store, 2, Tamper.MALFORMED)
    finally:
        store.close()


def test_hmac_key(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHWARDEN_AUDIT_KEY", "correct horse")
    written = _chain(store)
    assert {e.key_id for e in written} == {audit.key_id(b"correct horse")}
    assert audit.verify(store).ok
    monkeypatch.setenv("PATCHWARDEN_AUDIT_KEY", "battery staple")
    _expect(store, 1, Tamper.WRONG_KEY)
    monkeypatch.delenv("PATCHWARDEN_AUDIT_KEY")
    _expect(store, 1, Tamper.WRONG_KEY)


def test_hmac_defeats_a_keyless_forger(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a key, an edit rehashed with plain SHA-256 (or any guess) is still an edit."""
    monkeypatch.setenv("PATCHWARDEN_AUDIT_KEY", "correct horse")
    written = _chain(store)
    e = written[-1]
    forged = audit.entry_hash(
        audit.entry_bytes(
            seq=e.seq,
            at=e.at,
            actor="mallory",
            action=e.action,
            subject=e.subject,
            inputs_digest=e.inputs_digest,
            details=e.details,
            key_id=e.key_id,
            prev_hash=e.prev_hash,
        ),
        None,
    )
    _sql(store, "UPDATE audit_log SET actor = 'mallory', hash = :h WHERE seq = :s", h=forged, s=N)
    _sql(store, "UPDATE audit_head SET hash = :h", h=forged)
    _expect(store, N, Tamper.EDITED)


def test_unkeyed_entries_fail_under_a_key(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    _chain(store, 2)
    monkeypatch.setenv("PATCHWARDEN_AUDIT_KEY", "k")
    _expect(store, 1, Tamper.WRONG_KEY)
