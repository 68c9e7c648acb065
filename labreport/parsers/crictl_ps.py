"""Parse ``crictl ps`` (the table) and ``crictl ps -o json``.

Usage::

    from labreport.parsers import crictl_ps
    result = crictl_ps.parse(text, source="crictl-ps.txt")
    for c in result.value:               # list[labreport.snapshot.Container]
        print(c.id, c.name, c.sandbox_id, c.pod_name)

Table headers seen in the wild (crictl pads with 3 spaces like docker; PDF tables use
tabs; both are read):

    CONTAINER ID   IMAGE   CREATED   STATE   NAME   ATTEMPT   [POD ID]          (crictl < 1.19)
    CONTAINER      IMAGE   CREATED   STATE   NAME   ATTEMPT   POD ID   POD     (1.19 …)
    CONTAINER      IMAGE   CREATED   STATE   NAME   ATTEMPT   POD ID   POD   NAMESPACE

Rows whose spacing was lost (single spaces) are read by anchoring on the STATE word
(Running, Exited, Created, Unknown, CONTAINER_RUNNING, …): CREATED is what lies between
IMAGE and STATE ("About an hour ago").

JSON (``-o json``; ``-o yaml`` has the same shape and is read too): ``{"containers":
[{"id", "podSandboxId", "metadata": {"name", "attempt"}, "image": {"image"},
"imageRef", "state": "CONTAINER_RUNNING", "createdAt": "<ns since epoch>", "labels",
"annotations"}]}``; pod name/namespace/uid come from the io.kubernetes.pod.* labels.

Returns ``list[Container]`` (``runtime`` "unknown": crictl talks to any CRI runtime;
the importer fills it in when the node's processes tell)::

    {"id", "name" (container name), "image", "image_id" (imageRef), "state"
     ("Running" as printed, or CONTAINER_RUNNING in JSON), "created", "attempt",
     "sandbox_id" (POD ID), "pod_name" (POD), "pod_namespace", "pod_uid", "labels",
     "annotations", "is_sandbox": False}

Example (seed 001, worker after deploying the pod)::

    b971dd036333d  eea933b9ed0ff  6 minutes ago  Running  downloader  0  e6cf53e8a57e5  testpod
    -> Container(id="b971dd036333d", name="downloader", image="eea933b9ed0ff",
                 created="6 minutes ago", state="Running", attempt=0,
                 sandbox_id="e6cf53e8a57e5", pod_name="testpod")
"""

from __future__ import annotations

import re
from typing import Any, Optional

import yaml

from labreport.errors import ParseError
from labreport.parsers._common import (
    as_dict,
    as_str_dict,
    crictl_table_rows,
    label_pod_fields,
    load_json,
    ns_to_iso,
    to_int,
    without_prompts,
)
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.snapshot import Container

COLUMNS = ["CONTAINER ID", "CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD", "NAMESPACE"]
_HEADER_RE = re.compile(r"^\s*CONTAINER(?: ID)?\s+IMAGE\s+CREATED\s+STATE\s+NAME\b")
_STATES = ("Running", "Exited", "Created", "Unknown", "CONTAINER_RUNNING", "CONTAINER_EXITED",
           "CONTAINER_CREATED", "CONTAINER_UNKNOWN")
_ID_RE = re.compile(r"^[0-9a-f]{6,64}$")


def _detect(text: str) -> float:
    head = text[:4000]
    for line in head.splitlines()[:10]:
        if _HEADER_RE.match(line):
            return 0.95
    s = head.lstrip()
    if s.startswith("{") and '"containers"' in head and ('"podSandboxId"' in head or '"metadata"' in head):
        return 0.95
    if re.search(r"^containers:\s*$", head, re.M) and "podSandboxId" in head:
        return 0.9
    return 0.0


INFO = ParserInfo(
    name="crictl-ps",
    commands=("crictl ps", "crictl ps -a", "crictl ps -o json"),
    description="containers from crictl ps (table or -o json): container, sandbox (POD ID), pod",
    detect=_detect,
    target="containers",
)


