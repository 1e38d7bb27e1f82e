"""Benchmark hdl_gen.cmvm.solve against da4ml 0.6.0 (same process, one thread).

Random signed integer N x N matrices (4/8-bit entries, 8-bit signed inputs, 3 seeds) and the jet-tagger layer
shapes, at three depth bounds: none (da4ml hard_dc=-1), minimal (hard_dc=0) and minimal+2 (hard_dc=2).
Adders = number of two-input add/sub ops for both tools; depth = adder levels. Run:
``python benchmarks/bench_cmvm.py [--quick]``.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from hdl_gen.cmvm import solve  # noqa: E402
from hgq.fixed import Interval  # noqa: E402

BOUNDS = {"none": (None, -1), "min": ("min", 0), "min+2": ("min+2", 2)}


def _da4ml(k: np.ndarray, hard_dc: int, ivs: list[Interval]):
    from da4ml.cmvm import solve as da_solve

    q = [(float(iv.lo_value), float(iv.hi_value), float(iv.step)) for iv in ivs]
    t = time.perf_counter()
    p = da_solve(np.ascontiguousarray(k, dtype=np.float32), hard_dc=hard_dc, qintervals=q, latencies=[0.0] * len(q))
    dt = time.perf_counter() - t
    adders = sum(1 for s in p.solutions for op in s.ops if op.opcode in (0, 1))
    return adders, int(p.latency[1]), dt


def _ours(k: np.ndarray, bound, ivs: list[Interval]):
    t = time.perf_counter()
    g = solve(k, ivs, depth_bound=bound, cache=False)
    dt = time.perf_counter() - t
    return g.n_adders, g.depth, dt


def _cases(quick: bool):
    sizes = (8, 16) if quick else (8, 16, 32, 64)
    seeds = (0,) if quick else (0, 1, 2)
    for n in sizes:
        for bits in (4, 8):
            for seed in seeds:
                yield f"{n}x{n} w{bits} s{seed}", (n, n), bits, seed
    for shape in ((16, 64), (64, 32), (32, 32), (32, 5)):
        for bits in (4,) if quick else (4, 6):
            yield f"jet {shape[0]}x{shape[1]} w{bits}", shape, bits, 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small subset")
    args = ap.parse_args()
    # warm-up (numba compilation, imports) outside the timings
    w0 = np.random.default_rng(99).integers(-8, 8, (6, 6))
    for ours_b, da_b in BOUNDS.values():
        _ours(w0, ours_b, [Interval(-128, 127, 0)] * 6)
        _da4ml(w0, da_b, [Interval(-128, 127, 0)] * 6)

    hdr = f"{'case':<20}{'bound':>7}{'da adders':>10}{'ours':>7}{'ratio':>7}{'da dep':>7}{'ours':>5}"
    hdr += f"{'da ms':>10}{'ours ms':>10}{'t ratio':>8}"
    print(hdr)
    tot = {b: [[], 0.0, 0.0, 0, 0, [], []] for b in BOUNDS}  # ratios, da/our time, deeper, n, da/our depths
    for name, shape, bits, seed in _cases(args.quick):
        rng = np.random.default_rng(seed + 1000 * bits + shape[0] * 7 + shape[1])
        hi = 1 << (bits - 1)
        k = rng.integers(-hi, hi, shape)
        ivs = [Interval(-128, 127, 0)] * shape[0]
        for bname, (ours_b, da_b) in BOUNDS.items():
            da_a, da_d, da_t = _da4ml(k, da_b, ivs)
            o_a, o_d, o_t = _ours(k, ours_b, ivs)
            r = o_a / da_a
            tt = tot[bname]
            tt[0].append(r)
            tt[1] += da_t
            tt[2] += o_t
            tt[3] += int(o_d > da_d)
            tt[4] += 1
            tt[5].append(da_d)
            tt[6].append(o_d)
            print(
                f"{name:<20}{bname:>7}{da_a:>10}{o_a:>7}{r:>7.3f}{da_d:>7}{o_d:>5}"
                f"{da_t * 1e3:>10.1f}{o_t * 1e3:>10.1f}{o_t / da_t:>8.2f}",
                flush=True,
            )
    print()
    hdr = f"{'bound':<8}{'mean adder ratio':>18}{'depth > da4ml':>15}{'mean depth da/ours':>20}"
    print(hdr + f"{'da4ml s':>10}{'ours s':>10}{'time ratio':>12}")
    all_da = all_o = 0.0
    for bname, (rs, dt, ot, viol, n, dd, od) in tot.items():
        all_da += dt
        all_o += ot
        md = f"{np.mean(dd):.2f} / {np.mean(od):.2f}"
        print(f"{bname:<8}{np.mean(rs):>18.4f}{f'{viol}/{n}':>15}{md:>20}{dt:>10.2f}{ot:>10.2f}{ot / dt:>12.2f}")
    print(f"{'total':<8}{'':>18}{'':>15}{'':>20}{all_da:>10.2f}{all_o:>10.2f}{all_o / all_da:>12.2f}")


if __name__ == "__main__":
    main()
