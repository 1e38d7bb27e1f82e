"""``boards.build``: one entry point for vendor plans and open-source builds."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import quartus, vivado
from .config import BoardConfig, get_board
from .openflow import open_build
from .reports import BuildResult, ReportError, write_result
from .uart import design_id, por_top_verilog

if TYPE_CHECKING:
    from hdl_gen.design_dir import DesignLike

__all__ = ["UART_TOP", "build", "load_core"]

#: module name of the UART harness top in vendor projects (:class:`boards.wrap.UartPorTop`)
UART_TOP = "hgq_uart_top"


def load_core(design_or_dir: DesignLike | str | os.PathLike) -> tuple[str, dict[str, Any], str]:
    """``(name, layout, verilog)`` from a design (:class:`hdl_gen.design_dir.DesignLike`: ``hdl_gen.Design`` or
    a directory's :class:`~hdl_gen.design_dir.DirDesign`) or a directory written by ``design.write(dir)``."""
    from hdl_gen.design_dir import DesignLike, read_core

    if isinstance(design_or_dir, str | os.PathLike):
        name, layout, texts = read_core(design_or_dir)  # checked against its manifest and the layout's keys
        return name, layout, texts[f"{name}.v"]
    if not isinstance(design_or_dir, DesignLike):
        raise TypeError(f"{design_or_dir!r} is not a Design (name, layout, latency, verilog) nor a design directory")
    layout = dict(design_or_dir.layout)
    if layout.get("name") != design_or_dir.name:
        raise ValueError(f"design name {design_or_dir.name!r} differs from layout name {layout.get('name')!r}")
    return design_or_dir.name, layout, design_or_dir.verilog()


def _vendor(
    cfg: BoardConfig, name: str, layout: Mapping[str, Any], verilog: str, out: Path, run: bool, io_delay: float,
    *, uart: bool = False, baud: int | None = None,
) -> BuildResult:  # fmt: skip
    from hdl_gen.design_dir import layout_text, write_design_files

    src = out / f"{name}.v"
    # the core with its manifest: the build directory is itself a design directory (load_core reads it back)
    write_design_files(out, name, {src.name: verilog, f"{name}.layout.json": layout_text(layout)})
    top, sources, pins = name, [src.name], None
    if uart:  # the core inside the UART harness, with a power-on reset: a full-chip build on the board's pins
        top, pins = UART_TOP, dict(cfg.pins)
        harness = por_top_verilog(layout, design_id(verilog), 1e9 / cfg.clock_period_ns,
                                  baud or cfg.uart_baud or 115200, name=top)  # fmt: skip
        (out / f"{top}.v").write_text(harness)
        sources.append(f"{top}.v")
    if cfg.toolchain == "vivado":
        plan = vivado.write_plan(cfg, top, sources, out, io_delay=io_delay, pins=pins)
        exe, env_var = "vivado", "VIVADO"
    else:
        plan = quartus.write_plan(cfg, top, sources, out, io_delay=io_delay, pins=pins)
        exe, env_var = "quartus_sh", "QUARTUS_SH"
    result = BuildResult(
        board=cfg.name,
        part=cfg.part,
        tool=cfg.toolchain,
        out_dir=out,
        files=[*(out / f for f in sources), out / f"{name}.layout.json", *plan],
        clock_mhz=cfg.clock_mhz,
    )
    result.available = {k: v for k, v in cfg.resources.items() if k in ("LUT", "FF", "CARRY", "BRAM", "DSP")}
    tool = os.environ.get(env_var) or shutil.which(exe)
    missing = [p for p in ("clk", "rx", "tx") if pins is not None and not pins.get(p)]
    if missing and run and tool:
        raise ValueError(f"board {cfg.name!r} has no package pins for {missing}: add them to a [pins] table in "
                         f"{cfg.source or 'its TOML'} (clk, rx, tx, standard) before a full-chip build")  # fmt: skip
    if missing:
        result.details["pins"] = f"set the package pins of {', '.join(missing)} in {plan[1].name} (placeholders)"
    if run and tool:
        t0 = time.perf_counter()
        p = subprocess.run(["sh", plan[-1].name], cwd=out, capture_output=True, text=True)
        result.seconds["vendor"] = time.perf_counter() - t0
        if p.returncode != 0:
            tail = "\n".join((p.stdout + p.stderr).strip().splitlines()[-15:])
            raise RuntimeError(f"{plan[-1].name} failed (exit {p.returncode}) in {out}:\n{tail}")
    elif run:
        result.note = f"{exe} not found (set ${env_var}): plan written; run {plan[-1].name} where it is installed"
    else:
        result.note = f"plan only: run {plan[-1].name}"
    if missing:
        result.note += f"; {result.details['pins']}"
    try:
        rep = (
            vivado.read_reports(out)
            if cfg.toolchain == "vivado"
            else quartus.read_reports(out, top, cfg.clock_period_ns)
        )
    except ReportError as e:
        raise ReportError(f"reports in {out} cannot be parsed: {e}") from None
    if rep is not None:
        result.ran = True
        result.utilization = rep["utilization"]
        result.available.update(rep["available"])
        result.fmax_mhz = rep["fmax_mhz"]
        result.timing_met = rep["timing_met"]
        result.note = ""
        write_result(result, out / "result.json")
    return result


def build(
    design_or_dir: Any,
    board: str | BoardConfig,
    out_dir: str | os.PathLike[str],
    *,
    run: bool = True,
    wrapper: str | None = None,
    io_delay: float = 0.0,
    seed: int = 1,
    check_size: bool = True,
    synth: str = "abc",
    baud: int | None = None,
) -> BuildResult:
    """Build a core for a board: an out-of-context Vivado/Quartus plan, or an open flow that runs here.

    ``design_or_dir``: a Design (``hdl_gen.convert``) or a directory written by ``design.write``; ``board``: a
    name from :func:`boards.list_boards` or a ``.toml`` path. Vendor plans run only when the tool is found
    (``$VIVADO``/``vivado``, ``$QUARTUS_SH``/``quartus_sh``); their reports are parsed when present in
    ``out_dir``; with ``wrapper="uart"`` the project is a full-chip build of the core inside the UART harness
    (:class:`~boards.wrap.UartPorTop`, top ``hgq_uart_top``) on the config's ``[pins]``, else the bare core out of
    context. Open boards (ECP5, iCE40) wrap the core (``wrapper``: ``"lfsr"``, the default, or ``"uart"``), then run
    yosys, nextpnr and the packer with ``run=True``; ``synth`` is their LUT mapper (``"abc"``: classic ABC, the
    default; ``"abc9"``: yosys' default, much slower on large cores; see :mod:`boards.openflow`). ``baud``: the
    UART harness's rate (default: the board's ``uart_baud``, else 115200)).
    """
    cfg = get_board(board)
    name, layout, verilog = load_core(design_or_dir)
    out = Path(out_dir)
    if wrapper not in (None, "lfsr", "uart"):
        raise ValueError(f"wrapper {wrapper!r} is not 'lfsr' or 'uart'")
    if cfg.is_open:
        return open_build(cfg, layout, verilog, out, run=run, wrapper=wrapper or "lfsr", seed=seed,
                          check_size=check_size, synth=synth, baud=baud)  # fmt: skip
    if wrapper == "lfsr":
        raise ValueError(f"board {cfg.name!r} is a vendor part: build the bare core (no --wrapper) or --wrapper uart")
    return _vendor(cfg, name, layout, verilog, out, run, io_delay, uart=wrapper == "uart", baud=baud)
