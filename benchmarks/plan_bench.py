"""Planning benchmark: :func:`patchwarden.plan.schedule` on a synthetic 10,000-asset fleet.

The fleet: 200 services of 10-90 replicas (and some standalone hosts), prod/staging/dev, spread
over four maintenance windows in three time zones (daily, weekend, Tuesday night and an
hourly-every-6h window for dev), a year-end freeze on prod, 1-6 upgrade actions per asset
with real risk scores (severities, a KEV share with due dates), gate rules and rings.
Prints the time to plan and the plan's summary.

    python benchmarks/plan_bench.py            # 10,000 assets
    python benchmarks/plan_bench.py --smoke    # 500 assets, for ``make bench``
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time

from patchwarden.model import (
    Asset,
    AssetId,
    Environment,
    Finding,
    FixState,
    KevEntry,
    Severity,
    VulnId,
)
from patchwarden.plan import (
    Freeze,
    GateConditions,
    GateDecision,
    GateRule,
    PlanPolicy,
    Selector,
    UpgradeLevel,
    Window,
    schedule,
)
from patchwarden.prioritize import Action, ScoredFinding
from patchwarden.risk import RiskInput, score

NOW = dt.datetime(2025, 11, 3, 9, 0, tzinfo=dt.UTC)
PACKAGES = [
    ("openssl", "3.0.11-1~deb12u2", "3.0.15-1~deb12u1"),
    ("glibc", "2.36-9+deb12u4", "2.36-9+deb12u9"),
    ("curl", "7.88.1-10+deb12u5", "7.88.1-10+deb12u8"),
    ("linux", "6.1.76-1", "6.1.115-1"),
    ("systemd", "252.22-1~deb12u1", "252.31-1~deb12u1"),
    ("libxml2", "2.9.14+dfsg-1.3~deb12u1", "2.9.14+dfsg-1.3~deb12u2"),
    ("nginx", "1.22.1-9", "1.22.1-9+deb12u1"),
    ("python3.11", "3.11.2-6", "3.11.2-6+deb12u4"),
]


def fleet(n: int, seed: int) -> tuple[list[Asset], list[Action], dict[str, KevEntry]]:
    """A synthetic fleet of ``n`` assets, their actions and KEV entries."""
    rng = random.Random(seed)
    windows = ["nightly-utc", "weekend-eu", "tuesday-us"]
    assets: list[Asset] = []
    service = 0
    while len(assets) < n:
        replicas = rng.randint(10, 90) if rng.random() < 0.8 else 1
        env = rng.choices(list(Environment), weights=[6, 2, 2])[0]
        window = rng.choice(windows) if env is not Environment.DEV else None
        name = f"svc{service:03d}" if replicas > 1 else None
        for r in range(min(replicas, n - len(assets))):
            assets.append(
                Asset(
                    id=AssetId(f"h{len(assets):05d}"),
                    environment=env,
                    criticality=rng.randint(1, 5),
                    internet_exposed=rng.random() < 0.2,
                    service=name,
                    maintenance_window=window,
                    tags=("eu",) if r % 2 else (),
                )
            )
        service += 1
    actions = []
    kev: dict[str, KevEntry] = {}
    fid = 0
    for a in assets:
        for package, installed, target in rng.sample(PACKAGES, rng.randint(1, 6)):
            fid += 1
            sev = rng.choice([Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW])
            in_kev = rng.random() < 0.03
            cve = VulnId(f"CVE-2025-{fid % 5000:05d}")
            if in_kev:
                due = (NOW + dt.timedelta(days=rng.randint(-10, 40))).date()
                kev[cve] = KevEntry(
                    cve_id=cve, date_added=due, due_date=due, known_ransomware=False
                )
            seen = NOW - dt.timedelta(days=rng.randint(0, 20))
            risk = score(
                RiskInput(
                    vulnerability=cve,
                    asset=a.id,
                    severity=sev,
                    kev=cve in kev,
                    environment=a.environment,
                    criticality=a.criticality,
                    internet_exposed=a.internet_exposed,
                )
            )
            finding = Finding(
                id=fid, asset=a.id, ecosystem="Debian:12", package=package,
                installed_version=installed, binaries=(package,), vulnerability=cve, aliases=(),
                advisories=(), fix_state=FixState.FIXED, fixed_version=target, severity=sev,
                cvss_score=None, kev=cve in kev, epss=None, epss_percentile=None,
                first_seen=seen, last_seen=seen, resolved_at=None,
            )  # fmt: skip
            actions.append(
                Action(
                    id=f"{a.id}/{package}",
                    asset=a.id,
                    ecosystem="Debian:12",
                    package=package,
                    binaries=(package,),
                    installed_version=installed,
                    target_version=target,
                    closes=(ScoredFinding(finding=finding, risk=risk),),
                    remaining=(),
                    risk_removed=risk.score,
                )
            )
    return assets, actions, kev


POLICY = PlanPolicy(
    windows=(
        Window(name="nightly-utc", rrule="FREQ=DAILY;BYHOUR=1", duration=dt.timedelta(hours=4)),
        Window(
            name="weekend-eu",
            rrule="FREQ=WEEKLY;BYDAY=SA,SU;BYHOUR=2",
            duration=dt.timedelta(hours=6),
            timezone="Europe/Berlin",
        ),
        Window(
            name="tuesday-us",
            rrule="FREQ=WEEKLY;BYDAY=TU;BYHOUR=22",
            duration=dt.timedelta(hours=3),
            timezone="America/New_York",
        ),
        Window(
            name="dev",
            rrule="FREQ=HOURLY;INTERVAL=6",
            duration=dt.timedelta(hours=2),
            selector=Selector(environments=(Environment.DEV,)),
        ),
    ),
    freezes=(
        Freeze(
            name="year-end",
            start=dt.datetime(2025, 12, 20, tzinfo=dt.UTC),
            end=dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
            selector=Selector(environments=(Environment.PROD,)),
            allow_emergency=True,
        ),
    ),
    gates=(
        GateRule(
            name="non-prod small",
            when=GateConditions(
                environments=(Environment.DEV, Environment.STAGING),
                upgrade_levels=(UpgradeLevel.DISTRO_REVISION, UpgradeLevel.PATCH),
                reboot=False,
            ),
            decision=GateDecision.AUTO_APPROVE,
        ),
    ),
)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the planning time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--assets", type=int, default=10_000, help="fleet size")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument("--smoke", action="store_true", help="500 assets, quick check")
    args = parser.parse_args(argv)
    n = 500 if args.smoke else args.assets
    assets, actions, kev = fleet(n, args.seed)
    start = time.perf_counter()
    plan = schedule(actions, assets, POLICY, NOW, kev=kev)
    elapsed = time.perf_counter() - start
    s = plan.summary
    print(f"planned {n:,} assets / {len(actions):,} actions in {elapsed:.2f} s")
    print(
        f"  {s.changes:,} changes in {s.waves} waves, {s.emergency} emergency,"
        f" {s.sla_breaches} sla breaches, {s.auto_approved} auto-approved,"
        f" {s.require_approval} awaiting approval, {s.unscheduled_actions} actions unscheduled"
    )
    print("  by ring: " + ", ".join(f"{r.value} {c}" for r, c in s.by_ring.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
