"""cocotb test module for the UART harness top (:class:`boards.wrap.UartHarness` around a core).

A bit-level UART model drives ``rx`` and decodes ``tx`` (8N1, ``divisor`` clocks per bit). ``uart_vectors`` runs
the real host driver (:class:`boards.uart.HarnessDriver`) in a :func:`cocotb.task.bridge` thread on a transport
whose ``write``/``read`` are :func:`cocotb.task.resume` coroutines on that model; ``pty_board`` bridges the model
to a pseudo-terminal instead, so a separate host process (``hgq-hil hil``) talks to the simulated board as to a
real serial port (:mod:`boards.simboard`). Configured by the JSON file named in ``$HGQ_HIL_UART_CONFIG``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import time
import tty
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotb.utils import get_sim_time

from boards.uart import ID_FRAME_BYTES, HarnessDriver, pack_words, word_bytes

CONFIG_ENV = "HGQ_HIL_UART_CONFIG"
PERIOD_NS = 10


class UartModel:
    """Host end of the serial line, bit by bit, in simulation time."""

    def __init__(self, dut, divisor: int):
        self.dut, self.divisor = dut, divisor
        self.received = bytearray()
        self.framing_errors = 0
        self.receiving = False  # a frame on tx is being decoded

    async def send(self, data: bytes) -> None:
        """Drive ``rx`` with 8N1 frames, back to back."""
        for b in data:
            for bit in (0, *((b >> i) & 1 for i in range(8)), 1):
                self.dut.rx.value = bit
                await ClockCycles(self.dut.clk, self.divisor)

    async def monitor(self) -> None:
        """Decode ``tx`` forever, sampling each bit in its middle."""
        tx, clk = self.dut.tx, self.dut.clk
        while True:
            await FallingEdge(tx)
            self.receiving = True
            await ClockCycles(clk, self.divisor // 2)
            if int(tx.value) != 0:
                self.framing_errors += 1
                self.receiving = False
                continue
            byte = 0
            for i in range(8):
                await ClockCycles(clk, self.divisor)
                byte |= int(tx.value) << i
            await ClockCycles(clk, self.divisor)
            if int(tx.value) != 1:
                self.framing_errors += 1
            self.received += bytes([byte])
            self.receiving = False

    async def read(self, n: int, timeout_cycles: int) -> bytes:
        """Up to ``n`` received bytes, waiting at most ``timeout_cycles`` for them."""
        for _ in range(timeout_cycles):
            if len(self.received) >= n:
                break
            await RisingEdge(self.dut.clk)
        out = bytes(self.received[:n])
        del self.received[:n]
        return out


class SimTransport:
    """A blocking :class:`boards.uart.Transport` for a :func:`cocotb.task.bridge` thread."""

    def __init__(self, model: UartModel, timeout_cycles: int):
        self._write = resume(model.send)
        self._read = resume(model.read)
        self.timeout_cycles = timeout_cycles

    def write(self, data: bytes) -> int:
        """Send bytes (blocks while simulation time runs)."""
        self._write(bytes(data))
        return len(data)

    def read(self, n: int) -> bytes:
        """Receive up to ``n`` bytes."""
        return self._read(n, self.timeout_cycles)


async def _start(dut, divisor: int) -> UartModel:
    dut.rx.value = 1
    has_rst = hasattr(dut, "rst")  # the vendor top (UartPorTop) resets itself at power-on
    if has_rst:
        dut.rst.value = 1
    Clock(dut.clk, PERIOD_NS, unit="ns").start(start_high=False)
    await ClockCycles(dut.clk, 4)
    if has_rst:
        dut.rst.value = 0
    await ClockCycles(dut.clk, 20)
    model = UartModel(dut, divisor)
    cocotb.start_soon(model.monitor())
    return model


@cocotb.test()
async def uart_vectors(dut) -> None:
    """The host driver's whole check through the harness: identity, vectors, equality, measured latency."""
    cfg = json.loads(Path(os.environ[CONFIG_ENV]).read_text())
    layout, divisor = cfg["layout"], int(cfg["divisor"])
    x = np.load(cfg["x"])
    expected = np.load(cfg["y"])
    model = await _start(dut, divisor)
    nout = word_bytes(layout["output"]["width"])
    timeout = 10 * divisor * ((1 + nout) * cfg["fifo_depth"] + ID_FRAME_BYTES + 4) + 200
    driver = HarnessDriver(SimTransport(model, timeout), layout, fifo_depth=int(cfg["fifo_depth"]))
    core = Path(cfg["core"]).read_text()
    r = await bridge(driver.verify)(cfg["name"], core, int(layout["latency"]), x, expected, "simulated line")
    Path(cfg["result"]).write_text(json.dumps({**r.to_dict(), "framing_errors": model.framing_errors,
                                               "sim_time_ns": get_sim_time("ns")}))  # fmt: skip
    assert model.framing_errors == 0
    assert r.passed, r.headline()


