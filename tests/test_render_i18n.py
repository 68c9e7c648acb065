"""Message catalogs: the same keys in every language, and every key the templates use exists."""

from __future__ import annotations

import re
from pathlib import Path

from labreport.render.i18n import LANGS, catalog

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
PY = [ROOT / "labreport" / "render" / "report.py", ROOT / "labreport" / "render" / "diagram.py"]

_T_CALL = re.compile(r"""\bt\(\s*["']([A-Za-z0-9_.-]+)["'](?!\s*~)""")
_T_PREFIX = re.compile(r"""\bt\(\s*["']([A-Za-z0-9_.-]+)["']\s*~""")  # t("common." ~ x): a prefix


def test_catalogs_have_the_same_keys():
    keys = {lang: set(catalog(lang)) for lang in LANGS}
    base = keys["en"]
    for lang, ks in keys.items():
        assert ks == base, f"{lang}: missing {sorted(base - ks)[:10]}, extra {sorted(ks - base)[:10]}"


def test_placeholders_agree_between_languages():
    en, zh = catalog("en"), catalog("zh")
    for key, msg in en.items():
        a = set(re.findall(r"\{(\w+)\}", msg))
        b = set(re.findall(r"\{(\w+)\}", zh[key]))
        assert a == b, f"{key}: en uses {a}, zh uses {b}"


def test_every_key_used_exists():
    en = catalog("en")
    used: set[str] = set()
    prefixes: set[str] = set()
    files = list(TEMPLATES.rglob("*.j2")) + PY
    for f in files:
        text = f.read_text("utf-8")
        used |= set(_T_CALL.findall(text))
        prefixes |= set(_T_PREFIX.findall(text))
        # Python helpers: self.t("…") and t(f"…{x}") prefixes
        prefixes |= {m for m in re.findall(r"""t\(f["']([A-Za-z0-9_.-]+\.)\{""", text)}
    assert len(used) > 100
    missing = sorted(k for k in used if k not in en and not k.endswith("."))
    assert not missing, f"keys used but not in the catalogs: {missing}"
    for p in prefixes:
        assert any(k.startswith(p) for k in en), f"no keys under {p!r}"


def test_roles_cover_every_component_kind():
    from labreport.analysis.components import KINDS

    for lang in LANGS:
        cat = catalog(lang)
        for name in KINDS:
            assert cat.get(f"roles.{name}"), f"{lang}: no role for {name}"
    zh = catalog("zh")
    assert re.search(r"[\u4e00-\u9fff]", zh["roles.kubelet"])


def test_zh_titles_are_chinese():
    zh = catalog("zh")
    for key, msg in zh.items():
        if key.startswith("s.") and key.endswith(".title") and key != "s.hpa.title":
            assert re.search(r"[\u4e00-\u9fff]", msg), key


def test_preflight_titles_translated():
    """Every check id the analysis emits on the samples has a title in the catalogs (a new
    check shows its English title until translated; this test says which)."""
    from labreport.analysis import analyze
    from labreport.snapshot import load

    zh = catalog("zh")
    ids = set()
    for snap in sorted((ROOT / "samples").glob("*/snapshot.json")):
        for na in analyze(load(snap.parent)).nodes:
            ids |= {c.id for c in na.preflight}
    assert ids
    missing = sorted(i for i in ids if f"checks.{i}" not in zh)
    assert not missing, f"preflight checks without a translated title: {missing}"


def test_preflight_free_text_reads_as_chinese_in_zh():
    """The preflight cells (observed / expected / fix) of every sample, through the zh
    phrase table: what stays untranslated is a command or a key=value, never a sentence."""
    import re
    from pathlib import Path

    from labreport.analysis import analyze
    from labreport.render.i18n import Translator
    from labreport.snapshot import load

    t, en = Translator("zh"), Translator("en")
    code_like = re.compile(r"^(apt-get|modprobe|sysctl|swapoff|systemctl)\b|^[\w.\-]+=[\w.\-]+(, [\w.\-]+=[\w.\-]+)*$|^[\d.]+$")
    seen = 0
    for d in sorted((Path(__file__).resolve().parent.parent / "samples").iterdir()):
        if not (d / "snapshot.json").exists():
            continue
        for na in analyze(load(d)).nodes:
            for c in na.preflight:
                for text in (c.observed, c.expected, c.fix):
                    if not text:
                        continue
                    seen += 1
                    assert en.phrase(text) == text
                    zh = t.phrase(text)
                    assert zh != text or code_like.search(text), f"untranslated in zh: {text!r}"
    assert seen > 20


def test_every_mismatch_kind_has_a_label_in_both_languages():
    import re
    from pathlib import Path

    from labreport.render.i18n import catalog

    src = (Path(__file__).resolve().parent.parent / "labreport" / "analysis" / "crosscheck.py").read_text()
    kinds = set(re.findall(r'Mismatch\(kind="([a-z-]+)"', src))
    assert len(kinds) >= 8
    for lang in ("en", "zh"):
        cat = catalog(lang)
        assert not [k for k in kinds if f"mismatch.{k}" not in cat], lang


def test_where_the_mode_was_read_is_translated(tmp_path):
    from pathlib import Path

    from labreport.render.report import render_report
    from labreport.snapshot import load

    sample = Path(__file__).resolve().parent.parent / "samples" / "seed001-flannel-containerd"
    render_report(load(sample), fmt="md", lang="zh", out_dir=tmp_path)
    text = (tmp_path / "report.md").read_text("utf-8")
    assert "规则：KUBE-SERVICES 链及其到 KUBE-SVC 的跳转" in text
    assert "rules: KUBE-SERVICES chain" not in text
