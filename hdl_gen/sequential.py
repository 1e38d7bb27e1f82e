"""The reused-cell form of a recurrent model: one cell circuit evaluated once per time step, then the head.

``convert_recurrent(model, ...)`` splits the model around its recurrent layer (:func:`hdl_gen.tracer.
trace_recurrent`): a *cell* graph (one step: ``x_t`` in the hull of its per-step formats and the states in their
quantizers' formats → the new states) and a *head* graph (the rest of the model on the last state). Each is
scheduled as a pipeline (the cell in ``cell_latency`` register ranks, at least 1). :class:`SeqCore` wraps them:

- a ``valid_in`` while idle (or in the cycle the last step completes) is accepted: ``x`` is latched and step 0
  starts at once from the port, with zero states; every ``cell_latency`` cycles the cell's result feeds the next
  step (``x_t`` read from the latch by a step counter), so a sequence takes ``steps · cell_latency`` cycles;
- the last state is registered and enters the head, whose ``valid_out``/``y`` are the design's.

So ``II = steps · cell_latency`` (a ``valid_in`` offered earlier is ignored) and the latency is
``II + 1 + head latency``. Ports and the layout JSON are those of a pipeline (docs/interfaces.md) plus
``"ii"``; the input port is the model input with its quantizer's per-step formats, as in the unrolled design, so
the same vectors drive both. ``predict`` evaluates the cell and head graphs step by step (exact), and the
unrolled design is its reference.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl_gen.emit import Core, _port_layout, to_verilog
from hdl_gen.interp import interp_mant
from hdl_gen.ir import Graph
from hdl_gen.schedule import Schedule, schedule
from hgq.fixed import FixedType, from_mantissa, to_mantissa

__all__ = ["SeqCore", "SequentialDesign", "convert_recurrent"]


def _fields(types: list[FixedType]) -> list[tuple[int, int, FixedType]]:
    """``(offset, width, type)`` of each element of a flat port."""
    out, off = [], 0
    for t in types:
        out.append((off, t.width, t))
        off += t.width
    return out


def _convert(m: Module, bits, src: FixedType, dst: FixedType):
    """The value of field ``bits`` (format ``src``) as a ``dst``-format bit vector (``dst`` holds every ``src``
    value: a left shift by the step difference and a sign or zero extension)."""
    if src.width == 0 or dst.width == 0:
        return Signal(max(dst.width, 1), name="zero")
    if dst.f < src.f or (src.k and not dst.k):
        raise AssertionError(f"internal: {src} does not fit {dst}")
    v = Signal(signed(dst.width) if dst.k else unsigned(dst.width))
    m.d.comb += v.eq((bits.as_signed() if src.k else bits) << (dst.f - src.f))
    return v


class SeqCore(wiring.Component):
    """The reused-cell circuit (see the module docstring): ports ``x``, ``valid_in``, ``y``, ``valid_out``."""

    def __init__(self, d: SequentialDesign):
        self.d = d
        self.in_width = max(sum(t.width for t in d.in_types), 1)
        self.out_width = max(sum(d.head.output_interval(o).width for o in range(len(d.head.outputs))), 1)
        super().__init__({"x": In(self.in_width), "valid_in": In(1), "y": Out(self.out_width), "valid_out": Out(1)})

    def elaborate(self, platform):
        d, m = self.d, Module()
        m.submodules.cell = cell = Core(d.cell, d.cell_sched)
        m.submodules.head = head = Core(d.head, d.head_sched)
        T, F = d.steps, d.features
        cin, cout = list(d.cell.input_types), [d.cell.output_interval(o).type for o in range(len(d.cell.outputs))]
        cin_f, cout_f = _fields(cin), _fields(cout)
        port_f = _fields(list(d.in_types))
        x_reg = Signal(self.in_width, reset_less=True)
        t = Signal(range(T + 1))
        busy = Signal()
        last = Signal()  # the cell delivers the last step's states this cycle
        accept = Signal()
        m.d.comb += [last.eq(busy & cell.valid_out & (t == T)), accept.eq(self.valid_in & (~busy | last))]

        def step_input(src, k: int) -> list:
            """The cell's ``x`` fields for step ``k`` read from the flat port word ``src``."""
            return [_convert(m, src[o : o + w], ty, cin[f]) for f, (o, w, ty) in enumerate(port_f[k * F : (k + 1) * F])]

        # x_t: step 0 from the port (the accept cycle), later steps from the latch through the step counter
        xs = [Signal(max(cin[f].width, 1), name=f"x_t{f}") for f in range(F)]
        first = step_input(self.x, 0)
        with m.If(accept):
            m.d.comb += [xs[f].eq(first[f]) for f in range(F)]
        with m.Else(), m.Switch(t):
            for k in range(1, T):
                with m.Case(k):
                    m.d.comb += [xs[f].eq(v) for f, v in enumerate(step_input(x_reg, k))]
        # states: zero on accept, else the cell's own result (valid in the cycle the next step starts)
        states = []
        for j in range(F, len(cin)):
            o = j - F
            fb = _convert(m, cell.y[cout_f[o][0] : cout_f[o][0] + cout_f[o][1]], cout[o], cin[j])
            s = Signal(max(cin[j].width, 1), name=f"s{o}")
            m.d.comb += s.eq(Mux(accept, 0, fb))
            states.append(s)
        m.d.comb += cell.x.eq(Cat(*[v[:w] for (_, w, _), v in zip(cin_f, xs + states, strict=True) if w]))
        m.d.comb += cell.valid_in.eq(accept | (busy & cell.valid_out & (t != T)))
        with m.If(accept):
            m.d.sync += [x_reg.eq(self.x), t.eq(1), busy.eq(1)]
        with m.Elif(busy & cell.valid_out):
            with m.If(t == T):
                m.d.sync += busy.eq(0)
            with m.Else():
                m.d.sync += t.eq(t + 1)
        # the last h enters the head one cycle later (registered)
        u = len(d.head.input_types)
        h_last = Signal(max(sum(ty.width for ty in d.head.input_types), 1), reset_less=True)
        hv = Signal()
        parts = []
        for k in range(u):
            dst = d.head.input_types[k]
            if dst.width:
                o, w, ty = cout_f[k]
                parts.append(_convert(m, cell.y[o : o + w], ty, dst)[: dst.width])
        with m.If(last):
            m.d.sync += h_last.eq(Cat(*parts) if parts else 0)
        m.d.sync += hv.eq(last)
        m.d.comb += [head.x.eq(h_last), head.valid_in.eq(hv), self.y.eq(head.y), self.valid_out.eq(head.valid_out)]
        return m


