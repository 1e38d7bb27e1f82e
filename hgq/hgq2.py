"""HGQ2 0.2 checkpoints as hgq-hil models, read without importing HGQ2 (both packages import as ``hgq``).

:func:`load_hgq2` reads a ``.keras`` file saved by HGQ2 (``config.json`` and ``model.weights.h5`` in the zip) and
builds the same network from hgq-hil layers, so everything downstream (``hdl_gen.convert``, ``simulate``,
``gate``, ``build``) treats it as a native model. The imported model's forward equals HGQ2's inference forward
bit for bit (docs/import.md has the semantics and the limits):

- **Activation quantizers** (``iq``, a standalone ``Quantizer``) keep HGQ2's stored widths: ``k`` as saved, ``i``
  and ``f`` (kif) or ``b`` and ``i`` (kbi) rounded half to even as HGQ2 rounds them, the same round and overflow
  modes (``S_`` stochastic modes round like their base at inference), marked calibrated (never re-traced).
- **Constants** (kernels, biases) are quantized here with HGQ2's own float32 formula (its saturate-then-round,
  floor-mod wrap, its mask ``k + i + f > 0`` and its no-wrap branch for WRAP weight quantizers), then stored in
  the hgq-hil layer with per-element formats that hold each value exactly; the import asserts
  ``layer.qkernel``/``layer.qbias`` equal HGQ2's.
- ``QBatchNormDense`` (HGQ2's batch norm on the layer *input*, folded into the kernel and bias) becomes a plain
  :class:`~hgq.layers.QDense` with the fold computed in float32 in HGQ2's order of operations.

Supported: ``InputLayer``, ``QDense``, ``QEinsumDense``, ``QBatchNormDense``, ``Quantizer``, in a single-input
chain, with ``relu``/``linear`` activations. Anything else is refused by name (:class:`HGQ2ImportError`).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SUPPORTED", "HGQ2ImportError", "HGQ2Quantizer", "hgq2_quantize", "is_hgq2_checkpoint", "load_hgq2"]

SUPPORTED = ("InputLayer", "QDense", "QEinsumDense", "QBatchNormDense", "Quantizer")
_ACTIVATIONS = ("relu", "linear", None)
_F32 = np.float32


class HGQ2ImportError(ValueError):
    """An HGQ2 checkpoint holds something hgq-hil cannot reproduce exactly (the message names it)."""


@dataclass(frozen=True)
class HGQ2Quantizer:
    """One HGQ2 fixed-point quantizer: rounded widths (float32 arrays) and its modes."""

    q_type: str
    k: np.ndarray
    i: np.ndarray
    f: np.ndarray
    round_mode: str
    overflow_mode: str
    is_weight: bool
    trainable: bool


# -- reading the zip ---------------------------------------------------------------------------------------------
def _snake(name: str) -> str:
    """Keras' snake-casing of a class name (names the layer's group in ``model.weights.h5``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _read(path: str | Path) -> tuple[dict, Any]:
    import h5py

    try:
        with zipfile.ZipFile(path) as z:
            cfg = json.loads(z.read("config.json"))  # HGQ2 writes the non-standard literal Infinity: json accepts it
            h5 = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
    except (zipfile.BadZipFile, KeyError) as err:
        raise HGQ2ImportError(f"{path}: not a Keras 3 .keras archive ({err})") from None
    return cfg, h5


def _quantizer_conf(conf: Any) -> dict | None:
    if isinstance(conf, dict) and conf.get("class_name") == "QuantizerConfig":
        return conf["config"]
    return None


def is_hgq2_checkpoint(path: str | Path) -> bool:
    """True when ``path`` is a ``.keras`` archive whose layers carry HGQ2 quantizer configs."""
    try:
        with zipfile.ZipFile(path) as z:
            cfg = json.loads(z.read("config.json"))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        return False
    layers = cfg.get("config", {}).get("layers", []) if isinstance(cfg, dict) else []
    for lc in layers:
        c = lc.get("config", {})
        if any(_quantizer_conf(c.get(key)) for key in ("iq_conf", "kq_conf", "config")):
            return True
    return False


def _vars(group: Any) -> list[np.ndarray]:
    v = group["vars"]
    return [np.asarray(v[str(j)]) for j in range(len(v))]


