"""Containers from the Docker daemon (the dockershim way of running pods) through the
Docker SDK, with `docker ps -a` text as evidence.

The list call gives what `docker ps` prints (names, image, command, created, status,
labels); an inspect per container adds its pid, NetworkMode (``container:<id>`` for a
pod's app containers, joined to the pause container's namespace) and full command.
dockershim names ``k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`` give the pod (the
same decoding the docker-ps parser uses: labreport.parsers._common.dockershim_name);
``POD`` is the sandbox. A sandbox's network namespace has no name under /var/run/netns:
its ``netns_path`` is /proc/<pid>/ns/net, which the netlink collector reads.

Also recorded: Docker's version and its cgroup driver (``docker info``'s CgroupDriver).
No daemon socket (a containerd node): the status says so and is ``not_applicable``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
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
from collectors.cri import human_duration
from labreport.parsers._common import dockershim_name, label_pod_fields
from labreport.snapshot import CollectorStatus, Container

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


def docker_host(ctx: CollectContext) -> str:
    return ctx.docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def ellipsis(text: str, width: int) -> str:
    """docker's stringutils.Ellipsis: cut to ``width`` runes, the last one "…"."""
    return text if len(text) <= width else text[: width - 1] + "…"


def render_docker_ps(rows: list[dict[str, Any]], now: float) -> str:
    """`docker ps -a` (docker 20.10's table) from the list API's rows."""
    table = []
    for r in rows:
        names = ",".join(n.lstrip("/") for n in r.get("Names") or [])
        ports = ", ".join(_port(p) for p in r.get("Ports") or [])
        created = r.get("Created") or 0
        table.append([
            (r.get("Id") or "")[:12],
            r.get("Image") or "",
            json.dumps(ellipsis(r.get("Command") or "", 20), ensure_ascii=False),
            (human_duration(max(0.0, now - created)) + " ago") if created else "",
            r.get("Status") or "",
            ports,
            names,
        ])
    return format_table(table, ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"])


def _port(p: dict[str, Any]) -> str:
    if p.get("PublicPort"):
        ip = p.get("IP") or "0.0.0.0"
        return f"{ip}:{p['PublicPort']}->{p.get('PrivatePort')}/{p.get('Type', 'tcp')}"
    return f"{p.get('PrivatePort')}/{p.get('Type', 'tcp')}"


def container_record(row: dict[str, Any], inspect: Optional[dict[str, Any]]) -> Container:
    """One Container from a list row (+ its inspect document when available)."""
    names = [n.lstrip("/") for n in row.get("Names") or []]
    name = next((n for n in names if n.startswith("k8s_")), names[0] if names else row.get("Id", "")[:12])
    labels = {str(k): str(v) for k, v in (row.get("Labels") or {}).items()}
    fields: dict[str, Any] = {}
    k8s = dockershim_name(name)
    if k8s:
        fields.update({k: v for k, v in k8s.items() if k != "container_name"})
    for k, v in label_pod_fields(labels).items():
        if k != "container_name" and not fields.get(k):
            fields[k] = v
    created = row.get("Created")
    c = Container(
        runtime="docker",
        id=row.get("Id", ""),
        name=name,
        image=row.get("Image") or None,
        image_id=row.get("ImageID") or None,
        state=row.get("State") or None,
        created=_dt.datetime.fromtimestamp(created, tz=_dt.timezone.utc).isoformat().replace("+00:00", "Z")
        if created else None,
        command=row.get("Command") or None,
        labels=labels,
        network_mode=(row.get("HostConfig") or {}).get("NetworkMode") or None,
        **fields,
    )
    c.status = row.get("Status")
    if inspect:
        state = inspect.get("State") or {}
        pid = state.get("Pid")
        if isinstance(pid, int) and pid > 0:
            c.pid = pid
        c.network_mode = (inspect.get("HostConfig") or {}).get("NetworkMode") or c.network_mode
        args = [inspect.get("Path") or "", *(inspect.get("Args") or [])]
        if args[0]:
            c.command = " ".join(args)
        c.created = inspect.get("Created") or c.created
    if c.is_sandbox:
        c.sandbox_id = c.id
        if c.pid:
            c.netns_path = f"/proc/{c.pid}/ns/net"
    return c


def link_sandboxes(containers: list[Container]) -> None:
    """An app container's sandbox: the container its NetworkMode joins (by id or name)."""
    by_id = {c.id: c for c in containers}
    by_name = {c.name: c for c in containers}
    for c in containers:
        mode = c.network_mode or ""
        if not mode.startswith("container:"):
            continue
        ref = mode[len("container:"):]
        target = by_id.get(ref) or by_name.get(ref.lstrip("/")) or next(
            (x for x in containers if x.id.startswith(ref)), None)
        if target is None:
            continue
        if not c.sandbox_id:
            c.sandbox_id = target.id
        c.pod_name = c.pod_name or target.pod_name
        c.pod_namespace = c.pod_namespace or target.pod_namespace
        c.pod_uid = c.pod_uid or target.pod_uid


class DockerCollector(Collector):
    name = "docker"
    description = "containers from the Docker daemon (dockershim pods: names, pause containers, NetworkMode, pids)"
    needs = (
        Need.python("docker", why="the Docker SDK"),
        Need.socket("/var/run/docker.sock", why="the Docker daemon's socket",
                    fix="start dockerd (systemctl start docker) or give --docker-host"),
        Need.root(why="the Docker socket is root's (or the docker group's)", required=False),
    )

    def socket_need(self, ctx: CollectContext) -> Optional[Need]:
        host = docker_host(ctx)
        if host.startswith("unix://"):
            return Need.socket(host[len("unix://"):], why="the Docker daemon's socket",
                               fix="start dockerd (systemctl start docker) or give --docker-host")
        if host.startswith("/"):
            return Need.socket(host, why="the Docker daemon's socket", fix="check --docker-host")
        return None  # tcp:// or ssh://: nothing to check before connecting

    def plan(self, ctx: CollectContext) -> Plan:
        checks: list[NeedCheck] = []
        for need in self.needs:
            if need.kind == "socket":
                sneed = self.socket_need(ctx)
                if sneed is None:
                    continue
                need = sneed
            checks.append(check_need(need, ctx))
        return Plan(self.name, checks, list(self.commands))

    def not_applicable(self, p: Plan, ctx: CollectContext) -> bool:
        if ctx.docker_host or os.environ.get("DOCKER_HOST"):
            return False
        return any(c.need.kind == "socket" and not c.met and
                   all(d.strip().endswith("does not exist") for d in c.detail.split(";")) for c in p.checks)

    def collect(self, ctx: CollectContext) -> CollectorOutput:
        import docker
        from docker.errors import DockerException

        out = CollectorOutput(self.name)
        host = docker_host(ctx)
        timeout = int(max(2, min(ctx.command_timeout, 20)))
        try:
            client = docker.DockerClient(base_url=host, timeout=timeout)
        except DockerException as exc:
            out.status = CollectorStatus(name=self.name, ok=False, reason=f"cannot reach Docker at {host}: {exc}",
                                         fix="start dockerd or give --docker-host")
            return out
        try:
            try:
                version = client.api.version()
                rows = client.api.containers(all=True)
            except (DockerException, OSError) as exc:
                out.status = CollectorStatus(name=self.name, ok=False,
                                             reason=f"Docker at {host} did not answer: {exc}",
                                             fix="start dockerd or give --docker-host")
                return out
            out.info = {"versions": {"docker": version.get("Version", "")}}
            try:
                info = client.api.info()
                if info.get("CgroupDriver"):
                    out.info["cgroup_drivers"] = {"docker": info["CgroupDriver"]}
            except (DockerException, OSError) as exc:
                out.partial(f"docker info failed: {exc}")
            now = time.time()
            out.evidence.append(synthesized("docker-ps", "docker ps -a", render_docker_ps(rows, now)))
            containers = []
            for row in rows:
                inspect = None
                try:
                    inspect = client.api.inspect_container(row["Id"])
                except (DockerException, OSError) as exc:
                    # removed between the list and the inspect: keep the list's view
                    out.partial(f"inspect {row.get('Id', '')[:12]}: {exc}")
                containers.append(container_record(row, inspect))
            link_sandboxes(containers)
            out.containers = containers
        finally:
            client.close()
        return out
