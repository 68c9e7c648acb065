"""kubeadm-preflight-like checks (Q1) from what the snapshot observed.

A check passes only on evidence. When the fact was not collected the status is
"unknown" (with what would tell), never "pass". Every check carries a ``fix``.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any, Optional, Union

from labreport.analysis.components import _split, command_flags, command_kind
from labreport.analysis.model import PreflightCheck
from labreport.perf import trusted_factory
from labreport.snapshot import ClusterObjects, NodeSnapshot

RUNTIMES = ("containerd", "docker", "cri-o", "crio", "cri-dockerd")
_RUNTIME_PROCS = {"containerd": "containerd", "dockerd": "docker", "crio": "cri-o", "cri-dockerd": "cri-dockerd"}


# PreflightCheck(id, title, status, observed, expected, fix), unvalidated: every value is one of
# this module's strings (status one of the Literal's) or a snapshot's validated string
_new_check = trusted_factory(PreflightCheck, ("id", "title", "status", "observed", "expected", "fix"))
_STATUSES = frozenset(("pass", "fail", "warn", "unknown"))


def _check(id: str, title: str, status: str, observed: Optional[str], expected: str, fix: str) -> PreflightCheck:
    if status not in _STATUSES or not (observed is None or isinstance(observed, str)):
        return PreflightCheck(id=id, title=title, status=status, observed=observed, expected=expected, fix=fix)  # type: ignore[arg-type]
    return _new_check(id, title, status, observed, expected, fix)


def _running(node: NodeSnapshot) -> dict[str, int]:
    """Component kinds seen running (executable name), with a pid."""
    out: dict[str, int] = {}
    for p in node.processes:
        k = command_kind(p.command, p.truncated)
        if k:
            out.setdefault(k, p.pid)
    return out


def _ran(node: NodeSnapshot, collector: str) -> bool:
    """The named collector ran on the live node (so an absence is evidence); an imported
    `ps aux | grep kube` is a filtered list, which proves nothing absent. sysinfo is
    "partial" when a version command failed, which does not touch modules or sysctls."""
    return any(c.name == collector and c.ok and (not c.partial or collector == "sysinfo")
               for c in node.collectors)


def _sysctl(node: NodeSnapshot, key: str) -> Optional[str]:
    s = node.info.sysctls
    if key in s:
        return str(s[key]).strip()
    alt = key.replace(".", "/")
    if alt in s:
        return str(s[alt]).strip()
    return None


def checks(node: NodeSnapshot, cluster: Optional[ClusterObjects] = None) -> list[PreflightCheck]:
    info = node.info
    out: list[PreflightCheck] = []
    modules = set(info.modules)
    running = _running(node)

    # kernel modules
    for mod, why in (("br_netfilter", "so bridged pod traffic passes iptables (Services, NetworkPolicy)"),
                     ("overlay", "the overlayfs snapshotter of the container runtime")):
        fix = f"modprobe {mod} && echo {mod} >> /etc/modules-load.d/k8s.conf"
        if mod in modules:
            out.append(_check(f"module-{mod}", f"kernel module {mod} loaded ({why})", "pass", "loaded", "loaded", fix))
        elif mod == "br_netfilter" and _sysctl(node, "net.bridge.bridge-nf-call-iptables") is not None:
            out.append(_check(f"module-{mod}", f"kernel module {mod} loaded ({why})", "pass",
                              "net.bridge.* sysctls exist (br_netfilter is loaded or built in)", "loaded", fix))
        elif modules or _ran(node, "sysinfo"):
            # overlay may be built into the kernel (then it is not in /proc/modules)
            out.append(_check(f"module-{mod}", f"kernel module {mod} loaded ({why})",
                              "warn" if mod == "overlay" else "fail",
                              "not in the loaded modules" + (" (it may be built into the kernel)" if mod == "overlay" else ""),
                              "loaded", fix))
        else:
            out.append(_check(f"module-{mod}", f"kernel module {mod} loaded ({why})", "unknown",
                              "not collected (lsmod)", "loaded", fix))

    # sysctls
    for key, title in (("net.ipv4.ip_forward", "IPv4 forwarding on (pods' traffic is routed through the node)"),
                       ("net.bridge.bridge-nf-call-iptables", "bridged IPv4 traffic goes through iptables"),
                       ("net.bridge.bridge-nf-call-ip6tables", "bridged IPv6 traffic goes through ip6tables")):
        fix = f"sysctl -w {key}=1 && echo '{key} = 1' >> /etc/sysctl.d/k8s.conf"
        val = _sysctl(node, key)
        if val is None:
            status, observed = "unknown", "not collected"
            if key.startswith("net.bridge.") and (modules or _ran(node, "sysinfo")) and "br_netfilter" not in modules:
                status, observed = "fail", "absent: br_netfilter is not loaded"
        else:
            status, observed = ("pass" if val == "1" else "fail"), val
        out.append(_check(f"sysctl-{key}", f"{key} = 1 ({title})", status, observed, "1", fix))

    # swap
    swap = _swap(info)
    fix = "swapoff -a and remove the swap line from /etc/fstab (or configure the kubelet's failSwapOn/memorySwap)"
    if swap is None:
        out.append(_check("swap", "swap is off (the kubelet refuses to start with swap by default)", "unknown",
                          "not collected", "off", fix))
    else:
        out.append(_check("swap", "swap is off (the kubelet refuses to start with swap by default)",
                          "pass" if swap == 0 else "fail", f"{swap} kB of swap" if swap else "no swap", "off", fix))

    # container runtime
    runtime = _runtime(info.versions, running)
    if runtime is not None:
        name, version = runtime
        proc = {"containerd": "containerd", "docker": "dockerd", "cri-o": "crio", "cri-dockerd": "cri-dockerd"}.get(name)
        pid = running.get(proc) if proc else None
        observed = f"{name} {version}" if version else f"{name} (version not collected)"
        if pid is not None:
            observed += f", running (pid {pid})"
        out.append(_check("runtime", "a container runtime is installed", "pass", observed,
                          "containerd, CRI-O or Docker (+cri-dockerd)",
                          "install containerd (apt-get install containerd) and start it"))
    elif _ran(node, "processes"):
        out.append(_check("runtime", "a container runtime is installed", "fail",
                          "no containerd / dockerd / crio process", "containerd, CRI-O or Docker (+cri-dockerd)",
                          "install containerd (apt-get install containerd) and start it (systemctl enable --now containerd)"))
    else:
        out.append(_check("runtime", "a container runtime is installed", "unknown", "not collected",
                          "containerd, CRI-O or Docker (+cri-dockerd)",
                          "install containerd (apt-get install containerd) and start it"))

    # cgroup drivers
    out.append(_cgroup_check(info.cgroup_drivers, runtime[0] if runtime else None))

    # kubelet
    kver = info.versions.get("kubelet") or _api_kubelet_version(node, cluster)
    if kver:
        out.append(_check("kubelet", "the kubelet is installed", "pass", f"kubelet {kver}", "same minor as the control plane",
                          "apt-get install kubelet kubeadm kubectl (same version as the cluster)"))
    elif "kubelet" in running:
        out.append(_check("kubelet", "the kubelet is installed", "pass", f"running (pid {running['kubelet']}), version not collected",
                          "same minor as the control plane", "apt-get install kubelet kubeadm kubectl"))
    elif _ran(node, "processes"):
        out.append(_check("kubelet", "the kubelet is installed", "fail", "no kubelet process", "running",
                          "apt-get install kubelet && systemctl enable --now kubelet"))
    else:
        out.append(_check("kubelet", "the kubelet is installed", "unknown", "not collected", "running",
                          "apt-get install kubelet && systemctl enable --now kubelet"))

    # CNI configuration
    cni = info.cni_config
    if cni:
        first = cni.strip().splitlines()[0] if cni.strip() else cni
        out.append(_check("cni-config", "a CNI network configuration is installed (/etc/cni/net.d)", "pass",
                          first[:120], "a .conflist in /etc/cni/net.d",
                          "install a network add-on (flannel, calico, weave): kubectl apply -f <its manifest>"))
    elif _ran(node, "sysinfo"):
        out.append(_check("cni-config", "a CNI network configuration is installed (/etc/cni/net.d)", "fail",
                          "no .conflist/.conf/.json in /etc/cni/net.d", "a .conflist in /etc/cni/net.d",
                          "install a network add-on (flannel, calico, weave): kubectl apply -f <its manifest> "
                          "(or check the runtime's CNI conf_dir if it is not /etc/cni/net.d)"))
    else:
        out.append(_check("cni-config", "a CNI network configuration is installed (/etc/cni/net.d)", "unknown",
                          "not collected", "a .conflist in /etc/cni/net.d",
                          "install a network add-on (flannel, calico, weave): kubectl apply -f <its manifest>"))

    # the node's pod subnet lies in the cluster's pod network
    out.append(_pod_cidr_check(node, cluster))

    # node Ready
    out.append(_ready_check(node, cluster))
    return out


def _configmap(cluster: Optional[ClusterObjects], name: str) -> dict[str, Any]:
    if cluster is None:
        return {}
    for cm in cluster.configmaps:
        meta = cm.get("metadata") or {}
        if meta.get("name") == name and meta.get("namespace", "kube-system") == "kube-system":
            return cm.get("data") or {}
    return {}


def _yaml_get(text: Any, *keys: str) -> Optional[str]:
    if not isinstance(text, str):
        return None
    try:
        import yaml

        doc = yaml.safe_load(text)
    except Exception:  # a damaged ConfigMap is just not evidence
        return None
    for k in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(k)
    return str(doc) if doc not in (None, "") else None


def _cluster_cidr(node: NodeSnapshot, cluster: Optional[ClusterObjects]) -> Optional[tuple[str, str]]:
    """(CIDR, where it was read) of the cluster's pod network."""
    for p in node.processes:
        if command_kind(p.command, p.truncated) in ("kube-controller-manager", "kube-proxy"):
            val = dict(command_flags(p.command)).get("cluster-cidr")
            if val:
                return val, f"{_split(p.command)[0].rsplit('/', 1)[-1]} --cluster-cidr"
    val = _yaml_get(_configmap(cluster, "kubeadm-config").get("ClusterConfiguration"), "networking", "podSubnet")
    if val:
        return val, "kubeadm-config networking.podSubnet"
    val = _yaml_get(_configmap(cluster, "kube-proxy").get("config.conf"), "clusterCIDR")
    if val:
        return val, "kube-proxy ConfigMap clusterCIDR"
    return None


