"""The yadage export: yadage's own validation, REANA and recast-atlas entries, refusals, a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from recastkit import __version__
from recastkit.cli import main
from recastkit.io.synthetic import write_signal_sample

ZH = ("mc16_13TeV.345055.PowhegPythia8EvtGen_NNPDF3_AZNLO_ZH125J_MINLO_llbb_VpT.deriv."
      "DAOD_EXOT27.e5706_s3126_r10724_p3840")
TT = ("mc16_13TeV.410470.PhPy8EG_A14_ttbar_hdamp258p75_nonallhad.deriv.DAOD_EXOT27."
      "e6337_s3126_r10724_p3840")
#: PMG-format table: σ in pb, ε, k for both samples.
TABLE = (
    "dataset_number/I:physics_short/C:crossSection_pb/D:genFiltEff/D:kFactor/D:"
    "relUncertUP/D:relUncertDOWN/D:generator_name/C:etag/C\n"
    "345055\t\tZH125\t\t0.044837\t\t1.0\t\t1.0\t\t0.0\t\t0.0\t\tPowheg\t\te5706\n"
    "410470\t\tttbar\t\t0.0175\t\t0.5\t\t1.2\t\t0.0\t\t0.0\t\tPowheg\t\te6337\n"
)
SUMW_SIG, SUMW_BKG = 6813.0258, 2000.0


SR = {"name": "SR", "selection": {"jets": {"min_jets": 2},
                                  "histograms": {"mjj": {"bins": 20, "low_gev": 0,
                                                         "high_gev": 500}}}}


def _spec(tmp: Path, **changes: Any) -> Path:
    """A small analysis: generated-like signal and background files, data files, one table."""
    events = tmp / "events"
    events.mkdir(exist_ok=True)
    write_signal_sample(events / "sig.root", 1500, 1, sum_of_weights=SUMW_SIG)
    write_signal_sample(events / "tt.root", 1500, 2, resonance_gev=300.0,
                        sum_of_weights=SUMW_BKG)
    # data: weighted events, selected with unit weights (the export's data selection)
    write_signal_sample(events / "data.root", 1500, 3, resonance_gev=300.0)
    (tmp / "xsec.txt").write_text(TABLE, encoding="utf-8")
    doc: dict[str, Any] = {
        "version": 1, "name": "small-search", "description": "A small search for the test.",
        "samples": {
            "signal": {"name": "ZH", "dataset": ZH, "files": ["events/sig.root"]},
            "backgrounds": [{"name": "ttbar", "dataset": TT, "files": ["events/tt.root"]}],
            "data": {"files": ["events/data.root"]},
        },
        "regions": [
            SR,
            {"name": "CR-3j", "selection": {"jets": {"min_jets": 3},
                                            "histograms": {"mjj": {"bins": 20, "low_gev": 0,
                                                                   "high_gev": 500}}}},
        ],
        "normalization": {"catalogs": ["xsec.txt"], "lumi": "140.1 fb^-1",
                          "overrides": {"ZH": {"k_factor": 1.0}}},
        "interpretation": {"regions": ["SR"], "observable": "h_mjj_kin", "n_points": 5,
                           "rebin": 4, "cl": 0.9},
    }
    for key, value in changes.items():
        doc[key] = value
    path = tmp / "analysis.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("export")
    spec = _spec(tmp)
    out = tmp / "wf"
    res = CliRunner().invoke(main, ["export", "yadage", str(spec), str(out), "--copy-inputs",
                                    "--image", "registry.example/recastkit", "--tag", "9.9"])
    assert res.exit_code == 0, res.output
    return spec, out


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_workflow_passes_yadage_validation(exported: tuple[Path, Path]) -> None:
    import yadage.workflow_loader
    import yadageschemas

    _, out = exported
    wf = yadage.workflow_loader.workflow("workflow.yml", toplevel=str(out), validate=True)
    stages = {s["name"]: s for s in wf["stages"]}
    assert list(stages) == [
        "catalog", "select_signal_SR", "scale_signal_SR", "select_signal_CR_3j",
        "scale_signal_CR_3j", "select_ttbar_SR", "scale_ttbar_SR", "select_ttbar_CR_3j",
        "scale_ttbar_CR_3j", "select_data_SR", "select_data_CR_3j", "fit_SR"]

    def params(name: str) -> dict[str, Any]:
        return {p["key"]: p["value"] for p in stages[name]["scheduler"]["parameters"]}

    def deps(name: str) -> list[str]:
        return list(stages[name]["dependencies"]["expressions"])

    # every stage reads upstream outputs by published name, never by path
    assert deps("select_signal_SR") == ["init"]
    assert params("select_signal_SR")["input_files"]["step"] == "init"
    assert params("select_signal_SR")["input_files"]["output"] == "signal_files"
    assert params("select_signal_SR")["dataset"]["output"] == "signal_dataset"
    assert deps("scale_signal_SR") == ["select_signal_SR", "catalog"]
    assert params("scale_signal_SR")["histfile"]["step"] == "select_signal_SR"
    assert params("scale_signal_SR")["histfile"]["output"] == "histfile"
    assert params("scale_signal_SR")["options"]["output"] == "signal_scale_options"
    assert deps("fit_SR") == ["scale_signal_SR", "scale_ttbar_SR", "select_data_SR"]
    fit = params("fit_SR")
    assert (fit["signal"]["step"], fit["bkg_ttbar"]["step"], fit["data"]["step"]) == (
        "scale_signal_SR", "scale_ttbar_SR", "select_data_SR")
    for name, stage in stages.items():
        for key, value in params(name).items():
            if isinstance(value, str):
                assert not value.startswith("/"), (name, key, value)
        step = stage["scheduler"]["step"]
        assert step["environment"]["image"] == "registry.example/recastkit"
        assert step["environment"]["imagetag"] == "9.9"
        assert step["process"]["cmd"].startswith("recastkit ")

    # each step definition on its own against the packtivity schema of yadage-schemas
    steps = _load(out / "steps.yml")
    assert set(steps) == {"import_catalog", "select_mc", "select_data", "scale", "fit"}
    for step in steps.values():
        yadageschemas.validate_spec(step, {"schema_name": "packtivity/packtivity-schema",
                                           "schemadir": None})
    assert params("fit_SR")["options"] == (
        "--test-stat qtilde --n-points 5 --rebin 4 --backend numpy --cl 0.9")
    fit_cmd = steps["fit"]["process"]["cmd"]
    assert "--background {bkg_ttbar}:{observable}" in fit_cmd
    assert "--data {data}:{observable}" in fit_cmd


def test_inputs_reana_and_recast_entries(exported: tuple[Path, Path]) -> None:
    _, out = exported
    inputs = _load(out / "inputs.yml")
    assert inputs["signal_dataset"] == ZH
    assert inputs["signal_files"] == ["inputs/signal/sig.root"]
    assert inputs["bkg_ttbar_dataset"] == TT
    assert inputs["data_files"] == ["inputs/data/data.root"]
    assert inputs["xsec_tables"] == ["inputs/xsec/xsec.txt"]
    assert inputs["signal_scale_options"] == "--lumi '140.1 fb^-1' --k-factor 1.0"
    assert _load(out / inputs["selection_CR_3j"])["jets"] == {"min_jets": 3}
    data_sel = _load(out / inputs["selection_CR_3j_data"])
    assert data_sel["jets"] == {"min_jets": 3}
    assert data_sel["input"] == {"unweighted": True}

    reana = _load(out / "reana.yaml")
    assert reana["workflow"] == {"type": "yadage", "file": "workflow.yml"}
    assert reana["inputs"]["parameters"] == inputs
    for f in reana["inputs"]["files"]:
        assert (out / f).is_file(), f
    assert "fit_SR/limit.json" in reana["outputs"]["files"]
    assert "fit_SR/limit.png" in reana["outputs"]["files"]

    recast = _load(out / "recast.yml")
    assert recast["name"] == "recastkit/small-search"
    assert set(recast["metadata"]) >= {"author", "short_description"}
    assert recast["spec"] == {"toplevel": str(out.resolve()), "workflow": "workflow.yml"}
    assert recast["example_inputs"]["default"]["initdata"] == inputs
    assert Path(recast["example_inputs"]["default"]["dataopts"]["initdir"]) == out.resolve()
    assert recast["results"][0]["relpath"] == "fit_SR/limit.json"


def test_default_image_is_tagged_with_the_version(tmp_path: Path) -> None:
    from recastkit.workflow.export import export_yadage

    spec = Path(__file__).resolve().parents[2] / "examples" / "demo" / "analysis.yml"
    res = export_yadage(spec, tmp_path / "wf")
    steps = _load(tmp_path / "wf" / "steps.yml")
    assert {s["environment"]["image"] for s in steps.values()} == {"recastkit/recastkit"}
    assert {s["environment"]["imagetag"] for s in steps.values()} == {__version__}
    assert res.stages == ("catalog", "select_signal_SR", "scale_signal_SR", "select_signal_CR",
                          "scale_signal_CR", "fit")
    # the generated signal is written next to the workflow, as an input REANA uploads
    assert res.parameters["signal_files"] == ["inputs/signal.root"]
    assert (tmp_path / "wf" / "inputs" / "signal.root").stat().st_size > 0
    assert "--mock-background --mock-name mock --toy-data --seed 42" in _load(
        tmp_path / "wf" / "workflow.yml")["stages"][-1]["scheduler"]["parameters"]["options"]


# --------------------------------------------------------------------------- several regions

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _stages(out: Path) -> dict[str, dict[str, Any]]:
    import yadage.workflow_loader

    wf = yadage.workflow_loader.workflow("workflow.yml", toplevel=str(out), validate=True)
    return {s["name"]: s for s in wf["stages"]}


def _params(stage: dict[str, Any]) -> dict[str, Any]:
    return {p["key"]: p["value"] for p in stage["scheduler"]["parameters"]}


def test_demo_exports_its_two_region_fit(tmp_path: Path) -> None:
    """The demo (SR + CR, mu_mock shared): one 'fit' stage fitting both regions."""
    import yadageschemas

    from recastkit.workflow.export import export_yadage

    out = tmp_path / "wf"
    res = export_yadage(EXAMPLES / "demo" / "analysis.yml", out)
    stages = _stages(out)
    assert list(stages) == ["catalog", "select_signal_SR", "scale_signal_SR",
                            "select_signal_CR", "scale_signal_CR", "fit"]
    fit = stages["fit"]
    assert list(fit["dependencies"]["expressions"]) == ["scale_signal_SR", "scale_signal_CR"]
    params = _params(fit)
    assert (params["signal_SR"]["step"], params["signal_CR"]["step"]) == (
        "scale_signal_SR", "scale_signal_CR")
    assert params["signal_SR"]["output"] == "scaled"
    assert (params["observable_SR"], params["observable_CR"]) == ("h_mjj_kin", "h_mjj_kin")
    assert params["options"] == (
        "--test-stat qtilde --n-points 21 --rebin 5 --backend numpy --lumi-unc from-catalog "
        "--free-background mock --mock-background --mock-name mock --toy-data --seed 42")
    step = fit["scheduler"]["step"]
    assert step["process"]["cmd"] == (
        "recastkit fit --region SR --region CR --signal SR={signal_SR}:{observable_SR} "
        "--signal CR={signal_CR}:{observable_CR} {options} -o {outputdir}")
    steps = _load(out / "steps.yml")
    assert "fit" not in steps
    yadageschemas.validate_spec(steps["fit_regions"], {
        "schema_name": "packtivity/packtivity-schema", "schemadir": None})
    assert steps["fit_regions"]["publisher"]["publish"]["hists_plot_CR"] == (
        "{outputdir}/hists_CR.png")
    assert res.results == ("fit/limit.json", "fit/limit.png", "fit/hists_SR.png",
                           "fit/hists_CR.png", "fit/workspace.json")
    assert _load(out / "reana.yaml")["outputs"]["files"] == list(res.results)
    recast = _load(out / "recast.yml")
    assert recast["results"][0]["relpath"] == "fit/limit.json"
    assert "regions SR, CR fitted together" in recast["results"][0]["name"]


def test_zh_example_exports_regions_written_in_the_expression_vocabulary(tmp_path: Path
                                                                         ) -> None:
    """examples/zh_llbb/run.yml: three regions in the expression vocabulary, theory
    uncertainties, a signal generated with objects."""
    import uproot

    from recastkit.regions import AnalysisConfig
    from recastkit.workflow.export import export_yadage

    out = tmp_path / "wf"
    export_yadage(EXAMPLES / "zh_llbb" / "run.yml", out)
    stages = _stages(out)
    assert list(stages)[-1] == "fit"
    params = _params(stages["fit"])
    assert [params[f"observable_{r}"] for r in ("SR", "CR_low", "CR_high")] == [
        "SR/mbb", "CR_low/mbb", "CR_high/mbb"]  # as 'recastkit select' names them
    options = params["options"]
    assert "--free-background mock --theory scale=scale:muR0p5_muF0p5," in options
    assert "--theory pdf=pdf_hessian:pdf1,pdf2 --theory-normalize acceptance" in options
    assert "--mock-background --mock-name mock --toy-data --seed 42" in options
    # each region's selection is the one-region analysis configuration 'recastkit select' takes
    for region in ("SR", "CR_low", "CR_high"):
        doc = _load(out / "inputs" / f"selection_{region}.yml")
        assert list(doc["regions"]) == [region]
        config = AnalysisConfig.from_mapping(doc, "test")
        assert [d.name for d in config.regions] == [region]
    with uproot.open(out / "inputs" / "signal.root") as f:
        assert "Electron_pt" in f["Events"]


def test_exported_fit_command_reproduces_the_run(tmp_path: Path) -> None:
    """The exported 'recastkit fit --region ...' command, given the histograms of
    'recastkit run' on the same spec (MC background with a free normalization, data files),
    gives the run's limits."""
    import shlex

    from recastkit.workflow.export import export_yadage
    from recastkit.workflow.run import run_analysis
    from recastkit.workflow.spec import OutputsSpec, load_spec

    spec_path = _spec(tmp_path, interpretation={
        "regions": ["SR", "CR-3j"], "free_backgrounds": ["ttbar"], "observable": "h_mjj_kin",
        "n_points": 5, "rebin": 4, "cl": 0.9})
    out = tmp_path / "wf"
    export_yadage(spec_path, out)
    spec = load_spec(spec_path)
    spec = spec.__class__(**{**spec.__dict__, "outputs": OutputsSpec(report=False,
                                                                      plots=False)})
    run = run_analysis(spec, tmp_path / "run")
    sig, tt, data = run.samples
    params = _params(_stages(out)["fit"])
    values: dict[str, str] = {"options": params["options"], "outputdir": str(tmp_path / "fit")}
    for r, rid in (("SR", "SR"), ("CR-3j", "CR_3j")):
        values[f"signal_{rid}"] = str(sig.region_files[r])
        values[f"bkg_ttbar_{rid}"] = str(tt.region_files[r])
        values[f"data_{rid}"] = str(data.region_files[r])
        values[f"observable_{rid}"] = params[f"observable_{rid}"]
    cmd = _load(out / "steps.yml")["fit_regions"]["process"]["cmd"].format(**values)
    args = shlex.split(cmd)
    assert args[:6] == ["recastkit", "fit", "--region", "SR", "--region", "CR-3j"]
    res = CliRunner().invoke(main, [*args[1:], "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["settings"]["free_backgrounds"] == ["ttbar"]
    assert doc["settings"]["best_fit_normfactors"]["ttbar"] == pytest.approx(
        run.limit.settings["best_fit_normfactors"]["ttbar"], rel=1e-9)
    assert doc["observed_mu"] == pytest.approx(run.limit.observed_mu, rel=1e-9)
    assert doc["expected_mu"] == pytest.approx(list(run.limit.expected_mu), rel=1e-9)


@pytest.mark.parametrize(("changes", "message"), [
    ({"outputs": {"report": True, "access_token": "x"}}, "looks like a credential"),
    ({"samples": {"signal": {"name": "ZH", "dataset": ZH, "files": ["events/sig.root"]},
                  "backgrounds": [{"name": "ttbar", "dataset": TT, "files": ["events/tt.root"]},
                                  {"name": "mock", "mock": {"seed": 1}}],
                  "data": {"toy": {"seed": 1}}}}, "either MC backgrounds or the mock"),
])
def test_refused_specs_write_nothing(tmp_path: Path, changes: dict[str, Any],
                                     message: str) -> None:
    spec = _spec(tmp_path, **changes)
    out = tmp_path / "wf"
    res = CliRunner().invoke(main, ["export", "yadage", str(spec), str(out)])
    assert res.exit_code == 2
    assert message in res.output
    assert "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not out.exists()


def _run_yadage(yadage_run: Path, local: Path, work: Path, timeout_s: float) -> Path:
    """Run the exported workflow in ``local`` with yadage, every step as a local process (this
    interpreter's recastkit); returns the work folder."""
    steps = _load(local / "steps.yml")
    for step in steps.values():
        step["environment"] = {"environment_type": "localproc-env"}
    (local / "steps.yml").write_text(yaml.safe_dump(steps), encoding="utf-8")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = subprocess.run(
        [str(yadage_run), str(work), "workflow.yml", "inputs.yml", "-t", str(local),
         "-d", f"initdir={local}", "-b", "foregroundasync"],
        cwd=local, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("RECASTKIT_RUN_YADAGE") != "1",
                    reason="runs 7 yadage steps (~50 s on 2 busy cores); set "
                           "RECASTKIT_RUN_YADAGE=1 to run it")
def test_exported_workflow_runs_with_yadage(tmp_path: Path) -> None:
    """Run the exported workflow with yadage, steps in local processes instead of docker."""
    yadage_run = Path(sys.executable).parent / "yadage-run"
    if not yadage_run.exists():
        pytest.skip(f"yadage-run not installed beside {sys.executable}")
    spec = _spec(tmp_path, regions=[SR])
    local = tmp_path / "wf"
    res = CliRunner().invoke(main, ["export", "yadage", str(spec), str(local), "--copy-inputs"])
    assert res.exit_code == 0, res.output
    work = _run_yadage(yadage_run, local, tmp_path / "work", timeout_s=240)
    limit = json.loads((work / "fit_SR" / "limit.json").read_text(encoding="utf-8"))
    assert limit["observed_mu"] > 0
    assert limit["xsec_ref_fb"] == pytest.approx(44.837, rel=1e-9)
    assert limit["cl"] == 0.9
    for name in ("limit.png", "hists.png", "workspace.json"):
        assert (work / "fit_SR" / name).stat().st_size > 0
    # each sample normalized from the imported table, the spec's L and the bookkeeping Σw
    from recastkit.io.hists import read_hists_and_metadata

    _, sig = read_hists_and_metadata(work / "scale_signal_SR" / "scaled.root")
    assert sig["normalization"]["scale"] == pytest.approx(44.837 * 140.1 / SUMW_SIG, rel=1e-9)
    assert f"{sig['normalization']['scale']:.6f}" == "0.922008"
    _, tt = read_hists_and_metadata(work / "scale_ttbar_SR" / "scaled.root")
    assert tt["normalization"]["scale"] == pytest.approx(
        17.5 * 0.5 * 1.2 * 140.1 / SUMW_BKG, rel=1e-9)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("RECASTKIT_RUN_YADAGE") != "1",
                    reason="runs 6 yadage steps (~70 s on 2 busy cores); set "
                           "RECASTKIT_RUN_YADAGE=1 to run it")
def test_exported_demo_runs_with_yadage(tmp_path: Path) -> None:
    """The demo's two-region export, run with yadage (local processes instead of docker)."""
    yadage_run = Path(sys.executable).parent / "yadage-run"
    if not yadage_run.exists():
        pytest.skip(f"yadage-run not installed beside {sys.executable}")
    local = tmp_path / "wf"
    res = CliRunner().invoke(main, ["export", "yadage", str(EXAMPLES / "demo" / "analysis.yml"),
                                    str(local)])
    assert res.exit_code == 0, res.output
    work = _run_yadage(yadage_run, local, tmp_path / "work", timeout_s=400)
    limit = json.loads((work / "fit" / "limit.json").read_text(encoding="utf-8"))
    assert limit["xsec_ref_fb"] == pytest.approx(44.837, rel=1e-9)
    assert [r["name"] for r in limit["settings"]["regions"]] == ["SR", "CR"]
    # the mock background's normalization, fixed by the CR (toy data of the mock itself)
    assert limit["settings"]["best_fit_normfactors"]["mock"] == pytest.approx(1.0, abs=0.03)
    assert 0 < limit["observed_mu"] < 0.5
    for name in ("limit.png", "hists_SR.png", "hists_CR.png", "workspace.json"):
        assert (work / "fit" / name).stat().st_size > 0


def test_physlite_example_exports_with_its_files(shared_data: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The real-data example: files copied in, the SUSYTools table as the catalog input."""
    import yadage.workflow_loader

    from recastkit.workflow.export import export_yadage

    monkeypatch.setenv("RECASTKIT_TESTDATA", str(shared_data))
    spec = Path(__file__).resolve().parents[2] / "examples" / "physlite" / "analysis.yml"
    if not (shared_data / "root" / "DAOD_PHYSLITE_21.2.108.0.art.pool.root").is_file():
        pytest.skip(f"PHYSLITE file not under {shared_data}/root")
    out = tmp_path / "wf"
    res = export_yadage(spec, out, copy_inputs=True)
    assert res.notes[-1].startswith("the mock background and/or toy data")
    assert res.parameters["signal_files"] == [
        "inputs/signal/DAOD_PHYSLITE_21.2.108.0.art.pool.root"]
    assert res.parameters["bkg_ttbar_bkg_files"] == ["inputs/ttbar_bkg/uproot-issue-123b.root"]
    assert res.parameters["xsec_tables"] == ["inputs/xsec/mc16_13TeV_Backgrounds.txt"]
    assert res.parameters["signal_scale_options"] == "--lumi '1 pb^-1'"
    for rel in (*res.parameters["signal_files"], *res.parameters["xsec_tables"]):
        assert (out / rel).stat().st_size == (shared_data / (
            "root" if rel.endswith(".root") else "xsec/SUSYTools") / Path(rel).name).stat().st_size
    wf = yadage.workflow_loader.workflow("workflow.yml", toplevel=str(out), validate=True)
    assert [s["name"] for s in wf["stages"]] == [
        "catalog", "select_signal_SR", "scale_signal_SR", "select_ttbar_bkg_SR",
        "scale_ttbar_bkg_SR", "fit_SR"]
    assert str(shared_data) not in (out / "inputs.yml").read_text(encoding="utf-8")


@pytest.mark.parametrize("args", [["--image", "Not An Image"], ["--tag", "bad tag"]])
def test_bad_image_is_one_line_and_writes_nothing(tmp_path: Path, args: list[str]) -> None:
    spec = Path(__file__).resolve().parents[2] / "examples" / "demo" / "analysis.yml"
    out = tmp_path / "wf"
    res = CliRunner().invoke(main, ["export", "yadage", str(spec), str(out), *args])
    assert res.exit_code == 2
    assert res.output.startswith("Error: --")
    assert len(res.output.strip().splitlines()) == 1
    assert not out.exists()
