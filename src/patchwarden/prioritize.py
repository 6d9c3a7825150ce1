"""Prioritise: score findings with the risk model and turn them into ranked upgrade actions.

This is the glue between the store (findings, KEV, EPSS, CVSS, asset context) and the pure
:mod:`patchwarden.risk` model. An *action* is one package upgrade on one asset; it closes
every finding of that package whose fix the target version contains, and is ranked by the
total risk it removes.

**Stored ranking.** A fleet's findings keep their score and SSVC decision in the store
(``findings.risk``), so the ranking survives between scans: a scan scores the findings it
writes (:class:`Scorer` passed to the store), and :func:`rank` scores the rest (findings of
assets whose context changed, findings written without a scorer, and all of them when the
weights or the intel changed: :func:`risk_basis`). :meth:`patchwarden.store.Store.ranked_findings`
then reads the fleet in rank order, and a rescan of 1% of 10,000 hosts scores only their
findings instead of 617,078.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy.engine import Connection

from patchwarden.errors import InvalidVersion, UnknownEcosystem
from patchwarden.model import (
    Asset,
    AssetId,
    Environment,
    Finding,
    FixState,
    KevEntry,
    Severity,
    source_digest,
)
from patchwarden.risk import Decision, RiskInput, RiskScore, RiskWeights, parse_cvss, score
from patchwarden.risk.cvss import CvssInfo
from patchwarden.store import Store
from patchwarden.versions import scheme_for


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoredFinding:
    """A finding with its risk score."""

    finding: Finding
    """The finding."""
    risk: RiskScore
    """Its score, SSVC decision and factors."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """One package upgrade on one asset, and the findings it closes."""

    id: str
    """``<asset>/<package>`` (``@<ecosystem>`` appended when one asset has the name twice)."""
    asset: AssetId
    """The asset."""
    ecosystem: str
    """Ecosystem with release."""
    package: str
    """The name advisories use (Debian: the source package)."""
    binaries: tuple[str, ...]
    """The installed packages to upgrade (Debian binaries of the source package)."""
    installed_version: str
    """Installed now."""
    target_version: str
    """The smallest version that fixes every fixable finding of the package (the highest of
    their fixed versions)."""
    closes: tuple[ScoredFinding, ...]
    """Findings the upgrade closes, highest risk first."""
    remaining: tuple[ScoredFinding, ...]
    """Findings of the same package that no version fixes yet (they stay open)."""
    risk_removed: float
    """Sum of the closed findings' scores."""

    @property
    def ssvc(self) -> Decision:
        """The most urgent SSVC decision among the closed findings."""
        return max((s.risk.ssvc for s in self.closes), key=lambda d: d.rank)

    @property
    def kev(self) -> bool:
        """True when it closes a KEV-listed vulnerability."""
        return any(s.finding.kev for s in self.closes)


def _cvss(row: dict[str, object] | None) -> CvssInfo | None:
    if row is None:
        return None
    vector = row.get("cvss_vector")
    if not isinstance(vector, str):
        return None
    if vector.startswith("CVSS:4"):
        kind = "CVSS_V4"
    elif vector.startswith("CVSS:3"):
        kind = "CVSS_V3"
    else:
        kind = "CVSS_V2"
    return parse_cvss(kind, vector)


Profile = tuple[Environment, int, bool, int, tuple[str, ...]]
"""What the score takes from an asset: environment, criticality, internet exposure, data
sensitivity and tags (the asset id only labels a result)."""


def profile(asset: Asset) -> Profile:
    """The asset's :data:`Profile`."""
    return (
        asset.environment,
        asset.criticality,
        asset.internet_exposed,
        asset.data_sensitivity,
        asset.tags,
    )


class _Key(NamedTuple):
    """What one risk score depends on beside the vulnerability's intel and the weights."""

    vulnerability: str
    asset: Profile
    severity: Severity
    epss: float | None
    epss_percentile: float | None
    fix_available: bool


@dataclass(frozen=True, slots=True)
class _Intel:
    """What the score takes from a vulnerability beside severity and EPSS."""

    cvss: CvssInfo | None
    cvss_source: str | None
    kev: KevEntry | None


