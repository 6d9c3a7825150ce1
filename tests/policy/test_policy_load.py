"""policy.yaml: the shipped example loads to the defaults; broken files list every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchwarden.errors import PolicyError
from patchwarden.model import Environment, Severity
from patchwarden.policy import EXAMPLE, Policy, load_policy
from patchwarden.risk.model import RiskWeights


def test_example_loads_and_equals_defaults() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.risk == Policy.default().risk == RiskWeights()
    assert policy.plan == Policy.default().plan
    assert policy.path == EXAMPLE


def test_partial_policy_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "risk:\n"
        "  kev_floor: 0.9\n"
        "  severity_prior: {critical: 0.2}\n"
        "  control_factors: {waf: 0.9}\n"
        "  environment_factors: {prod: 1, staging: 1, dev: 0.5}\n"
    )
    risk = load_policy(path).risk
    assert risk.kev_floor == 0.9
    assert risk.severity_prior[Severity.CRITICAL] == 0.2
    assert risk.severity_prior[Severity.HIGH] == 0.02
    assert dict(risk.control_factors) == {"waf": 0.9}
    assert risk.environment_factors[Environment.STAGING] == 1


BROKEN = """\
version: 1
risk:
  kev_ransomware_floor: 1.5
  internet_exposed_factor: 0.5
  colour: red
  severity_prior: {urgent: 0.1}
  criticality_factors: {1: 0.2, 2: 0.4, 3: 0.3, 4: 0.8, 5: 1.0}
  control_factors: {waf: 0}
  cia_aggregate: median
  poc_epss_percentile: 0.5
  poc_epss_percentile: 0.6
slas: {ssvc: {immediate: soon}}
"""


def test_broken_policy_lists_every_problem_with_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(BROKEN)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    got = {(p.line, p.field) for p in info.value.problems}
    assert got == {
        (3, "risk.kev_ransomware_floor"),
        (4, "risk.internet_exposed_factor"),
        (5, "risk.colour"),
        (6, "risk.severity_prior.urgent"),
        (7, "risk.criticality_factors"),
        (8, "risk.control_factors.waf"),
        (9, "risk.cia_aggregate"),
        (11, "poc_epss_percentile"),  # duplicate key
        (12, "slas.ssvc.immediate"),
    }
    assert all(p.source == str(path) for p in info.value.problems)
    message = str(info.value)
    assert "invalid policy file (9 problem(s))" in message
    assert "must not decrease" in message
    assert "duplicate key 'poc_epss_percentile' (first at line 10)" in message


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("risk: [1, 2\n", 2, "invalid yaml"),
        ("- just a list\n", 1, "must be a yaml mapping"),
        ("", None, "must be a yaml mapping"),
        ("version: 2\n", 1, "input should be 1"),
        ("risk:\n  kev_floor: 'high'\n", 2, "valid number"),
    ],
)
def test_unusable_files(tmp_path: Path, text: str, line: int | None, reason: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    problem = info.value.problems[0]
    assert problem.line == line
    assert reason in problem.reason


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "nope.yaml")


def test_rollout_reboot_settings(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("rollout:\n  reboot: schedule\n  reboot_command: [systemctl, reboot]\n")
    rollout = load_policy(path).rollout
    assert (rollout.reboot, rollout.reboot_command) == ("schedule", ("systemctl", "reboot"))
    path.write_text("rollout: {}\n")
    assert load_policy(path).rollout.reboot == "leave"  # a reboot is never started by default
    path.write_text("rollout:\n  reboot: now\n  reboot_command: []\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert {(p.line, p.field) for p in info.value.problems} == {
        (2, "rollout.reboot"),
        (3, "rollout.reboot_command"),
    }
