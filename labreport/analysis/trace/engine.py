"""The simulator: a packet enters a namespace and moves hook by hook, route by route,
device by device, until it is delivered to a socket, dropped, rejected, or the snapshot
cannot say (unknown, with what is missing). Forks at probabilistic rules; every outcome has
its probability and its hops. Pure: no I/O.

On its way the first packet leaves a conntrack entry in every node it crosses (the tuple it
entered with, the tuple it left with). ``run_flow(..., replies=True)`` then sends each
delivered outcome's answer back (:class:`_ReplyRun`, :func:`trace_reply`): from the
endpoint's namespace, through the same hooks, where each node's entry decides the packet's
conntrack state and which NAT conntrack reverses, to the client — or not.
"""

from __future__ import annotations

from typing import Any, Optional

from labreport.analysis.trace.addr import hostport, in_net, ip_int
from labreport.analysis.trace.model import CtEntry, Flow, HopKind, Outcome, Reply, TraceHop, TraceResult
from labreport.analysis.trace.netfilter import run_hook
from labreport.analysis.trace.packet import CtRecord, Pkt, Tuple4
from labreport.analysis.trace import policy
from labreport.analysis.services_cilium import lookup
from labreport.analysis.trace.world import NodeModel, PodPlace, RouteEntry, World
from labreport.perf import trusted_model
from labreport.snapshot import IpvsVirtualServer

MAX_NODES = 6


