"""Chunked reading of event data: ATLAS PHYSLITE (TTree and RNTuple), CMS NanoAOD, flat ntuples.

This module is the only place where the selection step touches ROOT files. It turns a file and
an entry range into :class:`EventChunk` objects holding plain numpy arrays: the jagged jet
offsets, four jet component arrays and one float64 weight per event. Everything downstream
(:mod:`recastkit.selection`, :mod:`recastkit.processing`) works on those arrays only.

Layouts (:data:`LAYOUTS`), detected automatically by :func:`detect_layout` unless named:

- ``physlite``: ATLAS DAOD_PHYSLITE as a TTree ``CollectionTree``; jets
  ``AnalysisJetsAuxDyn.pt/eta/phi/m`` in MeV; weight ``EventInfoAuxDyn.mcEventWeights[:, 0]``.
- ``physlite_rntuple``: the same as an RNTuple ``EventData`` with ``:`` in the field names
  (``AnalysisJetsAuxDyn:pt``, ``EventInfoAuxDyn:mcEventWeights``).
- ``nanoaod``: CMS NanoAOD, TTree ``Events``; jets ``Jet_pt/eta/phi/mass`` in GeV; weight
  ``genWeight``.
- ``flat``: a flat ntuple with jets ``jet_pt/jet_eta/jet_phi/jet_m`` in GeV and a scalar
  ``weight`` (tree found automatically, names configurable through :class:`InputConfig`).
- ``flat_cartesian``: a flat ntuple with Cartesian jets ``Jet_Px/Py/Pz/E`` in GeV and weight
  ``EventWeight`` (the layout of ``uproot-HZZ.root``, tree ``events``).

Energies and momenta are converted to GeV by the consumer with
:attr:`EventLayout.energy_scale_to_gev` (0.001 for MeV layouts); angles are untouched. Jet
component arrays are returned in their stored precision (usually float32) so no extra copy is
made; the weights are float64.
"""

from __future__ import annotations

import glob
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import awkward as ak
import numpy as np
import numpy.typing as npt
import yaml

from recastkit._files import read_text
from recastkit.exceptions import ConfigError, MissingObjectError, RootFileError, SelectionError
from recastkit.io import decoding
from recastkit.io.baskets import BranchBaskets, ChunkReader, Column, Unsupported, branch_baskets
from recastkit.io.decoding import ReadOptions
from recastkit.io.root import missing_object_error, open_root

log = logging.getLogger(__name__)

Kinematics = Literal["ptetaphim", "pxpypze"]
EnergyUnit = Literal["MeV", "GeV"]

#: Names of the built-in layouts (``auto`` means :func:`detect_layout`).
LAYOUTS: tuple[str, ...] = ("physlite", "physlite_rntuple", "nanoaod", "flat", "flat_cartesian")

FloatArray = npt.NDArray[np.floating[Any]]
Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class EventLayout:
    """Where the jets and weights of one file layout live.

    Attributes:
        name: One of :data:`LAYOUTS`.
        tree: Name of the TTree or RNTuple holding the events.
        jet_branches: The four jagged jet branches: ``(pt, eta, phi, m)`` for
            ``kinematics="ptetaphim"`` or ``(px, py, pz, E)`` for ``"pxpypze"``.
        kinematics: How to read ``jet_branches``.
        energy_unit: ``"MeV"`` or ``"GeV"``; energies and momenta are scaled to GeV.
        weight_branch: Per-event weight branch, or ``None`` for unit weights.
        weight_index: For a vector weight branch (``mcEventWeights``), the index taken in every
            event; ``None`` for a scalar branch.
        extra_weight_branches: Scalar per-event factors multiplied into the weight
            (e.g. ``EventInfoAuxDyn.PileupWeight_NOSYS``), full branch names.
        event_info_prefix: Prefix tried for extra weights given by short name
            (``PileupWeight_NOSYS`` -> ``EventInfoAuxDyn.PileupWeight_NOSYS``).
        rntuple: Whether :attr:`tree` is an RNTuple rather than a TTree.
    """

    name: str
    tree: str
    jet_branches: tuple[str, str, str, str]
    kinematics: Kinematics = "ptetaphim"
    energy_unit: EnergyUnit = "GeV"
    weight_branch: str | None = None
    weight_index: int | None = None
    extra_weight_branches: tuple[str, ...] = ()
    event_info_prefix: str = ""
    rntuple: bool = False

    @property
    def energy_scale_to_gev(self) -> float:
        """Factor turning stored energies/momenta into GeV (0.001 for MeV, 1 for GeV)."""
        return 1e-3 if self.energy_unit == "MeV" else 1.0

    @property
    def branches(self) -> tuple[str, ...]:
        """Every branch read per event: jets, weight, extra weights."""
        out = list(self.jet_branches)
        if self.weight_branch is not None:
            out.append(self.weight_branch)
        out.extend(self.extra_weight_branches)
        return tuple(dict.fromkeys(out))


