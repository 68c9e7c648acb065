"""Redaction: secrets never reach a report unless --no-redact.

The secrets are the real ones a student printed (seed 001's `kubeadm join` line with its token
and discovery hash) plus the usual suspects (passwords in flags and env, URL credentials, PEM
keys, a bearer token, last-applied annotations), put where collection puts them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from labreport.redact import REDACTED, placeholder, redact_snapshot, redact_text
from labreport.render.report import render_report
from labreport.snapshot import Container, Evidence, Process, load

ROOT = Path(__file__).resolve().parent.parent
JOIN_TOKEN = "yb3v37.o8p3emy5aie3yro4"  # seed 001, section 6 (kubeadm init's output)
CA_HASH = "sha256:cc3365e7c219893c51ca3c3278a41cf762339100c209c6b8c10a0de213300b0a"
SECRETS = [JOIN_TOKEN, CA_HASH[7:], "S3cr3t-Etcd-Pw", "hunter2xyz", "db-pass-42", "u5er:pa55word",
           "MIIEpAIBAAKCAQEAx", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl", "topsecretvalue",
           "abcdefghijklmnop0123"]


def _secret_snapshot():
    snap = load(ROOT / "samples" / "seed001-flannel-containerd")
    master = snap.node("k8s-master")
    worker = snap.node("k8s-worker")
    join = (f"kubeadm join 172.24.153.39:6443 --token {JOIN_TOKEN} --discovery-token-ca-cert-hash {CA_HASH}")
    worker.processes.append(Process(pid=4242, user="root", command=join))
    master.processes.append(Process(pid=4343, user="root", command="etcd --name=k8s-master --password=S3cr3t-Etcd-Pw"
                                    " --client-secret hunter2xyz"))
    worker.containers.append(Container(
        runtime="containerd", id="f00dfeed0001", name="db", pod_name="db-0", pod_namespace="default",
        labels={"io.kubernetes.container.name": "db", "app.env": "POSTGRES_PASSWORD=db-pass-42"},
        annotations={"backup": "s3://backup:topsecretvalue@minio.local/bucket"}))
    master.evidence.append(Evidence(id="kubeadm-init", command="kubeadm init", origin="import", stdout=(
        "Your Kubernetes control-plane has initialized successfully!\n"
        f"kubeadm join 172.24.153.39:6443 --token {JOIN_TOKEN} \\\n    --discovery-token-ca-cert-hash\n{CA_HASH}\n"
        "curl -H 'Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl' https://172.24.153.39:6443\n"
        "git clone https://u5er:pa55word@example.org/repo.git\n"
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAx\n-----END RSA PRIVATE KEY-----\n")))
    pod = next(o for o in snap.cluster.pods)
    pod.setdefault("metadata", {}).setdefault("annotations", {})[
        "kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "testpod"},
         "spec": {"containers": [{"name": "fileserver", "env": [{"name": "API_TOKEN", "value": "abcdefghijklmnop0123"}]}]}})
    pod["spec"]["containers"][0]["env"] = [{"name": "ADMIN_PASSWORD", "value": "hunter2xyz"}]
    return snap


def test_redact_snapshot_finds_every_kind():
    snap = _secret_snapshot()
    clean, kinds = redact_snapshot(snap)
    dumped = clean.model_dump_json()
    for s in SECRETS:
        assert s not in dumped, s
    assert {"join-token", "discovery-hash", "cli-credential", "env-credential", "url-credential",
            "bearer-token", "private-key"} <= set(kinds)
    # the stable placeholder: the same secret reads the same wherever it was
    assert placeholder("hunter2xyz") in dumped and re.search(r"<redacted:[0-9a-f]{8}>", dumped)
    assert REDACTED not in dumped
    # the original is untouched, and what is not secret survives
    assert JOIN_TOKEN in snap.model_dump_json()
    assert "--cluster-cidr=10.244.0.0/16" in dumped and "10.101.163.22" in dumped
    assert "--use-service-account-credentials=true" in dumped  # a boolean, not a credential


@pytest.mark.parametrize("text,kept", [
    ("image sha256:" + "a" * 64, True),  # image ids are not discovery hashes
    ("--token-auth-file=/etc/k8s/tokens.csv", True),
    ("--enable-bootstrap-token-auth=true", True),
    ("registry.aliyuncs.com/google_containers/pause:3.9", True),
    ("--token abcdef.0123456789abcdef", False),
    ("MYSQL_ROOT_PASSWORD=x1y2z3", False),
])
def test_redact_text_cases(text: str, kept: bool):
    out, _ = redact_text(text)
    assert (out == text) is kept, out


@pytest.mark.parametrize("fmt", ["md", "html"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_rendered_report_carries_no_secret(tmp_path: Path, fmt: str, lang: str):
    snap = _secret_snapshot()
    res = render_report(snap, fmt=fmt, lang=lang, out_dir=tmp_path, make_zip=True)
    assert res.redacted and "join-token" in res.redacted
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 3
    for p in files:
        data = p.read_bytes()
        if p.suffix == ".zip":
            import zipfile

            with zipfile.ZipFile(p) as z:
                data = b"".join(z.read(n) for n in z.namelist())
        for s in SECRETS:
            assert s.encode() not in data, f"{s} leaked into {p.name}"
    text = res.main.read_text("utf-8")
    assert ("kubeadm join tokens" if lang == "en" else "kubeadm join 令牌") in text


def test_no_redact_keeps_them_and_warns(tmp_path: Path, cli):
    snap = _secret_snapshot()
    from labreport.snapshot import save

    save(snap, tmp_path / "snap")
    code, out, err = cli("render", tmp_path / "snap", "--format", "md", "--out", tmp_path / "r", "--no-redact")
    assert code == 0, err
    text = (tmp_path / "r" / "report.md").read_text("utf-8")
    assert JOIN_TOKEN in text and "abcdefghijklmnop0123" in text
    assert "Redaction is OFF" in text and "redaction is OFF" in err
