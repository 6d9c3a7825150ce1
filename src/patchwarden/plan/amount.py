"""A count or a percentage of a population (ring sizes, ``max_unavailable``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Amount:
    """Either ``count`` or ``percent`` of a population.

    >>> Amount.parse("25%").of(10), Amount.parse("25%").of(10, up=True), Amount.parse(3).of(2)
    (2, 3, 2)
    """

    count: int | None = None
    """An absolute number."""
    percent: float | None = None
    """A share of the population, in (0, 100]."""

    @classmethod
    def parse(cls, value: int | str) -> Amount:
        """``3`` -> count 3, ``"25%"`` -> 25 percent; ``ValueError`` naming the input otherwise."""
        if isinstance(value, bool):
            raise ValueError(f"invalid amount {value!r}: use a whole number or a percentage")
        if isinstance(value, int):
            if value < 0:
                raise ValueError(f"invalid amount {value!r}: must not be negative")
            return cls(count=value)
        match = _PERCENT.match(value)
        if match is None:
            raise ValueError(f"invalid amount {value!r}: use a whole number or 'N%'")
        percent = float(match.group(1))
        if not 0 < percent <= 100:
            raise ValueError(f"invalid amount {value!r}: a percentage must be in (0, 100]")
        return cls(percent=percent)

    def of(self, total: int, *, up: bool = False, at_least: int = 0) -> int:
        """The amount for a population of ``total``, never above it (percentages round down,
        or up with ``up``), and never below ``min(at_least, total)``."""
        if self.count is not None:
            n = self.count
        else:
            share = total * (self.percent or 0.0) / 100
            n = math.ceil(share - 1e-9) if up else math.floor(share + 1e-9)
        return max(min(n, total), min(at_least, total))

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)
