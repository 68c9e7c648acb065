"""Parse ``ip rule`` / ``ip rule show`` / ``ip -6 rule`` (text) and ``ip -j rule`` (JSON):
the policy-routing rules of one network namespace.

Usage::

    from labreport.parsers import ip_rule
    for r in ip_rule.parse(text, source="rule.txt").value:   # list[IpRule]
        print(r.priority, r.src, r.table)

Text, as iproute2 prints each rule (iprule.c)::

    PRIO:<tab>[not ]from SRC|all [to DST] [tos T] [fwmark M[/MASK]] [iif DEV [[detached]]]
    [oif DEV [[detached]]] [lookup [l3mdev-table]] [uidrange A-B] [ipproto P] [sport A[-B]]
    [dport A[-B]] [tun_id N] [lookup TABLE [suppress_prefixlength N] [suppress_ifgroup G]]
    [realms R] [goto N [unresolved]|nop|blackhole|unreachable|prohibit] [proto P]

The family is inet6 when SRC or DST holds a ':', or when the shell prompt line before the
rules typed ``ip -6 rule`` (a paste of ``ip rule; ip -6 rule`` with its prompts gives both
families), or when every address of a block of rules without a prompt is IPv6 (its
default rules are then IPv6 too); else inet. JSON keys: priority, not, src/srclen, dst/dstlen, tos, fwmark,
fwmask, iif, iif_detached, oif, oif_detached, l3mdev, uid_start/uid_end, ipproto,
sport or sport_start/sport_end (dport likewise), tun_id, table, suppress_prefixlen,
suppress_ifgroup, flowid/realms, goto, unresolved, nop, action, protocol.

Returns ``list[IpRule]`` in input order. Example (captured in a namespace on this machine)::

    200:	from all fwmark 0x10/0xff lookup 200
    -> IpRule(priority=200, fwmark=16, fwmask=255, action="lookup", table="200")
"""

from __future__ import annotations

import re
from typing import Any, Literal, Optional

from labreport.errors import ParseError
from labreport.parsers._common import load_json, split_prompt, without_prompts
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.snapshot import IpRule

_LINE_RE = re.compile(r"^\s*(\d{1,10}):\s+(.*)$")
_ACTIONS = ("blackhole", "unreachable", "prohibit")
_FULL = 0xFFFFFFFF


def _detect(text: str) -> float:
    head = text[:4000]
    s = without_prompts(head)
    if s.startswith("[") and '"priority"' in head and '"src"' in head:
        return 0.9
    lines = [ln for ln in head.splitlines()[:30] if ln.strip() and not split_prompt(ln)[0]]
    if not lines:
        return 0.0
    hits = sum(1 for ln in lines if re.match(r"^\s*\d+:\s+(?:not\s+)?from\s+\S+", ln))
    if hits == 0:
        return 0.0
    return min(0.95, 0.5 + 0.5 * hits / len(lines))


INFO = ParserInfo(
    name="ip-rule",
    commands=("ip rule", "ip rule show", "ip -6 rule", "ip -j rule"),
    description="policy-routing rules of one namespace (which routing table a packet is looked up in)",
    detect=_detect,
    target="netns",
)


def _int(v: str) -> int:
    return int(v, 0)


def _prefix(addr: str, plen: Any = None) -> Optional[str]:
    if addr in ("all", "", None):
        return None if not plen else f"{'::' if ':' in str(addr) else '0.0.0.0'}/{plen}"
    if "/" in addr or plen in (None, ""):
        return addr
    full = 128 if ":" in addr else 32
    return addr if int(plen) == full else f"{addr}/{plen}"


def _range(v: str) -> str:
    lo, _, hi = v.partition("-")
    int(lo)
    int(hi or lo)
    return f"{lo}-{hi or lo}"


