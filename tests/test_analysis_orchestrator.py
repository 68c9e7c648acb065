"""analyze(): every node analyzed, every analyzer a plain import, failures become
warnings (never a crash), node status and "not collected: why" carried over."""

from __future__ import annotations

import sys

import pytest

from labreport.analysis import analyze
from labreport.parsers import get
from labreport.snapshot import CollectorStatus, NetNamespace, NodeSnapshot, Snapshot
from tests.conftest import FIXTURES
from tests.test_analysis_seeds import seed000_worker, seed001_master, seed001_worker


def _seed001_master_with_rules() -> NodeSnapshot:
    node = seed001_master()
    text = (FIXTURES / "parsers" / "iptables-save" / "seed001-q10-pieces.pasted.txt").read_text()
    node.iptables = get("iptables-save").parse(text, source="seed001-q10").value
    return node


def test_analysis_imports_every_analyzer_plainly():
    # issue #10 item 3: no optional parts of our own code. The orchestrator imports every
    # analyzer at import time, so a missing one is an ImportError, not a note to skip.
    import importlib

    import labreport.analysis as analysis_pkg
    from labreport.analysis import crosscheck, path, services

    assert not hasattr(analysis_pkg, "_OPTIONAL") and not hasattr(analysis_pkg, "_load")
    assert (analysis_pkg.services, analysis_pkg.crosscheck, analysis_pkg.path) == (services, crosscheck, path)
    saved = {k: v for k, v in sys.modules.items() if k == "labreport.analysis" or k.startswith("labreport.analysis.")}
    try:
        for k in saved:
            del sys.modules[k]
        sys.modules["labreport.analysis.crosscheck"] = None  # type: ignore[assignment]
        with pytest.raises(ImportError, match="crosscheck"):
            importlib.import_module("labreport.analysis")
    finally:
        for k in [k for k in sys.modules if k == "labreport.analysis" or k.startswith("labreport.analysis.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def test_every_node_is_analyzed_with_its_services():
    analysis = analyze(Snapshot(nodes=[_seed001_master_with_rules(), seed001_worker()]))
    assert not any(w.startswith(("services:", "crosscheck:", "path:")) and "not analyzed" in w
                   for w in analysis.warnings), analysis.warnings
    assert "kube-apiserver" in {c.name for c in analysis.node("k8s-master").components}
    assert len(analysis.node("k8s-worker").veth_pairs) == 1
    assert analysis.node("k8s-master").services and analysis.path is not None


def test_services_included_when_present():
    analysis = analyze(Snapshot(nodes=[_seed001_master_with_rules()]))
    na = analysis.node("k8s-master")
    assert not any(w.startswith("services:") for w in na.warnings), na.warnings
    svc = {s.name: s for s in na.services}
    fs = svc["default/test-service:fileserver"]
    assert (fs.cluster_ip, fs.port, fs.protocol) == ("10.101.163.22", 8080, "tcp")
    assert [e.address for e in fs.endpoints] == ["10.244.1.3:8080", "10.244.1.4:8080", "10.244.1.5:8080"]
    assert [round(e.probability, 4) for e in fs.endpoints] == [0.3333, 0.3333, 0.3333]
    assert na.proxy_mode.mode == "iptables"


def test_an_analyzer_that_raises_becomes_a_warning(monkeypatch):
    from labreport.analysis import services

    def boom(node, cluster):
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(services, "decode_services", boom)
    analysis = analyze(Snapshot(nodes=[_seed001_master_with_rules()]))
    na = analysis.node("k8s-master")
    assert "services: failed (RuntimeError: decoder exploded)" in na.warnings
    assert na.components and na.preflight  # the rest went on


def test_own_analyzer_failure_is_contained(monkeypatch):
    from labreport.analysis import veth

    def broken(node, warnings=None):
        raise KeyError("ifindex")

    monkeypatch.setattr(veth, "match_veths", broken)
    analysis = analyze(Snapshot(nodes=[seed001_worker()]))
    na = analysis.nodes[0]
    assert any(w.startswith("veth: failed (KeyError") for w in na.warnings)
    assert na.veth_pairs == [] and na.pods and na.components


def test_node_status_and_not_collected_are_carried():
    failed = NodeSnapshot(name="worker2", status="failed",
                          error="ssh: connect to host worker2 port 22: Connection refused")
    partial = seed001_worker()
    partial.status = "partial"
    partial.collectors = [
        CollectorStatus(name="cri", ok=False, reason="no CRI socket at /run/containerd/containerd.sock",
                        fix="start containerd"),
        CollectorStatus(name="netlink", ok=True, partial=True, reason="netns cni-1234 vanished"),
        CollectorStatus(name="processes", ok=True),
    ]
    partial.netns.append(NetNamespace(name="cni-dead", error="No such file or directory"))
    analysis = analyze(Snapshot(nodes=[failed, partial]))
    f = analysis.node("worker2")
    assert f.status == "failed" and f.error.startswith("ssh:")
    assert "node: failed: ssh: connect to host worker2 port 22: Connection refused" in f.not_collected
    assert f.components == [] and f.veth_pairs == [] and f.preflight == []
    p = analysis.node("k8s-worker")
    assert p.status == "partial"
    assert "cri: no CRI socket at /run/containerd/containerd.sock" in p.not_collected
    assert "netlink: partial: netns cni-1234 vanished" in p.not_collected
    assert "netns cni-dead: No such file or directory" in p.not_collected
    assert not any(x.startswith("processes") for x in p.not_collected)


def test_empty_snapshot():
    analysis = analyze(Snapshot())
    assert analysis.nodes == []


def test_json_round_trip_of_the_contract():
    from labreport.analysis.model import Analysis

    analysis = analyze(Snapshot(nodes=[seed001_master(), seed001_worker(), seed000_worker()]))
    data = analysis.model_dump(mode="json")
    again = Analysis.model_validate(data)
    assert again.model_dump(mode="json") == data
    w = data["nodes"][1]
    assert set(w["veth_pairs"][0]) >= {"host_ifname", "host_ifindex", "netns", "pod_ifname", "pod_ifindex",
                                       "pod_ips", "bridge"}
    assert set(w["components"][0]) >= {"name", "pid", "role", "command", "in_container"}
