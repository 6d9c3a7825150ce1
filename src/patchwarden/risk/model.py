"""The risk score: expected harm = likelihood x impact x 100, with every factor explained.

README-ready description (the same text the README carries):

```markdown
### How patchwarden scores a finding

    score      = 100 × likelihood × impact                     (0..100, higher = fix first)
    likelihood = min(1, max(p₀, kev floor) × exposure) × Π control factors
    impact     = max(impact floor, CIA) × criticality × data sensitivity × environment

| term | what it is | default |
|---|---|---|
| p₀ | FIRST EPSS probability (exploitation activity in the next 30 days); without an EPSS score, a prior by CVSS severity | critical 0.05, high 0.02, medium 0.01, low 0.005, none 0.001, unknown 0.01 |
| likelihood floor | p₀ never goes below this (keeps every factor's share finite) | 0.00001 |
| kev floor | in CISA KEV: exploitation is observed, p₀ is raised to at least this | 0.95; 0.99 when KEV marks known ransomware use |
| exposure | `internet_exposed: true` in the fleet file | × 1.5 (else × 1) |
| control factors | compensating-control tags on the asset; each present tag multiplies | `waf` 0.7, `segmented` 0.8, `isolated` 0.5 |
| CIA | CVSS impact on the vulnerable system, C/I/A each 0..1 (v3.1 weights normalised so High = 1: N 0, L 0.39, H 1; v2: N 0, P 0.42, C 1; v4: VC/VI/VA like v3), aggregated by `max` (or `mean`); without a vector, by severity | critical 1.0, high 0.8, medium 0.5, low 0.25, none 0.1, unknown 0.5 |
| impact floor | CIA never goes below this (a vector saying "no impact" is still a finding) | 0.1 |
| criticality | asset criticality 1..5 | 0.2, 0.4, 0.6, 0.8, 1.0 |
| data sensitivity | asset data sensitivity 1..5 | 0.6, 0.7, 0.8, 0.9, 1.0 |
| environment | prod / staging / dev | 1.0 / 0.5 / 0.25 |

Every weight is set in the `risk:` section of `policy.yaml` and validated there (probabilities in
[0, 1], factors > 0, control factors <= 1, exposure >= 1, criticality / sensitivity /
environment factors non-decreasing with the level). With those rules the score is monotone:
a higher EPSS, a KEV listing, internet exposure, a higher criticality or data sensitivity never
lower it. Fix availability is shown but does not change the risk (it decides whether an
action exists).

**Shares.** The score is a product of factors, `score = 100 × Π eᵢ` (p₀ and CIA count as
factors too). The *share* of factor i is its part of the score's total log-distance from
100: `shareᵢ = |ln eᵢ| / Σⱼ |ln eⱼ|`. Shares are in [0, 1] and sum to 1 (all are 0 only when
every factor is exactly 1, i.e. score 100). A factor with effect < 1 pulls the score down,
> 1 pushes it up; `explain` prints both the effect and the share.

Beside the score, patchwarden shows the CISA SSVC deployer decision (Defer / Scheduled /
Out-of-cycle / Immediate), see `patchwarden.risk.ssvc`.
```

>>> from patchwarden.risk.cvss import parse_cvss
>>> inp = RiskInput(
...     vulnerability="CVE-2021-44228",
...     cvss=parse_cvss("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"),
...     kev=True, epss=0.944, epss_percentile=0.99994, internet_exposed=True, criticality=5,
... )
>>> result = score(inp)
>>> round(result.score, 1), result.ssvc
(80.0, <Decision.IMMEDIATE: 'immediate'>)
>>> round(sum(f.share for f in result.factors), 9)
1.0
"""  # noqa: E501 (the README table keeps one row per line)

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from patchwarden.model import Environment, Severity
from patchwarden.risk import ssvc
from patchwarden.risk.cvss import CvssInfo
from patchwarden.risk.ssvc import Automatable, Decision, SsvcInputs


class CiaAggregate(StrEnum):
    """How the C/I/A impacts combine into one number."""

    MAX = "max"
    """The worst of the three (default: one total loss is enough harm)."""
    MEAN = "mean"
    """Their average."""


