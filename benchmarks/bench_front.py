"""Accuracy per real LUT, side by side: hgq-hil vs HGQ2 0.2 + da4ml 0.6 on the same jets, split, recipe and seeds.

    python benchmarks/bench_front.py [--quick] [--data sample|DIR] [--seeds 3] [--epochs 1000] [--points 10]
                                     [--resource ebops da] [--families dense lut] [--lut-epochs 600]
                                     [--lut-hidden 16 8 none] [--lut-options KEY=VALUE ...]
                                     [--abc9] [--out out/bench_front] [--da-reference RUNS_JSON]

Both tools train the 16-64-32-32-5 jet tagger with the same initial formats and HGQ2's recipe (batch 2048, Adam
3e-3, β 1e-7 held for the first 10 % of the epochs, then log-ramped to 1e-3 at the last), on one 70/10/20 split
(seed 0, scaled on the train part). Every checkpoint on the (validation accuracy, EBOPs) Pareto front is
calibrated on the train split; the points still non-dominated on (validation accuracy, exact EBOPs) are thinned
to ``--points`` spread evenly in log EBOPs, lowered (hgq-hil: ``hdl_gen.convert``; HGQ2: da4ml ``trace_model`` →
``VerilogModel``, both at the same clock and part) and synthesised with the same yosys command
(``synth_xilinx -family xcup -flatten -noiopad -noclkbuf``; classic-ABC LUT mapping unless ``--abc9``). The test
split (20 %) selects nothing: fronts are read "held out" (at each budget, the test accuracy of the point with the
best validation accuracy among those within budget; ``hgq.pareto.held_out_curve``), as mean and spread over seeds.

``--families lut`` (in the default) adds the learned-table family: hgq-hil's ``lut_tagger`` in each
``--lut-hidden`` architecture (default ``16 8 none``: ``QLUTDense(16) → QLUTDense(5)``, ``QLUTDense(8) →
QLUTDense(5)``, and one ``QLUTDense(5)`` layer, a sum of one learned function per feature that fits one clock
cycle), each trained per seed, the family's front per seed being the union of their points (at each budget the best
on validation of any); against HGQ2's ``QDenseT(16) → QDenseT(5)`` with batch norm. Both train for
``--lut-epochs`` (600, the HGQ-LUT recipe) with the same β schedule, are lowered (hdl_gen / da4ml, tables as
``case`` logic) and synthesised alike; the report
adds the LUT bars: LUT front vs HGQ2's, LUT and latency against the DA front at its knee (the union's and each
architecture's), and each LUT model's training time against the DA model's. ``--da-reference RUNS_JSON`` adds
the knee of a longer run's DA front on the same data and split (the LUT family's 100-epoch fronts against the DA
family's 1000-epoch recipe, say). ``--lut-options`` passes arguments to ``lut_tagger`` (``edge_widths=true
batch_norm=true``, say).
A finished run keeps its training (``train.json``) and its lowered points (``result.json``): rerunning with other
``--points``, ``--clock``, ``--abc9``, ``--no-pair-tables`` (hgq-hil's LUT layers lowered without merging
pairs of narrow tables, ``hdl_gen.convert(pair_tables=False)``) or ``--no-ternary`` (two-input adders only,
``hdl_gen.convert(ternary=False)``) lowers again without training again. Each of HGQ2's lowered DA points is also
lowered by hdl_gen from the same checkpoint (``hgq.hgq2.load_hgq2``): the report prints the two lowerings' LUTs
on identical weights.

``--resource ebops da`` adds a third run per seed: hgq-hil trained with the distributed-arithmetic resource term
(``resource="da"``: kernels charged by CSD digits, docs/training.md) in place of EBOPs; the report gives how well
EBOPs, the DA cost and hdl_gen's own adder-bit count predict yosys LUTs over all hgq-hil points. HGQ2 runs in
the venv named by ``HGQ2_PYTHON`` (``nox -s bench`` makes it); without it only hgq-hil runs. Larger data:
``python -m hgq.data.generate --per-class 25000 --out DIR --seed 7`` (``pip install -e '.[physics]'``, ~25 min
on 2 cores), then ``--data DIR``.
"""
# ruff: noqa: I001

from __future__ import annotations

import hgq  # noqa: F401  (first: sets KERAS_BACKEND=jax before Keras is imported)

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import keras
import numpy as np

import hdl_gen
from hdl_gen.resources import yosys_estimate
from hgq import load_model
from hgq.data import jsc_split, load_jsc
from hgq.ebops import model_da_cost
from hgq.models import jet_tagger, lut_tagger
from hgq.pareto import calibrate_front, cost_to_reach, held_out_curve, non_dominated, train_front

HERE = Path(__file__).resolve().parent
PART = "xcvu13p-flga2577-2-e"
BASELINE = {"hgq-hil": "hgq2", "hgq-hil (DA term)": "hgq2", "hgq-hil LUT": "hgq2 LUT"}  # each tool's HGQ2 anchor


