"""Graph + Schedule → Amaranth component → Verilog (deterministic, multiplier-free for constants).

Ports (docs/interfaces.md): ``clk``, ``rst`` (synchronous, active high; resets only the valid chain), packed
``x`` and ``valid_in`` in, packed ``y`` and ``valid_out`` out, optional clock enable ``en``. Element ``e`` of a
port occupies ``port[offset : offset + width]`` (C order, LSB first, zero-width elements omitted) and holds the
element's mantissa at its ``f`` (two's complement when signed); see :func:`layout`.

Every op becomes one exactly sized wire (``v<id>``; the interval's width, signed iff its lower bound is
negative); registers ``v<id>_r<rank>`` are ``reset_less`` and sit where :mod:`hdl_gen.schedule` put them.
Lowering: add/sub/neg as Amaranth arithmetic truncated to the IR width (the IR guarantees no overflow);
quantize as round (``floor`` + a one-bit increment decided from the dropped bits: RND is "+½ LSB then drop")
then WRAP (keep the low bits) or SAT/SAT_SYM (compare against the bounds and mux); relu/max/min/select as
muxes; lookups as ``Switch`` ROMs; only variable × variable products use ``*``.
"""

from __future__ import annotations

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl_gen.ir import Graph
from hdl_gen.schedule import Schedule
from hgq.fixed import Interval, requantize

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
    """The pipelined datapath of ``graph`` as scheduled by ``sched`` (see the module docstring for the ports)."""

    def __init__(self, graph: Graph, sched: Schedule, *, clock_enable: bool = False):
        if len(sched.stage) != len(graph.ops):
            raise ValueError("schedule does not belong to this graph (op counts differ); schedule the graph again")
        self.graph, self.sched, self.clock_enable = graph, sched, clock_enable
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
        comb: dict[int, object] = {}  # op id -> wire in its own segment
        regs: dict[tuple[int, int], Signal] = {}  # (op id, rank) -> register output

        def val(a: int, t: int):
            """The bits of op ``a`` (through shifts) as seen in segment ``t``."""
            op = g.ops[a]
            if op.kind == "const":
                w = max(op.width, 1)
                return Const(op.interval.lo, signed(w) if op.interval.lo < 0 else unsigned(w))
            p = sc.base[a]
            if g.ops[p].kind == "const":
                return val(p, t)
            return comb[p] if t <= sc.stage[p] else regs[(p, t)]

        def aligned(a: int, t: int, f: int):
            fa = g.ops[a].interval.f
            if f < fa:
                raise AssertionError(f"op {a}: cannot align f={fa} to coarser f={f}")
            v = val(a, t)
            return v << (f - fa) if f > fa else v

        # every op's wire and registers exist before any logic reads them
        for j, op in enumerate(g.ops):
            if op.kind not in ("const", "shift") and sc.base[j] == j:
                comb[j] = Signal(_shape(op.interval), name=f"v{j}")
        for j in range(len(g.ops)):
            for r in sc.registers(j):
                regs[(j, r)] = Signal(comb[j].shape(), name=f"v{j}_r{r}", reset_less=True)

        # input port fields
        off = 0
        for j, t in zip(g.inputs, g.input_types, strict=True):
            if j is not None:
                bits = self.x[off : off + t.width]
                m.d.comb += comb[j].eq(bits.as_signed() if t.k else bits)
            off += t.width

        for j, op in enumerate(g.ops):
            if op.kind in ("input", "const", "shift") or sc.base[j] != j:
                continue
            t = sc.stage[j]
            iv = op.interval
            s = comb[j]
            w = iv.width
            k = op.kind
            if k == "add":
                a, b = op.args
                shift, sub = op.attrs
                fb = g.ops[b].interval.f - shift
                if iv.f < fb:
                    raise AssertionError(f"op {j}: operand f {fb} finer than the result f {iv.f}")
                va = aligned(a, t, iv.f)
                vb = val(b, t)
                vb = vb << (iv.f - fb) if iv.f > fb else vb
                m.d.comb += s.eq((va - vb if sub else va + vb)[:w])
            elif k == "neg":
                m.d.comb += s.eq((-aligned(op.args[0], t, iv.f))[:w])
            elif k == "relu":
                a = val(op.args[0], t)
                m.d.comb += s.eq(Mux(a[-1], 0, a)[:w])
            elif k in ("max", "min"):
                a, b = (aligned(x, t, iv.f) for x in op.args)
                m.d.comb += s.eq(Mux(a > b if k == "max" else a < b, a, b)[:w])
            elif k == "select":
                c, b, d = op.args
                vc = val(c, t)
                vb, vd = aligned(b, t, iv.f), aligned(d, t, iv.f)
                neg = vc[-1] if g.ops[c].interval.lo < 0 else Const(0, 1)
                m.d.comb += s.eq(Mux(neg, vd, vb)[:w])
            elif k == "mul":
                a, b = op.args
                m.d.comb += s.eq((val(a, t) * val(b, t))[:w])
            elif k == "lookup":
                (table,) = op.attrs
                a = op.args[0]
                ia = g.ops[a].interval
                wa = ia.width
                with m.Switch(val(a, t).as_unsigned()):
                    for v in range(ia.lo, ia.hi + 1):
                        with m.Case(v & ((1 << wa) - 1)):
                            m.d.comb += s.eq(Const(table[v - ia.lo] & ((1 << w) - 1), w))
            elif k == "quantize":
                m.d.comb += s.eq(self._quantize(val(op.args[0], t), g.ops[op.args[0]].interval, op)[:w])
            else:
                raise ValueError(f"op {j}: kind {k!r} cannot be emitted")

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

    @staticmethod
    def _quantize(a, ia: Interval, op):
        """Hardware quantize of wire ``a`` (interval ``ia``) to the op's format; the value at the op's own f."""
        k, i, f, rnd, ovf = op.attrs
        wq = k + i + f
        d = ia.f - f
        signed_a = ia.lo < 0
        a_in = a
        if d > 0:  # drop d LSBs with rounding
            a = _extend(a, ia.width + d + 2)
            fl = a >> d
            half = a[d - 1]
            low = a[: d - 1].any() if d > 1 else Const(0, 1)
            neg = a[-1] if signed_a else Const(0, 1)
            up = {
                "TRN": None,
                "TRN_ZERO": neg & a[:d].any(),
                "RND": half,
                "RND_CONV": half & (low | a[d]),
                "RND_ZERO": half & (low | neg),
                "RND_INF": half & (low | ~neg),
                "RND_MIN_INF": half & low,
            }[rnd]
            r = fl if up is None else fl + up
        else:
            r = a << -d if d < 0 else a
        # r: the rounded mantissa at f, exact (wide enough)
        if ovf == "WRAP":
            bits = _extend(r, wq)[:wq]
            q = bits.as_signed() if k else bits
        else:  # saturate: the comparisons read the unrounded input (rounding is monotone), in parallel with it
            hi = (1 << (wq - 1)) - 1 if k else (1 << wq) - 1
            lo = (-(1 << (wq - 1)) if ovf == "SAT" else -((1 << (wq - 1)) - 1)) if k else 0
            q = r
            over, under = _sat_thresholds(ia, f, rnd, lo, hi)
            if over is not None:
                q = Mux(a_in > over, hi, q)
            if under is not None:
                q = Mux(a_in < under, lo, q)
        ds = f - op.interval.f  # the result interval may sit on a coarser grid (exact: low bits are zero)
        return q >> ds if ds > 0 else q


