"""Calibration of the patch-failure model on held-out outcomes.

**Split.** By rollout: the newest rollouts (by id) are held out until they hold at least
``test_share`` of the records; the model is fitted on the older ones only, as it would have
been when those rollouts were planned. With a single rollout the split is by time instead (the
last ``test_share`` of its records by finish time).

**Metrics** (lower is better): the Brier score, the mean of ``(p - y)^2`` (Brier 1950), and
the log loss, the mean of ``-(y log p + (1 - y) log(1 - p))`` with ``p`` clipped to
``[1e-15, 1 - 1e-15]`` (as scikit-learn's ``log_loss``). The **baseline** predicts the
training base rate (Jeffreys-smoothed) for every held-out outcome: a model that cannot beat
it has learnt nothing about which patches fail.

**Reliability curve.** Predictions are put in ``bins`` equal-width bins on [0, 1]; per
non-empty bin, the mean prediction against the observed failure rate (a calibrated model lies
on the diagonal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchwarden.learn.model import JEFFREYS, fit
from patchwarden.learn.store import OutcomeRecord

EPS = 1e-15
"""Clip for the log loss."""


def brier(probabilities: Sequence[float], labels: Sequence[bool]) -> float:
    """Mean squared error of probabilities against 0/1 outcomes.

    >>> round(brier([0.9, 0.2], [True, False]), 6)  # (0.01 + 0.04) / 2
    0.025
    """
    _check(probabilities, labels)
    return sum((p - float(y)) ** 2 for p, y in zip(probabilities, labels, strict=True)) / len(
        labels
    )


def log_loss(probabilities: Sequence[float], labels: Sequence[bool]) -> float:
    """Mean negative log-likelihood of 0/1 outcomes.

    >>> round(log_loss([0.5, 0.5], [True, False]), 6)  # log 2
    0.693147
    """
    _check(probabilities, labels)
    total = 0.0
    for p, y in zip(probabilities, labels, strict=True):
        q = min(max(p, EPS), 1 - EPS)
        total -= math.log(q) if y else math.log(1 - q)
    return total / len(labels)


def _check(probabilities: Sequence[float], labels: Sequence[bool]) -> None:
    if len(probabilities) != len(labels):
        raise ValueError(f"{len(probabilities)} probabilities for {len(labels)} labels")
    if not labels:
        raise ValueError("no outcomes to score")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReliabilityBin:
    """One bin of the reliability curve."""

    low: float
    high: float
    count: int
    mean_predicted: float
    observed: float
    """Observed failure rate of the outcomes in the bin."""


def reliability(
    probabilities: Sequence[float], labels: Sequence[bool], bins: int = 10
) -> list[ReliabilityBin]:
    """The non-empty bins of the reliability curve (``bins`` equal-width bins; 1.0 goes last).

    >>> [(b.low, b.count, b.mean_predicted, b.observed)
    ...  for b in reliability([0.05, 0.15, 0.12, 0.95], [False, True, False, True], bins=10)]
    [(0.0, 1, 0.05, 0.0), (0.1, 2, 0.135, 0.5), (0.9, 1, 0.95, 1.0)]
    """
    _check(probabilities, labels)
    groups: dict[int, list[tuple[float, bool]]] = {}
    for p, y in zip(probabilities, labels, strict=True):
        groups.setdefault(min(int(p * bins), bins - 1), []).append((p, y))
    return [
        ReliabilityBin(
            low=i / bins,
            high=(i + 1) / bins,
            count=len(g),
            mean_predicted=round(sum(p for p, _ in g) / len(g), 12),
            observed=sum(y for _, y in g) / len(g),
        )
        for i, g in sorted(groups.items())
    ]


def split(
    records: Sequence[OutcomeRecord], test_share: float = 0.3
) -> tuple[list[OutcomeRecord], list[OutcomeRecord], str]:
    """(train, held out, how) -- rules in the module docstring."""
    if not 0 < test_share < 1:
        raise ValueError(f"test_share must be within (0, 1), got {test_share}")
    rollouts = sorted({r.rollout for r in records})
    want = math.ceil(len(records) * test_share)
    if len(rollouts) >= 2:
        held: set[int] = set()
        for rid in reversed(rollouts[1:]):
            held.add(rid)
            if sum(r.rollout in held for r in records) >= want:
                break
        train = [r for r in records if r.rollout not in held]
        test = [r for r in records if r.rollout in held]
        return train, test, f"by rollout: held out rollouts {sorted(held)}"
    ordered = sorted(records, key=lambda r: (r.at, r.change, r.action))
    cut = len(ordered) - want
    return ordered[:cut], ordered[cut:], "by time within the only rollout"


@dataclass(frozen=True, slots=True, kw_only=True)
class Calibration:
    """The held-out evaluation."""

    split: str
    train: int
    test: int
    test_failures: int
    brier: float
    log_loss: float
    baseline_rate: float
    baseline_brier: float
    baseline_log_loss: float
    bins: tuple[ReliabilityBin, ...]
    verdict: str
    """Whether the model beats the baseline, and why not when it does not."""

    @property
    def beats_baseline(self) -> bool:
        """Lower Brier score than the base-rate baseline."""
        return self.brier < self.baseline_brier

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "split": self.split,
            "train": self.train,
            "test": self.test,
            "test_failures": self.test_failures,
            "brier": round(self.brier, 6),
            "log_loss": round(self.log_loss, 6),
            "baseline": {
                "rate": round(self.baseline_rate, 6),
                "brier": round(self.baseline_brier, 6),
                "log_loss": round(self.baseline_log_loss, 6),
            },
            "beats_baseline": self.beats_baseline,
            "verdict": self.verdict,
            "reliability": [
                {"low": b.low, "high": b.high, "count": b.count,
                 "mean_predicted": round(b.mean_predicted, 6), "observed": round(b.observed, 6)}
                for b in self.bins
            ],
        }  # fmt: skip


class NotEnoughOutcomes(ValueError):
    """Too few outcome records to hold some out."""


def evaluate(records: Sequence[OutcomeRecord], *, test_share: float = 0.3) -> Calibration:
    """Fit on the older records, score the held-out ones against the base-rate baseline."""
    if len(records) < 4:
        raise NotEnoughOutcomes(
            f"{len(records)} outcome records; at least 4 are needed to hold some out "
            "(run rollouts first)"
        )
    train, test, how = split(records, test_share)
    if not train or not test:
        raise NotEnoughOutcomes(f"split {how!r} left {len(train)} to train, {len(test)} to test")
    model = fit(r.observation() for r in train)
    probs = [model.predict(r.features).probability for r in test]
    labels = [r.failed for r in test]
    a, b = JEFFREYS
    rate = (sum(r.failed for r in train) + a) / (len(train) + a + b)
    base = [rate] * len(test)
    cal = Calibration(
        split=how,
        train=len(train),
        test=len(test),
        test_failures=sum(labels),
        brier=brier(probs, labels),
        log_loss=log_loss(probs, labels),
        baseline_rate=rate,
        baseline_brier=brier(base, labels),
        baseline_log_loss=log_loss(base, labels),
        bins=tuple(reliability(probs, labels)),
        verdict="",
    )
    return _with_verdict(cal, train, test)


def _with_verdict(
    cal: Calibration, train: Sequence[OutcomeRecord], test: Sequence[OutcomeRecord]
) -> Calibration:
    from dataclasses import replace

    gain = 1 - cal.brier / cal.baseline_brier if cal.baseline_brier > 0 else 0.0
    if cal.beats_baseline:
        verdict = f"beats the base-rate baseline: Brier {gain:.1%} lower"
    else:
        seen = {r.features.package_key for r in train}
        unseen = sum(r.features.package_key not in seen for r in test)
        reasons = []
        if cal.test_failures in (0, cal.test):
            reasons.append("the held-out outcomes are all of one kind")
        if unseen:
            reasons.append(f"{unseen} of {cal.test} held-out actions are of packages never seen")
        if len(train) < 50:
            reasons.append(f"only {len(train)} training outcomes")
        if not reasons:
            reasons.append("the packages' failure rates do not differ beyond chance")
        verdict = "does not beat the base-rate baseline: " + "; ".join(reasons)
    return replace(cal, verdict=verdict)


def plot_reliability(cal: Calibration, path: Path) -> Path:
    """Write the reliability curve as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    try:
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
        xs = [b.mean_predicted for b in cal.bins]
        ys = [b.observed for b in cal.bins]
        sizes = [20 + 4 * b.count for b in cal.bins]
        ax.plot(xs, ys, color="tab:blue", marker=None)
        ax.scatter(xs, ys, s=sizes, color="tab:blue", label="model (size: outcomes)")
        ax.axhline(cal.baseline_rate, color="tab:orange", label="base rate (baseline)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("predicted P(failure)")
        ax.set_ylabel("observed failure rate")
        ax.set_title(
            f"held out {cal.test}: Brier {cal.brier:.4f} (baseline {cal.baseline_brier:.4f})",
            fontsize=9,
        )
        ax.legend(loc="upper left", fontsize=8)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
