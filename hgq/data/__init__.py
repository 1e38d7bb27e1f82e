"""Data for hgq: JSC jet-tagging sets (OpenML, generated sample, files), particle-level views of generated jets
and hardware test vectors.

The Pythia/FastJet generator lives in ``hgq.data.generate`` (optional ``physics`` extra, never imported here).
"""

from hgq.data.jsc import (
    CLASSES,
    FEATURES,
    GENERATED_NAME,
    OPENML_ID,
    OPENML_NAME,
    DatasetUnavailableError,
    JSCData,
    JSCSplit,
    default_cache_dir,
    jsc_split,
    load_jsc,
    save_dataset,
    train_test_indices,
)
from hgq.data.particles import PARTICLE_FEATURES, ParticleData, ParticleSplit, load_particles, particle_split
from hgq.data.vectors import export_vectors, load_vectors, physics_vectors

__all__ = [
    "CLASSES",
    "FEATURES",
    "GENERATED_NAME",
    "OPENML_ID",
    "OPENML_NAME",
    "PARTICLE_FEATURES",
    "DatasetUnavailableError",
    "JSCData",
    "JSCSplit",
    "ParticleData",
    "ParticleSplit",
    "default_cache_dir",
    "export_vectors",
    "jsc_split",
    "load_jsc",
    "load_particles",
    "load_vectors",
    "particle_split",
    "physics_vectors",
    "save_dataset",
    "train_test_indices",
]
