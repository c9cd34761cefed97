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
    filter_objects,
    hist_bins,
    hist_sums,
    masked_sums,
    merge_by_pt,
    merge_select_sorted,
    select_sorted,
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


# --------------------------------------------------------------------------- kernels


def _random_jagged(rng, n_events, max_count=5):
    counts = rng.integers(0, max_count + 1, n_events)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    m = int(offsets[-1])
    pt = rng.exponential(40.0, m)
    pt[rng.random(m) < 0.02] = np.nan  # NaN pT sorts last
    pt[1::7] = pt[0:-1:7][: pt[1::7].size]  # ties: the stored order is kept
    fields = {"pt": pt, "eta": rng.normal(0, 1.5, m), "phi": rng.uniform(-np.pi, np.pi, m),
              "mass": rng.exponential(5.0, m), "btag": rng.random(m).astype(np.float32)}
    return counts, Collection(offsets, fields)


def test_select_sorted_matches_awkward_stable_argsort():
    import awkward as ak

    rng = np.random.default_rng(7)
    counts, coll = _random_jagged(rng, 2000)
    keep = coll.fields["eta"] < 1.0
    got = select_sorted(coll, keep)
    arr = ak.unflatten(ak.zip({k: np.asarray(v) for k, v in coll.fields.items()}), counts)
    arr = arr[ak.unflatten(keep, counts)]
    key = ak.fill_none(ak.nan_to_none(arr.pt), -np.inf)
    ref = arr[ak.argsort(key, axis=1, ascending=False, stable=True)]
    np.testing.assert_array_equal(got.counts, ak.to_numpy(ak.num(ref)))
    for name in ("pt", "eta", "btag"):
        np.testing.assert_array_equal(got.fields[name], ak.to_numpy(ak.flatten(ref[name])))
    # a selection of the selection reads the stored arrays through composed indices
    sub = filter_objects(got, got.fields["btag"] > 0.5)
    ref_sub = ref[ref.btag > 0.5]
    np.testing.assert_array_equal(sub.counts, ak.to_numpy(ak.num(ref_sub)))
    np.testing.assert_array_equal(sub.fields["mass"], ak.to_numpy(ak.flatten(ref_sub.mass)))
    # equal to sorting everything first, then cutting
    flagged = sort_by_pt(Collection(coll.offsets, {**coll.fields, "k": keep.astype(float)}))
    both = filter_objects(flagged, flagged.fields["k"] > 0)
    np.testing.assert_array_equal(both.offsets, got.offsets)
    np.testing.assert_array_equal(both.fields["pt"], got.fields["pt"])


def test_hist_sums_and_masked_sums_against_hist_and_numpy():
    import hist

    rng = np.random.default_rng(3)
    n = 5000
    x = rng.normal(5.0, 4.0, n)
    x[rng.random(n) < 0.05] = np.nan
    x[:3] = [0.0, 10.0, -0.0]  # edges: low edge is in bin 1, the high edge overflows
    w = rng.normal(1.0, 0.5, (3, n))
    sel = rng.random(n) < 0.6
    idx = np.flatnonzero(sel)
    got = hist_sums(x, idx, w, 10, 0.0, 10.0)
    for j in range(3):
        h = hist.Hist(hist.axis.Regular(10, 0.0, 10.0), storage=hist.storage.Weight())
        ok = sel & ~np.isnan(x)
        h.fill(x[ok], weight=w[j][ok])
        view = h.view(flow=True)
        np.testing.assert_allclose(got[j, :, 0], view.value, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got[j, :, 1], view.variance, rtol=1e-12, atol=1e-12)
    count, sums = masked_sums(sel, w)
    assert count == int(sel.sum())
    np.testing.assert_allclose(sums[:, 0], [row[sel].sum() for row in w], rtol=1e-12)
    np.testing.assert_allclose(sums[:, 1], [(row[sel] ** 2).sum() for row in w], rtol=1e-12)


def _p4_numpy(pt, eta, phi, mass):
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + mass**2)


