"""Graph + Schedule → Amaranth component → Verilog (deterministic, multiplier-free for constants).

Ports (docs/interfaces.md): ``clk``, ``rst`` (synchronous, active high; resets only the valid chain), packed
``x`` and ``valid_in`` in, packed ``y`` and ``valid_out`` out, optional clock enable ``en``. Element ``e`` of a
port occupies ``port[offset : offset + width]`` (C order, LSB first, zero-width elements omitted) and holds the
element's mantissa at its ``f`` (two's complement when signed); see :func:`layout`.

Every op becomes one exactly sized wire (``v<id>``; the interval's width, signed iff its lower bound is
negative); registers ``v<id>_r<rank>`` are ``reset_less`` and sit where :mod:`hdl_gen.schedule` put them.
Each op kind's lowering is its ``emit`` in :mod:`hdl_gen.ops`: add/sub/neg as Amaranth arithmetic truncated to
the IR width (the IR guarantees no overflow); quantize as round (``floor`` + a one-bit increment decided from the
dropped bits: RND is "+½ LSB then drop") then WRAP (keep the low bits) or SAT/SAT_SYM (compare against the
bounds and mux); relu/max/min/select as muxes; lookups as ``Switch`` ROMs; only variable × variable products
use ``*``.
"""

from __future__ import annotations

from collections.abc import Mapping

from amaranth.back import verilog
from amaranth.hdl import Cat, Const, Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl_gen import ternary
from hdl_gen.ir import Graph
from hdl_gen.schedule import Schedule
from hgq.fixed import Interval

__all__ = ["Core", "layout", "to_verilog"]


def _shape(iv: Interval):
    w = iv.width
    return signed(w) if iv.lo < 0 else unsigned(w)


def _port_layout(types_or_ivs, shape) -> dict:
    elements, off = [], 0
    for idx, (w, sgn, f) in enumerate(types_or_ivs):
        elements.append({"index": idx, "offset": off, "width": w, "signed": bool(sgn) if w else False, "f": f})
        off += w
    return {"width": max(off, 1), "shape": list(shape), "elements": elements}


def layout(graph: Graph, sched: Schedule, *, name: str, part: str, clock_enable: bool = False) -> dict:
    """The layout JSON of docs/interfaces.md for this graph and schedule."""
    ins = [(t.width, t.k, t.f) for t in graph.input_types]
    outs = []
    for o in range(len(graph.outputs)):
        iv = graph.output_interval(o)
        outs.append((iv.width, iv.lo < 0, iv.f))
    return {
        "name": name,
        "latency": sched.latency,
        "clock_ns": sched.clock_ns,
        "part": part,
        "clock_enable": bool(clock_enable),
        "input": _port_layout(ins, graph.input_shape),
        "output": _port_layout(outs, graph.output_shape),
    }


