"""hdl_gen.cmvm: exactness of the adder graph (equality with x @ W), interval soundness, hard depth bounds."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from hdl_gen.cmvm import AdderGraph, AddOp, minimal_depth, solve
from hgq.fixed import FixedType, Interval


def _random_inputs(rng, ivs: list[Interval], n: int) -> np.ndarray:
    x = np.stack([rng.integers(iv.lo, iv.hi + 1, n) for iv in ivs], axis=1)
    # include the corners of the input box
    lo = np.array([iv.lo for iv in ivs])
    hi = np.array([iv.hi for iv in ivs])
    return np.concatenate([x, lo[None], hi[None]], axis=0).astype(np.int64)


def _reference(x: np.ndarray, w_int: np.ndarray, e: int, ivs: list[Interval], g: AdderGraph) -> np.ndarray:
    """Exact x @ W as Python ints, expressed at each output's f (asserting it is on that grid)."""
    n_out = w_int.shape[1]
    out = np.zeros((x.shape[0], n_out), dtype=np.int64)
    f_in = max(iv.f for iv in ivs)
    xs = [[int(v) << (f_in - ivs[j].f) for j, v in enumerate(row)] for row in x.tolist()]  # mantissas at f_in
    wl = w_int.tolist()
    for n, row in enumerate(xs):
        for o in range(n_out):
            acc = sum(row[j] * wl[j][o] for j in range(len(row)))  # value = acc * 2**-(f_in + e)
            fo = g.out_intervals[o].f
            sh = fo - (f_in + e)
            val = Fraction(acc) * Fraction(2) ** sh
            assert val.denominator == 1, "output value is not on the declared output grid"
            out[n, o] = int(val)
    return out


def _check(g: AdderGraph, w_int: np.ndarray, e: int, ivs: list[Interval], x: np.ndarray) -> None:
    y = g.evaluate(x)
    assert np.array_equal(y, _reference(x, w_int, e, ivs, g))
    # every op's values lie in its interval, every output in its interval
    v = [x[:, j] for j in range(g.n_in)]
    fs = [iv.f for iv in ivs]
    for op in g.ops:
        f = op.interval.f
        a = v[op.a] << (f - fs[op.a])
        b = v[op.b] << (f - fs[op.b] + op.shift)
        r = a - b if op.sub else a + b
        assert r.min() >= op.interval.lo and r.max() <= op.interval.hi
        assert op.depth == max(g.source_depth(op.a), g.source_depth(op.b)) + 1
        v.append(r)
        fs.append(f)
    for o, iv in enumerate(g.out_intervals):
        assert y[:, o].min() >= iv.lo and y[:, o].max() <= iv.hi


def _one_hot(ivs: list[Interval]) -> np.ndarray:
    rows = []
    for j, iv in enumerate(ivs):
        for v in {iv.lo, iv.hi, 1 if iv.hi >= 1 else iv.hi}:
            r = np.zeros(len(ivs), dtype=np.int64)
            r[j] = v
            rows.append(r)
    return np.array(rows, dtype=np.int64)


CASES = [
    (1, 1, 1, True),
    (1, 5, 3, False),
    (5, 1, 8, True),
    (3, 4, 2, True),
    (8, 8, 4, True),
    (8, 8, 8, False),
    (16, 16, 6, True),
    (13, 7, 5, True),
    (32, 5, 4, True),
    (16, 64, 3, True),
    (64, 16, 2, False),
    (64, 64, 1, True),
]


