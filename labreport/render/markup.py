"""Format-aware building blocks for the report templates.

The templates are written once, in Markdown. What Markdown cannot say well (tables of
code, collapsible evidence, badges, the inline SVG) is produced by these helpers, which
know the output format: for ``md`` they emit Markdown (GitHub-flavoured, with
``<details>``), for ``html`` they emit finished HTML and leave a placeholder comment in
the Markdown that :meth:`Markup.restore` swaps back after python-markdown has run — so
nothing in them is ever re-interpreted as Markdown.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Optional, Sequence

from labreport.render import escape as esc
from labreport.render.escape import Safe

# every value below goes through labreport.render.escape: esc.md_text / esc.md_code_span for
# Markdown, esc.html_text for HTML
html_text = esc.html_text


class Code(str):
    """A cell value shown as code."""


class Badge(str):
    """A status badge: pass / fail / warn / unknown (the text is already translated)."""

    status: str

    def __new__(cls, status: str, text: str) -> "Badge":
        obj = super().__new__(cls, text)
        obj.status = status
        return obj


def _md_text(s: Any) -> str:
    return str(esc.md_text(s, inline=True))


def md_code_span(s: str, in_table: bool = False) -> str:
    return str(esc.md_code_span(s, in_table=in_table))


def fence(text: str, lang: str = "") -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    f = "`" * max(3, longest + 1)
    return f"{f}{lang}\n{text.rstrip()}\n{f}"


BADGE_MD = {"pass": "✔", "fail": "✘", "warn": "⚠", "unknown": "?"}


class Markup:
    def __init__(self, fmt: str, *, open_evidence: bool = False) -> None:
        if fmt not in ("md", "html"):
            raise ValueError(fmt)
        self.fmt = fmt
        self.open_evidence = open_evidence  # PDF: paper cannot be clicked open
        self.stash: list[str] = []
        # placeholders carry a per-render secret, so text in a value cannot name one
        self.nonce = esc.placeholder_nonce()
        self._placeholder = re.compile(rf"(?:<p>)?LRSTASH{self.nonce}N(\d+)E(?:</p>)?")

    # -- placeholders (html only)
    def _raw(self, html_fragment: str) -> Safe:
        """Finished HTML (built here, every value escaped) kept out of the Markdown pass."""
        self.stash.append(html_fragment)
        return Safe(f"\n\nLRSTASH{self.nonce}N{len(self.stash) - 1}E\n\n")

    def raw_html(self, html_fragment: str) -> Safe:
        """A fragment of the template's own HTML (html format only)."""
        return self._raw(html_fragment)

    @staticmethod
    def html(v: Any) -> str:
        """A value as HTML text, for a template's own HTML fragment."""
        return html_text(v)

    def restore(self, html_out: str) -> str:
        return self._placeholder.sub(lambda m: self.stash[int(m.group(1))], html_out)

    # -- inline values
    def cell(self, v: Any) -> str:
        if v is None or v == "":
            return "" if self.fmt == "md" else ""
        if isinstance(v, Badge):
            if self.fmt == "md":
                return f"{BADGE_MD.get(v.status, '')} **{_md_text(str(v))}**"
            return f'<span class="badge {html_text(v.status)}">{html_text(str(v))}</span>'
        if isinstance(v, Code):
            if self.fmt == "md":
                return md_code_span(str(v), in_table=True)
            return f"<code>{html_text(str(v))}</code>"
        if isinstance(v, (list, tuple)):
            sep = "<br>" if self.fmt == "html" else "<br>"
            return sep.join(self.cell(x) for x in v)
        if self.fmt == "md":
            return _md_text(str(v))
        return html_text(str(v))

    def code(self, v: Any) -> Safe:
        """Inline code in prose."""
        if v is None:
            return Safe("")
        return esc.md_code_span(str(v))

    def text(self, v: Any) -> Safe:
        """Plain text in prose, escaped for Markdown."""
        if v is None:
            return Safe("")
        return esc.md_text(v)

    # -- blocks
    def table(self, headers: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> Safe:
        rows = list(rows)
        if self.fmt == "md":
            out = ["| " + " | ".join(_md_text(h) for h in headers) + " |",
                   "|" + "|".join("---" for _ in headers) + "|"]
            for r in rows:
                out.append("| " + " | ".join(self.cell(c) or " " for c in r) + " |")
            return Safe("\n" + "\n".join(out) + "\n")
        head = "".join(f"<th>{html_text(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(_td(self.cell(c)) for c in r) + "</tr>" for r in rows)
        return self._raw(f'<div class="tablewrap"><table class="{html_text(cls)}"><thead><tr>{head}</tr></thead>'
                         f"<tbody>{body}</tbody></table></div>")

    def pre(self, text: str, lang: str = "") -> Safe:
        if self.fmt == "md":
            return Safe("\n" + fence(text, lang) + "\n")
        return self._raw(f'<pre class="{html_text(lang)}"><code>{html_text(text.rstrip())}</code></pre>')

    def evidence(self, summary: str, command: Optional[str], text: str, *, note: str = "",
                 open_: Optional[bool] = None) -> Safe:
        """A collapsible block: the command and its (trimmed) output. Open when ``open_``,
        or (``open_`` None) when the output is meant for paper."""
        if open_ is None:
            open_ = self.open_evidence
        body = (f"$ {command}\n" if command else "") + (text.rstrip() if text else "")
        if self.fmt == "md":
            return Safe(f"\n<details{' open' if open_ else ''}><summary>{html_text(summary)}</summary>\n\n"
                        f"{fence(body)}\n\n{_md_text(note) if note else ''}\n</details>\n")
        note_html = f'<p class="evnote">{html_text(note)}</p>' if note else ""
        return self._raw(f'<details class="evidence"{" open" if open_ else ""}><summary>{html_text(summary)}'
                         f"</summary><pre><code>{html_text(body)}</code></pre>{note_html}</details>")

    def note(self, kind: str, text: str) -> Safe:
        """A call-out: kind is 'missing' (not collected), 'warn' or 'info'."""
        if self.fmt == "md":
            mark = {"missing": "⚠", "warn": "⚠", "info": "ℹ"}.get(kind, "")
            return Safe(f"\n> {mark} {_md_text(text)}\n")
        return self._raw(f'<div class="callout {html_text(kind)}">{html_text(text)}</div>')

    def figure(self, md_image: str, md_alt: str, svg: Optional[str], caption: str, extra_md: str = "") -> Safe:
        if self.fmt == "md":
            return Safe(f"\n![{md_alt}]({md_image})\n\n{extra_md}\n")
        if svg is None:
            return self._raw(f'<figure class="topology"><figcaption>{html_text(caption)}</figcaption></figure>')
        return self._raw(f'<figure class="topology" id="topology">{svg}<figcaption>{html_text(caption)}</figcaption></figure>')


# a cell that is one number alone (a PID, a count, a port): kept whole (style.css ``td.num``),
# where a narrow column would break ``5047`` into ``504`` and ``7``
_NUMBER = re.compile(r"[0-9]{1,12}")


def _td(cell: str) -> str:
    return f'<td class="num">{cell}</td>' if _NUMBER.fullmatch(cell) else f"<td>{cell}</td>"
