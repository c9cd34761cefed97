"""Reading numeric TTree branches basket by basket, straight into numpy arrays.

This is the **only** module that reads TTree baskets without uproot's interpretation layer:
the dijet fast path of :func:`recastkit.io.events.iter_chunks`. It reads a basket's bytes
with ``os.pread`` (not a memory map: the resident memory stays bounded by the chunks in
flight whatever the file size, and a file truncated while read is an error, not a SIGBUS),
parses its ``TKey``/``TBasket`` header and ROOT's compression blocks itself, decompresses
them with the fastest zlib library (:func:`recastkit.io.decoding.zlib_decompressor`, which
may be one uproot cannot call), LZ4 or ZSTD (``cramjam``, as uproot) or LZMA (the standard
library) and turns the basket into a native-endian content array and int64 entry offsets.
Baskets are decoded in a thread pool (the decoders release the GIL) one chunk ahead of the
consumer, so decompression overlaps the selection kernel.

What it takes from uproot (``tests/io/test_baskets.py`` fails loudly if any of it changes):
a branch's ``interpretation`` (``AsDtype`` / ``AsJagged`` and its ``header_bytes``), the
``fBasketSeek`` member, ``num_baskets``, ``embedded_baskets`` (baskets kept inside the
``TBranch``, e.g. the last one of a file closed while being written: their ``data`` and
``byte_offsets`` are used as uproot parsed them), ``basket_entry_start_stop`` and
``basket_compressed_bytes``. The on-disk layout (``TKey``, ``TBasket``, the 9-byte
compression block header, the LZ4 checksum, the entry-offset array after ``fLast``) is
ROOT's file format, parsed as uproot 5.7 parses it (``uproot/models/TBasket.py``,
``uproot/compression.py``).

Anything else raises :class:`Unsupported` and the caller reads with uproot: RNTuple fields,
non-numeric or multi-dimensional branches, baskets without entry offsets or with entry sizes
that are not whole values, old ``CS`` blocks. Baskets whose sizes contradict their headers,
bad checksums and decoder errors are errors (a corrupt file).
"""

from __future__ import annotations

import contextlib
import lzma
import os
import struct
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cramjam
import numba
import numpy as np
import numpy.typing as npt
import uproot

from recastkit.io.decoding import ZlibDecompressor

Int64Array = npt.NDArray[np.int64]
NumArray = npt.NDArray[Any]

_KEY = struct.Struct(">ihiIhh")  # fNbytes, version, fObjlen, fDatime, fKeylen, fCycle
_BASKET = struct.Struct(">Hiiii")  # fVersion, fBufferSize, fNevBufSize, fNevBuf, fLast
_BLOCK_HEADER = 9  # algorithm (2 bytes), method, compressed size (3), uncompressed size (3)
_LZ4_CHECKSUM = 8
#: The largest TKey header this reader expects (name and title are short branch names).
_KEY_PEEK = 1024


class Unsupported(Exception):
    """A branch or basket this reader does not handle; read it with uproot instead."""


@dataclass(frozen=True)
class BranchBaskets:
    """Where the baskets of one numeric branch are and how to interpret them.

    Attributes:
        name: Branch name.
        dtype: Stored (big-endian) dtype of one value.
        jagged: Variable number of values per entry (``AsJagged``).
        header_bytes: Bytes before every entry's values (10 for ``std::vector``).
        entry_starts: First entry of every basket, plus the number of entries
            (``len == n_baskets + 1``).
        seeks: File position of every free basket's ``TKey``.
        nbytes: Size of every free basket on disk, key included.
        embedded: uproot's parsed baskets stored inside the ``TBranch`` (after the free ones).
    """

    name: str
    dtype: np.dtype[Any]
    jagged: bool
    header_bytes: int
    entry_starts: Int64Array
    seeks: Int64Array
    nbytes: Int64Array
    embedded: tuple[Any, ...]

    @property
    def n_baskets(self) -> int:
        """Number of baskets (free and embedded)."""
        return len(self.entry_starts) - 1


