"""Physics objects per event layout: where jets, leptons, photons and MET live, read in GeV.

The general selection path (:mod:`recastkit.regions`) reads *collections* rather than the four
jet branches of the dijet fast path. A collection is jagged: int64 ``offsets`` and one flat
array per *field*. This module knows, per layout (:data:`recastkit.io.events.LAYOUTS`), which
branch holds which field, reads only the fields a configuration uses, and returns
:class:`ObjectChunk` objects of plain numpy arrays.

Built-in collections and fields (``pt``, ``eta``, ``phi``, ``mass`` always; energies in GeV):

============  ==========================================  ==============================
collection    PHYSLITE (TTree ``.``, RNTuple ``:``)        NanoAOD
============  ==========================================  ==============================
jets          ``AnalysisJetsAuxDyn.*``; ``btag``: see      ``Jet_*``; ``btag`` =
              below                                         ``Jet_btagDeepFlavB``
electrons     ``AnalysisElectronsAuxDyn.*``, ``charge``;   ``Electron_*``, ``charge``
              ``id_loose/medium/tight`` =
              ``DFCommonElectronsLH{Loose,Medium,Tight}``
muons         ``AnalysisMuonsAuxDyn.*``, ``charge``;       ``Muon_*``, ``charge``
              mass 105.658 MeV (not stored); ``quality``
              (0 tight, 1 medium, 2 loose)
photons       ``AnalysisPhotonsAuxDyn.*``; ``id_tight`` =  ``Photon_*``
              ``DFCommonPhotonsIsEMTight``
met           **none**: PHYSLITE stores only the MET        ``MET_pt``, ``MET_phi``
              *core* terms (``MET_Core_AnalysisMET``);
              the missing transverse momentum must be
              rebuilt (METMaker) and its branch configured
============  ==========================================  ==============================

Any other field name is looked up as ``<collection prefix><name>`` (``electrons.cutBased`` ->
``Electron_cutBased``; ``muons.ptvarcone30`` -> ``AnalysisMuonsAuxDyn.ptvarcone30``), so every
stored decoration is reachable; only the four-momentum fields are converted to GeV, other
fields are returned as stored.

PHYSLITE b-tagging: the jets only hold a link (``btaggingLink``) to the
``BTagging_AntiKt4EMPFlow*AuxDyn`` container. In every shared file that container has one
entry per jet in the same order (``btaggingLink.m_persIndex`` is 0..n-1), which the reader
checks (same count per event) instead of following the link. ``btag`` is the DL1/GN2-style
discriminant ``log(pb / (fc·pc + (1 - fc)·pu))`` of the first tagger found among GN2v01
(fc = 0.2), GN2v00 (fc = 0.1), DL1dv01 (fc = 0.018) and DL1r (fc = 0.018), in the
``BTagging_AntiKt4EMPFlowAuxDyn`` or ``BTagging_AntiKt4EMPFlow_201903AuxDyn`` container
(21.2.108 file: DL1r; PHYSLITE_example: GN2v00; RNTuple file: GN2v01). The tagger and fc are
recorded in :attr:`ObjectLayout.btag_source`.

Flat ntuples: ``flat`` uses ``jet_*``, ``el_*``, ``mu_*``, ``ph_*`` and ``met_pt/met_phi``
(``btag`` = ``jet_btag``); ``flat_cartesian`` (``uproot-HZZ.root``) has Cartesian
``Jet_Px/Py/Pz/E`` (``btag`` = ``Jet_btag``), ``Muon_*``, ``Electron_*``, ``Photon_*`` and
``MET_px/MET_py``, converted to pT, η, φ, m at read time. Every branch can be overridden per
field in the configuration (``objects.<collection>.fields``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import awkward as ak
import numpy as np
import numpy.typing as npt

from recastkit.exceptions import ConfigError, MissingObjectError, RootFileError, SelectionError
from recastkit.io import decoding
from recastkit.io.baskets import Column, Unsupported
from recastkit.io.decoding import ReadOptions
from recastkit.io.events import (
    BUILTIN_LAYOUTS,
    EventLayout,
    InputConfig,
    _basket_specs,
    _chunk_reader,
    _event_tree,
    _event_trees,
    _extra_weight_branches,
    _open_cached,
    _tree_keys,
    detect_layout,
)
from recastkit.io.root import missing_object_error

log = logging.getLogger(__name__)

Float64Array = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]

#: Collections every layout knows (``met`` is a single object per event).
BASE_COLLECTIONS: tuple[str, ...] = ("jets", "electrons", "muons", "photons")
#: Fields converted from the layout's energy unit to GeV.
ENERGY_FIELDS = frozenset({"pt", "mass", "px", "py", "pz", "e"})
MUON_MASS_GEV = 0.1056583755
ELECTRON_MASS_GEV = 0.00051099895

#: PHYSLITE b-tagging containers and taggers tried in order: (container, tagger, fc).
PHYSLITE_TAGGERS: tuple[tuple[str, str, float], ...] = (
    ("BTagging_AntiKt4EMPFlowAuxDyn", "GN2v01", 0.2),
    ("BTagging_AntiKt4EMPFlowAuxDyn", "GN2v00", 0.1),
    ("BTagging_AntiKt4EMPFlowAuxDyn", "DL1dv01", 0.018),
    ("BTagging_AntiKt4EMPFlow_201903AuxDyn", "DL1r", 0.018),
)
_BTAG = "@btag"  # marker: the PHYSLITE discriminant

FieldSource = str | float  # a branch name, or a constant (GeV for energy fields)


@dataclass(frozen=True)
class CollectionMap:
    """Where the fields of one collection live in one layout.

    Attributes:
        prefix: Prefix of branches of fields not listed (``Electron_``), or ``None``.
        fields: Field name -> branch name or constant.
        cartesian: The four-momentum is stored as ``px, py, pz, e``.
    """

    prefix: str | None
    fields: Mapping[str, FieldSource]
    cartesian: bool = False


def _physlite(sep: str) -> dict[str, CollectionMap]:
    def coll(container: str, extra: dict[str, FieldSource]) -> CollectionMap:
        p = f"{container}AuxDyn{sep}"
        base: dict[str, FieldSource] = {"pt": p + "pt", "eta": p + "eta", "phi": p + "phi",
                                        "mass": p + "m"}
        base.update(extra)
        return CollectionMap(p, base)

    ele = "AnalysisElectronsAuxDyn" + sep
    return {
        "jets": coll("AnalysisJets", {"btag": _BTAG}),
        "electrons": coll("AnalysisElectrons", {
            "charge": ele + "charge", "id_loose": ele + "DFCommonElectronsLHLoose",
            "id_medium": ele + "DFCommonElectronsLHMedium",
            "id_tight": ele + "DFCommonElectronsLHTight"}),
        "muons": coll("AnalysisMuons", {"mass": MUON_MASS_GEV * 1e3,
                                        "charge": f"AnalysisMuonsAuxDyn{sep}charge"}),
        "photons": coll("AnalysisPhotons", {
            "id_tight": f"AnalysisPhotonsAuxDyn{sep}DFCommonPhotonsIsEMTight"}),
    }


def _nano() -> dict[str, CollectionMap]:
    def coll(prefix: str, extra: dict[str, FieldSource]) -> CollectionMap:
        base: dict[str, FieldSource] = {"pt": prefix + "pt", "eta": prefix + "eta",
                                        "phi": prefix + "phi", "mass": prefix + "mass"}
        base.update(extra)
        return CollectionMap(prefix, base)

    return {
        "jets": coll("Jet_", {"btag": "Jet_btagDeepFlavB"}),
        "electrons": coll("Electron_", {"charge": "Electron_charge"}),
        "muons": coll("Muon_", {"charge": "Muon_charge"}),
        "photons": coll("Photon_", {}),
        "met": CollectionMap("MET_", {"pt": "MET_pt", "phi": "MET_phi"}),
    }


def _flat() -> dict[str, CollectionMap]:
    def coll(prefix: str, extra: dict[str, FieldSource]) -> CollectionMap:
        base: dict[str, FieldSource] = {"pt": prefix + "pt", "eta": prefix + "eta",
                                        "phi": prefix + "phi", "mass": prefix + "m"}
        base.update(extra)
        return CollectionMap(prefix, base)

    return {
        "jets": coll("jet_", {"btag": "jet_btag"}),
        "electrons": coll("el_", {"charge": "el_charge"}),
        "muons": coll("mu_", {"charge": "mu_charge"}),
        "photons": coll("ph_", {}),
        "met": CollectionMap("met_", {"pt": "met_pt", "phi": "met_phi"}),
    }


def _cartesian() -> dict[str, CollectionMap]:
    def coll(p: str, extra: dict[str, FieldSource]) -> CollectionMap:
        base: dict[str, FieldSource] = {"px": p + "Px", "py": p + "Py", "pz": p + "Pz",
                                        "e": p + "E"}
        base.update(extra)
        return CollectionMap(p, base, cartesian=True)

    return {
        "jets": coll("Jet_", {"btag": "Jet_btag"}),
        "electrons": coll("Electron_", {"charge": "Electron_Charge"}),
        "muons": coll("Muon_", {"charge": "Muon_Charge"}),
        "photons": coll("Photon_", {}),
        "met": CollectionMap("MET_", {"px": "MET_px", "py": "MET_py"}, cartesian=True),
    }


#: Collection maps of the built-in layouts.
OBJECT_MAPS: dict[str, dict[str, CollectionMap]] = {
    "physlite": _physlite("."),
    "physlite_rntuple": _physlite(":"),
    "nanoaod": _nano(),
    "flat": _flat(),
    "flat_cartesian": _cartesian(),
}

#: Vector weight branches whose elements are variations, per layout: (branch, mode).
#: ``replace``: the element is the event weight; ``multiply``: it multiplies the nominal.
VARIATION_BRANCHES: dict[str, dict[str, str]] = {
    "physlite": {"EventInfoAuxDyn.mcEventWeights": "replace"},
    "physlite_rntuple": {"EventInfoAuxDyn:mcEventWeights": "replace"},
    "nanoaod": {"LHEScaleWeight": "multiply", "LHEPdfWeight": "multiply",
                "PSWeight": "multiply"},
    "flat": {},
    "flat_cartesian": {},
}


@dataclass(frozen=True)
class VariationSource:
    """One generator-weight variation as read from the events.

    Attributes:
        name: Output name (``region/observable__<name>`` histograms).
        branch: The vector weight branch.
        index: Element taken in every event.
        mode: ``replace`` (PHYSLITE ``mcEventWeights[:, i]`` is the event weight) or
            ``multiply`` (NanoAOD ``LHEScaleWeight[i]`` times ``genWeight``).
        label: Human-readable origin (the PHYSLITE weight name, or ``LHEScaleWeight[4]``).
    """

    name: str
    branch: str
    index: int
    mode: str
    label: str


@dataclass(frozen=True)
class ObjectLayout:
    """What to read from one file for the general selection path.

    Attributes:
        events: The event layout (tree, energy unit, weight branch, extra weight factors).
        collections: Collection name -> field name -> branch name or constant, only the
            fields used by the configuration (``met`` included when used).
        cartesian: Collections stored as Cartesian four-vectors.
        btag_source: PHYSLITE b-tagging ``(pb, pc, pu, fc)`` branches and fraction, if used.
        variations: Generator-weight variations filled besides the nominal.
        event_branches: Scalar per-event branches exposed to expressions/hooks by name.
    """

    events: EventLayout
    collections: Mapping[str, Mapping[str, FieldSource]]
    cartesian: frozenset[str] = frozenset()
    btag_source: tuple[str, str, str, float] | None = None
    variations: tuple[VariationSource, ...] = ()
    event_branches: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The event layout's name."""
        return self.events.name

    @property
    def tree(self) -> str:
        """The event tree (or RNTuple)."""
        return self.events.tree

    @property
    def rntuple(self) -> bool:
        """Whether the events are an RNTuple."""
        return self.events.rntuple

    @property
    def branches(self) -> tuple[str, ...]:
        """Every branch read per event."""
        out: list[str] = []
        for fields in self.collections.values():
            out.extend(v for v in fields.values() if isinstance(v, str) and v != _BTAG)
        if self.btag_source is not None:
            out.extend(self.btag_source[:3])
        if self.events.weight_branch is not None:
            out.append(self.events.weight_branch)
        out.extend(self.events.extra_weight_branches)
        out.extend(v.branch for v in self.variations)
        out.extend(self.event_branches.values())
        return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class Collection:
    """A jagged collection of one chunk: ``offsets`` and one flat array per field.

    Attributes:
        offsets: int64, ``len == n_events + 1``, starting at 0.
        fields: Field name -> flat array (float64 for the four-momentum, in GeV).
    """

    offsets: Int64Array
    fields: Mapping[str, npt.NDArray[Any]]

    @property
    def counts(self) -> Int64Array:
        """Objects per event."""
        return np.diff(self.offsets)


