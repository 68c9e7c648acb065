"""Manifests a page break damaged (step 5b of ``import --report``).

A YAML manifest in a report may arrive as two code blocks joined back (see split.py), the
second one having lost its common indentation, or with keys that belong under
``metadata:`` pushed to the top level. ``repair_manifest`` tries, in order:

1. the text as it is;
2. keys only ``metadata`` can hold (``name``, ``labels``, ``namespace``, ``annotations``,
   ``generateName``) found at the top level under an empty ``metadata:``, moved under it;
3. the lines after the page break (``break_at``) shifted right by 1–12 spaces;
4. single lines moved back by a column or two (see ``snap_lines``), within a bounded search.

A result counts only when it is one Kubernetes object with a kind, a ``metadata.name`` and
(for workloads and Services) a ``spec``. Exactly one distinct result is a repair; none, or
several different ones, leave the manifest as damaged evidence: no object is made from
it (never a nameless "Pod None").
"""

from __future__ import annotations

import re
from typing import Any, Optional

import yaml

from pydantic import BaseModel

_META_KEYS = ("name", "labels", "namespace", "annotations", "generateName")
_NEEDS_SPEC = {"Pod", "Deployment", "Service", "ReplicaSet", "DaemonSet", "StatefulSet", "Job",
               "HorizontalPodAutoscaler", "PersistentVolumeClaim"}


class ManifestRepair(BaseModel):
    objects: list[dict[str, Any]] = []
    repaired: Optional[str] = None  # what was done, when something was
    code: Optional[str] = None  # yaml_meta | yaml_shift
    shift: Optional[int] = None
    damaged: Optional[str] = None  # why it could not be read, when it could not


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: the search parses often


def _load_all(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=_Loader))


def _load(text: str) -> Optional[list[dict[str, Any]]]:
    try:
        docs = [d for d in _load_all(text) if d is not None]
    except (yaml.YAMLError, RecursionError, ValueError, TypeError):
        return None
    if not docs or not all(isinstance(d, dict) for d in docs):
        return None
    return docs


def _valid(docs: Optional[list[dict[str, Any]]]) -> bool:
    if not docs:
        return False
    for d in docs:
        kind = d.get("kind")
        meta = d.get("metadata")
        if not isinstance(kind, str) or not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            return False
        if kind in _NEEDS_SPEC and not isinstance(d.get("spec"), dict) and kind != "PersistentVolumeClaim":
            return False
        if any(k in d for k in _META_KEYS):
            return False
    return True


def _move_meta_keys(text: str) -> Optional[str]:
    lines = text.split("\n")
    try:
        idx = next(i for i, ln in enumerate(lines) if ln.rstrip() == "metadata:")
    except StopIteration:
        return None
    out = lines[: idx + 1]
    i = idx + 1
    moved = False
    while i < len(lines):
        ln = lines[i]
        if not ln.strip():
            i += 1
            continue
        key = ln.split(":", 1)[0]
        if ln[:1] not in (" ", "\t") and key in _META_KEYS:
            out.append("  " + ln)
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i][:1] in (" ", "\t")):
                out.append(("  " + lines[i]) if lines[i].strip() else lines[i])
                i += 1
            moved = True
            continue
        break
    if not moved:
        return None
    out.extend(lines[i:])
    return "\n".join(out)


_ALIAS_RE = re.compile(r"(?:^|[\s:\[,-])\*[A-Za-z0-9_.-]+")
_ANCHOR_RE = re.compile(r"(?:^|[\s:\[,-])&[A-Za-z0-9_.-]+")
MAX_SEARCH_LINES = 300  # longer manifests are not searched line by line (time stays bounded)


def repair_manifest(text: str, break_at: Optional[int] = None) -> ManifestRepair:
    """``break_at``: index of the first line after the page break (None: no break known)."""
    if _ANCHOR_RE.search(text) and _ALIAS_RE.search(text):
        # aliases can make a small text expand to a huge object (a "billion laughs"); a
        # lab manifest has none
        return ManifestRepair(damaged="it uses YAML anchors and aliases (&name / *name), which are not read")
    docs = _load(text)
    if _valid(docs):
        return ManifestRepair(objects=docs or [])
    found: dict[str, tuple[list[dict[str, Any]], str, Optional[int]]] = {}
    moved = _move_meta_keys(text)
    if moved is not None:
        d = _load(moved)
        if _valid(d) and d is not None:
            found[repr(d)] = (d, "keys that belong under metadata: (name, labels) were at the top level; "
                                 "moved under metadata:", None)
    if break_at is not None and 0 < break_at < len(text.split("\n")):
        lines = text.split("\n")
        for shift in range(1, 13):
            cand = "\n".join(lines[:break_at] + [(" " * shift + ln) if ln.strip() else ln for ln in lines[break_at:]])
            d = _load(cand)
            if _valid(d) and d is not None:
                found.setdefault(repr(d), (d, f"the part after the page break had lost its indentation; "
                                              f"shifted right by {shift} spaces", shift))
    if len(found) == 1:
        d, how, by = next(iter(found.values()))
        return ManifestRepair(objects=d, repaired=how, code="yaml_shift" if by else "yaml_meta", shift=by)
    if not found and text.count("\n") <= MAX_SEARCH_LINES:
        results, moves = snap_lines(text, break_at)
        if len(results) == 1:
            return ManifestRepair(objects=results[0], code="yaml_lines", shift=moves,
                                  repaired=f"{moves} line{'s' if moves != 1 else ''} had moved by a column or two "
                                           "(page break, line-number column); put back where YAML and the "
                                           "object's schema allow only one place")
    if docs is not None and not _valid(docs):
        why = "the YAML reads, but not as a complete object (no metadata.name, or keys at the wrong level)"
    else:
        why = "the YAML does not read (its indentation was lost)"
    if len(found) > 1:
        why += "; several re-indentations would fit, so none is chosen"
    return ManifestRepair(damaged=why)


