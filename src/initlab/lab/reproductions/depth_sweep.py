"""Schoenholz, Gilmer, Ganguli, Sohl-Dickstein 2017, "Deep Information Propagation": the depth to
which a random tanh network can be trained is set by the correlation depth scale xi_c of mean
field theory (Poole et al. 2016): networks train when depth < ~6 xi_c, and xi_c diverges on the
critical line chi_1 = 1 (sigma_w^2 = 1.761 at sigma_b^2 = 0.05), the "edge of chaos".

Here: a grid of sigma_w^2 x depth; weights N(0, sigma_w^2 / fan_in) (``variance_scaling(scale=
sigma_w^2, mode="fan_in", distribution="normal")``), biases N(0, sigma_b^2); each net trained
briefly; the training accuracy map with the 6 xi_c curve from :mod:`initlab.theory` overlaid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._common import Checkpoint, initialize, load_data, plt, progress

NAME = "depth-sweep"
TITLE = "Schoenholz et al. 2017: trainable depth of tanh networks vs sigma_w^2 (6 xi_c)"
PAPER = ('S. S. Schoenholz, J. Gilmer, S. Ganguli, J. Sohl-Dickstein, "Deep Information '
         'Propagation", ICLR 2017 (fig. 5-6); B. Poole et al., "Exponential expressivity in deep '
         'neural networks through transient chaos", NeurIPS 2016')
PUBLISHED = {"rule": "trainable when depth < ~6 xi_c", "critical_sigma_w2_at_sigma_b2_0.05": 1.761}
DATA_NOTE = ("Schoenholz et al. train width-300 tanh nets up to depth 300 on MNIST and CIFAR-10 "
             "for many steps; here width-64 nets on scikit-learn's 8x8 digits for a few epochs "
             "(a coarse, cheap version of their map).")


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


def config(full: bool = False) -> Config:
    """The reduced config (default), or with ``full`` the published-length one."""
    if full:
        return Config(sigma_w2=(0.5, 1.0, 1.3, 1.761, 2.2, 3.0, 4.0),
                      depths=(4, 10, 20, 40, 70, 100), epochs=10)
    return Config()


def trainable_depth(sigma_w2: float, sigma_b2: float) -> float | None:
    """6 xi_c from :func:`initlab.theory.meanfield.mean_field` (None when the theory module is
    not installed; ``inf`` on the critical line)."""
    try:
        from ...theory.meanfield import mean_field
    except ImportError:
        return None
    return float(mean_field(sigma_w2, sigma_b2, "tanh").max_trainable_depth)


def train_one(sw2: float, depth: int, cfg: Config, data) -> dict:
    from ... import get
    from ..models import ModelConfig, build_model
    from ..train import TrainConfig, train

    model = build_model(ModelConfig(kind="mlp", depth=depth, width=cfg.width, activation="tanh",
                                    in_shape=(data.n_features,), n_classes=data.n_classes))
    w = get("variance_scaling", scale=sw2, mode="fan_in", distribution="normal")
    b = get("normal", std=math.sqrt(cfg.sigma_b2))
    initialize(model, w, b, seed=cfg.seed)
    tc = TrainConfig(optimizer="sgd", lr=cfg.lr, momentum=cfg.momentum,
                     batch_size=cfg.batch_size, epochs=cfg.epochs)
    hist = train(model, data, tc, seed=cfg.seed)
    return {"sigma_w2": sw2, "depth": depth, "train_acc": hist[-1]["train_acc"],
            "test_acc": hist[-1]["test_acc"]}


def run(cfg: Config, *, data_dir=None, quiet: bool = False,
        checkpoint: Checkpoint | None = None) -> dict:
    """Run every arm of the case (finished arms come from ``checkpoint``); return the results."""
    ck = checkpoint or Checkpoint(None, {})
    data = load_data("digits", seed=0, data_dir=None)
    cells = [(sw, d) for sw in cfg.sigma_w2 for d in cfg.depths]
    grid = [ck.run(f"{sw}/{d}", lambda s=sw, dd=d: train_one(s, dd, cfg, data))
            for sw, d in progress(cells, desc=NAME, quiet=quiet)]
    theory = {str(sw): trainable_depth(sw, cfg.sigma_b2) for sw in cfg.sigma_w2}
    deepest = max(cfg.depths)
    headline = [f"depth {deepest}: " + ", ".join(
        f"sw2={g['sigma_w2']:g} acc {g['train_acc']:.2f}" for g in grid if g["depth"] == deepest)]
    if all(v is not None for v in theory.values()):
        headline.append("6 xi_c: " + ", ".join(f"sw2={k}: {v:.1f}" for k, v in theory.items()))
    return {"case": NAME, "config": cfg, "grid": grid, "six_xi_c": theory,
            "published": PUBLISHED, "data_note": DATA_NOTE, "headline": headline}


def report(results: dict):
    """The HTML report of ``results`` (as saved in results.json): ours beside the published."""
    from ...report.html import HtmlReport

    cfg = results["config"]
    rep = HtmlReport(TITLE, PAPER)
    rep.paragraph(DATA_NOTE, note=True)
    sws, depths = cfg["sigma_w2"], cfg["depths"]
    acc = np.array([[next(g["train_acc"] for g in results["grid"]
                          if g["sigma_w2"] == sw and g["depth"] == d) for sw in sws]
                    for d in depths])
    rep.table(["depth"] + [f"sw2={sw:g}" for sw in sws],
              [[d] + list(row) for d, row in zip(depths, acc)],
              caption=f"Training accuracy after {cfg['epochs']} epochs (sigma_b^2 = {cfg['sigma_b2']})")
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
    ax.set_xticks(range(len(sws)), [f"{s:g}" for s in sws])
    ax.set_yticks(range(len(depths)), [str(d) for d in depths])
    if all(v is not None for v in theory.values()):
        # the 6 xi_c curve in grid coordinates (depth interpolated between grid rows)
        ys = [np.interp(min(v, depths[-1] * 10), depths, range(len(depths)))
              if math.isfinite(v) else len(depths) - 0.5 for v in theory.values()]
        ax.plot(range(len(sws)), ys, "w--", lw=2, label="6 xi_c")
        ax.legend(loc="upper right")
    ax.set_xlabel("sigma_w^2")
    ax.set_ylabel("depth")
    rep.figure(fig, "Trainable depth map (grid cells are not to scale)")
    return rep
