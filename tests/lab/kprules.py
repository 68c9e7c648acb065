"""kube-proxy's rule sets for a lab node, in both modes, written the way kube-proxy writes
them (v1.28+ iptables proxier and v1.31+ nftables proxier: chain names, comments, rule
order and matches as in kube-proxy's own expected outputs), for the Service kinds the
kernel-oracle tests cover:

- ClusterIP and NodePort with externalTrafficPolicy Cluster (KUBE-EXT-* masquerades),
- externalTrafficPolicy Local with and without a local endpoint (KUBE-SVL-*; the filter
  table's KUBE-EXTERNAL-SERVICES drops when there is none),
- internalTrafficPolicy Local (the cluster IP jumps to KUBE-SVL-*),
- sessionAffinity ClientIP (``-m recent`` / nft ``@affinity-*`` sets),
- a LoadBalancer IP with loadBalancerSourceRanges (KUBE-FW-* + KUBE-PROXY-FIREWALL),
- a Service without endpoints (filter KUBE-SERVICES REJECT / nft ``reject-chain``).

Rules are rendered per node: which endpoints are local decides KUBE-SVL-* content, exactly
as kube-proxy on that node would. The hash of chain names is kube-proxy's: iptables mode
sha256(``ns/svc:port`` + protocol [+ ``ip:port``]) base32, 16 chars; nftables mode
sha256(``ns/svc/proto/port`` [+ ``__ip/port``]) base32, 8 chars, then the readable name.
Only the node namespace's tables are written; nothing in the root namespace.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Optional

from tests.lab.netns import in_netns
from tests.lab.proc import run

MASQ_MARK = "0x4000"


def _b32(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()


@dataclass(frozen=True)
class LabEndpoint:
    ip: str
    port: int
    node: str  # the lab node the endpoint lives on ("n1", "n2"; "elsewhere": no lab pod)
    pod: Optional[str] = None  # "ns/name" of the lab pod (ground truth)

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass
class LabService:
    namespace: str
    name: str
    port_name: str
    cluster_ip: str
    port: int
    endpoints: list[LabEndpoint] = field(default_factory=list)
    protocol: str = "tcp"
    node_port: Optional[int] = None
    external_policy: str = "Cluster"  # externalTrafficPolicy
    internal_policy: str = "Cluster"  # internalTrafficPolicy
    affinity_seconds: Optional[int] = None  # sessionAffinity ClientIP timeout
    lb_ip: Optional[str] = None
    lb_source_ranges: tuple[str, ...] = ()

    # ------------------------------------------------------------- names
    @property
    def port_key(self) -> str:
        """kube-proxy's ServicePortName string: ns/svc:port."""
        return f"{self.namespace}/{self.name}" + (f":{self.port_name}" if self.port_name else "")

    def _ipt(self, prefix: str) -> str:
        return prefix + _b32(self.port_key + self.protocol)[:16]

    @property
    def svc_chain(self) -> str:
        return self._ipt("KUBE-SVC-")

    @property
    def svl_chain(self) -> str:
        return self._ipt("KUBE-SVL-")

    @property
    def ext_chain(self) -> str:
        return self._ipt("KUBE-EXT-")

    @property
    def fw_chain(self) -> str:
        return self._ipt("KUBE-FW-")

    def sep_chain(self, ep: LabEndpoint) -> str:
        return "KUBE-SEP-" + _b32(self.port_key + self.protocol + ep.address)[:16]

    @property
    def _nft_base(self) -> str:
        return f"{self.namespace}/{self.name}/{self.protocol}/{self.port_name}"

    def _nft(self, prefix: str) -> str:
        return f"{prefix}-{_b32(self._nft_base)[:8]}-{self._nft_base}"

    @property
    def nft_service_chain(self) -> str:
        return self._nft("service")

    @property
    def nft_local_chain(self) -> str:
        return self._nft("local")

    @property
    def nft_external_chain(self) -> str:
        return self._nft("external")

    @property
    def nft_firewall_chain(self) -> str:
        return self._nft("firewall")

    def _nft_ep_base(self, ep: LabEndpoint) -> str:
        return f"{self._nft_base}__{ep.ip}/{ep.port}"

    def nft_endpoint_chain(self, ep: LabEndpoint) -> str:
        base = self._nft_ep_base(ep)
        return f"endpoint-{_b32(base)[:8]}-{base}"

    def nft_affinity_set(self, ep: LabEndpoint) -> str:
        base = self._nft_ep_base(ep)
        return f"affinity-{_b32(base)[:8]}-{base}"

    # ------------------------------------------------------------- policy
    def local_endpoints(self, node: str) -> list[LabEndpoint]:
        return [e for e in self.endpoints if e.node == node]

    def internal_endpoints(self, node: str) -> list[LabEndpoint]:
        return self.local_endpoints(node) if self.internal_policy == "Local" else list(self.endpoints)

    def external_endpoints(self, node: str) -> list[LabEndpoint]:
        return self.local_endpoints(node) if self.external_policy == "Local" else list(self.endpoints)

    @property
    def has_external(self) -> bool:
        return self.node_port is not None or self.lb_ip is not None


