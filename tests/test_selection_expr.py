"""The expression vocabulary on hand-made collections: values, missing objects, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recastkit.exceptions import ConfigError
from recastkit.io.objects import Collection
from recastkit.regions import AnalysisConfig
from recastkit.selection_expr import (
    ExpressionError,
    Frame,
    Kind,
    Scope,
    compile_expression,
    hist_bins,
    merge_by_pt,
    sort_by_pt,
)

SCOPE = Scope(collections=frozenset({"jets", "leptons"}), event_fields=frozenset({"rho"}))


def _coll(counts, **fields):
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Collection(offsets, {k: np.asarray(v, dtype=np.float64) for k, v in fields.items()})


def _frame():
    # event 0: 3 jets (unsorted), event 1: 1 jet, event 2: none
    jets = sort_by_pt(_coll([3, 1, 0], pt=[30.0, 50.0, 40.0, 25.0], eta=[0.0, 1.0, -1.0, 2.0],
                            phi=[0.0, 3.0, -3.0, 1.0], mass=[0.0, 0.0, 0.0, 0.0]))
    leptons = _coll([2, 0, 1], pt=[40.0, 20.0, 30.0], eta=[0.5, -0.5, 0.0],
                    phi=[0.1, 2.9, 0.0], mass=[0.0, 0.0, 0.0], charge=[1.0, -1.0, 1.0],
                    flavour=[11.0, 11.0, 13.0])
    met = {"pt": np.array([10.0, 20.0, 30.0]), "phi": np.array([3.0, 0.0, -3.0])}
    return Frame(3, {"jets": jets, "leptons": leptons}, met, {"rho": np.array([1.0, 2.0, 3.0])})


def _num(text):
    return compile_expression(text, "t", SCOPE, Kind.NUM).values(_frame())


def _mask(text):
    return compile_expression(text, "t", SCOPE, Kind.BOOL).mask(_frame())


def test_leading_objects_are_sorted_by_pt():
    np.testing.assert_array_equal(_num("jets[0].pt"), [50.0, 25.0, np.nan])
    np.testing.assert_array_equal(_num("jets[1].eta"), [-1.0, np.nan, np.nan])
    np.testing.assert_array_equal(_num("n(jets)"), [3.0, 1.0, 0.0])


def test_kinematics_against_hand_computation():
    m = _num("m(jets[0] + jets[1])")
    # massless: m^2 = 2 pT1 pT2 (cosh(deta) - cos(dphi))
    expect = math.sqrt(2 * 50 * 40 * (math.cosh(2.0) - math.cos(6.0)))
    assert m[0] == pytest.approx(expect, rel=1e-12)
    assert np.isnan(m[1])
    assert np.isnan(m[2])
    np.testing.assert_allclose(_num("m(jets[0:2])")[0], expect, rtol=1e-12)
    np.testing.assert_allclose(_num("sum(jets.pt)"), [120.0, 25.0, 0.0])
    np.testing.assert_array_equal(_num("max(jets.eta)")[1:], [2.0, np.nan])
    dphi = abs((3.0 - (-3.0) + math.pi) % (2 * math.pi) - math.pi)
    assert _num("dphi(jets[0], jets[1])")[0] == pytest.approx(dphi)
    assert _num("dr(jets[0], jets[1])")[0] == pytest.approx(math.hypot(2.0, dphi))
    pt2 = math.hypot(50 * math.cos(3) + 40 * math.cos(-3), 50 * math.sin(3) + 40 * math.sin(-3))
    assert _num("pt(jets[0] + jets[1])")[0] == pytest.approx(pt2)
    np.testing.assert_allclose(_num("met"), [10.0, 20.0, 30.0])
    np.testing.assert_allclose(_num("dphi(met, jets[0])")[:2],
                               [abs(3.0 - 3.0), abs(0.0 - 1.0)])
    np.testing.assert_allclose(_num("abs(jets[0].eta) * 2 + rho"), [3.0, 6.0, np.nan])


def test_charge_flavour_and_missing_objects():
    np.testing.assert_array_equal(
        _mask("leptons[0].charge * leptons[1].charge < 0 and "
              "leptons[0].flavour == leptons[1].flavour"), [True, False, False])
    # a cut on a missing value fails, not included
    np.testing.assert_array_equal(_mask("not (jets[1].pt > 30)"), [False, False, False])
    # Kleene: true or missing = true; false and missing = false (fails either way)
    np.testing.assert_array_equal(_mask("n(jets) < 2 or jets[1].pt > 30"), [True, True, True])
    np.testing.assert_array_equal(_mask("not (n(jets) > 2 and jets[1].pt > 30)"),
                                  [False, True, True])
    np.testing.assert_array_equal(_mask("20 < jets[0].pt <= 50"), [True, True, False])


@pytest.mark.parametrize(("text", "needle", "column"), [
    ("n(bjets) == 2", "unknown name 'bjets'", 3),
    ("jets[0].pt.x > 2", "has no field 'x'", 1),
    ("foo(jets) > 1", "unknown function 'foo'", 1),
    ("n(jets)", "expected a condition", 1),
    ("jets[0].pt > ", "syntax error", None),
    ("__import__('os') == 1", "unknown function '__import__'", 1),
    ("jets[-1].pt > 1", "non-negative integer", 6),
    ("m(jets) > 1", "expected an object", 3),
    ("(lambda: 1)() > 0", "only the vocabulary's functions", 1),
])
def test_errors_name_place_column_and_names(text, needle, column):
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, "cfg.yml: regions.SR.cuts 'x'", SCOPE, Kind.BOOL)
    msg = str(info.value)
    assert msg.startswith("cfg.yml: regions.SR.cuts 'x'")
    assert needle in msg
    if column is not None:
        assert f"at column {column}" in msg
    if "unknown name" in needle:
        assert "available names: jets, leptons, met, rho, n()" in msg


def test_config_error_names_region_and_field():
    doc = {"regions": {"SR": {"cuts": [{"name": "two b", "expr": "n(bjet) == 2"}]}},
           "observables": {"x": {"expr": "n(jets)", "bins": 2, "low": 0, "high": 2}}}
    with pytest.raises(ConfigError, match=r"a\.yml: regions\.SR\.cuts 'two b': unknown name "
                                          r"'bjet' at column 3(.|\n)*bjets"):
        AnalysisConfig.from_mapping(doc, "a.yml")
    doc["regions"]["SR"]["cuts"] = ["n(jets) > 0"]
    doc["observables"]["x"]["expr"] = "m(jets[0] + 1)"
    with pytest.raises(ConfigError, match=r"observables\.x: expected an object"):
        AnalysisConfig.from_mapping(doc, "a.yml")
    doc["observables"]["x"]["expr"] = "n(jets)"
    doc["objects"] = {"jets": {"cuts": ["pt >"]}}
    with pytest.raises(ConfigError, match=r"objects\.jets\.cuts\[0\]: syntax error"):
        AnalysisConfig.from_mapping(doc, "a.yml")


def test_merge_and_bins():
    a = _coll([2, 0], pt=[50.0, 10.0], charge=[1.0, -1.0])
    b = _coll([1, 1], pt=[20.0, 5.0], charge=[-1.0, 1.0])
    m = merge_by_pt(a, b, ["pt", "charge"])
    np.testing.assert_array_equal(m.offsets, [0, 3, 4])
    np.testing.assert_array_equal(m.fields["pt"], [50.0, 20.0, 10.0, 5.0])
    np.testing.assert_array_equal(m.fields["charge"], [1.0, -1.0, -1.0, 1.0])
    np.testing.assert_array_equal(hist_bins(np.array([-1.0, 0.0, 0.99, 1.0, 5.0]), 4, 0.0, 1.0),
                                  [0, 1, 4, 5, 5])
