"""Exact comparisons of ``labreport analyze --json`` output (one node's dict) with a lab's
ground truth; shared by the live e2e tests and the test of the recorded sample."""

from __future__ import annotations

import math

from tests.lab.truth import NodeTruth

SHARE_TOL = 1e-6  # iptables prints 1/3 as 0.33333333349


def _close(a: float | None, b: float, what: str) -> None:
    assert a is not None and math.isclose(a, b, abs_tol=SHARE_TOL), f"{what}: {a} != {b}"


def check_pods(node: dict, t: NodeTruth) -> None:
    """Every container in the right pod with its sandbox; no pod more, none less."""
    pods = {f"{p['namespace']}/{p['name']}": p for p in node["pods"]}
    assert set(pods) == {p.key for p in t.pods}, sorted(pods)
    for tp in t.pods:
        got = pods[tp.key]
        assert got["sandbox_id"] == tp.sandbox_id, tp.key
        assert got["uid"] == tp.uid, tp.key
        assert got["ip"] == tp.ip, tp.key
        sandboxes = [c for c in got["containers"] if c["is_sandbox"]]
        assert [c["id"] for c in sandboxes] == [tp.sandbox_id], tp.key
        apps = {c["id"]: c for c in got["containers"] if not c["is_sandbox"]}
        assert set(apps) == {c.id for c in tp.containers}, tp.key
        for c in tp.containers:
            assert apps[c.id]["name"] in (c.name, c.docker_name), (tp.key, apps[c.id]["name"])
            assert apps[c.id]["image"] and apps[c.id]["image"].endswith(c.image.split("/", 1)[1])
            assert apps[c.id]["runtime"] == c.runtime
        if tp.runtime == "docker":
            assert got["shares_netns_with_sandbox"] is True, tp.key


def check_veths(node: dict, t: NodeTruth) -> None:
    """Every host veth matched to its pod's eth0; nothing the lab did not build."""
    pairs = node["veth_pairs"]
    by_host = {p["host_ifname"]: p for p in pairs}
    for tp in t.pods:
        got = by_host.get(tp.veth.host_ifname)
        assert got is not None, f"{tp.veth.host_ifname} ({tp.key}) not matched; pairs: {pairs}"
        assert got["host_ifindex"] == tp.veth.host_ifindex, tp.key
        assert (got["pod_ifname"], got["pod_ifindex"]) == ("eth0", tp.veth.pod_ifindex), tp.key
        assert got["bridge"] == "cni0", tp.key
        assert f"{tp.ip}/24" in got["pod_ips"], tp.key
        assert (got["host_mac"], got["pod_mac"]) == (tp.veth.host_mac, tp.veth.pod_mac), tp.key
        assert got["pod"] == tp.key, (tp.key, got)
        if tp.netns_name:
            assert got["netns"] == tp.netns_name, tp.key
    expected = {tp.veth.host_ifname for tp in t.pods}
    extra = set(by_host) - expected
    assert extra <= {t.uplink}, f"veth pairs that the lab did not build: {extra}"
    if t.uplink in by_host:  # the uplink is a veth too (peer in the gateway namespace)
        up = by_host[t.uplink]
        assert up["host_ifindex"] == t.uplink_veth.host_ifindex
        assert up["pod_ifindex"] == t.uplink_veth.pod_ifindex
        assert up["netns"] == t.uplink_peer_ns
        assert up["pod"] is None


def check_services(node: dict, t: NodeTruth) -> None:
    """Every service with its endpoints (in rule order), chains and effective shares."""
    services = {s["name"]: s for s in node["services"]}
    assert set(services) == {s.name for s in t.services}, sorted(services)
    assert node["proxy_mode"]["mode"] == "iptables"
    for ts in t.services:
        got = services[ts.name]
        assert (got["cluster_ip"], got["port"], got["protocol"]) == (ts.cluster_ip, ts.port, ts.protocol)
        assert got["node_port"] == ts.node_port, ts.name
        assert got["chains"].get("svc") == ts.svc_chain, ts.name
        eps = got["endpoints"]
        assert [e["address"] for e in eps] == [e.address for e in ts.endpoints], ts.name
        for e, te in zip(eps, ts.endpoints):
            assert e["chain"] == te.chain
            _close(e["probability"], te.share, f"{ts.name} {te.address} share")
            if te.rule_probability is None:
                assert e["rule_probability"] in (None, 1.0)
            else:
                _close(e["rule_probability"], te.rule_probability, f"{ts.name} {te.address} rule p")
        _close(sum(e["probability"] for e in eps), 1.0, f"{ts.name} shares sum")
