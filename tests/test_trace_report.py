"""The report's path and per-Service section come from the trace (live node, seed 001)."""

from __future__ import annotations

from pathlib import Path

from labreport.analysis import analyze
from labreport.analysis.path import trace_path
from labreport.cli import main
from labreport.snapshot import load

ROOT = Path(__file__).resolve().parent.parent
LIVE = ROOT / "samples" / "live-containerd-docker-node"
SEED001 = ROOT / "samples" / "seed001-flannel-containerd"


def test_live_path_is_a_trace_with_its_masquerade_step():
    s = load(LIVE)
    a = analyze(s)
    p = a.path
    assert p.traced and p.complete and p.probability is not None and abs(p.probability - 1 / 3) < 1e-6
    keys = [h.key for h in p.hops]
    assert keys[:4] == ["output", "services", "svc", "sep"] and keys[-3:] == ["bridge", "veth", "pod"]
    # a process on the node is not in the pod CIDR: KUBE-SVC marks it, KUBE-POSTROUTING masquerades
    assert "masq" in keys and p.masquerade is True
    sep = p.hops[keys.index("sep")]
    assert sep.args["target"] == p.target and "--to-destination " + p.target in sep.args["rule"]


def test_path_to_a_pod_ip_and_to_a_node_port():
    s = load(LIVE)
    a = analyze(s)
    p = trace_path(s, a, service="10.244.1.4")  # a pod IP: the Service port that has it as an endpoint
    assert p.traced and p.target == "10.244.1.4:80" and p.target_pod == "default/dweb"
    p = trace_path(s, a, service="lab-node:30080")
    assert p.traced and p.target_pod in {"default/web", "default/dweb", "default/fileserver"}
    assert p.service == "default/web:http"


def test_seed001_path_narrates_where_the_trace_cannot_go():
    s = load(SEED001)
    a = analyze(s)
    assert not a.path.traced and "trace through the model stopped" in (a.path.note or "")
    assert [h.key for h in a.path.hops][:4] == ["output", "services", "svc", "sep"]


def test_per_service_section_data_and_report(tmp_path):
    s = load(LIVE)
    a = analyze(s)
    rows = {(r.service, r.kind, r.source): r for r in a.traffic}
    web = rows[("default/web:http", "cluster-ip", "pod")]
    assert sorted(round(o.share, 6) for o in web.outcomes) == [round(1 / 3, 6)] * 3
    assert {o.pod for o in web.outcomes} == {"default/web", "default/dweb", "default/fileserver"}
    np_ = rows[("default/web:http", "node-port", "outside")]
    assert all(o.masquerade and o.result == "delivered" for o in np_.outcomes)  # eTP Cluster: masqueraded
    assert main(["render", str(LIVE), "--format", "md", "--lang", "en", "--out", str(tmp_path / "en"), "-q"]) == 0
    md = (tmp_path / "en" / "report.md").read_text("utf-8")
    assert "What a client gets from each Service" in md and "192.168.56.10:30080 (node port)" in md
    assert main(["render", str(LIVE), "--format", "md", "--lang", "zh", "--out", str(tmp_path / "zh"), "-q"]) == 0
    zh = (tmp_path / "zh" / "report.md").read_text("utf-8")
    assert "各 Service 对客户端的实际效果" in zh and "源地址被改写" in zh


def test_seed001_section_says_unknown_and_why(tmp_path):
    s = load(SEED001)
    a = analyze(s)
    assert a.traffic and all(o.result == "unknown" for r in a.traffic for o in r.outcomes)
    assert all(r.elsewhere for r in a.traffic if r.source == "pod")
    assert "no pod of k8s-master" in (a.traffic_note or "")
