"""The text reader's quick path for a chain's one-line rules (parsers/nft/text.py,
``_chain_body``): a rule line with no handle or comment, its braces closed on the line, is
read as the general path reads it. Both are compared on every listing of the fixtures and
on mutants of their rule lines (braces opened, closed, doubled, a handle, a comment, a
chain or table header, words that are no statement)."""

from __future__ import annotations

import pytest

from labreport.parsers import nft
from labreport.parsers.nft import text as nft_text

from tests.conftest import FIXTURES

NFT = FIXTURES / "parsers" / "nft"
LISTINGS = sorted(p.name for p in NFT.glob("*.nft") if ".rules" not in p.name) + ["firewall-inet-filter.a.out"]


def _both(listing: str) -> tuple[tuple[object, object], tuple[object, object]]:
    """(tables, warnings) read with the quick path and by the general path alone."""
    out = []
    for fast in (True, False):
        nft_text._FAST[0] = fast
        try:
            res = nft.parse(listing, source="t")
        finally:
            nft_text._FAST[0] = True
        out.append((res.value.model_dump(), [(w.line_no, w.line, w.message) for w in res.warnings]))
    return out[0], out[1]


@pytest.mark.parametrize("name", LISTINGS)
def test_the_quick_path_reads_every_fixture_as_the_general_path(name):
    fast, general = _both((NFT / name).read_text())
    assert fast == general
    assert fast[0]["tables"]


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
