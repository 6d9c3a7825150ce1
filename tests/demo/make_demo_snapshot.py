"""Rebuild ``src/patchwarden/demo/data`` from the shared real data (run by hand, not by pytest).

Usage::

    .venv/bin/python tests/demo/make_demo_snapshot.py [SHARED_DATA_DIR]

Every output is a subset of one shared file, copied verbatim where the format allows it
(whole OSV files, whole DSA/DLA entries, whole secdb package entries, whole KEV objects,
whole EPSS rows); ``SOURCES.md`` says what was selected and how.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "src" / "patchwarden" / "demo" / "data"

OSV_PACKAGES = (
    "certifi",
    "django",
    "flask",
    "gunicorn",
    "idna",
    "jinja2",
    "pyyaml",
    "requests",
    "sqlparse",
    "urllib3",
    "werkzeug",
)
"""PyPA folders copied whole, except django (records PYSEC-2020-* and later only)."""
DJANGO_FIRST_YEAR = 2020
LICENSES = {
    "LICENSE.pypa-advisory-database.txt": "osv/pypi/LICENSE.source",
    "LICENSE.cisa-kev.txt": "kev/LICENSE.source",
}
"""License texts copied beside the data (relative to the shared data folder)."""

DEBIAN_SOURCES = {
    "adduser",
    "apache2",
    "coreutils",
    "curl",
    "exim4",
    "glibc",
    "libxml2",
    "openssl",
    "policykit-1",
    "redis",
    "sudo",
    "zlib",
}
"""Debian source packages installed on the sample fleet's Debian hosts."""
DEBIAN_RELEASES = {"bullseye", "buster"}

ALPINE_ORIGINS = {"apk-tools", "busybox", "curl", "musl", "nghttp2", "nginx", "openssl", "zlib"}
"""Alpine origin (source) packages installed in the sample fleet's Alpine image."""

_HEADER = re.compile(r"^\[[^\]]*\]\s+D[SL]A-")
_RELEASE_LINE = re.compile(r"^\s+\[(?P<release>[^\]\s]+)\]\s+-\s+(?P<package>\S+)")
_CVE = re.compile(r"CVE-\d{4}-\d{4,}")


def list_entries(text: str) -> list[str]:
    """Split a DSA/DLA list into whole entries (header line plus its indented lines)."""
    entries: list[str] = []
    for line in text.splitlines(keepends=True):
        if _HEADER.match(line):
            entries.append(line)
        elif entries:
            entries[-1] += line
    return entries


def wanted_entry(entry: str) -> bool:
    """An entry with a bullseye/buster line for one of the fleet's source packages."""
    for line in entry.splitlines()[1:]:
        m = _RELEASE_LINE.match(line)
        if m and m["release"] in DEBIAN_RELEASES and m["package"] in DEBIAN_SOURCES:
            return True
    return False


def secdb_entries(text: str) -> tuple[str, list[str], str]:
    """(head up to ``"packages": [``, one text block per package entry, tail)."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip() == '"packages": [')
    head = "".join(lines[: start + 1])
    blocks: list[str] = []
    depth = 0
    i = start + 1
    while depth == 0 and lines[i].strip() != "]":
        block = ""
        while True:
            line = lines[i]
            block += line
            depth += line.count("{") - line.count("}")
            i += 1
            if depth == 0:
                break
        blocks.append(block)
    return head, blocks, "".join(lines[i:])


def main(shared: Path) -> None:
    """Write the snapshot under OUT."""
    for sub in ("osv", "debian", "alpine", "kev", "epss"):  # SOURCES.md and licenses stay
        if (OUT / sub).exists():
            shutil.rmtree(OUT / sub)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, src_license in LICENSES.items():
        (OUT / name).write_bytes((shared / src_license).read_bytes())
    cves: set[str] = set()

    # OSV (PyPA)
    for pkg in OSV_PACKAGES:
        for src in sorted((shared / "osv/pypi/vulns" / pkg).glob("*.yaml")):
            year = int(src.stem.split("-")[1])
            if pkg == "django" and year < DJANGO_FIRST_YEAR:
                continue
            dst = OUT / "osv" / pkg / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            rec: dict[str, Any] = yaml.safe_load(src.read_text(encoding="utf-8"))
            cves.update(a for a in rec.get("aliases") or () if _CVE.fullmatch(a))

    # Debian DSA / DLA
    for kind in ("DSA", "DLA"):
        text = (shared / "debian/security-tracker" / kind / "list").read_text(encoding="utf-8")
        kept = [e for e in list_entries(text) if wanted_entry(e)]
        dst = OUT / "debian" / kind / "list"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text("".join(kept), encoding="utf-8")
        for entry in kept:
            cves.update(_CVE.findall(entry))

    # Alpine secdb v3.19 main
    text = (shared / "alpine/secdb/v3.19/main.json").read_text(encoding="utf-8")
    head, blocks, tail = secdb_entries(text)
    kept_blocks = []
    for block in blocks:
        entry = json.loads(block.strip().rstrip(","))
        if entry["pkg"]["name"] in ALPINE_ORIGINS:
            kept_blocks.append(block)
            for ids in entry["pkg"]["secfixes"].values():
                for token in ids:
                    cves.update(_CVE.findall(token))
    last = kept_blocks[-1].rstrip("\n").rstrip(",") + "\n"
    alpine = head + "".join(kept_blocks[:-1]) + last + tail
    json.loads(alpine)  # must stay valid JSON
    dst = OUT / "alpine" / "v3.19" / "main.json"
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(alpine, encoding="utf-8")

    # CISA KEV 2026-01-29
    kev = json.loads(
        (shared / "kev/known_exploited_vulnerabilities-2026.01.29.json").read_text(encoding="utf-8")
    )
    vulns = [v for v in kev["vulnerabilities"] if v["cveID"] in cves]
    kev_out = {**kev, "count": len(vulns), "vulnerabilities": vulns}
    dst = OUT / "kev" / "known_exploited_vulnerabilities-2026.01.29.json"
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(kev_out, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")

    # FIRST EPSS 2026-01-30
    with gzip.open(shared / "epss/epss_scores-2026-01-30.csv.gz", "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines(keepends=True)
    rows = [line for line in lines[2:] if line.split(",", 1)[0] in cves]
    dst = OUT / "epss" / "epss_scores-2026-01-30.csv.gz"
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write("".join(lines[:2] + rows).encode("utf-8"))

    print(f"{len(cves)} CVEs, {len(vulns)} in KEV, {len(rows)} EPSS rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data")
