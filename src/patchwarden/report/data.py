"""Read what the store knows into the plain records the report and the evidence export use.

Findings (open and resolved) come from :meth:`Store.findings`, scores from
:func:`patchwarden.prioritize.score_findings` (current intel; the store keeps no score
history) and SLA deadlines from :func:`patchwarden.plan.sla.finding_deadline` under the
policy's ``slas:`` section. Plans, approvals, rollout outcomes and audit entries are read
only when their tables exist in the database (older schemas, or features that have not run
yet, simply give no data).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from patchwarden.errors import StoreError
from patchwarden.model import Environment, Finding
from patchwarden.plan.sla import Deadline, SlaPolicy, finding_deadline
from patchwarden.prioritize import ScoredFinding, score_findings
from patchwarden.report.metrics import FindingSpan, RolloutOutcome, RolloutStatus
from patchwarden.risk import RiskWeights
from patchwarden.store import FindingFilter, Store
from patchwarden.store.schema import UtcDateTime


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedChange:
    """A planned change covering a finding, with its approval (when the tables exist)."""

    change_id: str
    plan_id: int
    planned_at: dt.datetime
    planned_by: str
    slot_start: dt.datetime | None
    gate: str
    status: str
    approved_by: str | None = None
    approved_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditMark:
    """One audit entry that concerns a finding's timeline (score, rollout step, verify)."""

    seq: int
    at: dt.datetime
    actor: str
    action: str
    subject: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportData:
    """Everything a report is computed from."""

    now: dt.datetime
    """When the report was made (aware UTC)."""
    scored: tuple[ScoredFinding, ...]
    """Every finding (open and resolved) with its current score."""
    deadlines: Mapping[int, Deadline]
    """SLA deadline by finding id."""
    environments: Mapping[str, Environment]
    """Environment by asset id."""
    changes: Mapping[int, tuple[PlannedChange, ...]] = field(default_factory=dict)
    """Planned changes by finding id (empty when no plan was stored)."""
    audit: tuple[AuditMark, ...] = ()
    """Audit entries of the actions the evidence export uses."""
    outcomes: tuple[RolloutOutcome, ...] = ()
    """Rollout outcomes (empty when the store has none)."""
    tables: frozenset[str] = frozenset()
    """Tables present in the database."""

    def spans(self) -> list[FindingSpan]:
        """The findings as :class:`FindingSpan` records for the metrics."""
        out = []
        for s in self.scored:
            f = s.finding
            out.append(
                FindingSpan(
                    finding_id=f.id,
                    asset=f.asset,
                    package=f.package,
                    vulnerability=f.vulnerability,
                    severity=f.severity,
                    kev=f.kev,
                    environment=self.environments.get(f.asset, Environment.PROD),
                    first_seen=_aware(f.first_seen),
                    resolved_at=_aware(f.resolved_at) if f.resolved_at else None,
                    risk_score=s.risk.score,
                    sla_due=self.deadlines[f.id].due if f.id in self.deadlines else None,
                )
            )
        return out


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


_AUDIT_ACTIONS = ("score", "rollout.step", "verify", "rollback")


def collect(
    store: Store,
    now: dt.datetime,
    *,
    sla: SlaPolicy | None = None,
    weights: RiskWeights | None = None,
) -> ReportData:
    """Read findings, scores, deadlines and (when stored) plans, approvals and audit marks."""
    sla = sla or SlaPolicy()
    findings = store.findings(FindingFilter(include_resolved=True))
    scored = score_findings(store, findings, weights)
    kev = store.kev_entries(i for f in findings for i in (f.vulnerability, *f.aliases))
    deadlines = {s.finding.id: finding_deadline(s, sla, kev) for s in scored}
    assets = store.assets_by_id(f.asset for f in findings)
    environments: dict[str, Environment] = {str(a.id): a.environment for a in assets.values()}
    try:
        tables = frozenset(sa.inspect(store.engine).get_table_names())
        with store.engine.connect() as conn:
            changes = _changes(conn, tables, findings)
            audit = _audit(conn, tables)
            outcomes = _outcomes(conn, tables)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read plans or audit log: {exc}") from exc
    return ReportData(
        now=now,
        scored=tuple(scored),
        deadlines=deadlines,
        environments=environments,
        changes=changes,
        audit=audit,
        outcomes=outcomes,
        tables=tables,
    )


_ROLLOUT_STATUS = {
    "applied": RolloutStatus.SUCCEEDED,
    "rolled_back": RolloutStatus.ROLLED_BACK,
    "failed": RolloutStatus.FAILED,
}


