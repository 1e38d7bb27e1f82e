"""QONNX graphs (Brevitas, FINN, QKeras converters) as hgq-hil models, exact where QONNX is exact.

:func:`load_qonnx` reads an ONNX file with QONNX's quantization nodes and builds the same network from hgq-hil
layers, so ``hdl_gen.convert``, ``simulate``, ``gate`` and ``build`` treat it as a native model. What converts:

- ``Quant`` (integer quantization ``round(clip(x / scale))·scale``) on an activation becomes an hgq-hil
  :class:`~hgq.quantizer.Quantizer` layer with ``f = -log2(scale)``, ``k = signed``, ``i = bitwidth - k - f``, SAT
  (SAT_SYM when signed and ``narrow``) and the node's rounding mode (``ROUND``/``HALF_EVEN`` → RND_CONV, ``FLOOR``
  → TRN, ``HALF_UP`` → RND_INF, ``DOWN`` → TRN_ZERO). Clipping before rounding, as QONNX does, gives the same values
  as hgq-hil's round-then-saturate because the bounds lie on the grid.
- ``Trunc`` (v2: QONNX opset 2 and later) on an activation becomes a quantizer at the output scale with the
  node's rounding mode, when its input already lies on the input scale's grid (the importer tracks each tensor's
  grid; otherwise QONNX would round twice, which is refused).
- ``Quant`` and ``BipolarQuant`` on constants (weights, biases) are evaluated here with QONNX's own formula;
  ``Transpose``, ``Reshape``, ``Identity`` and ``Constant`` on constants fold.
- ``MatMul``/``Gemm``/``Conv`` by a constant, an optional ``Add`` of a constant and an optional ``Relu`` become one
  :class:`~hgq.layers.QDense`/``QConv1D``/``QConv2D`` whose constants are held exactly; ``MaxPool``,
  ``AveragePool`` (power-of-two area) and 1-D global pools map to hgq-hil's pools; ``Flatten``/``Reshape`` pass
  through. Feature maps are channels-last in hgq-hil: an ``(N, C, *S)`` graph input becomes an ``(N, *S, C)``
  model input, and the dense layer after a flatten gets its rows in that order.

Exactness needs power-of-two scales and zero points of 0; anything else, float operations that are not one of
the above, branches, and other ops are refused by name (:class:`QONNXImportError`), with the supported list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SUPPORTED_OPS", "QONNXImportError", "int_quant", "load_qonnx"]

SUPPORTED_OPS = ("Quant", "IntQuant", "Trunc", "BipolarQuant", "MatMul", "Gemm", "Conv", "Add", "Relu", "MaxPool",
                 "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Reshape", "Identity", "Transpose",
                 "Constant")  # fmt: skip
_POOLS = ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool")
_ROUND = {"ROUND": "RND_CONV", "HALF_EVEN": "RND_CONV", "FLOOR": "TRN", "HALF_UP": "RND_INF", "DOWN": "TRN_ZERO"}


class QONNXImportError(ValueError):
    """A QONNX graph holds something hgq-hil cannot reproduce exactly (the message names the node)."""


def _int_bounds(signed: bool, narrow: bool, bits: int) -> tuple[int, int]:
    lo = -(2 ** (bits - 1)) + int(narrow) if signed else 0
    hi = 2 ** (bits - 1) - 1 if signed else 2**bits - 1 - int(narrow)
    return lo, hi


def _round_fn(mode: str):
    m = mode.upper()
    fns = {"ROUND": np.round, "HALF_EVEN": np.round, "FLOOR": np.floor, "CEIL": np.ceil, "DOWN": np.fix,
           "UP": lambda y: np.sign(y) * np.ceil(np.abs(y)),
           "HALF_UP": lambda y: np.sign(y) * np.floor(np.abs(y) + 0.5),
           "HALF_DOWN": lambda y: np.sign(y) * np.ceil(np.abs(y) - 0.5)}  # fmt: skip
    if m not in fns:
        raise QONNXImportError(f"rounding mode {mode!r} is not a QONNX rounding mode")
    return fns[m]


def int_quant(x, scale, zeropt, bits, signed: bool, narrow: bool, rounding_mode: str) -> np.ndarray:
    """QONNX's ``Quant`` (float64): ``(round(clip(x / scale + zeropt)) - zeropt) * scale``."""
    lo, hi = _int_bounds(signed, narrow, int(bits))
    y = np.clip(np.asarray(x, np.float64) / scale + zeropt, lo, hi)
    return (_round_fn(rounding_mode)(y) - zeropt) * scale


