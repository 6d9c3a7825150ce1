"""Unit tests of the patch-failure model: smoothing, strengths, features, calibration metrics."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest

from patchwarden.learn.calibration import brier, evaluate, log_loss, reliability, split
from patchwarden.learn.features import ActionFeatures, features
from patchwarden.learn.model import (
    KAPPA_DEFAULT,
    KAPPA_MAX,
    Counts,
    FailureModel,
    Level,
    Observation,
    fit,
    moment_strength,
    smooth,
)
from patchwarden.learn.store import OutcomeRecord
from patchwarden.plan.changes import UpgradeLevel

HERE = Path(__file__).parent


def _cases(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((HERE / name).read_text())
    return data


@pytest.mark.parametrize("case", _cases("cases_smoothing.json"), ids=lambda c: c["description"])
def test_smoothing_cases(case: dict[str, Any]) -> None:
    i = case["input"]
    got = smooth(i["failures"], i["trials"], i["parent"], i["strength"])
    assert got == pytest.approx(case["expected"], rel=1e-12)


@pytest.mark.parametrize("case", _cases("cases_jumps.json"), ids=lambda c: c["description"])
def test_version_jump_kinds(case: dict[str, Any]) -> None:
    i = case["input"]
    f = features(
        {"id": "x", "ecosystem": i["ecosystem"], "package": "p",
         "installed_version": i["installed"], "target_version": i["target"]}
    )  # fmt: skip
    assert f.jump.value == case["expected"]


def test_features_reboot_os_role() -> None:
    kernel = features(
        {"id": "h/linux", "ecosystem": "Debian:12", "package": "linux",
         "binaries": ["linux-image-6.1.0-18-amd64"], "installed_version": "6.1.76-1",
         "target_version": "6.1.85-1"},
        distro="Debian:12", service="db", environment="staging",
    )  # fmt: skip
    assert (kernel.reboot, kernel.os, kernel.role, kernel.environment) == (
        True, "Debian:12", "db", "staging",
    )  # fmt: skip
    assert kernel.package_key == "Debian/linux"
    lib = features(
        {"id": "h/u", "ecosystem": "PyPI", "package": "urllib3",
         "installed_version": "1.24.1", "target_version": "1.24.2"}
    )  # fmt: skip
    assert (lib.reboot, lib.os, lib.role) == (False, "PyPI", "-")
    with pytest.raises(ValueError, match="action 'h/x' has no 'target_version' field"):
        features({"id": "h/x", "ecosystem": "PyPI", "package": "x", "installed_version": "1"})


def _f(package: str, jump: UpgradeLevel = UpgradeLevel.PATCH, eco: str = "PyPI") -> ActionFeatures:
    return ActionFeatures(ecosystem=eco, package=package, jump=jump, reboot=False, os=eco,
                          role="-", environment="prod")  # fmt: skip


def _obs(package: str, failures: int, trials: int, **kw: Any) -> list[Observation]:
    return [Observation(features=_f(package, **kw), failed=i < failures) for i in range(trials)]


def test_strength_estimated_and_shrinks_toward_the_parent() -> None:
    data = _obs("a", 40, 100) + _obs("b", 2, 100) + _obs("c", 1, 3)
    model = fit(data)
    assert model.estimated[Level.PACKAGE]
    kappa = model.strengths[Level.PACKAGE]
    assert 1.0 <= kappa < 50  # packages clearly differ: a weak prior
    eco = model.predict(_f("unseen")).probability
    a, b, c = (model.predict(_f(p)).probability for p in "abc")
    assert a > eco > b
    # shrinkage: each estimate lies between its raw rate and the parent's (ecosystem) rate
    assert 0.4 > a > eco
    assert 0.02 < b < eco
    assert min(1 / 3, eco) < c < max(1 / 3, eco)
    # the sparse package is pulled further (relative to its distance) than the dense one
    assert abs(c - 1 / 3) / abs(eco - 1 / 3) > abs(a - 0.4) / abs(eco - 0.4)
    # an unseen package falls back to its ecosystem; basis says so
    p = model.predict(_f("unseen"))
    assert p.level is Level.ECOSYSTEM
    assert (
        p.basis() == f"ecosystem PyPI: 43 of 203 failed, prior strength {p.path[-1].strength:.3g}"
    )


def test_no_spread_pools_and_one_group_takes_the_default() -> None:
    same = _obs("a", 5, 100) + _obs("b", 5, 100)
    assert fit(same).strengths[Level.PACKAGE] == KAPPA_MAX
    one = _obs("a", 5, 100)
    model = fit(one)
    assert not model.estimated[Level.PACKAGE]
    assert model.strengths[Level.PACKAGE] == KAPPA_DEFAULT
    assert (
        moment_strength([(Counts(failures=1, trials=1), 0.5), (Counts(failures=0, trials=1), 0.5)])
        is None
    )


@pytest.mark.parametrize("kappa", [1.0, 10.0, 1000.0])
def test_smoothing_is_monotone_in_failures(kappa: float) -> None:
    values = [smooth(f, 20, 0.1, kappa) for f in range(21)]
    assert all(x < y for x, y in itertools.pairwise(values))


def test_fitted_model_is_monotone_in_a_packages_failures() -> None:
    base = _obs("b", 2, 50) + _obs("c", 10, 50)
    probs = [fit(base + _obs("a", k, 30)).predict(_f("a")).probability for k in range(0, 31, 3)]
    assert probs == sorted(probs)
    assert probs[0] < probs[-1]


def test_jump_level_separates_major_from_patch() -> None:
    data = _obs("a", 1, 60, jump=UpgradeLevel.PATCH) + _obs("a", 12, 30, jump=UpgradeLevel.MAJOR)
    data += _obs("b", 3, 60)
    model = fit(data)
    major = model.predict(_f("a", UpgradeLevel.MAJOR))
    patch = model.predict(_f("a", UpgradeLevel.PATCH))
    assert major.level is Level.JUMP
    assert major.probability > patch.probability
    # a jump never seen for the package: the package level decides
    minor = model.predict(_f("a", UpgradeLevel.MINOR))
    assert minor.level is Level.PACKAGE


def test_model_json_round_trip_and_bad_params() -> None:
    model = fit(_obs("a", 3, 10) + _obs("b", 1, 10))
    again = FailureModel.from_json(json.loads(json.dumps(model.to_json())))
    assert again.predict(_f("a")) == model.predict(_f("a"))
    with pytest.raises(ValueError, match="bad or missing field 'counts'"):
        FailureModel.from_json({"method": "beta-binomial", "strengths": {}})
    with pytest.raises(ValueError, match="method 'gbm' is not 'beta-binomial'"):
        FailureModel.from_json({"method": "gbm"})


def test_brier_and_log_loss_by_hand() -> None:
    probs, labels = [0.8, 0.3, 0.5, 0.0], [True, False, True, False]
    # (0.04 + 0.09 + 0.25 + 0) / 4
    assert brier(probs, labels) == pytest.approx(0.095)
    expected = -(math.log(0.8) + math.log(0.7) + math.log(0.5) + math.log(1 - 1e-15)) / 4
    assert log_loss(probs, labels) == pytest.approx(expected)
    assert log_loss([0.0], [True]) == pytest.approx(-math.log(1e-15))  # clipped, finite
    with pytest.raises(ValueError, match="2 probabilities for 1 labels"):
        brier([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="no outcomes to score"):
        log_loss([], [])


def test_reliability_bins_by_hand() -> None:
    probs = [0.05, 0.08, 0.31, 0.39, 0.35, 1.0]
    labels = [False, False, True, False, False, True]
    bins = reliability(probs, labels, bins=5)
    assert [(b.low, b.high, b.count) for b in bins] == [(0.0, 0.2, 2), (0.2, 0.4, 3), (0.8, 1.0, 1)]
    assert bins[0].mean_predicted == pytest.approx(0.065)
    assert bins[0].observed == 0.0
    assert bins[1].mean_predicted == pytest.approx(0.35)
    assert bins[1].observed == pytest.approx(1 / 3)
    assert (bins[2].mean_predicted, bins[2].observed) == (1.0, 1.0)


def _record(rollout: int, i: int, package: str, failed: bool) -> OutcomeRecord:
    return OutcomeRecord(
        rollout=rollout, change=f"{rollout}/h{i}", action=f"h{i}/{package}", asset=f"h{i}",
        ring="broad", at=dt.datetime(2026, 1, rollout, 0, i, tzinfo=dt.UTC),
        result="rolled_back" if failed else "applied", reason="disk_full" if failed else None,
        features=_f(package),
    )  # fmt: skip


def test_split_by_rollout_and_by_time() -> None:
    records = [_record(r, i, "a", False) for r in (1, 2, 3) for i in range(10)]
    train, test, how = split(records, 0.3)
    assert {r.rollout for r in test} == {3}
    assert len(train) == 20
    assert how == "by rollout: held out rollouts [3]"
    one = [_record(1, i, "a", i % 2 == 0) for i in range(10)]
    train, test, how = split(one, 0.3)
    assert how == "by time within the only rollout"
    assert [r.action for r in test] == ["h7/a", "h8/a", "h9/a"]
    assert max(r.at for r in train) < min(r.at for r in test)


def test_evaluate_beats_baseline_when_packages_differ() -> None:
    records = [
        _record(r, i, pkg, failed)
        for r in range(1, 6)
        for i in range(20)
        for pkg, failed in [
            ("a" if i < 10 else "b", (i < 10 and i % 5 < 2) or (i == 19 and r == 2))
        ]
    ]
    cal = evaluate(records)
    assert cal.beats_baseline, cal.verdict
    assert cal.brier < cal.baseline_brier
    assert cal.verdict.startswith("beats the base-rate baseline")
    same = [_record(r, i, "a" if i % 2 else "b", i % 10 == 0) for r in (1, 2) for i in range(20)]
    flat = evaluate(same)
    if not flat.beats_baseline:
        assert flat.verdict.startswith("does not beat the base-rate baseline: ")
