"""Tests of recastkit.selection: config, kernel against an awkward reference, cutflow."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import hist
import numpy as np
import pytest

from recastkit.config import validate
from recastkit.exceptions import ConfigError
from recastkit.histograms import build_hist
from recastkit.io.events import BUILTIN_LAYOUTS, EventChunk, InputConfig
from recastkit.selection import SelectionAccumulator, SelectionConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
import itertools

from eventfactory import make_events, reference

FLAT = BUILTIN_LAYOUTS["flat"]


def _chunk(sample, start=0, stop=None):
    import awkward as ak

    stop = len(sample.weight) if stop is None else stop
    parts = [sample.pt[start:stop], sample.eta[start:stop], sample.phi[start:stop],
             sample.m[start:stop]]
    offsets = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(parts[0])))]).astype(np.int64)
    jets = tuple(ak.to_numpy(ak.flatten(p)) for p in parts)
    return EventChunk("mem", start, stop, offsets, jets,
                      sample.weight[start:stop].astype(np.float64))


def _run(sample, config, pieces=1):
    acc = SelectionAccumulator.empty(config)
    edges = np.linspace(0, len(sample.weight), pieces + 1).astype(int)
    for a, b in itertools.pairwise(edges):
        acc.fill(_chunk(sample, a, b), FLAT, config)
    return acc


def _expected_hist(spec, x, w):
    h = hist.Hist(hist.axis.Regular(spec.nbins, spec.low, spec.high),
                  storage=hist.storage.Weight())
    h.fill(x, weight=w)
    return h


@pytest.mark.parametrize(("pt_min", "eta_max"), [(None, None), (35.0, None), (30.0, 2.5)])
def test_kernel_matches_awkward_reference(pt_min, eta_max):
    sample = make_events(5000, seed=7)
    config = SelectionConfig(jet_pt_min_gev=pt_min, jet_abs_eta_max=eta_max)
    acc = _run(sample, config, pieces=3)
    ref = reference(sample, pt_min, eta_max)
    w = ref["w"]
    arrays = acc.histogram_arrays()
    specs = {s.name: s for s in config.histogram_specs}
    expected = {
        "h_mjj_raw": (ref["mjj_raw"], w[ref["keep_raw"]]),
        "h_mjj_kin": (ref["mjj_kin"], w[ref["keep_kin"]]),
        "h_njets_raw": (ref["njets_raw"].astype(float), w),
        "h_njets_kin": (ref["njets_kin"][ref["keep_kin"]].astype(float), w[ref["keep_kin"]]),
    }
    for i, (name, (x, wx)) in enumerate(expected.items()):
        got = build_hist(specs[name], arrays[name])
        want = _expected_hist(specs[name], x, wx)
        np.testing.assert_allclose(got.values(flow=True), want.values(flow=True), rtol=1e-12,
                                   atol=1e-9)
        np.testing.assert_allclose(got.variances(flow=True), want.variances(flow=True),
                                   rtol=1e-12, atol=1e-9)
        assert acc.moments[i, 0] == pytest.approx(wx.sum(), rel=1e-12)
        assert acc.moments[i, 1] == pytest.approx(np.sum(wx * x), rel=1e-10)
        assert acc.moments[i, 2] == pytest.approx(x.min(), rel=1e-12)
        assert acc.moments[i, 3] == pytest.approx(x.max(), rel=1e-12)
    cutflow = acc.cutflow(config)
    assert [c.name for c in cutflow] == list(config.cut_names())
    assert cutflow[0].n_events == 5000
    assert cutflow[1].n_events == int(ref["keep_raw"].sum())
    assert cutflow[-1].n_events == int(ref["keep_kin"].sum())
    assert cutflow[-1].sum_of_weights == pytest.approx(w[ref["keep_kin"]].sum(), rel=1e-12)
    assert cutflow[-1].sum_of_weights_squared == pytest.approx(
        (w[ref["keep_kin"]] ** 2).sum(), rel=1e-12)


def test_leading_jets_are_found_without_sorting():
    # event 0: jets (pt) 10, 50, 30 -> leading pair is jets 1 and 2, not 0 and 1
    pt = np.array([10.0, 50.0, 30.0, 40.0], dtype=np.float32)
    eta = np.zeros(4, dtype=np.float32)
    phi = np.array([0.0, 0.0, np.pi, 0.0], dtype=np.float32)
    m = np.zeros(4, dtype=np.float32)
    chunk = EventChunk("mem", 0, 2, np.array([0, 3, 4], dtype=np.int64), (pt, eta, phi, m),
                       np.array([2.0, 1.0]))
    config = SelectionConfig(mjj_bins=10, mjj_low_gev=0.0, mjj_high_gev=200.0)
    acc = SelectionAccumulator.empty(config)
    acc.fill(chunk, FLAT, config)
    # back-to-back massless jets of 50 and 30 GeV: m = 2*sqrt(50*30)
    mjj = 2.0 * math.sqrt(50.0 * 30.0)
    assert acc.moments[0, 1] == pytest.approx(2.0 * mjj, rel=1e-6)
    assert acc.moments[0, 2] == pytest.approx(mjj, rel=1e-6)
    assert acc.cutflow(config)[1].n_events == 1
    assert acc.njets[0, 1 + 3, 0] == 2.0  # event 0 (w=2) in the n_jets = 3 bin
    assert acc.njets[0, 1 + 1, 0] == 1.0  # event 1 (w=1) in the n_jets = 1 bin


def test_cartesian_jets_and_mev_scale():
    # two jets along +x and -x, px = ±100 GeV, E = 100 GeV each, stored in MeV
    c = np.array([1e5, -1e5], dtype=np.float64)
    zero = np.zeros(2)
    e = np.array([1e5, 1e5])
    layout = BUILTIN_LAYOUTS["flat_cartesian"].__class__(
        **{**BUILTIN_LAYOUTS["flat_cartesian"].__dict__, "energy_unit": "MeV"})
    chunk = EventChunk("mem", 0, 1, np.array([0, 2], dtype=np.int64), (c, zero, zero, e),
                       np.array([1.0]))
    config = SelectionConfig(jet_pt_min_gev=99.0, jet_abs_eta_max=0.1)
    acc = SelectionAccumulator.empty(config)
    acc.fill(chunk, layout, config)
    assert acc.moments[1, 1] == pytest.approx(200.0, rel=1e-12)
    assert [c.n_events for c in acc.cutflow(config)] == [1, 1, 1, 1]


def test_config_defaults_and_yaml(tmp_path):
    default = SelectionConfig()
    assert (default.jet_pt_min_gev, default.jet_abs_eta_max, default.min_jets) == (None, None, 2)
    assert [(s.name, s.nbins, s.low, s.high) for s in default.histogram_specs] == [
        ("h_mjj_raw", 100, 0.0, 500.0), ("h_mjj_kin", 100, 0.0, 500.0),
        ("h_njets_raw", 20, 0.0, 20.0), ("h_njets_kin", 20, 0.0, 20.0)]
    assert default.cut_names() == ("all events", ">=2 jets")
    path = tmp_path / "sel.yml"
    path.write_text(
        "jets: {pt_min_gev: 25, abs_eta_max: 2.5}\n"
        "histograms: {mjj: {bins: 50, low_gev: 0, high_gev: 1000}}\n"
        "weights: {extra: [PileupWeight_NOSYS]}\n"
        "input: {layout: flat_cartesian, weight_branch: w, kinematics: pxpypze,\n"
        "        jet_branches: {px: a, py: b, pz: c, e: d}}\n")
    cfg = SelectionConfig.from_yaml(path)
    assert cfg.jet_pt_min_gev == 25.0
    assert cfg.mjj_bins == 50
    assert cfg.extra_weights == ("PileupWeight_NOSYS",)
    assert cfg.input == InputConfig(layout="flat_cartesian", jet_branches=("a", "b", "c", "d"),
                                    kinematics="pxpypze", weight_branch="w")
    assert cfg.cut_names() == ("all events", ">=2 jets", ">=2 jets pT>25 GeV",
                               ">=2 jets pT>25 GeV |eta|<2.5")
    # the mapping written to the metadata is valid against the schema and round-trips
    assert SelectionConfig.from_mapping(validate(cfg.to_mapping(), "selection")) == cfg


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("jets: {pt_min: 25}\n", r"\$.jets.*'pt_min' was unexpected"),
        ("input: {layout: delphes}\n", "valid choices: auto, physlite"),
        ("jets: {min_jets: 1}\n", r"\$.jets.min_jets"),
        ("histograms: {mjj: {low_gev: 10, high_gev: 5}}\n", "need finite low < high"),
        ("input: {jet_branches: {pt: a}}\n", "missing eta, phi, m"),
    ],
)
def test_config_errors_name_the_field(tmp_path, text, match):
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        SelectionConfig.from_yaml(path)
    assert "bad.yml" in str(info.value)


def test_schema_has_descriptions_everywhere():
    from recastkit.config import load_schema

    def walk(node, where):
        if isinstance(node, dict) and "properties" in node:
            assert node.get("additionalProperties") is False, where
            for key, sub in node["properties"].items():
                assert "description" in sub, f"{where}.{key}"
                walk(sub, f"{where}.{key}")
    walk(load_schema("selection"), "$")


@pytest.mark.parametrize(("pt_min", "eta_max"), [(None, None), (25.0, 2.0)])
def test_float32_key_path_equals_float64_path_on_edge_cases(pt_min, eta_max):
    # float32 pT uses integer top-2 keys, float64 pT the comparisons: both must pick the same
    # jets with ties (earlier jet wins), NaN and -inf pT (never lead), -0.0 == +0.0, negative pT
    rng = np.random.default_rng(11)
    n_events = 3000
    counts = rng.poisson(4.0, n_events)
    n = int(counts.sum())
    pt = rng.choice(np.array([0.0, -0.0, -5.0, 20.0, 30.0, 30.0, 45.5, np.nan, -np.inf]), n)
    pt = np.where(rng.random(n) < 0.5, rng.exponential(40.0, n), pt).astype(np.float32)
    eta = rng.uniform(-3.0, 3.0, n).astype(np.float32)
    phi = rng.uniform(-np.pi, np.pi, n).astype(np.float32)
    m = rng.uniform(0.0, 10.0, n).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    w = rng.normal(1.0, 0.3, n_events)
    config = SelectionConfig(jet_pt_min_gev=pt_min, jet_abs_eta_max=eta_max)
    accs = []
    for dtype in (np.float32, np.float64):
        jets = tuple(a.astype(dtype) for a in (pt, eta, phi, m))
        acc = SelectionAccumulator.empty(config)
        acc.fill(EventChunk("mem", 0, n_events, offsets, jets, w), FLAT, config)
        accs.append(acc)
    a, b = accs
    np.testing.assert_array_equal(a.cut_n, b.cut_n)
    np.testing.assert_array_equal(a.cut_w, b.cut_w)
    np.testing.assert_array_equal(a.njets, b.njets)
    np.testing.assert_array_equal(a.mjj, b.mjj)  # same pairs, same float64 inputs
    np.testing.assert_array_equal(a.moments, b.moments)
    assert a.cut_n[1] > 2000  # the sample is not trivially empty


def test_fast_exp_and_cos_match_libm():
    from recastkit.selection import _cos, _cos_poly, _exp_poly

    rng = np.random.default_rng(5)
    x = rng.uniform(-20.0, 20.0, 20000)
    got = np.array([_exp_poly(v) for v in x])
    np.testing.assert_allclose(got, np.exp(x), rtol=5e-16, atol=0)
    y = np.concatenate([rng.uniform(-2 * np.pi, 2 * np.pi, 20000),
                        [0.0, np.pi / 2, np.pi, 2 * np.pi, -2 * np.pi]])
    np.testing.assert_allclose([_cos_poly(v) for v in y], np.cos(y), rtol=0, atol=5e-16)
    big = np.array([7.0, -100.0, 1e6])
    np.testing.assert_array_equal([_cos(v) for v in big], np.cos(big))
    assert math.isnan(_cos(float("nan")))


def test_fast_exp_builds_every_power_of_two_exactly():
    # x = k ln2 (k = -29..29, the whole range of the reduction): exp(x) = 2^k (1 + tiny), so
    # a wrong power of two would be off by a factor >= 2; rtol 5e-16 checks every bit above
    from recastkit.selection import _exp_poly

    x = np.array([k * math.log(2.0) for k in range(-29, 30)] + [-20.0, 20.0])
    np.testing.assert_allclose([_exp_poly(v) for v in x], np.exp(x), rtol=5e-16, atol=0)


_TWO_PAIR_MASSES = [5.0, 3.0, 5.0, 3.0]


def _fill_two_pairs(pt, eta, phi, weights, config):
    """Fill two events of two float32 jets each (masses :data:`_TWO_PAIR_MASSES`)."""
    jets = tuple(np.array(a, dtype=np.float32) for a in (pt, eta, phi, _TWO_PAIR_MASSES))
    chunk = EventChunk("mem", 0, 2, np.array([0, 2, 4], dtype=np.int64), jets,
                       np.array(weights, dtype=np.float64))
    acc = SelectionAccumulator.empty(config)
    acc.fill(chunk, FLAT, config)
    return acc


def test_absurd_eta_does_not_stop_the_kernel():
    # exp(-800) underflows to 0: the libm path divides by it (inf, no ZeroDivisionError)
    acc = _fill_two_pairs([50.0, 40.0, 30.0, 20.0], [-800.0, 0.5, 0.1, -0.2],
                          [0.0, 1.0, 2.0, -0.5], [2.0, 3.0], SelectionConfig(jet_abs_eta_max=2.5))
    assert acc.mjj[0, :, 0].sum() == 5.0  # both events have a raw m_jj (flow included)
    assert acc.mjj[1, :, 0].sum() == 3.0  # only the second passes |eta| < 2.5 twice
    assert list(acc.cut_n) == [2, 2, 2, 1]


def test_pairs_outside_the_fast_range_use_libm():
    # |eta| > 20 and |dphi| > 2 pi take the libm path (back-to-back in eta: no cancellation)
    pt = np.array([50.0, 40.0, 50.0, 40.0], dtype=np.float32)
    eta = np.array([21.0, -20.5, 0.3, -0.4], dtype=np.float32)
    phi = np.array([0.0, 1.0, 10.0, -0.5], dtype=np.float32)
    m = np.array(_TWO_PAIR_MASSES, dtype=np.float32)
    acc = _fill_two_pairs(pt, eta, phi, [1.0, 1.0], SelectionConfig(mjj_high_gev=1e12))

    def mass(i, j):
        # m^2 = m1^2 + m2^2 + 2 (E1 E2 - pT1 pT2 cos(dphi) - pz1 pz2)
        p, h, f, q = (np.float64(a[[i, j]]) for a in (pt, eta, phi, m))
        e = np.hypot(p * np.cosh(h), q)
        pz = p * np.sinh(h)
        msq = q @ q + 2.0 * (e[0] * e[1] - p[0] * p[1] * math.cos(f[0] - f[1]) - pz[0] * pz[1])
        return math.sqrt(msq)

    m0, m1 = mass(0, 1), mass(2, 3)
    assert acc.moments[0, 2] == pytest.approx(min(m0, m1), rel=1e-9)
    assert acc.moments[0, 3] == pytest.approx(max(m0, m1), rel=1e-9)
    assert acc.moments[0, 1] == pytest.approx(m0 + m1, rel=1e-9)


def test_concurrent_fills_equal_serial_fills_and_never_share_scratch():
    # the kernel's scratch buffers are borrowed per call: fills running at the same time in
    # several threads (the parallel iterative path) must give exactly the serial sums
    from concurrent.futures import ThreadPoolExecutor

    from recastkit import selection

    samples = [make_events(3000 + 500 * k, seed=20 + k) for k in range(6)]
    config = SelectionConfig(jet_pt_min_gev=30.0, jet_abs_eta_max=2.5)
    serial = [_run(s, config, pieces=4) for s in samples]
    borrowed: list[int] = []
    real_borrow = selection._WORKSPACES.borrow

    def spy_borrow():
        cm = real_borrow()
        ws = cm.__enter__()
        assert id(ws) not in borrowed  # nobody else holds it now
        borrowed.append(id(ws))

        class _CM:
            def __enter__(self):
                return ws

            def __exit__(self, *exc):
                borrowed.remove(id(ws))
                return cm.__exit__(*exc)
        return _CM()

    selection._WORKSPACES.borrow = spy_borrow  # type: ignore[method-assign]
    try:
        for _ in range(3):
            with ThreadPoolExecutor(4) as pool:
                parallel = list(pool.map(lambda s: _run(s, config, pieces=4), samples))
            for a, b in zip(serial, parallel, strict=True):
                for name in ("mjj", "njets", "moments", "cut_n", "cut_w"):
                    assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True)
    finally:
        del selection._WORKSPACES.borrow
    assert not borrowed
