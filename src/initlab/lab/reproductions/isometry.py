"""Dynamical isometry (issue #11): deep plain tanh networks train when the singular values of
their Jacobian at init are all near 1, which orthogonal weights at the edge of chaos give and
Gaussian weights of the same variance do not (Pennington, Schoenholz, Ganguli 2017; Saxe et al.
2014); for CNNs, delta-orthogonal kernels (Xiao et al. 2018) train 50+ plain tanh conv layers.

Four arms:

* ``mlp``: a plain tanh MLP (width ``width``, no normalization, no residual connections) at each
  depth of ``depths`` x each init of ``inits``. Per cell (depth, init) the learning rate is chosen
  on the validation split (never the test split) from ``lrs`` with seed 0: the whole grid at the
  init's first depth, then the ``n_neighbour_lrs`` rates around the init's choice at the next
  smaller depth, widened while the choice sits at an edge of those tried, and downwards
  while none of them learned (each diverged or stayed near chance:
  :func:`~initlab.lab.reproductions._common.search_lrs`); tried from the smallest up, no lr
  above one that failed above one that learned
  (:func:`~initlab.lab.reproductions._common.fails_above`). The chosen lr is then
  run with every seed of ``seeds``; the test accuracy (mean over seeds) is reported. Depths >=
  ``deep_from`` run only ``deep_inits``. An init whose search learned at no lr down to the
  grid's smallest (:func:`~initlab.lab.reproductions._common.search_failed`) is not trained at
  larger depths (its cells say "not trained"; the spectrum is still measured): a plain net does
  not become trainable deeper, and at depth 1000 such a cell would cost hours. Beside it, the
  singular values of the hidden-to-hidden Jacobian of each (init, depth) model at init on real
  inputs (:func:`initlab.theory.jacobian.model_jacobian_spectrum`): Pennington et al.'s figure.
* ``cnn``: a plain tanh CNN of depth ``cnn_depth`` (3x3 convolutions, same padding, no batch
  norm, no residual) on the images average-pooled ``cnn_downsample`` x (MNIST 28 -> 14:
  :func:`initlab.lab.data.downsample`), delta-orthogonal (gain 1) vs Glorot vs He vs ``auto``
  (past 20 layers delta-orthogonal on the critical line), lr chosen the same way.
* ``relu``: the same plain MLP with ReLU at depth ``relu_depth`` (:data:`RELU_INITS`): He's
  Gaussian, orthogonal with He's gain, and ``auto``, which gives a deep ReLU stack looks-linear
  weights (Balduzzi et al. 2017: mirrored orthogonal blocks, the net linear at init), lr chosen
  the same way over the whole grid.
* ``relu_cnn``: the CNN with ReLU at depth ``relu_cnn_depth`` (:data:`RELU_CNN_INITS`; the full
  config only): He's Gaussian kernels, delta-orthogonal kernels with He's gain, and ``auto``,
  which gives a deep ReLU CNN looks-linear centre-tap kernels, lr chosen over ``cnn_lrs``.

Inits (:data:`INITS`): ``torch_default`` is the lab model as built (PyTorch's default, drawn by
:func:`~initlab.lab.models.build_model` from the seed); ``lsuv`` and ``auto`` get the first
``lsuv_batch`` training images; every other name is ``initlab.apply(model, name, seed=seed)``
(through :func:`initlab.lab.compare.init_model`). ``lecun`` (N(0, 1/fan_in)) is the Gaussian
control of ``orthogonal``: the same weight variance, Gaussian instead of Haar.

Order: the MLP cells below ``deep_from`` (shallow first), then the CNN, then the ReLU arms, then
the deep-only cells (an hour or more each), so a first session under the budget finishes
everything else.
Time: ``budget_hours`` bounds one invocation. When it is spent, the arm in progress stops after
its current epoch (saved in ``OUT/checkpoints/``), nothing more is scheduled, the results so far
are written and ``remaining`` lists the cells left; ``--resume`` continues (each invocation gets
the budget again).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._common import (
    Budget,
    Checkpoint,
    OutOfTime,
    Scheduler,
    fmt_pct,
    plt,
    search_failed,
    search_lrs,
    skipped_deeper,
    trimmed_lrs_planned,
)

NAME = "isometry"
TITLE = ("Dynamical isometry: deep plain tanh MLPs and CNNs, orthogonal vs Gaussian init, with "
         "the Jacobian spectrum at init")
PAPER = ('J. Pennington, S. S. Schoenholz, S. Ganguli, "Resurrecting the sigmoid in deep learning '
         'through dynamical isometry: theory and practice", NeurIPS 2017 (fig. 1, 3, 4); L. Xiao, '
         'Y. Bahri, J. Sohl-Dickstein, S. S. Schoenholz, J. Pennington, "Dynamical Isometry and a '
         'Mean Field Theory of CNNs: How to Train 10,000-Layer Vanilla Convolutional Neural '
         'Networks", ICML 2018; A. M. Saxe, J. L. McClelland, S. Ganguli, ICLR 2014')
PUBLISHED = {
    "mlp": "orthogonal weights at criticality give a Jacobian spectrum concentrated near 1 at "
           "any depth and train deep tanh nets much faster than Gaussian weights of the same "
           "variance, whose spectrum spreads with depth (Pennington et al. 2017, fig. 1, 4)",
    "cnn": "delta-orthogonal kernels train plain tanh CNNs of thousands of layers; Gaussian "
           "kernels of the same variance fail at depth (Xiao et al. 2018)",
}
DATA_NOTE = ("Pennington et al. train width-400 tanh nets of depth up to 200 on CIFAR-10 and "
             "Xiao et al. CNNs on MNIST/CIFAR-10 for many epochs; here the MNIST subset "
             "(--data-dir mnist10k.npz: 7,000 train / 1,000 validation / 2,000 test) in the full "
             "config, scikit-learn's 8x8 digits in the reduced one, and a 10-epoch budget.")
#: init name -> how it is applied (see the module docstring)
INITS = {
    "torch_default": "the lab model as built: PyTorch's default U(+-1/sqrt(fan_in))",
    "glorot": "initlab.apply(model, 'glorot'): U(+-sqrt(6/(fan_in+fan_out))), biases 0",
    "he": "initlab.apply(model, 'he'): N(0, 2/fan_in), biases 0",
    "lecun": "initlab.apply(model, 'lecun'): N(0, 1/fan_in), the Gaussian of orthogonal's variance",
    "orthogonal": "initlab.apply(model, 'orthogonal'): Haar orthogonal, gain 1, biases 0",
    "critical": "initlab.apply(model, 'critical'): tanh edge of chaos (sigma_w^2 1.761, "
                "sigma_b^2 0.05)",
    "auto": "initlab.apply(model, 'auto', batch=x): initlab's recommendation for the model",
    "lsuv": "initlab.apply(model, 'lsuv', batch=x): Mishkin & Matas 2016",
}
RELU_INITS = {
    "he": "initlab.apply(model, 'he'): N(0, 2/fan_in), biases 0",
    "orthogonal_he": "initlab.apply(model, 'auto', deep_relu='orthogonal'): orthogonal weights "
                     "with He's gain sqrt(2), LeCun readout, biases 0",
    "auto": "initlab.apply(model, 'auto'): looks-linear weights (Balduzzi et al. 2017), first "
            "[[V], [-V]], hidden [[V, -V], [-V, V]], readout [[V, -V]], biases 0",
}
#: the ReLU CNN's inits: the same names as :data:`RELU_INITS`, drawn as conv kernels
RELU_CNN_INITS = {
    "he": "initlab.apply(model, 'he'): N(0, 2/fan_in) kernels, biases 0",
    "orthogonal_he": "initlab.apply(model, 'auto', deep_relu='orthogonal'): delta-orthogonal "
                     "kernels with He's gain sqrt(2), LeCun readout, biases 0",
    "auto": "initlab.apply(model, 'auto'): looks-linear kernels, the mirrored orthogonal matrix "
            "at the centre tap (first, hidden; the dense readout after flatten folds back), "
            "biases 0",
}
CNN_INITS = {
    "delta_orthogonal": "delta-orthogonal 3x3 kernels (gain 1), orthogonal readout, biases 0",
    "glorot": "initlab.apply(model, 'glorot')",
    "he": "initlab.apply(model, 'he')",
    "auto": "initlab.apply(model, 'auto', batch=x): past 20 layers delta-orthogonal kernels on "
            "the tanh critical line at the isometric point for the model's depth, biases "
            "N(0, sigma_b2), LeCun readout (below: Glorot)",
}
LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
#: what a run costs (1 thread, 2-core x86 VM); both resume with --resume
TIME_BUDGET = {"reduced": "about 1 minute of CPU (digits; 54 s measured, the ReLU arm "
                          "included)",
               "full": "about 14 CPU-hours (MNIST subset; depth 1000 is 5.7 of them, 1.6 "
                       "the one widening step per trimmed cell planned_arms counts, 0.2 the "
                       "ReLU MLP, 0.7-1.3 the ReLU CNN, 0.3 the CNN's auto), in sessions of "
                       "budget_hours (6 h)"}


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"             # "mnist" with --data-dir (the 8k/2k file)
    n_val: int = 300                    # validation images taken from the training pool
    width: int = 64
    depths: tuple[int, ...] = (10, 50)  # hidden layers
    inits: tuple[str, ...] = ("torch_default", "glorot", "he", "lecun", "orthogonal",
                              "critical", "auto", "lsuv")
    deep_from: int = 1000               # depths >= deep_from run only deep_inits
    deep_inits: tuple[str, ...] = ("torch_default", "orthogonal", "auto")
    lrs: tuple[float, ...] = LRS
    n_neighbour_lrs: int = 3            # lrs a search starts from after the init's first
                                        # depth, widened while the choice is at an edge
    epochs: int = 4
    momentum: float = 0.9
    batch_size: int = 64
    seeds: tuple[int, ...] = (0, 1, 2)  # seeds[0] chooses the lr; all run at the chosen lr
    lsuv_batch: int = 256               # training images given to lsuv and auto
    spectrum_inputs: int = 4            # inputs of the Jacobian spectrum (one Jacobian each)
    cnn_depth: int = 10                 # 0: no CNN arm
    cnn_channels: int = 8
    cnn_inits: tuple[str, ...] = tuple(CNN_INITS)
    cnn_downsample: int = 1             # average-pooling factor of the images for the CNN
    cnn_epochs: int = 4
    cnn_lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    relu_depth: int = 50                # hidden layers of the ReLU arm; 0: no ReLU arm
    relu_inits: tuple[str, ...] = tuple(RELU_INITS)
    relu_cnn_depth: int = 0             # conv layers of the ReLU CNN arm (the CNN's channels,
                                        # downsampling, epochs and lrs); 0: no ReLU CNN arm
    relu_cnn_inits: tuple[str, ...] = tuple(RELU_CNN_INITS)
    budget_hours: float | None = None   # per invocation; None: no limit


def config(full: bool = False) -> Config:
    """The reduced config (default), or with ``full`` the issue's (:data:`TIME_BUDGET`)."""
    if full:
        return Config(dataset="mnist", n_val=1000, width=256, depths=(10, 50, 200, 1000),
                      epochs=10, cnn_depth=50, cnn_channels=16, cnn_downsample=2,
                      cnn_epochs=10, cnn_lrs=LRS, relu_cnn_depth=50, budget_hours=6.0)
    return Config()


