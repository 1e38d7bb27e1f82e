"""Hardware in the loop: the harness protocol and host driver (fast, on a Python model of the harness), and
``hgq-hil hil`` end to end against a simulated board (the UART-wrapped jet tagger under Verilator behind a real
pseudo-terminal), including a planted-bug board and a board running another design, which must fail."""

from __future__ import annotations

import json
import os
import tty
from pathlib import Path

import numpy as np
import pytest
from fixtures.boards_toy import toy_design

import boards
import hdl_gen
from boards.checks import EXIT_BAD_INPUT, EXIT_FAIL, EXIT_TOOL, exit_code, load_model_file
from boards.cli import SHIPPED_MODEL, main
from boards.config import BUILTIN_DIR, ENV_VAR
from boards.simboard import SimBoard, board_sources, plant_bug
from boards.uart import (
    ID_FRAME_BYTES,
    BoardInfo,
    BoardTimeout,
    FramingError,
    HarnessDriver,
    ModelTransport,
    WrongDesign,
    design_id,
    harness_verilog,
    pack_words,
    unpack_words,
)
from boards.wrap import uart_divisor
from hgq.data import physics_vectors

LAYOUT = {
    "name": "adder",
    "latency": 3,
    "input": {
        "width": 14,
        "shape": [3],
        "elements": [
            {"index": 0, "offset": 0, "width": 5, "signed": True, "f": 2},
            {"index": 1, "offset": 5, "width": 3, "signed": False, "f": 0},
            {"index": 2, "offset": 8, "width": 6, "signed": False, "f": 3},
        ],
    },
    "output": {"width": 9, "shape": [1], "elements": [{"index": 0, "offset": 0, "width": 9, "signed": True, "f": 3}]},
}
CORE = "module adder(...); endmodule // stands in for the core's Verilog"


def _model(words: list[int]) -> list[int]:
    """Bit-level reference of a core computing y = x0 + x2 (f = 3) on packed words."""
    out = []
    for w in words:
        a = w & 31
        a = a - 32 if a >= 16 else a
        b = (w >> 8) & 63
        out.append((2 * a + b) & 511)
    return out


def _x(n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(-16, 16, n) / 4, rng.integers(0, 8, n), rng.integers(0, 64, n) / 8], axis=1)


def _board(**kw) -> ModelTransport:
    return ModelTransport(LAYOUT, _model, **{"fifo_depth": 3, "ident": design_id(CORE), "latency": 3, **kw})


def test_driver_verify_on_the_model_harness():
    x = _x()
    assert unpack_words(LAYOUT, pack_words(LAYOUT, x), "input").tolist() == x.tolist()
    y = (x[:, 0] + x[:, 2])[:, None]
    r = HarnessDriver(_board(), LAYOUT, fifo_depth=8).verify("adder", CORE, 3, x, y, "model")
    assert r.passed and (r.vectors, r.compared, r.mismatches, r.latency_measured) == (40, 40, 0, 3)
    assert r.board["vectors"] == 40 and r.board["fifo_depth"] == 3
    wrong = y.copy()
    wrong[7] += 0.125
    bad = HarnessDriver(_board(), LAYOUT).verify("adder", CORE, 3, x, wrong)
    assert not bad.passed and bad.mismatches == 1 and bad.first_mismatch["sample"] == 7
    assert bad.first_mismatch["expected"]["mantissa"] == bad.first_mismatch["got"]["mantissa"] + 1
    assert "1 of 40 vectors differ" in bad.headline()
    late = HarnessDriver(_board(latency=4), LAYOUT).verify("adder", CORE, 3, x, y)  # claims 4: measured 4 != 3
    assert not late.passed and late.problems() == ["latency 4 cycles measured, 3 claimed"]


def test_identity_frame_and_wrong_design():
    info = HarnessDriver(_board(), LAYOUT).identify()
    assert info == BoardInfo(1, design_id(CORE), 2, 2, 3, 3, None, 0)
    with pytest.raises(WrongDesign, match=r"runs design id [0-9a-f]{8} .* not 'adder' .*--wrapper uart"):
        HarnessDriver(_board(ident=1234), LAYOUT).check_design("adder", CORE)
    with pytest.raises(FramingError, match="lacks the magic"):
        BoardInfo.parse(b"XYZ" + bytes(ID_FRAME_BYTES - 3))
    assert exit_code(WrongDesign("x")) == EXIT_FAIL


