"""Collect this node in-process: run every registered collector, merge their outputs into
one NodeSnapshot.

Collectors run in parallel in stages: a collector that reads another's output (its
``after``, e.g. netlink after cri and docker, for the sandbox pids) runs in a later stage.
Each runs in a daemon thread (the work is I/O: sockets, subprocesses, /proc; netlink
enters namespaces by thread-local setns, never by forking), so a collector stuck past the
node's ``timeout`` is recorded as failed and the run returns anyway.

Status: "ok" when every collector ran fully; "partial" when one failed or ran in part —
except a runtime that is simply not on this node (no Docker socket on a containerd node):
its status says so (``not_applicable``) without making the node partial. Not root: the
node's ``error`` names what needs root; everything else is still collected.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
import threading
import time
from typing import Optional

from collectors.base import CollectContext, Collector, CollectorOutput, plan, run_collector
from collectors.registry import load_all
from labreport.snapshot import CollectorStatus, NodeSnapshot


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def stages(collectors: list[Collector]) -> list[list[Collector]]:
    """Group collectors so each runs after the ones named in its ``after`` (when present)."""
    present = {c.name for c in collectors}
    done: set[str] = set()
    remaining = list(collectors)
    out: list[list[Collector]] = []
    while remaining:
        ready = [c for c in remaining if all(a in done or a not in present for a in c.after)]
        if not ready:  # a cycle: run the rest together rather than never
            ready = remaining
        out.append(ready)
        done.update(c.name for c in ready)
        remaining = [c for c in remaining if c not in ready]
    return out


def _run_stage(stage: list[Collector], ctx: CollectContext, deadline: float) -> dict[str, CollectorOutput]:
    results: dict[str, CollectorOutput] = {}
    lock = threading.Lock()

    def work(c: Collector) -> None:
        res = run_collector(c, ctx)
        with lock:
            results[c.name] = res

    threads = []
    for c in stage:
        t = threading.Thread(target=work, args=(c,), name=f"collector-{c.name}", daemon=True)
        t.start()
        threads.append((c, t, time.monotonic()))
    for c, t, started in threads:
        t.join(max(0.0, deadline - time.monotonic()))
        with lock:
            if c.name not in results:
                out = CollectorOutput(c.name)
                out.status = CollectorStatus(name=c.name, ok=False,
                                             reason=f"timed out: still running after {time.monotonic() - started:.1f}s "
                                                    f"(the node's --timeout)",
                                             fix="run again with a larger --timeout",
                                             duration_s=round(time.monotonic() - started, 3))
                results[c.name] = out
    return results


def root_blocked(collectors: list[Collector], ctx: CollectContext) -> set[str]:
    """Collectors with an unmet root need (required or not)."""
    if ctx.is_root:
        return set()
    return {c.name for c in collectors
            for check in plan(c, ctx).checks if check.need.kind == "root" and not check.met}


def root_message(collectors: list[Collector], ctx: CollectContext) -> Optional[str]:
    """When not root: which collectors need it (fully or for part of their work)."""
    if ctx.is_root:
        return None
    blocked, reduced = [], []
    for c in collectors:
        for check in plan(c, ctx).checks:
            if check.need.kind == "root" and not check.met:
                (blocked if check.need.required else reduced).append(c.name)
    if not blocked and not reduced:
        return None
    parts = [f"not root (uid {os.geteuid()})" if os.geteuid() != 0 else
             "root without CAP_SYS_ADMIN/CAP_NET_ADMIN (capabilities dropped)"]
    if blocked:
        parts.append("not collected without root: " + ", ".join(blocked))
    if reduced:
        parts.append("collected only in part without root: " + ", ".join(reduced))
    parts.append("run it as root: sudo labreport collect --local")
    return "; ".join(parts)


def collect_local(*, name: Optional[str] = None, cri_socket: Optional[str] = None, docker_host: Optional[str] = None,
                  timeout: float = 60.0, only: Optional[list[str]] = None,
                  ctx: Optional[CollectContext] = None) -> NodeSnapshot:
    """This node's snapshot. ``only`` restricts the collectors (tests); ``ctx`` replaces
    the context (tests: another PATH, is_root=False)."""
    started = time.monotonic()
    # crictl's own variable: a node configured for crictl is configured for us too
    cri_socket = cri_socket or os.environ.get("CONTAINER_RUNTIME_ENDPOINT") or None
    if ctx is None:
        ctx = CollectContext(timeout=timeout, command_timeout=max(1.0, min(20.0, timeout / 2)),
                             cri_socket=cri_socket, docker_host=docker_host)
    collectors = load_all(only)
    deadline = started + timeout
    for stage in stages(collectors):
        ctx.results.update(_run_stage(stage, ctx, deadline))

    node = NodeSnapshot(name=name or socket.gethostname(), source="live", collected_at=_now())
    order = {n: i for i, n in enumerate([c.name for c in collectors])}
    for cname in sorted(ctx.results, key=lambda n: order.get(n, 99)):
        ctx.results[cname].apply(node)
    node.netns.sort(key=lambda ns: 0 if ns.kind == "node" else 1)  # kind="node" first (stable)

    failed = [st for st in node.collectors
              if not (st.ok and not st.partial) and not st.not_applicable]
    problems = []
    msg = root_message(collectors, ctx)
    if msg:
        problems.append(msg)
    explained = root_blocked(collectors, ctx) if msg else set()  # already named by the root message
    bad = [st.name for st in failed if not st.ok and st.name not in explained]
    part = [st.name for st in failed if st.ok and st.partial and st.name not in explained]
    if bad:
        problems.append("not collected: " + ", ".join(bad))
    if part:
        problems.append("collected in part: " + ", ".join(part))
    if failed:
        node.status = "failed" if all(not st.ok for st in node.collectors) else "partial"
        node.error = "; ".join(problems)
    elif msg:
        node.error = msg
    node.collect_duration_s = round(time.monotonic() - started, 3)
    return node
