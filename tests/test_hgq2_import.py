"""HGQ2 0.2 checkpoints read without HGQ2 (hgq.hgq2): HGQ2's own predictions (made in HGQ2's virtualenv by
scripts/hgq2_fixture.py, shipped in tests/data/hgq2) == the imported Keras model == interpreter == Verilator, by
equality on real jets; unsupported content is refused by name."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import hdl_gen
import sim
from boards.checks import EXIT_BAD_INPUT, load_model_file
from boards.cli import main
from hgq import fixed
from hgq.hgq2 import SUPPORTED, HGQ2ImportError, HGQ2Quantizer, hgq2_quantize, is_hgq2_checkpoint, load_hgq2

DATA = Path(__file__).parent / "data" / "hgq2"
MODEL, VECTORS = DATA / "jet_hgq2.keras", DATA / "jet_hgq2_vectors.npz"


@pytest.fixture(scope="module")
def imported():
    v = np.load(VECTORS)
    model = load_hgq2(MODEL)
    return model, v["x"], v["y"], v["xq"]


def test_imported_model_equals_hgq2_predictions(imported):
    model, x, y, xq = imported
    assert is_hgq2_checkpoint(MODEL) and not is_hgq2_checkpoint(Path("hgq/data/jet_tagger_ci.keras"))
    assert np.array_equal(model.predict(x, verbose=0), y)  # float32 == float32, every bit
    q = hdl_gen.quantize_input(model, x)
    assert np.array_equal(q, xq.astype(np.float64))  # the input port values HGQ2's iq produced
    design = hdl_gen.convert(model, name="hgq2_jet")
    assert np.array_equal(design.predict(q), y.astype(np.float64))
    assert np.count_nonzero(model.layers[1].qkernel == 0) > 0  # HGQ2's pruned weights stay pruned


@pytest.mark.sim("verilator")
def test_hgq2_checkpoint_cli_convert_and_simulate(imported, tmp_path, capsys):
    _, _, y, xq = imported
    assert main(["convert", str(MODEL), "--out", str(tmp_path / "d"), "--name", "hgq2_jet"]) == 0
    np.savez(tmp_path / "v.npz", x=xq, y=y.astype(np.float64))  # HGQ2's own outputs as the reference
    capsys.readouterr()
    assert main(["simulate", str(tmp_path / "d"), "--vectors", str(tmp_path / "v.npz"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["passed"] and r["mismatches"] == 0 and r["compared"] >= len(y)  # two passes, one across a reset
    design = hdl_gen.load_design(tmp_path / "d")
    assert sim.verify(design, xq, "verilator", "bulk", expected=y.astype(np.float64)).passed


def test_load_model_file_routes_hgq2(imported):
    model, x, y, _ = imported
    assert np.array_equal(load_model_file(MODEL).predict(x, verbose=0), y)


def test_formula_agrees_with_hgq_fixed_where_semantics_meet():
    """HGQ2's float32 formula and hgq.fixed's exact one agree away from HGQ2's float32 half-way hazard."""
    rng = np.random.default_rng(0)
    for om in ("WRAP", "SAT", "SAT_SYM"):
        for rm in ("TRN", "RND", "RND_CONV", "TRN_ZERO", "RND_ZERO", "RND_INF", "RND_MIN_INF"):
            k = rng.integers(0, 2, 64).astype(np.float32)
            i = rng.integers(-3, 5, 64).astype(np.float32)
            f = rng.integers(0, 6, 64).astype(np.float32)
            keep = (i + f) > 0  # HGQ2 keeps a sign-only element (k=1, i+f=0) that hgq-hil prunes: not compared
            x = (rng.normal(0, 8, 64) * 2.0**-9).round(9).astype(np.float32) * 512 / 64
            got = hgq2_quantize(x, HGQ2Quantizer("kif", k, i, f, rm, om, False, True))
            ref = fixed.quantize(x.astype(np.float64), k.astype(int), i.astype(int), f.astype(int), rm, om)
            assert np.array_equal(got[keep], ref[keep]), (om, rm)
    hazard = np.float32(0.5 - 2**-25)  # HGQ2 computes floor(y + 0.5) in float32: this rounds up there
    one = np.ones(1, np.float32)
    assert (
        hgq2_quantize(np.array([hazard]), HGQ2Quantizer("kif", one, 3 * one, 0 * one, "RND", "WRAP", False, True))[0]
        == 1
    )
    assert fixed.quantize(np.array([hazard], np.float64), 1, 3, 0, "RND", "WRAP")[0] == 0