def _node_subnet(node: NodeSnapshot, cluster: Optional[ClusterObjects]) -> Optional[tuple[str, str]]:
    """(this node's pod subnet, where it was read)."""
    obj = _api_node(node, cluster)
    if obj is not None:
        cidr = (obj.get("spec") or {}).get("podCIDR")
        if cidr:
            return cidr, "the API's node.spec.podCIDR"
    ns = node.node_netns()
    if ns is None:
        return None
    for bridge in ("cni0", "cbr0", "weave", "docker0"):
        for link in ns.links:
            if link.name == bridge:
                for a in link.addresses:
                    if a.family == "inet" and a.prefixlen < 32:
                        return _network_of(f"{a.local}/{a.prefixlen}"), f"{bridge}'s address {a.local}/{a.prefixlen}"
    return None


@functools.lru_cache(maxsize=4096)
def _network_of(text: str) -> str:
    """The network of an address/prefix ("10.244.1.1/24" → "10.244.1.0/24"); cached: every
    node of a cluster has its bridge address, and often the same."""
    return str(ipaddress.ip_network(text, strict=False))


@functools.lru_cache(maxsize=4096)
def _subnet_of(sub: str, cidr: str) -> Union[str, tuple[str, str, bool]]:
    """(inner, outer, whether inner lies inside outer) of two CIDRs as written, or why one is
    unreadable (cached by the two texts)."""
    try:
        outer = ipaddress.ip_network(cidr, strict=False)
        inner = ipaddress.ip_network(sub, strict=False)
    except ValueError as exc:
        return str(exc)
    inside = inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]
    return str(inner), str(outer), inside


