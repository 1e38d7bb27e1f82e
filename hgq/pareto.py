"""One training run → one accuracy-vs-EBOPs Pareto front of calibrated checkpoints.

β ramps log-linearly over the run (arXiv:2405.00645), :class:`~hgq.callbacks.ParetoFront` keeps the non-dominated
checkpoints on (validation accuracy, EBOPs), and :func:`calibrate_front` calibrates each one on the training data
(``trace_minmax``: exact EBOPs), keeps the points still non-dominated on (validation accuracy, exact EBOPs), and
scores those on the test split. The test split never selects anything: it only reports.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from hgq.calibrate import trace_minmax
from hgq.callbacks import BetaScheduler, FreeEBOPs, ParetoFront

__all__ = ["calibrate_front", "cost_to_reach", "held_out_curve", "holdout", "non_dominated", "train_front"]


def non_dominated(points: Sequence[dict], acc: str = "accuracy", cost: str = "ebops") -> list[dict]:
    """The points no other point beats on both higher ``acc`` and lower ``cost`` (sorted by cost)."""
    out = []
    for p in points:
        beaten = any(q[acc] >= p[acc] and q[cost] <= p[cost] and (q[acc] > p[acc] or q[cost] < p[cost]) for q in points)
        if not beaten:
            out.append(p)
    return sorted(out, key=lambda p: p[cost])


def held_out_curve(
    points: Sequence[dict], cost: str, grid: Sequence[float], *, select: str = "val_accuracy", report: str = "accuracy"
) -> np.ndarray:
    """A front read the held-out way: at each budget ``c`` of ``grid``, the ``report`` value (test accuracy) of the
    point with the best ``select`` value (validation accuracy) among the points costing at most ``c``; NaN where
    no point fits. The reported split never chooses a point, so the curve need not be monotone."""
    pts = sorted(points, key=lambda p: p[cost])
    out = np.full(len(grid), np.nan)
    for j, c in enumerate(grid):
        fit = [p for p in pts if p[cost] <= c]
        if fit:
            out[j] = max(fit, key=lambda p: (p[select], -p[cost]))[report]
    return out


def cost_to_reach(
    points: Sequence[dict], cost: str, target: float, *, select: str = "val_accuracy", report: str = "accuracy"
) -> float | None:
    """The smallest budget at which :func:`held_out_curve` reaches ``target`` (None if it never does)."""
    for c in sorted({float(p[cost]) for p in points}):
        if held_out_curve(points, cost, [c], select=select, report=report)[0] >= target:
            return c
    return None


def holdout(x: np.ndarray, y: np.ndarray, fraction: float = 0.1) -> tuple[np.ndarray, ...]:
    """``(x_fit, y_fit, x_val, y_val)``: the last ``fraction`` of the training data held out for validation."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction!r}")
    n_val = max(1, int(len(x) * fraction))
    return x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]


def train_front(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    out_dir: str | Path,
    *,
    epochs: int = 200,
    batch_size: int = 1024,
    beta: tuple[float, float] = (1e-6, 1e-4),
    beta_hold: int = 0,
    lr: float = 5e-3,
    val_fraction: float = 0.1,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 0,
) -> list[str]:
    """Train ``model`` with β held at ``beta[0]`` for ``beta_hold`` epochs, then ramped log-linearly to ``beta[1]``
    at the last epoch; return the Pareto checkpoint files (non-dominated on validation accuracy and EBOPs).

    The validation set is ``validation_data`` or else the last ``val_fraction`` of the training data.
    """
    if epochs < 2:
        raise ValueError(f"train_front needs at least 2 epochs to ramp β, got {epochs}")
    if not (0 < beta[0] <= beta[1]):
        raise ValueError(f"beta must be (start, end) with 0 < start <= end, got {beta}")
    if not 0 <= beta_hold < epochs - 1:
        raise ValueError(f"beta_hold must be in [0, epochs - 1), got {beta_hold} for {epochs} epochs")
    if validation_data is None:
        xt, yt, xv, yv = holdout(x_train, y_train, val_fraction)
    else:
        (xt, yt), (xv, yv) = (x_train, y_train), validation_data
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    front = ParetoFront(str(Path(out_dir) / "checkpoints"))
    keys = [(0, beta[0], "constant")] + ([(beta_hold, beta[0], "constant")] if beta_hold else [])
    sched = BetaScheduler([*keys, (epochs - 1, beta[1], "log")])
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


def _accuracy(model: keras.Model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, batch_size=8192, verbose=0), -1) == y))


def _load_into(model: keras.Model | None, file: str) -> keras.Model:
    """The checkpoint ``file`` as a model: its weights loaded into ``model`` when that has the same architecture
    (the compiled forward pass is reused: checkpoints of one run differ only in their weights), else loaded anew."""
    from hgq import load_model

    if model is not None:
        try:
            model.load_weights(file)
            return model
        except ValueError:
            pass
    return load_model(file)


def calibrate_front(
    files: Sequence[str | Path],
    x_calib: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    out_dir: str | Path,
) -> list[dict]:
    """Calibrate each checkpoint, keep the ones non-dominated on (validation accuracy, EBOPs), score those on the
    test split; write ``pareto.json``.

    Returns points ``{"file", "val_accuracy", "accuracy", "ebops", "epoch"}`` sorted by EBOPs (``accuracy`` is
    the test accuracy, which selects nothing); calibrated models are saved as ``out_dir/pareto/point<n>.keras``.
    """
    out = Path(out_dir) / "pareto"
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(str(p) for p in files)
    points, states = [], []
    model = None
    for n, f in enumerate(files):
        model = _load_into(model, f)
        ebops = float(trace_minmax(model, x_calib, batch_size=8192))
        epoch = Path(f).name.split("_")[0].removeprefix("epoch=")
        points.append({"val_accuracy": _accuracy(model, x_val, y_val), "ebops": ebops,
                       "epoch": int(epoch) if epoch.isdigit() else n})  # fmt: skip
        states.append((model, model.get_weights()))
    front = non_dominated(points, acc="val_accuracy")
    for n, p in enumerate(points):
        if p in front:
            model, w = states[n]
            model.set_weights(w)
            p["accuracy"] = _accuracy(model, x_test, y_test)
            p["file"] = str(out / f"point{n}.keras")
            model.save(p["file"])
    front = [{"file": p["file"], **{k: v for k, v in p.items() if k != "file"}} for p in front]
    (Path(out_dir) / "pareto.json").write_text(json.dumps(front, indent=1))
    return front
