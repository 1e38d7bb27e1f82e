"""Numba kernel of the greedy CSE (see :mod:`hdl_gen.cmvm.cse` for the algorithm)."""

from __future__ import annotations

import heapq

import numpy as np
from numba import njit

_SH_BITS = 8
_SRC_BITS = 22


#: CSE tie-break modes among pairs of equal score (the ``tie`` of :class:`hdl_gen.cmvm.solver.Variant`; a value
#: > 0 is a seed for a pseudo-random order)
TIE_SMALLEST_KEY = 0  # the smaller pair key
TIE_RECENT = -1  # the most recently (re)counted pair: its own creation or the last change of one of its operands
TIE_LEAST_RECENT = -2  # the least recently counted pair
TIE_NEWEST_PAIR = -3  # the newest pair by its own first count
TIE_OLDEST_PAIR = -4  # the oldest pair by its own first count
TIE_LARGER_FIRST = -5  # larger subexpressions first (digits represented by both operands), then the newest


@njit(cache=True, inline="always")
def _key(s0, p0, g0, s1, p1, g1):
    if p0 < p1 or (p0 == p1 and s0 < s1):
        a, b, sh = s0, s1, p1 - p0
    else:
        a, b, sh = s1, s0, p0 - p1
    sub = 1 if g0 != g1 else 0
    return (((a << _SRC_BITS) | b) << _SH_BITS | sh) << 1 | sub


@njit(cache=True, inline="always")
def _unkey(k):
    sub = k & 1
    k >>= 1
    sh = k & ((1 << _SH_BITS) - 1)
    k >>= _SH_BITS
    b = k & ((1 << _SRC_BITS) - 1)
    a = k >> _SRC_BITS
    return a, b, sh, sub


@njit(cache=True, inline="always")
def _hash24(k, seed):
    z = np.uint64(k) ^ (np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15))
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.int64(z & np.uint64(0xFFFFFF))


@njit(cache=True, inline="always")
def _tie(k, seed, born, mod, size):
    """Tie-break rank of pair ``k`` among equal scores (smaller wins); ``seed`` is one of the ``TIE_*`` modes, or
    ``> 0`` for a pseudo-random order seeded by it."""
    if seed == TIE_SMALLEST_KEY:
        return np.int64(0)
    if seed <= TIE_LARGER_FIRST:  # larger subexpressions first (digits represented by both operands), then newest
        a, b, _, _ = _unkey(k)
        return -(size[a] + size[b]) * (np.int64(1) << 40) - born
    if seed <= TIE_NEWEST_PAIR:  # first-count order of the pair alone: newest or oldest first
        return -born if seed == TIE_NEWEST_PAIR else born
    if seed < 0:
        a, b, _, _ = _unkey(k)
        st = max(born, mod[a], mod[b])
        return -st if seed == TIE_RECENT else st
    return _hash24(k, seed)


@njit(cache=True, inline="always")
def _find(keys, k):
    """Open addressing (linear probing): the slot holding pair key ``k``, or the empty slot (-1) for it."""
    mask = keys.shape[0] - 1
    z = np.uint64(k) * np.uint64(0x9E3779B97F4A7C15)
    i = np.int64(z >> np.uint64(40)) & mask
    while keys[i] != k and keys[i] != -1:
        i = (i + 1) & mask
    return i


@njit(cache=True)
def _table(n):
    """An empty pair table for at least ``n`` keys at load <= 1/2: keys, count, born, verified count, real count,
    banned."""
    size = np.int64(1024)
    while size < 2 * n:
        size *= 2
    return (
        np.full(size, -1, dtype=np.int64),
        np.zeros(size, dtype=np.int64),
        np.zeros(size, dtype=np.int64),
        np.full(size, -1, dtype=np.int64),
        np.zeros(size, dtype=np.int64),
        np.zeros(size, dtype=np.bool_),
    )


