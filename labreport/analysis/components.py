"""Which Kubernetes components run on a node (Q2/Q3), from its processes and containers.

A process is a component when the *executable name* (basename of argv[0]) is one we
know — never because a flag mentions one (``etcd --kubeconfig=…`` is etcd, and the
``grep --color=auto kube`` line of ``ps aux | grep kube`` is nothing). A container
that runs a component but has no matching process (``crictl ps`` without ``ps aux``)
becomes a component too, marked as running in a container.

Pure: records in, :class:`Component` records out.
"""

from __future__ import annotations

import functools
import re
import shlex
from dataclasses import dataclass
from typing import Iterable, Optional

from labreport.analysis.model import Component
from labreport.perf import trusted_factory
from labreport.snapshot import Container, NodeSnapshot, Process


@dataclass(frozen=True)
class Kind:
    name: str
    role: str
    key_flags: tuple[str, ...] = ()
    # container names (CRI metadata.name / the <container> of k8s_<container>_…) that run it
    containers: tuple[str, ...] = ()
    host_only: bool = False  # the node's own machinery: never inside a pod


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("etcd", "the cluster's key-value store: every API object (pods, services, nodes …) is kept here",
             ("data-dir", "listen-client-urls", "advertise-client-urls", "name"), ("etcd",)),
        Kind("kube-apiserver", "the front door of the control plane: serves the Kubernetes API (REST), "
             "validates objects and stores them in etcd; every other component talks to it",
             ("advertise-address", "service-cluster-ip-range", "etcd-servers", "secure-port",
              "authorization-mode"), ("kube-apiserver",)),
        Kind("kube-controller-manager", "runs the control loops (Deployment/ReplicaSet, Node, Endpoints, "
             "ServiceAccount …) that drive the cluster's actual state towards the desired one",
             ("cluster-cidr", "service-cluster-ip-range", "allocate-node-cidrs", "node-cidr-mask-size"),
             ("kube-controller-manager",)),
        Kind("kube-scheduler", "chooses a node for every new pod (filtering by resources and constraints, "
             "then scoring) and binds the pod to it", ("config", "bind-address", "leader-elect"),
             ("kube-scheduler",)),
        Kind("kubelet", "the node agent: registers the node, asks the container runtime (over CRI) to "
             "start the pods assigned to this node and reports their status; runs on the host, not in a container",
             ("container-runtime-endpoint", "config", "kubeconfig", "pod-infra-container-image",
              "cgroup-driver", "node-ip", "network-plugin"), (), True),
        Kind("kube-proxy", "programs the node's packet rules (iptables / nftables / IPVS) so that traffic to "
             "a Service's cluster IP or NodePort is DNATed to one of its pods",
             ("config", "proxy-mode", "hostname-override", "cluster-cidr"), ("kube-proxy",)),
        Kind("flanneld", "flannel's daemon: leases this node's pod subnet and keeps the VXLAN overlay "
             "(flannel.1: routes and FDB entries towards the other nodes) up to date",
             ("iface", "ip-masq", "kube-subnet-mgr", "etcd-endpoints"), ("kube-flannel", "flannel")),
        Kind("weaver", "weave net's router: connects the nodes' weave bridges into one overlay network "
             "and allocates pod IPs", ("port", "name", "ipalloc-range", "conn-limit"), ("weave",)),
        Kind("weave-npc", "weave net's network-policy controller: turns NetworkPolicies into iptables rules",
             (), ("weave-npc",)),
        Kind("calico-node", "calico's per-node agent (runs felix, bird and confd): routes pod traffic and "
             "enforces network policy", (), ("calico-node",)),
        Kind("felix", "calico felix: programs routes, iptables rules and the cali* interfaces for the pods "
             "of this node", (), ("calico-node",)),
        Kind("bird", "BIRD, calico's BGP daemon: tells the other nodes which pod addresses this node holds",
             (), ("calico-node",)),
        Kind("confd", "calico confd: renders BIRD's configuration from the cluster's state", (), ("calico-node",)),
        Kind("cilium-agent", "cilium's per-node agent: programs eBPF for pod networking, services and policy",
             ("config-dir", "tunnel", "routing-mode"), ("cilium-agent",)),
        Kind("cilium-operator", "cilium's cluster-wide operator (IPAM, garbage collection)", (),
             ("cilium-operator",)),
        Kind("coredns", "the cluster DNS server: resolves Service names (svc.cluster.local) to cluster IPs",
             ("conf",), ("coredns",)),
        Kind("metrics-server", "collects CPU/memory usage from the kubelets for `kubectl top` and the HPA",
             ("secure-port", "kubelet-insecure-tls", "metric-resolution"), ("metrics-server",)),
        Kind("containerd", "the container runtime: pulls images and runs containers; serves the CRI API the "
             "kubelet uses", ("config", "address"), (), True),
        Kind("containerd-shim", "one per pod or container: keeps a container's process and stdio alive "
             "independently of containerd (runc starts the container under it)",
             ("namespace", "id", "address"), (), True),
        Kind("dockerd", "the Docker daemon: runs containers (through containerd) for the kubelet "
             "(dockershim / cri-dockerd)", ("host", "containerd", "exec-opt", "data-root"), (), True),
        Kind("cri-dockerd", "adapts Docker to the CRI API so the kubelet can use Docker as its runtime",
             ("container-runtime-endpoint", "network-plugin", "pod-infra-container-image"), (), True),
        Kind("crio", "CRI-O, a container runtime made for Kubernetes: serves the CRI API the kubelet uses",
             ("config", "cgroup-manager"), (), True),
        Kind("conmon", "CRI-O's per-container monitor (like containerd-shim)", (), (), True),
        Kind("pause", "the pod sandbox (pause/infra container): holds the pod's network namespace, "
             "which the pod's other containers join", (), ()),
    )
}

