"""The figures every report shares, drawn the same way everywhere: one colour and marker per
init (:mod:`initlab.report.palette`), integer layer ticks, shared axes where panels are compared,
legends outside the data.

- :func:`layer_heatmaps`: layer x init heatmaps of per-layer statistics (activation std,
  gradient norm, saturation), one panel per statistic, the value written in each cell;
- :func:`curves`: one value per epoch for each init (mean over seeds, band = min..max);
- :func:`histograms`: per-layer activation histograms, one panel per init, with the same x and
  y axes in every panel (y from 0), as in Glorot & Bengio, "Understanding the difficulty of
  training deep feedforward neural networks" (2010), Figs. 3 and 6.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np

from .html import pyplot
from .palette import LAYER_CMAP, SEQUENTIAL, init_colors, init_markers


def integer_ticks(ax, n: int, axis: str = "x", start: int = 1) -> None:
    """Ticks at whole layer numbers ``start .. start + n - 1`` (at most ~12 labelled)."""
    step = max(1, math.ceil(n / 12))
    ticks = list(range(start, start + n, step))
    (ax.set_xticks if axis == "x" else ax.set_yticks)(ticks)


def layer_heatmaps(panels: list[tuple[str, dict[str, list[float | None]], str]], *,
                   layer_labels: list[str] | None = None):
    """One heatmap per ``(title, {init: [value per layer]}, scale)``, inits as rows and layers as
    columns; ``scale`` is ``"log"`` (std, gradient norms: the colour is log10 of the value) or
    ``"fraction"`` (0..1). Missing values (None/NaN) are grey and marked "n/a"."""
    plt = pyplot()
    from matplotlib.colors import LogNorm, Normalize

    inits = list(panels[0][1]) if panels else []
    n_layers = max((len(v) for _, d, _ in panels for v in d.values()), default=0)
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 0.9 + 0.42 * len(inits) * len(panels)
                                                       + 0.55 * len(panels)), squeeze=False)
    for ax, (title, data, scale) in zip(axes[:, 0], panels):
        grid = np.full((len(inits), n_layers), np.nan)
        for i, init in enumerate(inits):
            for j, v in enumerate(data.get(init, [])):
                if v is not None and np.isfinite(v) and (scale != "log" or v > 0):
                    grid[i, j] = v
        finite = grid[np.isfinite(grid)]
        if scale == "log":
            lo, hi = (finite.min(), finite.max()) if finite.size else (1e-3, 1.0)
            if hi <= lo:
                lo, hi = lo / 2, hi * 2
            norm: Normalize = LogNorm(vmin=lo, vmax=hi)
        else:
            norm = Normalize(vmin=0.0, vmax=1.0)
        cmap = plt.get_cmap(SEQUENTIAL).with_extremes(bad="#dddddd")
        im = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap=cmap, norm=norm,
                       interpolation="nearest")
        for i in range(len(inits)):
            for j in range(n_layers):
                v = grid[i, j]
                if np.isfinite(v):
                    shade = norm(v)
                    text = f"{v:.0%}" if scale == "fraction" else f"{v:.2g}"
                    ax.text(j, i, text, ha="center", va="center", fontsize=7,
                            color="black" if shade > 0.55 else "white")
                else:
                    ax.text(j, i, "n/a", ha="center", va="center", fontsize=6, color="#555")
        ax.set_yticks(range(len(inits)))
        ax.set_yticklabels(inits, fontsize=8)
        colors = init_colors(inits)
        for lab in ax.get_yticklabels():
            lab.set_color(colors.get(lab.get_text(), "black"))
            lab.set_fontweight("bold")
        ax.set_xticks(range(n_layers))
        ax.set_xticklabels(layer_labels[:n_layers] if layer_labels else
                           [str(j + 1) for j in range(n_layers)], fontsize=8)
        ax.set_title(title, fontsize=10, loc="left")
        cb = fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01)
        cb.ax.tick_params(labelsize=7)
    if panels:
        axes[-1, 0].set_xlabel("layer (1 = first weighted layer; the last is the output layer)")
    fig.tight_layout()
    return fig


def curves(ax, series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray | None,
                                         np.ndarray | None]], *,
           labels: dict[str, str] | None = None, zorders: dict[str, float] | None = None) -> None:
    """Plot ``{init: (x, mean, lo, hi)}`` on ``ax`` in each init's colour and marker."""
    colors, markers = init_colors(series), init_markers(series)
    for init, (x, mean, lo, hi) in series.items():
        z = (zorders or {}).get(init, 2)
        ax.plot(x, mean, color=colors[init], marker=markers[init], ms=4, lw=1.6,
                label=(labels or {}).get(init, init), zorder=z)
        if lo is not None and hi is not None:
            ax.fill_between(x, lo, hi, color=colors[init], alpha=0.15, lw=0, zorder=z - 0.5)


def legend_outside(ax, **kw) -> None:
    """The legend to the right of the axes, never over the data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=8,
              frameon=False, **kw)


def mean_band(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max over the rows of ``grid`` (NaN where a column has no value)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(grid, 0), np.nanmin(grid, 0), np.nanmax(grid, 0)


def histograms(acts: dict[str, list[np.ndarray]], *, bounds: tuple[float, float] | None = None,
               bins: int = 61):
    """One panel per init of per-layer activation histograms (density), one curve per layer
    coloured by depth. Every panel has the same x range and the same y axis, from 0."""
    plt = pyplot()
    inits = list(acts)
    ncol = min(3, len(inits)) or 1
    nrow = math.ceil(len(inits) / ncol) or 1
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.7 * ncol + 1.3, 2.7 * nrow), squeeze=False,
                             sharex=True, sharey=True)
    if bounds is None:
        vals = [a.ravel() for layers in acts.values() for a in layers]
        allv = np.concatenate(vals) if vals else np.zeros(1)
        lo, hi = np.percentile(allv, [0.5, 99.5]) if allv.size else (-1.0, 1.0)
    else:
        lo, hi = bounds
    if not hi > lo:
        lo, hi = lo - 1, hi + 1
    edges = np.linspace(lo, hi, bins)
    centers = 0.5 * (edges[1:] + edges[:-1])
    cmap = plt.get_cmap(LAYER_CMAP)
    top = 0.0
    n_layers = max((len(v) for v in acts.values()), default=1)
    for ax, init in zip(axes.ravel(), inits):
        for i, a in enumerate(acts[init]):
            h, _ = np.histogram(np.clip(a.ravel(), lo, hi), bins=edges, density=True)
            top = max(top, float(np.max(h)) if h.size else 0.0)
            ax.plot(centers, h, color=cmap(i / max(1, n_layers - 1)), lw=1.1,
                    label=f"layer {i + 1}")
        ax.set_title(init, fontsize=10, color=init_colors(inits)[init], fontweight="bold")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(inits):]:
        ax.axis("off")
    axes[0, 0].set_ylim(0, 1.05 * top if top > 0 else 1.0)  # shared: every panel from 0
    for ax in axes[-1]:
        ax.set_xlabel("activation value")
    for ax in axes[:, 0]:
        ax.set_ylabel("density")
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    sm = ScalarMappable(norm=Normalize(1, max(2, n_layers)), cmap=cmap)
    cb = fig.colorbar(sm, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02)
    cb.set_label("layer", fontsize=8)
    cb.set_ticks(list(range(1, max(2, n_layers) + 1, max(1, math.ceil(n_layers / 10)))))
    return fig
