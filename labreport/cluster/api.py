"""The cluster's objects from the Kubernetes API (the ``kubernetes`` client).

``collect_cluster(kubeconfig=, context=, timeout=)`` finds the cluster the way kubectl
does — ``--kubeconfig``, else ``KUBECONFIG``, else ``~/.kube/config``, else the in-cluster
service account — and lists nodes, pods, services, EndpointSlices (discovery.k8s.io/v1),
Endpoints, Deployments, ReplicaSets, HPAs (autoscaling/v2) and the kube-system ConfigMaps
``kube-proxy`` and ``kubeadm-config``. Each object is kept as the API returned it (the raw
JSON, read with ``_preload_content=False``); list items get back the ``apiVersion`` and
``kind`` that list responses leave out (as ``kubectl get -o json`` does). Each object's
manifest as applied goes to ``ClusterObjects.manifests`` (see manifests.py).

Never fetched: Secrets. Stored objects pass through ``redact.scrub`` (bearer tokens,
service-account JWTs, bootstrap tokens), and the server URL is kept without credentials.

No cluster reachable (no kubeconfig, connection refused, timeout, 401): the result is
``ClusterObjects(error="no cluster reachable: …")`` and collection goes on with the
node data. A single resource that cannot be listed (403 for HPAs, a missing ConfigMap)
is a warning, not a failure.
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlsplit, urlunsplit

from labreport.cluster.manifests import manifest_entry
from labreport.cluster.redact import scrub
from labreport.snapshot import ClusterObjects

# (ClusterObjects field, api class, method, apiVersion of the items, kind of the items)
LISTS: tuple[tuple[str, str, str, str, str], ...] = (
    ("nodes", "CoreV1Api", "list_node", "v1", "Node"),
    ("pods", "CoreV1Api", "list_pod_for_all_namespaces", "v1", "Pod"),
    ("services", "CoreV1Api", "list_service_for_all_namespaces", "v1", "Service"),
    ("endpointslices", "DiscoveryV1Api", "list_endpoint_slice_for_all_namespaces", "discovery.k8s.io/v1", "EndpointSlice"),
    ("endpoints", "CoreV1Api", "list_endpoints_for_all_namespaces", "v1", "Endpoints"),
    ("deployments", "AppsV1Api", "list_deployment_for_all_namespaces", "apps/v1", "Deployment"),
    ("replicasets", "AppsV1Api", "list_replica_set_for_all_namespaces", "apps/v1", "ReplicaSet"),
    ("hpas", "AutoscalingV2Api", "list_horizontal_pod_autoscaler_for_all_namespaces", "autoscaling/v2", "HorizontalPodAutoscaler"),
)
CONFIGMAPS: tuple[tuple[str, str], ...] = (("kube-system", "kube-proxy"), ("kube-system", "kubeadm-config"))
# kinds whose applied manifest the report shows (Q4, Q7, Q10, HPA)
MANIFEST_KINDS = ("pods", "services", "deployments", "hpas")
PAGE = 500


class NoCluster(Exception):
    pass


_NoCluster = NoCluster


def _safe_server(url: Optional[str]) -> Optional[str]:
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username or parts.password:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


def load_client(kubeconfig: Optional[str] = None, context: Optional[str] = None) -> tuple[Any, str]:
    """(ApiClient, where the config came from), found as kubectl finds it, through the
    client's own loader: ``--kubeconfig FILE``, else ``KUBECONFIG`` (a path list, merged
    as kubectl merges it: the first file to set a value wins, contexts from every file),
    else ``~/.kube/config``, else the in-cluster service account. ``context`` picks a
    context from the merged config. Raises NoCluster with what to do."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    env = os.environ.get("KUBECONFIG")
    home = Path("~/.kube/config").expanduser()
    source: Optional[str] = None
    if kubeconfig:
        if not Path(kubeconfig).expanduser().exists():
            raise NoCluster(f"kubeconfig {kubeconfig} does not exist")
        source = str(Path(kubeconfig).expanduser())
    elif env:
        if not any(p and Path(p).expanduser().exists() for p in env.split(os.pathsep)):
            raise NoCluster(f"KUBECONFIG={env} names no existing file")
        source = env  # the client's KubeConfigMerger splits and merges the list
    elif home.exists():
        source = str(home)
    cfg = client.Configuration()
    if source is not None and context is None and source == env:
        context = _first_current_context(env)
    if source is not None:
        try:
            config.load_kube_config(config_file=source, context=context, client_configuration=cfg,  # type: ignore[no-untyped-call]
                                    persist_config=False)
        except ConfigException as exc:
            raise NoCluster(f"kubeconfig {source}: {exc}") from None
        except Exception as exc:  # malformed YAML, missing cert files …
            raise NoCluster(f"kubeconfig {source}: {type(exc).__name__}: {exc}") from None
        where = f"kubeconfig {source}" + (f", context {context}" if context else "")
    else:
        try:
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except ConfigException as exc:
            raise NoCluster(
                "no kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config) and not running in a cluster "
                f"({exc}); on a kubeadm master: sudo cp /etc/kubernetes/admin.conf ~/.kube/config"
            ) from None
        if context:
            raise NoCluster(f"--context {context}: there is no kubeconfig to take it from (in-cluster config)")
        where = "in-cluster service account"
    cfg.retries = 0  # one attempt per call: an unreachable API fails fast
    return client.ApiClient(cfg), where


