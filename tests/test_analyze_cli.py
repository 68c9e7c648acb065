"""`labreport analyze SNAPSHOT [--json] [--node N] [--service NAME]` through main()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labreport.analysis.probability import format_probability
from labreport.snapshot import save
from tests.test_analysis_orchestrator import _seed001_master_with_rules
from tests.test_analysis_seeds import seed000_worker, seed001_worker
from labreport.snapshot import Snapshot


@pytest.fixture
def snapdir(tmp_path):
    snap = Snapshot(title="seed 001 + seed 000 worker",
                    origin_note="outputs quoted from the seeds' student reports",
                    nodes=[_seed001_master_with_rules(), seed001_worker(), seed000_worker()])
    save(snap, tmp_path / "snap")
    return tmp_path / "snap"


def test_json_output(cli, snapdir):
    code, out, err = cli("analyze", snapdir, "--json")
    assert code == 0, err
    data = json.loads(out)
    nodes = {n["node"]: n for n in data["nodes"]}
    assert set(nodes) == {"k8s-master", "k8s-worker", "node1"}
    m = nodes["k8s-master"]
    comp = {c["name"]: c for c in m["components"]}
    assert comp["kube-apiserver"]["pid"] == 5081 and comp["kube-apiserver"]["in_container"] is True
    assert comp["kubelet"]["in_container"] is False and comp["kubelet"]["role"]
    v = nodes["k8s-worker"]["veth_pairs"][0]
    assert (v["host_ifname"], v["host_ifindex"], v["pod_ifname"], v["pod_ifindex"], v["pod_ips"], v["bridge"]) == \
        ("veth05dbc1b4", 5, "eth0", 2, ["10.244.1.2/24"], "cni0")
    pod = next(p for p in nodes["node1"]["pods"] if p["name"] == "pod")
    assert pod["containers"][0]["is_sandbox"] is True
    if m["services"]:  # the services decoder is another owner's module
        s = next(s for s in m["services"] if s["name"] == "default/test-service:downloader")
        assert (s["cluster_ip"], s["port"], s["protocol"], s["session_affinity"]) == ("10.101.163.22", 3000, "tcp", False)
        assert [e["address"] for e in s["endpoints"]][0] == "10.244.1.3:3000"
        assert {"address", "probability"} <= set(s["endpoints"][0])


def test_json_node_and_snapshot_json_path(cli, snapdir):
    code, out, _ = cli("analyze", snapdir / "snapshot.json", "--json", "--node", "k8s-worker")
    assert code == 0
    assert [n["node"] for n in json.loads(out)["nodes"]] == ["k8s-worker"]


def test_text_output(cli, snapdir):
    code, out, err = cli("analyze", snapdir)
    assert code == 0, err
    assert "Node k8s-master" in out and "Node node1" in out
    assert "kube-controller-manager" in out and "--cluster-cidr=10.244.0.0/16" in out
    assert "[sandbox] k8s_POD_pod_default_05260c21" in out
    assert "veth05dbc1b4" in out and "10.244.1.2/24" in out
    assert "sandbox e6cf53e8a57e5: not in the input" in out
    assert "Not in containers (run on the host): kubelet" in out
    assert "Preflight checks" in out
    assert "kube-proxy mode: iptables (from " in out


def test_text_service_shares(cli, snapdir):
    code, out, _ = cli("analyze", snapdir, "--node", "k8s-master", "--service", "default/test-service:fileserver")
    assert code == 0
    assert "default/test-service:fileserver" in out and "default/test-service:downloader" not in out
    assert "10.244.1.3:8080" in out and "share 0.3333 (1/3)" in out
    assert "rule p=0.33333333349" in out and "rule p=0.5" in out and "rule p=always" in out


def test_service_filter_by_short_name(cli, snapdir):
    code, out, _ = cli("analyze", snapdir, "--json", "--service", "test-service")
    data = json.loads(out)
    names = {s["name"] for n in data["nodes"] for s in n["services"]}
    assert names <= {"default/test-service:fileserver", "default/test-service:downloader"}


def test_unknown_node_is_a_clear_error(cli, snapdir):
    code, out, err = cli("analyze", snapdir, "--node", "nope")
    assert code == 1 and "no node named nope" in err and "k8s-master" in err and "Traceback" not in err


@pytest.mark.parametrize("content", [None, "", "{not json", '{"nodes": []}', "[1, 2]"])
def test_bad_snapshot_paths(cli, tmp_path, content):
    target = tmp_path / "snapshot.json"
    if content is not None:
        target.write_text(content)
    code, out, err = cli("analyze", tmp_path)
    assert code == 4, (code, err)
    assert err.startswith("labreport: error: ") and "Traceback" not in err and out == ""


def share_text(p):
    """The terminal's share column (render/text.py): the one formatter's fraction style."""
    return format_probability(p, style="fraction", missing="?")


def test_share_text():
    assert share_text(1 / 3) == "0.3333 (1/3)"
    assert share_text(0.33333333349) == "0.3333 (1/3)"
    assert share_text(0.5) == "0.5000 (1/2)"
    assert share_text(1.0) == "1.0000"
    assert share_text(None) == "?"
    assert share_text(0.123456) == "0.1235"


def test_import_then_analyze_seed001(cli, tmp_path):
    """The TA's flow: the report's pasted outputs → `labreport import` → `labreport analyze`."""
    from tests.conftest import FIXTURES

    s = FIXTURES / "seeds" / "seed001"
    out = tmp_path / "imported"
    code, _, err = cli("import", "--node", "k8s-master", "--ps", s / "master-ps-aux-grep-kube.txt",
                       "--containers", s / "master-crictl-ps.txt",
                       "--node", "k8s-worker", "--ps", s / "worker-ps-aux-grep-kube.txt",
                       "--containers", s / "worker-crictl-ps-after.txt", "--ip-addr", s / "worker-ip-addr.txt",
                       "--pod-ip-addr", f"testpod={s / 'pod-ip-addr.txt'}", "-q", "--out", out)
    assert code == 0, err
    code, text, err = cli("analyze", out, "--json", "--node", "k8s-worker")
    assert code == 0, err
    w = json.loads(text)["nodes"][0]
    (pair,) = w["veth_pairs"]
    assert (pair["host_ifname"], pair["host_ifindex"], pair["pod_ifindex"], pair["pod_ips"], pair["bridge"]) == \
        ("veth05dbc1b4", 5, 2, ["10.244.1.2/24"], "cni0")
    assert pair["pod"] == "testpod"
    testpod = next(p for p in w["pods"] if p["name"] == "testpod")
    assert testpod["ip"] == "10.244.1.2" and testpod["sandbox_id"] == "e6cf53e8a57e5"
    assert [c["name"] for c in w["components"]] == ["kubelet", "kube-proxy", "flanneld"]
    assert w["not_in_containers"] == ["kubelet"]


def test_limit_caps_long_tables_and_says_so(cli, snapdir):
    code, out, _ = cli("analyze", snapdir, "--node", "k8s-master", "--limit", "2")
    assert code == 0
    assert "more not shown" in out and "--limit 0 lists everything" in out
    code, out, _ = cli("analyze", snapdir, "--node", "k8s-master", "--limit", "0")
    assert "more not shown" not in out and "kube-controller-manager" in out and "coredns" in out


def test_text_speaks_the_mode_in_use(cli, tmp_path):
    """nftables endpoints are picked by numgen, IPVS real servers by weight; IPv6 fronts
    are bracketed — not iptables' "rule p=" wording."""
    fx = Path(__file__).parent / "fixtures"
    code, _, err = cli("import", "--nft", fx / "parsers" / "nft" / "kube-proxy-lab.nft", "--out", tmp_path / "nft")
    assert code == 0, err
    code, out, _ = cli("analyze", tmp_path / "nft")
    assert code == 0
    assert "numgen 0 of 3" in out and "numgen 2 of 3" in out and "rule p=" not in out
    assert "[fd00:10:96::" in out  # the lab's IPv6 ClusterIPs
    code, _, err = cli("import", "--ipvsadm", fx / "parsers" / "ipvsadm" / "opsnull-251-ipvsadm-Ln.txt", "--out", tmp_path / "ipvs")
    assert code == 0, err
    code, out, _ = cli("analyze", tmp_path / "ipvs")
    assert code == 0
    assert "weight 1" in out and "rule p=" not in out
