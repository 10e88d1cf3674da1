"""The one report design: palette, shared axes, integer layer ticks, wrapping blocks, the
verdict first, folded tables, the Reproduce command, notebook displays, progress and threads."""

from __future__ import annotations

import io
import shlex

import numpy as np
import pytest
import torch
from torch import nn

import initlab
from initlab.lab import progress as P
from initlab.lab.compare import CompareConfig, run_compare
from initlab.lab.compare_report import build_report, command_line, rerun_out
from initlab.report.figures import histograms
from initlab.report.html import HtmlReport, pyplot
from initlab.report.palette import PALETTE, init_colors, init_markers

TINY = dict(data="digits", n_train=120, depth=3, width=8, activation="tanh",
            inits=("glorot", "lsuv", "zeros"), epochs=1, seeds=1, batch_size=40, lsuv_batch=64)


def test_one_colour_per_init_everywhere():
    a = init_colors(["torch_default", "glorot", "he", "orthogonal", "lsuv", "critical"])
    b = init_colors(["orthogonal", "glorot"])
    assert a["glorot"] == b["glorot"] and a["orthogonal"] == b["orthogonal"]
    assert len(set(a.values())) == 6  # distinct within a figure
    # the pair: glorot and orthogonal were orange and red; now blue and bluish green
    assert {a["glorot"], a["orthogonal"]} == {"#0072B2", "#009E73"}
    unknown = init_colors(["mine", "yours", "glorot"])
    assert len(set(unknown.values())) == 3 and all(c in PALETTE for c in unknown.values())
    assert len(set(init_markers(a).values())) == 6


def test_histogram_panels_share_axes_from_zero():
    rng = np.random.default_rng(0)
    acts = {"glorot": [rng.normal(0, 0.5, 2000) for _ in range(3)],
            "lsuv": [np.tanh(rng.normal(0, 3, 2000)) for _ in range(3)]}  # piles up at +-1
    fig = histograms(acts, bounds=(-1, 1))
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert len(axes) == 2
    ylims = {ax.get_ylim() for ax in axes}
    xlims = {ax.get_xlim() for ax in axes}
    assert len(ylims) == 1 and len(xlims) == 1 and next(iter(ylims))[0] == 0
    pyplot().close(fig)


def test_doctor_plot_has_integer_layer_ticks_and_legends_off_the_data():
    from initlab.diagnostics.plots import report_figure

    model = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))
    rep = initlab.doctor(model, torch.randn(64, 8, generator=torch.Generator().manual_seed(0)))
    fig = report_figure(rep)
    fig.canvas.draw()
    for ax in fig.axes[:3]:
        if ax.get_xlabel() == "layer":
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
            leg = ax.get_legend()
            if leg is not None:  # below the axes: its box does not overlap the plotting area
                lb = leg.get_window_extent()
                ab = ax.get_window_extent()
                assert lb.y1 <= ab.y0 + 1
    pyplot().close(fig)


def test_html_blocks_wrap_and_the_verdict_comes_first():
    rep = HtmlReport("t")
    rep.heading("later")
    rep.table(["a"], [[i] for i in range(20)], caption="many rows")
    rep.preformatted("x" * 500)
    rep.lead(["the answer"])
    html = rep.render()
    assert html.index('id="verdict"') < html.index("later")
    assert "<details><summary>many rows (20 rows)</summary>" in html
    assert "white-space:pre-wrap" in html and "overflow-wrap:anywhere" in html
    assert "<script" not in html and "http" not in html.split("<body>")[1]  # self-contained


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return run_compare(CompareConfig(**TINY), tmp_path_factory.mktemp("r") / "x", quiet=True)


def test_compare_report_design(result):
    html = build_report(result).render()
    order = [html.index(s) for s in ('id="verdict"', "Findings at initialization",
                                     "per-layer statistics", "<details>", "Reproduce")]
    assert order == sorted(order)
    assert "symmetry is never broken" in html and "Did not reach" in html
    verdict = html.split('id="verdict"', 1)[1].split("</section>", 1)[0]
    assert "data:image/png;base64," in verdict  # the one picture, in the verdict
    tables = [i for i in range(len(html)) if html.startswith("<table>", i)]
    assert tables
    for i in tables:  # every table is folded: inside an open <details> element
        assert html[:i].count("<details") > html[:i].count("</details>")


def test_reproduce_command_rebuilds_the_same_config(result, tmp_path, monkeypatch):
    """The Reproduce line, parsed by the real CLI parser, gives the same CompareConfig, and its
    --out is a free folder beside the taken one."""
    from initlab.cli import build_parser
    from initlab.lab.cli import _config_from_args

    line = command_line(result.config, rerun_out(result.out))
    argv = shlex.split(line.replace("\\\n", " "))
    args = build_parser().parse_args(argv[1:])
    assert _config_from_args(args) == result.config
    assert args.out == result.out + "-2"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "x-2").mkdir(parents=True)
    (tmp_path / "runs" / "x-2" / "f").write_text("taken")
    assert rerun_out("runs/x") == "runs/x-3"
    assert rerun_out("runs/x-3") == "runs/x"  # the stem is free again


