"""LUT-native layers: every output is a sum of learned functions of single quantized inputs, one table per edge.

``y[o] = Σ_i T_io(x_i)`` with ``x_i = iq(x)_i`` (per-element learned widths, like every hgq quantizer) read by
the tables at ``r_i = min(f_i, table_bits - k_i - i_i)`` fractional bits (low bits dropped: free wiring), and
``T_io = eoq_io(g_io(x_i))``: a learned function of one input, quantized by its own output quantizer (per edge
``(i, o)``), with a small network on shared per-input features

    g_io(x) = Σ_h w2[i, o, h] · tanh(w1[i, h] · x + b1[i, h]) + b2[i, o].

In hardware every live edge is one table over the values its input can take (``2**b_in`` entries,
``b_in = k_i + i_i + r_i <= table_bits``, of ``width(eoq_io)`` bits), and each output is the adder tree of its
tables. An input with zero bits, or an edge whose output quantizer has zero bits, is pruned (a constant folded
into the sum).

A table has at most ``table_bits`` address bits (coarser inputs, never wider tables). That cap is what lets
training never evaluate the tables per sample: each step evaluates every edge once on the ``2**table_bits`` values
its input can take and reads them per sample by a gather (:meth:`_QLUTBase._grid_sum`),
exactly the inference forward, at about the cost of one dense layer of ``n_in·2**table_bits`` inputs. The resource
term (what β multiplies, recorded as the layer's EBOPs) counts LUT6s: a table with ``b_in`` address bits and
``b_out`` output bits takes ``s(b_in)·b_out/2`` LUT6s, ``s(b) = 2**(b-5)`` for ``b >= 5`` (a LUT6 holds one 6-input
output bit, or two 5-input ones) and ``b/5`` below (small tables share LUTs with their neighbours); its adder tree
adds ``b_out`` adder bits per live edge. Widths include the sign bit.

Options: ``edge_widths`` lets every edge read fewer bits than its input's tables (its own learned fractional bits,
a TRN drop: wiring; tables over the coarser values); ``batch_norm`` normalises the table outputs per output before
``eoq`` (statistics from a histogram of the grid positions read; folded into the tables at inference);
``cap_gradient`` (on by default) gives a SAT input's read bits HGQ's surrogate gradient where the cap binds, so the
fractional bit that one more integer bit costs reaches the loss (``r = table_bits - k - i`` there; without it ``r``
is a constant to the loss).
"""

from __future__ import annotations

import functools
import math

import keras
import numpy as np
from keras import ops

from hgq.layers.base import QLayer
from hgq.layers.conv import conv_geometry, conv_output_shape
from hgq.quantizer import Clip, _ste_quantizer, make_quantizer, quantizer_config, ste_round

__all__ = ["QLUTConv1D", "QLUTConv2D", "QLUTDense", "table_luts"]

IQ_DEFAULTS = dict(q_type="kif", k0=1, i0=3, f0=3, round_mode="TRN", overflow_mode="WRAP")
EOQ_DEFAULTS = dict(q_type="kif", k0=1, i0=1, f0=4, round_mode="RND", overflow_mode="SAT")


TABLE_COSTS = ("lut", "lut6")


def table_luts(b_in, b_out, cost: str = "lut"):
    """LUT estimate of tables with ``b_in`` address bits and ``b_out`` output bits (differentiable tensors).

    ``"lut"`` (the default): every output bit of up to 6 address bits is one LUT, as yosys counts them (one cell
    per LUT), each further address bit doubles it; narrower tables cost ``b_in / 6`` of it so that the widths keep a
    gradient down to pruning. ``"lut6"``: two output bits of at most 5 address bits share one LUT6 (its two
    outputs), so such a bit costs half a LUT, a 6-bit one a whole LUT (HGQ2's count).
    """
    if cost == "lut":
        return ops.where(b_in >= 6.0, ops.power(2.0, b_in - 6.0), b_in / 6.0) * b_out
    s = ops.where(b_in >= 5.0, ops.power(2.0, b_in - 5.0), b_in / 5.0)
    return s * b_out * 0.5


