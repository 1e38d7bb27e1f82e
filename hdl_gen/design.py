"""``convert``: a Keras model or a Graph → a :class:`Design` (Verilog, layout, latency, report, predict, write).

The Design object is the contract of docs/interfaces.md; ``load_design(dir)`` rebuilds one from what
``Design.write(dir)`` wrote (the graph JSON), without Keras.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path

import numpy as np

from hdl_gen.emit import Core, layout, to_verilog
from hdl_gen.ir import Graph
from hdl_gen.schedule import Schedule, schedule

__all__ = ["Design", "convert", "graph_report", "load_design", "report_table"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Design:
    """A scheduled graph ready for emission: ``verilog()``, ``layout``, ``latency``, ``predict``, ``report``."""

    def __init__(
        self,
        graph: Graph,
        *,
        part: str = "xcvu13p-flga2577-2-e",
        clock_ns: float | None = 5.0,
        stages: int | None = None,
        name: str = "top",
        clock_enable: bool = False,
    ):
        if not _NAME.match(name):
            raise ValueError(f"design name {name!r} is not a Verilog identifier; use letters, digits and _")
        self.graph = graph
        self.part = part
        self.clock_ns = clock_ns
        self.name = name
        self.clock_enable = clock_enable
        self.schedule: Schedule = schedule(graph, part=part, clock_ns=clock_ns, stages=stages)
        self.stages_option = stages

    @property
    def latency(self) -> int:
        """Register ranks from ``x`` to ``y`` = cycles from ``valid_in`` to ``valid_out``."""
        return self.schedule.latency

    @cached_property
    def layout(self) -> dict:
        return layout(self.graph, self.schedule, name=self.name, part=self.part, clock_enable=self.clock_enable)

    def component(self) -> Core:
        """A fresh Amaranth component of the circuit (for amaranth.sim or a board wrapper)."""
        return Core(self.graph, self.schedule, clock_enable=self.clock_enable)

    def verilog(self) -> str:
        """The Verilog module ``name`` (byte-identical across runs)."""
        return self._verilog

    @cached_property
    def _verilog(self) -> str:
        return to_verilog(self.component(), self.name)

    def predict(self, x) -> np.ndarray:
        """Bit-exact float64 outputs ``[N, *output_shape]`` of the circuit for input values on the input grid."""
        from hdl_gen.interp import interp

        return interp(self.graph, x)

    def predict_mant(self, x_mant) -> np.ndarray:
        """Output mantissas ``[N, n_out]`` for input mantissas ``[N, n_in]`` (what the ports carry, per element)."""
        from hdl_gen.interp import interp_mant

        return interp_mant(self.graph, x_mant)

    def report(self) -> dict:
        """Cost, latency and timing figures (plain JSON types); see :func:`graph_report`."""
        rep = graph_report(self.graph, self.schedule)
        rep.update(name=self.name, part=self.part)
        return rep

    def write(self, directory) -> Path:
        """Write ``<name>.v``, ``.layout.json``, ``.report.json`` and ``.graph.json`` into ``directory``; returns it."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{self.name}.v").write_text(self.verilog())
        (d / f"{self.name}.layout.json").write_text(json.dumps(self.layout, indent=1, sort_keys=True) + "\n")
        rep = self.report()
        rep["options"] = {"stages": self.stages_option, "clock_enable": self.clock_enable}
        (d / f"{self.name}.report.json").write_text(json.dumps(rep, indent=1, sort_keys=True) + "\n")
        (d / f"{self.name}.graph.json").write_text(self.graph.to_json() + "\n")
        return d

    def __repr__(self) -> str:
        return (
            f"Design(name={self.name!r}, part={self.part!r}, latency={self.latency}, "
            f"clock_ns={self.clock_ns}, ops={len(self.graph.ops)})"
        )


