"""Request and response bodies of the REST API (pydantic, at the edge only)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from patchwarden.auth import Role, TokenInfo, User
from patchwarden.govern import Decision


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("the time needs a time zone (e.g. 2026-12-01T00:00:00Z)")
    return value


AwareDatetime = Annotated[dt.datetime, AfterValidator(_aware)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Name = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$", max_length=64)
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DecisionIn(_Body):
    """Approve or reject one change that waits for a human."""

    change: Annotated[str, StringConstraints(min_length=1, max_length=300)] = Field(
        description="Change id (`PLAN/asset@slot`, or `asset@slot` in the newest plan)."
    )
    decision: Decision
    reason: Text = Field(description="Why (kept in the audit trail).")


class ExceptionIn(_Body):
    """Accept the risk of one open finding until a time."""

    finding: int = Field(ge=1, le=2**62, description="Finding id.")
    owner: Text
    reason: Text
    until: AwareDatetime = Field(description="Expiry (with a time zone).")


class UserIn(_Body):
    """A new user."""

    name: Name
    role: Role
    password: Annotated[str, StringConstraints(min_length=8, max_length=256)] | None = None


class UserPatch(_Body):
    """Changes to a user (only the fields given)."""

    role: Role | None = None
    password: Annotated[str, StringConstraints(min_length=8, max_length=256)] | None = None
    disabled: bool | None = None


class TokenIn(_Body):
    """A new API token."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    expires_at: AwareDatetime | None = None


class UserOut(BaseModel):
    """A user as listed (never its password hash)."""

    name: str
    role: Role
    created_at: dt.datetime
    created_by: str
    disabled: bool

    @classmethod
    def of(cls, u: User) -> UserOut:
        """From the domain object."""
        return cls(
            name=u.name,
            role=u.role,
            created_at=u.created_at,
            created_by=u.created_by,
            disabled=u.disabled,
        )


class TokenOut(BaseModel):
    """An API token as listed (never its secret)."""

    id: str
    user: str
    name: str
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @classmethod
    def of(cls, i: TokenInfo) -> TokenOut:
        """From the domain object."""
        return cls(
            id=i.id,
            user=i.user,
            name=i.name,
            created_at=i.created_at,
            created_by=i.created_by,
            expires_at=i.expires_at,
            revoked_at=i.revoked_at,
        )


class TokenCreated(TokenOut):
    """A new token: the secret ``token`` is shown this once."""

    token: str


class Problem(BaseModel):
    """An error answer."""

    detail: str
    errors: list[dict[str, str]] = []
