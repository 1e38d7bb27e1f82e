"""Test-wide setup: Keras on JAX (CPU) whatever ~/.keras/keras.json says, before any test imports Keras; and how
simulation tests say which simulator they run, so that ``--simulator`` selects them by what they run.

Simulation tests
================
A test that runs a Verilog simulator is marked ``sim`` and says which simulator(s) it runs, in one of two ways
(a ``sim`` test that says neither is a collection error, under xdist an error at its setup, so no sim test
can fall outside every simulator run):

1. **A ``simulator`` argument**: each generated test runs the one simulator in its ``simulator`` parameter.
   Parametrize it yourself (``@pytest.mark.parametrize("simulator", ["verilator", "icarus"])``, alone or with
   other argnames, ``pytest.param`` values welcome), or leave it unparametrized and this conftest parametrizes it
   over the simulators named in the marker, or over both (``verilator``, ``icarus``) when the marker names none;
   Icarus is skipped where ``iverilog`` is missing. Use it for tests that work on any simulator::

       @pytest.mark.sim
       def test_stream(simulator):               # test_stream[verilator] and test_stream[icarus]
           assert sim.verify(design, x, simulator).passed

2. **Marker arguments**, for a test body that names its simulator(s) itself (a literal, a CLI argument, a gate
   file, a library default such as ``boards.uart.simulate_harness``'s Icarus)::

       @pytest.mark.sim("verilator")             # e.g. tests/test_hil.py: Verilator through sim.runners
       def test_hil_loopback(tmp_path):
           b = sim.runners.build("verilator", sources, "top")

       @pytest.mark.sim("verilator", "icarus")   # the CI gate simulates on both

   A test with a ``simulator`` parameter may also name simulators in the marker: then each parameter value must
   be one of them.

Selection: ``pytest --simulator verilator`` (what ``nox -s sim-verilator`` runs, with ``-m sim``) deselects the
sim tests that do not run Verilator and keeps every sim test that does, whatever its name; tests not marked
``sim`` are untouched. The run prints ``--simulator verilator: N sim tests selected; the suite has N sim tests for
verilator (of M sim tests)``, M and N counted over every collected test before ``-m``/``-k``;
``--check-sim-count`` (the nox sim sessions pass it) fails the run when the two differ.

A runtime check keeps the classification honest: every ``sim.runners.build`` a test makes is recorded, and a
test fails at teardown when it builds for a simulator it does not declare, or builds for any without the
``sim`` marker.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

SIMULATORS = ("verilator", "icarus")

_SIMS = pytest.StashKey[tuple[str, ...]]()  # on every sim item: the simulators it runs
_UNSAID = pytest.StashKey[str]()  # under xdist, on a sim item that says no simulator: why (fails its setup)
_COUNTS_KEY = pytest.StashKey[dict]()  # on the config: the --simulator counts
_COUNTS = "hgq_sim_counts"  # the same, sent from xdist workers to the controller (workeroutput)


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("hgq-hil simulation tests")
    g.addoption(
        "--simulator",
        choices=SIMULATORS,
        default=None,
        help="keep only the sim tests that run this simulator (tests not marked sim are untouched)",
    )
    g.addoption(
        "--check-sim-count",
        action="store_true",
        help="with --simulator: fail unless every sim test for it among the collected tests is selected",
    )
    g.addoption(
        "--sim-classification",
        metavar="PATH",
        default=None,
        help='write {node id: {"simulators": [...], "by": "parameter|marker"}} of every collected sim test '
        "to PATH (JSON)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sim(*simulators): runs a Verilog simulator; name the ones the body runs (verilator, icarus) unless the "
        "test takes a `simulator` parameter (see tests/conftest.py)",
    )
    if config.getoption("check_sim_count") and config.getoption("simulator") is None:
        raise pytest.UsageError("--check-sim-count needs --simulator")


# ---------------------------------------------------------------- classification


def _marker_sims(node) -> tuple[str, ...]:
    """Simulators named by the closest ``sim`` marker that names any (``()`` when none does)."""
    for m in node.iter_markers("sim"):
        if m.args:
            return tuple(m.args)
    return ()


def _parametrizes_simulator(definition) -> bool:
    for m in definition.iter_markers("parametrize"):
        names = m.args[0] if m.args else m.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if "simulator" in names:
            return True
    return False


def _sim_param(simulator: str):
    if simulator == "icarus":
        missing = shutil.which("iverilog") is None
        return pytest.param(simulator, marks=pytest.mark.skipif(missing, reason="apt-get install -y iverilog"))
    return simulator


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A sim test asking for ``simulator`` without parametrizing it runs once per simulator it may use."""
    if "simulator" not in metafunc.fixturenames or metafunc.definition.get_closest_marker("sim") is None:
        return
    if _parametrizes_simulator(metafunc.definition):
        return
    sims = _marker_sims(metafunc.definition) or SIMULATORS
    metafunc.parametrize("simulator", [_sim_param(s) for s in sims])


def _base_id(item: pytest.Item) -> str:
    return item.nodeid.split("[", 1)[0]


