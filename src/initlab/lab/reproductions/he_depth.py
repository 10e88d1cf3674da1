"""He, Zhang, Ren, Sun 2015, "Delving Deep into Rectifiers: Surpassing Human-Level Performance on
ImageNet Classification", sec. 2.2 and fig. 3: a 30-layer plain ReLU network does not train from
Xavier's init and does from theirs.

Why: for ReLU, Var(x_{l+1}) = (1/2) n_l Var(w_l) Var(x_l)-ish (half the pre-activations are
zeroed), so He's Var(w) = 2/n keeps the signal, while Xavier's Var(w) = 2/(n_in + n_out) = 1/n on
square layers halves the variance per layer: after L layers Xavier's signal std is 2^(-L/2) of
He's (3.05e-5 at L = 30). Measured here on a square MLP (every layer n x n, zero biases), where
the ratio is exactly sqrt(1/2) per layer in distribution.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ...report.palette import init_colors
from ._common import Checkpoint, initialize, load_data, plt, progress

NAME = "he-depth"
TITLE = "He et al. 2015: a 30-layer plain ReLU net, Xavier vs He initialization"
PAPER = ('K. He, X. Zhang, S. Ren, J. Sun, "Delving Deep into Rectifiers: Surpassing '
         'Human-Level Performance on ImageNet Classification", ICCV 2015 (sec. 2.2, fig. 3)')
PUBLISHED = {"depth": 30, "signal_ratio": 2.0 ** -15, "signal_ratio_text": "2^(-L/2) = 3.05e-5",
             "xavier": "stalls (no learning)", "he": "converges"}
INITS = {"xavier": "glorot_normal", "he": "he_normal"}
DATA_NOTE = ("He et al. train a 30-layer convolutional net on ImageNet; here a 30-hidden-layer "
             "ReLU MLP of width 64 on scikit-learn's 8x8 digits (64 inputs, so every layer is "
             "square and the Xavier/He variance ratio is exactly 1/2 per layer). Zero biases, "
             "plain SGD.")


@dataclass(frozen=True)
class Config:
    depth: int = 30               # hidden layers (He: 30)
    width: int = 64               # = input dimension of digits: square layers
    signal_seeds: int = 16        # independent networks per init for the signal measurement
    signal_batch: int = 256       # inputs forwarded for the signal measurement
    epochs: int = 5               # training epochs
    lr: float = 0.002             # 0.01 makes even He's 30-layer net diverge at times
    momentum: float = 0.9
    batch_size: int = 32
    seeds: tuple[int, ...] = (0,)
    dataset: str = "digits"


def config(full: bool = False) -> Config:
    """The reduced config (default), or with ``full`` the published-length one."""
    return Config(signal_seeds=64, epochs=30, seeds=(0, 1, 2)) if full else Config()


def _model(cfg: Config, n_in: int, n_classes: int):
    from ..models import ModelConfig, build_model

    return build_model(ModelConfig(kind="mlp", depth=cfg.depth, width=cfg.width,
                                   activation="relu", in_shape=(n_in,), n_classes=n_classes))


def signal(cfg: Config, data) -> dict:
    """log2 of the std of the last hidden layer's activations at init, per init and seed."""
    from ..train import layer_activations

    x = data.x_train[:cfg.signal_batch]
    out: dict = {}
    for key, init in INITS.items():
        vals = []
        for s in range(cfg.signal_seeds):
            model = _model(cfg, data.n_features, data.n_classes)
            initialize(model, init, "zeros", seed=10_000 + s + (0 if key == "he" else 5_000))
            acts = list(layer_activations(model, x).values())  # (under no_grad)
            vals.append(float(np.log2(np.std(acts[-1].astype(np.float64)))))
        out[key] = vals
    diff = np.array(out["xavier"]).mean() - np.array(out["he"]).mean()
    # standard error of a difference of two independent means
    se = float(np.sqrt(np.var(out["xavier"], ddof=1) / len(out["xavier"])
                       + np.var(out["he"], ddof=1) / len(out["he"])))
    return {"log2_std": out, "log2_ratio": float(diff), "log2_ratio_se": se,
            "ratio": float(2.0 ** diff), "expected_log2_ratio": -cfg.depth / 2}


