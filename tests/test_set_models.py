"""Set models on particle-level jets: the new layers (QEinsum, set sums, broadcast, masks, several inputs and
outputs) and the Deep Sets / JEDI-linear / transformer recipes, trained briefly on the shipped particle sample;
Keras == interpreter == RTL by equality (Verilator; Icarus for the small ones), a planted attention bug fails."""

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
from hdl_gen.cmvm import retype, solve
from hdl_gen.design import Design
from hgq import layers as hl
from hgq import models
from hgq.calibrate import trace_minmax
from hgq.data import PARTICLE_FEATURES, load_particles, particle_split
from hgq.fixed import Interval

N_PART = 8
N_FEAT = len(PARTICLE_FEATURES)  # features per particle of the shipped sample
N_VECTORS = 200
ICARUS = pytest.param(
    "icarus", marks=pytest.mark.skipif(shutil.which("iverilog") is None, reason="apt-get install -y iverilog")
)


@functools.cache
def _split():
    """The shipped sample's split, first ``N_PART`` particles; test jets get random particle counts (masks with
    zeros: the sample's jets all hold more than ``N_PART`` particles)."""
    s = particle_split(load_particles("sample", n_particles=N_PART), seed=0)
    rng = np.random.default_rng(3)
    n = rng.integers(1, N_PART + 1, len(s.y_test))
    mask = (np.arange(N_PART)[None] < n[:, None]).astype(np.float32)
    p = s.p_test * mask[..., None]
    return s, [s.p_train, s.mask_train[..., None].astype(np.float32)], [p, mask[..., None]]


def _check(model: keras.Model, x_cal, x_test) -> tuple[Design, np.ndarray]:
    """Calibrate, convert at 5 ns, and assert Keras == interpreter on ``x_test``; returns the design and vectors."""
    trace_minmax(model, x_cal, batch_size=2048)
    design = hdl_gen.convert(model, part="xcvu13p-flga2577-2-e", clock_ns=5.0, name=f"set_{model.name}")
    xq = hdl_gen.quantize_input(model, x_test)
    want = hdl_gen.flatten_io(model.predict(x_test, batch_size=4096, verbose=0))
    got = design.predict(xq)
    assert np.array_equal(got.reshape(want.shape), want)
    return design, xq


# -- the layers -----------------------------------------------------------------------------------------------
def _einsum_model():
    a, b = keras.Input((4, 3), name="a"), keras.Input((5, 3), name="b")
    s = hl.QEinsum("nd,md->nm", iq_confs=[{"f0": 3}, {"f0": 3}], name="qk")([a, b])
    t = hl.QEinsum("nm,md->nd", iq_confs=[{"f0": 2}, {"f0": 3}], name="av")([s, b])
    return keras.Model([a, b], t, name="einsum2")


def _pool_model():
    p, m = keras.Input((N_PART, 3), name="p"), keras.Input((N_PART, 1), name="m")
    x = hl.QMultiply(iq_confs=[{}, models.MASK_CONF], name="masked")([p, m])
    s = hl.QGlobalSumPooling1D(name="sum")(x)
    mx = hl.QGlobalMaxPooling1D(name="max")(x)
    g = keras.layers.RepeatVector(N_PART, name="broadcast")(hl.QDense(3, name="glob")(s))
    y = hl.QAdd(name="add")([x, g])
    return keras.Model([p, m], [hl.QGlobalAveragePooling1D(name="mean")(y), mx], name="pools")  # two outputs


def _random_pair(shapes, n, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1.0, (n, *s)).astype(np.float32) for s in shapes]


@functools.cache
def _einsum_design():
    keras.utils.set_random_seed(0)
    model = _einsum_model()
    x = _random_pair([(4, 3), (5, 3)], 3000, 1)
    return model, *_check(model, [v[:1000] for v in x], [1.4 * v[1000:] for v in x])


@functools.cache
def _pool_design():
    keras.utils.set_random_seed(0)
    model = _pool_model()
    _, x_cal, x_test = _split()
    return model, *_check(model, [x_cal[0][..., :3], x_cal[1]], [x_test[0][..., :3], x_test[1]])


def test_einsum_of_two_variables_is_exact():
    model, design, _ = _einsum_design()
    g = design.graph
    assert sum(op.kind is K.MUL for op in g.ops) == 4 * 5 * 3 + 4 * 3 * 5
    assert g.input_shape == (27,) and g.output_shape == (4, 3)
    eb = model.get_layer("qk").ebops  # Σ over products of b_a·b_b
    qs = model.get_layer("qk").iq
    ba, bb = (np.broadcast_to(q.bits(False), s) for q, s in zip(qs, [(4, 3), (5, 3)], strict=True))
    assert eb == pytest.approx(float(np.einsum("nd,md->", np.asarray(ba), np.asarray(bb))))


