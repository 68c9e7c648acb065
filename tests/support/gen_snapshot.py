#!/usr/bin/env python3
"""A large synthetic snapshot for the render benchmark: a control-plane node and a worker
with N pods (default 1,000), each with a sandbox, an app container, a network namespace
and a veth pair on cni0, plus kube-proxy iptables rules for S Services (default 300) with
3 endpoints each — generated as iptables-save text in kube-proxy's format and read with
labreport's own parser.

SYNTHETIC: the scale is made up for benchmarking (no real node with 1,000 pods was at hand);
the record shapes are those collection and import produce. Usage:

    python3 -m tests.support.gen_snapshot --pods 1000 --services 300 --out benchmarks/out/snap-1000
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from labreport.parsers import get as get_parser  # noqa: E402
from labreport.snapshot import (Address, Container, Evidence, Link, NetNamespace, NodeInfo, NodeSnapshot,  # noqa: E402
                                Process, Route, Snapshot, save)


def _hash(prefix: str, s: str) -> str:
    h = hashlib.sha256(s.encode()).digest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return prefix + "".join(alphabet[b % 32] for b in h[:16])


def pod_ip(i: int) -> str:
    return str(ipaddress.ip_address("10.244.1.0") + 2 + i) if i < 250 else str(
        ipaddress.ip_address("10.244.2.0") + (i - 250) % 250 + 2 + 256 * ((i - 250) // 250))


def worker(n_pods: int) -> NodeSnapshot:
    node_ns = NetNamespace(name="node", kind="node")
    node_ns.links = [
        Link(ifindex=1, name="lo", addresses=[Address(family="inet", local="127.0.0.1", prefixlen=8)], state="UNKNOWN"),
        Link(ifindex=2, name="eth0", mac="52:54:00:12:34:02", mtu=1500, state="UP",
             addresses=[Address(family="inet", local="192.168.56.11", prefixlen=24)]),
        Link(ifindex=3, name="flannel.1", kind="vxlan", mtu=1450, state="UNKNOWN",
             addresses=[Address(family="inet", local="10.244.1.0", prefixlen=32)]),
        Link(ifindex=4, name="cni0", kind="bridge", mtu=1450, state="UP",
             addresses=[Address(family="inet", local="10.244.1.1", prefixlen=16)]),
    ]
    node_ns.routes = [Route(dst="default", gateway="192.168.56.1", dev="eth0"),
                      Route(dst="10.244.0.0/24", gateway="10.244.0.0", dev="flannel.1", onlink=True),
                      Route(dst="10.244.1.0/16", dev="cni0", scope="link", protocol="kernel")]
    spaces = [node_ns]
    containers = []
    addr_lines = []
    for i in range(n_pods):
        ns_name = f"cni-{hashlib.md5(str(i).encode()).hexdigest()[:8]}-0000-0000-0000-{i:012d}"
        host_idx = 5 + i
        nsid = i
        node_ns.nsids[nsid] = ns_name
        vname = f"veth{hashlib.md5(f'v{i}'.encode()).hexdigest()[:8]}"
        node_ns.links.append(Link(ifindex=host_idx, name=vname, kind="veth", peer_ifindex=2, link_netnsid=nsid,
                                  link_netns=ns_name, master="cni0", state="UP", mtu=1450))
        ip = pod_ip(i)
        spaces.append(NetNamespace(name=ns_name, kind="named", path=f"/var/run/netns/{ns_name}", nsids={0: "node"},
                                   links=[Link(ifindex=1, name="lo", state="UNKNOWN"),
                                          Link(ifindex=2, name="eth0", kind="veth", peer_ifindex=host_idx,
                                               link_netnsid=0, state="UP", mtu=1450,
                                               addresses=[Address(family="inet", local=ip, prefixlen=16)])]))
        pod = f"web-{i:04d}"
        sid = hashlib.sha256(f"s{i}".encode()).hexdigest()
        cid = hashlib.sha256(f"c{i}".encode()).hexdigest()
        containers.append(Container(runtime="containerd", id=sid, name=pod, image="registry.k8s.io/pause:3.9",
                                    state="SANDBOX_READY", pod_name=pod, pod_namespace="default", pod_uid=f"uid-{i}",
                                    is_sandbox=True, netns_path=f"/var/run/netns/{ns_name}", pod_ip=ip))
        containers.append(Container(runtime="containerd", id=cid, name="web", image="busybox:1.36",
                                    state="CONTAINER_RUNNING", pod_name=pod, pod_namespace="default",
                                    pod_uid=f"uid-{i}", sandbox_id=sid))
        addr_lines.append(f"{host_idx}: {vname}@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue "
                          f"master cni0 state UP group default\n    link/ether 02:00:00:00:{i // 256:02x}:{i % 256:02x} "
                          f"brd ff:ff:ff:ff:ff:ff link-netns {ns_name}")
    ev = Evidence(id="ip-addr", command="ip addr", stdout="\n".join(addr_lines), origin="synthesized")
    procs = [Process(pid=900, user="root", command="/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml "
                                                    "--container-runtime-endpoint=unix:///run/containerd/containerd.sock"),
             Process(pid=901, user="root", command="/usr/bin/containerd")]
    return NodeSnapshot(name="worker", source="live", info=NodeInfo(hostname="worker"), processes=procs,
                        containers=containers, netns=spaces, evidence=[ev])


def iptables_text(n_services: int, n_pods: int) -> str:
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
             ":KUBE-SERVICES - [0:0]", ":KUBE-MARK-MASQ - [0:0]", ":KUBE-POSTROUTING - [0:0]"]
    rules = ['-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
             '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
             '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
             "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
             "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
             "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
             '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully']
    for s in range(n_services):
        name = f"default/svc-{s:04d}:http"
        vip = str(ipaddress.ip_address("10.96.16.0") + s)
        svc = _hash("KUBE-SVC-", name)
        lines.append(f":{svc} - [0:0]")
        rules.append(f'-A KUBE-SERVICES -d {vip}/32 -p tcp -m comment --comment "{name} cluster IP" -m tcp '
                     f"--dport 80 -j {svc}")
        rules.append(f'-A {svc} ! -s 10.244.0.0/16 -d {vip}/32 -p tcp -m comment --comment "{name} cluster IP" '
                     f"-m tcp --dport 80 -j KUBE-MARK-MASQ")
        for k in range(3):
            ip = pod_ip((s * 3 + k) % n_pods)
            sep = _hash("KUBE-SEP-", f"{name}{ip}")
            lines.append(f":{sep} - [0:0]")
            prob = {0: " -m statistic --mode random --probability 0.33333333349",
                    1: " -m statistic --mode random --probability 0.50000000000", 2: ""}[k]
            rules.append(f'-A {svc} -m comment --comment "{name} -> {ip}:80"{prob} -j {sep}')
            rules.append(f'-A {sep} -s {ip}/32 -m comment --comment "{name}" -j KUBE-MARK-MASQ')
            rules.append(f'-A {sep} -p tcp -m comment --comment "{name}" -m tcp -j DNAT --to-destination {ip}:80')
    return "\n".join(lines + rules + ["COMMIT", ""])


def master(n_services: int, n_pods: int) -> NodeSnapshot:
    text = iptables_text(n_services, n_pods)
    ipt = get_parser("iptables-save").parse(text, source="iptables-save").value
    ipt.evidence_id = "iptables-save"
    ns = NetNamespace(name="node", kind="node", links=[
        Link(ifindex=2, name="eth0", state="UP", addresses=[Address(family="inet", local="192.168.56.10", prefixlen=24)]),
        Link(ifindex=3, name="flannel.1", kind="vxlan", addresses=[Address(family="inet", local="10.244.0.0", prefixlen=32)])],
        routes=[Route(dst="default", gateway="192.168.56.1", dev="eth0"),
                Route(dst="10.244.1.0/24", gateway="10.244.1.0", dev="flannel.1", onlink=True),
                Route(dst="10.244.2.0/23", gateway="10.244.1.0", dev="flannel.1", onlink=True)])
    procs = [Process(pid=100, user="root", command="kube-apiserver --advertise-address=192.168.56.10 "
                                                    "--service-cluster-ip-range=10.96.0.0/12"),
             Process(pid=101, user="root", command="/usr/local/bin/kube-proxy --config=/var/lib/kube-proxy/config.conf")]
    return NodeSnapshot(name="master", source="live", processes=procs, netns=[ns], iptables=ipt,
                        evidence=[Evidence(id="iptables-save", command="iptables-save", stdout=text,
                                           origin="synthesized")])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--services", type=int, default=300)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "snap-1000"))
    o = ap.parse_args()
    snap = Snapshot(title=f"SYNTHETIC benchmark snapshot: {o.pods} pods, {o.services} services",
                    origin_note="tests/support/gen_snapshot.py (synthetic scale for benchmarks)",
                    nodes=[master(o.services, o.pods), worker(o.pods)])
    path = save(snap, o.out)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
