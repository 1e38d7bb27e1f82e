"""boards.gate: gate-file parsing, failure table, JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from boards.gate import Check, format_table, load_gates, to_junit


def test_load_gates_and_errors(tmp_path):
    p = tmp_path / "g.toml"
    p.write_text('[[gate]]\nname = "a"\nmodel = "m.keras"\nmin_accuracy = 0.7\nsimulators = ["icarus"]\n')
    (g,) = load_gates(p)
    assert g.name == "a" and g.min_accuracy == 0.7 and g.simulators == ("icarus",)
    assert g.model_path() == tmp_path / "m.keras"
    p.write_text('[[gate]]\nname = "a"\nmodel = "m.keras"\nmax_luts = 3\n')
    with pytest.raises(ValueError, match=r"gate 'a': unknown key\(s\) \['max_luts'\]"):
        load_gates(p)
    p.write_text('[[gate]]\nname = "a"\n')
    with pytest.raises(ValueError, match="missing required key 'model'"):
        load_gates(p)
    p.write_text('[[gate]]\nname = "a"\nmodel = "m"\nsimulators = ["questa"]\n')
    with pytest.raises(ValueError, match="unknown simulator 'questa'"):
        load_gates(p)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_gates(tmp_path / "nope.toml")


def test_table_and_junit_report_failures():
    checks = [
        Check("jet", "accuracy", "≥ 0.8", "0.7512", False),
        Check("jet", "latency_cycles", "≤ 12", "6", True),
    ]
    table = format_table(checks)
    assert "FAIL" in table and "pass" in table and "0.7512" in table
    root = ET.fromstring(to_junit(checks).split("\n", 1)[1])
    assert root.tag == "testsuites" and root.get("tests") == "2" and root.get("failures") == "1"
    (suite,) = root
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["accuracy", "latency_cycles"]
    assert cases[0].find("failure") is not None and cases[1].find("failure") is None
