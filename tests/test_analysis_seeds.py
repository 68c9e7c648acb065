"""Analysis on the REAL outputs of the two student reports (the seeds), read through
labreport's own parsers: components and roles (Q2), pods and sandboxes (Q3/Q5), the
veth pair of seed 001 Q6, and the node devices around it.

The outputs are quoted verbatim at the end of this file (constants named by seed and
question), so the tests need nothing outside the repository.
"""

from __future__ import annotations

from labreport.analysis import analyze
from labreport.analysis.components import find_components, not_in_containers
from labreport.analysis.pods import group_pods
from labreport.analysis.topology import describe
from labreport.analysis.veth import match_veths
from labreport.parsers import get
from labreport.snapshot import NetNamespace, NodeSnapshot, Snapshot


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
    flannel = next(o for o in overlays if o["name"] == "flannel.1")
    assert flannel["type"] == "flannel" and flannel["addresses"][0] == "10.244.1.0/32"
    # no routes were pasted: the uplink is guessed, and says so
    assert uplink is not None and uplink["name"] == "eth0" and "172.23.193.146/20" in uplink["addresses"]
    assert uplink.get("guessed")


def test_seed001_analyze_worker():
    analysis = analyze(Snapshot(nodes=[seed001_master(), seed001_worker()]))
    w = analysis.node("k8s-worker")
    assert [v.host_ifname for v in w.veth_pairs] == ["veth05dbc1b4"]
    assert w.not_in_containers == ["kubelet"]
    m = analysis.node("k8s-master")
    assert "kube-apiserver" in {c.name for c in m.components}


# --------------------------------------------------------------------------- the outputs
SEED001_Q2_MASTER_PS = 'root@k8s-master:/home# ps aux | grep kube\nroot    5047  0.3  2.7 1344076 186608 ?        Ssl  11:46   0:19 kube-controller-manager --allocate-node-cidrs=true --authentication-kubeconfig=/etc/kubernetes/controller-manager.conf --authorization-kubeconfig=/etc/kubernetes/controller-manager.conf --bind-address=127.0.0.1 --client-ca-file=/etc/kubernetes/pki/ca.crt --cluster-cidr=10.244.0.0/16 --cluster-name=kubernetes --cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt --cluster-signing-key-file=/etc/kubernetes/pki/ca.key --controllers=*,bootstrapsigner,tokencleaner --kubeconfig=/etc/kubernetes/controller-manager.conf --leader-elect=true --requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt --root-ca-file=/etc/kubernetes/pki/ca.crt --service-account-private-key-file=/etc/kubernetes/pki/sa.key --service-cluster-ip-range=10.96.0.0/12 --use-service-account-credentials=true\nroot    5053  0.1  1.4 1282960 56744 ?        Ssl  11:46   0:06 kube-scheduler --authentication-kubeconfig=/etc/kubernetes/scheduler.conf --authorization-kubeconfig=/etc/kubernetes/scheduler.conf --bind-address=127.0.0.1 --kubernetes/pki/sa.key --leader-elect=true\nroot    5081  1.4  7.4 1553796 287648 ?        Ssl  11:46   1:10 kube-apiserver --advertise-address=172.24.153.39 --allow-privileged=true --authorization-mode=Node,RBAC --client-ca-file=/etc/kubernetes/pki/ca.crt --enable-admission-plugins=NodeRestriction --enable-bootstrap-token-auth=true --etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt --etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt --etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key --etcd-servers=https://127.0.0.1:2379 --kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt --kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key --kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname --proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt --proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key --requestheader-allowed-names=front-proxy-client --requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt --requestheader-extra-headers-prefix=X-Remote-Extra- --requestheader-group-headers=X-Remote-Group --requestheader-username-headers=X-Remote-User --secure-port=6443 --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-account-key-file=/etc/kubernetes/pki/sa.pub --service-account-signing-key-file=/etc/kubernetes/pki/sa.key --service-cluster-ip-range=10.96.0.0/12 --tls-cert-file=/etc/kubernetes/pki/apiserver.crt --tls-private-key-file=/etc/kubernetes/pki/apiserver.key\nroot    5089  0.6  1.4 11222012 57024 ?        Ssl  11:46   0:30 etcd --advertise-client-urls=https://172.24.153.39:2379 --cert-file=/etc/kubernetes/pki/etcd/server.crt --client-cert-auth=true --data-dir=/var/lib/etcd --experimental-initial-corrupt-check=true --experimental-watch-progress-notify-interval=5s --initial-advertise-peer-urls=https://172.24.153.39:2380 --initial-cluster=k8s-master=https://172.24.153.39:2380 --key-file=/etc/kubernetes/pki/etcd/server.key --listen-client-urls=https://127.0.0.1:2379,https://172.24.153.39:2379 --listen-metrics-urls=https://127.0.0.1:2381 --listen-peer-urls=https://172.24.153.39:2380 --name=k8s-master --peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt --peer-client-cert-auth=true --peer-key-file=/etc/kubernetes/pki/etcd/peer.key --peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt --snapshot-count=10000 --trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt\nroot    5171  0.7  2.6 2077828 103648 ?        Ssl  11:46   0:37 /usr/bin/kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml --container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=registry.aliyuncs.com/google_containers/pause:3.9\nroot    5292  0.0  1.2 1281792 47428 ?        Ssl  11:46   0:00 /usr/local/bin/kube-proxy --config=/var/lib/kube-proxy/config.conf --hostname-override=k8s-master\nroot    6111  0.0  0.9 1269140 36728 ?        Ssl  12:23   0:01 /opt/bin/flanneld -ip-masq --kube-subnet-mgr\nroot    17637 0.0  0.0 9032 720 pts/0    S+   13:08   0:00 grep --color=auto kube\n'

