"""The cost model: what an IR graph costs, in one place (used by the tracer's figures, the schedule's
register count, ``Design.report`` and the CMVM solver).

**Adder bits.** An adder's *result width* (its interval's width) is what the reports count: ``adder_bits`` of
:func:`graph_cost` is Σ result widths of the DA adders (``add``/``neg``); ``adder_bits`` of :func:`graph_report`
adds the other carry chains (comparators of max/min and rounding adders of quantizers, ``width + 1`` each, and
``a·b`` for a variable product). The CMVM solver minimises :func:`solver_adder_bits`, the result bits at or above
the coarser operand's LSB: the bits below it are the finer operand's wires passed through, which need no full
adder (the reports count them because yosys may not remove them). Per-op rules (which op is an adder level, what
it costs) live in the op table, :mod:`hdl_gen.ops`; this module sums them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hdl_gen.ir import Graph
from hdl_gen.schedule import Schedule
from hdl_gen.ternary import chain_bits

__all__ = ["graph_cost", "graph_report", "merged_muxes", "report_table", "solver_adder_bits"]


def solver_adder_bits(width: int, f: int, fa: int, fb: int) -> float:
    """Adder bits of a solver adder whose result has ``width`` bits at step ``2**-f`` from operands at steps
    ``2**-fa`` and ``2**-fb``: the result bits at or above the coarser operand's LSB (at least 1)."""
    return float(max(width - (f - min(fa, fb)), 1))


def graph_cost(graph: Graph) -> dict:
    """Per-layer and total cost: adder bits (Σ add/neg widths), adders, lookup-table bits, depth in adder levels.

    Returns ``{"layers": {name: {...}}, "total": {...}}``. Depth counts the adder levels of
    :meth:`hdl_gen.ops.OpKind.level` along a path (add/neg/max/min and quantizers with a rounding adder); a
    layer's depth is its longest path inside the layer, the total depth the longest path from the inputs to an
    output.
    """
    depth = np.zeros(len(graph.ops), dtype=np.int64)
    local = np.zeros(len(graph.ops), dtype=np.int64)
    layers: dict[str, dict] = {}
    for j, op in enumerate(graph.ops):
        lvl = op.kind.level(op, graph)
        depth[j] = max((int(depth[a]) for a in op.args), default=0) + lvl
        same = [int(local[a]) for a in op.args if graph.ops[a].layer == op.layer]
        local[j] = max(same, default=0) + lvl
        c = layers.setdefault(op.layer, {"adder_bits": 0, "adders": 0, "lut_bits": 0, "ops": 0, "depth": 0})
        c["ops"] += 1
        c["depth"] = max(c["depth"], int(local[j]))
        if op.kind.adder:
            c["adder_bits"] += op.width
            c["adders"] += 1
        c["lut_bits"] += op.kind.cost(op, graph, op.width).get("lookup_bits", 0)
    total = {k: sum(v[k] for v in layers.values()) for k in ("adder_bits", "adders", "lut_bits", "ops")}
    total["depth"] = int(max((depth[o] for o in graph.outputs if o is not None), default=0))
    return {"layers": layers, "total": total}


def graph_report(graph: Graph, sched: Schedule, fold: Mapping[int, int] | None = None) -> dict:
    """Per-layer and total cost figures of a scheduled graph.

    ``adder_bits`` = Σ result widths of add/sub/neg ops (≈ LUTs of their carry chains); ``mux_bits`` = bits of
    relu/max/min/select and saturation muxes, ``mux_luts`` those that need LUTs of their own (a mux merges into
    the LUT of an adder, comparator or mux reading it in the same segment, as in the delay model);
    ``lookup_bits`` = Σ table entries × output width, ``lookup_luts`` the LUT6 estimate
    ``2**max(b_in-5, 0) * ceil(b_out/2)``; ``lut_estimate`` = adder bits + mux LUTs + lookup LUTs;
    ``register_bits`` = datapath registers + valid chain (FFs). ``fold`` (:func:`hdl_gen.ternary.pairs`): adders
    folded into their reader's ternary sum cost nothing of their own, and the sum costs its carry chain's bits
    (its LUT6_2 cells, :func:`hdl_gen.ternary.chain_bits`); ``ternary_adders`` counts those sums.
    """
    layers: dict[str, dict] = {}
    tot = dict.fromkeys(("adders", "adder_bits", "mux_bits", "mux_luts", "lookup_bits", "lookup_luts", "muls"), 0)
    merged = merged_muxes(graph, sched)
    fold = fold or {}
    folded = set(fold.values())
    for j, op in enumerate(graph.ops):
        L = layers.setdefault(op.layer, dict.fromkeys(tot, 0) | {"register_bits": 0})
        if j in folded:
            continue
        inc = op.kind.cost(op, graph, 0 if merged[j] else op.width)
        if j in fold:  # one carry chain from its first bit with two terms: exactly the LUT6_2 cells emitted
            inc = {"adders": 1, "adder_bits": chain_bits(graph, j, fold[j])}
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
        "ternary_adders": len(fold or {}),
        "lut_estimate": lut_est,
        "layers": [{"name": n, **v} for n, v in layers.items()],
    }


def merged_muxes(graph: Graph, sched: Schedule) -> list[bool]:
    """Per op: True when it is read only by ops with a LUT stage of their own, in its segment, never registered
    and not an output (then a mux is logic inside its readers' LUTs). Shifts and TRN/WRAP quantizers are wiring."""
    users = graph.users()
    outs = {o for o in graph.outputs if o is not None}

    def wiring(u: int) -> bool:
        return graph.ops[u].kind.wiring(graph.ops[u], graph)

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
                ok = graph.ops[u].kind.lut_reader and sched.stage[u] == sched.stage[j]
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
