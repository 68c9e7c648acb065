"""trace_path: the hops from a node through a cluster IP to a pod, on real data.

- seed 001 (a real student's outputs): master's iptables rules, worker's devices and veth;
  the master's routes/devices were not pasted, so those hops must say they are inferred.
- the live lab node (samples/live-*, captured by the lab owner on a real containerd node):
  the whole path is known, from nat OUTPUT to the pod's eth0.
- kube-proxy's nftables mode: the real `nft list ruleset` of the nft owner's lab fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labreport.analysis import analyze
from labreport.analysis.path import split_hostport, trace_path
from labreport.snapshot import NodeSnapshot, Snapshot, load

ROOT = Path(__file__).resolve().parent.parent
SEED001 = ROOT / "samples" / "seed001-flannel-containerd"


@pytest.fixture(scope="module")
def seed001():
    s = load(SEED001)
    return s, analyze(s)


def keys(path):
    return [getattr(h, "key", None) for h in path.hops]


def test_remote_path_from_master_to_worker_pod(seed001):
    s, a = seed001
    p = trace_path(s, a)
    assert p.from_node == "k8s-master" and p.to_node == "k8s-worker"
    assert p.service == "default/test-service:fileserver"
    assert keys(p) == ["output", "services", "svc", "sep", "route_unknown", "overlay_out", "uplink_out", "wire",
                       "uplink_in", "overlay_in", "bridge", "pod_unknown"]
    assert [h.n for h in p.hops] == list(range(1, 13))
    sep = p.hops[3]
    assert sep.kind == "dnat" and sep.where.startswith("KUBE-SEP-") and p.target in sep.detail
    assert "--to-destination " + p.target in sep.args["rule"]
    rec = next(r for r in a.node("k8s-master").services if r.name == p.service)
    assert p.target in [e.address for e in rec.endpoints]
    # what was not collected is said, not invented
    assert not p.complete
    assert p.hops[4].inferred and "k8s-master" in p.hops[4].inferred
    assert p.hops[5].where == "flannel.1"  # the overlay, known from the worker's devices
    assert p.hops[8].where == "eth0" and "172.23.193.146/20" in p.hops[8].detail
    assert p.hops[10].where == "cni0"


def test_service_choice(seed001):
    s, a = seed001
    p = trace_path(s, a, service="default/test-service:downloader")
    assert p.service == "default/test-service:downloader" and p.target.endswith(":3000")
    p = trace_path(s, a, service="10.101.163.22:3000")
    assert p.service == "default/test-service:downloader"
    p = trace_path(s, a, service="nope")
    assert p.service is None and not p.hops and "nope" in p.note
    p = trace_path(s, a, from_node="no-such-node")
    assert not p.hops and "no-such-node" in p.note


def test_split_hostport():
    assert split_hostport("10.244.1.3:8080") == ("10.244.1.3", 8080)
    assert split_hostport("[fd00::5]:80") == ("fd00::5", 80)
    assert split_hostport("10.244.1.3") == ("10.244.1.3", None)


LIVE = sorted(p.parent for p in (ROOT / "samples").glob("live-*/snapshot.json"))


def test_live_node_path_is_complete():
    assert LIVE, "samples/live-* (captured from the real test node) is part of the repository"
    s = load(LIVE[0])
    a = analyze(s)
    p = trace_path(s, a)
    assert p.hops, p.note
    assert keys(p)[:4] == ["output", "services", "svc", "sep"]
    assert keys(p)[-3:] == ["bridge", "veth", "pod"]
    assert p.complete, [h.detail for h in p.hops]
    host, _ = split_hostport(p.target)
    veth = p.hops[-2]
    pod = p.hops[-1]
    na = a.node(p.to_node)
    vp = next(v for v in na.veth_pairs if v.host_ifname == veth.where)
    assert any(ip.split("/")[0] == host for ip in vp.pod_ips)  # the veth leads to the DNAT's target
    assert pod.args["netns"] == vp.netns
    assert not any(h.inferred for h in p.hops)


def test_nftables_mode_hops():
    from labreport.parsers import get

    text = (ROOT / "tests" / "fixtures" / "parsers" / "nft" / "kube-proxy-lab.nft").read_text("utf-8")
    ruleset = get("nft").parse(text, source="kube-proxy-lab.nft").value
    s = Snapshot(nodes=[NodeSnapshot(name="node-a", nftables=ruleset)])
    a = analyze(s)
    p = trace_path(s, a, service="default/local:web")
    assert keys(p)[:4] == ["nft_hook", "nft_vmap", "nft_numgen", "nft_endpoint"]
    assert p.hops[1].where == "services" and "service-" in p.hops[1].detail
    assert p.hops[3].kind == "dnat" and p.hops[3].where.startswith("endpoint-")
    assert p.target in p.hops[3].detail
    assert not p.complete  # no devices or routes in this snapshot: said, not guessed


def test_ipvs_mode_hops():
    from labreport.parsers import get
    from labreport.snapshot import NodeInfo

    text = (ROOT / "tests" / "fixtures" / "parsers" / "ipvsadm" / "k8s-123948-ipvsadm-ln.txt").read_text("utf-8")
    ipvs = get("ipvsadm").parse(text, source="k8s-123948-ipvsadm-ln.txt").value
    s = Snapshot(nodes=[NodeSnapshot(name="node-a", ipvs=ipvs, info=NodeInfo(kube_proxy_mode="ipvs"))])
    a = analyze(s)
    p = trace_path(s, a)
    assert keys(p)[:2] in (["ipvs_vip", "ipvs_real"], ["ipvs_nodeport", "ipvs_real"])
    real = p.hops[1]
    assert real.kind == "ipvs" and p.target in real.detail
    rec = next(r for r in a.node("node-a").services if r.name == p.service)
    assert p.target in [e.address for e in rec.endpoints]