def branch_baskets(tree: Any, name: str) -> BranchBaskets:
    """The basket map of branch ``name`` of ``tree`` (an uproot TTree).

    Raises:
        Unsupported: Not a branch of plain numbers (scalar or jagged) with its own baskets.
    """
    branch = tree[name]
    interp: Any = getattr(branch, "interpretation", None)  # None: an RNTuple field
    jagged = isinstance(interp, uproot.interpretation.jagged.AsJagged)
    content = interp.content if jagged else interp
    if type(content) is not uproot.interpretation.numerical.AsDtype:
        raise Unsupported(f"branch {name!r} is interpreted as {interp}")
    dtype = np.dtype(content.from_dtype)
    if (dtype.shape or dtype.kind not in "iufb" or dtype.fields is not None
            or dtype.itemsize & (dtype.itemsize - 1)):
        raise Unsupported(f"branch {name!r} has values of type {dtype}")
    header = int(interp.header_bytes) if jagged else 0
    embedded = tuple(branch.embedded_baskets)
    n = int(branch.num_baskets)
    n_free = n - len(embedded)
    seeks = np.asarray(branch.member("fBasketSeek"), dtype=np.int64)[:n_free].copy()
    nbytes = np.array([branch.basket_compressed_bytes(i) for i in range(n_free)],
                      dtype=np.int64)
    starts = np.empty(n + 1, dtype=np.int64)
    starts[0] = 0
    for i in range(n):
        start, stop = branch.basket_entry_start_stop(i)
        if int(start) != starts[i]:
            raise Unsupported(f"branch {name!r}: basket {i} does not follow basket {i - 1}")
        starts[i + 1] = int(stop)
    if starts[-1] != int(branch.num_entries) or np.any(np.diff(starts) < 0):
        raise Unsupported(f"branch {name!r}: baskets do not cover the entries")
    if len(seeks) != n_free or np.any(nbytes <= 0):
        raise Unsupported(f"branch {name!r}: missing basket positions")
    return BranchBaskets(str(name), dtype, jagged, header, starts, seeks, nbytes, embedded)


# --------------------------------------------------------------------------- one basket


@dataclass(frozen=True)
class Column:
    """Values of one branch for a range of entries.

    Attributes:
        content: The values, native byte order.
        offsets: For a jagged branch, int64 offsets into ``content`` (``len == entries + 1``,
            starting at 0); ``None`` for one value per entry.
    """

    content: NumArray
    offsets: Int64Array | None


def _blocks(blob: Any, start: int, objlen: int, zlib_fn: ZlibDecompressor) -> NumArray:
    """Decompress ROOT's compression blocks in ``blob[start:]`` to ``objlen`` bytes (a uint8
    array, writable when the decoder returned a writable buffer)."""
    view = memoryview(blob)
    end = len(blob)
    pos = start
    parts: list[NumArray] = []
    total = 0
    while pos < end:
        if pos + _BLOCK_HEADER > end:
            raise ValueError("truncated compression block header")
        algo = bytes(view[pos:pos + 2])
        h = view[pos + 3:pos + 9]
        c = h[0] | (h[1] << 8) | (h[2] << 16)
        u = h[3] | (h[4] << 8) | (h[5] << 16)
        pos += _BLOCK_HEADER
        if pos + c > end:
            raise ValueError("truncated compression block")
        out: Any
        if algo == b"ZL":
            out = zlib_fn(view[pos:pos + c], u)
        elif algo == b"L4":
            import xxhash

            expected = int.from_bytes(view[pos:pos + _LZ4_CHECKSUM], "big")
            data = view[pos + _LZ4_CHECKSUM:pos + c]
            if xxhash.xxh64(data).intdigest() != expected:
                raise ValueError("LZ4 block checksum mismatch")
            out = cramjam.lz4.decompress_block(data, output_len=u)
        elif algo == b"ZS":
            out = cramjam.zstd.decompress(view[pos:pos + c], output_len=u)
        elif algo == b"XZ":
            out = lzma.decompress(view[pos:pos + c])
        else:
            raise Unsupported(f"compression algorithm {algo!r}")
        array = np.frombuffer(out, dtype=np.uint8)
        if array.size != u:
            raise ValueError(f"a block decompressed to {array.size} bytes instead of {u}")
        parts.append(array)
        total += u
        pos += c
    if total != objlen:
        raise ValueError(f"blocks decompressed to {total} bytes instead of {objlen}")
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


