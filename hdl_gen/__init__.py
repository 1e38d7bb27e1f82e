"""Lower a calibrated hgq model to an exact fixed-point graph, distributed arithmetic and Amaranth HDL.

``convert(model, part=..., clock_ns=...)`` → :class:`Design` (``.verilog()``, ``.predict()``, ``.report()``,
``.write()``); ``trace(model)`` → :class:`~hdl_gen.ir.Graph`; ``interp(graph, x)`` is the bit-exact golden model.
"""

from hdl_gen.design import (
    Design,
    DesignDirError,
    UnverifiableDesign,
    convert,
    graph_report,
    load_design,
    read_design_dir,
    report_table,
)
from hdl_gen.interp import InterpError, interp, interp_mant, interp_trace
from hdl_gen.ir import Graph, GraphBuilder
from hdl_gen.resources import yosys_estimate
from hdl_gen.trace import FloatPrecisionWarning, TraceError, graph_cost, quantize_input, trace  # noqa: I001

__all__ = [
    "Design",
    "DesignDirError",
    "FloatPrecisionWarning",
    "InterpError",
    "TraceError",
    "UnverifiableDesign",
    "yosys_estimate",
    "Graph",
    "GraphBuilder",
    "convert",
    "graph_cost",
    "graph_report",
    "interp",
    "interp_mant",
    "interp_trace",
    "load_design",
    "quantize_input",
    "read_design_dir",
    "report_table",
    "trace",
]