def _pow2_f(name: str, what: str, scale: np.ndarray) -> np.ndarray:
    """``f = -log2(scale)`` (float array), refusing a scale that is not an exact power of two."""
    s = np.asarray(scale, np.float64)
    if s.size == 0 or np.any(s <= 0):
        raise QONNXImportError(f"node {name!r}: {what} {s.ravel()[:4]} must be > 0")
    m, _ = np.frexp(s)
    if np.any(m != 0.5):
        bad = s.ravel()[np.flatnonzero(m.ravel() != 0.5)[0]]
        raise QONNXImportError(f"node {name!r}: {what} {float(bad):g} is not a power of two; hgq-hil is exact only for "
                               "power-of-two scales (fixed point): quantize with power-of-two scales")  # fmt: skip
    return -np.log2(s)


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@dataclass
class _Dense:
    """A MatMul/Gemm/Conv by constants with its bias and ReLU (kernel in the Keras layout)."""

    kernel: np.ndarray
    f_kernel: float
    bias: np.ndarray | None = None
    relu: bool = False
    names: list[str] = field(default_factory=list)
    conv: dict | None = None  # rank, kernel_size, strides, padding of a convolution

    @property
    def units(self) -> int:
        return int(self.kernel.shape[-1])


def _const_formats_f(v: np.ndarray) -> float:
    """Fractional bits of the finest element of a constant (0 for an all-integer/zero array)."""
    from hgq.quantizer import exact_kif

    _, _, f = exact_kif(v)
    return float(f[np.asarray(v) != 0].max()) if np.any(v) else 0.0


