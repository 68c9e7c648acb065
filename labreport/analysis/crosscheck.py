"""What the Kubernetes API says against what the nodes show.

``crosscheck(snapshot, analysis) -> list[Mismatch]`` compares, for every collected node
(status ok/partial):

- nodes: every API Node was collected (``node-not-collected``, with the collection error
  when it failed) and every collected node is an API Node (``node-not-in-api``);
- pods (on nodes whose pod namespaces were looked at): every running, non-hostNetwork API
  pod scheduled on the node has its IP on one of the node's veth pairs (``pod-ip-missing``; ``pod-on-other-node`` when another collected
  node carries it), and every pod IP on the node's veths belongs to some API pod
  (``pod-ip-unknown``: a leftover sandbox or a pod the API has forgotten);
- services: every API Service port with a cluster IP is programmed on the node
  (``service-missing`` — ServiceRecord matched by cluster IP + port + protocol, else by
  ``namespace/name`` + port), with its NodePort when it has one (``nodeport-missing``),
  and every service the node's rules carry exists in the API (``service-stale``);
- endpoints: the ready endpoints of the Service's EndpointSlices (Endpoints when there are
  no slices) against the rule's endpoints (``endpoint-missing``: in the API, not in the
  rules; ``endpoint-stale``: in the rules, not in the API).

Nothing is compared without API objects (no cluster, or ``cluster.error``). Objects a
user pasted (``ClusterObjects.source == "import"``) are not complete lists, so nothing is
reported for being absent from them (stale services, unknown pod IPs, nodes). Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from labreport.analysis.model import Analysis, Mismatch, NodeAnalysis, ServiceRecord
from labreport.snapshot import ClusterObjects, NodeSnapshot, Snapshot


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _key(obj: dict[str, Any]) -> str:
    m = _meta(obj)
    return f"{m.get('namespace')}/{m.get('name')}" if m.get("namespace") else str(m.get("name"))


def _ip(addr: str) -> str:
    return addr.split("/", 1)[0]


def _collected(snapshot: Snapshot, analysis: Analysis) -> dict[str, NodeAnalysis]:
    out: dict[str, NodeAnalysis] = {}
    for node in snapshot.nodes:
        if node.status == "failed":
            continue
        na = analysis.node(node.name)
        if na is not None:
            out[node.name] = na
    return out


# --------------------------------------------------------------------------- nodes


def _check_nodes(snapshot: Snapshot, cluster: ClusterObjects) -> list[Mismatch]:
    out: list[Mismatch] = []
    api_nodes = [str(_meta(n).get("name")) for n in cluster.nodes]
    by_name = {n.name: n for n in snapshot.nodes}
    for name in api_nodes:
        snap = by_name.get(name)
        if snap is None:
            out.append(Mismatch(kind="node-not-collected", node=name, subject=name,
                                detail=f"node {name} is in the API but was not collected"))
        elif snap.status == "failed":
            out.append(Mismatch(kind="node-not-collected", node=name, subject=name,
                                detail=f"node {name} is in the API but its collection failed: {snap.error}"))
    if api_nodes:
        for n in snapshot.nodes:
            if n.name not in api_nodes and n.status != "failed":
                out.append(Mismatch(kind="node-not-in-api", node=n.name, subject=n.name,
                                    detail=f"node {n.name} was collected but the API has no Node named so "
                                           f"(API nodes: {', '.join(api_nodes)})"))
    return out


# --------------------------------------------------------------------------- pods


def _pod_ips(pod: dict[str, Any]) -> list[str]:
    st = pod.get("status") or {}
    ips = [p.get("ip") for p in st.get("podIPs") or [] if p.get("ip")]
    if not ips and st.get("podIP"):
        ips = [st["podIP"]]
    return ips


def _network_seen(node: NodeSnapshot) -> bool:
    """Whether the node's pod namespaces were looked at: a live netlink collection that ran,
    or pod namespaces in the input (an import of `docker ps` alone says nothing of veths)."""
    if any(ns.kind != "node" for ns in node.netns):
        return True
    return any(st.name == "netlink" and st.ok for st in node.collectors)


def _check_pods(snapshot: Snapshot, cluster: ClusterObjects, nodes: dict[str, NodeAnalysis],
                complete: bool = True) -> list[Mismatch]:
    out: list[Mismatch] = []
    seen = {name for name in nodes if (n := snapshot.node(name)) is not None and _network_seen(n)}
    veth_ips: dict[str, dict[str, str]] = {
        name: {_ip(ip): vp.host_ifname for vp in na.veth_pairs for ip in vp.pod_ips} for name, na in nodes.items()
    }
    api_ips: set[str] = set()
    for pod in cluster.pods:
        spec, st = pod.get("spec") or {}, pod.get("status") or {}
        ips = _pod_ips(pod)
        if spec.get("hostNetwork"):
            continue
        api_ips.update(ips)
        node = spec.get("nodeName")
        if node not in seen or st.get("phase") not in (None, "Running") or not ips:
            continue
        for ip in ips:
            if ip in veth_ips[node]:
                continue
            elsewhere = [n for n, m in veth_ips.items() if ip in m and n != node]
            if elsewhere:
                out.append(Mismatch(kind="pod-on-other-node", node=node, subject=_key(pod),
                                    detail=f"the API puts pod {_key(pod)} ({ip}) on {node}, but {ip} is on a veth "
                                           f"of {', '.join(elsewhere)}"))
            else:
                out.append(Mismatch(kind="pod-ip-missing", node=node, subject=_key(pod),
                                    detail=f"the API puts pod {_key(pod)} ({ip}) on {node}, but no veth pair on {node} "
                                           "carries that IP"))
    if cluster.pods and complete:
        for name, ipmap in veth_ips.items():
            for ip, host_if in sorted(ipmap.items()):
                if ip not in api_ips:
                    out.append(Mismatch(kind="pod-ip-unknown", node=name, subject=ip,
                                        detail=f"{ip} behind {host_if} on {name} belongs to no pod in the API "
                                               "(a leftover sandbox, or a pod the API does not know)"))
    return out


# --------------------------------------------------------------------------- services


def _service_ports(svc: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return []
    cip = spec.get("clusterIP")
    if not cip or cip == "None":
        return []
    return [(cip, p) for p in spec.get("ports") or []]


def _record_matches(rec: ServiceRecord, ns: str, name: str, cip: str, port: dict[str, Any]) -> bool:
    proto = str(port.get("protocol") or "TCP").lower()
    if (rec.protocol or "tcp").lower() != proto:
        return False
    if rec.cluster_ip and rec.port is not None:
        return rec.cluster_ip == cip and rec.port == port.get("port")
    svc_name = rec.name.split(":", 1)[0]
    return svc_name == f"{ns}/{name}" and (rec.port is None or rec.port == port.get("port")) and \
        (rec.port_name or "") == (port.get("name") or "")


def _api_endpoints(cluster: ClusterObjects, ns: str, name: str, port: dict[str, Any]) -> Optional[set[str]]:
    """Ready ip:port pairs for one service port; None when the API has no endpoint object."""
    pname = port.get("name") or ""
    proto = port.get("protocol") or "TCP"
    slices = [s for s in cluster.endpointslices
              if _meta(s).get("namespace") == ns
              and (_meta(s).get("labels") or {}).get("kubernetes.io/service-name") == name]
    if slices:
        out: set[str] = set()
        for s in slices:
            if s.get("addressType") not in (None, "IPv4", "IPv6"):
                continue
            nums = [p.get("port") for p in s.get("ports") or []
                    if (p.get("name") or "") == pname and (p.get("protocol") or "TCP") == proto and p.get("port")]
            for ep in s.get("endpoints") or []:
                cond = ep.get("conditions") or {}
                if cond.get("ready") is False:
                    continue
                for addr in ep.get("addresses") or []:
                    out.update(f"{addr}:{n}" for n in nums)
        return out
    eps = [e for e in cluster.endpoints if _meta(e).get("namespace") == ns and _meta(e).get("name") == name]
    if not eps:
        return None
    out = set()
    for e in eps:
        for sub in e.get("subsets") or []:
            nums = [p.get("port") for p in sub.get("ports") or []
                    if (p.get("name") or "") == pname and (p.get("protocol") or "TCP") == proto]
            for a in sub.get("addresses") or []:
                out.update(f"{a.get('ip')}:{n}" for n in nums)
    return out


def _check_services(cluster: ClusterObjects, nodes: dict[str, NodeAnalysis], complete: bool = True) -> list[Mismatch]:
    out: list[Mismatch] = []
    api_names = {f"{_meta(s).get('namespace') or 'default'}/{_meta(s).get('name')}" for s in cluster.services}
    for node_name, na in nodes.items():
        if not na.services and na.proxy_mode.mode in ("unknown", "none"):
            continue  # no rules collected on this node: nothing to compare
        matched: set[int] = set()
        for svc in cluster.services:
            ns, name = _meta(svc).get("namespace") or "default", _meta(svc).get("name") or ""
            for cip, port in _service_ports(svc):
                label = f"{ns}/{name}" + (f":{port['name']}" if port.get("name") else "")
                where = f"{cip}:{port.get('port')}/{port.get('protocol') or 'TCP'}"
                recs = [i for i, r in enumerate(na.services) if _record_matches(r, ns, name, cip, port)]
                if not recs:
                    out.append(Mismatch(kind="service-missing", node=node_name, subject=label,
                                        detail=f"Service {label} ({where}) is in the API but {node_name}'s "
                                               f"{na.proxy_mode.mode} rules do not carry it"))
                    continue
                matched.update(recs)
                want_np = port.get("nodePort")
                if want_np and not any(na.services[i].node_port == want_np for i in recs):
                    have = sorted({np for i in recs if (np := na.services[i].node_port)})
                    out.append(Mismatch(kind="nodeport-missing", node=node_name, subject=label,
                                        detail=f"Service {label} has NodePort {want_np} in the API but {node_name}'s rules "
                                               + (f"use {', '.join(map(str, have))}" if have else "open no NodePort for it")))
                api_eps = _api_endpoints(cluster, ns, name, port)
                for i in recs:
                    rec = na.services[i]
                    if api_eps is None or rec.endpoints is None and not rec.no_endpoints:
                        continue
                    rule_eps = {e.address for e in rec.endpoints or []}
                    for addr in sorted(api_eps - rule_eps):
                        out.append(Mismatch(kind="endpoint-missing", node=node_name, subject=label,
                                            detail=f"endpoint {addr} of {label} is ready in the API but not in "
                                                   f"{node_name}'s rules"))
                    for addr in sorted(rule_eps - api_eps):
                        out.append(Mismatch(kind="endpoint-stale", node=node_name, subject=label,
                                            detail=f"{node_name}'s rules send {label} to {addr}, which is not a ready "
                                                   "endpoint in the API (a stale rule)"))
        if cluster.services and complete:
            for i, rec in enumerate(na.services):
                if i in matched:
                    continue
                svc_name = f"{rec.namespace}/{rec.service}" if rec.namespace and rec.service else rec.name.split(":", 1)[0]
                if svc_name in api_names and not any(_service_ports(s) for s in cluster.services
                                                     if f"{_meta(s).get('namespace') or 'default'}/{_meta(s).get('name')}" == svc_name):
                    continue  # the API object has no cluster IP to compare with (a manifest without status)
                where = f"{rec.cluster_ip}:{rec.port}/{rec.protocol}" if rec.cluster_ip else rec.name
                out.append(Mismatch(kind="service-stale", node=node_name, subject=rec.name,
                                    detail=f"{node_name}'s rules carry {rec.name} ({where}), which matches no Service "
                                           "in the API (a stale rule)"))
    return out


def crosscheck(snapshot: Snapshot, analysis: Analysis) -> list[Mismatch]:
    """Disagreements between the API objects and the collected nodes (see the module
    docstring); [] when there are no API objects to compare with."""
    cluster = snapshot.cluster
    if cluster is None or cluster.error:
        return []
    nodes = _collected(snapshot, analysis)
    # Objects a user pasted (`labreport import --kubectl`) are a few manifests, not the
    # cluster's complete lists: what they lack proves nothing, so only what they hold is
    # checked (an API Service's ports and endpoints, an API pod's IP).
    complete = cluster.source == "api"
    out = _check_nodes(snapshot, cluster) if complete else []
    return out + _check_pods(snapshot, cluster, nodes, complete) + _check_services(cluster, nodes, complete)