def spread(points: list[dict], k: int) -> list[dict]:
    """At most ``k`` of ``points``, evenly spread in log EBOPs (cheapest and dearest always kept)."""
    pts = sorted(points, key=lambda p: p["ebops"])
    if len(pts) <= k:
        return pts
    logs = np.log(np.maximum([p["ebops"] for p in pts], 1.0))
    picks = {int(np.argmin(np.abs(logs - t))) for t in np.linspace(logs[0], logs[-1], k)}
    return [pts[j] for j in sorted(picks)]


def synth(verilog: str, top: str, abc9: bool) -> dict:
    r = yosys_estimate(verilog, top, family="xcup", fast=not abc9, nice=5)
    return {"lut": r["luts"] + r["srls"], "ff": r["ffs"], "yosys_seconds": r["seconds"]}


def cached_training(out: Path, key: dict, train) -> dict:
    """``train()``'s result, kept in ``out/train.json`` under ``key`` (the training arguments): a run resumed with
    other lowering arguments (``--points``, ``--clock``, ``--abc9``) reuses its training, checkpoints and time."""
    f = out / "train.json"
    if f.is_file() and (old := json.loads(f.read_text()))["key"] == key:
        return old["result"]
    res = train()
    out.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({"key": key, "result": res}, default=str))
    return res


def budget_grid(costs: list[float]) -> np.ndarray:
    """14 budgets spread evenly in log between the smallest and largest cost (the curves' x axis)."""
    return np.unique(np.geomspace(max(min(costs), 1), max(costs), 14).round(0))


def front_points(front: list[dict]) -> list[dict]:
    """A run's whole selected front (validation and test accuracy, exact EBOPs): its accuracy-vs-EBOPs curve needs
    no lowering, so it is read from every point, not only the ``--points`` lowered ones."""
    return [{k: p[k] for k in ("file", "val_accuracy", "accuracy", "ebops")} for p in front]


