"""An experiment's output directory: its config, results as JSON lines, per-run checkpoints.

Layout of ``OUT/``::

    config.json         what the experiment is (written once, atomically)
    results.jsonl       one JSON object per line per (init, lr, seed, epoch), appended
    checkpoints/*.pt    model + optimizer + RNG state after each finished epoch of a run in progress
    .lock               while a run writes here: its OS file lock, naming its pid
    replaced-<time>/    what ``--force`` moved aside (nothing is ever deleted)

Rules (the same for ``compare``, ``demo`` and ``reproduce``):

- One writer at a time: :class:`RunLock` holds ``OUT/.lock`` for the whole run; a second run on
  the same folder is refused with the pid of the first. The OS releases the lock when a process
  dies, so a crash never leaves a stale lock behind.
- Lines are appended whole, then flushed and fsynced, so a crash can at worst leave one torn last
  line; :func:`read_jsonl` drops it (and :meth:`RunDir.open` truncates it away). Records are
  de-duplicated by their key on resume (the first one is kept). Temporary files of atomic writes
  that a kill left behind are removed when the folder is opened.
- A directory that holds a different experiment is refused unless ``force``; the same experiment
  is continued only with ``resume``. ``force`` moves the old files into ``OUT/replaced-<time>/``.
  A torn ``config.json`` is reported as torn, never as "a different experiment".
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import socket
import sys
from pathlib import Path

from ..core.validation import InitlabError, fail
from ..util.atomic import atomic_write_text

CONFIG = "config.json"
RESULTS = "results.jsonl"
CHECKPOINTS = "checkpoints"
LOCK = ".lock"
REPLACED = "replaced-"


def _dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True, allow_nan=False, separators=(",", ":"))


def check_out_dir(out: str | Path, name: str = "--out") -> Path:
    """``out`` as a Path, refused (before anything is written) when it, or the nearest existing
    folder above it, is not a directory."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise fail(name, "must be a directory (a new one, or one an initlab run wrote)",
                   str(path), "it is a file: pass another path.")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise fail(name, "must be a directory path", str(path),
                   f"{str(parent)!r} above it is a file: pass a path under a directory.")
    return path


def read_jsonl(path: str | Path, *, repair: bool = False, key: tuple[str, ...] | None = None,
               ) -> list[dict]:
    """Records of a JSON-lines file. A torn last line (no newline, or not valid JSON) is dropped,
    and with ``repair`` cut from the file; a bad line elsewhere is an error.

    With ``key`` (field names), every line must be a JSON object holding those fields (a line of
    valid JSON of another shape, such as ``{}`` or ``null``, is an error naming the file and the
    line), and records repeating the key of an earlier one are dropped (with ``repair``, the file
    is rewritten without them, atomically)."""
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
        except (json.JSONDecodeError, UnicodeDecodeError):
            if i == len(lines) - 1 and not tail:
                good_end -= len(line) + 1  # torn last line that happens to end in "\n"
                break
            raise fail("results", f"has an unreadable line {i + 1} (not the last one)",
                       str(path), "move the file away or rerun with --force (which moves the "
                       "old results aside).") from None
    if repair and good_end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
            fh.flush()
            os.fsync(fh.fileno())
    if key is None:
        return records
    seen: set = set()
    unique = []
    for i, r in enumerate(records):
        if not isinstance(r, dict) or any(k not in r for k in key):
            raise fail("results", f"line {i + 1} must be a result record (a JSON object with "
                       f"{', '.join(key)})", r,
                       f"{str(path)!r} was not written by this run: remove that line, or pass "
                       "--force to move the old results aside and start over.")
        k = tuple(json.dumps(r[f], sort_keys=True) for f in key)
        if k not in seen:
            seen.add(k)
            unique.append(r)
    if repair and len(unique) < len(records):
        atomic_write_text(path, "".join(_dumps(r) + "\n" for r in unique))
    return unique


class RunLock:
    """The one-writer lock of a run folder: an OS lock on ``OUT/.lock`` (``fcntl.flock``, or
    ``msvcrt.locking`` on Windows), held until :meth:`release` or the process ends.

    ``with RunLock(out): ...``. A second holder is refused with an :class:`InitlabError` naming
    the pid (and host) written in the lock file by the first."""

    def __init__(self, out: str | Path, name: str = "--out"):
        self.dir = Path(out)
        self.name = name
        self.path = self.dir / LOCK
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        if self._fd is not None:
            return self
        check_out_dir(self.dir, self.name)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise fail(self.name, f"must be a directory initlab can create ({exc.strerror})",
                       str(self.dir), "pass a path under a folder you can write to.") from None
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise fail(self.name, f"must be a directory initlab can write to ({exc.strerror}"
                           f" on {self.path.name})", str(self.dir),
                           "pass a folder you can write to.") from None
            try:
                _lock(fd)
            except OSError:
                try:
                    holder = os.read(fd, 200).decode("utf-8", "replace").strip()
                finally:
                    os.close(fd)
                who = holder or "another process"
                raise InitlabError(
                    f"`{self.name}` {str(self.dir)!r} is in use by another initlab run ({who}); "
                    "two runs on one folder would mix their results. Fix: wait for that process "
                    f"to finish (or stop it), or pass another {self.name}.") from None
            # The holder before us removes the file on release: make sure we locked the file
            # that is there now, not the one it just unlinked (else two could hold "the" lock).
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {stamp}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and release the lock (the folder is left as it was)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(fd)  # closing the descriptor releases the OS lock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):
        self.release()


