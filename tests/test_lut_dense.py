"""LUT-native layers (QLUTDense, QLUTConv1D/2D): forward == sum of edge tables, training grid == inference where
it covers the inputs, the resource term's formula, serialization, errors, and the lut_tagger end to end."""
# ruff: noqa: I001

from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import keras
import numpy as np
import pytest
from keras import ops

from hdl_gen import ops as K
from hdl_gen.interp import interp
from hdl_gen.tracer import quantize_input, trace
from hgq import load_model
from hgq.calibrate import trace_minmax
from hgq.fixed import quantize
from hgq.layers import QDense, QLUTConv1D, QLUTConv2D, QLUTDense
from hgq.models import lut_tagger

SAT4 = {"q_type": "kif", "k0": 1, "i0": 1, "f0": 2, "round_mode": "RND", "overflow_mode": "SAT"}  # 4-bit inputs
SAT4_CH = {**SAT4, "granularity": "channel"}  # a conv's grid spans a channel over all positions


def _x(shape, seed=0, scale=1.5):
    return np.random.default_rng(seed).normal(0, scale, (256, *shape)).astype("float32")


def _randomize_widths(layer, rng, max_bits: int) -> None:
    """Per-input widths of ``iq`` in [1, max_bits] (k=1, i in {0, 1})."""
    q = layer.iq
    s = q.k.shape
    i = rng.integers(0, 2, size=s)
    q.i.assign(i.astype("float32"))
    q.bvar.assign((rng.integers(1, max_bits + 1, size=s) - 1 - i).astype("float32"))  # f = width - k - i


@pytest.mark.parametrize(
    "make,shape",
    [
        (lambda: QLUTDense(5, iq_conf=SAT4, table_bits=4, seed=0), (16,)),
        (lambda: QLUTConv1D(3, 3, padding="same", iq_conf=SAT4_CH, table_bits=4, seed=1), (7, 2)),
        (lambda: QLUTConv2D(2, (2, 2), strides=2, iq_conf=SAT4_CH, table_bits=4, seed=2), (4, 5, 2)),
    ],
)
def test_training_grid_equals_inference_when_it_covers_the_inputs(make, shape):
    """With every input column at most log2(grid) bits wide the per-step table grid holds every input value."""
    layer = make()
    x = _x(shape)
    layer.build((None, *shape))
    if isinstance(layer, QLUTDense):  # per-element widths (a conv's are per channel here: SAT4_CH's 4 bits)
        _randomize_widths(layer, np.random.default_rng(3), 4)
    y_train = np.asarray(layer(x, training=True))
    y_inf = np.asarray(layer(x, training=False))
    assert np.array_equal(y_train, y_inf)
    assert not np.all(y_inf == y_inf[:1])


def test_tables_read_the_top_bits_and_lower_exactly():
    """Inputs wider than the tables: they read the top bits, in Keras, the training grid and the interpreter."""
    x = keras.Input((10,))
    layer = QLUTDense(4, iq_conf={**SAT4, "i0": 2, "f0": 4}, table_bits=5, seed=3, name="l")  # 7-bit inputs
    model = keras.Model(x, layer(x))
    _randomize_widths(layer, np.random.default_rng(11), 7)
    r = layer.read_fractional_bits()[0]
    w = np.asarray(layer.input_widths(False))[0]
    k, i, f = layer.iq.kif()
    assert np.all(w <= 5) and np.any(r < f) and np.all(w == np.minimum(k + i + f, 5))
    xs = _x((10,))
    y_inf = np.asarray(model.predict(xs, verbose=0), dtype=np.float64)
    assert np.array_equal(np.asarray(layer(xs, training=True)), y_inf)  # the grid holds every value read
    g = trace(model)
    assert np.array_equal(interp(g, quantize_input(model, xs)), y_inf)
    qx = quantize(xs.astype(np.float64), k, i, f, layer.iq.round_mode, layer.iq.overflow_mode)
    e = np.floor(qx * 2.0**r) * 2.0**-r
    assert np.array_equal(layer.edge_tables(e).sum(axis=1), y_inf)  # forward = Σ tables of the read inputs


