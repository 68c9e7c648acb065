"""The recorded live sample (samples/live-containerd-docker-node, captured from the real
node lab by tests/lab/capture_sample.py) loads, analyzes to exactly the ground truth recorded
with it, and holds nothing it should not (no secrets, no foreign processes/namespaces)."""

from __future__ import annotations

import json

import pytest

from labreport import snapshot as sm
from labreport.analysis import analyze
from tests.conftest import ROOT
from tests.lab.capture_sample import scan_for_secrets
from tests.lab.checks import check_pods, check_services, check_veths
from tests.lab.truth import truth_from_dict

SAMPLE = ROOT / "samples" / "live-containerd-docker-node"


@pytest.fixture(scope="module")
def sample():
    snap = sm.load(SAMPLE)
    truth = truth_from_dict(json.loads((SAMPLE / "truth.json").read_text()))
    (node,) = analyze(snap).model_dump(mode="json")["nodes"]
    return snap, truth, node


def test_sample_is_a_live_capture(sample):
    snap, truth, _ = sample
    (node,) = snap.nodes
    assert node.source == "live" and node.status == "ok"
    assert node.info.versions.get("containerd") and node.info.versions.get("docker")
    assert snap.origin_note and "capture_sample.py" in snap.origin_note
    assert node.node_netns().name == truth.node_ns


def test_sample_analyzes_to_its_ground_truth(sample):
    _, truth, node = sample
    check_pods(node, truth)
    check_veths(node, truth)
    check_services(node, truth)


def test_sample_holds_only_the_labs_processes_and_namespaces(sample):
    snap, truth, _ = sample
    (node,) = snap.nodes
    kept_ns = {n.name for n in node.netns}
    assert kept_ns == {truth.node_ns, truth.uplink_peer_ns,
                       *(p.netns_name or f"pid:{p.sandbox_pid}" for p in truth.pods)}
    assert all(truth.base_dir in p.command or p.command.startswith(("/pause", "/bin/", "sleep"))
               for p in node.processes), [p.command for p in node.processes]
    assert {p.sandbox_pid for p in truth.pods} <= {p.pid for p in node.processes}


def test_sample_has_no_secrets():
    for f in SAMPLE.iterdir():
        assert scan_for_secrets(f.read_text()) == [], f.name
