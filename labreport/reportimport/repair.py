"""Repairs of what a PDF / Word conversion does to pasted terminal output. Each repair
returns the repaired lines and a sentence per repair (said as a warning by the import):
nothing is changed silently.

- ``strip_gutter``: an editor's line-number column (``1 | text``, ``1  text``, a lone
  ``9``). The text column is the leftmost one the numbered lines reach, so YAML keeps its
  indentation relative to the top-level keys; an unnumbered line inside a numbered block
  is the previous line wrapped by the page, and is joined back to it.
- ``join_wrapped``: lines a page width cut, for outputs whose rows have a known start
  (``ip`` link lines, container tables with a hex id first, iptables rules). The join is
  one space, except when the break follows a ``-`` that ends a word (``KUBE-SVC-`` /
  ``N4AQ…``, ``default/two-`` / ``containers-service``, ``--cert-`` / ``file=``): then
  no space, since a PDF breaks lines after hyphens and a space there would change a name.
- ``fix_comment_arrows``: ``--comment "ns/svc:port" --> 10.244.1.3:3000`` (the quote moved
  before ``->`` and the arrow doubled) back to ``--comment "ns/svc:port -> 10.244.1.3:3000"``.
"""

from __future__ import annotations

import re
from typing import Callable, Optional

_GUTTER_RE = re.compile(r"^(\s*)(\d{1,4})(\s*\|)?(?=\s|$)")
_ARROW_RE = re.compile(r'--comment "([^"]*)" -{1,2}> (\d{1,3}(?:\.\d{1,3}){3}:\d+|\[[0-9a-fA-F:]+\]:\d+)')

Lines = list[str]


def _join(prev: str, more: str) -> str:
    p = prev.rstrip()
    m = more.strip()
    if p.endswith("-") and len(p) >= 2 and not p[-2].isspace():
        return p + m
    return p + " " + m


def strip_gutter(lines: Lines, marks: Optional[list[int]] = None) -> tuple[Lines, Optional[str]]:
    """``marks``: line indexes (page breaks) to carry over; updated in place."""
    body = [ln for ln in lines if ln.strip()]
    if len(body) < 2:
        return lines, None
    matches = [_GUTTER_RE.match(ln) for ln in lines]
    numbered = [(i, m) for i, m in enumerate(matches) if m is not None and lines[i].strip()]
    if len(numbered) < max(2, int(0.6 * len(body))):
        return lines, None
    nums = [int(m.group(2)) for _, m in numbered]
    rising = sum(1 for a, b in zip(nums, nums[1:]) if b == a + 1)
    if rising < 0.7 * (len(nums) - 1):
        return lines, None
    piped = sum(1 for _, m in numbered if m.group(3)) > len(numbered) // 2
    starts = []
    for i, m in numbered:
        rest = lines[i][m.end():]
        if not rest.strip():
            continue
        starts.append(m.end() + (len(rest) - len(rest.lstrip())))
    column = min(starts) if starts else 0
    out: Lines = []
    joined = 0
    new_index: dict[int, int] = {}
    for i, ln in enumerate(lines):
        new_index[i] = len(out)
        mi = matches[i]
        if mi is not None and ln.strip():
            rest = ln[mi.end():]
            if not rest.strip():
                out.append("")
                continue
            start = mi.end() + (len(rest) - len(rest.lstrip()))
            if piped:
                # "N | text": exactly one space after the bar is the gutter's
                text = rest[1:] if rest.startswith(" ") else rest
                out.append(text.rstrip())
            else:
                out.append(" " * max(0, start - column) + rest.lstrip().rstrip())
        elif not ln.strip():
            out.append("")
        elif out and out[-1].strip():
            out[-1] = _join(out[-1], ln)  # a line the page wrapped: no number of its own
            joined += 1
        else:
            out.append(ln.rstrip())
    if marks is not None:
        marks[:] = [new_index.get(k, k) for k in marks]
    msg = f"removed the line-number column ({len(numbered)} numbered lines)"
    if joined:
        msg += f" and joined {joined} wrapped line{'s' if joined != 1 else ''} back"
    return out, msg


def join_wrapped(lines: Lines, is_start: Callable[[str], bool], what: str) -> tuple[Lines, Optional[str]]:
    """Join every line that does not start a row (``is_start``) to the line before it."""
    out: Lines = []
    joined = 0
    for ln in lines:
        if not ln.strip():
            out.append(ln)
            continue
        if out and out[-1].strip() and not is_start(ln):
            out[-1] = _join(out[-1], ln)
            joined += 1
        else:
            out.append(ln)
    if not joined:
        return lines, None
    return out, f"joined {joined} {what} line{'s' if joined != 1 else ''} the page width had wrapped"


def fix_comment_arrows(lines: Lines) -> tuple[Lines, Optional[str]]:
    n = 0
    out: Lines = []
    for ln in lines:
        new, k = _ARROW_RE.subn(lambda m: f'--comment "{m.group(1)} -> {m.group(2)}"', ln)
        n += k
        out.append(new)
    if not n:
        return lines, None
    return out, (f"repaired {n} rule comment{'s' if n != 1 else ''} a conversion had garbled "
                 '(`"ns/svc:port" --> ip:port` read as `"ns/svc:port -> ip:port"`)')


# ----------------------------------------------------------------------------- row starts

_PROMPTISH_RE = re.compile(r"^\s*(?:\[[^\]\n]{1,80}\]\s*|[\w.-]+@[\w.-]+(?::[^\s#$]*)?\s*)[#$%]")
_IP_ROW_RE = re.compile(r"^(?:\d+:\s|\s)")
_HEX_ROW_RE = re.compile(r"^\s*[0-9a-f]{8,64}\s")
_IPT_ROW_RE = re.compile(r"^\s*(?:-[AINPDR]\s|:|\*|COMMIT|#|\[\d+:\d+\])")
_TABLE_HEADER_RE = re.compile(r"^\s*(?:CONTAINER|POD ID|WARN|time=|NAME\s)")


def starts_ip_row(line: str) -> bool:
    return bool(_IP_ROW_RE.match(line) or _PROMPTISH_RE.match(line))


def starts_container_row(line: str) -> bool:
    return bool(_HEX_ROW_RE.match(line) or _TABLE_HEADER_RE.match(line) or _PROMPTISH_RE.match(line)
                or "\t" in line)


def starts_iptables_row(line: str) -> bool:
    return bool(_IPT_ROW_RE.match(line) or _PROMPTISH_RE.match(line))


ROW_STARTS: dict[str, tuple[Callable[[str], bool], str]] = {
    "ip-addr": (starts_ip_row, "ip"),
    "docker-ps": (starts_container_row, "table"),
    "crictl-ps": (starts_container_row, "table"),
    "crictl-pods": (starts_container_row, "table"),
    "ctr-containers": (starts_container_row, "table"),
    "iptables-save": (starts_iptables_row, "rule"),
}


def repair_for(parser: str, lines: Lines) -> tuple[Lines, list[str]]:
    """The repairs that fit this parser's output, in order; (lines, what was done)."""
    done: list[str] = []
    if parser == "iptables-save":
        lines, msg = fix_comment_arrows(lines)
        if msg:
            done.append(msg)
    spec = ROW_STARTS.get(parser)
    if spec is not None:
        lines, msg = join_wrapped(lines, spec[0], spec[1])
        if msg:
            done.append(msg)
    return lines, done
