"""Sums of generator weights (Σw) of Monte Carlo samples, read from bookkeeping metadata.

A sample is normalized with ``σ × ε × k × L / Σw``, where Σw is the sum of the generator
weights of ALL events that were generated, not only of the events left in a skimmed
derivation. This module finds that number in a file, from the first available of:

``cutbookkeepers`` (ATLAS xAOD, kind ``"cutbookkeepers"``)
    The ``MetaData`` TTree. Only its latest cycle is read (``MetaData;1`` and ``MetaData;2``
    are copies written by successive output streams; they are never added). Inside it:

    * Nominal weight (index 0): in the ``CutBookkeepersAux.`` container, the entry named
      ``AllExecutedEvents`` whose ``inputStream`` is ``StreamAOD``, with the highest
      ``cycle`` among those. ``StreamAOD`` marks the bookkeeper that counted the events
      entering the derivation job, i.e. the full AOD; entries of higher cycles with another
      stream (``StreamDAOD_PHYSLITE`` in a re-derived file) carry the same events again and
      would double count. If no ``StreamAOD`` entry exists, the ``AllExecutedEvents`` entry
      with the LOWEST cycle (the one closest to the input) is used; the source string says
      so and a warning is logged.
    * Variation weight N > 0: the entry ``AllExecutedEvents_NonNominalMCWeight_<N>`` of
      ``CutBookkeepersAux.`` (releases up to 21.2), or the ``AllExecutedEvents`` entry of
      the container ``CutBookkeepers_weight_<N>Aux.`` (newer releases), with the same
      stream and cycle rule. Its name comes from ``TruthMetaDataAux.weightNames[N]``
      (spaces stripped) when present.
    * The ``IncompleteCutBookkeepersAux.`` container (bookkeepers of jobs that did not
      finish, or of upstream production steps) is never used.
    * ``MetaData`` has one entry per input file that was merged into this file; each entry
      holds that input's own bookkeepers. The selected bookkeeper is therefore chosen in
      every entry separately and the values are summed over entries (the source string
      says "summed over N MetaData entries"). Two selected bookkeepers with the same name,
      stream and cycle inside ONE entry (unmerged bookkeepers of disjoint inputs) are also
      summed, with a warning.

``runs-tree`` (CMS NanoAOD, kind ``"runs-tree"``)
    The ``Runs`` TTree: Σ ``genEventSumw_`` (or ``genEventSumw`` in newer NanoAOD) over
    all entries, with ``genEventSumw2(_)`` and ``genEventCount(_)``.

``sumweights-tree`` (AnalysisTop, kind ``"sumweights-tree"``)
    The ``sumWeights`` TTree: Σ ``totalEventsWeighted`` over entries (variation N > 0:
    Σ ``totalEventsWeighted_mc_generator_weights[N]``, name from
    ``names_mc_generator_weights``), ``totalEventsWeightedSquared`` when present and
    ``totalEvents``.

``cutflow`` (kind ``"cutflow"``, only on request)
    The content of one labelled bin (default ``'Initial'``) of a cutflow histogram.

``events`` (kind ``"events"``, only on request, never chosen automatically)
    The float64 sum of the per-event generator weights stored in the file:
    ``CollectionTree/EventInfoAuxDyn.mcEventWeights[:, N]`` (PHYSLITE TTree),
    ``EventData/EventInfoAuxDyn:mcEventWeights[:, N]`` (PHYSLITE RNTuple),
    ``Events/genWeight`` (NanoAOD), or a named weight branch of a flat ntuple. For a skimmed
    derivation this is the sum over the SURVIVING events only, so the sample is then
    over-normalized by the inverse skim efficiency; a warning says so.

Method ``"auto"`` tries ``cutbookkeepers``, then ``runs-tree``, then ``sumweights-tree``.
Each table may be a TTree or an RNTuple with the same branch (field) names.

:func:`sum_of_weights_files` adds the per-file values of one sample in float64 (they must all
be of one kind) and, with ``compare_events=True``, compares them with the stored event
weights: the ratios are the derivation's skim efficiency (events and Σw).
Every failure raises :class:`~recastkit.exceptions.BookkeepingError` naming the file and the
alternatives (``--from-events`` with its caveat, an explicit ``--sumw``, a cutflow histogram).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from recastkit.exceptions import BookkeepingError
from recastkit.io.root import key_names, missing_object_error, open_root

log = logging.getLogger(__name__)

#: Accepted values of the ``method`` argument.
METHODS: tuple[str, ...] = (
    "auto", "cutbookkeepers", "runs-tree", "sumweights-tree", "cutflow", "events",
)
#: The ``kind`` of every :class:`SumOfWeights`.
KINDS: tuple[str, ...] = (
    "cutbookkeepers", "runs-tree", "sumweights-tree", "cutflow", "events", "user",
)

_METADATA_TREE = "MetaData"
_CBK = "CutBookkeepersAux."
_ALL_EXECUTED = "AllExecutedEvents"
_AOD_STREAM = "StreamAOD"
_CBK_FIELDS = ("name", "cycle", "inputStream", "nAcceptedEvents", "sumOfEventWeights",
               "sumOfEventWeightsSquared")

OVERNORMALIZATION_WARNING = (
    "summing the event weights stored in the file: for a skimmed derivation this counts only "
    "the events that survived the skim, so the sample is over-normalized by 1/(skim "
    "efficiency); prefer the bookkeeping sum of weights (CutBookkeepers) when available"
)


@dataclass(frozen=True)
class SumOfWeights:
    """A sum of generator weights and where it came from.

    Attributes:
        sum_of_weights: Σw (float64).
        sum_of_weights_squared: Σw², or None when the source does not store it.
        n_events: Number of (unweighted) events counted, or None when unknown.
        source: Human-readable origin, e.g.
            ``"CutBookkeepers AllExecutedEvents/StreamAOD/cycle 5"``.
        path: The file it was read from; None for totals over files and user values.
        weight_index: Index of the generator weight (0 = nominal).
        weight_name: Name of that weight when the file records it.
        kind: One of :data:`KINDS`.
        dsid: Dataset (MC channel) number when the file records it.
        file_uuid: The ROOT file's UUID (identical for byte copies of one file), if read.
    """

    sum_of_weights: float
    sum_of_weights_squared: float | None
    n_events: int | None
    source: str
    path: str | None
    weight_index: int = 0
    weight_name: str | None = None
    kind: str = "cutbookkeepers"
    dsid: int | None = None
    file_uuid: str | None = None

    @property
    def n_effective(self) -> float | None:
        """Kish effective number of events (Σw)²/Σw², or None without Σw²."""
        if self.sum_of_weights_squared is None or self.sum_of_weights_squared <= 0:
            return None
        return self.sum_of_weights**2 / self.sum_of_weights_squared


@dataclass(frozen=True)
class SkimInfo:
    """How much of the original sample a set of (derivation) files still holds.

    Attributes:
        n_events_in_files: Events stored in the files.
        sumw_in_files: float64 Σ of the stored events' generator weights.
        event_efficiency: ``n_events_in_files / n_events`` of the bookkeeping (None if unknown).
        weight_efficiency: ``sumw_in_files / sum_of_weights`` of the bookkeeping.
    """

    n_events_in_files: int
    sumw_in_files: float
    event_efficiency: float | None
    weight_efficiency: float | None


@dataclass(frozen=True)
class SumwReport:
    """Per-file sums of weights, their total and (on request) the skim efficiency."""

    files: tuple[SumOfWeights, ...]
    total: SumOfWeights
    skim: SkimInfo | None


# --------------------------------------------------------------------------- helpers


def _alternatives(f: Any = None) -> str:
    """The alternatives offered in every "no sum of weights" message."""
    text = (
        "alternatives: sum the event weights with --from-events (method 'events'; this "
        "over-normalizes a skimmed derivation, whose file holds only the events that passed "
        "the skim), give the value explicitly with --sumw X, or read a cutflow histogram "
        "with --cutflow NAME [--cutflow-bin LABEL]"
    )
    if f is not None:
        hists = _cutflow_candidates(f)
        if hists:
            text += f" (cutflow-like histograms in this file: {', '.join(hists)})"
    return text


def _cutflow_candidates(f: Any) -> list[str]:
    try:
        return [n for n in key_names(f, "TH1") if "cutflow" in n.lower()]
    except Exception:  # pragma: no cover - a directory that cannot list its keys
        return []


def _check_common(path: Path, weight_index: int, method: str) -> None:
    if method not in METHODS:
        msg = (f"{path}: unknown sum-of-weights method {method!r}; "
               f"choose one of {', '.join(METHODS)}")
        raise BookkeepingError(msg)
    if isinstance(weight_index, bool) or not isinstance(weight_index, int) or weight_index < 0:
        msg = f"{path}: weight index must be an integer >= 0, got {weight_index!r}"
        raise BookkeepingError(msg)


def _keys(obj: Any) -> set[str]:
    """Branch (TTree, recursive) or top-level field (RNTuple) names of ``obj``."""
    if getattr(obj, "classname", "") == "ROOT::RNTuple":
        names: list[str] = obj.keys(recursive=False)  # the recursive listing is slow
    else:
        names = obj.keys()
    return {str(k) for k in names}


def _trees(f: Any) -> list[str]:
    """Names of the TTrees and RNTuples of a file (flat tables are read alike)."""
    return sorted(set(key_names(f, "TTree")) | set(key_names(f, "ROOT::RNTuple")))


def _leaf_names(tree: Any) -> set[str]:
    """Names of every (sub-)branch of a TTree without parent paths, or RNTuple fields."""
    if getattr(tree, "classname", "") == "ROOT::RNTuple":
        return _keys(tree)
    return {str(k) for k in tree.keys(recursive=True, full_paths=False)}


def _f64_sum(values: Any) -> tuple[float, float]:
    """float64 Σx and Σx² of a flat array."""
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.sum()), float(np.square(arr).sum())


# --------------------------------------------------------------------------- CutBookkeepers


@dataclass(frozen=True)
class _Bookkeeper:
    name: str
    cycle: int
    input_stream: str
    n_accepted: int
    sumw: float
    sumw2: float


def _select_bookkeeper(entries: Sequence[_Bookkeeper], name: str
                       ) -> tuple[list[_Bookkeeper], bool]:
    """Apply the selection rule to the bookkeepers of ONE MetaData entry.

    Returns:
        The selected bookkeepers (normally one; several only for unmerged duplicates of the
        same name, stream and cycle) and whether the no-StreamAOD fallback was used.
        An empty list when no bookkeeper has this name.
    """
    named = [e for e in entries if e.name == name]
    if not named:
        return [], False
    aod = [e for e in named if e.input_stream == _AOD_STREAM]
    if aod:
        best = max(e.cycle for e in aod)
        return [e for e in aod if e.cycle == best], False
    lowest = min(e.cycle for e in named)
    chosen = [e for e in named if e.cycle == lowest]
    stream = chosen[0].input_stream
    return [e for e in chosen if e.input_stream == stream], True


def _read_container(path: Path, md: Any, group: str, leaves: set[str], f: Any
                    ) -> list[list[_Bookkeeper]]:
    """Read one CutBookkeeper container: a list (per MetaData entry) of bookkeepers."""
    if group not in leaves and not any(x.startswith(group) for x in leaves):
        raise BookkeepingError(
            f"{path}: MetaData has no {group!r} container; {_alternatives(f)}"
        )
    wanted = [group + x for x in _CBK_FIELDS]
    missing = [w for w in wanted if w not in leaves]
    if missing:
        cause = (
            f"the {group!r} branch of MetaData is stored unsplit (no sub-branches) and "
            "uproot cannot deserialize it"
            if len(missing) == len(wanted)
            else f"the {group!r} container of MetaData lacks {', '.join(missing)}"
        )
        if len(missing) == len(wanted):
            try:
                md[group].array(entry_stop=1)
            except Exception as exc:
                lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
                detail = next((x for x in lines if x.startswith("expected")), lines[0] if lines
                              else "")
                cause += f" ({type(exc).__name__}: {detail})"
        raise BookkeepingError(f"{path}: {cause}; {_alternatives(f)}")
    try:
        arrays = md.arrays(wanted, library="ak")
    except Exception as exc:
        msg = f"{path}: cannot read {group!r} from MetaData ({type(exc).__name__}: {exc}); "
        raise BookkeepingError(msg + _alternatives(f)) from None
    out: list[list[_Bookkeeper]] = []
    for entry in arrays.tolist():
        cols = [entry[w] for w in wanted]
        out.append([
            _Bookkeeper(str(n), int(c), str(s), int(k), float(w), float(w2))
            for n, c, s, k, w, w2 in zip(*cols, strict=True)
        ])
    return out


def _weight_names(md: Any, leaves: set[str]) -> list[str] | None:
    if "TruthMetaDataAux.weightNames" not in leaves:
        return None
    try:
        arr = md["TruthMetaDataAux./TruthMetaDataAux.weightNames"].array(entry_stop=1)
        names = arr[0][0].tolist()
    except Exception as exc:
        log.debug("cannot read TruthMetaDataAux.weightNames: %s", exc)
        return None
    return [str(n).strip() for n in names]


def _metadata_dsid(md: Any, leaves: set[str]) -> int | None:
    if "TruthMetaDataAux.mcChannelNumber" in leaves:
        try:
            arr = md["TruthMetaDataAux./TruthMetaDataAux.mcChannelNumber"].array(entry_stop=1)
            return int(arr[0][0])
        except Exception as exc:
            log.debug("cannot read TruthMetaDataAux.mcChannelNumber: %s", exc)
    if "FileMetaDataAuxDyn.mcProcID" in leaves:
        try:
            value = float(md["FileMetaDataAuxDyn.mcProcID"].array(entry_stop=1, library="np")[0])
            if value > 0:
                return int(value)
        except Exception as exc:
            log.debug("cannot read FileMetaDataAuxDyn.mcProcID: %s", exc)
    return None


def _count_weights(leaves: set[str], nominal: list[list[_Bookkeeper]],
                   names: list[str] | None) -> int:
    n_containers = sum(
        1 for x in leaves if x.startswith("CutBookkeepers_weight_") and x.endswith("Aux.")
    )
    prefix = _ALL_EXECUTED + "_NonNominalMCWeight_"
    n_entries = len({e.name for entry in nominal for e in entry if e.name.startswith(prefix)})
    counted = 1 + max(n_containers, n_entries)
    return max(counted, len(names)) if names else counted


def _from_cutbookkeepers(path: Path, f: Any, weight_index: int) -> SumOfWeights:
    if _METADATA_TREE not in _trees(f):
        raise BookkeepingError(
            f"{path}: no {_METADATA_TREE} tree, so no CutBookkeepers sum of weights; "
            + _alternatives(f)
        )
    md = f[_METADATA_TREE]  # uproot returns the highest cycle: never add the copies
    log.debug("%s: reading %s;%s", path, _METADATA_TREE, getattr(md, "cycle", "?"))
    leaves = _leaf_names(md)
    nominal = _read_container(path, md, _CBK, leaves, f)
    names = _weight_names(md, leaves)

    container, entry_name, label = _CBK, _ALL_EXECUTED, "CutBookkeepers"
    entries = nominal
    if weight_index > 0:
        newer = f"CutBookkeepers_weight_{weight_index}Aux."
        older = f"{_ALL_EXECUTED}_NonNominalMCWeight_{weight_index}"
        if newer in leaves:
            container, label = newer, newer[: -len("Aux.")]
            entries = _read_container(path, md, newer, leaves, f)
        elif any(e.name == older for entry in nominal for e in entry):
            entry_name = older
        else:
            n = _count_weights(leaves, nominal, names)
            msg = (
                f"{path}: weight index {weight_index} not found: the file has {n} MC "
                f"weight(s) (valid indices 0..{n - 1}); looked for the container {newer!r} "
                f"and the {container!r} entry {older!r}"
            )
            raise BookkeepingError(msg)

    selected: list[_Bookkeeper] = []
    fallback = False
    if not entries:
        msg = f"{path}: the {_METADATA_TREE} tree has no entries; {_alternatives(f)}"
        raise BookkeepingError(msg)
    for i, entry in enumerate(entries):
        chosen, used_fallback = _select_bookkeeper(entry, entry_name)
        if not chosen:
            available = sorted({e.name for e in entry})
            err = missing_object_error(path, f"bookkeeper in {container} (MetaData entry {i})",
                                       entry_name, available)
            raise BookkeepingError(f"{err}; {_alternatives(f)}")
        if len(chosen) > 1:
            log.warning(
                "%s: MetaData entry %d has %d unmerged %r bookkeepers with stream %s and "
                "cycle %d; summing them (disjoint inputs)",
                path, i, len(chosen), entry_name, chosen[0].input_stream, chosen[0].cycle,
            )
        fallback = fallback or used_fallback
        selected.extend(chosen)

    streams_cycles = sorted({(e.input_stream, e.cycle) for e in selected})
    where = ", ".join(f"{s}/cycle {c}" for s, c in streams_cycles)
    source = f"{label} {entry_name}/{where}"
    if fallback:
        source += f" (no {_AOD_STREAM} entry: lowest cycle used)"
        log.warning(
            "%s: no %r bookkeeper with inputStream %s; using the lowest-cycle entry (%s), "
            "closest to the input",
            path, entry_name, _AOD_STREAM, where,
        )
    if len(entries) > 1:
        source += f" summed over {len(entries)} MetaData entries"

    weight_name = None
    if names is not None and weight_index < len(names):
        weight_name = names[weight_index] or None
    return SumOfWeights(
        sum_of_weights=math.fsum(e.sumw for e in selected),
        sum_of_weights_squared=math.fsum(e.sumw2 for e in selected),
        n_events=sum(e.n_accepted for e in selected),
        source=source,
        path=str(path),
        weight_index=weight_index,
        weight_name=weight_name,
        kind="cutbookkeepers",
        dsid=_metadata_dsid(md, leaves),
    )


# --------------------------------------------------------------------------- bookkeeping trees


def _first_present(keys: set[str], *names: str) -> str | None:
    return next((n for n in names if n in keys), None)


def _from_runs_tree(path: Path, f: Any, weight_index: int) -> SumOfWeights:
    if "Runs" not in _trees(f):
        raise BookkeepingError(f"{path}: no 'Runs' tree; {_alternatives(f)}")
    runs = f["Runs"]
    keys = set(_keys(runs))
    sumw_b = _first_present(keys, "genEventSumw_", "genEventSumw")
    if sumw_b is None:
        err = missing_object_error(path, "branch in tree 'Runs'", "genEventSumw", keys)
        raise BookkeepingError(f"{err}; {_alternatives(f)}")
    if weight_index != 0:
        msg = (
            f"{path}: the Runs tree stores only the nominal sum of weights (weight index 0); "
            f"got weight index {weight_index} (LHEScaleSumw/LHEPdfSumw are ratios to it)"
        )
        raise BookkeepingError(msg)
    sumw, _ = _f64_sum(runs[sumw_b].array(library="np"))
    sumw2_b = _first_present(keys, "genEventSumw2_", "genEventSumw2")
    count_b = _first_present(keys, "genEventCount_", "genEventCount")
    sumw2 = _f64_sum(runs[sumw2_b].array(library="np"))[0] if sumw2_b else None
    count = int(np.asarray(runs[count_b].array(library="np"), dtype=np.int64).sum()) \
        if count_b else None
    n = runs.num_entries
    return SumOfWeights(
        sum_of_weights=sumw, sum_of_weights_squared=sumw2, n_events=count,
        source=f"Runs tree {sumw_b} ({n} {'entry' if n == 1 else 'entries'})",
        path=str(path), weight_index=0, kind="runs-tree",
    )


def _from_sumweights_tree(path: Path, f: Any, weight_index: int) -> SumOfWeights:
    if "sumWeights" not in _trees(f):
        raise BookkeepingError(f"{path}: no 'sumWeights' tree; {_alternatives(f)}")
    tree = f["sumWeights"]
    keys = set(_keys(tree))
    n = tree.num_entries
    weight_name = None
    if weight_index == 0:
        if "totalEventsWeighted" not in keys:
            err = missing_object_error(path, "branch in tree 'sumWeights'",
                                       "totalEventsWeighted", keys)
            raise BookkeepingError(f"{err}; {_alternatives(f)}")
        branch = "totalEventsWeighted"
        sumw, _ = _f64_sum(tree[branch].array(library="np"))
        sumw2 = (_f64_sum(tree["totalEventsWeightedSquared"].array(library="np"))[0]
                 if "totalEventsWeightedSquared" in keys else None)
    else:
        branch = "totalEventsWeighted_mc_generator_weights"
        if branch not in keys:
            msg = (f"{path}: weight index {weight_index} needs the branch {branch!r} of tree "
                   "'sumWeights', which is absent: the file has 1 MC weight (index 0)")
            raise BookkeepingError(msg)
        per_entry = tree[branch].array(library="ak")
        import awkward as ak

        n_weights = int(ak.min(ak.num(per_entry))) if n else 0
        if weight_index >= n_weights:
            msg = (f"{path}: weight index {weight_index} not found: {branch} holds "
                   f"{n_weights} MC weight(s) (valid indices 0..{n_weights - 1})")
            raise BookkeepingError(msg)
        sumw, _ = _f64_sum(ak.to_numpy(per_entry[:, weight_index]))
        sq = "totalEventsWeightedSquared_mc_generator_weights"
        sumw2 = (_f64_sum(ak.to_numpy(tree[sq].array(library="ak")[:, weight_index]))[0]
                 if sq in keys else None)
        branch = f"{branch}[{weight_index}]"
    if "names_mc_generator_weights" in keys and n:
        try:
            names = tree["names_mc_generator_weights"].array(entry_stop=1, library="ak")[0]
            if weight_index < len(names):
                weight_name = str(names[weight_index]).strip() or None
        except Exception as exc:
            log.debug("cannot read names_mc_generator_weights: %s", exc)
    count = (int(np.asarray(tree["totalEvents"].array(library="np"), dtype=np.int64).sum())
             if "totalEvents" in keys else None)
    dsid = None
    if "dsid" in keys and n:
        dsid = int(tree["dsid"].array(entry_stop=1, library="np")[0])
    return SumOfWeights(
        sum_of_weights=sumw, sum_of_weights_squared=sumw2, n_events=count,
        source=f"sumWeights tree {branch} ({n} {'entry' if n == 1 else 'entries'})",
        path=str(path), weight_index=weight_index, weight_name=weight_name,
        kind="sumweights-tree", dsid=dsid,
    )


# --------------------------------------------------------------------------- cutflow


def _from_cutflow(path: Path, f: Any, cutflow: str | None, cutflow_bin: str,
                  weight_index: int) -> SumOfWeights:
    hists = key_names(f, "TH1")
    if cutflow is None:
        choices = _cutflow_candidates(f) or hists
        msg = (f"{path}: method 'cutflow' needs a histogram name (--cutflow NAME); "
               f"histograms in the file: {', '.join(choices) if choices else 'none'}")
        raise BookkeepingError(msg)
    if cutflow not in hists:
        raise missing_object_error(path, "histogram", cutflow, hists)
    if weight_index != 0:
        msg = (f"{path}: a cutflow histogram holds one weight only (index 0); "
               f"got weight index {weight_index}")
        raise BookkeepingError(msg)
    h = f[cutflow]
    labels = [str(x) for x in (h.axis().labels() or [])]
    if cutflow_bin not in labels:
        raise missing_object_error(path, f"bin label in histogram {cutflow!r}", cutflow_bin,
                                   labels)
    i = labels.index(cutflow_bin)
    value = float(h.values()[i])
    sumw2 = None
    if len(h.member("fSumw2")) > 0:  # variances stored only for weighted fills
        sumw2 = float(h.variances()[i])
    return SumOfWeights(
        sum_of_weights=value, sum_of_weights_squared=sumw2, n_events=None,
        source=f"cutflow {cutflow}[{cutflow_bin}]", path=str(path), weight_index=0,
        kind="cutflow",
    )


# --------------------------------------------------------------------------- events


#: Events read per chunk when summing event weights (~100 MB for 217 float32 weights).
EVENT_CHUNK_ENTRIES = 100_000


def _column(path: Path, col: Any, field: str, weight_index: int) -> tuple[Any, bool]:
    """The values of weight ``weight_index`` in one chunk, and whether the field is jagged."""
    import awkward as ak

    if col.ndim == 1:
        if weight_index != 0:
            msg = (f"{path}: {field} holds one weight per event (index 0); "
                   f"got weight index {weight_index}")
            raise BookkeepingError(msg)
        return ak.to_numpy(col), False
    if len(col) == 0:
        return np.zeros(0), True
    n_weights = int(ak.min(ak.num(col)))
    if weight_index >= n_weights:
        msg = (f"{path}: weight index {weight_index} not found: {field} holds {n_weights} MC "
               f"weight(s) per event (valid indices 0..{n_weights - 1})")
        raise BookkeepingError(msg)
    return ak.to_numpy(col[:, weight_index]), True


def _locate_event_weights(path: Path, f: Any, weight_branch: str | None) -> tuple[Any, str, str]:
    """Return (tree or RNTuple, field name, description) of the per-event weights."""
    trees = _trees(f)
    if weight_branch is not None:
        tree_name, _, branch = weight_branch.rpartition("/")
        if tree_name:
            if tree_name not in trees:
                raise missing_object_error(path, "tree", tree_name, trees)
            candidates = [tree_name]
        else:
            candidates = [t for t in trees if branch in _keys(f[t])]
            if len(candidates) > 1:
                msg = (f"{path}: branch {branch!r} is in several trees "
                       f"({', '.join(candidates)}); give --weight-branch TREE/{branch}")
                raise BookkeepingError(msg)
            if not candidates:
                pool = {b for t in trees for b in _keys(f[t])}
                raise missing_object_error(path, "weight branch", branch, pool)
        tree = f[candidates[0]]
        if branch not in _keys(tree):
            raise missing_object_error(path, f"branch in tree {candidates[0]!r}", branch,
                                       _keys(tree))
        return tree, branch, f"{candidates[0]}/{branch}"
    if "CollectionTree" in trees:
        tree = f["CollectionTree"]
        if "EventInfoAuxDyn.mcEventWeights" in _keys(tree):
            return tree, "EventInfoAuxDyn.mcEventWeights", \
                "CollectionTree/EventInfoAuxDyn.mcEventWeights"
    if "EventData" in trees:
        ntuple = f["EventData"]
        if "EventInfoAuxDyn:mcEventWeights" in _keys(ntuple):
            return ntuple, "EventInfoAuxDyn:mcEventWeights", \
                "EventData/EventInfoAuxDyn:mcEventWeights"
    if "Events" in trees:
        tree = f["Events"]
        if "genWeight" in _keys(tree):
            return tree, "genWeight", "Events/genWeight"
    msg = (
        f"{path}: no per-event generator weights found (looked for "
        "CollectionTree/EventInfoAuxDyn.mcEventWeights, "
        "EventData/EventInfoAuxDyn:mcEventWeights, Events/genWeight); trees in the file: "
        f"{', '.join(trees) if trees else 'none'}; name the branch with --weight-branch "
        "TREE/BRANCH"
    )
    raise BookkeepingError(msg)


def _events_dsid(container: Any, field: str) -> int | None:
    sep = ":" if ":" in field else "."
    name = f"EventInfoAuxDyn{sep}mcChannelNumber"
    if name not in _keys(container) or container.num_entries == 0:
        return None
    try:
        return int(container[name].array(entry_stop=1, library="np")[0])
    except Exception as exc:
        log.debug("cannot read %s: %s", name, exc)
        return None


def _from_events(path: Path, f: Any, weight_index: int, weight_branch: str | None,
                 *, warn: bool = True) -> SumOfWeights:
    container, field, where = _locate_event_weights(path, f, weight_branch)
    sums: list[float] = []
    squares: list[float] = []
    n = 0
    jagged = False
    # Field-level reads: RNTuple.iterate/arrays build the form of every field (seconds).
    column = container[field]
    for start in range(0, int(container.num_entries), EVENT_CHUNK_ENTRIES):
        chunk = column.array(entry_start=start, entry_stop=start + EVENT_CHUNK_ENTRIES,
                             library="ak")
        values, jagged = _column(path, chunk, field, weight_index)
        s, s2 = _f64_sum(values)
        sums.append(s)
        squares.append(s2)
        n += len(values)
    if warn:
        log.warning("%s: %s", path, OVERNORMALIZATION_WARNING)
    label = f"{where}[:, {weight_index}]" if jagged else where
    weight_name = None
    dsid = None
    if _METADATA_TREE in _trees(f):
        md = f[_METADATA_TREE]
        leaves = _leaf_names(md)
        names = _weight_names(md, leaves)
        if names is not None and weight_index < len(names) and weight_branch is None:
            weight_name = names[weight_index] or None
        dsid = _metadata_dsid(md, leaves)
    if dsid is None:
        dsid = _events_dsid(container, field)
    return SumOfWeights(
        sum_of_weights=math.fsum(sums), sum_of_weights_squared=math.fsum(squares),
        n_events=n, source=f"events {label} (float64 sum over {n} events)",
        path=str(path), weight_index=weight_index, weight_name=weight_name, kind="events",
        dsid=dsid,
    )


# --------------------------------------------------------------------------- public API


def sum_of_weights(path: str | os.PathLike[str], *, weight_index: int = 0,
                   method: str = "auto", cutflow: str | None = None,
                   cutflow_bin: str = "Initial", weight_branch: str | None = None
                   ) -> SumOfWeights:
    """Read the sum of generator weights of one file.

    Args:
        path: ROOT file (opened with :func:`recastkit.io.root.open_root`).
        weight_index: Generator weight (0 = nominal, N > 0 = variation N).
        method: One of :data:`METHODS` (see the module docstring). ``"auto"`` never falls
            back to the event weights.
        cutflow: Histogram name for ``method="cutflow"``.
        cutflow_bin: Bin label of that histogram (default ``"Initial"``).
        weight_branch: For ``method="events"``, ``"TREE/BRANCH"`` or ``"BRANCH"`` of a flat
            ntuple, instead of the standard PHYSLITE/NanoAOD weights.

    Returns:
        The sum of weights with its source.

    Raises:
        RootFileError: Missing, non-ROOT or truncated file.
        BookkeepingError: No usable sum of weights (the message lists the alternatives),
            an unknown method or an unknown weight index.
        MissingObjectError: A named tree, branch or histogram that is absent.
    """
    p = Path(path)
    _check_common(p, weight_index, method)
    if cutflow is not None and method == "auto":
        method = "cutflow"
    with open_root(p) as f:
        result = _read_sum_of_weights(p, f, weight_index, method=method, cutflow=cutflow,
                                      cutflow_bin=cutflow_bin, weight_branch=weight_branch)
        uuid = getattr(getattr(f, "file", None), "uuid", None)
    return replace(result, file_uuid=None if uuid is None else str(uuid))


def _read_sum_of_weights(p: Path, f: Any, weight_index: int, *, method: str,
                         cutflow: str | None, cutflow_bin: str, weight_branch: str | None
                         ) -> SumOfWeights:
    if method == "cutbookkeepers":
        return _from_cutbookkeepers(p, f, weight_index)
    if method == "runs-tree":
        return _from_runs_tree(p, f, weight_index)
    if method == "sumweights-tree":
        return _from_sumweights_tree(p, f, weight_index)
    if method == "cutflow":
        return _from_cutflow(p, f, cutflow, cutflow_bin, weight_index)
    if method == "events":
        return _from_events(p, f, weight_index, weight_branch)
    trees = _trees(f)
    if _METADATA_TREE in trees:
        return _from_cutbookkeepers(p, f, weight_index)
    if "Runs" in trees:
        return _from_runs_tree(p, f, weight_index)
    if "sumWeights" in trees:
        return _from_sumweights_tree(p, f, weight_index)
    msg = (
        f"{p}: no bookkeeping sum of weights: none of the trees {_METADATA_TREE} "
        "(ATLAS CutBookkeepers), Runs (CMS NanoAOD) or sumWeights (AnalysisTop) is in the "
        f"file (trees: {', '.join(trees) if trees else 'none'}); {_alternatives(f)}"
    )
    raise BookkeepingError(msg)


def _events_only(path: str | os.PathLike[str], weight_index: int,
                 weight_branch: str | None) -> SumOfWeights:
    p = Path(path)
    with open_root(p) as f:
        return _from_events(p, f, weight_index, weight_branch, warn=False)


def _describe(results: Sequence[SumOfWeights]) -> str:
    sources = list(dict.fromkeys(r.source for r in results))
    if len(results) == 1:
        return results[0].source
    return f"sum over {len(results)} files ({'; '.join(sources)})"


def _check_distinct_files(paths: Sequence[Path]) -> None:
    """The same file twice (by path, link or hard link) is an error naming both."""
    seen: dict[tuple[int, int] | str, Path] = {}
    for p in paths:
        try:
            st = p.stat()
            key: tuple[int, int] | str = (st.st_dev, st.st_ino)
        except OSError:
            key = os.path.realpath(p)  # the read reports the missing file
        if key in seen:
            msg = (
                f"{seen[key]} and {p} are the same file: a sum of weights counts each file of "
                "a sample once; give every file once"
            )
            raise BookkeepingError(msg)
        seen[key] = p


def _check_one_sample(results: Sequence[SumOfWeights], allow_mixed_dsids: bool) -> str | None:
    """Byte copies (same ROOT UUID) are an error; several DSIDs too unless allowed.

    Returns:
        The note added to the total's source when mixed DSIDs are allowed, else None.
    """
    by_uuid: dict[str, SumOfWeights] = {}
    for r in results:
        if r.file_uuid is None:
            continue
        other = by_uuid.get(r.file_uuid)
        if other is not None:
            msg = (
                f"{other.path} and {r.path} are copies of one ROOT file (same file UUID "
                f"{r.file_uuid}): a sum of weights counts each file of a sample once; give "
                "one of them"
            )
            raise BookkeepingError(msg)
        by_uuid[r.file_uuid] = r
    dsids: dict[int, list[str]] = {}
    for r in results:
        if r.dsid is not None:
            dsids.setdefault(r.dsid, []).append(str(r.path))
    if len(dsids) <= 1:
        return None
    listing = "; ".join(f"DSID {d}: {', '.join(paths[:3])}{' …' if len(paths) > 3 else ''}"
                        for d, paths in sorted(dsids.items()))
    if not allow_mixed_dsids:
        msg = (
            f"the files belong to {len(dsids)} samples ({listing}); a sum of weights "
            "normalizes one sample: give the files of one DSID, or --allow-mixed-dsids "
            "(recastkit sumw, recastkit scale --sumw-from) if they are one sample"
        )
        raise BookkeepingError(msg)
    note = (f"files of DSIDs {', '.join(map(str, sorted(dsids)))} summed as one sample "
            "(--allow-mixed-dsids)")
    log.warning("%s", note)
    return note


def _total(results: Sequence[SumOfWeights], mixed_note: str | None = None) -> SumOfWeights:
    kinds = sorted({r.kind for r in results})
    if len(kinds) > 1:
        detail = ", ".join(f"{r.path}: {r.kind}" for r in results)
        msg = (f"the files give sums of weights of different kinds ({detail}); "
               "use one method for all files (--method)")
        raise BookkeepingError(msg)
    sumw2 = (math.fsum(r.sum_of_weights_squared for r in results  # type: ignore[misc]
                       ) if all(r.sum_of_weights_squared is not None for r in results) else None)
    n_events = (sum(r.n_events for r in results if r.n_events is not None)
                if all(r.n_events is not None for r in results) else None)
    names = {r.weight_name for r in results}
    if len(names) > 1:
        log.warning("the files name weight %d differently: %s", results[0].weight_index,
                    ", ".join(sorted(str(n) for n in names)))
    dsids = {r.dsid for r in results if r.dsid is not None}
    source = _describe(results)
    if mixed_note is not None:
        source = f"{source}; {mixed_note}"
    return SumOfWeights(
        sum_of_weights=math.fsum(r.sum_of_weights for r in results),
        sum_of_weights_squared=sumw2,
        n_events=n_events,
        source=source,
        path=None,
        weight_index=results[0].weight_index,
        weight_name=results[0].weight_name if len(names) == 1 else None,
        kind=kinds[0],
        dsid=dsids.pop() if len(dsids) == 1 else None,
    )


def _skim(reference: SumOfWeights, in_files: SumOfWeights) -> SkimInfo:
    n_in = in_files.n_events if in_files.n_events is not None else 0
    event_eff = (n_in / reference.n_events
                 if reference.n_events else None)
    weight_eff = (in_files.sum_of_weights / reference.sum_of_weights
                  if reference.sum_of_weights != 0 else None)
    if weight_eff is not None and weight_eff < 1.0 - 1e-9:
        log.info("the files hold a fraction %.6g of the generated sum of weights (skimmed)",
                 weight_eff)
    return SkimInfo(n_events_in_files=n_in, sumw_in_files=in_files.sum_of_weights,
                    event_efficiency=event_eff, weight_efficiency=weight_eff)


def sum_of_weights_files(paths: Sequence[str | os.PathLike[str]], *, weight_index: int = 0,
                         method: str = "auto", cutflow: str | None = None,
                         cutflow_bin: str = "Initial", compare_events: bool = False,
                         weight_branch: str | None = None,
                         allow_mixed_dsids: bool = False) -> SumwReport:
    """Sum of generator weights of a sample split over several files.

    The files must be ONE sample: the same file given twice (by path, through a link, or a
    byte copy with the same ROOT file UUID) is an error naming both, and files whose
    bookkeeping names different DSIDs are an error unless ``allow_mixed_dsids`` (the total's
    source then says so).

    Args:
        paths: The files of ONE sample (each is read with :func:`sum_of_weights`).
        weight_index: Generator weight (0 = nominal).
        method: One of :data:`METHODS`.
        cutflow: Histogram name for ``method="cutflow"``.
        cutflow_bin: Bin label of that histogram.
        compare_events: Also sum the event weights stored in the files and report the skim
            efficiency (events in files / events generated, and the same for Σw). With
            ``method="events"`` the bookkeeping (``"auto"``) is read as the reference.
        weight_branch: Weight branch of a flat ntuple for the events sum.
        allow_mixed_dsids: Accept files of several DSIDs as one sample
            (``--allow-mixed-dsids``).

    Returns:
        Per-file results, the float64 total (``path=None``) and the skim info when compared.

    Raises:
        BookkeepingError: No file, the same file twice, files of several DSIDs (unless
            allowed), files of different kinds, or any per-file failure.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise BookkeepingError("no input files given for the sum of weights")
    _check_distinct_files([Path(p) for p in paths])
    files = tuple(
        sum_of_weights(p, weight_index=weight_index, method=method, cutflow=cutflow,
                       cutflow_bin=cutflow_bin, weight_branch=weight_branch)
        for p in paths
    )
    mixed_note = _check_one_sample(files, allow_mixed_dsids)
    total = _total(files, mixed_note)
    skim = None
    if compare_events:
        if total.kind == "events":
            reference = _total([sum_of_weights(p, weight_index=weight_index) for p in paths])
            skim = _skim(reference, total)
        else:
            in_files = _total([_events_only(p, weight_index, weight_branch) for p in paths])
            skim = _skim(total, in_files)
    return SumwReport(files=files, total=total, skim=skim)


