"""The typed nftables and IPVS snapshot models (issue 10 item 2): rules stored with their
statements, old snapshots converted on load, the schema describing all of it."""

from __future__ import annotations

import json
import re

import pytest

from labreport import snapshot
from labreport.parsers import nft
from labreport.snapshot import NftMatch, NftNumgen, NftVerdict, NftVmap, Snapshot

from tests.conftest import FIXTURES, ROOT

NFT = FIXTURES / "parsers" / "nft"
TEXT_FIXTURES = ["kube-proxy-lab.nft", "public-k3s-kube-proxy.nft", "iptables-nft-kube-services.nft",
                 "firewall-inet-filter.nft", "firewall-inet-filter.a.out"]


def test_schema_describes_nft_and_ipvs():
    schema = snapshot.json_schema()
    defs = schema["$defs"]
    for name in ("NftRuleset", "NftTable", "NftChain", "NftRule", "NftSet", "NftElement", "NftMatch", "NftVmap",
                 "NftVerdict", "NftNat", "NftSetUpdate", "NftMangle", "NftPayload", "NftNumgen", "NftConcat",
                 "Ipvs", "IpvsVirtualServer", "IpvsRealServer"):
        assert name in defs, name
    assert defs["NftRuleset"]["properties"]["tables"]["items"] == {"$ref": "#/$defs/NftTable"}
    assert defs["Ipvs"]["properties"]["virtual_servers"]["items"] == {"$ref": "#/$defs/IpvsVirtualServer"}
    # statements stored (nft's JSON input); a text rule's are read from its text when used
    rule_expr = json.dumps(defs["NftRule"]["properties"]["typed"])
    assert "NftMatch" in rule_expr and "NftVmap" in rule_expr and "NftNat" in rule_expr
    assert "CollectorStatus" in defs and "not_applicable" in defs["CollectorStatus"]["properties"]


@pytest.mark.parametrize("name", TEXT_FIXTURES)
def test_typed_statements_are_what_the_text_says(name):
    """Every rule's stored statements, given back in nft's JSON schema, are exactly what the
    statement reader reads from its text; and they survive a snapshot round trip."""
    res = nft.parse((NFT / name).read_text())
    n = 0
    for t in res.value.tables:
        for c in t.chains:
            for r in c.rules:
                assert [nft.nft_json(s) for s in r.expr] == nft.rule_to_expr(r.text)[0], r.text
                n += 1
    assert n >= 6
    snap = Snapshot(nodes=[snapshot.NodeSnapshot(name="n", nftables=res.value)])
    again = snapshot.from_dict(json.loads(snapshot.dumps(snap)))
    assert again.nodes[0].nftables == res.value


def test_kube_proxy_rules_are_typed_models():
    t = next(t for t in nft.parse((NFT / "kube-proxy-lab.nft").read_text()).value.tables if t.name == "kube-proxy")
    svc = t.chain("service-H6U4RGLG-default/sticky/tcp/http")
    vmap = next(s for r in svc.rules for s in r.expr if isinstance(s, NftVmap))
    assert isinstance(vmap.key, NftNumgen) and vmap.key.mod == 2
    assert [(e.key, e.value) for e in vmap.entries] == [
        (0, NftVerdict(verdict="goto", target="endpoint-BRZTK33O-default/sticky/tcp/http__10.244.1.5/80")),
        (1, NftVerdict(verdict="goto", target="endpoint-ULO3TGZS-default/sticky/tcp/http__10.244.2.7/80")),
    ]
    aff = next(s for r in svc.rules for s in r.expr if isinstance(s, NftMatch) and isinstance(s.right, str)
               and s.right.startswith("@affinity-"))
    assert aff.left.kind == "payload" and (aff.left.protocol, aff.left.field) == ("ip", "saddr")


def _as_version_1(tables: list[snapshot.NftTable]) -> list[dict]:
    """The tables as version 1 stored them: rules as text only, element keys and values in
    nft's JSON schema."""
    out = []
    for t in tables:
        d = t.model_dump(exclude_none=True)
        for c in d["chains"]:
            for r in c["rules"]:
                r.pop("typed", None)
                r.pop("comment", None)
        for st, st_model in zip(d["sets"], t.sets):
            st["elements"] = [
                {**({"value": nft.nft_json_value(e.value)} if e.value is not None else {}),
                 "key": [nft.nft_json_value(k) for k in e.key],
                 **({"text": e.text} if e.text else {}),
                 **({"comment": e.comment} if e.comment else {}),
                 **({"expires": e.expires} if e.expires is not None else {})}
                for e in st_model.elements
            ]
        out.append(d)
    return out


