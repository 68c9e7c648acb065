"""Decode kube-proxy's IPVS mode into the same ServiceRecords as the other modes.

What kube-proxy keeps in IPVS mode (pkg/proxy/ipvs/proxier.go):

- one IPVS virtual server per service address and port: the ClusterIP, each external and
  load-balancer IP (all bound to the dummy link ``kube-ipvs0`` so the node accepts them),
  and for a NodePort one virtual server per node address (``<nodeIP>:<nodePort>``,
  127.0.0.1 too with localhost NodePorts);
- real servers = the endpoints, forward method ``Masq`` (NAT), weight 1 (0 while an
  endpoint terminates); the share of an endpoint is weight / Σ weights (what rr and wrr
  give; lc/sh/… pick by load or hash, the weight share is then only the static part);
- sessionAffinity ClientIP = ``persistent <timeoutSeconds>`` on the virtual server;
- a few iptables rules around it (KUBE-SERVICES matching the ipsets KUBE-CLUSTER-IP …,
  KUBE-MARK-MASQ / KUBE-POSTROUTING for masquerading).

Names: with the cluster's Services (``ClusterObjects.services``) a virtual server is
matched by clusterIP/externalIP/LB IP + port + protocol (NodePorts by nodePort +
protocol) and named ``ns/svc:port``; without them it is named ``ip:port``, and a NodePort
virtual server (address not on kube-ipvs0, or — when kube-ipvs0 is unknown — a port in
30000-32767) is attached to the ClusterIP record with the same real servers when exactly
one has them. Pure: no I/O.

``ServiceRecord.chains``: ``ipvs`` (the virtual server line, "TCP  10.96.0.10:53 rr"),
``scheduler``, ``persistent`` (seconds), ``nodeport_ipvs`` (the NodePort virtual
servers, space-separated), ``device`` ("kube-ipvs0" when the ClusterIP is bound there),
``iptables`` (when KUBE-SERVICES matches kube-proxy's ipsets). ``Endpoint.weight`` is the
real server's weight; ``evidence`` holds the ipvsadm lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from labreport.analysis.model import Endpoint, MasqueradeInfo, ServiceRecord
from labreport.parsers.ipvsadm import IpvsVirtualServer, virtual_servers_of
from labreport.snapshot import ClusterObjects, Iptables, NodeSnapshot

NODEPORT_RANGE = range(30000, 32768)


@dataclass
class _SvcPort:
    name: str
    namespace: str
    service: str
    port_name: Optional[str]
    protocol: str
    port: int
    cluster_ip: Optional[str]
    node_port: Optional[int]
    external_ips: list[str]
    lb_ips: list[str]
    affinity_timeout: Optional[int]
    etp: Optional[str]
    itp: Optional[str]


def _api_service_ports(cluster: Optional[ClusterObjects]) -> list[_SvcPort]:
    out: list[_SvcPort] = []
    if cluster is None:
        return out
    for svc in cluster.services:
        if not isinstance(svc, dict):
            continue
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ns, name = meta.get("namespace") or "default", meta.get("name")
        if not name:
            continue
        cips = [c for c in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if c and c != "None"]
        lb = [i.get("ip") for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [] if i.get("ip")]
        timeout = None
        if spec.get("sessionAffinity") == "ClientIP":
            timeout = (((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")) or 10800
        for p in spec.get("ports") or []:
            pname = p.get("name") or None
            out.append(_SvcPort(
                name=f"{ns}/{name}:{pname}" if pname else f"{ns}/{name}", namespace=ns, service=name,
                port_name=pname, protocol=(p.get("protocol") or "TCP").lower(), port=int(p.get("port") or 0),
                cluster_ip=cips[0] if cips else None, node_port=p.get("nodePort"),
                external_ips=list(spec.get("externalIPs") or []), lb_ips=lb, affinity_timeout=timeout,
                etp=spec.get("externalTrafficPolicy"), itp=spec.get("internalTrafficPolicy"),
            ))
    return out


def kube_ipvs0_addresses(node: NodeSnapshot) -> Optional[set[str]]:
    """Addresses bound to kube-ipvs0 in the node's namespace; None when the link is unknown."""
    ns = node.node_netns()
    if ns is None:
        return None
    for link in ns.links:
        if link.name == "kube-ipvs0":
            return {a.local for a in link.addresses}
    return None


def _share(vs: IpvsVirtualServer) -> list[Endpoint]:
    weights = [rs.weight for rs in vs.real_servers]
    total = sum(w for w in weights if w is not None) if all(w is not None for w in weights) else None
    eps = []
    for rs in vs.real_servers:
        host = f"[{rs.address}]" if ":" in rs.address else rs.address
        port = rs.port if rs.port is not None else (rs.port_text or "")
        prob = (rs.weight / total) if (total and rs.weight is not None) else (0.0 if total == 0 else None)
        eps.append(Endpoint(address=f"{host}:{port}", weight=rs.weight, probability=prob))
    return eps


