"""The one service matcher: which Service ports a user's word names.

A word matches a :class:`ServiceRecord` when it is its port name (``ns/svc:port``), its
service (``ns/svc`` or ``svc``), its cluster IP, ``clusterIP:port``, an external or load
balancer IP (``IP`` or ``IP:port``), ``NODEPORT``-style ``:nodePort`` forms are left to the
callers, or the IP (``IP`` / ``IP:port``) of one of its endpoints (a pod IP). Used by
``analyze --service``, ``render --path`` and ``trace``. Pure.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # annotations only: analysis.model imports observed, which traces
    from labreport.analysis.model import ServiceRecord



def _split(addr: str) -> tuple[str, str]:
    a = addr.strip()
    if a.startswith("["):
        host, _, rest = a[1:].partition("]")
        return host, rest.lstrip(":")
    if a.count(":") == 1:
        host, port = a.split(":")
        return host, port
    return a, ""


def names_of(rec: ServiceRecord) -> set[str]:
    """Every word that names this service port (endpoint IPs excluded)."""
    names = {rec.name}
    base = rec.name.split(":", 1)[0]
    names.add(base)
    if "/" in base:
        names.add(base.split("/", 1)[1])
    if rec.service:
        names.add(rec.service)
        if rec.namespace:
            names.add(f"{rec.namespace}/{rec.service}")
            if rec.port_name:
                names.add(f"{rec.namespace}/{rec.service}:{rec.port_name}")
            if rec.port:
                names.add(f"{rec.namespace}/{rec.service}:{rec.port}")
    elif "/" in base and rec.port:
        names.add(f"{base}:{rec.port}")
    for ip in [rec.cluster_ip, *rec.external_ips, *rec.load_balancer_ips]:
        if ip:
            names.add(ip)
            if rec.port:
                names.add(f"{ip}:{rec.port}" if ":" not in ip else f"[{ip}]:{rec.port}")
    return names


def matches(rec: ServiceRecord, wanted: str) -> bool:
    w = wanted.strip()
    if not w:
        return False
    if w in names_of(rec):
        return True
    host, port = _split(w)
    for ep in rec.endpoints or ():
        eh, ep_port = _split(ep.address)
        if eh == host and (not port or port == ep_port):
            return True
    return False


def match_services(records: Iterable[ServiceRecord], wanted: str) -> list[ServiceRecord]:
    """The records the word names, in order; an exact port name first narrows to that one."""
    recs = list(records)
    w = wanted.strip()
    exact = [r for r in recs if r.name == w]
    if exact:
        return exact
    return [r for r in recs if matches(r, w)]


def closest(records: Iterable[ServiceRecord], wanted: str, n: int = 5) -> list[str]:
    """The names nearest to a word that matched nothing (for the error message)."""
    pool: dict[str, None] = {}
    for r in records:
        pool.setdefault(r.name, None)
        if r.service and r.namespace:
            pool.setdefault(f"{r.namespace}/{r.service}", None)
    return difflib.get_close_matches(wanted.strip(), list(pool), n=n, cutoff=0.5)
