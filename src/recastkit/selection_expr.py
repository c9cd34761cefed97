"""The expression vocabulary of region cuts, observables, weights and per-object cuts.

An expression is a Python expression parsed with :mod:`ast` and checked against a whitelist:
only the names, functions and operators below are accepted, attribute access only reads object
fields, and nothing is ever ``eval``-ed. It is compiled once into a tree of operations over a
whole chunk of events (numba kernels on the collections' offsets and flat arrays, numpy for
elementwise arithmetic; no per-event Python), with common sub-expressions (``bjets[0]`` in
several cuts; ``m(leptons[0:2])`` and ``pt(leptons[0] + leptons[1])`` share one sum) computed
once per chunk. Objects, sums and their kinematics are computed only for the events passing the
cuts before the one being evaluated (see :class:`_Memo`).

Event-level vocabulary (region cuts, observables, weights):

- collections: ``jets``, ``bjets``, ``electrons``, ``muons``, ``photons``, ``leptons`` and any
  collection defined under ``objects``; always sorted by decreasing pT (the stored order is
  never trusted), after their object cuts;
- ``n(c)``: number of objects; ``c[i]``: the i-th leading object; ``c[i:j]``: the four-vector
  sum of objects i..j-1; ``a + b``: four-vector sum of objects/sums;
- ``m(x)``, ``pt(x)``, ``eta(x)``, ``phi(x)``, ``e(x)`` of an object or a sum;
  ``dr(a, b)``, ``dphi(a, b)`` (|Δφ| in [0, π]) between objects or sums;
- ``c[i].field`` (``pt``, ``eta``, ``phi``, ``mass`` (or ``m``), ``charge``, ``flavour``
  (11 electron, 13 muon), ``btag``, or any stored field of the collection);
- ``sum(c.field)``, ``max(c.field)``, ``min(c.field)`` over the objects of each event
  (``sum(jets.pt)`` is H_T; the sum of no objects is 0, the max/min of none is missing);
- ``met`` (its magnitude in GeV; ``met.phi``; usable in ``dphi(met, jets[0])``);
- event fields named under ``event_fields`` (scalar branches);
- numbers, ``+ - * / ** %``, comparisons (chains allowed), ``and``, ``or``, ``not``,
  ``abs(x)``, ``sqrt(x)``, ``log(x)``, ``min(a, b)``, ``max(a, b)``.

Per-object cuts (``objects.<name>.cuts``) use the same operators and functions, with the
object's fields as names (``pt > 25 and abs(eta) < 2.5``, ``btag > 0.3``, ``id_medium``).

Missing values: an object index beyond the number of objects (``bjets[1]`` in an event with
one b-jet), a slice reaching beyond it, or the max/min of no objects is *missing*. Arithmetic
on a missing value is missing; a comparison involving a missing value is neither true nor
false, and ``and``/``or``/``not`` follow three-valued (Kleene) logic: ``missing or true`` is
true, ``missing and false`` is false, ``not missing`` is missing. A cut passes only when its
value is true, so a cut on a missing value fails (``not`` included). An observable that is
missing in a selected event is not filled (its histogram's Σw is then below the region's). A
weight factor that is missing counts as 1.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from recastkit.exceptions import ConfigError
from recastkit.io.objects import Collection

Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Four-momentum fields, always available on every collection.
KINEMATIC_FIELDS: tuple[str, ...] = ("pt", "eta", "phi", "mass")
#: Field aliases accepted in expressions.
FIELD_ALIASES: dict[str, str] = {"m": "mass"}
#: Functions of the event-level vocabulary.
EVENT_FUNCTIONS: tuple[str, ...] = ("n", "m", "pt", "eta", "phi", "e", "dr", "dphi", "sum",
                                    "max", "min", "abs", "sqrt", "log")
#: Functions of per-object cuts.
OBJECT_FUNCTIONS: tuple[str, ...] = ("abs", "sqrt", "log", "min", "max")


class Kind(Enum):
    """What an expression node evaluates to."""

    NUM = "number"
    BOOL = "condition"
    COLL = "collection"
    JAGGED = "per-object values"
    OBJ = "object"
    VEC = "four-vector sum"


@dataclass
class Obj:
    """The i-th object of a collection in every event (NaN fields where an event has fewer).

    Fields are taken from the collection by one compiled pass per field (and cached), never
    through a per-event index array.
    """

    coll: Collection | None
    position: int
    fields: Mapping[str, Float64Array] | None = None  # per-event fields (MET)
    active: BoolArray = field(default_factory=lambda: _ALL)  # events computed (empty: all)
    _got: dict[str, Float64Array] = field(default_factory=dict)
    _vec: Vec | None = None

    def get(self, name: str, n: int) -> Float64Array:
        """Per-event values of field ``name`` (NaN where the object is missing; cached)."""
        if self.fields is not None:
            if name in self.fields:
                return self.fields[name]
            if name in ("eta", "mass"):
                return np.zeros(n)
            raise KeyError(name)
        out = self._got.get(name)
        if out is not None:
            return out
        assert self.coll is not None
        got: Float64Array = _take(self.coll.offsets, self.coll.fields[name], self.position,
                                  self.active)
        self._got[name] = got
        return got

    def vec(self, n: int) -> Vec:
        """The four-vector (computed once)."""
        if self._vec is None:
            if self.fields is not None:
                pt, phi = self.get("pt", n), self.get("phi", n)
                px, py = pt * np.cos(phi), pt * np.sin(phi)
                self._vec = Vec(px, py, np.zeros(n), pt.copy())
            else:
                assert self.coll is not None
                f = self.coll.fields
                self._vec = Vec(*_element_p4(self.coll.offsets, f["pt"], f["eta"], f["phi"],
                                             f["mass"], self.position, self.active))
        return self._vec


@dataclass
class Vec:
    """Per-event Cartesian four-vectors (NaN where missing)."""

    px: Float64Array
    py: Float64Array
    pz: Float64Array
    e: Float64Array


#: The "every event is active" marker handed to kernels (an empty mask).
_ALL: BoolArray = np.zeros(0, dtype=bool)


@dataclass(kw_only=True)
class _Memo:
    """Values of evaluated sub-expressions, valid for the events they were computed on.

    Expensive values (objects, four-vector sums, their fields) are computed only for the
    *active* events: those passing the cuts named by ``active_key`` (the cumulative cuts of the
    region being evaluated). A value computed under a key is valid for every key extending it
    (a subset of its events), so the three regions of an analysis sharing a preselection share
    its values. Elsewhere it may be NaN: every expression is per event, and values of inactive
    events are never used (cuts are combined with the active mask, histograms fill a subset).
    """

    active: BoolArray | None = None
    active_key: tuple[str, ...] = ()
    memo: dict[str, list[tuple[tuple[str, ...], Any]]] = field(default_factory=dict)

    def set_active(self, mask: BoolArray | None, key: tuple[str, ...]) -> None:
        """Evaluate from now on for the events of ``mask`` (``None``: all), named ``key``."""
        self.active = mask
        self.active_key = key

    @property
    def active_mask(self) -> BoolArray:
        """The active mask for kernels (empty: every event)."""
        return _ALL if self.active is None else self.active

    def recall(self, key: str) -> Any:
        """The value of ``key`` valid for the active events, or ``None``."""
        entries = self.memo.get(key)
        if entries:
            cur = self.active_key
            for where, value in entries:
                if cur[:len(where)] == where:
                    return value
        return None

    def keep(self, key: str, value: Any, every: bool = False) -> None:
        """Remember ``value`` of ``key``, computed for the active events (or ``every`` one)."""
        self.memo.setdefault(key, []).append(((), value) if every else (self.active_key, value))


@dataclass
class Frame(_Memo):
    """The values an expression is evaluated on: one chunk's collections after object cuts.

    Attributes:
        n_events: Events in the chunk.
        collections: Name -> sorted :class:`Collection`.
        met: MET fields per event (``pt``, ``phi``), if read.
        event_fields: Scalar per-event values by name.
        hook_events: Builds the awkward record array handed to Python hooks.
        cache: Values of Python hooks (by hook reference), for every event.
    """

    n_events: int
    collections: Mapping[str, Collection]
    met: Mapping[str, Float64Array] | None = None
    event_fields: Mapping[str, npt.NDArray[Any]] = field(default_factory=dict)
    hook_events: Callable[[], Any] | None = None
    cache: dict[str, Any] = field(default_factory=dict)
    _events: Any = None

    def events(self) -> Any:
        """The awkward record array of the chunk's objects (built once, for hooks)."""
        if self._events is None:
            if self.hook_events is None:
                raise ConfigError("internal: no event record for hooks")
            self._events = self.hook_events()
        return self._events


