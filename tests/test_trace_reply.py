"""The way back (``Outcome.reply``): each delivered outcome's reply traced from the endpoint
through every node's conntrack back to the client, on snapshots recorded from the
kernel-oracle labs (tests/fixtures/trace-reply/README.md). The kernel itself checks the
same predictions in tests/test_trace_kernel_*.py (oracle_cases.check_reply, check_hairpin);
here: what the model says, hop by hop, and what it must never say."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from labreport import snapshot as snapmod
from labreport.analysis import analyze
from labreport.analysis.trace import build_world, run_flow
from labreport.analysis.trace.resolve import make_flow

FIX = Path(__file__).parent / "fixtures" / "trace-reply"


def load(name: str) -> snapmod.Snapshot:
    return snapmod.from_dict(json.loads(gzip.decompress((FIX / f"{name}.json.gz").read_bytes())))


def trace(snap: snapmod.Snapshot, src: str, dst: str, via: str | None = None, replies: bool = True):
    a = analyze(snap)
    w = build_world(snap, a)
    flow, _ = make_flow(w, a, src, dst, "tcp", via)
    return run_flow(w, flow, replies=replies)


def nf(hops, node=None):
    return [(h.hook, h.table, h.chain, h.rule_index, h.verdict) for h in hops
            if h.kind == "netfilter" and (node is None or h.node == node)]


@pytest.fixture(scope="module")
def one() -> snapmod.Snapshot:
    return load("iptables-one-node")


@pytest.fixture(scope="module")
def two() -> snapmod.Snapshot:
    return load("nft-two-nodes")


CLIENT = "10.244.65.20"  # the routed client pod of the labs


def test_pod_to_cluster_ip_the_reply_comes_back_as_the_cluster_ip(one):
    res = trace(one, CLIENT, "10.96.0.10:80")
    delivered = [o for o in res.outcomes if o.result == "delivered"]
    assert len(delivered) == 3
    for o in delivered:
        r = o.reply
        assert r is not None and r.result == "delivered", r
        ep = o.endpoint
        assert r.src == ep and r.dst == f"{CLIENT}:40000"  # what the endpoint sends: conntrack's reply tuple
        assert (r.seen_src, r.seen_dst) == ("10.96.0.10:80", f"{CLIENT}:40000") == (r.expected_src, r.expected_dst)
        (ct,) = r.conntrack
        assert (ct.node, ct.original, ct.reply, ct.nat) == ("n1", f"{CLIENT}:40000 → 10.96.0.10:80",
                                                            f"{ep} → {CLIENT}:40000", "dnat")
        # established: no nat chain; KUBE-FORWARD's conntrack rule accepts it (as the kernel's trace shows)
        assert nf(r.hops) == [("FORWARD", "filter", "FORWARD", 2, "jump KUBE-FORWARD"),
                              ("FORWARD", "filter", "KUBE-FORWARD", 3, "ACCEPT")]
        kinds = [h.kind for h in r.hops]
        assert kinds[0] == "device" and kinds[-1] == "deliver" and "conntrack" in kinds
        rewrite = [h for h in r.hops if h.kind == "conntrack" and h.hook == "POSTROUTING"]
        assert len(rewrite) == 1 and f"{ep} is the DNAT target" in rewrite[0].detail
        assert r.hops[-1].netns != o.hops[-1].netns  # delivered in the client's namespace, not the endpoint's


def test_node_to_cluster_ip_masquerade_reversed_at_prerouting_dnat_at_input(one):
    res = trace(one, "n1", "10.96.0.10:80")
    for o in res.outcomes:
        r = o.reply
        assert o.masquerade and r.result == "delivered", r
        assert r.dst == "10.244.1.1:40000"  # masqueraded to cni0's address
        assert (r.seen_src, r.seen_dst) == ("10.96.0.10:80", "192.168.56.10:40000")
        ct = [(h.hook, h.detail.split(":")[0]) for h in r.hops if h.kind == "conntrack" and h.hook]
        assert [h for h, _ in ct] == ["PREROUTING", "INPUT"]
        assert nf(r.hops)[0][0] == "INPUT" and r.hops[-1].kind == "deliver"
        assert r.conntrack[0].nat == "dnat+snat"


def test_external_to_node_port_the_reply_leaves_towards_the_client(one):
    res = trace(one, "192.168.56.100", "192.168.56.10:30080", via="n1")
    for o in res.outcomes:
        r = o.reply
        assert r.result == "delivered" and r.seen_src == "192.168.56.10:30080" and r.seen_dst == "192.168.56.100:40000"
        assert "leaves towards it" in r.reason
        assert r.hops[-1].kind == "device" and r.hops[-1].device == "eth0"


def test_routed_pod_service_from_the_node_masquerade_to_the_same_address_is_still_snat(one):
    # out of a cali veth with no address the masquerade keeps 192.168.56.10, but conntrack
    # SNATs the port (--random-fully): the entry is dnat+snat, as the kernel showed
    (o,) = trace(one, "n1", "10.96.0.18:80").outcomes
    assert o.reply.conntrack[0].nat == "dnat+snat" and o.reply.result == "delivered"
    assert o.reply.dst.startswith("192.168.56.10:")


def test_cross_node_reply_passes_both_nodes_conntrack(two):
    res = trace(two, CLIENT, "10.96.1.10:80")
    remote = [o for o in res.outcomes if o.node == "n2"]
    assert len(remote) == 2
    for o in remote:
        r = o.reply
        assert r.result == "delivered" and r.seen_src == "10.96.1.10:80"
        assert [(c.node, c.nat) for c in r.conntrack] == [("n1", "dnat"), ("n2", None)]
        nodes = [h.node for h in r.hops if h.kind == "conntrack" and h.hook is None]
        assert nodes == ["n2", "n1"]  # matched n2's entry, then n1's after the VXLAN
        assert any(h.kind == "encap" for h in r.hops)
        # nftables: kube-proxy's filter chains see an established packet; no nat chain
        assert {h.table for h in r.hops if h.kind == "netfilter"} <= {"kube-proxy", "lab-policy"}
        assert not [h for h in r.hops if h.kind == "netfilter" and h.chain.startswith("nat-")]


def test_hairpin_without_br_netfilter_the_reply_bypasses_conntrack():
    (o,) = trace(load("hairpin-bridge-nf-0"), "10.244.1.30", "10.96.0.20:80").outcomes
    assert o.result == "delivered"  # the first packet does reach the endpoint
    r = o.reply
    assert r.result == "dropped"
    assert ("reply bypasses the conntrack entry on n1 (client sees 10.244.1.2, expected 10.96.0.20)"
            in r.reason), r.reason
    assert "RST" in r.reason and "[UNREPLIED] SYN_SENT" in r.reason
    assert (r.seen_src, r.expected_src) == ("10.244.1.2:80", "10.96.0.20:80")
    assert nf(r.hops) == [] and not [h for h in r.hops if h.kind == "conntrack"]
    assert any("bridge-nf-call-iptables = 0" in (h.detail or "") for h in r.hops)


def test_hairpin_with_br_netfilter_conntrack_rewrites_the_bridged_reply():
    (o,) = trace(load("hairpin-bridge-nf-1"), "10.244.1.30", "10.96.0.20:80").outcomes
    r = o.reply
    assert r.result == "delivered" and r.seen_src == "10.96.0.20:80"
    assert nf(r.hops) == [("FORWARD", "filter", "FORWARD", 2, "jump KUBE-FORWARD"),
                          ("FORWARD", "filter", "KUBE-FORWARD", 3, "ACCEPT")]


def test_hairpin_without_the_sysctl_is_unknown_not_guessed():
    snap = load("hairpin-bridge-nf-1")
    snap.nodes[0].info.sysctls.pop("net.bridge.bridge-nf-call-iptables")
    (o,) = trace(snap, "10.244.1.30", "10.96.0.20:80").outcomes
    assert o.reply.result == "unknown" and "bridge-nf-call-iptables" in o.reply.reason


def test_a_rule_on_the_reply_direction_drops_the_reply_not_the_first_packet():
    # a FORWARD rule that drops what conntrack calls the reply direction: the first packet
    # (ORIGINAL) passes it, the endpoint's answer (REPLY, ESTABLISHED) is dropped there
    snap = load("iptables-one-node")
    fwd = snap.nodes[0].iptables.tables["filter"].chains["FORWARD"]
    rule = "-p tcp -m conntrack --ctdir REPLY --ctstate ESTABLISHED -m tcp --sport 80 -j DROP"
    fwd.rules.insert(0, type(fwd.rules[0])(spec=rule))
    res = trace(snap, CLIENT, "10.96.0.10:80")
    assert {o.result for o in res.outcomes} == {"delivered"}
    for o in res.outcomes:
        assert o.reply.result == "dropped" and "filter FORWARD rule 1" in o.reply.reason and rule in o.reply.reason
        assert nf(o.reply.hops)[-1] == ("FORWARD", "filter", "FORWARD", 1, "DROP")
        assert ("FORWARD", "filter", "FORWARD", 1, "DROP") not in nf(o.hops)


def test_replies_only_when_asked(one):
    res = trace(one, CLIENT, "10.96.0.10:80", replies=False)
    assert all(o.reply is None for o in res.outcomes)
    assert "reply" not in json.dumps(res.to_json())


def cli(capsys, *args: str) -> str:
    from labreport.cli import main

    rc = main(["trace", *args])
    out = capsys.readouterr().out
    assert rc == 0, out
    return out


def test_cli_json_text_and_all_replies(capsys, tmp_path):
    d = str(snapmod.save(load("hairpin-bridge-nf-0"), tmp_path / "s"))
    flow = ["--from", "10.244.1.30", "--to", "10.96.0.20:80"]
    (o,) = json.loads(cli(capsys, d, *flow, "--json"))["outcomes"]
    assert o["reply"]["result"] == "dropped" and o["reply"]["src"] == "10.244.1.2:80"
    assert o["reply"]["dst"] == "10.244.1.30:40000" and o["reply"]["conntrack"][0]["node"] == "n1"
    assert "    reply: DROPPED: reply bypasses the conntrack entry on n1" in cli(capsys, d, *flow)
    head, *rows = cli(capsys, d, "--all", "--replies").splitlines()
    assert head.split()[-1] == "REPLY" and rows
    fronts = json.loads(cli(capsys, d, "--all", "--replies", "--json"))["fronts"]
    assert len(fronts) == len(rows)
    for f, row in zip(fronts, rows):
        # each row's replies are the single trace's, from the same source to the same front
        single = json.loads(cli(capsys, d, "--from", f["source"], "--to", f["front"], "--via", "n1", "--json"))
        want = [(o["endpoint"], o["reply"]["result"]) for o in single["outcomes"] if o["result"] == "delivered"]
        got = [(o["endpoint"], o["reply"]["result"]) for o in f["outcomes"] if o["result"] == "delivered"]
        assert got == want and want, (f, single)
        for ep, result in got:
            assert f"{ep}: {'ok' if result == 'delivered' else result.upper()}" in row and f["reply_summary"] in row
    plain = json.loads(cli(capsys, d, "--all", "--json"))["fronts"]
    assert plain and all("reply_summary" not in f for f in plain)
    assert all("reply" not in o for f in plain for o in f["outcomes"])
    assert cli(capsys, d, "--all").splitlines()[0].split()[-1] == "RESULT"


def test_several_nat_chains_per_hook_run_until_one_maps_the_packet(two):
    # the nftables labs have a table lab-nat beside kube-proxy's, with nat chains at
    # prerouting (dstnat - 10) and postrouting (srcnat - 10) that map no lab flow: the
    # kernel runs them first, then kube-proxy's, which DNAT and masquerade; a filter chain at
    # the same priority as a nat chain (-110) runs before it (the NAT core sits at -100)
    res = trace(two, "192.168.56.100", "192.168.56.10:30090", via="n1")
    assert {o.result for o in res.outcomes} == {"delivered"} and all(o.masquerade for o in res.outcomes)
    for o in res.outcomes:
        chains = [(h.table, h.chain) for h in o.hops if h.kind == "netfilter" and h.node == "n1"
                  and h.rule_index is None and h.chain in ("filter-prerouting-pre-dnat", "pre", "post")]
        assert chains == [("kube-proxy", "filter-prerouting-pre-dnat"), ("lab-nat", "pre"), ("lab-nat", "post")]
        dnat = [i for i, h in enumerate(o.hops) if h.kind == "netfilter" and str(h.verdict).startswith("DNAT")]
        pre = [i for i, h in enumerate(o.hops) if h.kind == "netfilter" and h.table == "lab-nat" and h.chain == "pre"]
        assert len(dnat) == 1 and pre and pre[0] < dnat[0]
        assert any(h.verdict == "MASQUERADE" and h.table == "kube-proxy" for h in o.hops)
        assert o.reply is not None and o.reply.result == "delivered"
        assert not [h for h in o.reply.hops if h.kind == "netfilter" and h.table == "lab-nat"]  # established: no nat


def test_a_connection_cilium_translated_has_an_unknown_reply_not_a_broken_one():
    # Cilium's socket LB / bpf_host translate before netfilter and reverse it themselves
    # (rev-NAT): no conntrack entry of the node holds the DNAT, yet the client is answered
    # as the frontend. The trace does not model rev-NAT, so it must not call that broken.
    from labreport.analysis.trace import Flow
    from labreport.snapshot import CiliumBackend, CiliumService
    from tests.test_cilium import _world_with_table

    _s, _a, w = _world_with_table([CiliumService(id=4, frontend="10.96.5.5:80", type="ClusterIP", backends=[
        CiliumBackend(address="10.244.0.5:80", state="active"), CiliumBackend(address="10.244.1.7:80", state="active")])])
    res = run_flow(w, Flow(src=None, dst="10.96.5.5", dport=80, entry="process", entry_node="node-a"), replies=True)
    assert {o.result for o in res.outcomes} == {"delivered"}
    for o in res.outcomes:
        assert o.reply.result == "unknown" and "rev-NAT" in o.reply.reason and o.reply.expected_src == "10.96.5.5:80"


def test_all_fronts_with_replies_names_the_node_a_reply_bypasses():
    from labreport.analysis.trace.fronts import all_fronts

    snap = load("hairpin-bridge-nf-0")
    a = analyze(snap)
    w = build_world(snap, a)
    rows = all_fronts(w, a, pod_ip="10.244.1.30", replies=True)
    (row,) = [r for r in rows if r.source_kind == "pod" and r.front == "10.96.0.20:80"]
    assert row.reply_summary == "10.244.1.2:80: DROPPED (bypasses n1)"
    assert row.outcomes[0]["reply"]["seen_src"] == "10.244.1.2:80"  # type: ignore[index]
    assert all(r.reply_summary is None for r in all_fronts(w, a, pod_ip="10.244.1.30"))