#: fields added after runs were recorded, at the value that keeps the old behaviour: a run's
#: identity leaves them out there, so the folders recorded before them resume
IDENTITY_DEFAULTS = {"relu_cnn_depth": 0, "relu_cnn_inits": tuple(RELU_CNN_INITS)}
#: fields whose value only adds arms: a folder recorded before them resumes with its arms kept
ADDITIVE_FIELDS = ("relu_cnn_depth",)
#: kind -> (is a CNN, activation)
KINDS = {"mlp": (False, "tanh"), "relu": (False, "relu"), "cnn": (True, "tanh"),
         "relu_cnn": (True, "relu")}


# ----------------------------------------------------------------------------------- plan
def cells(cfg: Config) -> list[tuple[int, str]]:
    """The MLP cells (depth, init), shallow first (a cell's lr search needs the smaller depth's
    choice); depths >= ``deep_from`` only for ``deep_inits``."""
    return [(d, i) for d in sorted(cfg.depths) for i in cfg.inits
            if d < cfg.deep_from or i in cfg.deep_inits]


def previous_lr(cfg: Config, depth: int, init: str,
                chosen: dict[tuple[int, str], float]) -> float | None:
    """The lr cell (depth, init)'s search starts around: the init's choice at the next smaller
    depth it ran; None at its first depth (the whole of ``cfg.lrs`` is tried)."""
    prev = [d for d in sorted(cfg.depths) if d < depth and (d, init) in chosen]
    return chosen[(prev[-1], init)] if prev else None