def _q(comment: str) -> str:
    return f'"{comment}"' if " " in comment else comment


def _probabilities(n: int) -> list[Optional[float]]:
    return [1.0 / (n - i) if i < n - 1 else None for i in range(n)]


# =============================================================================== iptables


def iptables_rules(services: list[LabService], node: str, cluster_cidr: str,
                   extra_filter: tuple[str, ...] = ()) -> str:
    """iptables-restore --noflush input (filter + nat) for ``node``; ``extra_filter`` are
    more filter rules of our own (e.g. a policy-like DROP), appended after kube-proxy's."""
    f_chains = ["KUBE-PROXY-FIREWALL", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD",
                "KUBE-NODEPORTS"]
    f_rules = [
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" '
        "-j KUBE-EXTERNAL-SERVICES",
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" '
        "-j KUBE-EXTERNAL-SERVICES",
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate '
        "RELATED,ESTABLISHED -j ACCEPT",
    ]
    n_chains = ["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-NODEPORTS", "KUBE-MARK-MASQ"]
    svc_rules: list[str] = []
    np_rules: list[str] = []
    rules: list[str] = []
    for s in services:
        p = s.protocol
        dst = f"-m {p} -p {p} -d {s.cluster_ip} --dport {s.port}"
        internal = s.internal_endpoints(node)
        external = s.external_endpoints(node)
        if not s.endpoints:
            f_rules.append(f'-A KUBE-SERVICES -m comment --comment {_q(s.port_key + " has no endpoints")} {dst} -j REJECT')
            if s.node_port:
                f_rules.append(f'-A KUBE-EXTERNAL-SERVICES -m comment --comment {_q(s.port_key + " has no endpoints")} '
                               f"-m addrtype --dst-type LOCAL -m {p} -p {p} --dport {s.node_port} -j REJECT")
            continue
        uses_svc = s.internal_policy == "Cluster" or s.has_external  # eTP Local short-circuits to it too
        uses_svl = (s.internal_policy == "Local" or (s.has_external and s.external_policy == "Local")) \
            and bool(s.local_endpoints(node))
        internal_chain = s.svl_chain if s.internal_policy == "Local" else s.svc_chain
        masq_rule = (f'-A {internal_chain} -m comment --comment {_q(s.port_key + " cluster IP")} {dst} '
                     f"! -s {cluster_cidr} -j KUBE-MARK-MASQ")
        if internal:
            svc_rules.append(f'-A KUBE-SERVICES -m comment --comment {_q(s.port_key + " cluster IP")} {dst} '
                             f"-j {internal_chain}")
        else:
            f_rules.append(f'-A KUBE-SERVICES -m comment --comment {_q(s.port_key + " has no local endpoints")} '
                           f"{dst} -j DROP")
        if s.has_external:
            n_chains.append(s.ext_chain)
            if s.lb_ip:
                lb = f"-m {p} -p {p} -d {s.lb_ip} --dport {s.port}"
                if s.lb_source_ranges:
                    n_chains.append(s.fw_chain)
                    svc_rules.append(f'-A KUBE-SERVICES -m comment --comment {_q(s.port_key + " loadbalancer IP")} '
                                     f"{lb} -j {s.fw_chain}")
                    for src in s.lb_source_ranges:
                        rules.append(f'-A {s.fw_chain} -m comment --comment {_q(s.port_key + " loadbalancer IP")} '
                                     f"-s {src} -j {s.ext_chain}")
                    rules.append(f"-A {s.fw_chain} -m comment --comment "
                                 f'{_q("other traffic to " + s.port_key + " will be dropped by KUBE-PROXY-FIREWALL")}')
                    f_rules.append(f"-A KUBE-PROXY-FIREWALL -m comment --comment "
                                   f'{_q(s.port_key + " traffic not accepted by " + s.fw_chain)} {lb} -j DROP')
                else:
                    svc_rules.append(f'-A KUBE-SERVICES -m comment --comment {_q(s.port_key + " loadbalancer IP")} '
                                     f"{lb} -j {s.ext_chain}")
            if s.node_port:
                np_rules.append(f"-A KUBE-NODEPORTS -m comment --comment {_q(s.port_key)} -m {p} -p {p} "
                                f"--dport {s.node_port} -j {s.ext_chain}")
            if s.external_policy == "Cluster":
                rules.append(f"-A {s.ext_chain} -m comment --comment "
                             f'{_q("masquerade traffic for " + s.port_key + " external destinations")} -j KUBE-MARK-MASQ')
                rules.append(f"-A {s.ext_chain} -j {s.svc_chain}")
            else:
                rules.append(f"-A {s.ext_chain} -m comment --comment "
                             f'{_q("pod traffic for " + s.port_key + " external destinations")} '
                             f"-s {cluster_cidr} -j {s.svc_chain}")
                rules.append(f"-A {s.ext_chain} -m comment --comment "
                             f'{_q("masquerade LOCAL traffic for " + s.port_key + " external destinations")} '
                             f"-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ")
                rules.append(f"-A {s.ext_chain} -m comment --comment "
                             f'{_q("route LOCAL traffic for " + s.port_key + " external destinations")} '
                             f"-m addrtype --src-type LOCAL -j {s.svc_chain}")
                if external:
                    rules.append(f"-A {s.ext_chain} -j {s.svl_chain}")
                else:
                    if s.node_port:
                        f_rules.append(
                            f'-A KUBE-EXTERNAL-SERVICES -m comment --comment {_q(s.port_key + " has no local endpoints")} '
                            f"-m addrtype --dst-type LOCAL -m {p} -p {p} --dport {s.node_port} -j DROP")
                    if s.lb_ip:
                        f_rules.append(
                            f'-A KUBE-EXTERNAL-SERVICES -m comment --comment {_q(s.port_key + " has no local endpoints")} '
                            f"-m {p} -p {p} -d {s.lb_ip} --dport {s.port} -j DROP")
        reachable: list[LabEndpoint] = []

        def write_policy_chain(chain: str, eps: list[LabEndpoint], with_masq: bool, s: LabService = s,
                               masq_rule: str = masq_rule, reachable: list[LabEndpoint] = reachable) -> None:
            n_chains.append(chain)
            if with_masq:
                rules.append(masq_rule)
            if s.affinity_seconds:
                for ep in eps:
                    rules.append(f'-A {chain} -m comment --comment {_q(s.port_key + " -> " + ep.address)} '
                                 f"-m recent --name {s.sep_chain(ep)} --rcheck --seconds {s.affinity_seconds} --reap "
                                 f"-j {s.sep_chain(ep)}")
            for ep, prob in zip(eps, _probabilities(len(eps))):
                stat = f" -m statistic --mode random --probability {prob:0.10f}" if prob is not None else ""
                rules.append(f'-A {chain} -m comment --comment {_q(s.port_key + " -> " + ep.address)}{stat} '
                             f"-j {s.sep_chain(ep)}")
            for ep in eps:
                if ep not in reachable:
                    reachable.append(ep)

        if uses_svc:
            write_policy_chain(s.svc_chain, list(s.endpoints), with_masq=s.internal_policy == "Cluster")
        if uses_svl:
            write_policy_chain(s.svl_chain, s.local_endpoints(node), with_masq=s.internal_policy == "Local")
        for ep in reachable:
            sep = s.sep_chain(ep)
            n_chains.append(sep)
            rules.append(f"-A {sep} -m comment --comment {_q(s.port_key)} -s {ep.ip} -j KUBE-MARK-MASQ")
            recent = (f" -m recent --set --name {sep} --mask 255.255.255.255 --rsource"
                      if s.affinity_seconds else "")
            rules.append(f"-A {sep} -m comment --comment {_q(s.port_key)}{recent} -m {p} -p {p} "
                         f"-j DNAT --to-destination {ep.address}")
    nat = [
        "*nat", *[f":{c} - [0:0]" for c in dict.fromkeys(n_chains)],
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
        *np_rules, *svc_rules,
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in '
        'this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
        *rules, "COMMIT",
    ]
    filt = ["*filter", *[f":{c} - [0:0]" for c in f_chains], *f_rules, *extra_filter, "COMMIT"]
    return "\n".join(filt + nat) + "\n"


