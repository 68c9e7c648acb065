"""nft's JSON schema (what ``nft -j`` prints, and what :mod:`.expr` reads from text) → the
snapshot's typed statements (:class:`labreport.snapshot.NftStatement`, tagged by ``kind``).

``typed_statements`` / ``typed_value`` give the typed shape as plain dicts, validated into
models with the whole table at once (one pass in pydantic's core, not a Python constructor
per node); :mod:`.to_json` gives a model back in nft's JSON schema. (This module does not
import the snapshot: the snapshot's loader uses it to upgrade version-1 snapshots.)
Anything labreport does not model is kept as compact JSON (``NftRaw`` / ``NftOther.raw``),
so no statement is lost.
"""

from __future__ import annotations

import json
from typing import Any, Optional


VERDICT_WORDS = ("accept", "drop", "return", "continue", "queue", "jump", "goto")
_BINOP_KEYS = ("&", "|", "^", "<<", ">>")


def _raw(v: Any) -> dict[str, Any]:
    return {"kind": "raw", "raw": json.dumps(v, sort_keys=True, separators=(",", ":"))}


def _entries(items: Any) -> Optional[list[dict[str, Any]]]:
    """``[[key, value], …]`` of a map literal; None when it is not one."""
    out = []
    for it in items:
        if not (isinstance(it, list) and len(it) == 2):
            return None
        out.append({"key": typed_value(it[0]), "value": typed_value(it[1])})
    return out


def typed_value(v: Any) -> Any:
    """One value or expression of nft's JSON → the typed shape (a scalar, or a dict with
    ``kind``)."""
    if isinstance(v, (int, str)):  # bool is an int
        return v
    if not isinstance(v, dict) or len(v) != 1:
        return _raw(v)
    k, x = next(iter(v.items()))
    try:
        if k == "payload" and "field" in x:
            return {"kind": "payload", "protocol": x["protocol"], "field": x["field"]}
        if k == "meta":
            return {"kind": "meta", "key": x["key"]}
        if k == "ct":
            d = {"kind": "ct", "key": x["key"]}
            for extra in ("dir", "family"):
                if x.get(extra) is not None:
                    d[extra] = x[extra]
            return d
        if k == "fib":
            flags = x.get("flags") or []
            return {"kind": "fib", "result": x.get("result", ""), "flags": flags if isinstance(flags, list) else [flags]}
        if k == "numgen":
            return {"kind": "numgen", "mode": x.get("mode", "random"), "mod": x["mod"], "offset": x.get("offset", 0)}
        if k == "concat":
            return {"kind": "concat", "parts": [typed_value(p) for p in x]}
        if k in _BINOP_KEYS and isinstance(x, list) and len(x) == 2:
            return {"kind": "binop", "op": k, "left": typed_value(x[0]), "right": typed_value(x[1])}
        if k == "prefix":
            return {"kind": "prefix", "addr": str(x["addr"]), "len": int(x["len"])}
        if k == "range" and isinstance(x, list) and len(x) == 2:
            return {"kind": "range", "low": typed_value(x[0]), "high": typed_value(x[1])}
        if k == "set":
            items = x if isinstance(x, list) else [x]
            return {"kind": "set", "items": [typed_value(i) for i in items]}
        if k == "map" and isinstance(x, dict):
            d = {"kind": "map", "key": typed_value(x.get("key"))}
            data = x.get("data")
            if isinstance(data, str):
                d["map"] = data
            else:
                entries = _entries(data["set"]) if isinstance(data, dict) and isinstance(data.get("set"), list) else None
                if entries is None:
                    return _raw(v)
                d["entries"] = entries
            return d
        if k in VERDICT_WORDS:
            return _verdict(k, x)
    except (KeyError, TypeError, ValueError):
        pass
    return _raw(v)


def _verdict(word: str, x: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"kind": "verdict", "verdict": word}
    if word in ("jump", "goto"):
        d["target"] = str(x["target"])
    return d


def typed_statement(e: Any) -> dict[str, Any]:
    """One statement of nft's JSON → the typed shape."""
    if not isinstance(e, dict) or len(e) != 1:
        return {"kind": "other", "raw": json.dumps(e, sort_keys=True, separators=(",", ":"))}
    k, x = next(iter(e.items()))
    try:
        if k == "match":
            return {"kind": "match", "op": x.get("op", "=="), "left": typed_value(x["left"]), "right": typed_value(x["right"])}
        if k in VERDICT_WORDS:
            return _verdict(k, x)
        if k == "vmap":
            d: dict[str, Any] = {"kind": "vmap", "key": typed_value(x["key"])}
            data = x.get("data")
            if isinstance(data, str):
                d["map"] = data
            else:
                entries = _entries(data["set"]) if isinstance(data, dict) and isinstance(data.get("set"), list) else None
                if entries is None:
                    raise ValueError("vmap data")
                d["entries"] = entries
            return d
        if k in ("dnat", "snat", "masquerade", "redirect"):
            d = {"kind": "nat", "type": k}
            x = x or {}
            if x.get("family"):
                d["family"] = x["family"]
            if x.get("addr") is not None:
                d["addr"] = typed_value(x["addr"])
            if x.get("port") is not None:
                d["port"] = typed_value(x["port"])
            flags = x.get("flags")
            if flags:
                d["flags"] = flags if isinstance(flags, list) else [flags]
            return d
        if k == "set" and isinstance(x, dict) and "set" in x:
            d = {"kind": "set_update", "op": x.get("op", "add"), "set": str(x["set"])}
            if x.get("elem") is not None:
                d["elem"] = typed_value(x["elem"])
            return d
        if k == "mangle":
            return {"kind": "mangle", "key": typed_value(x["key"]), "value": typed_value(x["value"])}
        if k == "counter":
            d = {"kind": "counter"}
            if isinstance(x, dict):
                if x.get("packets") is not None:
                    d["packets"] = int(x["packets"])
                if x.get("bytes") is not None:
                    d["bytes"] = int(x["bytes"])
            elif x is not None:
                raise ValueError("named counter")
            return d
        if k == "reject":
            d = {"kind": "reject"}
            if isinstance(x, dict):
                if x.get("type") is not None:
                    d["type"] = str(x["type"])
                if x.get("expr") is not None:
                    d["expr"] = str(x["expr"])
            return d
        if k == "xt" and isinstance(x, dict):
            return {"kind": "xt", "type": x.get("type"), "name": x.get("name")}
        if k == "text":
            return {"kind": "other", "text": str(x)}
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    return {"kind": "other", "raw": json.dumps(e, sort_keys=True, separators=(",", ":"))}


def typed_statements(exprs: list[Any]) -> list[dict[str, Any]]:
    return [typed_statement(e) for e in exprs]
