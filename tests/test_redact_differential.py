"""Secrets planted where a user's data can carry them, in real outputs, and the redaction
checked end to end: the fast paths (``json_is_clean``, ``_nft_is_clean``, ``_ipt_is_clean``,
node-by-node ``redact_snapshot``) against the walk, and the outputs (the stored snapshot,
``analyze --json``, ``render``, ``trace``, ``diff``) against the planted values.

The oracle is the catalogue itself (tests/support/secrets_catalogue.py): a form that
``redact_text`` redacts when it stands alone must be redacted wherever it stands — a rule's
comment, a set element's comment, a pod's label, a container's env or args, a process's
command line. Variants of each form (JSON-escaped, upper-cased, quoted) are planted too; a
variant the catalogue does not redact alone is only checked for the fast paths agreeing
with the walk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from labreport.importer import import_files
from labreport.redact import (_ipt_is_clean, _nft_is_clean, _Redactor, _walk_snapshot, for_storage, json_is_clean,
                              redact_snapshot, redact_text)
from labreport.snapshot import Snapshot, save
from tests.support.secrets_catalogue import CATALOGUE

KEY_DATA = "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ=="
KC_TOKEN = "kc-token-8f2e1d9c"


def _in_netns(script: str) -> str:
    """``script`` run by sh in a network namespace of this test's own (deleted after)."""
    ns = f"lrredact{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    try:
        return subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", script], check=True,
                              capture_output=True, text=True, timeout=60).stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


needs_lab = pytest.mark.skipif(os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "nft", "iptables-save")),
                               reason="needs root, ip, nft and iptables")


@needs_lab
def test_kubeconfig_lines_in_real_nft_and_iptables_comments_are_redacted():
    """The known leak: ``client-key-data: …`` (a kubeconfig line) as a rule comment, listed
    by the real nft and iptables-save of a namespace of the test's own."""
    out = _in_netns(f'''
nft add table inet lab
nft add chain inet lab input '{{ type filter hook input priority 0; policy accept; }}'
nft add rule inet lab input tcp dport 6443 accept comment '"client-key-data: {KEY_DATA}"'
nft add rule inet lab input tcp dport 8080 accept comment '"token: {KC_TOKEN}"'
nft list ruleset
echo ==SPLIT==
iptables -A INPUT -p tcp --dport 6443 -m comment --comment "client-key-data: {KEY_DATA}" -j ACCEPT
iptables -A INPUT -p tcp --dport 8080 -m comment --comment "token: {KC_TOKEN}" -j ACCEPT
iptables-save
''')
    nft, ipt = out.split("==SPLIT==\n")
    assert f'comment "client-key-data: {KEY_DATA}"' in nft and f'--comment "token: {KC_TOKEN}"' in ipt
    snap = import_files([("n", {"nft": [("r.nft", nft)], "iptables-save": [("i.txt", ipt)]})], kubectl=[])
    assert KEY_DATA in snap.model_dump_json()  # the control: the secret is in the parsed snapshot
    for redacted in (for_storage(snap), _walk_snapshot(snap)[0], redact_snapshot(snap)[0]):
        text = redacted.model_dump_json()
        assert KEY_DATA not in text and KC_TOKEN not in text
        assert "client-key-data: <redacted:" in text and "token: <redacted:" in text



