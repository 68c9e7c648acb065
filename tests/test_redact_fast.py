"""The redaction's fast path (#14): ``json_is_clean`` says from a document's JSON text alone
whether the walk would replace anything, so a clean snapshot is neither dumped nor walked.

Checked against the walk itself (``redact_value``) on every form of the secrets catalogue
(tests/support/secrets_catalogue.py) placed as a string, inside JSON kept in a string, and
in the structural forms the walk knows (env entries, command lines, Secret objects,
secret keys); then end to end: secrets planted in a pod name, a label, an env entry, an
argument and a command line of the live sample node (samples/) never reach the output of
``labreport analyze --json`` nor a rendered report, while the clean sample takes the fast
path (counted, and with the walk made to fail).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from labreport import redact
from labreport.redact import SCAN_STATS, json_is_clean, redact_snapshot, redact_value
from labreport.snapshot import Snapshot, from_dict
from tests.support.secrets_catalogue import CATALOGUE, KEPT

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "live-containerd-docker-node" / "snapshot.json"


def _texts(doc: Any) -> list[bytes]:
    """The JSON texts a document is judged by: pydantic-like (compact, UTF-8) and indented."""
    return [json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode(),
            json.dumps(doc, ensure_ascii=False, indent=1).encode()]


def _docs(variants: bool = True) -> list[Any]:
    docs: list[Any] = []
    for _form, example, _secret, _kind in CATALOGUE:
        docs.append({"command": example})
        docs.append({"annotations": {"note": json.dumps({"spec": {"text": example}})}})
        docs.append([example])
        if variants:  # upper-cased: some forms are still secrets (the walk says which)
            docs.append({"labels": {"k": example.upper()}})
    structural = [
        {"env": [{"name": "DB_PASSWORD", "value": "plainvalue1"}]},
        {"env": [{"name": "KEY", "value": "plainvalue2"}]},
        {"Env": {"KEY": "plainvalue3"}},
        {"Env": {"KEY_AUTH": "plainvalue3b"}},
        {"args": ["-p", "plainvalue4"]},
        {"args": ["-P", "plainvalue5"]},
        {"Cmd": ["srv", "-a", "plainvalue6"]},
        {"Cmd": ["srv", "--USER", "plainvalue7"]},
        {"x": ["srv", "--db-PWD", "plainvalue8"]},
        {"kind": "Secret", "data": {"a": "plainvalue9"}},
        {"client-certificate-data": "plainvalue10"},
        {"Token": "plainvalue11"},
        {"note": json.dumps({"args": ["-p", "plainvalue12"]})},
        {"note": json.dumps({"n": json.dumps({"args": ["-u", "plainvalue13"]})})},
        {"note": json.dumps([{"name": "MY_SECRET", "value": "plainvalue14"}])},
    ]
    return docs + structural


@pytest.mark.parametrize("doc", _docs(), ids=lambda d: json.dumps(d)[:60])
def test_whatever_the_walk_replaces_is_not_clean(doc):
    _, kinds = redact_value(doc)
    for text in _texts(doc):
        assert json_is_clean(text) is False or not kinds, text
        assert json_is_clean(text.decode()) is False or not kinds, text


def test_the_documents_hold_what_the_walk_replaces():
    missed = [d for d in _docs(variants=False) if not redact_value(d)[1]]
    assert not missed, missed


@pytest.mark.parametrize("form,example", KEPT, ids=[k[0] for k in KEPT])
def test_kept_forms_agree_with_the_walk(form, example):
    doc = {"command": example, "labels": {"app": example}}
    _, kinds = redact_value(doc)
    clean = all(json_is_clean(t) for t in _texts(doc))
    # a form the walk keeps may still be judged not clean (the walk then decides)
    assert not (kinds and clean), form


def test_most_kept_forms_take_the_fast_path():
    judged = [all(json_is_clean(t) for t in _texts({"command": ex})) for _f, ex in KEPT
              if not redact_value({"command": ex})[1]]
    assert sum(judged) >= len(judged) * 0.7, judged


@pytest.mark.parametrize("text", [
    '{"env": [{"name"  \n :  "DB_PASSWORD", "value": "plainvalue1"}]}',  # JSON's own spaces around ':'
    '{"password"    :   "plainvalue2"}',
    '{"a": "\\u0070assword=hunter2hunter2"}',  # an escape hiding a trigger word
    '{"a": "pa\u017f\u017fword=hunter2hunter2"}',  # long s: re's IGNORECASE folds it to s
    '{"a": "to\u212aen: hunter2hunter2"}',  # Kelvin sign: folded to k
])
def test_what_could_hide_a_trigger_word_is_not_clean(text):
    assert not json_is_clean(text)
    assert not json_is_clean(text.encode())


def test_the_fallback_without_the_library_answers_alike(monkeypatch):
    docs = _docs() + [{"command": ex} for _f, ex in KEPT] + [json.loads(SAMPLE.read_text("utf-8"))]
    fast = [json_is_clean(t) for d in docs for t in _texts(d)]
    monkeypatch.setattr(redact, "_JSON_AUTOMATA", [None])
    slow = [json_is_clean(t) for d in docs for t in _texts(d)]
    assert fast == slow
    assert any(fast) and not all(fast)


def _sample() -> Snapshot:
    return from_dict(json.loads(SAMPLE.read_text("utf-8")), where=str(SAMPLE))


def test_a_clean_snapshot_is_neither_dumped_nor_walked(monkeypatch):
    snap = _sample()

    def no_walk(self, d):  # noqa: ANN001
        raise AssertionError("the walk ran on a clean snapshot")

    monkeypatch.setattr(redact._Redactor, "mapping", no_walk)
    before = dict(SCAN_STATS)
    out, kinds = redact_snapshot(snap)
    assert out is snap and kinds == []
    assert SCAN_STATS["clean"] == before["clean"] + len(snap.nodes) + 1  # each node, then the rest
    assert SCAN_STATS["not_clean"] == before["not_clean"]


def test_only_the_nodes_holding_a_secret_are_walked(monkeypatch):
    """A cluster with a secret on one node: that node (with the cluster objects) is walked,
    the others are kept as they are; the result is the whole walk's."""
    data = json.loads(SAMPLE.read_text("utf-8"))
    base = data["nodes"][0]
    data["nodes"] = []
    for i in range(6):
        n = copy.deepcopy(base)
        n["name"] = f"node-{i}"
        data["nodes"].append(n)
    data["nodes"][4]["processes"].append({"pid": 61003, "user": "root", "command": "etcd --password=OneNodePw55"})
    snap = from_dict(data)
    whole, whole_kinds = redact._walk_snapshot(snap)
    walked: list[list[str]] = []
    real = redact._walk_snapshot

    def spy(s, *rest):  # noqa: ANN001, ANN002
        walked.append([n.name for n in s.nodes])
        return real(s, *rest)

    monkeypatch.setattr(redact, "_walk_snapshot", spy)
    out, kinds = redact_snapshot(snap)
    assert walked == [["node-4"]]
    assert kinds == whole_kinds == ["cli-credential"]
    assert out.model_dump_json() == whole.model_dump_json()
    assert "OneNodePw55" not in out.model_dump_json() and [n.name for n in out.nodes] == [f"node-{i}" for i in range(6)]
    assert out.nodes[0] is snap.nodes[0]  # a clean node is the model it was


