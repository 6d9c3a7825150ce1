"""Govern: plans, approvals and risk acceptances, persisted and audited.

The planner (:mod:`patchwarden.plan`) is pure; this module feeds it from the store (open
findings, their risk, exceptions, KEV due dates, the whole fleet), saves the plan it returns,
and records every human decision — approve, reject, accept a risk, revoke an acceptance —
with who, when and why, in the same transaction as its audit entry.

Four eyes: a change cannot be approved or rejected by the actor who created the plan
(``GovernError``). The actor is ``$PATCHWARDEN_ACTOR`` or the OS user
(:func:`patchwarden.audit.default_actor`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from patchwarden import audit
from patchwarden.errors import GovernError, NotFound
from patchwarden.learn.model import Prediction
from patchwarden.learn.store import asset_distros, current_model, predict_actions
from patchwarden.model import AssetId
from patchwarden.plan import (
    Change,
    GateDecision,
    Plan,
    RiskAcceptance,
    retarget,
    schedule,
    split_exceptions,
)
from patchwarden.policy import Policy
from patchwarden.prioritize import ScoredFinding, plan_actions, score_findings
from patchwarden.store import FindingFilter, Store
from patchwarden.store import schema as t
from patchwarden.vex.service import suppressions


class ChangeStatus(StrEnum):
    """Where a change stands."""

    PENDING_APPROVAL = "pending_approval"
    """The gate requires a human decision."""
    APPROVED = "approved"
    """Approved by a gate rule or by a human."""
    REJECTED = "rejected"
    """Rejected by a human; it will not run."""


class Decision(StrEnum):
    """A human decision on a change."""

    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptanceRecord:
    """A stored risk acceptance."""

    id: int
    """Store id (``exceptions revoke ID``)."""
    acceptance: RiskAcceptance
    """Finding, owner, reason, expiry."""
    created_by: str
    """Who recorded it."""
    revoked_at: dt.datetime | None
    """When it was revoked (None while in force or expired)."""
    revoked_by: str | None
    """Who revoked it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Prioritised:
    """Open findings split by risk acceptance, with their scores."""

    active: list[ScoredFinding]
    """Findings to remediate."""
    excepted: list[tuple[ScoredFinding, RiskAcceptance]]
    """Findings under a current exception."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


# --------------------------------------------------------------------------- exceptions


def accept_risk(
    store: Store,
    *,
    finding_id: int,
    owner: str,
    reason: str,
    until: dt.datetime,
    actor: str,
    now: dt.datetime | None = None,
) -> AcceptanceRecord:
    """Record a risk acceptance for an open finding until ``until`` (audited)."""
    now = now or _now()
    if until.tzinfo is None:
        raise GovernError(f"expiry {until.isoformat()} has no time zone")
    if until <= now:
        raise GovernError(f"expiry {until.isoformat()} is not in the future")
    if not reason.strip():
        raise GovernError("a risk acceptance needs a reason")
    with store.transaction() as conn:
        row = conn.execute(
            sa.select(t.findings.c.id, t.findings.c.resolved_at, t.findings.c.vulnerability).where(
                t.findings.c.id == finding_id
            )
        ).first()
        if row is None:
            raise NotFound(f"no finding {finding_id}")
        if row.resolved_at is not None:
            raise GovernError(f"finding {finding_id} is already resolved")
        new_id = conn.execute(
            t.risk_acceptances.insert().values(
                finding_id=finding_id,
                owner=owner,
                reason=reason,
                created_by=actor,
                created_at=now,
                expires_at=until,
            )
        ).inserted_primary_key
        assert new_id is not None
        audit.append(
            conn,
            actor=actor,
            action=audit.Action.EXCEPTION_CREATE,
            subject=f"finding:{finding_id}",
            inputs={"finding": finding_id, "owner": owner, "reason": reason, "until": until},
            details={
                "acceptance": int(new_id[0]),
                "vulnerability": row.vulnerability,
                "owner": owner,
                "reason": reason,
                "until": until.isoformat(),
            },
            at=now,
        )
    return AcceptanceRecord(
        id=int(new_id[0]),
        acceptance=RiskAcceptance(
            finding=finding_id, owner=owner, reason=reason, expires=until, created=now
        ),
        created_by=actor,
        revoked_at=None,
        revoked_by=None,
    )


def revoke_acceptance(
    store: Store, acceptance_id: int, *, actor: str, now: dt.datetime | None = None
) -> None:
    """Revoke a risk acceptance: its finding is active again at once (audited)."""
    now = now or _now()
    ra = t.risk_acceptances
    with store.transaction() as conn:
        row = conn.execute(sa.select(ra).where(ra.c.id == acceptance_id)).first()
        if row is None:
            raise NotFound(f"no risk acceptance {acceptance_id}")
        if row.revoked_at is not None:
            raise GovernError(f"risk acceptance {acceptance_id} is already revoked")
        conn.execute(
            ra.update().where(ra.c.id == acceptance_id).values(revoked_at=now, revoked_by=actor)
        )
        audit.append(
            conn,
            actor=actor,
            action=audit.Action.EXCEPTION_EXPIRE,
            subject=f"finding:{row.finding_id}",
            inputs={"acceptance": acceptance_id, "revoked": True},
            details={"acceptance": acceptance_id, "revoked": True},
            at=now,
        )


def acceptances(store: Store, *, include_revoked: bool = True) -> list[AcceptanceRecord]:
    """Every stored risk acceptance, newest first."""
    ra = t.risk_acceptances
    query = sa.select(ra).order_by(ra.c.id.desc())
    if not include_revoked:
        query = query.where(ra.c.revoked_at.is_(None))
    with store.engine.connect() as conn:
        rows = list(conn.execute(query))
    return [
        AcceptanceRecord(
            id=r.id,
            acceptance=RiskAcceptance(
                finding=r.finding_id,
                owner=r.owner,
                reason=r.reason,
                expires=r.expires_at,
                created=r.created_at,
            ),
            created_by=r.created_by,
            revoked_at=r.revoked_at,
            revoked_by=r.revoked_by,
        )
        for r in rows
    ]


def in_force_acceptances(
    store: Store, *, now: dt.datetime | None = None
) -> dict[int, RiskAcceptance]:
    """The acceptance in force per finding id at ``now`` (the one expiring last)."""
    now = now or _now()
    out: dict[int, RiskAcceptance] = {}
    for record in acceptances(store, include_revoked=False):
        a = record.acceptance
        if a.active(now) and (a.finding not in out or a.expires > out[a.finding].expires):
            out[a.finding] = a
    return out


def record_expiries(store: Store, *, now: dt.datetime | None = None) -> list[AcceptanceRecord]:
    """Audit every acceptance that has expired since the last call (once each)."""
    now = now or _now()
    ra = t.risk_acceptances
    with store.transaction() as conn:
        rows = list(
            conn.execute(
                sa.select(ra).where(
                    ra.c.expires_at <= now,
                    ra.c.revoked_at.is_(None),
                    ra.c.expiry_recorded_at.is_(None),
                )
            )
        )
        if not rows:
            return []
        conn.execute(
            ra.update().where(ra.c.id.in_([r.id for r in rows])).values(expiry_recorded_at=now)
        )
        audit.append_many(
            conn,
            [
                audit.AuditEvent(
                    actor="patchwarden",
                    action=audit.Action.EXCEPTION_EXPIRE,
                    subject=f"finding:{r.finding_id}",
                    inputs={"acceptance": r.id, "expired": r.expires_at},
                    details={"acceptance": r.id, "expired": r.expires_at.isoformat()},
                )
                for r in rows
            ],
            at=now,
        )
    return [a for a in acceptances(store) if a.id in {r.id for r in rows}]


def prioritised(
    store: Store,
    policy: Policy,
    *,
    now: dt.datetime | None = None,
    flt: FindingFilter | None = None,
) -> Prioritised:
    """Open findings scored with ``policy``, split by the risk acceptances in force at ``now``.

    Findings a VEX ``not_affected`` statement covers are left out entirely. Expired
    acceptances are audited (once) and their findings are active again.
    """
    now = now or _now()
    record_expiries(store, now=now)
    findings = store.findings(flt or FindingFilter())
    suppressed = suppressions(store, findings)
    findings = [f for f in findings if f.id not in suppressed]
    in_force = [a.acceptance for a in acceptances(store) if a.revoked_at is None]
    split = split_exceptions(findings, in_force, now)
    scored = {s.finding.id: s for s in score_findings(store, findings, policy.risk)}
    active = [scored[f.id] for f in split.active]
    active.sort(key=lambda s: (-s.risk.score, s.finding.id))
    return Prioritised(
        active=active,
        excepted=[(scored[f.id], a) for f, a in split.excepted],
    )


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredPlan:
    """A plan as saved: its id, who made it, and its changes with their current status."""

    id: int
    created_at: dt.datetime
    created_by: str
    policy_digest: str
    summary: dict[str, Any]
    unscheduled: list[dict[str, Any]]
    changes: list[dict[str, Any]]
    """Rows of the ``changes`` table (plus ``approvals``: the decisions on each)."""


def policy_digest(policy: Policy) -> str:
    """A digest of the policy a plan was made with (``repr`` of its frozen values)."""
    return hashlib.sha256(repr((policy.risk, policy.plan)).encode()).hexdigest()


def _action_json(
    change: Change, predictions: Mapping[str, Prediction] | None = None
) -> list[dict[str, Any]]:
    predictions = predictions or {}
    return [
        {
            "id": a.id,
            "ecosystem": a.ecosystem,
            "package": a.package,
            "binaries": list(a.binaries),
            "installed_version": a.installed_version,
            "target_version": a.target_version,
            "risk_removed": round(a.risk_removed, 4),
            "findings": [s.finding.id for s in a.closes],
            "vulnerabilities": [s.finding.vulnerability for s in a.closes],
            **({"predicted_failure": predictions[a.id].to_json()} if a.id in predictions else {}),
        }
        for a in change.actions
    ]


def _combined(ids: Iterable[str], predictions: Mapping[str, Prediction]) -> float | None:
    """P(at least one action fails), as the scheduler combines them (None: any unknown)."""
    ok = 1.0
    for i in ids:
        if i not in predictions:
            return None
        ok *= 1.0 - predictions[i].probability
    return 1.0 - ok


def create_plan(
    store: Store,
    policy: Policy,
    *,
    actor: str,
    now: dt.datetime | None = None,
) -> tuple[StoredPlan, Plan]:
    """Plan every open, non-excepted finding and save the plan (audited, one transaction).

    The patch-failure model (:mod:`patchwarden.learn`; newest stored fit, once it has
    ``learn.min_observations`` outcomes) predicts each action's failure probability: the
    gates see it (``predicted_failure_below``), a change above ``learn.canary_threshold`` goes
    to the canary ring, one above ``learn.approval_threshold`` requires approval whatever the
    gates decided, and each action's prediction and basis is saved in the change's actions.
    """
    now = now or _now()
    prio = prioritised(store, policy, now=now)
    actions = retarget(plan_actions(prio.active), policy.plan.target)
    fleet = store.assets_by_id(a["id"] for a in store.assets())
    kev = store.kev_entries(
        i for s in prio.active for i in (s.finding.vulnerability, *s.finding.aliases)
    )
    trained = current_model(store)
    predictions = predict_actions(trained, actions, fleet, asset_distros(store), policy.learn)
    by_asset: dict[AssetId, list[str]] = {}
    for a in actions:
        by_asset.setdefault(a.asset, []).append(a.id)
    canary_at = policy.learn.canary_threshold
    canary = {
        asset
        for asset, ids in by_asset.items()
        if canary_at is not None and (_combined(ids, predictions) or 0.0) > canary_at
    }
    plan = schedule(
        actions,
        fleet.values(),
        policy.plan,
        now,
        kev=kev,
        predicted_failure={k: p.probability for k, p in predictions.items()} or None,
        canary=canary,
    )
    digest = policy_digest(policy)
    approval_at = policy.learn.approval_threshold

    def gated(c: Change) -> tuple[str, str]:
        """(gate decision, message), the approval threshold applied over the gate."""
        failure = _combined((a.id for a in c.actions), predictions)
        if (
            c.gate.decision is GateDecision.AUTO_APPROVE
            and approval_at is not None
            and failure is not None
            and failure > approval_at
        ):
            return GateDecision.REQUIRE_APPROVAL.value, (
                f"predicted failure {failure:.1%} > learn.approval_threshold {approval_at:.1%} "
                f"(overrides {c.gate.message})"
            )
        note = "" if failure is None else f" [predicted failure {failure:.1%}]"
        note += " [canary: predicted failure above learn.canary_threshold]" * (c.asset in canary)
        return c.gate.decision.value, c.gate.message + note

    decided = {c.id: gated(c) for c in plan.changes}
    summary = _summary_json(plan)
    if trained is not None:
        summary["model"] = {
            "id": trained.id,
            "observations": trained.observations,
            "used": bool(predictions),
            "predicted_actions": len(predictions),
        }
    with store.transaction() as conn:
        plan_id = conn.execute(
            t.plans.insert().values(
                created_at=now,
                created_by=actor,
                policy_digest=digest,
                summary=summary,
                unscheduled=[
                    {
                        "action": u.action,
                        "asset": u.asset,
                        "reason": u.reason.value,
                        "message": u.message,
                    }
                    for u in plan.unscheduled
                ],
            )
        ).inserted_primary_key
        assert plan_id is not None
        pid = int(plan_id[0])
        rows = [
            {
                "id": f"{pid}/{c.id}",
                "plan_id": pid,
                "asset_id": c.asset,
                "slot_start": c.start,
                "slot_end": c.end,
                "ring": c.ring.value,
                "wave": c.wave,
                "gate": decided[c.id][0],
                "gate_rule": decided[c.id][1],
                "sla_deadline": c.deadline.due,
                "breach": c.sla_breach,
                "emergency": c.emergency,
                "disruption": c.disruption.value,
                "actions": _action_json(c, predictions),
                "status": (
                    ChangeStatus.APPROVED
                    if decided[c.id][0] == GateDecision.AUTO_APPROVE.value
                    else ChangeStatus.PENDING_APPROVAL
                ).value,
            }
            for c in plan.changes
        ]
        if rows:
            conn.execute(t.changes.insert(), rows)
        events = [
            audit.AuditEvent(
                actor=actor,
                action=audit.Action.PLAN_CREATE,
                subject=f"plan:{pid}",
                inputs={"policy": digest, "changes": [r["id"] for r in rows]},
                details=summary,
            )
        ]
        events += [
            audit.AuditEvent(
                actor="patchwarden",
                action=audit.Action.GATE_DECIDE,
                subject=f"change:{r['id']}",
                inputs={"change": r["id"], "actions": r["actions"]},
                details={"gate": r["gate"], "rule": r["gate_rule"], "status": r["status"]},
            )
            for r in rows
        ]
        audit.append_many(conn, events, at=now)
    stored = get_plan(store, pid)
    return stored, plan


def _summary_json(plan: Plan) -> dict[str, Any]:
    s = plan.summary
    return {
        "generated_at": plan.generated_at.isoformat(),
        "actions": s.actions,
        "changes": s.changes,
        "scheduled_actions": s.scheduled_actions,
        "unscheduled_actions": s.unscheduled_actions,
        "emergency": s.emergency,
        "sla_breaches": s.sla_breaches,
        "auto_approved": s.auto_approved,
        "require_approval": s.require_approval,
        "by_ring": {str(k): v for k, v in s.by_ring.items()},
        "waves": s.waves,
    }


def latest_plan_id(store: Store) -> int | None:
    """The newest plan's id."""
    with store.engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.max(t.plans.c.id))).scalar_one()
    return None if value is None else int(value)


