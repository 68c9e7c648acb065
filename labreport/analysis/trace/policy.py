"""Policy routing: which ip rule, and which routing table, decide a packet's route.

The kernel's fib_rules_lookup, for the rules of the packet's family in priority order:

- a rule matches when every selector it has matches (``from``/``to`` prefixes, ``iif`` —
  ``lo`` for a packet of a local process —, ``fwmark/mask`` against the packet's mark as
  netfilter left it, ``ipproto``, ``sport``/``dport`` ranges); ``not`` inverts the result;
- ``lookup TABLE``: the longest-prefix match in that table; no route there, or a
  ``throw`` route, falls through to the next rule, and so does a route of prefix length
  ≤ ``suppress_prefixlength``; a ``blackhole``/``unreachable``/``prohibit`` route stops
  there; the ``local`` table holds the node's own addresses (and any ``local`` route);
- ``goto N`` jumps to the rule of priority N (none: skipped, ``[unresolved]``), ``nop``
  does nothing, ``blackhole`` drops, ``unreachable`` / ``prohibit`` reject;
- nothing matched: no route (ENETUNREACH).

Without collected rules the kernel's defaults stand (0 local, 32766 main, 32767 default;
IPv6 without the last). Selectors the model does not know the packet's value of (``oif``,
``uidrange``, ``tos``, ``l3mdev``, ``tun_id``, ``suppress_ifgroup``) make the choice
unknown, naming the rule — unless another selector of the same rule already fails, which
decides it. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from labreport.analysis.trace.addr import in_net, ip_int, net
from labreport.analysis.trace.world import NodeModel, RouteEntry, table_key
from labreport.parsers.ip_rule import default_rules, is_default, rule_text
from labreport.snapshot import IpRule

Kind = Literal["route", "local", "blackhole", "unreachable", "prohibit", "noroute", "unknown"]
_PROTO_NUMBERS = {"icmp": 1, "tcp": 6, "udp": 17, "ipv6-icmp": 58, "icmpv6": 58, "sctp": 132, "udplite": 136}


@dataclass
class Choice:
    kind: Kind
    entry: Optional[RouteEntry] = None  # the route (kind "route", or a blackhole/… route)
    rule: Optional[IpRule] = None  # the rule that decided (or the one that cannot be decided)
    table: Optional[str] = None
    why: str = ""  # unknown: what is not known
    passed: list[str] = field(default_factory=list)  # rules whose lookup fell through, and why

    @property
    def rule_label(self) -> str:
        return label(self.rule) if self.rule is not None else ""


_LABELS: dict[int, tuple[IpRule, str]] = {}  # id(rule) -> (rule, label): rules live as long as their world


def label(r: IpRule) -> str:
    got = _LABELS.get(id(r))
    if got is None or got[0] is not r:
        if len(_LABELS) > 100_000:
            _LABELS.clear()
        got = _LABELS[id(r)] = (r, f"{r.priority}: {rule_text(r)}")
    return got[1]


_DEFAULTS = {"ipv4": default_rules("inet"), "ipv6": default_rules("inet6")}
_BY_PRIO: dict[int, tuple[list[IpRule], dict[int, int]]] = {}


def rules_for(m: NodeModel, family: str) -> tuple[list[IpRule], bool]:
    """The rules of ``family`` ("ipv4"/"ipv6") and whether they were collected."""
    got = m.rules.get(family)
    if got:
        return got, True
    return _DEFAULTS["ipv6" if family == "ipv6" else "ipv4"], False


def _index(rules: list[IpRule]) -> dict[int, int]:
    """priority -> position of its first rule (goto targets), computed once per rule list."""
    got = _BY_PRIO.get(id(rules))
    if got is None or got[0] is not rules:
        by_prio: dict[int, int] = {}
        for i, r in enumerate(rules):
            by_prio.setdefault(r.priority, i)
        if len(_BY_PRIO) > 10_000:
            _BY_PRIO.clear()
        got = _BY_PRIO[id(rules)] = (rules, by_prio)
    return got[1]


_LOCAL_FIRST: dict[int, tuple[list[IpRule], bool]] = {}


def local_first(m: NodeModel, family: str) -> bool:
    """Whether the first rule is an unconditional ``lookup local`` (the kernel's rule 0): then
    the node's own addresses are delivered before any other rule is read. A VRF-style setup
    moves it (``ip rule del pref 0; ip rule add pref 1000 lookup local``): then the rules
    before it decide even for the node's addresses."""
    rules, _ = rules_for(m, family)
    got = _LOCAL_FIRST.get(id(rules))
    if got is None or got[0] is not rules:
        first = rules[0] if rules else None
        ok = first is not None and first.table == "local" and is_default(first)
        if len(_LOCAL_FIRST) > 10_000:
            _LOCAL_FIRST.clear()
        got = _LOCAL_FIRST[id(rules)] = (rules, ok)
    return got[1]


def non_default(m: NodeModel) -> bool:
    """Whether a rule besides the kernel's defaults decides anything on this node."""
    return any(not is_default(r) for rules in m.rules.values() for r in rules)


class _Unknown(Exception):
    pass


def _range_has(rng: str, port: int) -> bool:
    lo, _, hi = rng.partition("-")
    return int(lo) <= port <= int(hi or lo)


def _proto_matches(rule_proto: str, proto: str) -> bool:
    want = _PROTO_NUMBERS.get(rule_proto, int(rule_proto) if rule_proto.isdigit() else -1)
    return want == _PROTO_NUMBERS.get(proto, -2)


def matches(r: IpRule, src: Optional[str], dst: str, iif: Optional[str], mark: int, proto: str, sport: int,
            dport: int) -> bool:
    """fib_rule_match: every selector (then ``not``). Raises _Unknown for a selector whose
    value the packet's model does not have, when no known selector fails already."""
    ok = True
    if r.iif is not None:
        if iif is None:
            unknown_iif = True
        else:
            unknown_iif = False
            ok = ok and not r.detached and r.iif == iif
    else:
        unknown_iif = False
    if ok and r.fwmark is not None:
        mask = 0xFFFFFFFF if r.fwmask is None else r.fwmask
        ok = ((mark ^ r.fwmark) & mask) == 0
    if ok and r.src:
        n = net(r.src)
        if n is None:
            raise _Unknown(f"cannot read the prefix {r.src!r}")
        ok = in_net(src or ("::" if ":" in dst else "0.0.0.0"), n)
    if ok and r.dst:
        n = net(r.dst)
        if n is None:
            raise _Unknown(f"cannot read the prefix {r.dst!r}")
        ok = in_net(dst, n)
    if ok and r.ipproto:
        ok = _proto_matches(r.ipproto, proto)
    if ok and r.sport:
        ok = proto in ("tcp", "udp", "sctp") and _range_has(r.sport, sport)
    if ok and r.dport:
        ok = proto in ("tcp", "udp", "sctp") and _range_has(r.dport, dport)
    if not ok:
        return r.invert  # a known selector fails: decided whatever the others say
    missing = []
    if unknown_iif:
        missing.append(f"iif {r.iif} (the packet's input device is not known)")
    if r.oif:
        missing.append(f"oif {r.oif} (the device a socket is bound to is not modelled)")
    if r.uidrange:
        missing.append(f"uidrange {r.uidrange} (the sending process's uid is not modelled)")
    if r.tos:
        missing.append(f"tos {r.tos:#x} (the packet's TOS is not modelled)")
    if r.l3mdev:
        missing.append("l3mdev (VRF tables are not modelled)")
    if r.tun_id:
        missing.append(f"tun_id {r.tun_id} (tunnel metadata is not modelled)")
    if missing:
        raise _Unknown("; ".join(missing))
    return not r.invert


def _table_lookup(m: NodeModel, table: str, dst: str) -> tuple[Optional[str], Optional[RouteEntry]]:
    """("local", None) for the node's own addresses in the local table, ("route", entry) for
    a route, (None, None) when the table has none for ``dst``."""
    if table == "local":
        if dst in m.local or dst in m.broadcast or _loopback(dst):
            return "local", None
    entry = m.route_for(dst, table)
    if entry is None:
        return None, None
    if entry.route.type == "local":
        return "local", entry
    return "route", entry


def _loopback(ip: str) -> bool:
    v = ip_int(ip)
    return v is not None and ((v[0] == 4 and (v[1] >> 24) == 127) or (v[0] == 6 and v[1] == 1))


def choose(m: NodeModel, family: str, src: Optional[str], dst: str, iif: Optional[str], mark: int, proto: str,
           sport: int, dport: int) -> Choice:
    """The kernel's route lookup through the ip rules (see the module docstring)."""
    rules, _known = rules_for(m, family)
    passed: list[str] = []
    by_prio = _index(rules)
    i = 0
    steps = 0
    while i < len(rules):
        steps += 1
        if steps > 4 * len(rules) + 8:  # goto only jumps forward in the kernel; a bad input cannot loop here
            return Choice("unknown", rule=rules[i], why="the rules' gotos loop", passed=passed)
        r = rules[i]
        try:
            hit = matches(r, src, dst, iif, mark, proto, sport, dport)
        except _Unknown as exc:
            return Choice("unknown", rule=r, why=f"ip rule {label(r)}: whether it matches is not known: {exc}",
                          passed=passed)
        if not hit:
            i += 1
            continue
        if r.action == "goto":
            target = by_prio.get(r.goto) if r.goto is not None else None
            if target is None or target <= i:
                passed.append(f"{label(r)}: no rule of priority {r.goto} (unresolved), skipped")
                i += 1
                continue
            passed.append(f"{label(r)}: goto {r.goto}")
            i = target
            continue
        if r.action == "nop":
            i += 1
            continue
        if r.action in ("blackhole", "unreachable", "prohibit"):
            return Choice(r.action, rule=r, passed=passed)  # type: ignore[arg-type]
        if r.action != "lookup":
            return Choice("unknown", rule=r, why=f"ip rule {label(r)}: action {r.action!r} is not modelled",
                          passed=passed)
        table = table_key(r.table)
        kind, entry = _table_lookup(m, table, dst)
        if kind is None:
            if table != "local":  # every packet not for the node passes the local table: not worth saying
                passed.append(f"{label(r)}: table {table} has no route to {dst}")
            i += 1
            continue
        if kind == "local":
            return Choice("local", entry=entry, rule=r, table=table, passed=passed)
        assert entry is not None
        rtype = entry.route.type or "unicast"
        if rtype == "throw":
            passed.append(f"{label(r)}: table {table} throws {entry.text}")
            i += 1
            continue
        if rtype in ("blackhole", "unreachable", "prohibit"):
            return Choice(rtype, entry=entry, rule=r, table=table, passed=passed)  # type: ignore[arg-type]
        if r.suppress_prefixlen is not None and entry.net[2] <= r.suppress_prefixlen:
            passed.append(f"{label(r)}: `{entry.text}` suppressed (prefix length {entry.net[2]} ≤ "
                          f"{r.suppress_prefixlen})")
            i += 1
            continue
        if r.suppress_ifgroup is not None:
            return Choice("unknown", rule=r, table=table, why=f"ip rule {label(r)}: suppress_ifgroup "
                          f"{r.suppress_ifgroup} needs the device groups, which are not collected", passed=passed)
        return Choice("route", entry=entry, rule=r, table=table, passed=passed)
    return Choice("noroute", passed=passed)


def chosen_by(c: Choice, m: NodeModel) -> str:
    """``rule 100 `from 10.0.0.0/8 lookup 100`, table 100`` (and whether the rules are the
    kernel's defaults because none were collected)."""
    if c.rule is None:
        return ""
    text = f"rule {c.rule.priority} `{rule_text(c.rule)}`" + (f", table {c.table}" if c.table else "")
    if not m.rules_known:
        text += "; ip rules not collected: the kernel's default rules assumed"
    if c.passed:
        text += "; passed over: " + "; ".join(c.passed)
    return text
