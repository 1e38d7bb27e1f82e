"""Sweep throughput on Ray: the same 8-trial study with 2 workers against 1 worker, same run, same machine.

Usage: python benchmarks/bench_sweep.py [--quick] [--out DIR] [--studies estimate verified]

Each timed run is the whole ``run_study`` call (Ray start-up and shut-down included). Full: 8 trials of the demo's
16-64-32-32-5 jet tagger, 20 epochs each, batch 1024, on the shipped sample, as two studies: ``estimate`` (train →
pick → lower → report the estimated LUTs) and ``verified`` (the same, plus ``[verify] yosys = true`` and
``sim_vectors = 1000``: every design synthesised and checked bit-exact on Verilator, the whole trial of issue 23).

Baseline: the study run with ``workers=1`` (one trial at a time, one single-threaded Ray worker). A warm-up trial
fills the shared JAX compilation cache first, so neither timed run pays for compiling the training step; both
runs start from an empty results store and from a copy of the warm-up's simulator cache (the Verilator runtime
objects, no design: training is deterministic, so a shared cache would hand the second run the first run's
builds). Bar (issue 23): 2 workers take <= 0.6x the wall time of 1 worker on this
2-core machine. ``--quick``: 4 trials of a 16-unit model, 2 epochs each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from boards.sweep import Study, run_study
from sim.shard import CACHE_ENV

SIM_VECTORS = 1000  # test jets per trial through Verilator in the ``verified`` study


def study(trials: int, epochs: int, hidden: list[int] | None, verified: bool = False) -> Study:
    """A grid of ``trials`` points over β end and learning rate (every trial trains its own model); ``verified``:
    every trial also runs yosys and a bit-exact Verilator check of ``SIM_VECTORS`` test jets."""
    betas = [1e-5, 3e-5, 1e-4, 3e-4][: max(1, trials // 2)]
    lut = "yosys_lut" if verified else "lut_estimate"
    return Study(name="bench", recipe={"epochs": epochs, "hidden": hidden, "batch_size": 1024},
                 space={"beta_end": betas, "lr": [3e-3, 6e-3][: 1 + (trials > 1)]}, method="grid", trials=trials,
                 objectives={"val_accuracy": "max", lut: "min"}, yosys=verified,
                 sim_vectors=SIM_VECTORS if verified else 0)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--studies", nargs="+", choices=("estimate", "verified"), default=None,
                    help="which studies to time (default: both; --quick: estimate)")  # fmt: skip
    args = ap.parse_args()
    # full: the demo's jet tagger (16-64-32-32-5) for 20 epochs per trial; quick: a 16-unit model, 2 epochs
    trials, epochs, hidden = (4, 2, [16]) if args.quick else (8, 20, None)
    kinds = args.studies or (["estimate"] if args.quick else ["estimate", "verified"])
    root = Path(args.out or tempfile.mkdtemp(prefix="bench_sweep_")).absolute()
    ratios = {}
    for kind in kinds:
        s = study(trials, epochs, hidden, verified=kind == "verified")
        # the warm-up trial fills the JAX compilation cache (and yosys's compiled wasm) for both timed runs
        warm = Study(name="warm", recipe=dict(s.recipe), space={"beta_end": [2e-5]}, method="grid", trials=1,
                     yosys=s.yosys, sim_vectors=s.sim_vectors)  # fmt: skip
        warm_cache = root / kind / "sim_cache_warm"  # stays empty for a study without simulation
        warm_cache.mkdir(parents=True, exist_ok=True)
        os.environ[CACHE_ENV] = str(warm_cache)  # Ray's local workers inherit it
        run_study(warm, root / kind / "warm", workers=1)
        times = {}
        for workers in (1, 2):
            out = root / kind / f"w{workers}"
            shutil.rmtree(out, ignore_errors=True)
            cache = root / kind / f"sim_cache_w{workers}"
            shutil.rmtree(cache, ignore_errors=True)
            shutil.copytree(warm_cache, cache, symlinks=True)
            os.environ[CACHE_ENV] = str(cache)
            t0 = time.perf_counter()
            res = run_study(s, out, workers=workers)
            times[workers] = time.perf_counter() - t0
            ok = [r for r in res["rows"] if r["status"] == "ok"]
            failed = [r for r in res["rows"] if r["status"] != "ok"]
            if failed:  # a failed trial is cheap: timing it against a working one would mean nothing
                raise SystemExit(f"{kind}, {workers} worker(s): {len(failed)} trial(s) failed: {failed[0]['error']}")
            exact = (
                f", {sum(bool(r.get('bit_exact')) for r in ok)} bit-exact on {SIM_VECTORS} jets"
                if s.sim_vectors
                else ""
            )
            print(f"{kind}: {trials} trials ({epochs} epochs each), {workers} worker(s): {times[workers]:.1f} s wall, "
                  f"{len(ok)} ok{exact}, Pareto set {len(res['pareto'])}, "
                  f"trial time summed {sum(r['trial_s'] for r in ok):.1f} s")  # fmt: skip
        ratios[kind] = times[2] / times[1]
    for kind, ratio in ratios.items():
        print(f"{kind} study: 2 workers / 1 worker wall time {ratio:.2f}x "
              f"(bar <= 0.6x: {'met' if ratio <= 0.6 else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
