"""Fuzzing snapshot loading and rendering (#15 item 4), not only the parsers.

- A real snapshot with any one value anywhere replaced by arbitrary JSON either loads or
  is refused with a SnapshotError naming the problem: never another exception.
- Cluster objects are kept as the API returned them (free JSON), so a wrong shape there
  always loads: rendering it must still give a report (or a RenderError), never a crash.
- Names of any text: the HTML report holds only the elements labreport itself writes,
  with no event-handler attribute and no link out of the page — whatever the names say.
"""

from __future__ import annotations

import copy
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labreport.errors import LabreportError, SnapshotError
from labreport.render.report import render_report
from labreport.snapshot import SCHEMA_VERSION, from_dict

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ["seed001-flannel-containerd", "live-containerd-docker-node"]
BASE = {name: json.loads((ROOT / "samples" / name / "snapshot.json").read_text("utf-8")) for name in SAMPLES}

leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                 st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
                 st.sampled_from(["", "0", "-1", "٣", "1e999", "<b>x</b>", "80/TCP", "10.0.0.1", "null"]))
json_value = st.recursive(leaf, lambda ch: st.lists(ch, max_size=3) | st.dictionaries(st.text(max_size=6), ch,
                                                                                       max_size=3), max_leaves=8)
FUZZ = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ_RENDER = settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                               HealthCheck.function_scoped_fixture])


def _replace_somewhere(data: st.DataObject, doc: Any, value_strategy: st.SearchStrategy[Any]) -> Any:
    """``doc`` with one value, at a path drawn by hypothesis, replaced."""
    doc = copy.deepcopy(doc)
    parent: Any = None
    key: Any = None
    cur = doc
    depth = data.draw(st.integers(min_value=0, max_value=7), label="depth")
    for _ in range(depth):
        if isinstance(cur, dict) and cur:
            k = data.draw(st.sampled_from(sorted(cur, key=str)), label="key")
        elif isinstance(cur, list) and cur:
            k = data.draw(st.integers(min_value=0, max_value=len(cur) - 1), label="index")
        else:
            break
        parent, key, cur = cur, k, cur[k]
    new = data.draw(value_strategy, label="value")
    if parent is None:
        return new
    parent[key] = new
    return doc


@FUZZ
@given(data=st.data(), sample=st.sampled_from(SAMPLES))
def test_load_never_crashes(data: st.DataObject, sample: str):
    doc = _replace_somewhere(data, BASE[sample], json_value)
    try:
        snap = from_dict(doc, where="fuzz")
    except SnapshotError as exc:
        assert str(exc).startswith("fuzz:")
        return
    assert snap.schema_version == SCHEMA_VERSION
    assert len({n.name for n in snap.nodes}) == len(snap.nodes)


@pytest.mark.parametrize("version,ok", [(SCHEMA_VERSION, True), (SCHEMA_VERSION + 1, False), (0, False), (-1, False),
                                        (True, False), ("1", False), (10**30, False)])
def test_schema_version_refused_with_the_version_named(version: Any, ok: bool):
    doc = copy.deepcopy(BASE["seed001-flannel-containerd"])
    doc["schema_version"] = version
    if ok:
        from_dict(doc)
        return
    with pytest.raises(SnapshotError) as e:
        from_dict(doc)
    if isinstance(version, int) and not isinstance(version, bool):
        assert str(version) in str(e.value)


def test_duplicate_node_names_refused():
    doc = copy.deepcopy(BASE["seed001-flannel-containerd"])
    doc["nodes"].append(copy.deepcopy(doc["nodes"][0]))
    with pytest.raises(SnapshotError, match="more than once"):
        from_dict(doc)


def test_validation_error_is_bounded():
    doc = copy.deepcopy(BASE["live-containerd-docker-node"])
    doc["nodes"][0]["processes"] = [{"pid": "x" * 10_000}] * 2000
    with pytest.raises(SnapshotError) as e:
        from_dict(doc)
    assert len(str(e.value)) < 4000


def _cluster_paths(doc: dict[str, Any]) -> list[str]:
    return [k for k, v in (doc.get("cluster") or {}).items() if isinstance(v, list) and v]


@FUZZ_RENDER
@given(data=st.data())
def test_render_survives_wrong_shape_cluster_objects(data: st.DataObject, tmp_path_factory: pytest.TempPathFactory):
    doc = copy.deepcopy(BASE["seed001-flannel-containerd"])
    kinds = _cluster_paths(doc)
    kind = data.draw(st.sampled_from(kinds), label="kind")
    objs = doc["cluster"][kind]
    i = data.draw(st.integers(min_value=0, max_value=len(objs) - 1), label="object")
    objs[i] = _replace_somewhere(data, objs[i], json_value)
    if not isinstance(objs[i], dict):
        objs[i] = {"kind": "Pod", "spec": objs[i]}
    snap = from_dict(doc)  # cluster objects are free JSON: always loads
    out = tmp_path_factory.mktemp("fz")
    try:
        render_report(snap, fmt="md", lang="en", out_dir=out)
    except LabreportError:
        return
    assert (out / "report.md").exists()


ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "main", "nav", "h1", "h2", "h3", "h4", "h5", "h6",
                "p", "div", "table", "thead", "tbody", "tr", "th", "td", "code", "pre", "span", "details", "summary",
                "ul", "ol", "li", "strong", "em", "a", "br", "hr", "figure", "figcaption", "blockquote",
                # the inline SVG Graphviz draws
                "svg", "g", "path", "polygon", "polyline", "ellipse", "text", "defs"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.bad: list[Any] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.bad.append((tag, attrs))
        for k, v in attrs:
            if k.startswith("on") or (k in ("href", "src", "xlink:href") and not (v or "").startswith("#")):
                self.bad.append((tag, k, v))


_TOKENS = list("<>&\"'`*_[]()!#|\\/:=;\n -ajsvg") + ["javascript:", "<script>", "<img src=x onerror=", "](",
                                                       "<<", ">>", "<IMG SRC=", "\\N", "&lt;", "<!--", "-->"]
names = st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=20).map("".join)


@FUZZ_RENDER
@given(node=names, container=names, title=names)
def test_any_name_stays_text_in_html(node: str, container: str, title: str,
                                     tmp_path_factory: pytest.TempPathFactory):
    doc = copy.deepcopy(BASE["live-containerd-docker-node"])
    old = doc["nodes"][0]["name"]
    text = json.dumps(doc).replace(json.dumps(old), json.dumps(node))
    doc = json.loads(text)
    for c in doc["nodes"][0]["containers"]:
        c["name"] = container + c["name"]
    doc["title"] = title
    snap = from_dict(doc)
    out = tmp_path_factory.mktemp("fzh")
    render_report(snap, fmt="html", lang="en", out_dir=out)
    p = _Tags()
    p.feed((out / "report.html").read_text("utf-8"))
    assert not p.bad, p.bad[:5]
