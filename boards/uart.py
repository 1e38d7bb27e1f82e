"""Host side of the UART hardware-in-the-loop harness (:class:`boards.wrap.UartHarness`): protocol, driver.

Wire protocol (8N1, version 1). Host → board, one command byte each:

- ``'V'`` + ``ceil(Win / 8)`` bytes of the packed input word, LSB byte first: one vector. The board answers
  ``'Y'`` + ``ceil(Wout / 8)`` bytes of the packed output word, in order. At most ``fifo_depth`` vectors may be
  outstanding.
- ``'I'``: identify. The board answers ``'I'`` + :data:`ID_FRAME_BYTES` bytes (all little-endian):
  :data:`MAGIC` (3), protocol version (1), design id (4: CRC-32 of the core's Verilog, :func:`design_id`), input
  bytes (2), output bytes (2), FIFO depth (2), the latency the generator claims (2), the latency the harness
  measured in clock cycles from a ``valid_in`` into an empty pipeline to its ``valid_out`` (2; ``0xFFFF`` before
  the first vector) and the vectors received since reset (4).
- Any other byte is ignored, and a partial vector is dropped after an idle timeout, so a host that lost sync
  resynchronises by waiting and sending ``'I'``.

Packing is ``sim.vectors`` (docs/interfaces.md layout), the same as the simulator's, so board and simulation
results compare word for word. The transport is anything with ``write(bytes)`` and ``read(n) -> bytes``
(:class:`Transport`): :class:`SerialTransport` wraps pyserial (the ``hil`` extra) for a real port or a
pseudo-terminal (:mod:`boards.simboard`), :class:`ModelTransport` is a pure-Python model of the harness.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sim.scoreboard import describe_mismatch
from sim.vectors import Port, mantissas_to_values, pack, unpack, values_to_mantissas

__all__ = [
    "ID_FRAME_BYTES",
    "MAGIC",
    "PROTOCOL_VERSION",
    "BoardInfo",
    "BoardTimeout",
    "FramingError",
    "HarnessDriver",
    "HilError",
    "HilResult",
    "ModelTransport",
    "SerialTransport",
    "Transport",
    "WrongDesign",
    "check_fifo_depth",
    "design_id",
    "pack_words",
    "unpack_words",
    "word_bytes",
]

MAGIC = b"HGQ"
PROTOCOL_VERSION = 1
ID_FRAME_BYTES = 3 + 1 + 4 + 2 + 2 + 2 + 2 + 2 + 4
NO_LATENCY = 0xFFFF


class HilError(RuntimeError):
    """The board did not behave like an hgq-hil harness."""


class BoardTimeout(HilError):
    """The board sent fewer bytes than expected within the timeout."""


class FramingError(HilError):
    """A frame from the board did not start with the expected header byte (or the magic was wrong)."""


class WrongDesign(HilError):
    """The board runs another design than the one to be checked (its identity frame says so)."""


def design_id(verilog: str) -> int:
    """The 32-bit id a harness reports for a core: CRC-32 of the core's Verilog text (UTF-8)."""
    return zlib.crc32(verilog.encode("utf-8")) & 0xFFFFFFFF


def check_fifo_depth(depth: int) -> int:
    """``depth`` if it is an integer in 1..4096, else ``ValueError``."""
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 4096:
        raise ValueError(f"fifo_depth must be an integer in 1..4096, got {depth!r}")
    return depth


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


@dataclass(frozen=True)
class BoardInfo:
    """The identity frame of a harness."""

    version: int
    design_id: int
    input_bytes: int
    output_bytes: int
    fifo_depth: int
    latency_claimed: int
    latency_measured: int | None  # None before the first vector
    vectors: int

    @classmethod
    def parse(cls, frame: bytes) -> BoardInfo:
        """Decode the :data:`ID_FRAME_BYTES` bytes after the ``'I'`` header."""
        if len(frame) != ID_FRAME_BYTES or frame[:3] != MAGIC:
            raise FramingError(
                f"identity frame {frame[:8].hex()}… lacks the magic {MAGIC!r}: the board does not run an hgq-hil "
                "harness, or the baud rate is wrong"
            )
        u = lambda a, b: int.from_bytes(frame[a:b], "little")  # noqa: E731
        measured = u(16, 18)
        return cls(frame[3], u(4, 8), u(8, 10), u(10, 12), u(12, 14), u(14, 16),
                   None if measured == NO_LATENCY else measured, u(18, 22))  # fmt: skip


