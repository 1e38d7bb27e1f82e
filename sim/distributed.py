"""Ray for hgq-hil's parallel work (``hgq-hil sweep`` trials, sharded simulations): one way to connect.

:func:`ray_session` starts a local Ray instance on this machine's cores (nothing to start by hand) or connects to
an existing cluster (``address="ray://host:10001"``, ``"host:6379"`` or ``"auto"``), and shuts down what it started.
Workers run with XLA's Eigen, BLAS and OpenMP pools at one thread (:data:`WORKER_ENV`; XLA's runtime still keeps a
few threads: a training trial alone uses about 1.4 cores), so ``workers`` tasks share the
cores instead of fighting over them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sim.runners import patched_environ

__all__ = ["WORKER_ENV", "import_ray", "ray_session"]

#: environment of every worker: one compute thread each (JAX/XLA, BLAS, OpenMP), Keras on JAX on the CPU
WORKER_ENV = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "KERAS_BACKEND": "jax",
    "JAX_PLATFORMS": "cpu",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ImportError("parallel runs need Ray: pip install 'hgq-hil[sweep]'") from None
    return ray


@contextmanager
def ray_session(address: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A connected ``ray`` module: a new local instance with ``workers`` CPUs (default: all cores) when
    ``address`` is None, else the cluster at ``address``; a session this call started is shut down on exit."""
    ray = import_ray()
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    started = False
    if not ray.is_initialized():
        cache = os.path.join(os.path.expanduser("~"), ".cache", "hgq-hil", "jax")  # compiled steps shared by trials
        jax_cache = {"JAX_COMPILATION_CACHE_DIR": cache, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
        env = {**WORKER_ENV, **jax_cache, "PYTHONPATH": os.pathsep.join(_project_paths())}
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None:  # "local": a new instance, never a cluster someone started here with `ray start`
            kw.update(address="local", num_cpus=workers or os.cpu_count() or 1)
        else:  # a cluster's workers get the environment through Ray's runtime_env
            kw.update(address=address, runtime_env={"env_vars": env})
        try:
            if address is None:  # the local processes inherit it: workers start ~0.8 s sooner than via runtime_env
                with patched_environ(env):
                    ray.init(**kw)
            else:
                ray.init(**kw)
        except ConnectionError as err:
            msg = f"cannot reach the Ray cluster at {address!r}: {err}; start one with `ray start --head`"
            raise ConnectionError(msg + " or leave --address out for a local instance") from None
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _project_paths() -> list[str]:
    """Where this project's packages are importable from (workers of an existing cluster need the path)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return [root, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