def _parse_body(prio: int, body: str, family: Literal["inet", "inet6"]) -> IpRule:
    """One rule's words after ``PRIO:``; ValueError naming what cannot be read."""
    toks = body.split()
    raw: dict[str, Any] = {"priority": prio}
    i = 0
    if toks and toks[0] == "not":
        raw["invert"] = True
        i = 1

    def val() -> str:
        if i + 1 >= len(toks):
            raise ValueError(f"{toks[i]!r} without a value")
        return toks[i + 1]

    while i < len(toks):
        t = toks[i]
        if t == "from":
            raw["src"] = _prefix(val())
            i += 2
        elif t == "to":
            raw["dst"] = _prefix(val())
            i += 2
        elif t in ("tos", "dsfield"):
            raw["tos"] = _int(val()) if val().startswith("0x") or val().isdigit() else None
            if raw["tos"] is None:
                raw["tos_name"] = val()
            i += 2
        elif t == "fwmark":
            mark, _, mask = val().partition("/")
            raw["fwmark"], raw["fwmask"] = _int(mark), (_int(mask) if mask else _FULL)
            i += 2
        elif t in ("iif", "oif"):
            raw[t] = val()
            i += 2
            if i < len(toks) and toks[i] == "[detached]":
                raw["detached"] = True
                i += 1
        elif t == "lookup" and i + 1 < len(toks) and toks[i + 1] == "[l3mdev-table]":
            raw["l3mdev"] = True
            i += 2
        elif t in ("lookup", "table"):
            raw["action"], raw["table"] = "lookup", val()
            i += 2
        elif t == "suppress_prefixlength":
            raw["suppress_prefixlen"] = int(val())
            i += 2
        elif t == "suppress_ifgroup":
            raw["suppress_ifgroup"] = int(val()) if val().isdigit() else val()
            i += 2
        elif t == "uidrange":
            raw["uidrange"] = _range(val())
            i += 2
        elif t == "ipproto":
            raw["ipproto"] = val()
            i += 2
        elif t in ("sport", "dport"):
            raw[t] = _range(val())
            i += 2
        elif t == "tun_id":
            raw["tun_id"] = _int(val())
            i += 2
        elif t == "realms":
            raw["realms"] = val()
            i += 2
        elif t == "goto":
            raw["action"], raw["goto"] = "goto", int(val())
            i += 2
        elif t in ("unresolved", "[unresolved]"):
            raw["unresolved"] = True
            i += 1
        elif t == "nop":
            raw["action"] = "nop"
            i += 1
        elif t in _ACTIONS:
            raw["action"] = t
            i += 1
        elif t in ("proto", "protocol"):
            raw["protocol"] = val()
            i += 2
        elif t in ("map-to", "masquerade"):
            raw["action"] = "nat"  # the old route NAT (removed from the kernel in 2.6)
            i += 2 if t == "map-to" else 1
        else:
            raise ValueError(f"unknown word {t!r}")
    if "src" not in raw and "from" not in toks:
        raise ValueError("no `from` (every ip rule line says from SRC or from all)")
    if ":" in str(raw.get("src") or "") + str(raw.get("dst") or ""):
        family = "inet6"
    tos_name = raw.pop("tos_name", None)
    rule = IpRule(family=family, **raw)
    if tos_name is not None:
        setattr(rule, "tos_name", tos_name)  # noqa: B010 (a tos printed by name: kept as said)
    return rule


def _family_of_prompt(command: str) -> Optional[Literal["inet", "inet6"]]:
    words = command.split()
    if "ip" not in words or "rule" not in words and "ru" not in words:
        return None
    if "-6" in words or ("-f" in words and "inet6" in words) or "-family" in words and "inet6" in words:
        return "inet6"
    return "inet"


def _parse_text(text: str, result: ParseResult[list[IpRule]]) -> None:
    family: Literal["inet", "inet6"] = "inet"
    said = False  # the prompt said the family
    block: list[IpRule] = []

    def close_block() -> None:
        # `ip -6 rule` pasted without its prompt: a block whose addresses are all IPv6 is
        # IPv6 (its default rules too); one with no address stays as the prompt said (inet)
        if not said and any(r.family == "inet6" for r in block) and not any(
                ":" not in (r.src or r.dst or ":") for r in block if r.src or r.dst):
            for r in block:
                r.family = "inet6"
        result.value.extend(block)
        block.clear()

    for line_no, raw_line in enumerate(text.split("\n"), 1):
        line = raw_line.rstrip()
        s = line.strip()
        if not s or s in ("```", "~~~"):
            continue
        is_prompt, command = split_prompt(line)
        if is_prompt:
            close_block()
            fam = _family_of_prompt(command)
            family, said = (fam, True) if fam is not None else ("inet", False)
            continue
        m = _LINE_RE.match(line)
        if m is None:
            result.warn(line_no, line, "not an ip rule line (PRIO:<tab>from SRC … lookup TABLE)")
            continue
        try:
            block.append(_parse_body(int(m.group(1)), m.group(2), family))
        except (ValueError, TypeError) as exc:
            result.warn(line_no, line, f"cannot read this ip rule: {exc}")
    close_block()


