"""The HTML report of a comparison, in the one report design of :mod:`initlab.report.html`:

1. Verdict: which inits trained, how fast, and the test-accuracy curves that show it;
2. Findings: the init doctor's findings at init for each init, with their severity;
3. At initialization: layer x init heatmaps of the activation std, the back-propagated gradient
   norm and the saturated fraction (:func:`initlab.report.figures.layer_heatmaps`), the std
   against depth and per-layer histograms on shared axes (Glorot & Bengio 2010, Figs. 3 and 6);
4. the tables behind them, folded (results, lr grid, per-layer statistics, the doctor's tables,
   what each parameter received);
5. Reproduce: a command that works as pasted (it names a new folder).

Every figure draws each init in the same colour (:mod:`initlab.report.palette`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..core.activations import get_activation
from ..core.validation import fail
from ..diagnostics.stats import NEAR_BOUND, SATURATION_THRESHOLD, output_saturation
from ..report.figures import curves, integer_ticks, layer_heatmaps, legend_outside, mean_band
from ..report.figures import histograms as _hist_figure
from ..report.html import HtmlReport, pyplot
from ..report.palette import init_colors, init_markers
from .compare import CompareResult, format_table, make_initialized_model, takeaways
from .train import layer_activations

N_STATS = 512  # training examples forwarded for the statistics at init


def _series(res: CompareResult, key: str) -> dict:
    cfg = res.config
    out = {}
    for init in cfg.inits:
        lr = res.best_lr[init]
        grid = np.full((cfg.seeds, cfg.epochs + 1), np.nan)
        for r in res.records:
            if r["init"] == init and r["lr"] == lr and r.get(key) is not None:
                grid[r["seed"], r["epoch"]] = r[key]
        if not np.all(np.isnan(grid)):
            out[init] = (np.arange(cfg.epochs + 1), *mean_band(grid))
    return out


def _labels(res: CompareResult) -> dict[str, str]:
    one = len(res.config.lrs) == 1
    return {i: i if one else f"{i} (lr {res.best_lr[i]:g})" for i in res.config.inits}


def accuracy_figure(res: CompareResult):
    """The verdict's picture: test accuracy per epoch for each init, target dotted."""
    cfg = res.config
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9.5, 3.6))
    curves(ax, _series(res, "test_acc"), labels=_labels(res))
    ax.axhline(cfg.target_acc, color="#444", lw=0.9, ls=":", label=f"target {cfg.target_acc:.0%}")
    ax.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1.02),
           title="Test accuracy per epoch (mean over seeds; band: min to max)")
    integer_ticks(ax, cfg.epochs + 1, start=0)
    ax.grid(alpha=0.3)
    legend_outside(ax)
    return fig


def loss_figure(res: CompareResult):
    cfg = res.config
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9.5, 3.3))
    curves(ax, _series(res, "train_loss"), labels=_labels(res))
    ax.set(xlabel="epoch", ylabel="training loss", yscale="log",
           title="Training loss per epoch (mean over seeds; band: min to max)")
    integer_ticks(ax, cfg.epochs + 1, start=0)
    ax.grid(alpha=0.3, which="both")
    legend_outside(ax)
    return fig


def verdict_lines(res: CompareResult) -> list[str]:
    """Which inits trained (reached the target accuracy), how fast, which did not."""
    cfg = res.config
    rows = res.summary
    ep = f"{cfg.epochs} epoch" + ("s" if cfg.epochs != 1 else "")
    trained = sorted((r for r in rows if r["epochs_to_target"] is not None),
                     key=lambda r: (r["epochs_to_target"], -r["acc_mean"]))
    failed = [r for r in rows if r["epochs_to_target"] is None]
    out = []
    if trained:
        parts = []
        for r in trained:
            seeds = "" if r["reached"] == r["seeds"] else f", {r['reached']}/{r['seeds']} seeds"
            parts.append(f"{r['init']} in {r['epochs_to_target']:g} epoch"
                         f"{'s' if r['epochs_to_target'] != 1 else ''} "
                         f"({100 * r['acc_mean']:.1f}% at the end{seeds})")
        out.append(f"Trained to {cfg.target_acc:.0%} test accuracy, fastest first: "
                   + "; ".join(parts) + ".")
    if failed:
        chance = res.data.chance if getattr(res.data, "n_classes", 0) else None
        parts = []
        for r in failed:
            acc = "no result" if math.isnan(r["acc_mean"]) else f"{100 * r['acc_mean']:.1f}%"
            parts.append(f"{r['init']} ({acc})")
        tail = f"; chance is {100 * chance:.0f}%" if chance else ""
        out.append(f"Did not reach {cfg.target_acc:.0%} in {ep}: " + ", ".join(parts) + tail
                   + ".")
    out += [t for t in takeaways(rows, cfg)[1:]]
    return out


