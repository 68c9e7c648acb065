"""What the templates show: views over the snapshot and its analysis, per section.

``build_context(...)`` returns plain objects the Jinja templates iterate over. Everything
that needs a decision (which evidence lines belong to a section, which objects are the
user's, what a volume type means for replicas) is decided here, in Python and testable;
the templates only lay it out and translate.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Optional

import yaml

from labreport.analysis.model import Analysis, NodeAnalysis, ServiceRecord, TrafficPath
from labreport.snapshot import Evidence, NodeSnapshot, Snapshot

SYSTEM_NAMESPACES = {"kube-system", "kube-flannel", "kube-public", "kube-node-lease", "calico-system",
                     "tigera-operator", "calico-apiserver"}
APPENDIX_MAX_LINES = 20000  # one evidence block in the appendix; the rest stays in snapshot.json
EXCERPT_MAX_LINES = 60


# --------------------------------------------------------------------------- evidence


@dataclass
class Excerpt:
    """A trimmed view of one evidence record (the full one is in the appendix)."""

    id: str
    command: str
    text: str
    shown: int
    total: int
    origin: str = "live"

    @property
    def trimmed(self) -> bool:
        return self.shown < self.total


def find_evidence(node: NodeSnapshot, *prefixes: str) -> list[Evidence]:
    out: list[Evidence] = []
    for p in prefixes:
        for ev in node.evidence:
            if (ev.id == p or ev.id.startswith(p + ":") or ev.id.startswith(p + "-")) and ev not in out:
                out.append(ev)
    return out


def excerpt(ev: Evidence, keep: Optional[Any] = None, *, header: int = 0, max_lines: int = EXCERPT_MAX_LINES,
            ) -> Excerpt:
    """Lines of ``ev.stdout`` for which ``keep(line)`` is true (all when None), plus the
    first ``header`` lines, at most ``max_lines``."""
    lines = (ev.stdout or "").splitlines()
    if keep is None:
        chosen = lines
    else:
        chosen = lines[:header] + [ln for ln in lines[header:] if keep(ln)]
    total = len(lines)
    cut = chosen[:max_lines]
    if len(chosen) > max_lines:
        cut.append(f"… ({len(chosen) - max_lines} more matching lines: see the appendix)")
    text = "\n".join(cut)
    if ev.stderr and not ev.stdout:
        text = ev.stderr.strip()
    return Excerpt(ev.id, ev.command, text, len(cut), total, ev.origin)


# --------------------------------------------------------------------------- per node


@dataclass
class NodeView:
    name: str
    snap: NodeSnapshot
    na: NodeAnalysis
    is_control_plane: bool
    not_collected: list[str] = field(default_factory=list)
    ps: Optional[Excerpt] = None
    containers_ev: list[Excerpt] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    routes: list[dict[str, Any]] = field(default_factory=list)
    addr_ev: list[Excerpt] = field(default_factory=list)
    user_services: list[ServiceRecord] = field(default_factory=list)
    system_services: list[ServiceRecord] = field(default_factory=list)
    rule_counts: dict[str, int] = field(default_factory=dict)
    info_rows: list[tuple[str, str]] = field(default_factory=list)
    env_ev: list[Excerpt] = field(default_factory=list)

    @property
    def role_key(self) -> str:
        return "control_plane" if self.is_control_plane else "worker"


def _is_system_service(rec: ServiceRecord) -> bool:
    ns = rec.namespace or rec.name.split("/", 1)[0]
    svc = rec.service or rec.name.split("/", 1)[-1].split(":")[0]
    return ns in SYSTEM_NAMESPACES or (ns == "default" and svc == "kubernetes")


def _ps_excerpt(node: NodeSnapshot, na: NodeAnalysis) -> Optional[Excerpt]:
    evs = find_evidence(node, "ps")
    if not evs:
        return None
    pids = {str(c.pid) for c in na.components if c.pid}
    pid_re = re.compile(r"^\s*\S+\s+(\d+)\s")

    state = {"last": False}

    def keep(line: str) -> bool:
        m = pid_re.match(line)
        if m:
            state["last"] = m.group(1) in pids
        elif line.strip() and not line.lstrip().startswith(("USER", "UID")):
            pass  # a continuation of a wrapped command line (pasted from a PDF): goes with its row
        else:
            state["last"] = False
        return state["last"]

    first = (evs[0].stdout or "").lstrip().splitlines()[:1]
    header = 1 if first and first[0].lstrip().startswith("USER") else 0
    return excerpt(evs[0], keep, header=header)


def _devices(node: NodeSnapshot, na: NodeAnalysis) -> list[dict[str, Any]]:
    ns = node.node_netns()
    if ns is None:
        return []
    overlay = {o.name: o for o in na.overlays}
    veth_hosts = {vp.host_ifname: vp for vp in na.veth_pairs}
    out = []
    for link in ns.links:
        kind = link.kind
        role = ""
        if link.name == "lo":
            role = "loopback"
        elif na.uplink and link.name == na.uplink.name:
            role = "uplink"
        elif link.name in overlay:
            role = "overlay"
        elif link.name in na.bridges or kind == "bridge":
            role = "bridge"
        elif link.name in veth_hosts or kind == "veth" or (link.peer_ifindex is not None and link.master):
            role = "veth"
        elif link.name == "kube-ipvs0":
            role = "ipvs"
        elif link.name.startswith("docker"):
            role = "bridge"
        peer = ""
        if link.name in veth_hosts:
            vp = veth_hosts[link.name]
            peer = f"{vp.pod_ifname}@{vp.netns}" + (f" ({vp.pod})" if vp.pod else "")
        elif link.peer_ifindex is not None:
            peer = f"if{link.peer_ifindex}" + (f" ({link.link_netns})" if link.link_netns else "")
        out.append({
            "name": link.name + (f"@if{link.peer_ifindex}" if link.peer_ifindex is not None else ""),
            "kind": kind or ("veth" if role == "veth" else ""),
            "role": role,
            "master": link.master or "",
            "addresses": [f"{a.local}/{a.prefixlen}" for a in link.addresses],
            "state": link.state or "",
            "mac": link.mac or "",
            "mtu": link.mtu,
            "peer": peer,
        })
    return out


def _routes(node: NodeSnapshot) -> list[dict[str, Any]]:
    ns = node.node_netns()
    if ns is None:
        return []
    out = []
    for r in ns.routes:
        if r.family != "inet" or r.table not in (None, "main", "254") or r.type in ("local", "broadcast"):
            continue
        out.append({"dst": r.dst, "via": r.gateway or "", "dev": r.dev or "", "proto": r.protocol or "",
                    "scope": r.scope or "", "onlink": r.onlink})
    return out


def _rule_counts(node: NodeSnapshot) -> dict[str, int]:
    c: dict[str, int] = {}
    ipt = node.iptables
    if ipt is not None:
        nat = ipt.tables.get("nat")
        if nat is not None:
            c["nat_rules"] = sum(len(ch.rules) for ch in nat.chains.values())
            c["svc_chains"] = sum(1 for n in nat.chains if n.startswith("KUBE-SVC-"))
            c["sep_chains"] = sum(1 for n in nat.chains if n.startswith("KUBE-SEP-"))
            c["services_rules"] = len(nat.chains["KUBE-SERVICES"].rules) if "KUBE-SERVICES" in nat.chains else 0
            c["nodeports_rules"] = len(nat.chains["KUBE-NODEPORTS"].rules) if "KUBE-NODEPORTS" in nat.chains else 0
    if node.nftables is not None:
        chains = 0
        for t in node.nftables.tables:
            chains += len(t.chains)
        c["nft_chains"] = chains
    if node.ipvs is not None:
        c["ipvs_services"] = len(node.ipvs.virtual_servers)
    return c


def _info_rows(node: NodeSnapshot) -> list[tuple[str, str]]:
    i = node.info
    rows: list[tuple[str, str]] = []
    for key, val in (("hostname", i.hostname), ("os", i.os), ("kernel", i.kernel), ("arch", i.arch),
                     ("cgroup_version", i.cgroup_version), ("cri_socket", i.cri_socket),
                     ("kube_proxy_mode", i.kube_proxy_mode), ("cni_config", i.cni_config)):
        if val not in (None, ""):
            rows.append((key, str(val)))
    for k, v in sorted(i.versions.items()):
        rows.append((f"version:{k}", v))
    for k, v in sorted(i.cgroup_drivers.items()):
        rows.append((f"cgroup_driver:{k}", v))
    for k, v in sorted(i.sysctls.items()):
        rows.append((f"sysctl:{k}", v))
    if i.modules:
        rows.append(("modules", ", ".join(i.modules)))
    return rows


def node_view(node: NodeSnapshot, na: NodeAnalysis) -> NodeView:
    is_cp = any(c.name in ("kube-apiserver", "etcd", "kube-scheduler") for c in na.components) or any(
        (p.name or "").startswith(("kube-apiserver", "etcd-")) for p in na.pods)
    nv = NodeView(node.name, node, na, is_cp)
    nv.not_collected = list(na.not_collected)
    nv.ps = _ps_excerpt(node, na)
    for ev in find_evidence(node, "crictl-ps", "crictl-pods", "docker-ps", "crictl", "docker"):
        if ev.id.startswith("docker-inspect"):
            continue
        nv.containers_ev.append(excerpt(ev))
    nv.devices = _devices(node, na)
    nv.routes = _routes(node)
    for ev in find_evidence(node, "ip-addr", "ip-link", "ip-route"):
        nv.addr_ev.append(excerpt(ev, max_lines=80))
    for rec in na.services:
        (nv.system_services if _is_system_service(rec) else nv.user_services).append(rec)
    nv.rule_counts = _rule_counts(node)
    nv.info_rows = _info_rows(node)
    for ev in find_evidence(node, "sysctl", "lsmod", "modules", "swap", "uname", "os-release", "version",
                            "crictl-version", "docker-version", "docker-info", "containerd-config", "kubelet-config",
                            "cni-config"):
        nv.env_ev.append(excerpt(ev, max_lines=40))
    return nv


# --------------------------------------------------------------------------- services


def fmt_prob(p: Optional[float]) -> str:
    if p is None:
        return "—"
    s = f"{p:.4f}".rstrip("0").rstrip(".")
    return s or "0"


def fmt_share(p: Optional[float]) -> str:
    if p is None:
        return "?"
    return f"{p * 100:.1f} %"


def service_evidence(rec: ServiceRecord) -> str:
    return "\n".join(rec.evidence)


# --------------------------------------------------------------------------- cluster objects


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _qual(obj: dict[str, Any]) -> str:
    """namespace/name, or just the name when the object names no namespace (an imported file)."""
    m = _meta(obj)
    return f"{m['namespace']}/{m.get('name')}" if m.get("namespace") else str(m.get("name"))


def _is_user(obj: dict[str, Any]) -> bool:
    m = _meta(obj)
    if m.get("namespace") in SYSTEM_NAMESPACES:
        return False
    if m.get("namespace") == "default" and m.get("name") == "kubernetes":
        return False
    return True


def to_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


@dataclass
class ManifestView:
    kind: str
    namespace: Optional[str]
    name: str
    source: str  # last-applied | cleaned
    yaml: str
    fields: list[tuple[str, str, str]]  # (field path, value, explanation key)


def _fields(kind: str, m: dict[str, Any]) -> list[tuple[str, str, str]]:
    spec = m.get("spec") or {}
    out: list[tuple[str, str, str]] = []

    def add(path: str, value: Any, key: str) -> None:
        if value is None or value == [] or value == {}:
            return
        if isinstance(value, (dict, list)):
            value = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10000).strip()
        out.append((path, str(value), key))

    if kind == "Pod":
        pod_fields(spec, "spec", add)
    elif kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        add("spec.replicas", spec.get("replicas", None if kind == "DaemonSet" else "1 (default)"), "replicas")
        add("spec.selector", (spec.get("selector") or {}).get("matchLabels"), "selector")
        tmpl = spec.get("template") or {}
        add("spec.template.metadata.labels", (tmpl.get("metadata") or {}).get("labels"), "template_labels")
        pod_fields(tmpl.get("spec") or {}, "spec.template.spec", add)
    elif kind == "Service":
        add("spec.type", spec.get("type", "ClusterIP"), "service_type")
        add("spec.clusterIP", spec.get("clusterIP"), "cluster_ip")
        add("spec.selector", spec.get("selector"), "service_selector")
        for i, p in enumerate(spec.get("ports") or []):
            desc = f"{p.get('name') or ''} {p.get('port')}/{p.get('protocol', 'TCP')} → {p.get('targetPort', p.get('port'))}"
            if p.get("nodePort"):
                desc += f" (nodePort {p['nodePort']})"
            add(f"spec.ports[{i}]", desc.strip(), "service_port")
        add("spec.sessionAffinity", spec.get("sessionAffinity") if spec.get("sessionAffinity") != "None" else None,
            "session_affinity")
        add("spec.externalTrafficPolicy", spec.get("externalTrafficPolicy"), "external_traffic_policy")
        add("spec.externalName", spec.get("externalName"), "external_name")
    elif kind == "HorizontalPodAutoscaler":
        ref = spec.get("scaleTargetRef") or {}
        add("spec.scaleTargetRef", f"{ref.get('kind')}/{ref.get('name')}", "hpa_target")
        add("spec.minReplicas", spec.get("minReplicas", 1), "hpa_min")
        add("spec.maxReplicas", spec.get("maxReplicas"), "hpa_max")
        add("spec.metrics", spec.get("metrics"), "hpa_metrics")
        add("spec.behavior", spec.get("behavior"), "hpa_behavior")
    return out


def pod_fields(spec: dict[str, Any], prefix: str, add: Any) -> None:
    for i, c in enumerate(spec.get("containers") or []):
        ports = ", ".join(str(p.get("containerPort")) for p in c.get("ports") or [])
        mounts = ", ".join(f"{v.get('name')}→{v.get('mountPath')}" for v in c.get("volumeMounts") or [])
        desc = f"{c.get('name')}: {c.get('image')}"
        if ports:
            desc += f"; ports {ports}"
        if mounts:
            desc += f"; mounts {mounts}"
        add(f"{prefix}.containers[{i}]", desc, "container")
    for i, v in enumerate(spec.get("volumes") or []):
        add(f"{prefix}.volumes[{i}]", f"{v.get('name')}: {volume_type(v)}", "volume")


def manifests(snapshot: Snapshot) -> list[ManifestView]:
    cl = snapshot.cluster
    if cl is None:
        return []
    entries: list[dict[str, Any]] = []
    if cl.manifests:
        entries = [e for e in cl.manifests if e.get("namespace") not in SYSTEM_NAMESPACES]
    else:
        try:
            from labreport.cluster.manifests import manifest_entry
        except ImportError:  # pragma: no cover - the cluster package is part of labreport
            manifest_entry = None  # type: ignore[assignment]
        objs: list[tuple[str, dict[str, Any]]] = []
        for kind, items in (("Pod", cl.pods), ("Deployment", cl.deployments), ("Service", cl.services),
                            ("HorizontalPodAutoscaler", cl.hpas)):
            for o in items:
                if not _is_user(o):
                    continue
                if kind == "Pod" and (_meta(o).get("ownerReferences") or []):
                    continue  # made by a ReplicaSet/DaemonSet, not applied by the user
                objs.append((kind, o))
        for kind, o in objs:
            o = dict(o)
            o.setdefault("kind", kind)
            if manifest_entry is not None:
                entries.append(manifest_entry(o))
            else:
                entries.append({"kind": kind, "namespace": _meta(o).get("namespace"), "name": _meta(o).get("name"),
                                "source": "cleaned", "manifest": o})
    order = {"Pod": 0, "Deployment": 1, "Service": 2, "HorizontalPodAutoscaler": 3}
    entries.sort(key=lambda e: (order.get(str(e.get("kind")), 9), str(e.get("namespace")), str(e.get("name"))))
    out = []
    for e in entries:
        m = e.get("manifest") or {}
        kind = str(e.get("kind") or m.get("kind") or "?")
        if kind not in order:
            continue
        if kind == "Pod" and e.get("source") != "last-applied" and (m.get("metadata") or {}).get("ownerReferences"):
            continue
        source = str(e.get("source") or "cleaned")
        if source == "cleaned" and cl.source == "import":
            source = "file"  # a manifest file the user imported: as written
        out.append(ManifestView(kind, e.get("namespace"), str(e.get("name")), source,
                                to_yaml(m), _fields(kind, m)))
    return out


# --------------------------------------------------------------------------- volumes (Q12)


VOLUME_TYPES = ("hostPath", "emptyDir", "persistentVolumeClaim", "configMap", "secret", "nfs", "projected",
                "downwardAPI", "ephemeral", "csi")


def volume_type(v: dict[str, Any]) -> str:
    for t in VOLUME_TYPES:
        if t in v:
            detail = v[t] or {}
            if t == "hostPath":
                return f"hostPath {detail.get('path', '')}".strip()
            if t == "persistentVolumeClaim":
                return f"persistentVolumeClaim {detail.get('claimName', '')}".strip()
            if t == "configMap":
                return f"configMap {detail.get('name', '')}".strip()
            return t
    other = [k for k in v if k != "name"]
    return other[0] if other else "?"


@dataclass
class VolumeView:
    workload: str  # Deployment default/test-deployment
    replicas: Optional[int]
    nodes: list[str]  # where its pods run
    volume: str
    vtype: str  # hostPath / emptyDir / persistentVolumeClaim / …
    detail: str
    mounts: list[str]
    verdict_key: str  # volumes.verdict.<…>
    access_modes: str = ""
    path: str = ""  # hostPath path / claim name


def volumes(snapshot: Snapshot) -> Optional[list[VolumeView]]:
    cl = snapshot.cluster
    if cl is None or (not cl.deployments and not cl.pods):
        return None
    out: list[VolumeView] = []
    pvcs = {(_meta(o).get("namespace"), _meta(o).get("name")): o for o in cl.other
            if o.get("kind") == "PersistentVolumeClaim"}

    def pods_of(ns: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        res = []
        for p in cl.pods:
            m = _meta(p)
            labels = m.get("labels") or {}
            if m.get("namespace") == ns and selector and all(labels.get(k) == v for k, v in selector.items()):
                res.append(p)
        return res

    workloads: list[tuple[str, dict[str, Any], dict[str, Any], Optional[int], list[dict[str, Any]]]] = []
    for d in cl.deployments:
        if not _is_user(d):
            continue
        spec = d.get("spec") or {}
        sel = (spec.get("selector") or {}).get("matchLabels") or {}
        workloads.append((f"Deployment {_qual(d)}",
                          d, (spec.get("template") or {}).get("spec") or {},
                          spec.get("replicas", (d.get("status") or {}).get("replicas")),
                          pods_of(_meta(d).get("namespace"), sel)))
    for p in cl.pods:
        if not _is_user(p) or _meta(p).get("ownerReferences"):
            continue
        workloads.append((f"Pod {_qual(p)}", p, p.get("spec") or {}, 1, [p]))
    def nodes_running(kind: str, obj: dict[str, Any]) -> list[str]:
        """Where the workload's pods run, from the nodes' containers (imported manifests have no nodeName)."""
        name = str(_meta(obj).get("name") or "")
        out_nodes = set()
        for n in snapshot.nodes:
            for c in n.containers:
                pn = c.pod_name or ""
                if (kind == "Pod" and pn == name) or (kind == "Deployment" and pn.startswith(name + "-")):
                    out_nodes.add(n.name)
        return sorted(out_nodes)

    for name, obj, pspec, replicas, pods in workloads:
        nodes = sorted({(p.get("spec") or {}).get("nodeName") for p in pods if (p.get("spec") or {}).get("nodeName")})
        if not nodes:
            nodes = nodes_running(name.split(" ", 1)[0], obj)
        for v in pspec.get("volumes") or []:
            vt = next((t for t in VOLUME_TYPES if t in v), "other")
            if vt in ("projected", "secret", "configMap", "downwardAPI") and v.get("name", "").startswith("kube-api-access"):
                continue
            mounts = []
            for c in pspec.get("containers") or []:
                for vm in c.get("volumeMounts") or []:
                    if vm.get("name") == v.get("name"):
                        mounts.append(f"{c.get('name')}:{vm.get('mountPath')}" + (" (ro)" if vm.get("readOnly") else ""))
            access = ""
            if vt == "persistentVolumeClaim":
                pvc = pvcs.get((_meta(obj).get("namespace"), (v.get(vt) or {}).get("claimName")))
                if pvc is not None:
                    access = ",".join((pvc.get("spec") or {}).get("accessModes") or [])
            multi = (replicas or 1) > 1
            if vt == "hostPath":
                if not multi:
                    verdict = "hostpath_single"
                elif not nodes:
                    verdict = "hostpath_nodes_unknown"
                else:
                    verdict = "hostpath_multi_node" if len(nodes) > 1 else "hostpath_shared"
            elif vt == "emptyDir":
                verdict = "emptydir_multi" if multi else "emptydir_single"
            elif vt == "persistentVolumeClaim":
                verdict = "pvc_rwx" if "ReadWriteMany" in access else ("pvc_rwo_multi" if multi else "pvc_single")
            elif vt in ("configMap", "secret", "projected", "downwardAPI"):
                verdict = "readonly_config"
            else:
                verdict = "other"
            out.append(VolumeView(name, replicas, nodes, str(v.get("name")), vt, volume_type(v), mounts, verdict,
                                  access, path=str(((v.get(vt) or {}) if isinstance(v.get(vt), dict) else {}).get(
                                      "path") or (v.get(vt) or {}).get("claimName", "") if isinstance(v.get(vt), dict) else "")))
    return out


# --------------------------------------------------------------------------- HPA


@dataclass
class HpaView:
    name: str
    target: str
    min_replicas: Any
    max_replicas: Any
    metrics: list[str]
    scale_down: list[str]
    scale_up: list[str]
    stabilization_down: Optional[int]
    current_replicas: Any
    desired_replicas: Any
    current_metrics: list[str]
    conditions: list[tuple[str, str, str]]
    yaml: str


def _metric_desc(m: dict[str, Any]) -> str:
    t = m.get("type")
    r = m.get("resource") or m.get("containerResource") or {}
    target = r.get("target") or m.get("target") or {}
    current = r.get("current") or {}
    name = r.get("name") or (m.get("pods") or {}).get("metric", {}).get("name") or t
    if target:
        if target.get("type") == "Utilization":
            return f"{name}: averageUtilization {target.get('averageUtilization')} %"
        return f"{name}: {target.get('type')} {target.get('averageValue') or target.get('value')}"
    if current:
        if "averageUtilization" in current:
            return f"{name}: {current.get('averageUtilization')} % (averageValue {current.get('averageValue', '?')})"
        return f"{name}: {current.get('averageValue') or current.get('value')}"
    return str(name)


def _policies(rules: dict[str, Any]) -> list[str]:
    out = []
    for p in rules.get("policies") or []:
        unit = "%" if p.get("type") == "Percent" else " pods"
        out.append(f"{p.get('type')}: {p.get('value')}{unit} / {p.get('periodSeconds')} s")
    if rules.get("selectPolicy"):
        out.append(f"selectPolicy: {rules['selectPolicy']}")
    return out


def hpas(snapshot: Snapshot) -> Optional[list[HpaView]]:
    cl = snapshot.cluster
    if cl is None:
        return None
    out = []
    for h in cl.hpas:
        spec = h.get("spec") or {}
        st = h.get("status") or {}
        beh = spec.get("behavior") or {}
        ref = spec.get("scaleTargetRef") or {}
        conds = [(c.get("type", ""), c.get("status", ""), c.get("message") or c.get("reason") or "")
                 for c in st.get("conditions") or []]
        down = beh.get("scaleDown") or {}
        try:
            from labreport.cluster.manifests import applied_manifest
            manifest = applied_manifest(h)
        except ImportError:  # pragma: no cover
            manifest = h
        out.append(HpaView(
            name=_qual(h),
            target=f"{ref.get('kind')}/{ref.get('name')}",
            min_replicas=spec.get("minReplicas", 1), max_replicas=spec.get("maxReplicas"),
            metrics=[_metric_desc(m) for m in spec.get("metrics") or []],
            scale_down=_policies(down), scale_up=_policies(beh.get("scaleUp") or {}),
            stabilization_down=down.get("stabilizationWindowSeconds"),
            current_replicas=st.get("currentReplicas"), desired_replicas=st.get("desiredReplicas"),
            current_metrics=[_metric_desc(m) for m in st.get("currentMetrics") or []],
            conditions=conds, yaml=to_yaml(manifest)))
    return out


# --------------------------------------------------------------------------- Q5 diff


@dataclass
class NewContainer:
    node: str
    id: str
    name: str
    short_name: str  # the container's name in the pod spec (docker: <name> of k8s_<name>_…)
    image: str
    pod: str
    is_sandbox: bool
    network_mode: str
    shares_sandbox_netns: Optional[bool]
    netns: str


def new_containers(before: Snapshot, after: Snapshot) -> tuple[list[NewContainer], list[str], dict[str, Any]]:
    """The containers present after but not before, per node (from ``labreport.diff``),
    with how each one shares the sandbox's network namespace."""
    from labreport.diff import diff_snapshots

    d = diff_snapshots(before, after)
    out: list[NewContainer] = []
    notes: list[str] = []
    for node_name, nd in (d.get("nodes") or {}).items():
        notes.extend(f"{node_name}: {n}" for n in nd.get("notes") or [])
        if nd.get("status", "compared") != "compared":
            continue  # only in one snapshot: nothing to compare it with
        node = after.node(node_name)
        added = (nd.get("containers") or {}).get("added") or []
        by_id = {c.id: c for c in (node.containers if node else [])}
        sandbox_ids = {c.id for c in (node.containers if node else []) if c.is_sandbox}
        for item in added:
            cid = str(item.get("id", ""))
            c = by_id.get(cid) or next((x for x in by_id.values() if x.id.startswith(cid) or cid.startswith(x.id)), None)
            nm = (c.network_mode if c else item.get("network_mode")) or ""
            shares: Optional[bool] = None
            if c is not None and not c.is_sandbox:
                if nm.startswith("container:"):
                    target = nm.split(":", 1)[1]
                    shares = any(s.startswith(target) or target.startswith(s) for s in sandbox_ids)
                elif c.sandbox_id:
                    shares = True
            pod = item.get("pod") or (f"{c.pod_namespace}/{c.pod_name}" if c and c.pod_name else "")
            short = item.get("container_name") or _short_name(str(item.get("name") or (c.name if c else "")))
            out.append(NewContainer(node_name, cid[:13], str(item.get("name") or (c.name if c else "")), str(short),
                                    str(item.get("image") or (c.image if c else "") or ""), str(pod or ""),
                                    bool(item.get("is_sandbox") or (c.is_sandbox if c else False)), nm, shares,
                                    (c.netns_path if c else "") or ""))
    out.sort(key=lambda c: (c.node, c.pod, not c.is_sandbox, c.short_name))
    return out, notes, d


