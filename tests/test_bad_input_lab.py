"""Bad input to the lab (``compare``, ``demo``, ``reproduce``, run folders): each case asserts
the exception type, that the message names the parameter or file, and that the target (the
output folder, or the file passed) is byte-for-byte unchanged; in the CLI, a one-line error and
exit code 2, never a traceback. Plus two runs started on one folder at the same time."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import initlab.cli
from initlab.core.validation import InitlabError, InitlabTypeError
from initlab.lab.compare import CompareConfig, run_compare
from initlab.lab.data import load_mnist_npz
from initlab.lab.reproductions import reproduce
from initlab.lab.results import RunDir, RunLock, read_jsonl

TINY = dict(data="digits", n_train=120, depth=2, width=8, activation="tanh",
            inits=("glorot", "he"), epochs=1, seeds=1, batch_size=40)  # = ARGS (CLI defaults)
ARGS = ["compare", "--data", "digits", "--n-train", "120", "--depth", "2", "--width", "8",
        "--inits", "glorot,he", "--epochs", "1", "--seeds", "1", "--batch-size", "40", "--quiet"]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes); a folder that does not exist is {}."""
    if not root.exists():
        return {}
    if root.is_file():
        return {".": root.read_bytes()}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


# ---------------------------------------------------------------- fixtures for the targets
def _finished(tmp: Path) -> Path:
    """A folder holding a finished tiny comparison."""
    out = tmp / "done"
    run_compare(CompareConfig(**TINY), out, quiet=True)
    return out


def _last_line(text: str):
    def make(tmp: Path) -> Path:
        out = _finished(tmp)
        with open(out / "results.jsonl", "a") as fh:
            fh.write(text + "\n")
        return out
    return make


