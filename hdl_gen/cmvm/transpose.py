"""Transposition of an adder network: a solution of ``Kᵀ`` becomes a solution of ``K``.

A linear network of two-input adders computing ``v = u @ Kᵀ`` is reversed edge by edge (Tellegen): every node
of fan-out ``f`` becomes a sum of ``f`` shifted terms (``f - 1`` adders) and every adder becomes a free fan-out.
The reversed network computes ``y = x @ K`` with ``A + n_in - n_out`` adders (``A``: adders of the solution of
``Kᵀ``, ``n_in x n_out`` the shape of ``K``), so tall matrices (many inputs, few outputs) are often cheaper solved
through their transpose, where the greedy CSE shares across many more columns.
"""

from __future__ import annotations

from .builder import Builder, sum_terms
from .csd import merge_terms

__all__ = ["transpose"]

Term = tuple[int, int, int]


def transpose(
    b: Builder, n_u: int, ops: list[tuple[int, int, int, bool]], taps: list[Term | None]
) -> list[Term | None]:
    """Reverse a network over ``n_u`` sources ``u`` into ``b`` (whose inputs are the tap targets ``x``).

    Args:
        b: builder over the inputs ``x_0 .. x_{len(taps)-1}``; the reversed adders are appended to it.
        n_u: number of inputs of the network to reverse (the outputs of the reversed one).
        ops: its adders ``(a, b, shift, sub)`` in SSA order over sources ``0 .. n_u-1`` then the ops.
        taps: per ``x_i`` the network's output ``v_i = sign * 2**pos * node[source]`` as ``(source, pos, sign)``.

    Returns:
        per ``u_o`` the term ``(source in b, pos, sign)`` holding ``sum_i x_i * d v_i / d u_o``, or None if zero.
    """
    n_node = n_u + len(ops)
    into: list[list[Term]] = [[] for _ in range(n_node)]  # the terms summed into each reversed node
    for i, t in enumerate(taps):
        if t is not None:
            s, p, g = t
            into[s].append((i, p, g))
    for j in range(len(ops) - 1, -1, -1):
        a, s1, sh, sub = ops[j]
        t = sum_terms(b, merge_terms(into[n_u + j]))
        into[n_u + j] = []
        if t is None:
            continue
        s, p, g = t
        into[a].append((s, p, g))
        into[s1].append((s, p + sh, -g if sub else g))
    return [sum_terms(b, merge_terms(into[o])) for o in range(n_u)]
