"""Users, roles, API tokens and dashboard sessions of ``patchwarden serve``.

Roles are ordered ``viewer < operator < approver < admin``; a role may do everything a lower
one may (:meth:`Role.allows`). What each role may do is the table :data:`PERMISSIONS`
(README "Service: API and dashboard").

Secrets are never stored: passwords and API token secrets are kept as salted scrypt hashes
(``scrypt$n$r$p$salt$hash``, RFC 7914 parameters n=2**14, r=8, p=1) and compared with
:func:`hmac.compare_digest`. An API token is ``pw_<id>_<secret>``: the id finds the row, the
secret is checked against its hash. A dashboard session cookie is a 256-bit random value; only
its SHA-256 is stored (a fast hash is enough for a value with that much entropy).

Creating users and tokens, changing roles and revoking tokens are audited
(:mod:`patchwarden.audit`), in the same transaction as the change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from patchwarden import audit
from patchwarden.errors import GovernError, NotFound
from patchwarden.store import Store
from patchwarden.store import schema as t

SESSION_HOURS = 12
"""How long a dashboard session lives."""
_SCRYPT = (2**14, 8, 1)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_TOKEN = re.compile(r"^pw_([0-9a-f]{16})_([A-Za-z0-9_-]{20,128})$")


class Role(StrEnum):
    """What a user may do; each role includes the ones before it."""

    VIEWER = "viewer"
    """Read fleet, findings, actions, plans, approvals, exceptions, rollouts, reports."""
    OPERATOR = "operator"
    """Also create plans, read and verify the audit trail."""
    APPROVER = "approver"
    """Also approve or reject changes (not of plans they created) and manage exceptions."""
    ADMIN = "admin"
    """Also manage users and API tokens."""

    @property
    def rank(self) -> int:
        """0 for viewer ... 3 for admin.

        >>> Role.APPROVER.rank
        2
        """
        return list(Role).index(self)

    def allows(self, required: Role) -> bool:
        """True when this role includes ``required``.

        >>> Role.APPROVER.allows(Role.OPERATOR), Role.OPERATOR.allows(Role.APPROVER)
        (True, False)
        """
        return self.rank >= required.rank


class Permission(StrEnum):
    """Things a request may want to do."""

    READ = "read"
    PLAN = "plan"
    AUDIT = "audit"
    DECIDE = "decide"
    EXCEPTIONS = "exceptions"
    USERS = "users"


PERMISSIONS: dict[Permission, Role] = {
    Permission.READ: Role.VIEWER,
    Permission.PLAN: Role.OPERATOR,
    Permission.AUDIT: Role.OPERATOR,
    Permission.DECIDE: Role.APPROVER,
    Permission.EXCEPTIONS: Role.APPROVER,
    Permission.USERS: Role.ADMIN,
}
"""The lowest role holding each permission."""


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """An account of the API and dashboard."""

    id: int
    """Store id."""
    name: str
    """Login name; also the actor of its audit entries and decisions."""
    role: Role
    """What it may do."""
    created_at: dt.datetime
    """When it was created."""
    created_by: str
    """Who created it."""
    disabled: bool
    """A disabled user cannot log in and its tokens stop working."""

    def may(self, permission: Permission) -> bool:
        """True when the user's role holds ``permission``."""
        return not self.disabled and self.role.allows(PERMISSIONS[permission])


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenInfo:
    """An API token as listed (never its secret)."""

    id: str
    """Public id (the ``<id>`` of ``pw_<id>_<secret>``)."""
    user: str
    """Owner's name."""
    name: str
    """What it is for."""
    created_at: dt.datetime
    """When it was created."""
    created_by: str
    """Who created it."""
    expires_at: dt.datetime | None
    """When it stops working (None: never)."""
    revoked_at: dt.datetime | None
    """When it was revoked."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------- hashing


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    """A salted scrypt hash of ``secret`` in the form ``scrypt$n$r$p$salt$hash`` (hex).

    >>> h = hash_secret("s3cret", salt=bytes(16))
    >>> h.split("$")[:4]
    ['scrypt', '16384', '8', '1']
    >>> check_secret("s3cret", h), check_secret("other", h)
    (True, False)
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    n, r, p = _SCRYPT
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def check_secret(secret: str, stored: str) -> bool:
    """True when ``secret`` matches ``stored`` (constant-time comparison)."""
    try:
        kind, n, r, p, salt, want = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            secret.encode(),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(want) // 2,
        )
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), want)


# --------------------------------------------------------------------------- users


def _user(row: sa.Row[Any]) -> User:
    m = row._mapping
    return User(
        id=int(m["id"]),
        name=str(m["name"]),
        role=Role(m["role"]),
        created_at=m["created_at"],
        created_by=str(m["created_by"]),
        disabled=m["disabled_at"] is not None,
    )


