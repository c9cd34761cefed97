"""The general selection path against an independent awkward computation written here.

The reference reads the branches with uproot, applies the object cuts, sorts with
``ak.argsort``, builds the leptons with ``ak.concatenate`` and fills ``hist`` histograms: it
shares no code with :mod:`recastkit.selection_expr` / :mod:`recastkit.regions`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import awkward as ak
import hist
import numpy as np
import pytest
import uproot
import yaml

from recastkit.io.hists import read_hist, read_hists_and_metadata
from recastkit.io.synthetic import write_signal_sample
from recastkit.processing import run_selection, write_selection
from recastkit.regions import AnalysisConfig, load_selection_config
from recastkit.selection import SelectionConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "zh_llbb"
PRESELECTION = ("two leptons", "same flavour", "opposite sign", "leading lepton pT > 27",
                "mll window", "two b-jets")
OBSERVABLES = {"mbb": (25, 0.0, 500.0), "ptll": (20, 0.0, 400.0), "mll": (20, 71.0, 111.0),
               "njets": (10, 0.0, 10.0)}


# --------------------------------------------------------------------------- reference


def _sorted(c: ak.Array) -> ak.Array:
    return c[ak.argsort(c.pt, axis=1, ascending=False, stable=True)]


def _p4(o: ak.Array) -> tuple[np.ndarray, ...]:
    pt = ak.to_numpy(ak.fill_none(o.pt, np.nan)).astype(np.float64)
    eta = ak.to_numpy(ak.fill_none(o.eta, np.nan)).astype(np.float64)
    phi = ak.to_numpy(ak.fill_none(o.phi, np.nan)).astype(np.float64)
    m = ak.to_numpy(ak.fill_none(o.mass, np.nan)).astype(np.float64)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m**2)


def _pair(a: ak.Array, b: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """Mass and pT of the sum of two (possibly missing) objects, NaN when missing."""
    pa, pb = _p4(a), _p4(b)
    px, py, pz, e = (x + y for x, y in zip(pa, pb, strict=True))
    m2 = e**2 - px**2 - py**2 - pz**2
    mass = np.sqrt(np.maximum(m2, 0.0))
    mass[np.isnan(m2)] = np.nan
    return mass, np.hypot(px, py)


def reference(jets, electrons, muons, weight, variations, btag_min):  # noqa: PLR0917
    """Cutflows and histograms of the ZH -> llbb example, computed with awkward/numpy.

    ``jets``/``electrons``/``muons`` already carry the per-object cuts (id included).
    """
    jets = _sorted(jets[(jets.pt > 20) & (abs(jets.eta) < 2.5)])
    bjets = jets[jets.btag > btag_min]
    el = ak.with_field(electrons, 11.0, "flavour")
    mu = ak.with_field(muons, 13.0, "flavour")
    keep = ["pt", "eta", "phi", "mass", "charge", "flavour"]
    leptons = _sorted(ak.concatenate([el[keep], mu[keep]], axis=1))
    lp = ak.pad_none(leptons, 2)
    bp = ak.pad_none(bjets, 2)
    l0, l1, b0, b1 = lp[:, 0], lp[:, 1], bp[:, 0], bp[:, 1]
    mll, ptll = _pair(l0, l1)
    mbb, _ = _pair(b0, b1)

    def num(x):
        return ak.to_numpy(ak.fill_none(x, np.nan)).astype(np.float64)

    with np.errstate(invalid="ignore"):
        steps = [
            ak.to_numpy(ak.num(leptons) == 2),
            num(l0.flavour) == num(l1.flavour),
            num(l0.charge) * num(l1.charge) < 0,
            num(l0.pt) > 27,
            (mll > 81) & (mll < 101),
            ak.to_numpy(ak.num(bjets) >= 2),
        ]
        finals = {"SR": ("mbb SR", (mbb >= 100) & (mbb < 140)),
                  "CR_low": ("mbb low sideband", mbb < 100),
                  "CR_high": ("mbb high sideband", mbb >= 140)}
    values = {"mbb": mbb, "ptll": ptll, "mll": mll, "njets": ak.to_numpy(ak.num(jets))}
    out = {}
    for region, (_, last) in finals.items():
        sel = np.ones(len(weight), dtype=bool)
        flow = [(int(sel.sum()), weight[sel].sum(), (weight[sel] ** 2).sum())]
        for s in [*steps, last]:
            sel = sel & s
            flow.append((int(sel.sum()), weight[sel].sum(), (weight[sel] ** 2).sum()))
        hists = {}
        for obs, (nb, lo, hi) in OBSERVABLES.items():
            for vname, w in [("", weight), *variations.items()]:
                x = values[obs][sel]
                ok = ~np.isnan(x)
                h = hist.Hist(hist.axis.Regular(nb, lo, hi), storage=hist.storage.Weight())
                h.fill(x[ok], weight=w[sel][ok])
                hists[f"{region}/{obs}" + (f"__{vname}" if vname else "")] = h
        out[region] = (flow, hists)
    return out


def _compare(result, ref, regions=("SR", "CR_low", "CR_high")):
    for region in regions:
        flow, hists = ref[region]
        got = result.cutflows[region]
        assert [c.n_events for c in got] == [f[0] for f in flow], region
        np.testing.assert_allclose([c.sum_of_weights for c in got], [f[1] for f in flow],
                                   rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose([c.sum_of_weights_squared for c in got],
                                   [f[2] for f in flow], rtol=1e-10, atol=1e-9)
        for name, h in hists.items():
            mine = result.histograms[name]
            np.testing.assert_allclose(mine.values(flow=True), h.values(flow=True),
                                       rtol=1e-10, atol=1e-9, err_msg=name)
            np.testing.assert_allclose(mine.variances(flow=True), h.variances(flow=True),
                                       rtol=1e-10, atol=1e-9, err_msg=name)


# --------------------------------------------------------------------------- generated sample


@pytest.fixture(scope="module")
def zh_sample(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("zh") / "zh.root"
    write_signal_sample(path, n_events=4000, seed=21, objects=True)
    return path


def _generated_reference(path: Path):
    t = uproot.open(path)["Events"]
    a = t.arrays()
    jets = ak.zip({"pt": a.Jet_pt, "eta": a.Jet_eta, "phi": a.Jet_phi, "mass": a.Jet_mass,
                   "btag": a.Jet_btagDeepFlavB})
    el = ak.zip({"pt": a.Electron_pt, "eta": a.Electron_eta, "phi": a.Electron_phi,
                 "mass": a.Electron_mass, "charge": a.Electron_charge,
                 "id": a.Electron_cutBased})
    el = el[(el.pt > 10) & (abs(el.eta) < 2.47) & (el.id >= 3)]
    mu = ak.zip({"pt": a.Muon_pt, "eta": a.Muon_eta, "phi": a.Muon_phi, "mass": a.Muon_mass,
                 "charge": a.Muon_charge, "id": a.Muon_tightId})
    mu = mu[(mu.pt > 10) & (abs(mu.eta) < 2.4) & mu.id]
    gen = ak.to_numpy(a.genWeight).astype(np.float64)
    w = gen * ak.to_numpy(a.puWeight).astype(np.float64)
    scale = ak.to_numpy(a.LHEScaleWeight).astype(np.float64)
    pdf = ak.to_numpy(a.LHEPdfWeight).astype(np.float64)
    variations = {"muR0p5_muF0p5": w * scale[:, 0], "muR0p5_muF1": w * scale[:, 1],
                  "muR1_muF0p5": w * scale[:, 3], "muR1_muF2": w * scale[:, 5],
                  "muR2_muF1": w * scale[:, 7], "muR2_muF2": w * scale[:, 8],
                  "pdf1": w * pdf[:, 1], "pdf2": w * pdf[:, 2]}
    return reference(jets, el, mu, w, variations, 0.2770)


def test_zh_example_on_generated_sample_matches_awkward(zh_sample):
    config = load_selection_config(EXAMPLES / "analysis.yml")
    assert isinstance(config, AnalysisConfig)
    result = run_selection([zh_sample], config, executor="iterative", chunk_size=700)
    assert result.n_units > 1
    ref = _generated_reference(zh_sample)
    _compare(result, ref)
    # three regions, four observables, eight variations: 3 x 4 x 9 histograms
    assert len(result.histograms) == 3 * 4 * 9
    for region in ("SR", "CR_low", "CR_high"):
        assert result.cutflows[region][-1].n_events > 0
    meta = result.metadata()
    assert [v["index"] for v in meta["variations"]] == [0, 1, 3, 5, 7, 8, 1, 2]
    assert meta["variations"][0]["mode"] == "multiply"
    assert meta["variations"][0]["histograms"]["SR/mbb"] == "SR/mbb__muR0p5_muF0p5"
    assert meta["reading"]["decoder"] in {"deflate", "isal", "zlib"}
    assert meta["sum_of_weights"] == pytest.approx(6813.0258)


def test_outputs_readable_by_scale_and_fit(zh_sample, tmp_path):
    config = load_selection_config(EXAMPLES / "analysis.yml")
    result = run_selection([zh_sample], config, executor="iterative")
    root_path, json_path = write_selection(result, tmp_path / "zh.root")
    h = read_hist(f"{root_path}:SR/mbb")
    np.testing.assert_array_equal(h.values(), result.histograms["SR/mbb"].values())
    hv = read_hist(f"{root_path}:CR_low/mll__pdf1")
    np.testing.assert_array_equal(hv.values(), result.histograms["CR_low/mll__pdf1"].values())
    hists, meta = read_hists_and_metadata(json_path)
    assert set(hists) == set(result.histograms)
    assert set(meta["cutflows"]) == {"SR", "CR_low", "CR_high"}
    with uproot.open(root_path) as f:
        assert f.classnames()["SR;1"] == "TDirectory"


# --------------------------------------------------------------------------- real files


LOOSE = {
    "objects": {"jets": {"pt_min": 20, "abs_eta_max": 2.5},
                "electrons": {"pt_min": 7}, "muons": {"pt_min": 7}},
    "regions": {
        "jets2": {"cuts": ["n(jets) >= 2"]},
        "lep1": {"cuts": [{"name": ">=1 lepton", "expr": "n(leptons) >= 1"},
                          {"name": ">=2 jets", "expr": "n(jets) >= 2"}]},
    },
    "observables": {
        "mjj": {"expr": "m(jets[0] + jets[1])", "bins": 40, "low": 0, "high": 800},
        "ht": {"expr": "sum(jets.pt)", "bins": 40, "low": 0, "high": 1600},
        "lpt": {"expr": "leptons[0].pt", "bins": 30, "low": 0, "high": 300},
        "drjj": {"expr": "dr(jets[0], jets[1])", "bins": 30, "low": 0, "high": 6},
        "nb": {"expr": "n(bjets)", "bins": 6, "low": 0, "high": 6},
    },
}


def _loose_reference(jets, electrons, muons, weight, btag_min):
    jets = _sorted(jets[(jets.pt > 20) & (abs(jets.eta) < 2.5)])
    leptons = _sorted(ak.concatenate([electrons[electrons.pt > 7][["pt"]],
                                      muons[muons.pt > 7][["pt"]]], axis=1))
    jp = ak.pad_none(jets, 2)
    mjj, _ = _pair(jp[:, 0], jp[:, 1])
    e0, e1 = ak.to_numpy(ak.fill_none(jp[:, 0].eta, np.nan)), ak.to_numpy(
        ak.fill_none(jp[:, 1].eta, np.nan))
    p0, p1 = ak.to_numpy(ak.fill_none(jp[:, 0].phi, np.nan)), ak.to_numpy(
        ak.fill_none(jp[:, 1].phi, np.nan))
    dphi = np.abs((p0 - p1 + np.pi) % (2 * np.pi) - np.pi)
    values = {
        "mjj": mjj, "ht": ak.to_numpy(ak.sum(jets.pt, axis=1)).astype(np.float64),
        "lpt": ak.to_numpy(ak.fill_none(ak.pad_none(leptons.pt, 1)[:, 0], np.nan)),
        "drjj": np.sqrt((e0 - e1) ** 2 + dphi**2),
        "nb": ak.to_numpy(ak.sum(jets.btag > btag_min, axis=1)).astype(np.float64),
    }
    binning = {k: (v["bins"], v["low"], v["high"]) for k, v in LOOSE["observables"].items()}
    regions = {"jets2": [ak.to_numpy(ak.num(jets) >= 2)],
               "lep1": [ak.to_numpy(ak.num(leptons) >= 1), ak.to_numpy(ak.num(jets) >= 2)]}
    out = {}
    for region, steps in regions.items():
        sel = np.ones(len(weight), dtype=bool)
        flow = [(len(weight), weight.sum(), (weight**2).sum())]
        for s in steps:
            sel = sel & s
            flow.append((int(sel.sum()), weight[sel].sum(), (weight[sel] ** 2).sum()))
        hists = {}
        for obs, (nb, lo, hi) in binning.items():
            x = values[obs][sel].astype(np.float64)
            ok = ~np.isnan(x)
            h = hist.Hist(hist.axis.Regular(nb, lo, hi), storage=hist.storage.Weight())
            h.fill(x[ok], weight=weight[sel][ok])
            hists[f"{region}/{obs}"] = h
        out[region] = (flow, hists)
    return out


def _physlite_arrays(path: Path, sep: str, tagger: tuple[str, str, float]):
    # the RNTuple handle already opened (and its ~1000 field lists primed) by the run:
    # uproot's own field-list scan takes ~20 s on this file; the data is read by uproot here
    from recastkit.io.events import _event_tree

    tree = (uproot.open(path)["CollectionTree"] if sep == "."
            else _event_tree(path, "EventData"))
    container, name, fc = tagger
    jet = [f"AnalysisJetsAuxDyn{sep}{b}" for b in ("pt", "eta", "phi", "m")]
    tag = [f"{container}{sep}{name}_{p}" for p in ("pb", "pc", "pu")]
    lep = [f"Analysis{c}AuxDyn{sep}pt" for c in ("Electrons", "Muons")]
    weight = f"EventInfoAuxDyn{sep}mcEventWeights"
    a = tree.arrays([*jet, *tag, *lep, weight])
    pb, pc, pu = (a[b] for b in tag)
    jets = ak.zip({"pt": a[jet[0]] / 1000.0, "eta": a[jet[1]], "phi": a[jet[2]],
                   "mass": a[jet[3]] / 1000.0,
                   "btag": np.log(pb / (fc * pc + (1 - fc) * pu))})
    el = ak.zip({"pt": a[lep[0]] / 1000.0})
    mu = ak.zip({"pt": a[lep[1]] / 1000.0})
    w = ak.to_numpy(a[weight][:, 0]).astype(np.float64)
    return jets, el, mu, w


@pytest.mark.parametrize(("fname", "sep", "tagger"), [
    ("DAOD_PHYSLITE_21.2.108.0.art.pool.root", ".",
     ("BTagging_AntiKt4EMPFlow_201903AuxDyn", "DL1r", 0.018)),
    ("PHYSLITE_example.root", ".", ("BTagging_AntiKt4EMPFlowAuxDyn", "GN2v00", 0.1)),
    ("uproot-physlite-rntuple_v1-0-0-0.root", ":",
     ("BTagging_AntiKt4EMPFlowAuxDyn", "GN2v01", 0.2)),
])
def test_real_physlite_matches_awkward(shared_file, fname, sep, tagger):
    path = shared_file(f"root/{fname}")
    config = AnalysisConfig.from_mapping(LOOSE, "loose.yml")
    result = run_selection([path], config, executor="iterative", chunk_size=30,
                           bookkeeping=False)
    jets, el, mu, w = _physlite_arrays(path, sep, tagger)
    ref = _loose_reference(jets, el, mu, w, 2.195)
    _compare(result, ref, regions=("jets2", "lep1"))
    assert result.cutflows["lep1"][-1].n_events > 0
    assert result.btag_source is not None
    assert tagger[1] in result.btag_source[0]


def test_real_nanoaod_matches_awkward(shared_file):
    path = shared_file("root/nanoAOD_2015_CMS_Open_Data_ttbar.root")
    config = AnalysisConfig.from_mapping(LOOSE, "loose.yml")
    result = run_selection([path], config, executor="iterative", chunk_size=64,
                           bookkeeping=False)
    a = uproot.open(path)["Events"].arrays(["Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass",
                                            "Jet_btagDeepFlavB", "Electron_pt", "Muon_pt",
                                            "genWeight"])
    jets = ak.zip({"pt": a.Jet_pt, "eta": a.Jet_eta, "phi": a.Jet_phi, "mass": a.Jet_mass,
                   "btag": a.Jet_btagDeepFlavB})
    ref = _loose_reference(jets, ak.zip({"pt": a.Electron_pt}), ak.zip({"pt": a.Muon_pt}),
                           ak.to_numpy(a.genWeight).astype(np.float64), 0.2770)
    _compare(result, ref, regions=("jets2", "lep1"))


def test_zh_example_runs_on_real_physlite_and_nanoaod(shared_file):
    """The example's cutflows on the real files equal an awkward count of the same cuts."""
    for cfg, fname in (("physlite.yml", "DAOD_PHYSLITE_21.2.108.0.art.pool.root"),
                       ("nanoaod.yml", "nanoAOD_2015_CMS_Open_Data_ttbar.root")):
        path = shared_file(f"root/{fname}")
        config = load_selection_config(EXAMPLES / cfg)
        result = run_selection([path], config, executor="iterative", bookkeeping=False,
                               allow_empty=True)
        assert set(result.cutflows) == {"SR", "CR_low", "CR_high"}
        n_all = result.cutflows["SR"][0].n_events
        assert n_all == (40 if "PHYSLITE" in fname else 200)
        if "PHYSLITE" in fname:
            t = uproot.open(path)["CollectionTree"]
            el = t.arrays(["AnalysisElectronsAuxDyn.pt", "AnalysisElectronsAuxDyn.eta",
                           "AnalysisElectronsAuxDyn.DFCommonElectronsLHMedium"])
            mu = t.arrays(["AnalysisMuonsAuxDyn.pt", "AnalysisMuonsAuxDyn.eta",
                           "AnalysisMuonsAuxDyn.quality"])
            n_el = ak.sum((el["AnalysisElectronsAuxDyn.pt"] > 10e3)
                          & (abs(el["AnalysisElectronsAuxDyn.eta"]) < 2.47)
                          & (el["AnalysisElectronsAuxDyn.DFCommonElectronsLHMedium"] != 0),
                          axis=1)
            n_mu = ak.sum((mu["AnalysisMuonsAuxDyn.pt"] > 10e3)
                          & (abs(mu["AnalysisMuonsAuxDyn.eta"]) < 2.5)
                          & (mu["AnalysisMuonsAuxDyn.quality"] <= 1), axis=1)
        else:
            a = uproot.open(path)["Events"].arrays(
                ["Electron_pt", "Electron_eta", "Electron_cutBased", "Muon_pt", "Muon_eta",
                 "Muon_tightId"])
            n_el = ak.sum((a.Electron_pt > 10) & (abs(a.Electron_eta) < 2.47)
                          & (a.Electron_cutBased >= 3), axis=1)
            n_mu = ak.sum((a.Muon_pt > 10) & (abs(a.Muon_eta) < 2.4) & a.Muon_tightId, axis=1)
        assert result.cutflows["SR"][1].n_events == int(ak.sum((n_el + n_mu) == 2))
        assert len(result.metadata()["variations"]) == 3


