"""Declarative board configs: one small TOML file per board, found on a search path.

A config names the part (device, package, speed grade), the target clock, the I/O standard, the toolchain
(``vivado``, ``quartus``, ``trellis`` for ECP5, ``icestorm`` for iCE40), the flow (``ooc``: out-of-context
vendor plan, no pins; ``board``: an Amaranth platform with pins), the part's resources (for the "design too
large" check) and optionally the model it builds by default (``[design] model``: a checkpoint shipped in
``hgq/data`` or a ``.keras`` path next to the file; else the shipped jet tagger). Adding a board is adding a file:
the built-in ``boards/configs/`` directory is searched first, then every directory on ``$HGQ_HIL_BOARDS``
(``os.pathsep``-separated), then ``search_path``; a later file with the same ``name`` replaces an earlier one. A
broken file outside the built-in directory is skipped with a :class:`BoardConfigWarning` (the other boards stay
usable); asking for it by name raises its error.
"""

from __future__ import annotations

import os
import tomllib
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BUILTIN_DIR",
    "ENV_VAR",
    "BoardConfig",
    "BoardConfigWarning",
    "ConfigError",
    "get_board",
    "list_boards",
    "load_config",
    "scan_boards",
]

BUILTIN_DIR = Path(__file__).parent / "configs"
#: the shipped checkpoints (``hgq/data/<name>.keras``) that ``[design] model = "<name>"`` names
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "hgq" / "data"
ENV_VAR = "HGQ_HIL_BOARDS"

TOOLCHAINS = {"vivado": "amd", "quartus": "intel", "trellis": "lattice", "icestorm": "lattice"}
FLOWS = ("ooc", "board")
RESOURCE_KEYS = ("LUT", "FF", "CARRY", "BRAM", "DSP", "URAM")
_TOP_KEYS = {
    "name": str,
    "description": str,
    "vendor": str,
    "family": str,
    "toolchain": str,
    "flow": str,
    "platform": str,
    "part": str,
    "device": str,
    "package": str,
    "speed": str,
    "clock": dict,
    "io": dict,
    "resources": dict,
    "program": dict,
    "pins": dict,
    "design": dict,
}
_REQUIRED = (
    "name",
    "vendor",
    "family",
    "toolchain",
    "flow",
    "part",
    "device",
    "package",
    "speed",
    "clock",
    "resources",
)
_CLOCK_KEYS = {"port": str, "resource": str, "period_ns": (int, float), "mhz": (int, float)}
_IO_KEYS = {"standard": str, "uart_baud": int}
_PROGRAM_KEYS = {"openfpgaloader_board": str}  # [program]: how boards.program loads a bitstream
# [pins] (vendor boards): package pins of the UART harness top (boards.wrap.UartPorTop) and their I/O standard
_PINS_KEYS = {"clk": str, "rx": str, "tx": str, "standard": str}
# [design]: the model `hgq-hil build --board B` builds when given none (boards.pipeline.board_design)
_DESIGN_KEYS = {"model": str}


class ConfigError(ValueError):
    """A board config file is missing, malformed or inconsistent."""


class BoardConfigWarning(UserWarning):
    """A board config file on the search path was skipped because it is broken."""


@dataclass(frozen=True)
class BoardConfig:
    """One board or part: what a build needs to know, nothing about the model."""

    name: str
    vendor: str
    family: str
    toolchain: str
    flow: str
    part: str
    device: str
    package: str
    speed: str
    clock_period_ns: float
    resources: Mapping[str, int]
    description: str = ""
    platform: str | None = None
    clock_port: str = "clk"
    clock_resource: str | None = None
    io_standard: str | None = None
    uart_baud: int | None = None
    openfpgaloader_board: str | None = None  # [program] openfpgaloader_board: the board name for -b
    pins: Mapping[str, str] = field(default_factory=dict)  # [pins]: clk, rx, tx (+ standard) for a UART top
    default_model: Path | None = None  # [design] model, resolved: the checkpoint built by default (None: shipped)
    source: Path | None = field(default=None, compare=False)

    @property
    def clock_mhz(self) -> float:
        """Target clock frequency in MHz."""
        return 1000.0 / self.clock_period_ns

    @property
    def is_open(self) -> bool:
        """True when the flow runs here with the open-source tools (yosys + nextpnr)."""
        return self.toolchain in ("trellis", "icestorm")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {
            "name": self.name,
            "description": self.description,
            "vendor": self.vendor,
            "family": self.family,
            "toolchain": self.toolchain,
            "flow": self.flow,
            "part": self.part,
            "clock_period_ns": self.clock_period_ns,
            "clock_mhz": round(self.clock_mhz, 6),
            "io_standard": self.io_standard,
            "resources": dict(self.resources),
            "default_model": str(self.default_model) if self.default_model else None,
            "source": str(self.source) if self.source else None,
        }


