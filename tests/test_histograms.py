"""Tests of recastkit.histograms: accumulation arrays -> hist.Hist, moments."""

from __future__ import annotations

import math

import hist
import numpy as np
import pytest

from recastkit.exceptions import ConfigError, HistogramError
from recastkit.histograms import (
    HistogramSpec,
    Moments,
    build_hist,
    empty_moments,
    merge_moments,
    sum_arrays,
)


def test_build_hist_keeps_flow_and_variances():
    spec = HistogramSpec("h", 4, 0.0, 2.0, "x [GeV]")
    acc = spec.empty()
    acc[:, 0] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    acc[:, 1] = [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]
    h = build_hist(spec, acc)
    assert isinstance(h.storage_type(), hist.storage.Weight)
    np.testing.assert_array_equal(h.values(flow=True), acc[:, 0])
    np.testing.assert_array_equal(h.variances(flow=True), acc[:, 1])
    np.testing.assert_allclose(h.axes[0].edges, [0.0, 0.5, 1.0, 1.5, 2.0], rtol=0, atol=0)
    with pytest.raises(HistogramError, match=r"shape \(3, 2\), expected \(6, 2\)"):
        build_hist(spec, np.zeros((3, 2)))


@pytest.mark.parametrize(("nbins", "low", "high"), [(0, 0.0, 1.0), (3, 1.0, 1.0),
                                                    (3, 0.0, math.inf)])
def test_spec_rejects_bad_binning(nbins, low, high):
    with pytest.raises(ConfigError, match="histogram 'h'"):
        HistogramSpec("h", nbins, low, high)


def test_moments_merge_and_mean():
    a = empty_moments(1)
    b = empty_moments(1)
    a[0] = [2.0, 10.0, 3.0, 7.0]
    b[0] = [1.0, 1.0, 1.0, 1.0]
    m = Moments.from_array(merge_moments(a, b)[0])
    assert m == Moments(3.0, 11.0, 1.0, 7.0)
    assert m.mean == pytest.approx(11.0 / 3.0, rel=1e-15)
    empty = Moments.from_array(empty_moments(1)[0])
    assert empty.to_dict() == {"sum_w": 0.0, "sum_wx": 0.0, "min": None, "max": None}
    assert math.isnan(empty.mean)


def test_sum_arrays_in_order():
    arrays = [np.full((3, 2), x) for x in (1.0, 2.0, 3.5)]
    np.testing.assert_array_equal(sum_arrays(arrays), np.full((3, 2), 6.5))
    with pytest.raises(HistogramError, match="nothing to merge"):
        sum_arrays([])
