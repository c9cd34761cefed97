"""The basket reader of the dijet fast path: uproot internals it relies on, equality with
uproot's own arrays for every codec, fallbacks and corrupt files."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from recastkit.exceptions import RootFileError
from recastkit.io import baskets, decoding, events
from recastkit.io.baskets import ChunkReader, Unsupported, branch_baskets, read_basket
from recastkit.io.decoding import ReadOptions
from recastkit.io.events import count_entries, iter_chunks, resolve_layout

CODECS = {
    "zlib": uproot.ZLIB(1),
    "lz4": uproot.LZ4(1),
    "zstd": uproot.ZSTD(1),
    "lzma": uproot.LZMA(1),
    "none": None,
}


def _write(path: Path, compression: object, n_baskets: int = 4, per_basket: int = 300,
           seed: int = 5) -> dict[str, object]:
    """A flat ntuple written in ``n_baskets`` extends (one basket per branch each), with
    empty events, float32/float64 jagged and int32/float32 scalar branches."""
    if isinstance(compression, uproot.ZLIB):
        # uproot.ZLIB.library is also set by decoding.apply (for reading); pin the writer's
        compression = uproot.ZLIB(compression.level)
        compression.library = "zlib"  # type: ignore[misc]
    rng = np.random.default_rng(seed)
    data: dict[str, list[object]] = {k: [] for k in ("jet", "jd", "weight", "run")}
    with uproot.recreate(path, compression=compression) as f:
        for i in range(n_baskets):
            counts = rng.poisson(3, per_basket)
            counts[::7] = 0
            n = int(counts.sum())
            jets = ak.zip({"pt": ak.unflatten(rng.exponential(40, n).astype(np.float32), counts),
                           "eta": ak.unflatten(rng.normal(0, 2, n).astype(np.float32), counts),
                           "phi": ak.unflatten(rng.uniform(-3, 3, n).astype(np.float32), counts),
                           "m": ak.unflatten(rng.uniform(0, 9, n).astype(np.float32), counts)})
            jd = ak.unflatten(rng.normal(size=n), counts)
            weight = rng.normal(1, 0.1, per_basket).astype(np.float32)
            run = np.arange(i * per_basket, (i + 1) * per_basket, dtype=np.int32)
            chunk = {"jet": jets, "jd": jd, "weight": weight, "run": run}
            if i == 0:
                f.mktree("events", {"jet": jets.type.content, "jd": jd.type.content,
                                    "weight": np.float32, "run": np.int32})
            f["events"].extend(chunk)
            for k, v in chunk.items():
                data[k].append(v)
    return data


BRANCHES = ["jet_pt", "jet_eta", "jet_phi", "jet_m", "jd", "weight", "run"]


def _expected(path: Path, name: str, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
    """uproot's own reading (offsets from 0, content) of entries [start, stop)."""
    with uproot.open(path) as f:
        array = f["events"][name].array(entry_start=start, entry_stop=stop, library="ak")
    if array.ndim == 1:
        return np.asarray(array), None
    layout = ak.to_layout(ak.to_packed(array))
    offsets = np.asarray(layout.offsets.data, dtype=np.int64)
    return np.asarray(layout.content.data), offsets - offsets[0]