def _pod_cidr_check(node: NodeSnapshot, cluster: Optional[ClusterObjects]) -> PreflightCheck:
    title = "the node's pod subnet lies inside the cluster's pod network (--pod-network-cidr)"
    fix = ("give kubeadm init the CNI's network: --pod-network-cidr=10.244.0.0/16 for flannel's default "
           "net-conf.json (or change the CNI's network to the cluster's), then recreate the pods")
    cidr = _cluster_cidr(node, cluster)
    sub = _node_subnet(node, cluster)
    if cidr is None or sub is None:
        parts = []
        if cidr:
            parts.append(f"cluster {cidr[0]} ({cidr[1]})")
        if sub:
            parts.append(f"node {sub[0]} ({sub[1]})")
        seen = "; ".join(parts) + ("; the other side not collected" if parts else "not collected")
        return _check("pod-cidr", title, "unknown", seen, "node subnet ⊂ cluster pod CIDR", fix)
    got = _subnet_of(sub[0], cidr[0])
    if isinstance(got, str):
        return _check("pod-cidr", title, "unknown", f"unreadable: {got}", "node subnet ⊂ cluster pod CIDR", fix)
    inner, outer, inside = got
    observed = f"node {inner} ({sub[1]}) in cluster {outer} ({cidr[1]})" if inside else \
        f"node {inner} ({sub[1]}) is outside cluster {outer} ({cidr[1]})"
    return _check("pod-cidr", title, "pass" if inside else "fail", observed, "node subnet ⊂ cluster pod CIDR", fix)


