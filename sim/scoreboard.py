"""Stimulus schedule and scoreboard of the streaming testbench (pure Python; the cocotb module only drives it).

Cycle ``j`` is the falling edge ``j``: the testbench first samples ``valid_out``/``y`` (the state after rising
edge ``j-1``), then drives ``rst``/``valid_in``/``x`` for rising edge ``j``. A core of latency ``L >= 1`` then
shows the result of cycle ``k``'s input at cycle ``k + L``; a synchronous reset driven at cycle ``r`` clears
the valid chain at edge ``r``, so the inputs of cycles ``r-L+1 .. r`` never come out. A combinational core
(``L == 0``) is sampled after the drive, in the same cycle.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sim.vectors import Port, decode_word

__all__ = [
    "ERROR_KINDS",
    "RESET_CYCLES",
    "Schedule",
    "describe_mismatch",
    "expected_stream",
    "make_schedule",
    "score",
]

RESET_CYCLES = 2
# the kinds of error a run can show: wrong data, X data, an expected valid_out missing, a valid_out high or X
# where none is expected
ERROR_KINDS = ("data", "x_output", "missing_valid", "spurious_valid", "x_valid")


@dataclass
class Schedule:
    """Per-cycle drive: ``rst``, ``valid_in``, the sample index driven on ``x`` (-1: none) and which pass."""

    rst: list[int] = field(default_factory=list)
    vin: list[int] = field(default_factory=list)
    sample: list[int] = field(default_factory=list)
    pass_no: list[int] = field(default_factory=list)

    def add(self, rst: int, vin: int, sample: int, pass_no: int) -> None:
        self.rst.append(rst)
        self.vin.append(vin)
        self.sample.append(sample)
        self.pass_no.append(pass_no)

    def __len__(self) -> int:
        return len(self.rst)

    def first_cycle(self, pass_no: int) -> int:
        return self.pass_no.index(pass_no)


def make_schedule(
    n: int, latency: int, seed: int = 0, *, second_pass: bool = True, p_valid: float = 0.7, ii: int = 1
) -> Schedule:
    """Pass 1: reset, then ``n`` samples back to back, then ``latency + 2`` idle cycles. Pass 2 (when
    ``second_pass``): the same samples with ``valid_in`` low on a seeded pseudo-random pattern (the ``x`` of a
    bubble is a random sample's word) and a 1-3 cycle reset in mid-stream, then idle cycles. The ``latency``
    samples before the reset go back to back, so every register of the valid chain holds a 1 when the reset
    comes (one that ignores the reset shows a spurious ``valid_out``). On a bubble, ``sample`` holds the garbage
    sample index and ``vin`` is 0.

    A design with an initiation interval ``ii > 1`` takes an input every ``ii`` cycles at most: pass 1 offers one
    exactly every ``ii`` cycles; pass 2 also drives ``valid_in`` high with garbage on some cycles while the design
    is busy, which it must ignore (:func:`expected_stream` models which inputs are accepted)."""
    rng = random.Random(seed)
    s = Schedule()
    for _ in range(RESET_CYCLES):
        s.add(1, 0, -1, 1)
    for i in range(n):
        s.add(0, 1, i, 1)
        for _ in range(ii - 1):
            s.add(0, 0, rng.randrange(n), 1)
    for _ in range(latency + 2):
        s.add(0, 0, -1, 1)
    if not second_pass or n == 0:
        return s
    reset_at = n // 2
    i = 0
    while i < n:
        if i == reset_at:
            for _ in range(1 + rng.randrange(3)):
                v = rng.random() < 0.5 and i < n
                s.add(1, int(v), i if v else rng.randrange(n), 2)
                i += int(v)
            reset_at = -1
            continue
        if rng.random() < p_valid or reset_at - latency <= i < reset_at:
            s.add(0, 1, i, 2)
            i += 1
            for _ in range(ii - 1):  # busy: a valid_in now is ignored
                s.add(0, int(rng.random() < 0.3), rng.randrange(n), 2)
        else:
            s.add(0, 0, rng.randrange(n), 2)
    for _ in range(latency + 2):
        s.add(0, 0, -1, 2)
    return s


def expected_stream(s: Schedule, latency: int, ii: int = 1) -> tuple[list[int], list[int]]:
    """Per sampled cycle: expected ``valid_out`` (1/0) and the sample index it carries (-1: none); cycle 0 is
    before any reset edge and is not checked (``valid_out`` = -1 there). With ``ii > 1`` an input is accepted
    only ``ii`` cycles or more after the last accepted one (a reset makes the design idle at once)."""
    c = len(s)
    ev, es = [0] * c, [-1] * c
    free = 0  # first cycle a new input is accepted
    for k in range(c):
        if s.rst[k] and latency > 0:  # a combinational core passes valid_in through, reset or not
            free = k + 1
            continue
        if not s.vin[k] or k < free:
            continue
        free = k + ii
        j = k + latency
        if j >= c or (latency > 0 and any(s.rst[k : k + latency])):
            continue
        ev[j], es[j] = 1, s.sample[k]
    ev[0] = -1
    return ev, es


def score(
    s: Schedule,
    latency: int,
    y_words: list[int],
    out: Port,
    got_valid: list[int],
    got_y: list[int | None],
    ii: int = 1,
) -> dict:
    """Compare sampled ``valid_out`` (-1 for X) and ``y`` (``None`` for X or not sampled) with the expected
    stream. Returns JSON-ready counts: ``compared`` (expected outputs over both passes), ``mismatches`` (of those,
    wrong or missing), ``valid_errors`` (cycles whose ``valid_out`` is wrong), ``errors`` (per kind of
    :data:`ERROR_KINDS`), ``first_mismatch`` (decoded through the layout), ``latency_observed``
    (first ``valid_out`` minus first ``valid_in`` of pass 1)."""
    ev, es = expected_stream(s, latency, ii)
    mask = out.mask
    mismatches = valid_errors = compared = 0
    errors = dict.fromkeys(ERROR_KINDS, 0)
    first: dict | None = None
    for j in range(1, len(s)):
        gv, e = got_valid[j], ev[j]
        kind = None
        if e == 1:
            compared += 1
            gy = got_y[j]
            if gv != 1:
                kind = "missing_valid"
            elif gy is None:
                kind = "x_output"
            elif (gy & mask) != y_words[es[j]]:
                kind = "data"
            if kind is not None:
                mismatches += 1
                valid_errors += int(kind == "missing_valid")
        elif gv != 0:
            kind = "spurious_valid" if gv == 1 else "x_valid"
            valid_errors += 1
        if kind is not None:
            errors[kind] += 1
        if kind is not None and first is None:
            first = {"kind": kind, "pass": s.pass_no[j], "cycle": j, "sample": es[j] if e == 1 else None}
            if e == 1:
                first.update(describe_mismatch(y_words[es[j]], got_y[j], out))
    p1 = s.first_cycle(1) + RESET_CYCLES
    lat = None
    end1 = s.first_cycle(2) if 2 in s.pass_no else len(s)
    for j in range(p1, end1):
        if got_valid[j] == 1:
            lat = j - p1
            break
    return {
        "compared": compared,
        "mismatches": mismatches,
        "valid_errors": valid_errors,
        "errors": errors,
        "first_mismatch": first,
        "latency_expected": latency,
        "latency_observed": lat,
    }


def describe_mismatch(exp_word: int, got_word: int | None, out: Port) -> dict:
    """First differing element of two output words, decoded (value and mantissa)."""
    exp = decode_word(exp_word, out)
    d = {"expected_word": hex(exp_word), "got_word": None if got_word is None else hex(got_word & out.mask)}
    if got_word is None:
        d.update(element=None, expected=None, got=None)
        return d
    got = decode_word(got_word, out)
    for e, (a, b) in enumerate(zip(exp["mantissas"], got["mantissas"], strict=True)):
        if a != b:
            d.update(
                element=e,
                expected={"value": exp["values"][e], "mantissa": a},
                got={"value": got["values"][e], "mantissa": b},
            )
            return d
    d.update(element=None, expected=None, got=None)
    return d
