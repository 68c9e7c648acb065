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


def run_hook(node: NodeRules, hook: str, pkts: list[Pkt]) -> tuple[list[Pkt], list[Stop]]:
    going: list[Pkt] = []
    stopped: list[Stop] = []
    env = ipt_mod.Env(node.name, node.netns, hook, node.local)
    for p in pkts:
        cur = [p]
        entries = node.hook_entries(hook, p.family)
        for ent in entries:
            nxt: list[Pkt] = []
            for q in cur:
                if ent.is_nat:
                    dst_manip = hook in ("PREROUTING", "OUTPUT")
                    if (q.nat_dst_done if dst_manip else q.nat_src_done):
                        nxt.append(q)
                        continue
                for r, verdict in ent.run(q, env):
                    if ent.is_nat:
                        if hook in ("PREROUTING", "OUTPUT"):
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
        going.extend(cur)
    return going, stopped


def _last_rule(p: Pkt) -> Optional[str]:
    if p.last is None:
        return None
    backend, table, chain, index, rule, verdict = p.last
    where = f"{backend} {table} {chain}"
    if index is None:
        return f"{where}: the chain's policy {verdict}"
    return f"{where} rule {index}: {rule}"
