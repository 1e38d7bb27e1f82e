"""The front benchmark's own code path (train → calibrate → select on validation → lower → report), kept alive in
CI on a tiny run; the real figures come from ``nox -s bench -- front``."""
# ruff: noqa: I001

from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_front  # noqa: E402

from hgq.data import jsc_split, load_jsc  # noqa: E402


def test_front_benchmark_smoke(tmp_path, monkeypatch, capsys):
    data = load_jsc("sample")
    keep = np.random.default_rng(0).permutation(len(data.y))[:3000]
    small = type(data)(data.name, data.X[keep], data.y[keep])
    split = jsc_split(small, test_size=0.2, val_size=0.1, random_state=0)
    # no yosys in this test: a count from the Verilog text stands in for the synthesised LUTs
    monkeypatch.setattr(bench_front, "synth", lambda verilog, top, abc9: {"lut": len(verilog) // 50, "ff": 1})
    args = argparse.Namespace(epochs=3, lut_epochs=3, batch=256, lr=3e-3, beta=[1e-7, 1e-3], hold=1, points=2,
                              clock=5.0, abc9=False)  # fmt: skip
    runs = {
        t: [bench_front.run_ours(split, 0, args, tmp_path / t, r, "dense")]
        for t, r in (("hgq-hil", "ebops"), ("hgq-hil (DA term)", "da"))
    }
    # the LUT family: two of its default architectures, their union one seed's front
    archs = [bench_front.lut_hidden(a) for a in ("16", "none")]
    labels = [bench_front.arch_label(h) for h in archs]
    parts = {a: bench_front.run_ours(split, 0, args, tmp_path / f"lut-{a}", "ebops", "lut", h)
             for a, h in zip(labels, archs, strict=True)}  # fmt: skip
    runs["hgq-hil LUT"] = [bench_front.merge_archs(parts)]
    lut = runs["hgq-hil LUT"][0]
    assert {p["arch"] for p in lut["points"]} == {"16", "none"} == set(lut["archs"])
    assert len(lut["points"]) == sum(len(r["points"]) for r in parts.values())
    assert lut["train_seconds"] == sum(r["train_seconds"] for r in parts.values())
    # one table layer (a sum of one learned function per feature) is one register rank at 200 MHz
    assert max(p["ranks"] for p in lut["points"] if p["arch"] == "none") == 1
    for (run,) in runs.values():
        assert 1 <= len(run["points"]) <= 2 and run["samples_per_s"] > 0
        assert len(run["front"]) == run["front_size"] >= len(run["points"])  # the EBOPs curve reads every point
        assert {p["file"] for p in run["points"]} <= {p["file"] for p in run["front"]}
        for p in run["points"]:
            assert p["mismatches"] == 0 and p["checked"] == len(split.x_test)  # interpreter == Keras on test jets
            assert {"val_accuracy", "accuracy", "ebops", "da_cost", "adder_bits", "ranks"} <= set(p)
    res = {"data": split.name, "n": [len(split.y_train), len(split.y_val), len(split.y_test)],
           "tools": list(runs), "runs": runs}  # fmt: skip
    args.seeds = 1
    bench_front.report(res, args, tmp_path, {"runs": runs, "label": "the reference knee"})
    out = capsys.readouterr().out
    assert "the test split selects nothing" in out and "test accuracy vs yosys LUT" in out
    assert "test accuracy vs EBOPs (held out, every point of each selected front" in out
    reach = out.split("to reach a test accuracy")[1].splitlines()[1].split()
    assert reach[-4:] == ["LUT", "hidden=16", "LUT", "hidden=none"]  # each architecture's column beside the family's
    for a in ("16", "none"):  # the LUT family's bars, each model's training time and knee
        assert f"training time, whole recipe: LUT model hidden={a} " in out
        assert f"at the DA front's knee (hidden={a} alone)" in out
    # both knees, for the union and each architecture alone
    assert out.count("at the DA front's knee") == out.count("at the reference knee") == 3, out
    # a LUT-only run times its models against the reference run's DA model
    lut_only = {**res, "tools": ["hgq-hil LUT"], "runs": {"hgq-hil LUT": runs["hgq-hil LUT"]}}
    (tmp_path / "lut_only").mkdir()
    reference = {"runs": runs, "label": "the reference knee", "path": "ref.json"}
    bench_front.report(lut_only, args, tmp_path / "lut_only", reference)
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("training time, whole recipe")]
    assert len(lines) == 2 and all("epochs, reference run ref.json)" in x for x in lines), lines

    # a resumed run with other lowering arguments reuses its training: train_front must not run again
    def no_training(*a, **k):
        raise AssertionError("retrained although train.json holds this training")

    monkeypatch.setattr(bench_front, "train_front", no_training)
    args.points = 1
    again = bench_front.run_ours(split, 0, args, tmp_path / "hgq-hil", "ebops", "dense")
    assert len(again["points"]) == 1 and again["train_seconds"] == runs["hgq-hil"][0]["train_seconds"]
    args.lut_options = [bench_front.lut_option("batch_norm=true")]  # another model: its training is not cached
    with pytest.raises(AssertionError, match="retrained"):
        bench_front.run_ours(split, 0, args, tmp_path / "lut-16", "ebops", "lut", (16,))
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        bench_front.lut_option("edge_widths")
    saved = json.loads((tmp_path / "front.json").read_text())
    assert set(saved["curve_lut"]) == {"grid", *runs}
    assert (tmp_path / "front.png").stat().st_size > 0


def test_lut_hidden_names_an_architecture(capsys):
    assert bench_front.lut_hidden("none") == () and bench_front.lut_hidden("32,16") == (32, 16)
    assert [bench_front.arch_label(h) for h in ((), (16,), (32, 16))] == ["none", "16", "32-16"]
    for bad in ("", "16,", "0", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="sizes like 16 or 32,16, or none"):
            bench_front.lut_hidden(bad)
    with pytest.raises(SystemExit):  # the architecture has one flag, not two
        bench_front.main(["--lut-options", "hidden=[]", "--no-hgq2"])
    assert "--lut-hidden" in capsys.readouterr().err


def test_difference_carries_its_standard_error():
    """The EBOPs bar is read with its seed noise: mean difference per budget and its unpaired standard error."""
    nan = float("nan")
    ours = [np.array([0.60, 0.65, nan]), np.array([0.64, 0.67, 0.70])]
    base = [np.array([0.62, 0.64, 0.69]), np.array([0.62, 0.66, 0.69]), np.array([0.62, 0.65, 0.69])]
    d, se = bench_front.difference(ours, base)
    assert d[0] == pytest.approx(0.62 - 0.62) and d[1] == pytest.approx(0.66 - 0.65) and np.isnan(d[2])
    # var(ours)/2 + var(base)/3 with ddof 1: 0.0008/2 + 0; 0.0002/2 + 0.0001/3
    assert se[0] == pytest.approx(np.sqrt(0.0008 / 2)) and se[1] == pytest.approx(np.sqrt(0.0001 + 0.0001 / 3))
    assert np.isnan(se[2])
    d1, se1 = bench_front.difference(ours[:1], base)  # one seed: a difference, no error
    assert d1[1] == pytest.approx(0.0) and np.isnan(se1).all()


def test_da_reference_must_be_on_the_same_data(tmp_path):
    res = {"data": "jsc-pythia8-generated", "n": [700, 100, 200]}
    other = {**res, "n": [70, 10, 20], "runs": {"hgq-hil": [{}]}, "args": {"seeds": 3, "epochs": 1000}}
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="is not this run's"):
        bench_front.da_reference(str(path), res)
    path.write_text(json.dumps({**other, "n": res["n"], "runs": {"hgq2": [{}]}}))
    with pytest.raises(SystemExit, match="no hgq-hil DA"):
        bench_front.da_reference(str(path), res)
    path.write_text(json.dumps({**other, "n": res["n"]}))
    assert "3 seeds x 1000 epochs" in bench_front.da_reference(str(path), res)["label"]
    assert bench_front.da_reference(None, res) is None


