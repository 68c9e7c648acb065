"""The cluster's objects as the report shows them: manifests (Q4/Q7/Q10), volumes and what
they mean for replicas (Q12), HPAs (Q13), the API's node list and the cluster's CIDRs.

``workload_views(snapshot, analysis)`` reads ``snapshot.cluster`` (JSON dicts as the API or
an imported file gave them) into typed views. Objects can have any shape (a pasted YAML
whose indentation broke, a hostile file): every field is checked before it is used; a
field of the wrong shape (``ports: 8080``, ``metadata: web``) is left out of the view and
recorded as a :class:`ShapeProblem`, so the report says what it could not read instead of
crashing. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, Optional

from labreport.analysis.model import (Analysis, ApiNode, HpaCondition, HpaView, ManifestField, ManifestView,
                                      ShapeProblem, VolumeUse, WorkloadViews)
from labreport.analysis.namespaces import SYSTEM_NAMESPACES
from labreport.cluster.manifests import applied_manifest, manifest_entry
from labreport.snapshot import Snapshot

VOLUME_TYPES = ("hostPath", "emptyDir", "persistentVolumeClaim", "configMap", "secret", "nfs", "projected",
                "downwardAPI", "ephemeral", "csi")
KIND_ORDER = {"Pod": 0, "Deployment": 1, "Service": 2, "HorizontalPodAutoscaler": 3}


# --------------------------------------------------------------------------- shape checks


def _found(v: Any) -> str:
    s = repr(v)
    return f"{type(v).__name__}: {s[:40]}{'…' if len(s) > 40 else ''}"


class Reader:
    """Typed access to one object's fields; a wrong shape is recorded, never raised."""

    def __init__(self, subject: str, problems: list[ShapeProblem]) -> None:
        self.subject, self.problems = subject, problems

    def _bad(self, where: str, expected: str, v: Any) -> None:
        self.problems.append(ShapeProblem(subject=self.subject, field=where, expected=expected, found=_found(v)))

    def obj(self, d: Any, key: str, where: str) -> dict[str, Any]:
        v = d.get(key) if isinstance(d, dict) else None
        if v is None:
            return {}
        if not isinstance(v, dict):
            self._bad(where, "object", v)
            return {}
        return v

    def objs(self, d: Any, key: str, where: str) -> list[dict[str, Any]]:
        """A list of objects; items of another shape are left out (and recorded)."""
        v = d.get(key) if isinstance(d, dict) else None
        if v is None:
            return []
        if not isinstance(v, list):
            self._bad(where, "list", v)
            return []
        out = []
        for i, item in enumerate(v):
            if isinstance(item, dict):
                out.append(item)
            else:
                self._bad(f"{where}[{i}]", "object", item)
        return out

    def strs(self, d: Any, key: str, where: str) -> list[str]:
        v = d.get(key) if isinstance(d, dict) else None
        if v is None:
            return []
        if not isinstance(v, list):
            self._bad(where, "list", v)
            return []
        return [str(x) for x in v if isinstance(x, (str, int, float))]

    def str_map(self, d: Any, key: str, where: str) -> dict[str, str]:
        v = self.obj(d, key, where)
        return {str(k): str(x) for k, x in v.items() if isinstance(x, (str, int, float, bool))}

    def text(self, d: Any, key: str, where: str, default: Optional[str] = None) -> Optional[str]:
        v = d.get(key) if isinstance(d, dict) else None
        if v is None:
            return default
        if isinstance(v, (dict, list)):
            self._bad(where, "string", v)
            return default
        return str(v)

    def int_(self, d: Any, key: str, where: str, default: Optional[int] = None) -> Optional[int]:
        v = d.get(key) if isinstance(d, dict) else None
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            self._bad(where, "integer", v)
            return default
        try:
            return int(v)
        except ValueError:
            self._bad(where, "integer", v)
            return default


def _meta(obj: Any) -> dict[str, Any]:
    m = obj.get("metadata") if isinstance(obj, dict) else None
    return m if isinstance(m, dict) else {}


def _name(obj: Any) -> str:
    v = _meta(obj).get("name")
    return str(v) if isinstance(v, (str, int)) else "?"


