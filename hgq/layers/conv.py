"""Quantized convolutions: QConv1D, QConv2D (channels_last)."""

from __future__ import annotations

import math

import keras
from keras import ops

from hgq.layers.core import _WeightedQLayer

__all__ = ["QConv1D", "QConv2D"]


def _tuple(v, n: int, name: str) -> tuple[int, ...]:
    t = (int(v),) * n if isinstance(v, int) else tuple(int(a) for a in v)
    if len(t) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {v!r}")
    return t


def conv_geometry(rank: int, kernel_size, strides, padding: str, data_format: str) -> tuple:
    """Validated ``(kernel_size, strides, padding)`` of a ``rank``-D channels_last convolution."""
    if data_format != "channels_last":
        raise ValueError("only data_format='channels_last' is supported; transpose the input first")
    pad = str(padding).lower()
    if pad not in ("valid", "same"):
        raise ValueError(f"padding {padding!r} is not valid; use 'valid' or 'same'")
    return _tuple(kernel_size, rank, "kernel_size"), _tuple(strides, rank, "strides"), pad


def conv_output_shape(input_shape, kernel_size, strides, padding: str, filters: int) -> tuple:
    """Keras' output shape of a convolution (spatial sizes ``None`` stay ``None``)."""
    sp = []
    for n, k, s in zip(input_shape[1:-1], kernel_size, strides, strict=True):
        if n is None:
            sp.append(None)
        elif padding == "same":
            sp.append(-(-n // s))
        else:
            sp.append((n - k) // s + 1)
    return (input_shape[0], *sp, filters)


class _QConv(_WeightedQLayer):
    rank = 0

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid", **kwargs):
        geometry = conv_geometry(self.rank, kernel_size, strides, padding, kwargs.pop("data_format", "channels_last"))
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size, self.strides, self.padding = geometry

    def build_op(self, input_shape):
        self._make_weights((*self.kernel_size, int(input_shape[-1]), self.filters), (self.filters,))

    def op(self, qx, training):
        y = ops.conv(qx, self.kq(self.kernel, training=training), strides=self.strides, padding=self.padding)
        if self.use_bias:
            y = y + self.bq(self.bias, training=training)
        return self._act(y)

    def ebops_op(self, bx, training, bw=None):
        bw = self.kq.bits(training) if bw is None else bw
        e = ops.sum(ops.conv(bx[None], bw, strides=self.strides, padding=self.padding))
        if self.use_bias:
            out = self.compute_output_shape(self._in_shape)
            e = e + ops.mean(self.bq.bits(training)) * math.prod(out[1:])
        return e

    def compute_output_shape(self, input_shape):
        return conv_output_shape(input_shape, self.kernel_size, self.strides, self.padding, self.filters)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides, padding=self.padding)
        return cfg


@keras.saving.register_keras_serializable(package="hgq")
class QConv1D(_QConv):
    """Quantized 1-D convolution: ``y = act(conv1d(iq(x), kq(kernel)) + bq(bias))`` (channels_last).

    EBOPs: ``Σ conv(b_x, b_w) + mean(b_bias)·positions·filters``.

    Args:
        filters, kernel_size, strides, padding: as ``keras.layers.Conv1D`` (no dilation/groups).
        **kwargs: weighted Q-layer arguments (activation, kq_conf, bq_conf, iq_conf, ...).
    """

    rank = 1


@keras.saving.register_keras_serializable(package="hgq")
class QConv2D(_QConv):
    """Quantized 2-D convolution: ``y = act(conv2d(iq(x), kq(kernel)) + bq(bias))`` (channels_last).

    EBOPs: ``Σ conv(b_x, b_w) + mean(b_bias)·positions·filters``.

    Args:
        filters, kernel_size, strides, padding: as ``keras.layers.Conv2D`` (no dilation/groups).
        **kwargs: weighted Q-layer arguments (activation, kq_conf, bq_conf, iq_conf, ...).
    """

    rank = 2
