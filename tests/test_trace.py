"""hdl_gen.trace: model.predict(x) == interp(trace(model), x) exactly, per layer type and quantizer mode."""
# ruff: noqa: I001

from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import itertools
import warnings

import keras
import numpy as np
import pytest

from hdl_gen import ops as K
from hdl_gen.interp import interp
from hdl_gen.ir import Graph
from hdl_gen.cost import graph_cost
from hdl_gen.tracer import FloatPrecisionWarning, TraceError, quantize_input, trace
from hgq import layers as hl
from hgq.calibrate import trace_minmax
from hgq.data.jsc import load_jsc
from hgq.models import jet_tagger

N_TEST = 10_000
KQ = {"q_type": "kbi", "b0": 6, "i0": 0, "round_mode": "RND", "overflow_mode": "SAT_SYM"}


def _iq(qt: str, ovf: str, rnd: str) -> dict:
    if qt == "kif":
        return {"q_type": "kif", "k0": 1, "i0": 2, "f0": 4, "round_mode": rnd, "overflow_mode": ovf}
    return {"q_type": "kbi", "k0": 1, "b0": 6, "i0": 2, "round_mode": rnd, "overflow_mode": ovf}


def _physics() -> np.ndarray:
    X = load_jsc("sample").X.astype(np.float64)
    return (X - X.mean(0)) / X.std(0)


def _dense(iq):
    x = keras.Input((16,))
    y = hl.QDense(8, activation="relu", iq_conf=iq(), kq_conf=KQ, name="d0")(x)
    y = hl.QDense(5, iq_conf=iq(), kq_conf=KQ, name="d1")(y)
    return keras.Model(x, y)


def _batchnorm(iq):
    m = keras.Sequential(
        [
            keras.Input((16,)),
            hl.QDenseBatchNorm(8, activation="relu", iq_conf=iq(), kq_conf=KQ, name="dbn"),
            hl.QBatchNormalization(iq_conf=iq(), name="bn"),
            hl.QDense(3, iq_conf=iq(), kq_conf=KQ, name="out"),
        ]
    )
    rng = np.random.default_rng(5)
    for layer in (m.get_layer("dbn"), m.get_layer("bn")):
        n = layer.gamma.shape[0]
        layer.gamma.assign(rng.uniform(0.5, 2, n))
        layer.beta_bn.assign(rng.normal(0, 0.5, n))
        layer.moving_mean.assign(rng.normal(0, 0.5, n))
        layer.moving_var.assign(rng.uniform(0.5, 2, n))
    return m


def _einsum(iq):
    x = keras.Input((4, 6))
    y = hl.QEinsumDense("abc,cd->abd", (4, 5), bias_axes="d", activation="relu", iq_conf=iq(), kq_conf=KQ)(x)
    y = keras.layers.Flatten()(y)
    y = hl.QDense(3, iq_conf=iq(), kq_conf=KQ, enable_oq=True, oq_conf=iq())(y)  # output quantizer too
    return keras.Model(x, y)


def _conv1d(iq):
    x = keras.Input((12, 3))
    y = hl.QConv1D(4, 3, padding="same", activation="relu", iq_conf=iq(), kq_conf=KQ)(x)
    y = hl.QMaxPooling1D(2, iq_conf=iq())(y)
    y = hl.QConv1D(4, 3, strides=2, iq_conf=iq(), kq_conf=KQ)(y)
    y = hl.QGlobalAveragePooling1D(iq_conf=iq())(y)
    return keras.Model(x, y)


def _conv2d(iq):
    x = keras.Input((6, 6, 2))
    y = hl.QConv2D(3, (3, 3), activation="relu", iq_conf=iq(), kq_conf=KQ)(x)
    y = hl.QAveragePooling2D(2, iq_conf=iq())(y)
    y = hl.QMaxPooling2D(3, strides=2, padding="same", iq_conf=iq())(y)
    y = keras.layers.Flatten()(y)
    y = hl.QDense(2, iq_conf=iq(), kq_conf=KQ)(y)
    return keras.Model(x, y)


def _merge(iq):
    x = keras.Input((16,))
    q = hl.Quantizer(**iq(), name="q_in")(x)  # both branches read it: one input port format
    a = hl.QDense(6, iq_conf=iq(), kq_conf=KQ, name="a")(q)
    b = hl.QDense(6, activation="relu", iq_conf=iq(), kq_conf=KQ, name="b")(q)
    ms = [
        cls(iq_confs=iq(), name=cls.__name__)([a, b])
        for cls in (hl.QAdd, hl.QSubtract, hl.QMultiply, hl.QMaximum, hl.QMinimum)
    ]
    y = keras.layers.Concatenate()(ms)
    y = hl.QDense(4, iq_conf=iq(), kq_conf=KQ)(y)
    return keras.Model(x, y)


