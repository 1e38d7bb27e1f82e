"""Per-family delay model: nanoseconds for each IR op, from its widths.

All figures are **estimates** for scheduling (where to put pipeline registers), not sign-off timing. They are
rounded from public vendor datasheet/characterisation figures for mid speed grades and from da4ml's results
(Sun et al., arXiv:2507.04535: "≈ 1 adder level per ns on VU13P"; unit-level cutoffs reach only 60-75 % of the
requested clock, hence per-family ns delays):

- AMD UltraScale+ (-2): a LUT6 ≈ 0.05-0.1 ns plus its input net ≈ 0.25-0.35 ns (``lut_ns`` 0.40); CARRY8
  S → CO7/O ≈ 0.2 ns, CI → CO7 ≈ 0.03-0.05 ns per further 8-bit block (``carry_entry_ns`` 0.20,
  ``carry_block_ns`` 0.05, from Vivado timing reports); clock-to-Q + setup + clock uncertainty ≈ 0.30 ns. A
  12-bit adder level is 0.70 ns (0.3-0.5 ns LUT+route plus ~0.02-0.03 ns/bit of carry is the usual ballpark).
  These are uncongested figures: da4ml reports that big da4ml designs cut at ≈ 1 adder level per
  ns reach only 60-75 % of the requested clock once placed and routed, so treat the estimate as optimistic
  for large, dense designs.
- AMD 7-series (-2): LUT6 ≈ 0.12 ns, net ≈ 0.4-0.6 ns, CARRY4 entry ≈ 0.35 ns, ≈ 0.11 ns per 4-bit block (DS181).
- Lattice ECP5 (-6/-8): LUT4 ≈ 0.4 ns, net ≈ 0.6-0.9 ns, CCU2C ≈ 0.06 ns per bit after a ≈ 0.35 ns entry
  (ECP5 family datasheet, nextpnr timing database).
- Lattice iCE40 (HX/UP): UP is slower than HX, and the UP figures are used, from nextpnr-ice40's UP5K timing
  database as its critical-path reports show them on the jet taggers built here: LUT4 ≈ 0.9-1.3 ns, a net
  between tiles ≈ 1.8-3.5 ns (≈ 0.7 ns local), SB_CARRY ≈ 0.28 ns per bit, LUT inputs → carry-out ≈ 0.7 ns,
  clock-to-Q ≈ 1.4 ns + setup ≈ 0.8 ns. With ``lut_ns`` 2.6 the estimate came within -3 %/+10 % of nextpnr's
  achieved period on two jet taggers (one pipelined, one single-stage) on the UP5K; HX parts run faster.
- Intel/Altera ALM families (Cyclone V, Cyclone 10 GX, Arria 10, Stratix 10, Agilex 7). An ALM (adaptive logic
  module) is a fracturable 6-input LUT (one 6-input or two smaller functions) with two dedicated full adders and
  up to four registers; ten ALMs make a LAB, whose carry chain runs through the ALMs (2 bits per ALM) and on into
  the next LAB (device handbooks, "LAB and ALM" chapters). So ``lut_inputs`` is 6 and a carry block is one ALM of
  2 bits; ``carry_entry_ns`` is the arithmetic-mode half-ALM's data-input → carry-out beyond its LUT plus the last
  bit's carry-in → sum-out. Cell delays come from the ALM timing models that yosys' ``intel_alm`` cell library
  carries (taken from Quartus' own models): Cyclone V LUT6 ≈ 0.4-0.6 ns, data → carry-out ≈ 0.8-1.1 ns, carry-in →
  sum ≈ 0.37 ns, ≈ 0.07 ns per ALM of carry; Cyclone 10 GX (the 20 nm Arria 10 fabric, slower grades) LUT6
  ≈ 0.17-0.28 ns, data → carry-out ≈ 0.5 ns, carry-in → sum ≈ 0.28 ns, ≈ 0.03 ns per ALM. Routing (the input
  net in ``lut_ns``) and the register overhead are not in those models and are our estimates (≈ 0.55 ns on
  Cyclone V, ≈ 0.4 ns on Cyclone 10 GX). Arria 10 (-2) is the Cyclone 10 GX fabric at a faster grade (≈ 15 %
  faster assumed); Stratix 10 and Agilex 7 (-2, HyperFlex fabric, conventional registers, no Hyper-Retiming
  counted) are scaled from it by process node, Agilex 7 landing close to UltraScale+ -2 (a 12-bit adder ≈ 0.85 ns
  against 0.70). These Intel figures are the roughest of the table: the public datasheets give no logic-cell
  delays for Stratix 10 or Agilex, so treat them as planning estimates until a Quartus timing report says
  otherwise.

Muxes (relu, saturation, select) on a 6-input-LUT family merge into the LUT of the adder, comparator or mux
that reads them (a ripple-carry bit uses 2-3 of the LUT6's inputs): such a mux costs ``merge_ns`` (the wider
fan-in and the select's fan-out), and only a mux whose value is registered pays a LUT level of its own
(:meth:`Family.mux_end_ns`, added at the end of its segment). On 4-input-LUT families a mux is a full level.

Every constant of a family lives in one frozen :class:`Family`; :func:`family_of` maps a part name to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DEFAULT_PART", "FAMILIES", "Family", "family_of"]

#: the part every flow targets unless told otherwise (convert, schedule, the CLI, gates, the demo)
DEFAULT_PART = "xcvu13p-flga2577-2-e"


@dataclass(frozen=True)
class Family:
    """Delay constants (ns) of one device family; see the module docstring for their origin."""

    name: str  # short name: "xcup", "xc7", "ecp5", "ice40", "cyclonev", ..., "agilex7"
    title: str
    lut_inputs: int  # K of the K-input LUT
    lut_ns: float  # one LUT level including its input net
    carry_entry_ns: float  # LUT -> carry chain entry and the chain's exit to the next net
    carry_bits: int  # bits per carry block (CARRY8: 8, CARRY4: 4, CCU2C/SB_CARRY: 1 per bit, Intel ALM: 2)
    carry_block_ns: float  # propagation through one carry block
    reg_ns: float  # clock-to-Q + setup + clock uncertainty of one register-to-register path
    yosys_family: str  # what resources.yosys_estimate runs for it
    merge_ns: float  # a mux absorbed into the LUT of the op that reads it

    def add_ns(self, width: int) -> float:
        """One two-input adder/subtractor (or negator) of ``width`` result bits: a LUT level plus its carry chain."""
        if width <= 0:
            return 0.0
        return self.lut_ns + self.carry_entry_ns + math.ceil(width / self.carry_bits) * self.carry_block_ns

    def compare_ns(self, width: int) -> float:
        """``a < b`` / ``a >= const`` over ``width`` bits (a carry chain without sum outputs)."""
        return self.add_ns(width)

    def mux_ns(self) -> float:
        """A 2:1 mux per bit driven by an already-computed select, merged into its reader's LUT."""
        return self.merge_ns

    def mux_end_ns(self) -> float:
        """What a mux whose value is registered adds at the end of its segment: the rest of a LUT level."""
        return self.lut_ns - self.merge_ns

    def lookup_ns(self, in_bits: int) -> float:
        """A ROM lookup addressed by ``in_bits`` bits: one LUT level up to K inputs, then a mux level per bit."""
        extra = max(in_bits - self.lut_inputs, 0)
        return self.lut_ns * (1 + math.ceil(extra / 2))

    def mul_ns(self, wa: int, wb: int) -> float:
        """Variable × variable product as an adder array: log2 depth of partial-product adders."""
        levels = max(1, math.ceil(math.log2(max(min(wa, wb), 2))))
        return levels * self.add_ns(wa + wb)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("xcup", "AMD UltraScale+", 6, 0.40, 0.20, 8, 0.05, 0.30, "xcup", 0.10),
        Family("xc7", "AMD 7-series", 6, 0.70, 0.35, 4, 0.11, 0.45, "xc7", 0.15),
        Family("ecp5", "Lattice ECP5", 4, 1.00, 0.35, 1, 0.06, 0.60, "ecp5", 1.00),
        Family("ice40", "Lattice iCE40", 4, 2.60, 0.70, 1, 0.28, 2.20, "ice40", 2.60),
        # Intel/Altera ALM parts: 6-input fracturable LUT, 2 carry bits per ALM (yosys: synth_intel_alm, a
        # Cyclone V-like ALM mapping for all of them; see resources.synth_script)
        Family("cyclonev", "Intel Cyclone V", 6, 1.00, 0.85, 2, 0.07, 0.60, "intel_alm", 0.20),
        Family("cyclone10gx", "Intel Cyclone 10 GX", 6, 0.65, 0.55, 2, 0.035, 0.45, "intel_alm", 0.15),
        Family("arria10", "Intel Arria 10", 6, 0.55, 0.47, 2, 0.03, 0.40, "intel_alm", 0.13),
        Family("stratix10", "Intel Stratix 10", 6, 0.48, 0.40, 2, 0.025, 0.35, "intel_alm", 0.12),
        Family("agilex7", "Intel Agilex 7", 6, 0.42, 0.32, 2, 0.02, 0.30, "intel_alm", 0.10),
    )
}

