"""The zlib decoder switch: the one place that sets uproot globals, guarded against API changes."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from recastkit.exceptions import ConfigError
from recastkit.io import decoding
from recastkit.io.decoding import ReadOptions


def test_uproot_still_has_the_zlib_library_switch(monkeypatch):
    # fails loudly if uproot renames or removes what set_zlib_library relies on
    assert isinstance(uproot.ZLIB.library, str)
    assert isinstance(uproot.compression._decompress_ZLIB, uproot.compression._DecompressZLIB)
    before = decoding.zlib_library()
    calls = []
    try:
        for lib in ("zlib", "isal"):
            decoding.set_zlib_library(lib)
            assert uproot.ZLIB.library == lib
            # what basket reading actually uses
            assert uproot.compression._decompress_ZLIB.library == lib
        from isal import isal_zlib

        real = isal_zlib.decompress

        def spy(*args, **kwargs):
            calls.append(1)
            return real(*args, **kwargs)

        monkeypatch.setattr(isal_zlib, "decompress", spy)
        payload = np.arange(1000, dtype=np.float64).tobytes()
        compressed = uproot.ZLIB(1).compress(payload)
        out = uproot.compression._decompress_ZLIB.decompress(compressed, len(payload))
        assert out == payload
        assert calls, "uproot's decompressor did not call ISA-L"
    finally:
        decoding.set_zlib_library(before)


def test_a_missing_switch_fails_loudly(monkeypatch):
    monkeypatch.delattr(uproot.compression, "_decompress_ZLIB")
    with pytest.raises(RuntimeError, match="uproot's API changed"):
        decoding.set_zlib_library("deflate")


def test_auto_picks_a_working_fast_decoder_and_unknown_names_fail():
    assert decoding.resolve_decoder("auto") == "isal"  # a core dependency
    assert decoding.zlib_library() in {"zlib", "isal", "deflate"}  # probing restores it
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
        for opts in (decoding.UPROOT_DEFAULTS, ReadOptions("isal", 2)):
            decoding.apply(opts)
            with uproot.open(path) as f:
                out[opts] = f["t"]["x"].array(**decoding.executors(opts))
    finally:
        decoding.set_zlib_library(before)
    a, b = out.values()
    assert ak.all(a == b)


def test_an_unusable_decoder_is_reported_not_silently_replaced():
    why = decoding._check("deflate")
    if why is None:
        pytest.skip("this uproot/deflate pair works together")
    # not installed (a fresh install has only isal) or installed but not callable by uproot
    with pytest.raises(ConfigError, match=r"'deflate' cannot be used: (uproot cannot call it|"
                                          r"the Python package 'deflate' is not installed)"):
        decoding.resolve_decoder("deflate")
