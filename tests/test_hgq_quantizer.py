"""hgq.quantizer: inference forward == hgq.fixed.quantize bit for bit; gradients; calibration."""
# ruff: noqa: I001

from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import itertools
import zlib

import keras
import numpy as np
import pytest
from keras import ops

from hgq.calibrate import trace_minmax
from hgq.fixed import OVERFLOW_MODES, ROUND_MODES, quantize
from hgq.quantizer import Quantizer


def values(rng, shape) -> np.ndarray:
    """Mix of grid points, half-LSB ties, random reals and far out-of-range values (float32)."""
    x = rng.normal(size=shape) * 6
    ties = np.round(rng.normal(size=shape) * 64) / 128
    far = rng.choice([-1, 1], size=shape) * rng.uniform(20, 5000, size=shape)
    pick = rng.integers(0, 3, size=shape)
    return np.where(pick == 0, x, np.where(pick == 1, ties, far)).astype(np.float32)


def randomize(q: Quantizer, rng) -> None:
    shape = q.k.shape
    q.k.assign(rng.integers(0, 2, size=shape).astype("float32"))
    q.i.assign(rng.integers(-3, 5, size=shape).astype("float32"))
    lo = 0 if q.q_type == "kbi" else -2
    q.bvar.assign(rng.integers(lo, 9, size=shape).astype("float32"))


@pytest.mark.parametrize("q_type", ["kif", "kbi"])
@pytest.mark.parametrize("overflow", OVERFLOW_MODES)
def test_inference_equals_fixed_quantize(q_type, overflow):
    rng = np.random.default_rng(zlib.crc32(repr((q_type, overflow)).encode()))
    for rnd, place in itertools.product(ROUND_MODES, ["activation", "weight"]):
        shape = (64, 5, 3) if place == "activation" else (5, 3)
        q = Quantizer(q_type, place=place, round_mode=rnd, overflow_mode=overflow)
        q.build(shape)
        randomize(q, rng)
        x = values(rng, shape)
        got = np.asarray(ops.convert_to_numpy(q(x, training=False)), dtype=np.float64)
        k, i, f = q.kif()
        want = quantize(x.astype(np.float64), k, i, f, rnd, overflow)
        assert k.shape == i.shape == f.shape == shape[-2:]
        assert np.array_equal(got, want), (rnd, place, np.argwhere(got != want)[:3])
        if overflow == "WRAP" and place == "activation":
            w = k + i + f
            hi = np.ldexp(1.0, i)  # some inputs really are out of range, so wrap is exercised
            assert np.any((np.abs(x) > hi) & (w > 0))


@pytest.mark.parametrize("granularity,wshape", [("element", (1, 4, 3)), ("channel", (1, 1, 3)), ("tensor", (1, 1, 1))])
def test_granularity_shapes(granularity, wshape):
    q = Quantizer("kif", granularity=granularity)
    q.build((None, 4, 3))
    assert tuple(q.i.shape) == wshape
    assert q.kif()[2].shape == (4, 3)
    q2 = Quantizer("kbi", place="weight", homogeneous_axes=(0,))
    q2.build((4, 3))
    assert tuple(q2.bvar.shape) == (1, 3)


def test_surrogate_gradient_f_and_ste():
    import jax

    q = Quantizer("kif", place="weight", f0=2, i0=3, overflow_mode="SAT")
    q.build((6,))
    x = np.array([0.1, 0.3, -0.7, 1.26, 20.0, -20.0], dtype=np.float32)

    fv = np.full((6,), 2.0, np.float32)
    # gradients through the stateless call: d q / d f = ln2 * (x - q) in range, d q / d x = 1 in range, 0 clipped
    from keras import StatelessScope

    def qf(fvar, xv):
        with StatelessScope(state_mapping=[(q.bvar, fvar)]):
            return ops.sum(q(xv, training=True))

    gf = np.asarray(jax.grad(qf)(fv, x))
    gx = np.asarray(jax.grad(qf, argnums=1)(fv, x))
    qv = quantize(x, 1, 3, 2, "RND", "SAT")
    inr = np.abs(x) < 8
    assert np.allclose(gf[inr], np.log(2) * (x - qv)[inr], rtol=1e-5, atol=1e-7)
    assert np.array_equal(gx, inr.astype(np.float32))


