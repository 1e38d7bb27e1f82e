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

from amaranth.hdl import Cat, ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module, ResetSignal, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

__all__ = [
    "LfsrTop",
    "UartBoardTop",
    "UartHarness",
    "UartPorTop",
    "UartRx",
    "UartTx",
    "core_instance",
    "port_widths",
    "uart_divisor",
]


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
    """UART in → command parser → core → FIFO of ``y`` → framed UART out (protocol: :mod:`boards.uart`).

    Host → board: ``'V'`` followed by the packed input word (LSB byte first) is one vector; ``'I'`` asks for the
    identity frame; any other byte is ignored (resynchronisation). A partial vector is dropped after
    ``timeout_bytes`` byte times without a byte. Board → host: ``'Y'`` + the packed output word per vector, in
    order; ``'I'`` + :data:`~boards.uart.MAGIC` + version + design id + widths + FIFO depth + claimed latency + the
    latency measured on the last vector that entered an empty pipeline + the vector count since reset. The host
    may have at most ``fifo_depth`` vectors outstanding.
    """

    def __init__(
        self,
        layout: Mapping[str, Any],
        divisor: int,
        fifo_depth: int = 16,
        timeout_bytes: int = 64,
        design_id: int = 0,
    ):
        from .uart import ID_FRAME_BYTES, check_fifo_depth

        self.layout = layout
        self.divisor = divisor
        self.fifo_depth = check_fifo_depth(fifo_depth)
        self.timeout = divisor * 10 * timeout_bytes
        self.design_id = int(design_id) & 0xFFFFFFFF
        self.win, self.wout = port_widths(layout)
        self.nin, self.nout = -(-self.win // 8), -(-self.wout // 8)
        self.latency = int(layout.get("latency", 0))
        self.id_bytes = ID_FRAME_BYTES
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def _id_frame(self, measured: Signal, vectors: Signal) -> Any:
        """The identity frame (without its ``'I'`` header), LSB byte first, as one wide value."""
        from .uart import MAGIC, PROTOCOL_VERSION

        return Cat(
            Const(int.from_bytes(MAGIC, "little"), 24), Const(PROTOCOL_VERSION, 8), Const(self.design_id, 32),
            Const(self.nin, 16), Const(self.nout, 16), Const(self.fifo_depth, 16), Const(min(self.latency, 0xFFFF), 16),
            measured, vectors,
        )  # fmt: skip

    def elaborate(self, platform: Any) -> Module:
        """Wire receiver, command parser, core, latency counter, FIFO and the framed transmitter."""
        m = Module()
        m.submodules.rx = rx = UartRx(self.divisor)
        m.submodules.tx = tx = UartTx(self.divisor)
        m.submodules.rx_sync = FFSynchronizer(self.rx, rx.rx, init=1)
        m.d.comb += self.tx.eq(tx.tx)

        # Command parser and input word assembly: the first data byte ends up in the low bits.
        word = Signal(8 * self.nin, reset_less=True)
        nbyte = Signal(range(self.nin))
        in_vector = Signal()
        idle = Signal(range(self.timeout + 1))
        id_req = Signal()
        x = Signal(self.win, reset_less=True)
        valid_in = Signal()
        m.d.sync += valid_in.eq(0)
        word_next = Cat(word[8:], rx.data) if self.nin > 1 else rx.data
        with m.If(rx.stb):
            m.d.sync += idle.eq(0)
            with m.If(in_vector):
                m.d.sync += word.eq(word_next)
                with m.If(nbyte == self.nin - 1):
                    m.d.sync += [nbyte.eq(0), in_vector.eq(0), x.eq(word_next[: self.win]), valid_in.eq(1)]
                with m.Else():
                    m.d.sync += nbyte.eq(nbyte + 1)
            with m.Elif(rx.data == ord("V")):
                m.d.sync += [in_vector.eq(1), nbyte.eq(0)]
            with m.Elif(rx.data == ord("I")):
                m.d.sync += id_req.eq(1)
        with m.Elif(in_vector & (idle == self.timeout)):
            m.d.sync += [nbyte.eq(0), in_vector.eq(0), idle.eq(0)]
        with m.Elif(in_vector):
            m.d.sync += idle.eq(idle + 1)

        y, valid_out = Signal(self.wout), Signal()
        m.submodules.core = core_instance(self.layout, x, valid_in, y, valid_out)
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=self.wout, depth=self.fifo_depth)
        m.d.comb += [fifo.w_data.eq(y), fifo.w_en.eq(valid_out)]

        # Latency: counted from a valid_in that enters an empty pipeline to the next valid_out (that vector's).
        inflight = Signal(range(self.fifo_depth + 2))
        counting = Signal()
        count = Signal(16)
        measured = Signal(16, init=0xFFFF)
        vectors = Signal(32)
        m.d.sync += inflight.eq(inflight + valid_in - valid_out)
        with m.If(valid_in):
            m.d.sync += vectors.eq(vectors + 1)
        with m.If(counting):
            with m.If(valid_out):
                m.d.sync += [measured.eq(count), counting.eq(0)]
            with m.Elif(count != 0xFFFF):
                m.d.sync += count.eq(count + 1)
        with m.Elif(valid_in & (inflight == 0)):
            with m.If(valid_out):
                m.d.sync += measured.eq(0)
            with m.Else():
                m.d.sync += [counting.eq(1), count.eq(1)]

        # Output: one frame at a time, output words first, then a pending identity frame; LSB byte first.
        frame_bytes = 1 + max(self.nout, self.id_bytes)
        out = Signal(8 * frame_bytes, reset_less=True)
        left = Signal(range(frame_bytes + 1))
        with m.If(left == 0):
            with m.If(fifo.r_rdy):
                m.d.comb += fifo.r_en.eq(1)
                m.d.sync += [out.eq(Cat(Const(ord("Y"), 8), fifo.r_data)), left.eq(1 + self.nout)]
            with m.Elif(id_req):
                m.d.sync += [out.eq(Cat(Const(ord("I"), 8), self._id_frame(measured, vectors))),
                             left.eq(1 + self.id_bytes), id_req.eq(0)]  # fmt: skip
        with m.Elif(~tx.busy):
            m.d.comb += [tx.start.eq(1), tx.data.eq(out[:8])]
            m.d.sync += [out.eq(out >> 8), left.eq(left - 1)]
        return m


