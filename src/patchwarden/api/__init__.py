"""The HTTP service: REST API under ``/api`` (OpenAPI at ``/api/openapi.json``) and the
server-rendered dashboard at ``/`` (:mod:`patchwarden.web`).

:func:`create_app` builds one FastAPI app over one store and policy. Errors never reach the
client as a traceback: pydantic errors answer 422 naming each field, domain errors answer with
their message (``NotFound`` 404, ``GovernError`` 409, ``PolicyError`` and other
``PatchwardenError`` 400, ``StoreError`` 503), anything else 500 "internal error".
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from patchwarden import __version__
from patchwarden.api.deps import Service
from patchwarden.errors import GovernError, NotFound, PatchwardenError, StoreError
from patchwarden.policy import Policy
from patchwarden.store import Store

log = logging.getLogger(__name__)

__all__ = ["create_app"]


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


def _status(exc: PatchwardenError) -> int:
    match exc:
        case NotFound():
            return 404
        case StoreError():
            return 503
        case GovernError():
            return 409
        case _:
            return 400


def create_app(
    store_url: str | None, policy: Policy | None = None, *, secure_cookies: bool = False
) -> FastAPI:
    """The API and dashboard over the database at ``store_url`` (migrated on open)."""
    from patchwarden.api.routes import router
    from patchwarden.web import mount as mount_web

    store = Store.open(store_url)
    svc = Service(store=store, policy=policy or Policy.default(), secure_cookies=secure_cookies)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(
        title="patchwarden",
        version=__version__,
        description="Risk-based security patch management: fleet, findings, plans, approvals, "
        "exceptions, rollouts, audit and reports. Authenticate with "
        "`Authorization: Bearer <token>`.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = svc

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        text = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse(
            {"detail": f"invalid request: {text}", "errors": errors}, status_code=422
        )

    @app.exception_handler(PatchwardenError)
    async def domain(_request: Request, exc: PatchwardenError) -> JSONResponse:
        status = _status(exc)
        if status >= 500:
            log.error("store error: %s", exc)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(Exception)
    async def crash(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse({"detail": "internal error (see the server log)"}, status_code=500)

    app.include_router(router)
    mount_web(app)
    return app
