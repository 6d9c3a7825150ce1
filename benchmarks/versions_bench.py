"""Parse and compare throughput of every version scheme, and univers beside ours.

Reads the real version strings of ``tests/data/versions`` (golden tables and real-data
lists), then per scheme prints: cold parses/s (cache emptied), warm parses/s (cached, as
the matcher sees repeated advisory bounds), comparisons/s of parsed values, and for the
schemes univers also implements, univers' parse+compare rate and its disagreements with
the reference tools' golden tables.

Usage: ``python benchmarks/versions_bench.py [--smoke]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from patchwarden.versions import SCHEMES, clear_caches

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "versions"


def _golden(name: str) -> list[tuple[str, str, int]]:
    with gzip.open(DATA / f"{name}-golden.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [tuple(json.loads(line)) for line in fh]


def _corpus() -> dict[str, list[tuple[str, str, int | None]]]:
    """Pairs per scheme: golden rows where a reference exists, else real-string pairs."""
    rng = random.Random(1)
    out: dict[str, list[tuple[str, str, int | None]]] = {}
    for name in ("dpkg", "rpm", "semver", "maven"):
        out[name] = list(_golden(name))
    apk = (DATA / "apk-secdb-versions.txt").read_text(encoding="utf-8").split()
    apk = [v for v in apk if SCHEMES["apk"].is_valid(v)]
    out["apk"] = [(rng.choice(apk), rng.choice(apk), None) for _ in range(5000)]
    with gzip.open(DATA / "pypi-osv-versions.txt.gz", "rt", encoding="utf-8") as fh:
        pep = [v for v in fh.read().split() if SCHEMES["pep440"].is_valid(v)]
    out["pep440"] = [(rng.choice(pep), rng.choice(pep), None) for _ in range(5000)]
    out["go"] = [("v" + a.lstrip("v"), "v" + b.lstrip("v"), c) for a, b, c in out["semver"]]
    return out


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f}/s" if seconds > 0 else "         inf/s"


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _univers_classes() -> dict[str, Any]:
    from univers import versions as uv

    return {
        "dpkg": uv.DebianVersion,
        "rpm": uv.RpmVersion,
        "apk": uv.AlpineLinuxVersion,
        "semver": uv.SemverVersion,
        "maven": uv.MavenVersion,
        "pep440": uv.PypiVersion,
        "go": uv.GolangVersion,
    }


def _cmp(a: Any, b: Any) -> int:
    return -1 if a < b else (1 if a > b else 0)


def bench_scheme(name: str, pairs: Sequence[tuple[str, str, int | None]], univ: Any) -> None:
    """Print one scheme's figures."""
    scheme = SCHEMES[name]
    strings = list(dict.fromkeys(v for a, b, _ in pairs for v in (a, b)))
    clear_caches()
    cold = _timed(lambda: [scheme.parse(s) for s in strings])
    warm = _timed(lambda: [scheme.parse(s) for s in strings])
    parsed = [(scheme.parse(a), scheme.parse(b)) for a, b, _ in pairs]
    cmp_t = _timed(lambda: [x < y for x, y in parsed])
    print(
        f"{name:<7} {len(strings):>6} strings  parse cold {_rate(len(strings), cold)}"
        f"  warm {_rate(len(strings), warm)}  compare {_rate(len(parsed), cmp_t)}"
    )
    if univ is None:
        return
    ok_pairs: list[tuple[Any, Any, int | None]] = []
    ok_raw: list[tuple[str, str]] = []
    rejected = 0

    def parse_univers() -> None:
        nonlocal rejected
        cache: dict[str, Any] = {}
        for a, b, c in pairs:
            try:
                ua = cache[a] if a in cache else cache.setdefault(a, univ(a))
                ub = cache[b] if b in cache else cache.setdefault(b, univ(b))
            except Exception:  # univers raises assorted errors on input it rejects
                rejected += 1
                continue
            ok_pairs.append((ua, ub, c))
            ok_raw.append((a, b))

    u_parse = _timed(parse_univers)
    u_cmp = _timed(lambda: [x < y for x, y, _ in ok_pairs])
    if any(c is not None for _, _, c in pairs):
        u_bad = sum(1 for x, y, c in ok_pairs if c is not None and _cmp(x, y) != c)
        ours_bad = sum(1 for a, b, c in pairs if c is not None and scheme.compare(a, b) != c)
        verdict = f"vs reference tool: univers wrong {u_bad}, ours wrong {ours_bad}"
    else:
        differ = sum(
            1
            for (x, y, _), (a, b) in zip(ok_pairs, ok_raw, strict=True)
            if _cmp(x, y) != scheme.compare(a, b)
        )
        verdict = f"no reference tool here; univers and ours differ on {differ} pairs"
    print(
        f"  univers {univ.__name__:<18} parse {_rate(len(strings), u_parse)}"
        f"  compare {_rate(len(ok_pairs), u_cmp)}  pairs univers rejects {rejected}\n"
        f"          {verdict}; ours/univers time: parse {cold / u_parse:.2f}"
        f", compare {cmp_t / u_cmp:.2f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; ``--smoke`` uses 300 pairs per scheme."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="quick run on 300 pairs each")
    args = parser.parse_args(argv)
    corpus = _corpus()
    univers = _univers_classes()
    for name in ("dpkg", "rpm", "apk", "pep440", "semver", "go", "maven"):
        pairs = corpus[name][:300] if args.smoke else corpus[name]
        bench_scheme(name, pairs, univers.get(name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