# ----------------------------------------------------------------------------- line by line
#
# When no single shift works, the page break (or the editor's gutter of numbers of two
# widths) moved single lines by a column or two. The search below moves one line at a
# time — alone, or with the lines nested under it — by 1–4 columns, where YAML reports an
# error or where a key sits at a place the Kubernetes schema has no such key (a
# container's ``volumeMounts`` under the pod spec). Every result must be valid YAML AND fit
# the schema of its kind (the keys the lab's kinds can hold at each level); if the search
# finds more than one distinct object, nothing is chosen.

_TOP = {"apiVersion", "kind", "metadata", "spec", "status", "data", "stringData", "type", "immutable"}
_META = {"name", "namespace", "labels", "annotations", "generateName", "uid", "resourceVersion",
         "creationTimestamp", "ownerReferences", "finalizers", "generation"}
_POD_SPEC = {"containers", "initContainers", "volumes", "restartPolicy", "nodeName", "nodeSelector", "hostNetwork",
             "dnsPolicy", "serviceAccountName", "serviceAccount", "tolerations", "affinity",
             "terminationGracePeriodSeconds", "securityContext", "imagePullSecrets", "hostname", "subdomain",
             "priorityClassName", "schedulerName", "hostPID", "hostIPC", "shareProcessNamespace",
             "enableServiceLinks", "automountServiceAccountToken", "dnsConfig", "topologySpreadConstraints",
             "ephemeralContainers", "readinessGates", "runtimeClassName", "preemptionPolicy", "overhead", "os",
             "hostAliases", "activeDeadlineSeconds", "setHostnameAsFQDN", "hostUsers", "priority"}
_CONTAINER = {"name", "image", "imagePullPolicy", "command", "args", "ports", "env", "envFrom", "volumeMounts",
              "resources", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "securityContext",
              "workingDir", "stdin", "stdinOnce", "tty", "terminationMessagePath", "terminationMessagePolicy",
              "volumeDevices", "restartPolicy", "resizePolicy"}
_CPORT = {"containerPort", "hostPort", "protocol", "name", "hostIP"}
_MOUNT = {"name", "mountPath", "readOnly", "subPath", "subPathExpr", "mountPropagation", "recursiveReadOnly"}
_VOLUME = {"name", "hostPath", "emptyDir", "persistentVolumeClaim", "configMap", "secret", "nfs", "projected",
           "downwardAPI", "csi", "ephemeral", "local", "iscsi", "cephfs", "rbd", "glusterfs"}
_SVC_SPEC = {"selector", "ports", "type", "clusterIP", "clusterIPs", "externalIPs", "sessionAffinity",
             "sessionAffinityConfig", "externalTrafficPolicy", "internalTrafficPolicy", "loadBalancerIP",
             "loadBalancerSourceRanges", "externalName", "publishNotReadyAddresses", "ipFamilies", "ipFamilyPolicy",
             "healthCheckNodePort", "allocateLoadBalancerNodePorts", "loadBalancerClass", "trafficDistribution"}
_SPORT = {"port", "targetPort", "protocol", "name", "nodePort", "appProtocol"}
_WORKLOAD_SPEC = {"replicas", "selector", "template", "strategy", "minReadySeconds", "revisionHistoryLimit",
                  "paused", "progressDeadlineSeconds", "serviceName", "updateStrategy", "podManagementPolicy",
                  "volumeClaimTemplates", "persistentVolumeClaimRetentionPolicy", "ordinals"}
_HPA_SPEC = {"scaleTargetRef", "minReplicas", "maxReplicas", "metrics", "behavior", "targetCPUUtilizationPercentage"}

_MAX_PARSES = 400


def _keys_ok(obj: Any, allowed: set[str], path: str, bad: list[str]) -> bool:
    if not isinstance(obj, dict):
        bad.append(path)
        return False
    extra = [k for k in obj if k not in allowed]
    if extra:
        bad.extend(f"{path}.{k}" for k in extra)
        return False
    return True


def _items(obj: Any, allowed: set[str], path: str, bad: list[str]) -> bool:
    if obj is None:
        return True
    if not isinstance(obj, list):
        bad.append(path)
        return False
    return all(_keys_ok(it, allowed, f"{path}[]", bad) for it in obj)


