"""Containers grouped into pods, with the sandbox (pause) container first (Q3/Q5).

Sources, all through ``NodeSnapshot.containers``:
- CRI (containerd, CRI-O): sandboxes are records with ``is_sandbox`` (``crictl pods`` or
  ListPodSandbox); containers point at theirs with ``sandbox_id`` (``crictl ps``'s POD ID,
  possibly cut to 13 characters). ``crictl ps`` alone lists no sandboxes: the pod then
  has its ``sandbox_id`` but no sandbox container, and a note says so.
- Docker (dockershim): names ``k8s_POD_<pod>_<ns>_<uid>_<n>`` (sandbox) and
  ``k8s_<container>_<pod>_<ns>_<uid>_<n>``; ``NetworkMode: container:<id>`` of an app
  container proves it shares the sandbox's network namespace.

Pure and linear: every lookup is a dict.
"""

from __future__ import annotations

import functools
import re
from typing import Optional

from labreport.analysis.components import kind_of_container_name
from labreport.analysis.model import Pod, PodContainer, VethPair
from labreport.perf import trusted_factory
from labreport.snapshot import Container, NetNamespace, NodeSnapshot

_DOCKER_K8S_RE = re.compile(r"^/?k8s_([^_]+)_([^_]+)_([^_]+)_([^_]+)_(\d+)$")
_ID_KEY = 12  # docker prints 12 characters of an id, crictl 13


def _idkey(cid: str) -> str:
    return cid.strip().lower()[:_ID_KEY]


class _Draft:
    """A pod being assembled: its identity (the Pod record's first fields) and containers."""

    __slots__ = ("name", "namespace", "uid", "sandbox_id", "note", "sandboxes", "apps", "netmodes")

    def __init__(self, name: str, namespace: Optional[str], uid: Optional[str], sandbox_id: Optional[str]) -> None:
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.sandbox_id = sandbox_id
        self.note: Optional[str] = None
        self.sandboxes: list[Container] = []
        self.apps: list[Container] = []
        self.netmodes: list[Optional[str]] = []


# Pod(namespace, name, uid, sandbox_id, containers, ip, netns, shares_netns_with_sandbox, note),
# unvalidated: the container records' validated strings, this module's lists and notes
_new_pod = trusted_factory(Pod, ("namespace", "name", "uid", "sandbox_id", "containers", "ip", "netns",
                                 "shares_netns_with_sandbox", "note"))


@functools.lru_cache(maxsize=8192)
def _docker_parts(name: str) -> Optional[tuple[str, str, str, str, int]]:
    """The parts of a ``k8s_…`` docker name (cached: each container's name is read three
    times, and a cluster's nodes run the same pods' containers)."""
    m = _DOCKER_K8S_RE.match(name)
    if not m:
        return None
    return m.group(1), m.group(2), m.group(3), m.group(4), int(m.group(5))


def group_pods(node: NodeSnapshot, *, veths: Optional[list[VethPair]] = None) -> list[Pod]:
    """Pods on this node. ``veths`` (from :func:`labreport.analysis.veth.match_veths`)
    fill in the pod IP when the sandbox record does not carry it."""
    drafts: list[_Draft] = []
    by_sandbox: dict[str, _Draft] = {}
    by_uid: dict[str, _Draft] = {}

    def new(name: str, namespace: Optional[str], uid: Optional[str], sandbox_id: Optional[str]) -> _Draft:
        d = _Draft(name, namespace, uid, sandbox_id)
        drafts.append(d)
        if sandbox_id:
            by_sandbox.setdefault(_idkey(sandbox_id), d)
        if uid:
            by_uid.setdefault(uid, d)
        return d

    sandboxes: list[Container] = []
    apps: list[Container] = []
    for c in node.containers:
        parts = _docker_parts(c.name)
        if c.is_sandbox or (parts is not None and parts[0] == "POD"):
            sandboxes.append(c)
        else:
            apps.append(c)

    # 1. every sandbox is a pod
    for s in sandboxes:
        parts = _docker_parts(s.name)
        name = s.pod_name or (parts[1] if parts else s.name)
        ns = s.pod_namespace or (parts[2] if parts else None)
        uid = s.pod_uid or (parts[3] if parts else None)
        d: Optional[_Draft] = by_uid.get(uid) if (uid and parts) else None  # docker: a restarted sandbox, same uid
        if d is None:
            d = new(name, ns, uid, s.id)
        else:
            by_sandbox.setdefault(_idkey(s.id), d)
        d.sandboxes.append(s)

    # 2. containers join their sandbox's pod (by sandbox id, then uid, then NetworkMode)
    for c in apps:
        parts = _docker_parts(c.name)
        uid = c.pod_uid or (parts[3] if parts else None)
        ns = c.pod_namespace or (parts[2] if parts else None)
        pod_name = c.pod_name or (parts[1] if parts else None)
        target = _netmode_target(c.network_mode)
        d = None
        if c.sandbox_id:
            d = _lookup_sandbox(by_sandbox, c.sandbox_id)
        if d is None and uid:
            d = by_uid.get(uid)
        if d is None and target:
            d = _lookup_sandbox(by_sandbox, target)
        if d is None and c.sandbox_id:
            # crictl ps: the sandbox is named (POD ID) but not listed
            d = new(pod_name or c.sandbox_id, ns, uid, c.sandbox_id)
            d.note = ("sandbox " + c.sandbox_id + " is not in the input (crictl ps lists no sandboxes; "
                          "`crictl pods` or `ctr -n k8s.io c ls` shows it)")
        if d is None and pod_name and uid:
            d = new(pod_name, ns, uid, None)
            d.note = "no sandbox (k8s_POD_…) container in the input"
        if d is None:
            continue  # not a Kubernetes container (e.g. a plain `docker run`)
        if d.namespace is None and ns:
            d.namespace = ns
        if d.uid is None and uid:
            d.uid = uid
        d.apps.append(c)
        d.netmodes.append(c.network_mode)

    netns_by_name: dict[str, NetNamespace] = {}
    netns_by_path: dict[str, NetNamespace] = {}
    netns_by_pid: dict[int, NetNamespace] = {}
    for ns_ in node.netns:
        netns_by_name.setdefault(ns_.name, ns_)
        if ns_.path:
            netns_by_path.setdefault(ns_.path, ns_)
        if ns_.pid:
            netns_by_pid.setdefault(ns_.pid, ns_)
    veth_by_netns: dict[str, VethPair] = {}
    for v in veths or ():
        veth_by_netns.setdefault(v.netns, v)

    out: list[Pod] = []
    for d in drafts:
        containers = [_pod_container(s, True) for s in d.sandboxes]
        containers += [_pod_container(c, False) for c in d.apps]
        ip: Optional[str] = None
        netns: Optional[str] = None
        sb = d.sandboxes[0] if d.sandboxes else None
        if sb is not None:
            ip = sb.pod_ip
            ns_rec = _netns_of(sb, netns_by_name, netns_by_path, netns_by_pid)
            if ns_rec is not None:
                netns = ns_rec.name
            elif sb.netns_path:
                netns = sb.netns_path.rsplit("/", 1)[-1] if sb.netns_path.startswith(("/var/run/netns/", "/run/netns/")) else sb.netns_path
        if ip is None:
            ip = next((c.pod_ip for c in d.apps if c.pod_ip), None)
        if netns and ip is None:
            pair = veth_by_netns.get(netns)
            if pair is not None and pair.pod_ips:
                ip = pair.pod_ips[0].split("/", 1)[0]
        out.append(_new_pod(d.namespace, d.name, d.uid, d.sandbox_id, containers, ip, netns, _shares_netns(d), d.note))
    return out


