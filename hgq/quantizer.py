"""Trainable fixed-point quantizer: per-element (or per-channel / per-tensor) learned ``(k, i, f)``.

``q = Q(x; k, i, f)``: round ``x * 2**f`` to an integer mantissa ``m`` (round mode), apply overflow (WRAP,
SAT, SAT_SYM) to ``W = k + i + f`` bits, return ``m * 2**-f`` (0 where ``W <= 0``). At inference
(``training=False``) this equals :func:`hgq.fixed.quantize` bit for bit (WRAP included). In training WRAP is
not applied (activation integer bits track the data instead), rounding is a straight-through estimator and the
widths are float variables rounded with an STE, so ``dq/df = ln2 * (x - q)`` and, for SAT/SAT_SYM,
``dq/di = ln2 * 2**i`` on clipped elements.

Two parameterisations (HGQ, Sun et al., arXiv:2405.00645):

- ``kif``: trainable ``i`` (not under WRAP) and ``f``; ``bits = relu(i + f)``.
- ``kbi``: trainable ``b`` (magnitude bits, excluding sign) and ``i`` (not under WRAP); ``f = b - i``.

``k`` (sign bit) is never trained. An element whose magnitude width ``i + f`` is ``<= 0`` is pruned: its
effective ``k`` is 0 and its value is 0 (``kif()`` reports ``k=0, i=-f``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from hgq.fixed import check_overflow_mode, check_round_mode

__all__ = ["HOLD_CONF", "Clip", "Quantizer", "exact_kif", "hold_exactly", "round_mantissa", "ste_round"]

LN2 = math.log(2.0)

DEFAULTS: dict[str, dict] = {
    "weight": dict(q_type="kbi", k0=1, b0=8, i0=2, round_mode="RND", overflow_mode="SAT_SYM", granularity="element"),
    "bias": dict(q_type="kbi", k0=1, b0=8, i0=2, round_mode="RND", overflow_mode="WRAP", granularity="element"),
    "activation": dict(q_type="kif", k0=1, i0=2, f0=6, round_mode="RND", overflow_mode="WRAP", granularity="element"),
    "table": dict(q_type="kbi", k0=1, b0=8, i0=2, round_mode="RND", overflow_mode="SAT_SYM", granularity="tensor"),
}


def ste_round(x):
    """Round half to even in the forward pass, identity gradient (``np.round`` semantics on the value)."""
    return x + ops.stop_gradient(ops.round(x) - x)


def round_mantissa(y, mode: str):
    """Integer mantissa from ``y = x * 2**f`` with exactly :mod:`hgq.fixed`'s rounding decisions (float, exact)."""
    fl = ops.floor(y)
    if mode == "TRN":
        return fl
    r = y - fl  # exact (Sterbenz)
    neg, has = y < 0, r > 0
    above, tie = r > 0.5, r == 0.5
    if mode == "TRN_ZERO":
        up = ops.logical_and(neg, has)
    elif mode == "RND":
        up = r >= 0.5
    elif mode == "RND_CONV":
        odd = (fl - 2.0 * ops.floor(fl * 0.5)) != 0
        up = ops.logical_or(above, ops.logical_and(tie, odd))
    elif mode == "RND_ZERO":
        up = ops.logical_or(above, ops.logical_and(tie, neg))
    elif mode == "RND_INF":
        up = ops.logical_or(above, ops.logical_and(tie, ops.logical_not(neg)))
    elif mode == "RND_MIN_INF":
        up = above
    else:
        raise ValueError(f"round mode {mode!r} is not valid")
    return fl + ops.cast(up, y.dtype)


def _unbroadcast(g, shape):
    """Sum ``g`` over the axes where ``shape`` (same rank) is 1 and ``g`` is not: the gradient of a broadcast."""
    axes = tuple(a for a, (n, m) in enumerate(zip(shape, g.shape, strict=True)) if n == 1 and m != 1)
    return ops.sum(g, axis=axes, keepdims=True) if axes else g


