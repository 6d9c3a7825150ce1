"""What a change does to an asset: its upgrade level and whether it restarts or reboots.

Upgrade level compares the installed and target versions with the ecosystem's scheme:

* Debian/Ubuntu (dpkg): an epoch change is ``major``; when the upstream part is equal after
  dropping a ``+debNuM`` / ``~debNuM`` / ``ubuntuN`` style suffix, the change is a
  ``distro_revision`` (only the packaging changed: ``2.36-9+deb12u4`` -> ``2.36-9+deb12u7``);
  otherwise the first differing numeric component of the upstream version decides
  (``major.minor.patch``).
* RPM (``version-release``) and Alpine (``version-rN``): the release / ``-rN`` alone is a
  ``distro_revision``.
* PyPI (PEP 440 release tuple), npm/Go/crates (SemVer, ``v`` prefix allowed), Maven and others:
  the first differing of the leading three numeric components; no numeric change (e.g. only a
  pre-release or build tag) is ``patch``.

SemVer's 0.x rule (0.1 -> 0.2 may break) is not applied: that is ``minor`` here.

Disruption: packages whose upgrade needs a **reboot** -- the kernel (``linux``,
``linux-image*``, ``linux-signed*``, ``linux-modules*``, ``kernel*``), CPU microcode, the C
library (``glibc``, ``libc6``, ``musl``), ``systemd`` and ``dbus`` (both run as PID 1 or a
system-wide broker that cannot be restarted safely). Everything else needs a **restart** of the
processes that load it (an OpenSSL/``libssl*`` upgrade is listed explicitly: every TLS-speaking
service must restart). A hook may give what the package's metadata says (e.g. Debian's
``needrestart`` hints, RPM ``needs-restarting`` data); it wins over the list.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from enum import StrEnum

from patchwarden.prioritize import Action


class UpgradeLevel(StrEnum):
    """How big a version step is, smallest to largest."""

    DISTRO_REVISION = "distro_revision"
    PATCH = "patch"
    MINOR = "minor"
    MAJOR = "major"

    @property
    def rank(self) -> int:
        """0 (distro revision) .. 3 (major).

        >>> UpgradeLevel.MAJOR.rank > UpgradeLevel.MINOR.rank
        True
        """
        return list(UpgradeLevel).index(self)


class Disruption(StrEnum):
    """What applying a change takes down, least to most."""

    NONE = "none"
    RESTART = "restart"
    REBOOT = "reboot"

    @property
    def rank(self) -> int:
        """0 (none) .. 2 (reboot)."""
        return list(Disruption).index(self)


REBOOT_PACKAGES: tuple[str, ...] = (
    "linux",
    "linux-image*",
    "linux-signed*",
    "linux-modules*",
    "linux-latest*",
    "kernel",
    "kernel-*",
    "intel-microcode",
    "amd64-microcode",
    "microcode_ctl",
    "linux-firmware",
    "glibc",
    "libc6",
    "libc6-*",
    "libc-bin",
    "musl",
    "systemd",
    "libsystemd*",
    "dbus",
    "libdbus*",
)
"""Package (source or binary) name patterns whose upgrade needs a reboot."""

RESTART_PACKAGES: tuple[str, ...] = ("openssl", "libssl*", "openssl-libs")
"""Patterns documented as restart-needing (also the default for any other package)."""

MetadataHook = Callable[[Action], Disruption | None]
"""Given an action, what the package's metadata says it needs (None: no opinion)."""


def disruption(action: Action, hook: MetadataHook | None = None) -> Disruption:
    """What upgrading ``action``'s package needs (module docstring); the hook wins when it answers.

    >>> from patchwarden.model import AssetId
    >>> a = Action(id="h/glibc", asset=AssetId("h"), ecosystem="Debian:12", package="glibc",
    ...            binaries=("libc6",), installed_version="2.36-9", target_version="2.36-9+deb12u4",
    ...            closes=(), remaining=(), risk_removed=0.0)
    >>> disruption(a)
    <Disruption.REBOOT: 'reboot'>
    """
    if hook is not None:
        said = hook(action)
        if said is not None:
            return said
    names = (action.package, *action.binaries)
    if any(fnmatch.fnmatchcase(n.lower(), p) for n in names for p in REBOOT_PACKAGES):
        return Disruption.REBOOT
    return Disruption.RESTART


