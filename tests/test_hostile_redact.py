"""The redaction catalogue: every form of secret #15 lists, as a table of
(form, example, the secret part that must vanish, the kind reported).

Each example is how the secret shows up in what labreport collects or imports: a process's
command line (ps), a container's Args/Env (docker inspect, pod specs), an annotation, a
pasted output. The table is also planted into a whole snapshot and a rendered report
(tests/test_hostile_corpus.py), so a form redacted here but missed in some output fails there.
"""

from __future__ import annotations

import json

import pytest

from labreport.redact import placeholder, redact_text, redact_value
from tests.support.secrets_catalogue import CATALOGUE, KEPT, PEM_KEY

@pytest.mark.parametrize("form,example,secret,kind", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_catalogue_form_is_redacted(form: str, example: str, secret: str, kind: str):
    out, kinds = redact_text(example)
    assert secret not in out, f"{form}: {out!r}"
    assert kind in kinds, f"{form}: reported {kinds}"
    # the stable placeholder: the same secret, the same stand-in
    assert placeholder(secret.strip("'")) in out or "<redacted:" in out
    again, _ = redact_text(out)
    assert again == out, "redaction is idempotent"


@pytest.mark.parametrize("form,example", KEPT, ids=[k[0] for k in KEPT])
def test_not_secrets_are_kept(form: str, example: str):
    out, kinds = redact_text(example)
    assert out == example and not kinds, (form, out)


def test_same_secret_same_placeholder_different_secret_differs():
    a, _ = redact_text("--password=one-secret-value")
    b, _ = redact_text("DB_PASSWORD=one-secret-value")
    c, _ = redact_text("--password=another-secret-value")
    assert placeholder("one-secret-value") in a and placeholder("one-secret-value") in b
    assert placeholder("one-secret-value") not in c


def test_structured_forms():
    pod = {"kind": "Pod", "metadata": {"name": "db", "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
            {"spec": {"containers": [{"name": "db", "env": [{"name": "API_TOKEN", "value": "LastAppliedTok1"}]}]}})}},
        "spec": {"containers": [{
            "name": "db", "args": ["--user", "app", "--password", "ArgvPw123"], "command": ["redis-server", "-a", "CmdPw456"],
            "env": [{"name": "PASSWORD", "value": "EnvPw789"}, {"name": "SSH_KEY", "value": "EnvKey000"},
                    {"name": "KEY_FILE", "value": "/etc/key.pem"}, {"name": "GREETING", "value": "hello"}]}]}}
    secret_obj = {"kind": "Secret", "metadata": {"name": "s"}, "data": {"tls.key": "c2VjcmV0S2V5RGF0YQ=="},
                  "stringData": {"pw": "StringDataPw"}}
    docker_cfg = {"auths": {"r.example.com": {"auth": "dXNlcjpSZWdQYXNz", "identitytoken": "IdTok3n"}}}
    sa_key = {"type": "service_account", "private_key_id": "abc123def456", "private_key": PEM_KEY,
              "client_email": "x@y.iam.gserviceaccount.com"}
    env_map = {"Env": {"DB_PASSWORD": "EnvMapPw", "PATH": "/usr/bin"}}
    out, kinds = redact_value([pod, secret_obj, docker_cfg, sa_key, env_map])
    text = json.dumps(out)
    for s in ("LastAppliedTok1", "ArgvPw123", "CmdPw456", "EnvPw789", "EnvKey000", "c2VjcmV0S2V5RGF0YQ==",
              "StringDataPw", "dXNlcjpSZWdQYXNz", "IdTok3n", "abc123def456", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwg",
              "EnvMapPw"):
        assert s not in text, s
    for kept in ("/etc/key.pem", "hello", "x@y.iam.gserviceaccount.com", "/usr/bin", "app", "--password"):
        assert kept in text, kept
    assert {"secret-data", "cli-credential", "env-credential", "json-credential"} <= set(kinds)
