"""What every reproduction shares: the output directory and its checkpoint, progress bars,
seeded initialization of small torch MLPs, and a few plotting helpers.

A reproduction is made of *arms* (one training run, one measurement). Each finished arm is saved
in ``OUT/checkpoint.json`` (atomically) under a key, so ``--resume`` skips what is done and a run
interrupted at any point loses at most the arm in progress.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...core.validation import check_scalar, fail
from ...report.html import pyplot as plt  # noqa: F401 (the reproductions' plotting entry)
from ...util.atomic import atomic_write_text

CHECKPOINT = "checkpoint.json"
RESULTS = "results.json"
REPORT = "report.html"


def jsonable(obj: Any) -> Any:
    """Plain JSON types from dataclasses, tuples, NumPy scalars/arrays (NaN/inf become None)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


class Checkpoint:
    """Finished arms of one reproduction, keyed by name, saved after every arm.

    ``identity`` (case name + config + data source) is stored with the arms; an output directory
    holding a different identity is refused unless ``force`` (which starts afresh), and one
    holding the same identity is reused only with ``resume``.
    """

    def __init__(self, out: str | Path | None, identity: dict, *, resume: bool = False,
                 force: bool = False, additive: tuple[str, ...] = ()):
        """``additive``: config fields that only add arms (a case's ``ADDITIVE_FIELDS``): a
        held run recorded before such a field existed, and otherwise the same, is resumed
        with its arms kept and its identity upgraded to this one."""
        from ..results import move_aside, remove_stale_temporaries

        self.identity = jsonable(identity)
        self.arms: dict[str, Any] = {}
        self.moved_to: Path | None = None
        self.path = Path(out) / CHECKPOINT if out is not None else None
        if self.path is None or out is None:  # both or neither
            return
        out = Path(out)
        remove_stale_temporaries(out)
        if force:  # the old files are moved aside, never deleted
            from ..results import CHECKPOINTS

            self.moved_to = move_aside(out, (CHECKPOINT, RESULTS, REPORT, CHECKPOINTS))
            return
        held = _held_identity(out)
        if held is None:
            return
        # the held run, give or take fields that only add arms (its arms stay valid) and the
        # same data by another path: resumed, with the held data record kept
        base = _without_new_fields(held, self.identity, additive) or self.identity
        if held != self.identity and (base == held or _same_but_data_path(held, base)):
            if "data_dir" in held:
                self.identity = {**self.identity, "data_dir": held["data_dir"]}
            held = self.identity
        if held != self.identity:
            differs = sorted(k for k in set(held) | set(self.identity)
                             if held.get(k) != self.identity.get(k))
            what = "another case, config or data"
            hc, nc = held.get("config"), self.identity.get("config")
            if differs == ["config"] and isinstance(hc, dict) and isinstance(nc, dict):
                fields = sorted(k for k in set(hc) | set(nc) if hc.get(k) != nc.get(k))
                what = "another config: " + "; ".join(
                    f"{k} {_held_value(hc, k)} there, {_held_value(nc, k)} here"
                    for k in fields[:5]) + ("; ..." if len(fields) > 5 else "")
            if differs == ["data_dir"]:
                what = (f"its data_dir {held.get('data_dir')!r} is not this "
                        f"{self.identity.get('data_dir')!r}: other bytes, or not found from "
                        "here to compare")
            raise fail("--out", f"holds a different experiment ({what})",
                       str(out), "choose another --out, or pass --force to move its files aside "
                       "(into --out/replaced-<time>/) and start over"
                       + (", or run from the folder where the held data_dir resolves"
                          if differs == ["data_dir"] else "") + ".")
        if not resume:
            raise fail("--out", "already holds this experiment", str(out),
                       "pass --resume to continue (finished arms are kept) or --force to start "
                       "again (the old files are moved aside).")
        if self.path.exists():
            self.arms = json.loads(self.path.read_text())["arms"]

    def run(self, key: str, fn: Callable[[], Any]) -> Any:
        """The saved result of arm ``key``, else ``fn()`` (saved before returning; the arm's
        :meth:`arm_file`, if any, is removed once the result is saved)."""
        if key in self.arms:
            return self.arms[key]
        value = jsonable(fn())
        self.arms[key] = value
        if self.path is not None:
            atomic_write_text(self.path, json.dumps(
                {"identity": self.identity, "arms": self.arms}, indent=1))
            part = self.arm_file(key)
            if part is not None and part.exists():
                part.unlink()
        return value

    def arm_file(self, key: str) -> Path | None:
        """Where arm ``key`` keeps its state while it runs (``OUT/checkpoints/<key>.pt``, for
        ``train(..., checkpoint=...)``'s per-epoch resume): an arm interrupted mid-way continues
        from its last finished epoch. None without an output directory."""
        part = self._part_path(key)
        if part is not None:
            part.parent.mkdir(parents=True, exist_ok=True)
        return part

    def discard_parts(self, keys: Iterable[str]) -> list[Path]:
        """Remove the :meth:`arm_file` of each of ``keys`` that will never run (its cell is
        not trained, :func:`skipped_deeper`): an earlier run interrupted mid-arm left it, and
        nothing would resume or remove it. Returns the files removed."""
        removed = []
        for key in keys:
            part = self._part_path(key)
            if key not in self.arms and part is not None and part.exists():
                part.unlink()
                removed.append(part)
        return removed

    def _part_path(self, key: str) -> Path | None:
        if self.path is None:
            return None
        from ..results import CHECKPOINTS

        safe = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in key)
        return self.path.parent / CHECKPOINTS / f"{safe}.pt"


