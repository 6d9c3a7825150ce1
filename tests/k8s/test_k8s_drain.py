"""Node drain plans: kubectl-shaped nodes and pods, blocked nodes, the PDB invariant."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from patchwarden.k8s import (
    LabelSelector,
    Pdb,
    Pod,
    load_objects,
    pdb_allowed,
    plan_drain,
    read_cluster,
    read_nodes,
    read_pods,
)


def _pod(name: str, node: str, app: str, *, ready: bool = True, owner: str = "ReplicaSet") -> Any:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "labels": {"app": app},
            "ownerReferences": [{"kind": owner, "name": f"{app}-x", "controller": True}],
        },
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def _write(tmp_path: Path) -> tuple[Path, Path, Path]:
    nodes = {
        "kind": "List",
        "items": [{"kind": "Node", "metadata": {"name": f"n{i}"}} for i in (1, 2, 3, 4)],
    }
    pods = {
        "kind": "List",
        "items": [
            _pod("web-a", "n1", "web"),
            _pod("web-b", "n2", "web"),
            _pod("web-c", "n3", "web"),
            _pod("db-0", "n4", "db"),
            _pod("db-1", "n4", "db"),
            _pod("db-2", "n1", "db"),
            _pod("agent-1", "n1", "agent", owner="DaemonSet"),
        ],
    }
    pdbs = """
kind: PodDisruptionBudget
metadata: {name: web, namespace: shop}
spec: {minAvailable: 2, selector: {matchLabels: {app: web}}}
---
kind: PodDisruptionBudget
metadata: {name: db, namespace: shop}
spec: {maxUnavailable: 1, selector: {matchLabels: {app: db}}}
---
kind: PodDisruptionBudget
metadata: {name: agent, namespace: shop}
spec: {minAvailable: 1, selector: {matchLabels: {app: agent}}}
"""
    (tmp_path / "nodes.json").write_text(json.dumps(nodes, indent=4))
    (tmp_path / "pods.json").write_text(json.dumps(pods, indent=4))
    (tmp_path / "pdbs.yaml").write_text(pdbs)
    return tmp_path / "nodes.json", tmp_path / "pods.json", tmp_path / "pdbs.yaml"


def test_drain_plan_one_node_at_a_time_and_blocked(tmp_path: Path) -> None:
    nodes_f, pods_f, pdbs_f = _write(tmp_path)
    nodes = read_nodes(load_objects([nodes_f]))
    pods = read_pods(load_objects([pods_f]))
    pdbs = read_cluster(load_objects([pdbs_f])).pdbs
    plan = plan_drain(nodes, pods, pdbs)
    assert plan.allowed == {"shop/pdb/agent": 0, "shop/pdb/db": 1, "shop/pdb/web": 1}
    assert [s.nodes for s in plan.steps] == [("n1",), ("n2",), ("n3",)]
    assert plan.steps[0].evictions == {"shop/pdb/db": 1, "shop/pdb/web": 1}  # agent: a DS pod
    (blocked,) = plan.blocked
    assert (blocked.node, blocked.pdb, blocked.pods, blocked.allowed) == ("n4", "shop/pdb/db", 2, 1)
    assert "draining it would block" in blocked.message
    assert plan.steps[0].commands == (
        "kubectl cordon n1",
        "kubectl drain n1 --ignore-daemonsets --delete-emptydir-data --timeout=15m",
        "ssh n1 sudo systemctl reboot",
        "kubectl wait --for=condition=Ready node/n1 --timeout=15m",
        "kubectl uncordon n1",
        "kubectl -n shop wait pdb/db '--for=jsonpath={.status.currentHealthy}=3' --timeout=15m",
        "kubectl -n shop wait pdb/web '--for=jsonpath={.status.currentHealthy}=3' --timeout=15m",
    )
    # two at a time: n2 and n3 both hold a web pod, the web budget is 1, so still apart
    wide = plan_drain(nodes, pods, pdbs, max_parallel=2)
    assert [s.nodes for s in wide.steps] == [("n1",), ("n2",), ("n3",)]


def test_unready_pod_leaves_no_budget(tmp_path: Path) -> None:
    _, _, pdbs_f = _write(tmp_path)
    items = [_pod("w1", "a", "web", ready=False), _pod("w2", "b", "web"), _pod("w3", "c", "web")]
    pods_doc = {"kind": "PodList", "items": items}
    (tmp_path / "p.json").write_text(json.dumps(pods_doc))
    pods = read_pods(load_objects([tmp_path / "p.json"]))
    pdbs = [p for p in read_cluster(load_objects([pdbs_f])).pdbs if p.name == "web"]
    plan = plan_drain(["a", "b"], pods, pdbs)
    assert plan.allowed == {"shop/pdb/web": 0}
    assert plan.steps == ()
    assert [b.node for b in plan.blocked] == ["a", "b"]


@st.composite
def _clusters(draw: st.DrawFn) -> tuple[list[str], list[Pod], list[Pdb], int]:
    nodes = [f"n{i}" for i in range(draw(st.integers(1, 6)))]
    apps = [f"app{i}" for i in range(draw(st.integers(1, 4)))]
    pods = [
        Pod(
            namespace="ns",
            name=f"p{i}",
            node=draw(st.sampled_from(nodes)),
            labels={"app": draw(st.sampled_from(apps))},
            healthy=draw(st.booleans()),
            daemonset=draw(st.booleans()) and draw(st.booleans()),
            mirror=False,
            terminal=False,
        )
        for i in range(draw(st.integers(0, 20)))
    ]
    budget = st.one_of(st.integers(0, 5), st.integers(0, 100).map(lambda n: f"{n}%"), st.none())
    pdbs = []
    for app in apps:
        if draw(st.booleans()):
            min_a = draw(budget)
            max_u = None if min_a is not None else draw(budget)
            pdbs.append(
                Pdb(
                    namespace="ns",
                    name=app,
                    selector=LabelSelector(match_labels={"app": app}),
                    min_available=min_a,
                    max_unavailable=max_u,
                    source=None,  # type: ignore[arg-type]
                )
            )
    return nodes, pods, pdbs, draw(st.integers(1, 3))


@settings(max_examples=300, deadline=None)
@given(_clusters())
def test_no_step_violates_any_pdb(case: tuple[list[str], list[Pod], list[Pdb], int]) -> None:
    nodes, pods, pdbs, parallel = case
    plan = plan_drain(nodes, pods, pdbs, max_parallel=parallel)
    counted = [p for p in pods if not p.daemonset]
    for pdb in pdbs:
        mine = [p for p in counted if pdb.covers(p.namespace, p.labels)]
        allowed = pdb_allowed(pdb, len(mine), sum(p.healthy for p in mine))
        assert plan.allowed[pdb.key] == allowed
        for step in plan.steps:
            evicted = sum(1 for p in mine if p.node in step.nodes)
            assert evicted <= allowed
            assert step.evictions.get(pdb.key, 0) == evicted
    planned = [n for s in plan.steps for n in s.nodes]
    blocked = {b.node for b in plan.blocked}
    assert sorted(planned + sorted(blocked)) == sorted(nodes)
    assert len(planned) == len(set(planned))
    assert all(1 <= len(s.nodes) <= parallel for s in plan.steps)
    for node in blocked:  # blocked exactly when the node alone is over some budget
        assert any(
            sum(1 for p in counted if p.node == node and pdb.covers(p.namespace, p.labels))
            > plan.allowed[pdb.key]
            for pdb in pdbs
        )