# executable basename -> kind name
_EXECUTABLES: dict[str, str] = {
    "etcd": "etcd",
    "kube-apiserver": "kube-apiserver",
    "kube-controller-manager": "kube-controller-manager",
    "kube-scheduler": "kube-scheduler",
    "kubelet": "kubelet",
    "kube-proxy": "kube-proxy",
    "flanneld": "flanneld",
    "weaver": "weaver",
    "weave-npc": "weave-npc",
    "calico-node": "calico-node",
    "calico-felix": "felix",
    "bird": "bird",
    "bird6": "bird",
    "confd": "confd",
    "cilium-agent": "cilium-agent",
    "cilium-operator": "cilium-operator",
    "cilium-operator-generic": "cilium-operator",
    "coredns": "coredns",
    "metrics-server": "metrics-server",
    "containerd": "containerd",
    "docker-containerd": "containerd",
    "dockerd": "dockerd",
    "cri-dockerd": "cri-dockerd",
    "crio": "crio",
    "conmon": "conmon",
    "pause": "pause",
}
_SHIM_RE = re.compile(r"^(?:docker-)?containerd-shim(?:-[\w.-]+)?$")
# `calico-node -felix` / `-bird` / `-confd` run one part of calico-node
_CALICO_PARTS = {"-felix": "felix", "-bird": "bird", "-bird6": "bird", "-confd": "confd"}
# container name -> kind name
_CONTAINER_KINDS: dict[str, str] = {}
for _k in KINDS.values():
    for _c in _k.containers:
        _CONTAINER_KINDS.setdefault(_c, _k.name)
_CONTAINER_KINDS["calico-node"] = "calico-node"
_DOCKER_K8S_RE = re.compile(r"^/?k8s_([^_]+)_([^_]+)_([^_]+)_([^_]+)_(\d+)$")
_TRUNC_TAIL = re.compile(r"(?:\.{2,}|…)$")


@functools.lru_cache(maxsize=8192)
def kind_of_container_name(name: str) -> Optional[str]:
    """The component a container runs, from its (CRI or k8s_… docker) name."""
    m = _DOCKER_K8S_RE.match(name)
    cname = m.group(1) if m else name.lstrip("/")
    if cname == "POD":
        return "pause"
    return _CONTAINER_KINDS.get(cname)


def container_short_name(name: str) -> str:
    m = _DOCKER_K8S_RE.match(name)
    return m.group(1) if m else name.lstrip("/")


def _split(command: str) -> list[str]:
    """The argv of a command line (cached: components and preflight split the same lines,
    and every node of a cluster runs the same daemons with the same command lines)."""
    return list(_split_cached(command))


