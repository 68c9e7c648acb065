"""Outputs of one report that contradict each other (pure: a snapshot and its analysis in,
``Inconsistency`` records out).

- prompt-node: an output whose shell prompt names another host than the node it was
  given for (``root@k8s-master`` pasted under the worker);
- endpoint-without-pod: a Service endpoint whose IP no pod of the report has (when the
  report shows pod IPs at all: ``kubectl get pods -o wide``, ``describe``, pod ``ip addr``);
- pod-ip-conflict: one pod with two different IPs in two outputs;
- veth-contradicted: a veth pair inferred from ifindex numbers on a node other than the one
  ``kubectl describe`` / ``get pods -o wide`` puts the pod on (the pair is then flagged).
"""

from __future__ import annotations

import re
from typing import Any, Optional

from labreport.analysis.model import Analysis, Inconsistency, UnreadItem
from labreport.snapshot import Snapshot

_PROMPT_HOST_RE = re.compile(r"^\s*(?:\d+\s*\|?\s+)?[\w.-]+@([\w.-]+)(?::[^\s#$]*)?\s*[#$]\s*\S")
_MAX = 50


def _prompt_host(ev: Any) -> Optional[str]:
    host = getattr(ev, "prompt_host", None)
    if isinstance(host, str):
        return host
    for line in (ev.stdout or "").split("\n")[:20]:
        m = _PROMPT_HOST_RE.match(line)
        if m:
            return m.group(1)
    return None


def _pod_ips(snapshot: Snapshot, analysis: Analysis) -> dict[str, dict[str, str]]:
    """pod name -> {ip: where}"""
    out: dict[str, dict[str, str]] = {}
    c = snapshot.cluster
    for t in (getattr(c, "tables", None) or []) if c is not None else []:
        if not isinstance(t, dict) or t.get("kind") != "Pod":
            continue
        cols = t.get("columns") or {}
        ip = cols.get("IP") if isinstance(cols, dict) else None
        ip = ip or t.get("ip")
        if isinstance(ip, str) and ip and isinstance(t.get("name"), str):
            out.setdefault(t["name"], {}).setdefault(ip, str(t.get("source") or t.get("command") or "kubectl"))
    for na in analysis.nodes:
        for p in na.pods:
            if p.ip:
                out.setdefault(p.name, {}).setdefault(p.ip, f"{na.node}: pod network namespace")
    return out


def _pod_nodes(snapshot: Snapshot) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    c = snapshot.cluster
    for t in (getattr(c, "tables", None) or []) if c is not None else []:
        if isinstance(t, dict) and t.get("kind") == "Pod":
            node = t.get("node") or (t.get("columns") or {}).get("NODE")
            if isinstance(node, str) and node and isinstance(t.get("name"), str):
                out[t["name"]] = (node, str(t.get("source") or "kubectl"))
    return out


def find(snapshot: Snapshot, analysis: Analysis) -> list[Inconsistency]:
    found: list[Inconsistency] = []
    names = {n.name for n in snapshot.nodes}
    for node in snapshot.nodes:
        for ev in node.evidence:
            host = _prompt_host(ev)
            if host and host != node.name and host in names:
                found.append(Inconsistency(
                    kind="prompt-node", node=node.name, subject=ev.command,
                    detail=f"the prompt says root@{host}, but the output was given for {node.name}",
                    evidence=[ev.path or ev.id]))
    ips = _pod_ips(snapshot, analysis)
    for pod, seen in ips.items():
        if len(seen) > 1:
            found.append(Inconsistency(kind="pod-ip-conflict", subject=pod,
                                       detail=f"pod {pod} has two IPs: " + ", ".join(f"{ip} ({w})" for ip, w in seen.items()),
                                       evidence=list(seen.values())))
    all_ips = {ip for seen in ips.values() for ip in seen}
    if all_ips:
        for na in analysis.nodes:
            for s in na.services:
                for ep in s.endpoints or []:
                    ip = ep.address.rsplit(":", 1)[0].strip("[]")
                    if ip not in all_ips and ep.pod is None:
                        found.append(Inconsistency(kind="endpoint-without-pod", node=na.node, subject=s.name,
                                                   detail=f"endpoint {ep.address} is the IP of no pod in the report"))
    pod_nodes = _pod_nodes(snapshot)
    for na in analysis.nodes:
        for v in na.veth_pairs:
            name = (v.pod or v.netns).split("/")[-1]
            where = pod_nodes.get(name)
            if v.inferred and where and where[0] != na.node and where[0] in names | {where[0]}:
                v.contradicted = f"{where[1]} puts pod {name} on {where[0]}"
                found.append(Inconsistency(
                    kind="veth-contradicted", node=na.node, subject=f"{v.host_ifname} <-> {name}:{v.pod_ifname}",
                    detail=f"paired by ifindex on {na.node}, but {where[1]} puts pod {name} on {where[0]}: "
                           "not drawn as fact"))
    return found[:_MAX]


def unread(snapshot: Snapshot) -> list[UnreadItem]:
    """What the import could not read or had to repair, with how to give it."""
    out: list[UnreadItem] = []
    info = getattr(snapshot, "report_import", None)
    if isinstance(info, dict):
        for w in info.get("warnings") or []:
            if isinstance(w, dict) and isinstance(w.get("message"), str):
                out.append(UnreadItem(source=str(w.get("source", "")), message=w["message"],
                                      fix=w.get("fix") if isinstance(w.get("fix"), str) else None,
                                      kind=str(w.get("kind", "unread"))))
    for node in snapshot.nodes:
        by_source: dict[str, int] = {}
        for pw in node.warnings:
            by_source[pw.source] = by_source.get(pw.source, 0) + 1
        for source, n in by_source.items():
            out.append(UnreadItem(source=source, message=f"{node.name}: {n} line{'s' if n != 1 else ''} not understood",
                                  fix="paste the output exactly as the terminal printed it, in one code block"))
    return out[:200]
