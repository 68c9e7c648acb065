"""kube-proxy's iptables-mode rules for a lab node, written the way kube-proxy (v1.28+)
writes them with iptables-restore: chain names from kube-proxy's hash (sha256 of the service
port name + protocol [+ endpoint], base32, 16 chars — e.g. default/kubernetes:https tcp →
KUBE-SVC-NPX46M4PTMTKRN6Y), comments ``ns/svc:port cluster IP`` and ``ns/svc:port -> ip:port``,
``--probability`` 1/(n-i) printed with 10 decimals, KUBE-MARK-MASQ / KUBE-POSTROUTING with
mark 0x4000, NodePorts through KUBE-NODEPORTS → KUBE-EXT-*.

The rules are loaded into the NODE namespace's nat table only (``ip netns exec NODE
iptables-restore --noflush``); nothing is ever added in the root namespace.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from tests.lab.netns import in_netns
from tests.lab.proc import run


def _hash16(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


@dataclass(frozen=True)
class EndpointSpec:
    ip: str
    port: int
    pod: str  # "namespace/name" (ground truth; kube-proxy does not write it)

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass
class ServicePortSpec:
    namespace: str
    name: str
    port_name: str
    cluster_ip: str
    port: int
    endpoints: list[EndpointSpec] = field(default_factory=list)
    protocol: str = "tcp"
    node_port: int | None = None

    @property
    def port_key(self) -> str:
        """kube-proxy's ServicePortName string: ns/svc:port (ns/svc when the port is unnamed)."""
        return f"{self.namespace}/{self.name}" + (f":{self.port_name}" if self.port_name else "")

    @property
    def svc_chain(self) -> str:
        return "KUBE-SVC-" + _hash16(self.port_key + self.protocol)

    @property
    def ext_chain(self) -> str:
        return "KUBE-EXT-" + _hash16(self.port_key + self.protocol)

    def sep_chain(self, ep: EndpointSpec) -> str:
        return "KUBE-SEP-" + _hash16(self.port_key + self.protocol + ep.address)

    def rule_probabilities(self) -> list[float | None]:
        """What each KUBE-SVC rule's --probability is (None: the last, unconditional)."""
        n = len(self.endpoints)
        return [1.0 / (n - i) if i < n - 1 else None for i in range(n)]

    def expected_shares(self) -> list[float]:
        """Effective share of each endpoint: p_i · Π_{j<i}(1 − p_j)."""
        shares, remaining = [], 1.0
        for p in self.rule_probabilities():
            p_eff = 1.0 if p is None else p
            shares.append(remaining * p_eff)
            remaining *= 1.0 - p_eff
        return shares


def _q(comment: str) -> str:
    # kube-proxy quotes comments that contain spaces; iptables-save prints them the same way
    return f'"{comment}"' if " " in comment else comment


def nat_rules(services: list[ServicePortSpec], cluster_cidr: str) -> str:
    """An iptables-restore --noflush input for the nat table, in kube-proxy's layout."""
    chains = ["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-NODEPORTS", "KUBE-MARK-MASQ"]
    rules: list[str] = []
    svc_rules: list[str] = []
    np_rules: list[str] = []
    for s in services:
        chains.append(s.svc_chain)
        if s.node_port:
            chains.append(s.ext_chain)
        for ep in s.endpoints:
            chains.append(s.sep_chain(ep))
        p = s.protocol
        svc_rules.append(f'-A KUBE-SERVICES -m comment --comment {_q(s.port_key + " cluster IP")} '
                         f'-m {p} -p {p} -d {s.cluster_ip} --dport {s.port} -j {s.svc_chain}')
        if s.node_port:
            np_rules.append(f"-A KUBE-NODEPORTS -m comment --comment {_q(s.port_key)} -m {p} -p {p} "
                            f"--dport {s.node_port} -j {s.ext_chain}")
            rules.append(f'-A {s.ext_chain} -m comment --comment '
                         f'{_q("masquerade traffic for " + s.port_key + " external destinations")} '
                         f"-j KUBE-MARK-MASQ")
            rules.append(f"-A {s.ext_chain} -j {s.svc_chain}")
        rules.append(f'-A {s.svc_chain} -m comment --comment {_q(s.port_key + " cluster IP")} '
                     f"-m {p} -p {p} -d {s.cluster_ip} --dport {s.port} ! -s {cluster_cidr} -j KUBE-MARK-MASQ")
        for ep, prob in zip(s.endpoints, s.rule_probabilities()):
            stat = f" -m statistic --mode random --probability {prob:0.10f}" if prob is not None else ""
            rules.append(f'-A {s.svc_chain} -m comment --comment {_q(s.port_key + " -> " + ep.address)}'
                         f"{stat} -j {s.sep_chain(ep)}")
        for ep in s.endpoints:
            sep = s.sep_chain(ep)
            rules.append(f"-A {sep} -m comment --comment {_q(s.port_key)} -s {ep.ip} -j KUBE-MARK-MASQ")
            rules.append(f"-A {sep} -m comment --comment {_q(s.port_key)} -m {p} -p {p} "
                         f"-j DNAT --to-destination {ep.address}")
    lines = ["*nat", *[f":{c} - [0:0]" for c in chains]]
    lines += [
        '-I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-I OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-I POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully",
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
        *np_rules,
        *svc_rules,
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the '
        'last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
        *rules,
        "COMMIT",
    ]
    return "\n".join(lines) + "\n"


def load_nat_rules(node_ns: str, text: str) -> None:
    run(in_netns(node_ns, "iptables-restore", "--noflush"), input=text)