#: The built-in layouts, before per-file tree detection and user overrides.
BUILTIN_LAYOUTS: dict[str, EventLayout] = {
    "physlite": EventLayout(
        name="physlite",
        tree="CollectionTree",
        jet_branches=("AnalysisJetsAuxDyn.pt", "AnalysisJetsAuxDyn.eta",
                      "AnalysisJetsAuxDyn.phi", "AnalysisJetsAuxDyn.m"),
        energy_unit="MeV",
        weight_branch="EventInfoAuxDyn.mcEventWeights",
        weight_index=0,
        event_info_prefix="EventInfoAuxDyn.",
    ),
    "physlite_rntuple": EventLayout(
        name="physlite_rntuple",
        tree="EventData",
        jet_branches=("AnalysisJetsAuxDyn:pt", "AnalysisJetsAuxDyn:eta",
                      "AnalysisJetsAuxDyn:phi", "AnalysisJetsAuxDyn:m"),
        energy_unit="MeV",
        weight_branch="EventInfoAuxDyn:mcEventWeights",
        weight_index=0,
        event_info_prefix="EventInfoAuxDyn:",
        rntuple=True,
    ),
    "nanoaod": EventLayout(
        name="nanoaod",
        tree="Events",
        jet_branches=("Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass"),
        weight_branch="genWeight",
    ),
    "flat": EventLayout(
        name="flat",
        tree="events",
        jet_branches=("jet_pt", "jet_eta", "jet_phi", "jet_m"),
        weight_branch="weight",
    ),
    "flat_cartesian": EventLayout(
        name="flat_cartesian",
        tree="events",
        jet_branches=("Jet_Px", "Jet_Py", "Jet_Pz", "Jet_E"),
        kinematics="pxpypze",
        weight_branch="EventWeight",
    ),
}


@dataclass(frozen=True)
class InputConfig:
    """User overrides of the event layout (the ``input`` section of the selection config).

    Every ``None`` keeps the value of the detected or named layout.

    Attributes:
        layout: A name from :data:`LAYOUTS`, or ``None`` to detect it per file.
        tree: Tree (or RNTuple) name.
        jet_branches: Four jet branch names, in the order given by ``kinematics``.
        kinematics: ``"ptetaphim"`` or ``"pxpypze"``.
        energy_unit: ``"MeV"`` or ``"GeV"``.
        weight_branch: Event weight branch.
        weight_index: Index into a vector weight branch (``None``: scalar branch or layout
            default).
        unweighted: Use unit weights (ignore any weight branch).
    """

    layout: str | None = None
    tree: str | None = None
    jet_branches: tuple[str, str, str, str] | None = None
    kinematics: Kinematics | None = None
    energy_unit: EnergyUnit | None = None
    weight_branch: str | None = None
    weight_index: int | None = None
    unweighted: bool = False

    def __post_init__(self) -> None:
        if self.layout is not None and self.layout not in LAYOUTS:
            msg = (
                f"unknown event layout {self.layout!r}; valid choices: auto, "
                f"{', '.join(LAYOUTS)}"
            )
            raise ConfigError(msg)


@dataclass(frozen=True)
class EventChunk:
    """Events ``[entry_start, entry_stop)`` of one file as plain arrays.

    Attributes:
        path: The file.
        entry_start: First entry (inclusive).
        entry_stop: Last entry (exclusive).
        offsets: int64 jet offsets, ``len == n_events + 1``, starting at 0.
        jets: The four jet component arrays (stored precision, stored unit), indexed by
            ``offsets``, in the order of :attr:`EventLayout.jet_branches`.
        weights: float64 per-event weight (product of the event weight and extra factors).
    """

    path: str
    entry_start: int
    entry_stop: int
    offsets: Int64Array
    jets: tuple[FloatArray, FloatArray, FloatArray, FloatArray]
    weights: Float64Array

    @property
    def n_events(self) -> int:
        """Number of events in the chunk."""
        return self.entry_stop - self.entry_start


