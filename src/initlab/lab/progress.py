"""Progress bars for long lab work: shown on a terminal, silent in pipes, logs and ``--quiet``.

>>> bar = progress_bar(total=12, desc="compare", unit="epoch", quiet=False)
>>> bar.update(1); bar.close()                              # doctest: +SKIP

A bar is a tqdm bar (epochs or arms done, rate and ETA) when ``sys.stderr`` is a terminal and
``quiet`` is False; otherwise a no-op object with the same methods, so callers never branch.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

SMALL_MODEL_THREADS = 1  # the lab's models: MLPs/CNNs of at most ~1M parameters


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_description(self, desc: str) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def interactive() -> bool:
    """Whether progress should be drawn: stderr is a terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress_bar(*, total: int, desc: str, unit: str = "it", quiet: bool = False):
    """A tqdm bar on a terminal (with ETA), else a silent stand-in."""
    if quiet or not interactive():
        return _Silent()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False,
                file=sys.stderr)


def progress(iterable: Iterable, *, desc: str, quiet: bool, total: int | None = None,
             unit: str = "arm"):
    """``iterable`` wrapped in a bar (see :func:`progress_bar`); itself when silent."""
    if quiet or not interactive():
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, dynamic_ncols=True,
                file=sys.stderr)


def default_threads(jobs: int = 1) -> int:
    """The torch CPU threads per run so that threads x parallel ``jobs`` <= the cores this
    process may use: 1 per run for the lab's small models (intra-op parallelism costs more than
    it brings on them, and a loaded machine punishes it: the README's compare example took
    305 s with torch's default and 34 s with 1 thread on a loaded 2-core machine)."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(SMALL_MODEL_THREADS, cores // max(1, jobs)))
