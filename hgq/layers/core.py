"""Quantized dense layers: QDense, QEinsumDense, QDenseBatchNorm."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from hgq.ebops import csd_weight
from hgq.layers.base import QLayer, check_kernel_nonzero
from hgq.quantizer import make_quantizer, quantizer_config

__all__ = ["QDense", "QDenseBatchNorm", "QEinsumDense"]

_ACTS = ("linear", "relu")


def _act_name(activation) -> str:
    a = "linear" if activation is None else str(activation)
    if a not in _ACTS:
        raise ValueError(
            f"activation {activation!r} is not supported inline; use 'relu' or None and a QUnaryFunctionLUT "
            "layer for other functions"
        )
    return a


class _WeightedQLayer(QLayer):
    """Q-layer with a quantized kernel and optional quantized bias."""

    def __init__(
        self,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kq_conf: dict | None = None,
        bq_conf: dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.activation_name = _act_name(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kq = make_quantizer(kq_conf, "weight", "kq")
        self.bq = make_quantizer(bq_conf, "bias", "bq") if self.use_bias else None

    def _make_weights(self, kshape, bshape):
        self.kernel = self.add_weight(name="kernel", shape=kshape, initializer=self.kernel_initializer)
        self.kq.build(kshape)
        self.kq._source = lambda: self.eff_kernel(False)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=bshape, initializer=self.bias_initializer)
            self.bq.build(bshape)
            self.bq._source = lambda: self.eff_bias(False)
        kernel = np.asarray(ops.convert_to_numpy(self.kernel.value))
        check_kernel_nonzero(self, self._np_once(self.kq, self.kernel), kernel)

    def _act(self, y):
        return ops.relu(y) if self.activation_name == "relu" else y

    def eff_kernel(self, training):
        return self.kernel

    def eff_bias(self, training):
        return self.bias

    def kernel_digit_bits(self, training: bool):
        """Kernel widths scaled so that their sum is the kernel's CSD digit count (``b_w · sg(digits / b_w)``).

        In distributed arithmetic a weight costs one adder per non-zero signed digit, not per bit; the gradient
        still reaches ``b_w`` (scaled by digits per bit). A live weight that rounds to 0 is charged one digit, so
        the resource term still prunes it.
        """
        bw = self.kq.bits(training)
        src = ops.stop_gradient(self.eff_kernel(False))
        _, _, f, _ = self.kq._widths(False, src if self.kq.wrap else None)
        m = ops.round(ops.abs(self.kq(src, training=False)) * ops.power(2.0, f))
        live = ops.cast(ops.stop_gradient(bw) > 0, bw.dtype)
        d = ops.maximum(csd_weight(m), live)
        return bw * ops.stop_gradient(d / ops.maximum(ops.round(ops.stop_gradient(bw)), 1.0))

    def compute_da_cost(self, training: bool):
        """DA cost: this layer's EBOPs with each kernel width replaced by its CSD digit count."""
        bx = self.input_bits(training, self._in_shape[1:])
        return self.ebops_op(bx, training, bw=self.kernel_digit_bits(training))

    @property
    def qkernel(self) -> np.ndarray:
        """Exact quantized kernel (float64)."""
        return self._np(self.kq, self.eff_kernel(False))

    @property
    def qbias(self) -> np.ndarray | None:
        """Exact quantized bias (float64), None without bias."""
        return self._np(self.bq, self.eff_bias(False)) if self.use_bias else None

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            activation=self.activation_name,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            kq_conf=quantizer_config(self.kq),
            bq_conf=quantizer_config(self.bq),
        )
        return cfg