class _QLUTBase(QLayer):
    """LUT-dense core over the last axis (``n_in`` inputs → ``units`` outputs); subclasses choose the inputs."""

    def __init__(
        self,
        units: int,
        hidden: int = 8,
        table_bits: int = 5,
        eoq_conf: dict | None = None,
        seed: int | None = None,
        edge_widths: bool = False,
        batch_norm: bool = False,
        bn_momentum: float = 0.99,
        cap_gradient: bool = True,
        table_cost: str = "lut",
        **kwargs,
    ):
        if table_cost not in TABLE_COSTS:
            raise ValueError(f"table_cost must be one of {TABLE_COSTS}, got {table_cost!r}")
        kwargs["iq_conf"] = {**IQ_DEFAULTS, **(kwargs.get("iq_conf") or {})}
        if not kwargs.get("enable_iq", True):
            raise ValueError(
                f"{type(self).__name__} needs its input quantizer (it defines the tables); drop enable_iq=False"
            )
        super().__init__(**kwargs)
        self.units, self.hidden, self.table_bits = int(units), int(hidden), int(table_bits)
        if self.units < 1 or self.hidden < 1:
            raise ValueError(f"units and hidden must be >= 1, got units={units}, hidden={hidden}")
        if not 1 <= self.table_bits <= 10:
            raise ValueError(f"table_bits must be in [1, 10], got {table_bits}")
        if not 0.0 <= bn_momentum < 1.0:
            raise ValueError(f"bn_momentum must be in [0, 1), got {bn_momentum}")
        self.seed, self.bn_momentum = seed, float(bn_momentum)
        self.edge_widths, self.batch_norm = bool(edge_widths), bool(batch_norm)
        self.cap_gradient, self.table_cost = bool(cap_gradient), table_cost
        self.eoq = make_quantizer({**EOQ_DEFAULTS, **(eoq_conf or {})}, "activation", "eoq")
        if self.eoq.wrap:
            raise ValueError(
                "eoq_conf: a table's output quantizer must saturate (overflow_mode 'SAT' or 'SAT_SYM'); WRAP "
                "would make entries outside the calibrated range wrap around"
            )

    # -- weights -------------------------------------------------------------------------------------------
    def _build_edges(self, n_in: int):
        self.n_in = int(n_in)
        h, u = self.hidden, self.units
        rng = np.random.default_rng(self.seed)
        self.w1 = self.add_weight(name="w1", shape=(n_in, h), initializer=_const(rng.normal(0, 1, (n_in, h))))
        self.b1 = self.add_weight(name="b1", shape=(n_in, h), initializer=_const(rng.normal(0, 1, (n_in, h))))
        w2 = rng.normal(0, 1 / math.sqrt(h * n_in), (n_in, u, h))
        self.w2 = self.add_weight(name="w2", shape=(n_in, u, h), initializer=_const(w2))
        self.b2 = self.add_weight(name="b2", shape=(n_in, u), initializer="zeros")
        self.eoq.build((None, n_in, u))
        if self.edge_widths:  # fractional bits each edge reads, at most its input's (starts at the input's f0)
            f0 = keras.initializers.Constant(self.iq.f0)
            self.ef = self.add_weight(name="ef", shape=(n_in, u), initializer=f0, constraint=Clip(-24.0, 24.0))
        if self.batch_norm:  # one scale and shift per output over the batch and the inputs (tables fold them in)
            self.bn_gamma = self.add_weight(name="bn_gamma", shape=(u,), initializer="ones")
            self.bn_beta = self.add_weight(name="bn_beta", shape=(u,), initializer="zeros")
            self.moving_mean = self.add_weight(name="moving_mean", shape=(u,), initializer="zeros", trainable=False)
            self.moving_variance = self.add_weight(name="moving_variance", shape=(u,), initializer="ones",
                                                   trainable=False)  # fmt: skip

    def _edge_values(self, x):
        """Unquantized edge functions ``g_io``: of ``(M, n_in)`` inputs, or of ``(M, n_in, units)`` per-edge ones,
        → ``(M, n_in, units)``."""
        if len(x.shape) == 2:
            feat = ops.tanh(x[..., None] * self.w1 + self.b1)  # (M, n_in, hidden)
            return ops.einsum("mih,ioh->mio", feat, self.w2) + self.b2
        feat = ops.tanh(x[..., None] * self.w1[:, None] + self.b1[:, None])  # (M, n_in, units, hidden)
        return ops.einsum("mioh,ioh->mio", feat, self.w2) + self.b2

    def _normalized(self, raw, mean=None, var=None):
        """Batch norm of the table outputs (identity without ``batch_norm``): per output, divided by sqrt(n_in) so
        that a sum of ``n_in`` normalised tables starts at unit scale; the moving statistics unless given."""
        if not self.batch_norm:
            return raw
        mean = self.moving_mean if mean is None else mean
        var = self.moving_variance if var is None else var
        scale = self.bn_gamma / ops.sqrt(var + 1e-3)
        return ((raw - mean) * scale + self.bn_beta) / math.sqrt(self.n_in)

    def _edge_read_bits(self, r, training: bool):
        """Fractional bits each edge reads, ``min(ef_io, r_i)``, from the inputs' read bits ``r`` (``(..., n_in)``);
        ``(..., n_in, units)``. Without ``edge_widths`` every edge reads its input's ``r``."""
        if not self.edge_widths:
            return ops.broadcast_to(r[..., None], (*r.shape, self.units))
        ef = ste_round(self.ef) if training else ops.round(self.ef)
        return ops.minimum(ef, r[..., None])

    def _edge_inputs(self, e, k, i, r, training: bool):
        """Read inputs ``e`` (``(..., n_in)`` at their ``r`` fractional bits; ``k``, ``i``, ``r`` broadcast against
        ``e``) as each edge reads them: ``e`` itself, or with ``edge_widths`` ``(..., n_in, units)`` with the edge's
        low bits dropped (TRN: wiring) and 0 where it reads no bit; HGQ's surrogate gradient reaches ``ef``."""
        if not self.edge_widths:
            return e
        re = self._edge_read_bits(r, training)  # (..., n_in, units)
        alive = ops.cast(ops.stop_gradient(k[..., None] + i[..., None] + re) > 0, e.dtype)
        if training:
            eb = ops.broadcast_to(e[..., None], (*e.shape, self.units))
            re, alive = (ops.reshape(a, (1,) * (len(eb.shape) - len(a.shape)) + tuple(a.shape)) for a in (re, alive))
            return _ste_quantizer(None, "TRN")(eb, re, ops.zeros_like(re), ops.zeros_like(re), alive)
        return ops.floor(e[..., None] * ops.power(2.0, re)) * ops.power(2.0, -re) * alive

    def _tables(self, e, k, i, r):
        """Inference: quantized edge outputs ``(M, n_in, units)`` of read inputs ``e`` (``(B, positions, n_in)``,
        ``k``, ``i``, ``r`` per position ``(positions, n_in)``; ``M = B·positions``)."""
        per_edge = self._edge_inputs(e, k, i, r, False)
        flat = ops.reshape(per_edge, (-1, *per_edge.shape[2:]))
        return self.eoq(self._normalized(self._edge_values(flat)), training=False)

    def read_bits(self, k, i, f):
        """Fractional bits the tables read: ``min(f, table_bits - k - i)``. The gradient reaches ``f`` straight
        through where the cap binds: there too a lower ``f`` is the way to smaller tables, so the resource term
        pulls ``f`` down to the cap and below instead of leaving it free above it (tables stuck at the cap)."""
        return f - ops.stop_gradient(ops.relu(f - (self.table_bits - ops.stop_gradient(k + i))))

    def site_formats(self, training: bool):
        """``(k, i, f)`` of every table input's source, one row per position: ``(positions, n_in)`` each."""
        k, i, f, _ = self.iq._widths(training)
        return tuple(ops.reshape(ops.broadcast_to(a[0], self._in_shape[1:]), (-1, self.n_in)) for a in (k, i, f))

    def input_widths(self, training: bool = False):
        """Table address widths ``k + i + r`` per input and position (``<= table_bits``; 0: pruned)."""
        k, i, f = self.site_formats(training)
        k, i = ops.stop_gradient(k), ops.stop_gradient(i)
        return ops.relu(k + i + self.read_bits(k, i, f))

    def edge_input_widths(self, training: bool = False):
        """Table address widths per position and edge, ``(positions, n_in, units)`` (0: the edge is pruned)."""
        k, i, f = self.site_formats(training)
        k, i = ops.stop_gradient(k), ops.stop_gradient(i)
        return ops.relu(k[..., None] + i[..., None] + self._edge_read_bits(self.read_bits(k, i, f), training))

    def edge_read_fractional_bits(self) -> np.ndarray:
        """The integer fractional bits each edge reads its input at: ``(positions, n_in, units)``."""
        r = self.read_bits(*self.site_formats(False))
        return np.asarray(ops.convert_to_numpy(self._edge_read_bits(r, False)), dtype=np.int64)

    def read_fractional_bits(self) -> np.ndarray:
        """The integer fractional bits the tables read each input at: ``(positions, n_in)``."""
        return np.asarray(ops.convert_to_numpy(self.read_bits(*self.site_formats(False))), dtype=np.int64)

    def table_inputs(self, q):
        """Inference: ``(B, P, n_in)`` quantized inputs with their low bits dropped as the inputs' tables read them
        (with ``edge_widths`` an edge may drop more: :meth:`edge_read_fractional_bits`)."""
        r = self.read_bits(*self.site_formats(False))
        return ops.floor(q * ops.power(2.0, r)) * ops.power(2.0, -r)

    def _core(self, q, training):
        """``(B, *positions, n_in)`` quantized inputs → ``(B, *positions, units)`` sums of quantized edge outputs."""
        lead = tuple(q.shape[1:-1])
        if training:
            y = self._grid_sum(ops.reshape(q, (-1, self.n_in)))
        else:
            e = self.table_inputs(ops.reshape(q, (-1, math.prod(lead), self.n_in)))
            k, i, f = self.site_formats(False)
            y = ops.sum(self._tables(e, k, i, self.read_bits(k, i, f)), axis=1)
        return ops.reshape(y, (-1, *lead, self.units))

    def _grid_sum(self, x):
        """Training forward: every table evaluated once per step on the ``2**table_bits`` values its input can
        take, then read per sample by a gather (backward: a scatter-add); equal to the inference forward (with
        ``batch_norm``: when the moving statistics equal the batch's).

        An input's values run from its format's lowest value at the resolution the tables read (a convolution's:
        its channel's widest format over all positions). The gradient to ``x`` is the slope of the unquantized
        edge function between grid points (straight through the tables); the gradient to the tables reaches the
        edge functions, ``eoq`` and (``edge_widths``) each edge's ``ef``. Batch norm takes the batch's mean and
        variance of the table outputs it reads from a histogram of the grid positions read (no per-sample values).
        """
        n, g_n, u = self.n_in, 1 << self.table_bits, self.units
        _, i_g, f_g = formats = self.column_formats(True)
        k, i, f = (ops.stop_gradient(a) for a in formats)
        r = self.read_bits(k, i, f)  # k + i + r <= table_bits: 2**table_bits values hold every input value
        lo, step = -k * ops.power(2.0, i), ops.power(2.0, -r)  # (n,)
        v = lo + ops.arange(g_n, dtype=x.dtype)[:, None] * step  # (grid, n): every value, and some beyond
        pos = ops.clip(ops.floor((ops.stop_gradient(x) - lo) * ops.power(2.0, r)), 0.0, g_n - 1.0)
        raw = self._edge_values(self._edge_inputs(v, k, i, r, True))  # (grid, n, u)
        fine = raw if not self.edge_widths else self._edge_values(v)  # the slope: unquantized, every grid step
        if self.batch_norm:  # the batch's statistics of the values it reads: a histogram of grid positions
            rows = ops.reshape(ops.cast(pos, "int32") + ops.arange(n, dtype="int32") * g_n, (-1,))
            count = ops.segment_sum(ops.ones_like(rows, dtype=x.dtype), rows, num_segments=n * g_n)
            w = ops.transpose(ops.reshape(count, (n, g_n)))[..., None] / ops.cast(ops.shape(rows)[0], x.dtype)
            mean = ops.sum(w * raw, axis=(0, 1))
            var = ops.sum(w * ops.square(raw - mean), axis=(0, 1))
            m = self.bn_momentum
            self.moving_mean.assign(self.moving_mean * m + ops.stop_gradient(mean) * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + ops.stop_gradient(var) * (1.0 - m))
            raw, fine = self._normalized(raw, mean, var), self._normalized(fine, mean, var)
        tab = self.eoq(raw, training=True)
        if self.cap_gradient and not self.iq.wrap:  # a SAT input's i pays for the fractional bits it costs
            r_g = ops.minimum(f_g, self.table_bits - k - i_g)[None]  # = r, with a gradient to i where the cap binds
            zero = ops.zeros_like(r_g)
            x = _ste_quantizer(None, "TRN")(x, r_g, zero, zero, ops.ones_like(r_g))
        slope = (fine[1:] - fine[:-1]) / step[:, None]
        slope = ops.stop_gradient(ops.concatenate([slope, slope[-1:]], axis=0))

        def flat(t):  # (grid, n, u) → (n·grid, u): row i·grid + g is input i's value g
            return ops.reshape(ops.transpose(t, (1, 0, 2)), (n * g_n, u))

        return _table_read(g_n)(x, pos, flat(tab), flat(slope))

    def column_formats(self, training: bool):
        """``(k, i, f)`` of each core input (``(n_in,)`` each): the widest over positions of its quantizer."""
        k, i, f, _ = self.iq._widths(training)
        return tuple(ops.max(ops.reshape(ops.broadcast_to(a[0], self._in_shape[1:]), (-1, self.n_in)), axis=0)
                     for a in (k, i, f))  # fmt: skip

    def edge_tables(self, values: np.ndarray, position: int = 0) -> np.ndarray:
        """Quantized edge outputs ``T_io(v_i)`` (float64, ``(N, n_in, units)``) for table inputs ``values``
        ``(N, n_in)`` at ``position`` (a convolution's output position; 0 for a dense layer): values the inputs'
        tables read (the lowering enumerates them; with ``edge_widths`` each edge drops its further low bits
        itself); bit for bit what the inference forward adds up."""
        v = ops.convert_to_tensor(np.asarray(values, dtype=np.float32))
        k, i, f = (a[position] for a in self.site_formats(False))
        t = self._tables(v[:, None], k, i, self.read_bits(k, i, f))
        return np.asarray(ops.convert_to_numpy(t), dtype=np.float64)

    # -- resource ------------------------------------------------------------------------------------------
    def ebops_op(self, bx, training):
        """LUT6s of the tables plus their adder bits, summed over positions (``bx`` is unused)."""
        b_in = self.edge_input_widths(training) if self.edge_widths else self.input_widths(training)[:, :, None]
        k, _, _, bits = self.eoq._widths(training)
        b_out = bits + ops.stop_gradient(k)  # (1, n_in, units)
        live = ops.cast(ops.stop_gradient(b_in) > 0, b_out.dtype)
        return ops.sum(table_luts(b_in, b_out, self.table_cost) + b_out * live)

    def compute_ebops(self, training: bool):
        return self.ebops_op(None, training)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(units=self.units, hidden=self.hidden, table_bits=self.table_bits,
                   eoq_conf=quantizer_config(self.eoq), seed=self.seed, edge_widths=self.edge_widths,
                   batch_norm=self.batch_norm, bn_momentum=self.bn_momentum,
                   cap_gradient=self.cap_gradient, table_cost=self.table_cost)  # fmt: skip
        return cfg


