"""Parser for ``ipvsadm -Ln`` (and ``-Ln --stats``, ``-Ln --rate``,
``-Ln --persistent-conn``, and ``-L`` without ``-n``) → :class:`labreport.snapshot.Ipvs`.

Usage::

    from labreport.parsers import ipvsadm
    res = ipvsadm.parse(text, source="ipvsadm.txt")
    res.value.virtual_servers[0].real_servers[0].weight

Each virtual server (``labreport.snapshot.IpvsVirtualServer``, in ``Ipvs.virtual_servers``) has ``protocol`` (TCP/UDP/SCTP/FWM), ``address`` and ``port``
(``fwmark`` for FWM), ``scheduler``, ``persistent`` (seconds, from ``persistent N``),
``flags``, ``stats`` (the numeric columns of --stats/--rate, keyed by the header's column
names), and ``real_servers`` (``IpvsRealServer``: address, port, forward method, weight,
active/inactive connections, stats). ``text`` keeps each line as printed.

What ipvsadm prints::

    IP Virtual Server version 1.2.1 (size=4096)
    Prot LocalAddress:Port Scheduler Flags
      -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
    TCP  10.254.0.1:443 rr persistent 10800
      -> 172.16.16.81:6443            Masq    1      0          0

Without ``-n`` addresses and ports are names (``ip-10-0-62-121.ec2.internal:``,
``100.98.125.10:http``); they are kept as printed (``port`` None, ``port_text`` set).
Lines it cannot read become warnings; ParseError only for empty/binary input, ipvsadm's
own error ("Can't initialize ipvs"), or text that is not an ipvsadm listing at all.
"""

from __future__ import annotations

import re
from typing import Optional, Union


from labreport.errors import ParseError
from labreport.parsers.base import ParseResult, ParserInfo, check_text, strip_prompt
from labreport.snapshot import Ipvs, IpvsRealServer, IpvsVirtualServer

