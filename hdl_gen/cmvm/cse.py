"""Greedy two-term common-subexpression elimination over signed shifted digits, then depth-ordered summation.

State: per column a set of terms ``(source, pos, sign)`` meaning ``sign * v[source] * 2**pos``. A *pair* of two
terms in one column, ordered by ``(pos, source)``, is ``key = (s0, s1, shift, sub)`` ≡ ``v[s0] ± v[s1] << shift``.
The greedy repeatedly materialises the pair of best score ``count * weight - penalty`` (count of occurrences,
with overlap; weight = full-adder overlap bits) and substitutes its non-overlapping occurrences. The best pair is
tracked incrementally: counts change only for pairs touching removed/added terms, and a lazy max-heap holds an
upper bound of every pair's score (re-pushed on increase, corrected on pop).

Hard depth bound: a column whose terms arrive at depths ``d_t`` can be summed within depth ``B`` iff
``sum(2**d_t) <= 2**B`` (Kraft); a substitution is only made where it keeps that inequality, so the final
Huffman-style summation always meets the bound.

Two implementations, on purpose: :func:`cse_fast` (the numba kernel, :mod:`._kernel`) is the one the solver
uses; it packs a pair into one int64 key and depths into int64 Kraft sums, so it has fixed limits (shifts < 200,
depths <= 60, < 4M sources). :func:`cse` is the same greedy in plain Python with unbounded integers, used only
beyond those limits; it keeps each weight's CSD form and breaks ties by the smaller key (``TIE_SMALLEST_KEY``), so
on such problems the tie-break, digit-form and jitter options have no effect.

Digit forms (numba kernel only): a weight may enter with all its minimal signed-digit forms; the first substitution
that uses one of its digits fixes the form and drops the others. Counts can then overstate what is substitutable, so
the kernel verifies a pair's real occurrence count before taking it and re-ranks it if it was lower.
"""

from __future__ import annotations

import heapq

from .builder import Builder, sum_terms

__all__ = ["cse"]

Term = tuple[int, int, int]


def _key(s0: int, p0: int, g0: int, s1: int, p1: int, g1: int) -> tuple[int, int, int, bool]:
    if (p0, s0) < (p1, s1):
        return (s0, s1, p1 - p0, g0 != g1)
    return (s1, s0, p0 - p1, g0 != g1)


def cse(
    b: Builder,
    cols: list[list[Term]],
    bounds: list[int | None],
    *,
    lat_penalty: int = 0,
    weight_bias: int = 1,
    shift_free: bool = False,
) -> list[Term | None]:
    """Share digit pairs across ``cols`` (adding adders to ``b``) and sum each column to one term.

    Args:
        b: the graph under construction (sources of the terms).
        cols: per column, its terms ``(source, pos, sign)`` with distinct ``(source, pos)``.
        bounds: per column, a hard depth bound or None.
        lat_penalty: score penalty per level of depth difference between the two operands.
        weight_bias: added to the overlap bits of a pair to form its weight (< 0: pure frequency).
        shift_free: overlap bits of the unshifted operands (the narrower operand's width).

    Returns:
        per column the single term holding its value, or None for an empty column.
    """
    n_col = len(cols)
    tm: list[dict[tuple[int, int], int]] = [{(s, p): g for s, p, g in c} for c in cols]
    where: dict[int, set[int]] = {}
    for o, c in enumerate(cols):
        for s, _, _ in c:
            where.setdefault(s, set()).add(o)
    limit = [None if bd is None else 1 << bd for bd in bounds]
    kraft = [sum(1 << b.depth[s] for s, _, _ in c) for c in cols]
    for o in range(n_col):
        if limit[o] is not None and kraft[o] > limit[o]:
            raise AssertionError("internal: column infeasible for its depth bound")

    count: dict[tuple[int, int, int, bool], int] = {}
    for c in cols:
        n = len(c)
        for i in range(n):
            s0, p0, g0 = c[i]
            for j in range(i + 1, n):
                s1, p1, g1 = c[j]
                k = _key(s0, p0, g0, s1, p1, g1)
                count[k] = count.get(k, 0) + 1

    wcache: dict[tuple[int, int, int, bool], tuple[int, int]] = {}

    def wp(k):
        r = wcache.get(k)
        if r is None:
            ov = max(b.overlap(k[0], k[1], 0 if shift_free else k[2]), 0)
            pen = lat_penalty * abs(b.depth[k[0]] - b.depth[k[1]])
            r = wcache[k] = (ov, pen)
        return r

    def score(k, c):
        ov, pen = wp(k)
        if weight_bias < 0:  # pure frequency, ties to the narrower pair
            return c * -weight_bias - ov - pen
        return c * (ov + weight_bias) - pen

    heap = []
    for k, c in count.items():
        if c >= 2:
            heap.append((-score(k, c), k))
    heapq.heapify(heap)
    banned: set[tuple[int, int, int, bool]] = set()

    def remove(o: int, s: int, p: int) -> int:
        t = tm[o]
        g = t.pop((s, p))
        for (s1, p1), g1 in t.items():
            k = _key(s, p, g, s1, p1, g1)
            count[k] -= 1
        if not any(ss == s for ss, _ in t):
            where[s].discard(o)
        return g

    def insert(o: int, s: int, p: int, g: int) -> None:
        t = tm[o]
        for (s1, p1), g1 in t.items():
            k = _key(s, p, g, s1, p1, g1)
            c = count.get(k, 0) + 1
            count[k] = c
            if c >= 2 and k not in banned:
                heapq.heappush(heap, (-score(k, c), k))
        t[(s, p)] = g
        where.setdefault(s, set()).add(o)

    while heap:
        neg, k = heapq.heappop(heap)
        if k in banned:
            continue
        c = count.get(k, 0)
        if c < 2:
            continue
        sc = score(k, c)
        if sc != -neg:
            heapq.heappush(heap, (-sc, k))
            continue
        if sc < 0:
            break
        s0, s1, sh, sub = k
        dnew = max(b.depth[s0], b.depth[s1]) + 1
        delta = (1 << dnew) - (1 << b.depth[s0]) - (1 << b.depth[s1])
        occ: list[tuple[int, int]] = []
        for o in sorted(where.get(s0, ()) & where.get(s1, ())):
            t = tm[o]
            ps = sorted(p for s, p in t if s == s0)
            used: set[int] = set()
            kr = kraft[o]
            for p in ps:
                q = p + sh
                if p in used or (s1, q) not in t or (s0 == s1 and q in used):
                    continue
                if (t[(s0, p)] != t[(s1, q)]) != sub:
                    continue
                if limit[o] is not None and kr + delta > limit[o]:
                    continue
                kr += delta
                if s0 == s1:
                    used.add(p)
                    used.add(q)
                occ.append((o, p))
        if len(occ) < 2:
            banned.add(k)
            continue
        new = b.add(s0, s1, sh, sub)
        for o, p in occ:
            g = remove(o, s0, p)
            remove(o, s1, p + sh)
            insert(o, new, p, g)
            kraft[o] += delta

    # residual summation: combine the two earliest-arriving terms (then the narrowest), Huffman style
    return [sum_terms(b, [(s, p, g) for (s, p), g in tm[o].items()]) for o in range(n_col)]