def arm_key(arm: str, depth: int, init: str, lr: float, seed: int) -> str:
    return f"{arm}/d={depth}/{init}/lr={lr:g}/seed={seed}"


def planned_arms(cfg: Config) -> int:
    """Arms of the whole config: training runs (MLP and CNN) and one spectrum per MLP cell. A
    trimmed search counts one possible widening step (:func:`trimmed_lrs_planned`)."""
    seen: set[str] = set()
    n = len(cells(cfg))
    for _depth, init in cells(cfg):
        n += cell_training_arms(cfg, first=init not in seen)
        seen.add(init)
    if cfg.cnn_depth:
        n += len(cfg.cnn_inits) * (len(cfg.cnn_lrs) + len(cfg.seeds) - 1)
    if cfg.relu_depth:  # each init: its training runs and one spectrum
        n += len(cfg.relu_inits) * (len(cfg.lrs) + len(cfg.seeds))
    if cfg.relu_cnn_depth:
        n += len(cfg.relu_cnn_inits) * (len(cfg.cnn_lrs) + len(cfg.seeds))
    return n


def cell_training_arms(cfg: Config, *, first: bool) -> int:
    """The training arms :func:`planned_arms` counts for one MLP cell: the whole lr grid at an
    init's ``first`` depth, else a trimmed search, plus the other seeds at the chosen lr."""
    lrs = len(cfg.lrs) if first else trimmed_lrs_planned(cfg.lrs, cfg.n_neighbour_lrs)
    return lrs + len(cfg.seeds) - 1


