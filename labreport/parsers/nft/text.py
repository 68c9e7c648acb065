"""The text reader: ``nft list ruleset`` (and ``nft -a``) as printed or pasted → tables in
the typed shape (:mod:`.build`). Long set literals may wrap; a line it cannot place
becomes a warning with its number (the listing is kept whole as evidence)."""

from __future__ import annotations

import re
from typing import Any, Optional

from labreport.parsers.base import ParseResult, strip_prompt
from labreport.parsers.nft.build import new_element, new_rule, new_set, new_table
from labreport.parsers.nft.common import (
    FAMILIES, _BLOCK_RE, _TABLE_RE, _scalar, _strip_handle, _unquote, parse_duration, priority_value, tokenize,
)
from labreport.parsers.nft.expr import STATEMENT_STARTS, _verdict
from labreport.parsers.nft.typed import typed_value
from labreport.perf import trusted_factory
from labreport.snapshot import NftChain, NftElement, NftRuleset, NftTable, NftVerdict

_FAST_ELEM_RE = re.compile(r"^([^\s:{}\"]+(?: \. [^\s:{}\"]+)*)(?: : (goto|jump) (\S+))?$")


class _Makers:
    """The models the quick paths build by trusted factories (``labreport.perf``), their
    values of the fields' types: each the model pydantic validates from the general path's
    record (the same ``__dict__`` in field order, the same fields set). Made on first use."""

    def __init__(self) -> None:
        element = ("key", "value", "comment", "timeout", "expires", "text")
        self.element = trusted_factory(NftElement, element, given=("key", "text"))
        self.map_element = trusted_factory(NftElement, element, given=("key", "value", "text"))
        self.verdict = trusted_factory(NftVerdict, ("kind", "verdict", "target"))


_MAKERS: list[_Makers] = []


def _makers() -> _Makers:
    if not _MAKERS:
        _MAKERS.append(_Makers())
    return _MAKERS[0]


def _element_record(key: list[Any], m: re.Match[str], text: str) -> dict[str, Any]:
    """new_element's record for an element of the quick shape whose key holds a typed value."""
    d: dict[str, Any] = {"key": [k if isinstance(k, (int, str)) else typed_value(k) for k in key]}
    if m.group(2):
        d["value"] = {"kind": "verdict", "verdict": m.group(2), "target": m.group(3)}  # typed_value's
    d["text"] = text
    return d


def _parse_element(text: str, is_map: bool) -> Any:
    """One element of a set's or map's ``elements = { … }``: an ``NftElement`` (the quick
    path: a key of plain words, a verdict for a map), else new_element's record."""
    text = text.strip()
    m = _FAST_ELEM_RE.match(text) if _FAST[0] else None
    if m and (is_map == bool(m.group(2))):
        # ~21,000 elements in a 10,000-Service table
        key_text = m.group(1)
        words = key_text.split(" . ")
        if "/" in key_text or "-" in key_text or "0x" in key_text:
            key = [int(t) if t.isdigit() else _scalar(t) for t in words]
            if not all(isinstance(k, (int, str)) for k in key):  # a prefix or a range: new_element's record
                return _element_record(key, m, text)
        else:  # no word _scalar reads as more than itself
            key = [int(t) if t.isdigit() else t for t in words]
        make = _makers()
        if m.group(2):
            return make.map_element(key, make.verdict("verdict", m.group(2), m.group(3)), text)
        return make.element(key, text)
    toks = tokenize(text)
    key_toks: list[str] = []
    comment: Optional[str] = None
    durations: dict[str, Optional[float]] = {}
    i, n = 0, len(toks)
    in_value = False
    value_toks: list[str] = []
    while i < n:
        t = toks[i]
        if in_value:
            value_toks.append(t)
            i += 1
            continue
        if t == ":" and is_map:
            in_value = True
            i += 1
            continue
        if t == "comment" and i + 1 < n:
            comment = _unquote(toks[i + 1])
            i += 2
            continue
        if t in ("timeout", "expires") and i + 1 < n:
            durations[t] = parse_duration(toks[i + 1])
            i += 2
            continue
        if t == "counter":
            i += 1
            while i + 1 < n and toks[i] in ("packets", "bytes"):
                i += 2
            continue
        if t != ".":
            key_toks.append(t)
        i += 1
    # nft prints spaces around a map's colon, so an IPv6 key never swallows it
    data: Any = None
    if value_toks:
        verdict, _ = _verdict(value_toks, 0)
        data = verdict if verdict is not None else (
            _scalar(value_toks[0]) if len(value_toks) == 1 else " ".join(value_toks)
        )
    return new_element([_scalar(t) for t in key_toks], data, text, comment,
                       durations.get("timeout"), durations.get("expires"))