@numba.njit(cache=True, nogil=True)
def _item_offsets(byte_offsets: Any, shift: int, out: Any) -> bool:  # pragma: no cover
    """``out = (byte_offsets - byte_offsets[0]) / 2**shift``; False unless whole and
    increasing."""
    first = byte_offsets[0]
    prev = 0
    ok = True
    for i in range(byte_offsets.shape[0]):
        rel = byte_offsets[i] - first
        q = rel >> shift
        ok &= ((q << shift) == rel) & (q >= prev)
        out[i] = q
        prev = q
    return ok


@numba.njit(cache=True, nogil=True)
def _bswap16(a: Any) -> None:  # pragma: no cover - compiled
    for i in range(a.shape[0]):
        x = a[i]
        a[i] = (x << np.uint16(8)) | (x >> np.uint16(8))


@numba.njit(cache=True, nogil=True)
def _bswap32(a: Any) -> None:  # pragma: no cover - compiled
    for i in range(a.shape[0]):
        x = a[i]
        a[i] = (((x & np.uint32(0xFF)) << np.uint32(24))
                | ((x & np.uint32(0xFF00)) << np.uint32(8))
                | ((x >> np.uint32(8)) & np.uint32(0xFF00)) | (x >> np.uint32(24)))


@numba.njit(cache=True, nogil=True)
def _bswap64(a: Any) -> None:  # pragma: no cover - compiled
    for i in range(a.shape[0]):
        x = a[i]
        lo = x & np.uint64(0xFFFFFFFF)
        hi = x >> np.uint64(32)
        lo = (((lo & np.uint64(0xFF)) << np.uint64(24))
              | ((lo & np.uint64(0xFF00)) << np.uint64(8))
              | ((lo >> np.uint64(8)) & np.uint64(0xFF00)) | (lo >> np.uint64(24)))
        hi = (((hi & np.uint64(0xFF)) << np.uint64(24))
              | ((hi & np.uint64(0xFF00)) << np.uint64(8))
              | ((hi >> np.uint64(8)) & np.uint64(0xFF00)) | (hi >> np.uint64(24)))
        a[i] = (lo << np.uint64(32)) | hi


#: In-place byte reversal of every value, by value size. LLVM compiles these loops to
#: vector byte shuffles: about ten times faster than numpy's in-place ``byteswap``, whose
#: strided loop takes a few percent of a whole dijet run.
_BSWAP = {2: (_bswap16, np.uint16), 4: (_bswap32, np.uint32), 8: (_bswap64, np.uint64)}


def _native(data: NumArray, dtype: np.dtype[Any], owned: bool) -> NumArray:
    """``data`` (bytes) as native-endian values of ``dtype``; swapped in place if ``owned``."""
    values = data.view(dtype)
    if dtype.isnative:
        return values if owned else values.copy()
    native = dtype.newbyteorder("=")
    if owned and values.flags.writeable:
        swap = _BSWAP.get(dtype.itemsize)
        if swap is not None and values.flags.c_contiguous:
            swap[0](values.view(swap[1]))
            return values.view(native)
        return values.byteswap(inplace=True).view(native)
    return values.astype(native)