SEED001_Q2_WORKER_PS = 'root@k8s-worker:/etc/containerd# ps aux | grep kube\nroot    4955  0.3  2.4 2077316 95332 ?        Ssl  12:29   0:08 /usr/bin/kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml --container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=registry.aliyuncs.com/google_containers/pause:3.9\nroot    5104  0.0  1.2 1281792 48056 ?        Ssl  12:29   0:00 /usr/local/bin/kube-proxy --config=/var/lib/kube-proxy/config.conf --hostname-override=k8s-worker\nroot    5444  0.0  0.9 1267884 36460 ?        Ssl  12:31   0:01 /opt/bin/flanneld -ip-masq --kube-subnet-mgr\nroot    14679 0.0  0.0 9032 656 pts/0    S+   13:08   0:00 grep --color=auto kube\n'

SEED001_Q3_MASTER_CRICTL = 'CONTAINER\tIMAGE\tCREATED\tSTATE\tNAME\tATTEMPT\tPOD ID\tPOD\nbb38dc090ff7\tead0a4a53df89\tAbout an hour ago\tRunning\tcoredns\t0\t0d42c195080c3\tcoredns-66f779496c-mt8xm\n92a1f939d1ca\tead0a4a53df89\tAbout an hour ago\tRunning\tcoredns\t0\tc526a8d958e08\tcoredns-66f779496c-49ndq\nb0c25e599ec3d\t1575deaad3b05\tAbout an hour ago\tRunning\tkube-flannel\t0\t3a4c0847b3ff6\tkube-flannel-ds-xwzsh\n89be855de15fc\t09c5e1abe5922\t2 hours ago\tRunning\tkube-proxy\t0\t3923b51881e2f\tkube-proxy-nnc29\n7327bf503af9a\t3861cfd7c04c\t2 hours ago\tRunning\tetcd\t0\tf3bf8f385410b\tetcd-k8s-master\na41cd6bcfec0\t69947457eaa42\t2 hours ago\tRunning\tkube-apiserver\t0\t14c897041ede8\tkube-apiserver-k8s-master\nfb7e4a3dfc89f\t7264907bfc5be\t2 hours ago\tRunning\tkube-scheduler\t0\tc452b5c0774e3\tkube-scheduler-k8s-master\n4508a142de6d2\t8981bdcce6670\t2 hours ago\tRunning\tkube-controller-manager\t0\t706e2b1e7f946\tkube-controller-manager-k8s-master\n\n'

SEED001_Q3_WORKER_CRICTL = 'CONTAINER\tIMAGE\tCREATED\tSTATE\tNAME\tATTEMPT\tPOD ID\tPOD\nbb972fdbafef5\t1575deaad3b05\t53 minutes ago\tRunning\tkube-flannel\t0\tafaf811d1728a\tkube-flannel-ds-22x65\n60168d1406136\t09c5e1abe5922\t55 minutes ago\tRunning\tkube-proxy\t0\tc541c7cf92aa1\tkube-proxy-ctn44\n\n'