@pytest.mark.parametrize("depth_bound", [None, "min", "min+2"])
@pytest.mark.parametrize(("n_in", "n_out", "bits", "signed"), CASES)
def test_exact_random_integer(n_in, n_out, bits, signed, depth_bound):
    rng = np.random.default_rng(n_in * 1000 + n_out * 10 + bits)
    hi = 1 << (bits - 1)
    w = rng.integers(-hi, hi if bits > 1 else 2, (n_in, n_out))
    w[rng.random(w.shape) < 0.2] = 0  # zeros
    if n_out > 1:
        w[:, 0] = 0  # a zero column
    # mixed input formats: signed/unsigned, various widths and fractional bits
    ivs = []
    for _ in range(n_in):
        k = int(signed and rng.random() < 0.7)
        wd = int(rng.integers(1, 9))
        ivs.append(FixedType(k, wd - k - int(rng.integers(-1, 3)), int(rng.integers(-1, 3))).interval)
    g = solve(w, ivs, depth_bound=depth_bound, cache=False)
    x = np.concatenate([_random_inputs(rng, ivs, 200), _one_hot(ivs)])
    _check(g, w, 0, ivs, x)
    if n_out > 1:
        assert g.outputs[0] is None
    md = minimal_depth(w, ivs)
    if depth_bound == "min":
        assert g.depth == md
    elif depth_bound == "min+2":
        assert g.depth <= md + 2


@pytest.mark.parametrize("seed", range(4))
def test_exact_dyadic_weights(seed):
    rng = np.random.default_rng(100 + seed)
    n_in, n_out = int(rng.integers(1, 12)), int(rng.integers(1, 12))
    w_int = rng.integers(-31, 32, (n_in, n_out))
    e = int(rng.integers(0, 6))
    w = np.ldexp(w_int.astype(np.float64), -e)  # exact dyadic floats
    ivs = [Interval(-8, 7, 2), Interval(0, 15, 0), Interval(-3, 5, -1)] * 4
    ivs = ivs[:n_in]
    g = solve(w, ivs, cache=False)
    _check(g, w_int, e, ivs, np.concatenate([_random_inputs(rng, ivs, 300), _one_hot(ivs)]))
    # Fractions give the same graph
    wf = [[Fraction(int(v), 1 << e) for v in row] for row in w_int]
    g2 = solve(np.array(wf, dtype=object), ivs, cache=False)
    assert g2 == g
    assert g.matrix() == [[Fraction(int(v), 1 << e) for v in row] for row in w_int]


def test_pruning_and_zero():
    ivs = [Interval(-4, 3, 0), Interval(0, 0, 0), Interval(0, 7, 1)]
    w = np.array([[0, 3, 0], [5, 7, 0], [0, -6, 0]])
    g = solve(w, ivs, cache=False)
    assert g.outputs[0] is None and g.outputs[2] is None  # column 0 only sees the zero-width input
    assert all(1 not in (op.a, op.b) for op in g.ops)
    assert g.n_adders == 2  # 3*x0 = x0 + x0<<1 ; then - 3*x2 (shift-aligned)
    x = _random_inputs(np.random.default_rng(0), ivs, 50)
    _check(g, w, 0, ivs, x)
    assert isinstance(g.ops[0], AddOp)


def test_depth_bound_hard_and_error():
    rng = np.random.default_rng(7)
    w = rng.integers(-128, 128, (16, 16))
    ivs = [Interval(-128, 127, 0)] * 16
    md = minimal_depth(w, ivs)
    for b in range(md, md + 4):
        g = solve(w, ivs, depth_bound=b, cache=False)
        assert g.depth <= b
        _check(g, w, 0, ivs, _random_inputs(rng, ivs, 100))
    with pytest.raises(ValueError, match=f"minimal achievable adder depth {md}"):
        solve(w, ivs, depth_bound=md - 1)
    with pytest.raises(ValueError, match="depth_bound"):
        solve(w, ivs, depth_bound="fast")


def test_in_depths_cascade():
    rng = np.random.default_rng(3)
    w = rng.integers(-16, 16, (8, 6))
    ivs = [Interval(-64, 63, 0)] * 8
    dep = [0, 0, 1, 1, 2, 2, 3, 3]
    md = minimal_depth(w, ivs, dep)
    g = solve(w, ivs, in_depths=dep, depth_bound="min", cache=False)
    assert g.depth == md
    _check(g, w, 0, ivs, _random_inputs(rng, ivs, 100))


