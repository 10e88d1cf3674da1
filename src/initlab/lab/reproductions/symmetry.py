"""Symmetry breaking: why weights cannot all start equal.

If every hidden unit of a layer starts with the same incoming weights, bias and outgoing weights,
they compute the same function, receive the same gradient and so stay identical for ever: the
layer behaves as one unit however wide it is (Rumelhart, Hinton, Williams 1986, "Learning
representations by back-propagating errors"; the standard argument of Goodfellow, Bengio,
Courville 2016, "Deep Learning", sec. 8.4). Shown here on a one-hidden-layer sigmoid net (with
sigmoid the zero-initialized net does learn, unlike tanh/ReLU where zero init passes no
signal): the number of distinct hidden units stays 1 through training from zeros, and is the
full width from a small random init. Counted by our tolerance check and, when
``initlab.diagnostics`` is installed, by the init doctor's duplicate-unit check.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...report.palette import init_colors
from ._common import Checkpoint, initialize, linear_layers, load_data, plt, progress

NAME = "symmetry"
TITLE = "Symmetry: zero init keeps every hidden unit identical; small random init breaks it"
PAPER = ('Rumelhart, Hinton, Williams 1986, "Learning representations by back-propagating errors"; '
         'Goodfellow, Bengio, Courville 2016, "Deep Learning", sec. 8.4')
PUBLISHED = {"zeros": "all hidden units identical for ever (1 distinct unit)",
             "small_normal": "units differ from the start (width distinct units)"}
INITS: dict[str, tuple[str | dict[str, Any], str]] = {
    "zeros": ("zeros", "zeros"),
    "constant": ({"name": "constant", "params": {"value": 0.05}}, "zeros"),
    "small_normal": ("small_normal", "zeros")}
DATA_NOTE = ("The argument holds for any data; scikit-learn's 8x8 digits (standardized) are used.")


@dataclass(frozen=True)
class Config:
    width: int = 32               # hidden units
    activation: str = "sigmoid"
    inits: tuple[str, ...] = ("zeros", "constant", "small_normal")
    epochs: int = 5
    lr: float = 0.5
    batch_size: int = 32
    seed: int = 0
    rtol: float = 1e-6            # two units are the same when their parameters differ by less


def config(full: bool = False) -> Config:
    """The reduced config (default), or with ``full`` the published-length one."""
    return Config(epochs=30) if full else Config()


def distinct_units(model, rtol: float = 1e-6) -> int:
    """Number of distinct hidden units of a one-hidden-layer net: units i and j are duplicates
    when ``|p_i - p_j| <= rtol * max|p|`` elementwise, p = (incoming weights, bias, outgoing
    weights) of the unit."""
    first, second = linear_layers(model)[:2]
    p = np.hstack([first.weight.detach().double().numpy(),
                   first.bias.detach().double().numpy()[:, None],
                   second.weight.detach().double().numpy().T])
    tol = rtol * max(float(np.abs(p).max()), 1e-30)
    reps: list[np.ndarray] = []
    for row in p:
        if not any(np.all(np.abs(row - r) <= tol) for r in reps):
            reps.append(row)
    return len(reps)


def doctor_distinct_units(model, x: np.ndarray) -> int | None:
    """Distinct hidden units by the init doctor's duplicate-unit check (``initlab.diagnostics``:
    units whose weight row and bias are exactly equal); None when the doctor is not installed."""
    try:
        from ...diagnostics import doctor
    except ImportError:
        return None
    import torch

    first = doctor(model, torch.from_numpy(x), train=False).layers[0]
    return int(first.n_units - first.duplicate_units)


def train_one(init: str, cfg: Config, data) -> dict:
    from ... import from_dict, get
    from ..models import ModelConfig, build_model
    from ..train import TrainConfig, train

    model = build_model(ModelConfig(kind="mlp", depth=1, width=cfg.width,
                                    activation=cfg.activation, in_shape=(data.n_features,),
                                    n_classes=data.n_classes))
    w, b = INITS[init]
    weight = from_dict(w) if isinstance(w, dict) else get(w)
    path = initialize(model, weight, b, seed=cfg.seed)
    counts, doctor_counts = [], []
    probe = data.x_train[:64]

    def check(_rec):
        counts.append(distinct_units(model, cfg.rtol))
        doctor_counts.append(doctor_distinct_units(model, probe))

    tc = TrainConfig(optimizer="sgd", lr=cfg.lr, momentum=0.0, batch_size=cfg.batch_size,
                     epochs=cfg.epochs)
    hist = train(model, data, tc, seed=cfg.seed, on_epoch=check)
    return {"init": init, "init_path": path, "distinct_units": counts,
            "doctor_distinct_units": doctor_counts,
            "test_acc": [h["test_acc"] for h in hist], "train_loss": [h["train_loss"] for h in hist]}


def run(cfg: Config, *, data_dir=None, quiet: bool = False,
        checkpoint: Checkpoint | None = None) -> dict:
    """Run every arm of the case (finished arms come from ``checkpoint``); return the results."""
    ck = checkpoint or Checkpoint(None, {})
    data = load_data("digits", seed=0, data_dir=None)
    runs = [ck.run(init, functools.partial(train_one, init, cfg, data))
            for init in progress(cfg.inits, desc=NAME, quiet=quiet)]
    headline = [f"{r['init']:13s} distinct hidden units at init {r['distinct_units'][0]}, after "
                f"training {r['distinct_units'][-1]} of {cfg.width}; test acc "
                f"{r['test_acc'][-1]:.3f}" for r in runs]
    return {"case": NAME, "config": cfg, "runs": runs, "published": PUBLISHED,
            "data_note": DATA_NOTE, "headline": headline}


def report(results: dict):
    """The HTML report of ``results`` (as saved in results.json): ours beside the published."""
    from ...report.html import HtmlReport

    cfg = results["config"]
    rep = HtmlReport(TITLE, PAPER)
    rep.paragraph(DATA_NOTE, note=True)
    rep.paragraph("Distinct units: ours groups units whose (incoming weights, bias, outgoing "
                  f"weights) agree within {cfg['rtol']:g} of the largest parameter; the doctor's "
                  "duplicate-unit check (initlab.diagnostics, when installed) counts exactly "
                  "equal (weight row, bias) pairs of the first layer.")
    rep.table(["init", "distinct units at init", "after training", "doctor: at init",
               "doctor: after", "width", "test accuracy", "expected"],
              [[r["init"], r["distinct_units"][0], r["distinct_units"][-1],
                r["doctor_distinct_units"][0], r["doctor_distinct_units"][-1], cfg["width"],
                r["test_acc"][-1], PUBLISHED.get(r["init"], "as zeros (any constant)")]
               for r in results["runs"]])
    pyplot = plt()
    fig, (a1, a2) = pyplot.subplots(1, 2, figsize=(11, 4))
    colors = init_colors([r["init"] for r in results["runs"]])
    for r in results["runs"]:
        c = colors[r["init"]]
        a1.plot(r["distinct_units"], marker="o", color=c, label=r["init"])
        a2.plot(r["test_acc"], marker="o", color=c, label=r["init"])
    a1.set_ylabel("distinct hidden units")
    a2.set_ylabel("test accuracy")
    for a in (a1, a2):
        a.set_xlabel("epoch")
        a.xaxis.get_major_locator().set_params(integer=True)
        a.legend(fontsize=8)
        a.grid(alpha=0.3)
    rep.figure(fig, "Distinct hidden units and test accuracy per epoch")
    return rep
