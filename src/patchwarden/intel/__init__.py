"""Feed readers: advisory databases (OSV, Debian, Alpine), CISA KEV and FIRST EPSS.

Readers are picked by name from :data:`READERS` at the edges (CLI ``--format``), or
guessed from a path with :func:`detect`.
"""

from __future__ import annotations

from pathlib import Path

from patchwarden.errors import FeedFormatError
from patchwarden.intel.alpine import AlpineSecdbReader
from patchwarden.intel.csaf import CsafReader
from patchwarden.intel.debian import DebianJsonReader, DebianListReader
from patchwarden.intel.debian_changelog import DebianChangelogReader
from patchwarden.intel.epss import EpssReader
from patchwarden.intel.interface import FeedInfo, FeedReader, FeedRecord
from patchwarden.intel.kev import KevReader
from patchwarden.intel.osv import OsvReader
from patchwarden.intel.ubuntu_oval import UbuntuOvalReader

__all__ = ["READERS", "FeedInfo", "FeedReader", "FeedRecord", "detect"]

READERS: dict[str, type[FeedReader]] = {
    reader.name: reader
    for reader in (
        OsvReader,
        DebianListReader,
        DebianJsonReader,
        AlpineSecdbReader,
        KevReader,
        EpssReader,
        UbuntuOvalReader,
        CsafReader,
        DebianChangelogReader,
    )
}
"""Every reader by its registry name (``osv``, ``debian-list``, ``debian-json``,
``alpine-secdb``, ``kev``, ``epss``, ``ubuntu-oval``, ``csaf``, ``debian-changelog``)."""

_DETECT_ORDER: tuple[type[FeedReader], ...] = (
    # Cheap, unambiguous markers first; OSV's "id + modified" test is the loosest JSON check
    # and a directory or zip is always OSV, so it goes after the specific JSON formats.
    DebianListReader,
    DebianChangelogReader,
    KevReader,
    AlpineSecdbReader,
    DebianJsonReader,
    EpssReader,
    UbuntuOvalReader,
    CsafReader,
    OsvReader,
)


def detect(path: Path) -> FeedReader:
    """Pick the reader for ``path`` by sniffing its name and first bytes.

    Raises :class:`~patchwarden.errors.FeedFormatError` naming the file and the known
    formats when nothing matches.
    """
    if not path.exists():
        raise FeedFormatError(f"cannot detect the feed format of {path}: no such file")
    for reader in _DETECT_ORDER:
        if reader.sniff(path):
            return reader()
    names = ", ".join(READERS)
    raise FeedFormatError(
        f"cannot detect the feed format of {path} (known formats: {names}); name one with --format"
    )
