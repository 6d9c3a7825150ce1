"""Maven versions, ordered as Maven's ``ComparableVersion`` (maven-artifact 3.8) orders them.

The algorithm (``org.apache.maven.artifact.versioning.ComparableVersion``): the version is
lower-cased and cut at ``.`` and ``-`` and at every switch between digits and letters; a
``-`` or a digit/letter switch opens a nested list, and so does a word that follows other
items and is followed by a digit or ends the string (``1.x`` is ``1-x``, ``2.0.0.M1`` is
``2-milestone-1``; maven-artifact 3.8). Numbers compare numerically; words are
qualifiers ordered ``alpha < beta < milestone < rc = cr < snapshot < "" = ga = final =
release < sp < any other word`` (other words among themselves alphabetically); ``a1``,
``b1``, ``m1`` mean ``alpha-1``, ``beta-1``, ``milestone-1``. Trailing "null" items (``0``,
the empty qualifier, empty lists) are dropped, so ``1.0.0 == 1 == 1-ga``. A number beats a
list, which beats a qualifier; a missing item compares as "null" (``1.1 > 1``,
``1-alpha < 1``, ``1-sp > 1``).

Why our own code: univers' ``MavenVersion`` ports an older ``ComparableVersion``: it got
23 of the 4,189 golden pairs wrong (``1.0.RELEASE`` vs ``1.0-ga``, ``1-0.1`` vs ``1.0.0``,
``.X`` qualifiers; ``benchmarks/versions_bench.py``). The real class, run from Debian's
``/usr/share/maven/lib/maven-artifact-3.x.jar``, is the test oracle.

The order is not a tuple order (a missing item compares differently against a number, a
word or a list), so :class:`MavenVersion` compares with a cached comparison function
instead of a tuple key; ``key`` holds the normalised item tree, which is also what equality
and hashing use (``ComparableVersion.equals`` compares the canonical form the same way).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cmp_to_key, lru_cache
from typing import ClassVar, Union

from patchwarden.versions._base import KeyedVersion, invalid, require_str
from patchwarden.versions.interface import VersionScheme

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_RELEASE_INDEX = str(_QUALIFIERS.index(""))
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}
_SPACE = re.compile(r"\s")

Item = Union[int, "Qualifier", "ItemList"]
ItemList = tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Qualifier:
    """A word item; ``order`` is Maven's comparable form (``"0"`` alpha ... ``"7-foo"``)."""

    value: str
    """The word after aliasing (``cr`` -> ``rc``, ``ga`` -> empty)."""
    order: str
    """Maven's ``comparableQualifier``: index in the known list, or ``7-<word>``."""


def _qualifier(word: str, followed_by_digit: bool) -> Qualifier:
    if followed_by_digit and len(word) == 1:
        word = _SHORT.get(word, word)
    word = _ALIASES.get(word, word)
    try:
        order = str(_QUALIFIERS.index(word))
    except ValueError:
        order = f"{len(_QUALIFIERS)}-{word}"
    return Qualifier(word, order)


def _is_null(item: Item) -> bool:
    if isinstance(item, int):
        return item == 0
    if isinstance(item, Qualifier):
        return item.order == _RELEASE_INDEX
    return not item


def _normalize(items: list[Item]) -> None:
    # ListItem.normalize(): drop trailing null items, looking through trailing non-null lists.
    for i in range(len(items) - 1, -1, -1):
        item = items[i]
        if _is_null(item):
            del items[i]
        elif not isinstance(item, tuple):
            break


def _parse_item(is_digit: bool, text: str) -> Item:
    return int(text) if is_digit else _qualifier(text, False)


def parse_items(version: str) -> ItemList:
    """Maven's ``parseVersion``: the normalised item tree of ``version``.

    >>> parse_items("1.0-alpha1")
    (1, (Qualifier(value='alpha', order='0'), (1,)))
    >>> parse_items("1.0.0.RELEASE")
    (1,)
    """
    text = version.lower()
    # Lists are built mutable and frozen at the end; ``stack`` keeps creation order.
    root: list[Item] = []
    current = root
    stack: list[list[Item]] = [root]
    children: dict[int, list[tuple[int, list[Item]]]] = {}

    def open_list() -> list[Item]:
        new: list[Item] = []
        children.setdefault(id(current), []).append((len(current), new))
        current.append(())  # placeholder, replaced by the frozen child below
        stack.append(new)
        return new

    is_digit = False
    start = 0
    for i, c in enumerate(text):
        if c in ".-":
            if i == start:
                current.append(0)
            else:
                current.append(_parse_item(is_digit, text[start:i]))
            start = i + 1
            if c == "-":
                current = open_list()
        elif c.isdecimal():
            if not is_digit and i > start:
                if current:  # "1.0.0.X1 < 1.0.0-X2": a word after a dot opens a list too
                    current = open_list()
                current.append(_qualifier(text[start:i], True))
                start = i
                current = open_list()
            is_digit = True
        else:
            if is_digit and i > start:
                current.append(_parse_item(True, text[start:i]))
                start = i
                current = open_list()
            is_digit = False
    if len(text) > start:
        if not is_digit and current:  # same rule for a final word: "1.x" is "1-x"
            current = open_list()
        current.append(_parse_item(is_digit, text[start:]))

    frozen: dict[int, ItemList] = {}
    for items in reversed(stack):  # innermost lists first, as Maven pops its stack
        for index, child in children.get(id(items), []):
            items[index] = frozen[id(child)]
        _normalize(items)
        frozen[id(items)] = tuple(items)
    return frozen[id(root)]


