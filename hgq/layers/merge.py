"""Quantized merge layers: each input has its own quantizer (``layer.iq`` is a list)."""

from __future__ import annotations

import keras
from keras import ops

from hgq.layers.base import DerivedHidden, finish_output
from hgq.quantizer import make_quantizer, quantizer_config

__all__ = ["QAdd", "QEinsum", "QMaximum", "QMinimum", "QMultiply", "QSubtract"]


class _QMerge(DerivedHidden, keras.layers.Layer):
    n_inputs: int | None = None

    def __init__(
        self,
        iq_confs: list[dict] | dict | None = None,
        oq_conf: dict | None = None,
        enable_oq: bool = False,
        beta0: float = 1e-5,
        enable_ebops: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.iq_confs = iq_confs
        self.oq_conf = oq_conf
        self.enable_oq, self.beta0, self.enable_ebops = bool(enable_oq), float(beta0), bool(enable_ebops)
        self.oq = make_quantizer(oq_conf, "activation", "oq") if self.enable_oq else None
        self.iq = []

    def build(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        if len(shapes) < 2 or (self.n_inputs is not None and len(shapes) != self.n_inputs):
            raise ValueError(f"{type(self).__name__} takes {self.n_inputs or 'at least 2'} inputs, got {len(shapes)}")
        confs = self.iq_confs if isinstance(self.iq_confs, list) else [self.iq_confs] * len(shapes)
        self.iq = [make_quantizer(c, "activation", f"iq{j}") for j, c in enumerate(confs)]
        for q, s in zip(self.iq, shapes, strict=True):
            q.build(s)
        self._in_shapes = shapes
        self._beta = self.add_weight(
            name="beta", shape=(), initializer=keras.initializers.Constant(self.beta0), trainable=False
        )
        self._ebops = self.add_weight(name="ebops", shape=(), initializer="zeros", trainable=False)
        if self.oq is not None:
            self.oq.build(self.compute_output_shape(shapes))
        self.built = True

    def merge(self, xs):
        raise NotImplementedError

    def merge_ebops(self, bs):
        raise NotImplementedError

    def compute_ebops(self, training: bool):
        out = self.compute_output_shape(self._in_shapes)[1:]
        return self.merge_ebops([ops.broadcast_to(q.bits(training), out) for q in self.iq])

    @property
    def ebops(self) -> float:
        return float(ops.convert_to_numpy(self.compute_ebops(False)))

    def call(self, inputs, training=None):
        y = self.merge([q(x, training=training) for q, x in zip(self.iq, inputs, strict=True)])
        return finish_output(self, y, training)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape[0])
        for s in input_shape[1:]:
            shape = tuple(ops.broadcast_shapes(shape, tuple(s))) if None not in shape + tuple(s) else shape
        return shape

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            iq_confs=[quantizer_config(q) for q in self.iq] if self.iq else self.iq_confs,
            oq_conf=quantizer_config(self.oq),
            enable_oq=self.enable_oq,
            beta0=self.beta0,
            enable_ebops=self.enable_ebops,
        )
        return cfg


@keras.saving.register_keras_serializable(package="hgq")
class QAdd(_QMerge):
    """Sum of quantized inputs ``Σ iq_j(x_j)``; EBOPs ``0.65·(Σ_j Σ b_j − Σ min_j b_j)``.

    Args:
        iq_confs: one quantizer config per input (or one dict for all).
        oq_conf, enable_oq: optional output quantizer.
        beta0, enable_ebops: β and EBOPs loss as in :class:`~hgq.layers.base.QLayer`.
    """

    def merge(self, xs):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y

    def merge_ebops(self, bs):
        s = bs[0]
        mn = bs[0]
        for b in bs[1:]:
            s, mn = s + b, ops.minimum(mn, b)
        return 0.65 * (ops.sum(s) - ops.sum(mn))


@keras.saving.register_keras_serializable(package="hgq")
class QSubtract(_QMerge):
    """Difference ``iq_0(x_0) − iq_1(x_1)``; EBOPs ``Σ max(b_0, b_1)``. Args as :class:`QAdd`."""

    n_inputs = 2

    def merge(self, xs):
        return xs[0] - xs[1]

    def merge_ebops(self, bs):
        return ops.sum(ops.maximum(bs[0], bs[1]))


@keras.saving.register_keras_serializable(package="hgq")
class QMultiply(_QMerge):
    """Element-wise product of quantized inputs; EBOPs ``Σ Π_j b_j``. Args as :class:`QAdd`."""

    def merge(self, xs):
        y = xs[0]
        for x in xs[1:]:
            y = y * x
        return y

    def merge_ebops(self, bs):
        p = bs[0]
        for b in bs[1:]:
            p = p * b
        return ops.sum(p)


