"""``verify``: simulate a generated core on vectors and compare with the bit-exact expected outputs."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.cache import RUN_LOCK, cache_root, holding, prune_runs
from sim.harness import HARNESS_TOP, STREAM_TOP, bulk_depth, harness_verilog, stream_top_verilog
from sim.runners import Build, SimulatorError, build, check_simulator, run_test
from sim.scoreboard import ERROR_KINDS
from sim.tb_stream import CONFIG_ENV
from sim.vectors import Port, load_vectors, values_to_mantissas, write_bin, write_hex

if TYPE_CHECKING:
    from hdl_gen.design_dir import DesignLike

__all__ = ["BULK_CLOCKS", "MODES", "VerifyResult", "cli_simulate", "load_design_dir", "verify"]

MODES = ("stream", "bulk")
BULK_CLOCKS = ("auto", "hdl", "cocotb")
TB_MODULE = "sim.tb_stream"
# extra Verilator options of bulk-harness builds: none (-O3, --x-assign/--x-initial fast, --noassert and make
# OPT_FAST=-O1/-O2 measured within noise of the defaults on the jet MLP; dropping --public-flat-rw is what counts)
VERILATOR_BULK_ARGS: tuple[str, ...] = ()


@dataclass
class VerifyResult:
    """Outcome of one simulation. ``compared`` counts expected outputs checked (stream mode: both passes, about
    ``2 * n_vectors``), ``mismatches`` those that were wrong or missing,
    ``valid_errors`` cycles whose ``valid_out`` was wrong, ``errors`` the count per kind (``data``, ``x_output``,
    ``missing_valid``, ``spurious_valid``, ``x_valid``). ``passed`` is the one verdict: no error of any kind, the
    observed latency equal to the design's, outputs compared and the testbench passed (:meth:`problems` lists
    what fails it). ``first_mismatch`` names pass, cycle, sample, element, expected and got (value and mantissa).

    Throughput: ``vectors_per_s`` is ``n_vectors`` over the testbench's own clock time (stream: pass 1; bulk:
    from the cocotb test's start to ``done``, *including* the harness loading both vector files, ``load_s``);
    ``run_vectors_per_s`` leaves the loading out (bulk: first clock edge to ``done``). ``write_s`` is the Python
    time writing the vector files, ``sim_s`` the whole simulator process (start-up, cocotb, loading, run)."""

    simulator: str
    mode: str
    n_vectors: int
    mismatches: int
    first_mismatch: dict | None
    latency_expected: int
    latency_observed: int | None
    vectors_per_s: float
    build_s: float
    passed: bool
    valid_errors: int = 0
    compared: int = 0
    sim_s: float = 0.0
    build_reused: bool = False
    waves: str | None = None
    run_dir: str | None = None
    run_vectors_per_s: float = 0.0
    load_s: float = 0.0
    write_s: float = 0.0
    bulk_clock: str | None = None
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))
    tb_failed: int = 0

    def problems(self) -> list[str]:
        """Why the run fails its verdict, one phrase per problem (empty when it passed)."""
        out = [f"{n} {k}" for k, n in self.errors.items() if n]
        if not out and self.mismatches:  # counts from an older testbench without kinds
            out.append(f"{self.mismatches} mismatches")
        if not out and self.valid_errors:
            out.append(f"{self.valid_errors} valid errors")
        if self.latency_observed != self.latency_expected:
            out.append(f"latency {self.latency_observed} != {self.latency_expected} cycles")
        if self.compared == 0:
            out.append("no outputs compared")
        if self.tb_failed and not out:
            out.append(f"{self.tb_failed} testbench test(s) failed")
        return out

    def headline(self) -> str:
        """One line: the verdict, outputs compared, every kind of error counted, latency and speed."""
        verdict = "BIT-EXACT" if self.passed else "MISMATCH"
        errs = ", ".join(f"{n} {k}" for k, n in self.errors.items()) if any(self.errors.values()) else "0 errors"
        line = (
            f"{verdict}: {self.compared} outputs compared, {errs}, latency {self.latency_observed} "
            f"(expected {self.latency_expected}) cycles, {self.vectors_per_s:,.0f} vectors/s on {self.simulator}"
        )
        if not self.passed:
            line += f"\nfails on: {'; '.join(self.problems())}"
        return line

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with ``problems``)."""
        return {**asdict(self), "problems": self.problems()}


