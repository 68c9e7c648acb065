"""Parser for ``nft list ruleset`` (the nested text people paste) and ``nft -j list ruleset``
(JSON) → :class:`labreport.snapshot.NftRuleset`.

Usage::

    from labreport.parsers import nft
    res = nft.parse(open("ruleset.txt").read(), source="ruleset.txt")
    res.value.tables[0]["chains"][0]["rules"][0]["expr"]

Both forms give the same records, described by the typed models ``NftTable`` →
``NftChain`` / ``NftSet`` → ``NftRule`` / ``NftElement``. ``NftRuleset.tables`` stores
them as plain dicts so a snapshot stays JSON (and small: keys at their default are left
out); ``tables_of(ruleset)`` gives the typed, complete view. A rule carries:

- ``text``: the rule as nft prints it (from JSON input: rendered back into nft syntax);
- ``expr``: its statements in nft's JSON schema (``{"match": …}``, ``{"vmap": …}``,
  ``{"goto": {"target": …}}``, ``{"dnat": {"addr": …, "port": …}}``,
  ``{"set": {"op": "update", …}}``, ``{"mangle": …}`` …). The text reader converts the
  statements kube-proxy, iptables-nft and common firewalls use; a part it does not
  understand becomes ``{"text": "…"}`` (the whole rule is always in ``text``). Stored
  rules keep ``expr`` only when their text would not give it back (JSON input with
  statements the text reader does not know); ``rule_expr(rule)`` reads it either way.

Sets and maps share ``NftSet`` (``kind`` "set" | "map"): ``type`` is the list of the
concatenated key types (``["ipv4_addr", "inet_proto", "inet_service"]``), ``map`` the
data type (``"verdict"``), ``timeout`` in seconds; each ``NftElement`` has ``key`` (one
item per concatenated component), ``value`` (a verdict dict for verdict maps), and
``comment`` / ``timeout`` / ``expires`` (seconds) as nft printed them.

What nft prints differs from what was written (``mark set mark or 0x4000`` comes back as
``meta mark set meta mark | 0x00004000``, ``priority dstnat-10`` as ``dstnat - 10``, set
timeouts as ``3h``, live affinity elements with ``expires``): this parser reads what nft
prints. Lines it cannot place become warnings with their line numbers; ParseError only for
input that is empty, binary, or not an nft ruleset at all.
"""

from __future__ import annotations

import gc
import json
import re
from typing import Any, Optional, Union

from pydantic import Field

from labreport.errors import ParseError
from labreport.parsers.base import ParseResult, ParserInfo, check_text, strip_prompt
from labreport.snapshot import NftRuleset, Record

FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")

# --------------------------------------------------------------------------- typed records


class NftElement(Record):
    key: list[Any] = Field(default_factory=list)  # one item per concatenated component
    value: Optional[Any] = None  # maps: verdict dict ({"goto": {"target": …}}) or data
    comment: Optional[str] = None
    timeout: Optional[float] = None  # seconds
    expires: Optional[float] = None  # seconds left (live elements of dynamic sets)
    text: Optional[str] = None


class NftSet(Record):
    name: str
    kind: str = "set"  # "set" | "map"
    type: list[str] = Field(default_factory=list)
    map: Optional[str] = None  # data type of a map: "verdict", "ipv4_addr" …
    flags: list[str] = Field(default_factory=list)
    timeout: Optional[float] = None
    size: Optional[int] = None
    comment: Optional[str] = None
    elements: list[NftElement] = Field(default_factory=list)
    handle: Optional[int] = None
    line_no: Optional[int] = None


class NftRule(Record):
    text: str
    expr: list[dict[str, Any]] = Field(default_factory=list)
    comment: Optional[str] = None
    handle: Optional[int] = None
    line_no: Optional[int] = None


class NftChain(Record):
    name: str
    type: Optional[str] = None  # filter | nat | route
    hook: Optional[str] = None
    priority: Optional[str] = None  # as printed: "dstnat - 10", "-110", "srcnat"
    prio: Optional[int] = None  # numeric value when known
    policy: Optional[str] = None
    device: Optional[str] = None
    comment: Optional[str] = None
    rules: list[NftRule] = Field(default_factory=list)
    handle: Optional[int] = None
    line_no: Optional[int] = None


class NftTable(Record):
    family: str
    name: str
    handle: Optional[int] = None
    comment: Optional[str] = None
    flags: list[str] = Field(default_factory=list)
    chains: list[NftChain] = Field(default_factory=list)
    sets: list[NftSet] = Field(default_factory=list)  # sets and maps
    other: list[str] = Field(default_factory=list)  # flowtables, objects … kept verbatim
    line_no: Optional[int] = None

    def chain(self, name: str) -> Optional[NftChain]:
        for c in self.chains:
            if c.name == name:
                return c
        return None

    def set(self, name: str) -> Optional[NftSet]:
        for s in self.sets:
            if s.name == name:
                return s
        return None


# --------------------------------------------------------------------------- small helpers

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


# --------------------------------------------------------------------------- rule text → expr

