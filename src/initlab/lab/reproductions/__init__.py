"""Reproductions of classic initialization experiments, run by ``initlab reproduce NAME``.

Each case is a module with ``NAME``, ``TITLE``, ``PAPER``, ``PUBLISHED`` (the paper's numbers),
``DATA_NOTE`` (how our data differs from the paper's), a frozen ``Config`` whose defaults are a
reduced run, ``config(full=False) -> Config`` (``full=True``: the published length),
``run(cfg, *, data_dir, quiet, checkpoint) -> dict`` and ``report(results) -> HtmlReport``.

:func:`reproduce` runs a case into an output directory: ``results.json`` and ``report.html``
(both written atomically) and ``checkpoint.json`` (finished arms, for ``--resume``).

>>> from initlab.lab.reproductions import names, reproduce
>>> names()                                              # doctest: +SKIP
['depth-sweep', 'glorot-bengio', 'he-depth', 'nielsen-ch3', 'ng-circles', 'saxe-linear', 'symmetry']
>>> res = reproduce("ng-circles", out="runs/ng", quiet=True)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import inspect
import platform
import time
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

from ...core.validation import check_scalar, fail
from ._common import REPORT, Checkpoint, check_workers, jsonable, threads_per_arm, write_results

# case name -> module (imported on use)
CASES: dict[str, str] = {
    "nielsen-ch3": "initlab.lab.reproductions.nielsen_ch3",
    "ng-circles": "initlab.lab.reproductions.ng_circles",
    "symmetry": "initlab.lab.reproductions.symmetry",
    "glorot-bengio": "initlab.lab.reproductions.glorot_bengio",
    "he-depth": "initlab.lab.reproductions.he_depth",
    "saxe-linear": "initlab.lab.reproductions.saxe_linear",
    "depth-sweep": "initlab.lab.reproductions.depth_sweep",
    "mup-transfer": "initlab.lab.reproductions.mup_transfer",
    "isometry": "initlab.lab.reproductions.isometry",
}


def names() -> list[str]:
    """The reproduction names, sorted."""
    return sorted(CASES)


def get_case(name: str) -> ModuleType:
    """The module of case ``name``; an unknown name is an error that lists the valid ones."""
    if name not in CASES:
        listed = ", ".join(names())
        raise fail("name", f"must be one of the reproductions: {listed}", name,
                   "run `initlab reproduce --list` or pick one of those.")
    return importlib.import_module(CASES[name])


def machine(workers: int = 1) -> dict:
    """Where a result was measured: platform, Python, CPU model and count, torch threads per arm
    (with ``workers`` > 1 each worker process gets this process's threads // ``workers``)."""
    import os

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")),
                       cpu)
    except OSError:
        pass
    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpu": cpu, "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": threads_per_arm(workers), "workers": workers}


def reproduce(name: str, *, full: bool = False, out: str | Path | None = None,
              data_dir: str | None = None, quiet: bool = False, resume: bool = False,
              force: bool = False, overrides: dict[str, Any] | None = None,
              workers: int = 1, threads: int | None = None) -> dict:
    """Run reproduction ``name`` and return its results.

    ``full``: the published-length config (default: the reduced one). ``overrides``: config
    fields to replace (e.g. ``{"epochs": 2}``). With ``out``, writes ``out/results.json`` and
    ``out/report.html`` atomically and keeps finished arms in ``out/checkpoint.json``; an ``out``
    holding another experiment is refused unless ``force``; one holding this experiment is
    continued with ``resume`` (refused otherwise). ``workers``: processes to train independent
    arms in, for the cases whose ``run`` takes it (mup-transfer); the results do not depend on it,
    so it is not part of the experiment's identity and a run may resume with another value.
    ``threads``: torch CPU threads per arm (each worker's, with ``workers``), set for the call
    and restored after it; None (default) keeps this process's setting (``workers`` then get its
    threads // ``workers``). Not part of the identity either: an arm's numbers are bit for bit
    the same at the same threads per arm, and differ in the last bits at another count.
    """
    from ..results import RunLock, check_out_dir

    case = get_case(name)
    workers = check_workers(workers)
    if threads is not None:
        threads = check_scalar(threads, "--threads", min_val=1, integer=True,
                               why=" (torch CPU threads per arm)",
                               fix="pass --threads 1 (or up to the number of cores // --workers).")
    if workers != 1 and "workers" not in inspect.signature(case.run).parameters:
        raise fail("--workers", f"is for reproductions whose arms are independent; {name} "
                   "chooses each arm from the ones before it (an lr search), so it runs them "
                   "in order", workers, "leave --workers out for this case (mup-transfer takes "
                   "it).")
    overrides = dict(overrides) if overrides else None
    if out is not None:
        check_out_dir(out)
    cfg = case.config(full)
    if overrides:
        bad = sorted(set(overrides) - set(cfg.__dataclass_fields__))
        if bad:
            raise fail("overrides", f"must name fields of {name}'s Config "
                       f"({', '.join(cfg.__dataclass_fields__)})", bad, "drop or rename them.")
        cfg = replace(cfg, **overrides)
    config = identity_config(case, cfg)
    identity = {"case": name, "config": config,
                "data_dir": None if data_dir is None else str(data_dir)}
    lock = RunLock(out) if out is not None else None
    if lock is not None:
        lock.acquire()  # one writer per folder, held until the report is written
    prev_threads = None
    try:
        if threads is not None:
            import torch

            prev_threads = torch.get_num_threads()
            # run_arms gives each of the workers this process's threads // workers
            torch.set_num_threads(threads * workers)
        return _reproduce(case, name, cfg, identity, out, full, data_dir, quiet, resume, force,
                          overrides, workers)
    finally:
        if prev_threads is not None:
            torch.set_num_threads(prev_threads)
        if lock is not None:
            lock.release()


