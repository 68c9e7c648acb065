"""The report's path (Q6) ends with its way back: the reply of the traced outcome, from the
trace's conntrack model (labreport.analysis.trace, proven against the kernel in
tests/test_trace_kernel_*.py). On snapshots recorded from the kernel-oracle labs
(tests/fixtures/trace-reply/) and the live sample: the sentence names what the endpoint
sends, what the client receives and the nodes whose conntrack reversed the NAT — as the
trace says, in English and in Chinese; a reply that fails is a warning with its reason."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from labreport import snapshot as snapmod
from labreport.analysis import analyze
from labreport.analysis.model import PathReply
from labreport.render.report import render_report

FIX = Path(__file__).parent / "fixtures" / "trace-reply"
LIVE = Path(__file__).parent.parent / "samples" / "live-containerd-docker-node" / "snapshot.json"


def _load(name: str) -> snapmod.Snapshot:
    if name == "live":
        return snapmod.load(LIVE)
    return snapmod.from_dict(json.loads(gzip.decompress((FIX / f"{name}.json.gz").read_bytes())))


def _report(snap: snapmod.Snapshot, lang: str, tmp_path: Path) -> str:
    out = tmp_path / lang
    render_report(snap, fmt="md", lang=lang, out_dir=str(out))
    return (out / "report.md").read_text("utf-8")


@pytest.mark.parametrize("name", ["live", "iptables-one-node", "nft-two-nodes"])
def test_the_path_has_its_way_back_as_the_trace_says(name: str, tmp_path: Path) -> None:
    snap = _load(name)
    a = analyze(snap)
    assert a.path is not None and a.path.traced, "the report's path is traced"
    r = a.path.reply
    assert r is not None and r.result == "delivered"
    # the endpoint answers from the address the path delivered to; the client receives it
    # from the address it connected to (the Service's front), not from the pod
    assert r.src == a.path.target
    assert r.seen_src == r.expected_src and r.seen_src != r.src
    assert r.nat_nodes and set(r.nat_nodes) <= {n.name for n in snap.nodes}
    assert r.dst and ":" not in r.dst.replace("::", ""), "hosts only: the client's port is the kernel's choice"
    en = _report(snap, "en", tmp_path)
    zh = _report(snap, "zh", tmp_path)
    assert f"The way back: the endpoint answers {r.src} → {r.dst}." in en
    assert f"the client receives {r.seen_src} → {r.seen_dst}" in en
    assert f"the conntrack entry on {', '.join(r.nat_nodes)} reverses" in en
    assert f"回程：端点以 {r.src} → {r.dst} 应答" in zh and f"客户端收到 {r.seen_src} → {r.seen_dst}" in zh
    # after the hop list, before the next section
    assert en.index("The way back") > en.index(f"### The path from {a.path.from_node}")


def test_a_reply_that_fails_is_a_warning_with_its_reason(tmp_path: Path) -> None:
    snap = _load("live")
    a = analyze(snap)
    assert a.path is not None
    why = "reply bypasses the conntrack entry on lab-node (client sees 10.244.1.3, expected 10.96.0.80)"
    path = a.path.model_copy(update={"reply": PathReply(result="dropped", src="10.244.1.3:80", dst="10.244.1.2",
                                                         reason=why)})
    out = tmp_path / "r"
    render_report(snap, fmt="md", lang="en", out_dir=str(out), analysis=a.model_copy(update={"path": path}),
                  redact=False)
    text = (out / "report.md").read_text("utf-8")
    assert "The way back fails: " in text and "10.244.1.3, expected 10.96.0.80" in text
    assert "The way back: the endpoint answers" not in text
