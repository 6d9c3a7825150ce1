"""The tamper-evident audit trail: an append-only, hash-chained log of every state change.

What is recorded
    Every use case that changes state (feed import, scan, asset edits, and later plans, gate
    decisions, approvals, exceptions, rollout steps, verifications, rollbacks) calls
    :func:`append` (or :func:`append_many`) with the *actor*, the :class:`Action`, the
    *subject* (an id: a feed path, an asset id, a plan id), the *inputs* (anything
    JSON-serialisable; only their SHA-256 digest is stored) and small *details* (counts,
    old/new values; stored verbatim). The entry is written on the caller's connection, inside
    the caller's transaction, so it commits or rolls back with the change it describes.

Who the actor is
    :func:`default_actor`: ``$PATCHWARDEN_ACTOR`` when set, else the OS user
    (:func:`getpass.getuser`), else ``uid:<n>``.

The chain (format 1)
    Each :class:`AuditEntry` carries ``seq`` (1, 2, 3, ... without gaps), ``at`` (UTC),
    ``actor``, ``action``, ``subject``, ``inputs_digest``, ``details`` (canonical JSON text),
    ``key_id``, ``prev_hash`` (the previous entry's ``hash``; 64 zeros before the first) and
    ``hash``. ``hash`` is computed over :func:`entry_bytes`: the canonical JSON (sorted keys,
    no whitespace, UTF-8, no NaN/Infinity) of every other field plus ``"v": 1``, with ``at``
    written as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (microseconds, which both SQLite and PostgreSQL
    keep). ``details`` is stored as that exact text, never re-serialised by a backend.

    With ``$PATCHWARDEN_AUDIT_KEY`` set, ``hash`` is HMAC-SHA256 under that key (UTF-8) and
    ``key_id`` is a 16-hex fingerprint of the key (HMAC of a fixed label, so it reveals nothing
    of the key); without it, ``hash`` is plain SHA-256 and ``key_id`` is NULL. Without a key,
    anyone who can write the database and read this docstring can rewrite the whole chain
    consistently; the key (kept outside the database) is what makes forgery infeasible. Set it
    before the first entry: :func:`verify` checks every entry under the key it is given, and
    reports an entry written under another key (or none) as ``wrong_key``.

Concurrency
    The one-row table ``audit_head`` holds the last seq and hash. :func:`append` first runs
    ``UPDATE audit_head SET seq = seq + n``: on PostgreSQL that row lock makes a second
    writer wait until the first commits (READ COMMITTED then re-reads the committed head), on
    SQLite the write takes the database write lock. Two writers can therefore never fork the
    chain, and a rolled-back transaction leaves neither its entry nor a gap.

What :func:`verify` detects
    It streams the log in seq order in one statement (one snapshot) and names the first bad
    entry with a :class:`Tamper` reason: ``edited`` (an entry's fields no longer match its hash,
    or an entry was rewritten with a recomputed hash so that the next link breaks),
    ``deleted`` (a seq is missing, or an entry links to an entry that is gone), ``inserted``
    (an entry the chain skips over, or one past the recorded head), ``reordered`` (an entry
    links to an entry found elsewhere in the log), ``bad_link`` (any other broken link),
    ``wrong_key`` (written under another HMAC key or none), ``truncated`` (the log ends before
    the recorded head, or before an external anchor), ``malformed`` (a row that cannot be
    read, or a missing head row).

    Removing the newest entries *and* updating ``audit_head`` to match leaves a consistent,
    shorter chain: tail truncation is only detectable against an anchor kept outside the
    database. ``verify(..., expect_head="SEQ:HASH")`` (``patchwarden audit verify
    --expect-head``) checks that an earlier head is still in the chain; the head is printed by
    ``audit verify`` and is the last line of ``audit export``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import hashlib
import hmac
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from patchwarden.errors import StoreError
from patchwarden.store import Store
from patchwarden.store import schema as t
from patchwarden.store.bulk import db_time, insert_many

FORMAT = 1
"""The version of :func:`entry_bytes`; part of every hash."""
GENESIS = "0" * 64
"""The ``prev_hash`` of the first entry."""
KEY_ENV = "PATCHWARDEN_AUDIT_KEY"
"""The environment variable holding the optional HMAC key."""
ACTOR_ENV = "PATCHWARDEN_ACTOR"
"""The environment variable naming the actor (default: the OS user)."""


class Action(StrEnum):
    """The kinds of state change the audit trail records."""

    FEED_IMPORT = "feed.import"
    SCAN = "scan"
    ASSET_UPDATE = "asset.update"
    SCORE = "score"
    PLAN_CREATE = "plan.create"
    GATE_DECIDE = "gate.decide"
    APPROVAL_APPROVE = "approval.approve"
    APPROVAL_REJECT = "approval.reject"
    EXCEPTION_CREATE = "exception.create"
    EXCEPTION_EXPIRE = "exception.expire"
    ROLLOUT_STEP = "rollout.step"
    VERIFY = "verify"
    ROLLBACK = "rollback"
    USER_CREATE = "user.create"
    USER_UPDATE = "user.update"
    TOKEN_CREATE = "token.create"
    TOKEN_REVOKE = "token.revoke"


class Tamper(StrEnum):
    """Why :func:`verify` rejected an entry (see the module docstring)."""

    EDITED = "edited"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    BAD_LINK = "bad_link"
    WRONG_KEY = "wrong_key"
    TRUNCATED = "truncated"
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """A state change to record, before it is chained (the arguments of :func:`append`)."""

    actor: str
    """Who did it (:func:`default_actor` for the person at the CLI)."""
    action: Action
    """What kind of change."""
    subject: str
    """The id of what changed: a feed path, an asset id, a plan id."""
    inputs: Any
    """What the change was computed from; only its :func:`digest` is stored."""
    details: Mapping[str, Any] | None = None
    """Small JSON facts worth reading later (counts, old and new values)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One stored, chained entry."""

    seq: int
    """Position in the chain: 1, 2, 3, ... without gaps."""
    at: dt.datetime
    """When (UTC, microseconds)."""
    actor: str
    """Who."""
    action: str
    """An :class:`Action` value (kept as text so that a tampered value can be reported)."""
    subject: str
    """The id of what changed."""
    inputs_digest: str
    """SHA-256 (hex) of the canonical JSON of the inputs."""
    details: str
    """Canonical JSON text of the details (``{}`` when none)."""
    key_id: str | None
    """Fingerprint of the HMAC key the hash was made with; None for plain SHA-256."""
    prev_hash: str
    """The previous entry's hash (:data:`GENESIS` for the first)."""
    hash: str
    """HMAC-SHA256 or SHA-256 (hex) of :func:`entry_bytes`."""

    def to_json(self) -> dict[str, Any]:
        """The entry as one JSON object (``details`` parsed), as ``audit export`` writes it."""
        return {
            "seq": self.seq,
            "at": format_time(self.at),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "inputs_digest": self.inputs_digest,
            "details": json.loads(self.details),
            "key_id": self.key_id,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyResult:
    """What :func:`verify` found."""

    ok: bool
    """True when every entry checked out (and the anchor, when given, was found)."""
    checked: int
    """Entries verified good before the first bad one (all of them when ``ok``)."""
    head_seq: int
    """The last good entry's seq (0 for an empty log)."""
    head_hash: str
    """The last good entry's hash (:data:`GENESIS` for an empty log): keep it as an anchor."""
    first_bad: int | None = None
    """The seq of the first bad entry (for ``deleted``/``truncated``: the first missing seq)."""
    reason: Tamper | None = None
    """Why it is bad."""
    message: str = ""
    """A sentence naming the entry and what is wrong."""

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON object (``audit verify --json``)."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "head": f"{self.head_seq}:{self.head_hash}",
            "first_bad": self.first_bad,
            "reason": None if self.reason is None else self.reason.value,
            "message": self.message,
        }