# ----------------------------------------------------------------------------------- workers
#: what a worker process holds for its whole life: the dataset, loaded once by _worker_init
_WORKER: dict[str, Any] = {}


def _worker_init(threads: int, data_spec: dict) -> None:
    import torch

    torch.set_num_threads(threads)
    _WORKER["data"] = load_data(**data_spec)


def _returned(value: Any) -> Any:
    """``value`` (the thunk :meth:`Checkpoint.run` saves for a worker's finished arm)."""
    return value


def _worker_call(fn: Callable[..., Any], args: tuple) -> Any:
    return fn(*args, data=_WORKER["data"])


def check_workers(workers: Any) -> int:
    """``workers`` as a positive int, else a clear error naming ``--workers`` (the library's one
    scalar check: a TypeError for a non-integer, a ValueError below 1)."""
    return check_scalar(workers, "--workers", min_val=1, integer=True,
                        why=" (a number of processes)",
                        fix="pass e.g. --workers 2 (one per core), or leave it out to run the "
                            "arms in this process.")


def threads_per_arm(workers: int) -> int:
    """The torch threads each arm runs at when ``workers`` processes share this process's
    threads (:func:`run_arms`; the arm that runs alone here gets the same)."""
    import torch

    return max(1, torch.get_num_threads() // workers)


def run_arms(ck: Checkpoint, tasks: Sequence[tuple[str, tuple]], fn: Callable[..., Any], data,
             *, data_spec: dict, workers: int = 1, desc: str, quiet: bool) -> list[Any]:
    """Run independent arms and return their results in the order of ``tasks``.

    ``tasks``: ``(key, args)`` pairs; arm ``key`` is ``fn(*args, data=data)``, saved in ``ck``
    (finished arms come from it). ``fn`` must be a module-level function and its result must not
    depend on the order arms run in (each arm seeds its own generators). With ``workers`` > 1 the
    unfinished arms run in that many processes (spawned; each loads the dataset once from
    ``data_spec``, the keyword arguments of :func:`load_data`, and uses ``torch`` threads = this
    process's threads // ``workers``, at least 1). The main process saves each result as it
    arrives, so an interrupted run keeps every arm that finished, in any process. An arm's result
    is the same in a worker as in this process when both use the same number of torch threads
    (e.g. ``OMP_NUM_THREADS=1``): bit for bit, as tested."""
    workers = check_workers(workers)
    pending: dict[str, tuple] = {}
    for key, args in tasks:
        if key not in ck.arms:
            pending.setdefault(key, args)
    import torch

    threads = threads_per_arm(workers)
    if workers == 1 or len(pending) <= 1:
        # one arm left runs here, at the threads a worker would have (its numbers do not
        # depend on whether it ran alone)
        prev = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return [ck.run(key, functools.partial(fn, *args, data=data))
                    for key, args in progress(tasks, desc=desc, quiet=quiet)]
        finally:
            torch.set_num_threads(prev)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=min(workers, len(pending)),
                               mp_context=mp.get_context("spawn"), initializer=_worker_init,
                               initargs=(threads, dict(data_spec)))
    try:
        futures = {pool.submit(_worker_call, fn, args): key for key, args in pending.items()}
        for fut in progress(as_completed(futures), desc=f"{desc} ({workers} workers)",
                            quiet=quiet, total=len(futures)):
            result = fut.result()            # a worker's exception is raised here
            ck.run(futures[fut], functools.partial(_returned, result))
    except BaseException:
        # an error or Ctrl-C: the finished arms are saved; drop the ones not started and do
        # not wait for the ones running (their workers exit after them)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [ck.arms[key] for key, _ in tasks]


