"""Ready-made HGQ models."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from hgq.data.particles import PARTICLE_FEATURES
from hgq.layers import (
    QGRU,
    QLSTM,
    QAdd,
    QDense,
    QEinsum,
    QEinsumDense,
    QGlobalAveragePooling1D,
    QGlobalSumPooling1D,
    QLUTDense,
    QMultiply,
    QSimpleRNN,
    QSoftmax,
)

__all__ = ["MASK_CONF", "deep_sets", "jedi_linear", "jet_tagger", "lut_tagger", "particle_transformer", "rnn_tagger"]

MASK_CONF = dict(q_type="kif", k0=0, i0=1, f0=0, round_mode="TRN", overflow_mode="SAT", trainable_widths=False)
"""The particle mask's quantizer: exactly 0 or 1, never trained (a 1-bit port; masking is an AND per bit)."""
N_PARTICLE_FEATURES = len(PARTICLE_FEATURES)
"""Features per particle of :mod:`hgq.data` particle-level sets: the set models' default ``n_features``."""


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
    table_bits: int | Sequence[int] = 7,
    edge_widths: bool = True,
    batch_norm: bool = False,
    input_i_max: float | None = 3.0,
    cap_gradient: bool = True,
    table_cost: str = "lut",
    seed: int = 0,
    name: str = "lut_tagger",
) -> keras.Model:
    """The JSC jet tagger built from learned tables: ``QLUTDense(16) → QLUTDense(5)`` (or one ``QLUTDense(5)``),
    logits out.

    Every edge is a table of one quantized input; each output is the adder tree of its tables
    (:mod:`hgq.layers.lut_dense`). The resource term counts the tables' LUTs (one per output bit of up to 6
    address bits, as yosys counts them) and adder bits.
    Defaults: tables of at most 7 address bits (measured: 5 or 6 bits on the features cost ~0.05 accuracy), each
    edge reading its own learned number of its input's bits; model inputs kif k0=1 i0=2 f0=3 TRN SAT per element,
    at most 3 integer bits (a learned range the input port carries, no logic); hidden inputs kif TRN WRAP (free
    wiring; calibrate with ``trace_minmax``); table outputs kif k0=1 i0=1 f0=4 RND SAT per edge.

    Args:
        n_in, n_out: input features and classes.
        hidden: hidden LUT-layer sizes; ``()`` for one table layer, each logit a sum of one learned function per
            feature (one register rank at 200 MHz; the cheapest up to ~0.645 accuracy on the jets). ``(8,)`` is
            cheaper than ``(16,)`` from ~0.635 to 0.67 but stops lower (docs/lut_layers.md).
        beta0: initial β of every layer.
        iq_conf, eoq_conf: override the input / table-output quantizer configs.
        features: tanh features per input in the edge functions (training only).
        table_bits: most address bits of a table (:class:`~hgq.layers.QLUTDense`): one for all layers or one per
            layer.
        edge_widths: every edge learns how many bits of its input it reads (else one width per input; measured:
            per-edge widths need 0.76-1.02x the LUTs, docs/lut_layers.md).
        batch_norm: batch norm on the table outputs (folded into the tables).
        input_i_max: most integer bits of the model inputs (None: 23). Under the table cap a model input that
            widens its range gives up a fractional bit; capping ``i`` saturates the outliers instead
            (docs/lut_layers.md, "Limits").
        cap_gradient: the model inputs' ``i`` also learn from the resolution the table cap takes from them
            (:class:`~hgq.layers.QLUTDense`).
        table_cost: how the resource term counts table LUTs (:func:`hgq.layers.lut_dense.table_luts`).
        seed: initializer seed.
        name: model name.
    """
    inp = keras.Input((n_in,), name="x")
    y = inp
    sizes = (*hidden, n_out)
    bits = [table_bits] * len(sizes) if isinstance(table_bits, int) else list(table_bits)
    if len(bits) != len(sizes):
        raise ValueError(f"table_bits has {len(bits)} entries for {len(sizes)} LUT layers; give one or one per layer")
    for j, u in enumerate(sizes):
        iq = {"i0": 2, "overflow_mode": "SAT"} if j == 0 else {}
        if j == 0 and input_i_max is not None:
            iq["i_range"] = (-23.0, float(input_i_max))
        y = QLUTDense(u, hidden=features, table_bits=bits[j], iq_conf={**iq, **(iq_conf or {})}, eoq_conf=eoq_conf,
                      edge_widths=edge_widths, batch_norm=batch_norm, cap_gradient=cap_gradient,
                      table_cost=table_cost, beta0=beta0, seed=seed + j, name=f"lut{j}")(y)  # fmt: skip
    return keras.Model(inp, y, name=name)


