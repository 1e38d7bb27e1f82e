"""Pipelining: per-op delays in ns, cut into clocked stages, registers placed where they cost the fewest bits.

Pipeline shape (the emitter builds exactly this, :mod:`hdl_gen.emit`):

- ``latency`` ``L`` = register ranks between the ``x`` port and the ``y`` port = cycles from ``valid_in`` to
  ``valid_out``. ``L = 0`` is a purely combinational core.
- For ``L >= 1`` the logic is cut into ``L`` combinational segments ``0 .. L-1``; rank ``r`` (``1 .. L``)
  sits at the end of segment ``r - 1``. **The input port is not registered** (segment 0 starts at ``x``; the
  driver of ``x`` is assumed to be a register, as in the testbenches and board wrappers) and **the output port
  is registered** (``y`` comes straight from rank ``L``).
- A value made in segment ``s`` and last read in segment ``t`` (``L`` for an output) is registered once per
  rank it crosses: ``t - s`` copies. ``shift`` ops are wiring (they share their source's bits and registers);
  constants are never registered.

Timing: an op's arrival inside its segment is the longest chain of op delays since the segment began; a mux
whose value is registered also pays :meth:`~hdl_gen.delay.Family.mux_end_ns` (its own LUT level, which it
otherwise shares with its reader). Every segment must fit the budget ``clock_ns - reg_ns``.

Algorithm: ASAP packing of ops into segments under the budget (an op that would exceed it starts a new
segment, so no op straddles a rank) fixes the latency. Register bits are then minimised exactly, as one
minimum cut (minimum-area retiming of a feed-forward II = 1 pipeline, Leiserson-Saxe with fan-out sharing,
written as a closure problem over threshold variables ``[stage(v) >= l]`` and ``[last(v) >= l]``):

- each node's segment lies between its ASAP and ALAP segments (the least and greatest feasible ones); only
  levels inside that window get variables, so the problem stays small when the clock is tight;
- data order ``stage(u) <= stage(v)`` for every edge, ``last(u) >= stage(v)`` for every reader;
- timing: ``stage(v) >= stage(u) + 1`` whenever the longest ``u → v`` path (plus ``v``'s end delay) exceeds
  the budget (Leiserson-Saxe's D > c pairs; only the first such ``v`` on each path is needed);
- objective ``Σ width(v) · (last(v) - stage(v))``, each value counted once however many readers it has.

Should ops slower than the budget make these constraints inconsistent, the ASAP packing is kept. With ``stages``
given instead of a clock, the tightest budget that fits that many segments is found by bisection (or the
clock's, when looser).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

from hdl_gen.delay import DEFAULT_PART, Family, family_of
from hdl_gen.ir import Graph, Op

__all__ = ["Schedule", "op_delay", "schedule"]

_EPS = 1e-9


def op_delay(op: Op, graph: Graph, fam: Family) -> float:
    """Estimated combinational delay (ns) of one op on family ``fam``: its kind's rule (:mod:`hdl_gen.ops`)."""
    return op.kind.delay(op, graph, fam)


def op_end_delay(op: Op, fam: Family) -> float:
    """What op's value adds to its segment's path when it is registered: a mux's own LUT level, else 0."""
    return fam.mux_end_ns() if op.kind.end_mux(op) else 0.0


@dataclass(frozen=True)
class Schedule:
    """Where every op sits in the pipeline, and what the pipeline costs.

    ``stage[j]`` is op ``j``'s segment (``-1`` for constants: wires everywhere); ``base[j]`` the op whose bits
    ``j`` reuses (itself, or the source of a ``shift`` chain); ``last[j]`` the last segment reading ``j``
    (``latency`` for an output); registers of ``j`` sit at ranks ``stage[j] + 1 .. last[j]``.
    """

    family: Family
    clock_ns: float | None
    latency: int
    stage: tuple[int, ...]
    base: tuple[int, ...]
    last: tuple[int, ...]
    delay_ns: tuple[float, ...]
    finish_ns: tuple[float, ...]  # arrival time inside its segment (without the end delay of a registered mux)
    segment_ns: tuple[float, ...]  # longest combinational path per segment
    critical_path_ns: float  # estimated minimum clock period (longest segment + register overhead)
    register_bits: int  # datapath registers + the valid chain

    @property
    def latency_ns(self) -> float | None:
        return None if self.clock_ns is None else self.latency * self.clock_ns

    @property
    def meets_clock(self) -> bool | None:
        return None if self.clock_ns is None or self.latency == 0 else self.critical_path_ns <= self.clock_ns + 1e-9

    def registers(self, j: int) -> range:
        """Ranks at which op ``j``'s value is registered (empty for shifts, constants and dead values)."""
        if self.base[j] != j or self.stage[j] < 0:
            return range(0)
        return range(self.stage[j] + 1, self.last[j] + 1)


