"""Fleet simulator: a year of vulnerability disclosures and patching under three policies.

A discrete-event simulation (events in a time-ordered heap: disclosure, approval, deployment,
soak end, fixed-patch release) of one fleet under each policy, with the *same* seeded
disclosures and the *same* bad patches, so the policies differ only in how they patch.

Data (real, from ``../shared/data``, read with the project's readers via
``benchmarks/prioritization.py``): the vulnerabilities are drawn from the CVEs that have a
CVSS vector in the Ubuntu noble OVAL file or the PyPA advisories, with their FIRST EPSS score
and whether they are in CISA KEV (2026-01-29 catalog); a KEV vulnerability's deadline is its
real ``dueDate - dateAdded`` gap; disclosure days follow the KEV ``dateAdded`` days of the
newest full calendar year in the catalog (the real weekday/season clustering). Severity, SSVC
decision and risk score come from :func:`patchwarden.risk.score`; deadlines from
:class:`patchwarden.plan.sla.SlaPolicy` defaults.

Assumptions (all configurable on the command line or in :class:`Config`):

* Fleet: ``services`` services with 2..``max_replicas`` replicas each; each service has one
  weekly 4-hour maintenance window (day and hour spread over the week, UTC); 20 % of services
  are dev, 20 % staging, 60 % prod. A disclosure affects one service (70 %) or is a base-OS
  package on every host (30 %).
* Findings are seen at disclosure (daily scans); a finding is fixed when its host is patched.
* A patch is *bad* with probability ``p_bad`` (5 %): it then fails on each host with
  ``p_fail_bad`` (80 %); a good patch fails with ``p_fail_good`` (0.5 %). A failure takes the
  host down for ``outage_hours`` (4 h) until rolled back, and the host stays vulnerable. The
  vendor ships a fixed patch ``fix_delay_days`` (7) after a bad one first fails.
* ``kev_share`` (3 %) of the disclosures are drawn from the KEV-listed CVEs of the pool.
* Manual approval takes ``approval_days`` (3 days, a weekly CAB); patchwarden's emergency
  changes are approved in ``emergency_approval_hours`` (4 h).

Policies:

* ``monthly``: everything disclosed is approved in a monthly change (second Tuesday, Patch
  Tuesday), then deployed to every affected host in its next window; no canary.
* ``cvss>=7 auto``: CVSS >= 7 is deployed without approval at each host's next window; the rest
  follow the monthly cycle; no canary.
* ``patchwarden``: as the plan module documents -- each finding gets an SLA deadline (KEV due
  date, else the stricter of SSVC and severity); rings canary (5 %, at least one host per
  service), pilot (20 %), broad, each after ``soak`` (24 h) and in the hosts' windows, at most
  ``max_unavailable`` (25 %, at least 1) replicas of a service per slot; when no window meets
  the deadline the change is an emergency change (approval in 4 h, outside windows, still at
  most max_unavailable per step); regular changes are auto-approved by gate rules for dev and
  staging and need approval (``approval_days``) for prod; a failure in a ring halts the rollout
  of that patch (halt-on-failure) until the fixed patch ships.

Reported per policy: MTTP (Kaplan-Meier median and restricted mean, open findings censored at
year end, via :mod:`patchwarden.report.metrics`), exposure-days on KEV vulnerabilities,
failed deployments, hosts hit by a bad patch, unplanned downtime (host-hours) and service
outage hours (every replica of a service down at once).

    python benchmarks/simulate.py               # a year, 60 services, 400 disclosures
    python benchmarks/simulate.py --smoke       # small and fast (make bench)
    python benchmarks/simulate.py --seed 7 --p-bad 0.1 --out DIR
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import json
import math
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from patchwarden.errors import PatchwardenError
from patchwarden.model import Environment, KevEntry
from patchwarden.plan.sla import SlaPolicy
from patchwarden.report.metrics import FindingSpan, exposure_days, kaplan_meier
from patchwarden.risk import RiskInput, score
from patchwarden.risk.ssvc import Decision

if TYPE_CHECKING:
    from benchmarks import prioritization as prio
else:  # benchmarks/ is not installed: load the sibling script by path
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "benchmarks.prioritization", Path(__file__).resolve().parent / "prioritization.py"
    )
    prio = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = prio
    _spec.loader.exec_module(prio)

DATA = prio.DATA
OUT = Path(__file__).resolve().parent / "out"
HOUR = 1.0 / 24
YEAR_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
"""Simulated time 0 (a Wednesday); times are days since then."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Simulation knobs (see the module docstring for the defaults' rationale)."""

    seed: int = 2025
    days: int = 365
    services: int = 60
    max_replicas: int = 6
    disclosures: int = 400
    p_os_package: float = 0.3
    p_bad: float = 0.05
    p_fail_bad: float = 0.8
    p_fail_good: float = 0.005
    outage_hours: float = 4.0
    fix_delay_days: float = 7.0
    approval_days: float = 3.0
    emergency_approval_hours: float = 4.0
    window_hours: float = 4.0
    soak_hours: float = 24.0
    canary_share: float = 0.05
    pilot_share: float = 0.20
    max_unavailable: float = 0.25
    cvss_threshold: float = 7.0
    kev_share: float = 0.03
    """Share of disclosures drawn from the KEV-listed CVEs of the pool (assumption: about 3 %
    of the vulnerabilities a fleet must patch in a year become known-exploited)."""


