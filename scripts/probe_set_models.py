"""Float probes of particle-level set models on a generated set: how pooling and energy weighting do against the
16-feature MLP on the same jets (docs/particles.md, "Why the set models trail").

    python scripts/probe_set_models.py DIR [--particles 32] [--epochs 10] [--models ds_sum efn ds_mean mlp]

``DIR``: a set made with ``python -m hgq.data.generate ... --particles N``. Float Keras, Adam 3e-3, batch 1024,
seed 0, the standard split (seed 42, 20 % test); prints the held-out test accuracy after every epoch.

- ``ds_mean`` / ``ds_sum``: Deep Sets, per-particle 64-64 ReLU, masked mean / sum over particles, 64-32 head.
- ``efn``: energy-flow network, ``Σ_i z_i Φ(Δη_i, Δφ_i, ΔR_i)`` (Φ 64-64 ReLU, ``z`` = pT fraction), 64-32 head.
- ``pfn_z``: both sums of a per-particle 64-64 embedding of all features, pT-weighted and plain, concatenated.
- ``mlp``: the 16 HLF of the same jets, 64-32 head.
"""
# ruff: noqa: I001

from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import argparse
import time

import keras
from keras import layers, ops

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


def build(name: str, n: int) -> keras.Model:
    if name == "mlp":
        x = keras.Input((16,))
        return _head(x, x)
    p, m = keras.Input((n, len(PARTICLE_FEATURES))), keras.Input((n,))
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--particles", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--models", nargs="+", default=["ds_sum", "efn", "pfn_z", "ds_mean", "mlp"])
    args = ap.parse_args()
    s = particle_split(load_particles(args.data, n_particles=args.particles), seed=42, test_size=0.2)
    for name in args.models:
        keras.utils.set_random_seed(0)
        model = build(name, args.particles)
        model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])  # fmt: skip
        xtr = s.x_train if name == "mlp" else [s.p_train, s.mask_train.astype("float32")]
        xte = s.x_test if name == "mlp" else [s.p_test, s.mask_test.astype("float32")]
        t0, accs = time.perf_counter(), []
        for _ in range(args.epochs):
            model.fit(xtr, s.y_train, batch_size=1024, epochs=1, verbose=0)
            accs.append(model.evaluate(xte, s.y_test, batch_size=8192, verbose=0)[1])
        print(f"{name:8} {args.particles:4d} particles, test accuracy per epoch: "
              + " ".join(f"{a:.3f}" for a in accs) + f"  ({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