def test_set_pooling_broadcast_mask_and_two_outputs_are_exact():
    _, design, _ = _pool_design()
    assert design.graph.output_shape == (6,)  # both outputs, flattened and concatenated


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["verilator", ICARUS])
@pytest.mark.parametrize("which", ["einsum", "pools"])
def test_layer_models_rtl_are_bit_exact(which, simulator):
    _, design, xq = (_einsum_design if which == "einsum" else _pool_design)()
    r = sim.verify(design, xq[:N_VECTORS], simulator=simulator, mode="stream")
    assert r.mismatches == 0 and r.valid_errors == 0 and r.passed, r.first_mismatch
    assert r.latency_observed == design.latency


def test_qeinsum_errors_name_the_fix():
    for eq, msg in (("nd,md", "explicit output"), ("...d,md->m", "without '...'"), ("nn,md->nm", "distinct")):
        with pytest.raises(ValueError, match=msg):
            hl.QEinsum(eq)
    with pytest.raises(ValueError, match="axis 'd' has sizes 3 and 4"):
        hl.QEinsum("nd,md->nm")([keras.Input((2, 3)), keras.Input((2, 4))])


def test_shared_solution_is_retyped_exactly():
    W = np.array([[0.75, -0.5, 0.125], [1.0, 0.25, -0.875], [0.5, 0.5, 0.5]])
    wide = [Interval(-64, 63, 4), Interval(0, 255, 5), Interval(-8, 7, 2)]
    narrow = [Interval(-3, 5, 4), Interval(0, 7, 3), Interval(0, 0, 0)]
    g = solve(W, wide)
    r = retype(g, narrow)
    assert [(o.a, o.b, o.shift, o.sub) for o in r.ops] == [(o.a, o.b, o.shift, o.sub) for o in g.ops]
    xs = np.array([[-3, 7, 0], [5, 0, 0], [1, 3, 0]])  # mantissas within the narrow intervals
    vals = xs * np.array([2.0**-4, 2.0**-3, 1.0])
    want = vals @ W
    got = r.evaluate(xs) * np.ldexp(1.0, [-iv.f for iv in r.out_intervals])
    assert np.array_equal(got, want)
    for o, iv in enumerate(r.out_intervals):  # tight for the narrow inputs, inside the wide ones
        lo = sum(min(W[i, o] * a.lo_value, W[i, o] * a.hi_value) for i, a in enumerate(narrow))
        assert iv.lo_value == lo
        assert g.out_intervals[o].lo_value <= iv.lo_value


def test_set_layer_shares_one_solution_per_member():
    keras.utils.set_random_seed(0)
    s, x_cal, x_test = _split()
    model = models.deep_sets(N_PART, N_FEAT, phi=(8,), rho=(8,), name="ds_share")
    design, _ = _check(model, x_cal, x_test)
    blocks = [b for b in design.graph.blocks if b.layer == "phi0"]
    assert len(blocks) == N_PART
    shapes = {tuple((design.graph.ops[j].kind, design.graph.ops[j].attrs) for j in b.ops) for b in blocks}
    assert len(shapes) == 1  # the same adder network in every member


# -- the recipes --------------------------------------------------------------------------------------------------
RECIPES = {
    "deep_sets": dict(phi=(16, 16), rho=(16,)),
    "jedi_linear": dict(width=12, head=(12,)),
    "particle_transformer": dict(d_model=8, heads=1, d_head=4, ffn=8, head=(8,)),
}


@functools.cache
def _recipe(name: str):
    """Train briefly on the particle sample, calibrate, convert; Keras == interpreter checked."""
    keras.utils.set_random_seed(0)
    s, x_cal, x_test = _split()
    model = getattr(models, name)(N_PART, N_FEAT, **RECIPES[name], beta0=1e-6, name=name)
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])  # fmt: skip
    hist = model.fit(x_cal, s.y_train, epochs=4, batch_size=64, verbose=0)
    assert hist.history["accuracy"][-1] > 0.3  # it learns (5 balanced classes: 0.2 by chance)
    design, xq = _check(model, x_cal, x_test)
    return model, design, xq[:N_VECTORS]


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_saves_and_reloads_bit_exact(name, tmp_path):
    model, design, xq = _recipe(name)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    again = hdl_gen.convert(keras.models.load_model(path), part=design.part, clock_ns=5.0, name=design.name)
    assert again.verilog() == design.verilog()
    assert design.latency >= 1


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["verilator", ICARUS])
@pytest.mark.parametrize("name", ["deep_sets", "jedi_linear"])
def test_small_recipe_rtl_is_bit_exact(name, simulator):
    _, design, xq = _recipe(name)
    r = sim.verify(design, xq, simulator=simulator, mode="stream")
    assert r.mismatches == 0 and r.valid_errors == 0, r.first_mismatch
    assert r.latency_observed == design.latency and r.passed


