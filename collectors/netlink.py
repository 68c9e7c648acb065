"""Network namespaces, links, addresses, routes (every table), ip rules, neighbours and VXLAN FDBs via netlink
(rtnetlink dumps decoded by :mod:`collectors.rtnl`), plus `ip addr` / `ip route` text per
namespace as evidence.

Namespaces read:
  - the node's own: the namespace labreport runs in (``ip netns exec NODE labreport …``
    makes NODE the node), kind="node";
  - every named one under /var/run/netns, kind="named";
  - the network namespace of every sandbox/container pid the CRI and Docker collectors
    found (``/proc/<pid>/ns/net``: Docker pods have no name), kind="pid".
They are deduplicated by the inode of their nsfs file.

How a namespace is entered: its file is opened once (the open fd keeps it alive, so a
namespace deleted mid-collection is either read whole or reported with
``NetNamespace.error``), then a netlink socket is created *inside* it by switching only the
calling thread (setns(2) on the thread, socket(), setns back) — what pyroute2's
``IPRoute(netns=…)`` does in a forked helper, without the fork (about 1 ms instead of
7 ms per namespace, and no fork from a process that holds gRPC threads). A namespace file
is never created (pyroute2's default O_CREAT is not used). Not root: setns fails, so only
the node's own namespace is read and every other one says why.

link-netnsid: a veth's IFLA_LINK_NETNSID is a number local to the namespace printing it.
For each namespace X, the numbers its links use are resolved by asking X's socket
(RTM_GETNSID with NETNSA_FD) for the nsid X assigned to each candidate namespace — the
node's first, then the namespaces holding many cross-namespace links — and stored in
``X.nsids`` (number → namespace name); RTM_GETNSID never assigns a new id.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Optional

from collectors.base import (
    CollectContext,
    Collector,
    CollectorOutput,
    CommandSpec,
    Need,
    synthesized,
)
from labreport.snapshot import (
    Address,
    Evidence,
    FdbEntry,
    IpRule,
    Link,
    NetNamespace,
    Neighbour,
    Route,
    VxlanInfo,
)
from collectors import rtnl
from labreport.parsers.ip_addr import render as render_ip_addr
from labreport.parsers.ip_route import render as render_ip_route
from labreport.parsers.ip_rule import is_default
from labreport.parsers.ip_rule import render as render_ip_rule

CLONE_NEWNET = 0x40000000
NETLINK_ROUTE = 0
AF_BRIDGE = 7

_libc = ctypes.CDLL(None, use_errno=True)
_setns_lock = threading.Lock()  # one thread switching at a time keeps failures simple


class NamespaceSwitchError(RuntimeError):
    """The thread could not return to its own namespace: stop, never read the wrong one."""


def sockets_in_netns(ns_fd: int, count: int = 2) -> list[socket.socket]:
    """NETLINK_ROUTE sockets created inside the namespace ``ns_fd`` (thread-local setns)."""
    with _setns_lock:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            if _libc.setns(ns_fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            try:
                return [socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE) for _ in range(count)]
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise NamespaceSwitchError(f"cannot return to the original namespace: {os.strerror(err)}")
        finally:
            os.close(own)


RTM_NEWNSID, RTM_GETNSID = 88, 90
NETNSA_NSID, NETNSA_FD = 1, 3
NLM_F_REQUEST = 1
NLMSG_ERROR = 2


def query_nsid(sock: socket.socket, target_fd: int, seq: int = 1) -> Optional[int]:
    """RTM_GETNSID: the nsid the socket's namespace assigned to the namespace ``target_fd``
    (None when it has assigned none; the query never assigns one)."""
    attr = struct.pack("=HHI", 8, NETNSA_FD, target_fd)
    body = struct.pack("=Bxxx", socket.AF_UNSPEC) + attr
    msg = struct.pack("=IHHII", 16 + len(body), RTM_GETNSID, NLM_F_REQUEST, seq, 0) + body
    sock.send(msg)
    data = sock.recv(65536)
    off = 0
    while off + 16 <= len(data):
        length, mtype, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, off)
        if length < 16:
            break
        if mtype == NLMSG_ERROR:
            return None
        if mtype == RTM_NEWNSID:
            pos = off + 16 + 4
            end = off + length
            while pos + 4 <= end:
                alen, atype = struct.unpack_from("=HH", data, pos)
                if alen < 4:
                    break
                if atype == NETNSA_NSID and alen >= 8:
                    (nsid,) = struct.unpack_from("=i", data, pos + 4)
                    return nsid if nsid >= 0 else None
                pos += (alen + 3) & ~3
            return None
        off += (length + 3) & ~3
    return None


RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE, RTM_GETNEIGH, RTM_GETRULE = 18, 22, 26, 30, 34
NLM_F_DUMP = 0x300
NLMSG_DONE = 3
_HDR = {  # the family header each dump request carries (family filled in)
    RTM_GETLINK: "=BxHiII",  # ifinfomsg: family, type, index, flags, change
    RTM_GETADDR: "=BBBBi",  # ifaddrmsg: family, prefixlen, flags, scope, index
    RTM_GETROUTE: "=BBBBBBBBI",  # rtmsg
    RTM_GETNEIGH: "=BxxxiHBB",  # ndmsg
    RTM_GETRULE: "=BBBBBBBBI",  # fib_rule_hdr
}
_marshal_local = threading.local()


def _marshal() -> Any:
    m = getattr(_marshal_local, "m", None)
    if m is None:
        from pyroute2.netlink.rtnl.marshal import MarshalRtnl

        m = _marshal_local.m = MarshalRtnl()
    return m


# What is decoded: only the attributes the records use (a bridge port's link message
# also carries ~40 bridge-slave attributes, inet6 settings and statistics; decoding those
# with pyroute2 cost more than everything else together on a 200-pod node).
_LINK_KEEP = {1, 2, 3, 4, 5, 6, 10, 13, 16, 18, 37}  # ADDRESS BROADCAST IFNAME MTU LINK QDISC MASTER
#                                                    TXQLEN OPERSTATE LINKINFO LINK_NETNSID
_LINKINFO_KEEP = {1, 2}  # IFLA_INFO_KIND, IFLA_INFO_DATA
_FAMILY_HDR = {RTM_GETLINK: 16, RTM_GETADDR: 8, RTM_GETROUTE: 12, RTM_GETNEIGH: 12, RTM_GETRULE: 12}
NLA_TYPE_MASK = 0x3FFF


def _filter_attrs(buf: bytes, keep: set[int], nested: Optional[dict[int, set[int]]] = None) -> bytes:
    out = []
    pos = 0
    while pos + 4 <= len(buf):
        alen, atype = struct.unpack_from("=HH", buf, pos)
        if alen < 4:
            break
        t = atype & NLA_TYPE_MASK
        if t in keep:
            chunk = buf[pos:pos + alen]
            if nested and t in nested:
                inner = _filter_attrs(chunk[4:], nested[t])
                chunk = struct.pack("=HH", 4 + len(inner), atype) + inner
            out.append(chunk + b"\0" * (-len(chunk) % 4))
        pos += (alen + 3) & ~3
    return b"".join(out)


def _slim(data: bytes, mtype: int) -> bytes:
    """Keep the messages and attributes the records need (see _LINK_KEEP); the kernel's own
    routes of the local table (this host's addresses, proto kernel) are dropped here."""
    fam_len = _FAMILY_HDR[mtype]
    out = []
    off = 0
    while off + 16 <= len(data):
        length, t, flags, seq, pid = struct.unpack_from("=IHHII", data, off)
        if length < 16:
            break
        msg = data[off:off + length]
        off += (length + 3) & ~3
        if mtype == RTM_GETROUTE and len(msg) >= 16 + fam_len and msg[16 + 4] == 255 and msg[16 + 5] == 2:
            continue
        if mtype == RTM_GETLINK and len(msg) >= 16 + fam_len:
            attrs = _filter_attrs(msg[16 + fam_len:], _LINK_KEEP, {18: _LINKINFO_KEEP})
            body = msg[16:16 + fam_len] + attrs
            msg = struct.pack("=IHHII", 16 + len(body), t, flags, seq, pid) + body
        out.append(msg + b"\0" * (-len(msg) % 4))
    return b"".join(out)


def nl_dump_bytes(sock: socket.socket, mtype: int, family: int = socket.AF_UNSPEC, seq: int = 1) -> bytes:
    """One RTM_GET* dump on ``sock``: the messages' bytes (up to NLMSG_DONE). Raises
    OSError with the kernel's errno when the dump fails."""
    fmt = _HDR[mtype]
    nfields = len(struct.unpack(fmt, bytes(struct.calcsize(fmt))))
    body = struct.pack(fmt, family, *([0] * (nfields - 1)))
    sock.send(struct.pack("=IHHII", 16 + len(body), mtype, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
    chunks = []
    done = False
    while not done:
        data = sock.recv(1 << 20)
        if not data:
            break
        off = 0
        while off + 16 <= len(data):
            length, t = struct.unpack_from("=IH", data, off)
            if length < 16:
                break
            if t == NLMSG_DONE:
                done = True
                break
            if t == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, off + 16)
                if code:
                    raise OSError(-code, os.strerror(-code))
            off += (length + 3) & ~3
        chunks.append(data[:off])
    return b"".join(chunks)


def nl_dump(sock: socket.socket, mtype: int, family: int = socket.AF_UNSPEC, seq: int = 1) -> list[Any]:
    """One RTM_GET* dump on ``sock``, decoded (:mod:`collectors.rtnl`)."""
    return rtnl.decode(nl_dump_bytes(sock, mtype, family, seq))


def nl_dump_pyroute2(sock: socket.socket, mtype: int, family: int = socket.AF_UNSPEC, seq: int = 1) -> list[Any]:
    """The same dump decoded by pyroute2's rtnl marshal (tests compare the two)."""
    data = _slim(nl_dump_bytes(sock, mtype, family, seq), mtype)
    return [m for m in _marshal().parse(data) if m["header"]["type"] not in (NLMSG_DONE, NLMSG_ERROR)]


# --------------------------------------------------------------------------- decoding

_IFF = [  # iproute2's print_link_flags order
    (0x8, "LOOPBACK"), (0x2, "BROADCAST"), (0x10, "POINTOPOINT"), (0x1000, "MULTICAST"),
    (0x80, "NOARP"), (0x200, "ALLMULTI"), (0x100, "PROMISC"), (0x400, "MASTER"),
    (0x800, "SLAVE"), (0x4, "DEBUG"), (0x8000, "DYNAMIC"), (0x4000, "AUTOMEDIA"),
    (0x2000, "PORTSEL"), (0x20, "NOTRAILERS"), (0x1, "UP"), (0x10000, "LOWER_UP"),
    (0x20000, "DORMANT"), (0x40000, "ECHO"),
]
IFF_UP, IFF_RUNNING = 0x1, 0x40

_SCOPES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
_PROTOS = {0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated", 9: "ra",
           10: "mrt", 11: "zebra", 12: "bird", 13: "dnrouted", 14: "xorp", 15: "ntk", 16: "dhcp",
           42: "babel", 186: "bgp", 187: "isis", 188: "ospf", 189: "rip", 192: "eigrp"}
_TABLES = {253: "default", 254: "main", 255: "local"}
_RTYPES = {1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole",
           7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat", 11: "xresolve"}
_NUD = [(0x01, "INCOMPLETE"), (0x02, "REACHABLE"), (0x04, "STALE"), (0x08, "DELAY"), (0x10, "PROBE"),
        (0x20, "FAILED"), (0x40, "NOARP"), (0x80, "PERMANENT")]
_FDB_FLAGS = [(0x02, "self"), (0x04, "master"), (0x08, "extern_learn"), (0x10, "offload"), (0x80, "router")]
RTNH_F_ONLINK = 4


def link_flags(ifi_flags: int) -> list[str]:
    flags = []
    if ifi_flags & IFF_UP and not ifi_flags & IFF_RUNNING:
        flags.append("NO-CARRIER")
    flags.extend(name for bit, name in _IFF if ifi_flags & bit)
    return flags


def _nud(state: int) -> Optional[str]:
    names = [n for bit, n in _NUD if state & bit]
    return ",".join(names) if names else ("NONE" if state == 0 else None)


def _attr(msg: Any, name: str) -> Any:
    try:
        return msg.get_attr(name)
    except Exception:
        return None


def decode_link(msg: Any) -> tuple[Link, dict[str, Any]]:
    """The Link record, and raw values kept for names and the `ip addr` text."""
    ifindex = msg["index"]
    name = _attr(msg, "IFLA_IFNAME") or f"if{ifindex}"
    kind = None
    vxlan = None
    extra: dict[str, Any] = {}
    linkinfo = _attr(msg, "IFLA_LINKINFO")
    if linkinfo is not None:
        kind = _attr(linkinfo, "IFLA_INFO_KIND")
        data = _attr(linkinfo, "IFLA_INFO_DATA")
        if kind == "vxlan" and data is not None:
            group = _attr(data, "IFLA_VXLAN_GROUP") or _attr(data, "IFLA_VXLAN_GROUP6")
            remote = None
            if group:
                try:
                    if not ipaddress.ip_address(group).is_multicast:
                        remote, group = group, None
                except ValueError:
                    pass
            vxlan = VxlanInfo(
                vni=_attr(data, "IFLA_VXLAN_ID"),
                local=_attr(data, "IFLA_VXLAN_LOCAL") or _attr(data, "IFLA_VXLAN_LOCAL6"),
                remote=remote,
                group=group,
                port=_attr(data, "IFLA_VXLAN_PORT"),
            )
            dev_index = _attr(data, "IFLA_VXLAN_LINK")
            if dev_index:
                extra["_vxlan_dev_index"] = dev_index
        elif kind in ("ipip", "gre", "gretap", "sit", "ip6tnl", "ip6gre", "vti") and data is not None:
            tun = {}
            for key, attr in (("local", "_LOCAL"), ("remote", "_REMOTE")):
                for prefix in ("IFLA_IPTUN", "IFLA_GRE", "IFLA_VTI"):
                    val = _attr(data, prefix + attr)
                    if val:
                        tun[key] = val
                        break
            if tun:
                extra["tunnel"] = tun
        elif kind == "bridge" and data is not None:
            stp = _attr(data, "IFLA_BR_STP_STATE")
            if stp is not None:
                extra["bridge_stp"] = bool(stp)
    peer = _attr(msg, "IFLA_LINK")
    netnsid = _attr(msg, "IFLA_LINK_NETNSID")
    if peer and peer == ifindex and netnsid is None:
        peer = None  # a device naming itself (same namespace): no peer to show
    operstate = _attr(msg, "IFLA_OPERSTATE")
    link = Link(
        ifindex=ifindex,
        name=name,
        kind=kind,
        peer_ifindex=peer or None,  # eth0@if2 may pair with another namespace's ifindex 2
        link_netnsid=netnsid,
        mac=_attr(msg, "IFLA_ADDRESS"),
        mtu=_attr(msg, "IFLA_MTU"),
        state=operstate if isinstance(operstate, str) else None,
        flags=link_flags(msg["flags"]),
        vxlan=vxlan,
        **{k: v for k, v in extra.items() if not k.startswith("_")},
    )
    raw = {
        "master": _attr(msg, "IFLA_MASTER"),
        "qdisc": _attr(msg, "IFLA_QDISC"),
        "txqlen": _attr(msg, "IFLA_TXQLEN"),
        "brd": _attr(msg, "IFLA_BROADCAST"),
        "link_type": msg["ifi_type"],
        "vxlan_dev": extra.get("_vxlan_dev_index"),
    }
    return link, raw


def decode_addr(msg: Any) -> tuple[int, Address]:
    family: Literal["inet", "inet6"] = "inet6" if msg["family"] == socket.AF_INET6 else "inet"
    local = _attr(msg, "IFA_LOCAL") or _attr(msg, "IFA_ADDRESS")
    return msg["index"], Address(
        family=family,
        local=local,
        prefixlen=msg["prefixlen"],
        scope=_SCOPES.get(msg["scope"], str(msg["scope"])),
        broadcast=_attr(msg, "IFA_BROADCAST"),
        label=_attr(msg, "IFA_LABEL") if family == "inet" else None,
    )


def decode_route(msg: Any, names: dict[int, str]) -> Optional[Route]:
    table = _attr(msg, "RTA_TABLE") or msg["table"]
    if table == 255 and msg["proto"] == 2:
        # the kernel's entries of the local table: this host's addresses and broadcasts, which
        # the addresses already say; routes someone added there (`ip route add local
        # 10.0.0.0/8 dev lo`, AnyIP for TPROXY) are kept
        return None
    family: Literal["inet", "inet6"] = "inet6" if msg["family"] == socket.AF_INET6 else "inet"
    dst = _attr(msg, "RTA_DST")
    dst_s = f"{dst}/{msg['dst_len']}" if dst else ("default" if msg["dst_len"] == 0 else f"::/{msg['dst_len']}")
    if dst and ((family == "inet" and msg["dst_len"] == 32) or (family == "inet6" and msg["dst_len"] == 128)):
        dst_s = dst
    oif = _attr(msg, "RTA_OIF")
    gateway = _attr(msg, "RTA_GATEWAY")
    mp = _attr(msg, "RTA_MULTIPATH")
    if gateway is None and mp:
        first = mp[0]
        gateway = _attr(first, "RTA_GATEWAY")
        oif = oif or first.get("oif")
    rtype = _RTYPES.get(msg["type"], str(msg["type"]))
    return Route(
        dst=dst_s,
        gateway=gateway,
        dev=names.get(oif) if oif else None,
        protocol=_PROTOS.get(msg["proto"], str(msg["proto"])),
        scope=_SCOPES.get(msg["scope"], str(msg["scope"])),
        src=_attr(msg, "RTA_PREFSRC"),
        table=_TABLES.get(table, str(table)),
        type=rtype,
        metric=_attr(msg, "RTA_PRIORITY"),
        onlink=bool(msg["flags"] & RTNH_F_ONLINK),
        family=family,
    )


_RULE_ACTIONS = {1: "lookup", 2: "goto", 3: "nop", 6: "blackhole", 7: "unreachable", 8: "prohibit"}
_IPPROTOS = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp", 136: "udplite"}
FIB_RULE_INVERT, FIB_RULE_UNRESOLVED, FIB_RULE_IIF_DETACHED, FIB_RULE_OIF_DETACHED = 0x2, 0x4, 0x8, 0x10
_UNSET = 0xFFFFFFFF


def decode_rule(msg: Any) -> IpRule:
    """One RTM_NEWRULE message as an IpRule (what ``ip rule`` prints of it)."""
    family: Literal["inet", "inet6"] = "inet6" if msg["family"] == socket.AF_INET6 else "inet"
    action = _RULE_ACTIONS.get(msg["action"], str(msg["action"]))
    table = _attr(msg, "FRA_TABLE") or msg["table"]
    src, dst = _attr(msg, "FRA_SRC"), _attr(msg, "FRA_DST")
    full = 32 if family == "inet" else 128
    mark, mask = _attr(msg, "FRA_FWMARK"), _attr(msg, "FRA_FWMASK")
    if mark is None:
        # the kernel sends FRA_FWMASK 0 with no FRA_FWMARK for a rule without a mark
        mask = None if not mask else mask
        mark = 0 if mask else None
    elif mask is None:
        mask = _UNSET
    sup, group = _attr(msg, "FRA_SUPPRESS_PREFIXLEN"), _attr(msg, "FRA_SUPPRESS_IFGROUP")
    ipproto = _attr(msg, "FRA_IP_PROTO")
    proto = _attr(msg, "FRA_PROTOCOL")
    flow = _attr(msg, "FRA_FLOW")

    def rng(name: str) -> Optional[str]:
        v = _attr(msg, name)
        return str(v).replace(":", "-") if v else None

    flags = msg["flags"]
    # model_construct: every value is typed here already (a 200-pod node has 1,000 rules)
    return IpRule.model_construct(
        priority=_attr(msg, "FRA_PRIORITY") or 0,
        family=family,
        action=action,
        table=_TABLES.get(table, str(table)) if action == "lookup" and table else None,
        goto=_attr(msg, "FRA_GOTO") if action == "goto" else None,
        src=(src if msg["src_len"] == full else f"{src}/{msg['src_len']}") if src else None,
        dst=(dst if msg["dst_len"] == full else f"{dst}/{msg['dst_len']}") if dst else None,
        iif=_attr(msg, "FRA_IIFNAME"),
        oif=_attr(msg, "FRA_OIFNAME"),
        fwmark=mark,
        fwmask=mask,
        invert=bool(flags & FIB_RULE_INVERT),
        suppress_prefixlen=None if sup in (None, _UNSET) else sup,
        suppress_ifgroup=None if group in (None, _UNSET) else group,
        ipproto=_IPPROTOS.get(ipproto, str(ipproto)) if ipproto else None,
        sport=rng("FRA_SPORT_RANGE"),
        dport=rng("FRA_DPORT_RANGE"),
        uidrange=rng("FRA_UID_RANGE"),
        tos=msg["tos"] or None,
        l3mdev=bool(_attr(msg, "FRA_L3MDEV")),
        tun_id=_attr(msg, "FRA_TUN_ID") or None,
        realms=f"{flow >> 16}/{flow & 0xFFFF}" if flow else None,
        protocol=_PROTOS.get(proto, str(proto)) if proto else None,
        unresolved=bool(flags & FIB_RULE_UNRESOLVED),
        detached=bool(flags & (FIB_RULE_IIF_DETACHED | FIB_RULE_OIF_DETACHED)),
    )


_RULE_DUMPS: dict[bytes, list[IpRule]] = {}


def rules_of_dump(data: bytes) -> list[IpRule]:
    """The rules of one RTM_GETRULE dump. Every pod namespace sends the same bytes (the
    kernel's default rules; only the header's sequence number and port id differ): decoded
    once, and the records shared — they are not changed after collection."""
    key = b"".join(data[i:i + 8] + data[i + 16:i + n] for i, n in _msg_offsets(data))  # without seq and port id
    got = _RULE_DUMPS.get(key)
    if got is None:
        got = [decode_rule(m) for m in rtnl.decode(data)]
        if len(_RULE_DUMPS) > 256:
            _RULE_DUMPS.clear()
        _RULE_DUMPS[key] = got
    return list(got)


def _msg_offsets(data: bytes) -> Iterable[tuple[int, int]]:
    off = 0
    while off + 16 <= len(data):
        (length,) = struct.unpack_from("=I", data, off)
        if length < 16:
            return
        yield off, length
        off += (length + 3) & ~3


def decode_neigh(msg: Any, names: dict[int, str]) -> Optional[Neighbour]:
    dst = _attr(msg, "NDA_DST")
    if dst is None:
        return None
    return Neighbour(dst=dst, dev=names.get(msg["ifindex"]), lladdr=_attr(msg, "NDA_LLADDR"),
                     state=_nud(msg["state"]))


def decode_fdb(msg: Any, names: dict[int, str]) -> FdbEntry:
    flags = [n for bit, n in _FDB_FLAGS if msg["flags"] & bit]
    if msg["state"] & 0x80:
        flags.append("permanent")
    return FdbEntry(mac=_attr(msg, "NDA_LLADDR") or "", dst=_attr(msg, "NDA_DST"),
                    dev=names.get(msg["ifindex"]), vlan=_attr(msg, "NDA_VLAN"), flags=flags)


# --------------------------------------------------------------------------- namespaces


@dataclass
class NsHandle:
    name: str
    kind: Literal["node", "named", "pid"]
    path: str
    fd: Optional[int] = None
    inode: Optional[int] = None
    pid: Optional[int] = None
    error: Optional[str] = None
    ns: Optional[NetNamespace] = None
    qsock: Optional[socket.socket] = None  # a plain netlink socket inside it, for RTM_GETNSID
    raw: dict[int, dict[str, Any]] = field(default_factory=dict)  # ifindex -> decode_link's raw
    aliases: list[str] = field(default_factory=list)

    @property
    def net(self) -> NetNamespace:
        """The namespace as read (``_dump`` sets it before anything else looks)."""
        if self.ns is None:
            raise RuntimeError(f"namespace {self.name} was not read yet")
        return self.ns

    def close(self) -> None:
        if self.qsock is not None:
            self.qsock.close()
            self.qsock = None
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


def _open_ns(h: NsHandle) -> None:
    try:
        h.fd = os.open(h.path, os.O_RDONLY | os.O_CLOEXEC)
        h.inode = os.fstat(h.fd).st_ino
    except FileNotFoundError:
        h.error = f"vanished: {h.path} no longer exists"
    except PermissionError:
        h.error = f"permission denied opening {h.path} (needs root)"
    except OSError as exc:
        h.error = f"cannot open {h.path}: {exc.strerror or exc}"


def find_namespaces(ctx: CollectContext) -> list[NsHandle]:
    """The node's namespace first, then named ones, then sandbox pids; deduped by inode."""
    node = NsHandle("host", "node", "/proc/self/ns/net")
    _open_ns(node)
    handles = [node]
    by_inode: dict[int, NsHandle] = {}
    if node.inode is not None:
        by_inode[node.inode] = node
    try:
        names = sorted(os.listdir(ctx.netns_dir))
    except OSError:
        names = []
    for name in names:
        h = NsHandle(name, "named", os.path.join(ctx.netns_dir, name))
        _open_ns(h)
        if h.inode is not None and h.inode in by_inode:
            first = by_inode[h.inode]
            if first is node and node.name == "host":
                # labreport runs inside this named namespace: it is the node
                node.name, node.path = name, h.path
            else:
                first.aliases.append(name)
            h.close()
            continue
        if h.inode is not None:
            by_inode[h.inode] = h
        handles.append(h)
    seen_pids = set()
    # sandboxes first, so a pod's namespace is named after its pause process
    for c in sorted(ctx.containers(), key=lambda c: not c.is_sandbox):
        if not c.pid or c.pid in seen_pids:
            continue
        seen_pids.add(c.pid)
        path = f"{ctx.proc_root}/{c.pid}/ns/net"
        h = NsHandle(f"pid:{c.pid}", "pid", path, pid=c.pid)
        _open_ns(h)
        if h.inode is not None and h.inode in by_inode:
            first = by_inode[h.inode]
            if first.pid is None and first.kind != "node":
                first.pid = c.pid
            h.close()
            continue
        if h.inode is not None:
            by_inode[h.inode] = h
        elif h.error:
            # a container whose process is gone: keep the record only if it was a sandbox
            if not c.is_sandbox:
                continue
        handles.append(h)
    return handles


def _dump(h: NsHandle, node: NsHandle) -> None:
    """Read one namespace through netlink; any failure goes to ns.error."""
    # the node's own namespace has no path worth recording unless it is a named one
    path = None if h.path == "/proc/self/ns/net" else h.path
    ns = NetNamespace(name=h.name, kind=h.kind, path=path, inode=h.inode, pid=h.pid)
    h.ns = ns
    if h.error:
        ns.error = h.error
        return
    try:
        if h is node:
            sock, h.qsock = (socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE) for _ in range(2))
        elif h.fd is not None:
            sock, h.qsock = sockets_in_netns(h.fd, 2)
        else:
            raise OSError(errno.EBADF, "no descriptor of the namespace to enter")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            links = []
            for m in nl_dump(sock, RTM_GETLINK):
                ln, raw = decode_link(m)
                links.append(ln)
                h.raw[ln.ifindex] = raw
            by_index = {ln.ifindex: ln for ln in links}
            names = {ln.ifindex: ln.name for ln in links}
            for m in nl_dump(sock, RTM_GETADDR, seq=2):
                idx, addr = decode_addr(m)
                if idx in by_index:
                    by_index[idx].addresses.append(addr)
            routes = []
            for seq, fam in ((3, socket.AF_INET), (4, socket.AF_INET6)):
                for m in nl_dump(sock, RTM_GETROUTE, fam, seq=seq):
                    r = decode_route(m, names)
                    if r is not None:
                        routes.append(r)
            rules: list[IpRule] = []
            for seq, fam in ((7, socket.AF_INET), (8, socket.AF_INET6)):
                try:
                    rules.extend(rules_of_dump(nl_dump_bytes(sock, RTM_GETRULE, fam, seq=seq)))
                except OSError as exc:
                    if fam == socket.AF_INET or exc.errno not in (errno.EAFNOSUPPORT, errno.EOPNOTSUPP):
                        raise  # IPv6 may be off (ipv6.disable=1); IPv4 rules always exist
            neigh = []
            for m in nl_dump(sock, RTM_GETNEIGH, seq=5):
                if m["family"] == AF_BRIDGE:
                    continue
                n = decode_neigh(m, names)
                if n is not None:
                    neigh.append(n)
            vx = [ln for ln in links if ln.vxlan is not None]
            if vx:
                vx_index = {ln.ifindex: ln for ln in vx}
                for m in nl_dump(sock, RTM_GETNEIGH, AF_BRIDGE, seq=6):
                    owner = vx_index.get(m["ifindex"])
                    if owner is not None and owner.vxlan is not None:
                        owner.vxlan.fdb.append(decode_fdb(m, names))
        finally:
            sock.close()
        for ln in links:
            raw = h.raw.get(ln.ifindex, {})
            if raw.get("master"):
                ln.master = names.get(raw["master"], f"if{raw['master']}")
            if ln.vxlan is not None and raw.get("vxlan_dev"):
                ln.vxlan.dev = names.get(raw["vxlan_dev"], f"if{raw['vxlan_dev']}")
        ns.links, ns.routes, ns.neighbours, ns.rules = links, routes, neigh, rules
    except NamespaceSwitchError:
        raise
    except OSError as exc:
        if exc.errno == errno.EPERM:
            ns.error = "permission denied entering the namespace (setns needs root)"
        else:
            ns.error = f"cannot read: {exc.strerror or exc}"
    except Exception as exc:  # decoding errors
        ns.error = f"cannot read: {type(exc).__name__}: {exc}"


def _nsid(sock: socket.socket, fd: int) -> Optional[int]:
    try:
        return query_nsid(sock, fd)
    except OSError:
        return None


def resolve_nsids(handles: list[NsHandle]) -> None:
    """Fill NetNamespace.nsids for the link-netnsid numbers each namespace uses."""
    usable = [h for h in handles if h.ns is not None and h.ns.error is None and h.qsock is not None and h.fd is not None]
    hub_count = {id(h): sum(1 for ln in h.net.links if ln.link_netnsid is not None) for h in usable}
    node = handles[0]
    # the others' candidates, in one order sorted once (stable: x itself is left out below)
    hubs = ([node] if node in usable else []) + sorted(
        (h for h in usable if h is not node), key=lambda h: -hub_count[id(h)])
    for x in usable:
        needed = {ln.link_netnsid for ln in x.net.links if ln.link_netnsid is not None}
        if not needed:
            continue
        # candidates: for the node, every namespace; for others, the node then hubs
        cands = [h for h in (usable if x is node else hubs) if h is not x]
        qsock = x.qsock
        assert qsock is not None  # usable: every one has its query socket and descriptor
        for c in cands:
            nsid = _nsid(qsock, c.fd) if c.fd is not None else None
            if nsid is not None and nsid in needed:
                x.net.nsids[nsid] = c.name
                needed.discard(nsid)
                if not needed:
                    break
        for ln in x.net.links:
            if ln.link_netnsid is not None and ln.link_netnsid in x.net.nsids:
                ln.link_netns = x.net.nsids[ln.link_netnsid]


# --------------------------------------------------------------------------- evidence


# Every command the collector runs, declared once (for the node's namespace); in another
# namespace the same command runs through the tool's own ``-n NAME`` or through nsenter.
IP_ADDR = CommandSpec("ip-addr", ("ip", "addr", "show"), optional=True)
IP_ROUTE = CommandSpec("ip-route", ("ip", "route", "show"), optional=True)
IP_LINK_VXLAN = CommandSpec("ip-link-vxlan", ("ip", "-d", "link", "show", "type", "vxlan"), optional=True)
BRIDGE_FDB = CommandSpec("bridge-fdb", ("bridge", "fdb", "show"), optional=True)
IP_RULE = CommandSpec("ip-rule", ("ip", "rule", "show"), optional=True)  # where rules besides the defaults exist
COMMANDS = (IP_ADDR, IP_ROUTE, IP_LINK_VXLAN, BRIDGE_FDB, IP_RULE)


def _policy_routed(ns: NetNamespace) -> bool:
    return any(not is_default(r) for r in ns.rules if r.family == "inet")


def in_namespace(spec: CommandSpec, h: NsHandle) -> list[str]:
    """``spec``'s argv run in namespace ``h`` (``ip -n NAME …``, ``nsenter --net=… ip …``)."""
    tool, *args = spec.argv
    if h.kind == "node":
        return [tool, *args]
    if h.kind == "named":
        return [tool, "-n", h.name, *args]
    return ["nsenter", f"--net={h.path}", tool, *args]


def _evidence_suffix(h: NsHandle) -> str:
    return "" if h.kind == "node" else f":{h.name}"


REAL_TEXT_LIMIT = 24


def gather_evidence(ctx: CollectContext, handles: list[NsHandle], out: CollectorOutput,
                    budget_s: float) -> None:
    """Real `ip addr` / `ip route` (and `ip rule` where rules besides the kernel's defaults
    exist) per namespace when `ip` exists (in parallel, within a time budget); otherwise,
    or when a command fails, the synthesized equivalent."""
    readable = [h for h in handles if h.ns is not None and h.ns.error is None]
    have_ip = ctx.which("ip") is not None
    have_nsenter = ctx.which("nsenter") is not None
    deadline = time.monotonic() + budget_s
    jobs: list[tuple[NsHandle, str, list[str]]] = []
    # real text for the node and the first REAL_TEXT_LIMIT other namespaces (a lab node
    # has a few pods); beyond that the same records are rendered (origin="synthesized"):
    # 400 `ip` processes would cost more than the whole netlink read.
    # priority: the node, its own pods (named in its nsids), sandbox pids, then the rest
    node_peers = set(readable[0].net.nsids.values()) if readable and readable[0].kind == "node" else set()
    ordered = sorted(readable, key=lambda h: (h.kind != "node", h.name not in node_peers, h.kind != "pid"))
    others = 0
    for h in ordered:
        if h.kind != "node":
            others += 1
            if others > REAL_TEXT_LIMIT:
                continue
        if not have_ip or (h.kind == "pid" and not have_nsenter):
            continue
        specs = [IP_ADDR, IP_ROUTE]
        if any(ln.vxlan is not None for ln in h.net.links):
            specs += [IP_LINK_VXLAN, BRIDGE_FDB]
        if _policy_routed(h.net):
            specs.append(IP_RULE)
        jobs.extend((h, spec.evidence_id, in_namespace(spec, h)) for spec in specs)

    results: dict[tuple[int, str], Evidence] = {}

    def run(job: tuple[NsHandle, str, list[str]]) -> None:
        h, kind, argv = job
        remaining = deadline - time.monotonic()
        if remaining <= 0.05:
            return
        res = ctx.run(argv, timeout=min(remaining, ctx.command_timeout))
        if res.ok:
            results[(id(h), kind)] = res.to_evidence(kind + _evidence_suffix(h))

    if jobs:
        with ThreadPoolExecutor(max_workers=min(16, len(jobs))) as pool:
            list(pool.map(run, jobs))
    for h in readable:
        sfx = _evidence_suffix(h)
        where = "" if h.kind == "node" else (f"ip netns exec {h.name} " if h.kind == "named"
                                              else f"nsenter --net={h.path} ")
        ev = results.get((id(h), IP_ADDR.evidence_id)) or synthesized(
            IP_ADDR.evidence_id + sfx, where + "ip addr", render_ip_addr(h.net, h.raw))
        out.evidence.append(ev)
        ev = results.get((id(h), IP_ROUTE.evidence_id)) or synthesized(
            IP_ROUTE.evidence_id + sfx, where + "ip route", render_ip_route(h.net))
        out.evidence.append(ev)
        if _policy_routed(h.net):
            ev = results.get((id(h), IP_RULE.evidence_id)) or synthesized(
                IP_RULE.evidence_id + sfx, where + "ip rule show", render_ip_rule(h.net.rules, "inet"))
            out.evidence.append(ev)
        for kind in (IP_LINK_VXLAN.evidence_id, BRIDGE_FDB.evidence_id):
            if (id(h), kind) in results:
                out.evidence.append(results[(id(h), kind)])


# --------------------------------------------------------------------------- collector


def collect_namespaces(ctx: CollectContext) -> tuple[list[NsHandle], list[str]]:
    """Open, read and cross-resolve every namespace. Returns the handles (caller closes)."""
    handles = find_namespaces(ctx)
    problems: list[str] = []
    node = handles[0]
    for h in handles:
        _dump(h, node)
    resolve_nsids(handles)
    for h in handles:
        if h.ns is not None and h.ns.error:
            problems.append(f"{h.name}: {h.ns.error}")
    return handles, problems


class NetlinkCollector(Collector):
    name = "netlink"
    description = ("network namespaces (the node's, /var/run/netns/*, sandbox pids): links, addresses, "
                   "routes, neighbours, bridges, VXLAN FDBs, link-netnsid resolved to namespace names")
    needs = (
        Need.root(why="entering pod namespaces (setns) needs root; without it only the node's own "
                      "namespace is read", required=False),
        Need.binary("ip", why="real `ip addr`/`ip route` text as evidence (else synthesized)",
                    fix="apt-get install iproute2", required=False, evidence_only=True),
    )
    commands = COMMANDS
    after = ("cri", "docker")

    def collect(self, ctx: CollectContext) -> CollectorOutput:
        out = CollectorOutput(self.name)
        handles, problems = collect_namespaces(ctx)
        try:
            if handles[0].ns is None or handles[0].ns.error:
                out.partial(f"the node's own namespace could not be read: {handles[0].ns.error if handles[0].ns else '?'}")
            failed_ns = [p for p in problems if not p.startswith(handles[0].name + ":")]
            if failed_ns:
                perm = [p for p in failed_ns if "permission denied" in p]
                if perm and len(perm) == len(failed_ns) and not ctx.is_root:
                    pass  # the unmet root need says it (each namespace's error too)
                else:
                    shown = "; ".join(failed_ns[:5]) + (f"; … {len(failed_ns) - 5} more" if len(failed_ns) > 5 else "")
                    out.partial(f"{len(failed_ns)} namespaces not read: {shown}")
            budget = max(0.5, min(ctx.timeout / 4, 5.0))
            gather_evidence(ctx, handles, out, budget)
            out.netns = []
            for h in handles:
                if h.ns is None:
                    continue
                if h.aliases:
                    h.ns.aliases = list(h.aliases)
                out.netns.append(h.ns)
        finally:
            for h in handles:
                h.close()
        return out


def namespaces_summary(namespaces: Iterable[NetNamespace]) -> str:
    nss = list(namespaces)
    return f"{len(nss)} namespaces, {sum(len(n.links) for n in nss)} links"
