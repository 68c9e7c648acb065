"""The one place values become report text: escaping for Markdown, HTML and Graphviz.

Everything a report shows that came from a node, a paste or a snapshot (names, commands,
annotations, error messages) is *text*: it must read back as the same characters and never
become markup. The report is written in Markdown and the HTML is converted from it, so the
defence is layered, each layer sufficient for what it guards:

1. :func:`finalize` is the Jinja ``finalize`` hook: every ``{{ value }}`` in a template that
   is not already :class:`Safe` (built by :mod:`labreport.render.markup` or by this module)
   is escaped as Markdown text. A template cannot forget to escape: raw output needs an
   explicit ``Safe``.
2. :func:`md_text` / :func:`md_code_span` escape for Markdown; the Markdown escapes are
   chosen so the result is also inert as HTML (``<`` ``>`` ``&`` become entities) and
   cannot open a link or image (``[`` ``]`` escaped).
3. :func:`markdown_to_html` converts with raw HTML switched off (Python-Markdown's HTML
   block and inline HTML processors removed, so ``<script>`` in the Markdown is shown as
   text) and a tree pass that drops every link whose target is not a same-page anchor or a
   plain relative path, and every image.
4. :data:`CSP`, the page's Content-Security-Policy: no script of any kind, no frames, no
   loads from anywhere but ``data:`` images — so even a mistake in 1-3 cannot run script or
   print a local file into the PDF.

Graphviz: :func:`dot_text` makes a string a quoted DOT string (never an HTML-like
``<...>`` label, backslash escapes such as ``\\N`` kept literal); :data:`DOT_FORBIDDEN`
lists the attributes that would make links or load files, which the diagram never sets.
"""

from __future__ import annotations

import html as _html
import re
import secrets
import xml.etree.ElementTree as etree
from typing import Any

import graphviz
from markupsafe import Markup as Safe

__all__ = ["Safe", "CSP", "term_text", "term_markup", "md_text", "md_code_span", "html_text", "finalize", "markdown_to_html", "dot_text",
           "DOT_FORBIDDEN", "safe_href", "placeholder_nonce", "mermaid_text"]

# No script, no frames/objects, no fetches; images only inline (data:), styles only inline.
CSP = ("default-src 'none'; script-src 'none'; object-src 'none'; frame-src 'none'; child-src 'none'; "
       "img-src data:; style-src 'unsafe-inline'; font-src data:; connect-src 'none'; media-src 'none'; "
       "base-uri 'none'; form-action 'none'")

_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # C0 (ESC too) and C1 (CSI \x9b) controls


def _clean(s: str) -> str:
    """Control characters (terminal escapes, NUL) shown as U+FFFD, \r\n as \n."""
    return _CTRL.sub("\ufffd", s.replace("\r\n", "\n").replace("\r", "\n"))


# A value holding none of these is its own Markdown text (md_text) or HTML text (html_text):
# most values of a report (names, addresses, states) skip every substitution below.
_MD_PLAIN = re.compile(r"[\x00-\x1f\x7f-\x9f&<>\\`*\[\]|_]")
_HTML_PLAIN = re.compile(r"[\x00-\x1f\x7f-\x9f&<>\"']")
_MD_SPECIAL = re.compile(r"[\\`*\[\]|]")
_MD_UNDERSCORE = re.compile(r"(^|\W)_|_(\W|$)")
_MD_LINE_MARK = re.compile(r"\n([ \t]*)([#+-])")
_MD_LINE_NUMBER = re.compile(r"\n([ \t]*\d+)\.")


def md_text(v: Any, *, inline: bool = False) -> Safe:
    """``v`` as literal Markdown text (and inert HTML). ``inline``: newlines become spaces
    (table cells, headings)."""
    if v is None:
        return Safe("")
    s = str(v)
    if not _MD_PLAIN.search(s):
        return Safe(s)
    s = _clean(s)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Backslash-escape what Markdown would read as syntax (only characters Python-Markdown
    # and CommonMark both accept escaped): ``_`` only where it could open emphasis, and
    # ``#`` ``+`` ``-`` ``1.`` only at the start of a line inside the value (where the value
    # starts, a template's own line, such syntax is only a heading or list: not live).
    s = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), s)
    s = _MD_UNDERSCORE.sub(lambda m: (m.group(1) or "") + "\\_" + (m.group(2) or ""), s)
    s = _MD_LINE_MARK.sub(lambda m: "\n" + m.group(1) + "\\" + m.group(2), s)
    s = _MD_LINE_NUMBER.sub(lambda m: "\n" + m.group(1) + "\\.", s)
    if inline:
        s = s.replace("\n", " ")
    return Safe(s)


def md_code_span(v: Any, in_table: bool = False) -> Safe:
    """``v`` as a Markdown code span (literal in every Markdown); ``in_table`` escapes ``|``."""
    s = _clean(str(v)).replace("\n", " ")
    if in_table:
        s = s.replace("|", "\\|")
    ticks = "`"
    while ticks in s:
        ticks += "`"
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return Safe(f"{ticks}{pad}{s}{pad}{ticks}" if s else "")


def html_text(v: Any) -> str:
    """``v`` as HTML text or attribute value."""
    if v is None:
        return ""
    s = str(v)
    if not _HTML_PLAIN.search(s):
        return s
    return _html.escape(_clean(s), quote=True)


def finalize(v: Any) -> Any:
    """Jinja's ``finalize`` hook: every ``{{ }}`` value not already Safe is Markdown text."""
    if isinstance(v, Safe):
        return v
    if v is None:
        return ""
    return md_text(v)


