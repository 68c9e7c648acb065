"""Parse ``ip route`` / ``ip -6 route`` / ``ip route show table all`` (text) and
``ip -j route`` (JSON) of one network namespace.

Usage::

    from labreport.parsers import ip_route
    for r in ip_route.parse(text, source="route.txt").value:   # list[Route]
        print(r.dst, r.gateway, r.dev)

Text: ``[TYPE] DST [via GW] [dev DEV] [table T] [proto P] [scope S] [src SRC]
[metric N] [onlink] …``; TYPE is one of local, broadcast, multicast, blackhole,
unreachable, prohibit, throw, anycast, nat (unicast when absent). ``nexthop via …``
lines of a multipath route are kept on the route as the extra field ``nexthops``
(a list of {gateway, dev, weight}). The family is inet6 when DST or GW holds a ':'.

JSON: dst, gateway, dev, protocol, scope, prefsrc, metric, flags (["onlink"]),
type, table.

Returns ``list[Route]`` in input order::

    {"dst": "default"|CIDR|address, "gateway", "dev", "protocol", "scope", "src",
     "table", "type" (None = unicast), "metric", "onlink", "family"}

Example (captured in a namespace on this machine)::

    10.244.0.0/24 via 10.244.0.0 dev flannel.1 onlink
    -> Route(dst="10.244.0.0/24", gateway="10.244.0.0", dev="flannel.1", onlink=True)
"""

from __future__ import annotations

import re
from typing import Any, Optional

from labreport.errors import ParseError
from labreport.parsers._common import is_prompt_line, load_json, to_int, without_prompts
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.snapshot import NetNamespace, Route

_TYPES = {"unicast", "local", "broadcast", "multicast", "blackhole", "unreachable", "prohibit", "throw", "anycast", "nat"}
_DST_RE = re.compile(r"^(default|[0-9a-fA-F.:]+(?:/\d{1,3})?)$")
_KEYS_WITH_VALUE = {"via", "dev", "table", "proto", "scope", "src", "metric", "pref", "mtu", "advmss", "realm",
                    "expires", "weight", "tos", "dsfield", "initcwnd", "initrwnd", "hoplimit", "rtt", "rttvar",
                    "nhid", "encap", "from", "cache", "error", "features", "quickack", "congctl", "fastopen_no_cookie",
                    "ttl-propagate", "window", "ssthresh", "cwnd", "reordering", "lock", "rto_min"}


_MAC_START = re.compile(r"^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}\s")


def _detect(text: str) -> float:
    head = text[:4000]
    s = head.lstrip()
    if s.startswith("[") and '"dst"' in head and ('"dev"' in head or '"gateway"' in head):
        return 0.9
    lines = [ln.strip() for ln in head.splitlines()[:30] if ln.strip() and not is_prompt_line(ln)]
    if not lines:
        return 0.0
    if sum(1 for ln in lines if _MAC_START.match(ln)) * 2 > len(lines):
        return 0.0  # bridge fdb show: "33:33:00:00:00:01 dev cni0 self permanent"
    hits = sum(1 for ln in lines if re.match(r"^(?:(?:%s)\s+)?(?:default|[0-9a-fA-F.:]+(?:/\d+)?)\s+(?:via|dev|proto|table)\s" % "|".join(_TYPES), ln))
    if hits == 0:
        return 0.0
    return min(0.9, 0.4 + 0.5 * hits / len(lines))


INFO = ParserInfo(
    name="ip-route",
    commands=("ip route", "ip -6 route", "ip route show table all", "ip -j route"),
    description="routes of one namespace (pod CIDR via flannel.1 / cni0, default route)",
    detect=_detect,
    target="netns",
)


def _convert(raw: dict[str, Any]) -> Route:
    """The one place where route fields become a typed Route."""
    dst = str(raw["dst"])
    gw = raw.get("gateway")
    family = "inet6" if (":" in dst or (gw and ":" in gw)) else "inet"
    if raw.get("family") in ("inet", "inet6"):
        family = raw["family"]
    rtype = raw.get("type")
    extra = {k: raw[k] for k in ("nexthops", "pref") if raw.get(k)}
    return Route(
        dst=dst,
        gateway=gw,
        dev=raw.get("dev"),
        protocol=raw.get("protocol"),
        scope=raw.get("scope"),
        src=raw.get("src"),
        table=str(raw["table"]) if raw.get("table") not in (None, "") else None,
        type=None if rtype in (None, "", "unicast") else rtype,
        metric=to_int(raw.get("metric")),
        onlink=bool(raw.get("onlink")),
        family=family,
        **extra,
    )


