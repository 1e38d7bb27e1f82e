"""Particle-level set models against the 16-feature MLP on the same jets: accuracy, latency, II and LUTs.

Every model is trained with the same recipe (Adam, β held then log-ramped) on the same training jets (the MLP on
their 16 HLF features, the set models on their ``--particles`` leading particles), selected on nothing (fixed
epochs), and scored on a test split no model saw. Each is calibrated, lowered at ``--clock`` ns for xcvu13p and
synthesised with the same yosys command as the front benchmark; the accuracy printed is the circuit's own
(``design.predict`` on the quantized test jets, equal to Keras by construction and checked here). Every design is a
pipeline with II = 1.

Data: ``--data DIR`` (a directory made by ``python -m hgq.data.generate --particles 16``); by default a set of
``--per-class`` jets per class is generated once into ``out/particles_data`` (about 2 s per 100 jets on 2
cores). ``--quick`` uses the shipped 5,000-jet sample and a few epochs (a smoke run, not a result).

    python benchmarks/bench_particles.py [--quick] [--epochs 60] [--models mlp deep_sets jedi_linear transformer]
                                         [--seeds 0 1 2] [--particles 32]

With several ``--seeds`` every model trains once per seed on the same split (``--split-seed``); the GNN-vs-MLP
line compares the mean test accuracies.
"""

# ruff: noqa: I001
from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np

import hdl_gen
from hdl_gen.resources import yosys_estimate
from hgq import models
from hgq.calibrate import trace_minmax
from hgq.callbacks import BetaScheduler
from hgq.data import load_particles, particle_split

PART = "xcvu13p-flga2577-2-e"
MODELS = ("mlp", "deep_sets", "jedi_linear", "transformer")
GNN_LATENCY_NS = 60.0  # the bar for the 16-particle GNN at 200 MHz


def build(name: str, n: int, n_feat: int, beta0: float, seed: int) -> keras.Model:
    if name == "mlp":
        return models.jet_tagger(beta0=beta0, seed=seed, name="mlp")
    if name == "deep_sets":
        return models.deep_sets(n, n_feat, phi=(32, 32), rho=(32,), beta0=beta0, seed=seed)
    if name == "jedi_linear":
        return models.jedi_linear(n, n_feat, width=32, head=(32, 16), beta0=beta0, seed=seed)
    return models.particle_transformer(n, n_feat, d_model=16, heads=2, d_head=4, ffn=32, head=(16,), beta0=beta0,
                                       seed=seed, name="transformer")  # fmt: skip


def views(s, name: str):
    """(train, test) inputs of a model: the HLF features for the MLP, ``[particles, mask]`` for the set models."""
    if name == "mlp":
        return s.x_train, s.x_test
    return ([s.p_train, s.mask_train[..., None].astype(np.float32)],
            [s.p_test, s.mask_test[..., None].astype(np.float32)])  # fmt: skip


