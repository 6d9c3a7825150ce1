"""Prioritization benchmark: which strategy finds the exploited vulnerabilities with the least work.

Measures, as in Jacobs et al. ("Improving vulnerability remediation through better exploit
prediction", Journal of Cybersecurity 2020, and the EPSS paper, DTRAP 2021), for each strategy
that picks a set of vulnerabilities to remediate:

* **coverage** = TP / (TP + FN): the share of exploited vulnerabilities it remediates;
* **efficiency** = TP / (TP + FP): the share of remediated vulnerabilities that were exploited;
* **effort** = TP + FP: how many must be patched (also as a share of the population).

"Exploited" means listed in CISA KEV. Strategies: CVSS >= 7, CVSS >= 9, EPSS >= 0.01 / 0.05 /
0.1 / 0.5, and patchwarden's score (:func:`patchwarden.risk.score`) for one neutral asset (see
:data:`NEUTRAL_HOST`), at a few score thresholds and at the same effort as each baseline (its
top-k, k = the baseline's effort). Populations and what each can and cannot show are built in
:func:`build_populations`; the honest limits of the shared data are printed with the table.

    python benchmarks/prioritization.py                 # full run on ../shared/data
    python benchmarks/prioritization.py --smoke         # EPSS populations sampled 1/100
    python benchmarks/prioritization.py --out DIR       # where the JSON and PNG go

Outputs: a table on stdout, ``prioritization.json`` and ``prioritization.png`` (coverage vs
effort) in ``--out`` (default ``benchmarks/out/``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field
from pathlib import Path

from patchwarden.errors import FeedFormatError, PatchwardenError, Problem
from patchwarden.intel import FeedInfo, detect
from patchwarden.model import Advisory, EpssScore, KevEntry, Severity
from patchwarden.risk import CvssInfo, RiskInput, RiskScore, parse_cvss, rank_key, score

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
"""The shared real data (see its README.md for provenance)."""
OUT = Path(__file__).resolve().parent / "out"
"""Default output folder (git-ignored)."""

CVSS_THRESHOLDS = (7.0, 9.0)
"""CVSS base score thresholds of the baselines."""
EPSS_THRESHOLDS = (0.01, 0.05, 0.1, 0.5)
"""EPSS probability thresholds."""
SCORE_THRESHOLDS = (0.5, 2.5, 5.0, 10.0, 25.0)
"""patchwarden score thresholds. For :data:`NEUTRAL_HOST` the score is 48 x EPSS x CIA impact
(CIA in [0.1, 1] from the CVSS vector), so 0.5 / 2.5 / 5 / 25 sit near EPSS 0.01 / 0.05 / 0.1 /
0.5 at full C/I/A impact. Without a vector (the EPSS populations) CIA is the ``unknown`` prior
0.5, the score is 24 x EPSS and never reaches 25."""

NEUTRAL_HOST = {
    "asset": "prod-host",
    "environment": "prod",
    "criticality": 3,
    "data_sensitivity": 3,
    "internet_exposed": False,
    "tags": [],
}
"""The one asset context every vulnerability is scored on: a typical production host
(prod, criticality 3 of 5, data sensitivity 3 of 5, not internet-exposed, no compensating
controls). It multiplies every score by the same 0.48, so only the vulnerability's own data
(EPSS, KEV, CVSS) orders the list."""

_OVAL_NS = "{http://oval.mitre.org/XMLSchema/oval-definitions-5}"
_VERSION_RANK = {"4.0": 3, "3.1": 2, "3.0": 2, "2.0": 1}


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How one remediation set fares against the exploited set of its population."""

    tp: int
    """Remediated and exploited."""
    fp: int
    """Remediated, not exploited."""
    fn: int
    """Exploited, not remediated."""
    size: int
    """Population size."""

    @property
    def effort(self) -> int:
        """How many are remediated (TP + FP)."""
        return self.tp + self.fp

    @property
    def effort_share(self) -> float:
        """Effort as a share of the population (0 for an empty population)."""
        return self.effort / self.size if self.size else 0.0

    @property
    def coverage(self) -> float | None:
        """TP / (TP + FN); None when the population has no exploited vulnerability."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def efficiency(self) -> float | None:
        """TP / (TP + FP); None when nothing is remediated."""
        return self.tp / self.effort if self.effort else None


def outcome(selected: Collection[str], exploited: AbstractSet[str], size: int) -> Outcome:
    """Count TP / FP / FN of remediating ``selected`` in a population of ``size``.

    ``selected`` must be members of the population; ``exploited`` is the population's
    exploited subset.

    >>> o = outcome({"a", "b", "c"}, {"b", "d"}, size=10)
    >>> o.tp, o.fp, o.fn, o.effort, o.coverage, round(o.efficiency or 0, 3), o.effort_share
    (1, 2, 1, 3, 0.5, 0.333, 0.3)
    >>> outcome(set(), {"a"}, size=5).efficiency is None
    True
    >>> outcome({"a"}, set(), size=5).coverage is None
    True
    """
    chosen = set(selected)
    tp = len(chosen & exploited)
    return Outcome(tp=tp, fp=len(chosen) - tp, fn=len(exploited) - tp, size=size)


def at_least(values: Mapping[str, float], threshold: float) -> set[str]:
    """The ids whose value is at least ``threshold`` (ids without a value are never chosen).

    >>> sorted(at_least({"a": 7.0, "b": 6.9, "c": 9.8}, 7.0))
    ['a', 'c']
    """
    return {key for key, value in values.items() if value >= threshold}


def curve(ranked: Sequence[str], exploited: AbstractSet[str]) -> list[tuple[int, int]]:
    """Cumulative (effort, TP) after each step down a ranked list, starting at (0, 0).

    >>> curve(["x", "a", "y", "b"], {"a", "b"})
    [(0, 0), (1, 0), (2, 1), (3, 1), (4, 2)]
    """
    points = [(0, 0)]
    tp = 0
    for effort, key in enumerate(ranked, start=1):
        tp += key in exploited
        points.append((effort, tp))
    return points


def tie_fair_tp(
    order: Sequence[str], scores: Mapping[str, float], k: int, exploited: AbstractSet[str]
) -> float:
    """Expected TP of the top ``k`` when ties at the cut are broken at random.

    ``order`` is sorted by descending score with some fixed tie order; when the k-th and the
    (k+1)-th share a score, which of the tied ones make the cut is arbitrary, so this counts
    the tied group by its exploited share instead.

    >>> order = ["a", "b", "c", "d"]
    >>> tie_fair_tp(order, {"a": 3, "b": 2, "c": 2, "d": 2}, 2, {"a", "d"})
    1.3333333333333333
    >>> tie_fair_tp(order, {"a": 3, "b": 2, "c": 2, "d": 1}, 3, {"c"})
    1.0
    """
    if k <= 0:
        return 0.0
    if k >= len(order):
        return float(sum(c in exploited for c in order))
    cut = scores[order[k - 1]]
    above = [c for c in order if scores[c] > cut]
    tied = [c for c in order if scores[c] == cut]
    slots = k - len(above)
    hits_tied = sum(c in exploited for c in tied)
    return sum(c in exploited for c in above) + slots * hits_tied / len(tied)


def thin(points: Sequence[tuple[int, int]], limit: int = 2000) -> list[tuple[int, int]]:
    """At most about ``limit`` points of a curve, keeping both ends and every TP step.

    >>> thin([(0, 0), (1, 0), (2, 0), (3, 1), (4, 1)], limit=2)
    [(0, 0), (2, 0), (3, 1), (4, 1)]
    """
    if len(points) <= limit:
        return list(points)
    step = max(1, len(points) // limit)
    return [
        p
        for i, p in enumerate(points)
        if i % step == 0 or i == len(points) - 1 or (i and p[1] != points[i - 1][1])
    ]


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True, kw_only=True)
class Cvss:
    """The CVSS vector chosen for one CVE and where it came from."""

    info: CvssInfo
    """The parsed vector."""
    source: str
    """``ubuntu-oval`` or the PyPA advisory id."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Data:
    """Everything the benchmark reads, keyed by CVE id."""

    kev_then: Mapping[str, KevEntry]
    """The older KEV catalog (what was known at the split date)."""
    kev_then_version: str
    """Its catalogVersion."""
    kev_then_released: dt.date
    """Its dateReleased: the split date T."""
    kev_now: Mapping[str, KevEntry]
    """The newer KEV catalog (the outcome)."""
    kev_now_version: str
    """Its catalogVersion."""
    epss: Mapping[str, EpssScore]
    """EPSS scores (one snapshot)."""
    epss_date: dt.date
    """The EPSS score date."""
    cvss: Mapping[str, Cvss]
    """Best CVSS vector per CVE from the Ubuntu OVAL file and the PyPA advisories."""
    cvss_oval: int
    """CVEs with a vector in the OVAL file."""
    cvss_pypa: int
    """CVEs with a vector in the PyPA advisories."""
    oval_date: str
    """The OVAL generator timestamp."""
    problems: tuple[str, ...] = ()
    """Records the readers skipped, as messages."""


