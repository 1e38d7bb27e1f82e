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
    simulators = ["verilator", "icarus"]    # streaming simulation on each must pass (sim's one verdict)
    n_vectors = 2000                        # physics vectors streamed per simulator (an integer >= 1)

:func:`load_gates` checks every key's type and range before any slow work; :func:`preflight` checks the model
files and simulators of every gate.
"""

from __future__ import annotations

import math
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdl_gen.delay import DEFAULT_PART

__all__ = ["Check", "Gate", "evaluate", "format_table", "load_gates", "preflight", "rtl_checks", "to_junit"]

LIMITS = ("min_accuracy", "max_latency_ns", "max_latency_cycles", "max_lut")
SIMULATORS = ("verilator", "icarus")
_NUM = (int, float)
# key: (accepted types, what a value must be, its check)
_SCHEMA = {
    "name": (str, "a non-empty string", lambda v: bool(v.strip())),
    "model": (str, "a .keras path or shipped:<name>", lambda v: bool(v.strip())),
    "dataset": (str, "a hgq.data.load_jsc source ('sample', 'openml' or a path)", lambda v: bool(v.strip())),
    "split": (str, "'test' or 'train'", lambda v: v in ("test", "train")),
    "part": (str, "an FPGA part name", lambda v: bool(v.strip())),
    "clock_ns": (_NUM, "a finite number of ns > 0", lambda v: math.isfinite(v) and v > 0),
    "stages": (int, "an integer >= 0 (register ranks)", lambda v: v >= 0),
    "min_accuracy": (_NUM, "a number in [0, 1]", lambda v: 0 <= v <= 1),
    "max_latency_ns": (_NUM, "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0),
    "max_latency_cycles": (int, "an integer >= 0", lambda v: v >= 0),
    "max_lut": (_NUM, "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0),
    "simulators": (list, f"a list of {list(SIMULATORS)}", lambda v: all(isinstance(s, str) for s in v)),
    "n_vectors": (int, "an integer >= 1", lambda v: v >= 1),
}


@dataclass(frozen=True)
class Gate:
    """One gate: a model, the data it is judged on, the target, and its limits."""

    name: str
    model: str
    dataset: str = "sample"
    split: str = "test"
    part: str = DEFAULT_PART
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
    """Parse a gate file; unknown keys, missing keys and values of the wrong type or range raise ``ValueError``
    naming the gate, the key and what it must be (before any model is loaded)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"gate file {str(path)!r} does not exist")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"gate file {path}: not valid TOML ({e})") from None
    extra = sorted(set(doc) - {"gate"})
    if extra:
        raise ValueError(f"gate file {path}: unknown top-level key(s) {extra}; write each gate as a [[gate]] table")
    tables = doc.get("gate")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ValueError(
            f"gate file {path}: expected one or more [[gate]] tables, got gate = {tables!r}; "
            "write [[gate]] followed by name = ..., model = ..."
        )
    known = set(_SCHEMA)
    gates, names = [], set()
    for n, t in enumerate(tables):
        label = t["name"] if isinstance(t.get("name"), str) else f"#{n}"
        where = f"gate file {path}, gate {label!r}"
        unknown = sorted(set(t) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(known)}")
        for req in ("name", "model"):
            if req not in t:
                raise ValueError(f"{where}: missing required key {req!r}")
        for key, value in t.items():
            types, what, ok = _SCHEMA[key]
            if isinstance(value, bool) or not isinstance(value, types) or not ok(value):
                raise ValueError(f"{where}: {key} = {value!r} is not {what}")
        for s in t.get("simulators", ()):
            if s not in SIMULATORS:
                raise ValueError(f"{where}: unknown simulator {s!r}; use 'verilator' or 'icarus'")
        if t["name"] in names:
            raise ValueError(f"{where}: a gate of this name comes earlier in the file; names must be unique")
        names.add(t["name"])
        gates.append(Gate(**{**t, "simulators": tuple(t.get("simulators", ()))}, base_dir=str(path.parent)))
    return gates


def preflight(gates: list[Gate]) -> None:
    """Before any slow work: every gate's model file exists and every simulator named is installed."""
    from sim.runners import check_simulator

    for g in gates:
        p = g.model_path()
        if not p.is_file():
            raise FileNotFoundError(f"gate {g.name!r}: model file {str(p)!r} does not exist")
        for s in g.simulators:
            check_simulator(s)


def _check(gate: str, name: str, value: float, limit: float | None, lower_is_better: bool) -> Check | None:
    if limit is None:
        return None
    ok = value <= limit if lower_is_better else value >= limit
    sym = "≤" if lower_is_better else "≥"
    return Check(gate, name, f"{sym} {limit:g}", f"{value:.4g}", bool(ok))


def evaluate(gate: Gate, log: Callable[[str], None] = lambda s: None) -> list[Check]:
    """Evaluate every limit of ``gate``: accuracy (Keras), design figures (hdl_gen), bit-exact simulation (sim)."""
    from boards import pipeline
    from boards.checks import load_model_file
    from hgq.data import jsc_split, load_jsc

    checks: list[Check] = []
    path = gate.model_path()
    log(f"[{gate.name}] loading {path}")
    model = load_model_file(path)
    split = jsc_split(load_jsc(gate.dataset))
    x, y = (split.x_test, split.y_test) if gate.split == "test" else (split.x_train, split.y_train)
    log(f"[{gate.name}] accuracy on {split.name} {gate.split} ({len(y)} jets)")
    logits = np.asarray(model.predict(x, batch_size=4096, verbose=0))
    acc = float(np.mean(np.argmax(logits, axis=-1) == y))
    checks.append(_check(gate.name, "accuracy", acc, gate.min_accuracy, False) or Check(
        gate.name, "accuracy", "-", f"{acc:.4f}", True))  # fmt: skip

    log(f"[{gate.name}] converting for {gate.part} at {gate.clock_ns} ns")
    design = pipeline.lower(model, part=gate.part, clock_ns=gate.clock_ns, stages=gate.stages, name="gate_top")
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
    kc = pipeline.check_keras(model, design, x, keras_out=logits)
    xq, bad = kc.x_port, kc.mismatches  # input port values; samples where Keras and the interpreter differ
    checks.append(Check(gate.name, "keras == interpreter", "0 mismatches", f"{bad} mismatches", bad == 0))

    if gate.simulators:
        xv = xq[: gate.n_vectors]
        log(f"[{gate.name}] simulating {len(xv)} physics vectors on {', '.join(gate.simulators)}")
        checks += rtl_checks(gate.name, design, xv, gate.simulators)
    return checks


def rtl_checks(gate: str, design, x, simulators: tuple[str, ...] | list[str]) -> list[Check]:
    """Stream ``x`` through ``design`` on each simulator; the check passes only on sim's one verdict
    (``VerifyResult.passed``: data, latency, valid protocol and counts); its value names every error kind."""
    from boards import pipeline

    checks = []
    for s, r in pipeline.verify_rtl(design, x, simulators).items():
        value = "bit-exact" if r.passed else "; ".join(r.problems())
        detail = "" if r.first_mismatch is None else str(r.first_mismatch)
        if r.waves:
            detail += f"{'; ' if detail else ''}waveform {r.waves}"
        checks.append(Check(gate, f"rtl == interpreter ({s})", "passed", value, r.passed, detail))
        checks.append(Check(gate, f"latency observed ({s})", f"= {design.latency}", str(r.latency_observed),
                            r.latency_observed == design.latency))  # fmt: skip
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
