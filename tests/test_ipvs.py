"""ipvsadm parser and the IPVS-mode decoder on real ipvsadm outputs (tests/fixtures/parsers/ipvsadm,
origins in its README)."""

from __future__ import annotations

import pytest

from labreport import parsers
from labreport.analysis.services import decode_services
from labreport.analysis.services_ipvs import decode_ipvs
from labreport.errors import ParseError
from labreport.parsers import ipvsadm
from labreport.snapshot import (
    Address,
    ClusterObjects,
    Iptables,
    IptChain,
    IptRule,
    IptTable,
    Link,
    NetNamespace,
    NodeSnapshot,
)

from tests.conftest import FIXTURES

IPVS = FIXTURES / "parsers" / "ipvsadm"


def load(name: str):
    return ipvsadm.parse((IPVS / name).read_text(), source=name)


def vss(name: str):
    return ipvsadm.virtual_servers_of(load(name).value)


def test_registered_and_detected():
    assert parsers.get("ipvsadm") is ipvsadm
    for name in ("opsnull-251-ipvsadm-Ln.txt", "kube-router-160-ipvsadm-ln-stats.txt",
                 "calico-ipvs-tutorial-ipvsadm-Ln-rate.txt", "website-8652-debug-service.txt"):
        assert parsers.detect((IPVS / name).read_text()) == "ipvsadm", name


def test_listing_with_persistence_and_nodeports():
    res = load("opsnull-251-ipvsadm-Ln.txt")
    assert res.warnings == []
    assert res.value.listing == "list"
    v = vss("opsnull-251-ipvsadm-Ln.txt")
    assert [x.endpoint for x in v] == ["10.253.102.0:32429", "10.253.102.0:32767", "10.253.102.1:32767",
                                       "10.254.0.1:443", "10.254.0.2:53", "10.254.9.36:443", "10.254.20.57:1"]
    api = v[3]
    assert (api.protocol, api.scheduler, api.persistent) == ("TCP", "rr", 10800)
    assert [(r.address, r.port, r.forward, r.weight, r.active_conn, r.inact_conn) for r in api.real_servers] == [
        ("172.16.16.81", 6443, "Masq", 1, 0, 0), ("172.16.16.82", 6443, "Masq", 1, 0, 0)]
    assert len(v[0].real_servers) == 4


def test_virtual_server_without_real_servers():
    v = {x.endpoint: x for x in vss("k8s-123948-ipvsadm-ln.txt")}
    assert v["10.10.50.6:30020"].real_servers == []
    assert v["10.96.0.1:443"].real_servers[0].active_conn == 2


def test_stats_columns_with_header():
    res = load("kube-router-160-ipvsadm-ln-stats.txt")
    assert res.warnings == [] and res.value.listing == "stats"
    v = vss("kube-router-160-ipvsadm-ln-stats.txt")
    assert v[2].stats == {"Conns": 14209, "InPkts": 111769, "OutPkts": 74613, "InBytes": 7207174, "OutBytes": 8334358}
    assert v[2].real_servers[3].stats["Conns"] == 3
    assert v[2].scheduler is None and v[2].real_servers[0].weight is None


def test_rate_with_watch_header():
    res = load("calico-ipvs-tutorial-ipvsadm-Ln-rate.txt")
    assert res.warnings == [] and res.value.listing == "rate"
    v = {x.endpoint: x for x in vss("calico-ipvs-tutorial-ipvsadm-Ln-rate.txt")}
    assert v["10.49.120.28:80"].stats == {"CPS": 1, "InPPS": 6, "OutPPS": 4, "InBPS": 399, "OutBPS": 995}
    assert v["127.0.0.1:30180"].real_servers[0].address == "10.48.0.14"
    every = vss("calico-ipvs-tutorial-ipvsadm-Ln-rate.txt")
    assert len(every) == 17 and [x.endpoint for x in every if x.protocol == "UDP"] == ["10.49.0.10:53"]


def test_persistent_conn_listing():
    res = load("community-692-ipvsadm-Ln-persistent-conn.txt")
    assert res.warnings == [] and res.value.listing == "persistent"
    rs = vss("community-692-ipvsadm-Ln-persistent-conn.txt")[0].real_servers[0]
    assert (rs.weight, rs.persist_conn, rs.active_conn, rs.inact_conn) == (1, 1, 1, 0)


def test_prompts_sudo_and_doc_elisions_are_not_warnings():
    assert load("community-692-ipvsadm-Ln-persistent.out").warnings == []
    res = load("website-8652-debug-service.txt")
    assert res.warnings == []
    assert [r.port for r in vss("website-8652-debug-service.txt")[0].real_servers] == [937, 937, 937]