# --------------------------------------------------------------------------- world


@dataclass(frozen=True, slots=True, kw_only=True)
class Host:
    id: int
    service: int
    environment: Environment
    window_day: int
    """Weekday of the window (0 = Monday)."""
    window_hour: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Vuln:
    id: int
    cve: str
    disclosed: float
    """Day of disclosure."""
    cvss: float
    epss: float
    kev: bool
    deadline_days: float
    """SLA time allowed (patchwarden policy defaults)."""
    risk: float
    hosts: tuple[int, ...]
    bad: bool
    """The first patch is bad."""


@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    hosts: tuple[Host, ...]
    vulns: tuple[Vuln, ...]
    fail_draws: dict[tuple[int, int, int], float]
    """(vuln, host, patch attempt) -> uniform draw (shared by every policy)."""
    sources: dict[str, str] = field(default_factory=dict)


def next_window(host: Host, t: float, cfg: Config) -> float:
    """Start of the host's first window starting at or after day ``t``."""
    weekday0 = YEAR_START.weekday()
    day = math.floor(t)
    for k in range(0, 15):
        d = day + k
        if (weekday0 + d) % 7 == host.window_day:
            start = d + host.window_hour * HOUR
            if start >= t:
                return start
    raise AssertionError("no window in two weeks")