def load_qonnx(path: str | Path):
    """Read a QONNX ``.onnx`` graph into an equivalent hgq-hil Keras model (see the module docstring)."""
    import keras
    import onnx
    from onnx import numpy_helper

    import hgq  # noqa: F401  (Keras on JAX first)
    from hgq.layers import QConv1D, QConv2D, QDense
    from hgq.quantizer import HOLD_CONF, Quantizer, hold_exactly

    try:
        model = onnx.load(str(path))
    except Exception as err:  # noqa: BLE001 - protobuf raises many kinds for a broken file
        raise QONNXImportError(f"{path}: not an ONNX model ({type(err).__name__}: {err})") from None
    g = model.graph
    opsets = {o.domain: o.version for o in model.opset_import}
    qonnx_opset = max(opsets.get("qonnx.custom_op.general", 1), opsets.get("finn.custom_op.general", 1))
    consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1 or len(g.output) != 1:
        raise QONNXImportError(f"{path}: {len(inputs)} inputs and {len(g.output)} outputs; only single-input, "
                               "single-output graphs convert")  # fmt: skip
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) < 2 or any(d <= 0 for d in dims[1:]):
        raise QONNXImportError(f"{path}: input {inputs[0].name!r} has shape {dims}; need (batch, features...) with "
                               "known feature sizes (run `qonnx-cleanup` on the file to infer them)")  # fmt: skip

    # 1. fold every node whose inputs are all constants (weight/bias quantizers and their reshapes)
    pending = list(g.node)
    changed = True
    while changed:
        changed = False
        for node in list(pending):
            if node.op_type == "Constant":
                consts[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"]).astype(np.float64)
            elif all(n in consts for n in node.input if n):
                consts[node.output[0]] = _fold(node, [consts[n] for n in node.input if n])
            else:
                continue
            pending.remove(node)
            changed = True

    # 2. the remaining nodes must form a chain from the input
    by_input: dict[str, list[Any]] = {}
    for node in pending:
        for n in dict.fromkeys(node.input):
            if n and n not in consts:
                by_input.setdefault(n, []).append(node)
    layers: list[tuple[str, Any]] = []
    tensor, f_cur, quantized = inputs[0].name, None, False
    shape = tuple(dims[1:])  # the current tensor's ONNX shape without the batch (channels first when spatial)
    perm: np.ndarray | None = None  # Keras-order → ONNX-order positions after flattening a spatial tensor
    dense: _Dense | None = None

    def flush() -> None:
        nonlocal dense, f_cur
        if dense is not None:
            layers.append(("dense", dense))
            f_cur, dense = _dense_f(f_cur, dense), None

    while tensor != g.output[0].name or by_input.get(tensor):
        users = by_input.get(tensor, [])
        if len(users) != 1:
            raise QONNXImportError(f"tensor {tensor!r} feeds {len(users)} nodes; only chains convert")
        node = users[0]
        op, name = node.op_type, node.name or node.output[0]
        args = [consts.get(n) for n in node.input]
        if op not in SUPPORTED_OPS:
            raise QONNXImportError(f"node {name!r} is an ONNX {op}, which does not convert; supported: "
                                   f"{', '.join(SUPPORTED_OPS)}")  # fmt: skip
        if op not in ("Quant", "IntQuant", "Trunc", "Identity") and not quantized:
            raise QONNXImportError(f"node {name!r} ({op}) reads the graph input before any Quant node: hgq-hil "
                                   "needs the input quantized (put a Quant node first)")  # fmt: skip
        if op in ("Quant", "IntQuant", "Trunc"):
            flush()
            if perm is not None and (np.size(args[1]) > 1 or (len(args) > 4 and np.size(args[4]) > 1)):
                raise QONNXImportError(f"node {name!r} ({op}): per-element scales after flattening a feature map")
            conf, f_cur = _activation_quantizer(node, name, args, f_cur, 1 + len(shape), qonnx_opset)
            layers.append(("quant", conf))
            quantized = True
        elif op in ("MatMul", "Gemm"):
            flush()
            w = args[1]
            if w is None or node.input[0] != tensor:
                raise QONNXImportError(f"node {name!r} ({op}) multiplies two activations; only products with a "
                                       "constant (weights) convert")  # fmt: skip
            if len(shape) != 1:
                raise QONNXImportError(f"node {name!r} ({op}) on a {len(shape) + 1}-D tensor: flatten it first")
            a = _attrs(node)
            if op == "Gemm":
                if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
                    raise QONNXImportError(f"node {name!r} (Gemm): transA, alpha and beta other than 0, 1, 1")
                w = w.T if a.get("transB", 0) else w
            if perm is not None:  # rows in the order Keras flattens (channels last)
                w, perm = w[perm], None
            dense = _Dense(w, _const_formats_f(w), names=[name])
            if op == "Gemm" and len(node.input) > 2 and node.input[2]:
                dense.bias = np.broadcast_to(args[2], (w.shape[1],)).copy()
            shape = (int(w.shape[1]),)
        elif op == "Conv":
            flush()
            dense, shape = _conv(node, name, args, shape)
        elif op == "Add":
            other = [a for a in args if a is not None]
            if dense is None or dense.bias is not None or dense.relu or len(other) != 1:
                raise QONNXImportError(f"node {name!r} (Add) is not a constant bias right after MatMul/Gemm/Conv")
            b = np.asarray(other[0])
            if dense.conv is not None and b.size == dense.units:  # (1, M, 1, 1): per output channel
                b = b.reshape(-1)
            dense.bias = np.broadcast_to(b, (dense.units,)).copy()
            dense.names.append(name)
        elif op == "Relu":
            if dense is None or dense.relu:
                raise QONNXImportError(f"node {name!r} (Relu) does not follow a MatMul/Gemm/Conv (+ Add)")
            dense.relu = True
            dense.names.append(name)
        elif op in _POOLS:
            flush()
            pool, shape, extra_f = _pool(node, name, shape)
            f_cur = None if f_cur is None else f_cur + extra_f
            layers.append(("pool", pool))
        elif op in ("Flatten", "Reshape"):
            flush()
            if len(shape) > 1:
                perm = np.moveaxis(np.arange(int(np.prod(shape))).reshape(shape), 0, -1).ravel()
            shape = (int(np.prod(shape)),)
            layers.append(("flatten", name))
        elif op == "BipolarQuant":
            raise QONNXImportError(f"node {name!r} (BipolarQuant) on an activation is a sign function, not fixed "
                                   "point; only constants may be bipolar")  # fmt: skip
        tensor = node.output[0]
    flush()
    if not quantized:
        raise QONNXImportError(f"{path}: no Quant node on the input; hgq-hil needs the input quantized")

    # 3. the hgq-hil model
    in_shape = tuple(dims[1:]) if len(dims) == 2 else (*dims[2:], dims[1])  # channels last
    x = inp = keras.Input(shape=in_shape, name="x")
    fills: list[tuple[Any, Any]] = []
    for kind, item in layers:
        if kind == "quant":
            q = Quantizer(**item["conf"], name=item["name"])
            x = q(x)
            fills.append((q, item))
        elif kind == "flatten":
            x = keras.layers.Flatten(name=_keras_name(str(item)))(x)
        elif kind == "pool":
            x = item["layer"](**item["args"])(x)
        else:
            d: _Dense = item
            common = dict(activation="relu" if d.relu else None, enable_iq=False, use_bias=d.bias is not None,
                          kq_conf=dict(HOLD_CONF, place="weight"), bq_conf=dict(HOLD_CONF, place="bias"),
                          name=_keras_name(d.names[0]))  # fmt: skip
            if d.conv is None:
                layer = QDense(d.units, **common)
            else:
                cls = QConv1D if d.conv["rank"] == 1 else QConv2D
                layer = cls(d.units, d.conv["kernel_size"], strides=d.conv["strides"], padding=d.conv["padding"],
                            **common)  # fmt: skip
            x = layer(x)
            fills.append((layer, d))
    out = keras.Model(inp, x, name=_keras_name(g.name or Path(path).stem))
    for layer, item in fills:
        if isinstance(item, _Dense):
            layer.kernel.assign(item.kernel.astype(np.float32))
            hold_exactly(layer.kq, item.kernel)
            if item.bias is not None:
                layer.bias.assign(item.bias.astype(np.float32))
                hold_exactly(layer.bq, item.bias)
            if not np.array_equal(layer.qkernel, item.kernel) or (
                item.bias is not None and not np.array_equal(layer.qbias, item.bias)
            ):
                raise QONNXImportError(f"node {item.names[0]!r}: constants beyond float32; hgq-hil keeps float32 "
                                       "weights")  # fmt: skip
        else:
            k, i, f = (np.broadcast_to(np.asarray(v, np.float32), tuple(layer.k.shape)) for v in item["kif"])
            layer.k.assign(k)
            layer.i.assign(i)
            layer.bvar.assign(f)
            layer._calibrated.assign(1.0)
    return out


def _keras_name(name: str) -> str:
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name).strip("_")
    return out or "node"


