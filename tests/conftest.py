"""Shared fixtures: paths to test data, and database URLs for SQLite and the real PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from patchwarden.store import Store

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DATA = TESTS / "data"
SHARED_DATA = REPO.parent / "shared" / "data"
"""The workplace's real public data (../shared/data); tests copy small subsets into tests/data."""

pytest_plugins = ["service_fixtures", "ssh_fixtures", "debian_hosts"]
"""Fixture plugins (tests/ is on pytest's ``pythonpath``): the service fixtures of tests/api and
tests/web; the private sshd and test hosts of tests/execute, tests/rollout and others; the
debootstrap'd Debian test hosts reached over SSH (cached under ~/.cache/patchwarden-tests)."""

PG_URL = os.environ.get("PATCHWARDEN_TEST_PG", "postgresql://127.0.0.1:5432/test")
"""The PostgreSQL server the tests use (trust auth on the CI machines)."""


@pytest.fixture
def data() -> Path:
    """The tests' own data folder (``tests/data``); each subset's README names its source."""
    return DATA


def _pg_unavailable() -> str | None:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"no PostgreSQL server answers at {PG_URL}: {exc}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL: a fresh SQLite file, or a private schema in the real PostgreSQL.

    PostgreSQL tests skip with the reason only when no server answers, and fail instead
    under CI (``CI=true``), where the server must be there.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pw.db'}"
        return
    reason = _pg_unavailable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    schema = f"pw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A freshly migrated store on each backend of ``db_url`` (a folder's conftest may give
    its own)."""
    st = Store.open(db_url)
    try:
        yield st
    finally:
        st.close()
