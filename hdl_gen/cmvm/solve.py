"""``solve``: constant matrix × vector → a minimal shift-add adder graph under an optional hard depth bound."""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from hgq.fixed import Interval

from .builder import Builder
from .csd import center, csd_digits, to_int_matrix
from .cse import cse_fast as cse
from .decompose import decompose
from .graph import AdderGraph

__all__ = ["minimal_depth", "solve"]


def _kraft_depth(depths: list[int]) -> int:
    """Smallest depth at which terms arriving at ``depths`` can be summed by two-input adders."""
    if not depths:
        return 0
    s = sum(1 << d for d in depths)
    return (s - 1).bit_length() if s > 1 else 0


def _columns(m: np.ndarray, row_shift: np.ndarray) -> list[list[tuple[int, int, int]]]:
    d = csd_digits(m)
    cols: list[list[tuple[int, int, int]]] = [[] for _ in range(m.shape[1])]
    ii, oo, kk = np.nonzero(d)
    for i, o, k in zip(ii.tolist(), oo.tolist(), kk.tolist(), strict=True):
        cols[o].append((i, k + int(row_shift[i]), int(d[i, o, k])))
    return cols


def _parse_bound(depth_bound, min_depth: int) -> int | None:
    if depth_bound is None:
        return None
    if isinstance(depth_bound, int | np.integer) and not isinstance(depth_bound, bool):
        b = int(depth_bound)
    elif isinstance(depth_bound, str) and (mt := re.fullmatch(r"\s*min\s*(?:\+\s*(\d+))?\s*", depth_bound)):
        b = min_depth + int(mt.group(1) or 0)
    else:
        raise ValueError(f"depth_bound must be None, an int, 'min' or 'min+K', got {depth_bound!r}")
    if b < min_depth:
        raise ValueError(
            f"depth_bound={depth_bound!r} is below the minimal achievable adder depth {min_depth}; "
            f"pass depth_bound >= {min_depth} (or 'min')"
        )
    return b


def minimal_depth(w, in_intervals, in_depths=None) -> int:
    """The minimal achievable output depth: a balanced CSD adder tree per column (with input arrival depths)."""
    m, _, depths, _ = _prepare(w, in_intervals, in_depths)
    c, r, _ = center(m)
    return max((_kraft_depth([depths[s] for s, _, _ in col]) for col in _columns(c, r)), default=0)


def _prepare(w, in_intervals, in_depths):
    m, e = to_int_matrix(w)
    ivs = tuple(in_intervals)
    if len(ivs) != m.shape[0]:
        raise ValueError(f"W has {m.shape[0]} rows (inputs) but {len(ivs)} input intervals were given")
    for iv in ivs:
        if not isinstance(iv, Interval):
            raise TypeError(f"in_intervals must be hgq.fixed.Interval objects, got {type(iv).__name__}")
    if in_depths is None:
        depths = (0,) * len(ivs)
    else:
        depths = tuple(int(d) for d in in_depths)
        if len(depths) != len(ivs) or any(d < 0 for d in depths):
            raise ValueError(f"in_depths must hold {len(ivs)} non-negative ints, got {in_depths!r}")
    m = m.copy()
    for i, iv in enumerate(ivs):
        if iv.is_zero:
            m[i, :] = 0
    return m, e, depths, ivs


def solve(
    w,
    in_intervals,
    *,
    depth_bound: int | str | None = None,
    in_depths=None,
    cache: bool = True,
    lat_penalty: int | None = None,
) -> AdderGraph:
    """Solve ``y = x @ W`` as a graph of two-input shift-add adders.

    Args:
        w: ``n_in x n_out`` matrix of exact dyadic rationals (float64, ints or Fractions).
        in_intervals: per input its :class:`hgq.fixed.Interval`; inputs of interval ``{0}`` are pruned.
        depth_bound: None (minimise adders), an int (hard bound on output adder depth, counting ``in_depths``),
            ``"min"`` (the minimal achievable depth) or ``"min+K"``.
        in_depths: per input its arrival depth (default 0).
        cache: reuse the result for an identical matrix, intervals and options.
        lat_penalty: score penalty per level of operand depth difference (default: 0 if unbounded, else 64).

    Returns:
        the :class:`AdderGraph`; deterministic for equal arguments.
    """
    m, e, depths, ivs = _prepare(w, in_intervals, in_depths)
    if cache:
        return _solve_cached(m.tobytes(), m.shape, e, ivs, depths, depth_bound, lat_penalty)
    return _solve(m, e, ivs, depths, depth_bound, lat_penalty)


@lru_cache(maxsize=512)
def _solve_cached(mb: bytes, shape, e, ivs, depths, depth_bound, lat_penalty) -> AdderGraph:
    m = np.frombuffer(mb, dtype=np.int64).reshape(shape)
    return _solve(m, e, ivs, depths, depth_bound, lat_penalty)


