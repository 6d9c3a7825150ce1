"""What every request needs: the store, the policy, and the authenticated user."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from patchwarden import auth
from patchwarden.auth import Permission, User
from patchwarden.policy import Policy
from patchwarden.store import Store


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """The app's shared state (one per :func:`patchwarden.api.create_app`)."""

    store: Store
    """The database."""
    policy: Policy
    """Risk weights, windows, gates, SLAs."""
    secure_cookies: bool = False
    """Mark the session cookie ``Secure`` (behind HTTPS)."""


def service(request: Request) -> Service:
    """The app's :class:`Service`."""
    value = request.app.state.service
    assert isinstance(value, Service)
    return value


_bearer = HTTPBearer(
    auto_error=False,
    description="An API token `pw_<id>_<secret>` (`patchwarden users token NAME`).",
)


def current_user(
    svc: Annotated[Service, Depends(service)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The user of the request's bearer token (401 without a valid one)."""
    if credentials is None:
        raise HTTPException(
            401,
            "authentication required: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user = auth.authenticate_token(svc.store, credentials.credentials)
    if user is None:
        raise HTTPException(
            401,
            "invalid, expired or revoked api token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return user


def require(permission: Permission) -> Callable[[User], User]:
    """A dependency: the current user, when its role holds ``permission`` (else 403)."""

    def check(user: Annotated[User, Depends(current_user)]) -> User:
        if not user.may(permission):
            need = auth.PERMISSIONS[permission]
            raise HTTPException(
                403,
                f"user {user.name!r} has role {user.role.value}; "
                f"{permission.value} needs role {need.value} or higher",
            )
        return user

    return check


Viewer = Annotated[User, Depends(require(Permission.READ))]
Operator = Annotated[User, Depends(require(Permission.PLAN))]
Auditor = Annotated[User, Depends(require(Permission.AUDIT))]
Approver = Annotated[User, Depends(require(Permission.DECIDE))]
ExceptionManager = Annotated[User, Depends(require(Permission.EXCEPTIONS))]
Admin = Annotated[User, Depends(require(Permission.USERS))]
Svc = Annotated[Service, Depends(service)]
