"""A real Kubernetes-style node inside a network namespace of the test's own.

``NodeLab(...).build()`` starts containerd (CRI) and dockerd in the namespace, imports the
locally built images, runs the pods, wires them to ``cni0``, loads kube-proxy's service rules
and returns a :class:`~tests.lab.truth.NodeTruth`. ``close()`` tears everything down (also
after a partial build). See tests/lab/__init__.py for the whole API.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab import cni
from tests.lab.containerd import Containerd
from tests.lab.cri import CriClient
from tests.lab.dockerd import DockerPod, Dockerd, run_docker_pod
from tests.lab.images import ImageArchives, build_images
from tests.lab.kubeproxy import EndpointSpec, ServicePortSpec, load_nat_rules, nat_rules
from tests.lab.netns import add_netns, delete_netns, in_netns, netns_path, nsenter_net
from tests.lab.proc import LabError, Teardown, log, run, unmount_under, wait_for
from tests.lab.truth import (NodeTruth, TruthContainer, TruthEndpoint, TruthPod, TruthService,
                             TruthVeth)

LAB_ROOT = Path("/tmp")
DOWNLOADER_SCRIPT = ("trap 'exit 0' TERM; echo \"served by {ns}/{pod} (written by downloader)\" "
                     "> /www/index.html.tmp && mv /www/index.html.tmp /www/index.html; "
                     "while true; do sleep 1; done")


def _unique_name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


@dataclass
class Uplink:
    """The node's eth0: a veth whose peer is in another namespace (a gateway namespace the
    lab creates, or the other node)."""

    ifname: str = "eth0"
    address: str = "192.168.56.10/24"
    gateway: str | None = "192.168.56.1"


@dataclass
class NodeLab:
    """Build with ``build()``, tear down with ``close()`` (idempotent, robust to partial builds).

    name: the node's namespace name (unique; default ``lrl`` + 6 hex).
    pod_cidr: this node's pod range on cni0 (host-local). cluster_cidr: all pods (for the
    kube-proxy masquerade rule). with_docker: add a dockershim-style pod. uplink: give the
    node an eth0 with a gateway namespace (``None``: no uplink; the two-node builder wires
    its own). netns_ready: the namespace already exists (created by a cluster builder).
    services: load kube-proxy rules for the default services (``False`` to skip; the cluster
    builder loads its own across nodes with ``load_services``).
    """

    name: str = field(default_factory=lambda: _unique_name("lrl"))
    pod_cidr: str = "10.244.1.0/24"
    cluster_cidr: str = "10.244.0.0/16"
    with_docker: bool = True
    uplink: Uplink | None = field(default_factory=Uplink)
    netns_ready: bool = False
    services: bool = True
    pod_prefix: str = ""  # prefix for pod names (two-node builds: "m-", "w-")
    teardown: Teardown = field(default_factory=Teardown)
    truth: NodeTruth | None = None
    build_seconds: float | None = None

    def __post_init__(self) -> None:
        self.base = LAB_ROOT / self.name
        self.containerd: Containerd | None = None
        self.dockerd: Dockerd | None = None
        self.cri: CriClient | None = None
        self._closed = False

    # ------------------------------------------------------------------ build
    def build(self) -> NodeTruth:
        t0 = time.monotonic()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        self.build_seconds = time.monotonic() - t0
        assert self.truth is not None
        return self.truth

    def _build(self) -> None:
        self.base.mkdir(parents=True, exist_ok=False)
        self.teardown.push("remove lab dir", self._remove_base)
        if not self.netns_ready:
            add_netns(self.name)
            self.teardown.push("delete node netns", lambda: delete_netns(self.name))
        gw = self.pod_cidr_gateway
        self.truth = NodeTruth(node_ns=self.name, base_dir=str(self.base), pod_cidr=self.pod_cidr,
                               cluster_cidr=self.cluster_cidr, bridge=cni.BRIDGE, bridge_ip=gw,
                               containerd_socket=None, docker_host=None)
        if self.uplink is not None:
            self._make_uplink(self.uplink)
        run(in_netns(self.name, "sysctl", "-qw", "net.ipv4.ip_forward=1"))

        with ThreadPoolExecutor(max_workers=4) as pool:
            f_images = pool.submit(build_images)
            f_ctd = pool.submit(self._start_containerd)
            f_dk = pool.submit(self._start_dockerd) if self.with_docker else None
            images: ImageArchives = f_images.result()
            f_ctd.result()
            if f_dk is not None:
                f_dk.result()
            # import in parallel into both runtimes
            fi = [pool.submit(self.containerd.import_images, images.oci_tar)]  # type: ignore[union-attr]
            if self.dockerd is not None:
                fi.append(pool.submit(self.dockerd.load_images, images.docker_tar))
            for f in fi:
                f.result()
            pods = [pool.submit(self._run_fileserver_pod, images), pool.submit(self._run_web_pod, images)]
            if self.dockerd is not None:
                pods.append(pool.submit(self._run_docker_pod, images))
            for f in pods:
                self.truth.pods.append(f.result())
            for f in [pool.submit(self._wait_serving, p) for p in self.truth.pods]:
                f.result()
        if self.services:
            self.load_services(self.default_services())

    @property
    def pod_cidr_gateway(self) -> str:
        return str(next(ipaddress.ip_network(self.pod_cidr).hosts()))

    def _make_uplink(self, up: Uplink) -> None:
        assert self.truth is not None
        if up.gateway is not None:
            gw_ns = self.name + "g"
            add_netns(gw_ns)
            self.teardown.push("delete gateway netns", lambda: delete_netns(gw_ns))
            prefix = up.address.split("/")[1]
            run(["ip", "link", "add", "name", up.ifname, "netns", self.name, "type", "veth",
                 "peer", "name", "eth0", "netns", gw_ns])
            run(["ip", "-n", gw_ns, "addr", "add", f"{up.gateway}/{prefix}", "dev", "eth0"])
            run(["ip", "-n", gw_ns, "link", "set", "eth0", "up"])
            run(["ip", "-n", self.name, "addr", "add", up.address, "dev", up.ifname])
            run(["ip", "-n", self.name, "link", "set", up.ifname, "up"])
            run(["ip", "-n", self.name, "route", "add", "default", "via", up.gateway])
            self.truth.uplink_peer_ns = gw_ns
            self.truth.uplink_veth = self._veth_truth(netns_path(gw_ns), up.ifname, pod_ifname="eth0")
        self.truth.uplink = up.ifname
        self.truth.uplink_ip = up.address.split("/")[0]

    def _start_containerd(self) -> None:
        assert self.truth is not None
        from tests.lab.images import PAUSE_IMAGE
        ctd = Containerd(self.name, self.base / "ctd", PAUSE_IMAGE)
        ctd.base.mkdir(parents=True)
        cni.write_conflist(ctd.cni_conf_dir, self.pod_cidr, self.base / "ipam")
        self.containerd = ctd.start()
        self.teardown.push("stop containerd", ctd.stop)
        self.cri = ctd.wait_ready()
        self.teardown.push("close CRI channel", self.cri.close)
        self.truth.containerd_socket = str(ctd.sock)

    def _start_dockerd(self) -> None:
        assert self.truth is not None
        dk = Dockerd(self.name, self.base / "dk")
        self.dockerd = dk.start()
        self.teardown.push("stop dockerd", dk.stop)
        dk.wait_ready()
        self.truth.docker_host = dk.host_url

    # ------------------------------------------------------------------ pods
    def _volume(self, pod: str, content: str | None) -> Path:
        d = self.base / "vol" / pod / "www"
        d.mkdir(parents=True)
        if content is not None:
            (d / "index.html").write_text(content + "\n")
        return d

    def _run_cri_pod(self, name: str, containers: list[tuple[str, str, list[str] | None, list[tuple[str, str]]]],
                     content: str) -> TruthPod:
        assert self.cri is not None
        ns, uid = "default", str(uuid.uuid4())
        sc = CriClient.sandbox_config(name, ns, uid, log_dir=str(self.base / "logs" / uid))
        sid = self._retry_cni(lambda: self.cri.run_sandbox(sc))  # type: ignore[union-attr]
        self.teardown.push(f"remove sandbox {name}", lambda: self._remove_cri_sandbox(sid))
        tcs = []
        for cname, image, command, mounts in containers:
            cid = self.cri.create_container(sid, sc, cname, image, command=command, mounts=mounts)
            self.cri.start_container(cid)
            tcs.append(TruthContainer(name=cname, id=cid, image=image, runtime="containerd"))
        status, info = self.cri.sandbox_status(sid)
        netns = info["runtimeSpec"]["linux"]["namespaces"]
        path = next(n["path"] for n in netns if n["type"] == "network")
        pod = TruthPod(namespace=ns, name=name, uid=uid, runtime="containerd", sandbox_id=sid,
                       sandbox_pid=int(info["pid"]), ip=status.network.ip, netns_path=path,
                       netns_name=os.path.basename(path), netns_inode=os.stat(path).st_ino,
                       containers=tcs, content=content)
        host_if = self._host_veth_from_cni_result(info.get("cniResult"))
        pod.veth = self._veth_truth(path, host_if)
        return pod

    def _retry_cni(self, fn):
        """containerd loads the CNI conflist asynchronously at start; until then RunPodSandbox
        fails with 'cni config uninitialized'."""
        deadline = time.monotonic() + 20
        while True:
            try:
                return fn()
            except Exception as exc:  # grpc.RpcError
                if "cni config" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    @staticmethod
    def _host_veth_from_cni_result(result: dict | None) -> str | None:
        if not result:
            return None
        for ifname, iface in (result.get("Interfaces") or {}).items():
            if ifname.startswith("veth") and not iface.get("Sandbox"):
                return ifname
        return None

    def _run_fileserver_pod(self, images: ImageArchives) -> TruthPod:
        name = self.pod_prefix + "fileserver"
        content = f"served by default/{name} (written by downloader)"
        vol = self._volume(name, None)  # empty: the downloader container fills it
        script = DOWNLOADER_SCRIPT.format(ns="default", pod=name)
        return self._run_cri_pod(name, [
            ("fileserver", images.app_image, None, [(str(vol), "/www")]),
            ("downloader", images.app_image, ["/bin/sh", "-c", script], [(str(vol), "/www")]),
        ], content)

    def _run_web_pod(self, images: ImageArchives) -> TruthPod:
        name = self.pod_prefix + "web"
        content = f"served by default/{name}"
        vol = self._volume(name, content)
        return self._run_cri_pod(name, [("web", images.app_image, None, [(str(vol), "/www")])], content)

    def _run_docker_pod(self, images: ImageArchives) -> TruthPod:
        assert self.dockerd is not None and self.dockerd.client is not None
        name = self.pod_prefix + "dweb"
        content = f"served by default/{name}"
        vol = self._volume(name, content)
        uid = str(uuid.uuid4())
        dp: DockerPod = run_docker_pod(self.dockerd.client, pod=name, namespace="default", uid=uid,
                                       pause_image=images.pause_image,
                                       containers=[("httpd", images.app_image, None,
                                                    {str(vol): {"bind": "/www", "mode": "rw"}})])
        self.teardown.push(f"remove docker pod {name}", lambda: self._remove_docker_pod(dp))
        conf = cni.bridge_plugin_conf(self.pod_cidr, self.base / "ipam")
        result = cni.bridge_add(self.name, dp.sandbox_id, dp.netns_path, conf)
        self.teardown.push(f"CNI DEL {name}", lambda: cni.bridge_add(
            self.name, dp.sandbox_id, dp.netns_path, conf, command="DEL"))
        ip = result["ips"][0]["address"].split("/")[0]
        host_if = next(i["name"] for i in result["interfaces"] if i["name"].startswith("veth"))
        pod = TruthPod(namespace="default", name=name, uid=uid, runtime="docker", sandbox_id=dp.sandbox_id,
                       sandbox_pid=dp.sandbox_pid, ip=ip, netns_path=dp.netns_path, netns_name=None,
                       netns_inode=os.stat(dp.netns_path).st_ino, sandbox_name=dp.sandbox_name,
                       containers=[TruthContainer(name=c, id=i, image=images.app_image, runtime="docker",
                                                  docker_name=dp.container_full_names[c])
                                   for c, i in dp.containers.items()], content=content)
        pod.veth = self._veth_truth(dp.netns_path, host_if)
        return pod

    def _veth_truth(self, pod_netns: str, host_ifname: str | None, *, pod_ifname: str = "eth0") -> TruthVeth:
        """Read both ends from the kernel and check they point at each other."""
        pod_link = json.loads(run([*nsenter_net(pod_netns), "ip", "-j", "link", "show", pod_ifname]).stdout)[0]
        host_links = json.loads(run(["ip", "-n", self.name, "-j", "link", "show"]).stdout)
        if host_ifname is None:  # fall back to the kernel: the node link eth0's IFLA_LINK names
            host_ifname = next(h["ifname"] for h in host_links if h["ifindex"] == pod_link["link_index"])
        host = next(h for h in host_links if h["ifname"] == host_ifname)
        if host["ifindex"] != pod_link["link_index"] or host.get("link_index") != pod_link["ifindex"]:
            raise LabError(f"veth {host_ifname} and eth0 in {pod_netns} do not point at each other: "
                           f"{host} / {pod_link}")
        return TruthVeth(host_ifname=host_ifname, host_ifindex=host["ifindex"], pod_ifname=pod_ifname,
                         pod_ifindex=pod_link["ifindex"], host_mac=host["address"],
                         pod_mac=pod_link["address"], bridge=host.get("master"))

    def _wait_serving(self, pod: TruthPod) -> None:
        want = pod.content

        def serving():
            cp = run(in_netns(self.name, "curl", "-s", "-m", "10", f"http://{pod.ip}/"), check=False, timeout=15)
            return cp.returncode == 0 and cp.stdout.strip() == want

        wait_for(f"{pod.key} to serve its page at {pod.ip}", serving, timeout=30, interval=0.1)

    def _remove_cri_sandbox(self, sid: str) -> None:
        if self.cri is None:
            return
        for c in self.cri.list_containers():
            if c.pod_sandbox_id == sid:
                try:
                    self.cri.stop_container(c.id, timeout_s=0)
                finally:
                    self.cri.remove_container(c.id)
        self.cri.stop_sandbox(sid)
        self.cri.remove_sandbox(sid)

    def _remove_docker_pod(self, dp: DockerPod) -> None:
        assert self.dockerd is not None and self.dockerd.client is not None
        for cid in [*dp.containers.values(), dp.sandbox_id]:
            try:
                self.dockerd.client.containers.get(cid).remove(force=True)
            except Exception as exc:  # noqa: BLE001 - already gone is fine
                if "No such container" not in str(exc) and "404" not in str(exc):
                    raise

    # ------------------------------------------------------------------ services
    def default_services(self) -> list[ServicePortSpec]:
        """default/web:http (ClusterIP 10.96.0.80:80, NodePort 30080) over all pods in the
        order fileserver, web, dweb — probabilities 1/3, 1/2, last; and default/fileserver:http
        (10.96.0.81:8080 → fileserver:80) with one endpoint."""
        assert self.truth is not None
        eps = [EndpointSpec(p.ip, 80, p.key) for p in self.truth.pods]
        fs = next(p for p in self.truth.pods if p.name.endswith("fileserver"))
        return [
            ServicePortSpec("default", "web", "http", "10.96.0.80", 80, eps, node_port=30080),
            ServicePortSpec("default", "fileserver", "http", "10.96.0.81", 8080,
                            [EndpointSpec(fs.ip, 80, fs.key)]),
        ]

    def load_services(self, specs: list[ServicePortSpec]) -> None:
        assert self.truth is not None
        load_nat_rules(self.name, nat_rules(specs, self.cluster_cidr))
        for s in specs:
            self.truth.services.append(TruthService(
                name=s.port_key, namespace=s.namespace, service=s.name, port_name=s.port_name,
                cluster_ip=s.cluster_ip, port=s.port, protocol=s.protocol, node_port=s.node_port,
                svc_chain=s.svc_chain,
                endpoints=[TruthEndpoint(ip=e.ip, port=e.port, pod=e.pod, chain=s.sep_chain(e),
                                         rule_probability=p, share=share)
                           for e, p, share in zip(s.endpoints, s.rule_probabilities(), s.expected_shares())]))

    # ------------------------------------------------------------------ teardown
    def _remove_base(self) -> None:
        if self.base.exists():
            unmount_under(self.base)
            shutil.rmtree(self.base, ignore_errors=True)

    def close(self) -> list[str]:
        """Tear everything down; returns the steps that failed (also logged)."""
        if self._closed:
            return []
        self._closed = True
        # containerd-made pod namespaces that outlive a failed RemovePodSandbox: ours only
        if self.truth is not None:
            for p in self.truth.pods:
                if p.netns_name:
                    self.teardown.steps.insert(
                        0, (f"delete {p.netns_name}", lambda n=p.netns_name: delete_netns(n)))
        errors = self.teardown.run()
        if errors:
            log.warning("lab %s teardown: %s", self.name, errors)
        return errors

    def __enter__(self) -> "NodeLab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers for tests
    def exec(self, *argv: str, timeout: float = 60.0, check: bool = True):
        """Run a command inside the node namespace (``ip netns exec NODE …``)."""
        return run(in_netns(self.name, *argv), timeout=timeout, check=check)

    @property
    def netns_path(self) -> str:
        return netns_path(self.name)

    def reach_all_endpoints(self, service: str = "default/web:http", *, tries: int = 60) -> dict[str, int]:
        """curl the service's cluster IP from inside the node until every endpoint's pod has
        answered (each answer names its pod); returns {pod key: answers}. Raises LabError if an
        answer is unknown or some endpoint never answered."""
        assert self.truth is not None
        svc = next(s for s in self.truth.services if s.name == service)
        by_content = {p.content: p.key for p in self.truth.pods}
        want = {e.pod for e in svc.endpoints}
        seen: dict[str, int] = {}
        for _ in range(tries):
            out = self.exec("curl", "-s", "-m", "10", f"http://{svc.cluster_ip}:{svc.port}/", check=False).stdout.strip()
            if out not in by_content:
                raise LabError(f"unexpected answer through {svc.cluster_ip}:{svc.port}: {out!r}")
            seen[by_content[out]] = seen.get(by_content[out], 0) + 1
            if set(seen) >= want:
                return seen
        raise LabError(f"{service}: only {sorted(seen)} answered in {tries} tries, want {sorted(want)}")
