"""Lower a calibrated hgq model to an exact fixed-point graph, distributed arithmetic and Amaranth HDL.

``convert(model, part=..., clock_ns=...)`` → :class:`Design` (``.verilog()``, ``.predict()``, ``.report()``,
``.write()``); ``trace(model)`` → :class:`~hdl_gen.ir.Graph`; ``interp(graph, x)`` is the bit-exact golden model.

``import hdl_gen`` does not load Keras: the Keras front end (``trace``, ``quantize_input``,
``TraceError``, ``FloatPrecisionWarning``) is imported on first use, so ``load_design`` and the interpreter run
without it.
"""

from hdl_gen.cost import graph_cost, graph_report, report_table
from hdl_gen.design import Design, UnverifiableDesign, convert, load_design
from hdl_gen.design_dir import DesignDirError, DesignLike, read_design_dir
from hdl_gen.interp import InterpError, interp, interp_mant, interp_trace
from hdl_gen.ir import Graph, GraphBuilder
from hdl_gen.resources import yosys_estimate
from hdl_gen.sequential import SequentialDesign, convert_recurrent

_TRACE_NAMES = ("FloatPrecisionWarning", "TraceError", "flatten_io", "quantize_input", "trace")

__all__ = [
    "Design",
    "DesignDirError",
    "DesignLike",
    "FloatPrecisionWarning",
    "InterpError",
    "SequentialDesign",
    "TraceError",
    "UnverifiableDesign",
    "yosys_estimate",
    "Graph",
    "GraphBuilder",
    "convert",
    "convert_recurrent",
    "flatten_io",
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


def __getattr__(name: str):
    """The Keras front end on first use (``hdl_gen.tracer`` imports Keras)."""
    if name in _TRACE_NAMES:
        import hdl_gen.tracer as _trace

        return getattr(_trace, name)
    raise AttributeError(f"module 'hdl_gen' has no attribute {name!r}")
