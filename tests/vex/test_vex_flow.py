"""VEX: parsing the three formats, suppression of real findings, withdrawal, audit, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.pw_testkit import write_bom
from typer.testing import CliRunner

from patchwarden import audit
from patchwarden.cli.main import app
from patchwarden.store import Store
from patchwarden.vex import VexError, VexFormat, VexStatus, parse_file

TESTS = Path(__file__).resolve().parents[1]
VEX = TESTS / "data" / "vex"
PYPA = TESTS / "data" / "e2e" / "pypa"
UBUNTU = TESTS / "data" / "intel" / "ubuntu" / "noble-subset.usn.oval.xml"
runner = CliRunner()


def test_parse_formats() -> None:
    openvex = parse_file(VEX / "openvex.json")
    assert [s.status for s in openvex] == [
        VexStatus.NOT_AFFECTED,
        VexStatus.AFFECTED,
        VexStatus.NOT_AFFECTED,
    ]
    assert openvex[0].author.startswith("Shop Security Team")
    assert openvex[1].aliases == ("PYSEC-2019-132",)
    cdx = parse_file(VEX / "cyclonedx-vex.json")
    assert [(s.vulnerability, s.status, s.products) for s in cdx] == [
        ("CVE-2019-11324", VexStatus.NOT_AFFECTED, ("pkg:pypi/urllib3@1.24.1",)),
        ("CVE-2021-33503", VexStatus.UNDER_INVESTIGATION, ("pkg:pypi/urllib3@1.24.1",)),
    ]
    assert cdx[0].format is VexFormat.CYCLONEDX
    csaf = parse_file(VEX / "csaf-vex.json")
    assert [(s.vulnerability, s.status, s.justification) for s in csaf] == [
        (
            "CVE-2020-28493",
            VexStatus.NOT_AFFECTED,
            "vulnerable_code_cannot_be_controlled_by_adversary",
        ),
        ("CVE-2016-10745", VexStatus.AFFECTED, None),
    ]
    assert csaf[1].action_statement == "Update to 2.10.1."


def test_not_affected_needs_justification() -> None:
    path = VEX / "openvex-no-justification.json"
    with pytest.raises(VexError, match="neither a justification nor an impact statement") as info:
        parse_file(path)
    assert str(path) in str(info.value)
    assert "statement 0 (CVE-2019-10906)" in str(info.value)


def test_not_a_vex_document(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("[]")
    with pytest.raises(VexError, match="not a vex document"):
        parse_file(path)


@pytest.fixture
def db(tmp_path: Path) -> str:
    """Real PyPA and Ubuntu advisories; an SBOM with old jinja2/urllib3 and an Ubuntu package."""
    url = str(tmp_path / "pw.db")
    purls = [
        "pkg:pypi/jinja2@2.10",
        "pkg:pypi/urllib3@1.24.1",
        "pkg:deb/ubuntu/python3-cryptography@41.0.7-4?arch=amd64&distro=ubuntu-24.04",
    ]
    bom = write_bom(tmp_path / "bom.json", "shop", purls)
    for feed in (PYPA, UBUNTU):
        result = runner.invoke(app, ["--db", url, "feeds", "import", str(feed)])
        assert result.exit_code in (0, 3), result.stderr  # 3: the livepatch notice is skipped
    result = runner.invoke(app, ["--db", url, "scan", "--sbom", str(bom)])
    assert result.exit_code == 0, result.stderr
    return url


def _findings(db: str, *args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["--db", db, "findings", "--json", "--limit", "0", *args])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    return rows


def _key(row: dict[str, object]) -> tuple[str, str]:
    return str(row["package"]), str(row["vulnerability"])


def test_suppress_withdraw_and_audit(db: str) -> None:
    before = {_key(r) for r in _findings(db)}
    assert ("jinja2", "CVE-2019-10906") in before
    assert ("python3-cryptography", "CVE-2024-26130") in before
    assert ("urllib3", "CVE-2019-11324") in before
    for doc in ("openvex.json", "cyclonedx-vex.json", "csaf-vex.json"):
        result = runner.invoke(app, ["--db", db, "vex", "import", str(VEX / doc)])
        assert result.exit_code == 0, result.stderr
    hidden = {
        ("jinja2", "CVE-2019-10906"),  # by its PYSEC alias, versionless purl
        ("python3-cryptography", "CVE-2024-26130"),  # purl with distro and arch qualifiers
        ("urllib3", "CVE-2019-11324"),  # CycloneDX bom-ref
    }
    if ("jinja2", "CVE-2020-28493") in before:
        hidden.add(("jinja2", "CVE-2020-28493"))  # CSAF VEX flag
    visible = {_key(r) for r in _findings(db)}
    assert visible == before - hidden
    everything = _findings(db, "--show-suppressed")
    assert {_key(r) for r in everything} == before
    marked = {_key(r): r["suppressed_by"] for r in everything if "suppressed_by" in r}
    assert set(marked) == hidden
    jinja = marked[("jinja2", "CVE-2019-10906")]
    assert isinstance(jinja, dict)
    assert jinja["author"] == "Shop Security Team <security@shop.example>"
    assert jinja["justification"] == "vulnerable_code_not_in_execute_path"
    assert jinja["document"] == "https://vex.example/shop/2024-001"
    # Withdraw one statement: its finding is back, the others stay hidden.
    result = runner.invoke(
        app, ["--db", db, "vex", "withdraw", "https://vex.example/shop/2024-001#0"]
    )
    assert result.exit_code == 0, result.stderr
    assert {_key(r) for r in _findings(db)} == before - (hidden - {("jinja2", "CVE-2019-10906")})
    # An unknown target is a usage error naming it.
    result = runner.invoke(app, ["--db", db, "vex", "withdraw", "nothing-like-this"])
    assert result.exit_code == 2
    assert "no vex document or statement 'nothing-like-this'" in result.stderr
    store = Store.open(db)
    try:
        entries = audit.recent(store, 20)
    finally:
        store.close()
    vex_entries = [e for e in entries if e.subject.startswith("vex:")]
    assert len(vex_entries) == 4  # three imports, one withdrawal
    assert any('"released"' in e.details and "withdraw" in e.details for e in vex_entries)


def test_reimport_without_statement_brings_finding_back(db: str, tmp_path: Path) -> None:
    assert (
        runner.invoke(app, ["--db", db, "vex", "import", str(VEX / "openvex.json")]).exit_code == 0
    )
    assert ("jinja2", "CVE-2019-10906") not in {_key(r) for r in _findings(db)}
    doc = json.loads((VEX / "openvex.json").read_text())
    doc["statements"] = doc["statements"][1:]
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(doc))
    result = runner.invoke(app, ["--db", db, "vex", "import", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "1 withdrawn" in result.stdout
    assert ("jinja2", "CVE-2019-10906") in {_key(r) for r in _findings(db)}


def test_bad_vex_is_refused_by_cli(db: str) -> None:
    path = VEX / "openvex-no-justification.json"
    result = runner.invoke(app, ["--db", db, "vex", "import", str(path)])
    assert result.exit_code == 2
    assert "neither a justification nor an impact statement" in result.stderr


@pytest.mark.parametrize("fmt", ["openvex", "cyclonedx"])
def test_export_round_trip(db: str, tmp_path: Path, fmt: str) -> None:
    assert (
        runner.invoke(app, ["--db", db, "vex", "import", str(VEX / "openvex.json")]).exit_code == 0
    )
    result = runner.invoke(app, ["--db", db, "vex", "export", "--format", fmt, "--author", "ops"])
    assert result.exit_code == 0, result.stderr
    path = tmp_path / f"fleet.{fmt}.json"
    path.write_text(result.stdout)
    statements = parse_file(path)  # our own output parses as VEX
    by_status = {(s.vulnerability, s.status) for s in statements}
    assert ("CVE-2019-10906", VexStatus.NOT_AFFECTED) in by_status
    assert ("CVE-2019-11324", VexStatus.AFFECTED) in by_status
    total = len(_findings(db, "--show-suppressed"))
    assert len({(s.vulnerability, p) for s in statements for p in s.products}) == total
