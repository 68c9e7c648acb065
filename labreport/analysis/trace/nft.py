"""An interpreter for nftables rules as ``nft list ruleset`` prints them (kube-proxy's
nftables mode and common firewalls): payload/meta/ct/fib matches, anonymous and named sets,
verdict maps (concatenated keys, intervals), ``numgen random mod N`` (one branch per value,
1/N each), mark and ct mark arithmetic, jump/goto/return, accept/drop/reject, dnat/snat,
masquerade, redirect, set updates (affinity). A statement it does not know stops the trace
with "unknown" naming the rule.

It reads the typed snapshot models (``NftTable`` → ``NftChain`` → ``NftRule.expr``, the
statements parsed once by parsers/nft) through :func:`view`, which only indexes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Optional

from labreport.analysis.trace.addr import hostport, in_net, ip_int, net
from labreport.analysis.trace.iptables import MAX_DEPTH, Env, Exit, _addr_kind
from labreport.analysis.trace.model import TraceHop
from labreport.analysis.trace.netfilter import HookEntry
from labreport.analysis.trace.packet import Pkt
from labreport.snapshot import (NftBinop, NftChain, NftConcat, NftCounter, NftCt, NftFib, NftMangle, NftMatch,
                                NftMeta, NftNat, NftNumgen, NftOther, NftPayload, NftPrefix, NftRange, NftReject,
                                NftRule, NftRuleset, NftSet, NftSetLiteral, NftSetUpdate, NftVerdict, NftVmap, NftXt)

IPT_TABLES = {"filter", "nat", "mangle", "raw", "security"}
PROTO_NUM = {6: "tcp", 17: "udp", 132: "sctp", 1: "icmp", 58: "ipv6-icmp"}
PRIORITY_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}


class NSet:
    """A set or map, indexed when first looked up (a 10,000-Service kube-proxy table has
    ~1,800 sets and maps and ~21,000 elements; a trace looks up a few of them)."""

    def __init__(self, st: NftSet):
        self.name, self.kind, self._st = st.name, st.kind, st

    @cached_property
    def elements(self) -> list[tuple[list[Any], Any]]:
        return [([_norm(k) for k in e.key], e.value) for e in self._st.elements]

    @cached_property
    def exact(self) -> Optional[dict[tuple[Any, ...], Any]]:
        """exact keys -> value, for maps/sets whose keys are all plain values"""
        exact: dict[tuple[Any, ...], Any] = {}
        for e in self._st.elements:  # (elements' keys, each checked as it is normalized: one pass)
            key = []
            for k in e.key:
                if isinstance(k, str):
                    if k.isdigit():  # _norm
                        k = int(k)
                    elif "/" in k:
                        return None
                elif not isinstance(k, int):
                    return None
                key.append(k)
            exact[tuple(key)] = e.value
        return exact


@dataclass
class NTable:
    family: str
    name: str
    chains: dict[str, NftChain]
    sets: dict[str, NSet]


def priority_of(ch: NftChain) -> int:
    if ch.prio is not None:
        return int(ch.prio)
    s = str(ch.priority or "0").replace(" ", "")
    for name, base in sorted(PRIORITY_NAMES.items(), key=lambda kv: -len(kv[0])):
        if s.startswith(name):
            rest = s[len(name):]
            return base + (int(rest) if rest.lstrip("+-").isdigit() else 0)
    try:
        return int(s)
    except ValueError:
        return 0


def _norm(v: Any) -> Any:
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return v


def view(ruleset: NftRuleset) -> list[NTable]:
    """Index the typed tables: chains by name, sets by name with an exact-key dictionary."""
    return [NTable(family=t.family, name=t.name, chains={c.name: c for c in t.chains},
                   sets={st.name: NSet(st) for st in t.sets}) for t in ruleset.tables]


# --------------------------------------------------------------------------- values


class _Unknown(Exception):
    pass


def _value(x: Any, p: Pkt, e: Env) -> Any:
    """The packet's value for a left-hand expression (str / int / tuple for concatenations)."""
    if isinstance(x, NftPayload):
        if x.field == "saddr":
            if p.src is None:
                raise _Unknown("the packet's source address is not known")
            return p.src
        if x.field == "daddr":
            return p.dst
        if x.field in ("dport", "sport"):
            if x.protocol not in ("th", p.proto):
                return None  # a tcp dport match on a udp packet: no match
            return p.dport if x.field == "dport" else p.sport
        raise _Unknown(f"payload {x.protocol} {x.field} is not modelled")
    if isinstance(x, NftMeta):
        key = x.key
        if key == "l4proto":
            return p.proto
        if key == "mark":
            return p.mark
        if key == "nfproto":
            return "ipv6" if p.family == "ipv6" else "ipv4"
        if key in ("iifname", "iif"):
            if p.in_if is None:
                raise _Unknown("the packet's input device is not known")
            return p.in_if
        if key in ("oifname", "oif"):
            if p.out_if is None:
                raise _Unknown("the packet's output device is not known")
            return p.out_if
        raise _Unknown(f"meta {key} is not modelled")
    if isinstance(x, NftCt):
        if x.dir is not None or x.family is not None:
            raise _Unknown(f"ct {x.dir or ''} {x.key} is not modelled")
        if x.key == "state":
            return p.ctstate  # new: the first packet of a connection; established: its reply
        if x.key == "direction":
            if p.ctstate == "invalid":
                raise _Unknown("ct direction of a packet conntrack has no entry for")
            return p.ctdir
        if x.key == "mark":
            return p.ctmark
        if x.key == "status":
            st = []
            dnat, snat = p.ct_status()
            if dnat:
                st.append("dnat")
            if snat:
                st.append("snat")
            return tuple(st)
        raise _Unknown(f"ct {x.key} is not modelled")
    if isinstance(x, NftFib):
        if x.result != "type":
            raise _Unknown(f"fib {' . '.join(x.flags)} {x.result} is not modelled")
        ip = p.src if "saddr" in x.flags else p.dst
        if ip is None:
            raise _Unknown("the packet's source address is not known")
        kind = _addr_kind(ip, e.local)
        return (kind or "unicast").lower()
    if isinstance(x, NftConcat):
        return tuple(_value(y, p, e) for y in x.parts)
    if isinstance(x, NftBinop):
        va, vb = _value(x.left, p, e), _value(x.right, p, e)
        if not isinstance(va, int) or not isinstance(vb, int):
            raise _Unknown(f"cannot compute {x.op} on {va!r}")
        ops = {"&": va & vb, "|": va | vb, "^": va ^ vb}
        if x.op not in ops:
            raise _Unknown(f"the operator {x.op} is not modelled")
        return ops[x.op]
    if isinstance(x, (str, int, bool)):
        return _norm(x)
    raise _Unknown(f"the expression {getattr(x, 'kind', type(x).__name__)} is not modelled")


