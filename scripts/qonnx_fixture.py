"""Make the Brevitas → QONNX jet-tagger fixture (issue 21: "bring your own model", a QONNX importer's test data).

Runs ONLY inside the Brevitas virtualenv (torch 2.13.0 CPU, brevitas, qonnx, onnx, onnxruntime); it never imports
hgq-hil:

    .nox/brevitas-venv/bin/python scripts/qonnx_fixture.py --out tests/data/qonnx

Trains a small Brevitas jet tagger on the jet sample shipped with hgq-hil (``hgq/data/jsc_sample.npz``, read
directly with numpy; the split and scaling are ``hgq.data.jsc_split``'s, re-done here as in
``scripts/hgq2_fixture.py``: permutation of ``RandomState(42)``, 20 % test, StandardScaler on the train part,
float32):

    QuantIdentity (Int8ActPerTensorFixedPoint, 8 bit signed)
    → QuantLinear(16, 32, Int8WeightPerTensorFixedPoint @ 6 bit, Int16Bias) → QuantReLU (Uint8ActPerTensorFixedPoint)
    → QuantLinear(32, 16, 6 bit weights, Int16Bias)                         → QuantReLU (8 bit unsigned)
    → QuantLinear(16, 5, 6 bit weights, Int16Bias)                          → logits (float, not re-quantized)

Every quantizer is a Brevitas fixed-point one, so every scale is a power of two (the Int16Bias scale is the
product input scale × weight scale). Exported with ``brevitas.export.export_qonnx`` (batch 1; with torch ≥ 2.9
Brevitas takes torch's dynamo exporter, which needs ``onnxscript`` and Brevitas needs ``onnxoptimizer``), tidied with
``qonnx.util.cleanup.cleanup_model`` plus dropping the torch exporter's per-node ``metadata_props`` (stack traces
with local paths), and executed with QONNX's own ``execute_onnx`` on the saved file. Writes:

- ``jet_qonnx.onnx``: the cleaned QONNX graph;
- ``jet_qonnx_vectors.npz``: ``x`` (the first 200 test-split rows, float32), ``y`` (QONNX's ``execute_onnx`` of
  the saved file, row by row since the graph has batch 1, float32), ``y_label`` (true classes), ``test_index``
  (rows of the sample file), ``y_torch`` (the Brevitas model's own float32 output), ``mean``/``scale`` (the
  scaler) and ``meta`` (a JSON string: versions, seed, command, accuracy, the Quant nodes).

Checks (the script exits non-zero if one fails): every Quant scale is an exact power of two and every zero point
is 0; a float64 numpy re-implementation of the graph from its constants (QONNX ``int_quant`` semantics, ROUND =
half-to-even) equals QONNX's float32 ``y`` bit for bit on the 200 vectors (no float32 rounding anywhere).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path = [p for p in sys.path if not os.path.exists(os.path.join(p or ".", "hgq", "fixed.py"))]
warnings.filterwarnings("ignore", message="fast_hadamard_transform package not found")

import brevitas  # noqa: E402
import brevitas.nn as qnn  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
import torch  # noqa: E402
from brevitas.export import export_qonnx  # noqa: E402
from brevitas.quant import (  # noqa: E402
    Int8ActPerTensorFixedPoint,
    Int8WeightPerTensorFixedPoint,
    Int16Bias,
    Uint8ActPerTensorFixedPoint,
)
from jsc_split_numpy import load_split  # noqa: E402  (scripts/: the same split without hgq-hil)
from onnx import numpy_helper  # noqa: E402
from qonnx.core.modelwrapper import ModelWrapper  # noqa: E402
from qonnx.core.onnx_exec import execute_onnx  # noqa: E402
from qonnx.util.cleanup import cleanup_model  # noqa: E402

STEM = "jet_qonnx"


class JetQ(torch.nn.Module):
    """16 → 32 → 16 → 5, Brevitas fixed-point (power-of-two scale) quantizers everywhere."""

    def __init__(self, w_bits: int = 6, a_bits: int = 8):
        super().__init__()

        def linear(n_in, n_out):
            return qnn.QuantLinear(
                n_in,
                n_out,
                bias=True,
                weight_quant=Int8WeightPerTensorFixedPoint,
                weight_bit_width=w_bits,
                bias_quant=Int16Bias,
                return_quant_tensor=False,
            )

        def relu():
            return qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=a_bits, return_quant_tensor=True)

        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=a_bits, return_quant_tensor=True)
        self.fc0, self.relu0 = linear(16, 32), relu()
        self.fc1, self.relu1 = linear(32, 16), relu()
        self.fc2 = linear(16, 5)

    def forward(self, x):
        x = self.inp(x)
        x = self.relu0(self.fc0(x))
        x = self.relu1(self.fc1(x))
        return self.fc2(x)


def is_pow2(a: np.ndarray) -> bool:
    a = np.asarray(a, np.float64)
    if not np.all(np.isfinite(a)) or not np.all(a > 0):
        return False
    m, _ = np.frexp(a)
    return bool(np.all(m == 0.5))


def min_max_int(signed: int, narrow: int, bits: int) -> tuple[int, int]:
    if signed:
        return -(2 ** (bits - 1)) + (1 if narrow else 0), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1 - (1 if narrow else 0)


def attrs(node) -> dict:
    vals = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in vals.items()}


def numpy_forward(model: onnx.ModelProto, x: np.ndarray, stats: dict | None = None) -> np.ndarray:
    """The graph evaluated in float64 numpy from its own constants (QONNX semantics), one batch at a time.

    ``stats``, if given, collects per Quant node of an activation how many values were exact ties (``.5`` before
    ROUND, where half-to-even and half-up differ) and how many were clipped below / above.
    """
    g = model.graph
    env = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
    consts = set(env)
    env[g.input[0].name] = np.asarray(x, np.float64)
    for node in g.node:
        a = attrs(node)
        ins = [env[i] for i in node.input if i]
        op = node.op_type
        if op == "Quant":
            v, s, z, b = ins
            if int(b.item()) != b.item():
                raise SystemExit(f"{node.name}: non-integer bit width {b}")
            if a.get("rounding_mode", "ROUND").upper() not in ("ROUND", "HALF_EVEN"):
                raise SystemExit(f"{node.name}: rounding mode {a.get('rounding_mode')} not handled here")
            lo, hi = min_max_int(a["signed"], a["narrow"], int(b.item()))
            t = v / s + z
            q = np.round(np.clip(t, lo, hi))  # np.round: half to even
            if stats is not None and node.input[0] not in consts:
                st = stats.setdefault(node.name, {"values": 0, "ties": 0, "clipped_low": 0, "clipped_high": 0})
                st["values"] += int(t.size)
                st["ties"] += int(np.sum((np.abs(t - np.floor(t) - 0.5) == 0) & (t > lo) & (t < hi)))
                st["clipped_low"] += int(np.sum(t < lo - 0.5))
                st["clipped_high"] += int(np.sum(t > hi + 0.5))
            out = (q - z) * s
        elif op == "MatMul":
            out = ins[0] @ ins[1]
        elif op == "Gemm":
            aa, bb = ins[0], ins[1]
            if a.get("transA", 0):
                aa = aa.T
            if a.get("transB", 0):
                bb = bb.T
            out = a.get("alpha", 1.0) * (aa @ bb)
            if len(ins) > 2:
                out = out + a.get("beta", 1.0) * ins[2]
        elif op == "Add":
            out = ins[0] + ins[1]
        elif op == "Mul":
            out = ins[0] * ins[1]
        elif op == "Relu":
            out = np.maximum(ins[0], 0.0)
        elif op == "Transpose":
            out = np.transpose(ins[0], a.get("perm"))
        elif op == "Identity":
            out = ins[0]
        else:
            raise SystemExit(f"numpy_forward: op {op} ({node.name}) not handled")
        env[node.output[0]] = out
    return env[g.output[0].name]


def describe(model: onnx.ModelProto) -> tuple[list[dict], list[str]]:
    """Node list with every Quant node's attributes and constant inputs; also the failed power-of-two checks."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes, problems = [], []
    for node in model.graph.node:
        d = {"name": node.name, "op_type": node.op_type, "inputs": list(node.input), "outputs": list(node.output)}
        if node.domain:
            d["domain"] = node.domain
        if node.op_type == "Quant":
            d["attrs"] = attrs(node)
            v, s, z, b = (inits.get(n) for n in node.input)
            d["quantizes"] = "constant " + str(list(v.shape)) if v is not None else "activation"
            if s is None or z is None or b is None:
                problems.append(f"{node.name}: scale/zeropt/bitwidth not constant")
                nodes.append(d)
                continue
            d["scale"] = s.tolist()
            d["scale_log2"] = np.log2(s.astype(np.float64)).tolist()
            d["zeropt"] = z.tolist()
            d["bitwidth"] = b.tolist()
            if not is_pow2(s):
                problems.append(f"{node.name}: scale {s.tolist()} is not an exact power of two")
            if np.any(z != 0):
                problems.append(f"{node.name}: zero point {z.tolist()} is not 0")
            if v is not None:
                lo, hi = min_max_int(d["attrs"]["signed"], d["attrs"]["narrow"], int(b.item()))
                q = np.round(v.astype(np.float64) / s.astype(np.float64))
                d["int_range_before_clip"] = [float(q.min()), float(q.max())]
                d["n_clipped"] = int(np.sum((q < lo) | (q > hi)))
                d["stored_on_grid"] = bool(np.all(v.astype(np.float64) / s == q) and q.min() >= lo and q.max() <= hi)
        elif node.op_type in ("MatMul", "Gemm", "Add", "Mul"):
            if node.attribute:
                d["attrs"] = attrs(node)
            d["constants"] = {n: list(inits[n].shape) for n in node.input if n in inits}
        nodes.append(d)
    return nodes, problems


