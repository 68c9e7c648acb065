"""A node wired by hand with ``ip`` only: a bridge in a node namespace and N "pods", each a
named network namespace joined to the bridge by a veth pair — what CNI's bridge plugin does,
without any container runtime. No name or address is created in the root namespace: veth
pairs are created directly with both ends inside their namespaces."""

from __future__ import annotations

import ipaddress
import json
import uuid
from dataclasses import dataclass, field

from tests.lab.netns import add_netns, delete_netns, in_netns
from tests.lab.proc import LabError, Teardown, run
from tests.lab.truth import TruthVeth


@dataclass
class PlainPod:
    netns: str  # name under /var/run/netns
    ip: str
    prefixlen: int
    veth: TruthVeth


@dataclass
class PlainTruth:
    node_ns: str
    bridge: str
    bridge_ip: str
    pods: list[PlainPod] = field(default_factory=list)


@dataclass
class PlainIpNode:
    n_pods: int = 4
    subnet: str = "10.244.2.0/24"
    bridge: str = "br-pods"
    name: str = field(default_factory=lambda: f"lri{uuid.uuid4().hex[:6]}")
    teardown: Teardown = field(default_factory=Teardown)
    truth: PlainTruth | None = None

    def build(self) -> PlainTruth:
        try:
            return self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> PlainTruth:
        net = ipaddress.ip_network(self.subnet)
        hosts = net.hosts()
        gw = str(next(hosts))
        add_netns(self.name)
        self.teardown.push("delete node netns", lambda: delete_netns(self.name))
        n = self.name
        run(["ip", "-n", n, "link", "add", self.bridge, "type", "bridge"])
        run(["ip", "-n", n, "addr", "add", f"{gw}/{net.prefixlen}", "dev", self.bridge])
        run(["ip", "-n", n, "link", "set", self.bridge, "up"])
        truth = PlainTruth(node_ns=n, bridge=self.bridge, bridge_ip=gw)
        for i in range(self.n_pods):
            pod_ns = f"{n}-pod{i}"
            add_netns(pod_ns)
            self.teardown.push(f"delete {pod_ns}", lambda p=pod_ns: delete_netns(p))
            host_if = f"veth{uuid.uuid4().hex[:8]}"
            run(["ip", "link", "add", "name", host_if, "netns", n, "type", "veth",
                 "peer", "name", "eth0", "netns", pod_ns])
            run(["ip", "-n", n, "link", "set", host_if, "master", self.bridge, "up"])
            ip = str(next(hosts))
            run(["ip", "-n", pod_ns, "addr", "add", f"{ip}/{net.prefixlen}", "dev", "eth0"])
            run(["ip", "-n", pod_ns, "link", "set", "eth0", "up"])
            run(["ip", "-n", pod_ns, "route", "add", "default", "via", gw])
            host = json.loads(run(["ip", "-n", n, "-j", "link", "show", host_if]).stdout)[0]
            pod = json.loads(run(["ip", "-n", pod_ns, "-j", "link", "show", "eth0"]).stdout)[0]
            if host["link_index"] != pod["ifindex"] or pod["link_index"] != host["ifindex"]:
                raise LabError(f"{host_if} and {pod_ns}/eth0 do not point at each other")
            truth.pods.append(PlainPod(pod_ns, ip, net.prefixlen, TruthVeth(
                host_ifname=host_if, host_ifindex=host["ifindex"], pod_ifname="eth0",
                pod_ifindex=pod["ifindex"], host_mac=host["address"], pod_mac=pod["address"],
                bridge=self.bridge)))
        self.truth = truth
        return truth

    def ping_all(self) -> None:
        """Each pod answers from the node namespace (proves the wiring is live)."""
        assert self.truth is not None
        for p in self.truth.pods:
            run(in_netns(self.name, "busybox", "ping", "-c", "1", "-W", "2", p.ip), timeout=10)

    def close(self) -> list[str]:
        return self.teardown.run()

    def __enter__(self) -> "PlainIpNode":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
