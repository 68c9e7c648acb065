"""A node built only with ``ip`` (a bridge and 4 pod namespaces joined by veth pairs, all
inside a node namespace of this test's own): ``labreport collect --local`` run inside the node
finds all 4 pairs, each host veth matched to its own pod's eth0 — although every pod's eth0
has the same ifindex (2), and /var/run/netns also holds other labs' namespaces."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import needs_lab
from tests.lab.cli import labreport_argv

pytestmark = [pytest.mark.lab, needs_lab("busybox")]


@pytest.fixture(scope="module")
def plain():
    from tests.lab.plain import PlainIpNode

    node = PlainIpNode(n_pods=4)
    try:
        node.build()
        node.ping_all()
        yield node
    finally:
        errors = node.close()
        assert not errors, errors


def test_plain_lab_is_real(plain):
    t = plain.truth
    assert len(t.pods) == 4
    assert {p.veth.pod_ifindex for p in t.pods} == {2}  # same index in every pod: a trap for matchers
    assert len({p.veth.host_ifindex for p in t.pods}) == 4
    links = json.loads(subprocess.run(["ip", "-n", t.node_ns, "-j", "link", "show"],
                                      capture_output=True, text=True, check=True).stdout)
    ports = {link["ifname"] for link in links if link.get("master") == t.bridge}
    assert ports == {p.veth.host_ifname for p in t.pods}


def test_collect_matches_all_four_veth_pairs(plain, tmp_path):
    t = plain.truth
    out = tmp_path / "snap"
    cp = subprocess.run(["ip", "netns", "exec", t.node_ns, *labreport_argv(), "collect", "--local",
                         "--out", str(out), "--name", t.node_ns, "--no-api", "-q"],
                        capture_output=True, text=True, timeout=240)
    assert cp.returncode == 0, f"collect failed:\n{cp.stdout}\n{cp.stderr}"
    an = subprocess.run([*labreport_argv(), "analyze", str(out), "--json"],
                        capture_output=True, text=True, timeout=240)
    assert an.returncode == 0, f"analyze failed:\n{an.stdout}\n{an.stderr}"
    (node,) = [n for n in json.loads(an.stdout)["nodes"] if n["node"] == t.node_ns]
    pairs = {p["host_ifname"]: p for p in node["veth_pairs"]}
    assert set(pairs) == {p.veth.host_ifname for p in t.pods}, node["veth_pairs"]
    for p in t.pods:
        got = pairs[p.veth.host_ifname]
        assert got["netns"] == p.netns
        assert got["host_ifindex"] == p.veth.host_ifindex
        assert got["pod_ifname"] == "eth0" and got["pod_ifindex"] == p.veth.pod_ifindex
        assert got["pod_ips"] == [f"{p.ip}/{p.prefixlen}"]
        assert got["bridge"] == t.bridge
        assert got["host_mac"] == p.veth.host_mac and got["pod_mac"] == p.veth.pod_mac
        assert got["pod"] is None  # no runtime made these: no sandbox names them
    assert sorted(node["bridges"][t.bridge]) == sorted(p.veth.host_ifname for p in t.pods)
