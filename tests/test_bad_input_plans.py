"""Bad input to plans (issue #13, cause 5): every case a clear error naming the parameter or the
file, the model and the file unchanged, and plans pure data: a plan never imports a module.

Each case is one row: (id, call, exception type, text the message must contain). The call gets
a fresh workspace (a real GPT-2 from a small config, a directory) and the test checks the
model's and the workspace's bytes before and after.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import initlab
from initlab.core.validation import InitlabError, InitlabTypeError
from initlab.modelinit.rules import Plan, Rule, register_module_type

transformers = pytest.importorskip("transformers")

from hf_models import tiny_gpt2  # noqa: E402  (after the skip)

ZEN = {"rules": [{"module": ["this.Zen"], "init": "zeros"}]}


def model_bytes(model) -> dict[str, bytes]:
    return {k: v.detach().cpu().numpy().tobytes() for k, v in model.state_dict().items()}


def dir_bytes(d) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture
def evil_module(tmp_path, monkeypatch):
    """A module on sys.path whose import writes a file and prints: it must never be imported."""
    (tmp_path / "evil_initlab_mod.py").write_text(textwrap.dedent(f"""
        open({str(tmp_path / "IMPORTED")!r}, "w").write("ran")
        print("evil module ran")
        import torch.nn as nn
        class Block(nn.Module):
            pass
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path / "IMPORTED"
    sys.modules.pop("evil_initlab_mod", None)


def _write(ws, name, data: bytes | str):
    p = ws / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return p


def _register_twice():
    register_module_type(nn.Tanh, "initlab_test.Taken")
    register_module_type(nn.ReLU, "initlab_test.Taken")


CASES = [
    ("from_json not json", lambda m, ws: Plan.from_json("not json"), InitlabError,
     ["`plan`", "valid JSON", "'not json'"]),
    ("from_json empty", lambda m, ws: Plan.from_json(""), InitlabError, ["`plan`", "JSON"]),
    ("from_json not a string", lambda m, ws: Plan.from_json(42), InitlabTypeError, ["`text`"]),
    ("load garbage file", lambda m, ws: Plan.load(_write(ws, "g.json", "{ rules: nope")),
     InitlabError, ["g.json", "valid JSON"]),
    ("load binary file", lambda m, ws: Plan.load(_write(ws, "b.json", b"\xff\xfe\x00garbage")),
     InitlabError, ["b.json", "UTF-8"]),
    ("load missing file", lambda m, ws: Plan.load(ws / "missing.json"), InitlabError,
     ["missing.json", "`path`"]),
    ("load a directory", lambda m, ws: Plan.load(ws), InitlabError, ["`path`"]),
    ("load JSON of the wrong shape", lambda m, ws: Plan.load(_write(ws, "l.json", "[1, 2]")),
     InitlabError, ["l.json", "'rules' list"]),
    ("load names its file for a bad rule",
     lambda m, ws: Plan.load(_write(ws, "z.json", json.dumps(ZEN))), InitlabError,
     ["z.json", "this.Zen", "rules[0]"]),
    ("from_dict this.Zen", lambda m, ws: Plan.from_dict(ZEN), InitlabError,
     ["`module`", "this.Zen", "register_module_type"]),
    ("apply with a dict naming this.Zen", lambda m, ws: initlab.apply(m, ZEN, seed=0),
     InitlabError, ["this.Zen"]),
    ("unregistered user type", lambda m, ws: Plan.from_dict(
        {"rules": [{"module": ["evil_initlab_mod.Block"], "init": "zeros"}]}), InitlabError,
     ["evil_initlab_mod.Block", "never import"]),
    ("torch name that is not a module type", lambda m, ws: Plan.from_dict(
        {"rules": [{"module": ["torch.nn.functional.relu"], "init": "zeros"}]}), InitlabError,
     ["torch.nn.functional.relu"]),
    ("strict as a string", lambda m, ws: Plan.from_dict({"rules": [], "strict": "no"}),
     InitlabTypeError, ["plan['strict']"]),
    ("unknown format", lambda m, ws: Plan.from_dict({"rules": [], "format": "v9"}),
     InitlabError, ["plan['format']", "v9"]),
    ("options not a dict", lambda m, ws: Plan.from_dict({"rules": [], "options": [1]}),
     InitlabTypeError, ["plan['options']"]),
    ("blocks as a string", lambda m, ws: Plan.from_dict(
        {"rules": [{"pattern": "*", "init": "zeros", "blocks": "no"}]}), InitlabTypeError,
     ["rules[0]", "rule['blocks']"]),
    ("params not a dict", lambda m, ws: Plan.from_dict(
        {"rules": [{"pattern": "*", "params": ["zeros"]}]}), InitlabTypeError,
     ["rule['params']"]),
    ("register a non-class", lambda m, ws: register_module_type("torch.nn.Linear"),
     InitlabTypeError, ["`cls`"]),
    ("register a taken name", lambda m, ws: _register_twice(), InitlabError,
     ["`name`", "initlab_test.Taken"]),
]


