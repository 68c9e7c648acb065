"""What every collector shares: its declaration, the context it runs in, its output, and
the command runner. Modelled on sos report's plugins, made small.

A collector is a class with its declaration as *data* (class attributes, never mutated at
run time) and one method::

    class Iptables(Collector):
        name = "iptables"
        description = "netfilter rules through iptables-save (nat, filter, mangle, raw)"
        needs = (
            Need.root("iptables-save reads the kernel's rules only as root"),
            Need.binary("iptables-save", fix="apt-get install iptables"),
        )
        commands = (CommandSpec("iptables-save", ("iptables-save",)),)
        after = ()                     # collectors whose output this one reads (ctx.results)

        def collect(self, ctx: CollectContext) -> CollectorOutput:
            out = CollectorOutput(self.name)
            spec = self.command("iptables-save")
            res = ctx.run_spec(spec)
            out.evidence.append(res.to_evidence(spec.evidence_id))
            ...
            return out

A collector runs only the commands it declares, through ``ctx.run_spec(self.command(id))``:
each argv is written once, in ``commands``, so the plan and ``labreport doctor`` describe
exactly what ``collect`` runs (tests/test_collect_base.py records what each one runs).

Planning is separate from running: :func:`plan` checks a collector's declared needs
against a context (root? binary on ctx.path? socket present and writable? kernel
feature?) without running anything, so ``labreport doctor`` and the tests can ask what
would happen. :func:`run_collector` plans, then runs ``collect``; a missing required need
or any exception becomes ``CollectorStatus(ok=False, reason=…, fix=…)`` — never an abort.

A collector fills the fields of :class:`CollectorOutput` it owns (``processes``,
``containers``, ``netns``, ``iptables``, ``ip6tables``, ``nftables``, ``ipvs``, ``info``
updates) plus ``evidence`` (raw outputs, real or synthesized in the command's format) and
``warnings``; :meth:`CollectorOutput.apply` merges it into the NodeSnapshot. If it could do
only part of its work it sets ``out.partial("why", fix=…)``; the status says so.

Commands run through :meth:`CollectContext.run` (a :class:`CommandRunner`): a timeout, the
whole result kept (argv, exit code, stdout, stderr, duration, timed out), a missing binary
is a result with ``exit_code=None`` and ``error`` set, not an exception.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Literal, Mapping, Optional, Sequence

from labreport.snapshot import (
    CollectorStatus,
    Conntrack,
    Container,
    Evidence,
    Iptables,
    Ipvs,
    NetNamespace,
    NftRuleset,
    NodeSnapshot,
    ParseWarning,
    Process,
)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

NeedKind = Literal["root", "binary", "socket", "path", "kernel", "python"]


# --------------------------------------------------------------------------- needs


@dataclass(frozen=True)
class Need:
    """One thing a collector needs. ``what`` lists alternatives: any one of them will do
    (e.g. the three CRI sockets). ``required=False``: without it the collector still runs
    but gathers less (``why`` says what is lost)."""

    kind: NeedKind
    what: tuple[str, ...] = ()
    why: str = ""
    fix: Optional[str] = None
    required: bool = True
    # only the evidence text depends on it (else synthesized from native data): missing,
    # it does not make the result partial; `labreport doctor` still mentions it
    evidence_only: bool = False

    # constructors, so declarations read like sentences
    @classmethod
    def root(cls, why: str, *, required: bool = True, fix: str = "run it as root: sudo labreport …") -> "Need":
        return cls("root", (), why, fix, required)

    @classmethod
    def binary(cls, *names: str, why: str = "", fix: Optional[str] = None, required: bool = True,
               evidence_only: bool = False) -> "Need":
        return cls("binary", tuple(names), why or f"runs {names[0]}", fix, required, evidence_only)

    @classmethod
    def socket(cls, *paths: str, why: str = "", fix: Optional[str] = None, required: bool = True) -> "Need":
        return cls("socket", tuple(paths), why, fix, required)

    @classmethod
    def path(cls, *paths: str, why: str = "", fix: Optional[str] = None, required: bool = True) -> "Need":
        return cls("path", tuple(paths), why, fix, required)

    @classmethod
    def kernel(cls, feature: str, *probes: str, why: str = "", fix: Optional[str] = None,
               required: bool = True) -> "Need":
        """A kernel feature, present when any of ``probes`` (paths such as
        /proc/net/ip_vs or /sys/module/br_netfilter) exists. ``what[0]`` is its name."""
        return cls("kernel", (feature, *probes), why, fix, required)

    @classmethod
    def python(cls, *modules: str, why: str = "", fix: Optional[str] = None, required: bool = True) -> "Need":
        return cls("python", tuple(modules), why, fix or f"pip install {modules[0]}", required)

    def describe(self) -> str:
        if self.kind == "root":
            return "root"
        if self.kind == "kernel":
            return f"kernel feature {self.what[0]}"
        alts = " or ".join(self.what)
        return f"{self.kind} {alts}"


@dataclass(frozen=True)
class CommandSpec:
    """A command a collector may run (declared, for planning and `labreport doctor`).
    ``evidence_id`` names the command and the Evidence it becomes (a command whose output
    is only read, such as ``iptables --version``, becomes no Evidence)."""

    evidence_id: str
    argv: tuple[str, ...]
    optional: bool = False  # absent binary → skipped silently (no partial status)

    @property
    def display(self) -> str:
        return shlex.join(self.argv)


@dataclass
class NeedCheck:
    need: Need
    met: bool
    detail: str = ""  # what was found, or why not (the socket path, "not root" …)


@dataclass
class Plan:
    """What running a collector in a context would do, decided without running it."""

    collector: str
    checks: list[NeedCheck] = field(default_factory=list)
    commands: list[CommandSpec] = field(default_factory=list)

    @property
    def missing(self) -> list[NeedCheck]:
        return [c for c in self.checks if not c.met]

    @property
    def blocking(self) -> list[NeedCheck]:
        return [c for c in self.checks if not c.met and c.need.required]

    @property
    def runnable(self) -> bool:
        return not self.blocking

    def reason(self) -> Optional[str]:
        """One sentence for CollectorStatus.reason: the first blocking need."""
        if not self.blocking:
            return None
        parts = [f"needs {c.need.describe()}" + (f" ({c.detail})" if c.detail else "")
                 + (f": {c.need.why}" if c.need.why else "") for c in self.blocking]
        return "; ".join(parts)

    def fix(self) -> Optional[str]:
        fixes = [c.need.fix for c in self.blocking if c.need.fix]
        return "; ".join(dict.fromkeys(fixes)) or None


# --------------------------------------------------------------------------- commands


@dataclass
class CommandResult:
    argv: list[str]
    exit_code: Optional[int]  # None: it did not run (see error) or was killed on timeout
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    timed_out: bool = False
    error: Optional[str] = None  # "no such command: iptables-save", "permission denied" …

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def ran(self) -> bool:
        return self.error is None or self.timed_out

    @property
    def display(self) -> str:
        return shlex.join(self.argv)

    def to_evidence(self, evidence_id: str, *, command: Optional[str] = None) -> Evidence:
        stderr = self.stderr
        if self.error and self.error not in stderr:
            stderr = (stderr + ("\n" if stderr else "") + self.error)
        return Evidence(
            id=evidence_id,
            command=command or self.display,
            stdout=self.stdout,
            stderr=stderr,
            exit_code=self.exit_code,
            duration_s=round(self.duration_s, 4),
            timed_out=self.timed_out,
            origin="live",
        )

    def failure(self) -> str:
        """A short sentence saying why it failed (for a status reason)."""
        if self.timed_out:
            return f"`{self.display}` timed out after {self.duration_s:.1f}s"
        if self.error:
            return f"`{self.display}`: {self.error}"
        tail = (self.stderr.strip().splitlines() or [""])[-1][:300]
        return f"`{self.display}` exited {self.exit_code}" + (f": {tail}" if tail else "")


class CommandRunner:
    """Runs commands with a timeout and keeps everything. Never raises for the command's
    own failures (missing binary, non-zero exit, timeout): they are in the result."""

    def __init__(self, *, path: Optional[str] = None, timeout: float = 20.0, env: Optional[Mapping[str, str]] = None):
        self.path = path if path is not None else (os.environ.get("PATH") or DEFAULT_PATH)
        self.timeout = timeout
        base = dict(os.environ if env is None else env)
        base["PATH"] = self.path
        base.setdefault("LC_ALL", "C")  # tools print the same words everywhere
        self.env = base

    def which(self, name: str) -> Optional[str]:
        if "/" in name:
            return name if os.access(name, os.X_OK) else None
        return shutil.which(name, path=self.path)

    def run(self, argv: Sequence[str], *, timeout: Optional[float] = None, input: Optional[str] = None,
            env: Optional[Mapping[str, str]] = None) -> CommandResult:
        argv = [str(a) for a in argv]
        limit = self.timeout if timeout is None else timeout
        start = time.monotonic()
        exe = self.which(argv[0]) if argv else None
        if exe is None:
            return CommandResult(argv, None, error=f"no such command: {argv[0] if argv else '(empty)'} (PATH={self.path})")
        run_env = dict(self.env)
        if env:
            run_env.update(env)
        try:
            proc = subprocess.Popen(
                [exe, *argv[1:]],
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=run_env,
                start_new_session=True,  # a timeout kills the whole process group
            )
        except OSError as exc:
            return CommandResult(argv, None, duration_s=time.monotonic() - start,
                                 error=f"cannot run: {exc.strerror or exc}")
        try:
            out, err = proc.communicate(input=input.encode() if input is not None else None, timeout=limit)
            timed_out = False
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            out, err = proc.communicate()
            timed_out = True
        return CommandResult(
            argv,
            None if timed_out else proc.returncode,
            out.decode("utf-8", errors="replace"),
            err.decode("utf-8", errors="replace"),
            time.monotonic() - start,
            timed_out,
            f"timed out after {limit:g}s" if timed_out else None,
        )


# --------------------------------------------------------------------------- context

CAP_NET_ADMIN, CAP_SYS_ADMIN = 12, 21


def has_root_privileges() -> bool:
    """Root in the sense collectors need: uid 0 *with* CAP_SYS_ADMIN and CAP_NET_ADMIN
    (setns into namespaces, reading netfilter). A root whose capabilities were dropped
    (a restricted container, ``setpriv --bounding-set=-all``) is not."""
    if os.geteuid() != 0:
        return False
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("CapEff:"):
                    caps = int(line.split()[1], 16)
                    return bool(caps >> CAP_SYS_ADMIN & 1) and bool(caps >> CAP_NET_ADMIN & 1)
    except (OSError, ValueError):
        pass
    return True


@dataclass
class CollectContext:
    """Everything a collector may look at. Tests build one with a different PATH, a
    forced ``is_root=False``, another CRI socket, or a fake /proc root."""

    timeout: float = 60.0  # for the whole node
    command_timeout: float = 20.0  # per command
    cri_socket: Optional[str] = None  # None: auto-detect
    docker_host: Optional[str] = None  # None: DOCKER_HOST or unix:///var/run/docker.sock
    path: str = field(default_factory=lambda: os.environ.get("PATH") or DEFAULT_PATH)
    is_root: bool = field(default_factory=lambda: has_root_privileges())
    proc_root: str = "/proc"
    netns_dir: str = "/var/run/netns"
    # output of the collectors that ran before (name -> output): see Collector.after
    results: dict[str, "CollectorOutput"] = field(default_factory=dict)
    _runner: Optional[CommandRunner] = field(default=None, repr=False)

    @property
    def runner(self) -> CommandRunner:
        if self._runner is None or self._runner.path != self.path:
            self._runner = CommandRunner(path=self.path, timeout=self.command_timeout)
        return self._runner

    def run(self, argv: Sequence[str], **kw: Any) -> CommandResult:
        return self.runner.run(argv, **kw)

    def run_spec(self, spec: CommandSpec, **kw: Any) -> CommandResult:
        """Run a declared command (``Collector.command``) as it is declared."""
        return self.runner.run(spec.argv, **kw)

    def which(self, name: str) -> Optional[str]:
        return self.runner.which(name)

    def containers(self) -> list[Container]:
        """Containers found by the collectors that ran before this one."""
        out: list[Container] = []
        for res in self.results.values():
            if res.containers:
                out.extend(res.containers)
        return out


# --------------------------------------------------------------------------- output


@dataclass
class CollectorOutput:
    """What one collector gathered. Fields left None are not this collector's."""

    name: str
    processes: Optional[list[Process]] = None
    containers: Optional[list[Container]] = None
    netns: Optional[list[NetNamespace]] = None
    iptables: Optional[Iptables] = None
    ip6tables: Optional[Iptables] = None
    nftables: Optional[NftRuleset] = None
    ipvs: Optional[Ipvs] = None
    conntrack: Optional[Conntrack] = None
    info: dict[str, Any] = field(default_factory=dict)  # NodeInfo field -> value (dicts are merged)
    evidence: list[Evidence] = field(default_factory=list)
    warnings: list[ParseWarning] = field(default_factory=list)
    status: Optional[CollectorStatus] = None  # set by run_collector
    problems: list[str] = field(default_factory=list)  # partial failures, in order
    fixes: list[str] = field(default_factory=list)

    def partial(self, reason: str, *, fix: Optional[str] = None) -> None:
        """Record that part of the work failed; the run goes on."""
        self.problems.append(reason)
        if fix and fix not in self.fixes:
            self.fixes.append(fix)

    def apply(self, node: NodeSnapshot) -> None:
        """Merge into a NodeSnapshot (lists are extended, info dicts merged)."""
        if self.processes is not None:
            node.processes.extend(self.processes)
        if self.containers is not None:
            node.containers.extend(self.containers)
        if self.netns is not None:
            node.netns.extend(self.netns)
        for fld in ("iptables", "ip6tables", "nftables", "ipvs", "conntrack"):
            val = getattr(self, fld)
            if val is not None:
                setattr(node, fld, val)
        for key, val in self.info.items():
            cur = getattr(node.info, key, None)
            if isinstance(cur, dict) and isinstance(val, dict):
                cur.update(val)
            elif isinstance(cur, list) and isinstance(val, list):
                cur.extend(v for v in val if v not in cur)
            elif val is not None:
                setattr(node.info, key, val)
        node.evidence.extend(self.evidence)
        node.warnings.extend(self.warnings)
        if self.status is not None:
            node.collectors.append(self.status)


