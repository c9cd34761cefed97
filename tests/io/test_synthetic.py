"""The generated example sample: reproducible, un-ordered jets, pre-skim Σw in ``Runs``."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from recastkit.io.synthetic import (
    WORKED_EXAMPLE_SUMW,
    generate_signal_events,
    write_signal_sample,
)


def test_weights_sum_to_requested_value() -> None:
    events = generate_signal_events(2000, seed=3)
    assert float(np.sum(np.asarray(events["genWeight"]))) == pytest.approx(
        WORKED_EXAMPLE_SUMW, rel=1e-14)


def test_same_seed_same_events_other_seed_differs() -> None:
    a = generate_signal_events(500, seed=11)
    b = generate_signal_events(500, seed=11)
    c = generate_signal_events(500, seed=12)
    assert ak.all(a["Jet"]["pt"] == b["Jet"]["pt"])
    assert not ak.all(ak.flatten(a["Jet"]["pt"])[:10] == ak.flatten(c["Jet"]["pt"])[:10])


def test_written_file(tmp_path: Path) -> None:
    path = tmp_path / "sig.root"
    info = write_signal_sample(path, n_events=3000, seed=5)
    with uproot.open(path) as f:
        events = f["Events"].arrays()
        runs = f["Runs"].arrays(library="np")
        assert set(f["Events"].keys()) == {"nJet", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass",
                                           "genWeight"}
    assert runs["genEventSumw"][0] == WORKED_EXAMPLE_SUMW
    assert runs["genEventCount"][0] == 3000
    assert len(events) == info.n_written < 3000  # the skim removed events
    n_hard = ak.sum(events["Jet_pt"] > 30.0, axis=1)
    assert ak.all(n_hard >= 2)
    assert info.sum_of_weights_written == pytest.approx(
        float(np.sum(np.asarray(events["genWeight"], dtype=np.float64))), rel=1e-12)
    # jets are not pT-ordered in a sizeable fraction of events, like PHYSLITE
    leading_first = ak.mean(ak.argmax(events["Jet_pt"], axis=1) == 0)
    assert 0.2 < leading_first < 0.8
