"""``convert``: a Keras model or a Graph → a :class:`Design` (Verilog, layout, latency, report, predict, write).

The Design object is the contract of docs/interfaces.md; ``load_design(dir)`` rebuilds one from what
``Design.write(dir)`` wrote (the graph JSON), without Keras. A design directory carries ``manifest.json`` (the
SHA-256 of every file), written last: a directory without it, or with a file that does not match it, is refused.
"""

from __future__ import annotations

import json
import math
import re
from functools import cached_property
from pathlib import Path

import numpy as np

from hdl_gen.cost import graph_report
from hdl_gen.delay import DEFAULT_PART, family_of
from hdl_gen.design_dir import (
    MANIFEST,
    DesignDirError,
    layout_text,
    parse_json,
    read_core,
    write_design_files,
)
from hdl_gen.emit import Core, layout, to_verilog
from hdl_gen.ir import Graph
from hdl_gen.schedule import Schedule, schedule
from hdl_gen.ternary import pairs
from hdl_gen.ternary import supported as ternary_supported

__all__ = [
    "MAX_VALUE_BITS",
    "Design",
    "UnverifiableDesign",
    "check_clock",
    "check_name",
    "convert",
    "load_design",
]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# widest port element whose values float64 holds exactly (vectors files, predict); the simulators stop at 62
MAX_VALUE_BITS = 53
# Verilog-2005 and SystemVerilog-2017 reserved words (Icarus and Verilator refuse them as module names)
_KEYWORDS = """accept_on alias always always_comb always_ff always_latch and assert assign assume automatic before begin
    bind bins binsof bit break buf bufif0 bufif1 byte case casex casez cell chandle checker class clocking cmos
    config const constraint context continue cover covergroup coverpoint cross deassign default defparam design
    disable dist do edge else end endcase endchecker endclass endclocking endconfig endfunction endgenerate
    endgroup endinterface endmodule endpackage endprimitive endprogram endproperty endsequence endspecify endtable
    endtask enum event eventually expect export extends extern final first_match for force foreach forever fork
    forkjoin function generate genvar global highz0 highz1 if iff ifnone ignore_bins illegal_bins implements
    implies import incdir include initial inout input inside instance int integer interconnect interface
    intersect join join_any join_none large let liblist library local localparam logic longint macromodule
    matches medium modport module nand negedge nettype new nexttime nmos nor noshowcancelled not notif0 notif1
    null or output package packed parameter pmos posedge primitive priority program property protected pull0
    pull1 pulldown pullup pulsestyle_ondetect pulsestyle_onevent pure rand randc randcase randsequence rcmos real
    realtime ref reg reject_on release repeat restrict return rnmos rpmos rtran rtranif0 rtranif1 s_always
    s_eventually s_nexttime s_until s_until_with scalared sequence shortint shortreal showcancelled signed small
    soft solve specify specparam static string strong strong0 strong1 struct super supply0 supply1
    sync_accept_on sync_reject_on table tagged task this throughout time timeprecision timeunit tran tranif0
    tranif1 tri tri0 tri1 triand trior trireg type typedef union unique unique0 unsigned until until_with untyped
    use uwire var vectored virtual void wait wait_order wand weak weak0 weak1 while wildcard wire with within wor
    xnor xor"""
VERILOG_KEYWORDS = frozenset(_KEYWORDS.split())


class UnverifiableDesign(ValueError):
    """The design has values the interpreter or the simulators cannot check exactly."""