def _swap(info: Any) -> Optional[int]:
    extra = getattr(info, "model_extra", None) or {}
    for key in ("swap_total_kb", "swap_kb", "swap_total", "swap"):
        v = extra.get(key)
        if v is None:
            continue
        if isinstance(v, bool):
            return 1 if v else 0
        try:
            return int(v)
        except (TypeError, ValueError):
            continue
    return None


def _runtime(versions: dict[str, str], running: dict[str, int]) -> Optional[tuple[str, Optional[str]]]:
    for name in RUNTIMES:
        if versions.get(name):
            return ("cri-o" if name == "crio" else name), versions[name]
    for proc, name in _RUNTIME_PROCS.items():
        if proc in running:
            return name, versions.get(name)
    return None


def _cgroup_check(drivers: dict[str, str], runtime: Optional[str]) -> PreflightCheck:
    title = "the kubelet's cgroup driver matches the container runtime's"
    fix = ("use the same driver on both: kubelet cgroupDriver: systemd (/var/lib/kubelet/config.yaml) and "
           "containerd SystemdCgroup = true (or Docker exec-opts native.cgroupdriver=systemd)")
    kubelet = drivers.get("kubelet")
    rt_key = runtime if runtime in drivers else next((k for k in drivers if k != "kubelet"), None)
    rt = drivers.get(rt_key) if rt_key else None
    if kubelet is None or rt is None:
        seen = ", ".join(f"{k}={v}" for k, v in drivers.items()) or "not collected"
        return _check("cgroup-driver", title, "unknown", seen, "equal (systemd recommended)", fix)
    status = "pass" if kubelet.lower() == rt.lower() else "fail"
    return _check("cgroup-driver", title, status, f"kubelet={kubelet}, {rt_key}={rt}", "equal (systemd recommended)", fix)


def _api_node(node: NodeSnapshot, cluster: Optional[ClusterObjects]) -> Optional[dict[str, Any]]:
    if cluster is None:
        return None
    names = {node.name}
    if node.info.hostname:
        names.add(node.info.hostname)
    for obj in cluster.nodes:
        meta = obj.get("metadata") or {}
        if meta.get("name") in names:
            return obj
    return None


def _api_kubelet_version(node: NodeSnapshot, cluster: Optional[ClusterObjects]) -> Optional[str]:
    obj = _api_node(node, cluster)
    if obj is None:
        return None
    return ((obj.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion")


def _ready_check(node: NodeSnapshot, cluster: Optional[ClusterObjects]) -> PreflightCheck:
    title = "the node is Ready (kubectl get nodes)"
    fix = "check `journalctl -u kubelet` and that the CNI add-on's pods run on this node"
    obj = _api_node(node, cluster)
    if obj is None:
        why = "no cluster objects in the snapshot" if cluster is None or not cluster.nodes else \
            f"node {node.name} not in the API's node list"
        return _check("node-ready", title, "unknown", why, "Ready=True", fix)
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            st = str(cond.get("status"))
            observed = f"Ready={st}" + (f" ({cond.get('reason')})" if cond.get("reason") else "")
            return _check("node-ready", title, "pass" if st == "True" else "fail", observed, "Ready=True", fix)
    return _check("node-ready", title, "unknown", "no Ready condition in the node's status", "Ready=True", fix)
