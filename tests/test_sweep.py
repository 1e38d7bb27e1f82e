"""``hgq-hil sweep`` on Ray: a real local sweep of 4 small trials (table, Pareto set, resume after a stop), a sweep
against a Ray head started with ``ray start --head`` on 127.0.0.1, and study-file checks."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from boards.cli import main
from boards.sweep import grid_points, load_study, pareto_rows, random_points, read_trials, run_study, trial_id

STUDY = """
name = "tiny"
[recipe]
epochs = 2
hidden = [8]
batch_size = 4096
[space]
beta_end = [1e-5, 3e-4]
clock_ns = [5.0, 2.0]
[search]
method = "grid"
[objectives]
val_accuracy = "max"
lut_estimate = "min"
latency_ns = "min"
"""


def _study(tmp_path: Path, text: str = STUDY) -> Path:
    p = tmp_path / "study.toml"
    p.write_text(text)
    return p


def test_local_sweep_table_pareto_and_resume(tmp_path, capsys):
    study = load_study(_study(tmp_path))
    out = tmp_path / "out"
    first = run_study(study, out, workers=2, max_trials=2)  # "stopped" after 2 trials
    assert first["ran"] == 2 and len(read_trials(out)) == 2
    assert main(["sweep", str(tmp_path / "study.toml"), "--out", str(out), "--workers", "2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["ran"] == 2 and res["skipped"] == 2  # only the rest ran
    rows = read_trials(out)
    assert len(rows) == 4 and len({r["trial"] for r in rows}) == 4 and all(r["status"] == "ok" for r in rows)
    assert {(r["beta_end"], r["clock_ns"]) for r in rows} == {(b, c) for b in (1e-5, 3e-4) for c in (5.0, 2.0)}
    for r in rows:  # every row is a complete, lowered design
        assert r["lut_estimate"] > 0 and r["latency_ns"] == r["latency_cycles"] * r["clock_ns"]
        assert Path(r["design_dir"], "manifest.json").exists() and 0.2 < r["val_accuracy"] < 1
        ebops = [e for e, _ in r["front"]]  # the trial's training front, for the plot: the chosen point is on it
        assert ebops == sorted(ebops) and [r["ebops"], r["val_accuracy"]] in r["front"]
    front = pareto_rows(rows, study.objectives)
    assert [r["trial"] for r in res["pareto"]] == [r["trial"] for r in front] and front
    sign = {"val_accuracy": 1, "lut_estimate": -1, "latency_ns": -1}
    for a in front:  # nothing in the table dominates a Pareto row
        assert not any(all(sign[k] * b[k] >= sign[k] * a[k] for k in sign) and
                       any(sign[k] * b[k] > sign[k] * a[k] for k in sign) for b in rows)  # fmt: skip
    assert (out / "study.png").stat().st_size > 1000 and json.loads((out / "pareto.json").read_text())
    again = run_study(study, out, workers=2)  # everything done: nothing runs
    assert again["ran"] == 0 and again["skipped"] == 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sweep_against_a_ray_head(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a throwaway loopback head: no token to hand around
    ray_cli = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    start = [ray_cli, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
             "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"]  # fmt: skip
    head = subprocess.Popen(start, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    try:
        t_end = time.monotonic() + 120
        while time.monotonic() < t_end:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert head.poll() is None, "ray start --head exited"
            time.sleep(0.5)
        text = STUDY.replace("clock_ns = [5.0, 2.0]", "clock_ns = [5.0]").replace("beta_end = [1e-5, 3e-4]",
                                                                                  "beta_end = [1e-4]")  # fmt: skip
        # the whole trial: yosys counts as an objective and a bit-exact Verilator check
        text = text.replace('lut_estimate = "min"', 'yosys_lut = "min"') + "[verify]\nyosys = true\nsim_vectors = 200\n"
        study = load_study(_study(tmp_path, text))
        res = run_study(study, tmp_path / "out", address=f"127.0.0.1:{port}")
        row = res["rows"][0]
        assert res["ran"] == 1 and row["status"] == "ok", row.get("error")
        assert row["lut_estimate"] > 0 and row["yosys_lut"] > 0 and row["yosys_ff"] > 0
        assert row["bit_exact"] is True and row["sim_vectors"] == 200
        assert [r["trial"] for r in res["pareto"]] == [row["trial"]]  # the yosys objective is filled in
    finally:
        head.terminate()  # --block: SIGTERM stops the processes this head started
        head.wait(120)
        shutil.rmtree(temp, ignore_errors=True)


def test_search_spaces_and_study_errors(tmp_path):
    assert grid_points({"a": [1, 2], "b": ["x", "y"]}) == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"},
                                                           {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]  # fmt: skip
    pts = random_points({"lr": {"low": 1e-3, "high": 1e-2, "log": True}, "hidden": [[8], [16]]}, 5, seed=3)
    assert pts == random_points({"lr": {"low": 1e-3, "high": 1e-2, "log": True}, "hidden": [[8], [16]]}, 5, seed=3)
    assert all(1e-3 <= p["lr"] <= 1e-2 and p["hidden"] in ([8], [16]) for p in pts)
    assert trial_id({"a": 1, "b": 2}) == trial_id({"b": 2, "a": 1}) != trial_id({"a": 1, "b": 3})
    bad = {
        "[space]\nwidth = [1]": r"\[space\] has unknown parameter\(s\) \['width'\]",
        "[space]\nlr = {low = 1e-3, high = 1e-2}": "method 'grid' needs a list of values",
        '[search]\nmethod = "bayes"': "method 'bayes' is not one of grid, random, optuna",
        '[objectives]\nspeed = "max"': r"\[objectives\] speed = 'max'",
        '[objectives]\nyosys_lut = "min"': "need \\[verify\\] yosys = true",
        '[objectives]\nsim_s = "min"': "needs \\[verify\\] sim_vectors > 0",
        "[search]\ntrials = 0": "trials must be an integer >= 1",
    }
    for text, msg in bad.items():
        with pytest.raises(ValueError, match=msg):
            load_study(_study(tmp_path, text))
    assert main(["sweep", str(_study(tmp_path, "[space]\nwidth = [1]")), "--out", str(tmp_path / "o")]) == 2