@runtime_checkable
class Transport(Protocol):
    """A byte pipe to the board."""

    def write(self, data: bytes) -> Any:
        """Send bytes."""

    def read(self, n: int) -> bytes:
        """Receive up to ``n`` bytes (fewer on timeout)."""


class SerialTransport:
    """A serial port or pseudo-terminal through pyserial (``pip install hgq-hil[hil]``), imported only when used."""

    def __init__(self, port: str, baud: int = 115200, timeout: float = 2.0):
        try:
            import serial
        except ImportError:
            raise ImportError("SerialTransport needs pyserial: pip install pyserial (or hgq-hil[hil])") from None
        if not Path(port).exists() and "://" not in port:
            raise FileNotFoundError(
                f"serial port {port!r} does not exist: plug the board in and name its port (ls /dev/ttyUSB* "
                "/dev/ttyACM*), or start a simulated board with `hgq-hil sim-board DESIGN --port PATH`"
            )
        try:
            self._port = serial.serial_for_url(port, baudrate=baud, timeout=timeout)
        except serial.SerialException as err:
            raise OSError(f"cannot open serial port {port!r}: {err}; check permissions (the dialout group) and "
                          "that no other program holds it") from None  # fmt: skip
        self.port = port

    def write(self, data: bytes) -> int:
        """Send bytes."""
        return self._port.write(data)

    def read(self, n: int) -> bytes:
        """Receive up to ``n`` bytes (fewer after the timeout)."""
        return self._port.read(n)

    def drain(self) -> None:
        """Drop bytes the board sent before this run."""
        self._port.reset_input_buffer()

    def close(self) -> None:
        """Close the port."""
        self._port.close()


class ModelTransport:
    """A pure-Python model of the harness (same protocol): words in, ``fn(words)`` out."""

    def __init__(self, layout: Mapping[str, Any], fn: Callable[[list[int]], list[int]], fifo_depth: int = 16,
                 ident: int = 0, latency: int = 0):  # fmt: skip
        self.nin = word_bytes(layout["input"]["width"])
        self.nout = word_bytes(layout["output"]["width"])
        self.fn, self.fifo_depth, self.ident, self.latency = fn, fifo_depth, ident, latency
        self.measured, self.vectors = NO_LATENCY, 0
        self._rx = bytearray()
        self._tx = bytearray()

    def write(self, data: bytes) -> int:
        """Receive host bytes; each complete command produces its answer."""
        self._rx += data
        while self._rx:
            cmd = self._rx[0]
            if cmd == ord("V"):
                if len(self._rx) < 1 + self.nin:
                    break
                word = int.from_bytes(self._rx[1 : 1 + self.nin], "little")
                del self._rx[: 1 + self.nin]
                if len(self._tx) >= self.fifo_depth * (1 + self.nout):
                    raise RuntimeError("ModelTransport: FIFO overflow (host sent more than fifo_depth vectors)")
                (out,) = self.fn([word])
                self._tx += b"Y" + int(out).to_bytes(self.nout, "little")
                self.measured, self.vectors = self.latency, self.vectors + 1
            elif cmd == ord("I"):
                del self._rx[:1]
                self._tx += b"I" + self.identity()
            else:
                del self._rx[:1]
        return len(data)

    def identity(self) -> bytes:
        """The identity frame (after its header)."""
        f = [(self.ident, 4), (self.nin, 2), (self.nout, 2), (self.fifo_depth, 2), (self.latency, 2),
             (self.measured, 2), (self.vectors, 4)]  # fmt: skip
        return MAGIC + bytes([PROTOCOL_VERSION]) + b"".join(v.to_bytes(n, "little") for v, n in f)

    def read(self, n: int) -> bytes:
        """Return up to ``n`` pending output bytes."""
        out = bytes(self._tx[:n])
        del self._tx[:n]
        return out