@keras.saving.register_keras_serializable(package="hgq")
class QDense(_WeightedQLayer):
    """Quantized dense layer: ``y = act(iq(x) @ kq(kernel) + bq(bias))``, optionally ``oq(y)``.

    EBOPs (per sample): ``Σ_{i,o} b_x[i]·b_w[i,o] + mean(b_bias)·N_out`` (times positions for N-D inputs).
    The Keras float32 forward is exact while each output's sum fits 24 significant bits.

    Args:
        units: output size.
        activation: None/"linear" or "relu" (inline).
        use_bias: add a quantized bias.
        kernel_initializer, bias_initializer: Keras initializers.
        kq_conf, bq_conf: kernel/bias quantizer configs (defaults: kbi b0=8 i0=2 RND; SAT_SYM / WRAP).
        **kwargs: :class:`~hgq.layers.base.QLayer` arguments (iq_conf, oq_conf, enable_oq, beta0, ...).
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build_op(self, input_shape):
        self._make_weights((int(input_shape[-1]), self.units), (self.units,))

    def op(self, qx, training):
        y = ops.matmul(qx, self.kq(self.kernel, training=training))
        if self.use_bias:
            y = y + self.bq(self.bias, training=training)
        return self._act(y)

    def ebops_op(self, bx, training, bw=None):
        bw = self.kq.bits(training) if bw is None else bw
        e = ops.sum(ops.matmul(bx, bw))
        if self.use_bias:
            npos = math.prod(self._in_shape[1:-1])
            e = e + ops.mean(self.bq.bits(training)) * self.units * npos
        return e

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="hgq")
class QDenseBatchNorm(QDense):
    """QDense with a folded batch normalization: ``kernel·γ/σ``, ``(bias − μ)·γ/σ + β`` are what is quantized.

    Training uses batch statistics (and updates the moving ones); inference folds the moving statistics.
    ``qkernel``/``qbias`` are the folded, quantized constants.

    Args:
        units: output size.
        momentum, epsilon: batch-norm moving-average momentum and variance epsilon.
        **kwargs: :class:`QDense` arguments.
    """

    def __init__(self, units: int, momentum: float = 0.99, epsilon: float = 1e-3, **kwargs):
        kwargs.setdefault("use_bias", True)
        if not kwargs["use_bias"]:
            raise ValueError("QDenseBatchNorm always has a (folded) bias; drop use_bias=False")
        super().__init__(units, **kwargs)
        self.momentum, self.epsilon = float(momentum), float(epsilon)

    def build_op(self, input_shape):
        u = (self.units,)
        self.gamma = self.add_weight(name="gamma", shape=u, initializer="ones")
        self.beta_bn = self.add_weight(name="beta_bn", shape=u, initializer="zeros")
        self.moving_mean = self.add_weight(name="moving_mean", shape=u, initializer="zeros", trainable=False)
        self.moving_var = self.add_weight(name="moving_variance", shape=u, initializer="ones", trainable=False)
        super().build_op(input_shape)

    def _scale_shift(self, training, qx=None):
        mean, var = self.moving_mean, self.moving_var
        if training and qx is not None:
            z = ops.matmul(qx, self.kernel) + self.bias
            axes = tuple(range(len(z.shape) - 1))
            mean, var = ops.mean(z, axis=axes), ops.var(z, axis=axes)
            m = self.momentum
            self.moving_mean.assign(m * self.moving_mean + (1 - m) * ops.stop_gradient(mean))
            self.moving_var.assign(m * self.moving_var + (1 - m) * ops.stop_gradient(var))
        scale = self.gamma / ops.sqrt(var + self.epsilon)
        return scale, self.beta_bn - mean * scale

    def eff_kernel(self, training, qx=None):
        return self.kernel * self._scale_shift(training, qx)[0]

    def eff_bias(self, training, qx=None):
        s, t = self._scale_shift(training, qx)
        return self.bias * s + t

    def op(self, qx, training):
        s, t = self._scale_shift(training, qx)
        y = ops.matmul(qx, self.kq(self.kernel * s, training=training))
        y = y + self.bq(self.bias * s + t, training=training)
        return self._act(y)

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="hgq")
class QEinsumDense(_WeightedQLayer):
    """Quantized einsum-dense: ``y = act(einsum(equation, iq(x), kq(kernel)) + bq(bias))``.

    EBOPs: ``einsum(b_x, b_w → scalar) + mean(b_bias)·prod(output_shape)``.

    Args:
        equation: einsum equation as for ``keras.layers.EinsumDense`` (e.g. ``"ab,bc->ac"``).
        output_shape: output shape without the batch axis (``None`` entries are taken from the input).
        bias_axes: output axis letters that carry a bias, or None.
        **kwargs: weighted Q-layer arguments (activation, kq_conf, bq_conf, iq_conf, ...).
    """

    def __init__(self, equation: str, output_shape, bias_axes: str | None = None, **kwargs):
        kwargs["use_bias"] = bias_axes is not None
        super().__init__(**kwargs)
        self.equation = str(equation)
        self.partial_output_shape = (output_shape,) if isinstance(output_shape, int) else tuple(output_shape)
        self.bias_axes = bias_axes

    def build_op(self, input_shape):
        from keras.src.layers.core.einsum_dense import _analyze_einsum_string

        kshape, bshape, oshape, _, _ = _analyze_einsum_string(
            self.equation, self.bias_axes, input_shape, self.partial_output_shape
        )
        self.full_output_shape = tuple(oshape)
        self._make_weights(tuple(kshape), tuple(bshape) if bshape is not None else None)

    def op(self, qx, training):
        y = ops.einsum(self.equation, qx, self.kq(self.kernel, training=training))
        if self.use_bias:
            y = y + self.bq(self.bias, training=training)
        return self._act(y)

    def ebops_op(self, bx, training, bw=None):
        bw = self.kq.bits(training) if bw is None else bw
        e = ops.sum(ops.einsum(self.equation, bx[None], bw))
        if self.use_bias:
            e = e + ops.mean(self.bq.bits(training)) * math.prod(self.full_output_shape[1:])
        return e

    def compute_output_shape(self, input_shape):
        from keras.src.layers.core.einsum_dense import _analyze_einsum_string

        return tuple(_analyze_einsum_string(self.equation, self.bias_axes, input_shape, self.partial_output_shape)[2])

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.pop("use_bias")
        cfg.update(equation=self.equation, output_shape=self.partial_output_shape, bias_axes=self.bias_axes)
        return cfg
