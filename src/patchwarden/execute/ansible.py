"""The ``ansible`` backend: ansible-runner runs an inventory and playbook patchwarden writes.

* :meth:`AnsibleExecutor.run` runs one step as a one-task play (``ansible.builtin.command``
  with the step's exact argv, ``become`` when it needs root), so the rollout engine's
  step-by-step, resumable sequence works unchanged over Ansible.
* :meth:`AnsibleExecutor.apply_all` writes one playbook for many hosts (:func:`playbook`):
  per host a ``block`` that installs the targets with the package manager's module
  (``ansible.builtin.apt`` / ``ansible.builtin.dnf`` / ``ansible.builtin.pip``), verifies
  the installed versions (the same listing command as the other backends) and runs the health
  checks as tasks; its ``rescue`` reinstalls the previous versions. The per-host results are
  read back from the runner's events into the same outcomes
  (:class:`~patchwarden.execute.interface.Applied`, ``RolledBack``, ``Failed``).
* Hosts: ``ansible_connection=local`` for ``localhost``/``127.0.0.1`` on port 0 or with
  ``address == "local"``; otherwise SSH with the host's user, port, key, and its known_hosts
  (``StrictHostKeyChecking=yes``: a wrong or unknown host key is refused, as with ``ssh``).

Every run is an ansible-runner artifact directory under ``private_data_dir`` (events, stdout,
status, rc), kept for the record. AWX / Automation Platform: the same inventory and playbook
(:func:`inventory`, :func:`playbook`) can be committed to a project and launched as a job
template; see the README.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from patchwarden.execute.health import CommandCheck, SystemdCheck, check_step
from patchwarden.execute.interface import (
    Applied,
    Executor,
    Failed,
    Host,
    Outcome,
    Reason,
    RolledBack,
    Skipped,
    StepResult,
    _verify,
)
from patchwarden.execute.steps import Change, PackageManager, Pin, Step, StepKind, parse_listing
from patchwarden.execute.steps import snapshot_step as _listing_step


def _is_local(host: Host) -> bool:
    return host.address in {"local", "localhost"} or (
        host.address == "127.0.0.1" and host.port == 0
    )


def inventory(hosts: Sequence[Host]) -> dict[str, Any]:
    """An Ansible YAML inventory for ``hosts`` (one group ``patchwarden``).

    >>> inventory([Host(name="h", address="localhost")])["all"]["hosts"]["h"]["ansible_connection"]
    'local'
    """
    entries: dict[str, Any] = {}
    for h in hosts:
        if _is_local(h):
            entry: dict[str, Any] = {"ansible_connection": "local"}
        else:
            entry = {
                "ansible_host": h.address,
                "ansible_port": h.port,
                "ansible_user": h.user,
                "ansible_ssh_common_args": " ".join(
                    [
                        "-o StrictHostKeyChecking=yes",
                        f"-o UserKnownHostsFile={h.known_hosts}" if h.known_hosts else "",
                        f"-o ConnectTimeout={int(h.connect_timeout)}",
                    ]
                ).strip(),
            }
            if h.client_keys:
                entry["ansible_ssh_private_key_file"] = str(h.client_keys[0])
        # On this machine the modules run with patchwarden's own interpreter: discovery can
        # pick a shim that does not work (a pyenv shim of another version, seen here).
        entry["ansible_python_interpreter"] = sys.executable if _is_local(h) else "auto_silent"
        entry["ansible_become"] = h.needs_sudo
        entries[h.name] = entry
    return {"all": {"hosts": entries}}


def _install_task(change: Change, pins: Sequence[Pin], host: Host, name: str) -> dict[str, Any]:
    specs = [f"{p.name}={p.version}" for p in pins]
    match change.manager:
        case PackageManager.APT:
            return {
                "name": name,
                "ansible.builtin.apt": {
                    "name": specs,
                    "allow_downgrade": True,
                    "dpkg_options": "force-confold",
                },
                "become": host.needs_sudo,
            }
        case PackageManager.DNF:
            return {
                "name": name,
                "ansible.builtin.dnf": {
                    "name": [f"{p.name}-{p.version}" for p in pins],
                    "allow_downgrade": True,
                },
                "become": host.needs_sudo,
            }
        case PackageManager.PIP:
            return {
                "name": name,
                "ansible.builtin.pip": {
                    "name": [f"{p.name}=={p.version}" for p in pins],
                    "executable": str(Path(host.python).parent / "pip")
                    if "/" in host.python
                    else "pip3",
                },
            }
        case PackageManager.APK:
            return {
                "name": name,
                "ansible.builtin.command": {"argv": ["apk", "add", *specs]},
                "become": host.needs_sudo,
            }


def _health_tasks(host: Host) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for i, check in enumerate(host.health):
        match check:
            case CommandCheck() | SystemdCheck():
                step = check_step(check)
                task: dict[str, Any] = {
                    "name": f"pw:health:{i}",
                    "ansible.builtin.command": {"argv": list(step.argv)},
                    "become": step.become and host.needs_sudo,
                    "changed_when": False,
                }
            case _:
                from patchwarden.execute.health import HttpCheck

                if isinstance(check, HttpCheck):
                    task = {
                        "name": f"pw:health:{i}",
                        "ansible.builtin.uri": {"url": check.url, "status_code": check.status},
                        "delegate_to": "localhost",
                    }
                else:
                    task = {
                        "name": f"pw:health:{i}",
                        "ansible.builtin.wait_for": {
                            "host": check.address,
                            "port": check.port,
                            "timeout": max(1, int(check.timeout)),
                        },
                        "delegate_to": "localhost",
                    }
        if check.timeout:
            task["retries"] = max(1, int(check.timeout / 0.5))
            task["delay"] = 0.5
            task["until"] = "result is succeeded"
            task["register"] = "result"
        tasks.append(task)
    return tasks


def playbook(work: Sequence[tuple[Host, Sequence[Change]]]) -> list[dict[str, Any]]:
    """One play per host: ``block`` (install, verify listing, health) / ``rescue`` (previous).

    >>> ch = Change(manager=PackageManager.PIP, ecosystem="PyPI",
    ...             targets=(Pin(name="urllib3", version="1.24.2"),),
    ...             previous=(Pin(name="urllib3", version="1.24.1"),))
    >>> play = playbook([(Host(name="h", address="localhost", python="/v/bin/python"), [ch])])
    >>> play[0]["tasks"][0]["block"][0]["ansible.builtin.pip"]["name"]
    ['urllib3==1.24.2']
    """
    plays: list[dict[str, Any]] = []
    for host, changes in work:
        block: list[dict[str, Any]] = []
        rescue: list[dict[str, Any]] = []
        for i, change in enumerate(changes):
            block.append(_install_task(change, change.targets, host, f"pw:apply:{i}"))
            listing = _listing_step(change, python=host.python, kind=StepKind.VERIFY)
            block.append(
                {
                    "name": f"pw:verify:{i}",
                    "ansible.builtin.command": {"argv": list(listing.argv)},
                    "changed_when": False,
                }
            )
            if change.previous:
                rescue.append(_install_task(change, change.previous, host, f"pw:rollback:{i}"))
        block.extend(_health_tasks(host))
        rescue.append({"name": "pw:failed", "ansible.builtin.fail": {"msg": "rolled back"}})
        plays.append(
            {
                "name": f"patchwarden {host.name}",
                "hosts": host.name,
                "gather_facts": False,
                "tasks": [{"block": block, "rescue": rescue}],
            }
        )
    return plays


def _env() -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    return {
        "PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_NOCOLOR": "1",
    }


def _run_playbook(
    base: Path, hosts: Sequence[Host], plays: list[dict[str, Any]]
) -> tuple[str, list[dict[str, Any]], Path]:
    import ansible_runner  # type: ignore[import-untyped]

    data = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    (data / "project").mkdir()
    (data / "inventory").mkdir()
    (data / "project" / "patchwarden.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    (data / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory(hosts)))
    runner = ansible_runner.run(
        private_data_dir=str(data),
        playbook="patchwarden.yml",
        quiet=True,
        envvars=_env(),
        forks=max(1, len(hosts)),
    )
    return str(runner.status), list(runner.events), data


class AnsibleExecutor(Executor):
    """Runs steps and playbooks with ansible-runner (see the module docstring)."""

    name = "ansible"

    def __init__(self, *, artifacts: Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.artifacts = artifacts or Path(tempfile.gettempdir()) / "patchwarden-ansible"
        """Where ansible-runner's private data dirs (and artifacts) are written."""
        self.artifacts.mkdir(parents=True, exist_ok=True)

    async def run(self, host: Host, step: Step) -> StepResult:
        """Run ``step`` as a one-task play on ``host``."""
        task = {
            "name": "pw:step",
            "ansible.builtin.command": {"argv": list(step.argv)},
            "become": host.sudo_for(step),
            "ignore_errors": True,
        }
        plays = [{"name": "step", "hosts": host.name, "gather_facts": False, "tasks": [task]}]
        started = time.monotonic()
        status, events, data = await asyncio.to_thread(_run_playbook, self.artifacts, [host], plays)
        seconds = time.monotonic() - started
        for ev in events:
            kind = ev.get("event", "")
            res = ev.get("event_data", {}).get("res", {})
            if kind == "runner_on_unreachable":
                return StepResult(
                    step=step, rc=None, reason=_unreachable_reason(res),
                    message=f"{host.name}: {str(res.get('msg', '')).strip()[:400]}",
                    seconds=seconds,
                )  # fmt: skip
            if kind in {"runner_on_ok", "runner_on_failed"}:
                rc = res.get("rc")
                stderr = str(res.get("stderr", ""))
                reason = None
                message = ""
                if rc is None:
                    rc = 1 if kind == "runner_on_failed" else 0
                    message = str(res.get("msg", ""))
                if (
                    rc
                    and "sudo" in (stderr + message).lower()
                    and "password" in (stderr + message).lower()
                ):
                    reason = Reason.SUDO_REFUSED
                    message = f"{host.name}: sudo refused: {(message or stderr)[:300]}"
                return StepResult(
                    step=step, rc=int(rc), stdout=str(res.get("stdout", "")), stderr=stderr,
                    seconds=seconds, reason=reason, message=message,
                )  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)
        return StepResult(
            step=step, rc=None, reason=Reason.COMMAND_FAILED,
            message=f"{host.name}: ansible-runner {status} with no result for the step",
        )  # fmt: skip

    async def apply_all(self, work: Sequence[tuple[Host, Sequence[Change]]]) -> list[Outcome]:
        """Run one playbook for every host and read the per-host outcomes back."""
        todo = [(h, c) for h, c in work if c]
        outcomes: dict[str, Outcome] = {
            h.name: Skipped(host=h.name, reason=Reason.NOTHING_TO_DO, message="no changes")
            for h, c in work
            if not c
        }
        if todo:
            _, events, _ = await asyncio.to_thread(
                _run_playbook, self.artifacts, [h for h, _ in todo], playbook(todo)
            )
            for host, changes in todo:
                outcomes[host.name] = outcome_from_events(host, changes, events)
        return [outcomes[h.name] for h, _ in work]


