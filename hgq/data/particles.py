"""Particle-level jets for set models (Deep Sets, interaction networks, transformers): per-constituent features of
the very jets whose 16 HLF features sit beside them, so a set model and the HLF MLP can be compared on the same jets.

Files come from ``python -m hgq.data.generate --particles N`` (arrays ``particles`` ``[N, n, 10]`` and ``mask``
``[N, n]`` next to ``X`` and ``y``, same rows) or are the shipped ``"sample"`` (5,000 jets, 16 particles each).
This module never imports Pythia or FastJet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hgq.data.jsc import CLASSES, JSCData, JSCSplit, Labelled, _load_npz, jsc_split

PARTICLE_FEATURES: tuple[str, ...] = (
    "ptrel", "erel", "log_ptrel", "log_erel", "etarel", "phirel", "delta_r", "charge", "log_pt", "log_e",
)  # fmt: skip
"""Per-particle feature names in column order (definitions in docs/particles.md and the generator's provenance)."""
PARTICLES_SAMPLE_FILE = Path(__file__).with_name("particles_sample.npz")


@dataclass(frozen=True, eq=False)
class ParticleData(Labelled):
    """Raw particle-level jets: ``P`` float32 ``[N, n, 10]`` (pT-descending, zero-padded), ``mask`` bool ``[N, n]``
    (True = real particle), ``X`` the 16 HLF features of the same jets, ``y`` int64 labels."""

    name: str
    P: np.ndarray
    mask: np.ndarray
    X: np.ndarray
    y: np.ndarray
    features: tuple[str, ...] = PARTICLE_FEATURES
    classes: tuple[str, ...] = CLASSES
    provenance: dict = field(default_factory=dict)

    def hlf(self) -> JSCData:
        """The HLF view of the same jets (for :func:`hgq.data.jsc_split` and the MLP)."""
        return JSCData(self.name, self.X, self.y, provenance=self.provenance)


@dataclass(frozen=True, eq=False)
class ParticleSplit:
    """Train/val/test parts of a :class:`ParticleData`: particles scaled per feature by the powers of two
    ``p_scale`` (train only), HLF ``x_*`` and indices from :func:`hgq.data.jsc_split` (kept as ``hlf``)."""

    name: str
    p_train: np.ndarray
    mask_train: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    p_val: np.ndarray
    mask_val: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    p_test: np.ndarray
    mask_test: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    p_scale: np.ndarray
    hlf: JSCSplit
    features: tuple[str, ...] = PARTICLE_FEATURES
    classes: tuple[str, ...] = CLASSES

    def transform(self, p: np.ndarray) -> np.ndarray:
        """Scale raw particles with this split's powers of two (exact in float32; zeros stay zero)."""
        return np.asarray(p, dtype=np.float32) * self.p_scale


def _pow2_scales(p: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per feature ``2**-ceil(log2(max |x|))`` over the real particles: scaled values lie in [-1, 1]."""
    peak = np.abs(p[mask]).max(axis=0) if mask.any() else np.zeros(p.shape[-1])
    exponent = np.where(peak > 0, -np.ceil(np.log2(np.where(peak > 0, peak, 1.0))), 0.0)
    return np.exp2(exponent).astype(np.float32)


def particle_split(
    data: ParticleData, seed: int = 42, *, test_size: float = 0.2, val_size: float = 0.0
) -> ParticleSplit:
    """Split with :func:`hgq.data.jsc_split` (same indices as the HLF split, ``random_state=seed``) and scale.

    HLF ``x_*`` are z-scored exactly as ``jsc_split`` does; particle features are multiplied by one power of two
    each, chosen from the training jets' real particles so that they lie in [-1, 1]: padded zeros stay zero and
    the mask keeps its meaning.
    """
    hlf = jsc_split(data.hlf(), test_size=test_size, random_state=seed, val_size=val_size)
    tr, va, te = hlf.train_index, hlf.val_index, hlf.test_index
    scale = _pow2_scales(data.P[tr], data.mask[tr])
    return ParticleSplit(
        data.name,
        data.P[tr] * scale, data.mask[tr], hlf.x_train, hlf.y_train,
        data.P[va] * scale, data.mask[va], hlf.x_val, hlf.y_val,
        data.P[te] * scale, data.mask[te], hlf.x_test, hlf.y_test,
        scale, hlf, data.features, data.classes,
    )  # fmt: skip


def load_particles(source: str | os.PathLike = "sample", n_particles: int | None = 16) -> ParticleData:
    """Load particle-level jets: the leading ``n_particles`` (None: all the file holds) and the HLF of the same jets.

    Args:
        source: ``"sample"`` (shipped, 16 particles) or a ``.npz`` written by ``hgq.data.generate`` (or the
            directory holding ``jsc_generated.npz``).
        n_particles: particles per jet to keep; more than the file holds is an error.
    """
    if isinstance(source, str) and source == "sample":
        path = PARTICLES_SAMPLE_FILE
    else:
        path = Path(source)
        if path.is_dir():
            path = path / "jsc_generated.npz"
        if not path.is_file():
            raise FileNotFoundError(f"load_particles: {str(source)!r} is neither 'sample' nor an existing .npz file")
    hlf = _load_npz(path)
    with np.load(path, allow_pickle=False) as f:
        missing = {"particles", "mask", "particle_features"} - set(f.files)
        if missing:
            raise ValueError(
                f"{path}: no particle-level arrays (missing {sorted(missing)}); make the set with "
                "`python -m hgq.data.generate ... --particles N`"
            )
        names = tuple(str(s) for s in f["particle_features"])
        if names != PARTICLE_FEATURES:
            raise ValueError(
                f"{path}: particle features {names} differ from {PARTICLE_FEATURES}; it was made by another "
                "hgq.data.generate: make the set again (`python -m hgq.data.generate ... --particles N`)"
            )
        held = f["particles"].shape[1] if f["particles"].ndim == 3 else 0
        n = held if n_particles is None else int(n_particles)
        if not 1 <= n <= held:
            raise ValueError(f"load_particles: asked for {n} particles per jet, but {path} holds {held}")
        p = f["particles"][:, :n].astype(np.float32)
        mask = f["mask"][:, :n].astype(bool)
    if (
        p.shape != (len(hlf), n, len(PARTICLE_FEATURES))
        or mask.shape != p.shape[:2]
        or not np.all(np.isfinite(p))
        or np.any(p[~mask])
        or np.any(mask[:, 1:] & ~mask[:, :-1])
    ):
        raise ValueError(
            f"{path}: particles must be finite [N, n, {len(PARTICLE_FEATURES)}] with the N of X, zero where mask is "
            f"False and the mask a prefix; got particles{p.shape}, mask{mask.shape}, X{hlf.X.shape}"
        )
    return ParticleData(hlf.name, p, mask, hlf.X, hlf.y, provenance=hlf.provenance)
