"""Test-wide setup: Keras on JAX (CPU) whatever ~/.keras/keras.json says, before any test imports Keras."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
