"""debian-changelog reader: the real openssl changelog (subset and whole .deb), edge rules, bad
input."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from patchwarden.errors import FeedFormatError, Problem
from patchwarden.intel import detect
from patchwarden.intel.debian import DebianListReader
from patchwarden.intel.debian_changelog import (
    DebianChangelogReader,
    read_deb,
)
from patchwarden.model import Advisory, EventKind, RangeType
from patchwarden.versions.dpkg import parse_dpkg

from .conftest import OPENSSL_FIXED, OPENSSL_OLD

DATA = Path(__file__).resolve().parents[1] / "data" / "debian-changelog"
SUBSET = DATA / "openssl" / "changelog.Debian.gz"
SHARED_DSA = Path(__file__).resolve().parents[3] / "shared" / "data" / "debian"

FIXED_AFTER_OLD = {
    # Every CVE id the entries above 3.0.17-1~deb12u2 name, by the entry that names it
    # (read off the real changelog.Debian.gz of openssl 3.0.22-1~deb12u2).
    "3.0.22-1~deb12u2": [
        "CVE-2026-84782",
        "CVE-2026-35189",
        "CVE-2026-54872",
        "CVE-2026-75805",
        "CVE-2026-75806",
        "CVE-2026-77696",
    ],
    "3.0.22-1~deb12u1": [
        "CVE-2026-42767",
        "CVE-2026-54874",
        "CVE-2026-63072",
        "CVE-2026-63074",
        "CVE-2026-63076",
        "CVE-2026-75803",
    ],
    "3.0.20-1~deb12u2": [
        "CVE-2026-7383",
        "CVE-2026-9076",
        "CVE-2026-34180",
        "CVE-2026-34182",
        "CVE-2026-42766",
        "CVE-2026-42770",
        "CVE-2026-45445",
        "CVE-2026-45446",
        "CVE-2026-45447",
    ],
    "3.0.19-1~deb12u2": [
        "CVE-2026-28387",
        "CVE-2026-28389",
        "CVE-2026-28390",
        "CVE-2026-31789",
        "CVE-2026-31790",
        "CVE-2026-28388",
    ],
    "3.0.18-1~deb12u2": [
        "CVE-2025-15467",
        "CVE-2025-68160",
        "CVE-2025-69418",
        "CVE-2025-69419",
        "CVE-2025-69420",
        "CVE-2025-69421",
        "CVE-2026-22795",
        "CVE-2026-22796",
    ],
    "3.0.17-1~deb12u3": ["CVE-2025-9230", "CVE-2025-9232"],
}
EXPECTED_AFTER_OLD = {cve: v for v, cves in FIXED_AFTER_OLD.items() for cve in cves}


def read(path: Path, **options: str) -> tuple[dict[str, Advisory], list[Problem]]:
    advisories: dict[str, Advisory] = {}
    problems: list[Problem] = []
    for record in DebianChangelogReader(**options).read(path):
        if isinstance(record, Advisory):
            assert record.id not in advisories, record.id
            advisories[record.id] = record
        else:
            assert isinstance(record, Problem), record
            problems.append(record)
    return advisories, problems


def fixed_by_cve(advisories: dict[str, Advisory]) -> dict[str, str]:
    out = {}
    for adv in advisories.values():
        (affected,) = adv.affected
        (rng,) = affected.ranges
        assert rng.type is RangeType.ECOSYSTEM
        assert [e.kind for e in rng.events] == [EventKind.INTRODUCED, EventKind.FIXED]
        assert rng.events[0].version == "0"
        (cve,) = adv.aliases
        out[cve] = rng.events[1].version
    return out


def entry(
    version: str, dist: str, *changes: str, date: str = "Fri, 26 Sep 2025 20:59:22 +0200"
) -> str:
    """One changelog entry of a made-up package ``demo``."""
    body = "\n".join(f"  {c}" for c in changes)
    return (
        f"demo ({version}) {dist}; urgency=medium\n\n{body}\n\n"
        f" -- Jane Doe <jane@example.org>  {date}\n\n"
    )


def parse_text(text: str, tmp_path: Path, **options: str) -> tuple[dict[str, str], list[Problem]]:
    path = tmp_path / "changelog.Debian"
    path.write_text(text)
    advisories, problems = read(path, **options)
    return fixed_by_cve(advisories), problems


# --------------------------------------------------------------------------- real data


def test_subset_names_the_fixes_after_the_old_bookworm_version() -> None:
    advisories, problems = read(SUBSET)
    assert problems == []
    fixed = fixed_by_cve(advisories)
    old = parse_dpkg(OPENSSL_OLD)
    newer = {c: v for c, v in fixed.items() if parse_dpkg(v) > old}
    assert newer == EXPECTED_AFTER_OLD
    assert len(newer) == 37
    # The oldest entry naming a CVE is its fix: 3.0.9-1 says "Alternative fix for
    # CVE-2022-4304", first fixed by 3.0.8-1.
    assert fixed["CVE-2022-4304"] == "3.0.8-1"
    assert fixed["CVE-2024-6119"] == "3.0.14-1~deb12u2"
    # 3.0.17-1~deb12u2 and 3.0.13-1~deb12u2 only revert upstream changes: they fix nothing.
    assert OPENSSL_OLD not in fixed.values()
    assert "3.0.13-1~deb12u2" not in fixed.values()
    # 37 above + 3.0.16 1, 3.0.15 2, 3.0.14 1 + 3, 3.0.13 4, 3.0.11 1, 3.0.10 3, 3.0.9 5, 3.0.8 8
    assert len(fixed) == 65


def test_record_shape() -> None:
    advisories, _ = read(SUBSET)
    adv = advisories["debian-changelog:Debian:12:openssl:CVE-2025-9230"]
    assert adv.source == "debian-changelog"
    assert adv.aliases == ("CVE-2025-9230",)
    assert adv.upstream == ()
    when = dt.datetime(2025, 9, 26, 18, 59, 22, tzinfo=dt.UTC)
    assert adv.published == adv.modified == when
    assert adv.affected[0].ecosystem == "Debian:12"
    assert adv.affected[0].name == "openssl"
    assert adv.summary == (
        "openssl 3.0.17-1~deb12u3: CVE-2025-9230 (Out-of-bounds read & write in RFC 3211 "
        "KEK Unwrap)"
    )
    assert adv.references == ("https://snapshot.debian.org/package/openssl/3.0.17-1~deb12u3/",)
    assert adv.database_specific["distribution"] == "bookworm-security"
    assert adv.database_specific["line"] == 105
    assert adv.database_specific["changelog"] == str(SUBSET)


def test_whole_deb_agrees_with_the_subset_and_binaries_name_their_source(
    openssl_fixed_debs: dict[str, Path],
) -> None:
    subset = fixed_by_cve(read(SUBSET)[0])
    for binary, deb in openssl_fixed_debs.items():
        found = read_deb(deb)
        assert (found.binary, found.source, found.version) == (binary, "openssl", OPENSSL_FIXED)
        assert found.path == f"{deb}:/usr/share/doc/{binary}/changelog.Debian.gz"
        advisories, problems = read(deb)
        assert problems == []
        fixed = fixed_by_cve(advisories)
        assert {c: fixed[c] for c in subset} == subset
        # Entries below the subset (the 3.0 line back to the trimmed end at 1.1.1d-1).
        assert fixed["CVE-2022-3602"] == "3.0.7-1"
        assert fixed["CVE-2019-1547"] == "1.1.1d-1"
        assert len(fixed) == 84
        assert all(a.database_specific["binary"] == binary for a in advisories.values())


def test_cross_check_with_the_debian_security_tracker_list(
    openssl_fixed_debs: dict[str, Path],
) -> None:
    """Every CVE the shared DSA list fixed in openssl for bullseye from 2022 on (DSA-5103-1 ..
    DSA-5343-1, the list ends in April 2023, before bookworm) is named by the bookworm
    changelog, fixed in the 3.0 line at or before 3.0.9-1, bookworm's release version. The
    DSA's own fixed versions (1.1.1n-0+deb11uN) are a different upstream branch and release
    (Debian:11), so they cannot be compared with the 3.0.x versions directly."""
    dsas = DebianListReader().read(SHARED_DSA / "security-tracker" / "DSA" / "list")
    wanted: dict[str, str] = {}
    for record in dsas:
        if not isinstance(record, Advisory) or record.database_specific["package"] != "openssl":
            continue
        assert record.published is not None
        if record.published.year >= 2022:
            for cve in record.upstream:
                wanted[cve] = record.id
    assert set(wanted.values()) == {"DSA-5103-1", "DSA-5139-1", "DSA-5169-1", "DSA-5343-1"}
    fixed = fixed_by_cve(read(openssl_fixed_debs["openssl"])[0])
    for cve in wanted:
        assert cve in fixed, cve
        assert parse_dpkg("3.0.1-1") <= parse_dpkg(fixed[cve]) <= parse_dpkg("3.0.9-1"), cve
    assert fixed["CVE-2022-0778"] == "3.0.2-1"
    assert fixed["CVE-2023-0286"] == "3.0.8-1"


# --------------------------------------------------------------------------- rules


def test_revert_and_not_affected_mentions_are_not_fixes(tmp_path: Path) -> None:
    text = (
        entry(
            "1.4-1~deb12u1",
            "bookworm-security",
            '* Revert "Fix CVE-2024-1000" (regressions, see #1234)',
            "* Revert the following changes:",
            "  - CVE-2024-1001 backport",
            "* CVE-2024-1002: drop the patch, this version is not affected.",
            "* CVE-2024-1003 (use after free)",
        )
        + entry("1.3-1", "unstable", "* Fix CVE-2024-1003 and cve-2024-1004.")
        + entry("1.2-1", "unstable", "* Initial release.")
    )
    fixed, problems = parse_text(text, tmp_path)
    assert problems == []
    assert fixed == {"CVE-2024-1003": "1.3-1", "CVE-2024-1004": "1.3-1"}


def test_release_comes_from_the_top_entry_or_the_caller(tmp_path: Path) -> None:
    older = entry("1.0-1", "unstable", "* CVE-2023-0001")
    fixed, _ = parse_text(entry("1.0-1+deb11u1", "bullseye", "* CVE-2023-0002") + older, tmp_path)
    assert fixed == {"CVE-2023-0001": "1.0-1", "CVE-2023-0002": "1.0-1+deb11u1"}
    advisories, _ = read(tmp_path / "changelog.Debian")
    assert {a.affected[0].ecosystem for a in advisories.values()} == {"Debian:11"}
    assert "debian-changelog:Debian:11:demo:CVE-2023-0002" in advisories
    # An unstable upload names no release: an error unless the caller gives one.
    (tmp_path / "changelog.Debian").write_text(older)
    with pytest.raises(FeedFormatError, match=r"cannot tell which release demo 1\.0-1"):
        read(tmp_path / "changelog.Debian")
    advisories, _ = read(tmp_path / "changelog.Debian", release="trixie")
    assert [a.affected[0].ecosystem for a in advisories.values()] == ["Debian:13"]
    with pytest.raises(FeedFormatError, match="unknown release 'sid'"):
        DebianChangelogReader(release="sid")


def test_bad_entries_are_problems_and_lose_only_their_cves(tmp_path: Path) -> None:
    text = (
        entry("2.0-1~deb12u1", "bookworm", "* CVE-2024-2000", "* CVE-2024-2001")
        + entry("1.9-1!", "bookworm", "* CVE-2024-2001 first fix, bad version")
        + entry("1.8-1", "unstable", "* CVE-2024-1800", date="Mon, 32 Foo 2024 99:00:00 +0000")
        + entry("1.7-1", "unstable", "* CVE-2024-1700")
    )
    fixed, problems = parse_text(text, tmp_path)
    # CVE-2024-2001's first fix is in the broken entry: no record rather than a wrong one.
    assert fixed == {"CVE-2024-2000": "2.0-1~deb12u1", "CVE-2024-1700": "1.7-1"}
    by_field = {p.field: p for p in problems if p.field}
    assert by_field["version"].line == 8
    assert "unparsable version '1.9-1!'" in by_field["version"].reason
    assert "no record for CVE-2024-2001" in by_field["version"].reason
    assert by_field["date"].record == "demo (1.8-1)"
    assert "no record for CVE-2024-1800" in by_field["date"].reason
    assert all(p.source == str(tmp_path / "changelog.Debian") for p in problems)


def test_skipped_lines_are_reported(tmp_path: Path) -> None:
    text = entry("1.0-1~deb12u1", "bookworm", "* CVE-2024-0001").replace(
        "\n\n -- Jane", "\nnot indented\n\n -- Jane"
    )
    fixed, problems = parse_text(text, tmp_path)
    assert fixed == {"CVE-2024-0001": "1.0-1~deb12u1"}
    assert len(problems) == 1
    assert "changelog line skipped" in problems[0].reason
    assert "not indented" in problems[0].reason


# --------------------------------------------------------------------------- bad input


def test_garbage_and_empty_changelogs(tmp_path: Path) -> None:
    for content in (b"hello world\nthis is not a changelog\n", b"", b"\x00\xff" * 100):
        path = tmp_path / "changelog.Debian"
        path.write_bytes(content)
        with pytest.raises(FeedFormatError, match="is not a debian changelog"):
            read(path)


def test_truncated_gzip_changelog(tmp_path: Path) -> None:
    broken = tmp_path / "changelog.Debian.gz"
    broken.write_bytes(SUBSET.read_bytes()[:1500])
    with pytest.raises(FeedFormatError, match="broken gzip data"):
        read(broken)


def test_huge_changelog_is_refused(tmp_path: Path) -> None:
    """65 MiB of text that gzip squeezes to about 65 KB (a decompression bomb)."""
    bomb = tmp_path / "changelog.Debian.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as gz:
        gz.write(entry("1.0-1", "bookworm", "* x").encode())
        chunk = b"  " + b"x" * 1022 + b"\n"
        for _ in range(65 * 1024):
            gz.write(chunk)
    assert bomb.stat().st_size < 2_000_000
    with pytest.raises(FeedFormatError, match="larger than 64 MiB uncompressed"):
        read(bomb)


def test_not_an_ar_archive_and_truncated_debs(
    tmp_path: Path, openssl_fixed_debs: dict[str, Path]
) -> None:
    garbage = tmp_path / "garbage.deb"
    garbage.write_bytes(b"PK\x03\x04 this is a zip, not a deb")
    with pytest.raises(FeedFormatError, match=r"garbage\.deb is not a \.deb package: not an ar"):
        read(garbage)
    data = openssl_fixed_debs["openssl"].read_bytes()
    for size in (800_000, 100):
        cut = tmp_path / f"cut-{size}.deb"
        cut.write_bytes(data[:size])
        with pytest.raises(FeedFormatError, match=rf"cut-{size}\.deb.*truncated"):
            read(cut)


def test_huge_deb_is_refused(tmp_path: Path) -> None:
    huge = tmp_path / "huge.deb"
    with huge.open("wb") as fh:  # sparse: no disk used
        fh.write(b"!<arch>\ndebian-binary   ")
        fh.truncate(3 * 1024**3)
    with pytest.raises(FeedFormatError, match="larger than 2 GiB"):
        read(huge)


def _build_deb(root: Path, out: Path, compression: str = "xz") -> Path:
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(root), str(out)],
        check=True,
        capture_output=True,
    )
    return out


def test_deb_without_changelog(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: pw-empty\nVersion: 1.0-1\nArchitecture: all\n"
        "Maintainer: Jane Doe <jane@example.org>\nDescription: nothing\n"
    )
    (root / "usr" / "share" / "doc").mkdir(parents=True)
    (root / "usr" / "share" / "doc" / "pw-empty").symlink_to("pw-other")
    deb = _build_deb(root, tmp_path / "pw-empty_1.0-1_all.deb")
    with pytest.raises(FeedFormatError, match="package pw-empty ships no /usr/share/doc/pw-empty"):
        read(deb)


@pytest.fixture(scope="module")
def zstd_deb(openssl_fixed_debs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real openssl package rebuilt by dpkg-deb with zstd members (as Ubuntu builds them)."""
    tmp = tmp_path_factory.mktemp("zstd")
    subprocess.run(
        ["dpkg-deb", "-R", str(openssl_fixed_debs["openssl"]), str(tmp / "tree")], check=True
    )
    deb = _build_deb(tmp / "tree", tmp / "openssl-zstd.deb", "zstd")
    members = subprocess.run(["ar", "t", str(deb)], check=True, capture_output=True, text=True)
    assert members.stdout.split() == ["debian-binary", "control.tar.zst", "data.tar.zst"]
    return deb


