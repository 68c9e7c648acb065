"""The JSON reader: ``nft -j list ruleset`` → tables in the typed shape (:mod:`.build`);
each rule's text is rendered back into nft syntax (:mod:`.render_text`) so it reads as
``nft list ruleset`` prints it."""

from __future__ import annotations

import json
from typing import Any

from labreport.errors import ParseError
from labreport.parsers.base import ParseResult
from labreport.parsers.nft.build import new_chain, new_element, new_rule, new_set, new_table
from labreport.parsers.nft.common import priority_value
from labreport.parsers.nft.render_text import _val_text, expr_to_text
from labreport.snapshot import NftRuleset


def _json_element(e: Any, is_map: bool) -> dict[str, Any]:
    value: Any = None
    if is_map and isinstance(e, list) and len(e) == 2:
        e, value = e
    comment = timeout = expires = None
    if isinstance(e, dict) and "elem" in e:
        inner = e["elem"]
        comment, timeout, expires = inner.get("comment"), inner.get("timeout"), inner.get("expires")
        e = inner.get("val")
    key = list(e["concat"]) if isinstance(e, dict) and "concat" in e else [e]
    txt = " . ".join(_val_text(k) for k in key)
    if comment:
        txt += f' comment "{comment}"'
    if value is not None:
        txt += f" : {_val_text(value)}"
    return new_element(key, value, txt, comment, timeout, expires)


def parse_json(data: Any, res: ParseResult[NftRuleset]) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get("nftables"), list):
        raise ParseError("JSON, but not `nft -j list ruleset` output (no \"nftables\" list)", source=res.source)
    tables: dict[tuple[str, str], dict[str, Any]] = {}
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    sets: dict[tuple[str, str, str], dict[str, Any]] = {}

    def table_of(obj: dict[str, Any]) -> dict[str, Any]:
        key = (str(obj.get("family")), str(obj.get("table")))
        if key not in tables:
            tables[key] = new_table(key[0], key[1])
        return tables[key]

    for idx, item in enumerate(data["nftables"], 1):
        if not isinstance(item, dict) or len(item) != 1:
            res.warn(idx, json.dumps(item)[:200], "not an nftables object; skipped")
            continue
        kind, obj = next(iter(item.items()))
        try:
            if kind == "metainfo":
                continue
            if kind == "table":
                key = (str(obj["family"]), str(obj["name"]))
                t = tables.setdefault(key, new_table(key[0], key[1]))
                t["handle"] = obj.get("handle")
                t["comment"] = obj.get("comment")
                flags = obj.get("flags") or []
                t["flags"] = flags if isinstance(flags, list) else [flags]
            elif kind == "chain":
                t = table_of(obj)
                c = new_chain(obj["name"], type=obj.get("type"), hook=obj.get("hook"), policy=obj.get("policy"),
                              device=obj.get("dev"), comment=obj.get("comment"), handle=obj.get("handle"))
                prio = obj.get("prio")
                if isinstance(prio, int):
                    c["prio"], c["priority"] = prio, str(prio)
                elif prio is not None:
                    c["priority"] = str(prio)
                    c["prio"] = priority_value(c["priority"])
                t["chains"].append(c)
                chains[(t["family"], t["name"], c["name"])] = c
            elif kind == "rule":
                t = table_of(obj)
                chain_key = (t["family"], t["name"], obj["chain"])
                rc = chains.get(chain_key)
                if rc is None:
                    rc = new_chain(obj["chain"])
                    t["chains"].append(rc)
                    chains[chain_key] = rc
                expr = obj.get("expr") or []
                text = expr_to_text(expr)
                if obj.get("comment"):
                    text += f' comment "{obj["comment"]}"'
                rc["rules"].append(new_rule(text, expr, obj.get("comment"), obj.get("handle")))
            elif kind in ("set", "map"):
                t = table_of(obj)
                typ = obj.get("type")
                flags = obj.get("flags") or []
                st = new_set(
                    obj["name"], kind,
                    type=typ if isinstance(typ, list) else ([typ] if typ else []),
                    map=obj.get("map") if kind == "map" else None,
                    flags=flags if isinstance(flags, list) else [flags],
                    timeout=obj.get("timeout"), size=obj.get("size"), comment=obj.get("comment"),
                    handle=obj.get("handle"),
                )
                st["elements"] = [_json_element(e, kind == "map") for e in obj.get("elem") or []]
                t["sets"].append(st)
                sets[(t["family"], t["name"], st["name"])] = st
            elif kind == "element":
                t = table_of(obj)
                known = sets.get((t["family"], t["name"], obj.get("name", "")))
                if known is None:
                    res.warn(idx, json.dumps(item)[:200], "element of an unknown set; skipped")
                    continue
                known["elements"].extend(_json_element(e, known["kind"] == "map") for e in obj.get("elem") or [])
            else:
                if isinstance(obj, dict) and "table" in obj:
                    table_of(obj).setdefault("other", []).append(json.dumps(item, sort_keys=True))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            res.warn(idx, json.dumps(item)[:200], f"{kind} not understood ({exc.__class__.__name__}: {exc}); skipped")
    return list(tables.values())