def _short_name(name: str) -> str:
    try:
        from labreport.analysis.components import container_short_name
        return container_short_name(name)
    except ImportError:  # pragma: no cover
        return name


def unlisted_sandboxes(newc: list[NewContainer], after: Snapshot) -> list[tuple[str, str, str]]:
    """(node, pod, sandbox id) of new pods whose sandbox is not among the new containers
    (``crictl ps`` lists containers only; the sandbox is there, in ``crictl pods``)."""
    out: list[tuple[str, str, str]] = []
    listed = {(c.node, c.pod) for c in newc if c.is_sandbox}
    seen: set[tuple[str, str]] = set()
    for c in newc:
        if c.is_sandbox or (c.node, c.pod) in listed or (c.node, c.pod) in seen:
            continue
        node = after.node(c.node)
        sid = ""
        if node is not None:
            for k in node.containers:
                if k.id.startswith(c.id) and k.sandbox_id:
                    sid = k.sandbox_id
        if sid:
            seen.add((c.node, c.pod))
            out.append((c.node, c.pod, sid))
    return out


# --------------------------------------------------------------------------- the whole report


@dataclass
class ReportContext:
    snapshot: Snapshot
    analysis: Analysis
    nodes: list[NodeView]
    path: Optional[TrafficPath]
    manifests: list[ManifestView]
    volumes: Optional[list[VolumeView]]
    hpas: Optional[list[HpaView]]
    new_containers: Optional[list[NewContainer]]
    diff_notes: list[str]
    unlisted_sandboxes: list[tuple[str, str, str]]
    redacted: Optional[list[str]]  # None: redaction disabled
    cidrs: dict[str, str]
    api_nodes: list[dict[str, str]]
    diagram: dict[str, Any] = field(default_factory=dict)


