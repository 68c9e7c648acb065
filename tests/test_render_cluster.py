"""The sections that rest on the Kubernetes API: node Ready status, manifests from the
last-applied annotation, HPA spec/status/behavior, volumes from pod specs.

The cluster objects are the cluster owner's API fixtures (tests/fixtures/k8s-api: the JSON
kube-apiserver returns for the two-node lab), attached to the live lab node's snapshot.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labreport.render.report import render_report
from labreport.snapshot import ClusterObjects, load

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "tests" / "fixtures" / "k8s-api"
LIVE = sorted(p.parent for p in (ROOT / "samples").glob("live-*/snapshot.json"))


def _items(name: str) -> list[dict]:
    return json.loads((API / name).read_text("utf-8"))["items"]


@pytest.fixture(scope="module")
def snap():
    base = LIVE[0] if LIVE else ROOT / "samples" / "seed001-flannel-containerd"
    s = load(base)
    s.cluster = ClusterObjects(source="api", nodes=_items("nodes.json"), pods=_items("pods.json"),
                               services=_items("services.json"), deployments=_items("deployments.json"),
                               hpas=_items("hpas.json"), endpointslices=_items("endpointslices.json"))
    return s


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_api_sections(snap, tmp_path: Path, lang: str):
    res = render_report(snap, fmt="md", lang=lang, out_dir=tmp_path)
    assert not res.missing_keys
    text = (tmp_path / "report.md").read_text("utf-8")
    env = text[text.index("## 1."):text.index("## 2.")]
    for n in _items("nodes.json"):
        assert n["metadata"]["name"] in env
        assert n["status"]["nodeInfo"]["kubeletVersion"] in env
    assert "Ready" in env
    man = text[text.index("## 4."):text.index("## 5.")]
    hpa = _items("hpas.json")[0]
    assert f"HorizontalPodAutoscaler {hpa['metadata']['namespace']}/{hpa['metadata']['name']}" in man
    # the applied manifest, not the server's object: no managedFields, no status
    assert "managedFields" not in man and "currentReplicas" not in man
    hs = text[text.index("## 10."):text.index("## Appendix" if lang == "en" else "## 附录")]
    st = hpa["status"]
    assert f"{st['currentReplicas']} → {st['desiredReplicas']}" in hs
    assert "Percent: 10% / 60 s" in hs
    for c in st["conditions"]:
        assert c["type"] in hs
    vol = text[text.index("## 9."):text.index("## 10.")]
    dep = _items("deployments.json")[0]
    if dep["spec"]["template"]["spec"].get("volumes"):
        assert dep["metadata"]["name"] in vol
    else:
        assert ("No user workload mounts a volume" if lang == "en" else "没有用户工作负载挂载卷") in vol
