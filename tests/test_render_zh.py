"""A zh report has no English sentence outside commands, names and values (#12 item 5):
every bundled sample (with its BEFORE snapshot where there is one) and the demo, rendered
in zh as Markdown and HTML, scanned for runs of Latin-script words in the prose."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labreport.render.report import render_report
from labreport.snapshot import load

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(p.parent for p in (ROOT / "samples").glob("*/snapshot.json") if not p.parent.name.endswith("-before"))

# four or more Latin words in a row (a sentence, not a name such as kube-controller-manager,
# a path, a version or an image)
SENTENCE = re.compile(r"(?<![\w./:@=-])[A-Za-z][a-z']+(?:[ ,;]+(?:[A-Za-z][a-z']+|a|I)){3,}")
KNOWN = ("not compared, the network part is only in AFTER", "1 (last rule", "is not in the snapshot",
         "imported by labreport import", "K8s lab, seed", "after the pod and the service", "more matching lines",
         "(no output)", "comment garbled by")


def prose(text: str) -> str:
    """The report without what is quoted as is: code blocks, code spans, preformatted
    evidence, markup."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"<pre.*?</pre>", " ", text, flags=re.S)
    text = re.sub(r"<code.*?</code>", " ", text, flags=re.S)
    text = re.sub(r"<style.*?</style>", " ", text, flags=re.S)
    text = re.sub(r"<svg.*?</svg>", " ", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"^    .*$", " ", text, flags=re.M)


def english_sentences(text: str) -> list[str]:
    return [m.group(0) for m in SENTENCE.finditer(prose(text))]


def test_the_scanner_finds_an_english_sentence():
    assert english_sentences("节点 worker：links: not compared, the network part is only in AFTER")
    assert not english_sentences("`kube-controller-manager` 运行在 k8s-master 上，镜像 registry.k8s.io/pause:3.9")


@pytest.mark.parametrize("fmt", ["md", "html"])
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_zh_sample_has_no_english_sentence(sample: Path, fmt: str, tmp_path: Path):
    before = sample.parent / f"{sample.name}-before"
    res = render_report(load(sample), fmt=fmt, lang="zh", out_dir=tmp_path,
                        before=load(before) if (before / "snapshot.json").exists() else None)
    assert not res.missing_keys
    text = res.main.read_text("utf-8")
    found = english_sentences(text)
    assert found == [], found[:10]
    plain = prose(text)
    for k in KNOWN:
        assert k not in plain, k


def test_zh_demo_has_no_english_sentence(tmp_path: Path, cli):
    code, out, err = cli("demo", "--lang", "zh", "--format", "md", "--out", tmp_path, "-q")
    assert code == 0, err
    text = (tmp_path / "report.md").read_text("utf-8")
    assert english_sentences(text) == []
    assert "K8s 实验（种子 001）" in text and "由 labreport import 从粘贴的命令输出导入" in text
