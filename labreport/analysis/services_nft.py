"""Decode kube-proxy's nftables mode (table ``ip kube-proxy`` / ``ip6 kube-proxy``) into
the same ServiceRecords as the iptables decoder.

What kube-proxy writes (pkg/proxy/nftables/proxier.go, v1.29–v1.33):

- ``services`` (jumped to from ``nat-prerouting`` / ``nat-output``) looks packets up in
  two verdict maps: ``service-ips`` (``ip . proto . port : goto <chain>``; ClusterIPs go to
  ``service-<base>`` — or ``local-<base>`` with internalTrafficPolicy Local — external
  and load-balancer IPs go to ``external-<base>``) and ``service-nodeports``
  (``proto . port : goto external-<base>``).
- ``<base>`` is ``<HASH>-<ns>/<svc>/<proto>/<portname>``; the service port's name is
  ``ns/svc:portname`` (``ns/svc`` when the port has no name).
- ``service-<base>`` / ``local-<base>``: an optional masquerade rule, for
  sessionAffinity ClientIP one ``ip saddr @affinity-<ep> goto endpoint-<ep>`` per
  endpoint, then ``numgen random mod N vmap { 0 : goto endpoint-…, … }``: each index is
  1/N, so an endpoint's share is (indices pointing at it) / N.
- ``endpoint-<HASH>-<ns>/<svc>/<proto>/<portname>__<ip>/<port>``: masquerade hairpin
  traffic, ``update @affinity-… { ip saddr }`` with affinity, ``dnat to ip:port``.
- ``external-<base>``: ``jump mark-for-masquerade`` + ``goto service-<base>``
  (externalTrafficPolicy Cluster) or the short-circuit rules (``fib saddr type local`` …)
  + ``goto local-<base>`` (Local).
- ``affinity-<ep>`` sets: ``flags dynamic,timeout; timeout 3h`` = sessionAffinityConfig
  timeoutSeconds; their live elements (``expires``) are the clients currently pinned.
- ``no-endpoint-services`` / ``no-endpoint-nodeports``: services without endpoints
  (``goto reject-chain``) or without local endpoints (``drop``), with the service port
  name as the element's comment.
- ``firewall-ips`` → ``firewall-<base>``: loadBalancerSourceRanges.
- ``mark-for-masquerade`` sets the masquerade bit; ``masquerading`` (from
  ``nat-postrouting``) masquerades marked packets.

Load-balancer IPs without source ranges look exactly like external IPs in these rules; they
are reported as ``external_ips``. Pure: no I/O.

``ServiceRecord.chains`` (the hops the report draws), keys present when they apply:
``table`` ("ip kube-proxy"), ``map`` ("service-ips"), ``svc`` (service-… chain), ``local``
(local-… chain), ``ext`` (external-… chain), ``fw`` (firewall-… chain), ``nodeport_map``
("service-nodeports"), ``numgen`` ("numgen random mod 3"), ``endpoints`` (the endpoint-…
chains, space-separated, in numgen order), ``affinity`` (the affinity set, or
"affinity-… (N sets)"), ``mark`` ("mark-for-masquerade"), ``no_endpoint_map`` /
``no_endpoint_nodeport_map``. Each ``Endpoint.chain`` is its endpoint-… chain;
``evidence`` holds the map elements and rules as nft printed them.
"""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from labreport.analysis.model import Endpoint, MasqueradeInfo, ServiceRecord
from labreport.perf import trusted_factory
from labreport.snapshot import (
    NftBinop, NftChain, NftElement, NftFib, NftMangle, NftMatch, NftNat, NftNumgen, NftRange, NftRule, NftRuleset, NftStatement,
    NftTable, NftVerdict, NftVmap,
)

KUBE_PROXY_TABLE = "kube-proxy"

