"""JSC HLF jet-tagging data sets: 16 high-level jet-substructure features, 5 classes (g, q, w, z, t).

Three data sets, each carrying its ``name`` and never mixed: the OpenML copy (id 42468, ``hls4ml_lhc_jets_hlf``,
830,000 jets, downloaded once and cached), files you give by path (for example the output of
``python -m hgq.data.generate``), and ``"sample"``: a class-balanced JSC-like set made by that generator
(Pythia 8 + FastJet) and shipped inside this package, so everything runs offline.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FEATURES: tuple[str, ...] = (
    "j_zlogz", "j_c1_b0_mmdt", "j_c1_b1_mmdt", "j_c1_b2_mmdt", "j_c2_b1_mmdt", "j_c2_b2_mmdt", "j_d2_b1_mmdt",
    "j_d2_b2_mmdt", "j_d2_a1_b1_mmdt", "j_d2_a1_b2_mmdt", "j_m2_b1_mmdt", "j_m2_b2_mmdt", "j_n2_b1_mmdt",
    "j_n2_b2_mmdt", "j_mass_mmdt", "j_multiplicity",
)  # fmt: skip
"""The 16 JSC HLF feature names in the standard column order."""
CLASSES: tuple[str, ...] = ("g", "q", "w", "z", "t")
"""Class names; label ``i`` is ``CLASSES[i]`` (g=0, q=1, w=2, z=3, t=4)."""
OPENML_ID = 42468
OPENML_NAME = "jsc-openml-42468"
GENERATED_NAME = "jsc-pythia8-generated"
SAMPLE_FILE = Path(__file__).with_name("jsc_sample.npz")

_OFFLINE_HINT = (
    "offline alternatives: load_jsc('sample') (JSC-like sample shipped with hgq) or generate a set with "
    "`python -m hgq.data.generate --per-class N --out DIR` (pip install 'hgq-hil[physics]') and load_jsc('DIR')"
)


class DatasetUnavailableError(RuntimeError):
    """A data set cannot be obtained here (no network route, missing optional package)."""


class Labelled:
    """Jets with labels ``y`` and ``classes`` names: their count and the count per class."""

    y: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.y)

    def counts(self) -> dict[str, int]:
        """Jets per class name."""
        return {c: int(np.sum(self.y == i)) for i, c in enumerate(self.classes)}


@dataclass(frozen=True, eq=False)
class JSCData(Labelled):
    """A raw (unscaled) JSC data set: ``X`` float ``[N, 16]`` in FEATURES order, ``y`` int64 labels ``[N]``."""

    name: str
    X: np.ndarray
    y: np.ndarray
    features: tuple[str, ...] = FEATURES
    classes: tuple[str, ...] = CLASSES
    provenance: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class JSCSplit:
    """Split of one data set: train/test (80/20 standard) and optionally a validation part, features z-scored with
    the train mean and std. ``x_val``/``y_val`` are empty unless :func:`jsc_split` was given ``val_size``."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    train_index: np.ndarray
    test_index: np.ndarray
    features: tuple[str, ...] = FEATURES
    classes: tuple[str, ...] = CLASSES
    x_val: np.ndarray = field(default_factory=lambda: np.empty((0, len(FEATURES)), np.float32))
    y_val: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    val_index: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Scale raw features with this split's train statistics."""
        return ((np.asarray(x, dtype=np.float64) - self.mean) / self.scale).astype(np.float32)


