"""What analysis derives from a snapshot: the contract between analysis and rendering.

All analysis is pure: functions take snapshot records and return these models. The JSON
of ``labreport analyze --json`` is ``Analysis.model_dump(mode="json")``.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field

from labreport.perf import complete_models
from labreport.snapshot import Record

ProxyMode = Literal["iptables", "nftables", "ipvs", "cilium", "unknown", "none"]


class Component(Record):
    """A Kubernetes-related process on a node (Q2), with what it does (``role``)."""

    name: str  # canonical: etcd, kube-apiserver, kubelet, containerd, flanneld, coredns …
    pid: Optional[int] = None
    role: str  # one-line explanation (English; templates translate by ``name``)
    command: str = ""
    in_container: Optional[bool] = None
    container_id: Optional[str] = None
    key_flags: dict[str, str] = Field(default_factory=dict)  # --config, --container-runtime-endpoint …
    truncated: bool = False


class PodContainer(Record):
    id: str
    name: str
    image: Optional[str] = None
    state: Optional[str] = None
    is_sandbox: bool = False
    runtime: Optional[str] = None
    attempt: Optional[int] = None
    component: Optional[str] = None  # canonical component this container runs, if any


class Pod(Record):
    """Containers grouped by pod, with the sandbox (pause) marked (Q3/Q5)."""

    namespace: Optional[str] = None
    name: str
    uid: Optional[str] = None
    sandbox_id: Optional[str] = None  # None: the sandbox was not in the input (e.g. crictl ps)
    containers: list[PodContainer] = Field(default_factory=list)  # sandbox first when known
    ip: Optional[str] = None
    netns: Optional[str] = None
    shares_netns_with_sandbox: Optional[bool] = None  # docker NetworkMode container:<sandbox>
    note: Optional[str] = None  # e.g. "sandbox e6cf… is not in the input (crictl ps lists no sandboxes)"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


class VethPair(Record):
    """A host veth matched to a pod interface: each side's peer index points at the other."""

    host_ifname: str
    host_ifindex: int
    netns: str  # the pod's namespace name (NetNamespace.name)
    pod_ifname: str
    pod_ifindex: int
    pod_ips: list[str] = Field(default_factory=list)  # "10.244.1.2/24"
    bridge: Optional[str] = None  # master of the host side (cni0, weave, docker0) or None (routed)
    host_mac: Optional[str] = None
    pod_mac: Optional[str] = None
    pod: Optional[str] = None  # "namespace/name" when a sandbox's netns tells us
    # how the pair was made when the evidence is indirect: "inferred from ifindex" (the host
    # side's link-netns line was cut off, e.g. by `ip link | grep`); None: both sides named
    inferred: Optional[str] = None
    contradicted: Optional[str] = None  # other evidence disagrees (then it is not drawn as fact)


class Inconsistency(Record):
    """Outputs of one report that do not agree with each other (labreport.analysis.inconsistencies)."""

    kind: str  # prompt-node | endpoint-without-pod | pod-ip-conflict | veth-contradicted
    node: Optional[str] = None
    subject: str
    detail: str
    evidence: list[str] = Field(default_factory=list)  # sources ("report.pdf:123", evidence ids)
    args: dict[str, str] = Field(default_factory=dict)  # the detail's parts, for translated templates


class UnreadItem(Record):
    """Something labreport could not read (or repaired) and how the student can give it."""

    source: str
    message: str  # English; templates translate by ``code`` with ``args``
    fix: Optional[str] = None
    kind: str = "unread"
    code: Optional[str] = None  # new_only | yaml_meta | yaml_shift | yaml_damaged | duplicate | prompt_node | unread | lines
    args: dict[str, str] = Field(default_factory=dict)


class Endpoint(Record):
    address: str  # "ip:port"
    probability: Optional[float] = None  # effective share; the shares of a service sum to 1
    rule_probability: Optional[float] = None  # iptables: the rule's own --probability (None = always)
    weight: Optional[int] = None  # ipvs weight
    chain: Optional[str] = None  # KUBE-SEP-… / endpoint-… chain
    ready: Optional[bool] = None
    local: Optional[bool] = None  # on this node (externalTrafficPolicy Local / KUBE-SVL)
    pod: Optional[str] = None  # "namespace/name" when known from the API or veths


