"""Analysis on the REAL outputs of the two student reports (the seeds), read through
labreport's own parsers: components and roles (Q2), pods and sandboxes (Q3/Q5), the
veth pair of seed 001 Q6, and the node devices around it.

The outputs are the parsers owner's seed fixtures (tests/fixtures/seeds/, cut verbatim
out of the reports; see its README for the line ranges).
"""

from __future__ import annotations

from labreport.analysis import analyze
from labreport.analysis.components import find_components, not_in_containers
from labreport.analysis.pods import group_pods
from labreport.analysis.topology import describe
from labreport.analysis.veth import match_veths
from labreport.parsers import get
from labreport.snapshot import NetNamespace, NodeSnapshot, Snapshot
from tests.conftest import FIXTURES

SEEDS = FIXTURES / "seeds"


def _text(path: str) -> str:
    return (SEEDS / path).read_text(encoding="utf-8")


SEED001_Q2_MASTER_PS = _text("seed001/master-ps-aux-grep-kube.txt")
SEED001_Q2_WORKER_PS = _text("seed001/worker-ps-aux-grep-kube.txt")
SEED001_Q3_MASTER_CRICTL = _text("seed001/master-crictl-ps.txt")
SEED001_Q5_WORKER_CRICTL = _text("seed001/worker-crictl-ps-after.txt")
# Q6: `ip link show eth0` + `ip addr` in the downloader container, `ip addr` in the fileserver
SEED001_Q6_POD_DOWNLOADER_IP_ADDR = _text("seed001/pod-downloader-ip-link-addr.txt")
SEED001_Q6_POD_FILESERVER_IP_ADDR = _text("seed001/pod-ip-addr.txt")
SEED001_Q6_WORKER_IP_ADDR = _text("seed001/worker-ip-addr.txt")
SEED000_Q3_MASTER_DOCKER_PS = _text("seed000/master-docker-ps.txt")
SEED000_Q3_WORKER_DOCKER_PS = _text("seed000/worker-docker-ps-before.txt")
SEED000_Q5_WORKER_NEW_DOCKER_PS = _text("seed000/worker-docker-ps-after-new.txt")
SEED000_Q5_VIEWER_NETWORKMODE = _text("seed000/worker-docker-inspect-networkmode.wrapped.txt")


def parse(kind: str, text: str, source: str):
    result = get(kind).parse(text, source=source)
    return result.value


def seed001_master(with_containers: bool = True) -> NodeSnapshot:
    node = NodeSnapshot(name="k8s-master", source="import",
                        processes=parse("ps", SEED001_Q2_MASTER_PS, "seed001-q2-master"))
    if with_containers:
        node.containers = parse("crictl-ps", SEED001_Q3_MASTER_CRICTL, "seed001-q3-master")
    return node


def seed001_worker() -> NodeSnapshot:
    host = NetNamespace(name="k8s-worker", kind="node",
                        links=parse("ip-addr", SEED001_Q6_WORKER_IP_ADDR, "seed001-q6-worker"))
    # `ip addr` run inside two containers of testpod: the same netns, seen twice
    downloader = NetNamespace(name="testpod/downloader",
                              links=parse("ip-addr", SEED001_Q6_POD_DOWNLOADER_IP_ADDR, "seed001-q6-downloader"))
    fileserver = NetNamespace(name="testpod/fileserver",
                              links=parse("ip-addr", SEED001_Q6_POD_FILESERVER_IP_ADDR, "seed001-q6-fileserver"))
    return NodeSnapshot(name="k8s-worker", source="import",
                        processes=parse("ps", SEED001_Q2_WORKER_PS, "seed001-q2-worker"),
                        containers=parse("crictl-ps", SEED001_Q5_WORKER_CRICTL, "seed001-q5-worker"),
                        netns=[host, downloader, fileserver])


