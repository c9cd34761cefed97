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
    # libdeflate when installed (recastkit calls it directly), else ISA-L (a core dependency)
    fastest = "deflate" if decoding._check("deflate") is None else "isal"
    assert decoding.resolve_decoder("auto") == fastest
    # uproot's reader gets a library it can call (uproot 5.7.7 cannot call deflate 0.9)
    uproot_lib = decoding.uproot_decoder("auto")
    assert decoding._check(uproot_lib, through_uproot=True) is None
    assert uproot_lib in {fastest, "isal"}
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


def test_an_unusable_decoder_is_reported_not_silently_replaced(monkeypatch):
    monkeypatch.setattr(decoding, "_working", {})
    monkeypatch.setattr(decoding, "_importable", lambda name: name != "deflate")
    with pytest.raises(ConfigError, match=r"'deflate' cannot be used: the Python package "
                                          r"'deflate' is not installed"):
        decoding.resolve_decoder("deflate")
    assert decoding.resolve_decoder("auto") == "isal"


@pytest.mark.parametrize("library", ["zlib", "isal", "deflate"])
def test_direct_zlib_decompressors_decode_what_zlib_wrote(library):
    if decoding._check(library) is not None:
        pytest.skip(f"{library} is not usable here")
    import zlib

    payload = np.random.default_rng(1).normal(size=5000).astype(">f4").tobytes()
    out = decoding.zlib_decompressor(library)(zlib.compress(payload, 6), len(payload))
    assert bytes(out) == payload
    with pytest.raises(Exception):  # noqa: B017, PT011 - each library has its error type
        decoding.zlib_decompressor(library)(zlib.compress(payload, 6)[:-9], len(payload))
