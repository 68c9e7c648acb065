"""`labreport grade`: a class folder of real reports (the two seeds, as text and as .docx)
plus one broken file: every student's snapshot and report is written, the summary (HTML,
CSV) lists each with its evidence and the broken one with its reason."""

from __future__ import annotations

import csv
import io
import shutil

import pytest

from labreport.snapshot import load
from tests.conftest import FIXTURES

RAW = FIXTURES / "seeds" / "raw"


def test_grade_a_class_with_a_broken_report(cli, tmp_path):
    docx = pytest.importorskip("docx")
    cls = tmp_path / "class"
    cls.mkdir()
    shutil.copy(RAW / "seed000.txt", cls / "alice.txt")
    d = docx.Document()
    for line in (RAW / "seed001.txt").read_text(encoding="utf-8").split("\n"):
        d.add_paragraph(line)
    d.save(str(cls / "bob.docx"))
    (cls / "carol.pdf").write_bytes(b"%PDF-1.4\n<script>alert(1)</script> truncated")
    out = tmp_path / "graded"
    code, _, err = cli("grade", *sorted(cls.iterdir()), "--out", out, "--format", "md", "--lang", "en")
    assert code == 10, err  # partial: one report could not be read
    assert "carol.pdf" in err and "not a readable PDF" in err
    rows = {r["student"]: r for r in csv.DictReader(io.StringIO((out / "summary.csv").read_text(encoding="utf-8")))}
    assert set(rows) == {"alice", "bob", "carol"}
    assert rows["carol"]["status"] == "unreadable" and "not a readable PDF" in rows["carol"]["error"]
    assert rows["alice"]["nodes"] == "master node1" and rows["alice"]["runtime"] == "docker"
    assert rows["alice"]["cni"] == "weave" and rows["alice"]["proxy_mode"] == "iptables"
    assert rows["bob"]["nodes"] == "k8s-master k8s-worker" and rows["bob"]["cni"] == "flannel"
    for q in ("Q2", "Q3", "Q5", "Q8", "Q11"):
        assert rows["alice"][q] == "yes" and rows["bob"][q] == "yes", q
    assert rows["bob"]["Q6"] == "yes" and rows["alice"]["Q6"] == ""  # seed 000 pasted no ip output
    for student in ("alice", "bob"):
        assert (out / student / "report" / "report.md").exists()
        assert load(out / student / "snapshot").nodes and load(out / student / "snapshot" / "before").nodes
    page = (out / "summary.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "carol" in page and "alice/report/report.md" in page


@pytest.mark.browser
def test_grade_pdf_and_docx_reports(cli, tmp_path):
    pytest.importorskip("pypdf")
    from tests.test_reportimport_seeds import _docx, _pdf

    cls = tmp_path / "class"
    cls.mkdir()
    _pdf(RAW / "seed000.txt", cls / "s000.pdf", tmp_path)
    _docx(RAW / "seed001.txt", cls / "s001.docx")
    (cls / "empty.docx").write_bytes(b"")
    out = tmp_path / "graded"
    code, _, err = cli("grade", *sorted(cls.iterdir()), "--out", out, "--format", "html")
    assert code == 10, err
    rows = {r["student"]: r for r in csv.DictReader(io.StringIO((out / "summary.csv").read_text(encoding="utf-8")))}
    assert rows["empty"]["status"] == "unreadable" and "empty" in rows["empty"]["error"]
    assert rows["s000"]["nodes"] == "master node1" and rows["s000"]["Q11"] == "yes"
    assert rows["s001"]["nodes"] == "k8s-master k8s-worker" and rows["s001"]["Q6"] == "yes"
    assert (out / "s000" / "report" / "report.html").exists() and (out / "s001" / "report" / "report.html").exists()