class Scorer:
    """Scores findings with the risk model, for a fleet.

    A fleet has few distinct (vulnerability, asset profile) inputs and many findings: each
    vulnerability's intel (CVSS vector, KEV entry) is read and parsed once, and each distinct
    input scored once. It is also what a scan hands the store to score the findings it writes
    (:class:`~patchwarden.store.RiskOf`).
    """

    def __init__(self, store: Store, weights: RiskWeights | None = None) -> None:
        self.store = store
        self.weights = weights if weights is not None else RiskWeights()
        self.epss_date: dt.date | None = None
        self._dated = False
        self._intel: dict[str, _Intel] = {}
        self._context: dict[str, tuple[Severity, tuple[float, float] | None]] = {}
        self._profiles: dict[str, Profile] = {}
        self._memo: dict[_Key, RiskScore] = {}
        self._ranked: dict[Profile, dict[str, tuple[float, int]]] = {}
        self._ranked_of: dict[str, dict[str, tuple[float, int]]] = {}

    def intel(self, conn: Connection, ids_of: Mapping[str, tuple[str, ...]]) -> None:
        """Read the intel of those vulnerabilities (canonical id -> it and its aliases)."""
        if not self._dated:
            feed = self.store.feed_info(conn, "epss")
            self.epss_date = feed.date.date() if feed is not None and feed.date else None
            self._dated = True
        todo = {vid: ids for vid, ids in ids_of.items() if vid not in self._intel}
        if not todo:
            return
        kev = self.store.kev_entries({i for ids in todo.values() for i in ids}, conn=conn)
        rows = self.store.vulnerability_rows(todo, conn=conn)
        for vid, ids in todo.items():
            row = rows.get(vid)
            self._intel[vid] = _Intel(
                cvss=_cvss(row),
                cvss_source=(row or {}).get("cvss_source"),
                kev=next((kev[i] for i in ids if i in kev), None),
            )

    def load(self, conn: Connection, vulnerability_ids: Iterable[str]) -> None:
        """Read severity, EPSS and intel of those canonical vulnerability ids, as
        :meth:`~patchwarden.store.Store.findings` gives them to findings."""
        missing = [v for v in vulnerability_ids if v not in self._context]
        if not missing:
            return
        context = self.store.vulnerability_context(conn, missing)
        for vid, (_, severity, epss) in context.items():
            self._context[vid] = (severity, epss)
        self.intel(conn, {vid: c[0] for vid, c in context.items()})

    def add_assets(self, assets: Iterable[Asset]) -> None:
        """Remember these assets' profiles (for :meth:`__call__`)."""
        for a in assets:
            asset_profile = self._profiles[a.id] = profile(a)
            self._ranked_of[a.id] = self._ranked.setdefault(asset_profile, {})

    def __call__(self, asset_id: str, vulnerability: str) -> tuple[float, int]:
        """(score, SSVC decision rank) of a finding of ``vulnerability`` (loaded) on
        ``asset_id`` (added).

        A scan asks this for every finding it writes (617,078 at 10,000 hosts) and the
        answers repeat per (vulnerability, asset profile), so they are kept in one table per
        profile: two dict look-ups per finding.
        """
        table = self._ranked_of[asset_id]
        found = table.get(vulnerability)
        if found is None:
            severity, epss = self._context[vulnerability]
            # fix availability is shown by explain; it changes neither score nor decision
            risk = self._score(
                _Key(
                    vulnerability,
                    self._profiles[asset_id],
                    severity,
                    None if epss is None else epss[0],
                    None if epss is None else epss[1],
                    False,
                )
            )
            found = table[vulnerability] = (risk.score, risk.ssvc.rank)
        return found

    def score(
        self,
        vulnerability: str,
        asset: Profile,
        *,
        severity: Severity,
        epss: float | None,
        epss_percentile: float | None,
        fix_available: bool,
    ) -> RiskScore:
        """The risk of ``vulnerability`` (its intel read) on an asset of that profile."""
        key = _Key(vulnerability, asset, severity, epss, epss_percentile, fix_available)
        risk = self._memo.get(key)
        if risk is None:
            risk = self._memo[key] = self._score(key)
        return risk

    def _score(self, key: _Key) -> RiskScore:
        vulnerability, asset, severity, epss, epss_percentile, fix_available = key
        intel = self._intel[vulnerability]
        environment, criticality, exposed, sensitivity, tags = asset
        entry = intel.kev
        inp = RiskInput(
            vulnerability=vulnerability,
            cvss=intel.cvss,
            cvss_source=intel.cvss_source,
            severity=severity,
            kev=entry is not None,
            kev_date_added=entry.date_added if entry else None,
            kev_due_date=entry.due_date if entry else None,
            kev_ransomware=bool(entry and entry.known_ransomware),
            epss=epss,
            epss_percentile=epss_percentile,
            epss_date=self.epss_date,
            fix_available=fix_available,
            environment=environment,
            criticality=criticality,
            internet_exposed=exposed,
            data_sensitivity=sensitivity,
            tags=tags,
        )
        return score(inp, self.weights)


