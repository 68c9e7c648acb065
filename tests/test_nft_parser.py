"""labreport.parsers.nft on real nft output: the listings captured from the nft lab
(tests/fixtures/parsers/nft/kube-proxy-lab.*), a k3s node's kube-proxy table from a public
write-up, and iptables-nft's tables (see tests/fixtures/parsers/nft/README.md)."""

from __future__ import annotations

import json

import pytest

from labreport import parsers
from labreport.errors import ParseError
from labreport.parsers import nft
from labreport.snapshot import NftRuleset, NodeSnapshot, Snapshot

from tests.conftest import FIXTURES

NFT = FIXTURES / "parsers" / "nft"


def read(name: str) -> str:
    return (NFT / name).read_text()


def J(rule) -> list[dict]:
    """A rule's typed statements in nft's JSON schema (what the assertions were written in)."""
    return [nft.nft_json(s) for s in rule.expr]


def table(res, name="kube-proxy", family="ip") -> nft.NftTable:
    for t in nft.tables_of(res.value):
        if t.name == name and t.family == family:
            return t
    raise AssertionError(f"no table {family} {name}")


@pytest.fixture(scope="module")
def lab_text():
    return nft.parse(read("kube-proxy-lab.nft"), source="kube-proxy-lab.nft")


@pytest.fixture(scope="module")
def lab_json():
    return nft.parse(read("kube-proxy-lab.json"), source="kube-proxy-lab.json")


def test_registered_under_nft_and_detects_both_forms():
    assert parsers.get("nft") is nft
    assert parsers.detect(read("kube-proxy-lab.nft")) == "nft"
    assert parsers.detect(read("kube-proxy-lab.json")) == "nft"
    assert nft.INFO.target == "nftables"


@pytest.mark.parametrize("fixture", ["lab_text", "lab_json"])
def test_tables_chains_and_base_chain_headers(fixture, request):
    res = request.getfixturevalue(fixture)
    assert res.warnings == []
    t = table(res)
    pre = t.chain("filter-prerouting")
    assert (pre.type, pre.hook, pre.policy, pre.prio) == ("filter", "prerouting", "accept", -110)
    post_dnat = t.chain("filter-output-post-dnat")
    assert (post_dnat.hook, post_dnat.prio) == ("output", -90)
    assert t.chain("nat-postrouting").prio == 100  # srcnat
    assert t.chain("services").hook is None
    names = {c.name for c in t.chains}
    assert "service-PFISGYVC-default/web/tcp/" in names
    assert "endpoint-2GIOPW63-default/web/tcp/__10.244.1.5/80" in names


def test_text_keeps_the_printed_priority(lab_text):
    # written as "dstnat - 10" and printed back the same; JSON only has the number
    assert table(lab_text).chain("filter-prerouting").priority == "dstnat - 10"
    assert table(lab_text).chain("nat-prerouting").priority == "dstnat"


@pytest.mark.parametrize("fixture", ["lab_text", "lab_json"])
def test_verdict_maps_with_concatenated_keys(fixture, request):
    t = table(request.getfixturevalue(fixture))
    m = t.set("service-ips")
    assert m.kind == "map" and m.map == "verdict"
    assert m.type == ["ipv4_addr", "inet_proto", "inet_service"]
    keys = {tuple(e.key): nft.nft_json_value(e.value) for e in m.elements}
    assert keys[("10.96.0.10", "tcp", 80)] == {"goto": {"target": "service-PFISGYVC-default/web/tcp/"}}
    assert len(m.elements) == 10
    nodeports = t.set("service-nodeports")
    assert {tuple(e.key) for e in nodeports.elements} == {("tcp", 30080), ("tcp", 30021), ("tcp", 30443)}
    fw = t.set("firewall-ips").elements
    assert [(e.key, nft.nft_json_value(e.value)) for e in fw] == [(["198.51.100.7", "tcp", 443],
                                                {"goto": {"target": "firewall-BPKTVXJ3-default/lb/tcp/https"}})]


