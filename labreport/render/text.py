"""A readable text form of an Analysis, for a person at a terminal (rich tables).

``render_text(analysis)`` returns the text; ``print_analysis(analysis, console)`` prints
it to a rich Console (colours when the console is a terminal).
"""

from __future__ import annotations

from typing import Optional

from rich.console import Console
from rich.table import Table

from labreport.analysis.model import Analysis, Endpoint, NodeAnalysis, ServiceRecord
from labreport.analysis.probability import format_probability
from labreport.render.escape import TermText as Text  # every value shown is terminal text




class _Table(Table):
    """A rich Table whose string cells are plain text (no markup: "[sandbox]" stays)."""

    def add_row(self, *cells, **kw):  # type: ignore[override]
        return super().add_row(*[Text(c) if isinstance(c, str) else c for c in cells], **kw)


def _table(title: str, *cols: str) -> Table:
    t = _Table(title=Text(title), title_justify="left", show_lines=False, expand=False)
    for c in cols:
        t.add_column(c, overflow="fold")
    return t


def _yn(v: Optional[bool]) -> str:
    return "yes" if v else ("no" if v is False else "?")


def _components(na: NodeAnalysis, limit: int = 0) -> Optional[Table]:
    if not na.components:
        return None
    t = _table("Components", "name", "pid", "in container", "role", "key flags")
    # one row per shim / pause would drown the table on a busy node: count them instead
    counts: dict[str, int] = {}
    for c in na.components:
        counts[c.name] = counts.get(c.name, 0) + 1
    many = {n for n in ("containerd-shim", "conmon", "pause") if counts.get(n, 0) > 3}
    rows: list[tuple[str, str, str, str, str]] = []
    grouped: dict[str, list[int]] = {}
    for c in na.components:
        if c.name in many:
            if c.name not in grouped:
                grouped[c.name] = []
                rows.append((c.name, "", _yn(c.in_container), c.role, ""))
            if c.pid is not None:
                grouped[c.name].append(c.pid)
            continue
        flags = " ".join(f"{k}={v}" for k, v in c.key_flags.items())
        rows.append((c.name, str(c.pid) if c.pid is not None else "-", _yn(c.in_container), c.role,
                     flags + (" (command cut)" if c.truncated else "")))
    for name, pid, inc, role, flags in _cut(rows, limit, t):
        if name in grouped:
            pids = grouped[name]
            t.add_row(f"{name} ×{counts[name]}", ", ".join(map(str, pids[:3])) + (", …" if len(pids) > 3 else ""),
                      inc, role, "")
        else:
            t.add_row(name, pid, inc, role, flags)
    return t


def _pods(na: NodeAnalysis, limit: int = 0) -> Optional[Table]:
    if not na.pods:
        return None
    t = _table("Pods", "pod", "ip", "netns", "containers (sandbox first)", "shares sandbox netns")
    for p in _cut(na.pods, limit, t):
        lines = []
        for c in p.containers:
            mark = "[sandbox] " if c.is_sandbox else ""
            comp = f" → {c.component}" if c.component and not c.is_sandbox else ""
            lines.append(f"{mark}{c.name} ({c.id[:13]}){comp}")
        if p.sandbox_id and not any(c.is_sandbox for c in p.containers):
            lines.insert(0, f"[sandbox {p.sandbox_id}: not in the input]")
        if p.note:
            lines.append(f"note: {p.note}")
        t.add_row(p.key, p.ip or "-", p.netns or "-", "\n".join(lines), _yn(p.shares_netns_with_sandbox))
    return t


def _veths(na: NodeAnalysis, limit: int = 0) -> Optional[Table]:
    if not na.veth_pairs:
        return None
    t = _table("Veth pairs (host ↔ pod)", "host side", "bridge", "pod netns", "pod side", "pod IPs", "pod")
    for v in _cut(na.veth_pairs, limit, t):
        t.add_row(f"{v.host_ifindex}: {v.host_ifname}@if{v.pod_ifindex}", v.bridge or "(routed)", v.netns,
                  f"{v.pod_ifindex}: {v.pod_ifname}@if{v.host_ifindex}", ", ".join(v.pod_ips) or "-", v.pod or "-")
    return t


def _devices(na: NodeAnalysis, limit: int = 0) -> Optional[Table]:
    if not (na.bridges or na.overlays or na.uplink):
        return None
    t = _table("Node devices", "device", "what", "details")
    if na.uplink:
        u = na.uplink
        det = ", ".join(u.addresses) + (f"; gateway {u.gateway}" if u.gateway else "")
        t.add_row(str(u.name), "uplink (default route)" + (" — guessed" if u.guessed else ""), det)
    for br, ports in na.bridges.items():
        t.add_row(br, "bridge", f"{len(ports)} port(s): " + ", ".join(ports[:12]) + (" …" if len(ports) > 12 else ""))
    for o in na.overlays:
        det = []
        for k, v in (("vni", o.vni), ("local", o.local), ("port", o.port), ("dev", o.dev)):
            if v is not None:
                det.append(f"{k} {v}")
        if o.addresses:
            det.append(", ".join(o.addresses))
        if o.fdb:
            det.append(f"{len(o.fdb)} fdb entr{'y' if len(o.fdb) == 1 else 'ies'}")
        if o.ports:
            det.append(f"{len(o.ports)} port(s)")
        t.add_row(o.name, f"{o.type} {o.kind or ''}".strip(), "; ".join(det))
    return t


def _host_port(ip: Optional[str], port: Optional[int]) -> str:
    host = ip or "-"
    if ":" in host:  # IPv6: [fd00::1]:53
        host = f"[{host}]"
    return f"{host}:{port if port is not None else '?'}"