def patch_tuesday(t: float) -> float:
    """The next second-Tuesday-of-the-month at 18:00 UTC at or after day ``t``."""
    date = (YEAR_START + dt.timedelta(days=t)).date().replace(day=1)
    while True:
        first_tue = date + dt.timedelta(days=(1 - date.weekday()) % 7)
        second = dt.datetime.combine(first_tue + dt.timedelta(days=7), dt.time(18), dt.UTC)
        at = (second - YEAR_START).total_seconds() / 86400
        if at >= t:
            return at
        date = (date.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _sla_days(decision: Decision, severity_days: float, sla: SlaPolicy) -> float:
    return min(sla.ssvc[decision].total_seconds(), severity_days * 86400) / 86400


def build_world(data: prio.Data, cfg: Config) -> World:
    """Fleet and disclosures from the real data, seeded."""
    rng = random.Random(cfg.seed)
    hosts: list[Host] = []
    envs = [Environment.DEV] * 2 + [Environment.STAGING] * 2 + [Environment.PROD] * 6
    for s in range(cfg.services):
        env = envs[s % len(envs)]
        day, hour = rng.randrange(7), rng.choice((1, 2, 3, 20, 21, 22, 23))
        for _ in range(rng.randint(2, cfg.max_replicas)):
            hosts.append(
                Host(id=len(hosts), service=s, environment=env, window_day=day, window_hour=hour)
            )
    by_service: dict[int, list[int]] = defaultdict(list)
    for h in hosts:
        by_service[h.service].append(h.id)
    kev = data.kev_now
    pool = sorted(c for c in data.cvss if c in data.epss and c not in kev)
    kev_pool = sorted(c for c in data.cvss if c in data.epss and c in kev)
    if not pool or not kev_pool:
        raise PatchwardenError(
            "need cves with a cvss vector and an epss score, both kev-listed and not: "
            f"found {len(pool)} not listed, {len(kev_pool)} listed"
        )
    gaps = sorted(
        (e.due_date - e.date_added).days
        for e in kev.values()
        if e.due_date is not None and e.due_date >= e.date_added
    ) or [21]
    years = Counter(e.date_added.year for e in kev.values())
    full = [y for y in years if y < max(years)] or [max(years)]
    year = max(full)
    doy = sorted(
        e.date_added.timetuple().tm_yday - 1 for e in kev.values() if e.date_added.year == year
    )
    sla = SlaPolicy()
    vulns = []
    for i in range(cfg.disclosures):
        cve = rng.choice(kev_pool if rng.random() < cfg.kev_share else pool)
        info = data.cvss[cve].info
        entry: KevEntry | None = kev.get(cve)
        epss = data.epss[cve]
        when = min(rng.choice(doy) * cfg.days / 365 + rng.random(), cfg.days - 1e-6)
        risk = score(
            RiskInput(
                vulnerability=cve,
                cvss=info,
                severity=info.severity,
                kev=entry is not None,
                epss=epss.epss,
                epss_percentile=epss.percentile,
                fix_available=True,
            )
        )
        if entry is not None:
            allowed = float(rng.choice(gaps)) + 1
        else:
            allowed = _sla_days(risk.ssvc, sla.severity[info.severity].total_seconds() / 86400, sla)
        if rng.random() < cfg.p_os_package:
            affected = tuple(h.id for h in hosts)
        else:
            affected = tuple(by_service[rng.randrange(cfg.services)])
        vulns.append(
            Vuln(
                id=i,
                cve=cve,
                disclosed=when,
                cvss=info.base_score,
                epss=epss.epss,
                kev=entry is not None,
                deadline_days=allowed,
                risk=risk.score,
                hosts=affected,
                bad=rng.random() < cfg.p_bad,
            )
        )
    vulns.sort(key=lambda v: (v.disclosed, v.id))
    vulns = [replace(v, id=i) for i, v in enumerate(vulns)]
    draws = {
        (v.id, h, attempt): rng.random() for v in vulns for h in v.hosts for attempt in (0, 1, 2)
    }
    return World(hosts=tuple(hosts), vulns=tuple(vulns), fail_draws=draws)


# --------------------------------------------------------------------------- simulation


@dataclass(slots=True)
class Tally:
    """What happened under one policy."""

    patched: dict[tuple[int, int], float] = field(default_factory=dict)
    failed_deployments: int = 0
    hosts_hit: set[int] = field(default_factory=set)
    host_down_hours: float = 0.0
    service_outage_hours: float = 0.0
    emergency_changes: int = 0
    halts: int = 0


class Sim:
    """One policy's run over a :class:`World` (event heap of (time, seq, kind, payload))."""

    def __init__(self, world: World, cfg: Config, policy: str) -> None:
        self.world, self.cfg, self.policy = world, cfg, policy
        self.hosts = {h.id: h for h in world.hosts}
        self.replicas = Counter(h.service for h in world.hosts)
        self.tally = Tally()
        self.heap: list[tuple[float, int, str, tuple[int, ...]]] = []
        self.seq = 0
        self.attempt: Counter[tuple[int, int]] = Counter()
        self.fixed_patch_at: dict[int, float] = {}

    def push(self, t: float, kind: str, *payload: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, payload))

    def run(self) -> Tally:
        for v in self.world.vulns:
            self.push(v.disclosed, "disclose", v.id)
        while self.heap:
            t, _, kind, payload = heapq.heappop(self.heap)
            if t > self.cfg.days:
                break
            getattr(self, f"on_{kind}")(t, *payload)
        return self.tally

    # -- deployment mechanics shared by every policy

    def patch_version(self, vid: int, t: float) -> int:
        """0: the first patch; 1: the fixed patch (available after a bad one failed)."""
        fixed = self.fixed_patch_at.get(vid)
        return 1 if fixed is not None and t >= fixed else 0

    def deploy(self, vid: int, hosts: Sequence[int], t: float) -> list[int]:
        """Deploy to ``hosts`` at ``t`` (one slot); returns the hosts where it failed."""
        v = self.world.vulns[vid]
        version = self.patch_version(vid, t)
        failed: list[int] = []
        for h in hosts:
            if (vid, h) in self.tally.patched:
                continue
            key = (vid, h)
            draw = self.world.fail_draws.get((vid, h, min(self.attempt[key], 2)), 0.5)
            self.attempt[key] += 1
            p = self.cfg.p_fail_bad if (v.bad and version == 0) else self.cfg.p_fail_good
            if draw < p:
                failed.append(h)
            else:
                self.tally.patched[key] = t + 0.5 * HOUR
        if failed:
            self.tally.failed_deployments += len(failed)
            self.tally.host_down_hours += len(failed) * self.cfg.outage_hours
            if v.bad and version == 0:
                self.tally.hosts_hit.update(failed)
                if vid not in self.fixed_patch_at:
                    self.fixed_patch_at[vid] = t + self.cfg.fix_delay_days
            down = Counter(self.hosts[h].service for h in failed)
            for service, n in down.items():
                if n >= self.replicas[service]:
                    self.tally.service_outage_hours += self.cfg.outage_hours
        return failed

    def retry_after_fix(self, vid: int, t: float) -> float:
        return max(self.fixed_patch_at.get(vid, t), t)

    # -- baseline policies

    def on_disclose(self, t: float, vid: int) -> None:
        v = self.world.vulns[vid]
        if self.policy == "patchwarden":
            self.plan_patchwarden(t, vid)
        elif self.policy == "cvss_auto" and v.cvss >= self.cfg.cvss_threshold:
            self.push(t, "approved", vid)
        else:
            self.push(patch_tuesday(t) + self.cfg.approval_days, "approved", vid)

    def on_approved(self, t: float, vid: int) -> None:
        """Baselines: each unpatched host at its next window (all replicas together)."""
        by_slot: dict[float, list[int]] = defaultdict(list)
        for h in self.world.vulns[vid].hosts:
            if (vid, h) not in self.tally.patched:
                by_slot[next_window(self.hosts[h], t, self.cfg)].append(h)
        for slot, hosts in sorted(by_slot.items()):
            self.push(slot, "baseline_slot", vid, *hosts)

    def on_baseline_slot(self, t: float, vid: int, *hosts: int) -> None:
        failed = self.deploy(vid, hosts, t)
        if failed:  # rolled back; retried in the next monthly change once a fix exists
            retry = patch_tuesday(self.retry_after_fix(vid, t)) + self.cfg.approval_days
            if self.policy == "cvss_auto" and self.world.vulns[vid].cvss >= self.cfg.cvss_threshold:
                retry = self.retry_after_fix(vid, t + self.cfg.outage_hours * HOUR)
            self.push(retry, "approved", vid)

    # -- patchwarden

    def rings(self, vid: int) -> list[list[int]]:
        """Canary (>= 1 per service, topped up to canary_share), pilot, broad; dev first."""
        order = {Environment.DEV: 0, Environment.STAGING: 1, Environment.PROD: 2}
        hosts = sorted(
            self.world.vulns[vid].hosts,
            key=lambda h: (order[self.hosts[h].environment], self.hosts[h].service, h),
        )
        canary: list[int] = []
        seen: set[int] = set()
        for h in hosts:
            if self.hosts[h].service not in seen:
                seen.add(self.hosts[h].service)
                canary.append(h)
        want = math.ceil(self.cfg.canary_share * len(hosts))
        rest = [h for h in hosts if h not in set(canary)]
        canary += rest[: max(0, want - len(canary))]
        rest = rest[max(0, want - len(canary)) :] if want > len(canary) else rest
        rest = [h for h in hosts if h not in set(canary)]
        n_pilot = math.ceil(self.cfg.pilot_share * len(hosts))
        return [r for r in (canary, rest[:n_pilot], rest[n_pilot:]) if r]

    def plan_patchwarden(self, t: float, vid: int) -> None:
        v = self.world.vulns[vid]
        deadline = v.disclosed + v.deadline_days
        rings = self.rings(vid)
        # Would the regular ring schedule meet the deadline? Estimate: prod approval, then each
        # ring one window + soak later (as the scheduler places rings).
        start = t + self.cfg.approval_days
        finish = start
        for _ in rings:
            finish = finish + 7 + self.cfg.soak_hours * HOUR
        if finish > deadline:
            self.tally.emergency_changes += 1
            self.push(t + self.cfg.emergency_approval_hours * HOUR, "emergency", vid, 0)
        else:
            self.push(t, "ring", vid, 0)

    def _by_service_steps(self, hosts: Sequence[int]) -> list[list[int]]:
        """Split hosts into steps that keep each service within max_unavailable."""
        per: dict[int, list[int]] = defaultdict(list)
        for h in hosts:
            per[self.hosts[h].service].append(h)
        steps: list[list[int]] = []
        for service, members in per.items():
            limit = max(1, math.floor(self.cfg.max_unavailable * self.replicas[service]))
            for i in range(0, len(members), limit):
                k = i // limit
                while len(steps) <= k:
                    steps.append([])
                steps[k].extend(members[i : i + limit])
        return steps

    def on_emergency(self, t: float, vid: int, ring: int) -> None:
        """Emergency: every ring now, max_unavailable per 1-hour step, halt on failure."""
        rings = self.rings(vid)
        for r in rings[ring:]:
            for k, step in enumerate(self._by_service_steps(r)):
                failed = self.deploy(vid, step, t + k * HOUR)
                if failed:
                    self.tally.halts += 1
                    self.push(self.retry_after_fix(vid, t), "emergency", vid, ring)
                    return
            t += 2 * HOUR  # short soak between rings in an emergency
            ring += 1

    def on_ring(self, t: float, vid: int, ring: int) -> None:
        rings = self.rings(vid)
        if ring >= len(rings):
            return
        hosts = [h for h in rings[ring] if (vid, h) not in self.tally.patched]
        by_slot: dict[float, list[int]] = defaultdict(list)
        for h in hosts:
            host = self.hosts[h]
            ready = t if host.environment is not Environment.PROD else t + self.cfg.approval_days
            by_slot[next_window(host, ready, self.cfg)].append(h)
        last = t
        for slot, members in sorted(by_slot.items()):
            # within a window, replicas go in max_unavailable-sized steps (1 h each)
            for k, step in enumerate(self._by_service_steps(members)):
                self.push(slot + k * HOUR, "ring_step", vid, ring, *step)
            last = max(last, slot + self.cfg.window_hours * HOUR)
        self.push(last + self.cfg.soak_hours * HOUR, "soak_end", vid, ring)

    def on_ring_step(self, t: float, vid: int, ring: int, *hosts: int) -> None:
        if self._halted(vid, t):
            return
        if self.deploy(vid, hosts, t):
            self.tally.halts += 1
            self.push(self.retry_after_fix(vid, t), "ring", vid, ring)

    def _halted(self, vid: int, t: float) -> bool:
        fixed = self.fixed_patch_at.get(vid)
        return fixed is not None and t < fixed

    def on_soak_end(self, t: float, vid: int, ring: int) -> None:
        if self._halted(vid, t):
            return  # the halted ring is re-run when the fix ships (pushed by on_ring_step)
        rings = self.rings(vid)
        pending = [h for h in rings[ring] if (vid, h) not in self.tally.patched]
        if pending:
            return
        self.push(t, "ring", vid, ring + 1)


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyResult:
    policy: str
    findings: int
    fixed: int
    mttp_median_days: float | None
    mttp_restricted_mean_days: float
    naive_mean_days: float | None
    kev_findings: int
    kev_exposure_days: float
    exposure_days: float
    sla_met_share: float | None
    failed_deployments: int
    hosts_hit_by_bad_patch: int
    unplanned_host_downtime_hours: float
    service_outage_hours: float
    emergency_changes: int
    halts: int


