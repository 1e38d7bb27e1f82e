"""da4ml output as one Verilog text (shared by the benchmarks; imports nothing of this repository).

da4ml's ``VerilogModel.write()`` puts the top, one module per pipeline stage and a folder of static modules
under ``<path>/src``; yosys needs the ones the design really instantiates, in one file. Learned-LUT models
(HGQ2 ``QDenseT``) also instantiate ``lookup_table #(BW_IN, BW_OUT, "table_….mem")``: a
``(* rom_style = "distributed" *)`` array filled by ``$readmemh`` from ``src/memfiles``, which yosys cannot
map from one self-contained text; each distinct table becomes its own module with the contents inlined.

Form: a combinational ``case`` on the input. Compared with an array filled by ``initial`` assignments and no
``rom_style`` attribute (both map to LUT logic only, no LUTRAM/BRAM) on two QDenseT designs (325 and 331 tables):
classic ABC 7116 vs 7078 and 4667 vs 4677 LUTs, ABC9 4682 both; the ``case`` form synthesises 1.2-1.9x faster.
"""

from __future__ import annotations

import re
from pathlib import Path

_LOOKUP = re.compile(r'\blookup_table\s*#\(\s*(\d+)\s*,\s*(\d+)\s*,\s*"([^"]+)"\s*\)')


def _table_module(name: str, bw_in: int, bw_out: int, mem: list[str]) -> str:
    """One table as a combinational ``case`` module ``name (in, out)`` from da4ml's hex words; ``X…`` words and
    the rows past the file (where ``$readmemh`` leaves the ROM undefined) stay ``x`` (don't care)."""
    rows = "".join(f"    {bw_in}'d{i}: out = {bw_out}'h{w};\n" for i, w in enumerate(mem[: 1 << bw_in]) if "X" not in w)
    return (f"module {name} (input [{bw_in - 1}:0] in, output reg [{bw_out - 1}:0] out);\n  always @(*) case (in)\n"
            f"{rows}    default: out = {{{bw_out}{{1'bx}}}};\n  endcase\nendmodule\n")  # fmt: skip


def _inline_tables(text: str, memfiles: Path, top: str) -> tuple[str, str]:
    """``text`` with every ``lookup_table`` instance renamed to a per-table module, and those modules."""
    mods: dict[tuple[str, str, str], str] = {}

    def sub(m: re.Match) -> str:
        return mods.setdefault(m.groups(), f"{top}_table{len(mods)}")

    text = _LOOKUP.sub(sub, text)
    defs = [_table_module(name, int(bi), int(bo), (memfiles / f).read_text().split())
            for (bi, bo, f), name in mods.items()]  # fmt: skip
    return text, "\n".join(defs)


def da4ml_verilog(src: Path, top: str) -> str:
    """The top, its stage modules, its tables and only the static modules they instantiate, as one text."""
    files = [src / f"{top}.v", *sorted(src.glob(f"{top}_stage*.v"))]
    text, tables = _inline_tables("\n".join(p.read_text() for p in files), src / "memfiles", top)
    for p in sorted((src / "static").glob("*.v")):
        mods = re.findall(r"^\s*module\s+(\w+)", p.read_text(), flags=re.M)
        if any(re.search(rf"\b{m}\b\s*(#|\w)", text) for m in mods):
            text += "\n" + p.read_text()
    return text + ("\n" + tables if tables else "")