class _QMinMax(_QMerge):
    fn = staticmethod(ops.maximum)

    def merge(self, xs):
        y = xs[0]
        for x in xs[1:]:
            y = self.fn(y, x)
        return y

    def merge_ebops(self, bs):
        s, mn = bs[0], bs[0]
        for b in bs[1:]:
            s, mn = s + b, ops.minimum(mn, b)
        return ops.sum(s) - ops.sum(mn)


@keras.saving.register_keras_serializable(package="hgq")
class QMaximum(_QMinMax):
    """Element-wise maximum of quantized inputs; EBOPs ``Σ b − Σ min b``. Args as :class:`QAdd`."""

    fn = staticmethod(ops.maximum)


@keras.saving.register_keras_serializable(package="hgq")
class QMinimum(_QMinMax):
    """Element-wise minimum of quantized inputs; EBOPs ``Σ b − Σ min b``. Args as :class:`QAdd`."""

    fn = staticmethod(ops.minimum)


def _einsum_spec(equation: str) -> tuple[str, str, str]:
    """``(a, b, out)`` index letters of a two-operand einsum without ellipsis or repeated letters per operand."""
    eq = equation.replace(" ", "")
    if "..." in eq or "->" not in eq or eq.count(",") != 1:
        raise ValueError(
            f"QEinsum equation {equation!r}: write two operands and an explicit output, without '...' "
            "(e.g. 'nd,md->nm')"
        )
    ins, out = eq.split("->")
    a, b = ins.split(",")
    for s in (a, b, out):
        if len(set(s)) != len(s) or not s.isalpha():
            raise ValueError(f"QEinsum equation {equation!r}: each operand names distinct letters (no traces)")
    if not set(out) <= set(a) | set(b):
        raise ValueError(f"QEinsum equation {equation!r}: the output uses a letter no operand has")
    return a, b, out


@keras.saving.register_keras_serializable(package="hgq")
class QEinsum(_QMerge):
    """Einsum of two quantized variables (attention's ``Q·Kᵀ`` and ``A·V``): ``einsum(eq, iq_0(a), iq_1(b))``.

    Every product is exact and the sums are exact while they fit float32's 24 significant bits (the tracer warns
    otherwise). In hardware each product is a variable × variable multiplier and each output an adder tree.
    EBOPs ``Σ_products b_a·b_b`` (``einsum(eq, b_a, b_b)`` summed).

    Args:
        equation: two operands and an explicit output over the per-sample axes, e.g. ``"nd,md->nm"`` (the batch
            axis is added in front); no ``...``.
        **kwargs: :class:`QAdd` arguments (iq_confs, oq_conf, enable_oq, beta0, enable_ebops).
    """

    n_inputs = 2

    def __init__(self, equation: str, **kwargs):
        super().__init__(**kwargs)
        self.equation = str(equation)
        self.spec = _einsum_spec(self.equation)

    @property
    def batched(self) -> str:
        a, b, out = self.spec
        return f"Z{a},Z{b}->Z{out}"

    def merge(self, xs):
        return ops.einsum(self.batched, xs[0], xs[1])

    def merge_ebops(self, bs):
        a, b, out = self.spec
        return ops.sum(ops.einsum(f"{a},{b}->", bs[0], bs[1]))

    def compute_ebops(self, training: bool):
        bits = [ops.broadcast_to(q.bits(training), s[1:]) for q, s in zip(self.iq, self._in_shapes, strict=True)]
        return self.merge_ebops(bits)

    def compute_output_shape(self, input_shape):
        a, b, out = self.spec
        sa, sb = tuple(input_shape[0])[1:], tuple(input_shape[1])[1:]
        if len(sa) != len(a) or len(sb) != len(b):
            raise ValueError(
                f"QEinsum {self.equation!r}: operand ranks {len(sa)} and {len(sb)} (without the batch axis) do not "
                f"match {len(a)} and {len(b)} letters"
            )
        size: dict[str, int | None] = {}
        for letters, shape in ((a, sa), (b, sb)):
            for c, n in zip(letters, shape, strict=True):
                if size.get(c) not in (None, n) and n is not None:
                    raise ValueError(f"QEinsum {self.equation!r}: axis {c!r} has sizes {size[c]} and {n}")
                size[c] = n if n is not None else size.get(c)
        return (input_shape[0][0], *(size[c] for c in out))

    def get_config(self) -> dict:
        return {**super().get_config(), "equation": self.equation}
