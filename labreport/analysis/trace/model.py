"""What a trace returns: outcomes with probabilities, each with its hop list.

The JSON of ``labreport trace --json`` is :meth:`TraceResult.to_json`. Netfilter hops have a
fixed shape (the kernel-trace comparison reads it)::

    {"kind": "netfilter", "node", "netns", "hook", "family", "backend", "table", "chain",
     "rule_index", "rule", "verdict"}

``rule_index`` is the 1-based position of the rule in its chain, or None for the chain's
policy / fall-through; ``rule`` is the rule's text as iptables-save / nft list print it.
Other hops (route, device, bridge, veth, encap, wire, deliver, ipvs) carry node, netns,
device and detail; a ``cilium`` hop (Cilium's BPF service lookup, kube-proxy replacement)
also carries ``rule``: the frontend's entry of the imported service table, its evidence;
a ``conntrack`` hop (the reply: the entry it matched, a NAT conntrack reversed) also
carries ``hook``. A delivered outcome traced with replies has ``"reply"``
(:meth:`Reply.to_json`): the way back, with its own result and hops.
A ``route`` hop carries ``table`` (the routing table looked up) and ``rule`` (the ip rule that
chose it, "PRIO: SELECTORS ACTION", or that dropped/rejected the packet).
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import ConfigDict, Field

from labreport.snapshot import Record

Result = Literal["delivered", "dropped", "rejected", "unknown"]
HopKind = Literal["netfilter", "route", "device", "bridge", "veth", "encap", "wire", "deliver", "ipvs", "cilium",
                  "conntrack"]

NETFILTER_KEYS = ("kind", "node", "netns", "hook", "family", "backend", "table", "chain", "rule_index", "rule",
                  "verdict")


class TraceHop:
    """One step of a trace. A plain slotted class, not a pydantic model: a trace makes dozens
    and ``trace --all`` tens of thousands (``to_json`` gives the exact JSON shape)."""

    __slots__ = ("kind", "node", "netns", "hook", "family", "backend", "table", "chain", "rule_index", "rule",
                 "verdict", "device", "detail")

    def __init__(self, kind: HopKind, node: Optional[str] = None, netns: Optional[str] = None,
                 hook: Optional[str] = None, family: Optional[str] = None, backend: Optional[str] = None,
                 table: Optional[str] = None, chain: Optional[str] = None, rule_index: Optional[int] = None,
                 rule: Optional[str] = None, verdict: Optional[str] = None, device: Optional[str] = None,
                 detail: Optional[str] = None) -> None:
        self.kind, self.node, self.netns = kind, node, netns
        self.hook, self.family, self.backend, self.table, self.chain = hook, family, backend, table, chain
        self.rule_index, self.rule, self.verdict = rule_index, rule, verdict
        self.device, self.detail = device, detail

    def to_json(self) -> dict[str, Any]:
        if self.kind == "netfilter":
            return {k: getattr(self, k) for k in NETFILTER_KEYS}
        out: dict[str, Any] = {"kind": self.kind, "node": self.node, "netns": self.netns, "device": self.device,
                               "detail": self.detail}
        if self.kind == "cilium":
            out["rule"] = self.rule
        if self.kind == "conntrack":
            out["hook"] = self.hook
        elif self.kind == "route":
            out["table"], out["rule"] = self.table, self.rule  # the routing table and the ip rule that chose it
        return out

    def __repr__(self) -> str:
        return f"TraceHop({self.to_json()!r})"


class CtEntry(Record):
    """A node's conntrack entry for the connection, as the trace predicts it (``conntrack -L``:
    the original tuple, then the reply tuple; "ip:port → ip:port")."""

    node: str
    original: str
    reply: str
    nat: Optional[str] = None  # "dnat", "snat", "dnat+snat" (what this node rewrote), None: none

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "original": self.original, "reply": self.reply, "nat": self.nat}


class Reply(Record):
    """The way back of a delivered outcome: the endpoint's answer (a TCP SYN-ACK) traced from
    the endpoint through every node's conntrack (ESTABLISHED, direction reply: the nat chains
    are skipped, conntrack reverses the NAT) until it reaches the client, or not.

    ``src``/``dst``: what the endpoint sends (the reply tuple of the connection where it was
    NATed); ``seen_src``/``seen_dst``: what arrives at the client; ``expected_src``: the
    address the client connected to, which its socket waits for. ``delivered`` means the client
    gets an answer it accepts; ``dropped`` with the reason when it would not (the reply
    bypassed a conntrack entry, so the client sees the pod, not the address it asked for)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    result: Result
    src: str
    dst: str
    expected_src: str
    expected_dst: str
    seen_src: Optional[str] = None
    seen_dst: Optional[str] = None
    node: Optional[str] = None  # where the reply ended
    reason: Optional[str] = None
    conntrack: list[CtEntry] = Field(default_factory=list)
    hops: list[TraceHop] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result, "src": self.src, "dst": self.dst, "expected_src": self.expected_src,
                "expected_dst": self.expected_dst, "seen_src": self.seen_src, "seen_dst": self.seen_dst,
                "node": self.node, "reason": self.reason, "conntrack": [c.to_json() for c in self.conntrack],
                "hops": [h.to_json() for h in self.hops]}

    def summary(self) -> str:
        if self.result == "delivered":
            return f"{self.src} → {self.dst}, seen as {self.seen_src} → {self.seen_dst}: accepted"
        return f"{self.result.upper()}: {self.reason or '?'}"


