"""A tiny core that follows docs/interfaces.md exactly, for board tests and smoke builds.

``toy_design(n_in)`` returns a Design-like object (``name``, ``verilog()``, ``layout``, ``latency``,
``predict(x)``, ``write(dir)``) for a two-stage shift-add core: ``n_in`` signed 6-bit inputs with ``f = 3``;
stage 1 registers ``a_j = x[2j] + 2 x[2j+1]`` and ``b_j = x[2j] - x[2j+1]``; stage 2 registers
``y0 = sum a_j`` and ``y1 = sum b_j``. Latency 2, II 1, only the valid chain is reset.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hgq.fixed import from_mantissa, quantize, to_mantissa

__all__ = ["ToyCore", "ToyDesign", "toy_design"]

W_IN, F_IN = 6, 3


def _widths(n_in: int) -> tuple[int, int]:
    half = n_in // 2
    grow = max(1, math.ceil(math.log2(half))) if half > 1 else 0
    return W_IN + 2 + grow, W_IN + 1 + grow  # y0 width, y1 width (exact for the value ranges)


class ToyCore(wiring.Component):
    """Two registered shift-add stages over packed ``x``; ports per docs/interfaces.md."""

    def __init__(self, n_in: int = 4):
        if n_in < 2 or n_in % 2:
            raise ValueError(f"toy core: n_in must be an even number >= 2, got {n_in!r}")
        self.n_in = n_in
        self.w0, self.w1 = _widths(n_in)
        super().__init__(
            {
                "clk": In(1),
                "rst": In(1),
                "x": In(n_in * W_IN),
                "valid_in": In(1),
                "y": Out(self.w0 + self.w1),
                "valid_out": Out(1),
            }
        )

    def elaborate(self, platform: Any) -> Module:
        """Two register ranks for data (reset-less) and valid (synchronous reset)."""
        from amaranth.hdl import ClockDomain

        m = Module()
        m.domains.sync = cd = ClockDomain("sync", local=True)
        m.d.comb += [cd.clk.eq(self.clk), cd.rst.eq(self.rst)]
        xs = [self.x[i * W_IN : (i + 1) * W_IN].as_signed() for i in range(self.n_in)]
        half = self.n_in // 2
        a = [Signal(signed(W_IN + 2), name=f"a{j}", reset_less=True) for j in range(half)]
        b = [Signal(signed(W_IN + 1), name=f"b{j}", reset_less=True) for j in range(half)]
        for j in range(half):
            m.d.sync += [a[j].eq(xs[2 * j] + (xs[2 * j + 1] << 1)), b[j].eq(xs[2 * j] - xs[2 * j + 1])]
        y0 = Signal(signed(self.w0), reset_less=True)
        y1 = Signal(signed(self.w1), reset_less=True)
        m.d.sync += [y0.eq(sum(a[1:], a[0])), y1.eq(sum(b[1:], b[0]))]
        v = Signal(2)
        m.d.sync += v.eq((v << 1) | self.valid_in)
        m.d.comb += [self.y.eq((y0.as_unsigned()) | (y1.as_unsigned() << self.w0)), self.valid_out.eq(v[1])]
        return m


@dataclass
class ToyDesign:
    """The Design-object subset boards and sim use (docs/interfaces.md)."""

    n_in: int = 4
    name: str = "toy_core"

    @property
    def latency(self) -> int:
        """Register ranks from ``x`` to ``y``."""
        return 2

    @property
    def layout(self) -> dict[str, Any]:
        """The layout JSON dict."""
        w0, w1 = _widths(self.n_in)
        return {
            "name": self.name,
            "latency": self.latency,
            "clock_ns": 5.0,
            "part": "xcvu13p-flga2577-2-e",
            "clock_enable": False,
            "input": {
                "width": self.n_in * W_IN,
                "shape": [self.n_in],
                "elements": [
                    {"index": i, "offset": i * W_IN, "width": W_IN, "signed": True, "f": F_IN} for i in range(self.n_in)
                ],
            },
            "output": {
                "width": w0 + w1,
                "shape": [2],
                "elements": [
                    {"index": 0, "offset": 0, "width": w0, "signed": True, "f": F_IN},
                    {"index": 1, "offset": w0, "width": w1, "signed": True, "f": F_IN},
                ],
            },
        }

    def verilog(self) -> str:
        """Deterministic Verilog text of the core."""
        return verilog.convert(ToyCore(self.n_in), name=self.name, emit_src=False, strip_internal_attrs=True)

    def quantize_inputs(self, x: np.ndarray) -> np.ndarray:
        """Put float inputs on the input grid (signed 6-bit, f = 3, TRN, WRAP)."""
        return quantize(np.asarray(x, dtype=np.float64), 1, W_IN - 1 - F_IN, F_IN)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Exact outputs ``[N, 2]`` for inputs ``[N, n_in]`` (quantized first)."""
        m = to_mantissa(self.quantize_inputs(x), F_IN)
        a = m[:, 0::2] + 2 * m[:, 1::2]
        b = m[:, 0::2] - m[:, 1::2]
        return from_mantissa(np.stack([a.sum(1), b.sum(1)], axis=1), F_IN)

    def report(self) -> dict[str, Any]:
        """A minimal report."""
        return {"latency_cycles": self.latency, "name": self.name}

    def write(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``<name>.v`` and ``<name>.layout.json``; returns the directory."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{self.name}.v").write_text(self.verilog(), encoding="utf-8")
        (d / f"{self.name}.layout.json").write_text(json.dumps(self.layout, indent=1) + "\n", encoding="utf-8")
        return d


def toy_design(n_in: int = 4, name: str = "toy_core") -> ToyDesign:
    """A small Design-like core for tests and smoke builds (see module docstring)."""
    if n_in < 2 or n_in % 2:
        raise ValueError(f"toy core: n_in must be an even number >= 2, got {n_in!r}")
    return ToyDesign(n_in=n_in, name=name)
