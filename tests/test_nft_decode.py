"""services_nft.decode_nft on real listings: the nft lab's captures against the services
they were generated from, and a k3s node's table from a public write-up."""

from __future__ import annotations

import json

import pytest

from labreport.analysis.services_nft import decode_nft, parse_service_port_name, split_chain_name
from labreport.parsers import nft

from tests.conftest import FIXTURES

from tests.support import gen_nft

NFT = FIXTURES / "parsers" / "nft"
TRUTH = json.loads((NFT / "kube-proxy-lab.truth.json").read_text())


def decode(name: str):
    res = nft.parse((NFT / name).read_text(), source=name)
    return decode_nft(res.value)


@pytest.mark.parametrize("name", ["kube-proxy-lab.nft", "kube-proxy-lab.json"])
def test_lab_listing_decodes_to_the_truth(name):
    records, masq = decode(name)
    assert gen_nft.compare(records, TRUTH) == []
    assert all(r.mode == "nftables" and r.warnings == [] for r in records)
    assert masq.mark == "0x4000/0x4000"
    assert masq.mark_chain == "mark-for-masquerade" and masq.postrouting_chain == "masquerading"
    assert "chain masquerading: masquerade fully-random" in masq.rules


def test_compare_catches_a_wrong_decode():
    records, _ = decode("kube-proxy-lab.nft")
    with_eps = [r for r in records if r.endpoints]
    with_eps[0].endpoints[0].probability = 0.5
    with_eps[1].node_port = 1
    assert len(gen_nft.compare(records, TRUTH)) == 2
    assert gen_nft.compare(records[1:], TRUTH)  # a missing service is reported


def test_chains_for_the_report_hops():
    records, _ = decode("kube-proxy-lab.nft")
    by = {r.name: r for r in records}
    web3 = by["default/web3:http"]
    assert web3.chains["table"] == "ip kube-proxy"
    assert web3.chains["map"] == "service-ips"
    assert web3.chains["svc"] == "service-44ZSXEYG-default/web3/tcp/http"
    assert web3.chains["numgen"] == "numgen random mod 3"
    assert web3.chains["endpoints"].split() == [e.chain for e in web3.endpoints]
    assert web3.chains["mark"] == "mark-for-masquerade"
    web = by["default/web"]
    assert web.chains["nodeport_map"] == "service-nodeports"
    assert web.chains["ext"] == "external-PFISGYVC-default/web/tcp/"
    assert any(ev.startswith("map service-ips: 10.96.0.10 . tcp . 80 : goto") for ev in web.evidence)
    sticky = by["default/sticky:http"]
    assert sticky.session_affinity and sticky.affinity_timeout_s == 10800
    assert sticky.chains["affinity"].startswith("affinity-… (2 sets)")
    local = by["default/local:web"]
    assert local.external_traffic_policy == "Local"
    assert local.chains["local"] == "local-AG2INSPF-default/local/tcp/web"
    assert [(e.address, e.local) for e in local.endpoints] == [("10.244.1.5:80", True), ("10.244.3.9:80", False)]
    empty = by["default/empty"]
    assert empty.no_endpoints and empty.endpoints == [] and empty.node_port == 30020
    assert empty.chains["no_endpoint_map"] == "no-endpoint-services"
    lb = by["default/lb:https"]
    assert lb.load_balancer_ips == ["198.51.100.7"] and lb.external_ips == []
    assert lb.chains["fw"] == "firewall-BPKTVXJ3-default/lb/tcp/https" and lb.node_port == 30443
    dns = by["kube-system/kube-dns:dns"]
    assert dns.protocol == "udp" and dns.port == 53 and dns.port_name == "dns"


def test_public_k3s_node():
    records, masq = decode("public-k3s-kube-proxy.nft")
    by = {r.name: r for r in records}
    assert len(records) == 11
    hp = by["riset/hellopod-np-svc"]
    assert (hp.cluster_ip, hp.port, hp.node_port, hp.port_name) == ("10.43.195.72", 8000, 30000, None)
    assert hp.external_traffic_policy == "Cluster"
    assert len(hp.endpoints) == 9
    assert sum(e.probability for e in hp.endpoints) == pytest.approx(1.0)
    assert all(e.probability == pytest.approx(1 / 9) for e in hp.endpoints)
    assert "10.42.5.164:8080" in {e.address for e in hp.endpoints}
    api = by["default/kubernetes:https"]
    assert [e.address for e in api.endpoints] == ["10.34.4.142:6443"]
    for name in ("riset/otelcol-opentelemetry-collector:otlp", "riset/otelcol-opentelemetry-collector:otlp-http"):
        assert by[name].no_endpoints and by[name].cluster_ip == "10.43.21.102"
    assert masq.mark == "0x4000/0x4000"