def placeholder_nonce() -> str:
    """A per-render secret for the HTML placeholders: a value cannot forge one."""
    return secrets.token_hex(8)


# --------------------------------------------------------------------------- markdown → HTML

_SAFE_HREF = re.compile(r"^(?:#[A-Za-z0-9_\-.:\u00a0-\uffff]*|[A-Za-z0-9_][A-Za-z0-9_./-]*(?:#[A-Za-z0-9_\-]*)?)$")


def safe_href(url: str) -> bool:
    """A same-page anchor or a plain relative file name: no scheme, no ``//``, no ``..``."""
    return bool(_SAFE_HREF.match(url)) and ".." not in url and "//" not in url


def markdown_to_html(md_source: str, *, toc: bool = True) -> str:
    """Python-Markdown with raw HTML off and links/images guarded (see the module doc)."""
    import markdown
    from markdown.extensions import Extension
    from markdown.treeprocessors import Treeprocessor

    class _Guard(Treeprocessor):  # type: ignore[misc]  # Python-Markdown ships no type information
        def run(self, root: etree.Element) -> None:
            for el in root.iter():
                if el.tag == "a":
                    href = el.get("href")
                    if href is not None and not safe_href(href):
                        del el.attrib["href"]
                        el.tag = "span"
                elif el.tag == "img":
                    alt = el.get("alt") or ""
                    el.attrib.clear()
                    el.tag = "span"
                    el.text = alt
                for k in list(el.attrib):
                    if k.lower().startswith("on") or k.lower() in ("style", "src", "srcset", "formaction", "xlink:href"):
                        del el.attrib[k]

    class _NoRawHtml(Extension):  # type: ignore[misc]  # (see _Guard)
        def extendMarkdown(self, md: Any) -> None:  # noqa: N802 (Python-Markdown's name)
            md.preprocessors.deregister("html_block")
            md.inlinePatterns.deregister("html")
            # after the inline patterns and toc, before the placeholders are unescaped
            md.treeprocessors.register(_Guard(md), "labreport_guard", 1)

    extensions: list[Any] = ["tables", "fenced_code", "sane_lists", _NoRawHtml()]
    configs: dict[str, Any] = {}
    if toc:
        from markdown.extensions.toc import slugify_unicode

        extensions.append("toc")
        configs["toc"] = {"slugify": slugify_unicode, "toc_depth": "2-2"}
    html: str = markdown.markdown(md_source, extensions=extensions, extension_configs=configs, output_format="html")
    return html


# --------------------------------------------------------------------------- Graphviz

# attributes that make links (SVG <a xlink:href>) or load files (images, shapefiles, fonts)
DOT_FORBIDDEN = frozenset({"url", "href", "labelurl", "headurl", "tailurl", "edgeurl", "labelhref", "headhref",
                           "tailhref", "edgehref", "image", "imagepath", "shapefile", "fontpath", "fontnames",
                           "stylesheet", "target", "labeltarget", "headtarget", "tailtarget", "edgetarget", "id",
                           "class"})


def dot_text(v: Any) -> str:
    """``v`` as a DOT quoted string: never an HTML-like ``<...>`` label; backslashes are
    doubled so ``\\N``, ``\\G``, ``\\L`` stay literal. Newlines stay line breaks."""
    s = _clean(str(v) if v is not None else "")
    # graphviz.escape's str subclass tells graphviz the text is quoted already: kept as is
    escaped: str = graphviz.escape(s)
    return escaped


def mermaid_text(s: str) -> str:
    """A Mermaid node/edge label: entity codes for what Mermaid would read as markup."""
    s = _clean(s)
    for a, b in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("[", "#91;"), ("]", "#93;"),
                 ("|", "#124;"), ("{", "#123;"), ("}", "#125;"), ("(", "#40;"), (")", "#41;"), ("`", "#96;")):
        s = s.replace(a, b)
    return s.replace("\n", "<br/>")


def dot_attrs(attrs: dict[str, Any]) -> dict[str, str]:
    """Attribute values quoted as text; a forbidden attribute is an error in our code."""
    out: dict[str, str] = {}
    for k, v in attrs.items():
        if k.lower() in DOT_FORBIDDEN:
            raise ValueError(f"diagram attribute {k!r} is not allowed (links/files)")
        if v is None:
            continue
        out[k] = dot_text(v)
    return out


# --------------------------------------------------------------------------- terminal


def term_text(v: Any) -> str:
    """``v`` for a terminal: control characters (ESC, OSC, CSI, BEL) shown as U+FFFD, so a
    name cannot move the cursor, retitle the window or make a hyperlink (OSC 8)."""
    return _CTRL.sub("\ufffd", str(v) if v is not None else "").replace("\r", "\ufffd")


def term_markup(v: Any) -> str:
    """``v`` inside a rich markup string: control characters replaced and ``[`` escaped, so
    ``[link=file:///…]`` in a name stays text."""
    from rich.markup import escape as _rich_escape

    return _rich_escape(term_text(v))


def _term_text_class() -> Any:
    from rich.text import Text

    class TermText(Text):
        """rich Text whose string is always terminal text (term_text): the only Text the
        terminal renderers build from values."""

        def __init__(self, text: str = "", *args: Any, **kwargs: Any) -> None:
            super().__init__(term_text(text), *args, **kwargs)

    return TermText


def __getattr__(name: str) -> Any:  # TermText built on first use: rich is not imported for HTML/Markdown
    if name == "TermText":
        cls = _term_text_class()
        globals()["TermText"] = cls
        return cls
    raise AttributeError(name)
