"""Fixtures for the service tests (tests/api, tests/web), loaded as a pytest plugin by
tests/conftest.py: a database with two scanned assets (prod `shop`, dev `lab`), real PyPA
advisories, users of every role and their API tokens, and the FastAPI app over it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.pw_testkit import write_pypi_bom
from typer.testing import CliRunner

from patchwarden import auth
from patchwarden.api import create_app
from patchwarden.auth import Role
from patchwarden.cli.main import app as cli_app
from patchwarden.policy import Policy, load_policy
from patchwarden.store import Store

PYPA = Path(__file__).resolve().parent / "data" / "e2e" / "pypa"
POLICY = """\
version: 1
windows:
  nightly:
    rrule: "FREQ=DAILY;BYHOUR=2;BYMINUTE=0"
    duration: 2h
    timezone: Europe/Berlin
rings: {canary: 1, pilot: 1, soak: 12h}
gates:
  - name: dev patches
    when: {environment: [dev]}
    decision: auto_approve
"""
ROLES = {"vera": Role.VIEWER, "otto": Role.OPERATOR, "amy": Role.APPROVER, "root": Role.ADMIN}
PASSWORD = "correct horse battery"


@dataclass(frozen=True, slots=True, kw_only=True)
class Env:
    """The prepared database, policy and one token per user."""

    db: str
    policy: Policy
    tokens: dict[str, str]


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Env:
    """Real advisories imported, two SBOMs scanned, four users with tokens (built once)."""
    tmp_path = tmp_path_factory.mktemp("service-template")
    runner = CliRunner()
    db = str(tmp_path / "pw.db")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY)
    assert runner.invoke(cli_app, ["--db", db, "feeds", "import", str(PYPA)]).exit_code == 0
    for name in ("shop", "lab"):
        bom = write_pypi_bom(
            tmp_path / f"{name}.json", name, {"jinja2": "2.10", "urllib3": "1.24.1"}
        )
        assert runner.invoke(cli_app, ["--db", db, "scan", "--sbom", str(bom)]).exit_code == 0
    assert runner.invoke(cli_app, ["--db", db, "assets", "set", "lab", "-e", "dev"]).exit_code == 0
    store = Store.open(db)
    tokens = {}
    try:
        for name, role in ROLES.items():
            auth.create_user(store, name, role, actor="setup", password=PASSWORD)
            tokens[name] = auth.create_token(store, name, actor="setup")[1]
    finally:
        store.close()
    return Env(db=db, policy=load_policy(policy_file), tokens=tokens)


@pytest.fixture
def env(_template: Env, tmp_path: Path) -> Env:
    """A private copy of the prepared database."""
    db = tmp_path / "pw.db"
    shutil.copyfile(_template.db, db)
    return Env(db=str(db), policy=_template.policy, tokens=_template.tokens)


@pytest.fixture
def api(env: Env) -> Iterator[FastAPI]:
    """The app over the prepared database."""
    app = create_app(env.db, env.policy)
    yield app
    app.state.service.store.close()


@pytest.fixture
def client(api: FastAPI) -> Iterator[TestClient]:
    """A test client (no credentials of its own)."""
    with TestClient(api, raise_server_exceptions=False) as c:
        yield c


def bearer(env: Env, user: str) -> dict[str, str]:
    """The Authorization header of ``user``."""
    return {"Authorization": f"Bearer {env.tokens[user]}"}