# --------------------------------------------------------------------------- hooks, CLI


HOOK_SOURCE = '''
import awkward as ak
import numpy as np


def two_central_jets(events):
    jets = events.jets
    return ak.to_numpy(ak.sum(abs(jets.eta) < 1.5, axis=1) >= 2)


def leading_jet_pt(events):
    return ak.fill_none(ak.firsts(events.jets.pt), np.nan)


def half(events):
    return np.full(len(events), 0.5)
'''


def hook_config(tmp_path: Path) -> AnalysisConfig:
    (tmp_path / "myhooks.py").write_text(HOOK_SOURCE)
    doc = {
        "objects": {"jets": {"pt_min": 25}},
        "weights": {"factors": [{"name": "half", "hook": "myhooks.py:half"}]},
        "regions": {"central": {"cuts": [
            {"name": "two jets", "expr": "n(jets) >= 2"},
            {"name": "two central jets", "hook": "myhooks.py:two_central_jets"}]}},
        "observables": {
            "j0pt": {"hook": "myhooks.py:leading_jet_pt", "bins": 20, "low": 0, "high": 400},
            "mjj": {"expr": "m(jets[0:2])", "bins": 20, "low": 0, "high": 1000}},
    }
    path = tmp_path / "hooks.yml"
    path.write_text(yaml.safe_dump(doc))
    config = load_selection_config(path)
    assert isinstance(config, AnalysisConfig)
    return config


