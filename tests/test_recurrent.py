"""Recurrent layers in both hardware forms: unrolled (II = 1) and one cell reused every step (II = steps × cell
latency). Keras == interpreter == Verilator == Icarus by equality for QSimpleRNN, QGRU and QLSTM; the II > 1
testbench offers inputs while the design is busy (they must be ignored); a planted cell-table bug fails; the
recurrent jet tagger is trained briefly on the particle sample and verified in both forms."""

from __future__ import annotations

import functools
import shutil
from dataclasses import replace

import keras
import numpy as np
import pytest

import hdl_gen
import sim
from hdl_gen import ops as K
from hdl_gen.sequential import SequentialDesign
from hgq import layers as hl
from hgq.calibrate import trace_minmax
from hgq.layers.recurrent import sigmoid_f32, tanh_f32
from hgq.models import rnn_tagger

KINDS = ("QSimpleRNN", "QGRU", "QLSTM")
STEPS, FEATS, UNITS = 4, 3, 3
PART, CLOCK = "xcvu13p-flga2577-2-e", 5.0
ICARUS = pytest.param(
    "icarus", marks=pytest.mark.skipif(shutil.which("iverilog") is None, reason="apt-get install -y iverilog")
)


def _model(kind: str) -> keras.Model:
    x = keras.Input((STEPS, FEATS))
    h = getattr(hl, kind)(UNITS, seed=1, iq_conf={"f0": 4}, name="rnn")(x)
    return keras.Model(x, hl.QDense(2, name="head")(h), name=f"m_{kind.lower()}")


@functools.cache
def _designs(kind: str):
    """Both forms of a briefly trained small model; Keras == interpreter == reused-cell predict on held-out data."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (1200, STEPS, FEATS)).astype(np.float32)
    y = (x[:, :, 0].sum(1) > 0).astype(np.int64)
    model = _model(kind)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:1000], y[:1000], epochs=2, batch_size=50, verbose=0)
    trace_minmax(model, x[:1000])
    x_test = 1.3 * x[1000:]  # wider than calibration: saturating quantizers clip
    xq = hdl_gen.quantize_input(model, x_test)
    want = model.predict(x_test, verbose=0)
    unrolled = hdl_gen.convert(model, part=PART, clock_ns=CLOCK, name=f"unr_{kind.lower()}")
    reused = hdl_gen.convert_recurrent(model, part=PART, clock_ns=CLOCK, name=f"seq_{kind.lower()}")
    assert np.array_equal(unrolled.predict(xq), want)
    assert np.array_equal(reused.predict(xq), want)
    return unrolled, reused, xq[:120]


def test_activations_are_fusion_proof_and_close():
    v = np.linspace(-40, 40, 20001).astype(np.float32)
    for exact, ref in ((tanh_f32, np.tanh), (sigmoid_f32, lambda a: 1 / (1 + np.exp(-a.astype(np.float64))))):
        a = np.asarray(keras.ops.convert_to_numpy(exact(keras.ops.convert_to_tensor(v))))
        b = exact(v, np)  # numpy: the same float32 operations
        assert a.dtype == np.float32 and np.array_equal(a, b)
        assert np.max(np.abs(a - ref(v))) < 2e-7


@pytest.mark.parametrize("kind", KINDS)
def test_layer_saves_and_counts_ebops_per_step(kind, tmp_path):
    unrolled, reused, xq = _designs(kind)
    model = _model(kind)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    assert type(again.get_layer("rnn")) is type(model.get_layer("rnn"))
    layer = model.get_layer("rnn")
    e1 = layer.ebops
    layer.steps *= 2  # every step counts: twice the steps, twice the per-step terms
    assert layer.ebops > 1.5 * e1
    assert reused.ii == STEPS * reused.cell_latency and reused.latency == reused.ii + 1 + reused.head_sched.latency
    assert reused.layout["ii"] == reused.ii and reused.layout["input"]["shape"] == [STEPS, FEATS]
    rep_u, rep_s = unrolled.report(), reused.report()
    assert rep_s["lut_estimate"] < rep_u["lut_estimate"]  # one cell instead of STEPS


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["verilator", ICARUS])
@pytest.mark.parametrize("kind", KINDS)
def test_both_forms_rtl_are_bit_exact(kind, simulator):
    unrolled, reused, xq = _designs(kind)
    for design in (unrolled, reused):
        r = sim.verify(design, xq, simulator=simulator, mode="stream")
        assert r.mismatches == 0 and r.valid_errors == 0, (design.name, r.first_mismatch)
        assert r.latency_observed == design.latency and r.passed


def _plant_cell_bug(d: SequentialDesign, xq: np.ndarray) -> SequentialDesign:
    """The reused design with one entry of a cell table changed, one that changes sample 0's output."""
    want = d.predict(xq[:1])
    for j, op in enumerate(d.cell.ops):
        if op.kind is not K.LOOKUP:
            continue
        for e in range(len(op.attrs.table)):
            table = list(op.attrs.table)
            table[e] = op.interval.lo if table[e] != op.interval.lo else op.interval.hi
            ops = list(d.cell.ops)
            ops[j] = replace(op, attrs=op.attrs._replace(table=tuple(table)))
            bad = SequentialDesign.__new__(SequentialDesign)
            bad.__dict__.update({k: v for k, v in d.__dict__.items() if k not in ("layout", "_verilog")})
            bad.cell, bad.name = replace(d.cell, ops=tuple(ops)), "planted_cell"
            if not np.array_equal(bad.predict(xq[:1]), want):
                return bad
    raise AssertionError("no cell table entry changes sample 0's output")


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["verilator", ICARUS])
def test_planted_cell_table_bug_fails(simulator):
    _, reused, xq = _designs("QGRU")
    bad = _plant_cell_bug(reused, xq)
    r = sim.verify(bad, xq, simulator=simulator, mode="stream", expected=reused.predict(xq), waves=False)
    assert not r.passed and r.mismatches > 0 and r.first_mismatch["sample"] == 0
    shutil.rmtree(r.run_dir)


