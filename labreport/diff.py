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
  (``docker ps`` prints 12 hex digits) equals a full id it is a prefix of; then, for the rest,
  (container name, pod, image): the same name in the same pod from the same image is the
  same container when the IDs differ only by a few characters — what OCR/PDF conversion does
  to a pasted ID (``bb38dc090ff7`` / ``3b638dc090ff7``); a note lists each such match;
- sandboxes: the same, restricted to ``is_sandbox``;
- pods: namespace/name/uid (a pod deleted and re-created under the same name is new);
- veth pairs: (host ifname, pod netns) — from the node's analysis (``NodeAnalysis.veth_pairs``),
  else (the matcher failed) the node namespace's veth links;
- links: the name, in the node's own namespace;
- services: decoded service name + port + protocol (``NodeAnalysis.services``);
- chains: (table, chain) of iptables / ip6tables and nftables.

Each side is read from its snapshot and its :class:`~labreport.analysis.model.Analysis`
(computed once by the caller, or here when not given): nothing is analyzed twice.
``container_changes(...)`` turns the container part into the typed Q5 view the report shows.

Pure: no I/O. The CLI (``labreport diff``) renders the result as text or JSON.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from pydantic import Field

from labreport.analysis.components import container_short_name
from labreport.analysis.model import Analysis, NodeAnalysis
from labreport.snapshot import Container, NodeSnapshot, Record, Snapshot

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
        "container_name": getattr(c, "container_name", None) or container_short_name(c.name or ""),
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


def _veth_pairs(node: NodeSnapshot, na: NodeAnalysis, notes: list[str]) -> list[Item]:
    failed = [w for w in na.warnings if w.startswith("veth: failed")]
    if not failed:
        return [
            {"host_ifname": p.host_ifname, "netns": p.netns, "pod_ifname": p.pod_ifname,
             "pod_ips": list(p.pod_ips), "pod": p.pod, "bridge": p.bridge}
            for p in na.veth_pairs
        ]
    notes.append(f"veth_pairs: matcher failed ({failed[0][len('veth: failed '):].strip('()')}); "
                 "host veths compared instead")
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


