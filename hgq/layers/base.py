"""Common machinery of Q-layers: input/output quantizers, per-layer β, EBOPs added to the loss."""

from __future__ import annotations

import warnings

import keras
import numpy as np
from keras import ops

from hgq.ebops import RESOURCES
from hgq.quantizer import Quantizer, make_quantizer, quantizer_config

__all__ = ["DerivedHidden", "QLayer", "check_kernel_nonzero"]


class DerivedHidden:
    """Mixin: the computed views of a layer (``ebops``, ``qkernel``, ...) are left out of ``dir()``.

    Keras's saver walks every name ``dir()`` lists and reads it, on every save and every load, so each view was
    computed eagerly there: each primitive compiled on first use, about 8 s of a process's first ``load_model`` of
    a jet tagger and a share of every checkpoint save. The views stay attributes; only ``dir()`` omits them.
    """

    _DERIVED = frozenset({"beta", "ebops", "qkernel", "qbias", "qrecurrent", "qbias_hn", "qscale", "qoffset"})

    def __dir__(self) -> list[str]:
        return [a for a in super().__dir__() if a not in self._DERIVED]


class QLayer(DerivedHidden, keras.layers.Layer):
    """Base of single-input Q-layers: ``y = oq(op(iq(x)))``; in training adds ``β · EBOPs`` to the loss.

    Args:
        iq_conf: input quantizer config (dict of :class:`~hgq.quantizer.Quantizer` arguments), activation defaults.
        oq_conf: output quantizer config; used when ``enable_oq`` is True.
        enable_iq: quantize the input (default True).
        enable_oq: quantize the output (default False).
        beta0: initial β (per layer, changed by the β callbacks).
        enable_ebops: add ``β · resource`` to the loss in training.
        resource: the resource term β multiplies: ``"ebops"`` (default) or ``"da"`` (kernels charged by their
            canonical-signed-digit count, the adders distributed arithmetic builds; :data:`hgq.ebops.RESOURCES`).
            EBOPs are recorded either way (``_ebops``, Pareto fronts).
    """

    def __init__(
        self,
        iq_conf: dict | None = None,
        oq_conf: dict | None = None,
        enable_iq: bool = True,
        enable_oq: bool = False,
        beta0: float = 1e-5,
        enable_ebops: bool = True,
        resource: str = "ebops",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if resource not in RESOURCES:
            raise ValueError(f"resource {resource!r} is not valid; use one of {', '.join(map(repr, RESOURCES))}")
        self.resource = resource
        self.enable_iq, self.enable_oq = bool(enable_iq), bool(enable_oq)
        self.beta0, self.enable_ebops = float(beta0), bool(enable_ebops)
        self.iq = make_quantizer(iq_conf, "activation", "iq") if self.enable_iq else None
        self.oq = make_quantizer(oq_conf, "activation", "oq") if self.enable_oq else None

    def _build_common(self):
        self._beta = self.add_weight(
            name="beta", shape=(), initializer=keras.initializers.Constant(self.beta0), trainable=False
        )
        self._ebops = self.add_weight(name="ebops", shape=(), initializer="zeros", trainable=False)

    def build(self, input_shape):
        self._in_shape = tuple(input_shape)
        self._build_common()
        if self.iq is not None:
            self.iq.build(input_shape)
        self.build_op(input_shape)
        if self.oq is not None:
            self.oq.build(self.compute_output_shape(input_shape))
        self.built = True

    # subclasses: build_op(input_shape), op(qx, training), ebops_op(bx, training) -> scalar tensor
    def build_op(self, input_shape):
        pass

    def input_bits(self, training: bool, per_sample_shape):
        """Per-sample input widths (an unquantized input counts as 0 bits: no EBOPs)."""
        if self.iq is None:
            return ops.zeros(per_sample_shape)
        return ops.broadcast_to(self.iq.bits(training), per_sample_shape)

    @property
    def beta(self) -> float:
        return float(ops.convert_to_numpy(self._beta.value))

    @property
    def ebops(self) -> float:
        """EBOPs of the current integer widths (exact after trace_minmax)."""
        return float(ops.convert_to_numpy(self.compute_ebops(False)))

    def compute_ebops(self, training: bool):
        return self.ebops_op(self.input_bits(training, self._in_shape[1:]), training)

    def compute_resource(self, training: bool, resource: str | None = None):
        """The resource term (``resource`` or the layer's own): EBOPs, or the DA cost where the layer defines one."""
        if (resource or self.resource) == "da" and hasattr(self, "compute_da_cost"):
            return self.compute_da_cost(training)
        return self.compute_ebops(training)

    def call(self, x, training=None):
        qx = self.iq(x, training=training) if self.iq is not None else x
        return finish_output(self, self.op(qx, training), training)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            iq_conf=quantizer_config(self.iq),
            oq_conf=quantizer_config(self.oq),
            enable_iq=self.enable_iq,
            enable_oq=self.enable_oq,
            beta0=self.beta0,
            enable_ebops=self.enable_ebops,
            resource=self.resource,
        )
        return cfg

    @staticmethod
    def _np(q: Quantizer | None, v) -> np.ndarray | None:
        """Exact quantized constant as float64 numpy (None if absent)."""
        if v is None:
            return None
        t = q(v, training=False) if q is not None else v
        return np.asarray(ops.convert_to_numpy(t), dtype=np.float64)

    @staticmethod
    def _np_once(q: Quantizer, v) -> np.ndarray:
        """:meth:`_np` for a one-off value: on JAX the quantizer runs as one compiled program (about 0.1 s)
        instead of op by op, where each primitive compiles on its first use in the process (about 0.8 s)."""
        if keras.backend.backend() != "jax":
            return QLayer._np(q, v)
        import jax  # noqa: PLC0415

        return np.asarray(jax.jit(lambda: q(v, training=False))(), dtype=np.float64)


def check_kernel_nonzero(layer: keras.layers.Layer, qkernel: np.ndarray, kernel: np.ndarray) -> None:
    """Warn (naming the layer and a workable ``f0``/``b0``) when most of a quantized kernel is zero."""
    nz = float(np.count_nonzero(qkernel)) / max(qkernel.size, 1)
    if nz < 0.5:
        sd = float(np.std(kernel)) or 1.0
        need = int(np.ceil(-np.log2(sd / 4)))
        warnings.warn(
            f"layer {layer.name!r}: only {nz:.0%} of the quantized kernel is non-zero at initialisation "
            f"(HGQ2 issue #11); raise the kernel quantizer's initial fractional bits to f >= {need} "
            f"(kbi: b0 - i0 >= {need}) or use a wider initializer",
            stacklevel=3,
        )


def finish_output(layer, y, training):
    """A Q-layer's common tail: its output quantizer, then (in training) record EBOPs and add ``β·resource`` to the
    loss. ``layer`` has ``oq``, ``enable_ebops``, ``compute_ebops``, ``_ebops`` and ``_beta`` (``resource`` and
    ``compute_resource`` where it offers other terms)."""
    if layer.oq is not None:
        y = layer.oq(y, training=training)
    if training and layer.enable_ebops:
        e = layer.compute_ebops(True)
        layer._ebops.assign(ops.stop_gradient(e))
        if getattr(layer, "resource", "ebops") != "ebops":
            e = layer.compute_resource(True)
        layer.add_loss(layer._beta * e)
    return y
