"""Collect several nodes at once: ``labreport collect --nodes master,worker``.

``collect_nodes(nodes, …)`` runs every node concurrently (asyncio): a node named
``local`` or this host's name is collected in-process (``collectors.local.collect_local``,
in a worker thread); every other node over SSH (``transport.ssh``), where
``labreport collect --local --out -`` prints the node's snapshot on stdout. Each node has
its own timeout; a node that fails (refused, auth, unknown host key, timeout, labreport
missing) becomes ``NodeSnapshot(status="failed", error=why)`` with a ``ssh`` collector
record whose ``fix`` says what to do, and never costs the other nodes their data.
Progress goes to stderr (rich), one line per node.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import shlex
import socket
import threading
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from labreport.errors import TransportError
from labreport.snapshot import CollectorStatus, NodeSnapshot
from labreport.transport.bootstrap import Bootstrap
from labreport.transport.parts import Parts
from labreport.transport.ssh import COLLECT_ONLY, DEFAULT_MAX_OUTPUT, NodeFailure, collect_over_ssh, remote_argv
from labreport.transport.sshconfig import resolve, split_spec

LOCAL_NAMES = ("local", "localhost")
MAX_PARALLEL = 32  # SSH sessions at once (-j/--parallel); each node's timeout starts when its turn comes


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def is_local(node: str) -> bool:
    host = socket.gethostname()
    return node in LOCAL_NAMES or node == host or node == host.split(".")[0]


def failed_node(name: str, error: str, fix: Optional[str] = None, duration: Optional[float] = None) -> NodeSnapshot:
    return NodeSnapshot(
        name=name, source="ssh", collected_at=_now(), status="failed", error=error,
        collectors=[CollectorStatus(name="ssh", ok=False, reason=error, fix=fix,
                                    duration_s=round(duration, 3) if duration is not None else None)],
    )


class _Progress:
    """One line per node on stderr; a no-op when disabled."""

    def __init__(self, nodes: Sequence[str], enabled: bool):
        self._lock = threading.Lock()
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[node]}[/]"),
                                  TextColumn("{task.description}"), TimeElapsedColumn(),
                                  console=Console(stderr=True), transient=False)
        for n in nodes:
            self._tasks[n] = self._progress.add_task("waiting", node=n, total=1)

    def __enter__(self) -> "_Progress":
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, node: str, text: str, done: bool = False) -> None:
        if self._progress is None:
            return
        with self._lock:
            self._progress.update(self._tasks[node], description=text, completed=1 if done else 0)


async def _one(node: str, *, ssh_user: Optional[str], ssh_config: Optional[str], known_hosts: Optional[str],
               sudo: bool, remote_command: Optional[str], timeout: float, cri_socket: Optional[str],
               progress: _Progress, bootstrap: Optional[Bootstrap] = None,
               bootstrap_timeout: float = 600.0, max_output: int = DEFAULT_MAX_OUTPUT,
               phases: Optional[dict[str, str]] = None) -> NodeSnapshot:
    started = time.monotonic()
    phase = {"now": "starting"}

    def set_phase(text: str) -> None:
        phase["now"] = text
        if phases is not None:
            phases[node] = text
        progress.update(node, text)

    try:
        if is_local(node):
            from collectors.local import collect_local

            set_phase("collecting in-process")
            snap = await asyncio.wait_for(
                asyncio.to_thread(collect_local, name=node, cri_socket=cri_socket, timeout=timeout), timeout + 5)
        else:
            set_phase("resolving (ssh -G)")
            try:
                target = await asyncio.to_thread(resolve, node, ssh_config=ssh_config, ssh_user=ssh_user,
                                                 known_hosts=known_hosts)
            except ValueError as exc:
                raise NodeFailure(str(exc), fix="fix the ssh config (ssh -G HOST shows what OpenSSH reads)") from None
            name = node_name(node)

            def command(exe: Optional[str]) -> str:
                if exe and sudo:  # the bootstrapped venv's collect-only entry point
                    return remote_argv(None, sudo=True, cri_socket=cri_socket, name=name,
                                       timeout=timeout).replace(COLLECT_ONLY, shlex.quote(exe + "-collect"), 1)
                return remote_argv(shlex.quote(exe) if exe else remote_command, sudo=sudo, cri_socket=cri_socket,
                                   name=name, timeout=timeout)

            # the first install on a node may take minutes (pip): that is not the collector's time
            budget = timeout + (bootstrap_timeout if bootstrap is not None else 0.0)
            run = await asyncio.wait_for(collect_over_ssh(target, command, timeout=timeout, phase=set_phase,
                                                          bootstrap=bootstrap, max_output=max_output), budget)
            snap = run.node
            snap.name = name
            for w in run.warnings:
                snap.collectors.append(CollectorStatus(name="ssh", ok=True, reason=w, partial=True))
    except NodeFailure as exc:
        snap = failed_node(node_name(node), str(exc), exc.fix, time.monotonic() - started)
    except (asyncio.TimeoutError, TimeoutError):
        snap = failed_node(node_name(node), f"timed out after {timeout:g}s ({phase['now']})",
                           "raise --timeout, or check the node (is it up? is the collector stuck?)",
                           time.monotonic() - started)
    except Exception as exc:  # one node's bug must not lose the others
        snap = failed_node(node_name(node), f"{type(exc).__name__}: {exc}", None, time.monotonic() - started)
    took = time.monotonic() - started
    if snap.status == "failed":
        progress.update(node, f"[red]failed[/]: {snap.error}", done=True)
    else:
        progress.update(node, f"[green]{snap.status}[/] ({took:.1f}s)", done=True)
    return snap


def node_name(spec: str) -> str:
    """The node's name in the snapshot: ``user@host:port`` is recorded as ``host``."""
    host, _user, _port = split_spec(spec)
    return host or spec


