"""The two PNGs: written atomically, readable images of the expected size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recastkit.report import plot_hists, plot_limit
from recastkit.stats import BinnedSample, LimitResult, mock_background, prepare_inputs


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_plots_are_written(tmp_path: Path) -> None:
    edges = np.linspace(0.0, 500.0, 51)
    centres = 0.5 * (edges[1:] + edges[:-1])
    sig = 130 * np.exp(-0.5 * ((centres - 125) / 10) ** 2)
    signal = BinnedSample("signal", tuple(edges), tuple(sig), tuple(sig * 0.01), "sig")
    inputs = prepare_inputs(signal, [mock_background(edges, 1)], rng=2)
    plot_hists(inputs, tmp_path / "hists.png", lumi_ifb=140.0, xsec_fb=44.837)
    mus = np.linspace(0, 4, 9)
    cls = np.exp(-mus)
    result = LimitResult(
        observed_mu=2.9957, expected_mu=(1.5, 2.0, 3.0, 4.0, 5.0),
        mu_values=tuple(mus), cls_observed=tuple(cls),
        cls_expected=tuple(tuple(cls ** k) for k in (2.0, 1.5, 1.0, 0.75, 0.5)),
        cl=0.95, test_stat="qtilde", xsec_ref_fb=44.837, observed_xsec_fb=2.9957 * 44.837,
        expected_xsec_fb=(1.5, 2.0, 3.0, 4.0, 5.0),
    )
    plot_limit(result, tmp_path / "limit.png", lumi_ifb=140.0)
    assert _png_size(tmp_path / "hists.png") == (960, 720)  # 8 x 6 in at 120 dpi
    assert _png_size(tmp_path / "limit.png") == (960, 720)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hists.png", "limit.png"]
    assert result.level == pytest.approx(0.05, rel=1e-12)


def test_poisson_errors_match_gehrels_table() -> None:
    # N. Gehrels, ApJ 303 (1986) 336, tables 1 and 2 (S = 1): n = 0 -> [0, 1.841],
    # n = 1 -> [0.173, 3.300], n = 10 -> [6.891, 14.267] (the exact central 68.27 % interval)
    from recastkit.report.plots import poisson_errors

    lo, hi = poisson_errors(np.array([0.0, 1.0, 10.0]))
    assert lo == pytest.approx([0.0, 1 - 0.173, 10 - 6.891], abs=2e-3)
    assert hi == pytest.approx([1.841, 3.300 - 1, 14.267 - 10], abs=2e-3)
