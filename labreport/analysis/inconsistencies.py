"""Outputs of one report that contradict each other (pure: a snapshot and its analysis in,
``Inconsistency`` records out).

- prompt-node: an output whose shell prompt names another host than the node it was
  given for (``root@k8s-master`` pasted under the worker);
- endpoint-without-pod: a Service endpoint whose IP no pod of the report has (when the
  report shows pod IPs at all: ``kubectl get pods -o wide``, ``describe``, pod ``ip addr``);
- pod-ip-conflict: one pod with two different IPs in two outputs;
- veth-contradicted: a veth pair inferred from ifindex numbers on a node other than the one
  ``kubectl describe`` / ``get pods -o wide`` puts the pod on: the pair is taken out of the
  node's veth pairs (so it is not drawn) and kept in the inconsistency.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from labreport.analysis.model import Analysis, Inconsistency, UnreadItem
from labreport.snapshot import Snapshot

_PROMPT_HOST_RE = re.compile(r"^\s*(?:\d+\s*\|?\s+)?[\w.-]+@([\w.-]+)(?::[^\s#$]*)?\s*[#$]\s*\S")
_MAX = 50
_HEAD = 2000
# parser notes that say how a paste was read, not that something is missing
_NOT_ACTIONABLE = ("table inferred", "kept verbatim")


def _extra(ev: Any, name: str) -> Any:
    """An extra field of an evidence record (``getattr(ev, name, None)`` without pydantic's
    ``__getattr__``, which costs 2 µs a miss: 12,500 evidence records in a 500-node report)."""
    extra = getattr(ev, "__pydantic_extra__", None)
    if isinstance(extra, dict):
        return extra.get(name)
    return getattr(ev, name, None)


def _prompt_host(ev: Any) -> Optional[str]:
    host = _extra(ev, "prompt_host")
    if isinstance(host, str):
        return host
    stdout = ev.stdout
    if not stdout:
        return None
    # a prompt has an "@": lines without one cannot match. Most outputs have none in their
    # first 20 lines, which a look at their first 2,000 characters often tells in one scan
    head = stdout[:_HEAD]
    if "@" not in head and (len(stdout) <= _HEAD or head.count("\n") >= 20):
        return None
    for line in stdout.split("\n", 20)[:20]:  # the first 20 lines (split no further)
        if "@" in line:
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


def _listed_pod_ips(snapshot: Snapshot) -> dict[str, set[str]]:
    """namespace -> the pod IPs a pod listing of the report shows (kubectl get pods -o wide, describe)."""
    out: dict[str, set[str]] = {}
    c = snapshot.cluster
    for t in (getattr(c, "tables", None) or []) if c is not None else []:
        if not isinstance(t, dict) or t.get("kind") != "Pod":
            continue
        cols = t.get("columns") or {}
        ip = (cols.get("IP") if isinstance(cols, dict) else None) or t.get("ip")
        if isinstance(ip, str) and ip:
            out.setdefault(str(t.get("namespace") or "default"), set()).add(ip)
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
            stated = _extra(ev, "stated_node")
            if isinstance(stated, str) and stated != node.name:
                found.append(Inconsistency(
                    kind="prompt-node", node=node.name, subject=ev.command,
                    detail=f"the report says this output is from {stated}, but its prompt is {node.name}'s",
                    evidence=[ev.path or ev.id], args={"host": node.name, "node": stated}))
                continue
            host = _prompt_host(ev)
            if host and host != node.name and host in names:
                found.append(Inconsistency(
                    kind="prompt-node", node=node.name, subject=ev.command,
                    detail=f"the prompt says root@{host}, but the output was given for {node.name}",
                    evidence=[ev.path or ev.id], args={"host": host, "node": node.name}))
    ips = _pod_ips(snapshot, analysis)
    for pod, seen in ips.items():
        if len(seen) > 1:
            both = ", ".join(f"{ip} ({w})" for ip, w in seen.items())
            found.append(Inconsistency(kind="pod-ip-conflict", subject=pod, detail=f"pod {pod} has two IPs: {both}",
                                       evidence=list(seen.values()), args={"pod": pod, "ips": both}))
    listed = _listed_pod_ips(snapshot)
    for na in analysis.nodes:
        for s in na.services:
            known = listed.get(s.namespace or "default")
            if not known:
                continue  # the report lists no pods of that namespace: nothing to compare with
            for ep in s.endpoints or []:
                ip = ep.address.rsplit(":", 1)[0].strip("[]")
                if ip not in known and ep.pod is None:
                    found.append(Inconsistency(
                        kind="endpoint-without-pod", node=na.node, subject=s.name,
                        detail=f"endpoint {ep.address} is the IP of no pod the report lists in {s.namespace or 'default'}",
                        args={"endpoint": ep.address, "namespace": s.namespace or "default"}))
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
                           "not drawn as fact", args={"node": na.node, "where": where[1], "pod": name,
                                                      "other": where[0]}))
    for na in analysis.nodes:  # a contradicted pair is not drawn as fact: it stays in the inconsistency only
        kept = [v for v in na.veth_pairs if not v.contradicted]
        if len(kept) != len(na.veth_pairs):
            for v in na.veth_pairs:
                if v.contradicted:
                    na.warnings.append(f"veth: {v.host_ifname} <-> {v.netns}:{v.pod_ifname} was inferred from "
                                       f"interface indexes, but {v.contradicted}: not drawn")
            na.veth_pairs = kept
    return found[:_MAX]


def unread(snapshot: Snapshot) -> list[UnreadItem]:
    """What the import could not read or had to repair, with how to give it."""
    out: list[UnreadItem] = []
    info = getattr(snapshot, "report_import", None)
    if isinstance(info, dict):
        for w in info.get("warnings") or []:
            if isinstance(w, dict) and isinstance(w.get("message"), str):
                args: dict[str, Any] = w["args"] if isinstance(w.get("args"), dict) else {}
                out.append(UnreadItem(source=str(w.get("source", "")), message=w["message"],
                                      fix=w.get("fix") if isinstance(w.get("fix"), str) else None,
                                      kind=str(w.get("kind", "unread")),
                                      code=w.get("code") if isinstance(w.get("code"), str) else None,
                                      args={str(k): str(v) for k, v in args.items()}))
    for node in snapshot.nodes:
        by_source: dict[str, list[Any]] = {}
        for pw in node.warnings:
            if any(q in pw.message for q in _NOT_ACTIONABLE):
                continue
            by_source.setdefault(pw.source, []).append(pw)
        for source, pws in by_source.items():
            first = pws[0]
            n = len(pws)
            out.append(UnreadItem(
                source=source, code="lines",
                args={"node": node.name, "n": str(n), "line": str(first.line_no), "text": first.line[:80]},
                message=(f"{node.name}: {n} line{'s' if n != 1 else ''} not understood (line {first.line_no}: "
                         f"{first.line[:80]!r}: {first.message})"),
                fix="paste the output exactly as the terminal printed it, in one code block"))
    return out[:200]
