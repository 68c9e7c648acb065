"""CRI, Docker, processes and iptables collectors against a REAL node built by the lab
harness (tests/lab: containerd with its CRI plugin and CNI, a dockershim-style Docker pod,
kube-proxy's iptables rules, all inside the node's own namespace), and the whole
`labreport collect --local` run inside that namespace, checked against the lab's ground
truth (ids, pids, netns paths, pod IPs, veth names recorded while building)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import needs_lab

pytestmark = [pytest.mark.lab, needs_lab("containerd", "dockerd", "runc", "iptables-save", "nsenter")]


@pytest.fixture(scope="module")
def node():
    from tests.lab.node import NodeLab

    lab = NodeLab()
    try:
        truth = lab.build()
        yield lab, truth
    finally:
        lab.close()


@pytest.fixture(scope="module")
def snapshot(node, tmp_path_factory):
    """`labreport collect --local` for real, inside the node's namespace."""
    lab, truth = node
    out = tmp_path_factory.mktemp("snap")
    res = subprocess.run(
        ["ip", "netns", "exec", lab.name, sys.executable, "-c", "from labreport.cli import run; run()",
         "collect", "--local", "--name", "worker", "--cri-socket", truth.containerd_socket,
         "--docker-host", truth.docker_host, "--out", str(out)],
        capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    from labreport.snapshot import load

    return load(out).nodes[0]


def _ctx(truth, **kw):
    from collectors.base import CollectContext

    return CollectContext(cri_socket=truth.containerd_socket, docker_host=truth.docker_host, **kw)


# --------------------------------------------------------------------------- CRI


def test_cri_sandboxes_and_containers_match_the_lab(node):
    from collectors.base import run_collector
    from collectors.cri import CriCollector

    lab, truth = node
    out = run_collector(CriCollector(), _ctx(truth))
    assert out.status.ok and not out.status.partial, out.status
    assert out.info["cri_socket"] == truth.containerd_socket and out.info["versions"]["containerd"]
    by_id = {c.id: c for c in out.containers}
    pods = [p for p in truth.pods if p.runtime == "containerd"]
    assert pods
    for p in pods:
        sb = by_id[p.sandbox_id]
        assert sb.is_sandbox and sb.runtime == "containerd" and sb.state == "Ready"
        assert (sb.pod_name, sb.pod_namespace, sb.pod_uid) == (p.name, p.namespace, p.uid)
        assert sb.pid == p.sandbox_pid and sb.netns_path == p.netns_path and sb.pod_ip == p.ip
        for tc in p.containers:
            c = by_id[tc.id]
            assert not c.is_sandbox and c.name == tc.name and c.sandbox_id == p.sandbox_id
            assert c.state == "Running" and c.pid and c.image == tc.image
            assert (c.pod_name, c.pod_namespace) == (p.name, p.namespace)
            # the container joined its sandbox's network namespace: same nsfs inode
            assert c.netns_path and os.stat(c.netns_path).st_ino == p.netns_inode
    assert len(out.containers) == sum(1 + len(p.containers) for p in pods)


def test_cri_socket_from_container_runtime_endpoint(node, monkeypatch):
    """crictl's CONTAINER_RUNTIME_ENDPOINT names the socket when --cri-socket is not given."""
    from collectors.local import collect_local

    lab, truth = node
    monkeypatch.setenv("CONTAINER_RUNTIME_ENDPOINT", "unix://" + truth.containerd_socket)
    n = collect_local(name="worker", only=["cri"], timeout=30)
    st = {s.name: s for s in n.collectors}
    assert st["cri"].ok, st["cri"]
    assert n.info.cri_socket == truth.containerd_socket
    ids = {c.id for c in n.containers}
    assert all(p.sandbox_id in ids for p in truth.pods if p.runtime == "containerd")


def test_cri_evidence_reads_back_through_the_crictl_parsers(node):
    from collectors.base import run_collector
    from collectors.cri import CriCollector
    from labreport.parsers import get

    lab, truth = node
    out = run_collector(CriCollector(), _ctx(truth))
    ev = {e.id: e for e in out.evidence}
    assert ev["crictl-ps"].origin == "synthesized" and ev["crictl-pods"].origin == "synthesized"
    parsed = get("crictl-ps").parse(ev["crictl-ps"].stdout, source="crictl-ps").value
    want = sorted((c.id[:13], c.name, c.sandbox_id[:13], c.state) for c in out.containers if not c.is_sandbox)
    assert sorted((c.id, c.name, c.sandbox_id, c.state) for c in parsed) == want
    pods = get("crictl-pods").parse(ev["crictl-pods"].stdout, source="crictl-pods").value
    assert sorted((p.id, p.pod_name, p.pod_namespace) for p in pods) == sorted(
        (c.id[:13], c.pod_name, c.pod_namespace) for c in out.containers if c.is_sandbox)
    assert "RuntimeName:  containerd" in ev["crictl-version"].stdout


def test_cri_socket_that_does_not_speak_cri(node):
    """The Docker socket given as --cri-socket: a real socket, not a CRI server."""
    from collectors.base import CollectContext, run_collector
    from collectors.cri import CriCollector

    lab, truth = node
    sock = truth.docker_host[len("unix://"):]
    st = run_collector(CriCollector(), CollectContext(cri_socket=sock, command_timeout=5)).status
    assert not st.ok and "CRI Version" in st.reason and sock in st.reason and st.fix
    assert not st.not_applicable


def test_cri_socket_given_but_missing_is_a_failure(tmp_path):
    from collectors.base import CollectContext, run_collector
    from collectors.cri import CriCollector

    st = run_collector(CriCollector(), CollectContext(cri_socket=str(tmp_path / "x.sock"))).status
    assert not st.ok and "does not exist" in st.reason and "--cri-socket" in st.fix
    assert not st.not_applicable


# --------------------------------------------------------------------------- Docker


def test_docker_pod_matches_the_lab(node):
    from collectors.base import run_collector
    from collectors.docker_runtime import DockerCollector

    lab, truth = node
    out = run_collector(DockerCollector(), _ctx(truth))
    assert out.status.ok and not out.status.partial, out.status
    assert out.info["versions"]["docker"] and out.info["cgroup_drivers"]["docker"] in ("cgroupfs", "systemd")
    by_id = {c.id: c for c in out.containers}
    pods = [p for p in truth.pods if p.runtime == "docker"]
    assert pods
    for p in pods:
        sb = by_id[p.sandbox_id]
        assert sb.is_sandbox and sb.name == p.sandbox_name and sb.network_mode == "none"
        assert sb.pid == p.sandbox_pid and sb.netns_path == f"/proc/{p.sandbox_pid}/ns/net"
        assert (sb.pod_name, sb.pod_namespace, sb.pod_uid) == (p.name, p.namespace, p.uid)
        for tc in p.containers:
            c = by_id[tc.id]
            assert c.name == tc.docker_name and not c.is_sandbox
            assert c.network_mode == f"container:{p.sandbox_id}" and c.sandbox_id == p.sandbox_id
            assert c.pod_name == p.name and c.state == "running" and c.pid


def test_docker_evidence_reads_back_through_the_docker_ps_parser(node):
    from collectors.base import run_collector
    from collectors.docker_runtime import DockerCollector
    from labreport.parsers import get

    lab, truth = node
    out = run_collector(DockerCollector(), _ctx(truth))
    ev = out.evidence[0]
    assert ev.id == "docker-ps" and ev.command == "docker ps -a"
    parsed = get("docker-ps").parse(ev.stdout, source="docker-ps").value
    assert sorted((c.id, c.name, c.is_sandbox, c.pod_name) for c in parsed) == sorted(
        (c.id[:12], c.name, c.is_sandbox, c.pod_name) for c in out.containers)


def test_docker_host_unreachable(tmp_path):
    from collectors.base import CollectContext, run_collector
    from collectors.docker_runtime import DockerCollector

    st = run_collector(DockerCollector(), CollectContext(docker_host=f"unix://{tmp_path}/d.sock")).status
    assert not st.ok and "d.sock" in st.reason and not st.not_applicable


# --------------------------------------------------------------------------- the whole node


def test_collect_local_in_the_node_namespace(node, snapshot):
    lab, truth = node
    n = snapshot
    st = {s.name: s for s in n.collectors}
    for name in ("processes", "sysinfo", "cri", "docker", "netlink", "iptables"):
        assert st[name].ok and not st[name].partial, st[name]
    assert n.name == "worker" and n.source == "live"
    node_ns = n.node_netns()
    assert node_ns.name == lab.name
    nss = {ns.name: ns for ns in n.netns}
    for p in truth.pods:
        pod_ns_name = p.netns_name or f"pid:{p.sandbox_pid}"
        pod_ns = nss[pod_ns_name]
        assert pod_ns.inode == p.netns_inode
        host = next(ln for ln in node_ns.links if ln.name == p.veth.host_ifname)
        eth0 = next(ln for ln in pod_ns.links if ln.name == p.veth.pod_ifname)
        assert host.link_netns == pod_ns_name and host.peer_ifindex == eth0.ifindex == p.veth.pod_ifindex
        assert eth0.link_netns == lab.name and eth0.peer_ifindex == host.ifindex == p.veth.host_ifindex
        assert host.master == "cni0"
        assert any(a.local == p.ip for a in eth0.addresses)


def test_processes_know_their_containers(node, snapshot):
    lab, truth = node
    n = snapshot
    procs = {p.pid: p for p in n.processes}
    checked = 0
    for c in n.containers:
        if c.pid and c.pid in procs and not c.is_sandbox:
            pr = procs[c.pid]
            assert pr.in_container, (c.name, pr)
            assert pr.container_id == c.id, (c.name, pr)
            checked += 1
    assert checked >= 2
    assert n.evidence_by_id("ps").origin == "live"


def test_iptables_rules_of_the_node(node, snapshot):
    lab, truth = node
    ipt = snapshot.iptables
    assert ipt is not None and ipt.evidence_id == "iptables-save"
    assert "KUBE-SERVICES" in ipt.tables["nat"].chains
    if truth.services:
        svc = truth.services[0]
        text = snapshot.evidence_by_id("iptables-save").stdout
        assert svc.cluster_ip in text
    assert ipt.backend in ("nf_tables", "legacy")


def test_snapshot_round_trips_and_out_dash_prints_json(node):
    lab, truth = node
    res = subprocess.run(
        ["ip", "netns", "exec", lab.name, sys.executable, "-c", "from labreport.cli import run; run()",
         "collect", "--local", "--cri-socket", truth.containerd_socket, "--docker-host", truth.docker_host,
         "--out", "-"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    from labreport.snapshot import from_dict

    snap = from_dict(data)
    assert snap.nodes[0].containers and snap.nodes[0].netns[0].kind == "node"
