"""debian-changelog end to end: the real openssl/libssl3 3.0.22-1~deb12u2 packages imported
through the CLI into a real store, then dpkg roots with the old and the fixed version scanned."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from debian.debfile import DebFile
from typer.testing import CliRunner

from patchwarden.cli.main import app

from .conftest import OPENSSL_FIXED, OPENSSL_OLD
from .test_intel_debian_changelog import EXPECTED_AFTER_OLD

OS_RELEASE = Path(__file__).resolve().parents[1] / "data" / "inventory" / "debian12-root"
runner = CliRunner()


def invoke(db_url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--db", db_url, *args])
    return result.exit_code, result.stdout, result.stderr


def status_stanza(deb: Path, version: str) -> str:
    """The dpkg ``status`` stanza dpkg writes for ``deb`` installed, at ``version``."""
    with DebFile(filename=str(deb)) as pkg:
        control = pkg.debcontrol()
    lines = [f"Package: {control['Package']}", "Status: install ok installed"]
    for key, value in control.items():
        if key == "Package":
            continue
        value = version if key == "Version" else value
        lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


def debian_root(root: Path, debs: dict[str, Path], version: str) -> Path:
    """A filesystem root with bookworm's os-release and a dpkg status listing the packages."""
    (root / "etc").mkdir(parents=True)
    shutil.copy(OS_RELEASE / "etc" / "os-release", root / "etc" / "os-release")
    status = root / "var" / "lib" / "dpkg" / "status"
    status.parent.mkdir(parents=True)
    status.write_text("\n".join(status_stanza(deb, version) for deb in debs.values()))
    return root


def test_import_deb_then_scan_old_and_fixed_hosts(
    db_url: str, tmp_path: Path, openssl_fixed_debs: dict[str, Path]
) -> None:
    debs = [str(p) for p in openssl_fixed_debs.values()]
    code, out, err = invoke(db_url, "feeds", "import", "--json", *debs)
    assert code == 0, err
    report = json.loads(out)
    assert [f["format"] for f in report["files"]] == ["debian-changelog"] * 2
    # Both binaries carry the source's changelog: the second file adds nothing new.
    assert report["files"][0]["advisories"] == {"inserted": 84, "updated": 0, "unchanged": 0}
    assert report["files"][1]["advisories"] == {"inserted": 0, "updated": 0, "unchanged": 84}
    code, out, err = invoke(db_url, "feeds", "import", "--json", debs[0])
    assert code == 0, err
    assert json.loads(out)["files"][0]["advisories"]["unchanged"] == 84

    old = debian_root(tmp_path / "old", openssl_fixed_debs, OPENSSL_OLD)
    fixed = debian_root(tmp_path / "fixed", openssl_fixed_debs, OPENSSL_FIXED)
    for root, name in ((old, "bookworm-old"), (fixed, "bookworm-fixed")):
        code, _out, err = invoke(db_url, "scan", "--root", str(root), "--name", name)
        assert code == 0, err

    code, out, err = invoke(db_url, "findings", "--json", "--asset", "bookworm-old")
    assert code == 0, err
    findings = json.loads(out)
    assert {f["vulnerability"]: f["fixed_version"] for f in findings} == EXPECTED_AFTER_OLD
    for f in findings:
        assert f["ecosystem"] == "Debian:12"
        assert f["package"] == "openssl"
        assert f["installed_version"] == OPENSSL_OLD
        assert sorted(f["binaries"]) == ["libssl3", "openssl"]
        assert f["fix_state"] == "fixed"
        assert f["advisories"] == [f"debian-changelog:Debian:12:openssl:{f['vulnerability']}"]
    code, out, err = invoke(db_url, "findings", "--json", "--asset", "bookworm-fixed")
    assert code == 0, err
    assert json.loads(out) == []


def test_cli_bad_inputs_are_clear_errors(
    tmp_path: Path, openssl_fixed_debs: dict[str, Path]
) -> None:
    db = f"sqlite:///{tmp_path / 'pw.db'}"
    cut = tmp_path / "openssl-truncated.deb"
    cut.write_bytes(openssl_fixed_debs["openssl"].read_bytes()[:700_000])
    garbage = tmp_path / "changelog.Debian"
    garbage.write_text("this is not a changelog\n")
    code, out, err = invoke(
        db, "feeds", "import", "--format", "debian-changelog", str(cut), str(garbage)
    )
    assert code == 3
    assert f"{cut}: cannot read the data member: truncated" in " ".join(err.split())
    assert f"{garbage} is not a debian changelog" in " ".join(err.split())
    assert "Traceback" not in out + err
    unstable = tmp_path / "unstable" / "changelog.Debian"
    unstable.parent.mkdir()
    unstable.write_text(
        "demo (1.0-1) unstable; urgency=medium\n\n  * CVE-2024-0001\n\n"
        " -- Jane Doe <jane@example.org>  Fri, 26 Sep 2025 20:59:22 +0200\n"
    )
    code, _out, err = invoke(db, "feeds", "import", str(unstable))
    assert code == 3
    assert "cannot tell which release demo 1.0-1" in " ".join(err.split())
    code, out, err = invoke(db, "feeds", "import", "--json", "--release", "bookworm", str(unstable))
    assert code == 0, err
    assert json.loads(out)["files"][0]["advisories"]["inserted"] == 1
    code, _out, err = invoke(db, "feeds", "import", "--release", "sid", str(unstable))
    assert code == 2
    assert "unknown release 'sid'" in err
    code, _out, err = invoke(
        db, "feeds", "import", "--format", "osv", "--release", "12", str(unstable)
    )
    assert code == 2