@dataclass
class ObjectFrame(_Memo):
    """Per-object cut evaluation: flat field arrays of one collection."""

    n_events: int  # number of objects here
    fields: Mapping[str, npt.NDArray[Any]]
    cache: dict[str, Any] = field(default_factory=dict)


Evaluator = Callable[[Any], Any]


@dataclass(frozen=True)
class Compiled:
    """A compiled expression.

    Attributes:
        text: The source text.
        kind: What it evaluates to.
        fn: ``fn(frame)`` -> value (see :class:`Kind`).
        uses: Collection name -> fields read (``met`` included); for per-object cuts the
            fields of the object.
        event_fields: Event-level field names used.
    """

    text: str
    kind: Kind
    fn: Evaluator
    uses: Mapping[str, frozenset[str]]
    event_fields: frozenset[str] = frozenset()

    def mask(self, frame: Any) -> BoolArray:
        """Evaluate a condition: true where it holds (missing -> false)."""
        value, valid = as_bool(self.fn(frame), self.kind)
        out: BoolArray = _per_event(value & valid, frame.n_events)
        return out

    def values(self, frame: Any) -> Float64Array:
        """Evaluate a number per event (NaN where missing)."""
        out: Float64Array = _per_event(as_num(self.fn(frame), self.kind, frame), frame.n_events)
        return out


def _per_event(value: Any, n: int) -> Any:
    """``value`` as a read-only view with one entry per event (a constant broadcast)."""
    if isinstance(value, np.ndarray) and value.shape == (n,):
        out = value.view()
        out.flags.writeable = False
        return out
    return np.broadcast_to(value, (n,))


class ExpressionError(ConfigError):
    """An expression that does not parse or uses something outside the vocabulary."""


# --------------------------------------------------------------------------- numba helpers


@numba.njit(cache=True, nogil=True)
def _sort_perm(offsets: Any, pt: Any) -> Any:  # pragma: no cover - compiled
    """Permutation sorting each event's objects by decreasing pT (stable; NaN last)."""
    perm = np.arange(pt.shape[0])
    for ev in range(offsets.shape[0] - 1):
        s = offsets[ev]
        e = offsets[ev + 1]
        for i in range(s + 1, e):
            k = perm[i]
            v = pt[k]
            if np.isnan(v):
                v = -np.inf
            j = i - 1
            while j >= s:
                u = pt[perm[j]]
                if np.isnan(u):
                    u = -np.inf
                if u >= v:
                    break
                perm[j + 1] = perm[j]
                j -= 1
            perm[j + 1] = k
    return perm


@numba.njit(cache=True, nogil=True)
def _merge_perm(oa: Any, pa: Any, ob: Any, pb: Any) -> Any:  # pragma: no cover - compiled
    """Merge two pT-sorted jagged collections: (offsets, from_b, index) of the result."""
    n = oa.shape[0] - 1
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[0] = 0
    total = pa.shape[0] + pb.shape[0]
    from_b = np.empty(total, dtype=np.bool_)
    index = np.empty(total, dtype=np.int64)
    k = 0
    for ev in range(n):
        i = oa[ev]
        ie = oa[ev + 1]
        j = ob[ev]
        je = ob[ev + 1]
        while i < ie or j < je:
            take_b = False
            if i >= ie:
                take_b = True
            elif j < je:
                va = pa[i]
                vb = pb[j]
                if np.isnan(va):
                    va = -np.inf
                if np.isnan(vb):
                    vb = -np.inf
                take_b = vb > va
            if take_b:
                from_b[k] = True
                index[k] = j
                j += 1
            else:
                from_b[k] = False
                index[k] = i
                i += 1
            k += 1
        offsets[ev + 1] = k
    return offsets, from_b, index


@numba.njit(cache=True, nogil=True)
def _merge_select_sort(  # noqa: PLR0917 - numba kernels take positional arguments
        oa: Any, keep_a: Any, pa: Any, ob: Any, keep_b: Any, pb: Any,
) -> Any:  # pragma: no cover - compiled
    """The kept objects of a and b, each event's in decreasing pT: (offsets, from_b, index).

    A stable sort of each event's kept a-objects followed by its kept b-objects (NaN pT last),
    which is the merge (:func:`_merge_perm`) of a and b each sorted: a first on ties.
    ``index`` points into a's or b's stored objects.
    """
    n = oa.shape[0] - 1
    total = 0
    for i in range(keep_a.shape[0]):
        if keep_a[i]:
            total += 1
    for i in range(keep_b.shape[0]):
        if keep_b[i]:
            total += 1
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[0] = 0
    from_b = np.empty(total, dtype=np.bool_)
    index = np.empty(total, dtype=np.int64)
    k = 0
    for ev in range(n):
        s = k
        for side in range(2):
            lo = ob[ev] if side else oa[ev]
            hi = ob[ev + 1] if side else oa[ev + 1]
            for i in range(lo, hi):
                if not (keep_b[i] if side else keep_a[i]):
                    continue
                v = pb[i] if side else pa[i]
                if np.isnan(v):
                    v = -np.inf
                j = k - 1
                while j >= s:
                    u = pb[index[j]] if from_b[j] else pa[index[j]]
                    if np.isnan(u):
                        u = -np.inf
                    if u >= v:
                        break
                    from_b[j + 1] = from_b[j]
                    index[j + 1] = index[j]
                    j -= 1
                from_b[j + 1] = side == 1
                index[j + 1] = i
                k += 1
        offsets[ev + 1] = k
    return offsets, from_b, index


@numba.njit(cache=True, nogil=True)
def _segment_reduce(offsets: Any, values: Any, op: int) -> Any:  # pragma: no cover
    """Per-event sum (op 0), max (1) or min (2); max/min of no objects is NaN."""
    n = offsets.shape[0] - 1
    out = np.empty(n, dtype=np.float64)
    for ev in range(n):
        s = offsets[ev]
        e = offsets[ev + 1]
        if op == 0:
            acc = 0.0
            for i in range(s, e):
                acc += values[i]
            out[ev] = acc
        elif s == e:
            out[ev] = np.nan
        else:
            acc = np.float64(values[s])
            for i in range(s + 1, e):
                v = np.float64(values[i])
                if (op == 1 and v > acc) or (op == 2 and v < acc):
                    acc = v
            out[ev] = acc
    return out


# --------------------------------------------------------------------------- collection ops


