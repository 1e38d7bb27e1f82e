"""Ternary adders: two chained adders of one pipeline segment as one carry chain (AMD UltraScale/UltraScale+).

An adder of the DA graph whose only reader is another adder of the same segment is folded into that reader:
``y = p ± x·2^s`` with ``x = a ± b·2^t`` becomes one three-term sum ``y = ±A ± B ± C`` (each term a wire shifted
to the result's grid). On a 6-input-LUT part with a dedicated carry chain, a three-term sum costs one LUT per
result bit, the same as a two-term one: per bit ``i`` one ``LUT6_2`` computes the majority ``m_i`` of the three
term bits (its ``O5``) and ``p_i = t0_i ⊕ t1_i ⊕ t2_i ⊕ m_(i-1)`` (its ``O6``, reading the previous bit's
majority), and the ``CARRY8`` chain adds ``S = t0 ⊕ t1 ⊕ t2`` and ``2·M`` with ``p`` as propagate and ``m_(i-1)``
as generate. So the inner adder's LUTs are saved and one adder level of delay with them.

Subtraction is two's complement term by term: ``-T = ~T + 1``. The chain starts at ``L0``, the lowest bit where
two terms (or a subtracted one) have bits; below it the result is the one lowest term's bits. Each subtracted
term contributes its inverted bits from its own LSB, ones between ``L0`` and its LSB, and a carry of one into bit
``L0`` (the ones below ``L0`` plus one overflow into it); with at most two subtracted terms (the first operand of
an adder is always added) the two carries are the chain's carry-in and the majority fed into bit ``L0``.

yosys and Vivado keep instantiated ``LUT6_2``/``CARRY8`` cells as they are (yosys' LUT count counts each as one
LUT); generic RTL ``a + b + c`` would be mapped to two carry chains. Each sum is therefore one instance of the
module :data:`SUM_VERILOG` (appended once per design file): the cells under ``SYNTHESIS``; in simulators the same
``INIT`` table evaluated by the module itself, as one word-wide sum when it is a sum's table and bit by bit
otherwise (``HGQ_HIL_ADD3_CELLS`` simulates the cells instead, with behavioural models of both).
:func:`pairs` picks the adders to fold; :func:`emit` instantiates the sum (or, for ``amaranth.sim``, the same sum as
arithmetic).

A pair is folded only when no term is a mux (relu, select, saturation) computed in the same segment: such a mux
merges into a two-input adder's LUT for free, but would need a LUT of its own in front of a ``LUT6_2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hdl_gen.ir import Graph
from hdl_gen.ops import ADD, SHIFT
from hdl_gen.schedule import Schedule

__all__ = [
    "SUM_MODULE",
    "SUM_VERILOG",
    "Term",
    "chain_bits",
    "chain_start",
    "emit",
    "pairs",
    "supported",
    "terms",
]

# AMD part prefixes whose fabric has LUT6_2 + CARRY8 (UltraScale and UltraScale+; Versal's carry logic differs)
_PREFIXES = ("xcvu", "xcku", "xczu", "xcau")

SUM_MODULE = "hgq_hil_add3"  # the Verilog module of one ternary sum (SUM_VERILOG)

#: the ternary-sum module (one LUT6_2 per chain bit, one CARRY8 per 8 bits; synthesised as is) and behavioural
#: models of the two cells for simulators (synthesis uses the vendor cells: SYNTHESIS is defined there)
SUM_VERILOG = """
`ifndef HGQ_HIL_ADD3
`define HGQ_HIL_ADD3
`ifdef SYNTHESIS
`define HGQ_HIL_ADD3_CELLS
`endif
// One ternary sum of hgq-hil (docs/ternary.md). Chain bit i is a LUT6_2 #(INIT) on the term bits A[i], B[i],
// C[i] and the previous bit's majority (M0 below bit 0); CARRY8 cells add its O6 (propagate) and the previous
// majority (generate) from carry-in CI. Synthesis instantiates the cells. Simulators evaluate the same table:
// when INIT is the majority/parity table of a three-term sum (terms inverted as it says) the chain's result is
// the sum of the (inverted) terms, M0 and CI, computed as such; any other INIT is evaluated bit by bit, as the
// cells would. Define HGQ_HIL_ADD3_CELLS to simulate the cells themselves.
module hgq_hil_add3 #(
  parameter integer N = 1,
  parameter [63:0] INIT = 64'h0,
  parameter [0:0] M0 = 1'b0,
  parameter [0:0] CI = 1'b0
) (
  input [N-1:0] A, input [N-1:0] B, input [N-1:0] C, output [N-1:0] O
);
`ifdef HGQ_HIL_ADD3_CELLS
  localparam integer K = (N + 7) >> 3;  // CARRY8 cells
  wire [N:0] mc;
  wire [(K << 3) - 1:0] p, di, o, co;
  wire [K:0] c;
  assign mc[0] = M0;
  assign c[0] = CI;
  genvar i;
  generate
    for (i = 0; i < (K << 3); i = i + 1) begin : bits
      if (i < N) begin : lut
        LUT6_2 #(.INIT(INIT)) u_lut (
          .I0(A[i]), .I1(B[i]), .I2(C[i]), .I3(mc[i]), .I4(1'b0), .I5(1'b1), .O5(mc[i + 1]), .O6(p[i])
        );
        assign di[i] = mc[i];
      end else begin : pad
        assign p[i] = 1'b0;
        assign di[i] = 1'b0;
      end
    end
    for (i = 0; i < K; i = i + 1) begin : chain
      CARRY8 #(.CARRY_TYPE("SINGLE_CY8")) u_carry (
        .CI(c[i]), .CI_TOP(1'b0), .DI(di[(i << 3) +: 8]), .S(p[(i << 3) +: 8]),
        .O(o[(i << 3) +: 8]), .CO(co[(i << 3) +: 8])
      );
      assign c[i + 1] = co[(i << 3) + 7];
    end
  endgenerate
  assign O = o[N-1:0];
