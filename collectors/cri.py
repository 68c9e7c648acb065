"""Pod sandboxes and containers from a CRI runtime (containerd, CRI-O, cri-dockerd) over
its unix socket, with grpcio and the runtime.v1 stubs in collectors/proto.

Calls: Version, ListPodSandbox, ListContainers, PodSandboxStatus(verbose=True) — its
info["info"] JSON holds the sandbox pid and the network namespace path (containerd:
``pid``, ``runtimeSpec.linux.namespaces[type=network].path``) — and
ContainerStatus(verbose=True) for each container's pid and command.

Records: a Container per sandbox (``is_sandbox=True``, pod name/namespace/uid from its
metadata, ``pod_ip`` from its network status, ``pid`` and ``netns_path``), and one per
container (``sandbox_id`` = its podSandboxId, pod fields from the io.kubernetes.pod.*
labels). States are crictl's words (Running, Exited …; Ready, NotReady), so a collected
snapshot and an imported `crictl ps` agree.

Evidence (synthesized, in crictl's table format): `crictl version`, `crictl pods`,
`crictl ps -a` — what crictl would print from the same answers.

Socket: ``--cri-socket`` if given, else the first that exists of containerd's, CRI-O's,
cri-dockerd's. No socket at all means no CRI runtime on this node: the status says so
and is marked ``not_applicable`` (a Docker-only node is not a failed collection).
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from typing import Any, Optional

from collectors.base import (
    CollectContext,
    Collector,
    CollectorOutput,
    Need,
    NeedCheck,
    Plan,
    check_need,
    format_table,
    synthesized,
)
from labreport.snapshot import CollectorStatus, Container

# (path, runtime) in auto-detection order
CRI_SOCKETS: tuple[tuple[str, str], ...] = (  # /var/run is /run on current distributions
    ("/run/containerd/containerd.sock", "containerd"),
    ("/var/run/crio/crio.sock", "cri-o"),
    ("/run/cri-dockerd.sock", "cri-dockerd"),
)
_RUNTIME_NAMES = {"containerd": "containerd", "cri-o": "cri-o", "crio": "cri-o", "docker": "cri-dockerd"}
_CONTAINER_STATES = {0: "Created", 1: "Running", 2: "Exited", 3: "Unknown"}
_SANDBOX_STATES = {0: "Ready", 1: "NotReady"}


def strip_unix(path: str) -> str:
    return path[len("unix://"):] if path.startswith("unix://") else path


def human_duration(seconds: float) -> str:
    """docker/go-units HumanDuration, which crictl prints as "<d> ago"."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def ns_iso(ns: int) -> Optional[str]:
    if not ns or ns <= 0:
        return None
    return _dt.datetime.fromtimestamp(ns / 1e9, tz=_dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _ago(ns: int, now: float) -> str:
    if not ns:
        return "Unknown"
    return human_duration(max(0.0, now - ns / 1e9)) + " ago"


def _short(cid: str) -> str:
    return cid[:13]


def netns_from_info(info: dict[str, Any]) -> tuple[Optional[int], Optional[str]]:
    """(pid, network namespace path) from a verbose PodSandboxStatus info document."""
    pid = info.get("pid")
    path = None
    spec = info.get("runtimeSpec") or {}
    for ns in ((spec.get("linux") or {}).get("namespaces") or []):
        if isinstance(ns, dict) and ns.get("type") == "network" and ns.get("path"):
            path = ns["path"]
    if path is None and isinstance(info.get("netnsPath"), str):  # older containerd / CRI-O
        path = info["netnsPath"] or None
    return (pid if isinstance(pid, int) and pid > 0 else None), path


def _info_json(resp_info: Any) -> dict[str, Any]:
    raw = dict(resp_info).get("info")
    if not raw:
        return {}
    try:
        val = json.loads(raw)
    except ValueError:
        return {}
    return val if isinstance(val, dict) else {}


def _pod_fields(labels: dict[str, str]) -> dict[str, Any]:
    from labreport.parsers._common import label_pod_fields

    out = label_pod_fields(labels)
    out.pop("container_name", None)
    out.pop("sandbox_id", None)
    return out


def render_crictl_pods(sandboxes: list[Container], now: float, created_ns: dict[str, int],
                       handlers: Optional[dict[str, str]] = None) -> str:
    """`crictl pods` from the records (created_ns: id -> CRI created_at in ns)."""
    handlers = handlers or {}
    rows = []
    for s in sandboxes:
        rows.append([_short(s.id), _ago(created_ns.get(s.id, 0), now), s.state or "Unknown", s.pod_name or s.name,
                     s.pod_namespace or "", str(s.attempt or 0), handlers.get(s.id) or "(default)"])
    return format_table(rows, ["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"])


def render_crictl_ps(containers: list[Container], now: float, created_ns: dict[str, int]) -> str:
    """`crictl ps -a` from the records."""
    rows = []
    for c in containers:
        image = c.image_id or c.image or ""
        if image.startswith("sha256:"):
            image = image[len("sha256:"):][:13]
        rows.append([_short(c.id), image, _ago(created_ns.get(c.id, 0), now), c.state or "Unknown", c.name, str(c.attempt or 0),
                     _short(c.sandbox_id or ""), c.pod_name or ""])
    return format_table(rows, ["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD"])


def fill_pod_from_sandbox(containers: list[Container], sandboxes: list[Container]) -> None:
    """Pod name/namespace/uid of a container without io.kubernetes.pod.* labels, from the
    sandbox it belongs to (its podSandboxId): a fact of the runtime, not a guess."""
    by_id = {s.id: s for s in sandboxes}
    for c in containers:
        sb = by_id.get(c.sandbox_id or "")
        if sb is None:
            continue
        c.pod_name = c.pod_name or sb.pod_name
        c.pod_namespace = c.pod_namespace or sb.pod_namespace
        c.pod_uid = c.pod_uid or sb.pod_uid


class CriCollector(Collector):
    name = "cri"
    description = "pod sandboxes and containers from the CRI runtime (containerd, CRI-O, cri-dockerd) over gRPC"
    needs = (
        Need.python("grpc", why="talks CRI over gRPC", fix="pip install grpcio"),
        Need.socket(*[p for p, _ in CRI_SOCKETS], why="the CRI runtime's socket",
                    fix="start the runtime (systemctl start containerd) or give --cri-socket PATH"),
        Need.root(why="the runtime's socket is root's", required=False),
    )

    def socket_need(self, ctx: CollectContext) -> Need:
        if ctx.cri_socket:
            return Need.socket(strip_unix(ctx.cri_socket), why="the CRI socket given with --cri-socket",
                               fix="check the path given to --cri-socket")
        return self.needs[1]

    def plan(self, ctx: CollectContext) -> Plan:
        checks: list[NeedCheck] = []
        for need in self.needs:
            if need.kind == "socket":
                need = self.socket_need(ctx)
            checks.append(check_need(need, ctx))
        return Plan(self.name, checks, list(self.commands))

    def not_applicable(self, p: Plan, ctx: CollectContext) -> bool:
        """No CRI socket exists at all (and none was asked for): no CRI runtime here."""
        if ctx.cri_socket:
            return False
        return any(c.need.kind == "socket" and not c.met and
                   (c.detail == "none of them exists" or
                    all(d.strip().endswith("does not exist") for d in c.detail.split(";")))
                   for c in p.checks)

    def find_socket(self, ctx: CollectContext) -> Optional[str]:
        check = check_need(self.socket_need(ctx), ctx)
        return check.detail if check.met else None

    def collect(self, ctx: CollectContext) -> CollectorOutput:
        import grpc

        from collectors.proto import api_pb2 as cri
        from collectors.proto import api_pb2_grpc as cri_grpc

        out = CollectorOutput(self.name)
        sock = self.find_socket(ctx)
        if sock is None:  # plan() said runnable; the socket vanished meanwhile
            out.status = CollectorStatus(name=self.name, ok=False, reason="the CRI socket disappeared")
            return out
        timeout = min(ctx.command_timeout, 10.0)
        channel = grpc.insecure_channel(f"unix://{sock}")
        try:
            rt = cri_grpc.RuntimeServiceStub(channel)
            try:
                ver = rt.Version(cri.VersionRequest(version="v1"), timeout=timeout)
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                hint = ""
                if code == grpc.StatusCode.UNIMPLEMENTED:
                    hint = (" — the socket does not serve CRI runtime.v1 (containerd's cri plugin disabled, "
                            "as Docker's containerd ships it, or a runtime older than v1)")
                out.status = CollectorStatus(
                    name=self.name, ok=False,
                    reason=f"CRI Version on {sock} failed: {code.name if code else ''} "
                           f"{exc.details() if hasattr(exc, 'details') else exc}{hint}",
                    fix="enable the CRI plugin (remove \"cri\" from disabled_plugins in /etc/containerd/config.toml, "
                        "restart containerd) or give --cri-socket PATH")
                return out
            runtime = _RUNTIME_NAMES.get(ver.runtime_name, ver.runtime_name or "unknown")
            out.info = {"cri_socket": sock, "versions": {runtime: ver.runtime_version}}
            out.evidence.append(synthesized(
                "crictl-version", f"crictl --runtime-endpoint unix://{sock} version",
                f"Version:  {ver.version}\nRuntimeName:  {ver.runtime_name}\n"
                f"RuntimeVersion:  {ver.runtime_version}\nRuntimeApiVersion:  {ver.runtime_api_version}\n"))
            now = time.time()
            created: dict[str, int] = {}
            handlers: dict[str, str] = {}
            sandboxes = self._sandboxes(rt, cri, grpc, runtime, timeout, out, created, handlers)
            containers = self._containers(rt, cri, grpc, runtime, timeout, out, created)
            out.evidence.append(synthesized("crictl-pods", "crictl pods",
                                            render_crictl_pods(sandboxes, now, created, handlers)))
            # crictl's POD column comes from the container's labels: render before filling
            out.evidence.append(synthesized("crictl-ps", "crictl ps -a", render_crictl_ps(containers, now, created)))
            fill_pod_from_sandbox(containers, sandboxes)
            out.containers = sandboxes + containers
        finally:
            channel.close()
        return out

    def _sandboxes(self, rt, cri, grpc, runtime: str, timeout: float, out: CollectorOutput,
                   created: dict[str, int], handlers: dict[str, str]) -> list[Container]:
        try:
            items = list(rt.ListPodSandbox(cri.ListPodSandboxRequest(), timeout=timeout).items)
        except grpc.RpcError as exc:
            out.partial(f"ListPodSandbox failed: {exc.code().name}: {exc.details()}")
            return []
        result = []
        for sb in items:
            labels, annotations = dict(sb.labels), dict(sb.annotations)
            c = Container(
                runtime=runtime, id=sb.id, name=sb.metadata.name, state=_SANDBOX_STATES.get(sb.state, str(sb.state)),
                created=ns_iso(sb.created_at), attempt=sb.metadata.attempt, pod_name=sb.metadata.name or None,
                pod_namespace=sb.metadata.namespace or None, pod_uid=sb.metadata.uid or None,
                is_sandbox=True, labels=labels, annotations=annotations,
            )
            created[sb.id] = sb.created_at
            if sb.runtime_handler:
                handlers[sb.id] = sb.runtime_handler
            try:
                resp = rt.PodSandboxStatus(cri.PodSandboxStatusRequest(pod_sandbox_id=sb.id, verbose=True),
                                           timeout=timeout)
                st = resp.status
                if st.network.ip:
                    c.pod_ip = st.network.ip
                    extra = [p.ip for p in st.network.additional_ips if p.ip]
                    if extra:
                        c.pod_ips = [st.network.ip, *extra]
                info = _info_json(resp.info)
                c.pid, c.netns_path = netns_from_info(info)
                if isinstance(info.get("image"), str):
                    c.image = info["image"]
                elif isinstance((info.get("config") or {}).get("image"), dict):
                    c.image = info["config"]["image"].get("image")
            except grpc.RpcError as exc:
                # a sandbox removed between the list and the status: keep what the list said
                out.partial(f"PodSandboxStatus {sb.id[:13]}: {exc.code().name}: {exc.details()}")
            result.append(c)
        return result

    def _containers(self, rt, cri, grpc, runtime: str, timeout: float, out: CollectorOutput,
                    created: dict[str, int]) -> list[Container]:
        try:
            items = list(rt.ListContainers(cri.ListContainersRequest(), timeout=timeout).containers)
        except grpc.RpcError as exc:
            out.partial(f"ListContainers failed: {exc.code().name}: {exc.details()}")
            return []
        result = []
        for ct in items:
            labels, annotations = dict(ct.labels), dict(ct.annotations)
            c = Container(
                runtime=runtime, id=ct.id, name=ct.metadata.name, image=ct.image.image or None,
                image_id=ct.image_ref or ct.image_id or None, state=_CONTAINER_STATES.get(ct.state, str(ct.state)),
                created=ns_iso(ct.created_at), attempt=ct.metadata.attempt, sandbox_id=ct.pod_sandbox_id or None,
                labels=labels, annotations=annotations, **_pod_fields(labels),
            )
            created[ct.id] = ct.created_at
            try:
                resp = rt.ContainerStatus(cri.ContainerStatusRequest(container_id=ct.id, verbose=True),
                                          timeout=timeout)
                st = resp.status
                if st.image.image:
                    c.image = st.image.image
                if st.state == 2 and st.exit_code is not None:
                    c.exit_code = st.exit_code
                info = _info_json(resp.info)
                pid, netns_path = netns_from_info(info)
                if pid:
                    c.pid = pid
                # containerd puts /proc/<sandbox pid>/ns/net here: proof that the container
                # joined its sandbox's network namespace.
                c.netns_path = netns_path
                args = ((info.get("runtimeSpec") or {}).get("process") or {}).get("args")
                if isinstance(args, list) and args:
                    c.command = " ".join(str(a) for a in args)
            except grpc.RpcError as exc:
                out.partial(f"ContainerStatus {ct.id[:13]}: {exc.code().name}: {exc.details()}")
            result.append(c)
        return result