def _convert(raw: dict[str, Any]) -> Container:
    """The one place where cells / JSON fields become a typed Container."""
    labels = raw.get("labels") or {}
    fields = {k: v for k, v in label_pod_fields(labels).items() if k != "sandbox_id"}
    fields.update({k: raw[k] for k in ("pod_name", "pod_namespace") if raw.get(k)})
    return Container(
        runtime=raw.get("runtime") or "unknown",
        id=str(raw["id"]),
        name=str(raw.get("name") or ""),
        image=raw.get("image") or None,
        image_id=raw.get("image_id") or None,
        state=raw.get("state") or None,
        created=raw.get("created") or None,
        attempt=to_int(raw.get("attempt")),
        sandbox_id=raw.get("sandbox_id") or None,
        labels=labels,
        annotations=raw.get("annotations") or {},
        **fields,
    )


def _from_tokens(line: str, names: list[str]) -> Optional[dict[str, str]]:
    """A row whose column spacing was lost: anchor on the STATE word."""
    toks = line.split()
    idx = next((i for i, t in enumerate(toks) if t in _STATES and i >= 3), None)
    if idx is None:
        return None
    row = {"CONTAINER": toks[0], "IMAGE": toks[1], "CREATED": " ".join(toks[2:idx]), "STATE": toks[idx]}
    rest = toks[idx + 1:]
    after = [n for n in names if n not in ("CONTAINER ID", "CONTAINER", "IMAGE", "CREATED", "STATE")]
    if len(rest) != len(after):
        return None
    row.update(dict(zip(after, rest)))
    return row


def _parse_json(data: Any, result: ParseResult[list[Container]]) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("containers"), list):
        raise ParseError('not crictl ps -o json (no "containers" list)', source=result.source)
    for i, item in enumerate(data["containers"]):
        if not isinstance(item, dict) or not item.get("id"):
            result.warn(1, str(item)[:200], f"containers[{i}] has no id")
            continue
        meta = as_dict(item.get("metadata"))
        image = item.get("image")
        raw = {
            "id": item["id"],
            "name": meta.get("name"),
            "attempt": meta.get("attempt", 0),
            "image": image.get("image") if isinstance(image, dict) else image,
            "image_id": item.get("imageRef"),
            "state": item.get("state"),
            "created": ns_to_iso(item.get("createdAt")) or item.get("createdAt"),
            "sandbox_id": item.get("podSandboxId"),
            "labels": as_str_dict(item.get("labels")),
            "annotations": as_str_dict(item.get("annotations")),
        }
        try:
            result.value.append(_convert(raw))
        except (ValueError, TypeError) as exc:
            result.warn(1, str(item.get("id"))[:200], f"containers[{i}]: {exc}")


def load_structured(text: str, source: str) -> Any:
    """JSON, else YAML (crictl -o yaml); ParseError if neither."""
    try:
        return load_json(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise ParseError(f"neither JSON nor YAML: {str(exc).splitlines()[0] if str(exc) else exc}", source=source) from None


def parse(text: str, *, source: str = "<input>") -> ParseResult[list[Container]]:
    text = check_text(text, source)
    result: ParseResult[list[Container]] = ParseResult(value=[], parser=INFO.name, source=source)
    body = without_prompts(text)
    if body.startswith("{") or body.startswith("containers:"):
        _parse_json(load_structured(body, source), result)
        return result
    def aligned_ok(row: dict[str, str], names: list[str]) -> bool:
        return bool(_ID_RE.match(row.get(names[0], ""))) and row.get("STATE", "") in _STATES

    for line_no, line, row in crictl_table_rows(
            text, result, header_re=_HEADER_RE, columns=COLUMNS, states=_STATES, what="crictl ps",
            from_tokens=_from_tokens, aligned_ok=aligned_ok):
        cid = row.get("CONTAINER") or row.get("CONTAINER ID") or ""
        if not _ID_RE.match(cid):
            result.warn(line_no, line, "the CONTAINER column is not a container id")
            continue
        raw = {
            "id": cid,
            "image": row.get("IMAGE"),
            "created": row.get("CREATED"),
            "state": row.get("STATE"),
            "name": row.get("NAME"),
            "attempt": row.get("ATTEMPT"),
            "sandbox_id": row.get("POD ID"),
            "pod_name": row.get("POD"),
            "pod_namespace": row.get("NAMESPACE"),
        }
        try:
            result.value.append(_convert(raw))
        except (ValueError, TypeError) as exc:
            result.warn(line_no, line, f"cannot convert row: {exc}")
    if not any(_HEADER_RE.match(ln) for ln in text.split("\n")):
        raise ParseError("no crictl ps header (CONTAINER IMAGE CREATED STATE NAME …) and not -o json", source=source)
    return result
