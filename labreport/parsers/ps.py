"""Parse ``ps aux`` (BSD style) and ``ps -ef`` (System V style) output.

Usage::

    from labreport.parsers import ps
    result = ps.parse(open("ps.txt").read(), source="ps.txt")
    for proc in result.value:            # list[labreport.snapshot.Process]
        print(proc.pid, proc.command)

Reads what students paste, too:

- ``ps aux | grep kube``: the shell prompt and the command line itself
  (``root@k8s-master:/home# ps aux | grep kube``) are skipped without a warning; the
  ``grep --color=auto kube`` line is kept as a Process like any other (the analysis drops
  it, the parser does not judge).
- the header line (``USER PID %CPU …`` / ``UID PID PPID C STIME TTY TIME CMD``) is
  optional.
- lines a PDF conversion hard-wrapped: a line that does not start like a process row
  (user, pid, …) continues the previous command. A wrap after ``-`` (``etcd --`` /
  ``advertise-client-urls=…``) is joined without a space, any other wrap with one space.
- a command cut by the terminal or by the student (ending in ``...``, ``.....`` or
  ``…``) gets ``truncated=True``; the dots are removed from ``command``.
- a line that is only ``...`` (rows left out of the paste) becomes a warning "rows
  elided", since the list is then incomplete.

Returns ``list[Process]``::

    [{"pid": int, "user": str, "cpu": float|None, "mem": float|None, "vsz": int|None,
      "rss": int|None, "tty": str, "stat": str|None, "start": str, "time": str,
      "command": str, "truncated": bool, "ppid": int|None}]

Example (seed 001, master)::

    root    5292  0.0  1.2 1281792 47428 ?   Ssl  11:46   0:00 /usr/local/bin/kube-proxy --config=/var/lib/kube-proxy/config.conf
    -> Process(pid=5292, user="root", cpu=0.0, mem=1.2, vsz=1281792, rss=47428, tty="?",
               stat="Ssl", start="11:46", time="0:00",
               command="/usr/local/bin/kube-proxy --config=/var/lib/kube-proxy/config.conf")
"""

from __future__ import annotations

import re
from typing import Any, Optional

from labreport.errors import ParseError
from labreport.parsers._common import is_prompt_line
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.snapshot import Process

# USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND
_AUX_RE = re.compile(
    r"^(?P<user>[^\s]+)\s+(?P<pid>\d+)\s+(?P<cpu>\d+(?:[.,]\d+)?)\s+(?P<mem>\d+(?:[.,]\d+)?)\s+"
    r"(?P<vsz>\d+)\s+(?P<rss>\d+)\s+(?P<tty>\S+)\s+(?P<stat>[A-Za-z<+]+)\s+"
    r"(?P<start>\S+)\s+(?P<time>\d+:\d+(?::\d+)?(?:\.\d+)?|\d+-\d+:\d+:\d+)\s+(?P<command>\S.*)$"
)
# UID PID PPID C STIME TTY TIME CMD
_EF_RE = re.compile(
    r"^(?P<user>[^\s]+)\s+(?P<pid>\d+)\s+(?P<ppid>\d+)\s+(?P<c>\d+)\s+(?P<start>\S+(?:\s\d{1,2})?)\s+"
    r"(?P<tty>\S+)\s+(?P<time>\d+:\d+:\d+|\d+-\d+:\d+:\d+)\s+(?P<command>\S.*)$"
)
_AUX_HEADER_RE = re.compile(r"^\s*USER\s+PID\s+%CPU\s+%MEM\b")
_EF_HEADER_RE = re.compile(r"^\s*UID\s+PID\s+PPID\s+C\s+STIME\b")
_TRUNC_RE = re.compile(r"(?:\.{3,}|…+)\s*$")
_ELIDED_RE = re.compile(r"^\s*(?:\.{3,}|…+)\s*$")
# a row that starts like a process (user + pid + number) but did not match fully
_ROWISH_RE = re.compile(r"^[A-Za-z_][\w.+-]*\s+\d+\s")