@needs_lab
def test_secrets_in_real_comments_of_every_kind_and_the_json_listing_are_redacted():
    """Other forms a comment can carry, from the real tools: JSON in an iptables comment
    (iptables-save escapes its quotes), an env assignment and an Authorization header; YAML
    lines in an nft rule's, a set's and a set element's comment, listed as text and as
    ``nft -j`` JSON."""
    secrets = ["JsonTok12345", "EnvPw0099", "abcDEF0123456789xyz", "dXNlcjpSZWdQYXNz", "SetPw0077", "ElemSec0088"]
    out = _in_netns(r"""
iptables -A INPUT -m comment --comment '{"token": "JsonTok12345"}' -j ACCEPT
iptables -A INPUT -m comment --comment 'password=EnvPw0099 x' -j ACCEPT
iptables -A INPUT -m comment --comment 'Authorization: Bearer abcDEF0123456789xyz' -j ACCEPT
iptables-save
iptables -F INPUT
echo ==SPLIT==
nft add table inet lab
nft add chain inet lab c
nft add rule inet lab c accept comment '"auth: dXNlcjpSZWdQYXNz"'
nft add set inet lab s '{ type ipv4_addr; comment "password: SetPw0077"; }'
nft add element inet lab s '{ 10.0.0.1 comment "secret: ElemSec0088" }'
nft list ruleset
echo ==SPLIT==
nft -j list ruleset
""")
    ipt, nft, nft_json = out.split("==SPLIT==\n")
    assert '--comment "{\\"token\\": \\"JsonTok12345\\"}"' in ipt  # iptables-save's own escaping
    for files in ({"iptables-save": [("i.txt", ipt)]}, {"nft": [("r.nft", nft)]}, {"nft": [("r.json", nft_json)]}):
        snap = import_files([("n", files)], kubectl=[])
        raw = snap.model_dump_json()
        mine = [s for s in secrets if s in raw]
        assert mine  # the control: the parser kept the comments
        for redacted in (for_storage(snap), redact_snapshot(snap)[0]):
            text = redacted.model_dump_json()
            assert not [s for s in mine if s in text], (list(files), [s for s in mine if s in text])


# -- the differential test: every catalogue form, in every string-bearing place of real fixtures


FIX = Path(__file__).resolve().parent / "fixtures" / "parsers"
NFT = (FIX / "nft" / "kube-proxy-lab.nft").read_text()
IPT = (FIX / "iptables-save" / "lab-iptables-save.txt").read_text()
PS = (FIX / "ps" / "here-ps-ef-grep.out").read_text()
DOCKER = (FIX / "docker-inspect" / "here-docker-inspect-pod.out").read_text()
POD = (FIX / "kubectl" / "seed000-pod.out").read_text()


def _variants() -> list[tuple[str, str, str]]:
    """(variant id, planted text, its secret part): each catalogue form as it stands, JSON-
    escaped (as it reads inside a JSON string kept in a string), upper-cased, quoted."""
    out = []
    for form, example, secret, _kind in CATALOGUE:
        out.append((f"{form}", example, secret))
        out.append((f"{form} (json-escaped)", json.dumps(example)[1:-1], json.dumps(secret)[1:-1]))
        out.append((f"{form} (upper)", example.upper(), secret.upper()))
        out.append((f"{form} (single-quoted)", f"'{example}'", secret))
        out.append((f"{form} (double-quoted)", f'"{example}"', secret))
        out.append((f"{form} (in a sentence)", f"note from ops: {example} (rotate monthly)", secret))
    return out


VARIANTS = _variants()
Plant = Callable[[str], tuple[dict[str, list[tuple[str, str]]], list[tuple[str, str]]]]


def _nft_comment(anchor: str) -> Plant:
    def plant(v: str) -> Any:
        assert f'comment "{anchor}"' in NFT
        return {"nft": [("ruleset.nft", NFT.replace(f'comment "{anchor}"', f'comment "{v}"', 1))]}, []
    return plant


def _ipt_comment(v: str) -> Any:
    anchor = '--comment "kubernetes load balancer firewall"'
    assert anchor in IPT
    quoted = v.replace('"', '\\"')  # as iptables-save prints a comment's quotes (the test above)
    return {"iptables-save": [("ipt.txt", IPT.replace(anchor, f'--comment "{quoted}"', 1))]}, []


def _ps_cmdline(v: str) -> Any:
    anchor = "--hostname-override=lrp-worker"
    assert anchor in PS
    return {"ps": [("ps.txt", PS.replace(anchor, f"{anchor} {v}", 1))]}, []


