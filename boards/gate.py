"""CI gates: declarative accuracy / latency / resource / bit-exactness limits on a model, with JUnit XML.

A gate file is TOML with one ``[[gate]]`` table per gate::

    [[gate]]
    name = "jet-tagger"
    model = "shipped:jet_tagger_ci"         # a calibrated .keras path (relative to the gate file or the cwd),
                                            # or shipped:<name> for hgq/data/<name>.keras
    dataset = "sample"                      # hgq.data.load_jsc source; the standard split is used
    split = "test"                          # "test" or "train"
    part = "xcvu13p-flga2577-2-e"
    clock_ns = 5.0
    min_accuracy = 0.70                     # every limit is optional
    max_latency_ns = 50
    max_latency_cycles = 12
    max_lut = 20000                         # the design's LUT estimate (adder bits + table LUTs)
    simulators = ["verilator", "icarus"]    # bit-exact streaming simulation on each (0 mismatches)
    n_vectors = 2000                        # physics vectors streamed per simulator
"""

from __future__ import annotations

import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

__all__ = ["Check", "Gate", "evaluate", "format_table", "load_gates", "to_junit"]

LIMITS = ("min_accuracy", "max_latency_ns", "max_latency_cycles", "max_lut")


@dataclass(frozen=True)
class Gate:
    """One gate: a model, the data it is judged on, the target, and its limits."""

    name: str
    model: str
    dataset: str = "sample"
    split: str = "test"
    part: str = "xcvu13p-flga2577-2-e"
    clock_ns: float = 5.0
    stages: int | None = None
    min_accuracy: float | None = None
    max_latency_ns: float | None = None
    max_latency_cycles: int | None = None
    max_lut: float | None = None
    simulators: tuple[str, ...] = ()
    n_vectors: int = 1000
    base_dir: str = field(default=".", repr=False)

    def model_path(self) -> Path:
        if self.model.startswith("shipped:"):
            import hgq.data

            return Path(hgq.data.__file__).parent / f"{self.model.removeprefix('shipped:')}.keras"
        p = Path(self.model)
        if p.is_absolute() or p.exists():
            return p
        return Path(self.base_dir) / p


@dataclass(frozen=True)
class Check:
    """The outcome of one limit of one gate."""

    gate: str
    name: str
    limit: str
    value: str
    passed: bool
    detail: str = ""


