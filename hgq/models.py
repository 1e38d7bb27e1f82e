"""Ready-made HGQ models."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from hgq.layers import QDense

__all__ = ["jet_tagger"]


def jet_tagger(
    n_in: int = 16,
    n_out: int = 5,
    hidden: Sequence[int] = (64, 32, 32),
    beta0: float = 1e-6,
    kq_conf: dict | None = None,
    iq_conf: dict | None = None,
    seed: int = 0,
    name: str = "jet_tagger",
    resource: str = "ebops",
) -> keras.Model:
    """The JSC jet tagger ``16-64-32-32-5``: QDense + inline ReLU, logits out (unquantized sums of quantized terms).

    Defaults (train from scratch, no all-zero kernel): weights kbi b0=6 i0=0 RND SAT_SYM per element;
    activations kif k0=1 i0=3 f0=4 RND WRAP per element (calibrate with ``trace_minmax`` before export).

    Args:
        n_in, n_out: input features and classes.
        hidden: hidden layer sizes.
        beta0: initial β of every layer.
        kq_conf, iq_conf: override the kernel / input quantizer configs.
        seed: initializer seed.
        name: model name.
        resource: the resource term in the loss, ``"ebops"`` or ``"da"`` (see :class:`~hgq.layers.base.QLayer`).
    """
    kq = {"q_type": "kbi", "b0": 6, "i0": 0, "round_mode": "RND", "overflow_mode": "SAT_SYM", **(kq_conf or {})}
    iq = {"q_type": "kif", "k0": 1, "i0": 3, "f0": 4, "round_mode": "RND", "overflow_mode": "WRAP", **(iq_conf or {})}
    inp = keras.Input((n_in,), name="x")
    y = inp
    for j, u in enumerate((*hidden, n_out)):
        last = j == len(hidden)
        y = QDense(
            u,
            activation=None if last else "relu",
            kq_conf=kq,
            iq_conf=iq,
            beta0=beta0,
            resource=resource,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + j),
            name=f"dense{j}",
        )(y)
    return keras.Model(inp, y, name=name)
