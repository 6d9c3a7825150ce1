"""Real Debian hosts over real SSH: openssl patched end to end, and a broken upgrade rolled back.

The hosts are debootstrap'd bookworm roots (tests/debian_hosts.py) with the real openssl and
libssl3 ``3.0.17-1~deb12u2`` (bookworm-updates) installed, each reached through its own sshd.
Everything goes through the CLI as an operator would run it: the fleet file's ``inventory:
root:`` (the dpkg collector reads each host's real status file) and ``connection:`` blocks,
``feeds import --format debian-changelog`` of the fixed openssl ``.deb`` from
bookworm-security, ``scan``, ``plan``, ``approve`` (four eyes), ``rollout start`` over SSH,
and a rescan. One host keeps an ``openssl`` process running through the upgrade: its findings
stay open as "pending restart" until that process is gone and a restart check over SSH comes
back clean (``rollout restarts --check``).

The expected findings are derived from the changelog text without patchwarden's reader or
version code: every CVE id in an entry newer than the installed version (``dpkg
--compare-versions``, the reference) that no entry at or below it names, with the oldest
entry naming it as the fixed version.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from tests.debian_hosts import (
    OPENSSL_BINARIES,
    OPENSSL_FIXED,
    OPENSSL_OLD,
    DebianHost,
)
from typer.testing import CliRunner

from patchwarden import audit
from patchwarden.cli.main import app
from patchwarden.store import Store

runner = CliRunner()
HostFactory = Callable[[str], DebianHost]

POLICY = """\
version: 1
windows:
  nightly:
    rrule: "FREQ=DAILY;BYHOUR=2;BYMINUTE=0"
    duration: 4h
    timezone: UTC
rings: {canary: 1, pilot: 0, soak: 0m}
gates:
  - name: everything by a human
    decision: require_approval
