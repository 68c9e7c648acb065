"""The per-node analysis of a large cluster (#14) does each distinct piece of work once —
a command line's component kind and flags, a container name's parts, a CIDR test, the
datapath model — and builds its records without validating values it made itself. None of
that may change a result: these tests compare with the plain computation."""

from __future__ import annotations

import json

import pytest

from labreport.analysis import analyze, components, inconsistencies, path, traffic
from labreport.analysis.model import Component, DeviceRow, Pod, PodContainer, PreflightCheck, RouteRow
from labreport.analysis.trace import world as world_mod
from labreport.snapshot import Evidence, Snapshot, load
from tests.conftest import ROOT

SAMPLES = sorted((ROOT / "samples").glob("*/snapshot.json"))
LIVE = ROOT / "samples" / "live-containerd-docker-node" / "snapshot.json"


def _cluster(n: int) -> Snapshot:
    """``n`` renamed copies of the live sample node, as benchmarks/bench_render_cluster.py makes them."""
    data = json.loads(LIVE.read_text("utf-8"))
    node = data["nodes"][0]
    text, old = json.dumps(node), json.dumps(node["name"])
    data["nodes"] = [json.loads(text.replace(old, json.dumps(f"node-{i:03d}"))) for i in range(n)]
    return Snapshot.model_validate(data)


def test_samples_exist():
    assert len(SAMPLES) >= 3 and LIVE in SAMPLES


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.parent.name)
def test_unvalidated_records_equal_validated_ones(sample):
    a = analyze(load(sample))
    records: list = []
    for na in a.nodes:
        records += na.components + na.preflight + na.pods + na.devices + na.routes
        records += [c for p in na.pods for c in p.containers]
    kinds = {type(r) for r in records}
    assert {Component, PreflightCheck, Pod, PodContainer, DeviceRow, RouteRow} & kinds
    for r in records:
        again = type(r).model_validate(r.model_dump())
        assert again == r and again.model_dump_json() == r.model_dump_json()


def test_a_repeated_command_line_gives_each_node_its_own_records():
    a = analyze(_cluster(3))
    first, second = a.nodes[0].components, a.nodes[1].components
    assert first and [c.model_dump() for c in first] == [c.model_dump() for c in second]
    flagged = next(c for c in first if c.key_flags)
    twin = second[first.index(flagged)]
    assert flagged is not twin and flagged.key_flags is not twin.key_flags
    flagged.key_flags["--changed"] = "yes"  # one node's record is its own
    assert "--changed" not in twin.key_flags
    assert "--changed" not in analyze(_cluster(2)).nodes[0].components[first.index(flagged)].key_flags


def test_a_command_lines_kind_is_what_its_executable_says():
    for node in _cluster(1).nodes:
        for p in node.processes:
            argv = components._split(p.command)
            want = components.executable_kind(argv[0], argv[1:], p.truncated) if argv else None
            assert components.command_kind(p.command, p.truncated) == want
            assert dict(components.command_flags(p.command)) == components.parse_flags(argv[1:])


def _prompt_host_plain(ev) -> object:
    """The prompt test as it was written before: every line split, the first 20 matched."""
    host = getattr(ev, "prompt_host", None)
    if isinstance(host, str):
        return host
    for line in (ev.stdout or "").split("\n")[:20]:
        m = inconsistencies._PROMPT_HOST_RE.match(line)
        if m:
            return m.group(1)
    return None


def test_prompt_host_agrees_with_reading_every_line():
    evidence = [ev for s in SAMPLES for n in load(s).nodes for ev in n.evidence]
    assert len(evidence) > 40
    # the longest real lines without an @ (ps's): 19 of them fill more than 2,000 characters
    long_lines = sorted({line for ev in evidence for line in (ev.stdout or "").split("\n") if "@" not in line},
                        key=len)[-19:]
    assert sum(len(line) + 1 for line in long_lines) > 2000 and min(map(len, long_lines)) >= 107
    # and cut so that the 20th line starts 2 characters before the 2,000th: its @ lies beyond
    edge = [line[:104] for line in long_lines[:18]] + [long_lines[18][:107]]
    assert sum(len(line) + 1 for line in edge) == 1998
    seen = 0
    for ev in evidence:
        out = ev.stdout or ""
        lines = out.split("\n")
        # the output as given, and with its prompt line (the first line with an @, if any)
        # moved to the 20th and 21st line and behind 2,000 characters of its other lines
        variants = [out]
        at = next((i for i, line in enumerate(lines) if "@" in line), None)
        if at is not None:
            rest = [line for i, line in enumerate(lines) if i != at and "@" not in line]
            for k in (19, 20):
                pad = (rest * (k // max(len(rest), 1) + 1))[:k] if rest else [""] * k
                variants.append("\n".join(pad + [lines[at]] + rest))
            variants.append("\n".join(rest * (2000 // max(len(out), 1) + 1) + [lines[at]]))
            variants += ["\n".join(long_lines[:k] + [lines[at]] + rest) for k in (18, 19)]
            if lines[at].find("@") >= 3:
                variants.append("\n".join(edge + [lines[at]] + rest))
        for text in variants:
            # as imported (a report's prompt_host kept beside the output) and without it
            for probe in (ev.model_copy(update={"stdout": text}), Evidence(id=ev.id, command=ev.command, stdout=text)):
                assert inconsistencies._prompt_host(probe) == _prompt_host_plain(probe)
            seen += inconsistencies._prompt_host(probe) is not None
    assert seen >= 10  # real outputs that carry a prompt, read from their text


def test_analyze_builds_the_datapath_model_once(monkeypatch):
    calls: list[int] = []
    real = world_mod._build_world

    def counting(snapshot, analysis):
        calls.append(1)
        return real(snapshot, analysis)

    monkeypatch.setattr(world_mod, "_build_world", counting)
    snap = _cluster(3)
    a = analyze(snap)
    assert len(calls) == 1 and a.path is not None and a.traffic
    # outside analyze() every call builds its own model, and tracing through a fresh one
    # gives what analyze() gave through the shared one
    fresh_path = path.trace_path(snap, a)
    fresh_traffic = traffic.service_traffic(snap, a)
    assert len(calls) == 3
    assert fresh_path.model_dump() == a.path.model_dump()
    assert [t.model_dump() for t in fresh_traffic[0]] == [t.model_dump() for t in a.traffic]
    assert fresh_traffic[1] == a.traffic_note


def test_the_shared_model_is_only_for_its_own_snapshot_and_analysis():
    snap, other = _cluster(2), _cluster(2)
    a = analyze(snap)
    with world_mod.shared_world(snap, a):
        w = world_mod.build_world(snap, a)
        assert world_mod.build_world(snap, a) is w
        assert world_mod.build_world(other, a) is not w
        assert world_mod.build_world(snap, None) is not w
    assert world_mod.build_world(snap, a) is not w
