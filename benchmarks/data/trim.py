"""Rebuild the trimmed package lists in this folder from their real sources (see README.md).

Usage: ``python benchmarks/data/trim.py <bullseye Packages file> <shared/data folder>``.
"""

from __future__ import annotations

import random
import re
import sys
from collections import defaultdict
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
POOL = 2_600
"""Binary packages kept from bullseye main/amd64 (a host draws about 1,500 of them)."""


def _stanzas(text: str) -> list[dict[str, str]]:
    out = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        if "Package" in fields:
            out.append(fields)
    return out


def bullseye(packages_file: Path, dsa_list: Path) -> None:
    """Keep every required/important/standard package, binaries of DSA sources, then a sample."""
    dsa_sources = set(re.findall(r"\[bullseye\] - (\S+) ", dsa_list.read_text()))
    stanzas = _stanzas(packages_file.read_text())
    rng = random.Random(8)
    core = [s for s in stanzas if s.get("Priority") in {"required", "important", "standard"}]
    by_source: dict[str, list[dict[str, str]]] = defaultdict(list)
    for s in stanzas:
        by_source[s.get("Source", s["Package"]).split(" ")[0]].append(s)
    tracked = [s for src in sorted(dsa_sources) for s in by_source.get(src, [])[:4]]
    chosen = {s["Package"]: s for s in core + tracked}
    rest = [s for s in stanzas if s["Package"] not in chosen and "-dbgsym" not in s["Package"]]
    for s in rng.sample(rest, max(0, POOL - len(chosen))):
        chosen[s["Package"]] = s
    cols = (
        *("Package", "Version", "Source", "Architecture", "Priority", "Section"),
        *("Installed-Size", "Maintainer", "Description"),
    )
    with (HERE / "bullseye_packages.tsv").open("w") as out:
        out.write("\t".join(cols) + "\n")
        for name in sorted(chosen):
            s = chosen[name]
            out.write("\t".join(s.get(c, "").replace("\t", " ") for c in cols) + "\n")


def pypi(shared: Path) -> None:
    """PyPI names with the versions the PyPA advisories enumerate (affected and fixed)."""
    versions: dict[str, set[str]] = defaultdict(set)
    for path in sorted((shared / "osv" / "pypi" / "vulns").glob("*/*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for aff in doc.get("affected", []):
            name = aff["package"]["name"]
            versions[name].update(str(v) for v in aff.get("versions", []))
            for rng in aff.get("ranges", []):
                for ev in rng.get("events", []):
                    if "fixed" in ev:
                        versions[name].add(str(ev["fixed"]))
    with (HERE / "pypi_versions.tsv").open("w") as out:
        out.write("name\tversions (space-separated, as the advisories spell them)\n")
        for name in sorted(versions):
            vs = sorted(versions[name])[-12:]
            if vs:
                out.write(f"{name}\t{' '.join(vs)}\n")


if __name__ == "__main__":
    shared_data = Path(sys.argv[2])
    bullseye(Path(sys.argv[1]), shared_data / "debian" / "security-tracker" / "DSA" / "list")
    pypi(shared_data)