async def collect_nodes_async(nodes: Sequence[str], *, ssh_user: Optional[str] = None, ssh_config: Optional[str] = None,
                              sudo: bool = False, remote_command: Optional[str] = None, timeout: float = 60.0,
                              cri_socket: Optional[str] = None, progress: bool = False,
                              known_hosts: Optional[str] = None, bootstrap: Optional[Bootstrap] = None,
                              parallel: Optional[int] = None, deadline: Optional[float] = None,
                              parts: Optional[Parts] = None, max_output: int = DEFAULT_MAX_OUTPUT
                              ) -> list[NodeSnapshot]:
    """At most ``parallel`` sessions at once; everything ends by ``deadline`` seconds from
    now (the nodes not finished then are marked failed). With ``parts`` each node is
    written to disk as it arrives and only a stub of it kept in memory."""
    gate = asyncio.Semaphore(max(1, parallel or MAX_PARALLEL))
    phases: dict[str, str] = {}
    results: list[Optional[NodeSnapshot]] = [None] * len(nodes)

    async def gated(i: int, n: str, prog: _Progress) -> None:
        async with gate:
            snap = await _one(n, ssh_user=ssh_user, ssh_config=ssh_config, known_hosts=known_hosts, sudo=sudo,
                              remote_command=remote_command, timeout=timeout, cri_socket=cri_socket, progress=prog,
                              bootstrap=bootstrap, max_output=max_output, phases=phases)
        results[i] = parts.write(i, snap) if parts is not None else snap

    with _Progress(nodes, progress) as prog:
        tasks = [asyncio.ensure_future(gated(i, n, prog)) for i, n in enumerate(nodes)]
        try:
            _done, pending = await asyncio.wait(tasks, timeout=deadline)
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if pending:
            for i, n in enumerate(nodes):
                if results[i] is None:
                    where = phases.get(n)
                    why = (f"not finished by the --deadline of {deadline:g}s ({where})" if where
                           else f"not started before the --deadline of {deadline:g}s (-j/--parallel "
                                f"{max(1, parallel or MAX_PARALLEL)} sessions were busy)")
                    snap = failed_node(node_name(n), why, "raise --deadline or -j/--parallel, or leave out the "
                                       "nodes that do not answer")
                    prog.update(n, f"[red]failed[/]: {why}", done=True)
                    results[i] = parts.write(i, snap) if parts is not None else snap
    return [r for r in results if r is not None]


def collect_nodes(nodes: Sequence[str], *, ssh_user: Optional[str] = None, ssh_config: Optional[str] = None,
                  sudo: bool = False, remote_command: Optional[str] = None, timeout: float = 60.0,
                  cri_socket: Optional[str] = None, progress: bool = False,
                  known_hosts: Optional[str] = None, bootstrap: bool = False,
                  bootstrap_wheel: Optional[str] = None, bootstrap_dir: Optional[str] = None,
                  parallel: Optional[int] = None, deadline: Optional[float] = None,
                  parts: Optional[Parts] = None, max_output: int = DEFAULT_MAX_OUTPUT) -> list[NodeSnapshot]:
    """One NodeSnapshot per node, in the order given (see the module docstring).

    ``bootstrap``: install this labreport on each node first (transport/bootstrap.py).
    ``parts``: write each node to disk as it arrives; the list then holds stubs."""
    boot: Optional[Bootstrap] = None
    if bootstrap or bootstrap_wheel:
        if remote_command:
            raise TransportError("--bootstrap installs its own labreport on the nodes: drop --remote-command")
        if any(not is_local(n) for n in nodes):
            boot = Bootstrap.prepare(bootstrap_wheel, bootstrap_dir)
    names = [node_name(n) for n in nodes]
    if len(set(names)) != len(names):
        raise TransportError(f"a node is named twice in --nodes: {', '.join(nodes)}")
    if ssh_config and not Path(ssh_config).expanduser().exists():
        raise TransportError(f"ssh config {ssh_config} does not exist")
    if known_hosts and not Path(known_hosts).expanduser().exists():
        raise TransportError(f"known_hosts file {known_hosts} does not exist")
    coro = collect_nodes_async(nodes, ssh_user=ssh_user, ssh_config=ssh_config, sudo=sudo,
                               remote_command=remote_command, timeout=timeout, cri_socket=cri_socket,
                               progress=progress, known_hosts=known_hosts, bootstrap=boot,
                               parallel=parallel, deadline=deadline, parts=parts, max_output=max_output)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # called from inside an event loop: run ours in a thread
    box: dict[str, Any] = {}
    t = threading.Thread(target=lambda: box.setdefault("r", asyncio.run(coro)))
    t.start()
    t.join()
    result: list[NodeSnapshot] = box["r"]
    return result