SEED001_Q5_WORKER_CRICTL = 'CONTAINER\tIMAGE\tCREATED\tSTATE\tNAME\tATTEMPT\tPOD ID\tPOD\nb971dd036333d\teea933b9ed0ff\t6 minutes ago\tRunning\tdownloader\t0\te6cf53e8a57e5\ttestpod\n2bb4d8a64ff73\te6a8b3fdc6504\t6 minutes ago\tRunning\tfileserver\t0\te6cf53e8a57e5\ttestpod\nbb972fdbafef5\t1575deaad3b05\tAbout an hour ago\tRunning\tkube-flannel\t0\tafaf811d1728a\tkube-flannel-ds-22x65\n60168d1406136\t09c5e1abe5922\t2 hours ago\tRunning\tkube-proxy\t0\tc541c7cf92aa1\tkube-proxy-ctn44\n\n'

SEED001_Q6_POD_DOWNLOADER_IP_ADDR = 'root@testpod:/apps# ip addr\n1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n    inet 127.0.0.1/8 scope host lo\n        valid_lft forever preferred_lft forever\n    inet6 ::1/128 scope host\n        valid_lft forever preferred_lft forever\n2: eth0@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP group default\n    link/ether be:ab:81:b0:b7:72 brd ff:ff:ff:ff:ff:ff link-netnsid 0\n    inet 10.244.1.2/24 brd 10.244.1.255 scope global eth0\n        valid_lft forever preferred_lft forever\n    inet6 fe80::bcab:81ff:feb0:b772/64 scope link\n        valid_lft forever preferred_lft forever\n'

SEED001_Q6_POD_FILESERVER_IP_ADDR = 'root@testpod:/apps# ip addr\n1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n    inet 127.0.0.1/8 scope host lo\n        valid_lft forever preferred_lft forever\n    inet6 ::1/128 scope host\n        valid_lft forever preferred_lft forever\n2: eth0@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP group default\n    link/ether be:ab:81:b0:b7:72 brd ff:ff:ff:ff:ff:ff link-netnsid 0\n    inet 10.244.1.2/24 brd 10.244.1.255 scope global eth0\n        valid_lft forever preferred_lft forever\n    inet6 fe80::bcab:81ff:feb0:b772/64 scope link\n        valid_lft forever preferred_lft forever\n'

SEED001_Q6_WORKER_IP_ADDR = 'root@k8s-worker:/etc/containerd# ip addr\n1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n    inet 127.0.0.1/8 scope host lo\n        valid_lft forever preferred_lft forever\n    inet6 ::1/128 scope host\n        valid_lft forever preferred_lft forever\n2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq state UP group default qlen 1000\n    link/ether 00:16:3e:26:d1:f6 brd ff:ff:ff:ff:ff:ff\n    inet 172.23.193.146/20 brd 172.23.207.255 scope global dynamic eth0\n        valid_lft 315340506sec preferred_lft 315340506sec\n    inet6 fe80::216:3eff:fe26:d1f6/64 scope link\n        valid_lft forever preferred_lft forever\n3: flannel.1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UNKNOWN group default\n    link/ether 36:ac:8f:79:59:c0 brd ff:ff:ff:ff:ff:ff\n    inet 10.244.1.0/32 scope global flannel.1\n        valid_lft forever preferred_lft forever\n    inet6 fe80::34ac:8fff:fe79:59c0/64 scope link\n        valid_lft forever preferred_lft forever\n4: cni0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP group default qlen 1000\n    link/ether 1a:11:75:60:fd:05 brd ff:ff:ff:ff:ff:ff\n    inet 10.244.1.1/24 brd 10.244.1.255 scope global cni0\n        valid_lft forever preferred_lft forever\n    inet6 fe80::1811:75ff:fe60:fd05/64 scope link\n        valid_lft forever preferred_lft forever\n5: veth05dbc1b4@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue master cni0 state UP group default\n    link/ether 02:2a:2d:32:52:9a brd ff:ff:ff:ff:ff:ff link-netns cni-a4de7ab4-a30f-f2fc-e527-9f01229125dc\n'