# ``_FAST[0] = False`` reads every rule line of a chain by the general path of
# ``_chain_body`` (tests/test_nft_text_fast.py compares the two on every fixture and mutants).
_FAST = [True]

# Chains are validated into their models this many at a time as the table is read: the
# models of a 10,000-Service kube-proxy table (~41,000 chains, ~85,000 rules) are not all
# built while the dicts they come from are all alive too (~50 MB less at the peak).
_CHAIN_BATCH = 2000

# A quick rule line's first word: a statement's, not ``policy`` (``policy accept;`` is the
# chain's; ``type`` is no statement's first word: a chain header).
_QUICK_STARTS = STATEMENT_STARTS - {"policy"}


def _typed_chains(chains: list[dict[str, Any]]) -> list[NftChain]:
    # through the table's validator, which the table is validated by anyway (a validator of
    # its own for list[NftChain] is one more schema to build, ~10 ms)
    return NftTable.model_validate({"family": "", "name": "", "chains": chains}).chains


def _type_batch(chains: list[Any], typed: int) -> int:
    """``chains[typed:]`` validated into models once _CHAIN_BATCH of them are dicts; the new ``typed``."""
    if len(chains) - typed >= _CHAIN_BATCH:
        chains[typed:] = _typed_chains(chains[typed:])
        return len(chains)
    return typed


