"""Properties of the analyzers on arbitrary (valid) snapshots: they never raise, and what
they claim holds — every veth pair is mutual and anchored in the node's namespace, no pod
interface is claimed twice, sandboxes come first, components come from executables."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labreport.analysis import analyze_node
from labreport.analysis.components import find_components
from labreport.analysis.pods import group_pods
from labreport.analysis.veth import match_veths
from labreport.snapshot import Address, Container, Link, NetNamespace, NodeSnapshot, Process

NS_NAMES = ["host", "cni-a", "cni-b", "cni-c", "other-node", "pid:42"]
IDS = ["e6cf53e8a57e5", "e6cf53e8a57e5aa", "23f2f68378cc", "23f2f68378cc2b4f", "a", "", "9b60c8baf50"]

links = st.builds(
    Link,
    ifindex=st.integers(1, 6),
    name=st.sampled_from(["eth0", "lo", "cni0", "veth05dbc1b4", "flannel.1", "cali1", "weave", "vethwe-bridge"]),
    kind=st.sampled_from([None, "veth", "bridge", "vxlan"]),
    peer_ifindex=st.one_of(st.none(), st.integers(1, 6)),
    link_netnsid=st.one_of(st.none(), st.integers(0, 3)),
    link_netns=st.one_of(st.none(), st.sampled_from(NS_NAMES)),
    master=st.one_of(st.none(), st.sampled_from(["cni0", "weave", "nope"])),
    mac=st.one_of(st.none(), st.sampled_from(["be:ab:81:b0:b7:72", "02:2a:2d:32:52:9a"])),
    addresses=st.lists(st.builds(Address, family=st.just("inet"), local=st.sampled_from(["10.244.1.2", "10.244.1.3"]),
                                 prefixlen=st.just(24)), max_size=1),
)
spaces = st.builds(
    NetNamespace,
    name=st.sampled_from(NS_NAMES),
    kind=st.sampled_from(["node", "named", "pid"]),
    pid=st.one_of(st.none(), st.just(42)),
    links=st.lists(links, max_size=5),
    nsids=st.dictionaries(st.integers(0, 3), st.sampled_from(NS_NAMES), max_size=3),
)
containers = st.builds(
    Container,
    id=st.sampled_from(IDS),
    name=st.sampled_from(["k8s_POD_pod_default_u1_0", "k8s_viewer_pod_default_u1_0", "k8s_POD_pod_default_u1_1",
                          "kube-proxy", "etcd", "downloader", "k8s_bad", "", "k8s_kube-proxy_kp_kube-system_u2_0"]),
    is_sandbox=st.booleans(),
    sandbox_id=st.one_of(st.none(), st.sampled_from(IDS)),
    pod_uid=st.one_of(st.none(), st.sampled_from(["u1", "u2"])),
    pod_name=st.one_of(st.none(), st.sampled_from(["pod", "testpod"])),
    network_mode=st.one_of(st.none(), st.sampled_from(["none", "container:23f2f68378cc", "container:", "host"])),
    netns_path=st.one_of(st.none(), st.sampled_from(["/var/run/netns/cni-a", "/proc/42/ns/net", "x"])),
    pid=st.one_of(st.none(), st.just(42)),
    state=st.sampled_from([None, "running", "Exited (0) 2 hours ago", "SANDBOX_READY", ""]),
)
processes = st.builds(
    Process,
    pid=st.integers(1, 50),
    command=st.one_of(
        st.sampled_from(["grep --color=auto kube", "etcd --kubeconfig=/x", "/usr/bin/kubelet --config=/c",
                         "kube-controller-man...", "/usr/bin/kubele", "calico-node -felix", "[kthreadd]",
                         '/bin/sh -c "unbalanced', "containerd-shim-runc-v2 -namespace k8s.io", "-", "--"]),
        st.text(max_size=40)),
    truncated=st.booleans(),
    in_container=st.one_of(st.none(), st.booleans()),
)
nodes = st.builds(NodeSnapshot, name=st.just("n"), processes=st.lists(processes, max_size=6),
                  containers=st.lists(containers, max_size=6), netns=st.lists(spaces, max_size=5))


@st.composite
def wired_nodes(draw):
    """A node wired like a real one (host veths ↔ pod eth0s, every eth0 ifindex 2, another
    node's pods visible), then damaged at random: wrong peer indexes, missing nsid
    entries, names dropped — what partial collection and pasted text look like."""
    n_pods = draw(st.integers(0, 4))
    n_other = draw(st.integers(0, 2))
    host_links = [Link(ifindex=1, name="lo"), Link(ifindex=2, name="cni0", kind="bridge")]
    node_nsids: dict[int, str] = {}
    spaces = []
    for i in range(n_pods + n_other):
        mine = i < n_pods
        ns_name = f"cni-{i}"
        host_if = 3 + (i if mine else i - n_pods)  # the other node reuses the same numbers
        peer_node = "host" if mine else "other-node"
        if mine:
            node_nsids[i] = ns_name
            host_links.append(Link(ifindex=host_if, name=f"veth{i}", kind="veth", peer_ifindex=2, link_netnsid=i,
                                   link_netns=ns_name if draw(st.booleans()) else None, master="cni0",
                                   mac=f"02:00:00:00:00:{i:02x}"))
        eth0 = Link(ifindex=2, name="eth0", kind=draw(st.sampled_from(["veth", None])), peer_ifindex=host_if,
                    link_netnsid=0, mac=f"0a:00:00:00:00:{i:02x}",
                    addresses=[Address(family="inet", local=f"10.244.{1 if mine else 2}.{i + 2}", prefixlen=24)])
        if draw(st.integers(0, 5)) == 0:
            eth0.peer_ifindex = draw(st.integers(1, 8))  # damage: points elsewhere
        nsids = {0: peer_node} if draw(st.integers(0, 3)) else {}  # damage: no nsid table
        spaces.append(NetNamespace(name=ns_name, links=[Link(ifindex=1, name="lo"), eth0], nsids=nsids))
    if draw(st.integers(0, 3)) == 0 and node_nsids:
        node_nsids.pop(draw(st.sampled_from(sorted(node_nsids))))  # damage: a missing nsid entry
    host = NetNamespace(name="host", kind="node", links=host_links, nsids=node_nsids)
    return NodeSnapshot(name="n", netns=[host, *spaces])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(nodes, wired_nodes()))
def test_analyzers_never_raise_and_pairs_are_mutual(node):
    na = analyze_node(node)
    assert not any(": failed (" in w for w in na.warnings), na.warnings
    node_ns = node.node_netns()
    claimed = set()
    for p in match_veths(node):
        assert node_ns is not None
        host = [l for l in node_ns.links if l.ifindex == p.host_ifindex and l.name == p.host_ifname]
        assert host, p
        pod_ns = [ns for ns in node.netns if ns.name == p.netns and ns is not node_ns]
        pod = [l for ns in pod_ns for l in ns.links if l.ifindex == p.pod_ifindex and l.name == p.pod_ifname]
        assert pod, p
        assert any(h.peer_ifindex == p.pod_ifindex for h in host)
        assert any(l.peer_ifindex == p.host_ifindex for l in pod)
        assert (p.netns, p.pod_ifindex) not in claimed
        claimed.add((p.netns, p.pod_ifindex))
        # never another node's pod: their eth0 points at "other-node" (10.244.2.x)
        assert not any(ip.startswith("10.244.2.") for ip in p.pod_ips), p


@settings(max_examples=300, deadline=None)
@given(nodes)
def test_pods_sandbox_first_and_components_from_executables(node):
    for pod in group_pods(node):
        flags = [c.is_sandbox for c in pod.containers]
        assert flags == sorted(flags, reverse=True)  # every sandbox before every app container
    for comp in find_components(node):
        if comp.pid is not None and any(p.pid == comp.pid for p in node.processes):
            assert not comp.command.startswith("grep ")