class _Run:
    reply_mode = False

    def __init__(self, world: World) -> None:
        self.w = world
        self.outcomes: list[Outcome] = []
        self.delivered: dict[int, tuple[Pkt, Optional[str]]] = {}  # id(outcome) -> its packet, the pod it reached

    # ------------------------------------------------------------------ outcomes

    def finish(self, p: Pkt, result: str, reason: Optional[str] = None, node: Optional[str] = None,
               pod: Optional[str] = None) -> None:
        endpoint = hostport(p.dst, p.dport) if result in ("delivered", "unknown") else None
        if result == "unknown" and p.dnat is None and reason and "rule" in reason:
            endpoint = None
        src = p.snat or (("masquerade" if p.masq else None))
        # the values have the fields' types already (a result of Result, a float share, the
        # hops a list of their own as validation's copy would be): built without validating
        o = trusted_model(Outcome, {"result": result, "probability": p.prob, "endpoint": endpoint, "node": node,
                                    "pod": pod, "masquerade": bool(p.masq or p.snat),
                                    "source": src if src else p.src, "dnat": p.dnat, "reason": reason,
                                    "hops": list(p.hops) if p.record else []})
        if result == "delivered":
            _ct_close(p)
            self.delivered[id(o)] = (p, pod)
        self.outcomes.append(o)

    def hop(self, p: Pkt, kind: HopKind, node: Optional[str], netns: Optional[str], device: Optional[str],
            detail: str, table: Optional[str] = None, rule: Optional[str] = None) -> None:
        if p.record:
            p.hops.append(TraceHop(kind=kind, node=node, netns=netns, device=device, detail=detail, table=table,
                                   rule=rule))

    # ------------------------------------------------------------------ entry points

    def from_outside(self, m: NodeModel, p: Pkt, dev: Optional[str]) -> None:
        p.in_if = dev
        self.hop(p, "wire", m.name, m.netns, dev, f"{p.src} → {hostport(p.dst, p.dport)} arrives on {m.name}"
                 + (f" ({dev})" if dev else " (its device is not known)"))
        hits = self.cilium_lb(m, p, "outside")
        self.receive(m, [p] if hits is None else hits, 0)

    def from_process(self, m: NodeModel, p: Pkt) -> None:
        p.local_out = True
        hits = self.cilium_lb(m, p, "process")
        if hits is not None:
            for q in hits:
                self._from_process(m, q)
            return
        self._from_process(m, p)

    def _from_process(self, m: NodeModel, p: Pkt) -> None:
        local = self._local_addr(m, p, say=False)
        re_ = None
        first: Optional[policy.Choice] = None
        if m.has_routes and not local:
            # connect(): the route lookup that picks the source address (with the source unset
            # when the socket is not bound: a `from` rule then sees 0.0.0.0); it fails the
            # connect before any packet (and any netfilter hook) when it finds no way
            first = self.choose(m, p)
            re_ = first.entry if first.kind == "route" else None
        if p.src is None:
            p.src = (re_.route.src if re_ is not None and re_.route.src else None) or (
                m.addr_on(re_.route.dev) if re_ is not None else None) or m.primary
        if re_ is not None:
            p.out_if = re_.route.dev
        if local:
            p.out_if = "lo"
        self.hop(p, "device", m.name, m.netns, None, f"a process on {m.name} connects from {p.src or '?'} to "
                 f"{hostport(p.dst, p.dport)} ({p.proto})")
        p.ct_in = (m.name, p.tuple4(), bool(p.masq or p.snat))
        if first is not None and first.kind not in ("route", "local"):
            self.apply(m, p, first)
            return
        going, stopped = run_hook(m, "OUTPUT", [p])
        self.stopped(stopped, m)
        for q in going:
            if q.dnat is not None:  # conntrack: rerouted for the new destination
                q.out_if = "lo" if (q.dst in m.local or _loopback(q.dst)) else q.out_if
            self.after_output(m, q, 0)

    def after_output(self, m: NodeModel, p: Pkt, depth: int) -> None:
        if self._local_addr(m, p) or (m.ipvs_mode and self._ipvs_vs(m, p) is not None):
            self._loop_back(m, p, depth)
            return
        rt = self.route(m, p)
        if rt is None:
            return
        if rt == "local":  # a `local` route of another table (AnyIP, TPROXY): delivered here
            self._loop_back(m, p, depth)
            return
        going, stopped = run_hook(m, "POSTROUTING", [p])
        self.stopped(stopped, m)
        for q in going:
            self.egress(m, q, depth)

    def from_pod(self, m: NodeModel, p: Pkt, netns: Optional[str], host_if: Optional[str], pod: str,
                 pod_if: Optional[str]) -> None:
        hits = self.cilium_lb(m, p, "pod", netns)
        for q in ([p] if hits is None else hits):
            self._from_pod(m, q, netns, host_if, pod, pod_if)

    def _from_pod(self, m: NodeModel, p: Pkt, netns: Optional[str], host_if: Optional[str], pod: str,
                  pod_if: Optional[str]) -> None:
        who = f"the pod {pod}" if pod and pod != "?" else f"the pod at {p.src}"
        self.hop(p, "device", m.name, netns, pod_if or "eth0",
                 f"{who} sends {p.src} → {hostport(p.dst, p.dport)} ({p.proto}) from its {pod_if or 'eth0'}")
        if host_if:
            self.hop(p, "veth", m.name, m.netns, host_if, f"{pod_if or 'eth0'} is the peer of {host_if} on {m.name}")
        p.in_if = host_if
        br = self._bridge_of(m, host_if)
        if br:
            p.in_if, p.bridged, p.phys_in = br, True, host_if
            self.hop(p, "bridge", m.name, m.netns, br, f"{host_if} is a port of the bridge {br}; {br} hands it to "
                     f"{m.name}'s IP stack")
        self.receive(m, [p], 0)

    # ------------------------------------------------------------------ inside a node

    def receive(self, m: NodeModel, pkts: list[Pkt], depth: int) -> None:
        for p in pkts:
            p.ct_in = (m.name, p.tuple4(), bool(p.masq or p.snat))  # this node's conntrack sees it from here
        going, stopped = run_hook(m, "PREROUTING", pkts)
        self.stopped(stopped, m)
        for p in going:
            p.bridged = False
            if self._local_addr(m, p) or (m.ipvs_mode and self._ipvs_vs(m, p) is not None):
                self.local_in(m, p, depth)
            else:
                self.forward(m, p, depth)

    def local_in(self, m: NodeModel, p: Pkt, depth: int) -> None:
        going, stopped = run_hook(m, "INPUT", [p])
        self.stopped(stopped, m)
        for q in going:
            vs = self._ipvs_vs(m, q) if m.ipvs else None
            if vs is not None:
                self.ipvs(m, q, vs, depth)
                continue
            self.hop(q, "deliver", m.name, m.netns, q.in_if, f"{hostport(q.dst, q.dport)} is an address of "
                     f"{m.name}: a socket on the node receives it")
            self.finish(q, "delivered", None, node=m.name)

    def forward(self, m: NodeModel, p: Pkt, depth: int) -> None:
        rt = self.route(m, p)
        if rt is None:
            return
        if rt == "local":  # an ip rule's table routes it to this node (TPROXY's `local default dev lo`)
            self.local_in(m, p, depth)
            return
        going, stopped = run_hook(m, "FORWARD", [p])
        self.stopped(stopped, m)
        going, stopped = run_hook(m, "POSTROUTING", going)
        self.stopped(stopped, m)
        for q in going:
            self.egress(m, q, depth)

    def route(self, m: NodeModel, p: Pkt) -> Optional[str]:
        """Pick the output device (sets p.out_if, p.rt): "ok", "local" (an ip rule's table says
        the destination is this node's), or None with an outcome when it cannot."""
        if not m.has_routes:
            place = self.w.pods.get(p.dst)
            p.out_if = None
            if place is not None and place.node == m.name and place.veth is not None:
                p.out_if = place.veth.bridge or place.veth.host_ifname
                self.hop(p, "route", m.name, m.netns, p.out_if, f"routes of {m.name} were not collected; "
                         f"{p.dst} is the pod {place.pod or '?'} behind {place.veth.host_ifname} (inferred)")
                return "ok"
            return "ok"  # decided at egress: where it goes is not known
        return self.apply(m, p, self.choose(m, p))

    def choose(self, m: NodeModel, p: Pkt) -> policy.Choice:
        iif = "lo" if p.local_out else p.in_if
        return policy.choose(m, p.family, p.src, p.dst, iif, p.mark, p.proto, p.sport, p.dport)

    def apply(self, m: NodeModel, p: Pkt, c: policy.Choice) -> Optional[str]:
        """The route lookup's answer as hops and, when it stops the packet, an outcome."""
        if c.kind == "route":  # the common case first, its words only when hops are kept
            re_ = c.entry
            assert re_ is not None
            p.out_if = re_.route.dev
            p.rt = re_
            if p.record:
                self.hop(p, "route", m.name, m.netns, re_.route.dev, f"{m.name} routes {p.dst} by `{re_.text}` "
                         f"({policy.chosen_by(c, m)})", table=c.table, rule=c.rule_label or None)
            return "ok"
        rule = c.rule_label or None
        if c.kind == "unknown":
            self.hop(p, "route", m.name, m.netns, None, c.why, table=c.table, rule=rule)
            self.finish(p, "unknown", f"{m.name}: {c.why}", node=m.name)
            return None
        if c.kind == "noroute":
            why = f"no route to {p.dst} on {m.name}"
            if c.passed or policy.non_default(m):
                why += " (no ip rule's table has one" + (": " + "; ".join(c.passed) if c.passed else "") + ")"
            self.hop(p, "route", m.name, m.netns, None, why)
            self.finish(p, "dropped", why, node=m.name)
            return None
        if c.kind == "local":
            what = f"`{c.entry.text}`" if c.entry is not None else "an address of the node"
            if p.record:
                self.hop(p, "route", m.name, m.netns, "lo", f"{p.dst} is local on {m.name}: {what} "
                         f"({policy.chosen_by(c, m)})", table=c.table, rule=rule)
            p.out_if = "lo"
            return "local"
        result = "dropped" if c.kind == "blackhole" else "rejected"
        if c.entry is not None:  # a blackhole/unreachable/prohibit route of the chosen table
            self.hop(p, "route", m.name, m.netns, None, f"route {c.entry.text} ({policy.chosen_by(c, m)})",
                     table=c.table, rule=rule)
            self.finish(p, result, f"{m.name}: route {c.entry.text} (table {c.table}, ip rule {rule})", node=m.name)
            return None
        self.hop(p, "route", m.name, m.netns, None, f"ip rule {rule} {'drops' if result == 'dropped' else 'rejects'}"
                 f" it ({c.kind})", rule=rule)
        self.finish(p, result, f"{m.name}: ip rule {rule}", node=m.name)
        return None

    def _loop_back(self, m: NodeModel, p: Pkt, depth: int) -> None:
        """A locally sent packet for this node: out of lo through POSTROUTING, back in on lo."""
        p.out_if = "lo"
        going, stopped = run_hook(m, "POSTROUTING", [p])
        self.stopped(stopped, m)
        for q in going:
            q.in_if = "lo"
            self.local_in(m, q, depth)

    def egress(self, m: NodeModel, p: Pkt, depth: int) -> None:
        if p.masq and p.snat is None:
            p.snat = m.addr_on(p.out_if) or m.primary
        dev = p.out_if
        if dev is None:
            place = self.w.pods.get(p.dst)
            owner = self.w.node_of_addr.get(p.dst)
            why = (f"the routes and devices of {m.name} were not collected: where {m.name} sends "
                   f"{hostport(p.dst, p.dport)} is not known")
            if place is not None:
                why += f" ({p.dst} is the pod {place.pod or '?'} on {place.node or '?'}, from {place.how})"
            self.finish(p, "unknown", why, node=(place.node if place else owner) or None,
                        pod=place.pod if place else None)
            return
        kind = m.dev_kind(dev)
        if kind in ("bridge", "veth") and dev == m.uplink and not self._pod_here(m, p.dst):
            # the node's own uplink, which may itself be a veth (a node in a container or a netns,
            # kind, LXD) or a bridge (br0 over the NIC): host-gw routes `via <node> dev <uplink>`
            # go onto the node network, not into a pod
            kind = "device"
        if kind == "bridge" or kind == "veth":
            self.to_pod(m, p, dev, kind)
            return
        if kind in ("vxlan", "ipip"):
            self.tunnel(m, p, dev, kind, depth)
            return
        if kind == "loopback":
            self.local_in(m, p, depth)
            return
        # a plain device: the next hop is the gateway or the destination itself
        re_ = p.rt or m.route_for(p.dst)
        nh = re_.route.gateway if re_ is not None and re_.route.gateway else p.dst
        other = self.w.node_of_addr.get(nh)
        if other is not None and other != m.name and other in self.w.nodes:
            self.wire(m, p, self.w.nodes[other], dev, depth, f"{dev} sends it to {nh} ({other})")
            return
        why = f"{m.name} sends it out of {dev} towards {nh}, which is not a node of the snapshot"
        self.hop(p, "device", m.name, m.netns, dev, why)
        p.left = True
        self.finish(p, "unknown", why, node=m.name if self.reply_mode else None)

    def _local_addr(self, m: NodeModel, p: Pkt, say: bool = True) -> bool:
        """The destination is one of the node's addresses and the local table is read first
        (rule 0, the kernel's default), or the rules before it find it local too (then a
        route hop names the rule, when ``say``)."""
        if not (p.dst in m.local or p.dst in m.broadcast or _loopback(p.dst)):
            return False
        if policy.local_first(m, p.family):
            return True
        c = self.choose(m, p)
        if c.kind != "local":
            return False
        if say:
            self.apply(m, p, c)
        return True

    def _pod_here(self, m: NodeModel, ip: str) -> bool:
        place = self.w.pods.get(ip)
        return place is not None and place.node == m.name

    def to_pod(self, m: NodeModel, p: Pkt, dev: str, kind: str) -> None:
        place = self.w.pods.get(p.dst)
        vp = place.veth if place is not None and place.node == m.name else None
        if vp is None and kind == "veth":
            vp = m.veth_by_host.get(dev)
        if vp is None:
            why = (f"{dev} on {m.name}: no collected pod interface has {p.dst}"
                   + (f" (the pod {place.pod} is on {place.node}, from {place.how})" if place else ""))
            self.hop(p, "device", m.name, m.netns, dev, why)
            self.finish(p, "unknown", why, node=m.name if place is None else place.node,
                        pod=place.pod if place else None)
            return
        if kind == "bridge":
            self.hop(p, "bridge", m.name, m.netns, dev, f"the bridge {dev} forwards it to its port {vp.host_ifname}")
        self.hop(p, "veth", m.name, m.netns, vp.host_ifname,
                 f"{vp.host_ifname} (ifindex {vp.host_ifindex}) is the peer of {vp.pod_ifname} in {vp.netns}")
        pod = vp.pod or (place.pod if place else None)
        if not any(a.split("/")[0] == p.dst for a in vp.pod_ips):
            why = f"{vp.pod_ifname} in {vp.netns} does not have {p.dst}"
            self.finish(p, "unknown", why, node=m.name, pod=pod)
            return
        self.hop(p, "deliver", m.name, vp.netns, vp.pod_ifname,
                 f"{vp.pod_ifname} in {vp.netns} has {p.dst}: {'the pod ' + pod if pod else 'the pod'} receives it")
        self.finish(p, "delivered", None, node=m.name, pod=pod)

    def tunnel(self, m: NodeModel, p: Pkt, dev: str, kind: str, depth: int) -> None:
        re_ = p.rt or m.route_for(p.dst)
        gw = re_.route.gateway if re_ is not None else None
        remote: Optional[str] = None
        how = ""
        if kind == "vxlan" and gw:
            mac = m.neighbours.get(gw)
            if mac and mac in m.fdb:
                remote, how = m.fdb[mac], f"neighbour {gw} lladdr {mac}, fdb {mac} dst {m.fdb[mac]}"
        elif kind == "ipip" and gw:
            remote, how = gw, f"the route's gateway {gw}"
        target: Optional[str] = self.w.node_of_addr.get(remote) if remote else None
        if target is None:
            place = self.w.pods.get(p.dst)
            if place is not None and place.node in self.w.nodes and place.node != m.name:
                target = place.node
                tm = self.w.nodes[target]
                remote = remote or tm.primary
                how = how or (f"inferred: the neighbour/FDB entries of {dev} were not collected; {p.dst} is on "
                              f"{target} ({place.how})")
        if target is None or target not in self.w.nodes:
            why = f"{dev} on {m.name} encapsulates towards {remote or '?'}, which is not a node of the snapshot"
            self.hop(p, "encap", m.name, m.netns, dev, why)
            self.finish(p, "unknown", why)
            return
        self.hop(p, "encap", m.name, m.netns, dev, f"{dev} ({'VXLAN' if kind == 'vxlan' else 'IP-in-IP'}) "
                 f"encapsulates it towards {remote} ({how})")
        self.wire(m, p, self.w.nodes[target], m.uplink, depth, f"the outer packet goes {m.primary or '?'} → {remote}",
                  tunnel_dev=dev)

    def wire(self, m: NodeModel, p: Pkt, other: NodeModel, dev: Optional[str], depth: int, detail: str,
             tunnel_dev: Optional[str] = None) -> None:
        if depth + 1 >= MAX_NODES:
            self.finish(p, "unknown", f"more than {MAX_NODES} nodes on the path (a loop?)")
            return
        self.hop(p, "wire", m.name, m.netns, dev, detail)
        _ct_close(p)
        q = p
        q.in_if = other.uplink
        if tunnel_dev is not None:
            in_dev = tunnel_dev if tunnel_dev in other.links or not other.has_links else None
            self.hop(q, "encap", other.name, other.netns, in_dev or tunnel_dev,
                     f"{other.uplink or 'the uplink'} of {other.name} receives it; {in_dev or tunnel_dev} decapsulates it")
            q.in_if = in_dev or tunnel_dev
        else:
            self.hop(q, "device", other.name, other.netns, other.uplink, f"{other.uplink or 'the uplink'} of "
                     f"{other.name} receives it")
        q.nat_dst_done = q.nat_dst_done  # conntrack on the other node: a new connection there
        q.nat_dst_done = False
        q.nat_src_done = False
        q.mark = 0
        q.rt = None
        self.receive(other, [q], depth + 1)

    # ------------------------------------------------------------------ cilium (kube-proxy replacement)

    def cilium_lb(self, m: NodeModel, p: Pkt, entry: str, netns: Optional[str] = None) -> Optional[list[Pkt]]:
        """Cilium's BPF service lookup, before netfilter: at connect() (socket LB) for a process
        or a pod, at tc ingress of the device (bpf_host) for a packet from outside. The packets
        to go on with (one per active backend, with its share; none: dropped or unknown here),
        or None: no table, or no frontend of it matches (the packet goes on as it is)."""
        table = m.cilium
        if table is None:
            return None
        node_ips = {ip for ip in m.local if not _loopback(ip)}
        node_ips.update(a for a, n in self.w.node_of_addr.items() if n == m.name)
        hit = lookup(table, p.dst, p.dport, p.proto, node_ips)
        if hit is None:
            return None
        fe = hit.frontend
        ftype = fe.type or "?"
        where = {"process": f"at connect() of the process on {m.name} (socket LB)",
                 "pod": "at the pod's connect() (socket LB; else at its veth, bpf_lxc)",
                 "outside": f"at tc ingress of {p.in_if or 'the device'} on {m.name} (bpf_host)"}[entry]
        ns = netns if entry == "pod" else m.netns
        front = f"frontend {fe.frontend} ({ftype}" + (f", ID {fe.id}" if fe.id is not None else "") + ")"

        def lb_hop(q: Pkt, detail: str) -> None:
            if q.record:
                q.hops.append(TraceHop(kind="cilium", node=m.name, netns=ns, device=p.in_if if entry == "outside"
                                       else None, detail=f"cilium service lb {where}: {detail}", rule=hit.evidence))

        if entry == "outside" and ftype == "ClusterIP":
            if "non-routable" in fe.flags:
                lb_hop(p, f"{front} is marked non-routable: Cilium does not translate a ClusterIP for traffic from "
                       "outside the cluster; the packet goes on untranslated")
                return None
            why = (f"{fe.frontend} is a ClusterIP frontend of Cilium's service table; whether Cilium serves it to "
                   "traffic from outside the cluster (bpf-lb-external-clusterip, the non-routable flag of "
                   "`cilium-dbg bpf lb list`) is not in this table")
            lb_hop(p, why)
            self.finish(p, "unknown", why, node=m.name)
            return []
        if not hit.choices:
            why = (f"Cilium service {fe.frontend} ({ftype}) has no active backend: Cilium drops the packet "
                   "(DROP_NO_SERVICE), it does not reject it")
            lb_hop(p, f"{front} has no active backend" + (f" ({len(fe.backends)} not active)" if fe.backends else "")
                   + ": dropped (DROP_NO_SERVICE)")
            self.finish(p, "dropped", why, node=m.name)
            return []
        out: list[Pkt] = []
        n = len(hit.choices)
        local = [f for f in fe.flags if f in ("Local", "InternalLocal")]
        policy = (f"; traffic policy {'/'.join(local)}: the agent keeps only this node's backends in the map for "
                  "it, so the listed ones are taken as they are" if local else "")
        for c in hit.choices:
            host, _, port = c.backend.rpartition(":")
            host = host.strip("[]")
            if ip_int(host) is None or not port.isdigit():
                q = p.copy()
                q.prob *= c.probability
                why = f"Cilium service {fe.frontend}: backend {c.backend!r} is not an address:port"
                lb_hop(q, why)
                self.finish(q, "unknown", why, node=m.name)
                continue
            q = p.copy()
            q.prob *= c.probability
            q.dst, q.dport = host, int(port)
            q.dnat = hostport(q.dst, q.dport)
            q.bpf_lb = True
            q.family = "ipv6" if ":" in host else "ipv4"
            extra = ""
            if entry == "outside":
                extra = (f"; to a backend on another node the packet is SNATed to {m.name} unless DSR is on, "
                         "which the table does not say")
            lb_hop(q, f"{front} → backend {q.dnat} (share {c.probability:.4g}: 1 of {n} active backends, "
                      f"chosen at random){policy}{extra}")
            out.append(q)
        return out

    # ------------------------------------------------------------------ ipvs

    def _ipvs_vs(self, m: NodeModel, p: Pkt) -> Optional[IpvsVirtualServer]:
        for vs in m.ipvs:
            if vs.protocol.lower() != p.proto:
                continue
            if vs.address == p.dst and vs.port == p.dport:
                return vs
        return None

    def ipvs(self, m: NodeModel, p: Pkt, vs: IpvsVirtualServer, depth: int) -> None:
        # weight 0 = quiesced (no new connections); no weight in the listing (--stats): counted as equal
        reals = [r for r in vs.real_servers if r.weight is None or r.weight > 0]
        label = f"{vs.protocol} {hostport(str(vs.address), vs.port)} {vs.scheduler or ''}".strip()
        if not reals:
            self.hop(p, "ipvs", m.name, m.netns, "kube-ipvs0", f"IPVS virtual server {label} has no real server "
                     "with a weight: the connection is refused")
            self.finish(p, "rejected", f"IPVS {label}: no real servers", node=m.name)
            return
        sched = str(vs.scheduler or "rr")
        weighted = sched in ("wrr", "wlc", "lblc", "lblcr", "sed") and all(r.weight is not None for r in reals)
        total = sum(int(r.weight or 0) for r in reals)
        for r in reals:
            q = p.copy()
            share = (int(r.weight or 0) / total) if weighted and total else 1 / len(reals)
            q.prob *= share
            q.dst, q.dport = str(r.address), int(r.port or q.dport)
            q.dnat = hostport(q.dst, q.dport)
            self.hop(q, "ipvs", m.name, m.netns, "kube-ipvs0", f"IPVS virtual server {label} sends it to real server "
                     f"{q.dnat} ({r.forward or 'Masq'}, weight {r.weight}; share {share:.4g})")
            q.local_out = True
            rt = self.route(m, q)
            if rt is None:
                continue
            if rt == "local":
                self.local_in(m, q, depth)
                continue
            going, stopped = run_hook(m, "POSTROUTING", [q])
            self.stopped(stopped, m)
            for x in going:
                self.egress(m, x, depth)

    # ------------------------------------------------------------------ helpers

    def stopped(self, stops: list[tuple[Pkt, str, str]], m: NodeModel) -> None:
        for p, result, reason in stops:
            self.finish(p, result, reason, node=m.name)

    def _bridge_of(self, m: NodeModel, host_if: Optional[str]) -> Optional[str]:
        if not host_if:
            return None
        vp = m.veth_by_host.get(host_if)
        if vp is not None and vp.bridge:
            return vp.bridge
        link = m.links.get(host_if)
        return link.master if link is not None and link.master else None


