"""CISA/CERT SSVC: the deployer "patch application priority" decision, and its inputs.

The table is CERT/CC's "Defer, Scheduled, Out-of-Cycle, Immediate" v1.0.0 (72 rows), bundled
verbatim in ``risk/data/deployer_patch_application_priority_1_0_0.csv`` (see SOURCES.md there)
and loaded at import; :func:`decide` is a lookup in it, never a re-implementation.

How patchwarden derives each input (:func:`derive`):

* **Exploitation** (v1.1.0): ``active`` when the CVE is in CISA KEV (KEV lists only
  vulnerabilities with reliable evidence of exploitation in the wild). ``public_poc`` when the
  FIRST EPSS percentile is at or above a policy threshold (default 0.90). This is a *proxy*:
  SSVC asks whether a public proof of concept exists, patchwarden has no PoC feed, and a high
  EPSS percentile is the best available sign that exploit code is around (EPSS uses
  Metasploit/ExploitDB modules as features). Otherwise ``none``.
* **System Exposure** (v1.0.1): ``open`` when the asset is ``internet_exposed``; ``small`` when
  it carries the ``isolated`` tag; otherwise ``controlled``.
* **Automatable** (v2.0.0): from the CVSS vector (:attr:`CvssInfo.automatable
  <patchwarden.risk.cvss.CvssInfo.automatable>`); ``no`` when there is no vector.
* **Human Impact** (v2.0.2): from the fleet file's criticality (1-5, the mission impact) and
  data sensitivity (1-5, the harm of a breach) -- see :func:`human_impact`.

>>> decide(Exploitation.ACTIVE, SystemExposure.OPEN, Automatable.YES, HumanImpact.HIGH)
<Decision.IMMEDIATE: 'immediate'>
>>> decide(Exploitation.NONE, SystemExposure.SMALL, Automatable.NO, HumanImpact.LOW)
<Decision.DEFER: 'defer'>
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources

from patchwarden.model import Environment


class Exploitation(StrEnum):
    """SSVC Exploitation v1.1.0."""

    NONE = "none"
    PUBLIC_POC = "public_poc"
    ACTIVE = "active"


class SystemExposure(StrEnum):
    """SSVC System Exposure v1.0.1."""

    SMALL = "small"
    CONTROLLED = "controlled"
    OPEN = "open"


class Automatable(StrEnum):
    """SSVC Automatable v2.0.0."""

    NO = "no"
    YES = "yes"


class HumanImpact(StrEnum):
    """SSVC Human Impact v2.0.2."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    VERY_HIGH = "very_high"


class Decision(StrEnum):
    """SSVC deployer decision, least to most urgent."""

    DEFER = "defer"
    SCHEDULED = "scheduled"
    OUT_OF_CYCLE = "out_of_cycle"
    IMMEDIATE = "immediate"

    @property
    def rank(self) -> int:
        """0 (defer) .. 3 (immediate).

        >>> Decision.IMMEDIATE.rank > Decision.OUT_OF_CYCLE.rank > Decision.DEFER.rank
        True
        """
        return _DECISION_RANK[self]


_DECISION_RANK = {d: i for i, d in enumerate(Decision)}


@dataclass(frozen=True, slots=True, kw_only=True)
class SsvcInputs:
    """The four decision points of the deployer table, as patchwarden derived them."""

    exploitation: Exploitation
    """State of exploitation (KEV = active; high EPSS percentile = PoC proxy)."""
    exposure: SystemExposure
    """Accessible attack surface of the asset."""
    automatable: Automatable
    """Whether attackers can automate exploitation (from CVSS)."""
    human_impact: HumanImpact
    """Mission and safety impact (from criticality and data sensitivity)."""


TABLE_FILE = "deployer_patch_application_priority_1_0_0.csv"
"""The bundled CERT/CC table (verbatim)."""


def _csv_value(text: str) -> str:
    """The table's spelling to the enum value: ``public poc`` -> ``public_poc``."""
    return text.strip().lower().replace(" ", "_").replace("-", "_")


