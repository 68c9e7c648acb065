"""Parse ``sysctl KEY…`` / ``sysctl -a`` / ``sysctl --system`` output: ``key = value`` lines.

Usage::

    from labreport.parsers import sysctl
    for entry in sysctl.parse("net.ipv4.ip_forward = 1\\n").value:   # list[SysctlEntry]
        print(entry.key, entry.value)

``sysctl --system`` also prints ``* Applying /etc/sysctl.d/k8s.conf ...`` lines: the file
becomes the ``file`` of the entries after it. Prompt lines are skipped; anything else is
a warning (``sysctl: cannot stat /proc/sys/net/bridge/…: No such file or directory`` says a
module is missing and is kept as a warning with that message).
"""

from __future__ import annotations

import re
from typing import Optional

from labreport.errors import ParseError
from labreport.parsers._common import is_prompt_line
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.snapshot import Record

_ROW_RE = re.compile(r"^\s*([a-z0-9_]+(?:[./][\w.-]+)+)\s*=\s*(.*?)\s*$")
_APPLY_RE = re.compile(r"^\s*\* Applying (\S+?)\s*\.{0,3}\s*$")
_MISSING_RE = re.compile(r"^sysctl: cannot stat /proc/sys/(\S+?):")


class SysctlEntry(Record):
    key: str
    value: str
    file: Optional[str] = None  # sysctl --system: the file that set it


def _detect(text: str) -> float:
    lines = [ln for ln in text[:4000].splitlines() if ln.strip() and not is_prompt_line(ln)][:20]
    if not lines:
        return 0.0
    rows = sum(1 for ln in lines if _ROW_RE.match(ln) and ln.strip().startswith(("net.", "kernel.", "vm.", "fs.", "user.")))
    return min(0.9, rows / len(lines)) if rows else 0.0


INFO = ParserInfo(
    name="sysctl",
    commands=("sysctl net.ipv4.ip_forward", "sysctl -a", "sysctl --system"),
    description="kernel parameters (key = value) from sysctl",
    detect=_detect,
    target="info.sysctls",
)


def parse(text: str, *, source: str = "<input>") -> ParseResult[list[SysctlEntry]]:
    text = check_text(text, source)
    result: ParseResult[list[SysctlEntry]] = ParseResult(value=[], parser=INFO.name, source=source)
    current: Optional[str] = None
    for line_no, line in enumerate(text.split("\n"), 1):
        if not line.strip() or line.strip() in ("```", "~~~") or is_prompt_line(line):
            continue
        m = _APPLY_RE.match(line)
        if m:
            current = m.group(1)
            continue
        m = _ROW_RE.match(line)
        if m:
            result.value.append(SysctlEntry(key=m.group(1).replace("/", "."), value=m.group(2), file=current))
            continue
        m = _MISSING_RE.match(line.strip())
        if m:
            result.warn(line_no, line, f"the kernel has no {m.group(1).replace('/', '.')} (is the module loaded?)")
            continue
        result.warn(line_no, line, "not a sysctl key = value line")
    if not result.value and not result.warnings:
        raise ParseError("no sysctl key = value line", source=source)
    if not result.value:
        raise ParseError("no sysctl key = value line", source=source)
    return result