def test_rich_displays(result):
    model = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))
    rep = initlab.apply(model, "glorot", seed=0)
    html = rep._repr_html_()
    assert html.startswith('<div class="ilr">') and "0.weight" in html and "glorot" in html
    doc = initlab.doctor(model, torch.randn(32, 8, generator=torch.Generator().manual_seed(0)))
    dh = doc._repr_html_()
    assert 'id="verdict"' in dh and "data:image/png;base64," in dh
    ch = result._repr_html_()
    assert 'id="verdict"' in ch and "<html" not in ch
    from initlab.theory.meanfield import mean_field
    from initlab.theory.propagation import predict_propagation

    assert "data:image/png;base64," in predict_propagation([8, 8, 8], "tanh",
                                                           "glorot_normal")._repr_html_()
    assert "q_star" in mean_field(1.5, 0.05, "tanh")._repr_html_()


def test_progress_bar_on_a_terminal_lines_in_a_log_nothing_when_quiet(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert isinstance(P.progress_bar(total=3, desc="x"), P._Lines)   # a pipe or log: lines
    assert isinstance(P.progress_bar(total=3, desc="x", quiet=True), P._Silent)
    assert P.progress([1, 2], desc="x", quiet=True) == [1, 2]
    monkeypatch.setattr("sys.stderr", Tty())
    assert isinstance(P.progress_bar(total=3, desc="x", quiet=True), P._Silent)
    bar = P.progress_bar(total=3, desc="runs", unit="epoch")
    bar.update(3)
    bar.close()
    import sys

    assert "runs" in sys.stderr.getvalue() and "epoch" in sys.stderr.getvalue()


def test_thread_default_never_oversubscribes(monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    for jobs in (1, 2, 3):
        t = P.default_threads(jobs)
        assert t >= 1 and (t * jobs <= 2 or t == 1)


def test_progress_lines_in_a_log_at_most_one_per_interval():
    now = [0.0]
    out = io.StringIO()
    lines = P._Lines(total=10, desc="sweep", unit="arm", every=60, clock=lambda: now[0], file=out)
    for _ in range(3):                 # 3 arms in 30 s: nothing yet
        now[0] += 10
        lines.update()
    assert out.getvalue() == ""
    now[0] += 40                       # 70 s: one line with the count, elapsed time and ETA
    lines.update()
    assert out.getvalue().splitlines() == ["sweep: 4/10 arm (40%), 70 s elapsed, ETA 1.8 min"]
    now[0] += 5
    lines.update()                     # 5 s after the last line: still one line
    assert len(out.getvalue().splitlines()) == 1
    now[0] += 20
    lines.update(5)                    # 10/10, 25 s after the last line: not printed
    now[0] += 200
    lines.close()                      # a last line with the final count, once
    lines.close()
    assert out.getvalue().splitlines()[1:] == ["sweep: 10/10 arm (100%), 4.9 min elapsed"]
    # work that ends within the interval writes nothing, even at close
    quiet = io.StringIO()
    short = P._Lines(total=2, desc="x", unit="arm", every=60, clock=lambda: 0.0, file=quiet)
    short.update(2)
    short.close()
    assert quiet.getvalue() == ""


def test_progress_stand_ins_answer_every_call_the_lab_makes_on_a_bar(tmp_path):
    """The lab calls these on whatever progress_bar returns (tqdm on a terminal); the pipe and
    quiet stand-ins must answer all of them: session 12's _Lines lacked refresh(), and the
    isometry reproduction crashed in a pipe when it skipped a cell."""
    from initlab.lab.reproductions._common import Budget, Checkpoint, Scheduler

    out = io.StringIO()
    for bar in (P._Lines(total=10, desc="t", unit="arm", every=0, file=out), P._Silent()):
        for name in ("update", "set_description", "set_postfix_str", "refresh", "close"):
            assert callable(getattr(bar, name)), (type(bar).__name__, name)
    lines = P._Lines(total=10, desc="t", unit="arm", every=0, file=out)
    sched = Scheduler(Checkpoint(None, {}), Budget(None), lines, "t")
    sched.skip(["a"], 4)                       # a cell not trained: 4 planned arms leave
    assert lines.total == 6
    lines.update(6)
    assert out.getvalue().splitlines()[-1].startswith("t: 6/6 arm (100%)")
    Scheduler(Checkpoint(None, {}), Budget(None), P._Silent(), "t").skip(["a"], 4)


def test_progress_over_an_iterable_in_a_log_yields_every_item(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    monkeypatch.setattr(P, "LOG_EVERY_S", 0.0)     # a line per item
    assert list(P.progress(iter(range(3)), desc="it", quiet=False, total=3)) == [0, 1, 2]
    import sys

    log = sys.stderr.getvalue().splitlines()
    assert log[0].startswith("it: 1/3 arm (33%)") and log[-1].startswith("it: 3/3 arm (100%)")
