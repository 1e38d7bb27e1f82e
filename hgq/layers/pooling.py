"""Quantized pooling: max (any size) and average (power-of-two pools only, so the mean is exact)."""

from __future__ import annotations

import math

import keras
from keras import ops

from hgq.layers.base import QLayer
from hgq.layers.conv import _tuple

__all__ = [
    "QAveragePooling1D",
    "QAveragePooling2D",
    "QGlobalAveragePooling1D",
    "QGlobalMaxPooling1D",
    "QGlobalSumPooling1D",
    "QMaxPooling1D",
    "QMaxPooling2D",
]


class _QPool(QLayer):
    rank = 0
    kind = "max"

    def __init__(self, pool_size=2, strides=None, padding: str = "valid", **kwargs):
        if kwargs.pop("data_format", "channels_last") != "channels_last":
            raise ValueError("only data_format='channels_last' is supported")
        super().__init__(**kwargs)
        self.pool_size = _tuple(pool_size, self.rank, "pool_size")
        self.strides = _tuple(strides if strides is not None else pool_size, self.rank, "strides")
        self.padding = str(padding).lower()
        if self.kind == "average":
            n = math.prod(self.pool_size)
            if n & (n - 1):
                raise ValueError(f"average pool size {self.pool_size} has {n} elements; use a power of two")
            if self.padding != "valid":
                raise ValueError("average pooling supports padding='valid' only (border means are not exact)")

    def op(self, qx, training):
        fn = ops.max_pool if self.kind == "max" else ops.average_pool
        return fn(qx, self.pool_size, strides=self.strides, padding=self.padding)

    def ebops_op(self, bx, training):
        e = ops.sum(bx)
        return e * 0.65 if self.kind == "average" else e

    def compute_output_shape(self, input_shape):
        sp = []
        for n, k, s in zip(input_shape[1:-1], self.pool_size, self.strides, strict=True):
            sp.append(None if n is None else (-(-n // s) if self.padding == "same" else (n - k) // s + 1))
        return (input_shape[0], *sp, input_shape[-1])

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(pool_size=self.pool_size, strides=self.strides, padding=self.padding)
        return cfg


@keras.saving.register_keras_serializable(package="hgq")
class QMaxPooling1D(_QPool):
    """Max pooling of the quantized input ``maxpool(iq(x))``; EBOPs ``Σ b_x``. Args as ``keras.layers.MaxPooling1D``."""

    rank, kind = 1, "max"


@keras.saving.register_keras_serializable(package="hgq")
class QMaxPooling2D(_QPool):
    """Max pooling of the quantized input ``maxpool(iq(x))``; EBOPs ``Σ b_x``. Args as ``keras.layers.MaxPooling2D``."""

    rank, kind = 2, "max"


@keras.saving.register_keras_serializable(package="hgq")
class QAveragePooling1D(_QPool):
    """Exact mean pooling ``sum(iq(x)) / 2**n`` over power-of-two windows (padding 'valid'); EBOPs ``0.65·Σ b_x``."""

    rank, kind = 1, "average"


@keras.saving.register_keras_serializable(package="hgq")
class QAveragePooling2D(_QPool):
    """Exact mean pooling ``sum(iq(x)) / 2**n`` over power-of-two windows (padding 'valid'); EBOPs ``0.65·Σ b_x``."""

    rank, kind = 2, "average"


class _QGlobal(QLayer):
    kind = "max"

    def build_op(self, input_shape):
        n = input_shape[1]
        if self.kind == "average" and (n is None or n & (n - 1)):
            raise ValueError(f"global average pooling over {n} steps is not exact; use a power-of-two length")

    def op(self, qx, training):
        if self.kind == "max":
            return ops.max(qx, axis=1)
        return ops.sum(qx, axis=1) if self.kind == "sum" else ops.mean(qx, axis=1)

    def ebops_op(self, bx, training):
        e = ops.sum(bx)
        return e if self.kind == "max" else e * 0.65

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


@keras.saving.register_keras_serializable(package="hgq")
class QGlobalAveragePooling1D(_QGlobal):
    """Exact mean over the steps axis of ``iq(x)`` (power-of-two number of steps); EBOPs ``0.65·Σ b_x``."""

    kind = "average"


@keras.saving.register_keras_serializable(package="hgq")
class QGlobalMaxPooling1D(_QGlobal):
    """Max over the steps axis of ``iq(x)``; EBOPs ``Σ b_x``."""

    kind = "max"


@keras.saving.register_keras_serializable(package="hgq")
class QGlobalSumPooling1D(_QGlobal):
    """Exact sum over the steps (set) axis of ``iq(x)``: the Deep Sets / interaction-network aggregation; EBOPs
    ``0.65·Σ b_x``. Mask padded set members first (a :class:`~hgq.layers.QMultiply` by a 0/1 mask input)."""

    kind = "sum"
