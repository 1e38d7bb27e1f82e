"""Q-layers: Keras inference forward == a numpy computation on hgq.fixed-quantized values, bit for bit."""
# ruff: noqa: I001

from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import itertools
import os
import tempfile
import warnings
import zlib

import keras
import numpy as np
import pytest
from keras import ops
from numpy.lib.stride_tricks import sliding_window_view

from hgq.fixed import quantize
from hgq.layers import (
    QAdd,
    QAveragePooling1D,
    QAveragePooling2D,
    QBatchNormalization,
    QConv1D,
    QConv2D,
    QDense,
    QDenseBatchNorm,
    QEinsumDense,
    QGlobalAveragePooling1D,
    QGlobalMaxPooling1D,
    QMaximum,
    QMaxPooling1D,
    QMaxPooling2D,
    QMinimum,
    QMultiply,
    QSubtract,
    QUnaryFunctionLUT,
)
from hgq.quantizer import Quantizer

CONFIGS = list(itertools.product(["kif", "kbi"], ["WRAP", "SAT", "SAT_SYM"], ["TRN", "RND"]))


def conf(q_type, ovf, rnd):
    return {"q_type": q_type, "overflow_mode": ovf, "round_mode": rnd, "i0": 2, "f0": 4, "b0": 6}


def randomize(layer, rng) -> None:
    """Random per-element widths for every quantizer of ``layer``, small enough that every float32 sum in these
    tests stays within 24 significant bits (|values| < 4, steps >= 2**-7, at most 12 terms): Keras is exact there."""
    for q in layer._flatten_layers(include_self=False):
        if isinstance(q, Quantizer):
            s = q.k.shape
            q.k.assign(rng.integers(0, 2, size=s).astype("float32"))
            q.i.assign(rng.integers(-1, 3, size=s).astype("float32"))
            q.bvar.assign(rng.integers(0 if q.q_type == "kbi" else -1, 7, size=s).astype("float32"))


def Q(q, x):
    return quantize(np.asarray(x, np.float64), *q.kif(), q.round_mode, q.overflow_mode)


def run(layer, x):
    out = layer(x, training=False)
    return np.asarray(ops.convert_to_numpy(out), dtype=np.float64)


def relu(y, layer):
    return np.maximum(y, 0) if layer.activation_name == "relu" else y


