"""Sharded bulk verification (sim.shard.verify_sharded on Ray) against one simulator (sim.verify): wall times and
their ratio for 1,000,000 vectors (``--quick``: 100,000) through the shipped trained jet tagger
(hgq/data/jet_tagger_ci.keras, ``hdl_gen.convert(model, clock_ns=5.0, name="jet_tagger")``), written to a design
directory, on Verilator in bulk mode.

Vectors: the 10,000 physics test rows of the shipped sample (``hgq.data.physics_vectors``) quantized with
``hdl_gen.quantize_input``, tiled to N. The expected outputs (``design.predict``) are computed once here and
passed to every run, so each run times the same work: converting and writing the vector files, the simulator
(start-up, loading, run) and, when sharded, Ray. Every build (one per harness depth) is made before the timing.

Rows, same process and same vectors:
  * ``1 simulator``: ``sim.verify`` in this process, the baseline (best of 2);
  * ``sharded, 2 workers, new Ray``: ``verify_sharded(workers=2)`` starting (and stopping) its own local Ray
    instance, as ``hgq-hil simulate --workers 2`` does;
  * ``sharded, W workers, Ray up``: calls inside one open Ray session (its workers already started once):
    1 worker, then 2 workers (best of 2).
``ratio`` = wall time over the baseline's (bar: 2 workers <= 0.6x one).

    python benchmarks/bench_shard.py [--quick] [--vectors N] [--workers W]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

import sim
from sim.shard import default_shards, split_shards


def _jet_tagger(directory: str):
    import hdl_gen
    import hgq
    from boards.cli import SHIPPED_MODEL
    from hgq.data import physics_vectors

    model = hgq.load_model(SHIPPED_MODEL)
    d = hdl_gen.convert(model, clock_ns=5.0, name="jet_tagger")
    path = d.write(directory)
    return path, hdl_gen.quantize_input(model, physics_vectors(10_000))


def _timed(fn):
    t0 = time.perf_counter()
    r = fn()
    return time.perf_counter() - t0, r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 vectors instead of 1,000,000")
    ap.add_argument("--vectors", type=int, default=None, help="number of vectors (overrides --quick)")
    ap.add_argument("--workers", type=int, default=2, help="workers of the sharded runs (default 2)")
    args = ap.parse_args()
    n = args.vectors or (100_000 if args.quick else 1_000_000)
    w = args.workers
    if w < 2:
        ap.error("--workers must be >= 2 (the comparison is against one simulator)")
    from sim.api import bulk_build, load_design_dir
    from sim.distributed import ray_session

    load0 = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} at start")
    with tempfile.TemporaryDirectory(prefix="bench_shard_") as tmp:
        t_conv, (path, xq) = _timed(lambda: _jet_tagger(os.path.join(tmp, "jet_tagger")))
        design = load_design_dir(path)  # the loader of every worker (same Verilog, same build keys)
        x = np.resize(xq, (n, xq.shape[1]))
        t_pred, y = _timed(lambda: design.predict(x))
        print(
            f"design: the shipped jet tagger 16-64-32-32-5, latency {design.latency}, input "
            f"{design.layout['input']['width']} b, output {design.layout['output']['width']} b (convert + write "
            f"{t_conv:.1f} s); {n:,} vectors: 10,000 quantized physics rows tiled; predict {t_pred:.2f} s (once)"
        )
        warm_n = 1000 * w  # a small sharded run that starts the workers of the open Ray session
        ks = (default_shards(n, 1), default_shards(n, w))
        sizes = {n, warm_n // w} | {b - a for k in ks for a, b in split_shards(n, k)}
        t_build, _ = _timed(lambda: [bulk_build(design, design.layout, "verilator", s, "hdl") for s in sizes])
        print(f"builds for {len(sizes)} shard sizes (harness depths) ready in {t_build:.1f} s (cached after once)")

        rows = []

        def run(label, fn, repeat=1):
            best = None
            for _ in range(repeat):
                dt, r = _timed(fn)
                if not r.passed:
                    raise SystemExit(f"{label}: {r.headline()}")
                if best is None or dt < best[0]:
                    best = (dt, r)
            rows.append((label, *best))
            print(f"  {label}: {best[0]:.2f} s", file=sys.stderr, flush=True)

        kw = {"expected": y, "waves": False}
        run("1 simulator (sim.verify)", lambda: sim.verify(path, x, "verilator", "bulk", **kw), repeat=2)
        run(f"sharded, {w} workers, new Ray", lambda: sim.verify_sharded(path, x, workers=w, **kw))
        with ray_session(workers=w):
            sim.verify_sharded(path, x[:warm_n], workers=w, expected=y[:warm_n], waves=False)  # imports, design
            run("sharded, 1 worker, Ray up", lambda: sim.verify_sharded(path, x, workers=1, **kw))
            run(f"sharded, {w} workers, Ray up", lambda: sim.verify_sharded(path, x, workers=w, **kw), repeat=2)
    load1 = os.getloadavg()

    base = rows[0][1]
    print(
        f"\n{'run':32s} {'wall s':>7s} {'ratio':>6s} {'shards':>6s} {'startup s':>9s} {'shards s':>8s} "
        f"{'task s (max)':>12s} {'sim s (sum)':>11s} {'vectors/s':>10s}"
    )
    for label, dt, r in rows:
        k = len(getattr(r, "shards", [])) or 1
        task = max((s["task_s"] for s in getattr(r, "shards", [])), default=float("nan"))
        print(
            f"{label:32s} {dt:7.2f} {dt / base:5.2f}x {k:6d} {getattr(r, 'startup_s', 0.0):9.2f} "
            f"{getattr(r, 'wall_s', dt):8.2f} {task:12.2f} {r.sim_s:11.2f} {r.n_vectors / dt:10,.0f}"
        )
    warm = min(dt for label, dt, _ in rows if label.startswith(f"sharded, {w} workers, Ray up"))
    cold = next(dt for label, dt, _ in rows if label.startswith(f"sharded, {w} workers, new Ray"))
    print(
        f"\nratio {w} workers / 1 simulator: {warm / base:.2f}x with Ray up, {cold / base:.2f}x starting Ray "
        f"(bar: <= 0.6x); load average {load1[0]:.2f} at the end. wall s: the whole call; startup s: Ray start "
        "or connection + build lookup; shards s: first submission to last result; task s: one worker's shard "
        "(vector files + simulator); sim s: simulator processes, summed"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
