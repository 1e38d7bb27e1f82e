"""Make the HGQ2 0.2.0 checkpoint fixture (issue 21: ``hgq-hil convert`` of HGQ2 ``.keras`` files).

Runs ONLY inside the HGQ2 venv (PyPI ``hgq2`` imports as ``hgq`` too, so this repo's ``hgq`` must not be
importable; the script drops it from ``sys.path``):

    .nox/hgq2-venv/bin/python scripts/hgq2_fixture.py --out tests/data/hgq2

Trains a small HGQ2 jet tagger 16 → QDense(32, relu) → QDense(16, relu) → QDense(5) on the jet sample shipped
with hgq-hil (``hgq/data/jsc_sample.npz``, read directly with numpy; the split and scaling are
``hgq.data.jsc_split``'s: permutation of ``RandomState(42)``, 20 % test, StandardScaler on the train part,
float32). Quantizers as in ``benchmarks/bench_train_hgq2.py`` (HGQ2's README recipe: kbi weights SAT_SYM,
kbi biases WRAP, kif activations WRAP, all RND), a β large enough to prune some weights, then HGQ2's own
``trace_minmax`` calibration on the train split. Writes:

- ``jet_hgq2.keras``: the calibrated model (saved from a ``compile=False`` reload, so no optimizer state);
- ``jet_hgq2_vectors.npz``: ``x`` (200 test-split rows, float32, as fed to the model), ``y`` (HGQ2's
  ``model.predict(x)``, float32 as produced), ``y_label`` (true classes), ``test_index`` (rows of the sample file),
  ``xq`` (HGQ2's own quantized input, the first layer's ``iq`` at inference, float32), ``mean``/``scale`` (the
  scaler), and ``meta`` (a JSON string: versions, seed, command).

``--model mixed`` (default ``--model jet``, the files above) makes a second fixture exercising the other HGQ2 layers
a converter must map, on the same 16 features, split and scaler:

    .nox/hgq2-venv/bin/python scripts/hgq2_fixture.py --model mixed --out tests/data/hgq2

Functional ``features (16)`` → standalone ``Quantizer`` "in_quant" (kif datalane, RND, SAT) → ``QBatchNormDense(24,
relu, scale=True, enable_iq=False)`` "bn_dense" (BN on the layer input folded into kernel/bias; kif weights RND SAT)
→ ``QEinsumDense("bi,io->bo", 12, bias_axes="o", relu)`` "einsum" (kif iq TRN WRAP; kbi weights RND SAT_SYM) →
``QDense(5)`` "logits" (kif iq RND WRAP; kbi weights RND SAT_SYM; kif bias RND SAT). Trained 5 epochs, then the
same reload / ``trace_minmax`` / save. Writes ``jet_hgq2_mixed.keras`` and ``jet_hgq2_mixed_vectors.npz`` (same keys;
``xq`` is the ``Quantizer`` layer's output).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
REPO = Path(__file__).resolve().parents[1]
sys.path = [p for p in sys.path if not os.path.exists(os.path.join(p or ".", "hgq", "fixed.py"))]

import keras  # noqa: E402
import numpy as np  # noqa: E402
from hgq.config import LayerConfigScope, QuantizerConfigScope  # noqa: E402
from hgq.quantizer.config import QuantizerConfig  # noqa: E402
from hgq.utils import trace_minmax  # noqa: E402

from hgq.layers import QBatchNormDense, QDense, QEinsumDense, Quantizer  # noqa: E402

if os.path.exists(os.path.join(os.path.dirname(__import__("hgq").__file__), "fixed.py")):
    raise SystemExit("hgq2_fixture.py imported hgq-hil's hgq, not HGQ2's: run it with the HGQ2 venv's python")

from jsc_split_numpy import load_split  # noqa: E402  (scripts/: the same split without hgq-hil)


def build(beta0: float) -> keras.Model:
    """16 → QDense(32, relu) → QDense(16, relu) → QDense(5); bench_train_hgq2.build's quantizer recipe."""
    with (
        QuantizerConfigScope(place="weight", q_type="kbi", b0=6, i0=0, round_mode="RND", overflow_mode="SAT_SYM"),
        QuantizerConfigScope(place="bias", q_type="kbi", b0=8, i0=2, round_mode="RND", overflow_mode="WRAP"),
        QuantizerConfigScope(place="datalane", q_type="kif", i0=3, f0=4, round_mode="RND", overflow_mode="WRAP"),
        LayerConfigScope(enable_ebops=True, beta0=beta0),
    ):
        inp = keras.Input((16,), name="features")
        y = QDense(32, activation="relu", name="dense_0")(inp)
        y = QDense(16, activation="relu", name="dense_1")(y)
        out = QDense(5, name="logits")(y)
        return keras.Model(inp, out, name="jet_hgq2")