def _cmp_null(item: Item) -> int:
    """``item.compareTo(null)``."""
    if isinstance(item, int):
        return 0 if item == 0 else 1
    if isinstance(item, Qualifier):
        return (item.order > _RELEASE_INDEX) - (item.order < _RELEASE_INDEX)
    for sub in item:  # MNG-6964: the whole list against null, not only its first item
        result = _cmp_null(sub)
        if result:
            return result
    return 0


def compare_items(a: Item, b: Item | None) -> int:
    """``a.compareTo(b)`` of ``ComparableVersion``'s items (``None`` is Maven's null).

    >>> compare_items(parse_items("1-sp"), parse_items("1"))
    1
    >>> compare_items(parse_items("1.1"), parse_items("1-1"))
    1
    """
    if b is None:
        return _cmp_null(a)
    if isinstance(a, int):
        if isinstance(b, int):
            return (a > b) - (a < b)
        return 1
    if isinstance(a, Qualifier):
        if isinstance(b, Qualifier):
            return (a.order > b.order) - (a.order < b.order)
        return -1
    if isinstance(b, int):
        return -1
    if isinstance(b, Qualifier):
        return 1
    for i in range(max(len(a), len(b))):
        left = a[i] if i < len(a) else None
        right = b[i] if i < len(b) else None
        if left is None:
            result = 0 if right is None else -compare_items(right, None)
        else:
            result = compare_items(left, right)
        if result:
            return result
    return 0


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class MavenVersion(KeyedVersion):
    """A parsed Maven version; ``key`` is the normalised item tree.

    >>> parse_maven("1.0-alpha-1") < parse_maven("1.0-beta") < parse_maven("1.0-SNAPSHOT")
    True
    >>> parse_maven("1.0-SNAPSHOT") < parse_maven("1.0") < parse_maven("1.0-sp1")
    True
    >>> parse_maven("1.0.0") == parse_maven("1-ga")
    True
    """

    scheme: ClassVar[str] = "maven"

    def _cmp(self, other: object) -> int | None:
        if type(other) is not type(self):
            return None
        assert isinstance(other, MavenVersion)
        if self.key == other.key:
            return 0
        return _compare_cached(self.key, other.key)

    def __lt__(self, other: object) -> bool:
        c = self._cmp(other)
        return NotImplemented if c is None else c < 0

    def __le__(self, other: object) -> bool:
        c = self._cmp(other)
        return NotImplemented if c is None else c <= 0

    def __gt__(self, other: object) -> bool:
        c = self._cmp(other)
        return NotImplemented if c is None else c > 0

    def __ge__(self, other: object) -> bool:
        c = self._cmp(other)
        return NotImplemented if c is None else c >= 0

    def __eq__(self, other: object) -> bool:
        c = self._cmp(other)
        return NotImplemented if c is None else c == 0

    def __hash__(self) -> int:
        return hash((self.scheme, self.key))


@lru_cache(maxsize=1 << 16)
def _compare_cached(a: ItemList, b: ItemList) -> int:
    return compare_items(a, b)


maven_sort_key = cmp_to_key(compare_items)
"""A ``sorted(key=...)`` adapter over item trees, for callers holding raw trees."""


@lru_cache(maxsize=1 << 16)
def _parse(version: str) -> MavenVersion:
    text = version.strip()
    if _SPACE.search(text):
        raise invalid("maven", version, "version string has embedded spaces")
    return MavenVersion(raw=version, key=parse_items(text))


def parse_maven(version: str) -> MavenVersion:
    """Parse a Maven version (cached); raise :class:`InvalidVersion` naming it.

    Maven accepts any string as a version; only empty and blank strings, strings with
    embedded whitespace and non-strings are rejected.

    >>> parse_maven("")
    Traceback (most recent call last):
    ...
    patchwarden.errors.InvalidVersion: invalid maven version '': empty version
    """
    return _parse(require_str("maven", version))


class MavenScheme(VersionScheme):
    """Maven: ``ComparableVersion`` order."""

    name: ClassVar[str] = "maven"

    def parse(self, version: str) -> MavenVersion:
        """Parse ``version``; see :func:`parse_maven`."""
        return parse_maven(version)
