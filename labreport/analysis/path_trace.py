"""The report's traffic path (Q6, the red path in the diagram) from a trace outcome.

``path_from_trace(snapshot, analysis, src_node, dst_ip, dst_port, proto, want_endpoint)``
runs the datapath model (labreport.analysis.trace) from a process on ``src_node`` and
turns the chosen outcome's hops into the report's :class:`Hop` list, with the same
sentence keys the narrated path uses (output, services, svc, sep, route, overlay_out,
uplink_out, wire, uplink_in, overlay_in, bridge, veth, pod, nft_*, ipvs_*) plus ``masq`` and
``cilium_lb`` (Cilium's service lookup, kube-proxy replacement).
Returns None when no outcome was delivered (the caller then narrates what it can). Pure.
"""

from __future__ import annotations

from typing import Any, Optional

from labreport.analysis.model import Analysis, Hop, PathReply, TrafficPath
from labreport.analysis.probability import format_probability
from labreport.analysis.trace import Flow, build_world, run_flow
from labreport.analysis.trace.addr import split_hostport
from labreport.analysis.trace.model import Outcome, TraceHop, TraceResult
from labreport.analysis.trace.world import NodeModel, World
from labreport.snapshot import NodeSnapshot, Snapshot


def _ev(node: Optional[NodeSnapshot], *prefixes: str) -> Optional[str]:
    if node is None:
        return None
    for p in prefixes:
        for ev in node.evidence:
            if ev.id == p or ev.id.startswith(p):
                return ev.id
    return None


def _host(hostport: Optional[str]) -> Optional[str]:
    return split_hostport(hostport)[0] if hostport else hostport


def _fmt_prob(p: Optional[float]) -> str:
    return format_probability(None if p is None else min(p, 1.0), missing="1 (last rule)")


def _rule_prob(rule: Optional[str]) -> Optional[float]:
    toks = (rule or "").split()
    for i, t in enumerate(toks):
        if t == "--probability" and i + 1 < len(toks):
            try:
                return float(toks[i + 1])
            except ValueError:
                return None
    return None


def choose(res: TraceResult, want_endpoint: Optional[str], src_node: str) -> Optional[Outcome]:
    delivered = [o for o in res.outcomes if o.result == "delivered"]
    if not delivered:
        return None
    if want_endpoint:
        for o in delivered:
            if o.endpoint == want_endpoint:
                return o
    remote = [o for o in delivered if o.node and o.node != src_node and o.pod]
    return (remote or [o for o in delivered if o.pod] or delivered)[0]


def path_from_trace(snapshot: Snapshot, analysis: Analysis, src_node: str, dst_ip: str, dst_port: int,
                    proto: str = "tcp", want_endpoint: Optional[str] = None, service: Optional[str] = None,
                    world: Optional[World] = None) -> tuple[Optional[TrafficPath], TraceResult]:
    w = world or build_world(snapshot, analysis)
    flow = Flow(src=None, dst=dst_ip, dport=dst_port, proto=proto if proto in ("tcp", "udp", "sctp") else "tcp",  # type: ignore[arg-type]
                entry="process", entry_node=src_node)
    res = run_flow(w, flow, replies=True)
    out = choose(res, want_endpoint, src_node)
    if out is None:
        return None, res
    path = TrafficPath(service=service, from_node=src_node, to_node=out.node, target=out.endpoint,
                       target_pod=out.pod, traced=True, probability=out.probability, masquerade=out.masquerade)
    path.hops = _hops(snapshot, w, out, f"{dst_ip}:{dst_port}", proto)
    if out.reply is not None:
        r = out.reply
        # the client's port is the model's stand-in (the kernel picks it): the report names hosts only
        path.reply = PathReply(result=r.result, src=r.src, dst=_host(r.dst), seen_src=r.seen_src,
                               seen_dst=_host(r.seen_dst), expected_src=r.expected_src, reason=r.reason,
                               nat_nodes=list(dict.fromkeys(c.node for c in r.conntrack if c.nat)))
    path.complete = True
    if want_endpoint and out.endpoint != want_endpoint:
        # the endpoint the report meant to show was not delivered: say why instead of hiding it (issue 11)
        missed = next((o for o in res.outcomes if o.endpoint == want_endpoint), None)
        path.note = (f"the trace did not deliver to {want_endpoint}"
                     + (f" ({missed.result}: {missed.reason})" if missed is not None and missed.reason else "")
                     + f"; the path shows {out.endpoint} instead")
    return path, res


