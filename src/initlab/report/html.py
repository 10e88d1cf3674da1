"""A self-contained HTML report: verdict, findings, figures (embedded as base64 PNG), folded
tables and a Reproduce command, written atomically. No JavaScript, no external files, so it opens
anywhere, offline.

One design for every page (``compare``, ``demo``, ``reproduce``, the doctor's page, and the
notebook displays of :mod:`initlab.report.notebook`):

1. the verdict first (:meth:`HtmlReport.verdict`): a few plain sentences and the one picture that
   shows them;
2. findings as wrapped text with their severity (:meth:`HtmlReport.findings`);
3. per-layer statistics as pictures (:mod:`initlab.report.figures`), the tables behind them
   folded into ``<details>`` (:meth:`HtmlReport.details`);
4. a Reproduce command that works as pasted (:meth:`HtmlReport.command`).

The page fits 1280 px without horizontal scrolling anywhere: text, tables and ``<pre>`` blocks
wrap, images shrink to the column.

>>> rep = HtmlReport("Glorot vs He")
>>> rep.verdict(["he trained fastest: 95% test accuracy after 3 epochs."])
>>> with rep.details("Results table"):
...     rep.table(["init", "accuracy"], [["glorot", 0.91], ["he", 0.95]])
>>> rep.save("runs/x/report.html")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import html
import io
import numbers
from pathlib import Path
from typing import Any

from ..util.atomic import atomic_write_text

SEVERITIES = ("error", "warning", "info", "ok")

# Every rule is scoped under .ilr so the same markup can sit inside a Jupyter page.
_CSS = """
.ilr{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1160px;
margin:0 auto;padding:0 16px;color:#222;line-height:1.45;overflow-wrap:anywhere}
.ilr *{box-sizing:border-box;max-width:100%}
.ilr h1{font-size:1.6em;border-bottom:2px solid #444;margin:0.6em 0 0.3em}
.ilr h2{font-size:1.25em;border-bottom:1px solid #bbb;margin-top:1.6em}
.ilr h3{font-size:1.05em;margin-top:1.2em}
.ilr table{border-collapse:collapse;margin:0.6em 0;font-size:0.9em}
.ilr th,.ilr td{border:1px solid #ccc;padding:3px 8px;text-align:right;vertical-align:top}
.ilr th{background:#f0f0f0}.ilr td:first-child,.ilr th:first-child{text-align:left}
.ilr caption{caption-side:bottom;font-size:0.85em;color:#555;text-align:left}
.ilr figure{margin:0.8em 0}.ilr figcaption{font-size:0.9em;color:#555}
.ilr img{height:auto;display:block}
.ilr pre,.ilr code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:0.88em}
.ilr pre{background:#f6f6f6;padding:0.6em;white-space:pre-wrap;overflow-wrap:anywhere;
overflow-x:hidden}
.ilr .note{background:#fff8e0;border-left:4px solid #e0b000;padding:0.5em 1em}
.ilr .meta{color:#777;font-size:0.85em}
.ilr .verdict{border:2px solid #0072B2;background:#f2f8fc;padding:0.6em 1em;margin:0.8em 0}
.ilr .verdict h2{border:none;margin:0.2em 0 0.4em}
.ilr .verdict ul{margin:0.3em 0 0.6em;padding-left:1.3em}
.ilr .finding{border-left:6px solid #999;padding:0.35em 0.8em;margin:0.4em 0;background:#fafafa}
.ilr .sev{font-weight:bold;text-transform:uppercase;font-size:0.8em;margin-right:0.5em}
.ilr .finding.error{border-color:#D55E00}.ilr .finding.error .sev{color:#A33D00}
.ilr .finding.warning{border-color:#E69F00}.ilr .finding.warning .sev{color:#8A5F00}
.ilr .finding.info{border-color:#56B4E9}.ilr .finding.info .sev{color:#1F6F99}
.ilr .finding.ok{border-color:#009E73}.ilr .finding.ok .sev{color:#00664A}
.ilr details{margin:0.6em 0;border:1px solid #ddd;padding:0.3em 0.8em}
.ilr summary{cursor:pointer;font-weight:600}
"""


def pyplot():
    """``matplotlib.pyplot``, with the non-interactive Agg backend unless one was chosen."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "—" if v is None else html.escape(str(v))
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        x = float(v)
        if x != x:
            return "—"
        if x == 0 or 1e-3 <= abs(x) < 1e5:
            return f"{x:.4g}"
        return f"{x:.3e}"
    return html.escape(str(v))


def figure_png(fig, *, dpi: int = 100) -> bytes:
    """The PNG bytes of a matplotlib figure (which is closed)."""
    plt = pyplot()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def img_tag(png: bytes, alt: str) -> str:
    b64 = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


class HtmlReport:
    """Build a report section by section, then :meth:`save` it (atomically) or take
    :meth:`fragment` (for a notebook)."""

    def __init__(self, title: str, subtitle: str | None = None, *, stamp: bool = True):
        self.title = title
        self._parts: list[str] = [f"<h1>{html.escape(title)}</h1>"]
        self._stack: list[list[str]] = []
        if subtitle:
            self._parts.append(f"<p>{html.escape(subtitle)}</p>")
        if stamp:
            when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            from .. import __version__

            self._parts.append(f'<p class="meta">initlab {__version__} &middot; {when}</p>')
        self._header = len(self._parts)  # where a verdict added afterwards goes (the top)

    def raw(self, markup: str) -> None:
        """Append trusted markup (built by this package)."""
        self._parts.append(markup)

    def heading(self, text: str, level: int = 2) -> None:
        level = min(max(int(level), 2), 4)
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str, *, note: bool = False) -> None:
        cls = ' class="note"' if note else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def bullets(self, items: list[str]) -> None:
        self._parts.append("<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in items)
                           + "</ul>")

    def preformatted(self, text: str) -> None:
        """A ``<pre>`` block; its lines wrap at the column's edge (no horizontal scrolling)."""
        self._parts.append(f"<pre>{html.escape(text)}</pre>")

    def table(self, headers: list[str], rows: list[list[Any]], caption: str | None = None) -> None:
        out = ["<table>"]
        if caption:
            out.append(f"<caption>{html.escape(caption)}</caption>")
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in headers) + "</tr>")
        for row in rows:
            out.append("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>")
        out.append("</table>")
        self._parts.append("".join(out))

    def figure(self, fig, caption: str | None = None, *, dpi: int = 100) -> None:
        """Embed a matplotlib figure as a PNG (and close it)."""
        self._parts.append(_figure_markup(figure_png(fig, dpi=dpi), caption))

    def verdict(self, lines: list[str], fig=None, caption: str | None = None, *,
                title: str = "Verdict") -> None:
        """The page's answer, first: plain sentences and the one picture that shows them."""
        body = [f"<h2>{html.escape(title)}</h2>"]
        if lines:
            body.append("<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in lines) + "</ul>")
        if fig is not None:
            body.append(_figure_markup(figure_png(fig), caption))
        self._parts.insert(self._header, '<section class="verdict" id="verdict">' + "".join(body)
                           + "</section>")

    def lead(self, lines: list[str], *, fold_rows: int = 8, title: str = "Verdict") -> None:
        """Put a verdict at the top of a page built in another order: ``lines`` and the page's
        first figure (moved there); tables of more than ``fold_rows`` rows are folded into
        ``<details>`` (summary: their caption)."""
        fig = next((i for i, p in enumerate(self._parts) if p.startswith("<figure>")), None)
        picture = self._parts.pop(fig) if fig is not None else ""
        for i, part in enumerate(self._parts):
            if part.startswith("<table>") and part.count("<tr>") - 1 > fold_rows:
                cap = part.split("<caption>", 1)[1].split("</caption>", 1)[0] \
                    if "<caption>" in part else "Table"
                self._parts[i] = (f"<details><summary>{cap} ({part.count('<tr>') - 1} rows)"
                                  f"</summary>{part}</details>")
        body = [f"<h2>{html.escape(title)}</h2>"]
        if lines:
            body.append("<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in lines) + "</ul>")
        body.append(picture)
        self._parts.insert(self._header, '<section class="verdict" id="verdict">'
                           + "".join(body) + "</section>")

    def findings(self, items: list[tuple[str, str]], *, empty: str | None = None) -> None:
        """Findings as wrapped text, each with its severity (``error``, ``warning``, ``info``
        or ``ok``): ``[(severity, text), ...]``, most severe first."""
        rank = {s: i for i, s in enumerate(SEVERITIES)}
        items = sorted(items, key=lambda it: rank.get(it[0], len(rank)))
        if not items and empty:
            items = [("ok", empty)]
        for sev, text in items:
            cls = sev if sev in rank else "info"
            self._parts.append(f'<div class="finding {cls}"><span class="sev">'
                               f'{html.escape(sev)}</span>{html.escape(text)}</div>')

    @contextlib.contextmanager
    def details(self, summary: str, *, open: bool = False):
        """Fold what is added inside the ``with`` block into ``<details>``."""
        self._stack.append(self._parts)
        self._parts = []
        try:
            yield self
        finally:
            inner, self._parts = self._parts, self._stack.pop()
            attr = " open" if open else ""
            self._parts.append(f"<details{attr}><summary>{html.escape(summary)}</summary>"
                               + "\n".join(inner) + "</details>")

    def command(self, text: str, *, note: str | None = None) -> None:
        """The Reproduce section: a command that works as pasted (in a wrapping block)."""
        self.heading("Reproduce")
        if note:
            self.paragraph(note)
        self._parts.append(f'<pre class="command">{html.escape(text)}</pre>')

    def fragment(self) -> str:
        """The report as one ``<div>`` with its own scoped style (for Jupyter)."""
        return f'<div class="ilr"><style>{_CSS}</style>' + "\n".join(self._parts) + "</div>"

    def render(self) -> str:
        body = "\n".join(self._parts)
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>{html.escape(self.title)}</title><style>body{{margin:0}}{_CSS}</style>"
                f"</head><body><main class=\"ilr\">\n{body}\n</main></body></html>\n")

    def _repr_html_(self) -> str:
        return self.fragment()

    def save(self, path: str | Path) -> Path:
        """Write the report atomically (a crash never leaves a half-written file)."""
        path = Path(path)
        atomic_write_text(path, self.render())
        return path


def _figure_markup(png: bytes, caption: str | None) -> str:
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f"<figure>{img_tag(png, caption or 'figure')}{cap}</figure>"