def _loopback(ip: str) -> bool:
    v = ip_int(ip)
    return v is not None and ((v[0] == 4 and (v[1] >> 24) == 127) or (v[0] == 6 and v[1] == 1))


def run_flow(world: World, flow: Flow, hops: bool = True, replies: bool = False) -> TraceResult:
    """Trace one flow (its first packet) through the world; never raises for missing data.
    ``hops=False``: outcomes without their hop lists (``trace --all``). ``replies``: also the
    way back of each delivered outcome (:class:`Reply` on the outcome)."""
    import gc

    from labreport.perf import gc_paused

    if not gc.isenabled():  # already paused (trace --all): no context manager per flow
        return _run_flow(world, flow, hops, replies)
    with gc_paused():  # short-lived acyclic records; see labreport.perf
        return _run_flow(world, flow, hops, replies)


def _run_flow(world: World, flow: Flow, hops: bool, replies: bool = False) -> TraceResult:
    res = TraceResult(flow=flow)
    run = _Run(world)
    m = world.node(flow.entry_node)
    if m is None:
        res.notes.append(f"no node {flow.entry_node!r} in the snapshot")
        return res
    p = Pkt(flow.src, flow.dst, flow.sport, flow.dport, flow.proto)
    p.mark = flow.mark
    p.node = m.name
    p.record = hops
    if flow.entry == "process":
        run.from_process(m, p)
    elif flow.entry == "pod":
        place = world.pods.get(flow.src or "")
        vp = place.veth if place is not None else None
        run.from_pod(m, p, vp.netns if vp else flow.entry_netns, vp.host_ifname if vp else None,
                     flow.pod or (place.pod if place else None) or "?", vp.pod_ifname if vp else None)
    else:
        run.from_outside(m, p, flow.entry_dev or m.uplink)
    res.outcomes = merge(run.outcomes)
    if replies:
        for o in res.outcomes:
            got = run.delivered.get(id(o))
            if got is not None:
                o.reply = trace_reply(world, flow, got[0], got[1], hops)
    if not m.has_rules():
        res.notes.append(f"{m.name}: no iptables, nftables or IPVS rules nor a Cilium service table in the snapshot")
    if not m.has_routes:
        res.notes.append(f"{m.name}: no routes in the snapshot (`ip route` not collected)")
    for n in world.nodes.values():
        if n.other_tables and not n.rules_known:
            res.notes.append(f"{n.name}: routing tables {', '.join(n.other_tables)} exist but its ip rules were not "
                             "collected: the kernel's default rules (0 local, 32766 main, 32767 default) are assumed")
    return res