def seed000_worker() -> NodeSnapshot:
    containers = parse("docker-ps", SEED000_Q3_WORKER_DOCKER_PS, "seed000-q3-worker")
    containers += parse("docker-ps", SEED000_Q5_WORKER_NEW_DOCKER_PS, "seed000-q5-worker")
    # `docker inspect k8s_viewer_pod_… | grep NetworkMode`: merged into that container,
    # as `labreport import --inspect NAME=FILE` does
    frag = parse("docker-inspect", SEED000_Q5_VIEWER_NETWORKMODE, "seed000-q5-inspect")[0]
    viewer = next(c for c in containers if c.name.startswith("k8s_viewer_pod_default_"))
    viewer.network_mode = frag.network_mode
    return NodeSnapshot(name="node1", source="import", containers=containers)


# --------------------------------------------------------------------------- Q2 components


def test_seed001_master_components_and_roles():
    comps = find_components(seed001_master())
    by_name = {c.name: c for c in comps}
    from_processes = [c.name for c in comps if c.pid in (5047, 5053, 5081, 5089, 5171, 5292, 6111)]
    assert from_processes == ["kube-controller-manager", "kube-scheduler", "kube-apiserver", "etcd",
                              "kubelet", "kube-proxy", "flanneld"]
    assert 17637 not in {c.pid for c in comps}  # the `grep --color=auto kube` line
    assert all(c.role for c in comps)
    assert len({by_name[n].role for n in from_processes}) == len(from_processes)
    assert by_name["kube-apiserver"].key_flags["--service-cluster-ip-range"] == "10.96.0.0/12"
    assert by_name["kube-apiserver"].key_flags["--advertise-address"] == "172.24.153.39"
    assert by_name["kube-controller-manager"].key_flags["--cluster-cidr"] == "10.244.0.0/16"
    assert by_name["kubelet"].key_flags["--container-runtime-endpoint"] == "unix:///var/run/containerd/containerd.sock"
    assert by_name["kubelet"].key_flags["--pod-infra-container-image"] == "registry.aliyuncs.com/google_containers/pause:3.9"
    assert by_name["kube-proxy"].key_flags["--config"] == "/var/lib/kube-proxy/config.conf"
    assert by_name["etcd"].key_flags["--data-dir"] == "/var/lib/etcd"
    assert by_name["etcd"].key_flags["--listen-client-urls"] == "https://127.0.0.1:2379,https://172.24.153.39:2379"
    # crictl ps (Q3) tells which run in containers: everything but the kubelet
    assert by_name["kubelet"].in_container is False
    for name, cid in (("kube-apiserver", "a41cd6bcfec0"), ("etcd", "7327bf503af9a"), ("flanneld", "b0c25e599ec3d"),
                      ("kube-proxy", "89be855de15fc")):
        assert by_name[name].in_container is True and by_name[name].container_id == cid, name
    assert not_in_containers(comps) == ["kubelet"]
    # coredns has no process in `ps aux | grep kube`, but two containers
    assert [c.container_id for c in comps if c.name == "coredns"] == ["bb38dc090ff7", "92a1f939d1ca"]


def test_seed001_without_container_list_in_container_is_unknown():
    comps = find_components(seed001_master(with_containers=False))
    assert {c.name: c.in_container for c in comps}["kube-apiserver"] is None
    assert not_in_containers(comps) == []


def test_seed001_worker_components():
    comps = find_components(seed001_worker())
    assert [c.name for c in comps] == ["kubelet", "kube-proxy", "flanneld"]
    assert [c.pid for c in comps] == [4955, 5104, 5444]  # grep (14679) is not a component
    assert not_in_containers(comps) == ["kubelet"]


def test_etcd_with_kubeconfig_flag_is_not_kubelet():
    node = seed001_master(with_containers=False)
    etcd = next(p for p in node.processes if p.pid == 5089)
    etcd.command += " --kubeconfig=/etc/kubernetes/kubelet.conf"
    names = {c.pid: c.name for c in find_components(node)}
    assert names[5089] == "etcd"


def test_truncated_ps_lines_are_still_identified():
    # the same `ps aux` cut at 80 columns, as a narrow terminal prints it
    cut = "\n".join(line[:80] for line in SEED001_Q2_MASTER_PS.splitlines())
    node = NodeSnapshot(name="m", processes=parse("ps", cut, "seed001-q2-master-80cols"))
    comps = {c.pid: c for c in find_components(node)}
    assert comps[5047].name == "kube-controller-manager" and comps[5047].truncated
    assert comps[5081].name == "kube-apiserver"
    assert comps[5171].name == "kubelet"  # "/usr/bin/kubele"
    assert comps[6111].name == "flanneld"  # "/opt/bin/flannel"
    assert 5292 not in comps  # "/usr/local/bin/k": could be anything, so nothing
    assert 17637 not in comps


