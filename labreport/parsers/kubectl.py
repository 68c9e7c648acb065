"""Parse ``kubectl get … -o json`` / ``-o yaml`` and YAML manifests (one or several
documents separated by ``---``) into Kubernetes objects.

Usage::

    from labreport.parsers import kubectl
    for obj in kubectl.parse(text, source="pod.yaml").value:   # list[dict]
        print(obj["kind"], obj["metadata"]["name"])

- A ``List`` (``kubectl get pods -o json`` prints ``{"kind": "List", "items": […]}``;
  the raw API prints ``PodList``) is unwrapped into its items; items without ``kind``
  (the raw API omits it) get the list's kind minus "List" and its apiVersion.
- A multi-document YAML keeps every document that is a mapping; empty documents
  (a trailing ``---``) are skipped; a document that is not a mapping, or has no
  ``kind``, becomes a warning (it is not a Kubernetes object).
- Shell prompt lines (``root@k8s-master:/home# kubectl get pod -o yaml``) are dropped
  before parsing. A YAML error after some documents were read keeps those and warns;
  an error before any document is a ParseError with the line number.

Returns ``list[dict]`` (the objects exactly as written, nothing dropped)::

    [{"apiVersion": "v1", "kind": "Pod", "metadata": {...}, "spec": {...}}, …]

Example (seed 000, service.yaml)::

    apiVersion: v1
    kind: Service
    metadata: {name: service}
    spec: {type: ClusterIP, ports: [...], selector: {app: myApp}}
    -> [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "service"}, "spec": {...}}]
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from labreport.errors import ParseError
from labreport.parsers._common import is_prompt_line, load_json, yaml_load_all
from labreport.parsers.base import ParseResult, ParserInfo, check_text


def _detect(text: str) -> float:
    head = text[:6000]
    s = head.lstrip()
    if s.startswith("{") and '"apiVersion"' in head and '"kind"' in head:
        return 0.95
    if re.search(r"^apiVersion:\s*\S", head, re.M) and re.search(r"^kind:\s*\S", head, re.M):
        return 0.95
    if re.search(r"^\s*-?\s*apiVersion:\s*\S", head, re.M) and re.search(r"^\s*kind:\s*\S", head, re.M):
        return 0.6
    return 0.0


INFO = ParserInfo(
    name="kubectl",
    commands=("kubectl get … -o json", "kubectl get … -o yaml", "cat manifest.yaml"),
    description="Kubernetes objects from kubectl -o json|yaml or YAML manifests (List unwrapped)",
    detect=_detect,
    target="cluster",
)


def _unwrap(obj: dict[str, Any]) -> list[dict[str, Any]]:
    kind = obj.get("kind")
    items = obj.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        item_kind = kind[: -len("List")] or None
        out = []
        for item in items:
            if not isinstance(item, dict):
                continue
            if item_kind and "kind" not in item:
                item = {"kind": item_kind, **item}
                if obj.get("apiVersion") and "apiVersion" not in item:
                    item = {"apiVersion": obj["apiVersion"], **item}
            out.extend(_unwrap(item))
        return out
    return [obj]


def _add(doc: Any, index: int, line_no: int, result: ParseResult[list[dict[str, Any]]]) -> None:
    if doc is None:
        return
    if not isinstance(doc, dict):
        result.warn(line_no, str(doc)[:200], f"document {index} is not a mapping (not a Kubernetes object)")
        return
    if "kind" not in doc:
        result.warn(line_no, str(doc)[:200], f"document {index} has no kind")
        return
    result.value.extend(_unwrap(doc))


def parse(text: str, *, source: str = "<input>") -> ParseResult[list[dict[str, Any]]]:
    text = check_text(text, source)
    result: ParseResult[list[dict[str, Any]]] = ParseResult(value=[], parser=INFO.name, source=source)
    # keep line numbers: blank out prompt / fence lines instead of removing them
    lines = ["" if (is_prompt_line(ln) and not ln.lstrip().startswith(("-", "#"))) or ln.strip() in ("```", "~~~")
             else ln for ln in text.split("\n")]
    body = "\n".join(lines)
    if body.lstrip().startswith(("{", "[")):
        try:
            data = load_json(body)
        except ValueError:
            data = None  # YAML flow style is a superset; let YAML try
        if data is not None:
            docs = data if isinstance(data, list) else [data]
            for i, doc in enumerate(docs):
                _add(doc, i, 1, result)
            if not result.value:
                raise ParseError("no Kubernetes object (apiVersion/kind) in this JSON", source=source)
            return result
    n = 0
    try:
        for n, doc in enumerate(yaml_load_all(body)):
            _add(doc, n, 1, result)
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        line_no = (mark.line + 1) if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not result.value:
            raise ParseError(f"not valid YAML/JSON: {problem}", source=source, line_no=line_no or None) from None
        result.warn(line_no, lines[line_no - 1] if 0 < line_no <= len(lines) else "",
                    f"YAML error after document {n}: {problem}; the documents before it are kept")
    if not result.value:
        raise ParseError("no Kubernetes object (apiVersion/kind) found", source=source)
    return result