def _records(path: Path) -> list[object]:
    if not path.exists():
        raise FeedFormatError(f"{path}: no such file or directory")
    return list(detect(path).read(path))


def read_kev(path: Path, problems: list[str]) -> tuple[dict[str, KevEntry], str, dt.date | None]:
    """KEV entries by CVE id, the catalogVersion and the release date (project's KEV reader)."""
    entries: dict[str, KevEntry] = {}
    version = ""
    released: dt.date | None = None
    for record in _records(path):
        if isinstance(record, KevEntry):
            entries[record.cve_id] = record
        elif isinstance(record, Problem):
            problems.append(str(record))
        elif isinstance(record, FeedInfo):
            version = record.version or ""
            released = record.date.date() if record.date else None
    if not entries:
        raise FeedFormatError(f"{path}: kev catalog has no usable vulnerabilities")
    return entries, version, released


def read_epss(path: Path, problems: list[str]) -> tuple[dict[str, EpssScore], dt.date]:
    """EPSS scores by CVE id and the score date, with the project's EPSS reader."""
    scores: dict[str, EpssScore] = {}
    date: dt.date | None = None
    for record in _records(path):
        if isinstance(record, EpssScore):
            scores[record.cve_id] = record
        elif isinstance(record, Problem):
            problems.append(str(record))
        elif isinstance(record, FeedInfo) and record.date is not None:
            date = record.date.date()
    if date is None:
        raise FeedFormatError(f"{path}: epss file has no score_date in its first line")
    return scores, date