def _set_inputs(n_particles: int, n_features: int) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    if n_particles < 1 or n_features < 1:
        raise ValueError(f"need at least one particle and one feature, got {n_particles} x {n_features}")
    return keras.Input((n_particles, n_features), name="particles"), keras.Input((n_particles, 1), name="mask")


def _set_confs(kq_conf: dict | None, iq_conf: dict | None) -> tuple[dict, dict]:
    kq = {"q_type": "kbi", "b0": 6, "i0": 0, "round_mode": "RND", "overflow_mode": "SAT_SYM", **(kq_conf or {})}
    iq = {"q_type": "kif", "k0": 1, "i0": 3, "f0": 4, "round_mode": "RND", "overflow_mode": "WRAP", **(iq_conf or {})}
    return kq, iq


def _masked_mean(x, mask, name: str, beta0: float):
    """Zero the padded members (times the 0/1 mask) and average over the set (an exact shift: 2**n members)."""
    n = x.shape[1]
    x = QMultiply(iq_confs=[{}, MASK_CONF], beta0=beta0, name=f"{name}_mask")([x, mask])
    if n & (n - 1):
        return QGlobalSumPooling1D(beta0=beta0, name=f"{name}_sum")(x)
    return QGlobalAveragePooling1D(beta0=beta0, name=f"{name}_mean")(x)


def _head(y, sizes: Sequence[int], n_out: int, dense):
    for j, u in enumerate((*sizes, n_out)):
        y = dense(u, None if j == len(sizes) else "relu", f"head{j}")(y)
    return y


def _dense_factory(kq: dict, iq: dict, beta0: float, seed: int):
    count = iter(range(1000))

    def dense(units: int, activation, name: str):
        return QDense(units, activation=activation, kq_conf=kq, iq_conf=iq, beta0=beta0, name=name,
                      kernel_initializer=keras.initializers.GlorotUniform(seed=seed + next(count)))  # fmt: skip

    return dense


def deep_sets(
    n_particles: int = 16,
    n_features: int = N_PARTICLE_FEATURES,
    n_out: int = 5,
    phi: Sequence[int] = (32, 32),
    rho: Sequence[int] = (32,),
    beta0: float = 1e-6,
    kq_conf: dict | None = None,
    iq_conf: dict | None = None,
    seed: int = 0,
    name: str = "deep_sets",
) -> keras.Model:
    """A Deep Sets tagger on particles: ``ρ(mean_i mask_i · φ(p_i))``, permutation invariant, logits out.

    Inputs ``particles`` ``(n_particles, n_features)`` and ``mask`` ``(n_particles, 1)`` (1 = real particle,
    :data:`MASK_CONF`). ``φ`` is a per-particle QDense stack with shared weights (one DA solution instanced per
    particle in hardware), the aggregation an exact mean (sum and shift; a plain sum when ``n_particles`` is not
    a power of two), ``ρ`` a QDense stack. Quantizer defaults as :func:`jet_tagger`.

    Args:
        n_particles, n_features, n_out: set size, features per particle, classes.
        phi, rho: hidden sizes of the per-particle and the set-level networks.
        beta0, kq_conf, iq_conf, seed, name: as :func:`jet_tagger`.
    """
    kq, iq = _set_confs(kq_conf, iq_conf)
    dense = _dense_factory(kq, iq, beta0, seed)
    p, m = _set_inputs(n_particles, n_features)
    y = p
    for j, u in enumerate(phi):
        y = dense(u, "relu", f"phi{j}")(y)
    y = _head(_masked_mean(y, m, "pool", beta0), rho, n_out, dense)
    return keras.Model([p, m], y, name=name)


