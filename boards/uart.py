"""Host side of the UART hardware-in-the-loop harness (:class:`boards.wrap.UartHarness`).

Wire protocol: for each vector the host sends ``ceil(Win / 8)`` bytes of the packed input word, LSB byte
first; the board answers ``ceil(Wout / 8)`` bytes of the packed output word, LSB byte first, in order. At
most ``fifo_depth`` vectors may be outstanding. Packing is ``sim.vectors`` (docs/interfaces.md layout), the same as
the simulator's, so board and simulation results compare word for word.

The transport is anything with ``write(bytes)`` and ``read(n) -> bytes`` (:class:`Transport`);
:class:`SerialTransport` wraps pyserial (imported lazily), :class:`ModelTransport` is a pure-Python model
of the harness for tests without a board.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sim.vectors import Port, mantissas_to_values, pack, unpack, values_to_mantissas

__all__ = [
    "HarnessDriver",
    "ModelTransport",
    "SerialTransport",
    "Transport",
    "pack_words",
    "unpack_words",
    "word_bytes",
]


def pack_words(layout: Mapping[str, Any], values: np.ndarray, side: str = "input") -> list[int]:
    """Packed words of float vectors ``[N, *shape]`` (on the grid) for ``side`` of the layout, via ``sim.vectors``."""
    port = Port.from_layout(dict(layout), side)
    return pack(values_to_mantissas(values, port, "x" if side == "input" else "y"), port)


def unpack_words(layout: Mapping[str, Any], words: Sequence[int], side: str = "output") -> np.ndarray:
    """Float values ``[N, *shape]`` of packed words of ``side`` of the layout, via ``sim.vectors``."""
    port = Port.from_layout(dict(layout), side)
    return mantissas_to_values(unpack(words, port), port)


def word_bytes(width: int) -> int:
    """Bytes per packed word on the wire."""
    return -(-max(1, width) // 8)


@runtime_checkable
class Transport(Protocol):
    """A byte pipe to the board."""

    def write(self, data: bytes) -> Any:
        """Send bytes."""

    def read(self, n: int) -> bytes:
        """Receive up to ``n`` bytes (fewer on timeout)."""


class SerialTransport:
    """A pyserial port (``pip install pyserial``); imported only when used."""

    def __init__(self, port: str, baud: int = 115200, timeout: float = 2.0):
        try:
            import serial
        except ImportError:
            raise ImportError("SerialTransport needs pyserial: pip install pyserial") from None
        self._port = serial.Serial(port, baud, timeout=timeout)

    def write(self, data: bytes) -> int:
        """Send bytes."""
        return self._port.write(data)

    def read(self, n: int) -> bytes:
        """Receive up to ``n`` bytes."""
        return self._port.read(n)

    def close(self) -> None:
        """Close the port."""
        self._port.close()


class ModelTransport:
    """A pure-Python model of the board harness: words in, ``fn(words)`` out, same byte protocol."""

    def __init__(self, layout: Mapping[str, Any], fn: Callable[[list[int]], list[int]], fifo_depth: int = 16):
        self.nin = word_bytes(layout["input"]["width"])
        self.nout = word_bytes(layout["output"]["width"])
        self.fn, self.fifo_depth = fn, fifo_depth
        self._rx = bytearray()
        self._tx = bytearray()

    def write(self, data: bytes) -> int:
        """Receive host bytes; each complete input word produces an output word."""
        self._rx += data
        while len(self._rx) >= self.nin:
            word = int.from_bytes(self._rx[: self.nin], "little")
            del self._rx[: self.nin]
            if len(self._tx) >= self.fifo_depth * self.nout:
                raise RuntimeError("ModelTransport: FIFO overflow (host sent more than fifo_depth vectors)")
            (out,) = self.fn([word])
            self._tx += int(out).to_bytes(self.nout, "little")
        return len(data)

    def read(self, n: int) -> bytes:
        """Return up to ``n`` pending output bytes."""
        out = bytes(self._tx[:n])
        del self._tx[:n]
        return out


class HarnessDriver:
    """Streams vectors through the UART harness with the same packing and comparison as ``sim``."""

    def __init__(self, transport: Transport, layout: Mapping[str, Any], fifo_depth: int = 16):
        if not isinstance(transport, Transport):
            raise TypeError(f"transport {transport!r} has no write(bytes)/read(n); wrap it in a Transport")
        if fifo_depth < 1:
            raise ValueError(f"fifo_depth must be >= 1, got {fifo_depth!r}")
        self.transport, self.layout, self.fifo_depth = transport, layout, fifo_depth
        self.nin = word_bytes(layout["input"]["width"])
        self.nout = word_bytes(layout["output"]["width"])

    def run_words(self, words: Sequence[int]) -> list[int]:
        """Send packed input words, return the packed output words, at most ``fifo_depth`` in flight."""
        out: list[int] = []
        for start in range(0, len(words), self.fifo_depth):
            chunk = words[start : start + self.fifo_depth]
            self.transport.write(b"".join(int(w).to_bytes(self.nin, "little") for w in chunk))
            need = len(chunk) * self.nout
            data = b""
            while len(data) < need:
                got = self.transport.read(need - len(data))
                if not got:
                    raise TimeoutError(
                        f"harness sent {len(data)} of {need} bytes for vectors {start}..{start + len(chunk) - 1}; "
                        "check the port, baud rate and that the board runs the harness bitstream"
                    )
                data += got
            out += [int.from_bytes(data[i : i + self.nout], "little") for i in range(0, need, self.nout)]
        return out

    def run(self, x: np.ndarray) -> np.ndarray:
        """Float outputs ``[N, *output_shape]`` for inputs ``x`` (values already on the input grid)."""
        return unpack_words(self.layout, self.run_words(pack_words(self.layout, x)))

    def compare(self, x: np.ndarray, expected: np.ndarray) -> dict[str, Any]:
        """Run ``x`` and compare with ``expected`` by equality: counts, the first mismatching vector and ``passed``
        (every vector answered and equal)."""
        got = self.run(x)
        exp = np.asarray(expected, dtype=np.float64).reshape(got.shape)
        bad = np.flatnonzero(np.any((got != exp).reshape(len(got), -1), axis=1))
        return {"vectors": len(got), "mismatches": int(len(bad)), "first_mismatch": int(bad[0]) if len(bad) else None,
                "passed": len(bad) == 0 and len(got) == len(x) > 0}  # fmt: skip


def harness_verilog(layout: Mapping[str, Any], divisor: int, fifo_depth: int = 16, timeout_bytes: int = 64) -> str:
    """Verilog of the :class:`~boards.wrap.UartHarness` top ``uart_harness`` (ports clk, rst, rx, tx)."""
    from amaranth.back import verilog

    from .wrap import UartHarness

    h = UartHarness(layout, divisor, fifo_depth, timeout_bytes)
    return verilog.convert(h, name="uart_harness", emit_src=False, strip_internal_attrs=True)


def simulate_harness(
    design: Any,
    x: np.ndarray,
    *,
    simulator: str = "icarus",
    divisor: int = 4,
    fifo_depth: int = 4,
    timeout_bytes: int = 8,
    work_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Run the UART harness around ``design`` in cocotb with the host driver; expected outputs from
    ``design.predict(x)``. Returns ``{"vectors", "mismatches", "failed", "passed", ...}``; ``failed`` counts
    failed tests, ``passed`` is the verdict (no failed test, every vector answered and equal, no framing error)."""
    from sim.runners import build, run_test

    from .build import load_core

    name, layout, core_v = load_core(design)
    xq = np.asarray(x, dtype=np.float64)
    y = np.asarray(design.predict(xq), dtype=np.float64)
    top = harness_verilog(layout, divisor, fifo_depth, timeout_bytes)
    b = build(simulator, {"uart_harness.v": top, f"{name}.v": core_v}, "uart_harness", label="uart")
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="hgq_uart_"))
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "x.npy", xq)
    np.save(work / "y.npy", y)
    cfg = {
        "layout": layout,
        "divisor": divisor,
        "fifo_depth": fifo_depth,
        "timeout_cycles": divisor * 10 * timeout_bytes,
        "x": str(work / "x.npy"),
        "y": str(work / "y.npy"),
        "result": str(work / "result.json"),
    }
    (work / "config.json").write_text(json.dumps(cfg))
    env = {"HGQ_HIL_UART_CONFIG": str(work / "config.json")}
    failed = 0
    for test in ("uart_vectors", "uart_resync"):
        _, n, nf = run_test(b, "boards.tb_uart", test, work / test, extra_env=env)
        failed += nf + (n == 0)
    res = json.loads((work / "result.json").read_text()) if (work / "result.json").exists() else {}
    passed = (failed == 0 and res.get("vectors") == len(xq) > 0 and res.get("mismatches") == 0
              and res.get("framing_errors") == 0)  # fmt: skip
    return {**res, "failed": failed, "passed": passed, "simulator": simulator, "work_dir": str(work)}
