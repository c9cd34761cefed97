"""The grid runner: engines, executors, the resumable store."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pyhf
import pytest

from recastkit.exceptions import StatsError
from recastkit.stats import batchfit, grid
from recastkit.stats.grid import GridSettings, apply_patches, run_grid
from recastkit.stats.gridinputs import load_grid_source
from recastkit.stats.gridstore import PointStore, result_from_record, result_to_record
from recastkit.stats.results import PointResult


def test_patch_errors() -> None:
    with pytest.raises(StatsError, match=r"p\.json: the patch does not apply"):
        apply_patches({"channels": []}, [("p.json", [{"op": "remove", "path": "/nope"}])])
    with pytest.raises(StatsError, match="patchset with 1 patches"):
        apply_patches({}, [("ps.json", {"patches": [{"metadata": {"name": "x"}}]})])
    with pytest.raises(StatsError, match="expected a JSON Patch"):
        apply_patches({}, [("p.json", 3)])
    doc = apply_patches({"a": 1}, [("p", {"metadata": {}, "patch": [
        {"op": "add", "path": "/b", "value": 2}]})])
    assert doc == {"a": 1, "b": 2}


def test_store_round_trip_and_torn_line(tmp_path: Path) -> None:
    nan = math.nan
    r = PointResult("a", 1.0, nan, (0.1, 0.2, nan, 0.4, 0.5), "failed", None, None,
                    reason="pyhf gives NaN", parameters={"m1": 300.0}, path="pyhf")
    assert result_from_record(json.loads(json.dumps(result_to_record(r)))).to_dict() == \
        r.to_dict()
    path = tmp_path / "points.jsonl"
    store = PointStore(path)
    store.add("k1", r)
    with path.open("a") as fh:
        fh.write('{"key": "k2", "resu')  # killed while writing
    again = PointStore(path)
    assert len(again) == 1
    assert path.read_text().endswith("\n")
    again.add("k3", r)
    assert len(PointStore(path)) == 2


def test_interrupted_grid_resumes_with_identical_results(
        synthetic_grid: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = load_grid_source([str(synthetic_grid)]).selected(["sig_[345]00_*"])
    settings = GridSettings()
    full = run_grid(source, settings, store=PointStore(tmp_path / "ref.jsonl"))
    assert all(r.status == "converged" for r in full)
    # a run killed after three points (an exception injected into the fourth)
    calls = {"n": 0}
    original = grid.evaluate_point

    def flaky(*args: object, **kwargs: object) -> PointResult:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(grid, "evaluate_point", flaky)
    store_path = tmp_path / "points.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_grid(source, settings, store=PointStore(store_path))
    assert len(store_path.read_text().splitlines()) == 3
    monkeypatch.setattr(grid, "evaluate_point", original)
    done: list[str] = []
    resumed = run_grid(source, settings, store=PointStore(store_path),
                       progress=lambda k, n, name: done.append(name))
    assert len(done) == len(source.points) - 3
    assert [r.to_dict() for r in resumed] == [r.to_dict() for r in full]
    # other settings are another question: nothing reused
    other = GridSettings(mu=2.0)
    assert len({grid.point_key(source.background_digest, p.digest, other.key())
                for p in source.points} & set(PointStore(store_path)._done)) == 0


def test_processes_give_the_same_numbers(synthetic_grid: Path) -> None:
    source = load_grid_source([str(synthetic_grid)]).selected(["sig_[34]00_[01]00"])
    serial = run_grid(source, GridSettings())
    parallel = run_grid(source, GridSettings(), executor="processes", workers=2)
    assert [r.to_dict() for r in parallel] == [r.to_dict() for r in serial]


def test_pyhf_engine_and_limits_on_a_small_likelihood() -> None:
    bkg_only = {
        "channels": [{"name": "sr", "samples": [
            {"name": "bkg", "data": [50.0, 30.0],
             "modifiers": [{"name": "bkg_norm", "type": "normsys",
                            "data": {"hi": 1.05, "lo": 0.95}},
                           {"name": "mu", "type": "normfactor", "data": None}]}]}],
        "observations": [{"name": "sr", "data": [52.0, 29.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }

    def patch(scale: float) -> list[dict[str, object]]:
        return [
            {"op": "remove", "path": "/channels/0/samples/0/modifiers/1"},
            {"op": "add", "path": "/channels/0/samples/-", "value": {
                "name": "sig", "data": [4.0 * scale, 6.0 * scale],
                "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]}},
        ]

    from recastkit.stats.gridinputs import GridSource, _point, digest

    source = GridSource(bkg_only, digest(bkg_only),
                        (_point("weak", patch(1.0), "weak"),
                         _point("strong", patch(4.0), "strong")), "memory")
    fast = run_grid(source, GridSettings(limits=True))
    weak, strong = fast
    assert strong.cls_observed < 0.05 < weak.cls_observed
    assert weak.observed_limit is not None
    assert strong.observed_limit is not None
    # limits scale inversely with the signal yield (same background, same data)
    assert weak.observed_limit == pytest.approx(4.0 * strong.observed_limit, rel=1e-3)
    ws = pyhf.Workspace(apply_patches(bkg_only, [("p", patch(4.0))]))
    model = ws.model()
    obs, _ = pyhf.infer.hypotest(strong.observed_limit, ws.data(model), model,
                                 return_expected_set=True)
    assert float(obs) == pytest.approx(0.05, abs=1e-4)
    # the pyhf engine (pyhf's hypotest) gives the same CLs
    (ref,) = run_grid(dataclasses.replace(source, points=source.points[1:]),
                      GridSettings(engine="pyhf"))
    assert ref.status == "converged"
    assert ref.cls_observed == pytest.approx(strong.cls_observed, rel=1e-4)


def test_unsupported_model_falls_back_to_pyhf(synthetic_grid: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    source = load_grid_source([str(synthetic_grid)]).selected(["sig_600_0"])
    monkeypatch.setattr(batchfit, "compile_workspace",
                        lambda ws: (_ for _ in ()).throw(batchfit.Unsupported("shapesys")))
    (r,) = run_grid(source, GridSettings())
    assert r.status == "converged"  # pyhf computed it
    with pytest.raises(StatsError, match="unknown executor 'threads'"):
        run_grid(source, GridSettings(), executor="threads")
    with pytest.raises(StatsError, match="valid: auto, pyhf-path, pyhf"):
        GridSettings(engine="fast")


def test_fast_path_models_use_the_limit_engine() -> None:
    """Models like those ``recastkit fit`` builds go to stats.engine, vectorized; same CLs."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from gridfactory import synthetic_grid_workspace
    from gridfactory import without_histosys as no_histosys
    from recastkit.stats import engine
    from recastkit.stats.gridinputs import GridSource, _point, digest

    bkg, patches = synthetic_grid_workspace([(300, 100), (400, 100), (500, 100)])
    bkg2 = no_histosys(bkg)
    assert isinstance(bkg2, dict)
    points = tuple(_point(n, no_histosys(p), n, {"m1": float(n.split("_")[1])})
                   for n, p in patches.items())
    assert engine.supports_fast_path(batchfit.apply_ops(bkg2, points[0].patch))
    source = GridSource(bkg2, digest(bkg2), points, "memory")
    via_engine = run_grid(source, GridSettings())
    assert grid._on_engine_fast_path(source, 0, GridSettings())
    for a, p in zip(via_engine, points, strict=True):
        assert a.parameters == p.parameters
        assert a.status == "converged"
        b = batchfit.ClsCalculator(batchfit.compile_workspace(
            batchfit.apply_ops(bkg2, p.patch)))(1.0)  # converged fits
        assert a.cls_observed == pytest.approx(b.cls_observed, rel=1e-5)
        assert a.cls_expected == pytest.approx(b.cls_expected, rel=1e-5)