SEED000_Q3_MASTER_DOCKER_PS = 'CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tNAMES\n2fe31c041f8d\t4c0375452406\t"/usr/local/bin/kube..."\t45 minutes ago\tUp 45 minutes\tk8s_kube-proxy_kube-proxy-j85j9_kube-system_a187e252-97b0-45de-9207-e19cdd922422_0\na243ddce286d\tregistry.cn-hangzhou.aliyuncs.com/google_containers/pause:3.6\t"/pause"\t45 minutes ago\tUp 45 minutes\tk8s_POD_kube-proxy-j85j9_kube-system_a187e252-97b0-45de-9207-e19cdd922422_0\ndd856da5c01a\tdf7b72818ad2\t"kube-controller-man..."\t45 minutes ago\tUp 45 minutes\tk8s_kube-controller-manager_kube-controller-manager-master_kube-system_27cf30a1c2a4a64564f85953423a4afb_5\ne0f696107940\t595f327f224a\t"kube-scheduler --au..."\t45 minutes ago\tUp 45 minutes\tk8s_kube-scheduler_kube-scheduler-master_kube-system_c8875b03a070436a9c6ca77dac5b9520_5\n2314768bf1bf\t8fa62c12256d\t"kube-apiserver --ad..."\t45 minutes ago\tUp 45 minutes\tk8s_kube-apiserver_kube-apiserver-master_kube-system_fef0d6d8c1ff3a71585c7ad5a30ab5d3_5\n987b3b32b6a2\t25f8c7f3da61\t"etcd --advertise-cl..."\t45 minutes ago\tUp 45 minutes\tk8s_etcd_etcd-master_kube-system_76a59c1cb93f43093d9910303f2ef924_5\nb5ed2dacc331\tregistry.cn-hangzhou.aliyuncs.com/google_containers/pause:3.6\t"/pause"\t45 minutes ago\tUp 45 minutes\tk8s_POD_kube-scheduler-master_kube-system_c8875b03a070436a9c6ca77dac5b9520_0\n9a4daa466d7c\tregistry.cn-hangzhou.aliyuncs.com/google_containers/pause:3.6\t"/pause"\t45 minutes ago\tUp 45 minutes\tk8s_POD_kube-controller-manager-master_kube-system_27cf30a1c2a4a64564f85953423a4afb_0\nb18b393d984a\tregistry.cn-hangzhou.aliyuncs.com/google_containers/pause:3.6\t"/pause"\t45 minutes ago\tUp 45 minutes\tk8s_POD_kube-apiserver-master_kube-system_fef0d6d8c1ff3a71585c7ad5a30ab5d3_0\n9b60c8baf50\tregistry.cn-hangzhou.aliyuncs.com/google_containers/pause:3.6\t"/pause"\t45 minutes ago\tUp 45 minutes\tk8s_POD_etcd-master_kube-system_76a59c1cb93f43093d9910303f2ef924_0\n\n'

SEED000_Q3_WORKER_DOCKER_PS = 'CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tNAMES\n255bca2632d3\tregistry.cn-hangzhou.aliyuncs.com/google_containers/kube-proxy\t"/usr/local/bin/kube..."\t57 minutes ago\tUp 57 minutes\tk8s_kube-proxy_kube-proxy-d2lkd_kube-system_9b7ddf4c-2e00-4904-ab47-3d6ea10376b5_0\nd9985bc654f3\tregistry.cn-hangzhou.aliyuncs.com/google_containers/pause:3.6\t"/pause"\t57 minutes ago\tUp 57 minutes\tk8s_POD_kube-proxy-d2lkd_kube-system_9b7ddf4c-2e00-4904-ab47-3d6ea10376b5_0\n\n'

SEED000_Q5_WORKER_NEW_DOCKER_PS = 'CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tNAMES\na7fae79530a1\tdplsming/aria2ng-downloader\t"/conf-copy/start.sh"\tAbout an hour ago\tUp About an hour\tk8s_downloader_pod_default_05260c21-c524-41c7-82e7-ea61f09f4f2f_0\nc17c77e1b546\tdplsming/nginx-fileserver\t"/docker-entrypoint...."\tAbout an hour ago\tUp About an hour\tk8s_viewer_pod_default_05260c21-c524-41c7-82e7-ea61f09f4f2f_0\n23f2f68378cc\tregistry.cn-hangzhou.aliyuncs.com/google_containers/pause:3.6\t"/pause"\tAbout an hour ago\tUp About an hour\tk8s_POD_pod_default_05260c21-c524-41c7-82e7-ea61f09f4f2f_0\n\n'

SEED000_Q5_VIEWER_NETWORKMODE = '"NetworkMode":  \n"container:23f2f68378cc2b4f42d9f01845882040e7390b84736c7e05196fafb55f1fed72",\n'
