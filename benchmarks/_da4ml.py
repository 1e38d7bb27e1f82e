"""da4ml output as one Verilog text (shared by the benchmarks; imports nothing of this repository).

da4ml's ``VerilogModel.write()`` puts the top, one module per pipeline stage and a folder of static modules
under ``<path>/src``; yosys needs the ones the design really instantiates, in one file.
"""

from __future__ import annotations

import re
from pathlib import Path


def da4ml_verilog(src: Path, top: str) -> str:
    """The top, its stage modules and only the static modules they instantiate, as one text."""
    files = [src / f"{top}.v", *sorted(src.glob(f"{top}_stage*.v"))]
    text = "\n".join(p.read_text() for p in files)
    for p in sorted((src / "static").glob("*.v")):
        mods = re.findall(r"^\s*module\s+(\w+)", p.read_text(), flags=re.M)
        if any(re.search(rf"\b{m}\b\s*(#|\w)", text) for m in mods):
            text += "\n" + p.read_text()
    return text