def build_mixed(beta0: float) -> keras.Model:
    """16 → Quantizer → QBatchNormDense(24, relu) → QEinsumDense(12, relu) → QDense(5), mixed quantizer configs.

    Both weight q_types (kif SAT on the BN dense, kbi SAT_SYM on the others), a TRN activation quantizer, SAT
    activation/bias quantizers, and a layer with ``enable_iq=False`` (the standalone ``Quantizer`` is its input).
    """

    def kif(place, **kw):
        return QuantizerConfig(q_type="kif", place=place, **kw)

    def kbi(place, **kw):
        return QuantizerConfig(q_type="kbi", place=place, **kw)

    kbi_w = {"b0": 6, "i0": 0, "round_mode": "RND", "overflow_mode": "SAT_SYM"}
    kbi_b = {"b0": 8, "i0": 2, "round_mode": "RND", "overflow_mode": "WRAP"}
    with LayerConfigScope(enable_ebops=True, beta0=beta0):
        inp = keras.Input((16,), name="features")
        y = Quantizer(kif("datalane", i0=2, f0=4, round_mode="RND", overflow_mode="SAT"), name="in_quant")(inp)
        y = QBatchNormDense(
            24,
            activation="relu",
            scale=True,
            enable_iq=False,  # the Quantizer layer above quantizes its input; no iq → no EBOPs term either
            kq_conf=kif("weight", i0=1, f0=5, round_mode="RND", overflow_mode="SAT"),
            bq_conf=kbi("bias", **kbi_b),
            name="bn_dense",
        )(y)
        y = QEinsumDense(
            "bi,io->bo",
            output_shape=12,
            bias_axes="o",
            activation="relu",
            iq_conf=kif("datalane", i0=3, f0=3, round_mode="TRN", overflow_mode="WRAP"),
            kq_conf=kbi("weight", **kbi_w),
            bq_conf=kbi("bias", **kbi_b),
            name="einsum",
        )(y)
        out = QDense(
            5,
            iq_conf=kif("datalane", i0=3, f0=4, round_mode="RND", overflow_mode="WRAP"),
            kq_conf=kbi("weight", **kbi_w),
            bq_conf=kif("bias", i0=3, f0=6, round_mode="RND", overflow_mode="SAT"),
            name="logits",
        )(y)
        return keras.Model(inp, out, name="jet_hgq2_mixed")


MODELS = {"jet": (build, "jet_hgq2", 10), "mixed": (build_mixed, "jet_hgq2_mixed", 5)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="jet", help="jet (default) or mixed")
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "hgq2"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help="default: 10 (jet), 5 (mixed)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--beta", type=float, default=2e-5)
    ap.add_argument("--n-vectors", type=int, default=200)
    args = ap.parse_args()
    build_fn, stem, epochs = MODELS[args.model]
    if args.epochs is None:
        args.epochs = epochs

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x_tr, y_tr, x_te, y_te, test_idx, mean, scale = load_split()
    keras.utils.set_random_seed(args.seed)
    model = build_fn(args.beta)
    model.compile(
        keras.optimizers.Adam(args.lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_tr, y_tr, epochs=args.epochs, batch_size=args.batch, shuffle=True, verbose=2)

    # the real workflow: checkpoint → reload without optimizer → HGQ2 trace_minmax on the train split → save
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "ckpt.keras")
        m = keras.models.load_model(Path(tmp) / "ckpt.keras", compile=False)
    ebops = int(trace_minmax(m, x_tr, batch_size=4096))
    dst = out / f"{stem}.keras"
    m.save(dst)

    m2 = keras.models.load_model(dst, compile=False)  # predictions come from the saved file, as a converter sees it
    x = np.ascontiguousarray(x_te[: args.n_vectors])
    y = np.asarray(m2.predict(x, batch_size=len(x), verbose=0))
    y1 = np.asarray(m2(x, training=False))
    if not np.array_equal(y, y1):
        raise SystemExit("model.predict and model(x) disagree: not deterministic")
    if args.model == "jet":
        xq = np.asarray(m2.layers[1].iq(x, training=False))
    else:
        xq = np.asarray(m2.get_layer("in_quant")(x, training=False))  # the standalone Quantizer layer's output
    acc = float(np.mean(np.argmax(m2.predict(x_te, batch_size=4096, verbose=0), -1) == y_te))
    n_w = zeros = pruned = 0
    for layer in m2.layers[1:]:
        if not hasattr(layer, "qkernel"):
            continue
        qk = np.asarray(layer.qkernel)  # QBatchNormDense: the BN-fused quantized kernel
        n_w += qk.size
        zeros += int(np.sum(qk == 0))
        pruned += int(np.sum(np.asarray(layer.kq.quantizer.b) <= 0))  # magnitude bits 0 (kbi b; kif relu(i + f))
    import jax

    import hgq as _hgq

    meta = {
        "command": "KERAS_BACKEND=jax JAX_PLATFORMS=cpu .nox/hgq2-venv/bin/python scripts/hgq2_fixture.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in vars(args).items()
            if k != "out" and not (k == "model" and v == "jet")
        ),
        "seed": args.seed,
        "versions": {
            "hgq2": getattr(_hgq, "__version__", "0.2.0"),
            "keras": keras.__version__,
            "jax": jax.__version__,
            "numpy": np.__version__,
        },  # fmt: skip
        "data": "hgq/data/jsc_sample.npz, jsc_split(test_size=0.2, random_state=42) re-done in numpy",
        "test_accuracy": acc,
        "ebops": ebops,
        "kernel_zeros": f"{zeros}/{n_w}",
        "kernel_b0_pruned": f"{pruned}/{n_w}",
    }
    np.savez_compressed(
        out / f"{stem}_vectors.npz",
        x=x,
        y=y,
        y_label=y_te[: args.n_vectors].astype(np.int64),
        test_index=test_idx[: args.n_vectors].astype(np.int64),
        xq=xq,
        mean=mean,
        scale=scale,
        meta=np.array(json.dumps(meta)),
    )
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