def _endpoint_choice(s: ServiceRecord, e: Endpoint, index: int) -> str:
    """How the rules pick this endpoint, in the words of the mode in use."""
    if s.mode == "ipvs" or e.weight is not None:
        sched = s.chains.get("scheduler")
        return f"weight {e.weight}" + (f" ({sched})" if sched else "") if e.weight is not None else "ipvs"
    if s.mode == "nftables":
        n = len(s.endpoints or [])
        return f"numgen {index} of {n}" if n > 1 else "only endpoint"
    return "rule p=" + format_probability(e.rule_probability, style="rule", missing="always")


def _service_rows(s: ServiceRecord) -> tuple[str, str, str]:
    front = f"{_host_port(s.cluster_ip, s.port)}/{s.protocol}"
    if s.node_port:
        front += f"\nNodePort {s.node_port}"
    extras = []
    if s.session_affinity:
        extras.append("sessionAffinity" + (f" {s.affinity_timeout_s}s" if s.affinity_timeout_s else ""))
    if s.external_traffic_policy:
        extras.append(f"externalTrafficPolicy {s.external_traffic_policy}")
    if s.no_endpoints:
        extras.append("no endpoints (rejected)")
    if s.endpoints is None:
        eps = "unknown (service chain not in the input)"
    elif not s.endpoints:
        eps = "none"
    else:
        lines = []
        for i, e in enumerate(s.endpoints):
            share = format_probability(e.probability, style="fraction", missing="?")
            line = f"{e.address}  {_endpoint_choice(s, e, i)}  share {share}"
            if e.pod:
                line += f"  ({e.pod})"
            lines.append(line)
        eps = "\n".join(lines)
    return front, "; ".join(extras), eps


def _services(na: NodeAnalysis, limit: int = 0) -> Optional[Table]:
    if not na.services:
        return None
    t = _table(f"Services (kube-proxy mode: {na.proxy_mode.mode})", "service port", "front", "notes", "endpoints")
    for s in _cut(na.services, limit, t):
        front, extras, eps = _service_rows(s)
        t.add_row(s.name, front, extras, eps)
    return t


def _preflight(na: NodeAnalysis, limit: int = 0) -> Optional[Table]:
    if not na.preflight:
        return None
    t = _table("Preflight checks", "status", "check", "observed", "fix")
    colours = {"pass": "green", "fail": "red", "warn": "yellow", "unknown": "dim"}
    for c in na.preflight:
        t.add_row(Text(c.status, style=colours.get(c.status, "")), c.title, c.observed or "-",
                  c.fix if c.status != "pass" else "")
    return t


def _cut(rows: list, limit: int, table: Table, extra: int = 0) -> list:
    """The first ``limit`` rows (0: all); the table's caption says how many were left out."""
    if limit <= 0 or len(rows) <= limit + extra:
        return rows
    table.caption = (f"… {len(rows) - limit} more not shown (labreport analyze --json shows all; "
                     "--node / --service narrow the view; --limit 0 lists everything)")
    return rows[:limit]


def print_analysis(analysis: Analysis, console: Console, *, limit: int = 0) -> None:
    """Print the analysis; ``limit`` caps the rows of each long table (0: no cap)."""
    for na in analysis.nodes:
        head = f"Node {na.node}"
        if na.status != "ok":
            head += f" — {na.status}" + (f": {na.error}" if na.error else "")
        console.rule(Text(head))
        for make in (_components, _pods, _veths, _devices, _services, _preflight):
            t = make(na, limit)
            if t is not None:
                console.print(t)
        pm = na.proxy_mode
        if pm.mode != "unknown" or pm.detected_from:
            line = f"kube-proxy mode: {pm.mode}"
            if pm.detected_from:
                line += f" (from {pm.detected_from})"
            if len(pm.rule_sets_present) > 1:
                line += f"; rule sets present: {', '.join(pm.rule_sets_present)}"
            if pm.note:
                line += f" — {pm.note}"
            console.print(Text(line))
        if na.not_in_containers:
            console.print(Text("Not in containers (run on the host): " + ", ".join(na.not_in_containers)))
        if na.masquerade and (na.masquerade.mark or na.masquerade.rules):
            console.print(Text(f"Masquerade: mark {na.masquerade.mark or '?'} set by "
                               f"{na.masquerade.mark_chain or '?'}, applied in {na.masquerade.postrouting_chain or '?'}"))
        if na.not_collected:
            console.print("Not collected:", style="bold")
            for line in na.not_collected:
                console.print(Text(f"  - {line}"))
        if na.warnings:
            console.print("Warnings:", style="bold yellow")
            for line in na.warnings:
                console.print(Text(f"  - {line}"))
    if analysis.mismatches:
        console.rule("API vs nodes")
        t = _table("Mismatches", "kind", "node", "subject", "detail")
        for m in analysis.mismatches:
            t.add_row(m.kind, m.node or "-", m.subject, m.detail)
        console.print(t)
    if analysis.path and analysis.path.hops:
        p = analysis.path
        console.rule(Text(f"Path to {p.service or p.target or '?'}" + (f" from {p.from_node}" if p.from_node else "")))
        for h in p.hops:
            console.print(Text(f"{h.n:>3}. [{h.node or '-'}] {h.kind} {h.where}" + (f" — {h.detail}" if h.detail else "")))
        if p.note:
            console.print(Text(f"note: {p.note}"))
    if analysis.warnings:
        console.rule("Analysis warnings")
        for line in analysis.warnings:
            console.print(Text(f"  - {line}"))


def render_text(analysis: Analysis, width: int = 160) -> str:
    console = Console(width=width, record=True, color_system=None, force_terminal=False, file=_Null())
    print_analysis(analysis, console)
    return console.export_text()


class _Null:
    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass
