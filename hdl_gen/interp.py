"""The bit-exact golden model: evaluate a :class:`~hdl_gen.ir.Graph` on integer mantissas (int64).

Every op is evaluated by its kind's rule in :mod:`hdl_gen.ops`, on the mantissa of its own interval
(value ``m * 2**-interval.f``). Quantize ops follow :func:`hgq.fixed.requantize`: the rounding decisions are
a table read off ``requantize`` itself and the overflow bounds come from the same function, so there is one
arithmetic. No wire (nor an aligned operand) may exceed 62 bits; a graph that needs more is refused with an
error naming the op and its layer.

With ``expand=False`` (default) each :class:`~hdl_gen.ir.CmvmBlock` is one exact integer matrix product
(float64 BLAS when every partial sum stays below ``2**53``, int64 otherwise) instead of its adder ops;
``expand=True`` evaluates every adder op (tests use it to prove the adder graph equals the matrix).

Samples are processed in chunks; the per-op loops run in one numba kernel.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numba
import numpy as np

from hgq.fixed import MAX_INT_BITS, ROUND_MODES, from_mantissa, requantize

from .ir import CmvmBlock, Graph, Op
from .ops import mag as _mag

__all__ = ["InterpError", "interp", "interp_mant", "interp_trace"]

# instruction codes of the kernel (one rule each): hdl_gen.ops.CODE_*, in this order
# instruction columns: kind, dst, a, b, c, sa, sb, sc, post, p0, p1, p2, p3, round kind
_NCOL = 14
_FLOAT_EXACT = 1 << 53
_FLOAT32_EXACT = 1 << 24
_CHUNK = 2048


class InterpError(ValueError):
    """The graph or the input cannot be evaluated exactly."""


def _round_up_table() -> np.ndarray:
    """``up[mode, fc, rc]`` in {0, 1}: round-up decisions of :func:`requantize` per round mode.

    ``fc`` = 2·[floor < 0] + [floor odd], ``rc`` = remainder class (0: none, 1: below half, 2: half, 3: above).
    Read off ``requantize`` on crafted mantissas (two dropped bits), so the interpreter reuses its decisions.
    """
    floors = np.array([2, 1, -2, -1], dtype=np.int64)  # fc = 0..3
    rems = np.array([0, 1, 2, 3], dtype=np.int64)  # rc = 0..3 with two dropped bits (half = 2)
    m = (floors[:, None] * 4 + rems[None, :]).ravel()
    up = np.zeros((len(ROUND_MODES), 4, 4), dtype=np.int64)
    for r, mode in enumerate(ROUND_MODES):
        q = requantize(m, 2, 1, 20, 0, mode, "WRAP").reshape(4, 4)
        up[r] = q - floors[:, None]
    if not np.all((up == 0) | (up == 1)):  # pragma: no cover - would mean requantize changed meaning
        raise AssertionError("requantize rounding is not a floor-plus-decision rule")
    return up


_UP = _round_up_table()
# per round mode: 1 if its decisions are "never up" (floor), 2 if "up from half" (floor(y + 1/2)), else 0
_RC = np.array([0, 1, 2, 3])
_ROUND_KIND = np.array(
    [1 if not t.any() else 2 if np.array_equal(t, np.broadcast_to(_RC >= 2, t.shape)) else 0 for t in _UP],
    dtype=np.int64,
)


@numba.njit(cache=True, nogil=True, inline="always")
def _sh(v, s):
    return v << s if s >= 0 else v >> -s


@numba.njit(cache=True, nogil=True)
def _run(V, code, tables, up):  # pragma: no cover - compiled
    n = V.shape[1]
    for t in range(code.shape[0]):
        kind, d, a, b, c = code[t, 0], code[t, 1], code[t, 2], code[t, 3], code[t, 4]
        sa, sb, sc, post = code[t, 5], code[t, 6], code[t, 7], code[t, 8]
        p0, p1, p2, p3 = code[t, 9], code[t, 10], code[t, 11], code[t, 12]
        if kind == 0:  # const
            for j in range(n):
                V[d, j] = p0
        elif kind == 1:  # p0 * (a << sa) + p1 * (b << sb), then post
            if b < 0:
                for j in range(n):
                    V[d, j] = _sh(p0 * (V[a, j] << sa), post)
            else:
                for j in range(n):
                    V[d, j] = _sh(p0 * (V[a, j] << sa) + p1 * (V[b, j] << sb), post)
        elif kind == 2:  # relu
            for j in range(n):
                v = V[a, j]
                V[d, j] = _sh(v if v > 0 else 0, post)
        elif kind == 3:  # quantize: sa = dropped bits (>0) or left shift (<=0); p0 mode; p1 ovf; p2, p3 bounds
            rk = code[t, 13]  # 1: the mode rounds down (floor), 2: it rounds half up, 0: read the decision table
            mask = (np.int64(1) << sa) - 1 if sa > 0 else np.int64(0)
            half = np.int64(1) << (sa - 1) if sa > 0 else np.int64(0)
            for j in range(n):
                m = V[a, j]
                if sa <= 0:
                    v = m << -sa
                elif rk == 1:
                    v = m >> sa
                elif rk == 2:
                    v = (m + half) >> sa
                else:
                    fl = m >> sa
                    rem = m & mask
                    rc = 0 if rem == 0 else (1 if rem < half else (2 if rem == half else 3))
                    fc = (2 if fl < 0 else 0) + (fl & 1)
                    v = fl + up[p0, fc, rc]
                if p1 == 0:  # noqa: SIM108  (wrap: p2 = offset k * 2**(W-1), p3 = mask 2**W - 1)
                    v = ((v + p2) & p3) - p2
                else:  # clamp to [p2, p3]
                    v = p2 if v < p2 else (p3 if v > p3 else v)
                V[d, j] = _sh(v, post)
        elif kind == 4:  # max
            for j in range(n):
                x, y = V[a, j] << sa, V[b, j] << sb
                V[d, j] = _sh(x if x > y else y, post)
        elif kind == 5:  # min
            for j in range(n):
                x, y = V[a, j] << sa, V[b, j] << sb
                V[d, j] = _sh(x if x < y else y, post)
        elif kind == 6:  # select: a >= 0 ? b : c
            for j in range(n):
                V[d, j] = _sh((V[b, j] << sb) if V[a, j] >= 0 else (V[c, j] << sc), post)
        elif kind == 7:  # lookup: tables[p0 + a - p1], of two wires tables[p0 + (a - p1) * p2 + b - p3]
            if b < 0:
                for j in range(n):
                    V[d, j] = _sh(tables[p0 + V[a, j] - p1], post)
            else:
                for j in range(n):
                    V[d, j] = _sh(tables[p0 + (V[a, j] - p1) * p2 + V[b, j] - p3], post)
        else:  # mul
            for j in range(n):
                V[d, j] = _sh(V[a, j] * V[b, j], post)


@numba.njit(cache=True, nogil=True)
def _cmvm(V, sin, shin, w, sout, post, X, Y):  # pragma: no cover - compiled
    """``V[sout] = (w @ (V[sin] << shin)) >> post``, exact: float32 / float64 only when every partial sum fits."""
    n = V.shape[1]
    for r in range(sin.shape[0]):
        for j in range(n):
            X[r, j] = V[sin[r], j] << shin[r]
    nz = np.empty(sin.shape[0], dtype=np.int64)
    for o in range(sout.shape[0]):
        k = 0
        for r in range(sin.shape[0]):
            if w[o, r] != 0:
                nz[k] = r
                k += 1
        for j in range(n):
            Y[j] = 0
        q = 0
        while q + 4 <= k:  # four terms per pass over Y (any order is exact: every partial sum fits)
            r0, r1, r2, r3 = nz[q], nz[q + 1], nz[q + 2], nz[q + 3]
            w0, w1, w2, w3 = w[o, r0], w[o, r1], w[o, r2], w[o, r3]
            for j in range(n):
                Y[j] += (w0 * X[r0, j] + w1 * X[r1, j]) + (w2 * X[r2, j] + w3 * X[r3, j])
            q += 4
        while q < k:
            r0 = nz[q]
            w0 = w[o, r0]
            for j in range(n):
                Y[j] += w0 * X[r0, j]
            q += 1
        for j in range(n):
            V[sout[o], j] = _sh(np.int64(Y[j]), post[o])


# -- compilation of a graph into a plan ------------------------------------------------------------------------


@dataclass
class _Block:
    slots_in: np.ndarray  # slots of the block inputs (non-None, non-zero rows)
    shift_in: np.ndarray  # left shifts bringing each input to the common f
    w: np.ndarray  # [n_out_used, n_in_used] float64 or int64
    slots_out: np.ndarray
    post: np.ndarray  # shift from the product's f to each output op's f
    use_float: bool


@dataclass
class _Plan:
    n_slots: int
    in_slots: np.ndarray  # per input element: slot or -1
    in_shift: np.ndarray
    steps: list  # ("run", code) | ("block", _Block)
    tables: np.ndarray
    out_slots: np.ndarray  # per output: slot or -1
    out_f: np.ndarray


_PLANS: dict[tuple[int, bool, bool], tuple[weakref.ref, _Plan]] = {}


def _where(op: Op, j: int) -> str:
    return f"op {j} ({op.kind}) of layer {op.layer!r}" if op.layer else f"op {j} ({op.kind})"


def _check_bits(mag: int, op: Op, j: int, what: str) -> None:
    if mag >= 1 << MAX_INT_BITS:
        raise InterpError(
            f"{_where(op, j)}: {what} needs {mag.bit_length() + 1} bits, over the interpreter's {MAX_INT_BITS}-bit "
            "limit; narrow the quantizers of this layer"
        )


class _InstrCtx:
    """What an op kind's interpreter rule (:meth:`hdl_gen.ops.OpKind.instr`) reads and fills: the kernel row."""

    def __init__(self, g: Graph, j: int, slot: dict[int, int], tables: list[np.ndarray], tab_len: list[int]):
        self.op = op = g.ops[j]
        self.j, self.iv = j, op.interval
        self.a = [g.ops[x].interval for x in op.args]
        self.tables, self.tab_len = tables, tab_len
        s = [slot[x] for x in op.args]
        self.row = [0] * _NCOL
        self.row[1] = slot[j]
        self.row[2 : 2 + len(s)] = s
        if len(s) < 2:
            self.row[3] = -1

    def error(self, msg: str) -> InterpError:
        return InterpError(f"{_where(self.op, self.j)}: {msg}")

    def check(self, mag: int, what: str) -> None:
        _check_bits(mag, self.op, self.j, what)

    def post(self, F: int) -> int:
        """Shift from the rule's working ``F`` to the op's own ``f`` (checked when it widens the result)."""
        p = self.iv.f - F
        if p < 0:
            self.check(_mag(self.iv.lo, self.iv.hi, -p), "its unscaled result")
        return p

    def add_table(self, table) -> int:
        """Append a lookup table to the plan's tables; its offset."""
        at = self.tab_len[0]
        self.tables.append(np.asarray(table, dtype=np.int64))
        self.tab_len[0] += len(table)
        return at

    @staticmethod
    def round_kind(mode: int) -> int:
        return int(_ROUND_KIND[mode])