class _Net:
    """The graph as scheduling nodes: shift chains folded into their source, constants dropped."""

    def __init__(self, graph: Graph, fam: Family):
        ops = graph.ops
        n = len(ops)
        self.graph = graph
        self.base = list(range(n))
        for j, op in enumerate(ops):
            if op.kind.alias:
                self.base[j] = self.base[op.args[0]]
        self.is_node = [not op.kind.free for op in ops]
        self.width = [op.width for op in ops]
        self.delay = [op_delay(op, graph, fam) if self.is_node[j] else 0.0 for j, op in enumerate(ops)]
        self.end = [op_end_delay(op, fam) if self.is_node[j] else 0.0 for j, op in enumerate(ops)]
        self.preds: list[list[int]] = [[] for _ in ops]
        self.users: list[list[int]] = [[] for _ in ops]
        for j, op in enumerate(ops):
            if not self.is_node[j]:
                continue
            seen = []
            for a in op.args:
                p = self.base[a]
                if self.is_node[p] and p not in seen:
                    seen.append(p)
            self.preds[j] = seen
            for p in seen:
                self.users[p].append(j)
        self.is_output = [False] * n
        for o in graph.outputs:
            if o is not None and self.is_node[self.base[o]]:
                self.is_output[self.base[o]] = True
        self.nodes = [j for j in range(n) if self.is_node[j]]
        self.fixed0 = [ops[j].kind.port for j in range(n)]

    def asap(self, budget: float) -> list[int]:
        """Earliest segment of every node under ``budget`` ns per segment."""
        stage = [0] * len(self.base)
        fin = [0.0] * len(self.base)
        for j in self.nodes:
            st = max((stage[p] for p in self.preds[j]), default=0)
            start = max((fin[p] for p in self.preds[j] if stage[p] == st), default=0.0)
            if start > 0 and start + self.delay[j] + self.end[j] > budget + _EPS:
                st, start = st + 1, 0.0
            stage[j], fin[j] = st, start + self.delay[j]
        return stage

    def alap(self, budget: float, latency: int) -> list[int] | None:
        """Latest segment of every node under ``budget`` in ``latency`` segments; None when it does not fit."""
        stage = [0] * len(self.base)
        tail = [0.0] * len(self.base)  # longest path from the node's start to its segment's end
        for j in reversed(self.nodes):
            if self.fixed0[j]:
                continue
            st = min((stage[u] for u in self.users[j]), default=latency - 1)
            st = min(st, latency - 1)
            after = max((tail[u] for u in self.users[j] if stage[u] == st), default=0.0)
            t = self.delay[j] + max(self.end[j], after)
            if after > 0 and t > budget + _EPS:
                st, t = st - 1, self.delay[j] + self.end[j]
            if st < 0:
                return None
            stage[j], tail[j] = st, t
        return stage

    def nseg(self, stage: list[int]) -> int:
        return max((stage[j] for j in self.nodes), default=0) + 1

    def finishes(self, stage: list[int]) -> list[float]:
        fin = [0.0] * len(self.base)
        for j in self.nodes:
            start = max((fin[p] for p in self.preds[j] if stage[p] == stage[j]), default=0.0)
            fin[j] = start + self.delay[j]
        return fin

    def last_use(self, stage: list[int], latency: int) -> list[int]:
        last = list(stage)
        for j in self.nodes:
            lu = max((stage[u] for u in self.users[j]), default=stage[j])
            last[j] = max(lu, latency) if self.is_output[j] else lu
        return last

    def reg_bits(self, stage: list[int], latency: int) -> int:
        last = self.last_use(stage, latency)
        return sum(self.width[j] * (last[j] - stage[j]) for j in self.nodes)

    def optimal(self, latency: int, budget: float) -> list[int] | None:
        """The register-minimal segments for ``latency`` under ``budget``, as one minimum cut; None if the
        ASAP/ALAP windows or the timing pairs are inconsistent (an op slower than the budget)."""
        lo = self.asap(budget)
        hi = self.alap(budget, latency)
        if hi is None or self.nseg(lo) > latency or any(lo[j] > hi[j] for j in self.nodes):
            return None
        first: dict[tuple[int, int], int] = {}  # (kind 0: s >= l, kind 1: last >= l; node) -> first var id
        lo_m: dict[int, int] = {}
        hi_m: dict[int, int] = {}
        cost: list[int] = [0, 0]  # flow nodes 0 (source) and 1 (sink) first
        for j in self.nodes:
            if hi[j] > lo[j]:
                first[(0, j)] = len(cost)
                cost += [-self.width[j]] * (hi[j] - lo[j])
            if self.users[j] and not self.is_output[j]:
                lo_m[j] = max(lo[u] for u in self.users[j])
                hi_m[j] = max(hi[u] for u in self.users[j])
                if hi_m[j] > lo_m[j]:
                    first[(1, j)] = len(cost)
                    cost += [self.width[j]] * (hi_m[j] - lo_m[j])

        def lit(kind: int, j: int, level: int) -> int:
            """Threshold literal: -1 true, -2 false, else its flow node."""
            a, b = (lo[j], hi[j]) if kind == 0 else (lo_m[j], hi_m[j])
            if level <= a:
                return -1
            if level > b:
                return -2
            return first[(kind, j)] + level - a - 1

        inf = sum(abs(c) for c in cost) + 1
        flow = _Flow(len(cost))
        for i, c in enumerate(cost):
            if c > 0:
                flow.arc(0, i, c)
            elif c < 0:
                flow.arc(i, 1, -c)
        bad = False

        def imply(a: int, b: int) -> None:  # literal a = 1 => literal b = 1
            nonlocal bad
            if a == -2 or b == -1:
                return
            if a == -1 and b == -2:
                bad = True
            elif a == -1:
                flow.arc(b, 1, inf)
            elif b == -2:
                flow.arc(0, a, inf)
            else:
                flow.arc(b, a, inf)

        for j in self.nodes:
            for level in range(lo[j] + 1, hi[j]):
                imply(lit(0, j, level + 1), lit(0, j, level))
            if (1, j) in first:
                for level in range(lo_m[j] + 1, hi_m[j]):
                    imply(lit(1, j, level + 1), lit(1, j, level))
            for u in self.users[j]:  # s(u) >= s(j); last(j) >= s(u)
                for level in range(lo[j] + 1, hi[j] + 1):
                    imply(lit(0, j, level), lit(0, u, level))
                if j in lo_m:
                    for level in range(lo[u] + 1, hi[u] + 1):
                        imply(lit(0, u, level), lit(1, j, level))
        for u, v in self._timing_pairs(lo, hi, budget):  # s(v) >= s(u) + 1
            for level in range(lo[u] + 1, hi[u] + 1):
                imply(lit(0, u, level), lit(0, v, level + 1))
        if bad or flow.maxflow(0, 1) >= inf:
            return None
        src = flow.source_side(0)
        stage = [0] * len(self.base)
        for j in self.nodes:
            stage[j] = lo[j] + sum(1 for i in range(hi[j] - lo[j]) if not src[first[(0, j)] + i])
        return stage

    def _timing_pairs(self, lo: list[int], hi: list[int], budget: float) -> list[tuple[int, int]]:
        """Pairs ``(u, v)`` whose longest path (plus v's end delay) exceeds ``budget``, so ``v`` must sit in a later
        segment than ``u``; only for ``u`` with a choice and ``v`` not already later by the windows, and only the
        first such ``v`` along each path (later ones follow by data order)."""
        pairs = []
        for u in self.nodes:
            if hi[u] == lo[u]:
                continue
            dist = {u: self.delay[u]}
            heap = list(self.users[u])
            heapq.heapify(heap)
            seen = set(heap)
            while heap:
                x = heapq.heappop(heap)
                if lo[x] > hi[u]:
                    continue  # later anyway
                if any(p not in dist for p in self.preds[x] if p in seen or p == u):
                    continue  # below a node that is already later: follows by data order
                t = self.delay[x] + max(dist[p] for p in self.preds[x] if p in dist)
                if t + self.end[x] > budget + _EPS:
                    pairs.append((u, x))
                    continue
                dist[x] = t
                for y in self.users[x]:
                    if y not in seen:
                        seen.add(y)
                        heapq.heappush(heap, y)
        return pairs


