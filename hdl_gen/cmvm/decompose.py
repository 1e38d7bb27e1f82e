"""Column decomposition ``K = M0 · M1``: a spanning tree over the columns (plus a zero root).

Column ``i`` with parent ``p`` is rebuilt as ``y_i = z_i + sign_i * 2**shift_i * y_p`` where ``z_i = x @ D[:, i]``
(``D`` = M0, the tree-edge differences, usually with far fewer CSD digits than ``K[:, i]``). The tree is grown
greedily (Prim) by the CSD digit count of the difference, allowing the parent scaled by ``±2**s``. Under a hard
depth bound ``B`` an edge is only taken if every root path keeps ``sum(2**depth(z)) <= 2**B`` (Kraft), so the path
sums of stage 1 are always summable within ``B``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Tree", "csd_weight", "decompose"]

SHIFTS = (0, 1, 2)
ROOT_OFF = 1


def csd_weight(x: np.ndarray) -> np.ndarray:
    """Number of non-zero CSD digits of each int64 entry."""
    a = np.abs(x)
    h = a >> 1
    return np.bitwise_count(h ^ (a + h)).astype(np.int64)


def _pow2ceil(v: int) -> int:
    return 0 if v <= 0 else 1 << (v - 1).bit_length()


@dataclass
class Tree:
    parent: np.ndarray  # -1: root
    sign: np.ndarray
    shift: np.ndarray
    diff: np.ndarray  # n_in x n_out: K[:, i] = diff[:, i] + sign_i * 2**shift_i * K[:, parent_i]
    budget: list[int | None]  # per column, the depth bound for z_i (stage 0)


def decompose(k: np.ndarray, row_w: np.ndarray, bound: int | None, max_len: int | None) -> Tree:
    """Grow the column tree of ``k`` (centred int64). ``row_w[r] = 2**in_depth[r]`` (Kraft weights).

    ``max_len`` caps the number of tree edges on a root path (1 = no decomposition, None = unlimited).
    """
    n_in, n = k.shape
    parent = np.full(n, -1, dtype=np.int64)
    sign = np.ones(n, dtype=np.int64)
    shift = np.zeros(n, dtype=np.int64)
    nnz = csd_weight(k)
    root_d = nnz.sum(axis=0)
    root_kd = (nnz * row_w[:, None]).sum(axis=0)
    best_cost = np.maximum(root_d - ROOT_OFF, 0).astype(np.int64)
    best_kd = root_kd.copy()
    path_s = np.zeros(n, dtype=object)
    plen = np.zeros(n, dtype=np.int64)
    attached = np.zeros(n, dtype=bool)
    lim = None if bound is None else 1 << bound
    big = np.iinfo(np.int64).max
    facs = np.array([sg * (1 << s) for sg in (1, -1) for s in SHIFTS], dtype=np.int64)
    for _ in range(n):
        cand = np.where(attached, big, best_cost * (n + 1) * 4 + plen[np.maximum(parent, 0)] * (parent >= 0))
        i = int(np.argmin(cand))
        attached[i] = True
        p = int(parent[i])
        path_s[i] = (path_s[p] if p >= 0 else 0) + _pow2ceil(int(best_kd[i]))
        plen[i] = (plen[p] + 1) if p >= 0 else 1
        if max_len is not None and plen[i] >= max_len:
            continue
        rest = np.nonzero(~attached)[0]
        if rest.size == 0:
            break
        # differences of every unattached column against ±2**s * column i
        d = k[:, rest, None] - k[:, i, None, None] * facs[None, None, :]
        w = csd_weight(d)
        dist = w.sum(axis=0)  # (rest, facs)
        kd = (w * row_w[:, None, None]).sum(axis=0)
        j = np.argmin(dist * (1 << 20) + kd, axis=1)
        dd = dist[np.arange(rest.size), j]
        kk = kd[np.arange(rest.size), j]
        cost = dd  # one adder joins z to the parent; z itself costs dd - 1
        for t, u in enumerate(rest.tolist()):
            if cost[t] >= best_cost[u]:
                continue
            if lim is not None and path_s[i] + _pow2ceil(int(kk[t])) > lim:
                continue
            best_cost[u] = cost[t]
            best_kd[u] = kk[t]
            parent[u] = i
            f = int(facs[j[t]])
            sign[u] = 1 if f > 0 else -1
            shift[u] = abs(f).bit_length() - 1
    diff = k.copy()
    for u in range(n):
        if parent[u] >= 0:
            diff[:, u] = k[:, u] - sign[u] * (k[:, parent[u]] << shift[u])
    budget: list[int | None] = [None] * n
    if bound is not None:
        budget = _budgets(parent, diff, row_w, bound)
    return Tree(parent, sign, shift, diff, budget)


def _budgets(parent: np.ndarray, diff: np.ndarray, row_w: np.ndarray, bound: int) -> list[int | None]:
    """Largest per-node depth bounds with ``sum(2**b) <= 2**bound`` on every root path (greedy, root first)."""
    n = parent.size
    kd = (csd_weight(diff) * row_w[:, None]).sum(axis=0)
    b = [(int(v) - 1).bit_length() if v > 0 else None for v in kd.tolist()]
    children: list[list[int]] = [[] for _ in range(n)]
    roots = []
    for u in range(n):
        (children[parent[u]] if parent[u] >= 0 else roots).append(u)

    def w(u):
        return 0 if b[u] is None else 1 << b[u]

    def max_below(u) -> int:  # largest Kraft sum from u (inclusive) down to a leaf
        return w(u) + max((max_below(c) for c in children[u]), default=0)

    lim = 1 << bound
    order = list(roots)
    above = {u: 0 for u in roots}
    for u in order:
        if b[u] is not None:
            rest = max_below(u) - w(u)
            while above[u] + (1 << (b[u] + 1)) + rest <= lim:
                b[u] += 1
        for c in children[u]:
            above[c] = above[u] + w(u)
            order.append(c)
    return b
