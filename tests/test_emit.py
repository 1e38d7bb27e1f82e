"""hdl_gen.emit: the Amaranth circuit equals the interpreter bit for bit, with the scheduled latency, II = 1."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from amaranth.sim import Simulator

from hdl_gen import ops as K
from hdl_gen.design import Design
from hdl_gen.examples import mlp_graph
from hdl_gen.interp import interp_mant
from hdl_gen.ir import Graph, GraphBuilder
from hgq.fixed import OVERFLOW_MODES, ROUND_MODES, FixedType


# -- helpers (also used by test_design / test_schedule) --------------------------------------------------------
def pack(layout_port: dict, mant: np.ndarray) -> list[int]:
    """Pack mantissas ``[N, n]`` into port integers per the layout (LSB first, zero-width elements skipped)."""
    out = []
    els = layout_port["elements"]
    for row in mant:
        v = 0
        for e in els:
            if e["width"]:
                v |= (int(row[e["index"]]) & ((1 << e["width"]) - 1)) << e["offset"]
        out.append(v)
    return out


def unpack(layout_port: dict, word: int) -> list[int]:
    vals = []
    for e in layout_port["elements"]:
        w = e["width"]
        if not w:
            vals.append(0)
            continue
        m = (word >> e["offset"]) & ((1 << w) - 1)
        if e["signed"] and m >> (w - 1):
            m -= 1 << w
        vals.append(m)
    return vals


def random_mant(graph: Graph, n: int, seed: int = 0) -> np.ndarray:
    """Random input mantissas over each input's full range, with the corners first."""
    rng = np.random.default_rng(seed)
    cols = []
    for t in graph.input_types:
        iv = t.interval
        c = rng.integers(iv.lo, iv.hi + 1, size=n)
        c[:4] = [iv.lo, iv.hi, 0 if iv.lo <= 0 <= iv.hi else iv.lo, iv.hi]
        cols.append(c)
    return np.stack(cols, axis=1).astype(np.int64)


def simulate(design: Design, x_mant: np.ndarray, *, enable_pattern=None) -> tuple[np.ndarray, float]:
    """Stream ``x_mant`` back to back through the Amaranth simulation of ``design``.

    Checks every cycle that ``valid_out`` is high exactly ``latency`` (enabled) cycles after ``valid_in``;
    returns the output mantissas ``[N, n_out]`` and the wall time.
    """
    core = design.component(cells=False)  # amaranth.sim runs logic, not vendor cells (hdl_gen.ternary)
    lay = design.layout
    L = design.latency
    words = pack(lay["input"], x_mant)
    n = len(words)
    got: list[list[int]] = []
    sim = Simulator(core)
    if L:
        sim.add_clock(1e-8)
    en_seq = list(enable_pattern) if enable_pattern is not None else None

    async def bench(ctx):
        pipe = [False] * L  # expected valid per rank (model of the valid chain)
        i = c = 0
        while len(got) < n:
            en = True if en_seq is None else bool(en_seq[c % len(en_seq)])
            if design.clock_enable:
                ctx.set(core.en, en)
            vin = i < n
            ctx.set(core.x, words[i] if vin else 0)
            ctx.set(core.valid_in, vin)
            expect_valid = pipe[-1] if L else vin
            assert ctx.get(core.valid_out) == expect_valid, f"cycle {c}: valid_out != {expect_valid}"
            if expect_valid and en:  # with a clock enable a result is taken on enabled cycles
                got.append(unpack(lay["output"], ctx.get(core.y)))
            if not L:
                i += 1
            else:
                if en:
                    pipe = [vin, *pipe[:-1]]
                    i += vin
                await ctx.tick()
            c += 1
            assert c < 4 * n + 50 + 8 * L, "simulation did not drain"

    sim.add_testbench(bench)
    t0 = time.perf_counter()
    sim.run()
    return np.array(got, dtype=np.int64).reshape(n, len(design.graph.outputs)), time.perf_counter() - t0


def check(design: Design, x_mant: np.ndarray, **kw) -> float:
    got, secs = simulate(design, x_mant, **kw)
    want = interp_mant(design.graph, x_mant)
    bad = np.argwhere(got != want)
    assert bad.size == 0, f"{len(bad)} mismatches, first at vector {bad[0][0]} output {bad[0][1]}"
    return secs


def ops_graph() -> Graph:
    """Every op kind and every round × overflow mode on two small inputs (exhaustively testable)."""
    b = GraphBuilder(name="ops")
    a = b.input(FixedType(1, 3, 3))  # [-8, 7.875], 7 bits
    c = b.input(FixedType(0, 4, 1))  # [0, 15.5], 5 bits
    assert b.input(FixedType(1, -3, 2)) is None  # pruned input: zero width
    s = b.add(a, c, shift=1)  # a + 2c
    d = b.sub(a, c)
    outs = []
    for rnd in ROUND_MODES:
        for ovf in OVERFLOW_MODES:
            outs += [
                b.quantize(s, 1, 2, 1, rnd, ovf),
                b.quantize(d, 0, 2, 0, rnd, ovf),
                b.quantize(a, 1, -1, 4, rnd, ovf),
            ]
    outs += [
        b.quantize(a, 1, 1, 5, "TRN", "SAT"),  # finer grid: left shift then saturate
        b.quantize(c, 1, 5, 3, "RND", "WRAP"),
        b.relu(d),
        b.max(a, c),
        b.min(s, d),
        b.select(d, a, c),
        b.neg(s),
        b.mul(a, c),
        b.mul(d, d),
        b.lookup(c, [(v * 7 + 3) % 23 - 11 for v in range(32)], 2),
        b.lookup((b.quantize(a, 1, 1, 1, "TRN", "WRAP"), c), [(v * 5 + 1) % 19 - 9 for v in range(8 * 32)], 1),
        b.shift(a, 3),
        b.shift(s, -2),
        b.const(-2.75),
        None,
    ]
    return b.build(outs, (3,), (len(outs),))