def _width_grad(q: Quantizer, x, g):
    """Gradient of ``Σ g·q(x)`` (training) with respect to the quantizer's bit variable."""
    import jax
    from keras import StatelessScope

    def loss(b):
        with StatelessScope(state_mapping=[(q.bvar, b)]):
            return ops.sum(q(x, training=True) * g)

    return np.asarray(jax.grad(loss)(np.asarray(q.bvar.numpy())))


def test_pruned_weight_gets_the_same_gradient_either_sign():
    """A pruned weight (0 bits) is 0 but its clip bound still learns, on the negative side as on the positive one:
    mirrored weights under mirrored losses get the same gradient on ``b`` (HGQ2 keeps the stored sign bit there; a
    sign masked by pruning left pruned negative weights no way back)."""
    q = Quantizer("kbi", place="weight", b0=0.3, i0=-1, overflow_mode="SAT_SYM")  # b rounds to 0: pruned
    q.build((2,))
    x = np.array([0.3, -0.3], np.float32)
    assert np.array_equal(np.asarray(q(x, training=True)), [0.0, 0.0])
    gb = _width_grad(q, x, np.array([-1.0, 1.0], np.float32))  # both losses want a larger |q|
    assert gb[0] < 0 and gb[1] == gb[0]


def test_kbi_bits_keep_their_gradient_at_zero():
    """EBOPs still press on a kbi width that rounds to 0 (as in HGQ2): a pruned weight that the loss pulls back
    pays for its bits, instead of reviving for free."""
    import jax
    from keras import StatelessScope

    q = Quantizer("kbi", place="weight", b0=0.3, i0=0)
    q.build((3,))
    b = np.array([0.0, 0.3, 2.0], np.float32)

    def total_bits(bv):
        with StatelessScope(state_mapping=[(q.bvar, bv)]):
            return ops.sum(q.bits(training=True))

    with StatelessScope(state_mapping=[(q.bvar, b)]):
        assert np.array_equal(np.asarray(q.bits(training=True)), [0.0, 0.0, 2.0])
    assert np.array_equal(np.asarray(jax.grad(total_bits)(b)), [1.0, 1.0, 1.0])


def test_wrap_activation_tracks_max_then_decays():
    q = Quantizer("kif", f0=2, i0=0, i_decay=0.5)
    q.build((None, 2))
    q(np.array([[5.0, 0.2]], np.float32), training=True)
    # jump up at once (5.0 + 0.25 <= 8); 0.2 -> 0.25 needs only i=-1, so i drifts down by i_decay
    assert np.array_equal(q.i.numpy(), [[3.0, -0.5]])
    q(np.array([[0.1, 0.1]], np.float32), training=True)
    assert np.array_equal(q.i.numpy(), [[2.5, -1.0]])


@pytest.mark.parametrize("q_type", ["kif", "kbi"])
def test_trace_minmax_sets_i_and_k(q_type):
    rng = np.random.default_rng(1)
    inp = keras.Input((4,))
    q = Quantizer(q_type, f0=3, b0=6, round_mode="RND")
    model = keras.Model(inp, q(inp))
    x = rng.normal(size=(300, 4)).astype(np.float32) * np.array([0.1, 1.0, 10.0, 3.0], np.float32)
    x[:, 3] = np.abs(x[:, 3])  # non-negative column -> k = 0
    assert not q.calibrated
    trace_minmax(model, x, batch_size=64)
    assert q.calibrated
    k, i, f = q.kif()
    if q_type == "kif":
        q0 = quantize(x, 1, 20, 3, "RND", "SAT")
        want_i = np.ceil(np.log2(np.abs(q0).max(0) + 2.0**-3))
        want_k = (q0 < 0).any(0)
    else:
        want_i = np.ceil(np.log2(np.abs(x).max(0) / (1 - 2.0**-6)))
        want_k = (x < 0).any(0)
    alive = (i + f) > 0
    assert np.array_equal(i[alive], want_i.astype(np.int64)[alive])
    assert np.array_equal(k, (want_k & alive).astype(np.int64))
    assert k[3] == 0
    y = model.predict(x, verbose=0)  # calibrated: no wrap on the calibration data
    assert np.array_equal(y, quantize(x, k, i, f, "RND", "WRAP"))
    assert np.array_equal(y, quantize(x, k, i, f, "RND", "SAT"))


