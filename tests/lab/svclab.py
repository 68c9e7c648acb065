"""Fast Service labs for the kernel-oracle tests: one or two nodes as network namespaces,
pods as plain namespaces running busybox httpd (no container runtime), kube-proxy's rules
in iptables or nftables mode (tests.lab.kprules), a client namespace on the node network
("outside the cluster"), and the kernel's own tools to watch what really happens.

    lab = ServiceLab(mode="iptables", nodes=1)   # or mode="nftables", nodes=2
    lab.build()                                   # ~1-2 s
    lab.flows                                     # the Flow cases the tests parametrize over
    lab.close()

Per node ``nI`` (namespace ``lro<tag>I``): ``eth0`` 192.168.56.(9+I)/24, a veth into a "lan"
namespace (bridge br0, gateway 192.168.56.1, and the outside clients ``ext`` 192.168.56.100
and ``ext2`` 192.168.56.150 on it); ``cni0`` 10.244.I.1/24 with bridge pods (veth pairs);
calico-style routed pods in 10.244.(64+I).0/24 (a ``cali…`` veth with no bridge, a /32
route per pod, proxy ARP on the host side, the pod's default route via 169.254.1.1 onlink).
Two nodes are joined by a flannel-style VXLAN (``flannel.1``, VNI 1, port 8472, permanent
neighbour + FDB entries), routes to the peer's pod ranges via it.

Every pod serves ``pod <ns/name> port <p>`` on ports 80 and 8080. Traffic only ever flows
between namespaces the lab created.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from tests.lab import kprules
from tests.lab.kprules import LabEndpoint, LabService
from tests.lab.netns import add_netns, delete_netns, in_netns
from tests.lab.proc import Daemon, Teardown, run, wait_for

CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
GATEWAY = "192.168.56.1"
EXT_IP = "192.168.56.100"  # inside loadBalancerSourceRanges
EXT2_IP = "192.168.56.150"  # outside them
LB_IP = "192.168.57.15"
LB_RANGE = "192.168.56.96/28"
VXLAN_DEV = "flannel.1"
POD_PORTS = (80, 8080)
# the flows each lab builds (tests parametrize over these ids; _services checks them)
FLOW_IDS = {
    1: ("pod-to-clusterip", "node-to-clusterip", "external-to-nodeport", "external-to-etp-local",
        "external-to-etp-local-no-local-endpoint", "pod-to-itp-local", "pod-to-affinity",
        "external-in-lb-source-range", "external-outside-lb-source-range", "pod-to-no-endpoints",
        "pod-to-policy-dropped", "pod-to-routed-pod-service", "node-to-routed-pod-service"),
    2: ("pod-to-clusterip-cross-node", "external-to-nodeport-cross-node", "external-to-etp-local-other-node",
        "external-to-etp-local-this-node", "node-to-clusterip-cross-node"),
}


# a second table with nat chains at the same hooks as kube-proxy's, whose rules match no lab
# flow (as a CNI's or a firewall's may sit beside kube-proxy): the kernel runs every nat chain
# of a hook in priority order until one maps the packet, so kube-proxy's still do their NAT
LAB_NAT = ("add table ip lab-nat\n"
           "add chain ip lab-nat pre { type nat hook prerouting priority dstnat - 10 ; }\n"
           "add chain ip lab-nat post { type nat hook postrouting priority srcnat - 10 ; }\n"
           "add rule ip lab-nat pre ip daddr 203.0.113.9 tcp dport 1 dnat to 10.244.1.2:80\n"
           "add rule ip lab-nat post ip saddr 203.0.113.0/24 masquerade\n")


@dataclass
class LabPod:
    key: str  # "lab/web-0"
    netns: str
    ip: str
    node: str  # "n1"
    wiring: Literal["bridge", "routed"]
    host_if: str


@dataclass
class LabNode:
    name: str  # n1, n2
    ns: str
    index: int
    uplink_ip: str
    bridge_ip: str  # cni0, 10.244.I.1
    pod_cidr: str  # 10.244.I.0/24
    routed_cidr: str  # 10.244.(64+I).0/24
    pods: list[LabPod] = field(default_factory=list)


@dataclass(frozen=True)
class Flow:
    """One traced flow: from a source (a pod IP, a node, or an outside client) to a
    destination ``ip:port``; ``expect`` is what the lab was built to do (ground truth used
    only to check the lab itself, never to judge the trace)."""

    id: str
    src_kind: Literal["pod", "node", "external"]
    src: str  # pod IP, node name, or outside IP
    src_ns: str  # the namespace traffic is sent from
    dst_ip: str
    dst_port: int
    expect: Literal["delivered", "dropped", "rejected"]
    via: Optional[str] = None  # the node an outside client enters
    affinity: bool = False

    @property
    def dst(self) -> str:
        return f"{self.dst_ip}:{self.dst_port}"

    def trace_args(self) -> list[str]:
        args = ["--from", self.src, "--to", self.dst, "--proto", "tcp"]
        if self.via:
            args += ["--via", self.via]
        return args


@dataclass
class ServiceLab:
    mode: Literal["iptables", "nftables"] = "iptables"
    nodes: int = 1
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    teardown: Teardown = field(default_factory=Teardown)
    build_seconds: Optional[float] = None

    def __post_init__(self) -> None:
        self.base = Path("/tmp") / f"lro{self.tag}"
        self.node_list: list[LabNode] = []
        self.services: list[LabService] = []
        self.flows: list[Flow] = []
        self.policy_rule: Optional[str] = None
        self.daemons: list[Daemon] = []

    # ----------------------------------------------------------------- names
    @property
    def lan_ns(self) -> str:
        return f"lro{self.tag}l"

    @property
    def ext_ns(self) -> str:
        return f"lro{self.tag}x"

    @property
    def ext2_ns(self) -> str:
        return f"lro{self.tag}y"

    def node(self, name: str) -> LabNode:
        for n in self.node_list:
            if n.name == name:
                return n
        raise KeyError(name)

    def pod(self, key: str) -> LabPod:
        for n in self.node_list:
            for p in n.pods:
                if p.key == key:
                    return p
        raise KeyError(key)

    def node_of_ns(self, ns: str) -> Optional[LabNode]:
        for n in self.node_list:
            if n.ns == ns:
                return n
        return None

    # ----------------------------------------------------------------- build
    def build(self) -> "ServiceLab":
        t0 = time.monotonic()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        self.build_seconds = time.monotonic() - t0
        return self

    def _ns(self, name: str) -> None:
        add_netns(name)
        self.teardown.push(f"delete {name}", lambda: delete_netns(name))

    def _build(self) -> None:
        self.base.mkdir(parents=True)
        self.teardown.push("remove lab dir", lambda: shutil.rmtree(self.base, ignore_errors=True))
        lan = self.lan_ns
        self._ns(lan)
        run(["ip", "-n", lan, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", lan, "addr", "add", f"{GATEWAY}/24", "dev", "br0"])
        run(["ip", "-n", lan, "link", "set", "br0", "up"])
        for i in range(1, self.nodes + 1):
            n = LabNode(name=f"n{i}", ns=f"lro{self.tag}{i}", index=i, uplink_ip=f"192.168.56.{9 + i}",
                        bridge_ip=f"10.244.{i}.1", pod_cidr=f"10.244.{i}.0/24", routed_cidr=f"10.244.{64 + i}.0/24")
            self.node_list.append(n)
            self._ns(n.ns)
            self._lan_port(n.ns, f"veth-n{i}", f"{n.uplink_ip}/24")
            run(["ip", "-n", n.ns, "route", "add", "default", "via", GATEWAY])
            for key, value in (("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.rp_filter", "0"),
                               ("net.ipv4.conf.default.rp_filter", "0")):
                run(in_netns(n.ns, "sysctl", "-qw", f"{key}={value}"))
            run(["ip", "-n", n.ns, "link", "add", "cni0", "type", "bridge"])
            run(["ip", "-n", n.ns, "addr", "add", f"{n.bridge_ip}/24", "dev", "cni0"])
            run(["ip", "-n", n.ns, "link", "set", "cni0", "up"])
        for ns, ip in ((self.ext_ns, EXT_IP), (self.ext2_ns, EXT2_IP)):
            self._ns(ns)
            self._lan_port(ns, f"veth-{ns[-1]}", f"{ip}/24")
            run(["ip", "-n", ns, "route", "add", "default", "via", GATEWAY])
            # the load balancer "sends" its VIP to the first node
            run(["ip", "-n", ns, "route", "add", f"{LB_IP}/32", "via", self.node_list[0].uplink_ip])
        if self.nodes == 1:
            self._pods_one_node()
        else:
            self._pods_two_nodes()
            self._vxlan()
        for n in self.node_list:
            for p in n.pods:
                self._serve(p)
        self._services()
        self._load_rules()
        self._wait_ready()

    def _lan_port(self, ns: str, lan_if: str, cidr: str) -> None:
        run(["ip", "link", "add", "name", "eth0", "netns", ns, "type", "veth", "peer", "name", lan_if,
             "netns", self.lan_ns])
        run(["ip", "-n", self.lan_ns, "link", "set", lan_if, "master", "br0", "up"])
        run(["ip", "-n", ns, "addr", "add", cidr, "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])

    def _bridge_pod(self, n: LabNode, name: str, host_octet: int) -> LabPod:
        ns = f"{n.ns}{name[0]}{host_octet}"
        self._ns(ns)
        host_if = f"veth{uuid.uuid4().hex[:8]}"
        run(["ip", "link", "add", "name", host_if, "netns", n.ns, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "-n", n.ns, "link", "set", host_if, "master", "cni0", "up"])
        ip = f"10.244.{n.index}.{host_octet}"
        run(["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "route", "add", "default", "via", n.bridge_ip])
        pod = LabPod(f"lab/{name}", ns, ip, n.name, "bridge", host_if)
        n.pods.append(pod)
        return pod

    def _routed_pod(self, n: LabNode, name: str, host_octet: int) -> LabPod:
        """calico-style: veth with no bridge, /32 route, proxy ARP answers 169.254.1.1."""
        ns = f"{n.ns}{name[0]}{host_octet}"
        self._ns(ns)
        host_if = f"cali{uuid.uuid4().hex[:11]}"
        run(["ip", "link", "add", "name", host_if, "netns", n.ns, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "-n", n.ns, "link", "set", host_if, "up"])
        run(in_netns(n.ns, "sysctl", "-qw", f"net.ipv4.conf.{host_if}.proxy_arp=1"))
        ip = f"10.244.{64 + n.index}.{host_octet}"
        run(["ip", "-n", n.ns, "route", "add", f"{ip}/32", "dev", host_if, "scope", "link"])
        run(["ip", "-n", ns, "addr", "add", f"{ip}/32", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link"])
        run(["ip", "-n", ns, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0"])
        pod = LabPod(f"lab/{name}", ns, ip, n.name, "routed", host_if)
        n.pods.append(pod)
        return pod

    def _pods_one_node(self) -> None:
        n = self.node_list[0]
        for i, name in enumerate(("web-0", "web-1", "web-2")):
            self._bridge_pod(n, name, 2 + i)
        self._routed_pod(n, "routed-0", 10)
        self._routed_pod(n, "client", 20)

    def _pods_two_nodes(self) -> None:
        n1, n2 = self.node_list
        self._bridge_pod(n1, "web-0", 2)
        self._routed_pod(n1, "client", 20)
        self._bridge_pod(n2, "web-1", 2)
        self._bridge_pod(n2, "web-2", 3)

    def _vxlan(self) -> None:
        macs: dict[str, str] = {}
        for n in self.node_list:
            run(["ip", "-n", n.ns, "link", "add", VXLAN_DEV, "type", "vxlan", "id", "1", "local", n.uplink_ip,
                 "dev", "eth0", "dstport", "8472", "nolearning"])
            run(["ip", "-n", n.ns, "link", "set", VXLAN_DEV, "mtu", "1450", "up"])
            run(["ip", "-n", n.ns, "addr", "add", f"10.244.{n.index}.0/32", "dev", VXLAN_DEV])
            macs[n.name] = json.loads(run(["ip", "-n", n.ns, "-j", "link", "show", VXLAN_DEV]).stdout)[0]["address"]
        for n in self.node_list:
            for o in self.node_list:
                if o is n:
                    continue
                gw = f"10.244.{o.index}.0"
                for cidr in (o.pod_cidr, o.routed_cidr):
                    run(["ip", "-n", n.ns, "route", "add", cidr, "via", gw, "dev", VXLAN_DEV, "onlink"])
                run(["ip", "-n", n.ns, "neigh", "replace", gw, "lladdr", macs[o.name], "dev", VXLAN_DEV,
                     "nud", "permanent"])
                run(in_netns(n.ns, "bridge", "fdb", "append", macs[o.name], "dev", VXLAN_DEV, "dst", o.uplink_ip))

    def _serve(self, p: LabPod) -> None:
        for port in POD_PORTS:
            www = self.base / "www" / p.netns / str(port)
            www.mkdir(parents=True)
            (www / "index.html").write_text(f"pod {p.key} port {port}\n")
            d = Daemon(f"httpd {p.key}:{port}", in_netns(p.netns, "busybox", "httpd", "-f", "-p", str(port),
                                                          "-h", str(www)),
                       self.base / "logs" / f"{p.netns}-{port}.log").start()
            self.daemons.append(d)
            self.teardown.push(f"stop {d.name}", d.stop)

    def _wait_ready(self) -> None:
        for n in self.node_list:
            for p in n.pods:
                wait_for(f"httpd in {p.key}", lambda p=p, n=n: run(in_netns(
                    n.ns, "curl", "-s", "-m", "1", f"http://{p.ip}:80/"), check=False).stdout.startswith("pod "),
                    timeout=15)

    # ----------------------------------------------------------------- services and flows
    def _ep(self, key: str, port: int = 80) -> LabEndpoint:
        p = self.pod(key)
        return LabEndpoint(p.ip, port, p.node, p.key)

    def _services(self) -> None:
        S = LabService
        client = self.pod("lab/client")
        n1 = self.node_list[0]
        if self.nodes == 1:
            elsewhere = LabEndpoint("10.244.2.9", 80, "elsewhere")  # a pod on a node not in the lab
            self.services = [
                S("lab", "web", "http", "10.96.0.10", 80,
                  [self._ep("lab/web-0"), self._ep("lab/web-1"), self._ep("lab/web-2")], node_port=30080),
                S("lab", "local", "http", "10.96.0.11", 80, [self._ep("lab/web-0"), self._ep("lab/web-1")],
                  node_port=30081, external_policy="Local"),
                S("lab", "nolocal", "http", "10.96.0.12", 80, [elsewhere], node_port=30082, external_policy="Local"),
                S("lab", "itp", "http", "10.96.0.13", 80, [self._ep("lab/web-2"), elsewhere], internal_policy="Local"),
                S("lab", "affinity", "http", "10.96.0.14", 80, [self._ep("lab/web-0"), self._ep("lab/web-1")],
                  affinity_seconds=10800),
                S("lab", "lb", "http", "10.96.0.15", 80, [self._ep("lab/web-1")], node_port=30085,
                  lb_ip=LB_IP, lb_source_ranges=(LB_RANGE,)),
                S("lab", "empty", "http", "10.96.0.16", 80, []),
                S("lab", "blocked", "http", "10.96.0.17", 8080, [self._ep("lab/web-0", 8080)]),
                S("lab", "routed", "http", "10.96.0.18", 80, [self._ep("lab/routed-0")]),
            ]
            web0 = self.pod("lab/web-0")
            self.policy_rule = (client.ip, web0.ip, 8080)
            c, node, ext, up = client.ip, n1.name, EXT_IP, n1.uplink_ip
            F = Flow
            self.flows = [
                F("pod-to-clusterip", "pod", c, client.netns, "10.96.0.10", 80, "delivered"),
                F("node-to-clusterip", "node", node, n1.ns, "10.96.0.10", 80, "delivered"),
                F("external-to-nodeport", "external", ext, self.ext_ns, up, 30080, "delivered", via=node),
                F("external-to-etp-local", "external", ext, self.ext_ns, up, 30081, "delivered", via=node),
                F("external-to-etp-local-no-local-endpoint", "external", ext, self.ext_ns, up, 30082, "dropped",
                  via=node),
                F("pod-to-itp-local", "pod", c, client.netns, "10.96.0.13", 80, "delivered"),
                F("pod-to-affinity", "pod", c, client.netns, "10.96.0.14", 80, "delivered", affinity=True),
                F("external-in-lb-source-range", "external", ext, self.ext_ns, LB_IP, 80, "delivered", via=node),
                F("external-outside-lb-source-range", "external", EXT2_IP, self.ext2_ns, LB_IP, 80, "dropped",
                  via=node),
                F("pod-to-no-endpoints", "pod", c, client.netns, "10.96.0.16", 80, "rejected"),
                F("pod-to-policy-dropped", "pod", c, client.netns, "10.96.0.17", 8080, "dropped"),
                F("pod-to-routed-pod-service", "pod", c, client.netns, "10.96.0.18", 80, "delivered"),
                F("node-to-routed-pod-service", "node", node, n1.ns, "10.96.0.18", 80, "delivered"),
            ]
        else:
            n2 = self.node_list[1]
            self.services = [
                S("lab", "xweb", "http", "10.96.1.10", 80,
                  [self._ep("lab/web-0"), self._ep("lab/web-1"), self._ep("lab/web-2")], node_port=30090),
                S("lab", "xlocal", "http", "10.96.1.11", 80, [self._ep("lab/web-1")], node_port=30091,
                  external_policy="Local"),
            ]
            c = client.ip
            F = Flow
            self.flows = [
                F("pod-to-clusterip-cross-node", "pod", c, client.netns, "10.96.1.10", 80, "delivered"),
                F("external-to-nodeport-cross-node", "external", EXT_IP, self.ext_ns, n1.uplink_ip, 30090,
                  "delivered", via=n1.name),
                F("external-to-etp-local-other-node", "external", EXT_IP, self.ext_ns, n1.uplink_ip, 30091,
                  "dropped", via=n1.name),
                F("external-to-etp-local-this-node", "external", EXT_IP, self.ext_ns, n2.uplink_ip, 30091,
                  "delivered", via=n2.name),
                F("node-to-clusterip-cross-node", "node", n2.name, n2.ns, "10.96.1.10", 80, "delivered"),
            ]

        assert tuple(f.id for f in self.flows) == FLOW_IDS[self.nodes]

    def _load_rules(self) -> None:
        for n in self.node_list:
            if self.mode == "iptables":
                extra: tuple[str, ...] = ()
                if self.policy_rule and n is self.node_list[0]:
                    src, dst, port = self.policy_rule
                    extra = (f"-A FORWARD -s {src}/32 -d {dst}/32 -p tcp -m tcp --dport {port} -m comment "
                             f'--comment "lab policy: deny client to web-0:{port}" -j DROP',)
                kprules.load_iptables(n.ns, kprules.iptables_rules(self.services, n.name, CLUSTER_CIDR, extra))
            else:
                kprules.load_nft(n.ns, kprules.nft_rules(self.services, n.name, CLUSTER_CIDR, SERVICE_CIDR,
                                                         [n.uplink_ip]))
                kprules.load_nft(n.ns, LAB_NAT)
                if self.policy_rule and n is self.node_list[0]:
                    src, dst, port = self.policy_rule
                    kprules.load_nft(n.ns, "add table ip lab-policy\n"
                                     "add chain ip lab-policy forward { type filter hook forward priority 10 ; }\n"
                                     f"add rule ip lab-policy forward ip saddr {src} ip daddr {dst} tcp dport {port} "
                                     f'drop comment "lab policy: deny client to web-0:{port}"\n')

    # ----------------------------------------------------------------- kernel tracing
    def enable_kernel_trace(self) -> None:
        """Mark every TCP SYN and SYN-ACK for the kernel's rule trace, in every node: iptables
        TRACE rules in raw PREROUTING/OUTPUT, or an nft chain at priority -300 setting nftrace.
        Call after the snapshot was collected (the trace rules are not part of the node)."""
        for n in self.node_list:
            if self.mode == "iptables":
                for chain in ("PREROUTING", "OUTPUT"):
                    for flags in ("SYN", "SYN,ACK"):  # the first packet and the first reply
                        run(in_netns(n.ns, "iptables", "-t", "raw", "-A", chain, "-p", "tcp", "--tcp-flags",
                                     "SYN,ACK", flags, "-j", "TRACE"))
            else:
                kprules.load_nft(n.ns, "add table ip labtrace\n"
                                 "add chain ip labtrace pre { type filter hook prerouting priority -300 ; }\n"
                                 "add chain ip labtrace out { type filter hook output priority -300 ; }\n"
                                 "add rule ip labtrace pre tcp flags & (syn|ack) == syn meta nftrace set 1\n"
                                 "add rule ip labtrace out tcp flags & (syn|ack) == syn meta nftrace set 1\n"
                                 "add rule ip labtrace pre tcp flags & (syn|ack) == syn|ack meta nftrace set 1\n"
                                 "add rule ip labtrace out tcp flags & (syn|ack) == syn|ack meta nftrace set 1\n")

    def flush_conntrack(self) -> None:
        for n in self.node_list:
            run(in_netns(n.ns, "conntrack", "-F"), check=False)

    def reset_affinity(self) -> None:
        """Forget session-affinity state: xt_recent lists / nft affinity set elements."""
        for n in self.node_list:
            if self.mode == "iptables":
                run(in_netns(n.ns, "sh", "-c", "for f in /proc/net/xt_recent/*; do [ -e \"$f\" ] && echo / > \"$f\"; "
                             "done; true"), check=False)
            else:
                for s in self.services:
                    if s.affinity_seconds:
                        for ep in s.endpoints:
                            run(in_netns(n.ns, "nft", "flush", "set", "ip", "kube-proxy", s.nft_affinity_set(ep)),
                                check=False)

    def close(self) -> list[str]:
        return self.teardown.run()

    def __enter__(self) -> "ServiceLab":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()



HAIRPIN_FLOW = "bridge-pod-to-clusterip-hairpin"


@dataclass
class HairpinLab(ServiceLab):
    """The classic broken reply, for real: one node, a client pod and the Service's only
    endpoint on the same bridge (cni0), kube-proxy's rules (no masquerade: the client is a
    pod). The first packet goes to the node (the cluster IP is routed via cni0's address) and
    is DNATed there; the endpoint answers the client on its own link, so cni0 switches the
    reply port to port. Only with ``net.bridge.bridge-nf-call-iptables=1`` does that bridged
    frame pass netfilter and conntrack, which rewrite its source back to the cluster IP;
    with 0 the client gets a SYN-ACK from the pod's address, which no socket of it expects.
    ``set_bridge_nf(0|1)`` switches it inside the node's namespace only."""

    def _build(self) -> None:
        self.base.mkdir(parents=True)
        self.teardown.push("remove lab dir", lambda: shutil.rmtree(self.base, ignore_errors=True))
        n = LabNode(name="n1", ns=f"lro{self.tag}1", index=1, uplink_ip="192.168.56.10", bridge_ip="10.244.1.1",
                    pod_cidr="10.244.1.0/24", routed_cidr="10.244.65.0/24")
        self.node_list.append(n)
        self._ns(n.ns)
        run(in_netns(n.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"))
        run(["ip", "-n", n.ns, "link", "set", "lo", "up"])
        run(["ip", "-n", n.ns, "link", "add", "cni0", "type", "bridge"])
        run(["ip", "-n", n.ns, "addr", "add", f"{n.bridge_ip}/24", "dev", "cni0"])
        run(["ip", "-n", n.ns, "link", "set", "cni0", "up"])
        web = self._bridge_pod(n, "web-0", 2)
        client = self._bridge_pod(n, "client", 30)
        self._serve(web)
        self.services = [LabService("lab", "hairpin", "http", "10.96.0.20", 80, [self._ep("lab/web-0")])]
        self.flows = [Flow(HAIRPIN_FLOW, "pod", client.ip, client.netns, "10.96.0.20", 80, "delivered")]
        if self.mode == "iptables":
            kprules.load_iptables(n.ns, kprules.iptables_rules(self.services, n.name, CLUSTER_CIDR))
        else:
            kprules.load_nft(n.ns, kprules.nft_rules(self.services, n.name, CLUSTER_CIDR, SERVICE_CIDR, [n.uplink_ip]))
        wait_for("httpd in lab/web-0", lambda: run(in_netns(n.ns, "curl", "-s", "-m", "1", f"http://{web.ip}:80/"),
                                                   check=False).stdout.startswith("pod "), timeout=15)

    def set_bridge_nf(self, value: int) -> None:
        run(in_netns(self.node_list[0].ns, "sysctl", "-qw", f"net.bridge.bridge-nf-call-iptables={value}"))