@functools.lru_cache(maxsize=8192)
def _split_cached(command: str) -> tuple[str, ...]:
    return tuple(_split_uncached(command))


def _split_uncached(command: str) -> list[str]:
    if '"' not in command and "'" not in command and "\\" not in command:
        return command.split()  # the common case, ~20x faster than shlex
    try:
        return shlex.split(command)
    except ValueError:  # unbalanced quotes in a cut command line
        return command.split()


def executable_kind(argv0: str, args: Iterable[str] = (), truncated: bool = False) -> Optional[str]:
    """Kind name for an executable, or None. Handles ``/usr/bin/x``, ``x:`` and a cut
    name (``kube-controller-man...``) when it is the prefix of exactly one known name."""
    base = argv0.rsplit("/", 1)[-1].rstrip(":")
    cut = bool(_TRUNC_TAIL.search(base))
    base = _TRUNC_TAIL.sub("", base)
    if not base or base.startswith("["):  # kernel threads: [kthreadd]
        return None
    if _SHIM_RE.match(base):
        return "containerd-shim"
    kind = _EXECUTABLES.get(base)
    if kind == "calico-node":
        for a in args:
            if a in _CALICO_PARTS:
                return _CALICO_PARTS[a]
            if not a.startswith("-"):
                break
        return kind
    # a cut name: marked as cut, or the whole command line is this one word (a narrow
    # terminal cut `ps aux` there) — only a long enough prefix of exactly one known name
    alone = not any(True for _ in args)
    if kind is None and ((cut or truncated) and len(base) >= 4 or alone and len(base) >= 5):
        hits = {v for k, v in _EXECUTABLES.items() if k.startswith(base)}
        if base.startswith("containerd-sh"):
            hits = {"containerd-shim"}
        if len(hits) == 1:
            return hits.pop()
    return kind


@functools.lru_cache(maxsize=8192)
def command_kind(command: str, truncated: bool = False) -> Optional[str]:
    """:func:`executable_kind` of a whole command line (cached by the line: every node of a
    cluster runs the same daemons; components and preflight both ask)."""
    argv = _split_cached(command)
    return executable_kind(argv[0], argv[1:], truncated) if argv else None


@functools.lru_cache(maxsize=8192)
def command_flags(command: str) -> tuple[tuple[str, str], ...]:
    """:func:`parse_flags` of a command line's arguments, as (flag, value) pairs in order."""
    return tuple(parse_flags(_split_cached(command)[1:]).items())


@functools.lru_cache(maxsize=8192)
def _process_facts(command: str, truncated: bool) -> Optional[tuple[Kind, bool, tuple[tuple[str, str], ...]]]:
    """(kind, its command line is cut, its key flags) of a process's command line; None: no
    component. Pure in the line and the process's cut mark (the rest of the record is not read)."""
    kind_name = command_kind(command, truncated)
    if kind_name is None:
        return None
    kind = KINDS[kind_name]
    argv = _split_cached(command)
    cut = truncated or not _is_exact(argv[0]) or bool(_TRUNC_TAIL.search(command))
    return kind, cut, _key_flag_items(kind_name, command)


@functools.lru_cache(maxsize=8192)
def _key_flag_items(kind_name: str, command: str) -> tuple[tuple[str, str], ...]:
    return tuple(_key_flags(KINDS[kind_name], list(_split_cached(command)[1:])).items())


def _is_exact(argv0: str) -> bool:
    base = argv0.rsplit("/", 1)[-1].rstrip(":")
    return base in _EXECUTABLES or bool(_SHIM_RE.match(base))


def parse_flags(args: Iterable[str], dashes: Optional[dict[str, str]] = None) -> dict[str, str]:
    """``--a=b``, ``--a b``, ``-a b`` and bare ``--flag`` (value "true") → {a: b}.
    ``dashes`` (when given) receives each flag's prefix as written ("-" or "--")."""
    out: dict[str, str] = {}
    items = list(args)
    i = 0
    while i < len(items):
        tok = items[i]
        i += 1
        if not tok.startswith("-") or tok in ("-", "--"):
            continue
        name = tok.lstrip("-")
        if dashes is not None:
            dashes.setdefault(name.split("=", 1)[0], tok[: len(tok) - len(name)])
        if "=" in name:
            key, value = name.split("=", 1)
            out[key] = value
        elif i < len(items) and not items[i].startswith("-"):
            out[name] = items[i]
            i += 1
        else:
            out[name] = "true"
    return out