def test_deterministic_and_cached():
    rng = np.random.default_rng(11)
    w = rng.integers(-50, 50, (12, 9))
    ivs = [Interval(-128, 127, 0)] * 12
    g1 = solve(w, ivs, cache=False)
    g2 = solve(w.copy(), ivs, cache=False)
    assert g1 == g2
    assert solve(w, ivs) is solve(w.copy(), ivs)


def test_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        solve(np.zeros(3), [Interval(0, 1, 0)])
    with pytest.raises(ValueError, match="input intervals"):
        solve(np.zeros((2, 2)), [Interval(0, 1, 0)])
    with pytest.raises(ValueError, match="dyadic"):
        solve(np.array([[Fraction(1, 3)]], dtype=object), [Interval(0, 1, 0)])
    with pytest.raises(ValueError, match="objective"):
        solve(np.ones((2, 2)), [Interval(0, 1, 0)] * 2, objective="luts")
    with pytest.raises(ValueError, match="NaN"):
        solve(np.array([[np.nan]]), [Interval(0, 1, 0)])


@pytest.mark.parametrize("depth_bound", [None, "min", "min+1"])
def test_scaled_and_similar_columns(depth_bound):
    """Columns that are ±2**s multiples or near copies of others (exercises the column tree and stage 2)."""
    rng = np.random.default_rng(5)
    base = rng.integers(-60, 60, (10, 3))
    w = np.concatenate([base, 4 * base[:, :1], -base[:, 1:2], 2 * base[:, 2:] + 1, base[:, :1] - base[:, 1:2]], axis=1)
    ivs = [Interval(-32, 31, 1)] * 5 + [Interval(0, 63, 0)] * 5
    g = solve(w, ivs, depth_bound=depth_bound, cache=False)
    _check(g, w, 0, ivs, np.concatenate([_random_inputs(rng, ivs, 200), _one_hot(ivs)]))
    if depth_bound == "min":
        assert g.depth == minimal_depth(w, ivs)


@pytest.mark.parametrize("forms", [1, 4])
@pytest.mark.parametrize("route", ["d", "t"])
@pytest.mark.parametrize("tie", [-5, -4, -3, -2, -1, 0, 7])
@pytest.mark.parametrize("depth_bound", [None, "min+1"])
def test_every_variant_exact(monkeypatch, route, tie, depth_bound, forms):
    """Each route (direct, transposed) x CSE tie-break x digit forms x jitter gives an exact graph within the bound."""
    import sys

    sv = sys.modules["hdl_gen.cmvm.solver"]
    vs = sv._vs(
        (route, None, 100, False, tie, None, forms),
        (route, 1, -1000, True, tie, 1, forms, 100, 3),
        ("d", 3, 0, True, tie, None, forms),
    )
    monkeypatch.setattr(sv, "VARIANTS", {k: (vs, vs) for k in ("none", "min", "bounded")})
    rng = np.random.default_rng(7)
    w = rng.integers(-64, 64, (12, 10))
    w[3] = 0
    ivs = [Interval(-128, 127, 0), Interval(0, 63, 1)] * 6
    g = solve(w, ivs, depth_bound=depth_bound, in_depths=[0, 1] * 6, cache=False)
    _check(g, w, 0, ivs, np.concatenate([_random_inputs(rng, ivs, 300), _one_hot(ivs)]))
    if depth_bound is not None:
        assert g.depth <= minimal_depth(w, ivs, [0, 1] * 6) + 1


