"""`labreport collect --in-cluster` against the tests' own API server, driven by the real
kubernetes client: the server runs each collector pod's command for real (its kubelet
stand-in, tests/fixtures/k8s-api/apiserver.py), with "the node" a process of ours — here a
process in this machine's own namespaces, so the collector collects this machine; the
two-node lab version (each node a network namespace) is tests/test_e2e_incluster.py.

Proven: both nodes come back through pod logs, recorded as source "pod" with the pod's
name; the pod's command is the host's loader + nsenter (nothing of the image used) and
its spec is least privilege where it can be (no token, Never pull, a deadline); a node
whose pod never starts, a pod that is killed, an admission 403 and an RBAC 403 each leave
the other node's data and a clear reason; no pod is left; KUBECONFIG=a:b with --context
from b works; the RBAC manifests are valid against the Kubernetes schemas.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import missing_for_lab

FIX = Path(__file__).resolve().parent / "fixtures" / "k8s-api"
LABREPORT = str(Path(sys.executable).with_name("labreport"))
_spec = importlib.util.spec_from_file_location("lr_apiserver", FIX / "apiserver.py")
assert _spec and _spec.loader
apiserver = importlib.util.module_from_spec(_spec)
sys.modules["lr_apiserver"] = apiserver
_spec.loader.exec_module(apiserver)

_why = missing_for_lab("nsenter", "python3")
needs_root = pytest.mark.skipif(bool(_why), reason="pods need root and nsenter: " + ", ".join(_why))


def test_rbac_manifests_are_valid_kubernetes_objects():
    kv = pytest.importorskip("kubernetes_validate")
    from labreport.transport.kube import rbac_manifest

    docs = [d for d in yaml.safe_load_all(rbac_manifest()) if d]
    kinds = [(d["kind"], d["metadata"].get("namespace")) for d in docs]
    assert ("Namespace", None) in kinds and ("Role", "labreport") in kinds and ("ClusterRole", None) in kinds
    for d in docs:
        kv.validate(d, "1.28", strict=True)
    # least privilege: writes only to pods in the labreport namespace; no Secrets anywhere
    for d in docs:
        for rule in d.get("rules") or []:
            assert "secrets" not in rule["resources"]
            writes = set(rule["verbs"]) - {"get", "list", "watch"}
            if writes:
                assert d["kind"] == "Role" and d["metadata"]["namespace"] == "labreport", d
                assert rule["resources"] == ["pods"]
        if d["kind"] == "Role" and d["metadata"]["namespace"] == "kube-system":
            assert d["rules"][0]["resourceNames"] == ["kube-proxy", "kubeadm-config"]
    ns = next(d for d in docs if d["kind"] == "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_the_collector_pod_spec():
    kv = pytest.importorskip("kubernetes_validate")
    from labreport.transport.kube import FRAMER, collector_argv, pod_command, pod_manifest

    cmd = pod_command("amd64", False, collector_argv(None, "worker", 60, None))
    pod = pod_manifest("labreport-abc-0", "labreport", "worker", "registry.k8s.io/pause:3.9", cmd, run_id="abc",
                       deadline_s=150)
    kv.validate(pod, "1.28", strict=True)
    spec = pod["spec"]
    assert spec["nodeName"] == "worker" and spec["hostPID"] and spec["hostNetwork"]
    assert spec["automountServiceAccountToken"] is False and spec["activeDeadlineSeconds"] == 150
    assert spec["containers"][0]["imagePullPolicy"] == "Never"  # air-gapped: never pull
    assert cmd[0] == "/proc/1/root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"  # the host's loader
    assert cmd[3] == "/proc/1/root/usr/bin/nsenter" and cmd[4:11] == ["-t", "1", "-m", "-u", "-i", "-n", "-p"]
    assert cmd[12:15] == ["python3", "-c", FRAMER] and cmd[15:] == [
        "labreport", "collect", "--local", "--out", "-", "--name", "worker", "--timeout", "50"]
    assert pod_command("arm64", True, ["x"])[:2] == ["nsenter", "-t"]


def test_the_framer_and_decoder_round_trip_and_refuse_damage(tmp_path):
    from labreport.transport.kube import FRAMER, OutputTooLargeError, PodFailure, _Decoder

    payload = os.urandom(300_000).hex().encode()  # 600 kB of text
    src = tmp_path / "p"
    src.write_bytes(payload)
    cp = subprocess.run([sys.executable, "-c", FRAMER, "cat", str(src)], capture_output=True, timeout=30)
    lines = cp.stdout.splitlines()
    assert all(len(ln) < 16384 for ln in lines)  # no CRI partial lines
    out = tmp_path / "o"
    with open(out, "wb") as fh:
        d = _Decoder(fh, 10 << 20)
        d.feed(b"a stderr line\n" + cp.stdout)
    assert d.end == (0, len(payload), __import__("hashlib").sha256(payload).hexdigest())
    assert out.read_bytes() == payload and d.stderr_tail() == "a stderr line"
    with open(out, "wb") as fh, pytest.raises(OutputTooLargeError):
        _Decoder(fh, 100_000).feed(cp.stdout)  # the cap holds on the inflated size
    with open(out, "wb") as fh, pytest.raises(PodFailure, match="not base64"):
        _Decoder(fh, 1 << 20).feed(b"LRD1:!!!!\n")


@pytest.fixture
def anchors():
    """Two processes standing for two nodes' init (here: in this machine's namespaces)."""
    procs = [subprocess.Popen(["sleep", "600"]) for _ in range(2)]
    yield {"master": procs[0].pid, "worker": procs[1].pid}
    for p in procs:
        p.kill()
        p.wait()


@pytest.fixture
def api(tmp_path, anchors):
    srv = apiserver.ApiServer(token="incluster-token")
    srv.node_hosts = dict(anchors)
    srv.log_dir = tmp_path
    with srv:
        yield srv


def _collect(srv, tmp_path, *extra, timeout=120, env=None):
    kc = srv.write_kubeconfig(tmp_path / "kubeconfig")
    out = tmp_path / "snap"
    argv = [LABREPORT, "collect", "--kubeconfig", str(kc), "--out", str(out), "-q", "--timeout", "60",
            "--remote-command", LABREPORT, *extra]
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    return cp, out


@needs_root
def test_all_nodes_through_pods(api, tmp_path):
    from labreport.snapshot import load

    cp, out = _collect(api, tmp_path, "--all-nodes")
    assert cp.returncode == 0, cp.stderr
    snap = load(out)
    assert [n.name for n in snap.nodes] == ["master", "worker"]
    for n in snap.nodes:
        assert n.status in ("ok", "partial") and n.source == "pod", n.error
        assert n.processes and n.netns
        assert n.transport["pod"].startswith("labreport-") and n.transport["namespace"] == "labreport"
        assert n.transport["image"] == "registry.k8s.io/pause:3.6"  # the node's own pause image
    assert len(api.pods_created) == 2 and api.pods == {}  # every pod removed
    created = [r for r in api.requests if r[0] == "POST"]
    assert len(created) == 2
    # the collector pods are not reported as the cluster's pods
    assert not [p for p in snap.cluster.pods if p["metadata"]["name"].startswith("labreport-")]


@needs_root
def test_pending_killed_and_forbidden_nodes_leave_the_other_node(api, tmp_path):
    from labreport.snapshot import load

    api.pending_nodes = {"worker": "ErrImageNeverPull"}
    cp, out = _collect(api, tmp_path, "--nodes", "master,worker", "--in-cluster", "--pod-start-timeout", "3")
    assert cp.returncode == 10, cp.stderr
    snap = load(out)
    m, w = snap.node("master"), snap.node("worker")
    assert m.status in ("ok", "partial") and m.processes
    assert w.status == "failed" and "did not start within 3s (Pending: ErrImageNeverPull" in w.error, w.error
    assert "describe pod" in w.collectors[0].fix
    assert api.pods == {}

    api.pending_nodes = {}
    # killed as soon as it runs (at 0.3 s, the collector, faster now, was seen done already)
    api.kill_after = {"master": 0.0}
    cp, out = _collect(api, tmp_path, "--nodes", "master,worker", "--in-cluster")
    assert cp.returncode == 10, cp.stderr
    snap = load(out)
    m, w = snap.node("master"), snap.node("worker")
    assert w.status in ("ok", "partial") and w.processes
    assert m.status == "failed" and "ended before the collector finished (Error, exit code 137" in m.error, m.error
    assert api.pods == {}

    api.kill_after = {}
    api.reject_nodes = {"worker": "admission webhook \"no-privileged.example\" denied the request: no privileged pods"}
    cp, out = _collect(api, tmp_path, "--nodes", "master,worker", "--in-cluster")
    assert cp.returncode == 10, cp.stderr
    snap = load(out)
    assert snap.node("master").status in ("ok", "partial")
    w = snap.node("worker")
    assert w.status == "failed" and w.error.startswith("the API refused the collector pod on worker: HTTP 403")
    assert "no privileged pods" in w.error and "rbac.yaml" in w.collectors[0].fix
    assert api.pods == {}


@needs_root
def test_rbac_forbidden_everywhere_fails_every_node_with_the_fix(api, tmp_path):
    from labreport.snapshot import load

    api.deny = {("create", "pods")}
    cp, out = _collect(api, tmp_path, "--all-nodes")
    assert cp.returncode == 11, cp.stderr  # every node failed: its own exit code
    snap = load(out)
    for n in snap.nodes:
        assert n.status == "failed" and 'cannot create resource "pods"' in n.error
        fix = n.collectors[0].fix
        path = fix.split("kubectl apply -f ", 1)[1].split()[0]
        assert path.endswith("rbac.yaml") and Path(path).is_file()  # the shipped manifest, applicable as printed
    assert snap.cluster.error is None and snap.cluster.nodes  # the API objects are still there
    assert api.pods_created == []


@needs_root
def test_kubeconfig_list_merged_and_context_from_the_second_file(api, tmp_path):
    from labreport.snapshot import load

    a = tmp_path / "a.yaml"
    a.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": "http://127.0.0.1:9"}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "nobody"}}],
        "users": [{"name": "nobody", "user": {"token": "x"}}]}))
    b = api.write_kubeconfig(tmp_path / "b.yaml", context="lab")
    env = dict(os.environ, KUBECONFIG=f"{a}{os.pathsep}{b}")
    out = tmp_path / "snap"
    argv = [LABREPORT, "collect", "--all-nodes", "--context", "lab", "--out", str(out), "-q",
            "--remote-command", LABREPORT, "-j", "1"]
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert cp.returncode == 0, cp.stderr
    snap = load(out)
    assert [n.source for n in snap.nodes] == ["pod", "pod"]
    assert snap.cluster.error is None and snap.cluster.server == api.url
    # without --context the first file's current context (a dead server) is the one used
    cp = subprocess.run(argv[:3] + argv[5:], capture_output=True, text=True, timeout=120, env=env)
    assert cp.returncode == 6 and "could not be listed" in cp.stderr, cp.stderr


@needs_root
def test_deadline_ends_a_run_whose_pods_never_start_and_leaves_no_pod(api, tmp_path):
    from labreport.snapshot import load

    api.pending_nodes = {"master": "ContainerCreating", "worker": "ContainerCreating"}
    t0 = time.monotonic()
    cp, out = _collect(api, tmp_path, "--all-nodes", "--deadline", "2", "--pod-start-timeout", "300")
    assert time.monotonic() - t0 < 15
    assert cp.returncode == 11, cp.stderr
    assert all(n.status == "failed" for n in load(out).nodes)
    assert api.pods == {} and len(api.pods_created) == 2


@needs_root
def test_ctrl_c_deletes_every_pod_and_writes_what_arrived(api, tmp_path):
    import signal

    from labreport.snapshot import load

    api.pending_nodes = {"worker": "ContainerCreating"}  # the worker's pod waits; the master's finishes
    kc = api.write_kubeconfig(tmp_path / "kubeconfig")
    out = tmp_path / "snap"
    # PYTHONFAULTHANDLER: should the run not end after the SIGINT, a SIGABRT makes it print
    # every thread's stack (faulthandler), which the failure then shows
    proc = subprocess.Popen([LABREPORT, "collect", "--kubeconfig", str(kc), "--all-nodes", "--out", str(out), "-q",
                             "--remote-command", LABREPORT, "--pod-start-timeout", "300"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONFAULTHANDLER": "1"},
                            # SIGINT as a terminal's Ctrl-C finds it, whoever started pytest: a
                            # command run with & by a shell without job control (a CI script in
                            # the background) ignores SIGINT, and Python then leaves it ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(list((out / "nodes").glob("*.json"))) < 1:
        time.sleep(0.1)
    assert len(api.pods) == 1  # the worker's, still Pending
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate(timeout=30)
        pytest.fail(f"collect did not end within 60 s of its SIGINT; its threads then:\n{err}")
    assert proc.returncode == 130, err
    assert api.pods == {} and len(api.pods_created) == 2
    snap = load(out)
    assert snap.node("master").status in ("ok", "partial") and snap.node("master").processes
    assert snap.node("worker").status == "failed"


@needs_root
def test_a_killed_coordinators_expired_pods_are_swept_by_the_next_run(api, tmp_path):
    from labreport.transport.kube import EXPIRES_LABEL, LABELS, RUN_LABEL, pod_manifest

    stale = pod_manifest("labreport-dead0000-0", "labreport", "master", "registry.k8s.io/pause:3.6", ["sleep", "1"],
                         run_id="dead0000", deadline_s=10)
    stale["metadata"]["labels"][EXPIRES_LABEL] = str(int(time.time()) - 5)  # its run died long ago
    fresh = pod_manifest("labreport-live0000-0", "labreport", "master", "registry.k8s.io/pause:3.6", ["sleep", "1"],
                         run_id="live0000", deadline_s=600)  # another run's, still in time: kept
    api.pending_nodes = {"master": "ContainerCreating"}
    for body in (stale, fresh):
        with api.pods_lock:
            pod = apiserver._Pod(api, "labreport", body)
            api.pods[("labreport", body["metadata"]["name"])] = pod
        pod.start()
    api.pending_nodes = {}
    cp, _ = _collect(api, tmp_path, "--nodes", "worker", "--in-cluster")
    assert cp.returncode == 0, cp.stderr
    left = {name for (_ns, name) in api.pods}
    assert left == {"labreport-live0000-0"}, left
    assert all(api.pods[("labreport", n)].obj["metadata"]["labels"][RUN_LABEL] == "live0000" for n in left)
    assert LABELS["app.kubernetes.io/managed-by"] == "labreport"


@needs_root
def test_selector_picks_nodes_from_the_api(api, tmp_path):
    from labreport.snapshot import load

    cp, out = _collect(api, tmp_path, "-l", "node-role.kubernetes.io/control-plane")
    assert cp.returncode == 0, cp.stderr
    assert [n.name for n in load(out).nodes] == ["master"]
    node_lists = [r for r in api.requests if r[0] == "GET" and r[1] == "/api/v1/nodes" and "labelSelector" in r[2]]
    assert node_lists and node_lists[0][2]["labelSelector"] == ["node-role.kubernetes.io/control-plane"]
    assert len(api.pods_created) == 1
    cp, _ = _collect(api, tmp_path, "-l", "no-such-label=x")
    assert cp.returncode == 6 and "the API lists no node matching 'no-such-label=x'" in cp.stderr


def test_all_nodes_over_ssh_takes_the_names_from_the_api(tmp_path):
    from labreport.snapshot import load

    srv = apiserver.ApiServer(token="t")
    with srv:
        kc = srv.write_kubeconfig(tmp_path / "kc")
        cfg = tmp_path / "ssh_config"
        cfg.write_text("Host master worker\n  HostName 127.0.0.1\n  Port 9\n")  # refused: fast failures
        out = tmp_path / "snap"
        cp = subprocess.run([LABREPORT, "collect", "--all-nodes", "--ssh", "--kubeconfig", str(kc), "--ssh-config",
                             str(cfg), "--timeout", "10", "--out", str(out), "-q"],
                            capture_output=True, text=True, timeout=120)
    assert cp.returncode == 11, cp.stderr
    snap = load(out)
    assert [(n.name, n.source) for n in snap.nodes] == [("master", "ssh"), ("worker", "ssh")]
    assert all("connection refused" in n.error for n in snap.nodes)
    assert srv.pods_created == []  # SSH: no pod


def test_in_cluster_config_when_run_in_a_pod(tmp_path, monkeypatch):
    """No kubeconfig anywhere and the service account of a pod: the client's own in-cluster
    loader is used (its token and CA paths pointed at files of ours)."""
    import kubernetes.config.incluster_config as incluster

    from labreport.cluster.api import NoCluster, load_client

    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("pod-token-123")
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    monkeypatch.setattr(incluster, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    client, where = load_client(None, None)
    assert where == "in-cluster service account"
    assert client.configuration.host == "https://10.96.0.1:443"
    assert "pod-token-123" in str(client.configuration.api_key) + str(client.configuration.get_api_key_with_prefix("BearerToken"))
    with pytest.raises(NoCluster, match="--context lab: there is no kubeconfig"):
        load_client(None, "lab")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(NoCluster, match="not running in a cluster"):
        load_client(None, None)
