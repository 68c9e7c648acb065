"""``cilium-dbg service list`` (``cilium service list`` before Cilium 1.15): Cilium's
service table when it replaces kube-proxy.

    ID   Frontend               Service Type   Backend
    4    10.104.239.135:80/TCP  ClusterIP      1 => 10.217.0.107:80/TCP (active)
                                               2 => 10.217.0.149:80/TCP (active)
    5    0.0.0.0:31940/TCP      NodePort       1 => 10.217.0.107:80/TCP

A row starts with the service ID; a line that starts with ``N =>`` adds a backend to the
row above. The ``/TCP`` suffix (Cilium ≥ 1.16) and the ``(active)`` state are optional.
Lines that are neither (a ``[...]`` elision in a paste) become warnings.
"""

from __future__ import annotations

import re

from labreport.errors import ParseError
from labreport.parsers._table import TableReader, header_detector
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.snapshot import CiliumBackend, CiliumService

HEADER_RE = re.compile(r"^\s*ID\s+Frontend\s+Service Type\s+Backend\s*$")
# an address and port as Cilium prints them (IPv6 in brackets), the protocol optional
ADDR = r"(?:\[[0-9a-fA-F:.]+\]|[0-9.]+):\d+(?:/[A-Za-z]+)?"
_BACKEND = rf"(\d+) => ({ADDR})(?: \(([A-Za-z-]+)\))?(?:\s+\[[^\]]*\])?"
ROW_RE = re.compile(rf"^\s*(\d+)\s+({ADDR})\s+([A-Za-z-]+)(?:\s+{_BACKEND})?\s*$")
CONT_RE = re.compile(rf"^\s+{_BACKEND}\s*$")


INFO = ParserInfo(
    name="cilium-service-list",
    commands=("cilium-dbg service list", "cilium service list"),
    description="Cilium's service table (kube-proxy replacement): frontends and their backends",
    detect=header_detector(HEADER_RE),
    target="cilium",
)


def split_address(addr: str) -> tuple[str, str | None]:
    """``10.0.0.1:80/TCP`` -> (``10.0.0.1:80``, ``TCP``)."""
    if "/" in addr:
        a, _, proto = addr.partition("/")
        return a, proto.upper()
    return addr, None


def _backend(index: str, addr: str, state: str | None) -> CiliumBackend:
    a, proto = split_address(addr)
    return CiliumBackend(address=a, protocol=proto, state=state, index=int(index))


def parse(text: str | bytes, *, source: str = "<input>") -> ParseResult[list[CiliumService]]:
    text = check_text(text, source)
    services: list[CiliumService] = []
    res: ParseResult[list[CiliumService]] = ParseResult(services, parser=INFO.name, source=source)
    table = TableReader(HEADER_RE, ROW_RE, CONT_RE)
    for no, line, m, more in table.lines(text):
        if m:
            front, proto = split_address(m.group(2))
            svc = CiliumService(id=int(m.group(1)), frontend=front, protocol=proto, type=m.group(3))
            if m.group(4):
                svc.backends.append(_backend(m.group(4), m.group(5), m.group(6)))
            services.append(svc)
            continue
        if more and services:
            services[-1].backends.append(_backend(more.group(1), more.group(2), more.group(3)))
            continue
        res.warn(no, line, "not a service row (ID Frontend Type [N => backend]) nor a backend line")
    if not table.seen_header and not services:
        raise ParseError("not `cilium-dbg service list` output (no `ID Frontend Service Type Backend` header)",
                         source=source)
    return res
