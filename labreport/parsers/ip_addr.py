"""Parse ``ip link`` / ``ip addr`` (text, with or without ``-d``) and ``ip -j [-d] link|addr``
of ONE network namespace; ``bridge fdb show`` lines in the same input fill the VXLAN
devices' forwarding entries.

Usage::

    from labreport.parsers import ip_addr
    result = ip_addr.parse(text, source="worker-ip-addr.txt")
    for link in result.value:            # list[labreport.snapshot.Link]
        print(link.ifindex, link.name, link.peer_ifindex, link.link_netns, link.master)

Text format (iproute2)::

    5: veth05dbc1b4@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue master cni0 state UP group default
        link/ether 02:2a:2d:32:52:9a brd ff:ff:ff:ff:ff:ff link-netns cni-a4de7ab4-…
        inet6 fe80::2a:2dff:fe32:529a/64 scope link
           valid_lft forever preferred_lft forever

- ``name@ifN``: the peer is ifindex N (in the namespace given by ``link-netns NAME`` or
  ``link-netnsid ID``) -> ``peer_ifindex=N``; ``name@NONE``: no peer; ``name@other``
  (a VLAN on eth0, a veth whose peer is in the same namespace) -> extra field
  ``peer_name``.
- with ``-d``, the line after ``link/…`` names the kind (``veth``, ``bridge``,
  ``vxlan id 1 local 192.168.1.2 dev eth0 srcport 0 0 dstport 8472 …``) and
  ``bridge_slave`` / ``bond_slave`` lines the port role.
- ``kind`` is set only when the output states it (``-d`` text or ``linkinfo.info_kind``
  in JSON). It is NOT guessed from ``@ifN`` + ``link-netns``: macvlan/ipvlan links look
  the same. The analysis matches veths by peer index + namespace instead.
- fragments are fine: ``ip link show | grep 5`` keeps some header lines and drops
  others; ``ip link show eth0`` followed by ``ip addr`` in one paste merges by ifindex.
  Shell prompts and the typed command lines are skipped.

JSON (``ip -j``): ifindex, ifname, link_index (peer index), link_netnsid, link (peer
name), master, address, mtu, operstate, flags, addr_info[] (family, local, prefixlen,
broadcast, scope, label), linkinfo.info_kind, linkinfo.info_data (vxlan: id, local,
remote, group, port, link).

Returns ``list[Link]`` sorted by ifindex::

    {"ifindex": int, "name": str, "kind": str|None, "peer_ifindex": int|None,
     "link_netnsid": int|None, "link_netns": str|None, "master": str|None, "mac": str,
     "mtu": int, "state": str, "flags": [str], "addresses": [Address],
     "vxlan": VxlanInfo|None, "slave_kind": str|None (extra, bridge_slave → "bridge")}

Example (seed 001, pod side)::

    2: eth0@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP group default
        link/ether be:ab:81:b0:b7:72 brd ff:ff:ff:ff:ff:ff link-netnsid 0
        inet 10.244.1.2/24 brd 10.244.1.255 scope global eth0
    -> Link(ifindex=2, name="eth0", peer_ifindex=5, link_netnsid=0, mac="be:ab:81:b0:b7:72",
            mtu=1450, state="UP", addresses=[Address(family="inet", local="10.244.1.2",
            prefixlen=24, broadcast="10.244.1.255", scope="global", label="eth0")])
"""

from __future__ import annotations

import re
from typing import Any, Optional

from labreport.errors import ParseError
from labreport.parsers._common import is_prompt_line, load_json, to_int, without_prompts
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.snapshot import Address, FdbEntry, Link, NetNamespace, VxlanInfo

_LINK_RE = re.compile(r"^(?P<index>\d+):\s+(?P<name>[^\s:@]+)(?:@(?P<peer>[^\s:]+))?:\s+<(?P<flags>[^>]*)>(?P<rest>.*)$")
_ADDR_RE = re.compile(r"^\s+(?P<family>inet6?)\s+(?P<addr>\S+)(?P<rest>.*)$")
_LINKTYPE_RE = re.compile(r"^\s+link/(?P<type>\S+)(?:\s+(?P<mac>\S+))?(?P<rest>.*)$")
_FDB_RE = re.compile(r"^(?P<mac>[0-9a-f]{2}(?::[0-9a-f]{2}){5})\s+dev\s+(?P<dev>\S+)(?P<rest>.*)$")
_KINDS = {
    "veth", "bridge", "vxlan", "ipip", "gre", "gretap", "ip6gre", "ip6tnl", "sit", "tun", "tap", "dummy",
    "vlan", "macvlan", "macvtap", "ipvlan", "ipvtap", "wireguard", "bond", "team", "geneve", "vrf",
    "nlmon", "ifb", "openvswitch", "erspan", "xfrm", "netkit",
}
_FDB_FLAGS = {"self", "master", "permanent", "static", "router", "extern_learn", "sticky", "offload", "dynamic"}
_ADDR_FLAGS = {
    "dynamic", "noprefixroute", "secondary", "primary", "deprecated", "tentative", "permanent",
    "temporary", "mngtmpaddr", "home", "nodad", "optimistic", "dadfailed", "autojoin", "stable-privacy",
}