def test_msd_forms():
    """Every minimal signed-digit form sums to the value with the CSD's digit count; the CSD comes first."""
    from hdl_gen.cmvm.csd import csd_digits, msd_forms

    assert len(msd_forms(3, 4)) == 2 and len(msd_forms(7, 4)) == 1
    assert len(msd_forms(-45, 8)) > len(msd_forms(-45, 2)) == 2
    vals = np.arange(-1100, 1100)
    d = csd_digits(vals)
    for v, dv in zip(vals.tolist(), d, strict=True):
        for limit in (1, 4):
            fs = msd_forms(v, limit)
            assert 1 <= len(fs) <= limit and len(set(map(frozenset, fs))) == len(fs)
            assert sorted(fs[0]) == [(int(k), int(dv[k])) for k in np.nonzero(dv)[0]]
            for f in fs:
                assert sum(g << p for p, g in f) == v and len(f) == len(fs[0])
                assert len({p for p, _ in f}) == len(f) and all(g in (-1, 1) for _, g in f)


@pytest.mark.parametrize(("n_in", "n_out"), [(32, 5), (5, 32), (13, 7), (1, 6), (6, 1)])
def test_transposed_network(n_in, n_out):
    """Reversing a solution of Kᵀ gives an exact network for K with A + n_in - n_out adders (Tellegen)."""
    from hdl_gen.cmvm._kernel import TIE_RECENT
    from hdl_gen.cmvm.csd import center
    from hdl_gen.cmvm.solver import _U_INTERVAL, Variant, _finish, _variant, _variant_t

    rng = np.random.default_rng(n_in * 100 + n_out)
    w = rng.integers(-40, 40, (n_in, n_out))
    w[w == 0] = 1  # no zero rows or columns: every node of the transposed network is used
    ivs = tuple(FixedType(1, int(rng.integers(2, 8)), int(rng.integers(-1, 3))).interval for _ in range(n_in))
    c, r, cs = center(w)
    ct, rt, cst = center((c << r[:, None]).T)
    v = Variant(transpose=False, max_len=1, weight_bias=100, shift_free=False, tie=TIE_RECENT, offset=None)
    n_t, _, _, _ = _variant(ct, rt, (_U_INTERVAL,) * n_out, (0,) * n_out, None, v)
    n_add, depth, ops, res = _variant_t(c, r, ivs, (0,) * n_in, replace(v, transpose=True))
    assert n_add == n_t + n_in - n_out
    g = _finish(ops, res, cs, 0, ivs, (0,) * n_in, None)
    assert g.n_adders == n_add and g.depth == depth
    _check(g, w, 0, list(ivs), np.concatenate([_random_inputs(rng, list(ivs), 300), _one_hot(list(ivs))]))


@pytest.mark.parametrize("depth_bound", [None, "min", "min+2"])
def test_bits_objective(depth_bound):
    """objective="bits" is exact, meets the bound and never ranks worse on bits than the adder-count choice."""
    from hdl_gen.cmvm.solver import DEPTH_COST

    rng = np.random.default_rng(21)
    w = rng.integers(-8, 8, (24, 12))
    ivs = [Interval(-128, 127, 0), Interval(0, 255, 2), Interval(-8, 7, 0)] * 8
    ga = solve(w, ivs, depth_bound=depth_bound, cache=False)
    gb = solve(w, ivs, depth_bound=depth_bound, cache=False, objective="bits")
    _check(gb, w, 0, ivs, np.concatenate([_random_inputs(rng, ivs, 300), _one_hot(ivs)]))
    dmin = minimal_depth(w, ivs)
    assert gb.cost * (DEPTH_COST + gb.depth - dmin) <= ga.cost * (DEPTH_COST + ga.depth - dmin)
    if depth_bound is not None:
        assert gb.depth <= minimal_depth(w, ivs) + (2 if depth_bound == "min+2" else 0)


