"""The `initlab` command as a person meets it (issue #14): help without torch, plain-text help
with a default for every option, a header on every theory command, --json for scripts."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import textwrap

import pytest

from initlab.cli import HelpFormatter, build_parser, config_defaults, main


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def all_commands(parser=None, prefix=()):
    """(argv prefix, parser) for every command and sub-command."""
    parser = parser or build_parser()
    yield prefix, parser
    for name, sub in _subparsers(parser):
        yield from all_commands(sub, (*prefix, name))


def test_help_imports_no_torch():
    # one fresh interpreter runs every --help and looks at sys.modules after each
    commands = [list(p) for p, _ in all_commands()]
    code = textwrap.dedent(f"""
        import contextlib, io, sys
        from initlab.cli import main
        heavy = []
        for argv in {commands!r}:
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    main(argv + ["--help"])
                except SystemExit:
                    pass
            heavy += [(argv, m) for m in ("torch", "jax", "keras", "transformers")
                      if m in sys.modules]
        print(heavy)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out == "[]\n" and len(commands) > 10


def test_every_option_has_help_and_shows_its_default():
    for prefix, parser in all_commands():
        fmt = HelpFormatter(prog="x")
        for action in parser._actions:
            if not action.option_strings or isinstance(action, (argparse._HelpAction,
                                                                argparse._VersionAction)):
                continue
            where = f"initlab {' '.join(prefix)} {action.option_strings[-1]}"
            assert action.help, f"{where} has no help text"
            text = fmt._get_help_string(action)
            if action.default not in (None, False) and action.default is not argparse.SUPPRESS:
                assert "default" in text, f"{where}: default {action.default!r} not shown"


def test_help_is_plain_text():
    for prefix, parser in all_commands():
        text = parser.format_help()
        for rst in ("``", ":class:", ":func:", ":mod:", "::\n"):
            assert rst not in text, f"initlab {' '.join(prefix)} --help shows {rst!r}"


def test_config_defaults_read_from_source_equal_the_dataclass():
    from initlab.lab.compare import CompareConfig

    static = config_defaults("initlab.lab.compare", "CompareConfig")
    real = {f.name: f.default for f in dataclasses.fields(CompareConfig)
            if f.default is not dataclasses.MISSING}
    assert {k: v.default for k, v in static.items()} == real


THEORY = [
    (["saturation"], "Saturation of sigmoid"),
    (["weighted-input", "--n", "100"], "Weighted input z = w.x + b"),
    (["propagation", "--widths", "16x3,4", "--no-measure"], "Variance propagation"),
    (["meanfield"], "Mean field of a deep tanh network"),
    (["critical-line", "--sigma-b2", "0,0.05"], "Critical line of tanh"),
    (["jacobian", "--widths", "8x3", "--quiet"], "Singular values s of the Jacobians"),
]


@pytest.mark.parametrize("argv,header", THEORY, ids=[a[0] for a, _ in THEORY])
def test_theory_commands_print_a_header_and_json(argv, header, capsys):
    assert main(["theory", *argv]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(header)
    assert "{" not in out and "None" not in out and "nan" not in out
    assert main(["theory", *argv, "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), dict)


def test_meanfield_relu_explains_the_impossible_regime(capsys):
    assert main(["theory", "meanfield", "--activation", "relu"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the note is wrapped
    assert "nan" not in out and "n/a" in out
    assert "no finite fixed point" in out and "grows without bound" in out