@pytest.mark.parametrize("fixture", ["lab_text", "lab_json"])
def test_element_comments_and_affinity_sets(fixture, request):
    t = table(request.getfixturevalue(fixture))
    noep = t.set("no-endpoint-services").elements
    assert [(e.key, e.comment) for e in noep] == [(["10.96.0.20", "tcp", 80], "default/empty")]
    assert nft.nft_json_value(noep[0].value) == {"goto": {"target": "reject-chain"}}
    aff = [s for s in t.sets if s.name.startswith("affinity-")]
    assert len(aff) == 2
    assert all(s.timeout == 10800 and "timeout" in s.flags for s in aff)
    live = [e for s in aff for e in s.elements]
    assert len(live) == 1 and live[0].expires is not None and 10000 < live[0].expires <= 10800


@pytest.mark.parametrize("fixture", ["lab_text", "lab_json"])
def test_rules_as_statements(fixture, request):
    t = table(request.getfixturevalue(fixture))
    sticky = t.chain("service-H6U4RGLG-default/sticky/tcp/http")
    exprs = [J(r) for r in sticky.rules]
    assert exprs[1][0]["match"]["right"] == "@affinity-BRZTK33O-default/sticky/tcp/http__10.244.1.5/80"
    assert exprs[1][1] == {"goto": {"target": "endpoint-BRZTK33O-default/sticky/tcp/http__10.244.1.5/80"}}
    vmap = exprs[3][0]["vmap"]
    assert vmap["key"] == {"numgen": {"mode": "random", "mod": 2, "offset": 0}}
    assert [k for k, _ in vmap["data"]["set"]] == [0, 1]
    ep = t.chain("endpoint-BRZTK33O-default/sticky/tcp/http__10.244.1.5/80")
    assert J(ep.rules[1])[0]["set"]["op"] == "update"
    assert J(ep.rules[2])[-1] == {"dnat": {"addr": "10.244.1.5", "port": 80}}
    masq = t.chain("mark-for-masquerade").rules[0]
    assert J(masq)[0]["mangle"]["value"] == {"|": [{"meta": {"key": "mark"}}, 16384]}
    cic = t.chain("cluster-ips-check").rules[0]
    assert cic.comment == "Reject traffic to invalid ports of ClusterIPs"


def test_text_and_json_give_the_same_statements(lab_text, lab_json):
    """What nft prints and what nft -j prints describe the same rules."""
    tt, tj = table(lab_text), table(lab_json)
    assert [c.name for c in tt.chains] == [c.name for c in tj.chains]
    same = 0
    for ct in tt.chains:
        cj = tj.chain(ct.name)
        for rt, rj in zip(ct.rules, cj.rules):
            if "ct" in json.dumps(J(rt)):  # "ct state new": == in text, "in" in JSON
                continue
            assert rt.expr == rj.expr, (ct.name, rt.text, rj.text)
            same += 1
    assert same > 50


def test_json_rules_are_rendered_as_nft_prints_them(lab_text, lab_json):
    tt, tj = table(lab_text), table(lab_json)
    for name in ("service-44ZSXEYG-default/web3/tcp/http", "masquerading", "mark-for-masquerade",
                 "endpoint-BRZTK33O-default/sticky/tcp/http__10.244.1.5/80", "services"):
        assert [r.text for r in tj.chain(name).rules] == [r.text for r in tt.chain(name).rules]


def test_public_k3s_listing_spaces_and_nodeport_ips():
    res = nft.parse(read("public-k3s-kube-proxy.nft"))
    assert res.warnings == []
    t = table(res)
    assert t.comment == "rules for kube-proxy"
    assert [e.key for e in t.set("nodeport-ips").elements] == [["10.34.4.246"]]
    assert len(t.set("cluster-ips").elements) == 7
    svc = t.chain("service-P6J77WGM-riset/hellopod-np-svc/tcp/")
    assert J(svc.rules[1])[0]["vmap"]["key"]["numgen"]["mod"] == 9
    assert len(J(svc.rules[1])[0]["vmap"]["data"]["set"]) == 9


