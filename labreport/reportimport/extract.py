"""Step 1 of ``import --report``: a report file's text, whatever it was written in.

- Markdown / plain text (a PDF-to-text conversion such as the seeds): decoded like any
  pasted output (UTF-8 with or without BOM, UTF-16 with a BOM).
- PDF: the text layer, read with pypdf (no OCR: a scanned PDF has no text layer, which is
  said as an error). pypdf drops blank lines and turns tabs into spaces; the splitter
  and the repairs cope with that.
- .docx: python-docx, the body in order: each paragraph one line (its line breaks kept),
  each table row one line with its cells separated by tabs (a table pasted from a
  terminal keeps its columns that way).

Which of these a file is, is decided by its bytes (``%PDF-``, a zip holding
``word/document.xml``), not only by its name. Anything that cannot be read raises
:class:`ReportReadError` naming the file and why.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from labreport.errors import LabreportError

MAX_REPORT_BYTES = 64 * 1024 * 1024  # a class's reports are a few MB each; refuse absurd files
MAX_TEXT_CHARS = 8 * 1024 * 1024

Format = Literal["text", "markdown", "pdf", "docx"]


class ReportReadError(LabreportError):
    """A report file that cannot be read at all (missing, not a report, no text layer)."""

    exit_code = 3


class ReportText(BaseModel):
    path: str
    format: Format
    text: str
    pages: int = 0  # PDF pages; 0 for other formats


def sniff(data: bytes, name: str) -> Format:
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                if "word/document.xml" in zf.namelist():
                    return "docx"
        except zipfile.BadZipFile:
            pass
        raise ReportReadError(f"{name}: a zip file that is not a .docx document")
    lower = name.lower()
    if lower.endswith((".md", ".markdown")):
        return "markdown"
    return "text"


def _pdf_text(data: bytes, name: str) -> tuple[str, int]:
    try:
        import pypdf
    except ImportError:
        raise ReportReadError(f"{name}: reading PDF needs the pypdf package (pip install pypdf)") from None
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception:
                raise ReportReadError(f"{name}: the PDF is encrypted") from None
        parts = []
        total = 0
        for page in reader.pages:
            t = page.extract_text() or ""
            total += len(t)
            if total > MAX_TEXT_CHARS:
                raise ReportReadError(f"{name}: more than {MAX_TEXT_CHARS} characters of text; not a lab report")
            parts.append(t)
        pages = len(reader.pages)
    except ReportReadError:
        raise
    except Exception as exc:  # pypdf raises many types for broken files
        raise ReportReadError(f"{name}: not a readable PDF ({type(exc).__name__}: {exc})") from None
    text = "\n".join(parts)
    if not text.strip():
        raise ReportReadError(f"{name}: the PDF has no text layer (a scan?); export the report as text or .docx")
    return text, pages


def _docx_text(data: bytes, name: str) -> str:
    try:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph
    except ImportError:
        raise ReportReadError(f"{name}: reading .docx needs the python-docx package (pip install python-docx)") from None
    try:
        document = docx.Document(io.BytesIO(data))
        lines: list[str] = []
        total = 0
        for child in document.element.body.iterchildren():
            tag = child.tag.rsplit("}", 1)[-1]
            if tag == "p":
                lines.append(Paragraph(child, document).text)
            elif tag == "tbl":
                for row in Table(child, document).rows:
                    lines.append("\t".join(cell.text.replace("\n", " ") for cell in row.cells))
                lines.append("")
            total += len(lines[-1]) if lines else 0
            if total > MAX_TEXT_CHARS:
                raise ReportReadError(f"{name}: more than {MAX_TEXT_CHARS} characters of text; not a lab report")
    except ReportReadError:
        raise
    except Exception as exc:
        raise ReportReadError(f"{name}: not a readable .docx ({type(exc).__name__}: {exc})") from None
    text = "\n".join(lines)
    if not text.strip():
        raise ReportReadError(f"{name}: the document has no text")
    return text


def read_report(path: str) -> ReportText:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_REPORT_BYTES:
            raise ReportReadError(f"{path}: {size} bytes; larger than {MAX_REPORT_BYTES} bytes, not a lab report")
        data = p.read_bytes()
    except FileNotFoundError:
        raise ReportReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReportReadError(f"{path}: is a directory, not a report") from None
    except OSError as exc:
        raise ReportReadError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return text_of(data, path)


def text_of(data: bytes, name: str) -> ReportText:
    fmt = sniff(data, name)
    if fmt == "pdf":
        text, pages = _pdf_text(data, name)
        return ReportText(path=name, format="pdf", text=_clean(text), pages=pages)
    if fmt == "docx":
        return ReportText(path=name, format="docx", text=_clean(_docx_text(data, name)))
    from labreport.importer import ImportFileError, decode

    try:
        text = decode(data, name)
    except ImportFileError as exc:
        raise ReportReadError(str(exc)) from None
    if len(text) > MAX_TEXT_CHARS:
        raise ReportReadError(f"{name}: more than {MAX_TEXT_CHARS} characters of text; not a lab report")
    bad = sum(1 for ch in text[:20000] if ch == "\ufffd")
    if bad > 200:
        raise ReportReadError(f"{name}: not text (invalid UTF-8 throughout); give the report as .md, .txt, .pdf or .docx")
    return ReportText(path=name, format=fmt, text=_clean(text))


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    return text.replace("\x0c", "\n")
