"""Two redaction gaps, checked against the walk the way tests/test_redact_differential.py
does: the fast judges (``json_is_clean``, ``_text_is_clean``, ``_subtree_is_clean`` and the
rule-set judges) must never call clean what the walk would change, on every fixture and
mutant, and the catalogue's forms must not survive.

(a) Secret keys in upper or mixed case: a kubeconfig written by hand or by a tool that
    capitalizes (``Token:``, ``CLIENT-KEY-DATA:``, ``Client-Certificate-Data:``), in YAML
    text, in a rule's comment, in JSON kept as text (``{"Password":"…"}``, its quotes
    escaped as iptables-save prints them), in env assignments and command-line flags.
(b) Positional secrets in a command line stored as a JSON list (a container's args,
    ``["--password", "X"]``, ``["-p", "X"]``, ``["--token", "X"]``): the flag and its value
    are separate literals; a judge of one literal at a time must still send the list to the
    walk, in a pod spec, in docker inspect's Args and Cmd, and in JSON kept in a string (a
    last-applied annotation, a rule's comment).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from labreport.importer import import_files
from labreport.redact import (placeholder, _ipt_is_clean, _nft_is_clean, _Redactor, _subtree_is_clean, _text_is_clean, json_is_clean,
                              redact_snapshot, redact_text, redact_value)
from labreport.snapshot import Snapshot, save

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
IPT = (FIX / "parsers" / "iptables-save" / "lab-iptables-save.txt").read_text()
NFT = (FIX / "parsers" / "nft" / "kube-proxy-lab.nft").read_text()
DOCKER = (FIX / "parsers" / "docker-inspect" / "here-docker-inspect-pod.out").read_text()
CONFIGMAP = (FIX / "k8s-api" / "configmap-kube-proxy.json").read_text()
PODS = (FIX / "k8s-api" / "pods.json").read_text()

CERT_DATA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM4akNDQWRxZ0F3SUJBZ0lJ"
KEY_DATA = "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVB"
TOKEN = "kc7f2e1d9c4b3a29188f7e6d5c4b3a291"
PASSWORD = "Kc0nfPw9931"

# (key, a value of its kind) of a kubeconfig's user and of other YAML/JSON credentials
KEYS = [("client-certificate-data", CERT_DATA), ("client-key-data", KEY_DATA), ("token", TOKEN),
        ("password", PASSWORD), ("id-token", TOKEN), ("refresh-token", TOKEN), ("client-secret", PASSWORD),
        ("auth", "dXNlcjpSZWdQYXNzOTk="), ("apiKey", "Zq9Xw7Vu5T3s1R"), ("accountKey", "QXp1cmVLZXk9PQ==")]


def _cases(key: str) -> list[str]:
    """The key as written (lower or camel), UPPER, Each-Segment-Capitalized, Capitalized."""
    seg = "-".join(p[:1].upper() + p[1:] for p in key.split("-"))
    return sorted({key, key.upper(), seg, key[:1].upper() + key[1:]})


def _kubeconfig(user: dict[str, str]) -> str:
    lines = ["apiVersion: v1", "clusters:", "- cluster:", "    certificate-authority-data: LS0tLS1CRUdJTg==",
             "    server: https://192.168.56.10:6443", "  name: kubernetes", "contexts:", "- context:",
             "    cluster: kubernetes", "    user: kubernetes-admin", "  name: kubernetes-admin@kubernetes",
             "current-context: kubernetes-admin@kubernetes", "kind: Config", "preferences: {}", "users:",
             "- name: kubernetes-admin", "  user:"]
    return "\n".join(lines + [f"    {k}: {v}" for k, v in user.items()]) + "\n"


def _text_forms(key: str, value: str) -> list[str]:
    """Where such a key and value stand as text: a kubeconfig, a rule's comment, JSON kept in
    a note (compact, spaced, its quotes escaped once as iptables-save prints them)."""
    return [_kubeconfig({key: value}),
            f"{key}: {value}",
            f"copied from the admin's kubeconfig: {key}: {value} (rotate)",
            f'note {{"{key}":"{value}"}} end',
            f'note {{"{key}": "{value}"}} end',
            f'--comment "{{\\"{key}\\":\\"{value}\\"}}"']


TEXT_CASES = [(f"{case} / form {i}", text, value) for key, value in KEYS for case in _cases(key)
              for i, text in enumerate(_text_forms(case, value))]
ENV_CASES = [(text, value) for text, value in [
    ("PASSWORD=EnvPw00011 ./start.sh", "EnvPw00011"), ("Password=EnvPw00012", "EnvPw00012"),
    ("DB_Password=EnvPw00013", "EnvPw00013"), ("Db_Pwd=EnvPw00014 psql", "EnvPw00014"),
    ("TOKEN=EnvTok0015 bot", "EnvTok0015"), ("API_KEY=EnvKey0016", "EnvKey0016"),
    ("srv --API-KEY EnvKey0017", "EnvKey0017"), ("srv --Db-Pwd EnvPw00018", "EnvPw00018"),
    ("srv --ACCESS-KEY EnvKey0019", "EnvKey0019"), ("srv --Password EnvPw00020", "EnvPw00020")]]


def _judges_agree(doc: Any) -> list[str]:
    """The judges that call ``doc`` clean while the walk changes it."""
    _, kinds = redact_value(doc)
    if not kinds:
        return []
    bad = []
    for text in (json.dumps(doc, separators=(",", ":")), json.dumps(doc, indent=2)):
        if json_is_clean(text) or json_is_clean(text.encode()):
            bad.append("json_is_clean")
        if _subtree_is_clean(text):
            bad.append("_subtree_is_clean")
    return bad


@pytest.mark.parametrize("vid,text,value", TEXT_CASES, ids=[c[0] for c in TEXT_CASES])
def test_secret_keys_in_any_case_are_redacted_and_never_judged_clean(vid, text, value):
    out, kinds = redact_text(text)
    assert value not in out and kinds, out
    assert not _text_is_clean(text)
    for doc in ({"note": text}, {"labels": {"k": text}}, [text]):
        assert value not in json.dumps(redact_value(doc)[0])
        assert not _judges_agree(doc), (doc, _judges_agree(doc))


@pytest.mark.parametrize("text,value", ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_env_names_and_flags_in_any_case_are_redacted_and_never_judged_clean(text, value):
    out, kinds = redact_text(text)
    assert value not in out and kinds, out
    assert not _text_is_clean(text)
    assert not _judges_agree({"command": text})


@pytest.mark.parametrize("key,value", KEYS, ids=[k for k, _ in KEYS])
def test_secret_keys_in_any_case_as_mapping_keys(key, value):
    for case in _cases(key):
        doc = {"users": [{"name": "admin", "user": {case: value}}]}
        out, kinds = redact_value(doc)
        assert value not in json.dumps(out) and kinds
        assert not _judges_agree(doc)


def _full_walk(snap: Snapshot) -> tuple[Any, dict[str, int]]:
    r = _Redactor()
    return r.document(snap.model_dump(mode="json")), r.kinds


def _agrees_with_the_walk(snap: Snapshot) -> None:
    """``redact_snapshot`` (its judges by parts) gives what the whole walk gives."""
    ref, ref_kinds = _full_walk(snap)
    got, kinds = redact_snapshot(snap)
    if not ref_kinds:
        assert got is snap and not kinds
        return
    assert sorted(ref_kinds) == kinds
    assert got.model_dump(mode="json") == Snapshot.model_validate(ref).model_dump(mode="json")
    for node in snap.nodes:
        rnode = next(n for n in ref["nodes"] if n["name"] == node.name)
        for key, judge in (("iptables", _ipt_is_clean), ("nftables", _nft_is_clean)):
            sub = getattr(node, key)
            if sub is not None and judge(sub):
                assert rnode[key] == node.model_dump(mode="json")[key], key


def test_an_upper_case_kubeconfig_in_a_configmap_is_redacted():
    """kube-proxy's ConfigMap with its kubeconfig's user keys capitalized (kubectl -o json)."""
    user = {"Client-Certificate-Data": CERT_DATA, "CLIENT-KEY-DATA": KEY_DATA, "Token": TOKEN}
    cm = json.loads(CONFIGMAP)
    cm["data"]["kubeconfig.conf"] = _kubeconfig(user)
    snap = import_files([], kubectl=[("cm.json", json.dumps(cm, indent=2))])
    assert all(v in snap.model_dump_json() for v in user.values())  # the control
    got, kinds = redact_snapshot(snap)
    text = got.model_dump_json()
    assert not [v for v in user.values() if v in text] and "kubeconfig-credential" in kinds
    _agrees_with_the_walk(snap)


@pytest.mark.parametrize("comment,value", [
    (f"CLIENT-KEY-DATA: {KEY_DATA}", KEY_DATA), (f"Client-Certificate-Data: {CERT_DATA}", CERT_DATA),
    (f"Token: {TOKEN}", TOKEN), (f'{{"AUTH":"{TOKEN}"}}', TOKEN), (f'{{"Password": "{PASSWORD}"}}', PASSWORD),
    (f'{{"Client-Key-Data":"{KEY_DATA}"}}', KEY_DATA), (f"ACCOUNTKEY: {PASSWORD}", PASSWORD)])
def test_upper_case_keys_in_an_iptables_comment(comment, value):
    """A rule's comment in a real iptables-save (its quotes escaped as iptables-save prints them)."""
    anchor = '--comment "kubernetes load balancer firewall"'
    assert anchor in IPT
    text = IPT.replace(anchor, '--comment "' + comment.replace('"', '\\"') + '"', 1)
    snap = import_files([("node-a", {"iptables-save": [("ipt.txt", text)]})], kubectl=[])
    assert value in snap.model_dump_json()
    got, kinds = redact_snapshot(snap)
    assert value not in got.model_dump_json() and kinds
    _agrees_with_the_walk(snap)