def _merge(terms: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Combine terms on equal sources into CSD form (so ``(source, pos)`` is unique)."""
    acc: dict[int, int] = {}
    for s, p, g in terms:
        acc[s] = acc.get(s, 0) + g * (1 << p)  # positions are >= 0
    out = []
    for s in sorted(acc):
        v, p = acc[s], 0
        while v:  # non-adjacent form on Python ints (no overflow for long shift chains)
            if v & 1:
                d = 2 - (v & 3)
                out.append((s, p, d))
                v -= d
            v >>= 1
            p += 1
    return out


def _variant(c, r, cs, e, ivs, depths, bound, max_len, lat_penalty, weight_bias, seed=0, shift_free=False):
    """One candidate: ``(n_adders, depth, ops, final terms)`` from a light (width-estimating) build."""
    n_out = c.shape[1]
    row_w = np.array([1 << d for d in depths], dtype=np.int64)
    b = Builder(ivs, depths, exact=False)
    if max_len == 1:
        cols = _columns(c, r)
        res = cse(
            b, cols, [bound] * n_out, lat_penalty=lat_penalty, weight_bias=weight_bias, shift_free=shift_free, seed=seed
        )
    else:
        tree = decompose(c, row_w, bound, max_len)
        cols0 = _columns(tree.diff, r)
        z = cse(
            b, cols0, tree.budget, lat_penalty=lat_penalty, weight_bias=weight_bias, shift_free=shift_free, seed=seed
        )
        cols1 = []
        for o in range(n_out):
            terms = []
            u, sg, sh = o, 1, 0
            while u >= 0:
                if z[u] is not None:
                    s, p, g = z[u]
                    terms.append((s, p + sh, g * sg))
                sg *= int(tree.sign[u])
                sh += int(tree.shift[u])
                u = int(tree.parent[u])
            cols1.append(_merge(terms))
        res = cse(
            b,
            cols1,
            [bound] * n_out,
            lat_penalty=lat_penalty,
            weight_bias=weight_bias,
            shift_free=shift_free,
            seed=seed,
        )
    depth = max((b.depth[t[0]] for t in res if t is not None), default=0)
    return len(b.ops), depth, b.ops, res


def _finish(ops, res, cs, e, ivs, depths, bound) -> AdderGraph:
    """Replay the chosen ops with exact intervals and wire the outputs."""
    b = Builder(ivs, depths)
    for a, s1, sh, sub in ops:
        b.add(a, s1, sh, sub)
    outputs = []
    out_ivs = []
    for o, t in enumerate(res):
        if t is None:
            outputs.append(None)
            out_ivs.append(Interval(0, 0, 0))
            continue
        s, p, g = t
        sh = p + int(cs[o]) - e
        iv = b.ivals[s].shift(sh)
        outputs.append((s, sh, g))
        out_ivs.append(iv if g > 0 else -iv)
    g_ = AdderGraph(len(ivs), tuple(ivs), tuple(b.ops), tuple(outputs), tuple(out_ivs), tuple(depths))
    if bound is not None and g_.depth > bound:  # pragma: no cover - guarded by construction
        raise AssertionError(f"internal: depth {g_.depth} exceeds the bound {bound}")
    return g_


def _solve(m: np.ndarray, e: int, ivs, depths, depth_bound, lat_penalty) -> AdderGraph:
    c, r, cs = center(m)
    cols = _columns(c, r)
    col_min = [_kraft_depth([depths[s] for s, _, _ in col]) for col in cols]
    bound = _parse_bound(depth_bound, max(col_min, default=0))
    if lat_penalty is None:
        lat_penalty = 0 if bound is None else 64
    min_depth = max(col_min, default=0)
    big = c.shape[0] * c.shape[1] > LARGE
    if bound is None:
        variants = VARIANTS_FREE
    elif bound == min_depth:
        variants = VARIANTS_MIN
    else:
        variants = VARIANTS_BOUNDED
    if big:
        variants = variants[:N_BIG]
    best = None
    for max_len, wb, tie in variants:
        n_add, depth, ops, res = _variant(c, r, cs, e, ivs, depths, bound, max_len, lat_penalty, wb, tie)
        # unbounded: fewest adders, but never pay more than DEPTH_GUARD extra levels for it
        guard = bound is None and depth > min_depth + DEPTH_GUARD
        score = (guard, n_add, depth)
        if best is None or score < best[0]:
            best = (score, ops, res)
    return _finish(best[1], best[2], cs, e, ivs, depths, bound)


#: problems with more matrix entries than this try only the first N_BIG variants (speed)
LARGE = 2048
N_BIG = 3
#: candidate (column-tree path cap or None = unlimited, CSE weight bias, CSE tie-break) tried per depth regime;
#: tie-break -1 favours pairs on recently created/changed sources, -2 the oldest, 0 the smallest key
VARIANTS_FREE: tuple[tuple[int | None, int, int], ...] = (
    (None, 100, -1),
    (3, -1000, -1),
    (1, 100, -2),
    (None, -1000, 0),
    (3, 100, -2),
)
VARIANTS_BOUNDED: tuple[tuple[int | None, int, int], ...] = (
    (3, 100, -1),
    (3, -1000, -1),
    (None, 100, -2),
    (1, -1000, -1),
    (1, 100, 0),
)
VARIANTS_MIN: tuple[tuple[int | None, int, int], ...] = ((1, 100, 0), (1, -1000, 0), (None, 100, 0), (None, -1000, 0))
#: with depth_bound=None, variants deeper than the minimal depth + this are only used if nothing else exists
DEPTH_GUARD = 4
