"""The policy file (``policy.yaml``): how patchwarden weighs risk, and how it plans changes
(SLAs, maintenance windows, freezes, rings, ``max_unavailable``, gates, target versions),
and how it rolls changes out (``rollout:``: failure threshold, concurrency, soak, restarts)
and uses the patch-failure model (``learn:``: minimum outcomes, approval and canary thresholds).

Risk acceptances (exceptions) are not part of the file: the CLI records them
(:mod:`patchwarden.plan.exceptions`).

Every section is optional; anything left out takes its documented default
(``src/patchwarden/policy.example.yaml`` lists every key with its default). Unknown keys,
wrong types and out-of-range values are all reported at once as a
:class:`~patchwarden.errors.PolicyError`, each with file, line and field.

The file is validated with pydantic (the edge) and becomes plain frozen dataclasses
(:class:`Policy`, :class:`~patchwarden.risk.model.RiskWeights`) for the core. New sections
are added as a new optional field of ``_PolicySpec`` and of :class:`Policy`.

>>> Policy.default().risk.kev_floor
0.95
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from patchwarden.errors import PolicyError
from patchwarden.model import Environment, Severity
from patchwarden.plan.amount import Amount
from patchwarden.plan.changes import UpgradeLevel
from patchwarden.plan.gates import GateConditions, GateDecision, GateRule
from patchwarden.plan.rings import RingPolicy
from patchwarden.plan.scheduler import PlanPolicy
from patchwarden.plan.sla import SlaPolicy
from patchwarden.plan.targets import TargetMode
from patchwarden.plan.windows import Freeze, Selector, Window, parse_duration, parse_rrule
from patchwarden.plan.windows import parse_timezone as _parse_timezone
from patchwarden.risk.model import CiaAggregate, RiskWeights
from patchwarden.risk.ssvc import Decision
from patchwarden.yamlfile import load_validated

_Probability = Annotated[float, Field(ge=0.0, le=1.0, strict=True)]
_Positive = Annotated[float, Field(gt=0.0, strict=True)]
_Discount = Annotated[float, Field(gt=0.0, le=1.0, strict=True)]
_Tag = Annotated[str, Field(min_length=1, strict=True)]


def _non_decreasing(values: dict[int, float], what: str) -> dict[int, float]:
    if set(values) != {1, 2, 3, 4, 5}:
        raise ValueError(f"needs exactly the levels 1, 2, 3, 4, 5 (got {sorted(values)})")
    ordered = [values[k] for k in range(1, 6)]
    if any(a > b for a, b in itertools.pairwise(ordered)):
        raise ValueError(f"{what} factors must not decrease from level 1 to 5, got {ordered}")
    return values


class _RiskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    severity_prior: dict[Severity, _Probability] = {}
    likelihood_floor: Annotated[float, Field(gt=0.0, le=1.0, strict=True)] = 0.00001
    kev_floor: _Probability = 0.95
    kev_ransomware_floor: _Probability = 0.99
    internet_exposed_factor: Annotated[float, Field(ge=1.0, strict=True)] = 1.5
    control_factors: dict[_Tag, _Discount] | None = None
    cia_aggregate: CiaAggregate = CiaAggregate.MAX
    impact_floor: Annotated[float, Field(gt=0.0, le=1.0, strict=True)] = 0.1
    severity_impact: dict[Severity, _Discount] = {}
    criticality_factors: dict[int, _Positive] | None = None
    sensitivity_factors: dict[int, _Positive] | None = None
    environment_factors: dict[Environment, _Positive] | None = None
    poc_epss_percentile: _Probability = 0.9

    @field_validator("criticality_factors")
    @classmethod
    def _criticality(cls, v: dict[int, float] | None) -> dict[int, float] | None:
        return None if v is None else _non_decreasing(v, "criticality")

    @field_validator("sensitivity_factors")
    @classmethod
    def _sensitivity(cls, v: dict[int, float] | None) -> dict[int, float] | None:
        return None if v is None else _non_decreasing(v, "data sensitivity")

    @field_validator("environment_factors")
    @classmethod
    def _environment(cls, v: dict[Environment, float] | None) -> dict[Environment, float] | None:
        if v is None:
            return None
        if set(v) != set(Environment):
            raise ValueError("needs exactly prod, staging and dev")
        if not v[Environment.PROD] >= v[Environment.STAGING] >= v[Environment.DEV]:
            raise ValueError("environment factors must satisfy prod >= staging >= dev")
        return v

    def weights(self) -> RiskWeights:
        default = RiskWeights()
        return RiskWeights(
            severity_prior={**default.severity_prior, **self.severity_prior},
            likelihood_floor=self.likelihood_floor,
            kev_floor=self.kev_floor,
            kev_ransomware_floor=self.kev_ransomware_floor,
            internet_exposed_factor=self.internet_exposed_factor,
            control_factors=(
                dict(self.control_factors)
                if self.control_factors is not None
                else dict(default.control_factors)
            ),
            cia_aggregate=self.cia_aggregate,
            impact_floor=self.impact_floor,
            severity_impact={**default.severity_impact, **self.severity_impact},
            criticality_factors=self.criticality_factors or dict(default.criticality_factors),
            sensitivity_factors=self.sensitivity_factors or dict(default.sensitivity_factors),
            environment_factors=self.environment_factors or dict(default.environment_factors),
            poc_epss_percentile=self.poc_epss_percentile,
        )


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


def _check_amount(value: int | str) -> int | str:
    Amount.parse(value)
    return value


def _check_rrule(value: str) -> str:
    parse_rrule(value)
    return value


def _check_timezone(value: str) -> str:
    _parse_timezone(value)
    return value


_Duration = Annotated[str, Field(strict=True), AfterValidator(_check_duration)]
_Amount = Annotated[
    Annotated[int, Field(strict=True)] | Annotated[str, Field(strict=True)],
    AfterValidator(_check_amount),
]
_Name = Annotated[str, Field(min_length=1, strict=True)]
_Score = Annotated[float, Field(ge=0.0, le=100.0, strict=True)]


class _SelectorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    environment: list[Environment] = []
    service: list[_Name] = []
    tags: list[_Name] = []
    names: list[_Name] = []

    def build(self) -> Selector:
        return Selector(
            environments=tuple(self.environment),
            services=tuple(self.service),
            tags=tuple(self.tags),
            names=tuple(self.names),
        )


class _WindowSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rrule: Annotated[str, Field(min_length=1, strict=True), AfterValidator(_check_rrule)]
    duration: _Duration
    timezone: Annotated[str, Field(strict=True), AfterValidator(_check_timezone)] = "UTC"
    assets: _SelectorSpec | None = None

    @field_validator("duration")
    @classmethod
    def _positive(cls, v: str) -> str:
        if parse_duration(v) <= dt.timedelta():
            raise ValueError(f"a window must last longer than 0, got {v!r}")
        return v

    def build(self, name: str) -> Window:
        return Window(
            name=name,
            rrule=self.rrule,
            duration=parse_duration(self.duration),
            timezone=self.timezone,
            selector=self.assets.build() if self.assets is not None else None,
        )


class _FreezeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: _Name
    start: AwareDatetime
    end: AwareDatetime
    assets: _SelectorSpec | None = None
    allow_emergency: Annotated[bool, Field(strict=True)] = False

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"freeze {self.name!r} must end after it starts")
        return self

    def build(self) -> Freeze:
        return Freeze(
            name=self.name,
            start=self.start,
            end=self.end,
            selector=self.assets.build() if self.assets is not None else None,
            allow_emergency=self.allow_emergency,
        )


class _SlaSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kev_due_date: Annotated[bool, Field(strict=True)] = True
    ssvc: dict[Decision, _Duration] = {}
    severity: dict[Severity, _Duration] = {}

    def build(self) -> SlaPolicy:
        default = SlaPolicy()
        return SlaPolicy(
            use_kev_due_date=self.kev_due_date,
            ssvc={**default.ssvc, **{k: parse_duration(v) for k, v in self.ssvc.items()}},
            severity={
                **default.severity,
                **{k: parse_duration(v) for k, v in self.severity.items()},
            },
        )


class _RingsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    canary: _Amount = "5%"
    pilot: _Amount = "20%"
    soak: _Duration = "24h"

    def build(self) -> RingPolicy:
        return RingPolicy(
            canary=Amount.parse(self.canary),
            pilot=Amount.parse(self.pilot),
            soak=parse_duration(self.soak),
        )


class _MaxUnavailableSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default: _Amount = "25%"
    services: dict[_Name, _Amount] = {}


class _GateWhenSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    environment: list[Environment] | None = None
    upgrade_level: list[UpgradeLevel] | None = None
    predicted_failure_below: _Probability | None = None
    reboot: Annotated[bool, Field(strict=True)] | None = None
    restart: Annotated[bool, Field(strict=True)] | None = None
    risk_score_below: _Score | None = None
    risk_score_above: _Score | None = None
    kev: Annotated[bool, Field(strict=True)] | None = None


class _GateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: _Name
    when: _GateWhenSpec = _GateWhenSpec()
    decision: GateDecision

    def build(self) -> GateRule:
        w = self.when
        return GateRule(
            name=self.name,
            when=GateConditions(
                environments=tuple(w.environment) if w.environment is not None else None,
                upgrade_levels=tuple(w.upgrade_level) if w.upgrade_level is not None else None,
                predicted_failure_below=w.predicted_failure_below,
                reboot=w.reboot,
                restart=w.restart,
                risk_score_below=w.risk_score_below,
                risk_score_above=w.risk_score_above,
                kev=w.kev,
            ),
            decision=self.decision,
        )


class _ScheduleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    horizon: _Duration = "180d"
    emergency_duration: _Duration = "2h"


DEFAULT_REBOOT_COMMAND = ("shutdown", "-r", "+5", "patchwarden: a newer kernel is installed")
"""``rollout.reboot: schedule`` runs this by default: a reboot in five minutes, announced."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RolloutPolicy:
    """How ``patchwarden rollout`` runs a plan (policy ``rollout:``)."""

    max_failure_rate: float = 0.2
    """A wave whose share of failed changes is above this halts the rollout (0..1)."""
    max_concurrency: int = 10
    """Hosts of one wave changed at the same time."""
    soak: dt.timedelta | None = None
    """Time between a ring's last finished change and the next ring's start (None: the
    ``rings.soak`` of the plan policy)."""
    restart_services: bool = False
    """Restart the systemd units that still run old code after a change (False: leave them,
    the findings show as pending restart)."""
    reboot: str = "leave"
    """When a newer kernel than the running one is installed after a change: ``leave`` (the
    findings show as pending restart, reboot) or ``schedule`` (run :attr:`reboot_command`)."""
    reboot_command: tuple[str, ...] = DEFAULT_REBOOT_COMMAND
    """The command ``reboot: schedule`` runs on the host (as root), as an argv."""