def train_test_indices(n: int, test_size: float = 0.2, random_state: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``sklearn.model_selection.train_test_split(test_size=..., random_state=...)``, in plain numpy."""
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    n_test = int(np.ceil(test_size * n))
    if n_test < 1 or n - n_test < 1:
        raise ValueError(f"cannot split {n} samples with test_size={test_size}: both parts must be non-empty")
    perm = np.random.RandomState(random_state).permutation(n)
    return perm[n_test:], perm[:n_test]


def jsc_split(data: JSCData, *, test_size: float = 0.2, random_state: int = 42, val_size: float = 0.0) -> JSCSplit:
    """The standard JSC split: ``train_test_split(test_size=0.2, random_state=42)``, StandardScaler fitted on train.

    Same indices as scikit-learn's (no stratification); scaling is mean/std (ddof=0) of the train part only,
    a zero std scaled by 1. Scaled arrays are float32. ``val_size > 0`` (a fraction of the whole set) moves that
    many jets from the train part's head (the permutation's next ones after the test jets) to ``x_val``/``y_val``:
    ``test_size=0.2, val_size=0.1`` is a 70/10/20 split.
    """
    train, test = train_test_indices(len(data.y), test_size, random_state)
    val = train[:0]
    if val_size:
        n_val = int(round(val_size * len(data.y)))
        if not 0 < n_val < len(train):
            raise ValueError(f"val_size={val_size} leaves no validation or no training jets of {len(data.y)}")
        val, train = train[:n_val], train[n_val:]
    x = np.asarray(data.X, dtype=np.float64)
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    scale = np.where(std > 0, std, 1.0)
    split = JSCSplit(data.name, np.empty(0), data.y[train], np.empty(0), data.y[test], mean, scale, train, test,
                     data.features, data.classes)  # fmt: skip
    object.__setattr__(split, "x_train", split.transform(x[train]))
    object.__setattr__(split, "x_test", split.transform(x[test]))
    object.__setattr__(split, "x_val", split.transform(x[val]))
    object.__setattr__(split, "y_val", data.y[val])
    object.__setattr__(split, "val_index", val)
    return split


def default_cache_dir() -> Path:
    """``$HGQ_DATA_DIR`` or ``~/.cache/hgq-hil``."""
    return Path(os.environ.get("HGQ_DATA_DIR", Path.home() / ".cache" / "hgq-hil"))


def load_jsc(source: str | os.PathLike = "sample", *, cache_dir: str | os.PathLike | None = None) -> JSCData:
    """Load a JSC data set (raw features; use :func:`jsc_split` for the standard split and scaling).

    Args:
        source: ``"sample"`` (shipped generated sample, offline), ``"openml"`` (OpenML 42468, downloaded once
            with scikit-learn and cached as ``.npz`` in ``cache_dir``), or a path to a ``.npz`` written by
            ``hgq.data.generate`` (or a directory holding ``jsc_generated.npz``).
        cache_dir: where the OpenML copy is cached; default :func:`default_cache_dir`.
    """
    if isinstance(source, str) and source == "sample":
        return _load_npz(SAMPLE_FILE)
    if isinstance(source, str) and source == "openml":
        return _load_openml(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    path = Path(source)
    if path.is_dir():
        path = path / "jsc_generated.npz"
    if not path.is_file():
        raise FileNotFoundError(f"load_jsc: {str(source)!r} is neither 'sample', 'openml' nor an existing .npz file")
    return _load_npz(path)


def _load_npz(path: Path) -> JSCData:
    with np.load(path, allow_pickle=False) as f:
        missing = {"X", "y", "name", "features", "classes"} - set(f.files)
        if missing:
            raise ValueError(f"{path}: not a JSC data file, missing {sorted(missing)} (write it with save_dataset)")
        features, classes = tuple(str(s) for s in f["features"]), tuple(str(s) for s in f["classes"])
        if features != FEATURES or classes != CLASSES:
            raise ValueError(f"{path}: features/classes {features}/{classes} differ from the JSC standard order")
        x, y, name = f["X"], f["y"].astype(np.int64), str(f["name"])
    if (
        x.dtype.kind != "f"
        or x.shape != (len(y), len(FEATURES))
        or not np.all(np.isfinite(x))
        or y.min() < 0
        or y.max() >= len(CLASSES)
    ):
        raise ValueError(f"{path}: X must be finite [N, 16] and y labels in 0..4, got X{x.shape}, y{y.shape}")
    meta = path.with_suffix(".json")
    provenance = json.loads(meta.read_text()) if meta.is_file() else {}
    return JSCData(name, x, y, provenance=provenance)


def _load_openml(cache_dir: Path) -> JSCData:
    cached = cache_dir / f"jsc_openml_{OPENML_ID}.npz"
    if cached.is_file():
        return _load_npz(cached)
    try:
        from sklearn.datasets import fetch_openml
    except ImportError as e:
        raise DatasetUnavailableError(f"load_jsc('openml') needs scikit-learn ({e}); {_OFFLINE_HINT}") from e
    try:
        bunch = fetch_openml(data_id=OPENML_ID, as_frame=False, parser="liac-arff", data_home=str(cache_dir))
    except Exception as e:  # network errors come as URLError, OSError, HTTPError, ...
        raise DatasetUnavailableError(
            f"cannot download OpenML dataset {OPENML_ID} (hls4ml_lhc_jets_hlf): {type(e).__name__}: {e}; "
            + _OFFLINE_HINT
        ) from e
    names = list(bunch.feature_names)
    missing = [f for f in FEATURES if f not in names]
    if missing:
        raise ValueError(f"OpenML dataset {OPENML_ID} lacks the JSC features {missing}")
    x = np.asarray(bunch.data, dtype=np.float64)[:, [names.index(f) for f in FEATURES]]
    y = np.array([CLASSES.index(str(t).lower()) for t in bunch.target], dtype=np.int64)
    cache_dir.mkdir(parents=True, exist_ok=True)
    save_dataset(
        cached, x, y, {"name": OPENML_NAME, "source": f"https://www.openml.org/d/{OPENML_ID}"}, dtype=np.float64
    )
    return _load_npz(cached)


def save_dataset(
    path: str | os.PathLike,
    x: np.ndarray,
    y: np.ndarray,
    provenance: dict,
    *,
    dtype=np.float32,
    arrays: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write a data set :func:`load_jsc` reads: ``X`` (``dtype``), ``y`` (uint8), names; ``<stem>.json`` beside it.

    ``provenance`` must hold the data set's ``name``; it is written as the JSON record. ``arrays`` are stored as
    they are beside those (e.g. ``particles``, ``mask``, ``particle_features`` for :mod:`hgq.data.particles`).
    """
    if "name" not in provenance:
        raise ValueError("save_dataset: provenance needs a 'name' (data sets are never mixed)")
    arrays = dict(arrays or {})
    clash = {"X", "y", "name", "features", "classes"} & set(arrays)
    if clash:
        raise ValueError(f"save_dataset: extra arrays may not be named {sorted(clash)}")
    path = Path(path)
    np.savez_compressed(
        path,
        **arrays,
        X=np.asarray(x, dtype=dtype),
        y=np.asarray(y, dtype=np.uint8),
        name=np.array(provenance["name"]),
        features=np.array(FEATURES),
        classes=np.array(CLASSES),
    )
    path.with_suffix(".json").write_text(json.dumps(provenance, indent=1) + "\n")
    return path