def sort_by_pt(coll: Collection) -> Collection:
    """The collection with each event's objects in decreasing pT (stable; NaN last)."""
    if coll.fields["pt"].size == 0:
        return coll
    perm = _sort_perm(coll.offsets, coll.fields["pt"])
    return Collection(coll.offsets, {k: v[perm] for k, v in coll.fields.items()})


class GatheredFields(Mapping[str, npt.NDArray[Any]]):
    """Fields ``base[name][index]``, each gathered on first access only (then kept).

    A selection of a selection composes the indices, so a derived collection gathers its
    fields straight from the chunk's arrays, and fields nobody reads are never gathered. The
    index itself may be computed on first use (``make_index``: the pT ordering of a
    collection of which only the number of objects is used is never computed).
    """

    def __init__(self, base: Mapping[str, npt.NDArray[Any]],
                 index: npt.NDArray[np.int64] | None = None,
                 make_index: Callable[[], npt.NDArray[np.int64]] | None = None) -> None:
        self.base = base
        self._index = index
        self._make_index = make_index
        self._got: dict[str, npt.NDArray[Any]] = {}

    @property
    def index(self) -> npt.NDArray[np.int64]:
        """Positions of these objects in ``base``."""
        if self._index is None:
            assert self._make_index is not None
            self._index = self._make_index()
        return self._index

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        out = self._got.get(name)
        if out is None:
            out = self._got[name] = self.base[name][self.index]
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(self.base)

    def __len__(self) -> int:
        return len(self.base)

    def select(self, idx: npt.NDArray[np.int64]) -> GatheredFields:
        """The fields of the objects ``idx`` of these."""
        return GatheredFields(self.base, self.index[idx])


def _gathered(fields: Mapping[str, npt.NDArray[Any]], idx: npt.NDArray[np.int64]
              ) -> GatheredFields:
    if isinstance(fields, GatheredFields):
        return fields.select(idx)
    return GatheredFields(fields, idx)


def _kept_offsets(offsets: npt.NDArray[np.int64], keep: BoolArray) -> npt.NDArray[np.int64]:
    cs = np.zeros(keep.size + 1, dtype=np.int64)
    np.cumsum(keep, out=cs[1:])
    out: npt.NDArray[np.int64] = cs[offsets]
    return out


def select_sorted(coll: Collection, keep: BoolArray | None) -> Collection:
    """The objects where ``keep`` is true (all if ``None``), each event's in decreasing pT.

    Equal to ``filter_objects(sort_by_pt(coll), keep)`` (both orders are stable). The offsets
    are computed at once; the ordering when a field is first read, and each field then
    (:class:`GatheredFields`).
    """
    pt = coll.fields["pt"]
    mask = np.ones(pt.size, dtype=bool) if keep is None else keep
    offsets = coll.offsets if keep is None else _kept_offsets(coll.offsets, mask)

    def perm() -> npt.NDArray[np.int64]:
        out: npt.NDArray[np.int64] = _select_sort(coll.offsets, mask, pt)[1]
        return out

    base = coll.fields
    if isinstance(base, GatheredFields):  # a selection of a selection: sort now, compose
        return Collection(offsets, base.select(perm()))
    return Collection(offsets, GatheredFields(base, make_index=perm))


def filter_objects(coll: Collection, keep: BoolArray) -> Collection:
    """Objects where ``keep`` is true (order kept; fields gathered when first read)."""
    if keep.all():
        return coll
    offsets = _kept_offsets(coll.offsets, keep)
    idx = np.flatnonzero(keep)
    return Collection(offsets, _gathered(coll.fields, idx))


def merge_by_pt(a: Collection, b: Collection, fields: Sequence[str],
                constants: Mapping[str, tuple[float, float]] | None = None) -> Collection:
    """Merge two pT-sorted collections into one pT-sorted collection of ``fields`` (float64).

    ``constants``: field -> (value for a's objects, value for b's), e.g. the lepton flavour.
    """
    offsets, from_b, index = _merge_perm(a.offsets, a.fields["pt"], b.offsets, b.fields["pt"])
    # read the fields of lazily gathered collections at their source (no gather of a or b)
    fa, fb = a.fields, b.fields
    if isinstance(fa, GatheredFields) or isinstance(fb, GatheredFields):
        ia = fa.index if isinstance(fa, GatheredFields) else None
        ib = fb.index if isinstance(fb, GatheredFields) else None
        index = _compose(from_b, index, np.arange(0) if ia is None else ia,
                         np.arange(0) if ib is None else ib)
        fa = fa.base if isinstance(fa, GatheredFields) else fa
        fb = fb.base if isinstance(fb, GatheredFields) else fb
    out = {name: _merge_take(from_b, index, fa[name], fb[name]) for name in fields}
    for name, (va, vb) in (constants or {}).items():
        out[name] = np.where(from_b, vb, va)
    return Collection(offsets, {k: out[k] for k in sorted(out)})


def merge_select_sorted(  # noqa: PLR0917
        a: Collection, keep_a: BoolArray | None, b: Collection, keep_b: BoolArray | None,
        fields: Sequence[str], constants: Mapping[str, tuple[float, float]] | None = None,
) -> Collection:
    """``merge_by_pt(select_sorted(a, keep_a), select_sorted(b, keep_b), ...)`` in one pass.

    Fields (float64) are read straight from a's and b's stored arrays; ``constants`` as in
    :func:`merge_by_pt`.
    """
    ka = np.ones(a.fields["pt"].size, dtype=bool) if keep_a is None else keep_a
    kb = np.ones(b.fields["pt"].size, dtype=bool) if keep_b is None else keep_b
    offsets, from_b, index = _merge_select_sort(a.offsets, ka, a.fields["pt"], b.offsets, kb,
                                                b.fields["pt"])
    out = {name: _merge_take(from_b, index, a.fields[name], b.fields[name]) for name in fields}
    for name, (va, vb) in (constants or {}).items():
        out[name] = np.where(from_b, vb, va)
    return Collection(offsets, {k: out[k] for k in sorted(out)})


@numba.njit(cache=True, nogil=True)
def _take(offsets: Any, values: Any, i: int, active: Any) -> Any:  # pragma: no cover
    """Field of each event's i-th object as float64 (NaN where the event has fewer).

    Only for the ``active`` events (an empty mask: all); NaN elsewhere.
    """
    n = offsets.shape[0] - 1
    every = active.shape[0] == 0
    out = np.empty(n)
    for ev in range(n):
        k = offsets[ev] + i
        if k < offsets[ev + 1] and (every or active[ev]):
            out[ev] = np.float64(values[k])
        else:
            out[ev] = np.nan
    return out


@numba.njit(cache=True, nogil=True)
def _element_p4(  # noqa: PLR0917 - numba kernels take positional arguments
        offsets: Any, pt: Any, eta: Any, phi: Any, mass: Any, i: int, active: Any,
) -> Any:  # pragma: no cover - compiled
    """(px, py, pz, E) of each event's i-th object (NaN where missing).

    ``px = pt cos(phi)``, ``py = pt sin(phi)``, ``pz = pt sinh(eta)``,
    ``E = sqrt(px² + py² + pz² + m²)``, in float64.

    Only for the ``active`` events (an empty mask: all); NaN elsewhere.
    """
    n = offsets.shape[0] - 1
    every = active.shape[0] == 0
    px = np.empty(n)
    py = np.empty(n)
    pz = np.empty(n)
    e = np.empty(n)
    for ev in range(n):
        k = offsets[ev] + i
        if k < offsets[ev + 1] and (every or active[ev]):
            p = np.float64(pt[k])
            f = np.float64(phi[k])
            x = p * math.cos(f)
            y = p * math.sin(f)
            z = p * math.sinh(np.float64(eta[k]))
            m = np.float64(mass[k])
            px[ev] = x
            py[ev] = y
            pz[ev] = z
            e[ev] = math.sqrt(x * x + y * y + z * z + m * m)
        else:
            px[ev] = np.nan
            py[ev] = np.nan
            pz[ev] = np.nan
            e[ev] = np.nan
    return px, py, pz, e


