"""A ``store`` fixture that runs each store test on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from patchwarden.store import Store


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A freshly migrated store on each backend of ``db_url``."""
    st = Store.open(db_url)
    try:
        yield st
    finally:
        st.close()
