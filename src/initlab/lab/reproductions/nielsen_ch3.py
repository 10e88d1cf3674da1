"""Nielsen, "Neural Networks and Deep Learning", ch. 3 ("Weight initialization"), 2015.

His ``src/network2.py`` run by ``fig/weight_initialization.py``: a [784, n, 10] sigmoid network
with sigmoid outputs and the cross-entropy cost ``sum_j -y_j ln a_j - (1-y_j) ln(1-a_j)``,
mini-batch SGD (eta 0.1, mini-batch 10, 30 epochs) with L2 regularization applied as in his
code: each step ``w <- (1 - eta*lambda/n) w - (eta/m) sum_x dC_x/dw`` (n = training-set size,
m = mini-batch size; biases are not decayed). ``default_weight_initializer``: weights
``randn(y, x)/sqrt(x)``, biases ``randn(y, 1)`` (initlab's ``nielsen_default``);
``large_weight_initializer``: ``randn`` for both (``nielsen_large``).

Two implementations of the same network: :class:`NielsenNetwork` (NumPy, his backprop with the
per-example gradients summed over the mini-batch as one matrix product, which is the same sum)
and :func:`train_torch` (PyTorch autograd). Given the same initial weights and batch order they
agree (checked in the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from ...backends.numpy_backend import make_rng
from ...report.palette import init_colors
from ._common import Checkpoint, fmt_pct, load_data, plt, progress

NAME = "nielsen-ch3"
TITLE = "Nielsen ch. 3: default vs large weight initialization (784-n-10 sigmoid, MNIST)"
PAPER = ('M. Nielsen, "Neural Networks and Deep Learning", ch. 3, 2015; code: '
         "src/network2.py, fig/weight_initialization.py")

# Validation accuracy (%) of network2.py, 50,000 training images, 10,000 validation images,
# read from the book's figures/text (see docs/references.md).
PUBLISHED = {
    30: {"nielsen_default": {1: 92.70, 5: 95.37, 10: 95.94, 30: 96.50},
         "nielsen_large": {1: 86.43, 5: 92.99, 10: 94.49, 30: 96.37}},
    100: {"nielsen_default": {1: 92.95, 30: 97.81},
          "nielsen_large": {1: 89.94, 30: 97.42}},
}


@dataclass(frozen=True)
class Config:
    """Defaults are the reduced run; :func:`config` with ``full=True`` gives Nielsen's length."""

    hidden: tuple[int, ...] = (30,)       # hidden widths to run (Nielsen: 30 and 100)
    inits: tuple[str, ...] = ("nielsen_default", "nielsen_large")
    epochs: int = 5                       # Nielsen: 30
    n_train: int | None = 2000            # None = all the loader gives (Nielsen: 50,000)
    n_test: int | None = 2000             # evaluation images (Nielsen: 10,000 validation)
    eta: float = 0.1                      # learning rate
    lmbda: float = 5.0                    # L2 strength; weight decay factor 1 - eta*lmbda/n
    batch_size: int = 10                  # mini-batch size
    seeds: tuple[int, ...] = (0,)         # one seed per run (init and batch order)
    dataset: str = "mnist"
    torch_check: bool = True              # also train hidden[0] / seeds[0] in PyTorch
    torch_dtype: str = "float64"


def config(full: bool = False) -> Config:
    """The reduced config (default), or with ``full`` the published-length one."""
    if full:
        return Config(hidden=(30, 100), epochs=30, n_train=None, n_test=None, seeds=(0, 1, 2))
    return Config()


DATA_NOTE = ("Nielsen trains on 50,000 MNIST images and reports accuracy on the 10,000 validation "
             "images. Here the loader's MNIST is used; with ../shared/data/mnist10k.npz that is the "
             "first 8,000 digits for training and the last 2,000 for evaluation, so the weight decay "
             "per step (1 - eta*lambda/n, n = 8,000) is 6.25x stronger and there are 6.25x fewer "
             "steps per epoch: expect lower accuracies, and the epoch-1 gap between the inits to be "
             "larger. Pixels are scaled to [0, 1] as in Nielsen's loader (not standardized).")