@dataclass
class HilResult:
    """The verdict of a hardware-in-the-loop run (as :class:`sim.VerifyResult` is of a simulation)."""

    port: str
    design: str
    vectors: int
    compared: int
    mismatches: int
    first_mismatch: dict | None
    latency_expected: int
    latency_measured: int | None
    vectors_per_s: float
    seconds: float
    board: dict = field(default_factory=dict)
    passed: bool = False

    def problems(self) -> list[str]:
        """What fails the run (empty when it passed)."""
        p = []
        if self.mismatches:
            p.append(f"{self.mismatches} of {self.compared} vectors differ")
        if self.compared != self.vectors or self.vectors == 0:
            p.append(f"{self.compared} of {self.vectors} vectors answered")
        if self.latency_measured != self.latency_expected:
            p.append(f"latency {self.latency_measured} cycles measured, {self.latency_expected} claimed")
        if self.board.get("vectors") is not None and self.board["vectors"] != self.vectors:
            p.append(f"the board counted {self.board['vectors']} vectors, {self.vectors} were sent")
        return p

    def headline(self) -> str:
        """One line: verdict, counts, latency, throughput; the problems below it when it failed."""
        verdict = "BIT-EXACT" if self.passed else "MISMATCH"
        line = (f"{verdict}: {self.compared} outputs compared, {self.mismatches} mismatches, latency "
                f"{self.latency_measured} (expected {self.latency_expected}) cycles measured by the harness, "
                f"{self.vectors_per_s:,.0f} vectors/s on {self.port}")  # fmt: skip
        if not self.passed:
            line += f"\nfails on: {'; '.join(self.problems())}"
        return line

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with ``problems``)."""
        return {**asdict(self), "problems": self.problems()}


class HarnessDriver:
    """Streams vectors through the UART harness with the same packing and comparison as ``sim``."""

    def __init__(self, transport: Transport, layout: Mapping[str, Any], fifo_depth: int = 16):
        if not isinstance(transport, Transport):
            raise TypeError(f"transport {transport!r} has no write(bytes)/read(n); wrap it in a Transport")
        self.transport, self.layout = transport, layout
        self.fifo_depth = check_fifo_depth(fifo_depth)
        self.nin = word_bytes(layout["input"]["width"])
        self.nout = word_bytes(layout["output"]["width"])

    def _read(self, n: int, what: str) -> bytes:
        data = b""
        while len(data) < n:
            got = self.transport.read(n - len(data))
            if not got:
                raise BoardTimeout(
                    f"the board sent {len(data)} of {n} bytes for {what} before the timeout: check the port, the "
                    "baud rate and that the board runs the harness bitstream (`hgq-hil build DESIGN --board B "
                    "--wrapper uart`, then `hgq-hil program`)"
                )
            data += got
        return data

    def identify(self) -> BoardInfo:
        """Ask the board for its identity frame."""
        drain = getattr(self.transport, "drain", None)
        if drain is not None:
            drain()
        self.transport.write(b"I")
        frame = self._read(1 + ID_FRAME_BYTES, "the identity frame")
        if frame[:1] != b"I":
            raise FramingError(f"the board answered {frame[:1].hex()} to an identify command, not 'I' (49): it "
                               "does not run an hgq-hil harness, or the baud rate is wrong")  # fmt: skip
        return BoardInfo.parse(frame[1:])

    def check_design(self, name: str, verilog: str) -> BoardInfo:
        """Identify the board and check it runs ``verilog`` (by :func:`design_id`) with this layout's widths."""
        info = self.identify()
        if info.version != PROTOCOL_VERSION:
            raise WrongDesign(f"the board speaks harness protocol {info.version}, this host {PROTOCOL_VERSION}: "
                              "rebuild the bitstream with this hgq-hil")  # fmt: skip
        want = design_id(verilog)
        if info.design_id != want or (info.input_bytes, info.output_bytes) != (self.nin, self.nout):
            raise WrongDesign(
                f"the board runs design id {info.design_id:08x} ({info.input_bytes} B in, {info.output_bytes} B "
                f"out), not {name!r} (id {want:08x}, {self.nin} B in, {self.nout} B out): program the board with "
                f"this design (`hgq-hil build {name} --board B --wrapper uart`, `hgq-hil program`)"
            )
        if info.fifo_depth < self.fifo_depth:
            self.fifo_depth = info.fifo_depth  # never more in flight than the board can hold
        return info

    def run_words(self, words: Sequence[int]) -> list[int]:
        """Send packed input words, return the packed output words, at most ``fifo_depth`` in flight."""
        out: list[int] = []
        for start in range(0, len(words), self.fifo_depth):
            chunk = words[start : start + self.fifo_depth]
            self.transport.write(b"".join(b"V" + int(w).to_bytes(self.nin, "little") for w in chunk))
            what = f"vectors {start}..{start + len(chunk) - 1}"
            data = self._read(len(chunk) * (1 + self.nout), what)
            for i in range(0, len(data), 1 + self.nout):
                if data[i] != ord("Y"):
                    raise FramingError(
                        f"output frame {start + i // (1 + self.nout)} starts with {data[i]:#04x}, not 'Y' (0x59): "
                        "bytes were lost or corrupted on the line (check the baud rate and the cable)"
                    )
                out.append(int.from_bytes(data[i + 1 : i + 1 + self.nout], "little"))
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

    def verify(self, name: str, verilog: str, latency: int, x: np.ndarray, expected: np.ndarray,
               port: str = "") -> HilResult:  # fmt: skip
        """The whole check: identify (right design?), stream ``x``, compare with ``expected`` word by word, read the
        latency the harness measured. Raises :class:`WrongDesign`, :class:`BoardTimeout`, :class:`FramingError`."""
        self.check_design(name, verilog)
        before = self.identify().vectors
        xw = pack_words(self.layout, x)
        yw = pack_words(self.layout, np.asarray(expected, dtype=np.float64), "output")
        t0 = time.perf_counter()
        got = self.run_words(xw)
        dt = time.perf_counter() - t0
        after = self.identify()
        out = Port.from_layout(dict(self.layout), "output")
        bad = [i for i, (a, b) in enumerate(zip(yw, got, strict=True)) if a != b]
        first = None
        if bad:
            first = {"sample": bad[0], **describe_mismatch(yw[bad[0]], got[bad[0]], out)}
        board = {**asdict(after), "vectors": (after.vectors - before) & 0xFFFFFFFF}
        r = HilResult(port=port, design=name, vectors=len(xw), compared=len(got), mismatches=len(bad),
                      first_mismatch=first, latency_expected=int(latency), latency_measured=after.latency_measured,
                      vectors_per_s=len(xw) / dt if dt > 0 else 0.0, seconds=dt, board=board)  # fmt: skip
        r.passed = not r.problems()
        return r