class _Flow:
    """Dinic's maximum flow on integer capacities (small, iterative)."""

    def __init__(self, n: int):
        self.head: list[list[int]] = [[] for _ in range(n)]
        self.to: list[int] = []
        self.cap: list[int] = []

    def arc(self, u: int, v: int, c: int) -> None:
        self.head[u].append(len(self.to))
        self.to.append(v)
        self.cap.append(c)
        self.head[v].append(len(self.to))
        self.to.append(u)
        self.cap.append(0)

    def _levels(self, s: int) -> list[int]:
        level = [-1] * len(self.head)
        level[s] = 0
        queue = [s]
        for u in queue:
            for a in self.head[u]:
                v = self.to[a]
                if self.cap[a] > 0 and level[v] < 0:
                    level[v] = level[u] + 1
                    queue.append(v)
        return level

    def maxflow(self, s: int, t: int) -> int:
        total = 0
        head, to, cap = self.head, self.to, self.cap
        while True:
            level = self._levels(s)
            if level[t] < 0:
                return total
            it = [0] * len(head)
            path: list[int] = []
            u = s
            while True:
                if u == t:
                    f = min(cap[a] for a in path)
                    for a in path:
                        cap[a] -= f
                        cap[a ^ 1] += f
                    total += f
                    path.clear()
                    u = s
                    continue
                hu = head[u]
                while it[u] < len(hu):
                    a = hu[it[u]]
                    if cap[a] > 0 and level[to[a]] == level[u] + 1:
                        break
                    it[u] += 1
                if it[u] < len(hu):
                    a = hu[it[u]]
                    path.append(a)
                    u = to[a]
                    continue
                if u == s:
                    break
                level[u] = -1  # dead end for this phase
                a = path.pop()
                u = to[a ^ 1]
                it[u] += 1

    def source_side(self, s: int) -> list[bool]:
        """Nodes reachable from ``s`` in the residual graph (the minimum cut's source side)."""
        return [lv >= 0 for lv in self._levels(s)]