def test_reused_form_errors_name_the_fix():
    x = keras.Input((STEPS, FEATS))
    m = keras.Model(x, hl.QLSTM(2, return_sequences=True, name="rnn")(hl.QDense(3)(x)))
    trace_minmax(m, np.zeros((4, STEPS, FEATS), np.float32))
    with pytest.raises(hdl_gen.TraceError, match="read the .*model input directly"):
        hdl_gen.convert_recurrent(m)
    with pytest.raises(ValueError, match="mode='stream'"):
        _, reused, xq = _designs("QSimpleRNN")
        sim.verify(reused, xq, mode="bulk")


@pytest.mark.sim("verilator")
def test_recurrent_tagger_on_particles_both_forms():
    from hgq.data import load_particles, particle_split

    keras.utils.set_random_seed(0)
    s = particle_split(load_particles("sample", n_particles=6), seed=0)
    model = rnn_tagger("gru", steps=6, units=4, head=(8,))
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])  # fmt: skip
    hist = model.fit(s.p_train, s.y_train, epochs=3, batch_size=64, verbose=0)
    assert hist.history["accuracy"][-1] > 0.25  # it learns (5 balanced classes: 0.2 by chance)
    trace_minmax(model, s.p_train)
    xq = hdl_gen.quantize_input(model, s.p_test[:100])
    want = model.predict(s.p_test[:100], verbose=0)
    for design in (hdl_gen.convert(model, name="gru_unrolled"), hdl_gen.convert_recurrent(model, name="gru_cell")):
        assert np.array_equal(design.predict(xq), want)
        r = sim.verify(design, xq, simulator="verilator", mode="stream")
        assert r.passed and r.mismatches == 0 and r.latency_observed == design.latency
