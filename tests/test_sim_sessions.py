"""Issue 20: ``--simulator`` (the nox sim sessions) selects every sim test that runs that simulator, and only those.

Collection only (``pytest --collect-only`` in subprocesses), no simulation: the real suite for both simulators,
then the convention of tests/conftest.py on small synthetic suites (parameter, marker, auto-parametrized
``simulator``, an unclassified test, xdist, the runtime check that a test builds only what it declares).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import conftest
import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SIMS = conftest.SIMULATORS


def _pytest(*args: str, cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HGQ_HIL_TEST"))}
    env["COLUMNS"] = "400"  # summary lines unabridged
    return subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def _finish(p: subprocess.Popen) -> tuple[int, str]:
    out, _ = p.communicate(timeout=300)
    return p.returncode, out


def _ids(out: str) -> set[str]:
    return {line.strip() for line in out.splitlines() if "::" in line and not line.startswith(("--", "ERROR"))}


# ---------------------------------------------------------------- the real suite


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """{simulator: (selected node ids, classification of every sim test)} from one collection per simulator."""
    tmp = tmp_path_factory.mktemp("collect")
    args = ["--collect-only", "-q", "-m", "sim", "--check-sim-count"]
    procs = {s: _pytest(*args, f"--simulator={s}", f"--sim-classification={tmp / s}.json", cwd=REPO) for s in SIMS}
    res = {}
    for s, p in procs.items():
        rc, out = _finish(p)
        assert rc == 0, out[-3000:]
        res[s] = (_ids(out), json.loads((tmp / f"{s}.json").read_text()), out)
    return res


def test_each_sim_test_is_selected_by_exactly_the_sessions_of_its_simulators(suite):
    cls = suite[SIMS[0]][1]
    assert all(suite[s][1] == cls for s in SIMS)  # one classification whichever simulator is chosen
    assert len(cls) >= 40  # the whole suite was collected
    for node, c in cls.items():
        assert c["simulators"] and set(c["simulators"]) <= set(SIMS), node
        assert {s for s in SIMS if node in suite[s][0]} == set(c["simulators"]), node
    assert set().union(*(suite[s][0] for s in SIMS)) == set(cls)  # none selected by neither
    for s in SIMS:
        n = sum(s in c["simulators"] for c in cls.values())
        assert len(suite[s][0]) == n
        line = f"--simulator {s}: {n} sim tests selected; the suite has {n} sim tests for {s} (of {len(cls)} sim"
        assert line in suite[s][2]


def test_tests_without_the_simulator_in_their_name_are_classified_by_what_they_run(suite):
    cls = {n: set(c["simulators"]) for n, c in suite[SIMS[0]][1].items()}
    assert cls["tests/test_cli.py::test_ci_gate_passes_on_both_simulators"] == {"verilator", "icarus"}
    assert cls["tests/test_boards_flow.py::test_uart_harness_bit_exact"] == {"icarus"}
    assert cls["tests/test_hostile.py::test_sigterm_during_a_build_ends_make_and_removes_the_temporary_dir"] == {
        "verilator"
    }
    assert cls["tests/test_sim_hdl_gen.py::test_hdl_gen_combinational_core[bulk]"] == {"icarus"}
    for node, sims in cls.items():  # a simulator parameter decides alone
        m = re.search(r"\[(?:.*-)?(verilator|icarus)(?:-.*)?\]$", node)
        if m and suite[SIMS[0]][1][node]["by"] == "parameter":
            assert sims == {m[1]}, node


def test_every_sim_test_says_its_simulator_itself(suite):
    assert {c["by"] for c in suite[SIMS[0]][1].values()} <= {"parameter", "marker"}


# ---------------------------------------------------------------- the convention, on synthetic suites

SYNTH = """
import pytest
import sim.runners

@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_param(simulator):
    pass

@pytest.mark.sim
@pytest.mark.parametrize(("mode", "simulator"), [("a", "verilator"), ("b", "verilator")])
def test_param_tuple(mode, simulator):
    pass

@pytest.mark.sim("verilator")
def test_fixed_verilator():
    pass

@pytest.mark.sim("icarus")
def test_fixed_icarus():
    pass

@pytest.mark.sim("verilator", "icarus")
def test_both():
    pass

@pytest.mark.sim
def test_any(simulator):
    assert simulator in ("verilator", "icarus")

@pytest.mark.sim("icarus")
def test_any_icarus_only(simulator):
    assert simulator == "icarus"

def test_not_sim():
    pass
