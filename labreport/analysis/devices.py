"""A node's own network as the report lists it (Q6): each link with its role in the pod
network, the main IPv4 routes, how many kube-proxy rules/chains the node holds, and
whether it is a control-plane node. Pure: no I/O; reads the snapshot and the node's
analysis (veth pairs, bridges, overlays, uplink)."""

from __future__ import annotations

from typing import Any

from labreport.analysis.model import DeviceRow, IpRuleRow, NodeAnalysis, RouteRow
from labreport.analysis.trace.world import table_key
from labreport.parsers.ip_rule import is_default, rule_parts
from labreport.perf import trusted_factory
from labreport.snapshot import NodeSnapshot

CONTROL_PLANE = ("kube-apiserver", "etcd", "kube-scheduler")


def _get(o: Any, key: str) -> Any:
    """A field of an overlay/uplink record (a dict today, a typed model once it is one)."""
    return o.get(key) if isinstance(o, dict) else getattr(o, key, None)


def is_control_plane(na: NodeAnalysis) -> bool:
    return any(c.name in CONTROL_PLANE for c in na.components) or any(
        (p.name or "").startswith(("kube-apiserver", "etcd-")) for p in na.pods)


# DeviceRow / RouteRow from the link's and route's validated fields, unvalidated (in field order)
_device_row = trusted_factory(DeviceRow, ("name", "kind", "role", "master", "addresses", "state", "mac", "mtu",
                                          "peer"))
_route_row = trusted_factory(RouteRow, ("dst", "via", "dev", "proto", "scope", "onlink"))


def devices(node: NodeSnapshot, na: NodeAnalysis) -> list[DeviceRow]:
    ns = node.node_netns()
    if ns is None:
        return []
    overlay = {_get(o, "name") for o in na.overlays}
    uplink = _get(na.uplink, "name") if na.uplink else None
    veth_hosts = {vp.host_ifname: vp for vp in na.veth_pairs}
    out = []
    for link in ns.links:
        kind = link.kind
        role = ""
        if link.name == "lo":
            role = "loopback"
        elif uplink and link.name == uplink:
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
        out.append(_device_row(
            link.name + (f"@if{link.peer_ifindex}" if link.peer_ifindex is not None else ""),
            kind or ("veth" if role == "veth" else ""), role, link.master or "",
            [f"{a.local}/{a.prefixlen}" for a in link.addresses], link.state or "", link.mac or "", link.mtu, peer))
    return out


def routes(node: NodeSnapshot) -> list[RouteRow]:
    ns = node.node_netns()
    if ns is None:
        return []
    out = []
    for r in ns.routes:
        if r.family != "inet" or r.table not in (None, "main", "254") or r.type in ("local", "broadcast"):
            continue
        out.append(_route_row(r.dst, r.gateway or "", r.dev or "", r.protocol or "", r.scope or "", bool(r.onlink)))
    return out


def ip_rules(node: NodeSnapshot) -> list[IpRuleRow]:
    """The node namespace's ip rules that are not the kernel's defaults (none: only those)."""
    ns = node.node_netns()
    if ns is None:
        return []
    counts: dict[str, int] = {}
    for r in ns.routes:
        key = table_key(r.table)
        counts[key] = counts.get(key, 0) + 1
    out = []
    for rule in sorted(ns.rules, key=lambda r: (r.family != "inet", r.priority)):
        if is_default(rule):
            continue
        selector, action = rule_parts(rule)
        out.append(IpRuleRow(family="IPv6" if rule.family == "inet6" else "IPv4", priority=rule.priority,
                             selector=selector, action=action,
                             table_routes=counts.get(table_key(rule.table), 0) if rule.action == "lookup" else 0))
    return out


def _nft_chain_count(table: Any) -> int:
    chains = _get(table, "chains")
    return len(chains) if isinstance(chains, (list, dict)) else 0


def rule_counts(node: NodeSnapshot) -> dict[str, int]:
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
        c["nft_chains"] = sum(_nft_chain_count(t) for t in node.nftables.tables)
    if node.ipvs is not None:
        c["ipvs_services"] = len(node.ipvs.virtual_servers)
    return c


def describe_node(node: NodeSnapshot, na: NodeAnalysis) -> None:
    """Fill the node's report views into its analysis."""
    na.control_plane = is_control_plane(na)
    na.devices = devices(node, na)
    na.routes = routes(node)
    na.ip_rules = ip_rules(node)
    na.rule_counts = rule_counts(node)