def load_iptables(node_ns: str, text: str) -> None:
    run(in_netns(node_ns, "iptables-restore", "--noflush"), input=text)


# =============================================================================== nftables


def nft_rules(services: list[LabService], node: str, cluster_cidr: str, service_cidr: str,
              node_ips: list[str]) -> str:
    """An ``nft -f`` transaction in kube-proxy's nftables-mode layout for ``node``."""
    t = "ip kube-proxy"
    out = [
        f'add table {t} {{ comment "rules for kube-proxy" ; }}',
        f'add set {t} cluster-ips {{ type ipv4_addr ; comment "Active ClusterIPs" ; }}',
        f'add set {t} nodeport-ips {{ type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }}',
        f"add map {t} firewall-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; "
        'comment "destinations that are subject to LoadBalancerSourceRanges" ; }',
        f"add map {t} no-endpoint-nodeports {{ type inet_proto . inet_service : verdict ; "
        'comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }',
        f"add map {t} no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : verdict ; "
        'comment "vmap to drop or reject packets to services with no endpoints" ; }',
        f"add map {t} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; "
        'comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }',
        f'add map {t} service-nodeports {{ type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }}',
        f"add chain {t} cluster-ips-check",
        f"add chain {t} filter-prerouting-pre-dnat {{ type filter hook prerouting priority -110 ; }}",
        f"add chain {t} filter-output-pre-dnat {{ type filter hook output priority -110 ; }}",
        f"add chain {t} filter-forward {{ type filter hook forward priority 0 ; }}",
        f"add chain {t} filter-input {{ type filter hook input priority 0 ; }}",
        f"add chain {t} filter-output {{ type filter hook output priority 0 ; }}",
        f"add chain {t} firewall-check",
        f"add chain {t} mark-for-masquerade",
        f"add chain {t} masquerading",
        f"add chain {t} nat-output {{ type nat hook output priority -100 ; }}",
        f"add chain {t} nat-postrouting {{ type nat hook postrouting priority 100 ; }}",
        f"add chain {t} nat-prerouting {{ type nat hook prerouting priority -100 ; }}",
        f"add chain {t} nodeport-endpoints-check",
        f'add chain {t} reject-chain {{ comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }}',
        f"add chain {t} services",
        f"add chain {t} service-endpoints-check",
        f'add rule {t} cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
        f'add rule {t} cluster-ips-check ip daddr {{ {service_cidr} }} drop comment "Drop traffic to unallocated ClusterIPs"',
        f"add rule {t} filter-prerouting-pre-dnat ct state new jump firewall-check",
        f"add rule {t} filter-forward ct state new jump service-endpoints-check",
        f"add rule {t} filter-forward ct state new jump cluster-ips-check",
        f"add rule {t} filter-input ct state new jump nodeport-endpoints-check",
        f"add rule {t} filter-input ct state new jump service-endpoints-check",
        f"add rule {t} filter-output ct state new jump service-endpoints-check",
        f"add rule {t} filter-output-pre-dnat ct state new jump firewall-check",
        f"add rule {t} filter-output ct state new jump cluster-ips-check",
        f"add rule {t} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips",
        f"add rule {t} mark-for-masquerade mark set mark or {MASQ_MARK}",
        f"add rule {t} masquerading mark and {MASQ_MARK} == 0 return",
        f"add rule {t} masquerading mark set mark xor {MASQ_MARK}",
        f"add rule {t} masquerading masquerade fully-random",
        f"add rule {t} nat-output jump services",
        f"add rule {t} nat-postrouting jump masquerading",
        f"add rule {t} nat-prerouting jump services",
        f"add rule {t} nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports",
        f"add rule {t} reject-chain reject",
        f"add rule {t} services ip daddr . meta l4proto . th dport vmap @service-ips",
        f"add rule {t} services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports",
        f"add rule {t} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
    ]
    decls: list[str] = []  # every chain and set is declared before any rule names it
    body: list[str] = []
    for ip in node_ips:
        body.append(f"add element {t} nodeport-ips {{ {ip} }}")
    for s in services:
        p = s.protocol
        body.append(f"add element {t} cluster-ips {{ {s.cluster_ip} }}")
        if not s.endpoints:
            body.append(f"add element {t} no-endpoint-services {{ {s.cluster_ip} . {p} . {s.port} "
                       f'comment "{s.port_key}" : goto reject-chain }}')
            if s.node_port:
                body.append(f"add element {t} no-endpoint-nodeports {{ {p} . {s.node_port} "
                           f'comment "{s.port_key}" : goto reject-chain }}')
            continue
        local = s.local_endpoints(node)
        uses_svc = s.internal_policy == "Cluster" or s.has_external  # eTP Local short-circuits to it too
        uses_local = (s.internal_policy == "Local" or (s.has_external and s.external_policy == "Local")) \
            and bool(local)
        internal_chain = s.nft_local_chain if s.internal_policy == "Local" else s.nft_service_chain
        masq = (f"add rule {t} {internal_chain} ip daddr {s.cluster_ip} {p} dport {s.port} "
                f"ip saddr != {cluster_cidr} jump mark-for-masquerade")
        reachable: list[LabEndpoint] = []

        def policy_chain(chain: str, eps: list[LabEndpoint], with_masq: bool, s: LabService = s,
                         masq: str = masq, reachable: list[LabEndpoint] = reachable) -> None:
            decls.append(f"add chain {t} {chain}")
            if with_masq:
                body.append(masq)
            if s.affinity_seconds:
                for ep in eps:
                    body.append(f"add rule {t} {chain} ip saddr @{s.nft_affinity_set(ep)} "
                               f"goto {s.nft_endpoint_chain(ep)}")
            vm = " , ".join(f"{i} : goto {s.nft_endpoint_chain(ep)}" for i, ep in enumerate(eps))
            body.append(f"add rule {t} {chain} numgen random mod {len(eps)} vmap {{ {vm} }}")
            for ep in eps:
                if ep not in reachable:
                    reachable.append(ep)

        if uses_svc:
            policy_chain(s.nft_service_chain, list(s.endpoints), with_masq=s.internal_policy == "Cluster")
        if uses_local:
            policy_chain(s.nft_local_chain, local, with_masq=s.internal_policy == "Local")
        if s.has_external:
            ext = s.nft_external_chain
            decls.append(f"add chain {t} {ext}")
            if s.external_policy == "Cluster":
                body.append(f"add rule {t} {ext} jump mark-for-masquerade")
                body.append(f"add rule {t} {ext} goto {s.nft_service_chain}")
            else:
                body.append(f'add rule {t} {ext} ip saddr {cluster_cidr} goto {s.nft_service_chain} '
                           'comment "short-circuit pod traffic"')
                body.append(f'add rule {t} {ext} fib saddr type local jump mark-for-masquerade '
                           'comment "masquerade local traffic"')
                body.append(f'add rule {t} {ext} fib saddr type local goto {s.nft_service_chain} '
                           'comment "short-circuit local traffic"')
                if local:
                    body.append(f"add rule {t} {ext} goto {s.nft_local_chain}")
        for ep in reachable:
            chain = s.nft_endpoint_chain(ep)
            if s.affinity_seconds:
                decls.append(f"add set {t} {s.nft_affinity_set(ep)} {{ type ipv4_addr ; flags dynamic,timeout ; "
                           f"timeout {s.affinity_seconds}s ; }}")
            decls.append(f"add chain {t} {chain}")
            body.append(f"add rule {t} {chain} ip saddr {ep.ip} jump mark-for-masquerade")
            if s.affinity_seconds:
                body.append(f"add rule {t} {chain} update @{s.nft_affinity_set(ep)} {{ ip saddr }}")
            body.append(f"add rule {t} {chain} meta l4proto {p} dnat to {ep.address}")
        internal_has = bool(s.internal_endpoints(node))
        if internal_has:
            body.append(f"add element {t} service-ips {{ {s.cluster_ip} . {p} . {s.port} : goto {internal_chain} }}")
        else:
            body.append(f"add element {t} no-endpoint-services {{ {s.cluster_ip} . {p} . {s.port} "
                       f'comment "{s.port_key}" : drop }}')
        if s.has_external:
            ext = s.nft_external_chain
            if s.lb_ip:
                body.append(f"add element {t} service-ips {{ {s.lb_ip} . {p} . {s.port} : goto {ext} }}")
                if s.lb_source_ranges:
                    fw = s.nft_firewall_chain
                    decls.append(f"add chain {t} {fw}")
                    body.append(f"add rule {t} {fw} ip saddr != {{ {', '.join(s.lb_source_ranges)} }} drop")
                    body.append(f"add element {t} firewall-ips {{ {s.lb_ip} . {p} . {s.port} : goto {fw} }}")
            if s.node_port:
                body.append(f"add element {t} service-nodeports {{ {p} . {s.node_port} : goto {ext} }}")
            if not s.external_endpoints(node):
                if s.node_port:
                    body.append(f"add element {t} no-endpoint-nodeports {{ {p} . {s.node_port} "
                               f'comment "{s.port_key}" : drop }}')
                if s.lb_ip:
                    body.append(f"add element {t} no-endpoint-services {{ {s.lb_ip} . {p} . {s.port} "
                               f'comment "{s.port_key}" : drop }}')
    return "\n".join(out + decls + body) + "\n"


def load_nft(node_ns: str, text: str) -> None:
    run(in_netns(node_ns, "nft", "-f", "-"), input=text)
