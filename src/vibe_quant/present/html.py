"""Self-contained HTML pages of figures and tables (the tearsheets of ``vq report``).

One file opens anywhere, offline: plotly.js travels inside it, gzip-compressed and base64-encoded
(4.8 MB of script becomes ~1.9 MB), and the browser inflates it with its built-in
``DecompressionStream`` before drawing the figures from their JSON. Figures are drawn when the
page loads; ``document.body.dataset.plotsReady`` is set once all are drawn (tests and the benchmark wait on it).
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import json
from collections.abc import Iterable, Sequence

import plotly.graph_objects as go

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1280px;
       padding: 16px 24px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; margin-top: 1.6em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: right; white-space: nowrap; }
th { background: #f6f6f6; position: sticky; top: 0; } td.l, th.l { text-align: left; }
.scroll { max-height: 480px; overflow: auto; border: 1px solid #eee; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 8px; }
.card { border: 1px solid #e4e4e4; border-radius: 6px; padding: 8px 10px; }
.card .k { color: #666; font-size: 0.8em; } .card .v { font-size: 1.15em; font-weight: 600; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #cf222e; font-weight: 600; } .na { color: #888; }
pre { background: #f6f8fa; padding: 10px; overflow: auto; font-size: 0.85em; }
.warn { background: #fff8c5; padding: 6px 10px; border-radius: 4px; }
.vq-figure { min-height: 380px; }
"""

_LOADER = """
(async () => {
  const status = document.getElementById("vq-status");
  try {
    const packed = document.getElementById("vq-plotly").textContent.trim();
    const bytes = Uint8Array.from(atob(packed), c => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    const source = await new Response(stream).text();
    const script = document.createElement("script");
    script.textContent = source;
    document.head.appendChild(script);
    for (const el of document.querySelectorAll("div.vq-figure")) {
      const fig = JSON.parse(document.getElementById(el.dataset.spec).textContent);
      await Plotly.newPlot(el, fig.data, fig.layout, {responsive: true, displaylogo: false});
    }
    status.remove();
    document.body.dataset.plotsReady = "1";
  } catch (err) {
    status.textContent = "The figures could not be drawn (" + err + "); this page needs a browser with " +
      "DecompressionStream (Chrome 80+, Firefox 113+, Safari 16.4+).";
  }
})();
"""


@functools.cache
def packed_plotly() -> str:
    """plotly.js (the version plotly.py ships), gzip-compressed and base64-encoded."""
    from plotly.offline import get_plotlyjs

    return base64.b64encode(gzip.compress(get_plotlyjs().encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")


def esc(value) -> str:
    return html.escape(str(value))


def figure_block(key: str, fig: go.Figure) -> str:
    """A placeholder div and the figure's JSON (``</`` escaped so it cannot close the script)."""
    spec = fig.to_json(validate=False).replace("</", "<\\/")
    return (f'<div class="vq-figure" id="fig-{esc(key)}" data-spec="spec-{esc(key)}"></div>\n'
            f'<script type="application/json" id="spec-{esc(key)}">{spec}</script>')  # fmt: skip


def table(headers: Sequence[str], rows: Iterable[Sequence], left: Iterable[int] = (0,), scroll: bool = False,
          raw: bool = False) -> str:  # fmt: skip
    """An HTML table; cells are escaped unless `raw` (cells already HTML)."""
    left = set(left)
    cls = [' class="l"' if i in left else "" for i in range(len(headers))]
    head = "".join(f"<th{c}>{esc(h)}</th>" for c, h in zip(cls, headers, strict=True))
    body = "\n".join(
        "<tr>" + "".join(f"<td{c}>{v if raw else esc(v)}</td>" for c, v in zip(cls, row, strict=True)) + "</tr>"
        for row in rows
    )
    out = f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"
    return f'<div class="scroll">{out}</div>' if scroll else out


def cards(items: Iterable[tuple[str, str]]) -> str:
    """Metric cards: label above value."""
    inner = "".join(
        f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div></div>' for k, v in items
    )
    return f'<div class="grid">{inner}</div>'


def badge(passed) -> str:
    """PASS / FAIL / - as coloured HTML."""
    if passed is None:
        return '<span class="na">-</span>'
    return '<span class="pass">PASS</span>' if passed else '<span class="fail">FAIL</span>'


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str]]) -> str:
    """The whole document: title, then each ``(heading, html)`` section, then the embedded plotly.js and loader."""
    body = "\n".join(f"<h2>{esc(h)}</h2>\n{content}" if h else content for h, content in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body>
<h1>{esc(title)}</h1><p class="sub">{esc(subtitle)}</p>
<p id="vq-status" class="warn">Drawing the figures...</p>
{body}
<script type="text/plain" id="vq-plotly">{packed_plotly()}</script>
<script>{_LOADER}</script>
</body></html>
"""


def json_block(doc) -> str:
    return f"<pre>{esc(json.dumps(doc, indent=2, default=str))}</pre>"
