"""Regenerate the golden comparison tables in ``tests/data/versions/`` from reference tools.

Run from the repository root: ``.venv/bin/python tests/reference/make_golden.py``. Needs
dpkg, rpm, node (``npm ci`` in tests/reference/node) and java with Debian's maven jar.

Version strings are real: Debian versions from the security tracker's DSA/DLA ``list``
files and this machine's ``dpkg-query -W``; PyPI versions from the PyPA advisory database;
Alpine versions from secdb; npm versions from the ``package.json`` files of the npm
package itself; Maven versions from Debian's ``/usr/share/maven-repo``. Schemes that
accept any string (rpm, Maven) are also fed the Debian and PyPI strings, plus a few
hand-written families (``~``, ``^``, ``el9_2``, ``.Final``, ``-SNAPSHOT``) to reach the
corner cases. The pair selection is seeded, so a rerun with the same inputs and tools
reproduces the tables byte for byte.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: tests.reference
import itertools

from tests.reference import reftools

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
OUT = REPO / "tests" / "data" / "versions"
SEED = 20240601

_DEB_LINE = re.compile(r"^\s+(?:\[[a-z-]+\]\s+)?-\s+(\S+)\s+(\d\S*)")


def debian_versions() -> dict[str, list[str]]:
    """Package -> versions, from DSA/DLA ``list`` files and ``dpkg-query -W``."""
    by_pkg: dict[str, list[str]] = defaultdict(list)
    for name in ("DSA", "DLA"):
        text = (SHARED / "debian" / "security-tracker" / name / "list").read_text("utf-8")
        for line in text.splitlines():
            m = _DEB_LINE.match(line)
            if m:
                by_pkg[m.group(1)].append(m.group(2))
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        pkg, _, ver = line.partition("\t")
        by_pkg[pkg].append(ver)
    return {k: reftools.unique(v) for k, v in by_pkg.items()}


def pypi_versions() -> dict[str, list[str]]:
    """Package -> versions named in the PyPA advisories (events and version lists)."""
    by_pkg: dict[str, list[str]] = defaultdict(list)
    for path in sorted((SHARED / "osv" / "pypi" / "vulns").glob("*/*.yaml")):
        doc = yaml.load(path.read_text("utf-8"), Loader=yaml.CSafeLoader)
        for aff in doc.get("affected") or []:
            name = aff["package"]["name"]
            for rng in aff.get("ranges") or []:
                if rng.get("type") != "ECOSYSTEM":
                    continue
                for ev in rng.get("events") or []:
                    for key in ("introduced", "fixed", "last_affected"):
                        if key in ev and str(ev[key]) != "0":
                            by_pkg[name].append(str(ev[key]))
            by_pkg[name].extend(str(v) for v in aff.get("versions") or [])
    return {k: reftools.unique(v) for k, v in by_pkg.items()}


def alpine_versions() -> list[str]:
    """Every version in the Alpine secdb files (v3.19-v3.21, main and community)."""
    out: list[str] = []
    for path in sorted((SHARED / "alpine" / "secdb").glob("*/*.json")):
        for pkg in json.loads(path.read_text("utf-8"))["packages"]:
            out.extend(pkg["pkg"]["secfixes"])
    return [str(v) for v in reftools.unique(out)]


def npm_versions() -> list[str]:
    """Versions of the packages bundled with npm (real npm registry versions)."""
    out: list[str] = []
    for path in sorted(Path("/usr/lib/node_modules/npm").rglob("package.json")):
        try:
            ver = json.loads(path.read_text("utf-8")).get("version")
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(ver, str):
            out.append(ver)
    return reftools.unique(out)


def maven_repo_versions() -> list[str]:
    """Version directories of Debian's local Maven repository."""
    return reftools.unique(
        p.parent.name for p in sorted(Path("/usr/share/maven-repo").rglob("*.pom"))
    )


def pairs_from(
    groups: Sequence[Sequence[str]], rng: random.Random, within: int, across: int
) -> list[tuple[str, str]]:
    """Neighbours and random pairs inside each group, then random pairs across groups."""
    seen: set[tuple[str, str]] = set()
    pairs: list[tuple[str, str]] = []

    def add(a: str, b: str) -> None:
        if (a, b) not in seen:
            seen.add((a, b))
            pairs.append((a, b))

    flat = [v for g in groups for v in g]
    for g in groups:
        for a, b in itertools.pairwise(g):
            add(a, b)
    candidates = [g for g in groups if len(g) > 1]
    while len(pairs) < within and candidates:
        g = rng.choice(candidates)
        a, b = rng.sample(list(g), 2)
        add(a, b)
    target = len(pairs) + across
    while len(pairs) < target:
        a, b = rng.choice(flat), rng.choice(flat)
        add(a, b)
    for v in rng.sample(flat, min(200, len(flat))):
        add(v, v)
    return pairs


