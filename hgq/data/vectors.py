"""Test vectors for hardware: the vectors file (``.npz``, docs/interfaces.md) and physics input rows.

A vectors file holds ``x``: float64 ``[N, *input_shape]`` input values already on the model's input grid, and
optionally ``y``: float64 ``[N, *output_shape]`` expected outputs. Nothing else.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from hgq.data.jsc import JSCSplit, jsc_split, load_jsc

_KEYS = {"x", "y"}


def _check(name: str, a: np.ndarray, where: str) -> None:
    if a.dtype != np.float64:
        raise ValueError(f"{where}: '{name}' must be float64, got {a.dtype} (convert with .astype(np.float64))")
    if a.ndim < 2 or a.shape[0] < 1:
        raise ValueError(f"{where}: '{name}' must have shape [N >= 1, ...], got {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ValueError(f"{where}: '{name}' has {int(bad.sum())} NaN/inf values (first in row {row}); remove them")


def export_vectors(path: str | os.PathLike, x: np.ndarray, y: np.ndarray | None = None) -> Path:
    """Write a vectors file: ``x`` (quantized inputs) and optional ``y`` (expected outputs), both as float64.

    ``x`` and ``y`` are real arrays of shape ``[N, ...]`` with the same ``N``; integer or float32 values are
    converted to float64 exactly. Returns the written path.
    """
    path = Path(path)
    arrays = {"x": x} if y is None else {"x": x, "y": y}
    out = {}
    for k, a in arrays.items():
        a = np.asarray(a)
        if a.dtype.kind not in "iuf":
            raise ValueError(f"export_vectors: '{k}' must be a real numeric array, got dtype {a.dtype}")
        out[k] = a.astype(np.float64)
        _check(k, out[k], "export_vectors")
    if "y" in out and out["y"].shape[0] != out["x"].shape[0]:
        raise ValueError(f"export_vectors: x has {out['x'].shape[0]} rows but y has {out['y'].shape[0]}")
    with open(path, "wb") as f:  # a file object keeps the exact name (np.savez would append .npz)
        np.savez_compressed(f, **out)
    return path


def load_vectors(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Read and validate a vectors file; returns ``(x, y)`` with ``y`` None when the file has no outputs."""
    where = f"vectors file {str(path)!r}"
    try:
        f = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{where} does not exist (write it with hgq.data.export_vectors)") from None
    except Exception as e:
        raise ValueError(f"{where} is not a readable .npz ({type(e).__name__}: {e})") from e
    if not hasattr(f, "files"):
        raise ValueError(f"{where} is a bare .npy array, not an .npz with 'x' (write it with export_vectors)")
    with f:
        keys = set(f.files)
        if "x" not in keys:
            raise ValueError(f"{where} has no 'x' array (keys: {sorted(keys)}); write it with export_vectors")
        if keys - _KEYS:
            raise ValueError(f"{where} has unexpected arrays {sorted(keys - _KEYS)}; only 'x' and 'y' are allowed")
        x = f["x"]
        y = f["y"] if "y" in keys else None
    _check("x", x, where)
    if y is not None:
        _check("y", y, where)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"{where}: x has {x.shape[0]} rows but y has {y.shape[0]}")
    return x, y


@lru_cache(maxsize=2)
def _sample_split() -> JSCSplit:
    return jsc_split(load_jsc("sample"))


def physics_vectors(n: int, *, seed: int = 0, split: JSCSplit | None = None) -> np.ndarray:
    """``n`` scaled JSC feature rows (float64 ``[n, 16]``) drawn without replacement from a test split.

    The default split is the shipped sample's standard split (:func:`jsc_split`). The rows are not quantized:
    pass them through the model's input quantizer before :func:`export_vectors`.
    """
    split = _sample_split() if split is None else split
    total = len(split.x_test)
    if not 1 <= n <= total:
        raise ValueError(f"physics_vectors: n must be in 1..{total} (test rows of {split.name!r}), got {n}")
    rows = np.random.RandomState(seed).choice(total, size=n, replace=False)
    return split.x_test[np.sort(rows)].astype(np.float64)