@numba.njit(cache=True, nogil=True)
def _sum_p4(  # noqa: PLR0917
        offsets: Any, pt: Any, eta: Any, phi: Any, mass: Any, positions: Any, active: Any,
) -> Any:  # pragma: no cover - compiled
    """(px, py, pz, E) of ``c[p0] + c[p1] + ...`` added left to right (NaN if one is missing).

    Each object's four-vector as :func:`_element_p4`, the sum in the order of :func:`_add`;
    only for the ``active`` events (an empty mask: all), NaN elsewhere.
    """
    n = offsets.shape[0] - 1
    every = active.shape[0] == 0
    px = np.full(n, np.nan)
    py = np.full(n, np.nan)
    pz = np.full(n, np.nan)
    e = np.full(n, np.nan)
    for ev in range(n):
        if not (every or active[ev]):
            continue
        s = offsets[ev]
        count = offsets[ev + 1] - s
        ok = True
        for p in positions:
            if p >= count:
                ok = False
        if not ok:
            continue
        sx = 0.0
        sy = 0.0
        sz = 0.0
        se = 0.0
        for j in range(positions.shape[0]):
            k = s + positions[j]
            q = np.float64(pt[k])
            f = np.float64(phi[k])
            x = q * math.cos(f)
            y = q * math.sin(f)
            z = q * math.sinh(np.float64(eta[k]))
            m = np.float64(mass[k])
            en = math.sqrt(x * x + y * y + z * z + m * m)
            if j == 0:
                sx = x
                sy = y
                sz = z
                se = en
            else:
                sx = sx + x
                sy = sy + y
                sz = sz + z
                se = se + en
        px[ev] = sx
        py[ev] = sy
        pz[ev] = sz
        e[ev] = se
    return px, py, pz, e


@numba.njit(cache=True, nogil=True)
def _mass_kernel(px: Any, py: Any, pz: Any, e: Any, active: Any) -> Any:  # pragma: no cover
    """sqrt(max(E² - p², 0)) in one pass (NaN stays NaN), the operations of numpy's order.

    Only for the ``active`` events (an empty mask: all); NaN elsewhere.
    """
    n = px.shape[0]
    every = active.shape[0] == 0
    out = np.empty(n)
    for i in range(n):
        if not (every or active[i]):
            out[i] = np.nan
            continue
        m2 = e[i] * e[i] - px[i] * px[i] - py[i] * py[i] - pz[i] * pz[i]
        if np.isnan(m2):
            out[i] = np.nan
        elif m2 >= 0.0:
            out[i] = math.sqrt(m2)
        else:
            out[i] = 0.0
    return out


@numba.njit(cache=True, nogil=True)
def _compare(u: Any, v: Any, op: int) -> Any:  # pragma: no cover - compiled
    """``(u op v and both present, both present)`` with NaN missing; one value broadcasts.

    ``op``: 0 <, 1 <=, 2 >, 3 >=, 4 ==, 5 !=.
    """
    nu = u.shape[0]
    nv = v.shape[0]
    n = nv if nu == 1 else nu
    value = np.empty(n, dtype=np.bool_)
    ok = np.empty(n, dtype=np.bool_)
    for i in range(n):
        a = u[0] if nu == 1 else u[i]
        b = v[0] if nv == 1 else v[i]
        good = not (np.isnan(a) or np.isnan(b))
        if op == 0:
            r = a < b
        elif op == 1:
            r = a <= b
        elif op == 2:
            r = a > b
        elif op == 3:
            r = a >= b
        elif op == 4:
            r = a == b
        else:
            r = a != b
        ok[i] = good
        value[i] = r and good
    return value, ok


@numba.njit(cache=True, nogil=True)
def _pt_kernel(px: Any, py: Any, active: Any) -> Any:  # pragma: no cover - compiled
    """hypot(px, py) (as ``np.hypot``) for the ``active`` events (empty: all), NaN elsewhere."""
    n = px.shape[0]
    every = active.shape[0] == 0
    out = np.empty(n)
    for i in range(n):
        out[i] = math.hypot(px[i], py[i]) if every or active[i] else np.nan
    return out


@numba.njit(cache=True, nogil=True)
def masked_sums(sel: Any, weights: Any) -> Any:  # pragma: no cover - compiled
    """Events where ``sel`` holds, and per row of ``weights`` Σw and Σw² over them.

    Sums are taken in blocks of 4096 events (partial sums added), rounding error ~1e-13.
    """
    k = weights.shape[0]
    n = sel.shape[0]
    total = np.zeros((k, 2))
    part = np.zeros((k, 2))
    count = 0
    for start in range(0, n, 4096):
        part[:] = 0.0
        for i in range(start, min(start + 4096, n)):
            if sel[i]:
                count += 1
                for j in range(k):
                    wv = weights[j, i]
                    part[j, 0] += wv
                    part[j, 1] += wv * wv
        total += part
    return count, total


@numba.njit(cache=True, nogil=True)
def _compose(from_b: Any, index: Any, ia: Any, ib: Any) -> Any:  # pragma: no cover - compiled
    """``index`` of a merge mapped through a's and b's own indices (empty: identity)."""
    out = np.empty_like(index)
    for k in range(index.shape[0]):
        j = index[k]
        if from_b[k]:
            out[k] = ib[j] if ib.shape[0] else j
        else:
            out[k] = ia[j] if ia.shape[0] else j
    return out


@numba.njit(cache=True, nogil=True)
def _merge_take(from_b: Any, index: Any, fa: Any, fb: Any) -> Any:  # pragma: no cover
    """Field values of a merge (:func:`_merge_perm`) as float64."""
    n = index.shape[0]
    out = np.empty(n)
    for k in range(n):
        if from_b[k]:
            out[k] = np.float64(fb[index[k]])
        else:
            out[k] = np.float64(fa[index[k]])
    return out


@numba.njit(cache=True, nogil=True)
def _select_sort(offsets: Any, keep: Any, pt: Any) -> Any:  # pragma: no cover - compiled
    """(offsets, index) of the kept objects, each event's in decreasing pT (stable; NaN last)."""
    n = offsets.shape[0] - 1
    total = 0
    for i in range(keep.shape[0]):
        if keep[i]:
            total += 1
    out_offsets = np.empty(n + 1, dtype=np.int64)
    out_offsets[0] = 0
    perm = np.empty(total, dtype=np.int64)
    k = 0
    for ev in range(n):
        s = k
        for i in range(offsets[ev], offsets[ev + 1]):
            if not keep[i]:
                continue
            v = pt[i]
            if np.isnan(v):
                v = -np.inf
            j = k - 1
            while j >= s:
                u = pt[perm[j]]
                if np.isnan(u):
                    u = -np.inf
                if u >= v:
                    break
                perm[j + 1] = perm[j]
                j -= 1
            perm[j + 1] = i
            k += 1
        out_offsets[ev + 1] = k
    return out_offsets, perm


