"""EBOPs (effective bit operations, REFERENCE §2.7): per-layer values and model totals."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["ebops_layers", "model_ebops", "set_beta", "trained_ebops"]


def ebops_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer of ``model`` (nested included) that carries EBOPs and a β."""
    return [lay for lay in model._flatten_layers(include_self=False) if hasattr(lay, "compute_ebops")]


def model_ebops(model: keras.Model) -> float:
    """Total EBOPs of the current integer widths (exact once WRAP activations are calibrated)."""
    return float(sum(lay.ebops for lay in ebops_layers(model)))


def trained_ebops(model: keras.Model) -> float:
    """Total EBOPs recorded by the last training step (the value β multiplies in the loss)."""
    return float(sum(float(ops.convert_to_numpy(lay._ebops)) for lay in ebops_layers(model)))


def set_beta(model: keras.Model, beta: float) -> None:
    """Set β of every EBOPs-carrying layer."""
    for lay in ebops_layers(model):
        lay._beta.assign(float(beta))
