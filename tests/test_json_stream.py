"""labreport.json_stream: the analysis JSON written a node and a service record at a time is,
byte for byte, what pydantic's ``to_json(indent=…)`` of the whole analysis gives — on the
bundled samples, on an analysis of generated kube-proxy rules, with hostile strings, and with
models the writer must serialize whole (extras, a model serializer, computed fields)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, computed_field, model_serializer

from labreport import json_stream
from labreport.analysis import analyze
from labreport.analysis.model import Analysis, Endpoint, NodeAnalysis, ServiceRecord
from labreport.importer import build_node
from labreport.json_stream import dumps_json, write_json
from labreport.snapshot import Record, Snapshot, load
from tests.support import gen_iptables

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(p for p in (ROOT / "samples").iterdir() if (p / "snapshot.json").is_file())
STREAM = {Analysis: "nodes", NodeAnalysis: "services"}


def whole(model: Any, indent: int = 1) -> bytes:
    return type(model).__pydantic_serializer__.to_json(model, indent=indent)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_samples_byte_for_byte(sample):
    a = analyze(load(sample))
    assert a.nodes and any(n.services for n in a.nodes) or sample.name.endswith("before")
    assert dumps_json(a, stream=STREAM) == whole(a)


def _rules_analysis(n: int = 60) -> Analysis:
    text, _truth = gen_iptables.render(gen_iptables.bench_services(n, 3))
    node = build_node("node-a", {"iptables-save": [("iptables-save.txt", text)]})
    return analyze(Snapshot(nodes=[node, node.model_copy(update={"name": "node-b"})]))


def test_generated_rules_two_nodes_every_indent():
    a = _rules_analysis()
    assert len(a.nodes) == 2 and all(len(n.services) == 60 for n in a.nodes)
    for indent in (1, 2, 4):
        assert dumps_json(a, stream=STREAM, indent=indent) == whole(a, indent)


def test_hostile_strings_and_empty_lists():
    svc = ServiceRecord(name='ns/"quoted"\n\\name:p', cluster_ip="10.96.0.1", port=80,
                        warnings=["line one\nline two", "节点 ✓ 🧪", "\u0000\u001f control", "</script><b>"],
                        evidence=["-A KUBE-SVC-X -m comment --comment \"a\\\"b\" -j KUBE-SEP-Y"],
                        endpoints=[Endpoint(address="10.244.1.2:80", probability=1.0)])
    a = Analysis(nodes=[NodeAnalysis(node="n\n1", services=[svc, ServiceRecord(name="empty")]),
                        NodeAnalysis(node="no-services"), NodeAnalysis(node="节点")],
                 warnings=["w\n"])
    assert dumps_json(a, stream=STREAM) == whole(a)
    assert dumps_json(Analysis(), stream=STREAM) == whole(Analysis())
    assert dumps_json(Analysis(nodes=[]), stream={}) == whole(Analysis())


def test_extra_fields_are_serialized_whole():
    # Record keeps unknown fields; a model holding some is not split (its extras come last)
    node = NodeAnalysis(node="x", services=[ServiceRecord(name="a/b:c")], added_later={"k": [1, 2]})
    a = Analysis(nodes=[node, NodeAnalysis(node="y", services=[ServiceRecord(name="d/e:f")])])
    assert node.__pydantic_extra__
    assert dumps_json(a, stream=STREAM) == whole(a)
    assert b'"added_later"' in dumps_json(a, stream=STREAM)


class _Serialized(NodeAnalysis):
    @model_serializer(mode="wrap")
    def _ser(self, handler: Any) -> Any:
        out = handler(self)
        out["services"] = len(out["services"])
        return out


class _Computed(NodeAnalysis):
    @computed_field  # type: ignore[prop-decorator]
    @property
    def service_count(self) -> int:
        return len(self.services)


@pytest.mark.parametrize("cls", [_Serialized, _Computed])
def test_models_that_cannot_be_split_are_whole(cls):
    node = cls(node="z", services=[ServiceRecord(name="a/b:c"), ServiceRecord(name="a/b:d")])
    assert dumps_json(node, stream={cls: "services"}) == whole(node)
    # an item of a subclass of the declared model: the whole serializes it by the declared one
    a = Analysis(nodes=[node])
    assert dumps_json(a, stream={Analysis: "nodes", cls: "services"}) == whole(a)
    assert whole(a) != whole(Analysis(nodes=[NodeAnalysis(node="z")]))  # the services are there


class _Excluded(Record):
    node: str = "x"
    services: list[ServiceRecord] = Field(default_factory=list, exclude_if=lambda v: len(v) > 1)
    after: int = 1


def test_an_exclusion_on_the_streamed_field_is_the_wholes():
    m = _Excluded(services=[ServiceRecord(name="a/b:c"), ServiceRecord(name="a/b:d")])
    assert b'"services"' not in whole(m)
    assert dumps_json(m, stream={_Excluded: "services"}) == whole(m)
    one = _Excluded(services=[ServiceRecord(name="a/b:c")])
    assert dumps_json(one, stream={_Excluded: "services"}) == whole(one) and b'"services"' in whole(one)


def test_written_in_pieces(monkeypatch):
    a = _rules_analysis(40)
    monkeypatch.setattr(json_stream, "FLUSH_BYTES", 4096)
    writes: list[int] = []

    class Out(io.BytesIO):
        def write(self, b: Any) -> int:
            writes.append(len(b))
            return super().write(b)

    out = Out()
    write_json(a, out, stream=STREAM)
    assert out.getvalue() == whole(a)
    # many writes, none much larger than the threshold plus one record
    assert len(writes) > 20 and max(writes) < len(out.getvalue()) / 4


def test_cli_json_is_the_whole_analysis(tmp_path):
    """``labreport analyze --json`` in its own process (a real stdout pipe): the analysis's
    whole to_json and a newline."""
    text, _truth = gen_iptables.render(gen_iptables.bench_services(30, 2))
    dump = tmp_path / "iptables-save.txt"
    dump.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    snap = tmp_path / "snap"
    run = [sys.executable, "-m", "labreport"]
    subprocess.run([*run, "import", "--iptables-save", str(dump), "--out", str(snap), "-q"], check=True, env=env,
                   cwd=tmp_path)
    cp = subprocess.run([*run, "analyze", str(snap), "--json"], capture_output=True, env=env, cwd=tmp_path)
    assert cp.returncode == 0, cp.stderr
    from labreport.cli.output import load_redacted

    expected = whole(analyze(load_redacted(str(snap), redact=True))) + b"\n"
    assert cp.stdout == expected