def test_uproot_still_has_what_the_basket_reader_uses(tmp_path):
    # fails loudly if uproot renames or changes what recastkit.io.baskets relies on
    path = tmp_path / "t.root"
    _write(path, uproot.ZLIB(1), n_baskets=2, per_basket=50)
    assert issubclass(uproot.interpretation.jagged.AsJagged, uproot.interpretation.Interpretation)
    assert issubclass(uproot.interpretation.numerical.AsDtype,
                      uproot.interpretation.Interpretation)
    # the TKey/TBasket header formats uproot parses are the ones parsed here
    tbasket = uproot.models.TBasket
    assert tbasket._tbasket_format1.format == baskets._KEY.format
    assert tbasket._tbasket_format2.format == baskets._BASKET.format
    assert uproot.compression._decompress_header_format.size == baskets._BLOCK_HEADER
    assert uproot.compression._decompress_checksum_format.size == baskets._LZ4_CHECKSUM
    with uproot.open(path) as f:
        branch = f["events"]["jet_pt"]
        assert isinstance(branch.interpretation, uproot.interpretation.jagged.AsJagged)
        assert branch.interpretation.header_bytes == 0
        assert np.dtype(branch.interpretation.content.from_dtype) == np.dtype(">f4")
        spec = branch_baskets(f["events"], "jet_pt")
        assert spec.n_baskets == branch.num_baskets == 2
        assert list(spec.entry_starts) == list(branch.entry_offsets) == [0, 50, 100]
        assert spec.embedded == tuple(branch.embedded_baskets) == ()
        for i in range(2):
            basket = branch.basket(i)  # uproot's parse of the same header
            blob = path.read_bytes()[spec.seeks[i]:spec.seeks[i] + spec.nbytes[i]]
            nbytes, _, objlen, _, keylen, _ = baskets._KEY.unpack_from(blob, 0)
            fields = baskets._BASKET.unpack_from(blob, keylen - baskets._BASKET.size - 1)
            assert (nbytes, objlen, keylen) == (basket.member("fNbytes"),
                                                basket.member("fObjlen"),
                                                basket.member("fKeylen"))
            assert fields[3:] == (basket.member("fNevBuf"), basket.member("fLast"))


@pytest.mark.parametrize("codec", sorted(CODECS))
@pytest.mark.parametrize("threads", [1, 2])
def test_chunks_equal_uproot_arrays_for_every_codec(tmp_path, codec, threads):
    path = tmp_path / f"{codec}.root"
    _write(path, CODECS[codec])
    with uproot.open(path) as f:
        specs = [branch_baskets(f["events"], b) for b in BRANCHES]
    assert [s.jagged for s in specs] == [True] * 5 + [False] * 2
    pool = decoding.thread_pool(threads, "baskets") if threads > 1 else None
    reader = ChunkReader(str(path), specs, decoding.zlib_decompressor(
        decoding.resolve_decoder("auto")), pool)
    seen = 0
    for start, stop, columns in reader.chunks(10, 1190, 137):  # not aligned with baskets
        assert start == 10 + seen
        seen += stop - start
        for name in BRANCHES:
            content, offsets = _expected(path, name, start, stop)
            col = columns[name]
            assert col.content.dtype == content.dtype.newbyteorder("=")
            np.testing.assert_array_equal(col.content, content)
            if offsets is None:
                assert col.offsets is None
            else:
                assert col.offsets is not None
                np.testing.assert_array_equal(col.offsets, offsets)
    assert seen == 1180


@pytest.mark.parametrize("decoder", ["zlib", "isal", "deflate"])
def test_every_zlib_decoder_gives_the_same_bytes(tmp_path, decoder):
    if decoding._check(decoder) is not None:
        pytest.skip(f"{decoder} is not usable here")
    path = tmp_path / "z.root"
    _write(path, uproot.ZLIB(6), n_baskets=2)
    with uproot.open(path) as f:
        spec = branch_baskets(f["events"], "jet_eta")
    fn = decoding.zlib_decompressor(decoder)
    fd = os.open(path, os.O_RDONLY)
    try:
        col = read_basket(fd, spec, 1, fn)
    finally:
        os.close(fd)
    content, offsets = _expected(path, "jet_eta", 300, 600)
    np.testing.assert_array_equal(col.content, content)
    np.testing.assert_array_equal(col.offsets, offsets)