def test_seed000_master_components_from_docker_ps_only():
    node = NodeSnapshot(name="master", containers=parse("docker-ps", SEED000_Q3_MASTER_DOCKER_PS, "seed000-q3-master"))
    comps = find_components(node)
    assert sorted(c.name for c in comps) == ["etcd", "kube-apiserver", "kube-controller-manager",
                                             "kube-proxy", "kube-scheduler"]
    assert all(c.in_container for c in comps)
    kcm = next(c for c in comps if c.name == "kube-controller-manager")
    assert kcm.container_id == "dd856da5c01a" and kcm.truncated  # "kube-controller-man..."


# --------------------------------------------------------------------------- Q3/Q5 pods


def test_seed000_worker_pods_from_docker_ps():
    pods = {p.key: p for p in group_pods(seed000_worker())}
    assert set(pods) == {"kube-system/kube-proxy-d2lkd", "default/pod"}
    new = pods["default/pod"]
    assert new.uid == "05260c21-c524-41c7-82e7-ea61f09f4f2f"
    assert new.sandbox_id == "23f2f68378cc"
    assert [c.is_sandbox for c in new.containers] == [True, False, False]
    assert new.containers[0].name.startswith("k8s_POD_pod_default_")
    assert {c.name.split("_")[1] for c in new.containers[1:]} == {"viewer", "downloader"}
    # docker inspect's NetworkMode container:23f2f68378cc… proves the shared netns
    assert new.shares_netns_with_sandbox is True
    kp = pods["kube-system/kube-proxy-d2lkd"]
    assert [c.is_sandbox for c in kp.containers] == [True, False]
    assert kp.containers[1].component == "kube-proxy" and kp.containers[0].component == "pause"
    assert kp.shares_netns_with_sandbox is None  # nothing inspected: not claimed


def test_seed000_master_pods_sandbox_first():
    node = NodeSnapshot(name="master", containers=parse("docker-ps", SEED000_Q3_MASTER_DOCKER_PS, "seed000-q3-master"))
    pods = group_pods(node)
    assert len(pods) == 5
    for p in pods:
        assert p.containers[0].is_sandbox and not any(c.is_sandbox for c in p.containers[1:])
        assert len(p.containers) == 2, p.key
    etcd = next(p for p in pods if p.name == "etcd-master")
    assert etcd.namespace == "kube-system" and etcd.containers[1].component == "etcd"
    assert etcd.sandbox_id == "9b60c8baf50"  # the report's cut id, kept as printed


def test_seed001_crictl_ps_pods_without_sandboxes():
    pods = {p.key: p for p in group_pods(seed001_worker())}
    test = next(p for p in pods.values() if p.name == "testpod")
    assert test.sandbox_id == "e6cf53e8a57e5"
    assert not any(c.is_sandbox for c in test.containers)
    assert sorted(c.name for c in test.containers) == ["downloader", "fileserver"]
    assert "e6cf53e8a57e5" in (test.note or "") and "not in the input" in test.note
    flannel = next(p for p in pods.values() if p.name == "kube-flannel-ds-22x65")
    assert flannel.containers[0].component == "flanneld"
    assert len(pods) == 3


# --------------------------------------------------------------------------- Q6 veth


def test_seed001_q6_veth_pair():
    warnings: list[str] = []
    pairs = match_veths(seed001_worker(), warnings=warnings)
    assert len(pairs) == 1, warnings
    p = pairs[0]
    assert (p.host_ifname, p.host_ifindex, p.pod_ifname, p.pod_ifindex) == ("veth05dbc1b4", 5, "eth0", 2)
    assert p.pod_ips == ["10.244.1.2/24"]
    assert p.bridge == "cni0"
    assert p.host_mac == "02:2a:2d:32:52:9a" and p.pod_mac == "be:ab:81:b0:b7:72"


