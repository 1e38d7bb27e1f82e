"""Quantized recurrent layers: QSimpleRNN, QGRU, QLSTM over a fixed-length sequence ``(batch, steps, features)``.

Every weight, pre-activation, gate output and state has its own learned width (per element, shared over the
time steps, as the hardware's state register is). Each nonlinearity reads a *quantized* pre-activation, so in
hardware it is a table of every value that quantizer can take: ``a = aq(act(pq(z)))``. ``act`` is evaluated in
float32 by :func:`tanh_f32` / :func:`sigmoid_f32` (built on the fusion-proof :func:`~hgq.layers.softmax.exp_f32`),
so Keras, the tracer's tables and the circuit agree bit for bit; training uses the smooth function's gradient.

Cells (``x_t`` the quantized input step, ``h``/``c`` the quantized states, ``⊙`` exact products):

- SimpleRNN: ``h' = sq(tanh(pq(x_t W + h U + b)))``.
- GRU (reset after the recurrent product, Keras' default): ``z = aq_z(σ(pq_z(·)))``, ``r = aq_r(σ(pq_r(·)))``,
  ``n = aq_n(tanh(pq_n(x_t W_n + b_n + r ⊙ (h U_n + b_hn))))``, ``h' = sq(n + z ⊙ (h − n))``.
- LSTM: ``i, f, o = aq(σ(pq(·)))``, ``g = aq_g(tanh(pq_g(·)))``, ``c' = cq(f ⊙ c + i ⊙ g)``,
  ``h' = sq(o ⊙ aq_c(tanh(pq_c(c'))))``.

EBOPs count every time step: ``Σ_t (Σ b_x·b_W + Σ b_h·b_U + products)`` plus the table placeholder of
:class:`~hgq.layers.QUnaryFunctionLUT` per step.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from hgq.fixed import quantize
from hgq.layers.base import QLayer, check_kernel_nonzero
from hgq.layers.softmax import exp_f32
from hgq.quantizer import make_quantizer, quantizer_config

__all__ = ["QGRU", "QLSTM", "QSimpleRNN", "sigmoid_f32", "tanh_f32"]

PRE_CONF = dict(q_type="kif", k0=1, i0=3, f0=3, round_mode="RND", overflow_mode="SAT")
"""Pre-activation quantizers (the tables' inputs): saturating, so every table is bounded."""
GATE_CONF = dict(q_type="kif", k0=0, i0=1, f0=6, round_mode="RND", overflow_mode="SAT")
"""Sigmoid gate outputs, in [0, 1]."""
TANH_CONF = dict(q_type="kif", k0=1, i0=1, f0=6, round_mode="RND", overflow_mode="SAT")
"""tanh outputs and the hidden state, in [-1, 1]."""
CELL_CONF = dict(q_type="kif", k0=1, i0=2, f0=6, round_mode="RND", overflow_mode="SAT")
"""The LSTM cell state."""


def tanh_f32(x, xp=ops):
    """``tanh(x)`` in float32 as ``sign(x)·(1 − e)/(1 + e)``, ``e = exp_f32(−2|x|)``: the same bits under any fusion."""
    e = exp_f32(-2.0 * xp.abs(x), xp)
    t = (1.0 - e) / (1.0 + e)
    return xp.where(x < 0, -t, t)


def sigmoid_f32(x, xp=ops):
    """``σ(x)`` in float32 as ``1/(1 + e)`` (``x >= 0``) or ``e/(1 + e)``, ``e = exp_f32(−|x|)``: fusion-proof."""
    e = exp_f32(-xp.abs(x), xp)
    return xp.where(x < 0, e / (1.0 + e), 1.0 / (1.0 + e))


ACTS = {"tanh": (tanh_f32, ops.tanh), "sigmoid": (sigmoid_f32, ops.sigmoid)}


class _QRecurrent(QLayer):
    """Common machinery: weights ``W (features, G·units)``, ``U (units, G·units)``, ``b (G·units,)``; one
    pre-activation and one output quantizer per gate; the hidden-state quantizer ``sq``."""

    GATES: tuple[tuple[str, str], ...] = ()  # (gate name, activation)

    def __init__(
        self,
        units: int,
        return_sequences: bool = False,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        kq_conf: dict | None = None,
        rq_conf: dict | None = None,
        bq_conf: dict | None = None,
        pq_conf: dict | None = None,
        sq_conf: dict | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units, self.return_sequences = int(units), bool(return_sequences)
        if self.units < 1:
            raise ValueError(f"{type(self).__name__} needs units >= 1, got {units}")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.seed = seed
        self.kq = make_quantizer(kq_conf, "weight", "kq")
        self.rq = make_quantizer(rq_conf, "weight", "rq")
        self.bq = make_quantizer(bq_conf, "bias", "bq")
        self.pq = [make_quantizer({**PRE_CONF, **(pq_conf or {})}, "activation", f"pq_{g}") for g, _ in self.GATES]
        self.sq = make_quantizer({**TANH_CONF, **(sq_conf or {})}, "activation", "sq")
        if self.iq is None:
            raise ValueError(f"{type(self).__name__} needs its input quantizer; drop enable_iq=False")

    @property
    def n_gates(self) -> int:
        return len(self.GATES)

    def build_op(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError(f"{self.name!r}: needs input (batch, steps, features) with known sizes, got {input_shape}")
        self.steps, f = int(input_shape[1]), int(input_shape[2])
        gu = self.n_gates * self.units
        init = {} if self.seed is None else {"seed": self.seed}
        ki = type(self.kernel_initializer).from_config({**self.kernel_initializer.get_config(), **init})
        ri = type(self.recurrent_initializer).from_config({**self.recurrent_initializer.get_config(), **init})
        self.kernel = self.add_weight(name="kernel", shape=(f, gu), initializer=ki)
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(self.units, gu), initializer=ri)
        self.bias = self.add_weight(name="bias", shape=(gu,), initializer=self.bias_init())
        self.kq.build((f, gu))
        self.rq.build((self.units, gu))
        self.bq.build((gu,))
        for q in self.pq:
            q.build((None, self.units))
        self.sq.build((None, self.units))
        self.build_extra()
        check_kernel_nonzero(self, self.qkernel, np.asarray(ops.convert_to_numpy(self.kernel.value)))

    def bias_init(self):
        return "zeros"

    def build_extra(self):
        pass

    # -- exact constants -------------------------------------------------------------------------------------------
    @property
    def qkernel(self) -> np.ndarray:
        return self._np(self.kq, self.kernel)

    @property
    def qrecurrent(self) -> np.ndarray:
        return self._np(self.rq, self.recurrent_kernel)

    @property
    def qbias(self) -> np.ndarray:
        return self._np(self.bq, self.bias)

    # -- the nonlinearities ------------------------------------------------------------------------------------
    def act(self, name: str, v, training):
        """``act(v)``: exact float32 in the forward, the smooth function's gradient in training."""
        exact, smooth = ACTS[name]
        y = exact(v)
        if training:
            s = smooth(v)
            y = s + ops.stop_gradient(y - s)
        return y

    def gate(self, j: int, z, aq, training):
        """``aq(act(pq(z)))`` for gate ``j`` (``aq`` the gate's output quantizer)."""
        return aq(self.act(self.GATES[j][1], self.pq[j](z, training=training), training), training=training)

    def gate_table(self, j: int, v: np.ndarray) -> np.ndarray:
        """float64 ``aq(act(v))`` of gate ``j`` (inference) on a batch ``(N, units)`` of pre-activation values: the
        forward's float32 operations in numpy (the same bits, :func:`tanh_f32`), then the quantizer's exact
        inference rule (:func:`hgq.fixed.quantize`); the tracer's table of that gate."""
        aq = self.gate_quantizer(j)
        a = ACTS[self.GATES[j][1]][0](np.asarray(v, dtype=np.float32), np)
        k, i, f = (np.broadcast_to(t, a.shape[1:]) for t in aq.kif())
        return quantize(a.astype(np.float64), k, i, f, aq.round_mode, aq.overflow_mode)

    def gate_quantizer(self, j: int):
        raise NotImplementedError

    # -- forward ---------------------------------------------------------------------------------------------------
    def op(self, qx, training):
        W = self.kq(self.kernel, training=training)
        U = self.rq(self.recurrent_kernel, training=training)
        b = self.bq(self.bias, training=training)
        state = self.initial_state(qx)
        outs = []
        for t in range(self.steps):
            state = self.cell(qx[:, t], state, W, U, b, training)
            outs.append(state[0])
        return ops.stack(outs, axis=1) if self.return_sequences else outs[-1]

    def initial_state(self, qx):
        return (ops.zeros((ops.shape(qx)[0], self.units), dtype=qx.dtype),)

    def split(self, z):
        u = self.units
        return [z[:, j * u : (j + 1) * u] for j in range(self.n_gates)]

    # -- EBOPs -------------------------------------------------------------------------------------------------------
    def ebops_op(self, bx, training):
        bw, br, bb = self.kq.bits(training), self.rq.bits(training), self.bq.bits(training)
        bh = ops.broadcast_to(self.sq.bits(training), (self.units,))
        e = ops.sum(ops.matmul(bx, bw))  # every step's input product
        e = e + self.steps * (ops.sum(ops.matmul(bh[None], br)) + ops.sum(bb))
        for j, q in enumerate(self.pq):
            bp = ops.broadcast_to(q.bits(training), (self.units,))
            bo = ops.broadcast_to(self.gate_quantizer(j).bits(training), (self.units,))
            e = e + self.steps * 1e-4 * ops.sum(ops.power(2.0, bp) * bo)
        return e + self.steps * self.product_ebops(bh, training)

    def product_ebops(self, bh, training):
        return 0.0

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            return (input_shape[0], input_shape[1], self.units)
        return (input_shape[0], self.units)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            units=self.units,
            return_sequences=self.return_sequences,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            recurrent_initializer=keras.initializers.serialize(self.recurrent_initializer),
            kq_conf=quantizer_config(self.kq),
            rq_conf=quantizer_config(self.rq),
            bq_conf=quantizer_config(self.bq),
            pq_conf=quantizer_config(self.pq[0]),
            sq_conf=quantizer_config(self.sq),
            seed=self.seed,
        )
        return cfg


@keras.saving.register_keras_serializable(package="hgq")
class QSimpleRNN(_QRecurrent):
    """Quantized Elman RNN: ``h' = sq(tanh(pq(x_t W + h U + b)))``; the tanh table outputs the state directly.

    Args:
        units: state size.
        return_sequences: output every step's state ``(steps, units)`` instead of the last ``(units,)``.
        kernel_initializer, recurrent_initializer, seed: initializers of ``W`` and ``U`` (and their seed).
        kq_conf, rq_conf, bq_conf: quantizer configs of ``W``, ``U``, ``b``.
        pq_conf: pre-activation quantizer config (default kif k0=1 i0=3 f0=3 RND SAT).
        sq_conf: state quantizer config (default kif k0=1 i0=1 f0=6 RND SAT).
        **kwargs: :class:`~hgq.layers.base.QLayer` arguments (iq_conf, beta0, ...).
    """

    GATES = (("h", "tanh"),)

    def gate_quantizer(self, j: int):
        return self.sq

    def cell(self, x, state, W, U, b, training):
        z = ops.matmul(x, W) + ops.matmul(state[0], U) + b
        return (self.gate(0, z, self.sq, training),)


@keras.saving.register_keras_serializable(package="hgq")
class QGRU(_QRecurrent):
    """Quantized GRU (reset after the recurrent product): gates ``z, r`` (sigmoid tables), candidate ``n`` (tanh
    table), ``h' = sq(n + z ⊙ (h − n))``. ``b`` holds the input-side biases of ``z, r, n``; ``b_hn`` (a second
    quantized bias, ``bq``'s config) sits inside the reset product as in Keras.

    Args:
        aq_conf: gate output quantizer config for ``z`` and ``r`` (default kif k0=0 i0=1 f0=6 RND SAT); ``n`` uses
            the tanh default (k0=1) updated by the same dict.
        Other arguments as :class:`QSimpleRNN`.
    """

    GATES = (("z", "sigmoid"), ("r", "sigmoid"), ("n", "tanh"))

    def __init__(self, units: int, aq_conf: dict | None = None, **kwargs):
        super().__init__(units, **kwargs)
        self.aq_conf = aq_conf
        self.aq = [
            make_quantizer({**(GATE_CONF if a == "sigmoid" else TANH_CONF), **(aq_conf or {})}, "activation", f"aq_{g}")
            for g, a in self.GATES
        ]
        self.bhq = make_quantizer(kwargs.get("bq_conf"), "bias", "bhq")

    def build_extra(self):
        for q in self.aq:
            q.build((None, self.units))
        self.bias_hn = self.add_weight(name="bias_hn", shape=(self.units,), initializer="zeros")
        self.bhq.build((self.units,))

    @property
    def qbias_hn(self) -> np.ndarray:
        return self._np(self.bhq, self.bias_hn)

    def gate_quantizer(self, j: int):
        return self.aq[j]

    def cell(self, x, state, W, U, b, training):
        h = state[0]
        xz, xr, xn = self.split(ops.matmul(x, W) + b)
        hz, hr, hn = self.split(ops.matmul(h, U))
        z = self.gate(0, xz + hz, self.aq[0], training)
        r = self.gate(1, xr + hr, self.aq[1], training)
        n = self.gate(2, xn + r * (hn + self.bhq(self.bias_hn, training=training)), self.aq[2], training)
        return (self.sq(n + z * (h - n), training=training),)

    def product_ebops(self, bh, training):
        bz, br, bn = (ops.broadcast_to(q.bits(training), (self.units,)) for q in self.aq)
        return ops.sum(br * bh) + ops.sum(bz * ops.maximum(bh, bn))

    def get_config(self) -> dict:
        return {**super().get_config(), "aq_conf": self.aq_conf}


@keras.saving.register_keras_serializable(package="hgq")
class QLSTM(_QRecurrent):
    """Quantized LSTM: gates ``i, f, o`` (sigmoid tables), ``g`` (tanh table), ``c' = cq(f ⊙ c + i ⊙ g)``,
    ``h' = sq(o ⊙ aq_c(tanh(pq_c(c'))))``. The forget gate's bias starts at 1 (as Keras' ``unit_forget_bias``).

    Args:
        aq_conf: gate output quantizer config (sigmoid gates default kif k0=0 i0=1 f0=6 RND SAT; tanh outputs k0=1).
        cq_conf: cell-state quantizer config (default kif k0=1 i0=2 f0=6 RND SAT).
        Other arguments as :class:`QSimpleRNN`.
    """

    GATES = (("i", "sigmoid"), ("f", "sigmoid"), ("g", "tanh"), ("o", "sigmoid"), ("c", "tanh"))
    N_LINEAR = 4  # i, f, g, o come from the products; c's table reads the cell state

    def __init__(self, units: int, aq_conf: dict | None = None, cq_conf: dict | None = None, **kwargs):
        super().__init__(units, **kwargs)
        self.aq_conf, self.cq_conf = aq_conf, cq_conf
        self.aq = [
            make_quantizer({**(GATE_CONF if a == "sigmoid" else TANH_CONF), **(aq_conf or {})}, "activation", f"aq_{g}")
            for g, a in self.GATES
        ]
        self.cq = make_quantizer({**CELL_CONF, **(cq_conf or {})}, "activation", "cq")

    @property
    def n_gates(self) -> int:
        return self.N_LINEAR

    def bias_init(self):
        u = self.units

        def init(shape, dtype=None):
            return ops.convert_to_tensor(np.concatenate([np.zeros(u), np.ones(u), np.zeros(2 * u)]), dtype=dtype)

        return init

    def build_extra(self):
        for q in self.aq:
            q.build((None, self.units))
        self.cq.build((None, self.units))

    def gate_quantizer(self, j: int):
        return self.aq[j]

    def initial_state(self, qx):
        z = ops.zeros((ops.shape(qx)[0], self.units), dtype=qx.dtype)
        return (z, z)

    def cell(self, x, state, W, U, b, training):
        h, c = state
        zi, zf, zg, zo = self.split(ops.matmul(x, W) + ops.matmul(h, U) + b)
        i, f = self.gate(0, zi, self.aq[0], training), self.gate(1, zf, self.aq[1], training)
        g, o = self.gate(2, zg, self.aq[2], training), self.gate(3, zo, self.aq[3], training)
        c = self.cq(f * c + i * g, training=training)
        return (self.sq(o * self.gate(4, c, self.aq[4], training), training=training), c)

    def product_ebops(self, bh, training):
        bi, bf, bg, bo, bc = (ops.broadcast_to(q.bits(training), (self.units,)) for q in self.aq)
        bcs = ops.broadcast_to(self.cq.bits(training), (self.units,))
        return ops.sum(bf * bcs) + ops.sum(bi * bg) + ops.sum(bo * bc)

    def get_config(self) -> dict:
        return {**super().get_config(), "aq_conf": self.aq_conf, "cq_conf": self.cq_conf}