def _decode_quantizer(conf: dict, group: Any, where: str) -> HGQ2Quantizer:
    """Widths of one HGQ2 quantizer from its h5 group (variables are saved trainable-first, by position)."""
    q_type = conf["q_type"]
    if q_type not in ("kif", "kbi"):
        raise HGQ2ImportError(f"{where}: quantizer type {q_type!r} is not fixed point; only kif and kbi convert")
    for key in ("scaler", "affine"):
        if conf.get(key) is not None:
            raise HGQ2ImportError(f"{where}: quantizers with {key}={conf[key]!r} are not supported")
    om = str(conf["overflow_mode"]).upper()
    rm = str(conf["round_mode"]).upper().removeprefix("S_")
    if om not in ("WRAP", "SAT", "SAT_SYM"):
        raise HGQ2ImportError(f"{where}: overflow mode {om!r} has no hgq-hil equivalent (WRAP, SAT, SAT_SYM)")
    if rm not in ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_INF", "RND_MIN_INF", "RND_CONV"):
        raise HGQ2ImportError(f"{where}: round mode {conf['round_mode']!r} is not supported")
    wrap = om == "WRAP"
    if q_type == "kbi":
        created = [("k", False), ("b", True), ("i", not wrap)]
    else:
        created = [("k", False), ("i", not wrap), ("f", True)]
    if wrap:
        created.append(("i_decay_speed", False))
    order = [n for n, t in created if t] + [n for n, t in created if not t]
    vs = _vars(group["quantizer"])
    if len(vs) != len(order):
        raise HGQ2ImportError(f"{where}: {len(vs)} quantizer variables, expected {order} (not an HGQ2 0.2 file?)")
    raw = dict(zip(order, vs, strict=True))
    if raw["k"].dtype != np.uint8:
        raise HGQ2ImportError(f"{where}: the sign variable is {raw['k'].dtype}, expected uint8 (not HGQ2 0.2?)")
    rint = lambda a: np.round(np.asarray(a, _F32))  # noqa: E731  (HGQ2 rounds widths half to even)
    if q_type == "kbi":
        i = rint(raw["i"])
        f = rint(raw["b"]) - i
    else:
        i, f = rint(raw["i"]), rint(raw["f"])
    return HGQ2Quantizer(q_type, raw["k"].astype(_F32), i, f, rm, om, bool(conf.get("is_weight", False)),
              bool(conf.get("trainable", True)))  # fmt: skip


# -- HGQ2's inference formula ------------------------------------------------------------------------------------
def _round(y: np.ndarray, mode: str) -> np.ndarray:
    half = _F32(0.5)
    if mode == "TRN":
        return np.floor(y)
    if mode == "RND":
        return np.floor(y + half)
    if mode == "RND_CONV":
        return np.round(y)
    if mode == "TRN_ZERO":
        return np.floor(np.abs(y)) * np.sign(y)
    if mode == "RND_ZERO":
        return -np.floor(-np.abs(y) + half) * np.sign(y)
    if mode == "RND_MIN_INF":
        return -np.floor(-y + half)
    return np.floor(np.abs(y) + half) * np.sign(y)  # RND_INF


def _p2(e: np.ndarray) -> np.ndarray:
    return np.ldexp(_F32(1), e.astype(np.int32)).astype(_F32)


def hgq2_quantize(x: np.ndarray, q: HGQ2Quantizer) -> np.ndarray:
    """HGQ2 0.2's inference quantization of ``x`` in float32, operation for operation."""
    x = np.asarray(x, _F32)
    k, i, f = (np.broadcast_to(v, x.shape).astype(_F32) for v in (q.k, q.i, q.f))
    if q.overflow_mode == "WRAP" and q.trainable and q.is_weight and (q.q_type == "kif" or q.round_mode == "RND"):
        s = _p2(f)  # HGQ2's weight quantizers under WRAP only round: no wrap, no pruning
        return (_round(x * s, q.round_mode) / s).astype(_F32)
    mask = (k + i + f) > 0
    i = np.maximum(i, -f)
    if q.overflow_mode in ("SAT", "SAT_SYM"):
        hi = _p2(i) - _p2(-f)
        lo = -_p2(i) * k if q.overflow_mode == "SAT" else -hi * k
        x = np.where(x > hi, hi, np.where(x < lo, lo, x))
    s = _p2(f)
    x = _round(x * s, q.round_mode) / s
    if q.overflow_mode == "WRAP":
        bias = k * _p2(i + k - 1)
        x = np.mod(x + bias, _p2(i + k)) - bias
    return np.where(mask, x, _F32(0)).astype(_F32)


