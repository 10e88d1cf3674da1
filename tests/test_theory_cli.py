"""`initlab theory ...` subcommands: tables, --json, plots, errors."""

import argparse
import json

import pytest

from initlab.core.validation import InitlabError
from initlab.theory.cli import parse_init, parse_widths, register


def run(argv, capsys):
    parser = argparse.ArgumentParser(prog="initlab")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    rc = args.func(args)
    return rc, capsys.readouterr().out


def test_saturation_json(capsys):
    rc, out = run(["theory", "saturation", "--ratio", "2", "10", "--json"], capsys)
    d = json.loads(out)
    assert rc == 0 and round(d["slowdown_ratio"]["ratio"], 1) == 2312.8
    assert d["derivative"][0] == {"x": 0.0, "df": 0.25}


def test_weighted_input_nielsen(capsys):
    rc, out = run(["theory", "weighted-input", "--weights", "nielsen_large", "--bias", "same",
                   "--n", "1000", "--n-on", "500", "--threshold", "1", "--activation", "sigmoid",
                   "--json"], capsys)
    d = json.loads(out)
    assert round(d["std"], 2) == 22.38 and d["exact"] is True
    assert 0.83 < d["saturated_fraction"] < 0.84
    rc, out = run(["theory", "weighted-input", "--weights", "torch_default", "--n", "37"], capsys)
    assert "variance         0.333333" in out and "central limit theorem" in out
    assert "{" not in out and "None" not in out  # words, not Python dicts or None


def test_meanfield_and_critical_line(capsys):
    rc, out = run(["theory", "meanfield", "--sigma-b2", "0.05", "--json"], capsys)
    d = json.loads(out)
    assert abs(d["sigma_w2"] - 1.761) < 1e-3 and d["xi_c"] == "inf" and d["phase"] == "critical"
    rc, out = run(["theory", "critical-line", "--sigma-b2", "0,0.5", "--json"], capsys)
    pts = json.loads(out)["points"]
    assert [round(p["sigma_w2"], 3) for p in pts] == [1.0, 2.843]
    rc, out = run(["theory", "meanfield", "--activation", "relu", "--sigma-w2", "2.5",
                   "--sigma-b2", "0.1"], capsys)
    assert "inf" in out and "chaotic" in out


def test_propagation_and_jacobian_with_plots(tmp_path, capsys):
    png = tmp_path / "p.png"
    rc, out = run(["theory", "propagation", "--widths", "32x4,8", "--batch", "16", "--quiet",
                   "--plot", str(png)], capsys)
    assert rc == 0 and png.exists() and "fwd pred" in out
    rc, out = run(["theory", "propagation", "--widths", "32x4,8", "--no-measure", "--json"],
                  capsys)
    assert json.loads(out)["measured_forward"] is None
    png2 = tmp_path / "j.png"
    rc, out = run(["theory", "jacobian", "--widths", "16x4", "--weights",
                   "orthogonal:gain=1.2", "--bias", "critical:sigma_b2=0.001", "--quiet",
                   "--plot", str(png2), "--json"], capsys)
    d = json.loads(out)
    assert rc == 0 and png2.exists() and len(d["layers"]) == 3


def test_parsers():
    assert parse_widths("784,256x3,10") == [784, 256, 256, 256, 10]
    assert parse_init("none") is None and parse_init("same") == "same"
    assert parse_init("orthogonal:gain=2").params["gain"] == 2.0
    with pytest.raises(InitlabError, match="`widths`"):
        parse_widths("a,b")
    with pytest.raises(InitlabError, match="`initializer`"):
        parse_init("orthogonal:gain")
