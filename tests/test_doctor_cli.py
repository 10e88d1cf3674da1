"""``initlab doctor`` on a module file written by the test."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from initlab.diagnostics import cli

MODULE = textwrap.dedent('''
    import math
    import torch
    from torch import nn

    def build_model(depth=3, width=64, zero=False):
        """A ReLU MLP on 1x8x8 images with He weights drawn from a seeded generator."""
        g = torch.Generator().manual_seed(0)
        layers, w = [nn.Flatten()], 64
        for k in range(depth + 1):
            out = 10 if k == depth else width
            lin = nn.Linear(w, out)
            with torch.no_grad():
                lin.weight.copy_(torch.randn(out, w, generator=g) * math.sqrt(2.0 / w))
                lin.bias.zero_()
                if zero:
                    lin.weight.zero_()
            layers.append(lin)
            if k < depth:
                layers.append(nn.ReLU())
            w = out
        return nn.Sequential(*layers)

    model = build_model(depth=1)
''')


@pytest.fixture
def module_file(tmp_path):
    path = tmp_path / "netdef.py"
    path.write_text(MODULE)
    return path


def run(argv, capsys):
    parser = argparse.ArgumentParser(prog="initlab")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code = args.func(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_doctor_table_on_a_builder(module_file, capsys):
    code, out, _ = run(["doctor", f"{module_file}:build_model", "--input-shape", "1,8,8"], capsys)
    assert code == 0
    assert "|dL/dz|" in out and "findings: none" in out


def test_doctor_json_parses_and_plot_is_written(module_file, tmp_path, capsys):
    png = tmp_path / "out" / "doctor.png"
    code, out, err = run(["doctor", f"{module_file}:build_model", "--input-shape", "1,8,8",
                          "--batch-size", "32", "--seed", "3", "--json", "--plot", str(png),
                          "--kwargs", '{"depth": 5}', "--loss", "cross_entropy"], capsys)
    assert code == 0
    d = json.loads(out)
    assert len(d["layers"]) == 6 and d["meta"]["batch_shape"] == [32, 1, 8, 8]
    assert d["meta"]["loss"] == "cross_entropy"
    assert png.read_bytes()[:4] == b"\x89PNG" and "plot written" in err


def test_doctor_html_page_is_written(module_file, tmp_path, capsys):
    page = tmp_path / "doctor.html"
    code, _, err = run(["doctor", f"{module_file}:build_model", "--input-shape", "1,8,8",
                        "--html", str(page)], capsys)
    assert code == 0 and "page written" in err
    html = page.read_text()
    assert "initlab doctor" in html and "Findings" in html and "<img" in html


def test_doctor_module_object_and_state_dict(module_file, tmp_path, capsys):
    # a zeroed state dict loaded into the built model makes the hidden units symmetric
    import importlib.util

    spec = importlib.util.spec_from_file_location("netdef_for_state", module_file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    state = tmp_path / "zero.pt"
    torch.save(mod.build_model(zero=True).state_dict(), state)
    code, out, _ = run(["doctor", f"{module_file}:build_model", "--input-shape", "64",
                        "--state", str(state), "--json", "--fail-on", "error"], capsys)
    d = json.loads(out)
    assert code == 1  # --fail-on error, and there is an error
    assert any(f["code"] == "symmetry" and f["severity"] == "error" for f in d["findings"])
    code, out, _ = run(["doctor", f"{module_file}:model", "--input-shape", "64"], capsys)
    assert code == 0


@pytest.mark.parametrize("argv, message", [
    (["--input-shape", "1,x"], "`--input-shape` must be positive integers"),
    (["--input-shape", "64", "--kwargs", "[1]"], "`--kwargs` must be a JSON object"),
    (["--input-shape", "1"], "`--input-shape` must be what the model expects"),
    (["--input-shape", "64", "--activation", "tanhh"], "`activation` must be one of"),
])
def test_doctor_cli_errors(module_file, argv, message, capsys):
    code = cli.main(["doctor", f"{module_file}:build_model", *argv])
    assert code == 2 and message in capsys.readouterr().err


def test_doctor_cli_bad_target(module_file, tmp_path, capsys):
    assert cli.main(["doctor", f"{module_file}:nope", "--input-shape", "64"]) == 2
    assert "`target` names `nope`" in capsys.readouterr().err
    assert cli.main(["doctor", f"{tmp_path / 'missing.py'}:f", "--input-shape", "64"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["doctor", "no_colon_here", "--input-shape", "64"]) == 2
    assert "must be FILE.py:NAME" in capsys.readouterr().err


def test_doctor_cli_target_file_without_py_suffix(module_file, tmp_path, capsys):
    # an existing file Python cannot import (no .py suffix) once raised a bare AttributeError
    src = tmp_path / "models.txt"
    src.write_text(Path(module_file).read_text())
    assert cli.main(["doctor", f"{src}:build_model", "--input-shape", "64"]) == 2
    err = capsys.readouterr().err
    assert "`target` must name a Python source file (FILE.py)" in err
    assert "models.txt:build_model" in err and "rename the file to end in .py" in err


def test_doctor_cli_as_a_process(module_file):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "initlab.diagnostics.cli", "doctor",
                           f"{module_file}:build_model", "--input-shape", "1,8,8", "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["meta"]["depth"] == 4
