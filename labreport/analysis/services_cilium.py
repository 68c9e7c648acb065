"""Cilium's kube-proxy replacement: its service table (``cilium-dbg service list`` or
``cilium-dbg bpf lb list``, imported) decoded into the same ServiceRecords as the other
modes, and the service step of a trace (:func:`lookup`), which the trace engine can call
where kube-proxy's rules would be.

What Cilium keeps (its documentation, kube-proxy-free guide): one frontend per service
address and port — the ClusterIP, each NodePort once per node address plus ``0.0.0.0``
(any local address), LoadBalancer and external IPs — each with the service's backends.
A new connection picks one of the *active* backends at random (``loadBalancer.algorithm``
``random``, the default; Maglev also spreads evenly), so each active backend gets an equal
share; terminating/quarantined/maintenance backends get none. The translation happens in
BPF at the socket or the device, not in netfilter, so no rule hop exists for it. In-cluster
(socket-level) traffic is not masqueraded; node-external NodePort/LB traffic to a remote
backend is SNATed to the node unless DSR is on, which the table does not say.
``InternalLocal`` / ``Local`` flags (bpf lb list) are the traffic policies. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from labreport.analysis.model import Endpoint, ServiceRecord
from labreport.snapshot import CiliumService, CiliumServiceTable, ClusterObjects

INACTIVE = {"terminating", "quarantined", "maintenance"}
EXTERNAL_TYPES = {"NodePort", "LoadBalancer", "ExternalIPs", "HostPort"}


def _host_port(addr: str) -> tuple[str, Optional[int]]:
    host, _, port = addr.rpartition(":")
    host = host.strip("[]")
    return host, int(port) if port.isdigit() else None


def _active(svc: CiliumService) -> list[str]:
    return [b.address for b in svc.backends if (b.state or "active").lower() not in INACTIVE]


def endpoints_of(svc: CiliumService) -> list[Endpoint]:
    """The backends with their shares: equal among the active ones, 0 for the others."""
    active = _active(svc)
    out = []
    for b in svc.backends:
        on = (b.state or "active").lower() not in INACTIVE
        out.append(Endpoint(address=b.address, probability=(1.0 / len(active)) if on and active else 0.0,
                            ready=on, weight=None))
    return out


def _api_names(cluster: Optional[ClusterObjects]) -> dict[tuple[str, int, str], str]:
    """(cluster IP, port, protocol) -> ns/svc[:port] from the cluster's Services."""
    out: dict[tuple[str, int, str], str] = {}
    if cluster is None:
        return out
    for svc in cluster.services:
        if not isinstance(svc, dict):
            continue
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ns, name = meta.get("namespace") or "default", meta.get("name")
        if not name:
            continue
        ips = [c for c in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if c and c != "None"]
        for p in spec.get("ports") or []:
            if not isinstance(p, dict) or not str(p.get("port", "")).isdigit():
                continue
            label = f"{ns}/{name}:{p['name']}" if p.get("name") else f"{ns}/{name}"
            for ip in ips:
                out[(ip, int(p["port"]), (p.get("protocol") or "TCP").lower())] = label
    return out


def decode_cilium(table: CiliumServiceTable, cluster: Optional[ClusterObjects] = None) -> list[ServiceRecord]:
    """One ServiceRecord per ClusterIP frontend; NodePort/LB/external frontends with the
    same backends (and protocol) are attached to it, like kube-proxy's records."""
    names = _api_names(cluster)
    records: list[ServiceRecord] = []
    by_backends: dict[tuple[tuple[str, ...], str], ServiceRecord] = {}
    later: list[CiliumService] = []
    for svc in table.services:
        proto = (svc.protocol or "TCP").lower()
        if (svc.type or "ClusterIP") != "ClusterIP":
            later.append(svc)
            continue
        ip, port = _host_port(svc.frontend)
        rec = ServiceRecord(name=names.get((ip, port or 0, proto), svc.frontend), cluster_ip=ip, port=port,
                            protocol=proto, endpoints=endpoints_of(svc), no_endpoints=not svc.backends,
                            mode="cilium", evidence=[f"{svc.id or ''} {svc.frontend} {svc.type}".strip()])
        if "/" in rec.name:
            rec.namespace, _, rest = rec.name.partition("/")
            rec.service, _, pname = rest.partition(":")
            rec.port_name = pname or None
        if "InternalLocal" in svc.flags:
            rec.internal_traffic_policy = "Local"
        if "Local" in svc.flags:
            rec.external_traffic_policy = "Local"
        if svc.id is not None:
            rec.chains["cilium_id"] = str(svc.id)
        records.append(rec)
        by_backends.setdefault((tuple(sorted(b.address for b in svc.backends)), proto), rec)
    for svc in later:
        proto = (svc.protocol or "TCP").lower()
        ip, port = _host_port(svc.frontend)
        rec_or_none = by_backends.get((tuple(sorted(b.address for b in svc.backends)), proto))
        if rec_or_none is None:
            rec_or_none = ServiceRecord(name=svc.frontend, port=port, protocol=proto, endpoints=endpoints_of(svc),
                                        no_endpoints=not svc.backends, mode="cilium")
            records.append(rec_or_none)
        rec = rec_or_none
        rec.evidence.append(f"{svc.id or ''} {svc.frontend} {svc.type}".strip())
        if svc.type in ("NodePort", "HostPort"):
            rec.node_port = rec.node_port or port
        elif svc.type == "LoadBalancer" and ip not in rec.load_balancer_ips:
            rec.load_balancer_ips.append(ip)
        elif svc.type == "ExternalIPs" and ip not in rec.external_ips:
            rec.external_ips.append(ip)
        if "Local" in svc.flags:
            rec.external_traffic_policy = "Local"
    return records


@dataclass(frozen=True)
class LbChoice:
    backend: str  # ip:port
    probability: float


@dataclass(frozen=True)
class LbHit:
    frontend: CiliumService
    choices: tuple[LbChoice, ...]  # empty: no active backend (Cilium drops the packet)
    evidence: str  # the frontend line, for the hop


def lookup(table: CiliumServiceTable, dst_ip: str, dport: int, proto: str = "tcp",
           node_ips: Iterable[str] = ()) -> Optional[LbHit]:
    """The service step for a packet to ``dst_ip:dport``: the frontend it matches (exact
    address first; a NodePort also through a ``0.0.0.0`` frontend when ``dst_ip`` is one
    of ``node_ips``) and the backends it may go to. None: Cilium does not translate it."""
    ips = set(node_ips)
    wildcard: Optional[CiliumService] = None
    for svc in table.services:
        if svc.protocol and svc.protocol.lower() != proto.lower():
            continue
        ip, port = _host_port(svc.frontend)
        if port != dport:
            continue
        if ip == dst_ip:
            return _hit(svc)
        if ip in ("0.0.0.0", "::") and dst_ip in ips and wildcard is None:
            wildcard = svc
    return _hit(wildcard) if wildcard is not None else None


def _hit(svc: CiliumService) -> LbHit:
    active = _active(svc)
    return LbHit(frontend=svc, choices=tuple(LbChoice(a, 1.0 / len(active)) for a in active),
                 evidence=f"{svc.id if svc.id is not None else ''} {svc.frontend} {svc.type or ''} → "
                          + ", ".join(b.address for b in svc.backends))
