"""Design-space exploration: ``hgq-hil sweep STUDY.toml`` trains, lowers and reports many candidates on Ray.

A study file names the recipe, the data, a search space, a search method and the objectives::

    name = "jet-beta"
    [recipe]                      # fixed trial settings (any key of the search space may be fixed here)
    model = "dense"               # hgq-hil train --model: dense | lut
    data = "sample"
    epochs = 20
    [space]                       # what varies: a list of values (grid, random, optuna), or a range
    beta_end = [1e-5, 3e-5, 1e-4]
    hidden = [[32, 16], [64, 32, 32]]
    clock_ns = [5.0, 2.5]
    lr = {low = 1e-3, high = 1e-2, log = true}      # random / optuna only
    [search]
    method = "grid"               # grid | random | optuna (NSGA-II over the objectives)
    trials = 8                    # random / optuna: how many (grid: all combinations, at most this many)
    seed = 0
    [objectives]                  # column = "max" | "min"; the Pareto set is computed over these
    val_accuracy = "max"
    lut_estimate = "min"
    latency_ns = "min"
    [verify]
    yosys = false                 # also synthesise each design (adds yosys_lut, yosys_ff)
    sim_vectors = 0               # > 0: that many test jets through Verilator, bit-exact verdict in `bit_exact`

Each trial is :func:`run_trial`: ``boards.pipeline.train`` (a β-ramped Pareto front, chosen on validation) →
the cheapest point within ``tolerance`` of the best validation accuracy → ``lower`` for ``part`` at
``clock_ns`` → report (→ yosys, → simulation). Trials run as Ray tasks, one CPU each, as many at once as the
resources allow (:func:`sim.distributed.ray_session`: local by default, ``address`` for a cluster). Every
finished trial appends one JSON line to ``OUT/trials.jsonl`` (``pandas.read_json(path, lines=True)``) at once;
a trial's id is a hash of its parameters, so a study that is run again skips the trials already in the file
(resume). The Optuna sampler (multi-objective NSGA-II, ask-and-tell, so it needs no server and fits a batch of
Ray tasks) replays the finished trials before it asks for new ones.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["METHODS", "Study", "load_study", "pareto_rows", "plot_study", "read_trials", "run_study", "run_trial"]

METHODS = ("grid", "random", "optuna")
#: trial parameters and their defaults (the recipe and the space set them)
PARAMS: dict[str, Any] = {
    "model": "dense", "data": "sample", "epochs": 20, "batch_size": 1024, "hidden": None, "beta_start": 1e-6,
    "beta_end": 3e-5, "lr": 5e-3, "seed": 0, "tolerance": 0.01, "part": "xcvu13p-flga2577-2-e", "clock_ns": 5.0,
    "stages": None, "depth_bound": "min",
}  # fmt: skip
#: columns a trial reports, usable as objectives
METRICS = ("val_accuracy", "accuracy", "ebops", "lut_estimate", "register_bits", "latency_cycles", "latency_ns",
           "yosys_lut", "yosys_ff", "train_s", "yosys_s", "sim_s", "trial_s")  # fmt: skip


@dataclass
class Study:
    """A parsed study file."""

    name: str
    recipe: dict[str, Any]
    space: dict[str, Any]
    method: str = "grid"
    trials: int = 8
    seed: int = 0
    objectives: dict[str, str] = field(default_factory=lambda: {"val_accuracy": "max", "lut_estimate": "min"})
    yosys: bool = False
    sim_vectors: int = 0
    source: Path | None = None


def _fail(where: str, msg: str) -> ValueError:
    return ValueError(f"{where}: {msg}")


def load_study(path: str | Path) -> Study:
    """Read and check a study file (every key, type and range; errors name the key and the fix)."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"study file {str(p)!r} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{p}: not valid TOML ({err})") from None
    where = str(p)
    unknown = set(data) - {"name", "recipe", "space", "search", "objectives", "verify"}
    if unknown:
        raise _fail(where, f"unknown table(s) {sorted(unknown)}; expected name, recipe, space, search, objectives, "
                    "verify")  # fmt: skip
    recipe, space = dict(data.get("recipe", {})), dict(data.get("space", {}))
    for table, keys in (("recipe", recipe), ("space", space)):
        bad = set(keys) - set(PARAMS)
        if bad:
            raise _fail(where, f"[{table}] has unknown parameter(s) {sorted(bad)}; known: {sorted(PARAMS)}")
    for key, dom in space.items():
        if isinstance(dom, list):
            if not dom:
                raise _fail(where, f"[space] {key} is an empty list")
        elif isinstance(dom, dict):
            if set(dom) - {"low", "high", "log", "int"} or not {"low", "high"} <= set(dom):
                raise _fail(where, f"[space] {key} = {dom}: a range is {{low = .., high = .., log = bool, int = bool}}")
            if not dom["low"] < dom["high"] or (dom.get("log") and dom["low"] <= 0):
                raise _fail(where, f"[space] {key}: need low < high (and low > 0 with log)")
        else:
            raise _fail(where, f"[space] {key} = {dom!r}: give a list of values or a {{low, high}} range")
    search = dict(data.get("search", {}))
    if set(search) - {"method", "trials", "seed"}:
        raise _fail(where, f"[search] keys are method, trials, seed; got {sorted(search)}")
    method = search.get("method", "grid")
    if method not in METHODS:
        raise _fail(where, f"[search] method {method!r} is not one of {', '.join(METHODS)}")
    if method == "grid" and any(isinstance(d, dict) for d in space.values()):
        raise _fail(where, "[search] method 'grid' needs a list of values for every [space] parameter (ranges "
                    "need random or optuna)")  # fmt: skip
    trials = search.get("trials", 8)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise _fail(where, f"[search] trials must be an integer >= 1, got {trials!r}")
    objectives = dict(data.get("objectives", {"val_accuracy": "max", "lut_estimate": "min"}))
    for key, sense in objectives.items():
        if key not in METRICS or sense not in ("max", "min"):
            raise _fail(where, f"[objectives] {key} = {sense!r}: use a column of {', '.join(METRICS)} = 'max'|'min'")
    verify = dict(data.get("verify", {}))
    if set(verify) - {"yosys", "sim_vectors"}:
        raise _fail(where, f"[verify] keys are yosys and sim_vectors; got {sorted(verify)}")
    if any(k.startswith("yosys") for k in objectives) and not verify.get("yosys"):
        raise _fail(where, "objectives on yosys columns need [verify] yosys = true")
    sim_vectors = verify.get("sim_vectors", 0)
    if isinstance(sim_vectors, bool) or not isinstance(sim_vectors, int) or sim_vectors < 0:
        raise _fail(where, f"[verify] sim_vectors must be an integer >= 0, got {sim_vectors!r}")
    if "sim_s" in objectives and not sim_vectors:
        raise _fail(where, "the sim_s objective needs [verify] sim_vectors > 0")
    return Study(name=str(data.get("name", p.stem)), recipe=recipe, space=space, method=method, trials=trials,
                 seed=int(search.get("seed", 0)), objectives=objectives, yosys=bool(verify.get("yosys", False)),
                 sim_vectors=sim_vectors, source=p)  # fmt: skip


