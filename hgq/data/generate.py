"""Generate a JSC-like jet data set with Pythia 8 and FastJet (the optional ``physics`` extra, GPL).

``python -m hgq.data.generate --per-class N --out DIR --workers 2 --seed S``

Five classes (g, q, w, z, t) from four Pythia processes at 13 TeV with ``PhaseSpace:pTHatMin = 1000``. Visible
final-state particles with |eta| < 2.5 are clustered anti-kT R = 0.8; jets with pT > 800 GeV are kept when truth
matching (Delta R < 0.8 to the jet axis) gives a label: q/g from the outgoing hard parton, W/Z/t when every quark of
the hadronic decay (W -> qq', Z -> qq, t -> b qq') lies inside the jet. The 16 JSC HLF features are computed with
fjcontrib through FastJet's awkward interface: the jet is reclustered C/A R = 0.8 and groomed with mMDT (soft drop
beta = 0, z_cut = 0.1); energy correlators and the groomed mass use the groomed constituents, ``j_multiplicity`` and
``j_zlogz`` the whole jet. With every jet go its ``--particles N`` (default 32) leading constituents (ungroomed
jet, pT-descending, zero-padded, with a mask) as PARTICLE_FEATURES; :mod:`hgq.data.particles` loads them. The work
is split into chunks (process, index), each with its own recorded seed; a chunk writes one ``.npz`` when done, so
an interrupted run keeps what it made and a rerun skips finished chunks.

``pythia8mc`` and ``fastjet`` are imported only inside the functions here; the core never imports them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from hgq.data.jsc import CLASSES, FEATURES, GENERATED_NAME, save_dataset
from hgq.data.particles import PARTICLE_FEATURES

PROCESSES: dict[str, tuple[str, ...]] = {
    "qcd": ("HardQCD:all = on",),
    "w": (
        "WeakBosonAndParton:qqbar2Wg = on",
        "WeakBosonAndParton:qg2Wq = on",
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",
    ),
    "z": (
        "WeakBosonAndParton:qqbar2gmZg = on",
        "WeakBosonAndParton:qg2gmZq = on",
        "WeakZ0:gmZmode = 2",
        "23:onMode = off",
        "23:onIfAny = 1 2 3 4 5",
    ),
    "t": (
        "Top:gg2ttbar = on",
        "Top:qqbar2ttbar = on",
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",
    ),
}
"""Pythia settings per process (those of the hls4ml jet-substructure data set, Duarte et al., arXiv:1804.06913)."""

PROCESS_CLASSES: dict[str, tuple[int, ...]] = {"qcd": (0, 1), "w": (2,), "z": (3,), "t": (4,)}
"""Class indices (into CLASSES) each process yields."""

COMMON_SETTINGS: tuple[str, ...] = (
    "Beams:eCM = 13000",
    "PhaseSpace:pTHatMin = 1000",
    "Print:quiet = on",
    "Next:numberCount = 0",
    "Random:setSeed = on",
)
JET_R = 0.8
JET_PT_MIN = 800.0
PARTICLE_ETA_MAX = 2.5
MATCH_DR = 0.8
SOFTDROP = {"beta": 0.0, "symmetry_cut": 0.1, "R0": 0.8}
BATCH_EVENTS = 50
N_PARTICLES = 32
PARTICLE_DEFINITIONS: dict[str, str] = {
    "ptrel": "pT_i / pT_jet",
    "erel": "E_i / E_jet",
    "log_ptrel": "ln(pT_i / pT_jet)",
    "log_erel": "ln(E_i / E_jet)",
    "etarel": "eta_i - eta_jet (pseudorapidity)",
    "phirel": "phi_i - phi_jet wrapped to [-pi, pi)",
    "delta_r": "hypot(etarel, phirel)",
    "charge": "electric charge of the particle (-1, 0, +1), from Pythia's particle data",
    "log_pt": "ln(pT_i / GeV)",
    "log_e": "ln(E_i / GeV)",
}
"""Definitions of PARTICLE_FEATURES; the jet is the anti-kT jet's 4-momentum (sum of its constituents)."""
_INVISIBLE = (12, 14, 16)
_LIGHT_QUARKS = (1, 2, 3, 4)  # q class: u d s c (b-initiated QCD jets are not labelled)
_DECAY_QUARKS = (1, 2, 3, 4, 5)