# part-name prefixes (lower case) -> family; the first match wins, so longer prefixes come first
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("lfe5", "ecp5"),
    ("ice40", "ice40"),
    ("xc7", "xc7"),
    ("xcvu", "xcup"),
    ("xcku", "xcup"),
    ("xczu", "xcup"),
    ("xcau", "xcup"),
    ("xcve", "xcup"),
    ("xcvp", "xcup"),
    ("xcvc", "xcup"),
    # Intel/Altera ordering codes: AGF/AGI/AGM (Agilex 7 F/I/M), 1S (Stratix 10 GX/SX/TX/MX/DX), 10AX/10AS/10AT
    # (Arria 10 GX/SX/GT), 10CX (Cyclone 10 GX; 10CL, Cyclone 10 LP, is LE-based and not listed), 5C (Cyclone V
    # E/GX/GT/SE/SX/ST)
    ("agf", "agilex7"),
    ("agi", "agilex7"),
    ("agm", "agilex7"),
    ("1s", "stratix10"),
    ("10ax", "arria10"),
    ("10as", "arria10"),
    ("10at", "arria10"),
    ("10cx", "cyclone10gx"),
    ("5c", "cyclonev"),
)


def family_of(part: str) -> Family:
    """The delay family of a part name, e.g. ``"xcvu13p-flga2577-2-e"`` → UltraScale+, ``"LFE5U-85F"`` → ECP5,
    ``"AGFB014R24B2E2V"`` → Agilex 7.

    A family short name (``"xcup"``, ``"xc7"``, ``"ecp5"``, ``"ice40"``, ``"agilex7"``, ...) is accepted too.
    """
    p = str(part).strip().lower()
    if p in FAMILIES:
        return FAMILIES[p]
    for prefix, fam in _PREFIXES:
        if p.startswith(prefix):
            return FAMILIES[fam]
    raise ValueError(
        f"unknown part {part!r}: expected an AMD (xcvu*/xcku*/xczu*/xc7*), Lattice (LFE5U*/iCE40*) or Intel "
        f"(AGF*/AGI*/AGM* Agilex 7, 1S* Stratix 10, 10AX*/10AS*/10AT* Arria 10, 10CX* Cyclone 10 GX, 5C* Cyclone V) "
        f"part name, or a family name ({', '.join(FAMILIES)})"
    )