# -- trials -----------------------------------------------------------------------------------------------------
def trial_id(params: Mapping[str, Any]) -> str:
    """A stable id of a trial's full parameter set (resume key)."""
    blob = json.dumps({k: params[k] for k in sorted(params)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def full_params(study: Study, point: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults ← recipe ← the sampled point."""
    return {**PARAMS, **study.recipe, **point}


def run_trial(params: Mapping[str, Any], out_dir: str | Path, *, yosys: bool = False, sim_vectors: int = 0) -> dict:
    """Train → pick → lower → report (→ yosys, → Verilator) one candidate; returns its row (``status`` "ok", or
    "failed" with ``error``)."""
    import keras

    from boards import pipeline
    from boards.checks import load_model_file

    out = Path(out_dir)
    t0 = time.perf_counter()
    row: dict[str, Any] = {"trial": trial_id(params), **{k: params[k] for k in sorted(params)}}
    try:
        front, split = pipeline.train(params["data"], out / "train", hidden=params["hidden"], family=params["model"],
                                      epochs=int(params["epochs"]), batch_size=int(params["batch_size"]),
                                      beta=(float(params["beta_start"]), float(params["beta_end"])),
                                      lr=float(params["lr"]), seed=int(params["seed"]))  # fmt: skip
        row["train_s"] = time.perf_counter() - t0
        pick = pipeline.pick_point(front, float(params["tolerance"]))
        row["front"] = [[p["ebops"], p["val_accuracy"]] for p in sorted(front, key=lambda p: p["ebops"])]
        model = load_model_file(pick["file"])
        design = pipeline.lower(model, part=params["part"], clock_ns=float(params["clock_ns"]),
                                stages=params["stages"], name="trial", depth_bound=params["depth_bound"])  # fmt: skip
        design.write(out / "design")
        rep = pipeline.report(design, yosys=yosys)
        row.update(val_accuracy=pick["val_accuracy"], accuracy=pick["accuracy"], ebops=pick["ebops"],
                   lut_estimate=rep["lut_estimate"], register_bits=rep["register_bits"],
                   latency_cycles=rep["latency_cycles"], latency_ns=rep["latency_ns"],
                   meets_clock=rep["meets_clock"], design_dir=str(out / "design"))  # fmt: skip
        if yosys:
            row.update(yosys_lut=rep["yosys"]["luts"], yosys_ff=rep["yosys"]["ffs"], yosys_s=rep["yosys"]["seconds"])
        if sim_vectors:
            t_sim = time.perf_counter()
            kc = pipeline.check_keras(model, design, split.x_test[:sim_vectors])
            r = pipeline.verify_rtl(design, kc.x_port, ["verilator"])["verilator"]
            row.update(bit_exact=bool(r.passed and kc.mismatches == 0), sim_vectors=len(kc.x_port),
                       sim_s=time.perf_counter() - t_sim)  # fmt: skip
        row["status"] = "ok"
    except Exception as err:  # noqa: BLE001 - a failed trial is a row, not the end of the study
        row.update(status="failed", error=f"{type(err).__name__}: {err}"[:500])
    finally:
        keras.backend.clear_session()
    row["trial_s"] = time.perf_counter() - t0
    return row


# -- search -----------------------------------------------------------------------------------------------------
def grid_points(space: Mapping[str, list]) -> list[dict[str, Any]]:
    """Every combination of the listed values, in file order."""
    keys = list(space)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(space[k] for k in keys))]


def _sample(dom: Any, rng: np.random.Generator) -> Any:
    if isinstance(dom, list):
        return dom[int(rng.integers(len(dom)))]
    lo, hi = float(dom["low"]), float(dom["high"])
    v = math.exp(rng.uniform(math.log(lo), math.log(hi))) if dom.get("log") else rng.uniform(lo, hi)
    return int(round(v)) if dom.get("int") else float(v)


def random_points(space: Mapping[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` independent draws (seeded)."""
    rng = np.random.default_rng(seed)
    return [{k: _sample(d, rng) for k, d in space.items()} for _ in range(n)]


class _Optuna:
    """Optuna's multi-objective NSGA-II sampler through ask-and-tell (a list value is a categorical choice)."""

    def __init__(self, study: Study):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space, self.objectives = study.space, study.objectives
        self.study = optuna.create_study(directions=["maximize" if s == "max" else "minimize"
                                                     for s in self.objectives.values()],
                                         sampler=optuna.samplers.NSGAIISampler(seed=study.seed))  # fmt: skip
        self.dists = {k: self._dist(d) for k, d in self.space.items()}

    @staticmethod
    def _dist(dom: Any):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if isinstance(dom, list):
            return CategoricalDistribution([json.dumps(v) for v in dom])
        cls = IntDistribution if dom.get("int") else FloatDistribution
        return cls(dom["low"], dom["high"], log=bool(dom.get("log")))

    def _decode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {k: json.loads(v) if isinstance(self.space[k], list) else v for k, v in params.items()}

    def replay(self, rows: Iterable[dict]) -> None:
        """Tell the sampler about finished trials (resume)."""
        import optuna

        for r in rows:
            if r.get("status") != "ok":
                continue
            params = {k: json.dumps(r[k]) if isinstance(self.space[k], list) else r[k] for k in self.space}
            self.study.add_trial(optuna.trial.create_trial(params=params, distributions=self.dists,
                                                           values=[float(r[k]) for k in self.objectives]))  # fmt: skip

    def ask(self) -> tuple[Any, dict[str, Any]]:
        t = self.study.ask(self.dists)
        return t, self._decode(t.params)

    def tell(self, t: Any, row: Mapping[str, Any]) -> None:
        import optuna

        if row.get("status") == "ok":
            self.study.tell(t, [float(row[k]) for k in self.objectives])
        else:
            self.study.tell(t, state=optuna.trial.TrialState.FAIL)


# -- results ----------------------------------------------------------------------------------------------------
def read_trials(out_dir: str | Path) -> list[dict]:
    """The rows of ``out_dir/trials.jsonl`` (a line cut by a crash is ignored)."""
    path = Path(out_dir) / "trials.jsonl"
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def _append(out_dir: Path, row: Mapping[str, Any]) -> None:
    with (out_dir / "trials.jsonl").open("a") as fh:
        fh.write(json.dumps(row, default=str) + "\n")
        fh.flush()


def pareto_rows(rows: Sequence[dict], objectives: Mapping[str, str]) -> list[dict]:
    """The non-dominated finished rows over ``objectives`` (column → "max"/"min")."""
    ok = [r for r in rows if r.get("status") == "ok" and all(r.get(k) is not None for k in objectives)]
    sign = {k: (1.0 if s == "max" else -1.0) for k, s in objectives.items()}
    score = [[sign[k] * float(r[k]) for k in objectives] for r in ok]

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))

    return [r for r, a in zip(ok, score, strict=True) if not any(dominates(b, a) for b in score if b is not a)]


def plot_study(rows: Sequence[dict], pareto: Sequence[dict], path: str | Path, title: str = "") -> Path:
    """Left: validation accuracy vs LUTs of every trial's chosen design, latency as colour, the Pareto set
    outlined. Right: the training fronts (validation accuracy vs EBOPs) of the Pareto-set trials, each trial's
    chosen point starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    def lut(r: dict) -> float:
        return r.get("yosys_lut") or r["lut_estimate"]

    def x_scale(a: Any, xs: Sequence[float]) -> None:  # log only over a decade or more; ticks as 15k, 20k
        if xs and max(xs) >= 10 * max(min(xs), 1e-9):
            a.set_xscale("log")
        else:
            a.xaxis.set_major_locator(MaxNLocator(6))
        a.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"))

    ok = [r for r in rows if r.get("status") == "ok"]
    fig, (ax, axf) = plt.subplots(1, 2, figsize=(12.0, 4.4))
    if ok:
        sc = ax.scatter([lut(r) for r in ok], [r["val_accuracy"] for r in ok], c=[r["latency_ns"] for r in ok],
                        cmap="viridis", s=36)  # fmt: skip
        fig.colorbar(sc, ax=ax, label="latency (ns)")
        pp = sorted(pareto, key=lut)
        ax.plot([lut(r) for r in pp], [r["val_accuracy"] for r in pp], "r-", lw=1, label="Pareto set")
        x_scale(ax, [lut(r) for r in ok])
        ax.legend(loc="best")
    ax.set_xlabel("LUT (yosys where run, else estimate)")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    for r in sorted(pareto, key=lut):
        if r.get("front"):
            e, a = zip(*r["front"], strict=True)
            (line,) = axf.plot(e, a, ".-", lw=1, ms=4, label=f"{r['trial'][:6]} ({lut(r):.0f} LUT)")
            axf.plot([r["ebops"]], [r["val_accuracy"]], "*", ms=12, color=line.get_color())
    if axf.lines:
        x_scale(axf, [e for r in pareto for e, _ in r.get("front") or []])
        axf.legend(loc="lower right", fontsize=8)
    axf.set_xlabel("EBOPs (training front, ★ = chosen point)")
    axf.set_ylabel("validation accuracy")
    axf.set_title("fronts of the Pareto-set trials")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


# -- the study --------------------------------------------------------------------------------------------------
def run_study(
    study: Study,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    address: str | None = None,
    max_trials: int | None = None,
    progress: Callable[[dict, int, int], None] | None = None,
) -> dict[str, Any]:
    """Run the study's missing trials on Ray (``max_trials``: stop after that many new ones) and return
    ``{"rows", "pareto", "ran", "skipped", "plot"}``; rows land in ``out_dir/trials.jsonl`` as they finish."""
    from sim.distributed import ray_session

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = read_trials(out)
    done_ids = {r["trial"] for r in done}
    budget = max_trials if max_trials is not None else math.inf
    if study.method == "optuna":
        points = None
        sampler = _Optuna(study)
        sampler.replay(done)
        total = study.trials
    else:
        pts = grid_points(study.space) if study.method == "grid" else random_points(study.space, study.trials,
                                                                                    study.seed)  # fmt: skip
        points = [full_params(study, p) for p in pts[: study.trials]]
        total = len(points)
    todo = [p for p in points if trial_id(p) not in done_ids] if points is not None else None
    skipped = total - len(todo) if todo is not None else len(done)
    ran = 0
    with ray_session(address, workers) as ray:
        slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
        if workers is not None:
            slots = min(slots, workers)

        @ray.remote(num_cpus=1)
        def remote_trial(params: dict, trial_dir: str) -> dict:
            return run_trial(params, trial_dir, yosys=study.yosys, sim_vectors=study.sim_vectors)

        inflight: dict[Any, tuple[Any, dict]] = {}
        finished = len(done)

        def can_submit() -> bool:
            if ran + len(inflight) >= budget or len(inflight) >= slots:
                return False
            return bool(todo) if todo is not None else finished + len(inflight) < total

        while True:
            while can_submit():
                if todo is not None:
                    params, handle = todo.pop(0), None
                else:
                    handle, point = sampler.ask()
                    params = full_params(study, point)
                    if trial_id(params) in done_ids:  # the sampler proposed a finished trial again
                        sampler.tell(handle, next(r for r in done if r["trial"] == trial_id(params)))
                        finished += 1
                        continue
                ref = remote_trial.remote(params, str(out / "trials" / trial_id(params)))
                inflight[ref] = (handle, params)
            if not inflight:
                break
            ready, _ = ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                handle, params = inflight.pop(ref)
                row = ray.get(ref)
                _append(out, row)
                done.append(row)
                done_ids.add(row["trial"])
                ran += 1
                finished += 1
                if handle is not None:
                    sampler.tell(handle, row)
                if progress is not None:
                    progress(row, finished, total)
    pareto = pareto_rows(done, study.objectives)
    plot = plot_study(done, pareto, out / "study.png", title=study.name)
    (out / "pareto.json").write_text(json.dumps(pareto, indent=1, default=str))
    return {"rows": done, "pareto": pareto, "ran": ran, "skipped": skipped, "plot": str(plot)}