# Records are built from values of the right types (10,000 services × 3 endpoints make
# 40,000 models): the trusted constructors skip re-validating them (labreport.perf). The
# fields in the models' own order (their __dict__'s and JSON's, as a validated model has
# them); those not given keep their defaults and are not marked set.
_new_endpoint: Callable[[str, Optional[float], str], Endpoint] = trusted_factory(
    Endpoint, tuple(Endpoint.model_fields), given=("address", "probability", "chain"))
_new_record: Callable[..., ServiceRecord] = trusted_factory(
    ServiceRecord, tuple(ServiceRecord.model_fields),
    given=("name", "namespace", "service", "port_name", "cluster_ip", "port", "protocol", "node_port", "external_ips",
           "load_balancer_ips", "external_traffic_policy", "internal_traffic_policy", "endpoints", "no_endpoints",
           "mode", "chains", "evidence"))
CHAIN_PREFIXES = ("service-", "local-", "external-", "firewall-", "endpoint-")


@dataclass
class ChainName:
    prefix: str  # "service-", "endpoint-" …
    base: str  # HASH-ns/svc/proto/port (without the endpoint part)
    namespace: Optional[str] = None
    service: Optional[str] = None
    protocol: Optional[str] = None
    port_name: Optional[str] = None
    endpoint: Optional[str] = None  # "10.244.1.5/80" for endpoint chains
    truncated: bool = False

    @property
    def service_port_name(self) -> Optional[str]:
        if self.namespace is None or self.service is None:
            return None
        base = f"{self.namespace}/{self.service}"
        return f"{base}:{self.port_name}" if self.port_name else base


_HASH_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def split_chain_name(name: str) -> Optional[ChainName]:
    """``service-ULMVA6XW-ns1/svc1/tcp/p80`` → its parts; None for other chains."""
    for prefix in CHAIN_PREFIXES:
        if name.startswith(prefix):
            rest = name[len(prefix) :]
            break
    else:
        return None
    if "/" not in rest:  # kube-proxy's own chains ("service-endpoints-check") have no slash
        return None
    truncated = rest.endswith("...")
    base, _, ep = rest.partition("__")  # Kubernetes names never hold "__"
    h, dash, path = base.partition("-")
    parts = path.split("/")
    if not (dash and len(h) == 8 and _HASH_CHARS.issuperset(h) and len(parts) == 4 and parts[2].isalpha()):
        return ChainName(prefix=prefix, base=base, truncated=truncated)
    ns, svc, proto, port = parts
    return ChainName(
        prefix=prefix, base=base, namespace=ns, service=svc, protocol=proto, port_name=port or None,
        endpoint=ep or None, truncated=truncated,
    )


def parse_service_port_name(name: str) -> tuple[Optional[str], Optional[str], Optional[str]]:
    """"ns/svc:port" → (ns, svc, port); "ns/svc" → (ns, svc, None)."""
    m = re.fullmatch(r"([^/\s]+)/([^:\s]+)(?::(\S*))?", name.strip())
    if not m:
        return None, None, None
    return m.group(1), m.group(2), (m.group(3) or None)


# --------------------------------------------------------------------------- statement helpers


def _target(verdict: Any) -> Optional[str]:
    if isinstance(verdict, NftVerdict) and verdict.verdict in ("goto", "jump"):
        return verdict.target
    return None


def _verdict_word(verdict: Any) -> str:
    if isinstance(verdict, NftVerdict):
        return f"{verdict.verdict} {verdict.target}" if verdict.target else verdict.verdict
    return str(verdict)


def _numgen_vmap(expr: list[NftStatement]) -> Optional[tuple[int, list[tuple[int, str]]]]:
    """(mod, [(index, endpoint chain)]) of a ``numgen random mod N vmap {…}`` rule."""
    for e in expr:
        if not (isinstance(e, NftVmap) and isinstance(e.key, NftNumgen)):
            continue
        pairs: list[tuple[int, str]] = []
        for entry in e.entries:
            t = _target(entry.value)
            if t is None:
                continue
            idx = entry.key
            if isinstance(idx, NftRange) and isinstance(idx.low, int) and isinstance(idx.high, int):  # "0-1 : goto x"
                pairs.extend((i, t) for i in range(idx.low, idx.high + 1))
            elif isinstance(idx, int):
                pairs.append((idx, t))
        return e.key.mod, pairs
    return None