class UartBoardTop(Elaboratable):
    """The :class:`UartHarness` on a platform's ``uart`` 0 resource at ``baud`` (Amaranth board platforms)."""

    def __init__(self, layout: Mapping[str, Any], design_id: int, baud: int = 115200, fifo_depth: int = 16):
        self.layout = layout
        self.design_id = design_id
        self.baud = baud
        self.fifo_depth = fifo_depth

    def elaborate(self, platform: Any) -> Module:
        """Divisor = board clock / baud (rounded)."""
        divisor = uart_divisor(platform.default_clk_frequency, self.baud)
        m = Module()
        m.submodules.harness = h = UartHarness(self.layout, divisor, self.fifo_depth, design_id=self.design_id)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buf = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buf = tx = io.Buffer("o", uart.tx)
        m.d.comb += [h.rx.eq(rx.i), tx.o.eq(h.tx)]
        return m


class UartPorTop(wiring.Component):
    """The :class:`UartHarness` with ports ``clk``, ``rx``, ``tx`` only and a power-on reset (16 cycles), for
    vendor projects whose pins come from the board config: no reset pin is needed."""

    def __init__(self, layout: Mapping[str, Any], design_id: int, clock_hz: float, baud: int = 115200,
                 fifo_depth: int = 16):  # fmt: skip
        self.layout, self.design_id, self.fifo_depth = layout, design_id, fifo_depth
        self.divisor = uart_divisor(clock_hz, baud)
        super().__init__({"clk": In(1), "rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform: Any) -> Module:
        """A reset-less ``por`` domain counts down, holding ``sync`` in reset until it reaches zero."""
        m = Module()
        m.domains.por = por = ClockDomain(reset_less=True, local=True)
        m.domains.sync = sync = ClockDomain(local=True)
        hold = Signal(4, init=15)
        m.d.comb += [por.clk.eq(self.clk), sync.clk.eq(self.clk), sync.rst.eq(hold != 0)]
        with m.If(hold != 0):
            m.d.por += hold.eq(hold - 1)
        m.submodules.harness = h = UartHarness(self.layout, self.divisor, self.fifo_depth, design_id=self.design_id)
        m.d.comb += [h.rx.eq(self.rx), self.tx.eq(h.tx)]
        return m


def uart_divisor(clock_hz: float, baud: int) -> int:
    """Clocks per UART bit (rounded); refuses a baud rate the clock cannot make within 2 %."""
    if baud <= 0 or clock_hz <= 0:
        raise ValueError(f"clock {clock_hz!r} Hz and baud {baud!r} must be > 0")
    div = round(clock_hz / baud)
    if div < 2 or abs(clock_hz / div - baud) > 0.02 * baud:
        raise ValueError(f"a {clock_hz / 1e6:g} MHz clock cannot make {baud} baud within 2 % (divisor {div}); "
                         "pick a lower baud rate")  # fmt: skip
    return div