@dataclass(frozen=True)
class Sample:
    """A named set of input files, optionally with its dataset name.

    Attributes:
        name: Sample name.
        files: The input files (globs already expanded).
        dataset: ATLAS dataset name (or any identifier) recorded in the output metadata.
    """

    name: str
    files: tuple[Path, ...]
    dataset: str | None = None


# --------------------------------------------------------------------------- opening files

_OPEN_CACHE_SIZE = 8
_open_cache: OrderedDict[tuple[int, str, int, int], Any] = OrderedDict()


def _open_cached(path: str | os.PathLike[str]) -> Any:
    """Open ``path`` once per process (bounded LRU); errors as in :func:`open_root`."""
    p = Path(path)
    try:
        st = p.stat()
        key = (os.getpid(), str(p.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        return open_root(p)  # raises the RootFileError naming the file
    cached = _open_cache.get(key)
    if cached is not None:
        _open_cache.move_to_end(key)
        return cached
    f = open_root(p)
    _open_cache[key] = f
    while len(_open_cache) > _OPEN_CACHE_SIZE:
        _, old = _open_cache.popitem(last=False)
        try:
            old.close()
        except Exception:  # closing a stale handle must never fail a run
            log.debug("could not close a cached file handle", exc_info=True)
    return f


def clear_file_cache() -> None:
    """Close every file handle cached by this process."""
    while _open_cache:
        _, f = _open_cache.popitem()
        try:
            f.close()
        except Exception:
            log.debug("could not close a cached file handle", exc_info=True)


def _prime_rntuple_fields(ntuple: Any) -> None:
    """Fill uproot's per-field child lists in one O(N) pass.

    uproot 5.7 computes ``RField.fields`` by scanning every field record for every field,
    which takes seconds for the ~1000 fields of a PHYSLITE ``EventData`` (in every process).
    This builds the same lists (same order, anonymous fields replaced by their children) from a
    parent -> children map. Any surprise in uproot's internals only disables the shortcut.
    """
    try:
        records = ntuple.field_records
        if len(records) < 100:
            return
        all_fields = ntuple.all_fields
        children: dict[int, list[int]] = {}
        for i, rec in enumerate(records):
            parent = int(rec.parent_field_id)
            if parent != i:
                children.setdefault(parent, []).append(i)

        def fill(fid: int) -> list[Any]:
            field = all_fields[fid]
            if field._fields is not None:
                return list(field._fields)
            out: list[Any] = []
            for i in children.get(fid, ()):
                if all_fields[i].is_anonymous:
                    out.extend(fill(i))
                else:
                    out.append(all_fields[i])
            field._fields = out
            return out

        for fid in range(len(all_fields)):
            fill(fid)
    except Exception:  # an optimisation only; uproot computes the lists itself otherwise
        log.debug("could not prime the RNTuple field lists", exc_info=True)


def _event_tree(path: str | os.PathLike[str], name: str) -> Any:
    """The TTree or RNTuple ``name`` of ``path`` (RNTuple field lists primed once)."""
    tree = _open_cached(path)[name]
    if getattr(tree, "_recastkit_primed", False) is False and hasattr(tree, "field_records"):
        _prime_rntuple_fields(tree)
        tree._recastkit_primed = True
    return tree


def _classnames(f: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, classname in f.classnames().items():
        out.setdefault(key.split(";")[0], classname)
    return out


def _event_trees(f: Any) -> dict[str, str]:
    return {k: c for k, c in _classnames(f).items() if c == "TTree" or c.endswith("RNTuple")}


def _tree_keys(tree: Any) -> list[str]:
    return [str(k) for k in tree.keys()]  # noqa: SIM118 - uproot trees are not dicts


# --------------------------------------------------------------------------- layouts


def detect_layout(path: str | os.PathLike[str]) -> EventLayout:
    """Detect the event layout of a file from its trees and branches.

    Order: ``CollectionTree`` TTree -> ``physlite``; ``EventData`` RNTuple ->
    ``physlite_rntuple``; ``Events`` with ``Jet_pt`` -> ``nanoaod``; the first tree (by name)
    with ``jet_pt/jet_eta/jet_phi/jet_m`` -> ``flat``; with ``Jet_Px/Py/Pz/E`` ->
    ``flat_cartesian``.

    Raises:
        RootFileError: The file cannot be opened.
        MissingObjectError: No layout matches (the message lists the trees found and the
            valid layout names).
    """
    f = _open_cached(path)
    trees = _event_trees(f)
    if trees.get("CollectionTree") == "TTree":
        return BUILTIN_LAYOUTS["physlite"]
    if trees.get("EventData", "").endswith("RNTuple"):
        return BUILTIN_LAYOUTS["physlite_rntuple"]
    if trees.get("Events") == "TTree" and "Jet_pt" in _tree_keys(f["Events"]):
        return BUILTIN_LAYOUTS["nanoaod"]
    for name in sorted(trees):
        if trees[name] != "TTree":
            continue
        keys = set(_tree_keys(f[name]))
        for layout_name in ("flat", "flat_cartesian"):
            base = BUILTIN_LAYOUTS[layout_name]
            if set(base.jet_branches) <= keys:
                return replace(base, tree=name)
    msg = (
        f"{path}: cannot detect the event layout (trees found: "
        f"{', '.join(sorted(trees)) or 'none'}); name one with --layout or input.layout "
        f"(valid choices: {', '.join(LAYOUTS)}) and set input.tree / input.jet_branches "
        "for other flat ntuples"
    )
    raise MissingObjectError(msg)


def resolve_layout(path: str | os.PathLike[str], config: InputConfig | None = None,
                   extra_weights: Sequence[str] = ()) -> EventLayout:
    """The layout of ``path``: detected (or named in ``config``), then overridden, then checked.

    Args:
        path: The input file.
        config: Overrides; ``None`` detects everything.
        extra_weights: Extra per-event weight factors by branch name; a short name is also
            looked up with the layout's event-info prefix (``PileupWeight_NOSYS`` ->
            ``EventInfoAuxDyn.PileupWeight_NOSYS``).

    Returns:
        A layout whose tree and branches all exist in the file.

    Raises:
        RootFileError: The file cannot be opened.
        MissingObjectError: The tree or a branch is missing (close matches listed).
    """
    cfg = config or InputConfig()
    if cfg.layout is not None:
        base = BUILTIN_LAYOUTS[cfg.layout]
    elif cfg.tree is not None and cfg.jet_branches is not None:
        kin = cfg.kinematics or "ptetaphim"
        base = BUILTIN_LAYOUTS["flat_cartesian" if kin == "pxpypze" else "flat"]
    else:
        base = detect_layout(path)
    layout = replace(
        base,
        tree=cfg.tree or base.tree,
        jet_branches=cfg.jet_branches or base.jet_branches,
        kinematics=cfg.kinematics or base.kinematics,
        energy_unit=cfg.energy_unit or base.energy_unit,
        weight_branch=None if cfg.unweighted else (cfg.weight_branch or base.weight_branch),
        weight_index=None if cfg.unweighted else (
            cfg.weight_index if cfg.weight_index is not None else (
                base.weight_index if cfg.weight_branch is None else None)),
    )
    f = _open_cached(path)
    trees = _event_trees(f)
    if layout.tree not in trees:
        raise missing_object_error(path, "tree", layout.tree, trees)
    keys = _tree_keys(_event_tree(path, layout.tree))
    keyset = set(keys)
    for branch in layout.branches:
        if branch not in keyset:
            raise missing_object_error(path, f"branch in tree {layout.tree!r}", branch, keys)
    return replace(layout, extra_weight_branches=_extra_weight_branches(
        path, layout, extra_weights, keys))


def _extra_weight_branches(path: str | os.PathLike[str], layout: EventLayout,
                           names: Sequence[str], keys: Sequence[str]) -> tuple[str, ...]:
    """The tree's branches of the extra event weights: the name itself, or the name after the
    layout's event-info prefix (PHYSLITE ``EventInfoAuxDyn.``).

    Raises:
        MissingObjectError: A weight branch is in neither form (with the closest names).
    """
    keyset = set(keys)
    prefix = layout.event_info_prefix
    extras = []
    for name in names:
        if name in keyset:
            extras.append(name)
        elif prefix and prefix + name in keyset:
            extras.append(prefix + name)
        else:
            raise missing_object_error(
                path, f"extra weight branch in tree {layout.tree!r}", name, list(keys))
    return tuple(extras)


# --------------------------------------------------------------------------- entries


def count_entries(path: str | os.PathLike[str], layout: EventLayout) -> int:
    """Number of events in the layout's tree of ``path``."""
    return int(_event_tree(path, layout.tree).num_entries)


class BranchSet(Protocol):
    """What :func:`cluster_boundaries` needs of a layout."""

    @property
    def tree(self) -> str:
        """Tree or RNTuple name."""

    @property
    def rntuple(self) -> bool:
        """Whether :attr:`tree` is an RNTuple."""

    @property
    def branches(self) -> tuple[str, ...]:
        """Branches read."""


def cluster_boundaries(path: str | os.PathLike[str], layout: BranchSet) -> list[int]:
    """Entry numbers where every branch read starts a new basket (TTree) or cluster (RNTuple).

    Work units cut at these boundaries never decompress a basket twice. Always contains
    ``0`` and the number of entries.
    """
    tree = _event_tree(path, layout.tree)
    n = int(tree.num_entries)
    points: set[int] = {0, n}
    try:
        if layout.rntuple:
            for summary in tree.cluster_summaries:
                points.add(int(summary.num_first_entry))
        else:
            points.update(int(x) for x in tree.common_entry_offsets(filter_name=layout.branches))
    except Exception:  # boundaries are an optimisation only
        log.debug("%s: no basket boundaries, splitting evenly", path, exc_info=True)
    return sorted(p for p in points if 0 <= p <= n)


# --------------------------------------------------------------------------- reading


def _jagged_parts(array: Any, path: str, branch: str) -> tuple[Int64Array, FloatArray]:
    layout = ak.to_layout(array)
    if not isinstance(layout, ak.contents.ListOffsetArray):
        layout = ak.to_layout(ak.to_packed(array))
    if not isinstance(layout, ak.contents.ListOffsetArray) or not isinstance(
        layout.content, ak.contents.NumpyArray
    ):
        msg = f"{path}: branch {branch!r} is not a jagged array of numbers (type {array.type})"
        raise SelectionError(msg)
    offsets = np.asarray(layout.offsets.data).astype(np.int64, copy=False)
    content = np.asarray(layout.content.data)
    if offsets[0] != 0:
        content = content[offsets[0]:offsets[-1]]
        offsets = offsets - offsets[0]
    return offsets, content


#: A branch's values for a chunk: one array (one value per event) or (offsets, content).
BranchValues = FloatArray | tuple[Int64Array, FloatArray]


def _event_weights(values: Callable[[str], BranchValues], n: int, layout: EventLayout,
                   path: str, start: int) -> Float64Array:
    """The per-event weights of ``n`` events from the branch values given by ``values``."""
    if layout.weight_branch is None:
        weights: Float64Array = np.ones(n, dtype=np.float64)
    elif layout.weight_index is None:
        scalar = values(layout.weight_branch)
        if isinstance(scalar, tuple):
            scalar = np.empty((0, 0))
        weights = np.asarray(scalar, dtype=np.float64)
        if weights.ndim != 1:
            msg = (
                f"{path}: weight branch {layout.weight_branch!r} is not one number per event; "
                "set input.weight_index to pick one element"
            )
            raise SelectionError(msg)
    else:
        jagged = values(layout.weight_branch)
        if not isinstance(jagged, tuple):
            msg = (f"{path}: weight branch {layout.weight_branch!r} is one number per event; "
                   "input.weight_index applies to vector branches only")
            raise SelectionError(msg)
        offsets, content = jagged
        counts = np.diff(offsets)
        short = np.flatnonzero(counts <= layout.weight_index)
        if short.size:
            msg = (
                f"{path}: entry {start + int(short[0])} has {int(counts[short[0]])} values in "
                f"{layout.weight_branch!r}, cannot take index {layout.weight_index}"
            )
            raise SelectionError(msg)
        weights = content[offsets[:-1] + layout.weight_index].astype(np.float64)
    for branch in layout.extra_weight_branches:
        extra = values(branch)
        factor = np.asarray(np.empty((0, 0)) if isinstance(extra, tuple) else extra,
                            dtype=np.float64)
        if factor.ndim != 1:
            msg = f"{path}: extra weight branch {branch!r} is not one number per event"
            raise SelectionError(msg)
        weights = weights * factor
    return weights


def _make_chunk(parts: Sequence[tuple[Int64Array, FloatArray]],
                values: Callable[[str], BranchValues], layout: EventLayout, path: str,
                *, start: int, stop: int) -> EventChunk:
    offsets = parts[0][0]
    for (other, _), branch in zip(parts[1:], layout.jet_branches[1:], strict=True):
        if other is not offsets and not np.array_equal(other, offsets):
            msg = (
                f"{path}: jet branches {layout.jet_branches[0]!r} and {branch!r} have "
                f"different numbers of jets in entries {start}-{stop}"
            )
            raise SelectionError(msg)
    jets = (parts[0][1], parts[1][1], parts[2][1], parts[3][1])
    weights = _event_weights(values, stop - start, layout, path, start)
    return EventChunk(path, start, stop, offsets, jets, weights)


def _to_chunk(batch: Any, layout: EventLayout, path: str, start: int) -> EventChunk:
    """An :class:`EventChunk` from an awkward record array read by uproot."""
    def values(branch: str) -> BranchValues:
        array = batch[branch]
        if array.ndim == 1:
            return np.asarray(array)
        return _jagged_parts(array, path, branch)

    parts = [_jagged_parts(batch[b], path, b) for b in layout.jet_branches]
    return _make_chunk(parts, values, layout, path, start=start, stop=start + len(batch))


def _column_chunk(columns: dict[str, Column], layout: EventLayout, path: str, start: int,
                  stop: int) -> EventChunk:
    """An :class:`EventChunk` from the columns of :class:`~recastkit.io.baskets.ChunkReader`."""
    def values(branch: str) -> BranchValues:
        col = columns[branch]
        return col.content if col.offsets is None else (col.offsets, col.content)

    parts = []
    for b in layout.jet_branches:
        col = columns[b]
        if col.offsets is None:
            msg = f"{path}: branch {b!r} is not a jagged array of numbers (one value per event)"
            raise SelectionError(msg)
        parts.append((col.offsets, col.content))
    return _make_chunk(parts, values, layout, path, start=start, stop=stop)


def _basket_specs(path: str, tree: Any, layout: BranchSet,
                  expect_jagged: Callable[[str], bool | None] | None = None
                  ) -> list[BranchBaskets] | None:
    """The basket maps of the layout's branches for the fast reader, or ``None`` to read with
    uproot (RNTuple, a remote file, or a branch :mod:`recastkit.io.baskets` does not handle).

    ``expect_jagged(branch)`` gives whether a branch must be jagged (``None``: either); a
    mismatch also means uproot (which reports it). Cached on the tree object.
    """
    if layout.rntuple or not os.path.isfile(path):
        return None
    cache: dict[tuple[object, ...], list[BranchBaskets] | None] = getattr(
        tree, "_recastkit_baskets", None) or {}
    key = layout.branches
    expected = None if expect_jagged is None else tuple(expect_jagged(b) for b in key)
    ckey = (key, expected)
    if ckey not in cache:
        try:
            specs = [branch_baskets(tree, b) for b in key]
            if expected is not None and any(
                    want is not None and s.jagged != want
                    for s, want in zip(specs, expected, strict=True)):
                raise Unsupported("a branch is not jagged where expected, or is")
            cache[ckey] = specs
        except Exception as exc:  # Unsupported, or any surprise: uproot reads (and reports)
            log.debug("%s: reading with uproot: %s", path, exc)
            cache[ckey] = None
        tree._recastkit_baskets = cache
    return cache[ckey]


def _chunk_reader(path: str, specs: Sequence[BranchBaskets], opts: ReadOptions) -> ChunkReader:
    """A :class:`~recastkit.io.baskets.ChunkReader` with the decoder and threads of ``opts``."""
    return ChunkReader(path, specs,
                       decoding.zlib_decompressor(decoding.resolve_decoder(opts.decoder)),
                       decoding.thread_pool(opts.threads, "baskets")
                       if opts.threads > 1 else None)


def iter_chunks(  # noqa: PLR0917
        path: str | os.PathLike[str], layout: EventLayout, entry_start: int,
                entry_stop: int, step_size: int,
                options: ReadOptions | None = None) -> Iterator[EventChunk]:
    """Read events ``[entry_start, entry_stop)`` of ``path`` in chunks of ``step_size``.

    TTree branches of plain numbers in a local file are read by :mod:`recastkit.io.baskets`
    (baskets decoded one chunk ahead in ``options.threads`` threads); anything else, or the
    rest of the range after an unusual basket, by uproot. Both give identical chunks. Memory
    is bounded by a few chunks of the branches in :attr:`EventLayout.branches`.
    ``options`` chooses the zlib decoder and the decompression threads
    (:mod:`recastkit.io.decoding`; default: the fastest decoder, one thread per core).

    Raises:
        RootFileError: The file is truncated or corrupt (names the file and entry range).
        SelectionError: Inconsistent jet branches or an unusable weight branch.
    """
    opts = options or ReadOptions()
    spath = str(path)
    tree = _event_tree(path, layout.tree)
    start = entry_start
    try:
        jets = set(layout.jet_branches)
        specs = _basket_specs(spath, tree, layout, lambda b: b in jets or (
            b == layout.weight_branch and layout.weight_index is not None))
        if specs is not None:
            reader = _chunk_reader(spath, specs, opts)
            try:
                for a, b, columns in reader.chunks(entry_start, entry_stop, int(step_size)):
                    yield _column_chunk(columns, layout, spath, a, b)
                    start = b
                return
            except Unsupported as exc:  # an unusual basket: uproot reads the rest
                log.debug("%s: reading entries %d-%d with uproot: %s", spath, start,
                          entry_stop, exc)
        decoding.apply(opts)
        kwargs = {} if layout.rntuple else decoding.executors(opts)
        iterator = tree.iterate(list(layout.branches), step_size=int(step_size),
                                entry_start=start, entry_stop=entry_stop, library="ak",
                                **kwargs)
        for batch in iterator:
            n = len(batch)
            yield _to_chunk(batch, layout, spath, start)
            start += n
    except (SelectionError, MissingObjectError, ConfigError):
        raise
    except Exception as exc:  # uproot raises many types on truncated/corrupt baskets
        msg = (
            f"{spath}: cannot read entries {start}-{entry_stop} of {layout.tree!r}; the file "
            f"may be truncated or corrupt ({type(exc).__name__}: {exc})"
        )
        raise RootFileError(msg) from None


# --------------------------------------------------------------------------- inputs


def expand_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Expand globs and deduplicate; plain paths are kept even when missing (reported later).

    Raises:
        RootFileError: A glob pattern matches no file.
    """
    out: dict[str, Path] = {}
    for item in inputs:
        text = os.fspath(item)
        if glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise RootFileError(f"{text}: no file matches this pattern")
            for m in matches:
                out.setdefault(str(Path(m)), Path(m))
        else:
            out.setdefault(str(Path(text)), Path(text))
    return [out[k] for k in sorted(out)]


def is_sample_list(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a YAML sample list (by extension ``.yml``/``.yaml``)."""
    return Path(path).suffix.lower() in {".yml", ".yaml"}


def read_sample_list(path: str | os.PathLike[str]) -> list[Sample]:
    """Read a YAML sample list.

    Format: a mapping ``sample name -> {files: [paths or globs], dataset: name}`` (optionally
    under a top-level ``samples`` key); ``files`` may also be the bare list. Relative paths
    are relative to the YAML file.

    Raises:
        ConfigError: Unreadable YAML or a malformed entry (names the file and sample).
        RootFileError: A glob that matches nothing.
    """
    p = Path(path)
    text = read_text(p, "sample list", ConfigError)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {' '.join(str(exc).split())}") from None
    if isinstance(data, dict) and set(data) == {"samples"}:
        data = data["samples"]
    if not isinstance(data, dict) or not data:
        msg = f"{p}: a sample list must map sample names to {{files: [...], dataset: ...}}"
        raise ConfigError(msg)
    samples = []
    for name, entry in data.items():
        spec = {"files": entry} if isinstance(entry, list) else entry
        if not isinstance(spec, dict) or not set(spec) <= {"files", "dataset"}:
            msg = (
                f"{p}: sample {name!r} must be a list of files or a mapping with the keys "
                f"'files' and 'dataset', got {entry!r}"
            )
            raise ConfigError(msg)
        files = spec.get("files")
        if isinstance(files, str):
            files = [files]
        if not isinstance(files, list) or not files or not all(isinstance(x, str) for x in files):
            msg = f"{p}: sample {name!r} field 'files' must be a non-empty list of paths"
            raise ConfigError(msg)
        dataset = spec.get("dataset")
        if dataset is not None and not isinstance(dataset, str):
            msg = f"{p}: sample {name!r} field 'dataset' must be a string, got {dataset!r}"
            raise ConfigError(msg)
        resolved = [f if os.path.isabs(f) else str(p.parent / f) for f in files]
        samples.append(Sample(str(name), tuple(expand_inputs(resolved)), dataset))
    return samples

