"""Plots people would rather look at: the accuracy-vs-resource Pareto front and per-layer bit-width heat maps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["layer_bitwidths", "plot_bitwidths", "plot_pareto"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pareto(points: Sequence[dict], path: str | Path, *, title: str = "Pareto front") -> Path:
    """Accuracy vs EBOPs (and vs estimated LUTs when points carry ``lut``); one marker per checkpoint.

    ``points``: dicts with ``accuracy`` and ``ebops`` (and optionally ``lut``, ``label``). Writes ``path``
    (PNG or SVG by suffix) and returns it.
    """
    if not points:
        raise ValueError("plot_pareto: no points to plot; train with the ParetoFront callback first")
    plt = _pyplot()
    has_lut = all("lut" in p and p["lut"] is not None for p in points)
    fig, axes = plt.subplots(1, 2 if has_lut else 1, figsize=(10 if has_lut else 5.5, 4), squeeze=False)
    pts = sorted(points, key=lambda p: p["ebops"])
    acc = np.array([p["accuracy"] for p in pts])
    for ax, key, label in zip(axes[0], ("ebops", "lut"), ("EBOPs", "estimated LUTs"), strict=False):
        xs = np.array([p[key] for p in pts], dtype=float)
        ax.plot(xs, acc, "o-", color="tab:blue")
        for p, xv, a in zip(pts, xs, acc, strict=True):
            if "label" in p:
                ax.annotate(str(p["label"]), (xv, a), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy")
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def layer_bitwidths(model) -> list[tuple[str, np.ndarray]]:
    """(name, total bits k+i+f clipped at 0) for every kernel and input quantizer of an hgq model (LUT layers:
    also each table's address and output widths)."""
    out = []
    for layer in model.layers:
        for attr, tag in (("iq", "input"), ("kq", "kernel")):
            q = getattr(layer, attr, None)
            qs = q if isinstance(q, list | tuple) else [q]
            for n, qq in enumerate(qs):
                if qq is None or not hasattr(qq, "kif"):
                    continue
                k, i, f = qq.kif()
                bits = np.maximum(np.asarray(k) + np.asarray(i) + np.asarray(f), 0)
                suffix = f"[{n}]" if len(qs) > 1 else ""
                out.append((f"{layer.name}.{tag}{suffix}", np.atleast_1d(bits)))
        if hasattr(layer, "input_widths"):  # LUT layers: table address bits per input, output bits per edge
            widths = layer.edge_input_widths if layer.edge_widths else layer.input_widths  # per edge or per input
            out.append((f"{layer.name}.table in", np.asarray(widths(False))[0]))
            k, i, f = layer.eoq.kif()
            out.append((f"{layer.name}.table out", np.maximum(k + i + f, 0)))
    return out


def plot_bitwidths(model, path: str | Path) -> Path:
    """Heat maps of the learned bit-widths: one panel per kernel (inputs × outputs) and per input quantizer."""
    items = layer_bitwidths(model)
    if not items:
        raise ValueError("plot_bitwidths: the model has no hgq quantizers")
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(items), figsize=(2.6 * len(items), 3.6), squeeze=False)
    vmax = max(float(b.max()) for _, b in items) or 1.0
    im = None
    for ax, (name, bits) in zip(axes[0], items, strict=True):
        b = bits.reshape(bits.shape[0], -1) if bits.ndim > 1 else bits.reshape(-1, 1)
        im = ax.imshow(b, aspect="auto", cmap="viridis", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{name}\nmean {bits.mean():.2f} b, {np.mean(bits == 0):.0%} pruned", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="bits")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