def _severity_prior() -> dict[Severity, float]:
    return {
        Severity.CRITICAL: 0.05,
        Severity.HIGH: 0.02,
        Severity.MEDIUM: 0.01,
        Severity.LOW: 0.005,
        Severity.NONE: 0.001,
        Severity.UNKNOWN: 0.01,
    }


def _severity_impact() -> dict[Severity, float]:
    return {
        Severity.CRITICAL: 1.0,
        Severity.HIGH: 0.8,
        Severity.MEDIUM: 0.5,
        Severity.LOW: 0.25,
        Severity.NONE: 0.1,
        Severity.UNKNOWN: 0.5,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskWeights:
    """Every weight of the score (defaults documented in the module docstring).

    Set from the ``risk:`` section of the policy file (:mod:`patchwarden.policy`), which
    validates ranges and ordering.
    """

    severity_prior: Mapping[Severity, float] = field(default_factory=_severity_prior)
    """Likelihood used when a vulnerability has no EPSS score, by CVSS severity."""
    likelihood_floor: float = 0.00001
    """Lowest base likelihood (keeps every factor's log-share finite)."""
    kev_floor: float = 0.95
    """Likelihood raised to at least this when the CVE is in CISA KEV."""
    kev_ransomware_floor: float = 0.99
    """Likelihood raised to at least this when KEV marks known ransomware campaign use."""
    internet_exposed_factor: float = 1.5
    """Likelihood multiplier for internet-exposed assets (>= 1; the result is capped at 1)."""
    control_factors: Mapping[str, float] = field(
        default_factory=lambda: {"waf": 0.7, "segmented": 0.8, "isolated": 0.5}
    )
    """Likelihood multiplier per compensating-control tag (each in (0, 1])."""
    cia_aggregate: CiaAggregate = CiaAggregate.MAX
    """How the CVSS C/I/A impacts combine."""
    impact_floor: float = 0.1
    """Lowest CVSS impact (a vector with no C/I/A impact still counts a little)."""
    severity_impact: Mapping[Severity, float] = field(default_factory=_severity_impact)
    """Impact used when a vulnerability has no CVSS vector, by severity."""
    criticality_factors: Mapping[int, float] = field(
        default_factory=lambda: {1: 0.2, 2: 0.4, 3: 0.6, 4: 0.8, 5: 1.0}
    )
    """Impact multiplier per asset criticality 1..5 (non-decreasing)."""
    sensitivity_factors: Mapping[int, float] = field(
        default_factory=lambda: {1: 0.6, 2: 0.7, 3: 0.8, 4: 0.9, 5: 1.0}
    )
    """Impact multiplier per data sensitivity 1..5 (non-decreasing)."""
    environment_factors: Mapping[Environment, float] = field(
        default_factory=lambda: {
            Environment.PROD: 1.0,
            Environment.STAGING: 0.5,
            Environment.DEV: 0.25,
        }
    )
    """Impact multiplier per environment (prod >= staging >= dev)."""
    poc_epss_percentile: float = 0.9
    """SSVC Exploitation is ``public_poc`` at or above this EPSS percentile (a proxy)."""

    def to_json(self) -> dict[str, Any]:
        """A JSON form (mapping keys as text), read back by :meth:`from_json`.

        >>> w = RiskWeights(kev_floor=0.9, criticality_factors={1: 0.1, 5: 1.0})
        >>> RiskWeights.from_json(w.to_json()) == w
        True
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                text = {str(getattr(k, "value", k)): v for k, v in value.items()}
                value = dict(sorted(text.items()))
            elif isinstance(value, StrEnum):
                value = value.value
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RiskWeights:
        """The weights :meth:`to_json` wrote."""
        keys: dict[str, Callable[[str], Any]] = {
            "severity_prior": Severity,
            "severity_impact": Severity,
            "control_factors": str,
            "criticality_factors": int,
            "sensitivity_factors": int,
            "environment_factors": Environment,
        }
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name in keys:
                values[name] = {keys[name](k): float(v) for k, v in value.items()}
            elif name == "cia_aggregate":
                values[name] = CiaAggregate(value)
            else:
                values[name] = float(value)
        return cls(**values)


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskInput:
    """Everything the score looks at for one finding (vulnerability x asset)."""

    vulnerability: str
    """The vulnerability id (``CVE-2021-44228``)."""
    asset: str = ""
    """The asset id (only used to break ties in :func:`rank_key`)."""
    cvss: CvssInfo | None = None
    """The best CVSS vector known, parsed; None without one."""
    cvss_source: str | None = None
    """The advisory the vector came from (``PYSEC-2021-1``), for explanations."""
    severity: Severity = Severity.UNKNOWN
    """Qualitative severity (used when there is no vector or no EPSS score)."""
    kev: bool = False
    """Listed in CISA KEV."""
    kev_date_added: dt.date | None = None
    """KEV ``dateAdded``."""
    kev_due_date: dt.date | None = None
    """KEV ``dueDate``."""
    kev_ransomware: bool = False
    """KEV ``knownRansomwareCampaignUse == "Known"``."""
    epss: float | None = None
    """FIRST EPSS probability, 0..1."""
    epss_percentile: float | None = None
    """FIRST EPSS percentile, 0..1."""
    epss_date: dt.date | None = None
    """The EPSS model/score date."""
    fix_available: bool = False
    """A fixed version exists for this asset's ecosystem."""
    environment: Environment = Environment.PROD
    """Asset environment (fleet file)."""
    criticality: int = 3
    """Asset criticality 1..5 (fleet file)."""
    internet_exposed: bool = False
    """Asset reachable from the internet (fleet file)."""
    data_sensitivity: int = 3
    """Asset data sensitivity 1..5 (fleet file)."""
    tags: tuple[str, ...] = ()
    """Asset tags; compensating controls among them (``waf``, ``isolated``, ``segmented``)."""


FactorValue = str | float | int | bool | None
"""The raw input value a factor shows."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Factor:
    """One multiplicative term of the score, with where its input came from."""

    name: str
    """``epss``, ``kev``, ``internet_exposed``, ``control:waf``, ``cvss_impact``, ..."""
    value: FactorValue
    """The raw input (EPSS probability, True/False, criticality level, the CVSS vector)."""
    source: str
    """Where the input came from (``FIRST EPSS 2026-01-30``, ``CISA KEV``, ``fleet file``)."""
    effect: float
    """The multiplier it contributes (1.0 = no effect)."""
    share: float
    """``|ln effect| / Σ |ln effect|`` over all factors (see the module docstring)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskScore:
    """The score of one finding, its SSVC decision, and the factors behind both."""

    vulnerability: str
    """The vulnerability id."""
    asset: str
    """The asset id (may be empty)."""
    score: float
    """100 × likelihood × impact, in [0, 100]."""
    likelihood: float
    """Probability-like exploitation likelihood, in (0, 1]."""
    impact: float
    """Harm if exploited, in (0, 1]."""
    ssvc: Decision
    """The SSVC deployer decision."""
    ssvc_inputs: SsvcInputs
    """The SSVC decision points as derived."""
    factors: tuple[Factor, ...]
    """Every term of the score, in formula order."""


def _fleet(name: str) -> str:
    return f"fleet file ({name})"


def score(inp: RiskInput, weights: RiskWeights | None = None) -> RiskScore:
    """Score one finding (formula in the module docstring). Pure and deterministic."""
    w = weights if weights is not None else RiskWeights()
    terms: list[tuple[str, FactorValue, str, float]] = []

    # --- likelihood
    if inp.epss is not None:
        base = max(w.likelihood_floor, min(1.0, inp.epss))
        date = f" {inp.epss_date.isoformat()}" if inp.epss_date else ""
        terms.append(("epss", inp.epss, f"FIRST EPSS{date}", base))
    else:
        base = max(w.likelihood_floor, w.severity_prior[inp.severity])
        terms.append(
            (
                "severity_prior",
                inp.severity.value,
                f"policy risk.severity_prior.{inp.severity.value} (no EPSS score)",
                base,
            )
        )
    p = base
    kev_source = "CISA KEV"
    if inp.kev_date_added is not None:
        kev_source += f" (added {inp.kev_date_added.isoformat()}"
        if inp.kev_due_date is not None:
            kev_source += f", due {inp.kev_due_date.isoformat()}"
        kev_source += ")"
    raised = max(p, w.kev_floor) if inp.kev else p
    terms.append(("kev", inp.kev, kev_source if inp.kev else "CISA KEV (not listed)", raised / p))
    p = raised
    if inp.kev and inp.kev_ransomware:
        raised = max(p, w.kev_ransomware_floor)
        terms.append(("kev_ransomware", True, kev_source, raised / p))
        p = raised
    exposed = min(1.0, p * w.internet_exposed_factor) if inp.internet_exposed else p
    terms.append(
        ("internet_exposed", inp.internet_exposed, _fleet("internet_exposed"), exposed / p)
    )
    p = exposed
    for tag in sorted(set(inp.tags)):
        factor = w.control_factors.get(tag)
        if factor is not None:
            terms.append((f"control:{tag}", True, _fleet(f"tag {tag!r}"), factor))
            p *= factor
    likelihood = p

    # --- impact
    if inp.cvss is not None:
        c = inp.cvss
        cia = (c.confidentiality, c.integrity, c.availability)
        agg = max(cia) if w.cia_aggregate is CiaAggregate.MAX else sum(cia) / 3
        origin = f" from {inp.cvss_source}" if inp.cvss_source else ""
        terms.append(
            ("cvss_impact", c.vector, f"{c.label} vector{origin}", max(w.impact_floor, agg))
        )
    else:
        terms.append(
            (
                "severity_impact",
                inp.severity.value,
                f"policy risk.severity_impact.{inp.severity.value} (no CVSS vector)",
                max(w.impact_floor, w.severity_impact[inp.severity]),
            )
        )
    impact = terms[-1][3]
    for name, value, table in (
        ("criticality", inp.criticality, w.criticality_factors),
        ("data_sensitivity", inp.data_sensitivity, w.sensitivity_factors),
    ):
        terms.append((name, value, _fleet(name), table[value]))
        impact *= table[value]
    env = w.environment_factors[inp.environment]
    terms.append(("environment", inp.environment.value, _fleet("environment"), env))
    impact *= env
    # Fix availability does not change the risk; it is shown so explain tells the whole story.
    terms.append(("fix_available", inp.fix_available, "advisory fix data", 1.0))

    logs = [abs(math.log(effect)) for _, _, _, effect in terms]
    total = sum(logs)
    factors = tuple(
        Factor(
            name=name,
            value=value,
            source=source,
            effect=effect,
            share=(lg / total) if total > 0 else 0.0,
        )
        for (name, value, source, effect), lg in zip(terms, logs, strict=True)
    )

    inputs = SsvcInputs(
        exploitation=ssvc.exploitation(inp.kev, inp.epss_percentile, w.poc_epss_percentile),
        exposure=ssvc.exposure(inp.internet_exposed, inp.tags),
        automatable=Automatable.YES if inp.cvss and inp.cvss.automatable else Automatable.NO,
        human_impact=ssvc.human_impact(inp.criticality, inp.data_sensitivity, inp.environment),
    )
    return RiskScore(
        vulnerability=inp.vulnerability,
        asset=inp.asset,
        score=100.0 * likelihood * impact,
        likelihood=likelihood,
        impact=impact,
        ssvc=ssvc.decide(
            inputs.exploitation, inputs.exposure, inputs.automatable, inputs.human_impact
        ),
        ssvc_inputs=inputs,
        factors=factors,
    )


def rank_key(result: RiskScore) -> tuple[float, int, str, str]:
    """Sort key: highest score first, then the more urgent SSVC decision, then ids.

    >>> a = score(RiskInput(vulnerability="CVE-1", epss=0.5))
    >>> b = score(RiskInput(vulnerability="CVE-2", epss=0.1))
    >>> [r.vulnerability for r in sorted([b, a], key=rank_key)]
    ['CVE-1', 'CVE-2']
    """
    return (-result.score, -result.ssvc.rank, result.vulnerability, result.asset)