def _hops(snapshot: Snapshot, w: World, o: Outcome, vip: str, proto: str) -> list[Hop]:  # noqa: C901
    hops: list[Hop] = []

    def add(key: str, hop_node: Optional[str], hop_kind: str, hop_where: str, evidence: Optional[str], detail: str,
            **args: Any) -> None:
        args.setdefault("node", hop_node)
        hops.append(Hop(n=len(hops) + 1, node=hop_node, kind=hop_kind, where=hop_where, detail=detail,
                        evidence=evidence, key=key, args={k: ("" if v is None else v) for k, v in args.items()}))

    share = format_probability(o.probability, style="percent")
    svc_chain: Optional[str] = None
    tr = o.hops
    for i, h in enumerate(tr):
        if i == 0 and h.kind in ("device", "wire"):
            continue  # where the packet starts (the process, the pod's eth0, the outside client)
        node = snapshot.node(h.node or "")
        m = w.node(h.node)
        if h.kind == "netfilter":
            _netfilter_hop(add, h, node, vip, proto, share, o)
            if h.verdict and h.verdict.startswith(("jump KUBE-SVC-", "goto KUBE-SVC-")):
                svc_chain = h.verdict.split()[1]
            continue
        if h.kind == "route" and hops and hops[-1].key == "overlay_in":
            continue  # overlay_in already says how the other node routes it
        if h.kind == "route":
            # the table the trace's ip rule chose (main without policy routing)
            re_ = m.route_for(split_hostport(o.endpoint or "")[0], h.table or "main") if m is not None else None
            r = re_.route if re_ is not None else None
            add("route", h.node, "route", h.device or "?", _ev(node, "ip-route"), h.detail or "",
                dst=r.dst if r else "?", via=f"via {r.gateway} " if r is not None and r.gateway else "",
                dev=(h.device or "?") + (" onlink" if r is not None and r.onlink else ""), target=o.endpoint)
        elif h.kind == "encap" and i + 1 < len(tr) and tr[i + 1].kind == "wire":  # leaving this node
            after = w.node(tr[i + 2].node) if i + 2 < len(tr) else None
            remote = (after.primary if after is not None else None) or "?"
            add("overlay_out", h.node, "device", h.device or "?", _ev(node, "ip-addr", "ip-link"), h.detail or "",
                dev=h.device, kind=_kind(m, h.device), remote=remote)
        elif h.kind == "wire":
            up = m.uplink if m is not None else None
            src_addr = (m.primary if m is not None else None) or "?"
            nxt = tr[i + 1] if i + 1 < len(tr) else None
            other = w.node(nxt.node if nxt else None)
            add("uplink_out", h.node, "device", up or "uplink", _ev(node, "ip-addr"), "",
                dev=up or "uplink", addr=_addr(m, up))
            add("wire", None, "link", "node network", None, h.detail or "", src_node=h.node, src=src_addr,
                dst_node=other.name if other else "?", dst=(other.primary if other else None) or "?")
        elif h.kind in ("encap", "device") and i > 0 and tr[i - 1].kind == "wire":  # arriving on the other node
            up = m.uplink if m is not None else None
            add("uplink_in", h.node, "device", up or "uplink", _ev(node, "ip-addr"), "",
                dev=up or "uplink", addr=_addr(m, up))
            if h.kind == "encap":
                host = split_hostport(o.endpoint or "")[0]
                re_ = m.route_for(host) if m is not None else None
                add("overlay_in", h.node, "device", h.device or "?", _ev(node, "ip-addr"), h.detail or "",
                    dev=h.device, dst=re_.route.dst if re_ else host, bridge=re_.route.dev if re_ else "?")
        elif h.kind == "bridge" and i + 1 < len(tr) and tr[i + 1].kind == "veth" and tr[-1].kind == "deliver" \
                and i >= len(tr) - 4:
            add("bridge", h.node, "device", h.device or "?", _ev(node, "ip-addr"), h.detail or "",
                dev=h.device, addr=_addr(m, h.device, cidr=True))
        elif h.kind == "veth" and i == len(tr) - 2:
            vp = m.veth_by_host.get(h.device or "") if m is not None else None
            add("veth", h.node, "veth", h.device or "?", _ev(node, "ip-addr", "ip-link"), h.detail or "",
                dev=h.device, ifindex=vp.host_ifindex if vp else "?",
                pod_if=f"{vp.pod_ifname}@if{vp.host_ifindex}" if vp else "?")
        elif h.kind == "deliver":
            if o.pod is None and h.netns == (m.netns if m else None):
                add("pod_unknown", h.node, "pod", h.device or "?", None, h.detail or "",
                    ip=split_hostport(o.endpoint or "")[0])
                continue
            vp = m.veth_by_host.get(tr[i - 1].device or "") if (m is not None and i > 0) else None
            add("pod", h.node, "pod", h.device or "eth0", _ev(node, f"ip-addr:{h.netns}", "ip-addr"), h.detail or "",
                pod_if=h.device, netns=h.netns, ip=", ".join(vp.pod_ips) if vp else split_hostport(o.endpoint or "")[0],
                pod=o.pod or "?")
        elif h.kind == "cilium":
            ev = (node.cilium.evidence_id if node is not None and node.cilium is not None else None) or _ev(node, "cilium")
            add("cilium_lb", h.node, "cilium", "cilium service lb", ev, h.detail or "", vip=vip, target=o.endpoint,
                share=share, rule=h.rule or "")
        elif h.kind == "ipvs":
            add("ipvs_vip", h.node, "device", "kube-ipvs0", _ev(node, "ip-addr"), "", vip=vip)
            add("ipvs_real", h.node, "ipvs", vip, _ev(node, "ipvsadm"), h.detail or "", vip=vip, target=o.endpoint,
                scheduler=(h.detail or "").split(")")[0].split()[-1] if h.detail else "rr")
    del svc_chain
    return hops