def _one_matches(v: Any, r: Any) -> bool:
    """Does the packet value v equal / fall in the element or right-hand value r?"""
    if isinstance(r, NftPrefix):
        n = net(f"{r.addr}/{r.len}")
        return isinstance(v, str) and n is not None and in_net(v, n)
    if isinstance(r, NftRange):
        lo, hi = _norm(r.low), _norm(r.high)
        if isinstance(v, int) and isinstance(lo, int) and isinstance(hi, int):
            return lo <= v <= hi
        a, b, c = ip_int(str(lo)), ip_int(str(hi)), ip_int(str(v))
        return bool(a and b and c and a[0] == c[0] and a[1] <= c[1] <= b[1])
    if isinstance(r, NftConcat):
        return isinstance(v, tuple) and _key_matches(v, list(r.parts))
    r = _norm(r)
    if isinstance(v, int) and isinstance(r, str) and r in PROTO_NUM.values():
        return PROTO_NUM.get(v) == r
    if isinstance(v, str) and isinstance(r, int) and v in PROTO_NUM.values():
        return PROTO_NUM.get(r) == v
    if isinstance(r, str) and "/" in r and isinstance(v, str):
        n = net(r)
        return n is not None and in_net(v, n)
    if isinstance(v, str) and isinstance(r, str):
        return v == r or v.lower() == r.lower()
    return bool(v == r)


