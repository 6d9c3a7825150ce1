"""Compliance evidence: each finding's timeline, for auditors.

SOC 2 change management (CC8.1: changes are authorised, tested, approved and implemented)
and PCI DSS v4.0 requirement 6.3.3 (security patches installed within a defined time; critical
ones within one month of release) ask for the same evidence: when a vulnerability was
identified, how it was ranked, when a fix was planned, who approved it, when it was deployed
and how that was verified. One row per finding:

==================  ===========================================================================
found_at            ``first_seen``: the scan that first found it
scored_at           the audit log's ``score`` entry for the finding's asset or vulnerability;
                    without one, the export time (``score_basis`` says which): scores are
                    recomputed from stored intel, the store keeps no score history
planned_at          creation time of the first stored plan with a change covering the finding
approved_by/_at     the first ``approve`` decision on that change (``approvals`` table)
patched_at          the last ``rollout.step`` audit entry on that change
verified_at         the last ``verify`` audit entry on that change; otherwise ``resolved_at``,
                    the scan that no longer found the finding (``verified_by`` = ``rescan``)
==================  ===========================================================================

Columns whose source table does not exist (no plan stored yet, no rollout yet) are empty.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from patchwarden.report.data import AuditMark, ReportData
from patchwarden.report.metrics import sla_status


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceRow:
    """One finding's remediation timeline."""

    finding_id: int
    asset: str
    environment: str
    ecosystem: str
    package: str
    installed_version: str
    fixed_version: str | None
    vulnerability: str
    aliases: str
    """Space-separated."""
    severity: str
    cvss_score: float | None
    kev: bool
    epss: float | None
    risk_score: float
    ssvc: str
    status: str
    """``open`` or ``resolved``."""
    found_at: dt.datetime
    scored_at: dt.datetime
    score_basis: str
    """``audit`` (a recorded score event) or ``export`` (computed when exporting)."""
    sla_due: dt.datetime | None
    sla_basis: str
    sla_status: str
    plan_id: int | None
    change_id: str | None
    planned_at: dt.datetime | None
    planned_by: str | None
    gate: str | None
    approved_by: str | None
    approved_at: dt.datetime | None
    patched_at: dt.datetime | None
    verified_at: dt.datetime | None
    verified_by: str | None
    """``verify`` (an audit verification entry) or ``rescan``."""
    resolved_at: dt.datetime | None


COLUMNS = tuple(f.name for f in fields(EvidenceRow))
"""Column order of the CSV."""


def _last(marks: Iterable[AuditMark], action: str, subjects: set[str]) -> AuditMark | None:
    hits = [m for m in marks if m.action == action and m.subject in subjects]
    return hits[-1] if hits else None


def evidence_rows(data: ReportData) -> list[EvidenceRow]:
    """One :class:`EvidenceRow` per finding, by asset, package, vulnerability."""
    spans = {s.finding_id: s for s in data.spans()}
    rows = []
    for s in data.scored:
        f = s.finding
        span = spans[f.id]
        deadline = data.deadlines.get(f.id)
        subjects = {f.asset, f.vulnerability, str(f.id), f"finding:{f.id}"}
        scored = next(
            (
                m
                for m in data.audit
                if m.action == "score" and m.subject in subjects and m.at >= span.first_seen
            ),
            None,
        )
        changes = data.changes.get(f.id, ())
        change = changes[0] if changes else None
        # the rollout engine's step entries name their change as ``change:<id>``
        change_ids = {c.change_id for c in changes} | {f"change:{c.change_id}" for c in changes}
        patched = _last(data.audit, "rollout.step", change_ids)
        verified = _last(data.audit, "verify", change_ids | {f"finding:{f.id}"})
        approved = next((c for c in changes if c.approved_by), None)
        if verified is not None:
            verified_at, verified_by = verified.at, "verify"
        elif span.resolved_at is not None:
            verified_at, verified_by = span.resolved_at, "rescan"
        else:
            verified_at, verified_by = None, None
        rows.append(
            EvidenceRow(
                finding_id=f.id,
                asset=f.asset,
                environment=span.environment.value,
                ecosystem=f.ecosystem,
                package=f.package,
                installed_version=f.installed_version,
                fixed_version=f.fixed_version,
                vulnerability=f.vulnerability,
                aliases=" ".join(f.aliases),
                severity=f.severity.value,
                cvss_score=f.cvss_score,
                kev=f.kev,
                epss=f.epss,
                risk_score=round(s.risk.score, 4),
                ssvc=s.risk.ssvc.value,
                status="open" if f.resolved_at is None else "resolved",
                found_at=span.first_seen,
                scored_at=scored.at if scored else data.now,
                score_basis="audit" if scored else "export",
                sla_due=deadline.due if deadline else None,
                sla_basis=deadline.basis.value if deadline else "",
                sla_status=sla_status(span, data.now).value,
                plan_id=change.plan_id if change else None,
                change_id=change.change_id if change else None,
                planned_at=change.planned_at if change else None,
                planned_by=change.planned_by if change else None,
                gate=change.gate if change else None,
                approved_by=approved.approved_by if approved else None,
                approved_at=approved.approved_at if approved else None,
                patched_at=patched.at if patched else None,
                verified_at=verified_at,
                verified_by=verified_by,
                resolved_at=span.resolved_at,
            )
        )
    rows.sort(key=lambda r: (r.asset, r.package, r.vulnerability, r.finding_id))
    return rows


def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return value


def row_dict(row: EvidenceRow) -> dict[str, Any]:
    """A row as JSON-ready values (times as ISO 8601 UTC with ``Z``)."""
    return {k: _cell(v) for k, v in asdict(row).items()}


def write_csv(rows: Sequence[EvidenceRow], path: Path) -> None:
    """Write the rows as CSV (header :data:`COLUMNS`; empty cells for unknown values)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row_dict(row).items()})


def write_json(rows: Sequence[EvidenceRow], path: Path, *, now: dt.datetime) -> None:
    """Write ``{"generated_at", "columns", "findings": [...]}`` as JSON."""
    doc = {
        "generated_at": _cell(now),
        "columns": list(COLUMNS),
        "findings": [row_dict(r) for r in rows],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