def _rs_key(vs: IpvsVirtualServer) -> tuple[str, ...]:
    return tuple(sorted(f"{rs.address}:{rs.port if rs.port is not None else rs.port_text}" for rs in vs.real_servers))


@dataclass
class _Acc:
    name: str
    protocol: str
    port: Optional[int] = None
    cluster_ip: Optional[str] = None
    node_port: Optional[int] = None
    external_ips: list[str] = field(default_factory=list)
    lb_ips: list[str] = field(default_factory=list)
    api: Optional[_SvcPort] = None
    main: Optional[IpvsVirtualServer] = None  # the VS whose real servers are reported
    vss: list[IpvsVirtualServer] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def masquerade_from_iptables(ipt: Optional[Iptables]) -> Optional[MasqueradeInfo]:
    """KUBE-MARK-MASQ / KUBE-POSTROUTING, which kube-proxy keeps in IPVS mode."""
    if ipt is None or "nat" not in ipt.tables:
        return None
    nat = ipt.tables["nat"]
    mark_chain, post = nat.chains.get("KUBE-MARK-MASQ"), nat.chains.get("KUBE-POSTROUTING")
    if mark_chain is None and post is None:
        return None
    info = MasqueradeInfo(
        mark_chain="KUBE-MARK-MASQ" if mark_chain else None, postrouting_chain="KUBE-POSTROUTING" if post else None,
    )
    for chain_name, chain in (("KUBE-MARK-MASQ", mark_chain), ("KUBE-POSTROUTING", post)):
        for r in chain.rules if chain else []:
            info.rules.append(f"-A {chain_name} {r.spec}")
            m = re.search(r"--set-xmark\s+(\S+)|--or-mark\s+(\S+)", r.spec)
            if m and chain_name == "KUBE-MARK-MASQ" and info.mark is None:
                if m.group(1):
                    info.mark = m.group(1)
                else:
                    info.mark = f"{m.group(2)}/{m.group(2)}"
    return info


def _ipset_rules(ipt: Optional[Iptables]) -> list[str]:
    if ipt is None or "nat" not in ipt.tables:
        return []
    chain = ipt.tables["nat"].chains.get("KUBE-SERVICES")
    return [f"-A KUBE-SERVICES {r.spec}" for r in (chain.rules if chain else []) if "--match-set" in r.spec]