def test_framing_and_timeout_errors():
    class Garbled(ModelTransport):  # the line flips a bit of the third output frame's header
        def read(self, n):
            out = bytearray(super().read(n))
            if len(out) > 6:
                out[6] ^= 0x10
            return bytes(out)

    with pytest.raises(FramingError, match="output frame 2 starts with 0x49, not 'Y'"):
        HarnessDriver(Garbled(LAYOUT, _model), LAYOUT).run(_x(4))

    class Silent:
        def write(self, data):
            return len(data)

        def read(self, n):
            return b""

    with pytest.raises(BoardTimeout, match="sent 0 of 3 bytes for vectors 0..0"):
        HarnessDriver(Silent(), LAYOUT).run(np.zeros((1, 3)))
    with pytest.raises(TypeError, match="no write"):
        HarnessDriver(object(), LAYOUT)
    with pytest.raises(ValueError, match="fifo_depth must be an integer in 1..4096"):
        HarnessDriver(Silent(), LAYOUT, fifo_depth=0)
    with pytest.raises(ValueError, match="does not fit"):
        pack_words(LAYOUT, np.array([[4.0, 0.0, 0.0]]))
    with pytest.raises(RuntimeError, match="FIFO overflow"):
        HarnessDriver(_board(fifo_depth=2), LAYOUT, fifo_depth=3).run(_x())
    assert exit_code(BoardTimeout("x")) == EXIT_TOOL and exit_code(FramingError("x")) == EXIT_TOOL


def test_divisor_and_planted_bug_text():
    assert uart_divisor(25e6, 115200) == 217 and uart_divisor(100e6, 1_000_000) == 100
    with pytest.raises(ValueError, match="cannot make 5000000 baud"):
        uart_divisor(12e6, 5_000_000)
    bug = plant_bug("core", LAYOUT, "module core(clk, rst, x, valid_in, y, valid_out);\nendmodule\n")
    assert "module core__good(" in bug and "core__good good(" in bug and "^ {{8{1'b0}}, ^x}" in bug
    with pytest.raises(ValueError, match="cannot find `module other"):
        plant_bug("other", LAYOUT, "module core(clk); endmodule")
    # the harness Verilog is deterministic and carries the design id
    a, b = harness_verilog(LAYOUT, 4, 4, 8, 0x1234ABCD), harness_verilog(LAYOUT, 4, 4, 8, 0x1234ABCD)
    assert a == b and "1234abcd" in a.lower() and a != harness_verilog(LAYOUT, 4, 4, 8, 0x1234ABCE)


@pytest.fixture(scope="module")
def jet(tmp_path_factory):
    """The shipped jet tagger as a design directory (VU13P, 200 MHz) and 200 physics vectors with Keras' outputs."""
    d = tmp_path_factory.mktemp("jet")
    model = load_model_file(SHIPPED_MODEL)
    design = hdl_gen.convert(model, clock_ns=5.0, name="jet_tagger")
    design.write(d / "design")
    x = hdl_gen.quantize_input(model, physics_vectors(200, seed=11))
    np.savez(d / "v.npz", x=x, y=model.predict(x, verbose=0))
    return design, d


def test_hil_cli_errors_without_a_board(jet, tmp_path, capsys):
    _, d = jet
    assert main(["hil", str(d / "design"), "--port", str(tmp_path / "nope")]) == EXIT_BAD_INPUT
    assert "does not exist" in capsys.readouterr().err
    master, slave = os.openpty()  # a port with nothing behind it: a timeout, not a hang
    try:
        tty.setraw(slave)
        rc = main(["hil", str(d / "design"), "--port", os.ttyname(slave), "--timeout", "0.3", "--n-random", "2"])
        assert rc == EXIT_TOOL and "sent 0 of 23 bytes for the identity frame" in capsys.readouterr().err
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.sim("verilator")
def test_hil_against_simulated_boards(jet, tmp_path, capsys):
    design, d = jet
    port = tmp_path / "board"
    srcs, _ = board_sources(design)
    assert f"module {design.name}(" in srcs[f"{design.name}.v"] and "uart_board" in srcs["uart_board.v"]
    with SimBoard(design, port, work_dir=tmp_path / "good"):
        rc = main(["hil", str(d / "design"), "--port", str(port), "--vectors", str(d / "v.npz"), "--timeout", "20",
                   "--json"])  # fmt: skip
        r = json.loads(capsys.readouterr().out)
        assert rc == 0 and r["passed"] and r["compared"] == 200 and r["mismatches"] == 0
        assert r["latency_measured"] == r["latency_expected"] == design.latency and r["board"]["vectors"] == 200
        # another design (same model at another clock: other Verilog) is refused by the identity check
        other = hdl_gen.convert(load_model_file(SHIPPED_MODEL), clock_ns=2.0, name="jet_tagger")
        assert other.verilog() != design.verilog()
        other.write(tmp_path / "other")
        rc = main(["hil", str(tmp_path / "other"), "--port", str(port), "--n-random", "4", "--timeout", "20"])
        assert rc == EXIT_FAIL and f"runs design id {design_id(design.verilog()):08x}" in capsys.readouterr().err
    assert not port.exists()
    with SimBoard(design, port, planted_bug=True, work_dir=tmp_path / "bug"):
        rc = main(["hil", str(d / "design"), "--port", str(port), "--vectors", str(d / "v.npz"), "--timeout", "20"])
        out = capsys.readouterr().out
    assert rc == EXIT_FAIL and out.startswith("MISMATCH: 200 outputs compared,") and "first mismatch" in out
    x = np.load(d / "v.npz")["x"]
    odd = [bin(w).count("1") % 2 == 1 for w in pack_words(design.layout, x)]
    assert f"{sum(odd)} mismatches" in out  # exactly the vectors of odd parity are wrong
    assert Path(tmp_path / "good" / "config.json").exists()