rollout: {max_failure_rate: 0.2, soak: 0m}
"""


def _cli(env: dict[str, str], *args: str, ok: tuple[int, ...] = (0,)) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code in ok, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.stdout


def _env(tmp_path: Path) -> dict[str, str]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return {
        "PATCHWARDEN_DB": str(tmp_path / "pw.db"),
        "PATCHWARDEN_POLICY": str(policy),
        "PATCHWARDEN_ACTOR": "bob",
    }


def _fleet(path: Path, hosts: list[DebianHost], health: list[dict[str, object]]) -> Path:
    assets = [
        {
            "name": h.name,
            "criticality": 4,
            "inventory": {"root": str(h.root)},
            "connection": h.connection(health),
        }
        for h in hosts
    ]
    path.write_text(yaml.safe_dump({"assets": assets}))
    return path


def _approve_all(env: dict[str, str]) -> list[str]:
    """Plan as bob, approve every change as alice; returns the change ids."""
    plan = json.loads(_cli(env, "plan", "--json"))
    changes = [c["id"] for c in plan["changes"]]
    assert changes
    assert {c["status"] for c in plan["changes"]} == {"pending_approval"}
    for change in changes:
        _cli({**env, "PATCHWARDEN_ACTOR": "alice"}, "approve", change, "--reason", "CAB-1")
    return changes


def _dpkg_newer(a: str, b: str) -> bool:
    """``a`` > ``b`` by dpkg itself (the reference implementation)."""
    return subprocess.run(["dpkg", "--compare-versions", a, "gt", b], check=False).returncode == 0


def _changelog_fixes(deb: Path, installed: str) -> dict[str, str]:
    """CVE id -> first fixing version, for the CVEs fixed after ``installed`` (see module doc)."""
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True)
    member = "./usr/share/doc/openssl/changelog.Debian.gz"
    text = gzip.decompress(
        subprocess.run(
            ["tar", "-xO", member], input=tar.stdout, check=True, capture_output=True
        ).stdout
    ).decode()
    entries: list[tuple[str, set[str]]] = []
    for line in text.splitlines():
        head = re.match(r"^openssl \((\S+)\) ", line)
        if head:
            entries.append((head[1], set()))
        elif entries and not line.startswith(" -- "):
            entries[-1][1].update(re.findall(r"CVE-\d{4}-\d{4,}", line))
    older = {c for v, cves in entries if not _dpkg_newer(v, installed) for c in cves}
    fixes: dict[str, str] = {}
    for version, cves in entries:  # newest first: the last seen is the oldest mention
        if _dpkg_newer(version, installed):
            fixes.update(dict.fromkeys(cves - older, version))
    return fixes


@pytest.mark.slow
def test_openssl_is_patched_on_two_debian_hosts_over_ssh(
    debian_host: HostFactory, openssl_debs: dict[tuple[str, str], Path], tmp_path: Path
) -> None:
    hosts = [debian_host("deb-01"), debian_host("deb-02")]
    for h in hosts:
        assert h.dpkg_versions(*OPENSSL_BINARIES) == dict.fromkeys(OPENSSL_BINARIES, OPENSSL_OLD)
    fixed_deb = openssl_debs[("openssl", OPENSSL_FIXED)]
    expected = _changelog_fixes(fixed_deb, OPENSSL_OLD)
    assert len(expected) >= 20  # 3.0.17-1~deb12u3 .. 3.0.22-1~deb12u2 name 37 CVEs
    assert OPENSSL_FIXED in expected.values()  # so the plan's target is the fixed version

    env = _env(tmp_path)
    fleet = _fleet(tmp_path / "fleet.yaml", hosts, [{"command": ["openssl", "version"]}])
    _cli(env, "feeds", "import", "--format", "debian-changelog", str(fixed_deb))
    _cli(env, "scan", "--fleet", str(fleet))
    findings = json.loads(_cli(env, "findings", "--json"))
    got = {(f["asset"], f["vulnerability"], f["fixed_version"]) for f in findings}
    assert got == {(h.name, cve, v) for h in hosts for cve, v in expected.items()}
    assert {(f["package"], f["ecosystem"], f["installed_version"]) for f in findings} == {
        ("openssl", "Debian:12", OPENSSL_OLD)
    }

    # deb-02 runs a long-lived openssl (the binary maps libssl.so.3 and libcrypto.so.3; `enc`
    # waits on a FIFO opened read-write), so the upgrade leaves old code running there.
    idle = hosts[1].ssh(
        "mkfifo /run/pw-idle; openssl enc -base64 <>/run/pw-idle >/dev/null 2>&1 & echo $!"
    )
    openssl_pid = int(idle.stdout)

    changes = _approve_all(env)
    assert len(changes) == 2
    _cli(env, "rollout", "start", "--fleet", str(fleet), "-q")
    status = json.loads(_cli(env, "rollout", "status", "--json"))
    assert status["state"] == "completed", status
    assert status["backend"] == "fleet"  # each host by its connection: block (ssh)
    for change in status["changes"]:
        assert change["result"] == "applied", change
        assert change["installed"] == dict.fromkeys(OPENSSL_BINARIES, OPENSSL_FIXED)
        steps = [s["step"] for s in change["steps"]]
        assert steps[:3] == ["snapshot:0", "apply:0", "verify:0"]
        assert {"health", "restart_check", "rescan"} <= set(steps)
    pending = status["pending_restarts"]
    assert {(p["asset"], p["vulnerability"]) for p in pending} == {
        ("deb-02", cve) for cve in expected
    }
    assert all(p["units"] == [] and not p["reboot"] for p in pending)  # no systemd in a chroot

    # dpkg on the hosts (over the OpenSSH client, not patchwarden's executor) has the fix,
    # and apt used the hosts' local repository only (no other source is configured there).
    for h in hosts:
        assert h.dpkg_versions(*OPENSSL_BINARIES) == dict.fromkeys(OPENSSL_BINARIES, OPENSSL_FIXED)
        assert h.ssh("openssl version").stdout.startswith("OpenSSL 3.0.22")
        sources = h.ssh("apt-get indextargets --format '$(SITE)' | sort -u").stdout.split()
        assert sources == ["file:/srv/pw-repo"]

    # The rollout's own rescan resolved deb-01's findings; deb-02's stay open as pending
    # restart. A fresh scan of the hosts' roots agrees.
    for _ in range(2):
        still = json.loads(_cli(env, "findings", "--json"))
        assert {(f["asset"], f["vulnerability"]) for f in still} == {
            ("deb-02", cve) for cve in expected
        }
        assert all(f["pending_restart"] for f in still)
        _cli(env, "scan", "--fleet", str(fleet))

    # `rollout restarts --check` runs the restart check over SSH: while the old openssl runs,
    # the asset stays pending (exit 1, the process named); once it is gone, the check comes
    # back clean and clears them (exit 0).
    checked = json.loads(_cli(env, "rollout", "restarts", "--check", "--json", ok=(1,)))
    assert [(c["asset"], c["state"]) for c in checked["checks"]] == [("deb-02", "pending")]
    assert any(p.endswith(" openssl") for p in checked["checks"][0]["processes"])
    assert {p["vulnerability"] for p in checked["pending"]} == set(expected)
    hosts[1].ssh(f"kill {openssl_pid}")
    env_alice = env | {"PATCHWARDEN_ACTOR": "alice"}
    text = _cli(env_alice, "rollout", "restarts", "--check")
    assert f"deb-02: clean, {len(expected)} finding(s) resolved" in text
    assert "no pending restarts" in text
    assert json.loads(_cli(env, "findings", "--json")) == []
    every = json.loads(_cli(env, "findings", "--json", "--all"))
    assert len(every) == len(findings)
    assert all(f["resolved_at"] for f in every)
    store = Store.open(env["PATCHWARDEN_DB"])
    try:
        assert audit.verify(store).ok
        actions = [e.action for e in audit.entries(store)]
        assert actions.count(audit.Action.VERIFY) == 3  # two rollout verifies, one clean check
    finally:
        store.close()


def _build_deb(folder: Path, version: str, script: str, changelog: str) -> Path:
    """A real binary package ``pwhealth`` (``dpkg-deb --build``) with /usr/bin/pwhealth."""
    root = folder / f"pwhealth-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: pwhealth\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: patchwarden tests <tests@example.invalid>\n"
        "Description: health-check fixture of the patchwarden tests\n"
    )
    exe = root / "usr" / "bin" / "pwhealth"
    exe.parent.mkdir(parents=True)
    exe.write_text(script)
    exe.chmod(0o755)
    doc = root / "usr" / "share" / "doc" / "pwhealth"
    doc.mkdir(parents=True)
    (doc / "changelog.Debian.gz").write_bytes(gzip.compress(changelog.encode(), mtime=0))
    deb = folder / f"pwhealth_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def _entry(version: str, body: str, date: str) -> str:
    return (
        f"pwhealth ({version}) bookworm-security; urgency=high\n\n  * {body}\n\n"
        f" -- patchwarden tests <tests@example.invalid>  {date}\n\n"
    )


@pytest.mark.slow
def test_broken_upgrade_halts_the_wave_and_rolls_the_host_back(
    debian_host: HostFactory, tmp_path: Path
) -> None:
    ok = _build_deb(tmp_path, "1.0", "#!/bin/sh\necho ok\n", _entry(
        "1.0", "Initial release.", "Mon, 02 Nov 2026 10:00:00 +0000"))  # fmt: skip
    # 2.0 "fixes" a made-up CVE id (this package exists only in this test) and breaks the
    # command the fleet file's health check runs.
    changelog = _entry(
        "2.0", "CVE-2099-0001 (fixture vulnerability)", "Mon, 09 Nov 2026 10:00:00 +0000"
    ) + _entry("1.0", "Initial release.", "Mon, 02 Nov 2026 10:00:00 +0000")
    broken = _build_deb(tmp_path, "2.0", "#!/bin/sh\necho 'broken in 2.0' >&2\nexit 3\n", changelog)
    host = debian_host("deb-03")
    host.add_debs([ok, broken])
    host.ssh("apt-get install -y -q pwhealth=1.0")
    assert host.dpkg_versions("pwhealth") == {"pwhealth": "1.0"}

    env = _env(tmp_path)
    fleet = _fleet(tmp_path / "fleet.yaml", [host], [{"command": ["pwhealth"]}])
    _cli(env, "feeds", "import", "--format", "debian-changelog", str(broken))
    _cli(env, "scan", "--fleet", str(fleet))
    findings = json.loads(_cli(env, "findings", "--json"))
    mine = [f for f in findings if f["package"] == "pwhealth"]
    assert [(f["vulnerability"], f["fixed_version"]) for f in mine] == [("CVE-2099-0001", "2.0")]

    _approve_all(env)
    _cli(env, "rollout", "start", "--fleet", str(fleet), "-q", ok=(3,))
    status = json.loads(_cli(env, "rollout", "status", "--json"))
    assert status["state"] == "halted", status
    assert "max_failure_rate" in status["halt_reason"]
    assert "health_check_failed" in status["halt_reason"]
    (change,) = status["changes"]
    assert change["result"] == "rolled_back", change
    assert change["reason"] == "health_check_failed"
    assert "broken in 2.0" in change["message"]
    assert change["restored"] == {"pwhealth": "1.0"}
    assert "rollback" in [s["step"] for s in change["steps"]]
    assert host.dpkg_versions("pwhealth") == {"pwhealth": "1.0"}
    # the host root, read directly: dpkg's own database says 1.0 is installed
    listing = subprocess.run(
        ["dpkg-query", f"--admindir={host.root}/var/lib/dpkg", "-W", "pwhealth"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert listing.split() == ["pwhealth", "1.0"]
    still = json.loads(_cli(env, "findings", "--json"))
    assert [f["vulnerability"] for f in still if f["package"] == "pwhealth"] == ["CVE-2099-0001"]


@pytest.mark.slow
def test_a_newer_kernel_schedules_the_reboot_the_policy_names(
    debian_host: HostFactory, openssl_debs: dict[tuple[str, str], Path], tmp_path: Path
) -> None:
    # The host has a kernel image newer than any running one (its real file name is what
    # needrestart and patchwarden's restart check compare); the policy says to schedule the
    # reboot with a command that leaves a mark on the host instead of shutting it down.
    host = debian_host("deb-04")
    host.ssh("mkdir -p /boot && : > /boot/vmlinuz-99.0.0-1-amd64")
    env = _env(tmp_path)
    Path(env["PATCHWARDEN_POLICY"]).write_text(
        POLICY.replace(
            "rollout: {max_failure_rate: 0.2, soak: 0m}",
            "rollout:\n  max_failure_rate: 0.2\n  soak: 0m\n  reboot: schedule\n"
            "  reboot_command: [sh, -c, 'echo \"$0\" > /root/pw-reboot', scheduled]",
        )
    )
    fleet = _fleet(tmp_path / "fleet.yaml", [host], [{"command": ["openssl", "version"]}])
    fixed_deb = openssl_debs[("openssl", OPENSSL_FIXED)]
    _cli(env, "feeds", "import", "--format", "debian-changelog", str(fixed_deb))
    _cli(env, "scan", "--fleet", str(fleet))
    expected = {f["vulnerability"] for f in json.loads(_cli(env, "findings", "--json"))}
    assert expected
    _approve_all(env)
    _cli(env, "rollout", "start", "--fleet", str(fleet), "-q")

    status = json.loads(_cli(env, "rollout", "status", "--json"))
    (change,) = status["changes"]
    assert change["result"] == "applied", change
    steps = {s["step"]: s for s in change["steps"]}
    assert steps["reboot"]["state"] == "done", steps["reboot"]
    assert host.ssh("cat /root/pw-reboot").stdout == "scheduled\n"
    assert host.dpkg_versions(*OPENSSL_BINARIES) == dict.fromkeys(OPENSSL_BINARIES, OPENSSL_FIXED)
    # Scheduled is not rebooted: the findings stay pending restart (reboot) until a restart
    # check sees the new kernel running, which this chroot never does.
    pending = json.loads(_cli(env, "rollout", "restarts", "--check", "--json", ok=(1,)))
    assert [(c["asset"], c["state"], c["reboot"]) for c in pending["checks"]] == [
        ("deb-04", "pending", True)
    ]
    assert {p["vulnerability"] for p in pending["pending"]} == expected
    assert all(p["reboot"] for p in pending["pending"])