def test_missing_endpoint_chain_is_warned_and_named_from_the_chain():
    text = (NFT / "public-k3s-kube-proxy.nft").read_text()
    start = text.index("        chain endpoint-OLBBPMRA")
    end = text.index("        }\n", start) + len("        }\n")
    res = nft.parse(text[:start] + text[end:])
    records, _ = decode_nft(res.value)
    rec = next(r for r in records if r.name == "riset/latency-extender-svc:http")
    assert rec.endpoints[0].address == "10.42.0.174:3001"
    assert any("not in the input" in w for w in rec.warnings)


def test_service_chain_missing_means_endpoints_unknown():
    text = (NFT / "kube-proxy-lab.nft").read_text()
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("chain service-44ZSXEYG"))
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "}")
    res = nft.parse("\n".join(lines[:start] + lines[end + 1 :]))
    records, _ = decode_nft(res.value)
    rec = next(r for r in records if r.name == "default/web3:http")
    assert rec.endpoints is None
    assert rec.cluster_ip == "10.96.0.11"


def test_iptables_nft_tables_are_not_kube_proxy_nft_mode():
    records, masq = decode("iptables-nft-kube-services.nft")
    assert records == [] and masq is None


@pytest.mark.parametrize("chain,parts", [
    ("service-ULMVA6XW-ns1/svc1/tcp/p80", ("service-", "ns1", "svc1", "tcp", "p80", None)),
    ("service-PFISGYVC-default/web/tcp/", ("service-", "default", "web", "tcp", None, None)),
    ("endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80", ("endpoint-", "ns1", "svc1", "tcp", "p80", "10.180.0.1/80")),
    ("endpoint-ABCDEFGH-ns/svc/tcp/p__fd00.10.180..1/80", ("endpoint-", "ns", "svc", "tcp", "p", "fd00.10.180..1/80")),
])
def test_chain_names(chain, parts):
    cn = split_chain_name(chain)
    assert (cn.prefix, cn.namespace, cn.service, cn.protocol, cn.port_name, cn.endpoint) == parts


def test_kube_proxy_own_chains_are_not_service_chains():
    assert split_chain_name("service-endpoints-check") is None
    assert split_chain_name("services") is None


def test_service_port_names():
    assert parse_service_port_name("ns/svc:http") == ("ns", "svc", "http")
    assert parse_service_port_name("ns/svc") == ("ns", "svc", None)


@pytest.mark.parametrize("name", ["kube-proxy-lab.nft", "kube-proxy-lab.json"])
def test_ip6_table_of_a_dual_stack_node(name):
    records, _ = decode(name)
    by = {r.name: r for r in records}
    web6 = by["default/web6-3:http"]
    assert web6.chains["table"] == "ip6 kube-proxy"
    assert web6.cluster_ip == "fd00:10:96::11" and web6.affinity_timeout_s == 600
    assert [e.address for e in web6.endpoints] == ["[fd00:10:244:1::5]:80", "[fd00:10:244:2::7]:80", "[fd00:10:244:3::9]:80"]
    assert by["default/empty6"].no_endpoints and by["default/empty6"].protocol == "udp"
    assert by["default/web6"].node_port == 30086


def test_statements_are_read_only_for_the_rules_the_decoder_needs():
    """A text rule's statements are read when first used: the decoder reads the numgen,
    affinity and dnat rules of the shapes kube-proxy writes from their text's shape
    (parsers/nft/fast.py), and builds the statements of no endpoint chain's rule; the
    records are those of the same ruleset from nft's JSON (statements stored)."""
    text_rs = nft.parse((NFT / "kube-proxy-lab.nft").read_text()).value
    json_rs = nft.parse((NFT / "kube-proxy-lab.json").read_text()).value
    from_text, _ = decode_nft(text_rs)
    from_json, _ = decode_nft(json_rs)
    assert from_text and [r.model_dump() for r in from_text] == [r.model_dump() for r in from_json]
    ep_rules = [r for t in text_rs.tables for c in t.chains if c.name.startswith("endpoint-") for r in c.rules]
    marks = [r for r in ep_rules if "mark-for-masquerade" in r.text]
    assert marks and not any("expr" in r.__dict__ for r in marks)
    dnats = [r for r in ep_rules if "dnat" in r.text]
    v4 = [r for r in dnats if "[" not in r.text]  # `dnat to [fd00::5]:80` is not one of the shapes
    assert v4 and not any("expr" in r.__dict__ for r in v4)
    assert all("expr" in r.__dict__ for r in dnats if r not in v4)