def test_tables_never_read_more_than_table_bits():
    """8-bit inputs, 4-bit tables: edges read the inputs' top bits, and training is still the inference forward."""
    layer = QLUTDense(4, iq_conf={**SAT4, "i0": 3, "f0": 4}, table_bits=4, seed=0)
    x = _x((16,))
    y_train, y_inf = np.asarray(layer(x, training=True)), np.asarray(layer(x, training=False))
    assert np.array_equal(y_train, y_inf)
    assert int(np.max(np.asarray(layer.input_widths(False)))) == 4
    assert np.all(layer.read_fractional_bits() == 4 - 1 - 3)  # k=1, i=3: f capped at 0


def test_forward_is_the_sum_of_edge_tables():
    layer = QLUTDense(6, seed=4)
    x = _x((16,))
    trace_minmax(keras.Sequential([keras.Input((16,)), layer]), x)
    qx = quantize(x.astype(np.float64), *layer.iq.kif(), layer.iq.round_mode, layer.iq.overflow_mode)
    r = layer.read_fractional_bits()[0]
    assert np.all(np.asarray(layer.input_widths(False))[0] == 5)  # 7-bit inputs (k1 i3 f3), 5-bit tables
    t = layer.edge_tables(np.floor(qx * 2.0**r) * 2.0**-r)  # (N, 16, 6)
    k, i, f = layer.eoq.kif()
    assert np.array_equal(t, quantize(t, k, i, f, layer.eoq.round_mode, layer.eoq.overflow_mode))  # on eoq's grid
    assert np.array_equal(np.asarray(layer(x), dtype=np.float64), t.sum(axis=1))


def test_edge_widths_read_fewer_bits_and_lower_exactly():
    """``edge_widths``: an edge drops more low bits than its input's tables read (or reads none). Training grid ==
    inference == interpreter; each edge's table is the shared-read table of its truncated input; the lowering's
    lookups are addressed by the truncated wires; the resource term counts each edge's own address width."""
    x = keras.Input((10,))
    layer = QLUTDense(4, iq_conf={**SAT4, "i0": 2, "f0": 3}, table_bits=6, edge_widths=True, seed=3, name="l")
    model = keras.Model(x, layer(x))  # 6-bit inputs (k1 i2 f3), read whole
    layer.ef.assign(np.random.default_rng(2).integers(-4, 4, (10, 4)).astype("float32"))
    k, i, f = layer.iq.kif()
    r, re = layer.read_fractional_bits()[0], layer.edge_read_fractional_bits()[0]
    assert np.all(r == 3) and np.all(re <= 3) and np.any((re < 3) & (k[:, None] + i[:, None] + re > 0))
    assert np.any(k[:, None] + i[:, None] + re <= 0)  # some edges read nothing
    xs = _x((10,))
    y_inf = np.asarray(model.predict(xs, verbose=0), dtype=np.float64)
    assert np.array_equal(np.asarray(layer(xs, training=True)), y_inf)
    g = trace(model)
    assert np.array_equal(interp(g, quantize_input(model, xs)), y_inf)
    sizes = {len(op.attrs.table) for op in g.ops if op.kind == K.LOOKUP}
    assert max(sizes) <= 64 and min(sizes) < 64  # some tables are over the truncated wires' values
    assert sizes <= {2 ** int(b) for b in (k[:, None] + i[:, None] + re).ravel() if b > 0}
    qx = quantize(xs.astype(np.float64), k, i, f, layer.iq.round_mode, layer.iq.overflow_mode)
    t = layer.edge_tables(qx)  # (N, 10, 4)
    alive = k[:, None] + i[:, None] + re > 0
    e = np.floor(qx[..., None] * 2.0**re) * 2.0**-re * alive  # (N, 10, 4): what each edge reads
    layer.edge_widths = False  # the same functions, every edge reading its input whole
    for o in range(4):
        assert np.array_equal(layer.edge_tables(e[:, :, o])[:, :, o], t[:, :, o])
    layer.edge_widths = True
    assert np.array_equal(t.sum(axis=1), y_inf)
    ko, io, fo = layer.eoq.kif()
    b_in, b_out = np.maximum(k[:, None] + i[:, None] + re, 0).astype(np.float64), (ko + io + fo).astype(np.float64)
    s = np.where(b_in >= 6, 2.0 ** (b_in - 6), b_in / 6)  # table_cost="lut": a LUT per output bit up to 6 bits
    assert layer.ebops == pytest.approx(np.sum(s * b_out + b_out * (b_in > 0)), rel=1e-6)


