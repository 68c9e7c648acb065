"""The netfilter hooks in kernel order, over every rule set a node has.

At each hook the kernel runs the registered chains by priority: for the iptables tables
raw (-300), mangle (-150), nat (-100 at PREROUTING/OUTPUT, 100 at INPUT/POSTROUTING),
filter (0), security (50); nftables base chains at their own ``priority``. The nat chains
see only a connection's first packet, once per direction of NAT (conntrack remembers the
decision): destination NAT at PREROUTING or OUTPUT, source NAT at INPUT or POSTROUTING.

``run_hook(node, hook, pkts)`` returns the packets that go on and the ones that stop there
(dropped, rejected, or unknown with the reason).
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol

from labreport.analysis.trace import iptables as ipt_mod
from labreport.analysis.trace.addr import hostport
from labreport.analysis.trace.model import TraceHop
from labreport.analysis.trace.packet import Pkt
from labreport.snapshot import Iptables

HOOKS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")

IPT_PRIORITY: dict[str, dict[str, int]] = {
    "PREROUTING": {"raw": -300, "mangle": -150, "nat": -100},
    "INPUT": {"mangle": -150, "filter": 0, "security": 50, "nat": 100},
    "FORWARD": {"mangle": -150, "filter": 0, "security": 50},
    "OUTPUT": {"raw": -300, "mangle": -150, "nat": -100, "filter": 0, "security": 50},
    "POSTROUTING": {"mangle": -150, "nat": 100},
}

# (priority, runner name, runner) — a runner walks one table's chain (or one nft base chain)
Runner = Callable[[Pkt, "ipt_mod.Env"], list[tuple[Pkt, str]]]


class HookEntry:
    __slots__ = ("priority", "backend", "table", "is_nat", "run", "label")

    def __init__(self, priority: int, backend: str, table: str, is_nat: bool, run: Runner, label: str) -> None:
        self.priority, self.backend, self.table, self.is_nat, self.run, self.label = (
            priority, backend, table, is_nat, run, label)


class NodeRules(Protocol):
    name: str
    netns: str
    local: frozenset[str]

    def hook_entries(self, hook: str, family: str) -> list[HookEntry]: ...


def iptables_entries(ipt: Optional[Iptables], hook: str) -> list[HookEntry]:
    if ipt is None:
        return []
    out: list[HookEntry] = []
    for table, prio in IPT_PRIORITY[hook].items():
        t = ipt.tables.get(table)
        if t is None:
            continue
        if hook not in t.chains:
            if not t.chains:
                continue
            why = (f"the iptables {table} table was collected without its built-in {hook} chain (a partial "
                   f"paste?): what it does to the packet is not known")

            def missing(p: Pkt, e: ipt_mod.Env, why: str = why) -> list[tuple[Pkt, str]]:
                return [(p, "UNKNOWN:" + why)]
            out.append(HookEntry(prio, "iptables", table, table == "nat", missing, f"{table} {hook}"))
            continue

        def run(p: Pkt, e: ipt_mod.Env, table: str = table, ipt: Iptables = ipt) -> list[tuple[Pkt, str]]:
            return ipt_mod.run_chain(ipt, table, hook, p, e)
        out.append(HookEntry(prio, "iptables", table, table == "nat", run, f"{table} {hook}"))
    return out


Stop = tuple[Pkt, str, str]  # (packet, "dropped" | "rejected" | "unknown", reason)


# where the NAT core sits in each hook: every nat chain of every table (iptables' nat table,
# nftables "type nat" chains) runs inside it, in its own priority order (nf_nat_register_fn)
NAT_CORE = {"PREROUTING": -100, "OUTPUT": -100, "INPUT": 100, "POSTROUTING": 100}


def entry_order(hook: str, e: HookEntry) -> tuple[int, int]:
    """The order the kernel runs a hook's chains in: a nat chain at the NAT core's place."""
    return (NAT_CORE.get(hook, e.priority) if e.is_nat else e.priority), e.priority


def run_hook(node: NodeRules, hook: str, pkts: list[Pkt]) -> tuple[list[Pkt], list[Stop]]:
    """The chains of ``hook`` over each packet. A connection's first packet goes through the
    nat chains in order until one of them maps it (the kernel's nf_nat_inet_fn: a chain that
    accepts without NAT hands the packet to the next nat chain; after the last, conntrack
    records a null binding). A packet of a known connection (``ctstate`` not "new": the
    reply) skips every nat chain; at the NAT core's place conntrack reverses the connection's
    NAT instead (:func:`ct_manip`)."""
    going: list[Pkt] = []
    stopped: list[Stop] = []
    env = ipt_mod.Env(node.name, node.netns, hook, node.local)
    dst_manip = hook in ("PREROUTING", "OUTPUT")
    core = NAT_CORE.get(hook)
    for p in pkts:
        cur = [p]
        entries = node.hook_entries(hook, p.family)
        established = p.ctstate != "new"
        manip_done = not established or core is None
        for ent in entries:
            if not manip_done and (entry_order(hook, ent)[0] > core or ent.is_nat):  # type: ignore[operator]
                for q in cur:
                    ct_manip(node, hook, q)
                manip_done = True
            nxt: list[Pkt] = []
            for q in cur:
                if ent.is_nat:
                    if established or (q.nat_dst_done if dst_manip else q.nat_src_done):
                        nxt.append(q)
                        continue
                    before = (q.dst, q.dport, q.dnat) if dst_manip else (q.snat, q.masq)
                for r, verdict in ent.run(q, env):
                    if ent.is_nat and verdict in ("ACCEPT", "RETURN", "CONTINUE"):
                        mapped = ((r.dst, r.dport, r.dnat) if dst_manip else (r.snat, r.masq)) != before
                        if mapped:
                            if dst_manip:
                                r.nat_dst_done = True
                            else:
                                r.nat_src_done = True
                    if verdict in ("ACCEPT", "RETURN", "CONTINUE"):
                        nxt.append(r)
                    elif verdict == "DROP":
                        stopped.append((r, "dropped", _last_rule(r) or f"{ent.label}: DROP"))
                    elif verdict == "REJECT":
                        stopped.append((r, "rejected", _last_rule(r) or f"{ent.label}: REJECT"))
                    elif verdict.startswith("UNKNOWN:"):
                        stopped.append((r, "unknown", verdict[len("UNKNOWN:"):]))
                    else:
                        stopped.append((r, "unknown", f"{ent.label}: verdict {verdict} is not modelled"))
            cur = nxt
        if not manip_done:
            for q in cur:
                ct_manip(node, hook, q)
        if core is not None and not established:
            for q in cur:  # no nat chain mapped it: conntrack's null binding for this manip type
                if dst_manip:
                    q.nat_dst_done = True
                else:
                    q.nat_src_done = True
        going.extend(cur)
    return going, stopped


def ct_manip(node: NodeRules, hook: str, p: Pkt) -> None:
    """conntrack reversing a connection's NAT on its reply (nf_nat_packet): at PREROUTING or
    OUTPUT the destination goes back from the SNAT/masquerade address to the original source;
    at INPUT or POSTROUTING the source goes back from the endpoint to the original destination
    (the cluster IP or node port the client connected to)."""
    if p.ctdir != "reply" or p.ct_here is None:
        return
    _n, orig, out, _snat = p.ct_here
    dnat, snat = p.ct_status()
    if hook in ("PREROUTING", "OUTPUT"):
        if snat and (p.dst, p.dport) == (out[0], out[1]):
            was = hostport(p.dst, p.dport)
            p.dst, p.dport = orig[0], orig[1]
            p.family = "ipv6" if ":" in p.dst else "ipv4"
            _ct_hop(p, node, hook, f"conntrack on {node.name} ({hook}): the reply's destination {was} was the "
                    f"connection's source NAT; restored to the original source {hostport(p.dst, p.dport)}")
    elif dnat and (p.src, p.sport) == (out[2], out[3]):
        was = hostport(p.src or "?", p.sport)
        p.src, p.sport = orig[2], orig[3]
        _ct_hop(p, node, hook, f"conntrack on {node.name} ({hook}): the reply's source {was} is the DNAT "
                f"target; rewritten to the original destination {hostport(p.src, p.sport)}")


def _ct_hop(p: Pkt, node: NodeRules, hook: str, detail: str) -> None:
    if p.record:
        p.hops.append(TraceHop(kind="conntrack", node=node.name, netns=node.netns, hook=hook, detail=detail))


def _last_rule(p: Pkt) -> Optional[str]:
    if p.last is None:
        return None
    backend, table, chain, index, rule, verdict = p.last
    where = f"{backend} {table} {chain}"
    if index is None:
        return f"{where}: the chain's policy {verdict}"
    return f"{where} rule {index}: {rule}"
