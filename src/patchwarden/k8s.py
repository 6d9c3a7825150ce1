"""Kubernetes: which workloads run which images, how to roll patched images out, how to drain.

Inputs are files, never a cluster connection: YAML manifests (multi-document files, folders
of them) or ``kubectl get ... -o json`` output (one object or a ``List`` of ``items``; e.g.
``kubectl get deploy,sts,ds,cronjob,pdb -A -o json``, ``kubectl get nodes -o json``,
``kubectl get pods -A -o json``). :func:`load_objects` reads them, keeping for every object
the file, the 0-based document index (and ``items[i]`` for lists) and, for YAML/JSON text,
the exact character span of every container's ``image`` scalar, so that
:func:`patch_manifests` can replace only that scalar: comments, key order, quoting and
everything else in the file stay byte for byte (no ruamel needed; the text is edited at the
positions PyYAML's composer reports).

Three jobs:

* **Inventory** (:func:`read_cluster`): Deployments, StatefulSets, DaemonSets, CronJobs
  (``spec.jobTemplate.spec.template``) with their containers and initContainers, image
  references (:class:`ImageRef`, tag and/or digest), replicas, labels and selectors; and the
  PodDisruptionBudgets, matched to workloads by label selector in the same namespace
  (``matchLabels`` and ``matchExpressions``; an empty selector selects every pod of the
  namespace, as in ``policy/v1``).
* **Rollout plan** (:func:`plan_rollout`): a thin adapter over the host planner
  (:func:`patchwarden.plan.schedule`). Each workload is an :class:`~patchwarden.model.Asset`
  of kind ``image`` (id ``k8s:<namespace>/<kind>/<name>``; environment, owner, window from
  labels/annotations, see :func:`workload_asset`) and each container image update is an
  :class:`~patchwarden.prioritize.Action` of ecosystem ``OCI`` that closes the findings of the
  old image (the actions planned for the scanned image's asset). The planner then applies the
  same rings, windows, freezes, SLAs and approval gates as for hosts. ``max_unavailable``:
  the workloads covered by one PDB share the planner *service* ``<namespace>/pdb/<name>``
  with a limit of one, so two workloads of one budget never roll out in overlapping slots;
  within a workload, the rollout's own ``maxUnavailable`` is checked against the PDB's
  allowed disruptions (:func:`pdb_allowed`) and lowered with a ``kubectl patch`` when it is
  larger (a rollout is not an eviction: Kubernetes does not stop it at the PDB).
  The result carries the patched manifests and the ``kubectl set image`` / ``kubectl
  rollout status`` commands in the order of the plan's changes.
* **Node drain plan** (:func:`plan_drain`): nodes that need a reboot, in steps of at most
  ``max_parallel`` nodes (default one, like Kured's lock), such that no step evicts more
  pods of any PDB than it allows now; a node whose own pods already exceed a budget is
  reported as blocked, never planned. Commands: cordon, drain, reboot, wait Ready, uncordon,
  wait for the PDBs to be healthy again.

PDB arithmetic follows the disruption controller (kubernetes ``pkg/controller/disruption``,
``getExpectedPodCount``): ``minAvailable`` as a count is the desired healthy count; as a
percentage, of the expected pods, rounded up; ``maxUnavailable`` (count or percentage, rounded
up) gives ``desired = expected - maxUnavailable``; neither set means desired 0.
``disruptionsAllowed = max(0, currentHealthy - desiredHealthy)``. Here the expected count is
the covered workloads' replicas (rollout) or the covered pods (drain).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
import shlex
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from patchwarden.errors import ManifestError
from patchwarden.model import Asset, AssetId, AssetKind, Environment
from patchwarden.plan.amount import Amount
from patchwarden.plan.changes import Disruption
from patchwarden.plan.scheduler import Change, Plan, PlanPolicy, schedule
from patchwarden.prioritize import Action, ScoredFinding

# --------------------------------------------------------------------------- image references

_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_HOST = re.compile(r"^[a-zA-Z0-9.-]+(?::\d+)?$|^\[[0-9a-fA-F:]+\](?::\d+)?$")
DEFAULT_REGISTRY = "docker.io"


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRef:
    """A container image reference, ``[registry/]repository[:tag][@digest]``.

    >>> r = ImageRef.parse("nginx:1.25")
    >>> r.name, r.tag, r.digest
    ('docker.io/library/nginx', '1.25', None)
    >>> ImageRef.parse("ghcr.io/acme/app@sha256:" + "a" * 64).pinned
    True
    >>> ImageRef.parse("localhost:5000/app:1").name
    'localhost:5000/app'
    """

    raw: str
    """The reference as written."""
    registry: str
    """The registry host (``docker.io`` when none is written)."""
    repository: str
    """The path in the registry (``library/nginx`` for a Docker Hub official image)."""
    tag: str | None
    """The tag, when written (``latest`` is *not* implied)."""
    digest: str | None
    """The manifest digest (``sha256:...``), when written."""

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse a reference (distribution/reference grammar); ``ValueError`` naming it."""
        if not text or text != text.strip():
            raise ValueError(f"invalid image reference {text!r}")
        rest, digest = text, None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not _DIGEST.match(digest):
                raise ValueError(f"invalid image reference {text!r}: bad digest {digest!r}")
        tag = None
        last = rest.rsplit("/", 1)[-1]
        if ":" in last:
            rest, tag = rest.rsplit(":", 1)
            if not _TAG.match(tag):
                raise ValueError(f"invalid image reference {text!r}: bad tag {tag!r}")
        parts = rest.split("/")
        registry = DEFAULT_REGISTRY
        if len(parts) > 1 and (
            "." in parts[0] or ":" in parts[0] or parts[0] == "localhost" or "[" in parts[0]
        ):
            registry = parts.pop(0)
            if not _HOST.match(registry):
                raise ValueError(f"invalid image reference {text!r}: bad registry {registry!r}")
        if not parts or not all(_COMPONENT.match(p) for p in parts):
            raise ValueError(
                f"invalid image reference {text!r}: bad repository {'/'.join(parts)!r}"
            )
        if registry == DEFAULT_REGISTRY and len(parts) == 1:
            parts.insert(0, "library")
        return cls(raw=text, registry=registry, repository="/".join(parts), tag=tag, digest=digest)

    @property
    def name(self) -> str:
        """``registry/repository``, normalized."""
        return f"{self.registry}/{self.repository}"

    @property
    def pinned(self) -> bool:
        """True when the reference carries a digest."""
        return self.digest is not None

    @property
    def version(self) -> str:
        """The tag and/or digest as one label (``1.25@sha256:...``); ``latest`` if neither."""
        if self.tag and self.digest:
            return f"{self.tag}@{self.digest}"
        return self.tag or self.digest or "latest"

    def matches(self, pattern: ImageRef) -> bool:
        """Whether this reference is what ``pattern`` names: same repository, and the same tag
        and digest where ``pattern`` gives them.

        >>> ImageRef.parse("nginx:1.25@sha256:" + "b" * 64).matches(ImageRef.parse("nginx:1.25"))
        True
        >>> ImageRef.parse("nginx:1.24").matches(ImageRef.parse("docker.io/library/nginx:1.25"))
        False
        """
        return (
            self.name == pattern.name
            and (pattern.tag is None or pattern.tag == self.tag)
            and (pattern.digest is None or pattern.digest == self.digest)
        )


