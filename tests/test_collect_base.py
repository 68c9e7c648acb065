"""collectors/base.py and the registry: declarations, planning without running, the
command runner, failures as statuses (never an abort), and every collector's failure path
through its declared needs (no binary via a PATH without it, not root, no socket)."""

from __future__ import annotations

import os
import sys
import time

import pytest

from collectors import registry
from collectors.base import (
    CollectContext,
    Collector,
    CollectorOutput,
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
    found, skipped = registry.load_all()
    # the ones this owner writes must all be there; nftables/ipvs may be pending (optional)
    names = {c.name for c in found}
    for required in ("processes", "sysinfo", "cri", "docker", "netlink", "iptables"):
        assert required in names, [s.reason for s in skipped]
    assert all(s.optional for s in skipped), skipped
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
    found, _ = registry.load_all()
    before = {c.name: (c.needs, c.commands) for c in found}
    ctx = CollectContext(path="/nonexistent", is_root=False, cri_socket="/nonexistent.sock")
    for c in found:
        plan(c, ctx)
    assert {c.name: (c.needs, c.commands) for c in found} == before


def test_netlink_runs_after_the_runtimes():
    found, _ = registry.load_all()
    order = [[c.name for c in stage] for stage in stages(found)]
    flat = {name: i for i, stage in enumerate(order) for name in stage}
    assert flat["netlink"] > flat["cri"] and flat["netlink"] > flat["docker"]
    assert flat["processes"] == 0 and flat["iptables"] == 0


def test_unknown_module_is_skipped_with_a_note(monkeypatch):
    monkeypatch.setitem(registry.COLLECTORS, "ipvs", "collectors.no_such_module_x:Nope")
    found, skipped = registry.load_all(["processes", "ipvs"])
    assert [c.name for c in found] == ["processes"]
    assert skipped[0].name == "ipvs" and "not installed" in skipped[0].reason and skipped[0].optional


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

    monkeypatch.setattr("collectors.local.load_all", lambda only=None: ([Slow(), registry.load("sysinfo")], []))
    start = time.monotonic()
    node = collect_local(name="n", timeout=0.5)
    assert time.monotonic() - start < 2.5
    st = {s.name: s for s in node.collectors}
    assert not st["slow"].ok and "timed out" in st["slow"].reason
    assert st["sysinfo"].ok and node.status == "partial"