def _ns(obj: Any) -> Optional[str]:
    v = _meta(obj).get("namespace")
    return str(v) if isinstance(v, (str, int)) else None


def qualified(obj: Any) -> str:
    """namespace/name, or just the name when the object names no namespace (an imported file)."""
    ns = _ns(obj)
    return f"{ns}/{_name(obj)}" if ns else _name(obj)


def _subject(kind: str, obj: Any) -> str:
    return f"{kind} {qualified(obj)}"


def with_meta(kind: str, obj: dict[str, Any], problems: list[ShapeProblem]) -> dict[str, Any]:
    """A shallow copy whose metadata (and its annotations) are maps, as the manifest helpers
    read them; a wrong shape is recorded and left out."""
    o = dict(obj)
    m = o.get("metadata")
    if m is not None and not isinstance(m, dict):
        problems.append(ShapeProblem(subject=f"{kind} ?", field="metadata", expected="object", found=_found(m)))
        m = None
    meta = dict(m or {})
    ann = meta.get("annotations")
    if ann is not None and not isinstance(ann, dict):
        problems.append(ShapeProblem(subject=_subject(kind, o), field="metadata.annotations", expected="object",
                                     found=_found(ann)))
        meta.pop("annotations")
    if "metadata" in o:
        o["metadata"] = meta
    return o


def is_user(obj: Any) -> bool:
    ns = _ns(obj)
    if ns in SYSTEM_NAMESPACES:
        return False
    return not (ns == "default" and _name(obj) == "kubernetes")


def _flow(value: Any) -> str:
    import yaml  # only for manifests shown as YAML: not imported by every command (start-up)

    return str(yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10000)).strip()


# --------------------------------------------------------------------------- manifests


def volume_type(v: dict[str, Any]) -> str:
    for t in VOLUME_TYPES:
        if t in v:
            detail = v[t] if isinstance(v[t], dict) else {}
            if t == "hostPath":
                return f"hostPath {detail.get('path', '')}".strip()
            if t == "persistentVolumeClaim":
                return f"persistentVolumeClaim {detail.get('claimName', '')}".strip()
            if t == "configMap":
                return f"configMap {detail.get('name', '')}".strip()
            return t
    other = [k for k in v if k != "name"]
    return str(other[0]) if other else "?"


class _Fields:
    def __init__(self, r: Reader) -> None:
        self.r = r
        self.out: list[ManifestField] = []

    def add(self, path: str, value: Any, key: str) -> None:
        if value is None or value == [] or value == {}:
            return
        if isinstance(value, (dict, list)):
            value = _flow(value)
        self.out.append(ManifestField(path=path, value=str(value), key=key))

    def pod(self, spec: dict[str, Any], prefix: str) -> None:
        r = self.r
        for i, c in enumerate(r.objs(spec, "containers", f"{prefix}.containers")):
            w = f"{prefix}.containers[{i}]"
            ports = ", ".join(str(p.get("containerPort")) for p in r.objs(c, "ports", f"{w}.ports"))
            mounts = ", ".join(f"{v.get('name')}→{v.get('mountPath')}"
                               for v in r.objs(c, "volumeMounts", f"{w}.volumeMounts"))
            desc = f"{r.text(c, 'name', f'{w}.name')}: {r.text(c, 'image', f'{w}.image')}"
            if ports:
                desc += f"; ports {ports}"
            if mounts:
                desc += f"; mounts {mounts}"
            self.add(w, desc, "container")
        for i, v in enumerate(r.objs(spec, "volumes", f"{prefix}.volumes")):
            self.add(f"{prefix}.volumes[{i}]", f"{v.get('name')}: {volume_type(v)}", "volume")


