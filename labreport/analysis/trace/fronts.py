"""``trace --all``: every Service front (cluster IP, node ports, external and load balancer
IPs), traced from a pod and from outside the cluster; one summary row each. Pure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from labreport.analysis.probability import format_probability
from labreport.analysis.trace.engine import run_flow
from labreport.analysis.trace.model import Flow, Outcome
from labreport.analysis.trace.resolve import all_services, rules_node
from labreport.analysis.trace.world import NodeModel, World
from labreport.perf import trusted_model
from labreport.snapshot import Record

if TYPE_CHECKING:  # annotations only: analysis.model imports observed, which traces
    from labreport.analysis.model import Analysis, ServiceRecord

OUTSIDE = "203.0.113.7"  # TEST-NET-3 (RFC 5737): an address outside any cluster


class FrontRow(Record):
    service: str
    front: str  # "10.96.0.10:53", "node:30080", "203.0.113.10:80 (LB)"
    kind: str  # cluster-ip | node-port | external-ip | load-balancer
    source_kind: str  # pod | outside
    source: str
    summary: str
    outcomes: list[dict[str, object]]
    reply_summary: Optional[str] = None  # with replies: each delivered outcome's way back


def _reply_summary(outs: list[Outcome]) -> Optional[str]:
    parts: list[str] = []
    for o in outs:
        if o.reply is None:
            continue
        r = o.reply
        if r.result == "delivered":
            parts.append(f"{o.endpoint}: ok")
        else:
            node = (r.reason or "").split("conntrack entry on ", 1)[-1].split(" ", 1)[0] if r.reason and \
                "conntrack entry on " in r.reason else None
            parts.append(f"{o.endpoint}: {r.result.upper()}" + (f" (bypasses {node})" if node else ""))
    return "; ".join(parts) if parts else ("-" if outs else None)


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


def service_fronts(rec: ServiceRecord, node_ip: Optional[str]) -> list[tuple[str, int, str]]:
    """The fronts of a kube-proxy Service port as (ip, port, kind): its cluster IP, its node
    port on ``node_ip`` (when known), its external and load-balancer IPs."""
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


CILIUM_KINDS = {"ClusterIP": "cluster-ip", "NodePort": "node-port", "HostPort": "node-port",
                "ExternalIPs": "external-ip", "LoadBalancer": "load-balancer"}


def cilium_fronts(m: NodeModel, recs: list[ServiceRecord]) -> list[tuple[str, int, str, str]]:
    """The frontends of ``m``'s Cilium service table as (ip, port, kind, service name): a
    ``0.0.0.0`` NodePort on the node's own address (left out when that is not known)."""
    if m.cilium is None:
        return []
    names: dict[str, str] = {}
    for rec in recs:
        if rec.mode == "cilium":
            for line in rec.evidence:
                for tok in line.split():
                    names.setdefault(tok, rec.name)
    out: list[tuple[str, int, str, str]] = []
    for svc in m.cilium.services:
        ip, _, port = svc.frontend.rpartition(":")
        ip = ip.strip("[]")
        if not port.isdigit():
            continue
        if ip in ("0.0.0.0", "::"):
            if not m.primary:
                continue
            ip = m.primary
        out.append((ip, int(port), CILIUM_KINDS.get(svc.type or "", "cluster-ip"), names.get(svc.frontend, svc.frontend)))
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
               pod_ip: Optional[str] = None, outside_ip: str = OUTSIDE, replies: bool = False) -> list[FrontRow]:
    """``replies``: each delivered outcome's reply traced too (``trace --all --replies``)."""
    from labreport.perf import gc_paused

    # the rows and the chains compiled for them live as long as the command: frozen, the
    # collector's first pass after the block does not scan them (22,000 fronts: ~0.2 s)
    with gc_paused(freeze=True):
        return _all_fronts(world, analysis, via, pod_ip, outside_ip, replies)


def _all_fronts(world: World, analysis: Optional[Analysis], via: Optional[str], pod_ip: Optional[str],
                outside_ip: str, replies: bool = False) -> list[FrontRow]:
    node = rules_node(world, via)
    rows: list[FrontRow] = []
    if node is None:
        return rows
    m = world.nodes[node]
    src_pod = pod_ip or pod_source(world, node)
    recs = all_services(analysis)
    todo: list[tuple[str, str, int, str, str]] = []  # service, ip, port, kind, proto
    for rec in recs:
        if rec.mode == "cilium" and m.cilium is not None:
            continue  # from the table itself, below: every frontend, with its own address
        proto = rec.protocol if rec.protocol in ("tcp", "udp", "sctp") else "tcp"
        todo += [(rec.name, ip, port, kind, proto) for ip, port, kind in service_fronts(rec, m.primary)]
    if m.cilium is not None:
        cil = {r.name: r for r in recs if r.mode == "cilium"}
        for ip, port, kind, name in cilium_fronts(m, recs):
            rec_ = cil.get(name)
            proto = rec_.protocol if rec_ is not None and rec_.protocol in ("tcp", "udp", "sctp") else "tcp"
            todo.append((name, ip, port, kind, proto))
    for name, ip, port, kind, proto in todo:
        sources: list[tuple[str, Optional[str]]] = [("pod", src_pod), ("outside", outside_ip)]
        if src_pod is None and m.cilium is not None:
            sources.insert(0, ("node", node))  # no pod to send from: a process on the node (socket LB alike)
        for skind, src in sources:
            if src is None:
                continue
            entry = "pod" if skind == "pod" and src in world.pods else ("process" if skind == "node" else "outside")
            flow = Flow(src=None if skind == "node" else src, dst=ip, dport=port, proto=proto,  # type: ignore[arg-type]
                        entry_node=node, entry=entry)  # type: ignore[arg-type]
            res = run_flow(world, flow, hops=False, replies=replies)
            outs: list[dict[str, object]] = []
            for o in res.outcomes:
                d: dict[str, object] = {"result": o.result, "probability": o.probability, "endpoint": o.endpoint,
                                        "dnat": o.dnat, "masquerade": o.masquerade, "reason": o.reason}
                if o.reply is not None:
                    d["reply"] = {"result": o.reply.result, "src": o.reply.src, "dst": o.reply.dst,
                                  "seen_src": o.reply.seen_src, "seen_dst": o.reply.seen_dst,
                                  "reason": o.reply.reason}
                outs.append(d)
            rows.append(trusted_model(FrontRow, {  # every value a str (or None) and the list of dicts above
                "service": name, "front": f"{ip}:{port}", "kind": kind, "source_kind": skind, "source": src,
                "summary": _summary(res.outcomes), "outcomes": outs,
                "reply_summary": _reply_summary(res.outcomes) if replies else None}))
    return rows