@functools.cache
def _table_read(g_n: int):
    """``y[m] = Σ_i tab[i·g_n + pos[m, i]]`` as one op: a gather forward; backward, the tables' gradient as one
    scatter-add of the upstream rows into the rows each sample read (about 6x faster on XLA's CPU backend than
    the equivalent one-hot matrix product) and ``x``'s as the gathered slopes."""

    @ops.custom_gradient
    def read(x, pos, tab, slope):
        n = pos.shape[-1]
        rows = ops.cast(pos, "int32") + ops.arange(n, dtype="int32") * g_n  # (M, n)
        y = ops.sum(ops.take(tab, rows, axis=0), axis=1)

        def grad(*args, upstream=None):
            g = args[0] if upstream is None else upstream  # (M, u)
            spread = ops.reshape(ops.broadcast_to(g[:, None, :], (*rows.shape, g.shape[-1])), (-1, g.shape[-1]))
            g_tab = ops.segment_sum(spread, ops.reshape(rows, (-1,)), num_segments=n * g_n)
            g_x = ops.sum(ops.take(slope, rows, axis=0) * g[:, None, :], axis=-1)
            return g_x, ops.zeros_like(pos), g_tab, ops.zeros_like(slope)

        return y, grad

    return read


def _const(a: np.ndarray):
    return keras.initializers.Constant(np.asarray(a, dtype=np.float32))