def lut_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` (VALUE as JSON, else a string) for ``--lut-options``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--lut-options takes KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def lut_hidden(text: str) -> tuple[int, ...]:
    """A ``--lut-hidden`` architecture: hidden table-layer sizes, comma-separated (``16``, ``32,16``), or ``none``
    for a single table layer (each logit a sum of one learned function per feature)."""
    if text.strip().lower() == "none":
        return ()
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--lut-hidden takes sizes like 16 or 32,16, or none; got {text!r}")
    return sizes


def arch_label(hidden: tuple[int, ...]) -> str:
    """The name of a LUT architecture in run directories and reports: ``16``, ``32-16``, ``none``."""
    return "-".join(map(str, hidden)) or "none"


def merge_archs(parts: dict[str, dict]) -> dict:
    """One seed of the LUT family: the union of its architectures' runs (label -> run), every point labelled with
    its ``arch``. Curves and costs read over the union pick, at each budget, the best point on validation of any
    architecture; training times add up, and each architecture's are kept under ``archs``."""
    runs = parts.values()
    secs = sum(r["train_seconds"] for r in runs)
    return {
        "points": [{**p, "arch": a} for a, r in parts.items() for p in r["points"]],
        "front": [{**p, "arch": a} for a, r in parts.items() for p in r["front"]],
        "front_size": sum(r["front_size"] for r in runs),
        "train_seconds": secs,
        "samples_per_s": sum(r["samples_per_s"] * r["train_seconds"] for r in runs) / secs,
        "epochs": max(r["epochs"] for r in runs),
        "archs": {a: {k: r[k] for k in ("train_seconds", "samples_per_s", "epochs")} for a, r in parts.items()},
    }


def lowering_key(args) -> dict:
    """What a finished run's lowered points depend on beyond its training."""
    key = {"points": args.points, "clock": args.clock, "abc9": args.abc9}
    if getattr(args, "no_pair_tables", False):  # only when set: earlier runs' results stay valid
        key["pair_tables"] = False
    key["ternary"] = not getattr(args, "no_ternary", False)  # always: runs lowered before ternary sums lower again
    return key


def training_key(args, seed: int, family: str, resource: str, epochs: int, model: keras.Model | None = None) -> dict:
    """What a run's training depends on: the recipe, and for hgq-hil the model itself (a digest of its config, so a
    changed recipe in :mod:`hgq.models` trains again)."""
    key = {"family": family, "resource": resource, "seed": seed, "epochs": epochs, "batch": args.batch,
           "lr": args.lr, "beta": list(args.beta)}  # fmt: skip
    if model is not None:
        cfg = json.dumps(model.get_config(), sort_keys=True, default=str)
        key["model"] = hashlib.sha256(cfg.encode()).hexdigest()[:16]
    return key


# -- hgq-hil ----------------------------------------------------------------------------------------------------
def run_ours(
    split, seed: int, args, out: Path, resource: str, family: str = "dense", hidden: tuple[int, ...] | None = None
) -> dict:
    """Train, calibrate, select on validation, lower and synthesise hgq-hil's front for one seed (``hidden``: the
    LUT family's hidden table layers, else ``lut_tagger``'s default)."""
    epochs = args.lut_epochs if family == "lut" else args.epochs

    keras.utils.set_random_seed(seed)
    if family == "lut":
        opts = dict(getattr(args, "lut_options", []))
        if hidden is not None:
            opts["hidden"] = hidden
        model = lut_tagger(beta0=args.beta[0], seed=seed, **opts)
    else:
        model = jet_tagger(beta0=args.beta[0], seed=seed, resource=resource)

    def train() -> dict:
        t0 = time.perf_counter()
        files = train_front(model, split.x_train, split.y_train, out, epochs=epochs, batch_size=args.batch,
                            beta=tuple(args.beta), beta_hold=epochs // 10, lr=args.lr,
                            validation_data=(split.x_val, split.y_val))  # fmt: skip
        return {"files": [str(f) for f in files], "seconds": time.perf_counter() - t0}

    tr = cached_training(out, training_key(args, seed, family, resource, epochs, model), train)
    files, secs = tr["files"], tr["seconds"]
    front = calibrate_front(files, split.x_train, split.x_val, split.y_val, split.x_test, split.y_test, out)
    rows = []
    for p in spread(front, args.points):
        m = load_model(p["file"])
        t1 = time.perf_counter()
        design = hdl_gen.convert(
            m,
            part=PART,
            clock_ns=args.clock,
            name="ours_" + Path(p["file"]).stem,  # hgq_hil_* names are reserved (hdl_gen.design.check_name)
            pair_tables=not getattr(args, "no_pair_tables", False),
            ternary=not getattr(args, "no_ternary", False),
        )
        verilog = design.verilog()
        lower_s = time.perf_counter() - t1
        n = min(len(split.x_test), 4096)
        y_model = np.asarray(m.predict(split.x_test[:n], batch_size=8192, verbose=0), np.float64)
        mism = int(np.sum(np.any(design.predict(hdl_gen.quantize_input(m, split.x_test[:n])) != y_model, -1)))
        rep = design.report()
        rows.append({**p, **synth(verilog, design.name, args.abc9), "ranks": design.latency,
                     "da_cost": model_da_cost(m), "adder_bits": rep["adder_bits"], "lower_seconds": lower_s,
                     "mismatches": mism, "checked": n})  # fmt: skip
    return {"samples_per_s": len(split.y_train) * epochs / secs, "train_seconds": secs, "points": rows,
            "front": front_points(front), "front_size": len(front), "epochs": epochs}  # fmt: skip


# -- HGQ2 + da4ml -----------------------------------------------------------------------------------------------
def _hgq2(py: str, *argv: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    with tempfile.TemporaryDirectory() as tmp:  # cwd without this repo's hgq on the path
        r = subprocess.run([py, str(HERE / "bench_front_hgq2.py"), *argv], cwd=tmp, env=env, capture_output=True,
                           text=True)  # fmt: skip
    if r.returncode != 0:
        tail = " | ".join(r.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"HGQ2 step {argv[0]} failed: {tail}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_hgq2(py: str, split_file: Path, seed: int, args, out: Path, family: str = "dense") -> dict:
    """The same for HGQ2 + da4ml: train and calibrate in HGQ2's venv, select here, lower there, synthesise here."""
    epochs = args.lut_epochs if family == "lut" else args.epochs
    extra = ["--model", "lut", "--bn-momentum", "0.9" if epochs < 200 else "0.99"] if family == "lut" else []
    tr = cached_training(out, training_key(args, seed, "hgq2 " + family, "ebops", epochs), lambda: _hgq2(
        py, "train", "--split", str(split_file), "--out", str(out), "--seed", str(seed), "--epochs", str(epochs),
        "--batch", str(args.batch), "--lr", str(args.lr), "--beta", *map(str, args.beta), "--hold",
        str(epochs // 10), *extra))  # fmt: skip
    whole = non_dominated(tr["points"], acc="val_accuracy")
    scored = _hgq2(py, "score", "--split", str(split_file), *[p["file"] for p in whole])["accuracy"]
    whole = [{**p, "accuracy": a} for p, a in zip(whole, scored, strict=True)]
    front = spread(whole, args.points)
    lo = _hgq2(py, "lower", "--split", str(split_file), "--out", str(out / "verilog"), "--clock", str(args.clock),
               "--part", PART, *[p["file"] for p in front])  # fmt: skip
    rows = []
    for p, d in zip(front, lo["designs"], strict=True):
        text = Path(d["verilog"]).read_text()
        rows.append({**p, **{k: v for k, v in d.items() if k != "file"}, **synth(text, d["top"], args.abc9),
                     **(same_weights(p["file"], args) if family == "dense" else {})})  # fmt: skip
    return {"samples_per_s": tr["samples_per_s"], "train_seconds": tr["train_seconds"], "points": rows,
            "front": front_points(whole), "front_size": len(whole), "epochs": epochs}  # fmt: skip


# -- report -----------------------------------------------------------------------------------------------------
def same_weights(file: str, args) -> dict:
    """HGQ2's own checkpoint lowered by hdl_gen too (``hgq.hgq2.load_hgq2``) and synthesised alike: the two
    lowerings compared on identical weights (``hdl_gen_lut`` against the row's da4ml ``lut``)."""
    from hgq.hgq2 import load_hgq2

    name = "hdl_gen_" + re.sub(r"\W", "_", Path(file).stem)  # HGQ2 names its checkpoints epoch=N.keras
    design = hdl_gen.convert(load_hgq2(file), part=PART, clock_ns=args.clock, name=name,
                             ternary=not getattr(args, "no_ternary", False))  # fmt: skip
    r = synth(design.verilog(), design.name, args.abc9)
    return {"hdl_gen_lut": r["lut"], "hdl_gen_ff": r["ff"], "hdl_gen_ranks": design.latency}


def _stats(curves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.array(curves)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN budgets: no point there yet
        ok = ~np.isnan(a).any(axis=0)  # a budget counts only where every seed has a point
        mean = np.where(ok, np.nanmean(a, axis=0), np.nan)
        return mean, np.where(ok, np.nanmin(a, axis=0), np.nan), np.where(ok, np.nanmax(a, axis=0), np.nan)


def difference(a: list[np.ndarray], b: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per budget, the mean of the curves ``a`` minus the mean of ``b``, and that difference's standard error
    (unpaired: two tools' seeds share a number, not a random stream); NaN where a seed has no point, and the
    error NaN where either side has fewer than two seeds."""
    d = _stats(a)[0] - _stats(b)[0]  # NaN where either side's mean is
    if min(len(a), len(b)) < 2:
        return d, np.full_like(d, np.nan)
    a, b = np.array(a, float), np.array(b, float)
    se = np.sqrt(a.var(axis=0, ddof=1) / len(a) + b.var(axis=0, ddof=1) / len(b))
    return d, np.where(np.isnan(d), np.nan, se)


def report(res: dict, args, out: Path, reference: dict | None = None) -> None:
    tools = [t for t in res["tools"] if res["runs"][t]]
    runs = res["runs"]
    print(f"\ndata {res['data']}: train {res['n'][0]:,} / validation {res['n'][1]:,} / test {res['n'][2]:,} jets "
          f"(split seed 0); the test split selects nothing (fronts chosen on validation, read held out)")  # fmt: skip
    lut_e = getattr(args, "lut_epochs", args.epochs)
    opts = " ".join(f"{k}={json.dumps(v)}" for k, v in getattr(args, "lut_options", []))
    archs = " and ".join(f"hidden={arch_label(tuple(h))}" for h in getattr(args, "lut_hidden", [(16,)]))
    lut_e = f"{lut_e}, lut_tagger {archs}{' ' + opts if opts else ''}"
    print(f"recipe: {args.epochs} epochs (LUT models {lut_e}), batch {args.batch}, Adam {args.lr}, β {args.beta[0]:g} "
          f"for the first 10 % of the epochs then log to {args.beta[1]:g}; seeds {args.seeds}; {PART} at "
          f"{args.clock} ns; yosys synth_xilinx -family xcup ({'ABC9' if args.abc9 else 'classic ABC'})")  # fmt: skip
    print("\ntraining (fit wall time incl. validation and callbacks; mean over seeds):")
    sps = {t: float(np.mean([r["samples_per_s"] for r in runs[t]])) for t in tools}
    secs = {t: float(np.mean([r["train_seconds"] for r in runs[t]])) for t in tools}
    for t in tools:
        b = BASELINE.get(t)
        ratio = f"  {sps[t] / sps[b]:.2f}x {b}" if b in sps else ""
        print(f"  {t:<18}{sps[t]:>12,.0f} samples/s  {secs[t]:>8,.0f} s{ratio}")
    for cost, label in (("ebops", "EBOPs"), ("lut", "yosys LUT")):
        pts = {t: [r.get("front", r["points"]) if cost == "ebops" else r["points"] for r in runs[t]] for t in tools}
        allc = [p[cost] for t in tools for ps in pts[t] for p in ps]
        grid = budget_grid(allc)
        whole = "every point of each selected front" if cost == "ebops" else "the lowered points"
        print(f"\ntest accuracy vs {label} (held out, {whole}; mean [min, max] over seeds; '-' where a seed has no "
              "point):")  # fmt: skip
        print(f"{label:>10}" + "".join(f"{t:>26}" for t in tools))
        curves = {t: [held_out_curve(ps, cost, grid) for ps in pts[t]] for t in tools}
        stats = {t: _stats(curves[t]) for t in tools}
        for j, c in enumerate(grid):
            cells = []
            for t in tools:
                m, lo, hi = (s[j] for s in stats[t])
                cells.append(f"{m:.4f} [{lo:.4f},{hi:.4f}]" if not np.isnan(m) else "-")
            print(f"{c:>10,.0f}" + "".join(f"{x:>26}" for x in cells))
        res[f"curve_{cost}"] = {"grid": grid.tolist(), **{t: [s.tolist() for s in stats[t]] for t in tools}}
        if cost == "ebops":
            for t in tools:
                b = BASELINE.get(t)
                if b in tools and "LUT" not in t:  # a LUT layer's EBOPs is its LUT6 estimate, not HGQ2's QDenseT's
                    d, se = difference(curves[t], curves[b])
                    if np.any(~np.isnan(d)):
                        w = int(np.nanargmin(d))
                        err = "" if np.isnan(se[w]) else f" ± {se[w]:.4f} (one standard error)"
                        print(f"  {t} − {b} mean accuracy at equal EBOPs: worst {d[w]:+.4f}{err} at {grid[w]:,.0f}, "
                              f"best {np.nanmax(d):+.4f} over the budgets both reach")  # fmt: skip
                        if not np.all(np.isnan(se)):
                            behind = [f"{c:,.0f} ({x:+.4f} ± {e:.4f})" for c, x, e in zip(grid, d, se, strict=True)
                                      if x < -2 * e]  # fmt: skip
                            print(f"    behind by more than two standard errors at: {', '.join(behind) or 'none'}")
                        res.setdefault("ebops_difference", {})[t] = {"baseline": b, "difference": d.tolist(),
                                                                     "standard_error": se.tolist()}  # fmt: skip
    # LUTs and latency needed for an accuracy, mean over seeds
    accs = [p["accuracy"] for t in tools for r in runs[t] for p in r["points"]]
    top = max(accs)  # the useful range: the last 5 points of accuracy below the best any tool reached
    targets = np.round(np.arange(np.floor((top - 0.05) * 400) / 400, top, 0.0025), 4)
    print("\nyosys LUT (and register ranks) to reach a test accuracy, mean over seeds (all seeds must reach it):")
    pairs = [(t, BASELINE[t]) for t in tools if BASELINE.get(t) in tools]
    views = {t: runs[t] for t in tools}  # and each LUT architecture alone, where the family has several
    if "hgq-hil LUT" in tools:
        views.update({f"LUT hidden={a}": rs for a, rs in arch_views(runs["hgq-hil LUT"]).items()})
    print(f"{'accuracy':>9}" + "".join(f"{t:>22}" for t in views) + "".join(f"{t + '/' + b:>26}" for t, b in pairs))
    res["lut_to_reach"] = {}
    for a in targets:
        need = {}
        for t, rs in views.items():
            vals = [cost_to_reach(r["points"], "lut", a) for r in rs]
            if all(v is not None for v in vals):
                ranks = [min(p["ranks"] for p in r["points"] if p["lut"] == v)
                         for r, v in zip(rs, vals, strict=True)]  # fmt: skip
                need[t] = (float(np.mean(vals)), float(np.mean(ranks)))
        if not need:
            continue
        res["lut_to_reach"][str(a)] = need
        cells = [f"{need[t][0]:,.0f} ({need[t][1]:.1f})" if t in need else "-" for t in views]
        ratios = [f"{need[t][0] / need[b][0]:.2f}" if t in need and b in need else "-" for t, b in pairs]
        print(f"{a:>9.4f}" + "".join(f"{c:>22}" for c in cells) + "".join(f"{r:>26}" for r in ratios))
    lut_bars(res, tools, runs, reference)
    ours = [p for t in tools if not t.startswith("hgq2") for r in runs[t] for p in r["points"]
            if p["lut"] > 0 and p["ebops"] > 0 and p["da_cost"] > 0 and p["adder_bits"] > 0]  # fmt: skip
    if len(ours) >= 3:
        lut = np.log([p["lut"] for p in ours])
        print(f"\nhow well each estimate predicts yosys LUT over {len(ours)} non-empty hgq-hil circuits (log-log "
              "Pearson r; spread of LUT/estimate as std/mean):")  # fmt: skip
        res["predictors"] = {}
        estimates = (("ebops", "EBOPs"), ("da_cost", "DA cost (resource='da')"), ("adder_bits", "hdl_gen adder bits"))
        for key, label in estimates:
            v = np.array([p[key] for p in ours], dtype=float)
            r = float(np.corrcoef(np.log(v), lut)[0, 1])
            ratio = np.exp(lut) / v
            cv = float(np.std(ratio) / np.mean(ratio))
            res["predictors"][key] = {"r": r, "cv": cv, "lut_per_unit": float(np.mean(ratio))}
            print(f"  {label:<26} r = {r:.4f}   LUT/estimate {np.mean(ratio):.3f} ± {cv:.1%}")
    same = [p for r in runs.get("hgq2", []) for p in r["points"] if p.get("hdl_gen_lut") and p["lut"] > 0]
    if same:
        ratio = np.array([p["hdl_gen_lut"] / p["lut"] for p in same])
        big = np.array([p["lut"] >= 5000 for p in same])
        gm = np.exp(np.mean(np.log(ratio)))
        gm_big = f", at >= 5,000 da4ml LUT {np.exp(np.mean(np.log(ratio[big]))):.3f}" if big.any() else ""
        ranks = ", ".join(f"{p['hdl_gen_ranks']}/{p['ranks']}" for p in same)
        print(f"\nthe two lowerings on identical weights (HGQ2's {len(same)} lowered DA checkpoints, hdl_gen via "
              f"load_hgq2, same yosys): hdl_gen / da4ml LUT geometric mean {gm:.3f} [{ratio.min():.3f}, "
              f"{ratio.max():.3f}]{gm_big}; register ranks hdl_gen/da4ml {ranks}")  # fmt: skip
        res["same_weights"] = [{k: p.get(k) for k in ("ebops", "accuracy", "lut", "hdl_gen_lut", "ff", "hdl_gen_ff",
                                                       "hdl_gen_ranks")} for p in same]  # fmt: skip
    print("\nbit-exactness of each lowering (its own interpreter vs its Keras model on test jets): " + ", ".join(
        f"{t} {sum(p['mismatches'] for r in runs[t] for p in r['points'])} mismatches / "
        f"{sum(p['checked'] for r in runs[t] for p in r['points'])} samples" for t in tools))  # fmt: skip
    plot(res, tools, out / "front.png")
    (out / "front.json").write_text(json.dumps(res, indent=1, default=float))
    print(f"\nplot: {out / 'front.png'}; all points: {out / 'front.json'}")


def knee(points: list[tuple[float, float]]) -> tuple[float, float]:
    """The knee of an accuracy-vs-LUT front: the point farthest above the chord from its cheapest to its most
    accurate point, in (log LUT, accuracy) scaled to the unit square (Kneedle)."""
    pts = sorted(points)
    x = np.log([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    top = int(np.argmax(y))
    x, y = x[: top + 1], y[: top + 1]
    if len(x) < 3 or x[-1] == x[0] or y[-1] == y[0]:
        return pts[top]
    xs, ys = (x - x[0]) / (x[-1] - x[0]), (y - y[0]) / (y[-1] - y[0])
    return pts[int(np.argmax(ys - xs))]


def da_reference(path: str | None, res: dict) -> dict | None:
    """The ``--da-reference`` run (its runs and a label), checked to be on this run's data and split."""
    if path is None:
        return None
    ref = json.loads(Path(path).read_text())
    if (ref["data"], ref["n"]) != (res["data"], res["n"]):
        raise SystemExit(f"--da-reference {path}: data {ref['data']} {ref['n']} is not this run's {res['data']} "
                         f"{res['n']}; give a run on the same --data (the split is always seed 0)")  # fmt: skip
    if not ref["runs"].get("hgq-hil"):
        raise SystemExit(f"--da-reference {path}: no hgq-hil DA (resource ebops) runs in it")
    a = ref["args"]
    return {
        "runs": ref["runs"],
        "path": path,
        "label": f"the reference DA front's knee ({a['seeds']} seeds x {a['epochs']} epochs, {path})",
    }


def knee_bar(da_runs: list[dict], lut_runs: list[dict], label: str) -> dict:
    """yosys LUT and register ranks of the DA and the LUT fronts at the knee of the DA front's mean held-out
    accuracy-vs-LUT curve (mean over seeds; every seed must reach the knee's accuracy)."""
    grid = budget_grid([p["lut"] for r in da_runs for p in r["points"]])
    mean = _stats([held_out_curve(r["points"], "lut", grid) for r in da_runs])[0]
    ok = ~np.isnan(mean)
    if ok.sum() < 3:
        print(f"\nat {label}: fewer than 3 points on the DA curve")
        return {}
    lut_k, acc_k = knee(list(zip(grid[ok], mean[ok], strict=True)))
    need = {}
    for t, rs in (("hgq-hil", da_runs), ("hgq-hil LUT", lut_runs)):
        vals = [cost_to_reach(r["points"], "lut", acc_k) for r in rs]
        if all(v is not None for v in vals):
            ranks = [min(p["ranks"] for p in r["points"] if p["lut"] == v) for r, v in zip(rs, vals, strict=True)]
            need[t] = (float(np.mean(vals)), float(np.mean(ranks)))
    line = f"\nat {label} (test accuracy {acc_k:.4f}, ~{lut_k:,.0f} LUT budget): "
    if len(need) == 2:
        (ld, rd), (ll, rl) = need["hgq-hil"], need["hgq-hil LUT"]
        line += (f"DA {ld:,.0f} LUT / {rd:.1f} cycles, LUT layers {ll:,.0f} LUT / {rl:.1f} cycles: "
                 f"{ll / ld:.2f}x the LUTs, {rl / rd:.2f}x the latency")  # fmt: skip
    else:
        line += "not reached by every seed of both fronts"
    print(line)
    return {"accuracy": acc_k, "lut_budget": float(lut_k), **need}


def lut_bars(res: dict, tools: list[str], runs: dict, reference: dict | None = None) -> None:
    """The learned-table family's figures: vs HGQ2's QDenseT front, vs the DA front at its knee (this run's and,
    with ``reference``, a longer run's on the same data and split), training time."""
    if "hgq-hil LUT" not in tools:
        return
    ours = runs["hgq-hil LUT"]
    out = res["lut_bars"] = {}
    if "hgq2 LUT" in tools:
        best = {t: float(np.mean([max(p["accuracy"] for p in r["points"]) for r in runs[t]])) for t in
                ("hgq-hil LUT", "hgq2 LUT")}  # fmt: skip
        ratios = [v["hgq-hil LUT"][0] / v["hgq2 LUT"][0] for v in res["lut_to_reach"].values()
                  if "hgq-hil LUT" in v and "hgq2 LUT" in v]  # fmt: skip
        out["vs_hgq2_lut"] = {"best_accuracy": best, "lut_ratios": ratios}
        print(
            "\nLUT front vs HGQ2 QDenseT (yosys LUT to reach each accuracy both reach, mean over seeds): "
            + (f"ratio {min(ratios):.2f}-{max(ratios):.2f} over {len(ratios)} accuracies" if ratios else "none")
            + f"; best test accuracy (mean of seeds' best) {best['hgq-hil LUT']:.4f} vs {best['hgq2 LUT']:.4f}"
        )
    families = [("union", "", ours)]  # the family's front, and each architecture's alone
    families += [(a, f" (hidden={a} alone)", rs) for a, rs in arch_views(ours).items()]
    knees = [("da_knee_reference", reference["runs"]["hgq-hil"], reference["label"])] if reference else []
    if "hgq-hil" in tools:
        knees.append(("da_knee", runs["hgq-hil"], "the DA front's knee"))
    for key, da, label in knees:
        out[key] = {name: knee_bar(da, rs, label + suffix) for name, suffix, rs in families}
    # the DA model's training time: this run's, else the reference run's (measured at another time: say so)
    da_runs, da_from = None, ""
    if "hgq-hil" in tools:
        da_runs = runs["hgq-hil"]
    elif reference:
        da_runs, da_from = reference["runs"]["hgq-hil"], f", reference run {reference['path']}"
    if da_runs:
        t_da = float(np.mean([r["train_seconds"] for r in da_runs]))
        e_da = da_runs[0].get("epochs", 0)
        per_model = {a: [r["archs"][a] for r in ours] for a in ours[0].get("archs", {})} or {"": ours}
        out["train_time_ratio"] = {}
        for a, rs in per_model.items():
            t_lut, e_lut = float(np.mean([r["train_seconds"] for r in rs])), rs[0].get("epochs", 0)
            out["train_time_ratio"][a or "lut"] = t_lut / t_da
            print(
                f"training time, whole recipe: LUT model{' hidden=' + a if a else ''} {t_lut:,.0f} s ({e_lut} epochs) "
                f"vs DA model {t_da:,.0f} s ({e_da} epochs{da_from}): {t_lut / t_da:.2f}x; per epoch "
                f"{t_lut / max(e_lut, 1) / (t_da / max(e_da, 1)):.2f}x"
            )


def arch_views(runs: list[dict]) -> dict[str, list[dict]]:
    """The LUT family's runs cut down to each architecture's points (label -> runs); empty for one architecture."""
    archs = list(runs[0].get("archs", {}))
    if len(archs) < 2:
        return {}
    return {a: [{**r, "points": [p for p in r["points"] if p.get("arch") == a]} for r in runs] for a in archs}


def plot(res: dict, tools: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"hgq-hil": "tab:blue", "hgq-hil (DA term)": "tab:green", "hgq2": "tab:red", "hgq-hil LUT": "tab:purple",
              "hgq2 LUT": "tab:orange"}  # fmt: skip
    for ax, cost, label in zip(axes, ("ebops", "lut"), ("EBOPs", "yosys LUT (xcup)"), strict=True):
        cur = res[f"curve_{cost}"]
        for t in tools:
            m, lo, hi = (np.array(v, dtype=float) for v in cur[t])
            ax.plot(cur["grid"], m, "-", color=colors.get(t), label=f"{t} (mean)")
            ax.fill_between(cur["grid"], lo, hi, color=colors.get(t), alpha=0.2)
            for r in res["runs"][t]:
                ax.plot([p[cost] for p in r["points"]], [p["accuracy"] for p in r["points"]], ".", color=colors.get(t))
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (held out)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"jet tagger fronts on {res['data']}, {len(res['runs'][tools[0]])} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 seed, 40 epochs, 3 points per front (a smoke run)")
    ap.add_argument("--data", default="sample", help="'sample' or a directory/npz made by hgq.data.generate")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--beta", type=float, nargs=2, default=[1e-7, 1e-3])
    ap.add_argument("--points", type=int, default=10, help="front points lowered and synthesised per run")
    ap.add_argument("--clock", type=float, default=5.0)
    ap.add_argument("--resource", nargs="+", default=["ebops", "da"], choices=["ebops", "da"],
                    help="hgq-hil resource terms to run (da: distributed-arithmetic cost)")  # fmt: skip
    ap.add_argument("--families", nargs="+", default=["dense", "lut"], choices=["dense", "lut"],
                    help="model families: the DA MLP (dense) and the learned-table network (lut)")  # fmt: skip
    ap.add_argument("--lut-epochs", type=int, default=600, help="epochs of the LUT family (HGQ-LUT's recipe)")
    ap.add_argument("--lut-options", nargs="+", default=[], metavar="KEY=VALUE", type=lut_option,
                    help="lut_tagger arguments for the LUT family, VALUE as JSON (e.g. edge_widths=true "
                         "table_bits=[7,7])")  # fmt: skip
    ap.add_argument("--lut-hidden", nargs="+", type=lut_hidden, default=[(16,), (8,), ()], metavar="SIZES",
                    help="the LUT family's architectures, each its hidden table layers (16; 32,16) or none (one "
                         "table layer); every one is trained per seed and the family's front is their union "
                         "(default: 16 8 none)")  # fmt: skip
    ap.add_argument("--no-hgq2", action="store_true", help="skip the HGQ2 baseline")
    ap.add_argument("--abc9", action="store_true", help="yosys ABC9 LUT mapping (slow) instead of classic ABC")
    ap.add_argument(
        "--no-pair-tables",
        action="store_true",
        help="lower hgq-hil's LUT layers without merging pairs of narrow tables (pair_tables=False)",
    )
    ap.add_argument(
        "--no-ternary",
        action="store_true",
        help="lower with two-input adders only (hdl_gen.convert(ternary=False)): no LUT6_2/CARRY8 sums",
    )
    ap.add_argument("--out", default="out/bench_front")
    ap.add_argument("--report", metavar="RUNS_JSON", help="only print the report of an earlier run's runs.json")
    ap.add_argument("--da-reference", metavar="RUNS_JSON",
                    help="an earlier run's runs.json on the same data and split whose hgq-hil DA front (e.g. of "
                         "the 1000-epoch recipe) gives the LUT family a second knee to meet")  # fmt: skip
    args = ap.parse_args(argv)
    if any(k == "hidden" for k, _ in args.lut_options):
        ap.error("give the LUT family's architectures with --lut-hidden (e.g. --lut-hidden 16 none), not "
                 "--lut-options hidden=...")  # fmt: skip
    if args.report:
        res = json.loads(Path(args.report).read_text())
        report(res, argparse.Namespace(**res["args"]), Path(args.report).parent, da_reference(args.da_reference, res))
        return 0
    if args.quick:
        args.seeds, args.epochs, args.points, args.lut_epochs = 1, 40, 3, 40
    args.hold = args.epochs // 10
    out = Path(args.out).resolve()  # absolute: the HGQ2 steps run in a directory of their own
    out.mkdir(parents=True, exist_ok=True)
    data = load_jsc(args.data)
    split = jsc_split(data, test_size=0.2, val_size=0.1, random_state=0)
    split_file = out / "split.npz"
    np.savez(split_file, x_train=split.x_train, y_train=split.y_train, x_val=split.x_val, y_val=split.y_val,
             x_test=split.x_test, y_test=split.y_test)  # fmt: skip
    py = None if args.no_hgq2 else os.environ.get("HGQ2_PYTHON")
    if py and os.sep in py:
        py = os.path.abspath(py)  # the HGQ2 steps run from a directory of their own
    names = {"ebops": "hgq-hil", "da": "hgq-hil (DA term)"}
    dense, lut = "dense" in args.families, "lut" in args.families
    tools = ([names[r] for r in args.resource] if dense else []) + (["hgq-hil LUT"] if lut else [])
    tools += [t for t, on in (("hgq2", dense), ("hgq2 LUT", lut)) if on and py]
    res = {"data": split.name, "n": [len(split.y_train), len(split.y_val), len(split.y_test)], "tools": tools,
           "runs": {t: [] for t in tools}, "args": vars(args)}  # fmt: skip
    jobs = []
    for s in range(args.seeds):
        if dense:
            jobs += [(names[r], f"{r}_seed{s}", lambda d, s=s, r=r: run_ours(split, s, args, d, r))
                     for r in args.resource]  # fmt: skip
        if lut:
            jobs += [("hgq-hil LUT", f"lut-{arch_label(h)}_seed{s}",
                      lambda d, s=s, h=h: run_ours(split, s, args, d, "ebops", "lut", h))
                     for h in args.lut_hidden]  # fmt: skip
        if py and dense:
            jobs.append(("hgq2", f"hgq2_seed{s}", lambda d, s=s: run_hgq2(py, split_file, s, args, d)))
        if py and lut:
            jobs.append(("hgq2 LUT", f"hgq2lut_seed{s}", lambda d, s=s: run_hgq2(py, split_file, s, args, d, "lut")))
    lut_parts: dict[str, dict[str, dict]] = {}  # seed -> architecture -> run
    for tool, name, job in sorted(jobs, key=lambda j: j[1].rsplit("seed", 1)[1]):  # seed by seed
        done = out / name / "result.json"  # a finished run is kept: an interrupted benchmark resumes
        if not done.is_file() or json.loads(done.read_text()).get("lowering") != lowering_key(args):
            t0 = time.perf_counter()
            done.parent.mkdir(parents=True, exist_ok=True)
            done.write_text(json.dumps({**job(out / name), "lowering": lowering_key(args)}, default=float))
            print(f"[{name}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)
        if tool == "hgq-hil LUT":
            arch, seed = name[len("lut-") :].rsplit("_seed", 1)
            lut_parts.setdefault(seed, {})[arch] = json.loads(done.read_text())
        else:
            res["runs"][tool].append(json.loads(done.read_text()))
    if lut:
        res["runs"]["hgq-hil LUT"] = [merge_archs(parts) for parts in lut_parts.values()]
    (out / "runs.json").write_text(json.dumps(res, indent=1, default=float))
    if not py:
        print("HGQ2 baseline not run (set HGQ2_PYTHON to a venv python with hgq2==0.2.0, da4ml==0.6.0 and jax)")
    report(res, args, out, da_reference(args.da_reference, res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
