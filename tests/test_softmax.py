"""QSoftmax: Keras forward == numpy on hgq.fixed, model.predict == interp(trace(model)), round trip, EBOPs, training."""
# ruff: noqa: I001

from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import os
import tempfile

import keras
import numpy as np
import pytest
from keras import ops

from hdl_gen import ops as K
from hdl_gen.interp import interp
from hdl_gen.ir import Graph
from hdl_gen.tracer import TraceError, quantize_input, trace
from hgq.calibrate import trace_minmax
from hgq.data.jsc import load_jsc
from hgq.fixed import quantize
from hgq.layers import QDense, QSoftmax
from hgq.layers.softmax import exp_f32
from hgq.quantizer import Quantizer

N_TEST = 10_000
KQ = {"q_type": "kbi", "b0": 6, "i0": 0, "round_mode": "RND", "overflow_mode": "SAT_SYM"}
SAT_IQ = {"q_type": "kbi", "k0": 1, "b0": 7, "i0": 2, "round_mode": "RND", "overflow_mode": "SAT"}


def _q(x, q: Quantizer) -> np.ndarray:
    return quantize(x, *q.kif(), q.round_mode, q.overflow_mode)


def _reference(layer: QSoftmax, x: np.ndarray) -> np.ndarray:
    """The documented forward in numpy: hgq.fixed quantization, exp_f32 in numpy float32, IEEE reciprocal."""
    qx = _q(x, layer.iq)
    d = qx - qx.max(-1, keepdims=True)
    e = _q(exp_f32(d.astype(np.float32), np), layer.exp_oq)
    s = e.sum(-1, keepdims=True)
    inv = _q(np.float32(1.0) / np.maximum(s, 2.0**-24).astype(np.float32), layer.inv_oq)
    y = e * inv
    return _q(y, layer.oq) if layer.oq is not None else y


def test_forward_equals_numpy_reference():
    rng = np.random.default_rng(0)
    layer = QSoftmax(
        iq_conf=SAT_IQ,
        exp_oq_conf={"granularity": "element"},
        inv_oq_conf={"granularity": "element"},
        enable_oq=True,
        oq_conf={"q_type": "kif", "k0": 0, "i0": 1, "f0": 6, "round_mode": "RND", "overflow_mode": "SAT"},
    )
    x = rng.normal(0, 2.0, (4000, 3, 6)).astype(np.float32)
    layer(x[:2])
    layer.exp_oq.bvar.assign(rng.integers(3, 10, (1, 3, 6)).astype(np.float32))  # a different table per element
    layer.inv_oq.bvar.assign(np.array([[[6.0], [7.0], [9.0]]], np.float32))  # one per row
    got = np.asarray(layer(x, training=False), dtype=np.float64)
    assert np.array_equal(got, _reference(layer, x))
    layer.exp_oq.bvar.assign(np.full((1, 3, 6), 10.0, np.float32))  # wide tables: close to the float softmax
    layer.inv_oq.bvar.assign(np.full((1, 3, 1), 10.0, np.float32))
    soft = np.asarray(ops.softmax(_q(x, layer.iq), axis=-1))
    assert np.abs(np.asarray(layer(x, training=False)) - soft).max() < 0.02


def test_exp_table_is_the_forward_exp():
    layer = QSoftmax(iq_conf=SAT_IQ)
    layer(np.zeros((1, 4), np.float32))
    d = -np.arange(0, 2000, dtype=np.float64).reshape(-1, 4) / 64.0
    assert np.array_equal(layer.exp_table(d), _q(exp_f32(d.astype(np.float32), np), layer.exp_oq))
    s = np.arange(0, 700, dtype=np.float64).reshape(-1, 1) / 128.0
    assert np.array_equal(layer.inv_table(s), _q(1.0 / np.maximum(s, 2.0**-24).astype(np.float32), layer.inv_oq))


def test_exp_and_inverse_same_bits_fused_eager_numpy():
    """The premise of the tables: exp_f32 and 1/s give the same float32 bits in model.predict (jit, fused, any
    batch size), eagerly and in numpy (XLA's own exp does not: it differs by an ulp with shape and fusion)."""
    d = -np.arange(0, 16 * 256 * 7, dtype=np.float32).reshape(-1, 7) / 256.0
    d[:, 0] = 0.0  # every row's max is 0
    inp = keras.Input((7,))
    out = keras.layers.Lambda(lambda v: exp_f32(v - ops.max(v, axis=-1, keepdims=True)))(inp)
    model = keras.Model(inp, keras.layers.Lambda(lambda e: ops.concatenate([e, 1.0 / (e + 0.5)], axis=-1))(out))
    want = exp_f32(d, np)
    want = np.concatenate([want, np.float32(1.0) / (want + np.float32(0.5))], axis=-1).view(np.uint32)
    for bs in (585, 1000, 4096):
        assert np.array_equal(model.predict(d, batch_size=bs, verbose=0).view(np.uint32), want)
    assert np.array_equal(np.asarray(exp_f32(ops.convert_to_tensor(d))).view(np.uint32), want[:, :7])
    inside = d >= -64  # exp_f32 clamps below
    exact = np.exp(d[inside].astype(np.float64))
    assert np.max(np.abs(want[:, :7].view(np.float32)[inside] - exact) / exact) < 2.0**-22


