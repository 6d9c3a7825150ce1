"""Python: a real venv with two real old releases from PyPI, read by folder and by interpreter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from patchwarden.errors import InventoryFormatError
from patchwarden.inventory.python import PythonCollector, is_distro_managed
from patchwarden.model import InstalledPackage


@pytest.fixture(scope="session")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A python3.11 venv with urllib3 1.24.1 and Jinja2 2.10 installed by pip from PyPI."""
    python = shutil.which("python3.11") or sys.executable
    target = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([python, "-m", "venv", str(target)], check=True, capture_output=True)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [
            str(target / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "urllib3==1.24.1",
            "Jinja2==2.10",
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    return target


def _site_packages(venv: Path) -> Path:
    [site] = sorted(venv.glob("lib/python3*/site-packages"))
    return site


def _by_name(pkgs: list[InstalledPackage]) -> dict[str, InstalledPackage]:
    return {p.name: p for p in pkgs}


@pytest.mark.slow
def test_site_packages_folder(venv: Path) -> None:
    site = _site_packages(venv)
    pkgs = _by_name(PythonCollector().collect(site))
    assert {"urllib3", "jinja2", "pip"} <= set(pkgs)
    jinja = pkgs["jinja2"]  # PEP 503 name for 'Jinja2'
    assert (jinja.ecosystem, jinja.version, jinja.purl) == ("PyPI", "2.10", "pkg:pypi/jinja2@2.10")
    assert jinja.location == str(site / "Jinja2-2.10.dist-info")
    assert pkgs["urllib3"].version == "1.24.1"
    assert not is_distro_managed(jinja.location)


@pytest.mark.slow
def test_interpreter(venv: Path) -> None:
    by_folder = PythonCollector().collect(_site_packages(venv))
    by_interpreter = PythonCollector().collect(venv / "bin" / "python")
    # The interpreter sees its venv's site-packages (and nothing of this test process's path).
    assert {(p.name, p.version) for p in by_folder} <= {(p.name, p.version) for p in by_interpreter}
    assert "patchwarden" not in _by_name(by_interpreter)
    assert _by_name(by_interpreter)["urllib3"].version == "1.24.1"


def test_debian_dist_packages_are_kept_and_marked(tmp_path: Path) -> None:
    """Layout of Debian's python3-yaml: /usr/lib/python3/dist-packages/PyYAML-6.0.dist-info."""
    folder = tmp_path / "usr" / "lib" / "python3" / "dist-packages"
    (folder / "PyYAML-6.0.dist-info").mkdir(parents=True)
    (folder / "PyYAML-6.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0\n"
    )
    # An old-style egg-info FILE (python3-crcmod ships crcmod-1.7.egg-info like this).
    (folder / "crcmod-1.7.egg-info").write_text(
        "Metadata-Version: 1.1\nName: crcmod\nVersion: 1.7\n"
    )
    local = tmp_path / "usr" / "local" / "lib" / "python3.11" / "dist-packages"
    (local / "rich-13.7.0.dist-info").mkdir(parents=True)
    (local / "rich-13.7.0.dist-info" / "METADATA").write_text("Name: rich\nVersion: 13.7.0\n")
    collector = PythonCollector()
    assert collector.locate(tmp_path) == [folder, local]
    pkgs = _by_name([p for f in collector.locate(tmp_path) for p in collector.collect(f)])
    assert set(pkgs) == {"pyyaml", "crcmod", "rich"}
    assert is_distro_managed(pkgs["pyyaml"].location or "")
    assert is_distro_managed(pkgs["crcmod"].location or "")
    assert not is_distro_managed(pkgs["rich"].location or "")


def test_missing_version_names_file(tmp_path: Path) -> None:
    (tmp_path / "broken-1.0.dist-info").mkdir()
    (tmp_path / "broken-1.0.dist-info" / "METADATA").write_text("Name: broken\n")
    with pytest.raises(
        InventoryFormatError, match=r"broken-1.0.dist-info/METADATA: field 'Version'"
    ):
        PythonCollector().collect(tmp_path)


def test_no_such_path(tmp_path: Path) -> None:
    with pytest.raises(InventoryFormatError, match=r"no such python folder or interpreter"):
        PythonCollector().collect(tmp_path / "nope")