def test_python_cse_fallback():
    """Input depths beyond the kernel's 60-level limit run the pure-Python CSE: still exact and within the bound."""
    rng = np.random.default_rng(4)
    w = rng.integers(-30, 30, (9, 7))
    ivs = [Interval(-64, 63, 0)] * 9
    dep = [61] * 9
    for bound in (None, "min"):
        g = solve(w, ivs, in_depths=dep, depth_bound=bound, cache=False)
        _check(g, w, 0, ivs, np.concatenate([_random_inputs(rng, ivs, 200), _one_hot(ivs)]))
        if bound == "min":
            assert g.depth == minimal_depth(w, ivs, dep)


def test_pair_table_growth(monkeypatch):
    """A 64x64 8-bit matrix has more distinct digit pairs than the kernel's first pair table holds: still exact."""
    import sys

    from hdl_gen.cmvm._kernel import _key
    from hdl_gen.cmvm.csd import center

    sv = sys.modules["hdl_gen.cmvm.solver"]
    rng = np.random.default_rng(64)
    w = rng.integers(-128, 128, (64, 64))
    c, r, _ = center(w)
    keys: set[int] = set()
    grows = False
    for col in sv._columns(c, r, 4):  # the kernel's rule: grow before a column that could pass 2**16 keys
        grows |= len(keys) + len(col) * (len(col) - 1) // 2 > 1 << 16
        keys |= {
            _key.py_func(*a[:3], *b[:3])
            for i, a in enumerate(col)
            for b in col[i + 1 :]
            if len(a) == 3 or len(b) == 3 or a[3] != b[3] or a[4] == b[4]
        }
    assert grows
    vs = sv._vs(("d", 1, 0, True, -3, None, 4))
    monkeypatch.setattr(sv, "VARIANTS", {k: (vs, vs) for k in ("none", "min", "bounded")})
    ivs = [Interval(-128, 127, 0)] * 64
    g = solve(w, ivs, depth_bound="min+1", cache=False)
    _check(g, w, 0, ivs, np.concatenate([_random_inputs(rng, ivs, 60), _one_hot(ivs)]))
    assert g.depth <= minimal_depth(w, ivs) + 1


def test_pair_table_unit():
    """The kernel's open-addressing pair table keeps every key and its values when it grows."""
    from hdl_gen.cmvm._kernel import _find, _grow, _table

    rng = np.random.default_rng(5)
    keys = np.unique(rng.integers(0, 1 << 53, 5000))
    tab = _table(np.int64(16))
    n = 0
    for i, k in enumerate(keys.tolist()):
        tab = _grow(tab, n, 1)
        x = _find(tab[0], k)
        assert tab[0][x] == -1
        tab[0][x] = k
        tab[1][x] = i
        tab[4][x] = -i
        n += 1
    assert tab[0].size >= 2 * n and np.count_nonzero(tab[0] != -1) == n
    for i, k in enumerate(keys.tolist()):
        x = _find(tab[0], k)
        assert tab[0][x] == k and tab[1][x] == i and tab[4][x] == -i


def test_digit_forms_save_adders(monkeypatch):
    """Letting the CSE pick among minimal signed-digit forms gives fewer adders than CSD alone (same strategy)."""
    import sys

    sv = sys.modules["hdl_gen.cmvm.solver"]
    ivs = [Interval(-128, 127, 0)] * 6
    total = {}
    for forms in (1, 4):
        vs = sv._vs(("d", 1, -1000, False, 0, None, forms))
        monkeypatch.setattr(sv, "VARIANTS", {k: (vs, vs) for k in ("none", "min", "bounded")})
        monkeypatch.setattr(sv, "MAX_RESTARTS", 0)
        total[forms] = 0
        for seed in range(12):
            rng = np.random.default_rng(seed)
            w = rng.integers(-8, 8, (6, 6))
            g = solve(w, ivs, cache=False)
            _check(g, w, 0, ivs, np.concatenate([_random_inputs(rng, ivs, 100), _one_hot(ivs)]))
            total[forms] += g.n_adders
    assert total[4] < total[1] - 12  # on average more than one adder saved per 6x6 matrix