def _lut(iq):
    x = keras.Input((16,))
    y = hl.Quantizer(**iq(), name="q_in")(x)
    y = hl.QDense(6, iq_conf=iq(), kq_conf=KQ)(y)
    y = hl.QUnaryFunctionLUT("tanh", iq_conf=iq())(y)
    y = keras.layers.Reshape((2, 3))(y)
    y = keras.layers.ReLU()(y)
    y = keras.layers.Activation("linear")(y)
    y = hl.Quantizer(**iq(), name="q_mid")(y)
    y = hl.QGlobalMaxPooling1D(iq_conf=iq())(y)
    return keras.Model(x, y)


def _lut_dense(iq):
    x = keras.Input((16,))
    y = hl.QLUTDense(6, iq_conf=iq(), table_bits=5, seed=0, name="lut0")(x)  # 7-bit inputs, tables read 5
    y = hl.QLUTDense(4, iq_conf=iq(), seed=1, name="lut1")(y)
    return keras.Model(x, y)


def _lut_edges(iq):
    """Per-edge read widths (some edges read fewer bits than their input, some none) and table batch norm."""
    x = keras.Input((16,))
    y = hl.QLUTDense(6, iq_conf=iq(), table_bits=6, edge_widths=True, batch_norm=True, seed=3, name="lute0")(x)
    y = hl.QLUTDense(4, iq_conf=iq(), edge_widths=True, seed=4, name="lute1")(y)
    model = keras.Model(x, y)
    rng = np.random.default_rng(5)
    for layer in (model.get_layer("lute0"), model.get_layer("lute1")):
        layer.ef.assign(rng.integers(-3, 5, layer.ef.shape).astype("float32"))
    bn = model.get_layer("lute0")
    for v, (lo, hi) in ((bn.moving_mean, (-0.3, 0.3)), (bn.moving_variance, (0.2, 2.0)), (bn.bn_gamma, (0.5, 2.0)),
                        (bn.bn_beta, (-0.5, 0.5))):  # fmt: skip
        v.assign(rng.uniform(lo, hi, 6).astype("float32"))
    return model


def _lut_pairs(iq):
    """Tables of at most 3 and 2 address bits: the lowering merges pairs of an output's tables (two-wire tables)."""
    x = keras.Input((16,))
    y = hl.QLUTDense(6, iq_conf=iq(), table_bits=3, seed=6, name="lutp0")(x)
    y = hl.QLUTDense(4, iq_conf=iq(), table_bits=2, seed=7, name="lutp1")(y)
    return keras.Model(x, y)


def _lut_conv(iq):
    x = keras.Input((6, 5, 2))
    eoq = {"f0": 6}
    y = hl.QLUTConv2D(3, (2, 3), strides=(1, 2), padding="same", iq_conf=iq(), eoq_conf=eoq, table_bits=4, seed=0)(x)
    y = keras.layers.Reshape((18, 3))(y)  # (6, 3, 3) flattened
    y = hl.QLUTConv1D(2, 3, strides=2, iq_conf=iq(), seed=1)(y)  # (8, 2)
    return keras.Model(x, y)


def _hybrid(iq):
    x = keras.Input((16,))
    y = hl.QDense(8, activation="relu", iq_conf=iq(), kq_conf=KQ, name="da0")(x)
    y = hl.QLUTDense(6, iq_conf=iq(), seed=2, name="lut")(y)
    y = hl.QDense(4, iq_conf=iq(), kq_conf=KQ, name="da1")(y)
    return keras.Model(x, y)


MODELS = {
    "dense": _dense,
    "batchnorm": _batchnorm,
    "einsum": _einsum,
    "conv1d": _conv1d,
    "conv2d": _conv2d,
    "merge": _merge,
    "lut": _lut,
    "lut_dense": _lut_dense,
    "lut_conv": _lut_conv,
    "hybrid": _hybrid,
    "lut_edges": _lut_edges,
    "lut_pairs": _lut_pairs,
}
N_QUANT = {"dense": 2, "batchnorm": 3, "einsum": 3, "conv1d": 4, "conv2d": 4, "merge": 9, "lut": 5, "lut_dense": 2,
           "lut_conv": 2, "hybrid": 3, "lut_edges": 2, "lut_pairs": 2}  # fmt: skip
MODES = list(itertools.product(["kif", "kbi"], ["WRAP", "SAT", "SAT_SYM"], ["TRN", "RND"]))


class _Modes:
    """Hands out activation quantizer configs, cycling through every (q_type, overflow, round) combination."""

    def __init__(self, start: int):
        self.j, self.used = start, []

    def __call__(self) -> dict:
        m = MODES[self.j % len(MODES)]
        self.j += 1
        self.used.append(m)
        return _iq(*m)