# --------------------------------------------------------------------------- reading objects


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """Where an object was read."""

    path: Path
    """The file."""
    document: int
    """0-based document index in the file (YAML ``---`` separated; JSON: 0)."""
    item: int | None = None
    """Index into ``items`` when the document is a ``List``."""

    def where(self, field_path: str | None = None) -> str:
        """``file: document N[, items[i]][, field F]`` for error messages."""
        text = f"{self.path}: document {self.document}"
        if self.item is not None:
            text += f", items[{self.item}]"
        if field_path:
            text += f", field {field_path!r}"
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """Character offsets of one scalar in its file's text, and its quoting."""

    start: int
    """Offset of the first character (the opening quote for a quoted scalar)."""
    end: int
    """Offset after the last character."""
    style: str | None
    """``'"'``, ``"'"`` or None (plain)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class K8sObject:
    """One Kubernetes object as read, with its origin and the spans of its scalars."""

    origin: Origin
    """Where it was read."""
    doc: Mapping[str, Any]
    """The object."""
    spans: Mapping[tuple[str | int, ...], Span] = field(default_factory=dict)
    """Scalar positions by key path (only scalars, only when read from text)."""

    @property
    def kind(self) -> str:
        """``kind``."""
        return str(self.doc.get("kind", ""))


def _spans(
    node: yaml.Node, prefix: tuple[str | int, ...], out: dict[tuple[str | int, ...], Span]
) -> None:
    if isinstance(node, yaml.ScalarNode):
        out[prefix] = Span(start=node.start_mark.index, end=node.end_mark.index, style=node.style)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                _spans(value, (*prefix, key.value), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _spans(value, (*prefix, i), out)


_SUFFIXES = (".yaml", ".yml", ".json")


def _files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in _SUFFIXES))
        elif p.is_file():
            out.append(p)
        else:
            raise ManifestError(f"{p}: no such file or folder")
    return out


def load_objects(paths: Iterable[Path]) -> list[K8sObject]:
    """Every object in the files and folders ``paths`` (folders: ``*.yaml``, ``*.yml``,
    ``*.json`` below them, sorted). A ``List`` document yields its ``items``. Empty documents
    are skipped; a document that is not a mapping with a ``kind`` is a :class:`ManifestError`.
    """
    objects: list[K8sObject] = []
    for path in _files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{path}: cannot read: {exc}") from exc
        objects.extend(_parse_text(path, text))
    return objects


def _parse_text(path: Path, text: str) -> list[K8sObject]:
    objects: list[K8sObject] = []
    loader = yaml.SafeLoader(text)
    index = -1
    try:
        while loader.check_node():
            index += 1
            node = loader.get_node()
            if node is None:
                continue
            data = loader.construct_document(node)
            if data is None:
                continue
            spans: dict[tuple[str | int, ...], Span] = {}
            _spans(node, (), spans)
            objects.extend(_split(path, index, data, spans))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(
            f"{path}: document {max(index, 0)}{where}: not valid YAML/JSON: {problem}"
        ) from exc
    finally:
        loader.dispose()
    return objects


def _split(
    path: Path, index: int, data: Any, spans: dict[tuple[str | int, ...], Span]
) -> list[K8sObject]:
    origin = Origin(path=path, document=index)
    if not isinstance(data, dict):
        raise ManifestError(f"{origin.where()}: expected a mapping (an object), got {_type(data)}")
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ManifestError(f"{origin.where('kind')}: missing or not a string")
    if kind == "List" or (kind.endswith("List") and "items" in data):
        items = data.get("items")
        if not isinstance(items, list):
            raise ManifestError(f"{origin.where('items')}: a {kind} needs a list of items")
        out = []
        for i, item in enumerate(items):
            sub = Origin(path=path, document=index, item=i)
            if not isinstance(item, dict):
                raise ManifestError(f"{sub.where()}: expected a mapping, got {_type(item)}")
            if not isinstance(item.get("kind"), str):
                raise ManifestError(f"{sub.where('kind')}: missing or not a string")
            mine = {k[2:]: s for k, s in spans.items() if k[:2] == ("items", i)}
            out.append(K8sObject(origin=sub, doc=item, spans=mine))
        return out
    return [K8sObject(origin=origin, doc=data, spans=spans)]


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# --------------------------------------------------------------------------- the model


class WorkloadKind(StrEnum):
    """The workload kinds read (the ``kind`` field's spelling)."""

    DEPLOYMENT = "Deployment"
    STATEFULSET = "StatefulSet"
    DAEMONSET = "DaemonSet"
    CRONJOB = "CronJob"

    @property
    def resource(self) -> str:
        """The kubectl resource name (``deployment``)."""
        return self.value.lower()


class Operator(StrEnum):
    """``matchExpressions`` operators (``metav1.LabelSelectorOperator``)."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirement:
    """One ``matchExpressions`` entry."""

    key: str
    """The label key."""
    operator: Operator
    """The operator."""
    values: frozenset[str] = frozenset()
    """The values (In/NotIn)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelSelector:
    """A ``metav1.LabelSelector``; the empty selector matches everything."""

    match_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels that must be equal."""
    match_expressions: tuple[Requirement, ...] = ()
    """Requirements, all of which must hold."""

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy the selector.

        >>> s = LabelSelector(match_labels={"app": "web"},
        ...     match_expressions=(Requirement(key="tier", operator=Operator.NOT_IN,
        ...                                    values=frozenset({"canary"})),))
        >>> s.matches({"app": "web"}), s.matches({"app": "web", "tier": "canary"})
        (True, False)
        """
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for r in self.match_expressions:
            present = r.key in labels
            ok = {
                Operator.IN: present and labels.get(r.key) in r.values,
                Operator.NOT_IN: not present or labels.get(r.key) not in r.values,
                Operator.EXISTS: present,
                Operator.DOES_NOT_EXIST: not present,
            }[r.operator]
            if not ok:
                return False
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class Container:
    """One container (or init container) of a workload's pod template."""

    name: str
    """Its name (what ``kubectl set image`` addresses)."""
    image: ImageRef
    """Its image."""
    init: bool
    """An ``initContainers`` entry."""
    path: tuple[str | int, ...]
    """Key path of its ``image`` field inside the object."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """A Deployment, StatefulSet, DaemonSet or CronJob."""

    kind: WorkloadKind
    """Its kind."""
    namespace: str
    """Its namespace (``default`` when the manifest gives none)."""
    name: str
    """Its name."""
    replicas: int | None
    """Desired pods (Deployment/StatefulSet ``spec.replicas``, default 1; DaemonSet
    ``status.desiredNumberScheduled`` when known; None for a CronJob or an unknown count)."""
    ready: int | None
    """Ready pods from ``status`` (kubectl output); None when absent (manifests)."""
    labels: Mapping[str, str]
    """``metadata.labels``."""
    annotations: Mapping[str, str]
    """``metadata.annotations``."""
    pod_labels: Mapping[str, str]
    """The pod template's labels (what PDB selectors see)."""
    containers: tuple[Container, ...]
    """Init containers and containers, in manifest order (init first)."""
    max_unavailable: int | str | None
    """The rollout strategy's ``maxUnavailable`` as written (None: the kind's default)."""
    max_surge: int | str | None
    """The rollout strategy's ``maxSurge`` as written (None: the kind's default)."""
    strategy: str
    """``RollingUpdate``, ``Recreate`` or ``OnDelete`` (CronJob: ``Job``)."""
    source: K8sObject
    """The object it was read from."""

    @property
    def key(self) -> str:
        """``<namespace>/<kind>/<name>`` (lower-case kind)."""
        return f"{self.namespace}/{self.kind.resource}/{self.name}"

    @property
    def ref(self) -> str:
        """``<kind>/<name>`` as kubectl takes it."""
        return f"{self.kind.resource}/{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Pdb:
    """A PodDisruptionBudget."""

    namespace: str
    """Its namespace."""
    name: str
    """Its name."""
    selector: LabelSelector | None
    """The pod selector (None: selects nothing)."""
    min_available: int | str | None
    """``minAvailable`` (count or ``"N%"``)."""
    max_unavailable: int | str | None
    """``maxUnavailable`` (count or ``"N%"``)."""
    source: K8sObject
    """The object it was read from."""

    @property
    def key(self) -> str:
        """``<namespace>/pdb/<name>`` (also the planner service of the workloads it covers)."""
        return f"{self.namespace}/pdb/{self.name}"

    def covers(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether the PDB selects a pod with ``labels`` in ``namespace``."""
        return (
            self.selector is not None
            and namespace == self.namespace
            and self.selector.matches(labels)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Cluster:
    """The workloads and PDBs read from a set of files."""

    workloads: tuple[Workload, ...]
    """By namespace, kind, name."""
    pdbs: tuple[Pdb, ...]
    """By namespace, name."""

    def pdbs_for(self, w: Workload) -> tuple[Pdb, ...]:
        """The PDBs that select ``w``'s pods."""
        return tuple(p for p in self.pdbs if p.covers(w.namespace, w.pod_labels))

    def covered_by(self, pdb: Pdb) -> tuple[Workload, ...]:
        """The workloads whose pods ``pdb`` selects."""
        return tuple(w for w in self.workloads if pdb.covers(w.namespace, w.pod_labels))


class _Reader:
    """Typed field access that raises :class:`ManifestError` naming file, document, field."""

    def __init__(self, obj: K8sObject) -> None:
        self.obj = obj

    def fail(self, path: Sequence[str | int], reason: str) -> ManifestError:
        dotted = ""
        for p in path:
            dotted += f"[{p}]" if isinstance(p, int) else (f".{p}" if dotted else p)
        return ManifestError(f"{self.obj.origin.where(dotted)}: {reason}")

    def get(
        self, path: Sequence[str | int], kind: type | tuple[type, ...], *, required: bool
    ) -> Any:
        value: Any = self.obj.doc
        for i, p in enumerate(path):
            if isinstance(p, int):
                value = value[p]
                continue
            if not isinstance(value, dict):
                raise self.fail(path[:i], f"expected a mapping, got {_type(value)}")
            if p not in value or value[p] is None:
                if required:
                    raise self.fail(path[: i + 1], "required field is missing")
                return None
            value = value[p]
        if isinstance(value, bool) or not isinstance(value, kind):
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            expected = {
                "str": "a string",
                "int": "an integer",
                "dict": "a mapping",
                "list": "a list",
            }
            want = expected.get(names, names)
            raise self.fail(path, f"expected {want}, got {_type(value)} {value!r}"[:200])
        return value

    def labels(self, path: Sequence[str | int]) -> dict[str, str]:
        raw = self.get(path, dict, required=False) or {}
        out = {}
        for k, v in raw.items():
            if not isinstance(v, str):
                raise self.fail([*path, str(k)], f"a label value must be a string, got {_type(v)}")
            out[str(k)] = v
        return out

    def int_or_percent(self, path: Sequence[str | int]) -> int | str | None:
        value = self.get(path, (int, str), required=False)
        if isinstance(value, int) and value < 0:
            raise self.fail(path, f"must not be negative, got {value}")
        if isinstance(value, str):
            if value.isdigit():
                return int(value)
            if not re.fullmatch(r"\d+%", value):
                raise self.fail(path, f"expected a count or a percentage like '50%', got {value!r}")
        return value if isinstance(value, int | str) else None

    def selector(self, path: Sequence[str | int]) -> LabelSelector | None:
        raw = self.get(path, dict, required=False)
        if raw is None:
            return None
        reqs = []
        exprs = self.get([*path, "matchExpressions"], list, required=False) or []
        for i, _ in enumerate(exprs):
            at = [*path, "matchExpressions", i]
            key = self.get([*at, "key"], str, required=True)
            op_text = self.get([*at, "operator"], str, required=True)
            try:
                op = Operator(op_text)
            except ValueError as exc:
                raise self.fail(
                    [*at, "operator"],
                    f"unknown operator {op_text!r} (In, NotIn, Exists, DoesNotExist)",
                ) from exc
            values = self.get([*at, "values"], list, required=False) or []
            if op in {Operator.IN, Operator.NOT_IN} and not values:
                raise self.fail([*at, "values"], f"operator {op.value} needs at least one value")
            reqs.append(Requirement(key=key, operator=op, values=frozenset(str(v) for v in values)))
        return LabelSelector(
            match_labels=self.labels([*path, "matchLabels"]), match_expressions=tuple(reqs)
        )


def _workload(obj: K8sObject, kind: WorkloadKind) -> Workload:
    r = _Reader(obj)
    name = r.get(["metadata", "name"], str, required=True)
    namespace = r.get(["metadata", "namespace"], str, required=False) or "default"
    base: list[str | int] = (
        ["spec", "jobTemplate", "spec"] if kind is WorkloadKind.CRONJOB else ["spec"]
    )
    r.get(base, dict, required=True)
    tpl: list[str | int] = [*base, "template"]
    r.get([*tpl, "spec"], dict, required=True)
    containers: list[Container] = []
    seen: set[str] = set()
    for section in ("initContainers", "containers"):
        items = r.get([*tpl, "spec", section], list, required=section == "containers")
        if section == "containers" and not items:
            raise r.fail([*tpl, "spec", "containers"], "needs at least one container")
        for i, _ in enumerate(items or []):
            at: list[str | int] = [*tpl, "spec", section, i]
            r.get(at, dict, required=True)
            cname = r.get([*at, "name"], str, required=True)
            if cname in seen:
                raise r.fail([*at, "name"], f"duplicate container name {cname!r}")
            seen.add(cname)
            text = r.get([*at, "image"], str, required=True)
            try:
                ref = ImageRef.parse(text)
            except ValueError as exc:
                raise r.fail([*at, "image"], str(exc)) from exc
            containers.append(
                Container(
                    name=cname, image=ref, init=section == "initContainers", path=(*at, "image")
                )
            )
    replicas: int | None
    ready: int | None = r.get(["status", "readyReplicas"], int, required=False)
    strategy_key = {
        WorkloadKind.DEPLOYMENT: "strategy",
        WorkloadKind.STATEFULSET: "updateStrategy",
        WorkloadKind.DAEMONSET: "updateStrategy",
        WorkloadKind.CRONJOB: "",
    }[kind]
    if kind is WorkloadKind.CRONJOB:
        replicas, strategy, mu, ms = None, "Job", None, None
    else:
        if kind is WorkloadKind.DAEMONSET:
            replicas = r.get(["status", "desiredNumberScheduled"], int, required=False)
            ready = r.get(["status", "numberReady"], int, required=False)
        else:
            replicas = r.get(["spec", "replicas"], int, required=False)
            replicas = 1 if replicas is None else replicas
            if replicas < 0:
                raise r.fail(["spec", "replicas"], f"must not be negative, got {replicas}")
        r.get(["spec", strategy_key], dict, required=False)
        strategy = r.get(["spec", strategy_key, "type"], str, required=False) or "RollingUpdate"
        if strategy not in {"RollingUpdate", "Recreate", "OnDelete"}:
            raise r.fail(["spec", strategy_key, "type"], f"unknown strategy {strategy!r}")
        mu = r.int_or_percent(["spec", strategy_key, "rollingUpdate", "maxUnavailable"])
        ms = r.int_or_percent(["spec", strategy_key, "rollingUpdate", "maxSurge"])
    return Workload(
        kind=kind,
        namespace=namespace,
        name=name,
        replicas=replicas,
        ready=ready,
        labels=r.labels(["metadata", "labels"]),
        annotations=r.labels(["metadata", "annotations"]),
        pod_labels=r.labels([*tpl, "metadata", "labels"]),
        containers=tuple(containers),
        max_unavailable=mu,
        max_surge=ms,
        strategy=strategy,
        source=obj,
    )


def _pdb(obj: K8sObject) -> Pdb:
    r = _Reader(obj)
    name = r.get(["metadata", "name"], str, required=True)
    min_a = r.int_or_percent(["spec", "minAvailable"])
    max_u = r.int_or_percent(["spec", "maxUnavailable"])
    if min_a is not None and max_u is not None:
        raise r.fail(["spec"], "minAvailable and maxUnavailable cannot both be set")
    return Pdb(
        namespace=r.get(["metadata", "namespace"], str, required=False) or "default",
        name=name,
        selector=r.selector(["spec", "selector"]),
        min_available=min_a,
        max_unavailable=max_u,
        source=obj,
    )


def read_cluster(objects: Iterable[K8sObject]) -> Cluster:
    """The workloads and PDBs among ``objects`` (other kinds are ignored)."""
    workloads: dict[str, Workload] = {}
    pdbs: dict[str, Pdb] = {}
    for obj in objects:
        if obj.kind in WorkloadKind.__members__.values():
            w = _workload(obj, WorkloadKind(obj.kind))
            if w.key in workloads:
                first = workloads[w.key].source.origin.where()
                raise ManifestError(f"{obj.origin.where()}: {w.key} is also defined at {first}")
            workloads[w.key] = w
        elif obj.kind == "PodDisruptionBudget":
            p = _pdb(obj)
            pdbs[p.key] = p
    return Cluster(
        workloads=tuple(workloads[k] for k in sorted(workloads)),
        pdbs=tuple(pdbs[k] for k in sorted(pdbs)),
    )


# --------------------------------------------------------------------------- budgets


def scaled(value: int | str, total: int, *, up: bool) -> int:
    """A count, or a percentage of ``total`` rounded up or down (``intstr`` semantics).

    >>> scaled("25%", 3, up=False), scaled("25%", 3, up=True), scaled(2, 3, up=True)
    (0, 1, 2)
    """
    if isinstance(value, int):
        return value
    share = total * int(value.rstrip("%")) / 100
    return math.ceil(share) if up else math.floor(share)


def pdb_allowed(pdb: Pdb, expected: int, healthy: int | None = None) -> int:
    """Disruptions ``pdb`` allows with ``expected`` pods of which ``healthy`` are healthy
    (default: all); the disruption controller's rule (module docstring).

    >>> p = Pdb(namespace="n", name="p", selector=None, min_available=2, max_unavailable=None,
    ...         source=None)  # type: ignore[arg-type]
    >>> pdb_allowed(p, 3), pdb_allowed(p, 3, healthy=2)
    (1, 0)
    >>> pdb_allowed(dataclasses.replace(p, min_available=None, max_unavailable="50%"), 3)
    2
    """
    healthy = expected if healthy is None else healthy
    if pdb.max_unavailable is not None:
        desired = max(0, expected - scaled(pdb.max_unavailable, expected, up=True))
    elif pdb.min_available is not None:
        desired = scaled(pdb.min_available, expected, up=True)
    else:
        desired = 0
    return max(0, healthy - desired)


def rollout_unavailable(w: Workload) -> int | None:
    """How many pods ``w``'s rolling update may take down at once (None: not a rolling update
    or unknown replicas). Defaults: Deployment 25% rounded down (surge 25% rounded up),
    StatefulSet 1, DaemonSet 1 (a percentage rounds up). ``Recreate`` takes down all.
    """
    if w.kind is WorkloadKind.CRONJOB or w.replicas is None or w.strategy == "OnDelete":
        return None
    if w.strategy == "Recreate":
        return w.replicas
    if w.kind is WorkloadKind.DEPLOYMENT:
        return min(
            w.replicas,
            scaled(
                w.max_unavailable if w.max_unavailable is not None else "25%", w.replicas, up=False
            ),
        )
    mu = w.max_unavailable if w.max_unavailable is not None else 1
    return min(
        w.replicas,
        max(1, scaled(mu, w.replicas, up=True))
        if w.kind is WorkloadKind.STATEFULSET
        else scaled(mu, w.replicas, up=True),
    )


def workload_budget(cluster: Cluster, w: Workload) -> tuple[int | None, tuple[Pdb, ...]]:
    """The fewest disruptions any PDB covering ``w`` allows (None when no PDB covers it or a
    covered workload's replicas are unknown), and the PDBs."""
    pdbs = cluster.pdbs_for(w)
    budgets = []
    for p in pdbs:
        covered = cluster.covered_by(p)
        if any(c.replicas is None for c in covered):
            return None, pdbs
        expected = sum(c.replicas or 0 for c in covered)
        readies = [c.ready for c in covered]
        healthy = None if any(x is None for x in readies) else sum(x or 0 for x in readies)
        budgets.append(pdb_allowed(p, expected, healthy))
    return (min(budgets) if budgets else None), pdbs


# --------------------------------------------------------------------------- rollout plan


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageUpdate:
    """One container's image change."""

    container: Container
    """The container."""
    new: ImageRef
    """The image it will run."""


class SkipReason(StrEnum):
    """Why a workload with an image update is not in the plan."""

    NO_FINDINGS = "no_findings"
    """No known finding of the old image is closed by the update (scan it first)."""
    UNSCHEDULED = "unscheduled"
    """The planner could not place it (reason in the message)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadRollout:
    """The rollout of one workload: its image updates, budget and commands."""

    workload: Workload
    """The workload."""
    asset: Asset
    """Its planner asset."""
    updates: tuple[ImageUpdate, ...]
    """Image changes, in container order."""
    pdbs: tuple[str, ...]
    """Keys of the PDBs covering it."""
    budget: int | None
    """Disruptions its PDBs allow (None: no PDB or unknown)."""
    unavailable: int | None
    """Pods its rolling update takes down at once, after any clamp."""
    strategy_patch: Mapping[str, Any] | None
    """A merge patch lowering the rollout's maxUnavailable (or raising maxSurge) to the budget."""
    warnings: tuple[str, ...]
    """Things a human should know (unpinned image, OnDelete, budget 0, ...)."""
    commands: tuple[str, ...]
    """kubectl commands, in order."""
    change: Change | None = None
    """The planner's change (None when skipped)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Skipped:
    """A workload update left out of the plan, and why."""

    workload: str
    """Workload key."""
    reason: SkipReason
    """Why."""
    message: str
    """Human explanation."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RolloutPlan:
    """Image rollouts planned like host changes."""

    plan: Plan
    """The planner's plan (changes, unscheduled, summary)."""
    rollouts: tuple[WorkloadRollout, ...]
    """Scheduled rollouts, in the plan's order (emergency first, then by slot and wave)."""
    skipped: tuple[Skipped, ...]
    """Workloads with updates that are not scheduled."""

    @property
    def commands(self) -> tuple[str, ...]:
        """Every rollout's commands, in plan order."""
        return tuple(c for r in self.rollouts for c in r.commands)


def parse_image_map(entries: Iterable[str]) -> list[tuple[ImageRef, ImageRef]]:
    """``OLD=NEW`` pairs (``ValueError`` naming the entry).

    >>> [(o.name, n.digest[:10]) for o, n in parse_image_map(["app:1=app:1.1@sha256:" + "c" * 64])]
    [('docker.io/library/app', 'sha256:ccc')]
    """
    out = []
    for e in entries:
        old, sep, new = e.partition("=")
        if not sep:
            raise ValueError(f"image map entry {e!r}: expected OLD=NEW")
        try:
            out.append((ImageRef.parse(old.strip()), ImageRef.parse(new.strip())))
        except ValueError as exc:
            raise ValueError(f"image map entry {e!r}: {exc}") from exc
    return out


def image_updates(
    cluster: Cluster, image_map: Sequence[tuple[ImageRef, ImageRef]]
) -> dict[str, tuple[ImageUpdate, ...]]:
    """Per workload key, the containers whose image an ``OLD`` of ``image_map`` matches (the
    first matching entry wins) and their new image; containers already on the new image are
    left out."""
    out: dict[str, tuple[ImageUpdate, ...]] = {}
    for w in cluster.workloads:
        ups = []
        for c in w.containers:
            for old, new in image_map:
                if c.image.matches(old):
                    if c.image.raw != new.raw:
                        ups.append(ImageUpdate(container=c, new=new))
                    break
        if ups:
            out[w.key] = tuple(ups)
    return out


_ENV = {
    "prod": Environment.PROD,
    "production": Environment.PROD,
    "staging": Environment.STAGING,
    "stage": Environment.STAGING,
    "dev": Environment.DEV,
    "development": Environment.DEV,
}
WINDOW_ANNOTATION = "patchwarden.io/maintenance-window"
"""Annotation naming the policy window of a workload."""
CRITICALITY_ANNOTATION = "patchwarden.io/criticality"
"""Annotation giving a workload's criticality, 1..5."""


def workload_asset(w: Workload, service: str) -> Asset:
    """The planner asset of a workload: id ``k8s:<key>``, kind image; environment from the
    ``environment``/``env`` label (default prod), owner from ``team``/``owner``, window and
    criticality from the ``patchwarden.io/*`` annotations; tags ``k8s``, the kind, and
    ``namespace:<ns>``."""
    labels = w.labels
    env = _ENV.get(
        (labels.get("environment") or labels.get("env") or "prod").lower(), Environment.PROD
    )
    crit_text = w.annotations.get(CRITICALITY_ANNOTATION, "3")
    criticality = int(crit_text) if crit_text.isdigit() and 1 <= int(crit_text) <= 5 else 3
    return Asset(
        id=AssetId(f"k8s:{w.key}"),
        kind=AssetKind.IMAGE,
        environment=env,
        criticality=criticality,
        service=service,
        owner=labels.get("team") or labels.get("owner"),
        tags=("k8s", w.kind.resource, f"namespace:{w.namespace}"),
        maintenance_window=w.annotations.get(WINDOW_ANNOTATION),
    )


def _image_action(asset: Asset, up: ImageUpdate, closes: Sequence[Action]) -> Action:
    scored: dict[tuple[str, str], ScoredFinding] = {}
    for a in closes:
        for s in a.closes:
            scored.setdefault((s.finding.vulnerability, s.finding.package), s)
    ordered = tuple(sorted(scored.values(), key=lambda s: (-s.risk.score, s.finding.vulnerability)))
    return Action(
        id=f"{asset.id}/{up.container.name}",
        asset=asset.id,
        ecosystem="OCI",
        package=up.container.image.name,
        binaries=(up.container.name,),
        installed_version=up.container.image.version,
        target_version=up.new.version,
        closes=ordered,
        remaining=(),
        risk_removed=sum(s.risk.score for s in ordered),
    )


def _restart(action: Action) -> Disruption | None:
    # A rollout replaces pods: a restart of the workload, never a node reboot.
    return Disruption.RESTART if action.ecosystem == "OCI" else None


def _kubectl(w: Workload, *args: str) -> str:
    return shlex.join(["kubectl", "-n", w.namespace, *args])


def _rollout(
    w: Workload, ups: tuple[ImageUpdate, ...], budget: int | None
) -> tuple[int | None, dict[str, Any] | None, list[str], list[str]]:
    warnings = [
        f"{u.container.name}: new image {u.new.raw!r} has no digest; the manifest is not pinned"
        for u in ups
        if not u.new.pinned
    ]
    unavailable = rollout_unavailable(w)
    patch: dict[str, Any] | None = None
    key = "strategy" if w.kind is WorkloadKind.DEPLOYMENT else "updateStrategy"
    if budget is not None and unavailable is not None and unavailable > budget:
        if w.strategy == "Recreate":
            warnings.append(
                f"strategy Recreate takes all {w.replicas} pods down; the pdb allows {budget}"
            )
        elif budget == 0 and w.kind is WorkloadKind.STATEFULSET:
            warnings.append(
                "the pdb allows no disruption and a statefulset cannot surge: the rollout"
                " will take one pod below the budget"
            )
        else:
            rolling: dict[str, Any] = {"maxUnavailable": budget}
            if budget == 0:
                rolling["maxSurge"] = 1
            patch = {"spec": {key: {"rollingUpdate": rolling}}}
            unavailable = budget
    if w.strategy == "OnDelete":
        warnings.append("updateStrategy OnDelete: pods keep the old image until deleted one by one")
    cmds = []
    if patch is not None:
        cmds.append(
            _kubectl(
                w, "patch", w.ref, "--type=merge", "-p", json.dumps(patch, separators=(",", ":"))
            )
        )
    cmds.append(
        _kubectl(w, "set", "image", w.ref, *(f"{u.container.name}={u.new.raw}" for u in ups))
    )
    if w.kind is not WorkloadKind.CRONJOB and w.strategy != "OnDelete":
        cmds.append(_kubectl(w, "rollout", "status", w.ref, "--timeout=15m"))
    return unavailable, patch, warnings, cmds


def plan_rollout(
    cluster: Cluster,
    updates: Mapping[str, tuple[ImageUpdate, ...]],
    image_actions: Sequence[tuple[ImageRef, Sequence[Action]]],
    policy: PlanPolicy,
    now: dt.datetime,
    *,
    fleet: Iterable[Asset] = (),
    **schedule_args: Any,
) -> RolloutPlan:
    """Plan ``updates`` (from :func:`image_updates`) with the host planner (module docstring).

    ``image_actions`` pairs an image reference with the actions planned for that scanned
    image's asset (``prioritize.plan_actions``); an update closes the findings of every entry
    whose reference the container's old image matches. ``fleet`` adds other assets (they only
    matter for ring sizes); ``schedule_args`` go to :func:`~patchwarden.plan.schedule`
    (``kev``, ``predicted_failure``).
    """
    by_key = {w.key: w for w in cluster.workloads}
    assets: list[Asset] = []
    actions: list[Action] = []
    services: dict[str, Amount] = {}
    info: dict[AssetId, tuple[Workload, tuple[ImageUpdate, ...], int | None, tuple[Pdb, ...]]] = {}
    skipped: list[Skipped] = []
    for key in sorted(updates):
        w = by_key[key]
        budget, pdbs = workload_budget(cluster, w)
        service = pdbs[0].key if pdbs else f"{w.namespace}/{w.name}"
        if pdbs:
            services[service] = Amount(count=1)
        asset = workload_asset(w, service)
        ups = updates[key]
        mine = []
        for u in ups:
            closes = [
                a for ref, acts in image_actions if u.container.image.matches(ref) for a in acts
            ]
            action = _image_action(asset, u, closes)
            if action.closes:
                mine.append(action)
        if not mine:
            skipped.append(
                Skipped(
                    workload=key,
                    reason=SkipReason.NO_FINDINGS,
                    message=(
                        "no known finding of "
                        + ", ".join(sorted({u.container.image.raw for u in ups}))
                        + " is"
                        " closed by the update; scan the image ('patchwarden image scan') first"
                    ),
                )
            )
            continue
        assets.append(asset)
        actions.extend(mine)
        info[asset.id] = (w, ups, budget, pdbs)
    others = [a for a in fleet if a.id not in info]
    pol = dataclasses.replace(
        policy, max_unavailable_by_service={**policy.max_unavailable_by_service, **services}
    )
    plan = schedule(actions, [*assets, *others], pol, now, metadata=_restart, **schedule_args)
    rollouts = []
    order = sorted(plan.changes, key=lambda c: (not c.emergency, c.start, c.wave, c.asset))
    for change in order:
        if change.asset not in info:
            continue
        w, ups, budget, pdbs = info[change.asset]
        closing = {a.binaries[0] for a in change.actions}
        ups = tuple(u for u in ups if u.container.name in closing)
        unavailable, patch, warnings, cmds = _rollout(w, ups, budget)
        if len(pdbs) > 1:
            warnings.append(
                f"covered by {len(pdbs)} pdbs ({', '.join(p.key for p in pdbs)}):"
                " evictions of its pods fail"
            )
        rollouts.append(
            WorkloadRollout(
                workload=w,
                asset=next(a for a in assets if a.id == change.asset),
                updates=ups,
                pdbs=tuple(p.key for p in pdbs),
                budget=budget,
                unavailable=unavailable,
                strategy_patch=patch,
                warnings=tuple(warnings),
                commands=tuple(cmds),
                change=change,
            )
        )
    for un in plan.unscheduled:
        if un.asset in info:
            key = info[un.asset][0].key
            if not any(s.workload == key for s in skipped):
                skipped.append(
                    Skipped(
                        workload=key,
                        reason=SkipReason.UNSCHEDULED,
                        message=f"{un.reason.value}: {un.message}",
                    )
                )
    return RolloutPlan(
        plan=plan,
        rollouts=tuple(rollouts),
        skipped=tuple(sorted(skipped, key=lambda s: s.workload)),
    )


# --------------------------------------------------------------------------- patched manifests


def _quoted(value: str, style: str | None) -> str:
    if style == '"':
        return json.dumps(value)
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    return value


def patch_manifests(rollouts: Iterable[WorkloadRollout]) -> dict[Path, str]:
    """The text of every file that holds a rolled-out workload, with each updated container's
    ``image`` scalar replaced by the new reference, in the scalar's own quoting; every other
    byte of the file is kept. Files read from JSON stay JSON (a double-quoted scalar)."""
    edits: dict[Path, list[tuple[Span, str]]] = defaultdict(list)
    for r in rollouts:
        obj = r.workload.source
        for u in r.updates:
            span = obj.spans.get(u.container.path)
            if span is None:
                raise ManifestError(
                    f"{obj.origin.where()}: no position recorded for {u.container.path}"
                )
            edits[obj.origin.path].append((span, u.new.raw))
    out: dict[Path, str] = {}
    for path, changes in edits.items():
        text = path.read_text(encoding="utf-8")
        for span, value in sorted(changes, key=lambda c: c[0].start, reverse=True):
            text = text[: span.start] + _quoted(value, span.style) + text[span.end :]
        out[path] = text
    return out


# --------------------------------------------------------------------------- node drains


@dataclass(frozen=True, slots=True, kw_only=True)
class Pod:
    """A pod as the drain planner sees it."""

    namespace: str
    """Namespace."""
    name: str
    """Name."""
    node: str | None
    """``spec.nodeName``."""
    labels: Mapping[str, str]
    """Labels."""
    healthy: bool
    """Running with condition Ready true."""
    daemonset: bool
    """Owned by a DaemonSet (``kubectl drain --ignore-daemonsets`` leaves it)."""
    mirror: bool
    """A static (mirror) pod, which drain does not evict."""
    terminal: bool
    """Phase Succeeded or Failed."""


def read_nodes(objects: Iterable[K8sObject]) -> list[str]:
    """Names of the ``Node`` objects."""
    names = []
    for obj in objects:
        if obj.kind == "Node":
            names.append(_Reader(obj).get(["metadata", "name"], str, required=True))
    return sorted(names)


def read_pods(objects: Iterable[K8sObject]) -> list[Pod]:
    """The ``Pod`` objects (``kubectl get pods -A -o json``)."""
    pods = []
    for obj in objects:
        if obj.kind != "Pod":
            continue
        r = _Reader(obj)
        conditions = r.get(["status", "conditions"], list, required=False) or []
        ready = any(
            isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
            for c in conditions
        )
        phase = r.get(["status", "phase"], str, required=False) or "Pending"
        owners = r.get(["metadata", "ownerReferences"], list, required=False) or []
        annotations = r.labels(["metadata", "annotations"])
        pods.append(
            Pod(
                namespace=r.get(["metadata", "namespace"], str, required=False) or "default",
                name=r.get(["metadata", "name"], str, required=True),
                node=r.get(["spec", "nodeName"], str, required=False),
                labels=r.labels(["metadata", "labels"]),
                healthy=phase == "Running" and ready,
                daemonset=any(isinstance(o, dict) and o.get("kind") == "DaemonSet" for o in owners),
                mirror="kubernetes.io/config.mirror" in annotations,
                terminal=phase in {"Succeeded", "Failed"},
            )
        )
    return pods


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainStep:
    """Nodes drained and rebooted together."""

    index: int
    """1-based."""
    nodes: tuple[str, ...]
    """The nodes."""
    evictions: Mapping[str, int]
    """Per PDB key, pods of that PDB evicted in this step (only PDBs touched)."""
    commands: tuple[str, ...]
    """cordon, drain, reboot, wait, uncordon, wait for PDBs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockedNode:
    """A node whose drain alone would exceed a PDB."""

    node: str
    """The node."""
    pdb: str
    """The PDB key."""
    pods: int
    """Pods of the PDB on the node."""
    allowed: int
    """Disruptions the PDB allows."""

    @property
    def message(self) -> str:
        """Human explanation."""
        return (
            f"node {self.node!r} runs {self.pods} pod(s) of pdb {self.pdb}, which allows"
            f" {self.allowed} disruption(s): draining it would block; scale up or spread the"
            " workload first"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainPlan:
    """Node reboots in PDB-safe steps."""

    steps: tuple[DrainStep, ...]
    """In order."""
    blocked: tuple[BlockedNode, ...]
    """Nodes not planned, one entry per PDB in the way."""
    allowed: Mapping[str, int]
    """Disruptions each PDB allows now."""

    @property
    def commands(self) -> tuple[str, ...]:
        """All steps' commands."""
        return tuple(c for s in self.steps for c in s.commands)


def plan_drain(
    reboot: Sequence[str],
    pods: Iterable[Pod],
    pdbs: Iterable[Pdb],
    *,
    max_parallel: int = 1,
    reboot_command: str = "ssh {node} sudo systemctl reboot",
    timeout: str = "15m",
) -> DrainPlan:
    """Order the reboots of the nodes ``reboot`` (in the given order, greedily batched up to
    ``max_parallel``) so that no step evicts more pods of a PDB than it allows now.

    Counted pods: not terminal, not DaemonSet-owned, not mirror pods (drain leaves those),
    covered by the PDB (namespace and selector). A PDB's expected count is its covered pods
    and its healthy count the Running+Ready ones (:func:`pdb_allowed`). Each step restores
    the budget before the next one (wait for the node to be Ready, uncordon, wait for every
    touched PDB's ``currentHealthy`` to be back), so budgets are per step.
    """
    if max_parallel < 1:
        raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
    pdb_list = list(pdbs)
    covered: dict[str, list[Pod]] = {p.key: [] for p in pdb_list}
    per_node: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for pod in pods:
        if pod.terminal or pod.daemonset or pod.mirror:
            continue
        for p in pdb_list:
            if p.covers(pod.namespace, pod.labels):
                covered[p.key].append(pod)
                if pod.node is not None:
                    per_node[pod.node][p.key] += 1
    allowed = {
        p.key: pdb_allowed(p, len(covered[p.key]), sum(x.healthy for x in covered[p.key]))
        for p in pdb_list
    }
    healthy = {k: sum(x.healthy for x in v) for k, v in covered.items()}
    by_key = {p.key: p for p in pdb_list}
    blocked: list[BlockedNode] = []
    todo: list[str] = []
    for node in dict.fromkeys(reboot):
        over = [
            BlockedNode(node=node, pdb=k, pods=n, allowed=allowed[k])
            for k, n in sorted(per_node[node].items())
            if n > allowed[k]
        ]
        if over:
            blocked.extend(over)
        else:
            todo.append(node)
    steps: list[DrainStep] = []
    while todo:
        batch = [todo.pop(0)]
        used = dict(per_node[batch[0]])
        for node in list(todo):
            if len(batch) >= max_parallel:
                break
            if all(used.get(k, 0) + n <= allowed[k] for k, n in per_node[node].items()):
                batch.append(node)
                todo.remove(node)
                for k, n in per_node[node].items():
                    used[k] = used.get(k, 0) + n
        touched = {k: n for k, n in sorted(used.items()) if n}
        cmds: list[str] = []
        for nd in batch:
            cmds.append(shlex.join(["kubectl", "cordon", nd]))
        for nd in batch:
            cmds.append(
                shlex.join(
                    [
                        "kubectl",
                        "drain",
                        nd,
                        "--ignore-daemonsets",
                        "--delete-emptydir-data",
                        f"--timeout={timeout}",
                    ]
                )
            )
        for nd in batch:
            cmds.append(reboot_command.format(node=shlex.quote(nd)))
        for nd in batch:
            cmds.append(
                shlex.join(
                    [
                        "kubectl",
                        "wait",
                        "--for=condition=Ready",
                        f"node/{nd}",
                        f"--timeout={timeout}",
                    ]
                )
            )
            cmds.append(shlex.join(["kubectl", "uncordon", nd]))
        for k in touched:
            p = by_key[k]
            cmds.append(
                shlex.join(
                    [
                        "kubectl",
                        "-n",
                        p.namespace,
                        "wait",
                        f"pdb/{p.name}",
                        f"--for=jsonpath={{.status.currentHealthy}}={healthy[k]}",
                        f"--timeout={timeout}",
                    ]
                )
            )
        steps.append(
            DrainStep(
                index=len(steps) + 1, nodes=tuple(batch), evictions=touched, commands=tuple(cmds)
            )
        )
    return DrainPlan(steps=tuple(steps), blocked=tuple(blocked), allowed=allowed)


__all__ = [
    "BlockedNode",
    "Cluster",
    "Container",
    "DrainPlan",
    "DrainStep",
    "ImageRef",
    "ImageUpdate",
    "K8sObject",
    "LabelSelector",
    "Operator",
    "Origin",
    "Pdb",
    "Pod",
    "Requirement",
    "RolloutPlan",
    "SkipReason",
    "Skipped",
    "Workload",
    "WorkloadKind",
    "WorkloadRollout",
    "image_updates",
    "load_objects",
    "parse_image_map",
    "patch_manifests",
    "pdb_allowed",
    "plan_drain",
    "plan_rollout",
    "read_cluster",
    "read_nodes",
    "read_pods",
    "rollout_unavailable",
    "scaled",
    "workload_asset",
    "workload_budget",
]
