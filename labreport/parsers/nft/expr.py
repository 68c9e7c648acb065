"""One printed nft rule → its statements.

``rule_to_expr`` reads the text nft prints into statements in nft's own JSON schema
(``{"match": …}``, ``{"vmap": …}``, ``{"goto": {"target": …}}`` …): the shapes kube-proxy
writes by the ten thousand are matched whole by regular expressions, everything else goes
through the general statement reader (tests compare both). ``typed_statements`` (in
:mod:`labreport.parsers.nft.typed`) turns nft's JSON schema into the snapshot's models.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from labreport.parsers.nft.common import _scalar, _unquote, tokenize

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


