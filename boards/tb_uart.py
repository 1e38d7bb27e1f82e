"""cocotb test module for the UART harness top (:class:`boards.wrap.UartHarness` around a core).

A bit-level UART model drives ``rx`` and decodes ``tx`` (8N1, ``divisor`` clocks per bit); the real host
driver (:class:`boards.uart.HarnessDriver`) runs in a :func:`cocotb.task.bridge` thread on a transport whose
``write``/``read`` are :func:`cocotb.task.resume` coroutines on that model. Configured by the JSON file named in
``$HGQ_HIL_UART_CONFIG``; results go to the JSON path in the config.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotb.utils import get_sim_time

from boards.uart import HarnessDriver, pack_words, word_bytes

CONFIG_ENV = "HGQ_HIL_UART_CONFIG"
PERIOD_NS = 10


class UartModel:
    """Host end of the serial line, bit by bit, in simulation time."""

    def __init__(self, dut, divisor: int):
        self.dut, self.divisor = dut, divisor
        self.received = bytearray()
        self.framing_errors = 0

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
            await ClockCycles(clk, self.divisor // 2)
            if int(tx.value) != 0:
                self.framing_errors += 1
                continue
            byte = 0
            for i in range(8):
                await ClockCycles(clk, self.divisor)
                byte |= int(tx.value) << i
            await ClockCycles(clk, self.divisor)
            if int(tx.value) != 1:
                self.framing_errors += 1
            self.received += bytes([byte])

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
    dut.rst.value = 1
    Clock(dut.clk, PERIOD_NS, unit="ns").start(start_high=False)
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    model = UartModel(dut, divisor)
    cocotb.start_soon(model.monitor())
    return model


@cocotb.test()
async def uart_vectors(dut) -> None:
    """Stream the vectors through the harness with the host driver; outputs must equal the expected ones."""
    cfg = json.loads(Path(os.environ[CONFIG_ENV]).read_text())
    layout, divisor = cfg["layout"], int(cfg["divisor"])
    x = np.load(cfg["x"])
    expected = np.load(cfg["y"])
    model = await _start(dut, divisor)
    nout = word_bytes(layout["output"]["width"])
    timeout = 10 * divisor * (nout * cfg["fifo_depth"] + 4) + 200
    driver = HarnessDriver(SimTransport(model, timeout), layout, fifo_depth=int(cfg["fifo_depth"]))
    got = await bridge(driver.run)(x)
    exp_words = pack_words(layout, expected, "output")
    got_words = pack_words(layout, got, "output")
    mism = [i for i, (a, b) in enumerate(zip(got_words, exp_words, strict=True)) if a != b]
    Path(cfg["result"]).write_text(
        json.dumps(
            {
                "vectors": len(x),
                "mismatches": len(mism),
                "first_mismatch": mism[:1],
                "framing_errors": model.framing_errors,
                "sim_time_ns": get_sim_time("ns"),
            }
        )
    )
    assert model.framing_errors == 0
    assert got_words == exp_words, f"{len(mism)} of {len(x)} vectors differ, first {mism[:1]}"


@cocotb.test()
async def uart_resync(dut) -> None:
    """A partial input word is dropped after the idle timeout; the next full word is processed normally."""
    cfg = json.loads(Path(os.environ[CONFIG_ENV]).read_text())
    layout, divisor = cfg["layout"], int(cfg["divisor"])
    x = np.load(cfg["x"])[:1]
    expected = np.load(cfg["y"])[:1]
    model = await _start(dut, divisor)
    nin, nout = word_bytes(layout["input"]["width"]), word_bytes(layout["output"]["width"])
    word = pack_words(layout, x)[0].to_bytes(nin, "little")
    await model.send(word[: max(1, nin - 1)] if nin > 1 else b"")
    await ClockCycles(dut.clk, int(cfg["timeout_cycles"]) + 10 * divisor)
    await model.send(word)
    got = await model.read(nout, 10 * divisor * (nout + 4) + 200)
    assert len(got) == nout, f"harness answered {len(got)} of {nout} bytes after a resync"
    assert int.from_bytes(got, "little") == pack_words(layout, expected, "output")[0]
