"""One training step's loss and gradients of a Keras model, without changing it: shared by the two sides of the
gradient-parity benchmark (``bench_grad_parity.py`` here, ``bench_front_hgq2.py grad`` in HGQ2's venv)."""

from __future__ import annotations

import jax
import keras
import numpy as np


def loss_and_grads(model: keras.Model, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, list[np.ndarray]]:
    """Training-mode cross-entropy (from logits) plus the layers' added losses (β·resource), the logits, and the
    gradient on each of ``model.trainable_variables``, from a stateless call (no variable is updated)."""
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss(tv):
        out, _, losses = model.stateless_call(tv, ntv, x, training=True, return_losses=True)
        return ce(y, out) + sum(losses), out

    (value, out), grads = jax.value_and_grad(loss, has_aux=True)(tv)
    return float(value), np.asarray(out), [np.asarray(g) for g in grads]
