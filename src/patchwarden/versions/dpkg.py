"""Debian/Ubuntu package versions, ordered as ``dpkg --compare-versions`` orders them.

Syntax (deb-version(7), dpkg ``lib/dpkg/parsehelp.c``): ``[epoch:]upstream[-revision]``.
The epoch is a non-negative integer (default 0); the revision is what follows the *last*
hyphen (default empty, which compares equal to ``0``). Upstream and revision are compared
with dpkg's ``verrevcmp``: alternating non-digit and digit runs; in non-digit runs ``~``
sorts before everything (even the end of the string), letters sort before other
characters; digit runs compare numerically.

Why our own code: univers' ``DebianVersion`` agrees with dpkg on all 12,200 pairs of our
golden table, but it re-runs the comparison algorithm on every comparison: measured
(``benchmarks/versions_bench.py``) about 60k comparisons/s against about 1M/s here, where
each version is compiled once (cached) into a tuple key and a comparison is one tuple
comparison. The price is a slower first parse (~30k/s against univers' ~60-90k/s), paid
once per distinct string. The dpkg binary is the test oracle.

Strictness: dpkg itself only *warns* when the upstream part does not start with a digit or
contains characters outside ``[A-Za-z0-9.+~:-]`` (revision: ``[A-Za-z0-9.+~]``), and then
compares anyway. Policy §5.6.12 forbids such versions and ``dpkg-deb`` refuses to build
them, so here they raise :class:`~patchwarden.errors.InvalidVersion` like dpkg's hard
errors (empty parts, bad epoch, embedded spaces).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

from patchwarden.versions._base import Key, KeyedVersion, invalid, require_str
from patchwarden.versions.interface import VersionScheme

_INT_MAX = 2**31 - 1  # dpkg stores the epoch in an int and rejects larger ones
_UPSTREAM_OK = re.compile(r"[A-Za-z0-9.+~:-]*\Z")
_REVISION_OK = re.compile(r"[A-Za-z0-9.+~]*\Z")
_DIGIT_RUNS = re.compile(r"([0-9]+)")
_SPACE = re.compile(r"\s")


def _order(ch: str) -> int:
    # dpkg parsehelp.c order(): digits/end 0, letters their code, '~' -1, others code+256.
    if ch.isascii() and ch.isalpha():
        return ord(ch)
    if ch == "~":
        return -1
    return ord(ch) + 256


@lru_cache(maxsize=4096)
def _run_key(nondigit: str) -> Key:
    # Non-digit runs repeat across versions (".", "-", "+deb", "~bpo"): memoise their keys.
    return (*map(_order, nondigit), 0)


_TERMINATOR: Key = ((0,), 0)


def _verrev_key(text: str) -> Key:
    """Key of one upstream or revision part; tuple order equals dpkg's ``verrevcmp``.

    Each (non-digit run, digit run) pair becomes ((order(c)..., 0), int(digits or 0)); the
    trailing ``0`` stands for the end of the run (dpkg reads the NUL as order 0). A final
    ``((0,), 0)`` pair stands for the end of the string, which dpkg pads with empty runs.

    >>> _verrev_key("1.0~rc1") < _verrev_key("1.0") < _verrev_key("1.0a") < _verrev_key("1.0+b")
    True
    >>> _verrev_key("1.01") == _verrev_key("1.1")
    True
    """
    parts = _DIGIT_RUNS.split(text)  # [non-digit, digits, non-digit, digits, ..., non-digit]
    pairs: list[Key] = [
        (_run_key(nondigit), int(digits))
        for nondigit, digits in zip(parts[::2], parts[1::2], strict=False)
    ]
    if parts[-1] or not pairs:
        pairs.append((_run_key(parts[-1]), 0))
    pairs.append(_TERMINATOR)
    return tuple(pairs)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class DpkgVersion(KeyedVersion):
    """A parsed Debian version; ``key`` is ``(epoch, upstream key, revision key)``.

    >>> parse_dpkg("1:1.0-1") > parse_dpkg("2.0-1")
    True
    >>> parse_dpkg("1.0~rc1-1") < parse_dpkg("1.0-1")
    True
    >>> parse_dpkg("1.0") == parse_dpkg("0:1.0-0")
    True
    """

    scheme: ClassVar[str] = "dpkg"


@lru_cache(maxsize=1 << 16)
def _parse(version: str) -> DpkgVersion:
    text = version.strip()
    if _SPACE.search(text):
        raise invalid("dpkg", version, "version string has embedded spaces")
    epoch = 0
    rest = text
    if ":" in text:
        epoch_text, rest = text.split(":", 1)
        if not epoch_text:
            raise invalid("dpkg", version, "epoch in version is empty")
        if not (epoch_text.isascii() and epoch_text.isdigit()):
            raise invalid("dpkg", version, f"epoch {epoch_text!r} is not a number")
        epoch = int(epoch_text)
        if epoch > _INT_MAX:
            raise invalid("dpkg", version, f"epoch {epoch_text!r} is too big")
        if not rest:
            raise invalid("dpkg", version, "nothing after the epoch colon")
    upstream, hyphen, revision = rest.rpartition("-")
    if not hyphen:
        upstream, revision = rest, ""
    elif not revision:
        raise invalid("dpkg", version, "revision number is empty")
    if not upstream:
        raise invalid("dpkg", version, "empty upstream version")
    if not ("0" <= upstream[0] <= "9"):
        raise invalid("dpkg", version, "upstream version does not start with a digit")
    if not _UPSTREAM_OK.match(upstream):
        raise invalid("dpkg", version, f"invalid character in upstream version {upstream!r}")
    if not _REVISION_OK.match(revision):
        raise invalid("dpkg", version, f"invalid character in revision {revision!r}")
    return DpkgVersion(raw=version, key=(epoch, _verrev_key(upstream), _verrev_key(revision)))


def parse_dpkg(version: str) -> DpkgVersion:
    """Parse a Debian version (cached); raise :class:`InvalidVersion` naming it.

    >>> parse_dpkg("2:1.20.11-1+deb11u6").key[0]
    2
    >>> parse_dpkg("1:")
    Traceback (most recent call last):
    ...
    patchwarden.errors.InvalidVersion: invalid dpkg version '1:': nothing after the epoch colon
    """
    return _parse(require_str("dpkg", version))


class DpkgScheme(VersionScheme):
    """Debian and Ubuntu: ``dpkg --compare-versions`` order."""

    name: ClassVar[str] = "dpkg"

    def parse(self, version: str) -> DpkgVersion:
        """Parse ``version``; see :func:`parse_dpkg`."""
        return parse_dpkg(version)
