"""Changelogs of candidate upgrades through this machine's real apt, with a private apt
configuration whose only repository is a local ``file:`` one built from the cached real
openssl/libssl3 3.0.22-1~deb12u2 packages: the code under test uses no network."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchwarden.cli.main import app
from patchwarden.errors import AptError
from patchwarden.intel.apt_changelogs import (
    Apt,
    Candidate,
    candidates_for,
    download,
    parse_upgradable,
    upgrade_candidates,
)

from .conftest import OPENSSL_FIXED, OPENSSL_OLD, _missing
from .test_intel_debian_changelog import EXPECTED_AFTER_OLD
from .test_intel_debian_changelog_e2e import debian_root

runner = CliRunner()


@dataclass(frozen=True)
class AptWorld:
    """A private apt: configuration file, the dpkg root it describes, and its repository."""

    config: Path
    root: Path
    repo: Path


@pytest.fixture(scope="module")
def apt_world(
    openssl_fixed_debs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> AptWorld:
    """``deb [trusted=yes] file:<repo> ./`` holding the fixed packages, and a dpkg status
    with the old ones (plus a libc6 that satisfies their dependencies)."""
    for tool in ("apt-get", "dpkg-scanpackages"):
        if shutil.which(tool) is None:
            _missing(f"{tool} is needed for the apt tests (scripts/system-deps.sh installs it)")
    base = tmp_path_factory.mktemp("apt")
    repo = base / "repo"
    repo.mkdir()
    for deb in openssl_fixed_debs.values():
        shutil.copy(deb, repo / deb.name)
    packages = subprocess.run(
        ["dpkg-scanpackages", "--multiversion", "."],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (repo / "Packages").write_text(packages)
    root = debian_root(base / "root", openssl_fixed_debs, OPENSSL_OLD)
    status = root / "var" / "lib" / "dpkg" / "status"
    status.write_text(
        "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u13\n"
        "Architecture: amd64\nMulti-Arch: same\n\n" + status.read_text()
    )
    for sub in ("lists/partial", "cache/archives/partial", "state", "empty"):
        (base / sub).mkdir(parents=True)
    (base / "sources.list").write_text(f"deb [trusted=yes] file:{repo} ./\n")
    config = base / "apt.conf"
    config.write_text(
        "\n".join(
            [
                f'Dir::State "{base}/state";',
                f'Dir::State::status "{status}";',
                f'Dir::State::Lists "{base}/lists";',
                f'Dir::Cache "{base}/cache";',
                f'Dir::Etc::SourceList "{base}/sources.list";',
                f'Dir::Etc::SourceParts "{base}/empty";',
                f'Dir::Etc::PreferencesParts "{base}/empty";',
                f'Dir::Etc::Preferences "{base}/empty/none";',
                'APT::Architecture "amd64";',
                'Acquire::Languages "none";',
                'Debug::NoLocking "true";',
            ]
        )
        + "\n"
    )
    Apt(config=config).run("apt-get", "update")
    return AptWorld(config=config, root=root, repo=repo)


def test_candidates_from_the_simulated_upgrade_and_apt_list(apt_world: AptWorld) -> None:
    apt = Apt(config=apt_world.config)
    found = upgrade_candidates(apt)
    assert [(c.package, c.installed, c.version, c.arch) for c in found] == [
        ("libssl3", OPENSSL_OLD, OPENSSL_FIXED, "amd64"),
        ("openssl", OPENSSL_OLD, OPENSSL_FIXED, "amd64"),
    ]
    listed = parse_upgradable(apt.run("apt", "list", "--upgradable"))
    assert [(c.package, c.installed, c.version) for c in listed] == [
        (c.package, c.installed, c.version) for c in found
    ]
    named = candidates_for(["openssl", f"libssl3={OPENSSL_FIXED}"], apt)
    assert named == [
        Candidate(package="openssl", version=OPENSSL_FIXED, installed=OPENSSL_OLD),
        Candidate(package="libssl3", version=OPENSSL_FIXED),
    ]
    with pytest.raises(AptError, match="no candidate version of 'no-such-package'"):
        candidates_for(["no-such-package"], apt)
    with pytest.raises(AptError, match="not a package or package=version: 'openssl='"):
        candidates_for(["openssl="], apt)


def test_download_caches_and_reports_failures(apt_world: AptWorld, tmp_path: Path) -> None:
    apt = Apt(config=apt_world.config)
    cache = tmp_path / "debs"
    found = upgrade_candidates(apt)
    debs = download(found, cache, apt)
    assert [p.name for p in debs] == [
        f"libssl3_{OPENSSL_FIXED}_amd64.deb",
        f"openssl_{OPENSSL_FIXED}_amd64.deb",
    ]
    assert [p.read_bytes() for p in debs] == [(apt_world.repo / p.name).read_bytes() for p in debs]
    # Cached: a second call does not ask apt (the repository is gone now).
    moved = apt_world.repo.with_name("repo-away")
    apt_world.repo.rename(moved)
    try:
        assert download(found, cache, apt) == debs
        with pytest.raises(
            AptError, match=r"download libssl3=.* failed \(exit 100\): E: Failed to fetch"
        ):
            download(found, tmp_path / "other", apt)
    finally:
        moved.rename(apt_world.repo)
    assert not list((tmp_path / "other").glob(".download-*"))


def test_cli_feeds_changelog_then_scan(apt_world: AptWorld, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'pw.db'}"
    cache = tmp_path / "debs"
    args = ["--db", db, "feeds", "changelog", "--apt-config", str(apt_world.config)]
    result = runner.invoke(app, [*args, "--cache-dir", str(cache), "--json"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [(c["package"], c["installed"], c["candidate"]) for c in summary["candidates"]] == [
        ("libssl3", OPENSSL_OLD, OPENSSL_FIXED),
        ("openssl", OPENSSL_OLD, OPENSSL_FIXED),
    ]
    assert [f["advisories"]["inserted"] for f in summary["files"]] == [84, 0]
    result = runner.invoke(app, ["--db", db, "scan", "--root", str(apt_world.root), "--name", "h"])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(app, ["--db", db, "findings", "--json"])
    assert result.exit_code == 0, result.stderr
    findings = json.loads(result.stdout)
    assert {f["vulnerability"]: f["fixed_version"] for f in findings} == EXPECTED_AFTER_OLD
    # Named packages, and a package apt does not know: a clear error, exit 2.
    result = runner.invoke(app, [*args, "--cache-dir", str(cache), "openssl"])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(app, [*args, "--cache-dir", str(cache), "no-such-package"])
    assert result.exit_code == 2
    assert "apt knows no candidate version of 'no-such-package'" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_candidates_of_another_root(apt_world: AptWorld) -> None:
    """``--root``: apt reads that root's sources, lists and dpkg status (``-o Dir=ROOT``)."""
    root = apt_world.root
    (root / "etc" / "apt" / "sources.list.d").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "apt" / "sources.list").write_text(
        f"deb [trusted=yes] file:{apt_world.repo} ./\n"
    )
    for sub in ("var/lib/apt/lists/partial", "var/cache/apt/archives/partial"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    apt = Apt(root=root, options=("Debug::NoLocking=true", "APT::Architecture=amd64"))
    apt.run("apt-get", "update")
    assert [(c.package, c.installed, c.version) for c in upgrade_candidates(apt)] == [
        ("libssl3", OPENSSL_OLD, OPENSSL_FIXED),
        ("openssl", OPENSSL_OLD, OPENSSL_FIXED),
    ]