def read_oval_cvss(path: Path, problems: list[str]) -> tuple[dict[str, CvssInfo], str]:
    """CVSS vectors from the ``<cve cvss_vector=...>`` elements of an Ubuntu OVAL file.

    Returns the parsed vectors by CVE id and the generator timestamp. A malformed vector is
    recorded as a problem and skipped; a file that is not OVAL XML raises FeedFormatError.
    """
    vectors: dict[str, CvssInfo] = {}
    stamp = ""
    try:
        for _, element in ET.iterparse(path):
            if element.tag.endswith("}timestamp") and not stamp:
                stamp = (element.text or "").strip()
            elif element.tag == f"{_OVAL_NS}cve":
                cve = (element.text or "").strip()
                vector = element.get("cvss_vector")
                if vector:
                    info = parse_cvss("CVSS_V3", vector)
                    if info is None:
                        problems.append(
                            f"{path}: record {cve!r}, field 'cvss_vector': "
                            f"not a cvss 3.x vector: {vector!r}"
                        )
                    else:
                        vectors[cve] = info
            elif element.tag == f"{_OVAL_NS}definition":
                element.clear()
    except ET.ParseError as exc:
        raise FeedFormatError(f"{path}: not an oval xml file: {exc}") from exc
    except OSError as exc:
        raise FeedFormatError(f"{path}: cannot read: {exc}") from exc
    if not stamp:
        raise FeedFormatError(f"{path}: oval file has no generator timestamp")
    return vectors, stamp


