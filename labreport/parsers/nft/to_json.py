"""The snapshot's typed nft statements and values → nft's JSON schema (the inverse of
:mod:`.typed`): for rendering, comparing with ``nft -j`` and tests."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from labreport.snapshot import (
    NftBinop, NftConcat, NftCounter, NftCt, NftFib, NftMangle, NftMapEntry, NftMapLookup, NftMatch, NftMeta,
    NftNat, NftNumgen, NftOther, NftPayload, NftPrefix, NftRange, NftRaw, NftReject, NftSetLiteral,
    NftSetUpdate, NftVerdict, NftVmap, NftXt,
)


def nft_json_value(v: Any) -> Any:
    """A typed value (model or scalar) → nft's JSON schema."""
    if not isinstance(v, BaseModel):
        return v
    if isinstance(v, NftPayload):
        return {"payload": {"protocol": v.protocol, "field": v.field}}
    if isinstance(v, NftMeta):
        return {"meta": {"key": v.key}}
    if isinstance(v, NftCt):
        d: dict[str, Any] = {"key": v.key}
        if v.dir is not None:
            d["dir"] = v.dir
        if v.family is not None:
            d["family"] = v.family
        return {"ct": d}
    if isinstance(v, NftFib):
        return {"fib": {"result": v.result, "flags": list(v.flags)}}
    if isinstance(v, NftNumgen):
        return {"numgen": {"mode": v.mode, "mod": v.mod, "offset": v.offset}}
    if isinstance(v, NftConcat):
        return {"concat": [nft_json_value(p) for p in v.parts]}
    if isinstance(v, NftBinop):
        return {v.op: [nft_json_value(v.left), nft_json_value(v.right)]}
    if isinstance(v, NftPrefix):
        return {"prefix": {"addr": v.addr, "len": v.len}}
    if isinstance(v, NftRange):
        return {"range": [nft_json_value(v.low), nft_json_value(v.high)]}
    if isinstance(v, NftSetLiteral):
        return {"set": [nft_json_value(i) for i in v.items]}
    if isinstance(v, NftMapLookup):
        data: Any = v.map if v.map is not None else {"set": _entries_json(v.entries)}
        return {"map": {"key": nft_json_value(v.key), "data": data}}
    if isinstance(v, NftVerdict):
        return {v.verdict: {"target": v.target}} if v.target is not None else {v.verdict: None}
    if isinstance(v, NftRaw):
        return json.loads(v.raw)
    return v.model_dump()


def _entries_json(entries: list[NftMapEntry]) -> list[list[Any]]:
    return [[nft_json_value(e.key), nft_json_value(e.value)] for e in entries]


def nft_json(s: Any) -> dict[str, Any]:
    """A typed statement → nft's JSON schema (the inverse of ``typed_statement``)."""
    if isinstance(s, NftMatch):
        return {"match": {"op": s.op, "left": nft_json_value(s.left), "right": nft_json_value(s.right)}}
    if isinstance(s, NftVerdict):
        out: dict[str, Any] = nft_json_value(s)
        return out
    if isinstance(s, NftVmap):
        data: Any = s.map if s.map is not None else {"set": _entries_json(s.entries)}
        return {"vmap": {"key": nft_json_value(s.key), "data": data}}
    if isinstance(s, NftNat):
        d: dict[str, Any] = {}
        if s.family is not None:
            d["family"] = s.family
        if s.addr is not None:
            d["addr"] = nft_json_value(s.addr)
        if s.port is not None:
            d["port"] = nft_json_value(s.port)
        if s.flags:
            d["flags"] = s.flags[0] if len(s.flags) == 1 else list(s.flags)
        return {s.type: d or None}
    if isinstance(s, NftSetUpdate):
        return {"set": {"op": s.op, "elem": nft_json_value(s.elem), "set": s.set}}
    if isinstance(s, NftMangle):
        return {"mangle": {"key": nft_json_value(s.key), "value": nft_json_value(s.value)}}
    if isinstance(s, NftCounter):
        if s.packets is None and s.bytes is None:
            return {"counter": None}
        return {"counter": {"packets": s.packets, "bytes": s.bytes}}
    if isinstance(s, NftReject):
        if s.type is None and s.expr is None:
            return {"reject": None}
        return {"reject": {"type": s.type, "expr": s.expr}}
    if isinstance(s, NftXt):
        return {"xt": {"type": s.type, "name": s.name}}
    if isinstance(s, NftOther):
        if s.raw is not None:
            loaded: dict[str, Any] = json.loads(s.raw)
            return loaded
        return {"text": s.text or ""}
    raise TypeError(f"not an nft statement: {s!r}")
