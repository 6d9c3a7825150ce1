"""Derive the demo's expected findings straight from the snapshot files (run by hand).

Usage::

    .venv/bin/python tests/demo/derive_demo_expected.py > tests/demo/expected_demo_findings.json

This is an oracle independent of patchwarden's own code: it parses the DSA/DLA lists, the
secdb JSON and the OSV YAML itself, reads the inventories itself, and orders versions with
the reference implementations -- ``dpkg --compare-versions`` for Debian, ``packaging`` for
PyPI, and a small apk-tools comparison that covers the version shapes in the snapshot
(``digits{.digits}[letter][_suffix[N]][-rN]``). Its output was reviewed by hand against the
advisory records before being committed as the expected findings.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from collections import defaultdict
from functools import cmp_to_key
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name
from packaging.version import Version

DEMO = Path(__file__).resolve().parents[2] / "src" / "patchwarden" / "demo"
DATA = DEMO / "data"
INV = DEMO / "inventories"

Key = tuple[str, str, str]  # asset, package, vulnerability
Found = dict[Key, list[tuple[str, str]]]  # -> [(fixed version or "", advisory id)]
INSTALLED: dict[tuple[str, str], tuple[str, str]] = {}
"""(asset, package) -> (ecosystem, installed version), filled while deriving."""
DEBIAN_ASSETS = {"web-01", "web-stg-01", "relay-legacy-01"}


def dpkg_lt(a: str, b: str) -> bool:
    """``dpkg --compare-versions a lt b`` (the reference tool)."""
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0


def dpkg_cmp(a: str, b: str) -> int:
    """-1, 0 or 1 as dpkg orders ``a`` and ``b``."""
    return -1 if dpkg_lt(a, b) else (1 if dpkg_lt(b, a) else 0)


_APK = re.compile(r"^(\d+(?:\.\d+)*)([a-z]?)(?:_([a-z]+)(\d*))?(?:-r(\d+))?$")
_PRE = {"alpha": 0, "beta": 1, "pre": 2, "rc": 3}
_POST = {"cvs": 5, "svn": 6, "git": 7, "hg": 8, "p": 9}


def apk_key(v: str) -> tuple[Any, ...]:
    """Sort key for the apk versions of the snapshot (apk-tools order for these shapes)."""
    m = _APK.match(v)
    if m is None:
        raise ValueError(f"unsupported apk version shape {v!r}")
    nums = tuple(int(x) for x in m[1].split("."))
    suffix = m[3]
    rank = 4 if suffix is None else _PRE.get(suffix, _POST.get(suffix, -1))
    if rank < 0:
        raise ValueError(f"unknown suffix in {v!r}")
    return (nums, m[2] or "", rank, int(m[4] or 0), int(m[5] or 0))


def dpkg_status(path: Path) -> dict[str, tuple[str, set[str]]]:
    """source package -> (source version, binary names), installed packages only."""
    out: dict[str, tuple[str, set[str]]] = {}
    for stanza in path.read_text(encoding="utf-8").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.strip().splitlines())
        if fields.get("Status") != "install ok installed":
            continue
        version = fields["Version"]
        source = fields.get("Source", fields["Package"])
        if "(" in source:
            source, version = source.split(" (")[0], source.split(" (")[1].rstrip(")")
        prev = out.get(source)
        out[source] = (version, (prev[1] if prev else set()) | {fields["Package"]})
    return out


def debian(asset: str, status: Path, codename: str, found: Found) -> None:
    """Findings from the DSA and DLA lists for one Debian asset."""
    installed = dpkg_status(status)
    for kind in ("DSA", "DLA"):
        text = (DATA / "debian" / kind / "list").read_text(encoding="utf-8")
        for entry in re.split(r"\n(?=\[)", text.strip()):
            lines = entry.splitlines()
            cves = re.findall(r"CVE-\d+-\d+", lines[1]) if lines[1].strip().startswith("{") else []
            ids = cves or [lines[0].split()[3]]
            for line in lines[1:]:
                m = re.match(r"^\s+\[(\w+)\] - (\S+) (\S+)$", line)
                if not m or m[1] != codename or m[2] not in installed:
                    continue
                version = installed[m[2]][0]
                if dpkg_lt(version, m[3]):
                    eco = {"bullseye": "Debian:11", "buster": "Debian:10"}[codename]
                    INSTALLED[(asset, m[2])] = (eco, version)
                    for vid in ids:
                        found[(asset, m[2], vid)].append((m[3], lines[0].split()[3]))


def alpine(asset: str, db: Path, found: Found) -> None:
    """Findings from the secdb for one Alpine asset (keyed by origin)."""
    installed: dict[str, str] = {}
    for record in db.read_text(encoding="utf-8").strip().split("\n\n"):
        fields = {line[0]: line[2:] for line in record.splitlines()}
        installed[fields["o"]] = fields["V"]
    secdb = json.loads((DATA / "alpine" / "v3.19" / "main.json").read_text(encoding="utf-8"))
    for entry in secdb["packages"]:
        name = entry["pkg"]["name"]
        if name not in installed:
            continue
        for fixed, ids in entry["pkg"]["secfixes"].items():
            if fixed == "0":
                continue  # secdb: never affected
            if apk_key(installed[name]) < apk_key(fixed):
                INSTALLED[(asset, name)] = ("Alpine:v3.19", installed[name])
                for token in " ".join(ids).split():
                    found[(asset, name, token)].append((fixed, f"ALPINE-v3.19-{name}-{token}"))


def osv_records() -> list[dict[str, Any]]:
    """Every OSV record of the snapshot."""
    return [
        yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((DATA / "osv").glob("*/*.yaml"))
    ]


def canonical(rec: dict[str, Any]) -> str:
    """The id a finding is reported under: the smallest CVE alias, else the record id."""
    cves = sorted(a for a in rec.get("aliases") or () if a.startswith("CVE-"))
    return cves[0] if cves else str(rec["id"])


def osv_affected(rec: dict[str, Any], name: str, version: str) -> str | None:
    """The fixed version (or '' when none) when ``version`` of ``name`` is affected."""
    v = Version(version)
    for aff in rec["affected"]:
        if canonicalize_name(aff["package"]["name"]) != name:
            continue
        for rng in aff.get("ranges", ()):
            if rng["type"] != "ECOSYSTEM":
                continue
            events = rng["events"]
            intro: str | None = None
            for ev in events:
                if "introduced" in ev:
                    intro = ev["introduced"]
                elif intro is not None and ("fixed" in ev or "last_affected" in ev):
                    lo_ok = intro == "0" or Version(intro) <= v
                    if "fixed" in ev and lo_ok and v < Version(ev["fixed"]):
                        return str(ev["fixed"])
                    if "last_affected" in ev and lo_ok and v <= Version(ev["last_affected"]):
                        return ""
                    intro = None
            if intro is not None and (intro == "0" or Version(intro) <= v):
                return ""
        if version in [str(x) for x in aff.get("versions") or ()]:
            return ""
    return None


def pypi(asset: str, packages: dict[str, str], found: Found) -> None:
    """Findings from the PyPA records for one asset's Python packages."""
    for rec in osv_records():
        for name, version in packages.items():
            fixed = osv_affected(rec, name, version)
            if fixed is not None:
                INSTALLED[(asset, name)] = ("PyPI", version)
                found[(asset, name, canonical(rec))].append((fixed, str(rec["id"])))