def _key_matches(v: Any, key: list[Any]) -> bool:
    if isinstance(v, tuple):
        return len(v) == len(key) and all(_one_matches(a, b) for a, b in zip(v, key))
    return len(key) == 1 and _one_matches(v, key[0])


def _lookup(t: NTable, name: str, v: Any) -> tuple[bool, Any]:
    s = t.sets.get(name.lstrip("@"))
    if s is None:
        raise _Unknown(f"set/map {name} is not in the collected ruleset")
    if s.exact is not None:
        k = v if isinstance(v, tuple) else (v,)
        if k in s.exact:
            return True, s.exact[k]
        return False, None
    for key, val in s.elements:
        if _key_matches(v, key):
            return True, val
    return False, None


def _match(t: NTable, m: NftMatch, p: Pkt, e: Env) -> bool:
    op = m.op
    v = _value(m.left, p, e)
    if v is None:
        return False
    right = m.right
    if isinstance(right, str) and right.startswith("@"):
        hit, _ = _lookup(t, right, v)
    elif isinstance(right, NftSetLiteral):
        if isinstance(v, tuple) and not any(isinstance(i, NftConcat) for i in right.items):
            hit = bool(set(v) & {_norm(i) for i in right.items})  # flags: ct status { dnat, snat }
        else:
            hit = any(_one_matches(v, it) for it in right.items)
    elif op in ("<", ">", "<=", ">="):
        rv = _norm(right)
        if not isinstance(v, int) or not isinstance(rv, int):
            raise _Unknown(f"cannot compare {v!r} {op} {right!r}")
        return {"<": v < rv, ">": v > rv, "<=": v <= rv, ">=": v >= rv}[op]
    elif isinstance(v, tuple) and not isinstance(right, NftConcat):
        hit = str(right) in v
    else:
        hit = _one_matches(v, right)
    if op in ("==", "in"):
        return hit
    if op == "!=":
        return not hit
    raise _Unknown(f"the operator {op} is not modelled")


# --------------------------------------------------------------------------- walking


def _hop(p: Pkt, e: Env, t: NTable, chain: str, r: Optional[NftRule], index: Optional[int], verdict: str) -> None:
    if p.record:
        p.hops.append(TraceHop(kind="netfilter", node=e.node, netns=e.netns, hook=e.hook, family=t.family,
                               backend="nftables", table=t.name, chain=chain, rule_index=index,
                               rule=r.text if r is not None else None, verdict=verdict))
    p.last = ("nftables", f"{t.family} {t.name}", chain, index, r.text if r is not None else None, verdict)


def _verdict_of(d: Any) -> Optional[tuple[str, Optional[str]]]:
    if isinstance(d, NftVerdict):
        return d.verdict, d.target
    if isinstance(d, str) and d in ("accept", "drop", "return", "continue"):
        return d, None
    return None


def run_chain(t: NTable, name: str, p: Pkt, e: Env, depth: int = 0) -> list[Exit]:
    ch = t.chains.get(name)
    if ch is None:
        return [(p, f"UNKNOWN:chain {name} of table {t.family} {t.name} is not in the collected ruleset")]
    if depth > MAX_DEPTH:
        return [(p, f"UNKNOWN:more than {MAX_DEPTH} nested jumps at {name} (a loop?)")]
    exits: list[Exit] = []
    stack: list[tuple[Pkt, int]] = [(p, 0)]  # (packet, rule position)
    while stack:
        pk, pos = stack.pop()
        ended = False
        while pos < len(ch.rules):
            res = _run_rule(t, ch, pos, pk, e, depth, stack)
            if res is None:  # the rule did not match / fell through: next rule
                pos += 1
                continue
            exits.extend(res)
            ended = True
            break
        if not ended:
            base = ch.hook is not None
            pol = str(ch.policy or "accept").upper() if base else "RETURN"
            _hop(pk, e, t, name, None, None, pol)
            exits.append((pk, "DROP" if pol == "DROP" else ("ACCEPT" if base else "RETURN")))
    return exits


