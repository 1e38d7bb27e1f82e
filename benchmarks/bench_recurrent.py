"""Recurrent jet taggers in both hardware forms: accuracy, yosys LUT/FF, latency and II, unrolled vs reused cell.

The sequence is each jet's leading ``--steps`` particles in pT order (10 features each, from the particle-level
generator); ``hgq.models.rnn_tagger`` (QSimpleRNN / QGRU / QLSTM, then a QDense head) is trained with a held then
log-ramped β, calibrated, and lowered twice at ``--clock`` ns for xcvu13p: unrolled in time (``hdl_gen.convert``,
II = 1) and with one cell reused every step (``hdl_gen.convert_recurrent``, II = steps × cell latency). Both
designs are checked against Keras on the test jets (a split no model was trained or selected on) and synthesised
with the same yosys command as the front benchmark. ``--quick`` uses the shipped 5,000-jet sample (a smoke run).

    python benchmarks/bench_recurrent.py [--quick] [--data DIR] [--kinds lstm gru rnn] [--epochs 40]
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
from hgq.calibrate import trace_minmax
from hgq.callbacks import BetaScheduler
from hgq.data import load_particles, particle_split
from hgq.models import RECURRENT, rnn_tagger

PART = "xcvu13p-flga2577-2-e"


def synth(design) -> dict:
    y = yosys_estimate(design.verilog(), design.name, family="xcup", fast=True, nice=5)
    return {"yosys_lut": y["luts"] + y["srls"], "yosys_ff": y["ffs"], "yosys_dsp": y["dsp"]}


def run(kind: str, s, args) -> list[dict]:
    keras.utils.set_random_seed(args.seed)
    model = rnn_tagger(kind, steps=args.steps, units=args.units, head=(16,), beta0=args.beta[0], seed=args.seed)
    e = args.epochs
    hold = max(e // 4, 1)
    beta = BetaScheduler([(0, args.beta[0], "constant"), (hold, args.beta[0], "constant"),
                          (max(3 * e // 4, hold + 1), args.beta[1], "log")])  # fmt: skip
    model.compile(keras.optimizers.Adam(args.lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])  # fmt: skip
    t0 = time.perf_counter()
    model.fit(s.p_train, s.y_train, epochs=e, batch_size=args.batch, verbose=0, callbacks=[beta])
    train_s = time.perf_counter() - t0
    ebops = trace_minmax(model, s.p_train, batch_size=4096)
    xq = hdl_gen.quantize_input(model, s.p_test)
    want = model.predict(s.p_test, batch_size=8192, verbose=0)
    rows = []
    for form, make in (("unrolled", hdl_gen.convert), ("reused cell", hdl_gen.convert_recurrent)):
        t0 = time.perf_counter()
        d = make(model, part=PART, clock_ns=args.clock, name=f"{kind}_{form.split()[0]}")
        lower_s = time.perf_counter() - t0
        hw = d.predict(xq)
        if not np.array_equal(hw, want):
            raise AssertionError(f"{kind} {form}: the circuit's outputs differ from Keras on the test jets")
        rep = d.report()
        row = {"kind": kind, "form": form, "accuracy": float(np.mean(np.argmax(hw, -1) == s.y_test)),
               "ebops": float(ebops), "latency_cycles": d.latency, "ii": int(getattr(d, "ii", 1)),
               "latency_ns": d.latency * args.clock, "lut_estimate": rep["lut_estimate"],
               "meets_clock": rep["meets_clock"], "train_s": train_s, "lower_s": lower_s}  # fmt: skip
        if not args.no_yosys:
            row.update(synth(d))
        rows.append(row)
        syn = f" yosys LUT {row['yosys_lut']} FF {row['yosys_ff']} DSP {row['yosys_dsp']}" if "yosys_lut" in row else ""
        print(f"  {kind:4s} {form:11s} acc {row['accuracy']:.4f} latency {row['latency_cycles']} cycles "
              f"({row['latency_ns']:.0f} ns) II {row['ii']} est LUT {row['lut_estimate']}{syn}",
              flush=True)  # fmt: skip
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shipped sample, 3 epochs (smoke run)")
    ap.add_argument("--data", default="out/particles_data", help="directory made by hgq.data.generate --particles")
    ap.add_argument("--kinds", nargs="+", default=["lstm", "gru", "rnn"], choices=list(RECURRENT))
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--units", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--beta", type=float, nargs=2, default=[1e-7, 3e-6])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clock", type=float, default=5.0)
    ap.add_argument("--no-yosys", action="store_true")
    ap.add_argument("--out", default="out/bench_recurrent")
    args = ap.parse_args(argv)
    src = "sample" if args.quick else args.data
    if args.quick:
        args.epochs = min(args.epochs, 3)
    if src != "sample" and not Path(src).exists():
        raise SystemExit(f"{src} does not exist: make it with `python benchmarks/bench_particles.py` (it "
                         "generates out/particles_data) or `python -m hgq.data.generate --particles 16 --out DIR`, "
                         "or use --quick")  # fmt: skip
    s = particle_split(load_particles(src, n_particles=args.steps), seed=args.seed)
    print(f"data {src}: {len(s.y_train)} training jets, {len(s.y_test)} held-out test jets; sequences of the "
          f"{args.steps} leading particles; {args.epochs} epochs, {args.clock} ns on {PART}")  # fmt: skip
    rows = [r for kind in args.kinds for r in run(kind, s, args)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    print(f"\n{'kind':5s} {'form':12s} {'acc':>7s} {'cycles':>6s} {'II':>4s} {'est LUT':>8s} {'yosys LUT':>9s} "
          f"{'FF':>6s} {'DSP':>4s}")  # fmt: skip
    for r in rows:
        print(f"{r['kind']:5s} {r['form']:12s} {r['accuracy']:7.4f} {r['latency_cycles']:6d} {r['ii']:4d} "
              f"{r['lut_estimate']:8d} {r.get('yosys_lut', '-'):>9} {r.get('yosys_ff', '-'):>6} "
              f"{r.get('yosys_dsp', '-'):>4}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