class TextParser:
    def __init__(self, text: str, result: ParseResult[NftRuleset]):
        self.lines = text.split("\n")
        self.res = result
        self.tables: list[dict[str, Any]] = []

    def warn(self, line_no: int, line: str, msg: str) -> None:
        self.res.warn(line_no, line, msg)

    def run(self) -> list[dict[str, Any]]:
        i = 0
        n = len(self.lines)
        seen_table = False
        while i < n:
            raw = self.lines[i]
            line, _ = strip_prompt(raw)
            s = line.strip()
            if not s or s.startswith("#"):
                i += 1
                continue
            body, handle = _strip_handle(s)
            m = _TABLE_RE.match(body)
            if m:
                seen_table = True
                family, name = m.group(1), _unquote(m.group(2))
                if family not in FAMILIES:
                    self.warn(i + 1, raw, f"unknown table family {family!r}")
                table = new_table(family, name, handle=handle, line_no=i + 1)
                i = self._table_body(table, i + 1)
                self.tables.append(table)
                continue
            if re.match(r"^(nft\s|sudo\s)", s):
                i += 1  # the command line itself, pasted with the output
                continue
            self.warn(i + 1, raw, "outside any table: not part of an nft ruleset listing" if seen_table or i < 5 else "outside any table")
            i += 1
        return self.tables

    def _table_body(self, table: dict[str, Any], i: int) -> int:
        lines = self.lines
        n = len(lines)
        label = f"{table['family']} {table['name']}"
        chains = table["chains"]
        typed = 0  # chains[:typed] are models (NftTable validation passes them through as they are)
        while i < n:
            raw = lines[i]
            s = raw.strip()
            if not s or s.startswith("#"):
                i += 1
                continue
            if s.startswith("chain ") and s.endswith(" {") and "#" not in s and '"' not in s:
                # `chain NAME {`, tens of thousands of times: what _BLOCK_RE reads of it
                name = s[6:-2]
                if name.split() == [name]:
                    i = self._new_chain(chains, name, None, i)
                    if len(chains) - typed >= _CHAIN_BATCH:
                        typed = _type_batch(chains, typed)
                    continue
            body, handle = _strip_handle(s)
            if body == "}":
                return i + 1
            m = _BLOCK_RE.match(body) if body.endswith("{") else None
            if m:
                kind, name = m.group(1), _unquote(m.group(2))
                if kind == "chain":
                    i = self._new_chain(chains, name, handle, i)
                    typed = _type_batch(chains, typed)
                elif kind in ("set", "map"):
                    st = new_set(name, kind, handle=handle, line_no=i + 1)
                    i = self._set_body(st, i + 1)
                    table["sets"].append(st)
                else:
                    start = i
                    i = self._skip_block(i + 1)
                    table.setdefault("other", []).append("\n".join(x.strip() for x in self.lines[start:i]))
                continue
            if body.startswith("comment "):
                table["comment"] = _unquote(body[len("comment ") :].strip())
                i += 1
                continue
            if body.startswith("flags "):
                table["flags"] = [f.strip() for f in body[len("flags ") :].split(",") if f.strip()]
                i += 1
                continue
            if _TABLE_RE.match(body):
                self.warn(i + 1, raw, f"table {label} is not closed before the next table")
                return i
            self.warn(i + 1, raw, f"not understood inside table {label}")
            i += 1
        self.warn(n, self.lines[-1] if self.lines else "", f"table {label}: missing closing brace (truncated input?)")
        return n

    def _new_chain(self, chains: list[Any], name: str, handle: Optional[int], i: int) -> int:
        """Read the chain whose header is line ``i`` into ``chains``; the line after it."""
        chain: dict[str, Any] = {"name": name, "rules": [], "line_no": i + 1}  # new_chain's record
        if handle is not None:
            chain["handle"] = handle
        i = self._chain_body(chain, i + 1)
        chains.append(chain)
        return i

    def _skip_block(self, i: int) -> int:
        depth = 1
        n = len(self.lines)
        while i < n:
            s = self.lines[i]
            depth += s.count("{") - s.count("}")
            i += 1
            if depth <= 0:
                return i
        return n

    def _chain_body(self, chain: dict[str, Any], i: int) -> int:
        n = len(self.lines)
        lines = self.lines
        rules = chain["rules"]
        fast = _FAST[0]
        while i < n:
            raw = lines[i]
            s = raw.strip()
            if not s:
                i += 1
                continue
            if s == "}":  # the chain's end, as the general path below reads it
                return i + 1
            # most lines of a large table: a one-line rule with no handle or comment, its
            # braces (kube-proxy's numgen maps, affinity updates) closed on the line, which
            # the general path below reads as exactly this
            if (fast and "#" not in s and "comment" not in s
                    and ("{" not in s or (s[-1] != "{" and s.count("{") == s.count("}")))):
                first = s.split(" ", 1)[0]
                if first in _QUICK_STARTS or first[0] == "@":  # so not `type …` nor `policy …`
                    rules.append({"text": s, "line_no": i + 1})
                    i += 1
                    continue
            if s[0] == "#" and not s.startswith("# handle"):
                i += 1
                continue
            body, handle = _strip_handle(s)
            if body == "}":
                return i + 1
            if body.endswith("{") and (_BLOCK_RE.match(body) or _TABLE_RE.match(body)):
                self.warn(i + 1, raw, f"chain {chain['name']}: missing closing brace")
                return i
            if body.startswith("type ") and " hook " in body:
                self._chain_header(chain, body, i, raw)
                i += 1
                continue
            if body.startswith("comment ") and not rules and re.fullmatch(r'comment\s+"[^"]*"', body):
                chain["comment"] = _unquote(body[len("comment ") :].strip())
                i += 1
                continue
            if body.startswith("policy ") and body.rstrip(";").count(" ") == 1:
                chain["policy"] = body.rstrip(";").split()[1]
                i += 1
                continue
            # a rule; long set literals may wrap over several lines (braces open)
            text = body
            start = i
            if "{" in text:
                depth = text.count("{") - text.count("}")
                parts = [text]
                while depth > 0 and i + 1 < n:
                    i += 1
                    nxt, h2 = _strip_handle(lines[i].strip())
                    parts.append(nxt)
                    depth += nxt.count("{") - nxt.count("}")
                    handle = h2 if h2 is not None else handle
                text = " ".join(parts)
            first = text.split(" ", 1)[0]
            if first not in STATEMENT_STARTS and not first.startswith("@"):
                self.warn(start + 1, raw, f"chain {chain['name']}: not an nft statement (a wrapped or cut line?); kept as a rule")
            rules.append(new_rule(text, None, None, handle, start + 1))
            i += 1
        self.warn(n, "", f"chain {chain['name']}: missing closing brace (truncated input?)")
        return n

    def _chain_header(self, chain: dict[str, Any], body: str, i: int, raw: str) -> None:
        for stmt in body.split(";"):
            stmt = stmt.strip()
            if not stmt:
                continue
            if stmt.startswith("type "):
                m = re.match(r"type\s+(\S+)\s+hook\s+(\S+)(?:\s+device\s+(\"[^\"]*\"|\S+))?(?:\s+priority\s+(.+))?$", stmt)
                if not m:
                    self.warn(i + 1, raw, "chain header not understood")
                    continue
                chain["type"], chain["hook"] = m.group(1), m.group(2)
                chain["device"] = _unquote(m.group(3)) if m.group(3) else None
                if m.group(4):
                    chain["priority"] = m.group(4).strip()
                    chain["prio"] = priority_value(chain["priority"])
            elif stmt.startswith("policy "):
                chain["policy"] = stmt.split()[1]
            elif stmt.startswith("comment "):
                chain["comment"] = _unquote(stmt[len("comment ") :].strip())
            else:
                self.warn(i + 1, raw, f"chain header part not understood: {stmt!r}")

    def _set_body(self, st: dict[str, Any], i: int) -> int:
        n = len(self.lines)
        label = f"{st['kind']} {st['name']}"
        while i < n:
            raw = self.lines[i]
            s = raw.strip()
            if not s or s.startswith("#"):
                i += 1
                continue
            body, _ = _strip_handle(s)
            if body == "}":
                return i + 1
            if body.startswith("elements = {") or body.startswith("elements={"):
                start = i
                first = body[body.index("{") :]
                parts = [first]
                depth = first.count("{") - first.count("}")
                while depth > 0 and i + 1 < n:
                    i += 1
                    nxt = self.lines[i].strip()
                    parts.append(nxt)
                    depth += nxt.count("{") - nxt.count("}")
                if depth > 0:
                    self.warn(start + 1, raw, f"{label}: elements not closed (truncated input?)")
                text = " ".join(parts)
                inner = text.strip()[1:]
                inner = inner[: inner.rfind("}")] if "}" in inner else inner
                is_map = st["kind"] == "map"
                elements = st["elements"]
                for part in _split_elements(inner):
                    try:
                        elements.append(_parse_element(part, is_map))
                    except Exception:
                        self.warn(start + 1, part, f"{label}: element not understood; skipped")
                i += 1
                continue
            for stmt in body.split(";"):
                stmt = stmt.strip()
                if not stmt:
                    continue
                key, _, val = stmt.partition(" ")
                val = val.strip()
                if key in ("type", "typeof"):
                    if " : " in val:
                        k, d = val.split(" : ", 1)
                        st["type"] = [x.strip() for x in k.split(" . ")]
                        st["map"] = d.strip()
                    else:
                        st["type"] = [x.strip() for x in val.split(" . ")]
                elif key == "flags":
                    st["flags"] = [f.strip() for f in val.split(",") if f.strip()]
                elif key == "timeout":
                    st["timeout"] = parse_duration(val)
                elif key == "size":
                    st["size"] = int(val) if val.isdigit() else None
                elif key == "comment":
                    st["comment"] = _unquote(val)
                elif key in ("gc-interval", "policy", "counter", "auto-merge"):
                    pass
                else:
                    self.warn(i + 1, raw, f"{label}: not understood")
            i += 1
        self.warn(n, "", f"{label}: missing closing brace (truncated input?)")
        return n


def _split_elements(inner: str) -> list[str]:
    if '"' not in inner and "{" not in inner:
        return [x.strip() for x in inner.split(",") if x.strip()]
    out: list[str] = []
    cur: list[str] = []
    depth, quoted = 0, False
    for ch in inner:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "{":
            depth += 1
        elif not quoted and ch == "}":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return [x for x in out if x]


