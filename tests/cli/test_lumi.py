"""``recastkit lumi``."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from recastkit.cli import main

KEYS = {"lumi_ifb", "years", "calibration", "rel_unc", "source"}
ZH = (
    "mc16_13TeV.345055.PowhegPythia8EvtGen_NNPDF3_AZNLO_ZH125J_MINLO_llbb_VpT.deriv."
    "DAOD_EXOT27.e5706_e5984_s3126_r10201_r10210_p3712"
)


def run_json(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(main, ["lumi", *args, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == KEYS
    return doc  # type: ignore[no-any-return]


def test_mc16a_json() -> None:
    doc = run_json("mc16a")
    assert doc["lumi_ifb"] == pytest.approx((3244.54 + 33402.2) / 1000, rel=1e-12)
    assert doc["lumi_ifb"] == pytest.approx(36.64674, rel=1e-12)
    assert doc["years"] == [2015, 2016]
    assert doc["calibration"] == "Run2-final"
    # 2015 (1.13 %) and 2016 (0.89 %), luminosity-weighted: 0.911 %
    assert doc["rel_unc"] == pytest.approx((3244.54 * 0.0113 + 33402.2 * 0.0089) / 36646.74,
                                           rel=1e-12)
    assert "2212.09379" in str(doc["source"])


def test_years_json() -> None:
    doc = run_json("2015", "2016", "2017", "2018")
    assert doc["lumi_ifb"] == pytest.approx(140.06894, rel=1e-12)
    assert doc["years"] == [2015, 2016, 2017, 2018]
    assert doc["rel_unc"] == 0.0083


def test_run2_and_calibration_json() -> None:
    assert run_json("run2")["lumi_ifb"] == pytest.approx(140.06894, rel=1e-12)
    doc = run_json("run2", "--calibration", "Run2-2019")
    assert doc["lumi_ifb"] == pytest.approx(138.96516, rel=1e-12)
    assert doc["calibration"] == "Run2-2019"
    assert doc["rel_unc"] == 0.017


def test_several_campaigns_union_years() -> None:
    doc = run_json("mc16d", "mc16e")
    assert doc["years"] == [2017, 2018]
    assert doc["lumi_ifb"] == pytest.approx((44630.6 + 58791.6) / 1000, rel=1e-12)


def test_dataset_json() -> None:
    doc = run_json(ZH)
    assert doc["years"] == [2017]
    assert doc["lumi_ifb"] == pytest.approx(44.6306, rel=1e-12)


def test_user_value_split_by_shell() -> None:
    doc = run_json("140.1", "fb^-1")
    assert doc["lumi_ifb"] == pytest.approx(140.1, rel=1e-12)
    assert doc["calibration"] == "user"
    assert doc["source"] == "user value"
    assert doc["rel_unc"] is None
    assert doc["years"] == []


def test_human_table() -> None:
    result = CliRunner().invoke(main, ["lumi", "mc16a"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "2015" in out
    assert "3.24454" in out
    assert "33.4022" in out
    assert "total" in out
    assert "36.64674" in out
    assert "0.33394" in out  # 36.64674 × 0.911 % = 3244.54 × 1.13 % + 33402.2 × 0.89 % [pb^-1]
    assert "Run2-final" in out


def test_unknown_campaign_exit_2_one_line() -> None:
    result = CliRunner().invoke(main, ["lumi", "mc17z"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    assert "mc17z" in lines[0]
    assert "mc16a" in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_unknown_calibration_exit_2() -> None:
    result = CliRunner().invoke(main, ["lumi", "mc16a", "--calibration", "bogus"])
    assert result.exit_code == 2
    assert "Run2-final, Run2-2019" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_user_value_combined_is_usage_error() -> None:
    result = CliRunner().invoke(main, ["lumi", "2015", "140fb^-1"])
    assert result.exit_code == 2
    assert "user value" in result.stderr


def test_missing_argument_is_usage_error() -> None:
    result = CliRunner().invoke(main, ["lumi"])
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr
