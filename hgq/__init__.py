"""High Granularity Quantization: per-parameter learned fixed-point formats for Keras 3 on JAX.

Importing ``hgq`` sets ``KERAS_BACKEND=jax`` (unless already set) before Keras is imported; it changes nothing
else in the process environment (JAX picks its platform as usual: set ``JAX_PLATFORMS=cpu`` yourself to keep a GPU
machine's accelerator out of a run). ``hgq.fixed`` is the one fixed-point arithmetic every package shares.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

__version__ = "0.1.0"


def load_model(path, *, compile: bool = False):
    """Load a ``.keras`` file holding hgq layers (registers them first); clear error when the file is missing."""
    from pathlib import Path

    import keras

    import hgq.layers  # noqa: F401  (registers the layers for deserialisation)

    if not Path(path).is_file():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist")
    return keras.models.load_model(path, compile=compile)


_SUBMODULES = ("calibrate", "callbacks", "data", "ebops", "fixed", "layers", "models", "pareto", "plots", "quantizer",
               "regularizers")  # fmt: skip


def __getattr__(name: str):
    """Lazy access to submodules (``hgq.models``) and ``hgq.trace_minmax``, so ``import hgq`` stays light."""
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f"hgq.{name}")
    if name == "trace_minmax":
        from hgq.calibrate import trace_minmax

        return trace_minmax
    raise AttributeError(f"module 'hgq' has no attribute {name!r}")
