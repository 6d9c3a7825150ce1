"""The dashboard: server-rendered pages (Jinja2 + plain HTML forms, no script), same roles as
the API.

Login (``/login``) takes a user name and password, or an API token, and sets the session
cookie ``pw_session`` (HttpOnly, SameSite=Strict, Secure behind HTTPS). Every form carries the
session's CSRF token (the login form a double-submit cookie) and a POST without the right one
answers 403. Pages: ``/`` fleet risk overview, top actions with their explanation and charts;
``/plan`` the newest plan's timeline (create a plan: operator); ``/approvals`` pending changes
with approve / reject (approver); ``/rollouts``; ``/audit`` (operator).
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from patchwarden import audit, auth, govern
from patchwarden.api import views
from patchwarden.api.deps import Service, service
from patchwarden.auth import Permission, User
from patchwarden.errors import NotFound, PatchwardenError
from patchwarden.web import charts

HERE = Path(__file__).resolve().parent
COOKIE = "pw_session"
LOGIN_COOKIE = "pw_login_csrf"
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)


class _Session:
    """The logged-in user of a dashboard request and its CSRF token."""

    def __init__(self, user: User, csrf: str) -> None:
        self.user = user
        self.csrf = csrf


def _to_login() -> HTTPException:
    return HTTPException(303, "log in first", headers={"Location": "/login"})


def session(request: Request, svc: Annotated[Service, Depends(service)]) -> _Session:
    """The request's session (redirect to ``/login`` without one)."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise _to_login()
    found = auth.session_user(svc.store, cookie)
    if found is None:
        raise _to_login()
    return _Session(*found)


Sess = Annotated[_Session, Depends(session)]
Svc = Annotated[Service, Depends(service)]


def _render(
    request: Request, name: str, sess: _Session | None, status: int = 200, **context: Any
) -> HTMLResponse:
    base: dict[str, Any] = {
        "user": sess.user if sess else None,
        "csrf": sess.csrf if sess else "",
        "may": (lambda p: sess is not None and sess.user.may(Permission(p))),
        "msg": request.query_params.get("msg", ""),
        "error": request.query_params.get("error", ""),
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


def _check_csrf(sess: _Session, token: str) -> None:
    if not hmac.compare_digest(sess.csrf.encode(), token.encode()):
        raise HTTPException(403, "invalid CSRF token: reload the page and try again")


def _need(sess: _Session, permission: Permission) -> None:
    if not sess.user.may(permission):
        need = auth.PERMISSIONS[permission]
        raise HTTPException(
            403, f"your role {sess.user.role.value} cannot do this (needs {need.value})"
        )


def _back(path: str, *, msg: str = "", error: str = "") -> RedirectResponse:
    query = f"msg={quote(msg)}" if msg else f"error={quote(error)}"
    return RedirectResponse(f"{path}?{query}", status_code=303)


# --------------------------------------------------------------------------- login


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    """The login form (sets the double-submit CSRF cookie)."""
    token = secrets.token_urlsafe(32)
    response = _render(request, "login.html", None, login_csrf=token)
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login", max_age=3600
    )
    return response