@pytest.mark.parametrize("name", ["iptables-nft-kube-services.nft", "iptables-nft-kube-services.json"])
def test_iptables_nft_tables(name):
    res = nft.parse(read(name), source=name)
    assert res.warnings == []
    t = table(res, name="nat")
    assert t.chain("PREROUTING").prio == -100 and t.chain("PREROUTING").hook == "prerouting"
    sep = t.chain("KUBE-SEP-QRSTUVWXYZ234567")
    if name.endswith(".nft"):
        assert {"dnat": {"addr": "10.244.1.5", "port": 80}} in J(sep.rules[0])
    else:  # nft -j shows iptables-nft's xtables targets by name only
        assert {"xt": {"type": "target", "name": "DNAT"}} in J(sep.rules[0])
        assert sep.rules[0].text.endswith("xt target DNAT")
    svc = t.chain("KUBE-SERVICES").rules[0]
    assert {"jump": {"target": "KUBE-SVC-ABCDEFGHIJKLMNOP"}} in J(svc)
    assert {"counter": {"packets": 0, "bytes": 0}} in J(svc)


def test_iptables_nft_mark_or_in_text():
    t = table(nft.parse(read("iptables-nft-kube-services.nft")), name="nat")
    rule = t.chain("KUBE-MARK-MASQ").rules[0]
    assert J(rule)[-1] == {"mangle": {"key": {"meta": {"key": "mark"}}, "value": {"|": [{"meta": {"key": "mark"}}, 16384]}}}


def test_pasted_with_prompt_and_handles():
    text = (
        "root@k8s-node1:~# nft -a list ruleset\n"
        "table ip kube-proxy { # handle 7\n"
        '\tcomment "rules for kube-proxy"\n'
        "\tchain services { # handle 4\n"
        "\t\tip daddr . meta l4proto . th dport vmap @service-ips # handle 44\n"
        "\t}\n"
        "}\n"
    )
    res = nft.parse(text)
    assert res.warnings == []
    t = table(res)
    assert t.handle == 7
    assert t.chain("services").handle == 4
    assert t.chain("services").rules[0].handle == 44
    assert t.chain("services").rules[0].text == "ip daddr . meta l4proto . th dport vmap @service-ips"


def test_truncated_paste_keeps_what_was_read_and_warns_with_line_numbers():
    lines = read("kube-proxy-lab.nft").splitlines()
    cut = "\n".join(lines[:120]) + "\n"
    res = nft.parse(cut, source="cut.nft")
    assert res.warnings, "a truncated listing must be reported"
    assert all(w.line_no >= 1 for w in res.warnings)
    assert any("missing closing brace" in w.message for w in res.warnings)
    t = table(res)
    assert t.set("service-ips") is not None and len(t.set("service-ips").elements) == 10


def test_garbled_lines_inside_a_table_are_warned_not_fatal():
    text = read("kube-proxy-lab.nft").replace("\tmap firewall-ips {", "\tthis line is noise\n\tmap firewall-ips {", 1)
    res = nft.parse(text, source="noisy.nft")
    noise = [w for w in res.warnings if "noise" in w.line]
    assert len(noise) == 1 and noise[0].line_no > 1
    assert table(res).set("firewall-ips") is not None


@pytest.mark.parametrize("bad", ["", "   \n", b"\x00\x01\x02binary", "Chain INPUT (policy ACCEPT)\ntarget prot opt\n",
                                 '{"items": []}', "{not json"])
def test_unreadable_input_is_a_parse_error(bad):
    with pytest.raises(ParseError):
        nft.parse(bad)


def test_empty_ruleset_json_is_no_tables():
    res = nft.parse('{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}]}')
    assert res.value.tables == []


def test_tables_survive_a_snapshot_round_trip(lab_json):
    snap = Snapshot(nodes=[NodeSnapshot(name="n", nftables=lab_json.value)])
    again = Snapshot.model_validate_json(snap.model_dump_json())
    assert nft.tables_of(again.nodes[0].nftables) == nft.tables_of(lab_json.value)
    assert isinstance(NftRuleset.model_validate(lab_json.value.model_dump()).tables[0], nft.NftTable)


@pytest.mark.parametrize("text,seconds", [("3h", 10800), ("10800s", 10800), ("2h59m59s996ms", 10799.996), ("1d", 86400), ("90", 90)])
def test_durations(text, seconds):
    assert nft.parse_duration(text) == pytest.approx(seconds)


