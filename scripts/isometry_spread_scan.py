"""The isometric point's spread target, scanned on the isometry reproduction's own arms: one
training run of the full config's plain tanh MLP (``initlab reproduce isometry --full``: width
256, the MNIST subset split 7,000 / 1,000 / 2,000, SGD momentum 0.9, batch 64, 10 epochs, one
torch thread, the model built from the arm's seed) initialized by the ``isometry`` plan with
``spread=TARGET``.

    python scripts/isometry_spread_scan.py --data ../shared/data/mnist10k.npz --depth 200 \\
        --lr 3e-4 --spread 4 --seed 0 --out spread_scan.jsonl

At the default target (:data:`initlab.core.criticality.ISOMETRY_SPREAD_TARGET`) and a depth
past :data:`initlab.core.recommend.DEEP` this draws exactly what the reproduction's ``auto`` arm
draws (the script checks it), so its scores are that arm's. One JSON line per run (the point:
sigma_w2, sigma_b2, q*, predicted spread; validation/test/train accuracy at the end; seconds) is
appended to ``--out``. RESULTS.md's isometry section quotes the scan.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

import initlab
from initlab.core.criticality import ISOMETRY_SPREAD_TARGET
from initlab.core.recommend import DEEP, recommend
from initlab.lab.reproductions import isometry
from initlab.lab.train import train
from initlab.modelinit.describe import describe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="MNIST .npz (e.g. ../shared/data/mnist10k.npz)")
    ap.add_argument("--depth", type=int, required=True, help="hidden layers")
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--spread", type=float, default=ISOMETRY_SPREAD_TARGET)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help="default: the full config's (10)")
    ap.add_argument("--out", default="spread_scan.jsonl")
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = isometry.config(full=True)
    if a.epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=a.epochs)
    data = isometry.load(cfg, a.data)
    batch = torch.from_numpy(data.x_train[:cfg.lsuv_batch])
    model = isometry.build("mlp", a.depth, cfg, data, a.seed)
    initlab.apply(model, "isometry", seed=a.seed, batch=batch, spread=a.spread)
    plain = describe(model, batch).plain_depth()   # the depth the plan read: weighted layers
    if a.spread == ISOMETRY_SPREAD_TARGET and plain > DEEP:
        ref = isometry.build("mlp", a.depth, cfg, data, a.seed)
        isometry.init_net(ref, "auto", seed=a.seed, batch=batch)
        same = all(torch.equal(p, q) for p, q in zip(model.parameters(), ref.parameters()))
        if not same:
            raise SystemExit("the isometry plan at the default target did not draw what the "
                             "reproduction's auto arm draws")
    point = recommend("tanh", depth=plain, isometry=True, spread=a.spread).theory
    t0 = time.perf_counter()
    last = train(model, data, isometry.train_config("mlp", a.lr, cfg), seed=a.seed)[-1]
    rec = {"depth": a.depth, "spread_target": a.spread, "lr": a.lr, "seed": a.seed,
           "epochs": cfg.epochs, "sigma_w2": point.sigma_w2, "sigma_b2": point.sigma_b2,
           "q_star": point.q_star, "predicted_spread": point.spread,
           "val_acc": last["val_acc"], "test_acc": last["test_acc"],
           "train_acc": last["train_acc"], "diverged": bool(last["diverged"]),
           "seconds": round(time.perf_counter() - t0, 1)}
    line = json.dumps(rec)
    print(line)
    with open(a.out, "a") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    main()