def _docker(where: str) -> Plant:
    def plant(v: str) -> Any:
        objs = json.loads(DOCKER)
        app = objs[1]
        if where == "env":
            app["Config"]["Env"] = [*(app["Config"]["Env"] or []), v]
        elif where == "args":
            app["Args"] = [*app["Args"], v]
            app["Config"]["Cmd"] = [*(app["Config"]["Cmd"] or []), v]
        elif where == "label":
            app["Config"]["Labels"]["io.example.note"] = v
        return {"inspect": [("inspect.json", json.dumps(objs, indent=4))]}, []
    return plant


def _pod(where: str) -> Plant:
    def plant(v: str) -> Any:
        pod = yaml.safe_load(POD)
        c = pod["spec"]["containers"][0]
        if where == "label":
            pod["metadata"]["labels"]["note"] = v
        elif where == "annotation":
            pod["metadata"]["annotations"] = {"example.com/note": v}
        elif where == "env":
            c["env"] = [{"name": "NOTE", "value": v}]
        elif where == "args":
            c["args"] = ["--verbose", v]
        elif where == "name":
            pod["metadata"]["name"] = v
        return {}, [("pod.json", json.dumps(pod, indent=4))]
    return plant


CONFIGMAP = (Path(__file__).resolve().parent / "fixtures" / "k8s-api" / "configmap-kube-proxy.json").read_text()


def _configmap(v: str) -> Any:
    """A line of the kubeconfig kube-proxy's ConfigMap carries (its data, as kubectl -o json prints it)."""
    cm = json.loads(CONFIGMAP)
    cm["data"]["kubeconfig.conf"] = cm["data"]["kubeconfig.conf"].rstrip("\n") + "\n" + v + "\n"
    return {}, [("cm.json", json.dumps(cm, indent=2))]


# (place, planter, characters the place cannot carry in its real syntax)
PLACES: list[tuple[str, Plant, str]] = [
    ("nft table comment", _nft_comment("rules for kube-proxy"), '"\n'),
    ("nft set comment", _nft_comment("Active ClusterIPs"), '"\n'),
    ("nft set element comment", _nft_comment("default/empty"), '"\n'),
    ("nft rule comment", _nft_comment("short-circuit pod traffic"), '"\n'),
    ("iptables comment", _ipt_comment, "\n"),
    ("ps command line", _ps_cmdline, "\n"),
    ("docker env", _docker("env"), ""),
    ("docker args", _docker("args"), ""),
    ("docker label", _docker("label"), ""),
    ("pod label", _pod("label"), ""),
    ("pod annotation", _pod("annotation"), ""),
    ("pod env", _pod("env"), ""),
    ("pod args", _pod("args"), ""),
    ("pod name", _pod("name"), ""),
    ("configmap data", _configmap, ""),
]


def _snapshot(files: dict[str, list[tuple[str, str]]], kubectl: list[tuple[str, str]]) -> Snapshot:
    return import_files([("node-a", files)], kubectl=kubectl)


def _full_walk(snap: Snapshot) -> Any:
    """The walk over the whole snapshot with no fast path: the reference."""
    r = _Redactor()
    return r.document(snap.model_dump(mode="json")), r.kinds


def _is_secret_alone(example: str, secret: str) -> bool:
    out, _ = redact_text(example)
    return secret not in out


