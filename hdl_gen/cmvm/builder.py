"""Incremental construction of an adder graph with exact (tight) intervals, costs and depths."""

from __future__ import annotations

import heapq

import numpy as np

from hdl_gen.cost import solver_adder_bits
from hgq.fixed import Interval

from .graph import AddOp

__all__ = ["Builder", "sum_terms"]


class Builder:
    """Sources (inputs, then adders) with their exact linear coefficients over the inputs.

    Every source is ``sum_i coef[i] * x_i`` for integer ``coef``; its interval is the tight range of that linear
    form over the input boxes, so correlated paths (``x - x``) are never over-widened.
    """

    def __init__(self, in_intervals: tuple[Interval, ...], in_depths: tuple[int, ...], exact: bool = True):
        self.exact = exact
        self.n_in = len(in_intervals)
        self.ivals: list[Interval] = list(in_intervals)
        self.depth: list[int] = list(in_depths)
        self.f: list[int] = [iv.f for iv in in_intervals]
        self.big_f = max(self.f, default=0)
        self._lo = [iv.lo << (self.big_f - iv.f) for iv in in_intervals]
        self._hi = [iv.hi << (self.big_f - iv.f) for iv in in_intervals]
        self._lo_np = np.array(self._lo, dtype=object)
        self._hi_np = np.array(self._hi, dtype=object)
        scale = max([abs(v) for v in self._lo + self._hi] + [1])
        self._limit = (1 << 62) // (scale * max(self.n_in, 1))
        self._fast = self._limit > 0
        if self._fast:
            self._lo64 = np.array(self._lo, dtype=np.int64)
            self._hi64 = np.array(self._hi, dtype=np.int64)
        self.coef: list[np.ndarray] = [np.eye(1, self.n_in, i, dtype=np.int64)[0] for i in range(self.n_in)]
        self.ops: list[AddOp] = []
        # value scale of each source: interval mantissa bounds packed for the overlap score
        self.maxabs: list[int] = [max(abs(iv.lo), abs(iv.hi)) for iv in in_intervals]
        self.signed: list[bool] = [iv.lo < 0 for iv in in_intervals]

    @property
    def n_src(self) -> int:
        return len(self.ivals)

    def _range(self, c: np.ndarray) -> tuple[int, int]:
        if self._fast and int(np.abs(c).max(initial=0)) < self._limit:
            lo = np.where(c > 0, c * self._lo64, c * self._hi64)
            hi = np.where(c > 0, c * self._hi64, c * self._lo64)
            return int(lo.sum()), int(hi.sum())
        co = c.astype(object)
        lo = np.where(c > 0, co * self._lo_np, co * self._hi_np)
        hi = np.where(c > 0, co * self._hi_np, co * self._lo_np)
        return int(lo.sum()), int(hi.sum())

    def add(self, a: int, b: int, shift: int, sub: bool) -> int:
        """Append ``v[a] +- v[b] * 2**shift`` (``shift >= 0``); returns its source index."""
        if shift < 0:
            raise ValueError("internal: adder shifts must be >= 0")
        fa, fb = self.f[a], self.f[b] - shift
        f = max(fa, fb)
        if not self.exact:  # light mode (variant search): depths and estimated widths only
            dep = max(self.depth[a], self.depth[b]) + 1
            msb = max(self.maxabs[a].bit_length() - self.f[a], self.maxabs[b].bit_length() - self.f[b] + shift) + 1
            self.ops.append((a, b, shift, sub))
            self.depth.append(dep)
            self.f.append(f)
            self.maxabs.append((1 << max(msb + f, 0)) - 1)
            self.signed.append(self.signed[a] or self.signed[b] or sub)
            self.ivals.append(None)
            return self.n_src - 1
        cb = self.coef[b] << shift
        c = self.coef[a] - cb if sub else self.coef[a] + cb
        lo_s, hi_s = self._range(c)
        d = self.big_f - f  # >= 0: every source step is a multiple of the finest input step
        iv = Interval(lo_s >> d, hi_s >> d, f)
        width = iv.width
        cost = solver_adder_bits(width, f, fa, fb)
        dep = max(self.depth[a], self.depth[b]) + 1
        self.ops.append(AddOp(a, b, shift, sub, iv, cost, dep))
        self.ivals.append(iv)
        self.depth.append(dep)
        self.f.append(f)
        self.coef.append(c)
        self.maxabs.append(max(abs(iv.lo), abs(iv.hi)))
        self.signed.append(iv.lo < 0)
        return self.n_src - 1

    def overlap(self, s0: int, s1: int, shift: int) -> int:
        """Full-adder bits of ``v[s0] +- v[s1] << shift``: the bits where both operands overlap (+1 if signed)."""
        msb0 = self.maxabs[s0].bit_length() - self.f[s0]
        lsb0 = -self.f[s0]
        msb1 = self.maxabs[s1].bit_length() - self.f[s1] + shift
        lsb1 = -self.f[s1] + shift
        return min(msb0, msb1) - max(lsb0, lsb1) + int(self.signed[s0] or self.signed[s1])


def sum_terms(b: Builder, terms: list[tuple[int, int, int]]) -> tuple[int, int, int] | None:
    """Sum signed shifted terms with adders in ``b``: earliest arrival first, then lowest MSB (Huffman style)."""
    if not terms:
        return None
    h = [(b.depth[s], b.maxabs[s].bit_length() - b.f[s] + p, s, p, g) for s, p, g in terms]
    heapq.heapify(h)
    while len(h) > 1:
        _, _, sa, pa, ga = heapq.heappop(h)
        _, _, sb, pb, gb = heapq.heappop(h)
        if (pb, sb) < (pa, sa):
            sa, pa, ga, sb, pb, gb = sb, pb, gb, sa, pa, ga
        new = b.add(sa, sb, pb - pa, ga != gb)
        heapq.heappush(h, (b.depth[new], b.maxabs[new].bit_length() - b.f[new] + pa, new, pa, ga))
    _, _, s, p, g = h[0]
    return (s, p, g)
