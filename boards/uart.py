"""Host side of the UART hardware-in-the-loop harness (:class:`boards.wrap.UartHarness`).

Wire protocol: for each vector the host sends ``ceil(Win / 8)`` bytes of the packed input word, LSB byte
first; the board answers ``ceil(Wout / 8)`` bytes of the packed output word, LSB byte first, in order. At
most ``fifo_depth`` vectors may be outstanding. Packing follows docs/interfaces.md (element ``e`` occupies
``port[offset : offset + width]``, value ``mantissa * 2**-f``, two's complement when signed).

The transport is anything with ``write(bytes)`` and ``read(n) -> bytes`` (:class:`Transport`);
:class:`SerialTransport` wraps pyserial (imported lazily), :class:`ModelTransport` is a pure-Python model
of the harness for tests without a board.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hgq.fixed import from_mantissa, to_mantissa

__all__ = [
    "HarnessDriver",
    "ModelTransport",
    "SerialTransport",
    "Transport",
    "pack_words",
    "unpack_words",
    "word_bytes",
]


def _elements(port: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return sorted(port["elements"], key=lambda e: e["index"])


def pack_words(layout_port: Mapping[str, Any], values: np.ndarray) -> list[int]:
    """Pack float values ``[N, *shape]`` (already on the grid) into one integer word per vector."""
    elems = _elements(layout_port)
    v = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    if v.shape[1] != len(elems):
        raise ValueError(f"pack: vectors have {v.shape[1]} elements, the layout has {len(elems)}; check the shape")
    words = [0] * len(v)
    for e in elems:
        w = int(e["width"])
        if w == 0:
            continue
        m = to_mantissa(v[:, e["index"]], int(e["f"]))
        lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if e["signed"] else (0, (1 << w) - 1)
        if m.min(initial=lo) < lo or m.max(initial=hi) > hi:
            raise ValueError(f"pack: element {e['index']} has values outside its {w}-bit field; quantize first")
        mask, off = (1 << w) - 1, int(e["offset"])
        for n, mi in enumerate(m.tolist()):
            words[n] |= (mi & mask) << off
    return words


def unpack_words(layout_port: Mapping[str, Any], words: Sequence[int]) -> np.ndarray:
    """Float values ``[N, *shape]`` from packed integer words (pruned elements are 0)."""
    elems = _elements(layout_port)
    out = np.zeros((len(words), len(elems)), dtype=np.float64)
    for e in elems:
        w = int(e["width"])
        if w == 0:
            continue
        off, mask = int(e["offset"]), (1 << w) - 1
        m = np.array([(int(word) >> off) & mask for word in words], dtype=np.int64)
        if e["signed"]:
            m = np.where(m >= 1 << (w - 1), m - (1 << w), m)
        out[:, e["index"]] = from_mantissa(m, int(e["f"]))
    return out.reshape(len(words), *layout_port["shape"])


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
        return unpack_words(self.layout["output"], self.run_words(pack_words(self.layout["input"], x)))

    def compare(self, x: np.ndarray, expected: np.ndarray) -> dict[str, Any]:
        """Run ``x`` and compare with ``expected`` by equality: counts and the first mismatching vector."""
        got = self.run(x)
        exp = np.asarray(expected, dtype=np.float64).reshape(got.shape)
        bad = np.flatnonzero(np.any((got != exp).reshape(len(got), -1), axis=1))
        return {"vectors": len(got), "mismatches": int(len(bad)), "first_mismatch": int(bad[0]) if len(bad) else None}