_DEB_SUFFIX = re.compile(r"([+~](deb|ubuntu|bpo)\d+u?\d*.*|ubuntu\d.*)$")
_NUM = re.compile(r"\d+")


def _numbers(version: str) -> list[int]:
    return [int(n) for n in _NUM.findall(version)[:3]]


def _by_numbers(a: str, b: str) -> UpgradeLevel:
    na, nb = _numbers(a), _numbers(b)
    width = max(len(na), len(nb), 1)
    na += [0] * (width - len(na))
    nb += [0] * (width - len(nb))
    for index, (x, y) in enumerate(zip(na, nb, strict=True)):
        if x != y:
            return (
                (UpgradeLevel.MAJOR, UpgradeLevel.MINOR)[index] if index < 2 else UpgradeLevel.PATCH
            )
    return UpgradeLevel.PATCH


def _split_dpkg(version: str) -> tuple[str, str]:
    epoch, _, rest = version.partition(":") if ":" in version else ("0", "", version)
    upstream = rest.rsplit("-", 1)[0] if "-" in rest else rest
    return epoch or "0", _DEB_SUFFIX.sub("", upstream)


def upgrade_level(ecosystem: str, installed: str, target: str) -> UpgradeLevel:
    """The level of the step from ``installed`` to ``target`` (rules in the module docstring).

    >>> upgrade_level("Debian:12", "2.36-9+deb12u4", "2.36-9+deb12u7")
    <UpgradeLevel.DISTRO_REVISION: 'distro_revision'>
    >>> upgrade_level("Debian:12", "3.0.11-1~deb12u2", "3.0.13-1~deb12u1")
    <UpgradeLevel.PATCH: 'patch'>
    >>> upgrade_level("Alpine:v3.19", "3.1.4-r5", "3.1.4-r6")
    <UpgradeLevel.DISTRO_REVISION: 'distro_revision'>
    >>> upgrade_level("PyPI", "2.31.0", "2.32.0"), upgrade_level("npm", "v1.9.9", "2.0.0")
    (<UpgradeLevel.MINOR: 'minor'>, <UpgradeLevel.MAJOR: 'major'>)
    """
    family = ecosystem.split(":", 1)[0].lower()
    if family in {"debian", "ubuntu"}:
        (ea, ua), (eb, ub) = _split_dpkg(installed), _split_dpkg(target)
        if ea != eb:
            return UpgradeLevel.MAJOR
        if ua == ub:
            return UpgradeLevel.DISTRO_REVISION
        return _by_numbers(ua, ub)
    if family in {"alpine", "red hat", "rhel", "almalinux", "rocky linux", "suse", "opensuse"}:
        ua, ub = installed.rsplit("-", 1)[0], target.rsplit("-", 1)[0]
        if "-" in installed and "-" in target and ua == ub:
            return UpgradeLevel.DISTRO_REVISION
        return _by_numbers(ua, ub)
    return _by_numbers(installed.lstrip("vV"), target.lstrip("vV"))


def change_level(actions: tuple[Action, ...]) -> UpgradeLevel:
    """The largest upgrade level among ``actions`` (``distro_revision`` for none)."""
    levels = [upgrade_level(a.ecosystem, a.installed_version, a.target_version) for a in actions]
    return max(levels, key=lambda lv: lv.rank, default=UpgradeLevel.DISTRO_REVISION)


def change_disruption(actions: tuple[Action, ...], hook: MetadataHook | None = None) -> Disruption:
    """The largest disruption among ``actions`` (``none`` for no action)."""
    return max(
        (disruption(a, hook) for a in actions), key=lambda d: d.rank, default=Disruption.NONE
    )
