"""The example configurations shipped in examples/ stay valid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from recastkit.processing import run_selection
from recastkit.selection import SelectionConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yml")), ids=lambda p: p.name)
def test_example_validates(path: Path) -> None:
    config = SelectionConfig.from_yaml(path)
    assert config.min_jets == 2


def test_cartesian_example_on_hzz(shared_file: Callable[[str], Path]) -> None:
    config = SelectionConfig.from_yaml(EXAMPLES / "flat_ntuple_cartesian.yml")
    result = run_selection([shared_file("root/uproot-HZZ.root")], config,
                           executor="iterative", bookkeeping=False, progress=False)
    by_name = {c.name: c for c in result.cutflow}
    # shared data README §1.8: 2421 events, 824 with at least two jets, Σ EventWeight 16.9225...
    assert by_name["all events"].n_events == 2421
    assert by_name[">=2 jets"].n_events == 824
    assert by_name["all events"].sum_of_weights == pytest.approx(16.922521416134224, rel=1e-6)