def _detect(text: str) -> float:
    head = text[:6000]
    s = head.lstrip()
    if s.startswith("[") and '"ifindex"' in head and '"ifname"' in head:
        return 0.95
    lines = head.splitlines()[:40]
    hits = sum(1 for ln in lines if _LINK_RE.match(ln.strip()))
    if hits and any(re.match(r"^\s+(link/|inet6? )", ln) for ln in lines):
        return 0.95
    if hits:
        return 0.7
    return 0.0


INFO = ParserInfo(
    name="ip-addr",
    commands=("ip addr", "ip link", "ip -d link", "ip -j -d addr", "ip netns exec NS ip addr", "bridge fdb show"),
    description="network devices of one namespace: veth peers, bridges, VXLAN, addresses",
    detect=_detect,
    target="netns",
)


# ----------------------------------------------------------------------------- text


def _kv(tokens: list[str], key: str) -> Optional[str]:
    try:
        i = tokens.index(key)
    except ValueError:
        return None
    return tokens[i + 1] if i + 1 < len(tokens) else None


def _new_raw(m: re.Match[str]) -> dict[str, Any]:
    rest = m.group("rest").split()
    return {
        "ifindex": m.group("index"),
        "name": m.group("name"),
        "peer": m.group("peer"),
        "flags": [f for f in m.group("flags").split(",") if f],
        "mtu": _kv(rest, "mtu"),
        "master": _kv(rest, "master"),
        "state": _kv(rest, "state"),
        "addresses": [],
    }


def _merge(old: dict[str, Any], new: dict[str, Any]) -> None:
    """The same link printed twice (``ip link show eth0`` then ``ip addr``): keep both's facts."""
    for k, v in new.items():
        if k == "addresses":
            seen = {(a["family"], a["addr"]) for a in old["addresses"]}
            old["addresses"].extend(a for a in v if (a["family"], a["addr"]) not in seen)
        elif v not in (None, [], "") and old.get(k) in (None, [], ""):
            old[k] = v


