"""The cluster overview the report opens with (#13): per node its role, status, pod and
container counts, CNI, proxy mode and what failed; totals for the cluster. Pure: no I/O."""

from __future__ import annotations

from typing import Any

from labreport.analysis.model import Analysis, ClusterOverview, NodeAnalysis, NodeSummary
from labreport.snapshot import NodeSnapshot, Snapshot

# overlay/bridge names and types that identify a CNI plugin
_CNI_BY_NAME = (("flannel", "flannel"), ("cni0", "bridge"), ("weave", "weave"), ("vxlan.calico", "calico"),
                ("tunl0", "calico"), ("cali", "calico"), ("cilium", "cilium"), ("kube-bridge", "kube-router"))


def _get(o: Any, key: str) -> Any:
    return o.get(key) if isinstance(o, dict) else getattr(o, key, None)


def cni_of(node: NodeSnapshot, na: NodeAnalysis) -> list[str]:
    found: list[str] = []

    def add(x: str) -> None:
        if x and x not in found:
            found.append(x)

    for o in na.overlays:
        typ = str(_get(o, "type") or "")
        name = str(_get(o, "name") or "")
        if typ in ("flannel", "weave", "calico", "cilium"):
            add(typ)
        for prefix, cni in _CNI_BY_NAME:
            if name.startswith(prefix) and cni != "bridge":
                add(cni)
    for c in na.components:
        for cni in ("flannel", "calico", "cilium", "weave"):
            if cni in c.name:
                add(cni)
    for p in na.pods:
        for cni in ("flannel", "calico", "cilium", "weave"):
            if cni in (p.name or ""):
                add(cni)
    if not found and node.info.cni_config:
        add(str(node.info.cni_config).rsplit("/", 1)[-1])
    if not found and "cni0" in na.bridges:
        add("bridge")
    return found


def summarize(snapshot: Snapshot, analysis: Analysis) -> ClusterOverview:
    by_name = {na.node: na for na in analysis.nodes}
    ov = ClusterOverview()
    for node in snapshot.nodes:
        na = by_name.get(node.name)
        if na is None:
            continue
        failures = ([f"{st.name}" + (" (partial)" if st.ok else "") for st in node.collectors if not st.ok or st.partial]
                    + [w.split(":", 1)[0] for w in na.warnings if ": failed" in w])
        row = NodeSummary(name=node.name, control_plane=na.control_plane, status=node.status, source=node.source,
                          pods=len(na.pods), containers=sum(len(p.containers) for p in na.pods),
                          veths=len(na.veth_pairs), services=len(na.services), cni=cni_of(node, na),
                          proxy_mode=na.proxy_mode.mode, failures=failures)
        ov.nodes.append(row)
        ov.pods += row.pods
        ov.containers += row.containers
        for c in row.cni:
            if c not in ov.cni:
                ov.cni.append(c)
        if row.proxy_mode not in ("unknown", "none") and row.proxy_mode not in ov.proxy_modes:
            ov.proxy_modes.append(row.proxy_mode)
        if node.status == "failed":
            ov.failed_nodes.append(node.name)
        elif node.status != "ok":
            ov.partial_nodes.append(node.name)
    return ov
