"""Bulk helpers for scanning large fleets: compact inventory rows and fast inserts.

An installed package travels through a scan as one tab-joined *line*
``ecosystem\\tname\\tversion\\tsource_name\\tsource_version`` (the columns of the
``packages`` unique key): lines are cheap to hash, to pickle between processes and to map to
package ids, and identical packages on 10,000 hosts share one id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from array import array
from collections.abc import Iterable, Sequence
from itertools import groupby
from typing import Any

from sqlalchemy.engine import Connection

from patchwarden.model import InstalledPackage
from patchwarden.store.schema import UtcDateTime

InventoryRow = tuple[str, str | None, str | None]
"""(line, location, purl) of one distinct installed package."""

_COPY_ROWS = 5_000


def inventory_rows(packages: Iterable[InstalledPackage]) -> list[InventoryRow]:
    """The distinct packages as sorted rows; of duplicates the last one's location/purl wins.

    >>> pkg = InstalledPackage(ecosystem="PyPI", name="jinja2", version="2.10", location="/a")
    >>> inventory_rows([pkg, pkg])
    [('PyPI\\tjinja2\\t2.10\\t\\t', '/a', None)]
    """
    by_key: dict[tuple[str, str, str, str, str], InstalledPackage] = {}
    for p in packages:
        by_key[(p.ecosystem, p.name, p.version, p.source_name or "", p.source_version or "")] = p
    return [("\t".join(key), p.location, p.purl) for key, p in sorted(by_key.items())]


def inventory_digest(lines: Sequence[str], distro: str | None) -> str:
    """The digest stored per asset: equal digests mean an unchanged inventory.

    >>> inventory_digest([], None)[:12]
    'a59779fbfbb3'
    """
    return hashlib.sha256("\n".join(lines).encode() + f"\n{distro}".encode()).hexdigest()


def insert_many(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert plain tuples through the driver: ``executemany`` on SQLite, ``COPY`` on PostgreSQL.

    SQLAlchemy's per-row parameter processing costs more than the insert itself at millions
    of rows, so the columns must be plain (str, int, float, None) values.
    """
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for start in range(0, len(rows), _COPY_ROWS):
                for row in rows[start : start + _COPY_ROWS]:
                    copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", list(rows))


def db_time(conn: Connection, value: dt.datetime) -> Any:
    """``value`` as the driver takes it for a :class:`UtcDateTime` column in a raw insert.

    SQLite stores naive UTC text in SQLAlchemy's format, PostgreSQL an aware timestamp.
    """
    process = UtcDateTime().dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return value if process is None else process(value)


def pack_ids(ids: Iterable[int]) -> bytes:
    """Package ids as one blob of little-endian signed 64-bit integers (one compact row).

    >>> pack_ids([1, 258])
    b'\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x01\\x00\\x00\\x00\\x00\\x00\\x00'
    >>> unpack_ids(pack_ids([1, 258, 2**40]))
    [1, 258, 1099511627776]
    """
    packed = array("q", ids)
    if sys.byteorder == "big":  # pragma: no cover - the stored form is little-endian
        packed.byteswap()
    return packed.tobytes()


def unpack_ids(blob: bytes) -> list[int]:
    """The ids :func:`pack_ids` packed."""
    if len(blob) % 8:
        raise ValueError(f"a packed id list has a multiple of 8 bytes, got {len(blob)}")
    packed = array("q")
    packed.frombytes(blob)
    if sys.byteorder == "big":  # pragma: no cover
        packed.byteswap()
    return packed.tolist()


def runs(values: Iterable[str | None]) -> list[list[Any]]:
    """Run-length form ``[[value, count], ...]`` of a sequence (a host's row locations).

    >>> runs(["/s", "/s", "/s", None, "/b#1"])
    [['/s', 3], [None, 1], ['/b#1', 1]]
    >>> expand_runs(runs(["/s", "/s", None]))
    ['/s', '/s', None]
    """
    return [[value, sum(1 for _ in group)] for value, group in groupby(values)]


def expand_runs(encoded: Sequence[Sequence[Any]]) -> list[str | None]:
    """The sequence :func:`runs` encoded."""
    out: list[str | None] = []
    for value, count in encoded:
        out.extend([value] * int(count))
    return out
