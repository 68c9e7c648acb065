"""`labreport demo`: the README's first command renders the bundled sample."""

from __future__ import annotations

from pathlib import Path


def test_demo_html_en(tmp_path: Path, cli):
    out = tmp_path / "labreport-demo"
    code, stdout, err = cli("demo", "--format", "html", "--lang", "en", "--out", out)
    assert code == 0, err
    html = (out / "report.html").read_text("utf-8")
    assert stdout.strip().endswith("report.html")
    assert "k8s-master" in html and "k8s-worker" in html and "veth05dbc1b4" in html
    assert "KUBE-SVC-YPW4ESSQ7BDH6RZX" in html
    # the demo compares with the bundled "before" sample (Q5)
    assert "downloader" in html[html.index("(Q5)"):]


def test_demo_md_zh_and_list(tmp_path: Path, cli):
    code, stdout, err = cli("demo", "--format", "md", "--lang", "zh", "--out", tmp_path / "d")
    assert code == 0, err
    md = (tmp_path / "d" / "report.md").read_text("utf-8")
    assert md.startswith("# Kubernetes 实践报告")
    code, stdout, err = cli("demo", "--list")
    assert code == 0 and "seed001-flannel-containerd" in stdout and "seed000-weave-docker" in stdout
    code, stdout, err = cli("demo", "--sample", "nope", "--out", tmp_path / "x")
    assert code != 0 and "nope" in err
