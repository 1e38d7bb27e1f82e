"""Gradient parity with HGQ2: the same trained state gives the same training loss and the same gradients.

HGQ2 0.2 trains its 16-64-32-32-5 ``QDense`` tagger (the front benchmark's, ``bench_train_hgq2.build``) for
``--epochs`` epochs at a constant β and a large learning rate (so that many weights and activations are pruned:
their gradients are where the two differed), in its own venv (``bench_front_hgq2.py grad``), and saves every weight and
width variable with its training loss (cross-entropy + β·EBOPs) and gradients on one batch. The same values are
loaded into ``hgq.models.jet_tagger``, whose loss and gradients are computed on the same batch and compared,
variable by variable.

One difference is by design and left out: how a WRAP bias's integer bits are found. hgq-hil sizes them from the
bias's value at every step. HGQ2 tracks them as it tracks an activation's (up at once, down by 0.01 per step,
and 32 after the bias is pruned, so a bias that was pruned once stays 0 for thousands of steps after its bits
come back). So the biases are loaded as HGQ2 quantizes them in training (then both forwards are equal), the
number whose training value HGQ2's tracking changes is printed, and the bias widths' gradients (which depend
on that tracking) are not compared. The biases' own gradients are.

    HGQ2_PYTHON=.nox/hgq2-venv/bin/python python benchmarks/bench_grad_parity.py [--data sample] [--epochs 20]

Prints the loss of both, whether the logits are equal, and the largest difference of each gradient relative to
the largest magnitude of HGQ2's (float32 summation order differs: about 1e-5 is equality).
"""
# ruff: noqa: I001

from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import argparse
import os
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np

from hgq.data import jsc_split, load_jsc
from hgq.ebops import ebops_layers
from hgq.models import jet_tagger

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _grad import loss_and_grads  # noqa: E402
from bench_front import _hgq2  # noqa: E402

TOLERANCE = 1e-4
"""Largest relative gradient difference called equal (float32 sums in another order differ by ~1e-5)."""


def load_state(d: dict[str, np.ndarray], beta: float) -> tuple[keras.Model, int]:
    """``jet_tagger`` holding HGQ2's saved variables, its biases as HGQ2 quantizes them in training; returns it and
    the number of biases whose training value HGQ2's integer-bit tracking changes."""
    model = jet_tagger(beta0=beta)
    changed = 0
    for j, lay in enumerate(ebops_layers(model)):
        lay.kernel.assign(d[f"{j}.kernel"])
        lay.bias.assign(d[f"{j}.bias"])
        for qn, width in (("kq", "b"), ("bq", "b"), ("iq", "f")):
            q = getattr(lay, qn)
            for var, key in ((q.k, "k"), (q.i, "i"), (q.bvar, width)):
                var.assign(d[f"{j}.{qn}.{key}"].reshape(var.shape))
        changed += int(np.sum(np.asarray(lay.qbias, np.float32) != d[f"{j}.qbias"]))
        lay.bias.assign(d[f"{j}.qbias"])  # on hgq-hil's finer grid: kept exactly
    return model, changed


def gradients(model: keras.Model, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
    """Training loss (cross-entropy + the layers' β·resource), logits and gradients keyed as HGQ2's dump is."""
    value, out, grads = loss_and_grads(model, x, y)
    keys = {}
    for j, lay in enumerate(ebops_layers(model)):
        keys[id(lay.kernel)], keys[id(lay.bias)] = f"{j}.kernel", f"{j}.bias"
        keys[id(lay.kq.bvar)], keys[id(lay.kq.i)] = f"{j}.kq.b", f"{j}.kq.i"
        keys[id(lay.bq.bvar)], keys[id(lay.iq.bvar)] = f"{j}.bq.b", f"{j}.iq.f"
    g = {keys[id(v)]: gv for v, gv in zip(model.trainable_variables, grads, strict=True)}
    return value, out, g


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 epochs (a smoke run)")
    ap.add_argument("--data", default="sample", help="'sample' or a directory/npz made by hgq.data.generate")
    ap.add_argument("--epochs", type=int, default=20, help="HGQ2 training epochs before the comparison")
    ap.add_argument("--beta", type=float, default=1e-4, help="constant β of that training and of the loss")
    ap.add_argument("--lr", type=float, default=0.03, help="Adam learning rate of that training")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    py = os.environ.get("HGQ2_PYTHON")
    if not py:
        print("gradient parity not run: set HGQ2_PYTHON to a venv python with hgq2==0.2.0 and jax (nox -s bench)")
        return 0
    if args.quick:
        args.epochs = 8
    split = jsc_split(load_jsc(args.data), test_size=0.2, val_size=0.1, random_state=0)
    with tempfile.TemporaryDirectory(prefix="grad_parity_") as tmp:
        split_file, dump = Path(tmp) / "split.npz", Path(tmp) / "hgq2.npz"
        np.savez(split_file, x_train=split.x_train, y_train=split.y_train)
        _hgq2(os.path.abspath(py) if os.sep in py else py, "grad", "--split", str(split_file), "--out", str(dump),
              "--seed", str(args.seed), "--epochs", str(args.epochs), "--lr", str(args.lr),
              "--beta", str(args.beta))  # fmt: skip
        d = dict(np.load(dump))
    model, changed = load_state(d, args.beta)
    loss, logits, g = gradients(model, d["x"], d["y"])
    print(f"HGQ2 QDense tagger after {args.epochs} epochs at β {args.beta:g} ({split.name}), one batch of "
          f"{len(d['y'])} training jets")  # fmt: skip
    same = np.array_equal(logits, d["logits"])
    print(f"  loss: hgq-hil {loss:.6f}, HGQ2 {float(d['loss']):.6f}; logits equal: {same}")
    n_bias = sum(len(d[f"{j}.qbias"]) for j in range(len(ebops_layers(model))))
    print(f"  biases whose training value HGQ2's integer-bit tracking changes (loaded as HGQ2 has them; bias "
          f"widths not compared): {changed} of {n_bias}")  # fmt: skip
    worst = 0.0
    for key in sorted(k for k in g if not k.endswith(".bq.b")):
        a, b = g[key], d["grad:" + key].reshape(g[key].shape)
        rel = float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-30))
        worst = max(worst, rel)
        print(f"  d loss / d {key:10s} largest relative difference {rel:.1e}")
    ok = same and worst <= TOLERANCE
    print(f"gradient parity with HGQ2: {'equal' if ok else 'DIFFERENT'} (worst {worst:.1e}, equal means <= "
          f"{TOLERANCE:g})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