# ------------------------------------------------------------------------------ the network
def initial_params(sizes, init: str, *, seed) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Weights (y, x) and biases (y, 1) for ``sizes`` from the catalog's ``init`` (float64).

    ``nielsen_default``: W ~ N(0, 1/x), b ~ N(0, 1) (his ``default_weight_initializer``);
    ``nielsen_large``: W, b ~ N(0, 1). One Generator, drawn weight then bias, layer by layer.
    """
    from ... import get

    ini = get(init)
    rng = make_rng(seed)
    weights, biases = [], []
    for x, y in zip(sizes[:-1], sizes[1:]):
        weights.append(ini.sample((y, x), seed=rng, dtype="float64"))
        biases.append(ini.sample((y,), seed=rng, dtype="float64", fans=(x, y),
                                 role="bias").reshape(y, 1))
    return weights, biases


class NielsenNetwork:
    """``network2.Network`` with ``CrossEntropyCost``, vectorized over the mini-batch.

    Activations are columns (shape ``(features, batch)``) as in his code. ``sigmoid`` is
    ``scipy.special.expit`` (his ``1/(1+exp(-z))`` without the overflow warning).
    """

    def __init__(self, weights, biases):
        self.weights = [np.array(w, dtype=np.float64) for w in weights]
        self.biases = [np.array(b, dtype=np.float64).reshape(-1, 1) for b in biases]

    def feedforward(self, a: np.ndarray) -> np.ndarray:
        for b, w in zip(self.biases, self.weights):
            a = special.expit(w @ a + b)
        return a

    def update_mini_batch(self, x: np.ndarray, y: np.ndarray, eta: float, lmbda: float,
                          n: int) -> None:
        """One step on the batch ``x`` (784, m), one-hot ``y`` (10, m): his ``update_mini_batch``.

        Backprop (his ``backprop``) with delta_L = a - y (cross-entropy), delta_l =
        (W_{l+1}^T delta_{l+1}) * s'(z_l); the sums over the batch of delta (nabla_b) and of
        delta a^T (nabla_w) are taken as ``delta.sum(1)`` and ``delta @ A^T``.
        """
        m = x.shape[1]
        activations, zs = [x], []
        a = x
        for b, w in zip(self.biases, self.weights):
            z = w @ a + b
            zs.append(z)
            a = special.expit(z)
            activations.append(a)
        delta = activations[-1] - y
        nabla_b = [None] * len(self.weights)
        nabla_w = [None] * len(self.weights)
        nabla_b[-1] = delta.sum(axis=1, keepdims=True)
        nabla_w[-1] = delta @ activations[-2].T
        for l in range(2, len(self.weights) + 1):  # noqa: E741 (his notation)
            s = special.expit(zs[-l])
            delta = (self.weights[-l + 1].T @ delta) * (s * (1.0 - s))
            nabla_b[-l] = delta.sum(axis=1, keepdims=True)
            nabla_w[-l] = delta @ activations[-l - 1].T
        decay = 1.0 - eta * (lmbda / n)
        self.weights = [decay * w - (eta / m) * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / m) * nb for b, nb in zip(self.biases, nabla_b)]

    def accuracy(self, x: np.ndarray, labels: np.ndarray) -> float:
        """Percentage of columns of ``x`` whose largest output is the label."""
        return 100.0 * float(np.mean(np.argmax(self.feedforward(x), axis=0) == labels))

    def total_cost(self, x: np.ndarray, y: np.ndarray, lmbda: float, n: int) -> float:
        """His ``total_cost``: mean cross-entropy + 0.5 (lambda/n) sum ||W||^2."""
        a = np.clip(self.feedforward(x), 1e-300, 1.0 - 1e-16)
        ce = float(np.sum(-y * np.log(a) - (1.0 - y) * np.log1p(-a))) / x.shape[1]
        return ce + 0.5 * (lmbda / n) * sum(float(np.sum(w * w)) for w in self.weights)


def batch_orders(n: int, epochs: int, *, seed) -> list[np.ndarray]:
    """One permutation of range(n) per epoch (his ``random.shuffle``), from an explicit seed."""
    rng = make_rng(seed)
    return [rng.permutation(n) for _ in range(epochs)]


def _onehot(labels: np.ndarray, k: int = 10) -> np.ndarray:
    out = np.zeros((k, labels.size))
    out[labels, np.arange(labels.size)] = 1.0
    return out


def train_numpy(weights, biases, data, orders, *, eta, lmbda, batch_size, quiet=True,
                desc="numpy"):
    """Train :class:`NielsenNetwork`; per-epoch evaluation accuracy (%) and training cost."""
    x_tr, y_tr, x_ev, y_ev = data
    xt, yt, xe = x_tr.T, _onehot(y_tr), x_ev.T
    n = x_tr.shape[0]
    net = NielsenNetwork(weights, biases)
    acc, cost = [], []
    for order in progress(orders, desc=desc, quiet=quiet):
        for k in range(0, n, batch_size):
            idx = order[k:k + batch_size]
            net.update_mini_batch(xt[:, idx], yt[:, idx], eta, lmbda, n)
        acc.append(net.accuracy(xe, y_ev))
        cost.append(net.total_cost(xt, yt, lmbda, n))
    return {"eval_accuracy": acc, "train_cost": cost}


def train_torch(weights, biases, data, orders, *, eta, lmbda, batch_size, dtype="float64",
                quiet=True, desc="torch") -> dict:
    """The same network and update in PyTorch: sigmoid outputs, cross-entropy summed over the
    outputs and averaged over the mini-batch (``binary_cross_entropy_with_logits``), gradients by
    autograd, then ``W <- (1 - eta*lambda/n) W - eta*grad``, ``b <- b - eta*grad``."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    tdtype = getattr(torch, dtype)
    x_tr, y_tr, x_ev, y_ev = data
    n = x_tr.shape[0]
    sizes = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    layers: list = []
    for i, (w, b) in enumerate(zip(weights, biases)):
        lin = nn.Linear(w.shape[1], w.shape[0]).to(tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.asarray(w)))
            lin.bias.copy_(torch.from_numpy(np.asarray(b).reshape(-1)))
        layers.append(lin)
        if i < len(weights) - 1:
            layers.append(nn.Sigmoid())
    net = nn.Sequential(*layers)
    xt = torch.from_numpy(x_tr).to(tdtype)
    yt = torch.from_numpy(_onehot(y_tr, sizes[-1]).T.copy()).to(tdtype)
    xe = torch.from_numpy(x_ev).to(tdtype)
    ye = torch.from_numpy(y_ev)
    decay = 1.0 - eta * (lmbda / n)
    acc = []
    for order in progress(orders, desc=desc, quiet=quiet):
        order_t = torch.from_numpy(order)
        for k in range(0, n, batch_size):
            idx = order_t[k:k + batch_size]
            logits = net(xt[idx])
            loss = F.binary_cross_entropy_with_logits(logits, yt[idx], reduction="sum") / len(idx)
            net.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                for lin in layers[::2]:
                    lin.weight.mul_(decay).sub_(eta * lin.weight.grad)
                    lin.bias.sub_(eta * lin.bias.grad)
        with torch.no_grad():
            acc.append(100.0 * float((net(xe).argmax(1) == ye).double().mean()))
    return {"eval_accuracy": acc}