@pytest.mark.parametrize("comment,value", [
    (f"CLIENT-KEY-DATA: {KEY_DATA}", KEY_DATA), (f"Client-Certificate-Data: {CERT_DATA}", CERT_DATA),
    (f"Token: {TOKEN}", TOKEN), (f"AUTH: {TOKEN}", TOKEN), (f"APIKEY: {PASSWORD}", PASSWORD)])
def test_upper_case_keys_in_an_nft_comment(comment, value):
    """A rule's comment in a real kube-proxy nft listing (the text judge and the typed rules)."""
    anchor = 'comment "short-circuit pod traffic"'
    assert anchor in NFT
    snap = import_files([("node-a", {"nft": [("r.nft", NFT.replace(anchor, f'comment "{comment}"', 1))]})], kubectl=[])
    assert value in snap.model_dump_json()
    assert _nft_is_clean(snap.nodes[0].nftables) is not True
    got, kinds = redact_snapshot(snap)
    assert value not in got.model_dump_json() and kinds
    _agrees_with_the_walk(snap)


# -- (b) positional secrets in command lines stored as JSON lists

# a kube-apiserver static pod's command as kubeadm writes it (flag=value items), mutated with
# a flag and its value as two items
APISERVER = ["kube-apiserver", "--advertise-address=192.168.56.10", "--allow-privileged=true",
             "--authorization-mode=Node,RBAC", "--client-ca-file=/etc/kubernetes/pki/ca.crt",
             "--enable-admission-plugins=NodeRestriction", "--enable-bootstrap-token-auth=true",
             "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
             "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
             "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key", "--etcd-servers=https://127.0.0.1:2379",
             "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
             "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
             "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
             "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
             "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key", "--service-cluster-ip-range=10.96.0.0/12",
             "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
             "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key"]