def _detect(text: str) -> float:
    lines = [ln for ln in text[:8000].splitlines() if ln.strip()][:30]
    if not lines:
        return 0.0
    if any(_AUX_HEADER_RE.match(ln) or _EF_HEADER_RE.match(ln) for ln in lines[:5]):
        return 0.95
    rows = sum(1 for ln in lines if _AUX_RE.match(ln.strip()) or _EF_RE.match(ln.strip()))
    if rows == 0:
        return 0.0
    return min(0.9, 0.4 + 0.5 * rows / len(lines))


INFO = ParserInfo(
    name="ps",
    commands=("ps aux", "ps auxww", "ps -ef", "ps aux | grep kube"),
    description="processes from ps aux / ps -ef (pasted greps, wrapped and cut lines too)",
    detect=_detect,
    target="processes",
)


def _num(value: Optional[str], kind: type) -> Any:
    if value is None:
        return None
    try:
        return kind(value.replace(",", "."))
    except ValueError:
        return None


def _convert(raw: dict[str, Any]) -> Process:
    """The one place where text fields become typed values."""
    command = raw["command"].rstrip()
    truncated = False
    if _TRUNC_RE.search(command):
        command = _TRUNC_RE.sub("", command).rstrip()
        truncated = True
    return Process(
        pid=int(raw["pid"]),
        user=raw.get("user"),
        cpu=_num(raw.get("cpu"), float),
        mem=_num(raw.get("mem"), float),
        vsz=_num(raw.get("vsz"), int),
        rss=_num(raw.get("rss"), int),
        tty=raw.get("tty"),
        stat=raw.get("stat"),
        start=raw.get("start"),
        time=raw.get("time"),
        command=command or raw["command"].strip(),
        truncated=truncated,
        ppid=_num(raw.get("ppid"), int),
    )


def _join(command: str, more: str) -> str:
    if command.endswith("-") or command.endswith("="):
        return command + more
    return command + " " + more


def parse(text: str, *, source: str = "<input>") -> ParseResult[list[Process]]:
    text = check_text(text, source)
    result: ParseResult[list[Process]] = ParseResult(value=[], parser=INFO.name, source=source)
    rows: list[tuple[int, dict[str, Any]]] = []
    style: Optional[str] = None  # "aux" or "ef", from the header or the first row
    for line_no, raw_line in enumerate(text.split("\n"), 1):
        line = raw_line.rstrip()
        stripped = line.strip()
        if not stripped or stripped in ("```", "~~~"):
            continue
        if _AUX_HEADER_RE.match(line):
            style = "aux"
            continue
        if _EF_HEADER_RE.match(line):
            style = "ef"
            continue
        if is_prompt_line(line):
            continue
        if _ELIDED_RE.match(line):
            result.warn(line_no, line, "rows elided in the paste ('...'): the process list is incomplete")
            continue
        m = None
        if style in (None, "aux"):
            m = _AUX_RE.match(stripped)
            if m and style is None:
                style = "aux"
        if m is None and style in (None, "ef"):
            m = _EF_RE.match(stripped)
            if m and style is None:
                style = "ef"
        if m is not None:
            rows.append((line_no, m.groupdict()))
            continue
        if rows and not _ROWISH_RE.match(stripped):
            # a hard-wrapped continuation of the previous command line
            rows[-1][1]["command"] = _join(rows[-1][1]["command"].rstrip(), stripped)
            continue
        result.warn(line_no, line, "not a ps row (expected USER PID %CPU %MEM … COMMAND or UID PID PPID …)")
    if not rows and style is None:
        raise ParseError("no ps rows (USER PID %CPU %MEM … COMMAND or UID PID PPID …) found", source=source)
    for line_no, raw in rows:
        try:
            result.value.append(_convert(raw))
        except (ValueError, TypeError) as exc:
            result.warn(line_no, raw.get("command", ""), f"cannot convert row: {exc}")
    return result
