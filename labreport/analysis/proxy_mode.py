"""Which mode kube-proxy runs in on a node, and which rule sets are present.

Sources, most authoritative first:

1. the running kube-proxy process's ``--proxy-mode`` flag (``ps`` output);
2. ``NodeInfo.kube_proxy_mode`` (a collector read kube-proxy's config on the node);
3. kube-proxy's ConfigMap (``kube-system/kube-proxy``, key ``config.conf``, ``mode:``);
   an empty ``mode: ""`` means the platform default, iptables on Linux;
4. otherwise the rules themselves: an ``ip``/``ip6`` table ``kube-proxy`` with
   ``service-…`` chains (nftables), ``KUBE-SERVICES`` with ``KUBE-SVC-…`` jumps
   (iptables), IPVS virtual servers / a ``kube-ipvs0`` link / ``KUBE-SERVICES`` matching
   the ``KUBE-CLUSTER-IP`` ipset (ipvs).

After a mode switch a node can carry two rule sets at once (kube-proxy cleans up the
other mode's rules only when it starts in the new mode, and not always). Then
``rule_sets_present`` lists them all and ``note`` says which one is decoded and why.

Pure functions: no I/O.
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Optional

from labreport.analysis.model import ProxyModeInfo
from labreport.snapshot import ClusterObjects, Iptables, NftRuleset, NftVerdict, NodeSnapshot

KNOWN_MODES: tuple[str, ...] = ("iptables", "nftables", "ipvs")

_MODE_YAML_RE = re.compile(r"""^mode:\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z]*))\s*(?:#.*)?$""", re.M)


def normalize_mode(value: Optional[str]) -> Optional[str]:
    """kube-proxy's spelling of a mode → ours; "" (the default) → "iptables"; unknown → None."""
    if value is None:
        return None
    v = value.strip().strip("'\"").lower()
    if v == "":
        return "iptables"  # kube-proxy's default on Linux
    if v in KNOWN_MODES:
        return v
    if v in ("nft", "nf_tables"):
        return "nftables"
    return None


# --------------------------------------------------------------------------- configured mode


def mode_from_process(node: NodeSnapshot) -> tuple[Optional[str], Optional[str]]:
    """(mode, raw flag value) from a kube-proxy process's ``--proxy-mode`` flag."""
    for proc in node.processes:
        cmd = proc.command or ""
        if "kube-proxy" not in cmd:
            continue
        try:
            argv = shlex.split(cmd)
        except ValueError:
            argv = cmd.split()
        if not argv or not any(a.rsplit("/", 1)[-1] == "kube-proxy" for a in argv[:2]):
            continue
        for i, arg in enumerate(argv):
            if arg.startswith("--proxy-mode="):
                raw = arg.split("=", 1)[1]
                return normalize_mode(raw), raw
            if arg == "--proxy-mode" and i + 1 < len(argv):
                raw = argv[i + 1]
                return normalize_mode(raw), raw
    return None, None


def _configmap_text(cm: dict[str, Any]) -> Optional[str]:
    data = cm.get("data") or {}
    if not isinstance(data, dict):
        return None
    for key in ("config.conf", "config.yaml", "kubeconfig.conf"):
        val = data.get(key)
        if isinstance(val, str) and "mode" in val:
            return val
    return None


def mode_from_configmap(cluster: Optional[ClusterObjects]) -> tuple[Optional[str], Optional[str]]:
    """(mode, raw value) from the kube-proxy ConfigMap's ``mode:``; (None, None) if absent."""
    if cluster is None:
        return None, None
    for cm in list(cluster.configmaps) + list(cluster.other):
        if not isinstance(cm, dict):
            continue
        meta = cm.get("metadata") or {}
        if cm.get("kind", "ConfigMap") != "ConfigMap" or meta.get("name") != "kube-proxy":
            continue
        text = _configmap_text(cm)
        if text is None:
            continue
        raw: Optional[str] = None
        try:
            import yaml

            doc = yaml.safe_load(text)
            if isinstance(doc, dict) and "mode" in doc:
                raw = "" if doc["mode"] is None else str(doc["mode"])
        except Exception:  # a hand-edited ConfigMap may not be valid YAML
            raw = None
        if raw is None:
            m = _MODE_YAML_RE.search(text)
            if m:
                raw = next((g for g in m.groups() if g is not None), "")
        if raw is not None:
            return normalize_mode(raw), raw
    return None, None


# --------------------------------------------------------------------------- rule sets


def nft_has_kube_proxy(nft: Optional[NftRuleset]) -> bool:
    """A ``kube-proxy`` table (ip/ip6/inet) with service chains or the service-ips map."""
    if nft is None:
        return False
    for table in nft.tables:
        if table.name != "kube-proxy" or table.family not in ("ip", "ip6", "inet"):
            continue
        for chain in table.chains:
            if chain.name.startswith("service-") or chain.name.startswith("endpoint-") or chain.name == "services":
                return True
        for s in table.sets:
            if s.name in ("service-ips", "service-nodeports"):
                return True
    return False


_KUBE_SERVICE_CHAIN = re.compile(r"KUBE-(SVC|FW|EXT|SVL|XLB)-")


def nft_has_iptables_services(nft: Optional[NftRuleset]) -> bool:
    """kube-proxy's iptables-mode chains seen through nft (iptables-nft keeps them in the
    nf_tables ``ip nat`` / ``ip6 nat`` tables): KUBE-SERVICES jumping to KUBE-SVC-…."""
    if nft is None:
        return False
    for table in nft.tables:
        if table.name != "nat" or table.family not in ("ip", "ip6"):
            continue
        for chain in table.chains:
            if chain.name == "KUBE-SERVICES":
                return any(isinstance(e, NftVerdict) and e.verdict in ("jump", "goto") and e.target is not None
                           and _KUBE_SERVICE_CHAIN.match(e.target) is not None
                           for r in chain.rules for e in r.expr)
    return False


def _chain_rules(ipt: Optional[Iptables], table: str, chain: str) -> list[str]:
    if ipt is None:
        return []
    t = ipt.tables.get(table)
    if t is None:
        return []
    c = t.chains.get(chain)
    if c is None:
        return []
    return [r.spec for r in c.rules]


def iptables_has_services(ipt: Optional[Iptables]) -> bool:
    """iptables mode: KUBE-SERVICES (nat) jumping to KUBE-SVC-/KUBE-FW-/KUBE-EXT- chains,
    or KUBE-SVC-/KUBE-SEP- chains existing at all."""
    if ipt is None:
        return False
    nat = ipt.tables.get("nat")
    if nat is None:
        return False
    for spec in _chain_rules(ipt, "nat", "KUBE-SERVICES"):
        if re.search(r"-j\s+KUBE-(SVC|FW|EXT|SVL|XLB)-", spec):
            return True
    return any(name.startswith(("KUBE-SVC-", "KUBE-SEP-")) for name in nat.chains)


def iptables_ipvs_traces(ipt: Optional[Iptables]) -> bool:
    """The few rules kube-proxy keeps in IPVS mode: KUBE-SERVICES matching its ipsets."""
    for spec in _chain_rules(ipt, "nat", "KUBE-SERVICES"):
        if "KUBE-CLUSTER-IP" in spec or "KUBE-LOAD-BALANCER" in spec:
            return True
    return False


def kube_ipvs0_present(node: NodeSnapshot) -> bool:
    ns = node.node_netns()
    spaces = [ns] if ns is not None else [n for n in node.netns if n.kind == "node"]
    return any(link.name == "kube-ipvs0" for space in spaces if space for link in space.links)


def ipvs_present(node: NodeSnapshot) -> bool:
    if node.ipvs is not None and node.ipvs.virtual_servers:
        return True
    return kube_ipvs0_present(node) or iptables_ipvs_traces(node.iptables)


def rule_sets_present(node: NodeSnapshot) -> list[str]:
    """Every kube-proxy rule set found on the node, in a stable order."""
    present: list[str] = []
    if (iptables_has_services(node.iptables) or iptables_has_services(node.ip6tables)
            or nft_has_iptables_services(node.nftables)):
        present.append("iptables")
    if nft_has_kube_proxy(node.nftables):
        present.append("nftables")
    if ipvs_present(node):
        present.append("ipvs")
    return present


def _rules_evidence(mode: str, node: NodeSnapshot) -> str:
    if mode == "nftables":
        return "rules: nft table 'kube-proxy' with service chains"
    if mode == "iptables":
        if not (iptables_has_services(node.iptables) or iptables_has_services(node.ip6tables)):
            return "rules: KUBE-SERVICES chain with KUBE-SVC jumps, seen in nft's ip nat table (iptables-nft)"
        return "rules: KUBE-SERVICES chain with KUBE-SVC jumps"
    parts = []
    if node.ipvs is not None and node.ipvs.virtual_servers:
        parts.append("IPVS virtual servers")
    if kube_ipvs0_present(node):
        parts.append("kube-ipvs0 link")
    if iptables_ipvs_traces(node.iptables):
        parts.append("KUBE-SERVICES matching the KUBE-CLUSTER-IP ipset")
    return "rules: " + ", ".join(parts or ["IPVS"])


def _collected_any(node: NodeSnapshot) -> bool:
    return any(x is not None for x in (node.iptables, node.ip6tables, node.nftables, node.ipvs))


def detect_mode(node: NodeSnapshot, cluster: Optional[ClusterObjects] = None) -> ProxyModeInfo:
    """The mode kube-proxy runs in on ``node``, where that came from, and the rule sets present."""
    present = rule_sets_present(node)

    configured: Optional[str] = None
    source = ""
    mode, raw = mode_from_process(node)
    if mode:
        configured, source = mode, f"--proxy-mode flag of the kube-proxy process ({raw})"
    elif raw is not None:
        source_note = f"kube-proxy's --proxy-mode={raw!r} is not a mode labreport knows"
        return ProxyModeInfo(mode="unknown", detected_from=source_note, rule_sets_present=present)  # type: ignore[arg-type]
    if configured is None and node.info.kube_proxy_mode is not None:
        m = normalize_mode(node.info.kube_proxy_mode)
        if m:
            configured, source = m, f"kube-proxy config on the node (mode: {node.info.kube_proxy_mode!r})"
    if configured is None:
        m, raw = mode_from_configmap(cluster)
        if m:
            shown = raw if raw else '"" (default: iptables)'
            configured, source = m, f"kube-proxy ConfigMap (mode: {shown})"

    notes: list[str] = []
    if configured is not None:
        chosen = configured
        if present and configured not in present:
            if len(present) == 1:
                chosen = present[0]
                notes.append(
                    f"configured mode is {configured} ({source}) but only {present[0]} rules exist on the node; "
                    f"decoding the {present[0]} rules (kube-proxy not restarted since the mode change?)"
                )
                source = f"{_rules_evidence(chosen, node)}; configured {configured} has no rules"
            else:
                notes.append(f"configured mode is {configured} ({source}) but its rules are absent")
        detected_from = source
    elif present:
        # No configuration known: guess from the rules. Prefer nftables over iptables and
        # ipvs over iptables: a stale iptables set is the usual leftover of a switch away.
        order = ["nftables", "ipvs", "iptables"]
        chosen = next(m for m in order if m in present)
        detected_from = _rules_evidence(chosen, node)
    else:
        chosen = "none" if _collected_any(node) else "unknown"
        detected_from = (
            "no kube-proxy rules in the collected iptables/nftables/IPVS state"
            if chosen == "none"
            else "nothing collected that tells (no kube-proxy process, config, or rules)"
        )

    if len(present) > 1:
        others = [m for m in present if m != chosen]
        notes.append(
            f"{len(present)} kube-proxy rule sets present at once ({', '.join(present)}), e.g. after a mode switch; "
            f"decoded only the {chosen} rules; the {', '.join(others)} rules are leftovers "
            f"and are not mixed in"
        )
    return ProxyModeInfo(
        mode=chosen,  # type: ignore[arg-type]
        detected_from=detected_from,
        rule_sets_present=present,  # type: ignore[arg-type]
        note="; ".join(notes) or None,
    )

