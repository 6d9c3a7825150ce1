"""Alpine package versions, ordered as apk-tools orders them.

Syntax (apk-tools ``src/version.c``, a Gentoo-like grammar):
``digits{.digits}{letter}{_suffix[digits]}{-r<revision>}`` where the suffixes are
``alpha beta pre rc`` (pre-releases, before the plain version) and ``cvs svn git hg p``
(post-releases, after it). apk-tools reads the string as a stream of typed tokens and
compares token by token: equal types compare by value, different types by type, where a
further ``.N`` beats a letter, which beats a post suffix, which beats a suffix number,
which beats a revision, which beats the end; a pre-release suffix sorts below the end.
``-r0`` is an ordinary revision (``1.0-r0 > 1.0``), as in apk-tools.

A component after a dot that starts with ``0`` is special in apk-tools: its run of zeros
becomes a negative number (``-len``) and the rest of its digits a separate token, so
``1.01 < 1.1`` and ``1.00 < 1.0``. This module reproduces that token stream exactly.

Why our own code: univers' ``AlpineLinuxVersion`` agrees with apk-tools' own
``test/version.data`` where it answers, but rejects valid versions with leading zeros
(``013``, ``087-r1``, ``02.08.01b``: 11 of 727 vectors, 109 of 5,000 real secdb pairs) and
compares about 15 times slower (``benchmarks/versions_bench.py``). There is no apk binary
on Debian, so the test oracles are apk-tools' own test vectors (tokenizer and order) and a
token-by-token comparison loop written after ``version.c`` (checks the tuple-key encoding
on real secdb pairs).

Strictness: versions apk-tools calls invalid (``apk_version_validate``), versions that do
not start with a digit, and numbers of 18 or more digits raise
:class:`~patchwarden.errors.InvalidVersion`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

from patchwarden.versions._base import Key, KeyedVersion, invalid, require_str
from patchwarden.versions.interface import VersionScheme

# Token types in apk-tools' enum order (version.c ``enum PARTS``).
DIGIT_OR_ZERO, DIGIT, LETTER, SUFFIX, SUFFIX_NO, REVISION_NO, END = range(7)

PRE_SUFFIXES = ("alpha", "beta", "pre", "rc")
POST_SUFFIXES = ("cvs", "svn", "git", "hg", "p")

# Rank of a token type in the key: a higher rank is a greater version when the types of the
# next tokens differ (apk: the type with the *lower* enum value wins; pre suffixes lose).
_RANK = {DIGIT_OR_ZERO: 6, DIGIT: 5, LETTER: 4, SUFFIX: 3, SUFFIX_NO: 2, REVISION_NO: 1, END: 0}
_PRE_RANK = -1
_MAX_DIGITS = 18  # apk-tools: 18 or more digits in one number is invalid (int64 overflow)


class _Invalid(Exception):
    """Internal: the token stream went invalid; carries the reason."""


def _next_type(prev: int, s: str, i: int) -> tuple[int, int]:
    """apk-tools ``next_token``: the type of the token starting at ``s[i]`` and its start."""
    if i >= len(s):
        return END, i
    c = s[i]
    if prev in (DIGIT, DIGIT_OR_ZERO) and "a" <= c <= "z":
        n = LETTER
    elif prev == LETTER and "0" <= c <= "9":
        n = DIGIT
    elif prev == SUFFIX and "0" <= c <= "9":
        n = SUFFIX_NO
    else:
        if c == ".":
            n = DIGIT_OR_ZERO
        elif c == "_":
            n = SUFFIX
        elif c == "-" and s[i + 1 : i + 2] == "r":
            n = REVISION_NO
            i += 1
        else:
            raise _Invalid(f"unexpected {c!r} at offset {i}")
        i += 1
    if n < prev and not (
        (n == DIGIT_OR_ZERO and prev == DIGIT)
        or (n == SUFFIX and prev == SUFFIX_NO)
        or (n == DIGIT and prev == LETTER)
    ):
        raise _Invalid(f"{s[i - 1]!r} not allowed here (offset {i - 1})")
    return n, i


def tokens(s: str) -> list[tuple[int, int]]:
    """The (type, value) tokens apk-tools reads from ``s``; raise ``_Invalid`` if invalid.

    >>> tokens("1.02a_rc1-r3")
    [(1, 1), (0, -1), (1, 2), (2, 97), (3, -1), (4, 1), (5, 3)]
    """
    out: list[tuple[int, int]] = []
    t, i, n = DIGIT, 0, len(s)
    while True:
        if i >= n:
            return out
        nt = -1
        j = i
        if t == DIGIT_OR_ZERO and s[i] == "0":
            while j < n and s[j] == "0":
                j += 1
            value = -(j - i)
            nt = DIGIT
        elif t in (DIGIT_OR_ZERO, DIGIT, SUFFIX_NO, REVISION_NO):
            while j < n and "0" <= s[j] <= "9":
                j += 1
            if j - i >= _MAX_DIGITS:
                raise _Invalid(f"number {s[i:j]!r} has too many digits")
            value = int(s[i:j]) if j > i else 0
        elif t == LETTER:
            value = ord(s[i])
            j = i + 1
        elif t == SUFFIX:
            for k, name in enumerate(PRE_SUFFIXES):
                if s.startswith(name, i):
                    value = k - len(PRE_SUFFIXES)
                    j = i + len(name)
                    break
            else:
                for k, name in enumerate(POST_SUFFIXES):
                    if s.startswith(name, i):
                        value = k
                        j = i + len(name)
                        break
                else:
                    raise _Invalid(f"unknown suffix at offset {i}")
        else:  # pragma: no cover - END is returned above, INVALID raises
            raise AssertionError(t)
        out.append((t, value))
        if j >= n:
            return out
        if nt != -1:
            t, i = nt, j
        else:
            t, i = _next_type(t, s, j)
            if t == END:  # a NUL byte; never produced by Python strings
                return out


def _key(toks: list[tuple[int, int]]) -> Key:
    parts: list[tuple[int, int]] = []
    for t, value in toks:
        rank = _PRE_RANK if t == SUFFIX and value < 0 else _RANK[t]
        parts.append((rank, value))
    parts.append((_RANK[END], 0))
    return tuple(parts)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ApkVersion(KeyedVersion):
    """A parsed Alpine version; ``key`` is the (rank, value) token stream.

    >>> parse_apk("1.0_rc1-r0") < parse_apk("1.0-r0") < parse_apk("1.0_p1-r0")
    True
    >>> parse_apk("1.2.3-r1") > parse_apk("1.2.3")
    True
    """

    scheme: ClassVar[str] = "apk"


@lru_cache(maxsize=1 << 16)
def _parse(version: str) -> ApkVersion:
    if not ("0" <= version[0] <= "9"):
        raise invalid("apk", version, "does not start with a digit")
    try:
        toks = tokens(version)
    except _Invalid as exc:
        raise invalid("apk", version, str(exc)) from exc
    return ApkVersion(raw=version, key=_key(toks))


def parse_apk(version: str) -> ApkVersion:
    """Parse an Alpine version (cached); raise :class:`InvalidVersion` naming it.

    >>> parse_apk("1.0-x")
    Traceback (most recent call last):
    ...
    patchwarden.errors.InvalidVersion: invalid apk version '1.0-x': unexpected '-' at offset 3
    """
    return _parse(require_str("apk", version))


class ApkScheme(VersionScheme):
    """Alpine Linux: apk-tools order."""

    name: ClassVar[str] = "apk"

    def parse(self, version: str) -> ApkVersion:
        """Parse ``version``; see :func:`parse_apk`."""
        return parse_apk(version)