def read_pypa_cvss(path: Path, problems: list[str]) -> dict[str, tuple[CvssInfo, str]]:
    """CVSS vectors of the CVE aliases of OSV advisories (``severity[]``), with the reader."""
    vectors: dict[str, tuple[CvssInfo, str]] = {}
    for record in _records(path):
        if isinstance(record, Problem):
            problems.append(str(record))
        if not isinstance(record, Advisory) or record.withdrawn is not None:
            continue
        infos = [i for s in record.severity if (i := parse_cvss(s.type, s.score)) is not None]
        if not infos:
            continue
        best = max(infos, key=_cvss_rank)
        for alias in (record.id, *record.aliases):
            if alias.startswith("CVE-") and (
                alias not in vectors or _cvss_rank(best) > _cvss_rank(vectors[alias][0])
            ):
                vectors[alias] = (best, str(record.id))
    return vectors


def _cvss_rank(info: CvssInfo) -> tuple[int, float]:
    # Same rule as patchwarden.severity.best: newer CVSS version first, then the worst score.
    return (_VERSION_RANK.get(info.version, 0), info.base_score)


def load(*, kev_then: Path, kev_now: Path, epss: Path, oval: Path, pypa: Path) -> Data:
    """Read every input (the project's readers for KEV, EPSS and OSV; iterparse for OVAL)."""
    problems: list[str] = []
    then, then_version, then_released = read_kev(kev_then, problems)
    if then_released is None:
        raise FeedFormatError(
            f"{kev_then}: field 'dateReleased' is missing; it is the split date of the benchmark"
        )
    now, now_version, _ = read_kev(kev_now, problems)
    scores, epss_date = read_epss(epss, problems)
    oval_vectors, stamp = read_oval_cvss(oval, problems)
    pypa_vectors = read_pypa_cvss(pypa, problems)
    chosen: dict[str, Cvss] = {
        c: Cvss(info=i, source="ubuntu-oval") for c, i in oval_vectors.items()
    }
    for cve, (info, advisory) in pypa_vectors.items():
        if cve not in chosen or _cvss_rank(info) > _cvss_rank(chosen[cve].info):
            chosen[cve] = Cvss(info=info, source=advisory)
    return Data(
        kev_then=then,
        kev_then_version=then_version,
        kev_then_released=then_released,
        kev_now=now,
        kev_now_version=now_version,
        epss=scores,
        epss_date=epss_date,
        cvss=chosen,
        cvss_oval=len(oval_vectors),
        cvss_pypa=len(pypa_vectors),
        oval_date=stamp,
        problems=tuple(problems),
    )


# --------------------------------------------------------------------------- populations


@dataclass(frozen=True, slots=True, kw_only=True)
class Population:
    """A set of CVEs, which of them count as exploited, and what a scorer may know."""

    name: str
    """Short id (``cvss``, ``cvss-temporal``, ``epss``, ``epss-temporal``)."""
    description: str
    """What it is, for the report."""
    members: tuple[str, ...]
    """The CVE ids, sorted."""
    exploited: frozenset[str]
    """The members that count as exploited (the outcome)."""
    known_kev: Mapping[str, KevEntry] = field(default_factory=dict)
    """KEV entries a scorer may use (empty when KEV membership is the outcome itself)."""
    leak: str = ""
    """Why EPSS-based results are not prospective here (empty: no leak)."""
    temporal: str = ""
    """The split, when there is one."""
    with_cvss: bool = True
    """Every member has a CVSS vector: CVSS strategies run and the scorer sees the vector.
    False for the EPSS populations, where almost no CVE has one here (the scorer then sees
    EPSS only, uniformly)."""


