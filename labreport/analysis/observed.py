"""Observed beside predicted: for each Service front, what ``trace`` predicts (endpoints,
shares, masquerade, DROP/REJECT) next to the connections the node's conntrack table really
holds for that front (the endpoint each reached — the reply's source — and whether its
source was rewritten). Pure: no I/O; the report lays the rows out.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Optional

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
