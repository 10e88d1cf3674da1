"""The README is a promise: every Python example in it runs as shown, and its shell commands too.

Python blocks run in the default suite (those that need JAX/Flax or Keras in the `frameworks`
group); the lab commands, which train models for a minute, in the `slow` group.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text(encoding="utf-8")
PY_BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, re.S)
FRAMEWORK_WORDS = ("import jax", "import keras", "import flax", "initlab.jax", "initlab.keras")


def _block_params():
    out = []
    for i, block in enumerate(PY_BLOCKS):
        marks = [pytest.mark.frameworks] if any(w in block for w in FRAMEWORK_WORDS) else []
        out.append(pytest.param(block, id=f"python-block-{i}", marks=marks))
    return out


def test_readme_has_the_two_quick_start_commands_on_its_first_screen():
    first_screen = "\n".join(TEXT.splitlines()[:20])
    assert 'pip install -e . && initlab demo' in first_screen
    assert 'pip install -e ".[test]" && python -m pytest' in first_screen


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install -e ".[test]" && python -m pytest\n' in ci


@pytest.mark.parametrize("block", _block_params())
def test_python_example_runs(block, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if any(w in block for w in ("import jax", "initlab.jax", "import flax")):
        pytest.importorskip("jax", reason="JAX is not installed (pip install -e '.[jax]')")
        pytest.importorskip("flax", reason="Flax is not installed (pip install -e '.[jax]')")
    if "import keras" in block:
        monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "torch"))
        pytest.importorskip("keras", reason="Keras is not installed (pip install -e '.[keras]')")
    exec(compile(block, str(README), "exec"), {"__name__": "__readme__"})
    capsys.readouterr()


def _shell_commands():
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", TEXT, re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("initlab "):
                cmds.append(line)
    return cmds


@pytest.mark.slow
@pytest.mark.parametrize("cmd", _shell_commands())
def test_readme_lab_commands_run(cmd, tmp_path):
    argv = shlex.split(cmd)
    if argv[1] in ("compare", "reproduce") and "--list" not in argv:
        if "--out" in argv:
            argv[argv.index("--out") + 1] = str(tmp_path / "out")
        else:
            argv += ["--out", str(tmp_path / "out")]
        argv.append("--quiet")
    proc = subprocess.run([sys.executable, "-m", "initlab.cli", *argv[1:]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    if "--list" not in argv and argv[1] in ("compare", "reproduce"):
        assert (tmp_path / "out" / "report.html").exists()