_api_client = load_client


def _first_current_context(env: str) -> Optional[str]:
    """kubectl's rule for a KUBECONFIG list: the first file that sets current-context wins
    (the Python client's merger lets the last one win; we follow kubectl)."""
    import yaml

    for p in env.split(os.pathsep):
        path = Path(p).expanduser() if p else None
        if path is None or not path.is_file():
            continue
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
        except (OSError, yaml.YAMLError):
            continue
        current = doc.get("current-context") if isinstance(doc, dict) else None
        if isinstance(current, str) and current:
            return current
    return None


def _describe_error(exc: BaseException) -> str:
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        reason = exc.reason or ""
        msg = ""
        try:
            body = json.loads(exc.body) if exc.body else {}
            msg = body.get("message") or ""
        except (ValueError, TypeError, AttributeError):
            msg = ""
        return f"HTTP {exc.status} {reason}" + (f": {msg}" if msg else "")
    # urllib3 wraps the real cause (MaxRetryError.reason → NewConnectionError …)
    inner = getattr(exc, "reason", None)
    if isinstance(inner, BaseException):
        exc = inner
    text = str(exc)
    m = re.search(r"(\[Errno -?\d+\][^\"')]*|timed out[^\"')]*|Read timed out[^\"')]*)", text)
    if m:
        return m.group(1).strip()
    return f"{type(exc).__name__}: {text}"[:300]


def _call_json(fn: Callable[..., Any], timeout: float, **kwargs: Any) -> Any:
    resp = fn(_preload_content=False, _request_timeout=timeout, **kwargs)
    data = resp.data
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the API did not answer JSON: {exc}") from None


def _list_all(fn: Callable[..., Any], timeout: float, api_version: str, kind: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: Optional[str] = None
    while True:
        kwargs: dict[str, Any] = {"limit": PAGE}
        if token:
            kwargs["_continue"] = token
        page = _call_json(fn, timeout, **kwargs)
        for item in page.get("items") or []:
            if isinstance(item, dict):
                obj = {"apiVersion": item.get("apiVersion", api_version), "kind": item.get("kind", kind)}
                obj.update(item)
                items.append(obj)
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


def collect_cluster(*, kubeconfig: Optional[str] = None, context: Optional[str] = None,
                    timeout: float = 30.0) -> ClusterObjects:
    """The cluster's objects (see the module docstring). Never raises for an unreachable
    or misconfigured cluster: the result's ``error`` says why."""
    try:
        from kubernetes import client
    except ImportError as exc:
        return ClusterObjects(error=f"no cluster reachable: the kubernetes client is not installed ({exc})")
    try:
        api_client, where = _api_client(kubeconfig, context)
    except _NoCluster as exc:
        return ClusterObjects(error=f"no cluster reachable: {exc}")

    server = _safe_server(api_client.configuration.host)
    out = ClusterObjects(server=server)
    counter = [0]
    with api_client:
        try:
            out.version = scrub(_call_json(client.VersionApi(api_client).get_code, timeout), counter)
        except Exception as exc:
            return ClusterObjects(server=server, error=f"no cluster reachable: {server} ({where}): {_describe_error(exc)}")

        core = client.CoreV1Api(api_client)

        def list_kind(spec: tuple[str, str, str, str, str]) -> Any:
            _field, api_name, method, api_version, kind = spec
            fn = getattr(getattr(client, api_name)(api_client), method)
            return _list_all(fn, timeout, api_version, kind)

        def read_cm(ref: tuple[str, str]) -> Any:
            return _call_json(core.read_namespaced_config_map, timeout, name=ref[1], namespace=ref[0])

        # the lists are independent: ask for them at once (a few connections), keep the order
        with ThreadPoolExecutor(max_workers=4) as pool:
            lists = [pool.submit(list_kind, spec) for spec in LISTS]
            cms = [pool.submit(read_cm, ref) for ref in CONFIGMAPS]
        for (field, _a, _m, _v, kind), fut in zip(LISTS, lists):
            failure = fut.exception()
            if failure is not None:
                out.warnings.append(f"{kind} not listed: {_describe_error(failure)}")
                continue
            setattr(out, field, [scrub(obj, counter) for obj in fut.result()])
        for (namespace, name), fut in zip(CONFIGMAPS, cms):
            failure = fut.exception()
            if failure is not None:
                out.warnings.append(f"ConfigMap {namespace}/{name} not read: {_describe_error(failure)}")
                continue
            out.configmaps.append(scrub(fut.result(), counter))

    for field in MANIFEST_KINDS:
        out.manifests.extend(manifest_entry(obj) for obj in getattr(out, field))
    if counter[0]:
        out.warnings.append(f"{counter[0]} token(s) redacted from the stored objects")
    return out
