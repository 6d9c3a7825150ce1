"""The pip path over real SSH: a virtualenv with a real vulnerable PyPI release, patched.

* ``urllib3==1.24.1`` (PyPI) is affected by CVE-2019-11324 / GHSA-mh33-7rrq-662w (PyPA advisory
  PYSEC-2019-133: fixed in 1.24.2); the executor upgrades it over SSH to 1.24.2, and the result is
  re-read with the python collector (``read_site_packages``), independent of the executor.
* ``pwhealth`` is built by the test as two wheels: 1.0 passes the health check command, 2.0
  makes it fail; the executor rolls back to 1.0 and reports ``health_check_failed``.

The venv's ``pip.conf`` (pip reads ``<sys.prefix>/pip.conf``) points pip at a local wheel folder
with ``no-index``, so the upgrade over SSH uses no network; the urllib3 wheels come from PyPI
once per machine (cached under ``~/.cache/patchwarden-tests/wheels``).
"""

from __future__ import annotations

import asyncio
import ensurepip
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from tests.pw_testkit import build_wheel, pypi_wheel

from patchwarden.execute import (
    Applied,
    Change,
    Host,
    PackageManager,
    Pin,
    Reason,
    RolledBack,
    SshExecutor,
)
from patchwarden.execute.health import CommandCheck
from patchwarden.execute.runlog import RunLog
from patchwarden.inventory.python import read_site_packages


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(venv python, its site-packages) with urllib3 1.24.1 and pwhealth 1.0 installed."""
    root = tmp_path_factory.mktemp("pipvenv")
    wheels = root / "wheels"
    wheels.mkdir()
    for version in ("1.24.1", "1.24.2"):
        shutil.copy(pypi_wheel("urllib3", version), wheels)
    build_wheel(wheels, "pwhealth", "1.0", "def check():\n    return 0\n")
    build_wheel(wheels, "pwhealth", "2.0", "def check():\n    raise SystemExit('broken in 2.0')\n")
    env = root / "venv"
    # ensurepip takes ~20 s here; pip runs from its own bundled wheel on sys.path instead
    # (pip supports running from a wheel), so the venv is made in well under a second.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    site = next((env / "lib").glob("python3*/site-packages"))
    (bundled,) = Path(ensurepip.__file__).parent.glob("_bundled/pip-*.whl")
    (site / "pip-from-wheel.pth").write_text(f"{bundled}\n")
    (env / "pip.conf").write_text(f"[global]\nno-index = true\nfind-links = {wheels}\n")
    python = env / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-index", "--find-links", str(wheels), "urllib3==1.24.1", "pwhealth==1.0"],
        check=True,
    )  # fmt: skip
    return python, site


def _versions(site: Path) -> dict[str, str]:
    return {p.name: p.version for p in read_site_packages(site)}


def _apply(host: Host, change: Change, runs: Path) -> object:
    async def go() -> object:
        log = RunLog.create(runs, command=["test"], backend="ssh")
        async with SshExecutor(runlog=log) as ex:
            outcome = await ex.apply(host, [change])
        log.outcome(outcome)
        log.close(0)
        return outcome

    return asyncio.run(go())


@pytest.mark.slow
def test_urllib3_is_patched_over_ssh(
    venv: tuple[Path, Path], ssh_host: Callable[..., Host], tmp_path: Path
) -> None:
    python, site = venv
    assert _versions(site)["urllib3"] == "1.24.1"
    host = replace(ssh_host("py1"), python=str(python))
    change = Change(
        manager=PackageManager.PIP,
        ecosystem="PyPI",
        targets=(Pin(name="urllib3", version="1.24.2"),),
        previous=(Pin(name="urllib3", version="1.24.1"),),
    )
    outcome = _apply(host, change, tmp_path / "runs")
    assert isinstance(outcome, Applied), outcome
    assert outcome.installed == {"urllib3": "1.24.2"}
    assert _versions(site)["urllib3"] == "1.24.2"  # the collector's own reading
    kinds = [s.step.kind.value for s in outcome.steps]
    assert kinds == ["snapshot", "apply", "verify", "restart_check"]
    (run,) = (tmp_path / "runs").iterdir()
    events = [e["event"] for e in RunLog(run).events()]
    assert events.count("step") == 4
    assert events[-2:] == ["outcome", "finished"]
    assert (run / "status").read_text() == "successful\n"


@pytest.mark.slow
def test_broken_release_is_rolled_back(
    venv: tuple[Path, Path], ssh_host: Callable[..., Host], tmp_path: Path
) -> None:
    python, site = venv
    check = CommandCheck(argv=(str(python), "-c", "import pwhealth; pwhealth.check()"))
    host = replace(ssh_host("py2"), python=str(python), health=(check,))
    change = Change(
        manager=PackageManager.PIP,
        ecosystem="PyPI",
        targets=(Pin(name="pwhealth", version="2.0"),),
    )
    outcome = _apply(host, change, tmp_path / "runs")
    assert isinstance(outcome, RolledBack), outcome
    assert outcome.reason is Reason.HEALTH_CHECK_FAILED
    assert "broken in 2.0" in outcome.message
    assert outcome.restored == {"pwhealth": "1.0"}
    assert _versions(site)["pwhealth"] == "1.0"


@pytest.mark.slow
def test_missing_release_fails_cleanly(
    venv: tuple[Path, Path], ssh_host: Callable[..., Host], tmp_path: Path
) -> None:
    python, site = venv
    host = replace(ssh_host("py3"), python=str(python))
    change = Change(
        manager=PackageManager.PIP, ecosystem="PyPI", targets=(Pin(name="pwhealth", version="9.9"),)
    )
    outcome = _apply(host, change, tmp_path / "runs")
    # pip changed nothing, but the apply ran: the executor restores the snapshot (a no-op)
    assert isinstance(outcome, RolledBack), outcome
    assert outcome.reason is Reason.PACKAGE_NOT_FOUND
    assert _versions(site)["pwhealth"] == "1.0"
