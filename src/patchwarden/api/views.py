"""Read models shared by the REST API and the dashboard: store and govern data as JSON.

Every function takes the store (and policy) and returns plain JSON-ready dicts, so the API
returns them as they are and the dashboard templates render the same values.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from patchwarden import audit, govern
from patchwarden.errors import NotFound, StoreError
from patchwarden.model import Finding, Severity
from patchwarden.policy import Policy
from patchwarden.prioritize import Action, ScoredFinding, plan_actions
from patchwarden.report.timeline import render_timeline
from patchwarden.store import FindingFilter, Store
from patchwarden.store import schema as t

ROLLOUT_TABLES = ("rollouts", "rollout_steps")
"""The tables of issue 5's rollouts; the rollout views answer 404 while they are missing."""


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def finding_json(f: Finding) -> dict[str, Any]:
    """A finding's stored facts."""
    return {
        "id": f.id,
        "asset": f.asset,
        "ecosystem": f.ecosystem,
        "package": f.package,
        "installed_version": f.installed_version,
        "vulnerability": f.vulnerability,
        "aliases": list(f.aliases),
        "fix_state": f.fix_state.value,
        "fixed_version": f.fixed_version,
        "severity": f.severity.value,
        "cvss_score": f.cvss_score,
        "kev": f.kev,
        "epss": f.epss,
        "first_seen": _iso(f.first_seen),
        "resolved_at": _iso(f.resolved_at),
    }


def risk_json(s: ScoredFinding, *, factors: bool = False) -> dict[str, Any]:
    """A scored finding: facts, risk score, SSVC decision (and the explain factors)."""
    r = s.risk
    out: dict[str, Any] = {
        **finding_json(s.finding),
        "risk": round(r.score, 3),
        "likelihood": round(r.likelihood, 4),
        "impact": round(r.impact, 4),
        "ssvc": r.ssvc.value,
    }
    if factors:
        out["ssvc_inputs"] = {
            "exploitation": r.ssvc_inputs.exploitation.value,
            "exposure": r.ssvc_inputs.exposure.value,
            "automatable": r.ssvc_inputs.automatable.value,
            "human_impact": r.ssvc_inputs.human_impact.value,
        }
        out["factors"] = [
            {
                "name": f.name,
                "value": f.value,
                "source": f.source,
                "effect": round(f.effect, 4),
                "share": round(f.share, 4),
            }
            for f in r.factors
        ]
    return out


def action_json(a: Action, *, explain: bool = False) -> dict[str, Any]:
    """An upgrade action; with ``explain`` every closed finding carries its factors."""
    return {
        "id": a.id,
        "asset": a.asset,
        "ecosystem": a.ecosystem,
        "package": a.package,
        "installed_version": a.installed_version,
        "target_version": a.target_version,
        "risk_removed": round(a.risk_removed, 3),
        "ssvc": a.ssvc.value,
        "kev": a.kev,
        "closes": [risk_json(s, factors=explain) for s in a.closes],
        "remaining": [s.finding.vulnerability for s in a.remaining],
    }


def findings(
    store: Store,
    policy: Policy,
    *,
    asset: str | None = None,
    kev_only: bool = False,
    min_severity: Severity | None = None,
    include_excepted: bool = True,
) -> list[dict[str, Any]]:
    """Open findings (VEX-suppressed ones left out) with risk and SSVC, highest risk first."""
    flt = FindingFilter(
        assets=(asset,) if asset else (), kev_only=kev_only, min_severity=min_severity
    )
    prio = govern.prioritised(store, policy, flt=flt)
    out = [{**risk_json(s), "excepted": False} for s in prio.active]
    if include_excepted:
        out += [
            {**risk_json(s), "excepted": True, "exception_until": _iso(a.expires)}
            for s, a in prio.excepted
        ]
    return out


def finding(store: Store, policy: Policy, finding_id: int) -> dict[str, Any]:
    """One finding (open or resolved) with its explain factors."""
    from patchwarden.prioritize import score_findings

    rows = [f for f in store.findings(FindingFilter(include_resolved=True)) if f.id == finding_id]
    if not rows:
        raise NotFound(f"no finding {finding_id}")
    return risk_json(score_findings(store, rows, policy.risk)[0], factors=True)


