"""Quantized batch normalization (an affine map with quantized scale and offset)."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from hgq.layers.base import QLayer
from hgq.quantizer import make_quantizer, quantizer_config

__all__ = ["QBatchNormalization"]


@keras.saving.register_keras_serializable(package="hgq")
class QBatchNormalization(QLayer):
    """Quantized batch norm on the last axis: ``y = iq(x)·sq(γ/σ) + bq(β − μ·γ/σ)``.

    Training normalises with batch statistics (updating the moving ones); inference uses the moving ones.
    EBOPs: ``Σ b_x·b_scale + mean(b_offset)·size``.

    Args:
        momentum, epsilon: moving-average momentum, variance epsilon.
        sq_conf, bq_conf: scale (weight defaults, per channel) and offset (bias defaults) quantizer configs.
        **kwargs: :class:`~hgq.layers.base.QLayer` arguments.
    """

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, sq_conf=None, bq_conf=None, **kwargs):
        super().__init__(**kwargs)
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.sq = make_quantizer(sq_conf, "weight", "sq")
        self.bq = make_quantizer(bq_conf, "bias", "bq")

    def build_op(self, input_shape):
        c = (int(input_shape[-1]),)
        self.gamma = self.add_weight(name="gamma", shape=c, initializer="ones")
        self.beta_bn = self.add_weight(name="beta_bn", shape=c, initializer="zeros")
        self.moving_mean = self.add_weight(name="moving_mean", shape=c, initializer="zeros", trainable=False)
        self.moving_var = self.add_weight(name="moving_variance", shape=c, initializer="ones", trainable=False)
        self.sq.build(c)
        self.bq.build(c)
        self.sq._source = lambda: self._scale_offset(False)[0]
        self.bq._source = lambda: self._scale_offset(False)[1]

    def _scale_offset(self, training, qx=None):
        mean, var = self.moving_mean, self.moving_var
        if training and qx is not None:
            axes = tuple(range(len(qx.shape) - 1))
            mean, var = ops.mean(qx, axis=axes), ops.var(qx, axis=axes)
            m = self.momentum
            self.moving_mean.assign(m * self.moving_mean + (1 - m) * ops.stop_gradient(mean))
            self.moving_var.assign(m * self.moving_var + (1 - m) * ops.stop_gradient(var))
        scale = self.gamma / ops.sqrt(var + self.epsilon)
        return scale, self.beta_bn - mean * scale

    def op(self, qx, training):
        s, t = self._scale_offset(training, qx)
        return qx * self.sq(s, training=training) + self.bq(t, training=training)

    def ebops_op(self, bx, training):
        n = math.prod(self._in_shape[1:])
        return ops.sum(bx * self.sq.bits(training)) + ops.mean(self.bq.bits(training)) * n

    @property
    def qscale(self) -> np.ndarray:
        """Exact quantized scale (per channel, float64)."""
        return self._np(self.sq, self._scale_offset(False)[0])

    @property
    def qoffset(self) -> np.ndarray:
        """Exact quantized offset (per channel, float64)."""
        return self._np(self.bq, self._scale_offset(False)[1])

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            momentum=self.momentum,
            epsilon=self.epsilon,
            sq_conf=quantizer_config(self.sq),
            bq_conf=quantizer_config(self.bq),
        )
        return cfg