def test_pairs_of_narrow_tables_become_one_table_of_two_wires():
    """Tables of one output whose address bits together fit a LUT are lowered as one table of both wires (entries:
    the sums): Keras == interpreter either way, and pairing leaves fewer tables and adders, each table within
    ``table_inputs`` address bits. Same-wire tables and conv positions go through the same path."""
    import hdl_gen

    x = keras.Input((12,))
    l0 = QLUTDense(5, iq_conf={**SAT4, "f0": 1}, table_bits=3, edge_widths=True, seed=2, name="p0")  # 3-bit reads
    l1 = QLUTDense(3, iq_conf={**SAT4, "i0": 2, "f0": 1}, table_bits=2, seed=3, name="p1")  # 2-bit reads
    model = keras.Model(x, l1(l0(x)))
    l0.ef.assign(np.random.default_rng(6).integers(-1, 2, (12, 5)).astype("float32"))  # 1-3-bit edges
    xs = _x((12,))
    trace_minmax(model, xs)
    want = np.asarray(model.predict(xs, verbose=0), dtype=np.float64)
    xq = quantize_input(model, xs)
    apart, paired, lut4 = trace(model, table_inputs=0), trace(model), trace(model, table_inputs=4)
    for g in (apart, paired, lut4):
        assert np.array_equal(interp(g, xq), want)

    def tables(g):
        return [tuple(g.ops[a].interval.width for a in op.args) for op in g.ops if op.kind is K.LOOKUP]

    assert all(len(t) == 1 for t in tables(apart))
    two = [t for t in tables(paired) if len(t) == 2]
    assert len(two) >= len(tables(apart)) // 3 and all(sum(t) <= 6 for t in two)
    assert all(sum(t) <= 4 for t in tables(lut4) if len(t) == 2) and any(len(t) == 2 for t in tables(lut4))
    assert len(tables(paired)) < len(tables(lut4)) < len(tables(apart))
    adders = [sum(op.kind is K.ADD for op in g.ops) for g in (apart, paired)]
    assert adders[1] < adders[0]
    d_on = hdl_gen.convert(model, name="pairs")
    d_off = hdl_gen.convert(model, name="pairs", pair_tables=False)
    assert d_on.graph.to_json() == paired.to_json() and d_off.graph.to_json() == apart.to_json()
    assert d_on.report()["lut_estimate"] < d_off.report()["lut_estimate"]
    with pytest.raises(ValueError, match="pair_tables"):
        hdl_gen.convert(paired, pair_tables=False)


def _coarse_wire_model() -> tuple[keras.Model, keras.Model]:
    """``l0``'s integer sums feed ``l1``, whose tables read 3 fractional bits and whose edges read 2 down to -3 of
    them: the input wire sits on a coarser grid than the reads. Returns (model, model up to the wire)."""
    x = keras.Input((2,))
    eoq_int = {**SAT4, "i0": 2, "f0": 0}  # integer edge outputs: l0's sums lie on the integer grid
    h = QLUTDense(4, iq_conf=SAT4, eoq_conf=eoq_int, table_bits=4, seed=0, name="l0")(x)
    l1 = QLUTDense(3, iq_conf={**SAT4, "i0": 3, "f0": 3}, table_bits=7, edge_widths=True, seed=1, name="l1")
    model = keras.Model(x, l1(h))
    l1.ef.assign(np.random.default_rng(5).integers(-3, 3, (4, 3)).astype("float32"))
    return model, keras.Model(x, h)


def test_edge_widths_lower_exactly_when_the_input_wire_is_coarser_than_its_reads():
    """An edge reading fewer bits than its input's tables, where the input wire is on a coarser grid than the
    tables read (integer sums of the layer before, read at 3 fractional bits): each lookup is addressed on the
    wires' own grids (regression: the re-index assumed the wire at the read bits and mismatched)."""
    model, upto = _coarse_wire_model()
    l1 = model.get_layer("l1")
    r, re = l1.read_fractional_bits()[0], l1.edge_read_fractional_bits()[0]
    assert np.all(r == 3) and np.any((re >= 0) & (re < 3)) and np.any(re < 0)
    xs = _x((2,))
    want = np.asarray(model.predict(xs, verbose=0), dtype=np.float64)
    q1 = np.asarray(upto.predict(xs, verbose=0), dtype=np.float64)
    assert np.array_equal(q1, np.round(q1)) and len(np.unique(q1)) > 4  # the wire: integers, read at f = 3
    assert len(np.unique(want, axis=0)) > 8
    assert np.array_equal(interp(trace(model), quantize_input(model, xs)), want)


