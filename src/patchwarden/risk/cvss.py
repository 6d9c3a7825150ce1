"""CVSS v2 / v3.x / v4.0 vectors parsed into the numbers the risk model uses.

Parsing and scoring is the ``cvss`` library's; this module only reads the metrics it needs:

* **C/I/A impact** in [0, 1]. CVSS v3.1 weights (specification section 7.4: High 0.56,
  Low 0.22, None 0) normalised so that High = 1: ``N=0, L=0.22/0.56≈0.393, H=1``. CVSS v4.0
  has no such weights; its vulnerable-system metrics VC/VI/VA use the same N/L/H mapping.
  CVSS v2 (specification section 3.2.1: None 0, Partial 0.275, Complete 0.660) normalised so
  that Complete = 1: ``N=0, P≈0.417, C=1``.
* **Attack vector**: network / adjacent / local / physical (v2 has no physical).
* **Automatable**: CISA's SSVC guidance ("Automatable" decision point v2.0.0) says a
  vulnerability is likely automatable when it can be reached over the network with no
  further obstacle. patchwarden reads that as: ``AV:N`` and ``AC:L`` and no privileges
  (v3/v4 ``PR:N``, v2 ``Au:N``) and no user interaction (v3/v4 ``UI:N``) and, for v4,
  no attack requirements (``AT:N``). A v4 vector that states the supplemental ``AU:Y``/``AU:N``
  metric is taken at its word.

A malformed vector (or a non-CVSS severity type) gives ``None``; it never raises.

>>> info = parse_cvss("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:L/A:N")
>>> info.version, info.base_score, info.severity, info.automatable
('3.1', 8.2, <Severity.HIGH: 'high'>, True)
>>> info.confidentiality, round(info.integrity, 3), info.availability
(1.0, 0.393, 0.0)
>>> parse_cvss("CVSS_V3", "CVSS:3.1/AV:N/AC:L") is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from patchwarden.model import Severity, SeverityScore
from patchwarden.severity import rating


class AttackVector(StrEnum):
    """How the vulnerable component is reached (CVSS ``AV``)."""

    NETWORK = "network"
    ADJACENT = "adjacent"
    LOCAL = "local"
    PHYSICAL = "physical"


_AV = {
    "N": AttackVector.NETWORK,
    "A": AttackVector.ADJACENT,
    "L": AttackVector.LOCAL,
    "P": AttackVector.PHYSICAL,
}
_V3_CIA = {"N": 0.0, "L": 0.22 / 0.56, "H": 1.0}
"""CVSS v3.1 section 7.4 C/I/A weights divided by the High weight (0.56)."""
_V2_CIA = {"N": 0.0, "P": 0.275 / 0.660, "C": 1.0}
"""CVSS v2 section 3.2.1 C/I/A weights divided by the Complete weight (0.660)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CvssInfo:
    """The parts of one CVSS vector the risk model uses."""

    version: str
    """``2.0``, ``3.0``, ``3.1`` or ``4.0``."""
    vector: str
    """The vector as given."""
    base_score: float
    """Base score, 0.0-10.0 (the ``cvss`` library's computation)."""
    severity: Severity
    """Qualitative rating (v3/v4 scale; v2 with NVD's low/medium/high bands)."""
    confidentiality: float
    """Confidentiality impact on the vulnerable system, 0..1."""
    integrity: float
    """Integrity impact on the vulnerable system, 0..1."""
    availability: float
    """Availability impact on the vulnerable system, 0..1."""
    attack_vector: AttackVector
    """How the vulnerable component is reached."""
    automatable: bool
    """Whether SSVC "Automatable" is ``yes`` (see the module docstring for the rule)."""

    @property
    def label(self) -> str:
        """``CVSS:3.1``-style label for reports.

        >>> parse_cvss("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P/A:P").label
        'CVSS:2.0'
        """
        return f"CVSS:{self.version}"


def parse_cvss(kind: str, vector: str) -> CvssInfo | None:
    """Parse one OSV ``severity[]`` entry (``type`` and ``score``); None if not a valid vector.

    >>> v4 = parse_cvss(
    ...     "CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
    ... )
    >>> v4.base_score, v4.severity, v4.automatable, v4.attack_vector
    (9.3, <Severity.CRITICAL: 'critical'>, True, <AttackVector.NETWORK: 'network'>)
    >>> v2 = parse_cvss("CVSS_V2", "AV:L/AC:L/Au:N/C:C/I:N/A:P")
    >>> v2.base_score, v2.severity, v2.automatable, v2.confidentiality, round(v2.availability, 3)
    (5.6, <Severity.MEDIUM: 'medium'>, False, 1.0, 0.417)
    >>> parse_cvss("Ubuntu", "high") is None, parse_cvss("CVSS_V4", "garbage") is None
    (True, True)
    """
    try:
        if kind == "CVSS_V3":
            return _v3(vector)
        if kind == "CVSS_V4":
            return _v4(vector)
        if kind == "CVSS_V2":
            return _v2(vector)
    except (CVSSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None
    return None


def from_severity(entry: SeverityScore) -> CvssInfo | None:
    """Parse a :class:`~patchwarden.model.SeverityScore`; None when it is not a valid vector."""
    return parse_cvss(entry.type, entry.score)


def _v3(vector: str) -> CvssInfo:
    c = CVSS3(vector)
    m = c.metrics
    score = float(c.scores()[0])
    version = "3.1" if vector.startswith("CVSS:3.1/") else "3.0"
    return CvssInfo(
        version=version,
        vector=vector,
        base_score=score,
        severity=rating(score),
        confidentiality=_V3_CIA[m["C"]],
        integrity=_V3_CIA[m["I"]],
        availability=_V3_CIA[m["A"]],
        attack_vector=_AV[m["AV"]],
        automatable=m["AV"] == "N" and m["AC"] == "L" and m["PR"] == "N" and m["UI"] == "N",
    )


def _v4(vector: str) -> CvssInfo:
    c = CVSS4(vector)
    m = c.metrics
    score = float(c.base_score)
    if m.get("AU") in {"Y", "N"}:
        automatable = m["AU"] == "Y"
    else:
        automatable = (
            m["AV"] == "N"
            and m["AC"] == "L"
            and m["AT"] == "N"
            and m["PR"] == "N"
            and m["UI"] == "N"
        )
    return CvssInfo(
        version="4.0",
        vector=vector,
        base_score=score,
        severity=rating(score),
        confidentiality=_V3_CIA[m["VC"]],
        integrity=_V3_CIA[m["VI"]],
        availability=_V3_CIA[m["VA"]],
        attack_vector=_AV[m["AV"]],
        automatable=automatable,
    )


def _v2(vector: str) -> CvssInfo:
    c = CVSS2(vector)
    m = c.metrics
    score = float(c.scores()[0])
    # NVD's CVSS v2 bands (as patchwarden.severity.best uses): low < 4.0 <= medium < 7.0 <= high.
    severity = Severity.HIGH if score >= 7.0 else Severity.MEDIUM if score >= 4.0 else Severity.LOW
    return CvssInfo(
        version="2.0",
        vector=vector,
        base_score=score,
        severity=severity,
        confidentiality=_V2_CIA[m["C"]],
        integrity=_V2_CIA[m["I"]],
        availability=_V2_CIA[m["A"]],
        attack_vector=_AV[m["AV"]],
        automatable=m["AV"] == "N" and m["AC"] == "L" and m["Au"] == "N",
    )