def evaluate(world: World, cfg: Config, policy: str, tally: Tally) -> PolicyResult:
    """Metrics of one run (Kaplan-Meier over (host, vulnerability) findings)."""
    end = YEAR_START + dt.timedelta(days=cfg.days)
    spans: list[FindingSpan] = []
    met = decided = 0
    for v in world.vulns:
        first = YEAR_START + dt.timedelta(days=v.disclosed)
        due = first + dt.timedelta(days=v.deadline_days)
        for h in v.hosts:
            at = tally.patched.get((v.id, h))
            resolved = None if at is None or at > cfg.days else YEAR_START + dt.timedelta(days=at)
            spans.append(
                FindingSpan(
                    finding_id=len(spans),
                    asset=str(h),
                    kev=v.kev,
                    first_seen=first,
                    resolved_at=resolved,
                )
            )
            if resolved is not None:
                decided += 1
                met += resolved <= due
            elif end > due:
                decided += 1
    durations = [((s.resolved_at or end) - s.first_seen).total_seconds() / 86400 for s in spans]
    observed = [s.resolved_at is not None for s in spans]
    curve = kaplan_meier(durations, observed)
    closed = [d for d, o in zip(durations, observed, strict=True) if o]
    kev_spans = [s for s in spans if s.kev]
    return PolicyResult(
        policy=policy,
        findings=len(spans),
        fixed=len(closed),
        mttp_median_days=curve.median,
        mttp_restricted_mean_days=curve.restricted_mean(90.0),
        naive_mean_days=sum(closed) / len(closed) if closed else None,
        kev_findings=len(kev_spans),
        kev_exposure_days=exposure_days(kev_spans, end),
        exposure_days=exposure_days(spans, end),
        sla_met_share=met / decided if decided else None,
        failed_deployments=tally.failed_deployments,
        hosts_hit_by_bad_patch=len(tally.hosts_hit),
        unplanned_host_downtime_hours=tally.host_down_hours,
        service_outage_hours=tally.service_outage_hours,
        emergency_changes=tally.emergency_changes,
        halts=tally.halts,
    )