def write(name: str, rows: Sequence[tuple[str, str, int | None]]) -> None:
    """Write ``[a, b, cmp]`` JSON lines, gzip'd without a timestamp (reproducible)."""
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    path = OUT / name
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(body)
    print(f"{path.relative_to(REPO)}: {len(rows)} pairs, {path.stat().st_size} bytes")


RPM_EXTRA = [
    # rpm's own tests/rpmvercmp.at strings and Red Hat style EVRs.
    *[
        "1.0",
        "2.0",
        "2.0.1",
        "2.0.1a",
        "5.5p1",
        "5.5p2",
        "5.5p10",
        "10xyz",
        "10.1xyz",
        "xyz10",
        "xyz10.1",
        "xyz.4",
        "8",
        "2",
        "5.6p1",
        "6.5p1",
        "6.0.rc1",
        "6.0",
        "10b2",
        "10a1",
        "10a2",
        "1.0aa",
        "1.0a",
        "10.0001",
        "10.1",
        "10.0039",
        "4.999.9",
        "5.0",
        "20101121",
        "20101122",
        "2_0",
        "2.0",
        "a",
        "a+",
        "a_",
        "+a",
        "_a",
        "1.0~rc1",
        "1.0~rc2",
        "1.0~rc1~git123",
        "1b.fc17",
        "1.fc17",
        "1g.fc17",
    ],
    *[
        "2.4.57-5.el9",
        "2.4.57-5.el9_1",
        "2.4.57-5.el9_2",
        "2.4.57-11.el9_4.1",
        "1:3.0.7-27.el9",
        "1:3.0.7-25.el9_3",
        "1:1.1.1k-7.el8_6",
        "1:1.1.1k-12.el8_9",
        "0:8.0.32-1.el9_2",
        "7.76.1-26.el9_3.2",
        "7.76.1-29.el9_4",
        "2.28-251.el9_2.1",
        "2.34-60.el9",
        "5.14.0-362.8.1.el9_3",
        "4.18.0-513.5.1.el8_9",
        "1.0^20240101git1",
        "1.0^20231201git9",
        "1.0",
        "1.0~beta1^git2",
        "1.0~beta1",
        "1.0~beta2",
        "2:9.0.2120-1.fc40",
        "9.0.2120-1.fc40",
        "115.9.0-1.el9_3",
        "115.10.0-1.el9_3",
        "1.2.3-0.rc1.el9",
        "1.2.3-1.el9",
        "1.2.3-1.el9.alma",
    ],
]

MAVEN_EXTRA = [
    "1.0-SNAPSHOT",
    "1.0",
    "1.0.0",
    "1.0-ga",
    "1.0-final",
    "1.0.RELEASE",
    "1.0.0.RELEASE",
    "5.3.18.RELEASE",
    "5.3.18",
    "4.1.68.Final",
    "4.1.68.Final-SNAPSHOT",
    "2.14.1",
    "2.15.0-rc1",
    "2.15.0-rc2",
    "2.15.0",
    "2.17.0",
    "2.9.10.8",
    "2.9.10",
    "2.12.7.1",
    "31.0.1-jre",
    "31.0.1-android",
    "32.1.2-jre",
    "1.0-alpha-1",
    "1.0-alpha1",
    "1.0-a1",
    "1.0-beta-2",
    "1.0-b2",
    "1.0-milestone-1",
    "1.0-m1",
    "1.0-rc1",
    "1.0-cr1",
    "1.0-sp1",
    "1.0-sp",
    "1.0-xyz",
    "1.0-abc",
    "1-1",
    "1.1",
    "1.0.1",
    "1-0.1",
    "1.0-1",
    "1.0.0-0",
    "2.0.0-M1",
    "2.0.0.M1",
    "2.0.0-RC1",
    "3.0.0-alpha-2",
    "9.4.43.v20210629",
    "9.4.44.v20210927",
    "1.2.3.4.5",
    "20030203.000129",
    "1.0.0-20230101.120000-1",
    "7.0.0-beta2",
    "7.0.0-beta10",
    "10.0.0",
    "1.0a",
    "1.0b",
    "1.0-1-1",
    "1.0.0.0.0-1",
    "1.0-0.0",
    "0",
    "0.0.1",
    "X",
    "Y",
]