def run(name: str, s, args, seed: int) -> dict:
    keras.utils.set_random_seed(seed)
    model = build(name, args.particles, s.p_train.shape[-1], args.beta[0], seed)
    x_train, x_test = views(s, name)
    model.compile(keras.optimizers.Adam(args.lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])  # fmt: skip
    e = args.epochs
    hold = max(e // 4, 1)
    beta = BetaScheduler([(0, args.beta[0], "constant"), (hold, args.beta[0], "constant"),
                          (max(3 * e // 4, hold + 1), args.beta[1], "log")])  # fmt: skip
    t0 = time.perf_counter()
    model.fit(x_train, s.y_train, epochs=e, batch_size=args.batch, verbose=0, callbacks=[beta])
    train_s = time.perf_counter() - t0
    ebops = trace_minmax(model, x_train, batch_size=4096)
    t0 = time.perf_counter()
    design = hdl_gen.convert(model, part=PART, clock_ns=args.clock, name=f"set_{name}")
    lower_s = time.perf_counter() - t0
    xq = hdl_gen.quantize_input(model, x_test)
    hw = design.predict(xq).reshape(len(s.y_test), -1)
    keras_out = hdl_gen.flatten_io(model.predict(x_test, batch_size=8192, verbose=0))
    if not np.array_equal(hw, keras_out):
        raise AssertionError(f"{name}: the circuit's outputs differ from Keras on the test jets")
    rep = design.report()
    row = {
        "model": name,
        "seed": seed,
        "params": int(model.count_params()),
        "accuracy": float(np.mean(np.argmax(hw, -1) == s.y_test)),
        "ebops": float(ebops),
        "latency_cycles": design.latency,
        "latency_ns": rep["latency_ns"],
        "ii": 1,
        "meets_clock": rep["meets_clock"],
        "lut_estimate": rep["lut_estimate"],
        "muls": rep["total_muls"],
        "train_s": train_s,
        "lower_s": lower_s,
    }
    if not args.no_yosys:
        y = yosys_estimate(design.verilog(), design.name, family="xcup", fast=True, nice=5)
        row.update(yosys_lut=y["luts"] + y["srls"], yosys_ff=y["ffs"], yosys_dsp=y["dsp"], yosys_s=y["seconds"])
    return row


def data_dir(args) -> str:
    if args.quick:
        return "sample"
    if args.data:
        return args.data
    out = Path("out/particles_data")
    if not (out / "jsc_generated.npz").exists():
        from hgq.data.generate import generate

        print(f"generating {args.per_class} jets per class with {args.particles} particles into {out} ...")
        generate(args.per_class, out, workers=2, seed=args.data_seed, n_particles=args.particles)
    return str(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shipped sample, 4 epochs (smoke run)")
    ap.add_argument("--data", help="directory or .npz made by hgq.data.generate --particles N")
    ap.add_argument("--per-class", type=int, default=6000, help="jets per class generated when --data is absent")
    ap.add_argument("--data-seed", type=int, default=7)
    ap.add_argument("--particles", type=int, default=16)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument(
        "--beta",
        type=float,
        nargs=2,
        default=[1e-7, 3e-6],
        help="β held for the first quarter of the epochs, then log-ramped to the second value by 3/4",
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds; each model trains once per seed")
    ap.add_argument("--split-seed", type=int, default=0, help="seed of the train/test split (the same for all models)")
    ap.add_argument("--clock", type=float, default=5.0)
    ap.add_argument("--no-yosys", action="store_true")
    ap.add_argument("--out", default="out/bench_particles")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs = min(args.epochs, 4)
    src = data_dir(args)
    s = particle_split(load_particles(src, n_particles=args.particles), seed=args.split_seed, test_size=0.2)
    print(f"data {src}: {len(s.y_train)} training jets, {len(s.y_test)} test jets (held out from training and "
          f"from every choice made here), {args.particles} particles x {s.p_train.shape[-1]} features; "
          f"{args.epochs} epochs, beta {args.beta}, seeds {args.seeds}, {args.clock} ns on {PART}")  # fmt: skip
    rows = []
    for name in args.models:
        for seed in args.seeds:
            rows.append(run(name, s, args, seed))
            r = rows[-1]
            syn = f"  yosys LUT {r['yosys_lut']} FF {r['yosys_ff']} DSP {r['yosys_dsp']}" if "yosys_lut" in r else ""
            print(f"  {name:12s} seed {seed}  acc {r['accuracy']:.4f}  latency {r['latency_cycles']} cycles = "
                  f"{r['latency_ns']:.1f} ns (II 1)  est LUT {r['lut_estimate']}{syn}  train {r['train_s']:.0f} s",
                  flush=True)  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    print(f"\n{'model':12s} {'seed':>4s} {'acc':>7s} {'cycles':>6s} {'ns':>6s} {'II':>3s} {'est LUT':>8s} "
          f"{'yosys LUT':>9s} {'FF':>7s} {'DSP':>4s} {'EBOPs':>9s} {'train s':>8s}")  # fmt: skip
    for r in rows:
        print(f"{r['model']:12s} {r['seed']:4d} {r['accuracy']:7.4f} {r['latency_cycles']:6d} {r['latency_ns']:6.1f} "
              f"{r['ii']:3d} {r['lut_estimate']:8d} {r.get('yosys_lut', '-'):>9} {r.get('yosys_ff', '-'):>7} "
              f"{r.get('yosys_dsp', '-'):>4} {r['ebops']:9.0f} {r['train_s']:8.0f}")  # fmt: skip
    acc = {n: np.array([r["accuracy"] for r in rows if r["model"] == n]) for n in args.models}
    if len(args.seeds) > 1:
        print(f"\naccuracy over seeds {args.seeds}: " + "; ".join(
            f"{n} {a.mean():.4f} (min {a.min():.4f}, max {a.max():.4f})" for n, a in acc.items()))  # fmt: skip
    if "mlp" in acc and "jedi_linear" in acc:
        g, m = acc["jedi_linear"].mean(), acc["mlp"].mean()
        print(f"\nGNN (jedi_linear, {args.particles} particles) vs 16-feature MLP on the same test jets, mean over "
              f"{len(args.seeds)} seed(s): accuracy {g:.4f} vs {m:.4f} "
              f"({'more' if g > m else 'NOT more'} accurate)")  # fmt: skip
    for g in (r for r in rows if r["model"] == "jedi_linear"):
        ok = g["latency_ns"] <= GNN_LATENCY_NS and g["meets_clock"]
        print(f"GNN seed {g['seed']}: latency {g['latency_ns']:.1f} ns at {args.clock} ns clock, II 1: "
              f"{'within' if ok else 'OVER'} {GNN_LATENCY_NS:.0f} ns ({args.particles} particles)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