def _parse_line(toks: list[str]) -> Optional[dict[str, Any]]:
    raw: dict[str, Any] = {}
    i = 0
    if toks and toks[0] in _TYPES:
        raw["type"] = toks[0]
        i = 1
    if i >= len(toks) or not _DST_RE.match(toks[i]):
        return None
    raw["dst"] = toks[i]
    i += 1
    names = {"via": "gateway", "proto": "protocol", "src": "src", "dev": "dev", "table": "table",
             "scope": "scope", "metric": "metric", "pref": "pref"}
    while i < len(toks):
        t = toks[i]
        if t == "via" and i + 1 < len(toks) and toks[i + 1] in ("inet", "inet6"):
            i += 1  # "via inet6 fe80::1"
        if t in _KEYS_WITH_VALUE and i + 1 < len(toks):
            if t in names:
                raw[names[t]] = toks[i + 1] if t != "via" or toks[i] != "via" else toks[i + 1]
            i += 2
            continue
        if t == "onlink":
            raw["onlink"] = True
        i += 1
    return raw


def _parse_text(text: str, result: ParseResult[list[Route]]) -> None:
    raws: list[tuple[int, str, dict[str, Any]]] = []
    for line_no, raw_line in enumerate(text.split("\n"), 1):
        line = raw_line.rstrip()
        s = line.strip()
        if not s or s in ("```", "~~~") or is_prompt_line(line):
            continue
        toks = s.split()
        if toks[0] == "nexthop" and raws:
            nh = _parse_line(["0.0.0.0/0"] + toks[1:]) or {}
            raws[-1][2].setdefault("nexthops", []).append(
                {"gateway": nh.get("gateway"), "dev": nh.get("dev"), "weight": to_int(_after(toks, "weight"))})
            continue
        raw = _parse_line(toks)
        if raw is None:
            result.warn(line_no, line, "not an ip route line ([type] DST [via GW] dev DEV …)")
            continue
        raws.append((line_no, line, raw))
    for line_no, line, raw in raws:
        try:
            result.value.append(_convert(raw))
        except (ValueError, TypeError) as exc:
            result.warn(line_no, line, f"cannot convert route: {exc}")


def _after(toks: list[str], key: str) -> Optional[str]:
    try:
        return toks[toks.index(key) + 1]
    except (ValueError, IndexError):
        return None


def _parse_json(data: Any, result: ParseResult[list[Route]]) -> None:
    if not isinstance(data, list):
        raise ParseError("ip -j route prints a JSON array of routes", source=result.source)
    for i, obj in enumerate(data):
        if not isinstance(obj, dict) or not obj.get("dst"):
            result.warn(1, str(obj)[:200], f"item {i} is not a route (no dst)")
            continue
        flags = obj.get("flags") if isinstance(obj.get("flags"), list) else []
        raw = {
            "dst": obj["dst"], "gateway": obj.get("gateway"), "dev": obj.get("dev"),
            "protocol": obj.get("protocol"), "scope": obj.get("scope"), "src": obj.get("prefsrc"),
            "table": obj.get("table"), "type": obj.get("type"), "metric": obj.get("metric"),
            "onlink": "onlink" in flags, "pref": obj.get("pref"),
        }
        try:
            result.value.append(_convert(raw))
        except (ValueError, TypeError) as exc:
            result.warn(1, str(obj)[:200], f"item {i}: {exc}")
    if data and not result.value:
        raise ParseError("no route in this JSON (no dst fields): not ip -j route output", source=result.source)


def parse(text: str, *, source: str = "<input>") -> ParseResult[list[Route]]:
    text = check_text(text, source)
    result: ParseResult[list[Route]] = ParseResult(value=[], parser=INFO.name, source=source)
    body = without_prompts(text)
    if body.startswith("["):
        try:
            data = load_json(body)
        except ValueError as exc:
            raise ParseError(f"ip -j route output is not valid JSON: {exc}", source=source) from None
        _parse_json(data, result)
        return result
    _parse_text(text, result)
    if not result.value:
        raise ParseError("no route lines found: not ip route output", source=source)
    return result


# --------------------------------------------------------------------------- records → text


def render(ns: NetNamespace) -> str:
    """``ip route`` text (table main, IPv4) in iproute2's format from a namespace's routes;
    :func:`parse` reads it back into the same routes."""
    out = []
    for r in ns.routes:
        if r.family != "inet" or r.table not in (None, "main"):
            continue
        parts = [r.dst if r.type in (None, "unicast") else f"{r.type} {r.dst}"]
        if r.gateway:
            parts.append(f"via {r.gateway}")
        if r.dev:
            parts.append(f"dev {r.dev}")
        if r.protocol and r.protocol not in ("boot", "unspec"):
            parts.append(f"proto {r.protocol}")
        if r.scope and r.scope != "global":
            parts.append(f"scope {r.scope}")
        if r.src:
            parts.append(f"src {r.src}")
        if r.metric is not None:
            parts.append(f"metric {r.metric}")
        if r.onlink:
            parts.append("onlink")
        out.append(" ".join(parts))
    return "\n".join(out) + ("\n" if out else "")