def _json_rule(obj: dict[str, Any]) -> IpRule:
    if not isinstance(obj.get("priority"), int):
        raise ValueError("no integer priority")
    raw: dict[str, Any] = {"priority": obj["priority"]}
    if "not" in obj:
        raw["invert"] = True
    for key in ("src", "dst"):
        if obj.get(key) not in (None, "all"):
            raw[key] = _prefix(str(obj[key]), obj.get(key + "len"))
    if obj.get("tos") not in (None, ""):
        raw["tos"] = _int(str(obj["tos"])) if str(obj["tos"]).startswith("0x") or str(obj["tos"]).isdigit() else None
    if obj.get("fwmark") is not None:
        raw["fwmark"] = _int(str(obj["fwmark"]))
        raw["fwmask"] = _int(str(obj["fwmask"])) if obj.get("fwmask") is not None else _FULL
    for key in ("iif", "oif"):
        if obj.get(key):
            raw[key] = str(obj[key])
    if "iif_detached" in obj or "oif_detached" in obj:
        raw["detached"] = True
    if "l3mdev" in obj:
        raw["l3mdev"] = True
    if obj.get("uid_start") is not None:
        raw["uidrange"] = f"{int(obj['uid_start'])}-{int(obj.get('uid_end', obj['uid_start']))}"
    if obj.get("ipproto") is not None:
        raw["ipproto"] = str(obj["ipproto"])
    for key in ("sport", "dport"):
        if obj.get(key) is not None:
            raw[key] = f"{int(obj[key])}-{int(obj[key])}"
        elif obj.get(key + "_start") is not None:
            raw[key] = f"{int(obj[key + '_start'])}-{int(obj.get(key + '_end', obj[key + '_start']))}"
    if obj.get("tun_id") is not None:
        raw["tun_id"] = int(obj["tun_id"])
    if obj.get("table") is not None:
        raw["action"], raw["table"] = "lookup", str(obj["table"])
    if obj.get("suppress_prefixlen") is not None:
        raw["suppress_prefixlen"] = int(obj["suppress_prefixlen"])
    if isinstance(obj.get("suppress_ifgroup"), int):
        raw["suppress_ifgroup"] = obj["suppress_ifgroup"]
    if obj.get("flowid") or obj.get("realms"):
        raw["realms"] = str(obj.get("flowid") or obj.get("realms"))
    if obj.get("goto") is not None:
        raw["action"], raw["goto"] = "goto", int(obj["goto"])
    if "unresolved" in obj:
        raw["unresolved"] = True
    if "nop" in obj:
        raw["action"] = "nop"
    if obj.get("action"):
        raw["action"] = str(obj["action"])
    if obj.get("protocol"):
        raw["protocol"] = str(obj["protocol"])
    family: Literal["inet", "inet6"] = "inet6" if ":" in str(raw.get("src") or "") + str(raw.get("dst") or "") else "inet"
    return IpRule(family=family, **raw)


def _parse_json(data: Any, result: ParseResult[list[IpRule]], family: Optional[str]) -> None:
    if not isinstance(data, list):
        raise ParseError("ip -j rule prints a JSON array of rules", source=result.source)
    for i, obj in enumerate(data):
        if not isinstance(obj, dict):
            result.warn(1, str(obj)[:200], f"item {i} is not a rule object")
            continue
        try:
            rule = _json_rule(obj)
        except (ValueError, TypeError) as exc:
            result.warn(1, str(obj)[:200], f"item {i} is not an ip rule: {exc}")
            continue
        if family == "inet6":
            rule.family = "inet6"
        result.value.append(rule)
    if data and not result.value:
        raise ParseError("no rule in this JSON (no priority fields): not ip -j rule output", source=result.source)


