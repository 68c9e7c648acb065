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


# --------------------------------------------------------------------------- the trace engine


def _imported(cli, tmp_path: Path, fixture: Path, node: str) -> Path:
    out = tmp_path / f"snap-{node}"
    code, _o, err = cli("import", "--node", node, "--cilium-service-list", str(fixture), "--out", str(out))
    assert code == 0, err
    return out


def _trace(cli, snap: Path, src: str, dst: str) -> dict:
    code, text, err = cli("trace", str(snap), "--from", src, "--to", dst, "--json")
    assert code == 0, err
    return json.loads(text)


def _backends(res: dict) -> dict[str, float]:
    return {o["dnat"]: round(o["probability"], 9) for o in res["outcomes"]}


def test_trace_to_a_frontend_gives_the_backends_of_the_table(cli, tmp_path) -> None:
    docs = _imported(cli, tmp_path, DOCS, "n1")
    want = {b.address: 1 / len(s.backends) for s in _table(DOCS).services if s.frontend == "192.168.178.29:31940"
            for b in s.backends}
    assert len(want) == 2
    for src, dst in (("203.0.113.7", "192.168.178.29:31940"), ("n1", "10.104.239.135:80"),
                     ("203.0.113.7", "172.16.0.29:31940")):
        res = _trace(cli, docs, src, dst)
        assert _backends(res) == want, (src, dst, res)
        for o in res["outcomes"]:
            (lb,) = [h for h in o["hops"] if h["kind"] == "cilium"]
            assert dst in lb["rule"] and "cilium service lb" in lb["detail"] and o["dnat"] in lb["detail"]
            # the snapshot has the table only: where the node sends the backend is unknown, said so
            assert o["result"] == "unknown" and "not collected" in o["reason"], o
    # the echo agent's bpf maps: kube-dns has two backends, each half
    lb = _imported(cli, tmp_path, ECHO_LB, "w3")
    assert _backends(_trace(cli, lb, "w3", "10.96.0.10:53")) == {"10.244.0.238:53": 0.5, "10.244.0.180:53": 0.5}
    assert _backends(_trace(cli, lb, "w3", "10.96.0.1:443")) == {"172.20.0.5:6443": 1.0}


def test_cluster_ip_from_outside_and_addresses_the_table_does_not_have(cli, tmp_path) -> None:
    lb = _imported(cli, tmp_path, ECHO_LB, "w3")
    (o,) = _trace(cli, lb, "203.0.113.7", "10.96.0.10:53")["outcomes"]  # non-routable: not translated
    assert o["dnat"] is None and any("non-routable" in h["detail"] for h in o["hops"] if h["kind"] == "cilium")
    svc = _imported(cli, tmp_path, ECHO_SVC, "w3s")  # service list: no flags, so the table cannot say
    (o,) = _trace(cli, svc, "203.0.113.7", "10.96.0.10:53")["outcomes"]
    assert o["result"] == "unknown" and "bpf-lb-external-clusterip" in o["reason"] and o["dnat"] is None
    (o,) = _trace(cli, lb, "w3", "10.96.99.99:80")["outcomes"]  # no such frontend: no translation
    assert o["dnat"] is None and not [h for h in o["hops"] if h["kind"] == "cilium"]


def test_trace_all_lists_the_cilium_fronts(cli, tmp_path) -> None:
    docs = _imported(cli, tmp_path, DOCS, "n1")
    code, text, err = cli("trace", str(docs), "--all", "--json")
    assert code == 0, err
    rows = json.loads(text)["fronts"]
    fronts = {(r["front"], r["kind"]) for r in rows}
    assert {("10.104.239.135:80", "cluster-ip"), ("192.168.178.29:31940", "node-port"),
            ("172.16.0.29:31940", "node-port")} <= fronts
    for r in rows:
        if r["front"] == "192.168.178.29:31940":
            assert {o["dnat"] for o in r["outcomes"]} == {"10.217.0.107:80", "10.217.0.149:80"}, r


def _world_with_table(services: list[CiliumService]):
    from labreport.analysis import analyze
    from labreport.analysis.trace import build_world
    from tests.test_trace_routing import two_nodes

    s = two_nodes()
    s.nodes[0].cilium = CiliumServiceTable(services=services)
    a = analyze(s)
    return s, a, build_world(s, a)