_PAYLOAD_PROTOS = {"ip", "ip6", "tcp", "udp", "sctp", "th", "icmp", "icmpv6", "ether", "vlan", "arp", "dccp"}
_META_KEYS = {
    "l4proto", "mark", "iifname", "oifname", "iif", "oif", "nfproto", "protocol", "skuid",
    "skgid", "length", "pkttype", "iiftype", "oiftype", "priority", "cgroup",
}
_BARE_META = {"iifname", "oifname", "iif", "oif", "mark", "skuid", "skgid", "l4proto"}
_OPS = {"==", "!=", "<", ">", "<=", ">=", "eq", "ne"}
_VERDICTS = {"accept", "drop", "return", "continue", "queue"}
# First words a printed rule can start with (nft(8): matches, statements, verdicts).
STATEMENT_STARTS = frozenset("""
ip ip6 inet tcp udp udplite sctp dccp th icmp icmpv6 igmp ah esp comp ether vlan arp rt
frag hbh mh dst srh ipsec tunnel osf socket exthdr meta mark iif oif iifname oifname
iiftype oiftype iifgroup oifgroup skuid skgid nfproto l4proto ct fib numgen jhash symhash
rt0 rt2 counter log limit quota reject drop accept return continue queue jump goto
masquerade dnat snat redirect tproxy notrack dup fwd update add delete set flow
synproxy xt comment priority random cgroup cpu pkttype sdif sdifname ibriport obriport
ibrname obrname time day hour secmark vmap policy
""".split())
_BINOPS = {"&": "&", "|": "|", "^": "^", "and": "&", "or": "|", "xor": "^"}


def _read_braced(tokens: list[str], i: int) -> tuple[list[str], int]:
    """tokens[i] == "{": the tokens inside the matching braces, and the index after it."""
    depth, j = 0, i
    while j < len(tokens):
        if tokens[j] == "{":
            depth += 1
        elif tokens[j] == "}":
            depth -= 1
            if depth == 0:
                return tokens[i + 1 : j], j + 1
        j += 1
    return tokens[i + 1 :], len(tokens)


def _split_commas(tokens: list[str]) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    depth = 0
    for t in tokens:
        if t == "{":
            depth += 1
        elif t == "}":
            depth -= 1
        if t == "," and depth == 0:
            parts.append([])
        else:
            parts[-1].append(t)
    return [p for p in parts if p]


def _selector(tokens: list[str], i: int) -> tuple[Optional[dict[str, Any]], int]:
    """One selector expression at tokens[i] (``ip saddr``, ``meta l4proto``, ``fib daddr
    type``, ``ct state``, ``numgen random mod 3`` …)."""
    n = len(tokens)
    t = tokens[i]
    nxt = tokens[i + 1] if i + 1 < n else ""
    if t in _PAYLOAD_PROTOS and nxt and re.fullmatch(r"[a-z][a-z-]*", nxt) and nxt not in ("vmap", "set"):
        return {"payload": {"protocol": t, "field": nxt}}, i + 2
    if t == "meta" and nxt:
        return {"meta": {"key": nxt}}, i + 2
    if t in _BARE_META:
        return {"meta": {"key": t}}, i + 1
    if t == "ct" and nxt:
        return {"ct": {"key": nxt}}, i + 2
    if t == "fib":
        flags: list[str] = []
        j = i + 1
        while j < n and tokens[j] in ("saddr", "daddr", "mark", "iif", "oif", "."):
            if tokens[j] != ".":
                flags.append(tokens[j])
            j += 1
        result = tokens[j] if j < n else ""
        return {"fib": {"result": result, "flags": flags}}, j + 1
    if t == "numgen" and i + 3 < n and tokens[i + 2] == "mod":
        mod = _scalar(tokens[i + 3])
        expr: dict[str, Any] = {"numgen": {"mode": nxt, "mod": mod, "offset": 0}}
        j = i + 4
        if j + 1 < n and tokens[j] == "offset":
            expr["numgen"]["offset"] = _scalar(tokens[j + 1])
            j += 2
        return expr, j
    return None, i


def _lhs(tokens: list[str], i: int) -> tuple[Optional[Any], int]:
    """A selector, a concatenation ``a . b . c``, or a masked ``meta mark & 0x4000``."""
    first, j = _selector(tokens, i)
    if first is None:
        return None, i
    parts = [first]
    while j + 1 < len(tokens) and tokens[j] == ".":
        nxt, k = _selector(tokens, j + 1)
        if nxt is None:
            break
        parts.append(nxt)
        j = k
    lhs: Any = parts[0] if len(parts) == 1 else {"concat": parts}
    if j + 1 < len(tokens) and tokens[j] in _BINOPS:
        lhs = {_BINOPS[tokens[j]]: [lhs, _scalar(tokens[j + 1])]}
        j += 2
    return lhs, j


def _verdict(tokens: list[str], i: int) -> tuple[Optional[dict[str, Any]], int]:
    t = tokens[i] if i < len(tokens) else ""
    if t in ("jump", "goto") and i + 1 < len(tokens):
        return {t: {"target": _unquote(tokens[i + 1])}}, i + 2
    if t in _VERDICTS:
        return {t: None}, i + 1
    return None, i


def _set_literal(inner: list[str]) -> dict[str, Any]:
    items = []
    for part in _split_commas(inner):
        items.append(_scalar(part[0]) if len(part) == 1 else " ".join(part))
    return {"set": items}


def _vmap_data(inner: list[str]) -> dict[str, Any]:
    pairs = []
    for part in _split_commas(inner):
        if ":" in part:
            k = part.index(":")
            key_toks = [t for t in part[:k] if t != "."]
            key = _scalar(key_toks[0]) if len(key_toks) == 1 else {"concat": [_scalar(t) for t in key_toks]}
            verdict, _ = _verdict(part, k + 1)
            pairs.append([key, verdict if verdict is not None else " ".join(part[k + 1 :])])
    return {"set": pairs}


def _payload(proto: str, fld: str) -> dict[str, Any]:
    return {"payload": {"protocol": proto, "field": fld}}


def _fast_addr_verdict(m: re.Match[str]) -> list[dict[str, Any]]:
    op = "!=" if m.group(3) else "=="
    return [{"match": {"op": op, "left": _payload(m.group(1), m.group(2)), "right": _scalar(m.group(4))}},
            {m.group(5): {"target": m.group(6)}}]


