"""Write kube-proxy-style nftables rules (the transaction kube-proxy v1.33 writes in
nftables mode) with their ground truth.

The rules follow pkg/proxy/nftables/proxier.go (kubernetes/kubernetes): table
``ip kube-proxy`` with the base chains (``filter-*`` at ``dstnat-10``,
``filter-output-post-dnat`` at ``dstnat+10``, ``nat-*`` at ``dstnat``/``srcnat``), the
``services`` dispatch through the ``service-ips`` / ``service-nodeports`` verdict maps,
per-service-port ``service-<hash>-<ns>/<svc>/<proto>/<port>`` chains with a
``numgen random mod N vmap { … }`` rule, per-endpoint ``endpoint-<hash>-…__<ip>/<port>``
chains ending in ``dnat to``, ``external-…`` and ``local-…`` chains for traffic policies,
``affinity-…`` sets for sessionAffinity ClientIP, ``no-endpoint-services`` /
``no-endpoint-nodeports`` for services without endpoints, ``cluster-ips``,
``mark-for-masquerade`` and ``masquerading``.

Chain names carry kube-proxy's real hash: the first 8 characters of base32(sha256(name)).

Usage:
    python3 -m tests.support.gen_nft --services 10000 --endpoints 3 --out benchmarks/out/nft-10k
    (writes rules.nft — load with ``nft -f`` — and truth.json)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import ipaddress
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

TABLE = "ip kube-proxy"
MASQ_MARK = "0x00004000"  # kube-proxy: fmt.Sprintf("%#08x", 1<<14)


def hash_and_truncate(name: str) -> str:
    digest = hashlib.sha256(name.encode()).digest()
    out = base64.b32encode(digest).decode()[:8] + "-" + name
    limit = 256 - 16  # knftables.NameLengthMax - chainNamePrefixLengthMax
    if len(out) > limit:
        out = out[: limit - 3] + "..."
    return out


@dataclass
class EndpointSpec:
    ip: str
    port: int
    local: bool = False

    @property
    def address(self) -> str:  # net.JoinHostPort: IPv6 in brackets
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


@dataclass
class ServiceSpec:
    namespace: str
    service: str
    port_name: str
    protocol: str  # tcp | udp | sctp
    cluster_ip: str
    port: int
    endpoints: list[EndpointSpec] = field(default_factory=list)
    node_port: Optional[int] = None
    affinity_timeout_s: Optional[int] = None  # sessionAffinity ClientIP when set
    external_ips: list[str] = field(default_factory=list)
    external_traffic_policy: str = "Cluster"
    lb_ips: list[str] = field(default_factory=list)  # status.loadBalancer.ingress
    source_ranges: list[str] = field(default_factory=list)  # spec.loadBalancerSourceRanges

    @property
    def name(self) -> str:  # proxy.ServicePortName.String()
        base = f"{self.namespace}/{self.service}"
        return f"{base}:{self.port_name}" if self.port_name else base

    @property
    def chain_base(self) -> str:
        return hash_and_truncate(f"{self.namespace}/{self.service}/{self.protocol}/{self.port_name}")

    def endpoint_chain_base(self, ep: EndpointSpec) -> str:
        ip = ep.ip.replace(":", ".")
        return hash_and_truncate(
            f"{self.namespace}/{self.service}/{self.protocol}/{self.port_name}__{ip}/{ep.port}"
        )

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.external_ips or self.lb_ips)


def truth_of(svc: ServiceSpec) -> dict:
    """What a decoder must report for this service port (labreport's ServiceRecord fields)."""
    has_eps = bool(svc.endpoints)
    n = len(svc.endpoints)
    local_eps = [e for e in svc.endpoints if e.local]
    return {
        "name": svc.name,
        "namespace": svc.namespace,
        "service": svc.service,
        "port_name": svc.port_name or None,
        "cluster_ip": svc.cluster_ip,
        "port": svc.port,
        "protocol": svc.protocol,
        "node_port": svc.node_port,
        "external_ips": list(svc.external_ips) + ([] if svc.source_ranges else list(svc.lb_ips)),
        "load_balancer_ips": list(svc.lb_ips) if svc.source_ranges else [],
        "session_affinity": svc.affinity_timeout_s is not None,
        "affinity_timeout_s": svc.affinity_timeout_s,
        "external_traffic_policy": (svc.external_traffic_policy if svc.externally_accessible and has_eps else None),
        "no_endpoints": not has_eps,
        "endpoints": [
            {
                "address": e.address,
                "probability": 1.0 / n,
                "local": (e.local if svc.external_traffic_policy == "Local" else None),
            }
            for e in svc.endpoints
        ],
        "local_endpoints": [e.address for e in local_eps] if svc.external_traffic_policy == "Local" else None,
    }


FIELDS = (
    "namespace", "service", "port_name", "cluster_ip", "port", "protocol", "node_port", "external_ips", "load_balancer_ips",
    "session_affinity", "affinity_timeout_s", "external_traffic_policy", "no_endpoints",
)


def compare(records: list, truth: list[dict]) -> list[str]:
    """Every difference between decoded ServiceRecords and the ground truth (empty = exact)."""
    problems: list[str] = []
    by_name: dict[str, object] = {}
    for r in records:
        if r.name in by_name:
            problems.append(f"{r.name}: decoded twice")
        by_name[r.name] = r
    want = {t["name"] for t in truth}
    for extra in sorted(set(by_name) - want):
        problems.append(f"{extra}: decoded but not in the truth")
    for t in truth:
        r = by_name.get(t["name"])
        if r is None:
            problems.append(f"{t['name']}: missing")
            continue
        for k in FIELDS:
            got = getattr(r, k)
            want = t.get(k, [] if k.endswith("_ips") else None)  # truth files from before a field existed
            if got != want:
                problems.append(f"{t['name']}: {k} = {got!r}, expected {want!r}")
        got_eps = sorted((e.address, round(e.probability or 0.0, 9), e.local) for e in (r.endpoints or []))
        exp_eps = sorted((e["address"], round(e["probability"], 9), e["local"]) for e in t["endpoints"])
        if got_eps != exp_eps:
            problems.append(f"{t['name']}: endpoints {got_eps}, expected {exp_eps}")
    return problems


# --------------------------------------------------------------------------- the transaction


def _base_chains(lines: list[str]) -> None:
    # kube-proxy writes "dstnat-10" / "dstnat+10" / "dstnat" everywhere; nft 1.0.6 (this
    # machine's) accepts the symbolic dstnat only on the prerouting hook and only spaced
    # ("dstnat - 10"), so other hooks get the same value as a number (dstnat = -100).
    base = [
        ("filter-prerouting", "filter", "prerouting", "dstnat - 10"),
        ("filter-input", "filter", "input", "-110"),
        ("filter-forward", "filter", "forward", "-110"),
        ("filter-output", "filter", "output", "-110"),
        ("filter-output-post-dnat", "filter", "output", "-90"),
        ("nat-prerouting", "nat", "prerouting", "dstnat"),
        ("nat-output", "nat", "output", "-100"),
        ("nat-postrouting", "nat", "postrouting", "srcnat"),
    ]
    for name, ctype, hook, prio in base:
        lines.append(f"add chain {TABLE} {name} {{ type {ctype} hook {hook} priority {prio} ; }}")
        lines.append(f"flush chain {TABLE} {name}")
    jumps = [
        ("nodeport-endpoints-check", "filter-input", "ct state new"),
        ("service-endpoints-check", "filter-input", "ct state new"),
        ("service-endpoints-check", "filter-forward", "ct state new"),
        ("service-endpoints-check", "filter-output", "ct state new"),
        ("firewall-check", "filter-prerouting", "ct state new"),
        ("firewall-check", "filter-output", "ct state new"),
        ("services", "nat-output", ""),
        ("services", "nat-prerouting", ""),
        ("masquerading", "nat-postrouting", ""),
        ("cluster-ips-check", "filter-forward", "ct state new"),
        ("cluster-ips-check", "filter-output-post-dnat", "ct state new"),
    ]
    created: set[str] = set()
    for dst, src, extra in jumps:
        if dst not in created:
            lines.append(f"add chain {TABLE} {dst}")
            lines.append(f"flush chain {TABLE} {dst}")
            created.add(dst)
        lines.append(f"add rule {TABLE} {src} {extra + ' ' if extra else ''}jump {dst}")
    for chain in ("mark-for-masquerade",):
        lines.append(f"add chain {TABLE} {chain}")
        lines.append(f"flush chain {TABLE} {chain}")
    lines.append(f"add rule {TABLE} mark-for-masquerade mark set mark or {MASQ_MARK}")
    lines.append(f"add rule {TABLE} masquerading mark and {MASQ_MARK} == 0 return")
    lines.append(f"add rule {TABLE} masquerading mark set mark xor {MASQ_MARK}")
    lines.append(f"add rule {TABLE} masquerading masquerade fully-random")
    lines.append(f'add set {TABLE} cluster-ips {{ type ipv4_addr ; comment "Active ClusterIPs" ; }}')
    lines.append(
        f'add rule {TABLE} cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"'
    )
    lines.append(
        f'add rule {TABLE} cluster-ips-check ip daddr {{ 10.96.0.0/12 }} drop comment "Drop traffic to unallocated ClusterIPs"'
    )
    lines.append(
        f'add map {TABLE} no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : verdict ; '
        f'comment "vmap to drop or reject packets to services with no endpoints" ; }}'
    )
    lines.append(
        f'add map {TABLE} no-endpoint-nodeports {{ type inet_proto . inet_service : verdict ; '
        f'comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }}'
    )
    lines.append(f'add chain {TABLE} reject-chain {{ comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }}')
    lines.append(f"flush chain {TABLE} reject-chain")
    lines.append(f"add rule {TABLE} reject-chain reject")
    lines.append(f"add rule {TABLE} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services")
    lines.append(
        f"add rule {TABLE} nodeport-endpoints-check ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports"
    )
    lines.append(
        f'add map {TABLE} firewall-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; '
        f'comment "destinations that are subject to LoadBalancerSourceRanges" ; }}'
    )
    lines.append(f"add rule {TABLE} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips")
    lines.append(
        f'add map {TABLE} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; '
        f'comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }}'
    )
    lines.append(
        f'add map {TABLE} service-nodeports {{ type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }}'
    )
    lines.append(f"add rule {TABLE} services ip daddr . meta l4proto . th dport vmap @service-ips")
    lines.append(
        f"add rule {TABLE} services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports"
    )


def transaction(services: list[ServiceSpec], pod_cidr: Optional[str] = None, family: str = "ip",
                service_cidr: Optional[str] = None) -> str:
    """The nft -f text kube-proxy would run for these services (a full sync). ``family``
    "ip6" gives the IPv6 proxier's table (``ip6 kube-proxy``, ipv6_addr, ``ip6 saddr`` …)."""
    if family == "ip6":
        text = _transaction(services, pod_cidr or "fd00:10:244::/56")
        for a, b in ((" ip kube-proxy ", " ip6 kube-proxy "), ("ipv4_addr", "ipv6_addr"), (" ip daddr ", " ip6 daddr "),
                     (" ip saddr ", " ip6 saddr "), ("{ ip saddr }", "{ ip6 saddr }"), ("!= 127.0.0.0/8", "!= ::1"),
                     ("{ 10.96.0.0/12 }", "{ " + (service_cidr or "fd00:10:96::/112") + " }")):
            text = text.replace(a, b)
        return text
    text = _transaction(services, pod_cidr or "10.244.0.0/16")
    if service_cidr:
        text = text.replace("{ 10.96.0.0/12 }", "{ " + service_cidr + " }")
    return text


def _transaction(services: list[ServiceSpec], pod_cidr: str) -> str:
    lines: list[str] = [f'add table {TABLE} {{ comment "rules for kube-proxy" ; }}']
    _base_chains(lines)
    for svc in services:
        base = svc.chain_base
        proto = svc.protocol
        cluster_chain = "service-" + base
        local_chain = "local-" + base
        ext_chain = "external-" + base
        has_eps = bool(svc.endpoints)
        local_eps = [e for e in svc.endpoints if e.local]
        etp_local = svc.external_traffic_policy == "Local"
        lines.append(f"add element {TABLE} cluster-ips {{ {svc.cluster_ip} }}")
        if not has_eps:
            lines.append(
                f'add element {TABLE} no-endpoint-services {{ {svc.cluster_ip} . {proto} . {svc.port} '
                f'comment "{svc.name}" : goto reject-chain }}'
            )
            for eip in svc.external_ips:
                lines.append(
                    f'add element {TABLE} no-endpoint-services {{ {eip} . {proto} . {svc.port} '
                    f'comment "{svc.name}" : goto reject-chain }}'
                )
            if svc.node_port:
                lines.append(
                    f'add element {TABLE} no-endpoint-nodeports {{ {proto} . {svc.node_port} '
                    f'comment "{svc.name}" : goto reject-chain }}'
                )
            continue
        # chains first (ensureChain), then map elements pointing at them
        ep_chains = {id(e): "endpoint-" + svc.endpoint_chain_base(e) for e in svc.endpoints}
        for e in svc.endpoints:
            lines.append(f"add chain {TABLE} {ep_chains[id(e)]}")
            lines.append(f"flush chain {TABLE} {ep_chains[id(e)]}")
        lines.append(f"add chain {TABLE} {cluster_chain}")
        lines.append(f"flush chain {TABLE} {cluster_chain}")
        if etp_local and local_eps:
            lines.append(f"add chain {TABLE} {local_chain}")
            lines.append(f"flush chain {TABLE} {local_chain}")
        if svc.externally_accessible:
            lines.append(f"add chain {TABLE} {ext_chain}")
            lines.append(f"flush chain {TABLE} {ext_chain}")
        lines.append(f"add element {TABLE} service-ips {{ {svc.cluster_ip} . {proto} . {svc.port} : goto {cluster_chain} }}")
        for eip in svc.external_ips:
            lines.append(f"add element {TABLE} service-ips {{ {eip} . {proto} . {svc.port} : goto {ext_chain} }}")
        fw_chain = "firewall-" + base
        if svc.lb_ips and svc.source_ranges:
            lines.append(f"add chain {TABLE} {fw_chain}")
            lines.append(f"flush chain {TABLE} {fw_chain}")
            lines.append(f"add rule {TABLE} {fw_chain} ip saddr != {{ {', '.join(svc.source_ranges)} }} drop")
        for lbip in svc.lb_ips:
            lines.append(f"add element {TABLE} service-ips {{ {lbip} . {proto} . {svc.port} : goto {ext_chain} }}")
            if svc.source_ranges:
                lines.append(f"add element {TABLE} firewall-ips {{ {lbip} . {proto} . {svc.port} : goto {fw_chain} }}")
        if svc.node_port:
            lines.append(f"add element {TABLE} service-nodeports {{ {proto} . {svc.node_port} : goto {ext_chain} }}")
            if etp_local and not local_eps:
                lines.append(
                    f'add element {TABLE} no-endpoint-nodeports {{ {proto} . {svc.node_port} comment "{svc.name}" : drop }}'
                )
        # internal traffic: masquerade off-cluster sources
        lines.append(
            f"add rule {TABLE} {cluster_chain} ip daddr {svc.cluster_ip} {proto} dport {svc.port} "
            f"ip saddr != {pod_cidr} jump mark-for-masquerade"
        )
        if svc.externally_accessible:
            if not etp_local:
                lines.append(f"add rule {TABLE} {ext_chain} jump mark-for-masquerade")
                lines.append(f"add rule {TABLE} {ext_chain} goto {cluster_chain}")
            else:
                lines.append(
                    f'add rule {TABLE} {ext_chain} ip saddr {pod_cidr} goto {cluster_chain} comment "short-circuit pod traffic"'
                )
                lines.append(
                    f'add rule {TABLE} {ext_chain} fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"'
                )
                lines.append(
                    f'add rule {TABLE} {ext_chain} fib saddr type local goto {cluster_chain} comment "short-circuit local traffic"'
                )
                if local_eps:
                    lines.append(f"add rule {TABLE} {ext_chain} goto {local_chain}")
        if svc.affinity_timeout_s is not None:
            for e in svc.endpoints:
                aff = "affinity-" + svc.endpoint_chain_base(e)
                lines.append(
                    f"add set {TABLE} {aff} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {svc.affinity_timeout_s}s ; }}"
                )

        def policy_rules(chain: str, eps: list[EndpointSpec], svc: ServiceSpec = svc,
                         ep_chains: dict[int, str] = ep_chains) -> None:
            if svc.affinity_timeout_s is not None:
                for e in eps:
                    aff = "affinity-" + svc.endpoint_chain_base(e)
                    lines.append(f"add rule {TABLE} {chain} ip saddr @{aff} goto {ep_chains[id(e)]}")
            elems = " , ".join(f"{i} : goto {ep_chains[id(e)]}" for i, e in enumerate(eps))
            lines.append(f"add rule {TABLE} {chain} numgen random mod {len(eps)} vmap {{ {elems} }}")

        policy_rules(cluster_chain, svc.endpoints)
        if etp_local and local_eps:
            policy_rules(local_chain, local_eps)
        for e in svc.endpoints:
            ch = ep_chains[id(e)]
            lines.append(f"add rule {TABLE} {ch} ip saddr {e.ip} jump mark-for-masquerade")
            if svc.affinity_timeout_s is not None:
                aff = "affinity-" + svc.endpoint_chain_base(e)
                lines.append(f"add rule {TABLE} {ch} update @{aff} {{ ip saddr }}")
            lines.append(f"add rule {TABLE} {ch} meta l4proto {proto} dnat to {e.address}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- service sets


def lab_services(pod_ips: list[str], pod_port: int = 80) -> list[ServiceSpec]:
    """The small, varied set the live test loads: every feature the decoder handles."""
    eps = lambda *ips, port=pod_port: [EndpointSpec(ip, port) for ip in ips]  # noqa: E731
    p0 = pod_ips[0]
    others = ["10.244.2.7", "10.244.3.9"]
    return [
        ServiceSpec("default", "web", "", "tcp", "10.96.0.10", 80, eps(p0), node_port=30080),
        ServiceSpec("default", "web3", "http", "tcp", "10.96.0.11", 8080, eps(p0, *others)),
        ServiceSpec("default", "sticky", "http", "tcp", "10.96.0.12", 80, eps(p0, others[0]), affinity_timeout_s=10800),
        ServiceSpec("kube-system", "kube-dns", "dns", "udp", "10.96.0.53", 53, eps("10.244.2.2", "10.244.3.3", port=53)),
        ServiceSpec("kube-system", "kube-dns", "dns-tcp", "tcp", "10.96.0.53", 53, eps("10.244.2.2", "10.244.3.3", port=53)),
        ServiceSpec("default", "empty", "", "tcp", "10.96.0.20", 80, [], node_port=30020),
        ServiceSpec(
            "default", "local", "web", "tcp", "10.96.0.21", 80,
            [EndpointSpec(p0, pod_port, local=True), EndpointSpec(others[1], pod_port)],
            node_port=30021, external_traffic_policy="Local",
        ),
        ServiceSpec("default", "extip", "", "tcp", "10.96.0.22", 8081, eps(p0), external_ips=["192.0.2.10"]),
        ServiceSpec("default", "lb", "https", "tcp", "10.96.0.23", 443, eps(p0, others[0], port=8443), node_port=30443,
                    lb_ips=["198.51.100.7"], source_ranges=["10.0.0.0/8", "192.168.0.0/16"]),
    ]


def lab_services_v6(pod_ips: list[str], pod_port: int = 80) -> list[ServiceSpec]:
    """An IPv6 set (the ip6 proxier of a dual-stack node)."""
    p0 = pod_ips[0]
    return [
        ServiceSpec("default", "web6", "", "tcp", "fd00:10:96::10", 80, [EndpointSpec(p0, pod_port)], node_port=30086),
        ServiceSpec("default", "web6-3", "http", "tcp", "fd00:10:96::11", 8080,
                    [EndpointSpec(p0, pod_port), EndpointSpec("fd00:10:244:2::7", pod_port),
                     EndpointSpec("fd00:10:244:3::9", pod_port)], affinity_timeout_s=600),
        ServiceSpec("default", "empty6", "", "udp", "fd00:10:96::20", 53, []),
    ]


def bulk_services(n: int, endpoints: int) -> list[ServiceSpec]:
    """n services × endpoints each: ClusterIPs 10.96.0.0/12, pods in 10.244.0.0/16."""
    out = []
    svc_net = ipaddress.ip_network("10.96.0.0/12")
    pod_net = ipaddress.ip_network("10.244.0.0/16")
    for i in range(n):
        cip = str(svc_net[1000 + i])
        eps = [EndpointSpec(str(pod_net[256 + i * endpoints + j]), 8080) for j in range(endpoints)]
        node_port = 30000 + (i % 2768) if i % 10 == 0 and i < 27680 else None
        affinity = 10800 if i % 17 == 0 else None
        out.append(
            ServiceSpec(f"ns{i % 50}", f"svc-{i}", "http" if i % 2 else "", "tcp", cip, 80, eps,
                        node_port=node_port, affinity_timeout_s=affinity)
        )
    return out


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=3)
    ap.add_argument("--lab", action="store_true", help="the small varied set of the live test")
    ap.add_argument("--pod-ip", default="10.244.1.5")
    ap.add_argument("--out", required=True, help="directory for rules.nft and truth.json")
    args = ap.parse_args(argv)
    services = lab_services([args.pod_ip]) if args.lab else bulk_services(args.services, args.endpoints)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rules.nft").write_text(transaction(services))
    (out / "truth.json").write_text(json.dumps([truth_of(s) for s in services], indent=1))
    print(f"{len(services)} services -> {out}/rules.nft, {out}/truth.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["ServiceSpec", "EndpointSpec", "transaction", "truth_of", "compare", "lab_services", "bulk_services", "asdict"]
