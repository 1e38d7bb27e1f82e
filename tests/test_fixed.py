"""hgq.fixed against a plain integer definition and the independent `quantizers` oracle (exhaustive)."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hgq.fixed import (
    OVERFLOW_MODES,
    ROUND_MODES,
    FixedType,
    Interval,
    from_mantissa,
    minimal_kif,
    quantize,
    requantize,
    to_mantissa,
)

EXTRA = 3  # input grid is 2**-EXTRA finer than the format's step, so every rounding case occurs


def reference_mantissa(n: np.ndarray, extra: int, k: int, w: int, rnd: str, ovf: str) -> np.ndarray:
    """The definition, in plain integer arithmetic: value n / 2**extra (in LSBs of the target format)."""
    d = 1 << extra
    fl = n // d  # floor
    r2 = 2 * (n - fl * d)  # twice the remainder, compared with d (= one half LSB * 2)
    tie, above = r2 == d, r2 > d
    neg = n < 0
    if rnd == "TRN":
        m = fl
    elif rnd == "TRN_ZERO":
        m = np.where(neg & (n % d != 0), fl + 1, fl)
    elif rnd == "RND":
        m = fl + (above | tie)
    elif rnd == "RND_CONV":
        m = fl + (above | (tie & (fl % 2 == 1)))
    elif rnd == "RND_ZERO":
        m = fl + (above | (tie & neg))
    elif rnd == "RND_INF":
        m = fl + (above | (tie & ~neg))
    elif rnd == "RND_MIN_INF":
        m = fl + above
    else:
        raise AssertionError(rnd)
    if w <= 0:
        return np.zeros_like(m)
    lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if k else (0, (1 << w) - 1)
    if ovf == "WRAP":
        return (m - lo) % (1 << w) + lo
    if ovf == "SAT_SYM" and k:
        lo += 1
    return np.clip(m, lo, hi)


def cases():
    for w in range(0, 9):
        for k in (0, 1):
            for i in range(-3, 7):
                yield w, k, i, w - k - i


def inputs_for(w: int) -> np.ndarray:
    """Every point of the fine grid over four times the format's range (covers wrap/saturation)."""
    span = 1 << (max(w, 1) + 1 + EXTRA)
    return np.arange(-span, span + 1, dtype=np.int64)


def count_mismatches(impl_rnd: str, impl_ovf: str, ref_rnd: str, ref_ovf: str) -> int:
    bad = 0
    for w, k, i, f in cases():
        n = inputs_for(w)
        x = n.astype(np.float64) * 2.0 ** -(f + EXTRA)
        ref = reference_mantissa(n, EXTRA, k, w, ref_rnd, ref_ovf).astype(np.float64) * 2.0**-f
        got = quantize(x, k, i, f, impl_rnd, impl_ovf)
        bad += int(np.sum(got != ref))
        got_int = requantize(n, f + EXTRA, k, i, f, impl_rnd, impl_ovf)
        bad += int(np.sum(from_mantissa(got_int, f) != ref))
    return bad


@pytest.mark.parametrize("rnd", ROUND_MODES)
@pytest.mark.parametrize("ovf", OVERFLOW_MODES)
def test_exhaustive_against_integer_definition(rnd, ovf):
    assert count_mismatches(rnd, ovf, rnd, ovf) == 0


@pytest.mark.parametrize(
    "impl,ref",
    [
        (("RND", "WRAP"), ("RND_CONV", "WRAP")),
        (("TRN", "SAT"), ("TRN", "SAT_SYM")),
        (("TRN", "WRAP"), ("TRN_ZERO", "WRAP")),
    ],
)
def test_wrong_mode_is_detected(impl, ref):
    """The exhaustive comparison can fail: a deliberately wrong mode gives mismatches."""
    assert count_mismatches(*impl, *ref) > 0


@pytest.mark.parametrize("rnd", ROUND_MODES)
@pytest.mark.parametrize("ovf", OVERFLOW_MODES)
def test_exhaustive_against_quantizers_oracle(rnd, ovf):
    pytest.importorskip("quantizers", reason="the oracle is in the `compare` extra: pip install -e .[compare]")
    from quantizers.fixed_point.fixed_point_ops_np import get_fixed_quantizer_np

    oracle = get_fixed_quantizer_np(rnd, ovf)
    bad = 0
    for w, k, i, f in cases():
        if w <= 0:  # the oracle keeps one bit at width <= 0 (it clamps i >= -f); our contract prunes to 0
            continue
        x = inputs_for(w).astype(np.float64) * 2.0 ** -(f + EXTRA)
        ref = oracle(x, np.float64(k), np.float64(i), np.float64(f))
        bad += int(np.sum(quantize(x, k, i, f, rnd, ovf) != ref))
    assert bad == 0


def test_zero_width_is_zero():
    x = np.linspace(-10, 10, 101)
    for k, i, f in [(0, 2, -2), (1, -3, 1), (1, 0, -1)]:
        assert np.all(quantize(x, k, i, f, "RND", "SAT") == 0)
        assert np.all(requantize(np.arange(-50, 50), 2, k, i, f) == 0)