def _unreachable_reason(res: Mapping[str, Any]) -> Reason:
    text = str(res.get("msg", "")).lower()
    if "host key verification failed" in text or "remote host identification has changed" in text:
        return Reason.HOST_KEY_MISMATCH
    if "permission denied" in text:
        return Reason.AUTH_FAILED
    return Reason.UNREACHABLE


def outcome_from_events(
    host: Host, changes: Sequence[Change], events: Sequence[Mapping[str, Any]]
) -> Outcome:
    """The outcome of ``host`` from a :func:`playbook` run's events."""
    results: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for ev in events:
        data = ev.get("event_data", {})
        if data.get("host") != host.name:
            continue
        kind = ev.get("event", "")
        if kind in {"runner_on_ok", "runner_on_failed", "runner_on_unreachable"}:
            results[str(data.get("task", ""))] = (kind, data.get("res", {}))
    unreachable = [r for k, r in results.values() if k == "runner_on_unreachable"]
    if unreachable:
        return Failed(
            host=host.name,
            reason=_unreachable_reason(unreachable[0]),
            message=f"{host.name}: {str(unreachable[0].get('msg', '')).strip()[:400]}",
        )
    failed = [(name, r) for name, (k, r) in results.items() if k == "runner_on_failed"]
    first = next(((n, r) for n, r in failed if n != "pw:failed" and "rollback" not in n), None)
    installed: dict[str, str] = {}
    for i, change in enumerate(changes):
        got = results.get(f"pw:verify:{i}")
        if got is not None and got[0] == "runner_on_ok":
            installed.update(parse_listing(change, str(got[1].get("stdout", ""))))
    if first is None:
        problems = "; ".join(p for c in changes if (p := _verify(c, installed)))
        if problems:
            return Failed(host=host.name, reason=Reason.VERIFY_FAILED, message=problems)
        return Applied(host=host.name, installed=installed)
    name, res = first
    reason = Reason.HEALTH_CHECK_FAILED if name.startswith("pw:health") else Reason.COMMAND_FAILED
    message = f"{name}: {str(res.get('msg') or res.get('stderr') or '').strip()[:400]}"
    rollback_failed = [n for n, _ in failed if n.startswith("pw:rollback")]
    if rollback_failed:
        return Failed(host=host.name, reason=Reason.ROLLBACK_FAILED, message=message)
    restored = {p.name: p.version for c in changes for p in c.previous}
    return RolledBack(host=host.name, reason=reason, message=message, restored=restored)
