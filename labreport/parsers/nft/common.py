"""Small readers shared by the nft parser's modules: durations, priorities, tokens and
printed scalar values."""

from __future__ import annotations

import re
from typing import Any, Optional

FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")

_DURATION_RE = re.compile(r"(\d+)(ms|d|h|m|s)")
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}

# Standard priority names (nft(8) "STANDARD PRIORITY NAMES", ip/ip6/inet families).
PRIORITY_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}


def parse_duration(text: str) -> Optional[float]:
    """nft durations: "3h", "10800s", "2h59m59s996ms", or a bare number of seconds."""
    t = text.strip()
    if not t:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(t):
        if m.start() != pos:
            return None
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(t) and pos > 0 else None


def priority_value(text: Optional[str]) -> Optional[int]:
    """Numeric value of a printed priority: "-110" → -110, "dstnat - 10" → -110."""
    if text is None:
        return None
    t = text.replace(" ", "")
    m = re.fullmatch(r"([a-z]+)?([+-]?\d+)?", t)
    if not m or not (m.group(1) or m.group(2)):
        return None
    base = 0
    if m.group(1):
        if m.group(1) not in PRIORITY_NAMES:
            return None
        base = PRIORITY_NAMES[m.group(1)]
    return base + (int(m.group(2)) if m.group(2) else 0)


def _unquote(tok: str) -> str:
    if len(tok) >= 2 and tok[0] == tok[-1] == '"':
        return tok[1:-1]
    return tok


def tokenize(text: str) -> list[str]:
    """Split an nft statement into tokens: quoted strings kept whole, braces and commas
    as their own tokens."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == '"':
            j = text.find('"', i + 1)
            j = n - 1 if j < 0 else j
            out.append(text[i : j + 1])
            i = j + 1
            continue
        if ch in "{},;":
            out.append(ch)
            i += 1
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] not in '{},;"':
            j += 1
        out.append(text[i:j])
        i = j
    return out


_PREFIX_RE = re.compile(r"([0-9a-fA-F.:]+)/(\d+)")
_RANGE_RE = re.compile(r"(\d+)-(\d+)")


def _scalar(tok: str) -> Any:
    """A printed value as nft's JSON would give it: ints for numbers, prefixes as dicts."""
    if tok.isdigit():
        return int(tok)
    if tok.startswith("0x"):
        try:
            return int(tok, 16)
        except ValueError:
            return tok
    if "/" in tok:
        m = _PREFIX_RE.fullmatch(tok)
        if m and ("." in m.group(1) or ":" in m.group(1)):
            return {"prefix": {"addr": m.group(1), "len": int(m.group(2))}}
    elif "-" in tok and tok[0].isdigit():
        m = _RANGE_RE.fullmatch(tok)
        if m:
            return {"range": [int(m.group(1)), int(m.group(2))]}
    if tok.startswith('"'):
        return _unquote(tok)
    return tok



_TABLE_RE = re.compile(r"^table\s+(\S+)\s+(\S+)\s*\{\s*$")
_BLOCK_RE = re.compile(r"^(chain|set|map|flowtable|counter|quota|limit|ct\s+helper|ct\s+timeout|ct\s+expectation|synproxy|secmark)\s+(\"[^\"]*\"|\S+)\s*\{\s*$")
_HANDLE_RE = re.compile(r"\s+#\s*handle\s+(\d+)\s*$")


def _strip_handle(line: str) -> tuple[str, Optional[int]]:
    if "#" not in line:
        return line, None
    m = _HANDLE_RE.search(line)
    if m:
        return line[: m.start()], int(m.group(1))
    return line, None


# The parser builds plain dicts (the stored form; ``tables_of`` gives the typed view):
# a 10,000-service kube-proxy table has ~40,000 chains and ~90,000 rules, and building,
# dumping and re-validating that many pydantic models costs seconds. To keep snapshots
# small, keys whose value is the model's default (None, []) are left out, and a rule
