"""Board and part definitions, vendor build plans and open-source FPGA builds.

``boards.build(design_or_dir, board, out_dir, run=True) -> BuildResult`` and ``boards.list_boards()`` are the
entry points; a board is a TOML file in ``boards/configs/`` or on ``$HGQ_HIL_BOARDS``.
"""

from .build import build, load_core
from .config import BoardConfig, ConfigError, get_board, list_boards, load_config
from .reports import BuildResult, DesignTooLarge, ReportError

__all__ = [
    "BoardConfig",
    "BuildResult",
    "ConfigError",
    "DesignTooLarge",
    "ReportError",
    "build",
    "get_board",
    "list_boards",
    "load_config",
    "load_core",
]
