"""Sharded verification: one large vector set split into contiguous shards, each verified by ``sim.verify`` in a
Ray task, the verdicts merged into one :class:`~sim.api.VerifyResult`.

The driver loads the design directory, builds the simulator once (every build the shards need: a bulk harness's
memory depth follows the shard size), then submits the shards to at most ``workers`` single-threaded Ray workers
(:func:`sim.distributed.ray_session`: a local instance, or a cluster at ``address``). Each task loads the same
directory with :func:`sim.api.load_design_dir` and finds the build in the cache (``$HGQ_HIL_SIM_CACHE`` of the
driver). Merge rules (:func:`merge_results`): counts are summed; the observed latency must agree across shards;
``first_mismatch`` is the lowest-index failing shard's, its ``sample`` shifted to the global index;
``vectors_per_s`` is all vectors over the wall time of the sharded run. See docs/sim_sharding.md.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim import api
from sim.cache import cache_root
from sim.harness import bulk_depth
from sim.runners import check_simulator
from sim.scoreboard import ERROR_KINDS

__all__ = [
    "BALANCE_MIN_VECTORS",
    "ShardedResult",
    "cli_simulate_sharded",
    "default_shards",
    "merge_results",
    "split_shards",
    "verify_sharded",
]

CACHE_ENV = "HGQ_HIL_SIM_CACHE"
#: vectors every shard must get before the default splits finer than one shard per worker: each shard pays one
#: simulator start (~0.25 s of cocotb + Verilator start-up, the run time of about 200k bulk vectors) and the
#: conversion of its vectors (~0.9 s per million)
BALANCE_MIN_VECTORS = 1_000_000


@dataclass
class ShardedResult(api.VerifyResult):
    """A :class:`~sim.api.VerifyResult` merged over shards (every field means what it means there, summed or
    checked across shards), plus: ``workers`` (most shards run at once), ``wall_s`` (first submission to last
    result; ``vectors_per_s = n_vectors / wall_s``), ``startup_s`` (Ray start-up or connection and the driver's
    build), ``shards`` (one dict per shard: ``index``, ``start``, ``stop``, ``passed``, ``problems``,
    ``vectors_per_s``, ``sim_s``, ``run_dir``, ``waves``, ``build_reused``, ``node``, ``task_s``) and ``merge_problems``
    (disagreements between shards, part of :meth:`problems`). ``sim_s``, ``load_s`` and ``write_s`` are summed
    over shards (worker seconds); ``run_vectors_per_s`` is one simulator's rate without the loading (vectors over
    the summed run times); ``build_s``/``build_reused`` are the driver's build."""

    workers: int = 0
    wall_s: float = 0.0
    startup_s: float = 0.0
    shards: list[dict] = field(default_factory=list)
    merge_problems: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [*super().problems(), *self.merge_problems]

    def headline(self) -> str:
        first, *rest = super().headline().split("\n")
        first += f" ({len(self.shards)} shards, {self.workers} workers)"
        return "\n".join([first, *rest])