# ----------------------------------------------------------------------------------- arms
def load(cfg: Config, data_dir):
    """The dataset of ``cfg`` with its validation split (MNIST: ``data_dir``, 7k/1k/2k)."""
    from ..data import load_dataset

    return load_dataset(cfg.dataset, seed=0, data_dir=data_dir, n_val=cfg.n_val)


def build(kind: str, depth: int, cfg: Config, data, seed: int):
    """The plain model of the cell (``kind`` of :data:`KINDS`: "mlp", "cnn" tanh; "relu",
    "relu_cnn" with ReLU), as built (PyTorch's default init from ``seed``)."""
    import torch

    from ...util.hashing import stable_u64
    from ..models import ModelConfig, build_model

    gen = torch.Generator().manual_seed(stable_u64("initlab.lab.model", seed) % 2**63)
    conv, act = KINDS[kind]
    if not conv:
        mc = ModelConfig(kind="mlp", depth=depth, width=cfg.width, activation=act,
                         in_shape=(data.n_features,), n_classes=data.n_classes)
    else:
        mc = ModelConfig(kind="cnn", depth=depth, channels=cfg.cnn_channels, activation=act,
                         in_shape=data.shape, n_classes=data.n_classes)
    return build_model(mc, generator=gen)


def init_net(model, init: str, *, seed: int, batch, activation: str = "tanh") -> None:
    """Initialize ``model`` in place by ``init`` (a name of :data:`INITS`, :data:`CNN_INITS` or,
    with ``activation="relu"``, :data:`RELU_INITS` / :data:`RELU_CNN_INITS`)."""
    if init == "torch_default":
        return  # as built
    if init == "orthogonal_he":
        from ...modelinit import apply

        apply(model, "auto", seed=seed, batch=batch, deep_relu="orthogonal")
        return
    if init == "delta_orthogonal":
        from torch import nn

        from ...core.registry import get
        from ...modelinit import Plan, Rule, apply

        apply(model, Plan([Rule((nn.Conv1d, nn.Conv2d), weight=get("delta_orthogonal"),
                                bias="zeros"),
                           Rule(nn.Linear, weight="orthogonal", bias="zeros")]), seed=seed)
        return
    from ..compare import init_model

    init_model(model, init, seed=seed, batch=batch, activation=activation)


def train_config(kind: str, lr: float, cfg: Config):
    """The training protocol of an arm: SGD with ``cfg``'s momentum and batch size, at ``lr``,
    for the MLP's or the CNN's epochs, evaluated at the end."""
    from ..train import TrainConfig

    epochs = cfg.cnn_epochs if KINDS[kind][0] else cfg.epochs
    return TrainConfig(optimizer="sgd", lr=lr, momentum=cfg.momentum, batch_size=cfg.batch_size,
                       epochs=epochs, eval_every=epochs)


