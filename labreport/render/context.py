"""What the templates show, per section: a selection of the Analysis and the evidence.

``build_context(...)`` returns the objects the Jinja templates iterate over. It computes
nothing the report states: every fact (devices and their roles, volumes and their
verdicts, HPAs, manifests, the cluster overview, the containers a pod added) is in the
:class:`~labreport.analysis.model.Analysis` or in the diff of two analyses
(:mod:`labreport.diff`); here it is only picked per section, and the evidence excerpts
that back each section are cut from the snapshot's command outputs.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Optional

import yaml

from labreport.analysis.namespaces import is_system_record
from labreport.analysis.model import (Analysis, ApiNode, ClusterOverview, DeviceRow, HpaView, ManifestView,
                                      NodeAnalysis, RouteRow, ServiceRecord, ShapeProblem, TrafficPath, VolumeUse)
from labreport.diff import ContainerChanges, DiffNote, NewContainer
from labreport.snapshot import Evidence, NodeSnapshot, Snapshot

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
    more: int = 0  # matching lines not shown (they are in the appendix)

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
    text = "\n".join(cut)
    if ev.stderr and not ev.stdout:
        text = ev.stderr.strip()
    return Excerpt(ev.id, ev.command, text, len(cut), total, ev.origin, more=max(0, len(chosen) - max_lines))


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
    devices: list[DeviceRow] = field(default_factory=list)
    routes: list[RouteRow] = field(default_factory=list)
    addr_ev: list[Excerpt] = field(default_factory=list)
    user_services: list[ServiceRecord] = field(default_factory=list)
    system_services: list[ServiceRecord] = field(default_factory=list)
    rule_counts: dict[str, int] = field(default_factory=dict)
    info_rows: list[tuple[str, str]] = field(default_factory=list)
    env_ev: list[Excerpt] = field(default_factory=list)

    @property
    def role_key(self) -> str:
        return "control_plane" if self.is_control_plane else "worker"


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
    nv = NodeView(node.name, node, na, na.control_plane)
    nv.not_collected = list(na.not_collected)
    nv.ps = _ps_excerpt(node, na)
    for ev in find_evidence(node, "crictl-ps", "crictl-pods", "docker-ps", "crictl", "docker"):
        if ev.id.startswith("docker-inspect"):
            continue
        nv.containers_ev.append(excerpt(ev))
    nv.devices = list(na.devices)
    nv.routes = list(na.routes)
    for ev in find_evidence(node, "ip-addr", "ip-link", "ip-route", "ip-rule"):
        nv.addr_ev.append(excerpt(ev, max_lines=80))
    for rec in na.services:
        (nv.system_services if is_system_record(rec) else nv.user_services).append(rec)
    nv.rule_counts = dict(na.rule_counts)
    nv.info_rows = _info_rows(node)
    for ev in find_evidence(node, "sysctl", "lsmod", "modules", "swap", "uname", "os-release", "version",
                            "crictl-version", "docker-version", "docker-info", "containerd-config", "kubelet-config",
                            "cni-config"):
        nv.env_ev.append(excerpt(ev, max_lines=40))
    return nv


# --------------------------------------------------------------------------- services


def service_evidence(rec: ServiceRecord) -> str:
    return "\n".join(rec.evidence)


def to_yaml(obj: Any) -> str:
    return str(yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100))


# --------------------------------------------------------------------------- the whole report


@dataclass
class ReportContext:
    snapshot: Snapshot
    analysis: Analysis
    nodes: list[NodeView]
    path: Optional[TrafficPath]
    manifests: list[ManifestView]
    volumes: Optional[list[VolumeUse]]
    hpas: Optional[list[HpaView]]
    new_containers: Optional[list[NewContainer]]
    diff_notes: list[DiffNote]
    unlisted_sandboxes: list[NewContainer]  # inferred sandboxes among new_containers
    redacted: Optional[list[str]]  # None: redaction disabled
    cidrs: dict[str, str]
    api_nodes: list[ApiNode]
    overview: ClusterOverview
    problems: list[ShapeProblem]
    omitted: list[str] = field(default_factory=list)  # nodes only in the overview (a large cluster)
    diagram: dict[str, Any] = field(default_factory=dict)

    @property
    def large(self) -> bool:
        """Beyond a handful of nodes the report draws one diagram per node."""
        return len(self.nodes) + len(self.omitted) > PER_NODE_DIAGRAMS_ABOVE


PER_NODE_DIAGRAMS_ABOVE = 4


def _grouped_notes(notes: list[DiffNote]) -> list[DiffNote]:
    """The notes, with one "same container despite OCR-damaged IDs" note per node listing them all."""
    out: list[DiffNote] = []
    ocr: dict[str, DiffNote] = {}
    for n in notes:
        if n.key != "ocr_matched":
            out.append(n)
            continue
        node = n.args.get("node", "")
        item = f"{n.args.get('name')} ({n.args.get('before')} / {n.args.get('after')})"
        if node in ocr:
            g = ocr[node]
            g.args["items"] += ", " + item
            g.args["n"] = str(int(g.args["n"]) + 1)
        else:
            ocr[node] = DiffNote(key="ocr_matched_many", args={"node": node, "items": item, "n": "1"}, text=n.text)
            out.append(ocr[node])
    return out


def build_context(snapshot: Snapshot, analysis: Analysis, *, path: Optional[TrafficPath] = None,
                  changes: Optional[ContainerChanges] = None, redacted: Optional[list[str]] = None,
                  omitted: Optional[list[str]] = None) -> ReportContext:
    by_name = {na.node: na for na in analysis.nodes}
    nodes = []
    for node in snapshot.nodes:
        na = by_name.get(node.name) or NodeAnalysis(node=node.name, status=node.status, error=node.error)
        nodes.append(node_view(node, na))
    w = analysis.workloads
    return ReportContext(
        snapshot=snapshot, analysis=analysis, nodes=nodes, path=path if path is not None else analysis.path,
        manifests=w.manifests, volumes=w.volumes, hpas=w.hpas,
        new_containers=changes.new if changes is not None else None,
        diff_notes=_grouped_notes(changes.notes) if changes is not None else [],
        unlisted_sandboxes=[c for c in changes.new if c.inferred] if changes is not None else [],
        redacted=redacted, cidrs=w.cidrs, api_nodes=w.api_nodes, overview=analysis.overview, problems=w.problems,
        omitted=list(omitted or []))


def is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False
