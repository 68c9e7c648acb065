"""Parser for ``nft list ruleset`` (the nested text people paste) and ``nft -j list ruleset``
(JSON) → :class:`labreport.snapshot.NftRuleset`.

Usage::

    from labreport.parsers import nft
    res = nft.parse(open("ruleset.txt").read(), source="ruleset.txt")
    res.value.tables[0].chains[0].rules[0].expr   # typed statements

Both forms give the same records, the snapshot's models ``NftTable`` → ``NftChain`` /
``NftSet`` → ``NftRule`` / ``NftElement``. A rule carries:

- ``text``: the rule as nft prints it (from JSON input: rendered back into nft syntax);
- ``expr``: its statements, typed (``NftMatch``, ``NftVmap``, ``NftVerdict``, ``NftNat``,
  ``NftSetUpdate``, ``NftMangle``, ``NftCounter``, ``NftReject`` …, tagged by ``kind``),
  read once here so analysis never reads rule text. The text reader understands the
  statements kube-proxy, iptables-nft and common firewalls use; a part it does not
  becomes ``NftOther`` with its words (the whole rule is always in ``text``); from JSON, a
  statement labreport does not model is kept as nft's JSON (``NftOther.raw``).
  ``nft_json(statement)`` gives a statement back in nft's JSON schema.

Sets and maps share ``NftSet`` (``kind`` "set" | "map"): ``type`` is the list of the
concatenated key types (``["ipv4_addr", "inet_proto", "inet_service"]``), ``map`` the
data type (``"verdict"``), ``timeout`` in seconds; each ``NftElement`` has ``key`` (one
item per concatenated component), ``value`` (an ``NftVerdict`` for verdict maps), and
``comment`` / ``timeout`` / ``expires`` (seconds) as nft printed them.

What nft prints differs from what was written (``mark set mark or 0x4000`` comes back as
``meta mark set meta mark | 0x00004000``, ``priority dstnat-10`` as ``dstnat - 10``, set
timeouts as ``3h``, live affinity elements with ``expires``): this parser reads what nft
prints. Lines it cannot place become warnings with their line numbers; ParseError only for
input that is empty, binary, or not an nft ruleset at all.

The package's modules: :mod:`.text` (the text reader), :mod:`.json` (the JSON reader),
:mod:`.expr` (one printed rule → nft's JSON statements), :mod:`.typed` / :mod:`.to_json` (nft's JSON ↔
the snapshot's typed statements), :mod:`.render_text` (JSON statements → nft's text),
:mod:`.build` (the records in the typed shape), :mod:`.fast` (the rule shapes kube-proxy writes
by the ten thousand, read straight from their text: their statements, and what the services
decoder reads of them through ``NftRule.read_shape``), :mod:`.common` (durations, priorities,
tokens).
"""

from __future__ import annotations

import gc
import re
from json import loads as _json_loads
from typing import Optional, Union

from labreport.errors import ParseError
from labreport.parsers.base import ParseResult, ParserInfo, check_text, strip_prompt
from labreport.parsers.nft.common import (
    FAMILIES, PRIORITY_NAMES, _TABLE_RE, _strip_handle, parse_duration, priority_value, tokenize,
)
from labreport.parsers.nft.expr import STATEMENT_STARTS, rule_to_expr, rule_to_expr_general
from labreport.parsers.nft.json import parse_json
from labreport.parsers.nft.render_text import expr_to_text
from labreport.parsers.nft.text import TextParser
from labreport.parsers.nft.to_json import nft_json, nft_json_value
from labreport.parsers.nft.typed import typed_statements, typed_value
from labreport.snapshot import NftChain, NftElement, NftRule, NftRuleset, NftSet, NftTable


def _detect(text: str) -> float:
    head = text.lstrip()[:2000]
    if head.startswith("{") and '"nftables"' in head:
        return 0.95
    for line in head.splitlines()[:15]:
        s, _ = strip_prompt(line)
        s = s.strip()
        if _TABLE_RE.match(_strip_handle(s)[0]):
            return 0.9
        if s.startswith("nft ") and "list" in s:
            return 0.6
    return 0.0


INFO = ParserInfo(
    name="nft",
    commands=("nft list ruleset", "nft -a list ruleset", "nft -j list ruleset"),
    description="nftables ruleset (text or JSON): tables, chains with hook/priority/policy, rules as "
    "statements, sets and maps with their elements",
    detect=_detect,
    target="nftables",
)


def parse(text: Union[str, bytes], *, source: str = "<input>") -> ParseResult[NftRuleset]:
    # A big ruleset is millions of small dicts and lists that all stay alive: with the
    # cyclic GC on, its repeated full passes over them cost more than the parsing itself.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse(text, source=source)
    finally:
        if enabled:
            gc.enable()


def _parse(text: Union[str, bytes], *, source: str) -> ParseResult[NftRuleset]:
    text = check_text(text, source=source)
    res: ParseResult[NftRuleset] = ParseResult(value=NftRuleset(), parser=INFO.name, source=source)
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = _json_loads(stripped)
        except ValueError as exc:
            raise ParseError(f"looks like JSON but is not valid JSON: {exc}", source=source) from None
        tables = parse_json(data, res)
    else:
        if _detect(text) == 0.0 and not re.search(r"^\s*table\s+\S+\s+\S+\s*\{", text, re.M):
            raise ParseError("not `nft list ruleset` output: no `table <family> <name> {` line", source=source)
        tables = TextParser(text, res).run()
    res.value.tables = [NftTable.model_validate(t) for t in tables]
    if not stripped.startswith("{"):  # every string of the tables is a piece of it (labreport.redact)
        res.value.set_source_text(text)
    return res


def tables_of(ruleset: Optional[NftRuleset]) -> list[NftTable]:
    """The tables of a ruleset (none for no ruleset)."""
    return list(ruleset.tables) if ruleset is not None else []


__all__ = [
    "FAMILIES", "INFO", "PRIORITY_NAMES", "STATEMENT_STARTS", "NftChain", "NftElement", "NftRule", "NftRuleset",
    "NftSet", "NftTable", "expr_to_text", "nft_json", "nft_json_value", "parse", "parse_duration", "priority_value",
    "rule_to_expr", "rule_to_expr_general", "tables_of", "tokenize", "typed_statements", "typed_value",
]
