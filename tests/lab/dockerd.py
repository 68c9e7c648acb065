"""dockerd on paths of its own inside a node's namespace, and pods the way dockershim made
them: a pause container ``k8s_POD_<pod>_<ns>_<uid>_0`` with ``--network none`` wired to the
node's cni0 by the CNI bridge plugin, and app containers joining its namespace."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import docker

from tests.lab.netns import nsenter_net
from tests.lab.proc import Daemon, LabError, kill_pids, pids_with_cmdline_containing, wait_for


@dataclass
class Dockerd:
    node_ns: str
    base: Path
    daemon: Daemon | None = None
    client: docker.DockerClient | None = None

    @property
    def sock(self) -> Path:
        return self.base / "docker.sock"

    @property
    def exec_root(self) -> Path:
        return self.base / "exec"

    @property
    def host_url(self) -> str:
        return f"unix://{self.sock}"

    def start(self) -> "Dockerd":
        self.base.mkdir(parents=True, exist_ok=True)
        cfg = self.base / "daemon.json"
        cfg.write_text("{}\n")  # never read the machine's /etc/docker/daemon.json
        argv = [*nsenter_net(self.node_ns), "dockerd", "--config-file", str(cfg),
                "--data-root", str(self.base / "data"), "--exec-root", str(self.exec_root),
                "--host", self.host_url, "--pidfile", str(self.base / "docker.pid"),
                "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--bridge=none",
                "--log-level=warn"]
        self.daemon = Daemon("dockerd", argv, self.base / "dockerd.log").start()
        return self

    def wait_ready(self, timeout: float = 60.0) -> docker.DockerClient:
        assert self.daemon is not None

        def ready():
            if not self.daemon.alive():
                raise LabError("dockerd exited" + self.daemon.log_tail())
            if not self.sock.exists():
                return False
            probe = docker.DockerClient(base_url=self.host_url, timeout=5)
            try:
                return probe.ping()
            finally:
                probe.close()

        wait_for("dockerd to answer ping", ready, timeout=timeout, on_timeout=self.daemon.log_tail)
        # a busy shared machine can be slow to load images or start containers
        self.client = docker.DockerClient(base_url=self.host_url, timeout=180)
        return self.client

    def load_images(self, docker_tar: Path) -> None:
        assert self.client is not None
        with open(docker_tar, "rb") as fh:
            self.client.images.load(fh.read())

    def remove_all_containers(self) -> None:
        if self.client is None:
            return
        for c in self.client.containers.list(all=True):
            c.remove(force=True)

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.daemon is not None:
            self.daemon.stop(timeout=15)
        # dockerd's own containerd and its shims carry our exec-root in their command line
        leftovers = pids_with_cmdline_containing(str(self.exec_root))
        if leftovers:
            kill_pids(leftovers)
            time.sleep(0.2)


def dockershim_names(pod: str, namespace: str, uid: str, container: str | None = None) -> str:
    """The container names dockershim gave: k8s_POD_… for the sandbox, k8s_<c>_… for the rest."""
    return f"k8s_{container or 'POD'}_{pod}_{namespace}_{uid}_0"


@dataclass
class DockerPod:
    name: str
    namespace: str
    uid: str
    sandbox_id: str = ""
    sandbox_name: str = ""
    sandbox_pid: int = 0
    containers: dict[str, str] = field(default_factory=dict)  # container name -> docker id
    container_full_names: dict[str, str] = field(default_factory=dict)

    @property
    def netns_path(self) -> str:
        return f"/proc/{self.sandbox_pid}/ns/net"


def run_docker_pod(client: docker.DockerClient, *, pod: str, namespace: str, uid: str, pause_image: str,
                   containers: list[tuple[str, str, list[str] | None, dict[str, dict] | None]]) -> DockerPod:
    """Start the pause container with ``--network none`` and the app containers joined to it.
    containers: (name, image, command or None, volumes {host: {"bind": path, "mode": "rw"}} or None).
    Labels are dockershim's (io.kubernetes.pod.name, …, io.kubernetes.docker.type)."""
    result = DockerPod(pod, namespace, uid)
    base_labels = {"io.kubernetes.pod.name": pod, "io.kubernetes.pod.namespace": namespace,
                   "io.kubernetes.pod.uid": uid}
    result.sandbox_name = dockershim_names(pod, namespace, uid)
    sb = client.containers.run(pause_image, name=result.sandbox_name, detach=True, network_mode="none",
                               labels={**base_labels, "io.kubernetes.docker.type": "podsandbox"})
    sb.reload()
    result.sandbox_id = sb.id
    result.sandbox_pid = int(sb.attrs["State"]["Pid"])
    for cname, image, command, volumes in containers:
        full = dockershim_names(pod, namespace, uid, cname)
        c = client.containers.run(image, command=command, name=full, detach=True,
                                  network_mode=f"container:{result.sandbox_name}", volumes=volumes or {},
                                  labels={**base_labels, "io.kubernetes.container.name": cname,
                                          "io.kubernetes.docker.type": "container",
                                          "io.kubernetes.sandbox.id": sb.id})
        result.containers[cname] = c.id
        result.container_full_names[cname] = full
    return result
