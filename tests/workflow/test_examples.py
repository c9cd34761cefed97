"""The example analyses of examples/: the demo (make demo) and the PHYSLITE one (shared data)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from recastkit.workflow.run import run_analysis
from recastkit.workflow.spec import OutputsSpec, load_spec

REPO = Path(__file__).resolve().parents[2]


def test_make_demo_runs_the_demo_analysis() -> None:
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "recastkit run examples/demo/analysis.yml -o $(DEMO_OUT)" in recipe
    spec = load_spec(REPO / "examples" / "demo" / "analysis.yml")
    table = (REPO / "examples" / "demo" / "xsec_demo.txt").read_text().splitlines()
    fields = table[1].split("\t\t")
    assert fields[0] == "345055"
    assert float(fields[2]) == 0.044837
    assert fields[-1] == "e5706"
    assert spec.samples.signal.dataset is not None
    assert ".e5706_" in spec.samples.signal.dataset


def test_physlite_example(shared_data: Path, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    for rel in ("root/DAOD_PHYSLITE_21.2.108.0.art.pool.root", "root/uproot-issue-123b.root",
                "xsec/SUSYTools/mc16_13TeV_Backgrounds.txt"):
        if not (shared_data / rel).exists():
            pytest.skip(f"shared test file {rel} not found under {shared_data}")
    monkeypatch.setenv("RECASTKIT_TESTDATA", str(shared_data))
    spec = load_spec(REPO / "examples" / "physlite" / "analysis.yml")
    spec = dataclasses.replace(spec, outputs=OutputsSpec(report=False, plots=False))
    result = run_analysis(spec, tmp_path / "out")
    sig, bkg = result.samples[0].ledger, result.samples[1].ledger
    assert sig is not None
    assert bkg is not None
    # shared data README §1.1 and §1.2: the StreamAOD AllExecutedEvents bookkeepers
    assert sig.sum_of_weights == 29465.34912109375
    assert bkg.sum_of_weights == 73668.0625
    for ledger in (sig, bkg):
        assert "CutBookkeepers" in ledger.sum_of_weights_source
        assert ledger.xsec_source.startswith("catalog mc16_13TeV_Backgrounds.txt:")
        # README §3.2: 410470 729.77 pb, k 1.13975636159, ε 0.54383; L = 1 pb^-1
        expected = 729.77e3 * 0.54383 * 1.13975636159 * 1e-3 / ledger.sum_of_weights
        assert ledger.scale == pytest.approx(expected, rel=1e-12)
    # README §1.1: with L = 140 fb^-1 the scale is 2149.20398...
    assert sig.scale * 140e3 == pytest.approx(2149.20398, rel=1e-8)
    cut_sig = result.samples[0].cutflows["SR"]
    cut_bkg = result.samples[1].cutflows["SR"]
    assert cut_sig[0].n_events == 40
    assert cut_bkg[0].n_events == 100
    assert cut_sig[0].sum_of_weights == pytest.approx(29465.34912109375, rel=1e-6)
    assert result.limit.observed_mu > 0
    assert (tmp_path / "out" / "manifest.json").is_file()
