"""``initlab reproduce NAME``: run a classic initialization experiment and write its report.

    initlab reproduce ng-circles --out runs/ng            # reduced config
    initlab reproduce nielsen-ch3 --full --data-dir ../shared/data/mnist10k.npz --out runs/n
    initlab reproduce --list

Writes ``OUT/report.html`` (ours beside the published numbers) and ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    """Add the ``reproduce`` subcommand."""
    from ..util.argtypes import whole_number
    from .reproductions import names

    p = subparsers.add_parser(
        "reproduce", help="reproduce a classic initialization experiment",
        description="Reproduce a classic initialization result and write OUT/report.html and "
                    "OUT/results.json. Cases: " + ", ".join(names()) + ".")
    p.add_argument("name", nargs="?", metavar="NAME", help="the reproduction (see --list)")
    p.add_argument("--list", action="store_true", help="list the reproductions and exit")
    p.add_argument("--full", action="store_true",
                   help="the published-length config (default: a reduced, faster one)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory (default: runs/reproduce-NAME)")
    p.add_argument("--data-dir", default=None, metavar="D",
                   help="MNIST IDX directory or an .npz with images/labels "
                        "(e.g. ../shared/data/mnist10k.npz)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--resume", action="store_true",
                   help="continue the experiment already in --out (finished arms are kept)")
    p.add_argument("--force", action="store_true", help="overwrite whatever --out holds")
    p.add_argument("--workers", type=whole_number, default=1, metavar="N",
                   help="train independent arms in N processes, e.g. one per core "
                        "(mup-transfer; the results do not depend on N)")
    p.add_argument("--threads", type=whole_number, default=None, metavar="N",
                   help="torch CPU threads per arm (default: 1, as compare and demo: the lab's "
                        "small models run fastest on one, and N x --workers never "
                        "oversubscribes the cores)")
    p.set_defaults(func=handler)


def _list() -> None:
    from .reproductions import get_case, names

    for n in names():
        print(f"{n:15s} {get_case(n).TITLE}")


def handler(args: argparse.Namespace) -> int:
    """Run the reproduction; 0 on success, 2 on an unknown name or bad input."""
    from .reproductions import names, reproduce

    if args.list:
        _list()
        return 0
    if args.name is None or args.name not in names():
        what = "no reproduction named" if args.name is None else f"unknown reproduction {args.name!r};"
        print(f"initlab: error: {what} choose one of:", file=sys.stderr)
        for n in names():
            print(f"  {n}", file=sys.stderr)
        return 2
    from .progress import default_threads

    out = args.out or f"runs/reproduce-{args.name}"
    threads = args.threads
    if threads is None and isinstance(args.workers, int) and args.workers >= 1:
        threads = default_threads(jobs=args.workers)    # a bad --workers is refused by reproduce
    res = reproduce(args.name, full=args.full, out=out, data_dir=args.data_dir,
                    quiet=args.quiet, resume=args.resume, force=args.force,
                    workers=args.workers, threads=threads)
    for line in res.get("headline", []):
        print(line)
    print(f"report: {out}/report.html ({res['seconds']} s)")
    return 0
