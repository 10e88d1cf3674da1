"""One of the isometry reproduction's one-depth arms on its own (issue #11), at the full config:
``--arm cnn`` (default), the tanh CNN (depth 50, 3x3 convolutions, 16 channels, MNIST subset
average-pooled to 14x14, 10 epochs) for delta-orthogonal, Glorot, He and ``auto`` kernels
(``--inits`` narrows them); ``--arm relu``, the plain ReLU MLP (depth 50, width 256, 10
epochs) for He, orthogonal He and ``auto`` (looks-linear); ``--arm relu_cnn``, the same CNN with
ReLU for He, delta-orthogonal He and ``auto`` (looks-linear centre-tap kernels). lr chosen on
the validation split, resumable.

    python scripts/isometry_cnn_arm.py --data ../shared/data/mnist10k.npz --out runs/iso-cnn \
        --lrs 1e-3 3e-3 --seeds 0
    python scripts/isometry_cnn_arm.py --arm relu --data ../shared/data/mnist10k.npz \
        --out runs/iso-relu
    python scripts/isometry_cnn_arm.py --arm relu_cnn --data ../shared/data/mnist10k.npz \
        --out runs/iso-relu-cnn

It runs :func:`initlab.lab.reproductions.isometry.run` with the full config's fields for that arm
and no MLP depths (and none of the other arms), so the arms, their keys and their per-epoch
checkpoints are the reproduction's own; ``--lrs`` and ``--seeds`` narrow the grid (the full
config: the five lrs, seeds 0-2). Prints one JSON line per init (validation accuracy per lr,
chosen lr, test accuracy mean/std).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import torch

from initlab.lab.reproductions import identity_config
from initlab.lab.reproductions import isometry as iso
from initlab.lab.reproductions._common import Checkpoint


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="MNIST .npz (e.g. ../shared/data/mnist10k.npz)")
    ap.add_argument("--out", required=True, help="run folder (resumed when it holds this run)")
    ap.add_argument("--lrs", type=float, nargs="+", default=list(iso.LRS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arm", choices=("cnn", "relu", "relu_cnn"), default="cnn")
    ap.add_argument("--inits", nargs="+", default=None, help="the arm's inits (default: all)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    full = iso.config(full=True)
    # only this arm: the other arms' depths 0 (and the MLP's depths empty)
    only = {"cnn": dict(relu_depth=0, relu_cnn_depth=0, cnn_lrs=tuple(args.lrs)),
            "relu": dict(cnn_depth=0, relu_cnn_depth=0, lrs=tuple(args.lrs)),
            "relu_cnn": dict(cnn_depth=0, relu_depth=0, cnn_lrs=tuple(args.lrs))}[args.arm]
    cfg = dataclasses.replace(full, depths=(), budget_hours=None, seeds=tuple(args.seeds),
                              **only)
    if args.inits:
        cfg = dataclasses.replace(cfg, **{f"{args.arm}_inits": tuple(args.inits)})
    case = {"cnn": "isometry-cnn-arm", "relu": "isometry-relu-arm",
            "relu_cnn": "isometry-relu-cnn-arm"}[args.arm]
    # the reproduction's own identity rules, so the folders recorded before a field was added
    # resume
    ck = Checkpoint(args.out, {"case": case, "config": identity_config(iso, cfg),
                               "data": args.data}, resume=True)
    res = iso.run(cfg, data_dir=args.data, quiet=True, checkpoint=ck)
    for r in res[args.arm]:
        print(json.dumps({k: r[k] for k in ("init", "val_by_lr", "lr", "test_mean", "test_std")
                          if k in r}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
