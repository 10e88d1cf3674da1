"""Core / NumPy reference path and initlab.torch per-call validation, side by side in one process.

1. Orthogonal on the NumPy path: initlab's default ("householder": Stewart 1980 reflectors from
   Gaussian vectors, multiplied out by LAPACK dorgqr) against its "qr" (numpy.linalg.qr + sign
   fix) and the peer scipy.stats.ortho_group (Haar O(n), square only).
2. Per-call overhead of initlab.torch on a small tensor (where validation dominates): normal_ and
   kaiming_uniform_ against torch.nn.init on a 64x64 float32 tensor, same generator.

Time: best of N interleaved runs (benchmarks/_util.py).

    python benchmarks/bench_core.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import best_of, fmt_time, machine_info, markdown_table  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    import numpy as np
    import torch
    from scipy.stats import ortho_group

    import initlab.torch as it
    from initlab.core.sampling import haar_orthogonal

    rows = []
    for n, m in ((256, 256), (1024, 1024), (2048, 512)):
        fns = {
            "householder": lambda n=n, m=m: haar_orthogonal(np.random.default_rng(0), n, m,
                                                             "householder"),
            "qr": lambda n=n, m=m: haar_orthogonal(np.random.default_rng(0), n, m, "qr"),
        }
        if n == m:
            fns["scipy ortho_group"] = lambda n=n: ortho_group.rvs(n, random_state=0)
        t = best_of(fns, args.repeat)
        peer = t.get("scipy ortho_group")
        rows.append([f"{n}x{m}", fmt_time(t["householder"]), fmt_time(t["qr"]),
                     f"{t['qr'] / t['householder']:.2f}x",
                     fmt_time(peer) if peer else "-",
                     f"{peer / t['householder']:.2f}x" if peer else "-"])
    print("## NumPy orthogonal (float64)\n")
    print(markdown_table(["shape", "initlab householder (default)", "initlab qr",
                          "qr / householder", "scipy ortho_group", "scipy / householder"], rows))

    w = torch.empty(64, 64)
    small = []
    for label, ours, theirs in (
        ("normal_", lambda g: it.normal_(w, 0.0, 0.02, g),
         lambda g: torch.nn.init.normal_(w, 0.0, 0.02, generator=g)),
        ("kaiming_uniform_", lambda g: it.kaiming_uniform_(w, a=5**0.5, generator=g),
         lambda g: torch.nn.init.kaiming_uniform_(w, a=5**0.5, generator=g)),
    ):
        g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)

        def loop(f, g):
            return lambda: [f(g) for _ in range(2000)]

        t = best_of({"initlab": loop(ours, g1), "torch": loop(theirs, g2)}, args.repeat)
        small.append([label, "64x64", f"{t['torch'] / 2000 * 1e6:.1f} us",
                      f"{t['initlab'] / 2000 * 1e6:.1f} us", f"{t['initlab'] / t['torch']:.2f}x"])
    print("\n## initlab.torch per call, small tensor (validation included)\n")
    print(markdown_table(["call", "shape", "torch.nn.init", "initlab.torch", "initlab / torch"],
                         small))
    info = machine_info()
    print(f"\nMachine: {info.get('cpu')}, {info.get('cores')} cores, {info.get('os')}; Python "
          f"{info.get('python')}, torch {info.get('torch')} ({info.get('torch_threads')} threads), "
          f"NumPy {np.__version__}; load average at the end: {info.get('load_avg')}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