# -- building the hgq-hil model ----------------------------------------------------------------------------------
def _set_activation(q: Any, src: HGQ2Quantizer, where: str) -> None:
    """Copy HGQ2's activation widths into an hgq-hil quantizer; refuse what hgq-hil would quantize differently."""
    shape = tuple(q.k.shape)
    try:
        k, i, f = (np.broadcast_to(np.asarray(v, np.float32), shape) for v in (src.k, src.i, src.f))
    except ValueError:
        raise HGQ2ImportError(f"{where}: widths of shape {src.k.shape} do not fit the input {shape}") from None
    sign_only = (k == 1) & (i + f <= 0) & (src.overflow_mode != "SAT_SYM")
    if sign_only.any():
        raise HGQ2ImportError(
            f"{where}: {int(sign_only.sum())} element(s) keep only a sign bit (k=1, i+f<=0), which HGQ2 maps to "
            "{-2**i, 0} and hgq-hil prunes; calibrate the model with HGQ2's trace_minmax before saving"
        )
    q.k.assign(k)
    q.i.assign(i)
    q.bvar.assign(f if src.q_type == "kif" else i + f)
    q._calibrated.assign(1.0)


def _activation_conf(src: HGQ2Quantizer, ndim: int) -> dict:
    hom = [a for a in range(1, ndim) if src.k.ndim == ndim and src.k.shape[a] == 1]
    return dict(q_type=src.q_type, place="activation", round_mode=src.round_mode, overflow_mode=src.overflow_mode,
                homogeneous_axes=[0, *hom], trainable_widths=False)  # fmt: skip


def _fold_batchnorm(c: Mapping, lv: list[np.ndarray], kernel: np.ndarray, bias: np.ndarray):
    """HGQ2 QBatchNormDense's fold (BN on the input), in float32 with HGQ2's operations and order."""
    from keras import ops

    scale = c.get("scale", True)
    n_tr = 3 if scale else 2
    gamma = lv[2] if scale else 1.0
    rest = lv[n_tr:]
    rest = rest[2:] if c.get("enable_ebops") else rest  # beta and ebops come first when HGQ2 counted EBOPs
    mean, var = rest[0], rest[1]
    scaler = ops.convert_to_tensor(gamma, "float32") / ops.sqrt(ops.convert_to_tensor(var, "float32") + c["epsilon"])
    k32 = ops.convert_to_tensor(kernel, "float32")
    fused_k = ops.convert_to_numpy(scaler[:, None] * k32)
    offset = -ops.dot(ops.convert_to_tensor(mean, "float32"), k32)
    fused_b = ops.convert_to_numpy(ops.convert_to_tensor(bias, "float32") + offset)
    return fused_k, fused_b


def _chain(cfg: dict) -> list[dict]:
    """The layer configs of a single-input chain; refuses branches and nested models by name."""
    if cfg.get("class_name") not in ("Functional", "Sequential"):
        raise HGQ2ImportError(f"the top object is a {cfg.get('class_name')!r}, not a Functional/Sequential model")
    layers = cfg["config"]["layers"]
    prev = None
    for lc in layers:
        name = lc["config"].get("name")
        if cfg["class_name"] == "Functional" and lc["class_name"] != "InputLayer":
            nodes = lc.get("inbound_nodes", [])
            srcs = [a["config"]["keras_history"][0] for n in nodes for a in n.get("args", [])
                    if isinstance(a, dict) and a.get("class_name") == "__keras_tensor__"]  # fmt: skip
            if len(nodes) != 1 or srcs != [prev]:
                raise HGQ2ImportError(f"layer {name!r} is not fed by the layer before it: only single-input chains "
                                      "of layers convert")  # fmt: skip
        prev = name
    return layers