@njit(cache=True)
def _grow(tab, n_used, n_more):
    """``tab`` rehashed into a larger table if ``n_used + n_more`` keys would pass load 1/2."""
    keys = tab[0]
    if 2 * (n_used + n_more) <= keys.shape[0]:
        return tab
    new = _table(2 * (n_used + n_more))
    for i in range(keys.shape[0]):
        if keys[i] != -1:
            j = _find(new[0], keys[i])
            new[0][j] = keys[i]
            new[1][j] = tab[1][i]
            new[2][j] = tab[2][i]
            new[3][j] = tab[3][i]
            new[4][j] = tab[4][i]
            new[5][j] = tab[5][i]
    return new


@njit(cache=True)
def _slots(o, s, n_src0, lo, hi, pf, pn, pl_o, pl_t, cs, cg, out):
    """The live slots of source ``s`` in column ``o`` into ``out`` (slot order); returns their number.

    An initial source keeps its initial slots (``lo..hi`` per column); a created source sits where it was placed.
    """
    n = 0
    if s < n_src0:
        for t in range(lo[o, s], hi[o, s]):
            if cs[o, t] == s and cg[o, t] != 0:
                out[n] = t
                n += 1
    else:
        for q in range(pf[s], pf[s] + pn[s]):
            t = pl_t[q]
            if pl_o[q] == o and cs[o, t] == s and cg[o, t] != 0:
                out[n] = t
                n += 1
    return n


@njit(cache=True, inline="always")
def _ok(ce, ca, o, i, j):
    """Slots ``i`` and ``j`` of column ``o`` may pair: not two different digit forms of one entry."""
    return ce[o, i] < 0 or ce[o, i] != ce[o, j] or ca[o, i] == ca[o, j]


@njit(cache=True)
def _drop(o, t, cs, cp, cg, ce, ca, cn, keys, count):
    """Empty slot ``t`` of column ``o``, uncounting its pairs with the live slots."""
    s_, p_, g_ = cs[o, t], cp[o, t], cg[o, t]
    cg[o, t] = 0
    for u in range(cn[o]):
        if cg[o, u] != 0 and _ok(ce, ca, o, t, u):
            count[_find(keys, _key(s_, p_, g_, cs[o, u], cp[o, u], cg[o, u]))] -= 1


@njit(cache=True)
def _score(k, c, msb, lsb, sgn, dep, lat_penalty, weight_bias, shift_free):
    a, b, sh, _ = _unkey(k)
    if shift_free:  # width of the narrower operand, whatever the shift
        sh = 0
    ov = min(msb[a], msb[b] + sh) - max(lsb[a], lsb[b] + sh) + (1 if (sgn[a] or sgn[b]) else 0)
    pen = lat_penalty * abs(dep[a] - dep[b])
    if weight_bias < 0:  # pure frequency, ties to the narrower pair
        return c * (-weight_bias) - max(ov, 0) - pen
    return c * (max(ov, 0) + weight_bias) - pen


