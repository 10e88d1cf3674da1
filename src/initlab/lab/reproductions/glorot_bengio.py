"""Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural
networks": 5 hidden layers, tanh or sigmoid, "standard" init W ~ U(-1/sqrt(n), 1/sqrt(n))
(n = fan_in, zero biases) vs "normalized" init W ~ U(-sqrt(6/(n_in+n_out)), +sqrt(6/(n_in+n_out)))
(zero biases). They show per-layer activation histograms (with sigmoid the top hidden layer
saturates at 0 early in training), the singular values of the layer-to-layer Jacobians
J_l = d h_{l+1} / d h_l = diag(f'(z_{l+1})) W_{l+1} (mean about 0.5 standard, 0.8 normalized),
and test errors.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ...core.activations import get_activation
from ...core.validation import check_choice
from ...diagnostics.stats import output_saturation
from ._common import Checkpoint, initialize, linear_layers, load_data, plt, progress

NAME = "glorot-bengio"
TITLE = "Glorot & Bengio 2010: standard vs normalized initialization, 5 hidden layers"
PAPER = ('X. Glorot, Y. Bengio, "Understanding the difficulty of training deep feedforward neural '
         'networks", AISTATS 2010')
# Mean singular value of the layer-to-layer Jacobians of their tanh networks (sec. 4.2.2) and
# test error (%) on MNIST
# with 5 hidden layers of 1000 units (Table 1, from secondary summaries; see references.md).
PUBLISHED = {"jacobian_mean_sv": {"standard": 0.5, "normalized": 0.8},
             "test_error_pct": {"tanh/standard": 1.76, "tanh/normalized": 1.64,
                                "sigmoid/standard": 2.21}}
INITS = {"standard": "torch_default", "normalized": "glorot_uniform"}
BINS = 40


@dataclass(frozen=True)
class Config:
    activations: tuple[str, ...] = ("tanh", "sigmoid")
    inits: tuple[str, ...] = ("standard", "normalized")
    width: int = 64               # Glorot & Bengio: 1000
    depth: int = 5                # hidden layers
    epochs: int = 3
    lr: float = 0.05
    batch_size: int = 10          # their mini-batch size
    dataset: str = "digits"       # "mnist" (with --data-dir) for the full run
    n_stats: int = 256            # examples for histograms and Jacobians
    n_jacobian: int = 32          # examples whose Jacobians are decomposed
    seed: int = 0


def config(full: bool = False) -> Config:
    """The reduced config (default), or with ``full`` the published-length one."""
    return (Config(width=1000, epochs=5, lr=0.02, dataset="mnist", n_jacobian=8) if full
            else Config())


DATA_NOTE_DIGITS = ("Glorot & Bengio use MNIST (50,000 training images), layers of 1000 units and "
                    "train to convergence; the reduced run uses scikit-learn's 8x8 digits, "
                    "64-unit layers and a few epochs, so test errors are not comparable; the "
                    "Jacobian singular values at init and the saturation pattern are.")
DATA_NOTE_MNIST = ("Glorot & Bengio use 50,000 MNIST training images and train to convergence; "
                   "here the loader's MNIST (with mnist10k.npz: 8,000 train / 2,000 test) for a "
                   "few epochs, so test errors are higher than theirs.")


#: the activations the case measures: bounded (the histograms span their range) and with f'
#: known from h (:func:`_dact`)
ACTIVATIONS = ("tanh", "sigmoid")


def _dact(act: str, h: np.ndarray) -> np.ndarray:
    """f'(z) from h = f(z): tanh 1 - h^2, sigmoid h (1 - h)."""
    return 1.0 - h * h if act == "tanh" else h * (1.0 - h)


def _bounds(act: str) -> tuple[float, float]:
    bounds = get_activation(act).bounds
    assert bounds is not None  # run() admits only ACTIVATIONS, both bounded
    return bounds


def measure(model, x: np.ndarray, act: str, n_jac: int) -> dict:
    """Per hidden layer: histogram of activations, mean, std, fraction saturated; per pair of
    consecutive hidden layers: mean singular value of J = diag(f'(z_{l+1})) W_{l+1}."""
    from ..train import layer_activations

    acts = [a.astype(np.float64) for a in layer_activations(model, x).values()]
    weights = [lin.weight.detach().double().numpy() for lin in linear_layers(model)]
    lo, hi = _bounds(act)
    layers = []
    for a in acts:
        counts, _ = np.histogram(a, bins=BINS, range=(lo, hi))
        layers.append({"hist": counts.tolist(), "mean": float(a.mean()), "std": float(a.std()),
                       "frac_saturated": output_saturation(a, act)})
    jac = []
    for i in range(len(acts) - 1):
        w = weights[i + 1]
        svs = [np.linalg.svd(_dact(act, acts[i + 1][k])[:, None] * w, compute_uv=False).mean()
               for k in range(min(n_jac, len(x)))]
        jac.append(float(np.mean(svs)))
    return {"layers": layers, "jacobian_mean_sv": jac}