@numba.njit(cache=True, nogil=True)
def hist_sums(  # noqa: PLR0917
        x: Any, idx: Any, weights: Any, nbins: int, low: float, high: float,
) -> Any:  # pragma: no cover - compiled
    """(Σw, Σw²) per bin (with flow) of ``x[idx]`` for every row of ``weights``.

    Binning as :func:`hist_bins`; NaN values are not filled. Sums start from zero and add in
    event order (``np.bincount``'s order).
    """
    k = weights.shape[0]
    out = np.zeros((k, nbins + 2, 2))
    width = high - low
    for i in idx:
        v = x[i]
        if np.isnan(v):
            continue
        z = (v - low) / width
        if z < 0:
            b = 0
        elif z >= 1:
            b = nbins + 1
        else:
            b = int(z * nbins) + 1
        for j in range(k):
            wv = weights[j, i]
            out[j, b, 0] += wv
            out[j, b, 1] += wv * wv
    return out


def _element(coll: Collection, i: int, frame: Any) -> Obj:
    return Obj(coll, i, active=frame.active_mask)


def _element_cached(frame: Any, key: str, coll: Collection, i: int) -> Obj:
    """The element ``key[i]`` shared through the frame's memo (same key as ``c[i]`` nodes)."""
    k = f"{key}[{i}]"
    obj = frame.recall(k)
    if obj is None:
        obj = _element(coll, i, frame)
        frame.keep(k, obj)
    return obj  # type: ignore[no-any-return]


def _sum_terms(frame: Any, terms: tuple[tuple[str, int], ...]) -> Vec:
    """The four-vector sum of the objects ``terms`` ((collection, position), left to right)."""
    names = {c for c, _ in terms}
    if len(names) == 1:
        coll = frame.collections[terms[0][0]]
        f = coll.fields
        positions = np.array([i for _, i in terms], dtype=np.int64)
        return Vec(*_sum_p4(coll.offsets, f["pt"], f["eta"], f["phi"], f["mass"], positions,
                            frame.active_mask))
    n = frame.n_events
    c0, i0 = terms[0]
    total = _element_cached(frame, c0, frame.collections[c0], i0).vec(n)
    for c, i in terms[1:]:
        total = _add(total, _element_cached(frame, c, frame.collections[c], i).vec(n))
    return total


def _vec_of(x: Obj | Vec, n: int) -> Vec:
    if isinstance(x, Vec):
        return x
    return x.vec(n)


def _add(a: Vec, b: Vec) -> Vec:
    return Vec(a.px + b.px, a.py + b.py, a.pz + b.pz, a.e + b.e)


def _slice(frame: Any, key: str, coll: Collection, lo: int, hi: int) -> Vec:
    n = frame.n_events
    if hi <= lo:
        nan = np.full(n, np.nan)
        return Vec(nan, nan, nan, nan)
    total = _vec_of(_element_cached(frame, key, coll, lo), n)
    for i in range(lo + 1, hi):
        total = _add(total, _vec_of(_element_cached(frame, key, coll, i), n))
    return total


def _mass(v: Vec, active: BoolArray = _ALL) -> Float64Array:
    out: Float64Array = _mass_kernel(v.px, v.py, v.pz, v.e, active)
    return out


def _pt(v: Vec, active: BoolArray = _ALL) -> Float64Array:
    out: Float64Array = _pt_kernel(v.px, v.py, active)
    return out


def _eta(v: Vec) -> Float64Array:
    pt = _pt(v)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.arcsinh(v.pz / pt)


def _phi(v: Vec) -> Float64Array:
    return np.arctan2(v.py, v.px)


def _dphi(a: Float64Array, b: Float64Array) -> Float64Array:
    d = np.abs(np.mod(a - b + np.pi, 2 * np.pi) - np.pi)
    return d


def as_bool(value: Any, kind: Kind) -> tuple[BoolArray, BoolArray]:
    """A condition's ``(value, valid)`` arrays."""
    if kind is Kind.BOOL:
        v, ok = value
        return v, ok
    raise ExpressionError(f"internal: expected a condition, got {kind.value}")


def as_num(value: Any, kind: Kind, frame: Any) -> Float64Array:
    """A number per event (``met`` as its magnitude; a condition as 1/0, missing NaN)."""
    if kind is Kind.NUM:
        return np.asarray(value, dtype=np.float64)
    if kind is Kind.OBJ and isinstance(value, Obj) and value.fields is not None:
        return value.get("pt", frame.n_events)
    if kind is Kind.BOOL:
        v, ok = value
        out: Float64Array = np.where(ok, np.asarray(v, dtype=np.float64), np.nan)
        return out
    raise ExpressionError(f"internal: expected a number, got {kind.value}")


# --------------------------------------------------------------------------- compiler


@dataclass(frozen=True)
class Scope:
    """Names an expression may use.

    Attributes:
        collections: Collection names (event scope).
        event_fields: Scalar event field names.
        object_fields: Field names of the object (object scope); ``None`` for event scope.
        has_met: Whether ``met`` is available.
    """

    collections: frozenset[str] = frozenset()
    event_fields: frozenset[str] = frozenset()
    object_fields: frozenset[str] | None = None
    has_met: bool = True

    def names(self) -> list[str]:
        """Every name available, for error messages."""
        if self.object_fields is not None:
            return sorted(self.object_fields) + [f"{f}()" for f in OBJECT_FUNCTIONS]
        out = sorted(self.collections) + (["met"] if self.has_met else [])
        out += sorted(self.event_fields)
        return out + [f"{f}()" for f in EVENT_FUNCTIONS]


@dataclass
class _Node:
    kind: Kind
    fn: Evaluator
    key: str
    uses: dict[str, set[str]]
    events: set[str]
    const: Any = None
    coll: str | None = None
    #: A sum of objects added left to right ((collection, position), ...); one object for
    #: ``c[i]``. Such sums are computed by one kernel and share one key however written
    #: (``c[0:2]`` and ``c[0] + c[1]``).
    terms: tuple[tuple[str, int], ...] | None = None


def _terms_key(terms: tuple[tuple[str, int], ...]) -> str:
    return "p4sum(" + ", ".join(f"{c}[{i}]" for c, i in terms) + ")"


def _merge_uses(*nodes: _Node) -> tuple[dict[str, set[str]], set[str]]:
    uses: dict[str, set[str]] = {}
    events: set[str] = set()
    for nd in nodes:
        for k, v in nd.uses.items():
            uses.setdefault(k, set()).update(v)
        events |= nd.events
    return uses, events


def _memo(key: str, fn: Evaluator, every: bool = False) -> Evaluator:
    """``fn`` evaluated once per chunk and active events (``every``: once per chunk, a value
    computed for every event whatever the active ones)."""
    def run(frame: Any) -> Any:
        value = frame.recall(key)
        if value is None:
            value = fn(frame)
            frame.keep(key, value, every)
        return value
    return run


#: Comparison operator -> code of :func:`_compare`.
_CMP_CODES: dict[type[ast.cmpop], int] = {
    ast.Lt: 0, ast.LtE: 1, ast.Gt: 2, ast.GtE: 3, ast.Eq: 4, ast.NotEq: 5,
}
_BIN: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide,
    ast.Pow: np.power, ast.Mod: np.mod,
}
_UNARY_FUNCS: dict[str, Callable[[Any], Any]] = {"abs": np.abs, "sqrt": np.sqrt, "log": np.log}


