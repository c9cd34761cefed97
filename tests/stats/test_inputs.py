"""Histogram inputs of the search model: validation, mock background, toy data."""

from __future__ import annotations

import math

import hist
import numpy as np
import pytest

from recastkit.exceptions import HistogramError, StatsError
from recastkit.stats import (
    BinnedSample,
    build_search_model,
    build_workspace,
    mock_background,
    prepare_inputs,
    toy_data,
)

EDGES = tuple(float(x) for x in np.linspace(0.0, 500.0, 11))


def _sample(name: str, values: list[float], edges: tuple[float, ...] = EDGES) -> BinnedSample:
    return BinnedSample(name, edges, tuple(values), tuple(0.01 * v for v in values), name)


def test_from_hist_and_rebin() -> None:
    h = hist.Hist(hist.axis.Regular(4, 0, 400), storage=hist.storage.Weight())
    h.fill([50, 150, 150, 250, 350], weight=[1.0, 2.0, 3.0, 0.5, 0.5])
    s = BinnedSample.from_hist(h, "signal", "sig.root:h")
    assert s.values == (1.0, 5.0, 0.5, 0.5)
    assert s.variances == (1.0, 13.0, 0.25, 0.25)
    r = s.rebinned(2)
    assert r.edges == (0.0, 200.0, 400.0)
    assert r.values == (6.0, 1.0)
    assert r.variances == (14.0, 0.5)
    with pytest.raises(HistogramError, match="valid factors: 1, 2, 4"):
        s.rebinned(3)


def test_mock_background_matches_exponential_expectation() -> None:
    edges = np.linspace(0.0, 500.0, 101)
    b = mock_background(edges, 7)
    again = mock_background(edges, np.random.default_rng(7))
    assert b.values == again.values  # same seed, same draw
    assert b.variances == b.values  # unit weights
    # expected fraction inside [0, 500]: 1 - exp(-500/150)
    frac = 1 - math.exp(-500 / 150)
    assert b.total == pytest.approx(50_000 * frac, abs=5 * math.sqrt(50_000 * frac * (1 - frac)))
    # first bin: 50000 (1 - exp(-5/150)) = 1639.3 ± √1639
    assert b.values[0] == pytest.approx(50_000 * (1 - math.exp(-5 / 150)), abs=5 * 40.5)


def test_toy_data_is_seeded_poisson() -> None:
    a = toy_data([10.0, 1000.0], 3)
    assert a == toy_data([10.0, 1000.0], 3)
    assert all(float(x).is_integer() for x in a)
    assert a[1] == pytest.approx(1000, abs=5 * math.sqrt(1000))


def test_search_model_modifiers() -> None:
    sig = _sample("signal", [0, 5, 10, 5, 0, 0, 0, 0, 0, 0])
    bkg = _sample("background", [100.0] * 10)
    inputs = prepare_inputs(sig, [bkg], [100.0] * 10, xsec_rel_unc=(0.1, 0.05),
                            lumi_rel_unc=0.017)
    assert inputs.data_kind == "observed"
    ws = build_workspace(build_search_model(inputs, mu_bound=20.0))
    mods = {m["name"]: m for m in ws["channels"][0]["samples"][0]["modifiers"]}
    assert mods["xsec_signal"]["data"] == {"hi": 1.1, "lo": 0.95}
    assert mods["mu"]["type"] == "normfactor"
    assert mods["lumi"]["type"] == "lumi"
    assert mods["staterror_mjj"]["data"][1] == pytest.approx(math.sqrt(0.05))
    params = {p["name"]: p for p in ws["measurements"][0]["config"]["parameters"]}
    assert params["mu"]["bounds"] == [[0.0, 20.0]]
    assert params["lumi"]["sigmas"] == [0.017]
    assert params["lumi"]["bounds"] == [[pytest.approx(0.915), pytest.approx(1.085)]]
    # toy data: Poisson of the background, seeded
    toy = prepare_inputs(sig, [bkg], rng=5)
    assert toy.data_kind == "toy"
    assert toy.data == toy_data([100.0] * 10, 5)


def test_binning_mismatch_shows_both_edge_lists() -> None:
    sig = _sample("signal", [1.0] * 10)
    other = _sample("background", [1.0] * 5, tuple(float(x) for x in np.linspace(0, 500, 6)))
    with pytest.raises(HistogramError) as info:
        prepare_inputs(sig, [other], rng=1)
    msg = str(info.value)
    assert "binning mismatch" in msg
    assert "[0, 100, 200, 300, 400, 500]" in msg
    assert "[0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500]" in msg


@pytest.mark.parametrize(
    ("values", "match"),
    [([1.0, float("nan")] + [1.0] * 8, "bin 1: nan"), ([1.0, -2.0] + [1.0] * 8, "bin 1: -2.0")],
)
def test_negative_or_nan_bins(values: list[float], match: str) -> None:
    bad = BinnedSample("background", EDGES, tuple(values), None, "bkg.root:h")
    with pytest.raises(HistogramError, match=match):
        prepare_inputs(_sample("signal", [1.0] * 10), [bad], rng=1)


def test_all_zero_signal() -> None:
    with pytest.raises(StatsError, match="all 10 bins are zero"):
        prepare_inputs(_sample("signal", [0.0] * 10), [_sample("b", [5.0] * 10)], rng=1)


def test_non_integer_observed_data() -> None:
    data = BinnedSample("data", EDGES, (1.5,) + (2.0,) * 9, None, "data.root:h")
    with pytest.raises(StatsError, match=r"data.root:h: observed data must be .* bin 0: 1.5"):
        prepare_inputs(_sample("signal", [1.0] * 10), [_sample("b", [5.0] * 10)], data)


def test_uncertainties_out_of_range() -> None:
    with pytest.raises(StatsError, match=r"in \[0, 1\), got 1\.2"):
        prepare_inputs(_sample("signal", [1.0] * 10), [_sample("b", [5.0] * 10)], rng=1,
                       xsec_rel_unc=(1.2, 0.1))
