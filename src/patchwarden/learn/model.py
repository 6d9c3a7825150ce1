"""The patch-failure model: hierarchical beta-binomial smoothing of observed failure rates.

Every outcome of a rollout (a change applied, rolled back or failed) is an observation of its
actions' features (:mod:`patchwarden.learn.features`). The model counts failures ``f`` and
trials ``n`` at four nested levels::

    global -> ecosystem (Debian, PyPI, ...) -> package (ecosystem/name)
           -> (package, version jump: major/minor/patch/distro_revision)

and estimates each group's failure probability as the mean of a Beta posterior whose prior is
centred on the parent group's estimate ``m`` with a strength of ``kappa`` pseudo-observations
(Efron & Morris 1975; Gelman et al., *Bayesian Data Analysis*, 3rd ed., section 5.3, the rat
tumour example)::

    p(group) = (f + kappa_level * m(parent)) / (n + kappa_level)

so a package seen twice stays near its ecosystem's rate, and one seen 200 times speaks for
itself. The global rate uses the Jeffreys prior Beta(1/2, 1/2).

**Prior strengths** (one ``kappa`` per level) are estimated from the data by the method of
moments for the beta-binomial (Kleinman 1973, *Biometrics* 29:213; the intra-class
correlation ``rho = 1 / (1 + kappa)``): with ``d_g = f_g/n_g - m_g`` the deviation of group
``g`` from its parent's estimate, ``E[n_g d_g^2] = m_g (1 - m_g) (1 + rho (n_g - 1))``, hence::

    rho = (sum n_g d_g^2 - sum m_g (1 - m_g)) / sum m_g (1 - m_g) (n_g - 1)

``kappa = 1/rho - 1``, clipped to ``[KAPPA_MIN, KAPPA_MAX]``: no more spread between groups
than binomial noise (``rho <= 0``) pools the groups into their parent (``KAPPA_MAX``). A level
with fewer than two groups, or no group with two trials, cannot be estimated and takes
``KAPPA_DEFAULT``.

A prediction walks down the levels as far as the action's groups have been observed; its
**basis** names that deepest level and the counts and strengths on the way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from patchwarden.learn.features import ActionFeatures

KAPPA_MIN = 1.0
"""Smallest prior strength (a group's own data outweigh its parent after one trial)."""
KAPPA_MAX = 1000.0
"""Largest prior strength (groups indistinguishable from their parent)."""
KAPPA_DEFAULT = 10.0
"""Prior strength of a level whose spread cannot be estimated (ten pseudo-observations)."""
JEFFREYS = (0.5, 0.5)
"""Prior Beta(a, b) of the global failure rate."""

METHOD = "beta-binomial"
"""The method name stored with a fitted model."""


class Level(StrEnum):
    """A level of the hierarchy, coarsest first."""

    GLOBAL = "global"
    ECOSYSTEM = "ecosystem"
    PACKAGE = "package"
    JUMP = "jump"
    """(package, version jump)."""


def group_keys(f: ActionFeatures) -> dict[Level, str]:
    """The key of ``f``'s group at each level.

    >>> from patchwarden.plan.changes import UpgradeLevel
    >>> f = ActionFeatures(ecosystem="PyPI", package="urllib3", jump=UpgradeLevel.PATCH,
    ...     reboot=False, os="PyPI", role="-", environment="prod")
    >>> list(group_keys(f).values())
    ['*', 'PyPI', 'PyPI/urllib3', 'PyPI/urllib3@patch']
    """
    return {
        Level.GLOBAL: "*",
        Level.ECOSYSTEM: f.ecosystem,
        Level.PACKAGE: f.package_key,
        Level.JUMP: f"{f.package_key}@{f.jump.value}",
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """One labelled outcome: an action's features and whether its change failed."""

    features: ActionFeatures
    """The action."""
    failed: bool
    """Its change was rolled back or failed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Counts:
    """Failures out of trials in one group."""

    failures: int
    trials: int

    @property
    def rate(self) -> float:
        """The raw rate (0 for no trials)."""
        return self.failures / self.trials if self.trials else 0.0


def smooth(failures: float, trials: float, parent: float, strength: float) -> float:
    """Posterior mean of a group's rate under a Beta prior centred on ``parent``.

    >>> smooth(0, 0, 0.1, 10)  # no data: the parent's rate
    0.1
    >>> smooth(4, 10, 0.1, 10)  # halfway between 0.4 and 0.1 with ten pseudo-observations
    0.25
    """
    return (failures + strength * parent) / (trials + strength)


def moment_strength(groups: Sequence[tuple[Counts, float]]) -> float | None:
    """The prior strength ``kappa`` of one level by the method of moments (module docstring).

    ``groups`` are (counts, parent estimate) pairs. None when the level cannot be estimated
    (fewer than two groups, or no group with two trials).

    >>> # rates 0.4 and 0 around 0.2: rho = (1.6 - 0.32) / 6.08, kappa = 1/rho - 1
    >>> round(moment_strength([(Counts(failures=8, trials=20), 0.2),
    ...                        (Counts(failures=0, trials=20), 0.2)]), 3)
    3.75
    >>> moment_strength([(Counts(failures=2, trials=20), 0.1),
    ...                  (Counts(failures=2, trials=20), 0.1)]) == KAPPA_MAX
    True
    """
    usable = [(c, m) for c, m in groups if c.trials > 0]
    if len(usable) < 2 or all(c.trials < 2 for c, _ in usable):
        return None
    num = sum(c.trials * (c.rate - m) ** 2 for c, m in usable) - sum(m * (1 - m) for _, m in usable)
    den = sum(m * (1 - m) * (c.trials - 1) for c, m in usable)
    if den <= 0:
        return None
    rho = num / den
    if rho <= 1.0 / (1.0 + KAPPA_MAX):
        return KAPPA_MAX
    return min(max(1.0 / rho - 1.0, KAPPA_MIN), KAPPA_MAX)


@dataclass(frozen=True, slots=True, kw_only=True)
class BasisStep:
    """One level of a prediction's basis."""

    level: Level
    key: str
    failures: int
    trials: int
    strength: float | None
    """The level's prior strength (None at the global level: the Jeffreys prior)."""
    estimate: float
    """The smoothed rate of this group."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "level": self.level.value,
            "key": self.key,
            "failures": self.failures,
            "trials": self.trials,
            "strength": None if self.strength is None else round(self.strength, 3),
            "estimate": round(self.estimate, 4),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Prediction:
    """P(failure) of one action and why."""

    probability: float
    """The smoothed failure probability of the deepest observed group."""
    level: Level
    """The deepest level at which the action's group has been observed."""
    path: tuple[BasisStep, ...]
    """Every level from global down to ``level``."""

    def basis(self) -> str:
        """One line: the level used and its counts.

        >>> p = Prediction(probability=0.25, level=Level.PACKAGE, path=(BasisStep(
        ...     level=Level.PACKAGE, key="PyPI/a", failures=4, trials=10, strength=10.0,
        ...     estimate=0.25),))
        >>> p.basis()
        'package PyPI/a: 4 of 10 failed, prior strength 10'
        """
        last = self.path[-1]
        prior = "" if last.strength is None else f", prior strength {last.strength:.3g}"
        return f"{last.level.value} {last.key}: {last.failures} of {last.trials} failed{prior}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "probability": round(self.probability, 4),
            "level": self.level.value,
            "basis": self.basis(),
            "path": [s.to_json() for s in self.path],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class FailureModel:
    """A fitted hierarchical beta-binomial model (see the module docstring)."""

    counts: Mapping[Level, Mapping[str, Counts]]
    """Per level, group key -> counts."""
    strengths: Mapping[Level, float]
    """Prior strength of each level below global."""
    estimated: Mapping[Level, bool] = field(default_factory=dict)
    """Whether each level's strength was estimated (False: ``KAPPA_DEFAULT``)."""

    @property
    def observations(self) -> int:
        """How many outcomes it was fitted on."""
        total = self.counts.get(Level.GLOBAL, {}).get("*")
        return 0 if total is None else total.trials

    @property
    def base_rate(self) -> float:
        """The smoothed global failure rate."""
        total = self.counts.get(Level.GLOBAL, {}).get("*", Counts(failures=0, trials=0))
        a, b = JEFFREYS
        return (total.failures + a) / (total.trials + a + b)

    def predict(self, f: ActionFeatures) -> Prediction:
        """P(failure) of an action with features ``f``, with its basis."""
        keys = group_keys(f)
        total = self.counts.get(Level.GLOBAL, {}).get("*", Counts(failures=0, trials=0))
        estimate = self.base_rate
        path = [
            BasisStep(
                level=Level.GLOBAL,
                key="*",
                failures=total.failures,
                trials=total.trials,
                strength=None,
                estimate=estimate,
            )
        ]
        for level in (Level.ECOSYSTEM, Level.PACKAGE, Level.JUMP):
            c = self.counts.get(level, {}).get(keys[level])
            if c is None or c.trials == 0:
                break
            kappa = self.strengths[level]
            estimate = smooth(c.failures, c.trials, estimate, kappa)
            path.append(
                BasisStep(
                    level=level,
                    key=keys[level],
                    failures=c.failures,
                    trials=c.trials,
                    strength=kappa,
                    estimate=estimate,
                )
            )
        return Prediction(probability=estimate, level=path[-1].level, path=tuple(path))

    def to_json(self) -> dict[str, Any]:
        """The parameters as JSON (stored in ``learn_models.params``)."""
        return {
            "method": METHOD,
            "strengths": {k.value: v for k, v in self.strengths.items()},
            "estimated": {k.value: v for k, v in self.estimated.items()},
            "counts": {
                level.value: {k: [c.failures, c.trials] for k, c in sorted(groups.items())}
                for level, groups in self.counts.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FailureModel:
        """The model :meth:`to_json` wrote; ``ValueError`` naming the field when malformed."""
        try:
            if data["method"] != METHOD:
                raise ValueError(f"method {data['method']!r} is not {METHOD!r}")
            return cls(
                counts={
                    Level(level): {
                        str(k): Counts(failures=int(v[0]), trials=int(v[1]))
                        for k, v in groups.items()
                    }
                    for level, groups in data["counts"].items()
                },
                strengths={Level(k): float(v) for k, v in data["strengths"].items()},
                estimated={Level(k): bool(v) for k, v in data.get("estimated", {}).items()},
            )
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"model parameters: bad or missing field {exc}") from exc


def fit(observations: Iterable[Observation]) -> FailureModel:
    """Fit the model: count per group, then estimate each level's strength top-down."""
    raw: dict[Level, dict[str, list[int]]] = {level: {} for level in Level}
    parent_of: dict[Level, dict[str, str]] = {level: {} for level in Level}
    order = list(Level)
    for obs in observations:
        keys = group_keys(obs.features)
        for i, level in enumerate(order):
            c = raw[level].setdefault(keys[level], [0, 0])
            c[0] += int(obs.failed)
            c[1] += 1
            if i:
                parent_of[level][keys[level]] = keys[order[i - 1]]
    counts = {
        level: {k: Counts(failures=v[0], trials=v[1]) for k, v in groups.items()}
        for level, groups in raw.items()
    }
    total = counts[Level.GLOBAL].get("*", Counts(failures=0, trials=0))
    a, b = JEFFREYS
    estimates: dict[str, float] = {"*": (total.failures + a) / (total.trials + a + b)}
    strengths: dict[Level, float] = {}
    estimated: dict[Level, bool] = {}
    for level in order[1:]:
        groups = [(c, estimates[parent_of[level][k]]) for k, c in counts[level].items()]
        kappa = moment_strength(groups)
        estimated[level] = kappa is not None
        strengths[level] = KAPPA_DEFAULT if kappa is None else kappa
        for k, n in counts[level].items():
            estimates[k] = smooth(
                n.failures, n.trials, estimates[parent_of[level][k]], strengths[level]
            )
    return FailureModel(counts=counts, strengths=strengths, estimated=estimated)


def data_digest(rows: Iterable[Mapping[str, Any]]) -> str:
    """sha256 of the training records (canonical JSON, sorted), to tell refits apart."""
    lines = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