@pytest.mark.parametrize("call,exc,texts", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_plan_input(call, exc, texts, tmp_path, evil_module, capsys):
    ws = tmp_path / "ws"
    ws.mkdir()
    model = tiny_gpt2()
    before_model, before_ws = model_bytes(model), dir_bytes(tmp_path)
    with pytest.raises(exc) as info:
        call(model, ws)
    msg = str(info.value)
    for text in texts:
        assert text in msg, f"{text!r} not in {msg!r}"
    assert model_bytes(model) == before_model
    # only the files the case itself wrote (its input) are there, unchanged; nothing imported
    after = dir_bytes(tmp_path)
    assert {k: v for k, v in after.items() if k in before_ws} == before_ws
    assert not evil_module.exists() and "evil_initlab_mod" not in sys.modules
    assert "this" not in sys.modules or not hasattr(sys.modules["this"], "s")
    assert capsys.readouterr().out == ""


CONV1D = "transformers.pytorch_utils.Conv1D"


def test_plans_import_nothing_in_a_fresh_process(tmp_path):
    # `import this` prints the Zen of Python; a fresh interpreter shows whether anything ran.
    # A transformers name resolves to itself, matched by name: transformers is not imported.
    plan = tmp_path / "zen.json"
    plan.write_text(json.dumps(ZEN))
    code = textwrap.dedent(f"""
        import sys
        from initlab.modelinit.rules import Plan
        for f in (lambda: Plan.from_dict({ZEN!r}), lambda: Plan.load({str(plan)!r})):
            try:
                f()
            except ValueError:
                pass
        p = Plan.from_dict({{"rules": [{{"module": [{CONV1D!r}], "init": "zeros"}}]}})
        print(p.rules[0].module, "this" in sys.modules, "transformers" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out == f"('{CONV1D}',) False False\n"   # and no Zen on stdout


def test_transformers_names_match_gpt2_layers():
    model = tiny_gpt2()
    initlab.apply(model, Plan([Rule(module=CONV1D, weight="zeros")]), seed=0)
    convs = [m for m in model.modules() if type(m).__name__ == "Conv1D"]
    assert convs and all(float(m.weight.detach().abs().sum()) == 0.0 for m in convs)
    other = model.transformer.wte.weight.detach()
    assert float(other.abs().sum()) > 0   # not matched: left as it was


def test_registered_type_round_trips_and_matches():
    @register_module_type
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(3))

    plan = Plan([Rule(Gate, w="zeros")])
    again = Plan.from_json(plan.to_json())
    assert again == plan and again.rules[0].module == (Gate,)
    g = Gate()
    initlab.apply(g, again, seed=0)
    assert torch.equal(g.w.detach(), torch.zeros(3))


def test_repr_shows_the_rules():
    plan = Plan([Rule(nn.Linear, weight="he_normal", bias="zeros"), Rule("*.bias", "zeros")],
                name="mine")
    text = repr(plan)
    assert text.splitlines()[0] == "Plan('mine', strict=False, 2 rules: first match wins)"
    assert "1. Linear[weight,bias] -> weight=he_normal(" in text
    assert "2. *.bias -> zeros()" in text


def test_dir_initlab_is_the_public_api():
    names = dir(initlab)
    for public in ("Plan", "Rule", "doctor", "materialize", "apply", "register_module_type"):
        assert public in names
    for private in ("Any", "annotations", "importlib"):
        assert private not in names and not hasattr(initlab, private)


def test_from_json_prints_nothing():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(InitlabError):
        Plan.from_dict(ZEN)
    assert buf.getvalue() == ""