class ServiceRecord(Record):
    """One Service port as kube-proxy programs it, decoded the same way in every mode."""

    name: str  # kube-proxy's service port name: "namespace/service:port" or "namespace/service"
    namespace: Optional[str] = None
    service: Optional[str] = None
    port_name: Optional[str] = None
    cluster_ip: Optional[str] = None
    port: Optional[int] = None
    protocol: str = "tcp"
    node_port: Optional[int] = None
    external_ips: list[str] = Field(default_factory=list)
    load_balancer_ips: list[str] = Field(default_factory=list)
    session_affinity: bool = False
    affinity_timeout_s: Optional[int] = None
    external_traffic_policy: Optional[str] = None  # "Local" when KUBE-SVL / external-… chains say so
    internal_traffic_policy: Optional[str] = None
    endpoints: Optional[list[Endpoint]] = None  # None: unknown (the service chain is not in the input)
    no_endpoints: bool = False  # kube-proxy rejects traffic (KUBE-SVC missing + REJECT / no-endpoint-services)
    mode: ProxyMode = "iptables"
    chains: dict[str, str] = Field(default_factory=dict)  # {"svc": "KUBE-SVC-…", "ext": "KUBE-EXT-…", "fw": …}
    evidence: list[str] = Field(default_factory=list)  # the rule lines it was decoded from
    warnings: list[str] = Field(default_factory=list)


class MasqueradeInfo(Record):
    """What KUBE-MARK-MASQ / KUBE-POSTROUTING (or nft mark-for-masquerade / masquerading) do."""

    mark: Optional[str] = None  # "0x4000/0x4000"
    mark_chain: Optional[str] = None
    postrouting_chain: Optional[str] = None
    rules: list[str] = Field(default_factory=list)


class ProxyModeInfo(Record):
    mode: ProxyMode = "unknown"
    detected_from: str = ""  # "kube-proxy ConfigMap", "--proxy-mode flag", "rules: KUBE-SERVICES chain" …
    rule_sets_present: list[ProxyMode] = Field(default_factory=list)  # >1 after a mode switch
    note: Optional[str] = None


class PreflightCheck(Record):
    """One kubeadm-style check (Q1): br_netfilter, ip_forward, cgroup drivers match …"""

    id: str
    title: str
    status: Literal["pass", "fail", "warn", "unknown"]
    observed: Optional[str] = None
    expected: Optional[str] = None
    fix: Optional[str] = None


class Hop(Record):
    """One step of the traffic path (numbered in the diagram)."""

    n: int
    node: Optional[str] = None
    kind: str  # "chain", "dnat", "route", "device", "link", "veth", "pod", "vmap", "numgen", "ipvs"
    where: str  # device or chain name
    detail: str = ""
    evidence: Optional[str] = None
    key: Optional[str] = None  # the report's sentence for it (path.hop.<key>)
    args: dict[str, Any] = Field(default_factory=dict)  # the sentence's values
    inferred: Optional[str] = None  # why this hop is inferred, when it is not read from a record
    why_key: Optional[str] = None
    why_args: dict[str, Any] = Field(default_factory=dict)


class PathReply(Record):
    """The way back of the report's path (the trace's reply of the chosen outcome): what the
    endpoint sends, what reaches the client, and the nodes whose conntrack reversed a NAT."""

    result: Literal["delivered", "dropped", "rejected", "unknown"]
    src: str  # "ip:port" the endpoint answers from
    dst: Optional[str] = None  # the address it answers to (hosts only: the client's port is the kernel's choice)
    seen_src: Optional[str] = None
    seen_dst: Optional[str] = None
    expected_src: Optional[str] = None
    nat_nodes: list[str] = Field(default_factory=list)
    reason: Optional[str] = None


class TrafficPath(Record):
    service: Optional[str] = None
    from_node: Optional[str] = None
    to_node: Optional[str] = None
    target: Optional[str] = None  # "ip:port" of the chosen endpoint
    target_pod: Optional[str] = None
    hops: list[Hop] = Field(default_factory=list)
    complete: bool = False
    note: Optional[str] = None
    traced: bool = False  # the hops come from a trace through the datapath model (labreport trace)
    probability: Optional[float] = None  # the traced outcome's probability
    masquerade: Optional[bool] = None  # the traced outcome's source NAT
    reply: Optional[PathReply] = None  # the way back, traced through conntrack


