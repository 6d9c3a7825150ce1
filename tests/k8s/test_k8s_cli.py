"""``patchwarden k8s plan`` / ``drain-plan`` end to end: a scanned image with real advisories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.images import imagekit
from typer.testing import CliRunner

from patchwarden.cli.main import app

runner = CliRunner()
DATA = Path(__file__).resolve().parents[1] / "data" / "k8s"
NEW = "registry.example/app:1.0.1@sha256:" + "1f" * 32


def test_k8s_plan_after_image_scan(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'pw.db'}"
    archive = imagekit.write_docker_archive(imagekit.app_image(), tmp_path / "app.tar")
    shutil.copytree(DATA / "manifests", tmp_path / "m")
    for args in (
        ["feeds", "import", str(imagekit.DATA / "images" / "osv")],
        ["image", "scan", str(archive)],
    ):
        done = runner.invoke(app, ["--db", db, "-q", *args])
        assert done.exit_code == 0, done.output
    done = runner.invoke(
        app,
        ["--db", db, "-q", "k8s", "plan", str(tmp_path / "m"), "--image-map",
         f"registry.example/app:1.0={NEW}", "--image-map", "postgres:16.2=postgres:16.3",
         "--out", str(tmp_path / "out"), "--now", "2025-03-24T12:00:00Z", "--json"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert [r["workload"] for r in doc["rollouts"]] == [
        "kube-system/daemonset/log-agent",
        "shop/cronjob/report",
    ]
    # web names the window 'nightly', which the default policy does not define
    assert [(s["workload"], s["reason"]) for s in doc["skipped"]] == [
        ("shop/deployment/web", "unscheduled"),
        ("shop/statefulset/db", "no_findings"),
    ]
    assert "unknown_window" in doc["skipped"][0]["message"]
    log_agent = doc["rollouts"][0]
    assert log_agent["commands"] == [
        f"kubectl -n kube-system set image daemonset/log-agent agent={NEW}",
        "kubectl -n kube-system rollout status daemonset/log-agent --timeout=15m",
    ]
    assert log_agent["gate"] == "require_approval"
    assert [Path(p).name for p in doc["patched_files"]] == ["platform.yaml"]
    platform = (tmp_path / "out" / "platform.yaml").read_text()
    assert f"image: '{NEW}'" in platform  # the daemonset's single-quoted scalar
    assert f"image: {NEW}" in platform  # the cronjob's plain scalar
    assert not (tmp_path / "out" / "shop.yaml").exists()  # web unscheduled, db skipped


def test_k8s_errors_and_drain_exit(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'pw.db'}"
    done = runner.invoke(
        app,
        ["--db", db, "k8s", "plan", str(DATA / "malformed" / "bad-pdb.yaml"), "--image-map", "a=b"],
    )
    assert done.exit_code == 2
    assert "field 'spec.minAvailable'" in done.output
    nodes = {"kind": "NodeList", "items": [{"kind": "Node", "metadata": {"name": "n1"}}]}
    (tmp_path / "nodes.json").write_text(json.dumps(nodes))
    (tmp_path / "pods.json").write_text('{"kind": "PodList", "items": []}')
    done = runner.invoke(
        app,
        ["--db", db, "k8s", "drain-plan", "--nodes", str(tmp_path / "nodes.json"), "--pods",
         str(tmp_path / "pods.json"), "--pdbs", str(DATA / "manifests"), "--json"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["steps"][0]["nodes"] == ["n1"]
    done = runner.invoke(
        app,
        ["--db", db, "k8s", "drain-plan", "--nodes", str(tmp_path / "nodes.json"), "--pods",
         str(tmp_path / "pods.json"), "--pdbs", str(DATA / "manifests"), "--reboot", "n9"],
    )  # fmt: skip
    assert done.exit_code == 2
    assert "unknown node(s): n9" in done.output
