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
from labreport.parsers._common import is_prompt_line
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.parsers.cilium_service import split_address
from labreport.snapshot import CiliumBackend, CiliumService

HEADER_RE = re.compile(r"^\s*SERVICE ADDRESS\s+BACKEND ADDRESS(?:\s+\(REVNAT_ID\))?(?:\s+\(SLOT\))?\s*$")
_ADDR = r"(?:\[[0-9a-fA-F:.]+\]|[0-9.]+):\d+(?:/[A-Za-z]+)?"
_ENTRY = rf"({_ADDR}) \((\d+)\)(?: \((\d+)\))?(?:\s+\[([^\]]*)\])?"
ROW_RE = re.compile(rf"^({_ADDR})\s+{_ENTRY}\s*$")
CONT_RE = re.compile(rf"^\s+{_ENTRY}\s*$")


def _detect(text: str) -> float:
    return 0.97 if any(HEADER_RE.match(ln) for ln in text[:3000].splitlines()) else 0.0


INFO = ParserInfo(
    name="cilium-bpf-lb-list",
    commands=("cilium-dbg bpf lb list", "cilium bpf lb list"),
    description="Cilium's load-balancer BPF maps: frontends, their flags and backend slots",
    detect=_detect,
    target="cilium",
)


def parse(text: str | bytes, *, source: str = "<input>") -> ParseResult[list[CiliumService]]:
    text = check_text(text, source)
    services: list[CiliumService] = []
    by_front: dict[str, CiliumService] = {}
    res: ParseResult[list[CiliumService]] = ParseResult(services, parser=INFO.name, source=source)
    seen_header = False
    cur: CiliumService | None = None
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or is_prompt_line(line):
            continue
        if HEADER_RE.match(line):
            seen_header = True
            continue
        m = ROW_RE.match(line)
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
            m = CONT_RE.match(line)
            if not m or cur is None:
                res.warn(no, line, "not a `SERVICE ADDRESS  BACKEND ADDRESS (REVNAT_ID) (SLOT)` entry")
                continue
            entry = m.groups()
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
    if not seen_header and not services:
        raise ParseError("not `cilium-dbg bpf lb list` output (no `SERVICE ADDRESS  BACKEND ADDRESS` header)",
                         source=source)
    return res
