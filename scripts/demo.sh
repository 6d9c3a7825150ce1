#!/usr/bin/env bash
# patchwarden offline demo (`make demo`): import the bundled real advisory snapshot, scan the
# bundled sample fleet and this machine, then show assets, the most urgent findings and a
# summary. Everything goes to a fresh SQLite database under demo-out/ (git-ignored).
#
# Exit status: non-zero when the demo itself failed — the snapshot did not import cleanly,
# the sample fleet did not scan cleanly, or any command broke. Scanning THIS machine may
# legitimately be partial (exit 3: an unreadable file, a package database we cannot parse);
# that is reported and tolerated, since the machine is not part of the demo's data.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PW=.venv/bin/patchwarden
PY=.venv/bin/python
DEMO=src/patchwarden/demo
DATA=$DEMO/data
OUT=${PATCHWARDEN_DEMO_OUT:-demo-out}
DB=$OUT/demo.db
JSON=$OUT/findings.json

if [[ ! -x $PW ]]; then
  echo "error: $PW not found; run 'make demo' (it creates the virtualenv first)" >&2
  exit 2
fi

# Not a terminal (CI log, pipe): give the tables room instead of rich's 80-column default.
if [[ ! -t 1 ]]; then
  export COLUMNS=${COLUMNS:-150}
fi

section() { printf '\n==== %s ====\n\n' "$*"; }
fail() { echo "demo failed: $*" >&2; exit 1; }

start=$SECONDS
mkdir -p "$OUT"
rm -f "$DB" "$JSON"
pw() { "$PW" --db "$DB" "$@"; }

section "1/8 Import the bundled advisory snapshot (real data, old: see $DATA/SOURCES.md)"
pw -q feeds import \
  "$DATA/osv" \
  "$DATA/debian/DSA/list" \
  "$DATA/debian/DLA/list" \
  "$DATA/alpine/v3.19/main.json" \
  "$DATA/kev/known_exploited_vulnerabilities-2026.01.29.json" \
  "$DATA/epss/epss_scores-2026-01-30.csv.gz" \
  || fail "the bundled snapshot did not import cleanly (exit $?)"

section "2/8 Scan the sample fleet ($DEMO/fleet.yaml: sample assets, real package versions)"
pw -q scan --fleet "$DEMO/fleet.yaml" || fail "the sample fleet did not scan cleanly (exit $?)"

section "3/8 Scan this machine (--local)"
os_name=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}") || os_name=unknown
echo "This machine: $os_name (asset name: $(hostname))."
echo "Note: the bundled snapshot has Debian advisories for buster (10) and bullseye (11) only"
echo "(it predates bookworm, Debian 12) and Alpine advisories for v3.19 only, so OS packages of"
echo "other releases are inventoried but cannot match here; Python packages are matched against"
echo "the PyPA records of the snapshot. Import current feeds for a real assessment."
echo
rc=0
pw -q scan --local || rc=$?
case $rc in
  0) ;;
  3) echo "note: the local scan was partial (exit 3, reasons above); the demo goes on" ;;
  *) fail "scanning this machine failed (exit $rc)" ;;
esac

section "4/8 Assets"
pw assets

section "5/8 Most urgent open findings (KEV first, then severity, CVSS, EPSS)"
pw findings --limit 15

echo
echo "Known exploited (CISA KEV) findings:"
pw findings --kev --limit 0

section "6/8 Ranked upgrades (one action per package per asset, by risk removed)"
pw actions --limit 10

section "7/8 Plan with the demo policy ($DEMO/policy.yaml): windows, rings, gates, SLAs"
pw --policy "$DEMO/policy.yaml" plan --html "$OUT/plan.html" --limit 10
echo "timeline: $OUT/plan.html (approve with: PATCHWARDEN_ACTOR=alice $PW --db $DB approve CHANGE --reason ...)"
pw report --out "$OUT/report" >/dev/null && echo "report:   $OUT/report/report.html (MTTP, exposure-days, SLA, burn-down)"

section "8/8 Summary"
pw findings --json --limit 0 > "$JSON"
"$PY" - "$JSON" <<'PYEOF'
import collections, json, sys

rows = json.load(open(sys.argv[1], encoding="utf-8"))
order = ["critical", "high", "medium", "low", "none", "unknown"]
sev = collections.Counter(r["severity"] for r in rows)
assets = collections.Counter(r["asset"] for r in rows)
kev = [r for r in rows if r["kev"]]
print(f"open findings: {len(rows)} on {len(assets)} assets")
print("by severity:   " + ", ".join(f"{s} {sev[s]}" for s in order if sev[s]))
print("              (most PyPA and Debian records carry no CVSS vector, hence 'unknown')")
print(f"KEV findings:  {len(kev)} " + (
    "(" + ", ".join(sorted({f"{r['vulnerability']} on {r['asset']}" for r in kev})) + ")"
    if kev else ""))
fixable = sum(1 for r in rows if r["fixed_version"])
print(f"fixable:       {fixable} have a fixed version to upgrade to")
PYEOF
echo "JSON export:   $JSON"
echo "database:      $DB   (e.g. .venv/bin/patchwarden --db $DB findings --asset web-01)"
echo "done in $((SECONDS - start))s"