def test_active_events_give_the_full_values_and_are_not_reused_beyond_them():
    rng = np.random.default_rng(11)
    n = 3000
    counts, jets = _random_jagged(rng, n, 4)
    jets = select_sorted(Collection(jets.offsets, {k: np.nan_to_num(v, nan=1.0)
                                                   for k, v in jets.fields.items()}), None)
    frame = Frame(n, {"jets": jets, "leptons": jets})
    # hand computation of m(j0 + j1) per event
    f = {k: np.asarray(v, dtype=np.float64) for k, v in jets.fields.items()}
    expect = np.full(n, np.nan)
    for ev in range(n):
        s = jets.offsets[ev]
        if counts[ev] >= 2:
            a = _p4_numpy(*(f[k][s] for k in ("pt", "eta", "phi", "mass")))
            b = _p4_numpy(*(f[k][s + 1] for k in ("pt", "eta", "phi", "mass")))
            px, py, pz, e = (u + v for u, v in zip(a, b, strict=True))
            expect[ev] = math.sqrt(max(e * e - px * px - py * py - pz * pz, 0.0))
    m_slice = compile_expression("m(jets[0:2])", "t", SCOPE, Kind.NUM)
    m_sum = compile_expression("m(jets[0] + jets[1])", "t", SCOPE, Kind.NUM)
    lead = compile_expression("jets[0].pt", "t", SCOPE, Kind.NUM)
    active = rng.random(n) < 0.3
    frame.set_active(active, ("cut A",))
    got = m_sum.values(frame)
    np.testing.assert_allclose(got[active], expect[active], rtol=1e-12)
    assert np.isnan(got[~active]).all()  # not computed outside the active events
    np.testing.assert_array_equal(m_slice.values(frame), got)  # one key, one computation
    # narrower: reused; another selection or every event: computed again
    frame.set_active(active & (rng.random(n) < 0.5), ("cut A", "cut B"))
    assert np.shares_memory(m_slice.values(frame), got)
    frame.set_active(~active, ("cut C",))
    other = m_slice.values(frame)
    np.testing.assert_allclose(other[~active], expect[~active], rtol=1e-12)
    frame.set_active(None, ())
    np.testing.assert_allclose(m_slice.values(frame), expect, rtol=1e-12)
    np.testing.assert_array_equal(lead.values(frame),
                                  np.where(counts > 0, f["pt"][np.minimum(
                                      jets.offsets[:-1], jets.offsets[-1] - 1)], np.nan))
    # a sum over two collections goes through the per-object four-vectors
    mixed = compile_expression("m(jets[0] + leptons[1])", "t", SCOPE, Kind.NUM).values(frame)
    np.testing.assert_allclose(mixed, expect, rtol=1e-12)


def test_merge_select_sorted_matches_awkward_concatenate_and_stable_sort():
    import awkward as ak

    rng = np.random.default_rng(5)
    ca, a = _random_jagged(rng, 1500, 3)
    cb, b = _random_jagged(rng, 1500, 3)
    b.fields["pt"][::5] = np.round(b.fields["pt"][::5])  # ties between a and b: a first
    a.fields["pt"][::5] = np.round(a.fields["pt"][::5])
    ka, kb = a.fields["eta"] > -1.0, b.fields["btag"] > 0.3
    got = merge_select_sorted(a, ka, b, kb, ["pt", "eta"], {"flavour": (11.0, 13.0)})

    def arr(counts, coll, keep, flavour):
        x = ak.unflatten(ak.zip({"pt": coll.fields["pt"], "eta": coll.fields["eta"],
                                 "flavour": np.full(keep.size, flavour)}), counts)
        return x[ak.unflatten(keep, counts)]

    both = ak.concatenate([arr(ca, a, ka, 11.0), arr(cb, b, kb, 13.0)], axis=1)
    key = ak.fill_none(ak.nan_to_none(both.pt), -np.inf)
    ref = both[ak.argsort(key, axis=1, ascending=False, stable=True)]
    np.testing.assert_array_equal(got.counts, ak.to_numpy(ak.num(ref)))
    for name in ("pt", "eta", "flavour"):
        np.testing.assert_array_equal(got.fields[name], ak.to_numpy(ak.flatten(ref[name])))