def get_plan(store: Store, plan_id: int | None = None) -> StoredPlan:
    """A saved plan (default: the newest) with its changes and their decisions."""
    pid = plan_id if plan_id is not None else latest_plan_id(store)
    if pid is None:
        raise NotFound("no plan yet (run `patchwarden plan`)")
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t.plans).where(t.plans.c.id == pid)).first()
        if row is None:
            raise NotFound(f"no plan {pid}")
        changes = [
            dict(r._mapping)
            for r in conn.execute(
                sa.select(t.changes)
                .where(t.changes.c.plan_id == pid)
                .order_by(t.changes.c.slot_start, t.changes.c.asset_id)
            )
        ]
        decisions: dict[str, list[dict[str, Any]]] = {}
        ids = [c["id"] for c in changes]
        for start in range(0, len(ids), 500):
            for a in conn.execute(
                sa.select(t.approvals)
                .where(t.approvals.c.change_id.in_(ids[start : start + 500]))
                .order_by(t.approvals.c.id)
            ):
                decisions.setdefault(a.change_id, []).append(dict(a._mapping))
    for c in changes:
        c["approvals"] = decisions.get(c["id"], [])
    return StoredPlan(
        id=row.id,
        created_at=row.created_at,
        created_by=row.created_by,
        policy_digest=row.policy_digest,
        summary=row.summary,
        unscheduled=row.unscheduled,
        changes=changes,
    )


