"""HGQ2 baseline: samples/s of one training epoch of the 16-64-32-32-5 jet tagger (HGQ2 ``QDense``).

``--model lut``: HGQ2's learned-LUT tagger (``build_lut``) instead.

Runs in its own venv (PyPI ``hgq2`` is imported as ``hgq`` too): run it from a directory where this repo's
``hgq`` is not importable, e.g. ``cd /tmp && KERAS_BACKEND=jax $HGQ2_PYTHON bench_train_hgq2.py``.
Prints one JSON line ``{"hgq2": {batch_size: samples_per_s}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path = [p for p in sys.path if not os.path.exists(os.path.join(p or ".", "hgq", "fixed.py"))]

import keras  # noqa: E402
import numpy as np  # noqa: E402
from hgq.config import LayerConfigScope, QuantizerConfigScope  # noqa: E402

from hgq.layers import QDense, QDenseT  # noqa: E402


def build(beta0: float = 1e-6) -> keras.Model:
    """HGQ2's 16-64-32-32-5 ``QDense`` jet tagger with the same initial formats as ``hgq.models.jet_tagger``."""
    with (
        QuantizerConfigScope(place="weight", q_type="kbi", b0=6, i0=0, round_mode="RND", overflow_mode="SAT_SYM"),
        QuantizerConfigScope(place="bias", q_type="kbi", b0=8, i0=2, round_mode="RND", overflow_mode="WRAP"),
        QuantizerConfigScope(place="datalane", q_type="kif", i0=3, f0=4, round_mode="RND", overflow_mode="WRAP"),
        LayerConfigScope(enable_ebops=True, beta0=beta0),
    ):
        inp = keras.Input((16,))
        y = inp
        for u, act in ((64, "relu"), (32, "relu"), (32, "relu"), (5, None)):
            y = QDense(u, activation=act)(y)
        return keras.Model(inp, y)


def build_lut(beta0: float = 1e-6, bn_momentum: float = 0.99) -> keras.Model:
    """HGQ2's learned-LUT jet tagger (the HGQ-LUT recipe): ``QDenseT(16)`` → ``QDenseT(5)``, both with batch norm.

    Every input→output edge is a learned 1-D function (tanh MLP, 8 hidden units) that da4ml lowers to one lookup
    table; an output sums its edges. Input quantizers (``datalane``): kif i0=3 f0=4 RND WRAP as in ``build``;
    table outputs (``table``): kbi b0=10 i0=2 (RND SAT_SYM), one bit width per edge; no activation between the
    layers (the edges are nonlinear). ``bn_momentum``: HGQ2's default 0.99 needs hundreds of steps before the
    moving statistics (eval mode) match the batch ones; lower it for short runs.
    """
    with (
        QuantizerConfigScope(place="datalane", q_type="kif", i0=3, f0=4, round_mode="RND", overflow_mode="WRAP"),
        QuantizerConfigScope(place="table", q_type="kbi", k0=1, b0=10, i0=2, homogeneous_axis=(0,)),
        LayerConfigScope(enable_ebops=True, beta0=beta0),
    ):
        inp = keras.Input((16,))
        y = QDenseT(16, batch_norm=True, bn_momentum=bn_momentum)(inp)
        return keras.Model(inp, QDenseT(5, batch_norm=True, bn_momentum=bn_momentum)(y))


BUILDERS = {"dense": build, "lut": build_lut}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=131072, help="samples per epoch")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1024, 8192])
    ap.add_argument("--model", choices=sorted(BUILDERS), default="dense")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n, 16)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 5, args.n), 5)
    out = {}
    for bs in args.batch_sizes:
        model = BUILDERS[args.model]()
        model.compile(keras.optimizers.Adam(3e-3), keras.losses.CategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=bs, epochs=1, verbose=0)  # compile
        t = time.perf_counter()
        model.fit(x, y, batch_size=bs, epochs=1, verbose=0)
        out[bs] = args.n / (time.perf_counter() - t)
    print(json.dumps({"hgq2": out}))


if __name__ == "__main__":
    main()