@dataclass(frozen=True)
class ObjectChunk:
    """Events ``[entry_start, entry_stop)`` of one file as collections and weights.

    Attributes:
        path: The file.
        entry_start: First entry.
        entry_stop: Last entry (exclusive).
        collections: Collection name -> :class:`Collection` (stored order, no cuts).
        met: MET fields (``pt``, ``phi`` in GeV) per event, if read.
        weights: float64 nominal event weight (event weight × extra factors).
        variation_weights: Variation name -> float64 event weight.
        event_fields: Scalar branches by their configured name.
    """

    path: str
    entry_start: int
    entry_stop: int
    collections: Mapping[str, Collection]
    met: Mapping[str, Float64Array] | None
    weights: Float64Array
    variation_weights: Mapping[str, Float64Array]
    event_fields: Mapping[str, npt.NDArray[Any]]

    @property
    def n_events(self) -> int:
        """Number of events."""
        return self.entry_stop - self.entry_start


# --------------------------------------------------------------------------- resolving


def _physlite_btag(keys: set[str], sep: str) -> tuple[str, str, str, float] | None:
    for container, tagger, fc in PHYSLITE_TAGGERS:
        names = tuple(f"{container}{sep}{tagger}_{p}" for p in ("pb", "pc", "pu"))
        if set(names) <= keys:
            return names[0], names[1], names[2], fc
    return None


