"""Veth matching (Q6): a host ``vethXXXX@ifM`` paired with a pod's ``eth0@ifN``.

A pair is (host link H in the node's own namespace, pod namespace P, pod link L) with
  - H's peer is in P (H.link_netnsid → the node namespace's ``nsids``, or ``link-netns P``)
    and H.peer_ifindex == L.ifindex, and
  - L's peer is in the node namespace (L.link_netnsid → P's ``nsids``) and
    L.peer_ifindex == H.ifindex.
Ifindex numbers alone prove nothing: every pod's eth0 may be ifindex 2, and /var/run/netns
is shared by simulated nodes, so a node's collector sees other nodes' pod namespaces too
(their eth0 points into another node's namespace). When a side cannot be resolved to a
namespace (pasted text: ``link-netnsid 0`` without the nsid table), the other side must
name it, and both indexes must agree; if that still leaves more than one candidate, no
pair is made and a warning says why.

Pure: a NodeSnapshot in, VethPair records out.
"""

from __future__ import annotations

import re
from typing import Callable, Optional

from labreport.analysis.model import VethPair
from labreport.snapshot import Container, Link, NetNamespace, NodeSnapshot

_MAX_WARNINGS = 20
_DOCKER_K8S_RE = re.compile(r"^/?k8s_([^_]+)_([^_]+)_([^_]+)_([^_]+)_(\d+)$")


def _is_pairable(link: Link) -> bool:
    """A link whose peer lives in another namespace: a veth (or kind unknown, as in
    `ip link` without -d) printed as name@ifN with a link-netnsid / link-netns."""
    if link.peer_ifindex is None:
        return False
    if link.kind not in (None, "veth"):
        return False
    return link.link_netnsid is not None or link.link_netns is not None


def _global_addrs(link: Link) -> list[str]:
    out = []
    for a in link.addresses:
        if a.family == "inet6" and (a.local.lower().startswith("fe80") or a.scope == "link"):
            continue
        out.append(f"{a.local}/{a.prefixlen}")
    return out


def _node_aliases(node_ns: NetNamespace) -> set[str]:
    names = {node_ns.name}
    if node_ns.path:
        names.add(node_ns.path)
        names.add(node_ns.path.rsplit("/", 1)[-1])
    return names


def _peer_ns_of(link: Link, owner: NetNamespace) -> Optional[str]:
    """The namespace name a link's peer lives in, or None when it cannot be told."""
    if link.link_netnsid is not None and link.link_netnsid in owner.nsids:
        return owner.nsids[link.link_netnsid]
    if link.link_netns:
        return link.link_netns
    return None


