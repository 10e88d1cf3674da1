"""The counter stream on a GPU, side by side with torch's own RNG on the same device.

    python benchmarks/bench_scale_gpu.py            # 64M elements per case
    python benchmarks/bench_scale_gpu.py --n 16777216 --repeat 10

Where no CUDA device exists it says so and measures nothing (exit status 0). On a GPU it first
checks the device path against the CPU (Philox words and uniforms bit for bit, normals within a
few float32 ulps), then times ``counter_fill_`` (stream v2, integer tensor ops on the device)
against ``normal_`` / ``uniform_`` / ``nn.init.trunc_normal_`` on the same tensor, float32 and
bf16, with ``torch.cuda.synchronize()`` around each timed call (best and median of
``--repeat`` interleaved rounds). Record the output in BENCHMARKS.md with the GPU's name.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1 << 26, help="elements per tensor")
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("No CUDA device on this machine (torch.cuda.is_available() is False): nothing "
              "measured. The counter stream's CUDA path stays untested until this script runs "
              "on a GPU.")
        return 0
    from initlab.core.distributions import Normal, TruncatedNormal, Uniform
    from initlab.scale import counter_fill_, philox_words_torch, stream_key

    dev = torch.device("cuda")
    print(f"GPU: {torch.cuda.get_device_name(dev)}, torch {torch.__version__}")
    key = stream_key(0, "w")
    same_words = torch.equal(philox_words_torch(key, 3, 100003, dev).cpu(),
                             philox_words_torch(key, 3, 100003, "cpu"))
    u = Uniform(-1.0, 1.0)
    cpu_u = counter_fill_(torch.empty(1000, 333), u, seed=0, name="w")
    same_u = torch.equal(counter_fill_(torch.empty(1000, 333, device=dev), u, seed=0,
                                       name="w").cpu(), cpu_u)
    cpu_n = counter_fill_(torch.empty(1000, 333), Normal(0.0, 1.0), seed=0, name="w")
    gpu_n = counter_fill_(torch.empty(1000, 333, device=dev), Normal(0.0, 1.0), seed=0,
                          name="w").cpu()
    ulps = int((gpu_n.view(torch.int32).long() - cpu_n.view(torch.int32).long()).abs().max())
    print(f"check: words equal {same_words}, uniforms equal {same_u}, normals max {ulps} ulps")

    def timed(fn):
        torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        return time.perf_counter() - t

    n = a.n
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.empty(n, dtype=dtype, device=dev)
        cases = [("normal", Normal(0.0, 1.0), lambda x=x: x.normal_()),
                 ("uniform", Uniform(-1.0, 1.0), lambda x=x: x.uniform_(-1.0, 1.0)),
                 ("trunc_normal", TruncatedNormal(0.0, 1.0, -2.0, 2.0),
                  lambda x=x: torch.nn.init.trunc_normal_(x, 0.0, 1.0, -2.0, 2.0))]
        for label, dist, tfn in cases:
            fns = {"torch": tfn, "counter": lambda dist=dist, x=x: counter_fill_(
                x, dist, seed=0, name="w")}
            for f in fns.values():
                f()
            t = {k: [] for k in fns}
            for _ in range(a.repeat):
                for k, f in fns.items():
                    t[k].append(1e9 * timed(f) / n)
            print(f"{label:12s} {str(dtype):15s} torch {min(t['torch']):6.3f} ns/el, counter "
                  f"{min(t['counter']):6.3f} ns/el (median {statistics.median(t['counter']):.3f})"
                  f" -> {min(t['counter']) / min(t['torch']):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
