"""The flow written once: train → pick a Pareto point → lower → check Keras == interpreter → verify the RTL → report.

The ``hgq-hil`` subcommands (:mod:`boards.cli`), the demo and the gates (:mod:`boards.gate`) are thin layers over
these steps; none prints (progress goes through an optional ``log``). It lives in ``boards`` because that is the
last layer, the only one allowed to import every other package (docs/architecture.md).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hdl_gen.delay import DEFAULT_PART

from .config import SHIPPED_DIR, BoardConfig, get_board

__all__ = [
    "SHIPPED_MODEL",
    "KerasCheck",
    "board_design",
    "check_board_fits",
    "check_keras",
    "default_model",
    "lower",
    "pick_point",
    "report",
    "train",
    "verify_rtl",
]

#: the shipped calibrated jet tagger (16-64-32-32-5; hgq/data/jet_tagger_ci.json says how it was made)
SHIPPED_MODEL = SHIPPED_DIR / "jet_tagger_ci.keras"


def train(
    data: str,
    out: Path,
    *,
    hidden: Sequence[int] | None = None,
    family: str = "dense",
    epochs: int,
    batch_size: int = 1024,
    beta: tuple[float, float],
    lr: float = 5e-3,
    seed: int = 0,
    callbacks: Sequence[Any] = (),
    step: Callable[[str], AbstractContextManager] = lambda msg: nullcontext(),
) -> tuple[list[dict], Any]:
    """Train the jet tagger on ``data`` with a log-ramped β and write calibrated Pareto checkpoints,
    ``pareto.json`` and plots into ``out``; returns ``(front, split)`` (the front chosen on a validation
    hold-out of the training split, never on the test split). ``family``: ``"dense"`` (the DA MLP,
    :func:`hgq.models.jet_tagger`, hidden ``(64, 32, 32)``) or ``"lut"`` (learned tables,
    :func:`hgq.models.lut_tagger`, hidden ``(16,)``; ``()``: one table layer, one clock cycle). ``step(msg)``
    wraps each slow step after training (the CLI shows a spinner)."""
    import keras

    from hgq.data import jsc_split, load_jsc
    from hgq.models import jet_tagger, lut_tagger
    from hgq.pareto import calibrate_front, holdout, train_front
    from hgq.plots import plot_bitwidths, plot_pareto

    keras.utils.set_random_seed(seed)  # initialisation, shuffling and dropout are reproducible
    split = jsc_split(load_jsc(data))
    if family not in ("dense", "lut"):
        raise ValueError(f"model family {family!r} is not valid; use 'dense' or 'lut'")
    if family == "lut":
        model = lut_tagger(hidden=(16,) if hidden is None else tuple(hidden), beta0=beta[0], seed=seed)
    else:
        model = jet_tagger(hidden=(64, 32, 32) if hidden is None else tuple(hidden), beta0=beta[0], seed=seed)
    xt, yt, xv, yv = holdout(split.x_train, split.y_train)
    files = train_front(model, xt, yt, out, epochs=epochs, batch_size=batch_size, beta=tuple(beta), lr=lr,
                        validation_data=(xv, yv), callbacks=list(callbacks))  # fmt: skip
    with step(f"calibrating {len(files)} Pareto checkpoints"):
        front = calibrate_front(files, split.x_train, xv, yv, split.x_test, split.y_test, out)
    plot_pareto(front, out / "pareto.png", title=f"jet tagger on {split.name}")
    from boards.checks import load_model_file

    plot_bitwidths(load_model_file(front[-1]["file"]), out / "bitwidths.png")
    return front, split


def pick_point(front: Sequence[dict], tolerance: float) -> dict:
    """The cheapest point (EBOPs) within ``tolerance`` of the best validation accuracy (the test split selects
    nothing)."""
    best = max(p["val_accuracy"] for p in front)
    return min((p for p in front if p["val_accuracy"] >= best - tolerance), key=lambda p: p["ebops"])


def lower(
    model,
    *,
    part: str = DEFAULT_PART,
    clock_ns: float | None = 5.0,
    stages: int | None = None,
    name: str = "top",
    depth_bound: int | str | None = "min",
    allow_float32_rounding: bool = True,
    model_label: str = "the model",
    ternary: bool = True,
):
    """``hdl_gen.convert`` of a calibrated model. Unless ``allow_float32_rounding``, a design whose values Keras'
    float32 forward may round (``FloatPrecisionWarning``) is refused with :class:`hdl_gen.UnverifiableDesign`:
    Keras == RTL could not be verified. Other warnings are shown."""
    import hdl_gen
    from hdl_gen.tracer import FloatPrecisionWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FloatPrecisionWarning)
        design = hdl_gen.convert(model, part=part, clock_ns=clock_ns, stages=stages, name=name,
                                 depth_bound=depth_bound, ternary=ternary)  # fmt: skip
    rounding = sorted({str(w.message) for w in caught if issubclass(w.category, FloatPrecisionWarning)})
    if rounding and not allow_float32_rounding:
        raise hdl_gen.UnverifiableDesign(
            f"{model_label}: Keras' float32 forward cannot reproduce this design exactly, so Keras == RTL "
            f"cannot be verified: {rounding[0]}"
            + (f" (and {len(rounding) - 1} more)" if len(rounding) > 1 else "")
            + "; or pass --allow-float32-rounding to verify the RTL against the interpreter only"
        )
    for w in caught:
        if not issubclass(w.category, FloatPrecisionWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return design


@dataclass
class KerasCheck:
    """Keras against the interpreter on the same inputs."""

    keras_out: np.ndarray  # Keras' outputs on the raw inputs
    x_port: np.ndarray  # the input port values (the model's input quantizer applied)
    mismatches: int  # samples whose outputs differ anywhere


def check_keras(model, design, x_raw: np.ndarray, keras_out: np.ndarray | None = None) -> KerasCheck:
    """Run Keras on ``x_raw`` (unless its outputs ``keras_out`` are given) and the interpreter on its input-port
    values; count the samples that differ."""
    import hdl_gen

    if keras_out is None:
        keras_out = hdl_gen.flatten_io(model.predict(x_raw, batch_size=4096, verbose=0))
    xq = hdl_gen.quantize_input(model, x_raw)
    hw = design.predict(xq)
    bad = int(np.sum(np.any(hw != keras_out.reshape(hw.shape), axis=tuple(range(1, hw.ndim)))))
    return KerasCheck(keras_out, xq, bad)


def verify_rtl(design, x: np.ndarray, simulators: Sequence[str]) -> dict[str, Any]:
    """``sim.verify`` (stream mode) of ``x`` on each simulator: ``{simulator: VerifyResult}``."""
    from sim import verify

    return {s: verify(design, x, simulator=s, mode="stream") for s in simulators}


def report(design, *, yosys: bool = False) -> dict:
    """``design.report()``, with yosys cell counts for the family of the design's own part when ``yosys``."""
    rep = design.report()
    if yosys:
        from hdl_gen.resources import yosys_estimate, yosys_family

        family = yosys_family(design.part)
        rep["yosys"] = yosys_estimate(design.verilog(), design.name, family=family)
    return rep


