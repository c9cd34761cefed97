"""``recastkit reinterpret``: the preserved chain on new signals, backgrounds and data cached."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from recastkit.cli import main
from recastkit.exceptions import ConfigError
from recastkit.io.synthetic import write_signal_sample
from recastkit.metadata import Catalog
from recastkit.workflow.run import SignalInput

NEW_DATASET = "mc16_13TeV.999001.Synthetic_Zprime250_jj.deriv.DAOD_EXOT27.e9999_s3126_r10724_p3840"
PHYSLITE_DATASET = ("mc16_13TeV.410470.PhPy8EG_A14_ttbar_hdamp258p75_nonallhad.deriv."
                    "DAOD_PHYSLITE.e6337_s3126_r10724_p4164")
BACKGROUND_STEPS = ("generate-dijet", "select-dijet", "scale-dijet", "mock-mock", "toy-data")


def _copy_run(tiny_run: Any, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(tiny_run.outdir, out)
    return out


def _status(out: Path) -> dict[str, str]:
    return {s["name"]: s["status"] for s in json.loads((out / "steps.json").read_text())}


def test_reinterpret_with_a_generated_signal_of_another_dsid(
        tiny: Any, tiny_run: Any, tmp_path: Path) -> None:
    out = _copy_run(tiny_run, tmp_path)
    sample = write_signal_sample(tmp_path / "zprime.root", 1500, 11, resonance_gev=250.0,
                                 sum_of_weights=500.0)
    table = tmp_path / "zprime_xsec.txt"
    table.write_text(tiny.PMG_HEADER + "\n"
                     + tiny.pmg_row(999001, "Zprime250_jj", 0.02, 0.5, 1.1, etag="e9999") + "\n")
    db = tmp_path / "cat.sqlite"
    with Catalog(db) as cat:
        cat.import_table(table)
    spec = Path(tiny_run.spec.path)
    res = CliRunner().invoke(main, ["reinterpret", str(spec), "--signal",
                                    f"{NEW_DATASET}={sample.path}", "--catalog", str(db),
                                    "-o", str(out)])
    assert res.exit_code == 0, res.output
    status = _status(out)
    for name in BACKGROUND_STEPS:
        assert status[name] == "cached", name
    for name in ("select-999001.e9999", "scale-999001.e9999", "fit-999001.e9999"):
        assert status[name] == "ran", name
    result_dir = out / "reinterpret" / "999001.e9999"
    doc = json.loads((result_dir / "result.json").read_text())
    ledger = doc["normalization"]["999001.e9999"]
    # σ·ε·k·L/Σw = 20 fb × 0.5 × 1.1 × 140.1 fb^-1 / 500 (Runs tree of the new file)
    assert ledger["scale"] == pytest.approx(20.0 * 0.5 * 1.1 * tiny.LUMI_IFB / 500.0, rel=1e-12)
    sources = {f["name"]: f["source"] for f in ledger["factors"]}
    assert sources["cross section"] == "catalog zprime_xsec.txt:2"
    assert sources["k-factor"] == "catalog zprime_xsec.txt:2"
    assert "Runs tree" in sources["sum of weights"]
    assert doc["limit"]["xsec_ref_fb"] == pytest.approx(20.0 * 1.1, rel=1e-12)
    for name in ("manifest.json", "report.html", "fit/limit.json", "fit/workspace.json"):
        assert (result_dir / name).is_file(), name
    table_doc = json.loads((out / "reinterpretation.json").read_text())
    (row,) = table_doc["signals"]
    assert row["dataset"] == NEW_DATASET
    assert row["observed_mu"] == doc["limit"]["observed_mu"]
    assert "catalog zprime_xsec.txt:2" in res.stdout
    assert "Observed" in res.stdout
    assert "Reinterpretation of tiny" in res.stdout
    assert "999001.e9999" in res.stdout
    manifest = json.loads((result_dir / "manifest.json").read_text())
    assert manifest["analysis"]["signal_replaced"] is True
    assert manifest["analysis"]["signal_dataset"] == NEW_DATASET
    # the original run's outputs are untouched
    assert json.loads((out / "result.json").read_text())["signal"] == "sig"


def test_reinterpret_with_the_physlite_file_as_signal(
        tiny: Any, tiny_run: Any, tmp_path: Path, shared_file: Callable[[str], Path]) -> None:
    from recastkit.units import Luminosity
    from recastkit.workflow.run import reinterpret
    from recastkit.workflow.spec import Overrides, load_spec

    physlite = shared_file("root/DAOD_PHYSLITE_21.2.108.0.art.pool.root")
    table = shared_file("xsec/SUSYTools/mc16_13TeV_Backgrounds.txt")
    out = _copy_run(tiny_run, tmp_path)
    spec = load_spec(tiny.write_spec(tmp_path / "spec", fast=True))
    # at 140 fb^-1, 6e7 tt̄ events would swamp the 5e4 background events (pyhf's fit from
    # μ = 1 fails); a small luminosity given for the signal keeps the fit sensible
    result = reinterpret(spec, [SignalInput(PHYSLITE_DATASET, (str(physlite),))], out,
                         catalog=table, overrides=Overrides(lumi=Luminosity.from_ifb(0.01)))
    (run,) = result.results
    ledger = run.signal.ledger
    assert ledger is not None
    # shared data README §1.1: CutBookkeepers AllExecutedEvents/StreamAOD = 29465.34912109375
    assert ledger.sum_of_weights == 29465.34912109375
    assert "CutBookkeepers" in ledger.sum_of_weights_source
    # README §3.2: SUSYTools row 410470: 729.77 pb, k = 1.13975636159, ε = 0.54383
    assert ledger.xsec.pb == pytest.approx(729.77, rel=1e-12)
    assert ledger.filter_eff == pytest.approx(0.54383, rel=1e-12)
    assert ledger.k_factor == pytest.approx(1.13975636159, rel=1e-12)
    for src in (ledger.xsec_source, ledger.filter_eff_source, ledger.k_factor_source):
        assert src.startswith("catalog mc16_13TeV_Backgrounds.txt:")
    assert ledger.lumi_ifb == 0.01
    assert ledger.lumi_source == "user value"
    # README §1.1 worked example with L = 140 fb^-1: scale = 2149.20398...
    assert ledger.scale * 140.0 / ledger.lumi_ifb == pytest.approx(2149.20398, rel=1e-8)
    status = _status(out)
    for name in BACKGROUND_STEPS:
        assert status[name] == "cached", name
    records = run.manifest["catalog"]["records"]
    assert any(r["dsid"] == 410470 and r["sample"] == "410470.e6337" for r in records)


@pytest.mark.parametrize("text", ["noequals", "name=", "=a.root", ""])
def test_signal_option_must_name_dataset_and_files(text: str) -> None:
    with pytest.raises(ConfigError, match="DATASET_NAME=FILE"):
        SignalInput.parse(text)


def test_signal_sample_names() -> None:
    assert SignalInput.parse(f"{NEW_DATASET}=a.root,b.root").files == ("a.root", "b.root")
    assert SignalInput(NEW_DATASET, ("a",)).sample_name == "999001.e9999"
    assert SignalInput("345055", ("a",)).sample_name == "345055"


def test_the_same_signal_twice_is_refused_before_any_work(tiny: Any, tmp_path: Path) -> None:
    from recastkit.workflow.run import reinterpret
    from recastkit.workflow.spec import load_spec

    sig = SignalInput(NEW_DATASET, ("a.root",))
    with pytest.raises(ConfigError, match=r"several signals with the sample name 999001\.e9999"):
        reinterpret(load_spec(tiny.write_spec(tmp_path / "s")), [sig, sig], tmp_path / "out")
    assert not (tmp_path / "out").exists()