def _for_asset(risk: RiskScore, asset: str) -> RiskScore:
    """``risk`` labelled with ``asset``: :func:`dataclasses.replace` without its per-call walk
    over the fields (a fleet's plan labels 617,078 scores; 7 -> 2 us each). A field added to
    RiskScore without a default makes this call fail, so it cannot be forgotten here."""
    return RiskScore(
        vulnerability=risk.vulnerability,
        asset=asset,
        score=risk.score,
        likelihood=risk.likelihood,
        impact=risk.impact,
        ssvc=risk.ssvc,
        ssvc_inputs=risk.ssvc_inputs,
        factors=risk.factors,
    )


def score_findings(
    store: Store, findings: Sequence[Finding], weights: RiskWeights | None = None
) -> list[ScoredFinding]:
    """Score every finding with its vulnerability, exploit and asset context, highest first."""
    scorer = Scorer(store, weights)
    with store.transaction() as conn:
        scorer.intel(conn, {f.vulnerability: (f.vulnerability, *f.aliases) for f in findings})
        assets = store.assets_by_id({f.asset for f in findings}, conn=conn)
    profiles = {
        a: profile(assets.get(a) or Asset(id=AssetId(a))) for a in {f.asset for f in findings}
    }
    out = []
    for f in findings:
        risk = scorer.score(
            f.vulnerability,
            profiles[f.asset],
            severity=f.severity,
            epss=f.epss,
            epss_percentile=f.epss_percentile,
            fix_available=f.fixed_version is not None,
        )
        out.append(ScoredFinding(finding=f, risk=_for_asset(risk, f.asset)))
    out.sort(key=sort_key)
    return out


_RISK_CODE = (
    Path(__file__),
    *sorted((Path(__file__).parent / "risk").glob("*.py")),
)


def risk_basis(
    store: Store, conn: Connection, weights: RiskWeights, advisory_digest: str | None = None
) -> str:
    """The digest stored risk scores depend on: the weights, the scoring code, the advisory
    set (severities, CVSS vectors, aliases) and the KEV and EPSS imports."""
    h = hashlib.sha256(json.dumps(weights.to_json(), sort_keys=True).encode())
    h.update(source_digest(_RISK_CODE).encode())
    h.update((advisory_digest or store.advisory_digest(conn)).encode())
    for feed in ("kev", "epss"):
        row = store.feed_info(conn, feed)
        h.update(repr(None if row is None else tuple(row)).encode())
    return h.hexdigest()


def ranking_weights(store: Store) -> RiskWeights:
    """The weights the stored ranking uses (the defaults before anything was ranked)."""
    with store.transaction() as conn:
        state = store.risk_state(conn)
    return RiskWeights() if state is None else RiskWeights.from_json(state[1])


def prepare_ranking(
    store: Store, conn: Connection, weights: RiskWeights, advisory_digest: str | None = None
) -> bool:
    """Drop every stored score when the basis (:func:`risk_basis`) is not the stored one;
    True when it did."""
    basis = risk_basis(store, conn, weights, advisory_digest)
    state = store.risk_state(conn)
    if state is not None and state[0] == basis:
        return False
    store.reset_risk(conn, basis, weights.to_json())
    return True


def rank(
    store: Store,
    weights: RiskWeights | None = None,
    *,
    advisory_digest: str | None = None,
    scorer: Scorer | None = None,
) -> int:
    """Bring the stored ranking up to date; returns how many findings were scored.

    ``weights``: the policy's (None: those the stored ranking uses, :func:`ranking_weights`).
    When the basis (:func:`risk_basis`) differs from the stored one, every stored score is
    dropped first; then every open finding without a stored score is scored. One transaction:
    an interrupted run leaves the scores as they were (NULL ones are scored next time).
    """
    if scorer is None:
        scorer = Scorer(store, weights if weights is not None else ranking_weights(store))
    with store.transaction() as conn:
        prepare_ranking(store, conn, scorer.weights, advisory_digest)
        todo = store.unscored_findings(conn)
        if not todo:
            return 0
        scorer.add_assets(store.assets_by_id({a for _, a, _ in todo}, conn=conn).values())
        scorer.load(conn, {v for _, _, v in todo})
        store.set_risk(conn, [(*scorer(a, v), i) for i, a, v in todo])
    return len(todo)


def sort_key(s: ScoredFinding) -> tuple[float, int, str, str, str, int]:
    """Highest score first; ties by SSVC urgency, then asset, package, vulnerability, id."""
    f = s.finding
    return (-s.risk.score, -s.risk.ssvc.rank, f.asset, f.package, f.vulnerability, f.id)


def _highest(
    versions: Iterable[str], ecosystem: str, parsed: dict[tuple[str, str], Any] | None = None
) -> str:
    """The highest of ``versions`` in ``ecosystem``'s order (the last by text when one does not
    parse); ``parsed`` caches parsed versions across calls."""
    values = sorted(set(versions))
    if len(values) == 1:
        return values[0]
    cache = {} if parsed is None else parsed
    try:
        scheme = scheme_for(ecosystem)
        keys = []
        for v in values:
            key = cache.get((ecosystem, v))
            if key is None:
                key = cache[(ecosystem, v)] = scheme.parse(v)
            keys.append(key)
    except (InvalidVersion, UnknownEcosystem):
        return values[-1]
    return max(zip(keys, values, strict=True), key=lambda kv: kv[0])[1]


def plan_actions(scored: Iterable[ScoredFinding]) -> list[Action]:
    """Group open findings into one upgrade action per (asset, package), ranked by risk removed.

    The target is the highest of the findings' fixed versions: each fixed version is the
    smallest that fixes its vulnerability, so the highest one fixes them all. Findings
    without a fixed version stay open and are listed as ``remaining``.
    """
    groups: dict[tuple[str, str, str], list[ScoredFinding]] = defaultdict(list)
    for s in scored:
        if s.finding.resolved_at is None:
            groups[(s.finding.asset, s.finding.ecosystem, s.finding.package)].append(s)
    names = defaultdict(set)
    for asset, ecosystem, package in groups:
        names[(asset, package)].add(ecosystem)
    actions = []
    parsed: dict[tuple[str, str], Any] = {}
    for (asset, ecosystem, package), items in groups.items():
        fixable: list[ScoredFinding] = []
        remaining: list[ScoredFinding] = []
        for s in items:
            fixes = s.finding.fix_state is FixState.FIXED and s.finding.fixed_version
            (fixable if fixes else remaining).append(s)
        if not fixable:
            continue
        target = _highest((s.finding.fixed_version or "" for s in fixable), ecosystem, parsed)
        action_id = f"{asset}/{package}"
        if len(names[(asset, package)]) > 1:
            action_id += f"@{ecosystem}"
        actions.append(
            Action(
                id=action_id,
                asset=AssetId(asset),
                ecosystem=ecosystem,
                package=package,
                binaries=tuple(sorted({b for s in items for b in s.finding.binaries})),
                installed_version=fixable[0].finding.installed_version,
                target_version=target,
                closes=tuple(sorted(fixable, key=sort_key)),
                remaining=tuple(sorted(remaining, key=sort_key)),
                risk_removed=sum(s.risk.score for s in fixable),
            )
        )
    actions.sort(key=lambda a: (-a.risk_removed, -a.ssvc.rank, a.id))
    return actions


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageUpgrade:
    """The same upgrade across the fleet: one package to one target on several assets."""

    ecosystem: str
    package: str
    target_version: str
    actions: tuple[Action, ...]
    risk_removed: float
    vulnerabilities: tuple[str, ...]

    @property
    def assets(self) -> tuple[str, ...]:
        """Assets the upgrade applies to."""
        return tuple(a.asset for a in self.actions)


def fleet_upgrades(actions: Iterable[Action]) -> list[PackageUpgrade]:
    """Actions grouped by (ecosystem, package, target) across assets, ranked by risk removed."""
    groups: dict[tuple[str, str, str], list[Action]] = defaultdict(list)
    for a in actions:
        groups[(a.ecosystem, a.package, a.target_version)].append(a)
    out = [
        PackageUpgrade(
            ecosystem=eco,
            package=pkg,
            target_version=target,
            actions=tuple(items),
            risk_removed=sum(a.risk_removed for a in items),
            vulnerabilities=tuple(
                sorted({s.finding.vulnerability for a in items for s in a.closes})
            ),
        )
        for (eco, pkg, target), items in groups.items()
    ]
    out.sort(key=lambda u: (-u.risk_removed, u.ecosystem, u.package, u.target_version))
    return out