@pytest.mark.parametrize("name", ["kube-proxy-lab.nft", "firewall-inet-filter.nft"])
def test_a_version_1_snapshot_loads_into_the_typed_models(name):
    parsed = nft.parse((NFT / name).read_text()).value
    v1 = {"schema_version": 1, "nodes": [{"name": "n", "nftables": {"tables": _as_version_1(parsed.tables)}}]}
    assert "kind" not in json.dumps(v1["nodes"][0]["nftables"]["tables"][0]["chains"])
    snap = snapshot.from_dict(v1)
    assert snap.schema_version == snapshot.SCHEMA_VERSION
    assert snap.nodes[0].nftables.tables == parsed.tables


@pytest.mark.parametrize("name", ["kube-proxy-lab.nft", "firewall-inet-filter.nft", "kube-proxy-lab.json"])
def test_a_version_2_snapshot_keeps_its_stored_statements(name):
    """Version 2 stored every rule's typed statements (``expr``): they load as the rule's
    statements (``typed``), not read again from its text; written again, as the current version."""
    parsed = nft.parse((NFT / name).read_text()).value
    tables = [t.model_dump(mode="json") for t in parsed.tables]
    for t in tables:
        for c in t["chains"]:
            for r in c["rules"]:
                typed = r.pop("typed")
                r["expr"] = typed if typed is not None else [
                    s.model_dump(mode="json") for s in snapshot._statements_of_text(r["text"])]
    v2 = {"schema_version": 2, "nodes": [{"name": "n", "nftables": {"tables": tables}}]}
    snap = snapshot.from_dict(json.loads(json.dumps(v2)))
    assert snap.schema_version == snapshot.SCHEMA_VERSION >= 3
    got = [r for t in snap.nodes[0].nftables.tables for c in t.chains for r in c.rules]
    want = [r for t in parsed.tables for c in t.chains for r in c.rules]
    assert len(got) == len(want) >= 6
    for g, w in zip(got, want):
        assert g.typed is not None and g.expr == w.expr and g.text == w.text
    again = json.loads(snapshot.dumps(snap))
    assert again["schema_version"] == snapshot.SCHEMA_VERSION
    assert not [r for t in again["nodes"][0]["nftables"]["tables"] for c in t["chains"] for r in c["rules"]
                if "expr" in r]


def test_a_text_rule_stores_its_text_and_reads_its_statements_when_used():
    parsed = nft.parse((NFT / "kube-proxy-lab.nft").read_text()).value
    rule = next(r for t in parsed.tables for c in t.chains for r in c.rules if "dnat" in r.text)
    stored = json.loads(rule.model_dump_json())
    assert "expr" not in stored and stored["typed"] is None
    assert "expr" not in rule.__dict__  # not read yet
    assert any(isinstance(s, snapshot.NftNat) for s in rule.expr)
    assert rule.expr is rule.expr  # read once


def test_the_live_sample_of_version_1_still_loads_and_decodes():
    snap = snapshot.load(ROOT / "samples" / "live-containerd-docker-node")
    nat = next(t for t in snap.nodes[0].nftables.tables if t.name == "nat")
    assert all(r.expr for c in nat.chains for r in c.rules)
    jumps = {s.target for c in nat.chains for r in c.rules for s in r.expr if isinstance(s, NftVerdict)}
    assert any(j and j.startswith("KUBE-SVC-") for j in jumps)


def test_no_writes_through_pydantic_extra_and_no_rule_text_reading_in_analysis():
    offenders = []
    for path in [*(ROOT / "labreport").rglob("*.py"), *(ROOT / "collectors").rglob("*.py")]:
        text = path.read_text()
        if re.search(r"__pydantic_extra__\[", text) or re.search(r"model_extra\[[^\]]+\]\s*=", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
    for mod in ("services_nft", "proxy_mode"):
        src = (ROOT / "labreport" / "analysis" / f"{mod}.py").read_text()
        assert "parsers.nft" not in src and "rule_expr" not in src and "rule_to_expr" not in src


@pytest.mark.parametrize("name", TEXT_FIXTURES)
def test_fast_typed_shapes_are_what_the_general_reader_gives(name):
    from labreport.parsers.nft.fast import fast_statements

    n = 0
    for line in (NFT / name).read_text().splitlines():
        text = line.strip()
        fast = fast_statements(text)
        if fast is None:
            continue
        assert fast == nft.typed_statements(nft.rule_to_expr_general(text)[0]), text
        n += 1
    if name.startswith(("kube-proxy", "public-k3s")):
        assert n >= 10
