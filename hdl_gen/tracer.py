"""Keras → IR: lower a calibrated model built from :mod:`hgq.layers` to an exact fixed-point :class:`Graph`.

Each tensor is a numpy object array (per-sample shape) of op ids (``None`` = constant 0). The model input's
elements become input ports with the format of the first quantizer that reads them; every other quantizer
becomes a ``quantize`` op (identity ones fold away); dense/einsum/conv/batch-norm layers become
:meth:`GraphBuilder.cmvm` calls plus bias constants; lookup tables come from the trained layer's own forward.

Keras computes in float32: where an accumulated value needs more than 24 significant bits, the tracer warns
naming the layer (the graph is exact; Keras may round).
"""

# ruff: noqa: I001
from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import math
import warnings
import weakref

import keras
import numpy as np
from keras import ops

from hgq.fixed import FixedType, Interval, from_mantissa, quantize, to_mantissa
from hgq.quantizer import Quantizer

from .ir import Graph, GraphBuilder

__all__ = ["TraceError", "flatten_io", "quantize_input", "trace", "trace_recurrent"]

FLOAT32_BITS = 24
MAX_TABLE_VALUES = 1 << 20
MAX_SOFTMAX_TABLE = 1 << 16


class TraceError(ValueError):
    """The model cannot be lowered exactly (the message names the layer and the fix)."""


class FloatPrecisionWarning(UserWarning):
    """Keras' float32 forward may round a value the graph keeps exact."""


