"""Plan: from remediation actions to a scheduled, gated plan of changes (pure core).

``schedule(actions, assets, policy.plan, now, kev=...)`` returns a :class:`Plan`. The pieces:
:mod:`~patchwarden.plan.windows` (recurring windows, freezes, selectors),
:mod:`~patchwarden.plan.sla` (deadlines), :mod:`~patchwarden.plan.changes` (upgrade level,
restart/reboot), :mod:`~patchwarden.plan.targets` (target version mode),
:mod:`~patchwarden.plan.rings`, :mod:`~patchwarden.plan.gates`,
:mod:`~patchwarden.plan.exceptions` (risk acceptance) and
:mod:`~patchwarden.plan.scheduler`.
"""

from __future__ import annotations

from patchwarden.plan.amount import Amount
from patchwarden.plan.changes import (
    REBOOT_PACKAGES,
    Disruption,
    MetadataHook,
    UpgradeLevel,
    change_disruption,
    change_level,
    disruption,
    upgrade_level,
)
from patchwarden.plan.exceptions import ExceptionSplit, RiskAcceptance, split_exceptions
from patchwarden.plan.gates import (
    GateConditions,
    GateDecision,
    GateFacts,
    GateOutcome,
    GateReason,
    GateRule,
    evaluate_gate,
)
from patchwarden.plan.rings import Ring, RingPolicy, assign_rings
from patchwarden.plan.scheduler import (
    BreachReason,
    Change,
    Plan,
    PlanPolicy,
    PlanSummary,
    Unscheduled,
    UnscheduledReason,
    schedule,
)
from patchwarden.plan.sla import Deadline, SlaBasis, SlaPolicy, action_deadline, finding_deadline
from patchwarden.plan.targets import TargetMode, retarget
from patchwarden.plan.windows import Freeze, Selector, Window, parse_duration

__all__ = [
    "REBOOT_PACKAGES",
    "Amount",
    "BreachReason",
    "Change",
    "Deadline",
    "Disruption",
    "ExceptionSplit",
    "Freeze",
    "GateConditions",
    "GateDecision",
    "GateFacts",
    "GateOutcome",
    "GateReason",
    "GateRule",
    "MetadataHook",
    "Plan",
    "PlanPolicy",
    "PlanSummary",
    "Ring",
    "RingPolicy",
    "RiskAcceptance",
    "Selector",
    "SlaBasis",
    "SlaPolicy",
    "TargetMode",
    "Unscheduled",
    "UnscheduledReason",
    "UpgradeLevel",
    "Window",
    "action_deadline",
    "assign_rings",
    "change_disruption",
    "change_level",
    "disruption",
    "evaluate_gate",
    "finding_deadline",
    "parse_duration",
    "retarget",
    "schedule",
    "split_exceptions",
    "upgrade_level",
]
