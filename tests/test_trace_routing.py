"""The routing part of the model: a calico-style routed pod (a veth with no bridge, a /32
route per pod) and host-gw routes between two nodes (the other node's pod subnet via its
address), on snapshot records shaped as `ip -d addr` / `ip route` give them."""

from __future__ import annotations

from labreport.analysis import analyze
from labreport.analysis.trace import Flow, build_world, run_flow
from labreport.snapshot import Address, Link, NetNamespace, NodeSnapshot, Route, Snapshot


def A(ip: str, plen: int) -> Address:
    return Address(family="inet", local=ip, prefixlen=plen)


def two_nodes() -> Snapshot:
    # node-a: calico-style: cali veth with no bridge, /32 route per pod
    host_a = NetNamespace(name="host", kind="node", nsids={0: "cni-a1"}, links=[
        Link(ifindex=1, name="lo", addresses=[A("127.0.0.1", 8)]),
        Link(ifindex=2, name="eth0", addresses=[A("192.168.56.10", 24)], state="UP"),
        Link(ifindex=7, name="cali1a2b3c", kind="veth", peer_ifindex=3, link_netnsid=0, state="UP")],
        routes=[Route(dst="default", gateway="192.168.56.1", dev="eth0"),
                Route(dst="192.168.56.0/24", dev="eth0", scope="link", src="192.168.56.10"),
                Route(dst="10.244.0.5", dev="cali1a2b3c", scope="link"),
                Route(dst="10.244.1.0/24", gateway="192.168.56.11", dev="eth0")])
    pod_a = NetNamespace(name="cni-a1", kind="named", nsids={0: "host"}, links=[
        Link(ifindex=1, name="lo", addresses=[A("127.0.0.1", 8)]),
        Link(ifindex=3, name="eth0", kind="veth", peer_ifindex=7, link_netnsid=0, addresses=[A("10.244.0.5", 32)])],
        routes=[Route(dst="default", gateway="169.254.1.1", dev="eth0", onlink=True)])
    # node-b: host-gw: a bridge, the other node's pod subnet via its address
    host_b = NetNamespace(name="host", kind="node", nsids={0: "cni-b1"}, links=[
        Link(ifindex=1, name="lo", addresses=[A("127.0.0.1", 8)]),
        Link(ifindex=2, name="eth0", addresses=[A("192.168.56.11", 24)], state="UP"),
        Link(ifindex=4, name="cni0", kind="bridge", addresses=[A("10.244.1.1", 24)], state="UP"),
        Link(ifindex=9, name="veth9f", kind="veth", peer_ifindex=3, link_netnsid=0, master="cni0", state="UP")],
        routes=[Route(dst="default", gateway="192.168.56.1", dev="eth0"),
                Route(dst="192.168.56.0/24", dev="eth0", scope="link", src="192.168.56.11"),
                Route(dst="10.244.1.0/24", dev="cni0", scope="link", src="10.244.1.1"),
                Route(dst="10.244.0.0/24", gateway="192.168.56.10", dev="eth0")])
    pod_b = NetNamespace(name="cni-b1", kind="named", nsids={0: "host"}, links=[
        Link(ifindex=1, name="lo", addresses=[A("127.0.0.1", 8)]),
        Link(ifindex=3, name="eth0", kind="veth", peer_ifindex=9, link_netnsid=0, addresses=[A("10.244.1.7", 24)])],
        routes=[Route(dst="default", gateway="10.244.1.1", dev="eth0")])
    return Snapshot(nodes=[NodeSnapshot(name="node-a", netns=[host_a, pod_a]), NodeSnapshot(name="node-b", netns=[host_b, pod_b])])


def kinds(o):
    return [(h.kind, h.node) for h in o.hops]