def manifest_fields(kind: str, m: Any, r: Reader) -> list[ManifestField]:
    """The fields of a manifest the lab asks about, each with its explanation key."""
    f = _Fields(r)
    spec = r.obj(m, "spec", "spec")
    if kind == "Pod":
        f.pod(spec, "spec")
    elif kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        replicas = r.int_(spec, "replicas", "spec.replicas")
        f.add("spec.replicas", replicas if replicas is not None else (None if kind == "DaemonSet" else "1 (default)"),
              "replicas")
        f.add("spec.selector", r.str_map(r.obj(spec, "selector", "spec.selector"), "matchLabels",
                                         "spec.selector.matchLabels"), "selector")
        tmpl = r.obj(spec, "template", "spec.template")
        f.add("spec.template.metadata.labels",
              r.str_map(r.obj(tmpl, "metadata", "spec.template.metadata"), "labels", "spec.template.metadata.labels"),
              "template_labels")
        f.pod(r.obj(tmpl, "spec", "spec.template.spec"), "spec.template.spec")
    elif kind == "Service":
        f.add("spec.type", r.text(spec, "type", "spec.type", "ClusterIP"), "service_type")
        f.add("spec.clusterIP", r.text(spec, "clusterIP", "spec.clusterIP"), "cluster_ip")
        f.add("spec.selector", r.str_map(spec, "selector", "spec.selector"), "service_selector")
        for i, p in enumerate(r.objs(spec, "ports", "spec.ports")):
            port = p.get("port")
            desc = f"{p.get('name') or ''} {port}/{p.get('protocol', 'TCP')} → {p.get('targetPort', port)}"
            if p.get("nodePort"):
                desc += f" (nodePort {p['nodePort']})"
            f.add(f"spec.ports[{i}]", desc.strip(), "service_port")
        aff = r.text(spec, "sessionAffinity", "spec.sessionAffinity")
        f.add("spec.sessionAffinity", aff if aff != "None" else None, "session_affinity")
        f.add("spec.externalTrafficPolicy", r.text(spec, "externalTrafficPolicy", "spec.externalTrafficPolicy"),
              "external_traffic_policy")
        f.add("spec.externalName", r.text(spec, "externalName", "spec.externalName"), "external_name")
    elif kind == "HorizontalPodAutoscaler":
        ref = r.obj(spec, "scaleTargetRef", "spec.scaleTargetRef")
        f.add("spec.scaleTargetRef", f"{ref.get('kind')}/{ref.get('name')}", "hpa_target")
        f.add("spec.minReplicas", r.int_(spec, "minReplicas", "spec.minReplicas", 1), "hpa_min")
        f.add("spec.maxReplicas", r.int_(spec, "maxReplicas", "spec.maxReplicas"), "hpa_max")
        f.add("spec.metrics", spec.get("metrics"), "hpa_metrics")
        f.add("spec.behavior", spec.get("behavior"), "hpa_behavior")
    return f.out


def manifests(snapshot: Snapshot, problems: list[ShapeProblem]) -> list[ManifestView]:
    cl = snapshot.cluster
    if cl is None:
        return []
    entries: list[dict[str, Any]] = []
    if cl.manifests:
        entries = [e for e in cl.manifests if isinstance(e, dict) and e.get("namespace") not in SYSTEM_NAMESPACES]
    else:
        for kind, items in (("Pod", cl.pods), ("Deployment", cl.deployments), ("Service", cl.services),
                            ("HorizontalPodAutoscaler", cl.hpas)):
            for o in items:
                if not isinstance(o, dict):
                    problems.append(ShapeProblem(subject=f"{kind} ?", field="(object)", expected="object",
                                                 found=_found(o)))
                    continue
                if not is_user(o):
                    continue
                if kind == "Pod" and _meta(o).get("ownerReferences"):
                    continue  # made by a ReplicaSet/DaemonSet, not applied by the user
                o = with_meta(kind, o, problems)
                o.setdefault("kind", kind)
                entries.append(manifest_entry(o))
    entries.sort(key=lambda e: (KIND_ORDER.get(str(e.get("kind")), 9), str(e.get("namespace")), str(e.get("name"))))
    out = []
    for e in entries:
        m = e.get("manifest")
        if not isinstance(m, dict):
            m = {}
        kind = str(e.get("kind") or m.get("kind") or "?")
        if kind not in KIND_ORDER:
            continue
        if kind == "Pod" and e.get("source") != "last-applied" and _meta(m).get("ownerReferences"):
            continue
        source = str(e.get("source") or "cleaned")
        if source == "cleaned" and cl.source == "import":
            source = "file"  # a manifest file the user imported: as written
        ns = e.get("namespace")
        entry_problems: list[ShapeProblem] = []
        subject = f"{kind} {ns + '/' if isinstance(ns, str) and ns else ''}{e.get('name')}"
        fields = manifest_fields(kind, m, Reader(subject, entry_problems))
        problems.extend(entry_problems)
        out.append(ManifestView(kind=kind, namespace=str(ns) if ns is not None else None, name=str(e.get("name")),
                                source=source, manifest=m, fields=fields, problems=entry_problems))
    return out


