"""sim.shard: a vector set split across Ray workers verifies like one run (merged counts equal sim.verify's), a
planted wrong expected output is named by its global sample index, and a Ray cluster at an address works.
Merge rules and shard splitting are checked without a simulator."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import sim
from sim.api import VerifyResult
from sim.scoreboard import ERROR_KINDS
from sim.shard import BALANCE_MIN_VECTORS, default_shards, merge_results, split_shards
from sim.vectors import Port

N_RANDOM = 3000  # + 17 corner vectors: 4 shards of ~755 (one harness depth, 1024)


@pytest.fixture(scope="module")
def design_dir(tmp_path_factory):
    from hdl_gen import convert  # noqa: PLC0415
    from hdl_gen.examples import mlp_graph  # noqa: PLC0415

    g = mlp_graph((6, 8, 3), seed=1, wbits=3, in_bits=6, act_bits=6)
    d = convert(g, clock_ns=1.6, name="shard_mlp")
    return d, d.write(tmp_path_factory.mktemp("shard") / "design")


@pytest.fixture(scope="module")
def vectors(design_dir):
    d, _ = design_dir
    return np.concatenate([sim.corner_vectors(d.layout), sim.random_vectors(d.layout, N_RANDOM, seed=5)])


# ---------------------------------------------------------------- no simulator


def test_split_shards_contiguous_and_non_empty():
    assert split_shards(10, 4) == [(0, 3), (3, 6), (6, 8), (8, 10)]
    assert split_shards(3, 8) == [(0, 1), (1, 2), (2, 3)]  # never an empty shard
    assert split_shards(5, 1) == [(0, 5)]
    with pytest.raises(ValueError, match="shards must be >= 1"):
        split_shards(5, 0)
    with pytest.raises(ValueError, match="nothing to shard"):
        split_shards(0, 2)
    assert default_shards(1_000_000, 2) == 2 and default_shards(4 * BALANCE_MIN_VECTORS, 2) == 4


def _result(n, *, lat=3, sample=None, vps=1000.0):
    errs = dict.fromkeys(ERROR_KINDS, 0)
    fm = None
    if sample is not None:
        errs["data"] = 1
        fm = {"kind": "data", "pass": 1, "cycle": None, "sample": sample, "element": 0}
    r = VerifyResult("verilator", "bulk", n, int(sample is not None), fm, 3, lat, vps, 0.0, False, compared=n,
                     run_vectors_per_s=2 * vps, errors=errs, run_dir="/tmp/x" if fm else None)  # fmt: skip
    r.passed = not r.problems()
    return r


def test_merge_rules():
    ranges = [(0, 100), (100, 200), (200, 250)]
    m = merge_results([_result(100), _result(100), _result(50)], ranges, wall_s=2.0, workers=2, n_vectors=250)
    assert m.passed and m.n_vectors == m.compared == 250 and m.latency_observed == 3 and not m.problems()
    assert m.vectors_per_s == 125.0 and m.run_vectors_per_s == pytest.approx(2000.0)
    assert "(3 shards, 2 workers)" in m.headline()
    # the lowest failing shard's first mismatch, shifted to the global sample index
    m = merge_results([_result(100), _result(100, sample=7), _result(50, sample=1)], ranges, wall_s=1, workers=2)
    assert not m.passed and m.mismatches == 2 and m.errors["data"] == 2
    assert m.first_mismatch["sample"] == 107 and m.first_mismatch["shard"] == 1 and m.run_dir == "/tmp/x"
    assert "2 of 3 shards failed (first: shard 1, 100..199)" in m.problems()
    # shards that disagree on the latency fail the merged verdict even when each one passes alone
    m = merge_results([_result(100), _result(100, lat=4), _result(50)], ranges, wall_s=1, workers=2)
    assert not m.passed and m.latency_observed == 4
    assert any("latency differs across shards (shard 1: 4; expected 3)" in p for p in m.problems())
    m = merge_results([_result(100), _result(100), _result(40)], ranges, wall_s=1, workers=2, n_vectors=250)
    assert not m.passed and "shards ran 240 vectors of 250" in m.problems()


# ---------------------------------------------------------------- a local Ray instance (one for the class)


def _plant(y: np.ndarray, k: int, layout: dict) -> int:
    """Make sample ``k``'s expected output wrong by one LSB in its first non-pruned element; returns the element."""
    out = Port.from_layout(layout, "output")
    e = int(np.flatnonzero(out.bits > 0)[0])
    lsb = 2.0 ** -int(out.f[e])
    y[k, e] += lsb if y[k, e] + lsb <= out.hi[e] * lsb else -lsb
    return e


