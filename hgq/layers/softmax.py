"""Table-based, bit-exact softmax over the last axis (as in hls4ml/HGQ2: max → exp table → sum → inverse table → ×)."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from hgq.layers.base import QLayer
from hgq.quantizer import make_quantizer, quantizer_config

__all__ = ["QSoftmax", "exp_f32"]

# tables: unsigned, saturating, round half to even; per tensor, trainable widths
TABLE_OQ = dict(
    q_type="kbi", k0=0, b0=8, i0=1, round_mode="RND_CONV", overflow_mode="SAT", granularity="tensor", place="activation"
)
S_MIN = 2.0**-24  # 1/s is evaluated at max(s, S_MIN): s == 0 only when every exp output is pruned (then y == 0)

# exp_f32 constants (float32): Cody-Waite split of ln 2 into two 16-bit parts, so k * part is exact for |k| < 2**7
_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(45426 / 65536)
_LN2_LO = np.float32(round((math.log(2.0) - 45426 / 65536) * 2.0**35) * 2.0**-35)
_TAYLOR = [np.float32(1.0 / math.factorial(j)) for j in range(10)]


def exp_f32(d, xp=ops):
    """``exp(min(max(d, -64), 0))`` in float32, the same bits under any fusion, vector width or FMA contraction.

    XLA's own float32 ``exp`` is not: its result depends on the tensor shape and on the fusion around it (one
    ulp here and there, seen on CPU), and jit contracts ``a * b + c`` into a fused multiply-add. Here every
    product that feeds a sum is exact or passes a ``floor`` first, so eager ops, ``jit`` and numpy agree.
    Range reduction ``d = k ln2 + r`` (``k = floor(d log2 e)``, ``0 <= r < ln2`` up to rounding), a degree-9
    Taylor polynomial in ``r`` on a ``2**-24`` grid, then the exact scaling by ``2**k`` from the bits of ``-k``.
    Relative error below ``2**-22`` on ``[-64, 0]``; below ``-64`` (where ``exp < 2**-92``) the value is
    ``exp(-64)``.

    Args:
        d: float32 tensor (or numpy array with ``xp=numpy``).
        xp: the namespace providing ``floor``, ``maximum``, ``minimum``, ``where``, ``full_like``.
    """
    d = xp.minimum(xp.maximum(d, np.float32(-64.0)), np.float32(0.0))
    k = xp.floor(d * _LOG2E)  # -93 <= k <= 0
    r = (d - k * _LN2_HI) - k * _LN2_LO  # products exact (7 x 16 bits)
    p = xp.full_like(d, _TAYLOR[9])
    for c in _TAYLOR[8::-1]:
        p = xp.floor(p * r * np.float32(2.0**24)) * np.float32(2.0**-24) + c
    nk = -k
    for j in range(7):  # p * 2**k, one exact power-of-two factor per bit of -k
        bit = xp.floor(nk * np.float32(2.0**-j)) - np.float32(2.0) * xp.floor(nk * np.float32(2.0 ** -(j + 1)))
        p = p * xp.where(bit > 0, np.float32(2.0 ** -(2**j)), np.float32(1.0))
    return p


@keras.saving.register_keras_serializable(package="hgq")
class QSoftmax(QLayer):
    """Softmax from two lookup tables: ``y_j = oq(e_j · inv_oq(1 / Σ_k e_k))``, ``e_j = exp_oq(exp(q_j − max_k q_k))``.

    ``q = iq(x)``; the max, the difference, the sum and the product are exact on quantized values, so the
    layer is a table of ``d = q_j − max q`` (``≤ 0``) followed by a table of the sum ``s`` in hardware. The
    inference forward evaluates ``exp`` (as :func:`exp_f32`, fusion-proof) and ``1/s`` (IEEE) in float32 and
    quantizes them; :meth:`exp_table` and :meth:`inv_table` are those same computations, which
    ``hdl_gen.trace`` runs on every representable ``d`` and ``s`` to build its tables. Training uses the
    same values with the gradient of ``exp`` and STE quantizers.

    EBOPs (arXiv:2405.00645): ``Σ b_in + (Σ b_exp − Σ_rows min b_exp) + Σ b_exp·b_inv`` plus the table terms
    ``1e-4·(Σ 2**b_in·b_exp + Σ_rows 2**(max b_exp + log2 n)·b_inv)`` (placeholder, as the unary LUT).

    Args:
        axis: the softmax axis; only the last axis (-1) is supported.
        exp_oq_conf: exp table output quantizer config (default kbi, k=0, b0=8, i0=1, RND_CONV, SAT, per tensor).
        inv_oq_conf: inverse table output quantizer config (same defaults), one width per row.
        **kwargs: :class:`~hgq.layers.base.QLayer` arguments (iq_conf, oq_conf, enable_oq, beta0, ...).
    """

    def __init__(self, axis: int = -1, exp_oq_conf: dict | None = None, inv_oq_conf: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        if axis != -1:
            raise ValueError(f"QSoftmax axis {axis!r} is not supported; use axis=-1 (transpose/reshape first)")
        if self.iq is None:
            raise ValueError("QSoftmax needs its input quantizer (it bounds the tables); drop enable_iq=False")
        self.axis = -1
        self.exp_oq = make_quantizer({**TABLE_OQ, **(exp_oq_conf or {})}, "activation", "exp_oq")
        self.inv_oq = make_quantizer({**TABLE_OQ, **(inv_oq_conf or {})}, "activation", "inv_oq")

    def build_op(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) < 2 or shape[-1] is None:
            raise ValueError(f"QSoftmax {self.name!r} needs a known last axis, got input shape {shape}")
        self.exp_oq.build(shape)
        self.inv_oq.build((*shape[:-1], 1))

    # -- the two tables, exactly as the forward evaluates them -----------------------------------------------
    def exp_q(self, d, training=None):
        """Quantized ``exp(d)``: ``exp_oq(exp_f32(d))`` (``d <= 0`` batched like the input; STE on ``exp``)."""
        e = exp_f32(d)
        if training:
            ex = ops.exp(d)
            e = ex + ops.stop_gradient(e - ex)
        return self.exp_oq(e, training=training)

    def inv_q(self, s, training=None):
        """Quantized ``1/s``: ``inv_oq(1 / max(s, 2**-24))`` (``s`` batched like the input, last axis 1)."""
        return self.inv_oq(ops.divide(1.0, ops.maximum(s, S_MIN)), training=training)

    def exp_table(self, d: np.ndarray) -> np.ndarray:
        """float64 ``exp_q`` (inference) of a batch ``d`` of shape ``(N, *input_shape)``, as the forward computes it."""
        return _np(self.exp_q(ops.convert_to_tensor(np.asarray(d, dtype=np.float32)), training=False))

    def inv_table(self, s: np.ndarray) -> np.ndarray:
        """float64 ``inv_q`` (inference) of a batch ``s`` of shape ``(N, *input_shape[:-1], 1)``."""
        return _np(self.inv_q(ops.convert_to_tensor(np.asarray(s, dtype=np.float32)), training=False))

    # -- forward -----------------------------------------------------------------------------------------------
    def op(self, qx, training):
        m = ops.stop_gradient(ops.max(qx, axis=-1, keepdims=True))  # softmax is shift-invariant
        e = self.exp_q(qx - m, training=training)
        s = ops.sum(e, axis=-1, keepdims=True)
        return e * self.inv_q(s, training=training)

    def ebops_op(self, bx, training):
        shape = self._in_shape[1:]
        be = ops.broadcast_to(self.exp_oq.bits(training), shape)
        bi = ops.broadcast_to(self.inv_oq.bits(training), (*shape[:-1], 1))
        n = float(shape[-1])
        bs = ops.max(be, axis=-1, keepdims=True) + float(np.log2(n))
        ebops = ops.sum(bx) + ops.sum(be) - ops.sum(ops.min(be, axis=-1)) + ops.sum(be * bi)
        return ebops + 1e-4 * (ops.sum(ops.power(2.0, bx) * be) + ops.sum(ops.power(2.0, bs) * bi))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(axis=self.axis, exp_oq_conf=quantizer_config(self.exp_oq), inv_oq_conf=quantizer_config(self.inv_oq))
        return cfg


def _np(t) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(t), dtype=np.float64)
