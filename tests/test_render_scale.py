"""A node with many pods is summarized in the diagram, and the report stays whole.

The snapshot is SYNTHETIC (tests/support/gen_snapshot.py: record shapes as collection makes
them, scale made up), since no real node with this many pods is at hand.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from labreport.render.diagram import MAX_PODS, SHOW_PODS
from labreport.render.report import render_report
from labreport.snapshot import Snapshot

ROOT = Path(__file__).resolve().parent.parent
SVG_NS = "{http://www.w3.org/2000/svg}"


def _gen():
    from tests.support import gen_snapshot

    return gen_snapshot


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_big_node_is_summarized(tmp_path: Path):
    gen = _gen()
    pods = 120
    snap = Snapshot(nodes=[gen.master(30, pods), gen.worker(pods)])
    res = render_report(snap, fmt="md", lang="en", out_dir=tmp_path)
    tree = ET.parse(tmp_path / "topology.svg")
    texts = [t.text or "" for t in tree.iter(f"{SVG_NS}text")]
    pod_boxes = [t for t in texts if t.startswith("pod default/web-")]
    assert len(pod_boxes) == SHOW_PODS < pods and pods > MAX_PODS
    assert f"… and {pods - SHOW_PODS} more pods" in texts
    # the path's target is among the pods drawn, and the path reaches it
    text = (tmp_path / "report.md").read_text("utf-8")
    assert "more pods are not drawn" in text
    assert res.diagram_error is None
    # every veth pair is still in the report's table
    assert text.count("| `veth") >= pods


def test_small_node_is_not_summarized(tmp_path: Path):
    gen = _gen()
    snap = Snapshot(nodes=[gen.master(5, 10), gen.worker(10)])
    from labreport.analysis import analyze
    from labreport.render import diagram
    from labreport.render.i18n import Translator

    a = analyze(snap)
    d = diagram.build(snap, a, a.path, Translator("en"))
    assert d.summarized == {} and d.dot.count('label="pod default/web-') == 10
    assert d.path_edges >= 5