def _check(place: str, plant: Plant, vid: str, text: str, secret: str) -> list[str]:
    """The failures of one planted variant in one place (empty: it passed)."""
    files, kubectl = plant(text)
    snap = _snapshot(files, kubectl)
    raw = snap.model_dump_json()
    if secret not in raw:
        return []  # the parser did not keep it (a place that drops the text): nothing to leak
    ref, ref_kinds = _full_walk(snap)
    ref_json = json.dumps(ref, sort_keys=True)
    fails = []
    got, kinds = redact_snapshot(snap)
    got_json = json.dumps(got.model_dump(mode="json"), sort_keys=True)
    if ref_kinds and got_json != json.dumps(Snapshot.model_validate(ref).model_dump(mode="json"), sort_keys=True):
        fails.append(f"{place} / {vid}: redact_snapshot differs from the full walk")
    if not ref_kinds and got is not snap:
        fails.append(f"{place} / {vid}: the walk changes nothing but redact_snapshot made a copy")
    # (a) each fast path says "not clean" whenever the walk changes something in its part
    for node, rnode in zip(snap.nodes, ref["nodes"]):
        node_data = node.model_dump(mode="json")
        if rnode != node_data and json_is_clean(node.__pydantic_serializer__.to_json(node)):
            fails.append(f"{place} / {vid}: json_is_clean(node) says clean, the walk changes it")
        for key, judge in (("nftables", _nft_is_clean), ("iptables", _ipt_is_clean)):
            sub = getattr(node, key, None)
            if sub and rnode.get(key) != node_data.get(key) and judge(sub) is True:
                fails.append(f"{place} / {vid}: the fast path of {key} says clean, the walk changes it")
    rest = {k: v for k, v in ref.items() if k != "nodes"}
    if rest != snap.model_dump(mode="json", exclude={"nodes"}) and json_is_clean(
            snap.__pydantic_serializer__.to_json(snap, exclude={"nodes"})):
        fails.append(f"{place} / {vid}: json_is_clean(rest) says clean, the walk changes it")
    # (b) a form the catalogue redacts alone is redacted here too
    if _is_secret_alone(text, secret):
        if secret in got_json or secret in ref_json:
            fails.append(f"{place} / {vid}: the secret {secret!r} survives")
    return fails


def test_every_form_in_every_place_fast_paths_agree_with_the_walk_and_nothing_leaks():
    fails: list[str] = []
    checked = 0
    for place, plant, cannot in PLACES:
        for vid, text, secret in VARIANTS:
            if any(c in text for c in cannot):
                continue
            checked += 1
            fails.extend(_check(place, plant, vid, text, secret))
    assert checked > 500
    assert not fails, f"{len(fails)} of {checked}:\n" + "\n".join(fails)


@pytest.mark.parametrize("place,plant,cannot", PLACES, ids=[p[0] for p in PLACES])
def test_clean_fixtures_stay_byte_identical(place: str, plant: Plant, cannot: str):
    """(c) the real fixtures as they are (a word of no secret planted): nothing replaced."""
    files, kubectl = plant("plain-note")
    snap = _snapshot(files, kubectl)
    got, kinds = redact_snapshot(snap)
    assert not kinds and got is snap
    stored = for_storage(snap)
    assert stored.model_dump_json(exclude={"redaction"}) == snap.model_dump_json(exclude={"redaction"})
    ref, ref_kinds = _full_walk(snap)
    assert not ref_kinds and ref == snap.model_dump(mode="json")


# -- the outputs: analyze --json, render md/html, trace, diff (the CLI in a subprocess)


ROOT = Path(__file__).resolve().parent.parent
LIVE = ROOT / "samples" / "live-containerd-docker-node"


def _cli(*args: Any) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "COLUMNS": "400"}
    p = subprocess.run([sys.executable, "-m", "labreport", *map(str, args)], capture_output=True, text=True,
                       timeout=300, cwd=str(ROOT), env=env)
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    return p.returncode, p.stdout + p.stderr


def _outputs(tmp: Path, snapdir: Path, *extra: str) -> dict[str, str]:
    """Every output of the snapshot: analyze --json, render md and html (all files), trace --all (text
    and JSON)."""
    outs: dict[str, str] = {}
    rc, outs["analyze --json"] = _cli("analyze", snapdir, "--json", *extra)
    assert rc in (0, 10), outs["analyze --json"][-2000:]
    for fmt in ("md", "html"):
        d = tmp / f"out-{fmt}-{len(extra)}"
        rc, err = _cli("render", snapdir, "--format", fmt, "--out", d, "--quiet", *extra)
        assert rc in (0, 10), err[-2000:]
        outs[f"render {fmt}"] = err + "".join(f.read_text("utf-8", "replace") for f in sorted(d.rglob("*"))
                                              if f.is_file() and f.suffix in (".md", ".html", ".json", ".dot", ".svg"))
    for args in (("--all",), ("--all", "--json")):
        rc, outs["trace " + " ".join(args)] = _cli("trace", snapdir, *args, *extra)
        assert rc in (0, 10), outs["trace " + " ".join(args)][-2000:]
    return outs


