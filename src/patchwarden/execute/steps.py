"""The step model: what patchwarden runs on a host, built from ``prioritize.Action``.

Pure: nothing here touches a host, so ``--dry-run`` prints exactly these commands.

One host's change runs as ``snapshot -> apply -> verify -> health -> (restart check)``; a failed
apply, verify or health check runs ``rollback`` (the snapshot's versions) and the outcome is
:class:`~patchwarden.execute.interface.RolledBack`.

Commands per package manager (the pins are ``name`` / ``version``):

==========  ==============================================================================
manager     apply / rollback
==========  ==============================================================================
apt         ``apt-get install --only-upgrade -y -o Dpkg::Options::=--force-confold n=v`` /
            ``apt-get install -y --allow-downgrades -o Dpkg::Options::=--force-confold n=v``
dnf         ``dnf -y upgrade n-v`` / ``dnf -y downgrade n-v``
apk         ``apk add --upgrade n=v`` / ``apk add n=v``
pip         ``PYTHON -m pip install --disable-pip-version-check --no-input n==v`` (both)
==========  ==============================================================================

Snapshots (and verification, which is a second snapshot) list the pinned packages:
``dpkg-query -W`` in the dpkg collector's 5-column listing format, ``rpm -q --qf``,
``apk list --installed`` and, for pip, a short Python script that reads the interpreter's
distribution metadata (``importlib.metadata``, the same ``METADATA`` files the python collector
reads).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from patchwarden.ecosystems import Base, Ecosystem
from patchwarden.errors import UnknownEcosystem
from patchwarden.prioritize import Action


class PackageManager(StrEnum):
    """The package managers patchwarden drives."""

    APT = "apt"
    DNF = "dnf"
    APK = "apk"
    PIP = "pip"


class StepKind(StrEnum):
    """The kinds of step, in the order they run."""

    SNAPSHOT = "snapshot"
    APPLY = "apply"
    VERIFY = "verify"
    HEALTH = "health"
    ROLLBACK = "rollback"
    RESTART_CHECK = "restart_check"
    RESTART = "restart"
    REBOOT = "reboot"


MANAGER_BY_BASE: dict[Base, PackageManager] = {
    Base.DEBIAN: PackageManager.APT,
    Base.UBUNTU: PackageManager.APT,
    Base.REDHAT: PackageManager.DNF,
    Base.ROCKY: PackageManager.DNF,
    Base.ALMA: PackageManager.DNF,
    Base.ALPINE: PackageManager.APK,
    Base.PYPI: PackageManager.PIP,
}
"""Which manager installs an ecosystem's packages (SUSE's zypper, npm, Go, Maven: not yet)."""

ROOT_MANAGERS = frozenset({PackageManager.APT, PackageManager.DNF, PackageManager.APK})
"""Managers whose commands need root (sudo when the login user is not root)."""


def manager_for(ecosystem: str) -> PackageManager:
    """The package manager for ``ecosystem``; :class:`UnknownEcosystem` when there is none.

    >>> manager_for("Debian:12")
    <PackageManager.APT: 'apt'>
    >>> manager_for("PyPI")
    <PackageManager.PIP: 'pip'>
    """
    base = Ecosystem.parse(ecosystem).base
    try:
        return MANAGER_BY_BASE[base]
    except KeyError:
        raise UnknownEcosystem(
            f"no package manager for ecosystem {ecosystem!r} "
            f"(supported: {', '.join(sorted(b.value for b in MANAGER_BY_BASE))})"
        ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Pin:
    """One package at one version."""

    name: str
    """The installed package's name (a Debian binary, an RPM name, a PyPI distribution)."""
    version: str
    """The version to install (or, in a snapshot, the version installed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """The packages of one manager on one host to move to their targets."""

    manager: PackageManager
    """Who installs them."""
    ecosystem: str
    """Ecosystem with release (picks the version scheme for verification)."""
    targets: tuple[Pin, ...]
    """The packages and their target versions."""
    previous: tuple[Pin, ...] = ()
    """The versions installed when the plan was made (the snapshot at run time is what a
    rollback restores; these are for ``--dry-run``)."""
    action_ids: tuple[str, ...] = ()
    """The :class:`Action` ids this change carries out."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One command on one host."""

    kind: StepKind
    """What the step is for."""
    argv: tuple[str, ...]
    """The exact command (without the sudo prefix, which the executor adds)."""
    become: bool
    """The command needs root."""
    change: Change | None = None
    """The change it belongs to (None for health and restart steps)."""
    pins: tuple[Pin, ...] = ()
    """What an apply or rollback step installs."""
    description: str = ""
    """One line for people."""

    @property
    def command_line(self) -> str:
        """The command, shell-quoted.

        >>> Step(kind=StepKind.APPLY, argv=("pip", "install", "a b"), become=False).command_line
        "pip install 'a b'"
        """
        return shlex.join(self.argv)


