"""cocotb hardware-in-the-loop verification of generated designs on Verilator and Icarus."""

from sim.api import MODES, VerifyResult, cli_simulate, load_design_dir, verify
from sim.runners import SIMULATORS, SimulatorError, SimulatorMissing, check_simulator
from sim.shard import ShardedResult, cli_simulate_sharded, verify_sharded
from sim.vectors import alternating_vectors, corner_vectors, load_vectors, random_vectors

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
