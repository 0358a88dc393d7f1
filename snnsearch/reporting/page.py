"""The two renderings of a sweep report: one self-contained HTML page (inline CSS, figures as
``data:image/png;base64`` URIs, no script, no CDN: it opens offline and survives being mailed or
logged as an MLflow artifact) and a Markdown summary (``report.md``, the MLflow parent run's
description). A report is a list of sections; each holds paragraphs, tables and figures.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
from collections.abc import Sequence
from typing import Any

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d232a;
background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:18px 28px 60px;background:#fff}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde;
padding-bottom:4px}
p.lead{color:#444;margin:2px 0 10px}
nav a{margin-right:12px;font-size:13px}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0 12px}
th,td{border:1px solid #d6dae0;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;border:1px solid #e3e6ea;margin:6px 0}
.note{color:#555;font-size:12.5px}.wide{overflow-x:auto}
.pill{display:inline-block;padding:1px 8px;border-radius:9px;background:#eef1f5;margin-right:6px;
font-size:12.5px}
"""


@dataclasses.dataclass
class Table:
    """A table: column headers and rows of cells (numbers are formatted to 4 significant digits)."""

    columns: list[str]
    rows: list[list[Any]]


@dataclasses.dataclass
class Section:
    """One report section (``id`` is its HTML anchor)."""

    id: str
    title: str
    blocks: list[str | Table | tuple[str, bytes]] = dataclasses.field(default_factory=list)

    def text(self, paragraph: str) -> Section:
        self.blocks.append(paragraph)
        return self

    def table(self, table: Table | None) -> Section:
        if table is not None and table.rows:
            self.blocks.append(table)
        return self

    def figure(self, name: str, data: bytes | None) -> Section:
        if data:
            self.blocks.append((name, data))
        return self


def cell(value: Any) -> str:
    """Plain-text rendering of a table cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if hasattr(value, "item"):
        return cell(value.item())
    return str(value)


def to_html(title: str, lead: str, sections: Sequence[Section]) -> str:
    """The whole page as one string."""
    nav = " ".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    parts = [(f"<!doctype html><html lang=en><head><meta charset=utf-8><title>"
              f"{html.escape(title)}</title><style>{CSS}</style></head><body><main>"),
             f"<h1>{html.escape(title)}</h1><p class=lead>{lead}</p><nav>{nav}</nav>"]
    for sec in sections:
        parts.append(f'<h2 id="{sec.id}">{html.escape(sec.title)}</h2>')
        for block in sec.blocks:
            if isinstance(block, Table):
                parts.append(_html_table(block))
            elif isinstance(block, tuple):
                name, data = block
                b64 = base64.b64encode(data).decode()
                parts.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{b64}">')
            else:
                parts.append(f"<p>{block}</p>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = "".join(
            f"<td class=num>{cell(v)}</td>" if isinstance(v, int | float) and not isinstance(
                v, bool) else f"<td>{html.escape(cell(v))}</td>" for v in row)
        body.append(f"<tr>{cells}</tr>")
    return f"<div class=wide><table><tr>{head}</tr>{''.join(body)}</table></div>"


def to_markdown(title: str, lead: str, sections: Sequence[Section]) -> str:
    """Markdown of the text and tables (figures are named, not embedded)."""
    out = [f"# {title}", "", _strip_tags(lead), ""]
    for sec in sections:
        out += [f"## {sec.title}", ""]
        for block in sec.blocks:
            if isinstance(block, Table):
                out += _md_table(block) + [""]
            elif isinstance(block, tuple):
                continue
            else:
                out += [_strip_tags(block), ""]
    return "\n".join(out).rstrip() + "\n"


def _md_table(table: Table) -> list[str]:
    def esc(v: Any) -> str:
        return cell(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(c) for c in table.columns) + " |",
             "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in table.rows]
    return lines


def _strip_tags(text: str) -> str:
    import re

    text = re.sub(r"<code>(.*?)</code>", r"`\1`", text)
    text = re.sub(r"<b>(.*?)</b>", r"**\1**", text)
    return html.unescape(re.sub(r"<[^>]+>", "", text))
