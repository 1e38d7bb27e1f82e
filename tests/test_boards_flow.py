"""boards: open-source builds that really run (yowasp yosys + nextpnr) and the UART harness in cocotb.

Cold YoWASP cache: the first yosys/nextpnr/packer runs compile their WebAssembly (about 30 s in all here);
warm, each board build of the toy core takes about 10 s.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fixtures.boards_toy import toy_design

import boards
from boards.config import ENV_VAR
from boards.uart import simulate_harness


@pytest.mark.parametrize(("board", "bitstream"), [("ulx3s", "board_top.bit"), ("icebreaker", "board_top.bin")])
def test_open_build_runs(tmp_path, board, bitstream):
    r = boards.build(toy_design(4), board, tmp_path / board)
    assert r.ran and (tmp_path / board / bitstream).stat().st_size > 1000
    # the LFSR wrapper keeps the whole core: 24 input + 17 output + 32 LFSR registers at least
    assert r.utilization["FF"] >= 24 + 17 + 32
    assert r.utilization["LUT"] > 20 and r.utilization["CARRY"] > 0
    assert r.utilization["DSP"] == 0 and r.utilization["BRAM"] == 0
    assert r.fmax_mhz > r.clock_mhz and r.timing_met
    saved = json.loads((tmp_path / board / "result.json").read_text())
    assert saved["utilization"] == r.utilization and saved["fmax_mhz"] == r.fmax_mhz
    assert "Fmax" in r.table()


def test_open_build_plan_only(tmp_path):
    r = boards.build(toy_design(4), "ulx3s", tmp_path, run=False)
    assert not r.ran and r.fmax_mhz is None
    script = (tmp_path / "build_board_top.sh").read_text()
    assert "--report board_top.report.json" in script and "--85k --package CABGA381" in script
    assert (tmp_path / "toy_core.v").read_text() == toy_design(4).verilog()
    ys = (tmp_path / "board_top.ys").read_text()  # default: classic ABC LUT mapping between synth_ecp5's halves
    assert "synth_ecp5 -run :map_luts -top board_top" in ys and "abc -dress -lut 4" in ys
    assert ys.index("abc -dress") < ys.index("synth_ecp5 -run map_cells: -top board_top") < ys.index("stat -json")


def test_open_build_synth_modes(tmp_path):
    ice = (boards.build(toy_design(4), "icebreaker", tmp_path / "ice", run=False), tmp_path / "ice/board_top.ys")
    ys = ice[1].read_text()
    assert (
        "synth_ice40 -run :map_luts" in ys and "ice40_wrapcarry -unwrap" in ys and "synth_ice40 -run map_cells:" in ys
    )
    boards.build(toy_design(4), "ulx3s", tmp_path / "abc9", run=False, synth="abc9")
    ys9 = (tmp_path / "abc9/board_top.ys").read_text()
    assert "synth_ecp5  -top board_top" in ys9 and "-run" not in ys9 and "abc -dress" not in ys9
    with pytest.raises(ValueError, match=r"synth 'abc7' is not one of"):
        boards.build(toy_design(4), "ulx3s", tmp_path / "bad", run=False, synth="abc7")


def test_too_large_is_a_clear_error(tmp_path, monkeypatch):
    """Over the board's capacity (a fake 20-LUT iCE40): one line with the counts, the capacity and the fix, the
    verdict's exit code 1, raised after yosys and before nextpnr starts."""
    from boards.checks import exit_code

    cfg = (Path(boards.config.BUILTIN_DIR) / "icebreaker.toml").read_text()
    cfg = cfg.replace('name = "icebreaker"', 'name = "tiny_ice"').replace("LUT = 5280", "LUT = 20")
    (tmp_path / "tiny_ice.toml").write_text(cfg)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    msg = (
        r"design too large for board 'tiny_ice' \(iCE40UP5K-SG48\), by the yosys estimate before place-and-route: "
        r"LUT \d+ > 20 \(\d+ %\); build a smaller Pareto point .*--model.* or pick a bigger board \(`hgq-hil boards`\)$"
    )
    with pytest.raises(boards.DesignTooLarge, match=msg) as err:
        boards.build(toy_design(4), "tiny_ice", tmp_path / "out")
    assert "\n" not in str(err.value) and exit_code(err.value) == 1
    out = tmp_path / "out"
    assert (out / "board_top.stat.json").is_file()  # yosys ran; nextpnr (its log, report, placed design) did not
    assert not [f for f in ("board_top.tim", "board_top.report.json", "board_top.asc") if (out / f).exists()]


@pytest.mark.slow
def test_jet_tagger_on_ulx3s(tmp_path):
    """`hgq-hil build --board ulx3s` (the nox hdl session): the shipped jet tagger through yosys (classic abc) and
    nextpnr-ecp5; LUT4, FF and Fmax come back from the reports (about 1.5 min here: ~7 s yosys, ~60 s nextpnr)."""
    from boards.cli import main

    out = tmp_path / "ulx3s"
    assert main(["build", "--board", "ulx3s", "--out", str(out), "--json"]) == 0
    r = json.loads((out / "result.json").read_text())
    u, a = r["utilization"], r["available"]
    assert r["ran"] and r["part"] == "LFE5U-85F-6BG381C" and r["clock_mhz"] == 25.0
    assert 1000 < u["LUT"] <= a["LUT"] == 83640 and 0 < u["FF"] <= a["FF"] and u["CARRY"] > 0
    assert r["fmax_mhz"] > 0 and r["details"]["clocks"]
    assert (out / "board_top.bit").stat().st_size > 1000


def _vectors(d, n: int) -> np.ndarray:
    """``n`` JSC test rows (scaled features, |x| < 4) clipped and quantized onto the toy core's 6-bit input grid."""
    from hgq.data import physics_vectors

    return d.quantize_inputs(np.clip(physics_vectors(n, seed=1), -4.0, 3.875))


@pytest.mark.sim("icarus")  # boards.uart.simulate_harness' default simulator
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus not installed: apt-get install -y iverilog")
def test_uart_harness_bit_exact(tmp_path):
    d = toy_design(16)
    x = _vectors(d, 24)
    r = simulate_harness(d, x, work_dir=tmp_path / "ok")
    assert r["failed"] == 0 and r["vectors"] == 24 and r["mismatches"] == 0 and r["framing_errors"] == 0
    assert r["latency_measured"] == r["latency_expected"] == d.latency and r["board"]["vectors"] == 24
    assert r["passed"] is True

    class OffByOne:  # same core, expected outputs off by one LSB on vector 5: the harness test must fail
        name, layout, latency, verilog = d.name, d.layout, d.latency, d.verilog

        def predict(self, xx):
            y = d.predict(xx)
            y[5, 1] += 0.125
            return y

    por = simulate_harness(d, x, work_dir=tmp_path / "por", power_on_reset=True)  # the vendor top, no reset pin
    assert por["passed"] is True and por["latency_measured"] == d.latency and por["mismatches"] == 0
    bad = simulate_harness(OffByOne(), x, work_dir=tmp_path / "bad")
    assert bad["failed"] == 1 and bad["mismatches"] == 1 and bad["first_mismatch"]["sample"] == 5
    assert bad["passed"] is False
