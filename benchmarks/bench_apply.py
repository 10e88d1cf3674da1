"""Benchmark ``initlab.apply`` on GPT-2 small against a plain loop of ``torch.nn.init`` calls.

    python benchmarks/bench_apply.py                 # GPT-2 small (124M parameters)
    python benchmarks/bench_apply.py --quick         # n_layer=2, vocab 8192 (smoke run)
    python benchmarks/bench_apply.py --out FILE.md   # also write the markdown table

Time: ``initlab.apply(model, "gpt2", seed=0)`` (model description, plan matching, every check,
the draws, the report with its statistics) against a plain loop over ``model.named_parameters()``
drawing the same distributions with ``torch.nn.init`` (N(0, 0.02^2) weights and embeddings,
N(0, (0.02/sqrt(24))^2) for the 24 residual ``c_proj`` weights, zero biases, LayerNorm 1/0; one
``torch.Generator`` per tensor), side by side in one process: each round times the loop, then
``apply``, then the loop again on the same model, and takes apply's ratio to the two loops' mean
(wall time, and the process's CPU time, which other jobs on the machine disturb less); min and
median over ``--repeat`` rounds. Three cases of ``apply``:

* **cold, first**: a fresh ``GPT2LMHeadModel(GPT2Config())`` (built by transformers on CPU, every
  page touched) whose architecture this process has not described: ``apply`` runs the probe
  forward (the structure cache is cleared before each such round);
* **cold, seen**: a fresh model of an architecture described before in this process (the
  dataflow is reused by structure key; ties, names and shapes are still read from the model);
* **warm**: ``apply`` again on a model already initialized once.

Memory (each in a fresh subprocess, ``VmHWM`` after ``clear_refs``): the peak resident memory of
a cold ``apply`` (fresh model, first description) and of a warm one beyond what the process held
before the call (imports and the parameters), and of ``materialize`` beyond the imports, the meta
model and the parameters' bytes; each as a fraction of the parameters' bytes (target: at most
10%).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _util import (  # noqa: E402
    PeakMemory,
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


def fresh(quick: bool):
    """A model as users get one: built by transformers on CPU (its own init, every page touched)."""
    import transformers

    transformers.logging.set_verbosity_error()
    cfg = transformers.GPT2Config(n_layer=2, vocab_size=8192) if quick else transformers.GPT2Config()
    return transformers.GPT2LMHeadModel(cfg), cfg


def _probe(kind: str, quick: bool) -> dict:
    import torch

    import initlab

    if kind == "materialize":
        model, cfg = build(quick)
    else:
        model, cfg = fresh(quick)
    n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    if kind == "apply-warm":
        initlab.apply(model, "gpt2", seed=1)
    if kind.startswith("apply"):
        with PeakMemory() as pm:
            initlab.apply(model, "gpt2", seed=0)
        extra = pm.extra
    else:
        with PeakMemory() as pm:
            initlab.materialize(model, "gpt2", device="cpu", seed=0)
        extra = pm.extra - n_bytes
    del torch
    return {"extra": extra, "param_bytes": n_bytes, "method": pm.method}


def _timed(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of ``fn()``."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def rounds(quick: bool, repeat: int) -> dict[str, list[tuple[float, float, float, float]]]:
    """Per case ("cold, first", "cold, seen", "warm"), one entry per round: (loop wall, apply
    wall, loop CPU, apply CPU), on the same model; the loop is timed just before and just after
    ``apply`` and averaged (so a change of machine load during the round affects both sides)."""
    import gc

    import initlab
    from initlab.modelinit.describe import _clear_cache

    out: dict[str, list[tuple[float, float, float, float]]] = {
        c: [] for c in ("cold, first", "cold, seen", "warm")}
    model, cfg = fresh(quick)              # warm-up: imports, first calls of every kernel
    n_res = 2 * cfg.n_layer
    initlab.apply(model, "gpt2", seed=0)
    plain_loop(model, n_res)
    for _ in range(repeat):
        for case in out:
            if case != "warm":
                del model
                gc.collect()
                model, _ = fresh(quick)
                gc.collect()
                if case == "cold, first":
                    _clear_cache()
            before = _timed(lambda m=model: plain_loop(m, n_res))
            wall, cpu = _timed(lambda m=model: initlab.apply(m, "gpt2", seed=0))
            after = _timed(lambda m=model: plain_loop(m, n_res))
            out[case].append(((before[0] + after[0]) / 2, wall, (before[1] + after[1]) / 2, cpu))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=str, default=None)
    ap.add_argument("--probe", choices=("apply-cold", "apply-warm", "materialize"), default=None,
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.probe:
        print(json.dumps(_probe(args.probe, args.quick)))
        return 0

    import statistics

    import initlab

    model, cfg = build(args.quick)
    initlab.materialize(model, "gpt2", device="cpu", seed=1)
    n_params = sum(p.numel() for p in model.parameters())
    del model
    load_before = os.getloadavg()
    times = rounds(args.quick, args.repeat)
    load_after = os.getloadavg()
    here = os.path.abspath(__file__)
    flag = ["--quick"] if args.quick else []
    mem = {k: peak_in_subprocess(here, ["--probe", k, *flag])
           for k in ("apply-cold", "apply-warm", "materialize")}
    info = machine_info()

    def med(xs):
        return statistics.median(xs)

    rows = []
    for case, t in times.items():
        wall = [a / b for b, a, _, _ in t]
        cpu = [a / b for _, _, b, a in t]
        rows.append([case, fmt_time(med([x[0] for x in t])), fmt_time(med([x[1] for x in t])),
                     f"{min(wall):.2f}x", f"{med(wall):.2f}x", f"{min(cpu):.2f}x",
                     f"{med(cpu):.2f}x"])
    table = markdown_table(["apply case", "torch.nn.init loop (median)",
                            "initlab.apply 'gpt2' (median)", "wall ratio min",
                            "wall ratio median", "CPU ratio min", "CPU ratio median"], rows)

    def frac(k):
        return f"{fmt_mib(mem[k]['extra'])} MiB ({mem[k]['extra'] / mem[k]['param_bytes']:.1%})"

    mem_table = markdown_table(["cold apply extra peak (of params)",
                                "warm apply extra peak (of params)",
                                "materialize extra peak (of params)"],
                               [[frac("apply-cold"), frac("apply-warm"), frac("materialize")]])
    text = (f"Command: `python benchmarks/bench_apply.py{' --quick' if args.quick else ''}"
            f"{f' --repeat {args.repeat}' if args.repeat != 5 else ''}`  \n"
            f"Model: GPT-2{' (quick)' if args.quick else ' small'}, {n_params / 1e6:.1f}M "
            f"parameters.  \nMachine: {info.get('cpu')}, {info.get('cores')} cores; Python "
            f"{info.get('python')}, torch {info.get('torch')} ({info.get('torch_threads')} "
            f"threads); load average (1, 5, 15 min) before the timing "
            f"{', '.join(f'{x:.1f}' for x in load_before)}, after "
            f"{', '.join(f'{x:.1f}' for x in load_after)}.  \nTime: {args.repeat} rounds per "
            f"case on the same model: loop, apply, loop; ratio of apply to the two loops' mean "
            f"per round (wall, and the process's CPU time). Memory: "
            f"{mem['apply-cold']['method']}, fresh subprocess per case.\n\n{table}\n\n"
            f"{mem_table}\n")
    print(text)
    if args.out:
        from initlab.util.atomic import atomic_write_text

        atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