class _Raw:
    """A model-input element not yet read by a quantizer."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


_INPUT_SPECS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _obj(shape) -> np.ndarray:
    a = np.empty(tuple(shape), dtype=object)
    a.fill(None)
    return a


class _Tracer:
    def __init__(self, model: keras.Model, depth_bound, name: str, table_inputs: int = 6):
        self.model = model
        self.depth_bound = depth_bound
        self.table_inputs = table_inputs
        self.b = GraphBuilder(name=name)
        self.specs: dict[int, tuple] = {}  # raw index -> (k, i, f, rnd, ovf, input op id)
        self.order: list[int] = []  # raw indices in port creation order
        self.layer = ""

    # -- helpers ------------------------------------------------------------------------------------------
    def fail(self, msg: str):
        raise TraceError(f"layer {self.layer!r}: {msg}")

    def warn_float(self, bits: int, what: str) -> None:
        if bits > FLOAT32_BITS:
            warnings.warn(
                f"layer {self.layer!r}: {what} needs {bits} significant bits; Keras' float32 forward keeps "
                f"{FLOAT32_BITS}, so model.predict may round where the graph (and the circuit) is exact. "
                "Narrow this layer's quantizers, or compare against the interpreter only",
                FloatPrecisionWarning,
                stacklevel=4,
            )

    def cooked(self, x: np.ndarray) -> np.ndarray:
        """Refuse raw model-input elements reaching arithmetic."""
        for v in x.flat:
            if isinstance(v, _Raw):
                self.fail(
                    "it reads the model input without an input quantizer; give the layer an input quantizer "
                    "(enable_iq=True) or put an hgq Quantizer layer after the Input"
                )
        return x

    def quant(self, x: np.ndarray, q: Quantizer | None) -> np.ndarray:
        if q is None:
            return x
        k, i, f = q.kif()
        if k.shape != x.shape:
            try:
                k, i, f = (np.broadcast_to(a, x.shape) for a in (k, i, f))
            except ValueError:
                self.fail(f"quantizer {q.name!r} has shape {k.shape} but its tensor has shape {x.shape}")
        rnd, ovf = q.round_mode, q.overflow_mode
        out = _obj(x.shape)
        for idx in np.ndindex(x.shape):
            v = x[idx]
            kk, ii, ff = int(k[idx]), int(i[idx]), int(f[idx])
            if isinstance(v, _Raw):
                v = self.port(v.index, kk, ii, ff, rnd, ovf)
            out[idx] = self.b.quantize(v, kk, ii, ff, rnd, ovf) if kk + ii + ff > 0 else None
        return out

    def port(self, index: int, k: int, i: int, f: int, rnd: str, ovf: str) -> int | None:
        want = (k, i, f, rnd, ovf)
        if index in self.specs:
            got = self.specs[index]
            if got[:5] != want and not (FixedType(k, i, f).width == 0 and FixedType(*got[:3]).width == 0):
                self.fail(
                    f"model input element {index} is read by quantizers of different formats ({got[:5]} and "
                    f"{want}); put one hgq Quantizer layer right after the Input"
                )
            return got[5]
        t = FixedType(k, i, f) if k + i + f > 0 else FixedType(0, 0, 0)
        j = self.b.input(t)
        self.specs[index] = (*want, j)
        self.order.append(index)
        return j

    def const(self, v: float) -> int | None:
        return self.b.const(float(v))

    def linear(self, xs: list, W: np.ndarray) -> list:
        """``x @ W`` through the CMVM solver, with the float32 exactness check."""
        return self.linear_shared([xs], W)[0]

    def linear_shared(self, xss: list[list], W: np.ndarray) -> list[list]:
        """``x_p @ W`` for every vector ``x_p`` (positions of a dense/conv layer, members of a set): one CMVM
        solution shared by all of them (:meth:`GraphBuilder.cmvm_shared`), with the float32 exactness check."""
        W = np.asarray(W, dtype=np.float64)
        keep = [r for r in range(W.shape[0]) if np.any(W[r] != 0) and any(xs[r] is not None for xs in xss)]
        if not keep:
            return [[None] * W.shape[1] for _ in xss]
        W_k = W[keep]
        wm = np.abs(np.ldexp(W_k, _dyadic_f(W_k))).astype(np.int64).astype(object)
        for xs in xss:
            ivs = [self.b.iv(xs[r]) for r in keep]
            fx = max(iv.f for iv in ivs)
            mags = np.array([max(abs(iv.lo), abs(iv.hi)) << (fx - iv.f) for iv in ivs], dtype=object)
            self.warn_float(int(max((mags @ wm).max(), 1)).bit_length(), "a sum of products")
        return self.b.cmvm_shared([[xs[r] for r in keep] for xs in xss], W_k, depth_bound=self.depth_bound)

    def positions(self, x: np.ndarray, W: np.ndarray) -> np.ndarray:
        """``x @ W`` over the last axis at every leading position, one shared solution."""
        rows = [list(x[pos]) for pos in np.ndindex(x.shape[:-1])]
        return np.array(self.linear_shared(rows, W), dtype=object).reshape(*x.shape[:-1], W.shape[1])

    def add_bias(self, y: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        if bias is None:
            return y
        bias = np.broadcast_to(np.asarray(bias, dtype=np.float64), y.shape)
        out = _obj(y.shape)
        for idx in np.ndindex(y.shape):
            out[idx] = self.b.add(y[idx], self.const(bias[idx]))
            self.check_width(out[idx], "a biased sum")
        return out

    def check_width(self, j: int | None, what: str) -> None:
        if j is not None:
            iv = self.b.iv(j).normalized()
            self.warn_float(_sig_bits(iv), what)

    def act(self, y: np.ndarray, name: str) -> np.ndarray:
        if name == "linear":
            return y
        if name == "relu":
            return _map(y, self.b.relu)
        self.fail(f"activation {name!r} cannot be lowered inline; use 'relu' or a QUnaryFunctionLUT layer")

    # -- layers --------------------------------------------------------------------------------------------
    def layer_fn(self, layer, ins: list[np.ndarray]) -> list[np.ndarray]:
        from hgq import layers as hl

        self.layer = layer.name
        self.b.layer = layer.name
        if isinstance(layer, Quantizer):
            return [self.quant(ins[0], layer)]
        if isinstance(layer, hl.QEinsum):
            return [self.einsum2(layer, ins)]
        if isinstance(layer, hl.QAdd | hl.QSubtract | hl.QMultiply | hl.QMaximum | hl.QMinimum):
            return [self.merge(layer, ins)]
        if isinstance(layer, hl.QLayer):
            x = self.cooked(self.quant(ins[0], layer.iq))
            y = self.lower_q(layer, x)
            return [y if isinstance(layer, hl.QUnaryFunctionLUT) else self.quant(y, layer.oq)]
        if isinstance(layer, keras.layers.InputLayer | keras.layers.Dropout):
            return ins
        if isinstance(layer, keras.layers.Flatten):
            return [ins[0].reshape(-1)]
        if isinstance(layer, keras.layers.Reshape):
            return [ins[0].reshape(tuple(layer.target_shape))]
        if isinstance(layer, keras.layers.RepeatVector):  # (d,) -> (n, d): a set-level value to every member
            return [np.repeat(ins[0][None], int(layer.n), axis=0)]
        if isinstance(layer, keras.layers.Concatenate):
            ax = layer.axis - 1 if layer.axis > 0 else layer.axis
            return [np.concatenate(ins, axis=ax)]
        if isinstance(layer, keras.layers.ReLU):
            if layer.max_value is not None or layer.negative_slope != 0 or layer.threshold != 0:
                self.fail("only a plain ReLU (no max_value, slope or threshold) is supported")
            return [_map(self.cooked(ins[0]), self.b.relu)]
        if isinstance(layer, keras.layers.Activation):
            name = keras.activations.serialize(layer.activation)
            name = name if isinstance(name, str) else str(name)
            return [self.act(self.cooked(ins[0]), name)]
        self.fail(
            f"{type(layer).__name__} cannot be lowered; use the hgq.layers equivalents (QDense, QConv*, ...), "
            "Flatten/Reshape/Concatenate, or a ReLU"
        )

    def lower_q(self, layer, x: np.ndarray) -> np.ndarray:
        from hgq import layers as hl

        if isinstance(layer, hl.QConv1D | hl.QConv2D):
            y = self.conv(layer, x)
            return self.act(self.add_bias(y, layer.qbias), layer.activation_name)
        if isinstance(layer, hl.QEinsumDense):
            y = self.einsum(layer.equation, x, layer.qkernel, tuple(layer.full_output_shape[1:]))
            return self.act(self.add_bias(y, layer.qbias), layer.activation_name)
        if isinstance(layer, hl.QDense):  # QDenseBatchNorm too (folded kernel and bias)
            y = self.positions(x, layer.qkernel)
            return self.act(self.add_bias(y, layer.qbias), layer.activation_name)
        if isinstance(layer, hl.QBatchNormalization):
            return self.add_bias(self.positions(x, np.diag(layer.qscale)), layer.qoffset)
        if isinstance(layer, hl.QUnaryFunctionLUT):
            return self.lut(layer, x)
        if isinstance(layer, hl.QLUTDense | hl.QLUTConv1D | hl.QLUTConv2D):
            return self.lut_dense(layer, x)
        if isinstance(layer, hl.QSoftmax):
            return self.softmax(layer, x)
        if isinstance(layer, hl.QSimpleRNN | hl.QGRU | hl.QLSTM):
            return self.recurrent(layer, x)
        if isinstance(layer, hl.QMaxPooling1D | hl.QMaxPooling2D | hl.QAveragePooling1D | hl.QAveragePooling2D):
            return self.pool(layer, x)
        if isinstance(layer, hl.QGlobalMaxPooling1D | hl.QGlobalAveragePooling1D | hl.QGlobalSumPooling1D):
            return self.reduce(list(x), layer.kind)
        self.fail(f"{type(layer).__name__} has no lowering in hdl_gen.tracer")

    def merge(self, layer, ins: list[np.ndarray]) -> np.ndarray:
        from hgq import layers as hl

        xs = [self.cooked(self.quant(x, q)) for x, q in zip(ins, layer.iq, strict=True)]
        shape = np.broadcast_shapes(*(x.shape for x in xs))
        xs = [np.broadcast_to(x, shape) for x in xs]
        b = self.b
        fn = {
            hl.QAdd: b.add,
            hl.QSubtract: b.sub,
            hl.QMultiply: b.mul,
            hl.QMaximum: b.max,
            hl.QMinimum: b.min,
        }[type(layer)]
        y = _obj(shape)
        for idx in np.ndindex(shape):
            v = xs[0][idx]
            for x in xs[1:]:
                v = fn(v, x[idx])
                self.check_width(v, "a merged value")
            y[idx] = v
        return self.quant(y, layer.oq)

    def einsum2(self, layer, ins: list[np.ndarray]) -> np.ndarray:
        """Einsum of two variables: per output element, the products of its operand pairs (exact multipliers)
        summed by a balanced adder tree."""
        import itertools

        a, b = (self.cooked(self.quant(x, q)) for x, q in zip(ins, layer.iq, strict=True))
        la, lb, lo = layer.spec
        size = dict(zip(la, a.shape, strict=True)) | dict(zip(lb, b.shape, strict=True))
        summed = [c for c in dict.fromkeys(la + lb) if c not in lo]
        y = _obj(tuple(size[c] for c in lo))
        for oi in np.ndindex(y.shape):
            terms = []
            for si in itertools.product(*(range(size[c]) for c in summed)):
                at = dict(zip(lo, oi, strict=True)) | dict(zip(summed, si, strict=True))
                terms.append(self.b.mul(a[tuple(at[c] for c in la)], b[tuple(at[c] for c in lb)]))
                self.check_width(terms[-1], "a product")
            y[oi] = self.tree(terms, self.b.add) if terms else None
            self.check_width(y[oi], "a sum of products")
        return self.quant(y, layer.oq)

    def einsum(self, eq: str, x: np.ndarray, K: np.ndarray, out_shape: tuple) -> np.ndarray:
        """Einsum with a constant kernel as independent CMVMs (connected groups of outputs)."""
        n_in = x.size
        basis = np.eye(n_in).reshape(n_in, *x.shape)
        M = np.einsum(eq, basis, K).reshape(n_in, -1)
        P = np.einsum(eq, basis, np.ones_like(K)).reshape(n_in, -1) != 0  # structure, independent of zeros
        if M.shape[1] != math.prod(out_shape):
            self.fail(f"einsum {eq!r} gives {M.shape[1]} outputs, expected shape {out_shape}")
        y = np.empty(M.shape[1], dtype=object)
        xf = list(x.reshape(-1))
        groups: dict[bytes, list] = {}  # components with the same matrix (e.g. one per set member) share a solution
        for rows, cols in _components(P):
            sub = M[np.ix_(rows, cols)]
            groups.setdefault(sub.tobytes() + bytes(str(sub.shape), "ascii"), []).append((rows, cols, sub))
        for members in groups.values():
            outs = self.linear_shared([[xf[r] for r in rows] for rows, _, _ in members], members[0][2])
            for (_, cols, _), o in zip(members, outs, strict=True):
                y[cols] = np.array(o, dtype=object)
        return y.reshape(out_shape)

    def conv(self, layer, x: np.ndarray) -> np.ndarray:
        K = layer.qkernel  # (*kernel_size, c_in, filters)
        ks, st = tuple(layer.kernel_size), tuple(layer.strides)
        sp = x.shape[:-1]
        outs, pads = _windows(sp, ks, st, layer.padding)
        W = K.reshape(-1, K.shape[-1])
        patches = _obj((*outs, W.shape[0]))
        for pos in np.ndindex(*outs):
            patch = _obj((*ks, x.shape[-1]))
            for off in np.ndindex(*ks):
                src = tuple(p * s + o - pd for p, s, o, pd in zip(pos, st, off, pads, strict=True))
                if all(0 <= v < n for v, n in zip(src, sp, strict=True)):
                    patch[off] = x[src]
            patches[pos] = patch.reshape(-1)
        return self.positions(patches, W)

    def pool(self, layer, x: np.ndarray) -> np.ndarray:
        ks, st = tuple(layer.pool_size), tuple(layer.strides)
        sp = x.shape[:-1]
        outs, pads = _windows(sp, ks, st, layer.padding)
        y = _obj((*outs, x.shape[-1]))
        for pos in np.ndindex(*outs):
            vals = []
            for off in np.ndindex(*ks):
                src = tuple(p * s + o - pd for p, s, o, pd in zip(pos, st, off, pads, strict=True))
                if all(0 <= v < n for v, n in zip(src, sp, strict=True)):
                    vals.append(x[src])
            y[pos] = self.reduce(vals, layer.kind, n=math.prod(ks))
        return y

    def reduce(self, vals: list[np.ndarray], pool: str, n: int | None = None) -> np.ndarray:
        """Element-wise max, sum, or exact mean (sum then power-of-two shift) over a list of channel vectors
        (balanced trees: log2 depth)."""
        n = len(vals) if n is None else n
        out = _obj(vals[0].shape)
        for c in np.ndindex(vals[0].shape):
            v = self.tree([w[c] for w in vals], self.b.max if pool == "max" else self.b.add)
            if pool == "sum":
                self.check_width(v, "a pooled sum")
            elif pool != "max":
                if n & (n - 1):
                    self.fail(f"average over {n} values is not exact; use a power-of-two pool")
                self.check_width(v, "a pooled sum")
                v = self.b.shift(v, -(n.bit_length() - 1))
            out[c] = v
        return out

    def lut(self, layer, x: np.ndarray) -> np.ndarray:
        """Tables from the layer's own forward on every value its input op can take."""
        batch, ivs = self.enumerate(x, MAX_TABLE_VALUES, "an input", "narrow its iq")
        yv = np.asarray(ops.convert_to_numpy(layer(batch.astype(np.float32), training=False)), dtype=np.float64)
        ko, io, fo = layer.oq.kif()
        out = _obj(x.shape)
        for idx in np.ndindex(x.shape):
            col = yv[(slice(None), *idx)]
            fe = int(fo[idx])
            if idx not in ivs:
                out[idx] = self.const(col[0])
                continue
            iv = ivs[idx]
            out[idx] = self.b.lookup(x[idx], to_mantissa(col[: iv.hi - iv.lo + 1], fe), fe)
        return out

    def softmax(self, layer, x: np.ndarray) -> np.ndarray:
        """Per row: max tree, ``t = max - x``, exp table of ``-t``, sum tree, inverse table, variable products.

        ``t >= 0`` on every input, so it is narrowed to an unsigned type by a WRAP quantizer (dropping the sign
        bit: free wiring, the identity on every reachable value), halving the exp table. Tables come from the
        layer's own ``exp_table`` / ``inv_table`` on every value the wire can take; a sum below the row's
        smallest ``exp(0)`` cannot occur (the row max contributes it) and reads that sum's inverse, keeping the
        inverse table's output range tight.
        """
        rows = list(np.ndindex(x.shape[:-1]))
        n = x.shape[-1]
        t = _obj(x.shape)
        for r in rows:
            m = self.tree([x[(*r, j)] for j in range(n)], self.b.max)
            for j in range(n):
                v = self.b.sub(m, x[(*r, j)])
                iv = self.b.iv(v)
                t[(*r, j)] = self.b.quantize(v, 0, max(iv.hi, 0).bit_length() - iv.f, iv.f, "TRN", "WRAP")
        e0 = layer.exp_table(np.zeros((1, *x.shape)))[0]  # exp_q(0) per element: the row max's exp
        e = self.tables(t, lambda v: layer.exp_table(-v), layer.exp_oq.kif()[2], "max(x) - x")
        s = _obj((*x.shape[:-1], 1))
        floor = np.empty(s.shape)
        for r in rows:
            s[(*r, 0)] = self.tree([e[(*r, j)] for j in range(n)], self.b.add)
            self.check_width(s[(*r, 0)], "the sum of exponentials")
            floor[(*r, 0)] = e0[r].min()
        inv = self.tables(s, lambda v: layer.inv_table(np.maximum(v, floor)), layer.inv_oq.kif()[2], "the exp sum")
        y = _obj(x.shape)
        for r in rows:
            for j in range(n):
                y[(*r, j)] = self.b.mul(e[(*r, j)], inv[(*r, 0)])
                self.check_width(y[(*r, j)], "exp times inverse sum")
        return y

    def recurrent(self, layer, x: np.ndarray) -> np.ndarray:
        """A recurrent layer unrolled in time: the input products of every step share one CMVM solution, the
        recurrent product is solved for the state's formats (the same every step, so solved once), each gate is a
        table of its quantized pre-activation (the layer's own ``gate_table``), products are exact multipliers."""
        xw = [self.add_bias(np.array(v, dtype=object), layer.qbias) for v in self.linear_shared(list(x), layer.qkernel)]
        h, c = _obj((layer.units,)), _obj((layer.units,))
        outs = []
        for t in range(x.shape[0]):
            h, c = self.cell(layer, xw[t], h, c)
            outs.append(h)
        return np.stack(outs) if layer.return_sequences else outs[-1]

    def cell(self, layer, xw: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step of a recurrent cell: ``xw`` = ``x_t W + b`` (ops), states ``h``, ``c`` -> the new states."""
        from hgq import layers as hl

        u, b = layer.units, self.b

        def gate(j: int, z: np.ndarray) -> np.ndarray:
            pre = self.quant(z, layer.pq[j])
            f_out = layer.gate_quantizer(j).kif()[2]
            name = layer.GATES[j][0]
            return self.tables(pre, lambda v: layer.gate_table(j, v), f_out, f"gate {name!r}'s pre-activation",
                               hint=f"narrow pq_{name} (fewer integer or fractional bits)", kind="a table")  # fmt: skip

        def ew(fn, a: np.ndarray, d: np.ndarray, what: str) -> np.ndarray:
            out = _obj(a.shape)
            for k in range(a.size):
                out[k] = fn(a[k], d[k])
                self.check_width(out[k], what)
            return out

        hu = np.array(self.linear(list(h), layer.qrecurrent), dtype=object)
        parts = [slice(j * u, (j + 1) * u) for j in range(layer.n_gates)]
        if isinstance(layer, hl.QSimpleRNN):
            return gate(0, ew(b.add, xw, hu, "a pre-activation")), c
        if isinstance(layer, hl.QGRU):
            xz, xr, xn = (xw[p] for p in parts)
            hz, hr, hn = (hu[p] for p in parts)
            z = gate(0, ew(b.add, xz, hz, "a pre-activation"))
            r = gate(1, ew(b.add, xr, hr, "a pre-activation"))
            rn = ew(b.mul, r, self.add_bias(hn, layer.qbias_hn), "the reset product")
            n = gate(2, ew(b.add, xn, rn, "a pre-activation"))
            new = ew(b.add, n, ew(b.mul, z, ew(b.sub, h, n, "h - n"), "z (h - n)"), "the new state")
            return self.quant(new, layer.sq), c
        zs = [ew(b.add, xw[p], hu[p], "a pre-activation") for p in parts]
        i, f, g, o = (gate(j, zs[j]) for j in range(4))
        c = self.quant(ew(b.add, ew(b.mul, f, c, "f c"), ew(b.mul, i, g, "i g"), "the cell sum"), layer.cq)
        return self.quant(ew(b.mul, o, gate(4, c), "o tanh(c)"), layer.sq), c

    def tables(
        self,
        x: np.ndarray,
        fn,
        f_out: np.ndarray,
        what: str,
        hint: str = "narrow the input quantizer (fewer integer or fractional bits) or the exp quantizer",
        kind: str = "a softmax table",
    ) -> np.ndarray:
        """Element-wise lookup ``fn`` (batched like ``x``, float64 out) over every value each wire can take."""
        batch, ivs = self.enumerate(x, MAX_SOFTMAX_TABLE, what, hint, kind=kind)
        yv = fn(batch)
        out = _obj(x.shape)
        for idx in np.ndindex(x.shape):
            col, fe = yv[(slice(None), *idx)], int(f_out[idx])
            if idx not in ivs:
                out[idx] = self.const(col[0])
                continue
            out[idx] = self.b.lookup(x[idx], to_mantissa(col[: ivs[idx].hi - ivs[idx].lo + 1], fe), fe)
        return out

    def enumerate(
        self, x: np.ndarray, limit: int, what: str, hint: str, kind: str = "a lookup table"
    ) -> tuple[np.ndarray, dict]:
        """A float64 batch ``(size, *x.shape)`` whose column ``idx`` runs over every value wire ``x[idx]`` can take
        (padded by repetition; 0 where the wire is pruned), and the live wires' intervals."""
        ivs = {idx: self.b.iv(x[idx]) for idx in np.ndindex(x.shape) if x[idx] is not None}
        size = max((iv.hi - iv.lo + 1 for iv in ivs.values()), default=1)
        if size > limit:
            self.fail(f"{what} takes {size} values; {kind} allows {limit}; {hint}")
        batch = np.zeros((size, *x.shape), dtype=np.float64)
        for idx, iv in ivs.items():
            batch[(slice(None), *idx)] = from_mantissa(np.minimum(np.arange(iv.lo, iv.lo + size), iv.hi), iv.f)
        return batch, ivs

    def lut_dense(self, layer, x: np.ndarray) -> np.ndarray:
        """LUT-dense / LUT-conv: per position, each input drops the low bits its tables do not read (a TRN
        quantize: wiring), each live edge reads a table (the layer's ``edge_tables`` on every value that input can
        take), each output is the adder tree (a CMVM of ones) of its tables plus the constant edges."""
        from hgq import layers as hl

        if isinstance(layer, hl.QLUTDense):
            out_sp = x.shape[:-1]
            rows = [x[pos] for pos in np.ndindex(out_sp)]
        else:
            win, flat = layer.windows(x.shape[:-1]), x.reshape(-1, x.shape[-1])
            out_sp = tuple(layer.compute_output_shape((None, *x.shape))[1:-1])
            rows = []
            for w in win:
                patch = _obj((len(w), x.shape[-1]))
                for r, src in enumerate(w):
                    if src >= 0:
                        patch[r] = flat[src]
                rows.append(patch.reshape(-1))
        reads = layer.read_fractional_bits()  # (P, n_in)
        edge_reads = layer.edge_read_fractional_bits()  # (P, n_in, units): <= reads
        fo = layer.eoq.kif()[2]  # (n_in, units)
        y = _obj((*out_sp, layer.units))
        for p, (pos, xs) in enumerate(zip(np.ndindex(out_sp), rows, strict=True)):
            e = _obj(xs.shape)
            for j, v in enumerate(xs):
                if v is not None:
                    e[j] = self.truncate(v, int(reads[p, j]))
            batch, ivs = self.enumerate(e, MAX_TABLE_VALUES, "an input", "narrow the layer's iq")
            t = layer.edge_tables(batch, p)  # (size, n_in, units)
            for o in range(layer.units):
                edges, live, const = [], [], 0.0
                for j in range(len(xs)):
                    iv = ivs.get((j,))
                    col = t[:, j, o] if iv is None else t[: iv.hi - iv.lo + 1, j, o]
                    if iv is None or np.all(col == col[0]):
                        const += col[0]
                        continue
                    a = e[j]
                    if edge_reads[p, j, o] < reads[p, j]:  # the edge reads fewer bits: its table over the
                        a = self.truncate(e[j], int(edge_reads[p, j, o]))  # coarser wire, each value the floor
                        ia = self.b.iv(a)  # of those it covers; both wires on their own grids (a wire keeps the
                        drop = iv.f - ia.f  # coarsest grid holding its values, not the read bits)
                        col = col[np.clip((np.arange(ia.lo, ia.hi + 1) << drop) - iv.lo, 0, iv.hi - iv.lo)]
                    entry = (a, to_mantissa(col, int(fo[j, o])), int(fo[j, o]))
                    if self.table_inputs > 0:
                        edges.append(entry)  # looked up below, pairs merged
                    else:
                        live.append(self.b.lookup(*entry))
                live += self.table_sum_lookups(edges)
                s = self.linear(live, np.ones((len(live), 1)))[0] if live else None
                y[(*pos, o)] = self.add_bias(np.array([s], dtype=object), np.array([const]))[0]
        return y

    def table_sum_lookups(self, edges: list[tuple[int, np.ndarray, int]]) -> list[int]:
        """Lookups whose sum is ``Σ table(wire)`` over ``edges`` (wire, output mantissas over its values, f).

        Tables of one wire become one table. Tables of two wires whose widths together fit a LUT
        (``table_inputs`` address bits) become one table of both (its entries the exact sums): that LUT level
        replaces two narrower tables and the adder between them. Pairs are chosen to be as many as possible
        (narrowest with the widest that still fits, deterministic)."""
        by_wire: dict[int, tuple[np.ndarray, int]] = {}
        for a, col, f in edges:
            if a in by_wire:
                col, f = _add_tables(by_wire[a], (col, f), outer=False)
            by_wire[a] = (col, f)
        wires = sorted(by_wire, key=lambda a: (self.b.iv(a).width, a))
        groups, lo, hi = [], 0, len(wires) - 1
        while lo <= hi:
            if lo < hi and self.b.iv(wires[lo]).width + self.b.iv(wires[hi]).width <= self.table_inputs:
                groups.append((wires[hi], wires[lo]))
                lo += 1
            else:
                groups.append((wires[hi],))
            hi -= 1
        out = []
        for g in sorted(groups):
            col, f = by_wire[g[0]]
            if len(g) == 2:
                col, f = _add_tables((col, f), by_wire[g[1]], outer=True)
            out.append(self.b.lookup(g if len(g) == 2 else g[0], col, f))
        return out

    def truncate(self, v, r: int):
        """Wire ``v`` with the bits below ``2**-r`` dropped (TRN: wiring; its type holds every value, so no wrap)."""
        t = self.b.iv(v).type
        return self.b.quantize(v, 1, max(t.i, -r) + 1, r, "TRN", "WRAP")

    def tree(self, vals: list, fn):
        """Balanced reduction (adder depth log2 n)."""
        while len(vals) > 1:
            vals = [fn(vals[j], vals[j + 1]) if j + 1 < len(vals) else vals[j] for j in range(0, len(vals), 2)]
        return vals[0]


def _add_tables(t1: tuple[np.ndarray, int], t2: tuple[np.ndarray, int], outer: bool) -> tuple[np.ndarray, int]:
    """Exact sum of two tables of output mantissas ``(col, f)``: entry by entry (same wire) or, ``outer``, every
    pair of entries row-major (a table of two wires, the first the row)."""
    (c1, f1), (c2, f2) = t1, t2
    f = max(f1, f2)
    c1, c2 = np.asarray(c1, dtype=object) * (1 << (f - f1)), np.asarray(c2, dtype=object) * (1 << (f - f2))
    return (np.add.outer(c1, c2).ravel() if outer else c1 + c2), f


def _map(x: np.ndarray, fn) -> np.ndarray:
    out = _obj(x.shape)
    for idx in np.ndindex(x.shape):
        out[idx] = fn(x[idx])
    return out


def _sig_bits(iv: Interval) -> int:
    return max(abs(iv.lo), abs(iv.hi)).bit_length()


def _dyadic_f(W: np.ndarray) -> int:
    f = 0
    while not np.all(np.ldexp(W, f) == np.round(np.ldexp(W, f))):
        f += 1
        if f > 60:
            raise TraceError("a constant matrix is not dyadic within 60 fractional bits; quantize the weights")
    return f


def _windows(sp, ks, st, padding: str):
    """Output sizes and leading pads of a sliding window (Keras 'valid' / 'same')."""
    outs, pads = [], []
    for n, k, s in zip(sp, ks, st, strict=True):
        if padding == "same":
            o = -(-n // s)
            pads.append(max((o - 1) * s + k - n, 0) // 2)
        else:
            o = (n - k) // s + 1
            pads.append(0)
        outs.append(o)
    return tuple(outs), tuple(pads)


def _components(P: np.ndarray) -> list[tuple[list[int], list[int]]]:
    """Connected groups (input rows, output columns) of a bipartite structure matrix, in column order."""
    n_in, n_out = P.shape
    parent = list(range(n_out))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for r in range(n_in):
        cs = np.nonzero(P[r])[0]
        for c in cs[1:]:
            ra, rb = find(int(cs[0])), find(int(c))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for c in range(n_out):
        groups.setdefault(find(c), []).append(c)
    out = []
    for cols in groups.values():
        rows = [r for r in range(n_in) if P[r, cols].any()]
        out.append((rows, cols))
    return out


def _functional(model: keras.Model):
    if isinstance(model, keras.Sequential):
        f = getattr(model, "_functional", None)
        if f is None:
            raise TraceError(
                f"model {model.name!r}: a Sequential model must be built with an input shape "
                "(keras.Input as first layer) before tracing"
            )
        return f
    if not hasattr(model, "_nodes_by_depth"):
        raise TraceError(f"model {model.name!r}: only Sequential and functional Keras models can be traced")
    return model


def _check_calibrated(model: keras.Model) -> None:
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, Quantizer) and not layer.calibrated:
            raise TraceError(
                f"quantizer {layer.path!r} is a WRAP activation quantizer that was not calibrated; "
                "run hgq.calibrate.trace_minmax(model, x) first"
            )


def trace(
    model: keras.Model, *, depth_bound: int | str | None = "min", name: str | None = None, table_inputs: int = 6
) -> Graph:
    """Lower a calibrated hgq Keras model to an exact :class:`Graph`.

    Args:
        model: a Sequential or functional Keras model of :mod:`hgq.layers`, calibrated with
            :func:`hgq.trace_minmax`. A model with several inputs (or outputs) gets one input (output) port: the
            concatenation of its inputs (outputs) flattened, in model order (:func:`flatten_io`).
        depth_bound: adder-depth bound passed to the CMVM solver (None, an int, ``"min"`` or ``"min+K"``).
        name: graph name (default: the model's name).
        table_inputs: most address bits of a table that sums two tables of a LUT layer's output (one LUT
            level: the target's LUT inputs; 0 keeps every table apart).

    Returns:
        the graph; its input ports have the formats of the quantizers that read the model input.
    """
    _check_calibrated(model)
    fm = _functional(model)
    t = _Tracer(model, depth_bound, name or model.name, table_inputs)
    in_shapes = [tuple(int(s) for s in v.shape[1:]) for v in fm.inputs]
    n_in = sum(math.prod(s) for s in in_shapes)
    x0 = np.empty(n_in, dtype=object)
    for j in range(n_in):
        x0[j] = _Raw(j)
    values, start = {}, 0
    for v, shape in zip(fm.inputs, in_shapes, strict=True):  # several inputs: one port, their flat concatenation
        values[id(v)] = x0[start : start + math.prod(shape)].reshape(shape)
        start += math.prod(shape)
    y = _walk(t, fm, values)
    for j in range(n_in):  # elements no quantizer reads: pruned ports
        if j not in t.specs:
            t.port(j, 0, 0, 0, "TRN", "WRAP")
    g = t.b.build(list(y.reshape(-1)), in_shapes[0] if len(in_shapes) == 1 else (n_in,), y.shape)
    g = _reorder_inputs(g, t.order)
    _INPUT_SPECS[model] = [t.specs[j][:5] for j in range(n_in)]
    return g


def _walk(t: _Tracer, fm, values: dict, skip: tuple = ()) -> np.ndarray:
    """Lower every node whose inputs are known (``values``: tensor id -> op array), except the layers in
    ``skip``; returns the model outputs (several: flattened and concatenated)."""
    for depth in sorted(fm._nodes_by_depth, reverse=True):
        for node in fm._nodes_by_depth[depth]:
            if node.is_input or node.operation is None or node.operation in skip:
                continue
            if any(id(v) not in values for v in node.input_tensors):
                continue
            ins = [values[id(v)] for v in node.input_tensors]
            outs = t.layer_fn(node.operation, ins)
            for kt, v in zip(node.outputs, outs, strict=True):
                values[id(kt)] = v
    missing = [v.name for v in fm.outputs if id(v) not in values]
    if missing:
        raise TraceError(f"model {fm.name!r}: outputs {missing} do not depend on the traced inputs")
    ys = [values[id(v)] for v in fm.outputs]
    t.layer = "output"
    for y, v in zip(ys, fm.outputs, strict=True):
        t.cooked(y)
        if y.shape != tuple(int(s) for s in v.shape[1:]):
            raise TraceError(f"internal: traced output shape {y.shape} differs from the model's {v.shape[1:]}")
    return ys[0] if len(ys) == 1 else np.concatenate([v.reshape(-1) for v in ys])


def _kif_types(q: Quantizer, shape) -> np.ndarray:
    """The formats ``q`` gives a tensor of per-sample ``shape`` (object array of FixedType; width 0 = pruned)."""
    k, i, f = (np.broadcast_to(a, shape) for a in q.kif())
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        t = FixedType(int(k[idx]), int(i[idx]), int(f[idx]))
        out[idx] = t if t.width > 0 else FixedType(0, 0, 0)
    return out


def _hull(types) -> FixedType:
    """The narrowest format holding every value of each format in ``types``."""
    ivs = [t.interval for t in types if t.width > 0]
    if not ivs:
        return FixedType(0, 0, 0)
    iv = ivs[0]
    for v in ivs[1:]:
        iv = iv.union(v)
    return iv.type


def trace_recurrent(model: keras.Model, *, depth_bound: int | str | None = "min", name: str | None = None):
    """Split a model around its recurrent layer for the reused-cell form: ``(layer, cell, head)``.

    ``cell``: one step, inputs ``[x_t (features, each in the hull of its per-step formats), h, (c)]`` (the
    states in their quantizers' formats), outputs ``[h', (c')]``. ``head``: the rest of the model, its input the
    last ``h`` in the state format. The model input must feed the recurrent layer directly (its input quantizer
    gives the port formats), and the layer must return its last state only.
    """
    from hgq import layers as hl

    _check_calibrated(model)
    fm = _functional(model)
    rec = [ly for ly in model._flatten_layers(include_self=False) if isinstance(ly, hl.QSimpleRNN | hl.QGRU | hl.QLSTM)]
    if len(rec) != 1:
        raise TraceError(f"model {model.name!r} has {len(rec)} recurrent layers; the reused-cell form needs exactly 1")
    layer = rec[0]
    node = next(n for d in fm._nodes_by_depth.values() for n in d if n.operation is layer)
    if len(fm.inputs) != 1 or node.input_tensors[0] is not fm.inputs[0]:
        raise TraceError(
            f"layer {layer.name!r}: the reused-cell form needs the recurrent layer to read the (single) model "
            "input directly; move per-step layers after it, or use the unrolled form"
        )
    if layer.return_sequences:
        raise TraceError(f"layer {layer.name!r}: the reused-cell form needs return_sequences=False")
    steps, feats = (int(s) for s in fm.inputs[0].shape[1:])
    base = name or model.name
    # the cell: one step on hull-typed inputs and state-typed states
    t = _Tracer(model, depth_bound, f"{base}_cell")
    t.layer = t.b.layer = layer.name
    xt = _kif_types(layer.iq, (steps, feats))
    x = np.array([t.b.input(_hull(xt[:, f])) for f in range(feats)], dtype=object)
    h = np.array([t.b.input(v) for v in _kif_types(layer.sq, (layer.units,))], dtype=object)
    lstm = isinstance(layer, hl.QLSTM)
    c = np.array([t.b.input(v) for v in _kif_types(layer.cq, (layer.units,))] if lstm else [None] * layer.units)
    xw = t.add_bias(np.array(t.linear(list(x), layer.qkernel), dtype=object), layer.qbias)
    h2, c2 = t.cell(layer, xw, h, c)
    outs = [*h2, *c2] if lstm else list(h2)
    n_cell_in = feats + layer.units * (2 if lstm else 1)
    cell = t.b.build(outs, (n_cell_in,), (len(outs),))
    # the head: the rest of the model on the last state
    th = _Tracer(model, depth_bound, f"{base}_head")
    hh = np.array([th.b.input(v) for v in _kif_types(layer.sq, (layer.units,))], dtype=object)
    y = _walk(th, fm, {id(node.outputs[0]): hh}, skip=(layer,))
    head = th.b.build(list(y.reshape(-1)), (layer.units,), y.shape)
    return layer, cell, head


def _reorder_inputs(g: Graph, order: list[int]) -> Graph:
    """Renumber input ports so port ``order[p]`` (creation order ``p``) becomes flat model index ``order[p]``."""
    if order == sorted(order):
        return g
    from .ir import Op

    ops = tuple(
        Op(op.kind, op.args, op.kind.attrs([order[op.attrs.index]]), op.interval, op.layer) if op.kind.port else op
        for op in g.ops
    )
    inputs: list = [None] * len(order)
    types: list = [None] * len(order)
    for p, j in enumerate(order):
        inputs[j], types[j] = g.inputs[p], g.input_types[p]
    return Graph(ops, tuple(inputs), tuple(types), g.outputs, g.input_shape, g.output_shape, g.blocks, g.name)


def flatten_io(x) -> np.ndarray:
    """One array ``[N, ...]`` for the port of a model with several inputs or outputs: a list of arrays is
    flattened per sample and concatenated in order (what :func:`trace` makes the port); an array passes through."""
    if isinstance(x, list | tuple):
        parts = [np.asarray(v, dtype=np.float64) for v in x]
        if len({len(v) for v in parts}) != 1:
            raise ValueError(f"flatten_io: the arrays hold different sample counts {[len(v) for v in parts]}")
        return np.concatenate([v.reshape(len(v), -1) for v in parts], axis=1)
    return np.asarray(x, dtype=np.float64)


def quantize_input(model: keras.Model, x) -> np.ndarray:
    """``x`` quantized by the quantizers that read the model input (the graph's input port values), float64.

    ``x`` is the model's input array, or for a model with several inputs the list of them (the result is then
    flat, ``[N, total elements]``, as the graph's port)."""
    if model not in _INPUT_SPECS:
        trace(model)
    specs = _INPUT_SPECS[model]
    x = flatten_io(x)
    flat = x.reshape(x.shape[0], -1)
    if flat.shape[1] != len(specs):
        raise ValueError(f"quantize_input: the model takes {len(specs)} input elements, got shape {x.shape}")
    k, i, f = (np.array([s[n] for s in specs], dtype=np.int64) for n in range(3))
    out = np.empty_like(flat)
    for rnd, ovf in sorted({s[3:5] for s in specs}):
        sel = np.array([s[3:5] == (rnd, ovf) for s in specs])
        out[:, sel] = quantize(flat[:, sel], k[sel], i[sel], f[sel], rnd, ovf)
    return out.reshape(x.shape)
