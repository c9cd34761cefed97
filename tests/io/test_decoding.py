"""The zlib decoder switch: the one place that sets uproot globals, guarded against API changes."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from recastkit.exceptions import ConfigError
from recastkit.io import decoding
from recastkit.io.decoding import ReadOptions


def test_uproot_still_has_the_zlib_library_switch():
    # fails loudly if uproot renames or removes the switch set_zlib_library relies on
    assert isinstance(uproot.ZLIB.library, str)
    assert uproot.compression._DecompressZLIB.library in {"zlib", "deflate", "isal"}
    before = decoding.zlib_library()
    try:
        for lib in ("zlib", "deflate"):
            decoding.set_zlib_library(lib)
            assert uproot.ZLIB.library == lib
    finally:
        decoding.set_zlib_library(before)


def test_auto_prefers_deflate_and_unknown_names_fail():
    assert decoding.resolve_decoder("auto") == "deflate"  # a core dependency
    with pytest.raises(ConfigError, match="valid choices: auto, zlib, deflate, isal"):
        ReadOptions(decoder="gzip")
    with pytest.raises(ConfigError):
        ReadOptions(decompression_threads=-1)
    assert ReadOptions(decompression_threads=3).threads == 3
    assert ReadOptions().threads == decoding.available_cores()


def test_fast_decoder_and_threads_read_identical_arrays(tmp_path):
    path = tmp_path / "z.root"
    rng = np.random.default_rng(3)
    counts = rng.poisson(4, 20_000)
    with uproot.recreate(path, compression=uproot.ZLIB(1)) as f:
        f["t"] = {"x": ak.unflatten(rng.normal(size=int(counts.sum())).astype(np.float32),
                                    counts)}
    before = decoding.zlib_library()
    out = {}
    try:
        for opts in (decoding.UPROOT_DEFAULTS, ReadOptions("deflate", 2)):
            decoding.apply(opts)
            with uproot.open(path) as f:
                out[opts] = f["t"]["x"].array(**decoding.executors(opts))
    finally:
        decoding.set_zlib_library(before)
    a, b = out.values()
    assert ak.all(a == b)