def _reference_train_forward(q: Quantizer, x):
    """The training forward written plainly with stop_gradient STEs (the definition the one-op core must equal)."""
    sg = ops.stop_gradient
    k, i, f, bits = q._widths(True, x if (q.wrap and not q.is_activation) else None)
    xc = x
    if not q.wrap:
        step = ops.power(2.0, -f)
        hi = ops.power(2.0, i) - step
        k = q.k if q.q_type == "kbi" else k  # kbi: the stored sign bit bounds a pruned element (value masked below)
        lo = -k * ops.power(2.0, i) if q.overflow_mode == "SAT" else -k * hi
        xc = ops.where(x > hi, hi, ops.where(x < lo, lo, x))
    y = xc * ops.power(2.0, f)
    from hgq.quantizer import round_mantissa

    m = y + sg(round_mantissa(y, q.round_mode) - y)
    qv = m * ops.power(2.0, -f)
    return qv + sg(ops.where(sg(bits) > 0, qv, ops.zeros_like(qv)) - qv)


@pytest.mark.parametrize("q_type", ["kif", "kbi"])
@pytest.mark.parametrize("overflow", OVERFLOW_MODES)
@pytest.mark.parametrize("place,granularity", [("weight", "element"), ("weight", "channel"), ("bias", "element")])
def test_one_op_training_forward_equals_definition(q_type, overflow, place, granularity):
    """Training values are identical and the gradients (x, widths) agree with the stop_gradient definition."""
    import jax
    from keras import StatelessScope

    rng = np.random.default_rng(zlib.crc32(repr((q_type, overflow, place, granularity)).encode()))
    q = Quantizer(q_type, place=place, overflow_mode=overflow, granularity=granularity, round_mode="RND")
    shape = (7, 5)
    q.build(shape)
    randomize(q, rng)
    x = values(rng, shape) / 8
    g = rng.normal(size=shape).astype(np.float32)
    wvars = [q.bvar, q.i]

    def loss(fn, ws, xv):
        with StatelessScope(state_mapping=list(zip(wvars, ws, strict=True))):
            return ops.sum(fn(xv) * g)

    ws = [np.asarray(v.numpy()) for v in wvars]
    new = lambda xv: q(xv, training=True)  # noqa: E731
    old = lambda xv: _reference_train_forward(q, xv)  # noqa: E731
    with StatelessScope(state_mapping=list(zip(wvars, ws, strict=True))):
        assert np.array_equal(np.asarray(new(x)), np.asarray(old(x)))
    gn = jax.grad(lambda w, xv: loss(new, w, xv), argnums=(0, 1))(ws, x)
    go = jax.grad(lambda w, xv: loss(old, w, xv), argnums=(0, 1))(ws, x)
    assert np.array_equal(np.asarray(gn[1]), np.asarray(go[1]))  # dq/dx: a 0/1 mask times g, exact
    # the definition computes ln2·x·2**f·2**-f − ln2·q (cancellation); the core ln2·(x − q): agree to float eps
    eps = 1e-6 * float(np.sum(np.abs(g * x)))
    for a, b in zip(gn[0], go[0], strict=True):
        assert np.allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=eps)
    assert any(np.any(np.asarray(a) != 0) for a in gn[0])  # the widths do get a gradient