def classify(item: pytest.Item) -> tuple[tuple[str, ...], str] | str:
    """``(simulators, how)`` for a sim test (``how``: "parameter" or "marker"), or why it cannot say."""
    named = _marker_sims(item)
    bad = [s for s in named if s not in SIMULATORS]
    if bad:
        return f"@pytest.mark.sim names {bad}: not one of {list(SIMULATORS)}"
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "simulator" in params:
        s = params["simulator"]
        if s not in SIMULATORS:
            return f"parameter simulator={s!r} is not one of {list(SIMULATORS)}"
        if named and s not in named:
            return f"parametrized for {s} but marked sim{named}"
        return (s,), "parameter"
    if named:
        return tuple(dict.fromkeys(named)), "marker"
    return (
        "says no simulator: mark it @pytest.mark.sim('verilator') / ('icarus') / ('verilator', 'icarus') with "
        "what its body runs, or give it a `simulator` argument (see tests/conftest.py)"
    )


@pytest.hookimpl(tryfirst=True)  # before -m / -k deselect: the counts are over every collected test
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    errors, table = [], {}
    for item in items:
        if item.get_closest_marker("sim") is None:
            continue
        c = classify(item)
        if isinstance(c, str):
            errors.append(f"{item.nodeid}: {c}")
            item.stash[_UNSAID] = f"sim test that does not say which simulator it runs: {c}"
            continue
        item.stash[_SIMS] = c[0]
        table[item.nodeid] = {"simulators": list(c[0]), "by": c[1]}
    if errors and not hasattr(config, "workeroutput"):
        raise pytest.UsageError("sim tests that do not say which simulator they run:\n  " + "\n  ".join(errors))
    # an xdist worker cannot stop the run with a readable message: the test stays selected and fails its setup
    if path := config.getoption("sim_classification"):
        tmp = Path(f"{path}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table, indent=1, sort_keys=True))
        os.replace(tmp, path)
    chosen = config.getoption("simulator")
    if chosen is None:
        return
    keep, drop = [], []
    for item in items:
        sims = item.stash.get(_SIMS, None)
        (drop if sims is not None and chosen not in sims else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    config.stash[_COUNTS_KEY] = {
        "simulator": chosen,
        "suite_sim": len(table),
        "suite_chosen": sum(chosen in c["simulators"] for c in table.values()),
        "chosen_ids": sorted(n for n, c in table.items() if chosen in c["simulators"]),
    }


def pytest_collection_finish(session: pytest.Session) -> None:
    counts = session.config.stash.get(_COUNTS_KEY, None)
    if counts is None:
        return
    counts["selected_ids"] = sorted(i.nodeid for i in session.items if i.stash.get(_SIMS, None) is not None)
    if hasattr(session.config, "workeroutput"):  # an xdist worker: the controller prints
        session.config.workeroutput[_COUNTS] = json.dumps(counts)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist controller: take the counts from the first worker that reports them (all collect the same)."""
    out = getattr(node, "workeroutput", None) or {}
    if _COUNTS in out and _COUNTS_KEY not in node.config.stash:
        node.config.stash[_COUNTS_KEY] = json.loads(out[_COUNTS])


def _count_line(counts: dict) -> tuple[str, bool]:
    sel, want = counts["selected_ids"], counts["chosen_ids"]
    s, n, m = len(sel), counts["suite_chosen"], counts["suite_sim"]
    head = f"--simulator {counts['simulator']}: {s} sim tests selected; the suite has {n} sim tests for "
    head += f"{counts['simulator']} (of {m} sim tests)"
    if sel == want:
        return head, True
    missing = sorted(set(want) - set(sel))
    return f"{head}; not selected: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}", False


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    counts = config.stash.get(_COUNTS_KEY, None)
    if counts is not None and "selected_ids" in counts:
        line, ok = _count_line(counts)
        terminalreporter.write_line(line, green=ok, red=not ok, bold=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    counts = session.config.stash.get(_COUNTS_KEY, None)
    if not session.config.getoption("check_sim_count") or hasattr(session.config, "workeroutput"):
        return
    if counts is None or "selected_ids" not in counts:
        return  # nothing collected (a collection error already fails the run)
    if not _count_line(counts)[1] and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.USAGE_ERROR


# ---------------------------------------------------------------- runtime check


@pytest.fixture(autouse=True)
def _builds_match_the_sim_marker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Fail a test that builds for a simulator it does not declare (or builds at all without the sim marker)."""
    if (unsaid := request.node.stash.get(_UNSAID, None)) is not None:
        pytest.fail(unsaid, pytrace=False)
    try:
        import sim.api
        import sim.runners
    except ImportError:  # no simulation extra installed: nothing can build
        yield
        return
    used: list[str] = []
    orig = sim.runners.build

    def build(*args, **kwargs):
        used.append(kwargs.get("simulator", args[0] if args else None))
        return orig(*args, **kwargs)

    monkeypatch.setattr(sim.runners, "build", build)
    if getattr(sim.api, "build", None) is orig:
        monkeypatch.setattr(sim.api, "build", build)
    yield
    declared = request.node.stash.get(_SIMS, None)
    extra = sorted(set(used) - set(declared or ()))
    if extra and declared is None:
        pytest.fail(f"builds for {extra} without @pytest.mark.sim: mark it sim{tuple(extra)}", pytrace=False)
    elif extra:
        pytest.fail(f"builds for {extra} but declares only {list(declared)}: fix its sim marker", pytrace=False)