class TrafficOutcome(Record):
    """One way a traced packet ends (labreport trace), in the per-Service section."""

    result: Literal["delivered", "dropped", "rejected", "unknown"]
    share: float  # probability of this outcome
    endpoint: Optional[str] = None  # "ip:port" reached (after DNAT)
    dnat: Optional[str] = None  # the DNAT target, when a rule rewrote the destination
    pod: Optional[str] = None
    node: Optional[str] = None
    masquerade: bool = False  # the receiver sees a rewritten source address
    reason: Optional[str] = None  # the rule that dropped/rejected it, or what the snapshot lacks


class ServiceTraffic(Record):
    """What a client gets from one front of a user Service: from a pod, or from outside."""

    service: str  # "ns/svc:port"
    front: str  # "10.96.0.10:80"
    kind: Literal["cluster-ip", "node-port", "external-ip", "load-balancer"]
    source: Literal["pod", "outside"]
    source_label: str  # "pod default/client (10.244.1.3)", "203.0.113.7 via master"
    source_ip: str
    source_pod: Optional[str] = None  # "ns/name" of the sending pod
    elsewhere: bool = False  # the pod is not on ``node``: its address entered ``node``'s rules
    node: str  # the node whose rules were traced
    outcomes: list[TrafficOutcome] = Field(default_factory=list)


class Mismatch(Record):
    """A disagreement between the API and what a node shows (stale rule, missing endpoint…)."""

    kind: str
    node: Optional[str] = None
    subject: str
    detail: str


class OverlayFdb(Record):
    """One forwarding entry of a VXLAN device (``bridge fdb``): a MAC reached via ``dst``."""

    mac: str
    dst: Optional[str] = None
    flags: list[str] = Field(default_factory=list)


class NodeDevice(Record):
    """One of the node's own network devices as the report describes it."""

    name: str  # "flannel.1", or a group such as "cali*"
    ifindex: Optional[int] = None
    kind: Optional[str] = None  # vxlan, bridge, ipip, veth, dummy …
    addresses: list[str] = Field(default_factory=list)  # "10.244.1.0/32"
    mac: Optional[str] = None
    mtu: Optional[int] = None
    state: Optional[str] = None


class Overlay(NodeDevice):
    """A CNI's overlay or routing device (flannel.1, weave, tunl0, vxlan.calico, cilium_*,
    kube-ipvs0, the cali*/vethwe* veth groups) and what it does."""

    type: str  # flannel | weave | calico | cilium | kube-proxy-ipvs
    role: str
    ports: list[str] = Field(default_factory=list)  # bridge ports, or the grouped veths
    vni: Optional[int] = None  # VXLAN devices
    local: Optional[str] = None
    port: Optional[int] = None
    dev: Optional[str] = None  # the underlay device
    remote: Optional[str] = None
    group: Optional[str] = None
    fdb: list[OverlayFdb] = Field(default_factory=list)


class Uplink(NodeDevice):
    """The node's uplink: the default route's device (or, with no routes, the one device
    with a global IPv4 address: ``guessed`` says so)."""

    gateway: Optional[str] = None
    guessed: Optional[str] = None


# --------------------------------------------------------------------------- observed beside predicted
# (analysis/observed.py fills them: trace's prediction for each Service front next to the
# connections the node's conntrack table holds)


class PredictedShare(Record):
    result: str  # delivered | dropped | rejected | unknown
    probability: float
    endpoint: Optional[str] = None
    masquerade: bool = False


class ObservedConnection(Record):
    endpoint: str  # ip:port the connection reached
    masquerade: bool  # the source was rewritten
    count: int


class ObservedFront(Record):
    service: str
    front: str  # "10.96.0.10:80" or "node:30080"
    source_kind: str = "pod"  # pod | outside | node (the predicted flow's source)
    predicted: list[PredictedShare] = Field(default_factory=list)
    observed: list[ObservedConnection] = Field(default_factory=list)
    # True: every observed connection is a predicted endpoint with the predicted masquerade
    # bit; False: one is not; None: nothing observed to compare
    agrees: Optional[bool] = None
    unexpected: list[str] = Field(default_factory=list)  # observed endpoints not predicted
    masquerade_differs: list[str] = Field(default_factory=list)  # endpoints whose masquerade bit differs
    node: Optional[str] = None  # the node whose conntrack table it is
    source: Optional[str] = None  # the connections' original source address


