"""Step 2 of ``import --report``: cut a report's text into the pieces that are command
output (or manifests), each with what the report says around it.

A piece (``Block``) is either

- a fenced code block (```` ``` ````). Fenced blocks with only blank lines between them
  are one block cut by a page break, and are joined, unless the second one starts over
  (its line-number gutter restarts at 1, or it starts a new YAML document);
- or an unfenced run of lines that look like terminal output, as PDF-to-text leaves the
  tables students pasted: it starts at a line holding a tab, a shell prompt
  (``user@host…#``) or a known table header (``NAME  READY  STATUS``, ``CONTAINER ID``…),
  and goes on while lines hold no CJK character (outputs are ASCII; prose is Chinese).

Each block keeps the prose before it (``context``: what it is — "master节点的显示", "使用
指令 `docker ps`"), the lab question it belongs to (the last ``Qn`` heading) and its first
line number in the report. Splitting one block into several outputs at its prompt lines
is :mod:`labreport.reportimport.command`'s job.
"""

from __future__ import annotations

import re
from typing import Optional

from pydantic import BaseModel, Field

_CJK_RE = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
_FENCE_RE = re.compile(r"^\s*(```|~~~)")
_QUESTION_RE = re.compile(r"^[\s#*>_]*(?:\*\*)?\s*Q\s*(\d{1,2})\b")
_HEADER_RE = re.compile(
    r"^\s*(?:CONTAINER(?: ID)?\s+IMAGE|NAME\s+(?:READY|STATUS|TYPE|ENDPOINTS|REFERENCE|CPU|DESIRED|AGE|DATA)"
    r"|NAMESPACE\s+NAME|POD ID\s+CREATED|USER\s+PID|UID\s+PID|Module\s+Size|IP Virtual Server)\b"
)
_GUT = r"(?:\d{1,4}\s*\|?\s+)?"
# code a Markdown renderer printed without its fences: rules, manifests, ip, ps rows, inspect
_CODE_START_RE = re.compile(
    rf"^\s*{_GUT}(?:-A [A-Z][\w-]*\s|\*(?:nat|filter|mangle|raw)\s*$|:KUBE-|(?:apiVersion|kind):\s*\S"
    rf"|\d+: [\w.@-]+: <|\"NetworkMode\":|[a-z_][\w.-]*\s+\d+\s+\d+\.\d+\s+\d+\.\d+\s+\d+\s+\d+\s)"
)
_USER_PROMPT_RE = re.compile(r"^\s*(?:\d+\s*\|?\s+)?(?:\[[^\]\n]{1,80}\]\s*|[\w.-]+@[\w.-]+(?::[^\s#$]*)?\s*)[#$%]")
_GUTTER_RE = re.compile(r"^(\s*)(\d{1,4})(\s*\|)?(?:\s|$)")
_YAML_START_RE = re.compile(r"^\s*(?:\d{1,4}\s*\|?\s+)?(?:apiVersion|kind):\s*\S")

_YAML_LINE_RE = re.compile(r"^\s*(?:\d{1,4}\s*\|?\s+)?(?:(?:- )?[\w./-]+:(?:\s|$)|- \S)")

MAX_CONTEXT = 400


class Block(BaseModel):
    """A piece of the report that may be command output."""

    start_line: int  # 1-based line of its first line in the report text
    lines: list[str]
    fenced: bool
    context: str = ""  # the prose before it (since the previous block), last MAX_CONTEXT chars
    question: Optional[int] = None  # the lab question (Qn heading) it is under
    joined: int = 0  # fenced blocks joined into this one (page breaks)
    line_numbers: list[int] = Field(default_factory=list)  # report line of each line
    breaks: list[int] = Field(default_factory=list)  # index of the first line of each joined part


def has_cjk(line: str) -> bool:
    return _CJK_RE.search(line) is not None


def _first_gutter_number(lines: list[str]) -> Optional[int]:
    for ln in lines:
        if ln.strip():
            m = _GUTTER_RE.match(ln)
            return int(m.group(2)) if m else None
    return None


