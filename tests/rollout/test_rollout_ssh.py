"""Rollouts over real SSH, as an operator runs them: from a fleet file to patched hosts.

Each asset is its own Python environment reached over the private test sshd
(tests/ssh_fixtures.py): a venv of Debian's ``/usr/bin/python3`` with the real vulnerable
``urllib3 1.24.1`` (CVE-2019-11324 and more; the real PyPA advisories of tests/data/e2e/pypa) and a
test-built app, ``pwhealth 1.0``, whose health check fails when urllib3 is 1.25 or newer (an app
that breaks on its dependency's security update). The fleet file gives each asset
``inventory: python:`` (its site-packages) and a ``connection:`` (127.0.0.1, the sshd's port, the
client key, known_hosts, the venv's python, health checks). Then the CLI: ``scan --fleet``,
``plan``, ``approve`` (by a second person), ``rollout start --fleet``, ``rollout status``; the
hosts' real installed versions, the stored findings and the audit trail are checked afterwards.

Cases: every host patched ring by ring; a canary whose health check fails after the update (the
wave halts, the host is rolled back for real, the next rings never start); one wave with an
unreachable host, a wrong host key and a refused sudo beside healthy hosts, under a
max_failure_rate that lets it proceed and one that halts; kill -9 inside a pip install over SSH,
then ``rollout resume``, against an uninterrupted run.

The venvs are made once per module in a world-readable folder (the unprivileged user of the sudo
case runs their python) and copied per test; pip installs from a local wheel folder (each venv's
``pip.conf``: no-index), so only the fixture set-up reaches PyPI (once per machine, cached).
"""

from __future__ import annotations

import ensurepip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from tests.pw_testkit import build_wheel, pypi_wheel, rollout_progress
from tests.ssh_fixtures import Sshd, free_port, keygen
from typer.testing import CliRunner

from patchwarden import audit
from patchwarden.cli.main import app
from patchwarden.inventory.python import read_site_packages
from patchwarden.store import Store
from patchwarden.store import schema as t

DATA = Path(__file__).resolve().parents[1] / "data"
PYPA = DATA / "e2e" / "pypa"
NOW = "2026-11-23T08:00:00+00:00"
FIXED = "1.26.18"
"""The plan's target for urllib3 1.24.1: the lowest release fixing every PyPA advisory in 1.x."""
SYSTEM_PYTHON = Path("/usr/bin/python3")
"""A python every user can run (pyenv's lives under root's 0700 home)."""

APP = """\
import urllib3


def check():
    have = tuple(int(x) for x in urllib3.__version__.split(".")[:2])
    if have >= (1, 25):
        raise SystemExit(f"pwhealth 1.0 cannot work with urllib3 {urllib3.__version__}")
"""
HEALTH_OUTPUT = f"pwhealth 1.0 cannot work with urllib3 {FIXED}"

POLICY = """\
version: 1
windows:
  nightly:
    rrule: "FREQ=DAILY;BYHOUR=2;BYMINUTE=0"
    duration: 2h
    timezone: Europe/Berlin
rings: {canary: 1, pilot: %d, soak: 12h}
gates:
  - name: a person approves
    decision: require_approval
rollout: {max_failure_rate: %s, soak: 0m}
"""

runner = CliRunner()


@dataclass(frozen=True)
class Farm:
    """Where the test hosts' venvs are made: a world-readable folder with a template venv."""

    root: Path
    template: Path

    def venv(self, where: str, name: str) -> Path:
        """A fresh copy of the template (urllib3 1.24.1, pwhealth 1.0) at ``root/where/name``."""
        target = self.root / where / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.parent.chmod(0o755)
        shutil.copytree(self.template, target, symlinks=True)
        return target


