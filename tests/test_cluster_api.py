"""labreport.cluster.api against a small HTTP server of the tests' own that answers like
kube-apiserver with real API JSON (tests/fixtures/k8s-api/); the real kubernetes client
talks HTTP to it."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import pytest

from labreport.cluster import api
from labreport.cluster.api import collect_cluster
from labreport.cluster.manifests import LAST_APPLIED, applied_manifest, manifest_source
from labreport.cluster.redact import placeholder, scrub
from labreport.snapshot import Snapshot, dumps, from_dict

FIX = Path(__file__).resolve().parent / "fixtures" / "k8s-api"


def _load_apiserver():
    spec = importlib.util.spec_from_file_location("k8s_test_apiserver", FIX / "apiserver.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


apiserver = _load_apiserver()


@pytest.fixture
def server():
    with apiserver.ApiServer(token="kc-token-8f2e1d") as srv:
        yield srv


@pytest.fixture
def kubeconfig(server, tmp_path):
    return server.write_kubeconfig(tmp_path / "kubeconfig")


def _served_items(name: str) -> list[dict]:
    return json.loads((FIX / name).read_text())["items"]


def test_lists_every_kind_through_the_real_paths(server, kubeconfig):
    co = collect_cluster(kubeconfig=str(kubeconfig), timeout=5)
    assert co.error is None, co.error
    assert co.server == server.url
    assert co.version["gitVersion"] == "v1.28.2"
    paths = {p for _, p, _, _ in server.requests}
    for p in ("/api/v1/nodes", "/api/v1/pods", "/api/v1/services", "/api/v1/endpoints",
              "/apis/discovery.k8s.io/v1/endpointslices", "/apis/apps/v1/deployments",
              "/apis/apps/v1/replicasets", "/apis/autoscaling/v2/horizontalpodautoscalers",
              "/api/v1/namespaces/kube-system/configmaps/kube-proxy",
              "/api/v1/namespaces/kube-system/configmaps/kubeadm-config"):
        assert p in paths, p
    assert any(p.startswith("/version") for p in paths)
    # every request carried the kubeconfig's bearer token
    assert {auth for *_, auth in server.requests} == {"Bearer kc-token-8f2e1d"}
    # never Secrets
    assert not [p for p in paths if "secret" in p]
    assert [n["metadata"]["name"] for n in co.nodes] == ["master", "worker"]
    assert {p["metadata"]["name"]: p["spec"]["nodeName"] for p in co.pods} == {
        "client": "master", "web-7b8c6d5f9d-x2x7q": "worker"}
    assert [s["metadata"]["name"] for s in co.endpointslices] == ["kubernetes", "web-m4xzt"]
    assert co.hpas[0]["spec"]["behavior"]["scaleDown"]["policies"][0] == {"type": "Percent", "value": 10, "periodSeconds": 60}
    assert [c["metadata"]["name"] for c in co.configmaps] == ["kube-proxy", "kubeadm-config"]
    assert co.warnings == []


def test_objects_are_kept_as_the_api_returned_them(server, kubeconfig):
    co = collect_cluster(kubeconfig=str(kubeconfig), timeout=5)
    for field, fname, api_version, kind in (("pods", "pods.json", "v1", "Pod"),
                                            ("endpointslices", "endpointslices.json", "discovery.k8s.io/v1", "EndpointSlice"),
                                            ("deployments", "deployments.json", "apps/v1", "Deployment"),
                                            ("hpas", "hpas.json", "autoscaling/v2", "HorizontalPodAutoscaler")):
        got = getattr(co, field)
        served = _served_items(fname)
        assert len(got) == len(served)
        for g, s in zip(got, served):
            # list items come without apiVersion/kind; they are added back, nothing else changes
            assert g["apiVersion"] == api_version and g["kind"] == kind
            assert {k: v for k, v in g.items() if k not in ("apiVersion", "kind")} == s
    # the snapshot round-trips them untouched
    snap = from_dict(json.loads(dumps(Snapshot(cluster=co))))
    assert snap.cluster.pods == co.pods
    assert snap.cluster.pods[1]["metadata"]["managedFields"][0]["manager"] == "kube-controller-manager"


def test_paging_follows_continue_tokens(server, kubeconfig, monkeypatch):
    monkeypatch.setattr(api, "PAGE", 1)
    co = collect_cluster(kubeconfig=str(kubeconfig), timeout=5)
    assert len(co.pods) == 2 and len(co.nodes) == 2
    continued = [q for _, p, q, _ in server.requests if p == "/api/v1/pods" and "continue" in q]
    assert len(continued) == 1


def test_manifests_as_applied(server, kubeconfig):
    co = collect_cluster(kubeconfig=str(kubeconfig), timeout=5)
    by = {(m["kind"], m["name"]): m for m in co.manifests}
    web_svc = by[("Service", "web")]
    assert web_svc["source"] == "last-applied"
    assert web_svc["manifest"]["spec"]["ports"] == [{"port": 8888, "protocol": "TCP", "targetPort": 80}]
    # a Deployment's pod was never applied: the cleaned object, without server fields
    web_pod = by[("Pod", "web-7b8c6d5f9d-x2x7q")]
    assert web_pod["source"] == "cleaned"
    m = web_pod["manifest"]
    assert "status" not in m
    for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "ownerReferences"):
        assert key not in m["metadata"], key
    assert m["spec"]["containers"][0]["image"] == "labreport-lab/httpd:1"
    assert by[("HorizontalPodAutoscaler", "web")]["manifest"]["spec"]["minReplicas"] == 3
    assert ("Deployment", "web") in by


def test_applied_manifest_unit():
    obj = json.loads((FIX / "services.json").read_text())["items"][1]
    assert manifest_source(obj) == "last-applied"
    assert applied_manifest(obj) == json.loads(obj["metadata"]["annotations"][LAST_APPLIED])
    broken = json.loads(json.dumps(obj))
    broken["metadata"]["annotations"][LAST_APPLIED] = "{not json"
    cleaned = applied_manifest(broken)
    assert manifest_source(broken) == "cleaned"
    assert "annotations" not in cleaned["metadata"] and "status" not in cleaned
    assert cleaned["spec"]["clusterIP"] == "10.96.1.1"
    assert obj["metadata"]["uid"]  # the input is not modified


def test_tokens_never_stored(server, kubeconfig):
    # a token where real clusters leak them: a pod's env and an annotation
    jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpkZWZhdWx0In0.c2lnbmF0dXJlLXBhcnQ"
    pod = server.docs["pods.json"]["items"][0]
    pod["spec"]["containers"][0]["env"] = [{"name": "AUTH", "value": f"Bearer {jwt}"}]
    pod["metadata"]["annotations"]["example.com/join"] = "kubeadm join 192.168.56.10:6443 --token abcdef.0123456789abcdef"
    co = collect_cluster(kubeconfig=str(kubeconfig), timeout=5)
    text = dumps(Snapshot(cluster=co))
    assert jwt not in text and "abcdef.0123456789abcdef" not in text and "kc-token-8f2e1d" not in text
    assert co.pods[0]["spec"]["containers"][0]["env"][0]["value"] == f"Bearer {placeholder(jwt)}"
    assert any("redacted" in w for w in co.warnings)
    # kube-proxy's kubeconfig names a tokenFile path, which is no secret: kept
    assert "tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token" in co.configmaps[0]["data"]["kubeconfig.conf"]


def test_scrub_unit():
    n = [0]
    out = scrub({"token": "abc", "a": ["x", "users:\n- user:\n    token: s3cr3t\n"], "b": 3}, n)
    assert out == {"token": placeholder("abc"), "a": ["x", f"users:\n- user:\n    token: {placeholder('s3cr3t')}\n"], "b": 3}
    assert n[0] == 2


def test_forbidden_and_missing_resources_are_warnings(server, kubeconfig):
    server.forbidden.add("/apis/autoscaling/v2/horizontalpodautoscalers")
    server.missing.add("/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
    co = collect_cluster(kubeconfig=str(kubeconfig), timeout=5)
    assert co.error is None
    assert co.hpas == [] and len(co.pods) == 2
    assert [c["metadata"]["name"] for c in co.configmaps] == ["kube-proxy"]
    assert any(w.startswith("HorizontalPodAutoscaler not listed: HTTP 403") and "forbidden" in w for w in co.warnings)
    assert any("kubeadm-config not read: HTTP 404" in w for w in co.warnings)


def test_wrong_token_is_no_cluster(server, tmp_path):
    cfg = json.loads(server.write_kubeconfig(tmp_path / "kc").read_text())
    cfg["users"][0]["user"]["token"] = "wrong"
    (tmp_path / "kc").write_text(json.dumps(cfg))
    co = collect_cluster(kubeconfig=str(tmp_path / "kc"), timeout=5)
    assert co.error.startswith("no cluster reachable:") and "HTTP 401" in co.error
    assert co.pods == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_is_no_cluster_reachable(tmp_path):
    kc = tmp_path / "kc"
    kc.write_text(json.dumps({"apiVersion": "v1", "kind": "Config",
                              "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{_free_port()}"}}],
                              "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                              "current-context": "x", "users": [{"name": "u", "user": {}}]}))
    co = collect_cluster(kubeconfig=str(kc), timeout=3)
    assert co.error.startswith("no cluster reachable:") and "127.0.0.1" in co.error
    assert "refused" in co.error.lower()


def test_no_kubeconfig_anywhere(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    co = collect_cluster(timeout=3)
    assert co.error.startswith("no cluster reachable: no kubeconfig")
    assert "admin.conf" in co.error
    co = collect_cluster(kubeconfig=str(tmp_path / "nope"), timeout=3)
    assert "does not exist" in co.error


def test_kubeconfig_from_env_and_context(server, kubeconfig, monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{kubeconfig}")
    co = collect_cluster(timeout=5)
    assert co.error is None and len(co.nodes) == 2
    co = collect_cluster(kubeconfig=str(kubeconfig), context="no-such-context", timeout=5)
    assert co.error.startswith("no cluster reachable:") and "no-such-context" in co.error


def test_timeout_is_no_cluster(server, kubeconfig):
    server.delay_s = 2.0
    co = collect_cluster(kubeconfig=str(kubeconfig), timeout=0.5)
    assert co.error.startswith("no cluster reachable:")
    assert "timed out" in co.error.lower() or "timeout" in co.error.lower()
