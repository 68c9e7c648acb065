"""Manifests a page break damaged (step 5b of ``import --report``).

A YAML manifest in a report may arrive as two code blocks joined back (see split.py), the
second one having lost its common indentation, or with keys that belong under
``metadata:`` pushed to the top level. ``repair_manifest`` tries, in order:

1. the text as it is;
2. keys only ``metadata`` can hold (``name``, ``labels``, ``namespace``, ``annotations``,
   ``generateName``) found at the top level under an empty ``metadata:``, moved under it;
3. the lines after the page break (``break_at``) shifted right by 1–12 spaces.

A result counts only when it is one Kubernetes object with a kind, a ``metadata.name`` and
(for workloads and Services) a ``spec``. Exactly one distinct result is a repair; none, or
several different ones, leave the manifest as damaged evidence: no object is made from
it (never a nameless "Pod None").
"""

from __future__ import annotations

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


def _load(text: str) -> Optional[list[dict[str, Any]]]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
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


def repair_manifest(text: str, break_at: Optional[int] = None) -> ManifestRepair:
    """``break_at``: index of the first line after the page break (None: no break known)."""
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
        d, how, shift = next(iter(found.values()))
        return ManifestRepair(objects=d, repaired=how, code="yaml_shift" if shift else "yaml_meta", shift=shift)
    if docs is not None and not _valid(docs):
        why = "the YAML reads, but not as a complete object (no metadata.name, or keys at the wrong level)"
    else:
        why = "the YAML does not read (its indentation was lost)"
    if len(found) > 1:
        why += "; several re-indentations would fit, so none is chosen"
    return ManifestRepair(damaged=why)