def train_arm(kind: str, depth: int, init: str, lr: float, seed: int, cfg: Config, data,
              budget: Budget, part) -> dict:
    """One training run; ``part``: its per-epoch checkpoint (resumed when present)."""
    import torch

    from ..train import train

    model = build(kind, depth, cfg, data, seed)
    init_net(model, init, seed=seed, batch=torch.from_numpy(data.x_train[:cfg.lsuv_batch]),
             activation=KINDS[kind][1])
    tc = train_config(kind, lr, cfg)
    ran = []  # the training epochs run by this invocation (a resumed arm: the rest only)

    def on_epoch(rec):
        if rec["epoch"] > 0:
            ran.append(rec["epoch"])
        budget.check()

    t0 = time.perf_counter()
    hist = train(model, data, tc, seed=seed, checkpoint=part, on_epoch=on_epoch)
    last = hist[-1]
    return {"kind": kind, "depth": depth, "init": init, "lr": lr, "seed": seed,
            "val_acc": last["val_acc"], "test_acc": last["test_acc"],
            "train_acc": last["train_acc"], "train_loss": last["train_loss"],
            "diverged": bool(last["diverged"]),
            # this invocation's wall time over the epochs it ran
            "seconds_per_epoch": round((time.perf_counter() - t0) / max(1, len(ran)), 3)}


def spectrum_arm(depth: int, init: str, cfg: Config, data, kind: str = "mlp") -> dict:
    """The hidden-to-hidden Jacobian's singular values of the seed-0 model at init (``kind``
    of :data:`KINDS`)."""
    import torch

    from ...theory.jacobian import model_jacobian_spectrum

    model = build(kind, depth, cfg, data, cfg.seeds[0])
    init_net(model, init, seed=cfg.seeds[0],
             batch=torch.from_numpy(data.x_train[:cfg.lsuv_batch]),
             activation=KINDS[kind][1])
    sp = model_jacobian_spectrum(model, torch.from_numpy(data.x_train[:cfg.spectrum_inputs]))
    assert sp.singular_values is not None  # the exact method (the default) keeps them
    return {"depth": depth, "init": init, "summary": sp.input_output.as_dict(),
            "singular_values": [float(f"{v:.4g}") for v in sp.singular_values.ravel()]}


def _cell(sched: Scheduler, kind: str, depth: int, init: str, grid, around, cfg: Config,
          data, budget: Budget) -> dict:
    """Choose the lr of ``grid`` on validation (seed 0; around ``around`` when given:
    :func:`search_lrs`), then run the other seeds at it."""
    s0 = cfg.seeds[0]

    def arm(lr, seed):
        return sched.run(arm_key(kind, depth, init, lr, seed),
                         lambda part: train_arm(kind, depth, init, lr, seed, cfg, data, budget,
                                                part))

    search, best = search_lrs(grid, lambda lr: arm(lr, s0), around=around,
                              k=cfg.n_neighbour_lrs, chance=data.chance)
    runs = [search[best]] + [arm(best, s) for s in cfg.seeds[1:]]
    tests = [r["test_acc"] for r in runs if r["test_acc"] is not None]
    from ..compare import mean_std

    # mean and sample std over seeds, as RESULTS.md reports them
    mean, std = mean_std(tests) if tests else (None, None)
    return {"kind": kind, "depth": depth, "init": init, "lrs_tried": list(search),
            "lr": best, "val_by_lr": {f"{lr:g}": a["val_acc"] for lr, a in search.items()},
            "test_accs": [r["test_acc"] for r in runs],
            "test_mean": mean, "test_std": std,
            "seconds_per_epoch": search[best]["seconds_per_epoch"],
            "failed": search_failed(search, grid, data.chance)}


