"""An object's manifest as applied (lab questions Q4, Q7, Q10).

``kubectl apply`` stores what the user applied in the annotation
``kubectl.kubernetes.io/last-applied-configuration`` (JSON). When it is there, that is the
manifest. Otherwise (``kubectl create``, server-side apply, objects made by controllers)
the best we can show is the object cleaned of what the server added: ``status``, and in
``metadata`` uid, resourceVersion, generation, creationTimestamp, managedFields,
selfLink, ownerReferences and kubectl's own annotations. Defaults the API server filled
into ``spec`` cannot be told apart from what the user wrote, so a cleaned manifest says so
(``manifest_source`` returns "cleaned").

Pure: no I/O.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Literal

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

ManifestSource = Literal["last-applied", "cleaned"]

_SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "ownerReferences",
    "generateName",
)
_SERVER_ANNOTATIONS = (
    LAST_APPLIED,
    "deployment.kubernetes.io/revision",
    "deprecated.daemonset.template.generation",
    "endpoints.kubernetes.io/last-change-trigger-time",
)


def _last_applied(obj: dict[str, Any]) -> dict[str, Any] | None:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(LAST_APPLIED)
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def cleaned_object(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` without status and the metadata the server added."""
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for key in _SERVER_METADATA:
            meta.pop(key, None)
        ann = meta.get("annotations")
        if isinstance(ann, dict):
            for key in _SERVER_ANNOTATIONS:
                ann.pop(key, None)
            if not ann:
                meta.pop("annotations", None)
    return out


def manifest_source(obj: dict[str, Any]) -> ManifestSource:
    return "last-applied" if _last_applied(obj) is not None else "cleaned"


def applied_manifest(obj: dict[str, Any]) -> dict[str, Any]:
    """The manifest as applied: the last-applied-configuration annotation when present,
    else the object cleaned of status and server-set metadata."""
    applied = _last_applied(obj)
    if applied is not None:
        return applied
    return cleaned_object(obj)


def manifest_entry(obj: dict[str, Any]) -> dict[str, Any]:
    """The record kept in ``ClusterObjects.manifests`` for one object."""
    meta = obj.get("metadata") or {}
    return {
        "kind": obj.get("kind"),
        "apiVersion": obj.get("apiVersion"),
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "source": manifest_source(obj),
        "manifest": applied_manifest(obj),
    }
