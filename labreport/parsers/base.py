"""What every parser shares: its declaration, its result, and the input checks.

A parser module (one per command output) exposes:

    INFO = ParserInfo(name="ps", commands=("ps aux",), ...)
    def parse(text: str, *, source: str = "<input>") -> ParseResult[...]: ...

``parse`` raises :class:`labreport.errors.ParseError` only when the whole input is
unreadable (empty, binary, clearly another format). A line it cannot read becomes a
``ParseWarning`` (with its 1-based line number) in ``ParseResult.warnings``; parsing
goes on. Nothing else may escape (tests/test_parsers_fuzz.py checks this).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Generic, Optional, TypeVar

from labreport.errors import ParseError
from labreport.snapshot import ParseWarning

T = TypeVar("T")


@dataclass(frozen=True)
class ParserInfo:
    name: str  # registry key, e.g. "ps", "iptables-save"
    commands: tuple[str, ...]  # the commands whose output it reads
    description: str
    # detect(text) -> confidence 0..1 that text is this parser's format (cheap: look at
    # the first lines only). Used by `labreport import` when a file's kind is not given.
    detect: Callable[[str], float]
    target: str = ""  # which snapshot field it fills: "processes", "containers", "netns", "iptables" …


@dataclass
class ParseResult(Generic[T]):
    value: T
    warnings: list[ParseWarning] = field(default_factory=list)
    parser: str = ""
    source: str = "<input>"
    # the output was cut (no COMMIT after a table, a last line cut mid-way): what is here is
    # kept, the rest is missing; the reason, said to the user and marking the node partial
    truncated: Optional[str] = None

    def warn(self, line_no: int, line: str, message: str) -> None:
        self.warnings.append(
            ParseWarning(source=self.source, parser=self.parser, line_no=line_no, line=line[:500], message=message)
        )


_PROMPT_RE = re.compile(
    r"""^\s*(?:
        (?:\[[^\]\n]{1,80}\]\s*)?                        # [root@master ~]
        (?:[\w.-]+@[\w.-]+(?::[^\s#$]*)?\s*)?[#$%]\s+     # root@k8s-master:/home#  or  $
    )""",
    re.X,
)


def strip_prompt(line: str) -> tuple[str, bool]:
    """Remove a leading shell prompt (``root@k8s-master:/home# ``). Returns (rest, had_prompt)."""
    m = _PROMPT_RE.match(line)
    if m and m.end() < len(line):
        return line[m.end():], True
    return line, False


def check_text(text: str | bytes, source: str = "<input>") -> str:
    """Common input checks: bytes are decoded (UTF-8, invalid bytes replaced), empty or
    binary input raises ParseError with a clear message."""
    if isinstance(text, bytes):
        if b"\x00" in text[:4096]:
            raise ParseError("binary data, not command output", source=source)
        text = text.decode("utf-8", errors="replace")
    if not text or text.isspace():  # what `not text.strip()` says, without a copy of the text
        raise ParseError("empty input", source=source)
    if "\x00" in text[:4096]:
        raise ParseError("binary data, not command output", source=source)
    sample = text[:4096]
    bad = sum(1 for ch in sample if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\n\r\x0c\x1b"))
    if bad > max(8, len(sample) // 10):
        raise ParseError("binary or garbled data, not command output", source=source)
    if "\r" not in text:  # one pass over the text (the search for "\r\n" alone took 28 ms over 10 MB)
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")
