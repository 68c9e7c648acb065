"""The hostile corpus end to end (#15 "done when"): every payload of
tests/fixtures/hostile/ in every name field, every secret form planted, then the real
tools: labreport's CLI in a subprocess (no traceback, memory measured), the report opened
in headless Chromium (--dump-dom: no script ran, no element or link was created), printed
to PDF (pdftotext: a planted local file never appears), the diagram drawn by Graphviz (no
HTML-like label, no link, the planted image never embedded in the PNG), and every output
file and snapshot grepped for the planted secrets.

Each browser/Graphviz check has a control: the same payload without labreport's defences
must show the effect (the script runs, the file prints, the image is embedded), so the
check is known to be able to fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from labreport.render.escape import DOT_FORBIDDEN
from labreport.render.report import chromium_args, find_chromium
from tests.support.hostile_corpus import CORPUS_SECRETS, HOSTILE, hostile_snapshot, payloads, planted_secrets

ROOT = Path(__file__).resolve().parent.parent
CHROME = find_chromium()
MEMORY_LIMIT_KB = 1024 * 1024  # 1 GB
needs_chrome = pytest.mark.skipif(CHROME is None, reason="no Chromium installed (apt-get install chromium)")
needs_pdftotext = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                     reason="no pdftotext (apt-get install poppler-utils)")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="no Graphviz (apt-get install graphviz)")

FORBIDDEN_TAGS = {"script", "iframe", "img", "object", "embed", "frame", "frameset", "link", "base", "form",
                  "input", "button", "style_from_payload", "audio", "video", "source", "track", "image"}


def run_cli(tmp: Path, *args: Any, timeout: float = 300, env_extra: dict[str, str] | None = None
            ) -> tuple[int, str, int]:
    """labreport in a subprocess: (exit status, stderr, peak RSS in kB)."""
    res = tmp / f"measure-{uuid.uuid4().hex[:8]}.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env_extra or {})}
    proc = subprocess.run([sys.executable, "-m", "tests.support.measure", str(res), "--", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=str(ROOT), env=env)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    info = json.loads(res.read_text()) if res.exists() else {"rc": proc.returncode, "maxrss_kb": 0}
    return proc.returncode, proc.stderr + proc.stdout, int(info["maxrss_kb"])


def _magenta_png(path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (64, 64), (255, 0, 255)).save(path)


def _has_magenta(png: Path) -> bool:
    from PIL import Image

    with Image.open(png) as im:
        rgb = im.convert("RGB")
        return any(c[1] == (255, 0, 255) for c in (rgb.getcolors(maxcolors=1 << 20) or []))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("hostile")
    marker_txt, marker_png = tmp / "marker.txt", tmp / "marker.png"
    marker = f"LOCALFILE-MARKER-{uuid.uuid4().hex}"
    marker_txt.write_text(marker + "\n")
    _magenta_png(marker_png)
    p = payloads(marker_txt, marker_png)
    snapdir = tmp / "snap"
    snapdir.mkdir()
    (snapdir / "snapshot.json").write_text(json.dumps(hostile_snapshot(p)), "utf-8")
    runs: dict[str, tuple[int, str, int]] = {}
    for fmt, lang in (("md", "en"), ("html", "en"), ("html", "zh"), ("pdf", "en")):
        out = tmp / f"out-{fmt}-{lang}"
        runs[f"render-{fmt}-{lang}"] = run_cli(tmp, "render", snapdir, "--format", fmt, "--lang", lang, "--out", out,
                                               "--zip" if fmt == "md" else "--quiet")
    analyze_out = tmp / "analyze.json"
    rc, err, rss = run_cli(tmp, "analyze", snapdir, "--json")
    runs["analyze-json"] = (rc, err, rss)
    analyze_out.write_text(err)
    rc, err, rss = run_cli(tmp, "analyze", snapdir, env_extra={"FORCE_COLOR": "1", "COLUMNS": "200"})
    runs["analyze-text"] = (rc, err, rss)
    (tmp / "analyze.txt").write_text(err)
    rc, err, rss = run_cli(tmp, "diff", ROOT / "samples" / "live-containerd-docker-node", snapdir,
                           env_extra={"FORCE_COLOR": "1", "COLUMNS": "200"})
    runs["diff"] = (rc, err, rss)
    (tmp / "diff.txt").write_text(err)
    return {"tmp": tmp, "payloads": p, "marker": marker, "marker_txt": marker_txt, "marker_png": marker_png,
            "runs": runs, "snapdir": snapdir}


def test_every_command_runs_without_traceback_in_bounded_memory(corpus):
    for name, (rc, err, rss) in corpus["runs"].items():
        assert rc in (0, 10), f"{name}: exit {rc}: {err[-2000:]}"
        assert rss < MEMORY_LIMIT_KB, f"{name}: {rss} kB"


def test_outputs_stay_in_the_output_directory(corpus):
    # a node named ../../../../tmp/pwned-path must not write outside --out
    assert not list(Path("/tmp").glob("pwned-path*"))
    for d in corpus["tmp"].glob("out-*"):
        for f in d.rglob("*"):
            assert "pwned" not in f.name and "<" not in f.name, f


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.title = ""
        self._in_title = False
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_title = tag == "title" and not self.title  # the page's, not an SVG <title>

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        self.text.append(data)


def _dump_dom(page: Path, tmp: Path) -> _Dom:
    profile = tmp / f"chrome-{uuid.uuid4().hex[:6]}"
    proc = subprocess.run(chromium_args(CHROME, str(profile)) + ["--dump-dom", "--virtual-time-budget=3000",
                                                                  page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "<html" in proc.stdout, proc.stderr[-2000:]
    dom = _Dom()
    dom.feed(proc.stdout)
    return dom


def _assert_inert(dom: _Dom, title: str) -> None:
    assert dom.title == title, "a script changed the title"
    for tag, attrs in dom.tags:
        assert tag not in FORBIDDEN_TAGS, (tag, attrs)
        for k, v in attrs:
            assert not k.lower().startswith("on") and "pwned" not in k.lower(), (tag, k, v)
            assert not (v or "").lower().startswith("pwned"), (tag, k, v)
            if k in ("href", "src", "xlink:href", "data", "action", "formaction"):
                assert tag == "a" and (v or "").startswith("#"), (tag, k, v)
        if tag == "meta":
            assert dict(attrs).get("http-equiv", "").lower() in ("", "content-security-policy"), attrs


@needs_chrome
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_payload_runs_in_chromium(corpus, lang):
    page = corpus["tmp"] / f"out-html-{lang}" / "report.html"
    dom = _dump_dom(page, corpus["tmp"])
    static = _Dom()
    static.feed(page.read_text("utf-8"))
    assert "Kubernetes" in static.title or "Kubernetes" in "".join(static.text)
    _assert_inert(dom, static.title)
    text = "".join(dom.text)
    # the payloads were there, shown as text
    for marker in ("PWNED-script", "PWNED-img", "PWNED-mdlink", "PWNED-dot", "pwned-attr", "PWNED-ref"):
        assert marker in text, marker
    html = page.read_text("utf-8")
    assert '<meta http-equiv="Content-Security-Policy" content="default-src &#x27;none&#x27;' in html


@needs_chrome
def test_control_the_same_payloads_run_without_the_defences(corpus):
    """Without escaping and CSP, Chromium here runs the payloads: the check above can fail."""
    p = corpus["payloads"]
    raw = corpus["tmp"] / "raw-control.html"
    raw.write_text("<html><head><title>control</title></head><body>" + p["script"] + p["img-onerror"]
                   + "<p><a id=pwned-link href=\"javascript:x\">x</a></p></body></html>", "utf-8")
    dom = _dump_dom(raw, corpus["tmp"])
    assert "PWNED" in dom.title
    with pytest.raises(AssertionError):
        _assert_inert(dom, "control")
    dom.title = "control"  # the other checks alone also see the payload
    with pytest.raises(AssertionError):
        _assert_inert(dom, "control")


@needs_chrome
@needs_pdftotext
def test_pdf_never_prints_a_local_file(corpus):
    pdf = corpus["tmp"] / "out-pdf-en" / "report.pdf"
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, timeout=60).stdout
    assert "PWNED-script" in text  # the payload is in the PDF, as text
    assert corpus["marker"] not in text
    # control: the iframe payload, unescaped and without the CSP, prints the file here
    raw = corpus["tmp"] / "raw-iframe.html"
    raw.write_text("<html><body><p>x</p>" + corpus["payloads"]["iframe-file"] + "</body></html>", "utf-8")
    ctl_pdf = corpus["tmp"] / "raw-iframe.pdf"
    profile = corpus["tmp"] / "chrome-ctl"
    subprocess.run(chromium_args(CHROME, str(profile)) + [f"--print-to-pdf={ctl_pdf}", raw.as_uri()],
                   capture_output=True, timeout=120)
    ctl = subprocess.run(["pdftotext", str(ctl_pdf), "-"], capture_output=True, text=True, timeout=60).stdout
    assert corpus["marker"] in ctl


@needs_dot
def test_diagram_labels_are_text_no_links_no_images(corpus):
    out = corpus["tmp"] / "out-md-en"
    dot = (out / "topology.dot").read_text("utf-8")
    svg = (out / "topology.svg").read_text("utf-8")
    # as Graphviz itself reads the DOT: no HTML-like label, no link or file attribute anywhere
    canon = subprocess.run(["dot", "-Tcanon"], input=dot.encode(), capture_output=True, timeout=60).stdout.decode()
    assert canon and not re.search(r"\blabel=<", canon)
    parsed = json.loads(subprocess.run(["dot", "-Tjson0"], input=dot.encode(), capture_output=True,
                                       timeout=60).stdout)
    for obj in [parsed] + parsed.get("objects", []) + parsed.get("edges", []):
        assert not {k.lower() for k in obj} & DOT_FORBIDDEN, obj.get("name")
    assert "pwnedn" not in {o.get("name") for o in parsed.get("objects", [])}  # the break-out made no node
    assert "<image" not in svg and "xlink:href" not in svg and "<a " not in svg
    assert "&lt;IMG SRC=" in svg  # the Graphviz payload is drawn, as text
    assert not _has_magenta(out / "topology.png")
    # control: the same label unquoted embeds the image into a PNG here
    ctl = subprocess.run(["dot", "-Tpng"], input=f'graph {{ a [label={corpus["payloads"]["dot-html-img"]}] }}'.encode(),
                         capture_output=True, timeout=60, cwd=str(corpus["tmp"]))
    (corpus["tmp"] / "ctl.png").write_bytes(ctl.stdout)
    assert _has_magenta(corpus["tmp"] / "ctl.png")


def test_no_planted_secret_in_any_output(corpus):
    secrets = [s for s in planted_secrets() + CORPUS_SECRETS]
    checked = 0
    for f in corpus["tmp"].rglob("*"):
        if not f.is_file() or f.name.startswith(("measure-", "raw-", "ctl")) or f.parent == corpus["snapdir"]:
            continue
        data = f.read_bytes()
        if f.suffix == ".pdf" and shutil.which("pdftotext"):
            data += subprocess.run(["pdftotext", str(f), "-"], capture_output=True, timeout=60).stdout
        if f.suffix == ".zip":
            import zipfile

            with zipfile.ZipFile(f) as z:
                data += b"".join(z.read(n) for n in z.namelist())
        for s in secrets:
            assert s.encode() not in data, f"{s} in {f.relative_to(corpus['tmp'])}"
        checked += 1
    assert checked >= 10


def test_import_of_hostile_manifests_scrubs_and_renders(corpus, tmp_path):
    """import --kubectl of payload-named objects carrying secrets: the snapshot holds no
    secret (redacted by default), render is clean; --no-redact keeps them and says so."""
    pod = json.loads(json.dumps(hostile_snapshot(corpus["payloads"])["cluster"]["pods"][0]))
    man = tmp_path / "objs.json"
    man.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [pod]}))
    wrong = HOSTILE / "wrong-shape.yaml"
    ps = ROOT / "tests" / "fixtures" / "parsers" / "ps" / "seed001-master-ps-aux-grep-kube.out"
    rc, err, rss = run_cli(tmp_path, "import", "--node", corpus["payloads"]["script"], "--ps", ps, "--kubectl", man,
                           "--kubectl", wrong, "--out", tmp_path / "snap")
    assert rc in (0, 10), err
    stored = (tmp_path / "snap" / "snapshot.json").read_text("utf-8")
    for s in CORPUS_SECRETS[:2]:
        assert s not in stored
    assert '"mode": "on"' in stored
    rc, err, _ = run_cli(tmp_path, "render", tmp_path / "snap", "--format", "html", "--out", tmp_path / "r")
    assert rc == 0, err
    assert "EnvPw789Corpus" not in (tmp_path / "r" / "report.html").read_text("utf-8")
    rc, err, _ = run_cli(tmp_path, "import", "--kubectl", man, "--no-redact", "--out", tmp_path / "keep")
    assert rc in (0, 10), err
    assert "EnvPw789Corpus" in (tmp_path / "keep" / "snapshot.json").read_text("utf-8")
    assert "redaction is OFF" in err


def test_alias_bomb_fails_fast_and_small(tmp_path):
    bomb = HOSTILE / "yaml-alias-bomb.yaml"
    assert bomb.stat().st_size == 419
    rc, err, rss = run_cli(tmp_path, "import", "--kubectl", bomb, "--out", tmp_path / "snap", timeout=60)
    assert rc not in (0, 70) and "alias" in err, err
    assert rss < 200 * 1024, rss
    assert not (tmp_path / "snap" / "snapshot.json").exists()


def test_dev_zero_and_oversize_inputs_stop_at_the_limit(tmp_path):
    rc, err, rss = run_cli(tmp_path, "import", "--ps", "/dev/zero", "--out", tmp_path / "a", timeout=60)
    assert rc not in (0, 70) and "/dev/zero" in err and rss < 300 * 1024, (rc, err, rss)
    big = tmp_path / "ps.txt"
    line = "root      4127  1.1  0.6 11214780 51280 ?  Ssl  16:40   0:17 /usr/bin/kubelet --v=2\n"
    with open(big, "w") as fh:
        fh.write("USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n")
        fh.write(line * (2 * 1024 * 1024 // len(line) + 1))
    rc, err, rss = run_cli(tmp_path, "import", "--ps", big, "--max-input-size", "1M", "--out", tmp_path / "b")
    assert rc not in (0, 70) and "--max-input-size" in err and "1 MiB" in err, err
    rc, err, rss = run_cli(tmp_path, "import", "--ps", big, "--max-input-size", "4M", "--out", tmp_path / "c")
    assert rc == 0, err


def test_endless_input_stops_at_the_limit(tmp_path):
    fifo = tmp_path / "endless"
    os.mkfifo(fifo)
    line = b"root      4127  1.1  0.6 11214780 51280 ?  Ssl  16:40   0:17 /usr/bin/kubelet --v=2\n"
    writer = subprocess.Popen([sys.executable, "-c", "import sys\nl=sys.argv[2].encode()+b'\\n'\n"
                               "f=open(sys.argv[1],'wb')\ntry:\n  while True: f.write(l*1000)\nexcept BrokenPipeError: pass",
                               str(fifo), line.decode().rstrip("\n")])
    try:
        rc, err, rss = run_cli(tmp_path, "import", "--ps", fifo, "--max-input-size", "8M", "--out", tmp_path / "s",
                               timeout=120)
    finally:
        writer.kill()
        writer.wait()
    assert rc not in (0, 70) and "8 MiB" in err, err
    assert rss < 500 * 1024, rss


def test_terminal_output_carries_no_control_sequence_from_the_data(corpus):
    """analyze and diff in a terminal (FORCE_COLOR): rich's own colours only; a name's ESC,
    OSC (window title, OSC 8 hyperlinks) or rich markup ([link=file:///…]) never reaches it."""
    for name in ("analyze.txt", "diff.txt"):
        text = (corpus["tmp"] / name).read_text("utf-8")
        assert "\x1b[" in text, f"{name}: not rendered as for a terminal"
        assert "\x1b]" not in text and "\x9b" not in text and "\x07" not in text, name
        assert "\x1b[31mred" not in text, name
    diff = (corpus["tmp"] / "diff.txt").read_text("utf-8")
    assert "PWNED-script" in diff  # the node name is shown, as text
