"""Report parsers (Vivado, Quartus, nextpnr, yosys) into one utilization dict, and the build result.

Every parser returns the same keys: ``utilization`` maps ``LUT``, ``FF``, ``CARRY``, ``BRAM``, ``DSP`` to a
count (``None`` where the tool does not report it), ``available`` maps them to the part's totals where the
report gives them, and timing parsers give ``wns_ns``/``fmax_mhz``. On Intel parts ``LUT`` counts ALMs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdl_gen.resources import stat_cells

__all__ = [
    "UTIL_KEYS",
    "BuildResult",
    "DesignTooLarge",
    "ReportError",
    "check_fits",
    "too_large",
    "parse_nextpnr_log_utilization",
    "parse_nextpnr_report",
    "parse_quartus_fit_summary",
    "parse_quartus_fmax",
    "parse_quartus_sta_summary",
    "parse_vivado_timing_summary",
    "parse_vivado_utilization",
    "parse_yosys_stat",
]

UTIL_KEYS = ("LUT", "FF", "CARRY", "BRAM", "DSP")


class ReportError(ValueError):
    """A report file does not have the expected format."""


class DesignTooLarge(RuntimeError):
    """The design needs more of a resource than the part has."""


def _empty() -> dict[str, int | None]:
    return dict.fromkeys(UTIL_KEYS)


def _int(s: str) -> int:
    return int(s.replace(",", "").strip())


# ---------------------------------------------------------------- Vivado

_VIVADO_ROWS = {
    "LUT": ("CLB LUTs", "Slice LUTs"),
    "FF": ("CLB Registers", "Slice Registers"),
    "CARRY": ("CARRY8", "CARRY4"),
    "BRAM": ("Block RAM Tile",),
    "DSP": ("DSPs",),
    "URAM": ("URAM",),
}


def parse_vivado_utilization(text: str) -> dict[str, Any]:
    """``report_utilization`` text → ``{"utilization", "available", "part"}`` (first table row of each name)."""
    used, avail = _empty(), {}
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == "Site Type":
            header = cells
            continue
        if header is None or len(cells) != len(header):
            continue
        for key, names in _VIVADO_ROWS.items():
            if cells[0] in names and used.get(key) is None:
                used[key] = _int(cells[header.index("Used")])
                a = cells[header.index("Available")]
                if a:
                    avail[key] = _int(a)
    if used["LUT"] is None or used["FF"] is None:
        raise ReportError("not a Vivado utilization report: no 'CLB LUTs'/'CLB Registers' rows found")
    m = re.search(r"^\|\s*Device\s*:\s*(\S+)", text, re.M)
    extra = {k: used.pop(k) for k in list(used) if k not in UTIL_KEYS}
    return {"utilization": used, "available": avail, "extra": extra, "part": m.group(1) if m else None}


def parse_vivado_timing_summary(text: str) -> dict[str, Any]:
    """``report_timing_summary`` text → ``wns_ns``, ``whs_ns``, ``period_ns``, ``fmax_mhz``, ``timing_met``."""
    lines = text.splitlines()
    for n, line in enumerate(lines):
        if "WNS(ns)" in line and "TNS(ns)" in line:
            cols = re.split(r"\s{2,}", line.strip())
            values = next((ln.split() for ln in lines[n + 2 :] if ln.strip()), [])
            break
    else:
        raise ReportError("not a Vivado timing summary: no 'WNS(ns)' header in 'Design Timing Summary'")
    if len(values) != len(cols):
        raise ReportError("Vivado timing summary: the row under 'WNS(ns)' does not match its header")
    row = dict(zip(cols, values, strict=True))
    wns = float(row["WNS(ns)"])
    whs = float(row["WHS(ns)"]) if "WHS(ns)" in row else None
    periods = []
    for n, line in enumerate(lines):
        if line.split()[:4] == ["Clock", "Waveform(ns)", "Period(ns)", "Frequency(MHz)"]:
            for ln in lines[n + 2 :]:
                m = re.match(r"^\s*(\S+)\s+\{[^}]*\}\s+([\d.]+)\s+([\d.]+)", ln)
                if not m:
                    break
                periods.append(float(m.group(2)))
            break
    period = min(periods) if periods else None
    met = "All user specified timing constraints are met." in text
    fmax = 1000.0 / (period - wns) if period is not None and period - wns > 0 else None
    return {"wns_ns": wns, "whs_ns": whs, "period_ns": period, "fmax_mhz": fmax, "timing_met": met}


# ---------------------------------------------------------------- Quartus

_QUARTUS_KEYS = {
    "LUT": ("Logic utilization (in ALMs)",),
    "FF": ("Total registers", "Total dedicated logic registers", "Total logic registers"),
    "BRAM": ("Total RAM Blocks", "M20K blocks"),
    "DSP": ("Total DSP Blocks",),
}


def parse_quartus_fit_summary(text: str) -> dict[str, Any]:
    """``<rev>.fit.summary`` text (``key : used / available ( n % )``) → utilization, available, part."""
    kv: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" : ")
        if sep:
            kv[key.strip()] = value.strip()
    if "Fitter Status" not in kv:
        raise ReportError("not a Quartus fit summary: no 'Fitter Status' line")
    if not kv["Fitter Status"].startswith("Successful"):
        raise ReportError(f"Quartus fitter did not succeed: {kv['Fitter Status']}")
    used, avail = _empty(), {}
    for key, names in _QUARTUS_KEYS.items():
        for name in names:
            if name in kv:
                m = re.match(r"^([\d,]+)(?:\s*/\s*([\d,]+))?", kv[name])
                if m:
                    used[key] = _int(m.group(1))
                    if m.group(2):
                        avail[key] = _int(m.group(2))
                break
    if used["LUT"] is None:
        raise ReportError("Quartus fit summary has no 'Logic utilization (in ALMs)' line")
    return {"utilization": used, "available": avail, "part": kv.get("Device")}


def parse_quartus_sta_summary(text: str, period_ns: float) -> dict[str, Any]:
    """``<rev>.sta.summary`` text → worst setup slack over all models and clocks, Fmax from ``period_ns``."""
    setup, hold = [], []
    for m in re.finditer(r"^Type\s*:\s*(.*)\nSlack\s*:\s*(-?[\d.]+)", text, re.M):
        kind = m.group(1)
        (setup if "Setup" in kind else hold if "Hold" in kind else []).append(float(m.group(2)))
    if not setup:
        raise ReportError("Quartus STA summary has no 'Type : ... Setup' / 'Slack :' entries")
    wns = min(setup)
    fmax = 1000.0 / (period_ns - wns) if period_ns - wns > 0 else None
    met = wns >= 0 and all(h >= 0 for h in hold)
    return {
        "wns_ns": wns,
        "whs_ns": min(hold) if hold else None,
        "period_ns": period_ns,
        "fmax_mhz": fmax,
        "timing_met": met,
    }


def parse_quartus_fmax(text: str) -> float | None:
    """The lowest 'Restricted Fmax' over every 'Fmax Summary' table of a ``<rev>.sta.rpt`` (None if absent)."""
    found = [float(m.group(2)) for m in re.finditer(r"^;\s*([\d.]+) MHz\s*;\s*([\d.]+) MHz\s*;", text, re.M)]
    return min(found) if found else None


# ---------------------------------------------------------------- nextpnr / yosys

_NEXTPNR_CELLS = {
    "ecp5": {"LUT": "TRELLIS_COMB", "FF": "TRELLIS_FF", "BRAM": "DP16KD", "DSP": "MULT18X18D"},
    "ice40": {"LUT": "ICESTORM_LC", "FF": "ICESTORM_LC", "BRAM": "ICESTORM_RAM", "DSP": "ICESTORM_DSP"},
}


def _family(family: str) -> dict[str, str]:
    if family not in _NEXTPNR_CELLS:
        raise ReportError(f"no nextpnr cell map for family {family!r}; known: {sorted(_NEXTPNR_CELLS)}")
    return _NEXTPNR_CELLS[family]


def parse_nextpnr_report(report: Mapping[str, Any] | str, family: str) -> dict[str, Any]:
    """nextpnr ``--report`` JSON → utilization (ECP5: ``TRELLIS_COMB``/``_FF``; iCE40: logic cells) and Fmax.

    ``fmax_mhz`` is the lowest achieved frequency over the clocks, ``clock_mhz`` its constraint.
    """
    rep = json.loads(report) if isinstance(report, str) else report
    if "utilization" not in rep or "fmax" not in rep:
        raise ReportError("not a nextpnr --report JSON: needs 'utilization' and 'fmax'")
    cells = _family(family)
    used, avail = _empty(), {}
    for key, cell in cells.items():
        if cell in rep["utilization"]:
            used[key] = int(rep["utilization"][cell]["used"])
            avail[key] = int(rep["utilization"][cell]["available"])
    clocks = {k: (float(v["achieved"]), float(v["constraint"])) for k, v in rep["fmax"].items()}
    worst = min(clocks.items(), key=lambda kv: kv[1][0] / kv[1][1]) if clocks else None
    return {
        "utilization": used,
        "available": avail,
        "fmax_mhz": worst[1][0] if worst else None,
        "clock_mhz": worst[1][1] if worst else None,
        "clocks": clocks,
        "timing_met": all(a >= c for a, c in clocks.values()) if clocks else None,
    }


def parse_nextpnr_log_utilization(text: str) -> dict[str, tuple[int, int]]:
    """The last 'Device utilisation' block of a nextpnr log → ``{cell: (used, available)}``."""
    blocks = text.split("Device utilisation:")
    if len(blocks) < 2:
        return {}
    out = {}
    for line in blocks[-1].splitlines()[1:]:
        m = re.match(r"^Info:\s+(\w+):\s+(\d+)\s*/\s*(\d+)", line)
        if not m:
            if out:
                break
            continue
        out[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return out


def parse_yosys_stat(stat: Mapping[str, Any] | str, family: str) -> dict[str, Any]:
    """yosys ``stat -json`` after ``synth_ecp5``/``synth_ice40`` → pre-P&R utilization estimate and cell counts.

    ECP5: ``LUT`` = LUT4 + 2 per CCU2C (the slots nextpnr's TRELLIS_COMB counts); iCE40: ``LUT`` = SB_LUT4.
    """
    cells = stat_cells(stat)
    if not cells:
        raise ReportError("yosys stat JSON has no design.num_cells_by_type")
    used = _empty()
    if family == "ecp5":
        used["CARRY"] = cells.get("CCU2C", 0)
        used["LUT"] = cells.get("LUT4", 0) + 2 * used["CARRY"]
        used["FF"] = cells.get("TRELLIS_FF", 0)
        used["BRAM"] = cells.get("DP16KD", 0)
        used["DSP"] = cells.get("MULT18X18D", 0)
    elif family == "ice40":
        used["LUT"] = cells.get("SB_LUT4", 0)
        used["CARRY"] = cells.get("SB_CARRY", 0)
        used["FF"] = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
        used["BRAM"] = cells.get("SB_RAM40_4K", 0)
        used["DSP"] = cells.get("SB_MAC16", 0)
    else:
        raise ReportError(f"no yosys cell map for family {family!r}; known: ['ecp5', 'ice40']")
    return {"utilization": used, "cells": {k: v for k, v in sorted(cells.items()) if not k.startswith("$")}}


#: what to do about a design too large for its board (the end of every :class:`DesignTooLarge` message)
TOO_LARGE_FIX = (
    "build a smaller Pareto point (a checkpoint of `hgq-hil train` with a larger --beta: `hgq-hil build --model "
    "point.keras`, or a design directory) or pick a bigger board (`hgq-hil boards`)"
)


def too_large(board: str, when: str, over: Mapping[str, tuple[int, int]], *, part: str | None = None) -> DesignTooLarge:
    """The one-line :class:`DesignTooLarge` for ``over`` (``{resource: (used, available)}``) found ``when``."""
    sizes = ", ".join(f"{k} {u} > {a}" + (f" ({100 * u / a:.0f} %)" if a else "") for k, (u, a) in over.items())
    where = f"board {board!r}" + (f" ({part})" if part else "")
    return DesignTooLarge(f"design too large for {where}, by the {when}: {sizes}; {TOO_LARGE_FIX}")


def check_fits(
    used: Mapping[str, int | None], available: Mapping[str, int], board: str, when: str, *, part: str | None = None
) -> None:
    """Raise :class:`DesignTooLarge` naming every resource over the part's total (counts, capacity, the fix)."""
    over = {k: (int(used[k]), int(a)) for k, a in available.items() if used.get(k) is not None and used[k] > a}
    if over:
        raise too_large(board, when, over, part=part)


# ---------------------------------------------------------------- result


@dataclass
class BuildResult:
    """What a build produced: files, utilization (same keys for every tool), Fmax and the clock target."""

    board: str
    part: str
    tool: str
    out_dir: Path
    files: list[Path]
    clock_mhz: float
    utilization: dict[str, int | None] = field(default_factory=_empty)
    available: dict[str, int] = field(default_factory=dict)
    fmax_mhz: float | None = None
    timing_met: bool | None = None
    ran: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "board": self.board,
            "part": self.part,
            "tool": self.tool,
            "out_dir": str(self.out_dir),
            "files": [str(f) for f in self.files],
            "clock_mhz": self.clock_mhz,
            "utilization": dict(self.utilization),
            "available": dict(self.available),
            "fmax_mhz": self.fmax_mhz,
            "timing_met": self.timing_met,
            "ran": self.ran,
            "seconds": dict(self.seconds),
            "details": self.details,
            "note": self.note,
        }

    def table(self) -> str:
        """A small human-readable table."""
        rows = [("board", f"{self.board} ({self.part}, {self.tool})")]
        for k in UTIL_KEYS:
            u = self.utilization.get(k)
            a = self.available.get(k)
            rows.append((k, "-" if u is None else f"{u}" + (f" / {a} ({100 * u / a:.2f} %)" if a else "")))
        fmax = "not run" if self.fmax_mhz is None else f"{self.fmax_mhz:.1f} MHz"
        met = {None: "", True: " (met)", False: " (FAILED)"}[self.timing_met]
        rows += [("clock", f"{self.clock_mhz:.1f} MHz target"), ("Fmax", fmax + met)]
        if self.seconds:
            rows.append(("time", ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())))
        if self.note:
            rows.append(("note", self.note))
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def write_result(result: BuildResult, path: Path) -> Path:
    """Write ``result.to_dict()`` as JSON."""
    path.write_text(json.dumps(result.to_dict(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path