def _fast_dnat(m: re.Match[str]) -> list[dict[str, Any]]:
    addr, port = m.group(3), m.group(4)
    nat: dict[str, Any] = {"addr": addr}
    if port:
        nat["port"] = int(port)
    return [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": m.group(1)}}, {m.group(2): nat}]


def _fast_svc_masq(m: re.Match[str]) -> list[dict[str, Any]]:
    return [
        {"match": {"op": "==", "left": _payload(m.group(1), "daddr"), "right": _scalar(m.group(2))}},
        {"match": {"op": "==", "left": _payload(m.group(3), "dport"), "right": int(m.group(4))}},
        {"match": {"op": "!=", "left": _payload(m.group(5), "saddr"), "right": _scalar(m.group(6))}},
        {"jump": {"target": m.group(7)}},
    ]


_VMAP_ITEM_RE = re.compile(r"(\d+) : (goto|jump) (\S+)")


def _fast_numgen(m: re.Match[str]) -> Optional[list[dict[str, Any]]]:
    items = m.group(2).split(", ")
    pairs = []
    for it in items:
        im = _VMAP_ITEM_RE.fullmatch(it)
        if im is None:
            return None
        pairs.append([int(im.group(1)), {im.group(2): {"target": im.group(3)}}])
    return [{"vmap": {"key": {"numgen": {"mode": "random", "mod": int(m.group(1)), "offset": 0}},
                      "data": {"set": pairs}}}]


def _fast_update(m: re.Match[str]) -> list[dict[str, Any]]:
    return [{"set": {"op": m.group(1), "elem": _payload(m.group(3), m.group(4)), "set": m.group(2)}}]


def _fast_verdict(m: re.Match[str]) -> list[dict[str, Any]]:
    return [{m.group(1): {"target": m.group(2)}}]


# The shapes kube-proxy writes by the ten thousand, matched whole (the general statement
# reader below gives the same statements, only slower; tests compare both).
_FAST_RULES: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"(ip6?) (saddr|daddr) (!= )?([^\s{}\"]+) (jump|goto) ([^\s{}\"]+)"), _fast_addr_verdict),
    (re.compile(r"meta l4proto (\w+) (dnat|snat) to ([0-9.]+)(?::(\d+))?"), _fast_dnat),
    (re.compile(r"(ip6?) daddr ([^\s{}\"]+) (tcp|udp|sctp) dport (\d+) (ip6?) saddr != ([^\s{}\"]+) jump ([^\s{}\"]+)"),
     _fast_svc_masq),
    (re.compile(r"numgen random mod (\d+) vmap \{ (.*) \}"), _fast_numgen),
    (re.compile(r"(update|add) (@[^\s{}\"]+) \{ (ip6?) (saddr|daddr) \}"), _fast_update),
    (re.compile(r"(jump|goto) ([^\s{}\"]+)"), _fast_verdict),
]


def rule_to_expr(text: str) -> tuple[list[dict[str, Any]], Optional[str]]:
    """Convert one printed rule into nft JSON statements (best effort), plus its comment."""
    if '"' not in text:
        for rx, build in _FAST_RULES:
            m = rx.fullmatch(text)
            if m is not None:
                fast = build(m)
                if fast is not None:
                    return fast, None
    return rule_to_expr_general(text)


