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

With ``objects=True`` (the ZH → ℓℓbb example) the file also holds, drawn from a separate random
stream so that every branch above is unchanged:

- ``Jet_btagDeepFlavB``: high scores for the two resonance jets (Beta(6, 1.3)), low for the
  others (Beta(1, 9));
- ``Electron_*`` / ``Muon_*`` (pt, eta, phi, mass, charge; ``Electron_cutBased`` 0-4,
  ``Muon_tightId``): a Z (m ~ 91.19 GeV, width 2.5 GeV) recoiling against the resonance decays
  to an opposite-charge e+e- or μ+μ- pair; each lepton is lost with probability 0.08 and 5 % of
  events get an extra soft lepton of random flavour and charge;
- ``MET_pt``, ``MET_phi``; ``puWeight`` (a pile-up-like factor, N(1, 0.05));
- ``LHEScaleWeight`` (9 per event, the NanoAOD μR/μF order, index 4 nominal = 1) depending
  on the resonance pT, and ``LHEPdfWeight`` (31 per event, N(1, 0.02) with a pT slope);
- ``Runs``: ``LHEScaleSumw`` and ``LHEPdfSumw`` (Σ genWeight·w_i / Σ genWeight over all
  generated events, as NanoAOD stores them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def generate_signal_events(  # noqa: PLR0917
        n_events: int, seed: int, resonance_gev: float = 120.0,
                           resolution: float = 0.12,
                           sum_of_weights: float = WORKED_EXAMPLE_SUMW,
                           objects: bool = False) -> ak.Array:
    """Generate jets and weights of a resonance → two jets signal (not written).

    Returns:
        An awkward record array with fields ``Jet`` (pt, eta, phi, mass; GeV; shuffled
        order) and ``genWeight`` (float64, summing exactly to ``sum_of_weights``); with
        ``objects`` also b-tag scores, ``Electron``, ``Muon``, MET, ``puWeight``,
        ``LHEScaleWeight`` and ``LHEPdfWeight`` (see the module docstring).
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
    if not objects:
        return ak.Array({"Jet": jets, "genWeight": weights})
    # ---- the analysis objects, from their own stream: nothing above changes
    r2 = np.random.default_rng([seed, 2])
    is_b = np.zeros(total, dtype=bool)
    is_b[starts] = True
    is_b[starts + 1] = True
    is_b = is_b[order]
    score = np.where(is_b, r2.beta(6.0, 1.3, total), r2.beta(1.0, 9.0, total))
    jets = ak.with_field(jets, ak.unflatten(score.astype(np.float32), counts), "btagDeepFlavB")
    z_mass = r2.normal(91.19, 2.5, n_events).clip(60.0, 120.0)
    z_pt = h_pt * r2.normal(1.0, 0.1, n_events).clip(0.2)
    z_eta = r2.normal(0.0, 1.2, n_events)
    z_phi = np.mod(h_phi + np.pi + r2.normal(0.0, 0.3, n_events) + np.pi, 2 * np.pi) - np.pi
    l1, l2 = _decay_two_body(r2, z_mass, z_pt, z_eta, z_phi)
    muon = r2.random(n_events) < 0.5
    q1 = np.where(r2.random(n_events) < 0.5, 1, -1)
    lep: dict[str, list[np.ndarray]] = {k: [] for k in ("pt", "eta", "phi", "charge", "ev",
                                                        "mu")}
    for four, q in ((l1, q1), (l2, -q1)):
        pt, eta, phi = _pt_eta_phi(four)
        keep_l = r2.random(n_events) > 0.08
        idx = np.flatnonzero(keep_l)
        for k, v in (("pt", pt * r2.normal(1.0, 0.02, n_events)), ("eta", eta), ("phi", phi),
                     ("charge", q), ("ev", np.arange(n_events)), ("mu", muon)):
            lep[k].append(np.asarray(v)[idx])
    extra = np.flatnonzero(r2.random(n_events) < 0.05)
    lep["pt"].append(r2.exponential(10.0, extra.size) + 5.0)
    lep["eta"].append(r2.uniform(-2.5, 2.5, extra.size))
    lep["phi"].append(r2.uniform(-np.pi, np.pi, extra.size))
    lep["charge"].append(np.where(r2.random(extra.size) < 0.5, 1, -1))
    lep["ev"].append(extra)
    lep["mu"].append(r2.random(extra.size) < 0.5)
    cat = {k: np.concatenate(v) for k, v in lep.items()}
    collections: dict[str, ak.Array] = {}
    for name, is_mu in (("Electron", False), ("Muon", True)):
        sel = cat["mu"] == is_mu
        o = np.argsort(cat["ev"][sel], kind="stable")
        ev = cat["ev"][sel][o]
        cnt = np.bincount(ev, minlength=n_events)
        nl = int(sel.sum())
        fields = {
            "pt": cat["pt"][sel][o].astype(np.float32),
            "eta": cat["eta"][sel][o].astype(np.float32),
            "phi": cat["phi"][sel][o].astype(np.float32),
            "mass": np.full(nl, 0.1057 if is_mu else 0.000511, dtype=np.float32),
            "charge": cat["charge"][sel][o].astype(np.int32),
        }
        if is_mu:
            fields["tightId"] = r2.random(nl) < 0.95
        else:
            fields["cutBased"] = r2.choice(np.array([1, 2, 3, 4], dtype=np.int32), nl,
                                           p=[0.05, 0.1, 0.25, 0.6])
        collections[name] = ak.zip({k: ak.unflatten(v, cnt) for k, v in fields.items()})
    slope = (h_pt - 110.0) / 400.0
    mur = np.array([0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0])
    muf = np.array([0.5, 1.0, 2.0, 0.5, 1.0, 2.0, 0.5, 1.0, 2.0])
    scale = (1.0 + np.outer(slope * 0.3 + 0.08, -np.log2(mur))
             + np.outer(slope * 0.1 + 0.03, -np.log2(muf)))
    scale *= r2.normal(1.0, 0.005, scale.shape)
    scale[:, 4] = 1.0
    pdf = 1.0 + np.outer(slope, r2.normal(0.0, 0.02, 31)) + r2.normal(0.0, 0.02, (n_events, 31))
    pdf[:, 0] = 1.0
    return ak.Array({
        "Jet": jets, "genWeight": weights,
        "Electron": collections["Electron"], "Muon": collections["Muon"],
        "MET_pt": (r2.exponential(25.0, n_events)).astype(np.float32),
        "MET_phi": r2.uniform(-np.pi, np.pi, n_events).astype(np.float32),
        "puWeight": r2.normal(1.0, 0.05, n_events).astype(np.float32),
        "LHEScaleWeight": ak.from_regular(scale.astype(np.float32)),
        "LHEPdfWeight": ak.from_regular(pdf.astype(np.float32)),
    })


def write_signal_sample(
    path: str | os.PathLike[str],
    n_events: int = 10_000,
    seed: int = 1,
    *,
    resonance_gev: float = 120.0,
    sum_of_weights: float = WORKED_EXAMPLE_SUMW,
    skim_min_jets: int = 2,
    skim_pt_gev: float = 30.0,
    objects: bool = False,
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
        objects: Also write b-tag scores, leptons, MET, a pile-up weight and the LHE
            scale/PDF variation weights (the ZH → ℓℓbb example); the other branches and the
            ``Runs`` sums are the same either way.

    Returns:
        A summary of what was written.
    """
    events = generate_signal_events(n_events, seed, resonance_gev, sum_of_weights=sum_of_weights,
                                    objects=objects)
    weights = np.asarray(events["genWeight"], dtype=np.float64)
    keep = ak.to_numpy(ak.sum(events["Jet"]["pt"] > skim_pt_gev, axis=1) >= skim_min_jets)
    skimmed = events[keep]
    w32 = np.asarray(skimmed["genWeight"], dtype=np.float32)
    with atomic_path(path) as tmp, uproot.recreate(tmp) as f:
        jets = skimmed["Jet"]
        if not objects:
            branches = {f"Jet_{field}": jets[field] for field in ("pt", "eta", "phi", "mass")}
            tree = f.mktree(
                "Events",
                {**{name: arr.type.content for name, arr in branches.items()},
                 "genWeight": np.float32},
                counter_name=lambda counted: "nJet",
            )
            tree.extend({**branches, "genWeight": w32})
        else:
            write_object_events(f, skimmed, create=True)
        runs: dict[str, np.ndarray] = {
            "run": np.array([1], dtype=np.uint32),
            "genEventCount": np.array([n_events], dtype=np.int64),
            "genEventSumw": np.array([sum_of_weights], dtype=np.float64),
            "genEventSumw2": np.array([np.square(weights).sum()], dtype=np.float64),
        }
        if objects:
            for name in ("LHEScaleWeight", "LHEPdfWeight"):
                var = np.asarray(ak.to_numpy(events[name]), dtype=np.float64)
                runs[name.replace("Weight", "Sumw")] = (
                    (weights[:, None] * var).sum(axis=0) / weights.sum())[None, :]
        f["Runs"] = runs
    return SyntheticSample(
        path=Path(path), n_generated=n_events, n_written=int(keep.sum()),
        sum_of_weights=float(sum_of_weights),
        sum_of_weights_written=float(w32.astype(np.float64).sum()), seed=seed,
    )


def write_object_events(f: Any, events: ak.Array, *, create: bool) -> None:
    """Write (``create``) or append events with analysis objects to ``f["Events"]``."""
    jets = events["Jet"]
    data: dict[str, Any] = {
        "Jet": ak.zip({k: jets[k] for k in ("pt", "eta", "phi", "mass", "btagDeepFlavB")}),
        "Electron": events["Electron"], "Muon": events["Muon"],
        "genWeight": np.asarray(events["genWeight"], dtype=np.float32),
        "puWeight": np.asarray(events["puWeight"], dtype=np.float32),
        "MET_pt": np.asarray(events["MET_pt"], dtype=np.float32),
        "MET_phi": np.asarray(events["MET_phi"], dtype=np.float32),
        "LHEScaleWeight": events["LHEScaleWeight"], "LHEPdfWeight": events["LHEPdfWeight"],
    }
    if create:
        types = {k: (v.type.content if isinstance(v, ak.Array) else v.dtype)
                 for k, v in data.items()}
        f.mktree("Events", types, counter_name=lambda counted: f"n{counted}")
    f["Events"].extend(data)
