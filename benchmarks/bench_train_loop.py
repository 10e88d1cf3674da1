"""The lab's training loop (``initlab.lab.train.train``) against a bare single-thread SGD loop over
the same model and data, side by side in one process.

    python benchmarks/bench_train_loop.py                      # depths 10, 50, 200 (+1000 briefly)
    python benchmarks/bench_train_loop.py --quick              # depths 10, 50; 1 repeat
    python benchmarks/bench_train_loop.py --out FILE.md        # also write the markdown table

The model is the isometry reproduction's: a plain tanh MLP of width 256 on the MNIST subset
(``--data-dir``, 7,000 training images at ``n_val=1000``; random standardized data of the same
shape when the file is missing), SGD with momentum 0.9, batch 64, one epoch per repeat.

Four timings per depth, ``--epochs E`` epochs each, interleaved round by round
(``_util.best_of``; the best of ``--repeat``), in CPU time of this process
(``time.process_time``; torch runs on 1 thread, so that is the work done; on the shared 2-core
machine wall time also counts the other jobs and varied 2x between rounds):

* ``bare``: a plain loop, the same batch order (``torch.randperm`` from a seeded generator), the
  same ``model(x[idx])`` / ``F.cross_entropy`` / ``backward`` / ``opt.step()``, no evaluation;
* ``bare+eval``: the same plus what ``train`` measures for its history by default (loss and
  accuracy on the train, validation and test splits in eval mode, before training and after each
  epoch: E + 1 evaluations), written as a plain ``torch.no_grad()`` loop;
* ``train``: ``train(model, data, TrainConfig(epochs=E), seed=0)`` (E + 1 evaluations);
* ``train, eval_every=E``: the same measuring only at init and at the end (2 evaluations), as
  the isometry reproduction runs it.

``train / (bare+eval)`` is the loop's own overhead at equal work; ``train(eval_every=E) / bare``
is what a reproduction arm costs against a bare loop that measures nothing (target <= 1.2x; it
falls as E grows, since the 2 evaluations are spread over more epochs). Depth 1000 is measured
on ``--deep-steps`` steps and extrapolated to one epoch (no evaluation).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _util import best_of, machine_info, markdown_table  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist10k.npz"


def load(data_dir: Path):
    import numpy as np

    from initlab.lab.data import Dataset, load_dataset

    if data_dir.is_file():
        return load_dataset("mnist", data_dir=str(data_dir), n_val=1000), "MNIST subset"
    rng = np.random.default_rng(0)

    def split(n):
        return (rng.standard_normal((n, 784)).astype(np.float32),
                rng.integers(0, 10, n).astype(np.int64))

    (xtr, ytr), (xva, yva), (xte, yte) = split(7000), split(1000), split(2000)
    return Dataset("random", xtr, ytr, xva, yva, xte, yte, 10, (1, 28, 28)), "random data"


def make_model(depth: int, width: int, n_in: int):
    from initlab.lab.models import ModelConfig, build_model

    return build_model(ModelConfig(kind="mlp", depth=depth, width=width, activation="tanh",
                                   in_shape=(n_in,), n_classes=10))


def bare_epoch(model, x, y, batch: int, lr: float, max_steps: int | None = None) -> None:
    import torch
    import torch.nn.functional as F

    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(y), generator=gen)
    model.train()
    for step, i in enumerate(range(0, len(y), batch)):
        if max_steps is not None and step >= max_steps:
            break
        idx = perm[i:i + batch]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()


def bare_eval(model, data) -> None:
    import torch
    import torch.nn.functional as F

    model.eval()
    with torch.no_grad():
        for split in ("train", "val", "test"):
            x = torch.from_numpy(getattr(data, f"x_{split}"))
            y = torch.from_numpy(getattr(data, f"y_{split}"))
            for i in range(0, len(y), 2048):
                out = model(x[i:i + 2048])
                float(F.cross_entropy(out, y[i:i + 2048]))
                int((out.argmax(1) == y[i:i + 2048]).sum())
    model.train()


def time_depth(model, data, x, y, tc, repeat: int, warmup: int) -> dict[str, float]:
    """Best times of the four variants (module docstring) on ``model``, from the same state."""
    from initlab.lab.train import train

    E = tc.epochs
    tc_last = replace(tc, eval_every=E)
    state = {k: v.clone() for k, v in model.state_dict().items()}

    def bare():
        model.load_state_dict(state)
        for _ in range(E):
            bare_epoch(model, x, y, tc.batch_size, tc.lr)

    def bare_plus_eval():
        model.load_state_dict(state)
        bare_eval(model, data)
        for _ in range(E):
            bare_epoch(model, x, y, tc.batch_size, tc.lr)
            bare_eval(model, data)

    def lab():
        model.load_state_dict(state)
        train(model, data, tc, seed=0)

    def lab_last():
        model.load_state_dict(state)
        train(model, data, tc_last, seed=0)

    return best_of({"bare": bare, "bare+eval": bare_plus_eval, "train": lab,
                    "train_last": lab_last}, repeat=repeat, warmup=warmup,
                   clock=time.process_time)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depths", default="10,50,200")
    ap.add_argument("--deep", type=int, default=1000, help="depth measured briefly (0: skip)")
    ap.add_argument("--deep-steps", type=int, default=10)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)

    import torch

    from initlab.lab.train import TrainConfig

    torch.set_num_threads(1)
    depths = [int(d) for d in args.depths.split(",")]
    repeat = args.repeat
    if args.quick:
        depths, repeat, args.deep = [d for d in depths if d <= 50], 1, 0
    data, source = load(args.data_dir)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    E = args.epochs
    tc = TrainConfig(optimizer="sgd", lr=1e-3, momentum=0.9, batch_size=64, epochs=E)
    rows = []
    for depth in depths:
        t = time_depth(make_model(depth, args.width, data.n_features), data, x, y, tc, repeat,
                       warmup=0 if depth >= 200 else 1)
        rows.append([depth, f"{t['bare'] / E:.2f} s", f"{t['bare']:.2f} s",
                     f"{t['bare+eval']:.2f} s", f"{t['train']:.2f} s", f"{t['train_last']:.2f} s",
                     f"{t['train'] / t['bare+eval']:.3f}x", f"{t['train_last'] / t['bare']:.3f}x"])
        print(rows[-1], flush=True)
    if args.deep:
        model = make_model(args.deep, args.width, data.n_features)
        steps_per_epoch = -(-len(y) // 64)
        t0 = time.process_time()
        bare_epoch(model, x, y, 64, tc.lr, max_steps=args.deep_steps)
        per_step = (time.process_time() - t0) / args.deep_steps
        rows.append([f"{args.deep} (bare, {args.deep_steps} steps, extrapolated)",
                     f"{per_step * steps_per_epoch:.1f} s", "-", "-", "-", "-", "-", "-"])
        print(rows[-1], flush=True)
    m = machine_info()
    head = (f"{source}, {len(y)} training images, width {args.width}, batch 64, {E} epochs, "
            f"best of {repeat} in CPU time, torch threads {torch.get_num_threads()}; "
            f"load average {os.getloadavg()[0]:.2f}; {m}")
    table = markdown_table(["depth", "bare, per epoch", f"bare ({E} epochs)",
                            f"bare + {E + 1} evals", "train()", f"train(eval_every={E})",
                            "train / (bare + evals)", f"train(eval_every={E}) / bare"], rows)
    print(head)
    print(table)
    if args.out:
        args.out.write_text(head + "\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
