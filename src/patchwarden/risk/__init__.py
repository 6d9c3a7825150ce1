"""Risk: an explainable expected-harm score and the CISA SSVC deployer decision per finding.

* :mod:`patchwarden.risk.cvss` parses CVSS v2/v3/v4 vectors into the numbers the model uses.
* :mod:`patchwarden.risk.ssvc` is the SSVC deployer decision table and how patchwarden derives
  its inputs.
* :mod:`patchwarden.risk.model` is the score (formula in its docstring).
"""

from __future__ import annotations

from patchwarden.risk.cvss import AttackVector, CvssInfo, parse_cvss
from patchwarden.risk.model import (
    CiaAggregate,
    Factor,
    RiskInput,
    RiskScore,
    RiskWeights,
    rank_key,
    score,
)
from patchwarden.risk.ssvc import (
    Automatable,
    Decision,
    Exploitation,
    HumanImpact,
    SsvcInputs,
    SystemExposure,
    decide,
)

__all__ = [
    "AttackVector",
    "Automatable",
    "CiaAggregate",
    "CvssInfo",
    "Decision",
    "Exploitation",
    "Factor",
    "HumanImpact",
    "RiskInput",
    "RiskScore",
    "RiskWeights",
    "SsvcInputs",
    "SystemExposure",
    "decide",
    "parse_cvss",
    "rank_key",
    "score",
]