def _instr(g: Graph, j: int, slot: dict[int, int], tables: list[np.ndarray], tab_len: list[int]) -> list[int]:
    """One kernel instruction for op ``j`` (its args already have slots), by its kind's rule."""
    c = _InstrCtx(g, j, slot, tables, tab_len)
    c.check(_mag(c.iv.lo, c.iv.hi), "its result")
    c.op.kind.instr(c)
    return c.row


def _block_step(g: Graph, b: CmvmBlock, produced: list[int], slot: dict[int, int]) -> _Block:
    rows = [r for r, x in enumerate(b.inputs) if x is not None]
    cols = [c for c, o in enumerate(b.outputs) if o is not None and o in set(produced)]
    ivs = [g.ops[b.inputs[r]].interval for r in rows]
    fmax = max((v.f for v in ivs), default=0)
    shift_in = np.array([fmax - v.f for v in ivs], dtype=np.int64)
    wm = np.array(b.w_mant, dtype=object).reshape(len(b.inputs), len(b.outputs))[np.ix_(rows, cols)]
    mags = [_mag(v.lo, v.hi, int(s)) for v, s in zip(ivs, shift_in, strict=True)]
    worst = max((sum(mags[r] * abs(int(wm[r, c])) for r in range(len(rows))) for c in range(len(cols))), default=0)
    layer = f" of layer {b.layer!r}" if b.layer else ""
    if worst >= 1 << MAX_INT_BITS or max((abs(int(v)) for v in wm.ravel()), default=0) >= 1 << MAX_INT_BITS:
        raise InterpError(
            f"constant matrix product{layer} needs {worst.bit_length() + 1} bits, over the interpreter's "
            f"{MAX_INT_BITS}-bit limit; narrow its input or weight quantizers, or evaluate with expand=True"
        )
    use_float = worst < _FLOAT_EXACT
    dtype = np.float32 if worst < _FLOAT32_EXACT else np.float64 if use_float else np.int64
    w = wm.T.astype(dtype)
    fy = fmax + b.w_f
    post = np.array([g.ops[b.outputs[c]].interval.f - fy for c in cols], dtype=np.int64)
    outs = [b.outputs[c] for c in cols]
    return _Block(
        np.array([slot[b.inputs[r]] for r in rows], dtype=np.int64),
        shift_in,
        np.ascontiguousarray(w),
        np.array([slot[o] for o in outs], dtype=np.int64),
        post,
        use_float,
    )


