"""cocotb test module shipped with ``sim``: the generic streaming testbench (``stream``) and the driver of the
HDL-side bulk harness (``bulk``). Configured by a JSON file named in ``$HGQ_HIL_TB_CONFIG``; each test writes its
results as JSON to the path in the config and fails when the design does not match."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

CONFIG_ENV = "HGQ_HIL_TB_CONFIG"
PERIOD_NS = 10


def _config() -> dict:
    return json.loads(Path(os.environ[CONFIG_ENV]).read_text())


def _int_or(h, bad: int | None) -> int | None:
    try:
        return int(h.value)
    except ValueError:
        return bad


@cocotb.test()
async def stream(dut) -> None:
    """Drive one input per cycle on the falling edge (back to back, then bubbles and a mid-stream reset),
    sample every cycle, and score outputs and ``valid_out`` timing against the expected words."""
    from sim.scoreboard import expected_stream, make_schedule, score  # noqa: PLC0415  (numpy: see bulk)
    from sim.vectors import Port, read_hex  # noqa: PLC0415

    cfg = _config()
    layout, lat = cfg["layout"], int(cfg["latency"])
    out = Port.from_layout(layout, "output")
    xw, yw = read_hex(cfg["x_file"]), read_hex(cfg["y_file"])
    ii = int(layout.get("ii", 1))
    s = make_schedule(len(xw), lat, cfg["seed"], second_pass=cfg["second_pass"], ii=ii)
    ev, _ = expected_stream(s, lat, ii)
    clk, x, vi, vo, y, rst = dut.clk, dut.x, dut.valid_in, dut.valid_out, dut.y, dut.rst
    if layout.get("clock_enable"):
        dut.en.value = 1
    rst.value, vi.value, x.value = 1, 0, 0
    Clock(clk, PERIOD_NS, unit="ns").start(start_high=False)
    fe, ro = FallingEdge(clk), ReadOnly()
    got_v: list[int] = []
    got_y: list[int | None] = []
    cur_r, cur_v = 1, 0
    p2 = s.first_cycle(2) if 2 in s.pass_no else len(s)
    t1 = t0 = time.perf_counter()
    for j in range(len(s)):
        await fe
        if j == p2:
            t1 = time.perf_counter()
        if lat > 0:
            v = _int_or(vo, -1)
            got_v.append(v)
            got_y.append(_int_or(y, None) if (v == 1 or ev[j] == 1) else None)
        r, vv, smp = s.rst[j], s.vin[j], s.sample[j]
        if r != cur_r:
            rst.value = cur_r = r
        if vv != cur_v:
            vi.value = cur_v = vv
        if smp >= 0:
            x.value = xw[smp]
        if lat == 0:
            await ro
            v = _int_or(vo, -1)
            got_v.append(v)
            got_y.append(_int_or(y, None) if (v == 1 or ev[j] == 1) else None)
    if p2 == len(s):
        t1 = time.perf_counter()
    res = score(s, lat, yw, out, got_v, got_y, ii)
    n1 = len(xw)
    res.update(n_vectors=n1, cycles=len(s), pass1_s=t1 - t0, vectors_per_s=n1 / max(t1 - t0, 1e-9))
    Path(cfg["result"]).write_text(json.dumps(res, indent=1))
    assert res["mismatches"] == 0 and res["valid_errors"] == 0, f"first mismatch: {res['first_mismatch']}"
    assert res["latency_observed"] == lat, f"latency {res['latency_observed']} != {lat}"


@cocotb.test()
async def bulk(dut) -> None:
    """Await ``done`` of the HDL harness (which loads the files, drives, compares and counts), then read its
    counters. Times the loading (test start to the first clock edge, ``running``) and the run (to ``done``).
    numpy is imported only to describe a mismatch: a passing run's simulator start stays short."""
    cfg = _config()
    layout, lat, n = cfg["layout"], int(cfg["latency"]), int(cfg["n"])
    if cfg["clock"] == "cocotb":
        Clock(dut.clk, 2, unit="ns").start(start_high=False)
    t0 = time.perf_counter()
    if _int_or(dut.running, 0) != 1:
        await RisingEdge(dut.running)
    t1 = time.perf_counter()
    if _int_or(dut.done, 0) != 1:
        await RisingEdge(dut.done)
    t2 = time.perf_counter()
    dt = t2 - t0
    errors, n_out = int(dut.errors.value), int(dut.n_out.value)
    spurious, x_valid = int(dut.spurious.value), int(dut.x_valid.value)
    first_err = int(dut.first_error.value)
    lat_obs = int(dut.lat_obs.value) if int(dut.lat_seen.value) else None
    missing = max(n - (n_out - spurious), 0)
    kinds = {"data": errors - spurious - x_valid, "x_output": 0, "missing_valid": missing,
             "spurious_valid": spurious, "x_valid": x_valid}  # fmt: skip
    first = None
    mismatches = kinds["data"] + missing
    if errors:
        from sim.scoreboard import describe_mismatch  # noqa: PLC0415
        from sim.vectors import Port, read_bin  # noqa: PLC0415

        out = Port.from_layout(layout, "output")
        yw = read_bin(cfg["y_file"], out)
        got = _int_or(dut.first_got, None)
        if first_err < n:
            exp = yw[first_err]
            first = {"kind": "data", "pass": 1, "cycle": None, "sample": first_err}
            first.update(describe_mismatch(exp, got, out))
        else:
            first = {"kind": "spurious_valid" if spurious else "x_valid", "pass": 1, "cycle": None, "sample": None}
    elif missing:
        first = {"kind": "missing_valid", "pass": 1, "cycle": None, "sample": n_out}
    res = {
        "compared": n,
        "mismatches": mismatches,
        "valid_errors": missing + spurious + x_valid,
        "errors": kinds,
        "first_mismatch": first,
        "latency_expected": lat,
        "latency_observed": lat_obs,
        "n_vectors": n,
        "cycles": int(dut.cycle.value),
        "pass1_s": dt,
        "vectors_per_s": n / max(dt, 1e-9),
        "load_s": t1 - t0,
        "run_vectors_per_s": n / max(t2 - t1, 1e-9),
    }
    Path(cfg["result"]).write_text(json.dumps(res, indent=1))
    assert mismatches == 0 and errors == 0, f"{mismatches} mismatches, {errors} errors; first: {first}"
    assert lat_obs == lat, f"latency {lat_obs} != {lat}"


__all__ = ["CONFIG_ENV", "bulk", "stream"]
