"""Exact dyadic matrices, power-of-two centring, canonical signed digits (CSD) and other minimal digit forms."""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np

__all__ = ["center", "csd_digits", "merge_terms", "msd_forms", "to_int_matrix"]

_MAX_BITS = 52


def to_int_matrix(w) -> tuple[np.ndarray, int]:
    """``(M, e)`` with ``W == M * 2**-e`` exactly, ``M`` an int64 matrix; raises if ``W`` is not dyadic."""
    a = np.asarray(w)
    if a.ndim != 2:
        raise ValueError(f"W must be a 2-D (n_in x n_out) matrix, got shape {a.shape}")
    if a.dtype.kind in "iub":
        m = a.astype(np.int64)
        if a.size and int(np.abs(m).max()) >= 1 << _MAX_BITS:
            raise ValueError(f"W entries must be below 2**{_MAX_BITS} in magnitude")
        return m, 0
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError("W holds NaN or inf; pass exact dyadic rationals")
        mant, ex = np.frexp(a.astype(np.float64))
        m53 = np.ldexp(mant, 53).astype(np.int64)  # a = m53 * 2**(ex-53), exact
        nz = m53 != 0
        if not nz.any():
            return np.zeros(a.shape, np.int64), 0
        tz = _trailing_zeros(np.where(nz, m53, 1))
        e = int(np.max(np.where(nz, 53 - ex - tz, -(1 << 30))))
        e = max(e, 0)
        s = np.ldexp(a.astype(np.float64), e)
        if float(np.abs(s).max()) >= 2.0**_MAX_BITS:
            raise ValueError(f"W needs more than {_MAX_BITS} bits of precision; quantize the weights first")
        return s.astype(np.int64), e
    else:
        fr = [[Fraction(v) for v in row] for row in a.tolist()]
        e = 0
        for row in fr:
            for v in row:
                d = v.denominator
                if d & (d - 1):
                    raise ValueError(f"W entry {v} is not a dyadic rational (denominator not a power of two)")
                e = max(e, d.bit_length() - 1)
    ints = [[int(v * (1 << e)) for v in row] for row in fr]
    big = max((abs(v) for row in ints for v in row), default=0)
    if big >= 1 << _MAX_BITS:
        raise ValueError(f"W needs more than {_MAX_BITS} bits of precision; quantize the weights first")
    return np.array(ints, dtype=np.int64).reshape(a.shape), e


def _trailing_zeros(m: np.ndarray) -> np.ndarray:
    """Trailing zero bits of non-zero int64 values (elementwise)."""
    low = m & -m
    return np.log2(low.astype(np.float64)).astype(np.int64)


def center(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factor the largest power of two out of each column, then each row: ``M = 2**r[:, None] * C * 2**c``."""
    m = m.copy()
    nz = m != 0
    big = np.int64(1 << 40)
    tz = np.where(nz, _trailing_zeros(np.where(nz, m, 1)), big)
    c = tz.min(axis=0, initial=big)
    c = np.where(c == big, 0, c)
    m >>= c[None, :]
    tz = np.where(nz, _trailing_zeros(np.where(nz, m, 1)), big)
    r = tz.min(axis=1, initial=big)
    r = np.where(r == big, 0, r)
    m >>= r[:, None]
    return m, r, c


def csd_digits(m: np.ndarray) -> np.ndarray:
    """CSD digits of int64 ``m``: int8 ``[..., n]``, ``m == sum(d[..., k] * 2**k)``, non-adjacent, minimal weight."""
    m = np.asarray(m, dtype=np.int64)
    top = int(np.abs(m).max(initial=0))
    n = max(int(np.ceil(np.log2(1.5 * top))) if top else 0, 1) + 1
    x = m.copy()
    d = np.zeros(m.shape + (n,), dtype=np.int8)
    for k in range(n - 1, -1, -1):
        t = ((1 << k) * 2) // 3
        dk = (x > t).astype(np.int8) - (x < -t).astype(np.int8)
        x -= dk.astype(np.int64) << k
        d[..., k] = dk
    if np.any(x != 0):  # pragma: no cover - guards the digit-count formula
        raise AssertionError("CSD conversion left a remainder")
    return d


def _naf(v: int) -> tuple[tuple[int, int], ...]:
    out, p = [], 0
    while v:
        if v & 1:
            d = 2 - (v & 3)
            out.append((p, d))
            v -= d
        v >>= 1
        p += 1
    return tuple(out)


@lru_cache(maxsize=1 << 16)
def _minimal(v: int, limit: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    if v == 0:
        return ((),)
    tz = (v & -v).bit_length() - 1
    if tz:
        return tuple(tuple((p + tz, g) for p, g in f) for f in _minimal(v >> tz, limit))
    cand = [
        ((0, g),) + tuple((p + 1, h) for p, h in f)
        for g in ((v,) if abs(v) == 1 else (1, -1))
        for f in _minimal((v - g) >> 1, limit)
    ]
    w = min(map(len, cand))
    return tuple(f for f in cand if len(f) == w)[:limit]


def msd_forms(v: int, limit: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Up to ``limit`` minimal signed-digit forms of ``v`` as ``((pos, sign), ...)``; the CSD form first.

    All have the CSD's digit count (e.g. ``3 = 4 - 1 = 2 + 1``), so any of them costs the same adders alone; which
    one shares best with other entries is left to the CSE.
    """
    v = int(v)
    first = _naf(v)
    rest = [f for f in _minimal(v, limit) if sorted(f) != sorted(first)]
    return (first, *rest[: max(limit - 1, 0)])


def merge_terms(terms: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Combine terms on equal sources into CSD form (so ``(source, pos)`` is unique)."""
    acc: dict[int, int] = {}
    for s, p, g in terms:
        acc[s] = acc.get(s, 0) + g * (1 << p)  # positions are >= 0
    return [(s, p, d) for s in sorted(acc) for p, d in _naf(acc[s])]  # Python ints: no overflow
