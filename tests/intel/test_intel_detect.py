"""Format detection and the reader registry."""

from __future__ import annotations

import gzip
import shutil
import zipfile
from pathlib import Path

import pytest

from patchwarden.errors import FeedFormatError
from patchwarden.intel import READERS, detect

DATA = Path(__file__).resolve().parents[1] / "data" / "intel"


def test_registry_names() -> None:
    assert sorted(READERS) == sorted(
        [
            "osv",
            "debian-list",
            "debian-json",
            "alpine-secdb",
            "kev",
            "epss",
            "ubuntu-oval",
            "csaf",
            "debian-changelog",
        ]
    )
    assert all(cls.name == name for name, cls in READERS.items())


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("osv/pypa", "osv"),
        ("osv/pypa/redis/PYSEC-2023-73.yaml", "osv"),
        ("debian/DSA-list", "debian-list"),
        ("debian/DLA-list", "debian-list"),
        ("debian/tracker-dump.json", "debian-json"),
        ("alpine/v3.19-main.json", "alpine-secdb"),
        ("kev/kev-2026.01.29-subset.json", "kev"),
        ("epss/epss-2026-01-30-first2000.csv.gz", "epss"),
    ],
)
def test_detect_real_files(relative: str, expected: str) -> None:
    assert detect(DATA / relative).name == expected


def test_detect_by_name_zip_plain_csv_and_osv_json(tmp_path: Path) -> None:
    listing = tmp_path / "list"
    shutil.copyfile(DATA / "debian" / "DLA-list", listing)
    assert detect(listing).name == "debian-list"
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("X.json", "{}")
    assert detect(archive).name == "osv"
    csv = tmp_path / "scores.csv"
    with gzip.open(DATA / "epss" / "epss-2026-01-30-first2000.csv.gz", "rb") as fh:
        csv.write_bytes(fh.read())
    assert detect(csv).name == "epss"
    osv = tmp_path / "GHSA-x.json"
    osv.write_text('{"id": "GHSA-x", "modified": "2024-01-01T00:00:00Z"}')
    assert detect(osv).name == "osv"


def test_detect_unknown_names_file_and_formats(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(FeedFormatError) as info:
        detect(path)
    message = str(info.value)
    assert str(path) in message
    for name in READERS:
        assert name in message
    with pytest.raises(FeedFormatError, match="no such file"):
        detect(tmp_path / "missing.json")
