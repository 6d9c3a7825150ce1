"""The ansible backend for real: ansible-runner runs patchwarden's playbook on this machine
(``ansible_connection=local``) against a virtualenv with a real old PyPI release."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from patchwarden.execute.ansible import AnsibleExecutor
from patchwarden.execute.health import CommandCheck
from patchwarden.execute.interface import Applied, Host, Reason, RolledBack
from patchwarden.execute.steps import Change, PackageManager, Pin
from patchwarden.inventory.python import read_site_packages
from patchwarden.model import AssetId

pytestmark = pytest.mark.slow


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A virtualenv with urllib3 1.24.1 (a real release with real advisories)."""
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    subprocess.run(
        [
            str(env / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "urllib3==1.24.1",
        ],
        check=True,
    )
    return env


def _installed(env: Path) -> dict[str, str]:
    site = next((env / "lib").glob("python3*/site-packages"))
    return {p.name: p.version for p in read_site_packages(site)}


def _change() -> Change:
    return Change(
        manager=PackageManager.PIP,
        ecosystem="PyPI",
        targets=(Pin(name="urllib3", version="1.24.2"),),
        previous=(Pin(name="urllib3", version="1.24.1"),),
    )


def test_playbook_upgrades_and_verifies(venv: Path, tmp_path: Path) -> None:
    host = Host(name=AssetId("local"), address="local", python=str(venv / "bin" / "python"))
    executor = AnsibleExecutor(artifacts=tmp_path / "artifacts")
    (outcome,) = asyncio.run(executor.apply_all([(host, [_change()])]))
    assert isinstance(outcome, Applied), outcome
    assert outcome.installed == {"urllib3": "1.24.2"}
    assert _installed(venv)["urllib3"] == "1.24.2"
    # ansible-runner's artifact directory is kept as the run record
    assert any((tmp_path / "artifacts").rglob("stdout"))


def test_failed_health_check_rolls_back(venv: Path, tmp_path: Path) -> None:
    host = Host(
        name=AssetId("local"),
        address="local",
        python=str(venv / "bin" / "python"),
        health=(CommandCheck(argv=("false",)),),
    )
    executor = AnsibleExecutor(artifacts=tmp_path / "artifacts")
    (outcome,) = asyncio.run(executor.apply_all([(host, [_change()])]))
    assert isinstance(outcome, RolledBack), outcome
    assert outcome.reason is Reason.HEALTH_CHECK_FAILED
    assert _installed(venv)["urllib3"] == "1.24.1"