def test_the_translated_packet_is_routed_to_its_backend_pod() -> None:
    """On a node with routes and pods (tests/test_trace_routing.py's records), the backends
    that Cilium picks are reached: one on the node itself, one across the host-gw route."""
    from labreport.analysis.trace import Flow, run_flow

    _s, _a, w = _world_with_table([CiliumService(id=4, frontend="10.96.5.5:80", type="ClusterIP", backends=[
        CiliumBackend(address="10.244.0.5:80", state="active"), CiliumBackend(address="10.244.1.7:80", state="active")])])
    res = run_flow(w, Flow(src=None, dst="10.96.5.5", dport=80, entry="process", entry_node="node-a"))
    got = {(o.result, o.node, o.endpoint, round(o.probability, 9)) for o in res.outcomes}
    assert got == {("delivered", "node-a", "10.244.0.5:80", 0.5), ("delivered", "node-b", "10.244.1.7:80", 0.5)}
    for o in res.outcomes:
        assert o.hops[0].kind == "cilium" and "10.96.5.5:80" in (o.hops[0].rule or "")
    # from outside, to the same ClusterIP: a service-list table has no flags, so unknown (not a guess)
    (o,) = run_flow(w, Flow(src="203.0.113.7", dst="10.96.5.5", dport=80, entry="outside", entry_node="node-a")).outcomes
    assert o.result == "unknown" and o.dnat is None


def test_a_frontend_without_active_backends_is_dropped_not_rejected() -> None:
    from labreport.analysis.trace import Flow, run_flow

    table = _table(DOCS)
    for svc in table.services:
        for b in svc.backends:
            b.state = "terminating"
    table.services.append(CiliumService(id=8, frontend="10.96.8.8:80", type="ClusterIP"))  # no backend at all
    _s, _a, w = _world_with_table(table.services)
    for dst, port in (("10.104.239.135", 80), ("10.96.8.8", 80)):
        (o,) = run_flow(w, Flow(src=None, dst=dst, dport=port, entry="process", entry_node="node-a")).outcomes
        assert o.result == "dropped" and "DROP_NO_SERVICE" in (o.reason or "") and o.node == "node-a", o
        assert [h.kind for h in o.hops] == ["cilium"]


def test_the_report_traffic_section_uses_the_table(cli, tmp_path) -> None:
    from labreport.analysis import analyze
    from labreport.analysis.traffic import service_traffic
    from labreport.snapshot import load

    snap = load(_imported(cli, tmp_path, DOCS, "n1"))
    rows, _note = service_traffic(snap, analyze(snap))
    by_front = {r.front: r for r in rows}
    assert {"192.168.178.29:31940", "172.16.0.29:31940"} <= set(by_front), rows
    np_ = by_front["192.168.178.29:31940"]
    assert np_.kind == "node-port" and {(o.dnat, o.share) for o in np_.outcomes} == {
        ("10.217.0.107:80", 0.5), ("10.217.0.149:80", 0.5)}


def test_the_report_path_takes_the_cilium_lookup() -> None:
    """The report's red path (analysis.path.trace_path) over a Cilium node: the service step is
    Cilium's lookup, then the host-gw route to the backend on the other node."""
    from labreport.analysis.path import trace_path

    s, a, _w = _world_with_table([CiliumService(id=4, frontend="10.96.5.5:80", type="ClusterIP", backends=[
        CiliumBackend(address="10.244.0.5:80", state="active"), CiliumBackend(address="10.244.1.7:80", state="active")])])
    path = trace_path(s, a, service="10.96.5.5:80", from_node="node-a")
    assert path.complete and path.to_node == "node-b" and path.target == "10.244.1.7:80", path
    keys = [h.key for h in path.hops]
    assert keys[0] == "cilium_lb" and "output" not in keys and keys[-1] == "pod", keys
    lb = path.hops[0]
    assert lb.args["target"] == "10.244.1.7:80" and "10.96.5.5:80" in lb.args["rule"] and lb.detail.startswith("Cilium")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_report_of_a_cilium_node(cli, tmp_path, lang) -> None:
    """The rendered report of an imported Cilium table: the service walk, the listing's own
    command and the path name Cilium's lookup, not kube-proxy's chains."""
    snap = _imported(cli, tmp_path, DOCS, "n1")
    code, _o, err = cli("render", str(snap), "--format", "md", "--lang", lang, "--out", str(tmp_path / f"rep-{lang}"))
    assert code == 0, err
    text = (tmp_path / f"rep-{lang}" / "report.md").read_text()
    svc = text[text.index("n1 — "):] if lang == "en" else text
    assert "$ cilium-dbg service list" in text and "$ iptables-save" not in text
    assert "KUBE-SEP-" not in text and "BPF" in svc
    assert "10.104.239.135:80" in text and "10.217.0.107:80" in text
