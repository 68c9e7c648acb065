"""labreport.analysis.services_iptables on real rules: the seeds (expectations written by
hand), rules captured on this machine (checked against the generator's ground truth),
public output of an older kube-proxy, and a live lab where curl goes through the rules."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import time

import pytest

from labreport.analysis.services_iptables import decode_iptables
from labreport.parsers import iptables_save
from tests.conftest import FIXTURES, lab_name, needs_lab

from tests.support import gen_iptables

FX = FIXTURES / "parsers" / "iptables-save"


def decode_text(text: str):
    return decode_iptables(iptables_save.parse(text).value)


def by_name(records):
    out = {}
    for r in records:
        assert r.name not in out, f"two records named {r.name}"
        out[r.name] = r
    return out


def check_against(records, expected: list[dict]) -> None:
    """Every field the expectation names must match; probabilities within tolerance."""
    got = by_name(records)
    assert sorted(got) == sorted(e["name"] for e in expected)
    for exp in expected:
        rec = got[exp["name"]]
        for key, want in exp.items():
            if key == "endpoints":
                continue
            assert getattr(rec, key) == want, (exp["name"], key, getattr(rec, key), want)
        if "endpoints" not in exp:
            continue
        if exp["endpoints"] is None:
            assert rec.endpoints is None
            continue
        assert rec.endpoints is not None, exp["name"]
        assert [e.address for e in rec.endpoints] == [e["address"] for e in exp["endpoints"]], exp["name"]
        for ep, want in zip(rec.endpoints, exp["endpoints"]):
            if "chain" in want:
                assert ep.chain == want["chain"]
            if want.get("rule_probability") is None:
                assert ep.rule_probability is None
            else:
                assert ep.rule_probability == pytest.approx(want["rule_probability"], abs=1e-12)
            assert ep.probability == pytest.approx(want["probability"], abs=1e-6)
            if "local" in want:
                assert ep.local == want["local"], (exp["name"], ep.address)


def assert_shares_sum_to_one(records) -> None:
    for r in records:
        if r.endpoints:
            assert abs(sum(e.probability for e in r.endpoints) - 1.0) < 1e-9, r.name


# --------------------------------------------------------------------------- seeds


SEED_CASES = [
    ("seed000-q8.pasted.txt", "seed000-q8"),
    ("seed000-q8.txt", "seed000-q8"),
    ("seed000-q11.pasted.txt", "seed000-q11"),
    ("seed000-q11.txt", "seed000-q11"),
    ("seed001-q10-grep.pasted.txt", "seed001-q10-grep"),
    ("seed001-q10-pieces.pasted.txt", "seed001-q10-pieces"),
    ("seed001-q10-pieces.txt", "seed001-q10-pieces"),
]


@pytest.mark.parametrize("fixture, expected", SEED_CASES)
def test_seed_rules_decode_as_read_by_hand(fixture, expected):
    exp = json.loads((FX / f"{expected}.expected.json").read_text())
    records, masq = decode_text((FX / fixture).read_text())
    check_against(records, exp["records"])
    assert masq == exp["masquerade"]
    assert_shares_sum_to_one(records)
    text = (FX / fixture).read_text()
    clean = iptables_save.parse(text).value
    lines = {f"-A {c.name} {r.spec}" for t in clean.tables.values() for c in t.chains.values() for r in c.rules}
    for r in records:
        assert r.evidence and set(r.evidence) <= lines  # evidence is the input's own rules


def test_seed001_garbled_comments_are_read_and_flagged():
    records, _ = decode_text((FX / "seed001-q10-grep.pasted.txt").read_text())
    rec = by_name(records)["default/test-service:downloader"]
    assert sum("garbled" in w for w in rec.warnings) == 3
    # the DNAT of each SEP chain agrees with the repaired comment: no mismatch warning
    assert not any("but the DNAT goes to" in w for w in rec.warnings)


def test_seed001_pieces_missing_sep_chains_use_comments():
    records, _ = decode_text((FX / "seed001-q10-pieces.pasted.txt").read_text())
    rec = by_name(records)["default/test-service:fileserver"]
    assert sum("read from the comment" in w for w in rec.warnings) == 3


def test_seed000_q8_pasted_twice_rules_are_not_counted_twice():
    records, _ = decode_text((FX / "seed000-q8.pasted.txt").read_text())
    rec = by_name(records)["default/service:port2"]
    assert len(rec.endpoints) == 1
    assert any("pasted twice" in w for w in rec.warnings)


# --------------------------------------------------------------------------- captured here


def lab_truth() -> list[dict]:
    return json.loads((FX / "lab-truth.json").read_text())


def test_generator_truth_fixture_is_current():
    """The committed truth is what the generator says for the lab's services."""
    text, truth = gen_iptables.render(gen_iptables.lab_services())
    assert truth == lab_truth()
    assert text == (FX / "lab-restore-input.txt").read_text()


