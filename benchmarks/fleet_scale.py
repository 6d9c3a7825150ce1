"""Fleet-scale benchmark (issue 8): N hosts scanned end to end, and the per-host way beside it.

What it does, for each N (default 100, 1,000 and 10,000):

1. **Fleet** (generated once for the largest N, on disk the way a collector reads it): host
   ``i`` has a dpkg ``status`` file of about 1,500 real Debian 11 (bullseye) binary packages
   from ``benchmarks/data/bullseye_packages.tsv`` plus a CycloneDX SBOM of its Python
   environment (about 40 real PyPI names at versions the PyPA advisories enumerate, from
   ``benchmarks/data/pypi_versions.tsv``). Hosts share one of 24 role package sets (with a
   few per-host extras); 30% of hosts are *behind*: half of their packages whose source has a
   bullseye DSA run an older version -- an earlier DSA fixed version, or the Debian revision
   just below the oldest one (``+deb11u3`` -> ``+deb11u2``; ``+deb11u1`` -> no suffix).
   Hosts are ``Debian:11`` because the shared Debian data (DSA list up to 2023-04) has
   bullseye entries and no bookworm ones, so bookworm hosts would match nothing.
2. **Advisories**: the full real set of ``shared/data`` (all PyPA OSV records, DSA and DLA
   lists, every Alpine secdb file, KEV, EPSS) is imported once into a template store.
3. **Scan** (one fresh process per N, so peak memory is per N), exactly what ``patchwarden
   scan --fleet fleet-N.yaml`` runs: the fleet file (each host's context and its two
   inventory files) is loaded, and :func:`~patchwarden.collect.scan_fleet` collects the hosts
   in worker processes (the collectors' row path, ``--workers``, default 2) while the
   scanning process stores, matches and ranks them: every finding it writes gets its risk
   score from the real risk model (:class:`~patchwarden.prioritize.Scorer`, default weights:
   EPSS or severity prior, KEV floors, exposure, CVSS impact, criticality, data sensitivity,
   environment) and its SSVC decision, kept in the store. Then the whole ranking is read out
   in rank order (``store.ranked_findings()``, every open finding) and the top 100 alone.
   *End to end* is fleet file + collect + store + match + rank + reading the whole ranking.
   CPU time is reported for the scanning process and for the collectors, and peak memory
   for the whole process tree (sampled from ``/proc``).
   Planning is timed on its own, the way ``patchwarden actions`` does it: every open finding
   read with its data (``store.findings()``), scored with explanations
   (:func:`~patchwarden.prioritize.score_findings`) and grouped into upgrade actions
   (:func:`~patchwarden.prioritize.plan_actions`).
4. **Rescan** at the largest N after changing 1% of the hosts' files: the product's own
   incremental path, with nothing remembered by the benchmark. The store keeps each host's
   source signature (device, inode, size, times), so unchanged files are not read, unchanged
   inventories are not matched, and only what the scan writes is ranked again; the ratio is
   reported for the scan and for scan + reading the whole ranking again.
5. **Per-host comparison**: single-host scanners (Trivy, grype) evaluate every package of each
   target against the advisory database separately. That is timed on a sample of hosts
   (key list built and every key matched, index built once, no cross-host dedup) and
   extrapolated to N, beside the fleet's deduplicated matching of the same hosts.

Run ``python benchmarks/fleet_scale.py`` (``--smoke`` for ``make bench``, ``--hosts``,
``--json OUT``, ``--db postgresql://...`` to also measure PostgreSQL).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchwarden.collect import scan_fleet, start_workers
from patchwarden.inventory.fleet import load_fleet
from patchwarden.match import AdvisoryIndex, match
from patchwarden.model import PackageKey
from patchwarden.prioritize import plan_actions, rank, score_findings
from patchwarden.service import (
    import_feeds,
    package_key,
)
from patchwarden.store import Store
from patchwarden.versions import scheme_for

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
SHARED = HERE.parent.parent / "shared" / "data"
DISTRO = "Debian:11"
ROLES = 24
BEHIND = 0.3
PY_PACKAGES = 40
PER_HOST_SAMPLE = 20
_VERSION_RE = re.compile(r"^\d[0-9A-Za-z.!+_-]*$")
_DEB11U = re.compile(r"^(?P<head>.*?)(?P<sep>[+~])deb11u(?P<n>\d+)$")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolPackage:
    """One bullseye binary package and the older source versions a host may run."""

    name: str
    version: str
    source: str
    source_version: str | None
    fields: dict[str, str]
    older: tuple[str, ...]


def feed_paths(shared: Path, *, smoke: bool) -> list[Path]:
    """Every advisory file of the shared data (smoke: PyPA, DSA, KEV and EPSS only)."""
    paths = [
        shared / "osv" / "pypi",
        shared / "debian" / "security-tracker" / "DSA" / "list",
    ]
    if not smoke:
        paths.append(shared / "debian" / "security-tracker" / "DLA" / "list")
        paths.extend(sorted((shared / "alpine" / "secdb").glob("*/*.json")))
    paths.append(shared / "kev" / "known_exploited_vulnerabilities-2026.01.29.json")
    paths.append(shared / "epss" / "epss_scores-2026-01-30.csv.gz")
    return paths


def _bullseye_fixes(shared: Path) -> dict[str, list[str]]:
    text = (shared / "debian" / "security-tracker" / "DSA" / "list").read_text()
    fixes: dict[str, list[str]] = defaultdict(list)
    for source, version in re.findall(r"\[bullseye\] - (\S+) (\S+)", text):
        if version[0].isdigit():
            fixes[source].append(version)
    return fixes


def _previous_revision(version: str) -> str | None:
    """The Debian stable-update revision just below ``version`` (None when not one).

    >>> _previous_revision("2.4.56-1~deb11u2"), _previous_revision("1.2-3+deb11u1")
    ('2.4.56-1~deb11u1', '1.2-3')
    """
    m = _DEB11U.match(version)
    if m is None:
        return None
    n = int(m["n"])
    return f"{m['head']}{m['sep']}deb11u{n - 1}" if n > 1 else m["head"]


def load_pool(shared: Path) -> tuple[list[PoolPackage], list[tuple[str, tuple[str, ...]]]]:
    """The bullseye package pool with older versions, and the PyPI (name, versions) pool."""
    dpkg = scheme_for(DISTRO)
    fixes = _bullseye_fixes(shared)
    lines = (DATA / "bullseye_packages.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    pool = []
    for line in lines[1:]:
        fields = dict(zip(header, line.split("\t"), strict=True))
        source, _, rest = fields["Source"].partition(" (")
        source = source or fields["Package"]
        source_version = rest.rstrip(")") or None
        current = dpkg.parse(source_version or fields["Version"])
        candidates = {v for v in fixes.get(source, []) if dpkg.parse(v) < current}
        if fixes.get(source):
            lowest = min(fixes[source], key=dpkg.parse)
            prev = _previous_revision(lowest)
            if prev is not None and dpkg.parse(prev) < current:
                candidates.add(prev)
        pool.append(
            PoolPackage(
                name=fields["Package"],
                version=fields["Version"],
                source=source,
                source_version=source_version,
                fields=fields,
                older=tuple(sorted(candidates, key=dpkg.parse)),
            )
        )
    pypi = []
    for line in (DATA / "pypi_versions.tsv").read_text().splitlines()[1:]:
        name, versions = line.split("\t")
        good = tuple(v for v in versions.split() if _VERSION_RE.match(v))
        if good:
            pypi.append((name, good))
    return pool, pypi


def _stanza(pkg: PoolPackage, older: str | None) -> str:
    f = pkg.fields
    version = older or pkg.version
    source = pkg.source if pkg.source != pkg.name else ""
    source_version = older or pkg.source_version
    if source_version and source_version != version:
        source = f"{pkg.source} ({source_version})"
    lines = [
        f"Package: {pkg.name}",
        "Status: install ok installed",
        f"Priority: {f['Priority'] or 'optional'}",
        f"Section: {f['Section'] or 'misc'}",
        f"Installed-Size: {f['Installed-Size'] or '1'}",
        f"Maintainer: {f['Maintainer']}",
        f"Architecture: {f['Architecture']}",
    ]
    if source:
        lines.append(f"Source: {source}")
    lines += [f"Version: {version}", f"Description: {f['Description']}"]
    return "\n".join(lines) + "\n"


def _role_sets(pool: list[PoolPackage]) -> list[list[int]]:
    core = [i for i, p in enumerate(pool) if p.fields["Priority"] in {"required", "important"}]
    rest = [i for i in range(len(pool)) if i not in set(core)]
    out = []
    for role in range(ROLES):
        rng = random.Random(f"role-{role}")
        out.append(sorted(core + rng.sample(rest, 1_500 - len(core) - 20)))
    return out


def host_files(
    index: int,
    pool: list[PoolPackage],
    pypi: list[tuple[str, tuple[str, ...]]],
    roles: list[list[int]],
    variant: int = 0,
) -> tuple[str, str]:
    """(dpkg status text, CycloneDX JSON text) of host ``index``; ``variant`` > 0 changes it."""
    rng = random.Random(f"host-{index}")
    chosen = set(roles[index % ROLES])
    chosen.update(rng.sample(range(len(pool)), 20))
    behind = rng.random() < BEHIND
    stanzas = []
    for i in sorted(chosen):
        pkg = pool[i]
        older = None
        if behind and pkg.older:
            draw = rng.random()
            if draw < 0.05:  # far behind: any earlier version
                older = rng.choice(pkg.older)
            elif draw < 0.3:  # one security update behind
                older = pkg.older[-1]
        if variant and older is not None and rng.random() < 0.5:
            older = None  # the host was patched since
        stanzas.append(_stanza(pkg, older))
    for i in rng.sample(range(len(pool)), 3):  # removed, configuration files left
        stanzas.append(
            _stanza(pool[i], None).replace("install ok installed", "deinstall ok config-files")
        )
    components = []
    for name, versions in rng.sample(pypi, PY_PACKAGES):
        # most environments are on the newest version the advisories name, some lag
        lag = rng.random() < (0.1 if variant else 0.2)
        version = rng.choice(versions) if lag else versions[-1]
        components.append(
            {
                "type": "library",
                "name": name,
                "version": version,
                "purl": f"pkg:pypi/{name}@{version}",
            }
        )
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "metadata": {"component": {"type": "application", "name": f"host-{index:05d}"}},
        "components": components,
    }
    return "\n".join(stanzas), json.dumps(bom)


def _generate_chunk(args: tuple[Path, int, int, int]) -> int:
    root, start, stop, variant = args
    pool, pypi = load_pool(SHARED)
    roles = _role_sets(pool)
    for i in range(start, stop):
        folder = root / f"host-{i:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        status, bom = host_files(i, pool, pypi, roles, variant)
        (folder / "status").write_text(status)
        (folder / "python.cdx.json").write_text(bom)
    return stop - start


def generate(root: Path, hosts: int, workers: int) -> float:
    """Write the fleet's files (skipped when already there); returns seconds spent."""
    marker = root / f".generated-{hosts}"
    if marker.exists():
        return 0.0
    t0 = time.perf_counter()
    step = 250
    jobs = [(root, s, min(s + step, hosts), 0) for s in range(0, hosts, step)]
    with multiprocessing.Pool(workers) as pool:
        sum(pool.imap_unordered(_generate_chunk, jobs))
    marker.touch()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- the fleet file