def jedi_linear(
    n_particles: int = 16,
    n_features: int = N_PARTICLE_FEATURES,
    n_out: int = 5,
    width: int = 32,
    head: Sequence[int] = (32, 16),
    beta0: float = 1e-6,
    kq_conf: dict | None = None,
    iq_conf: dict | None = None,
    seed: int = 0,
    name: str = "jedi_linear",
) -> keras.Model:
    """An interaction-network tagger in the linear-complexity (JEDI-linear) form, logits out.

    The pairwise messages of an interaction network (``O(n²)`` edges) are replaced by each particle meeting the
    set's aggregate: ``x_i = φ(p_i)``, ``e_i = f_s(x_i) + f_g(mean_j mask_j x_j)`` (the global term computed once
    and broadcast), ``o_i = f_o(e_i)``, then ``mean_i mask_i o_i`` feeds the classifier head. Linear in the number
    of particles; every per-particle layer shares its weights (one DA solution per layer, instanced per
    particle). Quantizer defaults as :func:`jet_tagger`.

    Args:
        n_particles, n_features, n_out: set size, features per particle, classes.
        width: the per-particle feature width of every block.
        head: hidden sizes of the classifier after the aggregation.
        beta0, kq_conf, iq_conf, seed, name: as :func:`jet_tagger`.
    """
    kq, iq = _set_confs(kq_conf, iq_conf)
    dense = _dense_factory(kq, iq, beta0, seed)
    p, m = _set_inputs(n_particles, n_features)
    x = dense(width, "relu", "embed")(p)
    s = dense(width, "relu", "self")(x)
    g = dense(width, "relu", "global")(_masked_mean(x, m, "agg", beta0))
    g = keras.layers.RepeatVector(n_particles, name="broadcast")(g)
    e = QAdd(beta0=beta0, name="interact")([s, g])
    o = dense(width, "relu", "node")(e)
    y = _head(_masked_mean(o, m, "pool", beta0), head, n_out, dense)
    return keras.Model([p, m], y, name=name)