def test_zstd_members(zstd_deb: Path, openssl_fixed_debs: dict[str, Path]) -> None:
    assert fixed_by_cve(read(zstd_deb)[0]) == fixed_by_cve(read(openssl_fixed_debs["openssl"])[0])


def test_zstd_without_unzstd_is_a_clear_error(
    zstd_deb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("unzstd") is None
    with pytest.raises(FeedFormatError, match=r"need the unzstd program: apt-get install zstd"):
        read(zstd_deb)


def test_folder_reports_bad_files_and_keeps_the_oldest_fix(
    tmp_path: Path, openssl_fixed_debs: dict[str, Path]
) -> None:
    folder = tmp_path / "debs"
    folder.mkdir()
    for deb in openssl_fixed_debs.values():
        (folder / deb.name).symlink_to(deb)
    (folder / "broken.deb").write_bytes(b"not a deb")
    nested = folder / "more" / "openssl"
    nested.mkdir(parents=True)
    # An older openssl changelog that says CVE-2026-84782 was already fixed earlier.
    (nested / "changelog.Debian").write_text(
        entry("3.0.16-1~deb12u1", "bookworm", "* CVE-2026-84782").replace("demo", "openssl")
    )
    (folder / "notes.txt").write_text("ignored")
    advisories, problems = read(folder)
    assert len(problems) == 1
    assert problems[0].source == str(folder / "broken.deb")
    assert "not an ar archive" in problems[0].reason
    fixed = fixed_by_cve(advisories)
    assert len(fixed) == 84
    assert fixed["CVE-2026-84782"] == "3.0.16-1~deb12u1"
    assert fixed["CVE-2025-9230"] == "3.0.17-1~deb12u3"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FeedFormatError, match=r"no \.deb or changelog\.Debian files"):
        read(empty)


def test_detection(tmp_path: Path, openssl_fixed_debs: dict[str, Path]) -> None:
    assert detect(openssl_fixed_debs["libssl3"]).name == "debian-changelog"
    assert detect(SUBSET).name == "debian-changelog"
    assert detect(SUBSET.parent).name == "debian-changelog"
    plain = tmp_path / "openssl.changes"
    plain.write_bytes(gzip.decompress(SUBSET.read_bytes()))
    assert detect(plain).name == "debian-changelog"