def test_hook_region_matches_awkward_and_records_checksum(zh_sample, tmp_path):
    config = hook_config(tmp_path)
    result = run_selection([zh_sample], config, executor="iterative", chunk_size=1000)
    a = uproot.open(zh_sample)["Events"].arrays(["Jet_pt", "Jet_eta", "genWeight"])
    jets = ak.zip({"pt": a.Jet_pt, "eta": a.Jet_eta})
    jets = _sorted(jets[jets.pt > 25])
    w = 0.5 * ak.to_numpy(a.genWeight).astype(np.float64)
    sel = ak.to_numpy((ak.num(jets) >= 2) & (ak.sum(abs(jets.eta) < 1.5, axis=1) >= 2))
    assert result.cutflows["central"][-1].n_events == int(sel.sum())
    assert result.cutflows["central"][-1].sum_of_weights == pytest.approx(w[sel].sum(),
                                                                           rel=1e-12)
    h = hist.Hist(hist.axis.Regular(20, 0, 400), storage=hist.storage.Weight())
    h.fill(ak.to_numpy(jets.pt[sel][:, 0]), weight=w[sel])
    np.testing.assert_allclose(result.histograms["central/j0pt"].values(flow=True),
                               h.values(flow=True), rtol=1e-12)
    hooks = result.metadata()["hooks"]
    import hashlib

    digest = hashlib.sha256((tmp_path / "myhooks.py").read_bytes()).hexdigest()
    assert hooks["regions.central.cuts.two central jets"]["sha256"] == digest
    assert hooks["observables.j0pt"]["ref"] == "myhooks.py:leading_jet_pt"
    assert set(hooks) == {"regions.central.cuts.two central jets", "observables.j0pt",
                          "weights.half"}


