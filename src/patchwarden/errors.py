"""The one error tree of patchwarden.

Every error a caller can act on is a subclass of :class:`PatchwardenError`. Only the CLI
(and later the API) turns errors into exit codes or HTTP answers; the core raises.

    PatchwardenError
    ├── InvalidVersion (ValueError)        a version string a scheme cannot parse
    ├── InvalidPurl (ValueError)           a package URL that does not parse
    ├── UnknownEcosystem (ValueError)      an ecosystem name patchwarden does not know
    ├── IntelError                         feeds: advisories, KEV, EPSS
    │   ├── FeedFormatError                a whole feed file is unreadable (truncated zip/gzip,
    │   │                                  not JSON, wrong top-level shape)
    │   ├── RecordError                    one record of a feed is malformed (carries the file,
    │   │                                  the record id when known, and the reason)
    │   └── AptError                       apt-get could not list or download the candidate
    │                                      upgrades whose changelogs are wanted
    ├── InventoryError                     collecting what is installed on an asset
    │   ├── InventoryFormatError           an inventory file (dpkg status, SBOM, lockfile, ...)
    │   │                                  is malformed; names the file and the record/field
    │   │   └── ManifestError              a Kubernetes manifest or ``kubectl get -o json``
    │   │                                      document is malformed; names file, document
    │   │                                      index and field
    │   └── FleetFileError                 the fleet file is invalid; lists every problem found
    │                                      with file, line and field
    ├── PolicyError                        the policy file is invalid; lists every problem found
    │                                      with file, line and field
    ├── GovernError                        a decision that is not allowed: approving a change
    │                                      that is not pending, approving one's own plan,
    │                                      an exception without reason or with a past expiry
    └── StoreError                         the database cannot be opened, migrated or written
        └── NotFound                       an id the caller named does not exist

Messages are lower-case and concrete: what failed, which file/record/id, and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class PatchwardenError(Exception):
    """Root of every error patchwarden raises on purpose."""


class InvalidVersion(PatchwardenError, ValueError):
    """A version string that the ecosystem's version scheme cannot parse."""


class InvalidPurl(PatchwardenError, ValueError):
    """A package URL (purl) that does not parse."""


class UnknownEcosystem(PatchwardenError, ValueError):
    """An ecosystem name that patchwarden has no version scheme for."""


class IntelError(PatchwardenError):
    """Base for errors while reading vulnerability intelligence (advisories, KEV, EPSS)."""


class FeedFormatError(IntelError):
    """A whole feed file cannot be read: truncated archive, not JSON/YAML/CSV, wrong shape."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One problem found in an input: where it is and what is wrong with it."""

    source: str
    """The file (or URL, or ``<stdin>``) the problem is in."""
    record: str | None = None
    """The record id (advisory id, package name, asset name) when known."""
    field: str | None = None
    """The field path inside the record (``affected[0].ranges[1].type``) when known."""
    line: int | None = None
    """The 1-based line number in the source file when known."""
    reason: str
    """What is wrong, lower-case and concrete."""

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
        parts = [where]
        if self.record:
            parts.append(f"record {self.record!r}")
        if self.field:
            parts.append(f"field {self.field!r}")
        return ", ".join(parts) + f": {self.reason}"


class RecordError(IntelError):
    """One malformed record of a feed; the batch goes on without it."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class AptError(IntelError):
    """apt-get failed while listing candidate upgrades or downloading their packages."""


class InventoryError(PatchwardenError):
    """Base for errors while collecting an asset's installed packages."""


class InventoryFormatError(InventoryError):
    """An inventory input (dpkg status, apk db, SBOM, lockfile, saved list) is malformed."""


class ManifestError(InventoryFormatError):
    """A Kubernetes manifest (YAML, multi-document) or ``kubectl get -o json`` output is
    malformed: the message names the file, the 0-based document index and the field path."""


class FleetFileError(InventoryError):
    """The fleet file is invalid. Carries every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid fleet file ({len(self.problems)} problem(s)):\n{lines}")


class PolicyError(PatchwardenError):
    """The policy file is invalid. Carries every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid policy file ({len(self.problems)} problem(s)):\n{lines}")


class StoreError(PatchwardenError):
    """The database cannot be opened, migrated, read or written."""


class NotFound(StoreError):
    """An object the caller named (asset, finding, advisory) does not exist."""


class GovernError(PatchwardenError):
    """A governance decision that is not allowed (wrong state, four eyes, bad expiry)."""
