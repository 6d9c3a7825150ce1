"""The REST API under ``/api`` (see README "Service: API and dashboard" for the role matrix)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import HTMLResponse, PlainTextResponse

from patchwarden import audit, auth, govern
from patchwarden.api import views
from patchwarden.api.deps import Admin, Approver, Auditor, ExceptionManager, Operator, Svc, Viewer
from patchwarden.api.models import (
    DecisionIn,
    ExceptionIn,
    Problem,
    TokenCreated,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    UserPatch,
)
from patchwarden.model import Severity
from patchwarden.report.data import collect
from patchwarden.report.html import Report, build_report, render_html, report_json

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Bad input"},
    401: {"model": Problem, "description": "No or bad API token"},
    403: {"model": Problem, "description": "The role does not allow it"},
    404: {"model": Problem, "description": "No such object"},
    409: {"model": Problem, "description": "Not allowed in the object's state"},
    422: {"model": Problem, "description": "Invalid request (fields named)"},
}

router = APIRouter(prefix="/api", responses=_ERRORS)

Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many items.")]
Offset = Annotated[int, Query(ge=0, le=10**9)]
Id = Annotated[int, Path(ge=1, le=2**62)]


def _page(items: list[Any], limit: int, offset: int) -> dict[str, Any]:
    return {"total": len(items), "items": items[offset : offset + limit]}


# --------------------------------------------------------------------------- who am i


@router.get("/me", tags=["auth"], response_model=UserOut)
def me(user: Viewer) -> UserOut:
    """The authenticated user (any role)."""
    return UserOut.of(user)


# --------------------------------------------------------------------------- fleet


@router.get("/assets", tags=["fleet"])
def list_assets(svc: Svc, _: Viewer) -> list[dict[str, Any]]:
    """Every asset with its context and open finding count."""
    return views.assets(svc.store)


@router.get("/assets/{asset_id}", tags=["fleet"])
def get_asset(
    svc: Svc, _: Viewer, asset_id: Annotated[str, Path(min_length=1, max_length=255)]
) -> dict[str, Any]:
    """One asset with its context and open findings (with risk and SSVC)."""
    row = next((a for a in views.assets(svc.store) if a["id"] == asset_id), None)
    if row is None:
        from patchwarden.errors import NotFound

        raise NotFound(f"no asset {asset_id!r}")
    return {**row, "findings": views.findings(svc.store, svc.policy, asset=asset_id)}


@router.get("/findings", tags=["fleet"])
def list_findings(
    svc: Svc,
    _: Viewer,
    limit: Limit = 100,
    offset: Offset = 0,
    asset: Annotated[str | None, Query(max_length=255)] = None,
    kev: Annotated[bool, Query(description="Only KEV-listed.")] = False,
    min_severity: Severity | None = None,
) -> dict[str, Any]:
    """Open findings with risk score and SSVC decision, highest risk first."""
    items = views.findings(
        svc.store, svc.policy, asset=asset, kev_only=kev, min_severity=min_severity
    )
    return _page(items, limit, offset)


@router.get("/findings/{finding_id}", tags=["fleet"])
def get_finding(svc: Svc, _: Viewer, finding_id: Id) -> dict[str, Any]:
    """One finding with its risk, SSVC inputs and every explain factor."""
    return views.finding(svc.store, svc.policy, finding_id)


@router.get("/actions", tags=["fleet"])
def list_actions(svc: Svc, _: Viewer, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Upgrade actions (one package on one asset), most risk removed first."""
    items = [views.action_json(a) for a in views.actions(svc.store, svc.policy)]
    return _page(items, limit, offset)


@router.get("/actions/{action_id:path}", tags=["fleet"])
def get_action(
    svc: Svc, _: Viewer, action_id: Annotated[str, Path(min_length=3, max_length=600)]
) -> dict[str, Any]:
    """One action (``asset/package``) with the explanation of each finding it closes."""
    return views.action(svc.store, svc.policy, action_id)


# --------------------------------------------------------------------------- plans


@router.post("/plans", tags=["plans"], status_code=201)
def create_plan(svc: Svc, user: Operator) -> dict[str, Any]:
    """Plan every open, non-excepted finding now; the plan's creator is the caller."""
    stored, _plan = govern.create_plan(svc.store, svc.policy, actor=user.name)
    return views.plan_json(stored)


@router.get("/plans/latest", tags=["plans"])
def latest_plan(svc: Svc, _: Viewer) -> dict[str, Any]:
    """The newest plan."""
    return views.plan_json(govern.get_plan(svc.store))


@router.get("/plans/{plan_id}", tags=["plans"])
def get_plan(svc: Svc, _: Viewer, plan_id: Id) -> dict[str, Any]:
    """A saved plan with its changes and their decisions."""
    return views.plan_json(govern.get_plan(svc.store, plan_id))