def test_hook_region_under_processes_identical_to_iterative(zh_sample, tmp_path):
    config = hook_config(tmp_path)
    it = run_selection([zh_sample], config, executor="iterative", chunk_size=800)
    pr = run_selection([zh_sample], config, executor="processes", workers=2, chunk_size=800)
    assert it.cutflows == pr.cutflows
    for name, h in it.histograms.items():
        np.testing.assert_array_equal(h.values(flow=True), pr.histograms[name].values(flow=True))
        np.testing.assert_array_equal(h.variances(flow=True),
                                      pr.histograms[name].variances(flow=True))


def test_cli_select_with_analysis_config(zh_sample, tmp_path):
    from click.testing import CliRunner

    from recastkit.cli import main

    out = tmp_path / "out.root"
    res = CliRunner().invoke(main, ["select", str(zh_sample), "-o", str(out), "--config",
                                    str(EXAMPLES / "analysis.yml"), "--executor",
                                    "iterative", "--decoder", "zlib",
                                    "--decompression-threads", "1", "--json"])
    assert res.exit_code == 0, res.output
    import json

    doc = json.loads(res.output)
    assert set(doc["cutflows"]) == {"SR", "CR_low", "CR_high"}
    assert doc["reading"] == {"decoder": "zlib", "decompression_threads": 1}
    assert read_hist(f"{out}:SR/mbb").sum().value == pytest.approx(
        doc["cutflows"]["SR"][-1]["sum_of_weights"], rel=1e-9)