def merge(outs: list[Outcome]) -> list[Outcome]:
    """Outcomes that took the same way (same hops) are one outcome with the summed probability."""
    seen: dict[tuple[object, ...], Outcome] = {}
    order: list[Outcome] = []
    for o in outs:
        key = (o.result, o.endpoint, o.node, o.pod, o.masquerade, o.reason, o.dnat,
               tuple((h.kind, h.table, h.chain, h.rule_index, h.device) for h in o.hops))
        prev = seen.get(key)
        if prev is None:
            seen[key] = o
            order.append(o)
        else:
            prev.probability += o.probability
    for o in order:
        o.probability = round(o.probability, 12)
    return order


def _ct_close(p: Pkt) -> None:
    """The connection's conntrack entry on the node the packet leaves (or is delivered in)."""
    if p.ct_in is not None:
        node, entered, natted_before = p.ct_in
        p.ct = p.ct + ((node, entered, p.tuple4(), bool(p.masq or p.snat) and not natted_before),)
        p.ct_in = None


def _hp(t: tuple[str, int]) -> str:
    return hostport(t[0], t[1])


def ct_entries(p: Pkt) -> list[CtEntry]:
    out: list[CtEntry] = []
    for node, a, b, snat in p.ct:
        nat = "+".join(x for x, on in (("dnat", (a[2], a[3]) != (b[2], b[3])),
                                       ("snat", snat or (a[0], a[1]) != (b[0], b[1]))) if on) or None
        out.append(CtEntry(node=node, original=f"{_hp((a[0], a[1]))} → {_hp((a[2], a[3]))}",
                           reply=f"{_hp((b[2], b[3]))} → {_hp((b[0], b[1]))}", nat=nat))
    return out