def _lock(fd: int) -> None:
    """Take an exclusive, non-blocking OS lock on ``fd``; OSError when another holds it."""
    if sys.platform == "win32":  # no fcntl there
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files of interrupted atomic writes (``.NAME.*.tmp``, see
    :mod:`initlab.util.atomic`) in ``directory`` and its ``checkpoints/``. Only call it while
    holding the folder's :class:`RunLock`: then no write is in progress."""
    gone = []
    for d in (directory, directory / CHECKPOINTS):
        if d.is_dir():
            for p in d.glob(".*.tmp"):
                if p.is_file():
                    p.unlink()
                    gone.append(p)
    return gone


def move_aside(directory: Path, names) -> Path | None:
    """Move the entries ``names`` of ``directory`` that exist into a new
    ``directory/replaced-<UTC time>/``; return it (None when there was nothing to move)."""
    present = [directory / n for n in names if (directory / n).exists()]
    if not present:
        return None
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    dest = directory / f"{REPLACED}{stamp}"
    k = 1
    while dest.exists():
        k += 1
        dest = directory / f"{REPLACED}{stamp}-{k}"
    dest.mkdir()
    for p in present:
        shutil.move(str(p), str(dest / p.name))
    return dest


def next_free(out: str | Path) -> Path:
    """``out`` if it is free (missing or an empty directory), else the first free ``out-2``,
    ``out-3``, ... beside it."""
    base = Path(out)

    def free(p: Path) -> bool:
        return not p.exists() or (p.is_dir() and not any(p.iterdir()))

    if free(base):
        return base
    k = 2
    while not free(base.with_name(f"{base.name}-{k}")):
        k += 1
    return base.with_name(f"{base.name}-{k}")


class RunDir:
    """The output directory of one experiment (see the module docstring).

    ``with RunDir(out, config, key=...) as rd: records = rd.open(resume=..., force=...)`` takes
    the folder's lock, checks ``config.json`` against ``config`` (a JSON-able dict): a new or
    empty directory is started; the same experiment is continued with ``resume``; anything else
    raises an error saying what to pass. ``key`` names the fields that identify a record (for
    de-duplication and the shape check on resume). The lock is held until :meth:`close` (or the
    end of the ``with`` block).
    """

    def __init__(self, out: str | Path, config: dict, *, key: tuple[str, ...] | None = None):
        self.path = Path(out)
        self.config = json.loads(_dumps(config))  # normalized (tuples -> lists)
        self.key = key
        self.lock = RunLock(self.path)
        self.moved_to: Path | None = None  # where --force moved the old files

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
        """Take the lock and prepare the directory; return the records already there (empty
        unless resuming)."""
        check_out_dir(self.path)
        self.lock.acquire()
        try:
            return self._open(resume, force)
        except BaseException:
            self.lock.release()
            raise

    def _open(self, resume: bool, force: bool) -> list[dict]:
        remove_stale_temporaries(self.path)
        cfg_path = self.path / CONFIG
        existing, torn = None, None
        if cfg_path.is_file():
            try:
                existing = json.loads(cfg_path.read_text())
            except (ValueError, UnicodeDecodeError) as exc:
                torn = exc
        has_results = self.results_path.is_file() and self.results_path.stat().st_size > 0
        if force and (existing is not None or torn is not None or has_results
                      or (self.path / CHECKPOINTS).is_dir()):
            self.moved_to = move_aside(self.path, (RESULTS, CONFIG, "report.html", CHECKPOINTS))
        elif torn is not None:
            raise InitlabError(
                f"`--out` {str(self.path)!r} holds a torn config.json (not valid JSON: {torn}), "
                "so the results beside it cannot be matched to an experiment. Fix: restore "
                f"{cfg_path} from a copy, or pass --force to move the old files aside into "
                f"{self.path / (REPLACED + '<time>')} (nothing is deleted) and start over.")
        elif existing is not None or has_results:
            same = existing == self.config
            if resume and same:
                return read_jsonl(self.results_path, repair=True, key=self.key)
            if resume:
                raise InitlabError(
                    f"`--resume` needs the same experiment, but {self.path} holds a different "
                    f"one; got {_diff(existing, self.config)}. Fix: rerun with the options in "
                    f"{cfg_path}, choose another --out, or pass --force to move the old results "
                    "aside and start over.")
            what = "this experiment" if same else "a different experiment"
            raise InitlabError(
                f"`--out` must be a new or empty directory (or one this experiment can "
                f"resume); got {str(self.path)!r}, which holds results of {what}. Fix: pass "
                "--resume to continue it" + ("" if same else " (same options only)")
                + ", --force to move the old results aside and start over, or another --out.")
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cfg_path, json.dumps(self.config, indent=2, sort_keys=True) + "\n")
        return []

    def close(self) -> None:
        """Release the folder's lock."""
        self.lock.release()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def append(self, record: dict) -> None:
        """Append one record as a whole line, flushed and fsynced."""
        line = (_dumps(record) + "\n").encode("utf-8")
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.results_path, "ab") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> list[dict]:
        return read_jsonl(self.results_path, key=self.key)

    def rewrite(self, records: list[dict]) -> None:
        """Replace the results with ``records``, atomically."""
        atomic_write_text(self.results_path, "".join(_dumps(r) + "\n" for r in records))


def _diff(old, new) -> str:
    if not isinstance(old, dict):
        return "no config.json beside the results" if old is None else "an unreadable config.json"
    keys = sorted(set(old) | set(new))
    parts = [f"{k}: {old.get(k)!r} there vs {new.get(k)!r} now" for k in keys
             if old.get(k) != new.get(k)]
    return "; ".join(parts[:6]) or "no difference"
