"""The text reader's quick path for a chain's one-line rules (parsers/nft/text.py,
``_chain_body``): a rule line with no handle or comment, its braces closed on the line, is
read as the general path reads it. Both are compared on every listing of the fixtures and
on mutants of their rule lines (braces opened, closed, doubled, a handle, a comment, a
chain or table header, words that are no statement). The quick path for a set's or map's
elements (plain keys, a verdict: built as models by trusted factories) against the
tokenizing reader, on every element of the fixtures and mutants of them; both compared as
models: the same classes, ``__dict__`` order and fields sets, the same JSON."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from labreport.parsers import nft
from labreport.parsers.nft import text as nft_text

from tests.conftest import FIXTURES

NFT = FIXTURES / "parsers" / "nft"
LISTINGS = sorted(p.name for p in NFT.glob("*.nft") if ".rules" not in p.name) + ["firewall-inet-filter.a.out"]
KUBE_PROXY = sorted(p for p in FIXTURES.glob("kube-proxy-tests/*.nft") if ".transaction." not in p.name)  # listings
PATHS = [NFT / name for name in LISTINGS] + KUBE_PROXY


def _shape(v: object) -> object:
    """A value as a tree of what makes two models the same: class, ``__dict__`` (in order),
    fields set and extras, down to the scalars and their types."""
    if isinstance(v, BaseModel):
        return (type(v).__name__, [(k, _shape(x)) for k, x in v.__dict__.items()],
                sorted(v.__pydantic_fields_set__), v.__pydantic_extra__)
    if isinstance(v, list):
        return [_shape(x) for x in v]
    return (type(v).__name__, v)


def _both(listing: str) -> tuple[tuple[object, object, object], tuple[object, object, object]]:
    """(tables, their JSON, warnings) read with the quick paths and by the general path alone."""
    out = []
    for fast in (True, False):
        nft_text._FAST[0] = fast
        try:
            res = nft.parse(listing, source="t")
        finally:
            nft_text._FAST[0] = True
        out.append((_shape(res.value.tables), res.value.model_dump_json(),
                    [(w.line_no, w.line, w.message) for w in res.warnings]))
    return out[0], out[1]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_the_quick_path_reads_every_fixture_as_the_general_path(path):
    fast, general = _both(path.read_text())
    assert fast == general
    assert fast[0]


def test_the_quick_element_path_is_taken_on_the_fixtures():
    """The comparison above covers models built both ways (not two general readings)."""
    res = nft.parse((NFT / "kube-proxy-lab.nft").read_text(), source="t")
    elements = [e for t in res.value.tables for st in t.sets for e in st.elements]
    assert any(e.value is not None for e in elements) and any(e.value is None for e in elements)
    assert all(e.model_fields_set <= {"key", "value", "text", "comment", "timeout", "expires"} for e in elements)


_MUTANTS = [
    lambda s: s,
    lambda s: s + " {",
    lambda s: "{ " + s,
    lambda s: s + " }",
    lambda s: s + " { a }",
    lambda s: s + " { a } {",
    lambda s: s + " } {",
    lambda s: s + " {{ a }}",
    lambda s: s + " { a }}",
    lambda s: s + " # handle 7",
    lambda s: s + ' comment "x"',
    lambda s: "counter } " + s + " {",
    lambda s: "chain }x {",
    lambda s: "counter }x {",  # braces closed, yet a block's header (a statement's word first)
    lambda s: "set }" + s.replace(" ", "") + " {",
    lambda s: "ct helper }x {",
    lambda s: "table ip x {",
    lambda s: "policy accept;",
    lambda s: "policy",
    lambda s: "policy " + s,
    lambda s: "type " + s,
    lambda s: "type",
    lambda s: "type filter hook input priority 0; policy accept;",
    lambda s: "xyz " + s,
    lambda s: "@x { a }",
    lambda s: "}",
    lambda s: s.replace(" ", "\t", 1),
]


def _rule_lines() -> list[str]:
    seen: dict[str, None] = {}
    for name in LISTINGS:
        for raw in (NFT / name).read_text().splitlines():
            s = raw.strip()
            if s and not s.startswith(("table ", "chain ", "set ", "map ", "}", "type ", "policy ", "elements", "flags")):
                seen.setdefault(s, None)
    return list(seen)


def test_mutants_of_the_rule_lines_are_read_as_the_general_path_reads_them():
    lines = _rule_lines()
    assert any("{" in s and "}" in s for s in lines)  # the fixtures hold one-line maps and sets
    for mutate in _MUTANTS:
        body = "\n".join(f"\t\t{mutate(s)}" for s in lines)
        listing = f"table ip t {{\n\tchain c {{\n{body}\n\t}}\n\tchain d {{\n\t\tjump c\n\t}}\n}}\n"
        fast, general = _both(listing)
        assert fast == general, mutate("ip saddr 1.2.3.4 accept")


def _element_texts() -> list[str]:
    seen: dict[str, None] = {}
    for path in PATHS:
        res = nft.parse(path.read_text(), source="t")
        for t in res.value.tables:
            for st in t.sets:
                for e in st.elements:
                    if e.text:
                        seen.setdefault(e.text.split(" : ")[0], None)
    return list(seen)


_ELEMENT_MUTANTS = [
    lambda s: s,
    lambda s: s + " : goto c",
    lambda s: s + " : jump c",
    lambda s: s + " : accept",
    lambda s: s + " : 10.0.0.1",
    lambda s: s + " : goto",
    lambda s: s + " . 0x1f",
    lambda s: s + " . 0xzz",
    lambda s: s + " . 10.0.0.0/8",
    lambda s: s + " . 1-5",
    lambda s: s + " . a-b",
    lambda s: s + " . x/y",
    lambda s: s + " . 007",
    lambda s: s + " . \u0661\u0662",  # digits str.isdigit() knows, int() reads
    lambda s: s + ' . "q"',
    lambda s: s + ' comment "x"',
    lambda s: s + " timeout 1s",
    lambda s: s + " expires 2h59m58s992ms",
    lambda s: s + " counter packets 1 bytes 2",
    lambda s: "0x10 . " + s,
    lambda s: s.replace(" . ", "."),
    lambda s: s.replace(" . ", " .  "),
    lambda s: s + ":goto c",
]


def test_mutants_of_the_elements_are_read_as_the_general_path_reads_them():
    texts = _element_texts()
    assert any("." in t for t in texts) and any(t[0].isdigit() for t in texts)
    for mutate in _ELEMENT_MUTANTS:
        elements = ", ".join(mutate(t) for t in texts)
        listing = (f"table ip t {{\n\tset s {{\n\t\ttype ipv4_addr\n\t\telements = {{ {elements} }}\n\t}}\n"
                   f"\tmap m {{\n\t\ttype ipv4_addr : verdict\n\t\telements = {{ {elements} }}\n\t}}\n"
                   f"\tchain c {{\n\t\taccept\n\t}}\n}}\n")
        fast, general = _both(listing)
        assert fast == general, mutate("10.0.0.1 . tcp . 80")
        for one in (mutate(t) for t in texts):  # each alone: a bad one does not hide another's difference
            listing = f"table ip t {{\n\tmap m {{\n\t\ttype ipv4_addr : verdict\n\t\telements = {{ {one} }}\n\t}}\n}}\n"
            fast, general = _both(listing)
            assert fast == general, one