`else
  // which terms INIT inverts (0-7) when it is a three-term sum's table (entries 0-31, I4 ignored: O5 = majority
  // of the three term bits; entries 32-63: O6 = their parity with I3), else 8
  function integer kind_of(input [63:0] init);
    integer v, x;
    reg [63:0] t;
    reg t0, t1, t2;
    begin
      kind_of = 8;
      for (v = 0; v < 8; v = v + 1) begin
        for (x = 0; x < 32; x = x + 1) begin
          t0 = ((x & 1) != 0) ^ ((v & 1) != 0);
          t1 = ((x & 2) != 0) ^ ((v & 2) != 0);
          t2 = ((x & 4) != 0) ^ ((v & 4) != 0);
          t[x] = (t0 & t1) | (t0 & t2) | (t1 & t2);
          t[32 + x] = t0 ^ t1 ^ t2 ^ ((x & 8) != 0);
        end
        if (t == init) kind_of = v;
      end
    end
  endfunction
  localparam integer KIND = kind_of(INIT);
  localparam [N-1:0] START = M0 + CI;  // the majority into bit 0 and the carry-in, both of weight 1
  generate
    if (KIND < 8) begin : sum
      // per bit, t0 + t1 + t2 = parity + (majority << 1): the chain adds the three terms, M0 and CI (mod 2^N)
      wire [N-1:0] a = (KIND & 1) ? ~A : A;
      wire [N-1:0] b = (KIND & 2) ? ~B : B;
      wire [N-1:0] c = (KIND & 4) ? ~C : C;
      assign O = a + b + c + START;
    end else begin : bitwise
      // bit i: O6 = INIT[{1, 0, m, C, B, A}], O5 = INIT[{0, 0, m, C, B, A}] (the next bit's m);
      // carry i+1 = O6 ? carry i : m (CARRY8 with DI = m); O[i] = O6 ^ carry i
      reg [N-1:0] o;
      reg m, m_next, p, cy;
      integer i;
      always @* begin
        m = M0;
        cy = CI;
        for (i = 0; i < N; i = i + 1) begin
          p = INIT[{2'b10, m, C[i], B[i], A[i]}];
          m_next = INIT[{2'b00, m, C[i], B[i], A[i]}];
          o[i] = p ^ cy;
          cy = p ? cy : m;
          m = m_next;
        end
      end
      assign O = o;
    end
  endgenerate
`endif
endmodule
`endif
`ifdef HGQ_HIL_ADD3_CELLS
`ifndef SYNTHESIS
`ifndef HGQ_HIL_CELL_MODELS
`define HGQ_HIL_CELL_MODELS
// Simulation models of the AMD UltraScale cells (written from the cells' documented behaviour:
// O6 = INIT[I5..I0], O5 = INIT[0,I4..I0]; carry k+1 = S[k] ? carry k : DI[k], O = S ^ carry).
module LUT6_2 #(parameter [63:0] INIT = 64'h0) (
  input I0, input I1, input I2, input I3, input I4, input I5, output O5, output O6
);
  assign O6 = INIT[{I5, I4, I3, I2, I1, I0}];
  assign O5 = INIT[{1'b0, I4, I3, I2, I1, I0}];
endmodule
module CARRY8 #(parameter CARRY_TYPE = "SINGLE_CY8") (
  input CI, input CI_TOP, input [7:0] DI, input [7:0] S, output [7:0] O, output [7:0] CO
);
  wire [8:0] c;
  assign c[0] = CI;
  genvar k;
  generate
    for (k = 0; k < 8; k = k + 1) begin : chain
      assign c[k + 1] = S[k] ? c[k] : DI[k];
    end
  endgenerate
  assign CO = c[8:1];
  assign O = S ^ c[7:0];
endmodule
`endif
`endif
`endif
"""


def supported(part: str) -> bool:
    """True when ``part`` (or the family name ``"xcup"``) has LUT6_2 + CARRY8 cells: AMD UltraScale(+)."""
    p = str(part).strip().lower()
    return p == "xcup" or p.startswith(_PREFIXES)


@dataclass(frozen=True)
class Term:
    """One term of a sum: op ``arg``'s mantissa shifted left by ``shift`` to the result's grid, subtracted when
    ``neg``."""

    arg: int
    neg: bool
    shift: int


def terms(graph: Graph, j: int, inner: int | None = None) -> list[Term]:
    """The terms of adder ``j`` at its result grid; with ``inner`` (one of its operands, possibly through shifts)
    that operand replaced by the inner adder's own two terms."""
    op = graph.ops[j]
    F = op.interval.f
    a, b = op.args
    shift, sub = op.attrs
    out = [Term(a, False, F - graph.ops[a].interval.f), Term(b, bool(sub), F - graph.ops[b].interval.f + shift)]
    if inner is None:
        return out
    res = []
    for t in out:
        if _source(graph, t.arg) != inner:
            res.append(t)
            continue
        # the operand's mantissa is the inner adder's (shifts alias it); its terms are on the inner's grid
        res += [Term(u.arg, u.neg != t.neg, u.shift + t.shift) for u in terms(graph, inner)]
    return res


