"""Benchmark initlab.scale (the counter stream) against torch, side by side in one process.

    python benchmarks/bench_scale.py --quick          # smoke run (~1 min)
    python benchmarks/bench_scale.py                  # 16M elements, GPT-2 small, 1/2/4 ranks
    python benchmarks/bench_scale.py --big            # + the ~1.2B-parameter Llama-shaped model
    python benchmarks/bench_scale.py --json out.json  # also write the numbers (atomically)
    python benchmarks/bench_scale.py --only 1 --candidates   # + the generator candidates

Sections
1. Elementwise generator: ns per element of initlab's counter normal / uniform / truncated normal
   (the default stream v2 and the old v1) vs torch ``normal_`` / ``uniform_`` /
   ``nn.init.trunc_normal_`` on the same tensor (already touched, so page faults are not timed),
   float32 and bf16, with 1 and 2 threads (``threads=`` for initlab, ``torch.set_num_threads``
   for torch), the sides interleaved round by round; best and median of ``--repeat`` rounds.
   When the optional compiled Philox words (``initlab.scale._philox``) are built, v2 runs
   twice, with the compiled words and with NumPy's (``set_words_backend("numpy")``), in the
   same rounds: the same values, the words' cost alone differs.
   ``--candidates`` adds the implementations weighed in docs/scale.md: Philox words by integer
   torch ops (eager, and fused by ``torch.compile`` with its first-call time), and a numba
   kernel when numba is importable. 1c: the steps of the float32/bf16 normal timed one by one
   (words, integer steps, conversion, erfinv, scale and cast into the tensor).
2. Whole-model init, each case in a fresh subprocess built on the meta device and materialized
   with ``to_empty``: ``initlab.apply(rng="counter")`` (N(0, 0.02) weights, zero biases, unit
   norms) vs the same scheme drawn by a loop of torch ``normal_`` / ``fill_`` / ``zero_`` vs
   torch's default ``reset_parameters``, and ``initlab.materialize`` (allocation and
   initialization in one call, torch or counter stream); float32 and bf16; wall and CPU time,
   and the process's peak RSS (``VmHWM``) before ``to_empty`` (imports) and at the end
   (``--methods ""`` skips these). 2b: in one process, alternately, ``materialize(meta model,
   rng="counter")`` and ``to_empty`` + a loop of ``torch.nn.init`` calls drawing the same
   distributions, 1 and 2 threads, best and median of ``--pair-rounds``, peak RSS per side
   (``--llama-only``: the ~1.2B Llama-shaped model; with the compiled words built, a third
   side, ``materialize`` on NumPy's words). 2c: Hugging Face GPT-2 small:
   ``apply(model, "gpt2", rng="counter")`` and, in the same process, a loop of
   ``torch.nn.init`` calls drawing the distributions its report lists, 1 and 2 threads.
   Section 1 also prints the peak RSS beyond the tensor of one call of each side.
3. Sharded init: the GPT-2-shaped model under FSDP2 ``fully_shard`` on 1 / 2 / 4 gloo ranks
   (CPU, loopback, one thread per rank), ``apply(rng="counter")`` and then ``counter_fill_`` of
   every local shard alone (the stream without apply's machinery and report): CPU time per rank
   against the shard size; the wall time on a 2-core machine cannot show more than two ranks in
   parallel.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import time

import torch
import torch.nn as nn

# ------------------------------------------------------------------------------ model shapes
# GPT-2 small (Radford et al. 2019): 12 layers, d=768, vocab 50257, context 1024; ~124M params.
GPT2_SMALL = dict(kind="gpt2", vocab=50257, ctx=1024, d=768, layers=12)
GPT2_QUICK = dict(kind="gpt2", vocab=8192, ctx=256, d=256, layers=2)
# Llama-3.2-1B-shaped (Meta 2024): 16 layers, d=2048, 32 heads / 8 KV heads (head 64), MLP 8192,
# vocab 128256, tied embeddings; ~1.24B params (~5 GB in float32).
LLAMA_1B = dict(kind="llama", vocab=128256, d=2048, layers=16, kv=512, hidden=8192)


class GPT2Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.c_fc, self.mlp_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)


class LlamaBlock(nn.Module):
    def __init__(self, d, kv, hidden):
        super().__init__()
        self.attn_norm, self.mlp_norm = nn.RMSNorm(d), nn.RMSNorm(d)
        self.wq, self.wo = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
        self.wk, self.wv = nn.Linear(d, kv, bias=False), nn.Linear(d, kv, bias=False)
        self.w1 = nn.Linear(d, hidden, bias=False)
        self.w3 = nn.Linear(d, hidden, bias=False)
        self.w2 = nn.Linear(hidden, d, bias=False)


def build(cfg) -> nn.Module:
    m = nn.Module()
    if cfg["kind"] == "gpt2":
        m.wte, m.wpe = nn.Embedding(cfg["vocab"], cfg["d"]), nn.Embedding(cfg["ctx"], cfg["d"])
        m.h = nn.ModuleList(GPT2Block(cfg["d"]) for _ in range(cfg["layers"]))
        m.ln_f = nn.LayerNorm(cfg["d"])
    else:
        m.tok = nn.Embedding(cfg["vocab"], cfg["d"])
        m.layers = nn.ModuleList(LlamaBlock(cfg["d"], cfg["kv"], cfg["hidden"])
                                 for _ in range(cfg["layers"]))
        m.norm = nn.RMSNorm(cfg["d"])
    return m


def plan():
    import initlab

    return {"*norm*.weight": "ones", "*ln_*.weight": "ones", "*.bias": "zeros",
            "*": initlab.get("normal", std=0.02)}


def materialize_plan():
    """The same scheme as :func:`plan`, as an ``initlab.Plan`` for ``initlab.materialize``."""
    import initlab

    return initlab.Plan([
        initlab.Rule("*norm*.weight", initlab.ones()), initlab.Rule("*ln_*.weight", initlab.ones()),
        initlab.Rule("*.bias", initlab.zeros()), initlab.Rule("*", initlab.normal(std=0.02)),
    ], warn_unused=False)  # GPT-2 names its norms ln_*, Llama *norm*: one of the two is unused


def torch_same_scheme(m: nn.Module) -> None:
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "norm" in n or "ln_" in n:
                p.fill_(1.0) if n.endswith("weight") else p.zero_()
            elif n.endswith("bias"):
                p.zero_()
            else:
                p.normal_(0.0, 0.02)


def torch_default(m: nn.Module) -> None:
    for mod in m.modules():
        if hasattr(mod, "reset_parameters"):
            mod.reset_parameters()


# ------------------------------------------------------------------------------ section 1
def _best(fn, repeat):
    """Best wall time and best process CPU time (all threads) over ``repeat`` runs. On a shared
    machine the CPU time is the steadier number for one thread."""
    fn()
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    return best, best_cpu


def _rounds(fns: dict, repeat: int) -> dict:
    """Wall times of each callable over ``repeat`` interleaved rounds (after one warm-up)."""
    for f in fns.values():
        f()
    out = {k: [] for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            out[k].append(time.perf_counter() - t)
    return out


@contextlib.contextmanager
def _words(backend: str):
    """The counter stream's CPU words from ``backend`` inside the block (same values), the
    previous setting restored after it."""
    from initlab.scale import set_words_backend

    previous = set_words_backend(backend)
    try:
        yield
    finally:
        set_words_backend(previous)


def _numpy_words(fn):
    """``fn`` with the counter stream's CPU words forced to NumPy's Philox (same values)."""
    def run():
        with _words("numpy"):
            return fn()

    return run


def bench_elementwise(n: int, repeat: int) -> list[dict]:
    from statistics import median

    from initlab.core.distributions import Normal, TruncatedNormal, Uniform
    from initlab.scale import V1, V2, compiled_words_available, words_backend
    from initlab.scale.sharded import fill_block_

    rows = []
    both = compiled_words_available() and words_backend() == "compiled"
    cases = [("normal", Normal(0.0, 1.0), lambda t: t.normal_()),
             ("uniform", Uniform(-1.0, 1.0), lambda t: t.uniform_(-1.0, 1.0)),
             ("trunc_normal", TruncatedNormal(0.0, 1.0, -2.0, 2.0), None)]
    old = torch.get_num_threads()
    try:
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.empty(n, dtype=dtype)
            x.zero_()  # touch the pages once
            for threads in (1, 2):
                torch.set_num_threads(threads)
                for label, dist, tfn in cases:
                    fns = {"torch_normal": lambda x=x: x.normal_()}
                    if tfn is not None:
                        fns["torch"] = lambda tfn=tfn, x=x: tfn(x)
                    else:
                        fns["torch"] = lambda x=x: nn.init.trunc_normal_(x, 0.0, 1.0, -2.0, 2.0)
                    for ver in (V2, V1):
                        fns[ver] = lambda dist=dist, th=threads, ver=ver, x=x: fill_block_(
                            x, dist, key=12345, global_shape=(n,), offsets=(0,), threads=th,
                            stream=ver)
                    if both:
                        fns["v2_numpy_words"] = _numpy_words(fns[V2])
                    t = _rounds(fns, repeat)
                    ns = {k: [1e9 * v / n for v in vs] for k, vs in t.items()}
                    # memory beyond the tensor: the peak RSS of one more call of each side
                    extra = {}
                    for k in ("torch", V2):
                        base = rss_mb()
                        if reset_peak_rss():
                            fns[k]()
                            extra[k] = peak_rss_mb() - base
                    ref = min(ns["torch"]) if tfn is not None else min(ns["torch_normal"])
                    peer = ns["torch"] if tfn is not None else ns["torch_normal"]
                    npw = ns.get("v2_numpy_words")
                    r = dict(section="elementwise", dist=label, dtype=str(dtype).split(".")[1],
                             threads=threads, n=n,
                             torch_ns=min(ns["torch"]), torch_normal_ns=min(ns["torch_normal"]),
                             v2_ns=min(ns[V2]), v2_median_ns=median(ns[V2]),
                             v1_ns=min(ns[V1]), v2_ratio=min(ns[V2]) / ref,
                             v2_median_ratio=median(ns[V2]) / median(
                                 ns["torch"] if tfn is not None else ns["torch_normal"]),
                             v1_ratio=min(ns[V1]) / ref,
                             ratio_to="torch " + ("normal_" if tfn is None else label + "_"),
                             # per round: v2 / its peer measured next to it (the same load)
                             v2_paired_ratios=[a / b for a, b in zip(
                                 ns[V2], ns["torch"] if tfn is not None else ns["torch_normal"])],
                             extra_peak_mb_torch=extra.get("torch"),
                             extra_peak_mb_v2=extra.get(V2), words=words_backend())
                    if npw is not None:
                        r.update(v2_numpy_words_ns=min(npw),
                                 v2_numpy_words_median_ns=median(npw),
                                 v2_numpy_words_ratio=min(npw) / ref,
                                 v2_numpy_words_median_ratio=median(npw) / median(peer),
                                 v2_numpy_words_paired_ratios=[a / b for a, b in zip(npw, peer)],
                                 compiled_over_numpy_words=[a / b for a, b in zip(ns[V2], npw)])
                    rows.append(r)
                    print(f"  {label:12s} {r['dtype']:8s} threads={threads}  torch "
                          f"{r['torch_ns']:6.2f} (normal_ {r['torch_normal_ns']:5.2f})  v2 "
                          f"{r['v2_ns']:6.2f} (median {r['v2_median_ns']:6.2f})  v1 "
                          f"{r['v1_ns']:6.2f} ns/el   v2 / {r['ratio_to']}: {r['v2_ratio']:.2f}x "
                          f"(medians {r['v2_median_ratio']:.2f}x; paired per round: min "
                          f"{min(r['v2_paired_ratios']):.2f}x median "
                          f"{median(r['v2_paired_ratios']):.2f}x)   v1: {r['v1_ratio']:.2f}x"
                          + (f"   peak RSS beyond the tensor: torch {extra['torch']:.1f} MB, "
                             f"v2 {extra[V2]:.1f} MB" if len(extra) == 2 else ""), flush=True)
                    if npw is not None:
                        print(f"  {'':12s} {'':8s}           v2 on NumPy's words {min(npw):6.2f} "
                              f"(median {median(npw):6.2f}) ns/el -> / {r['ratio_to']}: "
                              f"{r['v2_numpy_words_ratio']:.2f}x (medians "
                              f"{r['v2_numpy_words_median_ratio']:.2f}x; paired median "
                              f"{median(r['v2_numpy_words_paired_ratios']):.2f}x); compiled / "
                              f"NumPy words per round: median "
                              f"{median(r['compiled_over_numpy_words']):.2f}x", flush=True)
    finally:
        torch.set_num_threads(old)
    return rows


def bench_steps(n: int, repeat: int) -> list[dict]:
    """Where v2's float32/bf16 normal spends its time on CPU, one thread: the steps of
    ``CpuTransform`` (same ops, same chunks) timed one by one over an ``n``-element tensor,
    ns per element (best of ``repeat``), next to torch's ``normal_`` on the same tensor: the
    torch-ops path (words, NumPy integer steps, torch float steps) and, when the compiled
    kernels are built, the fused path (``v2_y``: words and the first step in one pass;
    ``erfinv``; ``finish``: the scale; then the cast for bf16), on the same chunks."""
    import numpy as np

    from initlab.scale import compiled_words_available, words_backend
    from initlab.scale.counter import compiled_kernels
    from initlab.scale.sharded import DEFAULT_CHUNK_V2
    from initlab.scale.torch_stream import BitReader

    kernels = compiled_kernels()

    rows = []
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    chunk = DEFAULT_CHUNK_V2
    try:
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.empty(n, dtype=dtype)
            x.zero_()
            buf = torch.empty(chunk)
            best: dict = {}
            for _ in range(repeat):
                acc: dict = {}
                reader = BitReader(12345, "cpu")
                for a in range(0, n, chunk):
                    b = min(n, a + chunk)
                    t0 = time.perf_counter()
                    bits = reader.read(a, b - a)
                    t1 = time.perf_counter()
                    bn = bits.numpy()
                    np.right_shift(bn, 7, out=bn)
                    np.bitwise_or(bn, 1, out=bn)
                    t2 = time.perf_counter()
                    dst = x[a:b]
                    y = dst if dtype == torch.float32 else buf[:b - a]
                    y.copy_(bits)
                    y.mul_(2.0**-24)
                    t3 = time.perf_counter()
                    torch.erfinv(y, out=y)
                    t4 = time.perf_counter()
                    y.mul_(1.4142135)
                    if y is not dst:
                        dst.copy_(y)
                    t5 = time.perf_counter()
                    steps = [(f"words ({reader._np.backend})", t1 - t0),
                             ("integer steps (NumPy)", t2 - t1),
                             ("int -> float32, * 2**-24", t3 - t2), ("erfinv", t4 - t3),
                             ("scale (+ cast) into the tensor", t5 - t4)]
                    if kernels is not None:
                        yn = y.numpy()
                        t6 = time.perf_counter()
                        kernels.v2_y(yn, 12345, a, 0, 0.0, 0.0, False)
                        t7 = time.perf_counter()
                        torch.erfinv(y, out=y)
                        t8 = time.perf_counter()
                        kernels.finish(yn, 1, 1.4142135, 0.0, 0.0, 0.0)
                        if y is not dst:
                            dst.copy_(y)
                        t9 = time.perf_counter()
                        steps += [("[fused: v2_y, words + first step]", t7 - t6),
                                  ("[fused: erfinv]", t8 - t7),
                                  ("[fused: finish (+ cast)]", t9 - t8)]
                    for k, v in steps:
                        acc[k] = acc.get(k, 0.0) + v
                for k, v in acc.items():
                    best[k] = min(best.get(k, float("inf")), 1e9 * v / n)
            ref = _best(lambda x=x: x.normal_(), repeat)[0] * 1e9 / n
            if compiled_words_available() and words_backend() == "compiled":
                np_reader = _numpy_words(lambda: BitReader(12345, "cpu"))()
                best["(NumPy's words instead)"] = _best(
                    lambda rd=np_reader: [rd.read(a, min(n, a + chunk) - a)
                             for a in range(0, n, chunk)], repeat)[0] * 1e9 / n
            r = dict(section="steps", dtype=str(dtype).split(".")[1], n=n, chunk=chunk,
                     steps_ns=best, total_ns=sum(v for k, v in best.items()
                                                 if not k.startswith(("(", "["))),
                     fused_total_ns=sum(v for k, v in best.items() if k.startswith("[")) or None,
                     torch_normal_ns=ref)
            rows.append(r)
            plain = {k: v for k, v in best.items() if not k.startswith("[")}
            print(f"  {r['dtype']:8s} " + "; ".join(f"{k} {v:.2f}" for k, v in plain.items())
                  + f"; sum {r['total_ns']:.2f} ns/el (torch normal_ {ref:.2f})", flush=True)
            if r["fused_total_ns"]:
                print("  " + " " * 9 + "; ".join(f"{k[8:-1]} {v:.2f}" for k, v in best.items()
                                                if k.startswith("["))
                      + f"; fused sum {r['fused_total_ns']:.2f} ns/el", flush=True)
    finally:
        torch.set_num_threads(old)
    return rows


def bench_candidates(repeat: int) -> list[dict]:
    """Generator candidates (docs/scale.md): Philox4x64-10 words by integer torch ops, eager and
    under torch.compile (first call = compile time), NumPy's C Philox, and numba if present."""
    import numpy as np

    from initlab.scale.counter import _Words
    from initlab.scale.torch_stream import philox_words_torch

    rows = []
    torch.set_num_threads(1)
    nw = 1 << 17  # words per call (256Ki 32-bit elements)
    x = torch.empty(2 * nw)

    def row(label, sec, first=None):
        r = dict(section="candidates", candidate=label, ns_per_element=1e9 * sec / (2 * nw),
                 first_call_s=first)
        rows.append(r)
        print(f"  {label:44s} {r['ns_per_element']:7.2f} ns per 32-bit element"
              + (f"   first call {first:.1f} s" if first is not None else ""), flush=True)

    row("torch normal_ (reference, float32)", _best(lambda: x.normal_(), repeat)[0])
    reader = _numpy_words(lambda: _Words(12345))()  # NumPy's words even when compiled ones exist
    row("NumPy C Philox4x64-10 (v2's CPU words without the extension)",
        _best(lambda: reader.read(0, nw), repeat)[0])
    try:
        from initlab.scale import _philox

        buf = np.empty(nw, dtype=np.uint64)
        row("compiled Philox4x64-10 (initlab.scale._philox)",
            _best(lambda: _philox.fill(buf, 12345, 0), repeat)[0])
    except ImportError:
        print("  compiled words: initlab.scale._philox is not built here")
    row("torch int64 ops, eager (v2's device path)",
        _best(lambda: philox_words_torch(12345, 0, nw, "cpu"), repeat)[0])
    try:
        fn = torch.compile(lambda: philox_words_torch(12345, 0, nw, "cpu"), dynamic=False)
        t0 = time.perf_counter()
        ok = torch.equal(fn(), philox_words_torch(12345, 0, nw, "cpu"))
        first = time.perf_counter() - t0
        row(f"torch int64 ops, torch.compile (equal: {ok})", _best(fn, repeat)[0], first)
    except Exception as exc:  # noqa: BLE001 - report, don't fail the benchmark
        print(f"  torch.compile: not available here ({type(exc).__name__}: {exc})")
    try:
        import numba  # noqa: F401
    except ImportError:
        print("  numba: not importable here (pip install numba to measure it)")
        return rows
    from numba import njit

    @njit(nogil=True, boundscheck=False)
    def philox4x32(k0, k1, nb, out):  # Philox4x32-10, 4 x 32-bit words per block
        m = np.uint64(0xFFFFFFFF)
        for j in range(nb):
            x0, x1 = np.uint64(j) & m, np.uint64(j) >> np.uint64(32)
            x2, x3 = np.uint64(0), np.uint64(0)
            a0, a1 = np.uint64(k0), np.uint64(k1)
            for _ in range(10):
                p0, p1 = x0 * np.uint64(0xD2511F53), x2 * np.uint64(0xCD9E8D57)
                x0, x1, x2, x3 = ((p1 >> np.uint64(32)) ^ x1 ^ a0, p1 & m,
                                  (p0 >> np.uint64(32)) ^ x3 ^ a1, p0 & m)
                a0, a1 = (a0 + np.uint64(0x9E3779B9)) & m, (a1 + np.uint64(0xBB67AE85)) & m
            out[j, 0], out[j, 1], out[j, 2], out[j, 3] = x0, x1, x2, x3

    out = np.empty((nw // 2, 4), np.uint32)
    t0 = time.perf_counter()
    philox4x32(1, 2, nw // 2, out)
    first = time.perf_counter() - t0
    row("numba Philox4x32-10 kernel (scalar loop)",
        _best(lambda: philox4x32(1, 2, nw // 2, out), repeat)[0], first)
    return rows


# ------------------------------------------------------------------------------ section 2
def peak_rss_mb() -> float:
    """Peak resident set of this process in MB: ``VmHWM`` (reset by exec, unlike ``ru_maxrss``,
    which Linux carries over from the parent across fork + exec)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset this process's ``VmHWM`` to its current RSS (Linux >= 4.0: write 5 to
    ``/proc/self/clear_refs``), so the next :func:`peak_rss_mb` is the peak of what follows."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def model_case(cfg: dict, dtype: str, method: str, threads: int) -> dict:
    """Run in a fresh process: materialize on CPU and initialize; time and peak RSS."""
    torch.set_num_threads(threads)
    dt = getattr(torch, dtype)
    with torch.device("meta"):
        m = build(cfg).to(dt)
    rss0 = peak_rss_mb()
    n_params = sum(p.numel() for p in m.parameters())
    import initlab
    import initlab.scale  # noqa: F401  (imported before timing)

    if method.startswith("materialize"):
        # initlab.materialize allocates (to_empty) and initializes in one call: timed together
        rng = method.split("_", 1)[1]
        mplan = materialize_plan()
        t0, c0 = time.perf_counter(), time.process_time()
        initlab.materialize(m, mplan, device="cpu", seed=0, rng=rng)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        return dict(section="model", model=cfg["kind"], params=n_params, dtype=dtype,
                    method=method, threads=threads, wall_s=wall, cpu_s=cpu,
                    peak_rss_mb=peak_rss_mb(), rss_before_mb=rss0,
                    param_mb=n_params * torch.empty((), dtype=dt).element_size() / 2**20)
    m.to_empty(device="cpu")
    t0, c0 = time.perf_counter(), time.process_time()
    if method == "counter":
        initlab.apply(m, materialize_plan(), seed=0, rng="counter", atomic=False)
    elif method == "torch_same":
        torch_same_scheme(m)
    else:
        torch_default(m)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = peak_rss_mb()
    return dict(section="model", model=cfg["kind"], params=n_params, dtype=dtype, method=method,
                threads=threads, wall_s=wall, cpu_s=cpu, peak_rss_mb=rss,
                rss_before_mb=rss0,
                param_mb=n_params * torch.empty((), dtype=dt).element_size() / 2**20)


def hf_gpt2_case(threads: int, rounds: int = 5) -> dict:
    """Hugging Face GPT-2 small (124M, from GPT2Config(), no download): ``apply(m, "gpt2",
    rng="counter")`` against a loop of torch.nn.init calls drawing the distributions its report
    lists, in the same process on the same tensors (wall and CPU time of each, best and median of
    ``rounds``; peak RSS beyond the model per side)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    import initlab
    from initlab.scale import compiled_words_available

    torch.set_num_threads(threads)
    m = GPT2LMHeadModel(GPT2Config())
    tensors = dict(m.named_parameters(remove_duplicate=False))
    res = {}
    peak = {}
    for _ in range(rounds):
        base = rss_mb()
        reset_peak_rss()
        t0, c0 = time.perf_counter(), time.process_time()
        rep = initlab.apply(m, "gpt2", seed=0, rng="counter")
        peak["apply_counter"] = max(peak.get("apply_counter", 0.0), peak_rss_mb() - base)
        res.setdefault("apply_counter", []).append((time.perf_counter() - t0,
                                                    time.process_time() - c0))
        if compiled_words_available():
            with _words("numpy"):
                t0, c0 = time.perf_counter(), time.process_time()
                initlab.apply(m, "gpt2", seed=0, rng="counter")
                res.setdefault("apply_counter_numpy_words", []).append(
                    (time.perf_counter() - t0, time.process_time() - c0))
        t0, c0 = time.perf_counter(), time.process_time()
        rep_t = initlab.apply(m, "gpt2", seed=0)
        res.setdefault("apply_torch", []).append((time.perf_counter() - t0,
                                                  time.process_time() - c0))
        todo = []
        for r in rep.records:
            if r.status != "initialized":
                continue
            d = r.init if isinstance(r.init, dict) else {}
            name = d.get("name")
            todo.append((tensors[r.name], name, r.expected_std))
        base = rss_mb()
        reset_peak_rss()
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.no_grad():
            for t, name, std in todo:
                if name in ("zeros",):
                    nn.init.zeros_(t)
                elif name in ("ones",):
                    nn.init.ones_(t)
                else:
                    nn.init.normal_(t, 0.0, std)
        res.setdefault("torch_loop", []).append((time.perf_counter() - t0,
                                                 time.process_time() - c0))
        peak["torch_loop"] = max(peak.get("torch_loop", 0.0), peak_rss_mb() - base)
    from statistics import median

    kinds = sorted({(n, round(s, 6) if s else s) for _, n, s in todo}, key=str)
    del rep_t
    return dict(section="hf_gpt2", threads=threads, rounds=rounds,
                params=sum(p.numel() for p in m.parameters()),
                **{f"{k}_wall_s": min(w for w, _ in v) for k, v in res.items()},
                **{f"{k}_wall_median_s": median(w for w, _ in v) for k, v in res.items()},
                **{f"{k}_cpu_s": min(c for _, c in v) for k, v in res.items()},
                **{f"{k}_peak_mb": v for k, v in peak.items()},
                drawn=[list(k) for k in kinds])


def torch_nn_init_loop(m: nn.Module) -> None:
    """The scheme of :func:`plan` as a loop of ``torch.nn.init`` calls (the issue's peer)."""
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "norm" in n or "ln_" in n:
                nn.init.ones_(p) if n.endswith("weight") else nn.init.zeros_(p)
            elif n.endswith("bias"):
                nn.init.zeros_(p)
            else:
                nn.init.normal_(p, 0.0, 0.02)


def model_pair_case(cfg: dict, dtype: str, threads: int, rounds: int) -> dict:
    """In one process, alternately: ``materialize(meta model, plan, rng="counter")`` (allocation
    and initialization) and ``to_empty`` + a loop of ``torch.nn.init`` calls drawing the same
    distributions (allocation timed too; the first write of each page faults it in for both
    sides). The model is freed between rounds; peak RSS per side from a reset ``VmHWM``."""
    import gc

    import initlab
    from initlab.scale import compiled_words_available

    torch.set_num_threads(threads)
    dt = getattr(torch, dtype)
    sides = ("counter", "loop") + (("counter_numpy_words",) if compiled_words_available() else ())
    res: dict = {k: [] for k in sides}
    peak: dict = {}
    n_params = 0
    for _ in range(rounds):
        for side in sides:
            with torch.device("meta"):
                m = build(cfg).to(dt)
            n_params = sum(p.numel() for p in m.parameters())
            gc.collect()
            base = rss_mb()
            reset_peak_rss()
            t0, c0 = time.perf_counter(), time.process_time()
            if side.startswith("counter"):
                with _words("numpy" if side != "counter" else "auto"):
                    initlab.materialize(m, materialize_plan(), device="cpu", seed=0,
                                        rng="counter")
            else:
                m.to_empty(device="cpu")
                torch_nn_init_loop(m)
            res[side].append((time.perf_counter() - t0, time.process_time() - c0))
            peak[side] = max(peak.get(side, 0.0), peak_rss_mb() - base)
            del m
            gc.collect()
    return dict(section="model_pair", model=cfg["kind"], params=n_params, dtype=dtype,
                threads=threads, **{f"{k}_wall_s": [w for w, _ in v] for k, v in res.items()},
                **{f"{k}_cpu_s": [c for _, c in v] for k, v in res.items()},
                **{f"{k}_peak_mb": v for k, v in peak.items()},
                param_mb=n_params * torch.empty((), dtype=dt).element_size() / 2**20)


def bench_model_pair(name: str, cfg: dict, threads: int, rounds: int,
                     dtypes=("float32",)) -> list[dict]:
    from statistics import median

    rows = []
    for dtype in dtypes:
        r = _subprocess_json(["--_pair", json.dumps(cfg), dtype, str(threads), str(rounds)])
        r["name"] = name
        rows.append(r)
        cw, lw = r["counter_wall_s"], r["loop_wall_s"]
        cc, lc = r["counter_cpu_s"], r["loop_cpu_s"]
        print(f"  {name:10s} {r['params'] / 1e6:7.1f}M {dtype:8s} threads={threads}: "
              f"materialize(rng=counter) wall min {min(cw):.2f} median {median(cw):.2f} s, cpu "
              f"{min(cc):.2f} s; to_empty + torch.nn.init loop wall min {min(lw):.2f} median "
              f"{median(lw):.2f} s, cpu {min(lc):.2f} s -> counter / loop: wall "
              f"{min(cw) / min(lw):.2f}x (medians {median(cw) / median(lw):.2f}x), cpu "
              f"{min(cc) / min(lc):.2f}x; peak RSS beyond the imports: counter "
              f"{r['counter_peak_mb']:.0f} MB, loop {r['loop_peak_mb']:.0f} MB (params "
              f"{r['param_mb']:.0f} MB)", flush=True)
        if "counter_numpy_words_wall_s" in r:
            nw_, nc_ = r["counter_numpy_words_wall_s"], r["counter_numpy_words_cpu_s"]
            print(f"  {'':10s} the same on NumPy's words: wall min {min(nw_):.2f} median "
                  f"{median(nw_):.2f} s, cpu {min(nc_):.2f} s -> / loop: wall "
                  f"{min(nw_) / min(lw):.2f}x (medians {median(nw_) / median(lw):.2f}x), cpu "
                  f"{min(nc_) / min(lc):.2f}x", flush=True)
    return rows


def _subprocess_json(args: list[str], env=None, timeout=3600) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         env=env, timeout=timeout)
    if out.returncode:
        raise RuntimeError(f"case {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


METHODS = ("counter", "torch_same", "torch_default", "materialize_torch", "materialize_counter")


def bench_models(cfgs: list[tuple[str, dict]], threads: int, methods=METHODS,
                 dtypes=("float32", "bfloat16")) -> list[dict]:
    rows = []
    for name, cfg in cfgs:
        for dtype in dtypes:
            for method in methods:
                r = _subprocess_json(["--_model", json.dumps(cfg), dtype, method, str(threads)])
                r["name"] = name
                rows.append(r)
                print(f"  {name:10s} {r['params'] / 1e6:7.1f}M {dtype:8s} {method:13s} "
                      f"wall {r['wall_s']:7.2f} s  cpu {r['cpu_s']:7.2f} s  "
                      f"peak RSS {r['peak_rss_mb']:7.0f} MB (params {r['param_mb']:.0f} MB, "
                      f"before to_empty {r['rss_before_mb']:.0f} MB)", flush=True)
    return rows


def bench_hf_gpt2(threads: int) -> list[dict]:
    try:
        r = _subprocess_json(["--_hf_gpt2", str(threads)])
    except RuntimeError as exc:
        print(f"  HF GPT-2: skipped ({str(exc).splitlines()[-1]})")
        return []
    print(f"  HF GPT-2 small {r['params'] / 1e6:.1f}M, threads={threads}: apply(gpt2, "
          f"rng=counter) wall {r['apply_counter_wall_s']:.2f} s cpu {r['apply_counter_cpu_s']:.2f} s"
          f"; apply(gpt2, rng=torch) wall {r['apply_torch_wall_s']:.2f} s; torch.nn.init loop "
          f"wall {r['torch_loop_wall_s']:.2f} s cpu {r['torch_loop_cpu_s']:.2f} s -> counter "
          f"{r['apply_counter_wall_s'] / r['torch_loop_wall_s']:.2f}x the loop (wall; medians "
          f"{r['apply_counter_wall_median_s'] / r['torch_loop_wall_median_s']:.2f}x; cpu "
          f"{r['apply_counter_cpu_s'] / r['torch_loop_cpu_s']:.2f}x); peak RSS beyond the model: "
          f"apply {r['apply_counter_peak_mb']:.0f} MB, loop {r['torch_loop_peak_mb']:.0f} MB",
          flush=True)
    if "apply_counter_numpy_words_wall_s" in r:
        print(f"  {'':14s} apply(gpt2, rng=counter) on NumPy's words: wall "
              f"{r['apply_counter_numpy_words_wall_s']:.2f} s (median "
              f"{r['apply_counter_numpy_words_wall_median_s']:.2f}) cpu "
              f"{r['apply_counter_numpy_words_cpu_s']:.2f} s -> "
              f"{r['apply_counter_numpy_words_wall_s'] / r['torch_loop_wall_s']:.2f}x the loop "
              f"(medians {r['apply_counter_numpy_words_wall_median_s'] / r['torch_loop_wall_median_s']:.2f}x)",
              flush=True)
    return [r]


# ------------------------------------------------------------------------------ section 3
def sharded_worker(cfg: dict) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    import initlab
    import initlab.scale  # noqa: F401

    dist.init_process_group("gloo")
    world = dist.get_world_size()
    mesh = init_device_mesh("cpu", (world,))
    with torch.device("meta"):
        m = build(cfg)
    for mod in m.modules():
        if isinstance(mod, (GPT2Block, LlamaBlock)):
            fully_shard(mod, mesh=mesh)
    fully_shard(m, mesh=mesh)
    m.to_empty(device="cpu")
    local = sum(p.to_local().numel() for p in m.parameters())
    dist.barrier()
    t0, c0 = time.perf_counter(), time.process_time()
    initlab.apply(m, materialize_plan(), seed=0, rng="counter", atomic=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    # the stream alone: counter_fill_ of every (local shard of a) parameter, no apply machinery
    from initlab.core.distributions import Normal
    from initlab.scale import counter_fill_

    dist.barrier()
    c1 = time.process_time()
    for n, p in m.named_parameters():
        counter_fill_(p, Normal(0.0, 0.02), seed=0, name=n, threads=1)
    fill_cpu = time.process_time() - c1
    rows = [None] * world
    dist.all_gather_object(rows, dict(wall_s=wall, cpu_s=cpu, fill_cpu_s=fill_cpu,
                                      local_params=local))
    if dist.get_rank() == 0:
        print(json.dumps(rows))
    dist.destroy_process_group()


def bench_sharded(cfg: dict, worlds=(1, 2, 4)) -> list[dict]:
    out = []
    for world in worlds:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ, WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
        procs = [subprocess.Popen([sys.executable, __file__, "--_sharded", json.dumps(cfg)],
                                  env=dict(env, RANK=str(r)), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for r in range(world)]
        outs = [p.communicate(timeout=3600) for p in procs]
        if any(p.returncode for p in procs):
            raise RuntimeError("sharded worker failed:\n" + "\n".join(e[-2000:] for _, e in outs))
        rows = json.loads(outs[0][0].strip().splitlines()[-1])
        r = dict(section="sharded", world=world,
                 cpu_s_per_rank=[x["cpu_s"] for x in rows],
                 wall_s_per_rank=[x["wall_s"] for x in rows],
                 fill_cpu_s_per_rank=[x["fill_cpu_s"] for x in rows],
                 local_params=[x["local_params"] for x in rows])
        out.append(r)
        print(f"  ranks={world}  apply cpu/rank " + " ".join(f"{c:.2f}" for c in r["cpu_s_per_rank"])
              + "  counter_fill_ alone cpu/rank " + " ".join(
                  f"{c:.2f}" for c in r["fill_cpu_s_per_rank"])
              + " s   wall max {:.2f} s   local params/rank {}".format(
                  max(r["wall_s_per_rank"]), r["local_params"]), flush=True)
    return out


# ------------------------------------------------------------------------------ main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--big", action="store_true", help="also the ~1.2B Llama-shaped model")
    ap.add_argument("--repeat", type=int, default=None, help="timing rounds (best and median)")
    ap.add_argument("--threads", type=int, default=2, help="threads for the model section")
    ap.add_argument("--only", default="123", help="sections to run, e.g. --only 1 or 12")
    ap.add_argument("--candidates", action="store_true",
                    help="section 1 also times the generator candidates (torch.compile: ~30 s)")
    ap.add_argument("--llama-only", action="store_true",
                    help="section 2: only the Llama-shaped model (implies --big)")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="section 2: comma-separated cases (default all)")
    ap.add_argument("--dtypes", default="float32,bfloat16", help="section 2: dtypes")
    ap.add_argument("--json", default=None, help="write all rows to this file")
    ap.add_argument("--_model", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--_sharded", help=argparse.SUPPRESS)
    ap.add_argument("--_hf_gpt2", help=argparse.SUPPRESS)
    ap.add_argument("--_pair", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--pair-rounds", type=int, default=2,
                    help="section 2: rounds of the same-process materialize/loop pair")
    a = ap.parse_args(argv)
    if a._model:
        cfg, dtype, method, threads = a._model
        print(json.dumps(model_case(json.loads(cfg), dtype, method, int(threads))))
        return 0
    if a._sharded:
        sharded_worker(json.loads(a._sharded))
        return 0
    if a._hf_gpt2:
        print(json.dumps(hf_gpt2_case(int(a._hf_gpt2))))
        return 0
    if a._pair:
        cfg, dtype, threads, rounds = a._pair
        print(json.dumps(model_pair_case(json.loads(cfg), dtype, int(threads), int(rounds))))
        return 0

    import initlab
    from initlab.scale import COUNTER_STREAM_VERSION, words_backend

    n = (1 << 21) if a.quick else (1 << 24)
    repeat = a.repeat or (2 if a.quick else 5)
    print(f"initlab {initlab.__version__} ({COUNTER_STREAM_VERSION}), torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}, CPU "
          f"words: {words_backend()}", flush=True)
    rows = []
    if "1" in a.only:
        print(f"[1] elementwise, {n} elements (best and median of {repeat} interleaved rounds)")
        rows += bench_elementwise(n, repeat)
        print("[1c] where v2's normal spends its time (CPU, one thread, 256Ki-element chunks)")
        rows += bench_steps(n, repeat)
        if a.candidates:
            print("[1b] generator candidates, one thread")
            rows += bench_candidates(repeat)
    if "2" in a.only:
        cfgs = [] if a.llama_only else [
            ("gpt2-quick" if a.quick else "gpt2-small", GPT2_QUICK if a.quick else GPT2_SMALL)]
        if a.big or a.llama_only:
            cfgs.append(("llama-1b", LLAMA_1B))
        print(f"[2] whole-model init (fresh process per case, {a.threads} threads)")
        if a.methods:
            rows += bench_models(cfgs, a.threads, a.methods.split(","), a.dtypes.split(","))
        print("[2b] materialize(rng='counter') against a torch.nn.init loop, same process")
        for name, cfg in cfgs:
            for th in (1, 2):
                rows += bench_model_pair(name, cfg, th, a.pair_rounds,
                                         tuple(a.dtypes.split(",")) if a.quick else ("float32",))
        if not a.quick and not a.llama_only:
            print("[2c] Hugging Face GPT-2 small: apply(model, 'gpt2', rng='counter') against a "
                  "torch.nn.init loop, same process")
            for th in (1, 2):
                rows += bench_hf_gpt2(th)
    if "3" in a.only:
        print("[3] sharded init, FSDP2 on gloo, one thread per rank")
        rows += bench_sharded(GPT2_QUICK if a.quick else GPT2_SMALL,
                              (1, 2) if a.quick else (1, 2, 4))
    print(f"load at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if a.json:
        from initlab.util.atomic import atomic_write_text

        atomic_write_text(a.json, json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
