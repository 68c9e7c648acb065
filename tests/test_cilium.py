"""Cilium's service table (kube-proxy replacement), import only: the two parsers on
published real outputs (tests/fixtures/parsers/cilium-*/, origins in the READMEs there),
the decoding into ServiceRecords, the service step a trace takes from it, and
``labreport import --cilium-service-list``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labreport.analysis.services_cilium import decode_cilium, lookup
from labreport.errors import ParseError
from labreport.parsers import cilium_lb, cilium_service, detect
from labreport.snapshot import CiliumBackend, CiliumService, CiliumServiceTable, ClusterObjects

FIX = Path(__file__).resolve().parent / "fixtures" / "parsers"
DOCS = FIX / "cilium-service-list" / "docs-kubeproxy-free-nodeport.out"
ECHO_SVC = FIX / "cilium-service-list" / "go-experiments-echo001.out"
ECHO_LB = FIX / "cilium-bpf-lb-list" / "go-experiments-echo001.out"


def _table(path: Path, mod=cilium_service, source="service-list") -> CiliumServiceTable:
    return CiliumServiceTable(source=source, services=mod.parse(path.read_text()).value)


def test_service_list_and_bpf_lb_list_of_one_agent_agree() -> None:
    """The same agent's two listings: same frontends, same IDs (= rev-NAT ids), same backends."""
    svc = {s.frontend: (s.id, sorted(b.address for b in s.backends)) for s in _table(ECHO_SVC).services}
    lb = {s.frontend: (s.id, sorted(b.address for b in s.backends))
          for s in _table(ECHO_LB, cilium_lb, "bpf-lb-list").services}
    assert svc == lb and len(svc) == 6


def test_flags_of_the_bpf_maps() -> None:
    t = _table(ECHO_LB, cilium_lb, "bpf-lb-list")
    peer = next(s for s in t.services if s.frontend == "10.96.170.158:443")
    assert peer.type == "ClusterIP" and peer.flags == ["InternalLocal", "non-routable"]
    (rec,) = [r for r in decode_cilium(t) if r.cluster_ip == "10.96.170.158"]
    assert rec.internal_traffic_policy == "Local" and rec.mode == "cilium"


def test_nodeports_join_their_cluster_ip_and_shares_are_equal() -> None:
    recs = decode_cilium(_table(DOCS))
    assert len(recs) == 1
    (rec,) = recs
    assert (rec.cluster_ip, rec.port, rec.node_port, rec.protocol) == ("10.104.239.135", 80, 31940, "tcp")
    assert [(e.address, e.probability) for e in rec.endpoints or []] == [("10.217.0.107:80", 0.5),
                                                                         ("10.217.0.149:80", 0.5)]
    assert len(rec.evidence) == 4  # the ClusterIP and the three NodePort frontends


def test_names_from_the_cluster_objects() -> None:
    cluster = ClusterObjects(services=[{"metadata": {"namespace": "kube-system", "name": "kube-dns"},
                                        "spec": {"clusterIP": "10.96.0.10", "ports": [
                                            {"name": "dns", "port": 53, "protocol": "UDP"},
                                            {"name": "metrics", "port": 9153, "protocol": "TCP"}]}}])
    # the echo listing has no protocols: Cilium ≤ 1.15 prints none, TCP is assumed
    names = {r.name for r in decode_cilium(_table(ECHO_SVC), cluster)}
    assert "kube-system/kube-dns:metrics" in names and "10.96.0.1:443" in names


def test_the_service_step_of_a_trace() -> None:
    t = _table(DOCS)
    hit = lookup(t, "10.104.239.135", 80, "tcp")
    assert hit is not None and {c.backend for c in hit.choices} == {"10.217.0.107:80", "10.217.0.149:80"}
    assert all(c.probability == 0.5 for c in hit.choices)
    # a node address of its own (192.168.178.29) and, through 0.0.0.0, any other local address
    assert lookup(t, "192.168.178.29", 31940).frontend.id == 6  # type: ignore[union-attr]
    assert lookup(t, "10.0.0.99", 31940, node_ips=["10.0.0.99"]).frontend.id == 5  # type: ignore[union-attr]
    assert lookup(t, "10.0.0.99", 31940) is None  # not a node address: no translation
    assert lookup(t, "10.104.239.135", 80, "udp") is None  # the frontend is TCP only
    # a terminating backend gets no new connection; none left: Cilium drops (no choice)
    svc = CiliumService(id=9, frontend="10.96.9.9:80", type="ClusterIP", backends=[
        CiliumBackend(address="10.0.0.1:80", state="active"), CiliumBackend(address="10.0.0.2:80", state="terminating")])
    one = lookup(CiliumServiceTable(services=[svc]), "10.96.9.9", 80)
    assert one is not None and [(c.backend, c.probability) for c in one.choices] == [("10.0.0.1:80", 1.0)]
    svc.backends[0].state = "quarantined"
    assert lookup(CiliumServiceTable(services=[svc]), "10.96.9.9", 80).choices == ()  # type: ignore[union-attr]


def test_detection_and_bad_input() -> None:
    assert detect(ECHO_SVC.read_text()) == "cilium-service-list"
    assert detect(ECHO_LB.read_text()) == "cilium-bpf-lb-list"
    for mod in (cilium_service, cilium_lb):
        with pytest.raises(ParseError):
            mod.parse("Chain INPUT (policy ACCEPT)\n-A INPUT -j ACCEPT\n")
        with pytest.raises(ParseError):
            mod.parse("")
    res = cilium_service.parse(DOCS.read_text())
    assert [w.line_no for w in res.warnings] == [3]  # the documentation's "[...]" elision


@pytest.mark.parametrize("path,mod", [(ECHO_SVC, cilium_service), (ECHO_LB, cilium_lb)])
def test_a_table_with_no_rows_is_empty_not_an_error(path: Path, mod) -> None:
    """The real output's header alone, after the prompt it was typed at: an agent with no
    services (empty, no warning); the prompt and blank lines are not rows."""
    prompt, header = path.read_text().splitlines()[:2]
    assert mod.HEADER_RE.match(header)
    res = mod.parse(f"{prompt}\n\n{header}\n\n")
    assert res.value == [] and res.warnings == []


def test_import_cli_and_analyze(cli, tmp_path) -> None:
    out = tmp_path / "snap"
    code, _o, err = cli("import", "--node", "w3", "--cilium-service-list", str(ECHO_LB), "--out", str(out))
    assert code == 0, err
    snap = json.loads((out / "snapshot.json").read_text())
    node = snap["nodes"][0]
    assert node["cilium"]["source"] == "bpf-lb-list" and len(node["cilium"]["services"]) == 6
    assert any(e["command"] == "cilium bpf lb list" for e in node["evidence"])
    code, text, err = cli("analyze", str(out), "--json")
    assert code == 0, err
    na = json.loads(text)["nodes"][0]
    assert na["proxy_mode"]["mode"] == "cilium"
    dns = next(s for s in na["services"] if s["cluster_ip"] == "10.96.0.10" and s["port"] == 53)
    assert sorted(e["address"] for e in dns["endpoints"]) == ["10.244.0.180:53", "10.244.0.238:53"]
