"""Float probes of particle-level set models on a generated set: how pooling and energy weighting do against the
16-feature MLP on the same jets (docs/particles.md, "Why the set models trail").

    python scripts/probe_set_models.py DIR [--particles 32] [--epochs 10] [--models ds_sum efn ds_mean mlp]
                                           [--features K] [--models mass_scale]

``DIR``: a set made with ``python -m hgq.data.generate ... --particles N``. Float Keras, Adam 3e-3, batch 1024,
seed 0, the standard split (seed 42, 20 % test); prints the held-out test accuracy after every epoch.

- ``ds_mean`` / ``ds_sum``: Deep Sets, per-particle 64-64 ReLU, masked mean / sum over particles, 64-32 head.
- ``efn``: energy-flow network, ``Σ_i z_i Φ(Δη_i, Δφ_i, ΔR_i)`` (Φ 64-64 ReLU, ``z`` = pT fraction), 64-32 head.
- ``pfn_z``: both sums of a per-particle 64-64 embedding of all features, pT-weighted and plain, concatenated.
- ``mlp``: the 16 HLF of the same jets, 64-32 head.
- ``mass_scale``: what the HLF MLP (64-32-32) loses without the absolute scale: the 16 HLF as they are, the
  groomed mass replaced by mass / pT_jet (with and without ln pT_jet as a 17th input), no mass at all, and the
  groomed mass replaced by the absolute or the relative invariant mass of the ``--particles`` leading particles
  (pT_jet and the masses from ``log_pt``, ``log_ptrel``, ``etarel``, ``phirel``); prints the test accuracy after
  the last epoch and how many W and Z jets it swaps.

``--features K``: the set models read the first K particle features only (8: the generator's features before
``log_pt`` and ``log_e`` were added).
"""
# ruff: noqa: I001

from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import argparse
import time

import keras
import numpy as np
from keras import layers, ops

from hgq.data import CLASSES, FEATURES
from hgq.data.particles import PARTICLE_FEATURES, load_particles, particle_split

ANGLES = [PARTICLE_FEATURES.index(f) for f in ("etarel", "phirel", "delta_r")]
PT = PARTICLE_FEATURES.index("ptrel")


def _head(h, inputs) -> keras.Model:
    for u in (64, 32):
        h = layers.Dense(u, activation="relu")(h)
    return keras.Model(inputs, layers.Dense(5)(h))


def _embed(h):
    for u in (64, 64):
        h = layers.Dense(u, activation="relu")(h)
    return h


def build(name: str, n: int, n_feat: int) -> keras.Model:
    if name == "mlp":
        x = keras.Input((16,))
        return _head(x, x)
    p, m = keras.Input((n, n_feat)), keras.Input((n,))
    mask, z = m[..., None], p[..., PT : PT + 1] * m[..., None]
    if name == "ds_mean":
        h = ops.sum(_embed(p) * mask, 1) / ops.maximum(ops.sum(mask, 1), 1.0)
    elif name == "ds_sum":
        h = layers.Dense(64)(ops.sum(_embed(p) * mask, 1))
    elif name == "efn":
        h = ops.sum(_embed(ops.take(p, ANGLES, axis=-1)) * z, 1)
    elif name == "pfn_z":
        e = _embed(p)
        h = ops.concatenate([ops.sum(e * z, 1), ops.sum(e * mask, 1)], -1)
    else:
        raise ValueError(f"unknown model {name!r}; choose from ds_mean, ds_sum, efn, pfn_z, mlp")
    return _head(h, [p, m])