def _interpret(spec: BranchBaskets, data: NumArray, byte_offsets: Int64Array | None,
               n_entries: int, owned: bool) -> Column:
    """Turn a basket's data bytes (``fLast - fKeylen`` of them) into a :class:`Column`.

    ``owned``: ``data`` is a buffer nobody else uses (it may be modified).
    """
    size = spec.dtype.itemsize
    if not spec.jagged:
        if len(data) != n_entries * size:
            raise Unsupported(f"branch {spec.name!r}: {len(data)} bytes for {n_entries} "
                              "entries")
        return Column(_native(data, spec.dtype, owned), None)
    if byte_offsets is None or len(byte_offsets) != n_entries + 1:
        raise Unsupported(f"branch {spec.name!r}: basket without entry offsets")
    first = int(byte_offsets[0])
    last = int(byte_offsets[-1])
    if not 0 <= first <= last <= len(data):
        raise Unsupported(f"branch {spec.name!r}: entry offsets outside the basket")
    if spec.header_bytes == 0:
        offsets = np.empty(n_entries + 1, dtype=np.int64)
        if not _item_offsets(byte_offsets, size.bit_length() - 1, offsets):
            raise Unsupported(f"branch {spec.name!r}: unexpected entry sizes")
        return Column(_native(data[first:last], spec.dtype, owned), offsets)
    sizes = np.diff(byte_offsets) - spec.header_bytes
    if np.any(sizes < 0) or np.any(sizes % size):
        raise Unsupported(f"branch {spec.name!r}: unexpected entry sizes")
    offsets = np.empty(n_entries + 1, dtype=np.int64)
    offsets[0] = 0
    np.cumsum(sizes // size, out=offsets[1:])
    keep = np.ones(len(data), dtype=bool)
    keep[:first] = False
    keep[last:] = False
    heads = byte_offsets[:-1, None] + np.arange(spec.header_bytes, dtype=np.int64)
    keep[heads.ravel()] = False
    return Column(_native(data[keep], spec.dtype, True), offsets)


def read_basket(fd: int, spec: BranchBaskets, index: int, zlib_fn: ZlibDecompressor) -> Column:
    """Read, decompress and interpret basket ``index`` of ``spec`` from the open file ``fd``.

    Raises:
        Unsupported: A basket this reader does not handle (use uproot).
        ValueError, OSError: A truncated or corrupt basket.
    """
    n_entries = int(spec.entry_starts[index + 1] - spec.entry_starts[index])
    n_free = len(spec.seeks)
    if index >= n_free:
        basket = spec.embedded[index - n_free]
        if int(basket.num_entries) != n_entries:
            raise ValueError(f"embedded basket with {basket.num_entries} entries, expected "
                             f"{n_entries}")
        raw_offsets = basket.byte_offsets
        return _interpret(spec, np.asarray(basket.data, dtype=np.uint8),
                          None if raw_offsets is None
                          else np.asarray(raw_offsets, dtype=np.int64), n_entries, False)
    nbytes = int(spec.nbytes[index])
    blob = os.pread(fd, nbytes, int(spec.seeks[index]))
    if len(blob) != nbytes:
        raise ValueError(f"basket {index} of {spec.name!r} is cut short by the end of the file")
    fnbytes, _version, objlen, _datime, keylen, _cycle = _KEY.unpack_from(blob, 0)
    if fnbytes != nbytes or not _KEY.size + _BASKET.size < keylen <= min(nbytes, _KEY_PEEK):
        raise ValueError(f"basket {index} of {spec.name!r} has an unexpected key "
                         f"(fNbytes {fnbytes}, expected {nbytes}, fKeylen {keylen})")
    _ver, _bufsize, _nevbufsize, nevbuf, flast = _BASKET.unpack_from(
        blob, keylen - _BASKET.size - 1)
    if nevbuf != n_entries:
        raise ValueError(f"basket {index} of {spec.name!r} has {nevbuf} entries, the branch "
                         f"says {n_entries}")
    owned = nbytes - keylen != objlen
    if owned:
        raw = _blocks(blob, keylen, objlen, zlib_fn)
    else:  # stored uncompressed (read-only bytes: the values are copied)
        raw = np.frombuffer(blob, dtype=np.uint8, offset=keylen)
    border = flast - keylen
    if not 0 <= border <= len(raw):
        raise ValueError(f"basket {index} of {spec.name!r}: fLast outside the basket")
    byte_offsets: Int64Array | None = None
    if border != len(raw):
        # [n, offsets of the n entries (from the key start), 0]; the last becomes fLast
        if len(raw) - border < 4 * (n_entries + 1):
            raise ValueError(f"basket {index} of {spec.name!r}: entry offsets cut short")
        byte_offsets = np.empty(n_entries + 1, dtype=np.int64)
        byte_offsets[:n_entries] = np.frombuffer(raw, dtype=">i4", count=n_entries,
                                                 offset=border + 4)
        byte_offsets[:n_entries] -= keylen
        byte_offsets[n_entries] = border
    return _interpret(spec, raw[:border], byte_offsets, n_entries, owned)


# --------------------------------------------------------------------------- chunks


def _join(pieces: Sequence[Column]) -> Column:
    if len(pieces) == 1:
        return pieces[0]
    content = np.concatenate([p.content for p in pieces])
    if pieces[0].offsets is None:
        return Column(content, None)
    parts = [np.zeros(1, dtype=np.int64)]
    shift = 0
    for p in pieces:
        assert p.offsets is not None
        parts.append(p.offsets[1:] + shift)
        shift += int(p.offsets[-1])
    return Column(content, np.concatenate(parts))


def _slice(col: Column, first: int, last: int) -> Column:
    """Entries ``[first, last)`` of a basket's column (a view when possible)."""
    if col.offsets is None:
        return Column(col.content[first:last], None)
    n = len(col.offsets) - 1
    if first == 0 and last == n:
        return col
    lo = int(col.offsets[first])
    hi = int(col.offsets[last])
    return Column(col.content[lo:hi], col.offsets[first:last + 1] - lo)


class ChunkReader:
    """Read ranges of entries of several branches of one file, basket by basket.

    Args:
        path: A local file.
        specs: The branches (from :func:`branch_baskets`).
        zlib_fn: The zlib decompressor.
        pool: Threads decoding baskets ahead of the consumer; ``None`` decodes inline.
    """

    def __init__(self, path: str, specs: Sequence[BranchBaskets], zlib_fn: ZlibDecompressor,
                 pool: ThreadPoolExecutor | None) -> None:
        self._path = path
        self._specs = tuple(specs)
        self._zlib = zlib_fn
        self._pool = pool

    def _needed(self, start: int, stop: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for b, spec in enumerate(self._specs):
            first = int(np.searchsorted(spec.entry_starts, start, side="right")) - 1
            last = int(np.searchsorted(spec.entry_starts, stop, side="left"))
            out.extend((b, i) for i in range(max(first, 0), min(last, spec.n_baskets)))
        return out

    def chunks(self, entry_start: int, entry_stop: int, step: int
               ) -> Iterator[tuple[int, int, dict[str, Column]]]:
        """``(start, stop, branch name -> Column)`` for ``[entry_start, entry_stop)`` in steps.

        At most the baskets of two chunks are held (the current one and, with a pool, the
        next, being decoded). Errors of :func:`read_basket` propagate.
        """
        ranges = [(a, min(a + step, entry_stop)) for a in range(entry_start, entry_stop, step)]
        fd = os.open(self._path, os.O_RDONLY)
        pending: dict[tuple[int, int], Future[Column] | Column] = {}
        try:
            def request(k: int) -> None:
                if k >= len(ranges):
                    return
                for key in self._needed(*ranges[k]):
                    if key not in pending:
                        spec = self._specs[key[0]]
                        pending[key] = (self._pool.submit(read_basket, fd, spec, key[1],
                                                          self._zlib)
                                        if self._pool is not None else
                                        read_basket(fd, spec, key[1], self._zlib))

            request(0)
            for k, (start, stop) in enumerate(ranges):
                if self._pool is not None:
                    request(k + 1)  # decoded while this chunk is consumed
                else:
                    request(k)
                columns: dict[str, Column] = {}
                for b, spec in enumerate(self._specs):
                    pieces = []
                    for key in self._needed(start, stop):
                        if key[0] != b:
                            continue
                        item = pending[key]
                        col = item.result() if isinstance(item, Future) else item
                        e0 = int(spec.entry_starts[key[1]])
                        pieces.append(_slice(col, max(start, e0) - e0,
                                             min(stop, int(spec.entry_starts[key[1] + 1])) - e0))
                    columns[spec.name] = _join(pieces)
                for key in [key for key in pending
                            if self._specs[key[0]].entry_starts[key[1] + 1] <= stop]:
                    del pending[key]
                yield start, stop, columns
        finally:
            for item in pending.values():
                if isinstance(item, Future):
                    item.cancel()
            for item in pending.values():  # the file must outlive every running read
                if isinstance(item, Future) and not item.cancelled():
                    with contextlib.suppress(Exception):  # reported, or not needed
                        item.result()
            pending.clear()
            os.close(fd)