PAIRS = [("--password", "ArgPw000001"), ("-p", "ArgPw000002"), ("--token", "ArgTok00003"), ("-a", "ArgPw000004"),
         ("-u", "ArgUser0005"), ("--user", "ArgUser0006"), ("-P", "ArgPw000007"), ("--db-password", "ArgPw000008"),
         ("--client-secret", "ArgSec00009"), ("--TOKEN", "ArgTok00010"), ("--Password", "ArgPw000011"),
         ("--API-KEY", "ArgKey00012"), ("--db-PWD", "ArgPw000013"), ("--USER", "ArgUser0014"),
         ("--oidc-client-secret", "ArgSec00015"), ("--requirepass", "ArgPw000016")]
KEPT_ARGS = [["-p", "6443"], ["--token-auth-file", "/etc/kubernetes/tokens.csv"], ["--password-file", "/run/pw"],
             ["--etcd-keyfile", "/etc/kubernetes/pki/etcd.key"], ["-f", "-p", "80", "-h", "/www"]]


def _argv_docs(flag: str, value: str) -> list[Any]:
    """The pair in every place a command line stands as JSON: a pod's command and args, a docker
    inspect's Args and Cmd, a kubectl last-applied annotation (JSON kept in a string), a note
    quoting a container's args, a plain list."""
    cmd = [*APISERVER, flag, value]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kube-apiserver-cp", "namespace": "kube-system"},
           "spec": {"containers": [{"name": "kube-apiserver", "command": cmd, "image": "registry.k8s.io/kube-apiserver"}]}}
    applied = {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(pod)}}}
    app = json.loads(DOCKER)[1]
    app["Args"] = ["-f", flag, value]
    app["Config"]["Cmd"] = ["/bin/httpd", "-f", flag, value]
    return [pod, applied, app, {"Args": [flag, value]}, {"args": ["--v=2", flag, value]},
            {"note": json.dumps({"args": [flag, value]})}, {"Cmd": ["srv", flag, value, "--verbose"]},
            [flag, value]]


