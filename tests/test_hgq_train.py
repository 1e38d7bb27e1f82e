"""hgq training machinery: β schedule/PID, ParetoFront, MonoL1, jet_tagger + calibration end to end."""
# ruff: noqa: I001

from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import math
import os
from pathlib import Path

import keras
import numpy as np
import pytest

from hgq.calibrate import trace_minmax
from hgq.callbacks import BetaPID, BetaScheduler, FreeEBOPs, ParetoFront
from hgq.ebops import ebops_layers, model_ebops, set_beta, trained_ebops
from hgq.fixed import quantize
from hgq.layers import QDense
from hgq.models import jet_tagger
from hgq.regularizers import MonoL1


def test_beta_scheduler_piecewise():
    s = BetaScheduler([(0, 1e-6, "constant"), (10, 1e-6, "constant"), (20, 1e-4, "log"), (30, 2e-4, "linear")])
    assert s.schedule(0) == 1e-6 and s.schedule(9) == 1e-6
    assert math.isclose(s.schedule(15), 1e-5, rel_tol=1e-9)
    assert math.isclose(s.schedule(25), 1.5e-4, rel_tol=1e-9)
    assert s.schedule(100) == 2e-4
    with pytest.raises(ValueError, match="mode"):
        BetaScheduler([(0, 1.0, "cubic")])


class _Fake(keras.Model):
    """Stand-in model for ParetoFront: weights are a counter, save() writes the weights it holds."""

    n = 0

    def get_weights(self):
        self.n += 1
        return [self.n]

    def set_weights(self, w):
        self.held = w

    def save(self, path, **kw):
        with open(path, "w") as fh:
            fh.write(str(self.held))


def test_pareto_front_keeps_only_non_dominated(tmp_path):
    cb = ParetoFront(str(tmp_path))
    cb.set_model(_Fake())
    points = [(0.70, 5000), (0.72, 6000), (0.69, 7000), (0.75, 4000), (0.60, 1000), (0.75, 4000), (0.74, 900)]
    for e, (acc, eb) in enumerate(points):
        cb.on_epoch_end(e, {"val_accuracy": acc, "ebops": eb})
    kept = sorted((p["val_accuracy"], p["ebops"]) for p in cb.front)
    assert kept == [(0.74, 900), (0.75, 4000)]
    assert os.listdir(tmp_path) == []  # held in memory until training ends
    cb.on_train_end()
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p["file"]) for p in cb.front)
    # each file holds the weights of its own epoch (the n-th snapshot taken), not the final ones
    snapshot = {3: 3, 6: 5}  # epochs 0, 1, 3, 4, 6 entered the front; 3 and 6 survive
    held = {p["epoch"]: Path(p["file"]).read_text() for p in cb.front}
    assert held == {e: str([n]) for e, n in snapshot.items()}
    for a in cb.front:
        for b in cb.front:
            assert not ParetoFront.dominates(cb._key(a), cb._key(b))


def test_monol1_and_beta_pid_direction():
    assert float(MonoL1(0.5)(np.array([1.0, 2.0, 3.0], "float32"))) == 3.0
    model = keras.Sequential([keras.Input((4,)), QDense(3, beta0=1e-5, kq_conf={"regularizer": MonoL1(1e-8)})])
    pid = BetaPID(target_ebops=1.0, warmup=0)
    pid.set_model(model)
    pid.on_train_begin()
    pid.on_epoch_end(0, {"ebops": 1e4})  # far above target -> β goes up
    assert ebops_layers(model)[0].beta > 1e-5
    pid2 = BetaPID(target_ebops=1e6, warmup=0)
    pid2.set_model(model)
    pid2.on_train_begin()
    b = ebops_layers(model)[0].beta
    pid2.on_epoch_end(0, {"ebops": 10.0})
    assert ebops_layers(model)[0].beta < b


