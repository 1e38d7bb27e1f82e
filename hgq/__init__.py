"""High Granularity Quantization: per-parameter learned fixed-point formats for Keras 3 on JAX.

Importing ``hgq`` sets ``KERAS_BACKEND=jax`` (unless already set) and ``JAX_PLATFORMS=cpu`` (unless set),
before Keras is imported. ``hgq.fixed`` is the one fixed-point arithmetic every package shares.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

__version__ = "0.1.0"
