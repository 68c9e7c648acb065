"""The snapshot: the versioned contract between collection/import and analysis/rendering.

A snapshot is a directory holding ``snapshot.json`` (see :func:`save` / :func:`load`).
It describes one or more nodes (processes, containers, network namespaces with their
links/addresses/routes, netfilter rules) plus, optionally, the cluster's objects as the
Kubernetes API returned them. Every record may point at the raw command output it came
from (``Evidence``), which the report shows.

Forward compatibility: every model accepts and keeps unknown fields (``extra="allow"``),
so a snapshot written by a newer labreport survives a load/save round trip here.
Bump ``SCHEMA_VERSION`` only for incompatible changes; adding optional fields is not one.
"""

from __future__ import annotations

import gc
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from labreport.errors import SnapshotError

SCHEMA_VERSION = 1
SNAPSHOT_FILE = "snapshot.json"


class Record(BaseModel):
    """Base of every snapshot model: unknown fields are kept, not dropped."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --------------------------------------------------------------------------- evidence


class Evidence(Record):
    """The raw output of one command (or file read), exactly as it was printed.

    ``id`` is unique within a node, e.g. ``ps``, ``crictl-ps``, ``ip-addr``,
    ``ip-addr:cni-1234``, ``iptables-save``, ``nft-list-ruleset``.
    """

    id: str
    command: str  # what a person would type: "ps aux", "ip netns exec cni-x ip addr"
    stdout: str = ""
    stderr: str = ""
    exit_code: Optional[int] = None
    duration_s: Optional[float] = None
    timed_out: bool = False
    origin: Literal["live", "import", "synthesized"] = "live"
    # live: the command ran; import: pasted by a user; synthesized: the text was rendered
    # by labreport from native API data (CRI, netlink) in the command's format.
    path: Optional[str] = None  # for import: the file it came from


class ParseWarning(Record):
    """A line a parser could not read: kept with its number, never dropped silently."""

    source: str  # evidence id or file name
    parser: str
    line_no: int  # 1-based
    line: str
    message: str


class CollectorStatus(Record):
    """Whether one collector ran; ``reason`` says why not ("not collected: <reason>")."""

    name: str
    ok: bool
    reason: Optional[str] = None
    fix: Optional[str] = None  # the command that would fix it, when known
    duration_s: Optional[float] = None
    partial: bool = False  # ran, but some of its work failed (see reason)


# --------------------------------------------------------------------------- processes


class Process(Record):
    pid: int
    user: Optional[str] = None
    cpu: Optional[float] = None  # %CPU
    mem: Optional[float] = None  # %MEM
    vsz: Optional[int] = None
    rss: Optional[int] = None
    tty: Optional[str] = None
    stat: Optional[str] = None
    start: Optional[str] = None
    time: Optional[str] = None
    command: str
    truncated: bool = False  # the command line was cut (ps width, "....." in pastes)
    in_container: Optional[bool] = None
    container_id: Optional[str] = None  # from the cgroup, when known
    ppid: Optional[int] = None


# --------------------------------------------------------------------------- containers


class Container(Record):
    """A container or a pod sandbox, from CRI (containerd, CRI-O) or Docker."""

    runtime: str = "unknown"  # containerd | cri-o | docker | cri-dockerd | unknown
    id: str
    name: str  # container name (CRI metadata.name, or docker's full name)
    image: Optional[str] = None
    image_id: Optional[str] = None
    state: Optional[str] = None  # Running / Exited / SANDBOX_READY / "Up 45 minutes" ...
    created: Optional[str] = None
    command: Optional[str] = None
    attempt: Optional[int] = None
    pod_name: Optional[str] = None
    pod_namespace: Optional[str] = None
    pod_uid: Optional[str] = None
    sandbox_id: Optional[str] = None  # the pod sandbox this container belongs to
    is_sandbox: bool = False  # the pause/infra container (or the CRI sandbox itself)
    pid: Optional[int] = None
    netns_path: Optional[str] = None  # /var/run/netns/cni-… or /proc/<pid>/ns/net
    network_mode: Optional[str] = None  # docker: "none", "container:<id>", "host", …
    pod_ip: Optional[str] = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


# --------------------------------------------------------------------------- network


class Address(Record):
    family: Literal["inet", "inet6"]
    local: str  # the address without prefix
    prefixlen: int
    scope: Optional[str] = None
    broadcast: Optional[str] = None
    label: Optional[str] = None


class FdbEntry(Record):
    mac: str
    dst: Optional[str] = None
    dev: Optional[str] = None
    vlan: Optional[int] = None
    flags: list[str] = Field(default_factory=list)


class VxlanInfo(Record):
    vni: Optional[int] = None
    local: Optional[str] = None
    remote: Optional[str] = None
    group: Optional[str] = None
    port: Optional[int] = None
    dev: Optional[str] = None  # underlay device
    fdb: list[FdbEntry] = Field(default_factory=list)


class Link(Record):
    ifindex: int
    name: str
    kind: Optional[str] = None  # veth, bridge, vxlan, ipip, tun, dummy, … (None = physical/unknown)
    peer_ifindex: Optional[int] = None  # IFLA_LINK, the N of "name@ifN"
    link_netnsid: Optional[int] = None  # IFLA_LINK_NETNSID: the peer lives in that nsid
    link_netns: Optional[str] = None  # `ip` prints "link-netns NAME" when it can name it
    master: Optional[str] = None  # bridge (or bond/vrf) this link is enslaved to
    mac: Optional[str] = None
    mtu: Optional[int] = None
    state: Optional[str] = None  # UP, DOWN, UNKNOWN, LOWERLAYERDOWN
    flags: list[str] = Field(default_factory=list)
    addresses: list[Address] = Field(default_factory=list)
    vxlan: Optional[VxlanInfo] = None


class Route(Record):
    dst: str  # "default" or CIDR
    gateway: Optional[str] = None
    dev: Optional[str] = None
    protocol: Optional[str] = None
    scope: Optional[str] = None
    src: Optional[str] = None
    table: Optional[str] = None
    type: Optional[str] = None  # unicast, local, broadcast, blackhole …
    metric: Optional[int] = None
    onlink: bool = False
    family: Literal["inet", "inet6"] = "inet"


class Neighbour(Record):
    dst: str
    dev: Optional[str] = None
    lladdr: Optional[str] = None
    state: Optional[str] = None


class NetNamespace(Record):
    """One network namespace as seen by the collector.

    ``kind``: "node" is the node's own namespace (the host, or the namespace labreport ran
    in); "named" is one under /var/run/netns; "pid" is reached through /proc/<pid>/ns/net
    (Docker pods have no name). ``nsids`` maps the link-netnsid numbers used *inside this
    namespace* to the name of the namespace they refer to (as in ``NetNamespace.name``).
    """

    name: str
    kind: Literal["node", "named", "pid"] = "named"
    path: Optional[str] = None
    inode: Optional[int] = None  # st_ino of the nsfs file: identifies the namespace
    pid: Optional[int] = None
    links: list[Link] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    neighbours: list[Neighbour] = Field(default_factory=list)
    nsids: dict[int, str] = Field(default_factory=dict)
    error: Optional[str] = None  # e.g. the namespace vanished mid-collection


# --------------------------------------------------------------------------- netfilter


class IptRule(Record):
    """One ``-A CHAIN …`` line. ``spec`` is everything after the chain name, verbatim
    (normalized whitespace); decoders tokenize it (shlex rules: quoted comments)."""

    spec: str
    line_no: Optional[int] = None
    counters: Optional[tuple[int, int]] = None  # [packets:bytes] when iptables-save -c


class IptChain(Record):
    name: str
    policy: Optional[str] = None  # ACCEPT/DROP for built-in chains, None ("-") for user chains
    rules: list[IptRule] = Field(default_factory=list)


class IptTable(Record):
    name: str  # nat, filter, mangle, raw, security
    chains: dict[str, IptChain] = Field(default_factory=dict)


class Iptables(Record):
    family: Literal["ipv4", "ipv6"] = "ipv4"
    backend: Optional[str] = None  # "nf_tables" | "legacy" | None (unknown)
    tables: dict[str, IptTable] = Field(default_factory=dict)
    evidence_id: Optional[str] = None


class NftRuleset(Record):
    """``nft list ruleset``, structured. Filled by parsers/nft.py; see that module for the
    exact shape of tables/chains/rules/sets/maps (kept as typed records there)."""

    tables: list[dict[str, Any]] = Field(default_factory=list)
    evidence_id: Optional[str] = None


class Ipvs(Record):
    """``ipvsadm -Ln``, structured. Filled by parsers/ipvsadm.py."""

    virtual_servers: list[dict[str, Any]] = Field(default_factory=list)
    evidence_id: Optional[str] = None


# --------------------------------------------------------------------------- node


class NodeInfo(Record):
    hostname: Optional[str] = None
    kernel: Optional[str] = None
    os: Optional[str] = None
    arch: Optional[str] = None
    versions: dict[str, str] = Field(default_factory=dict)  # kubelet, containerd, docker, runc …
    sysctls: dict[str, str] = Field(default_factory=dict)
    modules: list[str] = Field(default_factory=list)  # loaded kernel modules of interest
    cgroup_version: Optional[int] = None
    cgroup_drivers: dict[str, str] = Field(default_factory=dict)  # {"kubelet": "systemd", "containerd": "systemd"}
    kube_proxy_mode: Optional[str] = None  # from kube-proxy's config, when known
    cri_socket: Optional[str] = None
    cni_config: Optional[str] = None


class NodeSnapshot(Record):
    name: str
    # how the node was reached: this host, an import, SSH, a collector pod through the API
    source: Literal["live", "import", "ssh", "api", "pod"] = "live"
    collected_at: Optional[str] = None  # ISO 8601 UTC
    status: Literal["ok", "partial", "failed"] = "ok"
    error: Optional[str] = None  # why the node is missing/partial (e.g. ssh failed)
    info: NodeInfo = Field(default_factory=NodeInfo)
    processes: list[Process] = Field(default_factory=list)
    containers: list[Container] = Field(default_factory=list)
    netns: list[NetNamespace] = Field(default_factory=list)  # kind="node" first
    iptables: Optional[Iptables] = None
    ip6tables: Optional[Iptables] = None
    nftables: Optional[NftRuleset] = None
    ipvs: Optional[Ipvs] = None
    collectors: list[CollectorStatus] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    warnings: list[ParseWarning] = Field(default_factory=list)

    def node_netns(self) -> Optional[NetNamespace]:
        for ns in self.netns:
            if ns.kind == "node":
                return ns
        return None

    def evidence_by_id(self, evidence_id: str) -> Optional[Evidence]:
        for ev in self.evidence:
            if ev.id == evidence_id:
                return ev
        return None


# --------------------------------------------------------------------------- cluster


class ClusterObjects(Record):
    """The cluster's objects exactly as the Kubernetes API returned them (JSON dicts, as in
    ``kubectl get … -o json`` items), so nothing is lost and new fields need no code."""

    source: Literal["api", "import"] = "api"
    server: Optional[str] = None
    error: Optional[str] = None  # "no cluster reachable: …"
    version: Optional[dict[str, Any]] = None
    nodes: list[dict[str, Any]] = Field(default_factory=list)
    pods: list[dict[str, Any]] = Field(default_factory=list)
    services: list[dict[str, Any]] = Field(default_factory=list)
    endpointslices: list[dict[str, Any]] = Field(default_factory=list)
    endpoints: list[dict[str, Any]] = Field(default_factory=list)
    deployments: list[dict[str, Any]] = Field(default_factory=list)
    replicasets: list[dict[str, Any]] = Field(default_factory=list)
    hpas: list[dict[str, Any]] = Field(default_factory=list)
    configmaps: list[dict[str, Any]] = Field(default_factory=list)  # kube-proxy's, kubeadm-config
    other: list[dict[str, Any]] = Field(default_factory=list)
    # each object's manifest as applied: {"kind", "namespace", "name", "source":
    # "last-applied" | "cleaned", "manifest": {...}} (labreport.cluster.manifests)
    manifests: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)  # a resource that could not be listed (403/404), redactions


class Snapshot(Record):
    schema_version: int = SCHEMA_VERSION
    tool: str = "labreport"
    tool_version: Optional[str] = None
    created_at: Optional[str] = None
    title: Optional[str] = None
    origin_note: Optional[str] = None  # where this snapshot came from (samples must say)
    nodes: list[NodeSnapshot] = Field(default_factory=list)
    cluster: Optional[ClusterObjects] = None

    def node(self, name: str) -> Optional[NodeSnapshot]:
        for n in self.nodes:
            if n.name == name:
                return n
        return None


# --------------------------------------------------------------------------- I/O


def snapshot_path(path: str | os.PathLike[str]) -> Path:
    """Accept the snapshot directory or its snapshot.json."""
    p = Path(path)
    if p.is_dir():
        return p / SNAPSHOT_FILE
    return p


def load(path: str | os.PathLike[str]) -> Snapshot:
    """Load a snapshot from a directory (or its snapshot.json). Raises SnapshotError.

    A directory holding a collect run that was killed before it finished (``run.json``
    and its per-node parts, labreport.transport.parts) loads as that partial snapshot."""
    if Path(path).is_dir() and (Path(path) / "run.json").is_file():
        from labreport.transport.parts import load_partial

        return load_partial(Path(path))
    p = snapshot_path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise SnapshotError(f"no snapshot at {path}: {p} does not exist") from None
    except OSError as exc:
        raise SnapshotError(f"cannot read {p}: {exc.strerror or exc}") from None
    if not raw.strip():
        raise SnapshotError(f"{p} is empty")
    from labreport.perf import gc_paused

    with gc_paused():  # a large snapshot is ~10^5 small acyclic objects; see labreport.perf
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SnapshotError(f"{p} is not valid JSON: {exc}") from None
        snap = from_dict(data, where=str(p))
    # The loaded snapshot lives as long as the command: move it out of the collector's
    # generations so later collections do not re-scan ~10^6 objects (gc.freeze, 3.7+).
    gc.freeze()
    return snap


def from_dict(data: Any, where: str = "snapshot") -> Snapshot:
    if not isinstance(data, dict):
        raise SnapshotError(f"{where}: expected a JSON object at the top level")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SnapshotError(f"{where}: no integer schema_version; is this a labreport snapshot?")
    if version < 1:
        raise SnapshotError(f"{where}: schema_version {version} is not a valid version (versions start at 1)")
    if version > SCHEMA_VERSION:
        # An incompatible format from a newer labreport: guessing at it would misreport.
        raise SnapshotError(f"{where}: schema_version {version} is newer than this labreport reads "
                            f"(schema_version {SCHEMA_VERSION}); upgrade labreport to read it")
    try:
        snap = Snapshot.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError, with its full path list
        raise SnapshotError(f"{where}: not a valid snapshot: {_short_error(exc)}") from None
    seen: set[str] = set()
    for n in snap.nodes:
        if n.name in seen:
            raise SnapshotError(f"{where}: node {n.name!r} appears more than once; a snapshot holds each node once")
        seen.add(n.name)
    return snap


def _short_error(exc: Exception, limit: int = 2000) -> str:
    """A validation error, bounded: a hostile snapshot can make pydantic list thousands
    of errors (and quote the input in each)."""
    text = str(exc)
    if len(text) > limit:
        text = text[:limit] + f" … ({len(text) - limit} more characters)"
    return text


def dumps(snap: Snapshot) -> str:
    return snap.model_dump_json(indent=1, exclude_none=False)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _give_to_sudo_user(fd: int) -> None:
    """Under ``sudo labreport collect``, the files belong to the user who ran sudo, so
    ``labreport render`` works afterwards without sudo."""
    if os.geteuid() != 0:
        return
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if uid and uid.isdigit() and gid and gid.isdigit():
        try:
            os.fchown(fd, int(uid), int(gid))
        except OSError:
            pass


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write a file atomically: a temporary file in the same directory, fsync, rename."""
    p = Path(path)
    if not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            dfd = os.open(p.parent, os.O_RDONLY)
            try:
                _give_to_sudo_user(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as fh:
            fh.write(data)
            fh.flush()
            # mkstemp creates 0600; give the file the mode a plain open() would have.
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            _give_to_sudo_user(fh.fileno())
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save(snap: Snapshot, directory: str | os.PathLike[str]) -> Path:
    """Save as DIR/snapshot.json (atomically). Returns the file's path."""
    d = Path(directory)
    if d.suffix == ".json":
        target = d
    else:
        target = d / SNAPSHOT_FILE
    atomic_write(target, dumps(snap))
    return target


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the snapshot, generated from the model."""
    schema = Snapshot.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"labreport snapshot (schema_version {SCHEMA_VERSION})"
    return schema
