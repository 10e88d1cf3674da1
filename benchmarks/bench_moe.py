"""Benchmark ``initlab.apply`` on a mixture-of-experts model against a plain ``torch.nn.init`` loop.

    python benchmarks/bench_moe.py                 # Mixtral-like: 4 layers, 8 experts, ~250M params
    python benchmarks/bench_moe.py --quick         # 2 layers, width 256 (smoke run)

The model is transformers' ``MixtralForCausalLM`` from a config (hidden 1024, 8 experts of
intermediate 2048, 4 layers, vocabulary 8192): its experts are stacked banks, ``gate_up_proj``
(8, 4096, 1024) and ``down_proj`` (8, 1024, 2048) per layer. ``initlab.apply(model, "gpt2")``
draws each expert as its own matrix (its own stream; 8 draws per bank tensor), the peer loop
draws each whole tensor with one ``nn.init.normal_`` call, as transformers' ``_init_weights``
does. Same distributions on both sides: N(0, 0.02^2) for weights, routers and embeddings,
N(0, (0.02/sqrt(8))^2) for the 8 residual layers (``o_proj``, ``experts.down_proj``), norms 1.
Each round times the loop, ``apply``, then the loop again on the same model (warm: the
description is cached after the first call), and takes ``apply``'s ratio to the loops' mean
(wall and CPU time); min and median over ``--repeat`` rounds. Memory: the peak resident memory
of one warm ``apply`` beyond what the process held before it (``VmHWM`` after ``clear_refs``).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _util import PeakMemory, fmt_mib, fmt_time, machine_info, markdown_table  # noqa: E402


def build(quick: bool):
    import transformers

    transformers.logging.set_verbosity_error()
    cfg = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2) if quick else \
        dict(hidden_size=1024, intermediate_size=2048, num_hidden_layers=4)
    return transformers.MixtralForCausalLM(transformers.MixtralConfig(
        **cfg, num_attention_heads=8, num_key_value_heads=4, vocab_size=8192,
        num_local_experts=8, num_experts_per_tok=2, tie_word_embeddings=False))


def plain_loop(model, n_residual: int) -> None:
    import torch
    import torch.nn as nn

    res = 0.02 / math.sqrt(n_residual)
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            g = torch.Generator().manual_seed(i)
            if "norm" in name:
                nn.init.ones_(p)
            elif name.endswith(("o_proj.weight", "experts.down_proj")):
                nn.init.normal_(p, 0.0, res, generator=g)
            else:
                nn.init.normal_(p, 0.0, 0.02, generator=g)


def _timed(fn) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    import torch

    import initlab

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = build(args.quick)
    n_params = sum(p.numel() for p in model.parameters())
    n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    n_res = 2 * model.config.num_hidden_layers
    report = initlab.apply(model, "gpt2", seed=0)        # warm-up: the description, kernels
    # the two sides draw the same distributions
    stds = {r.name: r.expected_std for r in report.records}
    assert abs(stds["model.layers.0.mlp.experts.down_proj"] - 0.02 / math.sqrt(n_res)) < 1e-12
    assert abs(stds["model.layers.0.mlp.experts.gate_up_proj"] - 0.02) < 1e-12
    plain_loop(model, n_res)
    load_before = os.getloadavg()
    rows = []
    for _ in range(args.repeat):
        before = _timed(lambda: plain_loop(model, n_res))
        wall, cpu = _timed(lambda: initlab.apply(model, "gpt2", seed=0))
        after = _timed(lambda: plain_loop(model, n_res))
        rows.append(((before[0] + after[0]) / 2, wall, (before[1] + after[1]) / 2, cpu))
    load_after = os.getloadavg()
    with PeakMemory() as pm:
        initlab.apply(model, "gpt2", seed=0)
    wall_r = [a / b for b, a, _, _ in rows]
    cpu_r = [a / b for _, _, b, a in rows]
    med = statistics.median
    table = markdown_table(
        ["model", "torch.nn.init loop (median)", "initlab.apply 'gpt2' (median)",
         "wall ratio min", "wall ratio median", "CPU ratio min", "CPU ratio median",
         "apply extra peak (of params)"],
        [[f"Mixtral-like, {n_params / 1e6:.0f}M params, 8 experts",
          fmt_time(med(r[0] for r in rows)), fmt_time(med(r[1] for r in rows)),
          f"{min(wall_r):.2f}x", f"{med(wall_r):.2f}x", f"{min(cpu_r):.2f}x",
          f"{med(cpu_r):.2f}x", f"{fmt_mib(pm.extra)} MiB ({pm.extra / n_bytes:.1%})"]])
    info = machine_info()
    print(f"machine: {info}")
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}; "
          f"threads {torch.get_num_threads()}; rounds {args.repeat}")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