class Outcome(Record):
    model_config = ConfigDict(extra="allow", populate_by_name=True, arbitrary_types_allowed=True)

    result: Result
    probability: float
    endpoint: Optional[str] = None  # "ip:port" the packet reached (after DNAT)
    node: Optional[str] = None
    pod: Optional[str] = None  # "ns/name"
    masquerade: bool = False
    source: Optional[str] = None  # the source address the receiver sees ("ip:port" or ip)
    dnat: Optional[str] = None  # the DNAT target, when a rule rewrote the destination
    reason: Optional[str] = None  # dropped/rejected: the rule; unknown: what is missing
    hops: list[TraceHop] = Field(default_factory=list)
    reply: Optional[Reply] = None  # delivered outcomes, when replies were traced

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"result": self.result, "probability": self.probability, "endpoint": self.endpoint,
                               "node": self.node, "pod": self.pod, "masquerade": self.masquerade,
                               "source": self.source, "dnat": self.dnat, "reason": self.reason,
                               "hops": [h.to_json() for h in self.hops]}
        if self.reply is not None:
            out["reply"] = self.reply.to_json()
        return out


class Flow(Record):
    """The packet a trace starts with (the first packet of a connection)."""

    src: Optional[str] = None  # None: a local process whose source address the route picks
    dst: str
    dport: int
    sport: int = 40000
    proto: Literal["tcp", "udp", "sctp"] = "tcp"
    entry_node: Optional[str] = None  # where the packet enters
    entry: Literal["pod", "process", "outside"] = "outside"
    entry_netns: Optional[str] = None  # a pod's netns (entry "pod")
    entry_dev: Optional[str] = None  # the device it arrives on (entry "outside")
    pod: Optional[str] = None  # the source pod, "ns/name"
    mark: int = 0  # the packet's fwmark before the first hook (``trace --mark``)


class TraceResult(Record):
    flow: Flow
    outcomes: list[Outcome] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    description: Optional[str] = None  # "pod default/a → 10.96.0.10:53 (kube-system/kube-dns:dns)"

    def to_json(self) -> dict[str, Any]:
        return {"outcomes": [o.to_json() for o in self.outcomes], "notes": list(self.notes),
                "flow": self.flow.model_dump(mode="json"), "description": self.description}