@pytest.mark.sim("verilator")
class TestLocal:
    @pytest.fixture(scope="class", autouse=True)
    def session(self):
        pytest.importorskip("ray")
        from sim.distributed import ray_session  # noqa: PLC0415

        with ray_session(workers=2) as r:
            yield r

    def test_sharded_equals_plain(self, design_dir, vectors):
        d, path = design_dir
        plain = sim.verify(path, vectors, "verilator", "bulk")
        r = sim.verify_sharded(path, vectors, "verilator", "bulk", workers=2, shards=4)
        assert plain.passed and r.passed, (plain.problems(), r.problems())
        assert isinstance(r, VerifyResult) and len(r.shards) == 4 and r.workers == 2
        for k in ("n_vectors", "compared", "mismatches", "valid_errors", "errors", "tb_failed", "latency_observed"):
            assert getattr(r, k) == getattr(plain, k), k
        assert r.n_vectors == len(vectors) and r.latency_observed == d.latency and r.first_mismatch is None
        assert [(s["start"], s["stop"]) for s in r.shards] == split_shards(len(vectors), 4)
        assert all(s["build_reused"] for s in r.shards)  # the driver built; every worker found it in the cache
        assert r.run_dir is None and all(s["run_dir"] is None for s in r.shards)
        assert r.vectors_per_s == pytest.approx(r.n_vectors / r.wall_s)

    def test_planted_wrong_expected_in_last_shard(self, design_dir, vectors):
        d, path = design_dir
        y = d.predict(vectors)
        k = len(vectors) - 7  # in the last shard
        e = _plant(y, k, d.layout)
        r = sim.verify_sharded(path, vectors, "verilator", "bulk", expected=y, workers=2, shards=3)
        assert not r.passed and r.mismatches == 1 and r.errors["data"] == 1
        fm = r.first_mismatch
        assert fm["sample"] == k and fm["shard"] == 2 and fm["element"] == e and fm["kind"] == "data"
        assert [s["passed"] for s in r.shards] == [True, True, False]
        assert "1 of 3 shards failed" in r.headline()
        assert r.run_dir == r.shards[2]["run_dir"] and Path(r.run_dir).is_dir()  # the failing shard keeps its run
        assert r.waves is not None and Path(r.waves).exists()  # one rerun, of that shard, with a waveform
        shutil.rmtree(r.run_dir)

    def test_cli_hook(self, design_dir, vectors, tmp_path):
        d, path = design_dir
        r = sim.cli_simulate_sharded(path, None, "verilator", "bulk", workers=2, n_random=2000, seed=3)
        assert r.passed and r.n_vectors == 2000 + len(sim.corner_vectors(d.layout)) and len(r.shards) == 2
        y = d.predict(vectors[:2000])
        _plant(y, 1500, d.layout)
        np.savez(tmp_path / "v.npz", x=vectors[:2000], y=y)
        r = sim.cli_simulate_sharded(path, tmp_path / "v.npz", "verilator", "bulk", workers=2, seed=3)
        assert not r.passed and r.first_mismatch["sample"] == 1500 and r.first_mismatch["shard"] == 1
        assert r.to_dict()["problems"] and r.waves is not None
        shutil.rmtree(r.run_dir)

    def test_shard_error_names_the_shard(self, design_dir, vectors):
        _, path = design_dir
        x = vectors.copy()
        x[-1, 0] = x[-1, 0] + 2.0**-12  # off the input grid, in the last of 4 shards
        with pytest.raises(ValueError, match="multiples of 2") as ei:
            sim.verify_sharded(path, x, "verilator", "bulk", workers=2, shards=4)
        assert any("in shard 3 of 4" in n for n in getattr(ei.value, "__notes__", []))


# ---------------------------------------------------------------- a Ray cluster at an address


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session_pids(sid: int) -> list[int]:
    """Processes of the Linux session ``sid`` (the head started below and everything it spawned)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid:
                out.append(int(p.name))
    return out


@pytest.mark.sim("verilator")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="head cleanup reads /proc")
def test_cluster_at_address(design_dir, vectors, monkeypatch):
    """A head of our own (``ray start --head --block`` in a new session, stopped by SIGINT to it and its session
    killed after: never ``ray stop``, which stops every Ray instance of the user on the machine)."""
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized(), "a Ray session from an earlier test is still open"
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # `ray start` enables token auth; the driver must send it
    _, path = design_dir
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="hgqray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    ray_bin = Path(sys.executable).parent / "ray"
    cmd = [str(ray_bin) if ray_bin.exists() else "ray", "start", "--head", f"--port={port}", "--num-cpus=2",
           "--include-dashboard=false", "--disable-usage-stats", "--block", f"--temp-dir={tmp}"]  # fmt: skip
    log = open(Path(tmp) / "head.log", "w")  # noqa: SIM115
    head = subprocess.Popen(cmd, start_new_session=True, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        while "Ray runtime started" not in (Path(tmp) / "head.log").read_text():
            assert head.poll() is None and time.monotonic() < deadline, (Path(tmp) / "head.log").read_text()[-2000:]
            time.sleep(0.5)
        x = vectors[:1500]
        r = sim.verify_sharded(path, x, "verilator", "bulk", address=f"127.0.0.1:{port}", workers=2)
        assert r.passed, r.problems()
        assert r.n_vectors == r.compared == 1500 and len(r.shards) == 2 and r.workers == 2  # default: 1 a worker
        assert not ray.is_initialized()  # the session this call connected is closed again
        s = sim.verify_sharded(path, x[:300], "verilator", "stream", address=f"127.0.0.1:{port}", shards=2)
        assert s.passed and s.n_vectors == 300 and len(s.shards) == 2, s.problems()
    finally:
        if head.poll() is None:
            head.send_signal(signal.SIGINT)  # `ray start --block` shuts its node down on Ctrl-C
            with contextlib.suppress(subprocess.TimeoutExpired):
                head.wait(20)
        t = time.monotonic()
        while _session_pids(head.pid) and time.monotonic() - t < 10:
            time.sleep(0.5)
        for pid in _session_pids(head.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if head.poll() is None:
            head.wait(5)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