def _live_children() -> set[int]:
    import psutil

    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.add(p.pid)
        except psutil.NoSuchProcess:
            pass
    return out


def test_interrupted_process_pool_stops_its_workers(synthetic_grid: Path,
                                                   tmp_path: Path) -> None:
    source = load_grid_source([str(synthetic_grid)])
    before = _live_children()

    def interrupt(done: int, total: int, name: str) -> None:
        if done == 2:
            raise KeyboardInterrupt  # Ctrl-C while the workers are busy

    store_path = tmp_path / "points.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_grid(source, GridSettings(), store=PointStore(store_path), executor="processes",
                 workers=2, progress=interrupt)
    assert len(PointStore(store_path)) == 2
    assert _live_children() - before == set()  # terminated and reaped, busy or not


def test_a_killed_pool_worker_is_one_line_and_the_finished_points_stay(
        synthetic_grid: Path, tmp_path: Path) -> None:
    import os
    import signal

    source = load_grid_source([str(synthetic_grid)])
    before = _live_children()

    def kill_a_worker(done: int, total: int, name: str) -> None:
        if done == 1:
            os.kill(min(_live_children() - before), signal.SIGKILL)  # e.g. the OOM killer

    store_path = tmp_path / "points.jsonl"
    with pytest.raises(StatsError, match=r"a worker process of the processes executor died "
                                         r"with \d+ points left .* rerun the same command"):
        run_grid(source, GridSettings(), store=PointStore(store_path), executor="processes",
                 workers=2, progress=kill_a_worker)
    assert 1 <= len(PointStore(store_path)) < len(source.points)
    assert _live_children() - before == set()
