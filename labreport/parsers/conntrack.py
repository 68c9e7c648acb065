"""``conntrack -L`` (plain and ``-o extended``) and ``/proc/net/nf_conntrack``.

One line per connection::

    tcp      6 116 TIME_WAIT src=10.244.65.20 dst=10.96.0.10 sport=51184 dport=80 src=10.244.1.2 dst=10.244.65.20 sport=80 dport=51184 [ASSURED] mark=0 use=1
    ipv4     2 tcp      6 116 TIME_WAIT src=… [ASSURED] mark=0 zone=0 use=2      (extended, /proc)
    udp      17 29 src=… dst=… sport=… dport=… [UNREPLIED] src=… dst=… sport=… dport=… mark=0 use=1
    icmp     1 29 src=… dst=… type=8 code=0 id=7 src=… dst=… type=0 code=0 id=7 mark=0 use=1

The first ``src=`` group is the original direction, the second the reply. conntrack's own
summary line (``conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.``) and
shell prompts are skipped. At most ``MAX_ENTRIES`` entries are kept (``truncated`` then says
so and ``total`` counts them all): a busy node tracks hundreds of thousands.
"""

from __future__ import annotations

import re
from typing import Literal

from labreport.errors import ParseError
from labreport.parsers.base import ParseResult, ParserInfo, check_text, strip_prompt
from labreport.snapshot import Conntrack, ConntrackEntry, ConntrackTuple

MAX_ENTRIES = 20000

_FAMILIES: dict[str, Literal["ipv4", "ipv6"]] = {"ipv4": "ipv4", "ipv6": "ipv6"}
_LINE_RE = re.compile(
    r"^(?:(?P<fam>ipv4|ipv6)\s+\d+\s+)?(?P<proto>[a-z][a-z0-9-]*|unknown)\s+(?P<num>\d+)\s+(?P<rest>.*)$")
_KV_RE = re.compile(r"([a-z_-]+)=(\S+)")
_SUMMARY_RE = re.compile(r"^conntrack v[\d.]+ \(conntrack-tools\)")
_DETECT_RE = re.compile(r"^(?:ipv[46]\s+\d+\s+)?(?:tcp|udp|icmp|icmpv6|sctp|dccp|gre|udplite|unknown)\s+\d+\s+\d+\s"
                        r".*\bsrc=\S+ dst=\S+", re.M)


def _detect(text: str) -> float:
    head = text[:4000]
    if _DETECT_RE.search(head):
        return 0.95
    if _SUMMARY_RE.search(head):
        return 0.6
    return 0.0


INFO = ParserInfo(
    name="conntrack",
    commands=("conntrack -L", "conntrack -L -o extended", "cat /proc/net/nf_conntrack"),
    description="tracked connections with their NAT (original and reply tuples)",
    detect=_detect,
    target="conntrack",
)


def _port(v: str | None) -> int | None:
    return int(v) if v is not None and v.isdigit() else None


def parse_line(line: str) -> ConntrackEntry | None:
    """One entry, or None when the line is not a conntrack entry."""
    m = _LINE_RE.match(line.strip())
    if not m:
        return None
    rest = m.group("rest")
    fam: Literal["ipv4", "ipv6"] = _FAMILIES.get(m.group("fam") or "", "ipv4")
    timeout: int | None = None
    state: str | None = None
    tokens = rest.split()
    i = 0
    if i < len(tokens) and tokens[i].isdigit():
        timeout = int(tokens[i])
        i += 1
    if i < len(tokens) and "=" not in tokens[i] and not tokens[i].startswith("["):
        state = tokens[i]
        i += 1
    tuples: list[dict[str, str]] = []
    flags: list[str] = []
    extra: dict[str, str] = {}
    for tok in tokens[i:]:
        if tok.startswith("[") and tok.endswith("]"):
            flags.append(tok[1:-1])
            continue
        kv = _KV_RE.fullmatch(tok)
        if not kv:
            continue
        key, val = kv.group(1), kv.group(2)
        if key == "src":
            tuples.append({})
            if len(tuples) > 2:
                return None
        if key in ("src", "dst", "sport", "dport", "type", "code", "id") and tuples:
            tuples[-1][key] = val
        else:
            extra[key] = val
    if len(tuples) != 2 or any("src" not in t or "dst" not in t for t in tuples):
        return None
    if fam == "ipv4" and ":" in tuples[0]["src"]:
        fam = "ipv6"
    orig, reply = (ConntrackTuple(src=t["src"], dst=t["dst"], sport=_port(t.get("sport")),
                                  dport=_port(t.get("dport"))) for t in tuples)
    mark = extra.get("mark")
    zone = extra.get("zone")
    return ConntrackEntry(family=fam, protocol=m.group("proto"), timeout=timeout, state=state, original=orig,
                          reply=reply, flags=flags,
                          mark=int(mark, 0) if mark and re.fullmatch(r"(0x)?[0-9a-fA-F]+", mark) else None,
                          zone=int(zone) if zone and zone.isdigit() else None)


def parse(text: str | bytes, *, source: str = "<input>") -> ParseResult[list[ConntrackEntry]]:
    """The entries (at most MAX_ENTRIES), like every parser's list of records."""
    table = parse_table(text, source=source)
    return ParseResult(table.value.entries, warnings=table.warnings, parser=INFO.name, source=source)


def parse_table(text: str | bytes, *, source: str = "<input>") -> ParseResult[Conntrack]:
    """The whole table: entries plus ``total`` and ``truncated``."""
    text = check_text(text, source)
    table = Conntrack()
    res: ParseResult[Conntrack] = ParseResult(table, parser=INFO.name, source=source)
    total = 0
    for no, raw in enumerate(text.splitlines(), 1):
        line, _ = strip_prompt(raw)
        line = line.strip()
        if not line or _SUMMARY_RE.match(line) or line.startswith("conntrack "):
            continue
        entry = parse_line(line)
        if entry is None:
            res.warn(no, raw, "not a conntrack entry (expected: proto num timeout [state] src=… dst=… … src=… dst=…)")
            continue
        total += 1
        if len(table.entries) < MAX_ENTRIES:
            table.entries.append(entry)
        else:
            table.truncated = True
    table.total = total
    if total == 0 and res.warnings:
        raise ParseError("no conntrack entry in the input (expected `conntrack -L` or /proc/net/nf_conntrack lines)",
                         source=source)
    return res