def _extend(v, w: int):
    """``v`` sign- or zero-extended to at least ``w`` bits."""
    n = v.shape().width
    if n >= w:
        return v
    if v.shape().signed:
        return Cat(v, v[-1].replicate(w - n)).as_signed()
    return Cat(v, Const(0, w - n))


def _sat_thresholds(ia: Interval, f: int, rnd: str, lo: int, hi: int) -> tuple[int | None, int | None]:
    """Input mantissas ``over``/``under`` with ``round(m) > hi`` ⇔ ``m > over`` and ``round(m) < lo`` ⇔ ``m < under``.

    None where the bound cannot be crossed. Rounding is monotone, so each is found by bisection on
    :func:`hgq.fixed.requantize` (wide enough that it never overflows).
    """
    w = max(ia.width, 1) + abs(ia.f - f) + 4

    def rounded(m: int) -> int:
        return int(requantize(np.array([m], dtype=np.int64), ia.f, 1, w - f, f, rnd, "SAT")[0])

    def last_true(pred, a: int, b: int) -> int:  # largest m in [a, b] with pred(m), pred monotone decreasing
        while a < b:
            mid = (a + b + 1) // 2
            if pred(mid):
                a = mid
            else:
                b = mid - 1
        return a

    over = under = None
    if rounded(ia.hi) > hi:
        over = last_true(lambda m: rounded(m) <= hi, ia.lo - 1, ia.hi)
    if rounded(ia.lo) < lo:
        under = last_true(lambda m: rounded(m) < lo, ia.lo, ia.hi) + 1
    return over, under


def to_verilog(core: Core, name: str) -> str:
    """Verilog text of ``core`` as module ``name`` (no source locations, no internal attributes)."""
    return verilog.convert(core, name=name, emit_src=False, strip_internal_attrs=True)
