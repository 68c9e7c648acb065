"""The HTML report in a real headless Chromium: it loads without console errors, the DOM has
every section, the page is not blank, Chinese text is drawn, and the topology diagram with
its red path is visible. Screenshots are kept in tests/artifacts/ (report-<lang>.png, the top
of the page at 1200×1600; report-<lang>-topology.png, the diagram cut out of a full-page shot).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image, ImageChops  # Pillow: in the test extra

from labreport.render.report import chromium_args, find_chromium, render_report
from labreport.snapshot import load

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
SAMPLE = ROOT / "samples" / "seed001-flannel-containerd"

CHROME = find_chromium()
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROME is None, reason="no Chromium installed (apt-get install chromium)"),
              pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")]


def chrome(url: str, *extra: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="lr-chrome-") as profile:
        args = chromium_args(CHROME, profile) + list(extra) + [url]
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module", params=["en", "zh"])
def report(request, tmp_path_factory):
    lang = request.param
    out = tmp_path_factory.mktemp(f"html-{lang}")
    render_report(load(SAMPLE), fmt="html", lang=lang, out_dir=out,
                  before=load(SAMPLE.parent / f"{SAMPLE.name}-before"))
    return lang, out / "report.html"


def test_dom_loads_without_console_errors(report):
    lang, html = report
    p = chrome(html.as_uri(), "--dump-dom", "--enable-logging=stderr", "--v=0")
    assert p.returncode == 0, p.stderr[-2000:]
    dom = p.stdout
    assert "<svg" in dom and 'id="topology"' in dom
    assert dom.count("<details") >= 5 and dom.count("<table") >= 8
    title = "概要" if lang == "zh" else "Summary"
    assert f">{title}</h2>" in dom
    console_errors = [ln for ln in p.stderr.splitlines() if "CONSOLE" in ln and ("ERROR" in ln or "Uncaught" in ln)]
    assert not console_errors, console_errors
    # self-contained: nothing is fetched from anywhere
    assert "Failed to load resource" not in p.stderr and "net::ERR_" not in p.stderr


def _non_white(img) -> int:
    gray = img.convert("L")
    hist = gray.histogram()
    return sum(hist[:235])


def test_top_of_page_screenshot(report):
    lang, html = report
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"report-{lang}.png"
    p = chrome(html.as_uri(), f"--screenshot={shot}", "--window-size=1200,1600")
    assert p.returncode == 0 and shot.exists(), p.stderr[-2000:]
    img = Image.open(shot)
    assert img.size == (1200, 1600)
    dark = _non_white(img)
    assert dark > 1200 * 1600 * 0.02, f"the page looks blank ({dark} non-white pixels)"


def test_diagram_is_visible_with_red_path(report):
    lang, html = report
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    full = ARTIFACTS / f"report-{lang}-full.png"
    p = chrome(html.as_uri(), f"--screenshot={full}", "--window-size=1200,16000")
    assert p.returncode == 0 and full.exists(), p.stderr[-2000:]
    img = Image.open(full).convert("RGB")
    w, h = img.size
    # pixels of the path's colour #d62728 (214, 39, 40), with anti-aliasing slack
    r, g, b = img.split()
    mask = ImageChops.multiply(ImageChops.multiply(r.point(lambda v: 255 if 200 <= v <= 228 else 0),
                                                   g.point(lambda v: 255 if 25 <= v <= 55 else 0)),
                               b.point(lambda v: 255 if 25 <= v <= 55 else 0))
    red = mask.histogram()[255]
    assert red > 800, f"the red path of the diagram is not on the page ({red} red pixels)"
    left, top, right, bottom = mask.getbbox()
    crop = img.crop((0, max(0, top - 120), w, min(h, bottom + 200)))
    crop.save(ARTIFACTS / f"report-{lang}-topology.png")
    assert _non_white(crop) > crop.size[0] * crop.size[1] * 0.02
    full.unlink()  # 16000 px tall: keep only the cut-out


def test_pdf_prints(report, tmp_path):
    lang, html = report
    pdf = tmp_path / "r.pdf"
    p = chrome(html.as_uri(), "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    assert p.returncode == 0 and pdf.read_bytes()[:5] == b"%PDF-"
