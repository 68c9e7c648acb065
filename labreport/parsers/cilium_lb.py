"""``cilium-dbg bpf lb list``: the load-balancer BPF maps themselves.

    SERVICE ADDRESS     BACKEND ADDRESS (REVNAT_ID) (SLOT)
    10.96.0.10:53       0.0.0.0:0 (3) (0) [ClusterIP, non-routable]
                        10.244.0.238:53 (3) (1)

A line with a service address in the first column starts (or continues: the map is not
ordered) that frontend; every line holds one entry: slot 0 (``0.0.0.0:0``) is the service
itself with its flags in brackets, the other slots are backends. Older Cilium prints only
``(REVNAT_ID)``. Entries of one frontend are gathered, backends sorted by slot.
"""

from __future__ import annotations

import re

from labreport.errors import ParseError
from labreport.parsers._table import TableReader, header_detector
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.parsers.cilium_service import ADDR, split_address
from labreport.snapshot import CiliumBackend, CiliumService

HEADER_RE = re.compile(r"^\s*SERVICE ADDRESS\s+BACKEND ADDRESS(?:\s+\(REVNAT_ID\))?(?:\s+\(SLOT\))?\s*$")
_ENTRY = rf"({ADDR}) \((\d+)\)(?: \((\d+)\))?(?:\s+\[([^\]]*)\])?"
ROW_RE = re.compile(rf"^({ADDR})\s+{_ENTRY}\s*$")
CONT_RE = re.compile(rf"^\s+{_ENTRY}\s*$")


INFO = ParserInfo(
    name="cilium-bpf-lb-list",
    commands=("cilium-dbg bpf lb list", "cilium bpf lb list"),
    description="Cilium's load-balancer BPF maps: frontends, their flags and backend slots",
    detect=header_detector(HEADER_RE),
    target="cilium",
)


def parse(text: str | bytes, *, source: str = "<input>") -> ParseResult[list[CiliumService]]:
    text = check_text(text, source)
    services: list[CiliumService] = []
    by_front: dict[str, CiliumService] = {}
    res: ParseResult[list[CiliumService]] = ParseResult(services, parser=INFO.name, source=source)
    table = TableReader(HEADER_RE, ROW_RE, CONT_RE)
    cur: CiliumService | None = None
    for no, line, m, more in table.lines(text):
        if m:
            front, proto = split_address(m.group(1))
            key = f"{front}/{proto or ''}"
            cur = by_front.get(key)
            if cur is None:
                cur = CiliumService(frontend=front, protocol=proto)
                by_front[key] = cur
                services.append(cur)
            entry = m.groups()[1:]
        else:
            if not more or cur is None:
                res.warn(no, line, "not a `SERVICE ADDRESS  BACKEND ADDRESS (REVNAT_ID) (SLOT)` entry")
                continue
            entry = more.groups()
        addr, revnat, slot, flags = entry
        a, bproto = split_address(addr)
        if a in ("0.0.0.0:0", "[::]:0"):  # slot 0: the service entry itself
            cur.id = int(revnat)
            parts = [f.strip() for f in (flags or "").split(",") if f.strip()]
            if parts:
                cur.type, cur.flags = parts[0], parts[1:]
            continue
        cur.backends.append(CiliumBackend(address=a, protocol=bproto, index=int(slot) if slot else None,
                                          rev_nat_id=int(revnat)))
    for s in services:
        s.backends.sort(key=lambda b: (b.index is None, b.index or 0))
    if not table.seen_header and not services:
        raise ParseError("not `cilium-dbg bpf lb list` output (no `SERVICE ADDRESS  BACKEND ADDRESS` header)",
                         source=source)
    return res
