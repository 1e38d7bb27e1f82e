"""The IR op kinds, each declared once: typed attributes, depth, delay, cost, interpreter rule and emitter.

An :class:`~hdl_gen.ir.Op`'s ``kind`` is one of the singletons below (``INPUT``, ``CONST``, ``ADD``, ...), a
``str`` subclass whose text is the kind's name (the graph JSON and error messages print it), and its ``attrs``
is that kind's :attr:`OpKind.Attrs` named tuple. Code elsewhere asks the kind (``op.kind.delay(...)``,
``op.kind.free``) or compares it by identity (``op.kind is NEG``); it never compares kinds with string literals.
Adding an op kind means adding one class here (and its typing/folding rule in :class:`~hdl_gen.ir.GraphBuilder`).

=============  ==========================  ==================================================================
kind           attrs                       value
=============  ==========================  ==================================================================
``input``      ``(index,)``                flat element ``index`` of the input port
``const``      ``()``                      ``interval.lo * 2**-interval.f`` (``lo == hi``)
``add``        ``(shift, sub)``            ``a + b * 2**shift`` (``a - b * 2**shift`` when ``sub``)
``neg``        ``()``                      ``-a``
``shift``      ``(s,)``                    ``a * 2**s`` (free wiring)
``relu``       ``()``                      ``max(a, 0)``
``quantize``   ``(k, i, f, rnd, ovf)``     :func:`hgq.fixed.quantize` of ``a`` (round then WRAP/SAT/SAT_SYM)
``max``        ``()``                      ``max(a, b)``
``min``        ``()``                      ``min(a, b)``
``select``     ``()``                      ``b if c >= 0 else d`` for ``args == (c, b, d)``
``lookup``     ``(table,)``                ``table[m_a - a.lo] * 2**-interval.f`` (table of output mantissas); of two
                                           wires ``table[(m_a - a.lo) * n_b + m_b - b.lo]`` (``n_b``: b's values)
``mul``        ``()``                      ``a * b`` (variable × variable)
=============  ==========================  ==================================================================

One rule decides what counts as an adder level (:meth:`OpKind.level`, the depth of :func:`hdl_gen.cost.graph_cost`),
what has a delay (:meth:`OpKind.delay`, :mod:`hdl_gen.schedule`) and what costs LUTs (:meth:`OpKind.cost`,
:func:`hdl_gen.cost.graph_report`): a quantizer has a rounding adder exactly when it drops bits with a mode other
than TRN (:meth:`Quantize.rounds`), so it is an adder level, pays an adder delay and ``width + 1`` adder bits then,
and only then.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from hgq.fixed import MAX_INT_BITS, ROUND_MODES, FixedType, Interval, requantize

if TYPE_CHECKING:
    from hdl_gen.delay import Family
    from hdl_gen.ir import Graph, Op

__all__ = ["ADD", "CONST", "INPUT", "KINDS", "LOOKUP", "MAX", "MIN", "MUL", "NEG", "QUANTIZE", "RELU", "SELECT",
           "SHIFT", "OpKind", "kind_of"]  # fmt: skip

# interpreter instruction codes (hdl_gen.interp's kernel): one per rule, several kinds may share one
CODE_CONST, CODE_LIN, CODE_RELU, CODE_QUANT, CODE_MAX, CODE_MIN, CODE_SELECT, CODE_LOOKUP, CODE_MUL = range(9)


# -- typed attributes ------------------------------------------------------------------------------------------
class NoAttrs(NamedTuple):
    pass


class InputAttrs(NamedTuple):
    index: int  # flat element of the input port


class AddAttrs(NamedTuple):
    shift: int  # b is scaled by 2**shift
    sub: bool  # a - b·2**shift


class ShiftAttrs(NamedTuple):
    s: int


class QuantizeAttrs(NamedTuple):
    k: int
    i: int
    f: int
    rnd: str
    ovf: str


class LookupAttrs(NamedTuple):
    # output mantissas, indexed by input mantissa - a.lo; with two args (a, b) by (m_a - a.lo) * n_b + m_b - b.lo
    table: tuple[int, ...]


# -- helpers shared by several kinds ---------------------------------------------------------------------------
def _arg_iv(graph: Graph, op: Op, n: int = 0) -> Interval:
    return graph.ops[op.args[n]].interval


def mag(lo: int, hi: int, s: int = 0) -> int:
    """Largest magnitude of mantissas in ``[lo, hi]`` shifted left by ``s`` (``s >= 0``)."""
    return max(abs(lo), abs(hi)) << s


class OpKind(str):
    """One op kind (a singleton; its text is the kind's name). Subclasses override what differs."""

    Attrs: ClassVar[type] = NoAttrs
    #: no hardware of its own (never a scheduling node, never registered by itself)
    free: ClassVar[bool] = False
    #: a value fixed at build time (wires everywhere, never registered)
    constant: ClassVar[bool] = False
    #: shares its source's bits (its registers are its source's)
    alias: ClassVar[bool] = False
    #: an input port element (segment 0, fed by the port)
    port: ClassVar[bool] = False
    #: a two-input adder/subtractor of the DA adder graph (counted in ``adders``)
    adder: ClassVar[bool] = False
    #: has a LUT stage of its own into which a mux that feeds it merges (:func:`hdl_gen.cost.merged_muxes`)
    lut_reader: ClassVar[bool] = False
    #: its value is a mux: registered, it pays :meth:`~hdl_gen.delay.Family.mux_end_ns`
    mux: ClassVar[bool] = False

    def __new__(cls, name: str):
        return super().__new__(cls, name)

    def __reduce__(self):  # unpickle to the singleton, so identity comparisons hold across processes
        return kind_of, (self.name,)

    @property
    def name(self) -> str:
        return str.__str__(self)

    def attrs(self, values) -> tuple:
        """Typed attributes from a plain sequence (e.g. the graph JSON's lists)."""
        return self.Attrs(*(tuple(v) if isinstance(v, list) else v for v in values))

    # -- structure and cost ----------------------------------------------------------------------------------
    def level(self, op: Op, graph: Graph) -> int:
        """Adder levels this op adds to a path (1 for an adder-like carry chain, else 0)."""
        return 0

    def wiring(self, op: Op, graph: Graph) -> bool:
        """True when the op is only wires (a mux feeding it merges through it into its readers)."""
        return False

    def delay(self, op: Op, graph: Graph, fam: Family) -> float:
        """Estimated combinational delay (ns) on family ``fam`` (a mux merged into its reader's LUT)."""
        return 0.0

    def end_mux(self, op: Op) -> bool:
        """True when a registered value of this op pays a LUT level of its own at the end of its segment."""
        return self.mux

    def cost(self, op: Op, graph: Graph, own: int) -> dict[str, int]:
        """Cost increments of one op (:func:`hdl_gen.cost.graph_report`); ``own`` is the op's width unless it is a
        mux merged into its readers (then 0)."""
        return {}

    # -- interpreter and emitter -------------------------------------------------------------------------------
    def instr(self, c: Any) -> None:
        """Fill the interpreter kernel row ``c.row`` for ``c.op`` (``c`` is :class:`hdl_gen.interp._InstrCtx`)."""
        raise c.error(f"op kind {self.name!r} has no interpreter rule")

    def emit(self, e: Any, j: int) -> None:
        """Drive the wire of op ``j`` (``e`` is :class:`hdl_gen.emit._Elab`)."""
        raise ValueError(f"op {j}: kind {self.name!r} cannot be emitted")


class _Input(OpKind):
    Attrs = InputAttrs
    port = True


class _Const(OpKind):
    free = True
    constant = True

    def instr(self, c):
        c.row[0], c.row[9] = CODE_CONST, c.iv.lo


class _Add(OpKind):
    Attrs = AddAttrs
    adder = True
    lut_reader = True

    def level(self, op, graph):
        return 1

    def delay(self, op, graph, fam):
        return fam.add_ns(op.width)

    def cost(self, op, graph, own):
        return {"adders": 1, "adder_bits": op.width}

    def instr(self, c):
        a = c.a
        shift, sub = c.op.attrs
        fb = a[1].f - shift
        F = max(a[0].f, fb)
        c.row[0] = CODE_LIN
        c.row[5], c.row[6], c.row[9], c.row[10] = F - a[0].f, F - fb, 1, -1 if sub else 1
        c.check(mag(a[1].lo, a[1].hi, F - fb), "its aligned operand")
        c.check(mag(a[0].lo, a[0].hi, c.row[5]), "its aligned operand")
        c.row[8] = c.post(F)

    def emit(self, e, j):
        op = e.g.ops[j]
        iv, t = op.interval, e.stage(j)
        a, b = op.args
        shift, sub = op.attrs
        fb = e.g.ops[b].interval.f - shift
        if iv.f < fb:
            raise AssertionError(f"op {j}: operand f {fb} finer than the result f {iv.f}")
        va = e.aligned(a, t, iv.f)
        vb = e.val(b, t)
        vb = vb << (iv.f - fb) if iv.f > fb else vb
        e.drive(j, va - vb if sub else va + vb)


class _Neg(_Add):
    Attrs = NoAttrs

    def instr(self, c):
        c.row[0], c.row[9] = CODE_LIN, -1
        c.check(mag(c.a[0].lo, c.a[0].hi, c.row[5]), "its aligned operand")
        c.row[8] = c.post(c.a[0].f)

    def emit(self, e, j):
        op = e.g.ops[j]
        e.drive(j, -e.aligned(op.args[0], e.stage(j), op.interval.f))


class _Shift(OpKind):
    Attrs = ShiftAttrs
    free = True
    alias = True

    def wiring(self, op, graph):
        return True

    def instr(self, c):
        c.row[0], c.row[9] = CODE_LIN, 1
        c.check(mag(c.a[0].lo, c.a[0].hi, c.row[5]), "its aligned operand")
        c.row[8] = c.post(c.a[0].f - c.op.attrs.s)


class _Relu(OpKind):
    mux = True
    lut_reader = True

    def delay(self, op, graph, fam):
        return fam.mux_ns()

    def cost(self, op, graph, own):
        return {"mux_bits": op.width, "mux_luts": own}

    def instr(self, c):
        c.row[0], c.row[8] = CODE_RELU, c.post(c.a[0].f)

    def emit(self, e, j):
        from amaranth.hdl import Mux

        a = e.val(e.g.ops[j].args[0], e.stage(j))
        e.drive(j, Mux(a[-1], 0, a))


class _Select(_Relu):
    def instr(self, c):
        a = c.a
        F = max(a[1].f, a[2].f)
        c.row[0], c.row[6], c.row[7] = CODE_SELECT, F - a[1].f, F - a[2].f
        for x, sh in ((a[1], c.row[6]), (a[2], c.row[7])):
            c.check(mag(x.lo, x.hi, sh), "its aligned operand")
        c.row[8] = c.post(F)

    def emit(self, e, j):
        from amaranth.hdl import Const, Mux

        op = e.g.ops[j]
        t, f = e.stage(j), op.interval.f
        cc, b, d = op.args
        vc = e.val(cc, t)
        vb, vd = e.aligned(b, t, f), e.aligned(d, t, f)
        neg = vc[-1] if e.g.ops[cc].interval.lo < 0 else Const(0, 1)
        e.drive(j, Mux(neg, vd, vb))


class _MinMax(_Relu):
    code: ClassVar[int]

    def level(self, op, graph):
        return 1

    def delay(self, op, graph, fam):
        a, b = (graph.ops[x].interval for x in op.args)
        f = max(a.f, b.f)
        return fam.compare_ns(max(a.width + f - a.f, b.width + f - b.f) + 1) + fam.mux_ns()

    def cost(self, op, graph, own):
        return {"mux_bits": op.width, "mux_luts": own, "adder_bits": op.width + 1}

    def instr(self, c):
        a = c.a
        F = max(a[0].f, a[1].f)
        c.row[0], c.row[5], c.row[6] = self.code, F - a[0].f, F - a[1].f
        for x, sh in ((a[0], c.row[5]), (a[1], c.row[6])):
            c.check(mag(x.lo, x.hi, sh), "its aligned operand")
        c.row[8] = c.post(F)

    def compare(self, a, b):
        raise NotImplementedError

    def emit(self, e, j):
        from amaranth.hdl import Mux

        op = e.g.ops[j]
        a, b = (e.aligned(x, e.stage(j), op.interval.f) for x in op.args)
        e.drive(j, Mux(self.compare(a, b), a, b))


class _Max(_MinMax):
    code = CODE_MAX

    def compare(self, a, b):
        return a > b


class _Min(_MinMax):
    code = CODE_MIN

    def compare(self, a, b):
        return a < b


class _Lookup(OpKind):
    """A table of one wire, or of two (its address their bits side by side: one LUT level while they fit a LUT)."""

    Attrs = LookupAttrs

    @staticmethod
    def address_bits(op: Op, graph: Graph) -> int:
        return sum(graph.ops[a].width for a in op.args)

    def delay(self, op, graph, fam):
        return fam.lookup_ns(self.address_bits(op, graph))

    def cost(self, op, graph, own):
        w, b_in = op.width, self.address_bits(op, graph)
        return {"lookup_bits": len(op.attrs.table) * w, "lookup_luts": 2 ** max(b_in - 5, 0) * math.ceil(w / 2)}

    def instr(self, c):
        table = c.op.attrs.table
        c.row[0], c.row[9], c.row[10] = CODE_LOOKUP, c.add_table(table), c.a[0].lo
        if len(c.a) == 2:  # row-major: p2 = the second wire's number of values, p3 its lowest mantissa
            c.row[11], c.row[12] = c.a[1].hi - c.a[1].lo + 1, c.a[1].lo
        c.row[8] = c.post(c.iv.f)

    def emit(self, e, j):
        from amaranth.hdl import Cat, Const

        op = e.g.ops[j]
        table = op.attrs.table
        ivs = [e.g.ops[a].interval for a in op.args]
        w = op.interval.width
        s = e.wire(j)
        vals = [e.val(a, e.stage(j)).as_unsigned() for a in op.args]
        with e.m.Switch(vals[0] if len(vals) == 1 else Cat(*reversed(vals))):  # Cat is LSB first: first wire high
            for n, combo in enumerate(itertools.product(*(range(iv.lo, iv.hi + 1) for iv in ivs))):
                addr = 0
                for v, iv in zip(combo, ivs, strict=True):
                    addr = (addr << iv.width) | (v & ((1 << iv.width) - 1))
                with e.m.Case(addr):
                    e.m.d.comb += s.eq(Const(table[n] & ((1 << w) - 1), w))


class _Mul(OpKind):
    def delay(self, op, graph, fam):
        a, b = (graph.ops[x].width for x in op.args)
        return fam.mul_ns(a, b)

    def cost(self, op, graph, own):
        a, b = (graph.ops[x].width for x in op.args)
        return {"muls": 1, "adder_bits": a * b}

    def instr(self, c):
        a = c.a
        c.row[0] = CODE_MUL
        c.check(mag(a[0].lo, a[0].hi) * mag(a[1].lo, a[1].hi), "its product")
        c.row[8] = c.post(a[0].f + a[1].f)

    def emit(self, e, j):
        a, b = e.g.ops[j].args
        t = e.stage(j)
        e.drive(j, e.val(a, t) * e.val(b, t))


class _Quantize(OpKind):
    Attrs = QuantizeAttrs
    lut_reader = True

    @staticmethod
    def rounds(op: Op, graph: Graph) -> bool:
        """True when the quantizer has a rounding adder: it drops bits with a mode other than TRN."""
        return _arg_iv(graph, op).f > op.attrs.f and op.attrs.rnd != "TRN"

    def level(self, op, graph):
        return int(self.rounds(op, graph))

    def wiring(self, op, graph):
        return op.attrs.ovf == "WRAP" and (op.attrs.rnd == "TRN" or _arg_iv(graph, op).f <= op.attrs.f)

    def end_mux(self, op):
        return op.attrs.ovf != "WRAP"

    def delay(self, op, graph, fam):
        src = _arg_iv(graph, op)
        f, ovf = op.attrs.f, op.attrs.ovf
        rounded_w = max(src.width - max(src.f - f, 0), 1)
        t = fam.add_ns(rounded_w + 1) if self.rounds(op, graph) else 0.0
        if ovf != "WRAP":  # comparisons on the unrounded input run beside the rounding adder
            t = max(t, fam.compare_ns(src.width + 1)) + fam.mux_ns()
        return t

    def cost(self, op, graph, own):
        inc = {}
        if self.rounds(op, graph):
            inc["adder_bits"] = op.width + 1
        if op.attrs.ovf != "WRAP":
            inc["mux_bits"] = op.width
            inc["mux_luts"] = own
        return inc

    def instr(self, c):
        qk, qi, qf, rnd, ovf = c.op.attrs
        a, row = c.a, c.row
        t = FixedType(qk, qi, qf)
        row[0], row[5] = CODE_QUANT, a[0].f - qf
        if row[5] > MAX_INT_BITS:
            raise c.error(f"drops {row[5]} bits, over the {MAX_INT_BITS}-bit limit")
        if row[5] < 0 and ovf != "WRAP":  # WRAP keeps the low bits: an int64 overflow is harmless
            c.check(mag(a[0].lo, a[0].hi, -row[5]), "its left-aligned input")
        row[9] = ROUND_MODES.index(rnd)
        row[13] = c.round_kind(row[9])
        w = t.width
        if ovf == "WRAP":
            row[10], row[11], row[12] = 0, (1 << (w - 1)) if qk else 0, (1 << w) - 1
        else:  # clamp bounds straight from requantize of the extremes
            ext = np.array([-(1 << 61), (1 << 61) - 1], dtype=np.int64)
            lo, hi = requantize(ext, 0, qk, qi, qf, "TRN", ovf)
            row[10], row[11], row[12] = 1, int(lo), int(hi)
        row[8] = c.post(qf)

    def emit(self, e, j):
        op = e.g.ops[j]
        a = op.args[0]
        e.drive(j, _emit_quantize(e.val(a, e.stage(j)), e.g.ops[a].interval, op))


def _emit_quantize(a, ia: Interval, op: Op):
    """Hardware quantize of wire ``a`` (interval ``ia``) to the op's format; the value at the op's own f.

    Round as ``floor`` plus a one-bit increment decided from the dropped bits (RND is "+½ LSB then drop"), then
    WRAP (keep the low bits) or SAT/SAT_SYM (compare the unrounded input against the bounds and mux).
    """
    from amaranth.hdl import Const, Mux

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
    from amaranth.hdl import Cat, Const

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


INPUT = _Input("input")
CONST = _Const("const")
ADD = _Add("add")
NEG = _Neg("neg")
SHIFT = _Shift("shift")
RELU = _Relu("relu")
QUANTIZE = _Quantize("quantize")
MAX = _Max("max")
MIN = _Min("min")
SELECT = _Select("select")
LOOKUP = _Lookup("lookup")
MUL = _Mul("mul")

#: every kind by name, in the order of the table above
KINDS: dict[str, OpKind] = {k.name: k for k in (INPUT, CONST, ADD, NEG, SHIFT, RELU, QUANTIZE, MAX, MIN, SELECT,
                                               LOOKUP, MUL)}  # fmt: skip


def kind_of(name: str) -> OpKind:
    """The kind called ``name`` (the graph JSON's text); ``ValueError`` for an unknown one."""
    try:
        return KINDS[str(name)]
    except KeyError:
        raise ValueError(f"unknown op kind {name!r}; known: {', '.join(KINDS)}") from None
