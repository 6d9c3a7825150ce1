from __future__ import annotations

import pytest

from patchwarden.ecosystems import Base, Ecosystem, normalize_name, release_matches
from patchwarden.errors import UnknownEcosystem


def test_parse_keeps_release() -> None:
    eco = Ecosystem.parse("Alpine:v3.19")
    assert eco.base is Base.ALPINE
    assert eco.release == "v3.19"
    assert eco.scheme == "apk"
    assert eco.is_distro


def test_unknown_ecosystem_names_input() -> None:
    with pytest.raises(UnknownEcosystem, match="'Nope:1'"):
        Ecosystem.parse("Nope:1")


def test_debian_codename_equals_number() -> None:
    assert release_matches(Ecosystem.parse("Debian:bookworm"), Ecosystem.parse("Debian:12"))


def test_release_less_package_matches_only_release_less_advisory() -> None:
    assert not release_matches(Ecosystem.parse("Debian:12"), Ecosystem.parse("Debian"))
    assert release_matches(Ecosystem.parse("Debian"), Ecosystem.parse("Debian:12"))


def test_pep503() -> None:
    assert normalize_name(Ecosystem.parse("PyPI"), "Foo__Bar.baz") == "foo-bar-baz"
