"""Remediation deadlines (SLAs): CISA KEV dueDate when listed, else SSVC decision and severity.

Defaults (policy ``slas:``; every value can be changed):

===============  ========  ============  ========
SSVC decision    deadline  severity      deadline
===============  ========  ============  ========
immediate        48 h      critical      7 days
out_of_cycle     7 days    high          30 days
scheduled        90 days   medium        90 days
defer            180 days  low           180 days
\\                         none/unknown  180/90 days
===============  ========  ============  ========

A finding's deadline is its KEV ``dueDate`` (end of that day, UTC) when it is listed and
``use_kev_due_date`` is on; otherwise the *stricter* of its SSVC and severity deadlines,
counted from when the finding was first seen. (SSVC ``out_of_cycle`` means "act before the
next regular window", so it maps to the critical deadline; ``scheduled`` means "in the regular
cycle", the medium one.) An action's deadline is the earliest of its findings'; a change's,
the earliest of its actions'.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from patchwarden.model import KevEntry, Severity
from patchwarden.prioritize import Action, ScoredFinding
from patchwarden.risk.ssvc import Decision

_H = dt.timedelta(hours=1)
_D = dt.timedelta(days=1)


class SlaBasis(StrEnum):
    """What set a deadline."""

    KEV_DUE_DATE = "kev_due_date"
    SSVC = "ssvc"
    SEVERITY = "severity"


def _ssvc_defaults() -> dict[Decision, dt.timedelta]:
    return {
        Decision.IMMEDIATE: 48 * _H,
        Decision.OUT_OF_CYCLE: 7 * _D,
        Decision.SCHEDULED: 90 * _D,
        Decision.DEFER: 180 * _D,
    }


def _severity_defaults() -> dict[Severity, dt.timedelta]:
    return {
        Severity.CRITICAL: 7 * _D,
        Severity.HIGH: 30 * _D,
        Severity.MEDIUM: 90 * _D,
        Severity.LOW: 180 * _D,
        Severity.NONE: 180 * _D,
        Severity.UNKNOWN: 90 * _D,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaPolicy:
    """Deadlines by KEV due date, SSVC decision and severity (policy ``slas:``)."""

    use_kev_due_date: bool = True
    """A KEV-listed finding is due on its KEV ``dueDate``."""
    ssvc: Mapping[Decision, dt.timedelta] = field(default_factory=_ssvc_defaults)
    """Time allowed by SSVC decision, from first seen."""
    severity: Mapping[Severity, dt.timedelta] = field(default_factory=_severity_defaults)
    """Time allowed by severity, from first seen."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Deadline:
    """When something must be fixed and why."""

    due: dt.datetime
    """The deadline (aware, UTC)."""
    basis: SlaBasis
    """Which rule set it."""
    vulnerability: str
    """The finding that set it."""


def _kev_entry(s: ScoredFinding, kev: Mapping[str, KevEntry]) -> KevEntry | None:
    f = s.finding
    return next((kev[i] for i in (f.vulnerability, *f.aliases) if i in kev), None)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def finding_deadline(
    s: ScoredFinding, sla: SlaPolicy, kev: Mapping[str, KevEntry] | None = None
) -> Deadline:
    """The deadline of one scored finding (rules in the module docstring)."""
    f = s.finding
    entry = _kev_entry(s, kev or {})
    if sla.use_kev_due_date and entry is not None and entry.due_date is not None:
        end_of_day = dt.datetime.combine(entry.due_date + _D, dt.time(), tzinfo=dt.UTC)
        return Deadline(due=end_of_day, basis=SlaBasis.KEV_DUE_DATE, vulnerability=f.vulnerability)
    seen = _aware(f.first_seen).astimezone(dt.UTC)
    by_ssvc = seen + sla.ssvc[s.risk.ssvc]
    by_severity = seen + sla.severity[f.severity]
    if by_ssvc <= by_severity:
        return Deadline(due=by_ssvc, basis=SlaBasis.SSVC, vulnerability=f.vulnerability)
    return Deadline(due=by_severity, basis=SlaBasis.SEVERITY, vulnerability=f.vulnerability)


def action_deadline(
    action: Action, sla: SlaPolicy, kev: Mapping[str, KevEntry] | None = None
) -> Deadline:
    """The earliest deadline among the findings the action closes (ties: vulnerability id)."""
    if not action.closes:
        raise ValueError(f"action {action.id!r} closes no finding")
    return min(
        (finding_deadline(s, sla, kev) for s in action.closes),
        key=lambda d: (d.due, d.vulnerability),
    )
