"""The policy file (``policy.yaml``): how patchwarden weighs risk (and, later, SLAs, windows,
rings, gates and exceptions).

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

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from patchwarden.errors import PolicyError
from patchwarden.model import Environment, Severity
from patchwarden.risk.model import CiaAggregate, RiskWeights
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


class _PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1] = 1
    risk: _RiskSpec = _RiskSpec()


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """A loaded, valid policy."""

    risk: RiskWeights = field(default_factory=RiskWeights)
    """The risk model's weights (``risk:`` section)."""
    path: Path | None = None
    """The file it came from; None for the built-in default."""

    @classmethod
    def default(cls) -> Policy:
        """The policy used when no file is given (every documented default)."""
        return cls()


def load_policy(path: Path) -> Policy:
    """Load and validate ``policy.yaml``; raise :class:`PolicyError` listing every problem."""
    spec = load_validated(path, _PolicySpec, error=PolicyError)
    return Policy(risk=spec.risk.weights(), path=path)


EXAMPLE = Path(__file__).with_name("policy.example.yaml")
"""The shipped example policy (every key with its default)."""
