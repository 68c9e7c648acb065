"""Policy routing in ``labreport trace`` against the kernel (issue 11).

Lab (namespaces of this module's own, unique names, removed after):
  R, the node: lan0 (192.168.71.1/24) to a client C (192.168.71.2 and .130), lan1
      (192.168.72.1/24) to a client K (192.168.72.2), up1 (10.201.1.1/24) to D1 and up2
      (10.202.1.1/24) to D2; D1 and D2 both own 10.99.99.9 and 10.55.5.5. Its main table
      sends everything to D1; tables 100, 200, 300, 400, 500, 600, 700 hold other routes
      (a blackhole, a prohibit, a throw, an unreachable, a `local` prefix), and its ip rules
      take every selector and action the model reads (from-prefix, fwmark with a mask — the
      mark set by iptables MARK rules in mangle PREROUTING/OUTPUT —, iif, ipproto/dport,
      prohibit/blackhole/unreachable, suppress_prefixlength, goto, not) plus two it must
      not guess (oif, uidrange); IPv6 addresses on lan0/up1/up2 with a from-prefix rule, a
      prohibit and a blackhole rule and a prohibit route.
The snapshot is what ``labreport collect --local`` records inside R. For each flow the
model's route (device, gateway, table) or outcome is compared with the kernel's own
``ip route get … from … iif … mark … ipproto … dport …`` answer in R; a few flows also
send real packets and the raw-table counters of D1/D2 say which one received them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import pytest

from labreport import snapshot as snapmod
from labreport.analysis import analyze
from labreport.analysis.trace import Flow, build_world, run_flow
from tests.conftest import lab_name, needs_lab
from tests.lab.cli import labreport_argv

pytestmark = [pytest.mark.lab, needs_lab("iptables", "nsenter")]

ROUTES_AND_RULES = """\
addr add 192.168.71.1/24 dev lan0
addr add 192.168.72.1/24 dev lan1
addr add 10.201.1.1/24 dev up1
addr add 10.202.1.1/24 dev up2
link set lan0 up
link set lan1 up
link set up1 up
link set up2 up
route add default via 10.201.1.2 dev up1
route add default via 10.202.1.2 dev up2 table 100
route add default via 10.202.1.2 dev up2 table 200
route add blackhole 10.66.0.0/16 table 200
route add prohibit 10.77.0.0/16 table 300
route add default via 10.202.1.2 dev up2 table 300
route add 10.99.0.0/16 via 10.202.1.2 dev up2 table 400
route add throw 10.98.0.0/16 table 400
route add unreachable 10.97.0.0/16 table 400
route add default via 10.202.1.2 dev up2 table 500
route add local 10.123.0.0/16 dev lo table 600
route add default via 10.201.1.2 dev up1 table 700
rule add from 192.168.71.128/25 lookup 100 pref 100
rule add from 10.202.1.1 to 10.55.0.0/16 lookup 700 pref 120
rule add fwmark 0x10/0xff lookup 200 pref 150
rule add iif lan1 lookup 300 pref 200
rule add to 10.88.0.0/16 prohibit pref 250
rule add to 10.87.0.0/16 blackhole pref 260
rule add to 10.86.0.0/16 unreachable pref 270
rule add ipproto tcp dport 8000-8099 lookup 100 pref 300
rule add fwmark 0x20 to 10.123.0.0/16 lookup 600 pref 310
rule add lookup main suppress_prefixlength 0 pref 350
rule add from 192.168.71.77 oif up1 lookup 100 pref 380
rule add from 192.168.71.78 uidrange 1000-2000 lookup 100 pref 385
rule add to 10.90.0.0/16 goto 450 pref 390
rule add to 10.99.0.0/16 lookup 400 pref 400
rule add to 10.98.0.0/16 lookup 400 pref 410
rule add to 10.97.0.0/16 lookup 400 pref 420
rule add to 10.90.0.0/16 lookup 100 pref 430
rule add not to 10.96.0.0/12 lookup 500 pref 450
"""
ROUTES_AND_RULES_6 = """\
addr add fd71::1/64 dev lan0 nodad
addr add fd01::1/64 dev up1 nodad
addr add fd02::1/64 dev up2 nodad
route add default via fd01::2 dev up1
route add default via fd02::2 dev up2 table 100
route add prohibit fd77::/32 table 100
rule add from fd71::80/121 lookup 100 pref 100
rule add to fd88::/32 prohibit pref 250
rule add to fd89::/32 blackhole pref 260
"""
MANGLE = [
    ["-t", "mangle", "-A", "PREROUTING", "-p", "udp", "--dport", "5353", "-j", "MARK", "--set-xmark", "0x10/0xff"],
    ["-t", "mangle", "-A", "PREROUTING", "-p", "udp", "--dport", "6000", "-j", "MARK", "--set-mark", "0x20"],
    ["-t", "mangle", "-A", "OUTPUT", "-p", "udp", "--dport", "5354", "-j", "MARK", "--set-xmark", "0x10/0xff"],
]
UPLINK_PEER = {"up1": "d1", "up2": "d2"}


def sh(*args: str, input: Optional[str] = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cp = subprocess.run(list(args), capture_output=True, text=True, timeout=60, input=input)
    if check and cp.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {cp.stderr.strip()}")
    return cp


@dataclass
class Lab:
    ns: dict[str, str] = field(default_factory=lambda: {k: lab_name("pr" + k) for k in ("r", "c", "k", "d1", "d2")})
    made: list[str] = field(default_factory=list)

    def build(self) -> None:
        r = self.ns["r"]
        for name in self.ns.values():
            sh("ip", "netns", "add", name)
            self.made.append(name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
        for dev, peer in (("lan0", "c"), ("lan1", "k"), ("up1", "d1"), ("up2", "d2")):
            sh("ip", "-n", r, "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", self.ns[peer])
        sh("ip", "-n", r, "-batch", "-", input=ROUTES_AND_RULES)
        sh("ip", "-n", r, "-6", "-batch", "-", input=ROUTES_AND_RULES_6)
        for key in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"):
            sh("ip", "netns", "exec", r, "sysctl", "-qw", key)
        for args in MANGLE:
            sh("ip", "netns", "exec", r, "iptables", *args)
        for peer, addrs, gw in (("c", ["192.168.71.2/24", "192.168.71.130/24"], "192.168.71.1"),
                                ("k", ["192.168.72.2/24"], "192.168.72.1"),
                                ("d1", ["10.201.1.2/24"], "10.201.1.1"), ("d2", ["10.202.1.2/24"], "10.202.1.1")):
            n = self.ns[peer]
            for a in addrs:
                sh("ip", "-n", n, "addr", "add", a, "dev", "eth0")
            sh("ip", "-n", n, "link", "set", "eth0", "up")
            sh("ip", "-n", n, "route", "add", "default", "via", gw)
            if peer.startswith("d"):
                for a in ("10.99.99.9/32", "10.55.5.5/32", "10.96.5.5/32"):
                    sh("ip", "-n", n, "addr", "add", a, "dev", "lo")
                sh("ip", "netns", "exec", n, "iptables", "-t", "raw", "-A", "PREROUTING", "-p", "udp")

    def close(self) -> None:
        for name in reversed(self.made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture(scope="module")
def lab():
    lab = Lab()
    try:
        lab.build()
        yield lab
    finally:
        lab.close()


def collect(ns: str, name: str = "r") -> snapmod.Snapshot:
    """``labreport collect --local`` inside ``ns`` (the node named ``name``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH") or str(__import__("pathlib").Path(__file__).resolve().parents[1])
    cp = subprocess.run(["ip", "netns", "exec", ns, *labreport_argv(), "collect", "--local", "--name", name,
                         "--no-api", "-q", "--out", "-"], capture_output=True, text=True, timeout=120, env=env)
    assert cp.returncode == 0, cp.stderr[-2000:]
    return snapmod.from_dict(json.loads(cp.stdout))


@pytest.fixture(scope="module")
def world(lab):
    snap = collect(lab.ns["r"])
    node = snap.nodes[0]
    listed = sum(len(sh("ip", "-n", lab.ns["r"], *fam, "rule").stdout.strip().splitlines()) for fam in ([], ["-6"]))
    assert node.node_netns() is not None and len(node.node_netns().rules) == listed > 20  # type: ignore[union-attr]
    return build_world(snap, analyze(snap))


# ----------------------------------------------------------------------------- the two answers

_ERRNO = {"Invalid argument": "EINVAL", "Permission denied": "EACCES", "Network is unreachable": "ENETUNREACH",
          "No route to host": "EHOSTUNREACH"}


def kernel(lab: Lab | str, *args: str) -> dict[str, Any]:
    """`ip -j route get ARGS` in the lab's node namespace (or the namespace named)."""
    ns = lab if isinstance(lab, str) else lab.ns["r"]
    cp = sh("ip", "-n", ns, "-j", "route", "get", *args, check=False)
    if cp.returncode != 0:
        msg = cp.stderr.strip().removeprefix("RTNETLINK answers: ")
        return {"kind": "error", "errno": _ERRNO.get(msg, msg)}
    (r,) = json.loads(cp.stdout)
    if r.get("type") == "local":
        return {"kind": "local", "table": r.get("table", "main")}
    return {"kind": "route", "dev": r["dev"], "gateway": r.get("gateway"), "table": r.get("table", "main"),
            "prefsrc": r.get("prefsrc")}


@dataclass
class Case:
    id: str
    flow: dict[str, Any]
    get: list[str]  # the kernel's question: ip route get …


def _out(src: str, dst: str, dport: int, proto: str = "udp", dev: str = "lan0", mark: Optional[str] = None) -> Case:
    get = [dst, "from", src, "iif", dev, "ipproto", proto, "sport", "40000", "dport", str(dport)]
    if mark:
        get += ["mark", mark]  # the mark the mangle rule sets (real traffic below checks it)
    return Case(f"{src}>{dst}:{proto}/{dport}@{dev}" + (f"+{mark}" if mark else ""),
                {"src": src, "dst": dst, "dport": dport, "proto": proto, "entry": "outside", "entry_dev": dev}, get)


FORWARDED = [
    _out("192.168.71.2", "10.99.99.9", 9000),  # rule 400 → table 400 (main's default suppressed by 350)
    _out("192.168.71.130", "10.99.99.9", 9000),  # from-prefix: rule 100 → table 100
    _out("192.168.71.2", "8.8.8.8", 5353, mark="0x10"),  # fwmark 0x10/0xff → table 200
    _out("192.168.71.2", "10.96.5.5", 5353, mark="0x10"),  # the mark decides: table 200, not main
    _out("192.168.71.2", "10.96.5.5", 5300),  # no mark; `not to 10.96/12` fails → main's default
    _out("192.168.71.2", "10.66.1.1", 5353, mark="0x10"),  # table 200's blackhole route
    _out("192.168.72.2", "10.77.1.1", 9000, dev="lan1"),  # iif lan1 → table 300's prohibit route
    _out("192.168.72.2", "10.99.99.9", 9000, dev="lan1"),  # iif lan1 → table 300's default
    _out("192.168.71.2", "10.88.1.1", 9000),  # rule: prohibit
    _out("192.168.71.2", "10.87.1.1", 9000),  # rule: blackhole
    _out("192.168.71.2", "10.86.1.1", 9000),  # rule: unreachable
    _out("192.168.71.2", "10.98.1.1", 9000),  # table 400 throws: on to main's default
    _out("192.168.71.2", "10.97.1.1", 9000),  # table 400's unreachable route
    _out("192.168.71.2", "10.123.4.4", 6000, mark="0x20"),  # fwmark 0x20 → table 600's local prefix
    _out("192.168.71.2", "10.123.4.4", 6001),  # no mark: main's default
    _out("192.168.71.2", "10.90.1.1", 9000),  # goto 450 skips 430 (table 100) → table 500
    _out("192.168.71.2", "10.201.1.2", 9000),  # main's connected route survives suppress_prefixlength 0
    _out("192.168.71.2", "10.50.1.1", 8080, proto="tcp"),  # ipproto tcp dport 8000-8099 → table 100
    _out("192.168.71.2", "10.50.1.1", 9090, proto="tcp"),  # outside the range: rule 450 → table 500
    _out("192.168.71.2", "10.50.1.1", 8080, proto="udp"),  # udp: rule 300 does not match
    _out("fd71::5", "fd99::9", 9000),  # IPv6: main
    _out("fd71::85", "fd99::9", 9000),  # IPv6 from-prefix → table 100
    _out("fd71::85", "fd77::1", 9000),  # table 100's prohibit route
    _out("fd71::5", "fd88::1", 9000),  # IPv6 rule: prohibit
    _out("fd71::5", "fd89::1", 9000),  # IPv6 rule: blackhole
]


def model(world, case: Case) -> tuple[Any, Any]:
    res = run_flow(world, Flow(entry_node="r", sport=40000, **case.flow))
    assert len(res.outcomes) == 1, res.outcomes
    o = res.outcomes[0]
    routes = [h for h in o.hops if h.kind == "route" and h.node == "r"]
    return o, (routes[-1] if routes else None)


def check_same(case: Case, k: dict[str, Any], o: Any, hop: Any, node: str = "r") -> None:
    what = f"{case.id}: kernel {k}, model {o.result} {o.reason!r} {hop.to_json() if hop else None}"
    if k["kind"] == "route":
        assert hop is not None and hop.device == k["dev"], what
        gw = re.search(r"`[^`]* via (\S+)", hop.detail or "")
        assert (gw.group(1) if gw else None) == k["gateway"], what
        assert hop.table == k["table"], what
        assert hop.rule and re.match(r"^\d+: ", hop.rule), what  # the hop names the rule that chose it
    elif k["kind"] == "local":
        assert o.result == "delivered" and o.node == node, what
        assert hop is not None and hop.table == k["table"], what
    else:
        want = {"EINVAL": ("dropped", "blackhole"), "EACCES": ("rejected", "prohibit"),
                "EHOSTUNREACH": ("rejected", "unreachable")}.get(k["errno"])
        if k["errno"] == "ENETUNREACH":
            assert (o.result, "unreachable" in (o.reason or "")) == ("rejected", True) or (
                o.result == "dropped" and "no route" in (o.reason or "")), what
        else:
            assert want is not None, what
            assert o.result == want[0] and want[1] in (o.reason or ""), what
            assert hop is not None and hop.rule, what  # the rule (and route) as evidence


def test_forwarded_packets_take_the_kernels_route(lab, world):
    answers = []
    for case in FORWARDED:
        k = kernel(lab, *case.get)
        o, hop = model(world, case)
        check_same(case, k, o, hop)
        answers.append(k)
    assert sum(":" in c.flow["dst"] and a["kind"] == "route" for c, a in zip(FORWARDED, answers)) == 2
    # the lab exercises what it claims: several tables, a local prefix and each refusal
    tables = {a["table"] for a in answers if a["kind"] == "route"}
    assert {"main", "100", "200", "300", "400", "500"} <= tables, tables
    assert {"EINVAL", "EACCES", "ENETUNREACH", "EHOSTUNREACH"} <= {a.get("errno") for a in answers}
    assert any(a["kind"] == "local" for a in answers)


PROCESS = [  # (dst, dport, the mark mangle OUTPUT sets, or None)
    ("10.99.99.9", 9000, None),  # table 400, source 10.202.1.1
    ("10.55.5.5", 7000, None),  # second lookup with the chosen source: rule 120 → table 700 (up1)
    ("8.8.8.8", 5354, "0x10"),  # rerouted after OUTPUT's MARK: table 200
    ("10.88.1.1", 9000, None),  # prohibit: connect() fails
    ("10.86.1.1", 9000, None),  # unreachable
]


def test_local_processes_two_lookups_like_connect(lab, world):
    """A process's connect(): the first lookup (source unset) picks the source address, the
    second (with it, and with the mark OUTPUT set) the route — both asked of the kernel."""
    for dst, dport, mark in PROCESS:
        case = Case(f"process>{dst}:{dport}", {"src": None, "dst": dst, "dport": dport, "proto": "udp",
                                                "entry": "process"}, [])
        o, hop = model(world, case)
        first = kernel(lab, dst, "ipproto", "udp", "dport", str(dport))
        if first["kind"] == "error":
            check_same(case, first, o, hop)
            continue
        assert o.source == first["prefsrc"], (case.id, o.source, first)
        final = kernel(lab, dst, "from", first["prefsrc"], "ipproto", "udp", "dport", str(dport),
                       *(["mark", mark] if mark else []))
        check_same(case, final, o, hop)


def test_selectors_the_model_does_not_read_stop_as_unknown(world):
    for src, rule, word in (("192.168.71.77", "380", "oif"), ("192.168.71.78", "385", "uidrange")):
        case = _out(src, "10.50.1.1", 9000)
        o, hop = model(world, case)
        assert o.result == "unknown" and f"ip rule {rule}:" in (o.reason or "") and word in (o.reason or ""), o
    # a rule whose known selector fails is decided: .2 never matches `from .77 oif up1`
    o, hop = model(world, _out("192.168.71.2", "10.50.1.1", 9000))
    assert o.result != "unknown" or "ip rule" not in (o.reason or ""), o


def _counts(lab: Lab) -> dict[str, int]:
    out = {}
    for d in ("d1", "d2"):
        text = sh("ip", "netns", "exec", lab.ns[d], "iptables", "-t", "raw", "-L", "PREROUTING", "-v", "-n", "-x").stdout
        out[d] = int(text.strip().splitlines()[-1].split()[0])
    return out


SEND = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if sys.argv[1] != "-":
    s.bind((sys.argv[1], 40000))
s.connect((sys.argv[2], int(sys.argv[3])))
s.send(b"x")
"""


def test_real_packets_leave_where_the_model_says(lab, world):
    import sys

    flows = [("c", "192.168.71.2", "10.96.5.5", 5353, "outside", "lan0"),  # iptables MARK → table 200 → d2
             ("c", "192.168.71.2", "10.96.5.5", 5300, "outside", "lan0"),  # no mark: main → d1
             ("c", "192.168.71.130", "10.99.99.9", 9000, "outside", "lan0"),  # from-prefix → d2
             ("k", "192.168.72.2", "10.99.99.9", 9001, "outside", "lan1"),  # iif lan1 → d2
             ("r", None, "10.55.5.5", 7000, "process", None)]  # connect()'s second lookup → d1
    seen = set()
    for where, src, dst, dport, entry, dev in flows:
        o, hop = model(world, Case("real", {"src": src, "dst": dst, "dport": dport, "proto": "udp", "entry": entry,
                                            "entry_dev": dev}, []))
        assert hop is not None and hop.device in UPLINK_PEER, (dst, o)
        before = _counts(lab)
        sh("ip", "netns", "exec", lab.ns[where], sys.executable, "-c", SEND, src or "-", dst, str(dport))
        for _ in range(40):
            after = _counts(lab)
            if after != before:
                break
            time.sleep(0.025)
        got = {d for d in after if after[d] > before[d]}
        assert got == {UPLINK_PEER[hop.device]}, (where, dst, dport, hop.to_json(), before, after)
        seen |= got
    assert seen == {"d1", "d2"}


def test_a_moved_local_rule_lets_earlier_rules_route_the_nodes_own_address():
    """VRF-style: `ip rule del pref 0; ip rule add pref 1000 lookup local`. A rule before it
    then routes even an address of the node (here out of lan0), as the kernel does."""
    v, c = lab_name("prv"), lab_name("prw")
    try:
        for n in (v, c):
            sh("ip", "netns", "add", n)
            sh("ip", "-n", n, "link", "set", "lo", "up")
        sh("ip", "-n", v, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", c)
        sh("ip", "-n", v, "link", "add", "up1", "type", "veth", "peer", "name", "up1p")
        sh("ip", "-n", v, "-batch", "-", input="\n".join([
            "addr add 192.168.81.1/24 dev lan0", "addr add 10.211.1.1/24 dev up1", "link set lan0 up",
            "link set up1 up", "link set up1p up", "route add 10.211.1.0/24 via 192.168.81.2 dev lan0 table 100",
            "rule add pref 1000 lookup local", "rule del pref 0", "rule add pref 500 to 10.211.1.1 lookup 100"]) + "\n")
        sh("ip", "netns", "exec", v, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "-n", c, "addr", "add", "192.168.81.2/24", "dev", "eth0")
        sh("ip", "-n", c, "link", "set", "eth0", "up")
        snap = collect(v, "v")
        w = build_world(snap, analyze(snap))
        answers = []
        for dst in ("10.211.1.1", "192.168.81.1"):
            case = Case(f"moved>{dst}", {"src": "192.168.81.2", "dst": dst, "dport": 9000, "proto": "udp",
                                         "entry": "outside", "entry_dev": "lan0"}, [])
            res = run_flow(w, Flow(entry_node="v", sport=40000, **case.flow))
            (o,) = res.outcomes
            routes = [h for h in o.hops if h.kind == "route"]
            k = kernel(v, dst, "from", "192.168.81.2", "iif", "lan0")
            answers.append(k)
            check_same(case, k, o, routes[-1] if routes else None, node="v")
        assert [a["kind"] for a in answers] == ["route", "local"]  # the own address 10.211.1.1 is routed
        (o,) = run_flow(w, Flow(entry_node="v", src=None, dst="10.211.1.1", dport=9000, proto="udp",
                                entry="process")).outcomes
        k = kernel(v, "10.211.1.1")
        assert k["kind"] == "route" and [h.device for h in o.hops if h.kind == "route"][-1] == k["dev"], (k, o)
    finally:
        for n in (v, c):
            subprocess.run(["ip", "netns", "del", n], capture_output=True)