def _data(model: keras.Model, rng: np.random.Generator, physics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    shape = tuple(model.inputs[0].shape[1:])
    x = physics[rng.permutation(len(physics))[:N_TEST]] if shape == (16,) else rng.normal(0, 1.5, (N_TEST, *shape))
    return 0.5 * x[:2000], 1.5 * x  # calibrate on a narrow slice, test wider (wrap / saturation paths)


@pytest.fixture(scope="module")
def physics() -> np.ndarray:
    return _physics()


def _check(model: keras.Model, x_cal: np.ndarray, x_test: np.ndarray) -> Graph:
    trace_minmax(model, x_cal, batch_size=len(x_cal))  # one batch: one eager compile per op
    g = trace(model)
    xq = quantize_input(model, x_test)
    want = np.asarray(model.predict(x_test, batch_size=N_TEST, verbose=0), dtype=np.float64)
    got = interp(g, xq)
    assert got.shape == want.shape
    bad = int(np.sum(got != want))
    assert bad == 0, f"{bad} mismatches of {got.size}"
    assert np.array_equal(interp(g, xq, expand=True), got)
    assert not np.all(got == got[:1])  # a constant model would prove little
    return g


@pytest.mark.parametrize("start,name", list(enumerate(MODELS)))
def test_model_equals_interpreter(start, name, physics):
    keras.utils.set_random_seed(0)
    modes = _Modes(5 * start)
    model = MODELS[name](modes)
    assert len(modes.used) == N_QUANT[name]  # keeps test_every_mode_is_covered honest
    x_cal, x_test = _data(model, np.random.default_rng(1), physics)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FloatPrecisionWarning)
        g = _check(model, x_cal, x_test)
    assert K.QUANTIZE in {op.kind for op in g.ops}
    assert Graph.from_json(g.to_json()) == g


def test_every_mode_is_covered():
    used = {MODES[(5 * start + j) % len(MODES)] for start, name in enumerate(MODELS) for j in range(N_QUANT[name])}
    assert used == set(MODES)


def test_jet_tagger_whole_sample(physics):
    model = jet_tagger()
    trace_minmax(model, physics[:20000], batch_size=20000)
    g = trace(model)
    xq = quantize_input(model, physics)
    want = np.asarray(model.predict(physics, batch_size=8192, verbose=0), dtype=np.float64)
    got = interp(g, xq)
    assert int(np.sum(got != want)) == 0
    cost = graph_cost(g)
    assert set(cost["layers"]) >= {"dense0", "dense1", "dense2", "dense3"}
    assert cost["total"]["adders"] == sum(op.kind.adder for op in g.ops) > 0
    assert cost["total"]["adder_bits"] == sum(op.width for op in g.ops if op.kind.adder)
    assert cost["total"]["depth"] >= max(c["depth"] for c in cost["layers"].values())
    assert trace(model).to_json() == g.to_json()  # deterministic


def test_clear_errors():
    x = keras.Input((4,))
    model = keras.Model(x, hl.QDense(2, kq_conf=KQ)(x))
    with pytest.raises(TraceError, match=r"not calibrated; run hgq.calibrate.trace_minmax\(model, x\) first"):
        trace(model)
    trace_minmax(model, np.random.default_rng(0).normal(size=(100, 4)))
    x = keras.Input((4,))
    y = hl.QDense(3, kq_conf=KQ, iq_conf=_iq("kif", "SAT", "RND"), name="ok")(x)
    bad = keras.Model(x, keras.layers.Dense(2, name="plain")(y))
    with pytest.raises(TraceError, match="layer 'plain': Dense cannot be lowered"):
        trace(bad)
    x = keras.Input((4,))
    raw = keras.Model(x, hl.QDense(2, kq_conf=KQ, enable_iq=False, name="noiq")(x))
    with pytest.raises(TraceError, match="layer 'noiq'.*without an input quantizer"):
        trace(raw)


def test_wide_accumulator_warns():
    x = keras.Input((16,))
    wide = {"q_type": "kif", "k0": 1, "i0": 6, "f0": 12, "round_mode": "RND", "overflow_mode": "SAT"}
    kq = {**KQ, "b0": 14, "i0": 0}
    model = keras.Model(x, hl.QDense(4, iq_conf=wide, kq_conf=kq, name="wide")(x))
    with pytest.warns(FloatPrecisionWarning, match="layer 'wide'.*24"):
        trace(model)


def test_depth_bound_reaches_the_solver(physics):
    x = keras.Input((16,))
    model = keras.Model(x, hl.QDense(6, iq_conf=_iq("kif", "SAT", "RND"), kq_conf=KQ, name="d")(x))
    free, tight = trace(model, depth_bound=None), trace(model)  # the default is "min"
    assert graph_cost(tight)["total"]["depth"] <= graph_cost(free)["total"]["depth"]
    with pytest.raises(ValueError, match="below the minimal achievable adder depth"):
        trace(model, depth_bound=0)
    xq = quantize_input(model, physics[:10_000])
    assert np.array_equal(interp(tight, xq), interp(free, xq))