def _init_stats(res: CompareResult):
    """Per init (seed 0): activations by layer at init, apply's report, the doctor's report (or
    the text of why it could not run)."""
    out = {}
    x = res.data.x_train[:N_STATS]
    for init in res.config.inits:
        model, report = make_initialized_model(res.config, res.data, init, 0)
        acts = layer_activations(model, x)
        out[init] = (acts, report, _doctor(model, x, res.data.y_train[:N_STATS], res.config))
    return out


def _doctor(model, x, y, cfg):
    """The doctor's report at init (cross-entropy backward on the probe batch), or a string
    saying why it could not run."""
    import torch
    import torch.nn.functional as F

    from ..diagnostics import doctor

    batch = torch.from_numpy(np.ascontiguousarray(x))
    target = torch.from_numpy(np.ascontiguousarray(y))
    loss = F.cross_entropy if cfg.loss == "cross_entropy" else None
    try:
        return doctor(model, batch, loss_fn=loss, target=target if loss else None)
    except Exception as exc:  # noqa: BLE001 (the report still renders without it)
        return f"(the doctor could not run: {type(exc).__name__}: {exc})"


def heatmap_figure(stats: dict):
    """Layer x init heatmaps of the doctor's activation std, gradient norm and saturation."""
    std: dict[str, list[float | None]] = {}
    grad: dict[str, list[float | None]] = {}
    sat: dict[str, list[float | None]] = {}
    for init, (acts, _, doc) in stats.items():
        if isinstance(doc, str) or doc is None:
            std[init] = [float(a.std()) for a in acts.values()]
            grad[init], sat[init] = [], []
            continue
        std[init] = [s.h_std if s.h_std is not None else s.z_std for s in doc.layers]
        grad[init] = [s.grad_out_norm for s in doc.layers]
        sat[init] = [s.saturated for s in doc.layers]
    return layer_heatmaps([
        ("std of each layer's output at init (activation; the output layer: logits)", std, "log"),
        ("back-propagated gradient |dL/dz| per example at init", grad, "log"),
        (f"fraction of saturated units at init (|f'(u)| < {SATURATION_THRESHOLD:.0%} of its peak; "
         "bounded activations only)", sat, "fraction"),
    ])


def std_vs_depth_figure(res: CompareResult, stats):
    plt = pyplot()
    inits = res.config.inits
    colors, markers = init_colors(inits), init_markers(inits)
    fig, ax = plt.subplots(figsize=(9.5, 3.4))
    n = 1
    for init in inits:
        stds = [float(a.std()) for a in stats[init][0].values()]
        n = max(n, len(stds))
        ys = [s if s > 0 else np.nan for s in stds]
        ax.plot(range(1, len(stds) + 1), ys, color=colors[init], marker=markers[init], ms=4,
                label=init)
    ax.set(xlabel="hidden layer", ylabel="std of activations", yscale="log",
           title="Activation std at init vs depth (seed 0)")
    integer_ticks(ax, n)
    ax.grid(alpha=0.3, which="both")
    legend_outside(ax)
    return fig


def histogram_figure(res: CompareResult, stats):
    bounds = get_activation(res.config.activation).bounds  # None: the data's own range
    return _hist_figure({i: list(stats[i][0].values()) for i in res.config.inits}, bounds=bounds)


