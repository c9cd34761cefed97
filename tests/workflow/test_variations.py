"""Theory uncertainties from generator-weight variations on a real PHYSLITE file.

The reference reads ``mcEventWeights`` and the jets with uproot, sorts the jets by pT with
``ak.argsort`` (they are not pT-ordered in the file), fills numpy histograms of m_jj, and reads
each variation's Σw from the ``CutBookkeepersAux.`` leaves itself: it shares no code with
:mod:`recastkit.regions`, :mod:`recastkit.bookkeeping` or :mod:`recastkit.theory`.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from recastkit import stats
from recastkit.processing import run_selection
from recastkit.regions import AnalysisConfig
from recastkit.theory import TheoryGroup
from recastkit.workflow.variations import TheorySettings, signal_bands, theory_table

FILE = "root/DAOD_PHYSLITE_21.2.108.0.art.pool.root"
EDGES = np.linspace(0.0, 800.0, 9)
#: weight index -> (μR, μF) of the TruthMetaData names (' muR = 1.0, muF = 2.0 ' is 1, ...).
SCALE = {1: "muR_1.0_muF_2.0", 2: "muR_1.0_muF_0.5", 3: "muR_2.0_muF_1.0",
         4: "muR_0.5_muF_1.0", 5: "muR_0.5_muF_0.5", 6: "muR_2.0_muF_2.0"}
PDF = {15: "pdf1", 16: "pdf2", 17: "pdf3"}
SIGMA_L = 1000.0 * 140.0  # fb × fb⁻¹


def _reference(path):
    t = uproot.open(path)["CollectionTree"]
    a = t.arrays(["AnalysisJetsAuxDyn.pt", "AnalysisJetsAuxDyn.eta", "AnalysisJetsAuxDyn.phi",
                  "AnalysisJetsAuxDyn.m", "EventInfoAuxDyn.mcEventWeights"])
    jets = ak.zip({"pt": a["AnalysisJetsAuxDyn.pt"] / 1000.0,
                   "eta": a["AnalysisJetsAuxDyn.eta"], "phi": a["AnalysisJetsAuxDyn.phi"],
                   "m": a["AnalysisJetsAuxDyn.m"] / 1000.0})
    jets = jets[(jets.pt > 20) & (abs(jets.eta) < 2.5)]
    jets = jets[ak.argsort(jets.pt, axis=1, ascending=False)]
    sel = ak.to_numpy(ak.num(jets) >= 2)
    j = jets[sel]
    p = {}
    for k in (0, 1):
        pt, eta, phi, m = (ak.to_numpy(j[:, k][f]).astype(np.float64)
                           for f in ("pt", "eta", "phi", "m"))
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        p[k] = (px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m**2))
    px, py, pz, e = (p[0][i] + p[1][i] for i in range(4))
    mjj = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))
    w = ak.to_numpy(a["EventInfoAuxDyn.mcEventWeights"][sel]).astype(np.float64)
    md = uproot.open(path)["MetaData"]
    names = md["CutBookkeepersAux./CutBookkeepersAux.name"].array(library="ak")[0].tolist()
    sums = md["CutBookkeepersAux./CutBookkeepersAux.sumOfEventWeights"].array(library="np")[0]
    streams = md["CutBookkeepersAux./CutBookkeepersAux.inputStream"].array(library="ak")[0]
    cycles = md["CutBookkeepersAux./CutBookkeepersAux.cycle"].array(library="np")[0]

    def sumw(name):
        # the entry of the highest cycle among the StreamAOD ones of that name
        idx = [i for i, n in enumerate(names) if n == name and streams[i] == "StreamAOD"]
        return float(sums[max(idx, key=lambda i: cycles[i])])

    hists = {i: np.histogram(mjj, bins=EDGES, weights=w[:, i])[0] for i in (0, *SCALE, *PDF)}
    sumws = {0: sumw("AllExecutedEvents")}
    sumws.update({i: sumw(f"AllExecutedEvents_NonNominalMCWeight_{i}") for i in (*SCALE, *PDF)})
    return hists, sumws


@pytest.fixture(scope="module")
def selected(shared_file):
    path = shared_file(FILE)
    doc = {"objects": {"jets": {"pt_min": 20, "abs_eta_max": 2.5}},
           "regions": {"jets2": {"cuts": ["n(jets) >= 2"]}},
           "observables": {"mjj": {"expr": "m(jets[0] + jets[1])", "bins": 8, "low": 0,
                                   "high": 800}},
           "variations": [*(f" muR = {n[4:7]}, muF = {n[-3:]} " for n in SCALE.values()),
                          *({"name": n, "select": i} for i, n in PDF.items())]}
    result = run_selection([path], AnalysisConfig.from_mapping(doc, "v.yml"),
                           executor="iterative")
    return path, result


def test_variation_histograms_normalized_by_their_own_bookkeeping_sumw(selected):
    path, result = selected
    ref, sumws = _reference(path)
    meta = result.metadata()
    assert [v["name"] for v in meta["variations"]] == [*SCALE.values(), *PDF.values()]
    assert meta["sum_of_weights"] == pytest.approx(sumws[0], rel=1e-12)
    # the raw variation histogram: mcEventWeights[:, i] as the event weight
    np.testing.assert_allclose(result.histograms["jets2/mjj__muR_2.0_muF_2.0"].values(),
                               ref[6], rtol=1e-10)
    assert sumws[1] == pytest.approx(29828.396423339844, rel=1e-15)  # README value

    settings = TheorySettings((TheoryGroup("scale", "scale", tuple(SCALE.values())),
                               TheoryGroup("pdf", "pdf_hessian", tuple(PDF.values()))),
                              normalize="acceptance")
    factor = SIGMA_L / sumws[0]
    bands = signal_bands(result.histograms, meta, "jets2/mjj", settings, factor=factor)
    norm = {i: ref[i] / sumws[i] * SIGMA_L for i in ref}
    scale_stack = np.array([norm[i] for i in (0, *SCALE)])
    np.testing.assert_allclose(bands[0].nominal, norm[0], rtol=1e-10)
    np.testing.assert_allclose(bands[0].up, scale_stack.max(axis=0), rtol=1e-10)
    np.testing.assert_allclose(bands[0].down, scale_stack.min(axis=0), rtol=1e-10)
    delta = np.sqrt(sum((norm[i] - norm[0]) ** 2 for i in PDF))
    np.testing.assert_allclose(bands[1].up, norm[0] + delta, rtol=1e-10)

    # ``total``: the variations keep the nominal Σw
    total = signal_bands(result.histograms, meta, "jets2/mjj",
                         TheorySettings(settings.groups[:1], normalize="total"), factor=factor)
    stack = np.array([ref[i] / sumws[0] * SIGMA_L for i in (0, *SCALE)])
    np.testing.assert_allclose(total[0].up, stack.max(axis=0), rtol=1e-10)

    # the fit model carries them as modifiers on the signal
    sig = stats.BinnedSample("signal", tuple(EDGES), tuple(norm[0]), None, "sig")
    bkg = stats.BinnedSample("background", tuple(EDGES), tuple([50.0] * 8), None, "bkg")
    for split in (False, True):
        inputs = stats.prepare_inputs(sig, [bkg], [50.0] * 8, theory=bands, theory_split=split)
        ws = stats.build_workspace(stats.build_search_model(inputs))
        mods = {(m["name"], m["type"]): m["data"]
                for m in ws["channels"][0]["samples"][0]["modifiers"]}
        if not split:
            assert set(mods) == {("mu", "normfactor"), ("theory_scale", "histosys"),
                                 ("theory_pdf", "histosys")}
            hs = mods[("theory_scale", "histosys")]
            np.testing.assert_allclose(hs["hi_data"], scale_stack.max(axis=0), rtol=1e-10)
            np.testing.assert_allclose(hs["lo_data"], scale_stack.min(axis=0), rtol=1e-10)
        else:
            ns = mods[("theory_scale", "normsys")]
            up, down = scale_stack.max(axis=0), scale_stack.min(axis=0)
            assert ns["hi"] == pytest.approx(up.sum() / norm[0].sum(), rel=1e-12)
            assert ns["lo"] == pytest.approx(down.sum() / norm[0].sum(), rel=1e-12)
            hs = mods[("theory_scale", "histosys")]
            np.testing.assert_allclose(hs["hi_data"], up * norm[0].sum() / up.sum(), rtol=1e-10)
            assert ("theory_pdf", "normsys") in mods
        stats.make_likelihood(stats.build_search_model(inputs))  # pyhf accepts it

    headers, rows = theory_table({"jets2": bands})
    assert headers == ("region", "uncertainty", "rule", "down %", "up %")
    up_pct = 100 * (scale_stack.max(axis=0).sum() / norm[0].sum() - 1)
    assert rows[0][:3] == ("jets2", "scale", "scale")
    assert float(rows[0][4]) == pytest.approx(up_pct, abs=0.006)
