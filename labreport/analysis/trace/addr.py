"""Addresses as integers, parsed once: CIDR membership and longest-prefix matching fast."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Optional

Net = tuple[int, int, int]  # (version, network as int, prefix length)


def _v4(s: str) -> Optional[int]:
    """A dotted quad as an int, without the ipaddress module (the common case, fast)."""
    parts = s.split(".")
    if len(parts) != 4:
        return None
    n = 0
    for q in parts:
        if not q.isdigit() or len(q) > 3 or (len(q) > 1 and q[0] == "0"):
            return None
        v = int(q)
        if v > 255:
            return None
        n = (n << 8) | v
    return n


@lru_cache(maxsize=200_000)
def ip_int(s: str) -> Optional[tuple[int, int]]:
    """"10.0.0.1" → (4, 167772161); None when not an address."""
    v4 = _v4(s) if ":" not in s else None
    if v4 is not None:
        return 4, v4
    try:
        a = ipaddress.ip_address(s)
    except ValueError:
        return None
    return a.version, int(a)


_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4_NET = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?:/(3[0-2]|[12]?[0-9]))?").fullmatch


@lru_cache(maxsize=100_000)
def net(s: str) -> Optional[Net]:
    """"10.0.0.0/8" / "10.0.0.1" / "default" → (version, network, prefixlen)."""
    if s == "default":
        return (4, 0, 0)
    m = _V4_NET(s)
    if m is not None:  # canonical "a.b.c.d[/n]" (what _v4 below accepts, computed the same)
        a, b, c, d, plen = m.groups()
        bits = int(plen) if plen else 32
        mask = ((1 << bits) - 1) << (32 - bits) if bits else 0
        return 4, ((int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)) & mask, bits
    if ":" not in s:
        host, _, plen = s.strip().partition("/")
        v4 = _v4(host)
        if v4 is not None and (not plen or (plen.isdigit() and int(plen) <= 32)):
            bits = int(plen) if plen else 32
            mask = ((1 << bits) - 1) << (32 - bits) if bits else 0
            return 4, v4 & mask, bits
    try:
        nw = ipaddress.ip_network(s.strip(), strict=False)
    except ValueError:
        return None
    return nw.version, int(nw.network_address), nw.prefixlen


def in_net(ip: str, n: Net) -> bool:
    v = ip_int(ip)
    if v is None or v[0] != n[0]:
        return False
    bits = 32 if n[0] == 4 else 128
    shift = bits - n[2]
    return (v[1] >> shift) == (n[1] >> shift) if shift < bits else True


@lru_cache(maxsize=100_000)
def split_hostport(addr: str) -> tuple[str, Optional[int]]:
    """``10.244.1.3:8080`` → ("10.244.1.3", 8080); ``[fd00::1]:80`` and a bare address too."""
    a = addr.strip()
    if a.startswith("["):
        host, _, rest = a[1:].partition("]")
        port = rest.lstrip(":")
        return host, int(port) if port.isdigit() else None
    if a.count(":") == 1:
        host, port = a.split(":")
        return host, int(port) if port.isdigit() else None
    return a, None


def hostport(ip: str, port: Optional[int]) -> str:
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
