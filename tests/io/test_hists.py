"""Histogram formats: ROOT TH1D, UHI JSON and two-line text round trips; errors."""

from __future__ import annotations

import logging
from pathlib import Path

import hist
import numpy as np
import pytest
import uproot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recastkit.exceptions import HistogramError, MissingObjectError, RootFileError
from recastkit.io.hists import (
    METADATA_KEY,
    as_weighted,
    read_hist,
    read_hists_and_metadata,
    split_spec,
    write_hist,
    write_hists,
)


def make_hist(edges: list[float] | None = None) -> hist.Hist:
    edges = edges or [0.0, 50.0, 100.0, 250.0, 500.0]
    h = hist.Hist(hist.axis.Variable(edges, name="mjj"), storage=hist.storage.Weight())
    h.fill([10.0, 60.0, 60.0, 300.0, 499.0], weight=[0.5, 1.25, 2.0, 3.0, 0.1])
    return h


def assert_same(a: hist.Hist, b: hist.Hist) -> None:
    np.testing.assert_array_equal(a.axes[0].edges, b.axes[0].edges)
    np.testing.assert_array_equal(a.values(), b.values())
    np.testing.assert_array_equal(a.variances(), b.variances())


@pytest.mark.parametrize("ext", ["root", "json", "txt"])
def test_roundtrip_exact(tmp_path: Path, ext: str) -> None:
    h = make_hist()
    path = tmp_path / f"h.{ext}"
    write_hist(path, h, name="h_mjj")
    back = read_hist(path if ext == "txt" else f"{path}:h_mjj")
    assert_same(h, back)
    # variances are Σw², not contents: bin 1 holds weights 1.25 and 2.0
    assert back.variances()[1] == pytest.approx(1.25**2 + 2.0**2, rel=1e-15)


def test_root_file_is_a_real_th1d_with_sumw2(tmp_path: Path) -> None:
    path = tmp_path / "h.root"
    write_hists(path, {"h_mjj": make_hist()}, {"sum_of_weights": 29465.34912109375})
    with uproot.open(path) as f:
        assert f.classnames()["h_mjj;1"] == "TH1D"
        th1 = f["h_mjj"]
        np.testing.assert_allclose(th1.variances(), make_hist().variances(), rtol=1e-15)
        assert METADATA_KEY in [k.split(";")[0] for k in f]
    hists, meta = read_hists_and_metadata(path)
    assert meta == {"sum_of_weights": 29465.34912109375}
    assert list(hists) == ["h_mjj"]


def test_json_twin_keeps_metadata(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    write_hists(path, {"a": make_hist(), "b": make_hist([0, 1, 2])}, {"dataset": "x"})
    hists, meta = read_hists_and_metadata(path)
    assert sorted(hists) == ["a", "b"]
    assert meta == {"dataset": "x"}
    with pytest.raises(MissingObjectError, match="choices: a, b"):
        read_hist(path)


def test_two_line_text_assumes_poisson(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                       ) -> None:
    path = tmp_path / "h.txt"
    path.write_text("0 1 2 3\n4 0 9\n")
    with caplog.at_level(logging.WARNING):
        h = read_hist(path)
    np.testing.assert_array_equal(h.values(), [4, 0, 9])
    np.testing.assert_array_equal(h.variances(), [4, 0, 9])
    assert "Poisson" in caplog.text


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("0 1 2\n1 2 3\n", "expected 2 contents"),
        ("0 1\n", "found 1"),
        ("0 2 1\n1 2\n", "increasing"),
        ("0 1 x\n1 2\n", "non-numeric"),
    ],
)
def test_text_errors(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(HistogramError, match=match):
        read_hist(path)


def test_missing_histogram_lists_close_matches(tmp_path: Path) -> None:
    path = tmp_path / "h.root"
    write_hists(path, {"h_mjj_kin": make_hist(), "h_njets_kin": make_hist()})
    with pytest.raises(MissingObjectError, match="close matches: h_mjj_kin"):
        read_hist(f"{path}:h_mjj_kim")


def test_errors_for_bad_files(tmp_path: Path) -> None:
    with pytest.raises(HistogramError, match=r"supported: \.root, \.json, \.txt"):
        write_hist(tmp_path / "h.csv", make_hist())
    not_root = tmp_path / "x.root"
    not_root.write_text("hello")
    with pytest.raises(RootFileError, match="not a ROOT file"):
        read_hist(f"{not_root}:h")
    with pytest.raises(RootFileError, match="no such file"):
        read_hist(tmp_path / "missing.root")


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "h.txt"
    with pytest.raises(HistogramError):
        write_hists(path, {"a": make_hist(), "b": make_hist()})
    assert list(tmp_path.iterdir()) == []


def test_split_spec(tmp_path: Path) -> None:
    assert split_spec("a/b.root:h_mjj") == (Path("a/b.root"), "h_mjj")
    assert split_spec("a/b.root") == (Path("a/b.root"), None)


def test_as_weighted_from_double() -> None:
    h = hist.Hist.new.Reg(2, 0, 2).Double()
    h.fill([0.5, 0.5, 1.5])
    w = as_weighted(h)
    np.testing.assert_array_equal(w.variances(), [2, 1])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=12),
    st.sampled_from(["root", "json", "txt"]),
)
def test_roundtrip_property(tmp_path: Path, values: list[float], ext: str) -> None:
    edges = np.arange(len(values) + 1, dtype=float) * 2.5
    h = hist.Hist(hist.axis.Variable(edges), storage=hist.storage.Weight())
    view = h.view()
    view.value = values
    view.variance = np.abs(values) * 1.5
    path = tmp_path / f"p.{ext}"
    write_hist(path, h)
    assert_same(h, read_hist(path))


def test_corrupt_metadata_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "sel.root"
    with uproot.recreate(path) as f:
        f["h"] = make_hist()
        f[METADATA_KEY] = '{"dsid": "410470x", "sum_of_weights": 1.0}'
    with pytest.raises(HistogramError, match=r"sel\.root: recastkit_metadata is corrupt: "
                                             r"field 'dsid' must be an integer or null"):
        read_hists_and_metadata(path)
    twin = tmp_path / "sel.json"
    write_hists(twin, {"h": make_hist()}, {"normalization": {"scale": "big"}})
    with pytest.raises(HistogramError, match=r"field 'normalization\.scale' must be a number"):
        read_hists_and_metadata(twin)


def test_2d_histograms_round_trip_and_text_refuses_them(tmp_path: Path) -> None:
    h2 = hist.Hist.new.Reg(2, 0, 1, name="x").Reg(2, 0, 1, name="y").Weight()
    h2.fill([0.2, 0.7], [0.2, 0.7], weight=[2.0, 3.0])
    for name in ("a.json", "a.root"):
        write_hists(tmp_path / name, {"h2": h2})
        back = read_hists_and_metadata(tmp_path / name)[0]["h2"]
        np.testing.assert_allclose(back.values(), [[2.0, 0.0], [0.0, 3.0]])
        np.testing.assert_allclose(back.variances(), [[4.0, 0.0], [0.0, 9.0]])
    with pytest.raises(HistogramError, match=r"a\.txt:h2: the text format holds a "
                                             r"one-dimensional histogram"):
        write_hists(tmp_path / "a.txt", {"h2": h2})
    with pytest.raises(HistogramError, match="expected a one-dimensional histogram, got 2"):
        as_weighted(h2, "fit input")
