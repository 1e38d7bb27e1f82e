"""A small Design-like shift-add core that follows docs/interfaces.md exactly, for the sim tests and benchmark
(when ``hdl_gen.convert`` is not available) and for planting bugs that the testbench must catch.

Inputs cycle through the formats signed 6 bit f=3, signed 5 bit f=1, unsigned 4 bit f=2, pruned (width 0) and
signed 7 bit f=3. Stage 1 registers ``h_j = sum_e ±(v_e << s)`` over the inputs aligned to f=3; stage 2 registers
``y_o = sum_j ±(h_j << s) + c_o``; the last output is ``h_0`` wrapped to an unsigned 4-bit field and one output is
pruned. ``extra_stages`` adds delay ranks (latency ``2 + extra_stages``). Planted bugs: ``bug="const"`` flips a
bit of ``c_0`` in the hardware only; ``bug="latency"`` adds a register rank the layout does not report;
``bug="valid_reset"`` lets the last register of the valid chain ignore the reset (data and latency stay right).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hgq.fixed import from_mantissa, quantize, to_mantissa

__all__ = ["BUGS", "ToyDesign", "toy_design"]

BUGS = (None, "const", "latency", "valid_reset")

_FORMATS = [(1, 6, 3), (1, 5, 1), (0, 4, 2), (0, 0, 0), (1, 7, 3)]  # (signed, width, f)
F = 3  # every internal value is a mantissa at f = 3


def _swidth(lo: int, hi: int) -> int:
    """Bits of the narrowest two's-complement field holding [lo, hi]."""
    w = 1
    while not (-(1 << (w - 1)) <= lo and hi <= (1 << (w - 1)) - 1):
        w += 1
    return w


@dataclass
class _Spec:
    n_in: int
    n_mid: int
    n_out: int
    extra: int
    fmt: list[tuple[int, int, int]]
    c1: list[list[tuple[int, int]]]  # per h_j: (input e, signed shift code) pairs
    c2: list[list[tuple[int, int]]]  # per y_o: (h j, signed shift code) pairs
    const: list[int]
    rng_h: list[tuple[int, int]] = field(default_factory=list)
    rng_y: list[tuple[int, int]] = field(default_factory=list)


