"""Training throughput of ``hgq.models.jet_tagger`` (16-64-32-32-5) and of the learned-table ``lut_tagger``
(``QLUTDense(16) → QLUTDense(5)``, also without per-edge widths and with batch norm): samples/s of
one epoch, vs HGQ2's ``QDense`` and ``QDenseT`` models.

    python benchmarks/bench_train.py [--quick]

The HGQ2 baseline (``bench_train_hgq2.py``) runs as a subprocess with the python in env ``HGQ2_PYTHON``
(a separate venv with ``pip install hgq2 jax``), from a temporary directory so this repo's ``hgq`` is not on its
path; without ``HGQ2_PYTHON`` the baseline is reported as not run. Both use the same synthetic data, batch
sizes, optimizer (Adam) and β·EBOPs loss, on the CPU.
"""
# ruff: noqa: I001

from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np

from hgq.models import jet_tagger, lut_tagger

HERE = os.path.dirname(os.path.abspath(__file__))


def ours(n: int, batch_sizes: list[int], make=jet_tagger) -> dict[int, float]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 16)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 5, n), 5)
    out = {}
    for bs in batch_sizes:
        model = make()
        model.compile(keras.optimizers.Adam(3e-3), keras.losses.CategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=bs, epochs=1, verbose=0)  # compile
        t = time.perf_counter()
        model.fit(x, y, batch_size=bs, epochs=1, verbose=0)
        out[bs] = n / (time.perf_counter() - t)
    return out


def hgq2(n: int, batch_sizes: list[int], model: str = "dense") -> dict[int, float] | str:
    py = os.environ.get("HGQ2_PYTHON")
    if not py:
        return "not run (set HGQ2_PYTHON to a venv python with hgq2 + jax installed)"
    if os.sep in py:
        py = os.path.abspath(py)  # it runs from a temporary directory
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    cmd = [py, os.path.join(HERE, "bench_train_hgq2.py"), "--n", str(n), "--batch-sizes", *map(str, batch_sizes),
           "--model", model]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        return f"failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}"
    res = json.loads(r.stdout.strip().splitlines()[-1])["hgq2"]
    return {int(k): float(v) for k, v in res.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer samples (for CI smoke runs)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    n = 32768 if args.quick else 262144
    bss = [1024, 8192]
    a, b = ours(n, bss), hgq2(n, bss)
    la, lb = ours(n, [2048], lut_tagger), hgq2(n // 8, [2048], "lut")  # HGQ2's QDenseT is slow: fewer samples
    da = ours(n, [2048])
    variants = {"edge_widths=False": {"edge_widths": False}, "batch_norm=True": {"batch_norm": True}}
    opts = {k: ours(n, [2048], functools.partial(lut_tagger, **kw)) for k, kw in variants.items()}
    if args.json:
        lut = {"hgq_hil": la, "hgq2": lb, "dense_2048": da, **opts}
        print(json.dumps({"n": n, "hgq_hil": a, "hgq2": b, "lut": lut}))
        return
    print(f"jet_tagger 16-64-32-32-5 training, one epoch of {n} samples, CPU (samples/s)")
    print(f"{'batch':>7} {'hgq-hil':>12} {'HGQ2':>12} {'ratio':>7}")
    for bs in bss:
        if isinstance(b, dict):
            print(f"{bs:>7} {a[bs]:>12,.0f} {b[bs]:>12,.0f} {a[bs] / b[bs]:>7.2f}")
        else:
            print(f"{bs:>7} {a[bs]:>12,.0f} {'-':>12} {'-':>7}")
    if not isinstance(b, dict):
        print(f"HGQ2 baseline {b}")
    lut = f"{la[2048]:,.0f}"
    vs = f", HGQ2 QDenseT {lb[2048]:,.0f} ({la[2048] / lb[2048]:.1f}x)" if isinstance(lb, dict) else ""
    print(
        f"\nlut_tagger (tables of 7 bits, per-edge widths), batch 2048: {lut} samples/s{vs}; the DA jet_tagger "
        f"at batch 2048 {da[2048]:,.0f}: the LUT model's step takes {da[2048] / la[2048]:.2f}x as long"
    )
    for k, v in opts.items():
        print(f"lut_tagger({k}): {v[2048]:,.0f} samples/s, {da[2048] / v[2048]:.2f}x the DA model's step time")


if __name__ == "__main__":
    sys.exit(main())