def check_name(name: str) -> str:
    """``name`` if it can be a Verilog module name (an identifier, not a reserved word); else ``ValueError``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"design name {name!r} is not a Verilog identifier; use letters, digits and _")
    if name in VERILOG_KEYWORDS:
        raise ValueError(f"design name {name!r} is a Verilog/SystemVerilog keyword; pick another (e.g. {name}_core)")
    if name.startswith("hgq_hil_") or name in ("LUT6_2", "CARRY8"):
        raise ValueError(
            f"design name {name!r} is taken by a module hgq-hil adds (the ternary-sum module, the cell models, the "
            "testbench tops hgq_hil_*); pick another (e.g. my_core)"
        )
    return name


def check_clock(clock_ns: float | None) -> float | None:
    """``clock_ns`` if it is ``None`` or a finite period > 0 ns; else ``ValueError``."""
    if clock_ns is None:
        return None
    if isinstance(clock_ns, bool) or not isinstance(clock_ns, int | float) or not math.isfinite(clock_ns):
        raise ValueError(f"clock_ns must be a finite number of ns > 0, got {clock_ns!r}")
    if clock_ns <= 0:
        raise ValueError(f"clock_ns must be > 0 ns, got {clock_ns!r}")
    return float(clock_ns)


class Design:
    """A scheduled graph ready for emission: ``verilog()``, ``layout``, ``latency``, ``predict``, ``report``."""

    def __init__(
        self,
        graph: Graph,
        *,
        part: str = DEFAULT_PART,
        clock_ns: float | None = 5.0,
        stages: int | None = None,
        name: str = "top",
        clock_enable: bool = False,
        ternary: bool = True,
    ):
        check_name(name)
        self.graph = graph
        self.part = part
        self.clock_ns = check_clock(clock_ns)
        self.name = name
        self.clock_enable = clock_enable
        self.schedule: Schedule = schedule(graph, part=part, clock_ns=clock_ns, stages=stages)
        self.stages_option = stages
        self.ternary = ternary
        #: adders folded into their reader as ternary sums (``{outer: inner}``; empty off AMD UltraScale(+))
        self.fold: dict[int, int] = pairs(graph, self.schedule) if ternary and ternary_supported(part) else {}

    @property
    def latency(self) -> int:
        """Register ranks from ``x`` to ``y`` = cycles from ``valid_in`` to ``valid_out``."""
        return self.schedule.latency

    @cached_property
    def layout(self) -> dict:
        return layout(self.graph, self.schedule, name=self.name, part=self.part, clock_enable=self.clock_enable)

    def component(self, *, cells: bool = True) -> Core:
        """A fresh Amaranth component of the circuit (for a board wrapper; ``cells=False`` for amaranth.sim, which
        cannot run the ternary adders' LUT6_2/CARRY8 instances: the same sums as arithmetic instead)."""
        return Core(self.graph, self.schedule, clock_enable=self.clock_enable, fold=self.fold, cells=cells)

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
        rep = graph_report(self.graph, self.schedule, self.fold)
        rep.update(name=self.name, part=self.part)
        return rep

    def check_verifiable(self) -> None:
        """Raise :class:`UnverifiableDesign` unless the interpreter evaluates every op (62-bit wires) and every
        port element fits float64 exactly (:data:`MAX_VALUE_BITS`): what ``predict`` and the simulators need."""
        from hdl_gen.interp import InterpError

        problems = []
        for side in ("input", "output"):
            wide = [(e["index"], e["width"]) for e in self.layout[side]["elements"] if e["width"] > MAX_VALUE_BITS]
            if wide:
                e, w = wide[0]
                op = self.graph.outputs[e] if side == "output" else None
                where = f" of layer {self.graph.ops[op].layer!r}" if op is not None else " (the input quantizer)"
                problems.append(
                    f"{len(wide)} {side} element(s) wider than {MAX_VALUE_BITS} bits (element {e}{where}: {w} "
                    "bits), beyond the float64 values of predict and of vectors files"
                )
        try:
            self.predict_mant(np.zeros((0, len(self.graph.inputs)), dtype=np.int64))  # compiles the op checks
        except InterpError as err:
            problems.append(str(err))
        if problems:
            raise UnverifiableDesign(
                f"design {self.name!r} cannot be verified: {'; '.join(problems)}. Narrow the quantizers of the "
                "layers named (fewer integer/fractional bits) and convert again"
            )

    def files(self) -> dict[str, str]:
        """The design directory's files (name → text), as :meth:`write` writes them."""
        rep = self.report()
        rep["options"] = {"stages": self.stages_option, "clock_enable": self.clock_enable, "ternary": self.ternary}
        return {
            f"{self.name}.v": self.verilog(),
            f"{self.name}.layout.json": layout_text(self.layout),
            f"{self.name}.report.json": json.dumps(rep, indent=1, sort_keys=True, allow_nan=False) + "\n",
            f"{self.name}.graph.json": self.graph.to_json() + "\n",
        }

    def write(self, directory) -> Path:
        """Write ``<name>.v``, ``.layout.json``, ``.report.json``, ``.graph.json`` and ``manifest.json`` (last)
        into ``directory`` (see :func:`write_design_files`); returns it."""
        return write_design_files(directory, self.name, self.files())

    def __repr__(self) -> str:
        return (
            f"Design(name={self.name!r}, part={self.part!r}, latency={self.latency}, "
            f"clock_ns={self.clock_ns}, ops={len(self.graph.ops)})"
        )


def convert(
    model_or_graph,
    *,
    part: str = DEFAULT_PART,
    clock_ns: float | None = 5.0,
    stages: int | None = None,
    name: str = "top",
    depth_bound: int | str | None = "min",
    clock_enable: bool = False,
    pair_tables: bool = True,
    ternary: bool = True,
) -> Design:
    """Lower a calibrated Keras model (via :func:`hdl_gen.tracer.trace`) or a :class:`Graph` to a :class:`Design`.

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
        pair_tables: in LUT layers, merge two tables of the same output into one table of both inputs where their
            address bits together fit one of the part's LUTs (Keras models only; exact: its entries are the sums).
        ternary: on AMD UltraScale(+) parts, fold an adder read only by another adder of its pipeline segment into
            that one as a three-term sum on one carry chain (:mod:`hdl_gen.ternary`: one LUT per result bit
            instead of two adders' worth); ``False`` emits two-input adders only (portable RTL).

    Raises ``ValueError`` for a bad name (not an identifier, a Verilog keyword) or clock (not finite and > 0),
    and :class:`UnverifiableDesign` for a design the interpreter and simulators cannot check exactly.
    """
    check_name(name)
    check_clock(clock_ns)
    if isinstance(model_or_graph, Graph):
        if depth_bound != "min":
            raise ValueError("depth_bound applies when tracing a Keras model; a Graph is already solved")
        if not pair_tables:
            raise ValueError("pair_tables applies when tracing a Keras model; a Graph's tables are already built")
        graph = model_or_graph
    else:
        try:
            from hdl_gen.tracer import trace
        except ImportError as e:  # pragma: no cover - depends on the tracer being installed
            raise ImportError(f"converting a model needs hdl_gen.tracer ({e}); pass a Graph instead") from e
        table_inputs = family_of(part).lut_inputs if pair_tables else 0
        graph = trace(model_or_graph, depth_bound=depth_bound, table_inputs=table_inputs)
    design = Design(graph, part=part, clock_ns=clock_ns, stages=stages, name=name, clock_enable=clock_enable,
                    ternary=ternary)  # fmt: skip
    design.check_verifiable()
    return design


def load_design(directory) -> Design:
    """A :class:`Design` rebuilt from a directory written by :meth:`Design.write` (no Keras needed); the files
    are checked against ``manifest.json`` first (:func:`read_design_dir`)."""
    d = Path(directory)
    name, lay, texts = read_core(d)
    for f in (f"{name}.graph.json", f"{name}.report.json"):
        if f not in texts:
            raise DesignDirError(f"{d / MANIFEST} lists no {f}; write the design again with Design.write")
    lpath = d / f"{name}.layout.json"
    rep = parse_json(texts[f"{name}.report.json"], d / f"{name}.report.json")
    opts = rep.get("options", {})
    try:
        graph = Graph.from_json(texts[f"{name}.graph.json"])
    except (ValueError, KeyError, TypeError) as err:
        raise DesignDirError(f"{d / f'{name}.graph.json'}: not a valid graph ({err})") from None
    design = Design(
        graph,
        part=lay["part"],
        clock_ns=lay["clock_ns"],
        stages=opts.get("stages"),
        name=name,
        clock_enable=bool(lay.get("clock_enable", False)),
        ternary=bool(opts.get("ternary", False)),
    )
    if design.latency != lay["latency"]:
        raise ValueError(f"{lpath}: latency {lay['latency']} but the graph schedules to {design.latency}")
    design.__dict__["_verilog"] = texts[f"{name}.v"]
    return design