# (feature name, fastjet func, npoint, beta, alpha): energy correlators on the groomed jet.
_ECF_SPECS: tuple[tuple[str, str, int, float, float], ...] = (
    ("j_c1_b0_mmdt", "cseries", 1, 0.0, 0.0),
    ("j_c1_b1_mmdt", "cseries", 1, 1.0, 0.0),
    ("j_c1_b2_mmdt", "cseries", 1, 2.0, 0.0),
    ("j_c2_b1_mmdt", "cseries", 2, 1.0, 0.0),
    ("j_c2_b2_mmdt", "cseries", 2, 2.0, 0.0),
    ("j_d2_b1_mmdt", "generalizedd2", 2, 1.0, 1.0),  # D2^(beta): alpha = beta
    ("j_d2_b2_mmdt", "generalizedd2", 2, 2.0, 2.0),
    ("j_d2_a1_b1_mmdt", "generalizedd2", 2, 1.0, 1.0),  # D2^(alpha=1, beta); equals j_d2_b1_mmdt by definition
    ("j_d2_a1_b2_mmdt", "generalizedd2", 2, 2.0, 1.0),
    ("j_m2_b1_mmdt", "mseries", 2, 1.0, 0.0),
    ("j_m2_b2_mmdt", "mseries", 2, 2.0, 0.0),
    ("j_n2_b1_mmdt", "nseries", 2, 1.0, 0.0),
    ("j_n2_b2_mmdt", "nseries", 2, 2.0, 0.0),
)


def chunk_seed(seed: int, process: str, index: int) -> int:
    """The Pythia seed of chunk ``index`` of ``process`` (1 .. 900,000,000), derived from the run seed."""
    state = np.random.SeedSequence([int(seed), list(PROCESSES).index(process), int(index)]).generate_state(1)
    return int(state[0] % 900_000_000) + 1


def _make_pythia(process: str, seed: int):
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in (*COMMON_SETTINGS, f"Random:seed = {seed}", *PROCESSES[process]):
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise process {process!r}")
    return pythia


