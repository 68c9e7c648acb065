"""The report: every bundled sample rendered in every format and language, checked for content.

Real parts: Graphviz's `dot` draws the diagram (skipped with the reason when missing), the
samples are real student outputs imported with `labreport import`.
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from labreport.analysis import analyze
from labreport.render.report import render_report
from labreport.snapshot import load

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(p.parent for p in (ROOT / "samples").glob("*/snapshot.json") if not p.parent.name.endswith("-before"))
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
SVG_NS = "{http://www.w3.org/2000/svg}"

SECTION_TITLES = {
    "en": ["Summary", "Environment and kubeadm preflight checks", "Processes and their roles",
           "Containers per node, grouped by pod", "Manifests as applied", "The containers a pod added",
           "Network devices, veth pairs and the traffic path", "From a Service's cluster IP to a pod",
           "What kube-proxy does", "Do the replicas share files", "HorizontalPodAutoscaler",
           "Appendix: complete evidence"],
    "zh": ["概要", "环境与 kubeadm 预检", "进程及其作用", "各节点的容器（按 Pod 分组）", "声明式部署的清单",
           "部署 Pod 新增的容器", "网络设备、veth 对与流量路径", "从 Service 的 cluster IP 到 Pod",
           "kube-proxy 的作用", "副本之间是否共享文件", "HorizontalPodAutoscaler", "附录：完整依据"],
}


def _before(sample: Path):
    b = sample.parent / f"{sample.name}-before"
    return load(b) if (b / "snapshot.json").exists() else None


@pytest.fixture(scope="module")
def analyses():
    return {s.name: (load(s), analyze(load(s))) for s in SAMPLES}


def test_samples_exist():
    names = {s.name for s in SAMPLES}
    assert "seed001-flannel-containerd" in names and "seed000-weave-docker" in names
    for s in SAMPLES:
        note = (s / "NOTE.md").read_text("utf-8")
        assert "Where it came from" in note or "came from" in note.lower() or s.name.startswith("live-")


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("fmt", ["md", "html"])
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_render_sample(sample: Path, fmt: str, lang: str, tmp_path: Path, analyses):
    snap, analysis = analyses[sample.name]
    res = render_report(snap, fmt=fmt, lang=lang, out_dir=tmp_path, before=_before(sample))
    assert not res.missing_keys, f"message keys missing from the {lang} catalog: {res.missing_keys}"
    main = tmp_path / ("report.md" if fmt == "md" else "report.html")
    assert res.main == main and main.exists()
    text = main.read_text("utf-8")
    # every section, in the report's language
    pos = -1
    for title in SECTION_TITLES[lang]:
        i = text.find(title, pos + 1)
        assert i > pos, f"section {title!r} missing or out of order"
        pos = i
    # every veth pair and every service endpoint the analysis found appears
    for na in analysis.nodes:
        for vp in na.veth_pairs:
            assert vp.host_ifname in text and vp.netns in text
            for ip in vp.pod_ips:
                assert ip in text
        for rec in na.services:
            assert rec.name in text
            for ep in rec.endpoints or []:
                assert ep.address in text
                if ep.chain:
                    assert ep.chain in text
    # no template leaked a key or a Jinja expression
    assert "[s." not in text and "{{" not in text and "[path." not in text
    if lang == "zh":
        assert re.search(r"[\u4e00-\u9fff]{4,}", text)
    if fmt == "html":
        assert text.startswith("<!DOCTYPE html>") and "<details" in text
        assert "WenQuanYi Micro Hei" in text and "Noto Sans CJK SC" in text and "Microsoft YaHei" in text
        assert "@media print" in text
        assert "<!--LR:" not in text, "a placeholder was not restored"
        assert 'src="' not in text or "data:" in text, "the HTML must not load files"
        if HAS_DOT:
            assert "<svg" in text
    else:
        if HAS_DOT:
            assert "![" in text and "(topology.svg)" in text
            assert (tmp_path / "topology.svg").exists() and (tmp_path / "topology.png").exists()
    assert (tmp_path / "topology.dot").exists()


@needs_dot
def test_svg_has_devices_pods_and_red_numbered_path(tmp_path: Path):
    sample = ROOT / "samples" / "seed001-flannel-containerd"
    render_report(load(sample), fmt="md", lang="en", out_dir=tmp_path)
    tree = ET.parse(tmp_path / "topology.svg")
    texts = [t.text or "" for t in tree.iter(f"{SVG_NS}text")]
    joined = "\n".join(texts)
    for name in ("eth0", "cni0", "flannel.1", "veth05dbc1b4", "10.244.1.2/24", "172.23.193.146/20",
                 "fileserver", "downloader", "KUBE-SVC-YPW4ESSQ7BDH6RZX"):
        assert name in joined, name
    assert any("pod testpod" in t for t in texts)
    # the path: red edges, labelled with hop numbers
    red_edges = []
    for g in tree.iter(f"{SVG_NS}g"):
        if g.get("class") != "edge":
            continue
        paths = [p for p in g.iter(f"{SVG_NS}path") if (p.get("stroke") or "").lower() == "#d62728"]
        if paths:
            labels = [t.text.strip() for t in g.iter(f"{SVG_NS}text") if t.text and t.text.strip()]
            red_edges.append(labels)
    assert len(red_edges) >= 6
    numbers = sorted(int(n) for labels in red_edges for lab in labels for n in re.findall(r"\d+", lab))
    assert numbers[0] == 1 and numbers == sorted(set(numbers)), numbers
    png = (tmp_path / "topology.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000


def test_without_dot_keeps_dot_source_and_draws_mermaid(tmp_path: Path, monkeypatch):
    # dot missing: a PATH with no Graphviz on it
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    sample = ROOT / "samples" / "seed001-flannel-containerd"
    res = render_report(load(sample), fmt="md", lang="en", out_dir=tmp_path / "out")
    text = (tmp_path / "out" / "report.md").read_text("utf-8")
    assert res.diagram_error and "dot" in res.diagram_error
    assert "```mermaid" in text and "flowchart" in text and "Graphviz" in text
    assert "linkStyle" in text and "#d62728" in text  # the path, red in Mermaid too
    assert (tmp_path / "out" / "topology.dot").read_text("utf-8").startswith("graph topology")
    assert not (tmp_path / "out" / "topology.svg").exists()
    res = render_report(load(sample), fmt="html", lang="zh", out_dir=tmp_path / "html")
    html = (tmp_path / "html" / "report.html").read_text("utf-8")
    assert "flowchart" in html and "<svg" not in html


def test_zip_bundles_report_and_images(tmp_path: Path):
    sample = ROOT / "samples" / "seed001-flannel-containerd"
    res = render_report(load(sample), fmt="md", lang="en", out_dir=tmp_path, make_zip=True)
    z = tmp_path / "report.zip"
    assert z in res.files
    names = set(zipfile.ZipFile(z).namelist())
    assert "report.md" in names and "topology.dot" in names
    if HAS_DOT:
        assert {"topology.svg", "topology.png"} <= names


def test_path_option_and_unknown_service(tmp_path: Path, cli):
    sample = ROOT / "samples" / "seed001-flannel-containerd"
    code, out, err = cli("render", sample, "--format", "md", "--out", tmp_path / "a", "--path",
                         "default/test-service:downloader")
    assert code == 0, err
    text = (tmp_path / "a" / "report.md").read_text("utf-8")
    assert "through default/test-service:downloader" in text
    code, out, err = cli("render", sample, "--out", tmp_path / "b", "--path", "no-such-svc")
    assert code == 7 and "no-such-svc" in err and "default/test-service:fileserver" in err
    code, out, err = cli("render", tmp_path / "missing", "--out", tmp_path / "c")
    assert code == 4 and "no snapshot" in err


def test_q5_lists_new_containers_with_sandbox_and_shared_netns(tmp_path: Path):
    sample = ROOT / "samples" / "seed000-weave-docker"
    render_report(load(sample), fmt="md", lang="en", out_dir=tmp_path, before=_before(sample))
    text = (tmp_path / "report.md").read_text("utf-8")
    q5 = text[text.index("## 5."):text.index("## 6.")]
    assert "k8s_POD_pod_default_05260c21" in q5 and "the pod sandbox (pause)" in q5
    assert "application container viewer" in q5 and "application container downloader" in q5
    assert "container:23f2f68378cc" in q5  # the proof: NetworkMode of the viewer
    assert "kube-proxy" not in q5  # existed before: not new


def test_not_collected_is_said(tmp_path: Path):
    sample = ROOT / "samples" / "seed001-flannel-containerd"
    render_report(load(sample), fmt="md", lang="en", out_dir=tmp_path)
    text = (tmp_path / "report.md").read_text("utf-8")
    assert "Not collected: the network devices (ip addr) of k8s-master" in text
    assert "Not collected: this needs a snapshot from before" in text
    assert "inferred" in text


def test_bad_format_and_language(tmp_path: Path):
    from labreport.errors import RenderError

    snap = load(ROOT / "samples" / "seed001-flannel-containerd")
    with pytest.raises(RenderError):
        render_report(snap, fmt="docx", out_dir=tmp_path)
    with pytest.raises(RenderError):
        render_report(snap, lang="fr", out_dir=tmp_path)


@pytest.mark.skipif(not any(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")),
                    reason="no Chromium to print the PDF")
@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_pdf(tmp_path: Path, lang: str, sample: Path):
    res = render_report(load(sample), fmt="pdf", lang=lang, out_dir=tmp_path, before=_before(sample))
    pdf = (tmp_path / "report.pdf").read_bytes()
    assert res.main == tmp_path / "report.pdf" and pdf[:5] == b"%PDF-" and len(pdf) > 20000


def test_pdf_without_chromium_names_the_package(tmp_path: Path, monkeypatch):
    from labreport.errors import RenderError

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RenderError, match="apt-get install chromium"):
        render_report(load(ROOT / "samples" / "seed001-flannel-containerd"), fmt="pdf", out_dir=tmp_path / "o")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_nftables_and_ipvs_nodes(tmp_path: Path, lang: str):
    """Real rule sets of the other modes (the nft owner's lab `nft list ruleset`, a public
    `ipvsadm -Ln`): every service and endpoint shows, nothing prints as None."""
    from labreport.parsers import get
    from labreport.snapshot import NodeInfo, NodeSnapshot, Snapshot

    fx = ROOT / "tests" / "fixtures"
    nft = get("nft").parse((fx / "parsers" / "nft" / "kube-proxy-lab.nft").read_text("utf-8"), source="nft").value
    ipvs = get("ipvsadm").parse((fx / "parsers" / "ipvsadm" / "k8s-123948-ipvsadm-ln.txt").read_text("utf-8"), source="ipvs").value
    snap = Snapshot(nodes=[NodeSnapshot(name="nft-node", nftables=nft),
                           NodeSnapshot(name="ipvs-node", ipvs=ipvs, info=NodeInfo(kube_proxy_mode="ipvs"))])
    res = render_report(snap, fmt="md", lang=lang, out_dir=tmp_path)
    assert not res.missing_keys
    text = (tmp_path / "report.md").read_text("utf-8")
    assert "None" not in text and "<node>" not in text
    a = analyze(snap)
    for na in a.nodes:
        assert na.services, na.node
        for rec in na.services:
            assert rec.name in text
            for ep in rec.endpoints or []:
                assert ep.address in text
    assert "kube-proxy nftables" in text or "nftables" in text
    assert "ipvsadm -Ln" in text
    # each mode's endpoint choice in its own words, not iptables' "last rule, always matches"
    always = {"en": "last rule, always matches", "zh": "最后一条规则"}[lang]
    assert always not in text
    assert {"en": "numgen value", "zh": "numgen 取值"}[lang] in text
    assert {"en": "Weight", "zh": "权重"}[lang] in text


def test_unwritable_output_is_a_clear_error(tmp_path: Path, cli):
    f = tmp_path / "a-file"
    f.write_text("x")
    code, out, err = cli("render", ROOT / "samples" / "seed001-flannel-containerd", "--out", f)
    assert code == 7 and "not a directory" in err and "Traceback" not in err
    code, out, err = cli("render", ROOT / "samples" / "seed001-flannel-containerd", "--out", f / "sub")
    assert code == 7 and "cannot create" in err


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_failed_node_says_why_at_the_top(tmp_path: Path, lang: str):
    """A node lost to SSH is named with its reason in the summary, not only in an appendix."""
    from labreport.snapshot import NodeSnapshot, Snapshot

    why = "ssh: connection refused (is sshd running on worker:22?)"
    snap = Snapshot(nodes=[NodeSnapshot(name="master"), NodeSnapshot(name="worker", status="failed", error=why)])
    res = render_report(snap, fmt="md", lang=lang, out_dir=tmp_path)
    assert not res.missing_keys
    text = (tmp_path / "report.md").read_text("utf-8")
    head = text[: text.index("## 1.")] if "## 1." in text else text
    assert why in head
    assert {"en": "collection failed", "zh": "收集失败"}[lang] in head


def test_a_table_cell_holding_one_number_is_kept_whole_in_html():
    """A PID, a count, a port alone in a cell is a ``td.num`` (style.css: never wrapped);
    any other cell — a number with text, markup that looks like one — is a plain ``td``."""
    from labreport.render.markup import Markup

    m = Markup("html")
    m.table(["a", "b", "c", "d"], [["5047", "80/TCP", "<b>1</b>", " 12"], [3, None, "x", "1e3"]])
    html = m.stash[-1]  # the table as placed in the page
    cells = re.findall(r"<td[^>]*>.*?</td>", html)
    assert cells[0] == '<td class="num">5047</td>'
    assert cells[4] == '<td class="num">3</td>'
    assert all(not c.startswith('<td class="num">') for i, c in enumerate(cells) if i not in (0, 4)), cells
    assert "<b>" not in html  # escaped as before
    css = (Path(__file__).resolve().parent.parent / "templates" / "html" / "style.css").read_text()
    assert re.search(r"td\.num\s*\{[^}]*white-space:\s*nowrap", css)