def match_veths(node: NodeSnapshot, *, warnings: Optional[list[str]] = None) -> list[VethPair]:
    """Veth pairs of this node (host side in its kind="node" namespace)."""
    warn = warnings if warnings is not None else []
    n_warn = 0

    def note(msg: str) -> None:
        nonlocal n_warn
        n_warn += 1
        if n_warn <= _MAX_WARNINGS:
            warn.append(msg)

    node_ns = node.node_netns()
    if node_ns is None:
        if node.netns:
            note("veth: no namespace of kind 'node' in the snapshot; cannot tell host from pod side")
        return []
    aliases = _node_aliases(node_ns)
    pod_spaces = [ns for ns in node.netns if ns is not node_ns and ns.kind != "node"]
    ns_by_name: dict[str, NetNamespace] = {ns.name: ns for ns in pod_spaces}
    # also reachable by path (a collector may name by path, ip by name)
    for ns in pod_spaces:
        if ns.path:
            ns_by_name.setdefault(ns.path, ns)
            ns_by_name.setdefault(ns.path.rsplit("/", 1)[-1], ns)

    # pod-side links: (namespace name, ifindex) -> link; plus how their peer resolves
    pod_link: dict[tuple[str, int], tuple[NetNamespace, Link]] = {}
    # for the fallback: (ifindex, peer_ifindex) -> candidates whose peer is unresolved
    unresolved: dict[tuple[int, int], list[tuple[NetNamespace, Link]]] = {}
    to_node: dict[tuple[int, int], list[tuple[NetNamespace, Link]]] = {}
    for ns in pod_spaces:
        for link in ns.links:
            if not _is_pairable(link):
                continue
            peer_ns = _peer_ns_of(link, ns)
            if peer_ns is not None and peer_ns not in aliases:
                continue  # its peer is in another namespace (another node's, or a nested pod's)
            pod_link[(ns.name, link.ifindex)] = (ns, link)
            bucket = unresolved if peer_ns is None else to_node
            bucket.setdefault((link.ifindex, link.peer_ifindex or 0), []).append((ns, link))

    sandbox_by_netns = _sandboxes_by_netns(node, pod_spaces)
    pairs: list[VethPair] = []
    used: set[tuple[str, int]] = set()
    for host in node_ns.links:
        if not _is_pairable(host):
            continue
        peer_name = _peer_ns_of(host, node_ns)
        hit: Optional[tuple[NetNamespace, Link]] = None
        if peer_name is not None and peer_name in ns_by_name:
            target = ns_by_name[peer_name]
            cand = pod_link.get((target.name, host.peer_ifindex or 0))
            if cand is not None and cand[1].peer_ifindex == host.ifindex:
                hit = cand
            elif cand is not None:
                note(f"veth: {host.name}@if{host.peer_ifindex} names netns {peer_name}, but its "
                     f"if{host.peer_ifindex} ({cand[1].name}) points at if{cand[1].peer_ifindex}, "
                     f"not {host.ifindex}: not paired")
            else:
                note(f"veth: {host.name}@if{host.peer_ifindex}: netns {peer_name} has no interface "
                     f"{host.peer_ifindex} whose peer is this node: not paired")
        else:
            # The host side does not lead to a collected namespace: only index evidence is
            # left, and it counts only with a namespace on one side: the pod side's peer
            # resolves to this node, or the host side names the (uncollected) pod netns —
            # pasted text: `link-netns cni-…` on the host, `link-netnsid 0` in the pod.
            # Both indexes must agree and exactly one interface may fit (the same MAC seen
            # twice, from two containers of one pod, counts once).
            key = (host.peer_ifindex or 0, host.ifindex)
            loose = unresolved.get(key, [])
            cands = to_node.get(key, []) + (loose if peer_name is not None else [])
            distinct = _distinct(cands)
            if len(distinct) == 1:
                hit = distinct[0]
            elif len(distinct) > 1:
                note(f"veth: {host.name}@if{host.peer_ifindex} (ifindex {host.ifindex}) could be the peer of "
                     + ", ".join(f"{l.name} in {ns.name}" for ns, l in distinct[:5])
                     + ("…" if len(distinct) > 5 else "")
                     + "; the namespace cannot be told (no nsid table), so none is chosen")
            elif loose:
                note(f"veth: {host.name}@if{host.peer_ifindex} (ifindex {host.ifindex}): neither side names the "
                     f"other's namespace (no nsid table, no link-netns); "
                     + ", ".join(f"{l.name} in {ns.name}" for ns, l in _distinct(loose)[:5])
                     + " fits by numbers only, which proves nothing: not paired")
            elif peer_name is not None:
                note(f"veth: {host.name}@if{host.peer_ifindex}: its pod namespace {peer_name} was not collected")
            else:
                note(f"veth: {host.name}@if{host.peer_ifindex}: its peer's namespace (link-netnsid "
                     f"{host.link_netnsid}) was not collected, so the pod side is unknown")
        if hit is None:
            continue
        ns, link = hit
        k = (ns.name, link.ifindex)
        if k in used:
            continue
        used.add(k)
        sb = sandbox_by_netns.get(ns.name)
        pairs.append(VethPair(
            host_ifname=host.name, host_ifindex=host.ifindex, netns=ns.name,
            pod_ifname=link.name, pod_ifindex=link.ifindex, pod_ips=_global_addrs(link),
            bridge=host.master, host_mac=host.mac, pod_mac=link.mac,
            pod=_pod_key(sb) if sb is not None else None,
        ))
    pairs.extend(_inferred_from_ifindex(node_ns, pod_spaces, used, sandbox_by_netns, note))
    if n_warn > _MAX_WARNINGS:
        warn.append(f"veth: {n_warn - _MAX_WARNINGS} more veth warnings not shown")
    return pairs


