"""Parse ``kubectl describe pod|svc|node`` output: the facts a lab report needs from it.

Usage::

    from labreport.parsers import kubectl_describe
    for obj in kubectl_describe.parse(text).value:      # list[Described]
        print(obj.kind, obj.name, obj.node, obj.ips, [c.name for c in obj.containers])

The output is ``Key:  value`` lines at column 0, sections indented under a ``Key:`` line
(``Containers:``, ``Addresses:``, ``Events:``). Several objects in one paste are separated
by their ``Name:`` lines. The kind is told by the keys (``Node:`` + ``Containers:`` is a
Pod, ``Selector:`` + ``Type:`` + ``Endpoints:`` a Service, ``Roles:`` + ``Addresses:`` a
Node). Read: name, namespace, node (``worker/192.168.1.14`` -> ``worker``), IP / IPs,
containers (name, container ID, image, state), Service type, cluster IP, ports and
endpoints, a Node's addresses, and the Events table rows.
"""

from __future__ import annotations

import re
from typing import Optional

from pydantic import Field

from labreport.errors import ParseError
from labreport.parsers._common import is_prompt_line
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.snapshot import Record

_KEY_RE = re.compile(r"^([A-Z][\w .-]*?):(?:\s+(.*))?$")
_SUB_RE = re.compile(r"^(\s+)([\w .-]+?):(?:\s+(.*))?$")
_IP_RE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


class DescribedContainer(Record):
    name: str
    container_id: Optional[str] = None  # "containerd://…" / "docker://…" as printed
    image: Optional[str] = None
    state: Optional[str] = None


class Described(Record):
    kind: str  # Pod | Service | Node | unknown
    name: str
    namespace: Optional[str] = None
    node: Optional[str] = None
    node_ip: Optional[str] = None
    ip: Optional[str] = None
    ips: list[str] = Field(default_factory=list)
    containers: list[DescribedContainer] = Field(default_factory=list)
    service_type: Optional[str] = None
    ports: list[str] = Field(default_factory=list)
    endpoints: list[str] = Field(default_factory=list)
    addresses: dict[str, str] = Field(default_factory=dict)  # Node: InternalIP, Hostname
    events: list[str] = Field(default_factory=list)
    fields: dict[str, str] = Field(default_factory=dict)  # every top-level Key: value
    line_no: int = 0


def _detect(text: str) -> float:
    head = text[:6000]
    if re.search(r"^\s*(?:\S+@\S+[#$]\s*)?kubect[l1]\s+describe\b", head, re.M):
        return 0.9
    if re.search(r"^Name:\s+\S", head, re.M) and (re.search(r"^Namespace:\s", head, re.M)
                                                 or re.search(r"^Roles:\s", head, re.M)):
        return 0.85
    return 0.0


INFO = ParserInfo(
    name="kubectl-describe",
    commands=("kubectl describe pod NAME", "kubectl describe svc NAME", "kubectl describe node NAME"),
    description="kubectl describe pod|svc|node: node, IPs, containers, ports, endpoints, events",
    detect=_detect,
    target="cluster",
)


def _kind(obj: Described) -> str:
    f = obj.fields
    if "Containers" in f or ("Node" in f and "IP" in f and "Start Time" in f):
        return "Pod"
    if "Selector" in f and "Type" in f and ("Endpoints" in f or "IP" in f or "Port" in f):
        return "Service"
    if "Roles" in f or "Addresses" in f and "Capacity" in f:
        return "Node"
    return "unknown"


def parse(text: str, *, source: str = "<input>") -> ParseResult[list[Described]]:
    text = check_text(text, source)
    result: ParseResult[list[Described]] = ParseResult(value=[], parser=INFO.name, source=source)
    cur: Optional[Described] = None
    section: Optional[str] = None
    container: Optional[DescribedContainer] = None
    for line_no, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip()
        if not line.strip() or line.strip() in ("```", "~~~") or is_prompt_line(line):
            continue
        m = _KEY_RE.match(line)
        if m and not line[0].isspace():
            key, value = m.group(1).strip(), (m.group(2) or "").strip()
            if key == "Name":
                if cur is not None:
                    cur.kind = _kind(cur)
                    result.value.append(cur)
                cur = Described(kind="unknown", name=value, line_no=line_no)
                section, container = None, None
                continue
            if cur is None:
                result.warn(line_no, line, "a describe field before the first Name: line")
                continue
            cur.fields[key] = value
            section, container = key, None
            if key == "Namespace":
                cur.namespace = value
            elif key == "Node" and value and value != "<none>":
                node, _, ip = value.partition("/")
                cur.node, cur.node_ip = node, ip or None
            elif key == "IP" and value:
                cur.ip = value
            elif key == "IPs" and value:
                cur.ips.extend(v for v in re.split(r"[,\s]+", value) if v)
            elif key == "Type":
                cur.service_type = value
            elif key in ("Port", "TargetPort") and value:
                cur.ports.append(f"{key} {value}")
            elif key == "Endpoints" and value:
                cur.endpoints.extend(e for e in re.split(r"[,\s]+", value.split("+", 1)[0]) if e and e != "<none>")
            continue
        if cur is None:
            continue
        s = _SUB_RE.match(line)
        if section == "IPs" and s and s.group(2).strip() == "IP":
            cur.ips.append((s.group(3) or "").strip())
        elif section == "Containers" and s:
            indent, key, value = len(s.group(1)), s.group(2).strip(), (s.group(3) or "").strip()
            if indent <= 2 and not value:
                container = DescribedContainer(name=key)
                cur.containers.append(container)
            elif container is not None:
                if key == "Container ID":
                    container.container_id = value
                elif key == "Image":
                    container.image = value
                elif key == "State":
                    container.state = value
        elif section == "Addresses" and s:
            cur.addresses[s.group(2).strip()] = (s.group(3) or "").strip()
        elif section == "Events":
            if line.strip().startswith(("Type ", "----")):
                continue
            cur.events.append(line.strip()[:300])
        elif section == "Endpoints" and _IP_RE.search(line):
            cur.endpoints.extend(e for e in re.split(r"[,\s]+", line.strip()) if _IP_RE.match(e))
    if cur is not None:
        cur.kind = _kind(cur)
        result.value.append(cur)
    if not result.value:
        raise ParseError("no kubectl describe output (no Name: line)", source=source)
    return result
