"""The parser registry: one module per command output, listed explicitly here.

``get(name)`` returns the module (with ``INFO`` and ``parse``); ``detect(text)`` picks the
best parser for a pasted file. Live collection and ``labreport import`` both go through
these modules, so a pasted output and a collected one give the same records.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from labreport.errors import ParseError

# name -> module path. Keep sorted by the order detection should prefer on ties.
PARSERS: dict[str, str] = {
    "ps": "labreport.parsers.ps",
    "docker-ps": "labreport.parsers.docker_ps",
    "docker-inspect": "labreport.parsers.docker_inspect",
    "crictl-ps": "labreport.parsers.crictl_ps",
    "crictl-pods": "labreport.parsers.crictl_pods",
    "ctr-containers": "labreport.parsers.ctr_containers",  # ctr -n k8s.io c ls (shows pause sandboxes)
    "ip-addr": "labreport.parsers.ip_addr",  # ip link / ip addr, text and -j
    "ip-route": "labreport.parsers.ip_route",
    "ip-rule": "labreport.parsers.ip_rule",  # ip rule / ip -6 rule / ip -j rule
    "iptables-save": "labreport.parsers.iptables_save",  # iptables-save and iptables -S
    "kubectl": "labreport.parsers.kubectl",  # kubectl get -o json|yaml
    "nft": "labreport.parsers.nft",  # nft list ruleset, text and -j
    "ipvsadm": "labreport.parsers.ipvsadm",
    "conntrack": "labreport.parsers.conntrack",  # conntrack -L [-o extended], /proc/net/nf_conntrack
    "cilium-service-list": "labreport.parsers.cilium_service",  # cilium-dbg service list (import)
    "cilium-bpf-lb-list": "labreport.parsers.cilium_lb",  # cilium-dbg bpf lb list (import)
    "kubectl-get": "labreport.parsers.kubectl_get",  # kubectl get tables (default, -o wide, --watch)
    "kubectl-describe": "labreport.parsers.kubectl_describe",  # kubectl describe pod|svc|node
    "sysctl": "labreport.parsers.sysctl",
    "lsmod": "labreport.parsers.lsmod",
    "kubeadm": "labreport.parsers.kubeadm",  # kubeadm init/join output (token redacted)
}


def names() -> list[str]:
    return list(PARSERS)


def get(name: str) -> ModuleType:
    try:
        path = PARSERS[name]
    except KeyError:
        raise ParseError(f"no parser named {name!r}; known: {', '.join(PARSERS)}") from None
    return importlib.import_module(path)


def load_all() -> dict[str, ModuleType]:
    """Every registered parser, imported (an ImportError is a bug of ours: it raises)."""
    return {name: importlib.import_module(path) for name, path in PARSERS.items()}


def detect(text: str, candidates: list[str] | None = None) -> str:
    """Name of the parser most confident it reads ``text``; ParseError when none is."""
    best, best_score = None, 0.0
    for name, mod in load_all().items():
        if candidates and name not in candidates:
            continue
        try:
            score = float(mod.INFO.detect(text))
        except Exception:  # a detector must never break detection
            score = 0.0
        if score > best_score:
            best, best_score = name, score
    if best is None or best_score < 0.2:
        raise ParseError("cannot tell which command printed this; name it explicitly (e.g. --ps FILE)")
    return best