def decode_ipvs(node: NodeSnapshot, cluster: Optional[ClusterObjects] = None) -> tuple[list[ServiceRecord], Optional[MasqueradeInfo]]:
    vss = virtual_servers_of(node.ipvs)
    bound = kube_ipvs0_addresses(node)
    api = _api_service_ports(cluster)
    by_addr: dict[tuple[str, str, int], tuple[_SvcPort, str]] = {}
    by_nodeport: dict[tuple[str, int], _SvcPort] = {}
    for sp in api:
        if sp.cluster_ip:
            by_addr[(sp.cluster_ip, sp.protocol, sp.port)] = (sp, "cluster")
        for ip in sp.external_ips:
            by_addr[(ip, sp.protocol, sp.port)] = (sp, "external")
        for ip in sp.lb_ips:
            by_addr[(ip, sp.protocol, sp.port)] = (sp, "lb")
        if sp.node_port:
            by_nodeport[(sp.protocol, int(sp.node_port))] = sp

    accs: dict[str, _Acc] = {}
    nodeport_vss: list[IpvsVirtualServer] = []
    ipset_rules = _ipset_rules(node.iptables)

    def acc_for(sp: _SvcPort) -> _Acc:
        a = accs.get(sp.name)
        if a is None:
            a = _Acc(name=sp.name, protocol=sp.protocol, port=sp.port, api=sp)
            accs[sp.name] = a
        return a

    for vs in vss:
        if vs.protocol == "FWM" or vs.port is None:
            key = vs.endpoint
            a = accs.setdefault(key, _Acc(name=key, protocol=vs.protocol.lower(), port=vs.port))
            a.vss.append(vs)
            a.main = a.main or vs
            if vs.port is None and vs.protocol != "FWM":
                a.warnings.append("virtual server printed with names (ipvsadm -L without -n): address not numeric")
            continue
        proto = vs.protocol.lower()
        hit = by_addr.get((vs.address, proto, vs.port))
        if hit:
            sp, kind = hit
            a = acc_for(sp)
            a.vss.append(vs)
            if kind == "cluster":
                a.cluster_ip, a.main = vs.address, vs
            elif kind == "external":
                a.external_ips.append(vs.address)
            else:
                a.lb_ips.append(vs.address)
            a.main = a.main or vs
            continue
        sp_np = by_nodeport.get((proto, vs.port))
        on_ipvs0 = bound is not None and vs.address in bound
        if sp_np is not None and not on_ipvs0:
            a = acc_for(sp_np)
            a.node_port = vs.port
            a.vss.append(vs)
            continue
        looks_nodeport = (bound is not None and not on_ipvs0) or (bound is None and vs.port in NODEPORT_RANGE)
        if looks_nodeport:
            nodeport_vss.append(vs)
            continue
        key = vs.endpoint
        a = accs.setdefault(key, _Acc(name=key, protocol=proto, port=vs.port))
        a.cluster_ip, a.main = vs.address, vs
        a.vss.append(vs)
        if api:
            a.warnings.append(f"no Service in the API has {vs.address}:{vs.port}/{proto} (stale virtual server?)")

    # NodePort virtual servers not named by the API: attach by identical real servers
    for vs in nodeport_vss:
        proto = vs.protocol.lower()
        cands = [a for a in accs.values() if a.main is not None and a.cluster_ip and a.protocol == proto
                 and a.main.real_servers and _rs_key(a.main) == _rs_key(vs)]
        if len(cands) == 1 and cands[0].node_port in (None, vs.port):
            cands[0].node_port = vs.port
            cands[0].vss.append(vs)
            continue
        grouped = next((a for a in accs.values() if a.node_port == vs.port and a.protocol == proto and a.cluster_ip is None), None)
        if grouped is not None:
            grouped.vss.append(vs)
            continue
        a = _Acc(name=vs.endpoint, protocol=proto, node_port=vs.port, main=vs, vss=[vs])
        a.warnings.append(
            "NodePort virtual server not matched to a ClusterIP (no API Service and no ClusterIP with the same real servers)"
            + ("; classified as NodePort by its port range" if bound is None else "")
        )
        accs[vs.endpoint] = a

    records: list[ServiceRecord] = []
    for a in accs.values():
        main = a.main or (a.vss[0] if a.vss else None)
        rec = ServiceRecord(
            name=a.name, protocol=a.protocol, port=a.port, cluster_ip=a.cluster_ip, node_port=a.node_port,
            external_ips=a.external_ips, load_balancer_ips=a.lb_ips, mode="ipvs",
        )
        if a.api is not None:
            rec.namespace, rec.service, rec.port_name = a.api.namespace, a.api.service, a.api.port_name
            if a.api.etp and (a.node_port or a.external_ips or a.lb_ips):
                rec.external_traffic_policy = a.api.etp
            rec.internal_traffic_policy = a.api.itp if a.api.itp == "Local" else None
        if main is not None:
            rec.endpoints = _share(main)
            if main.real_servers and any(rs.weight is None for rs in main.real_servers):
                a.warnings.append("weights not in this listing (ipvsadm --stats/--rate): shares unknown")
            rec.no_endpoints = not main.real_servers
            rec.session_affinity = main.persistent is not None
            rec.affinity_timeout_s = main.persistent
            rec.chains["ipvs"] = main.text.split("  ", 1)[0] + "  " + main.endpoint + (f" {main.scheduler}" if main.scheduler else "")
            if main.scheduler:
                rec.chains["scheduler"] = main.scheduler
            if main.persistent is not None:
                rec.chains["persistent"] = str(main.persistent)
        others = [v for v in a.vss if v is not main]
        for v in others:
            if main is not None and _rs_key(v) != _rs_key(main):
                a.warnings.append(f"{v.endpoint} has other real servers than {main.endpoint}")
        nodeport_vs = [v for v in a.vss if a.node_port is not None and v.port == a.node_port and v is not main]
        if nodeport_vs:
            rec.chains["nodeport_ipvs"] = " ".join(v.endpoint for v in nodeport_vs)
        if bound is not None and a.cluster_ip and a.cluster_ip in bound:
            rec.chains["device"] = "kube-ipvs0"
        elif bound is not None and a.cluster_ip:
            a.warnings.append(f"{a.cluster_ip} is not bound to kube-ipvs0")
        if ipset_rules:
            rec.chains["iptables"] = "KUBE-SERVICES (ipset match)"
        rec.evidence = [line for v in a.vss for line in [v.text, *(rs.text for rs in v.real_servers)]]
        rec.warnings = a.warnings
        records.append(rec)
    records.sort(key=lambda r: (r.name, r.protocol, r.port or 0))
    return records, masquerade_from_iptables(node.iptables)


__all__ = ["decode_ipvs", "kube_ipvs0_addresses", "masquerade_from_iptables"]
