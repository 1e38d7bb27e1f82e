"""The IR: an SSA graph of exact fixed-point operations.

Every op produces one wire whose exact value range is an :class:`~hgq.fixed.Interval` ``(lo, hi, f)``: the
wire carries the integer mantissa ``m`` (value ``m * 2**-f``) in ``interval.width`` bits (two's complement when
``interval.lo < 0``). Widths come only from interval propagation.

Op kinds and their typed ``attrs`` are declared once, in :mod:`hdl_gen.ops` (the table of what each computes
is there); ``args`` are op ids.

Graphs are built with :class:`GraphBuilder`, which types every op, folds trivial ops (adding zero, identity
quantizers, relu of non-negative values) and hash-conses identical ops. A constant matrix-vector product is
merged as :mod:`hdl_gen.cmvm` adder ops and recorded as a :class:`CmvmBlock` so the interpreter may evaluate
the block as one exact integer matrix product. Op ids are dense and in creation (topological) order.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from hdl_gen.ops import (
    ADD,
    CONST,
    INPUT,
    LOOKUP,
    MUL,
    NEG,
    QUANTIZE,
    RELU,
    SELECT,
    SHIFT,
    AddAttrs,
    InputAttrs,
    LookupAttrs,
    NoAttrs,
    OpKind,
    QuantizeAttrs,
    ShiftAttrs,
    kind_of,
)
from hdl_gen.ops import MAX as MAX_KIND
from hdl_gen.ops import MIN as MIN_KIND
from hgq.fixed import MAX_INT_BITS, FixedType, Interval, check_overflow_mode, check_round_mode, requantize

__all__ = ["CmvmBlock", "Graph", "GraphBuilder", "Op", "quantize_interval"]

ZERO = Interval(0, 0, 0)


@dataclass(frozen=True, slots=True)
class Op:
    """One SSA op: ``kind`` (:mod:`hdl_gen.ops`) applied to ``args`` (op ids) with ``attrs`` (the kind's typed
    attributes); ``layer`` names its origin."""

    kind: OpKind
    args: tuple[int, ...]
    attrs: tuple
    interval: Interval
    layer: str = ""

    @property
    def type(self) -> FixedType:
        return self.interval.type

    @property
    def width(self) -> int:
        return self.interval.width

    def key(self) -> tuple:
        """Identity for hash-consing (origin layer excluded)."""
        return (self.kind, self.args, self.attrs, self.interval)


@dataclass(frozen=True, slots=True)
class CmvmBlock:
    """A constant matrix product ``y = x @ W`` lowered to adder ops.

    ``inputs``/``outputs`` are op ids (``None`` for a constant-zero output); ``W`` is given as integer
    mantissas ``w_mant`` (``W = w_mant * 2**-w_f``) so the interpreter can evaluate the block exactly.
    """

    layer: str
    inputs: tuple[int | None, ...]  # None: constant 0 (pruned input, or dead after elimination)
    outputs: tuple[int | None, ...]  # None: constant 0, or dead after elimination
    w_mant: tuple[tuple[int, ...], ...]
    w_f: int
    ops: tuple[int, ...]  # the adder/shift/neg op ids created for this block


@dataclass(frozen=True)
class Graph:
    """An immutable SSA graph with ports.

    ``inputs[j]`` is the op id of flat input element ``j`` (``None`` when pruned: width 0), with port format
    ``input_types[j]``; ``outputs[o]`` is the op id of flat output element ``o`` (``None``: constant 0).
    """

    ops: tuple[Op, ...]
    inputs: tuple[int | None, ...]
    input_types: tuple[FixedType, ...]
    outputs: tuple[int | None, ...]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    blocks: tuple[CmvmBlock, ...] = ()
    name: str = "top"

    def __post_init__(self):
        if len(self.inputs) != int(np.prod(self.input_shape, dtype=np.int64)):
            raise ValueError(f"graph has {len(self.inputs)} inputs but input_shape {self.input_shape}")
        if len(self.outputs) != int(np.prod(self.output_shape, dtype=np.int64)):
            raise ValueError(f"graph has {len(self.outputs)} outputs but output_shape {self.output_shape}")

    def output_interval(self, o: int) -> Interval:
        oid = self.outputs[o]
        return ZERO if oid is None else self.ops[oid].interval

    def users(self) -> list[list[int]]:
        """For each op id, the ids of ops that read it (ascending)."""
        out: list[list[int]] = [[] for _ in self.ops]
        for j, op in enumerate(self.ops):
            for a in op.args:
                out[a].append(j)
        return out

    def layers(self) -> list[str]:
        """Origin layer names in first-appearance order."""
        seen: dict[str, None] = {}
        for op in self.ops:
            seen.setdefault(op.layer, None)
        return list(seen)

    def eliminate_dead(self) -> Graph:
        """Drop ops no output depends on; renumber densely, keeping the relative (topological) order."""
        live = np.zeros(len(self.ops), dtype=bool)
        stack = [o for o in self.outputs if o is not None]
        while stack:
            j = stack.pop()
            if live[j]:
                continue
            live[j] = True
            stack.extend(self.ops[j].args)
        for j in self.inputs:  # input ops stay: they are ports
            if j is not None:
                live[j] = True
        new_id = np.cumsum(live) - 1
        remap = {j: int(new_id[j]) for j in range(len(self.ops)) if live[j]}
        ops = tuple(
            Op(op.kind, tuple(remap[a] for a in op.args), op.attrs, op.interval, op.layer)
            for j, op in enumerate(self.ops)
            if live[j]
        )
        blocks = tuple(
            CmvmBlock(
                b.layer,
                tuple(None if j is None else remap.get(j) for j in b.inputs),
                tuple(None if o is None else remap.get(o) for o in b.outputs),
                b.w_mant,
                b.w_f,
                tuple(remap[j] for j in b.ops if j in remap),
            )
            for b in self.blocks
            # a block stays a linear map only while all its inputs do: an input that was folded into constants
            # (a constant activation) leaves its contribution inside the block's ops, which are then run one by one
            if any(o is not None and o in remap for o in b.outputs) and all(j is None or j in remap for j in b.inputs)
        )
        return Graph(
            ops,
            tuple(None if j is None else remap[j] for j in self.inputs),
            self.input_types,
            tuple(None if o is None else remap[o] for o in self.outputs),
            self.input_shape,
            self.output_shape,
            blocks,
            self.name,
        )

    # -- serialisation ---------------------------------------------------------------------------------
    def to_json(self) -> str:
        """Deterministic JSON text of the whole graph (ints stay exact)."""

        def iv(v: Interval) -> list[int]:
            return [v.lo, v.hi, v.f]

        doc: dict[str, Any] = {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "inputs": list(self.inputs),
            "input_types": [[t.k, t.i, t.f] for t in self.input_types],
            "outputs": list(self.outputs),
            "ops": [
                {
                    "kind": op.kind,
                    "args": list(op.args),
                    "attrs": [list(a) if isinstance(a, tuple) else a for a in op.attrs],
                    "interval": iv(op.interval),
                    "layer": op.layer,
                }
                for op in self.ops
            ],
            "blocks": [
                {
                    "layer": b.layer,
                    "inputs": list(b.inputs),
                    "outputs": list(b.outputs),
                    "w_mant": [list(r) for r in b.w_mant],
                    "w_f": b.w_f,
                    "ops": list(b.ops),
                }
                for b in self.blocks
            ],
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Graph:
        d = json.loads(text)
        ops = tuple(
            Op(
                kind_of(o["kind"]),
                tuple(o["args"]),
                kind_of(o["kind"]).attrs(o["attrs"]),
                Interval(*o["interval"]),
                o["layer"],
            )
            for o in d["ops"]
        )
        blocks = tuple(
            CmvmBlock(
                b["layer"],
                tuple(b["inputs"]),
                tuple(b["outputs"]),
                tuple(tuple(r) for r in b["w_mant"]),
                b["w_f"],
                tuple(b["ops"]),
            )
            for b in d["blocks"]
        )
        return cls(
            ops,
            tuple(d["inputs"]),
            tuple(FixedType(*t) for t in d["input_types"]),
            tuple(d["outputs"]),
            tuple(d["input_shape"]),
            tuple(d["output_shape"]),
            blocks,
            d["name"],
        )


def _round_bounds(iv: Interval, f: int, rnd: str) -> tuple[int, int]:
    """Rounded mantissa bounds of ``iv`` at ``f`` (every round mode is monotone, so bounds map to bounds)."""
    if iv.f <= f:
        return iv.lo << (f - iv.f), iv.hi << (f - iv.f)
    w = max(iv.width, 1) + 2  # wide enough that no overflow happens
    lo, hi = requantize(np.array([iv.lo, iv.hi], dtype=np.int64), iv.f, 1, w - f, f, rnd, "SAT")
    return int(lo), int(hi)


def quantize_interval(iv: Interval, k: int, i: int, f: int, rnd: str, ovf: str) -> Interval:
    """Exact range of ``quantize(x, k, i, f, rnd, ovf)`` for ``x`` in ``iv``."""
    t = FixedType(k, i, f)
    if t.width == 0:
        return ZERO
    full = t.interval
    lo, hi = _round_bounds(iv, f, rnd)
    if ovf == "WRAP":
        if lo < full.lo or hi > full.hi:
            return full
    else:
        top = full.hi
        bot = full.lo if ovf == "SAT" else -full.hi if k else 0
        lo, hi = min(max(lo, bot), top), min(max(hi, bot), top)
    # values are input values (on the input grid) or clamp bounds: keep the coarsest grid holding both
    s = f - iv.f
    while s > 0 and (lo % (1 << s) or hi % (1 << s)):
        s -= 1
    return Interval(lo >> s, hi >> s, f - s) if s > 0 else Interval(lo, hi, f)


@dataclass
class GraphBuilder:
    """Builds a :class:`Graph` op by op, typing each op exactly, folding trivial ops and sharing duplicates."""

    name: str = "top"
    layer: str = ""  # origin recorded on new ops; set by the tracer per layer
    ops: list[Op] = field(default_factory=list)
    blocks: list[CmvmBlock] = field(default_factory=list)
    _index: dict[tuple, int] = field(default_factory=dict)
    _inputs: list[int | None] = field(default_factory=list)
    _input_types: list[FixedType] = field(default_factory=list)

    # -- primitives ----------------------------------------------------------------------------------------
    def _emit(self, kind: OpKind, args: tuple[int, ...], attrs: tuple, interval: Interval) -> int:
        op = Op(kind, args, attrs, interval, self.layer)
        key = op.key()
        j = self._index.get(key)
        if j is None:
            j = len(self.ops)
            self.ops.append(op)
            self._index[key] = j
        return j

    def iv(self, j: int | None) -> Interval:
        return ZERO if j is None else self.ops[j].interval

    def input(self, t: FixedType) -> int | None:
        """A new input port element of format ``t``; ``None`` (constant 0) when ``t`` has width 0."""
        index = len(self._inputs)
        self._input_types.append(t)
        j = None if t.width == 0 else self._emit(INPUT, (), InputAttrs(index), t.interval)
        self._inputs.append(j)
        return j

    def const(self, value) -> int | None:
        """A constant (exact dyadic value); ``None`` for 0."""
        fr = Fraction(value)
        if fr == 0:
            return None
        den = fr.denominator
        if den & (den - 1):
            raise ValueError(f"constant {value!r} is not a dyadic rational (its denominator is not a power of two)")
        f = den.bit_length() - 1
        m = fr.numerator
        return self._emit(CONST, (), NoAttrs(), Interval(m, m, f).normalized())

    def add(self, a: int | None, b: int | None, shift: int = 0, sub: bool = False) -> int | None:
        """``a + b * 2**shift`` (or ``-``); zero operands fold away."""
        if b is None:
            return a
        if a is None:
            return self.neg(self.shift(b, shift)) if sub else self.shift(b, shift)
        # negators cost an adder each: fold them into this adder's sign (a CMVM's negative outputs meet a bias here)
        if self.ops[b].kind is NEG:
            return self.add(a, self.ops[b].args[0], shift, not sub)
        if self.ops[a].kind is NEG:
            na = self.ops[a].args[0]
            if not sub:  # -a' + b·2^s = b·2^s - a'
                return self.add(self.shift(b, shift), na, 0, True)
            return self.neg(self.add(na, b, shift, False))  # -a' - b·2^s = -(a' + b·2^s): the neg moves on
        ib = self.iv(b).shift(shift)
        return self._emit(ADD, (a, b), AddAttrs(shift, bool(sub)), self.iv(a) + (-ib if sub else ib))

    def _add_tight(self, a: int | None, b: int | None, shift: int, sub: bool, tight: Interval) -> int | None:
        """``add`` typed with a tighter exact range (a CMVM adder's linear-form range); checked to lie inside."""
        if a is None or b is None:
            return self.add(a, b, shift, sub)
        ib = self.iv(b).shift(shift)
        loose = self.iv(a) + (-ib if sub else ib)
        if tight.f != loose.f or tight.lo < loose.lo or tight.hi > loose.hi:
            raise AssertionError(f"cmvm adder range {tight} is not inside its interval bound {loose}")
        return self._emit(ADD, (a, b), AddAttrs(shift, bool(sub)), tight)

    def sub(self, a: int | None, b: int | None) -> int | None:
        return self.add(a, b, 0, True)

    def neg(self, a: int | None) -> int | None:
        if a is None:
            return None
        op = self.ops[a]
        if op.kind is NEG:
            return op.args[0]
        if op.kind is CONST:
            return self._emit(CONST, (), NoAttrs(), -op.interval)
        return self._emit(NEG, (a,), NoAttrs(), -op.interval)

    def shift(self, a: int | None, s: int) -> int | None:
        if a is None or s == 0:
            return a
        op = self.ops[a]
        if op.kind is SHIFT:
            return self.shift(op.args[0], s + op.attrs.s)
        if op.kind is NEG:  # keep negations outermost so adders can absorb them
            return self.neg(self.shift(op.args[0], s))
        if op.kind is CONST:
            return self._emit(CONST, (), NoAttrs(), op.interval.shift(s))
        return self._emit(SHIFT, (a,), ShiftAttrs(s), op.interval.shift(s))

    def relu(self, a: int | None) -> int | None:
        if a is None:
            return None
        iv = self.iv(a)
        if iv.lo >= 0:
            return a
        if iv.hi <= 0:
            return None
        return self._emit(RELU, (a,), NoAttrs(), iv.relu())

    def quantize(self, a: int | None, k: int, i: int, f: int, rnd: str = "TRN", ovf: str = "WRAP") -> int | None:
        """Quantize to ``(k, i, f)``; an identity quantizer (fine enough grid, no overflow) folds away."""
        rnd, ovf = check_round_mode(rnd), check_overflow_mode(ovf)
        k, i, f = int(k), int(i), int(f)
        if a is None:
            return None
        iv = self.iv(a)
        res = quantize_interval(iv, k, i, f, rnd, ovf)
        if res.is_zero:
            return None
        full = FixedType(k, i, f).interval
        lo, hi = iv.at_f(max(iv.f, f))
        flo, fhi = full.at_f(max(iv.f, f))
        if iv.f <= f and flo <= lo and hi <= fhi:
            return a
        if self.ops[a].kind is CONST:
            return self._emit(CONST, (), NoAttrs(), res.normalized())
        if rnd == "RND" and iv.f > f:  # RND(x) = TRN(x + ½ LSB): fold the half LSB into a constant term (the bias)
            b = self._add_half_lsb(a, f + 1)
            if b is not None:
                return self.quantize(b, k, i, f, "TRN", ovf)
        return self._emit(QUANTIZE, (a,), QuantizeAttrs(k, i, f, rnd, ovf), res)

    def _add_half_lsb(self, a: int, fh: int) -> int | None:
        """``a + 2**-fh`` built by changing the constant of ``a = x ± c`` (through a relu: flooring after
        ``relu(z) + h`` and ``relu(z + h)`` agree for ``h`` half an LSB); ``None`` when ``a`` has no constant term."""
        op = self.ops[a]
        if op.kind is RELU:
            inner = self._add_half_lsb(op.args[0], fh)
            return None if inner is None else self.relu(inner)
        if op.kind is not ADD:
            return None
        x, y = op.args
        s, sub = op.attrs.shift, op.attrs.sub
        h = Fraction(1, 1 << fh) if fh >= 0 else Fraction(1 << -fh)
        if self.ops[y].kind is CONST:  # x ± c·2^s  →  x ± c'·2^s with ±c'·2^s = ±c·2^s + h
            c = self.ops[y].interval.lo_value * Fraction(2) ** s
            return self.add(x, self.const((c - h if sub else c + h) / Fraction(2) ** s), s, sub)
        if self.ops[x].kind is CONST:
            return self.add(self.const(self.ops[x].interval.lo_value + h), y, s, sub)
        return None

    def max(self, a: int | None, b: int | None) -> int | None:
        return self._minmax(MAX_KIND, a, b)

    def min(self, a: int | None, b: int | None) -> int | None:
        return self._minmax(MIN_KIND, a, b)

    def _minmax(self, kind: OpKind, a: int | None, b: int | None) -> int | None:
        if a == b:
            return a
        ia, ib = self.iv(a), self.iv(b)
        fa = max(ia.f, ib.f)
        (alo, ahi), (blo, bhi) = ia.at_f(fa), ib.at_f(fa)
        if kind is MAX_KIND:
            if alo >= bhi:
                return a
            if blo >= ahi:
                return b
            if b is None:
                return self.relu(a)
            if a is None:
                return self.relu(b)
            res = Interval(max(alo, blo), max(ahi, bhi), fa)
        else:
            if ahi <= blo:
                return a
            if bhi <= alo:
                return b
            if b is None:
                return self.neg(self.relu(self.neg(a)))
            if a is None:
                return self.neg(self.relu(self.neg(b)))
            res = Interval(min(alo, blo), min(ahi, bhi), fa)
        a, b = sorted((a, b))
        return self._emit(kind, (a, b), NoAttrs(), res)

    def select(self, c: int | None, b: int | None, d: int | None) -> int | None:
        """``b if c >= 0 else d``."""
        ic = self.iv(c)
        if ic.lo >= 0 or b == d:
            return b
        if ic.hi < 0:
            return d
        if b is None and d is None:
            return None
        res = self.iv(b).union(self.iv(d))
        args = tuple(self._materialise_zero(x) for x in (c, b, d))
        return self._emit(SELECT, args, NoAttrs(), res)

    def _materialise_zero(self, j: int | None) -> int:
        return self._emit(CONST, (), NoAttrs(), ZERO) if j is None else j

    def lookup(self, a: int | None | Sequence[int], table_mant, f_out: int) -> int | None:
        """Table lookup: output mantissa ``table_mant[m_a - lo_a]`` at ``f_out`` for every input mantissa.

        ``a`` may also be two wires ``(a, b)``: the table is then addressed by both (row-major, ``a`` the row:
        ``table_mant[(m_a - lo_a) * n_b + m_b - lo_b]``, ``n_b`` the number of ``b``'s values), one LUT level when
        their widths together fit a LUT (:class:`~hdl_gen.ops.LookupAttrs`)."""
        args = (a,) if a is None or isinstance(a, int | np.integer) else tuple(int(x) for x in a)
        if not 1 <= len(args) <= 2:
            raise ValueError(f"a lookup reads one or two wires, got {len(args)}")
        ivs = [self.iv(x) for x in args]
        table = tuple(int(v) for v in np.asarray(table_mant).ravel())
        n = math.prod(iv.hi - iv.lo + 1 for iv in ivs)
        if len(table) != n:
            raise ValueError(f"lookup table has {len(table)} entries but its address takes {n} values")
        if len(set(table)) == 1:
            return self.const(Fraction(table[0], 1) * Interval(1, 1, f_out).step)
        if any(x is None for x in args):  # one wire alone is never None here (a 1-value table is constant)
            raise ValueError("a lookup of several wires needs every wire live; fold the constant ones first")
        return self._emit(LOOKUP, args, LookupAttrs(table), Interval(min(table), max(table), f_out))

    def mul(self, a: int | None, b: int | None) -> int | None:
        if a is None or b is None:
            return None
        a, b = sorted((a, b))
        return self._emit(MUL, (a, b), NoAttrs(), self.iv(a) * self.iv(b))

    # -- constant matrix-vector product ---------------------------------------------------------------------
    def cmvm(self, xs: list[int | None], W, *, depth_bound=None, in_depths=None) -> list[int | None]:
        """``y = x @ W`` for constant dyadic ``W`` (n_in × n_out) as a DA adder graph (:func:`hdl_gen.cmvm.solve`)."""
        return self.cmvm_shared([xs], W, depth_bound=depth_bound, in_depths=in_depths)[0]

    def cmvm_shared(self, xss: list[list[int | None]], W, *, depth_bound=None, in_depths=None) -> list[list]:
        """``y_p = x_p @ W`` for several input vectors sharing one constant ``W`` (a set's members, a sequence's
        steps): one DA solution over the hull of their input ranges, instanced per vector and typed exactly for
        its own inputs (:func:`hdl_gen.cmvm.retype`)."""
        from hdl_gen.cmvm import retype, solve

        W = np.asarray(W, dtype=np.float64)
        if W.ndim != 2 or any(len(xs) != W.shape[0] for xs in xss):
            raise ValueError(f"cmvm: W has shape {W.shape} but the inputs have {sorted({len(x) for x in xss})} rows")
        w_f = _common_f(W)
        w_mant = tuple(tuple(int(v) for v in r) for r in np.ldexp(W, w_f).astype(np.int64))
        ivss = [[self.iv(x) for x in xs] for xs in xss]
        hull = [functools.reduce(Interval.union, col) for col in zip(*ivss, strict=True)]
        # a member's absent (zero) input folds away in its copy: type it with the coarsest step, so that the
        # adders it feeds keep their other operand's step, as the folded ops do
        ivss = [[iv if x is not None else Interval(0, 0, -MAX_INT_BITS) for x, iv in zip(xs, ivs, strict=True)]
                for xs, ivs in zip(xss, ivss, strict=True)]  # fmt: skip
        g0 = solve(W, hull, depth_bound=depth_bound, in_depths=in_depths, objective="bits")
        return [
            self._instance(xs, g0 if len(xss) == 1 else retype(g0, ivs), w_mant, w_f)
            for xs, ivs in zip(xss, ivss, strict=True)
        ]

    def _instance(self, xs: list[int | None], g, w_mant: tuple, w_f: int) -> list[int | None]:
        """Ops of one solved adder graph ``g`` on inputs ``xs``, recorded as a :class:`CmvmBlock`."""
        first = len(self.ops)
        src: list[int | None] = list(xs)
        for op in g.ops:
            src.append(self._add_tight(src[op.a], src[op.b], op.shift, op.sub, op.interval))
        ys: list[int | None] = []
        for o, out in enumerate(g.outputs):
            if out is None:
                ys.append(None)
                continue
            s, sh, sign = out
            y = self.shift(src[s], sh)
            ys.append(self.neg(y) if sign < 0 else y)
            want = g.out_intervals[o]
            got = self.iv(ys[-1])
            if (got.lo_value, got.hi_value) != (want.lo_value, want.hi_value):
                raise AssertionError(f"cmvm output {o}: interval {got} differs from the solver's {want}")
        created = tuple(range(first, len(self.ops)))
        self.blocks.append(CmvmBlock(self.layer, tuple(xs), tuple(ys), w_mant, w_f, created))
        return ys

    # -- finish --------------------------------------------------------------------------------------------
    def build(self, outputs: list[int | None], input_shape, output_shape) -> Graph:
        """The finished graph with dead ops removed."""
        g = Graph(
            tuple(self.ops),
            tuple(self._inputs),
            tuple(self._input_types),
            tuple(outputs),
            tuple(int(s) for s in input_shape),
            tuple(int(s) for s in output_shape),
            tuple(self.blocks),
            self.name,
        )
        return g.eliminate_dead()


def _common_f(W: np.ndarray) -> int:
    """Smallest ``f`` with ``W * 2**f`` all integers (W exact dyadic float64)."""
    f = 0
    while not np.all(np.ldexp(W, f) == np.round(np.ldexp(W, f))):
        f += 1
        if f > 60:
            raise ValueError("cmvm: W entries are not dyadic rationals within 60 fractional bits; quantize the weights")
    while f > -60 and np.any(W != 0) and np.all(np.ldexp(W, f - 1) == np.round(np.ldexp(W, f - 1))):
        f -= 1
    return f