INFERRED = "inferred from ifindex"


def _inferred_from_ifindex(node_ns: NetNamespace, pod_spaces: list[NetNamespace], used: set[tuple[str, int]],
                           sandbox_by_netns: dict[str, Container], note: Callable[[str], None]) -> list[VethPair]:
    """Host links whose link-netns line was cut off (``ip link | grep`` keeps ``12: vethX@if11``
    and drops the ``link/ether … link-netns`` line): no namespace is named on the host side.
    Such a link is paired with a pod interface only when exactly one host link points at it
    and it points back (pod ``11: eth0@if12`` <-> host ``12: veth…@if11``), and exactly one
    pod interface fits; the pair is marked ``inferred``."""
    cut = [h for h in node_ns.links if h.peer_ifindex is not None and h.link_netnsid is None
           and h.link_netns is None and h.kind in (None, "veth")]
    if not cut:
        return []
    pod_links = [(ns, lk) for ns in pod_spaces for lk in ns.links
                 if lk.peer_ifindex is not None and (ns.name, lk.ifindex) not in used]
    out: list[VethPair] = []
    for host in cut:
        cands = _distinct([(ns, lk) for ns, lk in pod_links
                           if lk.ifindex == host.peer_ifindex and lk.peer_ifindex == host.ifindex])
        if len(cands) != 1:
            if len(cands) > 1:
                note(f"veth: {host.name}@if{host.peer_ifindex} (its link-netns line is missing) fits "
                     + ", ".join(f"{lk.name} in {ns.name}" for ns, lk in cands[:5]) + " by index: none is chosen")
            continue
        ns, link = cands[0]
        rivals = [h for h in node_ns.links if h is not host and h.peer_ifindex == link.ifindex]
        if rivals:
            note(f"veth: {host.name} and {', '.join(h.name for h in rivals)} all point at {link.name} "
                 f"(if{link.ifindex}) in {ns.name} and their link-netns lines are missing: none is chosen")
            continue
        used.add((ns.name, link.ifindex))
        sb = sandbox_by_netns.get(ns.name)
        out.append(VethPair(
            host_ifname=host.name, host_ifindex=host.ifindex, netns=ns.name, pod_ifname=link.name,
            pod_ifindex=link.ifindex, pod_ips=_global_addrs(link), bridge=host.master, host_mac=host.mac,
            pod_mac=link.mac, pod=_pod_key(sb) if sb is not None else None, inferred=INFERRED))
    return out


def _distinct(cands: list[tuple[NetNamespace, Link]]) -> list[tuple[NetNamespace, Link]]:
    """Drop repeats of one interface (the same pod eth0 captured from two containers of a pod)."""
    seen: dict[tuple[object, ...], tuple[NetNamespace, Link]] = {}
    for ns, link in cands:
        key = (link.mac.lower(), link.ifindex, link.peer_ifindex) if link.mac else (ns.name, link.ifindex)
        seen.setdefault(key, (ns, link))
    return list(seen.values())


def _pod_key(c: Container) -> str:
    m = _DOCKER_K8S_RE.match(c.name)
    name = c.pod_name or (m.group(2) if m else c.name)
    namespace = c.pod_namespace or (m.group(3) if m else None)
    return f"{namespace}/{name}" if namespace else name


def _sandboxes_by_netns(node: NodeSnapshot, spaces: list[NetNamespace]) -> dict[str, Container]:
    by_path: dict[str, str] = {}
    by_pid: dict[int, str] = {}
    names = set()
    for ns in spaces:
        names.add(ns.name)
        if ns.path:
            by_path[ns.path] = ns.name
        if ns.pid:
            by_pid[ns.pid] = ns.name
    out: dict[str, Container] = {}
    for c in node.containers:
        if not c.is_sandbox and not c.name.lstrip("/").startswith("k8s_POD_"):
            continue
        name = None
        if c.netns_path:
            name = by_path.get(c.netns_path)
            if name is None:
                base = c.netns_path.rsplit("/", 1)[-1]
                name = base if base in names else None
        if name is None and c.pid:
            name = by_pid.get(c.pid)
        if name is not None and (c.pod_name or c.name):
            out.setdefault(name, c)
    return out
