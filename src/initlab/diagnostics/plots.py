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


def _integer_layers(ax, layers) -> None:
    """Whole-number layer ticks (never 1.5)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(12, max(1, len(layers)))))
    if layers:
        ax.set_xlim(min(s.index for s in layers) - 0.5, max(s.index for s in layers) + 0.5)


def _legend_below(ax, **kw) -> None:
    """The legend under the axes, never over the data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8,
                  frameon=False, ncol=kw.pop("ncol", 2), **kw)


def report_figure(report: Any):
    """Build the matplotlib figure of a report (the caller saves or closes it)."""
    from ..report.palette import BLUE, GREEN, LAYER_CMAP, ORANGE, PURPLE, VERMILLION

    plt = pyplot()

    layers = report.layers
    fig, axes = plt.subplots(2, 2, figsize=(11.5, 8.6))
    ax = axes[0, 0]
    for attr, label, c in (("z_std", "std of z (weighted input)", BLUE),
                           ("h_std", "std of h (activation)", VERMILLION)):
        xs, ys = _xy(layers, attr, positive=True)
        if xs:
            ax.semilogy(xs, ys, "o-", ms=4, color=c, label=label)
    ax.set(title="forward: std per layer", xlabel="layer", ylabel="std")
    _legend_below(ax)

    ax = axes[0, 1]
    for attr, label, c in (("grad_out_norm", "|dL/dz| per example", GREEN),
                           ("grad_weight_ratio", "|dL/dW| / |W|", PURPLE)):
        xs, ys = _xy(layers, attr, positive=True)
        if xs:
            ax.semilogy(xs, ys, "s-", ms=4, color=c, label=label)
    ax.set(title="backward: gradient per layer", xlabel="layer")
    _legend_below(ax)

    ax = axes[1, 0]
    for attr, label, c, m in (("saturated", "saturated (fraction)", ORANGE, "^"),
                              ("dead", "dead units (fraction)", "#000000", "v")):
        xs, ys = _xy(layers, attr)
        if xs:
            ax.plot(xs, ys, marker=m, ms=4, color=c, label=label)
    xs, ys = _xy(layers, "spread", positive=True)
    if xs:
        base = report.inputs.spread if report.inputs is not None and report.inputs.spread else 1.0
        ax2 = ax.twinx()
        ax2.semilogy(xs, [y / base for y in ys], "--", color="#7F7F7F", lw=1.2,
                     label="spread / input's (right axis)")
        ax2.set_ylabel("input-to-input spread / input's")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper center", bbox_to_anchor=(0.5, -0.2),
                  fontsize=8, frameon=False, ncol=2)
    else:
        _legend_below(ax)
    ax.set(title="saturation, dead units, collapse", xlabel="layer", ylim=(-0.02, 1.02))

    ax = axes[1, 1]
    with_hist = [s for s in layers if s.hist_counts]
    if len(with_hist) > MAX_HIST_CURVES:
        step = (len(with_hist) - 1) / (MAX_HIST_CURVES - 1)
        with_hist = [with_hist[round(k * step)] for k in range(MAX_HIST_CURVES)]
    cmap = plt.get_cmap(LAYER_CMAP)
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
    ax.set_ylim(bottom=0)
    if with_hist:
        _legend_below(ax, ncol=4)
    for a in (axes[0, 0], axes[0, 1], axes[1, 0]):
        _integer_layers(a, layers)
        a.grid(alpha=0.3)
    axes[1, 1].grid(alpha=0.3)
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
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())