"""

WANT = {
    "verilator": {"test_param[verilator]", "test_param_tuple[a-verilator]", "test_param_tuple[b-verilator]",
                  "test_fixed_verilator", "test_both", "test_any[verilator]", "test_not_sim"},
    "icarus": {"test_param[icarus]", "test_fixed_icarus", "test_both", "test_any[icarus]",
               "test_any_icarus_only[icarus]", "test_not_sim"},
}  # fmt: skip


@pytest.fixture
def synth(tmp_path) -> Path:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    (tmp_path / "test_synth.py").write_text(SYNTH)
    return tmp_path


def _names(out: str) -> set[str]:
    return {n.split("::", 1)[1] for n in _ids(out)}


def test_synthetic_selection(synth):
    procs = {s: _pytest("--collect-only", "-q", "--simulator", s, "--check-sim-count", cwd=synth) for s in SIMS}
    procs[None] = _pytest("--collect-only", "-q", "-m", "sim", cwd=synth)
    res = {s: _finish(p) for s, p in procs.items()}
    for s in SIMS:
        rc, out = res[s]
        assert rc == 0, out
        assert _names(out) == WANT[s]
        n = len(WANT[s]) - 1
        assert f"--simulator {s}: {n} sim tests selected; the suite has {n} sim tests for {s} (of 10 sim tests)" in out
    rc, out = res[None]
    assert rc == 0 and _names(out) == (WANT["verilator"] | WANT["icarus"]) - {"test_not_sim"}


def test_xdist_run_prints_the_counts_and_a_narrowed_run_fails_the_check(synth):
    p = _pytest("-q", "-n", "2", "-m", "sim", "--simulator", "verilator", "--check-sim-count", cwd=synth)
    narrowed = _pytest("-q", "-n", "2", "--simulator", "icarus", "--check-sim-count", "-k", "not both", cwd=synth)
    (rc, out), (rc2, out2) = _finish(p), _finish(narrowed)
    assert rc == 0 and "6 passed" in out, out
    assert "--simulator verilator: 6 sim tests selected; the suite has 6 sim tests for verilator" in out
    assert rc2 == pytest.ExitCode.USAGE_ERROR, out2
    assert "4 sim tests selected; the suite has 5 sim tests for icarus (of 10 sim tests); not selected: " in out2
    assert "test_synth.py::test_both" in out2


def test_a_sim_test_that_names_no_simulator_is_a_collection_error(synth):
    (synth / "test_bad.py").write_text(
        "import pytest\n\n@pytest.mark.sim\ndef test_unsaid():\n    pass\n\n"
        "@pytest.mark.sim('questa')\ndef test_unknown():\n    pass\n\n"
        "@pytest.mark.sim('verilator')\n@pytest.mark.parametrize('simulator', ['icarus'])\n"
        "def test_conflict(simulator):\n    pass\n"
    )
    rc, out = _finish(_pytest("--collect-only", "-q", cwd=synth))
    assert rc == pytest.ExitCode.USAGE_ERROR, out
    assert "test_bad.py::test_unsaid: says no simulator: mark it @pytest.mark.sim('verilator')" in out
    assert "test_bad.py::test_unknown: @pytest.mark.sim names ['questa']" in out
    assert "test_bad.py::test_conflict[icarus]: parametrized for icarus but marked sim('verilator',)" in out
    rc, out = _finish(_pytest("-q", "-n", "2", "--simulator", "icarus", "test_bad.py", cwd=synth))  # under xdist
    assert rc == pytest.ExitCode.TESTS_FAILED and "3 errors" in out, out
    assert "ERROR test_bad.py::test_unsaid - Failed: sim test that does not say which simulator it runs: " in out


def test_a_test_building_an_undeclared_simulator_fails(synth):
    (synth / "test_synth.py").write_text(
        textwrap.dedent("""
        import pytest
        import sim.runners


        class Stop(Exception):
            pass


        def _build(monkeypatch, simulator):
            def stop(s):
                raise Stop(s)

            monkeypatch.setattr(sim.runners, "check_simulator", stop)  # the real build stops at its first line
            with pytest.raises(Stop):
                sim.runners.build(simulator, {}, "top")


        @pytest.mark.sim("verilator")
        def test_declared(monkeypatch):
            _build(monkeypatch, "verilator")


        @pytest.mark.sim("verilator")
        def test_undeclared(monkeypatch):
            _build(monkeypatch, "icarus")


        def test_unmarked(monkeypatch):
            _build(monkeypatch, "verilator")
        """)
    )
    rc, out = _finish(_pytest("-q", cwd=synth))
    assert rc == pytest.ExitCode.TESTS_FAILED, out
    assert "3 passed, 2 errors" in out  # the bodies pass; the check fails the teardown of two
    assert "ERROR test_synth.py::test_undeclared - Failed: builds for ['icarus'] but declares only ['verilator']" in out
    assert "ERROR test_synth.py::test_unmarked - Failed: builds for ['verilator'] without @pytest.mark.sim" in out
