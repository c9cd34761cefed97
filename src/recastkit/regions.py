"""Regions, observables, weights and variations in config: the general selection path.

A configuration with ``regions`` (schema ``selection.json``) describes an analysis rather than
the dijet selection of :mod:`recastkit.selection`:

.. code-block:: yaml

    objects:                       # per-object cuts, then sorted by decreasing pT
      jets: {pt_min: 20, abs_eta_max: 2.5}
      electrons: {pt_min: 10, abs_eta_max: 2.47, cuts: ["id_medium"]}
      muons: {pt_min: 10, abs_eta_max: 2.5}
      bjets: {from: jets, btag_min: 0.3}        # derived: jets passing the b-tag cut
    weights:                       # multiplied into the layout's generator weight
      - {name: pileup, branch: PileupWeight_NOSYS}
    regions:
      SR:
        cuts:
          - {name: two leptons, expr: "n(leptons) == 2"}
          - {name: SFOS, expr: "leptons[0].flavour == leptons[1].flavour and
                                leptons[0].charge * leptons[1].charge < 0"}
          - {name: mbb window, expr: "100 < m(bjets[0:2]) < 140"}
    observables:
      mbb: {expr: "m(bjets[0] + bjets[1])", bins: 30, low: 0, high: 300, label: "m_bb",
            unit: GeV}
    variations: ["LHEScaleWeight[0]", {name: pdf1, select: "LHEPdfWeight[1]"}]

``leptons`` (electrons and muons, merged by pT, with ``flavour`` 11/13 and ``charge``) and
``bjets`` (jets with ``btag`` above the layout's indicative working point, unless configured)
are derived automatically. The vocabulary is documented in :mod:`recastkit.selection_expr`.

Outputs, all from one pass: one histogram per region × observable named
``region/observable`` (a ROOT directory per region; Weight storage), one per variation named
``region/observable__<variation>`` (ROOT cannot hold a directory and a histogram of the same
name, so the variation histograms sit beside the nominal one: see
:func:`variation_histogram_name`), and a cumulative cutflow per region (counts, Σw, Σw², and
Σw of every variation).

Python hooks: a cut, observable or weight may give ``hook: "module:function"`` or
``hook: "file.py:function"`` (a path relative to the configuration file) instead of
``expr``. The function receives the chunk's events as an awkward record array (one field per
collection, jagged records with the fields read, plus ``met``, ``weight`` and the event fields)
and returns a mask, values or weights, one per event. Hooks are imported in every worker
process (processes and Dask executors) from their module name or file path; the sha256 of
each hook's source file is recorded in the output metadata (``hooks``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import numpy.typing as npt

from recastkit.config import load_yaml, validate
from recastkit.exceptions import ConfigError, SelectionError
from recastkit.histograms import HistogramSpec
from recastkit.io.decoding import ReadOptions
from recastkit.io.events import LAYOUTS, InputConfig
from recastkit.io.objects import (
    BASE_COLLECTIONS,
    Collection,
    FieldSource,
    ObjectChunk,
    ObjectLayout,
)
from recastkit.selection import SelectionConfig
from recastkit.selection_expr import (
    KINEMATIC_FIELDS,
    Compiled,
    ExpressionError,
    Frame,
    Kind,
    ObjectFrame,
    Scope,
    compile_expression,
    filter_objects,
    hist_sums,
    masked_sums,
    merge_by_pt,
    merge_select_sorted,
    select_sorted,
)

Float64Array = npt.NDArray[np.float64]

#: Indicative b-tag thresholds of ``bjets`` when not configured, per layout (document them
#: in the analysis: NanoAOD DeepJet medium WP 2018; PHYSLITE DL1r/GN2 discriminant 77 % WP).
DEFAULT_BTAG_MIN: dict[str, float] = {
    "nanoaod": 0.2770, "physlite": 2.195, "physlite_rntuple": 2.195, "flat": 0.5,
    "flat_cartesian": 0.5,
}
DERIVED = ("leptons", "bjets")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def variation_histogram_name(region: str, observable: str, variation: str) -> str:
    """Name of a variation's histogram: ``region/observable__variation`` (in a region of an
    analysis spec, where the file holds one region: ``observable__variation``)."""
    return f"{region}/{observable}__{variation}"


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class HookRef:
    """A Python function named ``module:function`` or ``file.py:function``.

    Attributes:
        text: As written in the configuration.
        module: Module name, or ``None`` for a file.
        path: Absolute path of the file (resolved against the configuration's folder).
        function: Function name.
    """

    text: str
    module: str | None
    path: str | None
    function: str

    @classmethod
    def parse(cls, text: str, base_dir: str, where: str) -> HookRef:
        """Parse ``module:function`` / ``file.py:function``.

        Raises:
            ConfigError: Malformed reference, or a file that does not exist.
        """
        target, sep, func = text.rpartition(":")
        if not sep or not target or not func.isidentifier():
            raise ConfigError(f"{where}: hook {text!r} must be 'module:function' or "
                              "'file.py:function'")
        if target.endswith(".py"):
            p = Path(target)
            p = p if p.is_absolute() else Path(base_dir) / p
            if not p.is_file():
                raise ConfigError(f"{where}: hook file {p} does not exist")
            return cls(text, None, str(p.resolve()), func)
        return cls(text, target, None, func)

    def source_file(self) -> str | None:
        """The file holding the function's module, if found."""
        if self.path is not None:
            return self.path
        assert self.module is not None
        spec = importlib.util.find_spec(self.module)
        return spec.origin if spec is not None and spec.origin else None

    def sha256(self) -> str | None:
        """sha256 of the source file (``None`` when it cannot be read)."""
        src = self.source_file()
        if src is None or not os.path.isfile(src):
            return None
        return hashlib.sha256(Path(src).read_bytes()).hexdigest()

    def load(self) -> Callable[..., Any]:
        """Import the module (once per process) and return the function.

        Raises:
            ConfigError: Import failure or no such function.
        """
        return _load_hook(self.module, self.path, self.function, self.text)


@cache
def _load_hook(module: str | None, path: str | None, function: str, text: str
               ) -> Callable[..., Any]:
    try:
        if path is not None:
            digest = hashlib.sha256(path.encode()).hexdigest()[:12]
            name = f"recastkit_hook_{Path(path).stem}_{digest}"
            mod = sys.modules.get(name)
            if mod is None:
                spec = importlib.util.spec_from_file_location(name, path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {path}")
                mod = importlib.util.module_from_spec(spec)
                sys.modules[name] = mod
                spec.loader.exec_module(mod)
        else:
            assert module is not None
            mod = importlib.import_module(module)
    except Exception as exc:
        raise ConfigError(f"hook {text!r}: cannot import ({type(exc).__name__}: {exc})"
                          ) from None
    fn = getattr(mod, function, None)
    if not callable(fn):
        raise ConfigError(f"hook {text!r}: the module has no function {function!r}")
    return fn  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ObjectDef:
    """A collection: a base one with cuts, or derived from another.

    Attributes:
        name: Collection name.
        source: The collection it is taken from (itself for base collections).
        cuts: Per-object cut expressions (object fields as names).
        fields: Field -> branch overrides (base collections only).
        read: Extra fields always read (for hooks).
    """

    name: str
    source: str
    cuts: tuple[str, ...] = ()
    fields: Mapping[str, FieldSource] = field(default_factory=dict)
    read: tuple[str, ...] = ()


@dataclass(frozen=True)
class ItemDef:
    """A cut, observable or weight factor: an expression, a branch or a hook.

    Attributes:
        name: Its name.
        expr: Expression text, if given.
        hook: Hook reference, if given.
        branch: Scalar branch (weights only).
    """

    name: str
    expr: str | None = None
    hook: HookRef | None = None
    branch: str | None = None


@dataclass(frozen=True)
class ObservableDef:
    """An observable and its regular binning."""

    item: ItemDef
    bins: int
    low: float
    high: float
    label: str = ""
    unit: str = ""

    @property
    def spec(self) -> HistogramSpec:
        """The histogram binning."""
        label = self.label or self.item.name
        return HistogramSpec(self.item.name, self.bins, self.low, self.high,
                             f"{label} [{self.unit}]" if self.unit else label)


@dataclass(frozen=True)
class RegionDef:
    """A region: cumulative named cuts and the observables filled after them."""

    name: str
    cuts: tuple[ItemDef, ...]
    observables: tuple[str, ...]


@dataclass(frozen=True)
class AnalysisConfig:
    """A selection with objects, regions, observables, weights and variations.

    Attributes:
        objects: Collection definitions (base and derived), in dependency order.
        regions: The regions, in configuration order.
        observables: Observables by name.
        weights: Weight factors multiplied into the generator weight.
        variations: Generator-weight variations ``(name or None, selector)``.
        event_fields: Name -> scalar branch usable in expressions and hooks.
        input: Event layout overrides.
        reading: Decoder and decompression threads.
        source: The configuration file (for messages).
        base_dir: Folder hooks given as files are relative to.
        single_region: Histograms are named ``observable`` instead of
            ``region/observable`` (a region of an analysis spec, one output file per region).
    """

    objects: tuple[ObjectDef, ...]
    regions: tuple[RegionDef, ...]
    observables: Mapping[str, ObservableDef]
    weights: tuple[ItemDef, ...] = ()
    variations: tuple[tuple[str | None, str | int], ...] = ()
    event_fields: Mapping[str, str] = field(default_factory=dict)
    input: InputConfig = field(default_factory=InputConfig)
    reading: ReadOptions = field(default_factory=ReadOptions)
    source: str = "<config>"
    base_dir: str = "."
    single_region: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        _ = compiled(self)  # compile every expression now: errors at load time

    # -- loading
    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "<config>",
                     base_dir: str | os.PathLike[str] = ".",
                     single_region: bool = False) -> AnalysisConfig:
        """Build from the YAML mapping (schema ``selection``), compiling every expression.

        Raises:
            ConfigError: Schema violation or a bad expression (names the place).
        """
        validate(data, "selection", source)
        bdir = os.fspath(base_dir)
        objects = _objects(data.get("objects", {}), source)
        observables: dict[str, ObservableDef] = {}
        for name, spec in data.get("observables", {}).items():
            where = f"{source}: observables.{name}"
            _check_name(name, where)
            observables[name] = ObservableDef(
                _item(name, spec, where, bdir), int(spec["bins"]), float(spec["low"]),
                float(spec["high"]), spec.get("label", ""), spec.get("unit", ""))
        regions = []
        for rname, spec in data.get("regions", {}).items():
            where = f"{source}: regions.{rname}"
            _check_name(rname, where)
            cuts = []
            flat: list[Any] = []
            for cut in spec.get("cuts", []):
                flat.extend(cut if isinstance(cut, list) else [cut])
            for i, raw_cut in enumerate(flat):
                cut = {"name": raw_cut, "expr": raw_cut} if isinstance(raw_cut, str) else raw_cut
                cuts.append(_item(cut.get("name") or cut.get("expr") or cut.get("hook"), cut,
                                  f"{where}.cuts[{i}]", bdir))
            names = [c.name for c in cuts]
            if len(set(names)) != len(names):
                raise ConfigError(f"{where}: two cuts have the same name")
            obs = tuple(spec.get("observables", list(observables)))
            for o in obs:
                if o not in observables:
                    raise ConfigError(f"{where}.observables: unknown observable {o!r}; "
                                      f"defined: {', '.join(observables) or 'none'}")
            regions.append(RegionDef(rname, tuple(cuts), obs))
        if not regions:
            raise ConfigError(f"{source}: define at least one region")
        weights = tuple(_item(w.get("name") or w.get("branch") or w.get("expr") or "hook", w,
                              f"{source}: weights.factors[{i}]", bdir)
                        for i, w in enumerate(data.get("weights", {}).get("factors", [])))
        extra = data.get("weights", {}).get("extra", [])
        weights = tuple(ItemDef(b, branch=b) for b in extra) + weights
        variations: list[tuple[str | None, str | int]] = []
        for v in data.get("variations", []):
            if isinstance(v, dict):
                variations.append((v.get("name"), v["select"]))
            else:
                variations.append((None, v))
        inp = data.get("input", {})
        layout = inp.get("layout", "auto")
        reading = data.get("reading", {})
        try:
            return cls(
                objects=objects, regions=tuple(regions), observables=observables,
                weights=weights, variations=tuple(variations),
                event_fields=dict(data.get("event_fields", {})),
                input=InputConfig(
                    layout=None if layout == "auto" else layout, tree=inp.get("tree"),
                    energy_unit=inp.get("energy_unit"), weight_branch=inp.get("weight_branch"),
                    weight_index=inp.get("weight_index"),
                    unweighted=bool(inp.get("unweighted", False))),
                reading=ReadOptions(reading.get("decoder", "auto"),
                                    int(reading.get("decompression_threads", 0))),
                source=source, base_dir=bdir, single_region=single_region, raw=data,
            )
        except ExpressionError:
            raise
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> AnalysisConfig:
        """Load a configuration file (hooks relative to its folder)."""
        data = load_yaml(os.fspath(path), "selection")
        return cls.from_mapping(data, str(path), Path(path).resolve().parent)

    # -- helpers
    def with_layout(self, layout: str | None) -> AnalysisConfig:
        """A copy with ``input.layout`` replaced (``None``/``"auto"``: detect)."""
        from dataclasses import replace

        if layout in (None, "auto"):
            return replace(self, input=replace(self.input, layout=None))
        if layout not in LAYOUTS:
            msg = f"unknown event layout {layout!r}; valid choices: auto, {', '.join(LAYOUTS)}"
            raise ConfigError(msg)
        return replace(self, input=replace(self.input, layout=layout))

    def with_reading(self, reading: ReadOptions) -> AnalysisConfig:
        """A copy with other read options."""
        from dataclasses import replace

        return replace(self, reading=reading)

    @property
    def extra_weights(self) -> tuple[str, ...]:
        """Weight factors read from branches."""
        return tuple(w.branch for w in self.weights if w.branch is not None)

    def hooks(self) -> dict[str, dict[str, str | None]]:
        """Every hook by its place: ``{"ref": text, "file": path, "sha256": digest}``."""
        out: dict[str, dict[str, str | None]] = {}
        items: list[tuple[str, ItemDef]] = []
        for r in self.regions:
            items += [(f"regions.{r.name}.cuts.{c.name}", c) for c in r.cuts]
        items += [(f"observables.{k}", o.item) for k, o in self.observables.items()]
        items += [(f"weights.{w.name}", w) for w in self.weights]
        for where, it in items:
            if it.hook is not None:
                out[where] = {"ref": it.hook.text, "file": it.hook.source_file(),
                              "sha256": it.hook.sha256()}
        return out

    def hist_name(self, region: str, observable: str, variation: str | None = None) -> str:
        """Histogram name: ``region/observable`` (``observable`` with ``single_region``),
        ``+ "__" + variation`` for a variation."""
        base = observable if self.single_region else f"{region}/{observable}"
        return base if variation is None else f"{base}__{variation}"

    @property
    def histogram_specs(self) -> tuple[HistogramSpec, ...]:
        """Binning of every nominal histogram, named by :meth:`hist_name`."""
        out = []
        for r in self.regions:
            for o in r.observables:
                s = self.observables[o].spec
                out.append(HistogramSpec(self.hist_name(r.name, o), s.nbins, s.low, s.high,
                                         s.label))
        return tuple(out)

    def cut_names(self, region: str) -> tuple[str, ...]:
        """Cutflow entry names of a region (``all events`` first)."""
        r = next(x for x in self.regions if x.name == region)
        return ("all events", *(c.name for c in r.cuts))

    def to_mapping(self) -> dict[str, Any]:
        """The configuration as given (recorded in the output metadata)."""
        return dict(self.raw)


def _check_name(name: str, where: str) -> None:
    if not _NAME_RE.match(name) or "__" in name:
        raise ConfigError(f"{where}: name {name!r} must be letters, digits, _ . - (no '/' and "
                          "no '__')")


def _item(name: Any, spec: Mapping[str, Any], where: str, base_dir: str) -> ItemDef:
    given = [k for k in ("expr", "hook", "branch") if spec.get(k) is not None]
    if len(given) != 1:
        raise ConfigError(f"{where}: give exactly one of expr, hook"
                          + (", branch" if "branch" in spec else "") + f" (got {given or 'none'})")
    hook = HookRef.parse(spec["hook"], base_dir, where) if "hook" in given else None
    return ItemDef(str(name), expr=spec.get("expr"), hook=hook, branch=spec.get("branch"))


def _objects(data: Mapping[str, Any], source: str) -> tuple[ObjectDef, ...]:
    defs: dict[str, ObjectDef] = {}
    for name, spec in data.items():
        where = f"{source}: objects.{name}"
        if name in ("met",):
            defs[name] = ObjectDef(name, name, fields=dict(spec.get("fields", {})))
            continue
        src = spec.get("from")
        if src is None:
            src = name if name in BASE_COLLECTIONS or spec.get("fields") else None
        if src is None:
            raise ConfigError(f"{where}: a new collection needs 'from: <collection>' or "
                              "'fields' with its branches")
        cuts = list(spec.get("cuts", []))
        if spec.get("pt_min") is not None:
            cuts.insert(0, f"pt > {float(spec['pt_min'])!r}")
        if spec.get("abs_eta_max") is not None:
            cuts.insert(1 if spec.get("pt_min") is not None else 0,
                        f"abs(eta) < {float(spec['abs_eta_max'])!r}")
        if spec.get("id"):
            cuts.append(str(spec["id"]))
        if spec.get("btag_min") is not None:
            cuts.append(f"btag > {float(spec['btag_min'])!r}")
        if spec.get("btag_flag"):
            cuts.append(str(spec["btag_flag"]))
        defs[name] = ObjectDef(name, src, tuple(cuts), dict(spec.get("fields", {})),
                               tuple(spec.get("read", [])))
    return tuple(defs.values())


# --------------------------------------------------------------------------- compilation


@dataclass(frozen=True)
class _Item:
    item: ItemDef
    compiled: Compiled | None
    where: str


@dataclass(frozen=True)
class CompiledConfig:
    """Every expression of an :class:`AnalysisConfig` compiled, and what they read."""

    objects: dict[str, tuple[str, tuple[Compiled | None, ...]]]  # (source, cuts); None: default
    #: b-tag cut
    order: tuple[str, ...]  # collections in dependency order
    cuts: dict[str, tuple[_Item, ...]]  # region -> cuts
    observables: dict[str, _Item]
    weights: tuple[_Item, ...]
    uses: dict[str, frozenset[str]]  # base collection -> fields ("met" included)
    event_fields: frozenset[str]
    overrides: dict[str, dict[str, FieldSource]]
    has_hooks: bool


_COMPILED: dict[str, CompiledConfig] = {}
#: id -> (the configuration, its compilation): skips the content key for the same object
#: (every chunk of a run); the configuration is held so that its id is not reused.
_COMPILED_BY_ID: dict[int, tuple[AnalysisConfig, CompiledConfig]] = {}


def _fingerprint(config: AnalysisConfig) -> str:
    return repr(config)


def compiled(config: AnalysisConfig) -> CompiledConfig:
    """Compile a configuration once per process (cached by its content)."""
    hit = _COMPILED_BY_ID.get(id(config))
    if hit is not None and hit[0] is config:
        return hit[1]
    key = _fingerprint(config)
    out = _COMPILED.get(key)
    if out is None:
        out = _compile(config)
        if len(_COMPILED) > 64:
            _COMPILED.clear()
        _COMPILED[key] = out
    if len(_COMPILED_BY_ID) > 64:
        _COMPILED_BY_ID.clear()
    _COMPILED_BY_ID[id(config)] = (config, out)
    return out


def _compile(config: AnalysisConfig) -> CompiledConfig:
    src = config.source
    defs = {d.name: d for d in config.objects}
    for base in BASE_COLLECTIONS:
        defs.setdefault(base, ObjectDef(base, base))
    defs.setdefault("leptons", ObjectDef("leptons", "electrons+muons"))
    defs.setdefault("bjets", ObjectDef("bjets", "jets", ("btag > @default",)))
    collections = frozenset(defs) - {"met"}
    has_met = True
    scope = Scope(collections=collections, event_fields=frozenset(config.event_fields),
                  has_met=has_met)
    uses: dict[str, set[str]] = {}
    ev_fields: set[str] = set()

    def note(c: Compiled) -> None:
        for k, v in c.uses.items():
            uses.setdefault(k, set()).update(v)
        ev_fields.update(c.event_fields)

    def comp(it: ItemDef, where: str, expect: Kind) -> _Item:
        if it.expr is None:
            return _Item(it, None, where)
        c = compile_expression(it.expr, where, scope, expect)
        note(c)
        return _Item(it, c, where)

    cuts = {r.name: tuple(comp(c, f"{src}: regions.{r.name}.cuts '{c.name}'", Kind.BOOL)
                          for c in r.cuts) for r in config.regions}
    observables = {k: comp(o.item, f"{src}: observables.{k}", Kind.NUM)
                   for k, o in config.observables.items()}
    weights = tuple(comp(w, f"{src}: weights '{w.name}'", Kind.NUM) for w in config.weights
                    if w.branch is None)
    has_hooks = any(i.item.hook is not None for i in
                    [*observables.values(), *weights, *(c for cs in cuts.values() for c in cs)])
    # object cuts: fields of the object as names; any identifier may be a stored field
    objects: dict[str, tuple[str, tuple[Compiled | None, ...]]] = {}

    def object_cut(name: str, text: str, i: int) -> Compiled:
        import ast

        try:
            tree = ast.parse(text.strip(), mode="eval")
            names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        except SyntaxError:
            names = set()
        names -= {"abs", "sqrt", "log", "min", "max"}
        fields = frozenset(names | set(KINEMATIC_FIELDS) | {"m"})
        return compile_expression(text, f"{src}: objects.{name}.cuts[{i}]",
                                  Scope(object_fields=fields), Kind.BOOL)

    # which collections are needed: used ones, their sources, transitively
    needed: set[str] = {k for k in uses if k != "met"}
    if has_hooks:
        needed |= {d.name for d in config.objects if d.name != "met"} | {"jets"}
    order: list[str] = []

    def visit(name: str, stack: tuple[str, ...] = ()) -> None:
        if name in order:
            return
        if name in stack:
            raise ConfigError(f"{src}: objects: circular 'from' chain {' -> '.join(stack)}")
        d = defs.get(name)
        if d is None:
            raise ConfigError(f"{src}: unknown collection {name!r}")
        for s in d.source.split("+"):
            if s != name:
                visit(s, (*stack, name))
        order.append(name)

    for name in sorted(needed):
        visit(name)
    field_need: dict[str, set[str]] = {k: set(v) for k, v in uses.items()}
    for name in reversed(order):  # push the fields down to the sources
        d = defs[name]
        mine = field_need.setdefault(name, set()) | set(KINEMATIC_FIELDS) | set(d.read)
        if has_hooks:
            mine |= set(KINEMATIC_FIELDS)
        cut_list: list[Compiled | None] = []
        for i, text in enumerate(d.cuts):
            if text == "btag > @default":
                cut_list.append(None)
                mine.add("btag")
                continue
            c = object_cut(name, text, i)
            cut_list.append(c)
            mine |= set(c.uses.get("", set()))
        field_need[name] = mine
        if name == "leptons" and d.source == "electrons+muons":
            mine = (mine | {"charge"}) - {"flavour"}
            for s in ("electrons", "muons"):
                field_need.setdefault(s, set()).update(mine)
        elif d.source != name:
            field_need.setdefault(d.source, set()).update(mine)
        objects[name] = (d.source, tuple(cut_list))
    base_uses = {k: frozenset(field_need.get(k, set()) - {"m", "flavour"})
                 for k in order if defs[k].source == k}
    if "met" in uses or (has_hooks and "met" in defs):
        base_uses["met"] = frozenset({"pt", "phi"})
    overrides = {d.name: dict(d.fields) for d in config.objects if d.fields}
    return CompiledConfig(objects, tuple(order), cuts, observables, weights,
                          base_uses, frozenset(ev_fields), overrides, has_hooks)


# --------------------------------------------------------------------------- evaluation


def _hook_values(item: _Item, frame: Frame, kind: Kind) -> npt.NDArray[Any]:
    assert item.item.hook is not None
    fn = item.item.hook.load()
    try:
        result = fn(frame.events())
    except Exception as exc:
        raise SelectionError(f"{item.where}: hook {item.item.hook.text!r} raised "
                             f"{type(exc).__name__}: {exc}") from exc
    if isinstance(result, ak.Array):
        result = ak.to_numpy(ak.fill_none(result, np.nan if kind is Kind.NUM else False))
    arr = np.asarray(result)
    if arr.shape != (frame.n_events,):
        raise SelectionError(f"{item.where}: hook {item.item.hook.text!r} returned shape "
                             f"{arr.shape}, expected one value per event ({frame.n_events})")
    if kind is Kind.BOOL:
        return arr.astype(bool)
    return arr.astype(np.float64)


def _mask(item: _Item, frame: Frame) -> npt.NDArray[np.bool_]:
    if item.compiled is None:
        key = f"hook:{item.item.hook.text if item.item.hook else ''}"
        if key not in frame.cache:
            frame.cache[key] = _hook_values(item, frame, Kind.BOOL)
        out: npt.NDArray[np.bool_] = frame.cache[key]
        return out
    return item.compiled.mask(frame)


def _values(item: _Item, frame: Frame) -> Float64Array:
    if item.compiled is None:
        key = f"hookv:{item.item.hook.text if item.item.hook else ''}"
        if key not in frame.cache:
            frame.cache[key] = _hook_values(item, frame, Kind.NUM)
        out: Float64Array = frame.cache[key]
        return out
    return item.compiled.values(frame)


def _record(coll: Collection) -> ak.Array:
    content = ak.contents.RecordArray(
        [ak.contents.NumpyArray(np.asarray(v)) for v in coll.fields.values()],
        list(coll.fields))
    layout = ak.contents.ListOffsetArray(ak.index.Index64(coll.offsets), content)
    return ak.Array(layout)


def _object_keep(coll: Collection, cuts: tuple[Compiled | None, ...], layout_name: str
                 ) -> npt.NDArray[np.bool_] | None:
    """The objects passing every per-object cut (``None``: no cuts)."""
    keep: npt.NDArray[np.bool_] | None = None
    for c in cuts:
        if c is None:
            mask = np.asarray(coll.fields["btag"], dtype=np.float64) > \
                DEFAULT_BTAG_MIN[layout_name]
        else:
            mask = c.mask(ObjectFrame(int(coll.offsets[-1]), coll.fields))
        keep = mask if keep is None else keep & mask
    return keep


def build_frame(chunk: ObjectChunk, cc: CompiledConfig, layout_name: str) -> Frame:
    """Apply object cuts, sort by pT and derive collections for one chunk.

    Base collections are cut first (the cuts are per object) and only the objects kept are
    sorted and gathered, in one pass.
    """
    colls: dict[str, Collection] = {}
    kept: dict[str, tuple[Collection, npt.NDArray[np.bool_] | None]] = {}  # raw, keep
    for name in cc.order:
        source, cuts = cc.objects[name]
        if source == name or source in kept:
            # a base collection, or one derived from it: cut the stored objects (all cuts are
            # per object), sort only those kept
            raw, keep = (chunk.collections[name], None) if source == name else kept[source]
            more = _object_keep(raw, cuts, layout_name)
            keep = more if keep is None else keep if more is None else keep & more
            kept[name] = (raw, keep)
            colls[name] = select_sorted(raw, keep)
            continue
        if source == "electrons+muons" and "electrons" in kept and "muons" in kept:
            (ra, ka), (rb, kb) = kept["electrons"], kept["muons"]
            fields = sorted((set(ra.fields) & set(rb.fields)) - {"flavour"})
            coll = merge_select_sorted(ra, ka, rb, kb, fields, {"flavour": (11.0, 13.0)})
        elif source == "electrons+muons":
            ele, mu = colls["electrons"], colls["muons"]
            fields = sorted((set(ele.fields) & set(mu.fields)) - {"flavour"})
            coll = merge_by_pt(ele, mu, fields, {"flavour": (11.0, 13.0)})
        else:
            coll = colls[source]
        keep = _object_keep(coll, cuts, layout_name)
        if keep is not None:
            coll = filter_objects(coll, keep)
        colls[name] = coll

    def events() -> ak.Array:
        rec: dict[str, Any] = {k: _record(v) for k, v in colls.items()}
        if chunk.met is not None:
            rec["met"] = ak.zip(dict(chunk.met))
        rec["weight"] = chunk.weights
        for k, v in chunk.event_fields.items():
            rec[k] = v
        return ak.Array(rec)

    return Frame(chunk.n_events, colls, chunk.met, chunk.event_fields,
                 events if cc.has_hooks else None)


@dataclass
class RegionsAccumulator:
    """Mutable float64 sums of one work unit (or a merge of several); picklable.

    Attributes:
        hists: Histogram name -> ``(nbins + 2, 2)`` (Σw, Σw²) with flow bins; nominal
            ``region/observable`` and ``region/observable__variation``.
        cut_n: Region -> int64 counts per cutflow entry.
        cut_w: Region -> ``(n_entries, 2)`` (Σw, Σw²).
        cut_var: Region -> ``(n_variations, n_entries)`` Σw of each variation.
        n_events: Events processed.
    """

    hists: dict[str, Float64Array]
    cut_n: dict[str, npt.NDArray[np.int64]]
    cut_w: dict[str, Float64Array]
    cut_var: dict[str, Float64Array]
    n_events: int = 0

    @classmethod
    def empty(cls, config: AnalysisConfig, variations: Sequence[str] = ()) -> RegionsAccumulator:
        """Zero sums for ``config`` and the variation names."""
        hists: dict[str, Float64Array] = {}
        for r in config.regions:
            for o in r.observables:
                empty = config.observables[o].spec.empty
                hists[config.hist_name(r.name, o)] = empty()
                for v in variations:
                    hists[config.hist_name(r.name, o, v)] = empty()
        cut_n = {r.name: np.zeros(len(r.cuts) + 1, dtype=np.int64) for r in config.regions}
        cut_w = {r.name: np.zeros((len(r.cuts) + 1, 2)) for r in config.regions}
        cut_var = {r.name: np.zeros((len(variations), len(r.cuts) + 1))
                   for r in config.regions}
        return cls(hists, cut_n, cut_w, cut_var)

    def fill(self, chunk: ObjectChunk, layout: ObjectLayout, config: AnalysisConfig) -> None:
        """Select the events of one chunk in every region and fill the histograms."""
        cc = compiled(config)
        frame = build_frame(chunk, cc, layout.name)
        w = chunk.weights
        factor: Float64Array | None = None
        for it in () if config.input.unweighted else cc.weights:
            f = _values(it, frame)
            f = np.where(np.isnan(f), 1.0, f)
            factor = f if factor is None else factor * f
        if factor is not None:
            w = w * factor
        var_names = [v.name for v in layout.variations]
        var_w = [chunk.variation_weights[v] * (factor if factor is not None else 1.0)
                 for v in var_names]
        # nominal and variation weights, one row each
        all_w = np.stack([w, *var_w]) if var_w else w[np.newaxis]
        # cumulative selections shared by regions with a common first cuts (computed once)
        prefixes: dict[tuple[str, ...], tuple[Any, int, float, float, list[float]]] = {}

        def sums(sel: Any) -> tuple[Any, int, float, float, list[float]]:
            count, total = masked_sums(sel, all_w)
            return (sel, int(count), float(total[0, 0]), float(total[0, 1]),
                    [float(x) for x in total[1:, 0]])

        for region in config.regions:
            cuts = cc.cuts[region.name]
            n_arr = self.cut_n[region.name]
            w_arr = self.cut_w[region.name]
            v_arr = self.cut_var[region.name]
            key: tuple[str, ...] = ()
            entry = prefixes.get(key)
            if entry is None:
                entry = prefixes[key] = sums(np.ones(chunk.n_events, dtype=bool))
            for k in range(len(cuts) + 1):
                if k > 0:
                    cut = cuts[k - 1]
                    prefix = key
                    key = (*key, cut.compiled.text if cut.compiled is not None
                           else f"hook:{cut.item.hook.text if cut.item.hook else ''}")
                    cached = prefixes.get(key)
                    if cached is None:
                        if entry[1] == 0:  # nothing left to cut
                            cached = prefixes[key] = entry
                        else:  # evaluated for the events passing the previous cuts only
                            frame.set_active(entry[0] if prefix else None, prefix)
                            cached = prefixes[key] = sums(entry[0] & _mask(cut, frame))
                    entry = cached
                n_arr[k] += entry[1]
                w_arr[k, 0] += entry[2]
                w_arr[k, 1] += entry[3]
                for j, s in enumerate(entry[4]):
                    v_arr[j, k] += s
            sel = entry[0]
            idx = np.flatnonzero(sel)
            if idx.size == 0:
                continue
            frame.set_active(sel if key else None, key)
            for obs_name in region.observables:
                obs = config.observables[obs_name]
                x = _values(cc.observables[obs_name], frame)
                sums_w = hist_sums(x, idx, all_w, obs.bins, obs.low, obs.high)
                self.hists[config.hist_name(region.name, obs_name)] += sums_w[0]
                for j, v in enumerate(var_names, start=1):
                    self.hists[config.hist_name(region.name, obs_name, v)] += sums_w[j]
        self.n_events += chunk.n_events

    def merged(self, other: RegionsAccumulator) -> RegionsAccumulator:
        """A new accumulator holding ``self + other``."""
        return RegionsAccumulator(
            {k: v + other.hists[k] for k, v in self.hists.items()},
            {k: v + other.cut_n[k] for k, v in self.cut_n.items()},
            {k: v + other.cut_w[k] for k, v in self.cut_w.items()},
            {k: v + other.cut_var[k] for k, v in self.cut_var.items()},
            self.n_events + other.n_events,
        )


def load_selection_config(path: str | os.PathLike[str]) -> SelectionConfig | AnalysisConfig:
    """Load a selection YAML: an analysis when it has ``regions``, else the dijet selection.

    Raises:
        ConfigError: Schema violation or a bad expression (names the file and the place).
    """
    data = load_yaml(os.fspath(path), "selection")
    return selection_config_from_mapping(data, str(path), Path(path).resolve().parent)


def selection_config_from_mapping(data: dict[str, Any], source: str = "<config>",
                                  base_dir: str | os.PathLike[str] = "."
                                  ) -> SelectionConfig | AnalysisConfig:
    """:func:`load_selection_config` for an already parsed mapping (e.g. a spec's region)."""
    if "regions" in data:
        dijet = sorted({"jets", "histograms"} & set(data))
        if dijet:
            raise ConfigError(f"{source}: {', '.join(dijet)} belong to the dijet selection; an "
                              "analysis with regions uses objects and observables")
        return AnalysisConfig.from_mapping(data, source, base_dir)
    return SelectionConfig.from_mapping(data, source)


#: Keys that make a spec region's selection an analysis selection (with ``cuts``).
_REGION_KEYS = frozenset({"objects", "cuts", "observables", "variations", "event_fields"})


def region_selection_from_mapping(data: Mapping[str, Any], region: str, source: str,
                                  base_dir: str | os.PathLike[str] = "."
                                  ) -> SelectionConfig | AnalysisConfig:
    """The selection of one region of an analysis spec (``$.regions[i].selection``).

    Either the dijet selection (``jets``, ``histograms`` ...), or one region in the vocabulary:
    ``objects``, ``cuts`` (the region's cuts), ``observables``, ``weights``, ``variations``,
    ``event_fields``, ``input``, ``reading``. The latter writes histograms named by the
    observable (``mbb``, ``mbb__<variation>``), one output file per region.

    Raises:
        ConfigError: A ``regions`` key (a spec region is one region: write ``cuts``), schema
            or expression errors (naming ``source``).
    """
    doc = dict(data)
    if "regions" in doc:
        raise ConfigError(f"{source}: a region of the analysis spec is one region: give its "
                          "cuts as 'cuts', not 'regions'")
    if _REGION_KEYS & set(doc) or "factors" in (doc.get("weights") or {}):
        cuts = doc.pop("cuts", [])
        doc["regions"] = {region: {"cuts": cuts}}
        return AnalysisConfig.from_mapping(doc, source, base_dir, single_region=True)
    return SelectionConfig.from_mapping(doc, source)


def combine_regions(configs: Mapping[str, SelectionConfig | AnalysisConfig]
                    ) -> AnalysisConfig | None:
    """One configuration selecting several single-region configurations in one pass.

    Returns ``None`` unless there are at least two, all written in the vocabulary and equal but
    for their cuts (same objects, observables, weights, variations, input, reading).
    """
    cfgs = list(configs.values())
    if len(cfgs) < 2 or not all(isinstance(c, AnalysisConfig) for c in cfgs):
        return None
    first = cfgs[0]
    assert isinstance(first, AnalysisConfig)

    def rest(c: AnalysisConfig) -> dict[str, Any]:
        return {k: v for k, v in c.raw.items() if k != "regions"}

    common = rest(first)
    regions: dict[str, Any] = {}
    for name, c in configs.items():
        assert isinstance(c, AnalysisConfig)
        if rest(c) != common or c.base_dir != first.base_dir or c.input != first.input \
                or c.reading != first.reading or list(c.raw.get("regions", {})) != [name]:
            return None
        regions[name] = c.raw["regions"][name]
    return AnalysisConfig.from_mapping({**common, "regions": regions}, first.source,
                                       first.base_dir)
