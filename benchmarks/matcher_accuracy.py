"""Precision, recall and F1 of patchwarden's scan path against labels published with the data.

No independent "true/false positive" set for these feeds was at hand (the Trivy and
osv-scanner golden files need those projects' own databases and images), so the labels
come from what each source states explicitly, read here with an independent parser and
compared with the real reference tools, never with patchwarden's own code:

* **PyPI** (PyPA advisory database, OSV): every ``affected`` entry lists the exact released
  versions it affects (``versions``, enumerated by osv.dev from PyPI's release list). A
  (package, version) query is labelled affected by a record iff the version is listed and
  the record is not ``withdrawn``. Records whose entries lack ``versions`` are left out.
* **Ubuntu 24.04** (Canonical USN OVAL): a binary package at version v is affected by a
  definition's CVEs iff a ``dpkginfo`` test of the definition names the binary and v is
  ``less than`` the test's ``evr`` -- decided by ``dpkg --compare-versions`` (the real tool).
  Running-kernel definitions carry no package label.
* **Debian** (security-tracker DSA/DLA lists): a source package at version v in release R is
  affected by a DSA/DLA iff the advisory has a ``[R] - <source> <fixed>`` line and
  ``dpkg --compare-versions v lt fixed``; ``<not-affected>`` lines label not affected; a DSA
  without a line for R says nothing about R and labels not affected (Debian:11 advisory vs a
  Debian:12 package). Lines with ``<unfixed>``/``<no-dsa>``/``<end-of-life>`` are left out.

Queries: every version listed or named at a range boundary (PyPI, under the record's name
and a non-normalised spelling), and around each dpkg fix: the fix itself, ``fix~1`` (just
below), ``fix+1`` (just above), the installed version of a real noble ``dpkg`` status
excerpt, an epoch-bumped version, and the Debian fix under the other release.

Everything runs through the real path: the feed files are imported into a real SQLite store
with :func:`patchwarden.service.import_feeds`, inventories are scanned with
:func:`patchwarden.service.scan`, and findings are read back from the store. A prediction is
a (query, advisory id) pair of a finding; the truth is the labelled pairs of the same source.

PyPI is measured twice: ``pypi`` imports the records as published (ranges + ``versions``),
``pypi-ranges`` imports them with ``versions`` removed, so range evaluation alone is checked
against osv.dev's enumeration.

``--smoke`` uses the small subsets in ``tests/data/accuracy`` (what the test gates on); the
default run uses the whole ``shared/data`` files (PyPI and Debian sampled deterministically).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version

from patchwarden.ecosystems import DEBIAN_CODENAMES
from patchwarden.inventory.dpkg import parse_stanzas
from patchwarden.model import Asset, AssetId, InstalledPackage, Inventory
from patchwarden.service import import_feeds, package_key, scan
from patchwarden.store import Store

REPO = Path(__file__).resolve().parents[1]
SUBSET = REPO / "tests" / "data" / "accuracy"
SHARED = REPO.parent / "shared" / "data"
T0 = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
_OVAL = "{http://oval.mitre.org/XMLSchema/oval-definitions-5}"
_LINUX = "{http://oval.mitre.org/XMLSchema/oval-definitions-5#linux}"
_DSA_HEAD = re.compile(r"^\[[^\]]+\]\s+(?P<id>D[SL]A-\d+(?:-\d+)?)\s")
_DSA_LINE = re.compile(r"^\s+\[(?P<rel>[a-z]+)\]\s+-\s+(?P<src>\S+)\s+(?P<what>.*)$")


@dataclass(frozen=True, slots=True)
class Query:
    """One installed package to scan, with the advisory ids that truly affect it."""

    group: str
    pkg: InstalledPackage
    truth: frozenset[str]


@dataclass(slots=True)
class Figures:
    """Confusion counts of one group (pairs of query and advisory id)."""

    queries: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    examples_fp: list[str] = field(default_factory=list)
    examples_fn: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1.0 when nothing was reported."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 1.0 when nothing was labelled."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Rounded figures for ``expected.json``."""
        return {
            "queries": self.queries,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


@functools.cache
def dpkg_lt(a: str, b: str) -> bool:
    """``dpkg --compare-versions a lt b`` (the real dpkg is the oracle)."""
    done = subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False)
    if done.returncode not in (0, 1):
        raise ValueError(f"dpkg cannot compare {a!r} and {b!r}")
    return done.returncode == 0