class _Compiler:
    def __init__(self, text: str, where: str, scope: Scope) -> None:
        self.text = text
        self.where = where
        self.scope = scope

    def fail(self, node: ast.AST | None, problem: str, names: Sequence[str] | None = None
             ) -> ExpressionError:
        col = getattr(node, "col_offset", 0) if node is not None else 0
        avail = self.scope.names() if names is None else list(names)
        msg = (f"{self.where}: {problem} at column {col + 1}\n    {self.text}\n    "
               f"{' ' * col}^\n  available names: {', '.join(avail)}")
        return ExpressionError(msg)

    # -- entry
    def compile(self) -> _Node:
        try:
            tree = ast.parse(self.text.strip(), mode="eval")
        except SyntaxError as exc:
            col = max((exc.offset or 1) - 1, 0)
            msg = (f"{self.where}: syntax error ({exc.msg}) at column {col + 1}\n    "
                   f"{self.text}\n    {' ' * col}^")
            raise ExpressionError(msg) from None
        return self.node(tree.body)

    # -- helpers
    def num(self, nd: _Node, node: ast.AST) -> _Node:
        if nd.kind is Kind.NUM:
            return nd
        if nd.kind is Kind.OBJ and nd.coll == "met":
            fn = nd.fn
            return _Node(Kind.NUM, lambda f: fn(f).get("pt", f.n_events), nd.key + ".pt",
                         nd.uses, nd.events)
        if nd.kind is Kind.BOOL and self.scope.object_fields is not None:
            fn = nd.fn

            def to_num(f: Any) -> Any:
                v, ok = fn(f)
                return np.where(ok, np.asarray(v, dtype=np.float64), np.nan)
            return _Node(Kind.NUM, to_num, f"float({nd.key})", nd.uses, nd.events)
        raise self.fail(node, f"expected a number, got a {nd.kind.value}")

    def cond(self, nd: _Node, node: ast.AST) -> _Node:
        if nd.kind is Kind.BOOL:
            return nd
        if nd.kind is Kind.NUM and self.scope.object_fields is not None:
            fn = nd.fn

            def truthy(f: Any) -> Any:
                v = fn(f)
                ok = ~np.isnan(v)
                return (v != 0) & ok, ok
            return _Node(Kind.BOOL, truthy, f"bool({nd.key})", nd.uses, nd.events)
        raise self.fail(node, f"expected a condition (a comparison), got a {nd.kind.value}")

    def vec(self, nd: _Node, node: ast.AST) -> _Node:
        if nd.kind in (Kind.OBJ, Kind.VEC):
            return nd
        raise self.fail(node, f"expected an object or a sum of objects, got a {nd.kind.value}")

    def make(self, kind: Kind, fn: Evaluator, key: str, *deps: _Node, coll: str | None = None,
             extra: Mapping[str, set[str]] | None = None, memo: bool = True,
             terms: tuple[tuple[str, int], ...] | None = None, every: bool = False) -> _Node:
        uses, events = _merge_uses(*deps)
        for k, v in (extra or {}).items():
            uses.setdefault(k, set()).update(v)
        # objects, sums and function values are kept for the chunk (shared by every cut and
        # observable using them); cheap elementwise results are recomputed instead of held
        return _Node(kind, _memo(key, fn, every) if memo else fn, key, uses, events, coll=coll,
                     terms=terms)

    def p4sum(self, terms: tuple[tuple[str, int], ...], *deps: _Node, coll: str | None,
              extra: Mapping[str, set[str]]) -> _Node:
        """A sum of objects added left to right, by one kernel."""
        def run(f: Any, t: tuple[tuple[str, int], ...] = terms) -> Any:
            return _sum_terms(f, t)
        return self.make(Kind.VEC, run, _terms_key(terms), *deps, coll=coll, extra=extra,
                         terms=terms)

    # -- dispatch
    def node(self, node: ast.AST) -> _Node:
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.BoolOp):
            return self.boolop(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        raise self.fail(node, f"{type(node).__name__} expressions are not part of the "
                              "vocabulary")

    def constant(self, node: ast.Constant) -> _Node:
        value = node.value
        if isinstance(value, bool):
            def const_bool(f: Any, v: bool = value) -> Any:
                return np.bool_(v), np.bool_(True)  # broadcast, never materialized
            return _Node(Kind.BOOL, const_bool, repr(value), {}, set(), const=value)
        if isinstance(value, int | float):
            x = float(value)

            def const_num(f: Any, v: float = x) -> Any:
                return np.float64(v)  # broadcast, never materialized
            return _Node(Kind.NUM, const_num, repr(x), {}, set(), const=x)
        raise self.fail(node, f"constant {value!r} is not a number")

    def name(self, node: ast.Name) -> _Node:
        name = node.id
        scope = self.scope
        if scope.object_fields is not None:
            fname = FIELD_ALIASES.get(name, name)
            if fname not in scope.object_fields:
                raise self.fail(node, f"unknown field {name!r} of this object")

            def field_values(f: Any, k: str = fname) -> Any:
                return np.asarray(f.fields[k], dtype=np.float64)
            return _Node(Kind.NUM, field_values, fname, {"": {fname}}, set())
        if name in scope.collections:
            def coll(f: Any, k: str = name) -> Any:
                return f.collections[k]
            return _Node(Kind.COLL, coll, name, {name: set()}, set(), coll=name)
        if name == "met" and scope.has_met:
            def met(f: Any) -> Any:
                if f.met is None:
                    raise ExpressionError("met is used but was not read")
                return Obj(None, 0, f.met)
            return _Node(Kind.OBJ, met, "met", {"met": {"pt", "phi"}}, set(), coll="met")
        if name in scope.event_fields:
            def ev(f: Any, k: str = name) -> Any:
                return np.asarray(f.event_fields[k], dtype=np.float64)
            return _Node(Kind.NUM, ev, f"event.{name}", {}, {name})
        if name in EVENT_FUNCTIONS or name in OBJECT_FUNCTIONS:
            raise self.fail(node, f"{name!r} is a function; call it as {name}(...)")
        raise self.fail(node, f"unknown name {name!r}")

    def attribute(self, node: ast.Attribute) -> _Node:
        base = self.node(node.value)
        fname = FIELD_ALIASES.get(node.attr, node.attr)
        if base.kind is Kind.COLL:
            cname = base.coll or ""

            def jag(f: Any, b: Evaluator = base.fn, k: str = fname) -> Any:
                c = b(f)
                return c.offsets, c.fields[k]
            return self.make(Kind.JAGGED, jag, f"{base.key}.{fname}", base, coll=cname, every=True,
                             extra={cname: {fname}})
        if base.kind is Kind.OBJ:
            cname = base.coll or ""
            if cname == "met" and fname not in ("pt", "phi"):
                raise self.fail(node, f"met has the fields pt and phi, not {node.attr!r}",
                                ["met.pt", "met.phi"])

            def fld(f: Any, b: Evaluator = base.fn, k: str = fname) -> Any:
                return b(f).get(k, f.n_events)
            return self.make(Kind.NUM, fld, f"{base.key}.{fname}", base,
                             extra={cname: {fname}})
        raise self.fail(node, f"a {base.kind.value} has no field {node.attr!r}; fields are "
                              "read from collections (jets.pt) or objects (jets[0].pt)")

    def _int(self, node: ast.AST | None, default: int | None) -> int:
        if node is None:
            if default is None:
                raise self.fail(node, "a slice needs an explicit end (leptons[0:2])")
            return default
        if isinstance(node, ast.Constant) and isinstance(node.value, int) \
                and not isinstance(node.value, bool) and node.value >= 0:
            return int(node.value)
        raise self.fail(node, "object indices are non-negative integer constants")

    def subscript(self, node: ast.Subscript) -> _Node:
        base = self.node(node.value)
        if base.kind is not Kind.COLL:
            raise self.fail(node, f"only collections can be indexed, not a {base.kind.value}")
        cname = base.coll or ""
        kin = {cname: set(KINEMATIC_FIELDS)}
        if isinstance(node.slice, ast.Slice):
            if node.slice.step is not None:
                raise self.fail(node.slice, "slices take no step")
            lo = self._int(node.slice.lower, 0)
            hi = self._int(node.slice.upper, None)

            if hi > lo:
                return self.p4sum(tuple((cname, i) for i in range(lo, hi)), base, coll=cname,
                                  extra=kin)

            def sl(f: Any, b: Evaluator = base.fn, a: int = lo, z: int = hi,
                   k: str = base.key) -> Any:
                return _slice(f, k, b(f), a, z)
            return self.make(Kind.VEC, sl, f"{base.key}[{lo}:{hi}]", base, coll=cname,
                             extra=kin)
        i = self._int(node.slice, None)

        def el(f: Any, b: Evaluator = base.fn, k: int = i) -> Any:
            return _element(b(f), k, f)
        return self.make(Kind.OBJ, el, f"{base.key}[{i}]", base, coll=cname,
                         terms=((cname, i),))

    def call(self, node: ast.Call) -> _Node:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "only the vocabulary's functions can be called")
        fname = node.func.id
        allowed = OBJECT_FUNCTIONS if self.scope.object_fields is not None else EVENT_FUNCTIONS
        if fname not in allowed:
            raise self.fail(node.func, f"unknown function {fname!r}",
                            [f"{f}()" for f in allowed])
        if node.keywords:
            raise self.fail(node, f"{fname}() takes no keyword arguments")
        args = [self.node(a) for a in node.args]
        nargs = len(args)

        def need(k: int) -> None:
            if nargs != k:
                raise self.fail(node, f"{fname}() takes {k} argument{'s' * (k != 1)}, got "
                                      f"{nargs}")

        key = f"{fname}({', '.join(a.key for a in args)})"
        if fname in _UNARY_FUNCS:
            need(1)
            a = self.num(args[0], node.args[0])
            op = _UNARY_FUNCS[fname]

            def un(f: Any, x: Evaluator = a.fn) -> Any:
                with np.errstate(invalid="ignore", divide="ignore"):
                    return op(x(f))
            return self.make(Kind.NUM, un, key, a)
        if fname == "n":
            need(1)
            c = args[0]
            if c.kind is not Kind.COLL:
                raise self.fail(node.args[0], f"n() counts a collection, not a {c.kind.value}")

            def count(f: Any, x: Evaluator = c.fn) -> Any:
                return np.diff(x(f).offsets).astype(np.float64)
            return self.make(Kind.NUM, count, key, c, every=True)
        if fname in ("sum", "max", "min") and nargs == 1:
            j = args[0]
            if j.kind is not Kind.JAGGED:
                raise self.fail(node.args[0], f"{fname}() of one argument takes per-object "
                                              f"values (jets.pt), not a {j.kind.value}")
            code = {"sum": 0, "max": 1, "min": 2}[fname]

            def red(f: Any, x: Evaluator = j.fn, o: int = code) -> Any:
                offsets, values = x(f)
                return _segment_reduce(offsets, values, o)
            return self.make(Kind.NUM, red, key, j, every=True)
        if fname in ("max", "min"):
            need(2)
            a = self.num(args[0], node.args[0])
            b = self.num(args[1], node.args[1])
            npop = np.maximum if fname == "max" else np.minimum

            def mm(f: Any, x: Evaluator = a.fn, y: Evaluator = b.fn) -> Any:
                return npop(x(f), y(f))
            return self.make(Kind.NUM, mm, key, a, b)
        if fname == "sum":
            raise self.fail(node, "sum() takes one argument: per-object values (jets.pt)")
        if fname in ("m", "pt", "eta", "phi", "e"):
            need(1)
            x = self.vec(args[0], node.args[0])
            direct = {"m": "mass", "pt": "pt", "eta": "eta", "phi": "phi"}
            cname = x.coll or ""
            if x.kind is Kind.OBJ and fname in direct:
                fld = direct[fname]

                def getf(f: Any, o: Evaluator = x.fn, k: str = fld) -> Any:
                    return o(f).get(k, f.n_events)
                return self.make(Kind.NUM, getf, key, x, extra={cname: {fld}})
            func: Callable[[Vec, BoolArray], Any] = {
                "m": _mass, "pt": _pt, "eta": lambda v, a: _eta(v), "phi": lambda v, a: _phi(v),
                "e": lambda v, a: v.e}[fname]

            def kin(f: Any, o: Evaluator = x.fn, g: Callable[[Vec, BoolArray], Any] = func
                    ) -> Any:
                return g(_vec_of(o(f), f.n_events), f.active_mask)
            return self.make(Kind.NUM, kin, key, x, extra={cname: set(KINEMATIC_FIELDS)}
                             if x.kind is Kind.OBJ and cname != "met" else None)
        # dr, dphi
        need(2)
        a = self.vec(args[0], node.args[0])
        b = self.vec(args[1], node.args[1])
        extra: dict[str, set[str]] = {}
        for nd in (a, b):
            if nd.kind is Kind.OBJ and nd.coll and nd.coll != "met":
                extra.setdefault(nd.coll, set()).update({"eta", "phi"})

        def angles(f: Any, o: Any) -> tuple[Float64Array, Float64Array]:
            if isinstance(o, Obj):
                return o.get("eta", f.n_events), o.get("phi", f.n_events)
            return _eta(o), _phi(o)

        if fname == "dphi":
            def dphi(f: Any, x: Evaluator = a.fn, y: Evaluator = b.fn) -> Any:
                return _dphi(angles(f, x(f))[1], angles(f, y(f))[1])
            return self.make(Kind.NUM, dphi, key, a, b, extra=extra)
        for nd, arg in ((a, node.args[0]), (b, node.args[1])):
            if nd.coll == "met":
                raise self.fail(arg, "dr() needs η; met has none (use dphi)")

        def dr(f: Any, x: Evaluator = a.fn, y: Evaluator = b.fn) -> Any:
            ea, pa = angles(f, x(f))
            eb, pb = angles(f, y(f))
            return np.hypot(ea - eb, _dphi(pa, pb))
        return self.make(Kind.NUM, dr, key, a, b, extra=extra)

    def binop(self, node: ast.BinOp) -> _Node:
        left = self.node(node.left)
        right = self.node(node.right)
        key = f"({left.key} {type(node.op).__name__} {right.key})"
        if isinstance(node.op, ast.Add) and (left.kind in (Kind.OBJ, Kind.VEC)
                                             or right.kind in (Kind.OBJ, Kind.VEC)) \
                and not (left.coll == "met" and right.kind is Kind.NUM) \
                and not (right.coll == "met" and left.kind is Kind.NUM):
            a = self.vec(left, node.left)
            b = self.vec(right, node.right)

            def add(f: Any, x: Evaluator = a.fn, y: Evaluator = b.fn) -> Any:
                return _add(_vec_of(x(f), f.n_events), _vec_of(y(f), f.n_events))
            extra: dict[str, set[str]] = {}
            for nd in (a, b):
                if nd.kind is Kind.OBJ and nd.coll and nd.coll != "met":
                    extra.setdefault(nd.coll, set()).update(KINEMATIC_FIELDS)
            if a.terms is not None and b.terms is not None and len(b.terms) == 1:
                # (a0 + a1 + ...) + b: still a left-to-right sum of objects
                return self.p4sum(a.terms + b.terms, a, b, extra=extra, coll=None)
            return self.make(Kind.VEC, add, key, a, b, extra=extra)
        op_type = type(node.op)
        if op_type not in _BIN:
            raise self.fail(node, f"operator {op_type.__name__} is not part of the vocabulary")
        a = self.num(left, node.left)
        b = self.num(right, node.right)
        op = _BIN[op_type]

        def arith(f: Any, x: Evaluator = a.fn, y: Evaluator = b.fn) -> Any:
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                return op(x(f), y(f))
        return self.make(Kind.NUM, arith, key, a, b, memo=False)

    def unary(self, node: ast.UnaryOp) -> _Node:
        inner = self.node(node.operand)
        if isinstance(node.op, ast.Not):
            c = self.cond(inner, node.operand)

            def neg_b(f: Any, x: Evaluator = c.fn) -> Any:
                v, ok = x(f)
                return ~v, ok
            return self.make(Kind.BOOL, neg_b, f"not {c.key}", c, memo=False)
        if isinstance(node.op, ast.USub | ast.UAdd):
            a = self.num(inner, node.operand)
            sign = -1.0 if isinstance(node.op, ast.USub) else 1.0

            def neg(f: Any, x: Evaluator = a.fn, s: float = sign) -> Any:
                return s * x(f)
            return self.make(Kind.NUM, neg, f"{sign:+g}*{a.key}", a, memo=False)
        raise self.fail(node, f"operator {type(node.op).__name__} is not part of the "
                              "vocabulary")

    def boolop(self, node: ast.BoolOp) -> _Node:
        parts = [self.cond(self.node(v), v) for v in node.values]
        is_and = isinstance(node.op, ast.And)
        key = "(" + (" and " if is_and else " or ").join(p.key for p in parts) + ")"
        fns = [p.fn for p in parts]

        def combine(f: Any) -> Any:
            value, valid = fns[0](f)
            for g in fns[1:]:
                v2, ok2 = g(f)
                if is_and:
                    false = (~value & valid) | (~v2 & ok2)
                    value = value & valid & v2 & ok2
                    valid = value | false
                else:
                    true = (value & valid) | (v2 & ok2)
                    valid = true | (valid & ok2)
                    value = true
            return value, valid
        return self.make(Kind.BOOL, combine, key, *parts, memo=False)

    def compare(self, node: ast.Compare) -> _Node:
        operands = [node.left, *node.comparators]
        nodes = [self.num(self.node(x), x) for x in operands]
        pieces: list[_Node] = []
        for i, op in enumerate(node.ops):
            op_type = type(op)
            if op_type not in _CMP_CODES:
                raise self.fail(node, f"comparison {op_type.__name__} is not part of the "
                                      "vocabulary")
            a, b = nodes[i], nodes[i + 1]
            code = _CMP_CODES[op_type]

            def cmp(f: Any, x: Evaluator = a.fn, y: Evaluator = b.fn, o: int = code) -> Any:
                # (u op v and neither is missing, neither is missing) in one pass
                return _compare(np.atleast_1d(np.asarray(x(f), dtype=np.float64)),
                                np.atleast_1d(np.asarray(y(f), dtype=np.float64)), o)
            pieces.append(self.make(Kind.BOOL, cmp,
                                    f"({a.key} {op_type.__name__} {b.key})", a, b, memo=False))
        if len(pieces) == 1:
            return pieces[0]
        fns = [p.fn for p in pieces]

        def chain(f: Any) -> Any:
            value, valid = fns[0](f)
            for g in fns[1:]:
                v2, ok2 = g(f)
                false = (~value & valid) | (~v2 & ok2)
                value = value & valid & v2 & ok2
                valid = value | false
            return value, valid
        return self.make(Kind.BOOL, chain, "&".join(p.key for p in pieces), *pieces,
                         memo=False)


