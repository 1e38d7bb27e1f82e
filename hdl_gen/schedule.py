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

Algorithm: ASAP packing of ops into segments under the budget ``clock_ns - reg_ns`` (an op that would exceed
the budget starts a new segment, so no op straddles a rank); then a local search moves single ops between
segments (within the timing budget and the data dependencies) whenever that lowers the total register bits,
e.g. a quantizer moves into its adder's segment so the narrow result is registered instead of the wide sum.
With ``stages`` given instead, the smallest budget that fits in that many segments is found by bisection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hdl_gen.delay import Family, family_of
from hdl_gen.ir import Graph, Op

__all__ = ["Schedule", "op_delay", "schedule"]

_FREE = ("const", "shift")  # no hardware of their own
_CUT_TRIES = 8  # candidate cut placements tried by the register search


def op_delay(op: Op, graph: Graph, fam: Family) -> float:
    """Estimated combinational delay (ns) of one op on family ``fam``."""
    k = op.kind
    w = op.width
    if k in ("input", "const", "shift"):
        return 0.0
    if k in ("add", "neg"):
        return fam.add_ns(w)
    if k == "relu" or k == "select":
        return fam.mux_ns()
    if k in ("max", "min"):
        a, b = (graph.ops[x].interval for x in op.args)
        f = max(a.f, b.f)
        return fam.compare_ns(max(a.width + f - a.f, b.width + f - b.f) + 1) + fam.mux_ns()
    if k == "lookup":
        return fam.lookup_ns(graph.ops[op.args[0]].width)
    if k == "mul":
        a, b = (graph.ops[x].width for x in op.args)
        return fam.mul_ns(a, b)
    if k == "quantize":
        src = graph.ops[op.args[0]].interval
        _, _, f, rnd, ovf = op.attrs
        rounded_w = max(src.width - max(src.f - f, 0), 1)
        t = fam.add_ns(rounded_w + 1) if src.f > f and rnd != "TRN" else 0.0
        if ovf != "WRAP":  # comparisons on the unrounded input run beside the rounding adder
            t = max(t, fam.compare_ns(src.width + 1)) + fam.mux_ns()
        return t
    raise ValueError(f"op kind {k!r} has no delay model; add it to hdl_gen.schedule.op_delay")


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
    finish_ns: tuple[float, ...]  # arrival time inside its segment
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
            if op.kind == "shift":
                self.base[j] = self.base[op.args[0]]
        self.is_node = [op.kind not in _FREE for op in ops]
        self.width = [op.width for op in ops]
        self.delay = [op_delay(op, graph, fam) if self.is_node[j] else 0.0 for j, op in enumerate(ops)]
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
        self.fixed0 = [ops[j].kind == "input" for j in range(n)]

    def asap(self, budget: float) -> tuple[list[int], list[float]]:
        """Earliest segment and in-segment arrival of every node under ``budget`` ns per segment."""
        stage = [0] * len(self.base)
        fin = [0.0] * len(self.base)
        for j in self.nodes:
            st = max((stage[p] for p in self.preds[j]), default=0)
            start = max((fin[p] for p in self.preds[j] if stage[p] == st), default=0.0)
            if start > 0 and start + self.delay[j] > budget + 1e-12:
                st, start = st + 1, 0.0
            stage[j], fin[j] = st, start + self.delay[j]
        return stage, fin

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

    # -- register-minimising local search ------------------------------------------------------------------
    def improve(self, stage: list[int], fin: list[float], latency: int, budget: float, passes: int = 6) -> None:
        """Move single nodes between segments while that lowers register bits and keeps every segment in budget."""
        last = self.last_use(stage, latency)
        for it in range(passes):
            moved = 0
            order = reversed(self.nodes) if it % 2 == 0 else iter(self.nodes)
            for j in order:
                if self.fixed0[j]:
                    continue
                s = stage[j]
                lo = max((stage[p] for p in self.preds[j]), default=0)
                hi = min((stage[u] for u in self.users[j]), default=latency - 1)
                hi = min(hi, latency - 1)
                best_gain, best = 0, None
                for s2 in range(lo, hi + 1):
                    if s2 == s:
                        continue
                    gain = self.width[j] * (s2 - s)  # own value: registered last-s2 instead of last-s times
                    for p in self.preds[j]:
                        other = max((stage[u] for u in self.users[p] if u != j), default=stage[p])
                        if self.is_output[p]:
                            other = max(other, latency)
                        gain -= self.width[p] * (max(other, s2) - last[p])
                    if gain > best_gain:
                        upd = self._fits(j, s2, stage, fin, budget)
                        if upd is not None:
                            best_gain, best = gain, (s2, upd)
                if best is None:
                    continue
                s2, upd = best
                stage[j] = s2
                for u, f in upd.items():
                    fin[u] = f
                for p in self.preds[j]:
                    last[p] = max((stage[u] for u in self.users[p]), default=stage[p])
                    if self.is_output[p]:
                        last[p] = max(last[p], latency)
                moved += 1
            if not moved:
                break

    def _fits(self, j: int, s2: int, stage: list[int], fin: list[float], budget: float) -> dict[int, float] | None:
        """New arrival times if node ``j`` moves to segment ``s2``, or None when a path would exceed the budget."""
        start = max((fin[p] for p in self.preds[j] if stage[p] == s2), default=0.0)
        fj = start + self.delay[j]
        if start > 0 and fj > budget + 1e-12:
            return None
        upd = {j: fj}
        stack = [j]
        while stack:
            v = stack.pop()
            for u in self.users[v]:
                if stage[u] != s2 or u == j:
                    continue
                su = max(upd.get(p, fin[p]) for p in self.preds[u] if stage[p] == s2 or p == j)
                fu = su + self.delay[u]
                if fu > upd.get(u, fin[u]) + 1e-12:
                    if fu > budget + 1e-12:
                        return None
                    upd[u] = fu
                    stack.append(u)
        return upd


