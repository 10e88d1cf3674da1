"""initlab.torch vs torch.nn.init, side by side: time and peak memory of each sampler.

    python benchmarks/bench_samplers.py              # full sizes (16M elements, 4096^2, ...)
    python benchmarks/bench_samplers.py --quick      # small sizes: a smoke test in seconds
    python benchmarks/bench_samplers.py --out BENCH.md --repeat 7 --threads 2

Each case fills the *same* tensor with torch's function and initlab's drop-in (same arguments,
each with its own seeded ``torch.Generator``), alternating round by round, best of ``--repeat``
(see ``_util.best_of``). Peak memory: each (case, side) is run once more in a fresh subprocess
that reports the peak RSS of one call beyond its already-allocated output (``_util.PeakMemory``),
after a warm-up call on a tiny tensor so lazy imports are not counted (``--no-memory`` skips
this). The machine is
printed with the table: numbers from a shared or throttled CPU are noisy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import (  # noqa: E402
    PeakMemory,
    best_of,
    fmt_mib,
    fmt_time,
    machine_info,
    markdown_table,
    peak_in_subprocess,
)

M16 = 16 * 2**20


def cases(quick: bool, methods=("householder",)) -> list[dict]:
    """One dict per case: name, shape, dtype, function name (same in both), initlab kwargs."""
    n = 2**20 if quick else M16
    side = 1024 if quick else 4096
    orth = [(256, 256), (512, 512), (2048, 128)] if quick else [(2048, 2048), (4096, 4096),
                                                               (16384, 1024)]
    out = [
        dict(name="normal_", shape=(n,), dtype="float32", fn="normal_", kw={}),
        dict(name="uniform_", shape=(n,), dtype="float32", fn="uniform_", kw={"a": -1.0, "b": 1.0}),
        dict(name="trunc_normal_ (std 1, +-2)", shape=(n,), dtype="float32", fn="trunc_normal_",
             kw={}),
        dict(name="trunc_normal_ (std .02, +-2)", shape=(n,), dtype="float32",
             fn="trunc_normal_", kw={"std": 0.02}),  # the README's call: bounds cut nothing
        dict(name="trunc_normal_ (std .02, +-.04)", shape=(n,), dtype="float32",
             fn="trunc_normal_", kw={"std": 0.02, "a": -0.04, "b": 0.04}),
        dict(name="trunc_normal_ bf16", shape=(n,), dtype="bfloat16", fn="trunc_normal_", kw={}),
        dict(name="kaiming_normal_", shape=(side, side), dtype="float32", fn="kaiming_normal_",
             kw={"nonlinearity": "relu"}),
        dict(name="kaiming_uniform_", shape=(side, side), dtype="float32",
             fn="kaiming_uniform_", kw={"a": math.sqrt(5)}),
        dict(name="xavier_uniform_", shape=(side, side), dtype="float32", fn="xavier_uniform_",
             kw={}),
        dict(name="xavier_normal_", shape=(side, side), dtype="float32", fn="xavier_normal_",
             kw={}),
    ]
    for shape in orth:
        for method in methods:
            out.append(dict(name=f"orthogonal_ ({method})", shape=shape, dtype="float32",
                            fn="orthogonal_", kw={"method": method}, slow=True))
    # no torch function: the peer is what a user writes (torch's orthogonal_ on the block, cat)
    for shape in orth[:2]:
        out.append(dict(name="looks_linear_ (hidden; peer: orthogonal_ + cat)", shape=shape,
                        dtype="float32", fn="looks_linear_", kw={}, slow=True))
    return out


def _looks_linear_by_hand(x, generator=None):
    """A hand-written looks-linear hidden layer: ``[[V, -V], [-V, V]]`` with torch's
    ``orthogonal_`` drawing V."""
    import torch

    r, c = x.shape[0] // 2, x.shape[1] // 2
    v = torch.nn.init.orthogonal_(torch.empty(r, c, dtype=x.dtype), generator=generator)
    with torch.no_grad():
        x.copy_(torch.cat([torch.cat([v, -v], 1), torch.cat([-v, v], 1)], 0))
    return x


def _functions(case: dict):
    """(torch's function, initlab's, torch); initlab-only keywords (``method``) are dropped for
    torch's."""
    import torch
    import torch.nn.init as tinit

    import initlab.torch as itorch

    tfn = _looks_linear_by_hand if case["fn"] == "looks_linear_" else getattr(tinit, case["fn"])
    if "method" in case["kw"]:
        raw = tfn

        def tfn(x, method=None, **kw):
            return raw(x, **kw)

    return tfn, getattr(itorch, case["fn"]), torch