def _pod_spec_ok(spec: Any, path: str, bad: list[str]) -> bool:
    if not _keys_ok(spec, _POD_SPEC, path, bad):
        return False
    ok = True
    for i, c in enumerate(spec.get("containers") or []):
        if not _keys_ok(c, _CONTAINER, f"{path}.containers[{i}]", bad):
            ok = False
            continue
        ok = _items(c.get("ports"), _CPORT, f"{path}.containers[{i}].ports", bad) and ok
        ok = _items(c.get("volumeMounts"), _MOUNT, f"{path}.containers[{i}].volumeMounts", bad) and ok
    return _items(spec.get("volumes"), _VOLUME, f"{path}.volumes", bad) and ok


def schema_problems(doc: dict[str, Any]) -> list[str]:
    """Keys at places the kind's schema has none (only the lab's kinds are checked)."""
    bad: list[str] = []
    _keys_ok(doc, _TOP, "", bad)
    if isinstance(doc.get("metadata"), dict):
        _keys_ok(doc["metadata"], _META, ".metadata", bad)
    kind, spec = doc.get("kind"), doc.get("spec")
    if kind == "Pod":
        _pod_spec_ok(spec, ".spec", bad)
    elif kind in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"):
        if _keys_ok(spec, _WORKLOAD_SPEC, ".spec", bad) and isinstance(spec, dict):
            tmpl = spec.get("template")
            if _keys_ok(tmpl, {"metadata", "spec"}, ".spec.template", bad) and isinstance(tmpl, dict):
                _pod_spec_ok(tmpl.get("spec"), ".spec.template.spec", bad)
    elif kind == "Service":
        if _keys_ok(spec, _SVC_SPEC, ".spec", bad) and isinstance(spec, dict):
            _items(spec.get("ports"), _SPORT, ".spec.ports", bad)
    elif kind == "HorizontalPodAutoscaler":
        _keys_ok(spec, _HPA_SPEC, ".spec", bad)
    return bad


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _moved(lines: list[str], i: int, delta: int, subtree: bool) -> Optional[list[str]]:
    new_indent = _indent(lines[i]) + delta
    if new_indent < 0 or not lines[i].strip():
        return None
    out = list(lines)
    base = _indent(lines[i])
    out[i] = " " * new_indent + lines[i].lstrip(" ")
    if subtree:
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
            if lines[j].strip():
                ind = _indent(lines[j]) + delta
                if ind < 0:
                    return None
                out[j] = " " * ind + lines[j].lstrip(" ")
            j += 1
    return out


def _error_line(text: str) -> tuple[Optional[list[dict[str, Any]]], Optional[int]]:
    try:
        docs = [d for d in _load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, (mark.line if mark is not None else None)
    except (RecursionError, ValueError, TypeError):
        return None, None
    if not all(isinstance(d, dict) for d in docs):
        return None, None
    return docs, None


def _lines_for(path: str, lines: list[str]) -> list[int]:
    key = path.rsplit(".", 1)[-1].split("[", 1)[0]
    return [i for i, ln in enumerate(lines) if ln.strip().startswith((f"{key}:", f"- {key}:"))]


def snap_lines(text: str, break_at: Optional[int]) -> tuple[list[list[dict[str, Any]]], int]:
    """Distinct valid objects the line-by-line search finds; (results, moves of the first)."""
    lines0 = text.split("\n")
    found: dict[str, tuple[list[dict[str, Any]], int]] = {}
    budget = [_MAX_PARSES]
    starts = [lines0]
    if break_at is not None and 0 < break_at < len(lines0):
        for shift in (-1, -2, 1, 2, -3, 3, 4, 5, 6):
            starts.append(lines0[:break_at] + [(" " * shift + ln if shift > 0 else ln[min(-shift, _indent(ln)):])
                                               if ln.strip() else ln for ln in lines0[break_at:]])

    def walk(lines: list[str], moves: int, last: int) -> None:
        if budget[0] <= 0 or moves > 6:
            return
        budget[0] -= 1
        docs, err = _error_line("\n".join(lines))
        targets: list[int] = []
        if docs is not None:
            if _valid(docs):
                bad = [p for d in docs for p in schema_problems(d)]
                if not bad:
                    found.setdefault(repr(docs), (docs, moves))
                    return
                targets = [i for p in bad[:2] for i in _lines_for(p, lines)]
            else:
                return
        elif err is not None:
            targets = [t for t in (err, err - 1) if 0 <= t < len(lines)]
        for t in targets:
            for delta in (-1, 1, -2, 2, 4, -4, 3, -3):
                for subtree in (False, True):
                    cand = _moved(lines, t, delta, subtree)
                    if cand is not None and cand != lines:
                        walk(cand, moves + 1, t)
                    if budget[0] <= 0:
                        return

    for start in starts:
        walk(start, 0, -1)
        if budget[0] <= 0:
            break
    ranked = sorted(found.values(), key=lambda v: v[1])
    return [d for d, _ in ranked], (ranked[0][1] if ranked else 0)