def _last_gutter_number(lines: list[str]) -> Optional[int]:
    for ln in reversed(lines):
        m = _GUTTER_RE.match(ln)
        if m:
            return int(m.group(2))
    return None


def _continues(prev: Block, nxt_lines: list[str]) -> bool:
    """Is a fenced block right after ``prev`` (nothing but blank lines between) the rest of it?"""
    body = [ln for ln in nxt_lines if ln.strip()]
    if not body or not any(ln.strip() for ln in prev.lines):
        return False
    first = _first_gutter_number(nxt_lines)
    last = _last_gutter_number(prev.lines)
    if first is not None and last is not None:
        return first == last + 1 or (first > 1 and first > last)
    if first == 1:
        return False
    if _YAML_START_RE.match(body[0]):
        return False
    return True


def _starts_output(line: str) -> bool:
    if has_cjk(line) or not line.strip():
        return False
    if "\t" in line and line.strip():
        return True
    return bool(_USER_PROMPT_RE.match(line) or _HEADER_RE.match(line) or _CODE_START_RE.match(line))


def split_blocks(text: str) -> list[Block]:
    lines = text.split("\n")
    blocks: list[Block] = []
    prose: list[str] = []
    question: Optional[int] = None
    i = 0
    n = len(lines)
    last_fenced_end = -10  # index of the closing fence of the last fenced block
    last_unfenced_end = -10  # index of the line after the last unfenced run

    def context() -> str:
        return "\n".join(ln for ln in prose if ln.strip())[-MAX_CONTEXT:]

    while i < n:
        line = lines[i]
        m = _QUESTION_RE.match(line)
        if m and not _FENCE_RE.match(line):
            question = int(m.group(1))
        if _FENCE_RE.match(line):
            j = i + 1
            body: list[str] = []
            while j < n and not _FENCE_RE.match(lines[j]):
                body.append(lines[j])
                j += 1
            numbers = list(range(i + 2, i + 2 + len(body)))
            between = lines[last_fenced_end + 1:i]
            if (blocks and blocks[-1].fenced and last_fenced_end >= 0 and all(not b.strip() for b in between)
                    and _continues(blocks[-1], body)):
                blocks[-1].breaks.append(len(blocks[-1].lines))
                blocks[-1].lines.extend(body)
                blocks[-1].line_numbers.extend(numbers)
                blocks[-1].joined += 1
            else:
                blocks.append(Block(start_line=i + 2, lines=body, fenced=True, context=context(),
                                    question=question, line_numbers=numbers))
                prose = []
            last_fenced_end = j
            i = j + 1
            continue
        prev_yaml = bool(blocks and not blocks[-1].fenced and any(_YAML_START_RE.match(b) for b in blocks[-1].lines))
        if _starts_output(line) or (prev_yaml and not has_cjk(line) and _YAML_LINE_RE.match(line)
                                    and all(not b.strip() for b in lines[max(last_unfenced_end, 0):i])):
            j = i
            run: list[str] = []
            while j < n and lines[j].strip() and not has_cjk(lines[j]) and not _FENCE_RE.match(lines[j]):
                run.append(lines[j])
                j += 1
            numbers = list(range(i + 1, i + 1 + len(run)))
            prev = blocks[-1] if blocks else None
            if (prev is not None and not prev.fenced and last_unfenced_end >= 0
                    and all(not b.strip() for b in lines[last_unfenced_end:i])
                    and not (_USER_PROMPT_RE.match(run[0]) or _HEADER_RE.match(run[0])) and _continues(prev, run)):
                prev.breaks.append(len(prev.lines))  # the same output, cut by a blank line or a page
                prev.lines.extend(run)
                prev.line_numbers.extend(numbers)
                prev.joined += 1
            else:
                blocks.append(Block(start_line=i + 1, lines=run, fenced=False, context=context(), question=question,
                                    line_numbers=numbers))
            last_unfenced_end = j
            prose = []
            i = j
            continue
        prose.append(line)
        i += 1
    return blocks
