"""Physics check of a JSC data set: groomed-mass peaks, quark/gluon shapes, optional float-MLP baseline.

    python scripts/check_physics.py [sample|openml|PATH] [--mlp] [--epochs 40]

Prints per-class medians of every feature, the groomed-mass peak per class, and (``--mlp``) the test accuracy,
overall and per class, of a float Keras MLP 16-64-32-32-5 (relu, Adam) on the standard split.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hgq.data import CLASSES, FEATURES, jsc_split, load_jsc


def mass_peak(m: np.ndarray) -> float:
    h, edges = np.histogram(m, bins=np.arange(0.0, 300.0, 5.0))
    return float(edges[np.argmax(h)] + 2.5)


def train_mlp(split, epochs: int, seed: int = 0) -> tuple[float, dict[str, float], float]:
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((16,))]
        + [keras.layers.Dense(n, activation="relu") for n in (64, 32, 32)]
        + [keras.layers.Dense(5, activation="softmax")]
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(split.x_train, split.y_train, batch_size=256, epochs=epochs, validation_split=0.1, verbose=0)
    seconds = time.perf_counter() - t0
    pred = np.argmax(model.predict(split.x_test, batch_size=4096, verbose=0), axis=1)
    per_class = {c: float(np.mean(pred[split.y_test == i] == i)) for i, c in enumerate(CLASSES)}
    return float(np.mean(pred == split.y_test)), per_class, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", nargs="?", default="sample")
    ap.add_argument("--mlp", action="store_true", help="train the float MLP baseline")
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()
    data = load_jsc(args.source)
    print(f"data set {data.name!r}: {len(data)} jets, counts {data.counts()}")
    print(f"{'feature':18s}" + "".join(f"{c:>10s}" for c in CLASSES))
    for j, f in enumerate(FEATURES):
        print(f"{f:18s}" + "".join(f"{np.median(data.X[data.y == i, j]):10.4g}" for i in range(5)))
    m = data.X[:, FEATURES.index("j_mass_mmdt")]
    print(
        "groomed-mass peak [GeV] " + "  ".join(f"{c}: {mass_peak(m[data.y == i]):.1f}" for i, c in enumerate(CLASSES))
    )
    print("  expected: w ~ 80, z ~ 91, t ~ 175")
    g, q = data.y == 0, data.y == 1
    for f in ("j_multiplicity", "j_c2_b1_mmdt", "j_d2_b1_mmdt", "j_zlogz"):
        j = FEATURES.index(f)
        print(f"g vs q median {f}: {np.median(data.X[g, j]):.4g} vs {np.median(data.X[q, j]):.4g}")
    if args.mlp:
        split = jsc_split(data)
        acc, per_class, seconds = train_mlp(split, args.epochs)
        print(f"float MLP 16-64-32-32-5, {args.epochs} epochs ({seconds:.0f} s): test accuracy {acc:.4f}")
        print("  per class: " + "  ".join(f"{c}: {a:.4f}" for c, a in per_class.items()))


if __name__ == "__main__":
    main()
