"""Observed beside predicted: for each Service front, what ``trace`` predicts (endpoints,
shares, masquerade, DROP/REJECT) next to the connections the node's conntrack table really
holds for that front (the endpoint each reached — the reply's source — and whether its
source was rewritten). Pure: no I/O; the report lays the rows out.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Optional

from pydantic import Field

from labreport.snapshot import Conntrack, ConntrackEntry, Record


class PredictedShare(Record):
    result: str  # delivered | dropped | rejected | unknown
    probability: float
    endpoint: Optional[str] = None
    masquerade: bool = False


class ObservedConnection(Record):
    endpoint: str  # ip:port the connection reached
    masquerade: bool  # the source was rewritten
    count: int


class ObservedFront(Record):
    service: str
    front: str  # "10.96.0.10:80" or "node:30080"
    source_kind: str = "pod"  # pod | outside | node (the predicted flow's source)
    predicted: list[PredictedShare] = Field(default_factory=list)
    observed: list[ObservedConnection] = Field(default_factory=list)
    # True: every observed connection is a predicted endpoint with the predicted masquerade
    # bit; False: one is not; None: nothing observed to compare
    agrees: Optional[bool] = None
    unexpected: list[str] = Field(default_factory=list)  # observed endpoints not predicted
    masquerade_differs: list[str] = Field(default_factory=list)  # endpoints whose masquerade bit differs
    node: Optional[str] = None  # the node whose conntrack table it is
    source: Optional[str] = None  # the connections' original source address


def _front_match(front: str, node_ips: set[str]) -> tuple[Optional[str], Optional[int]]:
    host, _, port = front.rpartition(":")
    if not port.isdigit():
        return None, None
    return (None if host == "node" else host), int(port)


def connections_to(front: str, table: Conntrack, node_ips: Iterable[str] = ()) -> list[ConntrackEntry]:
    """Entries whose original destination is the front (a node port: any node address)."""
    ips = set(node_ips)
    host, port = _front_match(front, ips)
    if port is None:
        return []
    out = []
    for e in table.entries:
        if e.original.dport != port:
            continue
        if host is None:
            if e.original.dst in ips:
                out.append(e)
        elif e.original.dst == host:
            out.append(e)
    return out


def pair(service: str, front: str, outcomes: Iterable[PredictedShare], table: Optional[Conntrack],
         node_ips: Iterable[str] = (), source_kind: str = "pod") -> ObservedFront:
    """One front: predicted outcomes and observed connections side by side."""
    preds = list(outcomes)
    row = ObservedFront(service=service, front=front, source_kind=source_kind, predicted=preds)
    if table is None:
        return row
    counts: Counter[tuple[str, bool]] = Counter()
    for e in connections_to(front, table, node_ips):
        if "UNREPLIED" in e.flags:
            continue  # never answered: reached nothing
        counts[(e.endpoint, e.snat)] += 1
    row.observed = [ObservedConnection(endpoint=ep, masquerade=m, count=n)
                    for (ep, m), n in sorted(counts.items())]
    if not row.observed:
        return row
    delivered = {p.endpoint: p.masquerade for p in preds if p.result == "delivered" and p.endpoint}
    # connections from other sources may be masqueraded differently than the predicted flow;
    # only the endpoint set is judged for them, the masquerade bit for the same source kind
    row.unexpected = sorted({o.endpoint for o in row.observed if o.endpoint not in delivered})
    row.agrees = not row.unexpected
    return row


def pair_all(rows: Iterable[tuple[str, str, str, list[PredictedShare]]], table: Optional[Conntrack],
             node_ips: Iterable[str] = ()) -> list[ObservedFront]:
    """Every (service, front, source kind, predicted outcomes) row paired with ``table``."""
    ips = list(node_ips)
    return [pair(svc, front, preds, table, ips, kind) for svc, front, kind, preds in rows]


# ------------------------------------------------------------------------------ from a snapshot

MAX_GROUPS = 200  # (front, source) pairs traced per node; the rest is counted in a note


def _fronts(analysis: Any, node_ips: set[str]) -> dict[tuple[str, int, str], str]:
    """(address, port, proto) -> service name, for every front of the decoded Services."""
    out: dict[tuple[str, int, str], str] = {}
    for na in analysis.nodes:
        for r in na.services:
            proto = (r.protocol or "tcp").lower()
            if r.port:
                for ip in [r.cluster_ip, *r.external_ips, *r.load_balancer_ips]:
                    if ip:
                        out.setdefault((ip, r.port, proto), r.name)
            if r.node_port:
                for ip in node_ips:
                    out.setdefault((ip, r.node_port, proto), r.name)
    return out


def observed_vs_predicted(snapshot: Any, analysis: Any) -> tuple[list[ObservedFront], list[str]]:
    """For every node with a conntrack table: each connection to a Service front, grouped
    by (front, source), beside what ``trace`` predicts for that same source and front.
    Returns (rows, notes). Pure (the trace engine is a pure model of the snapshot)."""
    rows: list[ObservedFront] = []
    notes: list[str] = []
    nodes = [n for n in snapshot.nodes if n.conntrack is not None and n.conntrack.entries]
    if not nodes:
        return rows, notes
    from labreport.analysis.trace import build_world, run_flow
    from labreport.analysis.trace.resolve import ResolveError, resolve_src

    world = build_world(snapshot, analysis)
    for node in nodes:
        model = world.nodes.get(node.name)
        node_ips = set(model.local) if model is not None else set()
        fronts = _fronts(analysis, node_ips)
        groups: dict[tuple[str, str, str], list[ConntrackEntry]] = {}
        for e in node.conntrack.entries:
            if e.original.dport is None:
                continue
            key = (e.original.dst, e.original.dport, e.protocol)
            if key not in fronts:
                continue
            groups.setdefault((f"{e.original.dst}:{e.original.dport}", e.original.src, e.protocol), []).append(e)
        if len(groups) > MAX_GROUPS:
            notes.append(f"{node.name}: {len(groups)} (front, source) pairs tracked; the first {MAX_GROUPS} compared")
        for (front, src, proto), entries in list(groups.items())[:MAX_GROUPS]:
            host, _, port = front.rpartition(":")
            name = fronts[(host, int(port), proto)]
            try:
                own = world.node_of_addr.get(src) == node.name  # the node itself connected
                flow = resolve_src(world, analysis, src, None if own else node.name)
            except ResolveError as exc:
                notes.append(f"{node.name}: {front} from {src}: {exc}")
                continue
            flow.dst, flow.dport = host, int(port)
            flow.proto = proto if proto in ("tcp", "udp", "sctp") else "tcp"  # type: ignore[assignment]
            if flow.entry == "process" and flow.entry_node == node.name:
                flow.src = src  # the node's own address, as conntrack saw it
            res = run_flow(world, flow, hops=False)
            preds = [PredictedShare(result=o.result, probability=o.probability, endpoint=o.endpoint,
                                    masquerade=o.masquerade) for o in res.outcomes]
            row = pair(name, front, preds, Conntrack(entries=entries), node_ips,
                       {"pod": "pod", "process": "node"}.get(flow.entry, "outside"))
            row.node = node.name
            row.source = src
            if row.observed:
                delivered = {p.endpoint: p.masquerade for p in preds if p.result == "delivered" and p.endpoint}
                bad_masq = sorted({o.endpoint for o in row.observed
                                   if o.endpoint in delivered and o.masquerade != delivered[o.endpoint]})
                row.masquerade_differs = bad_masq
                row.agrees = not row.unexpected and not bad_masq
            rows.append(row)
    return rows, notes