def _content_digest(path: str | Path) -> str | None:
    """sha256 of a data file, or of a directory's files (names and bytes, sorted); None when
    ``path`` does not exist."""
    import hashlib

    path = Path(path)
    h = hashlib.sha256()
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file())
    else:
        return None
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _held_value(config: dict, key: str) -> str:
    """A config field's value as an identity-mismatch message shows it."""
    return repr(config[key]) if key in config else "(not recorded: its default)"


def _without_new_fields(held: dict, identity: dict, additive: tuple[str, ...]) -> dict | None:
    """``identity`` without the config fields of ``additive`` that ``held`` does not record
    (fields that only add arms: every held arm is one this config trains the same way); None
    when there are none."""
    hc, nc = held.get("config"), identity.get("config")
    if not (isinstance(hc, dict) and isinstance(nc, dict)):
        return None
    new = [k for k in additive if k in nc and k not in hc]
    return {**identity, "config": {k: v for k, v in nc.items() if k not in new}} if new \
        else None


def _same_but_data_path(held: dict, identity: dict) -> bool:
    """Whether two identities differ only in ``data_dir`` and both paths hold the same bytes
    (e.g. a run started with a relative --data-dir, resumed from another folder or by an
    absolute path). A held path that no longer exists from here cannot be checked: False."""
    a, b = held.get("data_dir"), identity.get("data_dir")
    if a is None or b is None or a == b:
        return False
    if {k: v for k, v in held.items() if k != "data_dir"} != {
            k: v for k, v in identity.items() if k != "data_dir"}:
        return False
    da = _content_digest(a)
    return da is not None and da == _content_digest(b)


def _held_identity(out: Path) -> dict | None:
    for name in (CHECKPOINT, RESULTS):
        p = out / name
        if p.exists():
            try:
                held = json.loads(p.read_text())
                return held["identity"]
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
                raise fail("--out", f"holds a torn or foreign {name} (not an initlab "
                           "reproduction's JSON)", str(p), "restore it, or pass --force to move "
                           "the old files aside and start over (nothing is deleted).") from exc
    return None


def write_results(out: str | Path, identity: dict, results: dict) -> Path:
    """Write ``OUT/results.json`` atomically: ``{"identity": ..., "results": ...}``."""
    path = Path(out) / RESULTS
    atomic_write_text(path, json.dumps({"identity": jsonable(identity),
                                        "results": jsonable(results)}, indent=1))
    return path


def progress(iterable: Iterable, *, desc: str, quiet: bool, total: int | None = None):
    """Progress over ``iterable`` (arms done, ETA): a bar on a terminal, a line a minute in a
    pipe or log, none when ``quiet`` (:func:`initlab.lab.progress.progress`)."""
    from ..progress import progress as _progress

    return _progress(iterable, desc=desc, quiet=quiet, total=total, unit="arm")


# ----------------------------------------------------------------------------------- models
def mlp(sizes: Sequence[int], activation: str, *, out_activation: str | None = None,
        dtype=None):
    """``nn.Sequential`` of Linear layers ``sizes[0] -> ... -> sizes[-1]`` with ``activation``
    between them (none after the last unless ``out_activation``)."""
    import torch
    from torch import nn

    from ..models import activation_module
    layers: list = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        last = i == len(sizes) - 2
        act = out_activation if last else activation
        if act is not None:
            layers.append(activation_module(act))
    return nn.Sequential(*layers).to(dtype or torch.float32)


