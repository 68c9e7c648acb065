"""Parse ``crictl pods`` (the table) and ``crictl pods -o json``: the pod sandboxes.

Usage::

    from labreport.parsers import crictl_pods
    result = crictl_pods.parse(text, source="crictl-pods.txt")
    for s in result.value:               # list[Container], every one is_sandbox=True
        print(s.id, s.pod_namespace, s.pod_name)

Table headers (padding 3 spaces; tabs from PDF tables are read too)::

    POD ID   CREATED   STATE   NAME   NAMESPACE   ATTEMPT              (crictl < 1.19)
    POD ID   CREATED   STATE   NAME   NAMESPACE   ATTEMPT   RUNTIME    (crictl 1.19+)

STATE is ``Ready`` / ``NotReady`` in the table. Rows whose spacing was lost are read by
anchoring on the STATE word. JSON: ``{"items": [{"id", "metadata": {"name", "uid",
"namespace", "attempt"}, "state": "SANDBOX_READY", "createdAt": "<ns>", "labels",
"annotations", "runtimeHandler"}]}`` (``-o yaml`` has the same shape).

A sandbox is recorded as a Container with ``is_sandbox=True``, ``id`` = ``sandbox_id``
= the sandbox id, ``name`` = the pod name (CRI metadata.name of the sandbox),
``pod_name``/``pod_namespace``/``pod_uid``/``attempt`` from the row or metadata,
``state`` as printed, ``runtime_handler`` (extra field) from RUNTIME/runtimeHandler.

Example (recorded ``crictl pods`` in cri-tools PR #369)::

    3f075e72dfa28   3 days ago   Ready   virtlet-wcb8r   kube-system   0
    -> Container(id="3f075e72dfa28", sandbox_id="3f075e72dfa28", is_sandbox=True,
                 name="virtlet-wcb8r", pod_name="virtlet-wcb8r",
                 pod_namespace="kube-system", state="Ready", attempt=0,
                 created="3 days ago")
"""

from __future__ import annotations

import re
from typing import Any, Optional

from labreport.errors import ParseError
from labreport.parsers._common import (
    as_dict,
    as_str_dict,
    crictl_table_rows,
    label_pod_fields,
    ns_to_iso,
    to_int,
    without_prompts,
)
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.parsers.crictl_ps import load_structured
from labreport.snapshot import Container

COLUMNS = ["POD ID", "PODSANDBOX ID", "SANDBOX ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"]
_HEADER_RE = re.compile(r"^\s*(?:POD ID|PODSANDBOX ID|SANDBOX ID)\s+CREATED\s+STATE\s+NAME\s+NAMESPACE\b")
_STATES = ("Ready", "NotReady", "SANDBOX_READY", "SANDBOX_NOTREADY")
_ID_RE = re.compile(r"^[0-9a-f]{6,64}$")


def _detect(text: str) -> float:
    head = text[:4000]
    for line in head.splitlines()[:10]:
        if _HEADER_RE.match(line):
            return 0.95
    s = head.lstrip()
    if s.startswith("{") and '"items"' in head and ("SANDBOX_" in head or '"runtimeHandler"' in head):
        return 0.95
    return 0.0


INFO = ParserInfo(
    name="crictl-pods",
    commands=("crictl pods", "crictl pods -o json"),
    description="pod sandboxes from crictl pods (table or -o json), as sandbox Containers",
    detect=_detect,
    target="containers",
)


def _convert(raw: dict[str, Any]) -> Container:
    """The one place where cells / JSON fields become a typed sandbox Container."""
    labels = raw.get("labels") or {}
    fields = {k: v for k, v in label_pod_fields(labels).items() if k not in ("sandbox_id", "container_name")}
    for k in ("pod_name", "pod_namespace", "pod_uid"):
        if raw.get(k):
            fields[k] = raw[k]
    sid = str(raw["id"])
    return Container(
        runtime=raw.get("runtime") or "unknown",
        id=sid,
        sandbox_id=sid,
        is_sandbox=True,
        name=str(raw.get("pod_name") or fields.get("pod_name") or ""),
        state=raw.get("state") or None,
        created=raw.get("created") or None,
        attempt=to_int(raw.get("attempt")),
        labels=labels,
        annotations=raw.get("annotations") or {},
        runtime_handler=raw.get("runtime_handler") or None,
        **fields,
    )


def _from_tokens(line: str, names: list[str]) -> Optional[dict[str, str]]:
    toks = line.split()
    idx = next((i for i, t in enumerate(toks) if t in _STATES and i >= 2), None)
    if idx is None:
        return None
    row = {"POD ID": toks[0], "CREATED": " ".join(toks[1:idx]), "STATE": toks[idx]}
    after = [n for n in names if n not in ("POD ID", "PODSANDBOX ID", "SANDBOX ID", "CREATED", "STATE")]
    rest = toks[idx + 1:]
    if len(rest) != len(after):
        return None
    row.update(dict(zip(after, rest)))
    return row


def _parse_json(data: Any, result: ParseResult[list[Container]]) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise ParseError('not crictl pods -o json (no "items" list)', source=result.source)
    for i, item in enumerate(data["items"]):
        if not isinstance(item, dict) or not item.get("id"):
            result.warn(1, str(item)[:200], f"items[{i}] has no id")
            continue
        meta = as_dict(item.get("metadata"))
        raw = {
            "id": item["id"],
            "pod_name": meta.get("name"),
            "pod_namespace": meta.get("namespace"),
            "pod_uid": meta.get("uid"),
            "attempt": meta.get("attempt", 0),
            "state": item.get("state"),
            "created": ns_to_iso(item.get("createdAt")) or item.get("createdAt"),
            "labels": as_str_dict(item.get("labels")),
            "annotations": as_str_dict(item.get("annotations")),
            "runtime_handler": item.get("runtimeHandler"),
        }
        try:
            result.value.append(_convert(raw))
        except (ValueError, TypeError) as exc:
            result.warn(1, str(item.get("id"))[:200], f"items[{i}]: {exc}")


def parse(text: str, *, source: str = "<input>") -> ParseResult[list[Container]]:
    text = check_text(text, source)
    result: ParseResult[list[Container]] = ParseResult(value=[], parser=INFO.name, source=source)
    body = without_prompts(text)
    if body.startswith("{") or body.startswith("items:"):
        _parse_json(load_structured(body, source), result)
        return result
    for line_no, line, row in crictl_table_rows(
            text, result, header_re=_HEADER_RE, columns=COLUMNS, states=_STATES, what="crictl pods",
            from_tokens=_from_tokens, aligned_ok=lambda row, names: row.get("STATE", "") in _STATES):
        sid = row.get("POD ID") or row.get("PODSANDBOX ID") or row.get("SANDBOX ID") or ""
        if not _ID_RE.match(sid):
            result.warn(line_no, line, "the POD ID column is not a sandbox id")
            continue
        raw = {
            "id": sid,
            "created": row.get("CREATED"),
            "state": row.get("STATE"),
            "pod_name": row.get("NAME"),
            "pod_namespace": row.get("NAMESPACE"),
            "attempt": row.get("ATTEMPT"),
            "runtime_handler": row.get("RUNTIME"),
        }
        try:
            result.value.append(_convert(raw))
        except (ValueError, TypeError) as exc:
            result.warn(line_no, line, f"cannot convert row: {exc}")
    if not any(_HEADER_RE.match(ln) for ln in text.split("\n")):
        raise ParseError("no crictl pods header (POD ID CREATED STATE NAME NAMESPACE …) and not -o json", source=source)
    return result
