"""The path of a packet from a node through a Service's cluster IP to a pod (Q6/Q8).

``trace_path(snapshot, analysis, service=None, from_node=None) -> TrafficPath`` lists the
hops in order, each with the node it is on, what it is (a netfilter chain, the DNAT, a
routing decision, a device, the wire between nodes, the veth, the pod) and the record it
rests on:

iptables: nat OUTPUT → KUBE-SERVICES → KUBE-SVC-… (random pick) → KUBE-SEP-… (DNAT) →
routing (the pod CIDR's route: flannel.1 / weave / tunl0 / cni0) → the node's uplink →
the remote node's uplink → its overlay device → its bridge → the host veth → pod eth0.
nftables: nat-output → services (service-ips vmap) → service-… chain → numgen → endpoint-…
(dnat) → the same routing. ipvs: the cluster IP on kube-ipvs0 → IPVS virtual server →
real server (masq) → the same routing.

Every hop carries ``key`` (which sentence the report uses) and ``args`` (the values for
it), besides an English ``detail``. A hop whose record was not collected says so
(``inferred`` True and the reason) instead of being left out. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import itertools
from typing import Any, Callable, Iterable, Optional

from labreport.analysis.model import (
    Analysis, Endpoint, Hop, NodeAnalysis, NodeDevice, Overlay, ServiceRecord, TrafficPath, VethPair,
)
from labreport.analysis.namespaces import is_system_record
from labreport.analysis.probability import format_probability
from labreport.snapshot import NodeSnapshot, Route, Snapshot


# the English sentence of each hop key; the report's catalogs have the same keys (path.hop.*)
DETAILS: dict[str, str] = {
    "output": "a process on {node} connects to {vip}; nat OUTPUT sends it to KUBE-SERVICES",
    "services": "KUBE-SERVICES matches {vip} ({proto}) and jumps to {chain}",
    "svc": "{chain} picks an endpoint at random: this rule matches with probability {prob} (share {share})",
    "sep": "{chain} DNATs the packet to {target}",
    "nft_hook": "the nat-output base chain sends it to the services chain",
    "nft_vmap": "services looks up {vip} in the service-ips verdict map and jumps to {chain}",
    "nft_numgen": "{chain} picks an endpoint with numgen random mod {n} (share {share})",
    "nft_endpoint": "{chain} DNATs the packet to {target}",
    "ipvs_vip": "{vip} is a local address (on kube-ipvs0), so IPVS sees the packet",
    "ipvs_nodeport": "{vip} is a NodePort on the node's own address, so IPVS receives the packet",
    "ipvs_real": "IPVS virtual server {vip} ({scheduler}) forwards to real server {target} (masq = DNAT)",
    "cilium_lb": "Cilium's BPF service lookup (kube-proxy replacement, before netfilter) translates {vip} to the "
                 "backend {target} (share {share})",
    "route": "routing on {node}: {dst} → {via}dev {dev}",
    "route_unknown": "routing on {node}: routes not collected; {target} is reached through {dev}",
    "overlay_out": "{dev} ({kind}) encapsulates the packet towards {remote}",
    "uplink_out": "{dev} ({addr}) sends it onto the node network",
    "wire": "node network: {src_node} ({src}) → {dst_node} ({dst})",
    "uplink_in": "{dev} ({addr}) on {node} receives it",
    "overlay_in": "{dev} decapsulates it; routing on {node}: {dst} dev {bridge}",
    "bridge": "bridge {dev} ({addr}) forwards it to the port of the pod",
    "veth": "host veth {dev} (ifindex {ifindex}) is the peer of the pod's {pod_if}",
    "pod": "{pod_if} in the pod's network namespace ({netns}) has {ip}: the pod {pod} receives it",
    "pod_unknown": "the pod with {ip} on {node} receives it (its veth was not collected)",
    "masq": "{chain} ({table} {hook}) rewrites the source address (masquerade): the receiver sees the node's "
            "address on the outgoing device",
}


def _ip(s: str) -> Optional[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return ipaddress.ip_address(s.split("/")[0])
    except ValueError:
        return None


def _net(s: str) -> Optional[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    if s in ("default",):
        return ipaddress.ip_network("0.0.0.0/0")
    try:
        return ipaddress.ip_network(s, strict=False)
    except ValueError:
        return None


def split_hostport(addr: str) -> tuple[str, Optional[int]]:
    """``10.244.1.3:8080`` → ("10.244.1.3", 8080); ``[fd00::1]:80`` too."""
    a = addr.strip()
    if a.startswith("["):
        host, _, rest = a[1:].partition("]")
        port = rest.lstrip(":")
        return host, int(port) if port.isdigit() else None
    if a.count(":") == 1:
        host, port = a.split(":")
        return host, int(port) if port.isdigit() else None
    return a, None


def _matches(rec: ServiceRecord, wanted: str) -> bool:
    """The one service matcher (labreport.analysis.service_match)."""
    from labreport.analysis.service_match import matches

    return matches(rec, wanted)


def service_names(analysis: Analysis) -> list[str]:
    seen: dict[str, None] = {}
    for na in analysis.nodes:
        for rec in na.services:
            seen.setdefault(rec.name, None)
    return list(seen)


class _Where:
    """Where an IP lives: node, and (when known) the veth pair and pod."""

    def __init__(self, node: Optional[str], veth: Optional[VethPair] = None, pod: Optional[str] = None,
                 via: str = "") -> None:
        self.node, self.veth, self.pod, self.via = node, veth, pod, via
        self.remote = False  # set by the trace: on another node than the client


class _Index:
    """Where each known IP lives, built once per trace (linear in the snapshot's size)."""

    def __init__(self, snapshot: Snapshot, analysis: Analysis) -> None:
        self.by_ip: dict[str, _Where] = {}
        for na in analysis.nodes:  # 1. a pod interface with exactly this address
            for vp in na.veth_pairs:
                for a in vp.pod_ips:
                    self.by_ip.setdefault(a.split("/")[0], _Where(na.node, vp, vp.pod, "veth"))
        for na in analysis.nodes:  # 2. a pod known to have this IP
            for pod in na.pods:
                if pod.ip:
                    self.by_ip.setdefault(pod.ip, _Where(na.node, None, pod.key, "pod"))
        if snapshot.cluster is not None:  # 3. the API says where the pod runs
            for p in snapshot.cluster.pods:
                st = p.get("status") or {}
                node = (p.get("spec") or {}).get("nodeName")
                if not node or snapshot.node(node) is None:
                    continue
                meta = p.get("metadata") or {}
                ips = [st.get("podIP")] + [x.get("ip") for x in st.get("podIPs") or [] if isinstance(x, dict)]
                for pip in ips:
                    if pip:
                        self.by_ip.setdefault(pip, _Where(node, None, f"{meta.get('namespace')}/{meta.get('name')}",
                                                          "api"))
        # 4. a node whose bridge subnet holds it
        self.subnets: list[tuple[Any, str, str]] = []
        for n in snapshot.nodes:
            ns = n.node_netns()
            if ns is None:
                continue
            for link in ns.links:
                if not (link.name in ("cni0", "weave", "docker0", "cbr0") or link.kind == "bridge"):
                    continue
                for addr in link.addresses:
                    if addr.family == "inet" and addr.prefixlen < 32:
                        net = _net(f"{addr.local}/{addr.prefixlen}")
                        if net is not None:
                            self.subnets.append((net, n.name, link.name))

    def best_score(self, src_name: str) -> int:
        """The best score (``_choose_service``) an endpoint located here can have, seen
        from ``src_name``."""
        best = 1  # an address no one holds
        for w in self.by_ip.values():
            remote = w.node is not None and w.node != src_name
            best = max(best, 1 + (2 if remote else 0) + (1 if w.veth is not None else 0))
        for _nw, node, _dev in self.subnets:
            best = max(best, 3 if node is not None and node != src_name else 1)
        return best

    def locate(self, ip: str) -> _Where:
        w = self.by_ip.get(ip)
        if w is not None:
            return _Where(w.node, w.veth, w.pod, w.via)
        target = _ip(ip) if self.subnets else None
        if target is not None:
            for net, node, dev in self.subnets:
                if net.version == target.version and target in net:
                    return _Where(node, None, None, f"subnet of {dev}")
        return _Where(None)


def _route_for(routes: list[Route], ip: str) -> Optional[Route]:
    target = _ip(ip)
    if target is None:
        return None
    best: Optional[Route] = None
    best_len = -1
    for r in routes:
        if r.table not in (None, "main", "254") or r.type in ("local", "broadcast", "blackhole", "unreachable"):
            continue
        net = _net(r.dst)
        if net is None or net.version != target.version or target not in net:
            continue
        if net.prefixlen > best_len:
            best, best_len = r, net.prefixlen
    return best


def _overlay(na: Optional[NodeAnalysis], name: Optional[str] = None) -> Optional[Overlay]:
    if na is None:
        return None
    for o in na.overlays:
        if name is None and o.type in ("flannel", "weave", "calico", "cilium") and o.name not in (
                "cali*", "vethwe*", "cilium_net", "datapath"):
            return o
        if name is not None and o.name == name:
            return o
    return None


def _addr_of(na: Optional[NodeAnalysis], dev: Optional[NodeDevice]) -> str:
    if not dev:
        return "?"
    addrs = [a for a in dev.addresses if ":" not in a]
    return addrs[0] if addrs else "?"


def _bridge_of(node: NodeSnapshot, na: Optional[NodeAnalysis], vp: Optional[VethPair]) -> Optional[str]:
    if vp is not None and vp.bridge:
        return vp.bridge
    if na is not None:
        for b in ("cni0", "weave", "docker0", "cbr0"):
            if b in na.bridges:
                return b
        if na.bridges:
            return next(iter(na.bridges))
    return None


def _link_addr(node: NodeSnapshot, name: str) -> str:
    ns = node.node_netns()
    if ns is None:
        return "?"
    for link in ns.links:
        if link.name == name:
            for a in link.addresses:
                if a.family == "inet":
                    return f"{a.local}/{a.prefixlen}"
    return "?"


def _ev(node: Optional[NodeSnapshot], *prefixes: str) -> Optional[str]:
    if node is None:
        return None
    for p in prefixes:
        for ev in node.evidence:
            if ev.id == p or ev.id.startswith(p + ":") or ev.id.startswith(p):
                return ev.id
    return None


def _fmt_prob(p: Optional[float]) -> str:
    """A rule's probability in a hop: None is kube-proxy's last rule (taken always)."""
    return format_probability(None if p is None else min(p, 1.0), missing="1 (last rule)")


def _choose_from(snapshot: Snapshot, analysis: Analysis, from_node: Optional[str]) -> Optional[str]:
    if from_node:
        return from_node
    for na in analysis.nodes:
        if any(c.name == "kube-apiserver" for c in na.components):
            return na.node
    for n in snapshot.nodes:
        if "master" in n.name or "control" in n.name:
            return n.name
    for na in analysis.nodes:
        if na.services:
            return na.node
    return snapshot.nodes[0].name if snapshot.nodes else None


def _choose_service(recs: list[ServiceRecord], service: Optional[str],
                    where: Callable[[Endpoint], _Where],
                    ceiling: int = 4) -> tuple[Optional[ServiceRecord], Optional[Endpoint]]:
    """The service (and endpoint) to trace: the first with the best-placed endpoint (on
    another node, with its veth). ``ceiling`` is the best score any endpoint can have
    (``_Index.best_score``): the first endpoint that has it is the one, the rest are not
    looked at (a 10,000-Service node whose pods are not in the snapshot: the first)."""
    cands: Iterable[ServiceRecord]
    if service:
        cands = [r for r in recs if _matches(r, service)]
    else:
        user = (r for r in recs if not is_system_record(r) and r.endpoints)
        first = next(user, None)
        if first is not None:
            cands = itertools.chain((first,), user)
        else:
            cands = [r for r in recs if r.endpoints] or list(recs)
    best: tuple[int, Optional[ServiceRecord], Optional[Endpoint]] = (-1, None, None)
    first_rec: Optional[ServiceRecord] = None
    for rec in cands:
        if first_rec is None:
            first_rec = rec
        for ep in rec.endpoints or []:
            w = where(ep)
            score = (2 if w.node is not None and w.remote else 0) + (1 if w.veth is not None else 0) + 1
            if score > best[0]:
                best = (score, rec, ep)
                if score >= ceiling:  # nothing can be better
                    return rec, ep
        if best[1] is None and rec.endpoints is not None and not rec.endpoints:
            best = (0, rec, None)
    if best[1] is None and first_rec is not None:
        return first_rec, None
    return best[1], best[2]


def trace_path(snapshot: Snapshot, analysis: Analysis, service: Optional[str] = None,
               from_node: Optional[str] = None) -> TrafficPath:
    """The hop-by-hop path from ``from_node`` (default: the control-plane node) through
    ``service``'s cluster IP (default: a user service whose endpoint is on another node)
    to the pod. Never raises on missing data: the path is marked incomplete with a note."""
    src_name = _choose_from(snapshot, analysis, from_node)
    path = TrafficPath(service=None, from_node=src_name)
    if src_name is None:
        path.note = "no nodes in the snapshot"
        return path
    src = snapshot.node(src_name)
    src_na = analysis.node(src_name)
    if src is None or src_na is None:
        path.note = f"no node named {src_name!r} in the snapshot"
        return path
    recs = list(src_na.services)
    rules_node = src_name
    if not recs:
        for na in analysis.nodes:
            if na.services:
                recs, rules_node = list(na.services), na.node
                break
    if not recs:
        path.note = "no kube-proxy service rules were collected on any node"
        return path

    cache: dict[str, _Where] = {}
    index = _Index(snapshot, analysis)
    whys: dict[str, tuple[Optional[str], dict[str, Any]]] = {}

    def _why(text: str, key: str, **args: Any) -> str:
        whys[text] = (key, args)
        return text

    def where(ep: Endpoint) -> _Where:
        host, _ = split_hostport(ep.address)
        if host not in cache:
            w = index.locate(host)
            w.remote = w.node is not None and w.node != src_name
            cache[host] = w
        return cache[host]

    rec, ep = _choose_service(recs, service, where, index.best_score(src_name))
    if rec is not None and service and ep is not None:
        ep = _endpoint_named(rec, service) or ep
    if rec is None:
        traced = _traced_to_address(snapshot, analysis, src_name, service) if service else None
        if traced is not None:
            return traced
        path.note = f"no service {service!r} in the rules of {rules_node}" if service else "no service to trace"
        return path
    traced_note = ""
    if ep is not None and (rec.cluster_ip and rec.port):
        from labreport.analysis.path_trace import path_from_trace

        tp, res = path_from_trace(snapshot, analysis, rules_node, rec.cluster_ip, rec.port, rec.protocol,
                                  want_endpoint=ep.address, service=rec.name)
        if tp is not None:
            _format_details(tp)
            return tp
        why = next((o.reason for o in res.outcomes if o.reason), None)
        traced_note = f" The trace through the model stopped: {why}" if why else ""
    path.service = rec.name
    rnode = snapshot.node(rules_node) or src
    if rules_node != src_name:
        path.from_node = rules_node
        src_name, src, src_na = rules_node, rnode, analysis.node(rules_node)
    hops: list[Hop] = []

    def add(key: str, hop_node: Optional[str], hop_kind: str, where_: str, evidence: Optional[str] = None,
            inferred: Optional[str] = None, **args: Any) -> None:
        args.setdefault("node", hop_node)
        try:
            detail = DETAILS[key].format(**args)
        except (KeyError, IndexError):
            detail = key
        why_key, why_args = whys.get(inferred or "", (None, {}))
        if inferred:
            detail += f" (inferred: {inferred})"
        hops.append(Hop(n=len(hops) + 1, node=hop_node, kind=hop_kind, where=where_, detail=detail, evidence=evidence,
                        key=key, args={k: ("" if v is None else v) for k, v in args.items()}, inferred=inferred,
                        why_key=why_key, why_args=why_args))

    vip = f"{rec.cluster_ip}:{rec.port}" if rec.cluster_ip else (rec.name)
    if ep is None:
        path.hops = hops
        path.note = (f"{rec.name} has no endpoints: kube-proxy rejects the traffic" if rec.no_endpoints
                     else f"{rec.name}: its endpoints are not in the collected rules")
        return path
    target = ep.address
    path.target = target
    ipt_ev = (src.iptables.evidence_id if src.iptables else None) or _ev(src, "iptables-save", "iptables")
    mode = rec.mode
    shares = ep.probability
    share_s = format_probability(shares, style="percent", missing="?")
    if mode == "nftables":
        nft_ev = (src.nftables.evidence_id if src.nftables else None) or _ev(src, "nft")
        chain = rec.chains.get("svc") or rec.chains.get("service") or next(iter(rec.chains.values()), "service-…")
        add("nft_hook", src_name, "chain", "nat-output", nft_ev)
        add("nft_vmap", src_name, "vmap", "services", nft_ev, vip=vip, chain=chain)
        n = len(rec.endpoints or [])
        add("nft_numgen", src_name, "numgen", chain, nft_ev, chain=chain, n=n, share=share_s)
        add("nft_endpoint", src_name, "dnat", ep.chain or "endpoint-…", nft_ev, chain=ep.chain or "endpoint-…",
            target=target)
    elif mode == "cilium":  # Cilium's BPF service lookup (kube-proxy replacement): no netfilter rule
        cil_ev = (src.cilium.evidence_id if src.cilium is not None else None) or _ev(src, "cilium")
        add("cilium_lb", src_name, "cilium", "cilium service lb", cil_ev, vip=vip, target=target, share=share_s,
            rule=next((e for e in rec.evidence if rec.cluster_ip and f"{rec.cluster_ip}:" in e), ""))
    elif mode == "ipvs":
        ipvs_ev = (src.ipvs.evidence_id if src.ipvs else None) or _ev(src, "ipvsadm")
        if rec.cluster_ip:
            add("ipvs_vip", src_name, "device", "kube-ipvs0", _ev(src, "ip-addr"), vip=vip)
        else:  # a NodePort: the node's own address
            add("ipvs_nodeport", src_name, "device", vip, _ev(src, "ip-addr"), vip=vip)
        add("ipvs_real", src_name, "ipvs", vip, ipvs_ev, vip=vip, target=target,
            scheduler=rec.chains.get("scheduler", "rr"))
    else:
        out_rule = None
        if src.iptables is not None:
            nat = src.iptables.tables.get("nat")
            if nat is not None and "OUTPUT" in nat.chains:
                for r in nat.chains["OUTPUT"].rules:
                    if "KUBE-SERVICES" in r.spec:
                        out_rule = f"-A OUTPUT {r.spec}"
                        break
        add("output", src_name, "chain", "OUTPUT", ipt_ev, None if out_rule else _why("the nat OUTPUT chain was not collected", "no_output"),
            vip=vip, rule=out_rule or "")
        svc_chain = rec.chains.get("svc") or "KUBE-SVC-…"
        add("services", src_name, "chain", "KUBE-SERVICES", ipt_ev, vip=vip, proto=rec.protocol, chain=svc_chain,
            rule=_rule_line(rec, "KUBE-SERVICES", rec.cluster_ip))
        add("svc", src_name, "chain", svc_chain, ipt_ev, chain=svc_chain, prob=_fmt_prob(ep.rule_probability),
            share=share_s, rule=_rule_line(rec, svc_chain, ep.chain))
        add("sep", src_name, "dnat", ep.chain or "KUBE-SEP-…", ipt_ev, chain=ep.chain or "KUBE-SEP-…", target=target,
            rule=_rule_line(rec, ep.chain or "KUBE-SEP", "DNAT"))

    host, _port = split_hostport(target)
    w = where(ep)
    dst_name = w.node
    path.to_node = dst_name
    path.target_pod = w.pod or ep.pod
    dst = snapshot.node(dst_name) if dst_name else None
    dst_na = analysis.node(dst_name) if dst_name else None
    complete = True

    # routing on the source node
    src_ns = src.node_netns()
    route = _route_for(src_ns.routes, host) if src_ns is not None else None
    remote = dst_name is not None and dst_name != src_name
    src_overlay = _overlay(src_na)
    dst_overlay = _overlay(dst_na)
    if route is not None:
        via = f"via {route.gateway} " if route.gateway else ""
        flags = " onlink" if route.onlink else ""
        add("route", src_name, "route", route.dev or "?", _ev(src, "ip-route"), dst=route.dst, via=via,
            dev=(route.dev or "?") + flags, target=host)
        out_dev = route.dev
    else:
        any_overlay = src_overlay or dst_overlay
        guess = (any_overlay.name if any_overlay else None) if remote else _bridge_of(src, src_na, None)
        out_dev = guess
        add("route_unknown", src_name, "route", guess or "?", None, _why(f"no `ip route` from {src_name}", "no_routes", node=src_name),
            target=host, dev=guess or "?")
        complete = False

    if remote:
        ov = _overlay(src_na, out_dev) if out_dev else None
        if ov is None and out_dev and src_overlay and out_dev == src_overlay.name:
            ov = src_overlay
        if ov is None and route is None and src_overlay is None and dst_overlay is not None:
            ov = dst_overlay  # the same CNI runs on every node
        dst_uplink = dst_na.uplink if dst_na else None
        src_uplink = src_na.uplink if src_na else None
        remote_addr = _addr_of(dst_na, dst_uplink).split("/")[0] if dst_uplink else "?"
        if ov is not None:
            add("overlay_out", src_name, "device", ov.name, _ev(src, "ip-addr", "ip-link"),
                None if src_na and _overlay(src_na, ov.name) else _why(f"no device list from {src_name}",
                                                                             "no_devices", node=src_name),
                dev=ov.name, kind=_overlay_kind(ov), remote=remote_addr)
        if src_uplink:
            add("uplink_out", src_name, "device", src_uplink.name, _ev(src, "ip-addr"),
                dev=src_uplink.name, addr=_addr_of(src_na, src_uplink))
        else:
            add("uplink_out", src_name, "device", "uplink", None,
                _why(f"no device list from {src_name}", "no_devices", node=src_name),
                dev="uplink", addr="?")
            complete = False
        src_addr = _addr_of(src_na, src_uplink).split("/")[0] if src_uplink else "?"
        add("wire", None, "link", "node network", None, src_node=src_name, src=src_addr, dst_node=dst_name,
            dst=remote_addr)
        if dst_uplink:
            add("uplink_in", dst_name, "device", dst_uplink.name, _ev(dst, "ip-addr"),
                dev=dst_uplink.name, addr=_addr_of(dst_na, dst_uplink))
        else:
            add("uplink_in", dst_name, "device", "uplink", None,
                _why(f"no device list from {dst_name}", "no_devices", node=dst_name), dev="uplink",
                addr="?")
            complete = False
        bridge = _bridge_of(dst, dst_na, w.veth) if dst is not None else None
        if dst_overlay is not None:
            dst_ns = dst.node_netns() if dst is not None else None
            droute = _route_for(dst_ns.routes, host) if dst_ns is not None else None
            add("overlay_in", dst_name, "device", dst_overlay.name, _ev(dst, "ip-addr"),
                None if droute else _why(f"no `ip route` from {dst_name}; the pod subnet is on {bridge or '?'}",
                                         "no_dst_routes", node=dst_name, bridge=bridge or "?"),
                dev=dst_overlay.name, dst=(droute.dst if droute else host), bridge=bridge or "?")
    else:
        bridge = _bridge_of(src, src_na, w.veth)
    target_node = dst if remote else src
    if bridge and target_node is not None and dst_overlay is not None and bridge == dst_overlay.name:
        pass  # weave: the overlay device is the bridge; no separate bridge hop
    elif bridge:
        add("bridge", dst_name or src_name, "device", bridge, _ev(target_node, "ip-addr"),
            dev=bridge, addr=_link_addr(target_node, bridge) if target_node is not None else "?")
    if w.veth is not None:
        vp = w.veth
        add("veth", dst_name, "veth", vp.host_ifname, _ev(target_node, "ip-addr", "ip-link"), dev=vp.host_ifname,
            ifindex=vp.host_ifindex, pod_if=f"{vp.pod_ifname}@if{vp.host_ifindex}")
        add("pod", dst_name, "pod", vp.pod_ifname, _ev(target_node, f"ip-addr:{vp.netns}", "ip-addr"),
            pod_if=vp.pod_ifname, netns=vp.netns, ip=", ".join(vp.pod_ips) or host, pod=vp.pod or w.pod or "?")
    else:
        add("pod_unknown", dst_name, "pod", host, None, None, ip=host, node=dst_name or "?")
        complete = False
    if dst_name is None:
        complete = False
        path.note = f"which node holds {host} is not in the snapshot"
    path.hops = hops
    path.complete = complete and not any(getattr(h, "inferred", None) for h in hops)
    if traced_note:
        path.note = ((path.note or "") + traced_note).strip()
    return path


def _format_details(tp: TrafficPath) -> None:
    for h in tp.hops:
        try:
            h.detail = DETAILS[h.key or ""].format(**h.args)
        except (KeyError, IndexError, ValueError):
            pass


def _endpoint_named(rec: ServiceRecord, word: str) -> Optional[Endpoint]:
    """The endpoint a pod IP (or IP:port) names, when the word is one."""
    host, port = split_hostport(word)
    for e in rec.endpoints or ():
        eh, ep_port = split_hostport(e.address)
        if eh == host and (port is None or port == ep_port):
            return e
    return None


def _traced_to_address(snapshot: Snapshot, analysis: Analysis, src_name: str, word: str) -> Optional[TrafficPath]:
    """``--path IP:PORT`` / ``NODE:PORT`` that names no Service port: trace to it as it is."""
    from labreport.analysis.path_trace import path_from_trace
    from labreport.analysis.trace import build_world
    from labreport.analysis.trace.resolve import ResolveError, resolve_dst

    world = build_world(snapshot, analysis)
    try:
        tgt = resolve_dst(world, analysis, word, None)
    except ResolveError:
        return None
    tp, _res = path_from_trace(snapshot, analysis, src_name, tgt.ip, tgt.port, tgt.proto or "tcp",
                               service=tgt.service.name if tgt.service else tgt.label, world=world)
    if tp is not None:
        _format_details(tp)
    return tp


def _overlay_kind(o: Overlay) -> str:
    t = o.type
    if t == "flannel":
        vni = o.vni
        return f"VXLAN, VNI {vni}" if vni is not None else "VXLAN"
    if t == "weave":
        return "weave router / fast datapath"
    if t == "calico":
        return "IP-in-IP" if o.name == "tunl0" else str(o.kind or "calico")
    return str(o.kind or t or "overlay")


def _rule_line(rec: ServiceRecord, chain: Optional[str], needle: Optional[str]) -> str:
    """The rule of ``chain`` (containing ``needle``) among the lines the service was decoded from."""
    if not chain:
        return ""
    for line in rec.evidence:
        if f"-A {chain} " in line and (not needle or needle in line):
            return line
    return ""
