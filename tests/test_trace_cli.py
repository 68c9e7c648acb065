"""`labreport trace` on real snapshots (the live lab node, seed 001) and on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labreport.cli import main
from labreport.parsers import get
from labreport.snapshot import NodeSnapshot, Snapshot, save

ROOT = Path(__file__).resolve().parent.parent
LIVE = ROOT / "samples" / "live-containerd-docker-node"
SEED001 = ROOT / "samples" / "seed001-flannel-containerd"


def run_json(capsys, *args: str) -> dict:
    rc = main(["trace", *args, "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out
    return json.loads(out)


def test_pod_to_three_replica_service_on_the_live_node(capsys):
    data = run_json(capsys, str(LIVE), "--from", "default/fileserver", "--to", "default/web:http")
    outs = data["outcomes"]
    assert len(outs) == 3 and all(o["result"] == "delivered" for o in outs)
    assert all(abs(o["probability"] - 1 / 3) < 1e-6 for o in outs)
    pods = {o["pod"] for o in outs}
    assert pods == {"default/web", "default/dweb", "default/fileserver"}
    # the pod that reaches itself through the Service is masqueraded (hairpin), the others not
    assert {o["pod"]: o["masquerade"] for o in outs}["default/fileserver"] is True
    assert sum(o["masquerade"] for o in outs) == 1
    for o in outs:
        nf = [h for h in o["hops"] if h["kind"] == "netfilter"]
        assert nf[0]["hook"] == "PREROUTING" and nf[0]["chain"] == "PREROUTING" and nf[0]["backend"] == "iptables"
        dnat = [h for h in nf if h["verdict"].startswith("DNAT ")]
        assert len(dnat) == 1 and dnat[0]["verdict"] == "DNAT " + o["endpoint"]
        assert isinstance(dnat[0]["rule_index"], int) and "--to-destination " + o["endpoint"] in dnat[0]["rule"]
        assert o["hops"][-1]["kind"] == "deliver"
        assert set(nf[0]) == {"kind", "node", "netns", "hook", "family", "backend", "table", "chain", "rule_index",
                              "rule", "verdict"}


def test_same_flow_by_pod_ip_and_cluster_ip(capsys):
    a = run_json(capsys, str(LIVE), "--from", "10.244.1.3", "--to", "10.96.0.80:80")
    b = run_json(capsys, str(LIVE), "--from", "fileserver", "--to", "web")
    assert sorted(o["endpoint"] for o in a["outcomes"]) == sorted(o["endpoint"] for o in b["outcomes"])


def test_node_process_to_service_and_nodeport_from_outside(capsys):
    d = run_json(capsys, str(LIVE), "--from", "lab-node", "--to", "default/fileserver:http")
    assert [o["endpoint"] for o in d["outcomes"]] == ["10.244.1.3:80"]
    assert d["outcomes"][0]["hops"][1]["hook"] == "OUTPUT"
    d = run_json(capsys, str(LIVE), "--from", "203.0.113.9", "--to", "lab-node:30080")
    assert len(d["outcomes"]) == 3 and all(o["masquerade"] for o in d["outcomes"])


def test_all_fronts_table(capsys):
    assert main(["trace", str(LIVE), "--all"]) == 0
    out = capsys.readouterr().out
    assert "default/web:http" in out and "10.96.0.80:80" in out and "outside" in out and "33%" in out


def test_seed001_partial_paste_is_unknown_not_guessed(capsys):
    # the student pasted grep pieces of the nat table: no built-in OUTPUT chain to start from
    d = run_json(capsys, str(SEED001), "--from", "k8s-master", "--to", "default/test-service:fileserver")
    (o,) = d["outcomes"]
    assert o["result"] == "unknown" and "without its built-in OUTPUT chain" in o["reason"]


def test_unknown_service_names_the_closest(capsys):
    rc = main(["trace", str(LIVE), "--from", "lab-node", "--to", "default/wbe"])
    err = capsys.readouterr().err
    assert rc != 0 and "default/wbe" in err and "default/web" in err and "Traceback" not in err


def test_unknown_source(capsys):
    rc = main(["trace", str(LIVE), "--from", "nosuchpod", "--to", "web"])
    err = capsys.readouterr().err
    assert rc != 0 and "nosuchpod" in err and "Traceback" not in err


def test_snapshot_without_rules_or_routes(tmp_path, capsys):
    save(Snapshot(nodes=[NodeSnapshot(name="bare")]), tmp_path)
    d = run_json(capsys, str(tmp_path), "--from", "198.51.100.1", "--to", "10.0.0.1:80")
    assert "no iptables" in " ".join(d["notes"]) and "no routes" in " ".join(d["notes"])
    assert [o["result"] for o in d["outcomes"]] == ["unknown"]


def test_uninterpretable_rule_stops_with_unknown(tmp_path, capsys):
    text = ("*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            "-A PREROUTING -m frobnicate --frob 1 -j DNAT --to-destination 10.1.1.1:80\nCOMMIT\n")
    ipt = get("iptables-save").parse(text, source="t").value
    save(Snapshot(nodes=[NodeSnapshot(name="n", iptables=ipt)]), tmp_path)
    d = run_json(capsys, str(tmp_path), "--from", "198.51.100.1", "--to", "10.0.0.1:80")
    (o,) = d["outcomes"]
    assert o["result"] == "unknown" and "frobnicate" in o["reason"] and "rule 1" in o["reason"]
    assert o["hops"][-1]["verdict"] == "unknown" and o["hops"][-1]["rule_index"] == 1


@pytest.mark.parametrize("word", ["10.96.0.80", "10.96.0.80:80", "default/web", "web", "default/web:http", "10.244.1.2"])
def test_analyze_service_matcher(capsys, word):
    rc = main(["analyze", str(LIVE), "--json", "--service", word])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0
    names = {s["name"] for n in data["nodes"] for s in n["services"]}
    assert "default/web:http" in names


def test_ipvs_virtual_server_branches_by_scheduler(capsys, tmp_path):
    from labreport.snapshot import NodeInfo

    text = (ROOT / "tests" / "fixtures" / "parsers" / "ipvsadm" / "opsnull-251-ipvsadm-Ln.txt").read_text("utf-8")
    ipvs = get("ipvsadm").parse(text, source="opsnull-251-ipvsadm-Ln.txt").value
    save(Snapshot(nodes=[NodeSnapshot(name="vm01", ipvs=ipvs, info=NodeInfo(kube_proxy_mode="ipvs"))]), tmp_path)
    d = run_json(capsys, str(tmp_path), "--from", "198.51.100.1", "--to", "10.253.102.0:32429")
    outs = d["outcomes"]
    assert sorted(o["dnat"] for o in outs) == ["10.253.102.4:80", "10.253.35.7:80", "10.253.56.7:80", "10.253.7.7:80"]
    assert all(abs(o["probability"] - 0.25) < 1e-9 for o in outs)
    assert all(any(h["kind"] == "ipvs" for h in o["hops"]) for o in outs)
    # routes were not collected: where each real server lives is unknown, and said so
    assert all(o["result"] == "unknown" and "not collected" in o["reason"] for o in outs)