def _dense_f(f_in: float | None, d: _Dense) -> float:
    """Fractional bits of a dense layer's output grid from its input's and its constants'."""
    f = (f_in if f_in is not None else math.inf) + d.f_kernel
    if d.bias is not None and np.any(d.bias):
        f = max(f, _const_formats_f(d.bias))
    return f


def _activation_quantizer(node: Any, name: str, args: Sequence, f_in: float | None, ndim: int, opset: int):
    """The hgq-hil quantizer config and widths of a Quant/Trunc node on an activation, and its output grid
    (``opset``: the graph's QONNX opset; Trunc is v2 from opset 2 on, as QONNX resolves it)."""
    a = _attrs(node)
    op = node.op_type
    if any(v is None for v in args[1:]):
        raise QONNXImportError(f"node {name!r} ({op}): scale, zero point and bit widths must be constants")
    signed = bool(a.get("signed", 1))
    narrow = bool(a.get("narrow", 0 if op == "Trunc" else 1))
    mode = _text(a.get("rounding_mode", "FLOOR" if op == "Trunc" else "ROUND")).upper()
    if np.any(args[2] != 0):
        raise QONNXImportError(f"node {name!r} ({op}): zero point {args[2].ravel()[:4]} is not 0; asymmetric "
                               "quantization is not fixed point")  # fmt: skip
    if op != "Trunc":
        f = _pow2_f(name, "scale", args[1])
        bits = args[3]
    elif opset >= 2 and len(args) == 6:  # Trunc v2: x, scale, zeropt, in_bits, out_scale, out_bits
        f_scale = _pow2_f(name, "scale", args[1])
        f = _pow2_f(name, "output scale", args[4])
        bits = args[5]
        if f_in is None or f_in > float(np.min(f_scale)):
            raise QONNXImportError(f"node {name!r} (Trunc) would round its input to the scale grid first and "
                                   "then truncate: only an input already on that grid converts")  # fmt: skip
    else:  # Trunc v1 (QONNX opset 1): drops low bits and keeps the input scale, i.e. divides the value
        raise QONNXImportError(f"node {name!r} is a Trunc v1 (QONNX opset {opset}), which rescales its value "
                               "without a clip; only Trunc v2 (opset >= 2, with an output scale) converts")  # fmt: skip
    if mode not in _ROUND:
        raise QONNXImportError(f"node {name!r} ({op}): rounding mode {mode!r} has no hgq-hil equivalent; "
                               f"supported: {', '.join(_ROUND)}")  # fmt: skip
    if np.any(bits != np.round(bits)) or np.any(bits < 1) or (signed and np.any(bits < 2)):
        raise QONNXImportError(f"node {name!r} ({op}): bit width {bits.ravel()[:4]} must be an integer >= "
                               f"{2 if signed else 1}")  # fmt: skip
    if narrow and not signed:
        raise QONNXImportError(f"node {name!r} ({op}): unsigned narrow range (max 2**b - 2) is not fixed point")
    k = np.float64(signed)
    i = bits - k - f
    per_channel = np.size(f) > 1 or np.size(bits) > 1
    if not per_channel:
        hom = list(range(ndim))
    elif ndim == 2:  # per feature
        hom = [0]
        f, i = (np.broadcast_to(v, np.broadcast_shapes(np.shape(f), np.shape(i))).reshape(1, -1) for v in (f, i))
    else:  # per channel of a feature map: ONNX (1, C, 1, ...) → Keras (1, ..., 1, C)
        hom = list(range(ndim - 1))
        f, i = (np.broadcast_to(v, np.broadcast_shapes(np.shape(f), np.shape(i))).reshape((1,) * (ndim - 1) + (-1,))
                for v in (f, i))  # fmt: skip
    conf = dict(q_type="kif", place="activation", round_mode=_ROUND[mode],
                overflow_mode="SAT_SYM" if narrow else "SAT", homogeneous_axes=hom, trainable_widths=False)  # fmt: skip
    return {"name": _keras_name(name), "conf": conf, "kif": (k, i, f)}, float(np.max(f))