def exhaustive(graph: Graph) -> np.ndarray:
    ranges = [np.arange(t.interval.lo, t.interval.hi + 1) for t in graph.input_types]
    grid = np.meshgrid(*ranges, indexing="ij")
    return np.stack([g.ravel() for g in grid], axis=1).astype(np.int64)


def _strip_non_operators(v: str) -> str:
    """Verilog without comments, ``(* attributes *)`` and ``@*`` (the other uses of ``*``)."""
    return re.sub(r"/\*.*?\*/|\(\*.*?\*\)|@\*", "", v, flags=re.S)


# -- tests ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stages", [0, 1, 3])
def test_every_op_exhaustive(stages):
    g = ops_graph()
    d = Design(g, clock_ns=5.0, stages=stages, name="ops")
    assert d.latency == stages
    x = exhaustive(g)  # 128 * 32 * 1 = 4096 vectors
    check(d, x)


def test_small_mlp_pipelined_back_to_back():
    g = mlp_graph((6, 10, 6, 3), seed=1, wbits=3, in_bits=6, act_bits=6)
    d = Design(g, clock_ns=1.6)  # tight clock: several ranks
    assert d.latency >= 3
    check(d, random_mant(g, 500, seed=2))


def test_clock_enable_stalls_the_pipeline():
    g = mlp_graph((4, 6, 3), seed=3, wbits=3, in_bits=5, act_bits=5)
    d = Design(g, clock_ns=1.5, clock_enable=True)
    assert d.latency >= 2 and d.layout["clock_enable"]
    check(d, random_mant(g, 200, seed=4), enable_pattern=[1, 1, 0, 1, 0, 0, 1])


def test_no_constant_multiplication_and_byte_identical():
    g = mlp_graph((6, 10, 6, 3), seed=1, wbits=3, in_bits=6, act_bits=6)
    v1 = Design(g, clock_ns=2.0, name="m").verilog()
    v2 = Design(Graph.from_json(g.to_json()), clock_ns=2.0, name="m").verilog()
    assert v1 == v2
    body = _strip_non_operators(v1)
    assert "*" not in body  # no multiplication at all: weights are shift-add only
    assert re.search(r"^module m\(", v1, flags=re.M)
    for port in ("clk", "rst", "x", "y", "valid_in", "valid_out"):
        assert re.search(rf"\b(input|output) (\[\d+:0\] )?{port};", v1), port
    # a var x var product does emit '*', and only between signals
    v3 = Design(ops_graph(), stages=1, name="ops").verilog()
    body3 = _strip_non_operators(v3)
    assert body3.count("*") == sum(op.kind is K.MUL for op in ops_graph().ops) == 2
    const = r"(\d+'s?[bdh][0-9a-fA-F_]+|\b\d+\b)"
    assert not re.search(rf"{const}\)?\s*\*|\*\s*(\$signed\()?{const}", body3)


def test_combinational_core_has_clock_ports_and_zero_latency():
    g = mlp_graph((4, 5, 2), seed=5, wbits=3, in_bits=5, act_bits=5)
    d = Design(g, stages=0, name="comb")
    assert d.latency == 0 and d.report()["register_bits"] == 0
    v = d.verilog()
    assert "always @(posedge" not in v and re.search(r"input clk;", v)
    check(d, random_mant(g, 300, seed=6))


@pytest.mark.slow
def test_jet_mlp_2000_vectors():
    """The jet-tagger-sized MLP (16-64-32-32-5, 4-bit weights, 8-bit inputs) on 2,000 vectors, back to back."""
    t0 = time.perf_counter()
    g = mlp_graph()
    d = Design(g, clock_ns=5.0, name="jet_mlp")
    assert d.latency >= 2
    gen = time.perf_counter() - t0
    secs = check(d, random_mant(g, 2000, seed=7))
    print(f"jet MLP: graph+schedule {gen:.1f} s, latency {d.latency}, amaranth.sim 2000 vectors {secs:.1f} s")


@pytest.mark.slow
def test_shipped_jet_tagger_2000_physics_vectors():
    """The trained jet tagger (hgq/data/jet_tagger_ci.keras) on 2,000 physics vectors in amaranth.sim, back to
    back: RTL == interpreter == Keras, valid_out exactly `latency` cycles after valid_in."""
    import hdl_gen
    import hgq
    from boards.cli import SHIPPED_MODEL
    from hgq.data import jsc_split, load_jsc
    from hgq.fixed import to_mantissa

    model = hgq.load_model(SHIPPED_MODEL)
    d = hdl_gen.convert(model, part="xcvu13p-flga2577-2-e", clock_ns=5.0, name="jet_tagger")
    x = jsc_split(load_jsc("sample")).x_test[:2000]
    xq = hdl_gen.quantize_input(model, x)
    assert np.array_equal(d.predict(xq), np.asarray(model.predict(x, verbose=0), dtype=np.float64))
    x_mant = np.stack([to_mantissa(xq[:, j], t.f) for j, t in enumerate(d.graph.input_types)], axis=1)
    check(d, x_mant)