# --------------------------------------------------------------------------- report views
# What the report states beyond the per-node records above: the cluster's objects read into
# typed views (volumes, HPAs, manifests), node devices/routes/rule counts, and the cluster
# overview. Built by analysis/workloads.py and analysis/overview.py; render only lays them out.


class ShapeProblem(Record):
    """A field of a cluster object that does not have the shape Kubernetes gives it
    (``ports: 8080`` where a list of objects belongs): left out of the view, and said so."""

    subject: str  # "Pod default/web"
    field: str  # "spec.containers[0].ports"
    expected: str  # "list" / "object" / "string" / "integer"
    found: str  # "int: 8080" (shortened)


class ManifestField(Record):
    path: str  # spec.replicas
    value: str
    key: str  # explanation key (s.man.fields.<key>)


class ManifestView(Record):
    kind: str
    namespace: Optional[str] = None
    name: str
    source: str  # last-applied | cleaned | file
    manifest: Any = None  # the manifest as applied/written (shown as YAML)
    fields: list[ManifestField] = Field(default_factory=list)
    problems: list[ShapeProblem] = Field(default_factory=list)


class VolumeUse(Record):
    """One volume of a user workload and what it means for its replicas (Q12)."""

    workload: str  # "Deployment default/test-deployment"
    replicas: Optional[int] = None
    nodes: list[str] = Field(default_factory=list)  # where its pods run
    volume: str
    vtype: str  # hostPath / emptyDir / persistentVolumeClaim / …
    detail: str
    mounts: list[str] = Field(default_factory=list)
    verdict_key: str  # s.vol.verdict.<key>
    access_modes: str = ""
    path: str = ""  # hostPath path / claim name


class HpaCondition(Record):
    type: str = ""
    status: str = ""
    message: str = ""


class HpaView(Record):
    name: str
    target: str
    min_replicas: Optional[int] = None
    max_replicas: Optional[int] = None
    metrics: list[str] = Field(default_factory=list)
    scale_down: list[str] = Field(default_factory=list)
    scale_up: list[str] = Field(default_factory=list)
    stabilization_down: Optional[int] = None
    current_replicas: Optional[int] = None
    desired_replicas: Optional[int] = None
    current_metrics: list[str] = Field(default_factory=list)
    conditions: list[HpaCondition] = Field(default_factory=list)
    manifest: Any = None


class ApiNode(Record):
    """A node as the API lists it (``kubectl get nodes -o wide``)."""

    name: str
    ready: str = "?"
    roles: str = "<none>"
    version: str = ""
    runtime: str = ""
    address: str = ""
    pod_cidr: str = ""


class WorkloadViews(Record):
    """The cluster objects the report shows, read into typed views (None: no API data)."""

    manifests: list[ManifestView] = Field(default_factory=list)
    volumes: Optional[list[VolumeUse]] = None
    hpas: Optional[list[HpaView]] = None
    api_nodes: list[ApiNode] = Field(default_factory=list)
    cidrs: dict[str, str] = Field(default_factory=dict)  # pod_cidr / service_cidr / node_pod_cidr:<node>
    problems: list[ShapeProblem] = Field(default_factory=list)


class DeviceRow(Record):
    """One link of the node's own namespace with its role in the pod network (Q6)."""

    name: str  # "veth1a2b@if2"
    kind: str = ""
    role: str = ""  # loopback / uplink / overlay / bridge / veth / ipvs / ""
    master: str = ""
    addresses: list[str] = Field(default_factory=list)
    state: str = ""
    mac: str = ""
    mtu: Optional[int] = None
    peer: str = ""


class RouteRow(Record):
    dst: str
    via: str = ""
    dev: str = ""
    proto: str = ""
    scope: str = ""
    onlink: bool = False


class IpRuleRow(Record):
    """One ip rule of the node's namespace that is not one of the kernel's defaults."""

    family: str  # "IPv4" / "IPv6"
    priority: int
    selector: str  # "from 10.0.0.0/8 fwmark 0x10/0xff" as ip rule prints it
    action: str  # "lookup 100", "prohibit", "goto 900" …
    table_routes: int = 0  # routes the looked-up table holds in the snapshot (0: none collected)


