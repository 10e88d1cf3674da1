"""Comparisons: results files, resume, the HTML report and the CLI (`compare`, `demo`)."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

import initlab.cli
from initlab.core.validation import InitlabError
from initlab.lab import compare as C
from initlab.lab.compare import CompareConfig, format_table, run_compare
from initlab.lab.compare_report import write_report
from initlab.lab.models import Residual
from initlab.lab.results import RunDir, read_jsonl

TINY = dict(data="digits", n_train=120, depth=2, width=8, activation="tanh",
            inits=("glorot", "he"), epochs=2, seeds=2, batch_size=40, lr=0.05, lsuv_batch=64)


def test_run_compare_records_and_summary(tmp_path):
    cfg = CompareConfig(**TINY)
    res = run_compare(cfg, tmp_path / "x", quiet=True)
    assert len(res.records) == 2 * 2 * 3  # inits x seeds x (epochs + 1)
    keys = {(r["init"], r["seed"], r["epoch"]) for r in res.records}
    assert len(keys) == 12
    assert all("layers" in r for r in res.records if r["epoch"] == 0)
    assert [row["init"] for row in res.summary] == ["glorot", "he"]
    row = res.summary[0]
    assert 0 <= row["acc_mean"] <= 1 and row["acc_std"] >= 0 and len(row["init_std"]) == 2
    table = format_table(res.summary, cfg)
    assert "glorot" in table and "he" in table and "± " in table
    notes = C.takeaways(res.summary, cfg)
    assert notes[0].startswith("best: ")
    cfgfile = json.loads((tmp_path / "x" / "config.json").read_text())
    assert cfgfile["inits"] == ["glorot", "he"] and cfgfile["experiment"] == "initlab.compare"
    assert not list((tmp_path / "x" / "checkpoints").glob("*.pt"))  # finished runs clean up


class _Crash(Exception):
    pass


def _crashing_train(after_runs: int, at_epoch: int, before_append: bool):
    """A stand-in for `train` that interrupts the run number `after_runs` at `at_epoch`."""
    real = C.train
    count = {"runs": 0}

    def fake(model, data, cfg, *, seed, on_epoch=None, **kw):
        count["runs"] += 1
        if count["runs"] != after_runs + 1:
            return real(model, data, cfg, seed=seed, on_epoch=on_epoch, **kw)

        def wrapped(rec):
            if rec["epoch"] == at_epoch and before_append:
                raise _Crash  # after the checkpoint, before the JSON line
            on_epoch(rec)
            if rec["epoch"] == at_epoch:
                raise _Crash  # after both

        return real(model, data, cfg, seed=seed, on_epoch=wrapped, **kw)

    return fake


@pytest.mark.parametrize("before_append", [True, False])
def test_resume_gives_the_same_jsonl(tmp_path, monkeypatch, before_append):
    cfg = CompareConfig(**TINY)
    run_compare(cfg, tmp_path / "full", quiet=True)
    expected = (tmp_path / "full" / "results.jsonl").read_bytes()

    monkeypatch.setattr(C, "train", _crashing_train(2, 1, before_append))
    with pytest.raises(_Crash):
        run_compare(cfg, tmp_path / "cut", quiet=True)
    monkeypatch.undo()
    partial = read_jsonl(tmp_path / "cut" / "results.jsonl")
    assert 0 < len(partial) < 12
    with pytest.raises(InitlabError, match="--resume"):  # not without --resume
        run_compare(cfg, tmp_path / "cut", quiet=True)
    run_compare(cfg, tmp_path / "cut", resume=True, quiet=True)
    assert (tmp_path / "cut" / "results.jsonl").read_bytes() == expected


def test_resume_redoes_a_run_whose_checkpoint_is_gone(tmp_path, monkeypatch):
    cfg = CompareConfig(**TINY)
    run_compare(cfg, tmp_path / "full", quiet=True)
    key = lambda r: (r["init"], r["lr"], r["seed"], r["epoch"])  # noqa: E731
    expected = sorted(read_jsonl(tmp_path / "full" / "results.jsonl"), key=key)
    monkeypatch.setattr(C, "train", _crashing_train(2, 1, False))
    with pytest.raises(_Crash):
        run_compare(cfg, tmp_path / "cut", quiet=True)
    monkeypatch.undo()
    for ck in (tmp_path / "cut" / "checkpoints").glob("*.pt"):
        ck.unlink()  # the interrupted run's partial results can no longer be continued
    run_compare(cfg, tmp_path / "cut", resume=True, quiet=True)
    assert sorted(read_jsonl(tmp_path / "cut" / "results.jsonl"), key=key) == expected


def test_torn_last_line_is_dropped_on_resume(tmp_path, monkeypatch):
    cfg = CompareConfig(**TINY)
    run_compare(cfg, tmp_path / "full", quiet=True)
    expected = (tmp_path / "full" / "results.jsonl").read_bytes()
    monkeypatch.setattr(C, "train", _crashing_train(1, 2, False))
    with pytest.raises(_Crash):
        run_compare(cfg, tmp_path / "cut", quiet=True)
    monkeypatch.undo()
    with open(tmp_path / "cut" / "results.jsonl", "ab") as fh:
        fh.write(b'{"epoch":3,"init":"gl')  # a crash in the middle of a write
    assert len(read_jsonl(tmp_path / "cut" / "results.jsonl")) == 6
    run_compare(cfg, tmp_path / "cut", resume=True, quiet=True)
    assert (tmp_path / "cut" / "results.jsonl").read_bytes() == expected


def test_output_directory_rules(tmp_path):
    out = tmp_path / "o"
    with RunDir(out, {"a": 1}) as rd:
        rd.open()
        rd.append({"x": 1})
    for cfg, kw, match in [({"a": 1}, {}, "holds results of this experiment"),
                           ({"a": 2}, {"resume": True}, "a: 1 there vs 2 now"),
                           ({"a": 2}, {}, "different experiment")]:
        with RunDir(out, cfg) as rd, pytest.raises(InitlabError, match=match):
            rd.open(**kw)
    with RunDir(out, {"a": 1}) as rd:
        assert rd.open(resume=True) == [{"x": 1}]
    with RunDir(out, {"a": 2}) as rd:
        assert rd.open(force=True) == []
        assert rd.moved_to is not None and (rd.moved_to / "results.jsonl").is_file()
    assert json.loads((out / "config.json").read_text()) == {"a": 2}
    assert not (out / "results.jsonl").exists()


def test_run_dir_holds_only_its_own_readable_config(tmp_path):
    out = tmp_path / "o"
    assert not RunDir(out, {"a": (1, 2)}).holds()  # nothing there yet
    RunDir(out, {"a": (1, 2)}).open()
    assert RunDir(out, {"a": (1, 2)}).holds()  # tuples compare as the saved lists
    assert not RunDir(out, {"a": (1, 3)}).holds()
    (out / "config.json").write_text("{not json")
    assert not RunDir(out, {"a": (1, 2)}).holds()
    cfg = CompareConfig(**TINY)
    assert C.run_dir(cfg, out).config == {"experiment": "initlab.compare",
                                          **json.loads(json.dumps(cfg.to_dict()))}


class _Checker(HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def test_report_is_well_formed_html(tmp_path):
    cfg = CompareConfig(**{**TINY, "inits": ("glorot", "lsuv", "zeros"), "seeds": 1})
    res = run_compare(cfg, tmp_path / "r", quiet=True)
    path = write_report(res)
    assert path == tmp_path / "r" / "report.html"
    text = path.read_text()
    p = _Checker()
    p.feed(text)
    p.close()
    assert p.errors == [] and p.stack == []
    imgs = [a for t, a in p.tags if t == "img"]
    assert len(imgs) >= 3 and all(a["src"].startswith("data:image/png;base64,") for a in imgs)
    assert not any(a.get("href") for t, a in p.tags if t in ("link", "script"))  # self-contained
    for init in cfg.inits:
        assert init in text
    assert "initlab compare" in text and "--data digits" in text
    assert "symmetry is never broken" in text  # the takeaway on the zeros plan


def test_write_report_without_an_output_directory_needs_a_path():
    # a CompareResult's out defaults to None; write_report(res) once raised a bare TypeError
    res = C.CompareResult(CompareConfig(**TINY), None, [], {})
    with pytest.raises(InitlabError, match=r"`path` is needed for a result without an output "
                       r"directory.*got None\. Fix: pass write_report\(res, 'report.html'\)"):
        write_report(res)


def test_lr_grid_picks_on_validation(tmp_path):
    cfg = CompareConfig(**{**TINY, "lr_grid": (1e-4, 0.1), "seeds": 1})
    res = run_compare(cfg, tmp_path / "g", quiet=True)
    assert len(res.data.y_val) > 0
    assert {r["lr"] for r in res.records} == {1e-4, 0.1}
    for init in cfg.inits:  # 1e-4 barely moves in 2 epochs: 0.1 wins on validation
        assert res.best_lr[init] == 0.1
    assert [row["lr"] for row in res.summary] == [0.1, 0.1]
    write_report(res)


def test_compare_config_errors():
    with pytest.raises(InitlabError, match="`inits` must be one of"):
        CompareConfig(inits=("glorot", "nope"))
    with pytest.raises(InitlabError, match="`depth` must be >= 1"):
        CompareConfig(depth=0)
    with pytest.raises(InitlabError, match="`inits` must not repeat"):
        CompareConfig(inits=("he", "he"))


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def cli(monkeypatch):
    # only this part's subcommands, so the test does not depend on the others' modules
    monkeypatch.setattr(initlab.cli, "SUBCOMMAND_MODULES", ("initlab.lab.cli",))
    return initlab.cli.main


TINY_ARGS = ["compare", "--data", "digits", "--n-train", "120", "--depth", "2", "--width", "8",
             "--inits", "glorot,he", "--epochs", "1", "--seeds", "1", "--quiet"]


def test_cli_compare_success(cli, tmp_path, capsys):
    assert cli([*TINY_ARGS, "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "glorot" in out and "report:" in out and (tmp_path / "c" / "report.html").is_file()
    # rerun: refused without --resume (exit 2), fine with it or with --force
    assert cli([*TINY_ARGS, "--out", str(tmp_path / "c")]) == 2
    assert cli([*TINY_ARGS, "--out", str(tmp_path / "c"), "--resume"]) == 0
    assert cli([*TINY_ARGS, "--width", "9", "--out", str(tmp_path / "c"), "--resume"]) == 2
    assert cli([*TINY_ARGS, "--width", "9", "--out", str(tmp_path / "c"), "--force"]) == 0


@pytest.mark.parametrize("extra, message", [
    (["--data", "cifar"], "`data` must be one of"),
    (["--model", "vit"], "`model` must be one of"),
    (["--inits", "glorot,bogus"], "`inits` must be one of"),
    (["--depth", "0"], "`depth` must be >= 1"),
    (["--width", "0"], "`width` must be >= 1"),
    (["--epochs", "-1"], "`epochs` must be >= 0"),
    (["--lr-grid", "0.1,abc"], "`lr_grid` must be a comma-separated list"),
    (["--activation", "swish9"], "`activation` must be one of"),
    (["--inits", "he,fixup"], "`inits` entry 'fixup' cannot initialize this mlp model"),
])
def test_cli_bad_input_exit_2(cli, tmp_path, capsys, extra, message):
    assert cli([*TINY_ARGS, "--out", str(tmp_path / "b"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_cli_missing_mnist_exit_2(cli, tmp_path, capsys, monkeypatch):
    from initlab.lab import data as D

    def no_network(url, dest, timeout):
        raise OSError("offline")

    monkeypatch.setattr(D, "_download", no_network)
    args = [*TINY_ARGS, "--data", "mnist", "--data-dir", str(tmp_path / "none"),
            "--out", str(tmp_path / "m")]
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert "place them in" in err and str(tmp_path / "none") in err


def test_cli_argparse_errors_exit_2(cli, tmp_path):
    with pytest.raises(SystemExit) as e:
        cli([*TINY_ARGS, "--depth", "ten"])
    assert e.value.code == 2


@pytest.mark.slow
def test_demo_end_to_end(cli, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CI", "1")  # --open must not open a browser in CI
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda *a, **k: opened.append(a))
    assert cli(["demo", "--out", str(tmp_path / "d"), "--quiet", "--open"]) == 0
    out = capsys.readouterr().out
    assert "report:" in out and opened == []
    res = read_jsonl(tmp_path / "d" / "results.jsonl")
    final = {}
    for r in res:
        if r["epoch"] == max(x["epoch"] for x in res):
            final.setdefault(r["init"], []).append(r["test_acc"])
    # the demo's point: torch's default stays near chance at depth 10, the scaled inits train
    assert max(final["torch_default"]) < 0.4
    assert min(final["glorot"]) > 0.8 and min(final["lsuv"]) > 0.8


def test_residual_plans_on_a_residual_model(tmp_path):
    cfg = CompareConfig(**{**TINY, "model": "resmlp", "inits": ("fixup", "zero_residual"),
                           "epochs": 1, "seeds": 1, "activation": "relu"})
    res = run_compare(cfg, tmp_path / "res", quiet=True)
    assert len(res.records) == 4
    model, _ = C.make_initialized_model(cfg, res.data, "fixup", 0)
    blocks = [m for m in model.modules() if isinstance(m, Residual)]
    assert blocks and all(float(b.branch[-1].weight.detach().abs().sum()) == 0 for b in blocks)
