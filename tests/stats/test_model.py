"""Model specs -> pyhf JSON, checked against pyhf's published validation numbers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from recastkit.exceptions import StatsError
from recastkit.stats import (
    ChannelSpec,
    ModelSpec,
    ModifierSpec,
    ParameterSetting,
    SampleSpec,
    build_workspace,
    compute_cls,
    make_likelihood,
    spec_from_workspace,
)

# pyhf tests/test_validation.py (expected_result_1bin_shapesys), see shared data README §2.3
EXP_1BIN_OBS = 0.45418892944576333
EXP_1BIN_EXP = [0.06372011644331387, 0.1509686618126131, 0.3279657430196915,
                0.604613569829645, 0.8662652332047568]
# ROOT-computed reference for shapesys_nuisparfilter_workspace.json (same source)
EXP_FILTER_OBS = 0.004360634405484502
EXP_FILTER_EXP = [2.702197937866914e-05, 0.00037099917612576155, 0.004360634386335687,
                  0.03815031509701916, 0.20203027564155074]


def test_1bin_shapesys_matches_pyhf_validation(shared_file: Callable[[str], Path]) -> None:
    source = json.loads(shared_file("likelihoods/pyhf_validation/1bin_example1.json").read_text())
    bd = source["bindata"]
    spec = ModelSpec(
        channels=(ChannelSpec("singlechannel", (
            SampleSpec("signal", bd["sig"], modifiers=(ModifierSpec.normfactor("mu"),)),
            SampleSpec("background", bd["bkg"],
                       modifiers=(ModifierSpec.shapesys("uncorr_bkguncrt", bd["bkgerr"]),)),
        )),),
        observations={"singlechannel": bd["data"]},
        poi="mu",
        normsys_interpcode="code1",
    )
    ws = build_workspace(spec)
    assert ws["channels"][0]["samples"][1]["modifiers"] == [
        {"data": [7.0], "name": "uncorr_bkguncrt", "type": "shapesys"}
    ]
    lh = make_likelihood(spec)
    assert lh.data == (55.0, (50.0 / 7.0) ** 2)  # main data + shapesys auxdata (b/σ)²
    res = compute_cls(lh, 1.0, "q")
    assert res.cls_observed == pytest.approx(EXP_1BIN_OBS, abs=1e-6)
    assert np.allclose(res.cls_expected, EXP_1BIN_EXP, atol=1e-6, rtol=0)


def test_nuisparfilter_workspace_matches_root(shared_file: Callable[[str], Path]) -> None:
    doc = json.loads(shared_file(
        "likelihoods/pyhf_validation/shapesys_nuisparfilter_workspace.json").read_text())
    spec = spec_from_workspace(doc)
    assert spec.poi == "SigXsecOverSM"
    assert spec.normsys_interpcode == "code4"
    assert spec.histosys_interpcode == "code4p"
    # round trip: our builder reproduces the published workspace
    assert build_workspace(spec) == json.loads(json.dumps(doc), parse_int=float) | {
        "version": "1.0.0"}
    res = compute_cls(make_likelihood(spec), 1.0, "qtilde")
    assert res.cls_observed == pytest.approx(EXP_FILTER_OBS, rel=1e-5)
    assert np.allclose(res.cls_expected, EXP_FILTER_EXP, atol=1e-4, rtol=1e-5)


def test_every_modifier_type_is_accepted_by_pyhf() -> None:
    import pyhf

    spec = ModelSpec(
        channels=(ChannelSpec("ch", (
            SampleSpec("sig", (5.0, 10.0), (0.25, 1.0), (
                ModifierSpec.normfactor("mu"), ModifierSpec.normsys("xsec", 0.9, 1.1),
                ModifierSpec.lumi())),
            SampleSpec("bkg", (50.0, 60.0), (4.0, 9.0), (
                ModifierSpec.histosys("jes", (45.0, 58.0), (55.0, 62.0)),
                ModifierSpec.shapesys("bkg_unc", (5.0, 6.0)))),
            SampleSpec("free", (1.0, 1.0), modifiers=(ModifierSpec.shapefactor("sf"),)),
        )),),
        observations={"ch": (55, 70)},
        parameters=(ParameterSetting.lumi(0.02),),
    )
    ws = build_workspace(spec)
    types = {m["type"] for s in ws["channels"][0]["samples"] for m in s["modifiers"]}
    assert types == {"normfactor", "normsys", "lumi", "histosys", "shapesys", "staterror",
                     "shapefactor"}
    stat = ws["channels"][0]["samples"][0]["modifiers"][-1]
    assert stat == {"data": [0.5, 1.0], "name": "staterror_ch", "type": "staterror"}
    lumi = ws["measurements"][0]["config"]["parameters"][0]
    assert lumi == {"name": "lumi", "auxdata": [1.0], "sigmas": [0.02], "inits": [1.0],
                    "bounds": [[pytest.approx(0.9), pytest.approx(1.1)]]}
    model = pyhf.Workspace(ws).model()
    assert set(model.config.par_names) >= {"mu", "xsec", "lumi", "jes", "sf[0]", "sf[1]"}
    assert spec_from_workspace(ws).channels[0].samples[1].modifiers[0].hi_data == (55.0, 62.0)


def test_bad_specs_raise() -> None:
    sig = SampleSpec("sig", (1.0, 2.0), modifiers=(ModifierSpec.normfactor("mu"),))
    with pytest.raises(StatsError, match="3 observed bins"):
        ModelSpec((ChannelSpec("ch", (sig,)),), {"ch": (1, 2, 3)})
    with pytest.raises(StatsError, match="POI 'nope'"):
        ModelSpec((ChannelSpec("ch", (sig,)),), {"ch": (1, 2)}, poi="nope")
    with pytest.raises(StatsError, match="valid: code1, code4"):
        ModelSpec((ChannelSpec("ch", (sig,)),), {"ch": (1, 2)}, normsys_interpcode="code9")
    with pytest.raises(StatsError, match="valid types"):
        ModifierSpec("x", "weird")  # type: ignore[arg-type]
    with pytest.raises(StatsError, match="positive finite factor"):
        ModifierSpec.normsys("x", 0.0, 1.1)
    with pytest.raises(StatsError, match="has 3 bins, the sample has 2"):
        SampleSpec("b", (1.0, 2.0), modifiers=(ModifierSpec.shapesys("s", (1, 1, 1)),))
    with pytest.raises(StatsError, match="relative value in"):
        ParameterSetting.lumi(1.5)
    with pytest.raises(StatsError, match="no measurement 'x'; valid: GaussExample"):
        spec_from_workspace({"measurements": [{"name": "GaussExample", "config": {}}],
                             "channels": [], "observations": []}, measurement="x")