def default_model(board: str | BoardConfig) -> Path:
    """The checkpoint ``hgq-hil build --board B`` builds when given no design or model: the board config's
    ``[design] model`` when it has one (e.g. the iCEBreaker's ``jet_tagger_up5k``, a smaller Pareto point that fits
    the UP5K), else the shipped jet tagger :data:`SHIPPED_MODEL`."""
    return get_board(board).default_model or SHIPPED_MODEL


def board_design(board: str | BoardConfig, model: Any = None, *, name: str = "jet_tagger"):
    """The design board ``board`` builds: ``model`` (a ``.keras`` path or a loaded Keras model; default:
    :func:`default_model`) converted by ``hdl_gen.convert`` for the board's part and clock."""
    import hdl_gen

    from .checks import load_model_file

    cfg = get_board(board)
    if model is None:
        model = default_model(cfg)
    if isinstance(model, str | os.PathLike):
        model = load_model_file(model)
    return hdl_gen.convert(model, part=cfg.part, clock_ns=cfg.clock_period_ns, name=name)


def check_board_fits(design, board: str | BoardConfig) -> None:
    """Raise :class:`boards.reports.DesignTooLarge` (exit 1) when a design's own estimate exceeds a vendor part,
    before its build plan is written. The estimate is ``Design.report()``'s ``lut_estimate`` (LUT6-sized; on Intel
    parts, whose capacity counts ALMs, half of it: two LUT halves or two adder bits per ALM) and its
    ``register_bits``, both optimistic, so only a design that cannot fit is refused. Open boards are checked by
    their yosys counts, after synthesis and before place-and-route (:mod:`boards.openflow`), so nothing here."""
    from .reports import check_fits

    cfg = get_board(board)
    if cfg.is_open or not hasattr(design, "report"):
        return
    rep = design.report()
    luts = int(rep["lut_estimate"])
    if cfg.vendor == "intel":
        luts = math.ceil(luts / 2)
    used = {"LUT": luts, "FF": int(rep["register_bits"])}
    avail = {k: cfg.resources[k] for k in ("LUT", "FF")}
    check_fits(used, avail, cfg.name, "hdl_gen estimate before the vendor build", part=cfg.part)