# --------------------------------------------------------------------------- collector


class Collector:
    """Base of all collectors: the declaration is class data; ``collect`` does the work."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    needs: ClassVar[tuple[Need, ...]] = ()
    commands: ClassVar[tuple[CommandSpec, ...]] = ()
    after: ClassVar[tuple[str, ...]] = ()  # run after these (their output is in ctx.results)

    def collect(self, ctx: CollectContext) -> CollectorOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def command(cls, evidence_id: str) -> CommandSpec:
        """This collector's declared command of that id (LookupError: not declared, a bug)."""
        for spec in cls.commands:
            if spec.evidence_id == evidence_id:
                return spec
        raise LookupError(f"collector {cls.name} declares no command {evidence_id!r}")

    def plan(self, ctx: CollectContext) -> Plan:
        """Check needs against ``ctx``; override to refine (e.g. choose a socket)."""
        return Plan(self.name, [check_need(n, ctx) for n in self.needs], list(self.commands))

    def not_applicable(self, p: Plan, ctx: CollectContext) -> bool:
        """Whether a plan that cannot run means "this node simply has no such thing" (no
        Docker socket on a containerd node) rather than a failed collection. The status
        then carries ``not_applicable: true`` and does not make the node partial."""
        return False


def _socket_usable(path: str) -> tuple[bool, str]:
    target = path[len("unix://"):] if path.startswith("unix://") else path
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return False, f"{target} does not exist"
    except OSError as exc:
        return False, f"{target}: {exc.strerror}"
    if not stat.S_ISSOCK(st.st_mode):
        return False, f"{target} is not a socket"
    if not os.access(target, os.R_OK | os.W_OK):
        return False, f"{target}: permission denied"
    return True, target