def test_old_dijet_config_still_loads(tmp_path):
    shutil.copy(Path(__file__).resolve().parents[1] / "examples" / "selection.yml",
                tmp_path / "s.yml")
    assert isinstance(load_selection_config(tmp_path / "s.yml"), SelectionConfig)


def test_physlite_variation_histograms_by_name_and_index(shared_file):
    """mcEventWeights[:, i] replaces the nominal weight (names from TruthMetaData)."""
    path = shared_file("root/DAOD_PHYSLITE_21.2.108.0.art.pool.root")
    doc = {**LOOSE, "variations": ["muR = 2.0, muF = 2.0",
                                   {"name": "w7", "select": 7}, "mcEventWeights[100]"]}
    result = run_selection([path], AnalysisConfig.from_mapping(doc, "v.yml"),
                           executor="iterative", bookkeeping=False)
    meta = result.metadata()["variations"]
    assert [(v["name"], v["index"], v["mode"]) for v in meta] == [
        ("muR_2.0_muF_2.0", 6, "replace"), ("w7", 7, "replace"),
        ("mcEventWeights_100", 100, "replace")]
    t = uproot.open(path)["CollectionTree"]
    a = t.arrays(["AnalysisJetsAuxDyn.pt", "AnalysisJetsAuxDyn.eta", "AnalysisJetsAuxDyn.phi",
                  "AnalysisJetsAuxDyn.m", "EventInfoAuxDyn.mcEventWeights"])
    jets = ak.zip({"pt": a["AnalysisJetsAuxDyn.pt"] / 1000.0,
                   "eta": a["AnalysisJetsAuxDyn.eta"], "phi": a["AnalysisJetsAuxDyn.phi"],
                   "mass": a["AnalysisJetsAuxDyn.m"] / 1000.0})
    jets = _sorted(jets[(jets.pt > 20) & (abs(jets.eta) < 2.5)])
    jp = ak.pad_none(jets, 2)
    mjj, _ = _pair(jp[:, 0], jp[:, 1])
    sel = ak.to_numpy(ak.num(jets) >= 2)
    for name, idx in (("muR_2.0_muF_2.0", 6), ("w7", 7), ("mcEventWeights_100", 100)):
        w = ak.to_numpy(a["EventInfoAuxDyn.mcEventWeights"][:, idx]).astype(np.float64)
        h = hist.Hist(hist.axis.Regular(40, 0, 800), storage=hist.storage.Weight())
        h.fill(mjj[sel], weight=w[sel])
        mine = result.histograms[f"jets2/mjj__{name}"]
        np.testing.assert_allclose(mine.values(flow=True), h.values(flow=True), rtol=1e-10)
        np.testing.assert_allclose(mine.variances(flow=True), h.variances(flow=True),
                                   rtol=1e-10)
        flows = result.variation_cutflows["jets2"][name]
        assert flows[0] == pytest.approx(w.sum(), rel=1e-12)
        assert flows[-1] == pytest.approx(w[sel].sum(), rel=1e-12)


