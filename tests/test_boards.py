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


# ---------------------------------------------------------------- which design each board builds, size checks


def _mlp_design(part: str, clock_ns: float):
    import hdl_gen
    from hdl_gen.examples import mlp_graph

    g = mlp_graph((8, 12, 6, 3), seed=2, wbits=3, in_bits=6, act_bits=6)
    return hdl_gen.convert(g, part=part, clock_ns=clock_ns, name="mlp")


def test_board_default_models():
    from boards import pipeline
    from boards.config import SHIPPED_DIR

    ice = get_board("icebreaker")  # the shipped jet tagger does not fit the UP5K: a smaller Pareto point does
    assert ice.default_model == SHIPPED_DIR / "jet_tagger_up5k.keras" and ice.default_model.is_file()
    assert pipeline.default_model("icebreaker") == ice.default_model
    assert ice.to_dict()["default_model"] == str(ice.default_model)
    assert pipeline.SHIPPED_MODEL.is_file()
    for b in ("ulx3s", "vu13p", "vu9p", "agilex7"):
        assert get_board(b).default_model is None and pipeline.default_model(b) == pipeline.SHIPPED_MODEL


def test_design_model_key(tmp_path):
    text = (Path(boards.config.BUILTIN_DIR) / "vu9p.toml").read_text()
    f = tmp_path / "vu9p.toml"
    f.write_text(text + '\n[design]\nmodel = "jet_tagger_up5k.keras"\n')  # a shipped name, .keras optional
    assert load_config(f).default_model.name == "jet_tagger_up5k.keras"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x.keras").write_bytes(b"")
    f.write_text(text + '\n[design]\nmodel = "m/x.keras"\n')  # a path, relative to the config file
    assert load_config(f).default_model == tmp_path / "m" / "x.keras"
    for bad, msg in [
        ('model = "nope"', r"\[design\]: model 'nope' is not a file .*jet_tagger_ci"),
        ("model = 3", r"\[design\]: key 'model' has int"),
        ('modle = "x"', r"\[design\]: unknown key 'modle'"),
    ]:
        f.write_text(text + f"\n[design]\n{bad}\n")
        with pytest.raises(ConfigError, match=msg):
            load_config(f)


def test_intel_part_schedules_and_gets_its_quartus_plan(tmp_path):
    """The agilex7 board: its part resolves to the Agilex 7 delay family, the design pipelines for 400 MHz, and the
    Quartus plan names the part, the family and the clock."""
    from boards import pipeline

    cfg = get_board("agilex7")
    d = _mlp_design(cfg.part, cfg.clock_period_ns)
    rep = d.report()
    assert rep["family"] == "agilex7" and rep["family_title"] == "Intel Agilex 7" and rep["meets_clock"]
    assert d.latency >= 1 and rep["critical_path_ns"] <= 2.5
    pipeline.check_board_fits(d, cfg)  # far below the part
    r = boards.build(d, "agilex7", tmp_path / "q", run=False)
    assert r.part == "AGFB014R24B2E2V" and r.clock_mhz == 400.0 and not r.ran
    tcl = (tmp_path / "q" / "mlp_quartus.tcl").read_text()
    assert "set_global_assignment -name DEVICE AGFB014R24B2E2V" in tcl
    assert 'set_global_assignment -name FAMILY "Agilex 7"' in tcl and "TOP_LEVEL_ENTITY mlp" in tcl
    assert "create_clock -name clk -period 2.500 [get_ports {clk}]" in (tmp_path / "q" / "mlp.sdc").read_text()
    lay = json.loads((tmp_path / "q" / "mlp.layout.json").read_text())
    assert lay["part"] == "AGFB014R24B2E2V" and lay["clock_ns"] == 2.5 and lay["latency"] == d.latency


def test_vendor_design_too_large_before_the_plan(tmp_path, monkeypatch, capsys):
    """A design over a vendor part's capacity (here a fake 10-ALM Agilex) is refused before any file is written:
    one `error:` line naming the counts, the capacity and the fix, exit 1."""
    from boards import pipeline
    from boards.checks import exit_code
    from boards.cli import main

    text = (Path(boards.config.BUILTIN_DIR) / "agilex7.toml").read_text()
    (tmp_path / "tiny_agx.toml").write_text(
        text.replace('name = "agilex7"', 'name = "tiny_agx"').replace("LUT = 487200", "LUT = 10")
    )
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    d = _mlp_design("AGFB014R24B2E2V", 2.5)
    d.write(tmp_path / "d")
    alms = -(-d.report()["lut_estimate"] // 2)
    msg = (
        rf"design too large for board 'tiny_agx' \(AGFB014R24B2E2V\), by the hdl_gen estimate before the vendor "
        rf"build: LUT {alms} > 10 \(\d+ %\); build a smaller Pareto point .* or pick a bigger board"
    )
    with pytest.raises(reports.DesignTooLarge, match=msg) as err:
        pipeline.check_board_fits(d, "tiny_agx")
    assert exit_code(err.value) == 1
    assert main(["build", str(tmp_path / "d"), "--board", "tiny_agx", "--out", str(tmp_path / "out")]) == 1
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: design too large for board 'tiny_agx'")
    assert not (tmp_path / "out").exists()


def test_icebreaker_default_design_fits():
    """`hgq-hil build --board icebreaker` builds the board's [design] model (a smaller Pareto point of the jet
    tagger): its estimate is well under the UP5K's 5,280 LUT4 (yosys: ~2,550 LUT4 for the core, the shipped
    jet_tagger_ci ~6,000; hgq/data/jet_tagger_up5k.json has the placed-and-routed figures)."""
    from boards import pipeline

    d = pipeline.board_design("icebreaker")
    assert d.part == "iCE40UP5K-SG48" and d.layout["clock_ns"] == pytest.approx(83.333)
    rep = d.report()
    assert rep["meets_clock"] and rep["lut_estimate"] < 0.6 * 5280 and rep["register_bits"] < 0.1 * 5280


@pytest.mark.parametrize("name", ["jet_tagger_ci", "jet_tagger_up5k"])
def test_shipped_model_figures_match_convert(name):
    """The design figures recorded next to each shipped checkpoint are what hdl_gen.convert reports today (the
    README's Figures table quotes jet_tagger_ci's), so they cannot drift."""
    import hdl_gen
    from boards.checks import load_model_file
    from boards.config import SHIPPED_DIR

    meta = json.loads((SHIPPED_DIR / f"{name}.json").read_text())
    ((key, fig),) = [(k, v) for k, v in meta.items() if k.startswith("design_at_")]
    assert meta["model"] == f"{name}.keras"
    d = hdl_gen.convert(load_model_file(SHIPPED_DIR / meta["model"]), part=fig["part"], clock_ns=fig["clock_ns"])
    r = d.report()
    got = {
        "latency_cycles": r["latency_cycles"],
        "latency_ns": r["latency_ns"],
        "lut_estimate": r["lut_estimate"],
        "register_bits": r["register_bits"],
        "adders": r["total_adders"],
    }
    assert {k: fig[k] for k in got} == pytest.approx(got), f"{name}.json {key} is stale"