class _Client:
    """Who waits for the reply: the tuple it sent and where it is."""

    def __init__(self, flow: Flow, first: Tuple4) -> None:
        self.kind = flow.entry  # pod | process | outside
        self.node = flow.entry_node
        self.ip, self.port = first[0], first[1]
        self.want_src, self.want_sport = first[2], first[3]

    @property
    def expected_src(self) -> str:
        return hostport(self.want_src, self.want_sport)

    @property
    def expected_dst(self) -> str:
        return hostport(self.ip, self.port)

    def describe(self) -> str:
        return {"pod": f"the client pod at {self.ip}", "process": f"the client process on {self.node}"}.get(
            self.kind, f"the client {self.ip} outside the cluster")


class _ReplyRun(_Run):
    """The reply's walk: the same machinery, with each node's conntrack entry deciding
    ctstate (ESTABLISHED in the reply direction when the packet is the entry's reply tuple,
    INVALID for a TCP SYN-ACK no entry knows) and conntrack's NAT reversal in the hooks."""

    reply_mode = True

    def __init__(self, world: World, records: dict[str, CtRecord], client: _Client, proto: str) -> None:
        super().__init__(world)
        self.records = records
        self.client = client
        self.proto = proto
        self.matched: set[str] = set()
        self.ends: list[tuple[Pkt, str, Optional[str], Optional[str]]] = []  # packet, result, reason, node

    def ct_lookup(self, m: NodeModel, p: Pkt) -> None:
        rec = self.records.get(m.name)
        t = p.tuple4()
        if rec is not None and t == (rec[2][2], rec[2][3], rec[2][0], rec[2][1]):
            p.ct_here, p.ctstate, p.ctdir = rec, "established", "reply"
            self.matched.add(m.name)
            if not m.has_rules():
                return  # no rule here needs conntrack (or its state): nothing to say
            self.hop(p, "conntrack", m.name, m.netns, None, f"conntrack on {m.name}: {_hp((t[0], t[1]))} → "
                     f"{_hp((t[2], t[3]))} is the reply tuple of the connection {_hp((rec[1][0], rec[1][1]))} → "
                     f"{_hp((rec[1][2], rec[1][3]))}: ESTABLISHED, direction reply (the nat chains are skipped)")
            return
        p.ct_here = None
        p.ctdir = "original"
        if not m.has_rules():
            p.ctstate = "new"
            return
        if self.proto == "tcp":
            p.ctstate = "invalid"
            why = ("a SYN-ACK that opens no connection: ctstate INVALID, no NAT is reversed"
                   + (f" (its entry here is for {_hp((rec[2][2], rec[2][3]))} → {_hp((rec[2][0], rec[2][1]))})"
                      if rec is not None else ""))
        else:
            p.ctstate = "new"
            why = "a new connection for it here (ctstate NEW)"
        self.hop(p, "conntrack", m.name, m.netns, None, f"conntrack on {m.name}: no entry has "
                 f"{_hp((t[0], t[1]))} → {_hp((t[2], t[3]))} as its reply: {why}")

    def receive(self, m: NodeModel, pkts: list[Pkt], depth: int) -> None:
        for p in pkts:
            self.ct_lookup(m, p)
        super().receive(m, pkts, depth)

    def finish(self, p: Pkt, result: str, reason: Optional[str] = None, node: Optional[str] = None,
               pod: Optional[str] = None) -> None:
        self.ends.append((p, result, reason, node))

    # ------------------------------------------------------------------ where the endpoint answers from

    def from_endpoint_pod(self, m: NodeModel, p: Pkt, place: PodPlace) -> None:
        vp = place.veth
        assert vp is not None
        who = f"the pod {place.pod}" if place.pod else f"the pod at {p.src}"
        routes = self.w.netns_routes(m.name, vp.netns)
        gw: Optional[str] = None
        if routes is None:
            self.hop(p, "device", m.name, vp.netns, vp.pod_ifname, f"{who} answers {_hp((p.src or '?', p.sport))} → "
                     f"{_hp((p.dst, p.dport))}; the routes of {vp.netns} were not collected: taken as its default "
                     f"route via {m.name}")
        else:
            re_ = _lookup(routes, p.dst)
            if re_ is None:
                self.hop(p, "route", m.name, vp.netns, None, f"{who} has no route to {p.dst}")
                self.end(p, "dropped", f"{who} has no route to {p.dst} (its namespace {vp.netns})", m.name)
                return
            gw = re_.route.gateway
            self.hop(p, "device", m.name, vp.netns, re_.route.dev or vp.pod_ifname,
                     f"{who} answers {_hp((p.src or '?', p.sport))} → {_hp((p.dst, p.dport))} by `{re_.text}` "
                     f"in {vp.netns}")
        self.hop(p, "veth", m.name, m.netns, vp.host_ifname, f"{vp.pod_ifname} is the peer of {vp.host_ifname} on "
                 f"{m.name}")
        br = vp.bridge or self._bridge_of(m, vp.host_ifname)
        p.in_if = vp.host_ifname
        if br and routes is not None and gw is None and p.dst not in m.local:
            other = self.w.pods.get(p.dst)
            ov = other.veth if other is not None and other.node == m.name else None
            if ov is not None and (ov.bridge or self._bridge_of(m, ov.host_ifname)) == br:
                self.bridged(m, p, br, vp.host_ifname, ov.host_ifname)
                return
            why = f"{p.dst} is on the link of {who} but no port of {br} on {m.name} has it"
            self.hop(p, "bridge", m.name, m.netns, br, why)
            self.end(p, "unknown", why, m.name)
            return
        if br:
            p.in_if, p.bridged, p.phys_in = br, True, vp.host_ifname
            self.hop(p, "bridge", m.name, m.netns, br, f"{vp.host_ifname} is a port of the bridge {br}; the frame is "
                     f"for {gw or 'the bridge'}: {br} hands it to {m.name}'s IP stack")
        self.receive(m, [p], 0)

    def bridged(self, m: NodeModel, p: Pkt, br: str, port_in: str, port_out: str) -> None:
        """A reply to a pod on the same bridge: switched at layer 2, port to port. Only
        br_netfilter (net.bridge.bridge-nf-call-iptables=1) puts such a frame through the
        IPv4 hooks, and with them conntrack, which alone can reverse the DNAT."""
        sysctl = m.snap.info.sysctls.get("net.bridge.bridge-nf-call-iptables")
        self.hop(p, "bridge", m.name, m.netns, br, f"{p.dst} is on the same bridge: {br} switches the frame from "
                 f"{port_in} to {port_out} at layer 2, not through {m.name}'s routing")
        if sysctl is None:
            why = (f"the reply is bridged on {m.name} ({br}, {port_in} → {port_out}); whether bridged IPv4 goes "
                   "through netfilter and conntrack (net.bridge.bridge-nf-call-iptables, br_netfilter) was not "
                   "collected")
            self.end(p, "unknown", why, m.name)
            return
        if sysctl.strip() == "1":
            self.hop(p, "bridge", m.name, m.netns, br, "net.bridge.bridge-nf-call-iptables = 1: br_netfilter runs "
                     "the IPv4 hooks (PREROUTING, FORWARD, POSTROUTING) on the bridged frame")
            p.in_if, p.bridged, p.phys_in = br, True, port_in
            self.ct_lookup(m, p)
            going, stopped = run_hook(m, "PREROUTING", [p])
            self.stopped(stopped, m)
            for q in going:
                q.out_if, q.phys_out = br, port_out
            going, stopped = run_hook(m, "FORWARD", going)
            self.stopped(stopped, m)
            going, stopped = run_hook(m, "POSTROUTING", going)
            self.stopped(stopped, m)
            for q in going:
                self.to_pod(m, q, br, "bridge")
            return
        self.hop(p, "bridge", m.name, m.netns, br, f"net.bridge.bridge-nf-call-iptables = {sysctl.strip()}: the "
                 "bridged frame skips netfilter and conntrack")
        self.to_pod(m, p, br, "bridge")

    def from_endpoint_node(self, m: NodeModel, p: Pkt) -> None:
        self.hop(p, "device", m.name, m.netns, None, f"the socket on {m.name} answers {_hp((p.src or '?', p.sport))} "
                 f"→ {_hp((p.dst, p.dport))}")
        p.local_out = True
        re_ = m.route_for(p.dst) if m.has_routes else None
        p.out_if = "lo" if (p.dst in m.local or _loopback(p.dst)) else (re_.route.dev if re_ is not None else None)
        self.ct_lookup(m, p)
        going, stopped = run_hook(m, "OUTPUT", [p])
        self.stopped(stopped, m)
        for q in going:
            self.after_output(m, q, 0)

    def end(self, p: Pkt, result: str, reason: Optional[str], node: Optional[str]) -> None:
        self.ends.append((p, result, reason, node))

    # ------------------------------------------------------------------ the verdict

    def verdict(self, hops: bool, start: Pkt) -> Reply:
        c = self.client
        base: dict[str, Any] = dict(src=_hp((start.src or "?", start.sport)), dst=_hp((start.dst, start.dport)),
                                    expected_src=c.expected_src, expected_dst=c.expected_dst)
        if not self.ends:
            return Reply(result="unknown", reason="the reply's walk ended without an outcome", **base)
        p, result, reason, node = self.ends[0]
        seen_src, seen_dst = _hp((p.src or "?", p.sport)), _hp((p.dst, p.dport))
        hop_list = p.hops if hops else []
        place_ok = False
        if result == "delivered" or (result == "unknown" and p.left):
            if c.kind == "pod":
                place_ok = result == "delivered" and p.dst == c.ip and node is not None
            elif c.kind == "process":
                place_ok = result == "delivered" and node == c.node and p.dst == c.ip
            else:
                place_ok = p.left and p.dst == c.ip
        if not place_ok:
            if result == "delivered":
                result, reason = "unknown", (f"the reply reaches {seen_dst} on {node or '?'}, not "
                                             f"{c.describe()} ({c.expected_dst})")
            return Reply(result=result, reason=reason, node=node, seen_src=seen_src, seen_dst=seen_dst,  # type: ignore[arg-type]
                         hops=hop_list, **base)
        if (seen_src, seen_dst) == (c.expected_src, c.expected_dst):
            how = "leaves towards it" if c.kind == "outside" else "reaches it"
            return Reply(result="delivered", node=node, seen_src=seen_src, seen_dst=seen_dst, hops=hop_list,
                         reason=f"{c.describe()}: the answer {how} as {seen_src} → {seen_dst}, the address it "
                                "connected to", **base)
        natted = [n for n, a, b, snat in self.records.values() if a != b or snat]
        bypassed = [n for n in natted if n not in self.matched]
        where = ", ".join(bypassed) or ", ".join(natted) or "?"
        if self.proto == "tcp":
            what = ("no socket of the client has that 4-tuple: its kernel answers the SYN-ACK with a RST and "
                    "retransmits its SYN; the connection never completes")
            if bypassed:
                what += f" ({where}'s conntrack entry stays [UNREPLIED] SYN_SENT)"
        else:
            what = "the client's socket, connected to the address it asked, does not take a datagram from another one"
        why = (f"reply bypasses the conntrack entry on {where} (client sees {seen_src.rsplit(':', 1)[0]}, expected "
               f"{c.want_src}): {c.describe()} receives {seen_src} → {seen_dst} but connected to {c.expected_src}; "
               f"{what}")
        return Reply(result="dropped", reason=why, node=node, seen_src=seen_src, seen_dst=seen_dst, hops=hop_list,
                     **base)


