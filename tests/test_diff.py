"""labreport diff on real outputs: seed 000's worker `docker ps` before (Q3) and after (Q5:
the Q3 containers plus the three the student saw appear) deploying the pod."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labreport.diff import diff_snapshots, is_empty
from labreport.snapshot import Address, Iptables, Link, NetNamespace, NodeSnapshot, Snapshot, save

docker_ps = pytest.importorskip("labreport.parsers.docker_ps")

# seed 000 (/work/shared/seeds/000_e359b12b30cf104e.txt), Q3, worker node: `docker ps`
Q3_WORKER = """CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tNAMES
255bca2632d3\tregistry.cn-hangzhou.aliyuncs.com/google_containers/kube-proxy\t"/usr/local/bin/kube..."\t57 minutes ago\tUp 57 minutes\tk8s_kube-proxy_kube-proxy-d2lkd_kube-system_9b7ddf4c-2e00-4904-ab47-3d6ea10376b5_0
d9985bc654f3\tregistry.cn-hangzhou.aliyuncs.com/google_containers/pause:3.6\t"/pause"\t57 minutes ago\tUp 57 minutes\tk8s_POD_kube-proxy-d2lkd_kube-system_9b7ddf4c-2e00-4904-ab47-3d6ea10376b5_0
"""
# same seed, Q5: "worker节点上多出了如下三个容器" (the three new containers after the pod)
Q5_NEW = """CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tNAMES
a7fae79530a1\tdplsming/aria2ng-downloader\t"/conf-copy/start.sh"\tAbout an hour ago\tUp About an hour\tk8s_downloader_pod_default_05260c21-c524-41c7-82e7-ea61f09f4f2f_0
c17c77e1b546\tdplsming/nginx-fileserver\t"/docker-entrypoint...."\tAbout an hour ago\tUp About an hour\tk8s_viewer_pod_default_05260c21-c524-41c7-82e7-ea61f09f4f2f_0
23f2f68378cc\tregistry.cn-hangzhou.aliyuncs.com/google_containers/pause:3.6\t"/pause"\tAbout an hour ago\tUp About an hour\tk8s_POD_pod_default_05260c21-c524-41c7-82e7-ea61f09f4f2f_0
"""
POD_UID = "05260c21-c524-41c7-82e7-ea61f09f4f2f"


def _snap(text: str) -> Snapshot:
    containers = docker_ps.parse(text, source="docker ps").value
    return Snapshot(nodes=[NodeSnapshot(name="worker", source="import", containers=containers)])


@pytest.fixture
def before_after() -> tuple[Snapshot, Snapshot]:
    before = _snap(Q3_WORKER)
    after_text = Q3_WORKER + "\n".join(Q5_NEW.splitlines()[1:]) + "\n"
    return before, _snap(after_text)


def test_diff_names_exactly_the_new_containers_and_the_sandbox(before_after):
    before, after = before_after
    d = diff_snapshots(before, after)
    w = d["nodes"]["worker"]
    added = {c["id"]: c for c in w["containers"]["added"]}
    assert set(added) == {"a7fae79530a1", "c17c77e1b546", "23f2f68378cc"}
    assert w["containers"]["removed"] == []
    assert {c["pod"] for c in added.values()} == {"default/pod"}
    assert [c["id"] for c in added.values() if c["is_sandbox"]] == ["23f2f68378cc"]
    assert added["a7fae79530a1"]["image"] == "dplsming/aria2ng-downloader"
    assert added["c17c77e1b546"]["name"] == f"k8s_viewer_pod_default_{POD_UID}_0"
    assert [s["id"] for s in w["sandboxes"]["added"]] == ["23f2f68378cc"]
    assert [(p["pod"], p["uid"], sorted(p["containers"]), p["sandbox_id"]) for p in w["pods"]["added"]] == [
        ("default/pod", POD_UID, sorted([f"k8s_downloader_pod_default_{POD_UID}_0", f"k8s_viewer_pod_default_{POD_UID}_0"]), "23f2f68378cc")]
    assert d["summary"]["worker"]["containers"] == [3, 0]
    # reversed: the same three are removed
    r = diff_snapshots(after, before)["nodes"]["worker"]
    assert {c["id"] for c in r["containers"]["removed"]} == set(added) and r["containers"]["added"] == []


def test_short_and_full_ids_are_the_same_container(before_after):
    before, after = before_after
    for c in after.nodes[0].containers:
        if c.id == "255bca2632d3":
            c.id = "255bca2632d3" + "7" * 52  # docker inspect's full id
    w = diff_snapshots(before, after)["nodes"]["worker"]
    assert "255bca2632d3" not in {c["id"][:12] for c in w["containers"]["added"] + w["containers"]["removed"]}


def test_links_chains_and_nodes():
    def node(links, chains):
        ipt = Iptables.model_validate({"tables": {"nat": {"name": "nat", "chains": {c: {"name": c} for c in chains}}}})
        netns = [NetNamespace(name="worker", kind="node", links=links, nsids={0: "cni-1234"})]
        if any(link.kind == "veth" for link in links):
            eth0 = Link(ifindex=2, name="eth0", kind="veth", peer_ifindex=5, link_netnsid=0,
                        addresses=[Address(family="inet", local="10.244.1.2", prefixlen=24)])
            netns.append(NetNamespace(name="cni-1234", kind="named", links=[eth0], nsids={0: "worker"}))
        return NodeSnapshot(name="worker", netns=netns, iptables=ipt)

    lo = Link(ifindex=1, name="lo")
    cni0 = Link(ifindex=3, name="cni0", kind="bridge")
    veth = Link(ifindex=5, name="veth1a2b3c4d", kind="veth", master="cni0", link_netns="cni-1234", peer_ifindex=2)
    before = Snapshot(nodes=[node([lo], ["KUBE-SERVICES"]),
                             NodeSnapshot(name="gone")])
    after = Snapshot(nodes=[node([lo, cni0, veth], ["KUBE-SERVICES", "KUBE-SVC-N4AQN24LQINGUND7"])])
    d = diff_snapshots(before, after)
    w = d["nodes"]["worker"]
    assert [x["name"] for x in w["links"]["added"]] == ["cni0", "veth1a2b3c4d"]
    assert [(x["table"], x["chain"]) for x in w["chains"]["added"]] == [("nat", "KUBE-SVC-N4AQN24LQINGUND7")]
    assert [(x["host_ifname"], x["netns"], x["pod_ips"]) for x in w["veth_pairs"]["added"]] == [
        ("veth1a2b3c4d", "cni-1234", ["10.244.1.2/24"])]
    assert d["nodes_removed"] == ["gone"] and d["nodes"]["gone"]["status"] == "removed"
    assert not is_empty(d)
    assert is_empty(diff_snapshots(after, after))


def test_cli_text_and_json(before_after, tmp_path: Path, cli):
    before, after = before_after
    save(before, tmp_path / "before")
    save(after, tmp_path / "after")
    code, out, err = cli("diff", tmp_path / "before", tmp_path / "after", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert {c["id"] for c in data["nodes"]["worker"]["containers"]["added"]} == {"a7fae79530a1", "c17c77e1b546", "23f2f68378cc"}
    code, out, err = cli("diff", tmp_path / "before", tmp_path / "after")
    assert code == 0, err
    assert "node worker" in out
    for name in (f"k8s_downloader_pod_default_{POD_UID}_0", f"k8s_POD_pod_default_{POD_UID}_0"):
        assert name in out
    assert "sandbox" in out and "default/pod" in out
    code, out, err = cli("diff", tmp_path / "before", tmp_path / "nope")
    assert code == 4 and "no snapshot" in err
