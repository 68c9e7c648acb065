"""collectors/nftables.py and collectors/ipvs.py: declarations, planning, and runs.

The nftables collector runs for real inside a namespace of the test's own (nft lists
that namespace's ruleset). IPVS is not in this kernel: its collector is planned for real
(not applicable here), and its collect() is run against a recorded real ipvsadm output
served by a tiny `ipvsadm` script on PATH (the only way to exercise it on this machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from collectors import registry
from collectors.base import CollectContext, plan, run_collector
from collectors.ipvs import IpvsCollector
from collectors.nftables import NftablesCollector

from tests.conftest import FIXTURES, ROOT, lab_name, needs_lab


def test_registered_under_their_names():
    assert isinstance(registry.load("nftables"), NftablesCollector)
    assert isinstance(registry.load("ipvs"), IpvsCollector)
    # one listing (issue 14: the text is parsed; `nft -j` would list the ruleset a second time)
    assert [c.evidence_id for c in NftablesCollector.commands] == ["nft-list-ruleset"]


def test_not_root_is_a_reason_not_a_crash():
    out = run_collector(NftablesCollector(), CollectContext(is_root=False))
    assert not out.status.ok and "root" in out.status.reason


def test_missing_nft_binary_says_how_to_fix(tmp_path):
    out = run_collector(NftablesCollector(), CollectContext(path=str(tmp_path), is_root=True))
    assert not out.status.ok and out.status.fix == "apt-get install nftables"


@pytest.mark.skipif(os.path.exists("/proc/net/ip_vs"), reason="this kernel has IPVS")
def test_ipvs_without_kernel_support_is_not_applicable():
    p = plan(IpvsCollector(), CollectContext(is_root=True))
    assert not p.runnable and "IPVS" in p.reason()
    out = run_collector(IpvsCollector(), CollectContext(is_root=True))
    assert out.status.not_applicable is True


def _shim(tmp_path, stdout_file, code=0, stderr_file=None):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ipvsadm"
    lines = ["#!/bin/sh"]
    if stdout_file:
        lines.append(f"cat '{stdout_file}'")
    if stderr_file:
        lines.append(f"cat '{stderr_file}' >&2")
    lines.append(f"exit {code}")
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    return str(bin_dir) + ":/usr/bin:/bin"


def test_ipvs_collect_parses_recorded_output(tmp_path):
    fixture = FIXTURES / "parsers" / "ipvsadm" / "opsnull-251-ipvsadm-Ln.txt"
    ctx = CollectContext(path=_shim(tmp_path, fixture), is_root=True)
    out = IpvsCollector().collect(ctx)
    assert out.ipvs is not None and len(out.ipvs.virtual_servers) == 7
    assert out.ipvs.evidence_id == "ipvsadm-Ln"
    assert out.evidence[0].stdout == fixture.read_text()


def test_ipvs_collect_kernel_error_is_a_failed_status(tmp_path):
    err = FIXTURES / "parsers" / "ipvsadm" / "this-machine-no-ipvs.txt"
    ctx = CollectContext(path=_shim(tmp_path, None, code=2, stderr_file=err), is_root=True)
    out = IpvsCollector().collect(ctx)
    assert out.ipvs is None and not out.status.ok
    assert "Can't initialize ipvs" in out.evidence[0].stderr


@needs_lab("nft")
def test_nftables_collector_in_a_namespace_of_its_own(tmp_path):
    ns = lab_name("lrnfc")
    rules = FIXTURES / "parsers" / "nft" / "kube-proxy-lab.rules.nft"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        code = (
            "import json,sys\n"
            "from collectors.base import CollectContext, run_collector\n"
            "from collectors.nftables import NftablesCollector\n"
            "out = run_collector(NftablesCollector(), CollectContext())\n"
            "json.dump({'ok': out.status.ok, 'partial': out.status.partial, 'reason': out.status.reason,"
            " 'tables': [t.model_dump() for t in out.nftables.tables] if out.nftables else None,"
            " 'evidence': {e.id: e.stdout for e in out.evidence}}, sys.stdout)\n"
        )
        run = lambda: json.loads(subprocess.run(  # noqa: E731
            ["ip", "netns", "exec", ns, sys.executable, "-c", code], cwd=ROOT, check=True,
            capture_output=True, text=True, timeout=120).stdout)
        empty = run()
        assert empty["ok"] and not empty["partial"] and empty["tables"] == []
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", str(rules)], check=True)
        full = run()
        assert full["ok"] and not full["partial"], full["reason"]
        assert [(t["family"], t["name"]) for t in full["tables"]] == [("ip", "kube-proxy")]
        assert full["evidence"]["nft-list-ruleset"].startswith("table ip kube-proxy {")
        assert "nft-list-ruleset-json" not in full["evidence"]  # the 4x larger JSON is parsed, not kept
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
