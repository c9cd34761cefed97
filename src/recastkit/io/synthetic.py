"""Generated example samples for the demo and for tests (seeded, reproducible).

:func:`write_signal_sample` writes a small NanoAOD-style file that looks like a skimmed
derivation of a ZH(→ℓℓbb)-like signal:

- ``Events``: ``Jet_pt/eta/phi/mass`` (GeV, **not** pT-ordered, like PHYSLITE jets) and
  ``genWeight`` (positive, Powheg-like spread), only for the events that pass a skim
  (at least ``skim_min_jets`` jets above ``skim_pt_gev``);
- ``Runs``: one entry with ``genEventCount``, ``genEventSumw`` and ``genEventSumw2`` of *all*
  generated events, i.e. the sum of weights before the skim, as the bookkeeping of a real
  sample records it.

The two b-jets come from a resonance of mass ``resonance_gev`` (smeared by the jet
resolution), boosted with an exponential pT spectrum; zero to three soft extra jets are added.
The generator weights are rescaled so that their float64 sum over all generated events is
``sum_of_weights`` exactly (the worked example's 6813.0258 by default).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from recastkit._atomic import atomic_path

#: The worked example's sum of generator weights (tutorial ZH→llbb signal, before skimming).
WORKED_EXAMPLE_SUMW = 6813.025800


@dataclass(frozen=True)
class SyntheticSample:
    """What :func:`write_signal_sample` wrote.

    Attributes:
        path: The ROOT file.
        n_generated: Events generated (before the skim).
        n_written: Events written (after the skim).
        sum_of_weights: Σw of all generated events, as stored in ``Runs`` (the requested
            value; the float64 sum of the generated weights equals it to ~1e-15).
        sum_of_weights_written: Σw of the written events (float64 of the float32 weights).
        seed: The random seed.
    """

    path: Path
    n_generated: int
    n_written: int
    sum_of_weights: float
    sum_of_weights_written: float
    seed: int


def _decay_two_body(rng: np.random.Generator, mass: np.ndarray, pt: np.ndarray,
                    eta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Four-vectors (E, px, py, pz) of two massless daughters of a boosted resonance."""
    n = mass.size
    # parent four-vector
    px, py = pt * np.cos(phi), pt * np.sin(phi)
    pz = pt * np.sinh(eta)
    energy = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    # isotropic decay in the rest frame
    cos_t = rng.uniform(-1.0, 1.0, n)
    sin_t = np.sqrt(1.0 - cos_t**2)
    phi_d = rng.uniform(-np.pi, np.pi, n)
    p_star = mass / 2.0
    d = np.stack([p_star * sin_t * np.cos(phi_d), p_star * sin_t * np.sin(phi_d),
                  p_star * cos_t])
    beta = np.stack([px, py, pz]) / energy
    b2 = np.sum(beta**2, axis=0)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    out = []
    for sign in (1.0, -1.0):
        p = sign * d
        bp = np.sum(beta * p, axis=0)
        e_lab = gamma * (p_star + bp)
        coef = np.where(b2 > 0, (gamma - 1.0) * bp / np.where(b2 > 0, b2, 1.0), 0.0)
        p_lab = p + beta * (coef + gamma * p_star)
        out.append(np.vstack([e_lab, p_lab]))
    return out[0], out[1]


def _pt_eta_phi(four: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    px, py, pz = four[1], four[2], four[3]
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.where(pt > 0, pt, 1e-9))
    return pt, eta, np.arctan2(py, px)