def run(cfg: Config, *, data_dir=None, quiet: bool = False,
        checkpoint: Checkpoint | None = None) -> dict:
    """Run every arm the budget allows (finished arms come from ``checkpoint``)."""
    from ..data import downsample
    from ..progress import progress_bar

    ck = checkpoint or Checkpoint(None, {})
    data = load(cfg, data_dir)
    budget = Budget(cfg.budget_hours)
    bar = progress_bar(total=planned_arms(cfg), desc=NAME, unit="arm", quiet=quiet)
    sched = Scheduler(ck, budget, bar, NAME)
    chosen: dict[tuple[int, str], float] = {}
    failed: dict[str, int] = {}  # init -> the depth where no lr learned (search_failed)
    grid: list[dict] = []
    spectra: list[dict] = []
    remaining: list[tuple[int, str]] = []
    try:
        def mlp_cell(depth, init):
            try:
                if any(i == init and d < depth for d, i in remaining):
                    raise OutOfTime  # the smaller depth this cell's lr search needs is not done
                spectra.append(sched.run(f"spectrum/d={depth}/{init}",
                                         lambda _p: spectrum_arm(depth, init, cfg, data)))
                if init in failed:  # the spectrum is measured; training is skipped
                    sched.skip([arm_key("mlp", depth, init, lr, seed) for lr in cfg.lrs
                                for seed in cfg.seeds], cell_training_arms(cfg, first=False))
                    grid.append({"kind": "mlp", "depth": depth, "init": init, "lrs_tried": [],
                                 "lr": None, "val_by_lr": {}, "test_accs": [],
                                 "test_mean": None, "test_std": None,
                                 "seconds_per_epoch": None,
                                 "skipped": skipped_deeper(failed[init])})
                    return
                row = _cell(sched, "mlp", depth, init, cfg.lrs,
                            previous_lr(cfg, depth, init, chosen), cfg, data, budget)
                if row.pop("failed"):
                    failed[init] = depth
                chosen[(depth, init)] = row["lr"]
                grid.append(row)
            except OutOfTime:
                remaining.append((depth, init))

        # the deep-only depths (hours a cell) run last, after the CNN
        for depth, init in cells(cfg):
            if depth < cfg.deep_from:
                mlp_cell(depth, init)
        def one_depth(kind, depth, inits, lrs, arm_data, spectrum: bool) -> list[dict]:
            """An arm at one depth (the CNN, the ReLU MLP): a cell per init, with the init's
            Jacobian spectrum at init first when ``spectrum``."""
            rows = []
            for init in inits:
                try:
                    spec = sched.run(f"spectrum/{kind}/d={depth}/{init}",
                                     lambda _p, i=init: spectrum_arm(depth, i, cfg, arm_data,
                                                                     kind=kind)
                                     ) if spectrum else None
                    row = _cell(sched, kind, depth, init, lrs, None, cfg, arm_data, budget)
                    row.pop("failed")  # one depth: nothing deeper to skip
                    rows.append(row if spec is None else {**row, "spectrum": spec["summary"]})
                except OutOfTime:
                    remaining.append((depth, f"{kind}/{init}"))
            return rows

        cnn_data = downsample(data, cfg.cnn_downsample) if cfg.cnn_depth or \
            cfg.relu_cnn_depth else None
        cnn = one_depth("cnn", cfg.cnn_depth, cfg.cnn_inits, cfg.cnn_lrs, cnn_data,
                        False) if cfg.cnn_depth else []
        relu = one_depth("relu", cfg.relu_depth, cfg.relu_inits, cfg.lrs, data,
                         True) if cfg.relu_depth else []
        relu_cnn = one_depth("relu_cnn", cfg.relu_cnn_depth, cfg.relu_cnn_inits, cfg.cnn_lrs,
                             cnn_data, True) if cfg.relu_cnn_depth else []
        for depth, init in cells(cfg):
            if depth >= cfg.deep_from:
                mlp_cell(depth, init)
    finally:
        bar.close()
    return {"case": NAME, "config": cfg, "grid": grid, "spectra": spectra, "cnn": cnn,
            "relu": relu, "relu_cnn": relu_cnn,
            "remaining": [f"d={d}/{i}" for d, i in remaining], "complete": not remaining,
            "inits": {i: INITS[i] for i in cfg.inits}, "cnn_inits": {
                i: CNN_INITS[i] for i in cfg.cnn_inits},
            "relu_inits": {i: RELU_INITS[i] for i in cfg.relu_inits},
            "relu_cnn_inits": {i: RELU_CNN_INITS[i] for i in cfg.relu_cnn_inits}
            if cfg.relu_cnn_depth else {},
            "published": PUBLISHED, "data_note": DATA_NOTE, "time_budget": TIME_BUDGET,
            "headline": headline(grid, cnn, remaining, cfg, relu, relu_cnn)}


def headline(grid: list[dict], cnn: list[dict], remaining, cfg: Config,
             relu: Sequence[dict] = (), relu_cnn: Sequence[dict] = ()) -> list[str]:
    lines = []
    if grid:
        deepest = max(r["depth"] for r in grid)
        at = {r["init"]: r for r in grid if r["depth"] == deepest}
        lines.append(f"depth {deepest} test accuracy: " + ", ".join(
            f"{i} not trained" if r.get("skipped") else
            f"{i} {fmt_pct(None if r['test_mean'] is None else 100 * r['test_mean'])}%"
            for i, r in at.items()))
    for rows, what in ((cnn, f"tanh CNN depth {cfg.cnn_depth}"),
                       (relu, f"ReLU MLP depth {cfg.relu_depth}"),
                       (relu_cnn, f"ReLU CNN depth {cfg.relu_cnn_depth}")):
        if rows:
            lines.append(f"{what}: " + ", ".join(
                f"{r['init']} "
                f"{fmt_pct(None if r['test_mean'] is None else 100 * r['test_mean'])}%"
                for r in rows))
    if remaining:
        lines.append(f"budget spent: {len(remaining)} cell(s) remain; rerun with --resume")
    return lines


