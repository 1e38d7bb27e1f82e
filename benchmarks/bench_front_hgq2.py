"""HGQ2 side of the front benchmark (``bench_front.py`` drives it): HGQ2 0.2 training and da4ml 0.6 lowering.

Runs in its own venv (PyPI ``hgq2`` is imported as ``hgq`` too), from a directory where this repo's ``hgq`` is
not importable. Two steps, each printing one JSON line:

    python bench_front_hgq2.py train --split S.npz --out DIR --seed 0 --epochs E --batch 2048 --lr 3e-3 \\
        --beta 1e-7 1e-3 --hold H [--model {dense,lut}] [--bn-momentum 0.99]
    python bench_front_hgq2.py lower --split S.npz --out DIR --clock 5 --part P FILE.keras ...
    python bench_front_hgq2.py score --split S.npz FILE.keras ...
    python bench_front_hgq2.py grad --split S.npz --out F.npz --seed 0 --epochs E --lr L --beta B --batch N

``train``: the 16-64-32-32-5 ``QDense`` tagger (``bench_train_hgq2.build``; ``--model lut``: HGQ2's learned-LUT
``QDenseT(16)`` → ``QDenseT(5)`` tagger, ``bench_train_hgq2.build_lut``), Adam, β held at ``beta[0]`` for
``hold`` epochs then log-ramped to ``beta[1]`` at the last epoch (HGQ2's ``PieceWiseSchedule``), HGQ2's
``ParetoFront`` on (val_accuracy, EBOPs); each checkpoint is calibrated with HGQ2's ``trace_minmax`` on the
train split and saved to ``DIR/calibrated``; prints the points (validation accuracy, exact EBOPs) and the
training samples/s (``fit`` wall time, validation and callbacks included). The test split is not read.
``score``: the test accuracy of each calibrated checkpoint (the whole front's, for its accuracy-vs-EBOPs curve).
``lower``: for each calibrated checkpoint, the test accuracy, and da4ml's ``trace_model`` → ``comb_trace`` →
``VerilogModel`` (latency cutoff = clock, as in ``bench_hdl.py``) with the Verilog in one file per model (lookup
tables inlined as logic, ``_da4ml.da4ml_verilog``);
da4ml's own interpreter is checked against ``model.predict`` on the test split (mismatches are reported).
``grad`` (for ``bench_grad_parity.py``): trains the ``QDense`` tagger ``E`` epochs at a constant β and a large
learning rate (so that widths are learned and many pruned), then saves to ``F.npz`` every weight and width
variable, the training-mode logits, the loss (cross-entropy + β·EBOPs) and its gradient on each trainable
variable for the first ``N`` training jets, and each bias as HGQ2 quantizes it in training.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path = [p for p in sys.path if not os.path.exists(os.path.join(p or ".", "hgq", "fixed.py"))]

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _da4ml import da4ml_verilog  # noqa: E402
from _grad import loss_and_grads  # noqa: E402
from bench_train_hgq2 import BUILDERS  # noqa: E402  (also registers HGQ2's layers for load_model)


def _split(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def train(args: argparse.Namespace) -> dict:
    from hgq.utils import trace_minmax
    from hgq.utils.sugar import BetaScheduler, FreeEBOPs, ParetoFront, PieceWiseSchedule

    s = _split(args.split)
    keras.utils.set_random_seed(args.seed)
    kw = {"bn_momentum": args.bn_momentum} if args.model == "lut" else {}
    model = BUILDERS[args.model](beta0=args.beta[0], **kw)
    model.compile(
        keras.optimizers.Adam(args.lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    out = Path(args.out)
    b0, b1 = args.beta
    keys = [(0, b0, "constant"), (args.hold, b0, "log"), (args.epochs - 1, b1, "constant")]
    sched = BetaScheduler(PieceWiseSchedule(keys if args.hold else keys[1:]))
    front = ParetoFront(out / "checkpoints", ["val_accuracy", "ebops"], [1, -1], fname_format="epoch={epoch}.keras")
    t0 = time.perf_counter()
    model.fit(s["x_train"], s["y_train"], validation_data=(s["x_val"], s["y_val"]), epochs=args.epochs,
              batch_size=args.batch, shuffle=True, verbose=0, callbacks=[sched, FreeEBOPs(), front])  # fmt: skip
    secs = time.perf_counter() - t0
    cal = out / "calibrated"
    cal.mkdir(parents=True, exist_ok=True)
    points = []
    for f in sorted(Path(out / "checkpoints").glob("*.keras")):
        m = keras.models.load_model(f, compile=False)
        ebops = float(trace_minmax(m, s["x_train"], batch_size=8192))
        val = float(np.mean(np.argmax(m.predict(s["x_val"], batch_size=8192, verbose=0), -1) == s["y_val"]))
        dst = cal / f.name
        m.save(dst)
        points.append({"file": str(dst), "epoch": int(f.stem.split("=")[1]), "val_accuracy": val, "ebops": ebops})
    return {"train_seconds": secs, "samples_per_s": len(s["y_train"]) * args.epochs / secs, "points": points}


def _test_accuracy(m, s: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
    y = np.asarray(m.predict(s["x_test"], batch_size=8192, verbose=0))
    return float(np.mean(np.argmax(y, -1) == s["y_test"])), y


def score(args: argparse.Namespace) -> dict:
    s = _split(args.split)
    return {"accuracy": [_test_accuracy(keras.models.load_model(f, compile=False), s)[0] for f in args.files]}


def lower(args: argparse.Namespace) -> dict:
    from da4ml.codegen.rtl.rtl_model import VerilogModel
    from da4ml.converter import trace_model
    from da4ml.trace import comb_trace

    s = _split(args.split)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for f in args.files:
        m = keras.models.load_model(f, compile=False)
        acc, y_model = _test_accuracy(m, s)
        t0 = time.perf_counter()
        inp, outp = trace_model(m)
        comb = comb_trace(inp, outp)
        top = f"hgq2_{Path(f).stem.replace('=', '')}"
        with tempfile.TemporaryDirectory(prefix="front_da4ml_") as tmp:
            vm = VerilogModel(comb, top, tmp, latency_cutoff=args.clock, clock_period=args.clock, part_name=args.part)
            vm.write()
            text = da4ml_verilog(Path(tmp) / "src", top)
            stages = len(vm._pipe.solutions)
        secs = time.perf_counter() - t0
        vfile = out / f"{top}.v"
        vfile.write_text(text)
        n = min(len(s["x_test"]), 4096)
        mism = int(np.sum(np.any(comb.predict(s["x_test"][:n]) != y_model[:n], axis=-1)))
        rows.append({"file": f, "accuracy": acc, "verilog": str(vfile), "top": top, "stages": stages,
                     "ranks": stages + 1, "da4ml_cost": float(comb.cost), "lower_seconds": secs,
                     "mismatches": mism, "checked": n})  # fmt: skip
    return {"designs": rows}


def grad(args: argparse.Namespace) -> dict:
    from hgq.layers import QDense

    s = _split(args.split)
    keras.utils.set_random_seed(args.seed)
    model = BUILDERS["dense"](beta0=args.beta)
    model.compile(keras.optimizers.Adam(args.lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(s["x_train"], s["y_train"], epochs=args.epochs, batch_size=2048, verbose=0)
    x, y = s["x_train"][: args.batch], s["y_train"][: args.batch]
    dump: dict[str, np.ndarray] = {"x": x, "y": y}
    names = {}  # id(variable) -> "layer.name" in hgq-hil's terms
    for j, lay in enumerate(q for q in model.layers if isinstance(q, QDense)):
        for v, n in ((lay.kernel, "kernel"), (lay.bias, "bias")):
            names[id(v)] = f"{j}.{n}"
        for qn in ("kq", "bq", "iq"):
            q = getattr(lay, qn).quantizer
            for vn in ("k", "b", "i", "f"):
                if (v := getattr(q, "_" + vn, None)) is not None:
                    names[id(v)] = f"{j}.{qn}.{vn}"
        with keras.StatelessScope():  # the bias as training quantizes it, without moving its tracked i
            dump[f"{j}.qbias"] = np.asarray(lay.bq(lay.bias, training=True))
    for v in model.variables:
        if id(v) in names:
            dump[names[id(v)]] = np.asarray(v.value, np.float32)
    value, dump["logits"], grads = loss_and_grads(model, x, y)
    dump["loss"] = np.float64(value)
    for v, g in zip(model.trainable_variables, grads, strict=True):
        dump["grad:" + names[id(v)]] = g
    np.savez(args.out, **dump)
    return {"file": args.out, "loss": value}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--split", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=1000)
    t.add_argument("--batch", type=int, default=2048)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--beta", type=float, nargs=2, default=[1e-7, 1e-3])
    t.add_argument("--hold", type=int, default=100)
    t.add_argument("--model", choices=sorted(BUILDERS), default="dense", help="QDense (dense) or QDenseT (lut)")
    t.add_argument("--bn-momentum", type=float, default=0.99, help="lut: batch-norm momentum (moving statistics)")
    low = sub.add_parser("lower")
    low.add_argument("--split", required=True)
    low.add_argument("--out", required=True)
    low.add_argument("--clock", type=float, default=5.0)
    low.add_argument("--part", default="xcvu13p-flga2577-2-e")
    low.add_argument("files", nargs="+")
    sc = sub.add_parser("score")
    sc.add_argument("--split", required=True)
    sc.add_argument("files", nargs="+")
    gr = sub.add_parser("grad")
    gr.add_argument("--split", required=True)
    gr.add_argument("--out", required=True)
    gr.add_argument("--seed", type=int, default=0)
    gr.add_argument("--epochs", type=int, default=20)
    gr.add_argument("--lr", type=float, default=0.03, help="large: some widths reach 0 within a few epochs")
    gr.add_argument("--beta", type=float, default=1e-4)
    gr.add_argument("--batch", type=int, default=2048)
    args = ap.parse_args()
    res = {"train": train, "lower": lower, "score": score, "grad": grad}[args.cmd](args)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
