"""An interpreter for nftables rules as ``nft list ruleset`` prints them (kube-proxy's
nftables mode and common firewalls): payload/meta/ct/fib matches, anonymous and named sets,
verdict maps (concatenated keys, intervals), ``numgen random mod N`` (one branch per value,
1/N each), mark and ct mark arithmetic, jump/goto/return, accept/drop/reject, dnat/snat,
masquerade, redirect, set updates (affinity). A statement it does not know stops the trace
with "unknown" naming the rule.

It reads the statements the nft parser stores (nft's JSON schema, ``parsers.nft.rule_expr``)
through one small adapter (:func:`view`), so the typed rule models can replace it there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from labreport.analysis.trace.addr import hostport, in_net, ip_int, net
from labreport.analysis.trace.iptables import Env, Exit, MAX_DEPTH, _addr_kind
from labreport.analysis.trace.model import TraceHop
from labreport.analysis.trace.netfilter import HookEntry
from labreport.analysis.trace.packet import Pkt
from labreport.snapshot import NftRuleset

IPT_TABLES = {"filter", "nat", "mangle", "raw", "security"}
PROTO_NUM = {6: "tcp", 17: "udp", 132: "sctp", 1: "icmp", 58: "ipv6-icmp"}
PRIORITY_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}


@dataclass
class NRule:
    index: int
    text: str
    expr: list[dict[str, Any]]


@dataclass
class NChain:
    name: str
    rules: list[NRule]
    hook: Optional[str] = None
    type: Optional[str] = None
    priority: Optional[int] = None
    policy: str = "accept"


@dataclass
class NSet:
    name: str
    kind: str
    elements: list[tuple[list[Any], Any]] = field(default_factory=list)
    # exact keys -> value, for maps/sets whose keys are all plain values
    exact: Optional[dict[tuple[Any, ...], Any]] = None


@dataclass
class NTable:
    family: str
    name: str
    chains: dict[str, NChain]
    sets: dict[str, NSet]


def priority_of(p: Any) -> int:
    if isinstance(p, int):
        return p
    s = str(p or "0").replace(" ", "")
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
    """The adapter: the parser's stored tables → the interpreter's tables."""
    from labreport.parsers.nft import rule_expr

    out: list[NTable] = []
    for t in ruleset.tables:
        chains: dict[str, NChain] = {}
        for c in t.get("chains") or []:
            rules = [NRule(i + 1, r.get("text") or "", rule_expr(r)) for i, r in enumerate(c.get("rules") or [])]
            ch = NChain(name=c.get("name", ""), rules=rules, hook=c.get("hook"), type=c.get("type"),
                        priority=priority_of(c.get("priority")) if c.get("hook") else None,
                        policy=str(c.get("policy") or "accept"))
            chains[ch.name] = ch
        sets: dict[str, NSet] = {}
        for s in t.get("sets") or []:
            ns = NSet(name=s.get("name", ""), kind=s.get("kind", "set"))
            exact: Optional[dict[tuple[Any, ...], Any]] = {}
            for e in s.get("elements") or []:
                key = [_norm(k) for k in (e.get("key") or [])]
                ns.elements.append((key, e.get("value")))
                if exact is not None:
                    if all(isinstance(k, (str, int)) and not (isinstance(k, str) and "/" in k) for k in key):
                        exact[tuple(key)] = e.get("value")
                    else:
                        exact = None
            ns.exact = exact
            sets[ns.name] = ns
        out.append(NTable(family=t.get("family", "ip"), name=t.get("name", ""), chains=chains, sets=sets))
    return out


# --------------------------------------------------------------------------- values


class _Unknown(Exception):
    pass


def _value(x: Any, p: Pkt, e: Env) -> Any:
    """The packet's value for a left-hand expression (str / int / tuple for concatenations)."""
    if isinstance(x, dict):
        if "payload" in x:
            pl = x["payload"]
            fld = pl.get("field")
            proto = pl.get("protocol")
            if fld == "saddr":
                if p.src is None:
                    raise _Unknown("the packet's source address is not known")
                return p.src
            if fld == "daddr":
                return p.dst
            if fld in ("dport", "sport"):
                if proto not in ("th", p.proto):
                    return None  # a tcp dport match on a udp packet: no match
                return p.dport if fld == "dport" else p.sport
            raise _Unknown(f"payload {proto} {fld} is not modelled")
        if "meta" in x:
            key = x["meta"].get("key")
            if key in ("l4proto", "protocol") and key == "l4proto":
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
        if "ct" in x:
            key = x["ct"].get("key")
            if key == "state":
                return "new"
            if key == "mark":
                return p.ctmark
            if key == "status":
                st = []
                if p.dnat:
                    st.append("dnat")
                if p.snat or p.masq:
                    st.append("snat")
                return tuple(st)
            raise _Unknown(f"ct {key} is not modelled")
        if "fib" in x:
            fib = x["fib"]
            flags = fib.get("flags") or []
            if fib.get("result") != "type":
                raise _Unknown(f"fib {fib.get('result')} is not modelled")
            ip = p.src if "saddr" in flags else p.dst
            if ip is None:
                raise _Unknown("the packet's source address is not known")
            kind = _addr_kind(ip, e.local)
            return (kind or "unicast").lower()
        if "concat" in x:
            return tuple(_value(y, p, e) for y in x["concat"])
        for op in ("&", "|", "^"):
            if op in x:
                a, b = x[op]
                va, vb = _value(a, p, e), _value(b, p, e)
                if not isinstance(va, int) or not isinstance(vb, int):
                    raise _Unknown(f"cannot compute {op} on {va!r}")
                return va & vb if op == "&" else (va | vb if op == "|" else va ^ vb)
        raise _Unknown(f"the expression {x!r} is not modelled")
    return _norm(x)


