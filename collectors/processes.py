"""Processes from /proc (the source of the records) and `ps auxww` as evidence.

Each Process has pid, ppid, user, %CPU and %MEM computed the way ps does (CPU time over
elapsed time; RSS over MemTotal), VSZ/RSS in KiB, TTY, STAT, START, TIME, the full
command line, and whether it runs inside a container, told by its cgroup:
``docker-<id>.scope``, ``cri-containerd-<id>.scope``, ``crio-<id>.scope``,
``/kubepods/…/<id>``, ``/docker/<id>``, containerd namespaced ``/k8s.io/<id>``. When
labreport itself runs in a container (a kind node, a DaemonSet pod), the cgroup of pid 1
is the node's root: only what lies below it counts.

Evidence: the real `ps auxww` when `ps` exists, else the same table synthesized from
/proc (origin="synthesized").
"""

from __future__ import annotations

import os
import pwd
import re
import time
from typing import Optional

from collectors.base import CollectContext, Collector, CollectorOutput, CommandSpec, Need, synthesized
from labreport.snapshot import Process

_HEX64 = r"[0-9a-f]{64}"
_CGROUP_ID_RES = [
    re.compile(rf"(?:docker|cri-containerd|crio|libpod|containerd)-({_HEX64})\.scope"),
    re.compile(rf"/(?:docker|kubepods[^/]*(?:/[^/]+)*|k8s\.io|moby|crio|containerd|[^/]+)/({_HEX64})(?:/|$)"),
    re.compile(rf"/({_HEX64})(?:/|$)"),
]
_KUBEPODS_RE = re.compile(r"/kubepods")

_CTRL = re.compile(r"[\x00-\x1f\x7f]")
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def container_id_from_cgroup(text: str, root_prefixes: Optional[dict[str, str]] = None) -> tuple[bool, Optional[str]]:
    """(in a container?, container id) from the text of /proc/<pid>/cgroup.

    ``root_prefixes``: controller -> path of pid 1 in that hierarchy; the part of a path
    below it is what counts (labreport in a container sees its own container as root)."""
    paths = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        ctrl, path = parts[1], parts[2]
        root = (root_prefixes or {}).get(ctrl, "/")
        if root not in ("", "/") and path.startswith(root):
            path = path[len(root):] or "/"
        paths.append(path)
    in_kubepods = False
    for path in paths:
        for rx in _CGROUP_ID_RES:
            m = rx.search(path)
            if m:
                return True, m.group(1)
        if _KUBEPODS_RE.search(path):
            in_kubepods = True
    return in_kubepods, None


def _root_prefixes(proc_root: str) -> dict[str, str]:
    out = {}
    try:
        with open(f"{proc_root}/1/cgroup") as fh:
            for line in fh:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) == 3:
                    out[parts[1]] = parts[2]
    except OSError:
        pass
    return out