def parse(text: str, *, source: str = "<input>") -> ParseResult[list[IpRule]]:
    text = check_text(text, source)
    result: ParseResult[list[IpRule]] = ParseResult(value=[], parser=INFO.name, source=source)
    body = without_prompts(text)
    if body.startswith("["):
        family = None
        for line in text.split("\n")[:5]:
            is_prompt, command = split_prompt(line)
            if is_prompt and command:
                family = _family_of_prompt(command)
        try:
            data = load_json(body)
        except ValueError as exc:
            raise ParseError(f"ip -j rule output is not valid JSON: {exc}", source=source) from None
        _parse_json(data, result, family)
        return result
    _parse_text(text, result)
    if not result.value:
        raise ParseError("no ip rule lines found (PRIO:<tab>from SRC lookup TABLE): not ip rule output",
                         source=source)
    return result


# --------------------------------------------------------------------------- records → text


def rule_text(r: IpRule) -> str:
    """One rule as ``ip rule`` prints it (without the ``PRIO:`` column)."""
    selector, action = rule_parts(r)
    return f"{selector} {action}".strip()


def rule_parts(r: IpRule) -> tuple[str, str]:
    """(the selectors, the action) as ``ip rule`` prints them: ("from all fwmark 0x10/0xff",
    "lookup 200")."""
    parts = ["not"] if r.invert else []
    parts.append(f"from {r.src or 'all'}")
    if r.dst:
        parts.append(f"to {r.dst}")
    if r.tos:
        parts.append(f"tos {r.tos:#x}")
    if r.fwmark is not None:
        parts.append(f"fwmark {r.fwmark:#x}" + (f"/{r.fwmask:#x}" if r.fwmask not in (None, _FULL) else ""))
    if r.iif:
        parts.append(f"iif {r.iif}" + (" [detached]" if r.detached else ""))
    if r.oif:
        parts.append(f"oif {r.oif}" + (" [detached]" if r.detached and not r.iif else ""))
    if r.uidrange:
        parts.append(f"uidrange {r.uidrange}")
    if r.ipproto:
        parts.append(f"ipproto {r.ipproto}")
    for key in ("sport", "dport"):
        v = getattr(r, key)
        if v:
            lo, _, hi = v.partition("-")
            parts.append(f"{key} {lo if lo == hi or not hi else v}")
    if r.tun_id:
        parts.append(f"tun_id {r.tun_id}")
    act: list[str] = []
    if r.l3mdev:
        act.append("lookup [l3mdev-table]")
    if r.action == "lookup" and r.table:
        act.append(f"lookup {r.table}")
        if r.suppress_prefixlen is not None:
            act.append(f"suppress_prefixlength {r.suppress_prefixlen}")
        if r.suppress_ifgroup is not None:
            act.append(f"suppress_ifgroup {r.suppress_ifgroup}")
    if r.realms:
        act.append(f"realms {r.realms}")
    if r.action == "goto":
        act.append(f"goto {r.goto}" + (" [unresolved]" if r.unresolved else ""))
    elif r.action not in ("lookup",):
        act.append(r.action)
    if r.protocol and r.protocol not in ("kernel", "unspec"):  # iproute2 hides these without -d
        act.append(f"proto {r.protocol}")
    return " ".join(parts), " ".join(act)


DEFAULT_RULES: dict[str, tuple[tuple[int, str], ...]] = {
    "inet": ((0, "local"), (32766, "main"), (32767, "default")),
    "inet6": ((0, "local"), (32766, "main")),
}


def is_default(r: IpRule) -> bool:
    """One of the rules the kernel creates in every namespace (0 local, 32766 main,
    32767 default; IPv6 has no 32767)."""
    if (r.priority, r.table) not in DEFAULT_RULES.get(r.family, ()) or r.action != "lookup":
        return False
    return rule_text(r) == f"from all lookup {r.table}"


def default_rules(family: Literal["inet", "inet6"]) -> list[IpRule]:
    return [IpRule(priority=p, family=family, action="lookup", table=t) for p, t in DEFAULT_RULES[family]]


def render(rules: list[IpRule], family: str = "inet") -> str:
    """``ip rule`` text (one family) in iproute2's format; :func:`parse` reads it back."""
    out = [f"{r.priority}:\t{rule_text(r)}" for r in sorted(rules, key=lambda r: r.priority) if r.family == family]
    return "\n".join(out) + ("\n" if out else "")
