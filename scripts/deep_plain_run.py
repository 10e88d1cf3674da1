"""One training run of a plain deep MLP or CNN under one initialization, outside a
reproduction's grid: the single cells (depth 200 and 1000, ReLU at depth 50, a sigma_b^2 sweep,
the ReLU CNN) quoted in RESULTS.md's isometry section, measured while the full ``initlab
reproduce isometry --full`` grid runs.

    python scripts/deep_plain_run.py --data ../shared/data/mnist10k.npz --init auto --depth 200 \
        --lr 1e-3 --seed 0 --out runs.jsonl
    python scripts/deep_plain_run.py --data ../shared/data/mnist10k.npz --kind cnn --act relu \
        --init auto --depth 50 --lr 1e-3 --out runs.jsonl

The protocol is the isometry reproduction's (issue #11): the lab's plain MLP (width 256, no
normalization, no residual), the MNIST subset split 7,000 / 1,000 / 2,000, inputs standardized,
SGD momentum 0.9, batch 64, 10 epochs, one torch thread. ``--kind cnn``: the reproduction's
plain CNN instead (``--channels`` 16, 3x3 same-padded convolutions, no norm, no residual, then a
dense readout) on the images average-pooled ``--downsample`` x (28 -> 14). ``--init``: a
built-in plan name (``auto``, ``orthogonal``, ``he``, ``glorot``, ``critical``, ``isometry``,
...), ``torch_default`` (the model as built), ``orthogonal_he`` or ``delta_orthogonal`` (as the
reproduction's ReLU and CNN arms draw them), or ``orthc:SB2`` (orthogonal weights on the
mean-field critical line at bias variance SB2, biases N(0, SB2)). One JSON line per run
(validation/test/train accuracy per epoch, epoch 0 at init) is appended to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from torch import nn

import initlab
from initlab.lab.data import downsample, load_dataset
from initlab.lab.models import ModelConfig, build_model
from initlab.lab.reproductions.isometry import init_net
from initlab.lab.train import TrainConfig, train
from initlab.modelinit import Plan, Rule, apply
from initlab.theory.meanfield import critical_sigma_w2


def init_model(model: nn.Module, spec: str, act: str, seed: int, batch: torch.Tensor) -> None:
    """``spec`` as the module docstring says; every name but ``orthc:SB2`` goes through the
    isometry reproduction's own :func:`initlab.lab.reproductions.isometry.init_net`
    (``torch_default``, ``orthogonal_he``, ``delta_orthogonal``, and plan names through
    :func:`initlab.lab.compare.init_model`: ``batch`` for lsuv/auto, ``activation`` for
    critical)."""
    if spec.startswith("orthc:"):
        sb2 = float(spec.split(":", 1)[1])
        gain = math.sqrt(critical_sigma_w2(sb2, act))
        bias = initlab.get("normal", std=math.sqrt(sb2)) if sb2 > 0 else "zeros"
        apply(model, Plan([Rule(nn.Linear, weight=initlab.get("orthogonal", gain=gain),
                                bias=bias)]), seed=seed)
        return
    init_net(model, spec, seed=seed, batch=batch, activation=act)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="MNIST .npz (e.g. ../shared/data/mnist10k.npz)")
    ap.add_argument("--init", required=True)
    ap.add_argument("--depth", type=int, required=True, help="hidden layers")
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--act", default="tanh")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--kind", choices=("mlp", "cnn"), default="mlp")
    ap.add_argument("--channels", type=int, default=16, help="CNN channels")
    ap.add_argument("--downsample", type=int, default=2, help="CNN: average-pooling factor")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="deep_plain_runs.jsonl")
    a = ap.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("mnist", seed=0, data_dir=a.data, n_val=1000)
    if a.kind == "cnn":
        data = downsample(data, a.downsample)
        mc = ModelConfig(kind="cnn", depth=a.depth, channels=a.channels, activation=a.act,
                         in_shape=data.shape, n_classes=data.n_classes)
    else:
        mc = ModelConfig(kind="mlp", depth=a.depth, width=a.width, activation=a.act,
                         in_shape=(data.n_features,), n_classes=data.n_classes)
    model = build_model(mc)
    init_model(model, a.init, a.act, a.seed, torch.from_numpy(data.x_train[:256]))
    t0 = time.time()
    hist = train(model, data, TrainConfig(lr=a.lr, epochs=a.epochs, batch_size=64, momentum=0.9),
                 seed=a.seed)
    rec = {"init": a.init, "kind": a.kind, "act": a.act, "depth": a.depth,
           **({"channels": a.channels, "downsample": a.downsample} if a.kind == "cnn" else
              {"width": a.width}), "lr": a.lr,
           "epochs": a.epochs, "seed": a.seed, "seconds": round(time.time() - t0, 1),
           "val": [h["val_acc"] for h in hist], "test": [h["test_acc"] for h in hist],
           "train": [h["train_acc"] for h in hist]}
    line = json.dumps(rec)
    print(line)
    with open(a.out, "a") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    main()
