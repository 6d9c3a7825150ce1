"""load_fleet with the store as its cache: a fleet file loaded before is not parsed again,
and anything wrong since (a missing inventory file, a corrupt cache row) is reported as a
fresh load reports it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

import patchwarden.inventory.fleet as fleet_module
from patchwarden.errors import FleetFileError
from patchwarden.inventory.fleet import load_fleet
from patchwarden.store import Store
from patchwarden.store import schema as t


def _fleet(folder: Path, count: int = 3, extra: str = "") -> Path:
    lines = ["defaults:", "  owner: team-ops", "assets:"]
    for i in range(count):
        status = folder / f"h{i}.status"
        status.write_text("Package: a\nStatus: install ok installed\nVersion: 1\n")
        lines += [
            f"  - name: h{i}",
            "    tags: [waf]",
            "    inventory:",
            f"      dpkg_status: h{i}.status",
            "      distro: 'Debian:12'",
        ]
    path = folder / "fleet.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def _no_yaml(path: Path, **_: object) -> None:
    raise AssertionError(f"{path} was parsed again")


def test_a_fleet_file_loaded_before_is_not_parsed_again(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _fleet(tmp_path)
    first = load_fleet(path, cache=store)
    monkeypatch.setattr(fleet_module, "load_yaml", _no_yaml)
    again = load_fleet(path, cache=store)
    assert again == first
    assert [fa.line for fa in again.assets] == [4, 9, 14]
    assert again.assets[0].asset.owner == "team-ops"
    # other bytes are parsed (and would fail here)
    path.write_text(path.read_text() + "# a comment\n")
    with pytest.raises(AssertionError, match="parsed again"):
        load_fleet(path, cache=store)


def test_a_missing_inventory_file_is_reported_with_its_line(store: Store, tmp_path: Path) -> None:
    path = _fleet(tmp_path)
    load_fleet(path, cache=store)
    (tmp_path / "h1.status").unlink()
    with pytest.raises(FleetFileError) as err:
        load_fleet(path, cache=store)
    assert "fleet.yaml:12," in str(err.value)
    assert "h1.status" in str(err.value)


def test_a_corrupt_cache_row_is_ignored(store: Store, tmp_path: Path) -> None:
    path = _fleet(tmp_path)
    first = load_fleet(path, cache=store)
    with store.transaction() as conn:
        assert conn.execute(sa.update(t.fleet_cache).values(data="{not json")).rowcount == 1
    assert load_fleet(path, cache=store) == first
    with store.transaction() as conn:  # parsed again and kept again
        assert conn.execute(sa.select(t.fleet_cache.c.data)).scalar_one().startswith('{"data"')


def test_the_latest_four_fleet_files_are_kept(store: Store, tmp_path: Path) -> None:
    path = _fleet(tmp_path)
    digests = []
    for n in range(6):
        path.write_text(path.read_text() + f"# version {n}\n")
        load_fleet(path, cache=store)
        digests.append(path.read_bytes())
    with store.transaction() as conn:
        kept = conn.execute(sa.select(sa.func.count()).select_from(t.fleet_cache)).scalar_one()
    assert kept == 4
    salt = fleet_module._cache_salt().encode()
    assert store.fleet_data(hashlib.sha256(salt + digests[-1]).hexdigest()) is not None
    assert store.fleet_data(hashlib.sha256(salt + digests[0]).hexdigest()) is None
