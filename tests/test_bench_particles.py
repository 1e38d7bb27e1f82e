"""The particle benchmark's own code path (several seeds → calibrate → lower → circuit == Keras → report), kept
alive in CI on a tiny run of the shipped sample; the real figures come from ``nox -s bench -- particles``."""
# ruff: noqa: I001

from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_particles  # noqa: E402


def test_particle_benchmark_smoke(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["--quick", "--epochs", "1", "--particles", "8", "--models", "mlp", "jedi_linear", "--seeds", "0", "1",
            "--no-yosys", "--out", str(out)]  # fmt: skip
    assert bench_particles.main(argv) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [(r["model"], r["seed"]) for r in rows] == [("mlp", 0), ("mlp", 1), ("jedi_linear", 0), ("jedi_linear", 1)]
    for r in rows:
        assert 0.0 < r["accuracy"] < 1.0 and r["latency_cycles"] >= 1 and r["lut_estimate"] > 0
    # the two seeds train different models from the same split
    assert rows[2]["params"] == rows[3]["params"] and rows[2]["ebops"] != rows[3]["ebops"]
    text = capsys.readouterr().out
    mean = sum(r["accuracy"] for r in rows[2:]) / 2
    assert "accuracy over seeds [0, 1]" in text and f"{mean:.4f} vs" in text  # the bar compares the mean
    assert "GNN seed 1: latency" in text and "(8 particles)" in text
