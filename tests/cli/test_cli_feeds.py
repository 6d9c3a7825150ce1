"""`patchwarden feeds ...` end to end on real data subsets: idempotency, partial imports, errors."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchwarden.cli.main import app
from patchwarden.store import Store

INTEL = Path(__file__).resolve().parents[1] / "data" / "intel"
runner = CliRunner()


def _invoke(db: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--db", str(db), *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "pw.db"


def test_import_is_idempotent(db: Path) -> None:
    paths = [
        str(INTEL / "osv" / "pypa"),
        str(INTEL / "debian" / "DLA-list"),
        str(INTEL / "kev" / "kev-2026.01.29-subset.json"),
        str(INTEL / "epss" / "epss-2026-01-30-first2000.csv.gz"),
    ]
    code, out, err = _invoke(db, "feeds", "import", "--json", *paths)
    assert code == 0, err
    first = json.loads(out)
    assert first["files"][0]["advisories"]["inserted"] > 0
    assert first["files"][2]["kev_changed"] > 0
    assert first["files"][3]["epss_loaded"] == 2000
    store = Store.open(str(db))
    counts = store.counts()
    code, out, err = _invoke(db, "feeds", "import", "--json", *paths)
    assert code == 0, err
    again = json.loads(out)
    for before, after in zip(first["files"], again["files"], strict=True):
        assert after["advisories"]["inserted"] == after["advisories"]["updated"] == 0
        assert after["advisories"]["unchanged"] == before["advisories"]["inserted"]
        assert after["kev_changed"] == 0
    assert store.counts() == counts
    store.close()


def test_truncated_gzip_is_a_clear_error_and_keeps_nothing_of_it(db: Path, tmp_path: Path) -> None:
    data = (INTEL / "epss" / "epss-2026-01-30-first2000.csv.gz").read_bytes()
    broken = tmp_path / "epss_scores-truncated.csv.gz"
    broken.write_bytes(data[: len(data) // 2])
    code, _out, err = _invoke(
        db, "feeds", "import", str(broken), str(INTEL / "kev" / "kev-2026.01.29-subset.json")
    )
    assert code == 3
    assert "epss_scores-truncated.csv.gz" in err
    assert "Traceback" not in err
    store = Store.open(str(db))
    counts = store.counts()
    store.close()
    assert counts["epss"] == 0  # nothing of the broken file
    assert counts["kev"] > 0  # the good file went in


def test_bad_record_is_reported_and_the_rest_imported(db: Path, tmp_path: Path) -> None:
    tree = tmp_path / "osv"
    shutil.copytree(INTEL / "osv" / "pypa", tree)
    good = sum(1 for _ in tree.rglob("*.yaml"))
    (tree / "broken.json").write_text(
        json.dumps(
            {
                "id": "PYSEC-0000-BAD",
                "modified": "2024-01-01T00:00:00Z",
                "affected": [
                    {
                        "package": {"ecosystem": "PyPI", "name": "x"},
                        "ranges": [{"type": "BOGUS", "events": [{"introduced": "0"}]}],
                    }
                ],
            }
        )
    )
    code, out, _err = _invoke(db, "feeds", "import", "--json", str(tree))
    assert code == 3
    report = json.loads(out)
    (problem,) = report["files"][0]["problems"]
    assert "broken.json" in problem
    assert "PYSEC-0000-BAD" in problem
    assert "ranges[0].type" in problem
    assert report["files"][0]["advisories"]["inserted"] == good


def test_missing_path_and_unknown_format_are_usage_errors(db: Path) -> None:
    code, _out, err = _invoke(db, "feeds", "import", "/nonexistent/feed.json")
    assert code == 2
    assert "/nonexistent/feed.json" in err
    code, _out, err = _invoke(db, "feeds", "import", "--format", "nope", str(INTEL))
    assert code == 2
    assert "'nope'" in err


def test_unusable_database_exits_4_without_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "patchwarden", "--db", str(blocker / "sub" / "pw.db"), "assets"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "cannot open database" in proc.stderr


def test_epss_older_than_stored_is_refused(db: Path, tmp_path: Path) -> None:
    src = INTEL / "epss" / "epss-2026-01-30-first2000.csv.gz"
    with gzip.open(src, "rt") as fh:
        lines = fh.read().splitlines()
    older = tmp_path / "older.csv.gz"
    with gzip.open(older, "wt") as fh:
        fh.write("\n".join([lines[0].replace("2026-01-30", "2025-01-30"), *lines[1:10]]) + "\n")
    assert _invoke(db, "feeds", "import", str(src))[0] == 0
    code, out, _err = _invoke(db, "feeds", "import", "--json", str(older))
    assert code == 0
    assert json.loads(out)["files"][0]["notes"]
    store = Store.open(str(db))
    assert store.counts()["epss"] == 2000
    store.close()