def test_several_compression_blocks_in_one_basket():
    # ROOT splits a basket into blocks of < 16 MiB; build one of three blocks by hand
    values = np.arange(3000, dtype=">f4")
    raw = values.tobytes()
    parts = [raw[:4000], raw[4000:9000], raw[9000:]]
    blob = b"".join(b"ZL\x08" + len(z := zlib.compress(p, 1)).to_bytes(3, "little")
                    + len(p).to_bytes(3, "little") + z for p in parts)
    out = baskets._blocks(b"key" + blob, 3, len(raw), decoding.zlib_decompressor("zlib"))
    assert out.tobytes() == raw
    with pytest.raises(ValueError, match="instead of"):
        baskets._blocks(b"key" + blob, 3, len(raw) + 4, decoding.zlib_decompressor("zlib"))
    with pytest.raises(Unsupported, match="CS"):
        baskets._blocks(b"CS\x08" + bytes(6), 0, 0, decoding.zlib_decompressor("zlib"))


def test_std_vector_branches_and_embedded_baskets_of_real_files(shared_file):
    # PHYSLITE: std::vector<float> jets (10 header bytes per entry) and vector weights;
    # the 2015 NanoAOD keeps its only basket inside the TBranch (embedded)
    for rel in ("root/DAOD_PHYSLITE_21.2.108.0.art.pool.root",
                "root/nanoAOD_2015_CMS_Open_Data_ttbar.root"):
        path = shared_file(rel)
        layout = resolve_layout(path)
        tree = events._event_tree(path, layout.tree)
        specs = events._basket_specs(str(path), tree, layout)
        assert specs is not None, rel
        n = count_entries(path, layout)
        for spec in specs:
            array = tree[spec.name].array(library="ak")
            col = next(ChunkReader(str(path), [spec], decoding.zlib_decompressor("zlib"),
                                   None).chunks(0, n, n))[2][spec.name]
            if spec.jagged:
                assert ak.all(ak.unflatten(col.content, np.diff(col.offsets)) == array)
            else:
                np.testing.assert_array_equal(col.content, np.asarray(array))
        if "nanoAOD" in rel:
            assert any(spec.embedded for spec in specs)
        else:
            assert specs[0].header_bytes == 10


def _chunks(path, opts=None, step=250):
    layout = resolve_layout(path)
    return list(iter_chunks(path, layout, 0, count_entries(path, layout), step, opts))


def _same(a, b):
    assert [(c.entry_start, c.entry_stop) for c in a] == [(c.entry_start, c.entry_stop)
                                                          for c in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.offsets, y.offsets)
        np.testing.assert_array_equal(x.weights, y.weights)
        for u, v in zip(x.jets, y.jets, strict=True):
            assert u.dtype == v.dtype
            np.testing.assert_array_equal(u, v)