def linear_layers(model) -> list:
    from torch import nn

    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def initialize(model, weight, bias="zeros", *, seed: int, plan: str | None = None) -> str:
    """Give every ``nn.Linear`` of ``model`` ``weight`` and ``bias`` (catalog names or
    Initializers) through a model-level plan: the built-in plan named ``plan`` when given
    (``initlab.apply(model, "he", seed=seed)``; it must mean the same ``weight``/``bias`` for
    Linear layers), else ``Plan([Rule(nn.Linear, weight=..., bias=...)])``. Returns the path
    taken (``"plan <name>"`` or ``"Plan(Rule(Linear))"``)."""
    from torch import nn

    from ...modelinit import Plan, Rule, apply

    if plan is not None:
        apply(model, plan, seed=seed)
        return f"plan {plan}"
    apply(model, Plan([Rule(nn.Linear, weight=weight, bias=bias)]), seed=seed)
    return "Plan(Rule(Linear))"


# ----------------------------------------------------------------------------------- data
def load_data(name: str, *, seed: int, data_dir: str | None, n_train: int | None = None,
              n_test: int | None = None, standardize: bool = True):
    """``initlab.lab.data.load_dataset`` with no validation split; returns the Dataset."""
    from ..data import load_dataset

    return load_dataset(name, seed=seed, data_dir=data_dir, n_train=n_train, n_val=0,
                        n_test=n_test, standardize=standardize)