def compile_expression(text: str, where: str, scope: Scope,
                       expect: Kind | None = None) -> Compiled:
    """Parse and compile one expression.

    Args:
        text: The expression.
        where: What it is, for errors (``"config.yml: regions.SR.cuts[1] 'two b-jets'"``).
        scope: The names it may use.
        expect: ``Kind.BOOL`` for cuts, ``Kind.NUM`` for observables and weights.

    Raises:
        ExpressionError: Syntax errors, names or constructs outside the vocabulary, a cut
            that is not a condition (names the place, the column and the names available).
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"{where}: empty expression")
    comp = _Compiler(text, where, scope)
    node = comp.compile()
    tree = ast.parse(text.strip(), mode="eval").body
    if expect is Kind.BOOL:
        node = comp.cond(node, tree)
    elif expect is Kind.NUM:
        node = comp.num(node, tree)
    elif node.kind not in (Kind.NUM, Kind.BOOL):
        raise comp.fail(tree, f"expected a number or a condition, got a {node.kind.value}")
    return Compiled(text, node.kind, node.fn,
                    {k: frozenset(v) for k, v in node.uses.items()}, frozenset(node.events))


def hist_bins(values: Float64Array, nbins: int, low: float, high: float
              ) -> npt.NDArray[np.int64]:
    """Bin indices with flow (0 underflow, ``nbins + 1`` overflow) as boost-histogram does.

    ``z = (x - low) / (high - low)``; ``z < 0`` underflow, ``z >= 1`` (and NaN) overflow,
    otherwise ``int(z * nbins) + 1``.
    """
    z = (values - low) / (high - low)
    with np.errstate(invalid="ignore"):
        inner = np.where((z >= 0) & (z < 1), z * nbins, 0.0).astype(np.int64) + 1
    out: npt.NDArray[np.int64] = np.where(z < 0, 0, np.where(z >= 1, nbins + 1, inner))
    out[np.isnan(z)] = nbins + 1
    return out


def isfinite_number(x: Any) -> bool:
    """Whether ``x`` is a finite real number (for config checks)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def warm_up() -> None:
    """Compile (or load from the numba cache) the collection kernels."""
    offsets = np.array([0, 2, 3], dtype=np.int64)
    for dtype in (np.float32, np.float64):
        pt = np.array([1.0, 2.0, 3.0], dtype=dtype)
        _sort_perm(offsets, pt)
        _merge_perm(offsets, pt, offsets, pt)
        for op in (0, 1, 2):
            _segment_reduce(offsets, pt, op)
    _merge_perm(offsets, np.ones(3), offsets, np.ones(3, dtype=np.float32))
    ones = np.ones(3)
    for values in (ones, ones.astype(np.float32), ones.astype(np.int32), ones.astype(bool)):
        for active in (_ALL, np.ones(2, dtype=bool)):
            _take(offsets, values, 1, active)
    keep = np.ones(3, dtype=bool)
    _select_sort(offsets, keep, ones)
    _select_sort(offsets, keep, ones.astype(np.float32))
    for active in (_ALL, np.ones(2, dtype=bool)):
        _element_p4(offsets, ones, ones, ones, ones, 0, active)
        _sum_p4(offsets, ones, ones, ones, ones, np.arange(2), active)
    for active in (_ALL, np.ones(3, dtype=bool)):
        _mass_kernel(ones, ones, ones, ones, active)
        _pt_kernel(ones, ones, active)
    masked_sums(keep, np.ones((2, 3)))
    idx = np.zeros(3, dtype=np.int64)
    _compose(keep, idx, idx, idx)
    _merge_select_sort(offsets, keep, ones, offsets, keep, ones)
    for op in range(6):
        _compare(ones, ones[:1], op)
    for a in (ones, ones.astype(np.int32), ones.astype(np.float32)):
        _merge_take(keep, np.zeros(3, dtype=np.int64), a, a)
    readonly = ones.view()
    readonly.flags.writeable = False  # observables' values (Compiled.values) are read-only
    for x in (ones, readonly):
        hist_sums(x, np.arange(3), np.ones((2, 3)), 2, 0.0, 1.0)
