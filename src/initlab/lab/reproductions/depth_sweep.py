"""Schoenholz, Gilmer, Ganguli, Sohl-Dickstein 2017, "Deep Information Propagation": the depth to
which a random tanh network can be trained is set by the correlation depth scale xi_c of mean
field theory (Poole et al. 2016): networks train when depth < ~6 xi_c, and xi_c diverges on the
critical line chi_1 = 1 (sigma_w^2 = 1.761 at sigma_b^2 = 0.05), the "edge of chaos".

Here: a grid of sigma_w^2 x depth; weights N(0, sigma_w^2 / fan_in) (``variance_scaling(scale=
sigma_w^2, mode="fan_in", distribution="normal")``), biases N(0, sigma_b^2); each net trained
briefly; the training accuracy map with the 6 xi_c curve from :mod:`initlab.theory` overlaid.

With a learning-rate grid ``lrs`` (and ``n_val`` validation images), each cell's lr is chosen on
the validation split: the whole grid at the shallowest depth, then the ``n_neighbour_lrs`` rates
around that sigma_w^2's choice at the next smaller depth, widened while the choice sits at an edge
of those tried, and downwards while none learned (diverged or near chance:
:func:`~initlab.lab.reproductions._common.search_lrs`), and never above an lr that failed above
one that learned (:func:`~initlab.lab.reproductions._common.fails_above`); the map shows the training
accuracy at the chosen lr. A sigma_w^2 whose search learned at no lr down to the grid's smallest
(:func:`~initlab.lab.reproductions._common.search_failed`) is not trained at larger depths: those
cells are marked "not trained" (``skipped``) on the map, since a plain net does not become
trainable deeper. The full config does this on the MNIST subset (``--data-dir``) for 20
epochs, so that depths 100-300 resolve (at 10 epochs on digits nothing trains at depth 100), under
a time budget (``budget_hours`` per invocation; a spent budget saves what is done and lists the
cells left, ``--resume`` continues, an interrupted arm from its last epoch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._common import (
    Budget,
    Checkpoint,
    OutOfTime,
    Scheduler,
    fmt_pct,
    initialize,
    plt,
    search_failed,
    search_lrs,
    skipped_deeper,
    trimmed_lrs_planned,
)

NAME = "depth-sweep"
TITLE = "Schoenholz et al. 2017: trainable depth of tanh networks vs sigma_w^2 (6 xi_c)"
PAPER = ('S. S. Schoenholz, J. Gilmer, S. Ganguli, J. Sohl-Dickstein, "Deep Information '
         'Propagation", ICLR 2017 (fig. 5-6); B. Poole et al., "Exponential expressivity in deep '
         'neural networks through transient chaos", NeurIPS 2016')
PUBLISHED = {"rule": "trainable when depth < ~6 xi_c", "critical_sigma_w2_at_sigma_b2_0.05": 1.761}
DATA_NOTE = ("Schoenholz et al. train width-300 tanh nets up to depth 300 on MNIST and CIFAR-10 "
             "for many steps; the reduced config trains width-64 nets on scikit-learn's 8x8 "
             "digits for a few epochs (a coarse, cheap version of their map), the full one "
             "width-128 nets on the MNIST subset (--data-dir) for 20 epochs with the lr chosen "
             "on validation.")
#: what a run costs (1 thread, 2-core x86 VM); both resume with --resume
TIME_BUDGET = {"reduced": "about 10 s",
               "full": "at most about 4 CPU-hours (3 before the one widening step per "
                       "trimmed cell planned_arms counts: 224 arms instead of 175; less as "
                       "the cells deeper than a sigma_w^2's failure are skipped), in sessions "
                       "of budget_hours"}


@dataclass(frozen=True)
class Config:
    sigma_w2: tuple[float, ...] = (0.5, 1.761, 4.0)
    sigma_b2: float = 0.05
    depths: tuple[int, ...] = (4, 40)
    width: int = 64
    epochs: int = 3
    lr: float = 0.002             # 0.01 is too large for the deepest critical nets
    momentum: float = 0.9
    batch_size: int = 64
    seed: int = 0
    dataset: str = "digits"       # "mnist" with --data-dir
    n_val: int = 0                # validation images (needed with lrs)
    lrs: tuple[float, ...] = ()   # () trains every cell at lr; else chosen per cell on val
    n_neighbour_lrs: int = 3      # lrs a search starts from after the shallowest depth
                                  # (widened while the choice is at an edge)
    budget_hours: float | None = None  # per invocation; None: no limit


def config(full: bool = False) -> Config:
    """The reduced config (default), or with ``full`` the longer map (:data:`TIME_BUDGET`)."""
    if full:
        return Config(sigma_w2=(0.5, 1.0, 1.3, 1.761, 2.2, 3.0, 4.0),
                      depths=(10, 20, 40, 70, 100, 150, 200, 300), width=128, epochs=20,
                      dataset="mnist", n_val=1000, lrs=(1e-4, 3e-4, 1e-3, 3e-3),
                      budget_hours=6.0)
    return Config()


def trainable_depth(sigma_w2: float, sigma_b2: float) -> float | None:
    """6 xi_c from :func:`initlab.theory.meanfield.mean_field` (None when the theory module is
    not installed; ``inf`` on the critical line)."""
    try:
        from ...theory.meanfield import mean_field
    except ImportError:
        return None
    return float(mean_field(sigma_w2, sigma_b2, "tanh").max_trainable_depth)


def train_one(sw2: float, depth: int, cfg: Config, data, lr: float | None = None,
              part=None, budget: Budget | None = None) -> dict:
    """One net at (sigma_w^2, depth), trained at ``lr`` (default ``cfg.lr``); ``part``: its
    per-epoch checkpoint; ``budget`` is checked after every epoch."""
    from ... import get
    from ..models import ModelConfig, build_model
    from ..train import TrainConfig, train

    model = build_model(ModelConfig(kind="mlp", depth=depth, width=cfg.width, activation="tanh",
                                    in_shape=(data.n_features,), n_classes=data.n_classes))
    w = get("variance_scaling", scale=sw2, mode="fan_in", distribution="normal")
    b = get("normal", std=math.sqrt(cfg.sigma_b2))
    initialize(model, w, b, seed=cfg.seed)
    lr = cfg.lr if lr is None else lr
    # only the final numbers are used: measuring at init and at the end gives the same ones
    tc = TrainConfig(optimizer="sgd", lr=lr, momentum=cfg.momentum,
                     batch_size=cfg.batch_size, epochs=cfg.epochs, eval_every=cfg.epochs or 1)
    hist = train(model, data, tc, seed=cfg.seed, checkpoint=part,
                 on_epoch=None if budget is None else lambda rec: budget.check())
    return {"sigma_w2": sw2, "depth": depth, "lr": lr, "train_acc": hist[-1]["train_acc"],
            "val_acc": hist[-1]["val_acc"], "test_acc": hist[-1]["test_acc"]}


def planned_arms(cfg: Config) -> int:
    if not cfg.lrs:
        return len(cfg.sigma_w2) * len(cfg.depths)
    k = trimmed_lrs_planned(cfg.lrs, cfg.n_neighbour_lrs)  # with one possible widening step
    return len(cfg.sigma_w2) * (len(cfg.lrs) + k * (len(cfg.depths) - 1))


def run(cfg: Config, *, data_dir=None, quiet: bool = False,
        checkpoint: Checkpoint | None = None) -> dict:
    """Run every arm the budget allows (finished arms come from ``checkpoint``)."""
    from ..data import load_dataset
    from ..progress import progress_bar

    ck = checkpoint or Checkpoint(None, {})
    data = load_dataset(cfg.dataset, seed=0, data_dir=data_dir if cfg.dataset == "mnist" else None,
                        n_val=cfg.n_val)
    budget = Budget(cfg.budget_hours)
    bar = progress_bar(total=planned_arms(cfg), desc=NAME, unit="arm", quiet=quiet)
    sched = Scheduler(ck, budget, bar, NAME)
    grid, remaining = [], []
    try:
        for sw in cfg.sigma_w2:
            prev = None    # this sigma_w^2's lr at the previous depth
            failed = None  # the depth where no lr learned (search_failed): deeper is skipped
            for d in sorted(cfg.depths):
                if failed is not None:
                    sched.skip([_arm_key(sw, d, lr) for lr in cfg.lrs],
                               trimmed_lrs_planned(cfg.lrs, cfg.n_neighbour_lrs))
                    grid.append({"sigma_w2": sw, "depth": d, "lr": None, "train_acc": None,
                                 "val_acc": None, "test_acc": None, "lrs_tried": [],
                                 "skipped": skipped_deeper(failed)})
                    continue
                try:
                    if prev is False:
                        raise OutOfTime  # the smaller depth's lr search is not done
                    grid.append(_cell(sched, sw, d, prev, cfg, data, budget))
                    prev = grid[-1]["lr"]
                    if grid[-1].pop("failed", False):
                        failed = d
                except OutOfTime:
                    remaining.append(f"sw2={sw:g}/d={d}")
                    prev = False
    finally:
        bar.close()
    theory = {str(sw): trainable_depth(sw, cfg.sigma_b2) for sw in cfg.sigma_w2}
    deepest = max(cfg.depths)
    headline = [f"depth {deepest}: " + ", ".join(
        f"sw2={g['sigma_w2']:g} acc " + ("not trained" if g.get("skipped") else
                                         fmt_pct(g["train_acc"]))
        for g in grid if g["depth"] == deepest)]
    if all(v is not None for v in theory.values()):
        headline.append("6 xi_c: " + ", ".join(f"sw2={k}: {v:.1f}" for k, v in theory.items()))
    if remaining:
        headline.append(f"budget spent: {len(remaining)} cell(s) remain; rerun with --resume")
    return {"case": NAME, "config": cfg, "grid": grid, "six_xi_c": theory,
            "remaining": remaining, "complete": not remaining,
            "published": PUBLISHED, "data_note": DATA_NOTE, "headline": headline}


def _arm_key(sw: float, d: int, lr: float) -> str:
    return f"{sw}/{d}/lr={lr:g}"


def _cell(sched: Scheduler, sw: float, d: int, prev_lr, cfg: Config, data, budget) -> dict:
    """The cell (sw, d): one arm at ``cfg.lr``, or the lr chosen on validation."""
    def arm(lr, key):
        return sched.run(key, lambda part: train_one(sw, d, cfg, data, lr, part, budget))

    if not cfg.lrs:
        return arm(cfg.lr, f"{sw}/{d}")
    search, best = search_lrs(cfg.lrs, lambda lr: arm(lr, _arm_key(sw, d, lr)),
                              around=prev_lr, k=cfg.n_neighbour_lrs, chance=data.chance)
    return {**search[best], "lrs_tried": list(search),
            "failed": search_failed(search, cfg.lrs, data.chance)}


def report(results: dict):
    """The HTML report of ``results`` (as saved in results.json): ours beside the published."""
    from ...report.html import HtmlReport

    cfg = results["config"]
    rep = HtmlReport(TITLE, PAPER)
    rep.paragraph(DATA_NOTE, note=True)
    sws, depths = cfg["sigma_w2"], cfg["depths"]
    if results.get("remaining"):
        rep.paragraph(f"Incomplete: the time budget ({cfg.get('budget_hours')} h) was spent; "
                      f"cells left: {', '.join(results['remaining'])}. Rerun with --resume.",
                      note=True)

    cells = {(g["sigma_w2"], g["depth"]): g for g in results["grid"]}

    def value(sw, d):
        g = cells.get((sw, d))
        return np.nan if g is None or g["train_acc"] is None else g["train_acc"]

    def shown(sw, d):
        return "not trained" if cells.get((sw, d), {}).get("skipped") else value(sw, d)

    acc = np.array([[value(sw, d) for sw in sws] for d in depths])
    skipped = [(i, j) for j, d in enumerate(depths) for i, sw in enumerate(sws)
               if cells.get((sw, d), {}).get("skipped")]
    lr_note = (f"the lr of each cell chosen on {cfg.get('n_val')} validation images from "
               f"{list(cfg['lrs'])}" if cfg.get("lrs") else f"lr {cfg['lr']:g}")
    rep.table(["depth"] + [f"sw2={sw:g}" for sw in sws],
              [[d] + [shown(sw, d) for sw in sws] for d in depths],
              caption=f"Training accuracy after {cfg['epochs']} epochs (sigma_b^2 = "
                      f"{cfg['sigma_b2']}; {lr_note})" + (
                          "; not trained: no lr learned at a smaller depth of that sigma_w^2"
                          if skipped else ""))
    theory = results["six_xi_c"]
    if all(v is not None for v in theory.values()):
        rep.table(["sigma_w^2", "6 xi_c (mean field)"], [[float(k), v] for k, v in theory.items()])
    else:
        rep.paragraph("initlab.theory is not installed: no 6 xi_c line.")
    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(7, 4.5))
    mesh = ax.pcolormesh(np.arange(len(sws) + 1) - 0.5, np.arange(len(depths) + 1) - 0.5, acc,
                         vmin=0.0, vmax=1.0, cmap="viridis", shading="flat")
    fig.colorbar(mesh, ax=ax, label="training accuracy")
    for i, j in skipped:  # not trained (the same sigma_w^2 failed at a smaller depth)
        ax.text(i, j, "x", ha="center", va="center", color="#888", fontsize=11)
    ax.set_xticks(range(len(sws)), [f"{s:g}" for s in sws])
    ax.set_yticks(range(len(depths)), [str(d) for d in depths])
    if all(v is not None for v in theory.values()):
        # the 6 xi_c curve in grid coordinates (depth interpolated between grid rows)
        ys = [np.interp(min(v, depths[-1] * 10), depths, range(len(depths)))
              if math.isfinite(v) else len(depths) - 0.5 for v in theory.values()]
        ax.plot(range(len(sws)), ys, "w--", lw=2, label="6 xi_c (mean field)")
        # above the axes: inside, it would cover the top row's cells
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.01), fontsize=9, facecolor="#555",
                  labelcolor="w", framealpha=1.0)
    ax.set_xlabel("sigma_w^2")
    ax.set_ylabel("depth")
    rep.figure(fig, "Trainable depth map (grid cells are not to scale)" + (
        "; x: not trained, the same sigma_w^2 learned at no lr at a smaller depth"
        if skipped else ""))
    return rep
