"""nft's JSON statements → the text ``nft list ruleset`` prints (for rules read from
``nft -j``, so their ``text`` reads as a person expects)."""

from __future__ import annotations

import json
from typing import Any

from labreport.parsers.nft.expr import _VERDICTS

def _val_text(v: Any) -> str:
    if isinstance(v, dict):
        if "prefix" in v:
            return f"{v['prefix']['addr']}/{v['prefix']['len']}"
        if "range" in v:
            return f"{_val_text(v['range'][0])}-{_val_text(v['range'][1])}"
        if "concat" in v:
            return " . ".join(_val_text(x) for x in v["concat"])
        if "set" in v:
            items = v["set"]
            if items and isinstance(items[0], list):
                return "{ " + ", ".join(f"{_val_text(k)} : {_val_text(d)}" for k, d in items) + " }"
            return "{ " + ", ".join(_val_text(x) for x in items) + " }"
        if "payload" in v:
            p = v["payload"]
            return f"{p.get('protocol', '')} {p.get('field', '')}".strip()
        if "meta" in v:
            return f"meta {v['meta'].get('key', '')}"
        if "ct" in v:
            return f"ct {v['ct'].get('key', '')}"
        if "fib" in v:
            flags = v["fib"].get("flags") or []
            flags = flags if isinstance(flags, list) else [flags]
            return f"fib {' . '.join(flags)} {v['fib'].get('result', '')}"
        if "map" in v and isinstance(v["map"], dict):
            mp = v["map"]
            data = mp.get("data")
            return f"{_val_text(mp.get('key'))} map {data if isinstance(data, str) else _val_text(data)}"
        if "numgen" in v:
            g = v["numgen"]
            s = f"numgen {g.get('mode', 'random')} mod {g.get('mod')}"
            return s + (f" offset {g['offset']}" if g.get("offset") else "")
        for op in ("&", "|", "^"):
            if op in v:
                a, b = v[op]
                b_txt = f"0x{b:08x}" if isinstance(b, int) else _val_text(b)
                return f"{_val_text(a)} {op} {b_txt}"
        for verdict in ("jump", "goto"):
            if verdict in v:
                return f"{verdict} {v[verdict]['target']}"
        if "elem" in v:
            return _val_text(v["elem"].get("val"))
        return json.dumps(v, sort_keys=True)
    if isinstance(v, list):
        return ", ".join(_val_text(x) for x in v)
    if v is None:
        return ""
    return str(v)


def expr_to_text(exprs: list[dict[str, Any]]) -> str:
    """Render nft JSON statements the way ``nft list ruleset`` prints them (the statements
    kube-proxy and common firewalls use; others as compact JSON)."""
    parts: list[str] = []
    for e in exprs:
        if not isinstance(e, dict) or not e:
            continue
        k, v = next(iter(e.items()))
        if k == "match":
            left, right, op = v.get("left"), v.get("right"), v.get("op", "==")
            lt = _val_text(left)
            if isinstance(left, dict) and any(x in left for x in ("&", "|", "^")) and isinstance(right, int):
                rt = f"0x{right:08x}"
            else:
                rt = _val_text(right)
            masked = isinstance(left, dict) and any(x in left for x in ("&", "|", "^"))
            if op == "in" or (op == "==" and not masked):
                parts.append(f"{lt} {rt}")
            else:
                parts.append(f"{lt} {op} {rt}")
        elif k == "vmap":
            data = v.get("data")
            parts.append(f"{_val_text(v.get('key'))} vmap {data if isinstance(data, str) else _val_text(data)}")
        elif k in ("jump", "goto"):
            parts.append(f"{k} {v['target']}")
        elif k in _VERDICTS:
            parts.append(k)
        elif k == "reject":
            parts.append("reject" if not v or v.get("expr") in (None, "port-unreachable") else f"reject with {v.get('type')} {v.get('expr')}")
        elif k == "masquerade":
            flags = (v or {}).get("flags") if isinstance(v, dict) else None
            flags = [flags] if isinstance(flags, str) else (flags or [])
            parts.append(" ".join(["masquerade", *flags]))
        elif k in ("dnat", "snat"):
            v = v or {}
            addr = v.get("addr")
            addr_t = _val_text(addr)
            port = v.get("port")
            fam = f"{v['family']} " if v.get("family") else ""
            if port is not None:
                addr_t = f"[{addr_t}]:{port}" if ":" in addr_t else f"{addr_t}:{port}"
            parts.append(f"{k} {fam}to {addr_t}")
        elif k == "set":
            elem = v.get("elem")
            parts.append(f"{v.get('op')} {v.get('set')} {{ {_val_text(elem)} }}")
        elif k == "mangle":
            parts.append(f"{_val_text(v.get('key'))} set {_val_text(v.get('value'))}")
        elif k == "counter":
            if isinstance(v, dict) and v:
                parts.append(f"counter packets {v.get('packets', 0)} bytes {v.get('bytes', 0)}")
            else:
                parts.append("counter")
        elif k == "text":
            parts.append(str(v))
        elif k == "xt" and isinstance(v, dict):
            parts.append(f"xt {v.get('type', '')} {v.get('name', '')}".replace("  ", " ").strip())
        else:
            parts.append(json.dumps(e, sort_keys=True))
    return " ".join(parts)