@njit(cache=True)
def _pscore(k, c, msb, lsb, sgn, dep, lat_penalty, weight_bias, shift_free, jitter, jseed):
    """The score scaled by 2**12, plus a fixed pseudo-random jitter of up to ``jitter`` per mille (0: none)."""
    sc = _score(k, c, msb, lsb, sgn, dep, lat_penalty, weight_bias, shift_free)
    if jitter == 0 or sc <= 0:
        return sc << 12
    return (sc << 12) + ((sc * jitter * 4096 // 1000) * _hash24(k, jseed) >> 24)


@njit(cache=True)
def _new(n_src, s0, s1, sh, sub, msb, lsb, sgn, dep, ops, n_ops):
    msb[n_src] = max(msb[s0], msb[s1] + sh) + 1
    lsb[n_src] = min(lsb[s0], lsb[s1] + sh)
    sgn[n_src] = 1 if (sgn[s0] or sgn[s1] or sub) else 0
    dep[n_src] = max(dep[s0], dep[s1]) + 1
    ops[n_ops, 0] = s0
    ops[n_ops, 1] = s1
    ops[n_ops, 2] = sh
    ops[n_ops, 3] = sub


@njit(cache=True)
def cse_kernel(
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
    jitter=0,
    jseed=0,
):
    """Greedy pair CSE + residual summation on column term slots; returns (ops[n, 4], final[n_col, 3], has[n_col]).

    ``msb/lsb/sgn/dep`` are preallocated for ``n_src0 + max_ops`` sources; ``cs/cp/cg`` are ``[n_col, cap]``
    source/position/sign slots (sign 0 = empty), ``cn`` the used slots per column. ``ce/ca``: the entry and digit
    form of a slot (``ce < 0``: a fixed digit). An entry may start with several minimal signed-digit forms (form 0
    first, its CSD): their digits count as pairs with everything except the entry's other forms; the first
    substitution that uses an entry fixes its form and drops the others; still open entries keep form 0 at the end.
    A pair's count can thus overstate what one can substitute (also under the depth bound), so a pair reaching the
    top is verified: its real occurrence count replaces the count until the count changes again.
    """
    n_col = cs.shape[0]
    max_ops = msb.shape[0] - n_src0
    ops = np.zeros((max(max_ops, 1), 4), dtype=np.int64)
    n_ops = 0
    n_src = n_src0
    kraft = np.zeros(n_col, dtype=np.int64)
    for o in range(n_col):
        for t in range(cn[o]):
            if cg[o, t] != 0 and (ce[o, t] < 0 or ca[o, t] == 0):
                kraft[o] += np.int64(1) << dep[cs[o, t]]
    n_pairs = np.int64(0)  # an upper bound of the initial distinct pairs: size the table for it (small problems)
    for o in range(n_col):
        n_pairs += cn[o] * (cn[o] - 1) // 2
    tab = _table(min(n_pairs, np.int64(1) << 16))
    n_keys = np.int64(0)
    mod = np.zeros(msb.shape[0], dtype=np.int64)
    size = np.ones(msb.shape[0], dtype=np.int64)
    clock = np.int64(1)
    for o in range(n_col):
        n = cn[o]
        tab = _grow(tab, n_keys, n * (n - 1) // 2)
        keys, count, born = tab[0], tab[1], tab[2]
        for i in range(n):
            if cg[o, i] == 0:
                continue
            for j in range(i + 1, n):
                if cg[o, j] == 0 or not _ok(ce, ca, o, i, j):
                    continue
                k = _key(cs[o, i], cp[o, i], cg[o, i], cs[o, j], cp[o, j], cg[o, j])
                x = _find(keys, k)
                if keys[x] == -1:
                    keys[x] = k
                    n_keys += 1
                if count[x] == 0 and seed < 0:
                    born[x] = clock
                    clock += 1
                count[x] += 1
    keys, count, born, vcount, vocc, banned = tab
    heap = [(np.int64(0), np.int64(0), np.int64(0))]
    heap.pop()
    for x in range(keys.shape[0]):
        if keys[x] != -1 and count[x] >= 2:
            k = keys[x]
            heap.append(
                (
                    -_pscore(k, count[x], msb, lsb, sgn, dep, lat_penalty, weight_bias, shift_free, jitter, jseed),
                    _tie(k, seed, born[x], mod, size),
                    k,
                )
            )
    heapq.heapify(heap)
    n_ent = 0
    for o in range(n_col):
        for t in range(cn[o]):
            n_ent = max(n_ent, ce[o, t] + 1)
    form = np.full(max(n_ent, 1), -1, dtype=np.int64)  # per entry: the form fixed in this column's pass
    lo = np.zeros((n_col, n_src0), dtype=np.int32)  # initial slot range of each initial source per column
    hi = np.zeros((n_col, n_src0), dtype=np.int32)
    for o in range(n_col):
        for t in range(cn[o] - 1, -1, -1):
            if cg[o, t] != 0:
                lo[o, cs[o, t]] = t
                hi[o, cs[o, t]] = max(hi[o, cs[o, t]], t + 1)
    pf = np.zeros(msb.shape[0], dtype=np.int64)  # placements (column, slot) of each created source
    pn = np.zeros(msb.shape[0], dtype=np.int64)
    pl_o = np.zeros(cs.size, dtype=np.int64)
    pl_t = np.zeros(cs.size, dtype=np.int64)
    n_pl = 0
    cand = np.zeros(n_col, dtype=np.int64)
    touched = np.zeros(cs.size, dtype=np.int64)  # pairs with the new source that reached a count of 2
    n_touched = 0
    occ_o = np.zeros(cs.size, dtype=np.int64)
    occ_a = np.zeros(cs.size, dtype=np.int64)
    occ_b = np.zeros(cs.size, dtype=np.int64)
    slots0 = np.zeros(cs.shape[1], dtype=np.int64)
    slots1 = np.zeros(cs.shape[1], dtype=np.int64)
    used = np.zeros(cs.shape[1], dtype=np.bool_)
    while len(heap) > 0:
        neg, tie, k = heapq.heappop(heap)
        x = _find(keys, k)
        if banned[x]:
            continue
        craw = count[x]
        c = vocc[x] if vcount[x] == craw else craw
        if c < 2:
            continue
        sc = _pscore(k, c, msb, lsb, sgn, dep, lat_penalty, weight_bias, shift_free, jitter, jseed)
        t = _tie(k, seed, born[x], mod, size)
        if sc != -neg or t > tie:
            heapq.heappush(heap, (-sc, t, k))
            continue
        if sc < 0:
            break
        s0, s1, sh, sub = _unkey(k)
        dnew = max(dep[s0], dep[s1]) + 1
        delta = (np.int64(1) << dnew) - (np.int64(1) << dep[s0]) - (np.int64(1) << dep[s1])
        n_occ = 0
        # candidate columns: where a created operand was placed (ascending), else all
        sx = s0 if s0 >= n_src0 else s1
        n_cand = n_col
        if sx >= n_src0:
            n_cand = 0
            for q in range(pf[sx], pf[sx] + pn[sx]):
                if n_cand == 0 or cand[n_cand - 1] != pl_o[q]:
                    cand[n_cand] = pl_o[q]
                    n_cand += 1
        for ci in range(n_cand):
            o = cand[ci] if sx >= n_src0 else ci
            n0 = _slots(o, s0, n_src0, lo, hi, pf, pn, pl_o, pl_t, cs, cg, slots0)
            if n0 == 0:
                continue
            n1 = _slots(o, s1, n_src0, lo, hi, pf, pn, pl_o, pl_t, cs, cg, slots1)
            if n1 == 0:
                continue
            # occurrences in increasing position of the s0 term (non-overlapping)
            order = np.argsort(cp[o, slots0[:n0]], kind="mergesort")
            for ii in range(n0):
                used[slots0[ii]] = False
                if ce[o, slots0[ii]] >= 0:
                    form[ce[o, slots0[ii]]] = -1
            for jj in range(n1):
                used[slots1[jj]] = False
                if ce[o, slots1[jj]] >= 0:
                    form[ce[o, slots1[jj]]] = -1
            kr = kraft[o]
            for ii in range(n0):
                ta = slots0[order[ii]]
                ea = ce[o, ta]
                if used[ta] or (ea >= 0 and form[ea] >= 0 and form[ea] != ca[o, ta]):
                    continue
                q = cp[o, ta] + sh
                tb = -1
                for jj in range(n1):
                    u = slots1[jj]
                    if cp[o, u] != q or used[u] or u == ta or (cg[o, ta] != cg[o, u]) != (sub == 1):
                        continue
                    eb = ce[o, u]
                    if not _ok(ce, ca, o, ta, u) or (eb >= 0 and form[eb] >= 0 and form[eb] != ca[o, u]):
                        continue
                    tb = u
                    break
                if tb < 0:
                    continue
                if has_limit[o] and kr + delta > limit[o]:
                    continue
                kr += delta
                used[ta] = True
                used[tb] = True
                if ea >= 0:
                    form[ea] = ca[o, ta]
                if ce[o, tb] >= 0:
                    form[ce[o, tb]] = ca[o, tb]
                occ_o[n_occ] = o
                occ_a[n_occ] = ta
                occ_b[n_occ] = tb
                n_occ += 1
        if n_occ < c:  # overstated: re-rank by the real count
            vcount[x] = craw
            vocc[x] = n_occ
            if n_occ >= 2:
                heapq.heappush(
                    heap,
                    (-_pscore(k, n_occ, msb, lsb, sgn, dep, lat_penalty, weight_bias, shift_free, jitter, jseed), t, k),
                )
            continue
        if n_occ < 2:
            banned[x] = True
            continue
        new = n_src
        clock += 1
        mod[s0] = clock
        mod[s1] = clock
        mod[new] = clock
        size[new] = size[s0] + size[s1]
        pf[new] = n_pl
        pn[new] = n_occ
        for r in range(n_occ):
            pl_o[n_pl] = occ_o[r]
            pl_t[n_pl] = occ_a[r]
            n_pl += 1
        _new(n_src, s0, s1, sh, sub, msb, lsb, sgn, dep, ops, n_ops)
        n_src += 1
        n_ops += 1
        for r in range(n_occ):
            o = occ_o[r]
            ta = occ_a[r]
            tb = occ_b[r]
            ga = cg[o, ta]
            pa = cp[o, ta]
            for t2 in (ta, tb):  # fix the form of an open entry: drop its other forms
                e2 = ce[o, t2]
                if e2 < 0:
                    continue
                for u in range(cn[o]):
                    if cg[o, u] != 0 and ce[o, u] == e2 and ca[o, u] != ca[o, t2]:
                        _drop(o, u, cs, cp, cg, ce, ca, cn, keys, count)
                for u in range(cn[o]):
                    if ce[o, u] == e2:
                        ce[o, u] = -1
            _drop(o, ta, cs, cp, cg, ce, ca, cn, keys, count)
            _drop(o, tb, cs, cp, cg, ce, ca, cn, keys, count)
            tab = _grow((keys, count, born, vcount, vocc, banned), n_keys, cn[o])
            keys, count, born, vcount, vocc, banned = tab
            for u in range(cn[o]):
                if cg[o, u] != 0:
                    kk = _key(new, pa, ga, cs[o, u], cp[o, u], cg[o, u])
                    y = _find(keys, kk)
                    if keys[y] == -1:
                        keys[y] = kk
                        n_keys += 1
                    count[y] += 1
                    if count[y] == 1 and seed < 0:
                        born[y] = clock
                    if count[y] == 2:
                        if n_touched == touched.size:
                            touched = np.concatenate((touched, touched))
                        touched[n_touched] = kk
                        n_touched += 1
            cs[o, ta] = new
            cp[o, ta] = pa
            cg[o, ta] = ga
            kraft[o] += delta
        # only pairs with the new source gained counts: push each once, at its final count
        for kk in touched[:n_touched]:
            y = _find(keys, kk)
            if not banned[y]:
                sc = _pscore(kk, count[y], msb, lsb, sgn, dep, lat_penalty, weight_bias, shift_free, jitter, jseed)
                heapq.heappush(heap, (-sc, _tie(kk, seed, born[y], mod, size), kk))
        n_touched = 0
    # residual summation: earliest arrival first, then lowest MSB (Huffman style)
    final = np.zeros((n_col, 3), dtype=np.int64)
    has = np.zeros(n_col, dtype=np.bool_)
    for o in range(n_col):
        h = [(np.int64(0), np.int64(0), np.int64(0), np.int64(0), np.int64(0))]
        h.pop()
        for t in range(cn[o]):
            if cg[o, t] != 0 and (ce[o, t] < 0 or ca[o, t] == 0):  # open entries: their CSD form
                s = cs[o, t]
                h.append((dep[s], msb[s] + cp[o, t], s, cp[o, t], cg[o, t]))
        if len(h) == 0:
            continue
        heapq.heapify(h)
        while len(h) > 1:
            _, _, sa, pa, ga = heapq.heappop(h)
            _, _, sb, pb, gb = heapq.heappop(h)
            if pb < pa or (pb == pa and sb < sa):
                sa, pa, ga, sb, pb, gb = sb, pb, gb, sa, pa, ga
            _new(n_src, sa, sb, pb - pa, 1 if ga != gb else 0, msb, lsb, sgn, dep, ops, n_ops)
            heapq.heappush(h, (dep[n_src], msb[n_src] + pa, n_src, pa, ga))
            n_src += 1
            n_ops += 1
        _, _, s, p, g = h[0]
        final[o, 0] = s
        final[o, 1] = p
        final[o, 2] = g
        has[o] = True
    return ops[:n_ops], final, has
