"""Plots of the theory's results (matplotlib, Agg backend; figures are returned, and saved
atomically when a path is given)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..util.atomic import atomic_write_bytes


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, *, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG (or the format of ``path``'s suffix) atomically, and close it."""
    plt = _plt()
    path = Path(path)
    buf = io.BytesIO()
    fmt = path.suffix.lstrip(".") or "png"
    fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def plot_propagation(prop, path: str | Path | None = None):
    """Forward (pre-activation second moment) and backward (gradient variance) against depth,
    predicted (lines) and measured (markers, with standard-error bars when available)."""
    plt = _plt()
    depth = np.arange(1, prop.depth + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    panels = [
        ("forward: E[z_l^2]", prop.forward, prop.measured_forward, prop.measured_forward_se),
        ("backward: Var(dL/dz_l)", prop.backward, prop.measured_backward,
         prop.measured_backward_se),
    ]
    for ax, (title, pred, meas, se) in zip(axes, panels):
        ax.semilogy(depth, pred, "-", label="mean field (predicted)")
        if meas is not None:
            err = None if se is None or not np.all(np.isfinite(se)) else se
            ax.errorbar(depth, meas, yerr=err, fmt="o", ms=4, label="measured")
        ax.set_xlabel("layer")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"{prop.activation}, widths {_short(prop.widths)}")
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_critical_line(points, act: str = "tanh", path: str | Path | None = None):
    """The critical line ``sigma_w2(sigma_b2)`` separating the ordered and chaotic phases."""
    plt = _plt()
    sb = [p[0] for p in points]
    sw = [p[1] for p in points]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(sw, sb, "-o", ms=3)
    ax.set_xlabel("sigma_w^2")
    ax.set_ylabel("sigma_b^2")
    ax.set_title(f"critical line (chi_1 = 1), {act}")
    ax.text(0.05, 0.9, "ordered", transform=ax.transAxes)
    ax.text(0.75, 0.1, "chaotic", transform=ax.transAxes)
    ax.grid(True, alpha=0.3)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_jacobian_spectrum(spec, path: str | Path | None = None):
    """Histogram of the input-output singular values (exact method) and, per layer, the mean
    singular value and the spread of the layer-to-layer Jacobians."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    if spec.singular_values is not None:
        axes[0].hist(np.ravel(spec.singular_values), bins=50)
        axes[0].set_xlabel("singular value of the input-output Jacobian")
    else:
        axes[0].text(0.1, 0.5, "randomized estimate: no histogram", transform=axes[0].transAxes)
    io = spec.input_output
    axes[0].set_title(f"mean s^2 = {io.mean_s2:.3g}, var(s^2)/mean^2 = {io.spread:.3g}")
    if spec.layers:
        depth = np.arange(1, len(spec.layers) + 1)
        axes[1].plot(depth, [s.mean_s2 for s in spec.layers], "o-", label="mean s^2")
        axes[1].plot(depth, [s.spread for s in spec.layers], "s-", label="var(s^2)/mean^2")
        axes[1].set_xlabel("layer")
        axes[1].set_title("layer-to-layer Jacobians")
        axes[1].legend()
        axes[1].grid(True, alpha=0.3)
    fig.suptitle(f"{spec.activation}, widths {_short(spec.widths)}")
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def _short(widths) -> str:
    w = list(widths)
    if len(w) > 6 and len(set(w[1:-1])) == 1:
        return f"[{w[0]}, {w[1]} x {len(w) - 2}, {w[-1]}]"
    return str(w)
