"""boards: configs, vendor plans, report parsers, wrappers and the host driver (fast, no tools run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.boards_toy import toy_design

import boards
from boards import reports, vivado
from boards.config import ENV_VAR, ConfigError, get_board, list_boards, load_config
from boards.platforms import platform_for

DATA = Path(__file__).parent / "data" / "boards"


def test_builtin_boards_and_parts():
    names = {b.name: b for b in list_boards()}
    assert {"vu13p", "vu9p", "agilex7", "ulx3s", "icebreaker"} <= set(names)
    assert names["vu13p"].part == "xcvu13p-flga2577-2-e"
    assert names["vu9p"].part == "xcvu9p-flga2104-2L-e"
    assert names["agilex7"].part == "AGFB014R24B2E2V"
    assert names["ulx3s"].family == "ecp5" and names["ulx3s"].clock_mhz == 25.0
    assert names["icebreaker"].family == "ice40" and names["icebreaker"].is_open
    assert names["vu13p"].resources["LUT"] == 1728000
    for b in names.values():
        p = platform_for(b)
        assert p.device == b.device


def test_new_board_is_a_file(tmp_path, monkeypatch):
    text = (Path(boards.config.BUILTIN_DIR) / "vu9p.toml").read_text()
    (tmp_path / "my_vu9p.toml").write_text(text.replace('name = "vu9p"', 'name = "my_vu9p"').replace("5.0", "2.5"))
    assert "my_vu9p" not in {b.name for b in list_boards()}
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    b = get_board("my_vu9p")
    assert b.clock_period_ns == 2.5 and b.clock_mhz == 400.0 and b.source == tmp_path / "my_vu9p.toml"
    assert get_board(str(tmp_path / "my_vu9p.toml")) == b


@pytest.mark.parametrize(
    ("edit", "msg"),
    [
        (lambda t: t.replace('speed = "2L-e"', 'speed = "1-e"'), "device-package-speed"),
        (lambda t: t.replace('toolchain = "vivado"', 'toolchain = "ise"'), "toolchain 'ise'"),
        (lambda t: t.replace("period_ns = 5.0", "period_ns = 5.0\nmhz = 200.0"), "exactly one of"),
        (lambda t: t.replace("LUT = 1182240", "LUTS = 1182240"), "unknown key 'LUTS'"),
        (lambda t: t.replace('name = "vu9p"', 'name = "other"'), "must match the file name"),
        (lambda t: t + "\n[[", "not valid TOML"),
    ],
)
def test_bad_config_errors(tmp_path, edit, msg):
    text = (Path(boards.config.BUILTIN_DIR) / "vu9p.toml").read_text()
    f = tmp_path / "vu9p.toml"
    f.write_text(edit(text))
    with pytest.raises(ConfigError, match=msg):
        load_config(f)


def test_unknown_board():
    with pytest.raises(ConfigError, match="unknown board 'nope'.*ulx3s"):
        get_board("nope")


def test_vivado_plan(tmp_path):
    d = toy_design(4)
    r = boards.build(d, "vu13p", tmp_path / "v", run=False)
    assert r.tool == "vivado" and r.fmax_mhz is None and not r.ran and r.clock_mhz == 200.0
    tcl = (tmp_path / "v" / "toy_core.tcl").read_text()
    assert "set part xcvu13p-flga2577-2-e" in tcl
    assert "read_verilog {toy_core.v}" in tcl
    assert "synth_design -top $top -part $part -mode out_of_context -global_retiming on" in tcl
    for step in (
        "opt_design -directive ExploreWithRemap",
        "place_design -directive SSI_HighUtilSLRs -fanout_opt",
        "phys_opt_design -directive AggressiveExplore",
        "route_design -directive NoTimingRelaxation",
        f"report_utilization -file {vivado.UTIL_REPORT}",
        f"report_timing_summary -max_paths 10 -file {vivado.TIMING_REPORT}",
    ):
        assert step in tcl
    xdc = (tmp_path / "v" / "toy_core.xdc").read_text()
    assert "create_clock -period 5.000 -name clk [get_ports clk]" in xdc
    assert (tmp_path / "v" / "toy_core.v").read_text() == d.verilog()
    assert json.loads((tmp_path / "v" / "toy_core.layout.json").read_text()) == d.layout
    assert '"${VIVADO:-vivado}" -mode batch' in (tmp_path / "v" / "run_vivado.sh").read_text()
    vu9 = boards.build(tmp_path / "v", "vu9p", tmp_path / "v9", run=False)  # from a written directory
    assert "set part xcvu9p-flga2104-2L-e" in (tmp_path / "v9" / "toy_core.tcl").read_text()
    assert vu9.part == "xcvu9p-flga2104-2L-e"


def test_vivado_plan_then_reports(tmp_path):
    """After Vivado ran (reports copied in), build parses them into the common table."""
    out = tmp_path / "v"
    (out / "reports").mkdir(parents=True)
    (out / vivado.UTIL_REPORT).write_text((DATA / "vivado_utilization.rpt").read_text())
    (out / vivado.TIMING_REPORT).write_text((DATA / "vivado_timing_summary.rpt").read_text())
    r = boards.build(toy_design(4), "vu13p", out, run=True)
    assert r.ran and r.utilization == {"LUT": 11870, "FF": 2515, "CARRY": 640, "BRAM": 0, "DSP": 0}
    assert r.fmax_mhz == pytest.approx(1000 / (5.0 - 0.625)) and r.timing_met
    assert "LUT    11870 / 1728000" in r.table()
    assert json.loads((out / "result.json").read_text())["utilization"]["LUT"] == 11870


def test_quartus_plan(tmp_path):
    r = boards.build(toy_design(4), "agilex7", tmp_path / "q", run=False)
    tcl = (tmp_path / "q" / "toy_core_quartus.tcl").read_text()
    assert 'set_global_assignment -name FAMILY "Agilex 7"' in tcl
    assert "set_global_assignment -name DEVICE AGFB014R24B2E2V" in tcl
    assert "set_global_assignment -name VERILOG_FILE toy_core.v" in tcl
    assert "set_instance_assignment -name VIRTUAL_PIN ON -to *" in tcl
    assert "execute_module -tool fit" in tcl and "execute_module -tool sta" in tcl
    sdc = (tmp_path / "q" / "toy_core.sdc").read_text()
    assert "create_clock -name clk -period 2.500 [get_ports {clk}]" in sdc
    assert r.clock_mhz == 400.0 and r.fmax_mhz is None


def test_parse_vivado():
    u = reports.parse_vivado_utilization((DATA / "vivado_utilization.rpt").read_text())
    assert u["utilization"] == {"LUT": 11870, "FF": 2515, "CARRY": 640, "BRAM": 0, "DSP": 0}
    assert u["available"] == {"LUT": 1728000, "FF": 3456000, "CARRY": 216000, "BRAM": 2688, "DSP": 12288, "URAM": 1280}
    assert u["part"] == "xcvu13p-flga2577-2-e"
    t = reports.parse_vivado_timing_summary((DATA / "vivado_timing_summary.rpt").read_text())
    assert (t["wns_ns"], t["whs_ns"], t["period_ns"], t["timing_met"]) == (0.625, 0.021, 5.0, True)
    assert t["fmax_mhz"] == pytest.approx(228.5714, rel=1e-6)
    f = reports.parse_vivado_timing_summary((DATA / "vivado_timing_failed.rpt").read_text())
    assert f["wns_ns"] == -0.312 and f["timing_met"] is False and f["fmax_mhz"] == pytest.approx(1000 / 5.312)
    with pytest.raises(reports.ReportError, match="not a Vivado utilization report"):
        reports.parse_vivado_utilization("hello")
    with pytest.raises(reports.ReportError, match="WNS"):
        reports.parse_vivado_timing_summary("hello")


def test_parse_quartus():
    u = reports.parse_quartus_fit_summary((DATA / "quartus.fit.summary").read_text())
    assert u["utilization"] == {"LUT": 6412, "FF": 2731, "CARRY": None, "BRAM": 0, "DSP": 0}
    assert u["available"] == {"LUT": 487200, "BRAM": 7110, "DSP": 4510}
    assert u["part"] == "AGFB014R24B2E2V"
    s = reports.parse_quartus_sta_summary((DATA / "quartus.sta.summary").read_text(), 2.5)
    assert s["wns_ns"] == 0.412 and s["whs_ns"] == 0.021 and s["timing_met"]
    assert s["fmax_mhz"] == pytest.approx(1000 / (2.5 - 0.412))
    assert reports.parse_quartus_fmax((DATA / "quartus.sta.rpt").read_text()) == 479.39
    bad = (DATA / "quartus.fit.summary").read_text().replace("Successful - Mon", "Failed - Mon")
    with pytest.raises(reports.ReportError, match="did not succeed"):
        reports.parse_quartus_fit_summary(bad)


def test_parse_nextpnr_and_size_check():
    r = reports.parse_nextpnr_report((DATA / "nextpnr_ecp5_report.json").read_text(), "ecp5")
    assert r["utilization"]["LUT"] == 86 and r["utilization"]["FF"] == 117
    assert r["available"]["LUT"] == 83640 and r["available"]["DSP"] == 156 and r["available"]["BRAM"] == 208
    assert r["fmax_mhz"] == pytest.approx(292.9115, rel=1e-6) and r["clock_mhz"] == 25 and r["timing_met"]
    util = reports.parse_nextpnr_log_utilization((DATA / "nextpnr_too_large.log").read_text())
    assert util["TRELLIS_COMB"] == (98412, 83640) and util["TRELLIS_FF"] == (12031, 83640)
    with pytest.raises(reports.DesignTooLarge, match=r"board 'ulx3s'.*LUT 90000 > 83640"):
        reports.check_fits({"LUT": 90000, "FF": 10}, {"LUT": 83640, "FF": 83640}, "ulx3s", "estimate")
    reports.check_fits({"LUT": 83640, "FF": 10}, {"LUT": 83640, "FF": 83640}, "ulx3s", "estimate")


def test_toy_core_verilog_deterministic():
    assert toy_design(6).verilog() == toy_design(6).verilog()
    with pytest.raises(ValueError, match="even number"):
        toy_design(3)
