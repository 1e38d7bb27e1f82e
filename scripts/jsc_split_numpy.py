"""``hgq.data.jsc_split(load_jsc('sample'))`` in numpy alone, for fixture scripts that run in other virtualenvs
(HGQ2's, Brevitas') where hgq-hil cannot be imported: the same rows, split and scaling."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE = Path(__file__).resolve().parents[1] / "hgq" / "data" / "jsc_sample.npz"


def load_split(path: Path = SAMPLE, test_size: float = 0.2, random_state: int = 42):
    """Returns ``(x_train, y_train, x_test, y_test, test_index, mean, scale)`` (x float32, standardised on train)."""
    with np.load(path, allow_pickle=False) as f:
        x, y = np.asarray(f["X"], np.float64), f["y"].astype(np.int64)
    n = len(y)
    n_test = int(np.ceil(test_size * n))
    perm = np.random.RandomState(random_state).permutation(n)
    train, test = perm[n_test:], perm[:n_test]
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    scale = np.where(std > 0, std, 1.0)

    def tr(a):
        return ((a - mean) / scale).astype(np.float32)

    return tr(x[train]), y[train], tr(x[test]), y[test], test, mean, scale
