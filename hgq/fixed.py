"""The project's one fixed-point arithmetic, in numpy (identical to ``ap_fixed``).

A format is ``(k, i, f)``: ``k`` sign bit (0 or 1), ``i`` integer bits excluding the sign, ``f`` fractional
bits; width ``W = k + i + f``, step ``2**-f``, value ``q = m * 2**-f`` for an integer mantissa ``m``.
``i`` and ``f`` may be negative; ``W <= 0`` means the value is the constant 0 (pruned).

Quantization first rounds ``x * 2**f`` to an integer (round mode), then applies overflow (WRAP keeps the
low ``W`` bits, SAT/SAT_SYM clamp) exactly as ``ap_fixed<W, k+i, Q, O>`` / ``ap_ufixed<W, i, Q, O>``.

Two entry points share the same decision logic:

- :func:`quantize` on float inputs (float64, exact for mantissas within 53 bits);
- :func:`requantize` on int64 mantissas (the hardware/interpreter view, exact up to 62 bits).

:class:`Interval` is the exact value-range type (integer mantissa bounds and a power-of-two step) that
``hdl_gen`` uses for every wire; :func:`minimal_kif` gives the narrowest format holding an interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np

__all__ = [
    "OVERFLOW_MODES",
    "ROUND_MODES",
    "FixedType",
    "Interval",
    "from_mantissa",
    "minimal_kif",
    "quantize",
    "requantize",
    "to_mantissa",
]

RoundMode = Literal["TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_INF", "RND_MIN_INF", "RND_CONV"]
OverflowMode = Literal["WRAP", "SAT", "SAT_SYM"]

ROUND_MODES: tuple[str, ...] = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_INF", "RND_MIN_INF", "RND_CONV")
OVERFLOW_MODES: tuple[str, ...] = ("WRAP", "SAT", "SAT_SYM")

#: Largest width :func:`requantize` handles exactly in int64 (one bit of headroom for rounding).
MAX_INT_BITS = 62


def check_round_mode(mode: str) -> str:
    """Return ``mode`` upper-cased, or raise naming the valid round modes."""
    m = str(mode).upper()
    if m not in ROUND_MODES:
        raise ValueError(f"round mode {mode!r} is not valid; expected one of {', '.join(ROUND_MODES)}")
    return m


def check_overflow_mode(mode: str) -> str:
    """Return ``mode`` upper-cased, or raise naming the valid overflow modes."""
    m = str(mode).upper()
    if m not in OVERFLOW_MODES:
        raise ValueError(f"overflow mode {mode!r} is not valid; expected one of {', '.join(OVERFLOW_MODES)}")
    return m


def _as_int_bits(name: str, v) -> np.ndarray:
    """Bit counts as an int64 array; raise if any entry is not an integer."""
    a = np.asarray(v)
    if a.dtype.kind in "iub":
        return a.astype(np.int64)
    if a.dtype.kind != "f":
        raise TypeError(f"{name} must be integer bit counts, got dtype {a.dtype}")
    if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
        bad = a[~np.isfinite(a) | (a != np.round(a))].ravel()[0]
        raise ValueError(f"{name} must hold integer bit counts, got {bad!r}; round the bit-widths first")
    return a.astype(np.int64)


def _check_k(k: np.ndarray) -> None:
    if np.any((k != 0) & (k != 1)):
        raise ValueError(f"k (sign bit) must be 0 or 1, got {np.unique(k)[:5].tolist()}")


def _round_decide(floor_m, cmp_half, has_rem, negative, mode: str):
    """Rounded mantissa from ``floor(y)`` and the remainder ``r = y - floor(y)`` in [0, 1).

    ``cmp_half`` is sign(r - 1/2), ``has_rem`` is ``r > 0``, ``negative`` is ``y < 0``.
    """
    up = {
        "TRN": None,
        "TRN_ZERO": negative & has_rem,
        "RND": cmp_half >= 0,
        "RND_CONV": (cmp_half > 0) | ((cmp_half == 0) & (floor_m % 2 != 0)),
        "RND_ZERO": (cmp_half > 0) | ((cmp_half == 0) & negative),
        "RND_INF": (cmp_half > 0) | ((cmp_half == 0) & ~negative),
        "RND_MIN_INF": cmp_half > 0,
    }[mode]
    return floor_m if up is None else floor_m + up.astype(floor_m.dtype)


def _overflow(m, k, w, mode: str):
    """Apply WRAP/SAT/SAT_SYM to mantissas ``m`` for sign bit ``k`` and width ``w`` (w >= 1 where used)."""
    w_safe = np.maximum(w, 1)
    if m.dtype.kind == "f":
        two = np.float64(2.0)
        p_w = two**w_safe
        p_w1 = two ** (w_safe - 1)
    else:
        p_w = np.left_shift(np.int64(1), w_safe)
        p_w1 = np.left_shift(np.int64(1), w_safe - 1)
    off = k * p_w1
    if mode == "WRAP":
        return np.mod(m + off, p_w) - off
    hi = np.where(k == 1, p_w1 - 1, p_w - 1)
    lo = -off if mode == "SAT" else -k * (p_w1 - 1)
    return np.minimum(np.maximum(m, lo), hi)


def quantize(x, k, i, f, round_mode: RoundMode = "TRN", overflow_mode: OverflowMode = "WRAP") -> np.ndarray:
    """Quantize ``x`` to the fixed-point format ``(k, i, f)`` exactly as ``ap_fixed`` does.

    Args:
        x: real values (array-like); NaN/inf raise.
        k, i, f: sign bit, integer bits (excluding sign), fractional bits; integer arrays broadcasting
            with ``x`` (per-element formats).
        round_mode: one of :data:`ROUND_MODES`.
        overflow_mode: one of :data:`OVERFLOW_MODES`.

    Returns:
        float64 array of quantized values (0 where ``k + i + f <= 0``).
    """
    rmode, omode = check_round_mode(round_mode), check_overflow_mode(overflow_mode)
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("quantize got NaN or inf input; fixed-point has no such values, clean the input first")
    k, i, f = (_as_int_bits(n, v) for n, v in (("k", k), ("i", i), ("f", f)))
    _check_k(k)
    x, k, i, f = np.broadcast_arrays(x, k, i, f)
    w = k + i + f
    if np.any(w > 53):
        raise ValueError(
            f"quantize works in float64 and supports widths up to 53 bits, got {int(w.max())}; "
            "use requantize on integer mantissas for wider formats"
        )
    y = np.ldexp(x, f)  # exact: scaling by a power of two
    fl = np.floor(y)
    r = y - fl  # exact in float64
    m = _round_decide(fl, np.sign(r - 0.5), r > 0, y < 0, rmode)
    m = _overflow(m, k, w, omode)
    return np.where(w > 0, np.ldexp(m, -f), 0.0) + 0.0  # + 0.0 turns -0.0 into 0.0


def requantize(m, f_src, k, i, f, round_mode: RoundMode = "TRN", overflow_mode: OverflowMode = "WRAP") -> np.ndarray:
    """Quantize integer mantissas ``m`` (value ``m * 2**-f_src``) to ``(k, i, f)``; returns int64 mantissas at ``f``.

    Same semantics as :func:`quantize`, computed exactly in int64 (widths up to :data:`MAX_INT_BITS`).
    """
    rmode, omode = check_round_mode(round_mode), check_overflow_mode(overflow_mode)
    m = np.asarray(m)
    if m.dtype.kind not in "iu":
        raise TypeError(f"requantize takes integer mantissas, got dtype {m.dtype}; use quantize for real values")
    m = m.astype(np.int64)
    f_src, k, i, f = (_as_int_bits(n, v) for n, v in (("f_src", f_src), ("k", k), ("i", i), ("f", f)))
    _check_k(k)
    m, f_src, k, i, f = np.broadcast_arrays(m, f_src, k, i, f)
    w = k + i + f
    if np.any(w > MAX_INT_BITS):
        raise ValueError(f"requantize supports widths up to {MAX_INT_BITS} bits, got {int(w.max())}")
    sh = f_src - f  # >0: drop LSBs (round), <=0: exact left shift
    left = np.maximum(-sh, 0)
    right = np.minimum(np.maximum(sh, 0), 63)
    fl = np.right_shift(m, right)  # arithmetic shift = floor division
    rem = m - np.left_shift(fl, right)
    half = np.where(right > 0, np.left_shift(np.int64(1), np.maximum(right - 1, 0)), 1)
    cmp_half = np.where(right > 0, np.sign(rem - half), -1)
    rounded = _round_decide(fl, cmp_half, rem > 0, m < 0, rmode)
    if np.any(left > 0):
        shl = np.minimum(left, 63)
        exact = np.left_shift(m, shl)  # wraps mod 2**64: harmless for WRAP (W <= 62 keeps only low bits)
        if omode != "WRAP":  # saturating modes need the true sign/magnitude of an int64 overflow
            too_big = (shl > 0) & (np.right_shift(exact, shl) != m)
            exact = np.where(too_big, np.where(m < 0, -(np.int64(1) << 62), np.int64(1) << 62), exact)
        rounded = np.where(left > 0, exact, rounded)
    out = _overflow(rounded, k, w, omode)
    return np.where(w > 0, out, 0).astype(np.int64)


def to_mantissa(x, f) -> np.ndarray:
    """Exact integer mantissas ``x * 2**f`` as int64; raises if ``x`` is not on the grid ``2**-f``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.ldexp(x, _as_int_bits("f", f))
    if not np.all(np.isfinite(y)) or np.any(y != np.floor(y)):
        raise ValueError("to_mantissa: values are not multiples of 2**-f; quantize them first")
    if np.any(np.abs(y) >= 2.0**63):
        raise ValueError("to_mantissa: values do not fit in int64 at this f")
    return y.astype(np.int64)