def weight_names(path: str | os.PathLike[str]) -> list[str] | None:
    """PHYSLITE generator weight names (``TruthMetaDataAux.weightNames``, stripped), if any."""
    f = _open_cached(path)
    try:
        md = f["MetaData"]
        arr = md["TruthMetaDataAux./TruthMetaDataAux.weightNames"].array(entry_stop=1)
        names = ak.to_list(arr)[0]
        while names and isinstance(names[0], list):
            names = names[0]
        return [str(n).strip() for n in names]
    except Exception:  # absent or unreadable: names are then unavailable
        log.debug("%s: no TruthMetaData weight names", path, exc_info=True)
        return None


def _sanitize(text: str) -> str:
    """A histogram-name-safe variation name: runs of other characters become one ``_``."""
    out = re.sub(r"[^A-Za-z0-9.\-]+", "_", text.strip())
    return out.strip("_") or "variation"


def resolve_variations(path: str | os.PathLike[str], layout: EventLayout,
                       requested: Sequence[tuple[str | None, str | int]],
                       keys: set[str]) -> tuple[VariationSource, ...]:
    """Turn configured variations (name, selector) into :class:`VariationSource` objects.

    Selectors: an integer (index into the PHYSLITE ``mcEventWeights``), ``"BRANCH[i]"``
    (``LHEScaleWeight[4]``, ``LHEPdfWeight[12]``, ``mcEventWeights[5]``), or a PHYSLITE weight
    name from ``TruthMetaData`` (spaces ignored at both ends).

    Raises:
        ConfigError: Unknown selector (lists the valid branches or names).
    """
    branches = VARIATION_BRANCHES.get(layout.name, {})
    out: list[VariationSource] = []
    names: list[str] | None = None
    for label, selector in requested:
        branch: str | None = None
        index: int
        desc: str
        if isinstance(selector, int):
            vec = [b for b in branches if b.endswith("mcEventWeights")]
            if not vec:
                msg = (f"{path}: variation {selector} given by index needs a PHYSLITE file "
                       f"(mcEventWeights); for layout {layout.name} write "
                       f"BRANCH[i] with BRANCH one of {', '.join(branches) or 'none'}")
                raise ConfigError(msg)
            branch, index, desc = vec[0], selector, f"mcEventWeights[{selector}]"
        elif selector.endswith("]") and "[" in selector:
            stem, _, idx = selector[:-1].partition("[")
            matches = [b for b in branches if b == stem or b.endswith(stem)]
            if not matches or not idx.strip().isdigit():
                msg = (f"{path}: variation {selector!r}: unknown weight vector; valid for "
                       f"layout {layout.name}: {', '.join(b + '[i]' for b in branches) or 'none'}")
                raise ConfigError(msg)
            branch, index, desc = matches[0], int(idx), selector
        else:
            if names is None:
                names = weight_names(path) or []
            wanted = selector.strip()
            if wanted not in names:
                import difflib

                close = difflib.get_close_matches(wanted, names, n=5)
                msg = (f"{path}: variation {selector!r} is not a generator weight name"
                       + (f"; close matches: {', '.join(map(repr, close))}" if close else
                          f" ({len(names)} names in TruthMetaData)")
                       + "; or give an index / BRANCH[i]")
                raise ConfigError(msg)
            vec = [b for b in branches if b.endswith("mcEventWeights")]
            if not vec:
                raise ConfigError(f"{path}: variation names need a PHYSLITE layout")
            branch, index, desc = vec[0], names.index(wanted), wanted
        if branch not in keys:
            raise missing_object_error(path, "variation weight branch", branch, sorted(keys))
        name = label or _sanitize(desc.replace("[", "_").replace("]", ""))
        out.append(VariationSource(name, branch, index, branches[branch], desc))
    seen: set[str] = set()
    for v in out:
        if "__" in v.name or "/" in v.name:
            raise ConfigError(f"{path}: variation name {v.name!r} must not contain '__' or '/' "
                              "(they separate histogram names)")
        if v.name in seen:
            raise ConfigError(f"{path}: two variations are named {v.name!r}; give names")
        seen.add(v.name)
    return tuple(out)


