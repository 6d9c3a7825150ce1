"""Remediation for images: which upgrades fix an image, in which layer, and how to rebuild it.

Input: an :class:`~patchwarden.inventory.oci.ImageInventory` (what the image holds, layer by
layer) and the upgrade :class:`~patchwarden.prioritize.Action` values planned for its asset.
Output (:func:`plan_image_remediation`), pure and deterministic:

* one :class:`ImageUpgrade` per action, with the layers that brought the package and the
  file that records it;
* when a candidate base image is given (a scanned tarball or layout), whether it already
  ships a version at or above the target (:class:`BaseVerdict`) -- then the fix is
  ``FROM <candidate>`` instead of a package upgrade;
* the ``RUN`` instructions that upgrade the rest in place (``apt-get install
  --only-upgrade``, ``apk upgrade``, ``dnf upgrade``, ``pip install name==version`` with the
  image's own interpreter, ``npm install --save-exact`` in the project folder), and, given
  the Dockerfile, the same change as a unified diff. Without a Dockerfile the suggestion is a
  patch layer ``FROM <image>`` + the instructions.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

from patchwarden.errors import InvalidVersion, UnknownEcosystem
from patchwarden.inventory.oci import ImageInventory, LayeredPackage
from patchwarden.prioritize import Action
from patchwarden.service import package_key
from patchwarden.versions import scheme_for


class BaseVerdict(StrEnum):
    """What the candidate base image does for one upgrade."""

    FIXED_BY_BASE = "fixed_by_base"
    """The candidate ships the package at or above the target version."""
    NOT_FIXED_BY_BASE = "not_fixed_by_base"
    """The candidate ships the package, still below the target version."""
    NOT_IN_BASE = "not_in_base"
    """The candidate does not ship the package (a later layer installed it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageUpgrade:
    """One package upgrade in one image."""

    action: Action
    """The planned upgrade (target version, findings it closes)."""
    packages: tuple[LayeredPackage, ...]
    """The installed packages it upgrades, with their layers."""
    base: BaseVerdict | None = None
    """The candidate base image's verdict, when one was given."""
    base_version: str | None = None
    """The version the candidate base ships (compared like the advisories compare)."""

    @property
    def layers(self) -> tuple[int, ...]:
        """Indexes of the layers that brought the packages."""
        return tuple(sorted({p.layer for p in self.packages}))


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRemediation:
    """Everything that fixes one image."""

    image: ImageInventory
    """The scanned image."""
    upgrades: tuple[ImageUpgrade, ...]
    """One per action, in the actions' order (highest risk removed first)."""
    new_base: str | None
    """``FROM`` reference of the candidate base, when it fixes at least one upgrade."""
    instructions: tuple[str, ...]
    """Dockerfile instructions for the upgrades the base does not fix."""
    dockerfile_diff: str | None
    """Unified diff of the patched Dockerfile, when a Dockerfile was given."""
    patch_layer: str
    """A Dockerfile that patches the image as is: ``FROM <image>`` plus the instructions."""


def _base(eco: str) -> str:
    return eco.split(":", 1)[0]


def _at_least(version: str, target: str, ecosystem: str) -> bool:
    """Whether ``version >= target`` in the ecosystem's ordering (string equality if unknown).

    >>> _at_least("3.0.15-1~deb12u1", "3.0.11-1~deb12u2", "Debian:12")
    True
    >>> _at_least("2.10", "2.10.1", "PyPI")
    False
    """
    try:
        scheme = scheme_for(ecosystem)
        return scheme.parse(version) >= scheme.parse(target)
    except (InvalidVersion, UnknownEcosystem):
        return version == target


def _installed_for(action: Action, image: ImageInventory) -> tuple[LayeredPackage, ...]:
    out = []
    for lp in image.packages:
        if lp.package.ecosystem != action.ecosystem:
            continue
        key = package_key(lp.package)
        if (key is not None and key.name == action.package) or lp.package.name in action.binaries:
            out.append(lp)
    return tuple(out)


def _base_verdict(action: Action, base: ImageInventory) -> tuple[BaseVerdict, str | None]:
    versions = []
    for lp in base.packages:
        if _base(lp.package.ecosystem) != _base(action.ecosystem):
            continue
        key = package_key(lp.package)
        if key is not None and key.name == action.package:
            versions.append(key.version)
    if not versions:
        return BaseVerdict.NOT_IN_BASE, None
    lowest = versions[0]
    for v in versions[1:]:
        if not _at_least(v, lowest, action.ecosystem):
            lowest = v
    if _at_least(lowest, action.target_version, action.ecosystem):
        return BaseVerdict.FIXED_BY_BASE, lowest
    return BaseVerdict.NOT_FIXED_BY_BASE, lowest


def _quote(words: Iterable[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)


def upgrade_instructions(upgrades: Iterable[ImageUpgrade], image: ImageInventory) -> list[str]:
    """``RUN`` lines that upgrade ``upgrades`` inside the image (see the module doc)."""
    os_pkgs: dict[str, set[str]] = {}
    pip: dict[str, set[str]] = {}
    npm: dict[str, set[str]] = {}
    for up in upgrades:
        a = up.action
        base = _base(a.ecosystem)
        names = {lp.package.name for lp in up.packages} or set(a.binaries) or {a.package}
        if base in {"Debian", "Ubuntu", "Alpine", "Red Hat", "Rocky Linux", "AlmaLinux"}:
            os_pkgs.setdefault(base, set()).update(names)
        elif base == "PyPI":
            for lp in up.packages or ():
                pip.setdefault(str(PurePosixPath(lp.path).parent), set()).add(
                    f"{lp.package.name}=={a.target_version}"
                )
        elif base == "npm":
            for lp in up.packages:
                project = str(PurePosixPath(lp.path.split("#", 1)[0]).parent)
                project = project.removesuffix("/node_modules")
                npm.setdefault(project, set()).add(f"{lp.package.name}@{a.target_version}")
    lines: list[str] = []
    for base, names in sorted(os_pkgs.items()):
        pkgs = _quote(sorted(names))
        if base in {"Debian", "Ubuntu"}:
            lines.append(
                "RUN apt-get update && apt-get install -y --no-install-recommends "
                f"--only-upgrade {pkgs} && rm -rf /var/lib/apt/lists/*"
            )
        elif base == "Alpine":
            lines.append(f"RUN apk upgrade --no-cache {pkgs}")
        else:
            lines.append(f"RUN dnf upgrade -y {pkgs} && dnf clean all")
    for folder, pins in sorted(pip.items()):
        python = _python_for(folder, image)
        if python is not None:
            lines.append(f"RUN {python} -m pip install --no-cache-dir {_quote(sorted(pins))}")
        else:
            lines.append(
                "RUN pip install --no-cache-dir --upgrade --no-deps "
                f"--target {shlex.quote(folder)} {_quote(sorted(pins))}"
            )
    for project, specs in sorted(npm.items()):
        lines.append(
            f"RUN cd {shlex.quote(project)} && npm install --save-exact {_quote(sorted(specs))}"
        )
    return lines


def _python_for(site_packages: str, image: ImageInventory) -> str | None:
    """The image's interpreter that owns a ``<prefix>/lib/pythonX.Y/site-packages`` folder.

    A ``--target`` folder has no interpreter; then None.
    """
    m = re.match(r"^(.*)/lib/(python3(?:\.\d+)?)/(?:site|dist)-packages$", site_packages)
    if m is None:
        return None
    prefix, version = m.group(1), m.group(2)
    for name in (version, "python3", "python"):
        candidate = f"{prefix}/bin/{name}"
        if candidate in image.existing_paths:
            return candidate
    return None


_FROM = re.compile(r"^\s*FROM\s+", re.IGNORECASE)
_TAIL = re.compile(r"^\s*(CMD|ENTRYPOINT)\b", re.IGNORECASE)


def patch_dockerfile(
    text: str,
    instructions: list[str],
    *,
    new_base: str | None = None,
    user: str | None = None,
    name: str = "Dockerfile",
) -> str:
    """A unified diff that adds ``instructions`` to the final stage of a Dockerfile.

    OS upgrades go right after the final ``FROM`` (so later layers build on patched
    packages), language pins before the final ``CMD``/``ENTRYPOINT`` (after the
    application's own install steps). ``new_base`` replaces the final stage's base image.
    When the image runs as a non-root ``user``, the lines are wrapped in ``USER root`` ...
    ``USER <user>``.

    >>> print(patch_dockerfile("FROM debian:12\\nCMD [\\"sh\\"]\\n",
    ...     ["RUN apk upgrade --no-cache musl"], name="D"), end="")
    --- a/D
    +++ b/D
    @@ -1,2 +1,3 @@
     FROM debian:12
    +RUN apk upgrade --no-cache musl
     CMD ["sh"]
    """
    lines = text.splitlines(keepends=True)
    froms = [i for i, line in enumerate(lines) if _FROM.match(line)]
    if not froms:
        raise ValueError(f"{name}: no FROM instruction")
    start = froms[-1]
    tail = next((i for i in range(start + 1, len(lines)) if _TAIL.match(lines[i])), len(lines))
    os_lines = [i for i in instructions if not re.search(r"\b(pip|npm) install\b", i)]
    lang_lines = [i for i in instructions if i not in os_lines]

    def wrap(block: list[str]) -> list[str]:
        if not block:
            return []
        if user and user not in {"root", "0", "0:0"}:
            block = ["USER root", *block, f"USER {user}"]
        return [b + "\n" for b in block]

    patched = list(lines)
    if lines and not lines[-1].endswith("\n"):
        patched[-1] += "\n"
    if new_base is not None:
        m = re.match(
            r"^(\s*FROM\s+)(?:--platform=\S+\s+)?(\S+)(.*)$", lines[start].rstrip("\n"), re.I
        )
        if m is not None:
            patched[start] = f"{m.group(1)}{new_base}{m.group(3)}\n"
    patched[tail:tail] = wrap(lang_lines)
    patched[start + 1 : start + 1] = wrap(os_lines)
    return "".join(difflib.unified_diff(lines, patched, f"a/{name}", f"b/{name}"))


def plan_image_remediation(
    image: ImageInventory,
    actions: Iterable[Action],
    *,
    candidate_base: ImageInventory | None = None,
    dockerfile: str | None = None,
    dockerfile_name: str = "Dockerfile",
) -> ImageRemediation:
    """The upgrades, base verdicts, instructions and Dockerfile diff for ``image``."""
    upgrades: list[ImageUpgrade] = []
    for action in actions:
        if action.asset != image.inventory.asset.id:
            continue
        verdict, version = (None, None)
        if candidate_base is not None:
            verdict, version = _base_verdict(action, candidate_base)
        upgrades.append(
            ImageUpgrade(
                action=action,
                packages=_installed_for(action, image),
                base=verdict,
                base_version=version,
            )
        )
    new_base = None
    if candidate_base is not None and any(u.base is BaseVerdict.FIXED_BY_BASE for u in upgrades):
        info = candidate_base.image
        ref = info.repo_tags[0] if info.repo_tags else None
        digest = info.manifest_digest
        new_base = f"{ref}@{digest}" if ref and digest else ref or digest or str(info.source)
    todo = [u for u in upgrades if u.base is not BaseVerdict.FIXED_BY_BASE]
    instructions = upgrade_instructions(todo, image)
    diff = None
    if dockerfile is not None:
        diff = patch_dockerfile(
            dockerfile,
            instructions,
            new_base=new_base,
            user=image.image.user,
            name=dockerfile_name,
        )
    ref = image.image.repo_tags[0] if image.image.repo_tags else image.inventory.asset.id
    pinned = f"{ref}@{image.image.manifest_digest}" if image.image.manifest_digest else ref
    layer_lines = [f"FROM {pinned}"]
    if image.image.user and image.image.user not in {"root", "0", "0:0"}:
        layer_lines += ["USER root", *instructions, f"USER {image.image.user}"]
    else:
        layer_lines += instructions
    return ImageRemediation(
        image=image,
        upgrades=tuple(upgrades),
        new_base=new_base,
        instructions=tuple(instructions),
        dockerfile_diff=diff,
        patch_layer="\n".join(layer_lines) + "\n",
    )
