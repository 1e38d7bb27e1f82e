"""sim throughput: vectors/s of the streaming testbench and the HDL bulk harness on Verilator and Icarus, and
build times, for the shipped trained jet tagger (hgq/data/jet_tagger_ci.keras, 16-64-32-32-5, VU13P @ 200 MHz)
on physics vectors (``--quick``: a random 16-16-5 MLP graph on random vectors). Baseline: bulk mode clocked by
cocotb's Clock (~236k vectors/s in an earlier measurement on the development machine).

Columns: ``vectors/s`` = vectors over the cocotb test's time from its start to ``done``, *including* the harness
loading both vector files (``$fread``); ``run v/s`` = the same without the loading (first clock edge to ``done``);
``e2e v/s`` = vectors over Python writing the files plus the whole simulator process (start-up, cocotb, loading,
run; not the build, not ``predict``). Every output word of every vector is compared for equality in all modes.

    python benchmarks/bench_sim.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

import numpy as np

import sim


def _jet_tagger():
    import hdl_gen
    import hgq
    from boards.cli import SHIPPED_MODEL
    from hgq.data import jsc_split, load_jsc

    model = hgq.load_model(SHIPPED_MODEL)
    d = hdl_gen.convert(model, part="xcvu13p-flga2577-2-e", clock_ns=5.0, name="bench_jet_tagger")
    xq = hdl_gen.quantize_input(model, jsc_split(load_jsc("sample")).x_test)
    return d, xq, "the shipped trained jet tagger 16-64-32-32-5 (hgq/data/jet_tagger_ci.keras) on physics vectors"


def _design(quick: bool):
    sizes = (16, 16, 5)
    if not quick:
        return _jet_tagger()
    from hdl_gen.design import convert
    from hdl_gen.examples import mlp_graph

    g = mlp_graph(sizes)
    d = convert(g, clock_ns=5.0, name="bench_mlp_quick")
    return d, None, f"a random quantized MLP {'-'.join(map(str, sizes))} (4-bit weights) on random vectors"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small MLP, fewer vectors")
    args = ap.parse_args()
    d, physics, what = _design(args.quick)
    print(
        f"design: {what}; latency {d.latency}, input {d.layout['input']['width']} b, "
        f"output {d.layout['output']['width']} b, {len(d.verilog().splitlines())} Verilog lines"
    )
    sims = ["verilator"] + (["icarus"] if shutil.which("iverilog") else [])
    n_stream = {"verilator": 2000 if args.quick else 20000, "icarus": 500 if args.quick else 2000}
    n_bulk = {"verilator": 100_000 if args.quick else 1_000_000, "icarus": 2000 if args.quick else 10000}
    rows = []
    for s in sims:
        clocks = ("cocotb", "hdl")
        for mode, clock, n in (("stream", "hdl", n_stream[s]), *(("bulk", c, n_bulk[s]) for c in clocks)):
            if physics is None:
                x = sim.random_vectors(d.layout, n, seed=1)
            else:  # the 10,000 physics test vectors, tiled to n
                x = np.resize(physics, (n, *physics.shape[1:]))
            t0 = time.perf_counter()
            y = d.predict(x)
            t_pred = time.perf_counter() - t0
            r = sim.verify(d, x, s, mode, expected=y, bulk_clock=clock, second_pass=False, waves=False)
            rows.append((s, f"{mode}" + (f" ({clock} clock)" if mode == "bulk" else ""), n, r, t_pred))
            print(f"  {s:9s} {rows[-1][1]:20s} done: passed={r.passed}", file=sys.stderr, flush=True)
    print(
        f"\n{'simulator':10s} {'mode':20s} {'vectors':>9s} {'vectors/s':>10s} {'vs base':>8s} {'run v/s':>10s} "
        f"{'e2e v/s':>9s} {'load s':>6s} {'write s':>7s} {'sim s':>6s} {'build s':>7s} {'reused':>6s} {'passed':>6s}"
    )
    base = {s: next(r.vectors_per_s for (ss, m, _, r, _) in rows if ss == s and "cocotb" in m) for s in sims}
    ok = True
    for s, m, n, r, _ in rows:
        ok &= r.passed
        e2e = n / (r.write_s + r.sim_s)
        print(
            f"{s:10s} {m:20s} {n:9d} {r.vectors_per_s:10.0f} {r.vectors_per_s / base[s]:7.2f}x "
            f"{r.run_vectors_per_s:10.0f} {e2e:9.0f} {r.load_s:6.2f} {r.write_s:7.2f} {r.sim_s:6.1f} {r.build_s:7.1f} "
            f"{str(r.build_reused):>6s} {str(r.passed):>6s}"
        )
    print(
        "\nbaseline: bulk mode with cocotb's Clock driving the harness (same simulator, same run); "
        "stream = per-cycle cocotb drive, pass 1 only; bulk clocks: cocotb = cocotb's Clock, hdl = harness "
        "`always #1` (Verilator --timing); "
        "target: Verilator bulk >= 500k vectors/s (full size)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
