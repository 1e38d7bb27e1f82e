"""Any unary activation as a lookup table on its quantized input."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from hgq.fixed import quantize
from hgq.layers.base import QLayer
from hgq.quantizer import DEFAULTS

__all__ = ["QUnaryFunctionLUT"]

MAX_TABLE_BITS = 20


@keras.saving.register_keras_serializable(package="hgq")
class QUnaryFunctionLUT(QLayer):
    """Unary function as a table: ``y = oq(fn(iq(x)))``; every representable input maps to an exact output.

    The output quantizer is always on (defaults: kbi b0=8 i0=2 RND SAT_SYM per tensor); it defines the table.
    EBOPs (placeholder, as HGQ2): ``1e-4·Σ 2**b_in·b_out``.

    Args:
        activation: a Keras activation name (e.g. "tanh", "sigmoid", "gelu") or a registered callable.
        **kwargs: :class:`~hgq.layers.base.QLayer` arguments (iq_conf, oq_conf, beta0, ...).
    """

    def __init__(self, activation="tanh", **kwargs):
        kwargs["enable_oq"] = True
        table = {k: v for k, v in DEFAULTS["table"].items()}
        kwargs["oq_conf"] = {**table, **(kwargs.get("oq_conf") or {}), "place": "activation"}
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)
        self.activation_name = keras.activations.serialize(self.activation)
        if self.iq is None:
            raise ValueError("QUnaryFunctionLUT needs its input quantizer; drop enable_iq=False")

    def op(self, qx, training):
        return self.activation(qx)

    def ebops_op(self, bx, training):
        bo = ops.broadcast_to(self.oq.bits(training), self._in_shape[1:])
        return 1e-4 * ops.sum(ops.power(2.0, bx) * bo)

    def table(self, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` float64: every representable input of flat per-sample element ``index`` and its output."""
        k, i, f = (a.ravel()[index] for a in self.iq.kif())
        w = int(k + i + f)
        if w > MAX_TABLE_BITS:
            raise ValueError(
                f"layer {self.name!r}: input element {index} has {w} bits; a table needs <= {MAX_TABLE_BITS}"
            )
        if w <= 0:
            m = np.zeros(1)
        else:
            m = np.arange(-(1 << (w - 1)) if k else 0, (1 << (w - 1)) if k else (1 << w), dtype=np.float64)
        xv = np.ldexp(m, -int(f)) if w > 0 else m
        fx = np.asarray(ops.convert_to_numpy(self.activation(ops.convert_to_tensor(xv.astype(np.float32)))))
        ko, io, fo = (a.ravel()[index] for a in self.oq.kif())
        return xv, quantize(fx.astype(np.float64), ko, io, fo, self.oq.round_mode, self.oq.overflow_mode)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.pop("enable_oq")
        cfg["activation"] = self.activation_name
        return cfg