def accuracy(results: dict, depth: int, init: str, kind: str = "mlp") -> float | None:
    """The mean test accuracy of a finished cell (None when it did not run)."""
    rows = results["grid"] if kind == "mlp" else results.get(kind, [])
    return next((r["test_mean"] for r in rows if r["depth"] == depth and r["init"] == init), None)


# ----------------------------------------------------------------------------------- report
#: decades a spectrum panel spans below the highest median log10 s of its inits: a vanished
#: spectrum (torch_default at depth 1000: s ~ 1e-241) would otherwise squeeze every other init
#: into one bin at the right edge
SPECTRUM_DECADES = 12


def spectrum_figure(spectra: list[dict]):
    """Pennington et al. 2017 fig. 3: the density of the Jacobian's singular values at init,
    one panel per depth, one curve per init (log-scale s). A panel spans at most
    :data:`SPECTRUM_DECADES` below its inits' highest median; values below the range are piled
    into its first bin, and the inits whose median lies there are named in the panel."""
    from ...report.palette import init_colors

    pyplot = plt()
    depths = sorted({s["depth"] for s in spectra})
    inits = list(dict.fromkeys(s["init"] for s in spectra))
    colors = init_colors(inits)
    fig, axes = pyplot.subplots(1, max(1, len(depths)), figsize=(3.4 * max(1, len(depths)) + 1.6,
                                                                 3.1), squeeze=False,
                                sharey=False)
    for ax, depth in zip(axes[0], depths):
        rows = [s for s in spectra if s["depth"] == depth]
        logs = [np.log10(np.clip(np.asarray(s["singular_values"], float), 1e-300, None))
                for s in rows]
        allv = np.concatenate(logs) if logs else np.zeros(1)
        seen = allv[allv > -299] if np.any(allv > -299) else np.zeros(1)  # not underflowed
        medians = [float(np.median(lg)) for lg in logs]
        lo = min(max(float(np.percentile(seen, 1)), max(medians) - SPECTRUM_DECADES), -1.0)
        hi = max(float(seen.max()), 0.5)
        below = [s["init"] for s, m in zip(rows, medians) if m < lo]
        if below:
            ax.text(0.02, 0.97, f"below 1e{lo:.0f}, in the first bin:\n" + ", ".join(below),
                    transform=ax.transAxes, fontsize=7, va="top", color="#555")
        edges = np.linspace(lo, hi + 1e-9, 41)
        centers = 0.5 * (edges[1:] + edges[:-1])
        for s, lg in zip(rows, logs):
            h, _ = np.histogram(np.clip(lg, lo, hi), bins=edges, density=True)
            ax.plot(10 ** centers, h, color=colors[s["init"]], lw=1.5, label=s["init"])
        ax.set_xscale("log")
        ax.axvline(1.0, color="#999", lw=0.8, ls=":")
        ax.set_title(f"depth {depth}", fontsize=10)
        ax.set_xlabel("singular value s of J")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("density of log10 s")
    from ...report.figures import legend_outside

    handles: dict[str, Any] = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    legend_outside(axes[0, -1], handles=list(handles.values()), labels=list(handles))
    fig.tight_layout()
    return fig


def _g(x) -> str:
    """2 significant digits; "-" for a value JSON could not hold (inf/NaN become None)."""
    return "-" if x is None else f"{x:.2g}"