def np_windows(x, ks, strides, padding):
    """(N, *out_sp, *ks, C) windows with Keras/JAX padding semantics."""
    pads = [(0, 0)]
    for n, k, s in zip(x.shape[1:-1], ks, strides, strict=True):
        if padding == "same":
            tot = max((-(-n // s) - 1) * s + k - n, 0)
            pads.append((tot // 2, tot - tot // 2))
        else:
            pads.append((0, 0))
    x = np.pad(x, [*pads, (0, 0)])
    w = sliding_window_view(x, ks, axis=tuple(range(1, 1 + len(ks))))
    w = w[(slice(None), *(slice(None, None, s) for s in strides))]
    nd = len(ks)
    return np.moveaxis(w, -1 - nd, -1)  # channel after the window axes


@pytest.mark.parametrize("cfg", CONFIGS)
def test_weighted_layers_exact(cfg):
    rng = np.random.default_rng(zlib.crc32(repr(cfg).encode()))
    c = conf(*cfg)
    kw = dict(iq_conf=c, kq_conf=c, bq_conf=c, bias_initializer="random_normal")
    x2 = (rng.normal(size=(32, 6)) * 4).astype("float32")
    x3 = (rng.normal(size=(8, 9, 3)) * 4).astype("float32")
    x4 = (rng.normal(size=(4, 7, 6, 2)) * 4).astype("float32")
    cases = [
        (QDense(5, activation="relu", **kw), x2),
        (QDense(4, **kw), x3),
        (QDenseBatchNorm(5, **kw), x2),
        (QEinsumDense("abc,cd->abd", (9, 4), bias_axes="d", activation="relu", **kw), x3),
        (QConv1D(4, 3, strides=2, padding="same", activation="relu", **kw), x3),
        (QConv1D(3, 2, **kw), x3),
        (QConv2D(3, (3, 2), strides=(1, 2), padding="valid", **kw), x4),
        (QConv2D(2, 2, padding="same", activation="relu", **kw), x4),
    ]
    for layer, x in cases:
        layer(x)  # build

        def reference(qx, qk, qb, layer=layer):
            if isinstance(layer, QEinsumDense):
                return np.einsum(layer.equation, qx, qk) + qb
            if isinstance(layer, QConv1D | QConv2D):
                win = np_windows(qx, layer.kernel_size, layer.strides, layer.padding)
                letters = "hw"[: len(layer.kernel_size)]
                return np.einsum(f"n...{letters}c,{letters}cf->n...f", win, qk) + qb
            return qx @ qk + qb

        for _ in range(20):  # draw widths until every float32 sum is within 24 significant bits (Keras's contract)
            randomize(layer, rng)
            if isinstance(layer, QDenseBatchNorm):
                layer.moving_mean.assign(rng.normal(size=5).astype("float32"))
                layer.moving_var.assign(rng.uniform(0.5, 2, size=5).astype("float32"))
            qx, qk, qb = Q(layer.iq, x), layer.qkernel, layer.qbias
            f_max = max(int(layer.iq.kif()[2].max()) + int(layer.kq.kif()[2].max()), int(layer.bq.kif()[2].max()))
            if reference(np.abs(qx), np.abs(qk), np.abs(qb)).max() * 2.0**f_max < 2**24:
                break
        else:
            raise AssertionError(f"{layer.name}: no width draw keeps float32 sums exact; shrink randomize()")
        got = run(layer, x)
        assert np.count_nonzero(qk) > 0
        want = reference(qx, qk, qb)
        want = relu(want, layer)
        assert got.shape == want.shape
        assert np.array_equal(got, want), (layer.name, int(np.sum(got != want)))
        # exported constants are quantized exactly by the exported formats
        assert np.array_equal(qk, quantize(np.asarray(layer.eff_kernel(False)), *layer.kq.kif(), *_modes(layer.kq)))


def _modes(q):
    return q.round_mode, q.overflow_mode


@pytest.mark.parametrize("cfg", CONFIGS)
def test_other_layers_exact(cfg):
    rng = np.random.default_rng(zlib.crc32(repr(cfg).encode()) + 1)
    c = conf(*cfg)
    x3 = (rng.normal(size=(8, 8, 3)) * 4).astype("float32")
    y3 = (rng.normal(size=(8, 8, 3)) * 4).astype("float32")
    x4 = (rng.normal(size=(4, 6, 4, 2)) * 4).astype("float32")

    bn = QBatchNormalization(iq_conf=c, sq_conf=c, bq_conf=c)
    bn(x3)
    randomize(bn, rng)
    bn.gamma.assign(rng.normal(size=3).astype("float32"))
    assert np.array_equal(run(bn, x3), Q(bn.iq, x3) * bn.qscale + bn.qoffset)

    merges = {QAdd: np.add, QSubtract: np.subtract, QMultiply: np.multiply, QMaximum: np.maximum, QMinimum: np.minimum}
    for cls, fn in merges.items():
        m = cls(iq_confs=[c, c])
        m([x3, y3])
        randomize(m, rng)
        got = np.asarray(ops.convert_to_numpy(m([x3, y3], training=False)), np.float64)
        assert np.array_equal(got, fn(Q(m.iq[0], x3), Q(m.iq[1], y3))), cls.__name__

    pools = [
        (QMaxPooling1D(2, iq_conf=c), x3, np.max),
        (QMaxPooling1D(3, strides=2, padding="same", iq_conf=c), x3, np.max),
        (QAveragePooling1D(4, strides=2, iq_conf=c), x3, np.mean),
        (QMaxPooling2D((2, 2), iq_conf=c), x4, np.max),
        (QAveragePooling2D((2, 2), strides=1, iq_conf=c), x4, np.mean),
    ]
    for layer, x, fn in pools:
        layer(x)
        randomize(layer, rng)
        qx = Q(layer.iq, x)
        if layer.padding == "same":  # max pooling pads with -inf
            pads = (
                [(0, 0)]
                + [
                    (0, max((-(-n // s) - 1) * s + k - n, 0))
                    for n, k, s in zip(x.shape[1:-1], layer.pool_size, layer.strides, strict=True)
                ]
                + [(0, 0)]
            )
            pads = [(p[1] // 2, p[1] - p[1] // 2) for p in pads]
            qx = np.pad(qx, pads, constant_values=-np.inf)
        win = np_windows(qx, layer.pool_size, layer.strides, "valid")
        want = fn(win.reshape(*win.shape[: 1 + len(layer.pool_size)], -1, win.shape[-1]), axis=-2)
        assert np.array_equal(run(layer, x), want), layer.name

    for layer, fn in ((QGlobalAveragePooling1D(iq_conf=c), np.mean), (QGlobalMaxPooling1D(iq_conf=c), np.max)):
        layer(x3)
        randomize(layer, rng)
        assert np.array_equal(run(layer, x3), fn(Q(layer.iq, x3), axis=1))

    lut = QUnaryFunctionLUT("tanh", iq_conf=c, oq_conf=c)
    xs = (rng.normal(size=(64, 2)) * 3).astype("float32")
    lut(xs)
    randomize(lut, rng)
    lut.oq.bvar.assign(np.full(lut.oq.bvar.shape, 5.0, "float32"))
    got = run(lut, xs)
    qx = Q(lut.iq, xs)
    for e in range(2):
        tx, ty = lut.table(e)
        k, i, f = (a[e] for a in lut.iq.kif())
        assert len(tx) == (2 ** (k + i + f) if k + i + f > 0 else 1)
        idx = np.searchsorted(tx, qx[:, e])
        assert np.array_equal(tx[idx], qx[:, e])
        assert np.array_equal(got[:, e], ty[idx])

    sq = Quantizer(**c)
    assert np.array_equal(run(sq, x3), Q(sq, x3))


def test_relu_inline_and_bad_activation():
    with pytest.raises(ValueError, match="QUnaryFunctionLUT"):
        QDense(3, activation="tanh")
    with pytest.raises(ValueError, match="power of two"):
        QAveragePooling1D(3)


def test_all_zero_kernel_warns_naming_layer():
    x = np.ones((2, 200), "float32")
    with pytest.warns(UserWarning, match="'tiny'.*f >= "):
        QDense(200, kq_conf={"b0": 2, "i0": 2}, name="tiny")(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        QDense(200, name="ok")(x)  # defaults keep Glorot weights alive


def test_sgd_step_changes_every_weight_and_a_width():
    rng = np.random.default_rng(0)
    inp = keras.Input((6,))
    d0 = QDense(8, activation="relu", kernel_initializer=keras.initializers.RandomUniform(0.1, 0.5, seed=0))
    d1 = QDense(3, iq_conf={"overflow_mode": "SAT"})
    model = keras.Model(inp, d1(d0(inp)))
    model.compile(keras.optimizers.SGD(0.05), "mse")
    x = np.abs(rng.normal(size=(64, 6))).astype("float32") + 0.1
    y = rng.normal(size=(64, 3)).astype("float32")
    before = {v.path: np.array(v.numpy()) for v in model.trainable_variables}
    ints_before = [q.kif() for q in model._flatten_layers() if isinstance(q, Quantizer)]
    model.train_on_batch(x, y)
    for v in model.trainable_variables:
        assert not np.array_equal(before[v.path], v.numpy()), f"{v.path} did not change"
    for lay in (d0, d1):
        assert np.all(before[lay.kernel.path] != lay.kernel.numpy()), f"{lay.name}: a kernel element did not move"
    for _ in range(20):
        model.train_on_batch(x, y)
    ints_after = [q.kif() for q in model._flatten_layers() if isinstance(q, Quantizer)]
    changed = sum(
        int(np.sum(a[2] != b[2])) + int(np.sum(a[1] != b[1])) for a, b in zip(ints_before, ints_after, strict=True)
    )
    assert changed > 0


def test_dense_ebops_hand_computed():
    d = QDense(2, iq_conf={"q_type": "kif"}, kq_conf={"q_type": "kbi"}, bq_conf={"q_type": "kbi"})
    d(np.zeros((1, 3), "float32"))
    d.iq.i.assign(np.array([[1, 2, 0]], "float32"))
    d.iq.bvar.assign(np.array([[2, 3, 1]], "float32"))  # bits = relu(i + f) = 3, 5, 1
    d.kq.bvar.assign(np.array([[1, 2], [3, 0], [4, 5]], "float32"))
    d.bq.bvar.assign(np.array([2, 5], "float32"))
    want = 3 * 1 + 3 * 2 + 5 * 3 + 5 * 0 + 1 * 4 + 1 * 5 + (2 + 5) / 2 * 2
    assert d.ebops == want
    model = keras.Sequential([keras.Input((3,)), d])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    d._beta.assign(1e-3)
    logs = model.train_on_batch(np.zeros((4, 3), "float32"), np.zeros((4, 2), "float32"), return_dict=True)
    assert np.isclose(float(d._ebops.numpy()), want, rtol=0, atol=0.5)  # i tracks data in training
    assert logs["loss"] > 0  # β·EBOPs is in the loss (the task loss is 0 here)


def test_keras_round_trip_identical():
    rng = np.random.default_rng(3)
    inp = keras.Input((8, 3))
    a = QConv1D(4, 3, padding="same", activation="relu")(inp)
    b = QBatchNormalization()(a)
    c = QAdd()([a, b])
    d = QAveragePooling1D(2)(QMaxPooling1D(2, strides=1, padding="same")(c))
    g = QUnaryFunctionLUT("sigmoid")(d)
    h = keras.layers.Flatten()(g)
    out = QEinsumDense("ab,bc->ac", 5, bias_axes="c")(QDenseBatchNorm(6, activation="relu")(h))
    model = keras.Model(inp, out)
    x = rng.normal(size=(64, 8, 3)).astype("float32")
    model.compile("adam", "mse")
    for _ in range(2):
        model.train_on_batch(x, rng.normal(size=(64, 5)))
    p = model.predict(x, verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        fn = os.path.join(tmp, "m.keras")
        model.save(fn)
        m2 = keras.models.load_model(fn)
    assert np.array_equal(p, m2.predict(x, verbose=0))
    for l1, l2 in zip(model.layers, m2.layers, strict=True):
        for q1, q2 in zip(l1._flatten_layers(), l2._flatten_layers(), strict=True):
            if isinstance(q1, Quantizer):
                assert all(np.array_equal(a, b) for a, b in zip(q1.kif(), q2.kif(), strict=True))


def test_derived_views_hidden_from_dir_and_kept_across_save():
    """Keras's saver reads every name dir() lists: the computed views are out of dir(), still attributes, and a
    saved and reloaded layer gives the same views; the one-program quantization equals the op-by-op one."""
    rng = np.random.default_rng(3)
    m = keras.Sequential([keras.Input((6,)), QDense(4, name="d"), QDense(3, name="e")])
    for w in m.weights:
        w.assign(rng.normal(size=w.shape).astype("float32") * 0.3 if w.path.endswith(("kernel", "bias")) else w.value)
    d = m.get_layer("d")
    assert not {"ebops", "qkernel", "qbias", "beta"} & set(dir(d))
    assert {"kernel", "kq", "call"} <= set(dir(d))
    assert np.array_equal(QDense._np_once(d.kq, d.kernel), QDense._np(d.kq, d.kernel))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.keras")
        m.save(path)
        r = hgq.load_model(path).get_layer("d")
    assert np.array_equal(r.qkernel, d.qkernel) and np.array_equal(r.qbias, d.qbias) and r.ebops == d.ebops


def test_mostly_zero_kernel_warns_at_build():
    with pytest.warns(UserWarning, match="non-zero at initialisation"):
        QDense(8, kq_conf={"b0": 2, "i0": 2}, kernel_initializer=keras.initializers.Constant(0.1)).build((None, 4))