def _containers_known(node: NodeSnapshot) -> bool:
    if node.containers:
        return True
    for st in node.collectors:
        if st.ok and any(w in st.name.lower() for w in ("cri", "docker", "container", "crictl")):
            return True
    return False


def _key_flags(kind: Kind, args: list[str]) -> dict[str, str]:
    dashes: dict[str, str] = {}
    flags = parse_flags(args, dashes)
    return {f"{dashes.get(k, '--')}{k}": flags[k] for k in kind.key_flags if k in flags}


# Component(name, pid, role, command, in_container, container_id, key_flags, truncated) from
# values of the fields' types (the snapshot's validated records, our own strings): unvalidated
_component = trusted_factory(Component, ("name", "pid", "role", "command", "in_container", "container_id",
                                         "key_flags", "truncated"))


def find_components(node: NodeSnapshot) -> list[Component]:
    """The node's Kubernetes components: one per matching process, plus one per
    component container that no process accounts for."""
    containers_known = _containers_known(node)
    # running component containers, by kind; also by pid and id prefix
    by_kind: dict[str, list[Container]] = {}
    by_pid: dict[int, Container] = {}
    by_id: dict[str, Container] = {}
    for c in node.containers:
        if c.state and not _is_running(c.state):
            continue
        cont_kind_name = "pause" if c.is_sandbox else kind_of_container_name(c.name)
        if c.pid:
            by_pid[c.pid] = c
        if c.id:
            by_id[c.id[:12].lower()] = c
        if cont_kind_name:
            by_kind.setdefault(cont_kind_name, []).append(c)
    claimed: set[int] = set()  # id() of containers a process accounts for

    out: list[Component] = []
    for p in node.processes:
        facts = _process_facts(p.command, p.truncated)
        if facts is None:
            continue
        kind, cut, flags = facts
        container = _container_for(p, kind, by_pid, by_id, by_kind, claimed)
        in_container: Optional[bool] = p.in_container
        container_id = p.container_id
        if container is not None:
            claimed.add(id(container))
            container_id = container_id or container.id
            if in_container is None:
                in_container = True
        elif in_container is None and containers_known:
            # no running container runs it: it runs on the host
            in_container = False
        out.append(_component(kind.name, p.pid, kind.role, p.command, in_container, container_id, dict(flags), cut))
    # containers running a component whose process we did not see
    for kind_name, conts in by_kind.items():
        if kind_name == "pause":  # sandboxes are shown with their pods, not as components
            continue
        cont_kind = KINDS[kind_name]
        for c in conts:
            if id(c) in claimed:
                continue
            command = c.command or ""
            out.append(_component(cont_kind.name, c.pid, cont_kind.role, command, True, c.id,
                                  dict(_key_flag_items(kind_name, command)),
                                  bool(_TRUNC_TAIL.search(command.strip().strip('"')))))
    return out


def not_in_containers(components: list[Component]) -> list[str]:
    """Component names seen running on the host (in_container is False), in order."""
    seen: dict[str, None] = {}
    for c in components:
        if c.in_container is False:
            seen.setdefault(c.name, None)
    return list(seen)


def _is_running(state: str) -> bool:
    s = state.strip().lower()
    return s.startswith("up") or s in ("running", "container_running", "sandbox_ready", "ready") or s == ""


def _container_for(p: Process, kind: Kind, by_pid: dict[int, Container], by_id: dict[str, Container],
                   by_kind: dict[str, list[Container]], claimed: set[int]) -> Optional[Container]:
    if kind.host_only:
        return None
    c = by_pid.get(p.pid)
    if c is not None:
        return c
    if p.container_id:
        c = by_id.get(p.container_id[:12].lower())
        if c is not None:
            return c
    if p.in_container is False:
        return None
    for c in by_kind.get(kind.name, ()):
        if id(c) not in claimed:
            return c
    # calico parts run inside the calico-node container
    if kind.name in ("felix", "bird", "confd"):
        conts = by_kind.get("felix") or by_kind.get("calico-node") or []
        return conts[0] if conts else None
    return None