def _affinity_goto(expr: list[NftStatement]) -> Optional[tuple[str, str]]:
    """(affinity set, endpoint chain) of ``ip saddr @affinity-… goto endpoint-…``."""
    aff = None
    for e in expr:
        if isinstance(e, NftMatch) and isinstance(e.right, str) and e.right.startswith("@affinity-"):
            aff = e.right[1:]
    if aff is None:
        return None
    for e in expr:
        t = _target(e)
        if t:
            return aff, t
    return None


def _dnat(expr: list[NftStatement]) -> Optional[str]:
    for e in expr:
        if isinstance(e, NftNat) and e.type == "dnat" and e.addr is not None:
            if not isinstance(e.addr, str):  # a map lookup, a concatenation …
                return None
            addr = e.addr
            if e.port is None:
                return addr
            return f"[{addr}]:{e.port}" if ":" in addr else f"{addr}:{e.port}"
    return None


# Readers of one rule: a rule read from its text in one of the shapes kube-proxy writes by
# the ten thousand is read from that shape (``NftRule.read_shape``), the answer its typed
# statements would give; any other rule from its typed statements (``NftRule.expr``, built
# and validated when first used). A 10,000-Service ruleset's ~40,000 rules read here are then
# neither built as statement models nor kept. A statement read from a rule's text is read
# from its keyword, so a text without the word holds none.


def _by_shape(rule: NftRule, word: str, shape: str, general: Callable[[list[NftStatement]], Any]) -> Any:
    """What ``general`` reads from the rule's typed statements, read from its text's shape
    where kube-proxy's shape holds it; None for a text rule without ``word``."""
    if rule.typed is None:
        if word not in rule.text:
            return None
        known, got = rule.read_shape(shape)
        if known:
            return got
    return general(rule.expr)


def _rule_numgen(rule: NftRule) -> Optional[tuple[int, list[tuple[int, str]]]]:
    return _by_shape(rule, "numgen", "numgen", _numgen_vmap)  # type: ignore[no-any-return]


def _rule_dnat(rule: NftRule) -> Optional[str]:
    return _by_shape(rule, "dnat", "dnat", _dnat)  # type: ignore[no-any-return]


def _chain_dnat(chain: NftChain, evidence: list[str]) -> Optional[str]:
    """The address of an endpoint chain's first dnat (its rule added to ``evidence``); None
    without one. ``_rule_dnat`` of each rule, its layers inlined (30,000 endpoint chains)."""
    for rule in chain.rules:
        text = rule.text
        if rule.typed is None:
            if "dnat" not in text:
                continue  # (the hairpin masquerade, the affinity update) no dnat in a text without the word
            known, a = rule.read_shape("dnat")
            if not known:
                a = _dnat(rule.expr)
        else:
            a = _dnat(rule.expr)
        if a:
            evidence.append(f"chain {chain.name}: {text}")
            return a  # type: ignore[no-any-return]
    return None


def _rule_affinity_goto(rule: NftRule) -> Optional[tuple[str, str]]:
    if rule.typed is None:
        if "affinity-" not in rule.text:
            return None
        known, refs = rule.read_shape("set_refs")
        if known:
            aff = next((r[1:] for r in reversed(refs) if r.startswith("@affinity-")), None)
            if aff is None:
                return None
            targets = rule.read_shape("targets")[1]
            return (aff, targets[0]) if targets else None
    return _affinity_goto(rule.expr)


def _rule_targets(rule: NftRule) -> list[str]:
    if rule.typed is None:
        if "goto" not in rule.text and "jump" not in rule.text:
            return []
        known, got = rule.read_shape("targets")
        if known:
            return got  # type: ignore[no-any-return]
    return [t for t in map(_target, rule.expr) if t]


