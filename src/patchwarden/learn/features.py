"""Features of one remediation action, as the patch-failure model sees it.

An action's failure risk is described by what is upgraded and where:

* ``ecosystem`` -- the ecosystem family (``Debian``, ``PyPI``, ``Alpine``; the release after
  the colon is dropped, so ``Debian:11`` and ``Debian:12`` outcomes pool);
* ``package`` -- the package name advisories use (Debian: the source package);
* ``jump`` -- the kind of version jump (:func:`patchwarden.plan.changes.upgrade_level`:
  major / minor / patch / distro revision);
* ``reboot`` -- whether the upgrade needs a reboot (:func:`patchwarden.plan.changes.disruption`);
* ``os`` and ``role`` -- the asset's OS (its stored distro, else the action's ecosystem) and
  role (its ``service``, else ``-``), and its ``environment``.

The history part of the issue's feature list ("outcomes of the same package elsewhere in the
fleet and in earlier rings") is not a column here: it is what the hierarchical model
(:mod:`patchwarden.learn.model`) counts at its package and (package, jump) levels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from patchwarden.model import AssetId
from patchwarden.plan.changes import Disruption, UpgradeLevel, disruption, upgrade_level
from patchwarden.prioritize import Action


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionFeatures:
    """What the model knows about one action."""

    ecosystem: str
    """Ecosystem family (``Debian``, ``PyPI``, ...)."""
    package: str
    """Package name."""
    jump: UpgradeLevel
    """Kind of version jump."""
    reboot: bool
    """The upgrade needs a reboot."""
    os: str
    """The asset's OS (stored distro, e.g. ``Debian:12``; else the action's ecosystem)."""
    role: str
    """The asset's service (``-`` when it has none)."""
    environment: str
    """The asset's environment (``prod``, ``staging``, ``dev``)."""

    @property
    def package_key(self) -> str:
        """``ecosystem/package`` (a package name is only unique within its ecosystem)."""
        return f"{self.ecosystem}/{self.package}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "ecosystem": self.ecosystem,
            "package": self.package,
            "jump": self.jump.value,
            "reboot": self.reboot,
            "os": self.os,
            "role": self.role,
            "environment": self.environment,
        }


def ecosystem_family(ecosystem: str) -> str:
    """The ecosystem without its release.

    >>> ecosystem_family("Debian:12"), ecosystem_family("PyPI")
    ('Debian', 'PyPI')
    """
    return ecosystem.split(":", 1)[0]


def features(
    action: Mapping[str, Any],
    *,
    distro: str | None = None,
    service: str | None = None,
    environment: str = "prod",
) -> ActionFeatures:
    """Features of an action given as its stored JSON (``changes.actions``) and its asset.

    >>> f = features({"id": "h/libc", "ecosystem": "Debian:12", "package": "glibc",
    ...               "binaries": ["libc6"], "installed_version": "2.36-9+deb12u4",
    ...               "target_version": "2.36-9+deb12u7"}, service="web")
    >>> f.package_key, f.jump.value, f.reboot, f.os, f.role
    ('Debian/glibc', 'distro_revision', True, 'Debian:12', 'web')
    """
    try:
        ecosystem = str(action["ecosystem"])
        package = str(action["package"])
        installed = str(action["installed_version"])
        target = str(action["target_version"])
    except KeyError as exc:
        raise ValueError(f"action {action.get('id', '?')!r} has no {exc.args[0]!r} field") from exc
    as_action = Action(
        id=str(action.get("id", "")),
        asset=AssetId(str(action.get("asset", ""))),
        ecosystem=ecosystem,
        package=package,
        binaries=tuple(str(b) for b in action.get("binaries") or ()),
        installed_version=installed,
        target_version=target,
        closes=(),
        remaining=(),
        risk_removed=0.0,
    )
    return ActionFeatures(
        ecosystem=ecosystem_family(ecosystem),
        package=package,
        jump=upgrade_level(ecosystem, installed, target),
        reboot=disruption(as_action) is Disruption.REBOOT,
        os=distro or ecosystem,
        role=service or "-",
        environment=environment,
    )


def action_json(action: Action) -> dict[str, Any]:
    """The fields of an :class:`~patchwarden.prioritize.Action` that :func:`features` reads."""
    return {
        "id": action.id,
        "asset": action.asset,
        "ecosystem": action.ecosystem,
        "package": action.package,
        "binaries": list(action.binaries),
        "installed_version": action.installed_version,
        "target_version": action.target_version,
    }
