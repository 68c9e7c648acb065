"""kube-proxy's own packet-flow tests, run through `labreport trace`'s model.

The rule dumps and flows are data from kubernetes/kubernetes (see
tests/fixtures/kube-proxy-tests/README.md); the code here is ours. Each flow enters the
node at PREROUTING from its source address, as kube-proxy's tracer does, and must give the
same output ("ip:port, ip:port" for the DNAT targets, "DROP", "REJECT", "ACCEPT" or "" for
no match) and the same masquerade bit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labreport.analysis.trace import Flow, build_world, run_flow
from labreport.analysis.trace.model import TraceResult
from labreport.parsers import get
from labreport.snapshot import Address, Link, NetNamespace, NodeSnapshot, Snapshot

FIX = Path(__file__).resolve().parent / "fixtures" / "kube-proxy-tests"

# kube-proxy installs these jumps from the built-in chains itself (outside the dumps of the
# older tests, which list only kube-proxy's own chains); as in TestTracePacket's dump.
BASE_JUMPS = {
    "nat": {"PREROUTING": ["-m comment --comment kubernetes service portals -j KUBE-SERVICES"],
            "OUTPUT": ["-m comment --comment kubernetes service portals -j KUBE-SERVICES"],
            "POSTROUTING": ["-m comment --comment kubernetes postrouting rules -j KUBE-POSTROUTING"]},
    "filter": {"FORWARD": ["-m comment --comment kubernetes forwarding rules -j KUBE-FORWARD",
                           "-m conntrack --ctstate NEW -m comment --comment kubernetes service portals -j KUBE-SERVICES",
                           "-m conntrack --ctstate NEW -m comment --comment kubernetes externally-visible service "
                           "portals -j KUBE-EXTERNAL-SERVICES"],
               "INPUT": ["-m comment --comment kubernetes health check service ports -j KUBE-NODEPORTS",
                         "-m conntrack --ctstate NEW -m comment --comment kubernetes externally-visible service "
                         "portals -j KUBE-EXTERNAL-SERVICES"],
               "OUTPUT": ["-m conntrack --ctstate NEW -m comment --comment kubernetes service portals -j KUBE-SERVICES"]},
}


def node_with(ipt_text: str, node_ips: list[str]) -> Snapshot:
    ipt = get("iptables-save").parse(ipt_text, source="fixture").value
    from labreport.snapshot import IptChain, IptRule

    for table, chains in BASE_JUMPS.items():
        t = ipt.tables.get(table)
        if t is None:
            continue
        for chain, rules in chains.items():
            if chain not in t.chains:
                t.chains[chain] = IptChain(name=chain, policy="ACCEPT", rules=[IptRule(spec=r) for r in rules])
    eth0 = Link(ifindex=2, name="eth0", addresses=[
        Address(family="inet6" if ":" in a else "inet", local=a, prefixlen=64 if ":" in a else 24) for a in node_ips])
    lo = Link(ifindex=1, name="lo", addresses=[Address(family="inet", local="127.0.0.1", prefixlen=8)])
    ns = NetNamespace(name="test-node", kind="node", links=[lo, eth0])
    return Snapshot(nodes=[NodeSnapshot(name="test-node", iptables=ipt, netns=[ns])])


def kube_proxy_output(res: TraceResult) -> tuple[str, bool]:
    """Our outcomes in kube-proxy's tracer's words: its DNAT targets and terminal verdicts."""
    toks: list[str] = []
    for o in res.outcomes:
        mine: list[str] = []
        if o.dnat:
            mine.append(o.dnat)
        if o.result == "dropped":
            mine.append("DROP")
        elif o.result == "rejected":
            mine.append("REJECT")
        elif not o.dnat and any(h.kind == "netfilter" and h.table == "filter" and h.verdict == "ACCEPT"
                                and h.rule_index is not None for h in o.hops):
            mine.append("ACCEPT")
        for t in mine:
            if t not in toks:
                toks.append(t)
    return ", ".join(toks), any(o.masquerade for o in res.outcomes)


def nft_node_with(nft_text: str, node_ips: list[str]) -> Snapshot:
    ruleset = get("nft").parse(nft_text, source="fixture").value
    snap = node_with("*filter\nCOMMIT\n", node_ips)
    snap.nodes[0].iptables = None
    snap.nodes[0].nftables = ruleset
    return snap


def _cases() -> list[tuple[str, dict]]:
    out = []
    for f in sorted(FIX.glob("*.flows.json")):
        data = json.loads(f.read_text("utf-8"))
        for flow in data["flows"]:
            out.append((f.name.replace(".flows.json", ""), {**flow, "node_ips": data["node_ips"]}))
    return out


CASES = _cases()


@pytest.fixture(scope="module")
def worlds():
    cache = {}

    def get_world(stem: str, node_ips: list[str]):
        if stem not in cache:
            if stem.startswith("nft-"):
                text = (FIX / f"{stem}.nft").read_text("utf-8")
                cache[stem] = build_world(nft_node_with(text, node_ips))
            else:
                text = (FIX / f"{stem}.iptables-save").read_text("utf-8")
                cache[stem] = build_world(node_with(text, node_ips))
        return cache[stem]
    return get_world


def test_every_fixture_has_flows():
    assert len(CASES) >= 19
    assert {c[0] for c in CASES} >= {"iptables-TestTracePacket", "nft-TestTracePacketV4"}


@pytest.mark.parametrize("stem,flow", CASES, ids=[f"{c[0]}:{c[1]['name']}" for c in CASES])
def test_kube_proxy_flow(worlds, stem, flow):
    w = worlds(stem, flow["node_ips"])
    res = run_flow(w, Flow(src=flow["source_ip"], dst=flow["dest_ip"], dport=flow["dest_port"],
                           proto=flow.get("protocol", "tcp"), entry_node="test-node", entry="outside"))
    out, masq = kube_proxy_output(res)
    assert (out, masq) == (flow["output"], flow["masq"]), [(o.result, o.reason) for o in res.outcomes]
    assert abs(sum(o.probability for o in res.outcomes) - 1.0) < 1e-9


def test_probabilities_and_hops_of_a_two_endpoint_service(worlds):
    w = worlds("iptables-TestTracePacket", ["192.168.0.2"])
    res = run_flow(w, Flow(src="10.0.0.2", dst="172.30.0.44", dport=80, entry_node="test-node", entry="outside"))
    dn = sorted((o.dnat, o.probability) for o in res.outcomes)
    assert dn == [("10.180.0.4:80", 0.5), ("10.180.0.5:80", 0.5)]
    o = next(o for o in res.outcomes if o.dnat == "10.180.0.4:80")
    nf = [h for h in o.hops if h.kind == "netfilter"]
    # kernel order: nat PREROUTING → KUBE-SERVICES → KUBE-SVC → KUBE-SEP (DNAT), then filter FORWARD
    assert [(h.hook, h.table, h.chain) for h in nf[:4]] == [
        ("PREROUTING", "nat", "PREROUTING"), ("PREROUTING", "nat", "KUBE-SERVICES"),
        ("PREROUTING", "nat", "KUBE-SVC-4SW47YFZTEDKD3PK"), ("PREROUTING", "nat", "KUBE-SEP-UKSFD7AGPMPPLUHC")]
    assert nf[3].verdict == "DNAT 10.180.0.4:80" and nf[3].rule_index == 2
    assert nf[2].verdict == "jump KUBE-SEP-UKSFD7AGPMPPLUHC" and nf[2].rule_index == 2
    assert nf[2].rule.startswith("-m comment --comment \"ns4/svc4:p80 -> 10.180.0.4:80\" -m statistic")
    assert any(h.hook == "FORWARD" and h.table == "filter" for h in nf)
    assert any(h.hook == "POSTROUTING" and h.chain == "KUBE-POSTROUTING" and h.verdict == "RETURN" for h in nf)
    j = o.to_json()
    assert set(j["hops"][1]) == {"kind", "node", "netns", "hook", "family", "backend", "table", "chain",
                                 "rule_index", "rule", "verdict"}


def test_nft_hops_name_the_rules_as_nft_prints_them(worlds):
    w = worlds("nft-TestTracePacketV4", ["192.168.0.2"])
    res = run_flow(w, Flow(src="10.0.0.2", dst="172.30.0.44", dport=80, entry_node="test-node", entry="outside"))
    assert sorted((o.dnat, o.probability) for o in res.outcomes) == [("10.180.0.4:80", 0.5), ("10.180.0.5:80", 0.5)]
    nf = [h for h in res.outcomes[0].hops if h.kind == "netfilter"]
    # filter-prerouting (priority -110) runs before nat-prerouting (-100)
    assert [(h.chain, h.verdict) for h in nf[:2]] == [("filter-prerouting", "jump firewall-check"),
                                                      ("firewall-check", "RETURN")]
    assert (nf[2].chain, nf[2].rule_index, nf[2].verdict) == ("filter-prerouting", None, "ACCEPT")  # its policy
    assert nf[3].chain == "nat-prerouting" and nf[3].verdict == "jump services" and nf[3].rule == "jump services"
    assert nf[4].chain == "services" and nf[4].verdict == "goto service-LAUZTJTB-ns4/svc4/tcp/p80"
    assert nf[4].rule == "ip daddr . meta l4proto . th dport vmap @service-ips" and nf[4].rule_index == 1
    assert nf[5].verdict.startswith("goto endpoint-") and nf[5].rule.startswith("numgen random mod 2 vmap")
    dn = next(h for h in nf if h.verdict.startswith("DNAT"))
    assert dn.backend == "nftables" and dn.family == "ip" and dn.table == "kube-proxy"
    assert dn.rule == "meta l4proto tcp dnat to " + dn.verdict.split()[1]
    assert any(h.hook == "FORWARD" and h.chain == "filter-forward" for h in nf)
    assert any(h.hook == "POSTROUTING" and h.chain == "masquerading" and h.verdict == "RETURN" for h in nf)