def actions(store: Store, policy: Policy) -> list[Action]:
    """Upgrade actions for the open, non-excepted findings, most risk removed first."""
    return plan_actions(govern.prioritised(store, policy).active)


def action(store: Store, policy: Policy, action_id: str) -> dict[str, Any]:
    """One action with the explanation of every finding it closes."""
    asset = action_id.split("/", 1)[0]
    prio = govern.prioritised(store, policy, flt=FindingFilter(assets=(asset,)))
    for a in plan_actions(prio.active):
        if a.id == action_id:
            return action_json(a, explain=True)
    raise NotFound(f"no action {action_id!r} (see /api/actions)")


def assets(store: Store) -> list[dict[str, Any]]:
    """Every asset with its context and open finding count."""
    return [
        {
            "id": a["id"],
            "kind": a["kind"],
            "environment": a["environment"],
            "criticality": a["criticality"],
            "internet_exposed": a["internet_exposed"],
            "data_sensitivity": a["data_sensitivity"],
            "service": a["service"],
            "owner": a["owner"],
            "tags": list(a["tags"] or ()),
            "open_findings": int(a["open"]),
        }
        for a in store.assets()
    ]


def plan_json(plan: govern.StoredPlan) -> dict[str, Any]:
    """A stored plan with its changes and their decisions."""
    return {
        "id": plan.id,
        "created_at": _iso(plan.created_at),
        "created_by": plan.created_by,
        "policy_digest": plan.policy_digest,
        "summary": plan.summary,
        "unscheduled": plan.unscheduled,
        "changes": [change_json(c) for c in plan.changes],
    }


def change_json(c: dict[str, Any]) -> dict[str, Any]:
    """A row of the ``changes`` table (with its ``approvals``) as JSON."""
    return {
        "id": c["id"],
        "plan": c["plan_id"],
        "asset": c["asset_id"],
        "slot_start": _iso(c["slot_start"]),
        "slot_end": _iso(c["slot_end"]),
        "ring": c["ring"],
        "wave": c["wave"],
        "gate": c["gate"],
        "gate_rule": c["gate_rule"],
        "sla_deadline": _iso(c["sla_deadline"]),
        "breach": c["breach"],
        "emergency": c["emergency"],
        "disruption": c["disruption"],
        "status": c["status"],
        "actions": c["actions"],
        "approvals": [
            {
                "decision": a["decision"],
                "actor": a["actor"],
                "reason": a["reason"],
                "at": _iso(a["at"]),
            }
            for a in c.get("approvals", [])
        ],
    }


def timeline_svg(plan: govern.StoredPlan) -> str:
    """The plan's timeline chart (the SVG of :func:`render_timeline`)."""
    doc = render_timeline(
        plan.id, plan.created_at, plan.created_by, plan.summary, plan.changes, plan.unscheduled
    )
    match = re.search(r"<svg\b.*?</svg>", doc, re.S)
    return match.group(0) if match else ""


def pending(store: Store, plan_id: int | None = None) -> dict[str, Any]:
    """The changes of a plan (default: the newest) that wait for a human decision."""
    plan = govern.get_plan(store, plan_id)
    return {
        "plan": plan.id,
        "created_by": plan.created_by,
        "changes": [
            change_json(c)
            for c in plan.changes
            if c["status"] == govern.ChangeStatus.PENDING_APPROVAL
        ],
    }


def exception_json(r: govern.AcceptanceRecord) -> dict[str, Any]:
    """A stored risk acceptance."""
    a = r.acceptance
    return {
        "id": r.id,
        "finding": a.finding,
        "owner": a.owner,
        "reason": a.reason,
        "created_at": _iso(a.created),
        "expires_at": _iso(a.expires),
        "created_by": r.created_by,
        "revoked_at": _iso(r.revoked_at),
        "revoked_by": r.revoked_by,
    }


def _tables(store: Store) -> set[str]:
    try:
        return set(sa.inspect(store.engine).get_table_names())
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot list tables: {exc}") from exc


def has_rollouts(store: Store) -> bool:
    """True when the database has the rollout tables."""
    return set(ROLLOUT_TABLES) <= _tables(store)


