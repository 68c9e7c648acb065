"""Per user Service: what a pod and what an outside client get, traced through the datapath
model (labreport.analysis.trace) — endpoints and their shares, DROP/REJECT and by which rule,
masquerade. The answers behind Q8/Q9/Q11 and the extra Service kinds. Pure.
"""

from __future__ import annotations

from typing import Optional

from labreport.analysis.model import Analysis, ServiceTraffic, TrafficOutcome
from labreport.analysis.namespaces import is_system_record
from labreport.analysis.trace import Flow, build_world, run_flow
from labreport.analysis.trace.fronts import OUTSIDE, cilium_fronts, pod_source, service_fronts
from labreport.analysis.trace.resolve import all_services
from labreport.analysis.trace.world import World
from labreport.snapshot import Snapshot

MAX_SERVICES = 60  # a report lists at most this many Services here (the rest: a note)


def _rules_node(world: World, analysis: Analysis) -> Optional[str]:
    with_rules = [m for m in world.nodes.values() if m.has_rules()]
    if not with_rules:
        return None
    # a node with pods of its own: its pods are the natural "from a pod" clients
    for m in with_rules:
        if any(p.node == m.name and p.veth is not None for p in world.pods.values()):
            return m.name
    return with_rules[0].name


def service_traffic(snapshot: Snapshot, analysis: Analysis,
                    world: Optional[World] = None) -> tuple[list[ServiceTraffic], Optional[str]]:
    w = world or build_world(snapshot, analysis)
    node = _rules_node(w, analysis)
    if node is None:
        return [], "no node has kube-proxy rules or a Cilium service table in the snapshot"
    m = w.nodes[node]
    every = all_services(analysis)
    recs = [r for r in every if not is_system_record(r)]
    note = None
    if len(recs) > MAX_SERVICES:
        note = f"{len(recs)} user Service ports; the first {MAX_SERVICES} are traced here (labreport trace --all: all)"
        recs = recs[:MAX_SERVICES]
    rows: list[ServiceTraffic] = []
    cil_fronts = cilium_fronts(m, every)
    for rec in recs:
        eps = {e.address.rsplit(":", 1)[0] for e in rec.endpoints or ()}
        pod_ip = _client_pod(w, node, eps)
        proto = rec.protocol if rec.protocol in ("tcp", "udp", "sctp") else "tcp"
        if rec.mode == "cilium" and m.cilium is not None:  # Cilium's own frontends, each with its address
            triples = [(ip, port, kind) for ip, port, kind, name in cil_fronts if name == rec.name]
        else:
            triples = service_fronts(rec, m.primary)
        fronts = [(ip, port, kind, "pod" if kind == "cluster-ip" else "outside") for ip, port, kind in triples]
        for ip, port, kind, source in fronts:
            src = pod_ip if source == "pod" else OUTSIDE
            if src is None:
                continue
            place = w.pods.get(src)
            here = place is not None and place.node == node and place.veth is not None
            if source == "pod":
                label = f"pod {place.pod or '?'} ({src})" if place else f"pod {src}"
                if not here:
                    label += f", through the rules of {node}"
            else:
                label = f"{src} via {node}"
            flow = Flow(src=src, dst=ip, dport=port, proto=proto, entry_node=node,  # type: ignore[arg-type]
                        entry="pod" if here else "outside", pod=place.pod if place else None)
            res = run_flow(w, flow, hops=False)
            rows.append(ServiceTraffic(
                service=rec.name, front=f"{ip}:{port}", kind=kind, source=source,  # type: ignore[arg-type]
                source_label=label, source_ip=src, source_pod=place.pod if place and source == "pod" else None,
                elsewhere=source == "pod" and not here, node=node,
                outcomes=[TrafficOutcome(result=o.result, share=o.probability, endpoint=o.endpoint if o.result
                                         in ("delivered", "unknown") else None, dnat=o.dnat, pod=o.pod, node=o.node,
                                         masquerade=o.masquerade, reason=o.reason) for o in res.outcomes]))
    if recs and not any(p.node == node and p.veth is not None for p in w.pods.values()):
        why = (f"no pod of {node} (the node whose rules were collected) is in the snapshot: pod traffic is traced "
               f"from another pod's address entering {node}'s rules, as kube-proxy writes the same rules on every "
               "node (Local traffic policies aside)" if w.pods else "no pod is in the snapshot: traced from outside only")
        note = ((note + "; ") if note else "") + why
    return rows, note


def _client_pod(w: World, node: str, endpoints: set[str]) -> Optional[str]:
    """A pod on ``node`` to send from, preferring one that is not an endpoint itself."""
    first = None
    for ip, place in w.pods.items():
        if place.node != node or place.veth is None:
            continue
        if ip not in endpoints:
            return ip
        first = first or ip
    if first or pod_source(w, node):
        return first or pod_source(w, node)
    for ip in w.pods:  # a pod elsewhere (its own node's rules were not collected)
        if ip not in endpoints:
            return ip
    return next(iter(w.pods), None)