def build_populations(data: Data, sample: int = 1) -> list[Population]:
    """The four populations the shared data supports (see the module docstring).

    ``sample`` > 1 keeps every sample-th CVE of the EPSS populations (for ``--smoke``).
    """
    split = data.kev_then_released
    added_after = {c for c, e in data.kev_now.items() if c not in data.kev_then}
    epss_leak = (
        f"EPSS scored {data.epss_date} is after every KEV addition it is judged by "
        f"(last dateAdded {max(e.date_added for e in data.kev_now.values())}); EPSS uses "
        "exploitation evidence as input, so EPSS-based rows are NOT prospective"
    )
    cvss_members = tuple(sorted(data.cvss))
    cvss_then = tuple(c for c in cvss_members if c not in data.kev_then)
    epss_members = tuple(sorted(data.epss))[::sample]
    epss_then = tuple(c for c in epss_members if c not in data.kev_then)
    return [
        Population(
            name="cvss",
            description=(
                f"CVEs with a CVSS vector (Ubuntu noble OVAL {data.oval_date[:10]} + PyPA "
                f"severity); exploited = in KEV {data.kev_now_version}; cross-sectional, "
                "KEV withheld from the scorer"
            ),
            members=cvss_members,
            exploited=frozenset(c for c in cvss_members if c in data.kev_now),
            leak=epss_leak,
        ),
        Population(
            name="cvss-temporal",
            description=(
                f"same, minus the CVEs already in KEV {data.kev_then_version}; exploited = "
                f"added to KEV after {split}; scorer knows KEV {data.kev_then_version}"
            ),
            members=cvss_then,
            exploited=frozenset(c for c in cvss_then if c in added_after),
            known_kev=data.kev_then,
            leak=epss_leak,
            temporal=f"T = {split}",
        ),
        Population(
            name="epss",
            description=(
                f"all EPSS-scored CVEs ({data.epss_date})"
                + (f", every {sample}th" if sample > 1 else "")
                + f"; exploited = in KEV {data.kev_now_version}; cross-sectional, KEV withheld; "
                "the scorer sees EPSS only"
            ),
            members=epss_members,
            exploited=frozenset(c for c in epss_members if c in data.kev_now),
            leak=epss_leak,
            with_cvss=False,
        ),
        Population(
            name="epss-temporal",
            description=(
                f"same, minus the CVEs already in KEV {data.kev_then_version}; exploited = "
                f"added to KEV after {split}; scorer knows KEV {data.kev_then_version}"
            ),
            members=epss_then,
            exploited=frozenset(c for c in epss_then if c in added_after),
            known_kev=data.kev_then,
            leak=epss_leak,
            with_cvss=False,
            temporal=f"T = {split}",
        ),
    ]


# --------------------------------------------------------------------------- strategies


def risk_input(
    cve: str,
    data: Data,
    known_kev: Mapping[str, KevEntry],
    *,
    use_epss: bool,
    use_cvss: bool = True,
) -> RiskInput:
    """The :class:`RiskInput` of ``cve`` on :data:`NEUTRAL_HOST` with what the scorer may know."""
    cvss = data.cvss.get(cve) if use_cvss else None
    epss = data.epss.get(cve) if use_epss else None
    kev = known_kev.get(cve)
    return RiskInput(
        vulnerability=cve,
        asset=str(NEUTRAL_HOST["asset"]),
        cvss=cvss.info if cvss else None,
        cvss_source=cvss.source if cvss else None,
        severity=cvss.info.severity if cvss else Severity.UNKNOWN,
        kev=kev is not None,
        kev_date_added=kev.date_added if kev else None,
        kev_due_date=kev.due_date if kev else None,
        kev_ransomware=kev.known_ransomware if kev else False,
        epss=epss.epss if epss else None,
        epss_percentile=epss.percentile if epss else None,
        epss_date=data.epss_date if epss else None,
    )


