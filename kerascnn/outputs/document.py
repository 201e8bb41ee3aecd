"""A small document model and its two renderings, for the report.

A document is a list of `Section`s of blocks (`Paragraph`, `Table`, `Image`, `Row` of images and
tables side by side). `render_html` makes one self-contained page (inline CSS, figures as data: URIs,
no scripts, no external references); `render_markdown` the same text with figures as links to the
PNG files beside it.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

__all__ = ["Paragraph", "Table", "Image", "Row", "Section", "render_html", "render_markdown", "render_text"]


# ---------------------------------------------------------------------------- the document
@dataclass
class Paragraph:
    text: str
    note: bool = False            # a highlighted conclusion


@dataclass
class Table:
    header: list[str]
    rows: list[list]
    caption: str = ""
    numeric: tuple = ()           # indices of right-aligned columns
    marked: tuple = ()            # (row, column) cells to show in red (mistakes)


@dataclass
class Image:
    name: str                     # the PNG's file name in the output folder
    png: bytes
    caption: str
    max_width: int | None = None  # CSS pixels, for figures that read well smaller than the page


@dataclass
class Row:
    """Images and tables side by side in HTML (one after another in Markdown)."""
    items: list


@dataclass
class Section:
    id: str
    title: str
    blocks: list = field(default_factory=list)


# ---------------------------------------------------------------------------- rendering
CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       max-width: 1080px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 22px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; margin-top: 40px; }
.meta { color: #57606a; font-size: 13px; margin: 0 0 16px; }
nav ol { columns: 2; font-size: 14px; padding-left: 22px; }
a { color: #0969da; }
p.note { background: #f6f8fa; border-left: 4px solid #0969da; padding: 8px 12px; }
table { border-collapse: collapse; margin: 12px 0 18px; font-size: 13.5px; }
caption { caption-side: top; text-align: left; color: #57606a; padding-bottom: 4px; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 9px; vertical-align: top; }
th { background: #f6f8fa; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 600; }
td.marked { color: #cf222e; font-weight: 600; }
code { white-space: nowrap; font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f6f8fa;
       padding: 1px 4px; border-radius: 4px; }
figure { margin: 14px 0 22px; }
.row { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.row > figure { flex: 1 1 0; min-width: 340px; margin-top: 8px; }
.row > table { flex: 0 0 auto; margin-top: 8px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: 13px; margin-top: 4px; }
"""


def _cell(value) -> str:
    return "—" if value is None else str(value)


def _text(text: str) -> str:
    """Escaped text, with `code` spans set in monospace (an unpaired backtick is left as it is)."""
    parts = html.escape(text).split("`")
    if len(parts) % 2 == 0:
        return html.escape(text)
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _html_block(block) -> str:
    esc = html.escape
    if isinstance(block, Paragraph):
        return f'<p class="note">{_text(block.text)}</p>' if block.note else f"<p>{_text(block.text)}</p>"
    if isinstance(block, Table):
        rows = [f"<caption>{_text(block.caption)}</caption>"] if block.caption else []
        rows.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in block.header) + "</tr>")
        marked = set(block.marked)
        for n, row in enumerate(block.rows):
            cells = []
            for i, v in enumerate(row):
                kinds = " ".join(k for k, on in (("num", i in block.numeric), ("marked", (n, i) in marked)) if on)
                cells.append(f'<td class="{kinds}">{esc(_cell(v))}</td>' if kinds else f"<td>{_text(_cell(v))}</td>")
            total = ' class="total"' if str(row[0]).lower() == "total" else ""
            rows.append(f"<tr{total}>{''.join(cells)}</tr>")
        return "<table>" + "".join(rows) + "</table>"
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        style = f' style="max-width: {block.max_width}px"' if block.max_width else ""
        return (f'<figure{style}><img src="data:image/png;base64,{data}" alt="{esc(block.caption, quote=True)}">'
                f"<figcaption>{_text(block.caption)}</figcaption></figure>")
    if isinstance(block, Row):
        return '<div class="row">' + "".join(_html_block(item) for item in block.items) + "</div>"
    raise TypeError(f"unknown block {type(block).__name__}")


def render_html(title: str, meta: list[str], sections: list[Section]) -> str:
    """One HTML document: inline CSS, figures as data: URIs, no scripts, no external references."""
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{esc(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>", f"<h1>{esc(title)}</h1>"]
    out += [f'<p class="meta">{esc(line)}</p>' for line in meta]
    out.append("<nav><ol>" + "".join(f'<li><a href="#{s.id}">{esc(s.title)}</a></li>' for s in sections)
               + "</ol></nav>")
    for section in sections:
        out.append(f'<section id="{section.id}">')
        out.append(f"<h2>{esc(section.title)}</h2>")
        out += [_html_block(block) for block in section.blocks]
        out.append("</section>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _md(text) -> str:
    return _cell(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(title: str, meta: list[str], sections: list[Section]) -> str:
    """The same report in Markdown; figures link to the PNG files beside it."""
    out = [f"# {title}", ""] + [f"_{line}_  " for line in meta] + [""]
    out += [f"{i}. [{s.title}](#{s.id})" for i, s in enumerate(sections, start=1)] + [""]
    for section in sections:
        out += [f'<a id="{section.id}"></a>', "", f"## {section.title}", ""]
        blocks = [item for block in section.blocks for item in (block.items if isinstance(block, Row) else [block])]
        for block in blocks:
            if isinstance(block, Paragraph):
                out += [f"> {block.text}" if block.note else block.text, ""]
            elif isinstance(block, Table):
                if block.caption:
                    out += [f"**{_md(block.caption)}**", ""]
                out.append("| " + " | ".join(_md(h) for h in block.header) + " |")
                out.append("|" + "|".join("---:" if i in block.numeric else "---" for i in range(len(block.header))) + "|")
                out += ["| " + " | ".join(_md(v) for v in row) + " |" for row in block.rows]
                out.append("")
            elif isinstance(block, Image):
                out += [f"![{_md(block.caption)}]({block.name})", "", f"_{block.caption}_", ""]
    return "\n".join(out)


def render_text(table: Table) -> str:
    """A table as aligned plain text for the terminal: the caption, the header, a rule, the rows;
    marked cells (mistakes) get a `*`, explained below the table."""
    marked = set(table.marked)
    cells = [[_cell(v) + ("*" if (n, i) in marked else "") for i, v in enumerate(row)]
             for n, row in enumerate(table.rows)]
    widths = [max([len(h)] + [len(r[i]) for r in cells if i < len(r)]) for i, h in enumerate(table.header)]

    def line(values):
        return "  ".join(v.rjust(w) if i in table.numeric else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    out = [table.caption] if table.caption else []
    out += [line(table.header), "-" * len(line(table.header))] + [line(r) for r in cells]
    if marked:
        out.append("* marked (see the caption)")
    return "\n".join(out)
