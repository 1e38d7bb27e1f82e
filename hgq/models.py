"""Ready-made HGQ models."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from hgq.layers import QDense, QLUTDense

__all__ = ["jet_tagger", "lut_tagger"]


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


def lut_tagger(
    n_in: int = 16,
    n_out: int = 5,
    hidden: Sequence[int] = (16,),
    beta0: float = 1e-6,
    iq_conf: dict | None = None,
    eoq_conf: dict | None = None,
    features: int = 8,
    table_bits: int | Sequence[int] | None = None,
    seed: int = 0,
    name: str = "lut_tagger",
) -> keras.Model:
    """The JSC jet tagger built from learned tables: ``QLUTDense(16) → QLUTDense(5)``, logits out.

    Every edge is a table of one quantized input; each output is the adder tree of its tables
    (:mod:`hgq.layers.lut_dense`). The resource term counts the tables' LUT6s and adder bits.
    Defaults: tables of at most 7 address bits on the jet features and 5 on the hidden sums (measured: 5 or 6
    bits on the features cost ~0.05 accuracy); model inputs kif k0=1 i0=2 f0=3 TRN SAT per element (a learned
    range the input port carries, no logic); hidden inputs kif TRN WRAP (free wiring; calibrate with
    ``trace_minmax``); table outputs kif k0=1 i0=1 f0=4 RND SAT per edge.

    Args:
        n_in, n_out: input features and classes.
        hidden: hidden LUT-layer sizes.
        beta0: initial β of every layer.
        iq_conf, eoq_conf: override the input / table-output quantizer configs.
        features: tanh features per input in the edge functions (training only).
        table_bits: most address bits of a table (:class:`~hgq.layers.QLUTDense`): one for all layers, one per
            layer, or None (7 for the first layer, 5 after).
        seed: initializer seed.
        name: model name.
    """
    inp = keras.Input((n_in,), name="x")
    y = inp
    sizes = (*hidden, n_out)
    if table_bits is None:
        bits = [7] + [5] * (len(sizes) - 1)
    else:
        bits = [table_bits] * len(sizes) if isinstance(table_bits, int) else list(table_bits)
    if len(bits) != len(sizes):
        raise ValueError(f"table_bits has {len(bits)} entries for {len(sizes)} LUT layers; give one or one per layer")
    for j, u in enumerate(sizes):
        iq = {"i0": 2, "overflow_mode": "SAT"} if j == 0 else {}
        y = QLUTDense(u, hidden=features, table_bits=bits[j], iq_conf={**iq, **(iq_conf or {})}, eoq_conf=eoq_conf,
                      beta0=beta0, seed=seed + j, name=f"lut{j}")(y)  # fmt: skip
    return keras.Model(inp, y, name=name)