PROTOCOLS = ("TCP", "UDP", "SCTP", "FWM")
_VS_RE = re.compile(r"^(TCP|UDP|SCTP|FWM)\s+(\S+)(?:\s+(.*))?$")
_RS_RE = re.compile(r"^->\s+(\S+)(?:\s+(.*))?$")
_HEADER_RE = re.compile(r"^Prot\s+LocalAddress:Port\s+(.*)$")
_RS_HEADER_RE = re.compile(r"^->\s+RemoteAddress:Port\b(.*)$")
_FORWARD = {"Masq", "Local", "Route", "Tunnel", "FullNat"}
_SUFFIX = {"K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}


def split_hostport(text: str) -> tuple[str, Optional[int], Optional[str]]:
    """"10.0.0.1:80" / "[fd00::1]:80" / "host:http" / "host:" → (host, port, port_text)."""
    m = re.fullmatch(r"\[([^\]]+)\]:(\S*)", text)
    if m:
        host, port = m.group(1), m.group(2)
    elif ":" in text:
        host, port = text.rsplit(":", 1)
    else:
        return text, None, None
    if port.isdigit():
        return host, int(port), None
    return host, None, (port or None)


def _number(tok: str) -> Optional[int]:
    m = re.fullmatch(r"(\d+)([KMGT]?)", tok)
    if not m:
        return None
    return int(m.group(1)) * _SUFFIX.get(m.group(2), 1)


class _Parser:
    def __init__(self, text: str, res: ParseResult[Ipvs]):
        self.lines = text.split("\n")
        self.res = res
        self.mode = "list"  # list | stats | rate | persistent
        self.columns: list[str] = []
        self.vss: list[IpvsVirtualServer] = []
        self.seen_header = False
        self.names_warned = False

    def _set_header(self, cols: str) -> None:
        self.seen_header = True
        names = cols.split()
        if names[:1] == ["Conns"]:
            self.mode, self.columns = "stats", names
        elif names[:1] == ["CPS"]:
            self.mode, self.columns = "rate", names
        elif "PersistConn" in names:
            self.mode, self.columns = "persistent", names
        else:
            self.mode, self.columns = "list", names

    def _note_names(self, line_no: int, line: str, what: str) -> None:
        if not self.names_warned:
            self.names_warned = True
            self.res.warn(line_no, line, f"{what} printed as a name (ipvsadm -L without -n); kept as printed")

    def run(self) -> list[IpvsVirtualServer]:
        for idx, raw in enumerate(self.lines, 1):
            line, _ = strip_prompt(raw)
            s = line.strip()
            if not s:
                continue
            if s.startswith("IP Virtual Server version"):
                self.seen_header = True
                continue
            m = _HEADER_RE.match(s)
            if m:
                self._set_header(m.group(1))
                continue
            if _RS_HEADER_RE.match(s):
                continue
            if s == "..." or s.startswith("Every ") or re.match(r"^\$?\s*(sudo\s+)?ipvsadm\b|^\[sudo\] password", s):
                continue  # elisions in docs, `watch` headers, the command line itself
            m = _VS_RE.match(s)
            if m:
                self._virtual_server(m, idx, s)
                continue
            m = _RS_RE.match(s)
            if m:
                self._real_server(m, idx, s)
                continue
            self.res.warn(idx, raw, "not an ipvsadm line")
        return self.vss

    def _virtual_server(self, m: re.Match[str], idx: int, s: str) -> None:
        proto, where, rest = m.group(1), m.group(2), (m.group(3) or "")
        vs = IpvsVirtualServer(protocol=proto, address=where, text=s, line_no=idx)
        if proto == "FWM":
            vs.fwmark = _number(where)
        else:
            host, port, port_text = split_hostport(where)
            vs.address, vs.port, vs.port_text = host, port, port_text
            if port is None:
                self._note_names(idx, s, "virtual server address/port")
        toks = rest.split()
        if self.mode in ("stats", "rate"):
            self._stats(vs.stats, toks, idx, s)
        else:
            i = 0
            if toks and not toks[0].isdigit():
                vs.scheduler = toks[0]
                i = 1
            while i < len(toks):
                t = toks[i]
                if t == "persistent" and i + 1 < len(toks) and toks[i + 1].isdigit():
                    vs.persistent = int(toks[i + 1])
                    i += 2
                    continue
                if t == "mask" and i + 1 < len(toks):
                    vs.netmask = toks[i + 1]
                    i += 2
                    continue
                vs.flags.append(t)
                i += 1
        self.vss.append(vs)

    def _real_server(self, m: re.Match[str], idx: int, s: str) -> None:
        if not self.vss:
            self.res.warn(idx, s, "real server before any virtual server; skipped")
            return
        host, port, port_text = split_hostport(m.group(1))
        rs = IpvsRealServer(address=host, port=port, port_text=port_text, text=s, line_no=idx)
        if port is None:
            self._note_names(idx, s, "real server address/port")
        toks = (m.group(2) or "").split()
        if self.mode in ("stats", "rate"):
            self._stats(rs.stats, toks, idx, s)
        elif self.mode == "persistent":
            nums = [_number(t) for t in toks]
            if len(nums) >= 4 and None not in nums[:4]:
                rs.weight, rs.persist_conn, rs.active_conn, rs.inact_conn = nums[:4]  # type: ignore[assignment]
            else:
                self.res.warn(idx, s, "real server columns not understood")
        else:
            if len(toks) >= 4 and toks[0] in _FORWARD and all(_number(t) is not None for t in toks[1:4]):
                rs.forward = toks[0]
                rs.weight, rs.active_conn, rs.inact_conn = (_number(t) for t in toks[1:4])
            elif toks:
                self.res.warn(idx, s, "real server columns not understood (expected Forward Weight ActiveConn InActConn)")
        self.vss[-1].real_servers.append(rs)

    def _stats(self, into: dict[str, int], toks: list[str], idx: int, s: str) -> None:
        cols = self.columns or ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"]
        nums = [_number(t) for t in toks]
        if len(nums) != len(cols) or None in nums:
            self.res.warn(idx, s, f"expected {len(cols)} numbers ({' '.join(cols)})")
            return
        into.update({c: n for c, n in zip(cols, nums) if n is not None})


def _detect(text: str) -> float:
    head = text[:3000]
    if "IP Virtual Server version" in head or re.search(r"^\s*Prot\s+LocalAddress:Port", head, re.M):
        return 0.95
    vs = re.search(r"^(TCP|UDP|SCTP|FWM)\s+\S+:\S*\s", head, re.M)
    rs = re.search(r"^\s+->\s+\S+:\S+\s+(Masq|Local|Route|Tunnel|\d)", head, re.M)
    if vs and rs:
        return 0.7
    return 0.0


INFO = ParserInfo(
    name="ipvsadm",
    commands=("ipvsadm -Ln", "ipvsadm -Ln --stats", "ipvsadm -Ln --rate", "ipvsadm -L -n --persistent-conn"),
    description="IPVS virtual servers (kube-proxy ipvs mode): schedulers, persistence, real servers with weights",
    detect=_detect,
    target="ipvs",
)


def parse(text: Union[str, bytes], *, source: str = "<input>") -> ParseResult[Ipvs]:
    text = check_text(text, source=source)
    if re.search(r"Can't initialize ipvs|Protocol not available|ip_vs.*not (loaded|found)", text[:2000]) and not re.search(
        r"^(TCP|UDP|SCTP|FWM)\s", text, re.M
    ):
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        raise ParseError(f"ipvsadm could not read the IPVS table: {first}", source=source)
    res: ParseResult[Ipvs] = ParseResult(value=Ipvs(), parser=INFO.name, source=source)
    p = _Parser(text, res)
    vss = p.run()
    if not vss and not p.seen_header:
        raise ParseError("not ipvsadm output: no virtual server line and no ipvsadm header", source=source)
    res.value.virtual_servers = vss
    res.value.listing = p.mode
    return res


def virtual_servers_of(ipvs: Optional[Ipvs]) -> list[IpvsVirtualServer]:
    if ipvs is None:
        return []
    return list(ipvs.virtual_servers)


__all__ = ["INFO", "parse", "IpvsVirtualServer", "IpvsRealServer", "virtual_servers_of", "split_hostport"]
