"""Audit tests run on SQLite and on the real PostgreSQL server (``db_url``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from patchwarden.store import Store


@pytest.fixture
def store(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A freshly migrated store; no HMAC key and a fixed actor unless a test sets them."""
    monkeypatch.delenv("PATCHWARDEN_AUDIT_KEY", raising=False)
    monkeypatch.setenv("PATCHWARDEN_ACTOR", "tester")
    st = Store.open(db_url)
    try:
        yield st
    finally:
        st.close()