@functools.cache
def _ste_quantizer(clip: str | None, round_mode: str):
    """The training forward ``q = alive · R(clip(x)·2**f)·2**-f`` as one op with HGQ's surrogate gradients.

    Equal in value and gradient (up to float summation order) to straight-through rounding written with
    ``stop_gradient``, but computed in one pass forward and one backward, which is most of a training step's
    quantizer time. ``clip``: None (WRAP: no clipping in training), ``"SAT"`` or ``"SAT_SYM"``. Gradients
    (``f``, ``i``, ``k`` broadcast against ``x``; ``alive`` and ``k`` get none):

    - ``dq/dx = 1`` where ``x`` is inside the clip range, else 0 (pruned elements included: straight through);
    - ``dq/df = ln2·(xc − q)``, plus ``ln2·2**-f`` through the clip bound ``hi = 2**i − 2**-f`` (and through
      ``lo = −k·hi`` for SAT_SYM) on clipped elements;
    - ``dq/di = ln2·2**i`` through ``hi`` (``lo = −k·2**i`` for SAT, ``−k·hi`` for SAT_SYM) on clipped elements.
    """

    @ops.custom_gradient
    def quantize(x, f, i, k, alive):
        scale = ops.power(2.0, f)
        step = 1.0 / scale
        if clip is not None:
            p2i = ops.power(2.0, i)
            hi = p2i - step
            lo = -k * p2i if clip == "SAT" else -k * hi
            over, under = x > hi, x < lo
            xc = ops.where(over, hi, ops.where(under, lo, x))
        else:
            xc = x
        q = round_mantissa(xc * scale, round_mode) * step

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            g = upstream
            gf = g * (LN2 * (xc - q))
            if clip is None:
                dx, gi = g, None
            else:
                inside = ops.logical_not(ops.logical_or(over, under))
                dx = ops.where(inside, g, ops.zeros_like(g))
                g_hi = ops.where(over, g, ops.zeros_like(g))
                g_lo = ops.where(ops.logical_and(under, ops.logical_not(over)), g, ops.zeros_like(g))
                if clip == "SAT":  # lo = -k·2**i
                    gf = gf + g_hi * (LN2 * step)
                    gi = (g_hi - g_lo * k) * (LN2 * p2i)
                else:  # lo = -k·hi
                    g_b = g_hi - g_lo * k
                    gf = gf + g_b * (LN2 * step)
                    gi = g_b * (LN2 * p2i)
            di = ops.zeros_like(i) if gi is None else _unbroadcast(gi, i.shape)
            return dx, _unbroadcast(gf, f.shape), di, ops.zeros_like(k), ops.zeros_like(alive)

        return q * alive, grad

    return quantize


@keras.saving.register_keras_serializable(package="hgq")
class Clip(keras.constraints.Constraint):
    """Clip a variable into ``[lo, hi]`` after each optimizer step."""

    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = float(lo), float(hi)

    def __call__(self, w):
        return ops.clip(w, self.lo, self.hi)

    def get_config(self) -> dict:
        return {"lo": self.lo, "hi": self.hi}


def _norm_axes(axes: Sequence[int], ndim: int) -> tuple[int, ...]:
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for a tensor of rank {ndim}")
        out.append(a % ndim)
    return tuple(sorted(set(out)))


