"""The general path's reading (:func:`recastkit.io.objects.iter_object_chunks`): the basket
reader and the uproot fallback give the stored values."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from recastkit.exceptions import SelectionError
from recastkit.io.decoding import ReadOptions
from recastkit.io.events import InputConfig, _basket_specs, _event_tree, clear_file_cache
from recastkit.io.objects import iter_object_chunks, resolve_object_layout

N_PER_WRITE = 700
WRITES = 3


def _write(path, rng):
    """A NanoAOD-style tree in several baskets: jagged float/int/bool muons, scalar weights."""
    written = {k: [] for k in ("counts", "pt", "eta", "phi", "mass", "charge", "tight",
                               "genWeight", "puWeight")}
    with uproot.recreate(path, compression=uproot.ZLIB(1)) as f:
        for i in range(WRITES):
            counts = rng.integers(0, 4, N_PER_WRITE)
            total = int(counts.sum())
            data = {
                "pt": rng.exponential(40.0, total).astype(np.float32),
                "eta": rng.normal(0.0, 1.5, total).astype(np.float32),
                "phi": rng.uniform(-np.pi, np.pi, total).astype(np.float32),
                "mass": np.full(total, 0.105, dtype=np.float32),
                "charge": rng.choice(np.array([-1, 1], dtype=np.int32), total),
                "tight": rng.random(total) < 0.7,
            }
            gen = rng.normal(1.0, 0.1, N_PER_WRITE)
            pu = rng.uniform(0.5, 1.5, N_PER_WRITE).astype(np.float32)
            muons = {f"Muon_{k}": ak.unflatten(data[v], counts) for k, v in
                     (("pt", "pt"), ("eta", "eta"), ("phi", "phi"), ("mass", "mass"),
                      ("charge", "charge"), ("tightId", "tight"))}
            chunk = {**muons, "genWeight": gen, "puWeight": pu}
            if i == 0:
                f.mktree("Events", {k: v.type.content if isinstance(v, ak.Array) else v.dtype
                                    for k, v in chunk.items()})
            f["Events"].extend(chunk)
            written["counts"].append(counts)
            for k, v in data.items():
                written[k].append(v)
            written["genWeight"].append(gen)
            written["puWeight"].append(pu)
    return {k: np.concatenate(v) for k, v in written.items()}


def _layout(path):
    used = {"muons": {"pt", "eta", "phi", "mass", "charge", "tightId"}}
    return resolve_object_layout(path, InputConfig(layout="nanoaod"), used, {},
                                 extra_weights=("puWeight",))


@pytest.mark.parametrize("threads", [1, 2])
def test_basket_reader_gives_the_stored_values(tmp_path, threads):
    path = tmp_path / "nano.root"
    w = _write(path, np.random.default_rng(12))
    layout = _layout(path)
    assert _basket_specs(str(path), _event_tree(path, "Events"), layout) is not None
    n = N_PER_WRITE * WRITES
    opts = ReadOptions(decompression_threads=threads)
    chunks = list(iter_object_chunks(path, layout, 100, n, 450, opts))
    assert [c.entry_start for c in chunks] == list(range(100, n, 450))
    offsets = np.concatenate([[0], np.cumsum(w["counts"])])
    for c in chunks:
        lo, hi = offsets[c.entry_start], offsets[c.entry_stop]
        mu = c.collections["muons"]
        np.testing.assert_array_equal(mu.counts, w["counts"][c.entry_start:c.entry_stop])
        for name, key in (("pt", "pt"), ("eta", "eta"), ("phi", "phi"), ("mass", "mass")):
            assert mu.fields[name].dtype == np.float64
            np.testing.assert_array_equal(mu.fields[name], w[key][lo:hi].astype(np.float64))
        assert mu.fields["charge"].dtype == np.int32
        np.testing.assert_array_equal(mu.fields["charge"], w["charge"][lo:hi])
        assert mu.fields["tightId"].dtype == np.bool_
        np.testing.assert_array_equal(mu.fields["tightId"], w["tight"][lo:hi])
        expected = (w["genWeight"][c.entry_start:c.entry_stop]
                    * w["puWeight"][c.entry_start:c.entry_stop].astype(np.float64))
        np.testing.assert_array_equal(c.weights, expected)
    clear_file_cache()


def test_unexpected_shape_falls_back_to_uproot_and_reports(tmp_path):
    path = tmp_path / "nano.root"
    _write(path, np.random.default_rng(3))
    used = {"muons": {"pt", "eta", "phi", "mass"}}
    layout = resolve_object_layout(path, InputConfig(layout="nanoaod"), used,
                                   {"muons": {"mass": "puWeight"}})  # a scalar as a field
    with pytest.raises(SelectionError, match="not a jagged array"):
        list(iter_object_chunks(path, layout, 0, 1000, 500))
    clear_file_cache()
