"""A self-contained HTML report: headings, paragraphs, tables and matplotlib figures (embedded as
base64 PNG), written atomically. No JavaScript, no external files, so it opens anywhere.

>>> rep = HtmlReport("Glorot vs He")
>>> rep.heading("Results")
>>> rep.table(["init", "accuracy"], [["glorot", 0.91], ["he", 0.95]])
>>> rep.save("runs/x/report.html")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import numbers
from pathlib import Path
from typing import Any

from ..util.atomic import atomic_write_text

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:1.8em}
table{border-collapse:collapse;margin:1em 0;font-size:0.92em}
th,td{border:1px solid #ccc;padding:4px 9px;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figcaption{font-size:0.9em;color:#555}
img{max-width:100%;height:auto}
.note{background:#fff8e0;border-left:4px solid #e0b000;padding:0.5em 1em}
pre{background:#f6f6f6;padding:0.6em;overflow-x:auto}
.meta{color:#777;font-size:0.85em}
"""


def pyplot():
    """``matplotlib.pyplot``, with the non-interactive Agg backend unless one was chosen."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return html.escape(str(v))
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        x = float(v)
        if x != x:
            return "nan"
        if x == 0 or 1e-3 <= abs(x) < 1e5:
            return f"{x:.4g}"
        return f"{x:.3e}"
    return html.escape(str(v))


class HtmlReport:
    """Build a report section by section, then :meth:`save` it (atomically)."""

    def __init__(self, title: str, subtitle: str | None = None):
        self.title = title
        self._parts: list[str] = [f"<h1>{html.escape(title)}</h1>"]
        if subtitle:
            self._parts.append(f"<p>{html.escape(subtitle)}</p>")
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        from .. import __version__

        self._parts.append(f'<p class="meta">initlab {__version__} &middot; {stamp}</p>')

    def heading(self, text: str, level: int = 2) -> None:
        level = min(max(int(level), 2), 4)
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str, *, note: bool = False) -> None:
        cls = ' class="note"' if note else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def preformatted(self, text: str) -> None:
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
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        b64 = base64.b64encode(buf.getvalue()).decode("ascii")
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._parts.append(f'<figure><img alt="{html.escape(caption or "figure")}" '
                           f'src="data:image/png;base64,{b64}">{cap}</figure>')

    def render(self) -> str:
        body = "\n".join(self._parts)
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>"
                f"<body>\n{body}\n</body></html>\n")

    def save(self, path: str | Path) -> Path:
        """Write the report atomically (a crash never leaves a half-written file)."""
        path = Path(path)
        atomic_write_text(path, self.render())
        return path