class NodeSummary(Record):
    """One row of the cluster overview."""

    name: str
    control_plane: bool = False
    status: str = "ok"
    source: str = ""
    pods: int = 0
    containers: int = 0
    veths: int = 0
    services: int = 0
    cni: list[str] = Field(default_factory=list)  # flannel / weave / calico / cilium / bridge …
    proxy_mode: str = "unknown"
    failures: list[str] = Field(default_factory=list)  # collectors not run / partial, analyzers that failed


class ClusterOverview(Record):
    nodes: list[NodeSummary] = Field(default_factory=list)
    pods: int = 0
    containers: int = 0
    cni: list[str] = Field(default_factory=list)
    proxy_modes: list[str] = Field(default_factory=list)
    failed_nodes: list[str] = Field(default_factory=list)
    partial_nodes: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------- the analysis
# The two containing models come last: every model their fields name is defined by then, so
# pydantic completes their fields when it makes the classes, and the models themselves can be
# the default factories (a lambda, which deferred the name, does not pickle). A field naming a
# model defined further down stays incomplete until the rebuild, and labreport.schema_cache
# serves only complete models: these two were built again by every command.


class NodeAnalysis(Record):
    node: str
    status: str = "ok"  # copied from the snapshot: ok / partial / failed
    error: Optional[str] = None
    components: list[Component] = Field(default_factory=list)
    not_in_containers: list[str] = Field(default_factory=list)  # component names running on the host
    pods: list[Pod] = Field(default_factory=list)
    veth_pairs: list[VethPair] = Field(default_factory=list)
    bridges: dict[str, list[str]] = Field(default_factory=dict)  # bridge -> port names
    overlays: list[Overlay] = Field(default_factory=list)  # flannel.1 (vxlan), weave, tunl0, …
    uplink: Optional[Uplink] = None  # the default route's device
    proxy_mode: ProxyModeInfo = Field(default_factory=ProxyModeInfo)
    services: list[ServiceRecord] = Field(default_factory=list)
    masquerade: Optional[MasqueradeInfo] = None
    preflight: list[PreflightCheck] = Field(default_factory=list)
    not_collected: list[str] = Field(default_factory=list)  # "containers: no CRI socket at …"
    warnings: list[str] = Field(default_factory=list)
    control_plane: bool = False  # runs kube-apiserver / etcd / the scheduler (process or pod)
    devices: list["DeviceRow"] = Field(default_factory=list)
    routes: list["RouteRow"] = Field(default_factory=list)  # main table, IPv4, no local/broadcast
    ip_rules: list["IpRuleRow"] = Field(default_factory=list)  # the node's ip rules besides the kernel's defaults
    rule_counts: dict[str, int] = Field(default_factory=dict)  # nat_rules, svc_chains, nft_chains …


class Analysis(Record):
    schema_version: int = 1
    nodes: list[NodeAnalysis] = Field(default_factory=list)
    mismatches: list[Mismatch] = Field(default_factory=list)
    path: Optional[TrafficPath] = None
    traffic: list["ServiceTraffic"] = Field(default_factory=list)  # per user Service front (labreport trace)
    traffic_note: Optional[str] = None  # why some fronts were not traced
    warnings: list[str] = Field(default_factory=list)
    inconsistencies: list[Inconsistency] = Field(default_factory=list)
    unread: list[UnreadItem] = Field(default_factory=list)
    workloads: WorkloadViews = Field(default_factory=WorkloadViews)
    overview: ClusterOverview = Field(default_factory=ClusterOverview)
    # each Service front's connections in the nodes' conntrack tables beside trace's prediction
    observed: list[ObservedFront] = Field(default_factory=list)

    def node(self, name: str) -> Optional[NodeAnalysis]:
        for n in self.nodes:
            if n.node == name:
                return n
        return None


# Every analysis builds these models; built here once each, contained models first (with
# the forward references above resolved): see perf.complete_models.
complete_models(v for v in list(globals().values())
                if isinstance(v, type) and issubclass(v, Record) and v.__module__ == __name__)