def test_nanoaod_met_and_photons(shared_file):
    path = shared_file("root/nanoAOD_2015_CMS_Open_Data_ttbar.root")
    doc = {"objects": {"photons": {"pt_min": 10, "abs_eta_max": 2.5}},
           "regions": {"all": {"cuts": ["met >= 0"]},
                       "gamma": {"cuts": ["n(photons) >= 1", "dphi(met, photons[0]) > 1"]}},
           "observables": {"met": {"expr": "met", "bins": 20, "low": 0, "high": 400},
                           "phpt": {"expr": "photons[0].pt", "bins": 20, "low": 0,
                                    "high": 200}}}
    result = run_selection([path], AnalysisConfig.from_mapping(doc, "m.yml"),
                           executor="iterative", bookkeeping=False)
    a = uproot.open(path)["Events"].arrays(["MET_pt", "MET_phi", "Photon_pt", "Photon_eta",
                                            "Photon_phi", "genWeight"])
    w = ak.to_numpy(a.genWeight).astype(np.float64)
    met = ak.to_numpy(a.MET_pt).astype(np.float64)
    ph = ak.zip({"pt": a.Photon_pt, "eta": a.Photon_eta, "phi": a.Photon_phi})
    ph = _sorted(ph[(ph.pt > 10) & (abs(ph.eta) < 2.5)])
    p0 = ak.pad_none(ph, 1)[:, 0]
    p0pt = ak.to_numpy(ak.fill_none(p0.pt, np.nan)).astype(np.float64)
    p0phi = ak.to_numpy(ak.fill_none(p0.phi, np.nan)).astype(np.float64)
    dphi = np.abs((ak.to_numpy(a.MET_phi) - p0phi + np.pi) % (2 * np.pi) - np.pi)
    with np.errstate(invalid="ignore"):
        sel = (ak.to_numpy(ak.num(ph)) >= 1) & (dphi > 1)
    assert result.cutflows["gamma"][-1].n_events == int(sel.sum()) > 0
    for region, s in (("all", np.ones(len(w), dtype=bool)), ("gamma", sel)):
        for obs, x in (("met", met), ("phpt", p0pt)):
            h = hist.Hist(hist.axis.Regular(20, 0, 400 if obs == "met" else 200),
                          storage=hist.storage.Weight())
            ok = s & ~np.isnan(x)
            h.fill(x[ok], weight=w[ok])
            np.testing.assert_allclose(result.histograms[f"{region}/{obs}"].values(flow=True),
                                       h.values(flow=True), rtol=1e-10)


