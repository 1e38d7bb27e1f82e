"""Regularizers on bit-width variables."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["MonoL1"]


@keras.saving.register_keras_serializable(package="hgq")
class MonoL1(keras.regularizers.Regularizer):
    """Monotone L1 on widths: ``λ·Σ w`` (no absolute value: widths are >= 0, and pressure always lowers them).

    Args:
        l1: the factor λ (HGQ2 default 1e-8).
    """

    def __init__(self, l1: float = 1e-8):
        self.l1 = float(l1)

    def __call__(self, x):
        return self.l1 * ops.sum(x)

    def get_config(self) -> dict:
        return {"l1": self.l1}
