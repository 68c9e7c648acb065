"""Service decoding for every kube-proxy mode: one entry point, the same ServiceRecords.

``decode_services(node, cluster)`` detects the mode (``proxy_mode.detect_mode``) and hands
the active rule set to its decoder:

- iptables → ``services_iptables.decode_iptables(node.iptables)`` (and ``node.ip6tables``)
- nftables → ``services_nft.decode_nft(node.nftables)``
- ipvs     → ``services_ipvs.decode_ipvs(node, cluster)``

When more than one rule set is present (a mode switch leaves the old rules behind), only
the active one is decoded; ``ProxyModeInfo.rule_sets_present`` and ``note`` say so.
Pure: no I/O.
"""

from __future__ import annotations

from typing import Optional

from labreport.analysis.model import MasqueradeInfo, ProxyModeInfo, ServiceRecord
from labreport.analysis.proxy_mode import detect_mode, nft_has_iptables_services
from labreport.analysis.services_cilium import decode_cilium
from labreport.analysis.services_iptables import decode_iptables
from labreport.analysis.services_ipvs import decode_ipvs
from labreport.analysis.services_nft import decode_nft
from labreport.snapshot import ClusterObjects, NodeSnapshot

DecodeResult = tuple[list[ServiceRecord], Optional[MasqueradeInfo]]


def _add_note(info: ProxyModeInfo, note: str) -> None:
    info.note = f"{info.note}; {note}" if info.note else note


def _decode_iptables(node: NodeSnapshot, info: ProxyModeInfo) -> DecodeResult:
    services: list[ServiceRecord] = []
    masq: Optional[MasqueradeInfo] = None
    for ipt in (node.iptables, node.ip6tables):
        if ipt is None:
            continue
        recs, m = decode_iptables(ipt)
        services.extend(recs)
        masq = masq or m
    if node.iptables is None and node.ip6tables is None:
        _add_note(info, "mode is iptables but no iptables-save output was collected"
                  + ("; kube-proxy's KUBE-* chains are visible in the nft listing (iptables-nft): "
                     "iptables-save output is needed to decode them" if nft_has_iptables_services(node.nftables) else ""))
    return services, masq


def _decode_nft(node: NodeSnapshot, info: ProxyModeInfo) -> DecodeResult:
    if node.nftables is None:
        _add_note(info, "mode is nftables but no nft ruleset was collected")
        return [], None
    return decode_nft(node.nftables)


def _decode_ipvs(node: NodeSnapshot, cluster: Optional[ClusterObjects], info: ProxyModeInfo) -> DecodeResult:
    if node.ipvs is None:
        _add_note(info, "mode is ipvs but no ipvsadm -Ln output was collected")
        return [], None
    return decode_ipvs(node, cluster)


def decode_services(
    node: NodeSnapshot, cluster: Optional[ClusterObjects] = None
) -> tuple[ProxyModeInfo, list[ServiceRecord], Optional[MasqueradeInfo]]:
    """(mode info, service records, masquerade info) for one node, in the mode in use."""
    info = detect_mode(node, cluster)
    if info.mode == "iptables":
        services, masq = _decode_iptables(node, info)
    elif info.mode == "nftables":
        services, masq = _decode_nft(node, info)
    elif info.mode == "ipvs":
        services, masq = _decode_ipvs(node, cluster, info)
    else:
        services, masq = [], None
    mode = info.mode
    for rec in services:
        if rec.mode != mode:  # (a decoder's records are of its mode already: no 10,000 pydantic assignments)
            rec.mode = mode
    if node.cilium is not None:  # Cilium's own service table (kube-proxy replacement), when imported
        services = services + decode_cilium(node.cilium, cluster)
        if info.mode in ("unknown", "none"):
            info.mode = "cilium"
            info.detected_from = f"Cilium's service table ({node.cilium.source})"
    return info, services, masq