def print_nodes(nodes: list[dict]) -> None:
    for d in nodes:
        line = f"{d['name']:<14} {d['op_type']:<10} {', '.join(d['inputs'])} -> {', '.join(d['outputs'])}"
        print(line)
        if d["op_type"] == "Quant":
            used = ""
            if "n_clipped" in d:
                used = f" rounded ints {d['int_range_before_clip']} before clip, {d['n_clipped']} clipped"
            print(
                f"{'':<14} {d['quantizes']}: {d['attrs']} scale={d.get('scale')} (2^{d.get('scale_log2')}) "
                f"zeropt={d.get('zeropt')} bitwidth={d.get('bitwidth')}{used}"
            )
        elif "attrs" in d:
            print(f"{'':<14} {d['attrs']}")


def strip_torch_metadata(model: onnx.ModelProto) -> None:
    """Drop the torch exporter's per-node/per-tensor ``metadata_props`` (stack traces with local paths, FX names)."""
    g = model.graph
    for item in [*g.node, *g.input, *g.output, *g.value_info, *g.initializer]:
        del item.metadata_props[:]


def qonnx_run(path: Path, x: np.ndarray) -> np.ndarray:
    """QONNX's own execution of the saved file, one row at a time (the exported graph has batch 1)."""
    mw = ModelWrapper(str(path))
    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    rows = [np.asarray(execute_onnx(mw, {iname: x[i : i + 1]})[oname]) for i in range(len(x))]
    return np.concatenate(rows, axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "qonnx"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--n-vectors", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x_tr, y_tr, x_te, y_te, test_idx, mean, scale = load_split()

    model = JetQ()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(xt), args.batch):
            idx = perm[i : i + args.batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        with torch.no_grad():
            acc = float((model(torch.from_numpy(x_te)).argmax(-1).numpy() == y_te).mean())
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {total / len(xt):.4f}, test accuracy {acc:.4f}")
    model.eval()
    with torch.no_grad():
        acc = float((model(torch.from_numpy(x_te)).argmax(-1).numpy() == y_te).mean())

    x = np.ascontiguousarray(x_te[: args.n_vectors])
    with torch.no_grad():
        y_torch = model(torch.from_numpy(x)).numpy().astype(np.float32)

    dst = out / f"{STEM}.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        export_qonnx(model, input_t=torch.from_numpy(x[:1]), export_path=str(raw))
        raw_model = onnx.load(str(raw))
        print(f"raw export: {len(raw_model.graph.node)} nodes: {[n.op_type for n in raw_model.graph.node]}")
        mw = cleanup_model(ModelWrapper(str(raw)))
    strip_torch_metadata(mw.model)
    mw.save(str(dst))

    saved = onnx.load(str(dst))
    onnx.checker.check_model(saved)
    nodes, problems = describe(saved)
    print(f"\ncleaned graph ({dst.name}, opsets {[(o.domain, o.version) for o in saved.opset_import]}):")
    print(f"input {saved.graph.input[0].name} {[d.dim_value for d in saved.graph.input[0].type.tensor_type.shape.dim]}")
    print_nodes(nodes)
    print(f"output {saved.graph.output[0].name}")
    if problems:
        raise SystemExit("power-of-two / zero-point check FAILED:\n  " + "\n  ".join(problems))
    print("every Quant scale is an exact power of two and every zero point is 0")

    y = qonnx_run(dst, x)
    if y.dtype != np.float32:
        raise SystemExit(f"QONNX output dtype {y.dtype}, expected float32")
    ref = np.concatenate([numpy_forward(saved, x[i : i + 1]) for i in range(len(x))], axis=0)
    quant_stats: dict = {}
    ref_batch = numpy_forward(saved, x, quant_stats)
    if not np.array_equal(ref, ref_batch):
        raise SystemExit("numpy reference differs between batch-1 and whole-batch evaluation")
    if not np.array_equal(y.astype(np.float64), ref):
        bad = np.argwhere(y.astype(np.float64) != ref)
        raise SystemExit(
            f"exactness check FAILED: QONNX float32 y differs from the float64 reference at {len(bad)} places, "
            f"max |diff| {np.max(np.abs(y.astype(np.float64) - ref))}"
        )
    print(f"exactness: QONNX float32 y == float64 numpy reference on all {y.size} values ({len(x)} vectors)")
    torch_equal = bool(np.array_equal(y, y_torch))
    torch_maxdiff = float(np.max(np.abs(y.astype(np.float64) - y_torch)))
    print(f"Brevitas torch output equal to QONNX y: {torch_equal} (max |diff| {torch_maxdiff})")
    print("activation Quant nodes on the vectors (ties = exact .5 before ROUND; clipped = beyond the int range):")
    for name, st in quant_stats.items():
        print(f"  {name}: {st}")
    acc_vec = float(np.mean(np.argmax(y, -1) == y_te[: args.n_vectors]))

    meta = {
        "command": ".nox/brevitas-venv/bin/python scripts/qonnx_fixture.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out"),
        "seed": args.seed,
        "versions": {
            "torch": torch.__version__,
            "brevitas": brevitas.__version__,
            "qonnx": importlib.metadata.version("qonnx"),
            "onnxoptimizer": importlib.metadata.version("onnxoptimizer"),
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__,
        },
        "data": "hgq/data/jsc_sample.npz, jsc_split(test_size=0.2, random_state=42) re-done in numpy",
        "test_accuracy": acc,
        "vectors_accuracy": acc_vec,
        "torch_equals_qonnx": torch_equal,
        "torch_max_abs_diff": torch_maxdiff,
        "quant_stats_on_vectors": quant_stats,
        "nodes": nodes,
    }
    np.savez_compressed(
        out / f"{STEM}_vectors.npz",
        x=x,
        y=y,
        y_label=y_te[: args.n_vectors].astype(np.int64),
        test_index=test_idx[: args.n_vectors].astype(np.int64),
        y_torch=y_torch,
        mean=mean,
        scale=scale,
        meta=np.array(json.dumps(meta)),
    )
    print(json.dumps({k: v for k, v in meta.items() if k != "nodes"}, indent=1))


if __name__ == "__main__":
    main()