def rule_to_expr_general(text: str) -> tuple[list[dict[str, Any]], Optional[str]]:
    """The general statement reader (every rule shape this module knows)."""
    tokens = tokenize(text)
    exprs: list[dict[str, Any]] = []
    comment: Optional[str] = None
    unknown: list[str] = []
    i, n = 0, len(tokens)

    def flush_unknown() -> None:
        if unknown:
            exprs.append({"text": " ".join(unknown)})
            unknown.clear()

    while i < n:
        t = tokens[i]
        if t == "comment" and i + 1 < n:
            comment = _unquote(tokens[i + 1])
            i += 2
            continue
        if t == "counter":
            j = i + 1
            c: dict[str, Any] = {}
            while j + 1 < n and tokens[j] in ("packets", "bytes"):
                c[tokens[j]] = _scalar(tokens[j + 1])
                j += 2
            flush_unknown()
            exprs.append({"counter": c or None})
            i = j
            continue
        verdict, j = _verdict(tokens, i)
        if verdict is not None:
            flush_unknown()
            exprs.append(verdict)
            i = j
            continue
        if t == "reject":
            flush_unknown()
            j = i + 1
            r: Optional[dict[str, Any]] = None
            if j + 2 < n and tokens[j] == "with":
                r = {"type": tokens[j + 1], "expr": tokens[j + 2]}
                j += 3
            exprs.append({"reject": r})
            i = j
            continue
        if t == "masquerade":
            flush_unknown()
            j = i + 1
            flags = []
            while j < n and tokens[j] in ("fully-random", "random", "persistent"):
                flags.append(tokens[j])
                j += 1
            exprs.append({"masquerade": {"flags": flags[0] if len(flags) == 1 else flags} if flags else None})
            i = j
            continue
        if t in ("dnat", "snat") and i + 1 < n:
            flush_unknown()
            j = i + 1
            family = None
            if tokens[j] in ("ip", "ip6"):
                family = tokens[j]
                j += 1
            if j < n and tokens[j] == "to":
                j += 1
            nat: dict[str, Any] = {}
            if family:
                nat["family"] = family
            sel, k = _lhs(tokens, j) if j < n else (None, j)
            if sel is not None and k + 1 < n and tokens[k] == "map":  # dnat to tcp dport map @ports
                data: Any = tokens[k + 1]
                k += 2
                if data == "{":
                    inner, k = _read_braced(tokens, k - 1)
                    data = _set_literal(inner)
                nat["addr"] = {"map": {"key": sel, "data": data}}
                exprs.append({t: nat})
                i = k
                continue
            target = tokens[j] if j < n else ""
            m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)", target) or re.fullmatch(r"([0-9.]+):(\d+)", target)
            if m:
                nat["addr"], nat["port"] = m.group(1), int(m.group(2))
            else:
                nat["addr"] = target.strip("[]")
            exprs.append({t: nat})
            i = j + 1
            continue
        if t in ("update", "add", "delete") and i + 1 < n and tokens[i + 1].startswith("@"):
            flush_unknown()
            setname = tokens[i + 1]
            j = i + 2
            elem: Any = None
            if j < n and tokens[j] == "{":
                inner, j = _read_braced(tokens, j)
                e, _ = _lhs(inner, 0)
                elem = e if e is not None else " ".join(inner)
            exprs.append({"set": {"op": t, "elem": elem, "set": setname}})
            i = j
            continue
        lhs, j = _lhs(tokens, i)
        if lhs is not None:
            flush_unknown()
            if j < n and tokens[j] == "vmap":
                j += 1
                if j < n and tokens[j] == "{":
                    inner, j = _read_braced(tokens, j)
                    exprs.append({"vmap": {"key": lhs, "data": _vmap_data(inner)}})
                elif j < n:
                    exprs.append({"vmap": {"key": lhs, "data": tokens[j]}})
                    j += 1
                i = j
                continue
            if j < n and tokens[j] == "set":  # meta mark set <expr>
                rhs, k = _lhs(tokens, j + 1)
                if rhs is None and j + 1 < n:
                    rhs, k = _scalar(tokens[j + 1]), j + 2
                exprs.append({"mangle": {"key": lhs, "value": rhs}})
                i = k
                continue
            op = "=="
            if j < n and tokens[j] in _OPS:
                op = {"eq": "==", "ne": "!="}.get(tokens[j], tokens[j])
                j += 1
            if j < n and tokens[j] == "{":
                inner, j = _read_braced(tokens, j)
                right: Any = _set_literal(inner)
            elif j < n:
                right = _scalar(tokens[j])
                j += 1
                while j + 1 < n and tokens[j] == "," and tokens[j + 1] not in ("{", "}"):
                    right = right if isinstance(right, list) else [right]
                    right.append(_scalar(tokens[j + 1]))
                    j += 2
            else:
                right = None
            exprs.append({"match": {"op": op, "left": lhs, "right": right}})
            i = j
            continue
        unknown.append(t)
        i += 1
    flush_unknown()
    return exprs, comment


# --------------------------------------------------------------------------- expr → text


def _val_text(v: Any) -> str:
    if isinstance(v, dict):
        if "prefix" in v:
            return f"{v['prefix']['addr']}/{v['prefix']['len']}"
        if "range" in v:
            return f"{_val_text(v['range'][0])}-{_val_text(v['range'][1])}"
        if "concat" in v:
            return " . ".join(_val_text(x) for x in v["concat"])
        if "set" in v:
            items = v["set"]
            if items and isinstance(items[0], list):
                return "{ " + ", ".join(f"{_val_text(k)} : {_val_text(d)}" for k, d in items) + " }"
            return "{ " + ", ".join(_val_text(x) for x in items) + " }"
        if "payload" in v:
            p = v["payload"]
            return f"{p.get('protocol', '')} {p.get('field', '')}".strip()
        if "meta" in v:
            return f"meta {v['meta'].get('key', '')}"
        if "ct" in v:
            return f"ct {v['ct'].get('key', '')}"
        if "fib" in v:
            flags = v["fib"].get("flags") or []
            flags = flags if isinstance(flags, list) else [flags]
            return f"fib {' . '.join(flags)} {v['fib'].get('result', '')}"
        if "map" in v and isinstance(v["map"], dict):
            mp = v["map"]
            data = mp.get("data")
            return f"{_val_text(mp.get('key'))} map {data if isinstance(data, str) else _val_text(data)}"
        if "numgen" in v:
            g = v["numgen"]
            s = f"numgen {g.get('mode', 'random')} mod {g.get('mod')}"
            return s + (f" offset {g['offset']}" if g.get("offset") else "")
        for op in ("&", "|", "^"):
            if op in v:
                a, b = v[op]
                b_txt = f"0x{b:08x}" if isinstance(b, int) else _val_text(b)
                return f"{_val_text(a)} {op} {b_txt}"
        for verdict in ("jump", "goto"):
            if verdict in v:
                return f"{verdict} {v[verdict]['target']}"
        if "elem" in v:
            return _val_text(v["elem"].get("val"))
        return json.dumps(v, sort_keys=True)
    if isinstance(v, list):
        return ", ".join(_val_text(x) for x in v)
    if v is None:
        return ""
    return str(v)