# ------------------------------------------------------------------------------ the case
def load(cfg: Config, data_dir: str | None):
    """(x_train, y_train, x_eval, y_eval) with pixels in [0, 1], float64, flattened."""
    ds = load_data(cfg.dataset, seed=0, data_dir=data_dir, n_train=cfg.n_train,
                   n_test=cfg.n_test, standardize=False)
    out = []
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if x.max() > 1.5:  # 0..255 grey levels -> [0, 1] like Nielsen's mnist_loader
            x = x / 255.0
        out += [x, np.asarray(y, dtype=np.int64)]
    return tuple(out)


def run(cfg: Config, *, data_dir: str | None = None, quiet: bool = False,
        checkpoint: Checkpoint | None = None) -> dict:
    """Train every (hidden width, init, seed) in NumPy (and one arm in PyTorch); return results."""
    ck = checkpoint or Checkpoint(None, {})
    data = load(cfg, data_dir)
    n_train = data[0].shape[0]
    runs = []
    for h in cfg.hidden:
        for init in cfg.inits:
            for seed in cfg.seeds:
                key = f"numpy/{h}/{init}/{seed}"

                def arm(h=h, init=init, seed=seed, key=key):
                    w, b = initial_params([784, h, 10], init, seed=seed)
                    orders = batch_orders(n_train, cfg.epochs, seed=seed + 1_000_003)
                    return train_numpy(w, b, data, orders, eta=cfg.eta, lmbda=cfg.lmbda,
                                       batch_size=cfg.batch_size, quiet=quiet, desc=key)

                runs.append({"backend": "numpy", "hidden": h, "init": init, "seed": seed,
                             **ck.run(key, arm)})
    agreement = []
    if cfg.torch_check:
        h, seed = cfg.hidden[0], cfg.seeds[0]
        for init in cfg.inits:
            key = f"torch/{h}/{init}/{seed}"

            def tarm(h=h, init=init, seed=seed, key=key):
                w, b = initial_params([784, h, 10], init, seed=seed)
                orders = batch_orders(n_train, cfg.epochs, seed=seed + 1_000_003)
                return train_torch(w, b, data, orders, eta=cfg.eta, lmbda=cfg.lmbda,
                                   batch_size=cfg.batch_size, dtype=cfg.torch_dtype, quiet=quiet,
                                   desc=key)

            t = ck.run(key, tarm)
            ref = next(r for r in runs if (r["hidden"], r["init"], r["seed"]) == (h, init, seed))
            diff = float(np.max(np.abs(np.subtract(t["eval_accuracy"], ref["eval_accuracy"]))))
            agreement.append({"hidden": h, "init": init, "seed": seed,
                              "torch_eval_accuracy": t["eval_accuracy"],
                              "max_abs_diff_points": diff})
    summary = summarize(runs)
    headline = []
    for h, by_init in summary.items():
        for init, curve in by_init.items():
            pub = PUBLISHED.get(int(h), {}).get(init, {})
            headline.append(f"784-{h}-10 {init:15s} epoch 1 {curve[0]:.2f} -> epoch {len(curve)} "
                            f"{curve[-1]:.2f} (Nielsen, 50k images: {fmt_pct(pub.get(1))} -> "
                            f"{fmt_pct(pub.get(30))} at epoch 30)")
    for a in agreement:
        headline.append(f"NumPy vs PyTorch ({a['init']}): max difference "
                        f"{a['max_abs_diff_points']:.2f} points")
    return {"case": NAME, "config": cfg, "n_train": n_train, "n_eval": int(data[2].shape[0]),
            "runs": runs, "torch_agreement": agreement, "published": PUBLISHED,
            "data_note": DATA_NOTE, "summary": summary, "headline": headline}


