"""Parse the tables ``kubectl get`` prints (default and ``-o wide``): nodes, pods,
services, endpoints, deployments, replicasets and HPAs, also ``--watch`` (rows repeat).

Usage::

    from labreport.parsers import kubectl_get
    for row in kubectl_get.parse(text, source="get-pods.txt").value:   # list[KubeRow]
        print(row.kind, row.name, row.columns.get("IP"))

The kind comes from the header (``NAME READY STATUS RESTARTS AGE`` is pods, ``NAME TYPE
CLUSTER-IP`` services …). Rows are read by their shape, not by column offsets, so what
PDF-to-text leaves is read too: tabs, single spaces, a row cut in two lines (the second
starting with the pod IP), the header's last column on a line of its own. ``NAMESPACE``
first (``-A``) is understood. Rows that fit no shape become warnings.

``KubeRow``: ``kind`` (Node, Pod, Service, Endpoints, Deployment, ReplicaSet,
HorizontalPodAutoscaler), ``name``, ``namespace`` (None unless printed), ``columns``
(header name -> cell), and for endpoints ``addresses`` + ``truncated`` ("+ 3 more...").
"""

from __future__ import annotations

import re
from typing import Optional

from pydantic import Field

from labreport.errors import ParseError
from labreport.parsers._common import is_prompt_line
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.snapshot import Record

_IP = r"\d{1,3}(?:\.\d{1,3}){3}"
_IP_RE = re.compile(rf"^{_IP}$")

# kind -> (header words that identify it, row regex over space-joined tokens, column names)
_KINDS: list[tuple[str, tuple[str, ...], str, list[str]]] = [
    ("HorizontalPodAutoscaler", ("REFERENCE", "TARGETS"),
     r"(\S+)\s+(\S+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)",
     ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]),
    ("Service", ("TYPE", "CLUSTER-IP"),
     r"(\S+)\s+(ClusterIP|NodePort|LoadBalancer|ExternalName)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)",
     ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]),
    ("Endpoints", ("ENDPOINTS",), r"(\S+)\s+(.+)\s+(\S+)", ["NAME", "ENDPOINTS", "AGE"]),
    ("Deployment", ("UP-TO-DATE", "AVAILABLE"), r"(\S+)\s+(\d+/\d+)\s+(\d+)\s+(\d+)\s+(\S+)",
     ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]),
    ("ReplicaSet", ("DESIRED", "CURRENT"), r"(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)",
     ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]),
    ("Node", ("ROLES", "VERSION"), r"(\S+)\s+((?:Not)?Ready(?:,\S+)?|Unknown(?:,\S+)?)\s+(\S+)\s+(\S+)\s+(v\S+)",
     ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]),
    ("Pod", ("READY", "RESTARTS"), r"(\S+)\s+(\d+/\d+)\s+(\S+)\s+(\d+(?:\s+\([^)]*\))?)\s+(\S+)",
     ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]),
]
_HEADER_RE = re.compile(r"^\s*(?:NAMESPACE\s+)?NAME\s+[A-Z]")
_TAIL_WORDS = {"AGE", "SELECTOR", "IP", "NODE", "GATES", "READINESS", "NOMINATED", "CONTAINERS", "IMAGES"}


class KubeRow(Record):
    """One row of a ``kubectl get`` table."""

    kind: str
    name: str
    namespace: Optional[str] = None
    columns: dict[str, str] = Field(default_factory=dict)
    addresses: list[str] = Field(default_factory=list)  # Endpoints: "ip:port" as printed
    truncated: bool = False  # Endpoints: "+ N more..." (kubectl shows three)
    line_no: int = 0


def _kind_of(header: str) -> Optional[tuple[str, str, list[str]]]:
    words = set(header.replace("\t", " ").split())
    for kind, need, rx, cols in _KINDS:
        if all(w in words for w in need):
            return kind, rx, cols
    return None


def _detect(text: str) -> float:
    for line in text[:4000].splitlines()[:8]:
        if is_prompt_line(line) and re.search(r"\bkubect[l1]\s+get\b", line) and not re.search(
                r"-o\s*=?\s*(?:yaml|json)", line):
            return 0.9
        if _HEADER_RE.match(line) and _kind_of(line):
            return 0.9
    return 0.0


INFO = ParserInfo(
    name="kubectl-get",
    commands=("kubectl get nodes|pods|svc|endpoints|deployments|hpa [-o wide]",),
    description="kubectl get tables (default and -o wide) read by their row shapes",
    detect=_detect,
    target="cluster",
)


