"""The collectors, listed explicitly (like the parser registry).

``COLLECTORS`` maps a name to ``module:Class``. :func:`load_all` imports and instantiates
them. Every module listed is part of labreport: one that does not import is a bug and
raises (a collector whose *node* lacks something says so through its declared needs, which
``labreport doctor`` and the plan report). Order matters only for display; dependencies
are declared by each collector (``after``).
"""

from __future__ import annotations

import importlib
from typing import Optional

from collectors.base import Collector

COLLECTORS: dict[str, str] = {
    "processes": "collectors.processes:ProcessesCollector",
    "sysinfo": "collectors.sysinfo:SysinfoCollector",
    "cri": "collectors.cri:CriCollector",
    "docker": "collectors.docker_runtime:DockerCollector",
    "netlink": "collectors.netlink:NetlinkCollector",
    "iptables": "collectors.iptables:IptablesCollector",
    "nftables": "collectors.nftables:NftablesCollector",
    "ipvs": "collectors.ipvs:IpvsCollector",
    "conntrack": "collectors.conntrack:ConntrackCollector",
}


def load(name: str) -> Collector:
    """Instantiate one collector; LookupError for an unknown name or a module without
    that class, ImportError (a bug of ours) for a module that does not import."""
    try:
        spec = COLLECTORS[name]
    except KeyError:
        raise LookupError(f"no collector named {name!r}; known: {', '.join(COLLECTORS)}") from None
    mod_name, cls_name = spec.split(":")
    cls = getattr(importlib.import_module(mod_name), cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Collector)):
        raise LookupError(f"{mod_name} defines no Collector class {cls_name}")
    return cls()


def load_all(names: Optional[list[str]] = None) -> list[Collector]:
    """The collectors named (default: all), in registry order of the names given."""
    return [load(name) for name in names or list(COLLECTORS)]


def names() -> list[str]:
    return list(COLLECTORS)
