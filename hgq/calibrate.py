"""Calibration before export: set WRAP activation integer bits and signs from data (HGQ: arXiv:2405.00645)."""

from __future__ import annotations

import keras
import numpy as np

from hgq.ebops import model_ebops
from hgq.quantizer import Quantizer

__all__ = ["trace_minmax"]


def trace_minmax(model: keras.Model, x, batch_size: int = 1024, verbose: bool = False) -> float:
    """Run ``x`` through ``model`` and set every WRAP activation quantizer's ``i`` and ``k`` per element.

    ``i = ceil(log2(max|q0| + 2**-f))`` (kif, ``q0`` = x rounded at ``f``) or
    ``ceil(log2(max|x| / (1 - 2**-b)))`` (kbi); ``k = any(q0 < 0)``. Quantizers are marked calibrated.

    Args:
        model: a built Keras model containing HGQ quantizers.
        x: inputs (array, or list of arrays for multi-input models).
        batch_size: samples per eager forward pass.
        verbose: print progress per batch.

    Returns:
        The exact total EBOPs of the calibrated model.
    """
    qs = [q for q in model._flatten_layers(include_self=False) if isinstance(q, Quantizer)]
    targets = [q for q in qs if q.wrap and q.is_activation]
    xs = x if isinstance(x, list | tuple) else [x]
    n = len(xs[0])
    if n == 0:
        raise ValueError("trace_minmax got no samples; pass the training (or a representative) data set")
    for q in targets:
        q._cal = "empty"
    try:
        for s in range(0, n, batch_size):
            batch = [np.asarray(a[s : s + batch_size], dtype=np.float32) for a in xs]
            model(batch if len(batch) > 1 else batch[0], training=False)
            if verbose:
                print(f"trace_minmax: {min(s + batch_size, n)}/{n}")
        missed = [q.path for q in targets if isinstance(q._cal, str)]
        if missed:
            raise RuntimeError(f"trace_minmax: quantizers {missed} saw no data; is every branch of the model used?")
        for q in targets:
            q._finish_calibration()
    finally:
        for q in targets:
            q._cal = None
    return model_ebops(model)
