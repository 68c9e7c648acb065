"""What changed between two snapshots, node by node (lab question Q5).

``diff_snapshots(before, after)`` compares the nodes present in both snapshots (by name)
and returns, per node, what was added and removed::

    {
      "nodes": {
        "worker": {
          "status": "compared",              # or "added" / "removed" (node only on one side)
          "containers": {"added": [...], "removed": [...]},
          "sandboxes":  {"added": [...], "removed": [...]},
          "pods":       {"added": [...], "removed": [...]},
          "veth_pairs": {"added": [...], "removed": [...]},
          "links":      {"added": [...], "removed": [...]},
          "services":   {"added": [...], "removed": [...]},
          "chains":     {"added": [...], "removed": [...]},
          "not_compared": ["links", ...],    # a part collected on one side only
          "notes": [...],                    # e.g. "links: not compared, the network part is only in AFTER"
        }
      },
      "nodes_added": [...], "nodes_removed": [...],
      "summary": {"worker": {"containers": [3, 0], ...}},   # [added, removed] counts
    }

Identity of each kind of record:

- containers (sandboxes included, ``is_sandbox`` marks them): the container id; a short id
  (``docker ps`` prints 12 hex digits) equals a full id it is a prefix of;
- sandboxes: the same, restricted to ``is_sandbox``;
- pods: namespace/name/uid (a pod deleted and re-created under the same name is new);
- veth pairs: (host ifname, pod netns) — from ``analysis.veth.match_veths`` when available,
  else the node namespace's veth links;
- links: the name, in the node's own namespace;
- services: decoded service name + port + protocol (``analysis.services.decode_services``);
- chains: (table, chain) of iptables / ip6tables and nftables.

Pure: no I/O. The CLI (``labreport diff``) renders the result as text or JSON.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from labreport.snapshot import Container, NodeSnapshot, Snapshot

KINDS: tuple[str, ...] = ("containers", "sandboxes", "pods", "veth_pairs", "links", "services", "chains")

Item = dict[str, Any]


# --------------------------------------------------------------------------- records


def _pod_key(c: Container) -> Optional[str]:
    if not c.pod_name:
        return None
    return f"{c.pod_namespace}/{c.pod_name}" if c.pod_namespace else c.pod_name


def _container_item(c: Container) -> Item:
    return {
        "id": c.id,
        "name": c.name,
        "pod": _pod_key(c),
        "pod_uid": c.pod_uid,
        "container_name": getattr(c, "container_name", None),  # docker: the k8s container name in k8s_<name>_…
        "is_sandbox": c.is_sandbox,
        "image": c.image,
        "state": c.state,
        "runtime": c.runtime,
        "sandbox_id": c.sandbox_id,
        "network_mode": c.network_mode,  # docker: container:<sandbox id> shows the shared netns
    }


def _containers(node: NodeSnapshot) -> list[Item]:
    return [_container_item(c) for c in node.containers]


def _sandboxes(node: NodeSnapshot) -> list[Item]:
    return [_container_item(c) for c in node.containers if c.is_sandbox]


def _pods(node: NodeSnapshot) -> list[Item]:
    pods: dict[tuple[Optional[str], str, Optional[str]], Item] = {}
    for c in node.containers:
        if not c.pod_name:
            continue
        key = (c.pod_namespace, c.pod_name, c.pod_uid)
        pod = pods.setdefault(
            key,
            {"pod": _pod_key(c), "namespace": c.pod_namespace, "name": c.pod_name, "uid": c.pod_uid,
             "sandbox_id": None, "containers": []},
        )
        if c.is_sandbox:
            pod["sandbox_id"] = c.id
        else:
            pod["containers"].append(c.name)
    return list(pods.values())


def _veth_pairs(node: NodeSnapshot, notes: list[str]) -> list[Item]:
    try:
        from labreport.analysis.veth import match_veths  # analysis owner's matcher
    except ImportError:
        match_veths = None
    if match_veths is not None:
        try:
            return [
                {"host_ifname": p.host_ifname, "netns": p.netns, "pod_ifname": p.pod_ifname,
                 "pod_ips": list(p.pod_ips), "pod": p.pod, "bridge": p.bridge}
                for p in match_veths(node)
            ]
        except Exception as exc:  # one analyzer failing is a note, never a crash
            notes.append(f"veth_pairs: matcher failed ({type(exc).__name__}: {exc}); host veths compared instead")
    ns = node.node_netns()
    if ns is None:
        return []
    return [
        {"host_ifname": link.name, "netns": link.link_netns or (ns.nsids.get(link.link_netnsid) if link.link_netnsid is not None else None),
         "pod_ifname": None, "pod_ips": [], "pod": None, "bridge": link.master}
        for link in ns.links if link.kind == "veth"
    ]


def _links(node: NodeSnapshot) -> list[Item]:
    ns = node.node_netns()
    if ns is None:
        return []
    return [
        {"name": link.name, "kind": link.kind, "master": link.master,
         "addresses": [f"{a.local}/{a.prefixlen}" for a in link.addresses]}
        for link in ns.links
    ]


def _services(node: NodeSnapshot, cluster: Any, notes: list[str]) -> list[Item]:
    if node.iptables is None and node.ip6tables is None and node.nftables is None and node.ipvs is None:
        return []
    try:
        from labreport.analysis.services import decode_services

        _info, records, _masq = decode_services(node, cluster)
    except Exception as exc:
        notes.append(f"services: not compared ({type(exc).__name__}: {exc})")
        return []
    return [
        {"name": r.name, "cluster_ip": r.cluster_ip, "port": r.port, "protocol": r.protocol,
         "node_port": r.node_port,
         "endpoints": [e.address for e in (r.endpoints or [])]}
        for r in records
    ]


def _chains(node: NodeSnapshot) -> list[Item]:
    out: list[Item] = []
    for label, ipt in (("iptables", node.iptables), ("ip6tables", node.ip6tables)):
        if ipt is None:
            continue
        for tname, table in ipt.tables.items():
            for cname, chain in table.chains.items():
                out.append({"source": label, "table": tname, "chain": cname, "rules": len(chain.rules)})
    if node.nftables is not None:
        for table in node.nftables.tables:
            tname = f"{table.family} {table.name}".strip()
            for chain in table.chains:
                out.append({"source": "nft", "table": tname, "chain": chain.name, "rules": None})
    return out


# --------------------------------------------------------------------------- identity


def _same_container_id(a: str, b: str) -> bool:
    if a == b:
        return True
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return len(short) >= 12 and long_.startswith(short)


def _diff_containers(before: list[Item], after: list[Item]) -> dict[str, list[Item]]:
    def unmatched(xs: list[Item], ys: list[Item]) -> list[Item]:
        return [x for x in xs if not any(_same_container_id(x["id"], y["id"]) for y in ys)]

    return {"added": unmatched(after, before), "removed": unmatched(before, after)}


def _diff_by(key: Callable[[Item], Any], before: list[Item], after: list[Item]) -> dict[str, list[Item]]:
    bkeys = {key(x) for x in before}
    akeys = {key(x) for x in after}
    return {
        "added": [x for x in after if key(x) not in bkeys],
        "removed": [x for x in before if key(x) not in akeys],
    }


_KEYS: dict[str, Callable[[Item], Any]] = {
    "pods": lambda p: (p["namespace"], p["name"], p["uid"]),
    "veth_pairs": lambda v: (v["host_ifname"], v["netns"]),
    "links": lambda link: link["name"],
    "services": lambda s: (s["name"], s["port"], s["protocol"]),
    "chains": lambda c: (c["source"], c["table"], c["chain"]),
}


def _collect(node: NodeSnapshot, cluster: Any, notes: list[str]) -> dict[str, list[Item]]:
    return {
        "containers": _containers(node),
        "sandboxes": _sandboxes(node),
        "pods": _pods(node),
        "veth_pairs": _veth_pairs(node, notes),
        "links": _links(node),
        "services": _services(node, cluster, notes),
        "chains": _chains(node),
    }


# which part of a node each kind comes from, and how to tell that part was collected at all
_SOURCES: dict[str, str] = {"containers": "containers", "sandboxes": "containers", "pods": "containers",
                            "veth_pairs": "network", "links": "network", "services": "rules", "chains": "rules"}


def _has(node: NodeSnapshot, source: str) -> bool:
    """Whether the node holds this part at all (an import of `docker ps` alone has no
    network; a live node whose runtime was unreachable has no containers)."""
    if source == "containers":
        return bool(node.containers) or any(st.name in ("cri", "docker") and st.ok for st in node.collectors)
    if source == "network":
        return node.node_netns() is not None
    return any(x is not None for x in (node.iptables, node.ip6tables, node.nftables, node.ipvs))


def diff_nodes(before: NodeSnapshot, after: NodeSnapshot, *, cluster_before: Any = None,
               cluster_after: Any = None) -> dict[str, Any]:
    """Added/removed records of one node (see the module docstring). A kind present on one
    side only (not collected, or not pasted, on the other) is not compared: a note says so
    instead of reporting everything as added or removed."""
    notes: list[str] = []
    b = _collect(before, cluster_before, notes)
    a = _collect(after, cluster_after, notes)
    out: dict[str, Any] = {"status": "compared", "not_compared": []}
    for kind in KINDS:
        src = _SOURCES[kind]
        hb, ha = _has(before, src), _has(after, src)
        if hb != ha:
            out[kind] = {"added": [], "removed": []}
            out["not_compared"].append(kind)
            notes.append(f"{kind}: not compared, the {src} part is only in {'AFTER' if ha else 'BEFORE'}")
            continue
        if kind in ("containers", "sandboxes"):
            out[kind] = _diff_containers(b[kind], a[kind])
        else:
            out[kind] = _diff_by(_KEYS[kind], b[kind], a[kind])
    for side, node in (("before", before), ("after", after)):
        if node.status != "ok":
            notes.append(f"{side}: node {node.status}" + (f": {node.error}" if node.error else ""))
    out["notes"] = list(dict.fromkeys(notes))
    return out


def _one_sided(node: NodeSnapshot, cluster: Any, side: str) -> dict[str, Any]:
    notes: list[str] = []
    recs = _collect(node, cluster, notes)
    out: dict[str, Any] = {"status": side}
    for kind in KINDS:
        out[kind] = {"added": recs[kind], "removed": []} if side == "added" else {"added": [], "removed": recs[kind]}
    out["notes"] = notes
    return out


def diff_snapshots(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """Per node: containers, sandboxes, pods, veth pairs, links, services and chains added
    and removed between ``before`` and ``after``. Nodes are matched by name."""
    bnames = [n.name for n in before.nodes]
    anames = [n.name for n in after.nodes]
    nodes: dict[str, Any] = {}
    for name in dict.fromkeys(bnames + anames):
        b, a = before.node(name), after.node(name)
        if b is not None and a is not None:
            nodes[name] = diff_nodes(b, a, cluster_before=before.cluster, cluster_after=after.cluster)
        elif a is not None:
            nodes[name] = _one_sided(a, after.cluster, "added")
        else:
            assert b is not None
            nodes[name] = _one_sided(b, before.cluster, "removed")
    summary = {
        name: {kind: [len(d[kind]["added"]), len(d[kind]["removed"])] for kind in KINDS}
        for name, d in nodes.items()
    }
    return {
        "nodes": nodes,
        "nodes_added": [n for n in anames if n not in bnames],
        "nodes_removed": [n for n in bnames if n not in anames],
        "summary": summary,
    }


def is_empty(diff: dict[str, Any]) -> bool:
    """True when nothing was added or removed anywhere."""
    return not diff["nodes_added"] and not diff["nodes_removed"] and all(
        not d[k]["added"] and not d[k]["removed"] for d in diff["nodes"].values() for k in KINDS
    )
