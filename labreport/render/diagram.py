"""The topology diagram (Q6): per node its uplink, overlay device, bridge, veth pairs and
pods (containers inside, the sandbox marked), the link between the nodes, and the traffic
path drawn in red with numbered hops.

``build(snapshot, analysis, path, t)`` returns a :class:`Diagram` holding the DOT source
(Graphviz, built with the ``graphviz`` package) and a Mermaid equivalent. ``render(d, out)``
runs ``dot`` for SVG and PNG; when ``dot`` is not installed it says so (``DiagramResult.error``)
and the report falls back to the Mermaid diagram. A node with many pods is summarized
(the first ``MAX_PODS`` pods, always including the path's target, plus one "… and N more
pods" box) so the picture stays readable.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import graphviz

from labreport.analysis.components import container_short_name
from labreport.analysis.namespaces import SYSTEM_NAMESPACES
from labreport.analysis.model import Analysis, NodeAnalysis, Pod, TrafficPath, VethPair
from labreport.render import escape as _esc
from labreport.snapshot import Snapshot

MAX_PODS = 40  # more than this on a node: summarize
SHOW_PODS = 18  # how many to draw then
ROW = 6  # pods per row: more are stacked below, so a big node stays about as wide as 6 pods
FONT = "Noto Sans CJK SC,WenQuanYi Micro Hei,PingFang SC,Microsoft YaHei,Source Han Sans SC,DejaVu Sans,sans-serif"
PATH_COLOR = "#d62728"

Translate = Callable[..., str]


@dataclass
class Diagram:
    dot: str
    mermaid: str
    path_edges: int = 0  # how many red edges were drawn
    summarized: dict[str, int] = field(default_factory=dict)  # node -> pods not drawn


@dataclass
class DiagramResult:
    svg: Optional[str] = None
    png: Optional[bytes] = None
    error: Optional[str] = None  # why no image (dot missing, dot failed)


def _id(*parts: Any) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9]", "_", str(p)) for p in parts)


def _v4(addrs: list[str]) -> list[str]:
    return [a for a in addrs if ":" not in a]


def _pods_by_netns(na: NodeAnalysis) -> dict[str, Pod]:
    out: dict[str, Pod] = {}
    for p in na.pods:
        if p.netns:
            out[p.netns] = p
            out[p.netns.rsplit("/", 1)[-1]] = p
    return out


def _pod_for_veth(na: NodeAnalysis, vp: VethPair, by_netns: dict[str, Pod], by_key: dict[str, Pod]) -> Optional[Pod]:
    if vp.pod and vp.pod in by_key:
        return by_key[vp.pod]
    p = by_netns.get(vp.netns) or by_netns.get(vp.netns.rsplit("/", 1)[-1])
    if p is not None:
        return p
    for pod in na.pods:
        if pod.ip and any(a.split("/")[0] == pod.ip for a in vp.pod_ips):
            return pod
    return None


class _TextGraph(graphviz.Graph):  # type: ignore[misc]  # the graphviz package ships no type information
    """A graph whose labels and attribute values are always DOT text (escape.dot_text):
    never an HTML-like ``<...>`` label, never a link or a file (escape.DOT_FORBIDDEN).
    Subgraphs are of the same class (graphviz creates them with ``self.__class__``)."""

    def node(self, name: str, label: Optional[str] = None, _attributes: Any = None, **attrs: Any) -> None:
        super().node(name, _esc.dot_text(label) if label is not None else None, **_esc.dot_attrs(attrs))

    def edge(self, tail_name: str, head_name: str, label: Optional[str] = None, _attributes: Any = None,
             **attrs: Any) -> None:
        super().edge(tail_name, head_name, _esc.dot_text(label) if label is not None else None,
                     **_esc.dot_attrs(attrs))

    def attr(self, kw: Optional[str] = None, _attributes: Any = None, **attrs: Any) -> None:
        super().attr(kw, **_esc.dot_attrs(attrs))


class _Builder:
    def __init__(self, snapshot: Snapshot, analysis: Analysis, path: Optional[TrafficPath], t: Translate,
                 only: Optional[set[str]] = None, row: int = ROW) -> None:
        self.s, self.a, self.path, self.t = snapshot, analysis, path, t
        self.row = max(1, row)
        self.drawn = [na for na in analysis.nodes if only is None or na.node in only]
        self.g = _TextGraph("topology", engine="dot")
        self.g.attr(rankdir="TB", newrank="true", compound="true", fontname=FONT, fontsize="12", nodesep="0.3",
                    ranksep="0.45", bgcolor="white", pad="0.2")
        self.g.attr("node", fontname=FONT, fontsize="10", shape="box", style="rounded,filled", fillcolor="white",
                    color="#555555")
        self.g.attr("edge", fontname=FONT, fontsize="9", color="#777777")
        self.mm: list[str] = ["flowchart TB"]
        self.mm_edges: list[str] = []
        self.mm_red: list[int] = []
        self.mm_edge_count = 0
        self.elements: dict[tuple[str, str], str] = {}  # (node, device/chain name) -> diagram id
        self.summarized: dict[str, int] = {}
        self.path_edges = 0

    # ------------------------------------------------------------------ nodes
    def node_cluster(self, na: NodeAnalysis) -> None:
        t = self.t
        n = na.node
        snap = self.s.node(n)
        is_cp = any(c.name == "kube-apiserver" for c in na.components)
        title = f"{n} ({t('diagram.control_plane') if is_cp else t('diagram.worker')})"
        cid = _id("cluster", n)
        self.mm.append(f'  subgraph {cid}["{_mm(title)}"]')
        with self.g.subgraph(name=cid) as c:
            c.attr(label=title, style="rounded", color="#4a6fa5", penwidth="1.5", fontsize="13", margin="12")
            up = na.uplink
            up_id = _id(n, "uplink")
            if up:
                addr = ", ".join(_v4(up.addresses)) or "?"
                self._node(c, up_id, f"{up.name}\n{addr}", fillcolor="#dbe9f6", key=(n, up.name))
                self.elements[(n, "uplink")] = up_id
            else:
                self._node(c, up_id, f"{t('diagram.uplink_unknown')}", fillcolor="#eeeeee", style="rounded,dashed,filled")
                self.elements[(n, "uplink")] = up_id
            # overlay devices (not the pseudo-entries that list many veths)
            prev = up_id
            overlay_ids: list[str] = []
            for o in na.overlays:
                name = o.name
                if name.endswith("*") or name in ("cilium_net", "datapath") or o.type == "kube-proxy-ipvs":
                    continue
                if name in na.bridges and o.type == "weave":
                    continue  # weave's bridge: drawn as the bridge
                oid = _id(n, "dev", name)
                kind = o.kind or o.type or ""
                extra = f" VNI {o.vni}" if o.vni is not None else ""
                addr = ", ".join(_v4(o.addresses))
                self._node(c, oid, f"{name}\n{kind}{extra}" + (f"\n{addr}" if addr else ""), fillcolor="#fdebd0",
                           key=(n, name))
                self._edge(prev, oid, style="dashed", label=t("diagram.underlay") if prev == up_id else "")
                overlay_ids.append(oid)
                prev = oid
            # bridges
            bridge_ids: dict[str, str] = {}
            ns = snap.node_netns() if snap else None
            links = {l.name: l for l in (ns.links if ns else [])}
            for b in na.bridges:
                bid = _id(n, "dev", b)
                addr = ""
                if b in links:
                    addr = ", ".join(f"{a.local}/{a.prefixlen}" for a in links[b].addresses if a.family == "inet")
                is_weave = any(o.name == b and o.type == "weave" for o in na.overlays)
                kind = "weave bridge" if is_weave else t("diagram.bridge")
                self._node(c, bid, f"{b}\n{kind}" + (f"\n{addr}" if addr else ""), fillcolor="#d5f5e3", key=(n, b))
                bridge_ids[b] = bid
                self._edge(overlay_ids[-1] if overlay_ids else up_id, bid, style="dashed",
                           label=t("diagram.routing"))
            # netfilter chains on the path
            self.chain_nodes(c, n)
            # pods
            self.pods(c, na, bridge_ids, links)
        self.mm.append("  end")

    def chain_nodes(self, c: Any, n: str) -> None:
        if not self.path:
            return
        hops = [h for h in self.path.hops if h.node == n and h.kind in ("chain", "vmap", "numgen", "dnat", "ipvs")]
        if not hops:
            return
        cid = _id("cluster", n, "netfilter")
        mode = "netfilter"
        with c.subgraph(name=cid) as nf:
            nf.attr(label=f"{mode} (nat)", style="rounded,dashed", color="#aa8844", fontsize="10")
            client = _id(n, "client")
            self._node(nf, client, self.t("diagram.client", node=n), shape="note", fillcolor="#fff8dc")
            self.elements[(n, "@client")] = client
            for h in hops:
                hid = _id(n, "chain", h.where)
                label = h.where
                if h.kind == "dnat":
                    label = f"{h.where}\nDNAT → {self.path.target}"
                elif h.kind == "ipvs":
                    label = f"IPVS {h.where}\n→ {self.path.target}"
                self._node(nf, hid, label, shape="box", fillcolor="#fff3cd", fontsize="9", key=(n, "@" + h.where))

    def pods(self, c: Any, na: NodeAnalysis, bridge_ids: dict[str, str], links: dict[str, Any]) -> None:
        n = na.node
        t = self.t
        by_netns = _pods_by_netns(na)
        by_key = {p.key: p for p in na.pods}
        target_ip = None
        if self.path and self.path.target and self.path.to_node == n:
            target_ip = self.path.target.rsplit(":", 1)[0]
        wired: list[tuple[VethPair, Optional[Pod]]] = [(vp, _pod_for_veth(na, vp, by_netns, by_key))
                                                       for vp in na.veth_pairs]
        # the path's target first, then user pods, then system pods
        def prio(item: tuple[VethPair, Optional[Pod]]) -> tuple[int, str]:
            vp, pod = item
            hit = target_ip is not None and any(a.split("/")[0] == target_ip for a in vp.pod_ips)
            system = pod is not None and (pod.namespace in SYSTEM_NAMESPACES)
            return (0 if hit else (2 if system else 1), vp.host_ifname)
        wired.sort(key=prio)
        total = len(wired)
        shown = wired if total <= MAX_PODS else wired[:SHOW_PODS]
        used_pods = {id(p) for _, p in wired if p is not None}
        ids: list[tuple[str, str]] = []
        for i, (vp, pod) in enumerate(shown):
            ids.append(self.wired_pod(c, n, vp, pod, bridge_ids))
            if i >= self.row:  # start a new row under the pod self.row places before
                self.g.edge(ids[i - self.row][1], ids[i][0], style="invis")
        if total > len(shown):
            more = total - len(shown)
            self.summarized[n] = more
            mid = _id(n, "more")
            self._node(c, mid, t("diagram.more_pods", n=more), shape="box", style="rounded,dashed,filled",
                       fillcolor="#f4f4f4")
            first_bridge = next(iter(bridge_ids.values()), None)
            if first_bridge:
                self._edge(first_bridge, mid, style="dotted")
        # pods with no veth: host network, or their netns was not collected
        others = [p for p in na.pods if id(p) not in used_pods]
        if others:
            names = [p.name for p in others]
            head = names[:6]
            label = t("diagram.other_pods", n=len(names)) + "\n" + "\n".join(head)
            if len(names) > len(head):
                label += "\n" + t("diagram.and_more", n=len(names) - len(head))
            self._node(c, _id(n, "otherpods"), label, shape="box", style="rounded,dashed,filled", fillcolor="#f7f7f7",
                       fontsize="9")
            up = self.elements.get((n, "uplink"))
            if self.row == 1 and up:  # narrow (paper): the box above the uplink, not beside it
                self.g.edge(_id(n, "otherpods"), up, style="invis")
        # the path's target pod, when its veth is unknown
        if self.path and self.path.to_node == n and self.path.hops and self.path.hops[-1].key == "pod_unknown":
            tid = _id(n, "target")
            label = t("diagram.target_pod", ip=target_ip or "?")
            self._node(c, tid, label, shape="box", style="rounded,dashed,filled", fillcolor="#fde2e2",
                       key=(n, "@target"))
            first_bridge = next(iter(bridge_ids.values()), None)
            if first_bridge:
                self._edge(first_bridge, tid, style="dotted")

    def wired_pod(self, c: Any, n: str, vp: VethPair, pod: Optional[Pod], bridge_ids: dict[str, str]) -> tuple[str, str]:
        """Draw one pod with its veth pair; returns (host veth id, pod eth0 id)."""
        t = self.t
        hid = _id(n, "veth", vp.host_ifname)
        self._node(c, hid, f"{vp.host_ifname}\nifindex {vp.host_ifindex}", fillcolor="#eaf2f8", fontsize="9",
                   key=(n, vp.host_ifname))
        if vp.bridge and vp.bridge in bridge_ids:
            self._edge(bridge_ids[vp.bridge], hid)
        title = pod.key if pod else (vp.pod or vp.netns)
        pid = _id("cluster", n, "pod", vp.netns)
        self.mm.append(f'  subgraph {pid}["{_mm(t("diagram.pod") + " " + title)}"]')
        with c.subgraph(name=pid) as pc:
            pc.attr(label=f"{t('diagram.pod')} {title}", style="rounded,filled", fillcolor="#f8f9fa", color="#888888",
                    fontsize="10")
            eid = _id(n, "eth", vp.netns, vp.pod_ifname)
            ips = ", ".join(_v4(vp.pod_ips)) or "?"
            self._node(pc, eid, f"{vp.pod_ifname}@if{vp.host_ifindex}\n{ips}", fillcolor="#eaf2f8", fontsize="9",
                       key=(n, "@pod:" + vp.netns))
            if pod is not None:
                conts = pod.containers[:8]
                prev_kid: Optional[str] = None
                for k in conts:
                    kid = _id(n, "ctr", vp.netns, k.id or k.name)
                    if self.row == 1 and prev_kid is not None:  # narrow (paper): containers one above another
                        self.g.edge(prev_kid, kid, style="invis")
                    prev_kid = kid
                    if k.is_sandbox:
                        label = f"pause {(k.id or '')[:12]}\n({t('diagram.sandbox')})"
                        self._node(pc, kid, label, fillcolor="#e8e8e8", style="rounded,filled,dashed", fontsize="9")
                    else:
                        self._node(pc, kid, _short(k.name), fillcolor="#ffffff", fontsize="9")
                    self._edge(kid, eid, style="invis")
                if not any(k.is_sandbox for k in pod.containers):
                    sid = _id(n, "ctr", vp.netns, "sandbox")
                    short = f" {pod.sandbox_id[:13]}" if pod.sandbox_id else ""
                    self._node(pc, sid, f"pause{short}\n({t('diagram.sandbox_not_listed')})", fillcolor="#eeeeee",
                               style="rounded,dashed,filled", fontsize="9")
                    self._edge(sid, eid, style="invis")
        self.mm.append("  end")
        self._edge(hid, eid, label=t("diagram.veth_pair"), penwidth="1.8", color="#2e86c1")
        return hid, eid

    # ------------------------------------------------------------------ helpers
    def _node(self, c: Any, nid: str, label: str, key: Optional[tuple[str, str]] = None, **attrs: str) -> None:
        c.node(nid, label, **attrs)
        self.mm.append(f'    {nid}["{_mm(label)}"]')
        if key is not None:
            self.elements[key] = nid

    def _edge(self, a: str, b: str, label: str = "", **attrs: str) -> None:
        if attrs.get("style") == "invis":
            self.g.edge(a, b, **attrs)
            return
        self.g.edge(a, b, label=label, **attrs)
        arrow = "---" if not label else f"---|{_mm(label)}|"
        self.mm_edges.append(f"  {a} {arrow} {b}")
        self.mm_edge_count += 1

    # ------------------------------------------------------------------ the path
    def element_of(self, h: Any) -> Optional[str]:
        n = h.node
        key = getattr(h, "key", "")
        if h.kind in ("chain", "vmap", "numgen", "dnat", "ipvs"):
            return self.elements.get((n, "@" + h.where))
        if key in ("route", "route_unknown"):
            return self.elements.get((n, h.where)) or self.elements.get((n, h.where.split()[0]))
        if key in ("uplink_out", "uplink_in"):
            return self.elements.get((n, "uplink"))
        if key == "wire":
            return None  # drawn as the uplink-to-uplink edge (the next hop)
        if key in ("overlay_out", "overlay_in", "bridge", "veth", "ipvs_vip"):
            return self.elements.get((n, h.where))
        if key == "pod":
            args = getattr(h, "args", {}) or {}
            return self.elements.get((n, "@pod:" + str(args.get("netns", ""))))
        if key == "pod_unknown":
            return self.elements.get((n, "@target"))
        return None

    def draw_path(self) -> None:
        if not self.path or not self.path.hops:
            return
        start = self.elements.get((self.path.from_node or "", "@client"))
        cur = start
        cur_node = self.path.from_node
        pending: list[str] = []
        for h in self.path.hops:
            e = self.element_of(h)
            if e is None or e == cur:
                pending.append(str(h.n))
                continue
            crosses = h.node != cur_node or h.node is None  # between nodes: do not stretch the layout
            if cur is not None:
                label = ", ".join(pending + [str(h.n)])
                self.g.edge(cur, e, label=f" {label} ", color=PATH_COLOR, fontcolor=PATH_COLOR, penwidth="2.6",
                            dir="forward", arrowhead="normal", constraint="false" if crosses and self.row > 1 else "true",
                            fontsize="11")
                self.mm_edges.append(f"  {cur} -->|{_mm(label)}| {e}")
                self.mm_red.append(self.mm_edge_count)
                self.mm_edge_count += 1
                self.path_edges += 1
            cur = e
            cur_node = h.node
            pending = []

    def build(self) -> Diagram:
        for na in self.drawn:
            self.node_cluster(na)
        # the node network between the uplinks
        ups = [u for na in self.drawn if (u := self.elements.get((na.node, "uplink")))]
        if len(ups) >= 2:
            net = "node_network"
            self.g.node(net, self.t("diagram.node_network"), shape="ellipse", style="filled", fillcolor="#f0f0f0")
            self.mm.append(f'  {net}(["{_mm(self.t("diagram.node_network"))}"])')
            self.elements[("*", "network")] = net
            for u in ups:
                self._edge(u, net, penwidth="1.5", constraint="false")
        if self.path and self.path.hops and self.path.to_node is None and getattr(self.path.hops[-1], "key", "") == "pod_unknown":
            tid = "target_unknown"
            ip = (self.path.target or "?").rsplit(":", 1)[0]
            label = self.t("diagram.target_nowhere", ip=ip)
            self.g.node(tid, label, shape="box", style="rounded,dashed,filled", fillcolor="#fde2e2")
            self.mm.append(f'  {tid}["{_mm(label)}"]')
            self.elements[(None, "@target")] = tid  # type: ignore[index]
        self.draw_path()
        # a wire hop crosses the node network: draw it through the network node
        legend = self.t("diagram.legend", service=self.path.service or "?") if self.path and self.path.hops else ""
        if legend:
            self.g.attr(label=legend, labelloc="b", fontcolor=PATH_COLOR, fontsize="11")
        mm = self.mm + self.mm_edges
        for i in self.mm_red:
            mm.append(f"  linkStyle {i} stroke:{PATH_COLOR},stroke-width:3px,color:{PATH_COLOR}")
        return Diagram(dot=self.g.source, mermaid="\n".join(mm), path_edges=self.path_edges,
                       summarized=dict(self.summarized))


def _short(name: str) -> str:
    """The container's name in the pod spec (docker's k8s_<name>_<pod>_… → <name>)."""
    return container_short_name(name)


def _mm(s: str) -> str:
    return _esc.mermaid_text(s)


def build(snapshot: Snapshot, analysis: Analysis, path: Optional[TrafficPath], t: Translate,
          only: Optional[set[str]] = None, row: int = ROW) -> Diagram:
    """The topology of the nodes in ``only`` (default: every node of the analysis), ``row``
    pods side by side (on paper: fewer, so the page holds the drawing at a legible size)."""
    return _Builder(snapshot, analysis, path, t, only, row).build()


def dot_available() -> Optional[str]:
    return shutil.which("dot")


PNG_DPI = "110"


def _svg_at_72dpi(svg: str) -> str:
    """The SVG of a ``-Gdpi`` run as a plain run draws it (Graphviz scales the drawing by
    dpi/72 inside an unchanged viewBox): the size in points of the viewBox, scale 1."""
    m = re.search(r'<svg width="[^"]*" height="[^"]*"\s+viewBox="([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)"', svg)
    if not m:
        return svg
    w, h = float(m.group(3)), float(m.group(4))
    head = f'<svg width="{round(w)}pt" height="{round(h)}pt"  viewBox="{m.group(1)} {m.group(2)} {m.group(3)} {m.group(4)}"'
    svg = svg[:m.start()] + head + svg[m.end():]
    return re.sub(r'(<g id="[^"]*graph0" class="graph" transform=")scale\([\d.]+ [\d.]+\)', r"\1scale(1 1)", svg, count=1)


class PendingDiagrams:
    """``dot`` runs started by :func:`start_many`, one per diagram (SVG and PNG from each
    graph's one layout), running while the caller does other work; :meth:`wait` collects
    them (and removes their files)."""

    def __init__(self, diagrams: list[Diagram], timeout: float) -> None:
        self.timeout = timeout
        self.results: Optional[list[DiagramResult]] = None
        self.procs: list[tuple[Path, Optional[subprocess.Popen[bytes]], str]] = []
        self.tmp: Optional[tempfile.TemporaryDirectory[str]] = None
        self.started = time.monotonic()
        dot = dot_available()
        if dot is None:
            err = "Graphviz's `dot` is not installed (Debian/Ubuntu: apt-get install graphviz)"
            self.results = [DiagramResult(error=err) for _ in diagrams]
            return
        self.tmp = tempfile.TemporaryDirectory(prefix="labreport-dot-")
        for i, d in enumerate(diagrams):
            f = Path(self.tmp.name) / f"g{i}.dot"
            f.write_text(d.dot, "utf-8")
            try:
                proc: Optional[subprocess.Popen[bytes]] = subprocess.Popen(
                    [dot, f"-Gdpi={PNG_DPI}", "-Tsvg", "-Tpng", "-O", str(f)], stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                why = ""
            except OSError as exc:
                proc, why = None, f"cannot run dot: {exc}"
            self.procs.append((f, proc, why))

    def wait(self) -> list[DiagramResult]:
        if self.results is not None:
            return self.results
        out: list[DiagramResult] = []
        try:
            for f, proc, why in self.procs:
                if proc is None:
                    out.append(DiagramResult(error=why))
                    continue
                left = max(0.1, self.timeout - (time.monotonic() - self.started))
                try:
                    _o, err = proc.communicate(timeout=left)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.communicate()
                    out.append(DiagramResult(error=f"dot took longer than {self.timeout:.0f} s"))
                    continue
                why = err.decode("utf-8", "replace").strip()[:500]
                svg_f, png_f = f.with_name(f.name + ".svg"), f.with_name(f.name + ".png")
                if proc.returncode != 0 or not svg_f.exists():
                    out.append(DiagramResult(error=f"dot failed: {why}"))
                    continue
                r = DiagramResult(svg=_svg_at_72dpi(svg_f.read_text("utf-8")))
                if png_f.exists():
                    r.png = png_f.read_bytes()
                else:
                    r.error = f"dot -Tpng failed: {why[:300]}"
                out.append(r)
        finally:
            for _f, proc, _why in self.procs:  # a failure above: no dot left running
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if self.tmp is not None:
                self.tmp.cleanup()
        self.results = out
        return out


def start_many(diagrams: list[Diagram], *, timeout: float = 120.0) -> PendingDiagrams:
    """Start one ``dot`` per diagram at once (they run side by side, on as many cores as
    there are, and beside the caller's own work); ``.wait()`` gives their results in order."""
    return PendingDiagrams(diagrams, timeout)


def render_many(diagrams: list[Diagram], *, timeout: float = 120.0) -> list[DiagramResult]:
    """SVG and PNG of every diagram (one ``dot`` run per diagram, all started at once; each
    graph laid out once, both formats written from that layout)."""
    return start_many(diagrams, timeout=timeout).wait()


def render(d: Diagram, *, timeout: float = 60.0) -> DiagramResult:
    """SVG and PNG from the DOT source with Graphviz's ``dot`` (one run for both)."""
    return render_many([d], timeout=timeout)[0]


def inline_svg(svg: str) -> str:
    """The SVG without its XML prolog and DOCTYPE, for embedding in HTML: as wide as its
    natural size (pt) allows, never wider than the page, its aspect ratio kept (the viewBox)
    — Chromium otherwise prints a tall SVG scaled up and clipped."""
    i = svg.find("<svg")
    svg = svg[i:] if i >= 0 else svg
    m = re.match(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    if m:
        svg = (f'<svg style="width:100%;max-width:{m.group(1)}pt;height:auto" data-width="{m.group(1)}pt" '
               f'data-height="{m.group(2)}pt"' + svg[m.end():])
    return svg
