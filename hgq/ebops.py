"""EBOPs (effective bit operations, HGQ, Sun et al., arXiv:2405.00645): per-layer values and model totals."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["csd_weight", "ebops_layers", "model_da_cost", "model_ebops", "set_beta", "trained_ebops"]

RESOURCES = ("ebops", "da")
"""Resource terms a Q-layer can add to the loss: ``"ebops"`` (multiplier bits ``Σ b_x·b_w``) or ``"da"`` (the
distributed-arithmetic cost ``Σ b_x·digits(w)``, see :func:`csd_weight` and docs/training.md)."""


def csd_weight(m):
    """Number of non-zero canonical-signed-digit digits of each integer-valued ``m`` (float tensor, ``|m| < 2**24``).

    With ``h = |m| >> 1``, the CSD (non-adjacent form) weight of ``|m|`` is ``popcount(h ^ (|m| + h))``; the pop
    count is summed bit by bit with ``keras.ops`` (no gradient: a count).
    """
    n = ops.cast(ops.abs(ops.stop_gradient(m)), "int32")
    h = ops.right_shift(n, 1)
    c = ops.bitwise_xor(h, n + h)
    total = ops.zeros_like(c)
    for _ in range(26):
        total = total + ops.bitwise_and(c, 1)
        c = ops.right_shift(c, 1)
    return ops.cast(total, "float32")


def ebops_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer of ``model`` (nested included) that carries EBOPs and a β."""
    return [lay for lay in model._flatten_layers(include_self=False) if hasattr(lay, "compute_ebops")]


def model_ebops(model: keras.Model) -> float:
    """Total EBOPs of the current integer widths (exact once WRAP activations are calibrated)."""
    return float(sum(lay.ebops for lay in ebops_layers(model)))


def model_da_cost(model: keras.Model) -> float:
    """Total distributed-arithmetic cost (``Σ b_x·CSD digits`` for kernels, EBOPs elsewhere) of the current widths."""
    return float(sum(float(ops.convert_to_numpy(lay.compute_resource(False, "da"))) for lay in ebops_layers(model)))


def trained_ebops(model: keras.Model) -> float:
    """Total EBOPs recorded by the last training step (the value β multiplies in the loss)."""
    return float(sum(float(ops.convert_to_numpy(lay._ebops.value)) for lay in ebops_layers(model)))


def set_beta(model: keras.Model, beta: float) -> None:
    """Set β of every EBOPs-carrying layer."""
    for lay in ebops_layers(model):
        lay._beta.assign(float(beta))