def _spec(n_in: int, n_out: int, extra: int, seed: int) -> _Spec:
    r = random.Random(seed)
    fmt = [_FORMATS[e % len(_FORMATS)] for e in range(n_in)]
    live = [e for e in range(n_in) if fmt[e][1] > 0]
    n_mid = max(2, n_in // 2)
    c1 = [
        [(e, r.choice([1, -1]) * (1 + r.randrange(3))) for e in sorted(r.sample(live, min(4, len(live))))]
        for _ in range(n_mid)
    ]
    c2 = [
        [(j, r.choice([1, -1]) * (1 + r.randrange(2))) for j in sorted(r.sample(range(n_mid), min(3, n_mid)))]
        for _ in range(n_out)
    ]
    const = [r.randrange(-40, 40) | 1 for _ in range(n_out)]
    s = _Spec(n_in, n_mid, n_out, extra, fmt, c1, c2, const)
    lo_in = [(-(1 << (w - 1)) if k else 0) << (F - f) if w else 0 for k, w, f in fmt]
    hi_in = [((1 << (w - 1 if k else w)) - 1) << (F - f) if w else 0 for k, w, f in fmt]
    for terms in c1:
        s.rng_h.append(_range(terms, lo_in, hi_in, 0))
    lo_h, hi_h = [a for a, _ in s.rng_h], [b for _, b in s.rng_h]
    for o, terms in enumerate(c2):
        s.rng_y.append(_range(terms, lo_h, hi_h, const[o]))
    return s


def _range(terms, lo, hi, c) -> tuple[int, int]:
    a = b = c
    for i, code in terms:
        m = 1 << (abs(code) - 1)
        if code > 0:
            a, b = a + lo[i] * m, b + hi[i] * m
        else:
            a, b = a - hi[i] * m, b - lo[i] * m
    return a, b


class _Core(wiring.Component):
    """The core; Amaranth adds ``clk`` and the synchronous ``rst`` of the ``sync`` domain as ports."""

    def __init__(self, s: _Spec, layout: dict, bug: str | None):
        self.s, self.layout, self.bug = s, layout, bug
        super().__init__(
            {
                "x": In(layout["input"]["width"]),
                "valid_in": In(1),
                "y": Out(layout["output"]["width"]),
                "valid_out": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        s, lay = self.s, self.layout
        v = []
        for e, (k, w, f) in enumerate(s.fmt):
            el = lay["input"]["elements"][e]
            if w == 0:
                v.append(None)
                continue
            fld = self.x[el["offset"] : el["offset"] + w]
            v.append((fld.as_signed() if k else fld) << (F - f))
        h = []
        for j, terms in enumerate(s.c1):
            r = Signal(signed(_swidth(*s.rng_h[j])), name=f"h{j}", reset_less=True)
            m.d.sync += r.eq(_sum([(v[e], c) for e, c in terms], 0))
            h.append(r)
        outs = []
        for o, terms in enumerate(s.c2):
            c = s.const[o] ^ (2 if (self.bug == "const" and o == 0) else 0)
            r = Signal(signed(_swidth(*s.rng_y[o])), name=f"y{o}", reset_less=True)
            m.d.sync += r.eq(_sum([(h[j], cc) for j, cc in terms], c))
            outs.append(r)
        u = Signal(unsigned(4), name="yw", reset_less=True)
        m.d.sync += u.eq(h[0][:4])
        outs.append(u)
        valid = self.valid_in
        v1 = Signal(name="v1")
        m.d.sync += v1.eq(valid)
        v2 = Signal(name="v2", reset_less=self.bug == "valid_reset" and s.extra == 0)
        m.d.sync += v2.eq(v1)
        valid = v2
        ranks = s.extra + (1 if self.bug == "latency" else 0)
        for i in range(ranks):
            nxt = []
            for o in outs:
                r = Signal(o.shape(), name=f"d{i}_{o.name}", reset_less=True)
                m.d.sync += r.eq(o)
                nxt.append(r)
            outs = nxt
            vv = Signal(name=f"dv{i}", reset_less=self.bug == "valid_reset" and i == ranks - 1)
            m.d.sync += vv.eq(valid)
            valid = vv
        els = lay["output"]["elements"]
        live = [e for e in els if e["width"] > 0]
        for el, o in zip(live, outs, strict=True):
            m.d.comb += self.y[el["offset"] : el["offset"] + el["width"]].eq(o)
        m.d.comb += self.valid_out.eq(valid)
        return m


def _sum(terms, c):
    acc = None
    for sig, code in terms:
        t = sig << (abs(code) - 1)
        acc = (t if code > 0 else -t) if acc is None else (acc + t if code > 0 else acc - t)
    if c:
        acc = c if acc is None else acc + c
    return acc


def _layout(s: _Spec, name: str) -> dict:
    ins, off = [], 0
    for e, (k, w, f) in enumerate(s.fmt):
        ins.append({"index": e, "offset": off, "width": w, "signed": bool(k), "f": f})
        off += w
    win = max(off, 1)
    outs, off = [], 0
    for o in range(s.n_out):
        w = _swidth(*s.rng_y[o])
        outs.append({"index": len(outs), "offset": off, "width": w, "signed": True, "f": F})
        off += w
    outs.append({"index": len(outs), "offset": off, "width": 0, "signed": True, "f": 0})  # pruned
    outs.append({"index": len(outs), "offset": off, "width": 4, "signed": False, "f": F})
    off += 4
    return {
        "name": name,
        "latency": 2 + s.extra,
        "clock_ns": 5.0,
        "part": "toy",
        "clock_enable": False,
        "input": {"width": win, "shape": [s.n_in], "elements": ins},
        "output": {"width": off, "shape": [len(outs)], "elements": outs},
    }


class ToyDesign:
    """Design-like object: ``name``, ``layout``, ``latency``, ``verilog()``, ``predict(x)``."""

    def __init__(
        self,
        n_in: int = 5,
        n_out: int = 2,
        *,
        extra_stages: int = 0,
        bug: str | None = None,
        name: str | None = None,
        seed: int = 1,
    ):
        if bug not in BUGS:
            raise ValueError(f"bug must be one of {BUGS}, got {bug!r}")
        self.bug = bug
        self.name = name or f"toy{n_in}x{n_out}" + (f"_{bug}" if bug else "")
        self.s = _spec(n_in, n_out, extra_stages, seed)
        self.layout = _layout(self.s, self.name)
        self.latency = self.layout["latency"]
        self._v: str | None = None

    def verilog(self) -> str:
        """Verilog text (cached; deterministic)."""
        if self._v is None:
            core = _Core(self.s, self.layout, self.bug)
            self._v = verilog.convert(core, name=self.name, emit_src=False, strip_internal_attrs=True)
        return self._v

    def predict(self, x) -> np.ndarray:
        """Bit-exact outputs (float) of the correct core; ``x`` is quantized by the input formats (WRAP)."""
        s = self.s
        x = np.asarray(x, dtype=np.float64).reshape(-1, s.n_in)
        v = np.zeros((len(x), s.n_in), dtype=np.int64)
        for e, (k, w, f) in enumerate(s.fmt):
            if w:
                q = quantize(x[:, e], k, w - k - f, f)
                v[:, e] = to_mantissa(q, f) << (F - f)
        h = np.stack([_np_sum(v, t, 0) for t in s.c1], axis=1)
        ys = [_np_sum(h, t, s.const[o]) for o, t in enumerate(s.c2)]
        ys += [np.zeros(len(x), dtype=np.int64), h[:, 0] & 15]
        return from_mantissa(np.stack(ys, axis=1), F)


def _np_sum(a: np.ndarray, terms, c: int) -> np.ndarray:
    acc = np.full(len(a), c, dtype=np.int64)
    for i, code in terms:
        t = a[:, i] << (abs(code) - 1)
        acc = acc + t if code > 0 else acc - t
    return acc


def toy_design(n_in: int = 5, n_out: int = 2, **kw) -> ToyDesign:
    """A :class:`ToyDesign` (see the module docstring)."""
    return ToyDesign(n_in, n_out, **kw)
