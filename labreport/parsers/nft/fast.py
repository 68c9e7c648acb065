"""The rule shapes kube-proxy writes by the ten thousand, read straight into the typed
shape (:mod:`.typed`): the same statements ``typed_statements(rule_to_expr(text))`` gives,
without building nft's JSON first. tests/test_nft_typed.py compares both on every rule
of the fixtures; the 10,000-service benchmark checks the decoded services."""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

from labreport.parsers.nft.common import _scalar
from labreport.parsers.nft.typed import typed_value

_ADDR = r'([^\s{}"]+)'


def _payload(proto: str, fld: str) -> dict[str, Any]:
    return {"kind": "payload", "protocol": proto, "field": fld}


def _value(tok: str) -> Any:
    v = _scalar(tok)
    return v if isinstance(v, (int, str)) else typed_value(v)


def _jump(word: str, target: str) -> dict[str, Any]:
    return {"kind": "verdict", "verdict": word, "target": target}


def _addr_verdict(m: re.Match[str]) -> list[dict[str, Any]]:
    return [{"kind": "match", "op": "!=" if m.group(3) else "==", "left": _payload(m.group(1), m.group(2)),
             "right": _value(m.group(4))}, _jump(m.group(5), m.group(6))]


def _nat(m: re.Match[str]) -> list[dict[str, Any]]:
    nat: dict[str, Any] = {"kind": "nat", "type": m.group(2), "addr": m.group(3)}
    if m.group(4):
        nat["port"] = int(m.group(4))
    return [{"kind": "match", "op": "==", "left": {"kind": "meta", "key": "l4proto"}, "right": m.group(1)}, nat]


def _svc_masq(m: re.Match[str]) -> list[dict[str, Any]]:
    return [
        {"kind": "match", "op": "==", "left": _payload(m.group(1), "daddr"), "right": _value(m.group(2))},
        {"kind": "match", "op": "==", "left": _payload(m.group(3), "dport"), "right": int(m.group(4))},
        {"kind": "match", "op": "!=", "left": _payload(m.group(5), "saddr"), "right": _value(m.group(6))},
        _jump("jump", m.group(7)),
    ]


_VMAP_ITEM_RE = re.compile(r"(\d+) : (goto|jump) (\S+)")


def _numgen(m: re.Match[str]) -> Optional[list[dict[str, Any]]]:
    entries = []
    for it in m.group(2).split(", "):
        im = _VMAP_ITEM_RE.fullmatch(it)
        if im is None:
            return None
        entries.append({"key": int(im.group(1)), "value": _jump(im.group(2), im.group(3))})
    return [{"kind": "vmap", "key": {"kind": "numgen", "mode": "random", "mod": int(m.group(1)), "offset": 0},
             "entries": entries}]


def _update(m: re.Match[str]) -> list[dict[str, Any]]:
    return [{"kind": "set_update", "op": m.group(1), "set": m.group(2), "elem": _payload(m.group(3), m.group(4))}]


def _verdict(m: re.Match[str]) -> list[dict[str, Any]]:
    return [_jump(m.group(1), m.group(2))]


_SHAPES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], Optional[list[dict[str, Any]]]]]] = [
    (re.compile(rf"(ip6?) (saddr|daddr) (!= )?{_ADDR} (jump|goto) {_ADDR}"), _addr_verdict),
    (re.compile(r"meta l4proto (\w+) (dnat|snat) to ([0-9.]+)(?::(\d+))?"), _nat),
    (re.compile(rf"(ip6?) daddr {_ADDR} (tcp|udp|sctp) dport (\d+) (ip6?) saddr != {_ADDR} jump {_ADDR}"), _svc_masq),
    (re.compile(r"numgen random mod (\d+) vmap \{ (.*) \}"), _numgen),
    (re.compile(r"(update|add) (@[^\s{}\"]+) \{ (ip6?) (saddr|daddr) \}"), _update),
    (re.compile(rf"(jump|goto) {_ADDR}"), _verdict),
]


def fast_statements(text: str) -> Optional[list[dict[str, Any]]]:
    """The typed statements of one of kube-proxy's common rule shapes; None otherwise."""
    if '"' in text:
        return None
    for rx, build in _SHAPES:
        m = rx.fullmatch(text)
        if m is not None:
            return build(m)
    return None
