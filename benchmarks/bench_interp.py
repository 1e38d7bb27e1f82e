"""Interpreter throughput on the 16-64-32-32-5 jet MLP (samples/s, one core) vs Keras predict; graph cost per layer.

Usage: python benchmarks/bench_interp.py [--quick]

Baseline: ``model.predict`` (Keras 3 / JAX float32, CPU) on the same inputs in the same run. Throughput is
measured in process CPU time (the figure that does not depend on other jobs sharing the machine) and wall
time; BLAS/XLA threads are limited to one.
"""

# ruff: noqa: I001
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import hgq  # noqa: E402,F401  (first: sets KERAS_BACKEND=jax)

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from hdl_gen.interp import interp  # noqa: E402
from hdl_gen.cost import graph_cost  # noqa: E402
from hdl_gen.tracer import quantize_input, trace  # noqa: E402
from hgq.calibrate import trace_minmax  # noqa: E402
from hgq.data.jsc import load_jsc  # noqa: E402
from hgq.models import jet_tagger  # noqa: E402


def _rate(fn, n: int, repeat: int) -> tuple[float, float]:
    """Best samples/s over ``repeat`` runs: (CPU time, wall time)."""
    best_c = best_w = float("inf")
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        fn()
        best_c, best_w = min(best_c, time.process_time() - c), min(best_w, time.perf_counter() - w)
    return n / best_c, n / best_w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples and repeats")
    args = ap.parse_args()
    X = load_jsc("sample").X.astype(np.float64)
    X = (X - X.mean(0)) / X.std(0)
    n = 50_000 if args.quick else 400_000
    repeat = 2 if args.quick else 3
    x = np.tile(X, (-(-n // len(X)), 1))[:n]

    model = jet_tagger()
    trace_minmax(model, X[:20000], batch_size=20000)
    t = time.perf_counter()
    g = trace(model)
    t_trace = time.perf_counter() - t
    xq = quantize_input(model, x)
    interp(g, xq[:100])  # compile the kernels
    interp(g, xq[:100], expand=True)

    want = np.asarray(model.predict(X, batch_size=8192, verbose=0), dtype=np.float64)
    mism = int(np.sum(interp(g, quantize_input(model, X)) != want))

    rows = []
    base = _rate(lambda: model.predict(x, batch_size=8192, verbose=0), n, repeat)
    rows.append(("keras predict (baseline)", *base))
    rows.append(("interp expand=False", *_rate(lambda: interp(g, xq), n, repeat)))
    rows.append(("interp expand=True", *_rate(lambda: interp(g, xq, expand=True), n, repeat)))

    print(f"jet MLP 16-64-32-32-5: {len(g.ops)} ops, {len(g.blocks)} CMVM blocks, trace {t_trace:.2f} s")
    print(f"mismatches interp vs predict on the shipped sample: {mism} of {want.size} outputs ({len(X)} jets)")
    print(f"{'engine':28s} {'samples/s (CPU)':>16s} {'samples/s (wall)':>17s} {'vs baseline (CPU)':>18s}")
    for name, c, w in rows:
        print(f"{name:28s} {c:16,.0f} {w:17,.0f} {c / base[0]:17.2f}x")
    target = 1e6
    best = rows[1][1]
    print(f"target >= {target:,.0f} samples/s (CPU, expand=False): {'met' if best >= target else 'NOT met'}")

    cost = graph_cost(g)
    print(f"\n{'layer':10s} {'adders':>7s} {'adder bits':>11s} {'LUT bits':>9s} {'depth':>6s}")
    for name, c in cost["layers"].items():
        print(f"{name or '-':10s} {c['adders']:7d} {c['adder_bits']:11d} {c['lut_bits']:9d} {c['depth']:6d}")
    c = cost["total"]
    print(f"{'total':10s} {c['adders']:7d} {c['adder_bits']:11d} {c['lut_bits']:9d} {c['depth']:6d}")


if __name__ == "__main__":
    main()
