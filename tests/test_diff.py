"""labreport diff on real outputs: seed 000's worker `docker ps` before (Q3) and after (Q5:
the Q3 containers plus the three the student saw appear) deploying the pod."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labreport.diff import diff_snapshots, is_empty
from labreport.parsers import docker_ps
from labreport.snapshot import Address, Iptables, Link, NetNamespace, NodeSnapshot, Snapshot, save


SEED = Path(__file__).resolve().parent / "fixtures" / "seeds" / "seed000"
# seed 000, Q3: the worker's `docker ps` before the pod; Q5: the three containers the pod
# added ("worker节点上多出了如下三个容器") — the student quoted only the new rows, so AFTER
# is both files together (see tests/fixtures/seeds/README.md)
BEFORE = SEED / "worker-docker-ps-before.txt"
AFTER_NEW = SEED / "worker-docker-ps-after-new.txt"
POD_UID = "05260c21-c524-41c7-82e7-ea61f09f4f2f"


def _snap(*texts: str) -> Snapshot:
    containers = [c for t in texts for c in docker_ps.parse(t, source="docker ps").value]
    return Snapshot(nodes=[NodeSnapshot(name="worker", source="import", containers=containers)])


@pytest.fixture
def before_after() -> tuple[Snapshot, Snapshot]:
    return _snap(BEFORE.read_text()), _snap(BEFORE.read_text(), AFTER_NEW.read_text())


def test_import_then_diff_cli(tmp_path: Path, cli):
    """The whole way a TA would: `labreport import` each side, then `labreport diff`."""
    code, _, err = cli("import", "--node", "worker", "--containers", BEFORE, "--out", tmp_path / "b", "-q")
    assert code == 0, err
    code, _, err = cli("import", "--node", "worker", "--containers", BEFORE, "--containers", AFTER_NEW,
                       "--out", tmp_path / "a", "-q")
    assert code == 0, err
    code, out, err = cli("diff", tmp_path / "b", tmp_path / "a", "--json")
    assert code == 0, err
    w = json.loads(out)["nodes"]["worker"]
    assert sorted((c["id"], c["is_sandbox"], c["pod"]) for c in w["containers"]["added"]) == [
        ("23f2f68378cc", True, "default/pod"), ("a7fae79530a1", False, "default/pod"), ("c17c77e1b546", False, "default/pod")]
    assert w["containers"]["removed"] == [] and [p["uid"] for p in w["pods"]["added"]] == [POD_UID]


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


def test_a_part_on_one_side_only_is_not_compared(before_after):
    """BEFORE is a pasted `docker ps`; AFTER also has the node's links: the links are not
    "added", they were just not pasted before."""
    before, after = before_after
    after.nodes[0].netns = [NetNamespace(name="worker", kind="node", links=[Link(ifindex=1, name="lo"),
                                                                          Link(ifindex=2, name="eth0")])]
    w = diff_snapshots(before, after)["nodes"]["worker"]
    assert w["links"] == {"added": [], "removed": []} and "links" in w["not_compared"]
    assert any(n.startswith("links: not compared, the network part is only in AFTER") for n in w["notes"])
    assert len(w["containers"]["added"]) == 3  # the containers are still compared
