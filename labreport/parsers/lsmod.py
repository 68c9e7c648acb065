"""Parse ``lsmod`` (and ``lsmod | grep …``): loaded kernel modules.

Usage::

    from labreport.parsers import lsmod
    for m in lsmod.parse(text).value:      # list[KernelModule]
        print(m.name, m.size, m.used_by)

Rows are ``name size count [user,user…]``; the ``Module Size Used by`` header is optional
(a grep drops it). Prompt lines are skipped, other lines are warnings.
"""

from __future__ import annotations

import re

from pydantic import Field

from labreport.errors import ParseError
from labreport.parsers._common import is_prompt_line
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.snapshot import Record

_ROW_RE = re.compile(r"^\s*([A-Za-z0-9_]+)\s+(\d+)\s+(-?\d+)(?:\s+(\S+))?\s*$")
_HEADER_RE = re.compile(r"^\s*Module\s+Size\s+Used by\s*$")


class KernelModule(Record):
    name: str
    size: int
    use_count: int
    used_by: list[str] = Field(default_factory=list)


def _detect(text: str) -> float:
    lines = [ln for ln in text[:4000].splitlines() if ln.strip() and not is_prompt_line(ln)][:20]
    if not lines:
        return 0.0
    if _HEADER_RE.match(lines[0]):
        return 0.95
    rows = sum(1 for ln in lines if _ROW_RE.match(ln))
    return min(0.7, 0.7 * rows / len(lines)) if rows == len(lines) else 0.0


INFO = ParserInfo(
    name="lsmod",
    commands=("lsmod", "lsmod | grep br_netfilter"),
    description="loaded kernel modules from lsmod",
    detect=_detect,
    target="info.modules",
)


def parse(text: str, *, source: str = "<input>") -> ParseResult[list[KernelModule]]:
    text = check_text(text, source)
    result: ParseResult[list[KernelModule]] = ParseResult(value=[], parser=INFO.name, source=source)
    for line_no, line in enumerate(text.split("\n"), 1):
        if not line.strip() or line.strip() in ("```", "~~~") or is_prompt_line(line) or _HEADER_RE.match(line):
            continue
        m = _ROW_RE.match(line)
        if not m:
            result.warn(line_no, line, "not an lsmod row (name size count [users])")
            continue
        users = [u for u in (m.group(4) or "").split(",") if u and u != "-"]
        result.value.append(KernelModule(name=m.group(1), size=int(m.group(2)), use_count=int(m.group(3)),
                                         used_by=users))
    if not result.value:
        raise ParseError("no lsmod row", source=source)
    return result