def _same_pads(spatial: Sequence[int], kernel: Sequence[int], strides: Sequence[int]) -> list[int]:
    """ONNX ``pads`` (begins then ends) of Keras' "same" padding."""
    begins, ends = [], []
    for n, k, st in zip(spatial, kernel, strides, strict=True):
        total = max((math.ceil(n / st) - 1) * st + k - n, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return begins + ends


def _window(node: Any, name: str, shape: Sequence[int], kernel: Sequence[int]) -> tuple[list[int], str, tuple]:
    """Strides, Keras padding and the output ONNX shape of a Conv/pool window over ``shape`` (C, *spatial)."""
    a = _attrs(node)
    rank = len(kernel)
    strides = list(a.get("strides", [1] * rank))
    if any(d != 1 for d in a.get("dilations", [1] * rank)) or a.get("ceil_mode", 0):
        raise QONNXImportError(f"node {name!r} ({node.op_type}): dilations and ceil_mode are not supported")
    auto = _text(a.get("auto_pad", "NOTSET"))
    pads = list(a.get("pads", [0] * 2 * rank))
    spatial = list(shape[1:])
    if auto == "VALID" or (auto == "NOTSET" and not any(pads)):
        padding = "valid"
    elif auto == "SAME_UPPER" or (auto == "NOTSET" and pads == _same_pads(spatial, kernel, strides)):
        padding = "same"
    else:
        raise QONNXImportError(f"node {name!r} ({node.op_type}): pads {pads} (auto_pad {auto}) are neither none nor "
                               "Keras' 'same' padding")  # fmt: skip
    if padding == "valid":
        out = [(n - k) // st + 1 for n, k, st in zip(spatial, kernel, strides, strict=True)]
    else:
        out = [math.ceil(n / st) for n, st in zip(spatial, strides, strict=True)]
    return strides, padding, tuple(out)


def _conv(node: Any, name: str, args: Sequence, shape: Sequence[int]) -> tuple[_Dense, tuple]:
    """A Conv by constant weights (ONNX (M, C, *k)) as a channels-last hgq-hil convolution."""
    w = args[1]
    if w is None:
        raise QONNXImportError(f"node {name!r} (Conv): the weights must be constants")
    a = _attrs(node)
    rank = w.ndim - 2
    if rank not in (1, 2) or len(shape) != rank + 1:
        raise QONNXImportError(f"node {name!r} (Conv): only 1-D and 2-D convolutions convert")
    if a.get("group", 1) != 1:
        raise QONNXImportError(f"node {name!r} (Conv): grouped/depthwise convolutions (group > 1) do not convert")
    kernel = tuple(int(k) for k in w.shape[2:])
    strides, padding, out = _window(node, name, shape, kernel)
    kw = np.transpose(w, (*range(2, w.ndim), 1, 0))  # (M, C, *k) → (*k, C, M)
    d = _Dense(kw, _const_formats_f(kw), names=[name],
               conv=dict(rank=rank, kernel_size=kernel, strides=tuple(strides), padding=padding))  # fmt: skip
    if len(args) > 2 and args[2] is not None:
        d.bias = np.asarray(args[2]).reshape(-1).copy()
    return d, (int(w.shape[0]), *out)


def _pool(node: Any, name: str, shape: Sequence[int]) -> tuple[dict, tuple, float]:
    """A pooling node as an hgq-hil pooling layer spec, its output shape and the fractional bits it adds."""
    from hgq.layers import (
        QAveragePooling1D,
        QAveragePooling2D,
        QGlobalAveragePooling1D,
        QGlobalMaxPooling1D,
        QMaxPooling1D,
        QMaxPooling2D,
    )

    op, rank = node.op_type, len(shape) - 1
    if rank not in (1, 2):
        raise QONNXImportError(f"node {name!r} ({op}): needs a 1-D or 2-D feature map")
    if op.startswith("Global"):
        if rank != 1:
            raise QONNXImportError(f"node {name!r} ({op}): only 1-D global pooling converts (flatten, then a dense)")
        cls = QGlobalAveragePooling1D if op == "GlobalAveragePool" else QGlobalMaxPooling1D
        extra = math.log2(shape[1]) if op == "GlobalAveragePool" else 0.0
        if extra != int(extra):
            raise QONNXImportError(f"node {name!r} ({op}): averages over {shape[1]} positions, not a power of two")
        return {"layer": cls, "args": {"name": _keras_name(name), "enable_iq": False}}, (shape[0],), extra
    kernel = tuple(int(k) for k in _attrs(node)["kernel_shape"])
    strides, padding, out = _window(node, name, shape, kernel)
    extra = 0.0
    if op == "AveragePool":
        extra = math.log2(math.prod(kernel))
        if extra != int(extra) or padding != "valid":
            raise QONNXImportError(f"node {name!r} (AveragePool): only unpadded pools of a power-of-two area are "
                                   "exact")  # fmt: skip
        cls = QAveragePooling1D if rank == 1 else QAveragePooling2D
    else:
        cls = QMaxPooling1D if rank == 1 else QMaxPooling2D
    args = {
        "pool_size": kernel,
        "strides": tuple(strides),
        "padding": padding,
        "name": _keras_name(name),
        "enable_iq": False,
    }
    return {"layer": cls, "args": args}, (shape[0], *out), extra


def _fold(node: Any, args: list[np.ndarray]) -> np.ndarray:
    """Evaluate a node on constant inputs (weight and bias quantizers, reshapes)."""
    op, name, a = node.op_type, node.name or node.output[0], _attrs(node)
    if op in ("Quant", "IntQuant"):
        x, scale, zp, bits = args
        _pow2_f(name, "scale", scale)
        if np.any(zp != 0):
            raise QONNXImportError(f"node {name!r} (Quant): zero point is not 0; asymmetric quantization is not "
                                   "fixed point")  # fmt: skip
        return int_quant(x, scale, zp, bits, bool(a.get("signed", 1)), bool(a.get("narrow", 1)),
                         _text(a.get("rounding_mode", "ROUND")))  # fmt: skip
    if op == "BipolarQuant":
        _pow2_f(name, "scale", args[1])
        return np.where(args[0] >= 0, 1.0, -1.0) * args[1]
    if op == "Transpose":
        return np.transpose(args[0], a.get("perm"))
    if op == "Reshape":
        return np.reshape(args[0], args[1].astype(np.int64))
    if op == "Identity":
        return args[0]
    raise QONNXImportError(f"node {name!r}: {op} on constants does not fold; supported: Quant, BipolarQuant, "
                           "Transpose, Reshape, Identity, Constant")  # fmt: skip
