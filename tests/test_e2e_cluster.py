"""Two real nodes on this machine (tests/lab/cluster.py: master and worker as network
namespaces, each with its own containerd — the worker also a dockerd — CNI bridge and pod
range, flannel-style VXLAN between them, kube-proxy's rules on both, sshd on both uplinks)
and a kube-apiserver stand-in inside the master namespace serving API JSON built from the
lab's ground truth. Everything labreport does runs inside the master namespace, as a
student runs it on the master:

    labreport collect --nodes master,worker --ssh-config CFG --kubeconfig KC --out DIR

Proven: both nodes come back over SSH with exactly their own pods, containers and veth
pairs (although /var/run/netns holds both nodes' pod namespaces), services decoded on both;
the API objects cross-check against the nodes; a pod added on the worker shows up in
`labreport diff` as exactly its containers and sandbox; with the worker's sshd gone the
master's data is intact and the worker is marked failed with the reason.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import missing_for_lab

_why = missing_for_lab("containerd", "runc", "dockerd", "/usr/sbin/sshd", "ssh-keygen", "curl", "iptables")
pytestmark = [pytest.mark.lab, pytest.mark.skipif(bool(_why), reason="node lab unavailable: " + ", ".join(_why))]

FIX = Path(__file__).resolve().parent / "fixtures" / "k8s-api"
LABREPORT = str(Path(sys.executable).with_name("labreport"))
TOKEN = "lab-token-" + uuid.uuid4().hex[:8]


# --------------------------------------------------------------------------- API documents


def _doc(name: str) -> dict:
    return json.loads((FIX / name).read_text())


def api_docs_from_truth(ct) -> dict[str, dict]:
    """The fixture documents (real API shapes) rewritten to the lab's actual nodes, pods
    (names, uids, IPs, container ids), services and endpoints."""
    docs = {name: _doc(name) for name in (
        "version.json", "nodes.json", "pods.json", "services.json", "endpointslices.json", "endpoints.json",
        "deployments.json", "replicasets.json", "hpas.json", "configmap-kube-proxy.json",
        "configmap-kubeadm-config.json")}
    master_ip = ct.nodes["master"].uplink_ip
    # nodes
    for node in docs["nodes.json"]["items"]:
        role = node["metadata"]["name"]
        t = ct.nodes[role]
        node["spec"]["podCIDR"] = t.pod_cidr
        node["spec"]["podCIDRs"] = [t.pod_cidr]
        node["status"]["addresses"][0]["address"] = t.uplink_ip
        node["metadata"]["annotations"]["flannel.alpha.coreos.com/public-ip"] = t.uplink_ip
    # pods: one API Pod per lab pod, in the fixture pod's shape
    template = docs["pods.json"]["items"][1]
    pods = []
    for role in ("master", "worker"):
        t = ct.nodes[role]
        for p in t.pods:
            pod = copy.deepcopy(template)
            md = pod["metadata"]
            md.update(name=p.name, uid=p.uid, namespace=p.namespace)
            for k in ("generateName", "ownerReferences"):
                md.pop(k, None)
            md["labels"] = {"app": "web"}
            pod["spec"]["nodeName"] = role
            base_c = pod["spec"]["containers"][0]
            pod["spec"]["containers"] = [dict(copy.deepcopy(base_c), name=c.name, image=c.image) for c in p.containers]
            st = pod["status"]
            st["hostIP"], st["podIP"], st["podIPs"] = t.uplink_ip, p.ip, [{"ip": p.ip}]
            base_s = st["containerStatuses"][0]
            prefix = "docker://" if p.runtime == "docker" else "containerd://"
            st["containerStatuses"] = [dict(copy.deepcopy(base_s), name=c.name, image=c.image, containerID=prefix + c.id)
                                       for c in p.containers]
            md["managedFields"][1]["fieldsV1"]["f:status"]["f:podIPs"] = {".": {}, f'k:{{"ip":"{p.ip}"}}': {".": {}, "f:ip": {}}}
            pods.append(pod)
    docs["pods.json"]["items"] = pods
    # services: the kubernetes Service (kept) and the lab's services in the fixture's shape
    kube_svc, web_tmpl = docs["services.json"]["items"]
    slice_kube, slice_tmpl = docs["endpointslices.json"]["items"]
    ep_kube, ep_tmpl = docs["endpoints.json"]["items"]
    slice_kube["endpoints"][0]["addresses"] = [master_ip]
    ep_kube["subsets"][0]["addresses"] = [{"ip": master_ip}]
    services, slices, endpoints = [kube_svc], [slice_kube], [ep_kube]
    pods_by_key = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in pods}
    for s in ct.nodes["master"].services:
        svc = copy.deepcopy(web_tmpl)
        md = svc["metadata"]
        md.update(name=s.service, namespace=s.namespace, uid=str(uuid.uuid4()))
        md.pop("annotations", None)
        port = {"name": s.port_name, "protocol": s.protocol.upper(), "port": s.port, "targetPort": s.endpoints[0].port}
        if s.node_port:
            port["nodePort"] = s.node_port
        svc["spec"].update(ports=[port], clusterIP=s.cluster_ip, clusterIPs=[s.cluster_ip],
                           type="NodePort" if s.node_port else "ClusterIP")
        services.append(svc)
        sl = copy.deepcopy(slice_tmpl)
        sl["metadata"].update(name=f"{s.service}-{uuid.uuid4().hex[:5]}", namespace=s.namespace, uid=str(uuid.uuid4()))
        sl["metadata"]["labels"]["kubernetes.io/service-name"] = s.service
        sl["metadata"]["ownerReferences"][0].update(name=s.service, uid=md["uid"])
        sl["ports"] = [{"name": s.port_name, "protocol": s.protocol.upper(), "port": s.endpoints[0].port}]
        sl["endpoints"] = []
        ep = copy.deepcopy(ep_tmpl)
        ep["metadata"].update(name=s.service, namespace=s.namespace, uid=str(uuid.uuid4()))
        addrs = []
        for e in s.endpoints:
            pod = pods_by_key[e.pod]
            ref = {"kind": "Pod", "namespace": pod["metadata"]["namespace"], "name": pod["metadata"]["name"],
                   "uid": pod["metadata"]["uid"]}
            sl["endpoints"].append({"addresses": [e.ip], "conditions": {"ready": True, "serving": True, "terminating": False},
                                    "targetRef": ref, "nodeName": pod["spec"]["nodeName"]})
            addrs.append({"ip": e.ip, "nodeName": pod["spec"]["nodeName"], "targetRef": ref})
        ep["subsets"] = [{"addresses": addrs, "ports": [{"name": s.port_name, "port": s.endpoints[0].port, "protocol": s.protocol.upper()}]}]
        slices.append(sl)
        endpoints.append(ep)
    docs["services.json"]["items"] = services
    docs["endpointslices.json"]["items"] = slices
    docs["endpoints.json"]["items"] = endpoints
    kp = docs["configmap-kube-proxy.json"]["data"]
    kp["kubeconfig.conf"] = kp["kubeconfig.conf"].replace("192.168.56.10", master_ip)
    return docs


# --------------------------------------------------------------------------- the lab


REMOTE_WRAPPER = """#!/bin/sh
# The lab's nodes share one machine, so each node's containerd/dockerd listens on a socket
# of its own; on a real node labreport finds the default sockets by itself. This picks the
# node's sockets by the --name labreport passes, then runs the real labreport.
name=""; prev=""
for a in "$@"; do [ "$prev" = "--name" ] && name="$a"; prev="$a"; done
case "$name" in
{cases}
esac
exec {labreport} "$@"
"""


@contextlib.contextmanager
def running_lab(overlay: str, tmp_path_factory):
    """The two-node lab with its API stand-in in the master namespace (torn down after)."""
    from tests.lab.cluster import TwoNodeCluster

    c = TwoNodeCluster(overlay=overlay)
    api = None
    try:
        ct = c.build()
        d = tmp_path_factory.mktemp(f"e2e-cluster-{overlay}")
        cases = []
        for role, t in ct.nodes.items():
            extra = f" --cri-socket {t.containerd_socket}"
            if t.docker_host:
                extra += f" --docker-host {t.docker_host}"
            cases.append(f'  {role}) exec {LABREPORT} "$@"{extra} ;;')
        wrapper = d / "labreport-lab"
        wrapper.write_text(REMOTE_WRAPPER.format(cases="\n".join(cases), labreport=LABREPORT))
        wrapper.chmod(0o755)
        # the API stand-in, inside the master namespace, on its loopback
        docs_dir = d / "api"
        docs_dir.mkdir()
        for name, doc in api_docs_from_truth(ct).items():
            (docs_dir / name).write_text(json.dumps(doc, indent=1))
        port_file = d / "api.port"
        api = subprocess.Popen(["ip", "netns", "exec", c.ns("master"), sys.executable, str(FIX / "apiserver.py"),
                                "--docs", str(docs_dir), "--token", TOKEN, "--port-file", str(port_file)],
                               stdout=subprocess.DEVNULL, stderr=open(d / "api.log", "w"), start_new_session=True)
        deadline = time.monotonic() + 15
        while not port_file.exists():
            if api.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("API stand-in did not start: " + (d / "api.log").read_text())
            time.sleep(0.05)
        port = int(port_file.read_text())
        kubeconfig = d / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "kubernetes", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "contexts": [{"name": "kubernetes-admin@kubernetes", "context": {"cluster": "kubernetes", "user": "kubernetes-admin"}}],
            "current-context": "kubernetes-admin@kubernetes",
            "users": [{"name": "kubernetes-admin", "user": {"token": TOKEN}}]}))
        yield {"c": c, "truth": ct, "dir": d, "wrapper": wrapper, "kubeconfig": kubeconfig}
    finally:
        try:
            if api is not None and api.poll() is None:
                os.killpg(api.pid, signal.SIGTERM)
                api.wait(10)
        finally:
            c.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running_lab("vxlan", tmp_path_factory) as lab:
        yield lab


def collect(lab, out: Path, nodes: str = "master,worker", *extra: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """`labreport collect` run inside the master namespace, as on a real master."""
    c = lab["c"]
    argv = ["ip", "netns", "exec", c.ns("master"), LABREPORT, "collect", "--nodes", nodes,
            "--ssh-config", str(lab["truth"].ssh_config), "--remote-command", str(lab["wrapper"]),
            "--kubeconfig", str(lab["kubeconfig"]), "--timeout", "60", "--out", str(out), *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def collected(cluster):
    out = cluster["dir"] / "snap"
    t0 = time.monotonic()
    cp = collect(cluster, out)
    took = time.monotonic() - t0
    assert cp.returncode == 0, cp.stderr
    from labreport.snapshot import load

    return {"snap": load(out), "path": out, "stderr": cp.stderr, "seconds": took}


# --------------------------------------------------------------------------- tests


def test_curl_from_master_through_cluster_ip_reaches_a_worker_pod(cluster):
    c, ct = cluster["c"], cluster["truth"]
    web = next(s for s in ct.nodes["master"].services if s.service == "web")
    worker_pages = {p.content for p in ct.nodes["worker"].pods}
    seen = set()
    for _ in range(60):
        cp = c.exec("master", "curl", "-s", "-m", "3", f"http://{web.cluster_ip}:{web.port}/", check=False, timeout=10)
        assert cp.returncode == 0, cp.stderr
        seen.add(cp.stdout.strip())
        if seen & worker_pages:
            break
    assert seen & worker_pages, seen


def test_both_nodes_collected_over_ssh_match_the_truth(cluster, collected):
    snap, ct = collected["snap"], cluster["truth"]
    assert [n.name for n in snap.nodes] == ["master", "worker"]
    all_pods = {p.key for t in ct.nodes.values() for p in t.pods}
    for role in ("master", "worker"):
        node, t = snap.node(role), ct.nodes[role]
        assert node.status in ("ok", "partial"), node.error
        assert node.source == "ssh" and node.transport["host"] == t.uplink_ip
        ids = {c.id for c in node.containers}
        assert t.all_container_ids() <= ids, t.all_container_ids() - ids
        pods = {f"{c.pod_namespace}/{c.pod_name}" for c in node.containers if c.pod_name}
        assert pods == {p.key for p in t.pods}, (role, pods)
        assert not (pods & (all_pods - {p.key for p in t.pods}))
    assert snap.cluster is not None and snap.cluster.error is None
    assert {n["metadata"]["name"] for n in snap.cluster.nodes} == {"master", "worker"}


def test_analysis_matches_the_truth_on_both_nodes(cluster, collected):
    from labreport.analysis import analyze

    snap, ct = collected["snap"], cluster["truth"]
    # the trap this proves we avoid: both nodes' containerd pod namespaces sit in the one
    # /var/run/netns every node's collector sees
    shared = {p.netns_name for t in ct.nodes.values() for p in t.pods if p.netns_name}
    assert {n.name for n in Path("/var/run/netns").iterdir()} >= shared
    assert any(p.netns_name for p in ct.nodes["master"].pods) and any(p.netns_name for p in ct.nodes["worker"].pods)
    analysis = analyze(snap)
    for role in ("master", "worker"):
        na, t = analysis.node(role), ct.nodes[role]
        got = {(v.host_ifname, ip.split("/")[0]) for v in na.veth_pairs for ip in v.pod_ips}
        want = {(p.veth.host_ifname, p.ip) for p in t.pods}
        assert got == want, (role, got, want)  # only this node's pods, though /var/run/netns holds both
        assert {p.key for p in na.pods} >= {p.key for p in t.pods}
        for ts in t.services:
            rec = next(r for r in na.services if r.cluster_ip == ts.cluster_ip and r.port == ts.port)
            assert {e.address for e in rec.endpoints} == {e.address for e in ts.endpoints}
    # API vs nodes: everything agrees except the kubernetes Service, which the lab's
    # kube-proxy rules do not carry (there is no apiserver behind 10.96.0.1 here)
    got = sorted((m.kind, m.node, m.subject) for m in analysis.mismatches)
    assert got == [("service-missing", "master", "default/kubernetes:https"),
                   ("service-missing", "worker", "default/kubernetes:https")], analysis.mismatches


def test_cross_node_path_from_master_to_a_worker_pod(cluster, collected):
    """The snapshot carries what the report's path needs: from the master through the
    cluster IP, over flannel.1 and the uplinks, to a pod on the worker."""
    from labreport.analysis import analyze
    from labreport.analysis.path import trace_path

    snap, ct = collected["snap"], cluster["truth"]
    analysis = analyze(snap)
    worker_pods = {p.key for p in ct.nodes["worker"].pods}
    path = trace_path(snap, analysis, service="default/web:http", from_node="master")
    assert path.complete, path.note
    assert (path.from_node, path.to_node) == ("master", "worker")
    assert path.target_pod in worker_pods
    target = ct.nodes["worker"].pod(path.target_pod)
    where = [(h.node, h.where) for h in path.hops]
    assert ("master", "flannel.1") in where and ("worker", "flannel.1") in where, where
    assert ("master", "eth0") in where and ("worker", "eth0") in where, where
    assert ("worker", target.veth.host_ifname) in where, where
    assert path.target == f"{target.ip}:80"


def test_diff_after_adding_a_pod_on_the_worker(cluster, collected):
    from labreport.diff import diff_snapshots
    from labreport.snapshot import load

    c, ct = cluster["c"], cluster["truth"]
    worker = c.labs["worker"]
    image = ct.nodes["worker"].pods[0].containers[0].image
    content = "served by default/worker-extra"
    vol = worker._volume("worker-extra", content)
    new = worker._run_cri_pod("worker-extra", [("web", image, None, [(str(vol), "/www")])], content)
    out = cluster["dir"] / "snap-after"
    cp = collect(cluster, out)
    assert cp.returncode == 0, cp.stderr
    d = diff_snapshots(collected["snap"], load(out))
    w = d["nodes"]["worker"]
    assert {x["id"] for x in w["containers"]["added"]} == {new.sandbox_id} | {x.id for x in new.containers}
    assert w["containers"]["removed"] == []
    assert [x["id"] for x in w["sandboxes"]["added"]] == [new.sandbox_id]
    assert [(p["pod"], p["uid"]) for p in w["pods"]["added"]] == [(new.key, new.uid)]
    assert [(v["host_ifname"], v["pod_ips"]) for v in w["veth_pairs"]["added"]] == [(new.veth.host_ifname, [f"{new.ip}/24"])]
    assert [x["name"] for x in w["links"]["added"]] == [new.veth.host_ifname]
    m = d["nodes"]["master"]
    assert all(not m[k]["added"] and not m[k]["removed"] for k in ("containers", "pods", "veth_pairs", "links"))


def test_a_node_lost_mid_run_times_out_alone(cluster, collected):
    """The worker's network goes away while its collector runs: the worker times out
    (per-node timeout), the master's data arrives in full."""
    c, d = cluster["c"], cluster["dir"]
    slow = d / "labreport-slow"
    # same as the lab wrapper, but the worker's side waits 2 s first (the window to cut it)
    slow.write_text(cluster["wrapper"].read_text().replace('  worker) exec', '  worker) sleep 2; exec'))
    slow.chmod(0o755)
    out = d / "snap-cut"
    argv = ["ip", "netns", "exec", c.ns("master"), LABREPORT, "collect", "--nodes", "master,worker",
            "--ssh-config", str(cluster["truth"].ssh_config), "--remote-command", str(slow),
            "--kubeconfig", str(cluster["kubeconfig"]), "--timeout", "8", "--out", str(out), "-q"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        c.exec("worker", "ip", "link", "set", "eth0", "down")
        _, err = proc.communicate(timeout=60)
    finally:
        c.exec("worker", "ip", "link", "set", "eth0", "up")
        c.exec("worker", "ip", "route", "replace", "default", "via", c.gateway)
    assert proc.returncode == 10, err
    from labreport.snapshot import load

    snap = load(out)
    worker, master = snap.node("worker"), snap.node("master")
    assert worker.status == "failed" and worker.error.startswith("timed out after 8s"), worker.error
    assert master.status in ("ok", "partial")
    assert {x.id for x in master.containers} == {x.id for x in collected["snap"].node("master").containers}


def _runs(pids: list[int], needle: str) -> bool:
    """Whether one of ``pids`` has ``needle`` in its command line."""
    for pid in pids:
        try:
            if needle.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def test_worker_sshd_killed_mid_run(cluster, collected):
    """The worker's sshd and its session die while the worker's collector runs: the worker
    is marked failed (the session broke), the master's data arrives in full."""
    c, d = cluster["c"], cluster["dir"]
    slow = d / "labreport-slow2"
    slow.write_text(cluster["wrapper"].read_text().replace('  worker) exec', '  worker) sleep 3; exec'))
    slow.chmod(0o755)
    out = d / "snap-killed"
    argv = ["ip", "netns", "exec", c.ns("master"), LABREPORT, "collect", "--nodes", "master,worker",
            "--ssh-config", str(cluster["truth"].ssh_config), "--remote-command", str(slow),
            "--kubeconfig", str(cluster["kubeconfig"]), "--timeout", "30", "--out", str(out), "-q"]
    sshd = c.ssh["worker"].daemon
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        # the worker's collecting session is up: the slow wrapper runs under its sshd (an earlier,
        # short session of the transport, e.g. its probe, must not be taken for it)
        while not _runs(_descendants(sshd.pid), str(slow)) and time.monotonic() < deadline:
            time.sleep(0.05)
        session = _descendants(sshd.pid)
        assert _runs(session, str(slow)), "no ssh session running the collector on the worker"
        c.ssh["worker"].stop()
        for pid in session:  # the session's sshd, the shell, the sleeping wrapper
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 10, err
    from labreport.snapshot import load

    snap = load(out)
    worker, master = snap.node("worker"), snap.node("master")
    assert worker.status == "failed", worker
    assert worker.error.startswith("the ssh session to worker ended before the collector finished"), worker.error
    assert master.status in ("ok", "partial")
    assert {x.id for x in master.containers} == {x.id for x in collected["snap"].node("master").containers}


def test_a_dead_node_does_not_lose_the_other(cluster, collected):
    from labreport.snapshot import load

    c = cluster["c"]
    c.ssh["worker"].stop()
    out = cluster["dir"] / "snap-dead"
    cp = collect(cluster, out)
    assert cp.returncode == 10, cp.stderr  # partial
    snap = load(out)
    master, worker = snap.node("master"), snap.node("worker")
    assert worker.status == "failed" and "connection refused" in worker.error
    assert worker.collectors[0].fix
    assert master.status in ("ok", "partial")
    want = {x.id for x in collected["snap"].node("master").containers}
    assert {x.id for x in master.containers} == want
    assert "node worker: failed: connection refused" in cp.stderr


def test_host_gw_lab_collected_and_traced(tmp_path_factory):
    """The same over host-gw routing (no overlay device): both nodes match the truth and the
    path from the master reaches a worker pod through the routes and the uplinks."""
    from labreport.analysis import analyze
    from labreport.analysis.path import trace_path
    from labreport.snapshot import load

    with running_lab("host-gw", tmp_path_factory) as lab:
        ct = lab["truth"]
        out = lab["dir"] / "snap"
        cp = collect(lab, out)
        assert cp.returncode == 0, cp.stderr
        snap = load(out)
        analysis = analyze(snap)
        for role in ("master", "worker"):
            got = {(v.host_ifname, ip.split("/")[0]) for v in analysis.node(role).veth_pairs for ip in v.pod_ips}
            assert got == {(p.veth.host_ifname, p.ip) for p in ct.nodes[role].pods}, role
        assert [m.subject for m in analysis.mismatches] == ["default/kubernetes:https"] * 2
        path = trace_path(snap, analysis, service="default/web:http", from_node="master")
        assert path.complete and path.to_node == "worker", path
        where = [(h.node, h.where) for h in path.hops]
        assert ("master", "eth0") in where and ("worker", "eth0") in where
        assert not [w for w in where if w[1] == "flannel.1"]
        target = ct.nodes["worker"].pod(path.target_pod)
        assert ("worker", target.veth.host_ifname) in where
