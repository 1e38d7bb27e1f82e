"""Training callbacks: EBOPs logging, β schedule, β PID control, Pareto-front checkpointing (HGQ: arXiv:2405.00645)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import keras
import numpy as np

from hgq.ebops import ebops_layers, set_beta, trained_ebops

__all__ = ["BetaPID", "BetaScheduler", "FreeEBOPs", "ParetoFront"]


def _ebops_of(model, logs) -> float:
    if logs is not None and "ebops" in logs:
        return float(logs["ebops"])
    return trained_ebops(model)


class FreeEBOPs(keras.callbacks.Callback):
    """Log the model's total EBOPs (as used in the loss at the last step) as ``logs["ebops"]`` each epoch.

    Put it before callbacks that read ``ebops`` (ParetoFront, BetaPID, CSVLogger, ...).
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["ebops"] = trained_ebops(self.model)


class BetaScheduler(keras.callbacks.Callback):
    """Set every layer's β at the start of each epoch from ``β(epoch)``.

    Args:
        schedule: a callable ``epoch -> β``, or keys ``[(epoch, β, mode), ...]`` sorted by epoch, where
            ``mode`` in {"constant", "linear", "log"} says how β goes from the previous key to this one
            (constant: hold the previous β until this key's epoch). β is the first key's before it and the
            last key's after it.
    """

    def __init__(self, schedule: Callable[[int], float] | Sequence[tuple[int, float, str]]):
        super().__init__()
        if callable(schedule):
            self.schedule = schedule
            self.keys = None
        else:
            keys = [(int(e), float(b), str(m)) for e, b, m in schedule]
            if not keys:
                raise ValueError("BetaScheduler needs at least one (epoch, beta, mode) key")
            for e, b, m in keys:
                if m not in ("constant", "linear", "log"):
                    raise ValueError(f"schedule mode {m!r} is not valid; use 'constant', 'linear' or 'log'")
                if m == "log" and b <= 0:
                    raise ValueError(f"log-interpolated β must be > 0, got {b} at epoch {e}")
            if any(a[0] >= b[0] for a, b in zip(keys, keys[1:], strict=False)):
                raise ValueError("schedule keys must have strictly increasing epochs")
            self.keys = keys
            self.schedule = self._piecewise

    def _piecewise(self, epoch: int) -> float:
        keys = self.keys
        if epoch <= keys[0][0]:
            return keys[0][1]
        for (e0, b0, _), (e1, b1, m) in zip(keys, keys[1:], strict=False):
            if epoch < e1:
                t = (epoch - e0) / (e1 - e0)
                if m == "constant":
                    return b0
                if m == "linear":
                    return b0 + t * (b1 - b0)
                if b0 <= 0:
                    raise ValueError(f"log-interpolated β must start > 0, got {b0} at epoch {e0}")
                return float(math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0))))
        return keys[-1][1]

    def on_epoch_begin(self, epoch, logs=None):
        set_beta(self.model, self.schedule(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["beta"] = float(self.schedule(epoch))


class BetaPID(keras.callbacks.Callback):
    """Drive the model's EBOPs to ``target_ebops`` by PID control of ``log10 β`` (error ``log10(EBOPs/target)``).

    Args:
        target_ebops: the EBOPs to reach.
        p, i, d: PID gains on the log10 error (defaults 1, 2e-3, 0).
        warmup: epochs before control starts (β stays at its initial value).
        beta_min, beta_max: clip range of β.
    """

    def __init__(self, target_ebops: float, p=1.0, i=2e-3, d=0.0, warmup: int = 10, beta_min=1e-12, beta_max=1e-1):
        super().__init__()
        if target_ebops <= 0:
            raise ValueError(f"target_ebops must be > 0, got {target_ebops}")
        self.target, self.p, self.i, self.d = float(target_ebops), float(p), float(i), float(d)
        self.warmup, self.beta_min, self.beta_max = int(warmup), float(beta_min), float(beta_max)
        self._integral, self._prev, self._log_beta0 = 0.0, None, None

    def on_train_begin(self, logs=None):
        layers = ebops_layers(self.model)
        if not layers:
            raise ValueError("BetaPID: the model has no EBOPs layers")
        self._log_beta0 = math.log10(max(layers[0].beta, self.beta_min))

    def on_epoch_end(self, epoch, logs=None):
        e = _ebops_of(self.model, logs)
        if epoch < self.warmup or e <= 0:
            return
        err = math.log10(e / self.target)
        self._integral += err
        der = 0.0 if self._prev is None else err - self._prev
        self._prev = err
        lb = self._log_beta0 + self.p * err + self.i * self._integral + self.d * der
        beta = float(np.clip(10.0**lb, self.beta_min, self.beta_max))
        set_beta(self.model, beta)
        if logs is not None:
            logs["beta"] = beta


class ParetoFront(keras.callbacks.Callback):
    """Keep the checkpoints that are non-dominated over ``metrics``; write them as ``.keras`` files.

    During training a candidate costs only a copy of the weights (``model.get_weights()``, well under a
    millisecond) held in memory; dominated candidates are dropped. The survivors are written when training ends
    (or on :meth:`flush`): saving a ``.keras`` file per candidate costs ~0.2 s, which used to dominate short epochs.
    A written file holds the weights of its epoch; the optimizer state in it is the final one.

    Args:
        path: directory for the checkpoints.
        metrics: log keys compared (default ``("val_accuracy", "ebops")``; ``ebops`` is computed if not logged).
        sides: +1 where larger is better, -1 where smaller is better (default ``(1, -1)``).
        fname_format: file name format, fed ``epoch`` and the metrics.
    """

    def __init__(
        self,
        path: str,
        metrics: Sequence[str] = ("val_accuracy", "ebops"),
        sides: Sequence[int] = (1, -1),
        fname_format: str = "epoch={epoch}_metric={val_accuracy:.4f}_ebops={ebops:.0f}.keras",
    ):
        super().__init__()
        if len(metrics) != len(sides) or any(s not in (1, -1) for s in sides):
            raise ValueError("ParetoFront needs one side (+1 or -1) per metric")
        self.path, self.metrics, self.sides, self.fname_format = str(path), tuple(metrics), tuple(sides), fname_format
        self.front: list[dict] = []  # {"epoch", metric values..., "file"}
        self._weights: dict[int, list] = {}  # epoch -> weights of a front point not yet written

    def _key(self, point: dict) -> np.ndarray:
        return np.array([s * point[m] for m, s in zip(self.metrics, self.sides, strict=True)], dtype=np.float64)

    @staticmethod
    def dominates(a: np.ndarray, b: np.ndarray) -> bool:
        """``a`` (oriented so larger is better) is at least as good as ``b`` everywhere and better somewhere."""
        return bool(np.all(a >= b) and np.any(a > b))

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if "ebops" in self.metrics and "ebops" not in logs:
            logs["ebops"] = _ebops_of(self.model, None)
        missing = [m for m in self.metrics if m not in logs]
        if missing:
            raise KeyError(f"ParetoFront: metrics {missing} are not in the logs; pass validation_data or fix metrics")
        point = {"epoch": int(epoch), **{m: float(logs[m]) for m in self.metrics}}
        key = self._key(point)
        if any(np.array_equal(self._key(p), key) or self.dominates(self._key(p), key) for p in self.front):
            return
        keep = []
        for p in self.front:
            if self.dominates(key, self._key(p)):
                self._weights.pop(p["epoch"], None)
                if os.path.exists(p["file"]):
                    os.remove(p["file"])
            else:
                keep.append(p)
        point["file"] = os.path.join(self.path, self.fname_format.format(**{**logs, **point}))
        self._weights[point["epoch"]] = self.model.get_weights()
        self.front = sorted([*keep, point], key=lambda p: p["epoch"])

    def flush(self) -> None:
        """Write the front points held in memory as ``.keras`` files (the model's weights are restored after)."""
        if not self._weights:
            return
        os.makedirs(self.path, exist_ok=True)
        final = self.model.get_weights()
        try:
            for p in self.front:
                w = self._weights.pop(p["epoch"], None)
                if w is not None:
                    self.model.set_weights(w)
                    self.model.save(p["file"])
        finally:
            self.model.set_weights(final)

    def on_train_end(self, logs=None):
        self.flush()