def identity_config(case, cfg) -> dict:
    """``cfg`` as a run's identity records it: the fields a case added after runs were
    recorded (its ``IDENTITY_DEFAULTS``) are left out at their old behaviour's value, so those
    runs' folders resume."""
    config = jsonable(cfg)
    for field_name, value in getattr(case, "IDENTITY_DEFAULTS", {}).items():
        if config.get(field_name) == jsonable(value):
            config.pop(field_name)
    return config


def _reproduce(case, name, cfg, identity, out, full, data_dir, quiet, resume, force,
               overrides, workers=1) -> dict:
    ck = Checkpoint(out, identity, resume=resume, force=force,
                    additive=tuple(getattr(case, "ADDITIVE_FIELDS", ())))
    identity = ck.identity    # the held record when the same data was given by another path
    if ck.moved_to is not None and not quiet:
        import sys

        print(f"initlab: moved the previous files in {out} to {ck.moved_to}", file=sys.stderr)
    t0 = time.perf_counter()
    kw = {"workers": workers} if workers != 1 else {}
    results = case.run(cfg, data_dir=data_dir, quiet=quiet, checkpoint=ck, **kw)
    results = jsonable(results)
    results["machine"] = machine(workers)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    if out is not None:
        write_results(out, identity, results)
        rep = case.report(results)
        m = results["machine"]
        in_workers = (f", in {m['workers']} worker processes" if m.get("workers", 1) > 1
                      else "")
        rep.paragraph(f"Run time {results['seconds']} s (this invocation) on {m['cpu']} x "
                      f"{m['cpu_count']}, {m['platform']}, torch {m['torch']} with "
                      f"{m['torch_threads']} thread(s) per arm{in_workers}. "
                      f"Config: {'full (published length)' if full else 'reduced'}; "
                      f"{identity['config']}.")
        rep.lead(list(results.get("headline", [])))
        rep.command(_command(name, full, data_dir, overrides, out),
                    note="Reruns this reproduction into a new folder (the one above is taken).")
        rep.save(Path(out) / REPORT)
    return results


def _command(name, full, data_dir, overrides, out) -> str:
    """The command that reruns this reproduction into a new folder."""
    from ..compare_report import rerun_out

    new = rerun_out(out)
    if overrides:
        args = [repr(name), f"full={full!r}", f"out={new!r}", f"overrides={overrides!r}"]
        if data_dir:
            args.insert(2, f"data_dir={str(data_dir)!r}")
        return ("python -c \"from initlab.lab.reproductions import reproduce; "
                f"reproduce({', '.join(args)})\"")
    parts = ["initlab reproduce", name] + (["--full"] if full else [])
    if data_dir:
        parts.append(f"--data-dir {data_dir}")
    parts.append(f"--out {new}")
    return " ".join(parts)


__all__ = ["CASES", "names", "get_case", "reproduce"]