@keras.saving.register_keras_serializable(package="hgq")
class QLUTDense(_QLUTBase):
    """LUT-dense layer: ``y[..., o] = Σ_i eoq_io(g_io(iq(x)[..., i]))`` (module docstring), optionally ``oq(y)``.

    Resource term (recorded as EBOPs): the tables' LUT6s plus their adder bits, per position for N-D inputs.

    Args:
        units: output size.
        hidden: shared tanh features per input in the edge functions (training only: hardware is the tables).
        table_bits: most address bits of a table (1-10); wider inputs are read by their top bits.
        eoq_conf: the per-edge output quantizers (defaults kif k0=1 i0=1 f0=4 RND SAT; must saturate).
        seed: initializer seed of the edge functions.
        edge_widths: every edge learns the fractional bits it reads (at most its input's; the drop is wiring).
        batch_norm: per-output batch norm of the table outputs over the batch and the inputs, / sqrt(n_in),
            before ``eoq`` (folded into the tables); ``bn_momentum`` for its moving statistics.
        cap_gradient: where the cap binds, a SAT input's ``i`` gets the read bits' surrogate gradient (widening the
            range costs a fractional bit the loss then sees); WRAP inputs (range set by calibration) are unchanged.
        table_cost: how the resource term counts a table's LUTs (:func:`table_luts`): ``"lut"`` (one LUT per
            output bit up to 6 address bits, as yosys counts; measured 0.71-1.04x the yosys LUTs of ``"lut6"`` along
            the jet front) or ``"lut6"`` (two narrow output bits per LUT6, HGQ2's count).
        **kwargs: :class:`~hgq.layers.base.QLayer` arguments (iq_conf — defaults kif k0=1 i0=3 f0=3 TRN WRAP,
            calibrate with ``trace_minmax`` —, oq_conf, enable_oq, beta0, ...).
    """

    def build_op(self, input_shape):
        self._build_edges(int(input_shape[-1]))

    def op(self, qx, training):
        return self._core(qx, training)