def _eta_phi(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pt = np.hypot(px, py)
    return np.arcsinh(pz / np.maximum(pt, 1e-12)), np.arctan2(py, px)


def _delta_r(eta1, phi1, eta2, phi2) -> np.ndarray:
    dphi = np.mod(np.asarray(phi1) - np.asarray(phi2) + np.pi, 2 * np.pi) - np.pi
    return np.hypot(np.asarray(eta1) - np.asarray(eta2), dphi)


def _truth_targets(ev: dict[str, np.ndarray], process: str) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Truth objects of one event: (class, etas, phis of the partons that must lie inside the jet)."""
    pid, status, d1, d2 = ev["id"], ev["status"], ev["daughter1"], ev["daughter2"]
    eta, phi = _eta_phi(ev["px"], ev["py"], ev["pz"])
    targets = []
    if process == "qcd":
        for i in np.flatnonzero(status == -23):
            a = abs(int(pid[i]))
            if a == 21:
                targets.append((0, eta[i : i + 1], phi[i : i + 1]))
            elif a in _LIGHT_QUARKS:
                targets.append((1, eta[i : i + 1], phi[i : i + 1]))
            else:
                targets.append((-1, eta[i : i + 1], phi[i : i + 1]))  # blocks the jet from another label
        return targets

    def decay_quarks(i: int) -> list[int]:
        kids = list(range(int(d1[i]), int(d2[i]) + 1)) if d1[i] > 0 and d2[i] >= d1[i] else []
        return [k for k in kids if abs(int(pid[k])) in _DECAY_QUARKS]

    boson = {"w": 24, "z": 23}.get(process)
    if boson is not None:
        for i in np.flatnonzero(np.abs(pid) == boson):
            qs = decay_quarks(int(i))
            if len(qs) == 2:  # the decaying copy
                targets.append((PROCESS_CLASSES[process][0], eta[qs], phi[qs]))
        return targets
    for i in np.flatnonzero(np.abs(pid) == 6):  # top: the copy that decays to W b
        kids = list(range(int(d1[i]), int(d2[i]) + 1)) if d1[i] > 0 and d2[i] >= d1[i] else []
        ws = [k for k in kids if abs(int(pid[k])) == 24]
        bs = [k for k in kids if abs(int(pid[k])) == 5]
        if len(ws) != 1 or len(bs) != 1:
            continue
        w = ws[0]
        while True:  # follow the W's recoil copies to the one that decays
            qs = decay_quarks(w)
            if qs or d1[w] <= 0:
                break
            w = int(d1[w])
        if len(qs) == 2:
            idx = [bs[0], *qs]
            targets.append((4, eta[idx], phi[idx]))
    return targets


def _event_arrays(batch, particle_data=None) -> list[dict[str, np.ndarray]]:
    """Per-event numpy arrays of a Pythia batch; with ``particle_data`` (``pythia.particleData``) also ``charge``."""
    import awkward as ak

    prt = batch["prt"]
    counts = ak.to_numpy(ak.num(prt))
    flat = {
        "id": ak.to_numpy(ak.flatten(prt.id)),
        "status": ak.to_numpy(ak.flatten(prt.status)),
        "daughter1": ak.to_numpy(ak.flatten(prt.daughter1)),
        "daughter2": ak.to_numpy(ak.flatten(prt.daughter2)),
        "px": ak.to_numpy(ak.flatten(prt.p.px)),
        "py": ak.to_numpy(ak.flatten(prt.p.py)),
        "pz": ak.to_numpy(ak.flatten(prt.p.pz)),
        "E": ak.to_numpy(ak.flatten(prt.p.e)),
    }
    if particle_data is not None:
        ids, inverse = np.unique(flat["id"], return_inverse=True)
        flat["charge"] = np.array([particle_data.charge(int(i)) for i in ids], dtype=np.float64)[inverse]
    edges = np.concatenate([[0], np.cumsum(counts)])
    return [{k: v[a:b] for k, v in flat.items()} for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _to_awkward(parts: list[dict[str, np.ndarray]]):
    import awkward as ak

    counts = np.array([len(p["px"]) for p in parts], dtype=np.int64)
    cols = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in ("px", "py", "pz", "E")}
    return ak.unflatten(ak.zip(cols), counts)


def labelled_jets(events: list[dict[str, np.ndarray]], process: str) -> tuple[list[dict[str, np.ndarray]], list[int]]:
    """Anti-kT R=0.8 jets above 800 GeV of visible |eta| < 2.5 finals, with their truth labels (matched only).

    Each jet is a dict of its constituents' ``px py pz E`` (and ``charge`` when the events carry it).
    """
    import awkward as ak
    import fastjet

    visible = []
    for ev in events:
        eta, _ = _eta_phi(ev["px"], ev["py"], ev["pz"])
        keep = (ev["status"] > 0) & ~np.isin(np.abs(ev["id"]), _INVISIBLE) & (np.abs(eta) < PARTICLE_ETA_MAX)
        visible.append({k: ev[k][keep] for k in ("px", "py", "pz", "E", "charge") if k in ev})
    cs = fastjet.ClusterSequence(_to_awkward(visible), fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R))
    jets = cs.inclusive_jets(min_pt=JET_PT_MIN)
    consts = cs.constituents(min_pt=JET_PT_MIN)
    index = cs.constituent_index(min_pt=JET_PT_MIN) if events and "charge" in events[0] else None
    out_consts, labels = [], []
    for e, ev in enumerate(events):
        targets = _truth_targets(ev, process)
        jx, jy, jz = (ak.to_numpy(jets[e][f]) for f in ("px", "py", "pz"))
        jeta, jphi = _eta_phi(jx, jy, jz)
        for j in range(len(jx)):
            matched = {c for c, te, tp in targets if np.all(_delta_r(jeta[j], jphi[j], te, tp) < MATCH_DR)}
            if len(matched) != 1 or -1 in matched:
                continue
            label = matched.pop()
            if label not in PROCESS_CLASSES[process]:
                continue
            c = consts[e][j]
            jet = {k: ak.to_numpy(c[k]) for k in ("px", "py", "pz", "E")}
            if index is not None:
                jet["charge"] = visible[e]["charge"][ak.to_numpy(index[e][j])]
            out_consts.append(jet)
            labels.append(label)
    return out_consts, labels


def jet_features(jets: list[dict[str, np.ndarray]]) -> np.ndarray:
    """The 16 JSC HLF features (columns in FEATURES order) of jets given as constituent 4-vectors.

    A groomed jet of one constituent has e2 = 0: its correlator ratios (0/0) are set to 0, and a groomed mass
    below 0 (rounding of m^2 < 0) to 0.
    """
    import awkward as ak
    import fastjet

    if not jets:
        return np.zeros((0, len(FEATURES)))
    arr = _to_awkward(jets)
    cs = fastjet.ClusterSequence(arr, fastjet.JetDefinition(fastjet.cambridge_algorithm, JET_R))
    sd = cs.exclusive_jets_softdrop_grooming(njets=1, **SOFTDROP)
    groomed = ak.zip({k: sd.constituents[k] for k in ("px", "py", "pz", "E")})
    gcs = fastjet.ClusterSequence(groomed, fastjet.JetDefinition(fastjet.cambridge_algorithm, JET_R))
    cols: dict[str, np.ndarray] = {}
    for name, func, npoint, beta, alpha in _ECF_SPECS:
        vals = gcs.exclusive_jets_energy_correlator(njets=1, func=func, npoint=npoint, beta=beta, alpha=alpha)
        cols[name] = np.nan_to_num(ak.to_numpy(vals).astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    cols["j_mass_mmdt"] = np.maximum(ak.to_numpy(sd.msoftdrop).astype(np.float64), 0.0)
    cols["j_multiplicity"] = np.array([len(j["px"]) for j in jets], dtype=np.float64)
    zlogz = []
    for j in jets:
        pt = np.hypot(j["px"], j["py"])
        z = pt / pt.sum()
        zlogz.append(float(np.sum(z * np.log(z))))
    cols["j_zlogz"] = np.array(zlogz)
    return np.stack([cols[f] for f in FEATURES], axis=1)


def particle_features(jets: list[dict[str, np.ndarray]], n_particles: int) -> tuple[np.ndarray, np.ndarray]:
    """PARTICLE_FEATURES of jets given as constituent 4-vectors with ``charge``: float32 ``[N, n_particles, 10]``
    (pT-descending, the first ``n_particles``, zero-padded) and the bool mask ``[N, n_particles]`` (True = real).

    The jet axis, pT and E are those of the sum of all constituents (the anti-kT jet's 4-momentum).
    """
    out = np.zeros((len(jets), n_particles, len(PARTICLE_FEATURES)))
    mask = np.zeros((len(jets), n_particles), dtype=bool)
    for i, jet in enumerate(jets):
        px, py, pz, e, q = (np.asarray(jet[k], dtype=np.float64) for k in ("px", "py", "pz", "E", "charge"))
        pt = np.hypot(px, py)
        order = np.argsort(-pt, kind="stable")[:n_particles]
        jet_eta, jet_phi = _eta_phi(px.sum(), py.sum(), pz.sum())
        ptrel, erel = pt[order] / np.hypot(px.sum(), py.sum()), e[order] / e.sum()
        eta, phi = _eta_phi(px[order], py[order], pz[order])
        deta, dphi = eta - jet_eta, np.mod(phi - jet_phi + np.pi, 2 * np.pi) - np.pi
        cols = (
            ptrel,
            erel,
            np.log(ptrel),
            np.log(erel),
            deta,
            dphi,
            np.hypot(deta, dphi),
            q[order],
            np.log(pt[order]),
            np.log(e[order]),
        )
        out[i, : len(order)] = np.stack(cols, axis=1)
        mask[i, : len(order)] = True
    return out.astype(np.float32), mask


def generate_chunk(
    process: str, seed: int, per_class: int, *, max_events: int | None = None, n_particles: int = N_PARTICLES
) -> dict:
    """Generate ``per_class`` labelled jets of every class ``process`` yields; returns arrays and counters.

    ``x`` holds the 16 HLF features, ``particles``/``mask`` the :func:`particle_features` of the same jets (rows).
    """
    pythia = _make_pythia(process, seed)
    wanted = PROCESS_CLASSES[process]
    xs: dict[int, list[np.ndarray]] = {c: [] for c in wanted}
    ps: dict[int, list[np.ndarray]] = {c: [] for c in wanted}
    ms: dict[int, list[np.ndarray]] = {c: [] for c in wanted}
    have = dict.fromkeys(wanted, 0)
    n_events = 0
    limit = max_events if max_events is not None else 200 * per_class + 1000
    t0 = time.perf_counter()
    while min(have.values()) < per_class:
        if n_events >= limit:
            raise RuntimeError(
                f"process {process!r}: only {have} labelled jets after {n_events} events (wanted {per_class} per "
                "class); check the Pythia settings"
            )
        batch = pythia.nextBatch(BATCH_EVENTS)
        n_events += len(batch)
        consts, labels = labelled_jets(_event_arrays(batch, pythia.particleData), process)
        feats = jet_features(consts)
        parts, masks = particle_features(consts, n_particles)
        for c in wanted:
            sel = np.array(labels, dtype=np.int64) == c
            if have[c] < per_class and sel.any():
                k = per_class - have[c]
                xs[c].append(feats[sel][:k])
                ps[c].append(parts[sel][:k])
                ms[c].append(masks[sel][:k])
                have[c] += len(xs[c][-1])
    x, p, m = (np.concatenate([np.concatenate(a[c]) for c in wanted]) for a in (xs, ps, ms))
    y = np.concatenate([np.full(per_class, c, dtype=np.int64) for c in wanted])
    return {"x": x, "y": y, "particles": p, "mask": m, "n_events": n_events, "seconds": time.perf_counter() - t0}


def _run_task(task: tuple[str, int, int, int, int, str]) -> dict:
    process, index, seed, per_class, n_particles, out = task
    path = Path(out) / f"chunk_{process}_{index:04d}.npz"
    if path.exists():
        with np.load(path) as f:
            if int(f["seed"]) != seed or len(f["y"]) != per_class * len(PROCESS_CLASSES[process]):
                raise ValueError(f"{path} was made with another seed or chunk size; use a fresh --out directory")
            if "particles" not in f.files or "mask" not in f.files:
                raise ValueError(
                    f"{path} has no particle features (made by an older hgq.data.generate); use a fresh --out directory"
                )
            if f["particles"].shape[2] != len(PARTICLE_FEATURES):
                raise ValueError(
                    f"{path} has {f['particles'].shape[2]} particle features, not the {len(PARTICLE_FEATURES)} of "
                    "this hgq.data.generate; use a fresh --out directory"
                )
            if f["particles"].shape[1] != n_particles:
                raise ValueError(
                    f"{path} was made with --particles {f['particles'].shape[1]}, not {n_particles}; use a fresh "
                    "--out directory"
                )
            return {"file": path.name, "process": process, "index": index, "seed": int(f["seed"]),
                    "n_events": int(f["n_events"]), "seconds": float(f["seconds"]), "skipped": True}  # fmt: skip
    res = generate_chunk(process, seed, per_class, n_particles=n_particles)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, x=res["x"], y=res["y"], particles=res["particles"], mask=res["mask"], seed=seed,
                        n_events=res["n_events"], seconds=res["seconds"])  # fmt: skip
    os.replace(tmp, path)
    return {"file": path.name, "process": process, "index": index, "seed": seed, "n_events": res["n_events"],
            "seconds": res["seconds"], "skipped": False}  # fmt: skip


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("pythia8mc", "fastjet", "awkward", "numpy")} | {"python": platform.python_version()}


def generate(
    per_class: int,
    out: str | Path,
    *,
    workers: int = 2,
    seed: int = 0,
    chunk: int = 500,
    n_particles: int = N_PARTICLES,
) -> Path:
    """Generate ``per_class`` jets of each class into ``out`` (chunks, then ``jsc_generated.npz`` + provenance).

    The merged file holds ``X``/``y`` (16 HLF) and ``particles``/``mask`` (``n_particles`` leading constituents)
    of the same jets. Returns its path. Finished chunks already in ``out`` are reused (they must hold particles of
    the same ``n_particles``).
    """
    if min(per_class, chunk, workers, n_particles) < 1:
        raise ValueError(
            f"per_class, chunk, workers and n_particles must be >= 1, got {per_class}, {chunk}, {workers}, "
            f"{n_particles}"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_chunks = math.ceil(per_class / chunk)
    tasks = []
    for index in range(n_chunks):  # interleaved so an interrupted run stays roughly balanced
        n = min(chunk, per_class - index * chunk)
        for process in PROCESSES:
            tasks.append((process, index, chunk_seed(seed, process, index), n, n_particles, str(out)))
    t0 = time.perf_counter()
    records = []
    with contextlib.ExitStack() as stack:
        if workers == 1:
            results = map(_run_task, tasks)
        else:
            pool = stack.enter_context(multiprocessing.get_context("fork").Pool(workers))
            results = pool.imap_unordered(_run_task, tasks)
        for rec in results:
            records.append(rec)
            done = sum(not r["skipped"] for r in records)
            print(f"[{time.perf_counter() - t0:7.1f} s] {rec['file']}: {rec['n_events']} events, "
                  f"{rec['seconds']:.1f} s{' (existing)' if rec['skipped'] else ''}  ({len(records)}/{len(tasks)}, "
                  f"{done} new)", flush=True)  # fmt: skip
    wall = time.perf_counter() - t0
    records.sort(key=lambda r: (r["index"], list(PROCESSES).index(r["process"])))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("x", "y", "particles", "mask")}
    for r in records:
        with np.load(out / r["file"]) as f:
            for k, v in parts.items():
                v.append(f[k])
    x, y, p, m = (np.concatenate(v) for v in parts.values())
    provenance = {
        "name": GENERATED_NAME,
        "generator": "hgq.data.generate",
        "command": f"python -m hgq.data.generate --per-class {per_class} --out DIR --workers {workers} "
        f"--seed {seed} --chunk {chunk} --particles {n_particles}",
        "versions": _versions(),
        "settings": {
            "common": list(COMMON_SETTINGS),
            "processes": {k: list(v) for k, v in PROCESSES.items()},
            "particles": f"final, visible (no neutrinos), |eta| < {PARTICLE_ETA_MAX}",
            "jets": f"anti-kT R = {JET_R}, pT > {JET_PT_MIN} GeV",
            "truth_match": f"Delta R < {MATCH_DR} to the jet axis: q/g hard parton (q = u d s c), W/Z/t all decay "
            "quarks (t: b and the W's two quarks)",
            "grooming": "C/A R = 0.8 recluster, mMDT soft drop " + json.dumps(SOFTDROP),
            "degenerate": "correlator ratios of a one-constituent groomed jet (0/0) set to 0; groomed mass >= 0",
            "features": {n: {"func": f, "npoint": p, "beta": b, "alpha": a} for n, f, p, b, a in _ECF_SPECS}
            | {
                "j_mass_mmdt": "soft-drop groomed mass",
                "j_multiplicity": "constituents of the ungroomed jet",
                "j_zlogz": "sum z log z, z = pT_i / sum pT, ungroomed jet",
            },  # fmt: skip
        },
        "particle_level": {
            "n_particles": n_particles,
            "features": list(PARTICLE_FEATURES),
            "definitions": PARTICLE_DEFINITIONS,
            "constituents": "ungroomed anti-kT jet; jet = sum of all its constituents' 4-momenta",
            "order": "pT descending; the first n_particles kept, zero-padded, mask True = real particle",
            "dtype": "float32",
        },
        "seed": seed,
        "per_class": per_class,
        "chunk": chunk,
        "features": list(FEATURES),
        "classes": list(CLASSES),
        "counts": {c: int(np.sum(y == i)) for i, c in enumerate(CLASSES)},
        "chunks": records,
        "events": {p: sum(r["n_events"] for r in records if r["process"] == p) for p in PROCESSES},
        "cpu_seconds": sum(r["seconds"] for r in records),
        "wall_seconds_last_run": wall,
        "workers": workers,
    }
    merged = out / "jsc_generated.npz"
    save_dataset(merged, x, y, provenance,
                 arrays={"particles": p, "mask": m, "particle_features": np.array(PARTICLE_FEATURES)})  # fmt: skip
    return merged


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hgq.data.generate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-class", type=int, required=True, help="labelled jets per class")
    ap.add_argument("--out", required=True, help="output directory (chunks, jsc_generated.npz, .json)")
    ap.add_argument("--workers", type=int, default=2, help="parallel processes (one per core)")
    ap.add_argument("--seed", type=int, default=0, help="run seed; chunk seeds derive from it")
    ap.add_argument("--chunk", type=int, default=500, help="jets per class per chunk")
    ap.add_argument("--particles", type=int, default=N_PARTICLES, help="leading constituents kept per jet")
    args = ap.parse_args(argv)
    try:
        import fastjet  # noqa: F401
        import pythia8mc  # noqa: F401
    except ImportError as e:
        print(f"error: {e}; install the physics extra: pip install 'hgq-hil[physics]'", file=sys.stderr)
        return 2
    path = generate(
        args.per_class, args.out, workers=args.workers, seed=args.seed, chunk=args.chunk, n_particles=args.particles
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
