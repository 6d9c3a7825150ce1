"""Package URLs (purl-spec) to patchwarden's ``(ecosystem, name, version)``.

SBOMs name packages by purl; advisories name them by OSV ecosystem and name. The mapping
follows the purl-spec type definitions (``PURL-TYPES.rst``) and OSV's ecosystem list:

=============  ==========================  =================================================
purl type      ecosystem                   name
=============  ==========================  =================================================
pypi           ``PyPI``                    PEP 503 normalised
npm            ``npm``                     ``@scope/name`` (namespace is the scope)
deb/debian     ``Debian[:N]``              binary package; ``distro`` qualifier ``debian-12``,
                                           ``bookworm`` or ``12`` gives the release
deb/ubuntu     ``Ubuntu[:YY.MM]``          ``distro`` ``ubuntu-22.04`` or ``22.04``
apk/alpine     ``Alpine[:vX.Y]``           ``distro`` ``alpine-3.19``, ``3.19.1`` or ``v3.19``
rpm/<vendor>   ``Red Hat``, ``Rocky        ``epoch`` qualifier is put back into the version
               Linux``, ``AlmaLinux``,     (``1:1.1.1k-7.el8``)
               ``SUSE``, ``openSUSE``
maven          ``Maven``                   ``group:artifact``
golang         ``Go``                      ``namespace/name`` (the module path)
cargo          ``crates.io``               name
gem            ``RubyGems``                name
=============  ==========================  =================================================

Other types raise :class:`~patchwarden.errors.UnknownEcosystem`; a string that is not a purl,
or lacks a version, raises :class:`~patchwarden.errors.InvalidPurl`.
"""

from __future__ import annotations

import re

from packageurl import PackageURL
from packaging.utils import canonicalize_name

from patchwarden.ecosystems import DEBIAN_CODENAMES
from patchwarden.errors import InvalidPurl, UnknownEcosystem

_RPM_VENDORS = {
    "redhat": "Red Hat",
    "rhel": "Red Hat",
    "rocky": "Rocky Linux",
    "rocky-linux": "Rocky Linux",
    "almalinux": "AlmaLinux",
    "alma": "AlmaLinux",
    "suse": "SUSE",
    "opensuse": "openSUSE",
}


def _release(distro: str | None, vendor: str) -> str | None:
    """The release part of a ``distro`` qualifier (``debian-12`` -> ``12``)."""
    if not distro:
        return None
    value = distro.strip().lower()
    for prefix in (f"{vendor}-", f"{vendor}:", vendor):
        if value.startswith(prefix) and value != vendor:
            value = value[len(prefix) :]
            break
    return value or None


def _with_release(base: str, release: str | None) -> str:
    return base if release is None else f"{base}:{release}"


def purl_to_package(purl: str) -> tuple[str, str, str]:
    """``(ecosystem, name, version)`` for a package URL.

    >>> purl_to_package("pkg:pypi/Jinja2@2.10")
    ('PyPI', 'jinja2', '2.10')
    >>> purl_to_package("pkg:npm/%40babel/core@7.23.2")
    ('npm', '@babel/core', '7.23.2')
    >>> purl_to_package("pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12")
    ('Debian:12', 'libssl3', '3.0.11-1~deb12u2')
    >>> purl_to_package("pkg:deb/debian/curl@7.88.1-10?distro=bookworm")
    ('Debian:12', 'curl', '7.88.1-10')
    >>> purl_to_package("pkg:deb/ubuntu/curl@7.81.0-1ubuntu1.15?distro=ubuntu-22.04")
    ('Ubuntu:22.04', 'curl', '7.81.0-1ubuntu1.15')
    >>> purl_to_package("pkg:apk/alpine/musl@1.2.4-r2?distro=3.19.1")
    ('Alpine:v3.19', 'musl', '1.2.4-r2')
    >>> purl_to_package("pkg:rpm/redhat/openssl@1.1.1k-7.el8_6?epoch=1&arch=x86_64")
    ('Red Hat', 'openssl', '1:1.1.1k-7.el8_6')
    >>> purl_to_package("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1")
    ('Maven', 'org.apache.logging.log4j:log4j-core', '2.14.1')
    >>> purl_to_package("pkg:golang/golang.org/x/net@v0.17.0")
    ('Go', 'golang.org/x/net', 'v0.17.0')
    >>> purl_to_package("pkg:cargo/smallvec@1.6.0")
    ('crates.io', 'smallvec', '1.6.0')
    >>> purl_to_package("pkg:gem/rails@7.0.4")
    ('RubyGems', 'rails', '7.0.4')
    >>> purl_to_package("pkg:pypi/requests")
    Traceback (most recent call last):
    ...
    patchwarden.errors.InvalidPurl: purl 'pkg:pypi/requests' has no version
    """
    try:
        parsed = PackageURL.from_string(purl)
    except ValueError as exc:
        raise InvalidPurl(f"invalid purl {purl!r}: {exc}") from exc
    if not parsed.version:
        raise InvalidPurl(f"purl {purl!r} has no version")
    kind, ns, name, version = parsed.type, parsed.namespace, parsed.name, parsed.version
    qualifiers: dict[str, str] = dict(parsed.qualifiers or {})
    distro = qualifiers.get("distro")
    match kind:
        case "pypi":
            return "PyPI", canonicalize_name(name), version
        case "npm":
            return "npm", f"{ns}/{name}" if ns else name, version
        case "deb":
            vendor = (ns or "").lower()
            if vendor == "debian":
                release = _release(distro, "debian")
                if release is not None:
                    release = DEBIAN_CODENAMES.get(release, release.split(".")[0])
                return _with_release("Debian", release), name, version
            if vendor == "ubuntu":
                return _with_release("Ubuntu", _release(distro, "ubuntu")), name, version
            raise UnknownEcosystem(f"purl {purl!r}: unknown deb vendor {ns!r}")
        case "apk":
            if (ns or "").lower() != "alpine":
                raise UnknownEcosystem(f"purl {purl!r}: unknown apk vendor {ns!r}")
            release = _release(distro, "alpine")
            if release is not None:
                release = "v" + ".".join(release.removeprefix("v").split(".")[:2])
            return _with_release("Alpine", release), name, version
        case "rpm":
            base = _RPM_VENDORS.get((ns or "").lower())
            if base is None:
                raise UnknownEcosystem(f"purl {purl!r}: unknown rpm vendor {ns!r}")
            epoch = qualifiers.get("epoch")
            if epoch and epoch != "0" and ":" not in version:
                if not re.fullmatch(r"\d+", epoch):
                    raise InvalidPurl(f"purl {purl!r}: qualifier 'epoch' is not a number")
                version = f"{epoch}:{version}"
            return base, name, version
        case "maven":
            if not ns:
                raise InvalidPurl(f"purl {purl!r}: maven purl needs a group (namespace)")
            return "Maven", f"{ns}:{name}", version
        case "golang":
            return "Go", f"{ns}/{name}" if ns else name, version
        case "cargo":
            return "crates.io", name, version
        case "gem":
            return "RubyGems", name, version
        case _:
            raise UnknownEcosystem(f"purl {purl!r}: package type {kind!r} is not supported")
