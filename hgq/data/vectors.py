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
    """The strict format: float64, ``[N >= 1, ...]``, finite."""
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


def read_vectors_file(path: str | os.PathLike, *, strict: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """The one reader of vectors files (:func:`load_vectors` here, ``sim.load_vectors`` against a layout).

    Checks what every reader needs, each failure a ``ValueError`` (``FileNotFoundError`` for a missing file)
    beginning ``vectors file <path>:``: a readable ``.npz`` of named arrays, an ``x``, numeric arrays, no NaN or
    infinite values, at least one row, and as many ``y`` rows as ``x`` rows. ``strict`` (the file format this
    module writes) also wants float64 arrays of at least two dimensions and nothing but ``x`` and ``y``; without it
    the arrays come back converted to float64 (``sim`` checks the shapes against the design's layout first).
    """
    where = f"vectors file {path}"
    fix = "write it with hgq.data.export_vectors (or np.savez(f, x=x, y=y))"
    try:
        f = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{where} does not exist; {fix}") from None
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{where}: not a readable .npz ({type(e).__name__}: {e}); {fix}") from None
    if not hasattr(f, "files"):
        raise ValueError(f"{where}: one array, not an .npz of named arrays x (and y) (a bare .npy); {fix}")
    try:
        with f:
            keys = set(f.files)
            if "x" not in keys:
                raise ValueError(f"{where}: no 'x' array (keys: {sorted(keys)}); see docs/interfaces.md 'Vectors file'")
            if strict and keys - _KEYS:
                raise ValueError(f"{where}: unexpected arrays {sorted(keys - _KEYS)}; only 'x' and 'y' are allowed")
            arrays = {k: f[k] for k in ("x", "y") if k in keys}
    except (OSError, EOFError) as err:
        raise ValueError(f"{where}: an array cannot be read ({err}); {fix}") from None
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise ValueError(f"{where}: {k!r} has dtype {a.dtype}; expected numbers (float64)")
        if strict:
            _check(k, a, where)
    return arrays["x"], arrays.get("y")


def check_vector_rows(x: np.ndarray, y: np.ndarray | None, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` and ``y`` as float64 with no NaN or infinite values, at least one row, and matching row counts."""
    out = []
    for k, a in (("x", x), ("y", y)):
        if a is None:
            out.append(None)
            continue
        a = a.astype(np.float64)
        bad = ~np.isfinite(a)
        if bad.any():
            r = int(np.argwhere(bad)[0][0])
            raise ValueError(f"{where}: {k!r} has {int(bad.sum())} NaN or infinite value(s), first in row {r}")
        out.append(a)
    x, y = out
    if len(x) == 0:
        raise ValueError(f"{where}: 'x' holds no vectors (0 rows)")
    if y is not None and len(y) != len(x):
        raise ValueError(f"{where}: 'y' has {len(y)} rows but 'x' has {len(x)}")
    return x, y


def load_vectors(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Read and validate a vectors file; returns ``(x, y)`` with ``y`` None when the file has no outputs."""
    x, y = read_vectors_file(path, strict=True)
    return check_vector_rows(x, y, f"vectors file {path}")


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
