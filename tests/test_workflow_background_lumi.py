"""MC backgrounds normalized by recastkit carry the signal's luminosity modifier (issue 7)."""

from __future__ import annotations

import json
from pathlib import Path

import hist
import numpy as np
import pyhf
import pytest

from recastkit.io.hists import write_hists
from recastkit.stats import BinnedSample, build_search_model, build_workspace, prepare_inputs
from recastkit.workflow import FitRequest, run_fit

EDGES = (0.0, 100.0, 200.0)


def _model(lumi_scaled: bool) -> pyhf.Model:
    sig = BinnedSample("signal", EDGES, (3.0, 1.0), (0.1, 0.1))
    bkg = BinnedSample("background", EDGES, (50.0, 20.0), (1.0, 1.0), lumi_scaled=lumi_scaled)
    inputs = prepare_inputs(sig, [bkg], [52.0, 21.0], lumi_rel_unc=0.0113)
    ws = pyhf.Workspace(build_workspace(build_search_model(inputs)))
    return ws.model(modifier_settings={"normsys": {"interpcode": "code4"},
                                       "histosys": {"interpcode": "code4p"}})


@pytest.mark.parametrize("lumi_scaled", [True, False])
def test_lumi_parameter_scales_mc_backgrounds(lumi_scaled: bool) -> None:
    model = _model(lumi_scaled)
    assert model.config.par_names.count("lumi") == 1  # one, shared parameter
    pars = np.asarray(model.config.suggested_init(), dtype=float)
    pars[model.config.par_slice("lumi")] = 1.02
    pars[model.config.par_slice("mu")] = 1.0
    main = model.expected_actualdata(pars)
    # By hand: the signal always scales with L; the background only when it is MC scaled
    # to σ × L by recastkit (otherwise it is data-driven).
    bkg_factor = 1.02 if lumi_scaled else 1.0
    np.testing.assert_allclose(main, [3.0 * 1.02 + 50.0 * bkg_factor,
                                      1.0 * 1.02 + 20.0 * bkg_factor], rtol=1e-12)


def _h(values: list[float]) -> hist.Hist:
    h = hist.Hist(hist.axis.Variable(EDGES), storage=hist.storage.Weight())
    h.view().value = values
    h.view().variance = [v * 0.01 for v in values]
    return h


def _ledger(lumi_ifb: float) -> dict[str, object]:
    return {"normalization": {"scale": 0.1, "xsec_fb": 10.0, "k_factor": 1.0,
                              "lumi_ifb": lumi_ifb, "lumi_rel_unc": 0.0113}}


def _no_plot(inputs: object, path: Path, **kwargs: object) -> None:
    Path(path).write_bytes(b"")  # the plots are not under test here (and cost seconds)


def test_fit_gives_ledger_backgrounds_the_lumi_modifier(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import recastkit.report

    monkeypatch.setattr(recastkit.report, "plot_hists", _no_plot)
    monkeypatch.setattr(recastkit.report, "plot_limit", _no_plot)
    sig, bkg, bkg2, data = (tmp_path / n for n in ("s.root", "b.root", "b2.root", "d.root"))
    write_hists(sig, {"h": _h([30.0, 10.0])}, _ledger(44.6306))
    write_hists(bkg, {"h": _h([50.0, 20.0])}, _ledger(44.6306))
    write_hists(bkg2, {"h": _h([5.0, 2.0])})  # data-driven: no ledger
    hd = hist.Hist(hist.axis.Variable(EDGES), storage=hist.storage.Weight())
    hd.view().value, hd.view().variance = [55.0, 22.0], [55.0, 22.0]
    write_hists(data, {"h": hd})
    out = tmp_path / "fit"
    req = FitRequest(signal=str(sig), output=out, backgrounds=(str(bkg), str(bkg2)),
                     data=str(data), lumi_rel_unc="from-catalog", n_points=3, mu_max=2.0)
    outcome = run_fit(req)
    ws = json.loads((out / "workspace.json").read_text())
    mods = {s["name"]: {m["type"] for m in s["modifiers"]} for s in ws["channels"][0]["samples"]}
    assert "lumi" in mods["signal"]
    assert "lumi" in mods["background_1"]
    assert "lumi" not in mods["background_2"]
    assert any("correlated" in n for n in outcome.result.notes)

    # A background scaled to another luminosity than the signal is reported, not mixed
    # silently (warning and a note in the result).
    write_hists(bkg, {"h": _h([50.0, 20.0])}, _ledger(58.7916))
    notes = run_fit(req).result.notes
    assert ("background_1 is normalized to L = 58.7916 fb^-1 but the signal to "
            "L = 44.6306 fb^-1 (one luminosity modifier for both)") in notes