def test_fuzzed_lines_never_raise_anything_but_parse_error():
    base = read("kube-proxy-lab.nft").splitlines()
    import random

    rng = random.Random(7)
    for _ in range(200):
        lines = list(base)
        for _ in range(5):
            i = rng.randrange(len(lines))
            op = rng.choice(["drop", "dup", "cut", "brace"])
            if op == "drop":
                del lines[i]
            elif op == "dup":
                lines.insert(i, lines[i])
            elif op == "cut":
                lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
            else:
                lines[i] += rng.choice(["{", "}", '"', " : ", " . "])
        try:
            nft.parse("\n".join(lines))
        except ParseError:
            pass


@pytest.mark.parametrize("name", ["kube-proxy-lab.nft", "public-k3s-kube-proxy.nft", "iptables-nft-kube-services.nft"])
def test_fast_rule_shapes_give_what_the_general_reader_gives(name):
    res = nft.parse(read(name))
    n = 0
    for t in res.value.tables:
        for c in t.chains:
            for r in c.rules:
                assert nft.rule_to_expr(r.text) == nft.rule_to_expr_general(r.text), r.text
                n += 1
    assert n >= 6


def test_a_line_cut_by_a_pdf_wrap_is_kept_and_warned():
    lines = read("public-k3s-kube-proxy.nft").splitlines()
    i = next(k for k, line in enumerate(lines) if "dnat to 10.42.4.201:8080" in line)
    wrapped = lines[:i] + ["                meta l4proto tcp dnat to 10.42.4.201:", "8080"] + lines[i + 1 :]
    res = nft.parse("\n".join(wrapped) + "\n")
    assert [(w.line_no, w.line.strip()) for w in res.warnings] == [(i + 2, "8080")]
    chain = table(res).chain("endpoint-VGSZZXMZ-riset/hellopod-np-svc/tcp/__10.42.4.201/8080")
    assert [r.text for r in chain.rules][1:] == ["meta l4proto tcp dnat to 10.42.4.201:", "8080"]


@pytest.mark.parametrize("name", ["firewall-inet-filter.nft", "firewall-inet-filter.json", "firewall-inet-filter.a.out"])
def test_a_host_firewall_next_to_kube_proxy(name):
    res = nft.parse(read(name), source=name)
    assert res.warnings == []
    t = table(res, name="filter", family="inet")
    inp = t.chain("input")
    assert (inp.hook, inp.policy, inp.prio) == ("input", "drop", 0)
    assert [[nft.nft_json_value(k) for k in e.key] for e in t.set("allowed").elements] == [[{"prefix": {"addr": "10.0.0.0", "len": 8}}],
                                                          [{"prefix": {"addr": "192.168.1.0", "len": 24}}]]
    assert [(e.key, e.value) for e in t.set("portmap").elements] == [([80], "10.0.0.1"), ([443], "10.0.0.2")]
    assert len(t.other) == 1 and "cnt_ssh" in t.other[0]  # the named counter, kept verbatim
    assert len(inp.rules) == 8 and {"accept": None} in J(inp.rules[0])
    if name.endswith(".a.nft"):
        assert all(r.handle is not None for r in inp.rules)
    nat = table(res, name="nat")
    assert nat.chain("prerouting").rules[0].text.startswith("dnat to tcp dport map @portmap2")
    assert decode_nft_records(res) == []


def decode_nft_records(res):
    from labreport.analysis.services_nft import decode_nft

    return decode_nft(res.value)[0]


def test_what_was_written_is_not_what_nft_prints():
    written = read("kube-proxy-lab.rules.nft")
    with pytest.raises(ParseError, match="not `nft list ruleset` output"):
        nft.parse(written)  # an `nft -f` transaction (add table/chain/rule …) is not a listing
    # the same statement, as kube-proxy writes it and as nft prints it back
    assert nft.rule_to_expr("mark set mark or 0x00004000")[0] == nft.rule_to_expr("meta mark set meta mark | 0x00004000")[0]
    assert nft.priority_value("dstnat-10") == nft.priority_value("dstnat - 10") == -110
    printed = table(nft.parse(read("kube-proxy-lab.nft"))).set("affinity-BRZTK33O-default/sticky/tcp/http__10.244.1.5/80")
    assert "timeout 10800s" in written and printed.timeout == 10800  # written in seconds, printed "3h"