_ENVIRONMENTS = ("prod", "prod", "staging", "dev")


def write_fleet_file(root: Path, hosts: int) -> Path:
    """``fleet-<hosts>.yaml``: the first ``hosts`` hosts with their context (environment,
    criticality, internet exposure, service) and inventory files, as a user's fleet file
    names them."""
    path = root.parent / f"fleet-{hosts}.yaml"
    lines = ["assets:"]
    for i in range(hosts):
        folder = root / f"host-{i:05d}"
        lines += [
            f"  - name: host-{i:05d}",
            f"    environment: {_ENVIRONMENTS[i % len(_ENVIRONMENTS)]}",
            f"    criticality: {1 + i % 5}",
            f"    internet_exposed: {'true' if i % ROLES < 4 else 'false'}",
            f"    service: role-{i % ROLES}",
            "    inventory:",
            f"      dpkg_status: {folder / 'status'}",
            f"      sbom: {folder / 'python.cdx.json'}",
            f"      distro: '{DISTRO}'",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


class TreeMonitor:
    """Samples this process and its descendants (the collectors' forkserver and workers)
    from ``/proc``: the peak of their summed resident memory, and the CPU time each used."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peak_rss = 0
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")
        self._page = os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> TreeMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        """One walk of the tree through ``/proc/PID/task/TID/children`` (cheap: only this
        tree's entries are read)."""
        rss, todo, me = 0, [os.getpid()], os.getpid()
        while todo:
            pid = todo.pop()
            try:
                text = Path(f"/proc/{pid}/stat").read_text()
                for task in os.listdir(f"/proc/{pid}/task"):
                    todo.extend(
                        int(c)
                        for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                    )
            except OSError:
                continue  # it exited meanwhile
            fields = text[text.rindex(")") + 2 :].split()
            rss += int(fields[21]) * self._page
            if pid != me:
                self.cpu[pid] = (int(fields[11]) + int(fields[12])) / self._tick
        self.peak_rss = max(self.peak_rss, rss)

    @property
    def others_cpu(self) -> float:
        """CPU seconds of the descendants seen (the collectors)."""
        return sum(self.cpu.values())


# --------------------------------------------------------------------------- one N


def _read_ranking(store: Store) -> dict[str, Any]:
    """Read the stored ranking: all of it, and the top 100 alone."""
    t0 = time.perf_counter()
    scored = rank(store)  # what a reader calls first; the scan left nothing to score
    t1 = time.perf_counter()
    findings = store.ranked_findings()
    t2 = time.perf_counter()
    top = store.ranked_findings(limit=100)
    t3 = time.perf_counter()
    assert top == findings[:100]
    return {
        "rank_check_s": round(t1 - t0, 3),
        "rank_left": scored,
        "rank_read_s": round(t2 - t1, 2),
        "top100_s": round(t3 - t2, 3),
        "open_findings": len(findings),
        "kev_findings": sum(1 for f in findings if f.kev),
        "top_risk": round(findings[0].risk or 0.0, 2) if findings else None,
    }


def _plan(store: Store) -> dict[str, Any]:
    """Plan the way ``patchwarden actions`` does: findings with their data, scored with
    explanations, grouped into actions."""
    t0 = time.perf_counter()
    findings = store.findings()
    t1 = time.perf_counter()
    scored = score_findings(store, findings)
    t2 = time.perf_counter()
    actions = plan_actions(scored)
    t3 = time.perf_counter()
    return {
        "plan_read_s": round(t1 - t0, 2),
        "plan_score_s": round(t2 - t1, 2),
        "plan_group_s": round(t3 - t2, 2),
        "plan_s": round(t3 - t0, 2),
        "plan_actions": len(actions),
        "plan_peak_parent_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _run_scan(store: Store, fleet_path: Path, workers: int, now: dt.datetime) -> dict[str, Any]:
    """What ``patchwarden scan --fleet`` does: load the fleet file, collect in worker
    processes (files whose signature the store remembers are not read), store, match and
    rank; then the whole ranking is read."""
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    with TreeMonitor() as monitor:
        start_workers()  # as the CLI does: its start-up overlaps loading the fleet file
        fleet = load_fleet(fleet_path, cache=store)
        t1 = time.perf_counter()
        report = scan_fleet(store, fleet, workers=workers, now=now)
    total = time.perf_counter() - t0
    parent_cpu = time.process_time() - cpu0
    ranking = _read_ranking(store)
    assert not report.errors, report.errors[:3]
    return {
        "scan_s": round(total, 2),
        "fleet_file_s": round(t1 - t0, 2),
        "parent_cpu_s": round(parent_cpu, 1),
        "collector_cpu_s": round(monitor.others_cpu, 1),
        "peak_tree_mib": round(monitor.peak_rss / 2**20),
        **ranking,
        "end_to_end_s": round(total + ranking["rank_check_s"] + ranking["rank_read_s"], 2),
        "scored": report.scored,
        "assets": len(report.assets),
        "assets_matched": sum(1 for a in report.assets if a.matched),
        "assets_read": sum(1 for a in report.assets if a.changed or a.matched),
        "installed_rows": sum(a.packages for a in report.assets),
        "distinct_keys": report.distinct_keys,
        "reused_keys": report.reused_keys,
        "advisories_considered": report.advisories_considered,
        "new": sum(a.findings.new for a in report.assets),
        "resolved": sum(a.findings.resolved for a in report.assets),
        "reopened": sum(a.findings.reopened for a in report.assets),
    }


def _matching_comparison(store: Store, hosts: int, sample: int) -> dict[str, Any]:
    """Fleet (deduplicated) matching vs the per-host way, on the same stored inventories."""
    from patchwarden.model import InventoryColumns

    with store.transaction() as conn:
        rows_by_host: dict[str, InventoryColumns] = {}
        step = max(1, hosts // sample)
        for i in range(0, hosts, step)[:sample]:
            rows_by_host[f"host-{i:05d}"] = store.stored_rows(conn, f"host-{i:05d}")
        lines = [
            "\t".join(r)
            for r in conn.exec_driver_sql(
                "SELECT ecosystem, name, version, source_name, source_version FROM packages"
            )
        ]
        t0 = time.perf_counter()
        keys = {k for k in (_key(line) for line in lines) if k is not None}
        names = {(k.ecosystem.split(":")[0], k.name) for k in keys}
        advisories = store.advisories_for(conn, names)
        load = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = AdvisoryIndex.build(advisories)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    keys = {k for k in (_key(line) for line in lines) if k is not None}
    match(sorted(keys, key=lambda k: (k.ecosystem, k.name, k.version)), index)
    fleet = time.perf_counter() - t0
    t0 = time.perf_counter()
    for rows in rows_by_host.values():
        host_keys = [k for k in map(_key, rows.lines) if k is not None]
        match(host_keys, index)
    per_host = (time.perf_counter() - t0) / len(rows_by_host)
    return {
        "advisory_load_s": round(load, 3),
        "index_build_s": round(build, 3),
        "fleet_match_s": round(fleet, 3),
        "fleet_distinct_keys": len(keys),
        "per_host_sample": len(rows_by_host),
        "per_host_match_s_each": round(per_host, 4),
        "per_host_match_s_extrapolated": round(per_host * hosts, 2),
        "match_speedup": round(per_host * hosts / fleet, 1) if fleet else None,
    }


def _key(line: str) -> PackageKey | None:
    from patchwarden.model import InstalledPackage

    eco, name, version, src, srcver = line.split("\t")
    return package_key(
        InstalledPackage(
            ecosystem=eco,
            name=name,
            version=version,
            source_name=src or None,
            source_version=srcver or None,
        )
    )


def _change_one_percent(root: Path, hosts: int) -> list[int]:
    """Rewrite the files of 1% of the hosts as a later collection (some packages upgraded)."""
    pool, pypi = load_pool(SHARED)
    roles = _role_sets(pool)
    changed = list(range(0, hosts, 100))
    for i in changed:
        status, bom = host_files(i, pool, pypi, roles, variant=1)
        folder = root / f"host-{i:05d}"
        (folder / "status").write_text(status)
        (folder / "python.cdx.json").write_text(bom)
    return changed


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """One N in this process: full scan, rank, plan; optionally a 1% rescan; comparison."""
    hosts: int = args.one
    root = Path(args.workdir) / "fleet"
    url: str = args.store_url
    store = Store.open(url)
    if url.startswith("postgresql"):
        with store.transaction() as conn:
            for table in ("findings", "asset_inventories", "assets", "packages", "match_cache"):
                conn.exec_driver_sql(f"DELETE FROM {table}")
    now = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    fleet_path = root.parent / f"fleet-{hosts}.yaml"
    load_before = os.getloadavg()
    full = _run_scan(store, fleet_path, args.workers, now)
    result: dict[str, Any] = {"hosts": hosts, "store": url.split(":", 1)[0], **full}
    result["load_avg_before"] = [round(x, 2) for x in load_before]
    result["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.plan:
        result.update(_plan(store))
    result.update(_matching_comparison(store, hosts, args.sample))
    if args.rescan:
        changed = _change_one_percent(root, hosts)
        again = _run_scan(store, fleet_path, args.workers, now + dt.timedelta(1))
        result["rescan"] = {"changed_hosts": len(changed), **again}
        result["rescan_ratio"] = round(again["end_to_end_s"] / full["end_to_end_s"], 3)
        result["rescan_scan_ratio"] = round(again["scan_s"] / full["scan_s"], 3)
        for i in changed:  # put the fleet back for later runs
            _generate_chunk((root, i, i + 1, 0))
    store.close()
    return result


# --------------------------------------------------------------------------- main


def _table(results: list[dict[str, Any]]) -> str:
    head = (
        "store       hosts  installed  fleet file  scan s  read s  e2e s  parent CPU  "
        "collect CPU  peak MiB  findings  match x  rescan 1% (scan / e2e)  plan s"
    )
    out = [head, "-" * len(head)]
    for r in results:
        rescan = "-"
        if "rescan_ratio" in r:
            rescan = f"{r['rescan_scan_ratio'] * 100:.1f}% / {r['rescan_ratio'] * 100:.1f}%"
        plan = f"{r['plan_s']:.1f}" if "plan_s" in r else "-"
        out.append(
            f"{r['store']:<10} {r['hosts']:>6} {r['installed_rows']:>10,}"
            f" {r['fleet_file_s']:>10.1f} {r['scan_s']:>7.1f} {r['rank_read_s']:>7.1f}"
            f" {r['end_to_end_s']:>6.1f} {r['parent_cpu_s']:>11.1f} {r['collector_cpu_s']:>12.1f}"
            f" {r['peak_tree_mib']:>9,.0f} {r['open_findings']:>9,}"
            f" {r['match_speedup'] or 0:>8,.0f} {rescan:>23} {plan:>7}"
        )
    return "\n".join(out)


def main(argv: Iterable[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--hosts", default="100,1000,10000", help="comma-separated fleet sizes")
    ap.add_argument("--smoke", action="store_true", help="small and quick (make bench)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--db", help="also measure this PostgreSQL URL (private schema per run)")
    ap.add_argument("--workdir", help="where the fleet files and stores go (default: a temp dir)")
    ap.add_argument("--workers", type=int, default=2, help="collector processes")
    ap.add_argument("--sample", type=int, default=PER_HOST_SAMPLE, help="per-host sample size")
    ap.add_argument("--no-rescan", dest="rescan", action="store_false")
    ap.add_argument(
        "--no-plan", dest="plan", action="store_false", help="skip timing the planning path"
    )
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--store-url", help=argparse.SUPPRESS)
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.one is not None:
        print(json.dumps(run_one(args)))
        return 0
    sizes = [int(n) for n in ("20,60" if args.smoke else args.hosts).split(",")]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="pw-fleet-"))
    work.mkdir(parents=True, exist_ok=True)
    gen = generate(work / "fleet", max(sizes), args.workers)
    for n in sizes:
        write_fleet_file(work / "fleet", n)
    print(f"fleet of {max(sizes)} hosts in {work / 'fleet'} (generated in {gen:.1f} s)")
    template = work / "advisories.db"
    t0 = time.perf_counter()
    if not template.exists():
        store = Store.open(f"sqlite:///{template}")
        import_feeds(store, feed_paths(SHARED, smoke=args.smoke))
        counts = store.counts()
        store.close()
    else:
        counts = Store.open(f"sqlite:///{template}").counts()
    imported = time.perf_counter() - t0
    print(
        f"advisories: {counts['advisories']:,} ({counts['vulnerabilities']:,} vulnerabilities, "
        f"{counts['kev']:,} KEV, {counts['epss']:,} EPSS) imported in {imported:.1f} s"
    )
    targets: list[tuple[str, str]] = []
    for n in sizes:
        db = work / f"fleet-{n}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        shutil.copy(template, db)
        targets.append((f"sqlite:///{db}", str(n)))
    if args.db:
        schema = f"pw_bench_{os.getpid()}"
        pg = _pg_url(args.db, schema)
        _pg_schema(args.db, schema, create=True)
        store = Store.open(pg)
        import_feeds(store, feed_paths(SHARED, smoke=args.smoke))
        store.close()
        targets += [(pg, str(n)) for n in sizes]
    results = []
    try:
        for url, size in targets:
            cmd = [sys.executable, __file__, "--one", size, "--store-url", url]
            cmd += ["--workdir", str(work), "--workers", str(args.workers)]
            cmd += ["--sample", str(args.sample)]
            if not args.rescan or size != str(max(sizes)):
                cmd.append("--no-rescan")
            if not args.plan:
                cmd.append("--no-plan")
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(_table(results[-1:]).splitlines()[-1], flush=True)
    finally:
        if args.db:
            _pg_schema(args.db, schema, create=False)
    print()
    print(_table(results))
    report = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "advisories": counts,
        "import_s": round(imported, 1),
        "generate_s": round(gen, 1),
        "results": results,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _pg_url(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def _pg_schema(url: str, schema: str, *, create: bool) -> None:
    import sqlalchemy as sa

    from patchwarden.store import normalize_url

    engine = sa.create_engine(normalize_url(url))
    with engine.begin() as conn:
        if create:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        else:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
