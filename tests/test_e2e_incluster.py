"""The two-node lab (tests/lab/cluster.py) collected through the Kubernetes API with a pod
per node, and its SSH path against a hostile node.

In-cluster: the tests' API server (tests/fixtures/k8s-api/apiserver.py, driven by the real
kubernetes client) runs each collector pod's command for real, "the node" being a process
inside that node's network namespace (``ip netns exec NODE sleep``): the pod's command —
the host's loader and nsenter into the node's namespaces, then the node's labreport — is
exactly what a kubelet would run. labreport itself only talks HTTP to the API on
127.0.0.1. Proven: ``labreport collect --all-nodes`` (as ``kubectl labreport collect``)
matches the lab's ground truth on both nodes with the very checks the SSH path passes
(tests/test_e2e_cluster.py), every node recorded as reached by its pod; a pod that never
starts, a pod killed mid-run and a 403 each leave the other node complete; no pod is left.

Hostile node over SSH: the worker prints without end, prints garbage, or hangs; the
master's data arrives complete each time and the worker is marked with the reason.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tests.test_e2e_cluster as e2e
from tests.conftest import missing_for_lab

_why = missing_for_lab("containerd", "runc", "dockerd", "/usr/sbin/sshd", "ssh-keygen", "curl", "iptables", "nsenter")
pytestmark = [pytest.mark.lab, pytest.mark.skipif(bool(_why), reason="node lab unavailable: " + ", ".join(_why))]

FIX = Path(__file__).resolve().parent / "fixtures" / "k8s-api"
LABREPORT = e2e.LABREPORT
KUBECTL = shutil.which("kubectl")


def kubectl_plugin(d: Path) -> dict[str, str]:
    """A PATH on which ``kubectl labreport`` finds our plugin: the same two lines pip writes
    for the ``kubectl-labreport`` console script (pyproject's [project.scripts])."""
    bin_dir = d / "plugin-bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "kubectl-labreport"
    shim.write_text(f"#!{sys.executable}\nfrom labreport.cli import run_kubectl\nrun_kubectl()\n")
    shim.chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


def _apiserver_module():
    spec = importlib.util.spec_from_file_location("lr_apiserver_e2e", FIX / "apiserver.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["lr_apiserver_e2e"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with e2e.running_lab("vxlan", tmp_path_factory) as lab:
        c = lab["c"]
        anchors = {role: subprocess.Popen(["ip", "netns", "exec", c.ns(role), "sleep", "3600"])
                   for role in ("master", "worker")}
        srv = _apiserver_module().ApiServer(token=e2e.TOKEN, docs=e2e.api_docs_from_truth(lab["truth"]))
        srv.node_hosts = {role: p.pid for role, p in anchors.items()}
        srv.log_dir = lab["dir"]
        try:
            time.sleep(0.2)  # ip netns exec has setns'd and exec'd sleep
            with srv:
                lab["api"] = srv
                lab["api_kubeconfig"] = srv.write_kubeconfig(lab["dir"] / "kubeconfig-incluster")
                yield lab
        finally:
            for p in anchors.values():
                p.kill()
                p.wait()


def incluster(lab, out: Path, *extra: str, kubectl: bool = False, timeout: float = 180) -> subprocess.CompletedProcess:
    exe = [KUBECTL, "labreport"] if kubectl else [LABREPORT]
    argv = exe + ["collect", "--kubeconfig", str(lab["api_kubeconfig"]), "--remote-command", str(lab["wrapper"]),
                  "--timeout", "60", "--out", str(out), "-q", *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=kubectl_plugin(lab["dir"]) if kubectl else None)


@pytest.fixture(scope="module")
def collected(lab):
    from labreport.snapshot import load

    out = lab["dir"] / "snap-incluster"
    cp = incluster(lab, out, "--all-nodes", kubectl=KUBECTL is not None)  # kubectl labreport collect --all-nodes
    assert cp.returncode == 0, cp.stderr
    return {"snap": load(out), "path": out, "stderr": cp.stderr}


def test_both_nodes_through_their_pods_match_the_truth(lab, collected):
    snap, ct, api = collected["snap"], lab["truth"], lab["api"]
    assert [n.name for n in snap.nodes] == ["master", "worker"]
    all_pods = {p.key for t in ct.nodes.values() for p in t.pods}
    for role in ("master", "worker"):
        node, t = snap.node(role), ct.nodes[role]
        assert node.status in ("ok", "partial"), node.error
        assert node.source == "pod" and node.transport["pod"] in api.pods_created
        assert node.transport["namespace"] == "labreport" and node.transport["node"] == role
        ids = {c.id for c in node.containers}
        assert t.all_container_ids() <= ids, t.all_container_ids() - ids
        pods = {f"{c.pod_namespace}/{c.pod_name}" for c in node.containers if c.pod_name}
        assert pods == {p.key for p in t.pods}, (role, pods)
        assert not (pods & (all_pods - {p.key for p in t.pods}))
        # the node's own uplink, seen from inside that node (the pod entered its namespaces)
        addrs = {a.local for ns in node.netns if ns.kind == "node" for link in ns.links for a in link.addresses}
        assert t.uplink_ip in addrs, (role, addrs)
    assert snap.cluster is not None and snap.cluster.error is None
    assert {n["metadata"]["name"] for n in snap.cluster.nodes} == {"master", "worker"}
    assert api.pods == {} and len(api.pods_created) == 2  # one pod per node, none left


def test_analysis_and_path_match_the_truth_as_over_ssh(lab, collected):
    # the SSH path's own checks, on the snapshot the pods brought back
    e2e.test_analysis_matches_the_truth_on_both_nodes(lab, collected)
    e2e.test_cross_node_path_from_master_to_a_worker_pod(lab, collected)


def test_pending_killed_and_forbidden_worker_leave_the_master(lab, collected):
    from labreport.snapshot import load

    api = lab["api"]
    want = {x.id for x in collected["snap"].node("master").containers}
    cases = [
        ("pending", {"pending_nodes": {"worker": "ErrImageNeverPull"}}, "did not start within 3s (Pending: ErrImageNeverPull"),
        ("killed", {"kill_after": {"worker": 0.5}}, "ended before the collector finished (Error, exit code 137"),
        ("forbidden", {"reject_nodes": {"worker": 'admission webhook "nodes.example" denied the request: not here'}},
         "the API refused the collector pod on worker: HTTP 403"),
    ]
    for label, knobs, reason in cases:
        for k, v in knobs.items():
            setattr(api, k, v)
        try:
            out = lab["dir"] / f"snap-incluster-{label}"
            cp = incluster(lab, out, "--nodes", "master,worker", "--in-cluster", "--pod-start-timeout", "3")
        finally:
            for k in knobs:
                setattr(api, k, {})
        assert cp.returncode == 10, (label, cp.stderr)
        snap = load(out)
        master, worker = snap.node("master"), snap.node("worker")
        assert master.status in ("ok", "partial") and {x.id for x in master.containers} == want, label
        assert worker.status == "failed" and reason in worker.error, (label, worker.error)
        assert worker.collectors[0].fix, label
        assert api.pods == {}, label


def test_hostile_worker_over_ssh_leaves_the_master_complete(lab, collected):
    """The worker's collector prints without end, prints garbage, or hangs."""
    from labreport.snapshot import load

    c, d = lab["c"], lab["dir"]
    want = {x.id for x in collected["snap"].node("master").containers}
    cases = {
        "endless": ("yes 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'",
                    "sent more than 4 MiB (--max-node-output)"),
        "garbage": ("head -c 50000 /dev/urandom; exit 0", "printed no snapshot"),
        "hang": ("sleep 600", "timed out after 10s"),
    }
    for label, (body, reason) in cases.items():
        wrapper = d / f"labreport-hostile-{label}"
        wrapper.write_text(lab["wrapper"].read_text().replace('  worker) exec', f'  worker) {body}; exec', 1))
        wrapper.chmod(0o755)
        out = d / f"snap-hostile-{label}"
        argv = ["ip", "netns", "exec", c.ns("master"), LABREPORT, "collect", "--nodes", "master,worker",
                "--ssh-config", str(lab["truth"].ssh_config), "--remote-command", str(wrapper),
                "--kubeconfig", str(lab["kubeconfig"]), "--timeout", "10", "--max-node-output", "4",
                "--out", str(out), "-q"]
        t0 = time.monotonic()
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert time.monotonic() - t0 < 60, label
        assert cp.returncode == 10, (label, cp.stderr)
        snap = load(out)
        master, worker = snap.node("master"), snap.node("worker")
        assert master.status in ("ok", "partial"), (label, master.error)
        assert {x.id for x in master.containers} == want, label
        assert worker.status == "failed" and reason in worker.error, (label, worker.error)
        # and nothing of it keeps running on the worker
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _running(wrapper.name):
            time.sleep(0.2)
        assert not _running(wrapper.name), (label, _running(wrapper.name))


def _running(marker: str) -> list[str]:
    found = []
    for pid in Path("/proc").iterdir():
        if pid.name.isdigit():
            try:
                cmd = (pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmd:
                found.append(cmd)
    return found