@pytest.fixture(scope="module")
def farm() -> Iterator[Farm]:
    """The template venv with the real vulnerable urllib3, pip from a wheel, no index."""
    if not SYSTEM_PYTHON.is_file():
        pytest.fail(f"{SYSTEM_PYTHON} is missing (Debian's python3)")
    root = Path(tempfile.mkdtemp(prefix="patchwarden-venvs-"))
    root.chmod(0o755)
    try:
        wheels = root / "wheels"
        wheels.mkdir()
        for version in ("1.24.1", FIXED):
            shutil.copy(pypi_wheel("urllib3", version), wheels)
        build_wheel(wheels, "pwhealth", "1.0", APP)
        # pip runs from its wheel on sys.path (pip supports that): no ensurepip, no network.
        (bundled,) = Path(ensurepip.__file__).parent.glob("_bundled/pip-*.whl")
        pip = shutil.copy(bundled, root)
        template = root / "template"
        subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(template)],
                       check=True)  # fmt: skip
        site = next((template / "lib").glob("python3*/site-packages"))
        (site / "pip-from-wheel.pth").write_text(f"{pip}\n")
        (template / "pip.conf").write_text(
            f"[global]\nno-index = true\nfind-links = {wheels}\nno-compile = true\n"
        )
        # explicit --no-index/--find-links: PIP_FIND_LINKS here would beat pip.conf (sshd has none)
        subprocess.run(
            [str(template / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", "--no-index", "--find-links", str(wheels),
             "urllib3==1.24.1", "pwhealth==1.0"],
            check=True,
        )  # fmt: skip
        yield Farm(root=root, template=template)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _site(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def installed(venv: Path) -> dict[str, str]:
    """What the python collector reads in the venv (independent of the executor)."""
    return {p.name: p.version for p in read_site_packages(_site(venv))}


def app_check(venv: Path) -> list[str]:
    """The app's own check (fails on urllib3 >= 1.25) as a fleet-file command."""
    return [str(venv / "bin" / "python"), "-c", "import pwhealth; pwhealth.check()"]


def import_check(venv: Path) -> list[str]:
    """A check that the (new) urllib3 imports and says its version."""
    return [str(venv / "bin" / "python"), "-c", "import urllib3; print(urllib3.__version__)"]


def asset(
    name: str,
    venv: Path,
    sshd: Sshd,
    *,
    environment: str = "prod",
    health: Callable[[Path], list[str]] | None = import_check,
    **connection: Any,
) -> dict[str, Any]:
    """One fleet-file asset on the test sshd (``connection`` overrides port, user, ...)."""
    conn: dict[str, Any] = {
        "backend": "ssh",
        "host": "127.0.0.1",
        "port": sshd.port,
        "user": "root",
        "identity_file": str(sshd.client_key),
        "known_hosts": str(sshd.known_hosts),
        "python": str(venv / "bin" / "python"),
        **connection,
    }
    if health is not None:
        conn["health"] = [{"command": health(venv)}]
    return {
        "name": name,
        "environment": environment,
        "inventory": {"python": str(_site(venv))},
        "connection": conn,
    }


def prepare(
    tmp_path: Path, assets: list[dict[str, Any]], *, pilot: int = 1, max_failure_rate: float = 0.2
) -> dict[str, str]:
    """Fleet file, scan, plan (by bob), every change approved (by alice); returns the CLI env."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(yaml.safe_dump({"assets": assets}))
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY % (pilot, max_failure_rate))
    env = {
        "PATCHWARDEN_DB": str(tmp_path / "pw.db"),
        "PATCHWARDEN_POLICY": str(policy),
        "PATCHWARDEN_ACTOR": "bob",
        "FLEET": str(fleet),
    }
    cli(env, "feeds", "import", str(PYPA))
    scanned = json.loads(cli(env, "scan", "--fleet", str(fleet), "--json"))
    assert scanned, scanned
    plan = json.loads(cli(env, "plan", "--now", NOW, "--json"))
    changes = plan["changes"]
    assert {c["asset_id"] for c in changes} == {a["name"] for a in assets}
    for c in changes:
        assert c["status"] == "pending_approval", c
        assert [(a["package"], a["target_version"]) for a in c["actions"]] == [("urllib3", FIXED)]
        cli({**env, "PATCHWARDEN_ACTOR": "alice"}, "approve", c["id"], "--reason", "CAB-7")
    return env


def cli(env: dict[str, str], *args: str, code: int = 0) -> str:
    """Run the CLI in-process; assert its exit code; its stdout."""
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == code, f"{args}: {result.exit_code}\n{result.stdout}{result.stderr}"
    return result.stdout


def status(env: dict[str, str]) -> dict[str, Any]:
    """``rollout status --json`` of the newest rollout."""
    data: dict[str, Any] = json.loads(cli(env, "rollout", "status", "--json"))
    return data


def by_asset(st: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["asset"]: c for c in st["changes"]}


def open_findings(env: dict[str, str]) -> dict[str, int]:
    """Asset -> open urllib3 findings, from the store."""
    store = Store.open(env["PATCHWARDEN_DB"])
    f = t.findings.c
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(f.asset_id, sa.func.count())
                .where(f.package == "urllib3", f.resolved_at.is_(None))
                .group_by(f.asset_id)
            )
            return {r[0]: int(r[1]) for r in rows}
    finally:
        store.close()


def audit_trail(env: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(action, subject, details) of every audit entry; the chain is verified first."""
    store = Store.open(env["PATCHWARDEN_DB"])
    try:
        assert audit.verify(store).ok
        return [(str(e.action), e.subject, json.loads(e.details)) for e in audit.entries(store)]
    finally:
        store.close()


# --------------------------------------------------------------------------- a: all patched


@pytest.mark.slow
def test_vulnerable_hosts_are_patched_ring_by_ring(farm: Farm, sshd: Sshd, tmp_path: Path) -> None:
    names = {"a-canary": "dev", "a-pilot": "staging", "a-broad-1": "prod", "a-broad-2": "prod"}
    venvs = {n: farm.venv("a", n) for n in names}
    env = prepare(
        tmp_path,
        [asset(n, venvs[n], sshd, environment=e) for n, e in names.items()],
    )
    before = open_findings(env)
    assert set(before) == set(names)
    assert all(n >= 5 for n in before.values())  # PYSEC-2019-132/133, 2020-148, 2021-108, ...

    cli(env, "rollout", "start", "--fleet", env["FLEET"], "-q")

    st = status(env)
    assert st["state"] == "completed"
    assert st["counts"] == {"applied": 4}
    changes = by_asset(st)
    assert [changes[n]["ring"] for n in names] == ["canary", "pilot", "broad", "broad"]
    for name, venv in venvs.items():
        c = changes[name]
        assert c["result"] == "applied"
        assert c["installed"] == {"urllib3": FIXED}
        steps = [(s["step"], s["state"]) for s in c["steps"]]
        assert steps[:4] == [("snapshot:0", "done"), ("apply:0", "done"),
                             ("verify:0", "done"), ("health", "done")]  # fmt: skip
        assert steps[-1] == ("rescan", "done")
        assert installed(venv)["urllib3"] == FIXED  # the host really has it
    # rings in order: each ring's first step started after the previous ring's last finished
    ends = {r: max(s["finished_at"] for c in st["changes"] if c["ring"] == r for s in c["steps"])
            for r in ("canary", "pilot")}  # fmt: skip
    starts = {r: min(s["started_at"] for c in st["changes"] if c["ring"] == r for s in c["steps"])
              for r in ("pilot", "broad")}  # fmt: skip
    assert ends["canary"] <= starts["pilot"]
    assert ends["pilot"] <= starts["broad"]

    assert open_findings(env) == {}  # resolved by the rollout's verify and rescan
    cli(env, "scan", "--fleet", env["FLEET"])  # a fresh scan of the hosts agrees
    assert open_findings(env) == {}

    trail = audit_trail(env)
    approvals = [(s, d) for a, s, d in trail if a == audit.Action.APPROVAL_APPROVE]
    assert len(approvals) == 4
    verified = {d["asset"] for a, _, d in trail if a == "verify" and d.get("state") == "done"}
    assert verified == set(names)
    events = [d.get("event") for a, s, d in trail if a == "rollout.step" and s == "rollout:1"]
    assert events == ["start", "completed"]


# --------------------------------------------------------------------------- b: health check


@pytest.mark.slow
def test_broken_health_check_halts_the_wave_and_rolls_back(
    farm: Farm, sshd: Sshd, tmp_path: Path
) -> None:
    names = {"b-canary": "dev", "b-pilot": "staging", "b-broad": "prod"}
    venvs = {n: farm.venv("b", n) for n in names}
    env = prepare(
        tmp_path,
        [
            asset(n, venvs[n], sshd, environment=e, health=app_check if n == "b-canary" else None)
            for n, e in names.items()
        ],
    )
    # The canary runs the app that breaks on the new urllib3; its wave (of one) is 100 % failed.
    cli(env, "rollout", "start", "--fleet", env["FLEET"], "-q", code=3)

    st = status(env)
    assert st["state"] == "halted"
    halt = st["halt_reason"]
    assert halt.startswith("wave 1 (canary): 1 of 1 changes failed (100% > max_failure_rate 20%)")
    assert "b-canary: health_check_failed" in halt
    assert HEALTH_OUTPUT in halt  # the check's own output says why
    changes = by_asset(st)
    canary = changes["b-canary"]
    assert (canary["state"], canary["result"], canary["reason"]) == (
        "failed", "rolled_back", "health_check_failed"
    )  # fmt: skip
    assert HEALTH_OUTPUT in canary["message"]
    assert canary["restored"] == {"urllib3": "1.24.1"}
    steps = {s["step"]: s["state"] for s in canary["steps"]}
    assert steps == {"snapshot:0": "done", "apply:0": "done", "verify:0": "done",
                     "health": "failed", "rollback": "done"}  # fmt: skip
    # rolled back for real: the old version is installed and the app works again
    assert installed(venvs["b-canary"])["urllib3"] == "1.24.1"
    subprocess.run(app_check(venvs["b-canary"]), check=True)
    # the next rings never started
    for name in ("b-pilot", "b-broad"):
        assert (changes[name]["state"], changes[name]["steps"]) == ("planned", [])
        assert installed(venvs[name])["urllib3"] == "1.24.1"
    assert set(open_findings(env)) == set(names)  # nothing was fixed

    text = cli(env, "rollout", "status")
    assert "halted" in text
    assert "health_check_failed" in text
    trail = audit_trail(env)
    rollbacks = [d for a, s, d in trail if a == "rollback"]
    assert [(d["asset"], d["state"], d["restored"]) for d in rollbacks] == [
        ("b-canary", "done", {"urllib3": "1.24.1"})
    ]
    assert ("halted", halt) in [
        (d.get("event"), d.get("reason")) for a, _, d in trail if a == "rollout.step"
    ]
    out = tmp_path / "report"
    cli(env, "report", "--out", str(out), "--format", "json")
    rates = json.loads((out / "report.json").read_text())["rollouts"]
    assert (rates["outcomes"], rates["rolled_back"], rates["succeeded"]) == (1, 1, 0)


# --------------------------------------------------------------------------- c: bad hosts


@pytest.mark.slow
@pytest.mark.parametrize(
    ("max_failure_rate", "final"), [(0.75, "completed"), (0.5, "halted")], ids=["proceeds", "halts"]
)
def test_unreachable_wrong_key_and_sudo_refused_hosts_in_one_wave(
    farm: Farm,
    sshd: Sshd,
    unprivileged_user: str,
    tmp_path: Path,
    max_failure_rate: float,
    final: str,
) -> None:
    where = f"c-{final}"
    venvs = {n: farm.venv(where, n) for n in ("c-canary", "c-ok-1", "c-ok-2", "c-down",
                                              "c-nokey", "c-sudo", "c-late")}  # fmt: skip
    down = free_port()
    keygen(tmp_path / "other")
    other = (tmp_path / "other.pub").read_text().split()
    wrong_known = tmp_path / "known_hosts"
    wrong_known.write_text(f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}\n")
    assets = [
        asset("c-canary", venvs["c-canary"], sshd, environment="dev"),
        # the pilot ring: one wave of five, three of which cannot be patched
        asset("c-ok-1", venvs["c-ok-1"], sshd, environment="staging"),
        asset("c-ok-2", venvs["c-ok-2"], sshd, environment="staging"),
        asset("c-down", venvs["c-down"], sshd, environment="staging", port=down),
        asset("c-nokey", venvs["c-nokey"], sshd, environment="staging",
              known_hosts=str(wrong_known)),
        # a root-owned environment: pip's installs need sudo, which this user has none of
        asset("c-sudo", venvs["c-sudo"], sshd, environment="staging", user=unprivileged_user,
              become="always"),
        asset("c-late", venvs["c-late"], sshd, environment="prod"),
    ]  # fmt: skip
    env = prepare(tmp_path, assets, pilot=5, max_failure_rate=max_failure_rate)

    cli(env, "rollout", "start", "--fleet", env["FLEET"], "-q", code=3)

    st = status(env)
    assert st["state"] == final
    changes = by_asset(st)
    pilot = {n for n, c in changes.items() if c["ring"] == "pilot"}
    assert pilot == {"c-ok-1", "c-ok-2", "c-down", "c-nokey", "c-sudo"}
    assert len({changes[n]["wave"] for n in pilot}) == 1

    # which host, what went wrong: never reached (nothing changed) or refused before it ran
    down_c, nokey_c, sudo_c = changes["c-down"], changes["c-nokey"], changes["c-sudo"]
    assert (down_c["result"], down_c["reason"]) == ("skipped", "unreachable")
    assert f"c-down (root@127.0.0.1:{down}): cannot connect" in down_c["message"]
    assert (nokey_c["result"], nokey_c["reason"]) == ("skipped", "host_key_mismatch")
    assert f"host key does not match {wrong_known}" in nokey_c["message"]
    assert (sudo_c["result"], sudo_c["reason"]) == ("failed", "sudo_refused")
    assert f"sudo refused for {unprivileged_user}" in sudo_c["message"]
    assert [s["step"] for s in sudo_c["steps"]] == ["snapshot:0", "apply:0"]  # no rollback
    for name in ("c-down", "c-nokey", "c-sudo"):
        assert changes[name]["state"] == "failed"
        assert installed(venvs[name])["urllib3"] == "1.24.1"
    # the rest of the wave went on
    for name in ("c-canary", "c-ok-1", "c-ok-2"):
        assert changes[name]["result"] == "applied"
        assert installed(venvs[name])["urllib3"] == FIXED

    late = changes["c-late"]
    if final == "completed":  # 3 of 5 = 60 % <= 75 %: the broad ring ran
        assert st["halt_reason"] is None
        assert late["result"] == "applied"
        assert installed(venvs["c-late"])["urllib3"] == FIXED
        assert st["counts"] == {"applied": 4, "skipped": 2, "failed": 1}
    else:  # 60 % > 50 %: halted after the pilot wave, broad never started
        halt = st["halt_reason"]
        assert halt.startswith("wave 2 (pilot): 3 of 5 changes failed (60% > max_failure_rate 50%)")
        for piece in ("c-down: unreachable", "c-nokey: host_key_mismatch",
                      "c-sudo: sudo_refused"):  # fmt: skip
            assert piece in halt
        assert (late["state"], late["steps"]) == ("planned", [])
        assert installed(venvs["c-late"])["urllib3"] == "1.24.1"
    assert set(open_findings(env)) == {"c-down", "c-nokey", "c-sudo"} | (
        set() if final == "completed" else {"c-late"}
    )
    text = cli(env, "rollout", "status")
    for piece in ("c-down", "unreachable", "c-nokey", "host_key_mismatch", "sudo_refused"):
        assert piece in text
    audit_trail(env)


# --------------------------------------------------------------------------- d: kill -9


def _final(env: dict[str, str], venvs: dict[str, Path]) -> dict[str, Any]:
    store = Store.open(env["PATCHWARDEN_DB"])
    try:
        with store.engine.connect() as conn:
            rollout = conn.execute(sa.select(t.rollouts)).one()
            steps = sorted(
                (r.asset_id, r.step, r.state, (r.outcome or {}).get("result"))
                for r in conn.execute(sa.select(t.rollout_steps))
            )
            resumed = [
                (r.asset_id, r.step, r.outcome)
                for r in conn.execute(sa.select(t.rollout_steps))
                if (r.outcome or {}).get("resumed")
            ]
            findings = sorted(
                (r.asset_id, r.vulnerability, r.resolved_at is not None)
                for r in conn.execute(sa.select(t.findings))
            )
        finished = [
            (e.subject, d["step"])
            for e in audit.entries(store)
            if "step" in (d := json.loads(e.details))
        ]
        return {
            "resumed": resumed,
            "state": rollout.state,
            "steps": steps,
            "findings": findings,
            "installed": {n: installed(v) for n, v in venvs.items()},
            "audit_ok": audit.verify(store).ok,
            "finished_steps": finished,
        }
    finally:
        store.close()


@pytest.mark.slow
def test_kill_9_inside_an_ssh_apply_then_resume_equals_an_uninterrupted_run(
    farm: Farm, sshd: Sshd, tmp_path: Path
) -> None:
    names = {"k-canary": "dev", "k-pilot": "staging", "k-broad": "prod"}
    runs: dict[str, tuple[dict[str, str], dict[str, Path]]] = {}
    for run in ("ref", "kill"):
        (tmp_path / run).mkdir()
        venvs = {n: farm.venv(f"k-{run}", n) for n in names}
        assets = [asset(n, venvs[n], sshd, environment=e) for n, e in names.items()]
        runs[run] = (prepare(tmp_path / run, assets), venvs)

    def start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "patchwarden", "rollout", *args, "-q"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    ref, ref_venvs = runs["ref"]
    env, venvs = runs["kill"]
    reference = start(ref, "start", "--fleet", ref["FLEET"])  # uninterrupted, meanwhile
    proc = start(env, "start", "--fleet", env["FLEET"])
    deadline = time.monotonic() + 60
    while True:  # wait until the canary is done and the pilot's pip install runs over SSH
        done, applying = rollout_progress(env["PATCHWARDEN_DB"])
        if done >= 1 and applying:
            break
        assert proc.poll() is None, "the rollout finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    killed = _final(env, venvs)
    assert killed["state"] == "running"
    assert any(step.startswith("apply") and state == "running"
               for _, step, state, _ in killed["steps"])  # fmt: skip

    assert start(env, "resume").wait(120) == 0
    assert reference.wait(120) == 0

    a, b = _final(ref, ref_venvs), _final(env, venvs)
    assert b["state"] == a["state"] == "completed"
    assert b["steps"] == a["steps"]
    assert b["findings"] == a["findings"]
    assert all(resolved for *_, resolved in b["findings"])
    assert b["installed"] == a["installed"]
    assert {v["urllib3"] for v in b["installed"].values()} == {FIXED}
    assert a["audit_ok"]
    assert b["audit_ok"]
    # nothing done twice: every step is audited as finished exactly once
    assert len(b["finished_steps"]) == len(set(b["finished_steps"]))
    assert len(b["finished_steps"]) == len(a["finished_steps"])
