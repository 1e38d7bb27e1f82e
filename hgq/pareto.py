"""One training run → one accuracy-vs-EBOPs Pareto front of calibrated checkpoints.

β ramps log-linearly over the run (REFERENCE §2.8), :class:`~hgq.callbacks.ParetoFront` keeps the non-dominated
checkpoints on (validation accuracy, EBOPs), and :func:`calibrate_front` calibrates each one on the training data
(``trace_minmax``: exact EBOPs), scores it on the test split, and keeps the points still non-dominated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from hgq.calibrate import trace_minmax
from hgq.callbacks import BetaScheduler, FreeEBOPs, ParetoFront

__all__ = ["calibrate_front", "non_dominated", "train_front"]


def non_dominated(points: Sequence[dict], acc: str = "accuracy", cost: str = "ebops") -> list[dict]:
    """The points no other point beats on both higher ``acc`` and lower ``cost`` (sorted by cost)."""
    out = []
    for p in points:
        beaten = any(q[acc] >= p[acc] and q[cost] <= p[cost] and (q[acc] > p[acc] or q[cost] < p[cost]) for q in points)
        if not beaten:
            out.append(p)
    return sorted(out, key=lambda p: p[cost])


def train_front(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    out_dir: str | Path,
    *,
    epochs: int = 200,
    batch_size: int = 1024,
    beta: tuple[float, float] = (1e-6, 1e-4),
    lr: float = 5e-3,
    val_fraction: float = 0.1,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 0,
) -> list[str]:
    """Train ``model`` with β ramped log-linearly from ``beta[0]`` to ``beta[1]``; return the Pareto checkpoint files.

    The last ``val_fraction`` of the training data is the validation set the front is chosen on.
    """
    if epochs < 2:
        raise ValueError(f"train_front needs at least 2 epochs to ramp β, got {epochs}")
    if not (0 < beta[0] <= beta[1]):
        raise ValueError(f"beta must be (start, end) with 0 < start <= end, got {beta}")
    n_val = max(1, int(len(x_train) * val_fraction))
    xt, yt, xv, yv = x_train[:-n_val], y_train[:-n_val], x_train[-n_val:], y_train[-n_val:]
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    front = ParetoFront(str(Path(out_dir) / "checkpoints"))
    sched = BetaScheduler([(0, beta[0], "constant"), (epochs - 1, beta[1], "log")])
    model.fit(
        xt,
        yt,
        validation_data=(xv, yv),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=verbose,
        callbacks=[sched, FreeEBOPs(), front, *callbacks],
    )
    return [p["file"] for p in front.front]


def calibrate_front(
    files: Sequence[str | Path],
    x_calib: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    out_dir: str | Path,
) -> list[dict]:
    """Calibrate each checkpoint, score it on the test split, keep the non-dominated ones; write ``pareto.json``.

    Returns points ``{"file", "accuracy", "ebops", "epoch"}`` sorted by EBOPs; calibrated models are saved as
    ``out_dir/pareto/point<n>.keras``.
    """
    from hgq import load_model

    out = Path(out_dir) / "pareto"
    out.mkdir(parents=True, exist_ok=True)
    points = []
    for n, f in enumerate(sorted(str(p) for p in files)):
        model = load_model(f)
        ebops = float(trace_minmax(model, x_calib, batch_size=8192))
        acc = float(np.mean(np.argmax(model.predict(x_test, batch_size=8192, verbose=0), -1) == y_test))
        dst = out / f"point{n}.keras"
        model.save(dst)
        epoch = Path(f).name.split("_")[0].removeprefix("epoch=")
        points.append(
            {"file": str(dst), "accuracy": acc, "ebops": ebops, "epoch": int(epoch) if epoch.isdigit() else n}
        )
    front = non_dominated(points)
    for p in points:
        if p not in front:
            Path(p["file"]).unlink()
    (Path(out_dir) / "pareto.json").write_text(json.dumps(front, indent=1))
    return front
