"""cocotb hardware-in-the-loop verification of generated designs on Verilator and Icarus.

The names below load on first use (PEP 562): the simulator's own Python imports ``sim.tb_stream``, and with it
this package, at every start, and needs none of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.api import MODES, VerifyResult, cli_simulate, load_design_dir, verify
    from sim.runners import SIMULATORS, SimulatorError, SimulatorMissing, check_simulator
    from sim.shard import ShardedResult, cli_simulate_sharded, verify_sharded
    from sim.vectors import alternating_vectors, corner_vectors, load_vectors, random_vectors

_WHERE = {
    "sim.api": ("MODES", "VerifyResult", "cli_simulate", "load_design_dir", "verify"),
    "sim.runners": ("SIMULATORS", "SimulatorError", "SimulatorMissing", "check_simulator"),
    "sim.shard": ("ShardedResult", "cli_simulate_sharded", "verify_sharded"),
    "sim.vectors": ("alternating_vectors", "corner_vectors", "load_vectors", "random_vectors"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = [
    "MODES",
    "SIMULATORS",
    "ShardedResult",
    "SimulatorError",
    "SimulatorMissing",
    "VerifyResult",
    "alternating_vectors",
    "check_simulator",
    "cli_simulate",
    "cli_simulate_sharded",
    "corner_vectors",
    "load_design_dir",
    "load_vectors",
    "random_vectors",
    "verify",
    "verify_sharded",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
