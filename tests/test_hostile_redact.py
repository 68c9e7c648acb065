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

PEM_KEY = ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7pemKey\n"
           "-----END PRIVATE KEY-----")

# (form, example, secret, kind)
CATALOGUE: list[tuple[str, str, str, str]] = [
    ("Authorization: Basic", "curl -H 'Authorization: Basic dXNlcjpodW50ZXIy' https://10.0.0.1/", "dXNlcjpodW50ZXIy",
     "bearer-token"),
    ("Authorization: Bearer", "Authorization: Bearer abcDEF0123456789xyz", "abcDEF0123456789xyz", "bearer-token"),
    ("Authorization: other scheme", "authorization: Token 9f8e7d6c5b4a39281706", "9f8e7d6c5b4a39281706",
     "bearer-token"),
    ("curl -u user:pass", "curl -u admin:Pa55w0rdCurl https://10.0.0.1:9200/", "Pa55w0rdCurl", "cli-credential"),
    ("curl --user=user:pass", "curl --user=admin:Pa55w0rdCurl2 https://x/", "Pa55w0rdCurl2", "cli-credential"),
    ("mysql -pX", "mysql -h db -uroot -pMyS3cretPw wordpress", "MyS3cretPw", "cli-credential"),
    ("mysqldump -pX", "mysqldump -u root -pDumpPw99 --all-databases", "DumpPw99", "cli-credential"),
    ("--requirepass", "redis-server *:6379 --requirepass R3disPassw0rd", "R3disPassw0rd", "cli-credential"),
    ("redis-cli -a", "redis-cli -h 10.0.0.5 -a R3disCliPw77 ping", "R3disCliPw77", "cli-credential"),
    ("sshpass -p", "sshpass -p 'SshPa55!' ssh root@192.168.56.11", "SshPa55!", "cli-credential"),
    ("-passout pass:", "openssl pkcs12 -export -in a.crt -inkey a.key -passout pass:P12Export99 -out a.p12",
     "P12Export99", "cli-credential"),
    ("-passin pass:", "openssl rsa -in k.pem -passin pass:P12Import77", "P12Import77", "cli-credential"),
    ("-Dx.keyStorePassword=", "java -Djavax.net.ssl.keyStorePassword=Jks5ecret -jar app.jar", "Jks5ecret",
     "cli-credential"),
    ("-Dx.password=", "java -Dspring.datasource.password=SpringPw11 -jar app.jar", "SpringPw11", "cli-credential"),
    ("--password=", "etcd --name=m --password=S3cr3t-Etcd-Pw", "S3cr3t-Etcd-Pw", "cli-credential"),
    ("--token X", "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef", "abcdef.0123456789abcdef",
     "join-token"),
    ("--client-secret X", "oauth2-proxy --client-secret hunter2xyzClient", "hunter2xyzClient", "cli-credential"),
    ('["--password","X"] (JSON Args)', '"Args": ["--user", "app", "--password", "ArgvPw123"]', "ArgvPw123",
     "cli-credential"),
    ("vault dev root token (flag)", "vault server -dev -dev-root-token-id=VaultRootId42", "VaultRootId42",
     "cli-credential"),
    ("vault token hvs.", "export VAULT_ADDR=http://127.0.0.1:8200 ; vault login hvs.CAESIJ0k7vGxQ2lB4xYzPqRsTuVw",
     "hvs.CAESIJ0k7vGxQ2lB4xYzPqRsTuVw", "vault-token"),
    ("vault Root Token: line", "Unseal Key: q8n0Tz3xQb7Wm2Yk\nRoot Token: s.Xy7Kq2Lm9Np4Rs6Tv8Wz1Ab3",
     "s.Xy7Kq2Lm9Np4Rs6Tv8Wz1Ab3", "vault-token"),
    ("bare PASSWORD=", "PASSWORD=BarePw0001 ./start.sh", "BarePw0001", "env-credential"),
    ("bare TOKEN=", "TOKEN=BareTok0002 python3 bot.py", "BareTok0002", "env-credential"),
    ("bare API_KEY=", "API_KEY=BareKey0003", "BareKey0003", "env-credential"),
    ("X_PASSWORD= env", "MYSQL_ROOT_PASSWORD=x1y2z3w4", "x1y2z3w4", "env-credential"),
    ("X_SECRET= env", "DJANGO_SECRET_KEY=dj4ngoS3cret", "dj4ngoS3cret", "env-credential"),
    ("registry auths (JSON)", '{"auths":{"registry.example.com":{"auth":"dXNlcjpSZWdQYXNz","password":"RegPass"}}}',
     "dXNlcjpSZWdQYXNz", "json-credential"),
    ("private_key_id (GCP SA JSON)", '{"type": "service_account", "private_key_id": "5f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6"}',
     "5f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6", "json-credential"),
    ("Slack webhook", "curl -X POST https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/XyZwebhookTok3n",
     "XyZwebhookTok3n", "url-credential"),
    ("Discord webhook", "https://discord.com/api/webhooks/123456789012/DiscordHookTok_abc-9", "DiscordHookTok_abc-9",
     "url-credential"),
    ("webhook ?token=", "https://ci.example.com/hook?job=x&token=QueryTok3nValue", "QueryTok3nValue",
     "url-credential"),
    ("URL credentials", "git clone https://u5er:pa55word@example.org/repo.git", "pa55word", "url-credential"),
    ("kubeconfig client-key-data", "    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ==",
     "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ==", "kubeconfig-credential"),
    ("kubeconfig token:", "users:\n- name: admin\n  user:\n    token: kc-token-8f2e1d9c", "kc-token-8f2e1d9c",
     "kubeconfig-credential"),
    ("JWT (service-account token)", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl",
     "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl", "bearer-token"),
    ("AWS access key id", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "cloud-key"),
    ("AWS secret key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "cloud-key"),
    ("AWS env", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE2",
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE2", "cloud-key"),
    ("GCP API key", "maps?key=AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW", "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
     "url-credential"),
    ("Azure storage AccountKey", "DefaultEndpointsProtocol=https;AccountName=lab;AccountKey=QXp1cmVLZXk9PQ==;EndpointSuffix=core.windows.net",
     "QXp1cmVLZXk9PQ==", "cloud-key"),
    ("Azure SAS sig=", "https://lab.blob.core.windows.net/c?sv=2022-11-02&sig=AzSasSig%2Fabc123", "AzSasSig%2Fabc123",
     "url-credential"),
    ("GitHub token", "git remote add o https://github.com/x/y ; GH=ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
     "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "api-token"),
    ("PEM private key", "key:\n" + PEM_KEY, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7pemKey", "private-key"),
    ("kubeadm discovery hash", "--discovery-token-ca-cert-hash sha256:cc3365e7c219893c51ca3c3278a41cf762339100c209c6b8c10a0de213300b0a",
     "cc3365e7c219893c51ca3c3278a41cf762339100c209c6b8c10a0de213300b0a", "discovery-hash"),
]

# (form, example): not secrets; must come through unchanged
KEPT: list[tuple[str, str]] = [
    ("image digest", "image sha256:" + "a" * 64),
    ("token file flag", "--token-auth-file=/etc/k8s/tokens.csv"),
    ("boolean token flag", "--enable-bootstrap-token-auth=true"),
    ("password file flag", "--password-file /run/secrets/pw"),
    ("image name", "registry.aliyuncs.com/google_containers/pause:3.9"),
    ("iptables rule", "-A KUBE-SVC-X -p tcp -m comment --comment \"default/web\" -j KUBE-SEP-Y"),
    ("kubelet authorization config", "authorization:\n  mode: Webhook"),
    ("working directory env", "PWD=/root"),
    ("authorization mode flag", "--authorization-mode=Node,RBAC"),
    ("mysql -p prompt", "mysql -u root -p wordpress"),
]


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