def _cidrs(nodes: list[NodeView], snapshot: Snapshot) -> dict[str, str]:
    out: dict[str, str] = {}
    for nv in nodes:
        for c in nv.na.components:
            for flag, key in (("--cluster-cidr", "pod_cidr"), ("--service-cluster-ip-range", "service_cidr")):
                v = c.key_flags.get(flag)
                if v and key not in out:
                    out[key] = v
    cl = snapshot.cluster
    if cl is not None:
        for n in cl.nodes:
            pc = (n.get("spec") or {}).get("podCIDR")
            if pc:
                out[f"node_pod_cidr:{_meta(n).get('name')}"] = pc
    return out


def _api_nodes(snapshot: Snapshot) -> list[dict[str, str]]:
    cl = snapshot.cluster
    if cl is None:
        return []
    out = []
    for n in cl.nodes:
        st = n.get("status") or {}
        ready = next((c.get("status") for c in st.get("conditions") or [] if c.get("type") == "Ready"), "?")
        labels = _meta(n).get("labels") or {}
        roles = ",".join(sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))) or "<none>"
        info = st.get("nodeInfo") or {}
        addr = next((a.get("address") for a in st.get("addresses") or [] if a.get("type") == "InternalIP"), "")
        out.append({"name": str(_meta(n).get("name")), "ready": str(ready), "roles": roles,
                    "version": str(info.get("kubeletVersion", "")), "runtime": str(info.get("containerRuntimeVersion", "")),
                    "address": str(addr), "pod_cidr": str((n.get("spec") or {}).get("podCIDR", ""))})
    return out


def build_context(snapshot: Snapshot, analysis: Analysis, *, path: Optional[TrafficPath] = None,
                  before: Optional[Snapshot] = None, redacted: Optional[list[str]] = None) -> ReportContext:
    nodes = []
    for node in snapshot.nodes:
        na = analysis.node(node.name) or NodeAnalysis(node=node.name, status=node.status, error=node.error)
        nodes.append(node_view(node, na))
    newc: Optional[list[NewContainer]] = None
    notes: list[str] = []
    if before is not None:
        newc, notes, _ = new_containers(before, snapshot)
    return ReportContext(
        snapshot=snapshot, analysis=analysis, nodes=nodes, path=path if path is not None else analysis.path,
        manifests=manifests(snapshot), volumes=volumes(snapshot), hpas=hpas(snapshot), new_containers=newc,
        diff_notes=notes, unlisted_sandboxes=unlisted_sandboxes(newc, snapshot) if newc else [], redacted=redacted, cidrs=_cidrs(nodes, snapshot), api_nodes=_api_nodes(snapshot))


def is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False
