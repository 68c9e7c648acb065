"""sysinfo, iptables (both backends), `labreport doctor`, and a whole unprivileged
`labreport collect --local` — on this machine's real kernel, binaries and configs."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.base import CollectContext, run_collector
from tests.conftest import lab_name, needs_lab


def sh(*args: str, check: bool = True) -> str:
    res = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {res.stderr.strip()}")
    return res.stdout


# --------------------------------------------------------------------------- sysinfo


def test_sysinfo_reads_this_kernel():
    from collectors.sysinfo import SysinfoCollector

    out = run_collector(SysinfoCollector(), CollectContext())
    assert out.status.ok
    info = out.info
    assert info["kernel"] == platform.release() and info["arch"] == platform.machine()
    assert info["sysctls"]["net.ipv4.ip_forward"] == Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    assert info["cgroup_version"] == (2 if Path("/sys/fs/cgroup/cgroup.controllers").exists() else 1)
    if Path("/proc/modules").exists():
        loaded = {ln.split()[0] for ln in Path("/proc/modules").read_text().splitlines()}
        for m in ("overlay", "br_netfilter", "vxlan"):
            if m in loaded:
                assert m in info["modules"]
    if Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
        assert "br_netfilter" in info["modules"]
    ev = {e.id: e for e in out.evidence}
    assert "net.ipv4.ip_forward = " in ev["sysctl"].stdout


@pytest.mark.skipif(not any(os.access(os.path.join(d, "containerd"), os.X_OK)
                            for d in os.environ.get("PATH", "").split(":")), reason="no containerd binary")
def test_versions_and_containerd_driver_from_real_outputs(tmp_path):
    from collectors.sysinfo import SysinfoCollector, containerd_cgroup_driver

    out = run_collector(SysinfoCollector(), CollectContext())
    real = sh("containerd", "--version")
    assert out.info["versions"]["containerd"] in real
    assert any(e.id == "version:containerd" and e.stdout == real for e in out.evidence)
    default = sh("containerd", "config", "default")
    assert containerd_cgroup_driver(default) == "cgroupfs"  # containerd 1.6's default
    assert containerd_cgroup_driver(default.replace("SystemdCgroup = false", "SystemdCgroup = true")) == "systemd"


def test_versions_skip_missing_binaries(tmp_path):
    from collectors.sysinfo import SysinfoCollector

    out = run_collector(SysinfoCollector(), CollectContext(path=str(tmp_path)))
    assert out.status.ok and out.info["versions"] == {}


# --------------------------------------------------------------------------- iptables

IPT_IN_NS = r"""
import json
from collectors.base import CollectContext, run_collector
from collectors.iptables import IptablesCollector
out = run_collector(IptablesCollector(), CollectContext())
print(json.dumps({"status": out.status.model_dump(mode="json"),
                  "iptables": out.iptables.model_dump(mode="json") if out.iptables else None,
                  "ip6tables": out.ip6tables.model_dump(mode="json") if out.ip6tables else None,
                  "evidence": {e.id: e.stdout for e in out.evidence}}))
