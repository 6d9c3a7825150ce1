"""``rollout restarts``: list pending restarts; ``--check`` reports per asset why it could not."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import socket
from pathlib import Path

from tests.pw_testkit import add_pending_restart
from typer.testing import CliRunner

from patchwarden.cli.main import app
from patchwarden.inventory.fleet import Connection
from patchwarden.store import Store
from patchwarden.store import schema as t

runner = CliRunner()
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _store_with_pending(db: Path, assets: dict[str, Connection | None]) -> None:
    store = Store.open(str(db))
    try:
        for name, connection in assets.items():
            add_pending_restart(store, name, T0, T1)
            if connection is not None:
                with store.transaction() as conn:
                    conn.execute(
                        t.rollout_hosts.insert().values(
                            asset_id=name,
                            connection=dataclasses.asdict(connection),
                            source="fleet.yaml",
                            updated_at=T1,
                        )
                    )
    finally:
        store.close()


def test_lists_pending_and_check_names_each_asset_that_could_not_be_checked(
    tmp_path: Path,
) -> None:
    db = tmp_path / "pw.db"
    port = _unused_port()
    _store_with_pending(
        db,
        {
            "web-01": Connection(host="127.0.0.1", port=port, known_hosts=str(tmp_path / "kh")),
            "web-02": None,
        },
    )
    env = {"PATCHWARDEN_DB": str(db), "PATCHWARDEN_ACTOR": "alice"}

    listed = runner.invoke(app, ["rollout", "restarts", "--json"], env=env)
    assert listed.exit_code == 1, listed.output  # old code still runs somewhere
    pending = json.loads(listed.stdout)["pending"]
    assert [(p["asset"], p["vulnerability"], p["units"]) for p in pending] == [
        ("web-01", "CVE-2099-1", ["demo.service"]),
        ("web-02", "CVE-2099-1", ["demo.service"]),
    ]

    checked = runner.invoke(app, ["rollout", "restarts", "--check", "--json"], env=env)
    assert checked.exit_code == 3, checked.output  # a check could not run
    rows = {r["asset"]: r for r in json.loads(checked.stdout)["checks"]}
    assert rows["web-01"]["state"] == "error"
    assert rows["web-01"]["message"].startswith("restart check unreachable")
    assert rows["web-02"]["state"] == "error"
    assert rows["web-02"]["message"].startswith("no connection: block for this asset")
    assert len(json.loads(checked.stdout)["pending"]) == 2  # nothing cleared

    text = runner.invoke(app, ["rollout", "restarts", "--check", "--asset", "web-02"], env=env)
    assert text.exit_code == 3
    assert "web-02: no connection: block for this asset" in text.output
    assert "web-01" not in text.output
    assert "Traceback" not in text.output

    bad = runner.invoke(app, ["rollout", "restarts", "--check", "--backend", "telnet"], env=env)
    assert bad.exit_code == 2
    assert "unknown backend 'telnet'" in bad.output


def test_nothing_pending_exits_zero(tmp_path: Path) -> None:
    env = {"PATCHWARDEN_DB": str(tmp_path / "pw.db")}
    result = runner.invoke(app, ["rollout", "restarts", "--check"], env=env)
    assert result.exit_code == 0, result.output
    assert "no pending restarts" in result.stdout