def changes_from_actions(actions: Iterable[Action]) -> list[Change]:
    """Group one host's actions into one change per (manager, ecosystem).

    A Debian action upgrades every binary of the source package to the target version
    (binaries built from one source share its version); other ecosystems upgrade the package.
    """
    grouped: dict[tuple[PackageManager, str], list[Action]] = {}
    for action in actions:
        manager = manager_for(action.ecosystem)
        grouped.setdefault((manager, action.ecosystem), []).append(action)
    changes: list[Change] = []
    for (manager, ecosystem), group in grouped.items():
        targets: dict[str, Pin] = {}
        previous: dict[str, Pin] = {}
        for action in group:
            for name in action.binaries or (action.package,):
                targets[name] = Pin(name=name, version=action.target_version)
                previous[name] = Pin(name=name, version=action.installed_version)
        changes.append(
            Change(
                manager=manager,
                ecosystem=ecosystem,
                targets=tuple(targets.values()),
                previous=tuple(previous.values()),
                action_ids=tuple(a.id for a in group),
            )
        )
    return changes


_PIP_LIST = (
    "import json,sys\n"
    "from importlib import metadata\n"
    "from packaging.utils import canonicalize_name as c\n"
    "want={c(n) for n in sys.argv[1:]}\n"
    "for d in metadata.distributions():\n"
    "    n=d.metadata['Name']\n"
    "    if n and c(n) in want: print(c(n)+'\\t'+d.version)\n"
)
"""Reads installed distributions the way the python collector does (``*.dist-info/METADATA``).
``packaging`` is vendored in every pip, so it is importable wherever pip is; the import falls
back to pip's copy below."""

_PIP_LIST_SCRIPT = _PIP_LIST.replace(
    "from packaging.utils import canonicalize_name as c\n",
    "try:\n    from packaging.utils import canonicalize_name as c\n"
    "except ImportError:\n    from pip._vendor.packaging.utils import canonicalize_name as c\n",
)

_DPKG_FORMAT = (
    "${Package}\\t${Version}\\t${source:Package}\\t${source:Version}\\t${db:Status-Abbrev}\\n"
)


def snapshot_step(
    change: Change, *, python: str = "python3", kind: StepKind = StepKind.SNAPSHOT
) -> Step:
    """List the change's packages at their installed versions (also used to verify).

    >>> ch = Change(manager=PackageManager.APT, ecosystem="Debian:12",
    ...             targets=(Pin(name="libssl3", version="3.0.17-1~deb12u3"),))
    >>> snapshot_step(ch).argv[:3], snapshot_step(ch).argv[-1]
    (('dpkg-query', '-W', '-f'), 'libssl3')
    """
    names = tuple(p.name for p in change.targets)
    match change.manager:
        case PackageManager.APT:
            argv: tuple[str, ...] = ("dpkg-query", "-W", "-f", _DPKG_FORMAT, *names)
        case PackageManager.DNF:
            argv = ("rpm", "-q", "--qf", "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n", *names)
        case PackageManager.APK:
            argv = ("apk", "list", "--installed", *names)
        case PackageManager.PIP:
            argv = (python, "-I", "-c", _PIP_LIST_SCRIPT, *names)
    return Step(
        kind=kind,
        argv=argv,
        become=False,
        change=change,
        description=f"{kind.value}: list {', '.join(names)}",
    )