# --------------------------------------------------------------------------- volumes (Q12)


def _verdict(vt: str, multi: bool, nodes: list[str], access: str) -> str:
    if vt == "hostPath":
        if not multi:
            return "hostpath_single"
        if not nodes:
            return "hostpath_nodes_unknown"
        return "hostpath_multi_node" if len(nodes) > 1 else "hostpath_shared"
    if vt == "emptyDir":
        return "emptydir_multi" if multi else "emptydir_single"
    if vt == "persistentVolumeClaim":
        return "pvc_rwx" if "ReadWriteMany" in access else ("pvc_rwo_multi" if multi else "pvc_single")
    if vt in ("configMap", "secret", "projected", "downwardAPI"):
        return "readonly_config"
    return "other"


def volumes(snapshot: Snapshot, problems: list[ShapeProblem]) -> Optional[list[VolumeUse]]:
    cl = snapshot.cluster
    if cl is None or (not cl.deployments and not cl.pods):
        return None
    pods = [p for p in cl.pods if isinstance(p, dict)]
    pvcs = {(_ns(o), _name(o)): o for o in cl.other if isinstance(o, dict) and o.get("kind") == "PersistentVolumeClaim"}
    # where each pod name runs, from the nodes' containers (imported manifests have no nodeName)
    pod_nodes: dict[str, set[str]] = {}
    for n in snapshot.nodes:
        for c in n.containers:
            if c.pod_name:
                pod_nodes.setdefault(c.pod_name, set()).add(n.name)

    def pods_of(ns: Optional[str], selector: dict[str, str]) -> list[dict[str, Any]]:
        res = []
        for p in pods:
            labels = _meta(p).get("labels")
            labels = labels if isinstance(labels, dict) else {}
            if _ns(p) == ns and selector and all(labels.get(k) == v for k, v in selector.items()):
                res.append(p)
        return res

    def nodes_running(kind: str, name: str) -> list[str]:
        out_nodes: set[str] = set()
        for pn, where in pod_nodes.items():
            if (kind == "Pod" and pn == name) or (kind == "Deployment" and pn.startswith(name + "-")):
                out_nodes |= where
        return sorted(out_nodes)

    workloads: list[tuple[str, str, dict[str, Any], dict[str, Any], Reader, str, Optional[int],
                          list[dict[str, Any]]]] = []
    for d in cl.deployments:
        if not isinstance(d, dict) or not is_user(d):
            continue
        r = Reader(_subject("Deployment", d), problems)
        spec = r.obj(d, "spec", "spec")
        sel = r.str_map(r.obj(spec, "selector", "spec.selector"), "matchLabels", "spec.selector.matchLabels")
        replicas = r.int_(spec, "replicas", "spec.replicas")
        if replicas is None:
            replicas = r.int_(r.obj(d, "status", "status"), "replicas", "status.replicas")
        tmpl = r.obj(spec, "template", "spec.template")
        workloads.append(("Deployment", qualified(d), d, r.obj(tmpl, "spec", "spec.template.spec"), r,
                          "spec.template.spec", replicas, pods_of(_ns(d), sel)))
    for p in pods:
        if not is_user(p) or _meta(p).get("ownerReferences"):
            continue
        r = Reader(_subject("Pod", p), problems)
        workloads.append(("Pod", qualified(p), p, r.obj(p, "spec", "spec"), r, "spec", 1, [p]))
    out: list[VolumeUse] = []
    for kind, qual, obj, pspec, r, prefix, replicas, wpods in workloads:
        nodes = sorted({str(s["nodeName"]) for s in (p.get("spec") for p in wpods)
                        if isinstance(s, dict) and isinstance(s.get("nodeName"), str)})
        if not nodes:
            nodes = nodes_running(kind, _name(obj))
        containers = r.objs(pspec, "containers", f"{prefix}.containers")
        for i, v in enumerate(r.objs(pspec, "volumes", f"{prefix}.volumes")):
            vt = next((t for t in VOLUME_TYPES if t in v), "other")
            vname = str(v.get("name"))
            if vt in ("projected", "secret", "configMap", "downwardAPI") and vname.startswith("kube-api-access"):
                continue
            mounts = []
            for ci, cspec in enumerate(containers):
                for vm in r.objs(cspec, "volumeMounts", f"{prefix}.containers[{ci}].volumeMounts"):
                    if vm.get("name") == v.get("name"):
                        mounts.append(f"{cspec.get('name')}:{vm.get('mountPath')}" + (" (ro)" if vm.get("readOnly") else ""))
            src = r.obj(v, vt, f"{prefix}.volumes[{i}].{vt}") if vt != "other" else {}
            access = ""
            if vt == "persistentVolumeClaim":
                pvc = pvcs.get((_ns(obj), str(src.get("claimName"))))
                if pvc is not None:
                    access = ",".join(Reader(_subject("PersistentVolumeClaim", pvc), problems).strs(
                        pvc.get("spec"), "accessModes", "spec.accessModes"))
            multi = (replicas or 1) > 1
            out.append(VolumeUse(workload=f"{kind} {qual}", replicas=replicas, nodes=nodes, volume=vname, vtype=vt,
                                 detail=volume_type(v), mounts=mounts, verdict_key=_verdict(vt, multi, nodes, access),
                                 access_modes=access, path=str(src.get("path") or src.get("claimName") or "")))
    return out


