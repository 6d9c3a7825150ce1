"""Approval gates: ordered rules that auto-approve a change or send it to a human.

Rules are tried in order; the first whose every condition holds decides. A condition that is
not given does not constrain. ``predicted_failure_below`` needs a predicted failure
probability: when none is known the condition does not hold (the rule cannot auto-approve on
a prediction it does not have). Nothing matched: ``require_approval`` (the default rule).
Emergency changes always require approval, before any rule is tried.

>>> rule = GateRule(name="dev patches", when=GateConditions(environments=(Environment.DEV,)),
...                 decision=GateDecision.AUTO_APPROVE)
>>> facts = GateFacts(environment=Environment.DEV, upgrade_level=UpgradeLevel.PATCH,
...                   disruption=Disruption.RESTART, risk_score=3.0, kev=False)
>>> evaluate_gate((rule,), facts).decision
<GateDecision.AUTO_APPROVE: 'auto_approve'>
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from patchwarden.model import Environment
from patchwarden.plan.changes import Disruption, UpgradeLevel


class GateDecision(StrEnum):
    """What a gate decided."""

    AUTO_APPROVE = "auto_approve"
    REQUIRE_APPROVAL = "require_approval"


class GateReason(StrEnum):
    """Why the gate decided as it did."""

    RULE = "rule"
    """A policy rule matched (its index and name are recorded)."""
    DEFAULT = "default"
    """No rule matched: a human approves."""
    EMERGENCY = "emergency"
    """Emergency changes always need a human."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GateConditions:
    """Conditions of one rule; all given ones must hold."""

    environments: tuple[Environment, ...] | None = None
    """Asset environment is one of these."""
    upgrade_levels: tuple[UpgradeLevel, ...] | None = None
    """The change's largest upgrade level is one of these."""
    predicted_failure_below: float | None = None
    """A predicted failure probability is known and below this."""
    reboot: bool | None = None
    """The change needs a reboot (true) / does not (false)."""
    restart: bool | None = None
    """The change needs at least a service restart (true) / nothing at all (false)."""
    risk_score_below: float | None = None
    """The highest risk score the change fixes is below this."""
    risk_score_above: float | None = None
    """The highest risk score the change fixes is above this."""
    kev: bool | None = None
    """The change fixes a KEV-listed vulnerability (true) / does not (false)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GateRule:
    """One gate rule."""

    name: str
    """Shown in the plan as the deciding rule."""
    when: GateConditions
    """Conditions."""
    decision: GateDecision
    """Decision when all conditions hold."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GateFacts:
    """What the gate knows about a change."""

    environment: Environment
    """The asset's environment."""
    upgrade_level: UpgradeLevel
    """The change's largest upgrade level."""
    disruption: Disruption
    """Restart/reboot."""
    risk_score: float
    """Highest risk score among the findings the change closes."""
    kev: bool
    """Closes a KEV-listed vulnerability."""
    predicted_failure: float | None = None
    """Predicted probability that the change fails (None: no prediction)."""
    emergency: bool = False
    """An emergency change (SLA breach)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GateOutcome:
    """A gate decision and the rule that made it."""

    decision: GateDecision
    """Auto-approved or waiting for a human."""
    reason: GateReason
    """Rule, default or emergency."""
    rule_index: int | None
    """0-based index of the deciding rule in the policy's ``gates`` list (None: no rule)."""
    rule_name: str
    """Name of the deciding rule (``default`` / ``emergency`` when no rule decided)."""
    message: str
    """Human-readable explanation."""


def holds(when: GateConditions, facts: GateFacts) -> bool:
    """True when every given condition of ``when`` holds for ``facts``."""
    checks = (
        when.environments is None or facts.environment in when.environments,
        when.upgrade_levels is None or facts.upgrade_level in when.upgrade_levels,
        when.predicted_failure_below is None
        or (
            facts.predicted_failure is not None
            and facts.predicted_failure < when.predicted_failure_below
        ),
        when.reboot is None or (facts.disruption is Disruption.REBOOT) == when.reboot,
        when.restart is None or (facts.disruption is not Disruption.NONE) == when.restart,
        when.risk_score_below is None or facts.risk_score < when.risk_score_below,
        when.risk_score_above is None or facts.risk_score > when.risk_score_above,
        when.kev is None or facts.kev == when.kev,
    )
    return all(checks)


def evaluate_gate(rules: Sequence[GateRule], facts: GateFacts) -> GateOutcome:
    """Decide one change's gate (rules in the module docstring)."""
    if facts.emergency:
        return GateOutcome(
            decision=GateDecision.REQUIRE_APPROVAL,
            reason=GateReason.EMERGENCY,
            rule_index=None,
            rule_name="emergency",
            message="emergency changes always require approval",
        )
    for index, rule in enumerate(rules):
        if holds(rule.when, facts):
            return GateOutcome(
                decision=rule.decision,
                reason=GateReason.RULE,
                rule_index=index,
                rule_name=rule.name,
                message=f"gate rule {index} ({rule.name!r}) matched: {rule.decision.value}",
            )
    return GateOutcome(
        decision=GateDecision.REQUIRE_APPROVAL,
        reason=GateReason.DEFAULT,
        rule_index=None,
        rule_name="default",
        message="no gate rule matched: a human approver decides",
    )