def _compile(g: Graph, expand: bool, keep_all: bool) -> _Plan:
    n = len(g.ops)
    # which block produces which op (expand=False): outputs created inside the block
    producer: dict[int, int] = {}
    if not expand:
        for bi, b in enumerate(g.blocks):
            own = set(b.ops)
            for o in b.outputs:
                if o is not None and o in own and o not in producer:
                    producer[o] = bi
    # needed ops (backward from outputs)
    need = np.zeros(n, dtype=bool)
    need_block: set[int] = set()
    stack = [o for o in g.outputs if o is not None] + [j for j in g.inputs if j is not None]
    if keep_all:
        stack = list(range(n))
    while stack:
        j = stack.pop()
        if need[j]:
            continue
        need[j] = True
        if j in producer:
            bi = producer[j]
            if bi not in need_block:
                need_block.add(bi)
                stack.extend(x for x in g.blocks[bi].inputs if x is not None)
        else:
            stack.extend(g.ops[j].args)
    # items in topological order: ops by id, a block at its first produced op
    block_out: dict[int, list[int]] = {bi: [] for bi in need_block}
    for o, bi in producer.items():
        if bi in need_block and need[o]:
            block_out[bi].append(o)
    block_at = {min(v): bi for bi, v in block_out.items() if v}
    # last use of each op, for slot reuse
    last = np.full(n, -1, dtype=np.int64)
    for j in range(n):
        if need[j] and j not in producer:
            for x in g.ops[j].args:
                last[x] = max(last[x], j)
    for bi, v in block_out.items():
        at = min(v)
        for x in g.blocks[bi].inputs:
            if x is not None:
                last[x] = max(last[x], at)
    for o in g.outputs:
        if o is not None:
            last[o] = n
    free: list[int] = []
    slot: dict[int, int] = {}
    n_slots = 0

    def alloc(j: int) -> None:
        nonlocal n_slots
        if free and not keep_all:
            slot[j] = free.pop()
        else:
            slot[j], n_slots = n_slots, n_slots + 1

    def release(js) -> None:
        if keep_all:
            return
        for x in js:
            if last[x] <= cur and x in slot and slot[x] not in free:
                free.append(slot[x])

    steps: list = []
    code: list[list[int]] = []
    tables: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
    tab_len = [1]
    in_slots = np.full(len(g.inputs), -1, dtype=np.int64)
    in_shift = np.zeros(len(g.inputs), dtype=np.int64)
    for j in range(n):  # ports are written before the first step: their slots first (a later port op, e.g. a
        cur = -1  # second model input read first deep in the graph, must not share a slot used before it)
        op = g.ops[j]
        if need[j] and op.kind.port:
            alloc(j)
            idx = op.attrs.index
            in_slots[idx] = slot[j]
            in_shift[idx] = op.interval.f - g.input_types[idx].f
            if in_shift[idx] < 0:
                raise InterpError(f"{_where(op, j)}: input op step is coarser than its port format")
    for j in range(n):
        cur = j
        if j in block_at:
            bi = block_at[j]
            for o in block_out[bi]:
                alloc(o)
            if code:
                steps.append(("run", np.array(code, dtype=np.int64)))
                code = []
            steps.append(("block", _block_step(g, g.blocks[bi], block_out[bi], slot)))
            release(x for x in g.blocks[bi].inputs if x is not None)
        op = g.ops[j]
        if not need[j] or j in producer or op.kind.port:
            continue
        alloc(j)
        code.append(_instr(g, j, slot, tables, tab_len))
        release(op.args)
    if code:
        steps.append(("run", np.array(code, dtype=np.int64)))
    out_slots = np.array([-1 if o is None else slot[o] for o in g.outputs], dtype=np.int64)
    out_f = np.array([g.output_interval(o).f for o in range(len(g.outputs))], dtype=np.int64)
    return _Plan(max(n_slots, 1), in_slots, in_shift, steps, np.concatenate(tables), out_slots, out_f)