class _QLUTConv(_QLUTBase):
    """LUT convolution: the LUT-dense core on every patch (``kernel_size × channels`` inputs → ``filters``)."""

    rank = 0

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid", **kwargs):
        geometry = conv_geometry(self.rank, kernel_size, strides, padding, kwargs.pop("data_format", "channels_last"))
        super().__init__(filters, **kwargs)
        self.filters = int(filters)
        self.kernel_size, self.strides, self.padding = geometry

    def build_op(self, input_shape):
        if any(n is None for n in input_shape[1:]):
            raise ValueError(f"layer {self.name!r}: spatial sizes must be known, got {tuple(input_shape)}")
        self._build_edges(math.prod(self.kernel_size) * int(input_shape[-1]))
        self._windows = self.windows(tuple(int(n) for n in input_shape[1:-1]))

    def windows(self, sp: tuple[int, ...]) -> np.ndarray:
        """Flat source index (or -1 for padding) of each patch element: ``(positions, prod(kernel_size))``."""
        outs = conv_output_shape((None, *sp, 1), self.kernel_size, self.strides, self.padding, 1)[1:-1]
        pads = [max((o - 1) * s + k - n, 0) // 2 if self.padding == "same" else 0
                for n, k, s, o in zip(sp, self.kernel_size, self.strides, outs, strict=True)]  # fmt: skip
        rows = []
        for pos in np.ndindex(*outs):
            row = []
            for off in np.ndindex(*self.kernel_size):
                src = [p * s + o - pd for p, s, o, pd in zip(pos, self.strides, off, pads, strict=True)]
                inside = all(0 <= v < n for v, n in zip(src, sp, strict=True))
                row.append(int(np.ravel_multi_index(src, sp)) if inside else -1)
            rows.append(row)
        return np.asarray(rows, dtype=np.int64)

    def patches(self, qx):
        """``(B, *sp, C)`` → ``(B, positions, prod(kernel_size)·C)`` (zeros where the window pads)."""
        c = int(qx.shape[-1])
        flat = ops.reshape(qx, (-1, math.prod(qx.shape[1:-1]), c))
        padded = ops.concatenate([flat, ops.zeros_like(flat[:, :1])], axis=1)  # index -1 reads the zero row
        idx = np.where(self._windows < 0, flat.shape[1], self._windows)
        g = ops.take(padded, ops.convert_to_tensor(idx.reshape(-1)), axis=1)
        return ops.reshape(g, (-1, idx.shape[0], idx.shape[1] * c))

    def op(self, qx, training):
        y = self._core(self.patches(qx), training)
        return ops.reshape(y, (-1, *self.compute_output_shape(self._in_shape)[1:]))

    def column_formats(self, training: bool):
        k, i, f, _ = self.iq._widths(training)
        c, taps = int(self._in_shape[-1]), math.prod(self.kernel_size)
        per_ch = (ops.max(ops.reshape(ops.broadcast_to(a[0], self._in_shape[1:]), (-1, c)), axis=0) for a in (k, i, f))
        return tuple(ops.tile(a, (taps,)) for a in per_ch)

    def site_formats(self, training: bool):
        """``(k, i, f)`` of each patch element's source site, ``(positions, n_in)``; padding reads a 0-bit site."""
        c = int(self._in_shape[-1])
        out = []
        for a, pad in zip(self.iq._widths(training)[:3], (0.0, 0.0, -64.0), strict=True):
            a = ops.reshape(ops.broadcast_to(a[0], self._in_shape[1:]), (-1, c))  # (sites, C)
            a = ops.concatenate([a, ops.full((1, c), pad)], axis=0)
            idx = np.where(self._windows < 0, a.shape[0] - 1, self._windows)
            out.append(ops.reshape(ops.take(a, ops.convert_to_tensor(idx.reshape(-1)), axis=0), (idx.shape[0], -1)))
        return tuple(out)

    def compute_output_shape(self, input_shape):
        return conv_output_shape(input_shape, self.kernel_size, self.strides, self.padding, self.filters)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.pop("units")
        cfg.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides, padding=self.padding)
        return cfg


@keras.saving.register_keras_serializable(package="hgq")
class QLUTConv1D(_QLUTConv):
    """LUT 1-D convolution (channels_last): :class:`QLUTDense` on every window of ``kernel_size × channels``.

    Args:
        filters, kernel_size, strides, padding: as ``keras.layers.Conv1D`` (no dilation/groups).
        **kwargs: :class:`QLUTDense` arguments (hidden, eoq_conf, seed, iq_conf, ...).
    """

    rank = 1


@keras.saving.register_keras_serializable(package="hgq")
class QLUTConv2D(_QLUTConv):
    """LUT 2-D convolution (channels_last): :class:`QLUTDense` on every ``kh × kw × channels`` window.

    Args:
        filters, kernel_size, strides, padding: as ``keras.layers.Conv2D`` (no dilation/groups).
        **kwargs: :class:`QLUTDense` arguments (hidden, eoq_conf, seed, iq_conf, ...).
    """

    rank = 2
