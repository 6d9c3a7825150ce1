"""Reading workloads and PDBs, planning image rollouts, patching manifests (tests/data/k8s)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from patchwarden.errors import ManifestError
from patchwarden.k8s import (
    ImageRef,
    SkipReason,
    WorkloadKind,
    image_updates,
    load_objects,
    parse_image_map,
    patch_manifests,
    plan_rollout,
    read_cluster,
    rollout_unavailable,
    workload_budget,
)
from patchwarden.model import AssetId, Finding, FixState, Severity, VulnId
from patchwarden.plan import GateConditions, GateDecision, GateRule, PlanPolicy, Ring, Window
from patchwarden.prioritize import Action, ScoredFinding
from patchwarden.risk import RiskInput, score

DATA = Path(__file__).resolve().parents[1] / "data" / "k8s"
NOW = dt.datetime(2025, 3, 24, 12, 0, tzinfo=dt.UTC)
NEW = "registry.example/app:1.0.1@sha256:" + "1f" * 32


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(DATA / "manifests", tmp_path / "m")
    return tmp_path / "m"


def _image_action(severity: Severity = Severity.HIGH) -> Action:
    # CVE-2020-28493 (Jinja2 < 2.11.3) is what the app image's scan finds (tests/images).
    asset = AssetId("registry.example/app:1.0")
    f = Finding(
        id=1, asset=asset, ecosystem="PyPI", package="jinja2", installed_version="2.10",
        binaries=("Jinja2",), vulnerability=VulnId("CVE-2020-28493"), aliases=(),
        advisories=(), fix_state=FixState.FIXED, fixed_version="2.11.3", severity=severity,
        cvss_score=None, kev=False, epss=None, epss_percentile=None, first_seen=NOW,
        last_seen=NOW, resolved_at=None,
    )  # fmt: skip
    risk = score(RiskInput(vulnerability=f.vulnerability, asset=asset, severity=severity))
    return Action(
        id=f"{asset}/jinja2", asset=asset, ecosystem="PyPI", package="jinja2",
        binaries=("Jinja2",), installed_version="2.10", target_version="2.11.3",
        closes=(ScoredFinding(finding=f, risk=risk),), remaining=(), risk_removed=risk.score,
    )  # fmt: skip


def test_read_manifests_and_pdb_coverage() -> None:
    cluster = read_cluster(load_objects([DATA / "manifests"]))
    keys = [w.key for w in cluster.workloads]
    assert keys == [
        "kube-system/daemonset/log-agent",
        "shop/cronjob/report",
        "shop/deployment/web",
        "shop/statefulset/db",
    ]
    web = next(w for w in cluster.workloads if w.name == "web")
    assert web.replicas == 3
    assert [(c.name, c.init, c.image.tag, c.image.digest is not None) for c in web.containers] == [
        ("migrate", True, "1.0", False),
        ("app", False, "1.0", False),
        ("proxy", False, "1.25.3", True),
    ]
    assert web.containers[2].image.name == "docker.io/library/nginx"
    assert [p.key for p in cluster.pdbs_for(web)] == ["shop/pdb/web"]
    assert workload_budget(cluster, web)[0] == 1  # 3 replicas - minAvailable 2
    assert rollout_unavailable(web) == 2
    db = next(w for w in cluster.workloads if w.name == "db")
    assert db.containers[0].image.name == "docker.io/library/postgres"
    assert workload_budget(cluster, db)[0] == 2  # maxUnavailable 34% of 3, rounded up
    ds = next(w for w in cluster.workloads if w.kind is WorkloadKind.DAEMONSET)
    assert ds.replicas is None  # a manifest does not say how many nodes
    assert workload_budget(cluster, ds) == (None, ())
    cron = next(w for w in cluster.workloads if w.kind is WorkloadKind.CRONJOB)
    assert cron.containers[0].path[:4] == ("spec", "jobTemplate", "spec", "template")


def test_kubectl_list_with_status() -> None:
    cluster = read_cluster(load_objects([DATA / "kubectl-list.json"]))
    (api,) = cluster.workloads
    assert (api.replicas, api.ready) == (4, 3)
    assert api.source.origin.item == 0
    # minAvailable 50% of 4 = 2; 3 healthy: one disruption (as the status says)
    assert workload_budget(cluster, api)[0] == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "no-containers.yaml",
            "no-containers.yaml: document 1, field 'spec.template.spec.containers': needs at least",
        ),
        (
            "bad-image.yaml",
            "bad-image.yaml: document 0, field 'spec.template.spec.containers[0].image': "
            "invalid image reference 'Registry.Example/App:1.0'",
        ),
        (
            "bad-pdb.yaml",
            "bad-pdb.yaml: document 0, field 'spec.minAvailable': expected a count or a percentage",
        ),
        ("not-yaml.yaml", "not-yaml.yaml: document 0, line 3: not valid YAML/JSON"),
    ],
)
def test_malformed_inputs_name_file_document_and_field(name: str, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        read_cluster(load_objects([DATA / "malformed" / name]))
    assert message in str(info.value)


def test_malformed_shapes(tmp_path: Path) -> None:
    cases = {
        "list.yaml": ("- a\n- b\n", "document 0: expected a mapping (an object), got list"),
        "nokind.json": ('{"apiVersion": "v1"}', "document 0, field 'kind': missing"),
        "items.json": ('{"kind": "List", "items": [{"kind": "Deployment", "metadata": 3}]}',
                       "document 0, items[0], field 'metadata': expected a mapping, got int"),
        "dup.yaml": ("kind: CronJob\nmetadata: {name: a}\nspec: {jobTemplate: {spec: {template:"
                     " {spec: {containers: [{name: x, image: a}, {name: x, image: b}]}}}}}\n",
                     "field 'spec.jobTemplate.spec.template.spec.containers[1].name': duplicate"),
        "both.yaml": ("kind: PodDisruptionBudget\nmetadata: {name: p}\n"
                      "spec: {minAvailable: 1, maxUnavailable: 1}\n", "cannot both be set"),
        "op.yaml": ("kind: PodDisruptionBudget\nmetadata: {name: p}\nspec: {minAvailable: 1,"
                    " selector: {matchExpressions: [{key: a, operator: Near}]}}\n",
                    "field 'spec.selector.matchExpressions[0].operator': unknown operator"),
    }  # fmt: skip
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ManifestError) as info:
            read_cluster(load_objects([tmp_path / name]))
        assert message in str(info.value), name
    with pytest.raises(ManifestError, match="no such file or folder"):
        load_objects([tmp_path / "missing.yaml"])


def test_image_map_matching() -> None:
    cluster = read_cluster(load_objects([DATA / "manifests"]))
    updates = image_updates(cluster, parse_image_map([f"registry.example/app:1.0={NEW}"]))
    assert sorted(updates) == [
        "kube-system/daemonset/log-agent",
        "shop/cronjob/report",
        "shop/deployment/web",
    ]
    assert [u.container.name for u in updates["shop/deployment/web"]] == ["migrate", "app"]
    by_digest = parse_image_map(["nginx@sha256:" + "4c0fdaa8" + "0" * 56 + "=nginx:1.27"])
    assert image_updates(cluster, by_digest) == {}  # another digest: no match
    with pytest.raises(ValueError, match="expected OLD=NEW"):
        parse_image_map(["nginx"])
    assert ImageRef.parse("nginx").version == "latest"


def test_plan_rollout_with_rings_windows_gates_and_pdb(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    cluster = read_cluster(load_objects([folder]))
    updates = image_updates(cluster, parse_image_map([f"registry.example/app:1.0={NEW}"]))
    nightly = Window(name="nightly", rrule="FREQ=DAILY;BYHOUR=2", duration=dt.timedelta(hours=2))
    policy = PlanPolicy(
        windows=(nightly,),
        gates=(
            GateRule(
                name="restarts auto",
                when=GateConditions(restart=True, reboot=False),
                decision=GateDecision.AUTO_APPROVE,
            ),
        ),
    )
    image_actions = [(ImageRef.parse("registry.example/app:1.0"), [_image_action()])]
    result = plan_rollout(cluster, updates, image_actions, policy, NOW)
    assert result.skipped == ()
    assert [r.workload.key for r in result.rollouts] == [
        "kube-system/daemonset/log-agent",
        "shop/cronjob/report",
        "shop/deployment/web",
    ]
    web = next(r for r in result.rollouts if r.workload.name == "web")
    assert web.change is not None
    assert web.change.window == "nightly"
    assert web.change.gate.decision is GateDecision.AUTO_APPROVE
    assert web.change.ring in set(Ring)
    assert web.asset.service == "shop/pdb/web"
    assert web.budget == 1
    assert web.unavailable == 1
    assert web.strategy_patch == {"spec": {"strategy": {"rollingUpdate": {"maxUnavailable": 1}}}}
    assert web.commands == (
        "kubectl -n shop patch deployment/web --type=merge -p "
        '\'{"spec":{"strategy":{"rollingUpdate":{"maxUnavailable":1}}}}\'',
        f"kubectl -n shop set image deployment/web migrate={NEW} app={NEW}",
        "kubectl -n shop rollout status deployment/web --timeout=15m",
    )
    cron = next(r for r in result.rollouts if r.workload.name == "report")
    assert cron.commands == (f"kubectl -n shop set image cronjob/report report={NEW}",)
    # the plan's changes come in rollout order: by slot start, then wave
    starts = [r.change.start for r in result.rollouts if r.change is not None]
    assert starts == sorted(starts)
    # rings: soak separates rings, so a later ring never starts before an earlier one
    ranks = [r.change.ring.rank for r in result.rollouts if r.change is not None]
    assert ranks == sorted(ranks)

    patched = patch_manifests(result.rollouts)
    shop = patched[folder / "shop.yaml"]
    original = (folder / "shop.yaml").read_text()
    assert f"image: registry.example/app:1.0.1@sha256:{'1f' * 32}   # tag only" in shop
    assert f'image: "{NEW}"' in shop
    assert "maxUnavailable: 2   # too generous for the PDB below" in shop  # untouched
    assert shop.replace(NEW, "registry.example/app:1.0") == original
    assert f"image: '{NEW}'" in patched[folder / "platform.yaml"]
    docs = list(yaml.safe_load_all(shop))
    assert docs[0]["spec"]["template"]["spec"]["containers"][0]["image"] == NEW


def test_updates_without_findings_are_skipped() -> None:
    cluster = read_cluster(load_objects([DATA / "manifests"]))
    updates = image_updates(cluster, parse_image_map(["postgres:16.2=postgres:16.3"]))
    result = plan_rollout(cluster, updates, [], PlanPolicy(), NOW)
    assert result.rollouts == ()
    (skip,) = result.skipped
    assert skip.workload == "shop/statefulset/db"
    assert skip.reason is SkipReason.NO_FINDINGS


def test_two_workloads_of_one_pdb_never_overlap(tmp_path: Path) -> None:
    text = ""
    for name in ("blue", "green"):
        text += f"""---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: shop}}
spec:
  replicas: 2
  template:
    metadata: {{labels: {{app: checkout, track: {name}}}}}
    spec:
      containers: [{{name: c, image: registry.example/app:1.0}}]
"""
    text += """---
kind: PodDisruptionBudget
metadata: {name: checkout, namespace: shop}
spec: {maxUnavailable: 1, selector: {matchLabels: {app: checkout}}}
"""
    (tmp_path / "c.yaml").write_text(text)
    cluster = read_cluster(load_objects([tmp_path / "c.yaml"]))
    updates = image_updates(cluster, parse_image_map([f"registry.example/app:1.0={NEW}"]))
    image_actions = [(ImageRef.parse("registry.example/app:1.0"), [_image_action()])]
    result = plan_rollout(cluster, updates, image_actions, PlanPolicy(), NOW)
    a, b = (r.change for r in result.rollouts)
    assert a is not None
    assert b is not None
    assert a.service == b.service == "shop/pdb/checkout"
    assert a.end <= b.start or b.end <= a.start
    assert all(r.budget == 1 for r in result.rollouts)
