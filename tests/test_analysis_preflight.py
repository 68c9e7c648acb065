"""Preflight checks (Q1): pass only on evidence, "unknown" when not collected, a fix each.

Inputs are real: seed 001's `sysctl …` / `lsmod | grep br_netfilter` output (its Q1),
seed 001's `ps aux | grep kube`, this machine's own /proc values, and the Kubernetes API
node list of tests/fixtures/k8s-api (the shape kube-apiserver returns).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from labreport.analysis.preflight import checks
from labreport.parsers import get
from labreport.snapshot import ClusterObjects, CollectorStatus, NodeInfo, NodeSnapshot
from tests.conftest import FIXTURES

# seed 001, Q1 step 3 (verbatim)
SEED001_SYSCTL = """root@k8s-master:/etc/containerd# sysctl net.bridge.bridge-nf-call-iptables
net.bridge.bridge-nf-call-ip6tables net.ipv4.ip_forward
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
net.ipv4.ip_forward = 1
"""
SEED001_LSMOD = """# br_netfilter          22256  0
# bridge                151336  1 br_netfilter
"""
SEED001_KUBELET_PS = (
    "root    4955  0.3  2.4 2077316 95332 ?        Ssl  12:29   0:08 /usr/bin/kubelet "
    "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf "
    "--config=/var/lib/kubelet/config.yaml --container-runtime-endpoint=unix:///var/run/containerd/containerd.sock "
    "--pod-infra-container-image=registry.aliyuncs.com/google_containers/pause:3.9\n"
)


def _sysctls(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"^(net\.[\w.-]+) = (\S+)$", text, re.M)}


def _modules(text: str) -> list[str]:
    return [line.lstrip("# ").split()[0] for line in text.splitlines() if line.strip()]


def _by_id(node: NodeSnapshot, cluster=None):
    return {c.id: c for c in checks(node, cluster)}


def _nodes_fixture() -> ClusterObjects:
    data = json.loads((FIXTURES / "k8s-api" / "nodes.json").read_text())
    return ClusterObjects(nodes=data["items"])


def test_nothing_collected_is_unknown_never_pass():
    res = checks(NodeSnapshot(name="x"), None)
    assert res and all(c.status == "unknown" for c in res)
    assert all(c.fix for c in res)
    ids = {c.id for c in res}
    assert {"module-br_netfilter", "module-overlay", "sysctl-net.ipv4.ip_forward",
            "sysctl-net.bridge.bridge-nf-call-iptables", "sysctl-net.bridge.bridge-nf-call-ip6tables",
            "swap", "cgroup-driver", "runtime", "kubelet", "cni-config", "node-ready"} <= ids


def test_seed001_sysctls_and_modules_pass():
    info = NodeInfo(sysctls=_sysctls(SEED001_SYSCTL), modules=_modules(SEED001_LSMOD))
    res = _by_id(NodeSnapshot(name="k8s-master", info=info))
    for key in ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"):
        assert res[f"sysctl-{key}"].status == "pass" and res[f"sysctl-{key}"].observed == "1"
    assert res["module-br_netfilter"].status == "pass"
    # overlay was not in what the student showed: not loaded per that list, maybe built in
    assert res["module-overlay"].status == "warn"


def test_ip_forward_off_fails_with_fix():
    info = NodeInfo(sysctls={**_sysctls(SEED001_SYSCTL), "net.ipv4.ip_forward": "0"})
    c = _by_id(NodeSnapshot(name="n", info=info))["sysctl-net.ipv4.ip_forward"]
    assert c.status == "fail" and c.observed == "0" and "ip_forward=1" in c.fix


def test_this_machines_real_values():
    """The values of the machine running the tests, read from /proc like a collector."""
    fwd = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    mods = [line.split()[0] for line in Path("/proc/modules").read_text().splitlines()] \
        if Path("/proc/modules").exists() else []
    info = NodeInfo(sysctls={"net.ipv4.ip_forward": fwd}, modules=mods)
    res = _by_id(NodeSnapshot(name="here", info=info))
    assert res["sysctl-net.ipv4.ip_forward"].status == ("pass" if fwd == "1" else "fail")
    if "br_netfilter" in mods:
        assert res["module-br_netfilter"].status == "pass"


def test_cgroup_drivers():
    info = NodeInfo(cgroup_drivers={"kubelet": "systemd", "containerd": "systemd"}, versions={"containerd": "1.6.20"})
    assert _by_id(NodeSnapshot(name="n", info=info))["cgroup-driver"].status == "pass"
    # seed 000's situation before the student fixed it: Docker cgroupfs, kubelet systemd
    info = NodeInfo(cgroup_drivers={"kubelet": "systemd", "docker": "cgroupfs"}, versions={"docker": "20.10.24"})
    c = _by_id(NodeSnapshot(name="n", info=info))["cgroup-driver"]
    assert c.status == "fail" and "cgroupfs" in c.observed and c.fix
    info = NodeInfo(cgroup_drivers={"kubelet": "systemd"})
    assert _by_id(NodeSnapshot(name="n", info=info))["cgroup-driver"].status == "unknown"


def test_runtime_and_kubelet_from_a_filtered_ps_are_not_failures():
    procs = get("ps").parse(SEED001_KUBELET_PS, source="seed001-q2").value
    node = NodeSnapshot(name="k8s-worker", source="import", processes=procs)
    res = _by_id(node)
    assert res["kubelet"].status == "pass" and "4955" in res["kubelet"].observed
    # `ps aux | grep kube` hides containerd: absence there proves nothing
    assert res["runtime"].status == "unknown"
    # after a full live process collection, no runtime process is a failure
    node.collectors.append(CollectorStatus(name="processes", ok=True))
    assert _by_id(node)["runtime"].status == "fail"


def test_runtime_version():
    node = NodeSnapshot(name="n", info=NodeInfo(versions={"containerd": "1.6.20", "kubelet": "v1.28.9"}))
    res = _by_id(node)
    assert res["runtime"].status == "pass" and res["runtime"].observed == "containerd 1.6.20"
    assert res["kubelet"].status == "pass" and "v1.28.9" in res["kubelet"].observed


def test_node_ready_from_api_objects():
    cluster = _nodes_fixture()
    res = _by_id(NodeSnapshot(name="worker"), cluster)
    assert res["node-ready"].status == "pass" and res["node-ready"].observed.startswith("Ready=True")
    assert res["kubelet"].status == "pass" and "v1.28.2" in res["kubelet"].observed  # nodeInfo.kubeletVersion
    not_ready = copy.deepcopy(cluster)
    for n in not_ready.nodes:
        for cond in n["status"]["conditions"]:
            if cond["type"] == "Ready":
                cond.update(status="False", reason="KubeletNotReady",
                            message="container runtime network not ready: NetworkReady=false")
    c = _by_id(NodeSnapshot(name="worker"), not_ready)["node-ready"]
    assert c.status == "fail" and "KubeletNotReady" in c.observed
    assert _by_id(NodeSnapshot(name="elsewhere"), cluster)["node-ready"].status == "unknown"


def test_cni_config():
    conf = '{"name": "cbr0", "cniVersion": "0.3.1", "plugins": [{"type": "flannel"}]}'
    c = _by_id(NodeSnapshot(name="n", info=NodeInfo(cni_config=conf)))["cni-config"]
    assert c.status == "pass" and "flannel" in c.observed


def test_cni_config_absent_after_sysinfo_ran_is_a_failure():
    node = NodeSnapshot(name="n", collectors=[CollectorStatus(name="sysinfo", ok=True, partial=True,
                                                              reason="kubelet version unknown: not found")])
    c = _by_id(node)["cni-config"]
    assert c.status == "fail" and "/etc/cni/net.d" in c.observed


def _cluster_with_configmaps() -> ClusterObjects:
    cluster = _nodes_fixture()
    for name in ("kubeadm-config", "kube-proxy"):
        cluster.configmaps.append(json.loads((FIXTURES / "k8s-api" / f"configmap-{name}.json").read_text()))
    return cluster


def test_pod_cidr_from_seed001_processes_and_bridge():
    from tests.test_analysis_seeds import seed001_master, seed001_worker

    # master: kube-controller-manager --cluster-cidr=10.244.0.0/16, but no bridge pasted
    c = _by_id(seed001_master())["pod-cidr"]
    assert c.status == "unknown" and "10.244.0.0/16" in c.observed
    # worker: cni0 10.244.1.1/24, and the master's flag is not on this node → the worker's
    # kube-proxy has no --cluster-cidr either: unknown without the cluster objects
    assert _by_id(seed001_worker())["pod-cidr"].status == "unknown"
    # with the API's kubeadm-config (podSubnet 10.244.0.0/16): the worker's subnet fits
    w = seed001_worker()
    w.name = "elsewhere"  # not in the API's node list: the subnet comes from cni0
    c = _by_id(w, _cluster_with_configmaps())["pod-cidr"]
    assert c.status == "pass" and "10.244.1.0/24 (cni0" in c.observed and "kubeadm-config" in c.observed


def test_pod_cidr_mismatch_fails():
    cluster = _cluster_with_configmaps()
    for cm in cluster.configmaps:
        if cm["metadata"]["name"] == "kubeadm-config":
            cm["data"]["ClusterConfiguration"] = cm["data"]["ClusterConfiguration"].replace(
                "podSubnet: 10.244.0.0/16", "podSubnet: 192.168.0.0/16")  # calico's default, flannel's nodes
        if cm["metadata"]["name"] == "kube-proxy":
            cm["data"]["config.conf"] = cm["data"]["config.conf"].replace("10.244.0.0/16", "192.168.0.0/16")
    c = _by_id(NodeSnapshot(name="worker"), cluster)["pod-cidr"]  # spec.podCIDR 10.244.1.0/24
    assert c.status == "fail" and "outside" in c.observed and "--pod-network-cidr" in c.fix