# --------------------------------------------------------------------------- HPA (Q13)


def _metric_desc(m: dict[str, Any]) -> str:
    t = m.get("type")

    def d(v: Any) -> dict[str, Any]:
        return v if isinstance(v, dict) else {}

    r = d(m.get("resource")) or d(m.get("containerResource"))
    target = d(r.get("target")) or d(m.get("target"))
    current = d(r.get("current"))
    name = r.get("name") or d(d(m.get("pods")).get("metric")).get("name") or t
    if target:
        if target.get("type") == "Utilization":
            return f"{name}: averageUtilization {target.get('averageUtilization')} %"
        return f"{name}: {target.get('type')} {target.get('averageValue') or target.get('value')}"
    if current:
        if "averageUtilization" in current:
            return f"{name}: {current.get('averageUtilization')} % (averageValue {current.get('averageValue', '?')})"
        return f"{name}: {current.get('averageValue') or current.get('value')}"
    return str(name)


def _policies(rules: dict[str, Any], r: Reader, where: str) -> list[str]:
    out = []
    for p in r.objs(rules, "policies", f"{where}.policies"):
        unit = "%" if p.get("type") == "Percent" else " pods"
        out.append(f"{p.get('type')}: {p.get('value')}{unit} / {p.get('periodSeconds')} s")
    sel = r.text(rules, "selectPolicy", f"{where}.selectPolicy")
    if sel:
        out.append(f"selectPolicy: {sel}")
    return out