def _wide(kind: str, extra: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    if not extra:
        return out
    if kind == "Pod":
        ip = next((t for t in extra if _IP_RE.match(t)), None)
        if ip is not None:
            out["IP"] = ip
            rest = extra[extra.index(ip) + 1:]
            # NODE, then NOMINATED NODE and READINESS GATES (both "<none>" as a rule); a node
            # printed as "<none>" on a running pod means the cell was lost: not recorded
            if len(rest) >= 3 and rest[0] != "<none>":
                out["NODE"] = rest[0]
            elif len(rest) in (1,) and rest[0] != "<none>":
                out["NODE"] = rest[0]
    elif kind == "Node" and len(extra) >= 2:
        out["INTERNAL-IP"] = extra[0]
        out["EXTERNAL-IP"] = extra[1]
        if len(extra) >= 5:
            out["CONTAINER-RUNTIME"] = extra[-1]
            out["KERNEL-VERSION"] = extra[-2]
            out["OS-IMAGE"] = " ".join(extra[2:-2])
    elif kind == "Service":
        out["SELECTOR"] = " ".join(extra)
    return out


def parse(text: str, *, source: str = "<input>") -> ParseResult[list[KubeRow]]:
    text = check_text(text, source)
    result: ParseResult[list[KubeRow]] = ParseResult(value=[], parser=INFO.name, source=source)
    kind: Optional[tuple[str, str, list[str]]] = None
    namespaced = False
    pending: Optional[tuple[int, str]] = None  # a row, until its continuation line is seen
    rows: list[tuple[int, str]] = []
    header_seen = False
    lines = text.split("\n")

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            rows.append(pending)
            pending = None

    def emit_rows() -> None:
        flush()
        for line_no, row in rows:
            _read_row(line_no, row, kind, namespaced, result)
        rows.clear()

    for line_no, raw in enumerate(lines, 1):
        line = raw.rstrip()
        if not line.strip() or line.strip() in ("```", "~~~"):
            continue
        if is_prompt_line(line):
            emit_rows()
            continue
        if _HEADER_RE.match(line):
            found = _kind_of(line)
            if found is not None:
                emit_rows()
                kind, namespaced, header_seen = found, line.split()[0] == "NAMESPACE", True
                continue
        tokens = line.replace("\t", " ").split()
        if header_seen and not rows and pending is None and all(t in _TAIL_WORDS for t in tokens):
            continue  # the header's last column(s), wrapped onto a line of their own
        if kind is None:
            result.warn(line_no, line, "row before a kubectl get table header")
            continue
        first = tokens[0] if tokens else ""
        if pending is not None and (_IP_RE.match(first) or first in ("<none>", "<pending>") or (
                len(tokens) == 1 and re.fullmatch(r"\d+(?:[smhdy]\d*)+", first))):
            pending = (pending[0], pending[1] + " " + line.replace("\t", " "))  # the row's cut-off rest
            continue
        flush()
        pending = (line_no, line.replace("\t", " "))
    emit_rows()
    if not header_seen:
        raise ParseError("no kubectl get table header (NAME READY STATUS …, NAME TYPE CLUSTER-IP …)", source=source)
    return result


def _read_row(line_no: int, row: str, kind: Optional[tuple[str, str, list[str]]], namespaced: bool,
              result: ParseResult[list[KubeRow]]) -> None:
    if kind is None:
        return
    name_kind, rx, cols = kind
    text = " ".join(row.split())
    namespace = None
    if namespaced:
        ns, _, text = text.partition(" ")
        namespace = ns
    m = re.fullmatch(rx, text) if name_kind == "Endpoints" else re.match(rx + r"(?:\s+(.*))?$", text)
    if not m:
        result.warn(line_no, row, f"not a {name_kind} row of kubectl get")
        return
    cells = list(m.groups())
    extra = (cells.pop() or "").split() if len(cells) > len(cols) else []
    columns = dict(zip(cols, (c or "" for c in cells)))
    columns.update(_wide(name_kind, extra))
    out = KubeRow(kind=name_kind, name=columns["NAME"], namespace=namespace, columns=columns, line_no=line_no)
    if name_kind == "Endpoints":
        eps = columns.get("ENDPOINTS", "")
        more = re.search(r"\+\s*(\d+)\s+more", eps)
        out.truncated = more is not None
        out.addresses = [a for a in re.split(r"[,\s]+", eps.split("+", 1)[0]) if a and a != "<none>"]
    result.value.append(out)