@router.get("/plans/{plan_id}/timeline.svg", tags=["plans"], response_class=PlainTextResponse)
def plan_timeline(svc: Svc, _: Viewer, plan_id: Id) -> PlainTextResponse:
    """The plan's timeline as SVG."""
    svg = views.timeline_svg(govern.get_plan(svc.store, plan_id))
    return PlainTextResponse(svg, media_type="image/svg+xml")


# --------------------------------------------------------------------------- approvals


@router.get("/approvals", tags=["approvals"])
def list_pending(
    svc: Svc, _: Viewer, plan: Annotated[int | None, Query(ge=1, le=2**62)] = None
) -> dict[str, Any]:
    """Changes of a plan (default: the newest) waiting for approve / reject."""
    return views.pending(svc.store, plan)


@router.post("/approvals", tags=["approvals"])
def decide(svc: Svc, user: Approver, body: DecisionIn) -> dict[str, Any]:
    """Approve or reject a change (approver role; not by the plan's creator; audited)."""
    return govern.decide(svc.store, body.change, body.decision, actor=user.name, reason=body.reason)


# --------------------------------------------------------------------------- exceptions


@router.get("/exceptions", tags=["exceptions"])
def list_exceptions(svc: Svc, _: Viewer, include_revoked: bool = True) -> list[dict[str, Any]]:
    """Risk acceptances, newest first."""
    return [
        views.exception_json(r)
        for r in govern.acceptances(svc.store, include_revoked=include_revoked)
    ]


@router.post("/exceptions", tags=["exceptions"], status_code=201)
def create_exception(svc: Svc, user: ExceptionManager, body: ExceptionIn) -> dict[str, Any]:
    """Accept a finding's risk until ``until`` (approver role; audited)."""
    record = govern.accept_risk(
        svc.store,
        finding_id=body.finding,
        owner=body.owner,
        reason=body.reason,
        until=body.until,
        actor=user.name,
    )
    return views.exception_json(record)


@router.post("/exceptions/{exception_id}/revoke", tags=["exceptions"])
def revoke_exception(svc: Svc, user: ExceptionManager, exception_id: Id) -> dict[str, Any]:
    """Revoke a risk acceptance (approver role; audited)."""
    govern.revoke_acceptance(svc.store, exception_id, actor=user.name)
    record = next(r for r in govern.acceptances(svc.store) if r.id == exception_id)
    return views.exception_json(record)


# --------------------------------------------------------------------------- rollouts


@router.get("/rollouts", tags=["rollouts"])
def list_rollouts(svc: Svc, _: Viewer) -> list[dict[str, Any]]:
    """Rollouts with their progress (404 when the database has no rollout tables)."""
    return views.rollouts(svc.store)


@router.get("/rollouts/{rollout_id}", tags=["rollouts"])
def get_rollout(svc: Svc, _: Viewer, rollout_id: Id) -> dict[str, Any]:
    """One rollout with every step."""
    return views.rollout(svc.store, rollout_id)


# --------------------------------------------------------------------------- audit


