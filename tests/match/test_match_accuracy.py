"""Precision/recall gate: the scan path against labels published with the real data.

``benchmarks/matcher_accuracy.py --smoke`` imports the subsets of ``tests/data/accuracy`` into
a real store, scans inventories built from labelled queries and counts true/false positives
per source. The recorded figures (``tests/data/accuracy/expected.json``) are floors: a drop
of precision, recall or F1 in any group fails the test.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

ROOT = Path(__file__).resolve().parents[2]

if TYPE_CHECKING:
    from benchmarks import matcher_accuracy as acc
else:
    _spec = importlib.util.spec_from_file_location(
        "benchmarks.matcher_accuracy", ROOT / "benchmarks" / "matcher_accuracy.py"
    )
    acc = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = acc
    _spec.loader.exec_module(acc)

SUBSET = acc.SUBSET

EXPECTED = json.loads((SUBSET / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is the version oracle")
def test_accuracy_does_not_drop() -> None:
    figures = acc.run(smoke=True)
    assert set(figures) == set(EXPECTED)
    for group, floor in EXPECTED.items():
        got = figures[group].as_dict()
        assert got["queries"] == floor["queries"], group
        for metric in ("precision", "recall", "f1"):
            assert got[metric] >= floor[metric], (group, metric, got, figures[group].examples_fn)
    # Ubuntu packages whose source is named like none of the binaries USN OVAL tests
    # (tiff/libtiff6, glib2.0/libglib2.0-0t64, openssh/openssh-client) are found through
    # their binary names and reported once, under the source package.
    ubuntu = figures["ubuntu"]
    assert (ubuntu.fp, ubuntu.fn) == (0, 0), ubuntu.examples_fn
    assert "ubuntu" in acc.table(figures)


def test_dpkg_oracle() -> None:
    # Epoch, tilde and revision ordering as dpkg itself decides them.
    assert acc.dpkg_lt("9.6p1-3ubuntu13.5", "1:9.6p1-3ubuntu13.3")
    assert acc.dpkg_lt("3.0.13-0ubuntu3.1~1", "3.0.13-0ubuntu3.1")
    assert not acc.dpkg_lt("3.0.13-0ubuntu3.1+1", "3.0.13-0ubuntu3.1")


def test_subset_is_small() -> None:
    total = sum(p.stat().st_size for p in Path(SUBSET).rglob("*") if p.is_file())
    assert total < 1_000_000
