"""Pod grouping details not covered by the seeds: CRI proof of the shared network namespace.

The values below were captured on this machine from containerd 1.6.20's CRI (the
tests/lab node: PodSandboxStatus / ContainerStatus with verbose=True). A sandbox's
runtimeSpec has ``{"type": "network", "path": "/var/run/netns/cni-…"}`` and pid 9791;
each of its containers has ``{"type": "network", "path": "/proc/9791/ns/net"}`` — the
container joins the sandbox's network namespace, the CRI counterpart of Docker's
``NetworkMode: container:<sandbox>``.
"""

from __future__ import annotations

from labreport.analysis.pods import group_pods
from labreport.snapshot import Container, NodeSnapshot

SANDBOX_ID = "d34a8ea31d752" + "0" * 51
SANDBOX = Container(runtime="containerd", id=SANDBOX_ID, name="fileserver", is_sandbox=True,
                    pod_name="fileserver", pod_namespace="default", pod_uid="uid-fs", pid=9791,
                    netns_path="/var/run/netns/cni-6fad4742-cbd4-0e7a-1ea2-4516e41fbf9f", state="SANDBOX_READY")


def _app(name: str, pid: int, netns_path: str | None) -> Container:
    return Container(runtime="containerd", id=f"{name}-id", name=name, sandbox_id=SANDBOX_ID, pid=pid,
                     netns_path=netns_path, state="CONTAINER_RUNNING")


def test_cri_containers_joining_the_sandbox_netns_prove_sharing():
    node = NodeSnapshot(name="n", containers=[_app("fileserver", 9883, "/proc/9791/ns/net"),
                                              _app("downloader", 9965, "/proc/9791/ns/net"), SANDBOX])
    (pod,) = group_pods(node)
    assert pod.shares_netns_with_sandbox is True
    assert [c.is_sandbox for c in pod.containers] == [True, False, False]
    assert pod.netns == "cni-6fad4742-cbd4-0e7a-1ea2-4516e41fbf9f"


def test_cri_without_container_netns_claims_nothing():
    node = NodeSnapshot(name="n", containers=[SANDBOX, _app("fileserver", 9883, None)])
    assert group_pods(node)[0].shares_netns_with_sandbox is None


def test_docker_network_mode_host_disproves_sharing():
    sb = Container(runtime="docker", id="23f2f68378cc", name="k8s_POD_pod_default_u1_0")
    app = Container(runtime="docker", id="c17c77e1b546", name="k8s_viewer_pod_default_u1_0", network_mode="host")
    (pod,) = group_pods(NodeSnapshot(name="n", containers=[app, sb]))
    assert pod.shares_netns_with_sandbox is False and pod.containers[0].is_sandbox
