"""Bad input to the `initlab` command's theory and doctor subcommands (issue #13, cause 9):
an argparse-style error (one line, plus the detail a user needs such as key lists), a non-zero
exit, no traceback, and every file in the workspace byte-for-byte unchanged; no pickle payload
runs. One row per case: (id, argv with {ws} for the workspace, texts stderr must contain)."""

from __future__ import annotations

import pickle
import textwrap

import pytest
import torch
from torch import nn

from initlab.cli import main

NET = textwrap.dedent("""
    from torch import nn

    def build(width=4):
        return nn.Sequential(nn.Linear(3, width), nn.Tanh(), nn.Linear(width, 2))

    model = build()
    not_a_builder = 3
""")


class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"with open({self.marker!r}, 'w') as f: f.write('payload ran')",))


@pytest.fixture
def ws(tmp_path):
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "broken.py").write_text("raise RuntimeError('broken on import')\n")
    torch.save(nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).state_dict(),
               tmp_path / "other.pt")
    torch.save(nn.Sequential(nn.Linear(3, 4)).state_dict(), tmp_path / "fewer.pt")
    good = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).state_dict()
    torch.save(good, tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"0.weight": Payload(tmp_path / "PAYLOAD_RAN")}, f)
    (tmp_path / "plots").mkdir()
    (tmp_path / "afile").write_text("x")
    return tmp_path


def files(d) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


DOCTOR = ["doctor", "{ws}/net.py:build", "--input-shape", "3"]

CASES = [
    ("weighted-input --input-var -1", ["theory", "weighted-input", "--input-var", "-1"],
     ["`input_var`", "-1.0"]),
    ("weighted-input --n 0", ["theory", "weighted-input", "--n", "0"], ["`n`"]),
    ("saturation --at nan", ["theory", "saturation", "--at", "nan"], ["--at", "nan"]),
    ("saturation --threshold 0", ["theory", "saturation", "--threshold", "0"],
     ["`threshold`"]),
    ("critical-line --sigma-b2 ''", ["theory", "critical-line", "--sigma-b2", ""],
     ["`sigma_b2`", "at least one"]),
    ("critical-line --sigma-b2 a,b", ["theory", "critical-line", "--sigma-b2", "a,b"],
     ["`sigma_b2`"]),
    ("critical-line --plot DIRECTORY", ["theory", "critical-line", "--plot", "{ws}/plots"],
     ["--plot", "not a directory"]),
    ("propagation --plot under a file", ["theory", "propagation", "--no-measure", "--plot",
                                         "{ws}/afile/p.png"], ["--plot", "is a file"]),
    ("propagation --widths garbage", ["theory", "propagation", "--widths", "a,b"],
     ["`widths`"]),
    ("meanfield --sigma-b2 -1", ["theory", "meanfield", "--sigma-b2", "-1"], ["`sigma_b2`"]),
    ("meanfield unknown activation", ["theory", "meanfield", "--activation", "nope"],
     ["`activation`", "nope"]),
    ("jacobian --weights unknown", ["theory", "jacobian", "--weights", "nope", "--widths",
                                    "8x3"], ["nope"]),
    ("doctor truncated --state", DOCTOR + ["--state", "{ws}/trunc.pt"],
     ["`--state`", "trunc.pt", "weights-only"]),
    ("doctor hostile --state", DOCTOR + ["--state", "{ws}/evil.pt"],
     ["`--state`", "evil.pt", "never runs code"]),
    ("doctor --state of another shape", DOCTOR + ["--state", "{ws}/other.pt"],
     ["`--state`", "shape differs (3)", "0.weight (5, 3) vs model (4, 3)"]),
    ("doctor --state with keys missing", DOCTOR + ["--state", "{ws}/fewer.pt"],
     ["`--state`", "missing from the file (2): 2.weight, 2.bias"]),
    ("doctor --state missing file", DOCTOR + ["--state", "{ws}/nope.pt"], ["`--state`"]),
    ("doctor missing attribute", ["doctor", "{ws}/net.py:nothing", "--input-shape", "3"],
     ["`target`", "nothing"]),
    ("doctor attribute not a builder", ["doctor", "{ws}/net.py:not_a_builder",
                                        "--input-shape", "3"], ["`target`", "int"]),
    ("doctor unknown module", ["doctor", "no_such_module_xyz:build", "--input-shape", "3"],
     ["`target`", "no_such_module_xyz"]),
    ("doctor file failing on import", ["doctor", "{ws}/broken.py:build", "--input-shape",
                                       "3"], ["`target`", "broken on import"]),
    ("doctor --kwargs not JSON", DOCTOR + ["--kwargs", "{depth: 2"], ["`--kwargs`"]),
    ("doctor --kwargs a JSON list", DOCTOR + ["--kwargs", "[2]"],
     ["`--kwargs`", "JSON object"]),
    ("doctor --kwargs the builder rejects", DOCTOR + ["--kwargs", '{"depth": 2}'],
     ["`--kwargs`", "depth"]),
    ("doctor --kwargs on a module object", ["doctor", "{ws}/net.py:model", "--input-shape",
                                            "3", "--kwargs", '{"width": 2}'], ["`--kwargs`"]),
    ("doctor --plot DIRECTORY", DOCTOR + ["--plot", "{ws}/plots"], ["--plot"]),
    ("doctor --input-shape 0", ["doctor", "{ws}/net.py:build", "--input-shape", "0"],
     ["`--input-shape`"]),
    ("doctor wrong --input-shape", ["doctor", "{ws}/net.py:build", "--input-shape", "5"],
     ["`--input-shape`"]),
    ("compare --epochs nan", ["compare", "--epochs", "nan", "--out", "{ws}/run"],
     ["--epochs", "whole number", "'nan'", "Fix:"]),
    ("compare --seeds 1.5", ["compare", "--seeds", "1.5", "--out", "{ws}/run"],
     ["--seeds", "'1.5'"]),
    ("reproduce --workers x", ["reproduce", "isometry", "--workers", "x", "--out", "{ws}/r"],
     ["--workers", "whole number", "'x'"]),
    ("propagation --nets 1.5", ["theory", "propagation", "--nets", "1.5"],
     ["--nets", "whole number"]),
]


@pytest.mark.parametrize("argv,texts", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_cli_input(argv, texts, ws, capsys):
    argv = [a.replace("{ws}", str(ws)) for a in argv]
    before = files(ws)
    try:
        rc = main(argv)
    except SystemExit as exc:   # argparse's own errors
        rc = exc.code
    out, err = capsys.readouterr()
    assert rc not in (0, None), out
    assert "Traceback" not in err
    first = err.strip().splitlines()[-1] if "usage:" in err else err.splitlines()[0]
    assert first.startswith(("initlab: error:", "initlab theory", "initlab doctor",
                             "initlab compare", "initlab reproduce")), err
    assert "error" in first
    for text in texts:
        assert text in err, f"{text!r} not in {err!r}"
    assert files(ws) == before and not (ws / "PAYLOAD_RAN").exists()