def _findings(stats) -> list[tuple[str, str]]:
    items, clean = [], []
    for init, (_, _, doc) in stats.items():
        if isinstance(doc, str):
            items.append(("info", f"{init}: {doc}"))
        elif not doc.findings:
            clean.append(init)
        for f in [] if isinstance(doc, str) else doc.findings:
            items.append((f.severity, f"{init}: {f.text}"))
    if clean:
        items.append(("ok", f"No finding at init for {', '.join(clean)}."))
    return items


def write_report(res: CompareResult, path: str | Path | None = None, *,
                 command: str = "compare") -> Path:
    """Write ``report.html`` for a finished comparison (default: in its output directory).
    ``command`` (``"compare"`` or ``"demo"``) is the one the Reproduce line reruns."""
    if path is not None:
        path = Path(path)
    elif res.out is not None:
        path = Path(res.out) / "report.html"
    else:
        raise fail("path", "is needed for a result without an output directory (its `out` is "
                   "None)", path, "pass write_report(res, 'report.html').")
    return build_report(res, command=command).save(path)


def build_report(res: CompareResult, *, command: str = "compare") -> HtmlReport:
    """The :class:`~initlab.report.html.HtmlReport` of a comparison (see the module doc)."""
    cfg = res.config
    title = (f"initlab {command}: {cfg.model} depth {cfg.depth} width {cfg.width} "
             f"{cfg.activation} on {cfg.data}")
    rep = HtmlReport(title, subtitle="Which initialization makes this network train, and how "
                                     "fast? Same data, model, optimizer and seeds for every "
                                     "initialization.")
    rep.verdict(verdict_lines(res), accuracy_figure(res),
                "Dotted: the target accuracy. Each init has the same colour in every figure.")
    stats = _init_stats(res)
    rep.heading("Findings at initialization (the init doctor, seed 0)")
    rep.findings(_findings(stats))

    rep.heading("At initialization: per-layer statistics")
    n = min(N_STATS, len(res.data.y_train))
    rep.paragraph(f"Measured on {n} training examples, seed 0. A signal whose std shrinks or "
                  "grows with depth makes deep networks hard to train; saturated units of a "
                  "bounded activation (tanh, sigmoid) pile up at the ends of the histograms.")
    rep.figure(heatmap_figure(stats), "Layer x init: the colour is the value (log scale for "
               "std and gradient); grey cells were not measured.")
    rep.figure(std_vs_depth_figure(res, stats), "Standard deviation of activations per layer.")
    rep.figure(histogram_figure(res, stats), "Activation histograms per layer at init; every "
               "panel has the same axes (Glorot & Bengio 2010 style).")

    rep.heading("Training")
    rep.figure(loss_figure(res), "Training loss per epoch.")
    _tables(rep, res, stats)

    rep.heading("Setup")
    lr_text = (f"learning rate chosen per init from the grid {list(cfg.lr_grid)} by mean final "
               "validation accuracy" if cfg.lr_grid else f"learning rate {cfg.lr:g}")
    rep.paragraph(f"Data: {res.data.summary()}. {res.data.info}.")
    rep.paragraph(f"Model: {cfg.model}, {cfg.depth} hidden layers of width {cfg.width}, "
                  f"{cfg.activation}, bias {'on' if cfg.bias else 'off'}. Training: "
                  f"{cfg.optimizer} (momentum {cfg.momentum:g}), {lr_text}, batch "
                  f"{cfg.batch_size}, weight decay {cfg.weight_decay:g}, {cfg.loss} loss, "
                  f"{cfg.epochs} epochs, seeds 0..{cfg.seeds - 1}.")
    rep.command(command_line(cfg, rerun_out(res.out), command=command),
                note="Reruns this experiment into a new folder (the one above is taken).")
    return rep


