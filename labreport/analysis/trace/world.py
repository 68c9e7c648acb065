"""The datapath model of a snapshot: per node its namespace's addresses, routes, devices,
neighbours and FDB, veth pairs to pods, and its rule sets; across nodes, who owns each
address. Built once per snapshot (linear in its size); pure.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Optional

from labreport.analysis.trace import netfilter
from labreport.analysis.trace.addr import Net, in_net, ip_int, net
from labreport.analysis.trace.netfilter import HookEntry
from labreport.snapshot import CiliumServiceTable, IpRule, IpvsVirtualServer, Link, NodeSnapshot, Route, Snapshot

if TYPE_CHECKING:  # annotations only: analysis.model imports observed, which traces
    from labreport.analysis.model import Analysis, VethPair

BRIDGE_NAMES = ("cni0", "docker0", "cbr0", "weave", "kube-bridge")
VXLAN_NAMES = ("flannel.1", "vxlan.calico", "vxlan0", "flannel-v6.1", "weave")


@dataclass
class RouteEntry:
    net: Net
    route: Route

    @property
    def text(self) -> str:
        r = self.route
        parts = [r.dst]
        if r.type and r.type not in ("unicast",):
            parts.insert(0, r.type)
        if r.gateway:
            parts.append(f"via {r.gateway}")
        if r.dev:
            parts.append(f"dev {r.dev}")
        if r.onlink:
            parts.append("onlink")
        if r.src:
            parts.append(f"src {r.src}")
        return " ".join(parts)


@dataclass
class PodPlace:
    node: str
    ip: str
    pod: Optional[str] = None  # "ns/name"
    veth: Optional[VethPair] = None
    how: str = "veth"  # veth | pod | api


@dataclass
class NodeModel:
    name: str
    netns: str
    snap: NodeSnapshot
    local: frozenset[str] = frozenset()
    broadcast: frozenset[str] = frozenset()  # the subnets' broadcast addresses (delivered locally)
    links: dict[str, Link] = field(default_factory=dict)
    addr_of_dev: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    routes: list[RouteEntry] = field(default_factory=list)
    has_routes: bool = False
    has_links: bool = False
    other_tables: list[str] = field(default_factory=list)  # routing tables besides main (policy routing)
    tables: dict[str, list[RouteEntry]] = field(default_factory=dict)  # table → routes, longest prefix first
    rules: dict[str, list[IpRule]] = field(default_factory=dict)  # "ipv4"/"ipv6" → ip rules by priority
    rules_known: bool = False  # the namespace's ip rules were collected (else the kernel's defaults)
    neighbours: dict[str, str] = field(default_factory=dict)  # ip -> lladdr
    fdb: dict[str, str] = field(default_factory=dict)  # mac -> remote ip (vxlan)
    veth_by_host: dict[str, VethPair] = field(default_factory=dict)
    bridges: dict[str, list[str]] = field(default_factory=dict)
    uplink: Optional[str] = None
    primary: Optional[str] = None  # the node's own address on its uplink
    ipvs: list[IpvsVirtualServer] = field(default_factory=list)
    ipvs_mode: bool = False
    cilium: Optional[CiliumServiceTable] = None  # Cilium's service table (kube-proxy replacement), imported
    _hooks: dict[tuple[str, str], list[HookEntry]] = field(default_factory=dict)
    nft_entries: Any = None  # set by the nft adapter

    def hook_entries(self, hook: str, family: str) -> list[HookEntry]:
        key = (hook, family)
        got = self._hooks.get(key)
        if got is None:
            ipt = self.snap.iptables if family == "ipv4" else self.snap.ip6tables
            got = netfilter.iptables_entries(ipt, hook)
            if self.nft_entries is not None:
                got = got + self.nft_entries(hook, family, skip_iptables_tables=ipt is not None)
            got.sort(key=lambda e: netfilter.entry_order(hook, e))
            self._hooks[key] = got
        return got

    def has_rules(self) -> bool:
        return bool(self.snap.iptables or self.snap.ip6tables or self.snap.nftables or self.ipvs or self.cilium)

    def dev_kind(self, dev: Optional[str]) -> str:
        if not dev:
            return "unknown"
        link = self.links.get(dev)
        kind = link.kind if link is not None else None
        if kind in ("bridge",) or dev in self.bridges or (kind is None and dev in BRIDGE_NAMES):
            return "bridge"
        if kind == "vxlan" or (kind is None and dev in VXLAN_NAMES):
            return "vxlan"
        if kind in ("ipip", "gre", "sit") or (kind is None and dev == "tunl0"):
            return "ipip"
        if kind == "veth" or dev in self.veth_by_host or (kind is None and dev.startswith(("veth", "cali"))):
            return "veth"
        if dev == "lo":
            return "loopback"
        if kind == "dummy" or dev == "kube-ipvs0":
            return "dummy"
        return "device"

    def route_for(self, dst: str, table: str = "main") -> Optional[RouteEntry]:
        """The longest-prefix match for ``dst`` in one routing table (lowest metric on ties)."""
        v = ip_int(dst)
        if v is None:
            return None
        best: Optional[RouteEntry] = None
        for re_ in (self.routes if table == "main" else self.tables.get(table, ())):  # longest prefix first
            if re_.net[0] != v[0]:
                continue
            if in_net(dst, re_.net):
                if best is None or re_.net[2] > best.net[2] or (
                        re_.net[2] == best.net[2] and (re_.route.metric or 0) < (best.route.metric or 0)):
                    best = re_
                if best is not None and re_.net[2] < best.net[2]:
                    break
        return best

    def addr_on(self, dev: Optional[str]) -> Optional[str]:
        for ip, _plen in self.addr_of_dev.get(dev or "", []):
            if ":" not in ip:
                return ip
        return None


@dataclass
class World:
    snapshot: Snapshot
    nodes: dict[str, NodeModel] = field(default_factory=dict)
    node_of_addr: dict[str, str] = field(default_factory=dict)
    pods: dict[str, PodPlace] = field(default_factory=dict)  # pod ip -> where
    pod_ip_by_key: dict[str, str] = field(default_factory=dict)  # "ns/name" -> ip
    notes: list[str] = field(default_factory=list)

    _netns_routes: dict[tuple[str, str], Optional[list[RouteEntry]]] = field(default_factory=dict)

    def node(self, name: Optional[str]) -> Optional[NodeModel]:
        return self.nodes.get(name or "")

    def netns_routes(self, node: str, netns: str) -> Optional[list[RouteEntry]]:
        """The main routing table of the namespace ``netns`` (a pod's) as ``node`` collected it,
        longest prefix first, with the prefix routes its addresses make; None: not collected."""
        key = (node, netns)
        if key in self._netns_routes:
            return self._netns_routes[key]
        m = self.nodes.get(node)
        ns = next((n for n in m.snap.netns if n.name == netns or netns in n.aliases), None) if m else None
        out: Optional[list[RouteEntry]] = None
        if ns is not None and ns.routes:
            out = []
            for r in ns.routes:
                if r.table not in (None, "main", "254") or r.type in ("local", "broadcast", "multicast", "anycast"):
                    continue
                n = net(r.dst) if r.dst != "default" else (6 if r.family == "inet6" else 4, 0, 0)
                if n is not None:
                    out.append(RouteEntry(n, r))
            out.sort(key=lambda e: -e.net[2])
        self._netns_routes[key] = out
        return out


_TABLE_KEYS = {None: "main", "": "main", "254": "main", "255": "local", "253": "default", "0": "unspec"}


def table_key(table: Optional[str]) -> str:
    """One name per routing table: "main", "local", "default", else the number (or the
    rt_tables name) as printed."""
    return _TABLE_KEYS.get(table, table or "main")


def _node_model(node: NodeSnapshot, na: Any) -> NodeModel:
    ns = node.node_netns()
    m = NodeModel(name=node.name, netns=(ns.name if ns is not None else node.name), snap=node)
    local: set[str] = {"127.0.0.1", "::1"}
    bcast: set[str] = {"255.255.255.255"}
    if ns is not None:
        m.has_links = bool(ns.links)
        for link in ns.links:
            m.links[link.name] = link
            for a in link.addresses:
                local.add(a.local)
                if a.broadcast:
                    bcast.add(a.broadcast)
                m.addr_of_dev.setdefault(link.name, []).append((a.local, a.prefixlen))
            if link.vxlan is not None:
                for f in link.vxlan.fdb:
                    if f.dst:
                        m.fdb[f.mac.lower()] = f.dst
        for r in ns.routes:
            n = net(r.dst) if r.dst != "default" else (6 if r.family == "inet6" else 4, 0, 0)
            tkey = table_key(r.table)
            if r.type == "local" and r.dst and (n is None or n[2] == (32 if n[0] == 4 else 128)):
                local.add(r.dst.split("/")[0])
            if r.type == "broadcast" and r.dst:
                bcast.add(r.dst.split("/")[0])
            if tkey != "main":
                if tkey != "local" and r.table not in m.other_tables and r.table is not None:
                    m.other_tables.append(r.table)
                # another table's routes, for the ip rules (a `local` route there: delivered
                # here, e.g. TPROXY's `local default dev lo table 100`; the local table's
                # broadcast/multicast entries are the addresses' own)
                if n is not None and r.type not in ("broadcast", "multicast", "anycast"):
                    m.tables.setdefault(tkey, []).append(RouteEntry(n, r))
                continue
            if r.type in ("local", "broadcast", "multicast", "anycast"):
                continue
            if n is not None:
                m.routes.append(RouteEntry(n, r))
        m.routes.sort(key=lambda e: -e.net[2])
        for entries in m.tables.values():
            entries.sort(key=lambda e: -e.net[2])
        m.tables["main"] = m.routes
        m.has_routes = any(m.tables.values())
        if ns.rules:
            m.rules_known = True
            for rule in sorted(ns.rules, key=lambda r: r.priority):
                m.rules.setdefault("ipv6" if rule.family == "inet6" else "ipv4", []).append(rule)
        for nb in ns.neighbours:
            if nb.lladdr:
                m.neighbours[nb.dst] = nb.lladdr.lower()
    m.local = frozenset(local)
    m.broadcast = frozenset(bcast)
    if na is not None:
        m.bridges = dict(na.bridges)
        for vp in na.veth_pairs:
            m.veth_by_host[vp.host_ifname] = vp
        if na.uplink:
            m.uplink = na.uplink.name
    default = next((e for e in m.routes if e.net[2] == 0 and e.net[0] == 4), None)
    if default is not None and default.route.dev:
        m.uplink = m.uplink or default.route.dev
    if m.uplink:
        m.primary = (default.route.src if default is not None and default.route.src else None) or m.addr_on(m.uplink)
    if m.primary is None:
        for dev, addrs in m.addr_of_dev.items():
            if dev in ("lo",) or dev in BRIDGE_NAMES or dev in VXLAN_NAMES or dev.startswith(("veth", "cali", "kube-")):
                continue
            for ip, _p in addrs:
                v = ip_int(ip)
                if v and v[0] == 4:
                    m.primary = ip
                    break
            if m.primary:
                break
    if node.cilium is not None:
        m.cilium = node.cilium
    if node.ipvs is not None:
        m.ipvs = list(node.ipvs.virtual_servers)
    mode = na.proxy_mode.mode if na is not None else None
    m.ipvs_mode = bool(m.ipvs) and (mode == "ipvs" or node.info.kube_proxy_mode == "ipvs" or (
        node.iptables is None and node.nftables is None))
    return m


def _analysis_by_node(analysis: Optional[Analysis]) -> dict[str, Any]:
    """``analysis.node(name)`` for every node at once (the first of a name, as it finds):
    one dict, not a scan of the node list per node (500 nodes: 125,000 comparisons)."""
    out: dict[str, Any] = {}
    for na in analysis.nodes if analysis is not None else ():
        out.setdefault(na.node, na)
    return out


# (snapshot, analysis, [its world once built]) while ``shared_world`` runs (per thread and task)
_SHARED: ContextVar[Optional[tuple[Snapshot, Any, list[World]]]] = ContextVar("labreport_shared_world", default=None)


@contextmanager
def shared_world(snapshot: Snapshot, analysis: Analysis) -> Iterator[None]:
    """While the block runs, ``build_world`` of these very two objects builds their world once
    and returns that one world every time: ``analyze()``'s path, traffic and observed parts
    each ask for it, and the block covers only where the node analyses the world reads
    (veth pairs, pods, bridges, uplink, proxy mode) do not change. Tracing reads a world and
    never writes it (its caches — a namespace's routes, a hook's entries — are pure)."""
    token = _SHARED.set((snapshot, analysis, []))
    try:
        yield
    finally:
        _SHARED.reset(token)


def build_world(snapshot: Snapshot, analysis: Optional[Analysis] = None) -> World:
    shared = _SHARED.get()
    if shared is not None and shared[0] is snapshot and shared[1] is analysis:
        if not shared[2]:
            shared[2].append(_built(snapshot, analysis))
        return shared[2][0]
    return _built(snapshot, analysis)


def _built(snapshot: Snapshot, analysis: Optional[Analysis]) -> World:
    from labreport.perf import gc_paused

    with gc_paused():  # ~10^4 compiled rules, acyclic; see labreport.perf
        return _build_world(snapshot, analysis)


def _build_world(snapshot: Snapshot, analysis: Optional[Analysis]) -> World:
    w = World(snapshot=snapshot)
    from labreport.analysis.trace import iptables as ipt_mod
    from labreport.analysis.trace import nft as nft_mod

    by_name = _analysis_by_node(analysis)
    for node in snapshot.nodes:
        na = by_name.get(node.name)
        m = _node_model(node, na)
        if node.nftables is not None:
            m.nft_entries = nft_mod.entries_for(node.nftables, m)
        for ipt in (node.iptables, node.ip6tables):  # the long chains (KUBE-SERVICES …) compiled now, once
            if ipt is not None:
                ipt_mod.compile_long_chains(ipt)
        w.nodes[node.name] = m
        for ip in m.local:
            if ip not in ("127.0.0.1", "::1"):
                w.node_of_addr.setdefault(ip, node.name)
    if analysis is not None:
        for na in analysis.nodes:
            for vp in na.veth_pairs:
                for a in vp.pod_ips:
                    ip = a.split("/")[0]
                    w.pods.setdefault(ip, PodPlace(na.node, ip, vp.pod, vp, "veth"))
                    if vp.pod:
                        w.pod_ip_by_key.setdefault(vp.pod, ip)
            for pod in na.pods:
                if pod.ip:
                    w.pods.setdefault(pod.ip, PodPlace(na.node, pod.ip, pod.key, None, "pod"))
                    w.pod_ip_by_key.setdefault(pod.key, pod.ip)
    cluster = snapshot.cluster
    if cluster is not None:
        for p in cluster.pods:
            meta = p.get("metadata") or {}
            spec = p.get("spec") or {}
            st = p.get("status") or {}
            key = f"{meta.get('namespace')}/{meta.get('name')}"
            ips: list[Optional[str]] = [st.get("podIP")]
            ips += [x.get("ip") for x in st.get("podIPs") or [] if isinstance(x, dict)]
            host_net = bool(spec.get("hostNetwork"))
            for pip in ips:
                if not pip:
                    continue
                w.pod_ip_by_key.setdefault(key, pip)
                if host_net:
                    continue
                place = w.pods.get(pip)
                if place is None:
                    w.pods[pip] = PodPlace(spec.get("nodeName") or "", pip, key, None, "api")
                elif place.pod is None:
                    place.pod = key
        for n in cluster.nodes:
            name = (n.get("metadata") or {}).get("name")
            for a in (n.get("status") or {}).get("addresses") or []:
                if isinstance(a, dict) and a.get("type") in ("InternalIP", "ExternalIP") and a.get("address"):
                    if name:
                        w.node_of_addr.setdefault(a["address"], name)
    return w
