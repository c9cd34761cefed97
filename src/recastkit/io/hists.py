"""Histograms in and out of files: ROOT TH1D (uproot), hist/UHI JSON, and two-line text.

The in-memory type is always a :class:`hist.Hist` with ``Weight`` storage (sum of weights
and sum of squared weights per bin), one-dimensional except that ROOT and JSON files may
also hold 2D and 3D histograms (scaled like 1D ones; the fit takes 1D only). Formats are
chosen by file extension:

- ``.root``: TH1D (TH2D, TH3D) objects; the variances (``fSumw2``) survive the round trip. Metadata
  (e.g. the bookkeeping sum of weights recorded by the selection step) is stored as a JSON
  ``TObjString`` named :data:`METADATA_KEY`. The TH1 header sums are those ROOT's own
  ``TH1::ResetStats`` would compute from the bins (in-range bins, as ROOT's default
  statistics): ``fTsumw`` = Σ contents, ``fTsumw2`` = Σ variances (uproot alone writes
  ``fTsumw2 = fTsumw``, wrong for weighted fills), ``fTsumwx``/``fTsumwx2`` from the bin
  centres. ``fEntries`` is the number of fills when the writer knows it (``entries=`` of
  :func:`write_hists`); a Weight-storage histogram does not store it, so otherwise it is the
  effective number of entries ``fTsumw² / fTsumw2`` (``|fTsumw|`` without variances), which
  is also what ``TH1::ResetStats`` sets. ``GetEffectiveEntries()`` is then right in ROOT, and
  ``fEntries`` does not change when a histogram is scaled. (TH2D/TH3D headers are written
  as uproot computes them.)
- ``.json``: the UHI JSON schema (``uhi.io.json``) used by hist and boost-histogram. A file
  holds either one histogram or ``{"histograms": {name: hist}, "metadata": {...}}``.
- ``.txt``: one 1D histogram: bin edges on line 1, bin contents on line 2,
  whitespace-separated. recastkit writes a third line with the variances; a file with only
  two lines is read with variances equal to the contents (Poisson counts), and a warning says so.

Every write is atomic: a temporary file is written and renamed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hist
import numpy as np
import uhi.io.json
import uproot
from hist import serialization

from recastkit._atomic import atomic_path, write_text_atomic
from recastkit._files import read_text
from recastkit.exceptions import HistogramError, MissingObjectError
from recastkit.io.root import key_names, missing_object_error, open_root

log = logging.getLogger(__name__)

#: Name of the JSON ``TObjString`` carrying metadata in recastkit ROOT outputs.
METADATA_KEY = "recastkit_metadata"
#: Highest number of axes read from and written to ROOT/JSON files (TH1, TH2, TH3).
MAX_NDIM = 3
#: Fields of the recastkit metadata that later steps use, and the JSON types they must have.
_METADATA_TYPES: dict[str, tuple[type, ...]] = {
    "sum_of_weights": (int, float), "sum_of_weights_squared": (int, float),
    "sum_of_weights_source": (str,), "sum_of_weights_error": (str,), "dataset": (str,),
    "dsid": (int,), "normalization": (dict,), "cutflow": (list,), "files": (list,),
}
_TYPE_NAMES: dict[type, str] = {int: "an integer", str: "a string", dict: "a JSON object",
                                list: "a list"}
#: Numeric fields of the ``normalization`` ledger (the scale step's record).
_LEDGER_NUMBERS = ("scale", "expected_yield", "xsec_fb", "filter_eff", "k_factor", "lumi_ifb",
                   "sum_of_weights", "lumi_rel_unc", "xsec_rel_unc_up", "xsec_rel_unc_down")
#: File extensions and the format they select.
FORMATS: dict[str, str] = {".root": "root", ".json": "json", ".txt": "text"}


def histogram_format(path: str | os.PathLike[str]) -> str:
    """Return ``'root'``, ``'json'`` or ``'text'`` from the file extension.

    Raises:
        HistogramError: For any other extension, listing the supported ones.
    """
    suffix = Path(path).suffix.lower()
    try:
        return FORMATS[suffix]
    except KeyError:
        msg = (
            f"{path}: unsupported histogram file extension {suffix or '(none)'!r}; "
            f"supported: {', '.join(FORMATS)}"
        )
        raise HistogramError(msg) from None


def split_spec(spec: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """Split ``'file.root:h_mjj'`` into the path and the histogram name.

    A spec that names an existing file is taken as a plain path (no histogram name).
    """
    text = os.fspath(spec)
    if Path(text).exists() or ":" not in text:
        return Path(text), None
    path, _, name = text.rpartition(":")
    return Path(path), (name or None)


def as_weighted(h: Any, name: str = "histogram", max_ndim: int = 1) -> hist.Hist:
    """Return ``h`` as a ``hist.Hist`` with Weight storage (a copy if converted).

    Counts-only storages get variances equal to the contents.

    Args:
        h: The histogram.
        name: Its name or ``file:name``, for messages.
        max_ndim: Highest accepted number of axes (1 for the fit, :data:`MAX_NDIM` for files).

    Raises:
        HistogramError: If ``h`` has more than ``max_ndim`` axes.
    """
    if not isinstance(h, hist.Hist):
        h = hist.Hist(h)
    if h.ndim > max_ndim:
        what = "one-dimensional" if max_ndim == 1 else f"at most {max_ndim}-dimensional"
        raise HistogramError(f"{name}: expected a {what} histogram, got {h.ndim} axes")
    if h.storage_type is hist.storage.Weight:
        return h
    out = hist.Hist(*h.axes, storage=hist.storage.Weight(), name=h.name, label=h.label)
    values = h.values(flow=True)
    view = out.view(flow=True)
    view.value = values
    view.variance = values
    return out


def _from_arrays(edges: np.ndarray, values: np.ndarray, variances: np.ndarray,
                 name: str = "x") -> hist.Hist:
    h = hist.Hist(hist.axis.Variable(edges, name=name), storage=hist.storage.Weight())
    view = h.view()
    view.value = values
    view.variance = variances
    return h


def _check_edges(edges: np.ndarray, where: str) -> None:
    if edges.ndim != 1 or edges.size < 2:
        raise HistogramError(f"{where}: a histogram needs at least two bin edges")
    if not np.all(np.isfinite(edges)) or not np.all(np.diff(edges) > 0):
        raise HistogramError(f"{where}: bin edges must be finite and strictly increasing")


# --------------------------------------------------------------------------- text


def _read_text(path: Path) -> hist.Hist:
    text = read_text(path, "histogram file", HistogramError)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) not in (2, 3):
        msg = (
            f"{path}: the text histogram format is bin edges on line 1 and contents on line 2 "
            f"(optionally variances on line 3); found {len(lines)} non-empty lines"
        )
        raise HistogramError(msg)
    try:
        rows = [np.array(ln.replace(",", " ").split(), dtype=np.float64) for ln in lines]
    except ValueError as exc:
        raise HistogramError(f"{path}: non-numeric entry ({exc})") from None
    edges, values = rows[0], rows[1]
    _check_edges(edges, str(path))
    if values.size != edges.size - 1:
        msg = (
            f"{path}: line 2 has {values.size} contents but line 1 has {edges.size} edges "
            f"(expected {edges.size - 1} contents)"
        )
        raise HistogramError(msg)
    if len(rows) == 3:
        variances = rows[2]
        if variances.size != values.size:
            msg = f"{path}: line 3 has {variances.size} variances, expected {values.size}"
            raise HistogramError(msg)
    else:
        log.warning("%s: no variances line; assuming Poisson variances equal to the contents",
                    path)
        variances = np.abs(values)
    return _from_arrays(edges, values, variances)


def _text(h: hist.Hist, where: str = "histogram") -> str:
    if h.ndim != 1:
        msg = (
            f"{where}: the text format holds a one-dimensional histogram, this one has "
            f"{h.ndim} axes; write it as .root or .json"
        )
        raise HistogramError(msg)
    fmt = "{:.17g}".format
    edges = " ".join(map(fmt, h.axes[0].edges))
    values = " ".join(map(fmt, h.values()))
    variances = h.variances()
    lines = [edges, values]
    if variances is not None:
        lines.append(" ".join(map(fmt, variances)))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- json


def _hist_from_uhi(obj: Any, where: str) -> hist.Hist:
    try:
        return as_weighted(hist.Hist(serialization.from_uhi(obj)), where, MAX_NDIM)
    except (KeyError, TypeError, ValueError) as exc:
        raise HistogramError(f"{where}: not a UHI JSON histogram ({exc})") from None


def _read_json_doc(path: Path) -> dict[str, Any]:
    text = read_text(path, "histogram file", HistogramError)
    try:
        doc = json.loads(text, object_hook=uhi.io.json.object_hook)
    except json.JSONDecodeError as exc:
        raise HistogramError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise HistogramError(f"{path}: expected a JSON object")
    return doc


def _json_hists(path: Path) -> tuple[dict[str, hist.Hist], dict[str, Any]]:
    doc = _read_json_doc(path)
    if "uhi_schema" in doc or "axes" in doc:
        return {"h": _hist_from_uhi(doc, str(path))}, {}
    if "histograms" not in doc or not isinstance(doc["histograms"], dict):
        msg = f"{path}: expected a UHI histogram or an object with a 'histograms' mapping"
        raise HistogramError(msg)
    hists = {k: _hist_from_uhi(v, f"{path}:{k}") for k, v in doc["histograms"].items()}
    return hists, check_metadata(doc.get("metadata", {}), f"{path}: field 'metadata'")


def _uhi(h: hist.Hist) -> dict[str, Any]:
    doc: dict[str, Any] = serialization.remove_writer_info(serialization.to_uhi(h))
    return doc


def _dump_json(doc: Any) -> str:
    return json.dumps(doc, default=uhi.io.json.default, indent=2, sort_keys=True) + "\n"


# --------------------------------------------------------------------------- root


def header_sums(h: hist.Hist) -> dict[str, float]:
    """The TH1 header sums of a 1D Weight histogram (in-range bins, see the module docstring).

    Returns:
        ``fTsumw``, ``fTsumw2``, ``fTsumwx``, ``fTsumwx2`` and ``fEntries`` (effective entries).
    """
    values = np.asarray(h.values(), dtype=np.float64)
    variances = h.variances()
    var = values if variances is None else np.asarray(variances, dtype=np.float64)
    centers = np.asarray(h.axes[0].centers, dtype=np.float64)
    sumw = float(values.sum())
    sumw2 = float(var.sum())
    entries = abs(sumw)
    if variances is not None and sumw > 0 and sumw2 > 0:
        entries = sumw * sumw / sumw2
    return {
        "fTsumw": sumw,
        "fTsumw2": sumw2,
        "fTsumwx": float((values * centers).sum()),
        "fTsumwx2": float((values * centers * centers).sum()),
        "fEntries": entries,
    }


def _root_th1(h: hist.Hist, entries: float | None) -> Any:
    """The TH1D written for ``h``: uproot's conversion with ROOT's header sums."""
    from uproot.writing.identify import to_TH1x

    writable = uproot.to_writable(h)
    sums = header_sums(h)
    if entries is not None:
        sums["fEntries"] = float(entries)
    sumw2 = writable.member("fSumw2")
    return to_TH1x(
        fName=None,
        fTitle=writable.member("fTitle"),
        data=np.asarray(writable.values(flow=True), dtype=">f8"),
        fSumw2=None if sumw2 is None else np.asarray(sumw2, dtype=">f8"),
        fXaxis=writable.member("fXaxis"),
        **sums,
    )


def _root_hist_names(f: Any) -> list[str]:
    return sorted({n for prefix in ("TH1", "TH2", "TH3") for n in key_names(f, prefix)})


def _read_root_hist(f: Any, path: Path, name: str) -> hist.Hist:
    names = _root_hist_names(f)
    if name not in names:
        raise missing_object_error(path, "histogram", name, names)
    return as_weighted(f[name].to_hist(), f"{path}:{name}", MAX_NDIM)


def check_metadata(meta: Any, where: str) -> dict[str, Any]:
    """Check the recastkit metadata of a file: a mapping whose known fields have their types.

    Args:
        meta: The decoded metadata.
        where: ``"file: field 'metadata'"`` or ``"file: recastkit_metadata"``, for messages.

    Returns:
        ``meta`` as a dict.

    Raises:
        HistogramError: Naming the file and the field, for corrupt metadata.
    """
    if not isinstance(meta, dict):
        raise HistogramError(f"{where} is corrupt: expected a JSON object, "
                             f"got {type(meta).__name__}")
    for key, types in _METADATA_TYPES.items():
        value = meta.get(key)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            names = _TYPE_NAMES[types[0]] if len(types) == 1 else "a number"
            msg = (f"{where} is corrupt: field '{key}' must be {names} or null, "
                   f"got {_short(value)}")
            raise HistogramError(msg)
    ledger = meta.get("normalization") or {}
    for key in _LEDGER_NUMBERS:
        value = ledger.get(key)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            msg = (f"{where} is corrupt: field 'normalization.{key}' must be a number or null, "
                   f"got {_short(value)}")
            raise HistogramError(msg)
    return meta


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------- public API


def read_hists(path: str | os.PathLike[str]) -> dict[str, hist.Hist]:
    """Read every histogram in a ROOT or JSON file (a text file holds one, named ``'h'``)."""
    return read_hists_and_metadata(path)[0]


def read_hists_and_metadata(
    path: str | os.PathLike[str],
) -> tuple[dict[str, hist.Hist], dict[str, Any]]:
    """Read every histogram and the recastkit metadata of a file.

    Returns:
        ``(histograms by name, metadata mapping)``; the metadata is empty when absent.
    """
    path = Path(path)
    fmt = histogram_format(path)
    if fmt != "root" and not path.exists():
        raise HistogramError(f"{path}: no such file")
    if fmt == "text":
        return {"h": _read_text(path)}, {}
    if fmt == "json":
        return _json_hists(path)
    with open_root(path) as f:
        hists = {n: _read_root_hist(f, path, n) for n in _root_hist_names(f)}
        meta: dict[str, Any] = {}
        if METADATA_KEY in key_names(f):
            where = f"{path}: {METADATA_KEY}"
            try:
                loaded = json.loads(str(f[METADATA_KEY]))
            except json.JSONDecodeError as exc:
                raise HistogramError(f"{where} is corrupt: not valid JSON ({exc})") from None
            meta = check_metadata(loaded, where)
    return hists, meta


def read_hist(spec: str | os.PathLike[str], name: str | None = None) -> hist.Hist:
    """Read one histogram.

    Args:
        spec: ``path`` or ``path:histname``; the format comes from the extension.
        name: Histogram name; overrides the one in ``spec``. May be omitted when the file
            holds exactly one histogram.

    Returns:
        A ``hist.Hist`` with Weight storage (1D; ROOT and JSON files may also hold 2D/3D).

    Raises:
        HistogramError: Unsupported extension, malformed content.
        MissingObjectError: The named histogram is absent (lists close matches), or no name
            was given and the file holds several.
    """
    path, spec_name = split_spec(spec)
    name = name or spec_name
    fmt = histogram_format(path)
    if fmt == "root" and name is not None:
        with open_root(path) as f:
            return _read_root_hist(f, path, name)
    hists = read_hists(path)
    if name is None:
        if len(hists) == 1:
            return next(iter(hists.values()))
        msg = (
            f"{path}: holds {len(hists)} histograms, name one as {path}:NAME "
            f"(choices: {', '.join(sorted(hists)) or 'none'})"
        )
        raise MissingObjectError(msg)
    if name not in hists:
        raise missing_object_error(path, "histogram", name, hists)
    return hists[name]


def write_hists(path: str | os.PathLike[str], hists: Mapping[str, hist.Hist],
                metadata: Mapping[str, Any] | None = None, *,
                entries: Mapping[str, float] | None = None) -> None:
    """Write several histograms (and optional JSON-serializable metadata) to one file.

    The text format holds a single histogram and no metadata.

    Args:
        path: Output file; the format follows the extension.
        hists: Histograms by name.
        metadata: JSON-serializable metadata (ROOT and JSON formats).
        entries: Number of fills of some histograms, written as the TH1 ``fEntries`` of a
            ROOT output (default: the effective number of entries, see the module docstring).

    Raises:
        HistogramError: For an unsupported extension, or several histograms to a text file.
    """
    path = Path(path)
    fmt = histogram_format(path)
    weighted = {n: as_weighted(h, f"{path}:{n}", MAX_NDIM) for n, h in hists.items()}
    meta = dict(metadata or {})
    if fmt == "text":
        if len(weighted) != 1:
            msg = f"{path}: the text format holds one histogram, got {len(weighted)}"
            raise HistogramError(msg)
        name, only = next(iter(weighted.items()))
        write_text_atomic(path, _text(only, f"{path}:{name}"))
        return
    if fmt == "json":
        doc: dict[str, Any] = {"histograms": {n: _uhi(h) for n, h in weighted.items()}}
        if meta:
            doc["metadata"] = meta
        write_text_atomic(path, _dump_json(doc))
        return
    with atomic_path(path) as tmp, uproot.recreate(tmp) as f:
        for n, h in weighted.items():
            # 1D: ROOT's header sums (module docstring); 2D/3D as uproot writes them.
            f[n] = _root_th1(h, (entries or {}).get(n)) if h.ndim == 1 else h
        if meta:
            f[METADATA_KEY] = json.dumps(meta, sort_keys=True)


def write_hist(path: str | os.PathLike[str], h: hist.Hist, name: str = "h") -> None:
    """Write one histogram to ``path`` under ``name`` (format by extension), atomically."""
    write_hists(path, {name: h})