def _source(graph: Graph, a: int) -> int:
    while graph.ops[a].kind is SHIFT:
        a = graph.ops[a].args[0]
    return a


def _mux_in_segment(graph: Graph, sched: Schedule, a: int, t: int) -> bool:
    """True when op ``a`` read in segment ``t`` is (through wiring ops) a mux computed in that segment."""
    stack = [a]
    while stack:
        u = stack.pop()
        op = graph.ops[u]
        if op.kind.constant or sched.stage[sched.base[u]] != t:
            continue  # a constant, or a register of an earlier segment: plain bits
        if op.kind.mux:
            return True
        if op.kind.wiring(op, graph):
            stack.extend(op.args)
    return False


def pairs(graph: Graph, sched: Schedule) -> dict[int, int]:
    """Adders to fold: ``{outer: inner}``. The inner is an ``add`` read only by the outer ``add`` (through shifts
    at most), in the same segment, not an output, in no other pair; no term of the sum is a mux of that segment.
    Of two candidate operands the wider inner adder is folded (it saves more LUTs)."""
    users = graph.users()
    outs = {o for o in graph.outputs if o is not None}
    taken: set[int] = set()  # ops already in a pair (as inner or outer)
    res: dict[int, int] = {}
    for j, op in enumerate(graph.ops):
        if op.kind is not ADD or j in taken:
            continue
        cands = []
        for a in op.args:
            u, reader, ok = a, j, True  # walk through shift aliases: each read only by the next op, none an output
            while ok:
                ok = u not in outs and users[u] == [reader]
                if graph.ops[u].kind is not SHIFT:
                    break
                reader, u = u, graph.ops[u].args[0]
            x = u
            if ok and x not in taken and graph.ops[x].kind is ADD and sched.stage[x] == sched.stage[j]:
                cands.append(x)
        for x in sorted(cands, key=lambda c: -graph.ops[c].width):
            if not any(_mux_in_segment(graph, sched, t.arg, sched.stage[j]) for t in terms(graph, j, x)):
                res[j] = x
                taken.update((j, x))
                break
    return res