class Core(wiring.Component):
    """The pipelined datapath of ``graph`` as scheduled by ``sched`` (see the module docstring for the ports).

    ``fold`` maps an adder to the adder folded into it as one ternary sum (:func:`hdl_gen.ternary.pairs`);
    ``cells``: emit those as AMD ``LUT6_2``/``CARRY8`` instances (else the same sums as arithmetic, for amaranth.sim).
    """

    def __init__(
        self,
        graph: Graph,
        sched: Schedule,
        *,
        clock_enable: bool = False,
        fold: Mapping[int, int] | None = None,
        cells: bool = True,
    ):
        if len(sched.stage) != len(graph.ops):
            raise ValueError("schedule does not belong to this graph (op counts differ); schedule the graph again")
        self.graph, self.sched, self.clock_enable = graph, sched, clock_enable
        self.fold, self.cells = dict(fold or {}), cells
        self.in_width = max(sum(t.width for t in graph.input_types), 1)
        self.out_width = max(sum(graph.output_interval(o).width for o in range(len(graph.outputs))), 1)
        sig = {"x": In(self.in_width), "valid_in": In(1), "y": Out(self.out_width), "valid_out": Out(1)}
        if clock_enable:
            sig["en"] = In(1)
        if sched.latency == 0:  # keep the documented clk/rst ports on a combinational core (unused)
            sig["clk"] = In(1)
            sig["rst"] = In(1)
        super().__init__(sig)

    def elaborate(self, platform):
        g, sc = self.graph, self.sched
        m = Module()
        e = _Elab(m, g, sc)
        folded = set(self.fold.values())  # inner adders: computed inside their reader's ternary sum

        # every op's wire and registers exist before any logic reads them
        for j, op in enumerate(g.ops):
            if not op.kind.free and sc.base[j] == j and j not in folded:
                e.comb[j] = Signal(_shape(op.interval), name=f"v{j}")
        for j in range(len(g.ops)):
            for r in sc.registers(j):
                e.regs[(j, r)] = Signal(e.comb[j].shape(), name=f"v{j}_r{r}", reset_less=True)
        comb, regs, val = e.comb, e.regs, e.val

        # input port fields
        off = 0
        for j, t in zip(g.inputs, g.input_types, strict=True):
            if j is not None:
                bits = self.x[off : off + t.width]
                m.d.comb += comb[j].eq(bits.as_signed() if t.k else bits)
            off += t.width

        for j, op in enumerate(g.ops):  # each kind's emitter (hdl_gen.ops) drives its op's wire
            if op.kind.port or op.kind.free or sc.base[j] != j or j in folded:
                continue
            if j in self.fold:
                ternary.emit(e, j, self.fold[j], cells=self.cells)
            else:
                op.kind.emit(e, j)

        # registers (reset-less), in op-id then rank order
        sync = []
        for j in range(len(g.ops)):
            prev = comb.get(j)
            for r in sc.registers(j):
                sync.append(regs[(j, r)].eq(prev))
                prev = regs[(j, r)]

        # output port
        L = sc.latency
        fields = []
        for o in g.outputs:
            if o is None:
                continue
            w = g.ops[o].width
            if w == 0:
                continue
            fields.append(val(o, L)[:w])
        m.d.comb += self.y.eq(Cat(*fields) if fields else Const(0, 1))

        # valid chain: the only reset logic
        if L == 0:
            m.d.comb += self.valid_out.eq(self.valid_in)
        else:
            prev = self.valid_in
            for r in range(1, L + 1):
                v = Signal(name=f"valid_r{r}")
                sync.append(v.eq(prev))
                prev = v
            m.d.comb += self.valid_out.eq(prev)
        if sync:
            if self.clock_enable:
                with m.If(self.en):
                    m.d.sync += sync
            else:
                m.d.sync += sync
        return m


class _Elab:
    """What an op kind's emitter (:meth:`hdl_gen.ops.OpKind.emit`) reads and drives while a :class:`Core` is
    elaborated: the module, each op's wire in its own segment and its registers."""

    def __init__(self, m: Module, g: Graph, sc: Schedule):
        self.m, self.g, self.sc = m, g, sc
        self.comb: dict[int, Signal] = {}  # op id -> wire in its own segment
        self.regs: dict[tuple[int, int], Signal] = {}  # (op id, rank) -> register output

    def stage(self, j: int) -> int:
        return self.sc.stage[j]

    def wire(self, j: int) -> Signal:
        return self.comb[j]

    def drive(self, j: int, value) -> None:
        """Op ``j``'s wire = ``value`` truncated to the op's width (the IR guarantees no overflow)."""
        s = self.comb[j]
        self.m.d.comb += s.eq(value[: self.g.ops[j].interval.width])

    def val(self, a: int, t: int):
        """The bits of op ``a`` (through shifts) as seen in segment ``t``."""
        op = self.g.ops[a]
        if op.kind.constant:
            w = max(op.width, 1)
            return Const(op.interval.lo, signed(w) if op.interval.lo < 0 else unsigned(w))
        p = self.sc.base[a]
        if self.g.ops[p].kind.constant:
            return self.val(p, t)
        return self.comb[p] if t <= self.sc.stage[p] else self.regs[(p, t)]

    def aligned(self, a: int, t: int, f: int):
        fa = self.g.ops[a].interval.f
        if f < fa:
            raise AssertionError(f"op {a}: cannot align f={fa} to coarser f={f}")
        v = self.val(a, t)
        return v << (f - fa) if f > fa else v


def to_verilog(core: wiring.Component, name: str) -> str:
    """Verilog text of ``core`` as module ``name`` (no source locations, no internal attributes); with ternary
    cells, followed by the ternary-sum module and the cell models (:data:`hdl_gen.ternary.SUM_VERILOG`)."""
    text = verilog.convert(core, name=name, emit_src=False, strip_internal_attrs=True)
    cells = getattr(core, "fold", None) and core.cells  # composite cores (hdl_gen.sequential) fold nothing
    return text + ternary.SUM_VERILOG if cells else text