def _run_rule(t: NTable, ch: NftChain, pos: int, p: Pkt, e: Env, depth: int,
              stack: list[tuple[Pkt, int]]) -> Optional[list[Exit]]:
    """Run one rule's statements: None to go on with the next rule, else the chain's exits."""
    r = ch.rules[pos]
    idx = pos + 1
    try:
        for st in r.expr:
            if isinstance(st, NftMatch):
                if not _match(t, st, p, e):
                    return None
                continue
            if isinstance(st, NftVmap):
                if isinstance(st.key, NftNumgen):
                    ng = st.key
                    if ng.mode != "random":
                        raise _Unknown(f"numgen {ng.mode} is not modelled")
                    if st.map is not None:
                        raise _Unknown("numgen into a named map is not modelled")
                    table = {_norm(en.key): en.value for en in st.entries}
                    out: list[Exit] = []
                    mod = max(1, ng.mod)
                    for i in range(mod):
                        q = p if i == mod - 1 else p.copy()
                        q.prob *= 1.0 / mod
                        verdict = table.get(ng.offset + i)
                        if verdict is None:  # no element for this value: on to the next rule
                            stack.append((q, pos + 1))
                            continue
                        got = _do_verdict(t, ch, r, idx, _verdict_of(verdict), q, e, depth, stack, pos)
                        if got is not None:
                            out.extend(got)
                    return out
                v = _value(st.key, p, e)
                if st.map is not None:
                    hit, verdict = _lookup(t, st.map, v)
                else:
                    hit, verdict = False, None
                    for en in st.entries:
                        k = en.key
                        if _key_matches(v, list(k.parts) if isinstance(k, NftConcat) else [k]):
                            hit, verdict = True, en.value
                            break
                if not hit:
                    return None
                return _do_verdict(t, ch, r, idx, _verdict_of(verdict), p, e, depth, stack, pos)
            if isinstance(st, NftVerdict):
                return _do_verdict(t, ch, r, idx, _verdict_of(st), p, e, depth, stack, pos)
            if isinstance(st, NftNat):
                if st.type == "masquerade":
                    p.masq = True
                    _hop(p, e, t, ch.name, r, idx, "MASQUERADE")
                    return [(p, "ACCEPT")]
                if st.type == "snat":
                    p.snat = st.addr if isinstance(st.addr, str) else "snat"
                    _hop(p, e, t, ch.name, r, idx, f"SNAT {p.snat}")
                    return [(p, "ACCEPT")]
                if st.type == "redirect":
                    p.dst = "127.0.0.1" if e.hook == "OUTPUT" else p.dst
                elif not isinstance(st.addr, str):
                    raise _Unknown("dnat to a mapped or computed address is not modelled")
                else:
                    p.dst = st.addr
                if isinstance(st.port, int):
                    p.dport = st.port
                elif st.port is not None:
                    raise _Unknown("dnat to a mapped port is not modelled")
                p.dnat = hostport(p.dst, p.dport)
                _hop(p, e, t, ch.name, r, idx, f"DNAT {p.dnat}")
                return [(p, "ACCEPT")]
            if isinstance(st, NftReject):
                _hop(p, e, t, ch.name, r, idx, "REJECT")
                return [(p, "REJECT")]
            if isinstance(st, NftMangle):
                val = _value(st.value, p, e)
                if not isinstance(val, int):
                    raise _Unknown(f"cannot set a mark to {val!r}")
                if isinstance(st.key, NftMeta) and st.key.key == "mark":
                    p.mark = val & 0xFFFFFFFF
                elif isinstance(st.key, NftCt) and st.key.key == "mark":
                    p.ctmark = val & 0xFFFFFFFF
                else:
                    raise _Unknown(f"setting {getattr(st.key, 'kind', st.key)} is not modelled")
                continue
            if isinstance(st, (NftSetUpdate, NftCounter)):
                continue  # affinity bookkeeping and counters: nothing for this packet
            if isinstance(st, NftXt):
                raise _Unknown(f"an iptables-nft extension (xt {st.type or ''} {st.name or ''}): read this chain "
                               "from iptables-save")
            if isinstance(st, NftOther):
                word = (st.text or "").split(" ", 1)[0]
                if word in ("log", "limit", "counter", "notrack", "comment", "quota", "meta"):
                    if word == "limit" and "over" in (st.text or ""):
                        raise _Unknown("a limit over-rate match depends on the traffic rate")
                    if word != "meta" or "nftrace" in (st.text or ""):
                        continue
                raise _Unknown(f"the statement `{st.text or st.raw}` is not modelled")
            raise _Unknown(f"the statement {getattr(st, 'kind', '?')} is not modelled")
    except _Unknown as exc:
        _hop(p, e, t, ch.name, r, idx, "unknown")
        return [(p, f"UNKNOWN:{t.family} {t.name} {ch.name} rule {idx} `{r.text}`: {exc}")]
    # every statement ran without a verdict: on to the next rule (a counter, a mark)
    _hop(p, e, t, ch.name, r, idx, "continue")
    return None


