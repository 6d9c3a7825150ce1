"""The kept advisory digest: the same as computing it, cleared by imports, and never trusted
when the tables changed behind its back."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import sqlalchemy as sa

from patchwarden.service import import_feeds
from patchwarden.store import Store
from patchwarden.store import schema as t

T0 = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)


def _osv(folder: Path, vid: str, fixed: str, modified: str = "2024-01-01T00:00:00Z") -> Path:
    """One real-shaped OSV record (PyPA style) in its own file."""
    path = folder / f"{vid}.json"
    path.write_text(
        json.dumps(
            {
                "id": vid,
                "modified": modified,
                "aliases": [f"CVE-{vid[-4:]}-0001"],
                "affected": [
                    {
                        "package": {"ecosystem": "PyPI", "name": "jinja2"},
                        "ranges": [
                            {
                                "type": "ECOSYSTEM",
                                "events": [{"introduced": "0"}, {"fixed": fixed}],
                            }
                        ],
                    }
                ],
            }
        )
    )
    return path


def _digest(store: Store) -> tuple[str, str]:
    """(the digest the store answers, the digest computed from the tables)."""
    with store.transaction() as conn:
        return store.advisory_digest(conn), store._compute_advisory_digest(conn)


def test_kept_digest_follows_imports(store: Store, tmp_path: Path) -> None:
    assert not import_feeds(store, [_osv(tmp_path, "PYSEC-2024-1111", "2.11.3")], now=T0).failed
    first, computed = _digest(store)
    assert first == computed
    with store.transaction() as conn:  # kept, with the fingerprint it was made from
        kept = conn.execute(sa.select(t.advisory_state.c.digest)).scalar_one()
    assert kept == first

    # an import of the same record changes nothing; a newer one changes the digest
    assert not import_feeds(store, [_osv(tmp_path, "PYSEC-2024-1111", "2.11.3")], now=T0).failed
    assert _digest(store) == (first, first)
    newer = _osv(tmp_path, "PYSEC-2024-1111", "2.11.4", modified="2024-02-01T00:00:00Z")
    assert not import_feeds(store, [newer], now=T0 + dt.timedelta(1)).failed
    second, computed = _digest(store)
    assert second == computed != first


def test_kept_digest_is_used_only_while_the_tables_match(store: Store, tmp_path: Path) -> None:
    assert not import_feeds(store, [_osv(tmp_path, "PYSEC-2024-2222", "3.0")], now=T0).failed
    real, _ = _digest(store)
    with store.transaction() as conn:
        conn.execute(sa.update(t.advisory_state).values(digest="kept"))
    assert _digest(store)[0] == "kept"  # the kept value is what a scan uses
    with store.transaction() as conn:  # a write that did not clear it: another alias row
        conn.execute(
            sa.insert(t.vulnerability_ids).values(id="GHSA-xxxx-yyyy-zzzz", vulnerability="X")
        )
    answered, computed = _digest(store)
    assert answered == computed != real