def _check_table(where: str, table: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    for key, value in table.items():
        if key not in spec:
            raise ConfigError(f"{where}: unknown key {key!r}; expected one of {sorted(spec)}")
        if isinstance(value, bool) or not isinstance(value, spec[key]):
            raise ConfigError(f"{where}: key {key!r} has {type(value).__name__} {value!r}; expected {spec[key]}")


def _from_dict(data: Mapping[str, Any], where: str, source: Path | None = None) -> BoardConfig:
    _check_table(where, data, _TOP_KEYS)
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {missing}")
    toolchain, flow = data["toolchain"], data["flow"]
    if toolchain not in TOOLCHAINS:
        raise ConfigError(f"{where}: toolchain {toolchain!r} is not one of {sorted(TOOLCHAINS)}")
    if data["vendor"] != TOOLCHAINS[toolchain]:
        raise ConfigError(
            f"{where}: toolchain {toolchain!r} is for vendor {TOOLCHAINS[toolchain]!r}, not {data['vendor']!r}"
        )
    if flow not in FLOWS:
        raise ConfigError(f"{where}: flow {flow!r} is not one of {list(FLOWS)}")
    if flow == "board" and "platform" not in data:
        raise ConfigError(f"{where}: flow 'board' needs platform = \"module:Class\" (an Amaranth platform)")
    if toolchain in ("trellis", "icestorm") and flow != "board":
        raise ConfigError(f"{where}: the open toolchain {toolchain!r} needs flow = 'board' and a platform")
    if toolchain == "vivado" and data["part"] != f"{data['device']}-{data['package']}-{data['speed']}":
        raise ConfigError(f"{where}: part {data['part']!r} is not device-package-speed; fix one of them")
    if toolchain == "quartus" and data["part"] != f"{data['device']}{data['package']}{data['speed']}":
        raise ConfigError(f"{where}: part {data['part']!r} is not device+package+speed; fix one of them")

    clock = data["clock"]
    _check_table(f"{where} [clock]", clock, _CLOCK_KEYS)
    if ("period_ns" in clock) == ("mhz" in clock):
        raise ConfigError(f"{where} [clock]: give exactly one of period_ns or mhz")
    period = float(clock["period_ns"]) if "period_ns" in clock else 1000.0 / float(clock["mhz"])
    if not period > 0:
        raise ConfigError(f"{where} [clock]: the clock period must be positive, got {period!r}")
    if flow == "board" and "resource" not in clock:
        raise ConfigError(f"{where} [clock]: flow 'board' needs resource = the platform's clock resource name")

    io = data.get("io", {})
    _check_table(f"{where} [io]", io, _IO_KEYS)
    _check_table(f"{where} [program]", data.get("program", {}), _PROGRAM_KEYS)
    pins = data.get("pins", {})
    _check_table(f"{where} [pins]", pins, _PINS_KEYS)
    if pins and not {"clk", "rx", "tx"} <= set(pins):
        raise ConfigError(f"{where} [pins]: give all of clk, rx and tx (package pin names), got {sorted(pins)}")

    design = data.get("design", {})
    _check_table(f"{where} [design]", design, _DESIGN_KEYS)
    default_model = _design_model(design["model"], where, source) if "model" in design else None

    res = data["resources"]
    _check_table(f"{where} [resources]", res, dict.fromkeys(RESOURCE_KEYS, int))
    for key in ("LUT", "FF"):
        if key not in res:
            raise ConfigError(f"{where} [resources]: missing {key} (the part's total, for the size check)")
    if any(v < 0 for v in res.values()):
        raise ConfigError(f"{where} [resources]: counts must be non-negative")

    return BoardConfig(
        name=data["name"],
        vendor=data["vendor"],
        family=data["family"],
        toolchain=toolchain,
        flow=flow,
        part=data["part"],
        device=data["device"],
        package=data["package"],
        speed=data["speed"],
        clock_period_ns=period,
        resources=dict(res),
        description=data.get("description", ""),
        platform=data.get("platform"),
        clock_port=clock.get("port", "clk"),
        clock_resource=clock.get("resource"),
        io_standard=io.get("standard"),
        uart_baud=io.get("uart_baud"),
        openfpgaloader_board=data.get("program", {}).get("openfpgaloader_board"),
        pins=dict(pins),
        default_model=default_model,
        source=source,
    )


def _design_model(value: str, where: str, source: Path | None) -> Path:
    """``[design] model``: a shipped checkpoint name (``jet_tagger_up5k``, ``.keras`` optional) in
    :data:`SHIPPED_DIR`, or a path (one with a ``/``) relative to the config file; it must exist."""
    v = value.strip()
    if not v:
        raise ConfigError(f"{where} [design]: model is empty; name a checkpoint in {SHIPPED_DIR} or a .keras path")
    if "/" in v or os.sep in v:
        path = Path(v).expanduser()
        if not path.is_absolute() and source is not None:
            path = source.parent / path
    else:
        path = SHIPPED_DIR / (v if v.endswith(".keras") else f"{v}.keras")
    if not path.is_file():
        shipped = ", ".join(sorted(f.stem for f in SHIPPED_DIR.glob("*.keras"))) or "none"
        raise ConfigError(
            f"{where} [design]: model {value!r} is not a file ({path}); name a shipped checkpoint ({shipped}) or a "
            ".keras path relative to the config file"
        )
    return path


def load_config(path: str | os.PathLike[str]) -> BoardConfig:
    """Read and validate one board TOML file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"board config {str(path)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"board config {str(path)!r} is not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"board config {str(path)!r} cannot be read: {e}") from None
    cfg = _from_dict(data, str(path), path)
    if cfg.name != path.stem:
        raise ConfigError(f"{path}: name {cfg.name!r} must match the file name {path.stem!r}")
    return cfg


def search_dirs(search_path: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    """The directories searched for ``*.toml`` board configs, in order (later wins)."""
    dirs = [BUILTIN_DIR]
    dirs += [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    dirs += [Path(p) for p in search_path]
    return dirs


def scan_boards(search_path: Iterable[str | os.PathLike[str]] = ()) -> tuple[list[BoardConfig], dict[str, ConfigError]]:
    """``(boards sorted by name, {file stem: error} of the broken files outside the built-in directory)``; a
    broken built-in config (a packaging bug) raises."""
    found: dict[str, BoardConfig] = {}
    broken: dict[str, ConfigError] = {}
    for d in search_dirs(search_path):
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.toml")):
            try:
                cfg = load_config(f)
            except ConfigError as err:
                if d == BUILTIN_DIR:
                    raise
                broken[f.stem] = err
                continue
            found[cfg.name] = cfg
            broken.pop(cfg.name, None)
    return [found[k] for k in sorted(found)], broken


def list_boards(search_path: Iterable[str | os.PathLike[str]] = ()) -> list[BoardConfig]:
    """All known boards, sorted by name (built-ins, then ``$HGQ_HIL_BOARDS``, then ``search_path``); each
    broken file is skipped with a :class:`BoardConfigWarning` naming it."""
    boards, broken = scan_boards(search_path)
    for err in broken.values():
        warnings.warn(f"skipped a broken board config: {err}", BoardConfigWarning, stacklevel=2)
    return boards


def get_board(board: str | BoardConfig, search_path: Iterable[str | os.PathLike[str]] = ()) -> BoardConfig:
    """A board by name (or a path to a ``.toml`` file; a :class:`BoardConfig` is returned as is)."""
    if isinstance(board, BoardConfig):
        return board
    if board.endswith(".toml"):
        return load_config(board)
    found, broken = scan_boards(search_path)
    boards = {b.name: b for b in found}
    if board not in boards and board in broken:
        raise broken[board]
    if board not in boards:
        raise ConfigError(
            f"unknown board {board!r}; known: {', '.join(sorted(boards))}; add <name>.toml to "
            f"{BUILTIN_DIR} or to a directory on ${ENV_VAR}"
        )
    return boards[board]


def check_vendor_plan(cfg: BoardConfig, toolchain: str, io_delay: float) -> None:
    """Raise unless ``cfg`` uses ``toolchain`` and ``io_delay`` is a fraction of the period in [0, 1)."""
    if cfg.toolchain != toolchain:
        raise ValueError(f"board {cfg.name!r} uses {cfg.toolchain!r}, not {toolchain}")
    if not 0.0 <= io_delay < 1.0:
        raise ValueError(f"io_delay is a fraction of the clock period in [0, 1), got {io_delay!r}")