def patchwarden_ranking(
    population: Population, data: Data, *, use_epss: bool
) -> tuple[list[str], dict[str, float]]:
    """Members ranked by :func:`patchwarden.risk.score` (best first) and their scores."""
    results: list[RiskScore] = [
        score(
            risk_input(
                cve,
                data,
                population.known_kev,
                use_epss=use_epss,
                use_cvss=population.with_cvss,
            )
        )
        for cve in population.members
    ]
    results.sort(key=rank_key)
    return [r.vulnerability for r in results], {r.vulnerability: r.score for r in results}


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One line of the result table."""

    population: str
    """Population name."""
    strategy: str
    """Strategy label."""
    leaky: bool
    """The strategy uses EPSS scored after the outcome (see Population.leak)."""
    effort: int
    """TP + FP."""
    effort_share: float
    """Effort / population size."""
    tp: int
    """Exploited and remediated."""
    fp: int
    """Remediated, not exploited."""
    fn: int
    """Exploited, not remediated."""
    coverage: float | None
    """TP / (TP + FN); None without exploited members."""
    efficiency: float | None
    """TP / (TP + FP); None when nothing is remediated."""
    tp_tie_fair: float | None = None
    """For a top-k row: the expected TP when score ties at the cut are broken at random."""


def _row(
    pop: Population,
    label: str,
    leaky: bool,
    chosen: Collection[str],
    tp_tie_fair: float | None = None,
) -> Row:
    o = outcome(chosen, pop.exploited, len(pop.members))
    return Row(
        population=pop.name,
        strategy=label,
        leaky=leaky,
        effort=o.effort,
        effort_share=o.effort_share,
        tp=o.tp,
        fp=o.fp,
        fn=o.fn,
        coverage=o.coverage,
        efficiency=o.efficiency,
        tp_tie_fair=tp_tie_fair,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """Rows and curves of one population."""

    population: Population
    """The population."""
    rows: list[Row]
    """Table rows."""
    curves: dict[str, list[tuple[int, int]]]
    """Ranked strategy label -> thinned (effort, TP) curve."""
    seconds: float
    """Time to score and evaluate."""


def evaluate(pop: Population, data: Data) -> Result:
    """Every strategy on one population."""
    start = time.perf_counter()
    members = set(pop.members)
    cvss = (
        {c: data.cvss[c].info.base_score for c in pop.members if c in data.cvss}
        if pop.with_cvss
        else {}
    )
    epss = {c: data.epss[c].epss for c in pop.members if c in data.epss}
    rows: list[Row] = []
    ranked: dict[str, tuple[list[str], bool]] = {}
    baselines: list[tuple[str, int]] = []
    if cvss:
        for t in CVSS_THRESHOLDS:
            chosen = at_least(cvss, t)
            rows.append(_row(pop, f"CVSS >= {t:g}", False, chosen))
            baselines.append((f"CVSS >= {t:g}", len(chosen)))
        ranked["CVSS (ranked)"] = (sorted(cvss, key=lambda c: (-cvss[c], c)), False)
    for t in EPSS_THRESHOLDS:
        chosen = at_least(epss, t)
        rows.append(_row(pop, f"EPSS >= {t:g}", True, chosen))
        baselines.append((f"EPSS >= {t:g}", len(chosen)))
    ranked["EPSS (ranked)"] = (sorted(epss, key=lambda c: (-epss[c], c)), True)
    variants: list[tuple[str, bool]] = [("patchwarden", True)]
    if cvss:
        variants.append(("patchwarden, EPSS withheld", False))
    for label, use_epss in variants:
        order, scores = patchwarden_ranking(pop, data, use_epss=use_epss)
        ranked[label] = (order, use_epss)
        if use_epss:
            for t in SCORE_THRESHOLDS:
                rows.append(_row(pop, f"{label} score >= {t:g}", True, at_least(scores, t)))
        for base, k in baselines:
            fair = tie_fair_tp(order, scores, k, pop.exploited)
            rows.append(_row(pop, f"{label} top-{k} (= {base})", use_epss, order[:k], fair))
    assert all(set(order) <= members for order, _ in ranked.values())
    curves = {label: thin(curve(order, pop.exploited)) for label, (order, _) in ranked.items()}
    return Result(population=pop, rows=rows, curves=curves, seconds=time.perf_counter() - start)


# --------------------------------------------------------------------------- output


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def table(results: Iterable[Result]) -> str:
    """The result table as fixed-width text."""
    lines: list[str] = []
    for result in results:
        pop = result.population
        lines.append("")
        lines.append(
            f"== {pop.name}: {len(pop.members):,} CVEs, {len(pop.exploited)} exploited"
            + (f" ({pop.temporal})" if pop.temporal else "")
        )
        lines.append(f"   {pop.description}")
        if not pop.exploited:
            lines.append(
                "   NO exploited CVE in this population: coverage is undefined, "
                "this split cannot rank the strategies"
            )
        header = (
            f"   {'strategy':<52} {'effort':>8} {'effort%':>8} {'TP':>5} {'FP':>8} "
            f"{'FN':>5} {'coverage':>9} {'effic.':>7} {'TP(ties)':>8}"
        )
        lines.append(header)
        for r in result.rows:
            mark = " *" if r.leaky else "  "
            lines.append(
                f" {mark}{r.strategy:<52} {r.effort:>8,} {_pct(r.effort_share):>8} {r.tp:>5} "
                f"{r.fp:>8,} {r.fn:>5} {_pct(r.coverage):>9} {_pct(r.efficiency):>7} "
                + ("" if r.tp_tie_fair is None else f"{r.tp_tie_fair:>8.2f}")
            )
    lines.append("")
    lines.append(" * uses EPSS scored after the outcome: not prospective (see caveats)")
    lines.append(
        " TP(ties): expected TP of a top-k row if score ties at the cut were broken at random"
        " (the list itself breaks them by CVE id)"
    )
    return "\n".join(line.rstrip() for line in lines)


def plot(results: Sequence[Result], path: Path) -> None:
    """Coverage vs effort (share of the population, log scale), one panel per population."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in results if r.population.exploited]
    fig, axes = plt.subplots(1, max(1, len(shown)), figsize=(6 * max(1, len(shown)), 5))
    panels = [axes] if len(shown) <= 1 else list(axes)
    for ax, result in zip(panels, shown, strict=False):
        pop = result.population
        n, pos = len(pop.members), len(pop.exploited)
        for label, points in result.curves.items():
            xs = [max(e, 1) / n for e, _ in points]
            ys = [tp / pos for _, tp in points]
            # patchwarden dashed: on the EPSS populations it coincides with the EPSS curve.
            style = "--" if label.startswith("patchwarden") else "-"
            ax.step(xs, ys, where="post", label=label, linestyle=style)
        for row in result.rows:
            if " top-" not in row.strategy and row.effort and row.coverage is not None:
                ax.plot(row.effort_share, row.coverage, "o", markersize=4, color="black")
                ax.annotate(
                    row.strategy.replace("patchwarden ", "pw "),
                    (row.effort_share, row.coverage),
                    fontsize=6,
                    xytext=(3, -8),
                    textcoords="offset points",
                )
        ax.set_xscale("log")
        ax.set_xlim(1 / n, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("effort (share of population patched, log)")
        ax.set_ylabel("coverage (share of exploited patched)")
        ax.set_title(f"{pop.name}: n={n:,}, exploited={pos}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    empty = [r.population.name for r in results if not r.population.exploited]
    fig.suptitle(
        "patchwarden prioritization benchmark (EPSS-based curves leak, see README)"
        + (f"; not plotted, 0 exploited: {', '.join(empty)}" if empty else "")
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(data: Data, results: Sequence[Result], sources: Mapping[str, str]) -> dict[str, object]:
    """The JSON document written beside the table."""
    return {
        "sources": dict(sources),
        "data": {
            "kev_then": {"version": data.kev_then_version, "cves": len(data.kev_then)},
            "kev_now": {"version": data.kev_now_version, "cves": len(data.kev_now)},
            "epss": {"date": data.epss_date.isoformat(), "cves": len(data.epss)},
            "cvss": {
                "cves": len(data.cvss),
                "oval": data.cvss_oval,
                "pypa": data.cvss_pypa,
                "oval_timestamp": data.oval_date,
            },
            "problems": list(data.problems),
        },
        "neutral_host": NEUTRAL_HOST,
        "populations": [
            {
                "name": r.population.name,
                "description": r.population.description,
                "size": len(r.population.members),
                "exploited": len(r.population.exploited),
                "exploited_ids": sorted(r.population.exploited)
                if len(r.population.exploited) <= 200
                else None,
                "temporal": r.population.temporal,
                "leak": r.population.leak,
                "rows": [asdict(row) for row in r.rows],
                "curves": r.curves,
            }
            for r in results
        ],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit code."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--kev-then",
        type=Path,
        default=DATA / "kev" / "known_exploited_vulnerabilities.json",
        help="older KEV catalog: what is known at the split date T",
    )
    parser.add_argument(
        "--kev-now",
        type=Path,
        default=DATA / "kev" / "known_exploited_vulnerabilities-2026.01.29.json",
        help="newer KEV catalog: the outcome",
    )
    parser.add_argument(
        "--epss", type=Path, default=DATA / "epss" / "epss_scores-2026-01-30.csv.gz"
    )
    parser.add_argument(
        "--oval", type=Path, default=DATA / "ubuntu" / "oval" / "com.ubuntu.noble.usn.oval.xml"
    )
    parser.add_argument("--pypa", type=Path, default=DATA / "osv" / "pypi" / "vulns")
    parser.add_argument("--out", type=Path, default=OUT, help="output folder")
    parser.add_argument(
        "--sample", type=int, default=1, help="keep every Nth CVE of the EPSS populations"
    )
    parser.add_argument("--smoke", action="store_true", help="--sample 100, quick check")
    args = parser.parse_args(argv)
    sample = 100 if args.smoke and args.sample == 1 else args.sample
    if sample < 1:
        print("error: --sample must be at least 1", file=sys.stderr)
        return 2
    sources = {
        "kev_then": str(args.kev_then),
        "kev_now": str(args.kev_now),
        "epss": str(args.epss),
        "oval": str(args.oval),
        "pypa": str(args.pypa),
    }
    start = time.perf_counter()
    try:
        data = load(
            kev_then=args.kev_then,
            kev_now=args.kev_now,
            epss=args.epss,
            oval=args.oval,
            pypa=args.pypa,
        )
    except PatchwardenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    missing = set(data.kev_then) - set(data.kev_now)
    if missing:
        print(
            f"error: {args.kev_now}: the newer kev catalog lacks {len(missing)} cves of "
            f"{args.kev_then} (e.g. {sorted(missing)[0]}); pass the older catalog as --kev-then",
            file=sys.stderr,
        )
        return 2
    early = sorted(
        c
        for c, e in data.kev_now.items()
        if c not in data.kev_then and e.date_added <= data.kev_then_released
    )
    read_s = time.perf_counter() - start
    results = [evaluate(pop, data) for pop in build_populations(data, sample)]

    print(
        f"data: KEV {data.kev_then_version} ({len(data.kev_then):,}) -> "
        f"{data.kev_now_version} ({len(data.kev_now):,}, +{len(data.kev_now) - len(data.kev_then)})"
        f"; EPSS {data.epss_date} ({len(data.epss):,}); CVSS vectors {len(data.cvss):,} "
        f"(OVAL {data.cvss_oval:,}, PyPA {data.cvss_pypa:,}); read in {read_s:.1f}s"
        + (f"; {len(data.problems)} records skipped" if data.problems else "")
    )
    print(f"asset context: {json.dumps(NEUTRAL_HOST)}")
    if early:
        print(
            f"note: {len(early)} cves are in {args.kev_now} but not in {args.kev_then} although "
            f"their dateAdded is on or before {data.kev_then_released} (e.g. {early[0]}); "
            "they count as exploited after T"
        )
    print(table(results))
    print("\ncaveats:")
    print(f" - {results[0].population.leak}.")
    for r in results:
        if not r.population.exploited:
            print(f" - {r.population.name}: 0 exploited CVEs, so the temporal split shows nothing.")
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / "prioritization.json"
    png_path = args.out / "prioritization.png"
    json_path.write_text(json.dumps(report(data, results, sources), indent=1) + "\n")
    plot(results, png_path)
    print(f"\nwrote {json_path} and {png_path} in {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