def train_one(act: str, init: str, cfg: Config, data) -> dict:
    from ..models import ModelConfig, build_model
    from ..train import TrainConfig, train

    model = build_model(ModelConfig(kind="mlp", depth=cfg.depth, width=cfg.width, activation=act,
                                    in_shape=(data.n_features,), n_classes=data.n_classes))
    path = initialize(model, INITS[init], "zeros", seed=cfg.seed)
    xs = data.x_test[:cfg.n_stats]
    at_init = measure(model, xs, act, cfg.n_jacobian)
    tc = TrainConfig(optimizer="sgd", lr=cfg.lr, momentum=0.0, batch_size=cfg.batch_size,
                     epochs=cfg.epochs)
    hist = train(model, data, tc, seed=cfg.seed, record_layer_stats=True, activation=act)
    return {"activation": act, "init": init, "init_path": path, "at_init": at_init,
            "trained": measure(model, xs, act, cfg.n_jacobian),
            "test_error_pct": [None if h["test_acc"] is None else 100.0 * (1 - h["test_acc"])
                               for h in hist],
            "layer_mean_per_epoch": [[r["mean"] for r in h["layers"]] for h in hist]}


def run(cfg: Config, *, data_dir=None, quiet: bool = False,
        checkpoint: Checkpoint | None = None) -> dict:
    """Run every arm of the case (finished arms come from ``checkpoint``); return the results."""
    for a in cfg.activations:
        check_choice(a, "activations", ACTIVATIONS, fix="pass activations from "
                     "('tanh', 'sigmoid'): the case reads f' from the bounded outputs.")
    ck = checkpoint or Checkpoint(None, {})
    data = load_data(cfg.dataset, seed=0, data_dir=data_dir)
    arms = [(a, i) for a in cfg.activations for i in cfg.inits]
    runs = [ck.run(f"{a}/{i}", functools.partial(train_one, a, i, cfg, data))
            for a, i in progress(arms, desc=NAME, quiet=quiet)]
    headline = [f"{r['activation']:7s} {r['init']:10s} Jacobian mean singular value at init "
                f"{np.mean(r['at_init']['jacobian_mean_sv']):.2f} (published, tanh: "
                f"{PUBLISHED['jacobian_mean_sv'][r['init']]}), test error "
                f"{r['test_error_pct'][-1]:.2f}%, top hidden layer mean activation "
                f"{r['layer_mean_per_epoch'][0][-1]:.2f} -> {r['layer_mean_per_epoch'][-1][-1]:.2f}"
                for r in runs]
    note = DATA_NOTE_MNIST if cfg.dataset == "mnist" else DATA_NOTE_DIGITS
    return {"case": NAME, "config": cfg, "runs": runs, "published": PUBLISHED,
            "data_note": note, "data_info": data.info, "headline": headline}


def report(results: dict):
    """The HTML report of ``results`` (as saved in results.json): ours beside the published."""
    from ...report.html import HtmlReport

    cfg = results["config"]
    rep = HtmlReport(TITLE, PAPER)
    rep.paragraph(results["data_note"], note=True)
    rep.paragraph(f"Data: {results['data_info']}. Width {cfg['width']}, {cfg['depth']} hidden "
                  f"layers, SGD lr {cfg['lr']}, mini-batch {cfg['batch_size']}, {cfg['epochs']} "
                  "epochs, zero biases.")
    rows = []
    for r in results["runs"]:
        key = f"{r['activation']}/{r['init']}"
        rows.append([r["activation"], r["init"], np.mean(r["at_init"]["jacobian_mean_sv"]),
                     PUBLISHED["jacobian_mean_sv"][r["init"]] if r["activation"] == "tanh" else "-",
                     np.mean(r["trained"]["jacobian_mean_sv"]), r["test_error_pct"][-1],
                     PUBLISHED["test_error_pct"].get(key, "-")])
    rep.table(["activation", "init", "Jacobian mean sv at init (ours)", "published",
               "after training (ours)", "test error % (ours)", "test error % (G&B, MNIST)"], rows)
    rep.table(["activation", "init"] + [f"J{i + 1}->{i + 2}" for i in range(cfg["depth"] - 1)],
              [[r["activation"], r["init"]] + r["at_init"]["jacobian_mean_sv"]
               for r in results["runs"]], caption="Mean singular value per layer pair, at init")
    pyplot = plt()
    for stage in ("at_init", "trained"):
        fig, axes = pyplot.subplots(1, len(results["runs"]),
                                    figsize=(min(11.5, 3.2 * len(results["runs"])), 3.2),
                                    squeeze=False, sharey=True)  # compared panels: one y axis
        for ax, r in zip(axes[0], results["runs"]):
            lo, hi = _bounds(r["activation"])
            centers = lo + (np.arange(BINS) + 0.5) * (hi - lo) / BINS
            for li, layer in enumerate(r[stage]["layers"]):
                ax.plot(centers, layer["hist"], label=f"layer {li + 1}")
            ax.set_title(f"{r['activation']} / {r['init']}", fontsize=9)
            ax.set_xlabel("activation value")
        axes[0][0].set_ylabel("count")
        axes[0][0].set_ylim(bottom=0)
        axes[0][-1].legend(fontsize=7)
        when = "at initialization" if stage == "at_init" else "after training"
        rep.figure(fig, f"Activation histograms per hidden layer, {when} (cf. G&B fig. 6-7)")
    fig, axes = pyplot.subplots(1, len(results["runs"]),
                                figsize=(min(11.5, 3.2 * len(results["runs"])), 3.2),
                                squeeze=False, sharey=True)
    for ax, r in zip(axes[0], results["runs"]):
        m = np.array(r["layer_mean_per_epoch"], dtype=float)
        for li in range(m.shape[1]):
            ax.plot(m[:, li], label=f"layer {li + 1}")
        ax.set_title(f"{r['activation']} / {r['init']}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0][0].set_ylabel("mean activation")
    axes[0][-1].legend(fontsize=7)
    rep.figure(fig, "Mean activation per hidden layer during training (cf. G&B fig. 2)")
    return rep