def _lookup(routes: list[RouteEntry], dst: str) -> Optional[RouteEntry]:
    best: Optional[RouteEntry] = None
    for re_ in routes:  # longest prefix first
        if in_net(dst, re_.net):
            if best is None or re_.net[2] > best.net[2]:
                best = re_
            elif re_.net[2] < best.net[2]:
                break
    return best


def trace_reply(world: World, flow: Flow, p: Pkt, pod: Optional[str], hops: bool = True) -> Reply:
    """The reply of the delivered packet ``p``: from the endpoint back to the client."""
    if not p.ct:
        return Reply(result="unknown", src="?", dst="?", expected_src="?", expected_dst="?",
                     reason="the forward trace recorded no conntrack entry")
    if p.bpf_lb:
        return Reply(result="unknown", src=hostport(p.dst, p.dport), dst=hostport(p.tuple4()[0], p.sport),
                     expected_src=hostport(flow.dst, flow.dport), expected_dst=hostport(p.tuple4()[0], p.sport),
                     conntrack=ct_entries(p),
                     reason="Cilium's BPF service LB translated this connection before conntrack and reverses it "
                            "itself (rev-NAT at the socket or the device), which the trace does not model")
    records = {r[0]: r for r in p.ct}
    client = _Client(flow, p.ct[0][1])
    end_node, _entered, left, _snat = p.ct[-1]
    q = Pkt(left[2], left[0], left[3], left[1], p.proto)
    q.record = hops
    q.tcpflags = "synack"
    run = _ReplyRun(world, records, client, p.proto)
    m = world.nodes.get(end_node)
    cts = ct_entries(p)
    if m is None:
        return Reply(result="unknown", src=_hp((q.src or "?", q.sport)), dst=_hp((q.dst, q.dport)),
                     expected_src=client.expected_src, expected_dst=client.expected_dst, conntrack=cts,
                     reason=f"the endpoint's node {end_node} is not in the snapshot")
    start = q.copy()
    place = world.pods.get(left[2])
    at_node = left[2] in m.local or _loopback(left[2])
    if not at_node and place is not None and place.veth is not None and place.node == end_node:
        run.from_endpoint_pod(m, q, place)
    elif at_node:
        run.from_endpoint_node(m, q)
    else:
        why = (f"the endpoint {pod or left[2]} has no collected pod interface on {end_node}: where it sends its answer "
               "is not known")
        return Reply(result="unknown", src=_hp((q.src or "?", q.sport)), dst=_hp((q.dst, q.dport)),
                     expected_src=client.expected_src, expected_dst=client.expected_dst, conntrack=cts, reason=why)
    r = run.verdict(hops, start)
    r.conntrack = cts
    return r