def convert(
    model_or_graph,
    *,
    part: str = "xcvu13p-flga2577-2-e",
    clock_ns: float | None = 5.0,
    stages: int | None = None,
    name: str = "top",
    depth_bound: int | str | None = "min",
    clock_enable: bool = False,
) -> Design:
    """Lower a calibrated Keras model (via :func:`hdl_gen.trace.trace`) or a :class:`Graph` to a :class:`Design`.

    Args:
        model_or_graph: a Keras model or an :class:`hdl_gen.ir.Graph`.
        part: FPGA part name; picks the delay model (``hdl_gen.delay.family_of``).
        clock_ns: target clock period; the pipeline gets as few ranks as fit it (unless ``stages``).
        stages: exact number of register ranks (0 = combinational).
        name: Verilog module name.
        depth_bound: adder-depth bound of the tracer's CMVM solver (Keras models only): ``"min"`` (default:
            the minimal adder depth, far fewer pipeline registers for ~0.5 % more adder bits), ``"min+K"``, an
            int, or ``None`` (fewest adders, deeper trees).
        clock_enable: add an ``en`` port gating every register.
    """
    if isinstance(model_or_graph, Graph):
        if depth_bound != "min":
            raise ValueError("depth_bound applies when tracing a Keras model; a Graph is already solved")
        graph = model_or_graph
    else:
        try:
            from hdl_gen.trace import trace
        except ImportError as e:  # pragma: no cover - depends on the tracer being installed
            raise ImportError(f"converting a model needs hdl_gen.trace ({e}); pass a Graph instead") from e
        graph = trace(model_or_graph, depth_bound=depth_bound)
    return Design(graph, part=part, clock_ns=clock_ns, stages=stages, name=name, clock_enable=clock_enable)


def load_design(directory) -> Design:
    """A :class:`Design` rebuilt from a directory written by :meth:`Design.write` (no Keras needed)."""
    d = Path(directory)
    lays = sorted(d.glob("*.layout.json"))
    if len(lays) != 1:
        raise FileNotFoundError(
            f"{d}: expected exactly one <name>.layout.json, found {len(lays)}; pass the dir Design.write made"
        )
    lay = json.loads(lays[0].read_text())
    name = lay["name"]
    gpath, rpath = d / f"{name}.graph.json", d / f"{name}.report.json"
    for p in (gpath, rpath):
        if not p.exists():
            raise FileNotFoundError(f"{p} is missing; write the design again with Design.write")
    rep = json.loads(rpath.read_text())
    opts = rep.get("options", {})
    graph = Graph.from_json(gpath.read_text())
    design = Design(
        graph,
        part=lay["part"],
        clock_ns=lay["clock_ns"],
        stages=opts.get("stages"),
        name=name,
        clock_enable=bool(lay.get("clock_enable", False)),
    )
    if design.latency != lay["latency"]:
        raise ValueError(f"{lays[0]}: latency {lay['latency']} but the graph schedules to {design.latency}")
    vpath = d / f"{name}.v"
    if vpath.exists():
        design.__dict__["_verilog"] = vpath.read_text()
    return design


# -- reports --------------------------------------------------------------------------------------------------
def graph_report(graph: Graph, sched: Schedule) -> dict:
    """Per-layer and total cost figures of a scheduled graph.

    ``adder_bits`` = Σ result widths of add/sub/neg ops (≈ LUTs of their carry chains); ``mux_bits`` = bits of
    relu/max/min/select and saturation muxes, ``mux_luts`` those that need LUTs of their own (a mux merges into
    the LUT of an adder, comparator or mux reading it in the same segment, as in the delay model);
    ``lookup_bits`` = Σ table entries × output width, ``lookup_luts`` the LUT6 estimate
    ``2**max(b_in-5, 0) * ceil(b_out/2)``; ``lut_estimate`` = adder bits + mux LUTs + lookup LUTs;
    ``register_bits`` = datapath registers + valid chain (FFs).
    """
    layers: dict[str, dict] = {}
    tot = dict.fromkeys(("adders", "adder_bits", "mux_bits", "mux_luts", "lookup_bits", "lookup_luts", "muls"), 0)
    merged = _merged_muxes(graph, sched)
    for j, op in enumerate(graph.ops):
        L = layers.setdefault(op.layer, dict.fromkeys(tot, 0) | {"register_bits": 0})
        k, w = op.kind, op.width
        inc: dict[str, int] = {}
        own = 0 if merged[j] else w
        if k in ("add", "neg"):
            inc = {"adders": 1, "adder_bits": w}
        elif k in ("relu", "select"):
            inc = {"mux_bits": w, "mux_luts": own}
        elif k in ("max", "min"):
            inc = {"mux_bits": w, "mux_luts": own, "adder_bits": w + 1}
        elif k == "quantize":
            src = graph.ops[op.args[0]].interval
            _, _, f, rnd, ovf = op.attrs
            if src.f > f and rnd != "TRN":
                inc["adder_bits"] = w + 1
            if ovf != "WRAP":
                inc["mux_bits"] = w
                inc["mux_luts"] = own
        elif k == "lookup":
            b_in = graph.ops[op.args[0]].width
            inc = {"lookup_bits": len(op.attrs[0]) * w, "lookup_luts": 2 ** max(b_in - 5, 0) * math.ceil(w / 2)}
        elif k == "mul":
            a, b = (graph.ops[x].width for x in op.args)
            inc = {"muls": 1, "adder_bits": a * b}
        for key, v in inc.items():
            L[key] += v
            tot[key] += v
    for j, op in enumerate(graph.ops):
        n = len(sched.registers(j))
        if n:
            layers[op.layer]["register_bits"] += n * op.width
    fam = sched.family
    lut_est = tot["adder_bits"] + tot["mux_luts"] + tot["lookup_luts"]
    return {
        "family": fam.name,
        "family_title": fam.title,
        "clock_ns": sched.clock_ns,
        "latency_cycles": sched.latency,
        "latency_ns": sched.latency_ns,
        "critical_path_ns": round(sched.critical_path_ns, 4),
        "meets_clock": sched.meets_clock,
        "segment_ns": [round(t, 4) for t in sched.segment_ns],
        "register_bits": sched.register_bits,
        "n_ops": len(graph.ops),
        "n_inputs": len(graph.inputs),
        "n_outputs": len(graph.outputs),
        "input_bits": sum(t.width for t in graph.input_types),
        "output_bits": sum(graph.output_interval(o).width for o in range(len(graph.outputs))),
        **{f"total_{k}" if k in ("adders", "muls") else k: v for k, v in tot.items()},
        "lut_estimate": lut_est,
        "layers": [{"name": n, **v} for n, v in layers.items()],
    }


