"""Analysis: pure functions from a Snapshot to an Analysis (see model.py).

``analyze(snapshot)`` builds one NodeAnalysis per node by calling the analyzers:
components, pods, veth, topology, preflight (this package), ``services.decode_services``
(kube-proxy's rules, any mode), then ``crosscheck.crosscheck`` (API vs node) and
``path.trace_path`` (the traffic path). Every analyzer is a plain import: a missing module
of ours is an ImportError to see, not a part to skip. A failing analyzer becomes a warning
on its node (``_guard``); analysis never crashes because one part fails.
"""

from __future__ import annotations

from typing import Callable, Optional, TypeVar

from labreport.analysis import (components, crosscheck, devices, inconsistencies, observed, overview, path, pods, preflight, services,
                                topology, traffic, veth, workloads)
from labreport.analysis.model import Analysis, NodeAnalysis, Pod
from labreport.perf import gc_paused
from labreport.snapshot import NodeSnapshot, Snapshot

__all__ = ["analyze", "analyze_node"]

T = TypeVar("T")


def _guard(warnings: list[str], what: str, fn: Callable[[], T]) -> Optional[T]:
    try:
        return fn()
    except Exception as exc:  # one analyzer failing must not stop the others
        warnings.append(f"{what}: failed ({type(exc).__name__}: {exc})")
        return None


def _not_collected(node: NodeSnapshot) -> list[str]:
    out: list[str] = []
    if node.status != "ok" and node.error:
        out.append(f"node: {node.status}: {node.error}")
    for st in node.collectors:
        if not st.ok:
            out.append(f"{st.name}: {st.reason or 'not collected'}")
        elif st.partial:
            out.append(f"{st.name}: partial: {st.reason or 'some of its work failed'}")
    for ns in node.netns:
        if ns.error:
            out.append(f"netns {ns.name}: {ns.error}")
    return out


def analyze_node(node: NodeSnapshot, snapshot: Optional[Snapshot] = None, *,
                 with_services: bool = False) -> NodeAnalysis:
    """Everything this package derives for one node (kube-proxy's services only when
    ``with_services``: ``analyze`` asks for them, the node-only benchmarks do not)."""
    na = NodeAnalysis(node=node.name, status=node.status, error=node.error)
    na.not_collected = _not_collected(node)
    w = na.warnings
    cluster = snapshot.cluster if snapshot is not None else None

    comps = _guard(w, "components", lambda: components.find_components(node))
    if comps is not None:
        na.components = comps
        na.not_in_containers = components.not_in_containers(comps)
    vw: list[str] = []
    pairs = _guard(w, "veth", lambda: veth.match_veths(node, warnings=vw))
    w.extend(vw)
    if pairs is not None:
        na.veth_pairs = pairs
    pod_list = _guard(w, "pods", lambda: pods.group_pods(node, veths=na.veth_pairs))
    if pod_list is not None:
        na.pods = pod_list
        _name_veth_pods(na)
    topo = _guard(w, "topology", lambda: topology.describe(node))
    if topo is not None:
        na.bridges, na.overlays, na.uplink = topo
    _guard(w, "devices", lambda: devices.describe_node(node, na))
    if node.status != "failed":  # a failed node has nothing to check: not_collected says why
        checks = _guard(w, "preflight", lambda: preflight.checks(node, cluster))
        if checks is not None:
            na.preflight = checks

    if with_services:
        res = _guard(w, "services", lambda: services.decode_services(node, cluster))
        if res is not None:
            mode, svcs, masq = res
            na.proxy_mode = mode
            na.services = list(svcs)
            na.masquerade = masq
    return na