def test_planted_secrets_reach_no_output_of_the_cli(tmp_path):
    """Every base catalogue form its places can carry, each in its own node (a real nft and
    iptables listing with the form as a rule comment, a ps line, a docker container's env,
    label and args) and its own pod (label, annotation, env, args): no output of analyze,
    render, trace holds a planted secret; with --no-redact they do (the control)."""
    nodes = []
    pods = []
    planted: list[str] = []
    for i, (_form, example, secret, _kind) in enumerate(CATALOGUE):
        if not _is_secret_alone(example, secret):
            continue
        planted.append(secret)
        files: dict[str, list[tuple[str, str]]] = {}
        if '"' not in example and "\n" not in example:
            files.update(_nft_comment("short-circuit pod traffic")(example)[0])
            files.update(_ipt_comment(example)[0])
        if "\n" not in example:
            files.update(_ps_cmdline(example)[0])
        for where in ("env", "label", "args"):
            inspect = _docker(where)(example)[0]["inspect"]
            files.setdefault("inspect", []).append((f"inspect-{where}.json", inspect[0][1]))
        nodes.append((f"node-{i}", files))
        for where in ("label", "annotation", "env", "args"):
            pod = json.loads(_pod(where)(example)[1][0][1])
            pod["metadata"]["name"] = f"pod-{i}-{where}"
            pods.append(pod)
    kubectl = [("pods.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}))]
    snap = import_files(nodes, kubectl=kubectl, keep_going=True)
    raw = snap.model_dump_json()
    assert all(s in raw for s in planted)  # the control: every secret is in the snapshot
    snapdir = tmp_path / "snap"
    save(snap, snapdir)
    leaks = [f"{name}: {s!r}" for name, text in _outputs(tmp_path, snapdir).items() for s in planted if s in text]
    assert not leaks, "\n".join(leaks)
    shown = _outputs(tmp_path, snapdir, "--no-redact")
    for name in ("analyze --json", "render md", "render html"):  # the control: these outputs print every place
        assert all(s in shown[name] for s in planted), name


def _live_with(plant: str, where: str) -> str:
    text = (LIVE / "snapshot.json").read_text("utf-8")
    assert text.count(where) >= 1
    return text.replace(where, plant)


def test_trace_and_diff_print_no_planted_secret(tmp_path):
    """``trace`` prints rule texts (with their comments) and names, ``diff`` the names and
    details of what changed: a kubeconfig line in a rule comment and a password in a
    container's name (the live sample, minimally edited) are redacted in both."""
    secret = KEY_DATA
    d = tmp_path / "planted"
    d.mkdir()
    text = _live_with(f"client-key-data: {secret}", "kubernetes service portals")
    name = json.loads(text)["nodes"][0]["containers"][0]["name"]
    text = text.replace(f'"{name}"', f'"{name} DB_PASSWORD=DiffPw0001"')
    (d / "snapshot.json").write_text(text, "utf-8")
    runs = {}
    for args in (("trace", d, "--from", "default/fileserver", "--to", "default/web:http", "--json"),
                 ("trace", d, "--from", "default/fileserver", "--to", "default/web:http"),
                 ("trace", d, "--all", "--json"), ("trace", d, "--all", "--replies"),
                 ("diff", LIVE, d), ("diff", LIVE, d, "--json")):
        rc, out = _cli(*args)
        assert rc in (0, 10), out[-2000:]
        runs[" ".join(map(str, args))] = out
    for k, out in runs.items():
        assert secret not in out and "DiffPw0001" not in out, k
    # the controls: the planted strings are where these commands print them
    rc, shown = _cli("trace", d, "--from", "default/fileserver", "--to", "default/web:http", "--json", "--no-redact")
    assert secret in shown
    assert "client-key-data: <redacted:" in runs[next(iter(runs))]
    rc, shown = _cli("diff", LIVE, d, "--no-redact")
    assert "DiffPw0001" in shown
    assert "DB_PASSWORD=<redacted:" in runs[f"diff {LIVE} {d}"]