def test_names_without_n_are_kept_and_warned_once():
    res = load("kube-router-415-ipvsadm-L-names.txt")
    assert len(res.warnings) == 1 and res.warnings[0].line_no == 4
    v = vss("kube-router-415-ipvsadm-L-names.txt")
    assert v[0].address == "ip-10-0-62-121.ec2.internal" and v[0].port is None
    rs = v[3].real_servers[0]
    assert (rs.address, rs.port, rs.port_text, rs.active_conn, rs.inact_conn) == ("100.98.125.10", None, "http", 2, 14)


def test_this_kernel_without_ipvs_is_a_clear_parse_error():
    with pytest.raises(ParseError, match="could not read the IPVS table"):
        load("this-machine-no-ipvs.txt")


@pytest.mark.parametrize("bad", ["", b"\x00\xff\x00", "table ip filter {\n}\n", "hello world\n"])
def test_unreadable(bad):
    with pytest.raises(ParseError):
        ipvsadm.parse(bad)


def test_unknown_lines_are_warned_with_numbers():
    text = (IPVS / "opsnull-251-ipvsadm-Ln.txt").read_text().replace("TCP  10.254.0.2:53 rr", "TCP  10.254.0.2:53 rr\n%%garbage%%")
    res = ipvsadm.parse(text)
    assert [(w.line_no, w.line) for w in res.warnings] == [(18, "%%garbage%%")]
    assert len(ipvsadm.virtual_servers_of(res.value)) == 7


# --------------------------------------------------------------------------- decoding


def node_with(name: str, **kw) -> NodeSnapshot:
    return NodeSnapshot(name="n1", ipvs=load(name).value, **kw)


def test_shares_are_weight_over_sum_and_persistence_is_affinity():
    records, _ = decode_ipvs(node_with("opsnull-251-ipvsadm-Ln.txt"))
    by = {r.name: r for r in records}
    api = by["10.254.0.1:443"]
    assert api.session_affinity and api.affinity_timeout_s == 10800
    assert [(e.address, e.weight, e.probability) for e in api.endpoints] == [
        ("172.16.16.81:6443", 1, 0.5), ("172.16.16.82:6443", 1, 0.5)]
    assert api.chains["scheduler"] == "rr" and api.mode == "ipvs"
    # the two NodePort virtual servers have the dashboard's real server: attached to it
    dash = by["10.254.9.36:443"]
    assert dash.node_port == 32767
    assert dash.chains["nodeport_ipvs"] == "10.253.102.0:32767 10.253.102.1:32767"
    orphan = by["10.253.102.0:32429"]
    assert orphan.node_port == 32429 and orphan.cluster_ip is None and orphan.warnings


def test_weight_zero_endpoint_gets_no_share():
    text = (IPVS / "opsnull-251-ipvsadm-Ln.txt").read_text().replace(
        "  -> 172.16.16.83:1               Masq    1", "  -> 172.16.16.83:1               Masq    0")
    node = NodeSnapshot(name="n", ipvs=ipvsadm.parse(text).value)
    rec = next(r for r in decode_ipvs(node)[0] if r.name == "10.254.20.57:1")
    assert [e.probability for e in rec.endpoints] == [0.5, 0.5, 0.0]


def test_virtual_server_without_real_servers_has_no_endpoints():
    records, _ = decode_ipvs(node_with("k8s-123948-ipvsadm-ln.txt"))
    rec = next(r for r in records if r.node_port == 30020)
    assert rec.no_endpoints and rec.endpoints == []


def test_names_from_the_api_services():
    svc = lambda ns, name, cip, ports, **spec: {  # noqa: E731
        "apiVersion": "v1", "kind": "Service", "metadata": {"namespace": ns, "name": name},
        "spec": {"clusterIP": cip, "clusterIPs": [cip], "ports": ports, **spec}}
    cluster = ClusterObjects(services=[
        svc("kube-system", "kube-dns", "10.96.0.10", [
            {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "metrics", "port": 9153, "protocol": "TCP"}]),
        svc("default", "kubernetes", "10.96.0.1", [{"name": "https", "port": 443, "protocol": "TCP"}]),
        svc("default", "web", "10.96.77.112", [{"port": 80, "protocol": "TCP", "nodePort": 31580}],
            type="NodePort", externalTrafficPolicy="Cluster"),
        svc("default", "empty", "10.96.5.5", [{"port": 80, "protocol": "TCP", "nodePort": 30020}], type="NodePort"),
    ])
    records, _ = decode_ipvs(node_with("k8s-123948-ipvsadm-ln.txt"), cluster)
    by = {r.name: r for r in records}
    assert by["kube-system/kube-dns:dns-tcp"].cluster_ip == "10.96.0.10"
    assert by["kube-system/kube-dns:metrics"].port == 9153
    assert by["default/kubernetes:https"].endpoints[0].address == "10.10.50.6:6443"
    web = by["default/web"]
    assert (web.node_port, web.external_traffic_policy, web.namespace, web.service) == (31580, "Cluster", "default", "web")
    empty = by["default/empty"]
    assert empty.node_port == 30020 and empty.no_endpoints  # only its NodePort VS is in the listing
    assert "10.96.66.35:8080" in by and by["10.96.66.35:8080"].warnings  # no such Service: stale?