def test_flat_cartesian_muons_and_met(shared_file):
    """uproot-HZZ.root: Cartesian muons and MET converted at read time."""
    path = shared_file("root/uproot-HZZ.root")
    doc = {"regions": {"mumu": {"cuts": ["n(muons) >= 2",
                                         "muons[0].charge * muons[1].charge < 0"]}},
           "observables": {"mmm": {"expr": "m(muons[0:2])", "bins": 30, "low": 0, "high": 150},
                           "met": {"expr": "met", "bins": 20, "low": 0, "high": 200}}}
    result = run_selection([path], AnalysisConfig.from_mapping(doc, "h.yml"),
                           executor="iterative", bookkeeping=False)
    a = uproot.open(path)["events"].arrays(["Muon_Px", "Muon_Py", "Muon_Pz", "Muon_E",
                                            "Muon_Charge", "MET_px", "MET_py", "EventWeight"])
    mu = ak.zip({"px": a.Muon_Px, "py": a.Muon_Py, "pz": a.Muon_Pz, "e": a.Muon_E,
                 "q": a.Muon_Charge, "pt": np.hypot(a.Muon_Px, a.Muon_Py)})
    mu = _sorted(mu)
    mp = ak.pad_none(mu, 2)

    def col(x):
        return ak.to_numpy(ak.fill_none(x, np.nan)).astype(np.float64)

    px, py, pz, e = (col(mp[:, 0][k]) + col(mp[:, 1][k]) for k in ("px", "py", "pz", "e"))
    mass = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0))
    w = ak.to_numpy(a.EventWeight).astype(np.float64)
    with np.errstate(invalid="ignore"):
        sel = (ak.to_numpy(ak.num(mu)) >= 2) & (col(mp[:, 0].q) * col(mp[:, 1].q) < 0)
    assert result.cutflows["mumu"][-1].n_events == int(sel.sum()) > 100
    h = hist.Hist(hist.axis.Regular(30, 0, 150), storage=hist.storage.Weight())
    h.fill(mass[sel], weight=w[sel])
    # the stored (float32) E is not exactly consistent with p: masses agree to ~1e-4 GeV
    np.testing.assert_allclose(result.histograms["mumu/mmm"].values(flow=True),
                               h.values(flow=True), atol=w[sel].max() * 1.01)
    assert result.histograms["mumu/mmm"].sum(flow=True).value == pytest.approx(w[sel].sum(),
                                                                               rel=1e-9)
    met = np.hypot(ak.to_numpy(a.MET_px), ak.to_numpy(a.MET_py)).astype(np.float64)
    hm = hist.Hist(hist.axis.Regular(20, 0, 200), storage=hist.storage.Weight())
    hm.fill(met[sel], weight=w[sel])
    np.testing.assert_allclose(result.histograms["mumu/met"].values(flow=True),
                               hm.values(flow=True), rtol=1e-6)
