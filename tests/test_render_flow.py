"""Analysis computes, render lays out (#10 item 1), Q5 against OCR-damaged IDs (#12 item 3),
and a report that never crashes on cluster objects of the wrong shape.

Real inputs: the bundled samples are real student outputs imported with `labreport import`.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labreport.analysis as analysis_pkg
from labreport.analysis import path as path_mod
from labreport.analysis import services as services_mod
from labreport.analysis import veth as veth_mod
from labreport.diff import container_changes, diff_snapshots, ocr_close
from labreport.render.report import render_report
from labreport.snapshot import ClusterObjects, Snapshot, load

ROOT = Path(__file__).resolve().parent.parent
S1 = ROOT / "samples" / "seed001-flannel-containerd"
S1_BEFORE = ROOT / "samples" / "seed001-flannel-containerd-before"
SEED1 = ROOT / "tests" / "fixtures" / "seeds" / "seed001"


def _count(monkeypatch, module, name: str, counter: Counter, key) -> None:
    real = getattr(module, name)

    def wrapped(*a, **kw):
        counter[key(*a, **kw)] += 1
        return real(*a, **kw)

    monkeypatch.setattr(module, name, wrapped)


def test_render_with_path_and_before_analyzes_each_snapshot_once(tmp_path: Path, monkeypatch):
    after, before = load(S1), load(S1_BEFORE)
    snaps: Counter = Counter()
    nodes: Counter = Counter()
    veths: Counter = Counter()
    decodes: Counter = Counter()
    traces: Counter = Counter()
    _count(monkeypatch, analysis_pkg, "_analyze", snaps, lambda s, **kw: id(s))
    _count(monkeypatch, analysis_pkg, "analyze_node", nodes, lambda n, *a, **kw: id(n))
    _count(monkeypatch, veth_mod, "match_veths", veths, lambda n, *a, **kw: id(n))
    _count(monkeypatch, services_mod, "decode_services", decodes, lambda n, *a, **kw: id(n))
    _count(monkeypatch, path_mod, "trace_path", traces, lambda *a, **kw: 1)
    res = render_report(after, fmt="md", lang="en", out_dir=tmp_path, before=before,
                        path_service="default/test-service:downloader")
    text = res.main.read_text("utf-8")
    assert "through default/test-service:downloader" in text
    # two snapshots (redacted copies), each analyzed once; every node once; one trace per analysis
    assert sorted(snaps.values()) == [1, 1] and len(snaps) == 2
    assert len(nodes) == len(after.nodes) + len(before.nodes) and set(nodes.values()) == {1}
    assert set(veths.values()) == {1} and len(veths) == len(nodes)
    assert set(decodes.values()) == {1} and len(decodes) == len(nodes)
    assert sum(traces.values()) == 2


def test_q5_on_seed001_no_new_containers_on_the_master(tmp_path: Path):
    """The master's two `crictl ps` pastes differ in a few ID characters (OCR): the same
    containers. On the worker the testpod's sandbox and its two app containers are new."""
    after, before = load(S1), load(S1_BEFORE)
    assert before.node("k8s-master") is not None and before.node("k8s-master").containers
    d = diff_snapshots(before, after)
    m = d["nodes"]["k8s-master"]
    assert m["status"] == "compared"
    assert m["containers"]["added"] == [] and m["containers"]["removed"] == []
    assert len(m["containers"]["ocr_matched"]) == 7  # kube-proxy's ID was pasted identically
    ch = container_changes(d, after)
    assert [c for c in ch.new if c.node == "k8s-master"] == []
    worker = sorted((c.short_name, c.pod, c.is_sandbox) for c in ch.new if c.node == "k8s-worker")
    assert worker == [("downloader", "testpod", False), ("fileserver", "testpod", False),
                      ("pause", "testpod", True)]
    sb = next(c for c in ch.new if c.is_sandbox)
    assert sb.inferred and sb.id == "e6cf53e8a57e5"
    res = render_report(after, fmt="md", lang="en", out_dir=tmp_path, before=before)
    text = res.main.read_text("utf-8")
    q5 = text[text.index("## 5."):text.index("## 6.")]
    for name in ("coredns", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert f"| k8s-master | `{name}`" not in q5
    assert "| k8s-worker | `downloader`" in q5 and "| k8s-worker | `fileserver`" in q5
    assert "the pod sandbox (pause), not listed by crictl ps itself" in q5
    assert "differ only in a few characters" in q5


def test_ocr_close_is_not_any_two_ids():
    pairs = [(line.split("\t")[0], other.split("\t")[0])
             for line, other in zip((SEED1 / "master-crictl-ps.txt").read_text().splitlines()[1:],
                                    (SEED1 / "master-crictl-ps-after.txt").read_text().splitlines()[1:])]
    assert all(ocr_close(a, b) for a, b in pairs)
    # different containers of that listing are not "close"
    ids = [a for a, _ in pairs]
    assert not any(ocr_close(a, b) for i, a in enumerate(ids) for b in ids[i + 1:])
    assert not ocr_close("23f2f68378cc", "a7fae79530a1")


def test_a_restarted_container_with_a_new_id_is_new():
    after, before = load(S1), load(S1_BEFORE)
    for c in after.node("k8s-master").containers:
        if c.name == "etcd":
            c.id = "0123456789ab"  # a new container for the same name, pod and image
    m = diff_snapshots(before, after)["nodes"]["k8s-master"]
    assert [c["name"] for c in m["containers"]["added"]] == ["etcd"]
    assert [c["name"] for c in m["containers"]["removed"]] == ["etcd"]


# --------------------------------------------------------------------------- wrong shapes

_BASE = load(S1)
_CLUSTER = _BASE.cluster.model_dump(mode="json")
_ODD = st.one_of(st.integers(-3, 9000), st.text(max_size=6), st.lists(st.integers(0, 99), max_size=3),
                 st.none(), st.booleans(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                 st.lists(st.text(max_size=3), max_size=2))


def _paths(obj, prefix=()):
    """Every (path) into the JSON value, dicts and lists alike."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


_ALL = [p for p in _paths(_CLUSTER) if len(p) >= 2 and p[0] in ("pods", "services", "hpas", "deployments",
                                                                   "nodes", "manifests")]


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


@pytest.mark.parametrize("path,value", [
    (("pods", 0, "spec", "containers", 0, "ports"), 8080),
    (("pods", 0, "spec", "containers", 0, "ports"), [80]),
    (("pods", 0, "metadata"), "web"),
    (("services", 0, "spec", "ports"), [80]),
    (("hpas", 0, "spec"), "x"),
])
def test_named_wrong_shapes_are_marked_not_fatal(tmp_path: Path, path, value):
    cl = copy.deepcopy(_CLUSTER)
    cl["manifests"] = []  # read the objects themselves
    _set(cl, path, value)
    snap = _BASE.model_copy(update={"cluster": ClusterObjects.model_validate(cl)})
    res = render_report(snap, fmt="md", lang="zh", out_dir=tmp_path)
    text = res.main.read_text("utf-8")
    assert not res.missing_keys
    from labreport.analysis import analyze

    a = analyze(snap)
    assert not [w for w in a.warnings if "failed" in w], a.warnings
    problems = a.workloads.problems
    assert problems, "the wrong shape is recorded"
    assert any(p.field in text.replace("\\", "") for p in problems)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_ALL), _ODD), min_size=1, max_size=4), st.booleans())
def test_render_survives_mutated_cluster_objects(tmp_path_factory, mutations, use_manifests):
    cl = copy.deepcopy(_CLUSTER)
    if not use_manifests:
        cl["manifests"] = []
    for path, value in mutations:
        try:
            _set(cl, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced a parent
    try:
        co = ClusterObjects.model_validate(cl)
    except Exception:
        return  # the snapshot loader refuses it (top-level lists must be lists of objects)
    snap = Snapshot.model_validate({**_BASE.model_dump(mode="json"), "cluster": json.loads(co.model_dump_json())})
    out = tmp_path_factory.mktemp("r")
    res = render_report(snap, fmt="md", lang="en", out_dir=out)
    assert res.main.exists()
    assert "workloads: failed" not in res.main.read_text("utf-8")


def test_render_cli_never_exits_70_on_wrong_shapes(tmp_path: Path, cli):
    from labreport.snapshot import save

    cl = copy.deepcopy(_CLUSTER)
    cl["manifests"] = []
    _set(cl, ("pods", 0, "spec", "containers", 0, "ports"), 8080)
    _set(cl, ("services", 0, "metadata"), "web")
    snap = _BASE.model_copy(update={"cluster": ClusterObjects.model_validate(cl)})
    save(snap, tmp_path / "s")
    code, out, err = cli("render", tmp_path / "s", "--format", "md", "--out", tmp_path / "o", "-q")
    assert code == 0, err
    assert Path(out.strip()).name == "report.md"


@pytest.mark.parametrize("fmt", ["md", "html", "pdf"])
def test_zip_for_every_format_and_quiet_prints_the_path(tmp_path: Path, cli, fmt: str):
    import shutil
    import zipfile

    if fmt == "pdf" and not any(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("no Chromium to print the PDF")
    code, out, err = cli("render", S1, "--format", fmt, "--out", tmp_path / "o", "--zip", "-q")
    assert code == 0, err
    main = tmp_path / "o" / f"report.{fmt}"
    assert out.strip() == str(main)
    names = set(zipfile.ZipFile(tmp_path / "o" / "report.zip").namelist())
    assert f"report.{fmt}" in names and "topology.dot" in names


@settings(max_examples=3000)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
       | st.sampled_from(["ghp_" + "a" * 36, "s." + "b" * 24, "abcdef.0123456789abcdef", "x -u bob:pw", "hvs.x"]))
def test_redaction_prefilter_is_exactly_the_trigger(s):
    """The fast path render relies on (redaction of a 1,000-pod node) answers as the regex."""
    from labreport import redact

    assert redact._triggered(s) == (redact._TRIGGER.search(s) is not None)