def test_kube_ipvs0_decides_what_is_a_nodeport():
    link = Link(ifindex=4, name="kube-ipvs0", kind="dummy",
                addresses=[Address(family="inet", local=ip, prefixlen=32) for ip in
                           ("10.96.0.1", "10.96.0.10", "10.96.66.35", "10.96.77.112")])
    node = node_with("k8s-123948-ipvsadm-ln.txt", netns=[NetNamespace(name="host", kind="node", links=[link])])
    records, _ = decode_ipvs(node)
    by = {r.name: r for r in records}
    assert by["10.96.0.1:443"].chains["device"] == "kube-ipvs0"
    assert by["10.96.77.112:80"].node_port == 31580
    assert not any("port range" in w for r in records for w in r.warnings)


def test_masquerade_from_the_iptables_rules_kept_in_ipvs_mode():
    nat = IptTable(name="nat", chains={
        "KUBE-MARK-MASQ": IptChain(name="KUBE-MARK-MASQ", rules=[IptRule(spec="-j MARK --set-xmark 0x4000/0x4000")]),
        "KUBE-POSTROUTING": IptChain(name="KUBE-POSTROUTING", rules=[
            IptRule(spec='-m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" '
                         "-m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE")]),
        "KUBE-SERVICES": IptChain(name="KUBE-SERVICES", rules=[
            IptRule(spec='-m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" '
                         "-m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT")]),
    })
    node = node_with("opsnull-251-ipvsadm-Ln.txt", iptables=Iptables(tables={"nat": nat}))
    records, masq = decode_ipvs(node)
    assert masq.mark == "0x4000/0x4000" and masq.postrouting_chain == "KUBE-POSTROUTING"
    assert records[0].chains["iptables"] == "KUBE-SERVICES (ipset match)"
    info, via_dispatch, _ = decode_services(node, None)
    assert info.mode == "ipvs"
    assert [r.name for r in via_dispatch] == [r.name for r in records]


def test_stats_listing_decodes_without_shares():
    records, _ = decode_ipvs(node_with("kube-router-160-ipvsadm-ln-stats.txt"))
    rec = next(r for r in records if r.name == "10.3.0.42:80")
    assert len(rec.endpoints) == 8 and all(e.probability is None for e in rec.endpoints)
    assert any("shares unknown" in w for w in rec.warnings)


def test_labreport_import_ipvsadm_then_decode(cli, tmp_path):
    from labreport import snapshot

    out = tmp_path / "snap"
    code, _, err = cli("import", "--node", "worker", "--ipvsadm", str(IPVS / "k8s-123948-ipvsadm-ln.txt"),
                       "--out", str(out), "-q")
    assert code == 0, err
    snap = snapshot.load(out)
    node = snap.nodes[0]
    assert node.name == "worker" and len(node.ipvs.virtual_servers) == 10
    info, records, _ = decode_services(node, snap.cluster)
    assert info.mode == "ipvs" and len(records) == 9
    assert next(r for r in records if r.cluster_ip == "10.96.0.1").endpoints[0].address == "10.10.50.6:6443"


def test_labreport_import_of_the_kernel_error_is_a_clear_failure(cli, tmp_path):
    code, _, err = cli("import", "--ipvsadm", str(IPVS / "this-machine-no-ipvs.txt"), "--out", str(tmp_path / "s"))
    assert code != 0 and "IPVS" in err and "Traceback" not in err


def test_kube_ipvs0_from_a_real_ip_a_output_through_import(cli, tmp_path):
    """`ip a` of a node in ipvs mode (no ipvsadm output): the kube-ipvs0 link alone tells."""
    from labreport import snapshot
    from labreport.analysis.services_ipvs import kube_ipvs0_addresses

    out = tmp_path / "snap"
    code, _, err = cli("import", "--ip-addr", str(IPVS / "sssd-6395-ip-a.txt"), "--out", str(out), "-q")
    assert code == 0, err
    node = snapshot.load(out).nodes[0]
    assert kube_ipvs0_addresses(node) == {"10.43.243.197"}
    info, records, _ = decode_services(node, None)
    assert info.mode == "ipvs" and "kube-ipvs0 link" in info.detected_from
    assert records == [] and "no ipvsadm -Ln output was collected" in info.note