@keras.saving.register_keras_serializable(package="hgq")
class Quantizer(keras.layers.Layer):
    """Trainable fixed-point quantizer ``q = m * 2**-f``, ``m = overflow(round(x * 2**f))`` with learned widths.

    Usable inside Q-layers (input/output/weight quantizers) or standalone as a layer on an activation.

    Args:
        q_type: ``"kif"`` (train ``i``, ``f``) or ``"kbi"`` (train ``b``, ``i``; ``f = b - i``).
        place: ``"activation"`` (axis 0 is the batch and always shares widths), ``"weight"``, ``"bias"``,
            or ``"table"`` (the last three quantize constants; no batch axis). Only ``place`` fills defaults.
        k0, i0, f0, b0: initial sign bit, integer bits, fractional bits (kif), magnitude bits (kbi).
        round_mode: one of :data:`hgq.fixed.ROUND_MODES`.
        overflow_mode: ``"WRAP"``, ``"SAT"`` or ``"SAT_SYM"``. WRAP is applied at inference only; in training
            ``i`` follows the data (activations: running ``max|x|`` with ``i_decay`` per step; constants: exact).
        granularity: ``"element"``, ``"channel"`` (widths per last axis) or ``"tensor"``.
        homogeneous_axes: axes sharing one width (overrides ``granularity``; axes of the full tensor).
        b_range, i_range, f_range: clip bounds of the width variables.
        i_decay: how fast a WRAP activation's ``i`` drifts down per training step.
        regularizer: optional regularizer on the bit variable (``f`` for kif, ``b`` for kbi), e.g. MonoL1.
        trainable_widths: set False to freeze the widths.
    """

    def __init__(
        self,
        q_type: str | None = None,
        place: str = "activation",
        k0: int | None = None,
        i0: float | None = None,
        f0: float | None = None,
        b0: float | None = None,
        round_mode: str | None = None,
        overflow_mode: str | None = None,
        granularity: str | None = None,
        homogeneous_axes: Sequence[int] | None = None,
        b_range: tuple[float, float] = (0.0, 23.0),
        i_range: tuple[float, float] = (-23.0, 23.0),
        f_range: tuple[float, float] = (-24.0, 24.0),
        i_decay: float = 0.01,
        regularizer=None,
        trainable_widths: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if place not in DEFAULTS:
            raise ValueError(f"place {place!r} is not valid; expected one of {', '.join(DEFAULTS)}")
        d = DEFAULTS[place]
        self.place = place
        self.q_type = q_type if q_type is not None else d["q_type"]
        if self.q_type not in ("kif", "kbi"):
            raise ValueError(f"q_type {self.q_type!r} is not valid; expected 'kif' or 'kbi'")
        self.k0 = int(k0 if k0 is not None else d["k0"])
        if self.k0 not in (0, 1):
            raise ValueError(f"k0 must be 0 or 1, got {k0!r}")
        self.i0 = float(i0 if i0 is not None else d["i0"])
        self.f0 = float(f0 if f0 is not None else d.get("f0", 6))
        self.b0 = float(b0 if b0 is not None else d.get("b0", 8))
        self.round_mode = check_round_mode(round_mode if round_mode is not None else d["round_mode"])
        self.overflow_mode = check_overflow_mode(overflow_mode if overflow_mode is not None else d["overflow_mode"])
        self.granularity = granularity if granularity is not None else d["granularity"]
        if self.granularity not in ("element", "channel", "tensor"):
            raise ValueError(f"granularity {self.granularity!r} is not valid; use 'element', 'channel' or 'tensor'")
        self.homogeneous_axes = None if homogeneous_axes is None else tuple(int(a) for a in homogeneous_axes)
        self.b_range, self.i_range, self.f_range = tuple(b_range), tuple(i_range), tuple(f_range)
        self.i_decay = float(i_decay)
        self.regularizer = keras.regularizers.get(regularizer)
        self.trainable_widths = bool(trainable_widths)
        self._source = None  # callable returning the constant tensor this quantizer quantizes (weights)
        self._cal = None  # calibration statistics (trace_minmax), python-side

    # -- state ---------------------------------------------------------------------------------------------
    @property
    def is_activation(self) -> bool:
        return self.place == "activation"

    @property
    def wrap(self) -> bool:
        return self.overflow_mode == "WRAP"

    def build(self, input_shape):
        shape = tuple(input_shape)
        nd = len(shape)
        if self.homogeneous_axes is not None:
            hom = set(_norm_axes(self.homogeneous_axes, nd))
        elif self.granularity == "element":
            hom = set()
        elif self.granularity == "channel":
            hom = set(range(nd - 1))
        else:
            hom = set(range(nd))
        if self.is_activation:
            if nd < 1:
                raise ValueError(f"activation quantizer {self.name!r} needs a batch axis, got shape {shape}")
            hom.add(0)
        self._hom_axes = tuple(sorted(hom))
        self._full_shape = shape
        wshape = tuple(1 if a in hom else int(s) for a, s in enumerate(shape))
        if any(s is None for s in wshape):
            raise ValueError(f"quantizer {self.name!r}: axis with unknown size in {shape} must share widths")
        self._wshape = wshape
        tw = self.trainable_widths
        self.k = self.add_weight(
            name="k", shape=wshape, initializer=keras.initializers.Constant(self.k0), trainable=False
        )
        self.i = self.add_weight(
            name="i",
            shape=wshape,
            initializer=keras.initializers.Constant(self.i0),
            trainable=tw and not self.wrap,
            constraint=Clip(*self.i_range),
        )
        bname, binit, brange = ("f", self.f0, self.f_range) if self.q_type == "kif" else ("b", self.b0, self.b_range)
        self.bvar = self.add_weight(
            name=bname,
            shape=wshape,
            initializer=keras.initializers.Constant(binit),
            trainable=tw,
            constraint=Clip(*brange),
            regularizer=self.regularizer,
        )
        self._calibrated = self.add_weight(
            name="calibrated", shape=(), initializer=keras.initializers.Constant(0.0), trainable=False
        )
        super().build(input_shape)

    # -- widths --------------------------------------------------------------------------------------------
    def _data_i(self, x, f, b):
        """Smallest integer bits holding ``x`` (max over shared axes), from HGQ's formulas (arXiv:2405.00645)."""
        ax = self._hom_axes
        if self.q_type == "kif":
            q0 = round_mantissa(x * ops.power(2.0, f), self.round_mode) * ops.power(2.0, -f)
            amax = ops.max(ops.abs(q0), axis=ax, keepdims=True) if ax else ops.abs(q0)
            imin = ops.ceil(ops.log2(amax + ops.power(2.0, -f)))
        else:
            amax = ops.max(ops.abs(x), axis=ax, keepdims=True) if ax else ops.abs(x)
            denom = 1.0 - ops.power(2.0, -ops.maximum(b, 1.0))
            imin = ops.ceil(ops.log2(ops.maximum(amax, 1e-30) / denom))
        return ops.clip(ops.stop_gradient(imin), self.i_range[0], self.i_range[1])

    def _widths(self, training: bool, x=None):
        """``(k, i, f, bits)`` as float tensors of the width shape; STE-rounded in training."""
        rnd = ste_round if training else ops.round
        bv = rnd(self.bvar)
        i = rnd(self.i)
        if self.wrap and not self.is_activation and self._source is not None:
            src = self._source() if x is None else x
            i = self._data_i(src, bv, bv) if self.q_type == "kif" else self._data_i(src, None, bv)
        if self.q_type == "kif":
            f = bv
            bits = ops.relu(i + f)
        else:
            bits = bv + ops.stop_gradient(ops.relu(bv) - bv)  # value relu(b); gradient 1 at b = 0 too
            f = bv - i
        # value-only clamp i >= -f (pruned elements have exactly zero magnitude bits)
        i = i + ops.stop_gradient(ops.maximum(i, -f) - i)
        k = self.k * ops.cast(ops.stop_gradient(bits) > 0, self.k.dtype)
        return k, i, f, bits

    def kif(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Integer ``(k, i, f)`` the inference forward uses, broadcast to the per-sample tensor shape (int64)."""
        k, i, f, _ = self._widths(False)
        shape = self._full_shape[1:] if self.is_activation else self._full_shape
        out = []
        for v in (k, i, f):
            a = np.asarray(ops.convert_to_numpy(v), dtype=np.float64)
            if self.is_activation:
                a = a[0]
            out.append(np.broadcast_to(a, shape).astype(np.int64).copy())
        return tuple(out)

    def bits(self, training: bool = False):
        """Magnitude bits per element (EBOPs operand widths), per-sample shape; STE-rounded in training."""
        _, _, _, b = self._widths(training)
        return b[0] if self.is_activation else b

    @property
    def calibrated(self) -> bool:
        """True when the inference formats are trustworthy: always, except WRAP activations before trace_minmax."""
        if not (self.wrap and self.is_activation):
            return True
        return bool(ops.convert_to_numpy(self._calibrated.value) > 0.5)

    # -- forward -------------------------------------------------------------------------------------------
    def call(self, x, training=None):
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        if self._cal is not None:
            return self._calibrate_call(x)
        if training:
            return self._train_call(x)
        return self._infer(x)

    def _infer(self, x):
        k, i, f, _ = self._widths(False, x if (self.wrap and not self.is_activation) else None)
        m = round_mantissa(x * ops.power(2.0, f), self.round_mode)
        w = k + i + f
        ws = ops.maximum(w, 1.0)
        pw, pw1 = ops.power(2.0, ws), ops.power(2.0, ws - 1.0)
        if self.overflow_mode == "WRAP":
            off = k * pw1
            t = m + off
            m = t - pw * ops.floor(t / pw) - off
        else:
            hi = ops.where(k > 0, pw1 - 1.0, pw - 1.0)
            lo = -k * pw1 if self.overflow_mode == "SAT" else -k * (pw1 - 1.0)
            m = ops.minimum(ops.maximum(m, lo), hi)
        return ops.where(w > 0, m * ops.power(2.0, -f), ops.zeros_like(m))

    def _train_call(self, x):
        if self.wrap and self.is_activation:
            self._calibrated.assign(0.0)
            bv = ste_round(self.bvar)
            f0 = bv if self.q_type == "kif" else bv - ops.round(self.i)
            imin = self._data_i(ops.stop_gradient(x), ops.stop_gradient(f0), ops.stop_gradient(bv))
            self.i.assign(ops.maximum(self.i - self.i_decay, imin))
        k, i, f, bits = self._widths(True, x if (self.wrap and not self.is_activation) else None)
        alive = ops.cast(ops.stop_gradient(bits) > 0, x.dtype)
        clip = None if self.wrap else self.overflow_mode
        # kbi (weights): the clip bounds of a pruned element keep the stored sign bit, as HGQ2's do, so a pruned
        # negative weight can come back as a positive one can (its value is 0 either way). kif keeps the sign bit
        # masked by pruning: on the LUT family's per-edge table outputs the stored one cost LUTs (docs/training.md)
        k = self.k if self.q_type == "kbi" else k
        return _ste_quantizer(clip, self.round_mode)(x, f, i, ops.stop_gradient(k), alive)

    def _calibrate_call(self, x):
        """Eager calibration pass: record per-element ``max|x|`` and sign; pass values on without WRAP."""
        if not (self.wrap and self.is_activation):
            return self._infer(x)
        _, _, f, _ = self._widths(False)
        q0 = round_mantissa(x * ops.power(2.0, f), self.round_mode) * ops.power(2.0, -f)
        src = q0 if self.q_type == "kif" else x
        a = np.asarray(ops.convert_to_numpy(src), dtype=np.float64)
        amax = np.abs(a).max(axis=self._hom_axes, keepdims=True)
        neg = (a < 0).any(axis=self._hom_axes, keepdims=True)
        if self._cal != "empty":
            amax, neg = np.maximum(self._cal[0], amax), self._cal[1] | neg
        self._cal = (amax, neg)
        return q0

    def _finish_calibration(self):
        """Set ``i`` (and ``k``) from the recorded statistics; mark calibrated."""
        amax, neg = self._cal
        self._cal = None
        bv = np.round(np.asarray(ops.convert_to_numpy(self.bvar.value), dtype=np.float64))
        with np.errstate(divide="ignore"):
            if self.q_type == "kif":
                inew = np.ceil(np.log2(amax + 2.0**-bv))
            else:
                inew = np.ceil(np.log2(np.maximum(amax, 1e-300) / (1.0 - 2.0 ** -np.maximum(bv, 1.0))))
        inew = np.clip(inew, *self.i_range)
        self.i.assign(inew.astype(np.float32))
        self.k.assign(neg.astype(np.float32))
        self._calibrated.assign(1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            q_type=self.q_type,
            place=self.place,
            k0=self.k0,
            i0=self.i0,
            f0=self.f0,
            b0=self.b0,
            round_mode=self.round_mode,
            overflow_mode=self.overflow_mode,
            granularity=self.granularity,
            homogeneous_axes=self.homogeneous_axes,
            b_range=self.b_range,
            i_range=self.i_range,
            f_range=self.f_range,
            i_decay=self.i_decay,
            regularizer=keras.regularizers.serialize(self.regularizer) if self.regularizer else None,
            trainable_widths=self.trainable_widths,
        )
        return cfg


def exact_kif(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-element ``(k, i, f)`` (float64 arrays) under which SAT quantization returns each (float32-representable)
    value unchanged; zeros get zero bits (pruned)."""
    v = np.asarray(values, np.float64)
    k = (v < 0).astype(np.float64)
    f = np.zeros_like(v)
    i = np.zeros_like(v)
    nz = v != 0
    m, e = np.frexp(np.abs(v[nz]))  # |v| = m * 2**e, m in [0.5, 1): at most 53 significant bits
    mi = (m * 2.0**53).astype(np.int64)
    tz = np.log2((mi & -mi).astype(np.float64))  # trailing zero bits: the lowest set bit is a power of two
    f[nz] = 53 - e - tz
    i[nz] = np.ceil(np.log2(np.abs(v[nz]) + 2.0 ** -f[nz]))
    i[~nz] = -f[~nz]
    return k, i, f


def hold_exactly(q: Quantizer, values: np.ndarray) -> None:
    """Set a built constant quantizer (``q_type="kif"``, SAT, element granularity) to formats that keep
    ``values`` exactly (:func:`exact_kif`): for constants imported already quantized."""
    if q.q_type != "kif" or q.overflow_mode != "SAT" or q.is_activation:
        raise ValueError(f"hold_exactly needs a kif SAT constant quantizer, got {q.q_type} {q.overflow_mode} {q.place}")
    k, i, f = exact_kif(values)
    q.k.assign(k.astype(np.float32))
    q.i.assign(i.astype(np.float32))
    q.bvar.assign(f.astype(np.float32))


#: constructor config of a constant quantizer for :func:`hold_exactly` (add ``place``)
HOLD_CONF = dict(q_type="kif", round_mode="RND", overflow_mode="SAT", granularity="element", trainable_widths=False)


def make_quantizer(conf: dict | Quantizer | None, place: str, name: str) -> Quantizer:
    """A fresh :class:`Quantizer` from a config dict (keys of its constructor) with ``place`` defaults."""
    if isinstance(conf, Quantizer):
        conf = conf.get_config()
    conf = dict(conf or {})
    for key in ("name", "trainable", "dtype"):
        conf.pop(key, None)
    conf.setdefault("place", place)
    return Quantizer(name=name, **conf)


def quantizer_config(q: Quantizer | None) -> dict | None:
    """Serializable constructor config of a quantizer (None passes through)."""
    if q is None:
        return None
    cfg = q.get_config()
    for key in ("name", "trainable", "dtype"):
        cfg.pop(key, None)
    return cfg
