"""The init doctor's HTML page (``initlab doctor ... --html PAGE``), in the one report design:
verdict first (healthy or not, the worst finding, the per-layer picture), findings with their
severity, the per-layer table folded, and a Reproduce command.

>>> report = initlab.doctor(model, batch)                   # doctest: +SKIP
>>> write_doctor_html(report, "doctor.html", command="initlab doctor m.py:build --input-shape 784")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..report.html import HtmlReport


def doctor_verdict(report: Any) -> list[str]:
    """Plain sentences: healthy or not, how many findings of each severity, what to do."""
    by = {s: [f for f in report.findings if f.severity == s] for s in ("error", "warning", "info")}
    n = len(report.layers)
    if not by["error"] and not by["warning"]:
        lines = [f"Healthy at initialization: no warning or error over {n} weighted layer"
                 f"{'s' if n != 1 else ''}."]
    else:
        lines = [f"Not healthy at initialization: {len(by['error'])} error(s), "
                 f"{len(by['warning'])} warning(s) over {n} weighted layers."]
        worst = (by["error"] or by["warning"])[0]
        lines.append(f"Most severe: {worst.text}")
    plans = list(dict.fromkeys(p for f in report.findings if f.severity != "info"
                               for p in f.plans))
    if plans:
        lines.append("To re-initialize the whole model: initlab.apply(model, PLAN, seed=0) with "
                     f"PLAN in {', '.join(repr(p) for p in plans)}.")
    return lines


def doctor_page(report: Any, *, command: str | None = None, stamp: bool = True) -> HtmlReport:
    """The :class:`~initlab.report.html.HtmlReport` of a ``DoctorReport``."""
    from .plots import report_figure

    m = report.meta
    loss = m.get("loss_value")
    title = f"initlab doctor: {m.get('model', 'model')}"
    sub = (f"batch {m.get('batch_shape')}, loss {m.get('loss')}"
           + (f" = {loss:.4g}" if isinstance(loss, (int, float)) else ""))
    rep = HtmlReport(title, sub, stamp=stamp)
    rep.verdict(doctor_verdict(report), report_figure(report),
                "Per weighted layer: forward std, backward gradient, saturation and collapse, "
                "activation histograms.")
    rep.heading("Findings")
    rep.findings([(f.severity, f.text) for f in report.findings],
                 empty="No findings: nothing to fix.")
    if report.inputs is not None:
        i = report.inputs
        rep.paragraph(f"Probe batch: mean {_n(i.mean)}, std {_n(i.std)}, input-to-input spread "
                      f"{_n(i.spread)}, mean correlation between examples {_n(i.example_corr)}.")
    with rep.details(f"Per-layer table ({len(report.layers)} layers)"):
        rep.preformatted(report.table())
    if report.blocks:
        with rep.details(f"Residual stream ({len(report.blocks)} blocks)"):
            rep.preformatted(report.block_table())
    if report.attention:
        with rep.details(f"Attention softmax ({len(report.attention)} calls)"):
            rep.preformatted(report.attention_table())
    if command:
        rep.command(command)
    return rep


def write_doctor_html(report: Any, path: str | Path, *, command: str | None = None) -> Path:
    """Write the doctor's page of ``report`` to ``path`` atomically; returns the path.
    ``command``: the command line that produced it (shown as the Reproduce line)."""
    return doctor_page(report, command=command).save(path)


def _n(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def doctor_report_html(report: Any) -> str:
    """What ``DoctorReport._repr_html_`` shows in Jupyter: the doctor's page as a fragment."""
    return doctor_page(report, stamp=False).fragment()
