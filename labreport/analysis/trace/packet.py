"""The packet while it moves: addresses, ports, marks, conntrack's view, probability, hops.

A plain slotted class, not a pydantic model: a trace forks it at every probabilistic rule
and copies it thousands of times in ``trace --all``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from labreport.analysis.trace.model import TraceHop

if TYPE_CHECKING:  # annotations only: world imports netfilter, which imports this module
    from labreport.analysis.trace.world import RouteEntry


class Pkt:
    __slots__ = ("src", "dst", "sport", "dport", "proto", "mark", "ctmark", "in_if", "out_if", "dnat", "snat",
                 "masq", "prob", "hops", "node", "netns", "nat_dst_done", "nat_src_done", "family", "phys_in",
                 "phys_out", "bridged", "local_out", "record", "last", "rt")

    def __init__(self, src: Optional[str], dst: str, sport: int, dport: int, proto: str) -> None:
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.proto = proto
        self.mark = 0
        self.ctmark = 0
        self.in_if: Optional[str] = None
        self.out_if: Optional[str] = None
        self.dnat: Optional[str] = None  # "ip:port" set by DNAT (conntrack: ctstate DNAT)
        self.snat: Optional[str] = None
        self.masq = False
        self.prob = 1.0
        self.hops: list[TraceHop] = []
        self.node: Optional[str] = None
        self.netns: Optional[str] = None
        self.nat_dst_done = False  # conntrack: the destination NAT of this connection is decided
        self.nat_src_done = False
        self.family = "ipv6" if ":" in dst else "ipv4"
        self.phys_in: Optional[str] = None
        self.phys_out: Optional[str] = None
        self.bridged = False
        self.local_out = False
        self.record = True  # False: no hop list (trace --all needs only the outcomes)
        # the last netfilter step (backend, table, chain, rule index, rule, verdict): what a DROP/REJECT names
        self.last: Optional[tuple[str, str, str, Optional[int], Optional[str], str]] = None
        self.rt: Optional[RouteEntry] = None  # the route the last lookup on this node chose (its gateway)

    def copy(self) -> "Pkt":
        p = Pkt.__new__(Pkt)
        p.src, p.dst, p.sport, p.dport, p.proto = self.src, self.dst, self.sport, self.dport, self.proto
        p.mark, p.ctmark, p.in_if, p.out_if = self.mark, self.ctmark, self.in_if, self.out_if
        p.dnat, p.snat, p.masq, p.prob = self.dnat, self.snat, self.masq, self.prob
        p.hops = list(self.hops) if self.record else self.hops
        p.node, p.netns, p.nat_dst_done, p.nat_src_done = self.node, self.netns, self.nat_dst_done, self.nat_src_done
        p.family, p.phys_in, p.phys_out, p.bridged = self.family, self.phys_in, self.phys_out, self.bridged
        p.local_out, p.record, p.last, p.rt = self.local_out, self.record, self.last, self.rt
        return p