def particle_transformer(
    n_particles: int = 16,
    n_features: int = N_PARTICLE_FEATURES,
    n_out: int = 5,
    d_model: int = 16,
    heads: int = 2,
    d_head: int = 8,
    ffn: int = 32,
    head: Sequence[int] = (16,),
    beta0: float = 1e-6,
    kq_conf: dict | None = None,
    iq_conf: dict | None = None,
    seed: int = 0,
    name: str = "particle_transformer",
) -> keras.Model:
    """A one-block transformer encoder on particles (multi-head self-attention, feed-forward, residuals), logits.

    ``x = W_e p``; per head ``h``: ``q, k, v = W_q x, W_k x, W_v x`` (QEinsumDense, shared over particles),
    ``A = softmax(q kᵀ)`` over the keys (:class:`~hgq.layers.QSoftmax`: exact table softmax; the ``1/√d`` scale is
    learned inside ``W_q``), ``o = A v`` (:class:`~hgq.layers.QEinsum`: exact variable products), then ``x + W_o o``,
    ``x + FFN(x)``, the masked mean over particles and a QDense head. No normalisation layer: the widths are
    learned per element instead (a batch norm would fold into the next kernel). Padded particles are zeros and
    are excluded by the pooling mask; attention sees them as keys of value ``W_k 0``.

    Args:
        n_particles, n_features, n_out: set size, features per particle, classes.
        d_model, heads, d_head, ffn: embedding width, attention heads, width per head, feed-forward width.
        head: hidden sizes of the classifier after the pooling.
        beta0, kq_conf, iq_conf, seed, name: as :func:`jet_tagger`.
    """
    kq, iq = _set_confs(kq_conf, iq_conf)
    dense = _dense_factory(kq, iq, beta0, seed)
    p, m = _set_inputs(n_particles, n_features)
    x = dense(d_model, None, "embed")(p)

    def proj(nm: str, j: int):
        return QEinsumDense("bnd,dhk->bnhk", (n_particles, heads, d_head), bias_axes="hk", kq_conf=kq, iq_conf=iq,
                            beta0=beta0, name=nm,
                            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 100 + j))(x)  # fmt: skip

    q, k, v = proj("query", 0), proj("key", 1), proj("value", 2)
    s = QEinsum("nhk,mhk->hnm", iq_confs=[iq, iq], beta0=beta0, name="scores")([q, k])
    a = QSoftmax(iq_conf=iq, beta0=beta0, name="attention")(s)
    o = QEinsum("hnm,mhk->nhk", iq_confs=[{**iq, "overflow_mode": "SAT"}, iq], beta0=beta0, name="mix")([a, v])
    o = keras.layers.Reshape((n_particles, heads * d_head), name="concat_heads")(o)
    x = QAdd(beta0=beta0, name="residual0")([x, dense(d_model, None, "out")(o)])
    f = dense(d_model, None, "ffn1")(dense(ffn, "relu", "ffn0")(x))
    x = QAdd(beta0=beta0, name="residual1")([x, f])
    y = _head(_masked_mean(x, m, "pool", beta0), head, n_out, dense)
    return keras.Model([p, m], y, name=name)


RECURRENT = {"rnn": QSimpleRNN, "gru": QGRU, "lstm": QLSTM}


def rnn_tagger(
    kind: str = "lstm",
    steps: int = 8,
    n_features: int = N_PARTICLE_FEATURES,
    n_out: int = 5,
    units: int = 16,
    head: Sequence[int] = (16,),
    beta0: float = 1e-6,
    kq_conf: dict | None = None,
    iq_conf: dict | None = None,
    seed: int = 0,
    name: str | None = None,
) -> keras.Model:
    """A recurrent jet tagger: the jet's leading particles in pT order as a sequence of ``steps``, one
    :class:`~hgq.layers.QSimpleRNN` / :class:`~hgq.layers.QGRU` / :class:`~hgq.layers.QLSTM` reading the model input
    (its last state), then a QDense head; logits out. Lowers unrolled (``hdl_gen.convert``, II = 1) or with the cell
    reused every step (``hdl_gen.convert_recurrent``, II = steps × cell latency).

    Args:
        kind: ``"rnn"``, ``"gru"`` or ``"lstm"``.
        steps, n_features, n_out: sequence length, features per step, classes.
        units: the state size.
        head: hidden sizes of the head.
        beta0, kq_conf, iq_conf, seed: as :func:`jet_tagger` (``iq_conf`` applies to the recurrent layer's input).
        name: model name (default ``f"{kind}_tagger"``).
    """
    if kind not in RECURRENT:
        raise ValueError(f"kind {kind!r} is not valid; use one of {', '.join(map(repr, RECURRENT))}")
    kq, iq = _set_confs(kq_conf, {"i0": 1, "f0": 6, **(iq_conf or {})})
    x = keras.Input((steps, n_features), name="sequence")
    h = RECURRENT[kind](units, kq_conf=kq, rq_conf=kq, iq_conf=iq, beta0=beta0, seed=seed, name=kind)(x)
    head_iq = _set_confs(None, None)[1]  # the head reads the state with the default activation quantizer
    y = _head(h, head, n_out, _dense_factory(kq, head_iq, beta0, seed + 1))
    return keras.Model(x, y, name=name or f"{kind}_tagger")