def load_table() -> dict[tuple[Exploitation, SystemExposure, Automatable, HumanImpact], Decision]:
    """Read the bundled decision table; every row, keyed by its four inputs."""
    text = resources.files("patchwarden.risk").joinpath("data", TABLE_FILE).read_text("utf-8")
    table: dict[tuple[Exploitation, SystemExposure, Automatable, HumanImpact], Decision] = {}
    reader = csv.reader(text.splitlines())
    next(reader)  # header: row, Exploitation v1.1.0, System Exposure v1.0.1, ...
    for row in reader:
        _, e, x, a, h, d = row
        key = (
            Exploitation(_csv_value(e)),
            SystemExposure(_csv_value(x)),
            Automatable(_csv_value(a)),
            HumanImpact(_csv_value(h)),
        )
        table[key] = Decision(_csv_value(d))
    return table


TABLE = load_table()
"""The deployer decision table (72 entries)."""


def decide(
    exploitation: Exploitation,
    exposure: SystemExposure,
    automatable: Automatable,
    human_impact: HumanImpact,
) -> Decision:
    """The SSVC deployer decision for these inputs (a lookup in the CERT/CC table)."""
    return TABLE[(exploitation, exposure, automatable, human_impact)]


def human_impact(criticality: int, data_sensitivity: int, environment: Environment) -> HumanImpact:
    """Map fleet-file asset attributes onto SSVC Human Impact.

    patchwarden has no safety data; criticality stands for Mission Impact and data
    sensitivity for the harm of a breach. The sum ``criticality + data_sensitivity`` (2..10)
    maps to: 2-4 ``low``, 5-6 ``medium``, 7-8 ``high``, 9-10 ``very_high``. Assets outside
    production (staging, dev) step one level down (their compromise rarely fails the
    mission), never below ``low``. Raising either attribute never lowers the result.

    >>> human_impact(3, 3, Environment.PROD), human_impact(5, 5, Environment.PROD)
    (<HumanImpact.MEDIUM: 'medium'>, <HumanImpact.VERY_HIGH: 'very_high'>)
    >>> human_impact(5, 4, Environment.DEV), human_impact(1, 1, Environment.PROD)
    (<HumanImpact.HIGH: 'high'>, <HumanImpact.LOW: 'low'>)
    """
    total = criticality + data_sensitivity
    level = 0 if total <= 4 else 1 if total <= 6 else 2 if total <= 8 else 3
    if environment is not Environment.PROD:
        level = max(0, level - 1)
    return _HUMAN_IMPACT[level]


_HUMAN_IMPACT = tuple(HumanImpact)


def exploitation(kev: bool, epss_percentile: float | None, poc_threshold: float) -> Exploitation:
    """Exploitation: KEV = active; EPSS percentile >= threshold = public PoC (a proxy).

    >>> t = 0.9
    >>> exploitation(True, None, t), exploitation(False, 0.95, t), exploitation(False, None, t)
    (<Exploitation.ACTIVE: 'active'>, <Exploitation.PUBLIC_POC: 'public_poc'>, \
<Exploitation.NONE: 'none'>)
    """
    if kev:
        return Exploitation.ACTIVE
    if epss_percentile is not None and epss_percentile >= poc_threshold:
        return Exploitation.PUBLIC_POC
    return Exploitation.NONE


def exposure(internet_exposed: bool, tags: tuple[str, ...]) -> SystemExposure:
    """System Exposure: internet-exposed = open; tagged ``isolated`` = small; else controlled.

    >>> exposure(True, ("isolated",)), exposure(False, ("isolated",)), exposure(False, ())
    (<SystemExposure.OPEN: 'open'>, <SystemExposure.SMALL: 'small'>, \
<SystemExposure.CONTROLLED: 'controlled'>)
    """
    if internet_exposed:
        return SystemExposure.OPEN
    if "isolated" in tags:
        return SystemExposure.SMALL
    return SystemExposure.CONTROLLED
