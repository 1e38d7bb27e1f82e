"""hdl_gen.ternary: which adders fold into ternary sums, and that the folded circuits equal the interpreter bit for
bit in amaranth.sim (the three-term sums as arithmetic) and on Verilator and Icarus (the LUT6_2/CARRY8 instances,
whose tables a planted error in one entry must break)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from test_emit import check, random_mant

from hdl_gen import ternary
from hdl_gen.design import Design
from hdl_gen.examples import mlp_graph
from hdl_gen.ir import Graph, GraphBuilder
from hgq.fixed import FixedType

TYPES = [FixedType(1, 3, 2), FixedType(0, 4, 0), FixedType(1, 1, 4), FixedType(0, 2, 3), FixedType(1, 5, -1)]


def sums_graph() -> Graph:
    """Every shape of a folded pair: inner as first or second operand, each of the two subtractions, shifts both
    ways, signed and unsigned terms on different grids, a constant term, a shift alias between the adders."""
    b = GraphBuilder(name="sums")
    xs = [b.input(t) for t in TYPES]
    outs = []
    for n, (i, jj, k) in enumerate(itertools.permutations(range(len(xs)), 3)):
        s1, s2 = (n % 5) - 2, (n // 5) % 4 - 1
        sub1, sub2, second = bool(n & 1), bool(n & 2), bool(n & 4)
        inner = b.add(xs[i], xs[jj], s1, sub1)
        if n % 7 == 3:
            inner = b.shift(inner, 1)
        c = b.const(0.75 - n / 8) if n % 11 == 5 else xs[k]
        outs.append(b.add(c, inner, s2, sub2) if second else b.add(inner, c, s2, sub2))
    return b.build(outs, (len(xs),), (len(outs),))


def test_pairs_fold_only_private_adders_of_one_segment():
    b = GraphBuilder(name="p")
    x = [b.input(FixedType(1, 3, 2)) for _ in range(4)]
    shared = b.add(x[0], x[1])
    y0 = b.add(shared, x[2])  # shared has two readers: not folded
    y1 = b.add(shared, x[3], 1)
    private = b.add(x[2], x[3], 0, True)
    y2 = b.add(x[0], private, 2)  # private has one reader: folded
    out = b.add(x[1], x[3], 3)  # an inner that is also an output: not folded
    y3 = b.add(out, x[0])
    r = b.relu(b.add(x[0], x[2]))
    y4 = b.add(b.add(r, x[1]), x[3])  # a relu term of the same segment: not folded
    g = b.build([y0, y1, y2, out, y3, y4], (4,), (6,))
    d = Design(g, name="p", stages=0)
    assert d.fold == {y2: private}
    assert d.report()["ternary_adders"] == 1
    # one register rank between the relu and its readers: the relu is a plain register there, and folds
    d1 = Design(g, name="p", stages=1)
    assert all(d1.schedule.stage[a] == d1.schedule.stage[o] for o, a in d1.fold.items())


@pytest.mark.parametrize(("part", "folds"), [("xcvu13p-flga2577-2-e", True), ("xczu7ev-ffvc1156-2-e", True),
                                             ("xcvp1202-vsva2785-2MP-e-S", False), ("xc7a35t", False),
                                             ("LFE5U-85F", False), ("AGFB014R24B2E2V", False)])  # fmt: skip
def test_only_ultrascale_parts_get_ternary_cells(part, folds):
    d = Design(mlp_graph((8, 8, 4), seed=1), part=part, name="m")
    assert bool(d.fold) == folds
    assert ("LUT6_2" in d.verilog()) == folds
    assert not Design(d.graph, part=part, name="m", ternary=False).fold


def test_folded_sums_equal_the_interpreter_in_amaranth_sim():
    g = sums_graph()
    for stages in (0, 1):
        d = Design(g, name="sums", stages=stages)
        assert len(d.fold) >= 50, "the sums graph should fold nearly every pair"
        check(d, random_mant(g, 400, seed=stages))
    d = Design(mlp_graph((16, 16, 8, 5), seed=3), name="mlp")
    assert len(d.fold) > 40
    check(d, random_mant(d.graph, 300, seed=4))


def test_cells_verilog_is_deterministic_and_carries_guarded_models():
    g = sums_graph()
    d = Design(g, name="sums")
    a, b = d.verilog(), Design(g, name="sums").verilog()
    assert a == b
    # one instance of the sum module per folded pair; the module and the two cell models once each
    assert a.count(f"module {ternary.SUM_MODULE}") == 1
    assert a.count(f"{ternary.SUM_MODULE} #(") == len(d.fold) + 1  # the instances and the definition
    assert a.count("module LUT6_2") == 1 and a.count("module CARRY8") == 1
    assert "`ifndef SYNTHESIS" in a and "`ifndef HGQ_HIL_CELL_MODELS" in a and "`ifndef HGQ_HIL_ADD3" in a
    # synthesis reads the sum module but not the models (the vendor cells are the library's)
    models = a.index("`ifndef SYNTHESIS")
    assert a.index(f"module {ternary.SUM_MODULE}") < models < a.index("module LUT6_2")
    assert "LUT6_2" not in Design(g, name="sums", ternary=False).verilog()


def test_init_table_is_majority_and_propagate():
    # pins: I0..I2 term bits, I3 previous majority; the second term subtracted (inverted)
    init = ternary._init([False, True, False])
    for idx in range(16):
        t0, t1, t2, mp = (idx >> 0) & 1, ((idx >> 1) & 1) ^ 1, (idx >> 2) & 1, (idx >> 3) & 1
        assert (init >> idx) & 1 == int(t0 + t1 + t2 >= 2)
        assert (init >> (32 + idx)) & 1 == (t0 ^ t1 ^ t2 ^ mp)


def test_ternary_cells_cut_yosys_luts():
    from hdl_gen.resources import yosys_estimate

    g = mlp_graph((16, 16, 8, 5), seed=2)
    luts = {}
    for tern in (False, True):
        d = Design(g, name="m", ternary=tern)
        r = yosys_estimate(d.verilog(), "m", family="xcup", fast=True)
        luts[tern] = r["luts"] + r["srls"]
    assert luts[True] < 0.8 * luts[False], luts


class CellsDesign:
    """``design`` with its Verilog compiled with ``HGQ_HIL_ADD3_CELLS``: simulators run the LUT6_2/CARRY8 models
    themselves instead of the sum module's own evaluation of the same tables."""

    def __init__(self, design):
        self.design = design

    def __getattr__(self, name):
        return getattr(self.design, name)

    def verilog(self) -> str:
        return "`define HGQ_HIL_ADD3_CELLS\n" + self.design.verilog()