def test_jet_tagger_trains_calibrates_and_is_exact(tmp_path):
    from sklearn.datasets import load_digits

    xd, yd = load_digits(return_X_y=True)
    x = (xd[:, ::4] / 4.0).astype("float32")  # 16 features
    y = keras.utils.to_categorical(yd % 5, 5)
    model = jet_tagger()
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(3e-3), loss, metrics=["accuracy"])
    cbs = [BetaScheduler([(0, 1e-6, "constant"), (3, 1e-4, "log")]), FreeEBOPs(), ParetoFront(str(tmp_path))]
    h = model.fit(
        x[:1200], y[:1200], validation_data=(x[1200:], y[1200:]), epochs=3, batch_size=128, verbose=0, callbacks=cbs
    )
    assert h.history["ebops"][-1] > 0 and h.history["beta"][-1] > h.history["beta"][0]
    assert cbs[-1].front and all(os.path.exists(p["file"]) for p in cbs[-1].front)
    ebops = trace_minmax(model, x, batch_size=512)
    assert ebops == model_ebops(model) > 0
    # integer reference of the whole model from the exported surface
    pred = model.predict(x, verbose=0)
    a = x.astype(np.float64)
    for lay in model.layers[1:]:
        q = lay.iq
        assert q.calibrated
        a = quantize(a, *q.kif(), q.round_mode, q.overflow_mode) @ lay.qkernel + lay.qbias
        if lay.activation_name == "relu":
            a = np.maximum(a, 0)
    assert np.array_equal(pred, a)


def test_held_out_curve_selects_on_validation_only():
    from hgq.pareto import cost_to_reach, held_out_curve

    pts = [
        {"val_accuracy": 0.60, "accuracy": 0.61, "ebops": 100},
        {"val_accuracy": 0.65, "accuracy": 0.62, "ebops": 200},  # better on validation, worse on test than...
        {"val_accuracy": 0.64, "accuracy": 0.70, "ebops": 150},  # ...this one: the test split must not pick it
        {"val_accuracy": 0.70, "accuracy": 0.69, "ebops": 400},
    ]
    got = held_out_curve(pts, "ebops", [50, 100, 150, 250, 1000])
    assert np.isnan(got[0])
    assert got[1:].tolist() == [0.61, 0.70, 0.62, 0.69]
    assert cost_to_reach(pts, "ebops", 0.69) == 150  # the curve first reaches 0.69 at 150 EBOPs
    assert cost_to_reach(pts, "ebops", 0.705) is None


def test_da_resource_term_counts_csd_digits():
    """resource='da': each kernel width counts as its weight's CSD digit count (live zeros as one digit)."""
    from keras import ops

    from hdl_gen.cmvm.csd import csd_digits
    from hgq.ebops import model_da_cost

    rng = np.random.default_rng(3)
    model = jet_tagger(hidden=(12,), resource="da")
    x = rng.normal(size=(256, 16)).astype("float32")
    trace_minmax(model, x)
    want = 0.0
    for lay in ebops_layers(model):
        q = lay.qkernel
        _, _, f = lay.kq.kif()
        m = np.round(np.abs(q) * 2.0**f).astype(np.int64)
        bw = np.asarray(ops.convert_to_numpy(lay.kq.bits(False)))
        digits = np.maximum((csd_digits(m) != 0).sum(-1), bw > 0)
        bx = np.asarray(ops.convert_to_numpy(lay.iq.bits(False)))
        bias = float(np.mean(np.asarray(ops.convert_to_numpy(lay.bq.bits(False))))) * lay.units
        want += float(bx @ digits @ np.ones(lay.units)) + bias
        assert np.any(digits < bw)  # the DA cost really differs from EBOPs
    assert model_da_cost(model) == want
    assert model_da_cost(model) < model_ebops(model)
    # the term is what β multiplies in training, and it reaches the width variables
    y = keras.utils.to_categorical(rng.integers(0, 5, 256), 5)
    model.compile(keras.optimizers.SGD(0.0), keras.losses.CategoricalCrossentropy(from_logits=True))
    loss0 = float(model.train_on_batch(x, y))  # β = 1e-6: the task loss
    set_beta(model, 1.0)
    loss1 = float(model.train_on_batch(x, y))
    recorded = trained_ebops(model)  # EBOPs are recorded whatever the term
    assert math.isclose(loss1 - loss0, model_da_cost(model), rel_tol=0.25)
    assert recorded > 1.25 * (loss1 - loss0)