def _torn_config(tmp: Path) -> Path:
    out = _finished(tmp)
    cfg = (out / "config.json").read_text()
    (out / "config.json").write_text(cfg[: len(cfg) // 2])
    return out


def _file(tmp: Path) -> Path:
    p = tmp / "afile"
    p.write_text("not a folder\n")
    return p


def _npz_pickled(tmp: Path) -> Path:
    p = tmp / "pickled.npz"
    p.write_bytes(pickle.dumps({"images": [1, 2, 3]}))
    return p


def _npz_truncated(tmp: Path) -> Path:
    p = tmp / "cut.npz"
    np.savez(p, images=np.zeros((10, 28, 28), np.uint8), labels=np.zeros(10, np.uint8))
    p.write_bytes(p.read_bytes()[:300])
    return p


def _npz_object(tmp: Path) -> Path:
    p = tmp / "obj.npz"
    np.savez(p, images=np.array([{"a": 1}] * 10, dtype=object), labels=np.zeros(10, np.uint8))
    return p


def _npy_renamed(tmp: Path) -> Path:
    p = tmp / "renamed.npz"
    with open(p, "wb") as fh:
        np.save(fh, np.zeros((10, 28, 28), np.uint8))
    return p


def _npz_strings(tmp: Path) -> Path:
    p = tmp / "str.npz"
    np.savez(p, images=np.array(["x"] * 10), labels=np.zeros(10, np.uint8))
    return p


def _locked(tmp: Path) -> Path:
    out = tmp / "busy"
    lock = RunLock(out).acquire()
    _locked.held = lock  # kept alive (held) for the case; released by the test
    return out


# (id, target builder, extra CLI args given the target, API call or None, exception, message)
CASES = [
    ("batch-size-0", lambda t: t / "new", lambda p: ["--batch-size", "0", "--out", str(p)],
     lambda p: CompareConfig(**{**TINY, "batch_size": 0}), InitlabError, "`batch_size`"),
    ("momentum-1.5", lambda t: t / "new", lambda p: ["--momentum", "1.5", "--out", str(p)],
     lambda p: CompareConfig(**{**TINY, "momentum": 1.5}), InitlabError, "`momentum`"),
    ("threads-0", lambda t: t / "new", lambda p: ["--threads", "0", "--out", str(p)],
     None, InitlabError, "`threads`"),
    ("out-is-a-file", _file, lambda p: ["--out", str(p)],
     lambda p: run_compare(CompareConfig(**TINY), p, quiet=True), InitlabError, "`--out`"),
    ("out-under-a-file", _file, lambda p: ["--out", str(p / "sub")],
     lambda p: run_compare(CompareConfig(**TINY), p / "sub", quiet=True), InitlabError,
     "`--out`"),
    ("resume-last-line-{}", _last_line("{}"), lambda p: ["--out", str(p), "--resume"],
     lambda p: run_compare(CompareConfig(**TINY), p, resume=True, quiet=True), InitlabError,
     "`results` line 5 must be a result record"),
    ("resume-last-line-null", _last_line("null"), lambda p: ["--out", str(p), "--resume"],
     lambda p: run_compare(CompareConfig(**TINY), p, resume=True, quiet=True), InitlabError,
     "`results` line 5 must be a result record"),
    ("resume-last-line-list", _last_line('[1, 2]'), lambda p: ["--out", str(p), "--resume"],
     None, InitlabError, "must be a result record"),
    ("torn-config-resume", _torn_config, lambda p: ["--out", str(p), "--resume"],
     lambda p: run_compare(CompareConfig(**TINY), p, resume=True, quiet=True), InitlabError,
     "torn config.json"),
    ("torn-config-plain", _torn_config, lambda p: ["--out", str(p)],
     None, InitlabError, "torn config.json"),
    ("other-experiment", _finished, lambda p: ["--out", str(p), "--width", "9"],
     None, InitlabError, "holds results of a different experiment"),
    ("same-experiment-no-resume", _finished, lambda p: ["--out", str(p)],
     None, InitlabError, "--resume to continue it"),
    ("folder-in-use", _locked, lambda p: ["--out", str(p), "--resume"],
     lambda p: run_compare(CompareConfig(**TINY), p, quiet=True), InitlabError,
     f"in use by another initlab run (pid {os.getpid()}"),
    ("npz-pickled", _npz_pickled,
     lambda p: ["--data", "mnist", "--data-dir", str(p), "--out", str(p.parent / "o")],
     lambda p: load_mnist_npz(p), InitlabError, "`data_dir` must be a readable .npz"),
    ("npz-truncated", _npz_truncated,
     lambda p: ["--data", "mnist", "--data-dir", str(p), "--out", str(p.parent / "o")],
     lambda p: load_mnist_npz(p), InitlabError, "`data_dir` must be a readable .npz"),
    ("npz-object-array", _npz_object,
     lambda p: ["--data", "mnist", "--data-dir", str(p), "--out", str(p.parent / "o")],
     lambda p: load_mnist_npz(p), InitlabError, "`data_dir`"),
    ("npy-renamed-npz", _npy_renamed,
     lambda p: ["--data", "mnist", "--data-dir", str(p), "--out", str(p.parent / "o")],
     lambda p: load_mnist_npz(p), InitlabError, "`data_dir` must be an .npz archive"),
    ("npz-string-images", _npz_strings,
     lambda p: ["--data", "mnist", "--data-dir", str(p), "--out", str(p.parent / "o")],
     lambda p: load_mnist_npz(p), InitlabError, "must hold numeric `images`"),
]


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setattr(initlab.cli, "SUBCOMMAND_MODULES",
                        ("initlab.lab.cli", "initlab.lab.reproduce"))
    return initlab.cli.main


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, tmp_path, cli, capsys):
    _, build, argv, call, exc, message = case
    target = build(tmp_path)
    try:
        before = snapshot(target)
        name = str(target.name)
        if call is not None:
            with pytest.raises(exc) as info:
                call(target)
            assert message in str(info.value)
            assert snapshot(target) == before
        capsys.readouterr()
        assert cli([*ARGS, *argv(target)]) == 2
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("initlab: error: "), err
        assert message in err and "Traceback" not in err
        assert name in err or message.startswith("`")  # names the file/folder or the option
        assert snapshot(target) == before
        if case[0] in ("batch-size-0", "momentum-1.5", "threads-0"):
            assert not target.exists()  # checked before the folder is opened
        if "--out" in argv(target) and case[0].startswith("npz") or case[0] == "npy-renamed-npz":
            assert not (target.parent / "o").exists()
    finally:
        held = getattr(_locked, "held", None)
        if held is not None:
            held.release()
            _locked.held = None


def test_every_error_is_an_initlab_error():
    for _, _, _, _, exc, _ in CASES:
        assert issubclass(exc, (InitlabError, InitlabTypeError))


def test_corrected_command_runs_after_a_refusal(tmp_path, cli):
    """compare --batch-size 0 --out D is refused and leaves no D/config.json, so the corrected
    command then runs."""
    out = tmp_path / "D"
    assert cli([*ARGS, "--batch-size", "0", "--out", str(out)]) == 2
    assert not (out / "config.json").exists()
    assert cli([*ARGS, "--out", str(out)]) == 0


def test_force_moves_old_results_aside(tmp_path, cli):
    out = _finished(tmp_path)
    old = snapshot(out)
    assert cli([*ARGS, "--width", "9", "--out", str(out), "--force"]) == 0
    aside = [p for p in out.iterdir() if p.name.startswith("replaced-")]
    assert len(aside) == 1
    kept = snapshot(aside[0])
    for name in ("config.json", "results.jsonl"):
        assert kept[name] == old[name]  # nothing deleted
    assert json.loads((out / "config.json").read_text())["width"] == 9


def test_torn_config_then_force_keeps_the_results(tmp_path):
    out = _torn_config(tmp_path)
    results = (out / "results.jsonl").read_bytes()
    run_compare(CompareConfig(**TINY), out, force=True, quiet=True)
    aside = next(p for p in out.iterdir() if p.name.startswith("replaced-"))
    assert (aside / "results.jsonl").read_bytes() == results


def test_resume_drops_duplicate_records_and_stale_temporaries(tmp_path):
    out = _finished(tmp_path)
    good = (out / "results.jsonl").read_bytes()
    lines = good.decode().splitlines(keepends=True)
    (out / "results.jsonl").write_text("".join(lines + lines[1:3]))  # two runs' duplicates
    (out / ".results.jsonl.abc123.tmp").write_text("half")  # a kill during an atomic write
    (out / "checkpoints").mkdir(exist_ok=True)
    (out / "checkpoints" / ".glorot.pt.xyz.tmp").write_bytes(b"half")
    res = run_compare(CompareConfig(**TINY), out, resume=True, quiet=True)
    assert (out / "results.jsonl").read_bytes() == good
    assert len(res.records) == len(lines)
    assert not list(out.rglob("*.tmp"))


def test_read_jsonl_key_shape_and_dedup(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"k":1,"v":1}\n{"k":1,"v":2}\n{"k":2,"v":3}\n')
    assert read_jsonl(p, key=("k",)) == [{"k": 1, "v": 1}, {"k": 2, "v": 3}]
    p.write_text('{"k":1}\n{}\n')
    with pytest.raises(InitlabError, match="line 2 must be a result record"):
        read_jsonl(p, key=("k",))


def test_demo_never_overwrites_its_folder(tmp_path, cli, monkeypatch):
    """Without --out a rerun writes to the next free folder; with --out it is refused."""
    from initlab.lab import cli as lab_cli

    monkeypatch.setattr(lab_cli, "DEMO", {**lab_cli.DEMO, **{k: TINY[k] for k in TINY
                                                          if k != "inits"}})
    monkeypatch.chdir(tmp_path)
    assert cli(["demo", "--quiet"]) == 0
    first = snapshot(tmp_path / "runs" / "demo")
    assert cli(["demo", "--quiet"]) == 0
    assert snapshot(tmp_path / "runs" / "demo") == first
    assert (tmp_path / "runs" / "demo-2" / "report.html").is_file()
    assert cli(["demo", "--quiet", "--out", "runs/demo"]) == 2
    assert snapshot(tmp_path / "runs" / "demo") == first
    # the newest report's Reproduce line works as pasted: it names a folder that is still free
    html = (tmp_path / "runs" / "demo-2" / "report.html").read_text()
    line = html.split('<pre class="command">', 1)[1].split("</pre>", 1)[0]
    assert line == "initlab demo --out runs/demo-3"
    assert cli([*line.split()[1:], "--quiet"]) == 0


def test_reproduce_out_rules(tmp_path, cli, capsys):
    f = _file(tmp_path)
    before = snapshot(f)
    with pytest.raises(InitlabError, match="`--out`"):
        reproduce("symmetry", out=f / "sub", quiet=True, overrides={"epochs": 1, "width": 8})
    assert cli(["reproduce", "symmetry", "--out", str(f), "--quiet"]) == 2
    assert "`--out`" in capsys.readouterr().err and snapshot(f) == before
    out = tmp_path / "sym"
    lock = RunLock(out).acquire()
    try:
        with pytest.raises(InitlabError, match="in use by another initlab run"):
            reproduce("symmetry", out=out, quiet=True, overrides={"epochs": 1, "width": 8})
    finally:
        lock.release()
    reproduce("symmetry", out=out, quiet=True, overrides={"epochs": 1, "width": 8})
    first = snapshot(out)
    reproduce("symmetry", out=out, quiet=True, force=True, overrides={"epochs": 1, "width": 8})
    aside = next(p for p in out.iterdir() if p.name.startswith("replaced-"))
    assert snapshot(aside)["results.json"] == first["results.json"]


def test_lock_is_one_writer_and_released(tmp_path):
    a = RunDir(tmp_path / "x", {"a": 1})
    a.open()
    with pytest.raises(InitlabError, match=f"pid {os.getpid()}"):
        RunDir(tmp_path / "x", {"a": 1}).open(resume=True)
    a.close()
    assert not (tmp_path / "x" / ".lock").exists()
    with RunDir(tmp_path / "x", {"a": 1}) as b:
        assert b.open(resume=True) == []


# The first run, in its own process: a tiny comparison whose training waits (holding the
# folder's lock) until the test creates GO, so the second run surely meets it running.
_FIRST = """
import sys, time
from pathlib import Path
from initlab.lab import compare as C
out, go = Path(sys.argv[1]), Path(sys.argv[2])
real = C.train
def train(*a, **k):
    while not go.exists():
        time.sleep(0.02)
    return real(*a, **k)
C.train = train
cfg = C.CompareConfig(data="digits", n_train=120, depth=2, width=8, inits=("glorot", "he"),
                      epochs=2, seeds=2, batch_size=40)
C.run_compare(cfg, out, quiet=True)
"""


def test_two_runs_started_on_one_folder(tmp_path):
    """Two processes on one --out: the second (a --resume of the same experiment) is refused
    while the first runs, naming its pid; the folder ends with exactly one record per key."""
    out, go = tmp_path / "shared", tmp_path / "GO"
    src = str(Path(initlab.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-c", _FIRST, str(out), str(go)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ((out / ".lock").is_file() and (out / ".lock").read_text().strip()):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.05)
        second = subprocess.run(
            [sys.executable, "-c", "import sys; from initlab.cli import main; sys.exit(main())",
             "compare", "--data", "digits", "--n-train", "120", "--depth", "2", "--width", "8",
             "--inits", "glorot,he", "--epochs", "2", "--seeds", "2", "--batch-size", "40",
             "--quiet", "--resume", "--out", str(out)],
            env=env, capture_output=True, text=True, timeout=120)
        assert first.poll() is None  # still waiting for GO: it held the lock all along
    finally:
        go.touch()
        _, err_text = first.communicate(timeout=300)
    assert first.returncode == 0, err_text
    assert second.returncode == 2, second.stderr
    assert f"in use by another initlab run (pid {first.pid}" in second.stderr
    assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
    recs = read_jsonl(out / "results.jsonl")
    keys = [(r["init"], r["lr"], r["seed"], r["epoch"]) for r in recs]
    assert len(keys) == len(set(keys)) == 2 * 2 * 3
    assert not (out / ".lock").exists()


def test_out_folder_that_cannot_be_created_is_a_clear_one_line_error(tmp_path, cli, capsys,
                                                                       monkeypatch):
    from pathlib import Path as _Path

    real_mkdir = _Path.mkdir

    def refuse(self, *a, **k):
        if self.name == "o":
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(_Path, "mkdir", refuse)
    target = tmp_path / "o"
    assert cli([*ARGS, "--out", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith("initlab: error: `--out` must be a directory initlab can create "
                          "(Permission denied)") and str(target) in err and "Fix:" in err
    assert not target.exists()
