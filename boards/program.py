"""Program a built bitstream onto an open board (ULX3S ECP5, iCEBreaker iCE40) with openFPGALoader.

``find_bitstream(build_dir, board)`` is the bitstream ``hgq-hil build DESIGN --board B --out DIR`` left in ``DIR``
(the open flow's packer output: ``board_top.bit`` from ``ecppack`` for ECP5, ``board_top.bin`` from ``icepack``
for iCE40); ``program(bitstream, board)`` loads it with ``openFPGALoader -b NAME``, where ``NAME`` is the board
file's ``[program] openfpgaloader_board`` (``ulx3s``; ``ice40_generic`` for the iCEBreaker, openFPGALoader's
entry for the FT2232H SPI wiring most iCE40 boards share). For hardware-in-the-loop runs build with
``--wrapper uart``.

SRAM (volatile: gone at power-off) by default, ``--write-sram``; ``sram=False`` writes the configuration flash
(``--write-flash``, kept across power cycles). The mode is always passed explicitly: for SPI boards such as
``ice40_generic`` openFPGALoader would otherwise write the flash. On the iCEBreaker the FTDI reaches the iCE40's
configuration port (CRAM) only with the board's CRAM jumpers set; as shipped it reaches the SPI flash, so use
``sram=False`` there unless the jumpers are changed.

The tool: ``$OPENFPGALOADER`` (a path or a command name, as Amaranth's platforms read it), else
``openFPGALoader`` on ``PATH``; on Debian/Ubuntu ``apt-get install -y openfpgaloader`` (0.10.0 in bookworm has
every option used here). It needs the USB device of the board's programmer (udev rules or root), which is why
there is no YoWASP route as for yosys and nextpnr: their WebAssembly builds run sandboxed, without USB.

Errors, with the CLI's exit codes (:func:`boards.checks.exit_code`): the tool missing, failing or timing out is
a :class:`~boards.openflow.ToolError` (3; a failure carries the tail of its output); a missing bitstream is a
``FileNotFoundError`` naming the build command, a vendor board (Vivado/Quartus: use their programmer) or a bad
bitstream a ``ValueError`` (2).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import BoardConfig, ConfigError, get_board
from .openflow import TOP_NAME, ToolError

__all__ = ["ENV_VAR", "TOOL", "ProgramResult", "bitstream_name", "command", "find_bitstream", "find_tool", "program"]

ENV_VAR = "OPENFPGALOADER"
TOOL = "openFPGALoader"
INSTALL = "apt-get install -y openfpgaloader"

# family -> (the open flow's bitstream suffix, the suffixes openFPGALoader loads for it)
_BITSTREAMS = {"ecp5": (".bit", (".bit", ".bin")), "ice40": (".bin", (".bin",))}
_VENDOR_PROGRAMMER = {
    "vivado": "Vivado's Hardware Manager (open_hw_manager; program_hw_devices)",
    "quartus": "the Quartus Programmer (quartus_pgm)",
}


@dataclass
class ProgramResult:
    """What :func:`program` ran (or, with ``dry_run``, would run)."""

    board: str
    bitstream: Path
    command: list[str]
    mode: str  # "sram" or "flash"
    dry_run: bool
    returncode: int | None = None  # None: not run
    seconds: float = 0.0
    output: str = ""  # the tool's stdout + stderr

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "board": self.board,
            "bitstream": str(self.bitstream),
            "command": list(self.command),
            "mode": self.mode,
            "dry_run": self.dry_run,
            "returncode": self.returncode,
            "seconds": round(self.seconds, 3),
            "output": self.output,
        }


def _open_board(board: str | BoardConfig) -> BoardConfig:
    cfg = get_board(board)
    if not cfg.is_open:
        via = _VENDOR_PROGRAMMER.get(cfg.toolchain, f"the {cfg.vendor} programmer")
        raise ValueError(
            f"board {cfg.name!r} is a {cfg.toolchain} board: program it with {via}; hgq-hil program loads only "
            "the open boards (trellis/icestorm toolchains: ulx3s, icebreaker)"
        )
    if cfg.family not in _BITSTREAMS:
        raise ValueError(f"board {cfg.name!r}: family {cfg.family!r} has no known bitstream format to program")
    if not cfg.openfpgaloader_board:
        where = cfg.source or f"the {cfg.name} board file"
        raise ConfigError(
            f'board {cfg.name!r} does not say how to program it: add [program] openfpgaloader_board = "NAME" '
            f"to {where} (NAME from `openFPGALoader --list-boards`)"
        )
    return cfg


def _build_hint(cfg: BoardConfig, out: str = "DIR") -> str:
    return f"hgq-hil build DESIGN --board {cfg.name} --out {out} --wrapper uart"


def bitstream_name(board: str | BoardConfig) -> str:
    """The file name of the open flow's bitstream for ``board`` (``board_top.bit`` / ``board_top.bin``)."""
    return TOP_NAME + _BITSTREAMS[_open_board(board).family][0]