def _name_veth_pods(na: NodeAnalysis) -> None:
    """Pods whose netns a veth reaches name that veth's pod (and the other way)."""
    by_netns = {p.netns: p for p in na.pods if p.netns}
    # a pasted pod `ip addr` is imported under the pod's own name (`--pod-ip-addr testpod=F`):
    # such a namespace belongs to the one pod of that name whose netns is otherwise unknown
    by_name: dict[str, list[Pod]] = {}
    for p in na.pods:
        if not p.netns:
            by_name.setdefault(p.name, []).append(p)
            if p.namespace:
                by_name.setdefault(p.key, []).append(p)
    for v in na.veth_pairs:
        pod = by_netns.get(v.netns)
        if pod is None:
            cands = by_name.get(v.netns, [])
            if len(cands) != 1:
                continue
            pod = cands[0]
            pod.netns = v.netns
            by_netns[v.netns] = pod
        if v.pod is None:
            v.pod = pod.key
        if pod.ip is None and v.pod_ips:
            pod.ip = v.pod_ips[0].split("/", 1)[0]


def _fill_endpoint_pods(analysis: Analysis) -> None:
    """Name the pod behind each service endpoint whose IP is a known pod IP."""
    pod_by_ip: dict[str, str] = {}
    for na in analysis.nodes:
        for p in na.pods:
            if p.ip:
                pod_by_ip.setdefault(p.ip, p.key)
        for v in na.veth_pairs:
            if v.pod:
                for ip in v.pod_ips:
                    pod_by_ip.setdefault(ip.split("/", 1)[0], v.pod)
    if not pod_by_ip:
        return
    for na in analysis.nodes:
        for s in na.services:
            for ep in s.endpoints or ():
                if ep.pod is None:
                    ip = ep.address.rsplit(":", 1)[0].strip("[]")
                    ep.pod = pod_by_ip.get(ip)


def analyze(snapshot: Snapshot, *, service: Optional[str] = None, from_node: Optional[str] = None) -> Analysis:
    """Analyze every node of the snapshot; never raises for a bad or partial snapshot."""
    with gc_paused():  # ~10^5 short-lived acyclic records; see labreport.perf
        return _analyze(snapshot, service=service, from_node=from_node)


def _analyze(snapshot: Snapshot, *, service: Optional[str], from_node: Optional[str]) -> Analysis:
    analysis = Analysis()
    for node in snapshot.nodes:
        analysis.nodes.append(analyze_node(node, snapshot, with_services=True))
    _guard(analysis.warnings, "endpoint pods", lambda: _fill_endpoint_pods(analysis))

    mism = _guard(analysis.warnings, "crosscheck", lambda: crosscheck.crosscheck(snapshot, analysis))
    if mism is not None:
        analysis.mismatches = list(mism)

    from labreport.analysis.trace.world import shared_world

    # path, traffic and observed trace through one datapath model of the snapshot: none of
    # them changes what it is built from (inconsistencies, after them, drops contradicted pairs)
    with shared_world(snapshot, analysis):
        _traced(snapshot, analysis, service=service, from_node=from_node)
    found = _guard(analysis.warnings, "inconsistencies", lambda: inconsistencies.find(snapshot, analysis))
    if found is not None:
        analysis.inconsistencies = found
    items = _guard(analysis.warnings, "unread", lambda: inconsistencies.unread(snapshot))
    if items is not None:
        analysis.unread = items
    return analysis


def _traced(snapshot: Snapshot, analysis: Analysis, *, service: Optional[str], from_node: Optional[str]) -> None:
    """The parts that trace packets (path, traffic, observed connections) and the views between them."""
    tp = _guard(analysis.warnings, "path",
                lambda: path.trace_path(snapshot, analysis, service=service, from_node=from_node))
    if tp is not None:
        analysis.path = tp
    got = _guard(analysis.warnings, "traffic", lambda: traffic.service_traffic(snapshot, analysis))
    if got is not None:
        analysis.traffic, analysis.traffic_note = got
    views = _guard(analysis.warnings, "workloads", lambda: workloads.workload_views(snapshot, analysis))
    if views is not None:
        analysis.workloads = views
    ov = _guard(analysis.warnings, "overview", lambda: overview.summarize(snapshot, analysis))
    if ov is not None:
        analysis.overview = ov
    obs = _guard(analysis.warnings, "observed connections",
                 lambda: observed.observed_vs_predicted(snapshot, analysis))
    if obs is not None:
        analysis.observed, notes = obs
        analysis.warnings.extend(notes)