class SequentialDesign:
    """A recurrent model in the reused-cell form: ``verilog()``, ``layout`` (with ``"ii"``), ``latency``, ``ii``,
    ``predict``, ``report`` (see the module docstring)."""

    def __init__(self, layer, cell: Graph, head: Graph, in_types, *, part: str, clock_ns: float, name: str):
        self.layer_name, self.cell, self.head = layer.name, cell, head
        self.steps, self.features = int(layer.steps), int(layer._in_shape[-1])
        self.n_state = len(cell.outputs)
        self.in_types = tuple(in_types)
        self.part, self.clock_ns, self.name = part, clock_ns, name
        self.cell_sched: Schedule = schedule(cell, part=part, clock_ns=clock_ns)
        if self.cell_sched.latency == 0:
            self.cell_sched = schedule(cell, part=part, clock_ns=clock_ns, stages=1)
        self.head_sched: Schedule = schedule(head, part=part, clock_ns=clock_ns)

    @property
    def cell_latency(self) -> int:
        return self.cell_sched.latency

    @property
    def ii(self) -> int:
        """Cycles between accepted inputs: one cell evaluation per step."""
        return self.steps * self.cell_latency

    @property
    def latency(self) -> int:
        return self.ii + 1 + self.head_sched.latency

    @cached_property
    def layout(self) -> dict:
        outs = [
            (iv.width, iv.lo < 0, iv.f) for iv in (self.head.output_interval(o) for o in range(len(self.head.outputs)))
        ]
        return {
            "name": self.name,
            "latency": self.latency,
            "ii": self.ii,
            "clock_ns": self.clock_ns,
            "part": self.part,
            "clock_enable": False,
            "input": _port_layout([(t.width, t.k, t.f) for t in self.in_types], (self.steps, self.features)),
            "output": _port_layout(outs, self.head.output_shape),
        }

    def verilog(self) -> str:
        return self._verilog

    @cached_property
    def _verilog(self) -> str:
        return to_verilog(SeqCore(self), self.name)

    def predict(self, x) -> np.ndarray:
        """Exact outputs for port values ``x [N, steps·features]``: the cell graph step by step, then the head."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        T, F, n = self.steps, self.features, len(x)
        cin, cell, head = self.cell.input_types, self.cell, self.head
        state = np.zeros((n, len(cin) - F))
        for k in range(T):
            xin = np.concatenate([x[:, k * F : (k + 1) * F], state], axis=1)
            m = np.stack(
                [to_mantissa(xin[:, j], t.f) if t.width else np.zeros(n, np.int64) for j, t in enumerate(cin)], 1
            )
            ym = interp_mant(cell, m.astype(np.int64))
            state = from_mantissa(ym, np.array([cell.output_interval(o).f for o in range(len(cell.outputs))])[None])
        hm = np.stack([to_mantissa(state[:, j], t.f) if t.width else np.zeros(n, np.int64)
                       for j, t in enumerate(head.input_types)], 1)  # fmt: skip
        y = interp_mant(head, hm.astype(np.int64))
        fo = np.array([head.output_interval(o).f for o in range(len(head.outputs))])
        return from_mantissa(y, fo[None]).reshape(n, *head.output_shape)

    def report(self) -> dict:
        """Cost of the cell and the head (once each), latency, II and timing."""
        from hdl_gen.cost import graph_report

        c, h = graph_report(self.cell, self.cell_sched), graph_report(self.head, self.head_sched)
        state_bits = sum(t.width for t in self.cell.input_types[self.features :])
        return {
            "name": self.name,
            "part": self.part,
            "form": "reused cell",
            "steps": self.steps,
            "ii": self.ii,
            "latency_cycles": self.latency,
            "latency_ns": self.latency * self.clock_ns,
            "cell_latency_cycles": self.cell_latency,
            "meets_clock": c["meets_clock"] and h["meets_clock"],
            "lut_estimate": c["lut_estimate"] + h["lut_estimate"],
            "register_bits": c["register_bits"] + h["register_bits"] + sum(t.width for t in self.in_types) + state_bits,
            "cell": c,
            "head": h,
        }


def convert_recurrent(model, *, part: str = "xcvu13p-flga2577-2-e", clock_ns: float = 5.0, name: str = "top",
                      depth_bound="min") -> SequentialDesign:  # fmt: skip
    """A calibrated recurrent model (one ``QSimpleRNN``/``QGRU``/``QLSTM`` reading the model input, then any
    head) in the reused-cell form; :func:`hdl_gen.convert` gives the unrolled form of the same model."""
    from hdl_gen.design import check_name
    from hdl_gen.tracer import _kif_types, trace_recurrent

    check_name(name)
    layer, cell, head = trace_recurrent(model, depth_bound=depth_bound, name=name)
    in_types = list(_kif_types(layer.iq, tuple(layer._in_shape[1:])).reshape(-1))
    return SequentialDesign(layer, cell, head, in_types, part=part, clock_ns=clock_ns, name=name)