def _uproot_only(path, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(events, "_basket_specs", lambda *a: None)
        return _chunks(path)


def test_iter_chunks_fast_path_equals_the_uproot_path(tmp_path, monkeypatch):
    path = tmp_path / "e.root"
    _write(path, uproot.ZLIB(1))
    events.clear_file_cache()
    tree = events._event_tree(path, "events")
    assert events._basket_specs(str(path), tree, resolve_layout(path)) is not None
    expected = _uproot_only(path, monkeypatch)
    _same(_chunks(path), expected)
    _same(_chunks(path, ReadOptions("zlib", 1)), expected)


def test_an_unusual_basket_hands_the_rest_to_uproot(tmp_path, monkeypatch):
    path = tmp_path / "e.root"
    _write(path, uproot.ZLIB(1))
    events.clear_file_cache()
    expected = _uproot_only(path, monkeypatch)
    real = baskets.read_basket

    def picky(fd, spec, index, fn):
        if index == 2:
            raise Unsupported("pretend basket 2 is unusual")
        return real(fd, spec, index, fn)

    monkeypatch.setattr(baskets, "read_basket", picky)
    for threads in (1, 2):
        _same(_chunks(path, ReadOptions(decompression_threads=threads)), expected)


def test_unsupported_branches_are_read_by_uproot(tmp_path):
    path = tmp_path / "s.root"
    jets = ak.zip({k: ak.Array([[1.0, 2.0], [3.0]]) for k in ("pt", "eta", "phi", "m")})
    with uproot.recreate(path) as f:
        f.mktree("events", {"jet": jets.type.content, "weight": ("f8", (2,))})
        f["events"].extend({"jet": jets,
                            "weight": np.array([[1.0, 2.0], [3.0, 4.0]])})  # fixed size
    with uproot.open(path) as f, pytest.raises(Unsupported, match="weight"):
        branch_baskets(f["events"], "weight")
    events.clear_file_cache()
    layout = resolve_layout(path)
    assert events._basket_specs(str(path), events._event_tree(path, "events"), layout) is None


def test_a_corrupt_basket_is_a_root_file_error(tmp_path):
    path = tmp_path / "c.root"
    _write(path, uproot.ZLIB(1))
    with uproot.open(path) as f:
        spec = branch_baskets(f["events"], "jet_phi")
    data = bytearray(path.read_bytes())
    pos = int(spec.seeks[1]) + int(spec.nbytes[1]) // 2
    data[pos:pos + 64] = bytes(64)  # garbage inside the compressed stream
    bad = tmp_path / "bad.root"
    bad.write_bytes(bytes(data))
    events.clear_file_cache()
    with pytest.raises(RootFileError, match=r"bad\.root: cannot read entries 250-1200"):
        _chunks(bad)


def test_a_reader_closed_early_leaves_nothing_running(tmp_path):
    path = tmp_path / "e.root"
    _write(path, uproot.ZLIB(1))
    with uproot.open(path) as f:
        specs = [branch_baskets(f["events"], b) for b in BRANCHES]
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc")
    before = len(list(fds.iterdir()))
    gen = ChunkReader(str(path), specs, decoding.zlib_decompressor("zlib"),
                      decoding.thread_pool(2, "baskets")).chunks(0, 1200, 100)
    next(gen)
    assert len(list(fds.iterdir())) == before + 1
    gen.close()  # cancels or waits for the reads ahead, then closes the file
    assert len(list(fds.iterdir())) == before


def test_dijet_selection_is_identical_through_either_reader(tmp_path, monkeypatch):
    from recastkit.processing import run_selection
    from recastkit.selection import SelectionConfig

    path = tmp_path / "e.root"
    _write(path, uproot.ZLIB(1))
    config = SelectionConfig(jet_pt_min_gev=25.0, jet_abs_eta_max=2.5)

    def run():
        return run_selection([path], config, executor="iterative", chunk_size=500,
                             bookkeeping=False, progress=False)

    fast = run()
    with monkeypatch.context() as m:
        m.setattr(events, "_basket_specs", lambda *a: None)
        slow = run()
    assert fast.cutflow == slow.cutflow
    assert fast.moments == slow.moments
    for name, h in slow.histograms.items():
        np.testing.assert_array_equal(fast.histograms[name].values(flow=True),
                                      h.values(flow=True))
        np.testing.assert_array_equal(fast.histograms[name].variances(flow=True),
                                      h.variances(flow=True))


@pytest.mark.parametrize("code", ["i2", "u2", "i4", "u4", "f4", "i8", "u8", "f8"])
def test_in_place_byte_swap_equals_numpy_cast(code):
    # every bit pattern class: random bytes include NaN payloads, infinities, -0.0, denormals
    raw = np.random.default_rng(3).integers(0, 256, 8 * 1001, dtype=np.uint8)
    big = np.dtype(">" + code)
    expected = np.frombuffer(raw.tobytes(), dtype=big).astype(big.newbyteorder("="))
    for owned in (True, False):
        data = raw.copy()
        got = baskets._native(data, big, owned)
        assert got.dtype == big.newbyteorder("=")
        assert got.tobytes() == expected.tobytes()
