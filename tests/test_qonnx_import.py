"""QONNX graphs (hgq.qonnx_import): QONNX's own execution == the imported Keras model == interpreter (== Verilator
for the shipped Brevitas model), by equality on real jets; what is not fixed point is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as nh
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.util.cleanup import cleanup_model

import hdl_gen
from boards.checks import EXIT_BAD_INPUT
from boards.cli import main
from hgq.data import physics_vectors
from hgq.qonnx_import import SUPPORTED_OPS, QONNXImportError, int_quant, load_qonnx

DATA = Path(__file__).parent / "data" / "qonnx"
DOMAIN = "qonnx.custom_op.general"


def _quant(i, s, b, o, signed=1, narrow=0, rm="ROUND"):
    return oh.make_node("Quant", [i, s, "zero", b], [o], domain=DOMAIN, signed=signed, narrow=narrow, rounding_mode=rm)


def _mlp(path: Path, *, s_in=2.0**-4, zero=0.0, act="trunc", extra=None) -> Path:
    """16 → Quant → MatMul/Add/Relu → (Trunc | Quant) → Gemm(transB) → 5, random power-of-two-quantized weights."""
    rng = np.random.default_rng(0)
    c = {"W1": rng.normal(0, 0.5, (16, 8)), "b1": rng.normal(0, 0.2, 8), "W2t": rng.normal(0, 0.5, (5, 8)),
         "s_in": s_in, "zero": zero, "bw8": 8.0, "s_w": 2.0**-5, "bw6": 6.0, "s_b": 2.0**-8, "bw12": 12.0,
         "s_a": 2.0**-3, "s_acc": 2.0**-12, "bw20": 20.0}  # fmt: skip
    inits = [nh.from_array(np.asarray(v, np.float32), k) for k, v in c.items()]
    nodes = [_quant("x", "s_in", "bw8", "xq"), _quant("W1", "s_w", "bw6", "W1q", narrow=1),
             _quant("b1", "s_b", "bw12", "b1q"), oh.make_node("MatMul", ["xq", "W1q"], ["h0"]),
             oh.make_node("Add", ["h0", "b1q"], ["h1"]), oh.make_node("Relu", ["h1"], ["h2"])]  # fmt: skip
    if act == "trunc":  # Trunc v2: from the accumulator grid 2^-12 down to 2^-3, floor, 8 bits unsigned
        nodes.append(oh.make_node("Trunc", ["h2", "s_acc", "zero", "bw20", "s_a", "bw8"], ["h3"], domain=DOMAIN,
                                  signed=0, narrow=0, rounding_mode="FLOOR"))  # fmt: skip
    else:
        nodes.append(_quant("h2", "s_a", "bw8", "h3", signed=0))
    nodes += [_quant("W2t", "s_w", "bw6", "W2q", narrow=1), oh.make_node("Gemm", ["h3", "W2q"], ["y"], transB=1)]
    if extra is not None:
        nodes = extra(nodes)
    g = oh.make_graph(nodes, "mlp", [oh.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                      [oh.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)  # fmt: skip
    opset = 2 if act == "trunc" else 1  # Trunc v2 (with an output scale) from QONNX opset 2
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 13), oh.make_opsetid(DOMAIN, opset)]), path)
    return path


def _qonnx_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """QONNX's own execution (qonnx.core.onnx_exec), one row at a time as the graph's batch is 1."""
    mw = cleanup_model(ModelWrapper(str(path)))
    i, o = mw.graph.input[0].name, mw.graph.output[0].name
    return np.stack([execute_onnx(mw, {i: x[j : j + 1]})[o][0] for j in range(len(x))])


@pytest.mark.parametrize("act", ["trunc", "quant"])
def test_synthetic_graph_equals_qonnx_execution(tmp_path, act):
    path = _mlp(tmp_path / "m.onnx", act=act)
    x = physics_vectors(64, seed=5).astype(np.float32)
    ref = _qonnx_outputs(path, x)
    model = load_qonnx(path)
    assert [type(layer).__name__ for layer in model.layers[1:]] == ["Quantizer", "QDense", "Quantizer", "QDense"]
    assert np.array_equal(model.predict(x, verbose=0), ref)
    xq = hdl_gen.quantize_input(model, x)
    assert np.array_equal(hdl_gen.convert(model, name="qmlp").predict(xq), ref.astype(np.float64))


def test_int_quant_is_qonnx_quant():
    from qonnx.custom_op.general.quant import quant as qonnx_quant

    rng = np.random.default_rng(1)
    x = rng.normal(0, 4, 500).astype(np.float32)
    for signed, narrow, rm in ((1, 0, "ROUND"), (1, 1, "FLOOR"), (0, 0, "HALF_UP"), (1, 0, "DOWN")):
        ref = qonnx_quant(x, np.float32(0.25), np.float32(0), np.float32(5), signed, narrow, rm)
        assert np.array_equal(int_quant(x, 0.25, 0.0, 5, bool(signed), bool(narrow), rm), ref.astype(np.float64))


def test_not_fixed_point_is_refused_by_name(tmp_path, capsys):
    with pytest.raises(QONNXImportError, match=r"node 'xq': scale 0.1 is not a power of two"):
        load_qonnx(_mlp(tmp_path / "a.onnx", s_in=0.1))
    with pytest.raises(QONNXImportError, match=r"\(Quant\): zero point .*is not 0"):
        load_qonnx(_mlp(tmp_path / "b.onnx", zero=1.0))

    def sigmoid(nodes):  # a float function between the layers
        nodes[5] = oh.make_node("Sigmoid", ["h1"], ["h2"], name="squash")
        return nodes

    with pytest.raises(QONNXImportError, match=r"node 'squash' is an ONNX Sigmoid, which does not convert; supported"):
        load_qonnx(_mlp(tmp_path / "c.onnx", extra=sigmoid))
    assert "MatMul" in SUPPORTED_OPS

    def activation_product(nodes):  # x · x: a product of two activations
        nodes[3] = oh.make_node("MatMul", ["xq", "xq"], ["h0"], name="square")
        return nodes

    with pytest.raises(QONNXImportError, match=r"only products with a constant"):
        load_qonnx(_mlp(tmp_path / "d.onnx", extra=activation_product))
    _mlp(tmp_path / "e.onnx", s_in=0.1)
    assert main(["convert", str(tmp_path / "e.onnx"), "--out", str(tmp_path / "out")]) == EXIT_BAD_INPUT
    assert "is not a power of two" in capsys.readouterr().err


def _brevitas():
    v = np.load(DATA / "jet_qonnx_vectors.npz")
    return DATA / "jet_qonnx.onnx", v["x"], v["y"]


def test_brevitas_model_equals_qonnx_outputs():
    path, x, y = _brevitas()
    model = load_qonnx(path)
    assert np.array_equal(model.predict(x, verbose=0), y)
    assert np.array_equal(_qonnx_outputs(path, x[:20]), y[:20])  # the shipped outputs are QONNX's own
    xq = hdl_gen.quantize_input(model, x)
    assert np.array_equal(hdl_gen.convert(model, name="brevitas_jet").predict(xq), y.astype(np.float64))


@pytest.mark.sim("verilator")
def test_brevitas_model_cli_convert_and_simulate(tmp_path, capsys):
    path, x, y = _brevitas()
    assert main(["convert", str(path), "--out", str(tmp_path / "d"), "--name", "brevitas_jet"]) == 0
    xq = hdl_gen.quantize_input(load_qonnx(path), x)
    np.savez(tmp_path / "v.npz", x=xq, y=y.astype(np.float64))  # QONNX's own outputs as the reference
    capsys.readouterr()
    assert main(["simulate", str(tmp_path / "d"), "--vectors", str(tmp_path / "v.npz"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["passed"] and r["mismatches"] == 0 and r["compared"] >= len(y)


def _cnn(path: Path, pool: str) -> Path:
    """(1, 4, 4) jet image → Quant → Conv 3×3 'same' + bias + Relu → Quant → MaxPool/AveragePool 2×2 → Flatten →
    Gemm → 5 (ONNX NCHW; the imported model takes channels last)."""
    rng = np.random.default_rng(3)
    c = {"W": rng.normal(0, 0.5, (4, 1, 3, 3)), "B": rng.normal(0, 0.2, 4), "W2": rng.normal(0, 0.5, (16, 5)),
         "zero": 0.0, "s_in": 2.0**-4, "bw8": 8.0, "s_w": 2.0**-5, "bw6": 6.0, "s_b": 2.0**-9, "bw12": 12.0,
         "s_a": 2.0**-3}  # fmt: skip
    inits = [nh.from_array(np.asarray(v, np.float32), k) for k, v in c.items()]
    nodes = [_quant("x", "s_in", "bw8", "xq"), _quant("W", "s_w", "bw6", "Wq", narrow=1),
             _quant("B", "s_b", "bw12", "Bq"), _quant("W2", "s_w", "bw6", "W2q", narrow=1),
             oh.make_node("Conv", ["xq", "Wq", "Bq"], ["c0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv"),
             oh.make_node("Relu", ["c0"], ["c1"]), _quant("c1", "s_a", "bw8", "c2", signed=0),
             oh.make_node(pool, ["c2"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             oh.make_node("Flatten", ["p"], ["fl"]), oh.make_node("MatMul", ["fl", "W2q"], ["y"])]  # fmt: skip
    g = oh.make_graph(nodes, "cnn", [oh.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                      [oh.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)  # fmt: skip
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 13), oh.make_opsetid(DOMAIN, 1)]), path)
    return path


@pytest.mark.parametrize("pool", ["MaxPool", "AveragePool"])
def test_conv_and_pooling_equal_qonnx_execution(tmp_path, pool):
    path = _cnn(tmp_path / "cnn.onnx", pool)
    x = physics_vectors(64, seed=6).astype(np.float32).reshape(-1, 1, 4, 4)  # 16 jet features as a 4×4 image
    ref = _qonnx_outputs(path, x)
    model = load_qonnx(path)
    names = [type(layer).__name__ for layer in model.layers[1:]]
    assert names == ["Quantizer", "QConv2D", "Quantizer", f"Q{pool.replace('Pool', 'Pooling')}2D", "Flatten", "QDense"]
    xk = np.moveaxis(x, 1, -1)  # channels last
    assert np.array_equal(model.predict(xk, verbose=0), ref)
    xq = hdl_gen.quantize_input(model, xk)
    assert np.array_equal(hdl_gen.convert(model, name="qcnn").predict(xq), ref.astype(np.float64))