def check_need(need: Need, ctx: CollectContext) -> NeedCheck:
    if need.kind == "root":
        if ctx.is_root:
            return NeedCheck(need, True, "")
        if os.geteuid() == 0:
            return NeedCheck(need, False, "uid 0 but without CAP_SYS_ADMIN/CAP_NET_ADMIN")
        return NeedCheck(need, False, f"running as uid {os.geteuid()}, not root")
    if need.kind == "binary":
        for name in need.what:
            found = ctx.which(name)
            if found:
                return NeedCheck(need, True, found)
        return NeedCheck(need, False, "not on PATH")
    if need.kind == "socket":
        details = []
        for p in need.what:
            ok, detail = _socket_usable(p)
            if ok:
                return NeedCheck(need, True, detail)
            details.append(detail)
        if len(details) > 1 and all(d.endswith("does not exist") for d in details):
            return NeedCheck(need, False, "none of them exists")
        return NeedCheck(need, False, "; ".join(details))
    if need.kind == "path":
        for p in need.what:
            if os.path.exists(p):
                return NeedCheck(need, True, p)
        return NeedCheck(need, False, "none of " + ", ".join(need.what) + " exists")
    if need.kind == "kernel":
        probes = need.what[1:]
        for p in probes:
            if os.path.exists(p):
                return NeedCheck(need, True, p)
        return NeedCheck(need, False, "not in this kernel (no " + ", ".join(probes) + ")")
    if need.kind == "python":
        import importlib.util

        for mod in need.what:
            try:
                if importlib.util.find_spec(mod) is not None:
                    return NeedCheck(need, True, mod)
            except (ImportError, ValueError):
                continue
        return NeedCheck(need, False, "not installed")
    return NeedCheck(need, False, f"unknown need kind {need.kind!r}")


