"""Tops that wrap a generated core so a board build keeps all of its logic.

Only platform resources become pins, so a bare core would be optimised away. Two wrappers:

- :class:`LfsrTop` drives ``x`` from a shift register fed by a 32-bit LFSR (every input bit a distinct
  register), registers ``y`` and XOR-reduces it with ``valid_out`` into one register on an LED.
- :class:`UartHarness` is the hardware-in-the-loop test harness: UART rx (8N1) shifts in the packed input
  word, LSB byte first; when the last byte arrives it pulses ``valid_in`` with ``x``; each ``y`` captured on
  ``valid_out`` goes into a FIFO and is sent back over UART tx, LSB byte first. :class:`UartBoardTop` puts it
  on a platform's ``uart`` resource with the divisor from the board clock and the baud rate.

The core is instantiated by module name (its Verilog is added to the build separately) with the ports of
docs/interfaces.md: ``clk``, ``rst``, ``x``, ``valid_in``, ``y``, ``valid_out`` (and ``en`` tied high when the
layout has ``clock_enable``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amaranth.hdl import Cat, ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

__all__ = ["LfsrTop", "UartBoardTop", "UartHarness", "UartRx", "UartTx", "core_instance", "port_widths"]


def port_widths(layout: Mapping[str, Any]) -> tuple[int, int]:
    """Widths of the packed ``x`` and ``y`` ports (at least 1 each, per the layout contract)."""
    return max(1, int(layout["input"]["width"])), max(1, int(layout["output"]["width"]))


def core_instance(
    layout: Mapping[str, Any], x: Signal, valid_in: Signal, y: Signal, valid_out: Signal, domain: str = "sync"
) -> Instance:
    """An ``Instance`` of the core module named ``layout["name"]`` clocked by ``domain``."""
    ports: dict[str, Any] = {
        "i_clk": ClockSignal(domain),
        "i_rst": ResetSignal(domain, allow_reset_less=True),
        "i_x": x,
        "i_valid_in": valid_in,
        "o_y": y,
        "o_valid_out": valid_out,
    }
    if layout.get("clock_enable"):
        ports["i_en"] = 1
    return Instance(layout["name"], **ports)


class LfsrTop(Elaboratable):
    """Board top: LFSR-fed input shift register → core → XOR-reduce of ``y`` → ``led`` 0."""

    def __init__(self, layout: Mapping[str, Any], seed: int = 0xACE1):
        self.layout = layout
        self.seed = seed & 0xFFFFFFFF or 1
        self.win, self.wout = port_widths(layout)
        self.led = Signal()  # also driven to the platform's led 0 when there is one

    def elaborate(self, platform: Any) -> Module:
        """Build the wrapper; requests ``led`` 0 from ``platform`` when given."""
        m = Module()
        lfsr = Signal(32, init=self.seed)
        m.d.sync += lfsr.eq(Cat(lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0], lfsr[:31]))
        x = Signal(self.win, reset_less=True)
        m.d.sync += x.eq(Cat(lfsr[0], x[:-1]) if self.win > 1 else lfsr[0])
        y, valid_out = Signal(self.wout), Signal()
        m.submodules.core = core_instance(self.layout, x, lfsr[1], y, valid_out)
        y_reg = Signal(self.wout, reset_less=True)
        m.d.sync += [y_reg.eq(y), self.led.eq(y_reg.xor() ^ valid_out)]
        if platform is not None:
            m.submodules.led_buf = led = io.Buffer("o", platform.request("led", 0, dir="-"))
            m.d.comb += led.o.eq(self.led)
        return m


class UartRx(Elaboratable):
    """8N1 receiver: ``divisor`` clocks per bit; ``stb`` pulses one cycle with ``data``."""

    def __init__(self, divisor: int):
        if divisor < 2:
            raise ValueError(f"UART divisor must be >= 2 clocks per bit, got {divisor!r}")
        self.divisor = divisor
        self.rx = Signal(init=1)
        self.data = Signal(8)
        self.stb = Signal()

    def elaborate(self, platform: Any) -> Module:
        """Sample each bit in its middle; drop frames with a bad start or stop bit."""
        m = Module()
        cnt = Signal(range(self.divisor))
        bit = Signal(range(8))
        shreg = Signal(8)
        with m.FSM() as fsm:
            with m.State("IDLE"), m.If(~self.rx):
                m.d.sync += cnt.eq(self.divisor // 2 - 1)
                m.next = "START"
            with m.State("START"):
                with m.If(cnt != 0):
                    m.d.sync += cnt.eq(cnt - 1)
                with m.Elif(~self.rx):
                    m.d.sync += [cnt.eq(self.divisor - 1), bit.eq(0)]
                    m.next = "DATA"
                with m.Else():
                    m.next = "IDLE"
            with m.State("DATA"):
                with m.If(cnt != 0):
                    m.d.sync += cnt.eq(cnt - 1)
                with m.Else():
                    m.d.sync += [shreg.eq(Cat(shreg[1:], self.rx)), cnt.eq(self.divisor - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(cnt != 0):
                    m.d.sync += cnt.eq(cnt - 1)
                with m.Else():
                    m.next = "IDLE"
        # plain assigns (not inside the FSM's always @*) so Icarus evaluates them at time 0
        m.d.comb += [self.data.eq(shreg), self.stb.eq(fsm.ongoing("STOP") & (cnt == 0) & self.rx)]
        return m


class UartTx(Elaboratable):
    """8N1 transmitter: pulse ``start`` with ``data`` while not ``busy``."""

    def __init__(self, divisor: int):
        if divisor < 2:
            raise ValueError(f"UART divisor must be >= 2 clocks per bit, got {divisor!r}")
        self.divisor = divisor
        self.tx = Signal(init=1)
        self.data = Signal(8)
        self.start = Signal()
        self.busy = Signal()

    def elaborate(self, platform: Any) -> Module:
        """Shift out start bit, 8 data bits LSB first, stop bit."""
        m = Module()
        cnt = Signal(range(self.divisor))
        bit = Signal(range(10))
        shreg = Signal(10, init=0x3FF)
        with m.FSM() as fsm:
            with m.State("IDLE"), m.If(self.start):
                m.d.sync += [shreg.eq(Cat(0, self.data, 1)), cnt.eq(self.divisor - 1), bit.eq(0)]
                m.next = "SEND"
            with m.State("SEND"):
                with m.If(cnt != 0):
                    m.d.sync += cnt.eq(cnt - 1)
                with m.Else():
                    m.d.sync += [shreg.eq(Cat(shreg[1:], 1)), cnt.eq(self.divisor - 1), bit.eq(bit + 1)]
                    with m.If(bit == 9):
                        m.next = "IDLE"
        m.d.comb += [self.tx.eq(shreg[0]), self.busy.eq(fsm.ongoing("SEND"))]
        return m


class UartHarness(wiring.Component):
    """UART in → packed ``x`` → core → FIFO of ``y`` → UART out (LSB byte first both ways).

    The host may have at most ``fifo_depth`` vectors outstanding. A partial input word is dropped after
    ``timeout_bytes`` byte times without a byte, so the host can resynchronise.
    """

    def __init__(self, layout: Mapping[str, Any], divisor: int, fifo_depth: int = 16, timeout_bytes: int = 64):
        self.layout = layout
        self.divisor = divisor
        self.fifo_depth = fifo_depth
        self.timeout = divisor * 10 * timeout_bytes
        self.win, self.wout = port_widths(layout)
        self.nin, self.nout = -(-self.win // 8), -(-self.wout // 8)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform: Any) -> Module:
        """Wire receiver, word assembly, core, FIFO and transmitter."""
        m = Module()
        m.submodules.rx = rx = UartRx(self.divisor)
        m.submodules.tx = tx = UartTx(self.divisor)
        m.submodules.rx_sync = FFSynchronizer(self.rx, rx.rx, init=1)
        m.d.comb += self.tx.eq(tx.tx)

        # Input word assembly: the first byte received ends up in the low bits.
        word = Signal(8 * self.nin, reset_less=True)
        nbyte = Signal(range(self.nin))
        idle = Signal(range(self.timeout + 1))
        x = Signal(self.win, reset_less=True)
        valid_in = Signal()
        m.d.sync += valid_in.eq(0)
        word_next = Cat(word[8:], rx.data) if self.nin > 1 else rx.data
        with m.If(rx.stb):
            m.d.sync += [word.eq(word_next), idle.eq(0)]
            with m.If(nbyte == self.nin - 1):
                m.d.sync += [nbyte.eq(0), x.eq(word_next[: self.win]), valid_in.eq(1)]
            with m.Else():
                m.d.sync += nbyte.eq(nbyte + 1)
        with m.Elif(idle == self.timeout):
            m.d.sync += [nbyte.eq(0), idle.eq(0)]
        with m.Else():
            m.d.sync += idle.eq(idle + 1)

        y, valid_out = Signal(self.wout), Signal()
        m.submodules.core = core_instance(self.layout, x, valid_in, y, valid_out)
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=self.wout, depth=self.fifo_depth)
        m.d.comb += [fifo.w_data.eq(y), fifo.w_en.eq(valid_out)]

        # Output: pop one word, send its bytes LSB first.
        out = Signal(8 * self.nout, reset_less=True)
        obyte = Signal(range(self.nout))
        sending = Signal()
        with m.If(~sending & fifo.r_rdy):
            m.d.comb += fifo.r_en.eq(1)
            m.d.sync += [out.eq(fifo.r_data), obyte.eq(0), sending.eq(1)]
        with m.Elif(sending & ~tx.busy):
            m.d.comb += [tx.start.eq(1), tx.data.eq(out[:8])]
            m.d.sync += out.eq(out >> 8)
            with m.If(obyte == self.nout - 1):
                m.d.sync += sending.eq(0)
            with m.Else():
                m.d.sync += obyte.eq(obyte + 1)
        return m


class UartBoardTop(Elaboratable):
    """The :class:`UartHarness` on a platform's ``uart`` 0 resource at ``baud``."""

    def __init__(self, layout: Mapping[str, Any], baud: int = 115200, fifo_depth: int = 16):
        self.layout = layout
        self.baud = baud
        self.fifo_depth = fifo_depth

    def elaborate(self, platform: Any) -> Module:
        """Divisor = board clock / baud (rounded)."""
        m = Module()
        divisor = round(platform.default_clk_frequency / self.baud)
        m.submodules.harness = h = UartHarness(self.layout, divisor, self.fifo_depth)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buf = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buf = tx = io.Buffer("o", uart.tx)
        m.d.comb += [h.rx.eq(rx.i), tx.o.eq(h.tx)]
        return m
