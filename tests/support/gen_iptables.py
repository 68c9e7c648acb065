"""Generate kube-proxy-style iptables rules (iptables-restore input) and their ground truth.

``render(services) -> (restore_text, truth)`` is pure: a list of service specs in, the
text kube-proxy (v1.28+, iptables mode) would program and the ServiceRecord-shaped facts
the decoder must find out. The same function feeds the live lab test (the text is loaded
with ``iptables-restore`` in a network namespace and read back with ``iptables-save``) and
the benchmark (10,000 services × 3 endpoints ≈ 110,000 lines).

The rule shapes follow kube-proxy's pkg/proxy/iptables/proxier.go (v1.28): chain names
``KUBE-SVC-``/``KUBE-SVL-``/``KUBE-EXT-``/``KUBE-FW-`` + base32(sha256(port name +
protocol))[:16] and ``KUBE-SEP-`` + base32(sha256(port name + protocol + endpoint))[:16],
the comments (``"ns/svc:port cluster IP"``, ``"ns/svc:port -> ip:port"``, …), probabilities
1/(n−i) printed with 10 decimals, the filter table's REJECT rules for services without
endpoints. Options are written in the order ``iptables-save`` prints them, and the text is
exactly what ``iptables-save`` (1.8.9, nf_tables) prints back after ``iptables-restore``
(tests/fixtures/parsers/iptables-save/lab-*); the chain names equal those real kube-proxies wrote in the
seeds and public outputs (tests/test_iptables_services.py checks both).

A service spec::

    {"namespace": "default", "name": "web", "cluster_ip": "10.96.10.10",
     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "node_port": 30080,
                "endpoints": ["10.244.1.2:80", …], "local": ["10.244.1.2:80"]}],
     "external_ips": [], "lb_ips": [], "lb_source_ranges": [],
     "etp": "Cluster"|"Local", "itp": "Cluster"|"Local", "affinity_timeout": None|int,
     "health_check_node_port": None|int}

Run ``python3 -m tests.support.gen_iptables --services 10000 --endpoints 3 --out DIR`` to
write ``DIR/iptables-save.txt`` and ``DIR/truth.json``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
from typing import Any, Optional

CLUSTER_CIDR = "10.244.0.0/16"
MASQ_MARK = "0x4000"


def _hash16(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def port_name(svc: dict[str, Any], port: dict[str, Any]) -> str:
    base = f"{svc['namespace']}/{svc['name']}"
    return f"{base}:{port['name']}" if port.get("name") else base


def chain_suffix(pname: str, protocol: str) -> str:
    return _hash16(pname + protocol.lower())


def sep_chain(pname: str, protocol: str, endpoint: str) -> str:
    return "KUBE-SEP-" + _hash16(pname + protocol.lower() + endpoint)


def probability(n: int) -> str:
    """The ``--probability`` of 1/n as ``iptables-save`` prints it back.

    kube-proxy writes 1/n with 10 decimals (computeProbability); the statistic match keeps
    it as a 31-bit fraction (rounded) and iptables 1.8.9 prints that with 11 decimals:
    1/3 → 0.3333333333 → 0.33333333349 (seen on this machine, and in seed 000)."""
    written = float("%0.10f" % (1.0 / n))
    return "%.11f" % (round(written * 2**31) / 2**31)


def _q(comment: str) -> str:
    return '"' + comment.replace('"', '\\"') + '"'


def _lb(endpoints: list[str], pname: str, proto: str, chain: str, affinity: Optional[int], rules: list[str]) -> None:
    """The load-balancing rules of a KUBE-SVC/KUBE-SVL chain."""
    n = len(endpoints)
    if affinity is not None:
        for ep in endpoints:
            sep = sep_chain(pname, proto, ep)
            rules.append(
                f"-A {chain} -m comment --comment {_q(pname + ' -> ' + ep)} -m recent --rcheck --seconds {affinity} "
                f"--reap --name {sep} --mask 255.255.255.255 --rsource -j {sep}"
            )
    for i, ep in enumerate(endpoints):
        sep = sep_chain(pname, proto, ep)
        stat = f" -m statistic --mode random --probability {probability(n - i)}" if i < n - 1 else ""
        rules.append(f"-A {chain} -m comment --comment {_q(pname + ' -> ' + ep)}{stat} -j {sep}")


def render(services: list[dict[str, Any]], *, cluster_cidr: str = CLUSTER_CIDR,
           header: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """(iptables-restore text for the nat and filter tables, ground truth records)."""
    nat_chains: list[str] = ["KUBE-MARK-MASQ", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-PROXY-CANARY", "KUBE-SERVICES"]
    filter_chains: list[str] = ["KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-PROXY-CANARY",
                                "KUBE-PROXY-FIREWALL", "KUBE-SERVICES"]
    services_rules: list[str] = []
    nodeport_rules: list[str] = []
    svc_rules: list[str] = []
    sep_rules: list[str] = []
    filter_services: list[str] = []
    filter_external: list[str] = []
    filter_nodeports: list[str] = []
    filter_firewall: list[str] = []
    truth: list[dict[str, Any]] = []

    for svc in services:
        etp_local = svc.get("etp") == "Local"
        itp_local = svc.get("itp") == "Local"
        affinity = svc.get("affinity_timeout")
        for port in svc["ports"]:
            pname = port_name(svc, port)
            proto = port.get("protocol", "TCP").lower()
            h = chain_suffix(pname, proto)
            svc_chain, svl_chain, ext_chain, fw_chain = (f"KUBE-{k}-{h}" for k in ("SVC", "SVL", "EXT", "FW"))
            eps: list[str] = list(port.get("endpoints", []))
            local = [e for e in eps if e in set(port.get("local", []))]
            cip = svc["cluster_ip"]
            dport = port["port"]
            np_ = port.get("node_port")
            ext_ips = list(svc.get("external_ips", []))
            lb_ips = list(svc.get("lb_ips", []))
            ranges = list(svc.get("lb_source_ranges", []))
            has_external = bool(np_ or ext_ips or lb_ips)
            rec: dict[str, Any] = {
                "name": pname, "cluster_ip": cip, "port": dport, "protocol": proto, "node_port": np_,
                "external_ips": ext_ips, "load_balancer_ips": lb_ips,
                "session_affinity": affinity is not None and bool(eps),
                "affinity_timeout_s": affinity if eps else None,
                "external_traffic_policy": "Local" if etp_local and has_external else None,
                "internal_traffic_policy": "Local" if itp_local else None,
                "no_endpoints": not eps,
                "endpoints": [],
            }
            truth.append(rec)
            m = f"-m {proto} --dport"
            if not eps:
                filter_services.append(
                    f"-A KUBE-SERVICES -d {cip}/32 -p {proto} -m comment --comment {_q(pname + ' has no endpoints')} "
                    f"{m} {dport} -j REJECT --reject-with icmp-port-unreachable")
                for ip in ext_ips + lb_ips:
                    filter_external.append(
                        f"-A KUBE-EXTERNAL-SERVICES -d {ip}/32 -p {proto} -m comment --comment "
                        f"{_q(pname + ' has no endpoints')} {m} {dport} -j REJECT --reject-with icmp-port-unreachable")
                if np_:
                    filter_external.append(
                        f"-A KUBE-EXTERNAL-SERVICES -p {proto} -m comment --comment {_q(pname + ' has no endpoints')} "
                        f"-m addrtype --dst-type LOCAL {m} {np_} -j REJECT --reject-with icmp-port-unreachable")
                continue
            uses_svc = not itp_local or (has_external and not etp_local)
            uses_svc = uses_svc or (etp_local and has_external)  # pod/LOCAL traffic in KUBE-EXT goes to KUBE-SVC
            uses_svl = bool(local) and (itp_local or (etp_local and has_external))  # no chain without local endpoints
            cluster_target = svl_chain if itp_local else svc_chain
            if itp_local and not local:
                filter_services.append(
                    f"-A KUBE-SERVICES -d {cip}/32 -p {proto} -m comment --comment "
                    f"{_q(pname + ' has no local endpoints')} {m} {dport} -j DROP")
            else:
                services_rules.append(
                    f"-A KUBE-SERVICES -d {cip}/32 -p {proto} -m comment --comment {_q(pname + ' cluster IP')} "
                    f"{m} {dport} -j {cluster_target}")
            ext_target = fw_chain if ranges else ext_chain
            for ip in ext_ips:
                services_rules.append(
                    f"-A KUBE-SERVICES -d {ip}/32 -p {proto} -m comment --comment {_q(pname + ' external IP')} "
                    f"{m} {dport} -j {ext_chain}")
            for ip in lb_ips:
                services_rules.append(
                    f"-A KUBE-SERVICES -d {ip}/32 -p {proto} -m comment --comment {_q(pname + ' loadbalancer IP')} "
                    f"{m} {dport} -j {ext_target}")
            if np_:
                nodeport_rules.append(f"-A KUBE-NODEPORTS -p {proto} -m comment --comment {_q(pname)} {m} {np_} -j {ext_chain}")
            if has_external:
                nat_chains.append(ext_chain)
                if etp_local:
                    svc_rules.append(f"-A {ext_chain} -s {cluster_cidr} -m comment --comment "
                                     f"{_q('pod traffic for ' + pname + ' external destinations')} -j {svc_chain}")
                    svc_rules.append(f"-A {ext_chain} -m comment --comment "
                                     f"{_q('masquerade LOCAL traffic for ' + pname + ' external destinations')} "
                                     f"-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ")
                    svc_rules.append(f"-A {ext_chain} -m comment --comment "
                                     f"{_q('route LOCAL traffic for ' + pname + ' external destinations')} "
                                     f"-m addrtype --src-type LOCAL -j {svc_chain}")
                    svc_rules.append(f"-A {ext_chain} -j {svl_chain}")
                    if svc.get("health_check_node_port"):
                        filter_nodeports.append(
                            f"-A KUBE-NODEPORTS -p tcp -m comment --comment {_q(pname + ' health check node port')} "
                            f"-m tcp --dport {svc['health_check_node_port']} -j ACCEPT")
                else:
                    svc_rules.append(f"-A {ext_chain} -m comment --comment "
                                     f"{_q('masquerade traffic for ' + pname + ' external destinations')} -j KUBE-MARK-MASQ")
                    svc_rules.append(f"-A {ext_chain} -j {svc_chain}")
            if ranges and lb_ips:
                nat_chains.append(fw_chain)
                for src in ranges:
                    svc_rules.append(f"-A {fw_chain} -s {src} -m comment --comment {_q(pname + ' loadbalancer IP')} -j {ext_chain}")
                svc_rules.append(f"-A {fw_chain} -m comment --comment "
                                 f"{_q('other traffic to ' + pname + ' will be dropped by KUBE-PROXY-FIREWALL')}")
                for ip in lb_ips:
                    filter_firewall.append(
                        f"-A KUBE-PROXY-FIREWALL -d {ip}/32 -p {proto} -m comment --comment "
                        f"{_q(pname + ' traffic not accepted by ' + fw_chain)} {m} {dport} -j DROP")
            masq = (f"! -s {cluster_cidr} -d {cip}/32 -p {proto} -m comment --comment "
                    f"{_q(pname + ' cluster IP')} {m} {dport} -j KUBE-MARK-MASQ")
            if uses_svc:
                nat_chains.append(svc_chain)
                if cluster_target == svc_chain:
                    svc_rules.append(f"-A {svc_chain} {masq}")
                _lb(eps, pname, proto, svc_chain, affinity, svc_rules)
            if uses_svl:
                nat_chains.append(svl_chain)
                if cluster_target == svl_chain and local:
                    svc_rules.append(f"-A {svl_chain} {masq}")
                _lb(local, pname, proto, svl_chain, affinity, svc_rules)
            shown = eps if uses_svc else local
            n = len(shown)
            for i, ep in enumerate(shown):
                rec["endpoints"].append({
                    "address": ep,
                    "chain": sep_chain(pname, proto, ep),
                    "rule_probability": float(probability(n - i)) if i < n - 1 else None,
                    "probability": 1.0 / n,
                    "local": (ep in local) if uses_svl else None,
                })
            for ep in eps if uses_svc else local:
                sep = sep_chain(pname, proto, ep)
                nat_chains.append(sep)
                ip = ep.rsplit(":", 1)[0]
                sep_rules.append(f"-A {sep} -s {ip}/32 -m comment --comment {_q(pname)} -j KUBE-MARK-MASQ")
                recent = f" -m recent --set --name {sep} --mask 255.255.255.255 --rsource" if affinity is not None else ""
                sep_rules.append(f"-A {sep} -p {proto} -m comment --comment {_q(pname)}{recent} -m {proto} "
                                 f"-j DNAT --to-destination {ep}")

    out: list[str] = []
    nat_chains = _unique_sorted(nat_chains)
    filter_chains = _unique_sorted(filter_chains)
    if header:
        # the header keeps the generator's first path: lab-restore-input.txt was written with it
        out.append("# Generated by benchmarks/gen_iptables.py (kube-proxy v1.28 iptables-mode shapes)")
    out.append("*filter")
    out += [":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    out += [f":{c} - [0:0]" for c in filter_chains]
    filter_start = len(out)
    out += [
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    ]
    out += filter_external
    out += [
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT',
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    ]
    out += filter_nodeports
    out += filter_firewall
    out += filter_services
    _order_by_chain(out, filter_start, ["INPUT", "FORWARD", "OUTPUT"] + filter_chains)
    out.append("COMMIT")
    out.append("*nat")
    out += [":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]"]
    out += [f":{c} - [0:0]" for c in nat_chains]
    nat_start = len(out)
    out += [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        f"-A KUBE-MARK-MASQ -j MARK --set-xmark {MASQ_MARK}/{MASQ_MARK}",  # kube-proxy writes --or-mark
    ]
    out += nodeport_rules
    out += [
        f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
        f"-A KUBE-POSTROUTING -j MARK --set-xmark {MASQ_MARK}/0x0",  # kube-proxy writes --xor-mark
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    ]
    out += services_rules
    out.append('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule '
               'in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')
    out += svc_rules
    out += sep_rules
    _order_by_chain(out, nat_start, ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"] + nat_chains)
    out.append("COMMIT")
    return "\n".join(out) + "\n", truth


def _unique_sorted(chains: list[str]) -> list[str]:
    return sorted(set(chains))


def _order_by_chain(lines: list[str], start: int, chain_order: list[str]) -> None:
    """Group the rules from ``start`` on by chain, in declaration order (what iptables-save
    prints); rules of one chain keep their order."""
    rank = {c: i for i, c in enumerate(chain_order)}
    tail = lines[start:]
    tail.sort(key=lambda ln: rank.get(ln.split(" ", 2)[1], len(rank)))
    lines[start:] = tail


# --------------------------------------------------------------------------- specs


def lab_services(pod_ip: str = "10.244.1.2") -> list[dict[str, Any]]:
    """Every rule kind kube-proxy writes, around one real pod (busybox httpd on 80/81/82)."""
    other = ["10.244.2.5", "10.244.2.6"]
    return [
        {"namespace": "default", "name": "web", "cluster_ip": "10.96.10.10",
         "ports": [{"name": "http", "port": 80, "protocol": "TCP", "endpoints": [f"{pod_ip}:80"]}]},
        {"namespace": "default", "name": "web-multi", "cluster_ip": "10.96.10.11",
         "ports": [{"name": None, "port": 8080, "protocol": "TCP",
                    "endpoints": [f"{pod_ip}:80", f"{pod_ip}:81", f"{pod_ip}:82"]}]},
        {"namespace": "default", "name": "test-service", "cluster_ip": "10.96.10.12",
         "ports": [{"name": "fileserver", "port": 8080, "protocol": "TCP",
                    "endpoints": [f"{pod_ip}:8080", f"{other[0]}:8080", f"{other[1]}:8080"]},
                   {"name": "downloader", "port": 3000, "protocol": "TCP",
                    "endpoints": [f"{pod_ip}:3000", f"{other[0]}:3000", f"{other[1]}:3000"]}]},
        {"namespace": "default", "name": "np", "cluster_ip": "10.96.10.20",
         "ports": [{"name": "http", "port": 80, "protocol": "TCP", "node_port": 30080,
                    "endpoints": [f"{pod_ip}:80", f"{other[0]}:80"]}]},
        {"namespace": "default", "name": "np-local", "cluster_ip": "10.96.10.21", "etp": "Local",
         "health_check_node_port": 32000,
         "ports": [{"name": "http", "port": 80, "protocol": "TCP", "node_port": 30081,
                    "endpoints": [f"{pod_ip}:80", f"{other[0]}:80", f"{other[1]}:80"], "local": [f"{pod_ip}:80"]}]},
        {"namespace": "default", "name": "lb", "cluster_ip": "10.96.10.30", "lb_ips": ["192.168.250.10"],
         "lb_source_ranges": ["203.0.113.0/24"],
         "ports": [{"name": "http", "port": 80, "protocol": "TCP", "node_port": 30082,
                    "endpoints": [f"{pod_ip}:80", f"{other[1]}:80"]}]},
        {"namespace": "default", "name": "ext", "cluster_ip": "10.96.10.40", "external_ips": ["192.168.250.20"],
         "ports": [{"name": None, "port": 80, "protocol": "TCP", "endpoints": [f"{pod_ip}:80"]}]},
        {"namespace": "default", "name": "sticky", "cluster_ip": "10.96.10.50", "affinity_timeout": 10800,
         "ports": [{"name": "http", "port": 80, "protocol": "TCP", "endpoints": [f"{pod_ip}:80", f"{other[0]}:80"]}]},
        {"namespace": "default", "name": "empty", "cluster_ip": "10.96.10.60",
         "ports": [{"name": "http", "port": 80, "protocol": "TCP", "node_port": 30083, "endpoints": []}]},
        {"namespace": "default", "name": "itp-local", "cluster_ip": "10.96.10.70", "itp": "Local",
         "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                    "endpoints": [f"{pod_ip}:80", f"{other[0]}:80"], "local": [f"{pod_ip}:80"]}]},
        {"namespace": "kube-system", "name": "kube-dns", "cluster_ip": "10.96.0.10",
         "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "endpoints": [f"{other[0]}:53", f"{other[1]}:53"]},
                   {"name": "dns-tcp", "port": 53, "protocol": "TCP", "endpoints": [f"{other[0]}:53", f"{other[1]}:53"]}]},
    ]


def bench_services(n_services: int = 10000, n_endpoints: int = 3) -> list[dict[str, Any]]:
    """n ClusterIP services (every 10th also a NodePort), n_endpoints pods each."""
    out = []
    for i in range(n_services):
        cip = f"10.{96 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"
        eps = []
        for j in range(n_endpoints):
            k = i * n_endpoints + j
            eps.append(f"10.{244 + (k >> 16)}.{(k >> 8) & 255}.{k & 255}:8080")
        port = {"name": "http", "port": 80, "protocol": "TCP", "endpoints": eps}
        if i % 10 == 0:
            port["node_port"] = 30000 + (i // 10) % 2768
        out.append({"namespace": f"ns{i % 50}", "name": f"svc{i}", "cluster_ip": cip, "ports": [port]})
    return out


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=3)
    ap.add_argument("--lab", action="store_true", help="the lab's service set instead of the benchmark's")
    ap.add_argument("--out", required=True, help="directory for iptables-save.txt and truth.json")
    args = ap.parse_args(argv)
    services = lab_services() if args.lab else bench_services(args.services, args.endpoints)
    text, truth = render(services)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "iptables-save.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
    print(f"{args.out}: {text.count(chr(10))} lines, {len(truth)} service ports", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
