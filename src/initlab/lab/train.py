"""A plain training loop: mini-batch SGD (with momentum) or Adam, L2, cross-entropy or MSE.

>>> hist = train(model, data, TrainConfig(lr=0.05, epochs=5), seed=0)   # doctest: +SKIP
>>> hist[0]["test_acc"], hist[-1]["test_acc"]                          # epoch 0 = at init

Deterministic for a seed on CPU: the only randomness is the mini-batch order, drawn from an
explicit ``torch.Generator`` seeded from ``seed``. With ``checkpoint=path``, the model, optimizer,
generator state and history are saved atomically after every finished epoch, and a call with an
existing checkpoint continues from it: an interrupted run resumed this way produces exactly the
history of an uninterrupted one.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.validation import check_choice, check_scalar
from ..diagnostics.stats import output_saturation
from ..util.atomic import atomic_write_bytes
from ..util.hashing import stable_u64
from .models import hidden_layers

OPTIMIZERS = ("sgd", "adam")
LOSSES = ("cross_entropy", "mse", "bce")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Defaults: SGD with momentum 0.9, lr 0.01, batch 64, 10 epochs."""

    optimizer: str = "sgd"          # "sgd" (with momentum) or "adam"
    lr: float = 0.01                # learning rate
    momentum: float = 0.9           # SGD momentum (ignored by Adam)
    weight_decay: float = 0.0       # L2 coefficient, added to the gradient (coupled, as torch's)
    batch_size: int = 64            # mini-batch size (>= training set size means full batch)
    epochs: int = 10                # passes over the training set
    loss: str = "cross_entropy"     # "cross_entropy", "mse" (vs one-hot) or "bce" (1 output)
    eval_batch_size: int = 2048     # batch size for evaluation only
    # measure the splits after every eval_every-th epoch (and always at init and at the end);
    # evaluating all three splits costs about half a training epoch, so a 10-epoch run that only
    # needs its final numbers is ~1.4x faster with eval_every=epochs
    eval_every: int = 1

    def __post_init__(self):
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_choice(self.loss, "loss", LOSSES)
        check_scalar(self.lr, "lr", min_val=0, include_min=False)
        check_scalar(self.momentum, "momentum", min_val=0, max_val=1, include_max=False)
        check_scalar(self.weight_decay, "weight_decay", min_val=0)
        check_scalar(self.batch_size, "batch_size", min_val=1, integer=True)
        check_scalar(self.epochs, "epochs", min_val=0, integer=True)
        check_scalar(self.eval_batch_size, "eval_batch_size", min_val=1, integer=True)
        check_scalar(self.eval_every, "eval_every", min_val=1, integer=True)

    def to_dict(self) -> dict:
        return asdict(self)