def test_vendor_uart_projects(tmp_path, monkeypatch):
    """``build --wrapper uart`` on a vendor part: a full-chip project of the harness top on the config's pins."""
    from fixtures.boards_toy import toy_design

    import boards

    d = toy_design(4)
    r = boards.build(d, "vu9p", tmp_path / "vu9p", wrapper="uart", run=False)
    top = (tmp_path / "vu9p" / "hgq_uart_top.v").read_text()
    assert "module hgq_uart_top(" in top and f"{design_id(d.verilog()):08x}" in top.lower()
    assert "module hgq_uart_top(rx, tx, clk);" in top  # no reset pin: a power-on reset
    xdc = (tmp_path / "vu9p" / "hgq_uart_top.xdc").read_text()
    assert "# TODO set the package pin: set_property PACKAGE_PIN <pin> [get_ports rx]" in xdc
    assert "placeholders" in r.note and "out_of_context" not in (tmp_path / "vu9p" / "hgq_uart_top.tcl").read_text()
    with pytest.raises(ValueError, match="is a vendor part"):
        boards.build(d, "vu9p", tmp_path / "x", wrapper="lfsr", run=False)
    # a board file with pins: placed, no placeholders; Quartus assembles a .sof
    for name, pins in (
        ("vu9p", 'clk = "AY24"\nrx = "AW25"\ntx = "BB21"\n'),
        ("agilex7", 'clk = "A1"\nrx = "B2"\ntx = "C3"\nstandard = "1.8 V"\n'),
    ):
        text = (BUILTIN_DIR / f"{name}.toml").read_text().replace(f'name = "{name}"', f'name = "{name}_pins"')
        (tmp_path / f"{name}_pins.toml").write_text(text + f"\n[pins]\n{pins}")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    boards.build(d, "vu9p_pins", tmp_path / "p", wrapper="uart", run=False)
    xdc = (tmp_path / "p" / "hgq_uart_top.xdc").read_text()
    assert "set_property PACKAGE_PIN AW25 [get_ports rx]" in xdc and "TODO" not in xdc
    assert "write_bitstream -force hgq_uart_top.bit" in (tmp_path / "p" / "hgq_uart_top.tcl").read_text()
    boards.build(d, "agilex7_pins", tmp_path / "q", wrapper="uart", run=False)
    tcl = (tmp_path / "q" / "hgq_uart_top_quartus.tcl").read_text()
    assert "set_location_assignment PIN_B2 -to rx" in tcl and 'IO_STANDARD "1.8 V" -to tx' in tcl
    assert "execute_module -tool asm" in tcl and "VIRTUAL_PIN" not in tcl
    fake = tmp_path / "vivado"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("VIVADO", str(fake))
    with pytest.raises(ValueError, match=r"board 'vu9p' has no package pins for \['clk', 'rx', 'tx'\]"):
        boards.build(d, "vu9p", tmp_path / "run", wrapper="uart")


def test_open_board_uart_bitstream(tmp_path):
    """``build --wrapper uart`` on an open board is a real bitstream of the harness on the board's UART pins."""
    r = boards.build(toy_design(4), "icebreaker", tmp_path, wrapper="uart", baud=115200)
    assert r.ran and (tmp_path / "board_top.bin").stat().st_size > 1000
    pcf = (tmp_path / "board_top.pcf").read_text()
    assert "set_io uart_0__rx__io 6" in pcf and "set_io uart_0__tx__io 9" in pcf  # the iCEBreaker's FTDI UART
    assert r.utilization["BRAM"] >= 1 and r.fmax_mhz > r.clock_mhz  # the output FIFO, and 12 MHz is met
    with pytest.raises(ValueError, match="cannot make 5000000 baud"):
        boards.build(toy_design(4), "icebreaker", tmp_path / "fast", wrapper="uart", baud=5_000_000)