def expr_to_text(exprs: list[dict[str, Any]]) -> str:
    """Render nft JSON statements the way ``nft list ruleset`` prints them (the statements
    kube-proxy and common firewalls use; others as compact JSON)."""
    parts: list[str] = []
    for e in exprs:
        if not isinstance(e, dict) or not e:
            continue
        k, v = next(iter(e.items()))
        if k == "match":
            left, right, op = v.get("left"), v.get("right"), v.get("op", "==")
            lt = _val_text(left)
            if isinstance(left, dict) and any(x in left for x in ("&", "|", "^")) and isinstance(right, int):
                rt = f"0x{right:08x}"
            else:
                rt = _val_text(right)
            masked = isinstance(left, dict) and any(x in left for x in ("&", "|", "^"))
            if op == "in" or (op == "==" and not masked):
                parts.append(f"{lt} {rt}")
            else:
                parts.append(f"{lt} {op} {rt}")
        elif k == "vmap":
            data = v.get("data")
            parts.append(f"{_val_text(v.get('key'))} vmap {data if isinstance(data, str) else _val_text(data)}")
        elif k in ("jump", "goto"):
            parts.append(f"{k} {v['target']}")
        elif k in _VERDICTS:
            parts.append(k)
        elif k == "reject":
            parts.append("reject" if not v or v.get("expr") in (None, "port-unreachable") else f"reject with {v.get('type')} {v.get('expr')}")
        elif k == "masquerade":
            flags = (v or {}).get("flags") if isinstance(v, dict) else None
            flags = [flags] if isinstance(flags, str) else (flags or [])
            parts.append(" ".join(["masquerade", *flags]))
        elif k in ("dnat", "snat"):
            v = v or {}
            addr = v.get("addr")
            addr_t = _val_text(addr)
            port = v.get("port")
            fam = f"{v['family']} " if v.get("family") else ""
            if port is not None:
                addr_t = f"[{addr_t}]:{port}" if ":" in addr_t else f"{addr_t}:{port}"
            parts.append(f"{k} {fam}to {addr_t}")
        elif k == "set":
            elem = v.get("elem")
            parts.append(f"{v.get('op')} {v.get('set')} {{ {_val_text(elem)} }}")
        elif k == "mangle":
            parts.append(f"{_val_text(v.get('key'))} set {_val_text(v.get('value'))}")
        elif k == "counter":
            if isinstance(v, dict) and v:
                parts.append(f"counter packets {v.get('packets', 0)} bytes {v.get('bytes', 0)}")
            else:
                parts.append("counter")
        elif k == "text":
            parts.append(str(v))
        elif k == "xt" and isinstance(v, dict):
            parts.append(f"xt {v.get('type', '')} {v.get('name', '')}".replace("  ", " ").strip())
        else:
            parts.append(json.dumps(e, sort_keys=True))
    return " ".join(parts)


# --------------------------------------------------------------------------- text ruleset

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
# stores its statements (``expr``) only when its text does not give them back: from text
# input never (``rule_expr`` reads the text when asked), from JSON input only for
# statements the text reader would not reproduce.


def _compact(d: dict[str, Any], keep: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k in keep or (v is not None and v != [])}


def new_table(family: str, name: str, **kw: Any) -> dict[str, Any]:
    d = {"family": family, "name": name, "chains": [], "sets": []}
    d.update({k: v for k, v in kw.items() if v is not None})
    return d


def new_chain(name: str, **kw: Any) -> dict[str, Any]:
    d = {"name": name, "rules": []}
    d.update({k: v for k, v in kw.items() if v is not None})
    return d


def new_rule(text: str, expr: Optional[list[dict[str, Any]]] = None, comment: Optional[str] = None,
             handle: Optional[int] = None, line_no: Optional[int] = None) -> dict[str, Any]:
    d: dict[str, Any] = {"text": text}
    if expr is not None:
        d["expr"] = expr
    if comment is not None:
        d["comment"] = comment
    if handle is not None:
        d["handle"] = handle
    if line_no is not None:
        d["line_no"] = line_no
    return d


def new_set(name: str, kind: str = "set", **kw: Any) -> dict[str, Any]:
    d = {"name": name, "kind": kind, "elements": []}
    d.update({k: v for k, v in kw.items() if v is not None})
    return d


def new_element(key: list[Any], value: Any = None, text: Optional[str] = None, comment: Optional[str] = None,
                timeout: Optional[float] = None, expires: Optional[float] = None) -> dict[str, Any]:
    d: dict[str, Any] = {"key": key}
    if value is not None:
        d["value"] = value
    if text is not None:
        d["text"] = text
    if comment is not None:
        d["comment"] = comment
    if timeout is not None:
        d["timeout"] = timeout
    if expires is not None:
        d["expires"] = expires
    return d


def rule_expr(rule: dict[str, Any]) -> list[dict[str, Any]]:
    """A stored rule's statements: kept ones, or read from its text."""
    expr = rule.get("expr")
    if expr is not None:
        return expr
    try:
        return rule_to_expr(rule.get("text") or "")[0]
    except Exception:  # best effort: never fail a reader
        return [{"text": rule.get("text") or ""}]


def rule_comment(rule: dict[str, Any]) -> Optional[str]:
    if "comment" in rule:
        return rule["comment"]
    text = rule.get("text") or ""
    return rule_to_expr(text)[1] if "comment" in text else None


_FAST_ELEM_RE = re.compile(r"^([^\s:{}\"]+(?: \. [^\s:{}\"]+)*)(?: : (goto|jump) (\S+))?$")


def _parse_element(text: str, is_map: bool) -> dict[str, Any]:
    text = text.strip()
    m = _FAST_ELEM_RE.match(text)
    if m and (is_map == bool(m.group(2))):
        key = [_scalar(t) for t in m.group(1).split(" . ")]
        value = {m.group(2): {"target": m.group(3)}} if m.group(2) else None
        return new_element(key, value, text)
    toks = tokenize(text)
    key_toks: list[str] = []
    el = new_element([], None, text)
    i, n = 0, len(toks)
    in_value = False
    value_toks: list[str] = []
    while i < n:
        t = toks[i]
        if in_value:
            value_toks.append(t)
            i += 1
            continue
        if t == ":" and is_map:
            in_value = True
            i += 1
            continue
        if t == "comment" and i + 1 < n:
            el["comment"] = _unquote(toks[i + 1])
            i += 2
            continue
        if t in ("timeout", "expires") and i + 1 < n:
            el[t] = parse_duration(toks[i + 1])
            i += 2
            continue
        if t == "counter":
            i += 1
            while i + 1 < n and toks[i] in ("packets", "bytes"):
                i += 2
            continue
        if t != ".":
            key_toks.append(t)
        i += 1
    # nft prints spaces around a map's colon, so an IPv6 key never swallows it
    el["key"] = [_scalar(t) for t in key_toks]
    if value_toks:
        verdict, _ = _verdict(value_toks, 0)
        el["value"] = verdict if verdict is not None else (
            _scalar(value_toks[0]) if len(value_toks) == 1 else " ".join(value_toks)
        )
    return el