def schedule(
    graph: Graph,
    *,
    part: str = DEFAULT_PART,
    clock_ns: float | None = 5.0,
    stages: int | None = None,
    minimise_registers: bool = True,
) -> Schedule:
    """Pipeline ``graph`` for ``part``: at ``clock_ns`` (as few segments as fit) or in exactly ``stages`` ranks.

    ``stages=0`` gives a combinational core (latency 0). With ``stages`` given, ``clock_ns`` is only used for
    the latency in ns and the timing check.
    """
    fam = family_of(part)
    if stages is None and clock_ns is None:
        raise ValueError("schedule needs clock_ns (a target period) or stages (a fixed number of register ranks)")
    if clock_ns is not None and not clock_ns > fam.reg_ns:
        raise ValueError(f"clock_ns={clock_ns!r} is not above the register overhead {fam.reg_ns} ns of {fam.title}")
    if stages is not None and (not isinstance(stages, int) or stages < 0):
        raise ValueError(f"stages must be a non-negative int (register ranks), got {stages!r}")
    net = _Net(graph, fam)
    total = _comb(net)
    if stages == 0:
        stage = [0] * len(graph.ops)
        latency, budget = 0, math.inf
    else:
        budget = clock_ns - fam.reg_ns if clock_ns is not None else 0.0
        if stages is not None:  # at least the tightest budget that fits; up to the clock's when it is looser
            budget = max(_bisect_budget(net, stages, total), budget)
        stage = net.asap(budget)
        latency = stages if stages is not None else net.nseg(stage)
    if minimise_registers and latency > 1:
        best = net.optimal(latency, budget)
        if best is not None:  # None only if an op slower than the budget made the windows inconsistent: keep ASAP
            stage = best
    fin = net.finishes(stage)
    for j, op in enumerate(graph.ops):
        if op.kind.constant:
            stage[j] = -1
        elif op.kind.alias:
            stage[j] = stage[net.base[j]] if net.is_node[net.base[j]] else -1
    nseg = max(latency, 1)
    seg = [0.0] * nseg
    for j in net.nodes:
        seg[stage[j]] = max(seg[stage[j]], fin[j] + net.end[j])
    last = net.last_use(stage, latency)
    for j in range(len(graph.ops)):
        if not net.is_node[j]:
            last[j] = stage[j]
    reg = net.reg_bits(stage, latency) + latency if latency else 0
    crit = max(seg) + fam.reg_ns
    return Schedule(
        fam,
        clock_ns,
        latency,
        tuple(stage),
        tuple(net.base),
        tuple(last),
        tuple(net.delay),
        tuple(fin),
        tuple(seg),
        crit,
        reg,
    )


def _comb(net: _Net) -> float:
    """Longest combinational path (ns) with no registers at all."""
    fin = [0.0] * len(net.base)
    for j in net.nodes:
        fin[j] = max((fin[p] for p in net.preds[j]), default=0.0) + net.delay[j]
    return max((fin[j] + net.end[j] for j in net.nodes), default=0.0)


def _bisect_budget(net: _Net, stages: int, total: float) -> float:
    """Smallest per-segment budget whose ASAP packing needs at most ``stages`` segments."""
    lo = max((net.delay[j] + net.end[j] for j in net.nodes), default=0.0)
    hi = max(total, lo)
    if net.nseg(net.asap(lo)) <= stages:
        return lo
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if net.nseg(net.asap(mid)) <= stages:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-4:
            break
    return hi