@cocotb.test()
async def uart_resync(dut) -> None:
    """A partial vector is dropped after the idle timeout and stray bytes are ignored; the next vector works."""
    cfg = json.loads(Path(os.environ[CONFIG_ENV]).read_text())
    layout, divisor = cfg["layout"], int(cfg["divisor"])
    x = np.load(cfg["x"])[:1]
    expected = np.load(cfg["y"])[:1]
    model = await _start(dut, divisor)
    nin, nout = word_bytes(layout["input"]["width"]), word_bytes(layout["output"]["width"])
    word = pack_words(layout, x)[0].to_bytes(nin, "little")
    await model.send(b"V" + word[: nin - 1])
    await ClockCycles(dut.clk, int(cfg["timeout_cycles"]) + 10 * divisor)
    await model.send(b"\x00Zq" + b"V" + word)
    got = await model.read(1 + nout, 10 * divisor * (nout + 5) + 200)
    assert len(got) == 1 + nout, f"harness answered {len(got)} of {1 + nout} bytes after a resync"
    assert got[:1] == b"Y" and int.from_bytes(got[1:], "little") == pack_words(layout, expected, "output")[0]


# -- a simulated board behind a pseudo-terminal (boards.simboard) ----------------------------------------------
@cocotb.test()
async def pty_board(dut) -> None:
    """Bridge a pseudo-terminal to the harness: bytes the host writes to the pty's other end go out on ``rx``
    bit by bit, bytes decoded from ``tx`` go back. Runs until ``stop`` exists or ``max_seconds`` pass."""
    cfg = json.loads(Path(os.environ[CONFIG_ENV]).read_text())
    divisor = int(cfg["divisor"])
    quiet_cycles = max(30 * divisor, int(cfg.get("latency", 0)) + 10 * divisor + 20)
    model = await _start(dut, divisor)
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line discipline: the board sees exactly the host's bytes
    os.set_blocking(master, False)
    link, ready, stop = Path(cfg["port"]), Path(cfg["ready"]), Path(cfg["stop"])
    tmp = link.with_name(link.name + ".tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.ttyname(slave))
    tmp.replace(link)
    ready.write_text(os.ttyname(slave))
    t_end = time.monotonic() + float(cfg.get("max_seconds", 86400))
    quiet = 0
    try:
        while not stop.exists() and time.monotonic() < t_end:
            try:
                data = os.read(master, 4096)
            except (BlockingIOError, OSError):
                data = b""
            if data:
                await model.send(data)
                quiet = 0
            if model.received:
                os.write(master, bytes(model.received))
                model.received.clear()
                quiet = 0
            if data:
                continue
            if quiet < quiet_cycles or model.receiving:
                await ClockCycles(dut.clk, 10 * divisor)
                quiet += 10 * divisor
            else:  # nothing on the line either way: wait for the host in real time, not simulated time
                select.select([master], [], [], 0.01)
    finally:
        with contextlib.suppress(OSError):
            link.unlink()
        os.close(master)
        os.close(slave)