def _parse_text(text: str, result: ParseResult[list[Link]]) -> None:
    links: dict[int, dict[str, Any]] = {}
    fdb: list[tuple[int, str, dict[str, str]]] = []
    cur: Optional[dict[str, Any]] = None
    for line_no, raw_line in enumerate(text.split("\n"), 1):
        line = raw_line.rstrip()
        stripped = line.strip()
        if not stripped or stripped in ("```", "~~~"):
            continue
        m = _LINK_RE.match(stripped)
        if m:
            raw = _new_raw(m)
            idx = int(raw["ifindex"])
            if idx in links:
                _merge(links[idx], raw)
                cur = links[idx]
            else:
                links[idx] = cur = raw
            continue
        if is_prompt_line(line):
            cur = None
            continue
        fm = _FDB_RE.match(stripped)
        if fm and not line.startswith((" ", "\t")):
            toks = fm.group("rest").split()
            fdb.append((line_no, line, {"mac": fm.group("mac"), "dev": fm.group("dev"), "dst": _kv(toks, "dst") or "",
                                        "vlan": _kv(toks, "vlan") or "",
                                        "flags": " ".join(t for t in toks if t in ("self", "permanent", "static", "master", "router", "extern_learn", "sticky"))}))
            continue
        if cur is None:
            result.warn(line_no, line, "detail line without a device line before it")
            continue
        lm = _LINKTYPE_RE.match(line)
        if lm:
            cur["link_type"] = lm.group("type")
            if lm.group("type") in ("ether", "loopback", "ieee802.11", "infiniband") and lm.group("mac"):
                cur["mac"] = lm.group("mac")
            toks = ((lm.group("mac") or "") + " " + lm.group("rest")).split()
            if "link-netns" in toks:
                cur["link_netns"] = _kv(toks, "link-netns")
            if "link-netnsid" in toks:
                cur["link_netnsid"] = _kv(toks, "link-netnsid")
            continue
        am = _ADDR_RE.match(line)
        if am:
            toks = am.group("rest").split()
            addr = {"family": am.group("family"), "addr": am.group("addr"), "brd": _kv(toks, "brd"),
                    "scope": _kv(toks, "scope"), "peer": _kv(toks, "peer")}
            # the label is the last word when it is not a flag/value ("scope global dynamic eth0")
            consumed = set()
            for key in ("brd", "scope", "peer", "metric", "proto"):
                if key in toks:
                    i = toks.index(key)
                    consumed.update({i, i + 1})
            leftovers = [t for i, t in enumerate(toks) if i not in consumed and t not in _ADDR_FLAGS]
            if am.group("family") == "inet" and leftovers:
                addr["label"] = leftovers[-1]
            cur["addresses"].append(addr)
            continue
        first = stripped.split()[0]
        if re.match(r"^(valid_lft|altname|prop|promiscuity|alias|vf\s)", stripped):
            if first == "altname":
                cur.setdefault("altnames", []).append(stripped.split()[1] if len(stripped.split()) > 1 else "")
            continue
        if first in _KINDS:
            cur["kind"] = first
            if first == "vxlan":
                toks = stripped.split()
                cur["vxlan"] = {"vni": _kv(toks, "id"), "local": _kv(toks, "local"), "remote": _kv(toks, "remote"),
                                "group": _kv(toks, "group"), "port": _kv(toks, "dstport"), "dev": _kv(toks, "dev")}
            continue
        if first.endswith("_slave"):
            cur["slave_kind"] = first[: -len("_slave")]
            continue
        if line.startswith((" ", "\t")):
            # other -d detail lines (numtxqueues …, addrgenmode …): nothing we record
            continue
        result.warn(line_no, line, "not an ip link/addr line")
    for idx in sorted(links):
        try:
            result.value.append(_convert_text(links[idx]))
        except (ValueError, TypeError) as exc:
            result.warn(0, f"{idx}: {links[idx].get('name')}", f"cannot convert link: {exc}")
    _attach_fdb(result, fdb)


def _convert_text(raw: dict[str, Any]) -> Link:
    """The one place where the text fields become a typed Link."""
    peer = raw.get("peer")
    peer_ifindex = None
    extra: dict[str, Any] = {}
    if peer and re.fullmatch(r"if\d+", peer):
        peer_ifindex = int(peer[2:])
    elif peer and peer != "NONE":
        extra["peer_name"] = peer
    addresses = []
    for a in raw["addresses"]:
        local, _, plen = a["addr"].partition("/")
        if a.get("peer"):  # "inet 10.0.0.1 peer 10.0.0.2/32": the prefix is the peer's
            plen = a["peer"].partition("/")[2]
        addresses.append(Address(
            family=a["family"], local=local,
            prefixlen=int(plen) if plen.isdigit() else (32 if a["family"] == "inet" else 128),
            scope=a.get("scope"), broadcast=a.get("brd"), label=a.get("label"),
        ))
    vx = raw.get("vxlan")
    vxlan = None
    if vx:
        vxlan = VxlanInfo(vni=to_int(vx.get("vni")), local=vx.get("local"), remote=vx.get("remote"),
                          group=vx.get("group"), port=to_int(vx.get("port")), dev=vx.get("dev"))
    if raw.get("slave_kind"):
        extra["slave_kind"] = raw["slave_kind"]
    if raw.get("link_type"):
        extra["link_type"] = raw["link_type"]
    return Link(
        ifindex=int(raw["ifindex"]),
        name=raw["name"],
        kind=raw.get("kind"),
        peer_ifindex=peer_ifindex,
        link_netnsid=to_int(raw.get("link_netnsid")),
        link_netns=raw.get("link_netns"),
        master=raw.get("master"),
        mac=raw.get("mac"),
        mtu=to_int(raw.get("mtu")),
        state=raw.get("state"),
        flags=raw["flags"],
        addresses=addresses,
        vxlan=vxlan,
        **extra,
    )


def _attach_fdb(result: ParseResult[list[Link]], fdb: list[tuple[int, str, dict[str, str]]]) -> None:
    by_name = {link.name: link for link in result.value}
    for line_no, line, e in fdb:
        link = by_name.get(e["dev"])
        if link is None:
            result.warn(line_no, line, f"fdb entry for {e['dev']}, which is not in this output")
            continue
        if link.kind not in (None, "vxlan") or (link.kind is None and link.vxlan is None and not e["dst"]):
            continue  # bridge port entries: not what the report needs
        if link.vxlan is None:
            link.vxlan = VxlanInfo()
        link.vxlan.fdb.append(FdbEntry(mac=e["mac"], dst=e["dst"] or None, dev=e["dev"],
                                       vlan=to_int(e["vlan"]), flags=e["flags"].split()))