def site_packages(folder: Path) -> dict[str, str]:
    """normalised name -> version from ``*.dist-info/METADATA``."""
    out: dict[str, str] = {}
    for meta in folder.glob("*.dist-info/METADATA"):
        fields = dict(
            line.split(": ", 1) for line in meta.read_text(encoding="utf-8").splitlines() if line
        )
        out[canonicalize_name(fields["Name"])] = fields["Version"]
    return out


def sbom(path: Path) -> dict[str, str]:
    """normalised name -> version from the CycloneDX pypi purls."""
    out: dict[str, str] = {}
    for comp in json.loads(path.read_text(encoding="utf-8"))["components"]:
        purl = comp.get("purl", "")
        if purl.startswith("pkg:pypi/"):
            name, version = purl.removeprefix("pkg:pypi/").split("@")
            out[canonicalize_name(name)] = version
    return out


def main() -> None:
    """Print the expected findings as JSON (sorted)."""
    found: Found = defaultdict(list)
    debian("web-01", INV / "web-01/var/lib/dpkg/status", "bullseye", found)
    debian("web-stg-01", INV / "web-stg-01/dpkg-status", "bullseye", found)
    debian("relay-legacy-01", INV / "relay-legacy-01/var/lib/dpkg/status", "buster", found)
    alpine("edge-proxy", INV / "edge-proxy/lib/apk/db/installed", found)
    pypi("app-01", site_packages(INV / "app-01/site-packages"), found)
    pypi("payments-api", sbom(INV / "payments-api.cdx.json"), found)
    kev = {
        v["cveID"]
        for v in json.loads(
            (DATA / "kev/known_exploited_vulnerabilities-2026.01.29.json").read_text("utf-8")
        )["vulnerabilities"]
    }
    with gzip.open(DATA / "epss/epss_scores-2026-01-30.csv.gz", "rt", encoding="utf-8") as fh:
        epss = {row.split(",")[0]: float(row.split(",")[1]) for row in list(fh)[2:]}
    rows = []
    for (asset, package, vuln), items in sorted(found.items()):
        fixes = [f for f, _ in items]
        if "" in fixes:
            fixed: str | None = None
        elif asset in DEBIAN_ASSETS:
            fixed = max(fixes, key=cmp_to_key(dpkg_cmp))
        elif asset == "edge-proxy":
            fixed = max(fixes, key=apk_key)
        else:
            fixed = max(fixes, key=Version)
        rows.append(
            {
                "asset": asset,
                "ecosystem": INSTALLED[(asset, package)][0],
                "package": package,
                "installed_version": INSTALLED[(asset, package)][1],
                "vulnerability": vuln,
                "advisories": sorted({a for _, a in items}),
                "fixed_version": fixed,
                "kev": vuln in kev,
                "epss": epss.get(vuln),
            }
        )
    json.dump(rows, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
