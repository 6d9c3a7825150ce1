"""Run the ecosystems' own reference tools on many version pairs at once.

Used by the differential tests (``tests/versions/``) and by ``make_golden.py``. Each
function returns one ``-1``/``0``/``1`` per pair, or ``None`` for a pair the tool rejects.

- dpkg: ``dpkg --compare-versions`` (two forks per pair; use on a few hundred pairs).
- rpm: ``rpm.vercmp`` from rpm's Lua, all pairs in one ``rpm --eval`` call.
- node: the ``semver`` package from ``tests/reference/node`` (``npm ci`` there).
- maven: ``ComparableVersion``'s ``main`` from Debian's ``maven-artifact-3.x.jar``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
MAVEN_JAR = Path("/usr/share/maven/lib/maven-artifact-3.x.jar")

Pair = tuple[str, str]


def have_dpkg() -> bool:
    """True when ``dpkg`` is on PATH."""
    return shutil.which("dpkg") is not None


def have_rpm() -> bool:
    """True when ``rpm`` is on PATH."""
    return shutil.which("rpm") is not None


def have_node_semver() -> bool:
    """True when node and ``tests/reference/node/node_modules/semver`` exist."""
    return shutil.which("node") is not None and (NODE_DIR / "node_modules" / "semver").is_dir()


def have_maven() -> bool:
    """True when java and Debian's maven-artifact jar exist."""
    return shutil.which("java") is not None and MAVEN_JAR.is_file()


def _dpkg_one(pair: Pair) -> int:
    a, b = pair
    for op, result in (("lt", -1), ("gt", 1)):
        rc = subprocess.run(
            ["dpkg", "--compare-versions", a, op, b], check=False, capture_output=True
        ).returncode
        if rc == 0:
            return result
        if rc != 1:
            raise RuntimeError(f"dpkg --compare-versions {a!r} {op} {b!r} failed (rc {rc})")
    return 0


def dpkg_compare(pairs: Sequence[Pair], workers: int = 4) -> list[int]:
    """``dpkg --compare-versions`` on every pair (``lt``, then ``gt``; else equal)."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(_dpkg_one, pairs))


_RPM_LUA = """
local out = io.open(arg_out, "w")
for line in io.lines(arg_in) do
  local a, b = line:match("^(.-)\\t(.*)$")
  local ok, r = pcall(rpm.vercmp, a, b)
  if ok then out:write(tostring(r), "\\n") else out:write("error\\n") end
end
out:close()
"""


def rpm_compare(pairs: Sequence[Pair]) -> list[int | None]:
    """rpm's ``rpm.vercmp`` (``rpmverCmp`` on parsed EVRs) on every pair, in one call."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst, lua = Path(tmp, "in"), Path(tmp, "out"), Path(tmp, "cmp.lua")
        src.write_text("".join(f"{a}\t{b}\n" for a, b in pairs), encoding="utf-8")
        lua.write_text(f"arg_in = {str(src)!r}\narg_out = {str(dst)!r}\n{_RPM_LUA}")
        subprocess.run(
            ["rpm", "--eval", f"%{{lua: dofile({str(lua)!r})}}"], check=True, capture_output=True
        )
        lines = dst.read_text(encoding="utf-8").splitlines()
    if len(lines) != len(pairs):
        raise RuntimeError(f"rpm answered {len(lines)} of {len(pairs)} pairs")
    return [None if x == "error" else int(x) for x in lines]


def node_semver_compare(pairs: Sequence[Pair]) -> list[int | None]:
    """node ``semver.compare`` on every pair (``None`` where ``semver.valid`` rejects one)."""
    text = "".join(json.dumps([a, b]) + "\n" for a, b in pairs)
    proc = subprocess.run(
        ["node", str(NODE_DIR / "compare.js")],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        cwd=NODE_DIR,
    )
    lines = proc.stdout.splitlines()
    if len(lines) != len(pairs):
        raise RuntimeError(f"node semver answered {len(lines)} of {len(pairs)} pairs")
    return [None if x == "invalid" else int(x) for x in lines]


_MAVEN_OPS = {"<": -1, "==": 0, ">": 1}


def _maven_chunk(pairs: Sequence[Pair]) -> list[int]:
    args = [v for pair in pairs for v in pair]
    proc = subprocess.run(
        [
            "java",
            "-cp",
            str(MAVEN_JAR),
            "org.apache.maven.artifact.versioning.ComparableVersion",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    # Line "   <a> <op> <b>" compares argument i with i+1; we want i = 0, 2, 4, ...
    ops = [line.split()[-2] for line in proc.stdout.splitlines() if line.startswith("   ")]
    if len(ops) != len(args) - 1:
        raise RuntimeError(f"ComparableVersion printed {len(ops)} comparisons for {len(args)}")
    return [_MAVEN_OPS[ops[i]] for i in range(0, len(ops), 2)]


def maven_compare(pairs: Sequence[Pair], chunk: int = 2000) -> list[int]:
    """Maven ``ComparableVersion`` (Debian's maven-artifact 3.x jar) on every pair."""
    for a, b in pairs:
        if not a or not b or any(c.isspace() for c in a + b):
            raise ValueError(f"maven pair {(a, b)!r}: ComparableVersion's main splits on spaces")
    out: list[int] = []
    for i in range(0, len(pairs), chunk):
        out.extend(_maven_chunk(pairs[i : i + chunk]))
    return out


def sign(x: int) -> int:
    """-1, 0 or 1 for the sign of ``x``."""
    return (x > 0) - (x < 0)


def unique(items: Iterable[str]) -> list[str]:
    """Items in first-seen order without repeats."""
    return list(dict.fromkeys(items))


def unique_pairs(pairs: Iterable[Pair]) -> list[Pair]:
    """Pairs in first-seen order without repeats."""
    return list(dict.fromkeys(pairs))


GOLDEN_DIR = HERE.parent / "data" / "versions"


def load_golden(name: str) -> list[tuple[str, str, int]]:
    """Rows ``(a, b, cmp)`` of ``tests/data/versions/<name>-golden.jsonl.gz``."""
    import gzip

    rows: list[tuple[str, str, int]] = []
    with gzip.open(GOLDEN_DIR / f"{name}-golden.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            a, b, c = json.loads(line)
            rows.append((a, b, c))
    return rows
