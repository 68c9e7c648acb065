"""kube-proxy's nftables mode, for real: the rules kube-proxy v1.33 writes are loaded with
``nft -f`` into a node namespace of this test's own, traffic to a ClusterIP and a NodePort
reaches a busybox httpd pod through the ``dnat to``, and what nft then lists (text and
JSON) decodes to exactly the services that were written (tests/support/gen_nft.py's truth).

Everything lives in two namespaces this module creates (NODE with a bridge, POD behind a
veth); nothing is added to the root namespace and all traffic is sent from inside NODE/POD.

The listings captured here are written to tests/artifacts/nft/; with
LABREPORT_UPDATE_FIXTURES=1 they also replace tests/fixtures/parsers/nft/kube-proxy-lab.* (the
committed fixtures the parser tests read).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, FIXTURES, lab_name, needs_lab

from tests.support import gen_nft

from labreport.analysis.services import decode_services  # noqa: E402
from labreport.analysis.services_nft import decode_nft  # noqa: E402
from labreport.parsers import nft as nft_parser  # noqa: E402
from labreport.snapshot import NodeSnapshot  # noqa: E402

pytestmark = [needs_lab("nft", "/bin/busybox", "curl"), pytest.mark.lab]

POD_IP = "10.244.1.5"
GW_IP = "10.244.1.1"
POD_IP6 = "fd00:10:244:1::5"
GW_IP6 = "fd00:10:244:1::1"


def sh(*argv: str, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess:
    cp = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and cp.returncode != 0:
        raise AssertionError(f"exit {cp.returncode}: {' '.join(argv)}\n{cp.stdout}\n{cp.stderr}")
    return cp


class NftLab:
    def __init__(self, tmp: Path):
        self.node = lab_name("lrnfn")
        self.pod = lab_name("lrnfp")
        self.tmp = tmp
        self.token = f"hello-from-{self.pod}"
        self.services = gen_nft.lab_services([POD_IP])
        self.services6 = gen_nft.lab_services_v6([POD_IP6])
        # a dual-stack node: kube-proxy's ip and ip6 proxiers each keep a table
        self.truth = [gen_nft.truth_of(s) for s in self.services + self.services6]
        self.rules = tmp / "rules.nft"
        self.rules6 = tmp / "rules6.nft"
        self.httpd: subprocess.Popen | None = None

    def ex(self, ns: str, *argv: str, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", ns, *argv, check=check, timeout=timeout)

    def build(self) -> None:
        sh("ip", "netns", "add", self.node)
        sh("ip", "netns", "add", self.pod)
        for ns in (self.node, self.pod):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        n = self.node
        sh("ip", "-n", n, "link", "add", "cni0", "type", "bridge")
        sh("ip", "-n", n, "addr", "add", f"{GW_IP}/24", "dev", "cni0")
        sh("ip", "-n", n, "link", "set", "cni0", "up")
        sh("ip", "-n", n, "link", "add", "vethnft0", "type", "veth", "peer", "name", "eth0", "netns", self.pod)
        sh("ip", "-n", n, "link", "set", "vethnft0", "master", "cni0", "up")
        # hairpin, as the CNI bridge plugin's hairpinMode sets it: with br_netfilter a pod's
        # packet DNATed back to itself leaves through the port it came in on
        sh("ip", "-n", n, "link", "set", "vethnft0", "type", "bridge_slave", "hairpin", "on")
        sh("ip", "-n", self.pod, "addr", "add", f"{POD_IP}/24", "dev", "eth0")
        sh("ip", "-n", self.pod, "link", "set", "eth0", "up")
        sh("ip", "-n", self.pod, "route", "add", "default", "via", GW_IP)
        sh("ip", "-n", n, "addr", "add", f"{GW_IP6}/64", "dev", "cni0", "nodad")
        sh("ip", "-n", self.pod, "addr", "add", f"{POD_IP6}/64", "dev", "eth0", "nodad")
        sh("ip", "-n", self.pod, "-6", "route", "add", "default", "via", GW_IP6)
        # the node's routes for the service ranges (on a real node: its default routes)
        sh("ip", "-n", n, "route", "add", "10.96.0.0/12", "dev", "cni0")
        sh("ip", "-n", n, "-6", "route", "add", "fd00:10:96::/112", "dev", "cni0")
        self.ex(n, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        www = self.tmp / "www"
        www.mkdir()
        (www / "index.html").write_text(self.token + "\n")
        self.httpd = subprocess.Popen(
            ["ip", "netns", "exec", self.pod, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", str(www)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        self.rules.write_text(gen_nft.transaction(self.services))
        self.ex(n, "nft", "-f", str(self.rules))
        self.rules6.write_text(gen_nft.transaction(self.services6, family="ip6"))
        self.ex(n, "nft", "-f", str(self.rules6))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.ex(self.node, "curl", "-s", "--max-time", "1", f"http://{POD_IP}/", check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("busybox httpd in the pod namespace did not answer")

    def teardown(self) -> None:
        if self.httpd is not None and self.httpd.poll() is None:
            try:
                os.killpg(self.httpd.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.httpd.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.httpd.pid, signal.SIGKILL)
        for ns in (self.pod, self.node):
            if Path("/var/run/netns", ns).exists():
                sh("ip", "netns", "delete", ns, check=False)

    def curl(self, ns: str, url: str) -> subprocess.CompletedProcess:
        return self.ex(ns, "curl", "-s", "--max-time", "3", url, check=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = NftLab(tmp_path_factory.mktemp("nftlab"))
    try:
        lab.build()
        yield lab
    finally:
        lab.teardown()


@pytest.fixture(scope="module")
def listings(lab):
    """Traffic first (so the affinity sets hold live elements), then both listings."""
    assert lab.curl(lab.node, "http://10.96.0.10/").returncode == 0
    # one connection attempt to the sticky service pins this client in an affinity set,
    # whichever endpoint numgen picks (10.244.2.7 does not exist: that attempt times out)
    lab.ex(lab.node, "curl", "-s", "--max-time", "1", "http://10.96.0.12/", check=False)
    text = lab.ex(lab.node, "nft", "list", "ruleset").stdout
    js = lab.ex(lab.node, "nft", "-j", "list", "ruleset").stdout
    out = ARTIFACTS / "nft"
    out.mkdir(parents=True, exist_ok=True)
    (out / "kube-proxy-lab.nft").write_text(text)
    (out / "kube-proxy-lab.json").write_text(js)
    (out / "kube-proxy-lab.truth.json").write_text(json.dumps(lab.truth, indent=1) + "\n")
    if os.environ.get("LABREPORT_UPDATE_FIXTURES"):
        dest = FIXTURES / "parsers" / "nft"
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("kube-proxy-lab.nft", "kube-proxy-lab.json", "kube-proxy-lab.truth.json"):
            shutil.copyfile(out / name, dest / name)
        shutil.copyfile(lab.rules, dest / "kube-proxy-lab.rules.nft")
        shutil.copyfile(lab.rules6, dest / "kube-proxy-lab.rules6.nft")
    return {"text": text, "json": js}


# --------------------------------------------------------------------------- traffic


def test_cluster_ip_reaches_the_pod_through_dnat(lab):
    cp = lab.curl(lab.node, "http://10.96.0.10/")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == lab.token


def test_node_port_reaches_the_pod(lab):
    cp = lab.curl(lab.node, f"http://{GW_IP}:30080/")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == lab.token


def test_ipv6_cluster_ip_reaches_the_pod_through_the_ip6_table(lab):
    cp = lab.ex(lab.node, "curl", "-s", "-g", "--max-time", "3", "http://[fd00:10:96::10]/", check=False)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == lab.token


def test_pod_reaches_itself_through_its_cluster_ip_hairpin_masqueraded(lab):
    # prerouting path: POD → NODE (dnat back to the pod) → masquerading (saddr = endpoint)
    cp = lab.curl(lab.pod, "http://10.96.0.22:8081/")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == lab.token


def test_service_without_endpoints_is_rejected(lab):
    cp = lab.curl(lab.node, "http://10.96.0.20/")
    assert cp.returncode == 7  # curl: connection refused (the reject-chain), not a timeout (28)


def test_rules_without_the_dnat_do_not_reach_the_pod(lab, tmp_path):
    # the same port on an unknown ClusterIP: dropped by cluster-ips-check, no answer
    cp = lab.ex(lab.node, "curl", "-s", "--max-time", "1", "http://10.96.0.99/", check=False)
    assert cp.returncode != 0


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("form", ["text", "json"])
def test_captured_listing_decodes_every_service_exactly(listings, lab, form):
    res = nft_parser.parse(listings[form], source=f"live-{form}")
    assert res.warnings == []
    records, masq = decode_nft(res.value)
    assert gen_nft.compare(records, lab.truth) == []
    assert masq is not None and masq.mark == "0x4000/0x4000"
    web = next(r for r in records if r.name == "default/web")
    assert web.chains["map"] == "service-ips"
    assert web.chains["svc"].startswith("service-") and web.chains["svc"].endswith("default/web/tcp/")
    assert web.chains["numgen"] == "numgen random mod 1"
    assert web.mode == "nftables"
    assert any("dnat to 10.244.1.5:80" in ev for ev in web.evidence)


def test_live_affinity_element_has_expires(listings):
    res = nft_parser.parse(listings["text"], source="live")
    table = next(t for t in nft_parser.tables_of(res.value) if t.family == "ip")
    live = [e for s in table.sets if s.name.startswith("affinity-") for e in s.elements]
    assert live, "the sticky connection attempt left no affinity element"
    assert all(e.expires is not None and 0 < e.expires <= 10800 for e in live)
    assert all(e.key == ["10.244.1.1"] for e in live)  # the node's source address, pinned


def test_decode_services_detects_nftables_mode_from_the_rules(listings, lab):
    node = NodeSnapshot(name="n1", nftables=nft_parser.parse(listings["json"]).value)
    info, records, masq = decode_services(node, None)
    assert info.mode == "nftables"
    assert info.rule_sets_present == ["nftables"]
    assert "kube-proxy" in info.detected_from
    assert gen_nft.compare(records, lab.truth) == []


def test_collector_inside_the_node_namespace(lab, listings, tmp_path):
    code = (
        "import json,sys\n"
        "from collectors.base import CollectContext, run_collector\n"
        "from collectors.nftables import NftablesCollector\n"
        "out = run_collector(NftablesCollector(), CollectContext())\n"
        "json.dump({'status': out.status.model_dump(), 'nft': out.nftables.model_dump() if out.nftables else None,"
        " 'evidence': [e.model_dump() for e in out.evidence]}, sys.stdout)\n"
    )
    cp = lab.ex(lab.node, sys.executable, "-c", code, timeout=120)
    data = json.loads(cp.stdout)
    assert data["status"]["ok"] and not data["status"]["partial"], data["status"]
    ev = {e["id"]: e for e in data["evidence"]}
    assert "table ip kube-proxy {" in ev["nft-list-ruleset"]["stdout"]
    from labreport.snapshot import NftRuleset

    records, _ = decode_nft(NftRuleset.model_validate(data["nft"]))
    assert gen_nft.compare(records, lab.truth) == []


@pytest.mark.parametrize("form", ["text", "json"])
def test_labreport_import_nft_decodes_exactly(listings, lab, tmp_path, form, cli):
    src = tmp_path / ("ruleset.nft" if form == "text" else "ruleset.json")
    src.write_text(listings[form])
    out = tmp_path / "snap"
    code, stdout, stderr = cli("import", "--nft", str(src), "--out", str(out))
    assert code == 0, stderr
    from labreport import snapshot

    snap = snapshot.load(out)
    node = snap.nodes[0]
    info, records, _ = decode_services(node, snap.cluster)
    assert info.mode == "nftables"
    assert gen_nft.compare(records, lab.truth) == []


def test_collect_local_inside_the_node_namespace(lab, listings, tmp_path):
    out = tmp_path / "snap"
    cp = lab.ex(lab.node, sys.executable, "-c", "import sys; from labreport.cli import main; sys.exit(main())",
                "collect", "--local", "--out", str(out), check=False, timeout=300)
    assert (out / "snapshot.json").exists(), cp.stderr[-2000:]
    from labreport import snapshot

    snap = snapshot.load(out)
    node = snap.nodes[0]
    assert node.nftables is not None
    info, records, _ = decode_services(node, None)
    assert info.mode == "nftables"
    assert gen_nft.compare(records, lab.truth) == []


@needs_lab("nft", "iptables-restore")
def test_mode_switch_leftovers_collected_live_are_reported_not_mixed(tmp_path):
    """A node switched from iptables to nftables mode with the old rules left behind: both
    rule sets are really in the namespace; collect --local sees both, the analysis decodes
    one (the configured one when the ConfigMap says) and says so."""
    from labreport import snapshot
    from labreport.snapshot import ClusterObjects

    ns = lab_name("lrnfsw")
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "netns", "exec", ns, "nft", "-f", str(FIXTURES / "parsers" / "nft" / "kube-proxy-lab.rules.nft"))
        save = (FIXTURES / "parsers" / "nft" / "iptables-nft-kube-services.iptables-save").read_text()
        subprocess.run(["ip", "netns", "exec", ns, "iptables-restore"], input=save, text=True, check=True)
        out = tmp_path / "snap"
        cp = sh("ip", "netns", "exec", ns, sys.executable, "-c",
                "import sys; from labreport.cli import main; sys.exit(main())",
                "collect", "--local", "--out", str(out), check=False, timeout=300)
        assert (out / "snapshot.json").exists(), cp.stderr[-2000:]
        node = snapshot.load(out).nodes[0]
    finally:
        sh("ip", "netns", "delete", ns, check=False)
    info, records, _ = decode_services(node, None)
    assert info.rule_sets_present == ["iptables", "nftables"]
    assert info.mode == "nftables" and "not mixed" in info.note
    assert {r.mode for r in records} == {"nftables"} and "10.96.1.1" not in {r.cluster_ip for r in records}
    cm = ClusterObjects(configmaps=[{"kind": "ConfigMap", "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
                                     "data": {"config.conf": "kind: KubeProxyConfiguration\nmode: iptables\n"}}])
    info, records, _ = decode_services(node, cm)
    assert info.mode == "iptables" and "leftovers" in info.note
    assert [(r.cluster_ip, r.port) for r in records] == [("10.96.1.1", 8888)]
