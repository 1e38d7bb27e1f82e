"""Quantized Keras layers (HGQ). Export surface for ``hdl_gen.trace`` (stable):

Quantizers (:class:`hgq.quantizer.Quantizer`), every ``q``:
    ``q.kif()`` -> ``(k, i, f)`` int64 numpy arrays broadcast to the per-sample shape of the quantized tensor
    (activations: shape without batch; constants: the weight shape); exactly the integers the inference
    forward uses (``k=0, i=-f`` for pruned elements, whose value is 0). ``q.round_mode``, ``q.overflow_mode``
    (strings of :mod:`hgq.fixed`); ``q.calibrated`` (bool; False only for WRAP activation quantizers not yet
    passed through :func:`hgq.calibrate.trace_minmax`). Inference: ``q(x) == hgq.fixed.quantize(x, *q.kif(),
    q.round_mode, q.overflow_mode)`` bit for bit.

Every Q-layer: ``layer.iq`` (input quantizer, or None; a list for merge layers), ``layer.oq`` (or None).
Forward: ``oq(op(iq(x)))``, where ``op`` is exact arithmetic on quantized values:

- QDense / QDenseBatchNorm / QEinsumDense: ``act(iq(x) @ qkernel + qbias)`` (einsum: ``layer.equation``);
  ``layer.qkernel``, ``layer.qbias`` (float64 numpy, exact; BN folded for QDenseBatchNorm; qbias None when absent;
  QEinsumDense bias has the ``bias_axes`` shape, broadcast against the output), ``layer.activation_name`` in
  {"linear", "relu"}.
- QConv1D / QConv2D: ``act(conv(iq(x), qkernel) + qbias)``, channels_last, ``layer.strides``, ``layer.padding``
  ("valid"/"same" as in Keras), ``layer.kernel_size``, ``layer.qkernel`` (Keras kernel layout), ``layer.qbias``.
- QBatchNormalization: ``iq(x) * qscale + qoffset`` on the last axis; ``layer.qscale``, ``layer.qoffset``.
- QAdd, QSubtract, QMultiply, QMaximum, QMinimum: ``layer.iq`` is a list, one quantizer per input.
- QEinsum: ``einsum(layer.equation, iq[0](a), iq[1](b))`` of two variables (per-sample letters, no ``...``;
  ``layer.spec`` = ``(a, b, out)`` letters).
- QMaxPooling1D/2D, QAveragePooling1D/2D (power-of-two pools), QGlobalAveragePooling1D, QGlobalMaxPooling1D,
  QGlobalSumPooling1D:
  ``layer.pool_size``, ``layer.strides``, ``layer.padding`` (Keras semantics); averages are exact (sum then
  a power-of-two shift).
- QUnaryFunctionLUT: ``oq(fn(iq(x)))``; ``layer.table(index)`` -> ``(x_values, y_values)`` over every
  representable input of element ``index`` (flat, per-sample); ``layer.oq`` defines the outputs.
- QSoftmax (last axis): ``q = iq(x)``, ``d = q - max(q, axis=-1)`` (exact, ``<= 0``), ``e = layer.exp_q(d)``
  ``= exp_oq(exp_f32(d))``, ``s = sum(e, axis=-1)`` (exact), ``y = oq(e * layer.inv_q(s))`` with ``inv_q(s) =
  inv_oq(1 / max(s, 2**-24))``; ``layer.exp_oq`` (per-sample shape = input shape), ``layer.inv_oq`` (input shape
  with last axis 1); ``layer.exp_table(d)`` / ``layer.inv_table(s)`` evaluate ``exp_q`` / ``inv_q`` (inference,
  float64 out) on a batch shaped like ``(N, *those shapes)`` with exactly the forward's float32 operations
  (:func:`hgq.layers.softmax.exp_f32` gives the same bits under any fusion; XLA's ``exp`` does not).
- QLUTDense / QLUTConv1D / QLUTConv2D: ``y[o] = Σ_i T_io(read(iq(x)_i))`` over the last axis (conv: over each
  window of ``prod(kernel_size) × channels`` inputs, flattened kernel-major as ``windows()`` lists them, -1 =
  padding, which reads 0); ``read`` drops low bits to ``layer.read_fractional_bits()`` (``(positions, n_in)``,
  TRN, no overflow), and each edge further to ``layer.edge_read_fractional_bits()`` (``(positions, n_in, units)``,
  equal unless ``layer.edge_widths``); ``layer.edge_tables(v, position)`` maps a batch ``(N, n_in)`` of read inputs
  to the quantized edge outputs ``(N, n_in, units)`` (float64) exactly as the forward adds them (each edge's drop
  applied); ``layer.eoq`` (per-sample shape ``(n_in, units)``) defines the table outputs.
- QSimpleRNN / QGRU / QLSTM: input ``(steps, features)``; ``layer.qkernel`` ``(features, G·units)``,
  ``layer.qrecurrent`` ``(units, G·units)``, ``layer.qbias`` (QGRU also ``layer.qbias_hn``), ``layer.pq[j]`` /
  ``layer.gate_quantizer(j)`` the pre-activation / output quantizer of gate ``j`` of ``layer.GATES``,
  ``layer.gate_table(j, v)`` its exact table on a batch ``(N, units)``, ``layer.sq`` (state), ``layer.cq``
  (LSTM cell); the step rules are in :mod:`hgq.layers.recurrent`.
- Quantizer used as a layer: ``q(x)``.
- keras Flatten / Reshape / Concatenate are pass-through (no arithmetic); use them on quantized tensors.

Float32 exactness: quantization itself is always exact on float32 inputs; a layer's sum of products is exact
while each accumulated value needs at most 24 significant bits (``max |sum| / step < 2**24``). Larger sums
can round in Keras (not in ``hdl_gen``): check with ``hdl_gen`` interval typing.
"""

from hgq.layers.base import QLayer
from hgq.layers.batchnorm import QBatchNormalization
from hgq.layers.conv import QConv1D, QConv2D
from hgq.layers.core import QDense, QDenseBatchNorm, QEinsumDense
from hgq.layers.lut import QUnaryFunctionLUT
from hgq.layers.lut_dense import QLUTConv1D, QLUTConv2D, QLUTDense
from hgq.layers.merge import QAdd, QEinsum, QMaximum, QMinimum, QMultiply, QSubtract
from hgq.layers.pooling import (
    QAveragePooling1D,
    QAveragePooling2D,
    QGlobalAveragePooling1D,
    QGlobalMaxPooling1D,
    QGlobalSumPooling1D,
    QMaxPooling1D,
    QMaxPooling2D,
)
from hgq.layers.recurrent import QGRU, QLSTM, QSimpleRNN
from hgq.layers.softmax import QSoftmax
from hgq.quantizer import Quantizer

__all__ = [
    "QAdd",
    "QAveragePooling1D",
    "QAveragePooling2D",
    "QBatchNormalization",
    "QConv1D",
    "QConv2D",
    "QDense",
    "QDenseBatchNorm",
    "QEinsum",
    "QEinsumDense",
    "QGlobalAveragePooling1D",
    "QGlobalMaxPooling1D",
    "QGRU",
    "QGlobalSumPooling1D",
    "QLUTConv1D",
    "QLUTConv2D",
    "QLUTDense",
    "QLSTM",
    "QLayer",
    "QMaxPooling1D",
    "QMaxPooling2D",
    "QMaximum",
    "QMinimum",
    "QMultiply",
    "QSimpleRNN",
    "QSoftmax",
    "QSubtract",
    "QUnaryFunctionLUT",
    "Quantizer",
]