def plan(collector: Collector, ctx: CollectContext) -> Plan:
    return collector.plan(ctx)


def run_collector(collector: Collector, ctx: CollectContext) -> CollectorOutput:
    """Plan, then run. Always returns an output whose ``status`` is set."""
    start = time.monotonic()
    try:
        p = collector.plan(ctx)
    except Exception as exc:  # a broken plan is a failed collector, not an abort
        p = Plan(collector.name)
        out = CollectorOutput(collector.name)
        out.status = CollectorStatus(name=collector.name, ok=False,
                                     reason=f"planning failed: {type(exc).__name__}: {exc}",
                                     duration_s=round(time.monotonic() - start, 4))
        return out
    if not p.runnable:
        out = CollectorOutput(collector.name)
        out.status = CollectorStatus(name=collector.name, ok=False, reason=p.reason(), fix=p.fix(),
                                     duration_s=round(time.monotonic() - start, 4))
        try:
            if collector.not_applicable(p, ctx):
                out.status.not_applicable = True
        except Exception:
            pass
        return out
    try:
        out = collector.collect(ctx)
    except Exception as exc:
        out = CollectorOutput(collector.name)
        out.status = CollectorStatus(name=collector.name, ok=False,
                                     reason=f"failed: {type(exc).__name__}: {exc}",
                                     duration_s=round(time.monotonic() - start, 4))
        return out
    # needs that are not required but missing make the result partial
    soft = [c for c in p.missing if not c.need.required and not c.need.evidence_only]
    for c in soft:
        out.partial(f"without {c.need.describe()}" + (f": {c.need.why}" if c.need.why else ""), fix=c.need.fix)
    duration = round(time.monotonic() - start, 4)
    if out.status is None:
        if out.problems:
            out.status = CollectorStatus(name=collector.name, ok=True, partial=True,
                                         reason="; ".join(out.problems),
                                         fix="; ".join(out.fixes) or None, duration_s=duration)
        else:
            out.status = CollectorStatus(name=collector.name, ok=True, duration_s=duration)
    elif out.status.duration_s is None:
        out.status.duration_s = duration
    return out


