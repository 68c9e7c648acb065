"""From the words of ``labreport trace --from SRC --to DST`` to a :class:`Flow`.

SRC: a pod (``ns/name`` or ``name``), a pod IP, a node name (a process on it), a node's
address, or an address outside the cluster (arriving on ``--via`` NODE's uplink; with rules
alone it enters at PREROUTING). DST: a Service (the one service matcher), ``IP:port``,
``NODE:PORT`` or ``node-IP:port``. An unknown name is a :class:`ResolveError` naming the
closest names.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from labreport.analysis.service_match import closest, match_services
from labreport.analysis.trace.addr import ip_int, split_hostport
from labreport.analysis.trace.model import Flow
from labreport.analysis.trace.world import World

if TYPE_CHECKING:  # annotations only: analysis.model imports observed, which traces
    from labreport.analysis.model import Analysis, ServiceRecord


class ResolveError(ValueError):
    pass


class IifError(ResolveError):
    """``--iif`` does not fit the flow (not an outside packet, or no such device on the node)."""


def parse_mark(text: str) -> tuple[int, Optional[int]]:
    """``VALUE[/MASK]``, hex (``0x10``) or decimal, as `ip rule` prints a selector (``fwmark
    0x10/0xff``): the packet's mark is VALUE; a MASK only says which bits matter, so VALUE may
    not set a bit outside it. A :class:`ValueError` says what is wrong."""
    t = text.strip()
    vtext, sep, mtext = t.partition("/")
    out: list[int] = []
    for part, what in ((vtext, "value"), (mtext, "mask")) if sep else ((vtext, "value"),):
        try:
            n = int(part.strip(), 0)
        except ValueError:
            raise ValueError(f"{text!r}: the {what} {part.strip()!r} is not a number (hex 0x10 or decimal 16; "
                             "VALUE or VALUE/MASK as `ip rule` prints fwmark)") from None
        if not 0 <= n <= 0xFFFFFFFF:
            raise ValueError(f"{text!r}: the {what} {part.strip()} is outside 0..0xffffffff (a mark is 32 bits)")
        out.append(n)
    value, mask = out[0], (out[1] if sep else None)
    if mask is not None and value & ~mask:
        raise ValueError(f"{text!r}: the value {value:#x} sets bits outside the mask {mask:#x}")
    return value, mask


def format_mark(value: int, mask: Optional[int]) -> str:
    return f"{value:#x}" + (f"/{mask:#x}" if mask is not None else "")


def node_devices(world: World, node: Optional[str]) -> list[str]:
    m = world.node(node)
    if m is None:
        return []
    return sorted(set(m.links) | set(m.addr_of_dev))


@dataclass
class Target:
    ip: str
    port: int
    proto: Optional[str] = None
    service: Optional[ServiceRecord] = None
    label: str = ""


def all_services(analysis: Optional[Analysis]) -> list[ServiceRecord]:
    out: list[ServiceRecord] = []
    seen: set[tuple[str, Optional[str], Optional[int], str]] = set()
    if analysis is None:
        return out
    for na in analysis.nodes:
        for r in na.services:
            key = (r.name, r.cluster_ip, r.port, r.protocol)
            if key not in seen:
                seen.add(key)
                out.append(r)
    return out


def rules_node(world: World, via: Optional[str] = None) -> Optional[str]:
    if via:
        return via if via in world.nodes else None
    for m in world.nodes.values():
        if m.has_rules():
            return m.name
    return next(iter(world.nodes), None)


def _closest_words(word: str, pool: list[str]) -> str:
    near = difflib.get_close_matches(word, pool, n=5, cutoff=0.5)
    return f"; closest: {', '.join(near)}" if near else ""


def resolve_dst(world: World, analysis: Optional[Analysis], word: str, via: Optional[str]) -> Target:
    w = word.strip()
    host, port = split_hostport(w)
    if ip_int(host) is not None:
        if port is not None:
            recs = match_services(all_services(analysis), w)
            if not recs and host in world.node_of_addr:
                recs = [r for r in all_services(analysis) if r.node_port == port]
            return Target(host, port, recs[0].protocol if recs else None, recs[0] if recs else None, label=w)
        recs = [r for r in match_services(all_services(analysis), host) if r.port]
        if len(recs) == 1 or (recs and len({r.port for r in recs}) == 1):
            return Target(host, int(recs[0].port or 0), recs[0].protocol, recs[0], f"{host}:{recs[0].port}")
        raise ResolveError(f"{host}: give the port too ({host}:PORT)"
                           + (f"; its service ports: {', '.join(sorted({str(r.port) for r in recs}))}" if recs else ""))
    if port is not None and host in world.nodes:
        m = world.nodes[host]
        if m.primary is None:
            raise ResolveError(f"node {host}: its address is not in the snapshot (no `ip addr`); use NODE-IP:{port}")
        rec = next((r for r in all_services(analysis) if r.node_port == port), None)
        return Target(m.primary, port, rec.protocol if rec else None, rec,
                      f"{host}:{port} ({m.primary}:{port}" + (f", node port of {rec.name})" if rec else ")"))
    recs = match_services(all_services(analysis), w)
    if not recs:
        names = closest(all_services(analysis), w)
        raise ResolveError(f"no Service, address or node matches {w!r}"
                           + (f"; closest: {', '.join(names)}" if names else "")
                           + ("" if all_services(analysis) else " (the snapshot has no decoded Services)"))
    rec = recs[0]
    if rec.cluster_ip and rec.port:
        return Target(rec.cluster_ip, rec.port, rec.protocol, rec, f"{rec.name} ({rec.cluster_ip}:{rec.port})")
    node = world.node(rules_node(world, via))
    if rec.node_port and node is not None and node.primary:
        return Target(node.primary, rec.node_port, rec.protocol, rec, f"{rec.name} (node port {rec.node_port})")
    raise ResolveError(f"{rec.name}: no cluster IP and port in the rules to send to")


def resolve_src(world: World, analysis: Optional[Analysis], word: str, via: Optional[str]) -> Flow:
    """A Flow with the source filled in (dst/dport are set by the caller)."""
    w = word.strip()
    if w in world.nodes:
        return Flow(src=None, dst="0.0.0.0", dport=0, entry="process", entry_node=w)
    if ip_int(w) is not None:
        place = world.pods.get(w)
        if place is not None and place.node in world.nodes:
            return Flow(src=w, dst="0.0.0.0", dport=0, entry="pod", entry_node=place.node, pod=place.pod)
        owner = world.node_of_addr.get(w)
        if owner is not None and owner in world.nodes and not via:
            return Flow(src=w, dst="0.0.0.0", dport=0, entry="process", entry_node=owner)
        node = rules_node(world, via)
        if node is None:
            raise ResolveError(f"no node {via!r} in the snapshot" if via else "the snapshot has no nodes")
        if place is not None:  # a pod the API places on a node that was not collected
            raise ResolveError(f"{w} is the pod {place.pod or '?'} on {place.node or '?'}, which is not in the snapshot")
        return Flow(src=w, dst="0.0.0.0", dport=0, entry="outside", entry_node=node)
    keys = list(world.pod_ip_by_key)
    cands = [k for k in keys if k == w] or [k for k in keys if k.split("/", 1)[-1] == w]
    if len(cands) > 1:
        raise ResolveError(f"{w!r} names several pods: {', '.join(sorted(cands)[:10])}; give ns/name")
    if not cands:
        raise ResolveError(f"no pod, node or address matches {w!r}"
                           + _closest_words(w, keys + [k.split('/', 1)[-1] for k in keys] + list(world.nodes)))
    ip = world.pod_ip_by_key[cands[0]]
    place = world.pods.get(ip)
    if place is None or place.node not in world.nodes:
        raise ResolveError(f"the pod {cands[0]} ({ip}) runs on {place.node if place else '?'}, which is not in "
                           "the snapshot")
    return Flow(src=ip, dst="0.0.0.0", dport=0, entry="pod", entry_node=place.node, pod=cands[0])


def make_flow(world: World, analysis: Optional[Analysis], src: str, dst: str, proto: Optional[str] = None,
              via: Optional[str] = None, mark: int = 0, iif: Optional[str] = None) -> tuple[Flow, Target]:
    """``mark``: the packet's fwmark before the first hook; ``iif``: the device an outside
    packet arrives on (on ``via``, else the node it enters), an :class:`IifError` naming the
    node's devices when the node has none of that name."""
    if via and via not in world.nodes:
        raise ResolveError(f"no node {via!r} in the snapshot" + _closest_words(via, list(world.nodes)))
    tgt = resolve_dst(world, analysis, dst, via)
    flow = resolve_src(world, analysis, src, via)
    flow.dst, flow.dport = tgt.ip, tgt.port
    p = (proto or tgt.proto or "tcp").lower()
    if p not in ("tcp", "udp", "sctp"):
        raise ResolveError(f"protocol {p!r}: tcp, udp or sctp")
    flow.proto = p  # type: ignore[assignment]
    flow.mark = mark
    if iif is not None:
        if flow.entry != "outside":
            raise IifError(f"{iif}: --iif is the device an outside packet arrives on; {src!r} is "
                           + (f"the pod {flow.pod}" if flow.entry == "pod" else f"a process on {flow.entry_node}")
                           + " (give an outside address as --from)")
        devs = node_devices(world, flow.entry_node)
        if devs and iif not in devs:
            raise IifError(f"no device {iif!r} on {flow.entry_node}; its devices: {', '.join(devs)}")
        flow.entry_dev = iif
    return flow, tgt
