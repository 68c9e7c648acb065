"""Ground truth of a lab node: what the lab built, recorded while building it (CRI/Docker
ids, CNI results, kernel ifindexes), independently of labreport's collectors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional


@dataclass
class TruthContainer:
    name: str  # CRI metadata name, or the dockershim container name's <c> part
    id: str
    image: str
    runtime: Literal["containerd", "docker"]
    docker_name: Optional[str] = None  # k8s_<c>_<pod>_<ns>_<uid>_0 for docker


@dataclass
class TruthVeth:
    host_ifname: str  # vethXXXX in the node namespace
    host_ifindex: int
    pod_ifname: str  # eth0
    pod_ifindex: int
    host_mac: str
    pod_mac: str
    bridge: Optional[str] = "cni0"


@dataclass
class TruthPod:
    namespace: str
    name: str
    uid: str
    runtime: Literal["containerd", "docker"]
    sandbox_id: str
    sandbox_pid: int
    ip: str
    netns_path: str  # /var/run/netns/cni-… (containerd) or /proc/<pause pid>/ns/net (docker)
    netns_name: Optional[str]  # cni-… for containerd; None for docker (no name)
    netns_inode: int
    containers: list[TruthContainer] = field(default_factory=list)
    veth: Optional[TruthVeth] = None
    sandbox_name: Optional[str] = None  # docker: k8s_POD_<pod>_<ns>_<uid>_0
    content: str = ""  # what its httpd serves at / (identifies the pod in curl answers)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class TruthEndpoint:
    ip: str
    port: int
    pod: str  # namespace/name
    chain: str  # KUBE-SEP-…
    rule_probability: Optional[float]  # None: unconditional (last rule)
    share: float  # effective share

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass
class TruthService:
    name: str  # kube-proxy's service port name: ns/svc:port
    namespace: str
    service: str
    port_name: str
    cluster_ip: str
    port: int
    protocol: str
    node_port: Optional[int]
    svc_chain: str
    endpoints: list[TruthEndpoint] = field(default_factory=list)


@dataclass
class NodeTruth:
    node_ns: str  # the namespace the node lives in (/var/run/netns/<node_ns>)
    base_dir: str
    pod_cidr: str
    cluster_cidr: str
    bridge: str
    bridge_ip: str
    containerd_socket: Optional[str]
    docker_host: Optional[str]  # unix:///…/docker.sock
    uplink: Optional[str] = None  # "eth0"
    uplink_ip: Optional[str] = None
    uplink_veth: Optional[TruthVeth] = None  # eth0 is a veth too; its peer is in uplink_peer_ns
    uplink_peer_ns: Optional[str] = None
    pods: list[TruthPod] = field(default_factory=list)
    services: list[TruthService] = field(default_factory=list)

    def pod(self, key: str) -> TruthPod:
        for p in self.pods:
            if p.key == key:
                return p
        raise KeyError(key)

    def all_container_ids(self) -> set[str]:
        return {c.id for p in self.pods for c in p.containers} | {p.sandbox_id for p in self.pods}


def truth_from_dict(data: dict) -> NodeTruth:
    """Rebuild a NodeTruth from ``dataclasses.asdict`` output (e.g. a sample's truth.json)."""
    d = dict(data)

    def veth(v):
        return TruthVeth(**v) if v else None

    pods = []
    for p in d.pop("pods", []):
        p = dict(p)
        p["containers"] = [TruthContainer(**c) for c in p.get("containers", [])]
        p["veth"] = veth(p.get("veth"))
        pods.append(TruthPod(**p))
    services = []
    for s in d.pop("services", []):
        s = dict(s)
        s["endpoints"] = [TruthEndpoint(**e) for e in s.get("endpoints", [])]
        services.append(TruthService(**s))
    d["uplink_veth"] = veth(d.get("uplink_veth"))
    return NodeTruth(**d, pods=pods, services=services)