def _lookup_sandbox(by_sandbox: dict[str, _Draft], sid: str) -> Optional[_Draft]:
    key = _idkey(sid)
    d = by_sandbox.get(key)
    if d is None and len(key) < _ID_KEY:  # a cut id shorter than the index key
        hits = [v for k, v in by_sandbox.items() if k.startswith(key)]
        if len(hits) == 1:
            d = hits[0]
    return d


def _netmode_target(mode: Optional[str]) -> Optional[str]:
    if mode and mode.startswith("container:"):
        return mode.split(":", 1)[1].strip() or None
    return None


def _shares_netns(d: _Draft) -> Optional[bool]:
    """True when the app containers whose network namespace is known all use a sandbox's:
    Docker's NetworkMode container:<sandbox id or name>, or (CRI) a network namespace path
    equal to the sandbox's (its netns file or /proc/<sandbox pid>/ns/net). False when a
    NetworkMode names something else; None when nothing tells."""
    if not d.sandboxes or not d.apps:
        return None
    sandbox_ids = [s.id.lower() for s in d.sandboxes if s.id]
    sandbox_names = {s.name.lstrip("/") for s in d.sandboxes}
    sandbox_paths = {s.netns_path for s in d.sandboxes if s.netns_path}
    sandbox_paths |= {f"/proc/{s.pid}/ns/net" for s in d.sandboxes if s.pid}
    verdicts: list[bool] = []
    for c in d.apps:
        mode = c.network_mode
        if mode:
            target = _netmode_target(mode)
            if target is None:
                verdicts.append(False)  # host / none / bridge: not the sandbox's
                continue
            t = target.lower().lstrip("/")
            verdicts.append(t in sandbox_names or any(sid.startswith(t) or t.startswith(sid) for sid in sandbox_ids))
        elif c.netns_path and c.netns_path in sandbox_paths:
            verdicts.append(True)
        # a container nothing was recorded about neither proves nor disproves it
    if not verdicts:
        return None
    return all(verdicts)


def _netns_of(sb: Container, by_name: dict[str, NetNamespace], by_path: dict[str, NetNamespace],
              by_pid: dict[int, NetNamespace]) -> Optional[NetNamespace]:
    if sb.netns_path:
        ns_ = by_path.get(sb.netns_path) or by_name.get(sb.netns_path.rsplit("/", 1)[-1])
        if ns_ is not None:
            return ns_
    if sb.pid:
        return by_pid.get(sb.pid)
    return None


# PodContainer(id, name, image, state, is_sandbox, runtime, attempt, component), unvalidated:
# the values are the container record's (validated by the snapshot) or this module's
_new_pod_container = trusted_factory(PodContainer, ("id", "name", "image", "state", "is_sandbox", "runtime",
                                                    "attempt", "component"))


def _pod_container(c: Container, is_sandbox: bool) -> PodContainer:
    parts = _docker_parts(c.name)
    return _new_pod_container(c.id, c.name, c.image, c.state, is_sandbox, c.runtime,
                              c.attempt if c.attempt is not None else (parts[4] if parts else None),
                              "pause" if is_sandbox else kind_of_container_name(c.name))