def resolve_object_layout(  # noqa: PLR0917
    path: str | os.PathLike[str],
    input_config: InputConfig,
    used: Mapping[str, set[str]],
    overrides: Mapping[str, Mapping[str, FieldSource]],
    extra_weights: Sequence[str] = (),
    variations: Sequence[tuple[str | None, str | int]] = (),
    event_fields: Mapping[str, str] | None = None,
) -> ObjectLayout:
    """The branches of ``path`` that hold the fields the configuration uses.

    Args:
        path: The input file.
        input_config: Layout overrides (layout, tree, units, weight branch ...).
        used: Collection name -> fields used (``met`` for the missing transverse momentum).
        overrides: Collection name -> field -> branch (or constant) from the configuration.
        extra_weights: Scalar weight factor branches (short names tried with the
            event-info prefix).
        variations: Configured generator-weight variations ``(name or None, selector)``.
        event_fields: Name -> scalar branch exposed to expressions.

    Raises:
        MissingObjectError: A needed branch is absent (close matches listed), or a layout
            without the collection (e.g. PHYSLITE MET) and no configured branch.
    """
    cfg = input_config
    base = BUILTIN_LAYOUTS[cfg.layout] if cfg.layout is not None else detect_layout(path)
    events = replace(
        base,
        tree=cfg.tree or base.tree,
        energy_unit=cfg.energy_unit or base.energy_unit,
        weight_branch=None if cfg.unweighted else (cfg.weight_branch or base.weight_branch),
        weight_index=None if cfg.unweighted else (
            cfg.weight_index if cfg.weight_index is not None else (
                base.weight_index if cfg.weight_branch is None else None)),
        jet_branches=base.jet_branches,
    )
    f = _open_cached(path)
    trees = _event_trees(f)
    if events.tree not in trees:
        raise missing_object_error(path, "tree", events.tree, trees)
    keylist = _tree_keys(_event_tree(path, events.tree))
    keys = set(keylist)
    maps = OBJECT_MAPS[events.name]
    sep = ":" if events.rntuple else "."
    collections: dict[str, dict[str, FieldSource]] = {}
    cartesian: set[str] = set()
    btag: tuple[str, str, str, float] | None = None
    for coll, fields in sorted(used.items()):
        cmap = maps.get(coll)
        user = dict(overrides.get(coll, {}))
        if cmap is None and not user:
            where = ("PHYSLITE stores no final missing transverse momentum (only the MET core "
                     "terms); configure objects.met.fields {pt, phi} or {px, py}"
                     if coll == "met" else f"layout {events.name} has no collection {coll!r}")
            raise MissingObjectError(f"{path}: {where}")
        mapping: dict[str, FieldSource] = dict(cmap.fields) if cmap is not None else {}
        is_cart = cmap.cartesian if cmap is not None else False
        if {"px", "py"} & set(user) and not {"pt", "phi"} & set(user):
            is_cart = True
            for k in ("pt", "eta", "phi", "mass"):
                mapping.pop(k, None)
        elif {"pt", "phi"} & set(user):
            is_cart = False
            for k in ("px", "py", "pz", "e"):
                mapping.pop(k, None)
        mapping.update(user)
        need = set(fields)
        if is_cart:
            cartesian.add(coll)
            kin = {"pt", "eta", "phi", "mass"} & need
            need -= kin
            if kin:
                need |= {"px", "py"} if coll == "met" else {"px", "py", "pz", "e"}
        elif coll == "met":
            need |= {"pt", "phi"}
            need -= {"eta", "mass"}
        chosen: dict[str, FieldSource] = {}
        for name in sorted(need):
            src = mapping.get(name)
            if src is None and name in ("eta", "mass") and coll == "met":
                continue
            if src is None and name == "mass" and coll == "photons":
                src = 0.0
            if src is None and name == "mass" and coll == "electrons" and (
                    cmap is None or cmap.prefix is None or cmap.prefix + "m" not in keys):
                src = ELECTRON_MASS_GEV * (1e3 if events.energy_unit == "MeV" else 1.0)
            if src is None and name == "flavour":
                continue
            if src is None and cmap is not None and cmap.prefix is not None:
                src = cmap.prefix + name
            if src is None:
                raise MissingObjectError(
                    f"{path}: no branch for {coll}.{name}; set objects.{coll}.fields.{name}")
            if src == _BTAG:
                btag = _physlite_btag(keys, sep)
                if btag is None:
                    msg = (f"{path}: no b-tagging scores found for jets.btag (tried "
                           + ", ".join(f"{c}{sep}{t}_pb" for c, t, _ in PHYSLITE_TAGGERS)
                           + "); set objects.jets.fields.btag to a per-jet branch")
                    raise MissingObjectError(msg)
            elif isinstance(src, str) and src not in keys:
                if user.get(name) == src and cmap is not None and cmap.prefix is not None \
                        and cmap.prefix + src in keys:
                    src = cmap.prefix + src
                else:
                    raise missing_object_error(
                        path, f"branch for {coll}.{name} in tree {events.tree!r}", src, keylist)
            chosen[name] = src
        collections[coll] = chosen
    events = replace(events, extra_weight_branches=_extra_weight_branches(
        path, events, extra_weights, keylist))
    if events.weight_branch is not None and events.weight_branch not in keys:
        raise missing_object_error(path, f"weight branch in tree {events.tree!r}",
                                   events.weight_branch, keylist)
    ev_fields: dict[str, str] = {}
    for name, branch in (event_fields or {}).items():
        if branch in keys:
            ev_fields[name] = branch
        elif events.event_info_prefix and events.event_info_prefix + branch in keys:
            ev_fields[name] = events.event_info_prefix + branch
        else:
            raise missing_object_error(path, f"event branch in tree {events.tree!r}", branch,
                                       keylist)
    return ObjectLayout(
        events=events, collections=collections, cartesian=frozenset(cartesian),
        btag_source=btag, variations=resolve_variations(path, events, variations, keys),
        event_branches=ev_fields,
    )