def _tables(rep: HtmlReport, res: CompareResult, stats) -> None:
    cfg = res.config
    with rep.details("Results table (final epoch, mean and sample std over seeds)"):
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
                   "act std last layer"], rows)
        rep.preformatted(format_table(res.summary, cfg))
    if cfg.lr_grid:
        with rep.details("Learning-rate grid: mean final validation accuracy (%)"):
            grid_rows = []
            for init in cfg.inits:
                row: list[str | float | None] = [init]
                for lr in cfg.lrs:
                    fin = [r for r in res.records if r["init"] == init and r["lr"] == lr
                           and r["epoch"] == cfg.epochs and r.get("val_acc") is not None]
                    row.append(100 * float(np.mean([r["val_acc"] for r in fin])) if fin else None)
                grid_rows.append(row)
            rep.table(["init", *(f"lr {lr:g}" for lr in cfg.lrs)], grid_rows)
    with rep.details("Per-layer activation statistics at init (seed 0)"):
        table = []
        for init in cfg.inits:
            for i, (name, a) in enumerate(stats[init][0].items()):
                table.append([init, f"{i + 1} ({name})", float(a.mean()), float(a.std()),
                              float(np.mean(np.abs(a) < 1e-6)),
                              output_saturation(a, cfg.activation)])
        rep.table(["init", "layer", "mean", "std", "fraction zero",
                   f"fraction saturated (within {NEAR_BOUND:g} of a bound)"], table)
    docs = {k: v[2] for k, v in stats.items() if v[2] is not None and not isinstance(v[2], str)}
    if docs:
        with rep.details("The init doctor's per-layer tables (seed 0)"):
            for init, doc in docs.items():
                rep.heading(init, level=4)
                rep.preformatted(doc.table())
    reports = {k: v[1] for k, v in stats.items() if v[1] is not None}
    if reports:
        with rep.details("What each parameter received (initlab.apply's report, seed 0)"):
            for init, r in reports.items():
                rep.heading(init, level=4)
                text = str(r).splitlines()
                rep.preformatted("\n".join(text[:60] + (["..."] if len(text) > 60 else [])))


def rerun_out(out) -> str:
    """A folder for the Reproduce command: the first free ``STEM-2``, ``STEM-3``... beside
    ``OUT`` (``OUT`` itself holds these results; ``STEM`` is ``OUT`` without a ``-N`` suffix)."""
    import re

    from .results import next_free

    if out is None:
        return "runs/compare-rerun"
    base = Path(out)
    m = re.fullmatch(r"(.+)-(\d+)", base.name)
    stem = base.with_name(m.group(1)) if m else base
    return str(next_free(stem) if next_free(stem) != base else _after(stem, base))


def _after(stem: Path, taken: Path) -> Path:
    k = 2
    while True:
        cand = stem.with_name(f"{stem.name}-{k}")
        if cand != taken and (not cand.exists() or (cand.is_dir() and not any(cand.iterdir()))):
            return cand
        k += 1


def command_line(cfg, out, *, command: str = "compare") -> str:
    """The ``initlab compare`` (or ``initlab demo``) command that reruns this comparison."""
    if command == "demo":
        return f"initlab demo --out {out}"
    parts = ["initlab compare", f"--data {cfg.data}", f"--model {cfg.model}",
             f"--depth {cfg.depth}", f"--width {cfg.width}", f"--activation {cfg.activation}",
             f"--inits {','.join(cfg.inits)}", f"--epochs {cfg.epochs}", f"--seeds {cfg.seeds}"]
    if cfg.lr_grid:
        parts.append("--lr-grid " + ",".join(f"{v:g}" for v in cfg.lr_grid))
    else:
        parts.append(f"--lr {cfg.lr:g}")
    parts += [f"--optimizer {cfg.optimizer}", f"--momentum {cfg.momentum:g}",
              f"--batch-size {cfg.batch_size}", f"--loss {cfg.loss}",
              f"--target-acc {cfg.target_acc:g}", f"--channels {cfg.channels}",
              f"--lsuv-batch {cfg.lsuv_batch}", f"--data-seed {cfg.data_seed}"]
    if cfg.weight_decay:
        parts.append(f"--weight-decay {cfg.weight_decay:g}")
    if not cfg.bias:
        parts.append("--no-bias")
    if cfg.n_train is not None:
        parts.append(f"--n-train {cfg.n_train}")
    if cfg.n_val is not None:
        parts.append(f"--n-val {cfg.n_val}")
    if cfg.data_dir:
        parts.append(f"--data-dir {cfg.data_dir}")
    parts.append(f"--out {out}")
    return " \\\n    ".join(parts)


def compare_result_html(result) -> str:
    """What ``CompareResult._repr_html_`` shows in Jupyter: the compare report, figures inline."""
    return build_report(result).fragment()