def _rule_fib_saddr_local(rule: NftRule) -> bool:
    if rule.typed is None and "fib" not in rule.text:
        return False
    return _has_fib_saddr_local(rule.expr)


def _has_fib_saddr_local(expr: list[NftStatement]) -> bool:
    return any(isinstance(e, NftMatch) and isinstance(e.left, NftFib) and "saddr" in e.left.flags for e in expr)


def _gotos(chain: NftChain) -> list[str]:
    out = []
    for r in chain.rules:
        out.extend(_rule_targets(r))
    return out


def _mark_value(expr: list[NftStatement]) -> Optional[int]:
    for e in expr:
        if isinstance(e, NftMangle):
            val = e.value
            if isinstance(val, NftBinop) and val.op == "|" and isinstance(val.right, int):
                return val.right
            if isinstance(val, int):
                return val
    return None


# --------------------------------------------------------------------------- decoding


@dataclass
class _Acc:
    """What one service port collects while the maps and chains are walked."""

    base: Optional[str]
    name: Optional[str] = None
    namespace: Optional[str] = None
    service: Optional[str] = None
    port_name: Optional[str] = None
    protocol: Optional[str] = None
    cluster_ip: Optional[str] = None
    port: Optional[int] = None
    node_port: Optional[int] = None
    external_ips: list[str] = field(default_factory=list)
    lb_ips: list[str] = field(default_factory=list)
    internal_chain: Optional[str] = None
    no_endpoints: bool = False
    dropped_internal: bool = False
    chains: dict[str, str] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _TableDecoder:
    def __init__(self, table: NftTable):
        self.t = table
        self.chains: dict[str, NftChain] = {c.name: c for c in table.chains}
        self.sets = {s.name: s for s in table.sets}
        self.accs: dict[str, _Acc] = {}  # by base (or by name for chain-less services)
        self.cluster_ips = {str(e.key[0]) for e in self._elements("cluster-ips") if e.key}
        self.fw_keys = {
            (str(e.key[0]), str(e.key[1]), str(e.key[2]))
            for e in self._elements("firewall-ips") if len(e.key) == 3
        }
        self.table_label = f"{table.family} {table.name}"

    def _elements(self, name: str) -> list[NftElement]:
        st = self.sets.get(name)
        return st.elements if st else []

    def acc_for_chain(self, chain_name: str, cn: Optional[ChainName] = None) -> Optional[_Acc]:
        """The service port a chain belongs to (``cn``: the chain's name, split)."""
        cn = cn or split_chain_name(chain_name)
        if cn is None:
            return None
        acc = self.accs.get(cn.base)
        if acc is None:
            acc = _Acc(base=cn.base)
            acc.name = cn.service_port_name
            acc.namespace, acc.service, acc.port_name, acc.protocol = cn.namespace, cn.service, cn.port_name, cn.protocol
            if cn.truncated:
                acc.warnings.append(f"chain name truncated by kube-proxy: {chain_name}")
            self.accs[cn.base] = acc
        return acc

    def acc_for_name(self, name: str) -> _Acc:
        for acc in self.accs.values():
            if acc.name == name:
                return acc
        ns, svc, port = parse_service_port_name(name)
        acc = _Acc(base=None, name=name, namespace=ns, service=svc, port_name=port)
        self.accs["name:" + name] = acc
        return acc

    # -- maps

    def read_service_ips(self) -> None:
        for el in self._elements("service-ips"):
            key = el.key
            target = _target(el.value)
            if len(key) != 3 or target is None:
                continue
            ip, proto, port = str(key[0]), str(key[1]), key[2]
            cn = split_chain_name(target)
            acc = self.acc_for_chain(target, cn) if cn is not None else None
            if acc is None or cn is None:
                continue
            acc.protocol = acc.protocol or proto
            acc.port = int(str(port)) if isinstance(port, int) or str(port).isdigit() else acc.port
            acc.evidence.append(f"map service-ips: {el.text}")
            if cn.prefix in ("service-", "local-"):
                if acc.cluster_ip and acc.cluster_ip != ip:
                    acc.warnings.append(f"two ClusterIPs for one service port: {acc.cluster_ip}, {ip}")
                acc.cluster_ip = acc.cluster_ip or ip
                acc.internal_chain = target
                acc.chains["map"] = "service-ips"
                acc.chains["svc" if cn.prefix == "service-" else "local"] = target
            elif cn.prefix == "external-":
                if (ip, proto, str(port)) in self.fw_keys:
                    acc.lb_ips.append(ip)
                else:
                    acc.external_ips.append(ip)
                acc.chains["ext"] = target
                acc.chains.setdefault("map", "service-ips")

    def read_nodeports(self) -> None:
        for el in self._elements("service-nodeports"):
            key = el.key
            target = _target(el.value)
            if len(key) != 2 or target is None:
                continue
            acc = self.acc_for_chain(target)
            if acc is None:
                continue
            acc.protocol = acc.protocol or str(key[0])
            acc.node_port = int(str(key[1])) if str(key[1]).isdigit() else None
            acc.chains["nodeport_map"] = "service-nodeports"
            acc.chains["ext"] = target
            acc.evidence.append(f"map service-nodeports: {el.text}")

    def read_no_endpoints(self) -> None:
        for el in self._elements("no-endpoint-services"):
            key = el.key
            if len(key) != 3:
                continue
            ip, proto, port = str(key[0]), str(key[1]), key[2]
            verdict = _verdict_word(el.value)
            name = el.comment or f"{ip}:{port}/{proto}"
            acc = self.acc_for_name(name)
            acc.protocol = acc.protocol or proto
            acc.port = acc.port or (int(str(port)) if str(port).isdigit() else None)
            is_cluster_ip = ip in self.cluster_ips if self.cluster_ips else acc.cluster_ip in (None, ip)
            if is_cluster_ip:
                acc.cluster_ip = acc.cluster_ip or ip
                if "reject" in verdict:
                    acc.no_endpoints = True
                else:
                    acc.dropped_internal = True
            elif ip not in acc.external_ips:
                acc.external_ips.append(ip)
            acc.chains["no_endpoint_map"] = "no-endpoint-services"
            acc.evidence.append(f"map no-endpoint-services: {el.text}")
        for el in self._elements("no-endpoint-nodeports"):
            key = el.key
            if len(key) != 2:
                continue
            name = el.comment or f"nodeport {key[1]}/{key[0]}"
            acc = self.acc_for_name(name)
            acc.protocol = acc.protocol or str(key[0])
            acc.node_port = acc.node_port or (int(str(key[1])) if str(key[1]).isdigit() else None)
            acc.chains["no_endpoint_nodeport_map"] = "no-endpoint-nodeports"
            acc.evidence.append(f"map no-endpoint-nodeports: {el.text}")

    # -- chains

    def endpoints_of(self, acc: _Acc, policy_chain: str) -> tuple[Optional[list[Endpoint]], Optional[int], bool]:
        """(endpoints with shares, affinity timeout, affinity on) of a service-/local- chain."""
        chain = self.chains.get(policy_chain)
        if chain is None:
            acc.warnings.append(f"chain {policy_chain} is not in the input; endpoints unknown")
            return None, None, False
        order: list[str] = []
        counts: dict[str, int] = {}
        mod: Optional[int] = None
        affinity_sets: dict[str, str] = {}
        for rule in chain.rules:
            if rule.typed is None and "numgen" not in rule.text and "affinity-" not in rule.text:
                continue  # (the masquerade rule) neither reader finds anything in a text without its word
            ng = _rule_numgen(rule)
            if ng is not None:
                mod, pairs = ng
                acc.chains["numgen"] = f"numgen random mod {mod}"
                acc.evidence.append(f"chain {policy_chain}: {rule.text}")
                for _, ep_chain in sorted(pairs):
                    if ep_chain not in counts:
                        order.append(ep_chain)
                        counts[ep_chain] = 0
                    counts[ep_chain] += 1
                if len(pairs) != mod:
                    acc.warnings.append(f"numgen mod {mod} but {len(pairs)} map entries in {policy_chain}")
                continue
            ag = _rule_affinity_goto(rule)
            if ag is not None:
                affinity_sets[ag[1]] = ag[0]
                continue
        if mod is None:
            # a single endpoint reached by a plain goto (not what kube-proxy writes, but
            # seen in hand-written labs): share 1
            targets = [t for t in _gotos(chain) if t.startswith("endpoint-") and t not in affinity_sets]
            if len(targets) == 1:
                order, counts, mod = targets, {targets[0]: 1}, 1
            else:
                acc.warnings.append(f"no numgen load-balancing rule in {policy_chain}")
                return [], None, bool(affinity_sets)
        eps: list[Endpoint] = []
        chains, evidence = self.chains, acc.evidence
        for ep_chain in order:
            ch = chains.get(ep_chain)
            address = _chain_dnat(ch, evidence) if ch is not None else None
            if address is None:
                cn = split_chain_name(ep_chain)
                if cn and cn.endpoint and "/" in cn.endpoint:
                    ip, port = cn.endpoint.rsplit("/", 1)
                    address = f"{ip}:{port}"
                acc.warnings.append(
                    f"endpoint chain {ep_chain} " + ("has no dnat rule" if ch is not None else "is not in the input")
                    + (f"; address {address} taken from its name" if address else "")
                )
            eps.append(_new_endpoint(address or ep_chain, counts[ep_chain] / mod if mod else None, ep_chain))
        timeout: Optional[int] = None
        for set_name in affinity_sets.values():
            st = self.sets.get(set_name)
            if st is not None and st.timeout is not None:
                timeout = int(st.timeout)
                acc.chains["affinity"] = set_name if len(affinity_sets) == 1 else f"affinity-… ({len(affinity_sets)} sets)"
                break
        acc.chains["endpoints"] = " ".join(order)
        return eps, timeout, bool(affinity_sets)

    def decode(self) -> list[ServiceRecord]:
        self.read_service_ips()
        self.read_nodeports()
        self.read_no_endpoints()
        return [self.record(acc) for acc in self.accs.values()]

    def record(self, acc: _Acc) -> ServiceRecord:
        """The ServiceRecord of one service port: its policies, endpoints and chains read."""
        chains = self.chains
        etp: Optional[str] = None
        itp: Optional[str] = None
        endpoints: Optional[list[Endpoint]] = None
        affinity = False
        timeout: Optional[int] = None
        ext = acc.chains.get("ext")
        base = acc.base
        local_chain = f"local-{base}" if base else None
        svc_chain = f"service-{base}" if base else None
        if base and f"firewall-{base}" in chains:
            acc.chains["fw"] = f"firewall-{base}"
        ext_chain = chains.get(ext) if ext else None
        if ext_chain is not None:
            ext_rules = ext_chain.rules
            acc.evidence.extend(f"chain {ext}: {r.text}" for r in ext_rules)
            is_local = any(_rule_fib_saddr_local(r) for r in ext_rules) or any(
                t.startswith("local-") for t in _gotos(ext_chain)
            )
            etp = "Local" if is_local else "Cluster"
        elif ext:
            acc.warnings.append(f"chain {ext} is not in the input")
        if acc.internal_chain and acc.internal_chain.startswith("local-"):
            itp = "Local"
        if acc.dropped_internal:
            itp = "Local"
            acc.warnings.append("internalTrafficPolicy Local and no endpoint on this node: ClusterIP traffic is dropped")
        # endpoints: the cluster-policy chain lists every endpoint; the local one this node's
        policy = svc_chain if svc_chain in chains else acc.internal_chain
        if policy is None and ext_chain is not None:
            policy = next((t for t in _gotos(ext_chain) if t.startswith(("service-", "local-"))), None)
        if acc.no_endpoints:
            endpoints = []
        elif policy is not None:
            endpoints, timeout, affinity = self.endpoints_of(acc, policy)
            if policy.startswith("service-"):
                acc.chains.setdefault("svc", policy)
            if endpoints is not None and etp == "Local":
                local = chains.get(local_chain) if local_chain else None
                if local is not None:
                    acc.chains["local"] = local.name
                    local_targets = set(_gotos(local)) | {
                        t for r in local.rules for _, t in (_rule_numgen(r) or (0, []))[1]
                    }
                    for ep in endpoints:
                        ep.local = ep.chain in local_targets
                else:
                    for ep in endpoints:
                        ep.local = False
        if base is None and not acc.no_endpoints and endpoints is None:
            endpoints = []
        if chains.get("mark-for-masquerade") is not None:
            acc.chains["mark"] = "mark-for-masquerade"
        acc.chains["table"] = self.table_label
        rec = _new_record(
            acc.name or (f"{acc.cluster_ip}:{acc.port}" if acc.cluster_ip else (acc.base or "?")),
            acc.namespace, acc.service, acc.port_name, acc.cluster_ip, acc.port, acc.protocol or "tcp",
            acc.node_port, acc.external_ips, acc.lb_ips, etp, itp, endpoints, acc.no_endpoints, "nftables",
            acc.chains, acc.evidence,
        )
        # the defaults (False, None, []) are not set: a record with all 20 of its fields set
        # marks them in a set of 2 KB (10,000 services: 15 MB more)
        if affinity:
            rec.session_affinity = affinity
        if timeout is not None:
            rec.affinity_timeout_s = timeout
        if acc.warnings:
            rec.warnings = acc.warnings
        return rec

    def masquerade(self) -> Optional[MasqueradeInfo]:
        mark_chain = self.chains.get("mark-for-masquerade")
        masq_chain = self.chains.get("masquerading")
        if mark_chain is None and masq_chain is None:
            return None
        info = MasqueradeInfo(
            mark_chain="mark-for-masquerade" if mark_chain else None,
            postrouting_chain="masquerading" if masq_chain else None,
        )
        if mark_chain:
            for r in mark_chain.rules:
                info.rules.append(f"chain mark-for-masquerade: {r.text}")
                bits = _mark_value(r.expr)
                if bits is not None and info.mark is None:
                    info.mark = f"{bits:#x}/{bits:#x}"
        if masq_chain:
            info.rules.extend(f"chain masquerading: {r.text}" for r in masq_chain.rules)
        return info