def parse_fdb(text: str, *, source: str = "<input>") -> ParseResult[list[FdbEntry]]:
    """``bridge fdb show`` alone (text or ``bridge -j fdb show``): every entry, for the
    caller to attach to the links of the same namespace (``attach_fdb``)."""
    text = check_text(text, source)
    result: ParseResult[list[FdbEntry]] = ParseResult(value=[], parser="bridge-fdb", source=source)
    body = without_prompts(text)
    if body.startswith("["):
        try:
            data = load_json(body)
        except ValueError as exc:
            raise ParseError(f"bridge -j fdb output is not valid JSON: {exc}", source=source) from None
        for i, e in enumerate(data if isinstance(data, list) else []):
            if isinstance(e, dict) and isinstance(e.get("mac"), str) and isinstance(e.get("ifname"), str):
                flags = [str(f) for f in e.get("flags") or [] if isinstance(f, str)]
                if e.get("state"):
                    flags.append(str(e["state"]))
                result.value.append(FdbEntry(mac=e["mac"], dst=e.get("dst") if isinstance(e.get("dst"), str) else None,
                                             dev=e["ifname"], vlan=to_int(e.get("vlan")), flags=flags))
            else:
                result.warn(1, str(e)[:200], f"item {i} is not an fdb entry (mac, ifname)")
        if not result.value:
            raise ParseError("no fdb entry (mac, ifname) in this JSON: not bridge -j fdb show", source=source)
        return result
    for line_no, line in enumerate(text.split("\n"), 1):
        s = line.strip()
        if not s or s in ("```", "~~~") or is_prompt_line(line):
            continue
        m = _FDB_RE.match(s)
        if not m:
            result.warn(line_no, line, "not a bridge fdb line (MAC dev DEV …)")
            continue
        toks = m.group("rest").split()
        result.value.append(FdbEntry(mac=m.group("mac"), dev=m.group("dev"), dst=_kv(toks, "dst"),
                                     vlan=to_int(_kv(toks, "vlan")),
                                     flags=[t for t in toks if t in _FDB_FLAGS]))
    if not result.value:
        raise ParseError("no bridge fdb lines (MAC dev DEV …) found", source=source)
    return result


def attach_fdb(links: list[Link], entries: list[FdbEntry]) -> int:
    """Put the entries of tunnel devices (a VXLAN, or any device whose entries have a
    ``dst``) on their link's ``vxlan.fdb``; bridge port entries are not kept. Returns how
    many were attached."""
    by_name = {link.name: link for link in links}
    n = 0
    for e in entries:
        link = by_name.get(e.dev or "")
        if link is None or not (link.kind == "vxlan" or (link.kind is None and e.dst)):
            continue
        if link.vxlan is None:
            link.vxlan = VxlanInfo()
        if not any(f.mac == e.mac and f.dst == e.dst for f in link.vxlan.fdb):
            link.vxlan.fdb.append(e)
            n += 1
    return n


# ----------------------------------------------------------------------------- JSON


def _convert_json(obj: dict[str, Any]) -> Link:
    """The one place where ``ip -j`` fields become a typed Link."""
    info = obj.get("linkinfo") if isinstance(obj.get("linkinfo"), dict) else {}
    kind = info.get("info_kind") or None
    data = info.get("info_data") if isinstance(info.get("info_data"), dict) else {}
    vxlan = None
    if kind == "vxlan":
        vxlan = VxlanInfo(vni=to_int(data.get("id")), local=data.get("local") or data.get("local6"),
                          remote=data.get("remote") or data.get("remote6"), group=data.get("group") or data.get("group6"),
                          port=to_int(data.get("port")), dev=data.get("link") if isinstance(data.get("link"), str) else None)
    addresses = []
    for a in obj.get("addr_info") or []:
        if not isinstance(a, dict) or a.get("family") not in ("inet", "inet6") or not a.get("local"):
            continue
        addresses.append(Address(family=a["family"], local=str(a["local"]), prefixlen=int(a.get("prefixlen", 0)),
                                 scope=a.get("scope"), broadcast=a.get("broadcast"), label=a.get("label")))
    extra: dict[str, Any] = {}
    if isinstance(obj.get("link"), str):
        extra["peer_name"] = obj["link"]
    if info.get("info_slave_kind"):
        extra["slave_kind"] = info["info_slave_kind"]
    if obj.get("link_type"):
        extra["link_type"] = obj["link_type"]
    flags = obj.get("flags") if isinstance(obj.get("flags"), list) else []
    return Link(
        ifindex=int(obj["ifindex"]),
        name=str(obj["ifname"]),
        kind=kind,
        peer_ifindex=to_int(obj.get("link_index")),
        link_netnsid=to_int(obj.get("link_netnsid")),
        master=obj.get("master"),
        mac=obj.get("address"),
        mtu=to_int(obj.get("mtu")),
        state=obj.get("operstate"),
        flags=[str(f) for f in flags],
        addresses=addresses,
        vxlan=vxlan,
        **extra,
    )