def generate_signal_events(n_events: int, seed: int, resonance_gev: float = 120.0,
                           resolution: float = 0.12,
                           sum_of_weights: float = WORKED_EXAMPLE_SUMW) -> ak.Array:
    """Generate jets and weights of a resonance → two jets signal (not written).

    Returns:
        An awkward record array with fields ``Jet`` (pt, eta, phi, mass; GeV; shuffled
        order) and ``genWeight`` (float64, summing exactly to ``sum_of_weights``).
    """
    rng = np.random.default_rng(seed)
    h_pt = rng.exponential(90.0, n_events) + 20.0
    h_eta = rng.normal(0.0, 1.3, n_events)
    h_phi = rng.uniform(-np.pi, np.pi, n_events)
    mass = np.full(n_events, resonance_gev)
    b1, b2 = _decay_two_body(rng, mass, h_pt, h_eta, h_phi)
    pts, etas, phis = [], [], []
    for four in (b1, b2):
        pt, eta, phi = _pt_eta_phi(four)
        pts.append(pt * rng.normal(0.93, resolution, n_events).clip(0.3))
        etas.append(eta)
        phis.append(phi)
    n_extra = rng.integers(0, 4, n_events)
    n_jets = 2 + n_extra
    total = int(n_jets.sum())
    pt_all = np.empty(total)
    eta_all = np.empty(total)
    phi_all = np.empty(total)
    offsets = np.concatenate([[0], np.cumsum(n_jets)])
    starts = offsets[:-1]
    pt_all[starts], eta_all[starts], phi_all[starts] = pts[0], etas[0], phis[0]
    pt_all[starts + 1], eta_all[starts + 1], phi_all[starts + 1] = pts[1], etas[1], phis[1]
    extra_mask = np.ones(total, dtype=bool)
    extra_mask[starts] = False
    extra_mask[starts + 1] = False
    n_x = int(extra_mask.sum())
    pt_all[extra_mask] = rng.exponential(12.0, n_x) + 10.0
    eta_all[extra_mask] = rng.uniform(-2.5, 2.5, n_x)
    phi_all[extra_mask] = rng.uniform(-np.pi, np.pi, n_x)
    # shuffle jets within each event: like PHYSLITE, the collection is not pT-ordered
    keys = rng.random(total) + np.repeat(np.arange(n_events), n_jets)
    order = np.argsort(keys, kind="stable")
    mass_all = np.abs(rng.normal(8.0, 3.0, total))
    counts = n_jets
    jets = ak.zip({
        "pt": ak.unflatten(pt_all[order].astype(np.float32), counts),
        "eta": ak.unflatten(eta_all[order].astype(np.float32), counts),
        "phi": ak.unflatten(phi_all[order].astype(np.float32), counts),
        "mass": ak.unflatten(mass_all[order].astype(np.float32), counts),
    })
    weights = rng.normal(1.0, 0.08, n_events)
    weights *= sum_of_weights / weights.sum()
    return ak.Array({"Jet": jets, "genWeight": weights})


def write_signal_sample(
    path: str | os.PathLike[str],
    n_events: int = 10_000,
    seed: int = 1,
    *,
    resonance_gev: float = 120.0,
    sum_of_weights: float = WORKED_EXAMPLE_SUMW,
    skim_min_jets: int = 2,
    skim_pt_gev: float = 30.0,
) -> SyntheticSample:
    """Generate a signal sample and write it as a skimmed NanoAOD-style ROOT file.

    Args:
        path: Output file (written atomically).
        n_events: Events generated before the skim.
        seed: Random seed.
        resonance_gev: Mass of the resonance decaying to the two leading jets.
        sum_of_weights: Σw of all generated events, stored in the ``Runs`` tree.
        skim_min_jets: The skim keeps events with at least this many jets ...
        skim_pt_gev: ... above this pT.

    Returns:
        A summary of what was written.
    """
    events = generate_signal_events(n_events, seed, resonance_gev, sum_of_weights=sum_of_weights)
    weights = np.asarray(events["genWeight"], dtype=np.float64)
    keep = ak.to_numpy(ak.sum(events["Jet"]["pt"] > skim_pt_gev, axis=1) >= skim_min_jets)
    skimmed = events[keep]
    w32 = np.asarray(skimmed["genWeight"], dtype=np.float32)
    with atomic_path(path) as tmp, uproot.recreate(tmp) as f:
        jets = skimmed["Jet"]
        branches = {f"Jet_{field}": jets[field] for field in ("pt", "eta", "phi", "mass")}
        tree = f.mktree(
            "Events",
            {**{name: arr.type.content for name, arr in branches.items()},
             "genWeight": np.float32},
            counter_name=lambda counted: "nJet",
        )
        tree.extend({**branches, "genWeight": w32})
        f["Runs"] = {
            "run": np.array([1], dtype=np.uint32),
            "genEventCount": np.array([n_events], dtype=np.int64),
            "genEventSumw": np.array([sum_of_weights], dtype=np.float64),
            "genEventSumw2": np.array([np.square(weights).sum()], dtype=np.float64),
        }
    return SyntheticSample(
        path=Path(path), n_generated=n_events, n_written=int(keep.sum()),
        sum_of_weights=float(sum_of_weights),
        sum_of_weights_written=float(w32.astype(np.float64).sum()), seed=seed,
    )