def test_seed001_q6_pod_side_pointing_elsewhere_is_not_paired():
    node = seed001_worker()
    for ns in node.netns[1:]:
        for link in ns.links:
            if link.name == "eth0":
                link.peer_ifindex = 7  # eth0@if7: its peer is not veth05dbc1b4 (ifindex 5)
    assert match_veths(node) == []


def test_seed001_q6_two_different_pods_same_numbers_are_ambiguous():
    node = seed001_worker()
    other = node.netns[2]
    for link in other.links:
        if link.name == "eth0":
            link.mac = "0a:58:0a:f4:01:09"  # a different interface with the same numbers
    warnings: list[str] = []
    assert match_veths(node, warnings=warnings) == []
    assert any("could be the peer" in w for w in warnings)


def test_seed001_q6_devices():
    bridges, overlays, uplink = describe(seed001_worker())
    assert bridges == {"cni0": ["veth05dbc1b4"]}
    flannel = next(o for o in overlays if o.name == "flannel.1")
    assert flannel.type == "flannel" and flannel.addresses[0] == "10.244.1.0/32"
    # no routes were pasted: the uplink is guessed, and says so
    assert uplink is not None and uplink.name == "eth0" and "172.23.193.146/20" in uplink.addresses
    assert uplink.guessed


def test_seed001_analyze_worker():
    analysis = analyze(Snapshot(nodes=[seed001_master(), seed001_worker()]))
    w = analysis.node("k8s-worker")
    assert [v.host_ifname for v in w.veth_pairs] == ["veth05dbc1b4"]
    assert w.not_in_containers == ["kubelet"]
    m = analysis.node("k8s-master")
    assert "kube-apiserver" in {c.name for c in m.components}



def test_seed000_master_etcd_from_the_pdf_wrapped_ps():
    node = NodeSnapshot(name="master", source="import",
                        processes=parse("ps", _text("seed000/master-ps-aux-grep-kube.wrapped.txt"), "seed000-q2"),
                        containers=parse("docker-ps", SEED000_Q3_MASTER_DOCKER_PS, "seed000-q3-master"))
    comps = find_components(node)
    etcd = next(c for c in comps if c.pid == 4127)
    assert etcd.name == "etcd"
    assert etcd.key_flags["--data-dir"] == "/var/lib/etcd"
    assert etcd.key_flags["--listen-client-urls"] == "https://127.0.0.1:2379,https://192.168.1.12:2379"
    # docker ps shows etcd's container (k8s_etcd_etcd-master_…): the process runs in it
    assert etcd.in_container is True and etcd.container_id == "987b3b32b6a2"
    # the other control-plane components appear through their containers only
    assert sorted(c.name for c in comps if c.pid is None) == ["kube-apiserver", "kube-controller-manager",
                                                              "kube-proxy", "kube-scheduler"]


def test_crictl_pods_and_ps_grouped_sandbox_first():
    """`crictl pods` + `crictl ps` quoted from kubernetes-sigs/cri-tools PR #369 (the parsers
    owner's fixtures): every container joins its sandbox by POD ID, sandbox first."""
    d = FIXTURES / "parsers"
    sandboxes = parse("crictl-pods", (d / "crictl-pods" / "quoted-cri-tools-pr369-crictl-pods.out").read_text(), "pods")
    conts = parse("crictl-ps", (d / "crictl-ps" / "quoted-cri-tools-pr369-crictl-ps.out").read_text(), "ps")
    node = NodeSnapshot(name="cloud-test2", containers=sandboxes + conts)
    pods = {p.key: p for p in group_pods(node)}
    assert set(pods) == {"kube-system/virtlet-wcb8r", "kube-system/kube-proxy-bqnhm"}
    v = pods["kube-system/virtlet-wcb8r"]
    assert v.sandbox_id == "3f075e72dfa28" and v.note is None
    assert [(c.name, c.is_sandbox) for c in v.containers] == [
        (v.containers[0].name, True), ("vms", False), ("virtlet", False), ("libvirt", False)]
    kp = pods["kube-system/kube-proxy-bqnhm"]
    assert [c.component for c in kp.containers] == ["pause", "kube-proxy"]
    assert kp.containers[1].attempt == 6