def chain_start(ts: list[Term]) -> tuple[int, int]:
    """``(low, L0)``: the term whose bits alone make the result below bit ``L0``, and ``L0``, where the carry
    chain starts (the second-lowest term LSB, or the lowest when two terms share it or the lowest is subtracted)."""
    lows = sorted(u.shift for u in ts)
    low = min(range(len(ts)), key=lambda k: (ts[k].shift, k))
    return low, lows[0] if lows[0] == lows[1] or ts[low].neg else lows[1]


def chain_bits(graph: Graph, j: int, inner: int) -> int:
    """LUTs (= carry-chain bits) of the ternary sum of adder ``j`` with its folded ``inner`` adder."""
    return max(graph.ops[j].width - chain_start(terms(graph, j, inner))[1], 0)


def _bit(v: Any, width: int, signed: bool, shift: int, i: int):
    """Bit ``i`` of ``v << shift`` (sign- or zero-extended): an Amaranth bit, or an int for a constant ``v``."""
    r = i - shift
    if r < 0 or width == 0:
        return 0
    if isinstance(v, int):
        return (v >> r) & 1
    if r < width:
        return v[r]
    return v[width - 1] if signed else 0


def _init(inv: list[bool]) -> int:
    """The LUT6_2 INIT of every chain bit of a sum whose terms ``inv`` marks subtracted (inverted): pins I0-I2 the
    term bits, I3 the previous bit's majority, I4 unused, I5 = 1; O5 = majority of the three (inverted) term bits,
    O6 = their XOR with the previous majority."""
    init = 0
    for idx in range(32):
        x = [(idx >> k) & 1 for k in range(4)]
        t = [x[k] ^ inv[k] for k in range(3)]
        maj = (t[0] & t[1]) | (t[0] & t[2]) | (t[1] & t[2])
        init |= maj << idx
        init |= (t[0] ^ t[1] ^ t[2] ^ x[3]) << (32 + idx)
    return init


def emit(e: Any, j: int, inner: int, *, cells: bool) -> None:
    """Drive op ``j``'s wire with the ternary sum of ``j`` and its folded ``inner`` adder (``e``: the emitter's
    elaboration, :class:`hdl_gen.emit._Elab`). ``cells``: instantiate LUT6_2/CARRY8 (Verilog); else the same
    three-term sum as Amaranth arithmetic (``amaranth.sim``, which cannot run vendor cells)."""
    from amaranth.hdl import Cat, Const, Instance, Signal

    g, m = e.g, e.m
    op = g.ops[j]
    W, t = op.width, e.stage(j)
    ts = terms(g, j, inner)
    if not cells:  # the same three-term sum as arithmetic (amaranth.sim); the cells' tables are HDL-simulated
        acc = 0
        for u in ts:
            v = e.val(u.arg, t) << u.shift
            acc = acc - v if u.neg else acc + v
        e.drive(j, acc)
        return
    vals = [g.ops[u.arg].interval.lo if g.ops[u.arg].kind.constant else e.val(u.arg, t) for u in ts]
    shapes = [(1, False) if isinstance(v, int) else (v.shape().width, v.shape().signed) for v in vals]
    low, L0 = chain_start(ts)
    n_neg = sum(u.neg for u in ts)
    if n_neg > 2:  # pragma: no cover - the first operand of an adder is always added
        raise AssertionError(f"op {j}: a ternary sum with three subtracted terms")
    L0 = min(L0, W)

    def bits(k: int, lo: int, hi: int):  # term k's bits lo..hi-1 on the result grid, constants as Const
        return Cat(*[Const(b, 1) if isinstance(b, int) else b
                     for b in (_bit(vals[k], *shapes[k], ts[k].shift, i) for i in range(lo, hi))])  # fmt: skip

    n = W - L0
    if n == 0:  # pragma: no cover - an adder always has a carry region
        e.drive(j, bits(low, 0, L0))
        return
    ci, m_first = int(n_neg >= 1), int(n_neg >= 2)
    o = Signal(n, name=f"v{j}_o")
    m.submodules[f"v{j}_add3"] = Instance(
        SUM_MODULE, p_N=n, p_INIT=Const(_init([u.neg for u in ts]), 64), p_M0=Const(m_first, 1),
        p_CI=Const(ci, 1), i_A=bits(0, L0, W), i_B=bits(1, L0, W), i_C=bits(2, L0, W), o_O=o,
    )  # fmt: skip
    e.drive(j, Cat(bits(low, 0, L0), o))