def cse_fast(
    b: Builder,
    cols: list[list[Term]],
    bounds: list[int | None],
    *,
    lat_penalty: int = 0,
    weight_bias: int = 1,
    shift_free: bool = False,
    seed: int = 0,
    jitter: int = 0,
    jseed: int = 0,
) -> list[Term | None]:
    """:func:`cse` run by the numba kernel (same algorithm, estimated widths for the score).

    A term may also be ``(source, pos, sign, entry, form)``: one digit of one of several minimal signed-digit forms
    of an entry (form 0 its CSD); the kernel picks each entry's form while it shares pairs (see
    :func:`._kernel.cse_kernel`). Outside the kernel's limits (shifts >= 200, depths > 60, > 4M sources) it falls
    back to :func:`cse`, which keeps form 0 and has no tie-break modes or jitter: ``seed``, ``jitter`` and
    ``jseed`` are then ignored.
    """
    import numpy as np

    from ._kernel import cse_kernel

    n_col = len(cols)
    total = sum(len(c) for c in cols)
    cap = max((len(c) for c in cols), default=0)
    max_pos = max((t[1] for c in cols for t in c), default=0)
    n_src0 = b.n_src
    if (
        n_col == 0
        or cap == 0
        or max_pos >= 200
        or n_src0 + total >= 1 << 22
        or any(bd is not None and bd > 60 for bd in bounds)
        or max(b.depth) > 60
    ):
        cols = [[t[:3] for t in c if len(t) == 3 or t[4] == 0] for c in cols]
        return cse(b, cols, bounds, lat_penalty=lat_penalty, weight_bias=weight_bias, shift_free=shift_free)
    n_tot = n_src0 + total
    msb = np.zeros(n_tot, np.int64)
    lsb = np.zeros(n_tot, np.int64)
    sgn = np.zeros(n_tot, np.int64)
    dep = np.zeros(n_tot, np.int64)
    msb[:n_src0] = [m.bit_length() - f for m, f in zip(b.maxabs, b.f, strict=True)]
    lsb[:n_src0] = [-f for f in b.f]
    sgn[:n_src0] = b.signed
    dep[:n_src0] = b.depth
    cs = np.zeros((n_col, cap), np.int64)
    cp = np.zeros((n_col, cap), np.int64)
    cg = np.zeros((n_col, cap), np.int64)
    ce = np.full((n_col, cap), -1, np.int64)
    ca = np.zeros((n_col, cap), np.int64)
    cn = np.zeros(n_col, np.int64)
    for o, c in enumerate(cols):
        cn[o] = len(c)
        for t, term in enumerate(c):
            cs[o, t], cp[o, t], cg[o, t] = term[:3]
            if len(term) == 5:
                ce[o, t], ca[o, t] = term[3:]
    limit = np.array([0 if bd is None else 1 << bd for bd in bounds], np.int64)
    has_limit = np.array([bd is not None for bd in bounds], np.bool_)
    ops, final, has = cse_kernel(
        n_src0,
        msb,
        lsb,
        sgn,
        dep,
        cs,
        cp,
        cg,
        ce,
        ca,
        cn,
        limit,
        has_limit,
        lat_penalty,
        weight_bias,
        shift_free,
        seed,
        jitter,
        jseed,
    )
    for a, s1, sh, sub in ops.tolist():
        b.add(a, s1, sh, bool(sub))
    return [tuple(int(v) for v in final[o]) if has[o] else None for o in range(n_col)]