@pytest.mark.parametrize("fixture", ["lab-iptables-save.txt", "lab-iptables-save-c.txt"])
def test_captured_iptables_save_matches_ground_truth(fixture):
    records, masq = decode_text((FX / fixture).read_text())
    check_against(records, lab_truth())
    assert_shares_sum_to_one(records)
    assert masq is not None
    assert masq.mark == "0x4000/0x4000"
    assert masq.mark_chain == "KUBE-MARK-MASQ" and masq.postrouting_chain == "KUBE-POSTROUTING"
    assert "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN" in masq.rules
    assert "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0" in masq.rules
    assert any(r.endswith("-j MASQUERADE --random-fully") for r in masq.rules)


def test_captured_iptables_S_nat_and_filter():
    text = ("root@node:~# iptables -t nat -S\n" + (FX / "lab-iptables-t-nat-S.txt").read_text()
            + "\nroot@node:~# iptables -S\n" + (FX / "lab-iptables-S.out").read_text())
    records, _ = decode_text(text)
    check_against(records, lab_truth())
    # nat alone: everything but the service that only the filter table knows
    records, _ = decode_text((FX / "lab-iptables-t-nat-S.txt").read_text())
    check_against(records, [t for t in lab_truth() if t["name"] != "default/empty:http"])


def test_every_rule_kind_in_the_captured_lab():
    recs = by_name(decode_text((FX / "lab-iptables-save.txt").read_text())[0])
    web = recs["default/web:http"]
    assert (web.namespace, web.service, web.port_name) == ("default", "web", "http")
    assert web.chains == {"svc": "KUBE-SVC-CDGGSHYLG3RE2FKL"}
    assert any(e.startswith("-A KUBE-SEP-") and "DNAT" in e for e in web.evidence)
    unnamed = recs["default/web-multi"]
    assert (unnamed.service, unnamed.port_name) == ("web-multi", None)
    np_ = recs["default/np:http"]
    assert np_.node_port == 30080 and np_.chains["ext"].startswith("KUBE-EXT-")
    assert np_.external_traffic_policy is None
    local = recs["default/np-local:http"]
    assert local.external_traffic_policy == "Local" and local.chains["svl"].startswith("KUBE-SVL-")
    assert [e.local for e in local.endpoints] == [True, False, False]
    assert any("health check node port" in e for e in local.evidence)
    lb = recs["default/lb:http"]
    assert lb.load_balancer_ips == ["192.168.250.10"] and lb.chains["fw"].startswith("KUBE-FW-")
    assert any("traffic not accepted by KUBE-FW-" in e for e in lb.evidence)
    ext = recs["default/ext"]
    assert ext.external_ips == ["192.168.250.20"] and ext.load_balancer_ips == []
    sticky = recs["default/sticky:http"]
    assert sticky.session_affinity and sticky.affinity_timeout_s == 10800
    assert len(sticky.endpoints) == 2  # the --rcheck rules are not endpoints
    empty = recs["default/empty:http"]
    assert empty.no_endpoints and empty.endpoints == [] and empty.node_port == 30083
    assert empty.cluster_ip == "10.96.10.60" and empty.warnings == []
    itp = recs["default/itp-local:http"]
    assert itp.internal_traffic_policy == "Local" and "svc" not in itp.chains
    assert [(e.address, e.local) for e in itp.endpoints] == [("10.244.1.2:80", True)]
    assert recs["kube-system/kube-dns:dns"].protocol == "udp"