def failed(name: str, reason: str, fix: Optional[str] = None) -> CollectorOutput:
    """An output that says the collector could not run (``collect`` may return it)."""
    out = CollectorOutput(name)
    out.status = CollectorStatus(name=name, ok=False, reason=reason, fix=fix)
    return out


def synthesized(evidence_id: str, command: str, text: str) -> Evidence:
    """Evidence rendered by labreport from native API data in the command's format."""
    return Evidence(id=evidence_id, command=command, stdout=text, origin="synthesized")


def format_table(rows: Iterable[Sequence[str]], headers: Sequence[str], *, gap: int = 3,
                 last_free: bool = True) -> str:
    """Left-aligned columns separated by at least ``gap`` spaces, like crictl/docker print
    (tabwriter). The last column is not padded."""
    rows = [list(map(str, r)) for r in rows]
    table = [list(headers)] + rows
    ncol = len(headers)
    widths = [max(len(r[i]) for r in table) for i in range(ncol)]
    lines = []
    for r in table:
        cells = []
        for i, cell in enumerate(r):
            if i == ncol - 1 and last_free:
                cells.append(cell)
            else:
                cells.append(cell.ljust(widths[i] + gap))
        lines.append("".join(cells).rstrip())
    return "\n".join(lines) + "\n"


__all__ = [
    "Collector",
    "CollectContext",
    "CollectorOutput",
    "CommandResult",
    "CommandRunner",
    "CommandSpec",
    "Need",
    "NeedCheck",
    "Plan",
    "check_need",
    "failed",
    "format_table",
    "plan",
    "run_collector",
    "synthesized",
]