SECRETS = {
    "pod name": "AKIAQWERTYUIOPASDF12",
    "label": "glpat-Lab3lTok3nAbCdEfGhIj",
    "env": "EnvEntryPw4242",
    "arg": "ArgvPw9191x",
    "command line": "CmdLinePw7373",
    "node command": "S3cr3t-Proc-Pw",
}


def _planted(tmp_path: Path) -> Path:
    data = json.loads(SAMPLE.read_text("utf-8"))
    node = data["nodes"][0]
    pod = next(c for c in node["containers"] if c.get("pod_name"))
    old = pod["pod_name"]
    new_name = f"db-{SECRETS['pod name']}"
    for c in node["containers"]:
        if c.get("pod_name") == old:
            c["pod_name"] = new_name
            c.setdefault("labels", {})["io.kubernetes.pod.name"] = new_name
    node["containers"][0].setdefault("labels", {})["example.com/deploy-token"] = SECRETS["label"]
    node["processes"].append({"pid": 61001, "user": "root",
                              "command": f"etcd --name=m --password={SECRETS['node command']}"})
    cluster = data.get("cluster") or {}
    cluster.setdefault("pods", []).append({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": new_name, "namespace": "default"},
        "spec": {"nodeName": node["name"], "containers": [{
            "name": "db", "image": "mysql:8",
            "env": [{"name": "DB_PASSWORD", "value": SECRETS["env"]}],
            "args": ["--user", "app", "--password", SECRETS["arg"]],
            "command": ["sh", "-c", f"mysql -uroot -p{SECRETS['command line']} db"]}]},
        "status": {"podIP": "10.244.1.77", "phase": "Running"}})
    data["cluster"] = cluster
    snap_dir = tmp_path / "snap"
    snap_dir.mkdir()
    (snap_dir / "snapshot.json").write_text(json.dumps(data), "utf-8")
    return snap_dir


