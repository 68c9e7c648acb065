"""crosscheck: the API objects of tests/fixtures/k8s-api (the two-node lab's cluster)
against node analyses that agree with them, then against ones that do not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labreport.analysis.crosscheck import crosscheck
from labreport.analysis.model import Analysis, Endpoint, NodeAnalysis, ProxyModeInfo, ServiceRecord, VethPair
from labreport.snapshot import ClusterObjects, CollectorStatus, NodeSnapshot, Snapshot

FIX = Path(__file__).resolve().parent / "fixtures" / "k8s-api"


def _items(name: str) -> list[dict]:
    return json.loads((FIX / name).read_text())["items"]


def _cluster() -> ClusterObjects:
    return ClusterObjects(nodes=_items("nodes.json"), pods=_items("pods.json"), services=_items("services.json"),
                          endpointslices=_items("endpointslices.json"), endpoints=_items("endpoints.json"))


def _svc(name, cip, port, eps, port_name=None):
    return ServiceRecord(name=name, cluster_ip=cip, port=port, port_name=port_name,
                         endpoints=[Endpoint(address=a) for a in eps])


def _node(name, veths, services):
    return NodeAnalysis(node=name, veth_pairs=veths, services=services,
                        proxy_mode=ProxyModeInfo(mode="iptables", detected_from="rules"))


def _agreeing():
    services = [_svc("default/kubernetes:https", "10.96.0.1", 443, ["192.168.56.10:6443"], "https"),
                _svc("default/web", "10.96.1.1", 8888, ["10.244.1.2:80"])]
    master = _node("master", [VethPair(host_ifname="veth0a1b2c3d", host_ifindex=5, netns="cni-1", pod_ifname="eth0",
                                       pod_ifindex=2, pod_ips=["10.244.0.2/24"])], services)
    worker = _node("worker", [VethPair(host_ifname="veth9f8e7d6c", host_ifindex=5, netns="cni-2", pod_ifname="eth0",
                                       pod_ifindex=2, pod_ips=["10.244.1.2/24"])], [s.model_copy(deep=True) for s in services])
    ran = [CollectorStatus(name="netlink", ok=True)]
    snap = Snapshot(nodes=[NodeSnapshot(name="master", collectors=ran), NodeSnapshot(name="worker", collectors=ran)],
                    cluster=_cluster())
    return snap, Analysis(nodes=[master, worker])


def test_agreement_gives_no_mismatch():
    snap, analysis = _agreeing()
    assert crosscheck(snap, analysis) == []


def test_no_cluster_or_unreachable_compares_nothing():
    snap, analysis = _agreeing()
    snap.cluster = ClusterObjects(error="no cluster reachable: refused")
    assert crosscheck(snap, analysis) == []
    snap.cluster = None
    assert crosscheck(snap, analysis) == []


def test_stale_and_missing_endpoints_and_services():
    snap, analysis = _agreeing()
    worker = analysis.node("worker")
    web = worker.services[1]
    web.endpoints = [Endpoint(address="10.244.1.9:80")]  # the pod was replaced; the rule was not
    worker.services.append(_svc("default/old", "10.96.5.5", 80, []))
    del analysis.node("master").services[0]
    got = {(m.kind, m.node, m.subject) for m in crosscheck(snap, analysis)}
    assert got == {
        ("endpoint-missing", "worker", "default/web"),
        ("endpoint-stale", "worker", "default/web"),
        ("service-stale", "worker", "default/old"),
        ("service-missing", "master", "default/kubernetes:https"),
    }
    detail = next(m.detail for m in crosscheck(snap, analysis) if m.kind == "endpoint-stale")
    assert "10.244.1.9:80" in detail


def test_pod_ips_against_veths():
    snap, analysis = _agreeing()
    worker = analysis.node("worker")
    master = analysis.node("master")
    # the worker's pod shows up on master's veth instead; a leftover IP stays on the worker
    master.veth_pairs.append(worker.veth_pairs[0].model_copy())
    worker.veth_pairs[0].pod_ips = ["10.244.1.3/24"]
    got = {(m.kind, m.node, m.subject) for m in crosscheck(snap, analysis)}
    assert ("pod-on-other-node", "worker", "default/web-7b8c6d5f9d-x2x7q") in got
    assert ("pod-ip-unknown", "worker", "10.244.1.3") in got


def test_nodes_api_vs_collected():
    snap, analysis = _agreeing()
    snap.nodes[1].status = "failed"
    snap.nodes[1].error = "connection refused by 192.168.56.11:22"
    snap.nodes.append(NodeSnapshot(name="laptop"))
    analysis.nodes.append(NodeAnalysis(node="laptop"))
    ms = crosscheck(snap, analysis)
    kinds = {(m.kind, m.subject) for m in ms}
    assert ("node-not-collected", "worker") in kinds and ("node-not-in-api", "laptop") in kinds
    assert any("connection refused" in m.detail for m in ms if m.kind == "node-not-collected")
    # the failed worker's pods are not blamed on anyone
    assert not [m for m in ms if m.node == "worker" and m.kind.startswith("pod")]


def test_endpoints_fallback_without_slices():
    snap, analysis = _agreeing()
    snap.cluster.endpointslices = []
    assert crosscheck(snap, analysis) == []
    analysis.node("worker").services[1].endpoints = []
    ms = crosscheck(snap, analysis)
    assert [(m.kind, m.node) for m in ms] == [("endpoint-missing", "worker")]


def test_nodeport_in_api_but_not_in_rules():
    snap, analysis = _agreeing()
    web = next(s for s in snap.cluster.services if s["metadata"]["name"] == "web")
    web["spec"]["type"] = "NodePort"
    web["spec"]["ports"][0]["nodePort"] = 30080
    ms = crosscheck(snap, analysis)
    assert sorted((m.kind, m.node) for m in ms) == [("nodeport-missing", "master"), ("nodeport-missing", "worker")]
    for na in analysis.nodes:
        na.services[1].node_port = 30080
    assert crosscheck(snap, analysis) == []


def test_nodes_without_network_data_are_not_blamed():
    """An import of `docker ps` alone has no veths: API pods there are not "missing"."""
    snap, analysis = _agreeing()
    for n in snap.nodes:
        n.collectors = []
    for na in analysis.nodes:
        na.veth_pairs = []
    assert crosscheck(snap, analysis) == []
    snap.nodes[1].collectors = [CollectorStatus(name="netlink", ok=True)]
    assert [(m.kind, m.node) for m in crosscheck(snap, analysis)] == [("pod-ip-missing", "worker")]


def test_pasted_manifests_prove_no_absence():
    """`labreport import --kubectl service.yaml`: a few manifests, no cluster IPs, no pod
    IPs — nothing is "stale" or "unknown" for being absent from them."""
    snap, analysis = _agreeing()
    applied = [json.loads(s["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
               for s in snap.cluster.services if "annotations" in s["metadata"]]
    pods = [{k: v for k, v in p.items() if k != "status"} for p in snap.cluster.pods]
    snap.cluster = ClusterObjects(source="import", services=applied, pods=pods)
    assert crosscheck(snap, analysis) == []
    # what they do hold is still checked: the web Service's cluster IP is not in the worker's rules
    del analysis.node("worker").services[1]
    assert [(m.kind, m.node, m.subject) for m in crosscheck(snap, analysis)] == [("service-missing", "worker", "default/web")]


@pytest.mark.parametrize("sample", ["seed000-weave-docker", "seed001-flannel-containerd"])
def test_real_imported_samples_give_no_false_alarm(sample):
    """The students' pasted outputs (imported by the report owner's samples): their kubectl
    manifests carry no cluster IPs or pod IPs, so nothing may be flagged."""
    from labreport.analysis import analyze
    from labreport.snapshot import load

    path = Path(__file__).resolve().parent.parent / "samples" / sample
    snap = load(path)
    assert snap.cluster is not None and snap.cluster.services  # there is something to compare
    assert analyze(snap).mismatches == []
