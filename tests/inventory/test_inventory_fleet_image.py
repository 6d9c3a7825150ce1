"""The fleet file's ``image:`` source: a docker-save tarball or OCI layout, scanned."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from tests.images import imagekit

from patchwarden.errors import FleetFileError
from patchwarden.inventory import collect_fleet_asset
from patchwarden.inventory.fleet import load_fleet
from patchwarden.inventory.oci import scan_image
from patchwarden.model import AssetKind


def _fleet(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(textwrap.dedent(body).lstrip())
    return path


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_image_source_is_scanned(tmp_path: Path, fmt: str) -> None:
    image = imagekit.app_image()
    if fmt == "docker":
        imagekit.write_docker_archive(image, tmp_path / "app.tar")
        ref = "app.tar"
    else:
        imagekit.write_oci_layout(image, tmp_path / "app-oci")
        ref = "app-oci"
    fleet = load_fleet(
        _fleet(
            tmp_path,
            f"""
            assets:
              - name: app
                kind: image
                service: shop/app
                inventory:
                  image: {ref}
            """,
        )
    )
    (fa,) = fleet.assets
    assert fa.sources.image == (tmp_path / ref).resolve()
    inv = collect_fleet_asset(fa)
    direct = scan_image(tmp_path / ref)
    assert inv.asset is fa.asset
    assert inv.asset.kind is AssetKind.IMAGE
    assert inv.distro == "Debian:12"
    assert set(inv.packages) == set(direct.inventory.packages)
    names = {p.name for p in inv.packages}
    assert {"curl", "libssl3", "jinja2"} <= {n.lower() for n in names}
    assert "python3-yaml" not in names  # removed in the top layer
    assert inv.source.startswith(f"image:{(tmp_path / ref).resolve()}@sha256:")


def test_image_source_must_be_an_image(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a tar\n")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FleetFileError) as info:
        load_fleet(
            _fleet(
                tmp_path,
                """
                assets:
                  - name: a
                    inventory:
                      image: notes.txt
                  - name: b
                    inventory:
                      image: empty
                  - name: c
                    inventory:
                      image: missing.tar
                """,
            )
        )
    got = [(p.line, p.field, p.reason.split(":")[0]) for p in info.value.problems]
    assert got == [
        (4, "assets[0].inventory.image", "not an image"),
        (7, "assets[1].inventory.image", "not an image"),
        (10, "assets[2].inventory.image", "no such file or folder"),
    ]