def test_host_gw_to_a_routed_pod_and_back():
    s = two_nodes()
    a = analyze(s)
    w = build_world(s, a)
    (o,) = run_flow(w, Flow(src="10.244.1.7", dst="10.244.0.5", dport=80, entry="pod", entry_node="node-b")).outcomes
    assert o.result == "delivered" and o.node == "node-a" and o.endpoint == "10.244.0.5:80" and o.probability == 1
    assert kinds(o) == [("device", "node-b"), ("veth", "node-b"), ("bridge", "node-b"), ("route", "node-b"),
                        ("wire", "node-b"), ("device", "node-a"), ("route", "node-a"), ("veth", "node-a"),
                        ("deliver", "node-a")]
    assert "via 192.168.56.10 dev eth0" in o.hops[3].detail and o.hops[7].device == "cali1a2b3c"
    assert o.hops[-1].netns == "cni-a1"
    (back,) = run_flow(w, Flow(src="10.244.0.5", dst="10.244.1.7", dport=80, entry="pod", entry_node="node-a")).outcomes
    assert back.result == "delivered" and back.node == "node-b"
    assert [h.kind for h in back.hops][-4:] == ["route", "bridge", "veth", "deliver"]
    assert back.hops[-3].device == "cni0" and back.hops[-2].device == "veth9f"


def test_no_route_is_dropped_and_an_address_outside_is_unknown():
    s = two_nodes()
    s.nodes[0].netns[0].routes = [r for r in s.nodes[0].netns[0].routes if r.dst != "default"]
    a = analyze(s)
    w = build_world(s, a)
    (o,) = run_flow(w, Flow(src=None, dst="198.51.100.9", dport=443, entry="process", entry_node="node-a")).outcomes
    assert o.result == "dropped" and "no route to 198.51.100.9 on node-a" in o.reason
    (o,) = run_flow(w, Flow(src=None, dst="198.51.100.9", dport=443, entry="process", entry_node="node-b")).outcomes
    assert o.result == "unknown" and "not a node of the snapshot" in o.reason


def _uplinks_are_veths(s: Snapshot) -> Snapshot:
    """Each node's eth0 a veth whose peer is a port of a bridge in another namespace, as the
    two-node lab (tests/lab/cluster.py) and nodes in containers (kind, LXD) have it: the record
    `ip -d -j link` gave for the lab's master eth0 (kind veth, link_netnsid 0 → the lan netns)."""
    for node in s.nodes:
        host = node.netns[0]
        host.nsids = {**{k + 1: v for k, v in host.nsids.items()}, 0: "lan"}
        for link in host.links:
            if link.link_netnsid is not None:
                link.link_netnsid += 1
            if link.name == "eth0":
                link.kind, link.peer_ifindex, link.link_netnsid, link.link_netns = "veth", 3, 0, "lan"
    return s


def test_host_gw_over_an_uplink_that_is_a_veth_reaches_the_other_node():
    """Issue 11: a route `via <other node> dev eth0` where eth0 is a veth went into the 'pod'
    behind eth0 (unknown: the lan-side peer does not have the pod IP) instead of onto the wire."""
    s = _uplinks_are_veths(two_nodes())
    a = analyze(s)
    w = build_world(s, a)
    (o,) = run_flow(w, Flow(src="10.244.1.7", dst="10.244.0.5", dport=80, entry="pod", entry_node="node-b")).outcomes
    assert o.result == "delivered" and o.node == "node-a" and o.endpoint == "10.244.0.5:80", o
    assert ("wire", "node-b") in kinds(o) and o.hops[-2].device == "cali1a2b3c"
    (back,) = run_flow(w, Flow(src=None, dst="10.244.1.7", dport=80, entry="process", entry_node="node-a")).outcomes
    assert back.result == "delivered" and back.node == "node-b" and back.hops[-2].device == "veth9f", back
    # the node's own subnet on its uplink veth is still the node network, not a pod
    (gw,) = run_flow(w, Flow(src=None, dst="192.168.56.77", dport=80, entry="process", entry_node="node-a")).outcomes
    assert gw.result == "unknown" and "not a node of the snapshot" in (gw.reason or ""), gw