def check_name(name: str) -> str:
    """A valid user name, or :class:`GovernError` saying what is wrong.

    >>> check_name("alice")
    'alice'
    >>> check_name("a b")
    Traceback (most recent call last):
    ...
    patchwarden.errors.GovernError: invalid user name 'a b' (1-64 of letters, digits, . _ @ -)
    """
    if not _NAME.match(name):
        raise GovernError(f"invalid user name {name!r} (1-64 of letters, digits, . _ @ -)")
    return name


def create_user(
    store: Store, name: str, role: Role, *, actor: str, password: str | None = None
) -> User:
    """Create a user (audited); ``password`` None means token login only."""
    check_name(name)
    if password is not None and len(password) < 8:
        raise GovernError("a password needs at least 8 characters")
    now = _now()
    with store.transaction() as conn:
        exists = conn.execute(sa.select(t.users.c.id).where(t.users.c.name == name)).first()
        if exists is not None:
            raise GovernError(f"user {name!r} already exists")
        conn.execute(
            t.users.insert().values(
                name=name,
                role=role.value,
                password_hash=None if password is None else hash_secret(password),
                created_at=now,
                created_by=actor,
            )
        )
        audit.append(
            conn,
            actor=actor,
            action=audit.Action.USER_CREATE,
            subject=f"user:{name}",
            inputs={"name": name, "role": role.value, "password": password is not None},
            details={"role": role.value, "password": password is not None},
            at=now,
        )
    return get_user(store, name)


def get_user(store: Store, name: str) -> User:
    """A user by name (:class:`NotFound` when there is none)."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t.users).where(t.users.c.name == name)).first()
    if row is None:
        raise NotFound(f"no user {name!r}")
    return _user(row)


def users(store: Store) -> list[User]:
    """Every user, by name."""
    with store.engine.connect() as conn:
        return [_user(r) for r in conn.execute(sa.select(t.users).order_by(t.users.c.name))]


def update_user(
    store: Store,
    name: str,
    *,
    actor: str,
    role: Role | None = None,
    password: str | None = None,
    disabled: bool | None = None,
) -> User:
    """Change a user's role, password or disabled flag (audited)."""
    if password is not None and len(password) < 8:
        raise GovernError("a password needs at least 8 characters")
    current = get_user(store, name)
    values: dict[str, object] = {}
    details: dict[str, object] = {}
    if role is not None and role is not current.role:
        values["role"] = role.value
        details["role"] = [current.role.value, role.value]
    if password is not None:
        values["password_hash"] = hash_secret(password)
        details["password"] = "changed"
    if disabled is not None and disabled is not current.disabled:
        values["disabled_at"] = _now() if disabled else None
        details["disabled"] = disabled
    if not values:
        return current
    with store.transaction() as conn:
        conn.execute(t.users.update().where(t.users.c.id == current.id).values(**values))
        if disabled:
            conn.execute(t.web_sessions.delete().where(t.web_sessions.c.user_id == current.id))
        audit.append(
            conn,
            actor=actor,
            action=audit.Action.USER_UPDATE,
            subject=f"user:{name}",
            inputs=details,
            details=details,
        )
    return get_user(store, name)