def load_gates(path: str | Path) -> list[Gate]:
    """Parse a gate file; unknown keys, missing keys and bad values raise naming the gate and the key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"gate file {str(path)!r} does not exist")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"gate file {path}: not valid TOML ({e})") from None
    tables = doc.get("gate")
    if not isinstance(tables, list) or not tables:
        raise ValueError(f"gate file {path}: expected one or more [[gate]] tables")
    known = {f.name for f in fields(Gate)} - {"base_dir"}
    gates = []
    for n, t in enumerate(tables):
        label = t.get("name", f"#{n}")
        unknown = sorted(set(t) - known)
        if unknown:
            raise ValueError(f"gate {label!r}: unknown key(s) {unknown}; valid keys are {sorted(known)}")
        for req in ("name", "model"):
            if req not in t:
                raise ValueError(f"gate {label!r}: missing required key {req!r}")
        if t.get("split", "test") not in ("test", "train"):
            raise ValueError(f"gate {label!r}: split must be 'test' or 'train', got {t['split']!r}")
        sims = tuple(t.get("simulators", ()))
        for s in sims:
            if s not in ("verilator", "icarus"):
                raise ValueError(f"gate {label!r}: unknown simulator {s!r}; use 'verilator' or 'icarus'")
        gates.append(Gate(**{**t, "simulators": sims}, base_dir=str(path.parent)))
    return gates


def _check(gate: str, name: str, value: float, limit: float | None, lower_is_better: bool) -> Check | None:
    if limit is None:
        return None
    ok = value <= limit if lower_is_better else value >= limit
    sym = "≤" if lower_is_better else "≥"
    return Check(gate, name, f"{sym} {limit:g}", f"{value:.4g}", bool(ok))


def evaluate(gate: Gate, log: Callable[[str], None] = lambda s: None) -> list[Check]:
    """Evaluate every limit of ``gate``: accuracy (Keras), design figures (hdl_gen), bit-exact simulation (sim)."""
    import hdl_gen
    import hgq
    from hgq.data import jsc_split, load_jsc

    checks: list[Check] = []
    path = gate.model_path()
    if not path.is_file():
        raise FileNotFoundError(f"gate {gate.name!r}: model file {str(path)!r} does not exist")
    log(f"[{gate.name}] loading {path}")
    model = hgq.load_model(path)
    split = jsc_split(load_jsc(gate.dataset))
    x, y = (split.x_test, split.y_test) if gate.split == "test" else (split.x_train, split.y_train)
    log(f"[{gate.name}] accuracy on {split.name} {gate.split} ({len(y)} jets)")
    logits = np.asarray(model.predict(x, batch_size=4096, verbose=0))
    acc = float(np.mean(np.argmax(logits, axis=-1) == y))
    checks.append(_check(gate.name, "accuracy", acc, gate.min_accuracy, False) or Check(
        gate.name, "accuracy", "-", f"{acc:.4f}", True))  # fmt: skip

    log(f"[{gate.name}] converting for {gate.part} at {gate.clock_ns} ns")
    design = hdl_gen.convert(model, part=gate.part, clock_ns=gate.clock_ns, stages=gate.stages, name="gate_top")
    rep = design.report()
    figures = {
        "latency_cycles": (float(design.latency), gate.max_latency_cycles),
        "latency_ns": (float(rep["latency_ns"]), gate.max_latency_ns),
        "lut_estimate": (float(rep["lut_estimate"]), gate.max_lut),
    }
    for name, (value, limit) in figures.items():
        c = _check(gate.name, name, value, limit, True)
        if c is not None:
            checks.append(c)
    xq = hdl_gen.quantize_input(model, x)  # input port values
    hw = design.predict(xq)
    bad = int(np.sum(np.any(hw != logits.reshape(hw.shape), axis=tuple(range(1, hw.ndim)))))
    checks.append(Check(gate.name, "keras == interpreter", "0 mismatches", f"{bad} mismatches", bad == 0))

    if gate.simulators:
        from sim import verify

        xv = xq[: gate.n_vectors]
        for s in gate.simulators:
            log(f"[{gate.name}] simulating {len(xv)} physics vectors on {s}")
            r = verify(design, xv, simulator=s, mode="stream")
            detail = "" if r.first_mismatch is None else str(r.first_mismatch)
            checks.append(Check(gate.name, f"rtl == interpreter ({s})", "0 mismatches",
                                f"{r.mismatches} mismatches", r.mismatches == 0, detail))  # fmt: skip
            checks.append(Check(gate.name, f"latency observed ({s})", f"= {design.latency}",
                                str(r.latency_observed), r.latency_observed == design.latency))  # fmt: skip
    return checks


def format_table(checks: list[Check]) -> str:
    """A plain-text table of every check, failures marked."""
    rows = [("gate", "check", "limit", "value", "result")]
    rows += [(c.gate, c.name, c.limit, c.value, "pass" if c.passed else "FAIL") for c in checks]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def to_junit(checks: list[Check], suite: str = "hgq-hil gates") -> str:
    """JUnit XML (one testcase per check, ``<failure>`` on a failed limit)."""
    failures = sum(not c.passed for c in checks)
    root = ET.Element("testsuites", name=suite, tests=str(len(checks)), failures=str(failures), errors="0")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(checks)), failures=str(failures), errors="0",
                       skipped="0", time="0")  # fmt: skip
    for c in checks:
        tc = ET.SubElement(ts, "testcase", classname=f"gate.{c.gate}", name=c.name, time="0")
        if not c.passed:
            f = ET.SubElement(tc, "failure", message=f"{c.name}: {c.value} (limit {c.limit})", type="GateFailure")
            f.text = c.detail or f"{c.name} = {c.value}, limit {c.limit}"
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