def load_hgq2(path: str | Path):
    """Read an HGQ2 0.2 ``.keras`` checkpoint into an equivalent hgq-hil Keras model (see the module docstring).

    Raises :class:`HGQ2ImportError` naming the first unsupported layer, quantizer or option and the supported
    layers."""
    import keras

    import hgq  # noqa: F401  (Keras on JAX first)
    from hgq.layers import QDense, QEinsumDense
    from hgq.quantizer import HOLD_CONF, Quantizer, hold_exactly

    cfg, h5 = _read(path)
    layers = _chain(cfg)
    used: dict[str, int] = {}
    x = inp = None
    plan: list[tuple[Any, str, Any]] = []  # (hgq-hil layer, what, payload) to fill after the graph is built
    for lc in layers:
        cls, c = lc["class_name"], lc["config"]
        name = c.get("name")
        if cls not in SUPPORTED:
            raise HGQ2ImportError(f"layer {name!r} is an HGQ2/Keras {cls}, which does not convert; supported: "
                                  f"{', '.join(SUPPORTED)}")  # fmt: skip
        if cls == "InputLayer":
            inp = x = keras.Input(shape=tuple(c["batch_shape"][1:]), name=name)
            if cfg["class_name"] == "Sequential":
                continue
        base = _snake(cls)
        hname = base if base not in used else f"{base}_{used[base] + 1}"
        used[base] = used.get(base, -1) + 1
        group = h5["layers"][hname]
        if group["vars"].attrs.get("name") not in (None, name):
            raise HGQ2ImportError(f"{path}: weights group {hname!r} belongs to {group['vars'].attrs['name']!r}, "
                                  f"not {name!r}")  # fmt: skip
        if cls == "InputLayer":
            continue
        if x is None:
            raise HGQ2ImportError(f"{path}: the model has no InputLayer before {name!r}")
        where = f"layer {name!r} ({cls})"
        if cls == "Quantizer":
            src = _decode_quantizer(_quantizer_conf(c["config"]) or {}, group, where)
            q = Quantizer(**_activation_conf(src, len(x.shape)), name=name)
            x = q(x)
            plan.append((q, "activation", src))
            continue
        act = c.get("activation")
        if act not in _ACTIVATIONS:
            raise HGQ2ImportError(f"{where}: activation {act!r} is a float function; only relu and linear convert")
        if c.get("enable_oq"):
            raise HGQ2ImportError(f"{where}: output quantizers (enable_oq) are not supported; quantize with the next "
                                  "layer's input quantizer")  # fmt: skip
        enable_iq = bool(c.get("enable_iq", True))
        iq = _decode_quantizer(_quantizer_conf(c["iq_conf"]), group["iq"], f"{where} iq") if enable_iq else None
        kq = _decode_quantizer(_quantizer_conf(c["kq_conf"]), group["kq"], f"{where} kq")
        has_bias = c.get("bias_axes") is not None if cls == "QEinsumDense" else c.get("use_bias", True)
        bq = _decode_quantizer(_quantizer_conf(c["bq_conf"]), group["bq"], f"{where} bq") if has_bias else None
        lv = _vars(group)
        kernel, bias = lv[0], lv[1] if has_bias else None
        if cls == "QBatchNormDense":
            kernel, bias = _fold_batchnorm(c, lv, kernel, bias)
        qk = hgq2_quantize(kernel, kq)
        qb = hgq2_quantize(bias, bq) if has_bias else None
        common = dict(activation=None if act == "linear" else act, enable_iq=enable_iq, name=name,
                      iq_conf=_activation_conf(iq, len(x.shape)) if iq else None,
                      kq_conf=dict(HOLD_CONF, place="weight"), bq_conf=dict(HOLD_CONF, place="bias"))  # fmt: skip
        if cls == "QEinsumDense":
            layer = QEinsumDense(c["equation"], c["output_shape"], bias_axes=c.get("bias_axes"), **common)
        else:
            layer = QDense(qk.shape[-1], use_bias=has_bias, **common)
        x = layer(x)
        plan.append((layer, "dense", (iq, qk, qb, where)))
    if inp is None or not plan:
        raise HGQ2ImportError(f"{path}: no layers to convert")
    model = keras.Model(inp, x, name=cfg["config"].get("name", "hgq2_model"))
    for layer, what, payload in plan:
        if what == "activation":
            _set_activation(layer, payload, f"layer {layer.name!r}")
            continue
        iq, qk, qb, where = payload
        if iq is not None:
            _set_activation(layer.iq, iq, f"{where} iq")
        layer.kernel.assign(qk)
        hold_exactly(layer.kq, qk)
        if qb is not None:
            layer.bias.assign(qb)
            hold_exactly(layer.bq, qb)
        if not np.array_equal(layer.qkernel, qk.astype(np.float64)) or (
            qb is not None and not np.array_equal(layer.qbias, qb.astype(np.float64))
        ):
            raise HGQ2ImportError(f"{where}: the imported constants differ from HGQ2's (a bug in hgq.hgq2)")
    return model