@pytest.mark.sim("verilator")
def test_transformer_rtl_is_bit_exact():
    _, design, xq = _recipe("particle_transformer")
    r = sim.verify(design, xq, simulator="verilator", mode="stream")
    assert r.mismatches == 0 and r.valid_errors == 0 and r.passed, r.first_mismatch
    assert r.latency_observed == design.latency


def _attention_model():
    """One attention head on 4 members: scores, table softmax, weighted sum (the planted-bug subject)."""
    x = keras.Input((4, 3), name="x")
    q = hl.QDense(2, name="q")(x)
    k = hl.QDense(2, name="k")(x)
    a = hl.QSoftmax(iq_conf={"f0": 3}, name="attention")(hl.QEinsum("nd,md->nm", name="scores")([q, k]))
    y = hl.QEinsum("nm,md->nd", iq_confs=[{"overflow_mode": "SAT"}, {}], name="mix")([a, x])
    return keras.Model(x, y, name="attention")


@functools.cache
def _attention():
    keras.utils.set_random_seed(0)
    x = _random_pair([(4, 3)], 2000, 5)[0]
    return _check(_attention_model(), x[:1000], 1.3 * x[1000 : 1000 + N_VECTORS])


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["verilator", ICARUS])
def test_attention_rtl_is_exact_and_a_planted_table_entry_fails(simulator):
    design, xq = _attention()
    r = sim.verify(design, xq, simulator=simulator, mode="stream")
    assert r.mismatches == 0 and r.valid_errors == 0 and r.passed, r.first_mismatch
    bad = _plant_attention_bug(design, xq)
    rb = sim.verify(bad, xq, simulator=simulator, mode="stream", expected=design.predict(xq), waves=False)
    assert not rb.passed and rb.mismatches > 0 and rb.first_mismatch["sample"] == 0
    shutil.rmtree(rb.run_dir)


def _plant_attention_bug(design: Design, xq: np.ndarray) -> Design:
    """The design with one entry of the attention's exp table changed: an entry sample 0 reads, on a row whose
    change reaches an output."""
    from hdl_gen.interp import interp_trace

    g = design.graph
    m = interp_trace(g, xq[:1], mantissas=True)[0]
    want = design.predict(xq[:1])
    for j, op in enumerate(g.ops):
        if op.kind is not K.LOOKUP or op.layer != "attention":
            continue
        table, e = list(op.attrs.table), int(m[op.args[0]] - g.ops[op.args[0]].interval.lo)
        table[e] = op.interval.lo if table[e] != op.interval.lo else op.interval.hi
        ops = list(g.ops)
        ops[j] = replace(op, attrs=op.attrs._replace(table=tuple(table)))
        bad = Design(replace(g, ops=tuple(ops)), part=design.part, clock_ns=design.clock_ns, name="planted_attn")
        if not np.array_equal(bad.predict(xq[:1]), want):
            return bad
    raise AssertionError("no attention table entry read by sample 0 changes an output")


def test_shared_solution_with_an_absent_input_in_one_member():
    """A member whose input is absent (constant 0) folds that input away; its copy keeps the other steps."""
    from hdl_gen.interp import interp
    from hdl_gen.ir import GraphBuilder
    from hgq.fixed import FixedType

    rng = np.random.default_rng(0)
    W = rng.integers(-7, 8, (4, 3)) / 4.0
    b = GraphBuilder()
    coarse = FixedType(1, 6, -1)  # step 2: the folded ops keep it
    full = [b.input(coarse) for _ in range(4)]
    part = [b.input(coarse) for _ in range(3)] + [None]
    ys = b.cmvm_shared([full, part], W)
    g = b.build([*ys[0], *ys[1]], (7,), (6,))
    x = rng.integers(-32, 32, (50, 7)) * 2.0
    want = np.concatenate([x[:, :4] @ W, x[:, 4:] @ W[:3]], axis=1)
    assert np.array_equal(interp(g, x), want)