def _one_matches(v: Any, r: Any) -> bool:
    """Does the packet value v equal / fall in the set-element or right-hand value r?"""
    if isinstance(r, dict):
        if "prefix" in r:
            n = net(f"{r['prefix']['addr']}/{r['prefix']['len']}")
            return isinstance(v, str) and n is not None and in_net(v, n)
        if "range" in r:
            lo, hi = r["range"]
            if isinstance(v, int):
                return int(lo) <= v <= int(hi)
            a, b, c = ip_int(str(lo)), ip_int(str(hi)), ip_int(str(v))
            return bool(a and b and c and a[0] == c[0] and a[1] <= c[1] <= b[1])
        return False
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


def _match(t: NTable, m: dict[str, Any], p: Pkt, e: Env) -> bool:
    op = m.get("op", "==")
    v = _value(m.get("left"), p, e)
    if v is None:
        return False
    right = m.get("right")
    if isinstance(right, str) and right.startswith("@"):
        hit, _ = _lookup(t, right, v)
    elif isinstance(right, dict) and "set" in right:
        items = right["set"]
        hit = any(_key_matches(v, it if isinstance(it, list) else [it]) for it in items)
    elif op in ("<", ">", "<=", ">="):
        rv = _norm(right)
        if not isinstance(v, int) or not isinstance(rv, int):
            raise _Unknown(f"cannot compare {v!r} {op} {right!r}")
        return {"<": v < rv, ">": v > rv, "<=": v <= rv, ">=": v >= rv}[op]
    elif isinstance(right, list):  # flags lists (ct state new,established)
        hit = any(_one_matches(v, r) for r in right) if not isinstance(v, tuple) else bool(set(v) & set(right))
    else:
        if isinstance(v, tuple) and not isinstance(right, (list, tuple)):
            hit = str(right) in v
        else:
            hit = _key_matches(v, [right]) if not isinstance(v, tuple) else False
    if op in ("==", "in"):
        return hit
    if op == "!=":
        return not hit
    raise _Unknown(f"the operator {op} is not modelled")


# --------------------------------------------------------------------------- walking