"""


@pytest.fixture
def netns():
    name = lab_name("lrci")
    sh("ip", "netns", "add", name)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _collect_iptables(ns: str) -> dict:
    return json.loads(sh("ip", "netns", "exec", ns, sys.executable, "-c", IPT_IN_NS))


@needs_lab("iptables", "iptables-save")
def test_iptables_rules_parsed_with_the_shared_parser(netns):
    sh("ip", "netns", "exec", netns, "iptables", "-t", "nat", "-N", "KUBE-SERVICES")
    sh("ip", "netns", "exec", netns, "iptables", "-t", "nat", "-A", "OUTPUT", "-m", "comment", "--comment",
       "kubernetes service portals", "-j", "KUBE-SERVICES")
    sh("ip", "netns", "exec", netns, "iptables", "-t", "nat", "-A", "KUBE-SERVICES", "-d", "10.96.0.10/32", "-p",
       "tcp", "--dport", "53", "-j", "RETURN")
    res = _collect_iptables(netns)
    assert res["status"]["ok"] and not res["status"]["partial"], res["status"]
    nat = res["iptables"]["tables"]["nat"]["chains"]
    # a rule is stored as [spec, line_no, counters]
    assert [r[0] for r in nat["KUBE-SERVICES"]["rules"]] == ["-d 10.96.0.10/32 -p tcp -m tcp --dport 53 -j RETURN"]
    assert "kubernetes service portals" in nat["OUTPUT"]["rules"][0][0]
    assert res["iptables"]["evidence_id"] == "iptables-save"
    assert "*nat" in res["evidence"]["iptables-save"]
    version = sh("iptables", "--version")
    assert res["iptables"]["backend"] == ("nf_tables" if "nf_tables" in version else "legacy")
    assert res["ip6tables"]["family"] == "ipv6"


@needs_lab("iptables", "iptables-legacy", "iptables-legacy-save")
def test_both_backends_recorded_and_the_kube_one_chosen(netns):
    """kube-proxy's chains in the legacy tables, a stray chain in nf_tables: legacy is in use."""
    version = sh("iptables", "--version")
    if "nf_tables" not in version:
        pytest.skip("iptables here is not the nf_tables variant")
    sh("ip", "netns", "exec", netns, "iptables", "-t", "filter", "-N", "OTHER")
    for chain in ("KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"):
        sh("ip", "netns", "exec", netns, "iptables-legacy", "-t", "nat", "-N", chain)
    res = _collect_iptables(netns)
    ipt = res["iptables"]
    assert ipt["backend"] == "legacy" and "KUBE-SERVICES" in ipt["tables"]["nat"]["chains"]
    assert ipt["evidence_id"] == "iptables-legacy-save"
    assert {b["backend"]: b["kube_chains"] for b in ipt["backends"]} == {"nf_tables": 0, "legacy": 3}
    assert "in use" in ipt["note"] and "legacy" in ipt["note"]
    assert "iptables-save" in res["evidence"] and "iptables-legacy-save" in res["evidence"]


@needs_lab("iptables-save")
def test_iptables_without_privileges_fails_with_the_reason(netns):
    out = sh("ip", "netns", "exec", netns, "setpriv", "--inh-caps=-all", "--bounding-set=-all",
             sys.executable, "-c", IPT_IN_NS)
    st = json.loads(out)["status"]
    assert not st["ok"] and "needs root" in st["reason"] and "CAP_NET_ADMIN" in st["reason"] and "sudo" in st["fix"]


# --------------------------------------------------------------------------- doctor


def test_doctor_lists_every_collector(cli):
    code, out, err = cli("doctor")
    assert code == 0, err
    for name in ("processes", "sysinfo", "cri", "docker", "netlink", "iptables"):
        assert f"] {name}" in out
    assert "CJK font" in out and "graphviz" in out


def test_doctor_names_the_fix_for_a_missing_binary(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out, err = cli("doctor", "--json")
    assert code == 0, err
    report = json.loads(out)
    ipt = next(c for c in report["collectors"] if c["name"] == "iptables")
    assert ipt["verdict"] == "blocked"
    assert any(m["need"] == "binary iptables-save" and m["fix"] == "apt-get install iptables" for m in ipt["missing"])
    net = next(c for c in report["collectors"] if c["name"] == "netlink")
    assert net["verdict"] == "partial"  # ip missing: real text becomes synthesized
    code, out, err = cli("doctor")
    assert "fix: apt-get install iptables" in out


def test_doctor_not_root(cli, monkeypatch):
    monkeypatch.setattr("collectors.base.has_root_privileges", lambda: False)
    code, out, err = cli("doctor")
    assert out.startswith("not root")
    assert "needs root" in out


# --------------------------------------------------------------------------- not root


@needs_lab("setpriv")
def test_collect_without_privileges_says_what_needs_root(tmp_path):
    res = subprocess.run(
        ["setpriv", "--inh-caps=-all", "--bounding-set=-all", sys.executable, "-c",
         "from labreport.cli import run; run()", "collect", "--local", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    node = json.loads((tmp_path / "snapshot.json").read_text())["nodes"][0]
    assert node["status"] == "partial"
    assert "not collected without root: iptables" in node["error"] and "netlink" in node["error"]
    assert "sudo labreport collect --local" in node["error"]
    st = {c["name"]: c for c in node["collectors"]}
    assert st["processes"]["ok"] and st["sysinfo"]["ok"] and node["processes"]
    assert st["netlink"]["ok"] and st["netlink"]["partial"] and node["netns"][0]["kind"] == "node"
    assert "root" in res.stderr