def kube_proxy_tables(ruleset: Optional[NftRuleset]) -> list[NftTable]:
    """The ``kube-proxy`` tables of a ruleset."""
    if ruleset is None:
        return []
    return [t for t in ruleset.tables if t.name == KUBE_PROXY_TABLE and t.family in ("ip", "ip6", "inet")]


def decode_nft(ruleset: Optional[NftRuleset]) -> tuple[list[ServiceRecord], Optional[MasqueradeInfo]]:
    """ServiceRecords (mode "nftables") and masquerade info from kube-proxy's nft tables."""
    enabled = gc.isenabled()
    gc.disable()  # tens of thousands of records that all stay alive: no cyclic GC passes
    try:
        return _decode_nft(ruleset)
    finally:
        if enabled:
            gc.enable()


def _decode_nft(ruleset: Optional[NftRuleset]) -> tuple[list[ServiceRecord], Optional[MasqueradeInfo]]:
    records: list[ServiceRecord] = []
    masq: Optional[MasqueradeInfo] = None
    for table in kube_proxy_tables(ruleset):
        dec = _TableDecoder(table)
        records.extend(dec.decode())
        masq = masq or dec.masquerade()
    records.sort(key=lambda r: (r.name, r.protocol, r.port or 0, r.cluster_ip or ""))
    return records, masq