class _RolloutSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_failure_rate: _Probability = 0.2
    max_concurrency: Annotated[int, Field(ge=1, le=10000, strict=True)] = 10
    soak: _Duration | None = None
    restart_services: Annotated[bool, Field(strict=True)] = False
    reboot: Literal["leave", "schedule"] = "leave"
    reboot_command: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=4096)]],
        Field(min_length=1, max_length=64),
    ] = list(DEFAULT_REBOOT_COMMAND)

    def build(self) -> RolloutPolicy:
        return RolloutPolicy(
            max_failure_rate=self.max_failure_rate,
            max_concurrency=self.max_concurrency,
            soak=parse_duration(self.soak) if self.soak is not None else None,
            restart_services=self.restart_services,
            reboot=self.reboot,
            reboot_command=tuple(self.reboot_command),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LearnPolicy:
    """How the patch-failure model (:mod:`patchwarden.learn`) is used (policy ``learn:``)."""

    min_observations: int = 20
    """Below this many recorded rollout outcomes the model makes no predictions."""
    approval_threshold: float | None = None
    """A change whose predicted failure is above this requires approval, whatever the gates
    say (None: only gate rules with ``predicted_failure_below`` use the prediction)."""
    canary_threshold: float | None = None
    """A change whose predicted failure is above this is placed in the canary ring (the
    canary grows by it; None: rings ignore the prediction)."""


class _LearnSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_observations: Annotated[int, Field(ge=0, le=10_000_000, strict=True)] = 20
    approval_threshold: _Probability | None = None
    canary_threshold: _Probability | None = None

    def build(self) -> LearnPolicy:
        return LearnPolicy(
            min_observations=self.min_observations,
            approval_threshold=self.approval_threshold,
            canary_threshold=self.canary_threshold,
        )


class _PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1] = 1
    risk: _RiskSpec = _RiskSpec()
    slas: _SlaSpec = _SlaSpec()
    windows: dict[_Name, _WindowSpec] | None = None
    freezes: list[_FreezeSpec] = []
    rings: _RingsSpec = _RingsSpec()
    max_unavailable: _MaxUnavailableSpec = _MaxUnavailableSpec()
    gates: list[_GateSpec] = []
    target: TargetMode = TargetMode.SMALLEST_FIX
    schedule: _ScheduleSpec = _ScheduleSpec()
    rollout: _RolloutSpec = _RolloutSpec()
    learn: _LearnSpec = _LearnSpec()

    def plan(self) -> PlanPolicy:
        default = PlanPolicy()
        return PlanPolicy(
            slas=self.slas.build(),
            windows=(
                tuple(w.build(name) for name, w in self.windows.items())
                if self.windows is not None
                else default.windows
            ),
            freezes=tuple(f.build() for f in self.freezes),
            rings=self.rings.build(),
            max_unavailable=Amount.parse(self.max_unavailable.default),
            max_unavailable_by_service={
                k: Amount.parse(v) for k, v in self.max_unavailable.services.items()
            },
            gates=tuple(g.build() for g in self.gates),
            target=self.target,
            horizon=parse_duration(self.schedule.horizon),
            emergency_duration=parse_duration(self.schedule.emergency_duration),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """A loaded, valid policy."""

    risk: RiskWeights = field(default_factory=RiskWeights)
    """The risk model's weights (``risk:`` section)."""
    plan: PlanPolicy = field(default_factory=PlanPolicy)
    """What the scheduler uses (``slas``, ``windows``, ``freezes``, ``rings``,
    ``max_unavailable``, ``gates``, ``target``, ``schedule`` sections)."""
    rollout: RolloutPolicy = field(default_factory=RolloutPolicy)
    """How rollouts run (``rollout:`` section)."""
    learn: LearnPolicy = field(default_factory=LearnPolicy)
    """How the patch-failure model is used (``learn:`` section)."""
    path: Path | None = None
    """The file it came from; None for the built-in default."""

    @classmethod
    def default(cls) -> Policy:
        """The policy used when no file is given (every documented default)."""
        return cls()


def load_policy(path: Path) -> Policy:
    """Load and validate ``policy.yaml``; raise :class:`PolicyError` listing every problem."""
    spec = load_validated(path, _PolicySpec, error=PolicyError)
    return Policy(
        risk=spec.risk.weights(),
        plan=spec.plan(),
        rollout=spec.rollout.build(),
        learn=spec.learn.build(),
        path=path,
    )


EXAMPLE = Path(__file__).with_name("policy.example.yaml")
"""The shipped example policy (every key with its default)."""