def test_grad_parity_loads_a_state_it_reproduces():
    """``bench_grad_parity`` reads a dump in HGQ2's layout into ``jet_tagger``: a dump written from a trained
    hgq-hil model (pruned widths included) loads back to the same logits and the same gradients, bit for bit, and a
    changed kernel width is seen."""
    import keras

    import bench_grad_parity
    from hgq.ebops import ebops_layers
    from hgq.models import jet_tagger

    data = load_jsc("sample")
    x, y = data.X[:2048].astype(np.float32), data.y[:2048]
    keras.utils.set_random_seed(0)
    model = jet_tagger(beta0=1e-4)
    model.compile(keras.optimizers.Adam(0.03), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=8, batch_size=64, verbose=0)  # ~250 Adam steps: some widths reach 0
    d = {"x": x, "y": y}
    for j, lay in enumerate(ebops_layers(model)):
        d[f"{j}.kernel"], d[f"{j}.bias"] = np.asarray(lay.kernel.numpy()), np.asarray(lay.bias.numpy())
        d[f"{j}.qbias"] = np.asarray(lay.qbias, np.float32)
        for qn, width in (("kq", "b"), ("bq", "b"), ("iq", "f")):
            q = getattr(lay, qn)
            for var, key in ((q.k, "k"), (q.i, "i"), (q.bvar, width)):
                d[f"{j}.{qn}.{key}"] = np.asarray(var.numpy())
    assert any(np.any(np.round(d[f"{j}.kq.b"]) == 0) for j in range(4))  # some weights are pruned
    _, logits, grads = bench_grad_parity.gradients(model, x, y)
    loaded, changed = bench_grad_parity.load_state(d, 1e-4)
    assert changed == 0
    _, logits2, grads2 = bench_grad_parity.gradients(loaded, x, y)
    assert np.array_equal(logits, logits2)
    assert sorted(grads) == sorted(grads2)
    # the biases load as quantized (HGQ2's training values), so only their width gradients (x - q) may move
    assert [k for k in grads if not np.array_equal(grads[k], grads2[k]) and not k.endswith(".bq.b")] == []
    d["0.kq.b"] = d["0.kq.b"] + 1.0
    _, _, grads3 = bench_grad_parity.gradients(bench_grad_parity.load_state(d, 1e-4)[0], x, y)
    assert not np.array_equal(grads["0.kq.b"], grads3["0.kq.b"])


