"""Deployment rings: canary, then pilot, then broad, with a soak time between them.

The canary ring is chosen to cover every *kind* of asset at least once -- a kind is the pair
(OS / ecosystem family, service) -- and is then topped up to its configured size. Within a kind,
and when topping up, the least exposed assets go first: dev before staging before prod, lower
criticality first, then by id (deterministic). The pilot ring takes the next assets in the
same order up to its size; everything else is broad.

>>> from patchwarden.model import Asset, AssetId
>>> assets = [Asset(id=AssetId(f"web-{i}"), service="web") for i in range(10)]
>>> rings = assign_rings(assets, {a.id: "Debian" for a in assets}, RingPolicy())
>>> [rings[a.id].value for a in assets][:4]
['canary', 'pilot', 'pilot', 'broad']
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from patchwarden.model import Asset, AssetId, Environment
from patchwarden.plan.amount import Amount


class Ring(StrEnum):
    """Deployment ring, first to last."""

    CANARY = "canary"
    PILOT = "pilot"
    BROAD = "broad"

    @property
    def rank(self) -> int:
        """0 (canary) .. 2 (broad)."""
        return list(Ring).index(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class RingPolicy:
    """Ring sizes and soak time (policy ``rings:``)."""

    canary: Amount = field(default_factory=lambda: Amount(percent=5.0))
    """Canary size (at least one asset of each kind, whatever the size)."""
    pilot: Amount = field(default_factory=lambda: Amount(percent=20.0))
    """Pilot size (of the whole fleet being planned)."""
    soak: dt.timedelta = dt.timedelta(hours=24)
    """Time between the end of a ring's last slot and the start of the next ring's first."""


_ENV_ORDER = {Environment.DEV: 0, Environment.STAGING: 1, Environment.PROD: 2}


def _order(asset: Asset) -> tuple[int, int, str]:
    return (_ENV_ORDER[asset.environment], asset.criticality, asset.id)


def assign_rings(
    assets: Sequence[Asset], kinds: Mapping[AssetId, str], policy: RingPolicy
) -> dict[AssetId, Ring]:
    """Ring of each asset (rules in the module docstring); ``kinds`` gives each asset's OS kind."""
    ordered = sorted(assets, key=_order)
    total = len(ordered)
    out: dict[AssetId, Ring] = {}
    covered: set[tuple[str, str]] = set()
    for a in ordered:
        kind = (kinds.get(a.id, ""), a.service or "")
        if kind not in covered:
            covered.add(kind)
            out[a.id] = Ring.CANARY
    want_canary = policy.canary.of(total, up=True)
    pilot_left = policy.pilot.of(total, up=True)
    canary_left = want_canary - len(out)
    for a in ordered:
        if a.id in out:
            continue
        if canary_left > 0:
            out[a.id] = Ring.CANARY
            canary_left -= 1
        elif pilot_left > 0:
            out[a.id] = Ring.PILOT
            pilot_left -= 1
        else:
            out[a.id] = Ring.BROAD
    return out
