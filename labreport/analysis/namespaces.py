"""The one set of system namespaces: where Kubernetes, the CNI plugins and their operators
run their own pods, services and objects. Everything else is the user's (the lab's pods,
services and manifests); so is ``default`` — except its ``kubernetes`` service (the API
server's own). Used by the path (which service to trace by default), the workload views,
the report's service and manifest sections and the diagram's pod order."""

from __future__ import annotations

from typing import Optional

SYSTEM_NAMESPACES: frozenset[str] = frozenset({
    "kube-system", "kube-public", "kube-node-lease",  # Kubernetes' own
    "kube-flannel",  # flannel
    "calico-system", "calico-apiserver", "tigera-operator",  # Calico through the Tigera operator
})


def is_system_namespace(namespace: Optional[str]) -> bool:
    return namespace in SYSTEM_NAMESPACES


def is_system_service(namespace: Optional[str], name: Optional[str]) -> bool:
    """A service of the system: in a system namespace, or ``default/kubernetes``."""
    return namespace in SYSTEM_NAMESPACES or (namespace == "default" and name == "kubernetes")
