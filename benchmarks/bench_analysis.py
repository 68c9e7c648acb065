"""Benchmark of the analysis owner's parts of analyze() on a busy node.

    python3 benchmarks/bench_analysis.py [--pods 1000] [--netns 200] [--services 10000]

Builds one NodeSnapshot in memory, shaped like what the collectors record on a
containerd node: N pod sandboxes (CRI, netns /var/run/netns/cni-…) with two containers
each, one containerd-shim process per pod plus the control plane, M pod namespaces
each holding eth0 (ifindex 2, like every real pod) paired with a host veth on cni0, and
S service ports with 3 endpoints each (as the services decoder returns them). Then it
times components, pods, veth matching, topology, preflight and the endpoint→pod naming,
i.e. everything analyze() does besides the other owners' decoders.
"""

from __future__ import annotations

import argparse
import time
import uuid

from labreport.analysis import _fill_endpoint_pods, analyze_node
from labreport.analysis.components import find_components
from labreport.analysis.model import Analysis, Endpoint, ServiceRecord
from labreport.analysis.pods import group_pods
from labreport.analysis.preflight import checks
from labreport.analysis.topology import describe
from labreport.analysis.veth import match_veths
from labreport.snapshot import Address, Container, Link, NetNamespace, NodeSnapshot, Process, Route

CONTROL_PLANE = [
    "/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml --container-runtime-endpoint=unix:///run/containerd/containerd.sock",
    "/usr/bin/containerd",
    "kube-apiserver --advertise-address=192.168.56.10 --service-cluster-ip-range=10.96.0.0/12",
    "etcd --data-dir=/var/lib/etcd --listen-client-urls=https://127.0.0.1:2379",
    "/usr/local/bin/kube-proxy --config=/var/lib/kube-proxy/config.conf",
    "/opt/bin/flanneld -ip-masq --kube-subnet-mgr",
]


def build(pods: int, netns: int) -> NodeSnapshot:
    host_links = [Link(ifindex=1, name="lo", flags=["LOOPBACK"]),
                  Link(ifindex=2, name="eth0", addresses=[Address(family="inet", local="192.168.56.11", prefixlen=24)]),
                  Link(ifindex=3, name="cni0", kind="bridge",
                       addresses=[Address(family="inet", local="10.244.0.1", prefixlen=16)])]
    node_nsids: dict[int, str] = {}
    spaces: list[NetNamespace] = []
    containers: list[Container] = []
    processes = [Process(pid=100 + i, command=c) for i, c in enumerate(CONTROL_PLANE)]
    for i in range(pods):
        sid = uuid.uuid4().hex + uuid.uuid4().hex
        nsname = f"cni-{uuid.uuid4()}"
        ip = f"10.244.{i // 250}.{i % 250 + 2}"
        containers.append(Container(runtime="containerd", id=sid, name=f"web-{i}", is_sandbox=True,
                                    pod_name=f"web-{i}", pod_namespace="default", pod_uid=str(uuid.uuid4()),
                                    netns_path=f"/var/run/netns/{nsname}", state="SANDBOX_READY"))
        for cname in ("fileserver", "downloader"):
            containers.append(Container(runtime="containerd", id=uuid.uuid4().hex, name=cname, sandbox_id=sid,
                                        pod_name=f"web-{i}", state="CONTAINER_RUNNING"))
        processes.append(Process(pid=10000 + i, command=f"/usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id {sid}"))
        if i < netns:
            host_ifindex = 10 + i
            nsid = i
            node_nsids[nsid] = nsname
            host_links.append(Link(ifindex=host_ifindex, name=f"veth{sid[:8]}", kind="veth", peer_ifindex=2,
                                   link_netnsid=nsid, master="cni0"))
            spaces.append(NetNamespace(
                name=nsname, path=f"/var/run/netns/{nsname}", nsids={0: "host"},
                links=[Link(ifindex=1, name="lo"),
                       Link(ifindex=2, name="eth0", kind="veth", peer_ifindex=host_ifindex, link_netnsid=0,
                            addresses=[Address(family="inet", local=ip, prefixlen=24)])]))
    node_ns = NetNamespace(name="host", kind="node", links=host_links, nsids=node_nsids,
                           routes=[Route(dst="default", gateway="192.168.56.1", dev="eth0")])
    return NodeSnapshot(name="worker", processes=processes, containers=containers, netns=[node_ns, *spaces])


def services(n: int) -> list[ServiceRecord]:
    out = []
    for i in range(n):
        eps = [Endpoint(address=f"10.244.0.{(i + k) % 250 + 2}:80", probability=1 / 3) for k in range(3)]
        out.append(ServiceRecord(name=f"ns{i % 200}/svc{i}:http", cluster_ip=f"10.96.{i // 250}.{i % 250}",
                                 port=80, endpoints=eps))
    return out


def timed(label: str, fn, results: dict[str, float]):
    t0 = time.perf_counter()
    value = fn()
    results[label] = time.perf_counter() - t0
    return value


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--netns", type=int, default=200)
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--iptables", default=None,
                    help="an iptables-save file (e.g. from python3 -m tests.support.gen_iptables --services 10000 --out D): "
                         "also time the whole analyze() on it, other owners' decoders, crosscheck and path included")
    args = ap.parse_args()
    node = build(args.pods, args.netns)
    t: dict[str, float] = {}
    comps = timed("components", lambda: find_components(node), t)
    pairs = timed("veth", lambda: match_veths(node), t)
    pods = timed("pods", lambda: group_pods(node, veths=pairs), t)
    timed("topology", lambda: describe(node), t)
    timed("preflight", lambda: checks(node, None), t)
    na = timed("analyze_node (all of the above)", lambda: analyze_node(node), t)
    na.services = services(args.services)
    timed("endpoint -> pod naming", lambda: _fill_endpoint_pods(Analysis(nodes=[na])), t)
    named = sum(1 for s in na.services for e in s.endpoints or () if e.pod)
    print(f"node: {args.pods} pods ({len(node.containers)} containers), {len(node.processes)} processes, "
          f"{args.netns} pod netns, {args.services} services x 3 endpoints")
    print(f"found: {len(comps)} components, {len(pods)} pods, {len(pairs)} veth pairs, {named} endpoints named")
    if args.iptables:
        from labreport.analysis import analyze
        from labreport.parsers import get
        from labreport.snapshot import Snapshot

        with open(args.iptables, encoding="utf-8") as fh:
            node.iptables = get("iptables-save").parse(fh.read(), source=args.iptables).value
        a = timed("analyze() whole, with the rules", lambda: analyze(Snapshot(nodes=[node])), t)
        print(f"whole analyze: {len(a.nodes[0].services)} service ports decoded, warnings: {a.warnings or 'none'}")
    for k, v in t.items():
        print(f"  {k:34s} {v * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