class _TextParser:
    def __init__(self, text: str, result: ParseResult[NftRuleset]):
        self.lines = text.split("\n")
        self.res = result
        self.tables: list[dict[str, Any]] = []

    def warn(self, line_no: int, line: str, msg: str) -> None:
        self.res.warn(line_no, line, msg)

    def run(self) -> list[dict[str, Any]]:
        i = 0
        n = len(self.lines)
        seen_table = False
        while i < n:
            raw = self.lines[i]
            line, _ = strip_prompt(raw)
            s = line.strip()
            if not s or s.startswith("#"):
                i += 1
                continue
            body, handle = _strip_handle(s)
            m = _TABLE_RE.match(body)
            if m:
                seen_table = True
                family, name = m.group(1), _unquote(m.group(2))
                if family not in FAMILIES:
                    self.warn(i + 1, raw, f"unknown table family {family!r}")
                table = new_table(family, name, handle=handle, line_no=i + 1)
                i = self._table_body(table, i + 1)
                self.tables.append(table)
                continue
            if re.match(r"^(nft\s|sudo\s)", s):
                i += 1  # the command line itself, pasted with the output
                continue
            self.warn(i + 1, raw, "outside any table: not part of an nft ruleset listing" if seen_table or i < 5 else "outside any table")
            i += 1
        return self.tables

    def _table_body(self, table: dict[str, Any], i: int) -> int:
        n = len(self.lines)
        label = f"{table['family']} {table['name']}"
        while i < n:
            raw = self.lines[i]
            s = raw.strip()
            if not s or s.startswith("#"):
                i += 1
                continue
            body, handle = _strip_handle(s)
            if body == "}":
                return i + 1
            m = _BLOCK_RE.match(body) if body.endswith("{") else None
            if m:
                kind, name = m.group(1), _unquote(m.group(2))
                if kind == "chain":
                    chain = new_chain(name, handle=handle, line_no=i + 1)
                    i = self._chain_body(chain, i + 1)
                    table["chains"].append(chain)
                elif kind in ("set", "map"):
                    st = new_set(name, kind, handle=handle, line_no=i + 1)
                    i = self._set_body(st, i + 1)
                    table["sets"].append(st)
                else:
                    start = i
                    i = self._skip_block(i + 1)
                    table.setdefault("other", []).append("\n".join(x.strip() for x in self.lines[start:i]))
                continue
            if body.startswith("comment "):
                table["comment"] = _unquote(body[len("comment ") :].strip())
                i += 1
                continue
            if body.startswith("flags "):
                table["flags"] = [f.strip() for f in body[len("flags ") :].split(",") if f.strip()]
                i += 1
                continue
            if _TABLE_RE.match(body):
                self.warn(i + 1, raw, f"table {label} is not closed before the next table")
                return i
            self.warn(i + 1, raw, f"not understood inside table {label}")
            i += 1
        self.warn(n, self.lines[-1] if self.lines else "", f"table {label}: missing closing brace (truncated input?)")
        return n

    def _skip_block(self, i: int) -> int:
        depth = 1
        n = len(self.lines)
        while i < n:
            s = self.lines[i]
            depth += s.count("{") - s.count("}")
            i += 1
            if depth <= 0:
                return i
        return n

    def _chain_body(self, chain: dict[str, Any], i: int) -> int:
        n = len(self.lines)
        lines = self.lines
        rules = chain["rules"]
        while i < n:
            raw = lines[i]
            s = raw.strip()
            if not s:
                i += 1
                continue
            if s[0] == "#" and not s.startswith("# handle"):
                i += 1
                continue
            body, handle = _strip_handle(s)
            if body == "}":
                return i + 1
            if body.endswith("{") and (_BLOCK_RE.match(body) or _TABLE_RE.match(body)):
                self.warn(i + 1, raw, f"chain {chain['name']}: missing closing brace")
                return i
            if body.startswith("type ") and " hook " in body:
                self._chain_header(chain, body, i, raw)
                i += 1
                continue
            if body.startswith("comment ") and not rules and re.fullmatch(r'comment\s+"[^"]*"', body):
                chain["comment"] = _unquote(body[len("comment ") :].strip())
                i += 1
                continue
            if body.startswith("policy ") and body.rstrip(";").count(" ") == 1:
                chain["policy"] = body.rstrip(";").split()[1]
                i += 1
                continue
            # a rule; long set literals may wrap over several lines (braces open)
            text = body
            start = i
            if "{" in text:
                depth = text.count("{") - text.count("}")
                parts = [text]
                while depth > 0 and i + 1 < n:
                    i += 1
                    nxt, h2 = _strip_handle(lines[i].strip())
                    parts.append(nxt)
                    depth += nxt.count("{") - nxt.count("}")
                    handle = h2 if h2 is not None else handle
                text = " ".join(parts)
            first = text.split(" ", 1)[0]
            if first not in STATEMENT_STARTS and not first.startswith("@"):
                self.warn(start + 1, raw, f"chain {chain['name']}: not an nft statement (a wrapped or cut line?); kept as a rule")
            rules.append(new_rule(text, None, None, handle, start + 1))
            i += 1
        self.warn(n, "", f"chain {chain['name']}: missing closing brace (truncated input?)")
        return n

    def _chain_header(self, chain: dict[str, Any], body: str, i: int, raw: str) -> None:
        for stmt in body.split(";"):
            stmt = stmt.strip()
            if not stmt:
                continue
            if stmt.startswith("type "):
                m = re.match(r"type\s+(\S+)\s+hook\s+(\S+)(?:\s+device\s+(\"[^\"]*\"|\S+))?(?:\s+priority\s+(.+))?$", stmt)
                if not m:
                    self.warn(i + 1, raw, "chain header not understood")
                    continue
                chain["type"], chain["hook"] = m.group(1), m.group(2)
                chain["device"] = _unquote(m.group(3)) if m.group(3) else None
                if m.group(4):
                    chain["priority"] = m.group(4).strip()
                    chain["prio"] = priority_value(chain["priority"])
            elif stmt.startswith("policy "):
                chain["policy"] = stmt.split()[1]
            elif stmt.startswith("comment "):
                chain["comment"] = _unquote(stmt[len("comment ") :].strip())
            else:
                self.warn(i + 1, raw, f"chain header part not understood: {stmt!r}")

    def _set_body(self, st: dict[str, Any], i: int) -> int:
        n = len(self.lines)
        label = f"{st['kind']} {st['name']}"
        while i < n:
            raw = self.lines[i]
            s = raw.strip()
            if not s or s.startswith("#"):
                i += 1
                continue
            body, _ = _strip_handle(s)
            if body == "}":
                return i + 1
            if body.startswith("elements = {") or body.startswith("elements={"):
                start = i
                first = body[body.index("{") :]
                parts = [first]
                depth = first.count("{") - first.count("}")
                while depth > 0 and i + 1 < n:
                    i += 1
                    nxt = self.lines[i].strip()
                    parts.append(nxt)
                    depth += nxt.count("{") - nxt.count("}")
                if depth > 0:
                    self.warn(start + 1, raw, f"{label}: elements not closed (truncated input?)")
                text = " ".join(parts)
                inner = text.strip()[1:]
                inner = inner[: inner.rfind("}")] if "}" in inner else inner
                is_map = st["kind"] == "map"
                elements = st["elements"]
                for part in _split_elements(inner):
                    try:
                        elements.append(_parse_element(part, is_map))
                    except Exception:
                        self.warn(start + 1, part, f"{label}: element not understood; skipped")
                i += 1
                continue
            for stmt in body.split(";"):
                stmt = stmt.strip()
                if not stmt:
                    continue
                key, _, val = stmt.partition(" ")
                val = val.strip()
                if key in ("type", "typeof"):
                    if " : " in val:
                        k, d = val.split(" : ", 1)
                        st["type"] = [x.strip() for x in k.split(" . ")]
                        st["map"] = d.strip()
                    else:
                        st["type"] = [x.strip() for x in val.split(" . ")]
                elif key == "flags":
                    st["flags"] = [f.strip() for f in val.split(",") if f.strip()]
                elif key == "timeout":
                    st["timeout"] = parse_duration(val)
                elif key == "size":
                    st["size"] = int(val) if val.isdigit() else None
                elif key == "comment":
                    st["comment"] = _unquote(val)
                elif key in ("gc-interval", "policy", "counter", "auto-merge"):
                    pass
                else:
                    self.warn(i + 1, raw, f"{label}: not understood")
            i += 1
        self.warn(n, "", f"{label}: missing closing brace (truncated input?)")
        return n