def _hop(p: Pkt, e: Env, t: NTable, chain: str, r: Optional[NRule], verdict: str) -> None:
    if p.record:
        p.hops.append(TraceHop(kind="netfilter", node=e.node, netns=e.netns, hook=e.hook, family=t.family,
                               backend="nftables", table=t.name, chain=chain, rule_index=r.index if r else None,
                               rule=r.text if r else None, verdict=verdict))
    p.last = ("nftables", f"{t.family} {t.name}", chain, r.index if r else None, r.text if r else None, verdict)


_VERDICTS = ("accept", "drop", "reject", "return", "continue", "jump", "goto", "queue")


def _verdict_of(d: Any) -> Optional[tuple[str, Optional[str]]]:
    if isinstance(d, dict):
        for k in ("jump", "goto"):
            if k in d:
                return k, d[k].get("target") if isinstance(d[k], dict) else d[k]
        for k in ("accept", "drop", "return", "continue", "reject"):
            if k in d:
                return k, None
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
    stack: list[tuple[Pkt, int, int]] = [(p, 0, 0)]  # (packet, rule position, statement position)
    while stack:
        pk, pos, spos = stack.pop()
        ended = False
        while pos < len(ch.rules):
            r = ch.rules[pos]
            res = _run_rule(t, ch, r, pk, e, depth, stack, pos, spos)
            spos = 0
            if res is None:  # the rule did not match / fell through: next rule
                pos += 1
                continue
            exits.extend(res)
            ended = True
            break
        if not ended:
            base = ch.hook is not None
            pol = ch.policy.upper() if base else "RETURN"
            _hop(pk, e, t, name, None, pol)
            exits.append((pk, "ACCEPT" if pol == "ACCEPT" else ("DROP" if pol == "DROP" else "RETURN")))
    return exits