def test_planted_secrets_are_not_clean_and_are_walked(tmp_path):
    snap = from_dict(json.loads((_planted(tmp_path) / "snapshot.json").read_text("utf-8")))
    assert not json_is_clean(snap.__pydantic_serializer__.to_json(snap))
    out, kinds = redact_snapshot(snap)
    text = out.model_dump_json()
    for where, s in SECRETS.items():
        assert s not in text, where
    assert {"cli-credential", "env-credential", "cloud-key", "api-token"} <= set(kinds)


def test_analyze_json_and_reports_carry_no_planted_secret(tmp_path, cli):
    snap_dir = _planted(tmp_path)
    code, out, err = cli("analyze", str(snap_dir), "--json")
    assert code in (0, 10), err
    analysis = json.loads(out)
    assert analysis["nodes"], "the analysis has its node"
    text = out + err
    assert "<redacted:" in text or "db-" in text
    for where, s in SECRETS.items():
        assert s not in text, f"{where}: {s} in analyze --json"
    for fmt in ("md", "html"):
        dest = tmp_path / f"r-{fmt}"
        code, out, err = cli("render", str(snap_dir), "--format", fmt, "--out", str(dest))
        assert code == 0, err
        files = [p for p in dest.rglob("*") if p.is_file()]
        assert any(p.name == f"report.{fmt}" for p in files)
        for p in files:
            data = p.read_bytes()
            for where, s in SECRETS.items():
                assert s.encode() not in data, f"{where}: {s} in {p.name}"
        assert "redacted:" in err


def test_the_clean_sample_takes_the_fast_path_through_the_commands(tmp_path, cli, monkeypatch):
    def no_walk(self, d):  # noqa: ANN001
        raise AssertionError("the walk ran on a clean snapshot")

    monkeypatch.setattr(redact._Redactor, "mapping", no_walk)
    before = SCAN_STATS["clean"]
    code, out, err = cli("analyze", str(SAMPLE), "--json")
    assert code in (0, 10), err
    assert json.loads(out)["nodes"]
    code, _out, err = cli("render", str(SAMPLE), "--format", "md", "--out", str(tmp_path / "r"))
    assert code == 0, err
    assert SCAN_STATS["clean"] >= before + 2


def test_cluster_render_redacts_the_analysis_it_prints(tmp_path):
    """A cluster's report redacts the analysis it prints (redact_model): clean, it is kept
    as is; a planted secret in a detailed node's process is replaced."""
    from labreport.render.report import render_report

    data = json.loads(SAMPLE.read_text("utf-8"))
    base = data["nodes"][0]
    nodes = []
    for i in range(10):
        n = copy.deepcopy(base)
        n["name"] = f"node-{i:02d}"
        nodes.append(n)
    nodes[0]["processes"].append({"pid": 61002, "user": "root",
                                  "command": f"kube-apiserver --token-auth=x --password={SECRETS['node command']}"})
    data["nodes"] = nodes
    snap = from_dict(data)
    res = render_report(snap, fmt="md", out_dir=tmp_path / "r")
    text = "".join(p.read_text("utf-8", "replace") for p in (tmp_path / "r").rglob("*") if p.is_file())
    assert SECRETS["node command"] not in text
    assert res.redacted and "cli-credential" in res.redacted
    for i in range(10):
        assert f"node-{i:02d}" in text