def run_case(case: dict, repeat: int) -> dict:
    tfn, ifn, torch = _functions(case)
    x = torch.empty(case["shape"], dtype=getattr(torch, case["dtype"]))
    g_t = torch.Generator().manual_seed(0)
    g_i = torch.Generator().manual_seed(0)
    kw = case["kw"]
    reps = max(2, repeat // 2) if case.get("slow") else repeat
    fns = {"torch": lambda: tfn(x, **kw, generator=g_t),
           "initlab": lambda: ifn(x, **kw, generator=g_i)}
    if case["fn"] == "trunc_normal_":  # the target: at most 1.5x torch's normal_ on the same tensor
        fns["torch normal_"] = lambda: torch.nn.init.normal_(x, generator=g_t)
    t = best_of(fns, reps)
    return {**t, "repeat": reps}


def probe(case_json: str, side: str) -> None:
    """Subprocess entry: extra peak RSS of one call beyond its (touched) output tensor."""
    case = json.loads(case_json)
    tfn, ifn, torch = _functions(case)
    fn = tfn if side == "torch" else ifn
    x = torch.zeros(case["shape"], dtype=getattr(torch, case["dtype"]))  # touched pages
    g = torch.Generator().manual_seed(0)
    # warm-up on a tiny tensor of the same rank and dtype: lazy imports and first-call caches
    tiny = torch.zeros([2] * len(case["shape"]), dtype=x.dtype)
    fn(tiny, **case["kw"], generator=g)
    with PeakMemory() as pm:
        fn(x, **case["kw"], generator=g)
    out_bytes = x.numel() * x.element_size()
    print(json.dumps({"extra": pm.extra, "output": out_bytes, "method": pm.method}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--repeat", type=int, default=5, help="best of N (orthogonal: N/2, >= 2)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--out", type=str, default=None, help="also write the markdown to this file")
    ap.add_argument("--no-memory", action="store_true", help="skip the subprocess memory probes")
    ap.add_argument("--only", type=str, default=None, help="run cases whose name contains this")
    ap.add_argument("--orthogonal-methods", default="householder",
                    help="comma-separated initlab methods to time (householder,qr,svd)")
    ap.add_argument("--_probe", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args._probe:
        probe(*args._probe)
        return 0

    from tqdm import tqdm

    methods = tuple(args.orthogonal_methods.split(","))
    todo = [c for c in cases(args.quick, methods) if not args.only or args.only in c["name"]]
    rows = []
    mem_method = "not measured"
    env = {"OMP_NUM_THREADS": str(torch.get_num_threads())}
    for case in tqdm(todo, desc="cases", file=sys.stderr):
        t = run_case(case, args.repeat)
        mem = {"torch": None, "initlab": None}
        if not args.no_memory:
            for side in mem:
                pargs = ["--_probe", json.dumps(case), side]
                if args.threads:
                    pargs += ["--threads", str(args.threads)]
                res = peak_in_subprocess(__file__, pargs, env=env)
                mem[side], mem_method = res["extra"], res["method"]
        shape = "x".join(map(str, case["shape"]))
        rows.append([case["name"], shape, case["dtype"], fmt_time(t["torch"]),
                     fmt_time(t["initlab"]), f"{t['torch'] / t['initlab']:.2f}x",
                     f"{t['initlab'] / t['torch normal_']:.2f}x" if "torch normal_" in t else "-",
                     fmt_mib(mem["torch"]), fmt_mib(mem["initlab"])])

    info = machine_info()
    head = ["case", "shape", "dtype", "torch.nn.init", "initlab.torch", "speedup",
            "initlab / torch normal_",
            "torch extra peak MiB", "initlab extra peak MiB"]
    md = "\n".join([
        f"### initlab.torch vs torch.nn.init ({'quick' if args.quick else 'full'} sizes)",
        "",
        f"Command: `python benchmarks/bench_samplers.py {' '.join(argv or sys.argv[1:])}`  ",
        f"Machine: {info.get('cpu')}, {info.get('cores')} cores, {info.get('os')}; Python "
        f"{info.get('python')}, torch {info.get('torch')} ({info.get('torch_threads')} threads); "
        f"load average at the end: {info.get('load_avg', '?')}.  ",
        f"Time: best of {args.repeat} interleaved runs (orthogonal: {max(2, args.repeat // 2)}). "
        "Speedup = torch time / initlab time; for trunc_normal_ also initlab's time over torch's "
        "normal_ on the same tensor (target <= 1.5x). Extra peak MiB: peak resident memory of one call in "
        f"a fresh subprocess beyond the already-allocated output ({mem_method}).",
        "",
        markdown_table(head, rows),
        "",
    ])
    print(md)
    if args.out:
        try:
            from initlab.util.atomic import atomic_write_text
        except ImportError:  # pragma: no cover
            Path(args.out).write_text(md)
        else:
            atomic_write_text(args.out, md)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
