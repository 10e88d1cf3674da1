"""``initlab compare`` and ``initlab demo`` (also what plain ``initlab`` runs).

    initlab demo [--open]
    initlab compare --data digits --model mlp --depth 10 --width 128 --activation tanh \\
        --inits torch_default,glorot,he,orthogonal,lsuv,critical --epochs 10 --seeds 3 \\
        --out runs/x [--lr 0.01 | --lr-grid 1e-3,1e-2,1e-1] [--quiet] [--resume] [--force]

Both follow the run-folder rules of :mod:`initlab.lab.results`: every option is checked before
the folder is touched; one run writes a folder at a time; a folder holding results is continued
only with ``--resume`` and replaced only with ``--force`` (which moves the old files aside);
without ``--out`` a new run goes to the first free ``runs/demo``, ``runs/demo-2``, ...
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..core.validation import fail
from ..util.argtypes import whole_number

# The demo: a 10-hidden-layer tanh MLP on the 8x8 digits, the six inits. The inits
# clearly differ (PyTorch's default U(+-1/sqrt(fan_in)) shrinks the signal layer by layer and
# stays at chance; Glorot, He, orthogonal, LSUV and critical train), and it runs in well under a
# minute on 2 cores.
DEMO: dict[str, Any] = dict(
    data="digits", model="mlp", depth=10, width=64, activation="tanh",
    inits=("torch_default", "glorot", "he", "orthogonal", "lsuv", "critical"),
    epochs=8, seeds=2, lr=0.01, batch_size=64)
DEMO_OUT = "runs/demo"
COMPARE_OUT = "runs/compare"


def _floats(text: str, name: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise fail(name, "must be a comma-separated list of numbers", text,
                   "pass e.g. --lr-grid 1e-3,1e-2,1e-1.") from None
    if not vals:
        raise fail(name, "must list at least one number", text, "pass e.g. 1e-3,1e-2.")
    return vals


class _Defaults(argparse.HelpFormatter):
    """Append "(default: X)" to help texts that do not already state their default."""

    def _get_help_string(self, action):
        text = action.help or ""
        d = action.default
        if "default" in text or d in (None, False, argparse.SUPPRESS) or not text:
            return text
        return f"{text} (default: {d})"


def _add_run_options(p: argparse.ArgumentParser, out_default: str) -> None:
    p.add_argument("--out", default=None, metavar="DIR",
                   help=f"output directory (default: {out_default}, or the first free "
                        f"{out_default}-2, -3, ... when it holds an earlier run; with --resume "
                        f"or --force: {out_default})")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars (they are drawn only on a terminal anyway)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run of the same experiment in --out")
    p.add_argument("--force", action="store_true",
                   help="start over in --out; its old results are moved into "
                        "--out/replaced-<time>/, never deleted")
    p.add_argument("--open", action="store_true",
                   help="open the report in a browser (never on a headless machine or in CI)")
    p.add_argument("--threads", type=whole_number, default=None, metavar="N",
                   help="torch CPU threads per run (default: 1, which the lab's small models run "
                        "fastest on and which never oversubscribes the cores)")


def _out(args, default: str) -> Path:
    """The output directory: --out as given (checked to be a directory path), else ``default``
    when resuming or forcing, else the first free one of ``default``, ``default-2``, ..."""
    from .results import check_out_dir, next_free

    if args.out is not None:
        return check_out_dir(args.out)
    if args.resume or args.force:
        return check_out_dir(default)
    return check_out_dir(next_free(default))


def register(subparsers) -> None:
    """Add ``compare`` and ``demo``."""
    from ..cli import config_defaults  # CompareConfig's defaults without importing torch

    d = config_defaults("initlab.lab.compare", "CompareConfig")
    p = subparsers.add_parser(
        "compare", help="train one model with several initializations and compare them",
        description="Train every (init, seed) combination on the same data and model, print a "
                    "results table and write OUT/report.html.",
        formatter_class=_Defaults)
    p.add_argument("--data", default=d["data"].default,
                   help="digits, mnist, mnist1d, circles, moons or spirals")
    p.add_argument("--data-dir", default=None, metavar="D",
                   help="mnist: directory of the IDX files (or where to download them), or an "
                        ".npz with images/labels (default: $INITLAB_DATA_DIR or ~/.cache/initlab)")
    p.add_argument("--model", default=d["model"].default,
                   help="mlp, cnn, resmlp, rescnn or linear")
    p.add_argument("--depth", type=whole_number, default=d["depth"].default,
                   help="hidden layers or residual blocks")
    p.add_argument("--width", type=whole_number, default=d["width"].default, help="hidden units")
    p.add_argument("--channels", type=whole_number, default=d["channels"].default, help="conv channels")
    p.add_argument("--activation", default=d["activation"].default,
                   help="relu, tanh, sigmoid, gelu, silu, selu, elu, leaky_relu, softplus, linear")
    p.add_argument("--no-bias", action="store_true", help="layers without biases")
    p.add_argument("--inits", default=",".join(d["inits"].default),
                   help="comma-separated plan names (initlab.apply's built-in plans)")
    p.add_argument("--epochs", type=whole_number, default=d["epochs"].default, help="training epochs")
    p.add_argument("--seeds", type=whole_number, default=d["seeds"].default, help="seeds 0..N-1")
    p.add_argument("--lr", type=float, default=d["lr"].default, help="learning rate")
    p.add_argument("--lr-grid", default=None, metavar="A,B,..",
                   help="pick each init's best lr from these on a validation split")
    p.add_argument("--optimizer", default=d["optimizer"].default, help="sgd or adam")
    p.add_argument("--momentum", type=float, default=d["momentum"].default, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=d["weight_decay"].default,
                   help="L2 coefficient")
    p.add_argument("--batch-size", type=whole_number, default=d["batch_size"].default,
                   help="mini-batch size")
    p.add_argument("--loss", default=d["loss"].default, help="cross_entropy or mse")
    p.add_argument("--n-train", type=whole_number, default=None,
                   help="training examples to use (default: all)")
    p.add_argument("--n-val", type=whole_number, default=None,
                   help="validation examples (default: 15%% of the training pool with --lr-grid)")
    p.add_argument("--target-acc", type=float, default=d["target_acc"].default,
                   help="accuracy for the 'epochs to target' column")
    p.add_argument("--lsuv-batch", type=whole_number, default=d["lsuv_batch"].default,
                   help="first training examples given to data-dependent plans (lsuv, auto)")
    p.add_argument("--data-seed", type=whole_number, default=d["data_seed"].default,
                   help="seed of the train/validation/test split (the same for every run)")
    _add_run_options(p, COMPARE_OUT)
    p.set_defaults(func=_cmd_compare)

    q = subparsers.add_parser(
        "demo", help="a small comparison on the built-in digits (under a minute)",
        description="Compare six initializations of a 10-layer tanh MLP on scikit-learn's 8x8 "
                    "digits (no download): prints the results table and writes an HTML "
                    "report.")
    _add_run_options(q, DEMO_OUT)
    q.set_defaults(func=_cmd_demo)


def _config_from_args(args):
    from .compare import CompareConfig

    inits = tuple(s.strip() for s in args.inits.split(",") if s.strip())
    grid = _floats(args.lr_grid, "lr_grid") if args.lr_grid else ()
    return CompareConfig(
        data=args.data, model=args.model, depth=args.depth, width=args.width,
        activation=args.activation, bias=not args.no_bias, channels=args.channels, inits=inits,
        epochs=args.epochs, seeds=args.seeds, lr=args.lr, lr_grid=grid, optimizer=args.optimizer,
        momentum=args.momentum, weight_decay=args.weight_decay, batch_size=args.batch_size,
        loss=args.loss, n_train=args.n_train, n_val=args.n_val, target_acc=args.target_acc,
        lsuv_batch=args.lsuv_batch, data_seed=args.data_seed, data_dir=args.data_dir)


def _can_open_browser() -> bool:
    if os.environ.get("CI"):
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _threads(args) -> int:
    from ..core.validation import check_scalar
    from .progress import default_threads

    if args.threads is None:
        return default_threads()
    return check_scalar(args.threads, "threads", min_val=1, integer=True,
                        fix="pass --threads 1 (or up to the number of cores).")


def _run(cfg, args, out: Path, threads: int) -> int:
    """Run ``cfg`` into ``out`` (every option already checked) and write its report."""
    import torch

    from .compare import format_table, run_compare, takeaways
    from .compare_report import write_report

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    if not args.quiet:
        print(f"initlab {args.command}: {cfg.model} depth {cfg.depth} width {cfg.width} "
              f"{cfg.activation} on {cfg.data}; inits {', '.join(cfg.inits)}; "
              f"{cfg.epochs} epochs x {cfg.seeds} seeds -> {out}", file=sys.stderr)
    res = run_compare(cfg, out, resume=args.resume, force=args.force, quiet=args.quiet)
    path = write_report(res, command=args.command)
    print(format_table(res.summary, cfg))
    for line in takeaways(res.summary, cfg):
        print("  - " + line)
    print(f"\nreport: {path.resolve()}   ({time.perf_counter() - t0:.1f} s)")
    if args.open:
        if _can_open_browser():
            import webbrowser

            webbrowser.open(path.resolve().as_uri())
        else:
            print("(not opening a browser: no display or running in CI)", file=sys.stderr)
    return 0


def _cmd_compare(args) -> int:
    cfg = _config_from_args(args)  # every option is checked before the folder is chosen
    threads = _threads(args)
    return _run(cfg, args, _out(args, COMPARE_OUT), threads)


def _cmd_demo(args) -> int:
    from .compare import CompareConfig, available_plans

    plans = available_plans()
    inits = tuple(i for i in DEMO["inits"] if i in plans)
    cfg = CompareConfig(**{**DEMO, "inits": inits})
    threads = _threads(args)
    # The same --out/--resume/--force rules as compare: a folder holding results is never
    # overwritten; without --out a rerun writes to the next free runs/demo-N.
    return _run(cfg, args, _out(args, DEMO_OUT), threads)
