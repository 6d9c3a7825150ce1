"""The intel interface: readers that turn one feed file into domain records.

A reader never raises for one bad record: it yields a :class:`~patchwarden.errors.Problem`
for it and goes on, so that the batch imports everything that is good and reports the rest.
A file that cannot be read at all (truncated gzip/zip, not JSON) raises
:class:`~patchwarden.errors.FeedFormatError`.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from patchwarden.errors import Problem
from patchwarden.model import Advisory, EpssScore, KevEntry


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedInfo:
    """Metadata of a whole feed file (KEV catalog version, EPSS model and score date)."""

    feed: str
    """``kev``, ``epss``, ``osv``, ``debian``, ``alpine``."""
    version: str | None = None
    """Catalog/model version (``2026.01.29``, ``v2025.03.14``)."""
    date: dt.datetime | None = None
    """Release or score date (UTC)."""
    path: str = ""
    """The file it was read from."""


FeedRecord = Advisory | KevEntry | EpssScore | FeedInfo | Problem
"""What a reader yields."""


class FeedReader(ABC):
    """Reads one kind of feed."""

    name: ClassVar[str]
    """Registry name, also accepted by ``feeds import --format``."""

    @abstractmethod
    def read(self, path: Path) -> Iterator[FeedRecord]:
        """Yield every record of ``path`` (a file, a directory tree or an archive)."""

    @classmethod
    def sniff(cls, path: Path) -> bool:
        """True when ``path`` looks like this reader's format (used by auto-detection)."""
        return False
