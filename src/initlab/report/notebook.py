"""Rich display in Jupyter: the HTML that ``_repr_html_`` of initlab's results returns.

Each result class has a one-line ``_repr_html_`` delegating here, so a notebook cell ending in
``report`` shows a page in the one report design (:mod:`initlab.report.html`, scoped CSS, inline
PNG figures, no script, no network):

- :func:`init_report_html`: ``initlab.apply``'s ``InitReport`` (what each parameter received);
- :func:`theory_html`: a theory result (``Propagation``, ``JacobianSpectrum``, ``MeanField``,
  ``WeightedInput``...): its numbers, and its figure when it has one.

The doctor's page lives with the doctor (:func:`initlab.diagnostics.html.doctor_report_html`) and
the compare report with the lab (:func:`initlab.lab.compare_report.compare_result_html`): this
layer sits below both and imports neither.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .html import HtmlReport

MAX_ROWS = 200  # an InitReport of a large model shows its first rows and says how many more


def init_report_html(report: Any) -> str:
    """HTML of an ``InitReport``: a verdict line, then the parameter table (folded when long)."""
    plan = report.plan.name if report.plan is not None and report.plan.name else "custom plan"
    rep = HtmlReport(f"InitReport: {plan}", f"seed={report.seed}, rng={report.rng} "
                     f"(stream {report.stream_version})", stamp=False)
    lines = [f"{len(report.initialized)} parameter(s) initialized"
             + (f", {len(report.loaded)} loaded" if report.loaded else "")
             + (f", {len(report.unmatched)} unmatched (left as they were)"
                if report.unmatched else "") + "."]
    if report.plan is not None and report.plan.description:
        lines.append(f"Plan: {report.plan.description}")
    if report.unused_rules:
        lines.append("Rules that matched nothing: "
                     + "; ".join(f"#{i} {d}" for i, d in report.unused_rules))
    rep.verdict(lines, title="Summary")
    rows = []
    for r in report.records[:MAX_ROWS]:
        if r.status == "initialized":
            init = r.initializer + (f" *{r.scale:.3g}" if r.scale != 1.0 else "")
        else:
            init = f"({r.status})"
        name = r.name + (f" (= {', '.join(r.aliases)})" if r.aliases else "")
        rule = f"#{r.rule_index} {r.rule}" if r.rule_index is not None else "-"
        rows.append([name, "x".join(map(str, r.shape)) or "()", init, r.fans_str(), r.std,
                     r.mean, rule])
    more = len(report.records) - len(rows)
    head = ["name", "shape", "initializer", "fans in/out", "std", "mean", "rule"]
    caption = f"... and {more} more parameters" if more > 0 else None
    if len(rows) > 12:
        with rep.details(f"Parameters ({len(report.records)})", open=True):
            rep.table(head, rows, caption=caption)
    else:
        rep.table(head, rows, caption=caption)
    if report.lsuv is not None:
        rep.preformatted(str(report.lsuv))
    if report.load is not None:
        rep.paragraph(report.load.summary())
    return rep.fragment()


def _scalar(v: Any) -> bool:
    return isinstance(v, (int, float, str, bool)) or v is None


def theory_html(result: Any, figure: Any = None) -> str:
    """HTML of a theory result: its scalar fields as a table, its per-layer lists as a folded
    table, and ``figure`` (the result's own plot, drawn by its class) when given."""
    name = type(result).__name__
    rep = HtmlReport(f"initlab.theory: {name}", (type(result).__doc__ or "").strip()
                     .split("\n")[0] or None, stamp=False)
    fields = ({f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
              if dataclasses.is_dataclass(result) else dict(vars(result)))
    scalars = [[k, _show(v)] for k, v in fields.items() if _scalar(v)]
    lists = {k: v for k, v in fields.items() if isinstance(v, (list, tuple)) and v
             and all(isinstance(x, (int, float)) or x is None for x in v)}
    if figure is not None:
        rep.figure(figure)
    if scalars:
        rep.table(["quantity", "value"], scalars)
    if lists:
        n = max(len(v) for v in lists.values())
        rows = [[i + 1] + [v[i] if i < len(v) else None for v in lists.values()]
                for i in range(n)]
        with rep.details(f"Per layer ({n} rows)"):
            rep.table(["layer", *lists], rows)
    return rep.fragment()


def _show(v: Any) -> Any:
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "-∞"
    return v