def resolve_change_id(store: Store, ref: str) -> str:
    """``PLAN/asset@slot`` as given, or ``asset@slot`` in the newest plan."""
    if "/" in ref.split("@", 1)[0] and ref.split("/", 1)[0].isdigit():
        return ref
    pid = latest_plan_id(store)
    if pid is None:
        raise NotFound("no plan yet (run `patchwarden plan`)")
    return f"{pid}/{ref}"


def decide(
    store: Store,
    change_ref: str,
    decision: Decision,
    *,
    actor: str,
    reason: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Approve or reject a change that waits for a human (audited, four eyes)."""
    now = now or _now()
    if not reason.strip():
        raise GovernError("a decision needs a reason (--reason)")
    change_id = resolve_change_id(store, change_ref)
    c = t.changes
    with store.transaction() as conn:
        row = conn.execute(sa.select(c).where(c.c.id == change_id)).first()
        if row is None:
            raise NotFound(f"no change {change_id!r} (see `patchwarden plan show`)")
        plan_row = conn.execute(
            sa.select(t.plans.c.created_by).where(t.plans.c.id == row.plan_id)
        ).one()
        if row.status != ChangeStatus.PENDING_APPROVAL:
            how = (
                f"by gate rule: {row.gate_rule}"
                if row.gate == GateDecision.AUTO_APPROVE.value
                else "by a human decision"
            )
            raise GovernError(f"change {change_id!r} is already {row.status} ({how})")
        if actor == plan_row.created_by:
            raise GovernError(
                f"{actor!r} created plan {row.plan_id}; a change must be approved or rejected "
                "by someone else (four eyes; set PATCHWARDEN_ACTOR)"
            )
        status = ChangeStatus.APPROVED if decision is Decision.APPROVE else ChangeStatus.REJECTED
        conn.execute(c.update().where(c.c.id == change_id).values(status=status.value))
        conn.execute(
            t.approvals.insert().values(
                change_id=change_id, decision=decision.value, actor=actor, reason=reason, at=now
            )
        )
        audit.append(
            conn,
            actor=actor,
            action=(
                audit.Action.APPROVAL_APPROVE
                if decision is Decision.APPROVE
                else audit.Action.APPROVAL_REJECT
            ),
            subject=f"change:{change_id}",
            inputs={"change": change_id, "decision": decision.value, "reason": reason},
            details={"reason": reason, "status": status.value},
            at=now,
        )
    return {"change": change_id, "status": status.value, "actor": actor, "at": now.isoformat()}
