"""The packet while it moves: addresses, ports, marks, conntrack's view, probability, hops.

A plain slotted class, not a pydantic model: a trace forks it at every probabilistic rule
and copies it thousands of times in ``trace --all``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Tuple

from labreport.analysis.trace.model import TraceHop

if TYPE_CHECKING:  # annotations only: world imports netfilter, which imports this module
    from labreport.analysis.trace.world import RouteEntry

Tuple4 = Tuple[str, int, str, int]  # (src, sport, dst, dport)
# (node, the tuple the packet entered with, the tuple it left with, whether this node SNATed or
# masqueraded it: a masquerade to the address it already had still remaps the port, --random-fully)
CtRecord = Tuple[str, Tuple4, Tuple4, bool]


class Pkt:
    __slots__ = ("src", "dst", "sport", "dport", "proto", "mark", "ctmark", "in_if", "out_if", "dnat", "snat",
                 "masq", "prob", "hops", "node", "netns", "nat_dst_done", "nat_src_done", "family", "phys_in",
                 "phys_out", "bridged", "local_out", "record", "last", "ctstate", "ctdir", "tcpflags", "ct", "ct_in",
                 "ct_here", "left", "bpf_lb", "rt")

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
        # conntrack's view of this packet in the node it is in: "new" (the first packet of a
        # connection), "established" (a packet of a known connection: the reply), "invalid"
        # (a TCP SYN-ACK no entry of this node knows); its direction; the TCP flags it carries
        self.ctstate = "new"
        self.ctdir = "original"
        self.tcpflags = "syn"
        # the connection as each node's conntrack recorded it, node by node: (node, the tuple
        # as the packet entered, the tuple as it left), tuples (src, sport, dst, dport)
        self.ct: tuple[CtRecord, ...] = ()
        # the node it is in, the tuple it entered with, whether its source was NATed before
        self.ct_in: Optional[tuple[str, Tuple4, bool]] = None
        self.ct_here: Optional[CtRecord] = None  # the reply: the entry of this node it matched
        self.left = False  # sent out of the snapshot (towards an address no node owns)
        self.bpf_lb = False  # translated by Cilium's BPF service LB, before netfilter and conntrack
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
        p.ctstate, p.ctdir, p.tcpflags, p.ct, p.ct_in = self.ctstate, self.ctdir, self.tcpflags, self.ct, self.ct_in
        p.ct_here, p.left, p.bpf_lb = self.ct_here, self.left, self.bpf_lb
        return p

    def tuple4(self) -> Tuple4:
        """The addresses and ports as they are now (a masqueraded source: the address chosen)."""
        return (self.snat or self.src or "?", self.sport, self.dst, self.dport)

    def ct_status(self) -> tuple[bool, bool]:
        """conntrack's status bits of the connection in this node: (destination NATed, source NATed)."""
        if self.ct_here is not None:  # the reply: the entry it matched
            _node, a, b, snat = self.ct_here
            return (a[2], a[3]) != (b[2], b[3]), snat or (a[0], a[1]) != (b[0], b[1])
        if self.ct_in is not None:  # the first packet: what this node's conntrack has done to it so far
            _node, a, natted_before = self.ct_in
            return (self.dst, self.dport) != (a[2], a[3]), bool(self.masq or self.snat) and not natted_before
        return bool(self.dnat), bool(self.snat or self.masq)
