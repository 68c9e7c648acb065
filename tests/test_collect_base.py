"""collectors/base.py and the registry: declarations, planning without running, the
command runner, failures as statuses (never an abort), and every collector's failure path
through its declared needs (no binary via a PATH without it, not root, no socket)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import pytest

from collectors import registry
from collectors.base import (
    CollectContext,
    Collector,
    CollectorOutput,
    CommandResult,
    CommandRunner,
    CommandSpec,
    Need,
    format_table,
    plan,
    run_collector,
)
from collectors.local import collect_local, stages
from labreport.snapshot import Evidence, NodeSnapshot


# --------------------------------------------------------------------------- conformance


def test_every_registered_collector_loads_and_declares_itself():
    found = registry.load_all()
    # every registered collector is there: none is optional
    names = {c.name for c in found}
    for required in ("processes", "sysinfo", "cri", "docker", "netlink", "iptables"):
        assert required in names
    assert [c.name for c in found] == list(registry.COLLECTORS)
    for c in found:
        assert c.name in registry.COLLECTORS, c.name
        assert c.description, c.name
        assert all(isinstance(n, Need) for n in c.needs), c.name
        assert all(isinstance(s, CommandSpec) and s.argv for s in c.commands), c.name
        assert all(a in registry.COLLECTORS for a in c.after), c.name
        for n in c.needs:
            assert n.kind in ("root", "binary", "socket", "path", "kernel", "python"), (c.name, n)
            if n.kind != "root":
                assert n.what, (c.name, n)
        assert type(c).collect is not Collector.collect, c.name


def test_declarations_are_not_mutated_by_planning():
    found = registry.load_all()
    before = {c.name: (c.needs, c.commands) for c in found}
    ctx = CollectContext(path="/nonexistent", is_root=False, cri_socket="/nonexistent.sock")
    for c in found:
        plan(c, ctx)
    assert {c.name: (c.needs, c.commands) for c in found} == before


def test_netlink_runs_after_the_runtimes():
    found = registry.load_all()
    order = [[c.name for c in stage] for stage in stages(found)]
    flat = {name: i for i, stage in enumerate(order) for name in stage}
    assert flat["netlink"] > flat["cri"] and flat["netlink"] > flat["docker"]
    assert flat["processes"] == 0 and flat["iptables"] == 0


def test_a_missing_collector_module_is_an_error_not_a_skip(monkeypatch):
    # a module of ours that does not import is a bug to see (issue #10 item 3), not a
    # collector to skip quietly
    monkeypatch.setitem(registry.COLLECTORS, "ipvs", "collectors.no_such_module_x:Nope")
    with pytest.raises(ModuleNotFoundError, match="no_such_module_x"):
        registry.load_all(["processes", "ipvs"])
    monkeypatch.setitem(registry.COLLECTORS, "ipvs", "collectors.processes:Nope")
    with pytest.raises(LookupError, match="defines no Collector class Nope"):
        registry.load("ipvs")


# --------------------------------------------------------------------------- runner


def test_runner_keeps_everything():
    r = CommandRunner(timeout=10).run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"])
    assert (r.exit_code, r.stdout, r.stderr.strip(), r.timed_out) == (3, "out\n", "err", False)
    assert r.duration_s > 0 and not r.ok and "exited 3: err" in r.failure()
    ev = r.to_evidence("x")
    assert isinstance(ev, Evidence) and ev.exit_code == 3 and ev.stdout == "out\n" and ev.origin == "live"


def test_runner_timeout_kills_the_process_group():
    start = time.monotonic()
    r = CommandRunner().run(["sh", "-c", "sleep 30 & sleep 30"], timeout=0.3)
    assert r.timed_out and r.exit_code is None and time.monotonic() - start < 5
    assert "timed out" in r.failure()


def test_runner_missing_binary_is_a_result_not_an_exception():
    r = CommandRunner(path="/nonexistent").run(["iptables-save"])
    assert r.exit_code is None and not r.ok and "no such command: iptables-save" in r.error
    assert "no such command" in r.to_evidence("iptables-save").stderr


def test_format_table_pads_like_tabwriter():
    text = format_table([["abc", "1", "last col"]], ["A", "LONGER", "Z"])
    assert text.splitlines() == ["A     LONGER   Z", "abc   1        last col"]


# --------------------------------------------------------------------------- failures


class _Boom(Collector):
    name = "boom"
    description = "raises"

    def collect(self, ctx):
        raise RuntimeError("kaput")


class _NeedsThings(Collector):
    name = "needy"
    description = "needs root, a binary and a socket"
    needs = (
        Need.root(why="reads the kernel"),
        Need.binary("definitely-not-a-binary", fix="apt-get install nothing"),
        Need.socket("/nonexistent/x.sock", why="talks to x"),
        Need.kernel("ip_vs", "/proc/net/ip_vs_nonexistent", required=False, why="IPVS"),
    )

    def collect(self, ctx):  # pragma: no cover - never reached
        raise AssertionError("must not run when needs are missing")


class _Partial(Collector):
    name = "part"
    description = "half works"
    needs = (Need.binary("definitely-not-a-binary", required=False, why="extra text", fix="apt-get install x"),)

    def collect(self, ctx):
        out = CollectorOutput(self.name)
        out.partial("one file unreadable")
        return out


def test_exception_becomes_a_failed_status():
    out = run_collector(_Boom(), CollectContext())
    assert out.status is not None and not out.status.ok
    assert "RuntimeError: kaput" in out.status.reason


def test_missing_needs_block_with_reason_and_fix():
    out = run_collector(_NeedsThings(), CollectContext(is_root=False))
    st = out.status
    assert not st.ok
    assert "needs root" in st.reason and "definitely-not-a-binary" in st.reason and "/nonexistent/x.sock" in st.reason
    assert "apt-get install nothing" in st.fix
    p = plan(_NeedsThings(), CollectContext(is_root=False))
    assert {c.need.kind for c in p.blocking} == {"root", "binary", "socket"}
    assert [c.need.kind for c in p.missing if not c.need.required] == ["kernel"]


def test_soft_needs_make_the_result_partial():
    out = run_collector(_Partial(), CollectContext())
    st = out.status
    assert st.ok and st.partial
    assert "one file unreadable" in st.reason and "definitely-not-a-binary" in st.reason
    assert st.fix == "apt-get install x"


@pytest.mark.parametrize("name,binary,fix", [
    ("iptables", "iptables-save", "apt-get install iptables"),
])
def test_collector_without_its_binary(name, binary, fix, tmp_path):
    c = registry.load(name)
    out = run_collector(c, CollectContext(path=str(tmp_path), is_root=True))
    assert not out.status.ok and binary in out.status.reason and fix in (out.status.fix or "")


def test_collectors_not_root_by_declared_needs():
    ctx = CollectContext(is_root=False)
    for name in ("iptables",):
        st = run_collector(registry.load(name), ctx).status
        assert not st.ok and "needs root" in st.reason and "sudo" in st.fix


def test_processes_without_ps_synthesizes_its_table(tmp_path):
    out = run_collector(registry.load("processes"), CollectContext(path=str(tmp_path)))
    assert out.status.ok and not out.status.partial  # ps is optional
    ev = out.evidence[0]
    assert ev.id == "ps" and ev.origin == "synthesized"
    assert any(p.pid == os.getpid() for p in out.processes)


def test_collect_local_merges_and_marks_partial(tmp_path):
    ctx = CollectContext(path=str(tmp_path), is_root=True, timeout=30)  # no binaries at all
    node = collect_local(name="n1", only=["processes", "iptables"], ctx=ctx)
    assert isinstance(node, NodeSnapshot) and node.name == "n1"
    names = {st.name: st for st in node.collectors}
    assert names["processes"].ok and not names["iptables"].ok
    assert node.status == "partial" and "iptables" in node.error
    assert node.processes and node.evidence_by_id("ps") is not None


def test_collect_local_timeout_is_a_status(monkeypatch):
    class Slow(Collector):
        name = "slow"
        description = "sleeps"

        def collect(self, ctx):
            time.sleep(3)
            return CollectorOutput(self.name)

    monkeypatch.setattr("collectors.local.load_all", lambda only=None: [Slow(), registry.load("sysinfo")])
    start = time.monotonic()
    node = collect_local(name="n", timeout=0.5)
    assert time.monotonic() - start < 2.5
    st = {s.name: s for s in node.collectors}
    assert not st["slow"].ok and "timed out" in st["slow"].reason
    assert st["sysinfo"].ok and node.status == "partial"


# --------------------------------------------------------------------------- declaration = what runs

FIX = Path(__file__).resolve().parent / "fixtures"
# real outputs (see the READMEs beside them) for the commands whose output drives a branch;
# any other command "succeeds" with empty output
CANNED = {
    ("ps", "auxww"): FIX / "parsers/ps/here-ps-aux-grep.out",
    ("iptables-save",): FIX / "parsers/iptables-save/lab-iptables-save.txt",  # "(nf_tables)": the legacy listing is read too
    ("ip6tables-save",): FIX / "parsers/iptables-save/lab-iptables-save.txt",
    ("nft", "list", "ruleset"): FIX / "parsers/nft/kube-proxy-lab.nft",
    ("nft", "-j", "list", "ruleset"): FIX / "parsers/nft/kube-proxy-lab.json",
    ("ipvsadm", "-Ln"): FIX / "parsers/ipvsadm/opsnull-251-ipvsadm-Ln.txt",
}
CANNED_TEXT = {("iptables", "--version"): "iptables v1.8.9 (nf_tables)\n"}  # this machine's, verbatim


class RecordingRunner(CommandRunner):
    """Every binary is present; every command is recorded, none is run."""

    def __init__(self) -> None:
        super().__init__(path="/recorded")
        self.ran: list[tuple[str, ...]] = []
        self._lock = threading.Lock()

    def which(self, name: str) -> Optional[str]:
        return "/recorded/" + name

    def run(self, argv, *, timeout=None, input=None, env=None) -> CommandResult:  # type: ignore[override]
        key = tuple(str(a) for a in argv)
        with self._lock:
            self.ran.append(key)
        text = CANNED[key].read_text(encoding="utf-8") if key in CANNED else CANNED_TEXT.get(key, "")
        return CommandResult(list(key), 0, text, "", 0.001)


def _recording_ctx() -> tuple[CollectContext, RecordingRunner]:
    runner = RecordingRunner()
    ctx = CollectContext(path=runner.path, is_root=True, cri_socket="/nonexistent.sock",
                         docker_host="unix:///nonexistent.sock")
    ctx._runner = runner
    return ctx, runner


@pytest.mark.parametrize("name", [n for n in registry.COLLECTORS if n != "netlink"])  # netlink: typed-rules' part
def test_a_collector_runs_exactly_the_commands_it_declares(name: str) -> None:
    c = registry.load(name)
    ctx, runner = _recording_ctx()
    assert ctx.runner is runner
    declared = {spec.argv for spec in c.commands}
    if c.commands:
        out = c.collect(ctx)  # straight to collect: the machine's own needs (IPVS, root) do not matter here
    else:  # API collectors (CRI, Docker) declare no command: planned here, nothing runs
        out = run_collector(c, ctx)
    assert set(runner.ran) == declared, (name, runner.ran)
    assert len(runner.ran) == len(declared), (name, runner.ran)  # each once
    assert isinstance(out, CollectorOutput)
    # what doctor shows for it is that declaration
    from labreport.cli.doctor import diagnose

    ctx2, _ = _recording_ctx()
    shown = next(e for e in diagnose(ctx2)["collectors"] if e["name"] == name)
    assert {tuple(cmd["argv"]) for cmd in shown["commands"]} == declared


def test_command_lookup_names_an_undeclared_command() -> None:
    with pytest.raises(LookupError, match="declares no command 'iptables'"):
        registry.load("ipvs").command("iptables")
