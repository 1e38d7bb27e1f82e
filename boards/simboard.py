"""A simulated board behind a real pseudo-terminal: the UART harness around a core under Verilator or Icarus.

``hgq-hil sim-board DESIGN --port PATH`` (or :class:`SimBoard`) builds the harness Verilog of
:class:`boards.wrap.UartHarness` around the design's core, runs it in cocotb (``boards.tb_uart.pty_board``) and
bridges its UART pins bit by bit to a pseudo-terminal whose name is linked at ``PATH``. ``hgq-hil hil DESIGN --port
PATH`` then talks to it exactly as to a board on ``/dev/ttyUSB0``: the same protocol, driver and checks. The
harness runs with a small UART divisor (clocks per bit); the baud rate set on the pty is ignored.

``planted_bug=True`` builds a faulty board for tests: the core's ``y`` has its least significant bit flipped on
every vector whose packed input has odd parity, while the identity frame still names the intended core (a
hardware fault, not a wrong design).
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .uart import design_id, harness_verilog

__all__ = ["SimBoard", "board_sources", "plant_bug"]

TB_MODULE = "boards.tb_uart"
TOP = "uart_board"


def plant_bug(name: str, layout: dict[str, Any], verilog: str) -> str:
    """The core's Verilog with ``y[0]`` flipped when the packed ``x`` has odd parity (same module name and ports)."""
    good = f"{name}__good"
    text, n = re.subn(rf"\bmodule\s+{re.escape(name)}\s*\(", f"module {good}(", verilog)
    if n != 1:
        raise ValueError(f"cannot find `module {name}(` once in the core's Verilog ({n} found)")
    win, wout = max(1, int(layout["input"]["width"])), max(1, int(layout["output"]["width"]))
    en_port = ", input en" if layout.get("clock_enable") else ""
    en_conn = ", .en(en)" if layout.get("clock_enable") else ""
    flip = "^x" if wout == 1 else f"{{{{{wout - 1}{{1'b0}}}}, ^x}}"
    return (
        text
        + f"""
// planted bug (boards.simboard): y[0] flipped on inputs of odd parity
module {name}(input clk, input rst{en_port}, input [{win - 1}:0] x, input valid_in,
              output [{wout - 1}:0] y, output valid_out);
  wire [{wout - 1}:0] y_good;
  {good} good(.clk(clk), .rst(rst){en_conn}, .x(x), .valid_in(valid_in), .y(y_good), .valid_out(valid_out));
  assign y = y_good ^ {flip};
endmodule
"""
    )


def board_sources(
    design: Any, *, divisor: int = 4, fifo_depth: int = 16, timeout_bytes: int = 64, planted_bug: bool = False
) -> tuple[dict[str, str], dict[str, Any]]:
    """``({file: Verilog}, layout)`` of the harness (top ``uart_board``, its pins public) around ``design``'s core."""
    from .build import load_core

    name, layout, core_v = load_core(design)
    harness = harness_verilog(layout, divisor, fifo_depth, timeout_bytes, design_id(core_v))
    core = plant_bug(name, layout, core_v) if planted_bug else core_v
    return {f"{TOP}.v": _PUBLIC_TOP, "uart_harness.v": harness, f"{name}.v": core}, layout


# Verilator builds without --public-flat-rw (several times faster on large cores): only these pins are visible
_PUB = "/*verilator public_flat_rw*/"
_PUBLIC_TOP = f"""\
module {TOP}(input wire clk {_PUB}, input wire rst {_PUB}, input wire rx {_PUB}, output wire tx {_PUB});
  uart_harness harness(.clk(clk), .rst(rst), .rx(rx), .tx(tx));
endmodule
"""


class SimBoard:
    """A simulated board on a pseudo-terminal linked at ``port``; a context manager (started on enter).

    ``start()`` builds (cached) and starts the simulation in a background thread; ``wait_ready()`` blocks until
    the pty exists; ``stop()`` ends the simulation. ``max_seconds`` bounds how long the board lives.
    """

    def __init__(
        self,
        design: Any,
        port: str | Path,
        *,
        simulator: str = "verilator",
        divisor: int = 4,
        fifo_depth: int = 16,
        planted_bug: bool = False,
        max_seconds: float = 3600.0,
        work_dir: str | Path | None = None,
    ):
        from sim.runners import check_simulator

        check_simulator(simulator)
        self.design, self.port, self.simulator = design, Path(port), simulator
        if self.port.exists() and not self.port.is_symlink():
            raise FileExistsError(f"{self.port} exists and is not a link this command made: pick another --port path")
        if not self.port.parent.is_dir():
            raise FileNotFoundError(f"the directory of --port {self.port} does not exist")
        self.divisor, self.fifo_depth, self.planted_bug = divisor, fifo_depth, planted_bug
        self.max_seconds = max_seconds
        self.work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="hgq_simboard_"))
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.result: tuple[int, int] | None = None

    def start(self) -> SimBoard:
        """Build the harness (cached) and start the simulation thread."""
        from sim.runners import build, run_test

        sources, layout = board_sources(self.design, divisor=self.divisor, fifo_depth=self.fifo_depth,
                                        planted_bug=self.planted_bug)  # fmt: skip
        b = build(self.simulator, sources, TOP, label="simboard", public_all=False)
        self.work.mkdir(parents=True, exist_ok=True)
        self.ready, self.stop_file = self.work / "ready", self.work / "stop"
        self.ready.unlink(missing_ok=True)
        self.stop_file.unlink(missing_ok=True)
        cfg = {"divisor": self.divisor, "latency": int(layout["latency"]), "port": str(self.port.absolute()),
               "ready": str(self.ready), "stop": str(self.stop_file), "max_seconds": self.max_seconds}  # fmt: skip
        (self.work / "config.json").write_text(json.dumps(cfg))
        env = {"HGQ_HIL_UART_CONFIG": str(self.work / "config.json")}

        def run() -> None:
            try:
                _, n, nf = run_test(b, TB_MODULE, "pty_board", self.work / "run", extra_env=env)
                self.result = (n, nf)
            except BaseException as err:  # reported by wait_ready/stop in the caller's thread
                self._error = err

        self._thread = threading.Thread(target=run, name="hgq-simboard", daemon=True)
        self._thread.start()
        return self

    def wait_ready(self, timeout: float = 120.0) -> str:
        """The pty's device name once the simulated board listens; raises when it died or took too long."""
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.ready.exists() and self.port.is_symlink():
                return self.ready.read_text()
            if self._thread is None or not self._thread.is_alive():
                raise RuntimeError(f"the simulated board stopped before it was ready: {self._error or self.result}; "
                                   f"log in {self.work / 'run'}")  # fmt: skip
            time.sleep(0.05)
        raise TimeoutError(f"the simulated board was not ready after {timeout:.0f} s (log in {self.work / 'run'})")

    def alive(self) -> bool:
        """Whether the simulation still runs."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the simulation to end (``max_seconds`` or :meth:`stop`)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the simulation to end and wait for it."""
        if self._thread is None:
            return
        self.stop_file.touch()
        self._thread.join(timeout)
        if self.port.is_symlink():
            self.port.unlink()

    def __enter__(self) -> SimBoard:
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