# --------------------------------------------------------------------------- reading


def _jagged(array: Any, path: str, branch: str) -> tuple[Int64Array, npt.NDArray[Any]]:
    if isinstance(array, Column):  # the basket reader's: uproot reads anything unexpected
        if array.offsets is None:
            raise Unsupported(f"branch {branch!r} is not jagged")
        if array.content.shape[0] != array.offsets[-1]:
            return array.offsets, array.content[:int(array.offsets[-1])]
        return array.offsets, array.content
    layout = ak.to_layout(array)
    if not isinstance(layout, ak.contents.ListOffsetArray):
        layout = ak.to_layout(ak.to_packed(array))
    if not isinstance(layout, ak.contents.ListOffsetArray) or not isinstance(
            layout.content, ak.contents.NumpyArray):
        msg = f"{path}: branch {branch!r} is not a jagged array of numbers (type {array.type})"
        raise SelectionError(msg)
    offsets = np.asarray(layout.offsets.data).astype(np.int64, copy=False)
    content = np.asarray(layout.content.data)
    if offsets[0] != 0 or content.shape[0] != offsets[-1]:
        content = content[offsets[0]:offsets[-1]]
        offsets = offsets - offsets[0]
    return offsets, content


def _vector_element(batch: Any, branch: str, index: int, path: str, start: int
                    ) -> Float64Array:
    offsets, content = _jagged(batch[branch], path, branch)
    counts = np.diff(offsets)
    short = np.flatnonzero(counts <= index)
    if short.size:
        msg = (f"{path}: entry {start + int(short[0])} has {int(counts[short[0]])} values in "
               f"{branch!r}, cannot take index {index}")
        raise SelectionError(msg)
    return content[offsets[:-1] + index].astype(np.float64)


