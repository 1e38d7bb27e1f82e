"""The result of the CMVM solver: an SSA graph of two-input shift-add adders, with an exact integer evaluator."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from hgq.fixed import Interval

__all__ = ["AddOp", "AdderGraph"]


@dataclass(frozen=True, slots=True)
class AddOp:
    """One adder: ``value = v[a] + (-1 if sub else 1) * v[b] * 2**shift`` (real values; ``shift >= 0``).

    ``interval`` is the exact (tight) range of the result at step ``2**-interval.f`` with
    ``interval.f = max(f_a, f_b - shift)``; since it is tight, computing the sum modulo ``2**width`` is exact.
    ``cost`` is the adder bits (result bits at or above the coarser operand LSB), ``depth`` the arrival depth
    in adder levels (``max(depth_a, depth_b) + 1``).
    """

    a: int
    b: int
    shift: int
    sub: bool
    interval: Interval
    cost: float
    depth: int


@dataclass(frozen=True)
class AdderGraph:
    """A multiplier-free implementation of ``y = x @ W``.

    Sources are numbered ``0 .. n_in-1`` (inputs) then ``n_in + j`` for ``ops[j]``. Output ``o`` is
    ``sign * v[source] * 2**shift`` for ``outputs[o] = (source, shift, sign)``, or the constant 0 for ``None``.
    """

    n_in: int
    in_intervals: tuple[Interval, ...]
    ops: tuple[AddOp, ...]
    outputs: tuple[tuple[int, int, int] | None, ...]
    out_intervals: tuple[Interval, ...]
    in_depths: tuple[int, ...] = ()

    @property
    def n_out(self) -> int:
        return len(self.outputs)

    @property
    def n_adders(self) -> int:
        return len(self.ops)

    @property
    def cost(self) -> float:
        """Total adder bits."""
        return float(sum(op.cost for op in self.ops))

    def source_interval(self, s: int) -> Interval:
        return self.in_intervals[s] if s < self.n_in else self.ops[s - self.n_in].interval

    def source_depth(self, s: int) -> int:
        if s < self.n_in:
            return self.in_depths[s] if self.in_depths else 0
        return self.ops[s - self.n_in].depth

    @property
    def out_depths(self) -> tuple[int, ...]:
        return tuple(0 if o is None else self.source_depth(o[0]) for o in self.outputs)

    @property
    def depth(self) -> int:
        """Largest output arrival depth (adder levels, including input depths)."""
        return max(self.out_depths, default=0)

    def matrix(self) -> list[list[Fraction]]:
        """The implemented matrix ``W`` (n_in x n_out) as exact Fractions, rebuilt from the graph."""
        coef: list[dict[int, Fraction]] = [{i: Fraction(1)} for i in range(self.n_in)]
        for op in self.ops:
            c = dict(coef[op.a])
            m = Fraction(-1 if op.sub else 1) * Fraction(2) ** op.shift
            for i, v in coef[op.b].items():
                c[i] = c.get(i, Fraction(0)) + m * v
            coef.append({i: v for i, v in c.items() if v != 0})
        w = [[Fraction(0)] * self.n_out for _ in range(self.n_in)]
        for o, out in enumerate(self.outputs):
            if out is None:
                continue
            s, sh, sg = out
            for i, v in coef[s].items():
                w[i][o] = sg * v * Fraction(2) ** sh
        return w

    def evaluate(self, x_mant: np.ndarray) -> np.ndarray:
        """Exact outputs for int64 input mantissas ``x_mant[N, n_in]`` (input j at ``in_intervals[j].f``).

        Returns int64 ``[N, n_out]`` mantissas, output ``o`` at ``out_intervals[o].f``.
        """
        x = np.asarray(x_mant)
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"evaluate expects mantissas of shape [N, {self.n_in}], got {x.shape}")
        if x.dtype.kind not in "iu":
            raise TypeError(f"evaluate takes integer mantissas, got {x.dtype}; convert with hgq.fixed.to_mantissa")
        x = x.astype(np.int64)
        v: list[np.ndarray] = [x[:, j] for j in range(self.n_in)]
        fs = [iv.f for iv in self.in_intervals]
        for op in self.ops:
            f = op.interval.f
            a = v[op.a] << (f - fs[op.a])
            b = v[op.b] << (f - fs[op.b] + op.shift)
            v.append(a - b if op.sub else a + b)
            fs.append(f)
        y = np.zeros((x.shape[0], self.n_out), dtype=np.int64)
        for o, out in enumerate(self.outputs):
            if out is not None:
                s, sh, sg = out
                # value = sg * v[s] * 2**-fs[s] * 2**sh; out f = fs[s] - sh
                y[:, o] = (
                    v[s] << (self.out_intervals[o].f - (fs[s] - sh))
                    if sg > 0
                    else -(v[s] << (self.out_intervals[o].f - (fs[s] - sh)))
                )
        return y

    def __repr__(self) -> str:
        return (
            f"AdderGraph(n_in={self.n_in}, n_out={self.n_out}, n_adders={self.n_adders}, "
            f"cost={self.cost:g}, depth={self.depth})"
        )