def loss_fn(name: str, out: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Mean loss over the batch. ``mse``: mean over batch and outputs of (out - onehot(y))^2;
    ``bce``: sigmoid cross-entropy of a single logit against y in {0, 1}."""
    if name == "cross_entropy":
        return F.cross_entropy(out, y)
    if name == "mse":
        return F.mse_loss(out, F.one_hot(y, n_classes).to(out.dtype))
    return F.binary_cross_entropy_with_logits(out.reshape(-1), y.to(out.dtype))


def _predict(name: str, out: torch.Tensor) -> torch.Tensor:
    if name == "bce":
        return (out.reshape(-1) > 0).long()
    return out.argmax(1)


def _clean(x: float) -> float | None:
    """JSON-safe float: non-finite values (a diverged run) become None."""
    x = float(x)
    return x if math.isfinite(x) else None


@torch.no_grad()
def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, cfg: TrainConfig,
             n_classes: int) -> tuple[float | None, float | None]:
    """``(mean loss, accuracy)`` on (x, y) in eval mode; ``(None, None)`` for an empty split."""
    if len(y) == 0:
        return None, None
    was = model.training
    model.eval()
    total, correct = 0.0, 0
    for i in range(0, len(y), cfg.eval_batch_size):
        xb = torch.from_numpy(x[i:i + cfg.eval_batch_size])
        yb = torch.from_numpy(y[i:i + cfg.eval_batch_size])
        out = model(xb)
        total += float(loss_fn(cfg.loss, out, yb, n_classes)) * len(yb)
        correct += int((_predict(cfg.loss, out) == yb).sum())
    model.train(was)
    return _clean(total / len(y)), correct / len(y)


@torch.no_grad()
def layer_activations(model: nn.Module, x: np.ndarray | torch.Tensor) -> dict[str, np.ndarray]:
    """The hidden activations of ``model`` on the batch ``x`` (see
    :func:`~initlab.lab.models.hidden_layers`), as float32 arrays keyed by module name."""
    acts: dict[str, np.ndarray] = {}
    handles = []
    for name, mod in hidden_layers(model):
        def hook(_m, _inp, out, name=name):
            acts[name] = out.detach().float().cpu().numpy().copy()
        handles.append(mod.register_forward_hook(hook))
    was = model.training
    model.eval()
    try:
        model(torch.as_tensor(x))
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return acts


def layer_stats(model: nn.Module, x, activation: str | None = None) -> list[dict]:
    """Per hidden layer: ``name``, ``mean``, ``std`` of its activations on ``x``, ``frac_zero``
    (|a| < 1e-6: dead ReLUs) and ``frac_saturated``, the fraction of activations within 0.01 of a
    bound of the activation's range (:func:`initlab.diagnostics.stats.output_saturation`: tanh
    |a| > 0.99, sigmoid a < 0.01 or a > 0.99, the saturation Glorot & Bengio 2010 plot; None for
    an unbounded activation, or without ``activation``, a registry name)."""
    rows = []
    for name, a in layer_activations(model, x).items():
        sat = None if activation is None else output_saturation(a, activation)
        rows.append({"name": name, "mean": _clean(a.mean()), "std": _clean(a.std()),
                     "frac_zero": float(np.mean(np.abs(a) < 1e-6)), "frac_saturated": sat})
    return rows


def make_optimizer(model: nn.Module, cfg: TrainConfig,
                   param_groups: list[dict] | None = None) -> torch.optim.Optimizer:
    """torch's SGD (with momentum) or Adam over ``model``'s parameters, or over
    ``param_groups`` (e.g. a width parametrization's per-parameter learning rates,
    :meth:`initlab.Parametrization.param_groups`; keys torch does not know are dropped)."""
    params: Iterable[torch.Tensor] | Iterable[dict[str, Any]] = model.parameters()
    if param_groups is not None:
        params = [{k: v for k, v in g.items() if k not in ("names", "lr_mult")}
                  for g in param_groups]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _save_checkpoint(path: Path, model, opt, gen, history, diverged) -> None:
    buf = io.BytesIO()
    torch.save({"epoch": history[-1]["epoch"], "model": model.state_dict(),
                "optimizer": opt.state_dict(), "generator": gen.get_state(),
                "history": history, "diverged": diverged}, buf)
    atomic_write_bytes(path, buf.getvalue())


def train(model: nn.Module, data, cfg: TrainConfig, *, seed: int,
          on_epoch: Callable[[dict], None] | None = None, progress: bool = False,
          record_layer_stats: bool | str = False, checkpoint: str | Path | None = None,
          activation: str | None = None, stats_batch: int = 256,
          desc: str = "train", param_groups: list[dict] | None = None) -> list[dict]:
    """Train ``model`` on ``data`` (a :class:`~initlab.lab.data.Dataset`) and return one record
    per epoch, epoch 0 being the model before training.

    Each record: ``epoch``, ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc`` (None without
    a validation split), ``test_loss``, ``test_acc`` (all None at epochs that
    ``cfg.eval_every`` skips), ``diverged`` and, with
    ``record_layer_stats``, ``layers`` (:func:`layer_stats` on the first ``stats_batch`` training
    examples; every epoch, or only epoch 0 with ``record_layer_stats="init"``). Losses and accuracies are measured on the whole split in eval mode after the
    epoch. A non-finite training loss marks the run diverged: later epochs are recorded without
    further steps.

    ``param_groups``: optimizer parameter groups to use instead of one group at ``cfg.lr`` (a
    width parametrization's, for instance).

    ``on_epoch(record)`` is called after each record is final (and after the checkpoint is
    written); with ``checkpoint`` the run resumes from the last finished epoch saved there, and
    ``on_epoch`` is called only for the epochs run now.
    """
    seed = check_scalar(seed, "seed", min_val=0, integer=True)
    gen = torch.Generator().manual_seed(stable_u64("initlab.lab.train.shuffle", seed) % 2**63)
    opt = make_optimizer(model, cfg, param_groups)
    n, k = len(data.y_train), data.n_classes
    history: list[dict] = []
    diverged = False
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        history = list(state["history"])
        diverged = bool(state["diverged"])
    x_train = torch.from_numpy(data.x_train)
    y_train = torch.from_numpy(data.y_train)
    stats_x = data.x_train[:stats_batch]

    def record(epoch: int) -> dict:
        rec: dict = {"epoch": epoch}
        measured = epoch % cfg.eval_every == 0 or epoch == cfg.epochs
        for split in ("train", "val", "test"):
            loss, acc = (evaluate(model, getattr(data, f"x_{split}"),
                                  getattr(data, f"y_{split}"), cfg, k) if measured
                         else (None, None))
            rec[f"{split}_loss"], rec[f"{split}_acc"] = loss, acc
        rec["diverged"] = diverged or (measured and rec["train_loss"] is None)
        if record_layer_stats is True or (record_layer_stats == "init" and epoch == 0):
            rec["layers"] = layer_stats(model, stats_x, activation)
        return rec

    def finish(rec: dict) -> None:
        history.append(rec)
        if ckpt is not None:
            _save_checkpoint(ckpt, model, opt, gen, history, diverged)
        if on_epoch is not None:
            on_epoch(rec)

    if not history:
        rec = record(0)
        diverged = rec["diverged"]
        finish(rec)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, initial=len(history) - 1, desc=desc, leave=False,
                   dynamic_ncols=True)
    model.train()
    try:
        for epoch in range(len(history), cfg.epochs + 1):
            if not diverged:
                perm = torch.randperm(n, generator=gen)
                for i in range(0, n, cfg.batch_size):
                    idx = perm[i:i + cfg.batch_size]
                    opt.zero_grad(set_to_none=True)
                    loss = loss_fn(cfg.loss, model(x_train[idx]), y_train[idx], k)
                    if not torch.isfinite(loss):
                        diverged = True
                        break
                    loss.backward()
                    opt.step()
            rec = record(epoch)
            diverged = rec["diverged"]
            finish(rec)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=rec["train_loss"], acc=rec["test_acc"])
    finally:
        if bar is not None:
            bar.close()
    return history
