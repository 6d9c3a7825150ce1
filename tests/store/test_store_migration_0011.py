"""Migration 0011 moves installed packages from link rows to one packed row per asset and back."""

from __future__ import annotations

import sqlalchemy as sa
from tests.pw_testkit import migrate_to

from patchwarden.store import Store, normalize_url

ASSETS = ("db-01", "empty-01", "web-01")
PACKAGES = (  # id, ecosystem, name, version, source name, source version
    (7, "Debian:12", "libssl3", "3.0.11-1~deb12u2", "openssl", "3.0.11-1~deb12u2"),
    (3, "Debian:12", "curl", "7.88.1-10", "curl", "7.88.1-10"),
    (9, "PyPI", "jinja2", "2.10", "", ""),
)
LINKS = (  # asset, package id, location
    ("web-01", 7, "/var/lib/dpkg/status"),
    ("web-01", 3, "/var/lib/dpkg/status"),
    ("web-01", 9, "/srv/app/bom.json#jinja2"),
    ("db-01", 3, None),
)


def test_0011_moves_links_into_packed_rows_and_back(db_url: str) -> None:
    migrate_to(db_url, "0010")
    engine = sa.create_engine(normalize_url(db_url))
    with engine.begin() as conn:
        for asset in ASSETS:
            conn.execute(
                sa.text(
                    "INSERT INTO assets (id, kind, environment, criticality, internet_exposed,"
                    " data_sensitivity, tags, inventory_source, package_count)"
                    " VALUES (:id, 'host', 'prod', 3, false, 1, '[]', 'test', 0)"
                ),
                {"id": asset},
            )
        conn.execute(
            sa.text(
                "INSERT INTO packages (id, ecosystem, name, version, source_name, source_version)"
                " VALUES (:id, :e, :n, :v, :sn, :sv)"
            ),
            [dict(zip(("id", "e", "n", "v", "sn", "sv"), p, strict=True)) for p in PACKAGES],
        )
        conn.execute(
            sa.text("INSERT INTO asset_packages VALUES (:a, :p, :loc)"),
            [{"a": a, "p": p, "loc": loc} for a, p, loc in LINKS],
        )
    engine.dispose()

    store = Store.open(db_url)  # migrates to head
    with store.transaction() as conn:
        rows = {a: store.stored_rows(conn, a) for a in ASSETS}
        tables = sa.inspect(conn).get_table_names()
    assert "asset_packages" not in tables
    assert rows == {
        "db-01": [("Debian:12\tcurl\t7.88.1-10\tcurl\t7.88.1-10", None, None)],
        "empty-01": [],
        "web-01": [
            ("Debian:12\tcurl\t7.88.1-10\tcurl\t7.88.1-10", "/var/lib/dpkg/status", None),
            (
                "Debian:12\tlibssl3\t3.0.11-1~deb12u2\topenssl\t3.0.11-1~deb12u2",
                "/var/lib/dpkg/status",
                None,
            ),
            ("PyPI\tjinja2\t2.10\t\t", "/srv/app/bom.json#jinja2", None),
        ],
    }
    assert store.counts()["installed"] == len(LINKS)
    store.close()

    migrate_to(db_url, "0010", down=True)
    engine = sa.create_engine(normalize_url(db_url))
    with engine.connect() as conn:
        links = conn.execute(sa.text("SELECT asset_id, package_id, location FROM asset_packages"))
        assert sorted(links, key=str) == sorted(LINKS, key=str)
        assert "asset_inventories" not in sa.inspect(conn).get_table_names()
    engine.dispose()
