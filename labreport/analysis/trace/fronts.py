"""``trace --all``: every Service front (cluster IP, node ports, external and load balancer
IPs), traced from a pod and from outside the cluster; one summary row each. Pure."""

from __future__ import annotations

from typing import Optional

from labreport.analysis.model import Analysis, ServiceRecord
from labreport.analysis.probability import format_probability
from labreport.analysis.trace.engine import run_flow
from labreport.analysis.trace.model import Flow, Outcome
from labreport.analysis.trace.resolve import all_services, rules_node
from labreport.analysis.trace.world import World
from labreport.snapshot import Record

OUTSIDE = "203.0.113.7"  # TEST-NET-3 (RFC 5737): an address outside any cluster


class FrontRow(Record):
    service: str
    front: str  # "10.96.0.10:53", "node:30080", "203.0.113.10:80 (LB)"
    kind: str  # cluster-ip | node-port | external-ip | load-balancer
    source_kind: str  # pod | outside
    source: str
    summary: str
    outcomes: list[dict[str, object]]


def _summary(outs: list[Outcome]) -> str:
    parts: list[str] = []
    for o in outs:
        share = format_probability(o.probability, style="whole-percent")
        if o.result == "delivered":
            parts.append(f"{share} {o.endpoint}{' (masq)' if o.masquerade else ''}")
        elif o.result in ("dropped", "rejected"):
            parts.append(f"{share} {o.result.upper()}")
        else:
            parts.append(f"{share} unknown" + (f" → {o.dnat}{' (masq)' if o.masquerade else ''}" if o.dnat else ""))
    return "; ".join(parts) if parts else "no outcome"


def _fronts(rec: ServiceRecord, node_ip: Optional[str]) -> list[tuple[str, int, str]]:
    out: list[tuple[str, int, str]] = []
    if rec.cluster_ip and rec.port:
        out.append((rec.cluster_ip, rec.port, "cluster-ip"))
    if rec.node_port and node_ip:
        out.append((node_ip, rec.node_port, "node-port"))
    for ip in rec.external_ips:
        if rec.port:
            out.append((ip, rec.port, "external-ip"))
    for ip in rec.load_balancer_ips:
        if rec.port:
            out.append((ip, rec.port, "load-balancer"))
    return out


def pod_source(world: World, node: str) -> Optional[str]:
    """A pod IP on ``node`` (a pod with a veth, when there is one)."""
    best = None
    for ip, place in world.pods.items():
        if place.node == node:
            if place.veth is not None:
                return ip
            best = best or ip
    return best


def all_fronts(world: World, analysis: Optional[Analysis], via: Optional[str] = None,
               pod_ip: Optional[str] = None, outside_ip: str = OUTSIDE) -> list[FrontRow]:
    from labreport.perf import gc_paused

    with gc_paused():
        return _all_fronts(world, analysis, via, pod_ip, outside_ip)


def _all_fronts(world: World, analysis: Optional[Analysis], via: Optional[str], pod_ip: Optional[str],
                outside_ip: str) -> list[FrontRow]:
    node = rules_node(world, via)
    rows: list[FrontRow] = []
    if node is None:
        return rows
    m = world.nodes[node]
    src_pod = pod_ip or pod_source(world, node)
    for rec in all_services(analysis):
        for ip, port, kind in _fronts(rec, m.primary):
            for skind, src in (("pod", src_pod), ("outside", outside_ip)):
                if src is None:
                    continue
                entry = "pod" if skind == "pod" and src in world.pods else "outside"
                flow = Flow(src=src, dst=ip, dport=port, proto=rec.protocol if rec.protocol in ("tcp", "udp", "sctp")
                            else "tcp", entry_node=node, entry=entry)  # type: ignore[arg-type]
                res = run_flow(world, flow, hops=False)
                rows.append(FrontRow(service=rec.name, front=f"{ip}:{port}", kind=kind, source_kind=skind, source=src,
                                     summary=_summary(res.outcomes),
                                     outcomes=[{"result": o.result, "probability": o.probability,
                                                "endpoint": o.endpoint, "dnat": o.dnat, "masquerade": o.masquerade,
                                                "reason": o.reason} for o in res.outcomes]))
    return rows