def _tty_name(tty_nr: int) -> str:
    if tty_nr == 0:
        return "?"
    major = (tty_nr >> 8) & 0xFFF
    minor = (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if 136 <= major <= 143:
        return f"pts/{minor + (major - 136) * 256}"
    if major == 4 and minor < 64:
        return f"tty{minor}"
    if major == 4:
        return f"ttyS{minor - 64}"
    return "?"


def _fmt_time(seconds: float) -> str:
    total = int(seconds)
    return f"{total // 60}:{total % 60:02d}"


def _fmt_start(start_epoch: float, now: float) -> str:
    t = time.localtime(start_epoch)
    if now - start_epoch < 24 * 3600:
        return time.strftime("%H:%M", t)
    if time.localtime(now).tm_year == t.tm_year:
        return f"{_MONTHS[t.tm_mon - 1]}{t.tm_mday:02d}"
    return str(t.tm_year)


class _User:
    def __init__(self) -> None:
        self.cache: dict[int, str] = {}

    def __call__(self, uid: int) -> str:
        if uid not in self.cache:
            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = str(uid)
            self.cache[uid] = name
        return self.cache[uid]


def read_processes(proc_root: str = "/proc") -> list[Process]:
    """Every process under ``proc_root``; one that exits while being read is skipped."""
    hz = os.sysconf("SC_CLK_TCK")
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    try:
        with open(f"{proc_root}/uptime") as fh:
            uptime = float(fh.read().split()[0])
        with open(f"{proc_root}/stat") as fh:
            btime = next(int(line.split()[1]) for line in fh if line.startswith("btime "))
        with open(f"{proc_root}/meminfo") as fh:
            mem_total_kb = next(int(line.split()[1]) for line in fh if line.startswith("MemTotal:"))
    except (OSError, StopIteration, ValueError):
        uptime, btime, mem_total_kb = 0.0, 0, 0
    now = time.time()
    roots = _root_prefixes(proc_root)
    user = _User()
    out: list[Process] = []
    for entry in os.listdir(proc_root):
        if not entry.isdigit():
            continue
        base = f"{proc_root}/{entry}"
        try:
            uid = os.stat(base).st_uid
            with open(f"{base}/stat", "rb") as fh:
                stat = fh.read().decode("utf-8", "replace")
            with open(f"{base}/cmdline", "rb") as fh:
                cmdline = fh.read()
            try:
                with open(f"{base}/cgroup") as fh:
                    cgroup = fh.read()
            except OSError:
                cgroup = ""
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # exited meanwhile (or hidden): nothing to record
        except OSError:
            continue
        rp = stat.rfind(")")
        comm = stat[stat.find("(") + 1:rp]
        f = stat[rp + 2:].split()
        if len(f) < 22:
            continue
        state, ppid, pgrp, session, tty_nr, tpgid = f[0], int(f[1]), int(f[2]), int(f[3]), int(f[4]), int(f[5])
        utime, stime = int(f[11]), int(f[12])
        nice, threads = int(f[16]), int(f[17])
        starttime, vsize, rss_pages = int(f[19]), int(f[20]), int(f[21])
        pid = int(entry)
        args = [a.decode("utf-8", "replace") for a in cmdline.split(b"\0") if a]
        command = " ".join(args) if args else f"[{comm}]"
        cpu_s = (utime + stime) / hz
        elapsed = uptime - starttime / hz
        rss_kb = rss_pages * page_kb
        flags = state
        if nice < 0:
            flags += "<"
        elif nice > 0:
            flags += "N"
        if session == pid:
            flags += "s"
        if threads > 1:
            flags += "l"
        if tpgid == pgrp and tpgid > 0:
            flags += "+"
        in_ctr, cid = container_id_from_cgroup(cgroup, roots)
        out.append(Process(
            pid=pid,
            ppid=ppid,
            user=user(uid),
            cpu=round(100.0 * cpu_s / elapsed, 1) if elapsed > 0 else 0.0,
            mem=round(100.0 * rss_kb / mem_total_kb, 1) if mem_total_kb else None,
            vsz=vsize // 1024,
            rss=rss_kb,
            tty=_tty_name(tty_nr),
            stat=flags,
            start=_fmt_start(btime + starttime / hz, now) if btime else None,
            time=_fmt_time(cpu_s),
            command=command,
            in_container=in_ctr,
            container_id=cid,
        ))
    out.sort(key=lambda p: p.pid)
    return out


def render_ps_aux(procs: list[Process]) -> str:
    """The `ps aux` table of procps, from Process records."""
    lines = ["USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND"]
    for p in procs:
        lines.append(
            f"{(p.user or '?')[:8]:<8} {p.pid:>5} {p.cpu or 0.0:>4.1f} {p.mem or 0.0:>4.1f} {p.vsz or 0:>6} "
            f"{p.rss or 0:>5} {p.tty or '?':<8} {p.stat or '?':<4} {p.start or '?':>5} {p.time or '0:00':>6} {_CTRL.sub('?', p.command)}")
    return "\n".join(lines) + "\n"


class ProcessesCollector(Collector):
    name = "processes"
    description = "every process from /proc (user, %CPU, %MEM, start, command line, container by cgroup)"
    needs = (
        Need.path("/proc/self/stat", why="reads processes from /proc"),
        Need.binary("ps", why="the real `ps auxww` text as evidence (else synthesized)",
                    fix="apt-get install procps", required=False, evidence_only=True),
    )
    commands = (CommandSpec("ps", ("ps", "auxww"), optional=True),)

    def collect(self, ctx: CollectContext) -> CollectorOutput:
        out = CollectorOutput(self.name)
        out.processes = read_processes(ctx.proc_root)
        ps = self.command("ps")
        res = ctx.run_spec(ps) if ctx.which(ps.argv[0]) else None
        if res is not None and res.ok:
            out.evidence.append(res.to_evidence("ps"))
        else:
            if res is not None:
                out.partial(f"ps failed ({res.failure()}); the table is synthesized from /proc")
            out.evidence.append(synthesized("ps", "ps aux", render_ps_aux(out.processes)))
        return out