def mass_scale(s, epochs: int) -> None:
    """The HLF MLP with its groomed mass swapped for scale-free or particle-level masses (module docstring)."""
    f = {n: i for i, n in enumerate(PARTICLE_FEATURES)}
    feats = list(FEATURES)
    mi = feats.index("j_mass_mmdt")

    def raw_particles(p):
        return p.astype(np.float64) / s.p_scale  # raw features again (the split scales by powers of two: exact)

    def jet_pt(p):
        return np.exp(p[:, 0, f["log_pt"]] - p[:, 0, f["log_ptrel"]])

    def view(p, m, x, hlf):
        p = raw_particles(p)
        pt = np.where(m, np.exp(p[..., f["log_pt"]]), 0.0)
        eta, phi = p[..., f["etarel"]], p[..., f["phirel"]]
        pt_jet = jet_pt(p)
        sums = [(pt * np.cosh(eta)).sum(1), (pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1),
                (pt * np.sinh(eta)).sum(1)]  # fmt: skip
        m_lead = np.sqrt(np.maximum(sums[0] ** 2 - sums[1] ** 2 - sums[2] ** 2 - sums[3] ** 2, 0.0))
        raw = x * hlf.scale + hlf.mean  # the HLF before z-scoring
        rest = np.delete(raw, mi, axis=1)
        return {
            "16 HLF": raw,
            "groomed mass / pT_jet": np.concatenate([rest, (raw[:, mi] / pt_jet)[:, None]], 1),
            "groomed mass / pT_jet, ln pT_jet": np.concatenate(
                [rest, (raw[:, mi] / pt_jet)[:, None], np.log(pt_jet)[:, None]], 1
            ),
            "no mass": rest,
            "leading-particle mass (GeV)": np.concatenate([rest, m_lead[:, None]], 1),
            "leading-particle mass / pT_jet": np.concatenate([rest, (m_lead / pt_jet)[:, None]], 1),
        }

    print("test jets' pT (GeV), 5th / 50th / 95th percentile: " + " / ".join(
        f"{v:,.0f}" for v in np.percentile(jet_pt(raw_particles(s.p_test)), [5, 50, 95])))  # fmt: skip
    train = view(s.p_train, s.mask_train, s.x_train, s.hlf)
    test = view(s.p_test, s.mask_test, s.x_test, s.hlf)
    for name, xtr in train.items():
        mu, sd = xtr.mean(0), xtr.std(0) + 1e-12
        keras.utils.set_random_seed(0)
        x = keras.Input((xtr.shape[1],))
        h = x
        for u in (64, 32, 32):
            h = layers.Dense(u, activation="relu")(h)
        model = keras.Model(x, layers.Dense(5)(h))
        model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])  # fmt: skip
        model.fit((xtr - mu) / sd, s.y_train, batch_size=1024, epochs=epochs, verbose=0)
        pred = np.argmax(model.predict((test[name] - mu) / sd, batch_size=8192, verbose=0), axis=-1)
        w, z = CLASSES.index("w"), CLASSES.index("z")
        wz = int(np.sum((s.y_test == w) & (pred == z)) + np.sum((s.y_test == z) & (pred == w)))
        print(f"MLP, {name:34} test accuracy {np.mean(pred == s.y_test):.4f}, W/Z confused {wz}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--particles", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--models", nargs="+", default=["ds_sum", "efn", "pfn_z", "ds_mean", "mlp"])
    ap.add_argument("--features", type=int, default=len(PARTICLE_FEATURES), help="set models read the first K")
    args = ap.parse_args()
    s = particle_split(load_particles(args.data, n_particles=args.particles), seed=42, test_size=0.2)
    for name in args.models:
        if name == "mass_scale":
            mass_scale(s, args.epochs)
            continue
        keras.utils.set_random_seed(0)
        model = build(name, args.particles, args.features)
        model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])  # fmt: skip
        k = args.features
        xtr = s.x_train if name == "mlp" else [s.p_train[..., :k], s.mask_train.astype("float32")]
        xte = s.x_test if name == "mlp" else [s.p_test[..., :k], s.mask_test.astype("float32")]
        t0, accs = time.perf_counter(), []
        for _ in range(args.epochs):
            model.fit(xtr, s.y_train, batch_size=1024, epochs=1, verbose=0)
            accs.append(model.evaluate(xte, s.y_test, batch_size=8192, verbose=0)[1])
        print(f"{name:8} {args.particles:4d} particles, test accuracy per epoch: "
              + " ".join(f"{a:.3f}" for a in accs) + f"  ({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
