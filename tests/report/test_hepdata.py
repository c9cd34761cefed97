"""The HEPData submission of a grid validates with hepdata-validator; the contour plot/JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from recastkit.report.contour import plot_contour, write_contour_json
from recastkit.report.hepdata import validate_submission, write_submission
from recastkit.stats.contour import exclusion_contour
from recastkit.stats.results import PointResult


def _results() -> list[PointResult]:
    out = []
    for x in range(200, 1001, 100):
        for y in range(0, 801, 100):
            s = x + y
            cls = [min(1.0, 0.05 * math.exp((s - c) / 100.0)) for c in
                   (1000, 900, 950, 1000, 1050, 1100)]
            out.append(PointResult(f"sb_{x}_{y}", 1.0, cls[0], tuple(cls[1:]),  # type: ignore[arg-type]
                                   "converged", parameters={"m1": float(x), "m2": float(y)}))
    out.append(PointResult("sb_nan", 1.0, math.nan, (math.nan,) * 5, "failed",  # type: ignore[arg-type]
                           reason="pyhf gives NaN", parameters={"m1": 1100.0, "m2": 0.0}))
    return out


def test_submission_validates(tmp_path: Path) -> None:
    results = _results()
    contour = exclusion_contour(results, "m1", "m2")
    labels = {"m1": "m(b̃₁) [GeV]", "m2": "m(χ̃₂⁰) [GeV]"}
    out = write_submission(tmp_path / "hepdata", results, contour, parameters=["m1", "m2"],
                           labels=labels, description="Source: test.")
    assert validate_submission(out) == []
    names = sorted(p.name for p in out.iterdir())
    assert "submission.yaml" in names
    assert (tmp_path / "hepdata.tar.gz").stat().st_size > 100
    docs = list(yaml.safe_load_all((out / "submission.yaml").read_text()))
    tables = [d["name"] for d in docs if "name" in d]
    assert tables[0] == "Observed exclusion contour"
    assert "CLs of every signal point" in tables
    obs = yaml.safe_load((out / docs[1]["data_file"]).read_text())
    assert obs["independent_variables"][0]["header"] == {"name": "m(b̃₁)", "units": "GeV"}
    # written again: replaced as a whole, nothing left in the working directory
    write_submission(tmp_path / "hepdata", results[:5], None, parameters=["m1", "m2"])
    assert validate_submission(out) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hepdata", "hepdata.tar.gz"]


def test_contour_plot_and_json(tmp_path: Path) -> None:
    contour = exclusion_contour(_results(), "m1", "m2")
    png = plot_contour(tmp_path / "contour.png", contour, labels={"m1": "m(b̃₁) [GeV]"})
    assert png.stat().st_size > 10_000
    doc = json.loads(write_contour_json(tmp_path / "contour.json", contour).read_text())
    assert doc["x"] == "m1"
    assert doc["observed"]
    assert doc["expected"]
    assert doc["expected_up"]
    assert all(len(p) == 2 for line in doc["observed"] for p in line)
