"""Saxe, McClelland, Ganguli 2014, "Exact solutions to the nonlinear dynamics of learning in deep
linear neural networks": with random orthogonal weights, deep linear networks learn in a time
roughly independent of depth; with scaled Gaussian weights (Var = 1/fan_in) learning slows as
depth grows, because a product of Gaussian matrices has a spreading singular-value spectrum while a
product of orthogonal matrices keeps every singular value at 1.

Here: deep linear networks (no biases) of depth L = number of weight matrices, square hidden
layers, trained by full-batch gradient descent on the mean squared error to one-hot targets; the
learning rate is the best of a small grid per depth and init, written as lr0 / L (with orthogonal
weights each of the L layers contributes the same step to the end-to-end map, so lr0 / L keeps
that map's step size depth-independent). The measure: epochs until the training loss is within
a factor ``criterion`` of the least-squares minimum L* (computed in closed form).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ...report.palette import init_colors
from ._common import Checkpoint, initialize, load_data, plt, progress

NAME = "saxe-linear"
TITLE = "Saxe et al. 2014: deep linear networks, scaled Gaussian vs orthogonal init"
PAPER = ('A. M. Saxe, J. L. McClelland, S. Ganguli, "Exact solutions to the nonlinear dynamics of '
         'learning in deep linear neural networks", ICLR 2014')
PUBLISHED = {"orthogonal": "time to criterion roughly independent of depth",
             "scaled_gaussian": "time to criterion grows with depth"}
INITS = {"scaled_gaussian": "lecun_normal", "orthogonal": "orthogonal"}
DATA_NOTE = ("Saxe et al. train deep linear nets on MNIST; here scikit-learn's 8x8 digits "
             "(64 inputs, standardized, a subset of training images), hidden width 64 so every "
             "hidden layer is square, targets one-hot, mean squared error.")


@dataclass(frozen=True)
class Config:
    depths: tuple[int, ...] = (2, 8)       # weight matrices (Saxe: up to 100)
    width: int = 64
    n_train: int = 256
    lr0_grid: tuple[float, ...] = (0.5, 1.0)  # learning rate = lr0 / depth
    max_epochs: int = 200                  # full-batch steps before giving up
    criterion: float = 2.0                 # stop when loss <= criterion * L*
    seeds: tuple[int, ...] = (0,)


def config(full: bool = False) -> Config:
    """The reduced config (default), or with ``full`` the published-length one."""
    if full:
        return Config(depths=(2, 4, 8, 16, 32, 50), lr0_grid=(0.1, 0.25, 0.5, 1.0, 1.5),
                      max_epochs=1000, seeds=(0, 1))
    return Config()


def least_squares_loss(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """min_B mean((x B - onehot(y))^2) over outputs and examples (no bias, like the network)."""
    t = np.eye(k)[y]
    b, *_ = np.linalg.lstsq(x.astype(np.float64), t, rcond=None)
    return float(np.mean((x @ b - t) ** 2))


def epochs_to(losses, target: float) -> int | None:
    for i, v in enumerate(losses):
        if v is not None and v <= target:
            return i
    return None


def train_one(init: str, depth: int, lr0: float, seed: int, cfg: Config, data, target: float):
    from ..models import ModelConfig, build_model
    from ..train import TrainConfig, train

    model = build_model(ModelConfig(kind="linear", depth=depth - 1, width=cfg.width, bias=False,
                                    in_shape=(data.n_features,), n_classes=data.n_classes))
    initialize(model, INITS[init], "zeros", seed=seed)
    tc = TrainConfig(optimizer="sgd", lr=lr0 / depth, momentum=0.0, batch_size=len(data.y_train),
                     epochs=cfg.max_epochs, loss="mse")
    hist = train(model, data, tc, seed=seed)
    losses = [h["train_loss"] for h in hist]
    return {"epochs": epochs_to(losses, target), "loss": losses[::10]}


def run(cfg: Config, *, data_dir=None, quiet: bool = False,
        checkpoint: Checkpoint | None = None) -> dict:
    """Run every arm of the case (finished arms come from ``checkpoint``); return the results."""
    ck = checkpoint or Checkpoint(None, {})
    data = load_data("digits", seed=0, data_dir=None, n_train=cfg.n_train)
    l_star = least_squares_loss(data.x_train, data.y_train, data.n_classes)
    target = cfg.criterion * l_star
    arms = [(i, d, s) for i in INITS for d in cfg.depths for s in cfg.seeds]
    table = []
    for init, depth, seed in progress(arms, desc=NAME, quiet=quiet):
        tries = {lr0: ck.run(f"{init}/{depth}/{seed}/{lr0}",
                             functools.partial(train_one, init, depth, lr0, seed, cfg, data,
                                               target))
                 for lr0 in cfg.lr0_grid}
        reached = {lr: t["epochs"] for lr, t in tries.items() if t["epochs"] is not None}
        best = min(reached, key=lambda lr: reached[lr]) if reached else None
        table.append({"init": init, "depth": depth, "seed": seed, "best_lr0": best,
                      "epochs": reached.get(best) if best is not None else None,
                      "loss_curve": tries[best]["loss"] if best is not None else None})
    summary: dict[str, dict[str, float | None]] = {}
    per_seed: dict[str, dict[str, list]] = {}
    for init in INITS:
        summary[init], per_seed[init] = {}, {}
        for d in cfg.depths:
            ep = [r["epochs"] for r in table if r["init"] == init and r["depth"] == d]
            per_seed[init][str(d)] = ep
            summary[init][str(d)] = (None if any(e is None for e in ep) else float(np.mean(ep)))
    headline = [f"{i:16s} epochs to {cfg.criterion:g} L*: " + ", ".join(
        f"L={d}: {'>' + str(cfg.max_epochs) if v is None else f'{v:.0f}'}" for d, v in s.items())
        for i, s in summary.items()]
    return {"case": NAME, "config": cfg, "l_star": l_star, "target": target, "runs": table,
            "summary": summary, "per_seed": per_seed, "published": PUBLISHED, "data_note": DATA_NOTE,
            "headline": headline}


def report(results: dict):
    """The HTML report of ``results`` (as saved in results.json): ours beside the published."""
    from ...report.html import HtmlReport

    cfg = results["config"]
    rep = HtmlReport(TITLE, PAPER)
    rep.paragraph(DATA_NOTE, note=True)
    rep.paragraph(f"Least-squares minimum L* = {results['l_star']:.4g}; criterion: training loss "
                  f"<= {cfg['criterion']} L* = {results['target']:.4g}; learning rate lr0 / depth, "
                  f"lr0 the fastest of {cfg['lr0_grid']}; at most {cfg['max_epochs']} epochs.")
    depths = cfg["depths"]
    rows = []
    for init, s in results["summary"].items():
        rows.append([init] + [f"> {cfg['max_epochs']}" if s[str(d)] is None else s[str(d)]
                              for d in depths] + [PUBLISHED[init]])
    rep.table(["init"] + [f"L={d}" for d in depths] + ["Saxe et al."], rows,
              caption="Epochs (full-batch steps) to criterion, mean over seeds (> max: some seed "
                      "did not reach it)")
    rep.table(["init"] + [f"L={d}" for d in depths],
              [[init] + [", ".join("-" if e is None else str(e) for e in eps[str(d)])
                         for d in depths] for init, eps in results["per_seed"].items()],
              caption="Per seed (best learning rate of the grid; - = not reached)")
    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(6.5, 4))
    colors = init_colors(list(results["per_seed"]))
    for init, eps in results["per_seed"].items():
        pts = [(d, e) for d in depths for e in eps[str(d)] if e is not None]
        line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], "o", alpha=0.7, label=init,
                        color=colors[init])
        cap = [(d, cfg["max_epochs"]) for d in depths for e in eps[str(d)] if e is None]
        if cap:
            ax.plot([p[0] for p in cap], [p[1] for p in cap], "^", color=line.get_color(),
                    alpha=0.7, label=f"{init}: not reached")
    ax.set_xlabel("depth (weight matrices)")
    ax.set_ylabel("epochs to criterion")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    rep.figure(fig, "Learning time vs depth, one point per seed (triangles at the cap: not "
                    "reached within max_epochs)")
    return rep