def load_design_dir(path: str | Path, *, predict: bool = True) -> DesignLike:
    """A design from a directory written by ``design.write``, its files checked against ``manifest.json``
    (:mod:`hdl_gen.design_dir`: a mixed, truncated or modified directory is refused naming the file):
    ``hdl_gen.load_design`` when it holds the graph and ``predict`` is wanted (it re-schedules the graph to check
    the latency), else the Verilog and layout only (all a simulation needs when the expected outputs are given)."""
    from hdl_gen.design import load_design  # noqa: PLC0415
    from hdl_gen.design_dir import load_dir_design, read_core  # noqa: PLC0415

    name, _, texts = read_core(path)
    if predict and f"{name}.graph.json" in texts:
        return load_design(path)
    return load_dir_design(path)


def stream_build(design: Any, layout: dict, simulator: str, *, trace: bool = False) -> Build:
    """The stream testbench's build: the core itself on Icarus; on Verilator the core under a top that passes its
    ports through (:func:`sim.harness.stream_top_verilog`) with only those public (no ``--public-flat-rw``, which
    made the build of a 6,000-op set model 2× slower). ``trace``: Verilator compiles in waveform support (about
    2.5× the build time again; Icarus builds always have it)."""
    sources = {f"{design.name}.v": design.verilog()}
    if simulator != "verilator":
        return build(simulator, sources, design.name, label=design.name)
    sources[f"{STREAM_TOP}.v"] = stream_top_verilog(layout, design.name)
    return build(simulator, sources, STREAM_TOP, label=design.name, public_all=False, trace=trace)


def bulk_build(design: Any, layout: dict, simulator: str, n: int, clock: str, *, trace: bool = False) -> Build:
    """The harness build: ``hdl`` clocks itself (``--timing`` on Verilator); ``cocotb`` has ``clk`` as a port for
    cocotb's ``Clock``. Verilator builds keep only the harness counters public (no ``--public-flat-rw``) and use
    :data:`VERILATOR_BULK_ARGS`; ``trace`` as in :func:`stream_build`."""
    self_clock = clock == "hdl"
    h = harness_verilog(layout, design.name, bulk_depth(n), self_clock=self_clock)
    sources = {f"{design.name}.v": design.verilog(), f"{HARNESS_TOP}.v": h}
    if simulator != "verilator":
        return build(simulator, sources, HARNESS_TOP, label=design.name)
    args = [*VERILATOR_BULK_ARGS, *(["--timing", "-CFLAGS", "-std=c++20"] if self_clock else [])]
    return build(simulator, sources, HARNESS_TOP, build_args=args, label=design.name, public_all=False, trace=trace)


