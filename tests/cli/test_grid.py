"""``recastkit grid``: the published SUSY-2018-31 tarball (Region A subset) and a synthetic grid."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from recastkit.cli import main
from recastkit.report.hepdata import validate_submission

TARBALL = "likelihoods/pyhf-ins1748602-probability-models.tar.gz"


def test_region_a_tarball_table_contour_hepdata(shared_file: Callable[[str], Path],
                                                tmp_path: Path) -> None:
    archive = shared_file(TARBALL)
    out = tmp_path / "regionA"
    args = ["grid", f"{archive}:RegionA", "--pattern", "sbottom_{m1}_{m2}_{m3}",
            "--select", "sbottom_1[34]00_[23][05][05]_60",
            "--x", "m1", "--y", "m2", "--fix", "m3=60", "--x-label", "m(b̃₁) [GeV]",
            "--y-label", "m(χ̃₂⁰) [GeV]", "--executor", "iterative", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "sbottom_1300_205_60" in result.stdout
    rows = list(csv.DictReader((out / "points.csv").open()))
    assert {"name", "m1", "m2", "m3", "cls_observed", "cls_expected_median", "status"} <= set(
        rows[0])
    by_name = {r["name"]: r for r in rows}
    point = by_name["sbottom_1300_205_60"]
    assert float(point["m1"]) == 1300.0
    assert point["status"] == "converged"
    # pyhf tests/test_regression.py (sbottom RegionA 1300_205_60): CLs_obs = 0.24443627759
    assert float(point["cls_observed"]) == pytest.approx(0.24443627759, rel=1e-5)
    doc = json.loads((out / "points.json").read_text())
    assert doc["source"].endswith("tar.gz:RegionA")
    assert len(doc["points"]) == len(rows) >= 5
    contour = json.loads((out / "contour.json").read_text())
    assert contour["x"] == "m1"
    assert contour["fixed"] == {"m3": 60.0}
    assert (out / "contour.png").stat().st_size > 10_000
    assert validate_submission(out / "hepdata") == []
    assert (out / "hepdata.tar.gz").exists()
    # a second run reuses every point from the store
    again = CliRunner().invoke(main, [*args, "--no-hepdata"])
    assert again.exit_code == 0, again.output
    assert f"({len(rows)} from the store" in again.stderr


def test_synthetic_grid_with_cross_check(synthetic_grid: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "grid", str(synthetic_grid / "BkgOnly.json"), str(synthetic_grid),
        "--pattern", "sig_{m1}_{m2}", "--select", "sig_[34]00_*", "--cross-check", "1",
        "--executor", "processes", "--workers", "2", "--no-hepdata", "--json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [p["name"] for p in doc["points"]] == [
        "sig_300_0", "sig_300_100", "sig_300_200", "sig_400_0", "sig_400_100", "sig_400_200"]
    assert doc["points"][0]["parameters"] == {"m1": 300.0, "m2": 0.0}
    line = next(x for x in result.stderr.splitlines() if x.startswith("cross-check"))
    worst = float(line.split("deviation ")[1].split()[0])
    assert worst < 1e-3  # pyhf's default fits stop short of the minimum (see test_batchfit)


def test_bad_inputs_exit_2(shared_file: Callable[[str], Path], synthetic_grid: Path,
                           tmp_path: Path) -> None:
    archive = shared_file(TARBALL)
    runner = CliRunner()
    result = runner.invoke(main, ["grid", f"{archive}:RegionD", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "regions: RegionA, RegionB, RegionC" in result.stderr
    assert "Traceback" not in result.output
    result = runner.invoke(main, ["grid", str(synthetic_grid), "--pattern", "sig_{m1}_{m2}",
                                  "--x", "mass", "--y", "m2", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "--x mass: not a parameter of the points; parameters: m1, m2" in result.stderr
    assert not (tmp_path / "o" / "points.csv").exists()
    result = runner.invoke(main, ["grid", str(synthetic_grid), "--pattern", "sbottom_{m1}"])
    assert result.exit_code == 2
    assert "does not match --pattern" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(main, ["grid", str(empty)])
    assert result.exit_code == 2
    assert "BkgOnly.json" in result.stderr
    result = runner.invoke(main, ["grid", str(synthetic_grid), "--fix", "m3"])
    assert result.exit_code == 2
    assert "expected NAME=NUMBER" in result.stderr


def test_signal_histograms_over_one_background(tmp_path: Path) -> None:
    """Several scaled signals of recastkit runs, one background and data: recastkit fit's model."""
    import hist
    import numpy as np

    from recastkit.io.hists import write_hists

    def h(values: list[float]) -> hist.Hist:
        out = hist.Hist.new.Regular(4, 0, 400, name="mjj").Weight()
        out.view().value = np.array(values)
        out.view().variance = np.array(values) * 0.05
        return out

    bkg = tmp_path / "bkg.json"
    write_hists(bkg, {"h": h([100.0, 60.0, 30.0, 10.0])})
    data = tmp_path / "data.json"
    write_hists(data, {"h": h([104.0, 57.0, 33.0, 11.0])})
    signals = []
    for k, scale in enumerate((2.0, 8.0, 20.0)):
        path = tmp_path / f"sig_{k}.json"
        write_hists(path, {"h": h([0.5 * scale, 1.0 * scale, 1.5 * scale, 1.0 * scale])})
        signals.append(str(path))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "grid", "--signal-hists", *signals, "--background", str(bkg), "--data", str(data),
        "--executor", "iterative", "--no-hepdata", "--json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    points = json.loads(result.stdout)["points"]
    assert [p["name"] for p in points] == ["sig_0", "sig_1", "sig_2"]
    cls = [p["cls_observed"] for p in points]
    assert cls[0] > cls[1] > cls[2]
    assert all(p["status"] == "converged" for p in points)
    bad = CliRunner().invoke(main, ["grid", "--signal-hists", *signals, "--data", str(data)])
    assert bad.exit_code == 2
    assert "--mock-background" in bad.stderr