_LUT_READERS = ("add", "neg", "relu", "max", "min", "select", "quantize")


def _merged_muxes(graph: Graph, sched: Schedule) -> list[bool]:
    """Per op: True when it is read only by ops with a LUT stage of their own, in its segment, never registered
    and not an output (then a mux is logic inside its readers' LUTs). Shifts and TRN/WRAP quantizers are wiring."""
    users = graph.users()
    outs = {o for o in graph.outputs if o is not None}

    def wiring(u: int) -> bool:
        op = graph.ops[u]
        if op.kind == "shift":
            return True
        if op.kind != "quantize":
            return False
        _, _, f, rnd, ovf = op.attrs
        return ovf == "WRAP" and (rnd == "TRN" or graph.ops[op.args[0]].interval.f <= f)

    res = []
    for j in range(len(graph.ops)):
        ok = bool(users[j]) and j not in outs and not sched.registers(j)
        stack = list(users[j])
        while ok and stack:
            u = stack.pop()
            if wiring(u):
                ok = u not in outs and not sched.registers(u) and sched.stage[u] == sched.stage[j]
                stack.extend(users[u])
            else:
                ok = graph.ops[u].kind in _LUT_READERS and sched.stage[u] == sched.stage[j]
        res.append(ok)
    return res


def report_table(report: Mapping) -> str:
    """A human-readable table of a :meth:`Design.report` dict."""
    cols = ("adders", "adder_bits", "mux_bits", "lookup_luts", "register_bits")
    head = f"{'layer':<24}" + "".join(f"{c:>14}" for c in cols)
    lines = [head, "-" * len(head)]
    for layer in report["layers"]:
        lines.append(f"{(layer['name'] or '(inputs)')[:24]:<24}" + "".join(f"{layer[c]:>14}" for c in cols))
    lines.append("-" * len(head))
    lat_ns = report["latency_ns"]
    lines += [
        f"part {report.get('part', '?')} ({report['family_title']}), clock {report['clock_ns']} ns",
        f"latency {report['latency_cycles']} cycles" + (f" = {lat_ns:g} ns" if lat_ns is not None else ""),
        f"critical path (est.) {report['critical_path_ns']:.3f} ns, meets clock: {report['meets_clock']}",
        f"adders {report['total_adders']}, adder bits {report['adder_bits']}, mux bits {report['mux_bits']}, "
        f"lookup LUTs {report['lookup_luts']}, LUT estimate {report['lut_estimate']}, "
        f"register bits {report['register_bits']}",
    ]
    return "\n".join(lines)