def _split_elements(inner: str) -> list[str]:
    if '"' not in inner and "{" not in inner:
        return [x.strip() for x in inner.split(",") if x.strip()]
    out, cur, depth, quoted = [], [], 0, False
    for ch in inner:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "{":
            depth += 1
        elif not quoted and ch == "}":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return [x for x in out if x]


# --------------------------------------------------------------------------- JSON ruleset


def _json_element(e: Any, is_map: bool) -> dict[str, Any]:
    value: Any = None
    if is_map and isinstance(e, list) and len(e) == 2:
        e, value = e
    comment = timeout = expires = None
    if isinstance(e, dict) and "elem" in e:
        inner = e["elem"]
        comment, timeout, expires = inner.get("comment"), inner.get("timeout"), inner.get("expires")
        e = inner.get("val")
    key = list(e["concat"]) if isinstance(e, dict) and "concat" in e else [e]
    txt = " . ".join(_val_text(k) for k in key)
    if comment:
        txt += f' comment "{comment}"'
    if value is not None:
        txt += f" : {_val_text(value)}"
    return new_element(key, value, txt, comment, timeout, expires)


def _parse_json(data: Any, res: ParseResult[NftRuleset]) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get("nftables"), list):
        raise ParseError("JSON, but not `nft -j list ruleset` output (no \"nftables\" list)", source=res.source)
    tables: dict[tuple[str, str], dict[str, Any]] = {}
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    sets: dict[tuple[str, str, str], dict[str, Any]] = {}

    def table_of(obj: dict[str, Any]) -> dict[str, Any]:
        key = (str(obj.get("family")), str(obj.get("table")))
        if key not in tables:
            tables[key] = new_table(key[0], key[1])
        return tables[key]

    for idx, item in enumerate(data["nftables"], 1):
        if not isinstance(item, dict) or len(item) != 1:
            res.warn(idx, json.dumps(item)[:200], "not an nftables object; skipped")
            continue
        kind, obj = next(iter(item.items()))
        try:
            if kind == "metainfo":
                continue
            if kind == "table":
                key = (str(obj["family"]), str(obj["name"]))
                t = tables.setdefault(key, new_table(key[0], key[1]))
                t["handle"] = obj.get("handle")
                t["comment"] = obj.get("comment")
                flags = obj.get("flags") or []
                t["flags"] = flags if isinstance(flags, list) else [flags]
            elif kind == "chain":
                t = table_of(obj)
                c = new_chain(obj["name"], type=obj.get("type"), hook=obj.get("hook"), policy=obj.get("policy"),
                              device=obj.get("dev"), comment=obj.get("comment"), handle=obj.get("handle"))
                prio = obj.get("prio")
                if isinstance(prio, int):
                    c["prio"], c["priority"] = prio, str(prio)
                elif prio is not None:
                    c["priority"] = str(prio)
                    c["prio"] = priority_value(c["priority"])
                t["chains"].append(c)
                chains[(t["family"], t["name"], c["name"])] = c
            elif kind == "rule":
                t = table_of(obj)
                key = (t["family"], t["name"], obj["chain"])
                c = chains.get(key)
                if c is None:
                    c = new_chain(obj["chain"])
                    t["chains"].append(c)
                    chains[key] = c
                expr = obj.get("expr") or []
                text = expr_to_text(expr)
                if obj.get("comment"):
                    text += f' comment "{obj["comment"]}"'
                try:
                    same = rule_to_expr(text)[0] == expr
                except Exception:
                    same = False
                c["rules"].append(new_rule(text, None if same else expr, obj.get("comment"), obj.get("handle")))
            elif kind in ("set", "map"):
                t = table_of(obj)
                typ = obj.get("type")
                flags = obj.get("flags") or []
                st = new_set(
                    obj["name"], kind,
                    type=typ if isinstance(typ, list) else ([typ] if typ else []),
                    map=obj.get("map") if kind == "map" else None,
                    flags=flags if isinstance(flags, list) else [flags],
                    timeout=obj.get("timeout"), size=obj.get("size"), comment=obj.get("comment"),
                    handle=obj.get("handle"),
                )
                st["elements"] = [_json_element(e, kind == "map") for e in obj.get("elem") or []]
                t["sets"].append(st)
                sets[(t["family"], t["name"], st["name"])] = st
            elif kind == "element":
                t = table_of(obj)
                st = sets.get((t["family"], t["name"], obj.get("name", "")))
                if st is None:
                    res.warn(idx, json.dumps(item)[:200], "element of an unknown set; skipped")
                    continue
                st["elements"].extend(_json_element(e, st["kind"] == "map") for e in obj.get("elem") or [])
            else:
                t = table_of(obj) if isinstance(obj, dict) and "table" in obj else None
                if t is not None:
                    t.setdefault("other", []).append(json.dumps(item, sort_keys=True))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            res.warn(idx, json.dumps(item)[:200], f"{kind} not understood ({exc.__class__.__name__}: {exc}); skipped")
    return list(tables.values())


