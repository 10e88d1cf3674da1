"""Benchmark ``initlab.apply`` on GPT-2 small against a plain loop of ``torch.nn.init`` calls.

    python benchmarks/bench_apply.py                 # GPT-2 small (124M parameters)
    python benchmarks/bench_apply.py --quick         # n_layer=2, vocab 8192 (smoke run)
    python benchmarks/bench_apply.py --out FILE.md   # also write the markdown table

Time: ``initlab.apply(model, "gpt2", seed=0)`` (model description from one meta probe, plan
matching, every check, the draws, the report with its statistics) against a plain loop over
``model.named_parameters()`` drawing the same distributions with ``torch.nn.init`` (N(0, 0.02^2)
weights and embeddings, N(0, (0.02/sqrt(24))^2) for the 24 residual ``c_proj`` weights, zero
biases, LayerNorm 1/0; one ``torch.Generator`` per tensor), side by side in one process, best of
``--repeat`` interleaved rounds (``benchmarks/_util.best_of``). The model is allocated once
(``initlab.materialize``) so neither side pays page faults.

The model description's dataflow (one probe forward on a meta copy) is kept per model while its
structure is unchanged, so ``apply`` after ``materialize`` (or a second ``apply``) does not probe
again; the first call on a model pays the probe once, reported in its own column
(``describe(model, refresh=True)``).

Memory (each in a fresh subprocess, ``VmHWM`` after ``clear_refs``): the peak resident memory of
``apply`` beyond what the process held before the call (imports and the parameters), and of
``materialize`` beyond the imports, the meta model and the parameters' bytes; both as a fraction
of the parameters' bytes (target: at most 10%).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _util import (  # noqa: E402
    PeakMemory,
    best_of,
    fmt_mib,
    fmt_time,
    machine_info,
    markdown_table,
    peak_in_subprocess,
)


def build(quick: bool, device: str = "cpu"):
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    cfg = transformers.GPT2Config(n_layer=2, vocab_size=8192) if quick else transformers.GPT2Config()
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(cfg)
    return model, cfg


def plain_loop(model, n_residual: int) -> None:
    import torch
    import torch.nn as nn

    res = 0.02 / math.sqrt(n_residual)
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            g = torch.Generator().manual_seed(i)
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                if name.endswith("weight"):
                    nn.init.ones_(p)
                else:
                    nn.init.zeros_(p)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            elif name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, res, generator=g)
            else:
                nn.init.normal_(p, 0.0, 0.02, generator=g)


def _probe(kind: str, quick: bool) -> dict:
    import torch

    import initlab

    model, cfg = build(quick)
    n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    if kind == "apply":
        initlab.materialize(model, "gpt2", device="cpu", seed=1)
        with PeakMemory() as pm:
            initlab.apply(model, "gpt2", seed=0)
        extra = pm.extra
    else:
        with PeakMemory() as pm:
            initlab.materialize(model, "gpt2", device="cpu", seed=0)
        extra = pm.extra - n_bytes
    del torch
    return {"extra": extra, "param_bytes": n_bytes, "method": pm.method}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=str, default=None)
    ap.add_argument("--probe", choices=("apply", "materialize"), default=None,
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.probe:
        print(json.dumps(_probe(args.probe, args.quick)))
        return 0

    import initlab

    model, cfg = build(args.quick)
    initlab.materialize(model, "gpt2", device="cpu", seed=1)
    n_params = sum(p.numel() for p in model.parameters())
    n_res = 2 * cfg.n_layer
    times = best_of({"torch.nn.init loop": lambda: plain_loop(model, n_res),
                     "initlab.apply": lambda: initlab.apply(model, "gpt2", seed=0)},
                    repeat=args.repeat)
    ratio = times["initlab.apply"] / times["torch.nn.init loop"]
    from initlab.modelinit import describe

    probe = best_of({"probe": lambda: describe(model, refresh=True)}, repeat=3)["probe"]
    here = os.path.abspath(__file__)
    flag = ["--quick"] if args.quick else []
    mem = {k: peak_in_subprocess(here, ["--probe", k, *flag]) for k in ("apply", "materialize")}
    info = machine_info()
    rows = [[f"GPT-2{' (quick)' if args.quick else ' small'}", f"{n_params / 1e6:.1f}M",
             fmt_time(times["torch.nn.init loop"]), fmt_time(times["initlab.apply"]),
             f"{ratio:.2f}x", fmt_time(probe),
             f"{fmt_mib(mem['apply']['extra'])} ({mem['apply']['extra'] / mem['apply']['param_bytes']:.1%})",
             f"{fmt_mib(mem['materialize']['extra'])} "
             f"({mem['materialize']['extra'] / mem['materialize']['param_bytes']:.1%})"]]
    table = markdown_table(["model", "params", "torch.nn.init loop", "initlab.apply 'gpt2'",
                            "ratio", "first-call probe", "apply extra peak MiB (of params)",
                            "materialize extra peak MiB (of params)"], rows)
    text = (f"Command: `python benchmarks/bench_apply.py{' --quick' if args.quick else ''}`  \n"
            f"Machine: {info.get('cpu')}, {info.get('cores')} cores; Python {info.get('python')}, "
            f"torch {info.get('torch')} ({info.get('torch_threads')} threads); load average at "
            f"the end: {info.get('load_avg', '-')}.  \nTime: best of {args.repeat} interleaved "
            f"runs. Memory: {mem['apply']['method']}, fresh subprocess per case.\n\n{table}\n")
    print(text)
    if args.out:
        from initlab.util.atomic import atomic_write_text

        atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
