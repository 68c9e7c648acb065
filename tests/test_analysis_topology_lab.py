"""Node devices of the other CNI shapes, built for real in namespaces of this test's own
and read back with `ip -j -d addr` / `ip -j route` / `ip -j netns list-id`:

  calico-like: routed pod veths cali<hash> (no bridge, a /32 route per pod), vxlan.calico
  weave-like:  bridge "weave" with vethwe-bridge (peer vethwe-datapath) and the pod veths
               vethwepl<hash>, VXLAN device vxlan-6784
  cilium-like: cilium_host / cilium_net (a veth pair inside the node), cilium_vxlan
               (external VXLAN), routed pod veths lxc<hash>

(This kernel has no ipip or openvswitch link type, so calico's tunl0 and weave's
`datapath` cannot be built here.) Only device names, kinds and wiring matter to the
analysis; the CNI daemons themselves are not needed.
"""

from __future__ import annotations

import uuid

import pytest

from labreport.analysis.topology import describe
from labreport.analysis.veth import match_veths
from labreport.snapshot import NodeSnapshot
from tests.conftest import needs_lab
from tests.test_analysis_veth_lab import read_netns, sh

pytestmark = [pytest.mark.lab, needs_lab("ip")]


class Shapes:
    def __init__(self) -> None:
        self.s = uuid.uuid4().hex[:5]
        self.created: list[str] = []

    def ns(self, name: str) -> str:
        sh("ip", "netns", "add", name)
        self.created.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def uplink(self, node: str, addr: str) -> None:
        sh("ip", "-n", node, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
        sh("ip", "-n", node, "addr", "add", addr, "dev", "eth0")
        for dev in ("eth0", "eth0p"):
            sh("ip", "-n", node, "link", "set", dev, "up")
        gw = addr.rsplit(".", 1)[0] + ".1"
        sh("ip", "-n", node, "route", "add", "default", "via", gw, "dev", "eth0")

    def pod(self, node: str, pod: str, host_if: str, ip: str, *, master: str | None, routed: bool) -> None:
        self.ns(pod)
        sh("ip", "-n", node, "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", pod)
        if master:
            sh("ip", "-n", node, "link", "set", host_if, "master", master)
        sh("ip", "-n", node, "link", "set", host_if, "up")
        prefix = "32" if routed else "24"
        sh("ip", "-n", pod, "addr", "add", f"{ip}/{prefix}", "dev", "eth0")
        sh("ip", "-n", pod, "link", "set", "eth0", "up")
        if routed:
            sh("ip", "-n", node, "route", "add", f"{ip}/32", "dev", host_if, "scope", "link")

    def build(self) -> None:
        s = self.s
        # calico
        self.calico = self.ns(f"lr{s}c")
        self.uplink(self.calico, "192.168.78.10/24")
        sh("ip", "-n", self.calico, "link", "add", "vxlan.calico", "type", "vxlan", "id", "4096",
           "dstport", "4789", "local", "192.168.78.10", "dev", "eth0")
        sh("ip", "-n", self.calico, "link", "set", "vxlan.calico", "up")
        self.calico_pods = [(f"cni-{s}-c{i}", f"cali{s}{i}ab12", f"10.244.3.{i + 1}") for i in (1, 2)]
        for pod, host_if, ip in self.calico_pods:
            self.pod(self.calico, pod, host_if, ip, master=None, routed=True)
        # weave
        self.weave = self.ns(f"lr{s}w")
        self.uplink(self.weave, "192.168.79.10/24")
        sh("ip", "-n", self.weave, "link", "add", "weave", "type", "bridge")
        sh("ip", "-n", self.weave, "addr", "add", "10.32.0.1/12", "dev", "weave")
        sh("ip", "-n", self.weave, "link", "add", "vethwe-bridge", "type", "veth", "peer", "name", "vethwe-datapath")
        sh("ip", "-n", self.weave, "link", "set", "vethwe-bridge", "master", "weave")
        sh("ip", "-n", self.weave, "link", "add", "vxlan-6784", "type", "vxlan", "id", "0", "dstport", "6784",
           "nolearning")
        for dev in ("weave", "vethwe-bridge", "vethwe-datapath", "vxlan-6784"):
            sh("ip", "-n", self.weave, "link", "set", dev, "up")
        self.weave_pods = [(f"cni-{s}-w1", f"vethwepl{s}1", "10.32.0.2")]
        for pod, host_if, ip in self.weave_pods:
            self.pod(self.weave, pod, host_if, ip, master="weave", routed=False)
        # cilium
        self.cilium = self.ns(f"lr{s}i")
        self.uplink(self.cilium, "192.168.80.10/24")
        sh("ip", "-n", self.cilium, "link", "add", "cilium_host", "type", "veth", "peer", "name", "cilium_net")
        sh("ip", "-n", self.cilium, "addr", "add", "10.0.0.91/32", "dev", "cilium_host")
        sh("ip", "-n", self.cilium, "link", "add", "cilium_vxlan", "type", "vxlan", "external")
        for dev in ("cilium_host", "cilium_net", "cilium_vxlan"):
            sh("ip", "-n", self.cilium, "link", "set", dev, "up")
        self.cilium_pods = [(f"cni-{s}-i1", f"lxc{s}1f2e", "10.0.0.50")]
        for pod, host_if, ip in self.cilium_pods:
            self.pod(self.cilium, pod, host_if, ip, master=None, routed=True)

    def snapshot(self, node: str, pods) -> NodeSnapshot:
        netns = [read_netns(node, "node")] + [read_netns(p, "named") for p, _h, _ip in pods]
        return NodeSnapshot(name=node, netns=netns)

    def teardown(self) -> None:
        for name in reversed(self.created):
            sh("ip", "netns", "del", name, check=False)


@pytest.fixture(scope="module")
def shapes():
    lab = Shapes()
    try:
        lab.build()
        yield lab
    finally:
        lab.teardown()


def test_calico_routed_veths(shapes):
    node = shapes.snapshot(shapes.calico, shapes.calico_pods)
    bridges, overlays, uplink = describe(node)
    assert bridges == {}
    vx = next(o for o in overlays if o.name == "vxlan.calico")
    assert (vx.type, vx.kind, vx.vni, vx.port, vx.local) == ("calico", "vxlan", 4096, 4789, "192.168.78.10")
    cali = next(o for o in overlays if o.name == "cali*")
    assert sorted(cali.ports) == sorted(h for _p, h, _ip in shapes.calico_pods)
    assert uplink.name == "eth0" and uplink.gateway == "192.168.78.1"
    pairs = {p.host_ifname: p for p in match_veths(node)}
    for pod, host_if, ip in shapes.calico_pods:
        assert pairs[host_if].bridge is None  # routed, no bridge
        assert pairs[host_if].netns == pod and pairs[host_if].pod_ips == [f"{ip}/32"]


def test_weave_bridge(shapes):
    node = shapes.snapshot(shapes.weave, shapes.weave_pods)
    bridges, overlays, uplink = describe(node)
    (pod, host_if, ip), = shapes.weave_pods
    assert sorted(bridges["weave"]) == sorted(["vethwe-bridge", host_if])
    types = {o.name: o.type for o in overlays}
    assert types["weave"] == "weave" and types["vxlan-6784"] == "weave"
    weave = next(o for o in overlays if o.name == "weave")
    assert "10.32.0.1/12" in weave.addresses
    (pair,) = match_veths(node)  # vethwe-bridge's peer is in the node itself: not a pod pair
    assert (pair.host_ifname, pair.bridge, pair.netns, pair.pod_ips) == (host_if, "weave", pod, [f"{ip}/24"])


def test_cilium_devices(shapes):
    node = shapes.snapshot(shapes.cilium, shapes.cilium_pods)
    bridges, overlays, _uplink = describe(node)
    assert bridges == {}
    by = {o.name: o for o in overlays}
    assert {"cilium_host", "cilium_net", "cilium_vxlan"} <= set(by)
    assert all(by[n].type == "cilium" for n in ("cilium_host", "cilium_net", "cilium_vxlan"))
    assert by["cilium_vxlan"].kind == "vxlan" and "10.0.0.91/32" in by["cilium_host"].addresses
    (pod, host_if, ip), = shapes.cilium_pods
    (pair,) = match_veths(node)
    assert (pair.host_ifname, pair.bridge, pair.pod_ips) == (host_if, None, [f"{ip}/32"])
