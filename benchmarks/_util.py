"""Small helpers shared by the benchmark scripts: timing, peak memory, machine info, markdown.

Timing: best of N wall-clock runs (``time.perf_counter``), the candidates interleaved round by
round so a burst of load from other processes hits both sides alike. The best, not the mean, is
reported: on a shared machine the minimum is the least noisy estimate of the cost itself.

Peak memory: each case runs once in a fresh Python subprocess, which allocates and touches its
output tensor, then resets the kernel's resident-set high-water mark (``echo 5 >
/proc/self/clear_refs``, Linux >= 4.0), reads the current RSS, runs the initializer once and reads
the high-water mark (``VmHWM`` in ``/proc/self/status``). The difference is the *extra* peak
memory the call needed beyond its output (temporaries, workspaces), at page resolution. Without
the reset (other OSes), ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` deltas are used instead;
those miss memory below an earlier peak (e.g. from imports), and the probe says which method it
used. Memory the allocator recycles from earlier frees is not counted either way, so numbers
below a few MiB mean "no full-size temporary", not an exact byte count.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence


def best_of(fns: dict[str, Callable[[], object]], repeat: int, warmup: int = 1,
            clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Best time in seconds of each callable, over ``repeat`` interleaved rounds: wall time, or
    with ``clock=time.process_time`` this process's CPU time (for single-threaded work on a
    shared machine, where wall time also measures the other jobs)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = clock()
            fn()
            times[k].append(clock() - t0)
    return {k: min(v) for k, v in times.items()}


def maxrss_bytes() -> int:
    """The process's peak resident set so far, in bytes (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """``with PeakMemory() as pm: work()`` then ``pm.extra`` (bytes above the RSS at entry) and
    ``pm.method`` ("VmHWM after clear_refs" or "ru_maxrss delta")."""

    def __enter__(self):
        self.method = "ru_maxrss delta"
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # reset the peak RSS to the current RSS
            rss = _status_kib("VmRSS")
            if rss is not None and _status_kib("VmHWM") is not None:
                self.method = "VmHWM after clear_refs"
                self.before = rss * 1024
        except OSError:
            pass
        if self.method == "ru_maxrss delta":
            self.before = maxrss_bytes()
        return self

    def __exit__(self, *exc):
        if self.method == "ru_maxrss delta":
            self.extra = maxrss_bytes() - self.before
        else:
            self.extra = _status_kib("VmHWM") * 1024 - self.before
        return False


def peak_in_subprocess(script: str, args: Sequence[str], env: dict | None = None,
                       timeout: float = 900.0) -> dict:
    """Run ``python script *args`` and parse the JSON object it prints on its last line."""
    proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe {args} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine_info() -> dict:
    """CPU model, core count, OS, Python and torch versions, torch's thread count."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(),
            "python": platform.python_version()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        info["load_avg"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    return info


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e3:.1f} ms"


def fmt_mib(n_bytes: float | None) -> str:
    return "-" if n_bytes is None else f"{n_bytes / 2**20:.1f}"
