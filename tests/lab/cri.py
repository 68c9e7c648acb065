"""A small CRI (runtime.v1) client over a unix socket, using collectors/proto's stubs."""

from __future__ import annotations

import json
from dataclasses import dataclass

import grpc

from collectors.proto import api_pb2 as cri
from collectors.proto import api_pb2_grpc as cri_grpc


@dataclass
class CriClient:
    socket: str
    timeout: float = 30.0

    def __post_init__(self) -> None:
        self.channel = grpc.insecure_channel(f"unix://{self.socket}")
        self.runtime = cri_grpc.RuntimeServiceStub(self.channel)
        self.images = cri_grpc.ImageServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    # --- queries
    def version(self) -> cri.VersionResponse:
        return self.runtime.Version(cri.VersionRequest(version="v1"), timeout=self.timeout)

    def list_images(self) -> list[cri.Image]:
        return list(self.images.ListImages(cri.ListImagesRequest(), timeout=self.timeout).images)

    def list_sandboxes(self) -> list[cri.PodSandbox]:
        return list(self.runtime.ListPodSandbox(cri.ListPodSandboxRequest(), timeout=self.timeout).items)

    def list_containers(self) -> list[cri.Container]:
        return list(self.runtime.ListContainers(cri.ListContainersRequest(), timeout=self.timeout).containers)

    def sandbox_status(self, sandbox_id: str) -> tuple[cri.PodSandboxStatus, dict]:
        """The status and containerd's verbose info JSON (pid, netns path, CNI result)."""
        resp = self.runtime.PodSandboxStatus(
            cri.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=True), timeout=self.timeout)
        info = json.loads(resp.info["info"]) if "info" in resp.info else {}
        return resp.status, info

    def container_status(self, container_id: str) -> tuple[cri.ContainerStatus, dict]:
        resp = self.runtime.ContainerStatus(
            cri.ContainerStatusRequest(container_id=container_id, verbose=True), timeout=self.timeout)
        info = json.loads(resp.info["info"]) if "info" in resp.info else {}
        return resp.status, info

    # --- pods
    @staticmethod
    def sandbox_config(name: str, namespace: str, uid: str, *, log_dir: str,
                       labels: dict[str, str] | None = None) -> cri.PodSandboxConfig:
        return cri.PodSandboxConfig(
            metadata=cri.PodSandboxMetadata(name=name, namespace=namespace, uid=uid, attempt=0),
            hostname=name,
            log_directory=log_dir,
            labels={"io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": namespace,
                    "io.kubernetes.pod.uid": uid, **(labels or {})},
            linux=cri.LinuxPodSandboxConfig(security_context=cri.LinuxSandboxSecurityContext(
                namespace_options=cri.NamespaceOption(network=cri.POD, pid=cri.CONTAINER, ipc=cri.POD))),
        )

    def run_sandbox(self, config: cri.PodSandboxConfig) -> str:
        return self.runtime.RunPodSandbox(cri.RunPodSandboxRequest(config=config),
                                          timeout=max(self.timeout, 60)).pod_sandbox_id

    def create_container(self, sandbox_id: str, sandbox_config: cri.PodSandboxConfig, name: str,
                         image: str, *, command: list[str] | None = None, args: list[str] | None = None,
                         mounts: list[tuple[str, str]] | None = None) -> str:
        cfg = cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name=name, attempt=0),
            image=cri.ImageSpec(image=image),
            command=command or [],
            args=args or [],
            mounts=[cri.Mount(container_path=c, host_path=h) for h, c in (mounts or [])],
            labels={"io.kubernetes.container.name": name},
            log_path=f"{name}/0.log",
        )
        return self.runtime.CreateContainer(
            cri.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=cfg, sandbox_config=sandbox_config),
            timeout=max(self.timeout, 60)).container_id

    def start_container(self, container_id: str) -> None:
        self.runtime.StartContainer(cri.StartContainerRequest(container_id=container_id),
                                    timeout=max(self.timeout, 60))

    def stop_container(self, container_id: str, timeout_s: int = 2) -> None:
        self.runtime.StopContainer(cri.StopContainerRequest(container_id=container_id, timeout=timeout_s),
                                   timeout=self.timeout + timeout_s)

    def remove_container(self, container_id: str) -> None:
        self.runtime.RemoveContainer(cri.RemoveContainerRequest(container_id=container_id), timeout=self.timeout)

    def stop_sandbox(self, sandbox_id: str) -> None:
        self.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=sandbox_id), timeout=self.timeout)

    def remove_sandbox(self, sandbox_id: str) -> None:
        self.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id),
                                      timeout=self.timeout)