def _plain(batch: Any, branch: str) -> Any:
    """``batch[branch]``; a basket reader's column must be one value per event."""
    item = batch[branch]
    if isinstance(item, Column):
        if item.offsets is not None:
            raise Unsupported(f"branch {branch!r} is jagged")
        return item.content
    return item


def _scalar(batch: Any, branch: str, path: str) -> Float64Array:
    values = np.asarray(_plain(batch, branch), dtype=np.float64)
    if values.ndim != 1:
        raise SelectionError(f"{path}: branch {branch!r} is not one number per event")
    return values


def _cartesian_to_polar(px: Float64Array, py: Float64Array, pz: Float64Array | None,
                        e: Float64Array | None) -> dict[str, Float64Array]:
    pt = np.hypot(px, py)
    out = {"pt": pt, "phi": np.arctan2(py, px)}
    if pz is not None and e is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["eta"] = np.arcsinh(np.where(pt > 0, pz / np.where(pt > 0, pt, 1.0),
                                             np.sign(pz) * np.inf))
        m2 = e * e - px * px - py * py - pz * pz
        out["mass"] = np.sqrt(np.maximum(m2, 0.0))
    return out


def _to_chunk(batch: Any, layout: ObjectLayout, path: str, start: int, n: int) -> ObjectChunk:
    """An :class:`ObjectChunk` of ``n`` events from ``batch``: uproot's awkward record array,
    or the basket reader's ``branch -> Column`` (raises ``Unsupported`` for a branch of
    unexpected shape, which uproot then reads and reports)."""
    scale = layout.events.energy_scale_to_gev
    colls: dict[str, Collection] = {}
    met: dict[str, Float64Array] | None = None
    for cname, fields in layout.collections.items():
        if cname == "met":
            raw = {k: (np.full(n, float(v)) if not isinstance(v, str)
                       else _scalar(batch, v, path)) for k, v in fields.items()}
            for k in ENERGY_FIELDS & set(raw):
                raw[k] = raw[k] * scale
            if cname in layout.cartesian:
                raw = {**raw, **_cartesian_to_polar(raw["px"], raw["py"], None, None)}
            met = raw
            continue
        offsets: Int64Array | None = None
        arrays: dict[str, npt.NDArray[Any]] = {}
        consts: dict[str, float] = {}
        first = ""
        for fname, source in fields.items():
            if not isinstance(source, str):
                consts[fname] = float(source)
                continue
            src = source
            if src == _BTAG:
                assert layout.btag_source is not None
                pb_b, pc_b, pu_b, fc = layout.btag_source
                parts = [_jagged(batch[b], path, b) for b in (pb_b, pc_b, pu_b)]
                off = parts[0][0]
                pb, pc, pu = (p[1].astype(np.float64) for p in parts)
                with np.errstate(divide="ignore", invalid="ignore"):
                    values: npt.NDArray[Any] = np.log(pb / (fc * pc + (1.0 - fc) * pu))
                src = pb_b
            else:
                off, values = _jagged(batch[src], path, src)
            if offsets is None:
                offsets, first = off, src
            elif off is not offsets and not np.array_equal(off, offsets):
                msg = (f"{path}: {cname} branches {first!r} and {src!r} have different "
                       f"numbers of objects in entries {start}-{start + n}")
                raise SelectionError(msg)
            arrays[fname] = values
        if offsets is None:
            raise SelectionError(f"{path}: collection {cname} has no branch to read")
        total = int(offsets[-1])
        for fname, value in consts.items():
            arrays[fname] = np.full(total, value)
        for k in ENERGY_FIELDS & set(arrays):
            arrays[k] = arrays[k].astype(np.float64) * scale if scale != 1.0 else \
                arrays[k].astype(np.float64, copy=False)
        for k in ("eta", "phi"):
            if k in arrays:
                arrays[k] = arrays[k].astype(np.float64, copy=False)
        if cname in layout.cartesian and "px" in arrays:
            arrays.update(_cartesian_to_polar(arrays["px"], arrays["py"], arrays.get("pz"),
                                              arrays.get("e")))
        colls[cname] = Collection(offsets, arrays)
    ev = layout.events
    if ev.weight_branch is None:
        base: Float64Array = np.ones(n, dtype=np.float64)
    elif ev.weight_index is None:
        base = _scalar(batch, ev.weight_branch, path)
    else:
        base = _vector_element(batch, ev.weight_branch, ev.weight_index, path, start)
    factor: Float64Array = np.ones(n, dtype=np.float64)
    for branch in ev.extra_weight_branches:
        factor = factor * _scalar(batch, branch, path)
    weights = base * factor
    variations: dict[str, Float64Array] = {}
    for v in layout.variations:
        element = _vector_element(batch, v.branch, v.index, path, start)
        variations[v.name] = element * factor if v.mode == "replace" else element * weights
    event_fields = {name: np.asarray(_plain(batch, b))
                    for name, b in layout.event_branches.items()}
    return ObjectChunk(path, start, start + n, colls, met, weights, variations, event_fields)


