"""Property test of the importer itself: any text under any file kind either builds a node
(whose snapshot then saves and loads back) or raises a LabreportError — never anything
else. Inputs: mutated real outputs (seeds, parser fixtures) and random text."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labreport.errors import LabreportError
from labreport.importer import build_node
from labreport.snapshot import Snapshot, dumps, from_dict

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CORPUS = [p.read_text(encoding="utf-8") for p in sorted(FIXTURES.glob("seeds/*/*")) + sorted(FIXTURES.glob("parsers/*/*.out"))
          if p.is_file() and p.suffix != ".md"]
KINDS = ["ps", "containers", "pods", "inspect", "inspect:k8s_viewer_pod_default_05260c21-c524-41c7-82e7-ea61f09f4f2f_0",
         "ctr", "ip-link", "ip-addr", "bridge-fdb", "ip-route", "pod-ip-addr:testpod", "ip-netns", "kubectl"]


@st.composite
def pasted(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(CORPUS)).split("\n")
    for _ in range(draw(st.integers(0, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["cut", "dup", "swap", "truncate"]))
        if op == "cut":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
    return "\n".join(lines)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(files=st.lists(st.tuples(st.sampled_from(KINDS), pasted() | st.text(max_size=200)), min_size=1, max_size=4))
def test_build_node_never_crashes(files: list[tuple[str, str]]) -> None:
    grouped: dict[str, list[tuple[str, str]]] = {}
    for i, (kind, text) in enumerate(files):
        grouped.setdefault(kind, []).append((f"f{i}.txt", text))
    try:
        node = build_node("n", grouped)
    except LabreportError as exc:
        assert str(exc)
        return
    snap = Snapshot(nodes=[node])
    assert from_dict(__import__("json").loads(dumps(snap))).nodes[0].name == "n"
    partial = build_node("n", grouped, keep_going=True)
    assert partial.status == "ok"
