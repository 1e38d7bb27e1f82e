"""The hgq-hil CLI and the CI gate on the shipped model: a passing gate, a too-tight gate with its table and JUnit."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from boards.cli import SHIPPED_MODEL, main


def test_boards_json(capsys):
    assert main(["boards", "--json"]) == 0
    names = {b["name"] for b in json.loads(capsys.readouterr().out)["boards"]}
    assert {"vu13p", "vu9p", "ulx3s", "icebreaker"} <= names


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "nope.keras"), "--out", str(tmp_path / "d")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_convert_ternary_cells_by_default_and_no_ternary(tmp_path, capsys):
    """On the default UltraScale+ part the design carries ternary sums; ``--no-ternary`` writes two-input adders."""
    reports = {}
    for flag in ([], ["--no-ternary"]):
        out = tmp_path / ("plain" if flag else "tern")
        assert main(["convert", str(SHIPPED_MODEL), "--out", str(out), "--name", "jet", "--json", *flag]) == 0
        reports[bool(flag)] = json.loads(capsys.readouterr().out)["report"]
        assert ("LUT6_2" in (out / "jet.v").read_text()) != bool(flag)
    assert reports[True]["ternary_adders"] == 0 < reports[False]["ternary_adders"]
    assert reports[False]["lut_estimate"] < 0.8 * reports[True]["lut_estimate"]


def test_tight_gate_fails_with_table_and_junit(tmp_path, capsys):
    gate = tmp_path / "tight.toml"
    gate.write_text(
        f'[[gate]]\nname = "tight"\nmodel = "{SHIPPED_MODEL}"\nmin_accuracy = 0.99\nmax_latency_cycles = 1\n'
        "max_lut = 10\n"
    )
    junit = tmp_path / "gate.xml"
    assert main(["gate", str(gate), "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "accuracy" in out and "lut_estimate" in out and "FAILED: tight/accuracy" in out
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and int(root.get("failures")) == 3
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["keras == interpreter"].find("failure") is None  # bit-exactness still holds
    assert cases["accuracy"].find("failure") is not None


@pytest.mark.sim("verilator", "icarus")
def test_ci_gate_passes_on_both_simulators(tmp_path, capsys):
    """The project's own gate (boards/gates/ci.toml): accuracy, latency, LUTs, Verilator and Icarus bit-exact."""
    from pathlib import Path

    import boards

    gate = Path(boards.__file__).parent / "gates" / "ci.toml"
    rc = main(["gate", str(gate), "--junit", str(tmp_path / "g.xml")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "rtl == interpreter (verilator)" in out and "rtl == interpreter (icarus)" in out


def test_train_one_table_layer_and_bad_hidden(tmp_path, capsys):
    """``train --model lut --hidden none``: one QLUTDense layer (each logit a sum of one table per feature),
    lowered in one register rank at 200 MHz; ``none`` beside sizes is refused before any work."""
    import hdl_gen
    from hgq import load_model
    from hgq.layers import QLUTDense

    assert main(["train", "--model", "lut", "--hidden", "none", "16", "--out", str(tmp_path / "bad")]) == 2
    assert "'none' (no hidden layer) stands alone" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    out = tmp_path / "t"
    assert main(["train", "--model", "lut", "--hidden", "none", "--epochs", "2", "--out", str(out), "--json"]) == 0
    front = json.loads((out / "pareto.json").read_text())
    model = load_model(front[0]["file"])
    assert [type(layer) for layer in model.layers[1:]] == [QLUTDense]
    assert hdl_gen.convert(model, clock_ns=5.0).latency == 1
