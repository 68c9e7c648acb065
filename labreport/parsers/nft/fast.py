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


# the shapes, by their place in _SHAPES, and those a text can be by its first letter
ADDR_VERDICT, NAT, SVC_MASQ, NUMGEN, UPDATE, VERDICT = range(6)
_BY_FIRST = {"i": (ADDR_VERDICT, SVC_MASQ), "m": (NAT,), "n": (NUMGEN,), "u": (UPDATE,), "a": (UPDATE,),
             "j": (VERDICT,), "g": (VERDICT,)}


def shape_of(text: str) -> Optional[tuple[int, re.Match[str]]]:
    """Which of the common shapes ``text`` is (its place in ``_SHAPES``) and its match; None
    for any other rule. ``fast_statements`` builds its statements from exactly this."""
    if not text or '"' in text:
        return None
    for i in _BY_FIRST.get(text[0], ()):  # the shapes that can start with its first letter, in order
        m = _SHAPES[i][0].fullmatch(text)
        if m is not None:
            return i, m
    return None


def fast_statements(text: str) -> Optional[list[dict[str, Any]]]:
    """The typed statements of one of kube-proxy's common rule shapes; None otherwise."""
    got = shape_of(text)
    return _SHAPES[got[0]][1](got[1]) if got is not None else None


# What the services decoder reads of a rule, straight from the match of its shape: the
# answers its readers of the typed statements give for the statements ``fast_statements``
# builds (tests/test_nft_fast.py compares both on every rule of the fixtures), without
# building or validating them (``NftRule.read_shape``). ``MISS``: not a common shape (or one
# whose statements come from the general reader): read the typed statements.
MISS: Any = object()


def _known(text: str) -> Optional[tuple[int, re.Match[str], list[tuple[int, str]]]]:
    """The shape, its match and a numgen map's ``(index, chain)`` pairs, for a text whose
    statements ``fast_statements`` builds; None for any other."""
    got = shape_of(text)
    if got is None:
        return None
    shape, m = got
    pairs = []
    if shape == NUMGEN:
        for it in m.group(2).split(", "):
            im = _VMAP_ITEM_RE.fullmatch(it)
            if im is None:
                return None  # fast_statements gives None: the general reader's statements
            pairs.append((int(im.group(1)), im.group(3)))
    return shape, m, pairs


def numgen_of(text: str) -> Any:
    """(mod, [(index, chain)]) of ``numgen random mod N vmap { i : goto|jump c, … }``; None
    for another common shape (it holds no numgen map); ``MISS`` otherwise."""
    got = _known(text)
    if got is None:
        return MISS
    shape, m, pairs = got
    return (int(m.group(1)), pairs) if shape == NUMGEN else None


def dnat_of(text: str) -> Any:
    """``addr[:port]`` of ``meta l4proto P dnat to addr[:port]``; None for another common
    shape; ``MISS`` otherwise."""
    got = _known(text)
    if got is None:
        return MISS
    shape, m, _pairs = got
    if shape != NAT:
        return None
    _proto, kind, addr, port = m.groups()
    if kind != "dnat":
        return None
    return f"{addr}:{port}" if port else addr


def targets_of(text: str) -> Any:
    """The jump / goto targets of a common shape's statements (a vmap's entries are not
    statements); ``MISS`` otherwise."""
    got = _known(text)
    if got is None:
        return MISS
    shape, m, _ = got
    if shape == ADDR_VERDICT:
        return [m.group(6)]
    if shape == SVC_MASQ:
        return [m.group(7)]
    if shape == VERDICT:
        return [m.group(2)]
    return []


def set_refs_of(text: str) -> Any:
    """The right-hand words of a common shape's matches that are set references
    (``@name``), in order; ``MISS`` otherwise."""
    got = _known(text)
    if got is None:
        return MISS
    shape, m, _ = got
    if shape == ADDR_VERDICT:
        rights = [m.group(4)]
    elif shape == SVC_MASQ:
        rights = [m.group(2), m.group(6)]
    else:
        return []  # nat: `meta l4proto \w+`; numgen, update, verdict: no match
    return [r for r in rights if r.startswith("@")]