def summarize(runs: list[dict]) -> dict:
    """Mean (over seeds) evaluation accuracy per hidden width, init and epoch (1-based)."""
    out: dict = {}
    for r in runs:
        out.setdefault(str(r["hidden"]), {}).setdefault(r["init"], []).append(r["eval_accuracy"])
    return {h: {i: np.mean(np.array(v), axis=0).tolist() for i, v in d.items()}
            for h, d in out.items()}


def report(results: dict):
    """The HTML report: our accuracy beside Nielsen's at epochs 1, 5, 10, 30, and the curves."""
    from ...report.html import HtmlReport

    cfg = results["config"]
    rep = HtmlReport(TITLE, PAPER)
    rep.paragraph(DATA_NOTE, note=True)
    rep.paragraph(f"Training images: {results['n_train']}; evaluation images: {results['n_eval']}; "
                  f"epochs {cfg['epochs']}, eta {cfg['eta']}, lambda {cfg['lmbda']}, mini-batch "
                  f"{cfg['batch_size']}, seeds {cfg['seeds']} (ours: mean over seeds).")
    rows = []
    for h, by_init in results["summary"].items():
        pub = PUBLISHED.get(int(h), {})
        for init, curve in by_init.items():
            for ep in sorted(set(pub.get(init, {})) | {1, len(curve)}):
                ours = curve[ep - 1] if ep <= len(curve) else None
                rows.append([f"784-{h}-10", init, ep, fmt_pct(ours),
                             fmt_pct(pub.get(init, {}).get(ep))])
    rep.heading("Evaluation accuracy (%): ours beside Nielsen's")
    rep.table(["network", "init", "epoch", "ours", "Nielsen (50k train)"], rows)
    pyplot = plt()
    for h, by_init in results["summary"].items():
        fig, ax = pyplot.subplots(figsize=(6.5, 4))
        colors = init_colors(list(by_init))
        for init, curve in by_init.items():
            line, = ax.plot(range(1, len(curve) + 1), curve, marker="o", ms=3,
                            color=colors[init], label=f"{init} (ours)")
            published = PUBLISHED.get(int(h), {}).get(init, {})
            if published:
                ax.plot(list(published), list(published.values()), "x--", color=line.get_color(),
                        label=f"{init} (Nielsen)")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("evaluation accuracy (%)")
        ax.set_title(f"784-{h}-10")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        rep.figure(fig, f"Accuracy per epoch, 784-{h}-10")
    if results["torch_agreement"]:
        rep.heading("NumPy (as published) vs PyTorch, same initial weights and batch order")
        rep.table(["hidden", "init", "seed", "max |difference| (points)"],
                  [[a["hidden"], a["init"], a["seed"], a["max_abs_diff_points"]]
                   for a in results["torch_agreement"]])
    return rep
