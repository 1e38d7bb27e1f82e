"""hdl_gen.ir: exact interval typing, folding, dead-op elimination, JSON round trip."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from hdl_gen import ops as K
from hdl_gen.ir import Graph, GraphBuilder, quantize_interval
from hgq.fixed import OVERFLOW_MODES, FixedType, Interval, from_mantissa, quantize


@pytest.mark.parametrize("rnd,ovf", list(itertools.product(["TRN", "RND", "RND_CONV", "TRN_ZERO"], OVERFLOW_MODES)))
def test_quantize_interval_is_sound_and_tight_without_wrap(rnd, ovf):
    rng = np.random.default_rng(0)
    for _ in range(300):
        f_src = int(rng.integers(-2, 6))
        lo = int(rng.integers(-200, 200))
        hi = lo + int(rng.integers(0, 300))
        iv = Interval(lo, hi, f_src)
        k, i, f = int(rng.integers(0, 2)), int(rng.integers(-2, 6)), int(rng.integers(-2, 6))
        vals = quantize(from_mantissa(np.arange(lo, hi + 1), f_src), k, i, f, rnd, ovf)
        res = quantize_interval(iv, k, i, f, rnd, ovf)
        assert res.lo_value <= vals.min() and vals.max() <= res.hi_value
        assert np.all(np.ldexp(vals, res.f) == np.round(np.ldexp(vals, res.f)))  # on the result grid
        full = FixedType(k, i, f).interval
        if ovf != "WRAP" or (res.lo_value, res.hi_value) != (full.lo_value, full.hi_value):
            assert (res.lo_value, res.hi_value) == (vals.min(), vals.max())


def test_builder_types_and_folds():
    b = GraphBuilder()
    x0 = b.input(FixedType(1, 3, 2))  # [-8, 7.75]
    x1 = b.input(FixedType(0, 2, 0))  # [0, 3]
    assert b.input(FixedType(0, 0, 0)) is None  # pruned input
    s = b.add(x0, x1, shift=1)  # x0 + 2*x1
    assert (b.iv(s).lo_value, b.iv(s).hi_value) == (-8, 13.75)
    assert b.add(x0, x1, shift=1) == s  # hash-consed
    assert b.add(x0, None) == x0 and b.relu(x1) == x1  # folds
    assert b.quantize(x1, 0, 3, 0, "RND", "SAT") == x1  # identity quantizer folds
    q = b.quantize(s, 1, 2, 0, "RND", "SAT")
    assert (b.iv(q).lo_value, b.iv(q).hi_value) == (-4, 3)
    r = b.relu(s)
    g = b.build([q, r, None], (3,), (3,))
    assert g.inputs[2] is None and g.outputs[2] is None
    assert [op.kind for op in g.ops] == [K.INPUT, K.INPUT, K.ADD, K.QUANTIZE, K.RELU]
    assert Graph.from_json(g.to_json()) == g


def test_dead_ops_are_removed_and_ids_dense():
    b = GraphBuilder()
    x = b.input(FixedType(1, 3, 0))
    dead = b.relu(x)
    y = b.neg(x)
    g = b.build([y], (1,), (1,))
    assert dead is not None and len(g.ops) == 2 and g.outputs == (1,)


def test_bad_constant_and_table():
    b = GraphBuilder()
    with pytest.raises(ValueError, match="not a dyadic"):
        b.const(Fraction(1, 3))
    x = b.input(FixedType(0, 2, 0))
    with pytest.raises(ValueError, match="lookup table has 3 entries"):
        b.lookup(x, [1, 2, 3], 0)


def test_negations_fold_into_adders():
    b = GraphBuilder()
    x = b.input(FixedType(1, 3, 0))
    y = b.input(FixedType(1, 3, 0))
    s = b.add(x, b.neg(y))  # x + (-y) = x - y
    assert b.ops[s].kind is K.ADD and b.ops[s].attrs == K.AddAttrs(shift=0, sub=True) and b.ops[s].args == (x, y)
    t = b.add(b.neg(x), y, shift=1)  # -x + 2y = 2y - x
    assert b.ops[t].kind is K.ADD and b.ops[t].attrs.sub is True
    assert b.ops[b.shift(b.neg(x), 2)].kind is K.NEG  # shifts go inside negations
    g = b.build([s, t, b.add(b.neg(x), y, 0, True)], (2,), (3,))
    assert sum(op.kind is K.NEG for op in g.ops) == 1  # only -(x + y) keeps its negator


def test_rnd_half_lsb_folds_into_the_bias_exactly():
    from hdl_gen.interp import interp

    b = GraphBuilder()
    x = b.input(FixedType(1, 3, 3))
    z = b.add(x, b.const(Fraction(3, 8)))  # x + bias
    outs = [b.quantize(b.relu(z), 1, 3, 1, "RND", "SAT"), b.quantize(z, 1, 2, 0, "RND", "WRAP")]
    g = b.build(outs, (1,), (2,))
    assert not any(op.kind is K.QUANTIZE and op.attrs.rnd == "RND" for op in g.ops)  # no rounding adder left
    xs = np.arange(-64, 64)[:, None] / 8.0  # every input value
    want = np.stack([quantize(np.maximum(xs[:, 0] + 0.375, 0), 1, 3, 1, "RND", "SAT"),
                     quantize(xs[:, 0] + 0.375, 1, 2, 0, "RND", "WRAP")], axis=1)  # fmt: skip
    assert np.array_equal(interp(g, xs), want)