@pytest.mark.sim
@pytest.mark.parametrize("cells", [False, True], ids=["module", "cells"])
def test_ternary_sums_bit_exact_on_hdl_simulators(simulator, cells):
    from sim.api import verify

    g = sums_graph()
    d = Design(g, name="sums", stages=1)
    x = random_mant(g, 300, seed=5) * np.array([2.0**-t.f for t in g.input_types])
    res = verify(CellsDesign(d) if cells else d, x, simulator)
    assert res.passed and res.compared >= 300 and res.mismatches == 0


@pytest.mark.sim("verilator")
@pytest.mark.parametrize("cells", [False, True], ids=["module", "cells"])
def test_a_wrong_init_table_is_caught(monkeypatch, cells):
    """A table that is not a three-term sum's is evaluated as the cells would (the module's bit-by-bit path, or
    the cell models): one dropped majority entry must show as mismatches."""
    from sim.api import verify

    g = sums_graph()
    good = ternary._init

    def bad(inv):  # drop one majority entry: a carry lost for one input combination
        return good(inv) & ~(1 << 7)

    monkeypatch.setattr(ternary, "_init", bad)
    d = Design(g, name="sums_bad", stages=1)
    x = random_mant(g, 300, seed=6) * np.array([2.0**-t.f for t in g.input_types])
    res = verify(CellsDesign(d) if cells else d, x, "verilator", waves=False)
    assert not res.passed and res.mismatches > 0
