"""``recastkit scale``: the worked example through the CLI, errors, no partial outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from recastkit.cli import main
from recastkit.io.hists import read_hist, read_hists_and_metadata

WORKED = ["--sumw", "6813.025800", "--xsec", "44.837 fb", "--lumi", "140.1 fb^-1"]


@pytest.fixture
def hist_txt(tmp_path: Path) -> Path:
    path = tmp_path / "h.txt"
    path.write_text("0 100 200 300\n1 2 3\n0.5 1 4\n")
    return path


def test_worked_example_json(tmp_path: Path, hist_txt: Path) -> None:
    out = tmp_path / "scaled.json"
    result = CliRunner().invoke(main, ["scale", str(hist_txt), "-o", str(out), *WORKED, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["scale"] == pytest.approx(0.922008, rel=1e-6)
    assert doc["expected_yield"] == pytest.approx(44.837 * 140.1, rel=1e-12)
    assert [f["name"] for f in doc["factors"]] == [
        "cross section", "filter efficiency", "k-factor", "luminosity", "sum of weights"]
    assert {"name", "value", "unit", "source"} <= set(doc["factors"][0])
    s = doc["scale"]
    h = read_hist(out)
    np.testing.assert_allclose(h.values(), np.array([1, 2, 3]) * s, rtol=1e-12)
    np.testing.assert_allclose(h.variances(), np.array([0.5, 1, 4]) * s * s, rtol=1e-12)
    _, meta = read_hists_and_metadata(out)
    assert meta["normalization"]["scale"] == pytest.approx(s, rel=1e-15)


def test_bare_number_options_carry_the_unit(tmp_path: Path, hist_txt: Path) -> None:
    out = tmp_path / "s.txt"
    args = ["scale", str(hist_txt), "-o", str(out), "--sumw", "6813.0258",
            "--xsec-fb", "44.837", "--lumi-ifb", "140.1", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scale"] == pytest.approx(0.922008, rel=1e-6)


def test_pb_and_pb_inverse_give_the_same_scale(tmp_path: Path, hist_txt: Path) -> None:
    out = tmp_path / "s.root"
    args = ["scale", str(hist_txt), "-o", str(out), "--sumw", "6813.0258",
            "--xsec", "0.044837 pb", "--lumi", "140100 pb-1", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scale"] == pytest.approx(0.922008, rel=1e-6)
    assert read_hist(f"{out}:h").values()[0] == pytest.approx(0.922008, rel=1e-6)


def test_human_output_is_a_ledger(tmp_path: Path, hist_txt: Path) -> None:
    result = CliRunner().invoke(main, ["scale", str(hist_txt), "-o", str(tmp_path / "o.txt"),
                                       *WORKED])
    assert result.exit_code == 0, result.output
    for text in ("cross section", "luminosity", "sum of weights", "0.922008", "user value"):
        assert text in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sumw", "6813", "--xsec", "44.837", "--lumi", "140.1 fb^-1"], "has no unit"),
        (["--sumw", "6813", "--xsec", "44.837 fb"], "no luminosity"),
        (["--xsec", "44.837 fb", "--lumi", "140.1/fb"], "no sum of generator weights"),
        (["--sumw", "-3", "--xsec", "44.837 fb", "--lumi", "140.1/fb"], "sum of weights"),
        (["--sumw", "6813", "--lumi", "140.1/fb"], "no cross section"),
    ],
)
def test_errors_one_line_exit_2_nothing_written(tmp_path: Path, hist_txt: Path,
                                                args: list[str], message: str) -> None:
    out = tmp_path / "out.root"
    result = CliRunner().invoke(main, ["scale", str(hist_txt), "-o", str(out), *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert [ln for ln in result.stderr.splitlines() if ln.startswith("Error")] == [
        result.stderr.strip().splitlines()[-1]
    ]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.txt"]


def test_missing_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["scale", str(tmp_path / "nope.root:h"), "-o",
                                       str(tmp_path / "o.root"), *WORKED])
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_2d_root_histogram_is_scaled_like_1d(tmp_path: Path) -> None:
    """A TH2 is scaled bin by bin: values × s, variances × s², s = σ·L/Σw from the inputs."""
    import hist
    import uproot

    h2 = hist.Hist.new.Reg(2, 0, 2, name="x").Reg(3, 0, 3, name="y").Weight()
    values = np.arange(1.0, 7.0).reshape(2, 3)
    variances = values * 0.25
    h2.view().value = values
    h2.view().variance = variances
    src = tmp_path / "in.root"
    with uproot.recreate(src) as f:
        f["h_2d"] = h2
        f["h_1d"] = hist.Hist.new.Reg(2, 0, 2).Weight()
    out = tmp_path / "out.root"
    result = CliRunner().invoke(main, ["scale", str(src), "-o", str(out), *WORKED, "--json"])
    assert result.exit_code == 0, result.output
    s = 44.837 * 140.1 / 6813.0258
    assert json.loads(result.stdout)["histograms"] == ["h_1d", "h_2d"]
    with uproot.open(out) as f:
        assert f.classnames()["h_2d;1"] == "TH2D"
        np.testing.assert_allclose(f["h_2d"].values(), values * s, rtol=1e-12)
        np.testing.assert_allclose(f["h_2d"].variances(), variances * s * s, rtol=1e-12)