def verify(
    design: Any,
    x,
    simulator: str = "verilator",
    mode: str = "stream",
    *,
    expected=None,
    waves: bool | None = None,
    seed: int = 0,
    second_pass: bool = True,
    bulk_clock: str = "auto",
) -> VerifyResult:
    """Simulate ``design`` on inputs ``x`` (float ``[N, *input_shape]``, on the input grid) and compare with
    ``expected`` (default ``design.predict(x)``) by equality.

    ``design``: a Design (``.name``, ``.verilog()``, ``.layout``, ``.latency``, ``.predict``) or a written design
    directory. ``mode``: ``"stream"`` (cocotb drives every cycle: back to back, then bubbles and a mid-stream
    reset; checks data, ``valid_out`` timing and no spurious ``valid_out``) or ``"bulk"`` (HDL harness compares
    in hardware; for millions of vectors). ``bulk_clock``: ``"hdl"`` (the harness clocks itself, ``always #1``;
    Verilator ``--timing``; fastest), ``"cocotb"`` (cocotb's ``Clock``), ``"auto"`` (= ``hdl``); in every case
    cocotb starts the run, awaits ``done`` and reads the counters. ``waves``: ``True`` always records a waveform,
    ``None`` only when the run fails (the run is repeated with waves), ``False`` never. The run directory is
    kept on failure or with waves.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if bulk_clock not in BULK_CLOCKS:
        raise ValueError(f"bulk_clock must be one of {BULK_CLOCKS}, got {bulk_clock!r}")
    check_simulator(simulator)
    if bulk_clock == "auto":
        bulk_clock = "hdl"
    if isinstance(design, str | Path):
        design = load_design_dir(design, predict=expected is None)
    layout = design.layout
    latency = int(design.latency)
    if int(layout.get("latency", latency)) != latency:
        raise ValueError(f"design.latency={latency} disagrees with layout latency {layout['latency']}")
    inp, out = Port.from_layout(layout, "input"), Port.from_layout(layout, "output")
    x = np.asarray(x, dtype=np.float64)
    mx = values_to_mantissas(x, inp, "x")
    if len(mx) == 0:
        raise ValueError("x holds no vectors (0 rows); pass at least one")
    if expected is None:
        if not hasattr(design, "predict"):
            raise ValueError("this design has no predict(): pass expected= (or a vectors file with 'y')")
        expected = design.predict(x)
    expected = np.asarray(expected, dtype=np.float64)
    if len(expected) != len(x):
        raise ValueError(f"expected has {len(expected)} rows but x has {len(x)}")
    my = values_to_mantissas(expected, out, "expected")
    n = len(mx)

    def make_build(trace: bool) -> Build:  # waveform support only where a run records waves
        if mode == "stream":
            return stream_build(design, layout, simulator, trace=trace)
        return bulk_build(design, layout, simulator, n, bulk_clock, trace=trace)

    b = make_build(bool(waves))

    runs = _runs_root()
    run_dir = Path(tempfile.mkdtemp(prefix=f"{design.name}-{simulator}-{mode}-", dir=runs))
    cfg = {"layout": layout, "latency": latency, "seed": int(seed), "second_pass": bool(second_pass), "n": n,
           "clock": bulk_clock, "result": str(run_dir / "result.json")}  # fmt: skip
    try:
        with holding(run_dir / RUN_LOCK):
            result = _verify_in(b, mode, cfg, (inp, out), (mx, my), run_dir, waves, make_build)
    except SimulatorError:  # keep the logs the message points at
        prune_runs(runs, keep=run_dir)
        raise
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    if result.passed and not waves:
        shutil.rmtree(run_dir, ignore_errors=True)
        result.run_dir = None
    else:
        prune_runs(runs, keep=run_dir)  # kept runs (failures, waveforms) up to runs_limit_bytes()
    return result


def _verify_in(
    b: Build, mode: str, cfg: dict, ports: tuple, mants: tuple, run_dir: Path, waves, make_build: Callable
) -> VerifyResult:
    """The simulation part of :func:`verify`, inside its run directory (``cfg``: the testbench config so far;
    ``make_build(trace)``: the build, with waveform support for the rerun of a failing run)."""
    (inp, out), (mx, my) = ports, mants
    n, latency, seed, bulk_clock = cfg["n"], cfg["latency"], cfg["seed"], cfg["clock"]
    t0 = time.perf_counter()
    if mode == "bulk":
        xh, yh = write_bin(run_dir / "x.bin", mx, inp), write_bin(run_dir / "y.bin", my, out)
    else:
        xh, yh = write_hex(run_dir / "x.hex", mx, inp), write_hex(run_dir / "y.hex", my, out)
    write_s = time.perf_counter() - t0
    cfg = {**cfg, "x_file": str(xh), "y_file": str(yh)}
    (run_dir / "config.json").write_text(json.dumps(cfg))
    env = {CONFIG_ENV: str(run_dir / "config.json")}
    plus = [f"+HGQ_N={n}", f"+HGQ_X={xh}", f"+HGQ_Y={yh}"] if mode == "bulk" else []
    res, n_failed, sim_s = _run(b, mode, run_dir, env, plus, bool(waves), seed)
    result = VerifyResult(
        simulator=b.simulator,
        mode=mode,
        n_vectors=n,
        mismatches=int(res["mismatches"]),
        first_mismatch=res["first_mismatch"],
        latency_expected=latency,
        latency_observed=res["latency_observed"],
        vectors_per_s=float(res["vectors_per_s"]),
        build_s=b.build_s,
        passed=False,
        valid_errors=int(res["valid_errors"]),
        compared=int(res["compared"]),
        sim_s=sim_s,
        build_reused=b.reused,
        run_dir=str(run_dir),
        run_vectors_per_s=float(res.get("run_vectors_per_s", res["vectors_per_s"])),
        load_s=float(res.get("load_s", 0.0)),
        write_s=write_s,
        bulk_clock=bulk_clock if mode == "bulk" else None,
        errors={k: int(res.get("errors", {}).get(k, 0)) for k in ERROR_KINDS},
        tb_failed=int(n_failed),
    )
    result.passed = not result.problems() and n_failed == 0
    wave_path = None
    if not result.passed and waves is None:  # repeat the (deterministic) failing run with waves
        _run(make_build(True), mode, run_dir / "waves", env, plus, True, seed)
        wave_path = _wave_file(b, run_dir / "waves")
    elif waves:
        wave_path = _wave_file(b, run_dir)
    result.waves = None if wave_path is None else str(wave_path)
    return result


def _runs_root() -> Path:
    r = cache_root() / "runs"
    r.mkdir(exist_ok=True)
    return r


def _run(b: Build, mode: str, test_dir: Path, env: dict, plus: list[str], waves: bool, seed: int):
    t0 = time.perf_counter()
    _, n_tests, n_failed = run_test(b, TB_MODULE, mode, test_dir, extra_env=env, plusargs=plus, waves=waves, seed=seed)
    dt = time.perf_counter() - t0
    cfg = json.loads(Path(env[CONFIG_ENV]).read_text())
    rp = Path(cfg["result"])
    if n_tests != 1 or not rp.exists():
        raise RuntimeError(f"testbench {mode!r} did not run or left no results (see {test_dir})")
    return json.loads(rp.read_text()), n_failed, dt


def _wave_file(b: Build, test_dir: Path) -> Path | None:
    for name in ("dump.vcd", "dump.fst", "waves.fst"):
        if (test_dir / name).exists():
            return test_dir / name
    return None


def cli_simulate(
    design_dir: str | Path,
    vectors: str | Path | None = None,
    simulator: str = "verilator",
    mode: str = "stream",
    *,
    n_random: int = 1000,
    seed: int = 0,
    waves: bool | None = None,
) -> VerifyResult:
    """CLI hook: verify a written design directory on a vectors file (``.npz`` with ``x`` and optional ``y``,
    docs/interfaces.md) or, without one, on corner + ``n_random`` random vectors (needs ``hdl_gen.load_design``
    for the expected outputs). Returns the result; the caller prints it (``result.to_dict()``) and exits with
    ``0 if result.passed else 1``."""
    check_simulator(simulator)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    design, x, y = design_and_vectors(design_dir, vectors, n_random, seed)
    return verify(design, x, simulator, mode, expected=y, waves=waves, seed=seed)


def design_and_vectors(
    design_dir: str | Path, vectors: str | Path | None = None, n_random: int = 1000, seed: int = 0
) -> tuple[DesignLike, np.ndarray, np.ndarray | None]:
    """``(design, x, y)`` for a check of a written design: the vectors file's ``x`` (and ``y``, else None), or
    the corner vectors and ``n_random`` random ones (``y`` None). Used by ``simulate`` and ``hil``."""
    from sim.vectors import corner_vectors, random_vectors  # noqa: PLC0415

    design = load_design_dir(design_dir)
    if vectors is None:
        if n_random < 0:
            raise ValueError(f"n_random must be >= 0, got {n_random}")
        x = np.concatenate([corner_vectors(design.layout), random_vectors(design.layout, n_random, seed)])
        return design, x, None
    x, y = load_vectors(vectors, design.layout)
    return design, x, y