@router.get("/audit", tags=["audit"])
def audit_entries(
    svc: Svc,
    _: Auditor,
    limit: Limit = 100,
    after_seq: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> list[dict[str, Any]]:
    """Audit entries, newest first (or in order after ``after_seq``); operator role."""
    return views.audit_entries(svc.store, limit=limit, after_seq=after_seq)


@router.get("/audit/verify", tags=["audit"])
def audit_verify(
    svc: Svc,
    _: Auditor,
    expect_head: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Verify the hash chain (and an optional ``SEQ:HASH`` anchor); operator role."""
    if expect_head is not None:
        try:
            audit.parse_anchor(expect_head)
        except ValueError as exc:
            raise HTTPException(400, f"expect_head: {exc}") from exc
    return audit.verify(svc.store, expect_head=expect_head).to_json()


# --------------------------------------------------------------------------- reports


def build(svc: Svc) -> Report:
    """The remediation report's numbers as of now."""
    now = dt.datetime.now(dt.UTC)
    data = collect(svc.store, now, sla=svc.policy.plan.slas, weights=svc.policy.risk)
    return build_report(data)


@router.get("/reports/metrics", tags=["reports"])
def report_metrics(svc: Svc, _: Viewer) -> dict[str, Any]:
    """Time-to-patch, exposure-days, SLA compliance, rollout rates, burn-down (JSON)."""
    return report_json(build(svc))


@router.get("/reports/html", tags=["reports"], response_class=HTMLResponse)
def report_html(svc: Svc, _: Viewer) -> HTMLResponse:
    """The self-contained HTML remediation report."""
    return HTMLResponse(render_html(build(svc)))


@router.get("/overview", tags=["reports"])
def overview(svc: Svc, _: Viewer) -> dict[str, Any]:
    """Fleet risk overview: open findings by severity and SSVC, KEV, open risk."""
    return views.overview(svc.store, svc.policy)


@router.get("/metrics", tags=["reports"], response_class=PlainTextResponse)
def metrics(svc: Svc, _: Viewer) -> PlainTextResponse:
    """Gauges in the Prometheus text format (version 0.0.4)."""
    o = views.overview(svc.store, svc.policy)
    lines = [
        "# HELP patchwarden_assets Assets in the inventory.",
        "# TYPE patchwarden_assets gauge",
        f"patchwarden_assets {o['assets']}",
        "# HELP patchwarden_open_findings Open, non-excepted findings.",
        "# TYPE patchwarden_open_findings gauge",
        f"patchwarden_open_findings {o['open_findings']}",
        "# HELP patchwarden_excepted_findings Findings under a risk acceptance.",
        "# TYPE patchwarden_excepted_findings gauge",
        f"patchwarden_excepted_findings {o['excepted_findings']}",
        "# HELP patchwarden_kev_findings Open findings listed in CISA KEV.",
        "# TYPE patchwarden_kev_findings gauge",
        f"patchwarden_kev_findings {o['kev_findings']}",
        "# HELP patchwarden_open_risk Sum of the open findings' risk scores.",
        "# TYPE patchwarden_open_risk gauge",
        f"patchwarden_open_risk {o['open_risk']}",
        "# HELP patchwarden_pending_approvals Changes of the newest plan awaiting a decision.",
        "# TYPE patchwarden_pending_approvals gauge",
        f"patchwarden_pending_approvals {o['pending_approvals']}",
        "# HELP patchwarden_open_findings_by_severity Open findings by severity.",
        "# TYPE patchwarden_open_findings_by_severity gauge",
        *(
            f'patchwarden_open_findings_by_severity{{severity="{k}"}} {v}'
            for k, v in o["by_severity"].items()
        ),
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


# --------------------------------------------------------------------------- users and tokens


@router.get("/users", tags=["users"], response_model=list[UserOut])
def list_users(svc: Svc, _: Admin) -> list[UserOut]:
    """Every user (admin role)."""
    return [UserOut.of(u) for u in auth.users(svc.store)]


@router.post("/users", tags=["users"], status_code=201, response_model=UserOut)
def create_user(svc: Svc, admin: Admin, body: UserIn) -> UserOut:
    """Create a user (admin role; audited)."""
    user = auth.create_user(
        svc.store, body.name, body.role, actor=admin.name, password=body.password
    )
    return UserOut.of(user)


@router.patch("/users/{name}", tags=["users"], response_model=UserOut)
def update_user(
    svc: Svc,
    admin: Admin,
    name: Annotated[str, Path(min_length=1, max_length=64)],
    body: UserPatch,
) -> UserOut:
    """Change a user's role, password or disabled flag (admin role; audited)."""
    user = auth.update_user(
        svc.store,
        name,
        actor=admin.name,
        role=body.role,
        password=body.password,
        disabled=body.disabled,
    )
    return UserOut.of(user)


@router.get("/tokens", tags=["users"], response_model=list[TokenOut])
def list_tokens(
    svc: Svc, _: Admin, user: Annotated[str | None, Query(max_length=64)] = None
) -> list[TokenOut]:
    """API tokens, without their secrets (admin role)."""
    return [TokenOut.of(i) for i in auth.tokens(svc.store, user_name=user)]


@router.post("/users/{name}/tokens", tags=["users"], status_code=201, response_model=TokenCreated)
def create_token(
    svc: Svc,
    admin: Admin,
    name: Annotated[str, Path(min_length=1, max_length=64)],
    body: TokenIn,
) -> TokenCreated:
    """A new API token for a user; the secret is in the answer only (admin role; audited)."""
    info, secret = auth.create_token(
        svc.store, name, actor=admin.name, name=body.name, expires_at=body.expires_at
    )
    return TokenCreated(**TokenOut.of(info).model_dump(), token=secret)


@router.post("/tokens/{token_id}/revoke", tags=["users"], response_model=TokenOut)
def revoke_token(
    svc: Svc, admin: Admin, token_id: Annotated[str, Path(min_length=1, max_length=32)]
) -> TokenOut:
    """Revoke an API token (admin role; audited)."""
    auth.revoke_token(svc.store, token_id, actor=admin.name)
    return next(TokenOut.of(i) for i in auth.tokens(svc.store) if i.id == token_id)
