"""Veth matching and topology on REAL namespaces built here with `ip`, read back with
`ip -j -d addr` / `ip -j route` / `ip -j netns list-id` through labreport's own parsers.

The lab (one per module, torn down after):
  node A (netns lr…a): bridge cni0 10.244.1.1/24, uplink eth0 192.168.77.10/24 + default
      route, flannel.1 (vxlan id 1, dstport 8472), three pods (cni-…-a1..a3) on cni0, and a
      Docker-style pod reachable only as /proc/<pid>/ns/net (an `unshare -n` process)
  node B (netns lr…b): bridge cni0 10.244.2.1/24, two pods (cni-…-b1, b2)
Every pod's eth0 is ifindex 2, and B's host veths reuse A's ifindex numbers, so numbers
alone would pair A's veths with B's pods. A's collector sees every namespace under
/var/run/netns (B's pods too), as on a real machine running several simulated nodes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid

import pytest

from labreport.snapshot import Container, NetNamespace, NodeSnapshot, Snapshot
from tests.conftest import needs_lab

pytestmark = [pytest.mark.lab, needs_lab("ip", "unshare", "nsenter", "iptables", "iptables-save")]


def sh(*args: str, check: bool = True) -> str:
    res = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {res.stderr.strip()}")
    return res.stdout


def _parse_links(text: str, source: str):
    from labreport.parsers import get

    return get("ip-addr").parse(text, source=source).value


def _parse_routes(text: str, source: str):
    from labreport.parsers import get

    return get("ip-route").parse(text, source=source).value


def _nsids(prefix: list[str]) -> dict[int, str]:
    out = sh(*prefix, "-j", "netns", "list-id").strip()
    return {int(e["nsid"]): e["name"] for e in json.loads(out or "[]") if "name" in e}


def read_netns(name: str, kind: str, *, path: str | None = None, pid: int | None = None,
               extra_nsids: dict[int, str] | None = None) -> NetNamespace:
    """One namespace as a collector would record it, from real `ip` output."""
    if pid is not None:
        prefix = ["nsenter", f"--net=/proc/{pid}/ns/net", "ip"]
    else:
        prefix = ["ip", "-n", name]
    links = _parse_links(sh(*prefix, "-j", "-d", "addr"), source=f"ip-addr:{name}")
    routes_text = sh(*prefix, "-j", "route")
    routes = _parse_routes(routes_text, source=f"ip-route:{name}") if routes_text.strip() not in ("", "[]") else []
    nsids = _nsids(prefix)
    nsids.update(extra_nsids or {})
    return NetNamespace(name=name, kind=kind, path=path or (f"/var/run/netns/{name}" if pid is None else None),
                        pid=pid, links=links, routes=routes, nsids=nsids)


class Lab:
    def __init__(self) -> None:
        s = uuid.uuid4().hex[:5]
        self.s = s
        self.node_a = f"lr{s}a"
        self.node_b = f"lr{s}b"
        self.pods_a = [f"cni-{s}-a{i}" for i in (1, 2, 3)]
        self.pods_b = [f"cni-{s}-b{i}" for i in (1, 2)]
        self.created: list[str] = []
        self.docker_pid: int | None = None
        self.docker_proc: subprocess.Popen | None = None

    def add_ns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.created.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def node(self, node: str, subnet: int, pods: list[str]) -> None:
        self.add_ns(node)
        sh("ip", "-n", node, "link", "add", "cni0", "type", "bridge")
        sh("ip", "-n", node, "addr", "add", f"10.244.{subnet}.1/24", "dev", "cni0")
        sh("ip", "-n", node, "link", "set", "cni0", "up")
        for i, pod in enumerate(pods, start=1):
            self.add_ns(pod)
            host = f"veth{self.s}{i}"
            sh("ip", "-n", node, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", pod)
            sh("ip", "-n", node, "link", "set", host, "master", "cni0", "up")
            sh("ip", "-n", pod, "addr", "add", f"10.244.{subnet}.{i + 1}/24", "dev", "eth0")
            sh("ip", "-n", pod, "link", "set", "eth0", "up")

    def build(self) -> None:
        self.node(self.node_a, 1, self.pods_a)
        a = self.node_a
        # the uplink: a veth whose peer stays in the node (no link-netnsid: never a pod pair)
        sh("ip", "-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
        sh("ip", "-n", a, "addr", "add", "192.168.77.10/24", "dev", "eth0")
        sh("ip", "-n", a, "link", "set", "eth0", "up")
        sh("ip", "-n", a, "link", "set", "eth0p", "up")
        sh("ip", "-n", a, "route", "add", "default", "via", "192.168.77.1", "dev", "eth0")
        sh("ip", "-n", a, "link", "add", "flannel.1", "type", "vxlan", "id", "1", "local", "192.168.77.10",
           "dev", "eth0", "dstport", "8472", "nolearning")
        sh("ip", "-n", a, "addr", "add", "10.244.1.0/32", "dev", "flannel.1")
        sh("ip", "-n", a, "link", "set", "flannel.1", "up")
        # a Docker-style pod: no name under /var/run/netns, only /proc/<pid>/ns/net
        self.docker_proc = subprocess.Popen(["unshare", "-n", "sleep", "600"])
        self.docker_pid = self.docker_proc.pid
        for _ in range(50):  # wait until unshare has exec'd sleep in the new namespace
            if os.readlink(f"/proc/{self.docker_pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                break
            time.sleep(0.05)
        host = f"vethd{self.s}"
        sh("ip", "-n", a, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", str(self.docker_pid))
        sh("ip", "-n", a, "link", "set", host, "master", "cni0", "up")
        sh("nsenter", f"--net=/proc/{self.docker_pid}/ns/net", "ip", "addr", "add", "10.244.1.9/24", "dev", "eth0")
        sh("nsenter", f"--net=/proc/{self.docker_pid}/ns/net", "ip", "link", "set", "eth0", "up")
        self.node(self.node_b, 2, self.pods_b)
        self.kube_proxy_rules()

    def kube_proxy_rules(self) -> None:
        """kube-proxy's iptables-mode rules for Service default/web (10.96.5.5:80) with the
        three pods of node A as endpoints, written with iptables inside node A only."""
        a = self.node_a

        def ipt(*args: str) -> None:
            sh("ip", "netns", "exec", a, "iptables", "-w", "-t", "nat", *args)

        svc, seps = "KUBE-SVC-LRWEBHTTP0000000", ["KUBE-SEP-LRWEBEP000000001", "KUBE-SEP-LRWEBEP000000002",
                                                "KUBE-SEP-LRWEBEP000000003"]
        for chain in ("KUBE-SERVICES", "KUBE-MARK-MASQ", "KUBE-POSTROUTING", svc, *seps):
            ipt("-N", chain)
        ipt("-A", "OUTPUT", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES")
        ipt("-A", "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES")
        ipt("-A", "POSTROUTING", "-m", "comment", "--comment", "kubernetes postrouting rules", "-j", "KUBE-POSTROUTING")
        ipt("-A", "KUBE-MARK-MASQ", "-j", "MARK", "--or-mark", "0x4000")
        ipt("-A", "KUBE-POSTROUTING", "-m", "mark", "!", "--mark", "0x4000/0x4000", "-j", "RETURN")
        ipt("-A", "KUBE-POSTROUTING", "-j", "MARK", "--xor-mark", "0x4000")
        ipt("-A", "KUBE-POSTROUTING", "-m", "comment", "--comment", "kubernetes service traffic requiring SNAT",
            "-j", "MASQUERADE", "--random-fully")
        ipt("-A", "KUBE-SERVICES", "-d", "10.96.5.5/32", "-p", "tcp", "-m", "comment", "--comment",
            "default/web:http cluster IP", "-m", "tcp", "--dport", "80", "-j", svc)
        probs = ["0.33333333349", "0.50000000000", None]
        for i, (sep, prob) in enumerate(zip(seps, probs), start=2):
            ep = f"10.244.1.{i}:80"
            stat = ["-m", "statistic", "--mode", "random", "--probability", prob] if prob else []
            ipt("-A", svc, "-m", "comment", "--comment", f"default/web:http -> {ep}", *stat, "-j", sep)
            ipt("-A", sep, "-s", f"10.244.1.{i}/32", "-m", "comment", "--comment", "default/web:http",
                "-j", "KUBE-MARK-MASQ")
            ipt("-A", sep, "-p", "tcp", "-m", "comment", "--comment", "default/web:http", "-m", "tcp",
                "-j", "DNAT", "--to-destination", ep)

    def iptables_save(self):
        from labreport.parsers import get

        text = sh("ip", "netns", "exec", self.node_a, "iptables-save")
        return get("iptables-save").parse(text, source=f"iptables-save:{self.node_a}").value

    def teardown(self) -> None:
        if self.docker_proc is not None:
            try:
                os.kill(self.docker_proc.pid, signal.SIGTERM)
                self.docker_proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        for name in reversed(self.created):
            sh("ip", "netns", "del", name, check=False)

    def docker_nsid_in(self, node: str) -> dict[int, str]:
        """The nsid node `node` uses for the Docker-style pod, asked from the kernel."""
        from pyroute2 import IPRoute

        with IPRoute(netns=node, flags=0) as ipr:
            fd = os.open(f"/proc/{self.docker_pid}/ns/net", os.O_RDONLY)
            try:
                nsid = ipr.get_netnsid(fd=fd)
            finally:
                os.close(fd)
        val = nsid.get("nsid") if isinstance(nsid, dict) else nsid
        if val is None or val < 0:
            return {}
        return {int(val): f"pid:{self.docker_pid}"}

    def visible(self) -> list[str]:
        """Every pod namespace of this lab (as /var/run/netns shows them to any node)."""
        return self.pods_a + self.pods_b

    def snapshot_of(self, node: str) -> NodeSnapshot:
        netns = [read_netns(node, "node", extra_nsids=self.docker_nsid_in(node) if node == self.node_a else None)]
        node_name = node
        for other in (self.node_a, self.node_b):
            if other != node:
                netns.append(read_netns(other, "named"))  # the other node is a named netns here
        for pod in self.visible():
            netns.append(read_netns(pod, "named"))
        netns.append(read_netns(f"pid:{self.docker_pid}", "pid", pid=self.docker_pid,
                                path=f"/proc/{self.docker_pid}/ns/net"))
        containers = []
        for i, pod in enumerate(self.pods_a if node == self.node_a else self.pods_b, start=1):
            containers.append(Container(runtime="containerd", id=f"{i:02d}" + uuid.uuid4().hex, name=f"web-{i}",
                                        is_sandbox=True, pod_name=f"web-{i}", pod_namespace="default",
                                        netns_path=f"/var/run/netns/{pod}"))
        if node == self.node_a:
            containers.append(Container(runtime="docker", id=uuid.uuid4().hex, name="k8s_POD_dk_default_u-dk_0",
                                        is_sandbox=True, pid=self.docker_pid))
        return NodeSnapshot(name=node_name, netns=netns, containers=containers)


@pytest.fixture(scope="module")
def lab():
    lab = Lab()
    try:
        lab.build()
        yield lab
    finally:
        lab.teardown()


def _pairs_by_netns(pairs):
    return {p.netns: p for p in pairs}


def test_every_pod_eth0_has_ifindex_2(lab):
    snap = lab.snapshot_of(lab.node_a)
    pod_eth0 = [l for ns in snap.netns if ns.name in lab.visible() for l in ns.links if l.name == "eth0"]
    assert len(pod_eth0) == 5 and {l.ifindex for l in pod_eth0} == {2}


def test_node_a_pairs_only_its_own_pods(lab):
    from labreport.analysis.veth import match_veths

    snap = lab.snapshot_of(lab.node_a)
    warnings: list[str] = []
    pairs = match_veths(snap, warnings=warnings)
    by = _pairs_by_netns(pairs)
    assert set(by) == set(lab.pods_a) | {f"pid:{lab.docker_pid}"}
    node_links = {l.name: l for l in snap.netns[0].links}
    for i, pod in enumerate(lab.pods_a, start=1):
        p = by[pod]
        host = node_links[f"veth{lab.s}{i}"]
        assert (p.host_ifname, p.host_ifindex) == (host.name, host.ifindex)
        assert (p.pod_ifname, p.pod_ifindex) == ("eth0", 2)
        assert p.pod_ips == [f"10.244.1.{i + 1}/24"]
        assert p.bridge == "cni0"
        assert p.pod == f"default/web-{i}"
    # the Docker-style pod is matched through its /proc/<pid>/ns/net namespace
    d = by[f"pid:{lab.docker_pid}"]
    assert d.host_ifname == f"vethd{lab.s}" and d.pod_ips == ["10.244.1.9/24"] and d.pod == "default/dk"
    assert not any("could be the peer" in w for w in warnings)


def test_node_b_numbers_collide_with_node_a_but_never_pair_across(lab):
    from labreport.analysis.veth import match_veths

    a = lab.snapshot_of(lab.node_a)
    b = lab.snapshot_of(lab.node_b)
    a_idx = {l.ifindex for l in a.netns[0].links if l.name.startswith(f"veth{lab.s}")}
    b_idx = {l.ifindex for l in b.netns[0].links if l.name.startswith(f"veth{lab.s}")}
    assert a_idx & b_idx, "the lab must reuse host ifindexes across nodes for this test to mean anything"
    pairs = match_veths(b)
    assert {p.netns for p in pairs} == set(lab.pods_b)
    assert all(p.pod_ips[0].startswith("10.244.2.") for p in pairs)


def test_without_any_namespace_names_numbers_alone_pair_nothing(lab):
    """Nobody can name a namespace (no nsid tables, no link-netns): every host veth fits
    some pod eth0 by numbers, which proves nothing — no pair, and a warning says why."""
    from labreport.analysis.veth import match_veths

    snap = lab.snapshot_of(lab.node_a)
    for ns in snap.netns:
        ns.nsids = {}
        for l in ns.links:
            l.link_netns = None
    warnings: list[str] = []
    assert match_veths(snap, warnings=warnings) == []
    assert any("fits by numbers only" in w for w in warnings)


def test_pasted_text_shape_pairs_the_unique_and_refuses_the_ambiguous(lab):
    """Pasted-text shape: the host prints `link-netns cni-…` but the pod outputs were
    filed under other names and have no nsid table (`link-netnsid 0`). Host veths whose
    numbers only A's pod fits are paired; those that B's pods fit too are refused."""
    from labreport.analysis.veth import match_veths

    snap = lab.snapshot_of(lab.node_a)
    host = snap.netns[0]
    for l in host.links:  # what text `ip addr` prints: the name the nsid stands for
        if l.link_netnsid is not None and l.link_netnsid in host.nsids:
            l.link_netns = host.nsids[l.link_netnsid]
    assert all(l.link_netns for l in host.links if l.name.startswith(f"veth{lab.s}"))
    for ns in snap.netns[1:]:
        ns.nsids = {}
        ns.name = "pasted-" + ns.name  # the host's names no longer lead anywhere
        ns.path = None
    warnings: list[str] = []
    pairs = {p.host_ifname: p for p in match_veths(snap, warnings=warnings)}
    b = lab.snapshot_of(lab.node_b)
    b_idx = {l.ifindex for l in b.netns[0].links if l.name.startswith(f"veth{lab.s}")}
    seen = {"refused": 0, "paired": 0}
    for link in snap.netns[0].links:
        if link.name not in [f"veth{lab.s}{i}" for i in (1, 2, 3)]:
            continue
        i = int(link.name[-1])
        seen["refused" if link.ifindex in b_idx else "paired"] += 1
        if link.ifindex in b_idx:
            assert link.name not in pairs  # B's pod eth0@if<same number> fits as well
            assert any(link.name in w and "could be the peer" in w for w in warnings)
        else:
            assert pairs[link.name].netns == f"pasted-{lab.pods_a[i - 1]}"
            assert pairs[link.name].pod_ips == [f"10.244.1.{i + 1}/24"]
    assert seen["refused"] and seen["paired"], seen  # both cases really occurred


def test_topology_of_node_a(lab):
    from labreport.analysis.topology import describe

    snap = lab.snapshot_of(lab.node_a)
    bridges, overlays, uplink = describe(snap)
    assert sorted(bridges["cni0"]) == sorted([f"veth{lab.s}{i}" for i in (1, 2, 3)] + [f"vethd{lab.s}"])
    flannel = next(o for o in overlays if o.name == "flannel.1")
    assert flannel.type == "flannel" and flannel.kind == "vxlan"
    assert flannel.vni == 1 and flannel.port == 8472 and flannel.local == "192.168.77.10"
    assert uplink is not None and uplink.name == "eth0" and uplink.gateway == "192.168.77.1"
    assert "192.168.77.10/24" in uplink.addresses


def test_service_endpoints_are_named_by_their_pods(lab):
    """Real kube-proxy-style rules in node A, read back with iptables-save: each endpoint
    of default/web is named by the pod whose veth carries its IP."""
    from labreport.analysis import analyze

    node = lab.snapshot_of(lab.node_a)
    node.iptables = lab.iptables_save()
    analysis = analyze(Snapshot(nodes=[node]))
    na = analysis.node(lab.node_a)
    web = next(s for s in na.services if s.name == "default/web:http")
    assert (web.cluster_ip, web.port) == ("10.96.5.5", 80)
    assert [(e.address, e.pod) for e in web.endpoints] == [
        ("10.244.1.2:80", "default/web-1"), ("10.244.1.3:80", "default/web-2"), ("10.244.1.4:80", "default/web-3")]
    assert [round(e.probability, 4) for e in web.endpoints] == [0.3333] * 3


def test_analyze_names_pods_and_ips_from_veths(lab):
    from labreport.analysis import analyze

    snap = Snapshot(nodes=[lab.snapshot_of(lab.node_a), lab.snapshot_of(lab.node_b)])
    analysis = analyze(snap)
    na = analysis.node(lab.node_a)
    pods = {p.key: p for p in na.pods}
    assert pods["default/web-1"].ip == "10.244.1.2"
    assert pods["default/web-1"].netns == lab.pods_a[0]
    assert pods["default/dk"].ip == "10.244.1.9" and pods["default/dk"].netns == f"pid:{lab.docker_pid}"
    nb = analysis.node(lab.node_b)
    assert {p.netns for p in nb.veth_pairs} == set(lab.pods_b)
