"""The services decoder's readers of one rule (issue 14): a rule of one of the shapes
kube-proxy writes is read from its text's shape (``NftRule.read_shape``, parsers/nft/fast.py),
any other from its typed statements; both must give the same answer on every rule."""

from __future__ import annotations

import pytest

from labreport.analysis import services_nft as sn
from labreport.parsers import nft
from labreport.parsers.nft import fast
from labreport.snapshot import NftRule

from tests.conftest import FIXTURES

NFT = FIXTURES / "parsers" / "nft"
TEXT_FIXTURES = ["kube-proxy-lab.nft", "public-k3s-kube-proxy.nft", "iptables-nft-kube-services.nft",
                 "firewall-inet-filter.nft", "firewall-inet-filter.a.out"]


def _rules(name: str) -> list[NftRule]:
    res = nft.parse((NFT / name).read_text())
    return [r for t in res.value.tables for c in t.chains for r in c.rules]


@pytest.mark.parametrize("name", TEXT_FIXTURES)
def test_shape_readers_give_what_the_typed_statements_give(name):
    known = 0
    for r in _rules(name):
        assert r.typed is None
        fresh = NftRule(text=r.text)  # its statements not built yet: the shape is what is read
        got = (sn._rule_numgen(fresh), sn._rule_dnat(fresh), sn._rule_affinity_goto(fresh), sn._rule_targets(fresh),
               sn._rule_fib_saddr_local(fresh))
        want = (sn._numgen_vmap(r.expr), sn._dnat(r.expr), sn._affinity_goto(r.expr),
                [t for t in map(sn._target, r.expr) if t], sn._has_fib_saddr_local(r.expr))
        assert got == want, r.text
        known += fresh.read_shape("targets")[0]
        # the shape is the first of them all that the text is (fast_statements' order)
        brute = next((i for i, (rx, _) in enumerate(fast._SHAPES) if rx.fullmatch(r.text)), None)
        got_shape = fast.shape_of(r.text)
        assert (got_shape[0] if got_shape else None) == (None if '"' in r.text else brute), r.text
    if name.startswith(("kube-proxy", "public-k3s")):
        assert known >= 10  # the shapes are what these rules are read by


def test_a_rule_of_another_shape_is_read_from_its_statements():
    # IPv6 dnat, a quoted comment, a numgen map with a range: not the common shapes
    for text, dnat, numgen in [
        ("meta l4proto tcp dnat to [fd00:10:244:1::5]:80", "[fd00:10:244:1::5]:80", None),
        ('meta l4proto tcp dnat to 10.0.0.1:80 comment "x"', "10.0.0.1:80", None),
        ("numgen random mod 3 vmap { 0-1 : goto endpoint-a, 2 : goto endpoint-b }", None,
         (3, [(0, "endpoint-a"), (1, "endpoint-a"), (2, "endpoint-b")])),
    ]:
        r = NftRule(text=text)
        assert r.read_shape("dnat") == (False, None) and r.read_shape("numgen") == (False, None)
        assert sn._rule_dnat(r) == dnat and sn._rule_numgen(r) == numgen
        assert "expr" in r.__dict__


def test_stored_statements_are_read_not_the_text():
    # a rule from nft's JSON keeps its statements (``typed``): those are what is read
    r = NftRule(text="jump a", typed=[{"kind": "verdict", "verdict": "goto", "target": "b"}])
    assert r.read_shape("targets") == (False, None)
    assert sn._rule_targets(r) == ["b"]


def test_a_large_snapshot_stores_nft_records_without_their_empty_fields(tmp_path, monkeypatch):
    """Above COMPACT_ABOVE_BYTES of evidence, the nft records are written without their
    None fields (loaded: the same models, with only the fields the file names marked set);
    the file still starts with schema_version and loads as it did."""
    import json

    from labreport import snapshot

    text = (NFT / "kube-proxy-lab.nft").read_text()
    ruleset = nft.parse(text).value
    ev = snapshot.Evidence(id="nft", command="nft list ruleset", stdout=text, origin="import")
    snap = snapshot.Snapshot(title="t", nodes=[
        snapshot.NodeSnapshot(name="a", nftables=ruleset, evidence=[ev]), snapshot.NodeSnapshot(name="b")])
    full = snapshot.dump_bytes(snap)
    monkeypatch.setattr(snapshot, "COMPACT_ABOVE_BYTES", 0)
    raw = snapshot.dump_bytes(snap)
    assert raw.startswith(b'{"schema_version":') and len(raw) < len(full) * 0.9
    assert b'"typed": null' in full and b'"typed":null' not in raw and b'"line_no":null' not in raw
    assert json.loads(raw)["nodes"][1]["name"] == "b"
    snapshot.save(snap, tmp_path)
    again = snapshot.load(tmp_path)
    assert again == snap and again.model_dump() == snap.model_dump()
    rule = again.nodes[0].nftables.tables[0].chains[0].rules[0]
    assert "typed" not in rule.model_fields_set and "text" in rule.model_fields_set
    assert snapshot.from_dict(json.loads(full)) == snap  # every field written: the same snapshot


