"""InventoryColumns: an inventory's rows column by column, and their compact pickled form.

Collector processes send every host's rows to the scanning process pickled, so the compact
form must give back exactly the rows it was made of, whatever text they hold (a hostile SBOM
can put a newline in a name or an empty string in a purl).
"""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchwarden.model import InventoryColumns, InventoryRow, expand_runs, runs

_TEXT = st.text(alphabet=st.sampled_from("ab\t\n\r\x00é"), max_size=6)
_ROWS = st.lists(
    st.tuples(_TEXT, st.none() | st.sampled_from(["/s", "/b#1", ""]), st.none() | _TEXT),
    max_size=30,
).map(lambda rows: sorted({r[0]: r for r in rows}.values()))


@given(_ROWS)
def test_columns_give_back_their_rows_through_pickle(rows: list[InventoryRow]) -> None:
    cols = InventoryColumns.of(rows)
    back = pickle.loads(pickle.dumps(cols))
    assert list(back) == rows
    assert back == cols
    assert back == rows
    assert len(back) == len(rows)
    assert back.lines == tuple(r[0] for r in rows)
    assert back.purls == tuple(r[2] for r in rows)
    assert expand_runs(back.locations) == [r[1] for r in rows]
    if rows:
        assert back[-1] == rows[-1]
        assert back[:2] == rows[:2]


def test_plain_rows_travel_as_two_strings() -> None:
    rows = [
        ("Debian:11\tbash\t5.1-2\tbash\t5.1-2", "/s", "pkg:deb/debian/bash@5.1-2"),
        ("PyPI\tjinja2\t2.10\t\t", "/s", None),
    ]
    _, (lines, locations, purls) = InventoryColumns.of(rows).__reduce__()
    assert lines == "Debian:11\tbash\t5.1-2\tbash\t5.1-2\nPyPI\tjinja2\t2.10\t\t"
    assert purls == "pkg:deb/debian/bash@5.1-2\n"
    assert locations == (("/s", 2),)


def test_text_with_a_newline_or_an_empty_purl_is_pickled_as_it_is() -> None:
    rows = [("PyPI\ta\nb\t1\t\t", None, ""), ("PyPI\tc\t1\t\t", None, "x\ny")]
    _, (lines, _, purls) = InventoryColumns.of(rows).__reduce__()
    assert lines == ("PyPI\ta\nb\t1\t\t", "PyPI\tc\t1\t\t")
    assert purls == ("", "x\ny")
    assert list(pickle.loads(pickle.dumps(InventoryColumns.of(rows)))) == rows


def test_runs_of_one_location_and_of_several() -> None:
    assert runs(["/s"] * 4) == (("/s", 4),)
    assert runs(["/s", "/s", None, "/s"]) == (("/s", 2), (None, 1), ("/s", 1))
    assert runs([]) == ()


def test_columns_reject_locations_that_do_not_cover_the_lines() -> None:
    with pytest.raises(ValueError, match="2 lines but 1 locations"):
        InventoryColumns(("a", "b"), (("/s", 1),), (None, None))


def test_purls_looked_up_by_line_travel_with_their_rows() -> None:
    rows = [("PyPI\ta\t1\t\t", "/s", "pkg:pypi/a@1"), ("PyPI\tb\t1\t\t", "/s", "pkg:pypi/b@1")]
    table = {"PyPI\ta\t1\t\t": "pkg:pypi/a@1?x=1", "PyPI\tz\t9\t\t": "pkg:pypi/z@9"}
    cols = InventoryColumns.of(rows).with_purls(table)
    _, (_, _, purls) = cols.__reduce__()
    assert purls == {"PyPI\ta\t1\t\t": "pkg:pypi/a@1?x=1"}  # only its own lines' entries
    assert cols.purls == ("pkg:pypi/a@1?x=1", None)
    assert list(pickle.loads(pickle.dumps(cols))) == [
        ("PyPI\ta\t1\t\t", "/s", "pkg:pypi/a@1?x=1"),
        ("PyPI\tb\t1\t\t", "/s", None),
    ]