def train_one(key: str, seed: int, cfg: Config, data) -> dict:
    from ..train import TrainConfig, train

    model = _model(cfg, data.n_features, data.n_classes)
    path = initialize(model, INITS[key], "zeros", seed=seed)
    tc = TrainConfig(optimizer="sgd", lr=cfg.lr, momentum=cfg.momentum,
                     batch_size=cfg.batch_size, epochs=cfg.epochs)
    hist = train(model, data, tc, seed=seed, record_layer_stats=True, activation="relu")
    return {"init": key, "seed": seed, "init_path": path,
            "train_loss": [h["train_loss"] for h in hist],
            "test_acc": [h["test_acc"] for h in hist],
            "layer_std_init": [r["std"] for r in hist[0]["layers"]]}


def run(cfg: Config, *, data_dir=None, quiet: bool = False,
        checkpoint: Checkpoint | None = None) -> dict:
    """Run every arm of the case (finished arms come from ``checkpoint``); return the results."""
    ck = checkpoint or Checkpoint(None, {})
    data = load_data(cfg.dataset, seed=0, data_dir=data_dir)
    sig = ck.run("signal", lambda: signal(cfg, data))
    runs = []
    for key, seed in progress([(k, s) for k in INITS for s in cfg.seeds], desc=NAME, quiet=quiet):
        runs.append(ck.run(f"train/{key}/{seed}",
                           functools.partial(train_one, key, seed, cfg, data)))
    final = {k: float(np.mean([r["test_acc"][-1] for r in runs if r["init"] == k])) for k in INITS}
    best = {k: float(np.mean([max(a for a in r["test_acc"] if a is not None)
                              for r in runs if r["init"] == k])) for k in INITS}
    headline = [f"Xavier/He signal after {cfg.depth} layers: 2^{sig['log2_ratio']:.2f} "
                f"(+-{sig['log2_ratio_se']:.2f}) = {sig['ratio']:.3g}; published 2^-{cfg.depth / 2:g}"
                f" = {2.0 ** (-cfg.depth / 2):.3g}",
                f"test accuracy after {cfg.epochs} epochs: xavier {final['xavier']:.3f}, "
                f"he {final['he']:.3f} (best epoch: xavier {best['xavier']:.3f}, "
                f"he {best['he']:.3f})"]
    return {"case": NAME, "config": cfg, "signal": sig, "runs": runs, "final_test_acc": final,
            "best_test_acc": best,
            "published": PUBLISHED, "data_note": DATA_NOTE, "headline": headline}


def report(results: dict):
    """The HTML report of ``results`` (as saved in results.json): ours beside the published."""
    from ...report.html import HtmlReport

    cfg, sig = results["config"], results["signal"]
    rep = HtmlReport(TITLE, PAPER)
    rep.paragraph(DATA_NOTE, note=True)
    rep.heading("Signal after the last hidden layer at init")
    rep.table(["quantity", "ours", "published / theory"],
              [["log2(std Xavier / std He)", f"{sig['log2_ratio']:.2f} +- {sig['log2_ratio_se']:.2f}",
                f"{-cfg['depth'] / 2:g}"],
               ["ratio", sig["ratio"], 2.0 ** (-cfg["depth"] / 2)]],
              caption=f"mean over {cfg['signal_seeds']} networks per init (+- one standard error)")
    rep.heading("Training")
    rep.table(["init", "final test accuracy (ours)", "best epoch (ours)", "He et al."],
              [[k, v, results["best_test_acc"][k], PUBLISHED[k]]
               for k, v in results["final_test_acc"].items()],
              caption="mean over seeds; a 30-layer plain net trains noisily even from He's init")
    pyplot = plt()
    fig, (a1, a2) = pyplot.subplots(1, 2, figsize=(11, 4))
    colors = init_colors([r["init"] for r in results["runs"]])
    for r in results["runs"]:
        c = colors[r["init"]]
        a1.plot([np.nan if v is None else v for v in r["train_loss"]], color=c,
                label=f"{r['init']} s{r['seed']}")
        a2.semilogy(range(1, len(r["layer_std_init"]) + 1), r["layer_std_init"], color=c,
                    label=f"{r['init']} s{r['seed']}")
    a1.set_xlabel("epoch")
    a1.set_ylabel("training loss")
    a2.set_xlabel("hidden layer")
    a2.set_ylabel("activation std at init")
    for a in (a1, a2):
        a.xaxis.get_major_locator().set_params(integer=True)
        a.legend(fontsize=8)
        a.grid(alpha=0.3)
    rep.figure(fig, "Left: training loss. Right: per-layer activation std at init.")
    return rep
