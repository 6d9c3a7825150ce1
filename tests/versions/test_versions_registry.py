"""The scheme registry and the shared behaviour of every scheme."""

from __future__ import annotations

import pytest

from patchwarden.ecosystems import Ecosystem
from patchwarden.errors import InvalidVersion, UnknownEcosystem
from patchwarden.versions import SCHEMES, VersionScheme, scheme_for


def test_registry_has_every_scheme_the_ecosystems_name() -> None:
    assert set(SCHEMES) == {"dpkg", "rpm", "apk", "pep440", "semver", "go", "maven"}
    for name, scheme in SCHEMES.items():
        assert isinstance(scheme, VersionScheme)
        assert scheme.name == name


@pytest.mark.parametrize(
    ("ecosystem", "name"),
    [
        ("Debian:12", "dpkg"),
        ("Ubuntu:22.04:LTS", "dpkg"),
        ("Alpine:v3.19", "apk"),
        ("Red Hat", "rpm"),
        ("Rocky Linux:9", "rpm"),
        ("openSUSE", "rpm"),
        ("PyPI", "pep440"),
        ("npm", "semver"),
        ("crates.io", "semver"),
        ("Go", "go"),
        ("Maven", "maven"),
        (Ecosystem.parse("debian"), "dpkg"),
    ],
)
def test_scheme_for(ecosystem: str | Ecosystem, name: str) -> None:
    assert scheme_for(ecosystem).name == name


def test_unknown_ecosystem() -> None:
    with pytest.raises(UnknownEcosystem, match="unknown ecosystem 'Hackage'"):
        scheme_for("Hackage")


SAMPLES = {
    "dpkg": ("1.0-1", "1.0-2"),
    "rpm": ("1.0-1.el9", "1.0-2.el9"),
    "apk": ("1.0-r0", "1.0-r1"),
    "pep440": ("1.0", "1.1"),
    "semver": ("1.0.0", "1.0.1"),
    "go": ("v1.0.0", "v1.0.1"),
    "maven": ("1.0", "1.1"),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_scheme_orders_keeps_raw_and_rejects_non_strings(name: str) -> None:
    scheme = SCHEMES[name]
    low, high = SAMPLES[name]
    a, b = scheme.parse(low), scheme.parse(high)
    assert a < b
    assert a <= b
    assert b > a
    assert b >= a
    assert a != b
    assert scheme.compare(low, high) == -1
    assert scheme.compare(high, low) == 1
    assert scheme.compare(low, low) == 0
    assert str(a) == low
    assert scheme.is_valid(low)
    assert not scheme.is_valid("")
    with pytest.raises(InvalidVersion, match=f"invalid {name} version None"):
        scheme.parse(None)  # type: ignore[arg-type]
    assert scheme.parse(low) is scheme.parse(low)  # cached


def test_versions_of_different_schemes_do_not_compare() -> None:
    deb = SCHEMES["dpkg"].parse("1.0")
    rpm = SCHEMES["rpm"].parse("1.0")
    assert deb != rpm
    with pytest.raises(TypeError):
        _ = deb < rpm