@router.post("/login")
def login(
    request: Request,
    svc: Svc,
    csrf: Annotated[str, Form(max_length=200)] = "",
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    token: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Check the name and password (or token) and start a session."""
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf.encode()):
        return _back("/login", error="the login form expired; try again")
    user: User | None = None
    if token.strip():
        user = auth.authenticate_token(svc.store, token.strip())
    elif username and password:
        user = auth.login(svc.store, username, password)
    if user is None:
        return _back("/login", error="wrong user name, password or token")
    session_id, _csrf = auth.start_session(svc.store, user)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="strict",
        secure=svc.secure_cookies,
        max_age=auth.SESSION_HOURS * 3600,
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(
    request: Request, svc: Svc, sess: Sess, csrf: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    """End the session."""
    _check_csrf(sess, csrf)
    auth.end_session(svc.store, request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


# --------------------------------------------------------------------------- pages


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, svc: Svc, sess: Sess) -> HTMLResponse:
    """Fleet risk overview, top actions with their explanation, charts."""
    top = views.actions(svc.store, svc.policy)[:10]
    return _render(
        request,
        "overview.html",
        sess,
        overview=views.overview(svc.store, svc.policy),
        actions=[views.action_json(a, explain=True) for a in top],
    )


@router.get("/plan", response_class=HTMLResponse)
def plan_page(request: Request, svc: Svc, sess: Sess) -> HTMLResponse:
    """The newest plan: timeline and changes."""
    try:
        plan = govern.get_plan(svc.store)
    except NotFound:
        return _render(request, "plan.html", sess, plan=None, svg="")
    return _render(
        request, "plan.html", sess, plan=views.plan_json(plan), svg=views.timeline_svg(plan)
    )


@router.post("/plan")
def plan_create(svc: Svc, sess: Sess, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Create a plan now (operator)."""
    _check_csrf(sess, csrf)
    _need(sess, Permission.PLAN)
    stored, _ = govern.create_plan(svc.store, svc.policy, actor=sess.user.name)
    return _back("/plan", msg=f"plan {stored.id} created with {len(stored.changes)} change(s)")


@router.get("/approvals", response_class=HTMLResponse)
def approvals_page(request: Request, svc: Svc, sess: Sess) -> HTMLResponse:
    """Pending changes of the newest plan, with approve / reject, and recent decisions."""
    try:
        plan = govern.get_plan(svc.store)
    except NotFound:
        return _render(request, "approvals.html", sess, plan=None, pending=[], decided=[])
    changes = [views.change_json(c) for c in plan.changes]
    return _render(
        request,
        "approvals.html",
        sess,
        plan=views.plan_json(plan),
        pending=[c for c in changes if c["status"] == govern.ChangeStatus.PENDING_APPROVAL],
        decided=[c for c in changes if c["approvals"]],
    )


@router.post("/approvals")
def approvals_decide(
    svc: Svc,
    sess: Sess,
    csrf: Annotated[str, Form(max_length=200)] = "",
    change: Annotated[str, Form(max_length=300)] = "",
    decision: Annotated[str, Form(max_length=16)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Approve or reject one change (approver; four eyes)."""
    _check_csrf(sess, csrf)
    _need(sess, Permission.DECIDE)
    try:
        result = govern.decide(
            svc.store, change, govern.Decision(decision), actor=sess.user.name, reason=reason
        )
    except ValueError:
        return _back("/approvals", error=f"unknown decision {decision!r}")
    except PatchwardenError as exc:
        return _back("/approvals", error=str(exc))
    return _back("/approvals", msg=f"change {result['change']} is now {result['status']}")


@router.get("/rollouts", response_class=HTMLResponse)
def rollouts_page(request: Request, svc: Svc, sess: Sess) -> HTMLResponse:
    """Rollout progress (a note when the database has no rollout tables)."""
    if not views.has_rollouts(svc.store):
        return _render(request, "rollouts.html", sess, available=False, rollouts=[])
    return _render(
        request, "rollouts.html", sess, available=True, rollouts=views.rollouts(svc.store)
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, svc: Svc, sess: Sess) -> HTMLResponse:
    """The newest audit entries and the chain's verification (operator)."""
    _need(sess, Permission.AUDIT)
    return _render(
        request,
        "audit.html",
        sess,
        entries=views.audit_entries(svc.store, limit=200),
        verify=audit.verify(svc.store).to_json(),
    )


@router.get("/charts/{name}.png")
def chart(svc: Svc, _sess: Sess, name: str) -> Response:
    """A chart as PNG: ``burn-down``, ``exposure`` or ``mttp``."""
    try:
        kind = charts.Chart(name)
    except ValueError as exc:
        raise HTTPException(404, f"no chart {name!r} (burn-down, exposure, mttp)") from exc
    png = charts.render(kind, svc.store, svc.policy)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


def mount(app: FastAPI) -> None:
    """Add the dashboard's pages and static files to ``app``."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        from fastapi.exception_handlers import http_exception_handler

        if request.url.path.startswith("/api") or exc.status_code in (301, 302, 303, 307):
            return await http_exception_handler(request, exc)
        return _render(request, "error.html", None, status=exc.status_code, detail=exc.detail)

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
