"""Example graphs built directly with :class:`~hdl_gen.ir.GraphBuilder` (no Keras): tests, benchmarks, demos."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hdl_gen.ir import Graph, GraphBuilder
from hgq.fixed import FixedType

__all__ = ["mlp_graph"]


def mlp_graph(
    sizes: Sequence[int] = (16, 64, 32, 32, 5),
    *,
    seed: int = 0,
    wbits: int = 4,
    in_bits: int = 8,
    act_bits: int = 8,
    depth_bound=None,
    name: str = "mlp",
) -> Graph:
    """A quantized MLP: dense (random ``wbits``-bit weights, 20 % zeros, bias) → relu → RND/SAT quantize, repeated.

    Inputs are ``fixed<1,2,in_bits-3>``, activations ``fixed<0,3,act_bits-3>``; the last layer is linear.
    """
    rng = np.random.default_rng(seed)
    b = GraphBuilder(name=name)
    xs = [b.input(FixedType(1, 2, in_bits - 3)) for _ in range(sizes[0])]
    for li, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        b.layer = f"dense{li}"
        W = rng.integers(-(2 ** (wbits - 1)), 2 ** (wbits - 1), size=(n_in, n_out)) * 2.0 ** -(wbits - 1)
        W[rng.random(W.shape) < 0.2] = 0
        bias = rng.integers(-8, 8, size=n_out) * 2.0**-3
        ys = b.cmvm(xs, W, depth_bound=depth_bound)
        ys = [b.add(y, b.const(bb)) for y, bb in zip(ys, bias, strict=True)]
        if li < len(sizes) - 2:
            b.layer = f"act{li}"
            ys = [b.quantize(b.relu(y), 0, 3, act_bits - 3, "RND", "SAT") for y in ys]
        xs = ys
    return b.build(xs, (sizes[0],), (sizes[-1],))