# ----------------------------------------------------------------------------------- grids
def neighbour_lrs(grid: Sequence[float], best: float, k: int = 3) -> tuple[float, ...]:
    """The ``k`` learning rates of ``grid`` (sorted) centred on ``best``, shifted to stay inside
    the grid: the window a trimmed search starts from at the next depth once ``best`` won at a
    smaller one (:func:`search_lrs` widens it).

    >>> neighbour_lrs((1e-4, 3e-4, 1e-3, 3e-3, 1e-2), 1e-2)
    (0.001, 0.003, 0.01)
    """
    grid = tuple(sorted(grid))
    if best not in grid:
        raise fail("best", "must be one of the grid's learning rates", best,
                   f"pick one of {list(grid)}.")
    k = min(int(k), len(grid))
    lo = min(max(grid.index(best) - (k - 1) // 2, 0), len(grid) - k)
    return grid[lo:lo + k]


#: A run *learned* when its validation accuracy closed at least this share of the gap from
#: chance to 1 (10 classes: 19%). Below it a run counts as failed, like a diverged one: near
#: chance the scores are training noise (he at tanh depth 200 scored 10-15% at every lr), and
#: a search that followed them drifted to the largest lrs.
LEARNED_GAP = 0.1


def learned(acc: float | None, chance: float | None) -> bool:
    """Whether a run with validation accuracy ``acc`` learned (:data:`LEARNED_GAP`); a diverged
    run (None) did not; with ``chance`` None every finished run counts."""
    if acc is None:
        return False
    return chance is None or acc >= chance + LEARNED_GAP * (1.0 - chance)


def _score(v: float | None, chance: float | None = None) -> float:
    """A validation score for comparing arms: a run that did not learn (:func:`learned`: a
    diverged run, or one near ``chance``) counts as -1."""
    return v if v is not None and learned(v, chance) else -1.0


def choose_by_validation(scores: dict[float, float | None], chance: float | None = None) -> float:
    """The learning rate of highest validation score (a run that did not learn,
    :func:`learned`, counts as -1); ties go to the smaller learning rate (as
    :func:`initlab.lab.compare.choose_lr`), so when no lr learned the smallest tried is chosen."""
    if not scores:
        raise fail("scores", "must hold at least one learning rate", scores,
                   "train at least one arm before choosing.")
    return max(scores, key=lambda lr: (_score(scores[lr], chance), -lr))


def widen_lr(grid: Sequence[float], scores: dict[float, float | None],
             chance: float | None = None) -> float | None:
    """The next learning rate a trimmed search must try, or None when its choice is bracketed.

    ``scores``: validation score by lr tried so far (a contiguous run of ``grid``). When the
    chosen lr (:func:`choose_by_validation`) is the lowest (highest) tried and beats the lr
    tried next to it, the score still rises towards that edge, so the grid's next lr in that
    direction is returned. When no lr tried learned (each diverged or stayed near ``chance``,
    :func:`learned`), the next lr *below* those tried is returned: at depth a failed run is
    most often a too-large step, and near-chance scores say nothing about direction. None when
    the choice has a tried lr on both sides, ties its tried neighbour (a plateau), is the
    grid's end, or is the only lr tried (no neighbour to compare with).

    >>> widen_lr((1e-4, 3e-4, 1e-3, 3e-3, 1e-2), {1e-3: 0.57, 3e-3: 0.31, 1e-2: 0.30})
    0.0003
    >>> widen_lr((1e-4, 3e-4, 1e-3, 3e-3, 1e-2), {1e-3: 0.11, 3e-3: 0.15, 1e-2: 0.10}, 0.1)
    0.0003
    """
    grid = tuple(sorted(grid))
    off = sorted(set(scores) - set(grid))
    if off:
        raise fail("scores", "must be keyed by the grid's learning rates", off,
                   f"train only lrs of {list(grid)}.")
    tried = sorted(scores)
    if len(tried) > 1 and not any(learned(v, chance) for v in scores.values()):
        i = grid.index(tried[0])
        return grid[i - 1] if i > 0 else None
    best = choose_by_validation(scores, chance)
    i = grid.index(best)
    if len(tried) > 1 and best == tried[0] and i > 0:
        if _score(scores[best], chance) > _score(scores[tried[1]], chance):
            return grid[i - 1]
    if len(tried) > 1 and best == tried[-1] and i < len(grid) - 1:
        if _score(scores[best], chance) > _score(scores[tried[-2]], chance):
            return grid[i + 1]
    return None


def fails_above(scores: dict[float, float | None], chance: float | None = None) -> bool:
    """Whether every lr larger than those in ``scores`` is known to fail: the largest tried did
    not learn (:func:`learned`) and a smaller one did. A larger step than one that already fails
    fails too; in the isometry and depth-sweep full configs (69 cells, 2026-12) no larger lr
    learned where a smaller one learned and one between them failed. At depth 1000 that spares
    each such lr half an hour.

    >>> fails_above({1e-4: 0.90, 3e-4: 0.15}, 0.1), fails_above({1e-4: 0.12, 3e-4: 0.15}, 0.1)
    (True, False)
    """
    if not scores:
        return False
    top = max(scores)
    return not learned(scores[top], chance) and any(
        learned(v, chance) for lr, v in scores.items() if lr < top)


def search_lrs(grid: Sequence[float], train: Callable[[float], dict], *,
               around: float | None = None, k: int = 3,
               chance: float | None = None) -> tuple[dict[float, dict], float]:
    """Choose a learning rate of ``grid`` on validation: the one lr search of every
    reproduction that trims its grid.

    ``train(lr)`` runs one arm and returns its record (with ``"val_acc"``). Without ``around``
    every lr of ``grid`` is tried; with it, the ``k`` around it (:func:`neighbour_lrs`), widened
    one lr at a time while the choice sits at an edge of those tried, or downwards while no lr
    learned (:func:`widen_lr`; ``chance``, the data's guessing accuracy, sets what "learned"
    means, :func:`learned`), so the optimum found is bracketed or at the grid's end. The lrs
    are tried from the smallest up, and once one fails to learn above one that learned, the
    larger ones are not tried (:func:`fails_above`). Returns (records by lr, sorted; the chosen
    lr).
    """
    lrs = tuple(sorted(grid)) if around is None else neighbour_lrs(grid, around, k)
    arms: dict[float, dict] = {}

    def scores() -> dict[float, float | None]:
        return {r: a["val_acc"] for r, a in arms.items()}

    for lr in lrs:
        if fails_above(scores(), chance):
            break
        arms[lr] = train(lr)
    while (wider := widen_lr(grid, scores(), chance)) is not None:
        arms[wider] = train(wider)
    arms = dict(sorted(arms.items()))
    return arms, choose_by_validation(scores(), chance)


def search_failed(search: dict[float, dict], grid: Sequence[float],
                  chance: float | None = None) -> bool:
    """Whether a finished :func:`search_lrs` found no lr that learned (:func:`learned`) down to
    the grid's smallest: the cell is untrainable at every lr of ``grid``.

    The reproductions that search per depth then skip the same init at every larger depth
    (:func:`skipped_deeper`): trainability only falls with depth in a plain net (Schoenholz et
    al. 2017: trainable while depth < ~6 xi_c), so those cells' answer is known and an hour of
    CPU each is saved at depth 1000.

    >>> search_failed({1e-4: {"val_acc": 0.11}, 3e-4: {"val_acc": 0.10}}, (1e-4, 3e-4), 0.1)
    True
    >>> search_failed({3e-4: {"val_acc": 0.11}}, (1e-4, 3e-4), 0.1)  # 1e-4 not tried
    False
    """
    return (bool(search) and min(grid) in search
            and not any(learned(a["val_acc"], chance) for a in search.values()))


def skipped_deeper(depth: int) -> str:
    """The note a cell carries when it is not trained because the same init failed
    (:func:`search_failed`) at the smaller ``depth``."""
    return (f"not trained: no lr learned at depth {depth}, and a plain net does not become "
            "trainable deeper")


def trimmed_lrs_planned(grid: Sequence[float], k: int) -> int:
    """The arms a run's plan counts for one trimmed search (:func:`search_lrs` with
    ``around``): the window of ``k`` plus one possible widening step (none when ``k`` is 1), at
    most the whole grid. An estimate: a choice that moves two or more lrs between depths, or a
    window where no lr learns (the search then walks down to the grid's bottom), widens
    further; a bracketed one not at all."""
    k = min(int(k), len(grid))
    return min(k + 1, len(grid)) if k > 1 else k


class OutOfTime(Exception):
    """Raised when a run's ``budget_hours`` is spent (the reproduction catches it, lists
    what remains and saves; ``--resume`` continues)."""


class Budget:
    """The time budget of one invocation: ``check()`` raises :class:`OutOfTime` once
    ``hours`` have passed since construction (never with ``hours=None``)."""

    def __init__(self, hours: float | None, clock=time.monotonic):
        self.clock = clock
        self.deadline = None if hours is None else clock() + 3600.0 * float(hours)
        self.spent = False

    def check(self) -> None:
        if self.spent or (self.deadline is not None and self.clock() >= self.deadline):
            self.spent = True
            raise OutOfTime


class Scheduler:
    """Runs arms through ``ck`` under ``budget``: a finished arm comes from the checkpoint; a
    new one raises :class:`OutOfTime` once the budget is spent, else runs as ``fn(part)``
    (``part``: its :meth:`Checkpoint.arm_file`, for ``train``'s per-epoch resume) and advances
    the progress ``bar`` (:func:`initlab.lab.progress.progress_bar`)."""

    def __init__(self, ck: Checkpoint, budget: Budget, bar, name: str):
        self.ck, self.budget, self.bar, self.name = ck, budget, bar, name

    def run(self, key: str, fn):
        if key in self.ck.arms:
            self.bar.update(1)
            return self.ck.arms[key]
        self.budget.check()
        self.bar.set_description(f"{self.name}: {key}")
        value = self.ck.run(key, lambda: fn(self.ck.arm_file(key)))
        self.bar.update(1)
        return value

    def skip(self, keys: Iterable[str], planned: int) -> None:
        """A cell that is not trained (:func:`skipped_deeper`): its ``planned`` arms leave the
        progress bar's total, so a finished run ends at 100%, and the epoch files ``keys``
        (every arm it could have run) left by an interrupted earlier run are removed."""
        self.ck.discard_parts(keys)
        total = getattr(self.bar, "total", None)
        if total is not None:  # a tqdm bar (the silent stand-in has no total)
            self.bar.total = max(self.bar.n, total - planned)
            self.bar.refresh()


# ----------------------------------------------------------------------------------- plots
def fmt_pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"
