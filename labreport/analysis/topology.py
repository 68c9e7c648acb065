"""The node's own network devices (Q6): bridges and their ports, overlay devices
(flannel VXLAN, weave, calico, cilium) and the uplink (the default route's device).

Pure: reads the node's kind="node" namespace only.
"""

from __future__ import annotations

from typing import Any, Optional

from labreport.analysis.model import Overlay, OverlayFdb, Uplink
from labreport.snapshot import Link, NetNamespace, NodeSnapshot, Route


def _addrs(link: Link) -> list[str]:
    return [f"{a.local}/{a.prefixlen}" for a in link.addresses]


def _base(link: Link) -> dict[str, Any]:
    return {"name": link.name, "ifindex": link.ifindex, "kind": link.kind, "addresses": _addrs(link),
            "mac": link.mac or None, "mtu": link.mtu or None, "state": link.state or None}


def _vxlan(link: Link) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if link.vxlan is not None:
        v = link.vxlan
        d.update({"vni": v.vni, "local": v.local, "port": v.port, "dev": v.dev, "remote": v.remote or None,
                  "group": v.group or None})
        d["fdb"] = [OverlayFdb(mac=f.mac, dst=f.dst, flags=list(f.flags)) for f in v.fdb]
    return d


def describe(node: NodeSnapshot) -> tuple[dict[str, list[str]], list[Overlay], Optional[Uplink]]:
    """(bridges: {bridge: [port names]}, overlays: [device descriptions], uplink or None)."""
    ns = node.node_netns()
    if ns is None:
        return {}, [], None
    links = ns.links
    by_name = {l.name: l for l in links}
    bridges: dict[str, list[str]] = {}
    for l in links:
        if l.kind == "bridge":
            bridges.setdefault(l.name, [])
    for l in links:
        if l.master:
            # `ip link` without -d shows no kind: a device that is another's master is a
            # bridge unless we know it is something else (bond, vrf, openvswitch datapath)
            m = by_name.get(l.master)
            if m is not None and m.kind not in (None, "bridge"):
                continue
            bridges.setdefault(l.master, []).append(l.name)
    overlays = _overlays(ns, bridges)
    uplink = _uplink(ns, by_name)
    if uplink is None and not ns.routes:
        uplink = _guess_uplink(links, bridges, overlays)
    return bridges, overlays, uplink


def _overlays(ns: NetNamespace, bridges: dict[str, list[str]]) -> list[Overlay]:
    out: list[dict[str, Any]] = []
    links = ns.links
    names = {l.name for l in links}
    for l in links:
        n = l.name
        if n.startswith("flannel.") or (l.kind == "vxlan" and n.startswith("flannel")):
            d = _base(l)
            d.update({"type": "flannel", "kind": l.kind or "vxlan",
                      "role": "flannel's VXLAN device: pod traffic for other nodes' subnets is "
                              "encapsulated here (UDP, VNI) and sent to their uplink"})
            d.update(_vxlan(l))
            out.append(d)
        elif n == "weave":
            d = _base(l)
            ports = bridges.get("weave", [])
            d.update({"type": "weave", "kind": l.kind or "bridge", "ports": ports,
                      "role": "weave net's bridge: the pods' veths and weave's router (vethwe-*) join here"})
            out.append(d)
        elif n in ("datapath",) and "weave" in names:
            d = _base(l)
            d.update({"type": "weave", "kind": l.kind or "openvswitch",
                      "role": "weave's fast datapath (Open vSwitch kernel datapath)"})
            out.append(d)
        elif n.startswith("vxlan-6784") or (n.startswith("vxlan-") and "weave" in names):
            d = _base(l)
            d.update({"type": "weave", "kind": l.kind or "vxlan",
                      "role": "weave's fast-datapath VXLAN device towards the other nodes"})
            d.update(_vxlan(l))
            out.append(d)
        elif n == "tunl0":
            d = _base(l)
            d.update({"type": "calico", "kind": l.kind or "ipip",
                      "role": "calico's IP-in-IP tunnel: pod traffic to other nodes is encapsulated here"})
            out.append(d)
        elif n == "vxlan.calico":
            d = _base(l)
            d.update({"type": "calico", "kind": l.kind or "vxlan",
                      "role": "calico's VXLAN device towards the other nodes"})
            d.update(_vxlan(l))
            out.append(d)
        elif n in ("cilium_host", "cilium_net", "cilium_vxlan", "cilium_geneve"):
            d = _base(l)
            d.update({"type": "cilium", "kind": l.kind,
                      "role": {"cilium_host": "cilium's gateway device for this node's pods",
                               "cilium_net": "the peer of cilium_host",
                               }.get(n, "cilium's tunnel device towards the other nodes")})
            d.update(_vxlan(l))
            out.append(d)
        elif n == "kube-ipvs0":
            d = _base(l)
            d.update({"type": "kube-proxy-ipvs", "kind": l.kind or "dummy",
                      "role": "kube-proxy (IPVS mode) puts every cluster IP on this dummy device"})
            out.append(d)
    cali = [l.name for l in links if l.name.startswith("cali") and l.name != "calico"]
    if cali:
        out.append({"name": "cali*", "type": "calico", "kind": "veth", "ports": cali,
                    "role": "calico's routed pod veths (no bridge: one /32 route per pod)"})
    vethwe = [l.name for l in links if l.name.startswith("vethwe")]
    if vethwe and "weave" not in names:
        out.append({"name": "vethwe*", "type": "weave", "kind": "veth", "ports": vethwe,
                    "role": "weave's router end of the weave bridge"})
    return [Overlay(**d) for d in out]


def _default_route(routes: list[Route]) -> Optional[Route]:
    best: Optional[Route] = None
    for r in routes:
        if r.family != "inet" or r.dst not in ("default", "0.0.0.0/0"):
            continue
        if r.table not in (None, "main", "254"):
            continue
        if best is None or (r.metric or 0) < (best.metric or 0):
            best = r
    return best


def _uplink(ns: NetNamespace, by_name: dict[str, Link]) -> Optional[Uplink]:
    r = _default_route(ns.routes)
    if r is None or not r.dev:
        return None
    link = by_name.get(r.dev)
    d: dict[str, Any] = {"name": r.dev, "addresses": []}
    if link is not None:
        d.update(_base(link))
    return Uplink(**d, gateway=r.gateway)


def _guess_uplink(links: list[Link], bridges: dict[str, list[str]],
                  overlays: list[Overlay]) -> Optional[Uplink]:
    """No routes were collected (pasted `ip addr`): the uplink is the one device left with
    a global IPv4 address once loopback, bridges, overlays and veths are set aside."""
    skip = set(bridges) | {o.name for o in overlays}
    cands = []
    for l in links:
        if l.name in skip or l.name == "lo" or l.master or l.peer_ifindex is not None:
            continue
        if l.kind not in (None, "device", "ether") or "LOOPBACK" in l.flags:
            continue
        if any(a.family == "inet" and (a.scope in (None, "global")) for a in l.addresses):
            cands.append(l)
    if len(cands) != 1:
        return None
    return Uplink(**_base(cands[0]), gateway=None,
                  guessed="no routes collected: the only device with a global IPv4 address besides bridges, "
                  "overlays and veths")
