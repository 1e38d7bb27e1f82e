"""RTL regression over every layer type: each trace-test model (and a softmax model), calibrated and converted,
streamed through Verilator and Icarus on physics / random vectors; RTL == interpreter == Keras, latency exact."""

from __future__ import annotations

import functools
import shutil

import keras
import numpy as np
import pytest
from test_softmax import _dense_softmax
from test_trace import MODELS, _data, _Modes, _physics

import hdl_gen
import sim
from hgq.calibrate import trace_minmax

N_VECTORS = 300
CASES = {**{name: functools.partial(MODELS[name], _Modes(5 * n)) for n, name in enumerate(MODELS)},
         "softmax": _dense_softmax}  # fmt: skip


@functools.cache
def _design(name: str):
    """Build, calibrate and convert one model once per process; return (design, input-port vectors)."""
    keras.utils.set_random_seed(0)
    model = CASES[name]()
    x_cal, x_test = _data(model, np.random.default_rng(1), _physics())
    trace_minmax(model, x_cal, batch_size=len(x_cal))
    x = x_test[:N_VECTORS]
    design = hdl_gen.convert(model, part="xcvu13p-flga2577-2-e", clock_ns=3.0, name=f"layers_{name}")
    xq = hdl_gen.quantize_input(model, x)
    want = np.asarray(model.predict(x, batch_size=N_VECTORS, verbose=0), dtype=np.float64)
    assert np.array_equal(design.predict(xq), want.reshape(len(x), -1).reshape(design.predict(xq).shape))
    return design, xq


ICARUS = pytest.param(
    "icarus", marks=pytest.mark.skipif(shutil.which("iverilog") is None, reason="apt-get install -y iverilog")
)


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["verilator", ICARUS])
@pytest.mark.parametrize("name", list(CASES))
def test_layer_model_rtl_is_bit_exact(name, simulator):
    design, xq = _design(name)
    r = sim.verify(design, xq, simulator=simulator, mode="stream")
    assert r.mismatches == 0 and r.valid_errors == 0, r.first_mismatch
    assert r.latency_observed == design.latency >= 1
    assert r.passed


def _plant_table_bug(design):
    """The design with one entry of one last-layer table changed: the entry sample 0 reads."""
    from dataclasses import replace

    from hdl_gen import ops as K
    from hdl_gen.design import Design
    from hdl_gen.interp import interp_trace

    design0, xq = design
    g = design0.graph
    m = interp_trace(g, xq[:1], mantissas=True)[0]
    last = g.layers()[-1]
    j = next(j for j, op in enumerate(g.ops) if op.kind is K.LOOKUP and op.layer == last)
    op = g.ops[j]
    table, e = list(op.attrs.table), 0
    for a in op.args:  # the entry sample 0 reads (a table of two wires: row-major, the first wire the row)
        ia = g.ops[a].interval
        e = e * (ia.hi - ia.lo + 1) + int(m[a] - ia.lo)
    table[e] = op.interval.lo if table[e] != op.interval.lo else op.interval.hi  # stays inside the op's interval
    ops = list(g.ops)
    ops[j] = replace(op, attrs=op.attrs._replace(table=tuple(table)))
    return Design(replace(g, ops=tuple(ops)), part=design0.part, clock_ns=design0.clock_ns, name="planted_table")


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["verilator", ICARUS])
def test_planted_table_entry_fails(simulator):
    design, xq = _design("lut_dense")
    bad = _plant_table_bug((design, xq))
    r = sim.verify(bad, xq, simulator=simulator, mode="stream", expected=design.predict(xq), waves=False)
    assert not r.passed and r.mismatches > 0
    assert r.first_mismatch["sample"] == 0
    shutil.rmtree(r.run_dir)
