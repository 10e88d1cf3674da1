"""The HTML report of a comparison: table, learning curves, per-layer statistics at init.

Plots (matplotlib, Agg backend, embedded as PNG by :class:`initlab.report.html.HtmlReport`):

- training loss and test accuracy per epoch for each init (mean over seeds, band = min..max);
- the standard deviation of each hidden layer's activations at init vs depth (one line per init);
- per-layer activation histograms at init, one panel per init, one curve per layer, as in
  Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural networks"
  (2010), Figs. 3 and 6.

When the init doctor (:mod:`initlab.diagnostics`) is available, its findings at init are added.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..report.html import HtmlReport, pyplot
from .compare import CompareResult, format_table, make_initialized_model, takeaways
from .train import layer_activations

N_STATS = 512  # training examples forwarded for the statistics at init


def _colors(n):
    plt = pyplot()
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def _curves(res: CompareResult):
    cfg = res.config
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for color, init in zip(_colors(len(cfg.inits)), cfg.inits):
        lr = res.best_lr[init]
        for ax, key in zip(axes, ("train_loss", "test_acc")):
            grid = np.full((cfg.seeds, cfg.epochs + 1), np.nan)
            for r in res.records:
                if r["init"] == init and r["lr"] == lr and r[key] is not None:
                    grid[r["seed"], r["epoch"]] = r[key]
            if np.all(np.isnan(grid)):
                continue
            ep = np.arange(cfg.epochs + 1)
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(grid, 0)
                    lo, hi = np.nanmin(grid, 0), np.nanmax(grid, 0)
            label = init if len(cfg.lrs) == 1 else f"{init} (lr {lr:g})"
            ax.plot(ep, mean, color=color, label=label, marker="o", ms=3)
            ax.fill_between(ep, lo, hi, color=color, alpha=0.15)
    axes[0].set(xlabel="epoch", ylabel="training loss", title="Training loss", yscale="log")
    axes[1].set(xlabel="epoch", ylabel="test accuracy", title="Test accuracy")
    axes[1].axhline(cfg.target_acc, color="gray", lw=0.8, ls=":")
    axes[1].legend(fontsize=8, loc="lower right")
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig


def _init_stats(res: CompareResult):
    """Per init: (activations by layer at init for seed 0, apply's report, doctor's text)."""
    out = {}
    x = res.data.x_train[:N_STATS]
    for init in res.config.inits:
        model, report = make_initialized_model(res.config, res.data, init, 0)
        acts = layer_activations(model, x)
        out[init] = (acts, report, _doctor(model, x, res.data.y_train[:N_STATS]))
    return out


def _doctor(model, x, y) -> str | None:
    """The doctor's table and findings at init (cross-entropy backward on the probe batch), when
    :mod:`initlab.diagnostics` provides ``doctor``; None otherwise."""
    try:
        from ..diagnostics import doctor  # type: ignore[attr-defined]
    except ImportError:
        return None
    import torch
    import torch.nn.functional as F

    batch = torch.from_numpy(np.ascontiguousarray(x))
    target = torch.from_numpy(np.ascontiguousarray(y))
    try:
        found = doctor(model, batch, loss_fn=F.cross_entropy, target=target)
    except Exception as exc:  # noqa: BLE001 (the report still renders without it)
        return f"(the doctor could not run: {type(exc).__name__}: {exc})"
    return str(found)


def _std_vs_depth(res: CompareResult, stats):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for color, init in zip(_colors(len(res.config.inits)), res.config.inits):
        acts = stats[init][0]
        stds = [float(a.std()) for a in acts.values()]
        ax.plot(range(1, len(stds) + 1), stds, color=color, marker="o", ms=3, label=init)
    ax.set(xlabel="hidden layer", ylabel="std of activations",
           title="Activation std at init vs depth", yscale="log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def _histograms(res: CompareResult, stats):
    plt = pyplot()
    inits = res.config.inits
    ncol = min(3, len(inits))
    nrow = math.ceil(len(inits) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.0 * nrow), squeeze=False)
    all_vals = np.concatenate([a.ravel() for init in inits for a in stats[init][0].values()])
    lo, hi = (np.percentile(all_vals, [0.5, 99.5]) if all_vals.size else (-1.0, 1.0))
    if res.config.activation in ("tanh",):
        lo, hi = -1.0, 1.0
    elif res.config.activation == "sigmoid":
        lo, hi = 0.0, 1.0
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    bins = np.linspace(lo, hi, 61)
    for ax, init in zip(axes.ravel(), inits):
        acts = stats[init][0]
        cmap = plt.get_cmap("viridis")
        for i, a in enumerate(acts.values()):
            h, edges = np.histogram(np.clip(a.ravel(), lo, hi), bins=bins, density=True)
            ax.plot(0.5 * (edges[1:] + edges[:-1]), h, color=cmap(i / max(1, len(acts) - 1)),
                    lw=1.2, label=f"layer {i + 1}")
        ax.set_title(init, fontsize=10)
        ax.set_xlabel("activation value")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(inits):]:
        ax.axis("off")
    axes[0, 0].set_ylabel("density")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_report(res: CompareResult, path: str | Path | None = None) -> Path:
    """Write ``report.html`` for a finished comparison (default: in its output directory)."""
    cfg = res.config
    path = Path(path) if path is not None else Path(res.out) / "report.html"
    title = (f"initlab compare: {cfg.model} depth {cfg.depth} width {cfg.width} "
             f"{cfg.activation} on {cfg.data}")
    rep = HtmlReport(title, subtitle="Which initialization makes this network train, and how "
                                     "much does it matter? Same data, model, optimizer and seeds "
                                     "for every initialization.")
    rep.heading("Setup")
    lr_text = (f"learning rate chosen per init from the grid {list(cfg.lr_grid)} by mean final "
               "validation accuracy" if cfg.lr_grid else f"learning rate {cfg.lr:g}")
    rep.paragraph(f"Data: {res.data.summary()}. {res.data.info}.")
    rep.paragraph(f"Model: {cfg.model}, {cfg.depth} hidden layers of width {cfg.width}, "
                  f"{cfg.activation}, bias {'on' if cfg.bias else 'off'}. Training: "
                  f"{cfg.optimizer} (momentum {cfg.momentum:g}), {lr_text}, batch "
                  f"{cfg.batch_size}, weight decay {cfg.weight_decay:g}, {cfg.loss} loss, "
                  f"{cfg.epochs} epochs, seeds 0..{cfg.seeds - 1}.")

    rep.heading("Results")
    rows = []
    for r in res.summary:
        s = r["init_std"]
        rows.append([r["init"], r["lr"], r["acc_mean"] * 100, r["acc_std"] * 100,
                     r["train_loss"],
                     "never" if r["epochs_to_target"] is None
                     else f"{r['epochs_to_target']:g} ({r['reached']}/{r['seeds']})",
                     r["diverged"], s[0] if s else None, s[-1] if s else None])
    rep.table(["init", "lr", "test acc % (mean)", "± std", "train loss",
               f"epochs to {cfg.target_acc:.0%} (seeds)", "diverged", "act std layer 1",
               "act std last layer"], rows,
              caption="Final epoch; mean and sample std over seeds.")
    rep.preformatted(format_table(res.summary, cfg))
    for line in takeaways(res.summary, cfg):
        rep.paragraph(line)
    if cfg.lr_grid:
        grid_rows = []
        for init in cfg.inits:
            row = [init]
            for lr in cfg.lrs:
                fin = [r for r in res.records if r["init"] == init and r["lr"] == lr
                       and r["epoch"] == cfg.epochs and r.get("val_acc") is not None]
                row.append(100 * float(np.mean([r["val_acc"] for r in fin])) if fin else None)
            grid_rows.append(row)
        rep.table(["init", *(f"lr {lr:g}" for lr in cfg.lrs)], grid_rows,
                  caption="Mean final validation accuracy (%) per learning rate.")
    rep.figure(_curves(res), "Mean over seeds (band: min to max). Dotted: target accuracy.")

    rep.heading("At initialization")
    stats = _init_stats(res)
    rep.paragraph(f"Statistics of each hidden layer's activations on {min(N_STATS, len(res.data.y_train))} "
                  "training examples, seed 0. A signal whose std shrinks or grows with depth "
                  "(a sloped line) makes deep networks hard to train; saturated tanh/sigmoid "
                  "units pile up at the ends of the histograms.")
    rep.figure(_std_vs_depth(res, stats), "Standard deviation of activations per hidden layer.")
    rep.figure(_histograms(res, stats),
               "Activation histograms per layer at init (Glorot & Bengio 2010 style).")
    table = []
    for init in cfg.inits:
        acts = stats[init][0]
        for i, (name, a) in enumerate(acts.items()):
            sat = (float(np.mean(np.abs(a) > 0.99)) if cfg.activation == "tanh" else
                   float(np.mean((a < 0.01) | (a > 0.99))) if cfg.activation == "sigmoid" else None)
            table.append([init, f"{i + 1} ({name})", float(a.mean()), float(a.std()),
                          float(np.mean(np.abs(a) < 1e-6)), sat])
    rep.table(["init", "layer", "mean", "std", "fraction zero", "fraction saturated"], table)
    doctors = {k: v[2] for k, v in stats.items() if v[2]}
    if doctors:
        rep.heading("The init doctor at initialization", level=3)
        for init, text in doctors.items():
            rep.paragraph(init)
            rep.preformatted(text)
    reports = {k: v[1] for k, v in stats.items() if v[1] is not None}
    if reports:
        rep.heading("What each parameter received (initlab.apply's report, seed 0)", level=3)
        for init, r in reports.items():
            rep.paragraph(init)
            text = str(r).splitlines()
            rep.preformatted("\n".join(text[:60] + (["..."] if len(text) > 60 else [])))

    rep.heading("Reproduce")
    rep.preformatted(command_line(cfg, res.out))
    return rep.save(path)


def command_line(cfg, out) -> str:
    """The ``initlab compare`` command that reruns this comparison."""
    parts = ["initlab compare", f"--data {cfg.data}", f"--model {cfg.model}",
             f"--depth {cfg.depth}", f"--width {cfg.width}", f"--activation {cfg.activation}",
             f"--inits {','.join(cfg.inits)}", f"--epochs {cfg.epochs}", f"--seeds {cfg.seeds}"]
    if cfg.lr_grid:
        parts.append("--lr-grid " + ",".join(f"{v:g}" for v in cfg.lr_grid))
    else:
        parts.append(f"--lr {cfg.lr:g}")
    parts += [f"--optimizer {cfg.optimizer}", f"--batch-size {cfg.batch_size}"]
    if cfg.n_train is not None:
        parts.append(f"--n-train {cfg.n_train}")
    if cfg.data_dir:
        parts.append(f"--data-dir {cfg.data_dir}")
    parts.append(f"--out {out}")
    return " \\\n    ".join(parts)