def test_loaded_records_share_their_fields_sets_and_setting_one_changes_no_other(tmp_path, monkeypatch):
    from labreport import snapshot

    monkeypatch.setattr(snapshot, "COMPACT_ABOVE_BYTES", -1)  # written as a large one is: None fields left out
    ruleset = nft.parse((NFT / "kube-proxy-lab.nft").read_text()).value
    snapshot.save(snapshot.Snapshot(nodes=[snapshot.NodeSnapshot(name="a", nftables=ruleset)]), tmp_path)
    again = snapshot.load(tmp_path).nodes[0].nftables
    assert again == ruleset
    rules = [r for t in again.tables for c in t.chains for r in c.rules]
    a, b = [r for r in rules if r.model_fields_set == {"text", "line_no"}][:2]
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__  # shared after loading
    a.comment = "set on a"  # a field: a gets its own set
    assert "comment" in a.model_fields_set and "comment" not in b.model_fields_set and b.comment is None
    a.note = "an unknown field"  # kept as an extra of a only
    assert a.model_extra == {"note": "an unknown field"} and b.model_extra == {}
    assert snapshot.NftRule.model_validate(a.model_dump()) == a


# --- the decoder's shortcuts (issue 14): each the same answer as the reading it replaces


def _chains(name: str):
    res = nft.parse((NFT / name).read_text())
    return [c for t in res.value.tables for c in t.chains]


def _mutant_chains():
    """Endpoint-like chains the fixtures lack: dnat first, last, twice, typed, none, IPv6, quoted."""
    from labreport.snapshot import NftChain

    texts = [
        ["meta l4proto tcp dnat to 10.0.0.1:80"],
        ["ip saddr 10.0.0.1 jump mark-for-masquerade", "meta l4proto tcp dnat to 10.0.0.1:80"],
        ["meta l4proto tcp dnat to 10.0.0.1:80", "meta l4proto tcp dnat to 10.0.0.2:81"],
        ["update @affinity-x { ip saddr }", "meta l4proto udp dnat to [fd00::1]:53"],
        ['meta l4proto tcp dnat to 10.0.0.1:80 comment "x"'],
        ["ip saddr 10.0.0.1 jump mark-for-masquerade"],
        ["meta l4proto tcp dnat to 10.0.0.1"],
        ["dnat to ip daddr map { 1.1.1.1 : 2.2.2.2 }", "meta l4proto tcp dnat to 10.0.0.3:1"],
        ["counter dnat"],
        [],
    ]
    out = [NftChain(name=f"endpoint-m{i}", rules=[NftRule(text=t) for t in ts]) for i, ts in enumerate(texts)]
    out.append(NftChain(name="endpoint-typed", rules=[
        NftRule(text="jump a", typed=[{"kind": "nat", "type": "dnat", "addr": "10.1.1.1", "port": 8}])]))
    return out


@pytest.mark.parametrize("name", TEXT_FIXTURES)
def test_chain_dnat_is_the_first_rule_dnat(name):
    for chain in [*_chains(name), *_mutant_chains()]:
        fresh = type(chain)(name=chain.name, rules=[NftRule(text=r.text, typed=r.typed) for r in chain.rules])
        want = next((a for a in map(sn._rule_dnat, chain.rules) if a), None)
        want_rule = next((r.text for r in chain.rules if sn._rule_dnat(r)), None)
        evidence: list[str] = []
        assert sn._chain_dnat(fresh, evidence) == want, chain.name
        assert evidence == ([f"chain {chain.name}: {want_rule}"] if want else []), chain.name


def _exact_as_before(st):
    """trace.nft.NSet.exact as first written: from ``elements`` (keys normalized), all plain."""
    from labreport.analysis.trace.nft import _norm

    exact = {}
    for key, value in [([_norm(k) for k in e.key], e.value) for e in st.elements]:
        if not all(isinstance(k, (str, int)) and not (isinstance(k, str) and "/" in k) for k in key):
            return None
        exact[tuple(key)] = value
    return exact


@pytest.mark.parametrize("name", TEXT_FIXTURES)
def test_set_index_is_the_elements_index(name):
    from labreport.analysis.trace.nft import NSet
    from labreport.snapshot import NftElement, NftSet

    sets = [s for t in nft.parse((NFT / name).read_text()).value.tables for s in t.sets]
    mutants = [
        NftSet(name="m1", elements=[NftElement(key=["10.0.0.1", "tcp", "80"], value="a"),
                                    NftElement(key=["10.0.0.1", "tcp", 80], value="b")]),
        NftSet(name="m2", elements=[NftElement(key=["10.0.0.0/8"], value="a")]),
        NftSet(name="m3", elements=[NftElement(key=[True, "007"]), NftElement(key=[{"kind": "range", "low": 1, "high": 5}])]),
        NftSet(name="m4", elements=[NftElement(key=["a", "b"], value="x"), NftElement(key=["c"], value="y")]),
        NftSet(name="m5", elements=[]),
    ]
    indexed = 0
    for st in [*sets, *mutants]:  # (each mutant on its own too: m1's two keys are one, m3's range is not plain)
        got = NSet(st).exact
        assert got == _exact_as_before(st), st.name
        assert (list(got.items()) if got else got) == (list(_exact_as_before(st).items()) if got else got)
        indexed += bool(got)
    assert indexed >= 2