def _plan(g: Graph, expand: bool, keep_all: bool = False) -> _Plan:
    key = (id(g), expand, keep_all)
    hit = _PLANS.get(key)
    if hit is not None and hit[0]() is g:
        return hit[1]
    p = _compile(g, expand, keep_all)
    _PLANS[key] = (weakref.ref(g, lambda _: _PLANS.pop(key, None)), p)
    return p


def _shift_rows(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Shift each row ``r`` of int64 ``x`` left by ``s[r]`` (right, exact, when negative)."""
    if not np.any(s):
        return x
    s = s[:, None]
    return np.where(s >= 0, np.left_shift(x, np.maximum(s, 0)), np.right_shift(x, np.maximum(-s, 0)))


def _eval_chunk(p: _Plan, xm: np.ndarray, V: np.ndarray) -> None:
    """Evaluate one chunk of input mantissas ``xm [C, n_in]`` into the slot array ``V [n_slots, C]``."""
    live = p.in_slots >= 0
    V[p.in_slots[live]] = _shift_rows(np.ascontiguousarray(xm.T[live]), p.in_shift[live])
    for step, s in p.steps:
        if step == "run":
            _run(V, s, p.tables, _UP)
            continue
        c = V.shape[1]
        _cmvm(
            V,
            s.slots_in,
            s.shift_in,
            s.w,
            s.slots_out,
            s.post,
            np.empty((len(s.slots_in), c), s.w.dtype),
            np.empty(c, s.w.dtype),
        )


def _check_mant(graph: Graph, x_mant) -> np.ndarray:
    x = np.asarray(x_mant)
    if x.dtype.kind not in "iu":
        raise TypeError(f"interp_mant takes integer mantissas, got dtype {x.dtype}; use interp for float values")
    if x.ndim != 2 or x.shape[1] != len(graph.inputs):
        raise ValueError(f"interp_mant expects mantissas of shape [N, {len(graph.inputs)}], got {x.shape}")
    x = x.astype(np.int64)
    if x.shape[0]:
        big = np.iinfo(np.int64)  # a pruned (width-0) element is ignored
        lo = np.array([t.interval.lo if t.width else big.min for t in graph.input_types], dtype=np.int64)
        hi = np.array([t.interval.hi if t.width else big.max for t in graph.input_types], dtype=np.int64)
        bad = np.nonzero((x.min(0) < lo) | (x.max(0) > hi))[0]
        if bad.size:
            j = int(bad[0])
            t = graph.input_types[j]
            raise ValueError(
                f"input element {j}: mantissa outside its format {t} ([{lo[j]}, {hi[j]}]); "
                "quantize the input with the model's input quantizer first"
            )
    return x


def interp_mant(graph: Graph, x_mant, *, expand: bool = False, chunk: int = _CHUNK) -> np.ndarray:
    """Exact outputs for int64 input mantissas ``x_mant [N, n_in]`` (input ``j`` at ``graph.input_types[j].f``).

    Returns int64 ``[N, n_out]``: output ``o``'s mantissa at ``graph.output_interval(o).f`` (0 for a pruned output).
    """
    x = _check_mant(graph, x_mant)
    p = _plan(graph, expand)
    N = x.shape[0]
    out = np.zeros((N, len(graph.outputs)), dtype=np.int64)
    live = p.out_slots >= 0
    V = np.empty((p.n_slots, min(chunk, max(N, 1))), dtype=np.int64)
    for s in range(0, N, chunk):
        e = min(s + chunk, N)
        Vc = V[:, : e - s] if e - s < V.shape[1] else V
        if Vc is not V:
            Vc = np.ascontiguousarray(Vc)
        _eval_chunk(p, x[s:e], Vc)
        out[s:e, live] = Vc[p.out_slots[live]].T
    return out


def interp_trace(graph: Graph, x, *, mantissas: bool = False) -> np.ndarray:
    """Every op's value for float inputs ``x [N, *input_shape]``: float64 ``[N, n_ops]`` (all adder ops evaluated).

    With ``mantissas=True`` returns int64 mantissas instead (op ``j`` at ``graph.ops[j].interval.f``).
    """
    xm = _check_mant(graph, _to_mant(graph, x))
    p = _plan(graph, True, keep_all=True)
    V = np.empty((p.n_slots, xm.shape[0]), dtype=np.int64)
    _eval_chunk(p, xm, V)
    ids = list(range(len(graph.ops)))  # keep_all: slot j holds op j
    m = V[ids].T
    if mantissas:
        return np.ascontiguousarray(m)
    fs = np.array([op.interval.f for op in graph.ops], dtype=np.int64)
    return from_mantissa(m, fs[None, :])


def _to_mant(graph: Graph, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n_in = len(graph.inputs)
    if x.ndim < 1 or (x.shape[1:] != tuple(graph.input_shape) and x.shape[1:] != (n_in,)):
        raise ValueError(f"interp expects inputs of shape [N, *{tuple(graph.input_shape)}], got {x.shape}")
    x = x.reshape(x.shape[0], n_in)
    fs = np.array([t.f if t.width > 0 else 0 for t in graph.input_types], dtype=np.int64)
    live = np.array([t.width > 0 for t in graph.input_types], dtype=bool)
    y = x * np.ldexp(1.0, fs) * live  # exact: power-of-two scaling; pruned elements read as 0
    xm = y.astype(np.int64)
    if np.array_equal(xm, y):  # on the grid (and within int64): the common case in one pass
        return xm
    ok = (y == np.floor(y)) & (np.abs(y) < 2.0**62)
    j = int(np.nonzero(~ok.all(axis=0))[0][0])
    raise ValueError(
        f"interp: input element {j} is not on its format's grid {graph.input_types[j]}; "
        "quantize the input with the model's input quantizer first"
    )
    return xm


def interp(graph: Graph, x, *, expand: bool = False, chunk: int = _CHUNK) -> np.ndarray:
    """Exact float64 outputs ``[N, *output_shape]`` for input values ``x [N, *input_shape]`` on the input grid."""
    xm = _to_mant(graph, x)
    m = interp_mant(graph, xm, expand=expand, chunk=chunk)
    for o in range(len(graph.outputs)):
        if graph.output_interval(o).width > 53:
            raise InterpError(
                f"output {o} is {graph.output_interval(o).width} bits wide: float64 cannot hold it exactly; "
                "use interp_mant"
            )
    fo = np.array([graph.output_interval(o).f for o in range(len(graph.outputs))], dtype=np.int64)
    return from_mantissa(m, fo[None, :]).reshape(xm.shape[0], *graph.output_shape)