# --------------------------------------------------------------------------- canonical form


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} in audit data")
        return format_time(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=canonical_json)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"cannot record a {type(value).__name__} in the audit trail: {value!r}")


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, no NaN; datetimes as UTC text.

    Sets become sorted lists, enums their values, dataclasses objects, paths strings.

    >>> canonical_json({"b": 1, "a": [1.5, "é", None]})
    '{"a":[1.5,"é",null],"b":1}'
    >>> canonical_json({"t": dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)})
    '{"t":"2024-05-01T12:00:00.000000Z"}'
    """
    return _ENCODER.encode(value)


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default
)


def digest(inputs: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``inputs``.

    >>> digest({"a": 1}) == digest({"a": 1})
    True
    >>> digest({"a": 1}) == digest({"a": 1.0})
    False
    """
    return hashlib.sha256(canonical_json(inputs).encode()).hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes; of a directory, over each file's relative path and
    SHA-256 in path order (symlinks and unreadable files are errors)."""
    if path.is_file():
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    h = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{item.relative_to(path).as_posix()}\0{file_digest(item)}\n".encode())
    return h.hexdigest()


def format_time(at: dt.datetime) -> str:
    """UTC with fixed microsecond precision.

    >>> format_time(dt.datetime(2024, 5, 1, 14, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    '2024-05-01T12:00:00.000005Z'
    """
    if at.tzinfo is not dt.UTC:
        at = at.astimezone(dt.UTC)
    return at.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def entry_bytes(
    *,
    seq: int,
    at: dt.datetime,
    actor: str,
    action: str,
    subject: str,
    inputs_digest: str,
    details: str,
    key_id: str | None,
    prev_hash: str,
) -> bytes:
    """The bytes an entry's hash covers: every field but the hash, plus the format version.

    >>> entry_bytes(seq=1, at=dt.datetime(2024, 5, 1, tzinfo=dt.UTC), actor="ann",
    ...     action="scan", subject="web-01", inputs_digest="ab", details="{}", key_id=None,
    ...     prev_hash=GENESIS)[:60]
    b'{"action":"scan","actor":"ann","at":"2024-05-01T00:00:00.000'
    """
    return canonical_json(
        {
            "v": FORMAT,
            "seq": seq,
            "at": format_time(at),
            "actor": actor,
            "action": action,
            "subject": subject,
            "inputs_digest": inputs_digest,
            "details": details,
            "key_id": key_id,
            "prev_hash": prev_hash,
        }
    ).encode()


def key_from_env() -> bytes | None:
    """The HMAC key from ``$PATCHWARDEN_AUDIT_KEY`` (UTF-8), None when unset or empty."""
    value = os.environ.get(KEY_ENV)
    return value.encode() if value else None


def key_id(key: bytes | None) -> str | None:
    """A 16-hex fingerprint of ``key`` that reveals nothing of it (None for no key).

    >>> key_id(b"secret")
    'c80c77594b00f55a'
    """
    if key is None:
        return None
    return hmac.new(key, b"patchwarden audit key id", hashlib.sha256).hexdigest()[:16]


def entry_hash(data: bytes, key: bytes | None) -> str:
    """HMAC-SHA256 of ``data`` under ``key``, or SHA-256 without a key."""
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def default_actor() -> str:
    """``$PATCHWARDEN_ACTOR``, else the OS user name, else ``uid:<n>``."""
    env = os.environ.get(ACTOR_ENV)
    if env:
        return env
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid:{os.getuid()}"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------- writing


def append(
    conn: Connection,
    *,
    actor: str,
    action: Action,
    subject: str,
    inputs: Any,
    details: Mapping[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> AuditEntry:
    """Append one entry on ``conn``, inside the caller's transaction (see the module doc)."""
    event = AuditEvent(actor=actor, action=action, subject=subject, inputs=inputs, details=details)
    return append_many(conn, [event], at=at)[0]


_COLUMNS = (
    "seq",
    "at",
    "actor",
    "action",
    "subject",
    "inputs_digest",
    "details",
    "key_id",
    "prev_hash",
    "hash",
)


def append_many(
    conn: Connection, events: Sequence[AuditEvent], *, at: dt.datetime | None = None
) -> list[AuditEntry]:
    """Append several entries in order with one head update and one bulk insert.

    All get the same ``at`` (default: now). The key comes from ``$PATCHWARDEN_AUDIT_KEY``.
    """
    if not events:
        return []
    at = (at or _utcnow()).astimezone(dt.UTC)
    key = key_from_env()
    kid = key_id(key)
    prepared = []
    for e in events:  # serialise before taking the lock: a bad value fails fast
        if not isinstance(e.action, Action):
            raise ValueError(f"unknown audit action {e.action!r}")
        prepared.append((e, digest(e.inputs), canonical_json(dict(e.details or {}))))
    head = t.audit_head
    done = conn.execute(head.update().where(head.c.id == 1).values(seq=head.c.seq + len(events)))
    if done.rowcount != 1:
        raise StoreError("the audit chain head (table audit_head, id 1) is missing")
    last, prev = conn.execute(sa.select(head.c.seq, head.c.hash).where(head.c.id == 1)).one()
    seq = int(last) - len(events)
    entries = []
    rows: list[tuple[Any, ...]] = []  # a scan appends one entry per asset: through the driver
    stamp = db_time(conn, at)
    for e, inputs_digest, details in prepared:
        seq += 1
        fields: dict[str, Any] = {
            "seq": seq,
            "at": at,
            "actor": e.actor,
            "action": e.action.value,
            "subject": e.subject,
            "inputs_digest": inputs_digest,
            "details": details,
            "key_id": kid,
            "prev_hash": prev,
        }
        prev = entry_hash(entry_bytes(**fields), key)
        fields["hash"] = prev
        entries.append(AuditEntry(**fields))
        rows.append(tuple(stamp if c == "at" else fields[c] for c in _COLUMNS))
    insert_many(conn, "audit_log", _COLUMNS, rows)
    conn.execute(head.update().where(head.c.id == 1).values(hash=prev))
    return entries


# --------------------------------------------------------------------------- reading


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=int(row.seq),
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        inputs_digest=row.inputs_digest,
        details=row.details,
        key_id=row.key_id,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _hash_of(e: AuditEntry, key: bytes | None) -> str:
    return entry_hash(
        entry_bytes(
            seq=e.seq,
            at=e.at,
            actor=e.actor,
            action=e.action,
            subject=e.subject,
            inputs_digest=e.inputs_digest,
            details=e.details,
            key_id=e.key_id,
            prev_hash=e.prev_hash,
        ),
        key,
    )


def entries(
    store: Store,
    *,
    since: dt.datetime | None = None,
    after_seq: int | None = None,
    newest_first: bool = False,
    limit: int | None = None,
) -> Iterator[AuditEntry]:
    """Stream stored entries in seq order (or newest first), optionally filtered."""
    log = t.audit_log
    query = sa.select(log).order_by(log.c.seq.desc() if newest_first else log.c.seq)
    if since is not None:
        query = query.where(log.c.at >= since)
    if after_seq is not None:
        query = query.where(log.c.seq > after_seq)
    if limit is not None:
        query = query.limit(limit)
    try:
        with store.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=1000).execute(query)
            try:
                for row in result:
                    yield _entry(row)
            finally:
                result.close()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the audit log: {exc}") from exc


def export(
    store: Store,
    out: IO[str],
    *,
    since: dt.datetime | None = None,
    after_seq: int | None = None,
) -> int:
    """Write entries as JSON lines (one :meth:`AuditEntry.to_json` object per line).

    The last line is the head at export time; keep its ``seq:hash`` as an anchor for
    ``verify(expect_head=...)``. Returns the number of lines written.
    """
    count = 0
    for entry in entries(store, since=since, after_seq=after_seq):
        out.write(json.dumps(entry.to_json(), sort_keys=True, ensure_ascii=False) + "\n")
        count += 1
    return count


# --------------------------------------------------------------------------- verifying


def parse_anchor(text: str) -> tuple[int | None, str]:
    """``SEQ:HASH`` or ``HASH`` (64 hex) -> (seq or None, hash).

    >>> parse_anchor("12:" + "a" * 64)
    (12, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')
    >>> parse_anchor("nope")
    Traceback (most recent call last):
    ValueError: audit anchor 'nope' is not SEQ:HASH or a 64-hex HASH
    """
    seq_text, _, hash_text = text.strip().rpartition(":")
    hash_text = hash_text.lower()
    valid = len(hash_text) == 64 and all(c in "0123456789abcdef" for c in hash_text)
    if not valid or (seq_text and not seq_text.isdigit()):
        raise ValueError(f"audit anchor {text!r} is not SEQ:HASH or a 64-hex HASH")
    return (int(seq_text) if seq_text else None, hash_text)


class _Bad(Exception):
    def __init__(self, seq: int | None, reason: Tamper, message: str) -> None:
        super().__init__(message)
        self.seq, self.reason, self.message = seq, reason, message


def verify(store: Store, *, expect_head: str | None = None) -> VerifyResult:
    """Check the whole chain under ``$PATCHWARDEN_AUDIT_KEY`` and name the first bad entry.

    Streams the log (memory does not grow with its length). ``expect_head`` (``SEQ:HASH`` or
    ``HASH``, from an earlier ``verify`` or export) must be an entry of the chain, which
    detects tail truncation. See the module docstring for every :class:`Tamper` reason.
    """
    anchor = None if expect_head is None else parse_anchor(expect_head)
    key = key_from_env()
    kid = key_id(key)
    log, head = t.audit_log, t.audit_head
    query = (
        sa.select(log, head.c.seq.label("head_seq"), head.c.hash.label("head_hash"))
        .select_from(log.outerjoin(head, head.c.id == 1))
        .order_by(log.c.seq)
    )
    checked = 0
    ps, ph, pph = 0, GENESIS, GENESIS  # last good seq, its hash, the hash before it
    head_row: tuple[int, str] | None = None
    anchor_found = anchor is None
    try:
        with store.engine.connect() as conn:
            try:
                stream = conn.execution_options(stream_results=True, yield_per=1000)
                with stream.execute(query) as result:
                    rows = iter(result)
                    row = _next(rows)
                    if row is None:
                        head_row = _read_head(conn)
                    while row is not None:
                        if row.head_seq is None:
                            raise _Bad(
                                None, Tamper.MALFORMED, "the audit chain head row is missing"
                            )
                        head_row = (int(row.head_seq), row.head_hash)
                        e = _entry(row)
                        if e.seq > head_row[0]:
                            raise _Bad(
                                e.seq,
                                Tamper.INSERTED,
                                f"entry {e.seq} is past the recorded chain head {head_row[0]}: "
                                "it was not appended by patchwarden",
                            )
                        if e.seq != ps + 1:
                            raise _Bad(
                                ps + 1,
                                Tamper.DELETED,
                                f"entry {ps + 1} is missing (deleted): entry {e.seq} follows "
                                f"entry {ps}",
                            )
                        if e.key_id != kid:
                            raise _Bad(e.seq, Tamper.WRONG_KEY, _key_message(e, kid))
                        valid = _hash_of(e, key) == e.hash
                        if not valid or e.prev_hash != ph:
                            nxt = _next(rows)
                            result.close()
                            raise _classify(conn, e, valid, nxt, ps, ph, pph)
                        pph, ph, ps = ph, e.hash, e.seq
                        checked += 1
                        if anchor is not None and e.hash == anchor[1]:
                            if anchor[0] is not None and anchor[0] != e.seq:
                                raise _Bad(
                                    e.seq,
                                    Tamper.REORDERED,
                                    f"the anchor {anchor[0]}:{anchor[1][:12]}... is entry {e.seq}",
                                )
                            anchor_found = True
                        row = _next(rows)
            except (ValueError, TypeError) as exc:
                raise _Bad(
                    ps + 1, Tamper.MALFORMED, f"entry {ps + 1} cannot be read: {exc}"
                ) from exc
    except _Bad as bad:
        return VerifyResult(
            ok=False,
            checked=checked,
            head_seq=ps,
            head_hash=ph,
            first_bad=bad.seq,
            reason=bad.reason,
            message=bad.message,
        )
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the audit log: {exc}") from exc
    problem = _tail_problem(ps, ph, head_row, anchor, anchor_found)
    if problem is not None:
        return VerifyResult(
            ok=False,
            checked=checked,
            head_seq=ps,
            head_hash=ph,
            first_bad=problem.seq,
            reason=problem.reason,
            message=problem.message,
        )
    return VerifyResult(ok=True, checked=checked, head_seq=ps, head_hash=ph)


def _next(rows: Iterator[Any]) -> Any:
    return next(rows, None)


def _read_head(conn: Connection) -> tuple[int, str] | None:
    row = conn.execute(sa.select(t.audit_head.c.seq, t.audit_head.c.hash)).first()
    return None if row is None else (int(row.seq), row.hash)


def _key_message(e: AuditEntry, kid: str | None) -> str:
    if kid is None:
        return (
            f"entry {e.seq} was written with an HMAC key (id {e.key_id}) and ${KEY_ENV} is not set"
        )
    if e.key_id is None:
        return f"entry {e.seq} carries no HMAC although ${KEY_ENV} is set"
    return f"entry {e.seq} was written with another HMAC key (id {e.key_id}, not {kid})"


def _seq_of_hash(conn: Connection, value: str) -> int | None:
    log = t.audit_log
    found = conn.execute(sa.select(log.c.seq).where(log.c.hash == value).limit(1)).first()
    return None if found is None else int(found.seq)


def _classify(
    conn: Connection, e: AuditEntry, valid: bool, nxt: Any, ps: int, ph: str, pph: str
) -> _Bad:
    """Name what happened at the first entry whose hash or link fails."""
    if e.prev_hash not in (ph, pph):
        elsewhere = _seq_of_hash(conn, e.prev_hash)
        if elsewhere is not None:
            return _Bad(
                e.seq,
                Tamper.REORDERED,
                f"entry {e.seq} is out of order: it links to entry {elsewhere}, not {ps}",
            )
    if nxt is not None and nxt.prev_hash == ph and int(nxt.seq) == e.seq + 1:
        return _Bad(
            e.seq,
            Tamper.INSERTED,
            f"entry {e.seq} was inserted: entry {e.seq + 1} links to entry {ps}",
        )
    if e.prev_hash == pph and ps > 0:
        return _Bad(
            ps, Tamper.INSERTED, f"entry {ps} was inserted: entry {e.seq} links to entry {ps - 1}"
        )
    if not valid and e.prev_hash == ph:
        return _Bad(e.seq, Tamper.EDITED, f"entry {e.seq} was edited: it does not match its hash")
    if valid:
        return _Bad(
            ps,
            Tamper.EDITED,
            f"entry {ps} was rewritten: entry {e.seq} recorded a different hash for it",
        )
    if _seq_of_hash(conn, e.prev_hash) is None:
        return _Bad(
            ps + 1,
            Tamper.DELETED,
            f"an entry after {ps} was deleted: entry {e.seq} links to a hash no entry has",
        )
    return _Bad(e.seq, Tamper.BAD_LINK, f"entry {e.seq} does not link to entry {ps}")


def _tail_problem(
    ps: int,
    ph: str,
    head_row: tuple[int, str] | None,
    anchor: tuple[int | None, str] | None,
    anchor_found: bool,
) -> _Bad | None:
    if head_row is None:
        return _Bad(None, Tamper.MALFORMED, "the audit chain head row is missing")
    if head_row[0] > ps:
        return _Bad(
            ps + 1,
            Tamper.TRUNCATED,
            f"the log ends at entry {ps} but the chain head records entry {head_row[0]}",
        )
    if head_row[1] != ph:
        return _Bad(
            ps,
            Tamper.EDITED,
            f"entry {ps} was rewritten: the chain head records a different hash for it",
        )
    if anchor is not None and not anchor_found:
        seq, value = anchor
        if seq is not None and seq > ps:
            return _Bad(
                ps + 1,
                Tamper.TRUNCATED,
                f"the log ends at entry {ps}, before the expected head {seq}:{value[:12]}...",
            )
        return _Bad(
            ps + 1 if seq is None else seq,
            Tamper.TRUNCATED,
            f"the expected head {value[:12]}... is not in the chain (truncated or rewritten)",
        )
    return None


def recent(store: Store, limit: int = 50) -> list[AuditEntry]:
    """The newest ``limit`` entries, newest first."""
    return list(entries(store, newest_first=True, limit=limit))
