"""End to end on a real node built here (tests/lab): containerd + CRI pods, a dockershim-style
Docker pod, CNI bridge wiring, kube-proxy's iptables rules — all inside a network namespace
of this test's own. First the lab proves itself (CRI, Docker, ip, iptables, curl through the
cluster IP); then ``labreport collect --local`` run inside the node and ``labreport analyze
--json`` must reproduce the lab's ground truth exactly."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import needs_lab
from tests.lab.checks import check_pods, check_services, check_veths
from tests.lab.cli import labreport_argv

pytestmark = [pytest.mark.lab,
              needs_lab("containerd", "dockerd", "runc", "iptables-restore", "gcc", "nsenter", "curl")]

@pytest.fixture(scope="module")
def lab():
    from tests.lab.node import NodeLab

    node = NodeLab()
    try:
        node.build()
        yield node
    finally:
        errors = node.close()
        assert not errors, f"teardown left errors: {errors}"


# ------------------------------------------------------------------ the lab is real


def test_lab_is_real_cri(lab):
    t = lab.truth
    ctd_pods = [p for p in t.pods if p.runtime == "containerd"]
    sandboxes = {s.id: s for s in lab.cri.list_sandboxes()}
    assert set(sandboxes) == {p.sandbox_id for p in ctd_pods}
    for p in ctd_pods:
        assert sandboxes[p.sandbox_id].metadata.name == p.name
        assert sandboxes[p.sandbox_id].metadata.uid == p.uid
    containers = lab.cri.list_containers()
    assert {c.id for c in containers} == {c.id for p in ctd_pods for c in p.containers}
    by_id = {c.id: c for c in containers}
    for p in ctd_pods:
        for c in p.containers:
            assert by_id[c.id].pod_sandbox_id == p.sandbox_id
            assert by_id[c.id].metadata.name == c.name
            assert by_id[c.id].state == 1, f"{c.name} not RUNNING"  # CONTAINER_RUNNING
    fileserver = t.pod("default/fileserver")
    assert len(fileserver.containers) == 2  # file server + downloader share the volume
    # the pod netns containerd made is a named netns, reached by RunPodSandbox's CNI ADD
    for p in ctd_pods:
        assert Path(p.netns_path).exists() and p.netns_path.startswith("/var/run/netns/cni-")


def test_lab_is_real_docker(lab):
    import docker

    t = lab.truth
    client = docker.DockerClient(base_url=t.docker_host)
    try:
        (dpod,) = [p for p in t.pods if p.runtime == "docker"]
        sb = client.containers.get(dpod.sandbox_id)
        assert sb.name == f"k8s_POD_{dpod.name}_default_{dpod.uid}_0"
        assert sb.attrs["HostConfig"]["NetworkMode"] == "none"
        assert sb.attrs["State"]["Pid"] == dpod.sandbox_pid
        (app,) = dpod.containers
        c = client.containers.get(app.id)
        assert c.name == app.docker_name == f"k8s_httpd_{dpod.name}_default_{dpod.uid}_0"
        mode = c.attrs["HostConfig"]["NetworkMode"]
        assert mode in (f"container:{sb.name}", f"container:{sb.id}"), mode
        # no name under /var/run/netns: the pod's namespace is the pause process's
        assert dpod.netns_name is None and dpod.netns_path == f"/proc/{dpod.sandbox_pid}/ns/net"
    finally:
        client.close()


def test_lab_is_real_network(lab):
    t = lab.truth
    links = json.loads(lab.exec("ip", "-j", "-d", "addr", "show").stdout)
    by_name = {link["ifname"]: link for link in links}
    assert any(a["local"] == t.bridge_ip for a in by_name["cni0"]["addr_info"])
    for p in t.pods:
        host = by_name[p.veth.host_ifname]
        assert host["ifindex"] == p.veth.host_ifindex
        assert host.get("master") == "cni0"
        assert host["link_index"] == p.veth.pod_ifindex
        inside = json.loads(subprocess.run(
            ["nsenter", f"--net={p.netns_path}", "ip", "-j", "addr", "show", "eth0"],
            capture_output=True, text=True, check=True).stdout)[0]
        assert inside["link_index"] == p.veth.host_ifindex
        assert any(a["local"] == p.ip for a in inside["addr_info"])
    # nothing of the lab in the root namespace
    root_links = {x["ifname"] for x in json.loads(
        subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout)}
    assert not ({p.veth.host_ifname for p in t.pods} & root_links)


def test_lab_is_real_iptables_and_cluster_ip(lab):
    t = lab.truth
    saved = lab.exec("iptables-save", "-t", "nat").stdout
    web = next(s for s in t.services if s.name == "default/web:http")
    assert f"-A KUBE-SERVICES -d {web.cluster_ip}/32 -p tcp -m comment --comment " \
           f'"default/web:http cluster IP" -m tcp --dport 80 -j {web.svc_chain}' in saved
    assert "--probability 0.33333333349" in saved and "--probability 0.50000000000" in saved
    root_saved = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    assert web.svc_chain not in root_saved  # rules live in the node namespace only
    # traffic through the cluster IP reaches every endpoint's httpd (random 1/3 each)
    contents = {p.content: p.key for p in t.pods}
    seen: Counter[str] = Counter()
    for _ in range(60):
        out = lab.exec("curl", "-s", "-m", "10", f"http://{web.cluster_ip}:{web.port}/").stdout.strip()
        assert out in contents, f"unexpected answer through the cluster IP: {out!r}"
        seen[contents[out]] += 1
        if len(seen) == len(t.pods):
            break
    assert set(seen) == {p.key for p in t.pods}, seen
    # NodePort on the node's own address, and the single-endpoint service
    out = lab.exec("curl", "-s", "-m", "10", f"http://{t.uplink_ip}:{web.node_port}/").stdout.strip()
    assert out in contents
    fs = next(s for s in t.services if s.name == "default/fileserver:http")
    out = lab.exec("curl", "-s", "-m", "10", f"http://{fs.cluster_ip}:{fs.port}/").stdout.strip()
    assert out == t.pod("default/fileserver").content  # written by the downloader container


# ------------------------------------------------------------------ labreport against the truth


@pytest.fixture(scope="module")
def analysis(lab, tmp_path_factory):
    t = lab.truth
    out = tmp_path_factory.mktemp("e2e-node") / "snap"
    collect = lab.exec(*labreport_argv(), "collect", "--local", "--out", str(out),
                       "--name", t.node_ns, "--cri-socket", t.containerd_socket,
                       "--docker-host", t.docker_host, "--no-api", "-q", timeout=240, check=False)
    assert collect.returncode == 0, f"collect failed:\n{collect.stdout}\n{collect.stderr}"
    assert (out / "snapshot.json").exists()
    analyze = subprocess.run([*labreport_argv(), "analyze", str(out), "--json"],
                             capture_output=True, text=True, timeout=240)
    assert analyze.returncode == 0, f"analyze failed:\n{analyze.stdout}\n{analyze.stderr}"
    data = json.loads(analyze.stdout)
    (node,) = [n for n in data["nodes"] if n["node"] == t.node_ns]
    return node


def test_collect_every_container_in_its_pod(lab, analysis):
    check_pods(analysis, lab.truth)


def test_collect_every_host_veth_matched_to_its_pod(lab, analysis):
    check_veths(analysis, lab.truth)


def test_collect_every_service_with_its_endpoints_and_shares(lab, analysis):
    check_services(analysis, lab.truth)


# ------------------------------------------------------------------ the two-node builder is real


@needs_lab("ssh", "ssh-keygen", "/usr/sbin/sshd", "ss", "bridge")
@pytest.mark.parametrize("overlay", ["vxlan", "host-gw"])
def test_two_node_lab_is_real(overlay):
    """The cluster owner's e2e runs on this builder: prove cross-node pod traffic over the
    overlay, a cluster IP reaching pods on both nodes, and SSH from master to worker."""
    from tests.lab.cluster import TwoNodeCluster

    cluster = TwoNodeCluster(overlay=overlay)
    try:
        t = cluster.build()
        master, worker = t.nodes["master"], t.nodes["worker"]
        assert master.pod_cidr == "10.244.0.0/24" and worker.pod_cidr == "10.244.1.0/24"
        for src, dst in (("master", worker), ("worker", master)):
            for p in dst.pods:
                out = cluster.exec(src, "curl", "-s", "-m", "10", f"http://{p.ip}/").stdout.strip()
                assert out == p.content, (src, p.key)
        routes = cluster.exec("master", "ip", "route", "show", "10.244.1.0/24").stdout
        if overlay == "vxlan":
            assert "via 10.244.1.0 dev flannel.1 onlink" in routes
            link = json.loads(cluster.exec("master", "ip", "-j", "-d", "link", "show", "flannel.1").stdout)[0]
            vx = link["linkinfo"]["info_data"]
            assert (vx["id"], vx["port"], vx["local"]) == (1, 8472, "192.168.56.10")
            fdb = cluster.exec("master", "bridge", "fdb", "show", "dev", "flannel.1").stdout
            assert f"{t.vxlan_macs['worker']} dst 192.168.56.11" in fdb
        else:
            assert "via 192.168.56.11 dev eth0" in routes
        contents = {p.content: p.key for n in (master, worker) for p in n.pods}
        seen: Counter[str] = Counter()
        for _ in range(120):
            out = cluster.exec("master", "curl", "-s", "-m", "10", "http://10.96.0.80/").stdout.strip()
            seen[contents[out]] += 1
            if len(seen) == len(contents):
                break
        assert set(seen) == set(contents.values()), seen
        web = next(s for s in master.services if s.name == "default/web:http")
        assert [round(e.share, 9) for e in web.endpoints] == [0.2] * 5
        ssh = cluster.exec("master", "ssh", "-F", str(t.ssh_config), "worker",
                           "ip -j addr show cni0", timeout=30)
        assert json.loads(ssh.stdout)[0]["addr_info"][0]["local"] == "10.244.1.1"
    finally:
        assert not cluster.close()
    names = [cluster.ns("master"), cluster.ns("worker"), cluster.lan_ns]
    assert _leftovers(str(cluster.base), names) == []
    for lab in cluster.labs.values():
        assert _leftovers(str(lab.base), []) == []


# ------------------------------------------------------------------ teardown is complete


def _leftovers(base: str, names: list[str]) -> list[str]:
    from tests.lab.proc import pids_with_cmdline_containing

    left = [f"process {pid}" for pid in pids_with_cmdline_containing(base)]
    left += [f"netns {n}" for n in names if Path(f"/var/run/netns/{n}").exists()]
    left += [f"dir {base}"] if Path(base).exists() else []
    left += [f"mount {line.split()[4]}" for line in Path("/proc/self/mountinfo").read_text().splitlines()
             if base in line]
    return left


def test_teardown_after_a_partial_build_leaves_nothing(monkeypatch):
    """A build that fails half-way (after containerd, dockerd and the CRI pods are up, while
    the Docker pod is being made) still removes every pod, daemon, namespace and mount."""
    from tests.lab.node import NodeLab
    from tests.lab.proc import LabError, wait_for

    lab = NodeLab()
    made: list[str] = []

    def failing_docker_pod(self, images):
        made.extend((self.truth.node_ns, self.name + "g"))
        wait_for("both CRI pods", lambda: len(self.cri.list_sandboxes()) == 2, timeout=60)
        for sb in self.cri.list_sandboxes():
            spec = self.cri.sandbox_status(sb.id)[1]["runtimeSpec"]
            made.append(Path(next(n["path"] for n in spec["linux"]["namespaces"] if n["type"] == "network")).name)
        raise LabError("injected failure while making the docker pod")

    monkeypatch.setattr(NodeLab, "_run_docker_pod", failing_docker_pod)
    with pytest.raises(LabError, match="injected failure"):
        lab.build()
    assert len(made) == 4 and all(n.startswith("cni-") for n in made[2:]), made
    assert _leftovers(str(lab.base), made) == []


def test_full_teardown_leaves_nothing():
    from tests.lab.node import NodeLab

    lab = NodeLab()
    t = lab.build()
    names = [t.node_ns, t.uplink_peer_ns, *(p.netns_name for p in t.pods if p.netns_name)]
    assert lab.close() == []
    assert _leftovers(t.base_dir, names) == []
