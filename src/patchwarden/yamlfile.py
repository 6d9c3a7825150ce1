"""YAML input files with line numbers: load, validate with pydantic, report every problem.

Shared by the fleet file (:mod:`patchwarden.inventory.fleet`) and the policy file
(:mod:`patchwarden.policy`). Each problem becomes a :class:`~patchwarden.errors.Problem`
naming the file, the 1-based line and the field path (``risk.kev_floor``,
``assets[2].inventory.sbom``), so a user can go straight to it.

>>> import tempfile, pathlib
>>> from pydantic import BaseModel, ConfigDict
>>> class Spec(BaseModel):
...     model_config = ConfigDict(extra="forbid")
...     size: int
>>> with tempfile.TemporaryDirectory() as d:
...     p = pathlib.Path(d, "x.yaml")
...     _ = p.write_text("size: big\\ncolour: red\\n")
...     try:
...         load_validated(p, Spec, error=ValueError)
...     except ValueError as exc:
...         [(q.line, q.field) for q in exc.args[0]]
[(1, 'size'), (2, 'colour')]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from patchwarden.errors import Problem

M = TypeVar("M", bound=BaseModel)
Loc = tuple[int | str, ...]
"""A path into a YAML document: mapping keys and list indexes."""
ErrorFactory = Callable[[Sequence[Problem]], Exception]
"""Builds the exception to raise from the problems found (e.g. ``FleetFileError``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class YamlDocument:
    """A parsed YAML file: its data and its node tree (for line numbers)."""

    source: str
    """The file name used in problems."""
    data: Any
    """The parsed data (``yaml.safe_load``)."""
    root: yaml.Node | None
    """The composed node tree; None for an empty file."""

    def line(self, loc: Loc) -> int | None:
        """The 1-based line of the deepest node along ``loc`` (None for an empty file)."""
        if self.root is None:
            return None
        return node_line(node_at(self.root, loc))

    def problem(self, loc: Loc, reason: str, record: str | None = None) -> Problem:
        """A problem at ``loc`` with its line and field path."""
        return Problem(
            source=self.source,
            record=record,
            field=field_path(loc) or None,
            line=self.line(loc),
            reason=reason,
        )


def node_at(node: yaml.Node, loc: Loc) -> yaml.Node:
    """The deepest node along ``loc`` (mapping keys resolve to the KEY node's position)."""
    for idx, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode) and isinstance(part, str | int):
            pair = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if pair is None:
                return node
            key: yaml.Node = pair[0]
            value: yaml.Node = pair[1]
            if idx == len(loc) - 1:
                return key
            node = value
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def node_line(node: yaml.Node) -> int:
    """The 1-based line where ``node`` starts."""
    return int(node.start_mark.line) + 1


def field_path(loc: Loc) -> str:
    """A readable field path: ``assets[2].inventory.sbom``.

    >>> field_path(("assets", 2, "inventory", "sbom"))
    'assets[2].inventory.sbom'
    """
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def duplicate_keys(node: yaml.Node, source: str) -> list[Problem]:
    """Every repeated mapping key in the tree (PyYAML silently keeps the last one)."""
    problems: list[Problem] = []
    _duplicate_keys(node, source, problems)
    return problems


def _duplicate_keys(node: yaml.Node, source: str, problems: list[Problem]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                problems.append(
                    Problem(
                        source=source,
                        line=node_line(key),
                        field=name,
                        reason=f"duplicate key {name!r} (first at line {seen[name]})",
                    )
                )
            else:
                seen[name] = node_line(key)
            _duplicate_keys(value, source, problems)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _duplicate_keys(item, source, problems)


def reason(error: Any) -> str:
    """A lower-case reason for one pydantic error dict (``exc.errors()`` item)."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    msg = str(error["msg"])
    msg = msg[:1].lower() + msg[1:]
    if "input" in error and kind not in {"model_type"}:
        msg += f", got {error['input']!r}"
    return msg


def validation_problems(
    exc: ValidationError, doc: YamlDocument, prefix: Loc = (), record: str | None = None
) -> list[Problem]:
    """One problem per pydantic error, located under ``prefix`` in ``doc``."""
    problems = []
    for err in exc.errors():
        # pydantic marks an invalid mapping key as loc (..., key, "[key]"); the key is the place.
        loc = tuple(part for part in err["loc"] if part != "[key]")
        problems.append(doc.problem((*prefix, *loc), reason(err), record))
    return problems


def load_yaml(path: Path, *, error: ErrorFactory) -> YamlDocument:
    """Read and parse ``path``; unreadable files and YAML syntax errors raise ``error([...])``."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error([Problem(source=source, reason=f"cannot read: {exc}")]) from exc
    # one parse: the node tree (for line numbers) and the data constructed from it, by libyaml
    # when PyYAML has it (a 10,000-asset fleet file: 1.9 s instead of 15 s for two pure-Python
    # parses)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise error([Problem(source=source, line=line, reason=f"invalid yaml: {problem}")]) from exc
    finally:
        loader.dispose()
    return YamlDocument(source=source, data=data, root=root)


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it, else the pure-Python one (the same
documents, nodes and marks)."""


def load_validated(path: Path, model: type[M], *, error: ErrorFactory) -> M:
    """Load ``path`` and validate it as ``model``; raise ``error(problems)`` listing them all.

    The document must be a mapping. Duplicate keys, unknown fields (with ``extra="forbid"``),
    wrong types and out-of-range values are all reported, each with its line and field.
    """
    doc = load_yaml(path, error=error)
    if doc.root is None or not isinstance(doc.data, dict):
        raise error([doc.problem((), "the file must be a yaml mapping")])
    problems = duplicate_keys(doc.root, doc.source)
    try:
        value = model.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(validation_problems(exc, doc))
        value = None
    if problems or value is None:
        problems.sort(key=lambda p: (p.line or 0, p.field or ""))
        raise error(problems)
    return value