def test_older_kube_proxy_xlb_from_public_output():
    records, _ = decode_text((FX / "public-kind-xlb.pasted.out").read_text())
    (rec,) = records
    assert rec.name == "default/test-svc" and rec.port_name is None
    assert (rec.cluster_ip, rec.port, rec.node_port) == ("10.96.115.88", 80, 32070)
    assert rec.external_traffic_policy == "Local"
    assert [(e.address, e.rule_probability, e.local) for e in rec.endpoints] == [
        ("10.244.1.3:80", 0.5, False), ("10.244.2.3:80", None, False)]
    assert any("no local endpoints" in w for w in rec.warnings)
    assert len(rec.evidence) == 13  # every line of the grep, masquerade rules included


# --------------------------------------------------------------------------- partial / odd input


def _without_chain(text: str, chain: str) -> str:
    return "\n".join(ln for ln in text.splitlines() if f"-A {chain} " not in ln and ln != f":{chain} - [0:0]")


def test_missing_svc_chain_means_endpoints_unknown():
    text = (FX / "lab-iptables-save.txt").read_text()
    recs = by_name(decode_text(_without_chain(text, "KUBE-SVC-CDGGSHYLG3RE2FKL"))[0])
    web = recs["default/web:http"]
    assert web.endpoints is None and web.cluster_ip == "10.96.10.10" and not web.no_endpoints
    assert any("KUBE-SVC-CDGGSHYLG3RE2FKL is not in the input" in w for w in web.warnings)
    assert recs["default/web-multi"].endpoints is not None  # the others are untouched


def test_grep_without_kube_services_line_still_gives_a_record():
    lines = [ln for ln in (FX / "lab-iptables-save.txt").read_text().splitlines()
             if "default/web-multi" in ln and not ln.startswith("-A KUBE-SERVICES")]
    (rec,) = decode_text("\n".join(lines))[0]
    assert rec.name == "default/web-multi" and rec.cluster_ip is None
    assert [e.address for e in rec.endpoints] == ["10.244.1.2:80", "10.244.1.2:81", "10.244.1.2:82"]
    assert any("no KUBE-SERVICES" in w for w in rec.warnings)


_COMMENT = re.compile(r' -m comment --comment (?:"(?:[^"\\]|\\.)*"|\S+)')


def test_no_comments_at_all_decodes_from_chain_structure():
    text = _COMMENT.sub("", (FX / "lab-iptables-save.txt").read_text())
    assert "--comment" not in text
    records, _ = decode_text(text)
    got = {r.chains.get("svc") or r.chains.get("svl"): r for r in records}
    for truth in lab_truth():
        if truth["no_endpoints"]:
            continue  # only the REJECT comment names such a service
        pname, proto = truth["name"], truth["protocol"]
        key = gen_iptables.chain_suffix(pname, proto)
        rec = got.get(f"KUBE-SVC-{key}") or got[f"KUBE-SVL-{key}"]
        assert rec.name.startswith(("KUBE-SVC-", "KUBE-SVL-"))  # named after its chain
        assert rec.namespace is None
        assert (rec.cluster_ip, rec.port, rec.protocol, rec.node_port) == (
            truth["cluster_ip"], truth["port"], truth["protocol"], truth["node_port"])
        assert rec.external_ips == truth["external_ips"] and rec.load_balancer_ips == truth["load_balancer_ips"]
        assert rec.session_affinity == truth["session_affinity"]
        assert [e.address for e in rec.endpoints] == [e["address"] for e in truth["endpoints"]]
        assert [e.probability for e in rec.endpoints] == pytest.approx([e["probability"] for e in truth["endpoints"]],
                                                                      abs=1e-6)


