"""Where a LUT network's LUTs go: its tables (count, address and output widths), the adder trees that sum them,
and yosys' count, for an hgq-hil model or a da4ml Verilog file (docs/lut_layers.md, "Where the LUTs go").

    python scripts/lut_breakdown.py MODEL.keras [MODEL.keras ...]   # hgq-hil: lowered with hdl_gen
    python scripts/lut_breakdown.py DESIGN.v [DESIGN.v ...]         # da4ml Verilog with case-form tables

For an hgq-hil model it also sums every table sum's operands again with a greedy minimum-cost pairing (always the
pair whose adder is narrowest) and prints it next to the CMVM solver's adder bits: how far the trees are from a
simple best-first pairing. Lowering for xcvu13p at 5 ns; yosys ``synth_xilinx -family xcup`` (classic ABC).
"""
# ruff: noqa: I001

from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import argparse
import collections
import itertools
import re
from pathlib import Path

import numpy as np

import hdl_gen
from hdl_gen import ops as K
from hdl_gen.cmvm import solve
from hdl_gen.ir import GraphBuilder
from hdl_gen.resources import yosys_estimate
from hgq import load_model
from hgq.layers.lut_dense import table_luts

PART = "xcvu13p-flga2577-2-e"


def _summary(tables: list[tuple[int, int]], yosys: int) -> str:
    b_in, b_out = (np.array([t[j] for t in tables], dtype=np.float32) for j in (0, 1))
    est = float(np.sum(table_luts(b_in, b_out)))
    ins = sorted(collections.Counter(a for a, _ in tables).items())
    outs = sorted(collections.Counter(b for _, b in tables).items())
    total_out = sum(b for _, b in tables)
    return (f"  live tables {len(tables)}; address bits {dict(ins)}; output bits {dict(outs)}\n"
            f"  table LUT6 estimate {est:.0f}; Σ table output bits {total_out}; "
            f"yosys LUT {yosys} ({yosys / max(total_out, 1):.2f} per table output bit)")  # fmt: skip


def _width(lo: int, hi: int) -> int:
    return max(hi.bit_length(), 1) if lo >= 0 else max((-lo - 1).bit_length(), hi.bit_length()) + 1


def _greedy_bits(terms: list[tuple[int, int, int]]) -> int:
    """Adder bits of summing ``(lo, hi, f)`` mantissa ranges, always adding the pair whose adder is narrowest (an
    adder's bits: its result's, at or above the coarser operand's LSB, as the CMVM solver counts them)."""
    total = 0
    while len(terms) > 1:
        best = None
        for a, b in itertools.combinations(range(len(terms)), 2):
            (la, ha, fa), (lb, hb, fb) = terms[a], terms[b]
            f = max(fa, fb)
            lo, hi = (la << (f - fa)) + (lb << (f - fb)), (ha << (f - fa)) + (hb << (f - fb))
            cost = _width(lo, hi) - (f - min(fa, fb))
            if best is None or cost < best[0]:
                best = (cost, a, b, (lo, hi, f))
        cost, a, b, new = best
        total += cost
        terms = [t for j, t in enumerate(terms) if j not in (a, b)] + [new]
    return total


def hgq_hil(path: str) -> None:
    sums: list[list] = []
    solve_shared = GraphBuilder.cmvm_shared

    def record(self, xss, W, **kw):  # the table sums are CMVMs of a column of ones
        if np.asarray(W).shape[1] == 1 and np.all(np.asarray(W) == 1):
            sums.append([self.iv(x) for x in xss[0]])
        return solve_shared(self, xss, W, **kw)

    GraphBuilder.cmvm_shared = record
    try:
        design = hdl_gen.convert(load_model(path), part=PART, clock_ns=5.0, name="breakdown")
    finally:
        GraphBuilder.cmvm_shared = solve_shared
    g = design.graph
    tables = [(sum(g.ops[a].width for a in op.args), op.width) for op in g.ops if op.kind == K.LOOKUP]
    pairs = sum(len(op.args) == 2 for op in g.ops if op.kind == K.LOOKUP)
    rep = design.report()
    yosys = yosys_estimate(design.verilog(), "breakdown", family="xcup", fast=True)["luts"]
    solver = sum(solve(np.ones((len(ivs), 1)), ivs, objective="bits").cost for ivs in sums)
    greedy = sum(_greedy_bits([(iv.lo, iv.hi, iv.f) for iv in ivs]) for ivs in sums)
    print(
        f"{path}: hdl_gen, {rep['adder_bits']} adder bits, {rep['register_bits']} register bits, "
        f"{pairs} tables of two inputs"
    )
    print(_summary(tables, yosys))
    print(f"  table sums {len(sums)}: CMVM solver {solver:.0f} adder bits, greedy narrowest-pair {greedy}")


def da4ml(path: str) -> None:
    text = Path(path).read_text()
    heads = re.findall(r"module \w+_table\d+ \(input \[(\d+):0\] in, output reg \[(\d+):0\] out\)", text)
    top = re.search(r"^module\s+(\w+)", text, re.M)
    if top is None:
        raise SystemExit(f"{path}: no module in the file")
    yosys = yosys_estimate(text, top.group(1), family="xcup", fast=True)["luts"]
    print(f"{path}: da4ml")
    print(_summary([(int(a) + 1, int(b) + 1) for a, b in heads], yosys))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help=".keras (hgq-hil) or .v (da4ml) files")
    for f in ap.parse_args().files:
        (da4ml if f.endswith(".v") else hgq_hil)(f)


if __name__ == "__main__":
    main()