def _run_rule(t: NTable, ch: NChain, r: NRule, p: Pkt, e: Env, depth: int, stack: list[tuple[Pkt, int, int]],
              pos: int, spos: int) -> Optional[list[Exit]]:
    """Run one rule's statements from ``spos``: None to go on with the next rule, else exits."""
    try:
        for si in range(spos, len(r.expr)):
            st = r.expr[si]
            if "match" in st:
                if not _match(t, st["match"], p, e):
                    return None
                continue
            if "vmap" in st:
                vm = st["vmap"]
                key = vm.get("key")
                data = vm.get("data")
                if isinstance(key, dict) and "numgen" in key:
                    ng = key["numgen"]
                    if ng.get("mode") != "random":
                        raise _Unknown(f"numgen {ng.get('mode')} is not modelled")
                    mod, off = int(ng.get("mod") or 1), int(ng.get("offset") or 0)
                    items = data.get("set") if isinstance(data, dict) else None
                    if items is None:
                        raise _Unknown("numgen into a named map is not modelled")
                    table = {int(k): v for k, v in items}
                    branches: list[tuple[Pkt, Any]] = []
                    for i in range(mod):
                        q = p if i == mod - 1 else p.copy()
                        q.prob *= 1.0 / mod
                        branches.append((q, table.get(off + i)))
                    out: list[Exit] = []
                    for q, verdict in branches:
                        if verdict is None:  # no element for this value: the rule ends, next rule
                            stack.append((q, pos + 1, 0))
                            continue
                        got = _do_verdict(t, ch, r, _verdict_of(verdict), q, e, depth, stack, pos)
                        if got is not None:
                            out.extend(got)
                    return out
                v = _value(key, p, e)
                if isinstance(data, str):
                    hit, verdict = _lookup(t, data, v)
                else:
                    hit, verdict = False, None
                    for it in (data or {}).get("set") or []:
                        k, val = it
                        if _key_matches(v, k if isinstance(k, list) else [k]):
                            hit, verdict = True, val
                            break
                if not hit:
                    return None
                return _do_verdict(t, ch, r, _verdict_of(verdict), p, e, depth, stack, pos)
            vd = _verdict_of(st)
            if vd is not None:
                return _do_verdict(t, ch, r, vd, p, e, depth, stack, pos)
            if "dnat" in st or "redirect" in st:
                d = st.get("dnat") or {}
                if "redirect" in st:
                    p.dst = "127.0.0.1" if e.hook == "OUTPUT" else p.dst
                    port = (st.get("redirect") or {}).get("port")
                else:
                    addr = d.get("addr")
                    if not isinstance(addr, str):
                        raise _Unknown("dnat to a mapped or computed address is not modelled")
                    p.dst = addr
                    port = d.get("port")
                if isinstance(port, int):
                    p.dport = port
                elif port is not None:
                    raise _Unknown("dnat to a mapped port is not modelled")
                p.dnat = hostport(p.dst, p.dport)
                _hop(p, e, t, ch.name, r, f"DNAT {p.dnat}")
                return [(p, "ACCEPT")]
            if "snat" in st:
                addr = (st.get("snat") or {}).get("addr")
                p.snat = addr if isinstance(addr, str) else "snat"
                _hop(p, e, t, ch.name, r, f"SNAT {p.snat}")
                return [(p, "ACCEPT")]
            if "masquerade" in st:
                p.masq = True
                _hop(p, e, t, ch.name, r, "MASQUERADE")
                return [(p, "ACCEPT")]
            if "reject" in st:
                _hop(p, e, t, ch.name, r, "REJECT")
                return [(p, "REJECT")]
            if "mangle" in st:
                mg = st["mangle"]
                k = mg.get("key") or {}
                val = _value(mg.get("value"), p, e)
                if not isinstance(val, int):
                    raise _Unknown(f"cannot set a mark to {val!r}")
                if "meta" in k and k["meta"].get("key") == "mark":
                    p.mark = val & 0xFFFFFFFF
                elif "ct" in k and k["ct"].get("key") == "mark":
                    p.ctmark = val & 0xFFFFFFFF
                else:
                    raise _Unknown(f"setting {k!r} is not modelled")
                continue
            if "set" in st and isinstance(st["set"], dict) and st["set"].get("op") in ("update", "add"):
                continue  # affinity bookkeeping: later packets, not this one
            if any(k in st for k in ("counter", "log", "limit", "notrack", "meta_set", "comment", "quota")):
                if "limit" in st and (st["limit"] or {}).get("inv"):
                    raise _Unknown("a limit over-rate match depends on the traffic rate")
                continue
            if "xt" in st:
                raise _Unknown("an iptables-nft extension (xt) statement: read this chain from iptables-save")
            if "text" in st:
                raise _Unknown(f"the statement `{st['text']}` is not modelled")
            raise _Unknown(f"the statement {next(iter(st), '?')} is not modelled")
    except _Unknown as exc:
        _hop(p, e, t, ch.name, r, "unknown")
        return [(p, f"UNKNOWN:{t.family} {t.name} {ch.name} rule {r.index} `{r.text}`: {exc}")]
    # every statement ran without a verdict: continue with the next rule (a counter, a mark)
    _hop(p, e, t, ch.name, r, "continue")
    return None


def _do_verdict(t: NTable, ch: NChain, r: NRule, vd: Optional[tuple[str, Optional[str]]], p: Pkt, e: Env,
                depth: int, stack: list[tuple[Pkt, int, int]], pos: int) -> Optional[list[Exit]]:
    if vd is None:
        _hop(p, e, t, ch.name, r, "unknown")
        return [(p, f"UNKNOWN:{t.family} {t.name} {ch.name} rule {r.index} `{r.text}`: a verdict that is not modelled")]
    kind, target = vd
    if kind in ("accept", "drop", "reject", "return"):
        _hop(p, e, t, ch.name, r, kind.upper())
        return [(p, kind.upper())]
    if kind == "continue":
        _hop(p, e, t, ch.name, r, "continue")
        stack.append((p, pos + 1, 0))
        return []
    _hop(p, e, t, ch.name, r, f"{kind} {target}")
    sub = run_chain(t, target or "", p, e, depth + 1)
    out: list[Exit] = []
    for sp, v in sub:
        if v == "RETURN":
            if kind == "goto":
                out.append((sp, "RETURN"))
            else:
                stack.append((sp, pos + 1, 0))
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
                out.append(HookEntry(ch.priority or 0, "nftables", t.name, ch.type == "nat", run,
                                     f"{t.family} {t.name} {ch.name}"))
        return out
    return entries
