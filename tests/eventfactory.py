"""Synthetic flat ntuples for the selection tests, and an independent awkward reference.

The reference sorts the jets with ``ak.argsort`` and computes m_jj with numpy, so it shares no
code with the numba kernel it checks.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np
import uproot


@dataclass(frozen=True)
class FlatSample:
    """The arrays written to a synthetic file (jets in GeV, float32)."""

    pt: ak.Array
    eta: ak.Array
    phi: ak.Array
    m: ak.Array
    weight: np.ndarray


def make_events(n_events: int, seed: int = 1, mean_jets: float = 3.0) -> FlatSample:
    """Random events: Poisson jet counts, unordered exponential pT, signed weights."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(mean_jets, n_events)
    total = int(counts.sum())

    def jag(values: np.ndarray) -> ak.Array:
        return ak.unflatten(values.astype(np.float32), counts)

    return FlatSample(
        pt=jag(20.0 + rng.exponential(40.0, total)),
        eta=jag(rng.uniform(-4.0, 4.0, total)),
        phi=jag(rng.uniform(-np.pi, np.pi, total)),
        m=jag(rng.uniform(0.0, 20.0, total)),
        weight=rng.normal(1.0, 0.5, n_events).astype(np.float32),
    )


def write_flat(path: Path, sample: FlatSample, tree: str = "events", n_baskets: int = 1,
               compression: object | None = None) -> Path:
    """Write ``sample`` as a flat ntuple with branches jet_pt/eta/phi/m and weight."""
    n = len(sample.weight)
    edges = np.linspace(0, n, n_baskets + 1).astype(int)
    kwargs = {} if compression is None else {"compression": compression}
    with uproot.recreate(path, **kwargs) as f:
        for i, (a, b) in enumerate(itertools.pairwise(edges)):
            jets = ak.zip({"pt": sample.pt[a:b], "eta": sample.eta[a:b],
                           "phi": sample.phi[a:b], "m": sample.m[a:b]})
            chunk = {"jet": jets, "weight": sample.weight[a:b]}
            if i == 0:
                f.mktree(tree, {"jet": jets.type.content, "weight": np.float32})
            f[tree].extend(chunk)
    return path


def reference(sample: FlatSample, pt_min: float | None = None,
              eta_max: float | None = None) -> dict[str, np.ndarray]:
    """m_jj of the two leading jets (all jets, and jets passing the cuts) with awkward."""
    w = sample.weight.astype(np.float64)

    def mjj(mask: ak.Array) -> tuple[np.ndarray, np.ndarray]:
        pt, eta, phi, m = (x[mask] for x in (sample.pt, sample.eta, sample.phi, sample.m))
        order = ak.argsort(pt, ascending=False, stable=True)
        pt, eta, phi, m = (x[order] for x in (pt, eta, phi, m))
        keep = ak.to_numpy(ak.num(pt) >= 2)
        comps = []
        for x in (pt, eta, phi, m):
            x2 = ak.to_numpy(x[keep][:, :2]).astype(np.float64)
            comps.append(x2)
        pt2, eta2, phi2, m2 = comps
        px = pt2 * np.cos(phi2)
        py = pt2 * np.sin(phi2)
        pz = pt2 * np.sinh(eta2)
        e = np.sqrt(px**2 + py**2 + pz**2 + m2**2)
        s = np.sum(e, 1) ** 2 - np.sum(px, 1) ** 2 - np.sum(py, 1) ** 2 - np.sum(pz, 1) ** 2
        return keep, np.sqrt(np.maximum(s, 0.0))

    everything = sample.pt > -np.inf
    sel = everything
    if pt_min is not None:
        sel = sel & (sample.pt > pt_min)
    if eta_max is not None:
        sel = sel & (abs(sample.eta) < eta_max)
    keep_raw, mjj_raw = mjj(everything)
    keep_kin, mjj_kin = mjj(sel)
    return {
        "w": w, "keep_raw": keep_raw, "mjj_raw": mjj_raw, "keep_kin": keep_kin,
        "mjj_kin": mjj_kin, "njets_raw": ak.to_numpy(ak.num(sample.pt)),
        "njets_kin": ak.to_numpy(ak.sum(sel, axis=1)),
    }