def _chain_blocks(text: str) -> tuple[list[str], dict[str, list[str]]]:
    head, blocks = [], {}
    for ln in text.splitlines():
        if ln.startswith("-A "):
            blocks.setdefault(ln.split(" ", 2)[1], []).append(ln)
        elif not blocks:
            head.append(ln)
    return head, blocks


def test_chain_order_does_not_matter_rule_order_does():
    text = (FX / "lab-iptables-save.txt").read_text()
    nat = text[text.index("*nat"):]
    head, blocks = _chain_blocks(nat)
    names = list(blocks)
    random.Random(7).shuffle(names)
    shuffled = "\n".join(head + [ln for n in names for ln in blocks[n]] + ["COMMIT"])
    base = [r.model_dump() for r in decode_text(nat)[0]]
    again = {r.name: r.model_dump() for r in decode_text(shuffled)[0]}
    for rec in base:
        other = again[rec["name"]]
        for key in ("cluster_ip", "port", "node_port", "endpoints", "session_affinity", "chains"):
            assert other[key] == rec[key], (rec["name"], key)
    # reversing the rules of one SVC chain reverses its endpoints; shares still sum to 1
    chain = "KUBE-SVC-D7QKD4B3ANPJKIRS"  # default/web-multi
    stat = [ln for ln in blocks[chain] if "KUBE-SEP-" in ln]
    swapped = nat.replace("\n".join(stat), "\n".join([stat[2].replace(" -j ", " -m statistic --mode random "
                                                                      "--probability 0.33333333349 -j "),
                                                      stat[1], stat[0].split(" -m statistic")[0] + " -j "
                                                      + stat[0].rsplit(" -j ", 1)[1]]))
    rec = by_name(decode_text(swapped)[0])["default/web-multi"]
    assert [e.address for e in rec.endpoints] == ["10.244.1.2:82", "10.244.1.2:81", "10.244.1.2:80"]
    assert rec.endpoints[-1].rule_probability is None
    assert_shares_sum_to_one([rec])


def test_last_rule_with_a_probability_is_flagged():
    text = (FX / "seed000-q11.txt").read_text()
    cut = "\n".join(ln for ln in text.splitlines() if "KUBE-SEP-WS3QRLXHGR46REP" not in ln)
    rec = by_name(decode_text(cut)[0])["default/service:port1"]
    assert len(rec.endpoints) == 2
    assert sum(e.probability for e in rec.endpoints) == pytest.approx(2 / 3, abs=1e-6)
    assert any("shares sum to" in w for w in rec.warnings)


def test_empty_and_unrelated_tables_give_nothing():
    assert decode_iptables(iptables_save.parse("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n").value) == ([], None)


def test_benchmark_shaped_rules_sum_to_one():
    text, truth = gen_iptables.render(gen_iptables.bench_services(200, 7))
    records, _ = decode_text(text)
    assert len(records) == len(truth) == 200
    assert_shares_sum_to_one(records)
    check_against(records, truth)


# --------------------------------------------------------------------------- live lab


def _run(*argv: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=30, check=check)