@pytest.fixture(scope="module")
def physics() -> np.ndarray:
    X = load_jsc("sample").X.astype(np.float64)
    return (X - X.mean(0)) / X.std(0)


def _dense_softmax() -> keras.Model:
    x = keras.Input((16,))
    y = QDense(5, iq_conf={"f0": 4}, kq_conf=KQ, name="d")(x)
    return keras.Model(x, QSoftmax(name="sm")(y))


def _rows_softmax() -> keras.Model:
    x = keras.Input((16,))
    y = QDense(12, iq_conf=SAT_IQ, kq_conf=KQ, name="d")(x)
    y = keras.layers.Reshape((3, 4))(y)
    y = QSoftmax(
        iq_conf={"q_type": "kif", "i0": 3, "f0": 3, "round_mode": "TRN", "overflow_mode": "WRAP"},
        exp_oq_conf={"granularity": "element", "b0": 6},
        inv_oq_conf={"b0": 9},
        enable_oq=True,
        oq_conf={"q_type": "kif", "k0": 0, "i0": 0, "f0": 5, "round_mode": "RND_CONV", "overflow_mode": "SAT"},
        name="sm",
    )(y)
    return keras.Model(x, keras.layers.Flatten()(y))


@pytest.mark.parametrize("build", [_dense_softmax, _rows_softmax])
def test_model_equals_interpreter(build, physics):
    keras.utils.set_random_seed(0)
    model = build()
    x = physics[np.random.default_rng(1).permutation(len(physics))[:N_TEST]]
    x_cal, x_test = 0.5 * x[:2000], 1.5 * x  # test outside the calibration range (wrap / saturation)
    trace_minmax(model, x_cal, batch_size=len(x_cal))
    g = trace(model)
    kinds = [op.kind for op in g.ops]
    assert {K.LOOKUP, K.MUL, K.MAX} <= set(kinds)
    want = np.asarray(model.predict(x_test, batch_size=N_TEST, verbose=0), dtype=np.float64)
    xq = quantize_input(model, x_test)
    got = interp(g, xq)
    assert got.shape == want.shape
    assert int(np.sum(got != want)) == 0
    assert np.array_equal(interp(g, xq, expand=True), got)
    assert len(np.unique(got.round(6), axis=0)) > 100  # not a constant model
    assert Graph.from_json(g.to_json()) == g
    assert trace(model).to_json() == g.to_json()  # deterministic


def test_table_too_large_names_the_layer():
    x = keras.Input((4,))
    wide = {"q_type": "kif", "k0": 1, "i0": 8, "f0": 10, "round_mode": "TRN", "overflow_mode": "SAT"}
    model = keras.Model(x, QSoftmax(iq_conf=wide, name="big")(x))
    with pytest.raises(TraceError, match=r"layer 'big': max\(x\) - x takes \d+ values; a softmax table allows"):
        trace(model)


def test_bad_arguments():
    with pytest.raises(ValueError, match="axis 1 is not supported; use axis=-1"):
        QSoftmax(axis=1)
    with pytest.raises(ValueError, match="needs its input quantizer"):
        QSoftmax(enable_iq=False)


def test_keras_round_trip_identical():
    rng = np.random.default_rng(3)
    model = _rows_softmax()
    x = rng.normal(size=(256, 16)).astype("float32")
    trace_minmax(model, x)
    model.get_layer("sm").exp_oq.bvar.assign(rng.integers(3, 9, (1, 3, 4)).astype(np.float32))
    p = model.predict(x, verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        fn = os.path.join(tmp, "m.keras")
        model.save(fn)
        m2 = hgq.load_model(fn)
    assert np.array_equal(p, m2.predict(x, verbose=0))
    a, b = model.get_layer("sm"), m2.get_layer("sm")
    for q1, q2 in ((a.iq, b.iq), (a.exp_oq, b.exp_oq), (a.inv_oq, b.inv_oq), (a.oq, b.oq)):
        assert all(np.array_equal(u, v) for u, v in zip(q1.kif(), q2.kif(), strict=True))


def test_ebops_formula():
    layer = QSoftmax(iq_conf={"q_type": "kif"})
    layer(np.zeros((1, 4), "float32"))
    layer.iq.i.assign(np.array([[1, 2, 0, 1]], "float32"))
    layer.iq.bvar.assign(np.array([[2, 3, 1, 4]], "float32"))  # bits = relu(i + f) = 3, 5, 1, 5
    b_in = np.array([3, 5, 1, 5])
    want = b_in.sum() + (4 * 8 - 8) + 4 * 8 * 8 + 1e-4 * ((2.0**b_in * 8).sum() + 2.0 ** (8 + 2) * 8)
    assert np.isfinite(layer.ebops) and layer.ebops > 0
    assert np.isclose(layer.ebops, want, rtol=1e-6)


def test_training_step_moves_every_weight():
    rng = np.random.default_rng(0)
    model = _dense_softmax()
    model.compile(keras.optimizers.SGD(0.1), "mse")  # CE would cancel the row scale inv
    x = rng.normal(size=(128, 16)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 5, 128), 5)
    before = {v.path: np.array(v.numpy()) for v in model.trainable_variables}
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"])
    for v in model.trainable_variables:
        assert not np.array_equal(before[v.path], v.numpy()), f"{v.path} did not change"
    sm = model.get_layer("sm")
    assert float(sm._ebops.numpy()) > 0
    assert any("exp_oq" in p for p in before) and any("inv_oq" in p for p in before)
