"""hdl_gen.interp: every op kind against an independent exact reference (Fractions + hgq.fixed.quantize).

The reference names kinds by their text on purpose: it must not share any rule with the op table (hdl_gen.ops)."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from hdl_gen.interp import InterpError, interp, interp_mant, interp_trace
from hdl_gen.ir import Graph, GraphBuilder
from hgq.fixed import OVERFLOW_MODES, ROUND_MODES, FixedType, quantize, requantize


def _reference(g: Graph, x: np.ndarray) -> np.ndarray:
    """Op-by-op evaluation on exact Fractions (quantize through hgq.fixed.quantize on float64)."""
    out = np.zeros((x.shape[0], len(g.outputs)))
    xf = x.reshape(x.shape[0], -1)
    for n in range(x.shape[0]):
        v: list[Fraction] = []
        for op in g.ops:
            a = [v[j] for j in op.args]
            k = op.kind
            if k == "input":
                r = Fraction(float(xf[n, op.attrs[0]]))
            elif k == "const":
                r = op.interval.lo_value
            elif k == "add":
                sh, sub = op.attrs
                r = a[0] + (-1 if sub else 1) * a[1] * Fraction(2) ** sh
            elif k == "neg":
                r = -a[0]
            elif k == "shift":
                r = a[0] * Fraction(2) ** op.attrs[0]
            elif k == "relu":
                r = max(a[0], Fraction(0))
            elif k == "quantize":
                r = Fraction(float(quantize(float(a[0]), *op.attrs)))
            elif k == "max":
                r = max(a)
            elif k == "min":
                r = min(a)
            elif k == "select":
                r = a[1] if a[0] >= 0 else a[2]
            elif k == "lookup":  # one wire, or two: row-major, the first wire the row
                e = 0
                for x, arg in zip(a, op.args, strict=True):
                    ia = g.ops[arg].interval
                    e = e * (ia.hi - ia.lo + 1) + int(x / ia.step) - ia.lo
                r = op.attrs[0][e] * op.interval.step
            elif k == "mul":
                r = a[0] * a[1]
            else:
                raise AssertionError(k)
            assert op.interval.lo_value <= r <= op.interval.hi_value, (op, r)
            v.append(r)
        for o, j in enumerate(g.outputs):
            out[n, o] = 0.0 if j is None else float(v[j])
    return out


def _every_kind_graph() -> Graph:
    b = GraphBuilder(layer="l0")
    x = [
        b.input(FixedType(1, 3, 3)),
        b.input(FixedType(0, 2, 4)),
        b.input(FixedType(1, 1, 0)),
        b.input(FixedType(0, 0, 0)),
    ]
    s = b.add(x[0], x[1], shift=2)
    d = b.add(x[0], x[2], shift=-1, sub=True)
    q = b.quantize(s, 1, 3, 1, "RND", "WRAP")
    q2 = b.quantize(d, 1, 2, 2, "RND_CONV", "SAT_SYM")
    q3 = b.quantize(x[1], 1, 0, 2, "TRN", "SAT")
    mx, mn = b.max(q, q2), b.min(q, x[1])
    sel = b.select(x[2], q3, b.neg(q2))
    table = [(v * v) % 7 - 3 for v in range(-2, 2)]
    lk = b.lookup(x[2], table, 1)
    lk2 = b.lookup((x[2], q3), [(7 * v) % 13 - 6 for v in range(4 * 4)], 2)  # two wires: 4 x 4 values
    mu = b.mul(q3, x[2])
    c = b.add(b.relu(d), b.const(0.375))
    outs = [s, d, q, q2, q3, mx, mn, sel, lk, lk2, mu, c, b.shift(x[0], 3), x[3], b.relu(b.neg(x[0]))]
    return b.build(outs, (4,), (len(outs),))


def _grid_inputs(g: Graph, n: int, rng: np.random.Generator, wide: float = 1.0) -> np.ndarray:
    cols = []
    for t in g.input_types:
        iv = t.interval
        cols.append(rng.integers(iv.lo, iv.hi + 1, n) * float(iv.step))
    return np.stack(cols, axis=1).reshape(n, *g.input_shape)


def test_every_op_kind_matches_exact_reference():
    g = _every_kind_graph()
    assert {op.kind for op in g.ops} >= {"input", "const", "add", "neg", "shift", "relu", "quantize", "max", "min",
                                         "select", "lookup", "mul"}  # fmt: skip
    x = _grid_inputs(g, 400, np.random.default_rng(1))
    want = _reference(g, x)
    assert np.array_equal(interp(g, x), want)
    assert np.array_equal(interp(g, x, expand=True), want)
    assert np.array_equal(interp(Graph.from_json(g.to_json()), x), want)
    assert np.array_equal(interp(g, x, chunk=7), want)  # chunk boundaries


@pytest.mark.parametrize("rnd,ovf", list(itertools.product(ROUND_MODES, OVERFLOW_MODES)))
def test_quantize_exhaustive_vs_requantize(rnd, ovf):
    for f_src, (k, i, f) in itertools.product([0, 3, 5], [(1, 2, 1), (0, 3, 0), (1, 0, 4), (1, 4, -1), (0, 1, 7)]):
        b = GraphBuilder()
        x = b.input(FixedType(1, 4, f_src))
        q = b.quantize(x, k, i, f, rnd, ovf)
        g = b.build([q], (1,), (1,))
        iv = g.input_types[0].interval
        m = np.arange(iv.lo, iv.hi + 1, dtype=np.int64)[:, None]
        got = interp_mant(g, m)[:, 0]
        want = requantize(m[:, 0], f_src, k, i, f, rnd, ovf)
        out_f = g.output_interval(0).f
        assert np.array_equal(got << max(f - out_f, 0), want << max(out_f - f, 0)), (f_src, k, i, f)


def test_cmvm_block_matrix_equals_adder_graph():
    rng = np.random.default_rng(2)
    b = GraphBuilder(layer="dense")
    xs = [b.input(FixedType(1, 2, int(rng.integers(0, 5)))) for _ in range(7)]
    W = np.round(rng.normal(0, 2, (7, 5)) * 8) / 8
    W[3] = 0
    ys = b.cmvm(xs, W)
    g = b.build(ys, (7,), (5,))
    x = _grid_inputs(g, 10_000, rng)
    want = x @ W  # exact: few bits
    assert np.array_equal(interp(g, x), want)
    assert np.array_equal(interp(g, x, expand=True), want)


def test_trace_returns_every_op():
    g = _every_kind_graph()
    x = _grid_inputs(g, 50, np.random.default_rng(3))
    t = interp_trace(g, x)
    assert t.shape == (50, len(g.ops))
    outs = [j for j in g.outputs if j is not None]
    assert np.array_equal(t[:, outs], interp(g, x)[:, [o for o, j in enumerate(g.outputs) if j is not None]])


def test_bad_inputs_and_wide_wires():
    g = _every_kind_graph()
    with pytest.raises(ValueError, match="input element 0 is not on its format's grid"):
        interp(g, np.full((2, 4), 0.0625))
    with pytest.raises(ValueError, match="outside its format"):
        interp_mant(g, np.full((2, 4), 1000, dtype=np.int64))
    with pytest.raises(ValueError, match="inputs of shape"):
        interp(g, np.zeros((2, 5)))
    b = GraphBuilder(layer="wide")
    x = b.input(FixedType(1, 40, 10))
    y = b.mul(x, x)
    with pytest.raises(InterpError, match="layer 'wide'.*over the interpreter's 62-bit limit"):
        interp(b.build([y], (1,), (1,)), np.zeros((1, 1)))


def test_cmvm_block_with_a_constant_input_is_exact():
    """A constant activation feeding a CMVM is folded into the block's ops; the fast block path must not drop it
    (found on a heavily pruned jet tagger, where a bias-only channel fed the next layer)."""
    g = GraphBuilder(name="t")
    x = g.input(FixedType(0, 2, 0))
    c = g.const(4.0)
    ys = g.cmvm([x, c], np.array([[1.0, 0.0, 3.0], [0.0, 2.0, 0.0]]))  # the constant feeds output 1 alone
    gr = g.build(ys, (1,), (3,))
    xi = np.array([[0.0], [1.0], [3.0]])
    want = xi @ np.array([[1.0, 0.0, 3.0]]) + np.array([0.0, 8.0, 0.0])
    assert np.array_equal(interp(gr, xi), want)
    assert np.array_equal(interp(gr, xi, expand=True), want)