def _parse_json(data: Any, result: ParseResult[list[Link]]) -> None:
    if not isinstance(data, list):
        raise ParseError("ip -j prints a JSON array of links", source=result.source)
    by_index: dict[int, Link] = {}
    for i, obj in enumerate(data):
        if not isinstance(obj, dict) or "ifindex" not in obj or "ifname" not in obj:
            if isinstance(obj, dict) and obj == {}:
                continue  # "ip -j addr" prints {} for links filtered out
            result.warn(1, str(obj)[:200], f"item {i} is not a link (no ifindex/ifname)")
            continue
        try:
            link = _convert_json(obj)
        except (ValueError, TypeError, KeyError) as exc:
            result.warn(1, str(obj)[:200], f"item {i}: {exc}")
            continue
        by_index[link.ifindex] = link
    if data and not by_index:
        raise ParseError("no link in this JSON (no ifindex/ifname): not ip -j link/addr output", source=result.source)
    result.value.extend(by_index[i] for i in sorted(by_index))


def parse(text: str, *, source: str = "<input>") -> ParseResult[list[Link]]:
    text = check_text(text, source)
    result: ParseResult[list[Link]] = ParseResult(value=[], parser=INFO.name, source=source)
    body = without_prompts(text)
    if body.startswith("["):
        try:
            data = load_json(body)
        except ValueError as exc:
            raise ParseError(f"ip -j output is not valid JSON: {exc}", source=source) from None
        _parse_json(data, result)
        return result
    _parse_text(text, result)
    if not result.value:
        raise ParseError("no network device lines (N: name: <FLAGS> …) found: not ip link/addr output", source=source)
    return result


# --------------------------------------------------------------------------- records → text


def render(ns: NetNamespace, raw_by_index: Optional[dict[int, dict[str, Any]]] = None) -> str:
    """``ip addr`` text in iproute2's format from a namespace's records (the collector's
    evidence when no real ``ip`` output was taken: ``origin="synthesized"``). ``raw_by_index``
    adds what netlink gives beyond the records (qdisc, txqlen, link type, broadcast MAC).
    :func:`parse` reads the text back into the same links (tests/test_parsers_render.py)."""
    raw_by_index = raw_by_index or {}
    nsid_names = ns.nsids
    lines = []
    for ln in sorted(ns.links, key=lambda x: x.ifindex):
        raw = raw_by_index.get(ln.ifindex, {})
        name = ln.name + (f"@if{ln.peer_ifindex}" if ln.peer_ifindex else "")
        head = f"{ln.ifindex}: {name}: <{','.join(ln.flags)}> mtu {ln.mtu}"
        if raw.get("qdisc"):
            head += f" qdisc {raw['qdisc']}"
        if ln.master:
            head += f" master {ln.master}"
        head += f" state {ln.state or 'UNKNOWN'} group default"
        if raw.get("txqlen") is not None:
            head += f" qlen {raw['txqlen']}"
        lines.append(head)
        ltype = "loopback" if raw.get("link_type") == 772 or (not raw and "LOOPBACK" in ln.flags) else "ether"
        body = f"    link/{ltype} {ln.mac or '00:00:00:00:00:00'}"
        if raw.get("brd"):
            body += f" brd {raw['brd']}"
        if ln.link_netnsid is not None:
            body += f" link-netns {nsid_names[ln.link_netnsid]}" if ln.link_netnsid in nsid_names \
                else f" link-netnsid {ln.link_netnsid}"
        elif ln.link_netns:
            body += f" link-netns {ln.link_netns}"
        lines.append(body)
        for a in ln.addresses:
            text = f"    {a.family} {a.local}/{a.prefixlen}"
            if a.broadcast:
                text += f" brd {a.broadcast}"
            text += f" scope {a.scope}"
            if a.family == "inet":
                text += f" {a.label or ln.name}"
            lines.append(text)
            lines.append("       valid_lft forever preferred_lft forever")
    return "\n".join(lines) + ("\n" if lines else "")
