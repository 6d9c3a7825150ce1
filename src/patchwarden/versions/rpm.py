"""RPM versions (Red Hat, Rocky, Alma, SUSE), ordered as rpm's ``rpmvercmp`` orders them.

Syntax: ``[epoch:]version[-release]``, split as rpm's ``parseEVR`` splits it: leading
digits followed by ``:`` are the epoch, the release is what follows the *last* hyphen.
Each part is compared with ``rpmvercmp`` (rpm ``rpmio/rpmvercmp.c``): the string is cut
into runs of digits and runs of ASCII letters, every other character only separates;
``~`` sorts before anything (even the end), ``^`` sorts after the end but before any
further run; a digit run beats a letter run; digit runs compare numerically, letter runs
byte-wise. So ``1.0 == 1_0`` (different strings, same version), ``1.0~rc1 < 1.0 <
1.0^post1 < 1.0.1``.

A missing release sorts before any release (``1.0 < 1.0-0 < 1.0-1``), as rpm 4.18's
``rpm.vercmp`` does; older rpm versions skipped the release when one side had none, which
is not a total order (``1.0 == 1.0-1 == 1.0-2`` yet ``1.0-1 < 1.0-2``).

Why our own code: univers' ``RpmVersion`` compares about 10-35 times slower (measured in
``benchmarks/versions_bench.py``) and got 7 of the 6,535 golden pairs wrong (strings with
more than one ``-``, e.g. ``0.74-2-3+deb10u1``, where rpm takes the *last* hyphen); the rpm
binary (``rpm.vercmp`` in rpm 4.18's Lua) is the test oracle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

from patchwarden.versions._base import Key, KeyedVersion, invalid, require_str
from patchwarden.versions.interface import VersionScheme

_TOKENS = re.compile(r"(~)|(\^)|([0-9]+)|([A-Za-z]+)")
_EPOCH = re.compile(r"([0-9]*):")
_SPACE = re.compile(r"\s")

# Token ranks: '~' < end of string < '^' < letters < digits (rpmvercmp.c).
_TILDE: Key = (0,)
_END: Key = (1,)
_CARET: Key = (2,)
_ALPHA = 3
_DIGIT = 4


def vercmp_key(text: str) -> Key:
    """Key of one epoch/version/release string; tuple order equals ``rpmvercmp``.

    >>> vercmp_key("1.0~rc1") < vercmp_key("1.0") < vercmp_key("1.0^git1") < vercmp_key("1.0.1")
    True
    >>> vercmp_key("1.0") == vercmp_key("1_0")
    True
    >>> vercmp_key("1.0a") < vercmp_key("1.0.1")
    True
    """
    tokens: list[Key] = []
    for tilde, caret, digits, alpha in _TOKENS.findall(text):
        if tilde:
            tokens.append(_TILDE)
        elif caret:
            tokens.append(_CARET)
        elif digits:
            tokens.append((_DIGIT, int(digits)))
        else:
            tokens.append((_ALPHA, alpha))
    tokens.append(_END)
    return tuple(tokens)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class RpmVersion(KeyedVersion):
    """A parsed RPM EVR; ``key`` is ``(epoch key, version key, (has release, release key))``.

    >>> parse_rpm("1:1.0-1") > parse_rpm("2.0-1")
    True
    >>> parse_rpm("1.0-1.el9") < parse_rpm("1.0-1.el9_2")
    True
    >>> parse_rpm("1.0") < parse_rpm("1.0-~") < parse_rpm("1.0-0")
    True
    """

    scheme: ClassVar[str] = "rpm"


@lru_cache(maxsize=1 << 16)
def _parse(version: str) -> RpmVersion:
    text = version.strip()
    if _SPACE.search(text):
        raise invalid("rpm", version, "version string has embedded spaces")
    if not text.isascii() or not text.isprintable():
        raise invalid("rpm", version, "non-ASCII or control character")
    epoch = "0"
    rest = text
    m = _EPOCH.match(text)
    if m:
        epoch = m.group(1) or "0"
        rest = text[m.end() :]
    ver, hyphen, release = rest.rpartition("-")
    release_key: Key = (0,)  # no release: before every release (rpm 4.18 rpm.vercmp)
    if not hyphen:
        ver = rest
    elif not release:
        raise invalid("rpm", version, "release after '-' is empty")
    if not ver:
        raise invalid("rpm", version, "empty version part")
    if hyphen:
        release_key = (1, vercmp_key(release))
    return RpmVersion(raw=version, key=(vercmp_key(epoch), vercmp_key(ver), release_key))


def parse_rpm(version: str) -> RpmVersion:
    """Parse an RPM ``[epoch:]version[-release]`` (cached); raise :class:`InvalidVersion`.

    >>> parse_rpm("0:2.4.57-5.el9") == parse_rpm("2.4.57-5.el9")
    True
    >>> parse_rpm("1.0-")
    Traceback (most recent call last):
    ...
    patchwarden.errors.InvalidVersion: invalid rpm version '1.0-': release after '-' is empty
    """
    return _parse(require_str("rpm", version))


class RpmScheme(VersionScheme):
    """Red Hat family and SUSE: rpm's ``rpmvercmp`` order on ``epoch:version-release``."""

    name: ClassVar[str] = "rpm"

    def parse(self, version: str) -> RpmVersion:
        """Parse ``version``; see :func:`parse_rpm`."""
        return parse_rpm(version)