ARGV_CASES = [(f"{flag} / doc {i}", doc) for flag, value in PAIRS for i, doc in enumerate(_argv_docs(flag, value))] + [
    (f"kept {' '.join(a)} / doc {i}", doc) for a in KEPT_ARGS for i, doc in enumerate(_argv_docs(a[0], a[1]))]


@pytest.mark.parametrize("vid,doc", ARGV_CASES, ids=[c[0] for c in ARGV_CASES])
def test_flag_and_value_as_separate_items_judges_agree_with_the_walk(vid, doc):
    assert not _judges_agree(doc), _judges_agree(doc)


def test_the_argv_documents_hold_what_the_walk_replaces():
    """The control: in a command line (args, command, Cmd: short flags too) the value goes."""
    for flag, value in PAIRS:
        for i, doc in enumerate(_argv_docs(flag, value)):
            if i == len(_argv_docs(flag, value)) - 1 and flag in ("-p", "-a", "-u", "--user"):
                continue  # a plain list is no command line: its short flags are not read
            out, kinds = redact_value(doc)
            assert value not in json.dumps(out) and kinds, (flag, i)
    for args in KEPT_ARGS:
        assert not redact_value({"args": args})[1], args


def _pair_snapshot(pairs: list[tuple[str, str]]) -> Snapshot:
    """One node per pair (its docker inspect with the pair in Args and Cmd) and one pod each
    (the pair in its command, and in its last-applied annotation)."""
    nodes, pods = [], []
    for i, (flag, value) in enumerate(pairs):
        pod, applied, app, *_ = _argv_docs(flag, value)
        objs = json.loads(DOCKER)
        objs[1] = app
        nodes.append((f"node-{i}", {"inspect": [("inspect.json", json.dumps(objs, indent=4))]}))
        pod = json.loads(json.dumps(pod))
        pod["metadata"]["name"] = f"kube-apiserver-{i}"
        pod["metadata"]["annotations"] = applied["metadata"]["annotations"]
        pods.append(pod)
    kubectl = [("pods.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}))]
    return import_files(nodes, kubectl=kubectl, keep_going=True)


def test_container_args_in_a_snapshot_agree_with_the_walk():
    snap = _pair_snapshot(PAIRS)
    assert all(v in snap.model_dump_json() for _f, v in PAIRS)  # the control
    _agrees_with_the_walk(snap)
    for i in range(len(PAIRS)):  # node by node too (the walk of one node as redact_snapshot makes it)
        _agrees_with_the_walk(snap.model_copy(update={"nodes": [snap.nodes[i]]}))


def _cli(*args: Any) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "COLUMNS": "400"}
    p = subprocess.run([sys.executable, "-m", "labreport", *map(str, args)], capture_output=True, text=True,
                       timeout=300, cwd="/", env=env)
    assert "Traceback" not in p.stderr and p.returncode in (0, 10), p.stderr[-3000:]
    return p.stdout + p.stderr


# the long flags: their values are secrets wherever they stand, a joined command line too
LONG = [(f, v) for f, v in PAIRS if f.startswith("--") and f.lower() != "--user"]


def test_long_flag_values_reach_no_output(tmp_path):
    """``labreport import`` of a docker inspect with the pairs in its Args, then ``analyze --json``
    and ``render``: no long flag's value is printed (the container's command is Path and Args
    joined: the text's own --flag VALUE form); with --no-redact they are (the control)."""
    snap = _pair_snapshot(LONG)
    d = tmp_path / "snap"
    save(snap, d)
    imported = tmp_path / "imported"
    inspect = tmp_path / "inspect.json"
    objs = json.loads(DOCKER)
    objs[1]["Args"] = ["-f", *[x for pair in LONG for x in pair]]
    inspect.write_text(json.dumps(objs, indent=4))
    _cli("import", "--inspect", inspect, "--out", imported, "-q")
    stored = (imported / "snapshot.json").read_text()
    assert not [v for _f, v in LONG if v in stored]
    for snapdir in (d, imported):
        outs = [_cli("analyze", snapdir, "--json")]
        out_dir = tmp_path / f"md-{snapdir.name}"
        outs.append(_cli("render", snapdir, "--format", "md", "--out", out_dir, "--quiet")
                    + "".join(f.read_text() for f in sorted(out_dir.rglob("*.md"))))
        leaks = [v for _f, v in LONG for o in outs if v in o]
        assert not leaks, (snapdir.name, leaks)
    out_dir = tmp_path / "md-shown"
    _cli("render", d, "--format", "md", "--out", out_dir, "--quiet", "--no-redact")
    shown = (out_dir / "report.md").read_text()
    # the control: the report prints the first pods' command lines
    assert len([v for _f, v in LONG if v in shown]) >= 3


def test_short_flag_values_of_docker_args_do_not_reach_the_stored_snapshot(tmp_path):
    objs = json.loads(DOCKER)
    objs[1]["Args"] = ["-f", "-p", "ShortPw0001"]
    inspect = tmp_path / "inspect.json"
    inspect.write_text(json.dumps(objs, indent=4))
    _cli("import", "--inspect", inspect, "--out", tmp_path / "imported", "-q")
    stored = json.loads((tmp_path / "imported" / "snapshot.json").read_text())
    assert "cli-credential" in stored["redaction"]["kinds"]  # the Args list itself was redacted
    assert "ShortPw0001" not in json.dumps(stored)
    # the joined command keeps its shape: only the value is replaced
    commands = [c.get("command", "") for n in stored["nodes"] for c in n.get("containers", [])]
    assert any(re.search(r"-f -p <redacted:[0-9a-f]{8}>", c) for c in commands), commands


def _inspect_with_args(args: list[str]) -> str:
    objs = json.loads(DOCKER)
    objs[1]["Args"] = args
    return json.dumps(objs, indent=4)


def _commands(snap: Snapshot) -> list[str]:
    return [c.command for n in snap.nodes for c in n.containers if c.command]


def test_a_command_line_secret_is_replaced_by_the_same_placeholder_in_every_node_that_holds_it():
    """The Args item and the joined command get one placeholder; a second node holding the
    same inspect output (its text answered from the walk's memo) is rid of it as well."""
    text = _inspect_with_args(["-f", "--password", "Sup3rSecretPw"])
    snap = import_files([("node-a", {"inspect": [("i.json", text)]}),
                         ("node-b", {"inspect": [("i.json", text)]})], kubectl=[])
    got, kinds = redact_snapshot(snap)
    dumped = got.model_dump_json()
    assert "Sup3rSecretPw" not in dumped and "cli-credential" in kinds
    mark = placeholder("Sup3rSecretPw")
    commands = _commands(got)
    assert sum(mark in c for c in commands) == 2, commands
    ref, _ = _full_walk(snap)
    assert got.model_dump(mode="json") == Snapshot.model_validate(ref).model_dump(mode="json")


def test_a_short_command_line_value_is_not_looked_for_elsewhere():
    """``-p`` before a 3-character value: the item is replaced, but a token that short is
    not hunted through the node's other strings (it is as likely to be something else)."""
    text = _inspect_with_args(["-f", "-p", "abc"])
    snap = import_files([("node-a", {"inspect": [("i.json", text)]})], kubectl=[])
    got, _ = redact_snapshot(snap)
    assert any(c.endswith("-f -p abc") for c in _commands(got)), _commands(got)


def test_a_dirty_long_text_is_redacted_once(monkeypatch):
    """The judge of a node's long evidence text (``_text_is_clean``) and the walk of that node
    share their answers: a text with a secret is redacted once, and as the whole walk does."""
    from labreport import redact

    anchor = '--comment "kubernetes load balancer firewall"'
    text = IPT.replace(anchor, f'--comment "Token: {TOKEN}"', 1)
    assert len(text) > redact._BIG
    snap = import_files([("node-a", {"iptables-save": [("ipt.txt", text)]})], kubectl=[])
    ref, _ = _full_walk(snap)
    calls: list[int] = []
    real = redact._Redactor._big_text

    def spy(self: Any, s: str) -> str:
        calls.append(len(s))
        return real(self, s)

    monkeypatch.setattr(redact._Redactor, "_big_text", spy)
    got, kinds = redact_snapshot(snap)
    assert TOKEN not in got.model_dump_json() and kinds
    assert got.model_dump(mode="json") == Snapshot.model_validate(ref).model_dump(mode="json")
    assert calls.count(len(text)) == 1


def test_a_command_line_secret_is_found_again_as_the_regular_expression_of_the_values_finds_it():
    """``_token_finder`` (one Aho-Corasick pass) gives the spans the regular expression of the
    values gives (``_token_pattern``, the path without the library), on texts built from the
    values, their prefixes and every separator around them; and a node with thousands of
    values and a long text is read in one pass, not one per value (the regex of 20,000
    alternatives takes hours over it)."""
    import random

    from labreport.redact import _token_finder, _token_pattern

    rng = random.Random(14)
    seps = [" ", "\t", "\n", '"', "'", "=", ",", ":", ";", "(", ")", "[", "]", "x", "-", "/", "é", ""]
    for _ in range(400):
        base = "".join(rng.choice("ab:c") for _ in range(rng.randint(4, 7)))
        taken = {base, base + rng.choice(["d", ":e", "ab", ",f"]), base[:4] + "zz"} | {
            "".join(rng.choice("abc") for _ in range(rng.randint(4, 6))) for _ in range(3)}
        words = sorted(taken) + [base[:3], base + base]
        text = "".join(rng.choice(words) + rng.choice(seps) for _ in range(rng.randint(1, 12)))
        values = sorted(taken, key=lambda t: (-len(t), t))
        want = [m.span() for m in _token_pattern(values).finditer(text)]
        assert _token_finder(taken)(text) == want, (taken, text)
    taken = {f"Pw{i:06d}" for i in range(20_000)}
    text = ("-f -p Pw000007 " + "x" * 60 + "\n") * 200_000  # ~15 MB
    spans = _token_finder(taken)(text)
    assert len(spans) == 200_000 and {text[a:b] for a, b in spans} == {"Pw000007"}
