"""purl -> (ecosystem, name, version): the error cases (the mapping table is in doctests)."""

from __future__ import annotations

import pytest

from patchwarden.errors import InvalidPurl, UnknownEcosystem
from patchwarden.purls import purl_to_package


@pytest.mark.parametrize(
    ("purl", "expected"),
    [
        ("pkg:deb/debian/bash@5.2.15-2?distro=debian-12.5", ("Debian:12", "bash", "5.2.15-2")),
        ("pkg:deb/debian/bash@5.2.15-2", ("Debian", "bash", "5.2.15-2")),
        ("pkg:deb/ubuntu/bash@5.1-6ubuntu1?distro=22.04", ("Ubuntu:22.04", "bash", "5.1-6ubuntu1")),
        ("pkg:apk/alpine/zlib@1.3.1-r0?distro=v3.20", ("Alpine:v3.20", "zlib", "1.3.1-r0")),
        ("pkg:apk/alpine/zlib@1.3.1-r0?distro=alpine-3.21.2", ("Alpine:v3.21", "zlib", "1.3.1-r0")),
        ("pkg:rpm/rocky/bash@5.1.8-6.el9_1?epoch=0", ("Rocky Linux", "bash", "5.1.8-6.el9_1")),
        ("pkg:pypi/zope.interface@6.0", ("PyPI", "zope-interface", "6.0")),
        ("pkg:golang/stdlib@1.21.0", ("Go", "stdlib", "1.21.0")),
    ],
)
def test_mapping(purl: str, expected: tuple[str, str, str]) -> None:
    assert purl_to_package(purl) == expected


@pytest.mark.parametrize(
    "purl", ["not a purl", "pkg:pypi/requests", "pkg:maven/log4j-core@2.14.1", "pkg:/x@1"]
)
def test_invalid(purl: str) -> None:
    with pytest.raises(InvalidPurl, match=r"purl"):
        purl_to_package(purl)


@pytest.mark.parametrize(
    "purl", ["pkg:generic/zlib@1.2.13", "pkg:deb/kali/bash@5", "pkg:rpm/fedora/bash@5.2-1.fc39"]
)
def test_unsupported(purl: str) -> None:
    with pytest.raises(UnknownEcosystem, match=repr(purl).replace("?", r"\?")):
        purl_to_package(purl)