# --------------------------------------------------------------------------- PyPI


def _pypa_records(root: Path, limit: int | None) -> list[tuple[Path, dict[str, Any]]]:
    out: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(root.rglob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        entries = [
            a for a in raw.get("affected", []) if a.get("package", {}).get("ecosystem") == "PyPI"
        ]
        if not entries or any(not a.get("versions") for a in entries):
            continue  # no enumeration to label with
        out.append((path, raw))
    if limit is not None:
        out = out[:: max(1, len(out) // limit)][:limit]
    return out


def pypi_queries(records: list[tuple[Path, dict[str, Any]]], group: str) -> Iterator[Query]:
    """Queries for every listed or boundary version, under two spellings of the name."""
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _path, raw in records:
        for entry in raw["affected"]:
            by_name[entry["package"]["name"]].append({"raw": raw, "entry": entry})
    for name, items in sorted(by_name.items()):
        versions: set[str] = set()
        for item in items:
            versions.update(str(v) for v in item["entry"]["versions"])
            for rng in item["entry"].get("ranges", []):
                if rng.get("type") != "ECOSYSTEM":
                    continue
                for event in rng.get("events", []):
                    versions.update(str(v) for k, v in event.items() if str(v) != "0")
        spellings = [name, name.upper().replace("-", "_")]
        for i, version in enumerate(sorted(versions)):
            truth = frozenset(
                str(item["raw"]["id"])
                for item in items
                if not item["raw"].get("withdrawn")
                and _pep440_in(version, item["entry"]["versions"])
            )
            pkg = InstalledPackage(ecosystem="PyPI", name=spellings[i % 2], version=version)
            yield Query(group=group, pkg=pkg, truth=truth)


def _pep440_in(version: str, listed: list[Any]) -> bool:
    """PEP 440 membership (``2.5`` is ``2.5.0``), by ``packaging``; literal when unparseable."""
    try:
        return Version(version) in {Version(str(v)) for v in listed}
    except InvalidVersion:
        return version in {str(v) for v in listed}


def write_pypi(
    records: list[tuple[Path, dict[str, Any]]], target: Path, *, ranges_only: bool
) -> Path:
    """The records as JSON files for import (``versions`` dropped when ``ranges_only``)."""
    target.mkdir(parents=True)
    for path, raw in records:
        doc = json.loads(json.dumps(raw, default=str))
        if ranges_only:
            for entry in doc["affected"]:
                entry.pop("versions", None)
        (target / f"{path.stem}.json").write_text(json.dumps(doc), encoding="utf-8")
    return target


# --------------------------------------------------------------------------- Ubuntu


def oval_labels(path: Path) -> dict[str, list[tuple[str, frozenset[str]]]]:
    """binary -> [(evr, advisory ids)] of every ``dpkginfo`` "less than" test."""
    root = ET.parse(path).getroot()
    variables = {
        v.get("id"): [x.text or "" for x in v.iter(f"{_OVAL}value")]
        for v in root.iter(f"{_OVAL}constant_variable")
    }
    objects: dict[str | None, list[str]] = {}
    for o in root.iter(f"{_LINUX}dpkginfo_object"):
        name = o.find(f"{_LINUX}name")
        if name is not None:
            var = name.get("var_ref")
            objects[o.get("id")] = variables.get(var, []) if var else [name.text or ""]
    states = {}
    for s in root.iter(f"{_LINUX}dpkginfo_state"):
        evr = s.find(f"{_LINUX}evr")
        if evr is not None and evr.get("operation") == "less than":
            states[s.get("id")] = (evr.text or "").removeprefix("0:")
    tests = {}
    for t in root.iter(f"{_LINUX}dpkginfo_test"):
        obj, ste = t.find(f"{_LINUX}object"), t.find(f"{_LINUX}state")
        if obj is not None and ste is not None and ste.get("state_ref") in states:
            tests[t.get("test_ref") or t.get("id")] = (
                objects.get(obj.get("object_ref"), []),
                states[ste.get("state_ref")],
            )
    release = "24.04"
    out: dict[str, list[tuple[str, frozenset[str]]]] = defaultdict(list)
    for d in root.iter(f"{_OVAL}definition"):
        if d.get("class") != "patch":
            continue
        refs = {r.get("ref_id", "") for r in d.iter(f"{_OVAL}reference")}
        usn = next(
            r.get("ref_id", "") for r in d.iter(f"{_OVAL}reference") if r.get("source") == "USN"
        )
        cves = sorted(r for r in refs if r.startswith("CVE-")) or [usn]
        ids = frozenset(f"UBUNTU-{release}-{c}" for c in cves)
        for c in d.iter(f"{_OVAL}criterion"):
            test = tests.get(c.get("test_ref"))
            if test is not None:
                for binary in test[0]:
                    out[binary].append((test[1], ids))
    return out


def ubuntu_queries(oval: Path, status: Path, group: str) -> Iterator[Query]:
    """Around every fix of every binary of the status excerpt."""
    labels = oval_labels(oval)
    for _line, fields in parse_stanzas(status.read_text(encoding="utf-8"), source=str(status)):
        binary, installed = fields["Package"], fields["Version"]
        source = fields.get("Source", binary).split(" ")[0]
        versions = {installed}
        epoch, _, rest = installed.rpartition(":")
        versions.add(f"{int(epoch or 0) + 1}:{rest}")
        for fix, _ids in labels.get(binary, []):
            versions.update({fix, f"{fix}~1", f"{fix}+1"})
        for version in sorted(versions):
            truth = frozenset(
                i for fix, ids in labels.get(binary, []) if dpkg_lt(version, fix) for i in ids
            )
            pkg = InstalledPackage(
                ecosystem="Ubuntu:24.04", name=binary, version=version, source_name=source
            )
            yield Query(group=group, pkg=pkg, truth=truth)


# --------------------------------------------------------------------------- Debian


def debian_lines(paths: Iterable[Path]) -> list[tuple[str, str, str, str]]:
    """(advisory id, release, source, fixed version or marker) of every release line."""
    out = []
    for path in paths:
        current = ""
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            head = _DSA_HEAD.match(line)
            if head:
                current = head["id"]
                continue
            m = _DSA_LINE.match(line)
            if m and current and m["rel"] in DEBIAN_CODENAMES:
                out.append((current, m["rel"], m["src"], m["what"].split(" ")[0]))
    return out


def debian_queries(paths: list[Path], group: str, limit: int | None) -> Iterator[Query]:
    """Around every fix, in its release and in the next one."""
    lines = debian_lines(paths)
    per_key: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for adv, rel, src, what in lines:
        per_key[(rel, src)].append((adv, what))
    fixes = [x for x in lines if not x[3].startswith("<")]
    if limit is not None:
        fixes = fixes[:: max(1, len(fixes) // limit)][:limit]
    codenames = list(DEBIAN_CODENAMES)
    seen: set[tuple[str, str, str]] = set()
    for _adv, rel, src, fixed in fixes:
        nxt = codenames[codenames.index(rel) + 1] if rel != codenames[-1] else rel
        for r, version in (
            (rel, fixed),
            (rel, f"{fixed}~1"),
            (rel, f"{fixed}+1"),
            (nxt, f"{fixed}~1"),
        ):
            if (r, src, version) in seen:
                continue
            seen.add((r, src, version))
            entries = per_key.get((r, src), [])
            if any(w.startswith("<") and w != "<not-affected>" for _a, w in entries):
                continue  # unfixed / no-dsa / end-of-life: no label
            truth = frozenset(
                a for a, w in entries if not w.startswith("<") and dpkg_lt(version, w)
            )
            pkg = InstalledPackage(
                ecosystem=f"Debian:{DEBIAN_CODENAMES[r]}",
                name=src,
                version=version,
                source_name=src,
            )
            yield Query(group=group, pkg=pkg, truth=truth)


# --------------------------------------------------------------------------- scanning


def evaluate(
    feeds: list[Path], queries: list[Query], workdir: Path, prefix: str
) -> dict[str, Figures]:
    """Import ``feeds`` into a fresh store, scan the queries, compare per group."""
    store = Store.open(f"sqlite:///{workdir / 'accuracy.db'}")
    report = import_feeds(store, feeds, now=T0, actor="bench")
    if report.failed:
        raise RuntimeError(f"feed import failed: {[f.error for f in report.files if f.error]}")
    # One asset per slot, so that no asset holds two queries with the same match key.
    slots: list[dict[tuple[str, str], Query]] = []
    for q in queries:
        key = package_key(q.pkg)
        assert key is not None
        k = (key.ecosystem, key.name)
        for slot in slots:
            if k not in slot:
                slot[k] = q
                break
        else:
            slots.append({k: q})
    inventories = [
        Inventory(
            asset=Asset(id=AssetId(f"{prefix}-{i}")),
            packages=tuple(q.pkg for q in slot.values()),
        )
        for i, slot in enumerate(slots)
    ]
    scan(store, inventories, now=T0, actor="bench")
    predicted: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for f in store.findings():
        predicted[(f.asset, f.ecosystem, f.package)].update(f.advisories)
    figures: dict[str, Figures] = defaultdict(Figures)
    prefixes = {"pypi": "PYSEC-", "pypi-ranges": "PYSEC-", "ubuntu": "UBUNTU-", "debian": "D"}
    for i, slot in enumerate(slots):
        for (eco, name), q in slot.items():
            got = {
                a
                for a in predicted.get((f"{prefix}-{i}", eco, name), set())
                if a.startswith(prefixes[q.group])
            }
            fig = figures[q.group]
            fig.queries += 1
            fig.tp += len(got & q.truth)
            for a in sorted(got - q.truth):
                fig.fp += 1
                if len(fig.examples_fp) < 8:
                    fig.examples_fp.append(f"{q.pkg.ecosystem} {q.pkg.name} {q.pkg.version}: {a}")
            for a in sorted(q.truth - got):
                fig.fn += 1
                if len(fig.examples_fn) < 8:
                    fig.examples_fn.append(f"{q.pkg.ecosystem} {q.pkg.name} {q.pkg.version}: {a}")
    store.close()
    return dict(figures)


def run(*, smoke: bool) -> dict[str, Figures]:
    """All groups: the tests/data subsets (``smoke``) or the whole shared data."""
    if smoke:
        pypa, oval = SUBSET / "pypa" / "vulns", SUBSET / "ubuntu" / "noble-accuracy.usn.oval.xml"
        debian = [SUBSET / "debian" / "DSA-list-subset", SUBSET / "debian" / "DLA-list-subset"]
        pypi_limit, debian_limit = None, 200
    else:
        pypa, oval = (
            SHARED / "osv" / "pypi" / "vulns",
            SHARED / "ubuntu" / "oval" / "com.ubuntu.noble.usn.oval.xml",
        )
        root = SHARED / "debian" / "security-tracker"
        debian = [root / "DSA" / "list", root / "DLA" / "list"]
        pypi_limit, debian_limit = 600, 1500
    status = SUBSET / "ubuntu" / "noble-status"
    records = _pypa_records(pypa, pypi_limit)
    out: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for group, ranges_only in (("pypi", False), ("pypi-ranges", True)):
            d = work / group
            feeds = [write_pypi(records, d / "feed", ranges_only=ranges_only)]
            out.update(evaluate(feeds, list(pypi_queries(records, group)), d, group))
        d = work / "dpkg"
        d.mkdir()
        queries = list(ubuntu_queries(oval, status, "ubuntu")) + list(
            debian_queries(debian, "debian", debian_limit)
        )
        out.update(evaluate([oval, *debian], queries, d, "dpkg"))
    return out


def table(figures: dict[str, Figures]) -> str:
    """The figures as a plain-text table (plus a few example misses)."""
    lines = [
        f"{'group':<12} {'queries':>7} {'TP':>6} {'FP':>5} {'FN':>5} "
        f"{'precision':>9} {'recall':>7} {'F1':>6}"
    ]
    for group, f in sorted(figures.items()):
        lines.append(
            f"{group:<12} {f.queries:>7} {f.tp:>6} {f.fp:>5} {f.fn:>5} "
            f"{f.precision:>9.4f} {f.recall:>7.4f} {f.f1:>6.4f}"
        )
    for group, f in sorted(figures.items()):
        for kind, examples in (("FP", f.examples_fp), ("FN", f.examples_fn)):
            for e in examples[:4]:
                lines.append(f"  {group} {kind}: {e}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the accuracy table; ``--smoke`` runs on the test subsets, ``--json`` dumps figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="the small tests/data subsets")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = run(smoke=args.smoke)
    if args.json:
        print(json.dumps({g: f.as_dict() for g, f in sorted(figures.items())}, indent=2))
    else:
        print(table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
