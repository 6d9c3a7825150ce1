"""The fleet file: loading, defaults, and every problem reported with its line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from patchwarden.errors import FleetFileError
from patchwarden.inventory.fleet import load_fleet
from patchwarden.model import AssetKind, Environment

DATA = Path(__file__).resolve().parents[1] / "data" / "inventory"
FLEET = DATA / "fleet" / "fleet.yaml"


def test_load_valid_fleet() -> None:
    fleet = load_fleet(FLEET)
    assert [fa.asset.id for fa in fleet.assets] == [
        "web-01",
        "alpine-runner",
        "rocky-db",
        "frontend",
        "orders-image",
    ]
    web = fleet.assets[0]
    assert web.line == 6
    assert web.asset.criticality == 4
    assert web.asset.internet_exposed is True
    assert web.asset.tags == ("waf",)
    assert web.asset.owner == "team-web"  # the asset wins over defaults
    assert web.asset.maintenance_window == "sun-night"
    assert web.sources.root == (DATA / "debian12-root").resolve()
    runner = fleet.assets[1]
    assert (runner.asset.kind, runner.asset.environment) == (AssetKind.IMAGE, Environment.STAGING)
    assert runner.asset.owner == "team-ops"  # from defaults
    assert runner.asset.criticality == 3  # model default
    rocky = fleet.assets[2]
    assert rocky.sources.rpm_list == (DATA / "rocky9-rpm-qa.tsv").resolve()
    assert rocky.sources.distro == "Rocky Linux:9"


def _load(tmp_path: Path, text: str) -> FleetFileError:
    (tmp_path / "roots" / "web-01").mkdir(parents=True)
    (tmp_path / "status").write_text("")
    path = tmp_path / "fleet.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    with pytest.raises(FleetFileError) as info:
        load_fleet(path)
    return info.value


def test_every_problem_has_line_and_field(tmp_path: Path) -> None:
    error = _load(
        tmp_path,
        """
        defaults:
          environment: production
        assets:
          - name: web-01
            criticality: 7
            internet_exposed: "yes"
            colour: blue
            inventory:
              root: roots/web-01
          - name: web-01
            inventory:
              dpkg_status: status
              rpm_lst: x
          - name: db-01
            tags: waf
            inventory:
              python: missing/bin/python
              distro: "Plan9:4"
          - kind: host
            inventory: {root: roots/web-01}
          - name: empty
            inventory: {}
        """,
    )
    got = [(p.line, p.field, p.record) for p in error.problems]
    assert got == [
        (2, "defaults.environment", None),
        (5, "assets[0].criticality", "web-01"),
        (6, "assets[0].internet_exposed", "web-01"),
        (7, "assets[0].colour", "web-01"),
        (10, "assets[1].name", "web-01"),
        (13, "assets[1].inventory.rpm_lst", "web-01"),
        (15, "assets[2].tags", "db-01"),
        # The inventory part of db-01 is well-formed, so its paths are still checked.
        (17, "assets[2].inventory.python", "db-01"),
        (18, "assets[2].inventory.distro", "db-01"),
        (19, "assets[3].name", None),
        (22, "assets[4].inventory", "empty"),
    ]
    text = str(error)
    assert "11 problem(s)" in text
    assert f"{tmp_path / 'fleet.yaml'}:5, record 'web-01', field 'assets[0].criticality'" in text
    assert "input should be less than or equal to 5, got 7" in text
    assert "field 'assets[0].colour': unknown field" in text
    assert "field 'assets[3].name': required field is missing" in text
    assert "needs at least one source" in text


def test_semantic_problems(tmp_path: Path) -> None:
    error = _load(
        tmp_path,
        """
        assets:
          - name: web-01
            inventory:
              root: roots/web-01
          - name: web-01
            inventory:
              dpkg_status: status
          - name: db-01
            inventory:
              python: missing/bin/python
              distro: "Plan9:4"
          - name: db-02
            inventory:
              root: status
              sbom: roots
              distro: PyPI
        """,
    )
    got = [(p.line, p.field, p.reason.split(" (")[0].split(":")[0]) for p in error.problems]
    assert got == [
        (5, "assets[1].name", "duplicate asset name 'web-01'"),
        (10, "assets[2].inventory.python", "no such file or folder"),
        (11, "assets[2].inventory.distro", "unknown distro ecosystem 'Plan9"),
        (14, "assets[3].inventory.root", "a filesystem root must be a folder"),
        (15, "assets[3].inventory.sbom", "must be a file, not a folder"),
        (16, "assets[3].inventory.distro", "'PyPI' is not an OS ecosystem"),
    ]
    assert "(first at line 2)" in error.problems[0].reason


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    error = _load(tmp_path, "assets:\n  - name: a\n    inventory: [unclosed\n")
    [problem] = error.problems
    assert problem.line == 4
    assert problem.reason.startswith("invalid yaml")


def test_duplicate_yaml_key_and_top_level(tmp_path: Path) -> None:
    error = _load(
        tmp_path,
        """
        asets: []
        assets:
          - name: a
            name: b
            inventory: {root: roots/web-01}
        """,
    )
    got = [(p.line, p.field) for p in error.problems]
    assert got == [(1, "asets"), (4, "name")]
    assert "duplicate key 'name' (first at line 3)" in str(error)


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "assets: 5\n"])
def test_wrong_shape(tmp_path: Path, text: str) -> None:
    error = _load(tmp_path, text)
    assert len(error.problems) == 1