def hpas(snapshot: Snapshot, problems: list[ShapeProblem]) -> Optional[list[HpaView]]:
    cl = snapshot.cluster
    if cl is None:
        return None
    out = []
    for h in cl.hpas:
        if not isinstance(h, dict):
            problems.append(ShapeProblem(subject="HorizontalPodAutoscaler ?", field="(object)", expected="object",
                                         found=_found(h)))
            continue
        r = Reader(_subject("HorizontalPodAutoscaler", h), problems)
        spec = r.obj(h, "spec", "spec")
        st = r.obj(h, "status", "status")
        beh = r.obj(spec, "behavior", "spec.behavior")
        ref = r.obj(spec, "scaleTargetRef", "spec.scaleTargetRef")
        down = r.obj(beh, "scaleDown", "spec.behavior.scaleDown")
        conds = [HpaCondition(type=str(c.get("type", "")), status=str(c.get("status", "")),
                              message=str(c.get("message") or c.get("reason") or ""))
                 for c in r.objs(st, "conditions", "status.conditions")]
        out.append(HpaView(
            name=qualified(h), target=f"{ref.get('kind')}/{ref.get('name')}",
            min_replicas=r.int_(spec, "minReplicas", "spec.minReplicas", 1),
            max_replicas=r.int_(spec, "maxReplicas", "spec.maxReplicas"),
            metrics=[_metric_desc(m) for m in r.objs(spec, "metrics", "spec.metrics")],
            scale_down=_policies(down, r, "spec.behavior.scaleDown"),
            scale_up=_policies(r.obj(beh, "scaleUp", "spec.behavior.scaleUp"), r, "spec.behavior.scaleUp"),
            stabilization_down=r.int_(down, "stabilizationWindowSeconds",
                                      "spec.behavior.scaleDown.stabilizationWindowSeconds"),
            current_replicas=r.int_(st, "currentReplicas", "status.currentReplicas"),
            desired_replicas=r.int_(st, "desiredReplicas", "status.desiredReplicas"),
            current_metrics=[_metric_desc(m) for m in r.objs(st, "currentMetrics", "status.currentMetrics")],
            conditions=conds, manifest=applied_manifest(with_meta("HorizontalPodAutoscaler", h, problems))))
    return out


# --------------------------------------------------------------------------- nodes, CIDRs


def api_nodes(snapshot: Snapshot, problems: list[ShapeProblem]) -> list[ApiNode]:
    cl = snapshot.cluster
    if cl is None:
        return []
    out = []
    for n in cl.nodes:
        if not isinstance(n, dict):
            continue
        r = Reader(_subject("Node", n), problems)
        st = r.obj(n, "status", "status")
        ready = next((str(c.get("status")) for c in r.objs(st, "conditions", "status.conditions")
                      if c.get("type") == "Ready"), "?")
        labels = _meta(n).get("labels")
        labels = labels if isinstance(labels, dict) else {}
        roles = ",".join(sorted(str(k).split("/", 1)[1] for k in labels
                                if str(k).startswith("node-role.kubernetes.io/"))) or "<none>"
        info = r.obj(st, "nodeInfo", "status.nodeInfo")
        addr = next((str(a.get("address")) for a in r.objs(st, "addresses", "status.addresses")
                     if a.get("type") == "InternalIP"), "")
        out.append(ApiNode(name=_name(n), ready=ready, roles=roles, version=str(info.get("kubeletVersion", "")),
                           runtime=str(info.get("containerRuntimeVersion", "")), address=addr,
                           pod_cidr=r.text(r.obj(n, "spec", "spec"), "podCIDR", "spec.podCIDR", "") or ""))
    return out


def cidrs(snapshot: Snapshot, analysis: Analysis) -> dict[str, str]:
    out: dict[str, str] = {}
    for na in analysis.nodes:
        for c in na.components:
            for flag, key in (("--cluster-cidr", "pod_cidr"), ("--service-cluster-ip-range", "service_cidr")):
                v = c.key_flags.get(flag)
                if v and key not in out:
                    out[key] = v
    cl = snapshot.cluster
    if cl is not None:
        for n in cl.nodes:
            spec = n.get("spec") if isinstance(n, dict) else None
            pc = spec.get("podCIDR") if isinstance(spec, dict) else None
            if isinstance(pc, str) and pc:
                out[f"node_pod_cidr:{_name(n)}"] = pc
    return out


def workload_views(snapshot: Snapshot, analysis: Analysis) -> WorkloadViews:
    problems: list[ShapeProblem] = []
    views = WorkloadViews(manifests=manifests(snapshot, problems), volumes=volumes(snapshot, problems),
                          hpas=hpas(snapshot, problems), api_nodes=api_nodes(snapshot, problems),
                          cidrs=cidrs(snapshot, analysis))
    seen: set[tuple[str, str]] = set()
    for p in problems:  # a field read by two views is one problem
        if (p.subject, p.field) not in seen:
            seen.add((p.subject, p.field))
            views.problems.append(p)
    return views