def _do_verdict(t: NTable, ch: NftChain, r: NftRule, idx: int, vd: Optional[tuple[str, Optional[str]]], p: Pkt,
                e: Env, depth: int, stack: list[tuple[Pkt, int]], pos: int) -> Optional[list[Exit]]:
    if vd is None:
        _hop(p, e, t, ch.name, r, idx, "unknown")
        return [(p, f"UNKNOWN:{t.family} {t.name} {ch.name} rule {idx} `{r.text}`: a verdict that is not modelled")]
    kind, target = vd
    if kind in ("accept", "drop", "return"):
        _hop(p, e, t, ch.name, r, idx, kind.upper())
        return [(p, kind.upper())]
    if kind == "continue":
        _hop(p, e, t, ch.name, r, idx, "continue")
        stack.append((p, pos + 1))
        return []
    if kind not in ("jump", "goto"):
        _hop(p, e, t, ch.name, r, idx, "unknown")
        return [(p, f"UNKNOWN:{t.family} {t.name} {ch.name} rule {idx} `{r.text}`: the verdict {kind} is not modelled")]
    _hop(p, e, t, ch.name, r, idx, f"{kind} {target}")
    sub = run_chain(t, target or "", p, e, depth + 1)
    out: list[Exit] = []
    for sp, v in sub:
        if v == "RETURN":
            if kind == "goto":
                out.append((sp, "RETURN"))
            else:
                stack.append((sp, pos + 1))
        else:
            out.append((sp, v))
    return out


HOOK_NAMES = {"prerouting": "PREROUTING", "input": "INPUT", "forward": "FORWARD", "output": "OUTPUT",
              "postrouting": "POSTROUTING"}


def entries_for(ruleset: NftRuleset, node: Any) -> Callable[..., list[HookEntry]]:
    tables = view(ruleset)

    def entries(hook: str, family: str, skip_iptables_tables: bool = False) -> list[HookEntry]:
        out: list[HookEntry] = []
        fams = ("ip", "inet") if family == "ipv4" else ("ip6", "inet")
        for t in tables:
            if t.family not in fams:
                continue
            if skip_iptables_tables and t.name in IPT_TABLES:
                continue  # iptables-nft's own tables: interpreted from iptables-save instead
            for ch in t.chains.values():
                if ch.hook is None or HOOK_NAMES.get(ch.hook) != hook:
                    continue

                def run(p: Pkt, e: Env, t: NTable = t, name: str = ch.name) -> list[Exit]:
                    got = run_chain(t, name, p, e)
                    return [(q, "ACCEPT" if v == "RETURN" else v) for q, v in got]
                out.append(HookEntry(priority_of(ch), "nftables", t.name, ch.type == "nat", run,
                                     f"{t.family} {t.name} {ch.name}"))
        return out
    return entries