def explicit_sum_of_weights(value: float, source: str = "user value") -> SumOfWeights:
    """A sum of weights given by the user (kind ``"user"``).

    Raises:
        BookkeepingError: If ``value`` is not a finite, non-zero number.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BookkeepingError(
            f"sum of weights ({source}) must be a number, got {value!r}"
        ) from None
    if not math.isfinite(number) or number == 0.0:
        msg = f"sum of weights ({source}) must be a finite non-zero number, got {value!r}"
        raise BookkeepingError(msg)
    return SumOfWeights(sum_of_weights=number, sum_of_weights_squared=None, n_events=None,
                        source=source, path=None, weight_index=0, kind="user")


#: NanoAOD event weight vectors and the ``Runs`` branches with their sums (as ratios to
#: ``genEventSumw``).
NANOAOD_VARIATION_SUMS: dict[str, str] = {"LHEScaleWeight": "LHEScaleSumw",
                                          "LHEPdfWeight": "LHEPdfSumw"}


def nanoaod_variation_sum_of_weights(path: str | os.PathLike[str], branch: str, index: int
                                     ) -> SumOfWeights:
    """Σ of ``genWeight × <branch>[index]`` over the generated events of a NanoAOD file.

    NanoAOD's ``Runs`` tree stores ``LHEScaleSumw[i]`` / ``LHEPdfSumw[i]`` as
    Σ(genWeight × LHEScaleWeight[i]) / genEventSumw per entry; the sum is therefore
    Σ_entries LHEScaleSumw[i] × genEventSumw.

    Raises:
        BookkeepingError: An unknown weight vector, no ``Runs`` tree, or an index beyond the
            stored sums.
    """
    import awkward as ak

    p = Path(path)
    if branch not in NANOAOD_VARIATION_SUMS:
        msg = (f"{path}: no bookkeeping sum for the weight vector {branch!r}; known: "
               f"{', '.join(NANOAOD_VARIATION_SUMS)}")
        raise BookkeepingError(msg)
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise BookkeepingError(f"{path}: weight index must be an integer >= 0, got {index!r}")
    with open_root(p) as f:
        if "Runs" not in _trees(f):
            raise BookkeepingError(f"{path}: no 'Runs' tree; {_alternatives(f)}")
        runs = f["Runs"]
        keys = set(_keys(runs))
        sums_b = _first_present(keys, NANOAOD_VARIATION_SUMS[branch] + "_",
                                NANOAOD_VARIATION_SUMS[branch])
        sumw_b = _first_present(keys, "genEventSumw_", "genEventSumw")
        if sums_b is None or sumw_b is None:
            missing = NANOAOD_VARIATION_SUMS[branch] if sums_b is None else "genEventSumw"
            raise missing_object_error(path, "branch in tree 'Runs'", missing, keys)
        ratios = runs[sums_b].array(library="ak")
        sumw = np.asarray(runs[sumw_b].array(library="np"), dtype=np.float64)
        n_stored = int(ak.min(ak.num(ratios))) if len(ratios) else 0
        if index >= n_stored:
            msg = (f"{path}: {sums_b} holds {n_stored} sums; weight index {index} is out of "
                   f"range (valid: 0..{n_stored - 1})")
            raise BookkeepingError(msg)
        per_entry = ak.to_numpy(ratios[:, index]).astype(np.float64) * sumw
        total, _ = _f64_sum(per_entry)
        n = runs.num_entries
    return SumOfWeights(
        sum_of_weights=total, sum_of_weights_squared=None, n_events=None,
        source=f"Runs tree {sums_b}[{index}] × {sumw_b} ({n} {'entry' if n == 1 else 'entries'})",
        path=str(path), weight_index=index, weight_name=f"{branch}[{index}]", kind="runs-tree",
    )