def _outcomes(conn: Connection, tables: frozenset[str]) -> tuple[RolloutOutcome, ...]:
    """Each finished change of every rollout (``rollout_steps`` rows of step ``change``).

    Skipped changes (rejected, not approved, halted before they ran) are not outcomes.
    """
    if "rollout_steps" not in tables:
        return ()
    s = sa.table(
        "rollout_steps",
        sa.column("change_id"),
        sa.column("asset_id"),
        sa.column("ring"),
        sa.column("step"),
        sa.column("state"),
        sa.column("outcome", sa.JSON),
        sa.column("finished_at", UtcDateTime()),
    )
    rows = conn.execute(sa.select(s).where(s.c.step == "change", s.c.state.in_(("done", "failed"))))
    out = []
    for r in rows:
        result = str((r.outcome or {}).get("result", ""))
        status = _ROLLOUT_STATUS.get(result)
        if status is None or r.finished_at is None:
            continue
        out.append(
            RolloutOutcome(
                change_id=r.change_id,
                asset=r.asset_id,
                status=status,
                at=r.finished_at,
                ring=r.ring or "",
            )
        )
    return tuple(sorted(out, key=lambda o: (o.at, o.change_id, o.asset)))


def _action_keys(actions: Any) -> set[str]:
    """Action ids (``<asset>/<package>[@<ecosystem>]``) named by a change's ``actions`` JSON:
    a list of ids, or of objects with an ``id`` (or ``asset`` + ``package``)."""
    if isinstance(actions, str):
        try:
            actions = json.loads(actions)
        except ValueError:
            return {actions}
    keys: set[str] = set()
    for item in actions if isinstance(actions, list) else []:
        if isinstance(item, str):
            keys.add(item)
        elif isinstance(item, dict):
            if isinstance(item.get("id"), str):
                keys.add(item["id"])
            if isinstance(item.get("asset"), str) and isinstance(item.get("package"), str):
                keys.add(f"{item['asset']}/{item['package']}")
    return keys


def _changes(
    conn: sa.Connection, tables: frozenset[str], findings: Sequence[Finding]
) -> dict[int, tuple[PlannedChange, ...]]:
    if not {"plans", "changes"} <= tables:
        return {}
    meta = sa.MetaData()
    plans = sa.Table("plans", meta, autoload_with=conn)
    changes = sa.Table("changes", meta, autoload_with=conn)
    approved: dict[str, tuple[str, dt.datetime]] = {}
    if "approvals" in tables:
        approvals = sa.Table("approvals", meta, autoload_with=conn)
        for row in conn.execute(sa.select(approvals).order_by(approvals.c.at, approvals.c.id)):
            if str(row.decision).startswith("approve"):
                approved.setdefault(row.change_id, (row.actor, _aware(row.at)))
    by_asset: dict[str, list[PlannedChange]] = defaultdict(list)
    keys: dict[str, set[str]] = {}
    query = sa.select(changes, plans.c.created_at, plans.c.created_by).join(
        plans, plans.c.id == changes.c.plan_id
    )
    for row in conn.execute(query.order_by(plans.c.created_at, changes.c.id)):
        who = approved.get(row.id)
        by_asset[row.asset_id].append(
            PlannedChange(
                change_id=row.id,
                plan_id=row.plan_id,
                planned_at=_aware(row.created_at),
                planned_by=row.created_by,
                slot_start=_aware(row.slot_start) if row.slot_start else None,
                gate=row.gate,
                status=row.status,
                approved_by=who[0] if who else None,
                approved_at=who[1] if who else None,
            )
        )
        keys[row.id] = _action_keys(row.actions)
    out: dict[int, tuple[PlannedChange, ...]] = {}
    for f in findings:
        names = {f"{f.asset}/{f.package}", f"{f.asset}/{f.package}@{f.ecosystem}"}
        hits = tuple(c for c in by_asset.get(f.asset, ()) if keys[c.change_id] & names)
        if hits:
            out[f.id] = hits
    return out


def _audit(conn: sa.Connection, tables: frozenset[str]) -> tuple[AuditMark, ...]:
    if "audit_log" not in tables:
        return ()
    log = sa.Table("audit_log", sa.MetaData(), autoload_with=conn)
    rows = conn.execute(
        sa.select(log.c.seq, log.c.at, log.c.actor, log.c.action, log.c.subject)
        .where(log.c.action.in_(_AUDIT_ACTIONS))
        .order_by(log.c.seq)
    )
    return tuple(
        AuditMark(
            seq=int(r.seq), at=_aware(r.at), actor=r.actor, action=r.action, subject=r.subject
        )
        for r in rows
    )