@pytest.mark.sim
def test_coarse_wire_edge_widths_rtl_is_bit_exact(simulator):
    """The same model on Verilator and Icarus, stream and bulk mode: RTL == Keras by equality on 256 vectors,
    latency as claimed.

    Its 8 input bits leave some table addresses at their initial value 0 for the first samples. A table is an
    ``always @*`` block started at time 0 by a ``reg trigger = 0`` initialiser; in Icarus's SystemVerilog modes
    that is no event, so such a table stayed X in stream mode until the simulator ran the Verilog-2005 semantics
    the emitted Verilog is written for (``sim.runners.ICARUS_GEN``)."""
    import hdl_gen
    import sim

    model, _ = _coarse_wire_model()
    xs = _x((2,))
    design = hdl_gen.convert(model, clock_ns=2.0, name="coarse_wire")
    xq = quantize_input(model, xs)
    want = np.asarray(model.predict(xs, verbose=0), dtype=np.float64)
    assert np.array_equal(design.predict(xq), want)
    for mode in ("stream", "bulk"):
        r = sim.verify(design, xq, simulator=simulator, mode=mode, expected=want)
        assert r.passed and r.mismatches == 0 and r.compared >= len(xq), (mode, r.first_mismatch)
        assert r.latency_observed == design.latency >= 1


def test_conv_edge_widths_and_batch_norm_lower_exactly():
    """A LUT convolution with per-edge reads and batch norm: every position's edges read min(ef, that position's
    read bits); Keras == interpreter, padding taps included."""
    x = keras.Input((7, 2))
    conv = QLUTConv1D(3, 3, padding="same", iq_conf=SAT4, table_bits=4, edge_widths=True, batch_norm=True, seed=1)
    model = keras.Model(x, conv(x))
    rng = np.random.default_rng(4)
    conv.ef.assign(rng.integers(-2, 3, conv.ef.shape).astype("float32"))
    conv.moving_mean.assign(rng.uniform(-0.2, 0.2, 3).astype("float32"))
    conv.moving_variance.assign(rng.uniform(0.5, 2.0, 3).astype("float32"))
    xs = _x((7, 2))
    trace_minmax(model, xs)
    re = conv.edge_read_fractional_bits()
    assert re.shape == (7, 6, 3) and np.any(re < conv.read_fractional_bits()[..., None])
    want = np.asarray(model.predict(xs, verbose=0), dtype=np.float64)
    assert np.array_equal(interp(trace(model), quantize_input(model, xs)), want)
    assert not np.all(want == want[:1])


def test_bitwidth_plot_shows_each_edges_address_width(tmp_path):
    from hgq.plots import layer_bitwidths, plot_bitwidths

    x = keras.Input((6,))
    layer = QLUTDense(3, iq_conf=SAT4, edge_widths=True, seed=0, name="l")
    model = keras.Model(x, layer(x))
    layer.ef.assign(np.arange(-3, 3, dtype="float32").reshape(6, 1) * np.ones((1, 3), "float32"))
    items = dict(layer_bitwidths(model))
    assert np.array_equal(items["l.table in"], np.asarray(layer.edge_input_widths(False))[0])
    assert items["l.table in"].shape == (6, 3) and len(np.unique(items["l.table in"])) > 2
    assert plot_bitwidths(model, tmp_path / "b.png").stat().st_size > 0


