"""proxy_mode.detect_mode and services.decode_services: which kube-proxy mode a node runs,
from its configuration or its rules, and what happens with two rule sets at once."""

from __future__ import annotations

import pytest

from labreport.analysis.proxy_mode import detect_mode, mode_from_configmap, normalize_mode
from labreport.analysis.services import decode_services
from labreport.parsers import ipvsadm, iptables_save, nft
from labreport.snapshot import ClusterObjects, Iptables, NodeInfo, NodeSnapshot, Process

from tests.conftest import FIXTURES

NFT_LAB = (FIXTURES / "parsers" / "nft" / "kube-proxy-lab.nft").read_text()
IPT_SAVE = (FIXTURES / "parsers" / "nft" / "iptables-nft-kube-services.iptables-save").read_text()
IPT_NFT = (FIXTURES / "parsers" / "nft" / "iptables-nft-kube-services.nft").read_text()
IPVS = (FIXTURES / "parsers" / "ipvsadm" / "opsnull-251-ipvsadm-Ln.txt").read_text()


def configmap(mode_line: str) -> ClusterObjects:
    conf = (
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
        "bindAddress: 0.0.0.0\n"
        "clusterCIDR: 10.244.0.0/16\n"
        "kind: KubeProxyConfiguration\n"
        f"{mode_line}\n"
        "nodePortAddresses: null\n"
    )
    return ClusterObjects(configmaps=[{
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
        "data": {"config.conf": conf, "kubeconfig.conf": "apiVersion: v1\nkind: Config\n"},
    }])


def node(*, nft_text=None, ipt=None, ipvs=None, processes=(), info=None) -> NodeSnapshot:
    return NodeSnapshot(
        name="n1",
        nftables=nft.parse(nft_text).value if nft_text else None,
        iptables=iptables_save.parse(ipt).value if ipt else None,
        ipvs=ipvsadm.parse(ipvs).value if ipvs else None,
        processes=[Process(pid=100 + i, command=c) for i, c in enumerate(processes)],
        info=info or NodeInfo(),
    )


def test_nftables_from_the_rules():
    info = detect_mode(node(nft_text=NFT_LAB))
    assert (info.mode, info.rule_sets_present, info.note) == ("nftables", ["nftables"], None)
    assert "kube-proxy" in info.detected_from


def test_iptables_from_the_rules():
    info = detect_mode(node(ipt=IPT_SAVE))
    assert (info.mode, info.rule_sets_present) == ("iptables", ["iptables"])
    assert "KUBE-SERVICES" in info.detected_from


def test_iptables_nft_tables_are_not_nftables_mode():
    info = detect_mode(node(nft_text=IPT_NFT, ipt=IPT_SAVE))
    assert (info.mode, info.rule_sets_present) == ("iptables", ["iptables"])


def test_iptables_mode_seen_only_through_nft():
    info, records, _ = decode_services(node(nft_text=IPT_NFT), None)
    assert (info.mode, info.rule_sets_present) == ("iptables", ["iptables"])
    assert "iptables-nft" in info.detected_from
    assert records == [] and "iptables-save output is needed" in info.note


def test_ipvs_from_virtual_servers():
    info = detect_mode(node(ipvs=IPVS))
    assert info.mode == "ipvs" and "IPVS virtual servers" in info.detected_from


def test_two_rule_sets_without_configuration_prefers_the_newer_mode_and_says_so():
    n = node(nft_text=NFT_LAB, ipt=IPT_SAVE)
    info, records, masq = decode_services(n, None)
    assert info.rule_sets_present == ["iptables", "nftables"]
    assert info.mode == "nftables"
    assert "2 kube-proxy rule sets present" in info.note and "not mixed" in info.note
    assert records and all(r.mode == "nftables" for r in records)
    assert "default/web" not in {r.name for r in records if r.cluster_ip == "10.96.1.1"}  # nothing from iptables
    assert masq.mark_chain == "mark-for-masquerade"


def test_two_rule_sets_configmap_chooses_iptables():
    n = node(nft_text=NFT_LAB, ipt=IPT_SAVE)
    info, records, _ = decode_services(n, configmap('mode: "iptables"'))
    assert info.mode == "iptables"
    assert info.detected_from.startswith("kube-proxy ConfigMap")
    assert "nftables rules are leftovers" in info.note
    assert {r.cluster_ip for r in records} == {"10.96.1.1"}
    assert all(r.mode == "iptables" for r in records)


@pytest.mark.parametrize("line,mode,shown", [
    ('mode: ""', "iptables", "default: iptables"),
    ("mode: ipvs", "ipvs", "ipvs"),
    ("mode: nftables  # switched in lab 3", "nftables", "nftables"),
    ("mode: 'iptables'", "iptables", "iptables"),
])
def test_configmap_mode_values(line, mode, shown):
    assert mode_from_configmap(configmap(line))[0] == mode
    info = detect_mode(node(), configmap(line))
    assert info.mode == mode and shown in info.detected_from


def test_process_flag_beats_the_configmap():
    n = node(processes=["/usr/local/bin/kube-proxy --config=/var/lib/kube-proxy/config.conf --proxy-mode=ipvs "
                        "--hostname-override=node1"], ipvs=IPVS)
    info = detect_mode(n, configmap("mode: iptables"))
    assert info.mode == "ipvs" and "--proxy-mode" in info.detected_from


def test_flag_with_separate_value_and_node_config():
    n = node(processes=["kube-proxy --proxy-mode nftables"])
    assert detect_mode(n).mode == "nftables"
    n = node(info=NodeInfo(kube_proxy_mode="ipvs"))
    assert detect_mode(n).detected_from.startswith("kube-proxy config on the node")


def test_configured_mode_without_its_rules_decodes_what_is_there():
    # ConfigMap edited to ipvs, kube-proxy not restarted: only iptables rules exist
    info, records, _ = decode_services(node(ipt=IPT_SAVE), configmap("mode: ipvs"))
    assert info.mode == "iptables"
    assert "configured mode is ipvs" in info.note and "not restarted" in info.note
    assert records and records[0].cluster_ip == "10.96.1.1"


def test_nothing_collected_is_unknown_and_empty_rules_are_none():
    assert detect_mode(node()).mode == "unknown"
    empty = NodeSnapshot(name="n", iptables=Iptables())
    info = detect_mode(empty)
    assert info.mode == "none" and info.rule_sets_present == []


def test_unknown_flag_value_is_reported():
    info = detect_mode(node(processes=["kube-proxy --proxy-mode=userspace"]))
    assert info.mode == "unknown" and "userspace" in info.detected_from


def test_normalize():
    assert normalize_mode("") == "iptables"
    assert normalize_mode("IPVS") == "ipvs"
    assert normalize_mode("kernelspace") is None


def test_mode_without_its_input_is_noted():
    info, records, _ = decode_services(node(processes=["kube-proxy --proxy-mode=nftables"]), None)
    assert info.mode == "nftables" and records == [] and "no nft ruleset was collected" in info.note
