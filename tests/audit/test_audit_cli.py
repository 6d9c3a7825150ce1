"""The CLI records real use cases (feed import, scan, assets set) and verifies/exports them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from patchwarden.cli.main import app
from patchwarden.store import normalize_url

DATA = Path(__file__).resolve().parents[1] / "data"
KEV = DATA / "intel" / "kev" / "kev-2026.01.29-subset.json"
runner = CliRunner()


def _run(db: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--db", db, *args])
    return result.exit_code, result.stdout, result.stderr


def _history(db: str, tmp_path: Path) -> None:
    status = next((DATA / "inventory").rglob("status"))
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "assets:\n"
        "  - name: web-01\n"
        f"    inventory:\n      dpkg_status: {status}\n      distro: 'Debian:12'\n"
        "  - name: web-02\n"
        f"    inventory:\n      dpkg_status: {status}\n      distro: 'Debian:12'\n"
    )
    code, _, stderr = _run(db, "feeds", "import", str(KEV))
    assert code == 0, stderr
    code, _, stderr = _run(db, "scan", "--fleet", str(fleet))
    assert code == 0, stderr
    code, _, stderr = _run(db, "assets", "set", "web-01", "-c", "5", "--tag", "waf")
    assert code == 0, stderr
    code, _, stderr = _run(db, "assets", "set", "web-01", "-c", "5")  # no change: no entry
    assert code == 0, stderr


def test_use_cases_are_recorded_and_verify(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATCHWARDEN_ACTOR", "ann")
    monkeypatch.delenv("PATCHWARDEN_AUDIT_KEY", raising=False)
    _history(db_url, tmp_path)
    code, stdout, _ = _run(db_url, "audit", "log", "--json")
    assert code == 0
    log = json.loads(stdout)
    assert [(e["seq"], e["action"], e["subject"]) for e in log] == [
        (4, "asset.update", "web-01"),
        (3, "scan", "web-02"),
        (2, "scan", "web-01"),
        (1, "feed.import", str(KEV)),
    ]
    assert {e["actor"] for e in log} == {"ann"}
    update, scan2, _, feed = log
    assert update["details"] == {
        "old": {"criticality": 3, "tags": []},
        "new": {"criticality": 5, "tags": ["waf"]},
    }
    assert scan2["details"]["findings"]["new"] >= 0
    assert scan2["details"]["packages"] > 0
    assert feed["details"]["sha256"] == hashlib.sha256(KEV.read_bytes()).hexdigest()
    assert feed["details"]["kev"] > 0
    code, stdout, _ = _run(db_url, "audit", "log")
    assert code == 0
    assert "asset.update" in stdout

    code, stdout, stderr = _run(db_url, "audit", "verify")
    assert code == 0, stderr
    assert stdout.startswith("ok: 4 entries verified; head 4:")
    head = stdout.split("head ")[1].strip()

    out = tmp_path / "audit.jsonl"
    code, _, stderr = _run(db_url, "audit", "export", "--out", str(out))
    assert code == 0, stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["seq"] for x in lines] == [1, 2, 3, 4]
    assert f"{lines[-1]['seq']}:{lines[-1]['hash']}" == head
    code, stdout, _ = _run(db_url, "audit", "export", "--after", "2")
    assert [json.loads(x)["seq"] for x in stdout.splitlines()] == [3, 4]

    # a rescan appends again, and the old anchor still holds
    code, stdout, stderr = _run(db_url, "audit", "verify", "--expect-head", head, "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["ok"] is True

    engine = sa.create_engine(normalize_url(db_url))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE audit_log SET details = '{}' WHERE seq = 2"))
    finally:
        engine.dispose()
    code, stdout, stderr = _run(db_url, "audit", "verify")
    assert code == 5
    assert "entry 2 was edited" in stderr
    code, stdout, _ = _run(db_url, "audit", "verify", "--json")
    assert code == 5
    assert json.loads(stdout) | {"message": ""} == {
        "ok": False,
        "checked": 1,
        "head": f"1:{lines[0]['hash']}",
        "first_bad": 2,
        "reason": "edited",
        "message": "",
    }


def test_bad_options(tmp_path: Path) -> None:
    db = str(tmp_path / "pw.db")
    code, _, stderr = _run(db, "audit", "verify", "--expect-head", "12:xyz")
    assert code == 2
    assert "--expect-head" in stderr
    code, _, stderr = _run(db, "audit", "export", "--since", "last tuesday")
    assert code == 2
    assert "--since" in stderr
    code, _, stderr = _run(db, "audit", "export", "--out", str(tmp_path / "no" / "x.jsonl"))
    assert code == 2
    assert "cannot write" in stderr
