"""Migrations 0014 (asset source signatures), 0015 (no findings.vulnerability index) and 0016
(fleet cache), up and down, on SQLite and the real PostgreSQL server, with an asset stored."""

from __future__ import annotations

import sqlalchemy as sa
from tests.pw_testkit import migrate_to

from patchwarden.store import Store, normalize_url


def _state(url: str) -> tuple[set[str], set[str]]:
    """(columns of assets and "fleet_cache" when that table exists, index names of findings)."""
    engine = sa.create_engine(normalize_url(url))
    try:
        inspector = sa.inspect(engine)
        columns = {c["name"] for c in inspector.get_columns("assets")}
        columns |= {"fleet_cache"} & set(inspector.get_table_names())
        indexes = {str(i["name"]) for i in inspector.get_indexes("findings")}
    finally:
        engine.dispose()
    return columns, indexes


def test_0014_and_0015_up_and_down(db_url: str) -> None:
    migrate_to(db_url, "0013")
    engine = sa.create_engine(normalize_url(db_url))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO assets (id, kind, environment, criticality, internet_exposed,"
                " data_sensitivity, tags, inventory_source, inventory_digest, package_count)"
                " VALUES ('web-01', 'host', 'prod', 3, false, 1, '[]', 'dpkg:/s', 'd1', 12)"
            )
        )
    engine.dispose()
    columns, indexes = _state(db_url)
    assert "source_signature" not in columns
    assert "ix_findings_vulnerability" in indexes

    migrate_to(db_url, "head")
    columns, indexes = _state(db_url)
    assert {"source_signature", "unsupported_count", "fleet_cache"} <= columns
    assert "ix_findings_vulnerability" not in indexes
    store = Store.open(db_url)
    try:
        # an asset stored before 0014 has no signature: its files are read once more
        assert store.collected() == {}
        assert store.get_asset("web-01") is not None
    finally:
        store.close()

    migrate_to(db_url, "0013", down=True)
    columns, indexes = _state(db_url)
    assert not {"source_signature", "fleet_cache"} & columns
    assert "ix_findings_vulnerability" in indexes
    migrate_to(db_url, "head")
    assert "ix_findings_vulnerability" not in _state(db_url)[1]