@pytest.fixture(scope="module")
def live_lab(tmp_path_factory):
    """A node namespace (bridge cni0 10.244.1.1/24, kube-proxy rules) and a pod namespace
    (10.244.1.2, busybox httpd on 80/81/82). All traffic stays inside them."""
    node, pod = lab_name("lrin"), lab_name("lrip")
    www = tmp_path_factory.mktemp("ipt-www")
    procs: list[subprocess.Popen] = []
    created: list[str] = []
    try:
        for ns in (node, pod):
            _run("ip", "netns", "add", ns)
            created.append(ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", node, "link", "add", "cni0", "type", "bridge")
        _run("ip", "-n", node, "addr", "add", "10.244.1.1/24", "dev", "cni0")
        _run("ip", "-n", node, "link", "set", "cni0", "up")
        _run("ip", "-n", node, "link", "add", "veth0", "type", "veth", "peer", "name", "eth0", "netns", pod)
        _run("ip", "-n", node, "link", "set", "veth0", "master", "cni0", "up")
        _run("ip", "-n", pod, "addr", "add", "10.244.1.2/24", "dev", "eth0")
        _run("ip", "-n", pod, "link", "set", "eth0", "up")
        _run("ip", "-n", pod, "route", "add", "default", "via", "10.244.1.1")
        _run("ip", "-n", node, "route", "add", "10.96.0.0/12", "dev", "cni0")
        for port in (80, 81, 82):
            d = www / str(port)
            d.mkdir()
            (d / "index.html").write_text(f"port {port}\n")
            procs.append(subprocess.Popen(["ip", "netns", "exec", pod, "/bin/busybox", "httpd", "-f", "-p", str(port),
                                           "-h", str(d)]))
        text, truth = gen_iptables.render(gen_iptables.lab_services("10.244.1.2"))
        _run("ip", "netns", "exec", node, "iptables-restore", input=text)
        for port in (80, 81, 82):  # every httpd answers (directly, not through a service)
            for _ in range(50):
                url = f"http://10.244.1.2:{port}/"
                if _run("ip", "netns", "exec", node, "curl", "-s", "-m", "2", url, check=False).returncode == 0:
                    break
                time.sleep(0.1)
        yield {"node": node, "pod": pod, "truth": truth, "text": text}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        for ns in reversed(created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        shutil.rmtree(www, ignore_errors=True)


def _curl(node: str, url: str) -> subprocess.CompletedProcess:
    return _run("ip", "netns", "exec", node, "curl", "-s", "-m", "3", url, check=False)


@needs_lab("iptables-restore", "iptables-save", "curl", "/bin/busybox")
def test_live_lab_cluster_ip_reaches_the_pod(live_lab):
    node = live_lab["node"]
    r = _curl(node, "http://10.96.10.10/")
    assert r.returncode == 0 and r.stdout == "port 80\n"  # DNAT 10.96.10.10:80 -> 10.244.1.2:80
    seen = {_curl(node, "http://10.96.10.11:8080/").stdout for _ in range(30)}
    assert len(seen) >= 2 and seen <= {"port 80\n", "port 81\n", "port 82\n"}  # random over 3 endpoints
    refused = _curl(node, "http://10.96.10.60/")
    assert refused.returncode == 7  # filter REJECT of the service without endpoints: connection refused


@needs_lab("iptables-restore", "iptables-save", "curl", "/bin/busybox")
def test_live_lab_capture_decodes_to_ground_truth(live_lab):
    node = live_lab["node"]
    _curl(node, "http://10.96.10.10/")
    saved = _run("ip", "netns", "exec", node, "iptables-save", "-c").stdout
    res = iptables_save.parse(saved, source="iptables-save -c")
    assert res.value.backend in ("nf_tables", "legacy") and res.warnings == []
    records, masq = decode_iptables(res.value)
    check_against(records, live_lab["truth"])
    assert_shares_sum_to_one(records)
    assert masq is not None and masq.mark == "0x4000/0x4000"
    web = [r for ch in res.value.tables["nat"].chains.values() for r in ch.rules if "10.244.1.2:80" in r.spec
           and "default/web:http" in r.spec and "DNAT" in r.spec]
    assert web and web[0].counters[0] >= 1  # the DNAT rule really carried the curl
    nat_s = _run("ip", "netns", "exec", node, "iptables", "-t", "nat", "-S").stdout
    records, _ = decode_text(nat_s)
    check_against(records, [t for t in live_lab["truth"] if not t["no_endpoints"]])


def test_internal_traffic_policy_local_without_a_local_endpoint():
    """kube-proxy drops cluster-IP traffic in the filter table ("has no local endpoints")."""
    spec = [{"namespace": "default", "name": "itp-none", "cluster_ip": "10.96.10.80", "itp": "Local",
             "ports": [{"name": "http", "port": 80, "protocol": "TCP", "endpoints": ["10.244.2.5:80"], "local": []}]}]
    text, truth = gen_iptables.render(spec)
    assert '"default/itp-none:http has no local endpoints"' in text and " -j DROP" in text
    (rec,) = decode_text(text)[0]
    check_against([rec], truth)
    assert rec.internal_traffic_policy == "Local" and rec.endpoints == [] and not rec.no_endpoints
    assert any("no endpoint on this node" in w for w in rec.warnings)


def _kube_proxy_write_order(line: str) -> str:
    """A captured rule rewritten the way kube-proxy writes it to iptables-restore (matches
    in another order, ``-d IP`` without ``/32``): ``-A C -m comment --comment X -m tcp -p
    tcp -d IP --dport N -j T`` (shape of proxier.go's natRules.Write calls)."""
    if not line.startswith("-A ") or " --dport " not in line or " -d " not in line:
        return line.replace("/32 ", " ")
    m = re.match(r'-A (\S+) (.*?)-d (\S+) -p (\S+) (-m comment --comment "[^"]*" )?-m \S+ --dport (\d+) (-j .*)$', line)
    if not m:
        return line.replace("/32 ", " ")
    chain, pre, dst, proto, comment, dport, target = m.groups()
    return (f"-A {chain} {comment or ''}-m {proto} -p {proto} {pre}-d {dst.removesuffix('/32')} "
            f"--dport {dport} {target}")


def test_match_order_and_missing_prefix_length_do_not_matter():
    text = (FX / "lab-iptables-save.txt").read_text()
    rewritten = "\n".join(_kube_proxy_write_order(ln) for ln in text.splitlines())
    assert rewritten != text and "-m tcp -p tcp -d 10.96.10.10 --dport 80 -j KUBE-SVC-" in rewritten
    records, _ = decode_text(rewritten)
    check_against(records, lab_truth())


def test_newer_kube_proxy_load_balancer_from_public_output():
    """AKS node, `iptables-save | grep nginx` (github.com/VijayRod/demo); read by hand:
    cluster IP 10.0.11.45:80, LB 20.91.172.24, NodePort 32643, one pod 10.244.2.5:80."""
    res = iptables_save.parse((FX / "public-aks-lb.pasted.txt").read_text())
    assert [w.message for w in res.warnings if "inferred" not in w.message] == []  # the command line is skipped
    (rec,), masq = decode_iptables(res.value)
    assert (rec.name, rec.namespace, rec.service, rec.port_name) == ("default/nginx", "default", "nginx", None)
    assert (rec.cluster_ip, rec.port, rec.protocol, rec.node_port) == ("10.0.11.45", 80, "tcp", 32643)
    assert rec.load_balancer_ips == ["20.91.172.24"] and rec.external_ips == []
    assert rec.external_traffic_policy is None
    assert rec.chains == {"svc": "KUBE-SVC-2CMXP7HKUVJN7L6M", "ext": "KUBE-EXT-2CMXP7HKUVJN7L6M"}
    assert [(e.address, e.probability, e.rule_probability) for e in rec.endpoints] == [("10.244.2.5:80", 1.0, None)]
    assert len(rec.evidence) == 8 and masq is None


@pytest.mark.parametrize("port_name, proto, endpoint, svc_hash, sep", [
    ("default/nginx", "tcp", "10.244.2.5:80", "2CMXP7HKUVJN7L6M", "KUBE-SEP-XW6I7J74P22Q2AZM"),  # public AKS
    ("default/test-svc", "tcp", "10.244.1.3:80", "QKNQQNIN727HO3XU", "KUBE-SEP-SQEBHSRBMT4ZUBXZ"),  # public kind
    ("default/test-service:downloader", "tcp", "10.244.1.3:3000", "5DBF63XQ64WV75V6",
     "KUBE-SEP-2H3DDHW6CONVHAPW"),  # seed 001 (its grep paste has the OCR typo ...HMGCON...)
    ("default/service:port1", "tcp", None, "N4AQN24LQINGUND7", None),  # seed 000
])
def test_generator_names_chains_like_kube_proxy(port_name, proto, endpoint, svc_hash, sep):
    """The generator's chain names equal those real kube-proxies wrote (seeds, public output)."""
    assert gen_iptables.chain_suffix(port_name, proto) == svc_hash
    if endpoint:
        assert gen_iptables.sep_chain(port_name, proto, endpoint) == sep