def _services(node: NodeSnapshot, na: NodeAnalysis, notes: list[str]) -> list[Item]:
    if node.iptables is None and node.ip6tables is None and node.nftables is None and node.ipvs is None:
        return []
    failed = [w for w in na.warnings if w.startswith("services:")]
    if failed and not na.services:
        notes.append(f"services: not compared ({failed[0]})")
        return []
    return [
        {"name": r.name, "cluster_ip": r.cluster_ip, "port": r.port, "protocol": r.protocol,
         "node_port": r.node_port,
         "endpoints": [e.address for e in (r.endpoints or [])]}
        for r in na.services
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


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance of two short strings, or ``limit + 1`` once it exceeds ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


def ocr_close(a: Optional[str], b: Optional[str]) -> bool:
    """Two printed IDs that differ only as OCR/PDF conversion damages them: the same length
    give or take a character or two, at most a third of the characters changed."""
    if not a or not b:
        return False
    if _same_container_id(a, b):
        return True
    n = min(len(a), len(b))
    if n < 8:
        return False
    limit = max(2, n // 3)
    return edit_distance(a[:n + 2], b[:n + 2], limit) <= limit


def _identity(x: Item) -> tuple[str, str]:
    return (str(x.get("container_name") or x.get("name") or ""), str(x.get("pod") or ""))


def _ocr_same(b: Item, a: Item) -> bool:
    """Same (name, pod) and image, and IDs that differ only by conversion noise."""
    if _identity(b) != _identity(a) or not _identity(a)[0] or bool(b.get("is_sandbox")) != bool(a.get("is_sandbox")):
        return False
    ib, ia = b.get("image") or "", a.get("image") or ""
    if ib and ia and not ocr_close(ib, ia) and ib != ia:
        return False
    return ocr_close(b.get("id"), a.get("id"))


def _diff_containers(before: list[Item], after: list[Item]) -> dict[str, Any]:
    matched_b: set[int] = set()
    matched_a: set[int] = set()
    for ai, a in enumerate(after):
        for bi, b in enumerate(before):
            if bi not in matched_b and _same_container_id(b["id"], a["id"]):
                matched_a.add(ai)
                matched_b.add(bi)
                break
    ocr: list[tuple[Item, Item]] = []
    by_identity: dict[tuple[str, str], list[int]] = {}
    for bi, b in enumerate(before):
        if bi not in matched_b:
            by_identity.setdefault(_identity(b), []).append(bi)
    for ai, a in enumerate(after):
        if ai in matched_a:
            continue
        for bi in by_identity.get(_identity(a), []):
            if bi not in matched_b and _ocr_same(before[bi], a):
                matched_a.add(ai)
                matched_b.add(bi)
                ocr.append((before[bi], a))
                break
    return {"added": [a for i, a in enumerate(after) if i not in matched_a],
            "removed": [b for i, b in enumerate(before) if i not in matched_b],
            "ocr_matched": [{"before": b["id"], "after": a["id"], "name": _identity(a)[0], "pod": _identity(a)[1]}
                            for b, a in ocr]}


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


def _collect(node: NodeSnapshot, na: NodeAnalysis, notes: list[str]) -> dict[str, list[Item]]:
    return {
        "containers": _containers(node),
        "sandboxes": _sandboxes(node),
        "pods": _pods(node),
        "veth_pairs": _veth_pairs(node, na, notes),
        "links": _links(node),
        "services": _services(node, na, notes),
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


class DiffNote(Record):
    """Why part of a node was not compared, or how records were matched (translated by the report)."""

    key: str  # not_compared / ocr_matched / node_status / matcher_failed / services_failed
    args: dict[str, str] = Field(default_factory=dict)
    text: str  # the same in English, as `labreport diff` prints it


def diff_nodes(before: NodeSnapshot, after: NodeSnapshot, before_na: Optional[NodeAnalysis] = None,
               after_na: Optional[NodeAnalysis] = None) -> dict[str, Any]:
    """Added/removed records of one node (see the module docstring). A kind present on one
    side only (not collected, or not pasted, on the other) is not compared: a note says so
    instead of reporting everything as added or removed."""
    if before_na is None or after_na is None:
        from labreport.analysis import analyze_node
        from labreport.analysis import services as services_mod

        before_na = before_na or analyze_node(before, None, services_mod)
        after_na = after_na or analyze_node(after, None, services_mod)
    notes: list[str] = []
    keyed: list[DiffNote] = []
    b = _collect(before, before_na, notes)
    a = _collect(after, after_na, notes)
    for n in notes:
        keyed.append(DiffNote(key="matcher_failed" if n.startswith("veth_pairs") else "services_failed",
                              args={"detail": n.split(" (", 1)[-1].rstrip(")") if " (" in n else n}, text=n))
    out: dict[str, Any] = {"status": "compared", "not_compared": []}
    for kind in KINDS:
        src = _SOURCES[kind]
        hb, ha = _has(before, src), _has(after, src)
        if hb != ha:
            out[kind] = {"added": [], "removed": []}
            out["not_compared"].append(kind)
            side = "AFTER" if ha else "BEFORE"
            text = f"{kind}: not compared, the {src} part is only in {side}"
            notes.append(text)
            keyed.append(DiffNote(key="not_compared", args={"kind": kind, "part": src, "side": side}, text=text))
            continue
        if kind in ("containers", "sandboxes"):
            out[kind] = _diff_containers(b[kind], a[kind])
            if kind == "containers":
                for m in out[kind]["ocr_matched"]:
                    text = (f"containers: {m['name']} in {m['pod'] or '?'} is the same container before and after "
                            f"(same name, pod and image; the IDs {m['before']} / {m['after']} differ only by a few "
                            f"characters, as a conversion damages them)")
                    notes.append(text)
                    keyed.append(DiffNote(key="ocr_matched", args={k: str(v) for k, v in m.items()}, text=text))
        else:
            out[kind] = _diff_by(_KEYS[kind], b[kind], a[kind])
    for side, node in (("before", before), ("after", after)):
        if node.status != "ok":
            text = f"{side}: node {node.status}" + (f": {node.error}" if node.error else "")
            notes.append(text)
            keyed.append(DiffNote(key="node_status", args={"side": side, "status": node.status,
                                                           "error": node.error or ""}, text=text))
    out["notes"] = list(dict.fromkeys(notes))
    seen: set[str] = set()
    out["note_keys"] = [n.model_dump() for n in keyed if not (n.text in seen or seen.add(n.text))]  # type: ignore[func-returns-value]
    return out


def _one_sided(node: NodeSnapshot, na: NodeAnalysis, side: str) -> dict[str, Any]:
    notes: list[str] = []
    recs = _collect(node, na, notes)
    out: dict[str, Any] = {"status": side}
    for kind in KINDS:
        out[kind] = {"added": recs[kind], "removed": []} if side == "added" else {"added": [], "removed": recs[kind]}
    out["notes"] = notes
    out["note_keys"] = []
    return out


def _analyses(before: Snapshot, after: Snapshot,
              analyses: Optional[tuple[Analysis, Analysis]]) -> tuple[Analysis, Analysis]:
    if analyses is not None:
        return analyses
    from labreport.analysis import analyze

    return analyze(before), analyze(after)


def diff_snapshots(before: Snapshot, after: Snapshot, *,
                   analyses: Optional[tuple[Analysis, Analysis]] = None) -> dict[str, Any]:
    """Per node: containers, sandboxes, pods, veth pairs, links, services and chains added
    and removed between ``before`` and ``after``. Nodes are matched by name. ``analyses``:
    each side's Analysis when the caller has it (else each snapshot is analyzed here, once)."""
    ab, aa = _analyses(before, after, analyses)
    bnames = [n.name for n in before.nodes]
    anames = [n.name for n in after.nodes]
    bna = {na.node: na for na in ab.nodes}
    ana = {na.node: na for na in aa.nodes}
    nodes: dict[str, Any] = {}
    for name in dict.fromkeys(bnames + anames):
        b, a = before.node(name), after.node(name)
        if b is not None and a is not None:
            nodes[name] = diff_nodes(b, a, bna.get(name) or NodeAnalysis(node=name),
                                     ana.get(name) or NodeAnalysis(node=name))
        elif a is not None:
            nodes[name] = _one_sided(a, ana.get(name) or NodeAnalysis(node=name), "added")
        else:
            assert b is not None
            nodes[name] = _one_sided(b, bna.get(name) or NodeAnalysis(node=name), "removed")
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


# --------------------------------------------------------------------------- Q5 view


class NewContainer(Record):
    """A container (or sandbox) present after but not before, with how it shares the pod's netns."""

    node: str
    id: str
    name: str
    short_name: str  # the container's name in the pod spec (docker: <name> of k8s_<name>_…)
    image: str = ""
    pod: str = ""
    is_sandbox: bool = False
    network_mode: str = ""
    shares_sandbox_netns: Optional[bool] = None
    netns: str = ""
    inferred: bool = False  # a sandbox not listed itself, known from its containers' POD ID


class ContainerChanges(Record):
    """What Q5 shows: the new containers per node, and the notes of the comparison."""

    new: list[NewContainer] = Field(default_factory=list)
    notes: list[DiffNote] = Field(default_factory=list)  # per node: "node" in args
    only_after: list[str] = Field(default_factory=list)  # nodes in AFTER only: not compared
    only_before: list[str] = Field(default_factory=list)


def _prefix_match(a: str, b: str) -> bool:
    return bool(a) and bool(b) and (a.startswith(b) or b.startswith(a))


def container_changes(diff: dict[str, Any], after: Snapshot) -> ContainerChanges:
    """The containers present after but not before, per compared node, with how each one
    shares the sandbox's network namespace; a new pod whose sandbox is not itself in the
    listing (``crictl ps`` lists containers only) gets its sandbox as an inferred row."""
    out = ContainerChanges()
    for node_name, nd in (diff.get("nodes") or {}).items():
        for n in nd.get("note_keys") or []:
            note = DiffNote.model_validate(n)
            note.args["node"] = node_name
            out.notes.append(note)
        status = nd.get("status", "compared")
        if status != "compared":
            (out.only_after if status == "added" else out.only_before).append(node_name)
            continue  # only in one snapshot: nothing to compare it with
        node = after.node(node_name)
        conts = node.containers if node else []
        by_id = {c.id: c for c in conts}
        sandbox_ids = [c.id for c in conts if c.is_sandbox]
        rows: list[NewContainer] = []
        for item in (nd.get("containers") or {}).get("added") or []:
            cid = str(item.get("id", ""))
            c = by_id.get(cid) or next((x for x in conts if _prefix_match(x.id, cid)), None)
            nm = (c.network_mode if c else item.get("network_mode")) or ""
            shares: Optional[bool] = None
            if c is not None and not c.is_sandbox:
                if nm.startswith("container:"):
                    target = nm.split(":", 1)[1]
                    shares = any(_prefix_match(s, target) for s in sandbox_ids)
                elif c.sandbox_id:
                    shares = True
            name = str(item.get("name") or (c.name if c else ""))
            rows.append(NewContainer(
                node=node_name, id=cid[:13], name=name,
                short_name=str(item.get("container_name") or container_short_name(name)),
                image=str(item.get("image") or (c.image if c else "") or ""), pod=str(item.get("pod") or ""),
                is_sandbox=bool(item.get("is_sandbox")), network_mode=nm, shares_sandbox_netns=shares,
                netns=(c.netns_path if c else "") or ""))
        # sandboxes of new pods that the listing did not show (crictl ps): from the POD ID
        listed = {r.pod for r in rows if r.is_sandbox}
        for r in list(rows):
            if r.is_sandbox or r.pod in listed:
                continue
            c = next((x for x in conts if _prefix_match(x.id, r.id)), None)
            if c is None or not c.sandbox_id:
                continue
            listed.add(r.pod)
            rows.append(NewContainer(node=node_name, id=c.sandbox_id[:13], name=c.pod_name or r.pod,
                                     short_name="pause", pod=r.pod, is_sandbox=True, inferred=True))
        out.new.extend(rows)
    out.new.sort(key=lambda c: (c.node, c.pod, not c.is_sandbox, c.short_name))
    return out


def is_empty(diff: dict[str, Any]) -> bool:
    """True when nothing was added or removed anywhere."""
    return not diff["nodes_added"] and not diff["nodes_removed"] and all(
        not d[k]["added"] and not d[k]["removed"] for d in diff["nodes"].values() for k in KINDS
    )
