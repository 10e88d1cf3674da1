"""Progress for long lab work: a bar on a terminal, a plain line a minute in pipes and logs,
nothing with ``--quiet``.

>>> bar = progress_bar(total=12, desc="compare", unit="epoch", quiet=False)
>>> bar.update(1); bar.close()                              # doctest: +SKIP

A bar is a tqdm bar (epochs or arms done, rate and ETA) when ``sys.stderr`` is a terminal and
``quiet`` is False. When stderr is a pipe or a file (a background run's log, CI), it is
:class:`_Lines`: one line ``desc: done/total unit (pct%), elapsed, ETA`` at most every
:data:`LOG_EVERY_S` seconds, and a last line at the end if it printed any, so work shorter than
that interval writes nothing. With ``quiet`` a no-op object with the same methods, so callers
never branch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable

SMALL_MODEL_THREADS = 1  # the lab's models: MLPs/CNNs of at most ~1M parameters


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_description(self, desc: str) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass


#: seconds between two progress lines in a pipe or log (see :class:`_Lines`)
LOG_EVERY_S = 60.0


def _duration(seconds: float) -> str:
    """``42 s``, ``3.5 min`` or ``2.1 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class _Lines:
    """Progress as plain lines for a pipe or log: at most one per ``every`` seconds, none for
    work that ends sooner, and a last one at :meth:`close` after any (unless it already shows
    the final count). The ETA assumes the remaining steps take as long as the mean step so
    far."""

    def __init__(self, *, total: int | None, desc: str, unit: str, every: float | None = None,
                 clock: Callable[[], float] = time.monotonic, file=None):
        self.total, self.desc, self.unit = total, desc, unit
        self.every = LOG_EVERY_S if every is None else every
        self.clock, self.file = clock, file if file is not None else sys.stderr
        self.n, self.postfix, self.printed, self.last_n = 0, "", 0, 0
        self.t0 = self.last = clock()

    def _line(self) -> str:
        el = self.clock() - self.t0
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        text = f"{self.desc}: {done} {self.unit}"
        if self.total:
            text += f" ({100 * self.n / self.total:.0f}%)"
        text += f", {_duration(el)} elapsed"
        if self.total and 0 < self.n < self.total:
            text += f", ETA {_duration(el / self.n * (self.total - self.n))}"
        return text + (f" [{self.postfix}]" if self.postfix else "")

    def _emit(self) -> None:
        print(self._line(), file=self.file, flush=True)
        self.printed += 1
        self.last, self.last_n = self.clock(), self.n

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.clock() - self.last >= self.every:
            self._emit()

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def refresh(self) -> None:
        """tqdm's redraw: the next line shows a changed ``total``, so nothing to do now."""

    def close(self) -> None:
        if self.printed and self.n != self.last_n:    # the final count, unless just printed
            self._emit()
        self.printed = 0                              # a second close prints nothing more


def _lines_over(iterable: Iterable, lines: _Lines):
    try:
        for item in iterable:
            yield item
            lines.update(1)
    finally:
        lines.close()


def interactive() -> bool:
    """Whether progress should be drawn: stderr is a terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress_bar(*, total: int, desc: str, unit: str = "it", quiet: bool = False):
    """A tqdm bar on a terminal (with ETA), plain lines in a pipe or log, silent if ``quiet``."""
    if quiet:
        return _Silent()
    if not interactive():
        return _Lines(total=total, desc=desc, unit=unit)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False,
                file=sys.stderr)


def progress(iterable: Iterable, *, desc: str, quiet: bool, total: int | None = None,
             unit: str = "arm"):
    """``iterable`` wrapped in a bar (see :func:`progress_bar`); itself when ``quiet``."""
    if quiet:
        return iterable
    if not interactive():
        if total is None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        return _lines_over(iterable, _Lines(total=total, desc=desc, unit=unit))
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