def test_batch_norm_normalises_with_the_batch_statistics_of_the_values_read(tmp_path):
    """``batch_norm``: a training step takes the mean and variance (per output, over the batch and the inputs) of
    the edge values the batch reads, from the grid histogram; inference uses the moving statistics (momentum 0
    here: the last batch's), so it then equals the training forward; the tables fold it in and save/load keeps it."""
    x = keras.Input((12,))
    layer = QLUTDense(3, iq_conf=SAT4, table_bits=4, batch_norm=True, bn_momentum=0.0, seed=5, name="l")
    model = keras.Model(x, layer(x))
    layer.bn_gamma.assign(np.array([0.5, 2.0, 1.0], "float32"))
    layer.bn_beta.assign(np.array([0.25, -0.5, 0.0], "float32"))
    xs = _x((12,))
    y_train = np.asarray(layer(xs, training=True))
    k, i, f = layer.iq.kif()
    qx = quantize(xs.astype(np.float64), k, i, f, layer.iq.round_mode, layer.iq.overflow_mode)
    raw = np.asarray(layer._edge_values(ops.convert_to_tensor(qx.astype("float32"))), dtype=np.float64)
    np.testing.assert_allclose(np.asarray(layer.moving_mean), raw.mean(axis=(0, 1)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(layer.moving_variance), raw.var(axis=(0, 1)), rtol=1e-4, atol=1e-6)
    y_inf = np.asarray(model.predict(xs, verbose=0), dtype=np.float64)
    assert np.array_equal(y_train, y_inf)
    assert np.array_equal(layer.edge_tables(qx).sum(axis=1), y_inf)
    g = trace(model)
    assert np.array_equal(interp(g, quantize_input(model, xs)), y_inf)
    model.save(tmp_path / "m.keras")
    back = load_model(tmp_path / "m.keras")
    assert back.get_layer("l").batch_norm and not back.get_layer("l").edge_widths
    assert np.array_equal(np.asarray(back.predict(xs, verbose=0), dtype=np.float64), y_inf)


def test_resource_term_counts_table_luts_and_adder_bits():
    rng = np.random.default_rng(7)
    layer = QLUTDense(5, seed=0, table_cost="lut6")
    layer.build((None, 12))
    _randomize_widths(layer, rng, 8)
    layer.eoq.bvar.assign(rng.integers(-2, 5, size=layer.eoq.bvar.shape).astype("float32"))  # some edges pruned
    k, i, f = layer.iq.kif()
    b_in = np.minimum(k + i + f, 5).astype(np.float64)[:, None]  # table_bits=5 caps the address
    ko, io, fo = layer.eoq.kif()
    b_out = (ko + io + fo).astype(np.float64)
    s = np.where(b_in >= 5, 2.0 ** (b_in - 5), b_in / 5)
    want = np.sum(s * b_out / 2 + b_out * (b_in > 0))
    assert layer.ebops == pytest.approx(want, rel=1e-6) and want > 0
    # table_cost="lut" (the default): one LUT per output bit up to 6 address bits (yosys' count), b/6 of it below
    as_yosys = QLUTDense(5, seed=0)
    as_yosys.build((None, 12))
    for a, b in zip(as_yosys.weights, layer.weights, strict=True):
        a.assign(b)
    want = np.sum(b_in / 6 * b_out + b_out * (b_in > 0))
    assert as_yosys.ebops == pytest.approx(want, rel=1e-6) and as_yosys.ebops > layer.ebops
    assert QLUTDense.from_config(layer.get_config()).table_cost == "lut6"
    with pytest.raises(ValueError, match="table_cost must be one of"):
        QLUTDense(5, table_cost="lut5")
    conv = QLUTConv1D(2, 3, padding="same", seed=0)  # padding taps cost nothing; 4 positions of 3 taps
    conv.build((None, 4, 1))
    assert conv.ebops < 4 * 3 * 2 * (2.0 ** (7 - 5) * 6 / 2 + 6)


def test_resource_term_pulls_capped_fractional_bits_down():
    """Where the table cap binds (``k + i + f > table_bits``) the resource term's gradient still reaches ``f``
    (straight through the cap): that is the way to smaller tables, so ``f`` may not sit free above the cap."""
    import jax

    layer = QLUTDense(3, table_bits=5, seed=0)
    layer.build((None, 6))
    q = layer.iq
    q.i.assign(np.ones(q.i.shape, "float32"))
    q.bvar.assign(np.array([[9.0, 6.0, 4.0, 3.0, 2.0, 1.0]], "float32"))  # k+i+f: 11, 8, 6 capped; 5, 4, 3 not
    assert np.array_equal(layer.read_fractional_bits()[0], [3, 3, 3, 3, 2, 1])

    def cost(b):
        with keras.StatelessScope(state_mapping=[(q.bvar, b)]):
            return layer.compute_ebops(True)

    g = np.asarray(jax.grad(cost)(q.bvar.value))[0]
    assert (g > 0).all()  # every input's f: fewer bits, fewer LUTs
    assert g[0] == g[1] == g[2] == g[3]  # the capped ones as the one at the cap


def test_gradients_reach_the_layer_before_and_the_widths():
    keras.utils.set_random_seed(0)
    x = keras.Input((8,))
    d = QDense(8, activation="relu", name="da")
    lut = QLUTDense(3, seed=0, beta0=1e-3, name="lut")
    model = keras.Model(x, lut(d(x)))
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    xs, ys = _x((8,)), np.random.default_rng(1).integers(0, 3, 256)
    before = {v.path: np.asarray(v.value).copy() for v in model.trainable_variables}
    model.fit(xs, ys, epochs=2, batch_size=64, verbose=0)
    moved = {v.path for v in model.trainable_variables if not np.array_equal(before[v.path], np.asarray(v.value))}
    assert any(p.startswith("da/") and "kernel" in p for p in moved)  # the slope carries d/dx back
    assert any(p.startswith("lut/") and p.endswith("w1") for p in moved)
    assert any(p.startswith("lut/iq") for p in moved)  # input widths learn (slope gradient + resource term)
    assert any("eoq" in p for p in moved)  # table output widths learn (rounding gradient + resource term)


def test_cap_gradient_charges_a_capped_inputs_integer_bits_for_its_lost_resolution():
    """With ``cap_gradient`` a SAT input read below its own fractional bits (the table cap binds) passes HGQ's
    surrogate gradient of those read bits to its ``i`` (one more integer bit = one fractional bit fewer); inputs
    the cap does not bind, WRAP inputs and the forward are unchanged."""
    import jax

    capped = np.array([True] * 4 + [False] * 4)
    grads, outs = {}, {}
    for on in (False, True):
        for mode in ("SAT", "WRAP"):
            keras.utils.set_random_seed(0)
            layer = QLUTDense(3, table_bits=5, seed=0, cap_gradient=on, iq_conf={**SAT4, "overflow_mode": mode})
            xs = _x((8,), scale=3.0)
            layer(xs[:2])
            q = layer.iq
            q.i.assign(np.ones(q.i.shape, "float32"))
            q.bvar.assign(np.where(capped, 5.0, 2.0)[None].astype("float32"))  # k+i+f: 7 (> 5, capped) or 4
            tv = layer.trainable_variables
            w = np.random.default_rng(1).normal(size=(256, 3)).astype("float32")

            def loss(vals, layer=layer, xs=xs, w=w):
                y, _ = layer.stateless_call(vals, [v.value for v in layer.non_trainable_variables], xs, training=True)
                return (y * w).sum(), y

            (_, y), g = jax.value_and_grad(loss, has_aux=True)([v.value for v in tv])
            grads[on, mode] = {v.path.split("/", 1)[1]: np.asarray(gv) for v, gv in zip(tv, g, strict=True)}
            outs[on, mode] = np.asarray(y)
    for mode in ("SAT", "WRAP"):
        assert np.array_equal(outs[True, mode], outs[False, mode])
    moved = grads[True, "SAT"]["iq/i"][0] != grads[False, "SAT"]["iq/i"][0]
    assert moved[capped].all() and not moved[~capped].any()
    for key, g in grads[False, "SAT"].items():  # nothing else changes
        assert key == "iq/i" or np.array_equal(g, grads[True, "SAT"][key])
    assert all(np.array_equal(g, grads[True, "WRAP"][k]) for k, g in grads[False, "WRAP"].items())


def test_table_read_gradients_equal_the_reference():
    """The fused read's backward (scatter-add into the rows read, gathered slopes) equals autodiff of the plain
    gather for the tables and the slope rule for ``x``, with repeated rows in one batch."""
    import jax
    import jax.numpy as jnp

    from hgq.layers.lut_dense import _table_read

    rng = np.random.default_rng(3)
    m, n, g, u = 64, 3, 8, 4
    x = jnp.asarray(rng.normal(size=(m, n)), jnp.float32)
    pos = jnp.asarray(rng.integers(0, g, (m, n)), jnp.float32)  # 64 samples over 8 values: rows repeat
    tab, slope, w = (jnp.asarray(rng.normal(size=s), jnp.float32) for s in ((n * g, u), (n * g, u), (m, u)))
    rows = pos.astype(jnp.int32) + jnp.arange(n, dtype=jnp.int32) * g

    def fused(x, tab):
        return jnp.sum(_table_read(g)(x, pos, tab, slope) * w)

    def plain(tab):
        return jnp.sum(jnp.sum(tab[rows], axis=1) * w)

    g_x, g_tab = jax.grad(fused, argnums=(0, 1))(x, tab)
    np.testing.assert_allclose(np.asarray(g_tab), np.asarray(jax.grad(plain)(tab)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(g_x), np.asarray(jnp.sum(slope[rows] * w[:, None, :], -1)), rtol=1e-6)
    assert np.asarray(fused(x, tab)) == np.asarray(plain(tab))  # the forward is the same gather


def test_save_and_load_round_trip(tmp_path):
    x = keras.Input((6, 2))
    y = QLUTConv1D(3, 2, strides=2, seed=1, hidden=4, table_bits=3, name="c")(x)
    y = keras.layers.Flatten()(y)
    y = QLUTDense(2, seed=2, name="d")(y)
    model = keras.Model(x, y)
    xs = _x((6, 2))
    trace_minmax(model, xs)
    model.save(tmp_path / "m.keras")
    back = load_model(tmp_path / "m.keras")
    assert np.array_equal(np.asarray(model.predict(xs, verbose=0)), np.asarray(back.predict(xs, verbose=0)))
    c = back.get_layer("c")
    assert (c.filters, c.kernel_size, c.strides, c.hidden, c.table_bits) == (3, (2,), (2,), 4, 3)


def test_clear_errors():
    with pytest.raises(ValueError, match="needs its input quantizer"):
        QLUTDense(3, enable_iq=False)
    with pytest.raises(ValueError, match="must saturate"):
        QLUTDense(3, eoq_conf={"overflow_mode": "WRAP"})
    with pytest.raises(ValueError, match="table_bits must be in"):
        QLUTDense(3, table_bits=12)
    with pytest.raises(ValueError, match="bn_momentum must be in"):
        QLUTDense(3, batch_norm=True, bn_momentum=1.0)
    with pytest.raises(ValueError, match="channels_last"):
        QLUTConv1D(3, 3, data_format="channels_first")
    with pytest.raises(ValueError, match="padding"):
        QLUTConv2D(3, 3, padding="causal")


def test_lut_tagger_input_i_max_caps_the_inputs_integer_bits():
    model = lut_tagger(input_i_max=3)
    iq0, iq1 = model.get_layer("lut0").iq, model.get_layer("lut1").iq
    assert iq0.i_range == (-23.0, 3.0) and iq1.i_range == (-23.0, 23.0)  # the hidden sums follow their data
    iq0.i.assign(np.full(iq0.i.shape, 6.0, "float32"))
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    xs, ys = 20 * _x((16,)), np.random.default_rng(2).integers(0, 5, 256)
    model.fit(xs, ys, epochs=1, batch_size=256, verbose=0)  # one step: the constraint clips i
    assert float(np.max(np.asarray(iq0.i))) == 3.0


def test_lut_tagger_trains_and_lowers_exactly():
    from sklearn.datasets import load_digits

    xd, yd = load_digits(return_X_y=True)
    x = (xd[:, ::4] / 4.0).astype("float32")  # 16 features
    y = yd % 5
    keras.utils.set_random_seed(0)
    model = lut_tagger(beta0=1e-5)
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])  # fmt: skip
    h = model.fit(x[:1400], y[:1400], validation_data=(x[1400:], y[1400:]), epochs=6, batch_size=128, verbose=0)
    assert h.history["val_accuracy"][-1] > 0.5  # 5 classes: chance is 0.2
    trace_minmax(model, x[:1400])
    g = trace(model)
    want = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    assert np.array_equal(interp(g, quantize_input(model, x)), want)
    assert float(ops.convert_to_numpy(model.get_layer("lut0")._ebops.value)) > 0