def test_same_weights_lowers_an_hgq2_checkpoint_with_hdl_gen(monkeypatch, tmp_path):
    """The same-weights comparison's own path: an HGQ2 checkpoint (the import fixture) lowered by hdl_gen, with and
    without ternary sums (yosys stubbed by the Verilog's length, as in the smoke test)."""
    seen = {}

    def fake_synth(verilog, top, abc9):
        seen[top] = verilog
        return {"lut": len(verilog) // 50, "ff": 1}

    monkeypatch.setattr(bench_front, "synth", fake_synth)
    fixture = tmp_path / "epoch=12.keras"  # HGQ2's ParetoFront names checkpoints so
    fixture.write_bytes((Path(__file__).resolve().parent / "data" / "hgq2" / "jet_hgq2.keras").read_bytes())
    rows = {}
    for off in (False, True):
        args = argparse.Namespace(clock=5.0, abc9=False, no_ternary=off)
        rows[off] = bench_front.same_weights(str(fixture), args)
        assert rows[off]["hdl_gen_lut"] > 0 and rows[off]["hdl_gen_ranks"] >= 1
    assert list(seen) == ["hdl_gen_epoch_12"]  # the checkpoint's name made a Verilog identifier
    assert "LUT6_2" not in seen["hdl_gen_epoch_12"]  # the last call was --no-ternary
