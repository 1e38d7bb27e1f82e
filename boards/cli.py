"""The ``hgq-hil`` console script: train, convert, simulate, build, report, gate, demo.

It lives at the end of the flow (boards) so it may drive every upstream package.
"""

from __future__ import annotations

import argparse
import sys


def _demo(args: argparse.Namespace) -> int:
    import numpy as np

    from hgq.fixed import quantize

    x = np.linspace(-2, 2, 9)
    print("hgq-hil demo: the chain train -> lower -> simulate -> report is being built.")
    print("Built so far: hgq.fixed (one fixed-point arithmetic) and hdl_gen.ir (exact fixed-point graph).")
    print("Example, quantize to fixed<1,1,2> RND/SAT:", quantize(x, 1, 1, 2, "RND", "SAT").tolist())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hgq-hil", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="train -> lower -> simulate -> report on the shipped physics sample")
    d.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