def from_mantissa(m, f) -> np.ndarray:
    """Values ``m * 2**-f`` as float64 (exact while ``|m| < 2**53``)."""
    return np.ldexp(np.asarray(m, dtype=np.float64), -_as_int_bits("f", f))


@dataclass(frozen=True, slots=True)
class FixedType:
    """A fixed-point format ``(k, i, f)``; frozen, hashable, printable like ``fixed<1,3,4>``."""

    k: int
    i: int
    f: int

    def __post_init__(self):
        for n in ("k", "i", "f"):
            if not isinstance(getattr(self, n), int | np.integer):
                raise TypeError(f"FixedType.{n} must be an int, got {getattr(self, n)!r}")
        if self.k not in (0, 1):
            raise ValueError(f"FixedType.k must be 0 or 1, got {self.k!r}")

    @property
    def width(self) -> int:
        """Total bits ``k + i + f`` (0 when pruned)."""
        return max(self.k + self.i + self.f, 0)

    @property
    def interval(self) -> Interval:
        """The exact range of representable values."""
        w = self.width
        if w == 0:
            return Interval(0, 0, self.f)
        b = w - self.k
        return Interval(-(1 << b) if self.k else 0, (1 << b) - 1, self.f)

    def __str__(self) -> str:
        return f"fixed<{self.k},{self.i},{self.f}>"