def report(results: dict):
    """The HTML report of ``results`` (as saved in results.json)."""
    from ...report.figures import curves, legend_outside
    from ...report.html import HtmlReport

    cfg = results["config"]
    rep = HtmlReport(TITLE, PAPER)
    rep.paragraph(DATA_NOTE, note=True)
    if results.get("remaining"):
        rep.paragraph(f"Incomplete: the time budget ({cfg['budget_hours']} h) was spent; "
                      f"{len(results['remaining'])} cell(s) remain: "
                      f"{', '.join(results['remaining'])}. Rerun the command with --resume.",
                      note=True)
    grid, spectra = results["grid"], results["spectra"]
    depths = sorted({r["depth"] for r in grid})
    inits = list(dict.fromkeys(r["init"] for r in grid))

    def cell(d, i):
        r = next((g for g in grid if g["depth"] == d and g["init"] == i), None)
        s = next((g for g in spectra if g["depth"] == d and g["init"] == i), None)
        if r is None:
            return "-"
        spec = "" if s is None else (f" [s² {_g(s['summary']['mean_s2'])}, "
                                     f"spread {_g(s['summary']['spread'])}]")
        if r.get("skipped"):
            return f"{r['skipped']}{spec}"
        acc = "-" if r["test_mean"] is None else f"{100 * r['test_mean']:.1f} ± {100 * r['test_std']:.1f}"
        return f"{acc} (lr {r['lr']:g}){spec}"

    rep.table(["init"] + [f"depth {d}" for d in depths], [[i] + [cell(d, i) for d in depths]
                                                          for i in inits],
              caption=f"Test accuracy (%), mean ± sample std over seeds {cfg['seeds']} at the "
                      f"lr chosen on validation, after {cfg['epochs']} epochs; [mean s² and spread = "
                      "var(s²)/mean(s²)² of the hidden-to-hidden Jacobian at init]")
    if spectra:
        rep.figure(spectrum_figure(spectra), "Singular values of the hidden-to-hidden Jacobian "
                   "at init (Pennington et al. 2017, fig. 3), per depth")
    if grid:
        pyplot = plt()
        fig, ax = pyplot.subplots(figsize=(6.5, 3.6))
        series = {}
        for i in inits:
            pts = [(r["depth"], r["test_mean"]) for r in grid
                   if r["init"] == i and r["test_mean"] is not None]
            if pts:
                x, y = (np.array(v, float) for v in zip(*pts))
                series[i] = (x, y, None, None)
        curves(ax, series)
        ax.set_xscale("log")
        ax.set_xlabel("depth (hidden layers)")
        ax.set_ylabel("test accuracy")
        legend_outside(ax)
        fig.tight_layout()
        rep.figure(fig, "Test accuracy against depth at each cell's chosen lr")
    if results.get("cnn"):
        _one_depth_table(rep, results["cnn"], f"Plain tanh CNN of depth {cfg['cnn_depth']}, "
                         f"{cfg['cnn_channels']} channels, {cfg['cnn_epochs']} epochs (Xiao et "
                         "al. 2018)")
    if results.get("relu"):
        _one_depth_table(rep, results["relu"], f"Plain ReLU MLP of depth {cfg['relu_depth']}, "
                         f"width {cfg['width']}, {cfg['epochs']} epochs: He, orthogonal He and "
                         "auto's looks-linear weights (Balduzzi et al. 2017). Looks-linear's "
                         "hidden-to-hidden Jacobian has half its singular values at sqrt(2) and "
                         "half at 0 (the directions [v, v] the mirror cancels), so spread 1 on "
                         "these coordinates, 0 on the mirrored ones")
    if results.get("relu_cnn"):
        _one_depth_table(rep, results["relu_cnn"], f"Plain ReLU CNN of depth "
                         f"{cfg['relu_cnn_depth']}, {cfg['cnn_channels']} channels, "
                         f"{cfg['cnn_epochs']} epochs: He, delta-orthogonal He and auto's "
                         "looks-linear centre-tap kernels (the mirror of the dense case, one "
                         "tap)")
    rep.table(["init", "how"], [[k, v] for k, v in {
        **results["inits"], **{f"{k} (CNN)": v for k, v in results["cnn_inits"].items()},
        **{f"{k} (ReLU)": v for k, v in results.get("relu_inits", {}).items()},
        **{f"{k} (ReLU CNN)": v for k, v in results.get("relu_cnn_inits", {}).items()}
    }.items()])
    return rep


def _one_depth_table(rep, rows: list[dict], caption: str) -> None:
    """A one-depth arm's table (the CNN, the ReLU MLP): each seed's score beside the mean (at a
    grid-edge lr one seed can train and another diverge, and a mean of 44 ± 44 hides which),
    and the Jacobian spectrum at init when the arm measured it."""
    spec = any("spectrum" in r for r in rows)
    rep.table(["init", "test accuracy (%)", "by seed", "lr (on validation)", "validation by lr"]
              + (["Jacobian at init: mean s², spread"] if spec else []),
              [[r["init"], "-" if r["test_mean"] is None else
                f"{100 * r['test_mean']:.1f} ± {100 * r['test_std']:.1f}",
                " / ".join(fmt_pct(None if a is None else 100 * a) for a in r["test_accs"]),
                f"{r['lr']:g}",
                ", ".join(f"{k}: {fmt_pct(None if v is None else 100 * v)}"
                          for k, v in r["val_by_lr"].items())]
               + ([f"{_g(r['spectrum']['mean_s2'])}, {_g(r['spectrum']['spread'])}"
                   if "spectrum" in r else "-"] if spec else []) for r in rows],
              caption=caption)
