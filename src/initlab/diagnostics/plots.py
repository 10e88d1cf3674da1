"""Figures of a :class:`~initlab.diagnostics.checkup.DoctorReport`, kept apart from the recording.

One figure, four panels against depth (the layer index):

1. the std of the weighted input z and of the activation h (log scale), as in fastai's
   ``ActivationStats.plot_layer_stats``;
2. the back-propagated gradient (per-example norm of dL/dz) and ``|dL/dW| / |W|`` (log scale):
   Glorot & Bengio 2010's backward view;
3. the fractions of saturated entries and dead units, and the input-to-input ``spread``;
4. the histogram (as a density) of each layer's activation values, one curve per layer coloured
   by depth, like the activation histograms of Glorot & Bengio 2010 ("Understanding the
   difficulty of training deep feedforward neural networks", Figs. 3 and 6).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ..report.html import pyplot
from ..util.atomic import atomic_write_bytes

MAX_HIST_CURVES = 10  # more curves than this are unreadable; evenly spaced layers are shown


def _xy(layers, attr: str, positive: bool = False) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for s in layers:
        v = getattr(s, attr)
        if v is None or (positive and v <= 0):
            continue
        xs.append(s.index)
        ys.append(v)
    return xs, ys


def report_figure(report: Any):
    """Build the matplotlib figure of a report (the caller saves or closes it)."""
    plt = pyplot()

    layers = report.layers
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    ax = axes[0, 0]
    for attr, label in (("z_std", "std of z (weighted input)"), ("h_std", "std of h (activation)")):
        xs, ys = _xy(layers, attr, positive=True)
        if xs:
            ax.semilogy(xs, ys, "o-", ms=3, label=label)
    ax.set(title="forward: std per layer", xlabel="layer", ylabel="std")
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    for attr, label in (("grad_out_norm", "|dL/dz| per example"), ("grad_weight_ratio", "|dL/dW| / |W|")):
        xs, ys = _xy(layers, attr, positive=True)
        if xs:
            ax.semilogy(xs, ys, "o-", ms=3, label=label)
    ax.set(title="backward: gradient per layer", xlabel="layer")
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    for attr, label in (("saturated", "saturated (fraction)"), ("dead", "dead units (fraction)")):
        xs, ys = _xy(layers, attr)
        if xs:
            ax.plot(xs, ys, "o-", ms=3, label=label)
    xs, ys = _xy(layers, "spread", positive=True)
    if xs:
        base = report.inputs.spread if report.inputs is not None and report.inputs.spread else 1.0
        ax2 = ax.twinx()
        ax2.semilogy(xs, [y / base for y in ys], "k--", lw=1, label="spread / input's")
        ax2.set_ylabel("input-to-input spread / input's")
        ax2.legend(fontsize=8, loc="lower right")
    ax.set(title="saturation, dead units, collapse", xlabel="layer", ylim=(-0.02, 1.02))
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[1, 1]
    with_hist = [s for s in layers if s.hist_counts]
    if len(with_hist) > MAX_HIST_CURVES:
        step = (len(with_hist) - 1) / (MAX_HIST_CURVES - 1)
        with_hist = [with_hist[round(k * step)] for k in range(MAX_HIST_CURVES)]
    cmap = plt.get_cmap("viridis")
    for k, s in enumerate(with_hist):
        edges, counts = s.hist_edges, s.hist_counts
        total = sum(counts) or 1
        width = (edges[-1] - edges[0]) / len(counts)
        centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
        what = "h" if s.h_std is not None else "z"
        ax.plot(centers, [c / (total * width) for c in counts],
                color=cmap(k / max(len(with_hist) - 1, 1)), lw=1.2,
                label=f"layer {s.index} ({what})")
    ax.set(title="activation histograms", xlabel="value", ylabel="density")
    if with_hist:
        ax.legend(fontsize=7, ncol=2)
    meta = report.meta
    fig.suptitle(f"initlab doctor: {meta.get('model', '')}, batch {meta.get('batch_shape')}")
    fig.tight_layout()
    return fig


def save_report_plot(report: Any, path: str | Path, *, dpi: int = 100) -> Path:
    """Save the figure of :func:`report_figure` as a PNG, atomically; returns the path."""
    plt = pyplot()
    fig = report_figure(report)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())
