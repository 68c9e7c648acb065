"""Two real nodes on one machine: ``master`` (pods 10.244.0.0/24) and ``worker``
(10.244.1.0/24), each a NodeLab in its own namespace, their ``eth0`` uplinks (192.168.56.10/24
and .11/24) veth pairs into a "lan" namespace (bridge br0 + gateway 192.168.56.1), the pod
ranges joined either by a flannel-style VXLAN (``flannel.1``, VNI 1, dstport 8472, with flannel's /32 address,
onlink route, permanent neighbour and FDB entry) or by host-gw routes; kube-proxy rules for
services whose endpoints span both nodes are loaded on both, and sshd runs on both uplinks.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tests.lab.kubeproxy import EndpointSpec, ServicePortSpec
from tests.lab.netns import add_netns, delete_netns, in_netns, netns_path
from tests.lab.node import LAB_ROOT, NodeLab
from tests.lab.proc import Teardown, log, run
from tests.lab.sshd import ClientKey, SshServer, write_client_config
from tests.lab.truth import NodeTruth, TruthVeth

VXLAN_DEV = "flannel.1"
VXLAN_VNI = 1
VXLAN_PORT = 8472


@dataclass
class NodeSpec:
    role: Literal["master", "worker"]
    pod_cidr: str
    uplink_ip: str  # without prefix
    with_docker: bool


@dataclass
class ClusterTruth:
    overlay: Literal["vxlan", "host-gw"]
    uplink_prefix: int
    nodes: dict[str, NodeTruth] = field(default_factory=dict)  # "master"/"worker" -> truth
    ssh_config: Path | None = None  # aliases "master" and "worker"
    ssh_key: Path | None = None
    vxlan_macs: dict[str, str] = field(default_factory=dict)  # role -> flannel.1 MAC

    def node_ns(self, role: str) -> str:
        return self.nodes[role].node_ns


@dataclass
class TwoNodeCluster:
    overlay: Literal["vxlan", "host-gw"] = "vxlan"
    with_sshd: bool = True
    specs: tuple[NodeSpec, NodeSpec] = (
        NodeSpec("master", "10.244.0.0/24", "192.168.56.10", with_docker=False),
        NodeSpec("worker", "10.244.1.0/24", "192.168.56.11", with_docker=True),
    )
    uplink_prefix: int = 24
    gateway: str = "192.168.56.1"
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    teardown: Teardown = field(default_factory=Teardown)
    build_seconds: float | None = None

    def __post_init__(self) -> None:
        self.base = LAB_ROOT / f"lrc{self.tag}"
        self.labs: dict[str, NodeLab] = {}
        self.ssh: dict[str, SshServer] = {}
        self.truth = ClusterTruth(overlay=self.overlay, uplink_prefix=self.uplink_prefix)

    def build(self) -> ClusterTruth:
        t0 = time.monotonic()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        self.build_seconds = time.monotonic() - t0
        return self.truth

    @property
    def lan_ns(self) -> str:
        return f"lrn{self.tag}"

    def ns(self, role: str) -> str:
        return f"lr{role[0]}{self.tag}"  # lrm…, lrw…

    def _build(self) -> None:
        self.base.mkdir(parents=True)
        self.teardown.push("remove cluster dir", lambda: shutil.rmtree(self.base, ignore_errors=True))
        for s in self.specs:
            ns = self.ns(s.role)
            add_netns(ns)
            self.teardown.push(f"delete {s.role} netns", lambda n=ns: delete_netns(n))
        # uplinks: each node's eth0 is a veth whose peer is a port of bridge br0 in a "lan"
        # namespace holding the gateway 192.168.56.1 (a host-only network + router): nodes need
        # a default route, since connect() routes a cluster IP before OUTPUT's DNAT rewrites it.
        lan = self.lan_ns
        add_netns(lan)
        self.teardown.push("delete lan netns", lambda: delete_netns(lan))
        run(["ip", "-n", lan, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", lan, "addr", "add", f"{self.gateway}/{self.uplink_prefix}", "dev", "br0"])
        run(["ip", "-n", lan, "link", "set", "br0", "up"])
        for s in self.specs:
            n = self.ns(s.role)
            run(["ip", "link", "add", "name", "eth0", "netns", n, "type", "veth",
                 "peer", "name", f"veth-{s.role}", "netns", lan])
            run(["ip", "-n", lan, "link", "set", f"veth-{s.role}", "master", "br0", "up"])
            run(["ip", "-n", n, "addr", "add", f"{s.uplink_ip}/{self.uplink_prefix}", "dev", "eth0"])
            run(["ip", "-n", n, "link", "set", "eth0", "up"])
            run(["ip", "-n", n, "route", "add", "default", "via", self.gateway])
        # the nodes themselves, in parallel
        for s in self.specs:
            lab = NodeLab(name=self.ns(s.role), pod_cidr=s.pod_cidr, with_docker=s.with_docker, uplink=None,
                          netns_ready=True, services=False, pod_prefix=f"{s.role}-")
            self.labs[s.role] = lab
            self.teardown.push(f"close {s.role} node", lab.close)
        with ThreadPoolExecutor(max_workers=2) as pool:
            for f in [pool.submit(lab.build) for lab in self.labs.values()]:
                f.result()
        for s in self.specs:
            t = self.labs[s.role].truth
            assert t is not None
            t.uplink, t.uplink_ip = "eth0", s.uplink_ip
            t.uplink_peer_ns = self.lan_ns
            t.uplink_veth = self._pair(self.ns(s.role), f"veth-{s.role}")
            self.truth.nodes[s.role] = t
        if self.overlay == "vxlan":
            self._vxlan()
        else:
            self._host_gw()
        self._services()
        if self.with_sshd:
            self._sshd()

    def _pair(self, node_ns: str, lan_port: str) -> TruthVeth:
        a = json.loads(run(["ip", "-n", node_ns, "-j", "link", "show", "eth0"]).stdout)[0]
        b = json.loads(run(["ip", "-n", self.lan_ns, "-j", "link", "show", lan_port]).stdout)[0]
        return TruthVeth(host_ifname="eth0", host_ifindex=a["ifindex"], pod_ifname=lan_port,
                         pod_ifindex=b["ifindex"], host_mac=a["address"], pod_mac=b["address"], bridge=None)

    def _vxlan(self) -> None:
        for s in self.specs:
            n = self.ns(s.role)
            run(["ip", "-n", n, "link", "add", VXLAN_DEV, "type", "vxlan", "id", str(VXLAN_VNI), "local",
                 s.uplink_ip, "dev", "eth0", "dstport", str(VXLAN_PORT), "nolearning"])
            run(["ip", "-n", n, "link", "set", VXLAN_DEV, "mtu", "1450", "up"])
            net = s.pod_cidr.split("/")[0]  # flannel puts the network address, /32, on flannel.1
            run(["ip", "-n", n, "addr", "add", f"{net}/32", "dev", VXLAN_DEV])
            self.truth.vxlan_macs[s.role] = json.loads(
                run(["ip", "-n", n, "-j", "link", "show", VXLAN_DEV]).stdout)[0]["address"]
        for s in self.specs:
            n = self.ns(s.role)
            for o in self.specs:
                if o is s:
                    continue
                onet = o.pod_cidr.split("/")[0]
                mac = self.truth.vxlan_macs[o.role]
                run(["ip", "-n", n, "route", "add", o.pod_cidr, "via", onet, "dev", VXLAN_DEV, "onlink"])
                run(["ip", "-n", n, "neigh", "replace", onet, "lladdr", mac, "dev", VXLAN_DEV, "nud", "permanent"])
                run(in_netns(n, "bridge", "fdb", "append", mac, "dev", VXLAN_DEV, "dst", o.uplink_ip))

    def _host_gw(self) -> None:
        for s in self.specs:
            for o in self.specs:
                if o is not s:
                    run(["ip", "-n", self.ns(s.role), "route", "add", o.pod_cidr, "via", o.uplink_ip, "dev", "eth0"])

    def services(self) -> list[ServicePortSpec]:
        """default/web:http (10.96.0.80:80, NodePort 30080) over every pod of both nodes, and
        default/fileserver:http (10.96.0.81:8080) over the two fileserver pods."""
        pods = [p for role in ("master", "worker") for p in self.truth.nodes[role].pods]
        web = [EndpointSpec(p.ip, 80, p.key) for p in pods]
        fs = [EndpointSpec(p.ip, 80, p.key) for p in pods if p.name.endswith("fileserver")]
        return [ServicePortSpec("default", "web", "http", "10.96.0.80", 80, web, node_port=30080),
                ServicePortSpec("default", "fileserver", "http", "10.96.0.81", 8080, fs)]

    def _services(self) -> None:
        specs = self.services()
        for lab in self.labs.values():
            lab.load_services(specs)

    def _sshd(self) -> None:
        key = ClientKey.generate(self.base / "client")
        for s in self.specs:
            srv = SshServer(self.ns(s.role), self.base / f"sshd-{s.role}", s.uplink_ip, key).start()
            self.ssh[s.role] = srv
            self.teardown.push(f"stop sshd {s.role}", srv.stop)
        self.truth.ssh_key = key.private
        self.truth.ssh_config = write_client_config(self.base / "client" / "ssh_config", self.ssh)

    # ------------------------------------------------------------------ use
    def exec(self, role: str, *argv: str, timeout: float = 60.0, check: bool = True):
        """Run a command inside a node (``ip netns exec NODE …``)."""
        return run(in_netns(self.ns(role), *argv), timeout=timeout, check=check)

    def netns_path(self, role: str) -> str:
        return netns_path(self.ns(role))

    def close(self) -> list[str]:
        errors = self.teardown.run()
        if errors:
            log.warning("cluster %s teardown: %s", self.tag, errors)
        return errors

    def __enter__(self) -> "TwoNodeCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