def harness_verilog(layout: Mapping[str, Any], divisor: int, fifo_depth: int = 16, timeout_bytes: int = 64,
                    ident: int = 0) -> str:  # fmt: skip
    """Verilog of the :class:`~boards.wrap.UartHarness` top ``uart_harness`` (ports clk, rst, rx, tx) reporting
    design id ``ident`` (:func:`design_id` of the core)."""
    from amaranth.back import verilog

    from .wrap import UartHarness

    h = UartHarness(layout, divisor, fifo_depth, timeout_bytes, design_id=ident)
    return verilog.convert(h, name="uart_harness", emit_src=False, strip_internal_attrs=True)


def por_top_verilog(layout: Mapping[str, Any], ident: int, clock_hz: float, baud: int = 115200,
                    fifo_depth: int = 16, name: str = "hgq_uart_top") -> str:  # fmt: skip
    """Verilog of the vendor top :class:`~boards.wrap.UartPorTop` (ports clk, rx, tx; power-on reset)."""
    from amaranth.back import verilog

    from .wrap import UartPorTop

    top = UartPorTop(layout, ident, clock_hz, baud, fifo_depth)
    return verilog.convert(top, name=name, emit_src=False, strip_internal_attrs=True)


def simulate_harness(
    design: Any,
    x: np.ndarray,
    *,
    simulator: str = "icarus",
    divisor: int = 4,
    fifo_depth: int = 4,
    timeout_bytes: int = 8,
    work_dir: str | os.PathLike[str] | None = None,
    power_on_reset: bool = False,
) -> dict[str, Any]:
    """Run the UART harness around ``design`` in cocotb with the host driver; expected outputs from
    ``design.predict(x)``; ``power_on_reset`` simulates the vendor top (:class:`~boards.wrap.UartPorTop`: no
    reset pin) instead of the bare harness. Returns the :class:`HilResult` fields plus ``failed`` (failed cocotb tests),
    ``framing_errors`` and ``passed``: no failed test, every vector answered and equal, the measured latency equal
    to the design's, no framing error."""
    from sim.runners import build, run_test

    from .build import load_core

    name, layout, core_v = load_core(design)
    xq = np.asarray(x, dtype=np.float64)
    y = np.asarray(design.predict(xq), dtype=np.float64)
    if power_on_reset:
        top = por_top_verilog(layout, design_id(core_v), divisor * 115200.0, fifo_depth=fifo_depth, name="uart_harness")
    else:
        top = harness_verilog(layout, divisor, fifo_depth, timeout_bytes, design_id(core_v))
    b = build(simulator, {"uart_harness.v": top, f"{name}.v": core_v}, "uart_harness", label="uart")
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="hgq_uart_"))
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "x.npy", xq)
    np.save(work / "y.npy", y)
    (work / "core.v").write_text(core_v)
    cfg = {
        "name": name,
        "layout": layout,
        "core": str(work / "core.v"),
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
    for test in ("uart_vectors",) if power_on_reset else ("uart_vectors", "uart_resync"):
        _, n, nf = run_test(b, "boards.tb_uart", test, work / test, extra_env=env)
        failed += nf + (n == 0)
    res = json.loads((work / "result.json").read_text()) if (work / "result.json").exists() else {}
    passed = failed == 0 and bool(res.get("passed")) and res.get("framing_errors") == 0
    return {**res, "failed": failed, "passed": passed, "simulator": simulator, "work_dir": str(work)}


def hil(
    design_dir: str | os.PathLike[str],
    port: str,
    *,
    baud: int = 115200,
    vectors: str | os.PathLike[str] | None = None,
    n_random: int = 1000,
    seed: int = 0,
    timeout: float = 2.0,
    fifo_depth: int = 16,
) -> HilResult:
    """``hgq-hil hil``: check a board running the UART harness around ``design_dir``'s core. Vectors come from
    ``vectors`` (``.npz`` with ``x`` and optional ``y``, as for ``simulate``) or are corner + ``n_random`` random
    ones; expected outputs are the file's ``y`` or the design's own (``design.predict``)."""
    from sim.api import design_and_vectors

    design, x, y = design_and_vectors(design_dir, vectors, n_random, seed)
    if y is None:
        if not hasattr(design, "predict"):
            raise ValueError(f"{design_dir} holds no graph to compute expected outputs: give --vectors with y")
        y = design.predict(x)
    transport = SerialTransport(port, baud, timeout)
    try:
        driver = HarnessDriver(transport, design.layout, fifo_depth)
        return driver.verify(design.name, design.verilog(), design.latency, x, y, port)
    finally:
        transport.close()
