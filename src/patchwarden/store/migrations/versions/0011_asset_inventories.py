"""asset_inventories: one packed row per asset instead of one link row per installed package

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 09:00:00

Issue 8: 10,000 hosts x 1,500 packages were 15 million ``asset_packages`` rows; writing them
dominated a fleet scan. Each asset's inventory is now one ``asset_inventories`` row: its
package ids (in inventory-row order, i.e. sorted by the package's tab-joined line) packed as
little-endian int64 values, and its rows' locations as ``[[location, count], ...]`` runs.
The data of ``asset_packages`` is moved (every asset gets a row, an empty one when it had no
packages); the downgrade moves it back.
"""

from __future__ import annotations

import itertools
import json
import struct
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_BATCH = 1_000


def _pack(ids: list[int]) -> bytes:
    return struct.pack(f"<{len(ids)}q", *ids)


def _unpack(blob: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(blob) // 8}q", blob))


def upgrade() -> None:
    inventories = op.create_table(
        "asset_inventories",
        sa.Column("asset_id", sa.String(length=255), nullable=False),
        sa.Column("package_ids", sa.LargeBinary(), nullable=False),
        sa.Column("locations", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_asset_inventories_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("asset_id", name=op.f("pk_asset_inventories")),
    )
    conn = op.get_bind()
    rows: dict[str, list[tuple[str, int, str | None]]] = defaultdict(list)
    for r in conn.execute(
        sa.text(
            "SELECT ap.asset_id, ap.package_id, ap.location, p.ecosystem, p.name, p.version,"
            " p.source_name, p.source_version"
            " FROM asset_packages ap JOIN packages p ON p.id = ap.package_id"
        )
    ):
        rows[r[0]].append(("\t".join(r[3:8]), int(r[1]), r[2]))
    assets = [r[0] for r in conn.execute(sa.text("SELECT id FROM assets ORDER BY id"))]
    out: list[dict[str, Any]] = []
    for asset_id in assets:
        ordered = sorted(rows.get(asset_id, ()))
        out.append(
            {
                "asset_id": asset_id,
                "package_ids": _pack([pid for _, pid, _ in ordered]),
                "locations": [
                    [loc, sum(1 for _ in group)]
                    for loc, group in itertools.groupby(loc for _, _, loc in ordered)
                ],
            }
        )
        if len(out) >= _BATCH:
            op.bulk_insert(inventories, out)
            out = []
    if out:
        op.bulk_insert(inventories, out)
    op.drop_table("asset_packages")


def downgrade() -> None:
    links = op.create_table(
        "asset_packages",
        sa.Column("asset_id", sa.String(length=255), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("location", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_asset_packages_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["package_id"], ["packages.id"], name=op.f("fk_asset_packages_package_id_packages")
        ),
        sa.PrimaryKeyConstraint("asset_id", "package_id", name=op.f("pk_asset_packages")),
    )
    conn = op.get_bind()
    out: list[dict[str, Any]] = []
    for asset_id, blob, locations in conn.execute(
        sa.text("SELECT asset_id, package_ids, locations FROM asset_inventories")
    ):
        if isinstance(locations, str):  # SQLite returns the JSON text through sa.text
            locations = json.loads(locations)
        expanded = [loc for loc, count in locations for _ in range(int(count))]
        for pid, loc in zip(_unpack(bytes(blob)), expanded, strict=True):
            out.append({"asset_id": asset_id, "package_id": pid, "location": loc})
    for start in range(0, len(out), 10_000):
        op.bulk_insert(links, out[start : start + 10_000])
    op.drop_table("asset_inventories")