def _need_rollouts(store: Store) -> None:
    if not has_rollouts(store):
        raise NotFound(
            "this database has no rollout tables (rollouts are not set up: "
            "migrate with a patchwarden that has `rollout`)"
        )


def rollouts(store: Store) -> list[dict[str, Any]]:
    """Every rollout with its progress (changes done / failed / total), newest first."""
    _need_rollouts(store)
    meta = sa.MetaData()
    r = sa.Table("rollouts", meta, autoload_with=store.engine)
    s = sa.Table("rollout_steps", meta, autoload_with=store.engine)
    out = []
    with store.engine.connect() as conn:
        for row in conn.execute(sa.select(r).order_by(r.c.id.desc())):
            states: dict[str, int] = {}
            for step_state, count in conn.execute(
                sa.select(s.c.state, sa.func.count())
                .where(s.c.rollout_id == row.id, s.c.step == "change")
                .group_by(s.c.state)
            ):
                states[str(step_state)] = int(count)
            m = row._mapping
            out.append(
                {
                    "id": m["id"],
                    "plan": m.get("plan_id"),
                    "state": m.get("state"),
                    "backend": m.get("backend"),
                    "created_by": m.get("created_by"),
                    "started_at": _iso(m.get("started_at")),
                    "finished_at": _iso(m.get("finished_at")),
                    "halt_reason": m.get("halt_reason"),
                    "changes": states,
                    "total": sum(states.values()),
                }
            )
    return out


def rollout(store: Store, rollout_id: int) -> dict[str, Any]:
    """One rollout with every step."""
    head = next((r for r in rollouts(store) if r["id"] == rollout_id), None)
    if head is None:
        raise NotFound(f"no rollout {rollout_id}")
    s = sa.Table("rollout_steps", sa.MetaData(), autoload_with=store.engine)
    with store.engine.connect() as conn:
        steps = [
            {
                "change": m["change_id"],
                "asset": m["asset_id"],
                "ring": m["ring"],
                "wave": m["wave"],
                "seq": m["seq"],
                "step": m["step"],
                "state": m["state"],
                "outcome": m["outcome"],
                "started_at": _iso(m["started_at"]),
                "finished_at": _iso(m["finished_at"]),
            }
            for m in (
                r._mapping
                for r in conn.execute(
                    sa.select(s).where(s.c.rollout_id == rollout_id).order_by(s.c.id)
                )
            )
        ]
    return {**head, "steps": steps}


def audit_entries(
    store: Store, *, limit: int, after_seq: int | None = None
) -> list[dict[str, Any]]:
    """Audit entries, newest first (or in order after ``after_seq``)."""
    if after_seq is None:
        rows = audit.recent(store, limit)
    else:
        rows = list(audit.entries(store, after_seq=after_seq, limit=limit))
    return [e.to_json() for e in rows]


def overview(store: Store, policy: Policy) -> dict[str, Any]:
    """Fleet risk overview: counts by severity and SSVC, KEV, exposure, total open risk."""
    prio = govern.prioritised(store, policy)
    by_severity: dict[str, int] = {s.value: 0 for s in Severity}
    by_ssvc: dict[str, int] = {}
    for s in prio.active:
        by_severity[s.finding.severity.value] += 1
        by_ssvc[s.risk.ssvc.value] = by_ssvc.get(s.risk.ssvc.value, 0) + 1
    counts = store.counts()
    with store.engine.connect() as conn:
        pending_count = int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(t.changes)
                .where(
                    t.changes.c.status == govern.ChangeStatus.PENDING_APPROVAL.value,
                    t.changes.c.plan_id == sa.select(sa.func.max(t.plans.c.id)).scalar_subquery(),
                )
            ).scalar_one()
        )
    return {
        "assets": counts["assets"],
        "open_findings": len(prio.active),
        "excepted_findings": len(prio.excepted),
        "kev_findings": sum(1 for s in prio.active if s.finding.kev),
        "open_risk": round(sum(s.risk.score for s in prio.active), 2),
        "by_severity": {k: v for k, v in by_severity.items() if v},
        "by_ssvc": by_ssvc,
        "pending_approvals": pending_count,
    }