def test_per_element_broadcast():
    x = np.array([[0.3, -1.7, 2.2]] * 2)
    k = np.array([1, 0, 1])
    i = np.array([[1], [0]])
    f = np.array([2, 1, 0])
    got = quantize(x, k, i, f, "RND", "SAT")
    for r, c in itertools.product(range(2), range(3)):
        assert got[r, c] == quantize(x[r, c], k[c], i[r, 0], f[c], "RND", "SAT")


def test_bad_arguments():
    with pytest.raises(ValueError, match="round mode 'RNDX'"):
        quantize(1.0, 1, 2, 3, "RNDX")
    with pytest.raises(ValueError, match="overflow mode 'SATURATE'"):
        quantize(1.0, 1, 2, 3, "RND", "SATURATE")
    with pytest.raises(ValueError, match="integer bit counts"):
        quantize(1.0, 1, 2.5, 3)
    with pytest.raises(ValueError, match="NaN or inf"):
        quantize(np.array([1.0, np.nan]), 1, 2, 3)
    with pytest.raises(ValueError, match="k .sign bit. must be 0 or 1"):
        quantize(1.0, 2, 2, 3)
    with pytest.raises(TypeError, match="integer mantissas"):
        requantize(np.array([1.5]), 0, 1, 2, 3)
    with pytest.raises(ValueError, match="not multiples"):
        to_mantissa(0.3, 2)


def test_requantize_wide_left_shift_saturates():
    m = np.array([3, -3, 1 << 40], dtype=np.int64)
    got = requantize(m, -60, 1, 60, 0, "TRN", "SAT")
    hi = (1 << 60) - 1
    assert got.tolist() == [hi, -(1 << 60), hi]


def test_mantissa_roundtrip():
    m = np.arange(-300, 300, dtype=np.int64)
    assert np.array_equal(to_mantissa(from_mantissa(m, 5), 5), m)


@pytest.mark.parametrize(
    "lo,hi,step,expected",
    [
        (-4, 3.75, 0.25, (1, 2, 2)),
        (0, 1, 1, (0, 1, 0)),
        (0, 0, 1, (0, 0, 0)),
        (-1, 0, 0.5, (1, 0, 1)),
        (0, 255, 1, (0, 8, 0)),
        (-128, 127, 1, (1, 7, 0)),
        (0, 8, 4, (0, 4, -2)),
        (-0.125, 0.125, 0.125, (1, -2, 3)),
    ],
)
def test_minimal_kif(lo, hi, step, expected):
    t = minimal_kif(lo, hi, step)
    assert (t.k, t.i, t.f) == expected
    iv = Interval.from_values(lo, hi, step)
    full = t.interval
    assert full.lo <= iv.lo and iv.hi <= full.hi  # the type holds the interval
    if t.width > 0:  # and one bit less would not
        smaller = FixedType(t.k, t.i - 1, t.f).interval
        assert iv.lo < smaller.lo or iv.hi > smaller.hi


def test_interval_arithmetic_is_exact():
    a = Interval.from_values(-1.5, 2, 0.5)
    b = Interval.from_values(0, 3, 1)
    assert (a + b).lo_value == Fraction(-3, 2) and (a + b).hi_value == 5
    assert (a - b).lo_value == Fraction(-9, 2) and (a - b).hi_value == 2
    assert (a * b).lo_value == Fraction(-9, 2) and (a * b).hi_value == 6
    assert a.shift(2).lo_value == -6 and a.relu().lo_value == 0
    assert Interval(4, 8, 0).normalized() == Interval(1, 2, -2)
    assert str(FixedType(1, 3, 4)) == "fixed<1,3,4>"
    with pytest.raises(ValueError, match="power of two"):
        Interval.from_values(0, 3, 3)
    with pytest.raises(ValueError, match="lo 2 > hi 1"):
        Interval(2, 1, 0)


# -- properties -----------------------------------------------------------------------------------------
fmt = st.tuples(st.integers(0, 1), st.integers(-4, 8), st.integers(-2, 8))
vals = st.floats(-600, 600, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(fmt, vals, st.sampled_from(ROUND_MODES), st.sampled_from(OVERFLOW_MODES))
def test_idempotent(kif, x, rnd, ovf):
    q = quantize(x, *kif, rnd, ovf)
    assert quantize(q, *kif, rnd, ovf) == q


@settings(max_examples=300, deadline=None)
@given(fmt, vals, vals, st.sampled_from(ROUND_MODES), st.sampled_from(["SAT", "SAT_SYM"]))
def test_saturating_modes_are_monotone(kif, a, b, rnd, ovf):
    lo, hi = min(a, b), max(a, b)
    assert quantize(lo, *kif, rnd, ovf) <= quantize(hi, *kif, rnd, ovf)


@settings(max_examples=300, deadline=None)
@given(fmt, vals, st.integers(-3, 3), st.sampled_from(["TRN", "RND", "RND_CONV", "RND_MIN_INF"]))
def test_wrap_is_periodic(kif, x, n, rnd):
    """Shift-invariant round modes commute with adding a multiple of the wrap period 2**(k+i)."""
    k, i, f = kif
    period = 2.0 ** (k + i)
    xs = quantize(x, k, i, max(f, 0) + 4, "TRN", "SAT")  # a value whose shift by the period stays exact
    assert quantize(xs + n * period, k, i, f, rnd, "WRAP") == quantize(xs, k, i, f, rnd, "WRAP")