def split_shards(n: int, shards: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: ``min(shards, n)`` contiguous, non-empty ranges covering ``0..n``, sizes differing
    by at most one (the larger first)."""
    if n < 1:
        raise ValueError(f"nothing to shard: {n} vectors")
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    k = min(shards, n)
    q, r = divmod(n, k)
    out, a = [], 0
    for i in range(k):
        b = a + q + (i < r)
        out.append((a, b))
        a = b
    return out


def default_shards(n: int, workers: int) -> int:
    """Shards for ``n`` vectors on ``workers`` workers: ``2 * workers`` (a slow worker then delays the end by half
    a shard) when each would still hold :data:`BALANCE_MIN_VECTORS`, else one per worker (every shard costs a
    simulator start-up: at 1M bulk vectors on 2 workers, 4 shards took 3.0 s and 2 shards 2.3 s)."""
    return 2 * workers if n >= 2 * workers * BALANCE_MIN_VECTORS else workers


def merge_results(
    results: list[api.VerifyResult],
    ranges: list[tuple[int, int]],
    *,
    wall_s: float,
    workers: int,
    n_vectors: int | None = None,
) -> ShardedResult:
    """One :class:`ShardedResult` from the shards' results (in shard order, ``ranges`` their ``(start, stop)``).

    Counts (``n_vectors``, ``compared``, ``mismatches``, ``valid_errors``, ``errors`` per kind, ``tb_failed``) are
    summed; ``latency_observed`` must be the same in every shard (else a merge problem, and the first value that
    differs from the expected latency is reported); ``first_mismatch`` is that of the lowest-index shard that has
    one, with ``sample`` shifted by the shard's start and ``shard``/``shard_start`` added (``cycle``, in stream
    mode, stays the shard's own); ``run_dir``/``waves`` are that shard's (else the first failing shard's).
    ``passed``: every shard passed and the merged counts are consistent (``n_vectors`` vectors in all, bulk mode
    comparing each once)."""
    if not results or len(results) != len(ranges):
        raise ValueError(f"{len(results)} results for {len(ranges)} shards")
    r0 = results[0]
    total = sum(r.n_vectors for r in results)
    problems = []
    if n_vectors is not None and total != n_vectors:
        problems.append(f"shards ran {total} vectors of {n_vectors}")
    for i, (r, (a, b)) in enumerate(zip(results, ranges, strict=True)):
        if r.n_vectors != b - a:
            problems.append(f"shard {i} ran {r.n_vectors} vectors, not {b - a} (samples {a}..{b - 1})")
    compared = sum(r.compared for r in results)
    if r0.mode == "bulk" and compared != total:
        problems.append(f"{compared} outputs compared for {total} vectors")
    lats = [r.latency_observed for r in results]
    lat = lats[0]
    if len(set(lats)) > 1:
        shown = ", ".join(f"shard {i}: {v}" for i, v in enumerate(lats) if v != r0.latency_expected)
        problems.append(f"latency differs across shards ({shown}; expected {r0.latency_expected})")
        lat = next(v for v in lats if v != r0.latency_expected)
    failing = [i for i, r in enumerate(results) if not r.passed]
    if failing:
        a, b = ranges[failing[0]]
        problems.append(f"{len(failing)} of {len(results)} shards failed (first: shard {failing[0]}, {a}..{b - 1})")
    kept = [i for i, r in enumerate(results) if r.run_dir is not None]
    first, src = None, (failing or kept or [None])[0]
    for i, r in enumerate(results):
        if r.first_mismatch is not None:
            first, src = dict(r.first_mismatch), i
            if isinstance(first.get("sample"), int):
                first["sample"] += ranges[i][0]
            first.update(shard=i, shard_start=ranges[i][0])
            break
    run_s = sum(r.n_vectors / r.run_vectors_per_s for r in results if r.run_vectors_per_s > 0)
    out = ShardedResult(
        simulator=r0.simulator,
        mode=r0.mode,
        n_vectors=total,
        mismatches=sum(r.mismatches for r in results),
        first_mismatch=first,
        latency_expected=r0.latency_expected,
        latency_observed=lat,
        vectors_per_s=total / max(wall_s, 1e-9),
        build_s=0.0,
        passed=False,
        valid_errors=sum(r.valid_errors for r in results),
        compared=compared,
        sim_s=sum(r.sim_s for r in results),
        build_reused=all(r.build_reused for r in results),
        waves=None if src is None else results[src].waves,
        run_dir=None if src is None else results[src].run_dir,
        run_vectors_per_s=total / run_s if run_s > 0 else 0.0,
        load_s=sum(r.load_s for r in results),
        write_s=sum(r.write_s for r in results),
        bulk_clock=r0.bulk_clock,
        errors={k: sum(r.errors.get(k, 0) for r in results) for k in ERROR_KINDS},
        tb_failed=sum(r.tb_failed for r in results),
        workers=workers,
        wall_s=wall_s,
        shards=[
            {
                "index": i,
                "start": a,
                "stop": b,
                "passed": r.passed,
                "problems": r.problems(),
                "vectors_per_s": r.vectors_per_s,
                "sim_s": r.sim_s,
                "run_dir": r.run_dir,
                "waves": r.waves,
                "build_reused": r.build_reused,
            }
            for i, (r, (a, b)) in enumerate(zip(results, ranges, strict=True))
        ],
        merge_problems=problems,
    )
    out.passed = not failing and not out.problems()
    return out


# ---------------------------------------------------------------- worker side

_DESIGNS: dict[tuple, Any] = {}  # per worker process: loaded design directories


def _load(design_dir: str, predict: bool) -> Any:
    """The design of ``design_dir`` via :func:`sim.api.load_design_dir` (with ``predict`` only when asked), kept
    per process while its manifest is unchanged."""
    d = Path(design_dir)
    if not d.is_dir():
        raise FileNotFoundError(
            f"design directory {design_dir} not found on {socket.gethostname()}: every node of the cluster needs "
            "it at the same path (a shared filesystem)"
        )
    st = (d / "manifest.json").stat() if (d / "manifest.json").exists() else None
    key = (str(d), None if st is None else (st.st_mtime_ns, st.st_size), predict)
    if key not in _DESIGNS:
        _DESIGNS.clear()
        _DESIGNS[key] = api.load_design_dir(d, predict=predict)
    return _DESIGNS[key]


def _run_shard(
    design_dir: str, x: np.ndarray, expected: np.ndarray | None, simulator: str, mode: str, cache_dir: str, opts: dict
) -> tuple[api.VerifyResult, str, float]:
    """One shard in a Ray worker: ``sim.verify`` on the loaded design directory with the driver's build cache;
    returns the result, the node's host name and the task's seconds."""
    t0 = time.perf_counter()
    saved = os.environ.get(CACHE_ENV)
    try:
        try:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            os.environ[CACHE_ENV] = cache_dir
        except OSError:  # a node without the driver's path: its own cache (it builds there once)
            pass
        r = api.verify(_load(design_dir, expected is None), x, simulator, mode, expected=expected, **opts)
    finally:
        if saved is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = saved
    return r, socket.gethostname(), time.perf_counter() - t0


# ---------------------------------------------------------------- driver


def _prebuild(
    design: Any, simulator: str, mode: str, sizes: list[int], bulk_clock: str, trace: bool
) -> tuple[float, bool]:
    """Build what the shards will look up (the same calls as ``sim.verify``): ``(build_s, all_reused)``."""
    if mode == "stream":
        b = api.stream_build(design, design.layout, simulator, trace=trace)
        return b.build_s, b.reused
    clock = "hdl" if bulk_clock == "auto" else bulk_clock
    per_depth = {bulk_depth(s): s for s in sizes}  # the harness memory depth keys the build
    builds = [api.bulk_build(design, design.layout, simulator, n, clock, trace=trace) for n in per_depth.values()]
    return sum(b.build_s for b in builds), all(b.reused for b in builds)


def verify_sharded(
    design_dir: str | Path,
    x,
    simulator: str = "verilator",
    mode: str = "bulk",
    *,
    expected=None,
    workers: int | None = None,
    address: str | None = None,
    shards: int | None = None,
    seed: int = 0,
    waves: bool | None = None,
    bulk_clock: str = "auto",
    second_pass: bool = True,
) -> ShardedResult:
    """:func:`sim.verify` of a written design directory on ``x``, split into ``shards`` contiguous shards
    (default :func:`default_shards`: one per worker, two per worker for large sets; never an empty one) run on
    at most ``workers`` Ray workers at once (default: every CPU of the Ray session), in a local Ray instance or
    on the cluster at ``address``; returns the merged verdict (:func:`merge_results`).

    ``expected``: as in ``sim.verify`` (default: each worker's ``design.predict`` of its shard). ``waves``:
    ``None`` (default) reruns only the shard with the first mismatch, here, with a waveform when the run fails;
    ``True`` records one per shard; ``False`` never. A failing shard keeps its run directory
    (``result.shards[i]["run_dir"]``). When a shard raises (a simulator crash, vectors off the grid), no more
    are started, the running ones finish, and its exception is raised with a note naming the shard. Cluster
    nodes need the design directory at the same path (a shared filesystem)."""
    return _verify_sharded(
        design_dir, None, x, simulator, mode, expected=expected, workers=workers, address=address, shards=shards,
        seed=seed, waves=waves, bulk_clock=bulk_clock, second_pass=second_pass,
    )  # fmt: skip


def _verify_sharded(
    design_dir, design, x, simulator, mode, *, expected, workers, address, shards, seed, waves, bulk_clock, second_pass
) -> ShardedResult:
    from sim.distributed import ray_session  # noqa: PLC0415

    if mode not in api.MODES:
        raise ValueError(f"mode must be one of {api.MODES}, got {mode!r}")
    if bulk_clock not in api.BULK_CLOCKS:
        raise ValueError(f"bulk_clock must be one of {api.BULK_CLOCKS}, got {bulk_clock!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if shards is not None and shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    check_simulator(simulator)
    design_dir = str(Path(design_dir).resolve())
    if design is None:
        design = api.load_design_dir(design_dir, predict=expected is None)
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n == 0:
        raise ValueError("x holds no vectors (0 rows); pass at least one")
    if expected is not None:
        expected = np.asarray(expected, dtype=np.float64)
        if len(expected) != n:
            raise ValueError(f"expected has {len(expected)} rows but x has {n}")
    elif not hasattr(design, "predict"):
        raise ValueError("this design has no predict(): pass expected= (or a vectors file with 'y')")
    opts = {"seed": seed, "bulk_clock": bulk_clock, "second_pass": second_pass, "waves": waves}
    if waves is None:
        opts["waves"] = False  # the waveform comes from one rerun of the first failing shard, below

    t0 = time.perf_counter()
    with ray_session(address, workers) as ray:
        slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
        slots = min(slots, workers) if workers is not None else slots
        ranges = split_shards(n, shards if shards is not None else default_shards(n, slots))
        build_s, reused = _prebuild(design, simulator, mode, [b - a for a, b in ranges], bulk_clock, opts["waves"])
        startup_s = time.perf_counter() - t0
        task = ray.remote(num_cpus=1)(_run_shard)
        cache_dir = str(cache_root())
        pending = list(enumerate(ranges))
        inflight: dict[Any, int] = {}
        results: list[Any] = [None] * len(ranges)
        t1 = time.perf_counter()
        try:
            while pending or inflight:
                while pending and len(inflight) < slots:
                    i, (a, b) = pending.pop(0)
                    ys = None if expected is None else expected[a:b]
                    ref = task.remote(design_dir, x[a:b], ys, simulator, mode, cache_dir, opts)
                    inflight[ref] = i
                done, _ = ray.wait(list(inflight), num_returns=1)
                for ref in done:
                    i = inflight.pop(ref)
                    try:
                        results[i] = ray.get(ref)
                    except ray.exceptions.RayTaskError as err:
                        # let the running shards finish (each cleans up its run directory), submit no more
                        ray.wait(list(inflight), num_returns=len(inflight))
                        inflight.clear()
                        cause = getattr(err, "cause", None)
                        if isinstance(cause, BaseException):
                            a, b = ranges[i]
                            cause.add_note(f"in shard {i} of {len(ranges)} (samples {a}..{b - 1}) of {design_dir}")
                            raise cause from None
                        raise
        except BaseException:  # Ctrl-C: stop the running shards
            for ref in inflight:
                ray.cancel(ref)
            raise
        wall_s = time.perf_counter() - t1
    out = merge_results([r for r, _, _ in results], ranges, wall_s=wall_s, workers=slots, n_vectors=n)
    for s, (_, node, task_s) in zip(out.shards, results, strict=True):
        s["node"], s["task_s"] = node, task_s
    out.build_s, out.build_reused, out.startup_s = build_s, reused, startup_s
    if not out.passed and waves is None and out.first_mismatch is not None:
        _waves_of_first(out, design, x, expected, simulator, mode, opts)
    return out


def _waves_of_first(out: ShardedResult, design, x, expected, simulator: str, mode: str, opts: dict) -> None:
    """Rerun the shard of the first mismatch here with a waveform; its run directory replaces the shard's."""
    s = out.shards[out.first_mismatch["shard"]]
    a, b = s["start"], s["stop"]
    ys = None if expected is None else expected[a:b]
    r = api.verify(design, x[a:b], simulator, mode, expected=ys, **{**opts, "waves": True})
    if s["run_dir"] and s["run_dir"] != r.run_dir:
        shutil.rmtree(s["run_dir"], ignore_errors=True)
    s["run_dir"], s["waves"] = r.run_dir, r.waves
    out.run_dir, out.waves = r.run_dir, r.waves


def cli_simulate_sharded(
    design_dir: str | Path,
    vectors: str | Path | None = None,
    simulator: str = "verilator",
    mode: str = "bulk",
    *,
    workers: int | None = None,
    address: str | None = None,
    n_random: int = 1000,
    seed: int = 0,
    waves: bool | None = None,
) -> ShardedResult:
    """CLI hook (``hgq-hil simulate --workers N --address ADDR``): :func:`sim.cli_simulate` with the vectors
    sharded over Ray workers (:func:`verify_sharded`). The vectors are a ``.npz`` file (``x`` and optional ``y``)
    or corner + ``n_random`` random ones (:func:`sim.api.design_and_vectors`). The caller prints the result
    (``result.to_dict()``, ``result.headline()``) and exits ``0 if result.passed else 1``."""
    check_simulator(simulator)
    if mode not in api.MODES:
        raise ValueError(f"mode must be one of {api.MODES}, got {mode!r}")
    design, x, y = api.design_and_vectors(design_dir, vectors, n_random, seed)
    return _verify_sharded(
        design_dir, design, x, simulator, mode, expected=y, workers=workers, address=address, shards=None,
        seed=seed, waves=waves, bulk_clock="auto", second_pass=True,
    )  # fmt: skip
