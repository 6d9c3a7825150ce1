"""Micro-benchmark of :func:`patchwarden.match.match` against the real PyPA advisory set.

Synthetic fleet keys: each key picks a PyPI package that has advisories (names from the
advisories themselves) with probability ``--hit-ratio`` -- with a version from that package's
enumerated versions or a made-up patch version --, else a package with no advisory. Prints
index build time and keys/s for a cold (first, compiles ranges) and a warm run.

    python benchmarks/match_bench.py            # 50,000 keys
    python benchmarks/match_bench.py --smoke    # 2,000 keys, for ``make bench``
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

from patchwarden.ecosystems import Ecosystem, normalize_name
from patchwarden.intel.osv import OsvReader
from patchwarden.match import AdvisoryIndex, match
from patchwarden.model import Advisory, PackageKey

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "osv" / "pypi" / "vulns"


def synthetic_keys(
    advisories: list[Advisory], count: int, hit_ratio: float, seed: int
) -> list[PackageKey]:
    """``count`` distinct keys, about ``hit_ratio`` of them on packages with advisories."""
    rng = random.Random(seed)
    pypi = Ecosystem.parse("PyPI")
    versions: dict[str, set[str]] = defaultdict(set)
    for advisory in advisories:
        for entry in advisory.affected:
            versions[normalize_name(pypi, entry.name)].update(entry.versions)
    names = sorted(versions)
    pools = {name: sorted(vs) or ["1.0.0"] for name, vs in versions.items()}
    keys: set[PackageKey] = set()
    while len(keys) < count:
        if rng.random() < hit_ratio:
            name = rng.choice(names)
            if rng.random() < 0.8:
                version = rng.choice(pools[name])
            else:
                version = f"{rng.randint(0, 30)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}"
        else:
            name = f"clean-package-{rng.randint(0, count)}"
            version = f"{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 20)}"
        keys.add(PackageKey(ecosystem="PyPI", name=name, version=version))
    return sorted(keys, key=lambda k: (k.name, k.version))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keys", type=int, default=50_000, help="distinct keys (default 50000)")
    parser.add_argument("--hit-ratio", type=float, default=0.5, help="share on vulnerable pkgs")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="PyPA vulns/ folder")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="2000 keys, quick check")
    args = parser.parse_args(argv)
    count = 2_000 if args.smoke else args.keys
    if not args.data.is_dir():
        print(f"error: advisory folder not found: {args.data}", file=sys.stderr)
        return 2

    start = time.perf_counter()
    advisories = [r for r in OsvReader().read(args.data) if isinstance(r, Advisory)]
    read_s = time.perf_counter() - start
    keys = synthetic_keys(advisories, count, args.hit_ratio, args.seed)

    start = time.perf_counter()
    index = AdvisoryIndex.build(advisories)
    build_s = time.perf_counter() - start

    start = time.perf_counter()
    cold = match(keys, index)
    cold_s = time.perf_counter() - start
    start = time.perf_counter()
    warm = match(keys, index)
    warm_s = time.perf_counter() - start
    if warm != cold:
        print("error: two runs over the same index disagree", file=sys.stderr)
        return 1

    found = sum(len(m) for m in cold.matches.values())
    print(
        f"advisories: {len(advisories)} read in {read_s:.2f}s; index: {index.entry_count} "
        f"entries built in {build_s * 1000:.1f} ms"
    )
    print(
        f"keys: {len(keys)} ({args.hit_ratio:.0%} on vulnerable packages), matched keys: "
        f"{len(cold.matches)}, matches: {found}, skips: {len(cold.skipped)}"
    )
    print(f"cold: {cold_s:.2f}s = {len(keys) / cold_s:,.0f} keys/s")
    print(f"warm: {warm_s:.2f}s = {len(keys) / warm_s:,.0f} keys/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