def find_bitstream(build_dir: str | os.PathLike[str], board: str | BoardConfig) -> Path:
    """The bitstream that ``hgq-hil build DESIGN --board B --out build_dir`` wrote for ``board``.

    ``FileNotFoundError`` (naming the build command) when the directory or the file is missing, e.g. after a
    plan-only build (``--no-run``); ``ValueError`` when the directory's ``result.json`` says it was built for
    another board, or ``board`` is not an open board."""
    cfg = _open_board(board)
    d = Path(build_dir)
    name = bitstream_name(cfg)
    if not d.is_dir():
        what = "is a file, not a build directory" if d.exists() else "does not exist"
        raise FileNotFoundError(f"build directory {str(d)!r} {what}; build the bitstream first: {_build_hint(cfg, d)}")
    built_for = _built_for(d)
    if built_for is not None and built_for != cfg.name:
        raise ValueError(
            f"{str(d)!r} holds a build for board {built_for!r}, not {cfg.name!r}; program it with --board "
            f"{built_for}, or build for {cfg.name}: {_build_hint(cfg)}"
        )
    bit = d / name
    if not bit.is_file():
        raise FileNotFoundError(
            f"no {name} in {str(d)!r} (a plan-only build, or a build that stopped before the packer); build it: "
            f"{_build_hint(cfg, d)}"
        )
    return bit


def _built_for(d: Path) -> str | None:
    """The board named by the build's ``result.json``, if readable."""
    try:
        board = json.loads((d / "result.json").read_text(encoding="utf-8")).get("board")
    except (OSError, ValueError, AttributeError):
        return None
    return board if isinstance(board, str) else None


def find_tool() -> str | None:
    """The openFPGALoader command: ``$OPENFPGALOADER`` (path or command), else ``openFPGALoader`` on ``PATH``."""
    env = os.environ.get(ENV_VAR)
    return shutil.which(env) if env else shutil.which(TOOL)


def _tool() -> str:
    found = find_tool()
    if found is not None:
        return found
    env = os.environ.get(ENV_VAR)
    if env:
        raise ToolError(f"${ENV_VAR}={env!r} is not an executable; point it at openFPGALoader or unset it")
    raise ToolError(
        f"{TOOL} not found on PATH: `{INSTALL}` (Debian/Ubuntu: a native build, which can reach the USB programmer) "
        f"or set ${ENV_VAR} to its path"
    )


def _check_bitstream(bitstream: str | os.PathLike[str], cfg: BoardConfig) -> Path:
    bit = Path(bitstream)
    if bit.is_dir():
        return find_bitstream(bit, cfg)
    if not bit.is_file():
        raise FileNotFoundError(f"bitstream {str(bit)!r} does not exist; build it: {_build_hint(cfg)}")
    usual, accepted = _BITSTREAMS[cfg.family]
    if bit.suffix.lower() not in accepted:
        raise ValueError(
            f"bitstream {str(bit)!r}: board {cfg.name!r} ({cfg.family}) takes a {' or '.join(accepted)} file "
            f"(the build writes {TOP_NAME}{usual})"
        )
    if bit.stat().st_size == 0:
        raise ValueError(f"bitstream {str(bit)!r} is empty; rebuild it: {_build_hint(cfg)}")
    return bit


def command(
    bitstream: str | os.PathLike[str],
    board: str | BoardConfig,
    *,
    cable: str | None = None,
    sram: bool = True,
    tool: str = TOOL,
) -> list[str]:
    """The openFPGALoader command line for ``bitstream`` on ``board`` (no checks of the file)."""
    cfg = _open_board(board)
    cmd = [tool, "-b", cfg.openfpgaloader_board]
    if cable:
        cmd += ["-c", cable]
    cmd += ["--write-sram" if sram else "--write-flash", str(bitstream)]
    return cmd


def program(
    bitstream: str | os.PathLike[str],
    board: str | BoardConfig,
    *,
    cable: str | None = None,
    dry_run: bool = False,
    sram: bool = True,
    timeout: float | None = 600.0,
) -> ProgramResult:
    """Load ``bitstream`` (a file, or a build directory: :func:`find_bitstream`) onto ``board`` with openFPGALoader.

    ``cable``: an openFPGALoader cable name (``-c``) in place of the board's own programmer; ``sram``: volatile
    SRAM load (default) or, ``False``, the configuration flash; ``dry_run``: check the board and bitstream and
    return the command without running it (the tool need not be installed; the command then names
    ``openFPGALoader``). Raises :class:`~boards.openflow.ToolError` when the tool is missing, fails (exit
    status and the tail of its output in the message) or exceeds ``timeout`` seconds."""
    cfg = _open_board(board)
    bit = _check_bitstream(bitstream, cfg)
    mode = "sram" if sram else "flash"
    if dry_run:
        cmd = command(bit, cfg, cable=cable, sram=sram, tool=find_tool() or TOOL)
        return ProgramResult(cfg.name, bit, cmd, mode, dry_run=True)
    cmd = command(bit, cfg, cable=cable, sram=sram, tool=_tool())
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{TOOL} did not finish in {timeout} s: {' '.join(cmd)}") from None
    except OSError as e:  # found but not runnable (permissions, bad interpreter)
        raise ToolError(f"{TOOL} ({cmd[0]}) could not be started: {e}") from None
    out = (p.stdout or "") + (p.stderr or "")
    if p.returncode != 0:
        tail = "\n".join(out.strip().splitlines()[-15:]) or "no output"
        hint = ""
        if "unable to open ftdi device" in out.lower() or "libusb" in out.lower():
            hint = "\n(is the board plugged in, and may this user open its USB device? see openFPGALoader's udev rules)"
        raise ToolError(
            f"{TOOL} failed (exit {p.returncode}) loading {bit.name} into {cfg.name}'s {mode}: {' '.join(cmd)}\n"
            f"{tail}{hint}"
        )
    dt = time.perf_counter() - t0
    return ProgramResult(cfg.name, bit, cmd, mode, dry_run=False, returncode=0, seconds=dt, output=out)
