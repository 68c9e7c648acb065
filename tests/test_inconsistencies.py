"""Veth pairs inferred from ifindex numbers when `grep` cut the host's link-netns line, and
inconsistencies between outputs of one report. The interface outputs were captured from a
veth pair between two namespaces (tests/fixtures/reportimport/README.md): the host's
`ip link show | grep vethwepl` keeps `12: vethwepl3a19ab6@if2` only; the pod's `ip addr`
says `2: eth0@if12 … link-netnsid 0`."""

from __future__ import annotations

from labreport.analysis import analyze
from labreport.parsers import get
from labreport.snapshot import ClusterObjects, Evidence, NetNamespace, NodeSnapshot, Snapshot

from tests.conftest import FIXTURES

HOST = (FIXTURES / "reportimport" / "host-ip-link-grep-cut.txt").read_text(encoding="utf-8")
POD = (FIXTURES / "reportimport" / "pod-ip-addr.txt").read_text(encoding="utf-8")


def _snap(node_of_pod: str | None = None) -> Snapshot:
    host = NetNamespace(name="host", kind="node", links=get("ip-addr").parse(HOST).value)
    pod = NetNamespace(name="web", kind="named", links=get("ip-addr").parse(POD).value)
    node = NodeSnapshot(name="class", netns=[host, pod], evidence=[
        Evidence(id="ip-link", command="ip link | grep veth", stdout="root@class2:~# ip link | grep veth\n" + HOST,
                 origin="import", path="r.txt:10")])
    cluster = None
    if node_of_pod:
        cluster = ClusterObjects(source="import")
        cluster.tables = [{"kind": "Pod", "name": "web", "columns": {"IP": "10.32.0.2", "NODE": node_of_pod},
                           "node": node_of_pod, "source": "r.txt:40"}]
    return Snapshot(nodes=[node, NodeSnapshot(name="class2")], cluster=cluster)


def test_cut_link_netns_pairs_by_index_and_says_so():
    a = analyze(_snap())
    (pair,) = a.node("class").veth_pairs
    assert (pair.host_ifname, pair.host_ifindex, pair.pod_ifname, pair.pod_ifindex) == ("vethwepl3a19ab6", 12, "eth0", 2)
    assert pair.pod_ips == ["10.32.0.2/12"]
    assert pair.inferred == "inferred from ifindex" and pair.contradicted is None


def test_a_second_host_link_pointing_at_the_same_pod_interface_refuses_the_guess():
    s = _snap()
    host = s.nodes[0].netns[0]
    host.links += get("ip-addr").parse(HOST.replace("12: vethwepl3a19ab6@if2", "13: vethother@if2")).value
    host.links.sort(key=lambda lk: lk.ifindex)
    assert analyze(s).node("class").veth_pairs == []


def test_a_pair_the_describe_contradicts_is_flagged_and_prompts_checked():
    a = analyze(_snap(node_of_pod="class2"))
    assert a.node("class").veth_pairs == []  # not drawn as fact
    assert any("not drawn" in w and "class2" in w for w in a.node("class").warnings)
    kinds = {i.kind for i in a.inconsistencies}
    assert {"veth-contradicted", "prompt-node"} <= kinds
    prompt = next(i for i in a.inconsistencies if i.kind == "prompt-node")
    assert "root@class2" in prompt.detail and prompt.node == "class"


def test_two_ips_for_one_pod_and_an_endpoint_no_pod_has():
    s = _snap(node_of_pod="class")
    s.cluster.tables.append({"kind": "Pod", "name": "web", "columns": {"IP": "10.32.0.9"}, "source": "r.txt:50"})
    a = analyze(s)
    assert any(i.kind == "pod-ip-conflict" and "10.32.0.9" in i.detail for i in a.inconsistencies)


def test_report_warnings_reach_the_analysis():
    from labreport.reportimport import import_report
    from tests.conftest import FIXTURES

    r = import_report(str(FIXTURES / "seeds" / "raw" / "seed000.txt"))
    a = analyze(r.after)
    assert any("Deployment deployment" in u.message and u.fix for u in a.unread)
