"""Published HEPData likelihood (ATLAS SUSY-2018-31 sbottom, RegionA) on one signal point."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyhf
import pytest

from recastkit.exceptions import StatsError
from recastkit.stats.grid import apply_patches, evaluate_grid, point_name

# pyhf tests/test_regression.py::test_sbottom_regionA_1300_205_60
PUBLISHED_OBS = 0.24443627759085326
PUBLISHED_EXP = [0.09022509053507759, 0.1937839194960632, 0.38432344933992,
                 0.6557757334303531, 0.8910420971601081]


def test_region_a_1300_205_60(shared_file: Callable[[str], Path]) -> None:
    bkg = shared_file("likelihoods/sbottom_ins1748602/RegionA/BkgOnly.json")
    patch = shared_file("likelihoods/sbottom_ins1748602/RegionA/patch.sbottom_1300_205_60.json")
    (point,) = evaluate_grid(bkg, [patch])
    assert point.name == "sbottom_1300_205_60"
    assert point.mu == 1.0
    assert not point.excluded
    assert point.cls_observed == pytest.approx(PUBLISHED_OBS, rel=1e-5)
    assert np.allclose(point.cls_expected, PUBLISHED_EXP, rtol=1.5e-5, atol=0)
    # pyhf called directly gives the same numbers
    ws = pyhf.Workspace(json.loads(bkg.read_text()))
    model = ws.model(patches=[json.loads(patch.read_text())])
    obs, exp = pyhf.infer.hypotest(1.0, ws.data(model), model, return_expected_set=True)
    assert point.cls_observed == pytest.approx(float(obs), rel=1e-9)
    assert point.cls_expected == pytest.approx([float(e) for e in exp], rel=1e-9)


def test_patch_errors() -> None:
    assert point_name("a/patch.sbottom_1_2_3.json") == "sbottom_1_2_3"
    with pytest.raises(StatsError, match=r"p\.json: the patch does not apply"):
        apply_patches({"channels": []}, [("p.json", [{"op": "remove", "path": "/nope"}])])
    with pytest.raises(StatsError, match="patchset with 1 patches"):
        apply_patches({}, [("ps.json", {"patches": [{"metadata": {"name": "x"}}]})])
    with pytest.raises(StatsError, match="expected a JSON Patch"):
        apply_patches({}, [("p.json", 3)])
    doc = apply_patches({"a": 1}, [("p", {"metadata": {}, "patch": [
        {"op": "add", "path": "/b", "value": 2}]})])
    assert doc == {"a": 1, "b": 2}


def test_grid_with_limits_on_a_small_likelihood() -> None:
    bkg_only = {
        "channels": [{"name": "sr", "samples": [
            {"name": "bkg", "data": [50.0, 30.0],
             "modifiers": [{"name": "bkg_norm", "type": "normsys",
                            "data": {"hi": 1.05, "lo": 0.95}},
                           {"name": "mu", "type": "normfactor", "data": None}]}]}],
        "observations": [{"name": "sr", "data": [52.0, 29.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }
    # the published background-only files carry the POI on a dummy sample; mimic with a
    # patch that removes it from the background and adds the signal
    def patch(scale: float) -> list[dict[str, object]]:
        return [
            {"op": "remove", "path": "/channels/0/samples/0/modifiers/1"},
            {"op": "add", "path": "/channels/0/samples/-", "value": {
                "name": "sig", "data": [4.0 * scale, 6.0 * scale],
                "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]}},
        ]

    points = evaluate_grid(bkg_only, {"weak": patch(1.0), "strong": patch(4.0)}, limits=True)
    assert [p.name for p in points] == ["weak", "strong"]
    weak, strong = points
    assert strong.cls_observed < weak.cls_observed
    assert strong.excluded
    assert not weak.excluded
    for p, scale in ((weak, 1.0), (strong, 4.0)):
        assert p.observed_mu is not None
        assert p.expected_mu is not None
        ws = pyhf.Workspace(apply_patches(bkg_only, [("p", patch(scale))]))
        model = ws.model()
        obs, _ = pyhf.infer.hypotest(p.observed_mu, ws.data(model), model,
                                     return_expected_set=True)
        assert float(obs) == pytest.approx(0.05, abs=1e-3)
    # limits scale inversely with the signal yield (same background, same data)
    assert weak.observed_mu == pytest.approx(4.0 * strong.observed_mu, rel=1e-3)
