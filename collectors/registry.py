"""The collectors, listed explicitly (like the parser registry).

``COLLECTORS`` maps a name to ``module:Class``. :func:`load_all` imports them; a module
that does not exist yet or fails to import is skipped with a note (returned, shown by
``labreport doctor`` and recorded as a CollectorStatus by collect_local), never an abort.
Order matters only for display; dependencies are declared by each collector (``after``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
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

# modules that may legitimately be absent (written by another owner, or optional)
OPTIONAL = {"nftables", "ipvs", "conntrack"}


@dataclass
class Skipped:
    name: str
    reason: str
    optional: bool


def _find_class(mod, cls_name: str) -> Optional[type]:
    cls = getattr(mod, cls_name, None)
    if isinstance(cls, type) and issubclass(cls, Collector):
        return cls
    # tolerate another class name: the single Collector subclass the module defines
    found = [v for v in vars(mod).values()
             if isinstance(v, type) and issubclass(v, Collector) and v is not Collector
             and v.__module__ == mod.__name__]
    return found[0] if len(found) == 1 else None


def load(name: str) -> Collector:
    """Instantiate one collector; raises ImportError/LookupError with a clear message."""
    try:
        spec = COLLECTORS[name]
    except KeyError:
        raise LookupError(f"no collector named {name!r}; known: {', '.join(COLLECTORS)}") from None
    mod_name, cls_name = spec.split(":")
    mod = importlib.import_module(mod_name)
    cls = _find_class(mod, cls_name)
    if cls is None:
        raise LookupError(f"{mod_name} defines no Collector class {cls_name}")
    return cls()


def load_all(names: Optional[list[str]] = None) -> tuple[list[Collector], list[Skipped]]:
    """The collectors that import, and the ones skipped (with why)."""
    found: list[Collector] = []
    skipped: list[Skipped] = []
    for name in names or list(COLLECTORS):
        try:
            found.append(load(name))
        except ModuleNotFoundError as exc:
            mod_name = COLLECTORS.get(name, "").split(":")[0]
            if exc.name == mod_name:
                skipped.append(Skipped(name, f"collector module {mod_name} is not installed", name in OPTIONAL))
            else:
                skipped.append(Skipped(name, f"{mod_name} needs a Python module that is missing: {exc.name}"
                                       f" (pip install {exc.name})", name in OPTIONAL))
        except Exception as exc:  # a broken collector must not stop the others
            skipped.append(Skipped(name, f"cannot load: {type(exc).__name__}: {exc}", name in OPTIONAL))
    return found, skipped


def names() -> list[str]:
    return list(COLLECTORS)