def schedule(
    graph: Graph,
    *,
    part: str = "xcvu13p-flga2577-2-e",
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
    total, _ = _comb(net)
    if stages == 0:
        stage = [0] * len(graph.ops)
        latency, budget = 0, math.inf
    else:
        budget = clock_ns - fam.reg_ns if clock_ns is not None else 0.0
        if stages is not None:  # at least the tightest budget that fits; up to the clock's when it is looser
            budget = max(_bisect_budget(net, stages, total), budget)
        stage, _ = net.asap(budget)
        latency = max((stage[j] for j in net.nodes), default=0) + 1
        if stages is not None:
            latency = stages
    fin = net.finishes(stage)
    if minimise_registers and latency > 0:
        # cut positions: ASAP packings at budgets between the tightest one that keeps this latency and the
        # clock's; each is improved by single-op moves (within the clock's budget); the fewest bits win
        tight = _bisect_budget(net, latency, total)
        best = None
        for k in range(_CUT_TRIES):
            b = budget if k == 0 else tight + (budget - tight) * (k - 1) / max(_CUT_TRIES - 2, 1)
            st, _ = net.asap(b)
            if max((st[j] for j in net.nodes), default=0) + 1 > latency:
                continue
            f = net.finishes(st)
            net.improve(st, f, latency, budget)
            bits = net.reg_bits(st, latency)
            if best is None or bits < best[0]:
                best = (bits, st)
        stage = best[1]
        fin = net.finishes(stage)
    for j, op in enumerate(graph.ops):
        if op.kind == "const":
            stage[j] = -1
        elif op.kind == "shift":
            stage[j] = stage[net.base[j]] if net.is_node[net.base[j]] else -1
    nseg = max(latency, 1)
    seg = [0.0] * nseg
    for j in net.nodes:
        seg[stage[j]] = max(seg[stage[j]], fin[j])
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


def _comb(net: _Net) -> tuple[float, list[float]]:
    """Longest combinational path (ns) with no registers at all."""
    fin = [0.0] * len(net.base)
    for j in net.nodes:
        fin[j] = max((fin[p] for p in net.preds[j]), default=0.0) + net.delay[j]
    return max((fin[j] for j in net.nodes), default=0.0), fin


def _bisect_budget(net: _Net, stages: int, total: float) -> float:
    """Smallest per-segment budget whose ASAP packing needs at most ``stages`` segments."""
    lo = max((net.delay[j] for j in net.nodes), default=0.0)
    hi = max(total, lo)

    def nseg(b: float) -> int:
        st, _ = net.asap(b)
        return max((st[j] for j in net.nodes), default=0) + 1

    if nseg(lo) <= stages:
        return lo
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if nseg(mid) <= stages:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-4:
            break
    return hi