def iter_object_chunks(  # noqa: PLR0917
        path: str | os.PathLike[str], layout: ObjectLayout, entry_start: int,
                       entry_stop: int, step_size: int,
                       options: ReadOptions | None = None) -> Iterator[ObjectChunk]:
    """Read events ``[entry_start, entry_stop)`` as :class:`ObjectChunk` objects.

    As :func:`recastkit.io.events.iter_chunks`: TTree branches of plain numbers in a local
    file are read by :mod:`recastkit.io.baskets` (decoded one chunk ahead in
    ``options.threads`` threads, libdeflate releasing the GIL); anything else (RNTuple, a
    remote file, other types), or the rest of the range after an unusual basket or a branch
    of unexpected shape, by uproot. Both give identical chunks.

    Raises:
        RootFileError: Truncated or corrupt file (names the file and the entry range).
        SelectionError: Inconsistent branches.
    """
    opts = options or ReadOptions()
    spath = str(path)
    tree = _event_tree(path, layout.tree)
    start = entry_start
    try:
        specs = _basket_specs(spath, tree, layout)
        if specs is not None:
            reader = _chunk_reader(spath, specs, opts)
            try:
                for a, b, columns in reader.chunks(entry_start, entry_stop, int(step_size)):
                    chunk = _to_chunk(columns, layout, spath, a, b - a)
                    yield chunk
                    start = b
                return
            except Unsupported as exc:  # uproot reads the rest
                log.debug("%s: reading entries %d-%d with uproot: %s", spath, start,
                          entry_stop, exc)
        decoding.apply(opts)
        kwargs = {} if layout.rntuple else decoding.executors(opts)
        iterator = tree.iterate(list(layout.branches), step_size=int(step_size),
                                entry_start=start, entry_stop=entry_stop, library="ak",
                                **kwargs)
        for batch in iterator:
            n = len(batch)
            yield _to_chunk(batch, layout, spath, start, n)
            start += n
    except (SelectionError, MissingObjectError, ConfigError):
        raise
    except Exception as exc:  # uproot raises many types on truncated/corrupt baskets
        msg = (f"{spath}: cannot read entries {start}-{entry_stop} of {layout.tree!r}; the "
               f"file may be truncated or corrupt ({type(exc).__name__}: {exc})")
        raise RootFileError(msg) from None
