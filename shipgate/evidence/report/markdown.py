"""A minimal, safe Markdown renderer for operator-written `analysis.md` files.

Why our own: the report must stay self-contained and must never let a note inject markup or fetch
anything. Every character of the source is HTML-escaped first; only a small set of constructs is then
recognised: ATX headings, paragraphs, `-`/`*`/`+` and `1.` lists, `>` quotes, fenced code blocks,
`---` rules, inline code, **bold**, *italic*. Links are rendered as their text followed by the target
in parentheses, never as a live `href`, so no page ever points outside itself.
"""

from __future__ import annotations

import re
from html import escape

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_UL = re.compile(r"^\s*[-*+]\s+(.*)$")
_OL = re.compile(r"^\s*\d{1,9}[.)]\s+(.*)$")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?!\*)|(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)")
_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")


def _inline(text: str) -> str:
    """Escape a line, then apply inline markup; code spans are protected from further rules."""
    codes: list[str] = []

    def keep_code(m: re.Match[str]) -> str:
        codes.append(f"<code>{escape(m.group(1))}</code>")
        return f"\x00{len(codes) - 1}\x00"

    text = _CODE.sub(keep_code, text)
    text = escape(text)
    text = _LINK.sub(lambda m: f"{m.group(1)} (<code>{m.group(2)}</code>)" if m.group(2) else m.group(1), text)
    text = _BOLD.sub(lambda m: f"<strong>{m.group(1) or m.group(2)}</strong>", text)
    text = _ITALIC.sub(lambda m: f"<em>{m.group(1) or m.group(2)}</em>", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: codes[int(m.group(1))], text)


def render_markdown(source: str) -> str:
    """Render Markdown to an HTML fragment; raw HTML in the source shows as text."""
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[str] = []
    para: list[str] = []
    list_kind: str | None = None
    quote: list[str] = []
    i = 0

    def flush_para() -> None:
        if para:
            out.append("<p>" + " ".join(_inline(p.strip()) for p in para) + "</p>")
            para.clear()

    def close_list() -> None:
        nonlocal list_kind
        if list_kind:
            out.append(f"</{list_kind}>")
            list_kind = None

    def flush_quote() -> None:
        if quote:
            out.append("<blockquote>" + render_markdown("\n".join(quote)) + "</blockquote>")
            quote.clear()

    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush_para()
            close_list()
            flush_quote()
            marker = fence.group(1)
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].lstrip().startswith(marker):
                body.append(lines[i])
                i += 1
            out.append("<pre><code>" + escape("\n".join(body)) + "</code></pre>")
            i += 1
            continue
        if line.lstrip().startswith(">"):
            flush_para()
            close_list()
            quote.append(line.lstrip()[1:].removeprefix(" "))
            i += 1
            continue
        flush_quote()
        if not line.strip():
            flush_para()
            close_list()
        elif m := _HEADING.match(line):
            flush_para()
            close_list()
            level = len(m.group(1))
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif _RULE.match(line):
            flush_para()
            close_list()
            out.append("<hr>")
        elif (m := _UL.match(line)) or (m := _OL.match(line)):
            flush_para()
            kind = "ul" if _UL.match(line) else "ol"
            if list_kind != kind:
                close_list()
                out.append(f"<{kind}>")
                list_kind = kind
            out.append(f"<li>{_inline(m.group(1))}</li>")
        elif list_kind and line.startswith((" ", "\t")) and out[-1].endswith("</li>"):
            out[-1] = out[-1][: -len("</li>")] + " " + _inline(line.strip()) + "</li>"
        else:
            close_list()
            para.append(line)
        i += 1
    flush_para()
    close_list()
    flush_quote()
    return "\n".join(out)