def install_step(
    change: Change, pins: Sequence[Pin], *, kind: StepKind, python: str = "python3"
) -> Step:
    """Install ``pins`` (``kind`` APPLY: an upgrade; ROLLBACK: may downgrade).

    >>> ch = Change(manager=PackageManager.PIP, ecosystem="PyPI",
    ...             targets=(Pin(name="urllib3", version="1.24.2"),))
    >>> install_step(ch, ch.targets, kind=StepKind.APPLY, python="/v/bin/python").command_line
    '/v/bin/python -m pip install --disable-pip-version-check --no-input urllib3==1.24.2'
    """
    rollback = kind is StepKind.ROLLBACK
    match change.manager:
        case PackageManager.APT:
            opts = ("--allow-downgrades",) if rollback else ("--only-upgrade",)
            argv: tuple[str, ...] = (
                "apt-get",
                "install",
                *opts,
                "-y",
                "-o",
                "Dpkg::Options::=--force-confold",
                *(f"{p.name}={p.version}" for p in pins),
            )
        case PackageManager.DNF:
            verb = "downgrade" if rollback else "upgrade"
            argv = ("dnf", "-y", verb, *(f"{p.name}-{p.version}" for p in pins))
        case PackageManager.APK:
            extra = () if rollback else ("--upgrade",)
            argv = ("apk", "add", *extra, *(f"{p.name}={p.version}" for p in pins))
        case PackageManager.PIP:
            argv = (
                python,
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                *(f"{p.name}=={p.version}" for p in pins),
            )
    what = ", ".join(f"{p.name} {p.version}" for p in pins)
    return Step(
        kind=kind,
        argv=argv,
        become=change.manager in ROOT_MANAGERS,
        change=change,
        pins=tuple(pins),
        description=f"{kind.value}: {change.manager.value} {what}",
    )


def parse_listing(change: Change, stdout: str) -> dict[str, str]:
    """Installed versions by package name from a snapshot step's output.

    >>> ch = Change(manager=PackageManager.APT, ecosystem="Debian:12",
    ...             targets=(Pin(name="hello", version="2"),))
    >>> parse_listing(ch, "hello\\t1\\thello\\t1\\tii \\nold\\t1\\told\\t1\\trc \\n")
    {'hello': '1'}
    >>> ch = Change(manager=PackageManager.APK, ecosystem="Alpine:v3.19",
    ...             targets=(Pin(name="musl", version="1.2.4-r3"),))
    >>> parse_listing(ch, "musl-1.2.4-r2 x86_64 {musl} (MIT) [installed]\\n")
    {'musl': '1.2.4-r2'}
    """
    found: dict[str, str] = {}
    wanted = {p.name for p in change.targets}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        if change.manager is PackageManager.APK:
            nameversion = line.split(" ", 1)[0]
            for name in wanted:
                if nameversion.startswith(name + "-"):
                    found[name] = nameversion[len(name) + 1 :]
            continue
        cols = line.split("\t")
        if len(cols) < 2:
            continue
        apt = change.manager is PackageManager.APT
        if apt and len(cols) >= 5 and cols[4].strip()[:2] not in {"ii", "hi"}:
            continue
        version = cols[1].strip()
        if change.manager is PackageManager.DNF and version.startswith("0:"):
            version = version[2:]
        if version:
            found[cols[0].strip()] = version
    return found


def plan_host(changes: Sequence[Change], *, python: str = "python3") -> list[Step]:
    """The forward steps of one host, in order (snapshot, apply, verify per change).

    Health checks and the restart check run after every change is verified; rollback steps are
    built at run time from the snapshot (see :func:`rollback_steps`).
    """
    steps: list[Step] = []
    for change in changes:
        steps.append(snapshot_step(change, python=python))
        steps.append(install_step(change, change.targets, kind=StepKind.APPLY, python=python))
        steps.append(snapshot_step(change, python=python, kind=StepKind.VERIFY))
    return steps


def rollback_steps(
    changes: Sequence[Change],
    snapshots: Mapping[int, Mapping[str, str]],
    *,
    python: str = "python3",
) -> list[Step]:
    """Reinstall what each change's snapshot recorded (``snapshots`` by index into ``changes``).

    A package the snapshot did not list (not installed before) is left as is.
    """
    steps: list[Step] = []
    for index, change in enumerate(changes):
        before = snapshots.get(index, {})
        pins = [Pin(name=n, version=v) for n, v in before.items()]
        if pins:
            steps.append(install_step(change, pins, kind=StepKind.ROLLBACK, python=python))
    return steps