def _frac(v) -> Fraction:
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"interval bounds must be finite, got {v!r}")
    return Fraction(v)


@dataclass(frozen=True, slots=True)
class Interval:
    """Exact value range ``[lo, hi] * 2**-f`` with integer mantissa bounds ``lo <= hi`` and step ``2**-f``.

    Frozen and hashable; arithmetic (``+``, ``-``, negation, :meth:`shift`, :meth:`relu`, ``*``) is exact.
    """

    lo: int
    hi: int
    f: int

    def __post_init__(self):
        for n in ("lo", "hi", "f"):
            if not isinstance(getattr(self, n), int | np.integer):
                raise TypeError(f"Interval.{n} must be an int (mantissa/exponent), got {getattr(self, n)!r}")
        if self.lo > self.hi:
            raise ValueError(f"Interval lo {self.lo} > hi {self.hi}")

    # -- construction -----------------------------------------------------------------------------------
    @classmethod
    def from_values(cls, lo, hi, step) -> Interval:
        """Interval from real bounds and a power-of-two step (bounds must lie on the step's grid)."""
        lo_, hi_, st = _frac(lo), _frac(hi), _frac(step)
        if (
            st <= 0
            or (st.numerator != 1 and st.denominator != 1)
            or (st.numerator & (st.numerator - 1))
            or (st.denominator & (st.denominator - 1))
        ):
            raise ValueError(f"step must be a positive power of two, got {step!r}")
        f = st.denominator.bit_length() - 1 - (st.numerator.bit_length() - 1)
        mlo, mhi = lo_ / st, hi_ / st
        if mlo.denominator != 1 or mhi.denominator != 1:
            raise ValueError(f"bounds {lo!r}, {hi!r} are not multiples of step {step!r}")
        return cls(int(mlo), int(mhi), f)

    @classmethod
    def of_type(cls, t: FixedType) -> Interval:
        """All values of a format."""
        return t.interval

    # -- views -------------------------------------------------------------------------------------------
    @property
    def step(self) -> Fraction:
        return Fraction(1, 1 << self.f) if self.f >= 0 else Fraction(1 << -self.f)

    @property
    def lo_value(self) -> Fraction:
        return self.lo * self.step

    @property
    def hi_value(self) -> Fraction:
        return self.hi * self.step

    @property
    def is_zero(self) -> bool:
        return self.lo == 0 and self.hi == 0

    @property
    def type(self) -> FixedType:
        """The minimal format holding this interval at its step."""
        return _minimal_from_mantissa(self.lo, self.hi, self.f)

    @property
    def width(self) -> int:
        return self.type.width

    def normalized(self) -> Interval:
        """Same set of reachable grid values with the coarsest step dividing both bounds (0 ⇒ f unchanged)."""
        if self.is_zero:
            return self
        tz = min((v & -v).bit_length() - 1 for v in (self.lo, self.hi) if v != 0)
        return Interval(self.lo >> tz, self.hi >> tz, self.f - tz)

    def at_f(self, f: int) -> tuple[int, int]:
        """Mantissa bounds at a finer (or equal) exponent ``f``."""
        if f < self.f:
            raise ValueError(f"cannot express {self} exactly at coarser f={f}")
        s = f - self.f
        return self.lo << s, self.hi << s

    # -- exact arithmetic --------------------------------------------------------------------------------
    def __add__(self, other: Interval) -> Interval:
        f = max(self.f, other.f)
        a, b = self.at_f(f), other.at_f(f)
        return Interval(a[0] + b[0], a[1] + b[1], f)

    def __neg__(self) -> Interval:
        return Interval(-self.hi, -self.lo, self.f)

    def __sub__(self, other: Interval) -> Interval:
        return self + (-other)

    def __mul__(self, other: Interval) -> Interval:
        c = (self.lo * other.lo, self.lo * other.hi, self.hi * other.lo, self.hi * other.hi)
        return Interval(min(c), max(c), self.f + other.f)

    def shift(self, s: int) -> Interval:
        """Multiply by ``2**s`` (free wiring in hardware)."""
        return Interval(self.lo, self.hi, self.f - s)

    def relu(self) -> Interval:
        return Interval(max(self.lo, 0), max(self.hi, 0), self.f)

    def union(self, other: Interval) -> Interval:
        f = max(self.f, other.f)
        a, b = self.at_f(f), other.at_f(f)
        return Interval(min(a[0], b[0]), max(a[1], b[1]), f)

    def __str__(self) -> str:
        return f"[{self.lo_value}, {self.hi_value}] step {self.step}"


def _minimal_from_mantissa(lo: int, hi: int, f: int) -> FixedType:
    k = int(lo < 0)
    b = max((-lo - 1).bit_length() if lo < 0 else 0, hi.bit_length() if hi > 0 else 0)
    return FixedType(k, b - f, f)


def minimal_kif(lo, hi, step) -> FixedType:
    """Narrowest ``(k, i, f)`` holding every multiple of ``step`` in ``[lo, hi]``.

    ``k = [lo < 0]``, ``i + f = ceil(log2(max(|lo|/step, hi/step + 1)))``, ``f = -log2(step)``;
    e.g. ``minimal_kif(-4, 3.75, 0.25) == FixedType(1, 2, 2)``.
    """
    return Interval.from_values(lo, hi, step).type