def _patched(tmp_path: Path, config=None, weights=None) -> Path:
    """A copy of the fixture with ``config(dict)`` and/or ``weights(h5py.File)`` applied."""
    out = tmp_path / "patched.keras"
    with zipfile.ZipFile(MODEL) as z:
        files = {n: z.read(n) for n in z.namelist()}
    if config is not None:
        cfg = json.loads(files["config.json"])
        config(cfg)
        files["config.json"] = json.dumps(cfg).encode()
    if weights is not None:
        buf = io.BytesIO(files["model.weights.h5"])
        with h5py.File(buf, "r+") as h5:
            weights(h5)
        files["model.weights.h5"] = buf.getvalue()
    with zipfile.ZipFile(out, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    return out


def _layer(cfg: dict, name: str) -> dict:
    return next(lc for lc in cfg["config"]["layers"] if lc["config"]["name"] == name)


def test_unsupported_content_is_refused_by_name(tmp_path, capsys):
    def tanh(cfg):
        _layer(cfg, "dense_1")["config"]["activation"] = "tanh"

    with pytest.raises(HGQ2ImportError, match=r"layer 'dense_1' \(QDense\): activation 'tanh' is a float function"):
        load_hgq2(_patched(tmp_path, tanh))

    def lut(cfg):
        _layer(cfg, "dense_1")["class_name"] = "QDenseT"

    with pytest.raises(HGQ2ImportError, match=r"layer 'dense_1' is an HGQ2/Keras QDenseT.*supported: InputLayer"):
        load_hgq2(_patched(tmp_path, lut))
    assert "QDense" in SUPPORTED

    def wrap_sm(cfg):
        _layer(cfg, "logits")["config"]["kq_conf"]["config"]["overflow_mode"] = "WRAP_SM"

    with pytest.raises(HGQ2ImportError, match=r"layer 'logits' \(QDense\) kq: overflow mode 'WRAP_SM'"):
        load_hgq2(_patched(tmp_path, wrap_sm))

    def scaler(cfg):
        _layer(cfg, "dense_0")["config"]["iq_conf"]["config"]["scaler"] = 3.0

    with pytest.raises(HGQ2ImportError, match=r"iq: quantizers with scaler=3.0"):
        load_hgq2(_patched(tmp_path, scaler))
    bad = _patched(tmp_path, tanh)
    shutil.copy(bad, tmp_path / "tanh.keras")
    assert main(["convert", str(tmp_path / "tanh.keras"), "--out", str(tmp_path / "o")]) == EXIT_BAD_INPUT
    assert "error: layer 'dense_1' (QDense): activation 'tanh'" in capsys.readouterr().err


def test_sign_only_activation_elements_are_refused(tmp_path):
    def sign_only(h5):  # first input feature: k=1 and zero magnitude bits (i + f = 0), what HGQ2 keeps as {-2**i, 0}
        q = h5["layers/q_dense/iq/quantizer/vars"]  # kif WRAP: f, k, i, i_decay_speed
        f, k, i = np.array(q["0"]), np.array(q["1"]), np.array(q["2"])
        f[0, 0], k[0, 0], i[0, 0] = 2.0, 1, -2.0
        q["0"][...], q["1"][...], q["2"][...] = f, k, i

    with pytest.raises(HGQ2ImportError, match=r"layer 'dense_0' \(QDense\) iq: 1 element\(s\) keep only a sign bit"):
        load_hgq2(_patched(tmp_path, weights=sign_only))


def test_mixed_layers_equal_hgq2_predictions():
    """Quantizer layer (SAT) → QBatchNormDense (BN on the input, folded) → QEinsumDense (TRN input) → QDense."""
    v = np.load(DATA / "jet_hgq2_mixed_vectors.npz")
    model = load_hgq2(DATA / "jet_hgq2_mixed.keras")
    assert [type(layer).__name__ for layer in model.layers[1:]] == ["Quantizer", "QDense", "QEinsumDense", "QDense"]
    assert np.array_equal(model.predict(v["x"], verbose=0), v["y"])
    xq = hdl_gen.quantize_input(model, v["x"])
    assert np.array_equal(xq, v["xq"].astype(np.float64))
    assert np.array_equal(hdl_gen.convert(model, name="hgq2_mixed").predict(xq), v["y"].astype(np.float64))