# --------------------------------------------------------------------------- entry points


def _detect(text: str) -> float:
    head = text.lstrip()[:2000]
    if head.startswith("{") and '"nftables"' in head:
        return 0.95
    for line in head.splitlines()[:15]:
        s, _ = strip_prompt(line)
        s = s.strip()
        if _TABLE_RE.match(_strip_handle(s)[0]):
            return 0.9
        if s.startswith("nft ") and "list" in s:
            return 0.6
    return 0.0


INFO = ParserInfo(
    name="nft",
    commands=("nft list ruleset", "nft -a list ruleset", "nft -j list ruleset"),
    description="nftables ruleset (text or JSON): tables, chains with hook/priority/policy, rules as "
    "statements, sets and maps with their elements",
    detect=_detect,
    target="nftables",
)


def parse(text: Union[str, bytes], *, source: str = "<input>") -> ParseResult[NftRuleset]:
    # A big ruleset is millions of small dicts and lists that all stay alive: with the
    # cyclic GC on, its repeated full passes over them cost more than the parsing itself.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse(text, source=source)
    finally:
        if enabled:
            gc.enable()


def _parse(text: Union[str, bytes], *, source: str) -> ParseResult[NftRuleset]:
    text = check_text(text, source=source)
    res: ParseResult[NftRuleset] = ParseResult(value=NftRuleset(), parser=INFO.name, source=source)
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise ParseError(f"looks like JSON but is not valid JSON: {exc}", source=source) from None
        tables = _parse_json(data, res)
    else:
        if _detect(text) == 0.0 and not re.search(r"^\s*table\s+\S+\s+\S+\s*\{", text, re.M):
            raise ParseError("not `nft list ruleset` output: no `table <family> <name> {` line", source=source)
        tables = _TextParser(text, res).run()
    res.value.tables = tables
    return res


def tables_of(ruleset: Optional[NftRuleset]) -> list[NftTable]:
    """The typed tables of a ruleset (re-validated from the snapshot's dicts)."""
    if ruleset is None:
        return []
    out = []
    for t in ruleset.tables:
        if isinstance(t, NftTable):
            out.append(t)
            continue
        try:
            table = NftTable.model_validate(t)
        except Exception:  # a hand-edited snapshot: skip what is not a table
            continue
        for chain, raw_chain in zip(table.chains, t.get("chains") or []):
            for rule, raw_rule in zip(chain.rules, raw_chain.get("rules") or []):
                if "expr" not in raw_rule:
                    rule.expr = rule_expr(raw_rule)
                if rule.comment is None:
                    rule.comment = rule_comment(raw_rule)
        out.append(table)
    return out