SEMVER_EXTRA = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "2.0.0",
    "2.1.0",
    "2.1.1",
    "1.0.0+20130313144700",
    "1.0.0-beta+exp.sha.5114f85",
    "1.0.0+21AF26D3-117B344092BD",
    "1.0.0-0.3.7",
    "1.0.0-x.7.z.92",
    "1.0.0-x-y-z.--",
    "1.0.0-alpha-a.b-c",
    "1.0.0-0A.is.legal",
    "1.0.0-rc.1+build.123",
    "v1.2.3",
    "v2.0.0-rc.1",
    "1.2.3-Alpha",
    "1.2.3-alpha",
    "1.2.3-BETA",
    "1.2.3-1",
    "1.2.3-10",
    "1.2.3-2",
    "1.2.3-a1",
    "1.2.3-a10",
    "1.2.3-a2",
    "0.0.0",
    "0.0.1",
    "0.1.0",
    "10.20.30",
    "1.1.2-prerelease+meta",
    "1.0.0-alpha.0valid",
    "99999999999999999999999.999999999999999999.99999999999999999",
]


def main() -> None:
    """Build every golden table."""
    rng = random.Random(SEED)
    deb = debian_versions()
    pypi = pypi_versions()
    apk = alpine_versions()
    npm = npm_versions()
    mvn = maven_repo_versions()
    deb_groups = [v for _, v in sorted(deb.items())]
    pypi_groups = [v for _, v in sorted(pypi.items())]
    deb_flat = [v for g in deb_groups for v in g]
    pypi_flat = [v for g in pypi_groups for v in g]

    # dpkg: real Debian versions only, >= 10,000 pairs.
    dpkg_pairs = pairs_from(deb_groups, rng, within=9000, across=3000)
    write(
        "dpkg-golden.jsonl.gz",
        [
            (a, b, c)
            for (a, b), c in zip(dpkg_pairs, reftools.dpkg_compare(dpkg_pairs), strict=True)
        ],
    )

    # rpm: Red Hat style strings, rpm's test strings, and Debian strings (rpm takes any).
    rpm_deb = [v for v in rng.sample(deb_flat, 2500) if not v.endswith("-")]
    rpm_groups = [RPM_EXTRA, *[g for g in deb_groups if len(g) > 1][:600]]
    rpm_pairs = pairs_from(rpm_groups, rng, within=3000, across=0)
    rpm_pairs += [(rng.choice(RPM_EXTRA), rng.choice(RPM_EXTRA)) for _ in range(1500)]
    rpm_pairs += [(rng.choice(rpm_deb), rng.choice(rpm_deb)) for _ in range(1500)]
    rpm_pairs = reftools.unique_pairs(rpm_pairs)
    rpm_out = reftools.rpm_compare(rpm_pairs)
    write(
        "rpm-golden.jsonl.gz",
        [(a, b, c) for (a, b), c in zip(rpm_pairs, rpm_out, strict=True) if c is not None],
    )

    # semver: npm registry versions, semver.org examples, PyPI strings that are SemVer.
    sem_pool = reftools.unique([*npm, *SEMVER_EXTRA, *(v for v in pypi_flat if v.count(".") == 2)])
    sem_pairs = reftools.unique_pairs(
        [(rng.choice(sem_pool), rng.choice(sem_pool)) for _ in range(4000)]
        + list(itertools.pairwise(SEMVER_EXTRA))
    )
    sem_out = reftools.node_semver_compare(sem_pairs)
    write(
        "semver-golden.jsonl.gz",
        [(a, b, c) for (a, b), c in zip(sem_pairs, sem_out, strict=True) if c is not None],
    )
    # node-invalid strings: our parser must reject them too (kept as [a, b, null]).
    rejected = [(a, b, None) for (a, b), c in zip(sem_pairs, sem_out, strict=True) if c is None]
    write("semver-rejected.jsonl.gz", rejected[:400])

    # maven: Debian's maven-repo versions, common Maven shapes, PyPI strings.
    mvn_pool = reftools.unique([*mvn, *MAVEN_EXTRA])
    mvn_any = [
        v
        for v in rng.sample(pypi_flat, 1500) + rng.sample(deb_flat, 500)
        if v.strip() == v and " " not in v
    ]
    mvn_pairs = reftools.unique_pairs(
        [(rng.choice(mvn_pool), rng.choice(mvn_pool)) for _ in range(2500)]
        + [(rng.choice(mvn_any), rng.choice(mvn_any)) for _ in range(1500)]
        + [(rng.choice(mvn_pool), rng.choice(mvn_any)) for _ in range(500)]
    )
    write(
        "maven-golden.jsonl.gz",
        [(a, b, c) for (a, b), c in zip(mvn_pairs, reftools.maven_compare(mvn_pairs), strict=True)],
    )

    # Real strings for the property tests of schemes without a golden table.
    (OUT / "apk-secdb-versions.txt").write_text("\n".join(apk) + "\n", encoding="utf-8")
    pep = reftools.unique(pypi_flat)
    with (
        (OUT / "pypi-osv-versions.txt.gz").open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
    ):
        gz.write(("\n".join(pep) + "\n").encode())
    print(f"apk {len(apk)} versions, pypi {len(pep)} versions")


if __name__ == "__main__":
    main()