def login(store: Store, name: str, password: str) -> User | None:
    """The user when ``name`` and ``password`` match an enabled user with a password."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t.users).where(t.users.c.name == name)).first()
    if row is None or row.password_hash is None:
        check_secret(password, hash_secret("timing"))  # same work for unknown users
        return None
    if not check_secret(password, row.password_hash) or row.disabled_at is not None:
        return None
    return _user(row)


# --------------------------------------------------------------------------- tokens


def create_token(
    store: Store,
    user_name: str,
    *,
    actor: str,
    name: str = "api",
    expires_at: dt.datetime | None = None,
) -> tuple[TokenInfo, str]:
    """A new API token for ``user_name``: its info and the secret token (shown once)."""
    user = get_user(store, user_name)
    if not name.strip() or len(name) > 255:
        raise GovernError("a token name needs 1-255 characters")
    now = _now()
    if expires_at is not None and expires_at <= now:
        raise GovernError(f"expiry {expires_at.isoformat()} is not in the future")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    with store.transaction() as conn:
        conn.execute(
            t.api_tokens.insert().values(
                id=token_id,
                user_id=user.id,
                name=name,
                secret_hash=hash_secret(secret),
                created_at=now,
                created_by=actor,
                expires_at=expires_at,
            )
        )
        audit.append(
            conn,
            actor=actor,
            action=audit.Action.TOKEN_CREATE,
            subject=f"token:{token_id}",
            inputs={"user": user_name, "name": name, "expires": expires_at},
            details={
                "user": user_name,
                "name": name,
                "expires": None if expires_at is None else expires_at.isoformat(),
            },
            at=now,
        )
    info = TokenInfo(
        id=token_id,
        user=user_name,
        name=name,
        created_at=now,
        created_by=actor,
        expires_at=expires_at,
        revoked_at=None,
    )
    return info, f"pw_{token_id}_{secret}"


def tokens(store: Store, *, user_name: str | None = None) -> list[TokenInfo]:
    """API tokens (of one user, or all), newest first."""
    query = (
        sa.select(t.api_tokens, t.users.c.name.label("user_name"))
        .join(t.users, t.users.c.id == t.api_tokens.c.user_id)
        .order_by(t.api_tokens.c.created_at.desc(), t.api_tokens.c.id)
    )
    if user_name is not None:
        query = query.where(t.users.c.name == user_name)
    with store.engine.connect() as conn:
        return [
            TokenInfo(
                id=r.id,
                user=r.user_name,
                name=r.name,
                created_at=r.created_at,
                created_by=r.created_by,
                expires_at=r.expires_at,
                revoked_at=r.revoked_at,
            )
            for r in conn.execute(query)
        ]


def revoke_token(store: Store, token_id: str, *, actor: str) -> None:
    """Revoke an API token (audited)."""
    now = _now()
    with store.transaction() as conn:
        row = conn.execute(sa.select(t.api_tokens).where(t.api_tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"no api token {token_id!r}")
        if row.revoked_at is not None:
            raise GovernError(f"api token {token_id!r} is already revoked")
        conn.execute(
            t.api_tokens.update().where(t.api_tokens.c.id == token_id).values(revoked_at=now)
        )
        audit.append(
            conn,
            actor=actor,
            action=audit.Action.TOKEN_REVOKE,
            subject=f"token:{token_id}",
            inputs={"token": token_id},
            details={"name": row.name},
            at=now,
        )


_VERIFIED: set[bytes] = set()
"""SHA-256 of (token id, secret, stored hash) of tokens whose scrypt check passed: a repeated
request skips the deliberately slow scrypt but still reads the row (revocation, expiry and
disabled users take effect at once). A 256-bit random secret makes SHA-256 as safe here."""


def authenticate_token(store: Store, token: str) -> User | None:
    """The enabled user an unrevoked, unexpired ``pw_<id>_<secret>`` token belongs to."""
    match = _TOKEN.match(token)
    if match is None:
        return None
    token_id, secret = match.groups()
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(
                t.users,
                t.api_tokens.c.secret_hash,
                t.api_tokens.c.revoked_at,
                t.api_tokens.c.expires_at,
            )
            .join(t.users, t.users.c.id == t.api_tokens.c.user_id)
            .where(t.api_tokens.c.id == token_id)
        ).first()
    if row is None:
        check_secret(secret, hash_secret("timing"))
        return None
    seen = hashlib.sha256(f"{token_id}:{secret}:{row.secret_hash}".encode()).digest()
    if seen not in _VERIFIED:
        if not check_secret(secret, row.secret_hash):
            return None
        if len(_VERIFIED) >= 4096:
            _VERIFIED.clear()
        _VERIFIED.add(seen)
    if row.revoked_at is not None or row.disabled_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= _now():
        return None
    return _user(row)


# --------------------------------------------------------------------------- sessions


def _sid_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start_session(store: Store, user: User) -> tuple[str, str]:
    """A new dashboard session for ``user``: (cookie value, CSRF token)."""
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = _now()
    with store.transaction() as conn:
        conn.execute(t.web_sessions.delete().where(t.web_sessions.c.expires_at <= now))
        conn.execute(
            t.web_sessions.insert().values(
                id_hash=_sid_hash(session_id),
                user_id=user.id,
                csrf=csrf,
                created_at=now,
                expires_at=now + dt.timedelta(hours=SESSION_HOURS),
            )
        )
    return session_id, csrf


def session_user(store: Store, session_id: str) -> tuple[User, str] | None:
    """The enabled user and CSRF token of a live session."""
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(
                t.users,
                t.web_sessions.c.csrf,
                t.web_sessions.c.expires_at.label("session_expires"),
            )
            .join(t.users, t.users.c.id == t.web_sessions.c.user_id)
            .where(t.web_sessions.c.id_hash == _sid_hash(session_id))
        ).first()
    if row is None or row.session_expires <= _now() or row.disabled_at is not None:
        return None
    return _user(row), str(row.csrf)


def end_session(store: Store, session_id: str) -> None:
    """Log a dashboard session out."""
    with store.transaction() as conn:
        conn.execute(
            t.web_sessions.delete().where(t.web_sessions.c.id_hash == _sid_hash(session_id))
        )
