"""An experiment's output directory: its config, results as JSON lines, per-run checkpoints.

Layout of ``OUT/``::

    config.json         what the experiment is (written once, atomically)
    results.jsonl       one JSON object per line per (init, lr, seed, epoch), appended
    checkpoints/*.pt    model + optimizer + RNG state after each finished epoch of a run in progress

Lines are appended whole, then flushed and fsynced, so a crash can at worst leave one torn last
line; :func:`read_jsonl` drops it (and :meth:`RunDir.open` truncates it away). A directory that
holds a different experiment is refused unless ``force`` (start over) is given; the same
experiment is continued only with ``resume``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.validation import InitlabError, fail
from ..util.atomic import atomic_write_text

CONFIG = "config.json"
RESULTS = "results.jsonl"
CHECKPOINTS = "checkpoints"


def _dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True, allow_nan=False, separators=(",", ":"))


def read_jsonl(path: str | Path, *, repair: bool = False) -> list[dict]:
    """Records of a JSON-lines file. A torn last line (no newline, or not valid JSON) is dropped,
    and with ``repair`` cut from the file; a bad line elsewhere is an error."""
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    good_end = len(data) - len(tail)
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1 and not tail:
                good_end -= len(line) + 1  # torn last line that happens to end in "\n"
                break
            raise fail("results", f"has an unreadable line {i + 1} (not the last one)",
                       str(path), "move the file away or rerun with --force.") from None
    if repair and good_end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
            fh.flush()
            os.fsync(fh.fileno())
    return records


class RunDir:
    """The output directory of one experiment (see the module docstring).

    ``RunDir(out, config).open(resume=..., force=...)`` checks ``config.json`` against
    ``config`` (a JSON-able dict): a new or empty directory is started; the same experiment is
    continued with ``resume``; anything else raises an error saying what to pass.
    """

    def __init__(self, out: str | Path, config: dict):
        self.path = Path(out)
        self.config = json.loads(_dumps(config))  # normalized (tuples -> lists)

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS

    def checkpoint(self, key: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in key)
        return self.path / CHECKPOINTS / f"{safe}.pt"

    def holds(self) -> bool:
        """Whether ``config.json`` is there, readable, and this experiment's."""
        try:
            return json.loads((self.path / CONFIG).read_text()) == self.config
        except (OSError, ValueError):
            return False

    def open(self, *, resume: bool = False, force: bool = False) -> list[dict]:
        """Prepare the directory; return the records already there (empty unless resuming)."""
        cfg_path = self.path / CONFIG
        existing = None
        if cfg_path.is_file():
            try:
                existing = json.loads(cfg_path.read_text())
            except json.JSONDecodeError:
                existing = {"unreadable": True}
        has_results = self.results_path.is_file() and self.results_path.stat().st_size > 0
        if existing is not None or has_results:
            same = existing == self.config
            if force:
                self._clear()
            elif resume and same:
                return read_jsonl(self.results_path, repair=True)
            elif resume:
                raise InitlabError(
                    f"`--resume` needs the same experiment, but {self.path} holds a different "
                    f"one; got {_diff(existing, self.config)}. Fix: rerun with the options in "
                    f"{cfg_path}, choose another --out, or pass --force to start over.")
            else:
                what = "this experiment" if same else "a different experiment"
                raise InitlabError(
                    f"`--out` must be a new or empty directory (or one this experiment can "
                    f"resume); got {str(self.path)!r}, which holds results of {what}. Fix: pass "
                    "--resume to continue it" + ("" if same else " (same options only)")
                    + ", --force to start over, or another --out.")
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cfg_path, json.dumps(self.config, indent=2, sort_keys=True) + "\n")
        return []

    def _clear(self) -> None:
        for name in (RESULTS, CONFIG, "report.html"):
            p = self.path / name
            if p.is_file():
                p.unlink()
        ck = self.path / CHECKPOINTS
        if ck.is_dir():
            for p in ck.glob("*.pt"):
                p.unlink()

    def append(self, record: dict) -> None:
        """Append one record as a whole line, flushed and fsynced."""
        line = (_dumps(record) + "\n").encode("utf-8")
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.results_path, "ab") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> list[dict]:
        return read_jsonl(self.results_path)

    def rewrite(self, records: list[dict]) -> None:
        """Replace the results with ``records``, atomically."""
        atomic_write_text(self.results_path, "".join(_dumps(r) + "\n" for r in records))


def _diff(old, new) -> str:
    if not isinstance(old, dict):
        return "an unreadable config.json"
    keys = sorted(set(old) | set(new))
    parts = [f"{k}: {old.get(k)!r} there vs {new.get(k)!r} now" for k in keys
             if old.get(k) != new.get(k)]
    return "; ".join(parts[:6]) or "no difference"
