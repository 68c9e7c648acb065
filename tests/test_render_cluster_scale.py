"""The report at cluster scale (#13 item 4): a cluster overview first (every node named,
with its pod count, CNI, proxy mode and what failed), one diagram per node beyond a handful
of nodes — all drawn by ONE `dot` run for SVG and PNG — and, beyond DETAIL_NODES_MAX nodes,
detailed sections for a few nodes only. Input: copies of the live sample node (a real node
lab's collection), renamed."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from labreport.render import report as report_mod
from labreport.render.context import PER_NODE_DIAGRAMS_ABOVE
from labreport.snapshot import Snapshot, load

ROOT = Path(__file__).resolve().parent.parent
LIVE = ROOT / "samples" / "live-containerd-docker-node" / "snapshot.json"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def cluster(n: int, fail: int | None = None) -> Snapshot:
    data = json.loads(LIVE.read_text("utf-8"))
    node = json.dumps(data["nodes"][0])
    old = json.dumps(data["nodes"][0]["name"])
    nodes = [json.loads(node.replace(old, json.dumps(f"node-{i:03d}"))) for i in range(n)]
    if fail is not None:
        nodes[fail] = {"name": f"node-{fail:03d}", "status": "failed", "error": "ssh: connection refused"}
    data["nodes"] = nodes
    with tempfile.TemporaryDirectory() as tmp:  # through the loader, as a user's file is read
        f = Path(tmp) / "snapshot.json"
        f.write_text(json.dumps(data), "utf-8")
        return load(f)


def _dot_runs(monkeypatch) -> list[list[str]]:
    """The `dot` command lines a render starts (subprocess.run or Popen)."""
    runs: list[list[str]] = []
    real_run, real_popen = subprocess.run, subprocess.Popen

    def seen(argv):
        if isinstance(argv, list) and argv and str(argv[0]).endswith("dot"):
            runs.append([str(x) for x in argv])

    def spy_run(argv, *a, **kw):
        seen(argv)
        return real_run(argv, *a, **kw)

    class SpyPopen(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, argv, *a, **kw):
            seen(argv)
            super().__init__(argv, *a, **kw)

    monkeypatch.setattr(subprocess, "run", spy_run)
    monkeypatch.setattr(subprocess, "Popen", SpyPopen)
    return runs


@needs_dot
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_six_nodes_overview_first_and_a_diagram_per_node(tmp_path: Path, monkeypatch, lang: str):
    n = PER_NODE_DIAGRAMS_ABOVE + 2
    runs = _dot_runs(monkeypatch)
    res = report_mod.render_report(cluster(n, fail=3), fmt="html", lang=lang, out_dir=tmp_path)
    assert not res.missing_keys
    # one dot run per diagram, started together, each writing both formats from one layout
    assert len(runs) == n and all("-Tsvg" in r and "-Tpng" in r and sum(a.endswith(".dot") for a in r) == 1
                                  for r in runs)
    html = res.main.read_text("utf-8")
    start = html.index({"en": ">Cluster overview<", "zh": ">集群概览<"}[lang])
    overview = html[start:html.index({"en": "1. Environment", "zh": "1. 环境"}[lang], start)]
    for i in range(n):
        assert f"node-{i:03d}" in overview
    assert "node-003" in overview and {"en": "failed", "zh": "失败"}[lang] in overview
    assert html.count("<svg") == n  # one diagram per node (the failed one has an empty one)
    pngs = sorted(p.name for p in tmp_path.glob("topology*.png"))
    assert len(pngs) == n and "topology.png" in pngs


@needs_dot
def test_many_nodes_detail_a_few_and_name_every_node(tmp_path: Path, monkeypatch):
    n = report_mod.DETAIL_NODES_MAX * 3
    runs = _dot_runs(monkeypatch)
    res = report_mod.render_report(cluster(n), fmt="md", lang="en", out_dir=tmp_path)
    text = res.main.read_text("utf-8")
    assert len(runs) == report_mod.DETAIL_NODES_MAX  # one per diagram drawn
    for i in range(n):
        assert f"| node-{i:03d} |" in text  # every node is a row of the overview
    assert f"the other {n - report_mod.DETAIL_NODES_MAX} are summarized in the overview" in text
    assert f"{n - report_mod.DETAIL_NODES_MAX} more nodes are not drawn" in text
    # the detailed sections cover the featured nodes only
    assert text.count("### node-000 — network devices") == 1 and "### node-020 — network devices" not in text
    assert len(list(tmp_path.glob("topology*.svg"))) == report_mod.DETAIL_NODES_MAX


def test_small_clusters_are_unchanged(tmp_path: Path, monkeypatch):
    runs = _dot_runs(monkeypatch)
    res = report_mod.render_report(cluster(2), fmt="md", lang="en", out_dir=tmp_path)
    text = res.main.read_text("utf-8")
    assert "Topology of" not in text and "summarized in the overview" not in text
    assert len(runs) <= 1 and sorted(p.name for p in tmp_path.glob("topology*.svg")) in ([], ["topology.svg"])


@needs_dot
def test_start_many_runs_every_dot_at_once_and_keeps_each_result_apart(tmp_path: Path, monkeypatch):
    """start_many starts one dot per diagram before any is waited for; a graph dot rejects
    fails alone; each SVG is what dot draws of that graph alone (scaled back to 72 dpi)."""
    from labreport.render import diagram

    good = [diagram.Diagram(dot=f'digraph {{ a{i} -> b{i} [label="edge {i}"] }}', mermaid="") for i in range(3)]
    bad = diagram.Diagram(dot="digraph { a -> }", mermaid="")
    runs = _dot_runs(monkeypatch)
    pending = diagram.start_many([good[0], bad, good[1], good[2]])
    assert len(runs) == 4  # all started, none waited for yet
    res = pending.wait()
    assert res[1].svg is None and res[1].error and res[1].error.startswith("dot failed")
    for i, r in zip((0, 1, 2), (res[0], res[2], res[3])):
        assert r.error is None and r.png and r.png.startswith(b"\x89PNG")
        alone = subprocess.run(["dot", f"-Gdpi={diagram.PNG_DPI}", "-Tsvg"], input=good[i].dot.encode(),
                               capture_output=True, check=True).stdout.decode()
        assert r.svg == diagram._svg_at_72dpi(alone)
        assert f"edge {i}" in r.svg
    assert pending.wait() is res  # collected once
