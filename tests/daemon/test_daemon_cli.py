"""``patchwarden daemon --once`` end to end: sync from a loopback server, rescan a fleet,
re-score, re-plan, and the rollout step; a second run of the same cycle does nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from patchwarden.cli.main import app
from patchwarden.daemon import JobQueue
from patchwarden.store import Store
from patchwarden.store import schema as t


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path, data: Path) -> Iterator[str]:
    """tests/data/sync served as static files on 127.0.0.1 (NVD: one page, no paging)."""
    root = tmp_path / "www"
    root.mkdir()
    sync = data / "sync"
    for name in ("kev-2025.08.25-subset.json", "epss-2026-01-30-subset.csv.gz"):
        (root / name).write_bytes((sync / name).read_bytes())
    (root / "PyPI").mkdir()
    (root / "PyPI" / "all.zip").write_bytes((sync / "osv-PyPI-all.zip").read_bytes())
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_daemon_once_runs_each_step_once(
    db_url: str, served: str, data: Path, tmp_path: Path
) -> None:
    args = [
        "--db",
        db_url,
        "daemon",
        "--once",
        "--fleet",
        str(data / "sync" / "fleet" / "fleet.yaml"),
        "--interval",
        "1d",
        "--poll",
        "0.05",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--source",
        f"kev={served}/kev-2025.08.25-subset.json",
        "--source",
        f"epss={served}/epss-2026-01-30-subset.csv.gz",
        "--source",
        f"osv-PyPI={served}/PyPI/all.zip",
        "--only",
        "kev",
        "--only",
        "epss",
        "--only",
        "osv-PyPI",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    store = Store.open(db_url)
    try:
        rows = JobQueue(store).jobs()
        assert [r["step"] for r in rows] == ["sync", "scan", "score", "plan", "rollout"]
        assert {r["state"] for r in rows} == {"done"}
        assert {r["attempts"] for r in rows} == {1}
        by_step = {r["step"]: r["result"] for r in rows}
        assert {v["outcome"] for v in by_step["sync"].values()} == {"updated"}
        assert by_step["scan"]["assets"] == 1
        assert by_step["scan"]["new"] > 0  # Django 4.2 and tornado 6.3.1 are vulnerable
        assert by_step["score"]["active"] == by_step["scan"]["new"]
        with store.engine.connect() as conn:
            (plan,) = list(conn.execute(sa.select(t.plans.c.id, t.plans.c.created_by)))
        # no gate auto-approves here, so nothing is due for the rollout step
        assert by_step["rollout"] == {"plan": plan.id, "due": 0}
        assert plan.created_by == f"daemon:{rows[3]['id']}"

        # The same cycle again: nothing is run twice.
        again = CliRunner().invoke(app, args)
        assert again.exit_code == 0, again.output
        assert "started" not in again.output
        assert [r["attempts"] for r in JobQueue(store).jobs()] == [1] * 5
        with store.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(t.plans)).scalar() == 1
    finally:
        store.close()


def test_feeds_sync_cli_reports_kept_data(served: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'pw.db'}"
    base = ["--db", db, "feeds", "sync", "--cache-dir", str(tmp_path / "c"), "--json"]
    ok = CliRunner().invoke(
        app, [*base, "--source", f"kev={served}/kev-2025.08.25-subset.json", "--only", "kev"]
    )
    assert ok.exit_code == 0, ok.output
    assert '"outcome": "updated"' in ok.output
    gone = CliRunner().invoke(
        app, [*base, "--source", f"kev={served}/missing.json", "--only", "kev"]
    )
    assert gone.exit_code == 3
    assert "404" in gone.output
    assert "kept the previous data" in gone.output
    bad = CliRunner().invoke(app, [*base, "--source", "kev=ftp://x", "--only", "kev"])
    assert bad.exit_code == 2
    assert "not http(s)" in bad.output