POLICIES = ("monthly", "cvss_auto", "patchwarden")
LABELS = {
    "monthly": "monthly + approval",
    "cvss_auto": "CVSS>=7 auto",
    "patchwarden": "patchwarden",
}


def simulate(world: World, cfg: Config) -> list[PolicyResult]:
    """Run every policy on the same world."""
    return [evaluate(world, cfg, p, Sim(world, cfg, p).run()) for p in POLICIES]


def _f(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def table(results: Sequence[PolicyResult]) -> str:
    """The side-by-side table printed on stdout."""
    rows: list[tuple[str, Callable[[PolicyResult], str]]] = [
        ("findings (host x vuln)", lambda r: str(r.findings)),
        ("fixed by year end", lambda r: str(r.fixed)),
        ("MTTP median, days (KM)", lambda r: _f(r.mttp_median_days)),
        ("MTTP restricted mean 90 d (KM)", lambda r: _f(r.mttp_restricted_mean_days)),
        ("mean over fixed only (biased)", lambda r: _f(r.naive_mean_days)),
        ("SLA met", lambda r: _f(r.sla_met_share, "{:.0%}")),
        ("KEV exposure-days", lambda r: _f(r.kev_exposure_days, "{:,.0f}")),
        ("all exposure-days", lambda r: _f(r.exposure_days, "{:,.0f}")),
        ("failed deployments", lambda r: str(r.failed_deployments)),
        ("hosts hit by a bad patch", lambda r: str(r.hosts_hit_by_bad_patch)),
        ("unplanned downtime, host-h", lambda r: _f(r.unplanned_host_downtime_hours, "{:,.0f}")),
        ("service outage hours", lambda r: _f(r.service_outage_hours, "{:,.0f}")),
        ("emergency changes", lambda r: str(r.emergency_changes)),
        ("rollout halts", lambda r: str(r.halts)),
    ]
    width = 32
    head = "".ljust(width) + "".join(LABELS[r.policy].rjust(20) for r in results)
    lines = [head]
    for name, get in rows:
        lines.append(name.ljust(width) + "".join(get(r).rjust(20) for r in results))
    return "\n".join(lines)


_DEFAULT = Config()


def main(argv: list[str] | None = None) -> int:
    """Run the simulation; return the exit code."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--kev", type=Path, default=DATA / "kev" / "known_exploited_vulnerabilities-2026.01.29.json"
    )
    parser.add_argument(
        "--epss", type=Path, default=DATA / "epss" / "epss_scores-2026-01-30.csv.gz"
    )
    parser.add_argument(
        "--oval", type=Path, default=DATA / "ubuntu" / "oval" / "com.ubuntu.noble.usn.oval.xml"
    )
    parser.add_argument("--pypa", type=Path, default=DATA / "osv" / "pypi" / "vulns")
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (simulate.json)")
    parser.add_argument("--seed", type=int, default=_DEFAULT.seed)
    parser.add_argument("--services", type=int, default=_DEFAULT.services)
    parser.add_argument("--disclosures", type=int, default=_DEFAULT.disclosures)
    parser.add_argument("--p-bad", type=float, default=_DEFAULT.p_bad)
    parser.add_argument("--p-fail-bad", type=float, default=_DEFAULT.p_fail_bad)
    parser.add_argument("--p-fail-good", type=float, default=_DEFAULT.p_fail_good)
    parser.add_argument("--approval-days", type=float, default=_DEFAULT.approval_days)
    parser.add_argument("--smoke", action="store_true", help="12 services, 60 disclosures")
    args = parser.parse_args(argv)
    cfg = Config(
        seed=args.seed,
        services=12 if args.smoke else args.services,
        disclosures=60 if args.smoke else args.disclosures,
        p_bad=args.p_bad,
        p_fail_bad=args.p_fail_bad,
        p_fail_good=args.p_fail_good,
        approval_days=args.approval_days,
    )
    for name in ("p_bad", "p_fail_bad", "p_fail_good"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            print(f"error: --{name.replace('_', '-')} must be in [0, 1]", file=sys.stderr)
            return 2
    if cfg.services < 1 or cfg.disclosures < 1:
        print("error: --services and --disclosures must be at least 1", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        data = prio.load(
            kev_then=args.kev, kev_now=args.kev, epss=args.epss, oval=args.oval, pypa=args.pypa
        )
        world = build_world(data, cfg)
    except PatchwardenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = simulate(world, cfg)
    elapsed = time.perf_counter() - start
    print(
        f"{len(world.hosts)} hosts in {cfg.services} services, {len(world.vulns)} disclosures "
        f"({sum(v.kev for v in world.vulns)} KEV, {sum(v.bad for v in world.vulns)} bad patches), "
        f"{cfg.days} days, seed {cfg.seed}; {elapsed:.1f} s"
    )
    print(table(results))
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {
        "config": asdict(cfg),
        "hosts": len(world.hosts),
        "disclosures": len(world.vulns),
        "kev_disclosures": sum(v.kev for v in world.vulns),
        "bad_patches": sum(v.bad for v in world.vulns),
        "sources": {
            "kev": str(args.kev),
            "epss": str(args.epss),
            "oval": str(args.oval),
            "pypa": str(args.pypa),
        },
        "results": [asdict(r) for r in results],
    }
    (args.out / "simulate.json").write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