def _netfilter_hop(add: Any, h: TraceHop, node: Optional[NodeSnapshot], vip: str, proto: str, share: str,
                   o: Outcome) -> None:
    verdict = h.verdict or ""
    target = verdict.split(" ", 1)[1] if " " in verdict else ""
    if h.backend == "iptables":
        ev = (node.iptables.evidence_id if node is not None and node.iptables else None) or _ev(node, "iptables")
        rule = f"-A {h.chain} {h.rule}" if h.rule is not None else ""
        if h.hook == "OUTPUT" and h.table == "nat" and target == "KUBE-SERVICES":
            add("output", h.node, "chain", h.chain or "OUTPUT", ev, f"nat {h.chain} → KUBE-SERVICES", vip=vip, rule=rule)
        elif h.chain == "KUBE-SERVICES" and h.table == "nat" and verdict.startswith(("jump ", "goto ")):
            add("services", h.node, "chain", "KUBE-SERVICES", ev, f"KUBE-SERVICES → {target}", vip=vip, proto=proto,
                chain=target, rule=rule)
        elif (h.chain or "").startswith(("KUBE-SVC-", "KUBE-SVL-")) and target.startswith("KUBE-SEP-"):
            add("svc", h.node, "chain", h.chain, ev, f"{h.chain} → {target}", chain=h.chain,
                prob=_fmt_prob(_rule_prob(h.rule)), share=share, rule=rule)
        elif verdict.startswith("DNAT "):
            add("sep", h.node, "dnat", h.chain, ev, f"{h.chain}: {verdict}", chain=h.chain, target=target, rule=rule)
        elif verdict in ("MASQUERADE",) or verdict.startswith("SNAT "):
            add("masq", h.node, "chain", h.chain, ev, f"{h.chain}: {verdict}", chain=h.chain, rule=rule,
                hook=h.hook, table=h.table)
        return
    ev = (node.nftables.evidence_id if node is not None and node.nftables else None) or _ev(node, "nft")
    rule = h.rule or ""
    if h.hook == "OUTPUT" and verdict == "jump services":
        add("nft_hook", h.node, "chain", h.chain or "nat-output", ev, f"{h.chain} → services", rule=rule)
    elif h.chain == "services" and verdict.startswith(("goto ", "jump ")):
        add("nft_vmap", h.node, "vmap", "services", ev, f"services → {target}", vip=vip, chain=target, rule=rule)
    elif rule.startswith("numgen ") and verdict.startswith(("goto ", "jump ")):
        n = rule.split("mod", 1)[1].split()[0] if "mod" in rule else "?"
        add("nft_numgen", h.node, "numgen", h.chain, ev, f"{h.chain} → {target}", chain=h.chain, n=n, share=share,
            rule=rule)
    elif verdict.startswith("DNAT "):
        add("nft_endpoint", h.node, "dnat", h.chain, ev, f"{h.chain}: {verdict}", chain=h.chain, target=target,
            rule=rule)
    elif verdict == "MASQUERADE" or verdict.startswith("SNAT "):
        add("masq", h.node, "chain", h.chain, ev, f"{h.chain}: {verdict}", chain=h.chain, rule=rule, hook=h.hook,
            table=h.table)


def _kind(m: Optional[NodeModel], dev: Optional[str]) -> str:
    if m is None or not dev:
        return "overlay"
    k = m.dev_kind(dev)
    link = m.links.get(dev)
    if k == "vxlan":
        vni = link.vxlan.vni if link is not None and link.vxlan is not None else None
        return f"VXLAN, VNI {vni}" if vni is not None else "VXLAN"
    if k == "ipip":
        return "IP-in-IP"
    return k


def _addr(m: Optional[NodeModel], dev: Optional[str], cidr: bool = False) -> str:
    if m is None or not dev:
        return "?"
    for ip, plen in m.addr_of_dev.get(dev, []):
        if ":" not in ip:
            return f"{ip}/{plen}"
    return "?"
